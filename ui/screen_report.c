/* screen_report.c — a plugin check report: per scheme ok/FAIL, per test case its size, error and pack. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

#define HEADER_LINES 3 /* title, verdict, file */
#define DETAIL_LINES 2

struct rrow {
    const cJSON *scheme;   /* the scheme of the row */
    const cJSON *kase;     /* one of its cases; NULL: the scheme's own row */
};

struct report_screen {
    struct ui_screen base;
    cJSON *r;              /* the report (owned) */
    struct ui_table table;
    struct rrow *rows;
    int n;
    int ok;
    int n_schemes, n_failed;
    char title[256];
};

enum { C_STATUS, C_CASE, C_BPW, C_RMSE, C_PACK, C_MSG, C_COUNT };

static const struct ui_col report_cols[C_COUNT] = {
    [C_STATUS] = {"Status", 7, 0, UI_LEFT},
    [C_CASE] = {"Scheme / case", 19, 1, UI_LEFT},
    [C_BPW] = {"Bits/w", 7, 0, UI_RIGHT},
    [C_RMSE] = {"Rel.RMSE", 8, 0, UI_RIGHT},
    [C_PACK] = {"Pack", 4, 0, UI_LEFT, 1},
    [C_MSG] = {"Message", 10, 3, UI_LEFT},
};

/* ---- the report's fields (checked: it is JSON) ------------------------------------ */

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int is_true(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const char *or_q(const char *s)
{
    return s ? s : "?";
}

static int build_rows(struct report_screen *s)
{
    const cJSON *schemes = cJSON_GetObjectItemCaseSensitive(s->r, "schemes");
    const cJSON *sc, *k;
    int n = 0;
    cJSON_ArrayForEach(sc, schemes)
    {
        n++;
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(sc, "cases"))
            n++;
    }
    s->rows = calloc((size_t)(n > 0 ? n : 1), sizeof *s->rows);
    if (!s->rows)
        return -1;
    cJSON_ArrayForEach(sc, schemes)
    {
        s->n_schemes++;
        s->n_failed += !is_true(sc, "ok");
        s->rows[s->n++] = (struct rrow){.scheme = sc};
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(sc, "cases"))
            s->rows[s->n++] = (struct rrow){.scheme = sc, .kase = k};
    }
    ui_table_set_rows(&s->table, s->n);
    return 0;
}

/* ---- cells ---------------------------------------------------------------------------- */

static void scheme_cell(const cJSON *sc, int col, char *buf, size_t size, enum ui_el *el)
{
    int ok = is_true(sc, "ok");
    const char *msg = str(sc, "message"), *defaults = str(sc, "defaults");
    switch (col) {
    case C_STATUS:
        snprintf(buf, size, "%s", ok ? "ok" : "FAIL");
        *el = ok ? UI_GOOD : UI_BAD;
        break;
    case C_CASE:
        snprintf(buf, size, "%s", or_q(str(sc, "name")));
        *el = UI_QUANT;
        break;
    case C_MSG:
        if (msg) {
            snprintf(buf, size, "%s", msg);
            *el = UI_BAD;
        } else if (defaults && defaults[0]) {
            snprintf(buf, size, "defaults %s", defaults);
            *el = UI_DIM;
        }
        break;
    }
}

static void case_cell(const cJSON *k, int col, char *buf, size_t size, enum ui_el *el)
{
    const char *st = or_q(str(k, "status")), *pack = str(k, "packed");
    double bpw = num(k, "bits_per_weight"), rmse = num(k, "rel_rmse");
    switch (col) {
    case C_STATUS:
        snprintf(buf, size, "%s", st);
        /* refusing an awkward shape with a reason is fine */
        *el = strcmp(st, "ok") == 0 ? UI_GOOD : strcmp(st, "refused") == 0 ? UI_DIM : UI_BAD;
        break;
    case C_CASE:
        snprintf(buf, size, "  %s", or_q(str(k, "case")));
        break;
    case C_BPW:
        ui_fmt_num(bpw, 3, buf, size);
        break;
    case C_RMSE:
        if (isnan(rmse))
            snprintf(buf, size, "-");
        else
            snprintf(buf, size, "%.3g", rmse);
        break;
    case C_PACK:
        snprintf(buf, size, "%s", pack && strcmp(pack, "n/a") != 0 ? pack : "-");
        if (pack && strcmp(pack, "ok") != 0 && strcmp(pack, "n/a") != 0)
            *el = UI_BAD;
        break;
    case C_MSG:
        snprintf(buf, size, "%s", str(k, "message") ? str(k, "message") : "");
        if (strcmp(st, "fail") == 0)
            *el = UI_BAD;
        break;
    }
}

static void report_cell(void *ctx, int row, int col, char *buf, size_t size, enum ui_el *el)
{
    struct report_screen *s = ctx;
    const struct rrow *r = &s->rows[row];
    if (r->kase)
        case_cell(r->kase, col, buf, size, el);
    else
        scheme_cell(r->scheme, col, buf, size, el);
}

