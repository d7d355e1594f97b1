/* dialog_scheme.c — the scheme picker: float, then every plugin's schemes with bits per weight. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

enum row_kind { ROW_FLOAT, ROW_HEADING, ROW_SCHEME };

struct pick_row {
    enum row_kind kind;
    struct qscheme_ref ref;    /* ROW_HEADING: plugin only */
    double bpw;                /* with default parameters, for the tensor; NAN: unknown */
};

struct picker {
    struct ui_screen base;
    int tensor;                /* whose bits per weight are shown */
    char *glob;                /* NULL: pick for the tensor alone */
    struct pick_row *rows;
    int n, cur, top;
};

/* ---- rows ------------------------------------------------------------------ */

static int build_rows(struct tui *t, struct picker *p)
{
    const struct qplugin_host *h = wb_plugins(t->w);
    int n = 1;
    for (int i = 0; i < h->n_plugins; i++)
        n += 1 + (int)h->plugins[i]->desc->n_schemes;
    p->rows = calloc((size_t)n, sizeof *p->rows);
    if (!p->rows)
        return -1;
    p->rows[p->n++] = (struct pick_row){.kind = ROW_FLOAT, .bpw = 32.0};
    for (int i = 0; i < h->n_plugins; i++) {
        const struct qplugin *pl = h->plugins[i];
        p->rows[p->n++] = (struct pick_row){.kind = ROW_HEADING, .ref = {.plugin = pl}, .bpw = NAN};
        for (uint32_t s = 0; s < pl->desc->n_schemes; s++) {
            struct qscheme_ref ref = {.plugin = pl, .scheme = pl->desc->schemes[s]};
            qerr e;
            p->rows[p->n++] = (struct pick_row){
                .kind = ROW_SCHEME, .ref = ref, .bpw = tui_scheme_bpw(t, &ref, NULL, p->tensor, &e)};
        }
    }
    return 0;
}

/* The row of the tensor's current scheme (float when none); for a glob,
 * the scheme of the tensor shown, which a role or block row set before. */
static int current_row(struct tui *t, const struct picker *p)
{
    const struct qassign *a = wb_assign(t->w);
    if (!a || !a->config[p->tensor])
        return 0;
    for (int i = 0; i < p->n; i++)
        if (p->rows[i].kind == ROW_SCHEME &&
            p->rows[i].ref.scheme == qpipeline_main(a->config[p->tensor])->ref.scheme)
            return i;
    return 0;
}

/* ---- drawing ------------------------------------------------------------------ */

static void draw_row(struct tui *t, const struct pick_row *r, int sel, int y, int x, int w)
{
    attr_t a = tui_attr(t, sel ? UI_CURSOR : UI_DIALOG);
    ui_fill(y, x, w, a);
    char bpw[32];
    ui_fmt_num(r->bpw, 2, bpw, sizeof bpw);
    switch (r->kind) {
    case ROW_FLOAT:
        ui_cell(&t->th, y, x + 2, 14, a, UI_LEFT, "float");
        ui_cell(&t->th, y, x + 16, 6, a, UI_RIGHT, bpw);
        ui_print(&t->th, y, x + 24, w - 24, sel ? a : tui_attr(t, UI_DIALOG_DIM),
                 "keep float32 values");
        break;
    case ROW_HEADING: {
        const struct qlab_plugin *d = r->ref.plugin->desc;
        char head[256];
        snprintf(head, sizeof head, "%s %s: %s", d->name, d->version, d->description);
        ui_print(&t->th, y, x, w, tui_attr(t, UI_HEADING), head);
        break;
    }
    case ROW_SCHEME:
        ui_cell(&t->th, y, x + 2, 14, a, UI_LEFT, r->ref.scheme->name);
        ui_cell(&t->th, y, x + 16, 6, a, UI_RIGHT, bpw);
        ui_print(&t->th, y, x + 24, w - 24, sel ? a : tui_attr(t, UI_DIALOG_DIM),
                 r->ref.scheme->description);
        break;
    }
}

static void picker_draw(struct tui *t, struct ui_screen *s)
{
    struct picker *p = (struct picker *)s;
    const struct qtensor *tn = wb_model(t->w)->tensors[p->tensor];
    char title[300];
    if (p->glob)
        snprintf(title, sizeof title, "Scheme for '%s'", p->glob);
    else
        snprintf(title, sizeof title, "Scheme for %s", tn->name);
    struct ui_rect r = ui_dialog(&t->th, p->n + 5, 76, title);
    char shape[96];
    qshape_format(tn->shape, tn->ndim, shape, sizeof shape);
    ui_printf(&t->th, r.y, r.x, r.w, tui_attr(t, UI_DIALOG_DIM),
              "bits/weight for %s %s with default parameters:", tn->name, shape);
    int list = r.h - 2;
    if (list < 1)
        return;
    if (p->cur < p->top)
        p->top = p->cur;
    if (p->cur >= p->top + list)
        p->top = p->cur - list + 1;
    for (int i = 0; i < list && p->top + i < p->n; i++)
        draw_row(t, &p->rows[p->top + i], p->top + i == p->cur, r.y + 1 + i, r.x, r.w);
    ui_print(&t->th, r.y + r.h - 1, r.x, r.w, tui_attr(t, UI_DIALOG_DIM),
             "Enter choose and edit parameters   Esc cancel");
}

