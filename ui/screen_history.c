/* screen_history.c — the History screen: this model's runs, sweeps and searches (tabs), newest first; Enter opens one. */
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

enum { TAB_RUNS, TAB_SWEEPS, TAB_SEARCHES, TAB_COUNT };

static const char *const tab_names[TAB_COUNT] = {"Runs", "Sweeps", "Searches"};

enum { SW_ID, SW_STATUS, SW_MODE, SW_GROUPS, SW_METRIC, SW_POINTS, SW_CREATED, SW_COUNT };
enum { SE_ID, SE_SWEEP, SE_BUDGET, SE_FRONT, SE_BPW, SE_PRED, SE_VERIFIED, SE_CREATED, SE_COUNT };

/* What a search's list row lacks, from its front. */
struct search_row {
    int n_front, n_verified;
    double opt_bpw, opt_pred;  /* NAN: no optimum */
};

struct history {
    struct ui_screen base;
    struct tui *t;
    int tab;
    struct ui_table tables[TAB_COUNT]; /* one per tab */
    struct ui_col cols[C_COUNT]; /* history_cols or lm_cols, the delta titled in the theme's glyph */
    char delta_title[16];
    char pred_title[16];
    struct ui_col se_cols[SE_COUNT];
    struct qstore_run *runs;
    struct run_metrics *m;     /* per run */
    int n;
    struct qstore_sweep *sweeps;
    int n_sweeps;
    struct qstore_search *searches;
    struct search_row *srow;   /* per search */
    int n_searches;
    int lm;                    /* a language model's runs */
    int covered;               /* another screen was on top at the last tick */
};

static const struct ui_col sweep_cols[SW_COUNT] = {
    [SW_ID] = {"Id", 4, 0, UI_RIGHT},
    [SW_STATUS] = {"Status", 11, 0, UI_LEFT},
    [SW_MODE] = {"Mode", 4, 0, UI_LEFT},
    [SW_GROUPS] = {"Groups", 8, 0, UI_LEFT},
    [SW_METRIC] = {"Metric", 13, 1, UI_LEFT},
    [SW_POINTS] = {"Points", 11, 0, UI_RIGHT},
    [SW_CREATED] = {"Created", 11, 0, UI_LEFT, 1},
};

static const struct ui_col search_cols[SE_COUNT] = {
    [SE_ID] = {"Id", 4, 0, UI_RIGHT},
    [SE_SWEEP] = {"Sweep", 5, 0, UI_RIGHT},
    [SE_BUDGET] = {"Budget", 9, 1, UI_LEFT},
    [SE_FRONT] = {"Front", 5, 0, UI_RIGHT},
    [SE_BPW] = {"Opt.bits", 8, 0, UI_RIGHT},
    [SE_PRED] = {"", 11, 0, UI_RIGHT}, /* titled at run time */
    [SE_VERIFIED] = {"Verified", 8, 0, UI_RIGHT, 2},
    [SE_CREATED] = {"Created", 11, 0, UI_LEFT, 1},
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
    ui_table_set_rows(&h->tables[TAB_RUNS], n);
    return 0;
}

static void drop_sweeps(struct history *h)
{
    qstore_sweeps_free(h->sweeps, h->n_sweeps);
    qstore_searches_free(h->searches, h->n_searches);
    free(h->srow);
    h->sweeps = NULL;
    h->searches = NULL;
    h->srow = NULL;
    h->n_sweeps = h->n_searches = 0;
}

/* Bits per weight of a search's points: over every weight of its sweep's model. */
static int64_t sweep_numel(struct tui *t, const struct history *h, int64_t sweep_id)
{
    for (int i = 0; i < h->n_sweeps; i++)
        if (h->sweeps[i].id == sweep_id)
            return h->sweeps[i].total_numel;
    struct qstore_sweep *sw;
    qerr e;
    int64_t n = 0;
    if (qstore_sweep_get(wb_store(t->w), sweep_id, &sw, &e) == 0) {
        n = sw->total_numel;
        qstore_sweep_free(sw);
    }
    return n;
}

static struct search_row search_row(struct tui *t, const struct history *h, int64_t id)
{
    struct search_row r = {0, 0, NAN, NAN};
    struct qstore_search *se;
    qerr e;
    if (qstore_search_get(wb_store(t->w), id, &se, &e) < 0)
        return r;
    int64_t numel = sweep_numel(t, h, se->sweep_id);
    r.n_front = se->n_points;
    for (int i = 0; i < se->n_points; i++) {
        const struct qstore_search_point *p = &se->points[i];
        r.n_verified += p->run_id > 0;
        if (p->is_optimum) {
            r.opt_bpw = numel > 0 ? (double)p->bits / (double)numel : NAN;
            r.opt_pred = p->predicted;
        }
    }
    qstore_search_free(se);
    return r;
}

