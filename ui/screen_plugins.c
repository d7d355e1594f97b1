/* screen_plugins.c — the Plugins screen: loaded plugins, their schemes and parameters, refused files. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/plugin_check.h"
#include "ui.h"

enum row_kind { R_PLUGIN, R_FILE, R_SCHEME, R_PARAM, R_REFUSED_HEAD, R_REFUSED, R_NONE };

struct prow {
    enum row_kind kind;
    int plugin, scheme, param;   /* indexes (as far as the kind has them) */
    int refused;                 /* R_REFUSED: index into refused[] */
};

struct plugins_screen {
    struct ui_screen base;
    struct tui *t;
    struct ui_table list;        /* scroll state only: rows are drawn here */
    struct prow *rows;
    int n;
};

/* Columns of a parameter row; the header row uses the same. */
#define IND_PARAM 4
#define NAME_W 14
#define TYPE_W 5
#define RANGE_W 20
#define DEF_W 9
#define DETAIL_LINES 2

static const char *const type_names[QLAB_PARAM_TYPE_COUNT] = {
    [QLAB_PARAM_INT] = "int", [QLAB_PARAM_FLOAT] = "float", [QLAB_PARAM_BOOL] = "bool",
    [QLAB_PARAM_ENUM] = "enum"};

/* ---- rows ------------------------------------------------------------------------ */

static const struct qlab_plugin *desc_of(const struct plugins_screen *p, int plugin)
{
    return wb_plugins(p->t->w)->plugins[plugin]->desc;
}

static int build_rows(struct plugins_screen *p)
{
    const struct qplugin_host *h = wb_plugins(p->t->w);
    int n = h->n_plugins == 0; /* "no plugins" */
    for (int i = 0; i < h->n_plugins; i++) {
        const struct qlab_plugin *d = h->plugins[i]->desc;
        n += 2 + (int)d->n_schemes;
        for (uint32_t s = 0; s < d->n_schemes; s++)
            n += (int)d->schemes[s]->n_params;
    }
    n += h->n_refused ? 1 + h->n_refused : 0;
    p->rows = calloc((size_t)n, sizeof *p->rows);
    if (!p->rows)
        return -1;
    if (h->n_plugins == 0)
        p->rows[p->n++] = (struct prow){.kind = R_NONE, .plugin = -1};
    for (int i = 0; i < h->n_plugins; i++) {
        const struct qlab_plugin *d = h->plugins[i]->desc;
        p->rows[p->n++] = (struct prow){.kind = R_PLUGIN, .plugin = i};
        p->rows[p->n++] = (struct prow){.kind = R_FILE, .plugin = i};
        for (uint32_t s = 0; s < d->n_schemes; s++) {
            p->rows[p->n++] = (struct prow){.kind = R_SCHEME, .plugin = i, .scheme = (int)s};
            for (uint32_t k = 0; k < d->schemes[s]->n_params; k++)
                p->rows[p->n++] = (struct prow){.kind = R_PARAM, .plugin = i, .scheme = (int)s,
                                                .param = (int)k};
        }
    }
    if (h->n_refused)
        p->rows[p->n++] = (struct prow){.kind = R_REFUSED_HEAD, .plugin = -1};
    for (int i = 0; i < h->n_refused; i++)
        p->rows[p->n++] = (struct prow){.kind = R_REFUSED, .plugin = -1, .refused = i};
    ui_table_set_rows(&p->list, p->n);
    return 0;
}

/* ---- parameter text ------------------------------------------------------------------ */

static void range_text(const struct qlab_param *q, char *buf, size_t size)
{
    switch (q->type) {
    case QLAB_PARAM_INT:
        snprintf(buf, size, "%.0f..%.0f", q->min, q->max);
        break;
    case QLAB_PARAM_FLOAT:
        snprintf(buf, size, "%g..%g", q->min, q->max);
        break;
    case QLAB_PARAM_BOOL:
        snprintf(buf, size, "true|false");
        break;
    default: {
        size_t used = 0;
        buf[0] = 0;
        for (int i = 0; q->choices && q->choices[i] && used < size; i++) {
            int k = snprintf(buf + used, size - used, "%s%s", i ? "|" : "", q->choices[i]);
            if (k < 0)
                break;
            used += (size_t)k;
        }
    }
    }
}