/* ---- keys ------------------------------------------------------------------------ */

/* Moves by d rows, skipping headings. */
static void pick_move(struct picker *p, int d)
{
    int i = p->cur + d;
    if (i < 0)
        i = 0;
    if (i >= p->n)
        i = p->n - 1;
    int step = d < 0 ? -1 : 1;
    while (i >= 0 && i < p->n && p->rows[i].kind == ROW_HEADING)
        i += step;
    if (i < 0 || i >= p->n) { /* only headings that way: search back */
        i = p->cur + d;
        i = i < 0 ? 0 : i >= p->n ? p->n - 1 : i;
        while (i >= 0 && i < p->n && p->rows[i].kind == ROW_HEADING)
            i -= step;
    }
    if (i >= 0 && i < p->n)
        p->cur = i;
}

static int choose(struct tui *t, struct picker *p)
{
    const struct pick_row *r = &p->rows[p->cur];
    if (r->kind == ROW_FLOAT)
        return tui_apply(t, p->tensor, p->glob, "float", NULL) == 0 ? UI_CLOSE : 0;
    char name[128];
    tui_scheme_name(t, &r->ref, name, sizeof name);
    if (r->ref.scheme->n_params == 0)
        return tui_apply(t, p->tensor, p->glob, name, NULL) == 0 ? UI_CLOSE : 0;
    struct ui_screen *ed = dialog_params_new(t, p->tensor, p->glob, r->ref);
    if (!ed)
        return 0;
    tui_push(t, ed);
    return UI_CLOSE;
}

static int picker_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct picker *p = (struct picker *)s;
    switch (ch) {
    case KEY_UP:
    case 'k':
        pick_move(p, -1);
        return 0;
    case KEY_DOWN:
    case 'j':
        pick_move(p, 1);
        return 0;
    case KEY_PPAGE:
        pick_move(p, -10);
        return 0;
    case KEY_NPAGE:
        pick_move(p, 10);
        return 0;
    case KEY_HOME:
    case 'g':
        p->cur = 0;
        return 0;
    case KEY_END:
    case 'G':
        pick_move(p, p->n);
        return 0;
    case '\n':
    case '\r':
    case KEY_ENTER:
    case KEY_RIGHT:
    case 'l':
        return choose(t, p);
    case UI_KEY_ESC:
    case 'q':
    case KEY_LEFT:
    case 'h':
        return UI_CLOSE;
    default:
        return UI_UNHANDLED;
    }
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void picker_free(struct ui_screen *s)
{
    struct picker *p = (struct picker *)s;
    if (!p)
        return;
    free(p->rows);
    free(p->glob);
    free(p);
}

static const struct ui_fkey picker_fkeys[] = {
    {"F1", "Help"}, {"Enter", "Choose"}, {"Esc", "Cancel"},
};

static const struct ui_help picker_help[] = {
    {"Up Down j k", "select a scheme"},
    {"g G PgUp PgDn", "first, last, page"},
    {"Enter l", "choose: float applies at once, a scheme opens its parameters"},
    {"Esc q h", "cancel"},
};

static const struct ui_screen_ops picker_ops = {
    .name = "Scheme",
    .overlay = 1,
    .draw = picker_draw,
    .key = picker_key,
    .free = picker_free,
    .fkeys = picker_fkeys,
    .n_fkeys = (int)(sizeof picker_fkeys / sizeof picker_fkeys[0]),
    .help = picker_help,
    .n_help = (int)(sizeof picker_help / sizeof picker_help[0]),
};

struct ui_screen *dialog_scheme_new(struct tui *t, int tensor, const char *glob)
{
    if (tensor < 0 || tensor >= wb_model(t->w)->n_tensors) {
        tui_status(t, 1, "the model has no such tensor");
        return NULL;
    }
    struct picker *p = calloc(1, sizeof *p);
    if (!p || (glob && !(p->glob = strdup(glob)))) {
        picker_free(p ? &p->base : NULL);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    p->base.ops = &picker_ops;
    p->tensor = tensor;
    if (build_rows(t, p) < 0) {
        picker_free(&p->base);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    p->cur = current_row(t, p);
    return &p->base;
}
