/* lm_actions.c — the language-model flows of the Model screen: run (data and context asked for) and generate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant/llm.h"
#include "ui.h"

#define GEN_DEFAULT_TOKENS 128
#define GEN_MAX_TOKENS 4096 /* more would not be read in a panel */

/* A whole number in [lo, hi] from text, or -1 (with the reason in the
 * status line, naming what). */
static long parse_count(struct tui *t, const char *what, const char *text, long lo, long hi)
{
    errno = 0;
    char *end;
    long v = strtol(text, &end, 10);
    while (*end == ' ')
        end++;
    if (end == text || *end || errno || v < lo || v > hi) {
        tui_status(t, 1, "%s: '%s' is not a whole number in %ld..%ld", what, text, lo, hi);
        return -1;
    }
    return v;
}

/* ---- run ----------------------------------------------------------------------- */

/* min(the model's context, 512), as wb_eval chooses it */
static int default_ctx(const struct tui *t)
{
    const struct qllm *l = wb_model(t->w)->llm;
    int c = l ? l->c.max_ctx : 0;
    return c > 0 && c < 512 ? c : 512;
}

static void start_lm_eval(struct tui *t, void *ctx)
{
    (void)ctx;
    struct wb_eval_request req = {.data = t->data_path, .n_ctx = t->lm_ctx,
                                  .n_chunks = t->lm_chunks};
    tui_push(t, dialog_eval_new(t, &req));
}

/* The text file and n_ctx are known: on to what asked for them. */
static void proceed(struct tui *t)
{
    if (t->lm_then)
        t->lm_then(t, t->lm_then_ctx);
}

static void ctx_accept(struct tui *t, void *ctx, const char *text)
{
    (void)ctx;
    long n = parse_count(t, "tokens per chunk", text, 4, 1048576);
    if (n < 0)
        return;
    t->lm_ctx = (int)n;
    proceed(t);
}

static void ask_ctx(struct tui *t)
{
    char init[32];
    snprintf(init, sizeof init, "%d", t->lm_ctx > 0 ? t->lm_ctx : default_ctx(t));
    tui_push(t, prompt_new(t, "Tokens per chunk (n_ctx):", init,
                           (struct ui_prompt_cb){.accept = ctx_accept}));
}

/* ask: the context length is asked for even when --ctx gave it (R) */
static void take_data(struct tui *t, const char *text, int ask)
{
    snprintf(t->data_typed, sizeof t->data_typed, "%s", text);
    if (!text[0]) {
        tui_status(t, 1, "a text file is needed to measure perplexity on");
        return;
    }
    if (access(text, R_OK) != 0) {
        tui_status(t, 1, "%s: %s", text, strerror(errno));
        return;
    }
    snprintf(t->data_path, sizeof t->data_path, "%s", text);
    if (ask || !t->lm_ctx_given)
        ask_ctx(t);
    else
        proceed(t);
}

static void data_accept(struct tui *t, void *ctx, const char *text)
{
    (void)ctx;
    take_data(t, text, 0);
}

static void data_accept_ask(struct tui *t, void *ctx, const char *text)
{
    (void)ctx;
    take_data(t, text, 1);
}

void tui_with_lm_data(struct tui *t, int ask, void (*then)(struct tui *t, void *ctx), void *ctx)
{
    t->lm_then = then;
    t->lm_then_ctx = ctx;
    if (ask || !t->data_path[0]) {
        tui_push(t, prompt_new(t, "Text file for perplexity:",
                               t->data_typed[0] ? t->data_typed : t->data_path,
                               (struct ui_prompt_cb){.accept = ask ? data_accept_ask
                                                                   : data_accept}));
        return;
    }
    if (!t->lm_ctx_given && t->lm_ctx == 0)
        ask_ctx(t);
    else
        proceed(t);
}

void tui_run_eval(struct tui *t, int ask)
{
    if (t->job) {
        tui_status(t, 1, "an evaluation is already running");
        return;
    }
    if (!tui_is_lm(t)) { /* --data, if given, instead of the model's own dataset */
        struct wb_eval_request req = {.data = t->data_path[0] ? t->data_path : NULL};
        tui_push(t, dialog_eval_new(t, &req));
        return;
    }
    tui_with_lm_data(t, ask, start_lm_eval, NULL);
}

/* ---- generate --------------------------------------------------------------------- */

/* Handed to the worker: it alone touches the workbench until done. */
struct gen_work {
    struct wb *w;
    char prompt[256];
    int n_tokens;
    struct wb_generation g;
    int rc;
    qerr err;
};

static void gen_run(void *ctx)
{
    struct gen_work *g = ctx;
    g->rc = wb_generate(g->w, g->prompt, g->n_tokens, NULL, &g->g, &g->err);
}

static void gen_done(struct tui *t, void *ctx)
{
    struct gen_work *g = ctx;
    if (g->rc < 0) {
        tui_status(t, 1, "generation failed: %s", g->err.msg);
        return;
    }
    tui_push(t, screen_generate_new(t, &g->g, g->prompt, g->n_tokens));
}

static void gen_release(void *ctx)
{
    struct gen_work *g = ctx;
    wb_generation_clear(&g->g);
    free(g);
}

static void tokens_accept(struct tui *t, void *ctx, const char *text)
{
    (void)ctx;
    long n = parse_count(t, "tokens to generate", text, 1, GEN_MAX_TOKENS);
    if (n < 0)
        return;
    t->gen_tokens = (int)n;
    struct gen_work *g = calloc(1, sizeof *g);
    if (!g) {
        tui_status(t, 1, "out of memory");
        return;
    }
    g->w = t->w;
    snprintf(g->prompt, sizeof g->prompt, "%s", t->gen_prompt);
    g->n_tokens = t->gen_tokens;
    char what[320];
    snprintf(what, sizeof what, "%d tokens after %s%s%s", g->n_tokens,
             g->prompt[0] ? "\"" : "", g->prompt[0] ? g->prompt : "BOS (no prompt)",
             g->prompt[0] ? "\"" : "");
    tui_push(t, dialog_busy_new(t, "Generating: float, then the recipe", what,
                                (struct ui_work){.run = gen_run, .done = gen_done,
                                                 .release = gen_release, .ctx = g,
                                                 .reads_workbench = 1,
                                                 .doing = "generating"}));
}

static void prompt_accept(struct tui *t, void *ctx, const char *text)
{
    (void)ctx;
    snprintf(t->gen_prompt, sizeof t->gen_prompt, "%s", text);
    char init[32];
    snprintf(init, sizeof init, "%d", t->gen_tokens > 0 ? t->gen_tokens : GEN_DEFAULT_TOKENS);
    tui_push(t, prompt_new(t, "Tokens to generate:", init,
                           (struct ui_prompt_cb){.accept = tokens_accept}));
}

void tui_generate(struct tui *t)
{
    if (!tui_is_lm(t)) {
        tui_status(t, 1, "generation needs a language model");
        return;
    }
    if (t->job) {
        tui_status(t, 1, "an evaluation is running");
        return;
    }
    if (!wb_model(t->w)->llm || !wb_model(t->w)->llm->tok) {
        tui_status(t, 1, "%s carries no tokenizer (give --tokenizer FILE)", wb_model(t->w)->name);
        return;
    }
    tui_push(t, prompt_new(t, "Prompt (empty: start from BOS):", t->gen_prompt,
                           (struct ui_prompt_cb){.accept = prompt_accept}));
}