static void default_text(const struct qlab_param *q, char *buf, size_t size)
{
    struct qlab_value v = {.i = (int64_t)q->def, .f = q->def};
    qparam_format_value(q, &v, buf, size);
}

static const char *type_name(const struct qlab_param *q)
{
    unsigned k = (unsigned)q->type;
    return k < QLAB_PARAM_TYPE_COUNT && type_names[k] ? type_names[k] : "?";
}

/* ---- drawing ---------------------------------------------------------------------- */

/* One column of a parameter row (or the header); returns the next x. */
static int column(const struct tui *t, int y, int x, int w, attr_t a, const char *s)
{
    int room = COLS - 1 - x;
    if (w > room)
        w = room;
    if (w > 0)
        ui_cell(&t->th, y, x, w, a, UI_LEFT, s);
    return x + (w > 0 ? w : 0) + 1;
}

static void draw_header(struct tui *t, int y)
{
    attr_t a = tui_attr(t, UI_TABLE_HEAD);
    ui_fill(y, 0, COLS, a);
    int x = column(t, y, 1, IND_PARAM - 1 + NAME_W, a, "Plugin / scheme");
    x = column(t, y, x, TYPE_W, a, "Type");
    x = column(t, y, x, RANGE_W, a, "Range/choices");
    x = column(t, y, x, DEF_W, a, "Default");
    column(t, y, x, COLS - 1 - x, a, "Description");
}

/* The row's element, or the cursor's when the row is selected. */
static attr_t row_attr(const struct tui *t, int sel, enum ui_el el)
{
    return tui_attr(t, sel ? UI_CURSOR : el);
}

static void draw_row(struct tui *t, const struct plugins_screen *p, int row, int y)
{
    const struct prow *r = &p->rows[row];
    const struct qplugin_host *h = wb_plugins(t->w);
    int sel = row == p->list.cur;
    ui_fill(y, 0, COLS, row_attr(t, sel, UI_NORMAL));
    switch (r->kind) {
    case R_NONE:
        ui_print(&t->th, y, 1, COLS - 2, row_attr(t, sel, UI_DIM),
                 "No plugins found (build them with make, or give --plugin FILE.so).");
        break;
    case R_PLUGIN: {
        const struct qlab_plugin *d = desc_of(p, r->plugin);
        int x = 1 + ui_printf(&t->th, y, 1, COLS - 2, row_attr(t, sel, UI_VALUE), "%s %s",
                              d->name, d->version);
        x += 2;
        if (x < COLS - 1)
            ui_print(&t->th, y, x, COLS - 1 - x, row_attr(t, sel, UI_NORMAL), d->description);
        break;
    }
    case R_FILE:
        ui_printf(&t->th, y, 3, COLS - 4, row_attr(t, sel, UI_DIM), "file %s",
                  h->plugins[r->plugin]->path);
        break;
    case R_SCHEME: {
        const struct qlab_scheme *s = desc_of(p, r->plugin)->schemes[r->scheme];
        /* the description starts under "Type" */
        int x = column(t, y, 3, IND_PARAM - 3 + NAME_W, row_attr(t, sel, UI_QUANT), s->name);
        if (x < COLS - 1)
            ui_print(&t->th, y, x, COLS - 1 - x, row_attr(t, sel, UI_NORMAL), s->description);
        break;
    }
    case R_PARAM: {
        const struct qlab_param *q = &desc_of(p, r->plugin)->schemes[r->scheme]->params[r->param];
        char range[256], def[128];
        range_text(q, range, sizeof range);
        default_text(q, def, sizeof def);
        attr_t a = row_attr(t, sel, UI_NORMAL);
        int x = column(t, y, 1 + IND_PARAM, NAME_W - 1, row_attr(t, sel, UI_VALUE), q->name);
        x = column(t, y, x, TYPE_W, a, type_name(q));
        x = column(t, y, x, RANGE_W, a, range);
        x = column(t, y, x, DEF_W, a, def);
        column(t, y, x, COLS - 1 - x, row_attr(t, sel, UI_DIM), q->help ? q->help : "");
        break;
    }
    case R_REFUSED_HEAD:
        ui_printf(&t->th, y, 1, COLS - 2, row_attr(t, sel, UI_BAD), "Refused at discovery (%d)",
                  h->n_refused);
        break;
    case R_REFUSED:
        ui_print(&t->th, y, 3, COLS - 4, row_attr(t, sel, UI_BAD), h->refused[r->refused]);
        break;
    }
}

