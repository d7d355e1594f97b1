/* main.c — qlab's entry point: global options, then one subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
    "usage: qlab [OPTIONS] [COMMAND] [ARGS]\n"
    "\n"
    "qlab is a workbench for quantization experiments: load a model, choose a\n"
    "numeric precision per tensor, evaluate, and review every run later.\n"
    "\n"
    "Commands:\n"
    "  tui [MODEL]         open the interactive workbench (the default on a terminal;\n"
    "                      MODEL defaults to the bundled digits-cnn)\n"
    "  info MODEL          the model's graph, tensors, shapes and sizes\n"
    "  eval MODEL          evaluate with a recipe (--quant) and record the run\n"
    "  generate MODEL      greedy text from the float and the quantized model\n"
    "  sweep MODEL         sensitivity sweep: groups x candidate schemes, stored\n"
    "                      point by point (--resume ID after a kill)\n"
    "  sweeps list|show ID sweeps and their tables (--csv)\n"
    "  search SWEEP_ID     exact budgeted search and Pareto front (--budget 4.5bpw)\n"
    "  searches list|show ID  searches, their fronts and recipes\n"
    "  runs list           recorded runs, newest first\n"
    "  runs show ID        one run with its per-tensor table\n"
    "  plugins             plugins, their schemes and parameters\n"
    "  plugins check FILE  exercise a plugin on random and edge-case tensors\n"
    "  quant FILE.safetensors --tensor NAME --scheme S -o OUT\n"
    "                      quantize one tensor outside a model (.deq and .q)\n"
    "\n"
    "Options (anywhere on the line):\n"
    "  --db FILE           database (default $XDG_DATA_HOME/qlab/qlab.db,\n"
    "                      else ~/.local/share/qlab/qlab.db)\n"
    "  --plugin FILE.so    load a scheme plugin (repeatable)\n"
    "  --json              print results as JSON (schema in README.md)\n"
    "  --no-color          monochrome TUI (NO_COLOR is honoured too)\n"
    "  -h, --help          help (qlab COMMAND --help for a command)\n"
    "  --version           print the version\n"
    "\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error.\n";

struct command {
    const char *name;
    int (*run)(struct cli *c);
};

static const struct command commands[] = {
    {"tui", cli_tui},   {"info", cli_info},       {"eval", cli_eval},
    {"runs", cli_runs}, {"plugins", cli_plugins}, {"quant", cli_quant},
    {"generate", cli_generate},
    {"sweep", cli_sweep},
    {"sweeps", cli_sweeps},
    {"search", cli_search},
    {"searches", cli_searches},
};

/* Pulls the global options out of argv, wherever they are; what is left
 * (in order) goes to rest. Returns -1 after a usage message. */
static int take_globals(struct cli *c, int argc, char **argv, char **rest, int *n_rest)
{
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        int r;
        if (strcmp(a, "--") == 0) {
            while (++i < argc)
                rest[n++] = argv[i];
            break;
        }
        if (strcmp(a, "--json") == 0)
            c->json = 1;
        else if (strcmp(a, "--no-color") == 0)
            c->no_color = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            c->help = 1;
        else if ((r = cli_opt_value(c, argc, argv, &i, "--db", &v)) != 0) {
            if (r < 0)
                return -1;
            c->db_path = v;
        } else if ((r = cli_opt_value(c, argc, argv, &i, "--plugin", &v)) != 0) {
            if (r < 0)
                return -1;
            if (c->n_plugin_files == CLI_MAX_PLUGINS) {
                cli_usage_error(c, "at most %d --plugin options", CLI_MAX_PLUGINS);
                return -1;
            }
            c->plugin_files[c->n_plugin_files++] = v;
        } else
            rest[n++] = argv[i];
    }
    *n_rest = n;
    return 0;
}

int main(int argc, char **argv)
{
    struct cli c = {.cmd = ""};
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int n_rest = 0;
    if (!rest)
        return EXIT_RUNTIME;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--version") == 0) {
            printf("qlab %s (plugin ABI %u)\n", QLAB_VERSION, QLAB_PLUGIN_ABI);
            free(rest);
            return EXIT_OK;
        }
    if (take_globals(&c, argc, argv, rest, &n_rest) < 0) {
        free(rest);
        return EXIT_USAGE;
    }
    int rc;
    if (n_rest == 0) {
        if (c.help) {
            fputs(usage, stdout);
            rc = EXIT_OK;
        } else if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
            c.cmd = "tui";
            rc = cli_tui(&c);
        } else {
            fputs(usage, stderr);
            rc = EXIT_USAGE;
        }
        free(rest);
        return rc;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(rest[0], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "qlab: unknown command '%s' (commands: tui, info, eval, generate, sweep, "
                "sweeps, search, searches, runs, plugins, quant; see qlab --help)\n", rest[0]);
        free(rest);
        return EXIT_USAGE;
    }
    c.cmd = cmd->name;
    c.argc = n_rest - 1;
    c.argv = rest + 1;
    rc = cmd->run(&c);
    free(rest);
    return rc;
}
