/* cli_tui.c — `qlab tui [MODEL]`: opens the interactive workbench. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "paths.h"
#include "ui/tui.h"

static const char help[] =
    "usage: qlab tui [MODEL] [--db FILE] [--plugin FILE.so] [--no-color]\n"
    "       qlab tui LANGUAGE-MODEL [--data TEXT] [--ctx N] [--chunks N]\n"
    "                [--tokenizer FILE]\n"
    "\n"
    "Opens the interactive workbench on MODEL (default: the bundled\n"
    "digits-cnn sample model). Press ? inside for the keys.\n"
    "\n"
    "For a language model, r measures perplexity on a text file:\n"
    "  --data FILE     the text (asked for inside when not given)\n"
    "  --ctx N         tokens per chunk (asked for inside when not given;\n"
    "                  default the model's context, at most 512)\n"
    "  --chunks N      the first N chunks only (default: all)\n"
    "  --tokenizer F   llama2.c tokenizer.bin (default: found beside the model)\n";

int cli_tui(struct cli *c)
{
    if (c->help) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    const char *model = NULL, *tokenizer = NULL, *v;
    struct tui_options o = {.no_color = c->no_color};
    for (int i = 0; i < c->argc; i++) {
        int r;
        long long n;
        if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--data", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            o.data = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--tokenizer", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            tokenizer = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--ctx", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "--ctx", v, &n) < 0)
                return EXIT_USAGE;
            if (n < 4 || n > 1048576)
                return cli_usage_error(c, "--ctx is 4..1048576");
            o.n_ctx = (int)n;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--chunks", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "--chunks", v, &n) < 0)
                return EXIT_USAGE;
            o.n_chunks = n > 1000000000 ? 1000000000 : (int)n;
        } else if (c->argv[i][0] == '-' && c->argv[i][1]) {
            return cli_usage_error(c, "unknown option %s (see qlab tui --help)", c->argv[i]);
        } else if (!model) {
            model = c->argv[i];
        } else {
            return cli_usage_error(c, "one MODEL only ('%s' is extra)", c->argv[i]);
        }
    }
    char def[4096];
    if (!model) {
        const char *dir = qlab_sample_models_dir();
        if (!dir) {
            fprintf(stderr, "qlab: the bundled sample models are not installed; give a MODEL\n");
            return EXIT_RUNTIME;
        }
        snprintf(def, sizeof def, "%s/digits-cnn", dir);
        model = def;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return cli_usage_error(c, "needs a terminal (use info, eval and runs from scripts)");
    struct wb *w;
    if (cli_open(c, 0, &w) < 0)
        return EXIT_RUNTIME;
    qerr err;
    int rc = EXIT_OK;
    if (wb_load_model_ex(w, model, tokenizer, &err) < 0 || wb_refresh(w, NULL, &err) < 0 ||
        tui_run(w, &o, &err) != 0)
        rc = cli_runtime_error(&err);
    wb_close(w);
    return rc;
}