/* The full text of the selected row, which the list cuts to its width. */
static void detail_text(const struct plugins_screen *p, char *buf, size_t size)
{
    buf[0] = 0;
    if (p->n == 0)
        return;
    const struct prow *r = &p->rows[p->list.cur];
    const struct qplugin_host *h = wb_plugins(p->t->w);
    switch (r->kind) {
    case R_PLUGIN:
    case R_FILE: {
        const struct qlab_plugin *d = desc_of(p, r->plugin);
        snprintf(buf, size, "%s %s (%u scheme%s): %s. File %s. Enter checks it.", d->name,
                 d->version, d->n_schemes, d->n_schemes == 1 ? "" : "s", d->description,
                 h->plugins[r->plugin]->path);
        break;
    }
    case R_SCHEME: {
        const struct qlab_scheme *s = desc_of(p, r->plugin)->schemes[r->scheme];
        snprintf(buf, size, "%s/%s: %s (%u parameter%s)", desc_of(p, r->plugin)->name, s->name,
                 s->description, s->n_params, s->n_params == 1 ? "" : "s");
        break;
    }
    case R_PARAM: {
        const struct qlab_param *q = &desc_of(p, r->plugin)->schemes[r->scheme]->params[r->param];
        char range[256], def[128];
        range_text(q, range, sizeof range);
        default_text(q, def, sizeof def);
        snprintf(buf, size, "%s (%s %s, default %s): %s", q->name, type_name(q), range, def,
                 q->help ? q->help : "");
        break;
    }
    case R_REFUSED_HEAD:
        snprintf(buf, size, "Plugin files found but not loaded, with the reason.");
        break;
    case R_REFUSED:
        snprintf(buf, size, "%s", h->refused[r->refused]);
        break;
    case R_NONE:
        break;
    }
}

static void plugins_draw(struct tui *t, struct ui_screen *s)
{
    struct plugins_screen *p = (struct plugins_screen *)s;
    const struct qplugin_host *h = wb_plugins(t->w);
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    ui_printf(&t->th, 0, 1, COLS - 2, a, "qlab  Plugins: %d loaded, %d refused", h->n_plugins,
              h->n_refused);
    int y = 1;
    draw_header(t, y++);
    int h_list = LINES - 2 - y - DETAIL_LINES;
    if (h_list < 1)
        h_list = 1;
    /* scroll like ui_table_draw, so ui_table_key's paging matches */
    struct ui_table *l = &p->list;
    l->page = h_list;
    if (l->cur < l->top)
        l->top = l->cur;
    if (l->cur >= l->top + l->page)
        l->top = l->cur - l->page + 1;
    if (l->top > l->n_rows - l->page)
        l->top = l->n_rows - l->page;
    if (l->top < 0)
        l->top = 0;
    for (int i = 0; i < h_list && l->top + i < p->n; i++)
        draw_row(t, p, l->top + i, y + i);
    if (l->top > 0)
        ui_print(&t->th, y - 1, COLS - 1, 1, tui_attr(t, UI_TABLE_HEAD), t->th.g->up);
    if (l->top + h_list < p->n)
        ui_print(&t->th, y + h_list - 1, COLS - 1, 1, tui_attr(t, UI_DIM), t->th.g->down);
    char detail[2048];
    detail_text(p, detail, sizeof detail);
    ui_wrap(&t->th, y + h_list, 1, COLS - 2, DETAIL_LINES, tui_attr(t, UI_LABEL), detail);
}

