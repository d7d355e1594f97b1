/* cli.h — the subcommands of the qlab command line and what they share. */
#ifndef QLAB_CLI_H
#define QLAB_CLI_H

#include <stdio.h>

#include "workbench.h"

/* Exit codes: 0 ok, 1 runtime error, 2 usage error. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

#define CLI_MAX_PLUGINS 32

/* Options that every subcommand accepts, wherever they appear. */
struct cli {
    const char *cmd;                       /* "eval", "runs list", ... for messages */
    const char *db_path;
    const char *plugin_files[CLI_MAX_PLUGINS];
    int n_plugin_files;
    int json, no_color, help;
    int argc;                              /* the subcommand's own arguments */
    char **argv;
};

/* Prints "qlab CMD: message" on stderr and returns EXIT_USAGE. */
int cli_usage_error(const struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "qlab: message" on stderr and returns EXIT_RUNTIME. */
int cli_runtime_error(const qerr *err);

/* Opens the workbench with the global options. */
int cli_open(const struct cli *c, int no_store, struct wb **w);

/* Takes "--name VALUE" or "--name=VALUE" at argv[*i]; returns 1 when it
 * matched (value set, *i advanced), 0 when not, -1 when the value is missing. */
int cli_opt_value(const struct cli *c, int argc, char **argv, int *i, const char *name,
                  const char **value);
/* Parses a positive integer option value; -1 with a usage message if bad. */
int cli_parse_count(const struct cli *c, const char *name, const char *text, long long *out);

/* Writes a cJSON value (then frees it) to stdout, formatted, with a newline. */
struct cJSON;
void cli_print_json(struct cJSON *j);

/* "1.2 KiB", "3.4 MiB" */
void cli_format_bytes(double bytes, char *buf, size_t size);

int cli_info(struct cli *c);
int cli_eval(struct cli *c);
int cli_runs(struct cli *c);
int cli_plugins(struct cli *c);
int cli_quant(struct cli *c);
int cli_generate(struct cli *c);
int cli_sweep(struct cli *c);
int cli_sweeps(struct cli *c);
int cli_search(struct cli *c);
int cli_searches(struct cli *c);
int cli_tui(struct cli *c);

#endif