/* Everything about the selected row, uncut. */
static void detail_text(const struct report_screen *s, char *buf, size_t size)
{
    buf[0] = 0;
    if (s->n == 0)
        return;
    const struct rrow *r = &s->rows[s->table.cur];
    const char *scheme = or_q(str(r->scheme, "name"));
    if (!r->kase) {
        const char *msg = str(r->scheme, "message"), *defaults = str(r->scheme, "defaults");
        snprintf(buf, size, "%s: %s%s%s%s%s", scheme, is_true(r->scheme, "ok") ? "ok" : "FAIL",
                 defaults ? "; default parameters " : "", defaults ? defaults : "",
                 msg ? "; " : "", msg ? msg : "");
        return;
    }
    const cJSON *k = r->kase;
    const char *msg = str(k, "message"), *pack = str(k, "packed");
    double rows = num(k, "rows"), cols = num(k, "cols"), bpw = num(k, "bits_per_weight");
    int n = snprintf(buf, size, "%s, %s (%.0f x %.0f): %s", scheme, or_q(str(k, "case")), rows,
                     cols, or_q(str(k, "status")));
    if (n > 0 && (size_t)n < size && !isnan(bpw))
        n += snprintf(buf + n, size - (size_t)n, "; %.4f bits/weight, rel. RMSE %.4g, %s",
                      bpw, num(k, "rel_rmse"),
                      is_true(k, "deterministic") ? "deterministic" : "NOT deterministic");
    if (n > 0 && (size_t)n < size && pack)
        n += snprintf(buf + n, size - (size_t)n, "; pack %s", pack);
    if (n > 0 && (size_t)n < size && msg)
        snprintf(buf + n, size - (size_t)n, "; %s", msg);
}

/* ---- drawing and keys ------------------------------------------------------------------ */

static void report_draw(struct tui *t, struct ui_screen *scr)
{
    struct report_screen *s = (struct report_screen *)scr;
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    ui_printf(&t->th, 0, 1, COLS - 2, a, "qlab  Check: %s", s->title);
    const char *error = str(s->r, "error");
    int x;
    if (error) {
        x = ui_kv(&t->th, 1, 1, COLS, NULL, "FAIL", UI_BAD);
        ui_print(&t->th, 1, x, COLS - x - 1, tui_attr(t, UI_NORMAL), "the plugin was refused:");
        ui_print(&t->th, 2, 1, COLS - 2, tui_attr(t, UI_DIM), or_q(str(s->r, "file")));
        ui_wrap(&t->th, HEADER_LINES + 1, 3, COLS - 4, LINES - HEADER_LINES - 3,
                tui_attr(t, UI_BAD), error);
        return;
    }
    char counts[96];
    snprintf(counts, sizeof counts, "%d scheme%s, %d failed", s->n_schemes,
             s->n_schemes == 1 ? "" : "s", s->n_failed);
    x = ui_kv(&t->th, 1, 1, COLS, NULL, s->ok ? "all checks passed" : "checks FAILED",
              s->ok ? UI_GOOD : UI_BAD);
    ui_print(&t->th, 1, x, COLS - x - 1, tui_attr(t, UI_NORMAL), counts);
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(s->r, "plugin");
    const char *sha = str(pl, "sha256");
    ui_printf(&t->th, 2, 1, COLS - 2, tui_attr(t, UI_DIM), "%s%s%.12s", or_q(str(s->r, "file")),
              sha ? "  sha256 " : "", sha ? sha : "");
    int h = LINES - 2 - HEADER_LINES - DETAIL_LINES;
    ui_table_draw(&t->th, &s->table, HEADER_LINES, 0, h, COLS);
    if (s->n == 0)
        ui_print(&t->th, HEADER_LINES + 1, 2, COLS - 4, tui_attr(t, UI_DIM),
                 "The plugin has no schemes.");
    char detail[2048];
    detail_text(s, detail, sizeof detail);
    ui_wrap(&t->th, HEADER_LINES + (h > 0 ? h : 0), 1, COLS - 2, DETAIL_LINES,
            tui_attr(t, UI_LABEL), detail);
}

static int report_key(struct tui *t, struct ui_screen *scr, int ch)
{
    (void)t;
    struct report_screen *s = (struct report_screen *)scr;
    if (ui_table_key(&s->table, ch))
        return 0;
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

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void report_free(struct ui_screen *scr)
{
    struct report_screen *s = (struct report_screen *)scr;
    if (!s)
        return;
    cJSON_Delete(s->r);
    free(s->rows);
    free(s);
}

static const struct ui_fkey report_fkeys[] = {
    {"F1", "Help"}, {"PgUp/PgDn", "Scroll"}, {"q", "Back"},
};

static const struct ui_help report_help[] = {
    {"Up Down j k", "select a scheme or case (details show below)"},
    {"PgUp PgDn g G", "page up and down, first and last row"},
    {"q Esc h", "back to the Plugins screen"},
    {"", "refused: odd shape declined with a reason (fine)"},
    {"", "fail: error, NaN/Inf, size, nondeterminism, crash"},
};

static const struct ui_screen_ops report_ops = {
    .name = "Check report",
    .draw = report_draw,
    .key = report_key,
    .free = report_free,
    .fkeys = report_fkeys,
    .n_fkeys = (int)(sizeof report_fkeys / sizeof report_fkeys[0]),
    .help = report_help,
    .n_help = (int)(sizeof report_help / sizeof report_help[0]),
};

struct ui_screen *screen_report_new(struct tui *t, struct cJSON *report)
{
    struct report_screen *s = report ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        cJSON_Delete(report);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    s->base.ops = &report_ops;
    s->r = report;
    s->table = (struct ui_table){.cols = report_cols, .n_cols = C_COUNT, .cell = report_cell,
                                 .ctx = s};
    if (build_rows(s) < 0) {
        report_free(&s->base);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    s->ok = is_true(report, "ok");
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(report, "plugin");
    if (str(pl, "name"))
        snprintf(s->title, sizeof s->title, "%s %s", str(pl, "name"), or_q(str(pl, "version")));
    else
        snprintf(s->title, sizeof s->title, "%s", or_q(str(report, "file")));
    return &s->base;
}
