/* tui.h — the interactive terminal workbench (ncurses); calls only app/'s API. */
#ifndef QLAB_TUI_H
#define QLAB_TUI_H

#include "app/workbench.h"

struct tui_options {
    int no_color;      /* --no-color (NO_COLOR in the environment also turns colour off) */
    int ascii;         /* force ASCII lines even in a UTF-8 locale */
    /* language models: what `r` evaluates (NULL/0: asked for, or defaults) */
    const char *data;  /* --data: the text file perplexity is measured on */
    int n_ctx;         /* --ctx: tokens per chunk (0: asked, default min(context, 512)) */
    int n_chunks;      /* --chunks: the first N chunks only (0: all) */
};

/* Runs the TUI on a workbench whose model is loaded, until the user quits.
 * Returns 0, or 1 with err set when the terminal cannot be used. */
int tui_run(struct wb *w, const struct tui_options *o, qerr *err);

#endif