/* ---- the check --------------------------------------------------------------------- */

struct check_work {
    char *path;
    cJSON *report;
};

static void check_run(void *ctx)
{
    struct check_work *c = ctx;
    c->report = plugin_check_file(c->path);
}

static void check_done(struct tui *t, void *ctx)
{
    struct check_work *c = ctx;
    if (!c->report) {
        tui_status(t, 1, "check of %s: out of memory", c->path);
        return;
    }
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c->report, "ok"));
    cJSON *r = c->report;
    c->report = NULL; /* the report screen takes it */
    struct ui_screen *s = screen_report_new(t, r);
    if (s) {
        tui_push(t, s);
        tui_status(t, !ok, "%s: %s", c->path, ok ? "all checks passed" : "checks FAILED");
    }
}

static void check_release(void *ctx)
{
    struct check_work *c = ctx;
    if (!c)
        return;
    cJSON_Delete(c->report);
    free(c->path);
    free(c);
}

static void start_check(struct tui *t, const struct plugins_screen *p)
{
    const struct prow *r = p->n ? &p->rows[p->list.cur] : NULL;
    if (!r || r->plugin < 0) {
        tui_status(t, 1, r && r->kind == R_REFUSED
                             ? "this file was refused at discovery: the reason is below"
                             : "select a plugin (or one of its rows) to check");
        return;
    }
    const struct qplugin *pl = wb_plugins(t->w)->plugins[r->plugin];
    struct check_work *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(pl->path))) {
        check_release(c);
        tui_status(t, 1, "out of memory");
        return;
    }
    char title[128];
    snprintf(title, sizeof title, "Checking %s %s", pl->desc->name, pl->desc->version);
    /* the check loads its own copy of the plugin: the workbench is not read */
    tui_push(t, dialog_busy_new(t, title, pl->path,
                                (struct ui_work){.run = check_run, .done = check_done,
                                                 .release = check_release, .ctx = c,
                                                 .doing = "checking"}));
}

/* ---- keys ---------------------------------------------------------------------------- */

static int plugins_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct plugins_screen *p = (struct plugins_screen *)s;
    if (ui_table_key(&p->list, ch))
        return 0;
    switch (ch) {
    case '\n':
    case '\r':
    case KEY_ENTER:
    case 'c':
        start_check(t, p);
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

static void plugins_free(struct ui_screen *s)
{
    struct plugins_screen *p = (struct plugins_screen *)s;
    if (!p)
        return;
    free(p->rows);
    free(p);
}

static const struct ui_fkey plugins_fkeys[] = {
    {"F1", "Help"}, {"Enter", "Check plugin"}, {"q", "Back"},
};

static const struct ui_help plugins_help[] = {
    {"Up Down j k", "move through plugins, schemes and parameters"},
    {"PgUp PgDn g G", "page up and down, first and last row"},
    {"Enter c", "check the plugin: every scheme on test tensors"},
    {"q Esc h", "back to the Model screen"},
};

static const struct ui_screen_ops plugins_ops = {
    .name = "Plugins",
    .draw = plugins_draw,
    .key = plugins_key,
    .free = plugins_free,
    .fkeys = plugins_fkeys,
    .n_fkeys = (int)(sizeof plugins_fkeys / sizeof plugins_fkeys[0]),
    .help = plugins_help,
    .n_help = (int)(sizeof plugins_help / sizeof plugins_help[0]),
};

struct ui_screen *screen_plugins_new(struct tui *t)
{
    struct plugins_screen *p = calloc(1, sizeof *p);
    if (!p) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    p->base.ops = &plugins_ops;
    p->t = t;
    if (build_rows(p) < 0) {
        plugins_free(&p->base);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    return &p->base;
}
