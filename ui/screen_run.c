/* screen_run.c — one run in detail: status, recipe, metrics against float, and its tensors. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

#define HEADER_LINES 6    /* title, status, recipe, size, two lines of metrics */
#define LM_HEADER_LINES 7 /* three lines of metrics */

struct run_screen {
    struct ui_screen base;
    struct ui_table table;
    struct qstore_run *run;
    char **params;            /* per tensor: "k=v,..." from its params_json */
    cJSON *metrics;           /* parsed metrics_json, or NULL */
    int lm;                   /* a language model's run (kind "lm") */
};

enum { C_NAME, C_SCHEME, C_PARAMS, C_BYTES, C_BPW, C_MSE, C_SQNR, C_COUNT };

static const struct ui_col run_cols[C_COUNT] = {
    [C_NAME] = {"Tensor", 10, 2, UI_LEFT},
    [C_SCHEME] = {"Scheme", 6, 0, UI_LEFT},
    [C_PARAMS] = {"Params", 8, 3, UI_LEFT},
    [C_BYTES] = {"Bytes", 7, 0, UI_RIGHT},
    [C_BPW] = {"Bits", 5, 0, UI_RIGHT},
    [C_MSE] = {"MSE", 8, 0, UI_RIGHT, 1},
    [C_SQNR] = {"SQNR", 5, 0, UI_RIGHT},
};

/* A language model's names are long ("blk.10.attn_output.weight"). */
static const struct ui_col lm_run_cols[C_COUNT] = {
    [C_NAME] = {"Tensor", 24, 2, UI_LEFT},
    [C_SCHEME] = {"Scheme", 6, 0, UI_LEFT},
    [C_PARAMS] = {"Params", 8, 1, UI_LEFT},
    [C_BYTES] = {"Bytes", 7, 0, UI_RIGHT},
    [C_BPW] = {"Bits", 5, 0, UI_RIGHT},
    [C_MSE] = {"MSE", 8, 0, UI_RIGHT, 1},
    [C_SQNR] = {"SQNR", 5, 0, UI_RIGHT},
};

/* ---- data ------------------------------------------------------------------ */

/* {"bits":4,"symmetric":true} -> "bits=4,symmetric=true"; malloc'd. */
static char *params_text(const char *json)
{
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    char buf[1024];
    size_t used = 0;
    buf[0] = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root)
    {
        char v[256];
        if (cJSON_IsString(it))
            snprintf(v, sizeof v, "%s", it->valuestring);
        else if (cJSON_IsBool(it))
            snprintf(v, sizeof v, "%s", cJSON_IsTrue(it) ? "true" : "false");
        else if (cJSON_IsNumber(it))
            snprintf(v, sizeof v, "%g", it->valuedouble);
        else
            snprintf(v, sizeof v, "?");
        int k = snprintf(buf + used, sizeof buf - used, "%s%s=%s", used ? "," : "",
                         it->string ? it->string : "?", v);
        if (k < 0 || (size_t)k >= sizeof buf - used)
            break;
        used += (size_t)k;
    }
    cJSON_Delete(root);
    return strdup(buf);
}

