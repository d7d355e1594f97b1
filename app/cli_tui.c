/* cli_tui.c — `qlab tui [MODEL]`: opens the interactive workbench. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "paths.h"
#include "ui/tui.h"

static const char help[] =
    "usage: qlab tui [MODEL] [--db FILE] [--plugin FILE.so] [--no-color]\n"
    "\n"
    "Opens the interactive workbench on MODEL (default: the bundled\n"
    "digits-cnn sample model). Press ? inside for the keys.\n";

int cli_tui(struct cli *c)
{
    if (c->help) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    if (c->argc > 1)
        return cli_usage_error(c, "one MODEL only ('%s' is extra)", c->argv[1]);
    char def[4096];
    const char *model = c->argc == 1 ? c->argv[0] : NULL;
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
    struct tui_options o = {.no_color = c->no_color};
    if (wb_load_model(w, model, &err) < 0 || wb_refresh(w, NULL, &err) < 0 ||
        tui_run(w, &o, &err) != 0)
        rc = cli_runtime_error(&err);
    wb_close(w);
    return rc;
}