static int load_sweeps(struct tui *t, struct history *h)
{
    struct qstore_sweep *sw = NULL;
    struct qstore_search *se = NULL;
    int nw = 0, ns = 0;
    qerr e = {{0}};
    if (wb_sweeps(t->w, 0, 0, &sw, &nw, &e) < 0 || wb_searches(t->w, 0, 0, &se, &ns, &e) < 0) {
        qstore_sweeps_free(sw, nw);
        tui_status(t, 1, "%s", e.msg);
        return -1;
    }
    struct search_row *rows = calloc((size_t)(ns > 0 ? ns : 1), sizeof *rows);
    if (!rows) {
        qstore_sweeps_free(sw, nw);
        qstore_searches_free(se, ns);
        tui_status(t, 1, "out of memory");
        return -1;
    }
    drop_sweeps(h);
    h->sweeps = sw;
    h->n_sweeps = nw;
    for (int i = 0; i < ns; i++)
        rows[i] = search_row(t, h, se[i].id);
    h->searches = se;
    h->srow = rows;
    h->n_searches = ns;
    ui_table_set_rows(&h->tables[TAB_SWEEPS], nw);
    ui_table_set_rows(&h->tables[TAB_SEARCHES], ns);
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

static void sweep_cell(void *ctx, int row, int col, char *buf, size_t size, enum ui_el *el)
{
    struct history *h = ctx;
    const struct qstore_sweep *w = &h->sweeps[row];
    switch (col) {
    case SW_ID:
        snprintf(buf, size, "%lld", (long long)w->id);
        break;
    case SW_STATUS:
        snprintf(buf, size, "%s", w->status ? w->status : "?");
        *el = status_el(w->status);
        break;
    case SW_MODE:
        snprintf(buf, size, "%s", w->mode ? w->mode : "");
        break;
    case SW_GROUPS:
        snprintf(buf, size, "%s", w->grouping ? w->grouping : "");
        break;
    case SW_METRIC:
        snprintf(buf, size, "%s", w->metric ? w->metric : "");
        break;
    case SW_POINTS:
        snprintf(buf, size, "%lld/%lld", (long long)(w->n_done + w->n_failed),
                 (long long)w->n_groups * w->n_schemes);
        if (w->n_failed)
            *el = UI_BAD;
        break;
    case SW_CREATED:
        ui_fmt_time(w->created_at, "%m-%d %H:%M", buf, size);
        break;
    }
}

static void search_cell(void *ctx, int row, int col, char *buf, size_t size, enum ui_el *el)
{
    struct history *h = ctx;
    const struct qstore_search *se = &h->searches[row];
    const struct search_row *r = &h->srow[row];
    switch (col) {
    case SE_ID:
        snprintf(buf, size, "%lld", (long long)se->id);
        break;
    case SE_SWEEP:
        snprintf(buf, size, "%lld", (long long)se->sweep_id);
        break;
    case SE_BUDGET:
        snprintf(buf, size, "%s", se->budget_text ? se->budget_text : "");
        break;
    case SE_FRONT:
        snprintf(buf, size, "%d", r->n_front);
        break;
    case SE_BPW:
        ui_fmt_num(r->opt_bpw, 4, buf, size);
        *el = UI_VALUE;
        break;
    case SE_PRED:
        if (isnan(r->opt_pred))
            snprintf(buf, size, "-");
        else
            snprintf(buf, size, "%.4g", r->opt_pred);
        break;
    case SE_VERIFIED:
        snprintf(buf, size, "%d", r->n_verified);
        *el = r->n_verified ? UI_GOOD : UI_DIM;
        break;
    case SE_CREATED:
        ui_fmt_time(se->created_at, "%m-%d %H:%M", buf, size);
        break;
    }
}

/* ---- drawing and keys ---------------------------------------------------------------- */

static struct ui_table *current(struct history *h)
{
    return &h->tables[h->tab];
}

/* " Runs (3)  Sweeps (1)  Searches (2) ", the current one highlighted */
static void draw_tabs(struct tui *t, const struct history *h, int y)
{
    int counts[TAB_COUNT] = {h->n, h->n_sweeps, h->n_searches};
    int x = 1;
    for (int i = 0; i < TAB_COUNT; i++) {
        char label[48];
        snprintf(label, sizeof label, " %s (%d) ", tab_names[i], counts[i]);
        x += ui_print(&t->th, y, x, COLS - x, tui_attr(t, i == h->tab ? UI_CURSOR : UI_LABEL),
                      label) + 1;
    }
    const char *db = wb_db_path(t->w) ? wb_db_path(t->w) : "";
    int w = ui_width(db);
    if (x + 2 < COLS - 1)
        ui_print(&t->th, y, w < COLS - x - 2 ? COLS - 1 - w : x + 2, COLS - x - 3,
                 tui_attr(t, UI_DIM), db);
}

static void history_draw(struct tui *t, struct ui_screen *s)
{
    struct history *h = (struct history *)s;
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    ui_printf(&t->th, 0, 1, COLS - 2, a, "qlab  History: %s  (%d run%s, %d sweep%s, %d search%s)",
              wb_model(t->w)->name, h->n, h->n == 1 ? "" : "s", h->n_sweeps,
              h->n_sweeps == 1 ? "" : "s", h->n_searches, h->n_searches == 1 ? "" : "es");
    draw_tabs(t, h, 1);
    struct ui_table *tb = current(h);
    ui_table_draw(&t->th, tb, 2, 0, LINES - 4, COLS);
    static const char *const empty[TAB_COUNT] = {
        "No runs of this model yet: press q, then r on the Model screen.",
        "No sweeps of this model yet: press q, then n on the Model screen.",
        "No searches yet: p on a sweep (here or on the Sweep screen) makes one.",
    };
    if (tb->n_rows == 0)
        ui_print(&t->th, 3, 2, COLS - 4, tui_attr(t, UI_DIM), empty[h->tab]);
}

static void open_row(struct tui *t, struct history *h)
{
    struct ui_table *tb = current(h);
    if (tb->n_rows == 0)
        return;
    if (h->tab == TAB_RUNS)
        tui_push(t, screen_run_new(t, h->runs[tb->cur].id));
    else if (h->tab == TAB_SWEEPS)
        tui_open_sweep(t, h->sweeps[tb->cur].id, UI_SWEEP_SHOW);
    else
        tui_push(t, screen_pareto_new(t, h->searches[tb->cur].id));
}

static int history_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct history *h = (struct history *)s;
    if (ui_table_key(current(h), ch))
        return 0;
    switch (ch) {
    case '\n':
    case '\r':
    case KEY_ENTER:
    case KEY_RIGHT:
    case 'l':
        open_row(t, h);
        return 0;
    case 't':
    case '\t':
        h->tab = (h->tab + 1) % TAB_COUNT;
        return 0;
    case KEY_BTAB:
        h->tab = (h->tab + TAB_COUNT - 1) % TAB_COUNT;
        return 0;
    case 'R':
    case 'p':
        if (h->tab != TAB_SWEEPS || h->n_sweeps == 0) {
            tui_status(t, 1, "%c works on a sweep: t shows the Sweeps tab", ch);
            return 0;
        }
        if (ch == 'R')
            tui_open_sweep(t, h->sweeps[current(h)->cur].id, UI_SWEEP_RESUME);
        else
            tui_search(t, h->sweeps[current(h)->cur].id);
        return 0;
    case 'r':
        if (load_runs(t, h) == 0 && load_sweeps(t, h) == 0)
            tui_status(t, 0, "%d run%s, %d sweep%s, %d search%s", h->n, h->n == 1 ? "" : "s",
                       h->n_sweeps, h->n_sweeps == 1 ? "" : "s", h->n_searches,
                       h->n_searches == 1 ? "" : "es");
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

/* Back on top after another screen (a sweep, a search, a run): what they
 * stored shows without r. Never while covered: a worker may hold the
 * workbench then. */
static int history_tick(struct tui *t, struct ui_screen *s)
{
    struct history *h = (struct history *)s;
    int top = t->depth > 0 && t->stack[t->depth - 1] == s;
    if (top && h->covered && !t->busy && !t->job) {
        load_runs(t, h);
        load_sweeps(t, h);
    }
    h->covered = !top;
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

static void history_free(struct ui_screen *s)
{
    struct history *h = (struct history *)s;
    if (!h)
        return;
    drop_runs(h);
    drop_sweeps(h);
    free(h);
}

static const struct ui_fkey history_fkeys[] = {
    {"F1", "Help"}, {"Enter", "Open"}, {"t", "Tab"}, {"r", "Refresh"}, {"R", "Resume"},
    {"p", "Search"}, {"q", "Back"},
};

static const struct ui_help history_help[] = {
    {"t Tab / S-Tab", "next / previous tab: Runs, Sweeps, Searches"},
    {"Up Down j k", "select a run, a sweep or a search"},
    {"(language model)", "PPL, its change from float in %,"},
    {"", "mean KL divergence, % same top token"},
    {"PgUp PgDn g G", "page up and down, newest and oldest"},
    {"Enter l", "a run: its metrics, recipe and tensors;"},
    {"", "a sweep: its heatmap; a search: its Pareto chart"},
    {"R", "resume the sweep (interrupted or cancelled)"},
    {"p", "search the sweep within a budget"},
    {"r", "reload from the database"},
    {"q Esc h", "back to the Model screen"},
};

static const struct ui_screen_ops history_ops = {
    .name = "History",
    .draw = history_draw,
    .key = history_key,
    .tick = history_tick,
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
    h->tables[TAB_RUNS] = (struct ui_table){.cols = h->cols, .n_cols = n_cols, .cell = history_cell,
                                 .ctx = h};
    memcpy(h->se_cols, search_cols, sizeof h->se_cols);
    snprintf(h->pred_title, sizeof h->pred_title, "Opt.%s", t->th.g->delta);
    h->se_cols[SE_PRED].title = h->pred_title;
    h->tables[TAB_SWEEPS] = (struct ui_table){.cols = sweep_cols, .n_cols = SW_COUNT,
                                              .cell = sweep_cell, .ctx = h};
    h->tables[TAB_SEARCHES] = (struct ui_table){.cols = h->se_cols, .n_cols = SE_COUNT,
                                                .cell = search_cell, .ctx = h};
    if (load_runs(t, h) < 0) {
        history_free(&h->base);
        return NULL;
    }
    load_sweeps(t, h); /* a failure is in the status line; the runs still show */
    return &h->base;
}