static double metric(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void run_cell(void *ctx, int row, int col, char *buf, size_t size, enum ui_el *el)
{
    struct run_screen *r = ctx;
    const struct qstore_tensor *tn = &r->run->tensors[row];
    int is_float = !tn->scheme || strcmp(tn->scheme, "float") == 0;
    switch (col) {
    case C_NAME:
        snprintf(buf, size, "%s", tn->name ? tn->name : "?");
        break;
    case C_SCHEME:
        snprintf(buf, size, "%s", tn->scheme ? tn->scheme : "?");
        *el = is_float ? UI_FLOAT : UI_QUANT;
        break;
    case C_PARAMS:
        snprintf(buf, size, "%s", r->params[row] ? r->params[row] : "");
        *el = UI_DIM;
        break;
    case C_BYTES:
        ui_fmt_bytes_short((double)tn->bytes, buf, size);
        break;
    case C_BPW:
        ui_fmt_num(tn->bits_per_weight, 2, buf, size);
        break;
    case C_MSE:
        if (tn->has_error)
            snprintf(buf, size, "%.2e", tn->mse);
        else
            snprintf(buf, size, "-");
        break;
    case C_SQNR:
        if (!tn->has_error)
            snprintf(buf, size, "-");
        else if (isinf(tn->sqnr_db))
            snprintf(buf, size, "inf");
        else
            ui_fmt_num(tn->sqnr_db, 1, buf, size);
        break;
    }
}

/* ---- drawing ------------------------------------------------------------------------ */

/* "98.33 (float 98.61, Δ -0.28)"; returns the next column. */
static int draw_metric(struct tui *t, int y, int x, const char *label, double q, double f,
                       int decimals, int higher_better)
{
    char qs[32], fs[32], rest[96];
    ui_fmt_num(q, decimals, qs, sizeof qs);
    ui_fmt_num(f, decimals, fs, sizeof fs);
    int worse = (q - f) * (higher_better ? 1 : -1) < -1e-9;
    x = ui_kv(&t->th, y, x, COLS, label, qs, isnan(q) ? UI_VALUE : worse ? UI_BAD : UI_GOOD) - 1;
    if (isnan(f) || x >= COLS)
        return x + 2;
    if (isnan(q))
        snprintf(rest, sizeof rest, "(float %s)", fs);
    else
        snprintf(rest, sizeof rest, "(float %s, %s %+.*f)", fs, t->th.g->delta, decimals, q - f);
    x += ui_print(&t->th, y, x, COLS - x, tui_attr(t, UI_DIM), rest);
    return x + 2;
}

/* "label 1.23%" (or "-"); returns the next column. */
static int kv_pct(struct tui *t, int y, int x, const char *label, double v, int decimals,
                  const char *sign)
{
    char s[64];
    if (isnan(v))
        snprintf(s, sizeof s, "-");
    else
        snprintf(s, sizeof s, sign[0] ? "%+.*f%%" : "%.*f%%", decimals, v);
    return ui_kv(&t->th, y, x, COLS, label, s, UI_VALUE);
}

static int kv_num(struct tui *t, int y, int x, const char *label, double v, int decimals)
{
    char s[64];
    ui_fmt_num(v, decimals, s, sizeof s);
    return ui_kv(&t->th, y, x, COLS, label, s, UI_VALUE);
}

/* Perplexity against float, the KL divergence, the top token and the
 * probability of the right one: three lines from y. */
static void draw_lm_metrics(struct tui *t, const cJSON *m, int y)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(m, "float");
    int x = draw_metric(t, y, 1, "PPL", metric(m, "ppl"), metric(f, "ppl"), 4, 0);
    x = kv_num(t, y, x, "err", metric(m, "ppl_err"), 4);
    kv_num(t, y, x, "ln ratio", metric(m, "ln_ppl_ratio"), 6);
    y++;
    x = kv_num(t, y, 1, "KLD mean", metric(m, "kld_mean"), 6);
    x = kv_num(t, y, x, "median", metric(m, "kld_median"), 6);
    x = kv_num(t, y, x, "p99", metric(m, "kld_p99"), 6);
    kv_num(t, y, x, "max", metric(m, "kld_max"), 6);
    y++;
    char dp[16];
    snprintf(dp, sizeof dp, "%sp mean", t->th.g->delta);
    x = kv_pct(t, y, 1, "same top", metric(m, "same_top_pct"), 3, "");
    x = kv_pct(t, y, x, dp, metric(m, "dp_mean"), 3, "+");
    x = kv_pct(t, y, x, "rms", metric(m, "dp_rms"), 3, "");
    x = kv_num(t, y, x, "ctx", metric(m, "n_ctx"), 0);
    kv_num(t, y, x, "chunks", metric(m, "n_chunks"), 0);
}

static void draw_header(struct tui *t, const struct run_screen *r)
{
    const struct qstore_run *run = r->run;
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    ui_printf(&t->th, 0, 1, COLS - 2, a, "qlab  Run #%lld: %s", (long long)run->id,
              run->model_name ? run->model_name : "?");
    char v[128];
    int y = 1;
    int x = ui_kv(&t->th, y, 1, COLS, "status", run->status ? run->status : "?",
                  run->status && strcmp(run->status, "done") == 0 ? UI_GOOD : UI_BAD);
    ui_fmt_time(run->started_at, "%Y-%m-%d %H:%M:%S", v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "started", v, UI_VALUE);
    snprintf(v, sizeof v, "%.2f s", run->elapsed_s);
    x = ui_kv(&t->th, y, x, COLS, "elapsed", v, UI_VALUE);
    snprintf(v, sizeof v, "%lld", (long long)run->n_samples);
    ui_kv(&t->th, y, x, COLS, r->lm ? "tokens" : "samples", v, UI_VALUE);
    y++;
    ui_kv(&t->th, y++, 1, COLS - 1, "recipe",
          run->recipe_text && run->recipe_text[0] ? run->recipe_text : "(none: float)", UI_QUANT);
    char sb[32], fb[32];
    ui_fmt_bytes((double)run->size_bytes, sb, sizeof sb);
    ui_fmt_bytes((double)run->float_bytes, fb, sizeof fb);
    x = ui_kv(&t->th, y, 1, COLS, "size", sb, UI_VALUE);
    x = ui_kv(&t->th, y, x, COLS, "of float", fb, UI_VALUE);
    snprintf(v, sizeof v, "%.2f", run->bits_per_weight);
    x = ui_kv(&t->th, y, x, COLS, "bits/weight", v, UI_VALUE);
    snprintf(v, sizeof v, "%.3f",
             run->float_bytes > 0 ? (double)run->size_bytes / (double)run->float_bytes : NAN);
    ui_kv(&t->th, y, x, COLS, "ratio", v, UI_VALUE);
    y++;
    if (run->error && run->error[0]) {
        ui_wrap(&t->th, y, 1, COLS - 2, 2, tui_attr(t, UI_BAD), run->error);
        return;
    }
    if (!r->metrics) {
        ui_print(&t->th, y, 1, COLS - 2, tui_attr(t, UI_DIM), "no metrics recorded");
        return;
    }
    if (r->lm) {
        draw_lm_metrics(t, r->metrics, y);
        return;
    }
    const cJSON *m = r->metrics, *f = cJSON_GetObjectItemCaseSensitive(m, "float");
    x = draw_metric(t, y, 1, "top-1", metric(m, "top1"), metric(f, "top1"), 2, 1);
    draw_metric(t, y, x, "top-5", metric(m, "top5"), metric(f, "top5"), 2, 1);
    y++;
    x = draw_metric(t, y, 1, "CE", metric(m, "cross_entropy"), metric(f, "cross_entropy"), 4, 0);
    ui_fmt_num(metric(m, "top1_agreement"), 2, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "agree", v, UI_VALUE);
    ui_fmt_num(metric(m, "kld_mean"), 5, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "KLD", v, UI_VALUE);
    ui_fmt_num(metric(m, "kld_max"), 4, v, sizeof v);
    ui_kv(&t->th, y, x, COLS, "max", v, UI_VALUE);
}

