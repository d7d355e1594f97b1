/* screen_history.c — the History screen: this model's runs, newest first; Enter opens one. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

struct run_metrics {
    double top1, float_top1, kld_mean; /* NAN when the run has none */
    double ppl, float_ppl, same_top;   /* language models */
};

/* Columns; a language model's runs show PPL, its change and the same-top
 * share where a classifier's show top-1 (C_TOP1, C_DELTA; C_SAME). */
enum { C_ID, C_STATUS, C_STARTED, C_RECIPE, C_SIZE, C_BPW, C_TOP1, C_DELTA, C_KLD, C_SAME, C_COUNT };

struct history {
    struct ui_screen base;
    struct tui *t;
    struct ui_table table;
    struct ui_col cols[C_COUNT]; /* history_cols or lm_cols, the delta titled in the theme's glyph */
    char delta_title[16];
    struct qstore_run *runs;
    struct run_metrics *m;     /* per run */
    int n;
    int lm;                    /* a language model's runs */
};

static const struct ui_col history_cols[C_SAME] = {
    [C_ID] = {"Id", 4, 0, UI_RIGHT},
    [C_STATUS] = {"Status", 11, 0, UI_LEFT},
    [C_STARTED] = {"Started", 11, 0, UI_LEFT, 3},
    [C_RECIPE] = {"Recipe", 8, 1, UI_LEFT},
    [C_SIZE] = {"Size", 7, 0, UI_RIGHT},
    [C_BPW] = {"Bits", 5, 0, UI_RIGHT, 2},
    [C_TOP1] = {"Top-1", 6, 0, UI_RIGHT},
    [C_DELTA] = {"", 6, 0, UI_RIGHT}, /* titled at run time */
    [C_KLD] = {"KLD", 7, 0, UI_RIGHT, 1},
};

/* The recipe wants room more than the start time does at 80 columns. */
static const struct ui_col lm_cols[C_COUNT] = {
    [C_ID] = {"Id", 4, 0, UI_RIGHT},
    [C_STATUS] = {"Status", 9, 0, UI_LEFT},
    [C_STARTED] = {"Started", 11, 0, UI_LEFT, 3},
    [C_RECIPE] = {"Recipe", 20, 1, UI_LEFT},
    [C_SIZE] = {"Size", 7, 0, UI_RIGHT},
    [C_BPW] = {"Bits", 5, 0, UI_RIGHT, 2},
    [C_TOP1] = {"PPL", 7, 0, UI_RIGHT},
    [C_DELTA] = {"", 6, 0, UI_RIGHT}, /* titled at run time */
    [C_KLD] = {"KLD", 7, 0, UI_RIGHT, 1},
    [C_SAME] = {"Same%", 6, 0, UI_RIGHT},
};

/* ---- data ------------------------------------------------------------------ */

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static struct run_metrics parse_metrics(const char *json)
{
    struct run_metrics m = {NAN, NAN, NAN, NAN, NAN, NAN};
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    if (!root)
        return m;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "float");
    m.top1 = num(root, "top1");
    m.kld_mean = num(root, "kld_mean");
    m.float_top1 = num(f, "top1");
    m.ppl = num(root, "ppl");
    m.float_ppl = num(f, "ppl");
    m.same_top = num(root, "same_top_pct");
    cJSON_Delete(root);
    return m;
}

static void drop_runs(struct history *h)
{
    qstore_runs_free(h->runs, h->n);
    free(h->m);
    h->runs = NULL;
    h->m = NULL;
    h->n = 0;
}

static int load_runs(struct tui *t, struct history *h)
{
    struct qstore_run *runs = NULL;
    int n = 0;
    qerr e = {{0}};
    if (wb_runs(t->w, 0, 0, &runs, &n, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        return -1;
    }
    struct run_metrics *m = calloc((size_t)(n > 0 ? n : 1), sizeof *m);
    if (!m) {
        qstore_runs_free(runs, n);
        tui_status(t, 1, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        m[i] = parse_metrics(runs[i].metrics_json);
    drop_runs(h);
    h->runs = runs;
    h->m = m;
    h->n = n;
    ui_table_set_rows(&h->table, n);
    return 0;
}

static enum ui_el status_el(const char *st)
{
    if (!st)
        return UI_NORMAL;
    if (strcmp(st, "done") == 0)
        return UI_GOOD;
    if (strcmp(st, "running") == 0)
        return UI_QUANT;
    return UI_BAD;
}

/* Perplexity with four decimals while that fits the column. */
static void fmt_ppl(double ppl, char *buf, size_t size)
{
    ui_fmt_num(ppl, ppl < 100 ? 4 : ppl < 10000 ? 2 : 0, buf, size);
}

/* "+5.44": the change in perplexity against float, in percent. */
static void ppl_change(const struct run_metrics *m, char *buf, size_t size, enum ui_el *el)
{
    double d = m->float_ppl > 0 ? 100.0 * (m->ppl / m->float_ppl - 1.0) : NAN;
    if (isnan(d)) {
        snprintf(buf, size, "-");
        return;
    }
    snprintf(buf, size, fabs(d) < 100 ? "%+.2f" : "%+.0f", d);
    *el = d > 1e-9 ? UI_BAD : UI_GOOD;
}

static void history_cell(void *ctx, int row, int col, char *buf, size_t size, enum ui_el *el)
{
    struct history *h = ctx;
    const struct qstore_run *r = &h->runs[row];
    const struct run_metrics *m = &h->m[row];
    switch (col) {
    case C_ID:
        snprintf(buf, size, "%lld", (long long)r->id);
        break;
    case C_STATUS:
        snprintf(buf, size, "%s", r->status ? r->status : "?");
        *el = status_el(r->status);
        break;
    case C_STARTED:
        ui_fmt_time(r->started_at, "%m-%d %H:%M", buf, size);
        break;
    case C_RECIPE:
        snprintf(buf, size, "%s", r->recipe_text && r->recipe_text[0] ? r->recipe_text : "(float)");
        break;
    case C_SIZE:
        ui_fmt_bytes_short((double)r->size_bytes, buf, size);
        break;
    case C_BPW:
        ui_fmt_num(r->size_bytes > 0 ? r->bits_per_weight : NAN, 2, buf, size);
        break;
    case C_TOP1:
        if (h->lm)
            fmt_ppl(m->ppl, buf, size);
        else
            ui_fmt_num(m->top1, 2, buf, size);
        break;
    case C_DELTA: {
        if (h->lm) {
            ppl_change(m, buf, size, el);
            break;
        }
        double d = m->top1 - m->float_top1;
        if (isnan(d)) {
            snprintf(buf, size, "-");
        } else {
            snprintf(buf, size, "%+.2f", d);
            *el = d < -1e-9 ? UI_BAD : UI_GOOD;
        }
        break;
    }
    case C_KLD:
        if (isnan(m->kld_mean))
            snprintf(buf, size, "-");
        else if (m->kld_mean != 0 && m->kld_mean < 0.001)
            snprintf(buf, size, "%.1e", m->kld_mean);
        else
            snprintf(buf, size, "%.4f", m->kld_mean);
        break;
    case C_SAME:
        ui_fmt_num(m->same_top, 2, buf, size);
        break;
    }
}

/* ---- drawing and keys ---------------------------------------------------------------- */

static void history_draw(struct tui *t, struct ui_screen *s)
{
    struct history *h = (struct history *)s;
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    ui_printf(&t->th, 0, 1, COLS - 2, a, "qlab  History: %s  (%d run%s)", wb_model(t->w)->name,
              h->n, h->n == 1 ? "" : "s");
    ui_print(&t->th, 1, 1, COLS - 2, tui_attr(t, UI_DIM), wb_db_path(t->w) ? wb_db_path(t->w) : "");
    ui_table_draw(&t->th, &h->table, 2, 0, LINES - 4, COLS);
    if (h->n == 0)
        ui_print(&t->th, 3, 2, COLS - 4, tui_attr(t, UI_DIM),
                 "No runs of this model yet: press q, then r on the Model screen.");
}

static int history_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct history *h = (struct history *)s;
    if (ui_table_key(&h->table, ch))
        return 0;
    switch (ch) {
    case '\n':
    case '\r':
    case KEY_ENTER:
    case KEY_RIGHT:
    case 'l':
        if (h->n > 0)
            tui_push(t, screen_run_new(t, h->runs[h->table.cur].id));
        return 0;
    case 'r':
        if (load_runs(t, h) == 0)
            tui_status(t, 0, "%d run%s", h->n, h->n == 1 ? "" : "s");
        return 0;
    case 'q':
    case UI_KEY_ESC:
    case KEY_LEFT:
    case 'h':
        return UI_CLOSE;
    default:
        return UI_UNHANDLED;
    }
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void history_free(struct ui_screen *s)
{
    struct history *h = (struct history *)s;
    if (!h)
        return;
    drop_runs(h);
    free(h);
}

static const struct ui_fkey history_fkeys[] = {
    {"F1", "Help"}, {"Enter", "Details"}, {"r", "Refresh"}, {"q", "Back"},
};

static const struct ui_help history_help[] = {
    {"Up Down j k", "select a run"},
    {"(language model)", "PPL, its change from float in %,"},
    {"", "mean KL divergence, % same top token"},
    {"PgUp PgDn g G", "page up and down, newest and oldest"},
    {"Enter l", "the run's metrics, recipe and tensors"},
    {"r", "reload the runs from the database"},
    {"q Esc h", "back to the Model screen"},
};

static const struct ui_screen_ops history_ops = {
    .name = "History",
    .draw = history_draw,
    .key = history_key,
    .free = history_free,
    .fkeys = history_fkeys,
    .n_fkeys = (int)(sizeof history_fkeys / sizeof history_fkeys[0]),
    .help = history_help,
    .n_help = (int)(sizeof history_help / sizeof history_help[0]),
};

struct ui_screen *screen_history_new(struct tui *t)
{
    struct history *h = calloc(1, sizeof *h);
    if (!h) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    h->base.ops = &history_ops;
    h->t = t;
    h->lm = tui_is_lm(t);
    int n_cols = h->lm ? C_COUNT : C_SAME;
    memcpy(h->cols, h->lm ? lm_cols : history_cols, (size_t)n_cols * sizeof *h->cols);
    snprintf(h->delta_title, sizeof h->delta_title, h->lm ? "%sPPL%%" : "%sTop1",
             t->th.g->delta);
    h->cols[C_DELTA].title = h->delta_title;
    h->table = (struct ui_table){.cols = h->cols, .n_cols = n_cols, .cell = history_cell,
                                 .ctx = h};
    if (load_runs(t, h) < 0) {
        history_free(&h->base);
        return NULL;
    }
    return &h->base;
}