static void run_draw(struct tui *t, struct ui_screen *s)
{
    struct run_screen *r = (struct run_screen *)s;
    int y = r->lm ? LM_HEADER_LINES : HEADER_LINES;
    draw_header(t, r);
    ui_table_draw(&t->th, &r->table, y, 0, LINES - 2 - y, COLS);
    if (r->run->n_tensors == 0)
        ui_print(&t->th, y + 1, 2, COLS - 4, tui_attr(t, UI_DIM),
                 "No tensor rows were recorded for this run.");
}

/* ---- keys ------------------------------------------------------------------------------- */

/* The selected tensor's full parameters and other errors, in the status line. */
static void describe(struct tui *t, const struct run_screen *r)
{
    if (r->run->n_tensors == 0)
        return;
    int i = r->table.cur;
    const struct qstore_tensor *tn = &r->run->tensors[i];
    if (tn->has_error)
        tui_status(t, 0, "%s: %s %s  cosine %.6f  max|err| %.3g", tn->name, tn->scheme,
                   r->params[i] ? r->params[i] : "", tn->cosine, tn->max_abs);
    else
        tui_status(t, 0, "%s: %s %s %s", tn->name, tn->scheme, tn->shape ? tn->shape : "",
                   tn->op ? tn->op : "");
}

static int run_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct run_screen *r = (struct run_screen *)s;
    if (ui_table_key(&r->table, ch)) {
        describe(t, r);
        return 0;
    }
    switch (ch) {
    case 'q':
    case UI_KEY_ESC:
    case KEY_LEFT:
    case 'h':
        return UI_CLOSE;
    default:
        return UI_UNHANDLED;
    }
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void run_free(struct ui_screen *s)
{
    struct run_screen *r = (struct run_screen *)s;
    if (!r)
        return;
    if (r->params && r->run)
        for (int i = 0; i < r->run->n_tensors; i++)
            free(r->params[i]);
    free(r->params);
    cJSON_Delete(r->metrics);
    qstore_run_free(r->run);
    free(r);
}

static const struct ui_fkey run_fkeys[] = {
    {"F1", "Help"}, {"Up/Dn", "Tensor"}, {"q", "Back"},
};

static const struct ui_help run_help[] = {
    {"Up Down j k", "select a tensor (its details go to the status line)"},
    {"PgUp PgDn g G", "page up and down, first and last tensor"},
    {"q Esc h", "back to History"},
};

static const struct ui_screen_ops run_ops = {
    .name = "Run",
    .draw = run_draw,
    .key = run_key,
    .free = run_free,
    .fkeys = run_fkeys,
    .n_fkeys = (int)(sizeof run_fkeys / sizeof run_fkeys[0]),
    .help = run_help,
    .n_help = (int)(sizeof run_help / sizeof run_help[0]),
};

struct ui_screen *screen_run_new(struct tui *t, int64_t run_id)
{
    struct run_screen *r = calloc(1, sizeof *r);
    if (!r) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    r->base.ops = &run_ops;
    qerr e = {{0}};
    if (wb_run(t->w, run_id, &r->run, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        run_free(&r->base);
        return NULL;
    }
    int n = r->run->n_tensors;
    r->params = calloc((size_t)(n > 0 ? n : 1), sizeof *r->params);
    if (!r->params) {
        tui_status(t, 1, "out of memory");
        run_free(&r->base);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        r->params[i] = params_text(r->run->tensors[i].params_json);
    r->metrics = r->run->metrics_json ? cJSON_Parse(r->run->metrics_json) : NULL;
    r->lm = r->run->kind && strcmp(r->run->kind, "lm") == 0;
    r->table = (struct ui_table){.cols = r->lm ? lm_run_cols : run_cols, .n_cols = C_COUNT,
                                 .cell = run_cell, .ctx = r};
    ui_table_set_rows(&r->table, n);
    return &r->base;
}
