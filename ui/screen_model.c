/* screen_model.c — the Model screen: size summary, recipe, last run, and the tensor table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ui.h"

#define HEADER_LINES 5 /* title, sizes, recipe, two lines of the last run */

struct model_screen {
    struct ui_screen base;
    struct tui *t;
    struct ui_table table;
    int *rows;             /* tensor index per table row (after the filter) */
    char filter[256];      /* substring, case-insensitive; "" = all */
    char filter_saved[256];/* restored when the filter prompt is cancelled */
    int export_tensor;     /* the tensor the export prompts are about */
    char export_out[256];  /* its output file, while asking to overwrite it */
};

enum { C_NAME, C_OP, C_SHAPE, C_PARAMS, C_SCHEME, C_BYTES, C_SQNR, C_COUNT };

static const struct ui_col model_cols[C_COUNT] = {
    [C_NAME] = {"Tensor", 12, 3, UI_LEFT},
    [C_OP] = {"Op", 9, 0, UI_LEFT, 3},
    [C_SHAPE] = {"Shape", 15, 0, UI_LEFT, 1},
    [C_PARAMS] = {"Params", 7, 0, UI_RIGHT, 2},
    [C_SCHEME] = {"Scheme", 10, 2, UI_LEFT},
    [C_BYTES] = {"Bytes", 6, 0, UI_RIGHT},
    [C_SQNR] = {"SQNR", 6, 0, UI_RIGHT},
};

/* ---- rows ---------------------------------------------------------------- */

static void apply_filter(struct model_screen *m)
{
    const struct qmodel *md = wb_model(m->t->w);
    int n = 0;
    for (int i = 0; i < md->n_tensors; i++)
        if (!m->filter[0] || strcasestr(md->tensors[i]->name, m->filter))
            m->rows[n++] = i;
    ui_table_set_rows(&m->table, n);
}

static int selected_tensor(const struct model_screen *m)
{
    return m->table.n_rows > 0 ? m->rows[m->table.cur] : -1;
}

static void fmt_count(int64_t n, char *buf, size_t size)
{
    if (n < 10000000)
        snprintf(buf, size, "%lld", (long long)n);
    else
        snprintf(buf, size, "%.1fM", (double)n / 1e6);
}

static void model_cell(void *ctx, int row, int col, char *buf, size_t size, enum ui_el *el)
{
    struct model_screen *m = ctx;
    struct wb *w = m->t->w;
    int i = m->rows[row];
    const struct qmodel *md = wb_model(w);
    const struct qtensor *tn = md->tensors[i];
    const struct qweights *qw = wb_weights(w);
    const struct qtensor_q *q = qw ? &qw->t[i] : NULL;
    switch (col) {
    case C_NAME:
        snprintf(buf, size, "%s", tn->name);
        break;
    case C_OP:
        snprintf(buf, size, "%s", qop_name(md->nodes[md->tensor_node[i]].op));
        *el = UI_DIM;
        break;
    case C_SHAPE:
        qshape_format(tn->shape, tn->ndim, buf, size);
        break;
    case C_PARAMS:
        fmt_count(tn->numel, buf, size);
        break;
    case C_SCHEME:
        snprintf(buf, size, "%s", wb_tensor_scheme_label(w, i));
        *el = q && q->quantized ? UI_QUANT : UI_FLOAT;
        break;
    case C_BYTES:
        ui_fmt_bytes_short(q ? (double)qtensor_q_bytes(q) : (double)tn->numel * 4, buf, size);
        break;
    case C_SQNR:
        if (!q || !q->quantized)
            snprintf(buf, size, "-");
        else if (isinf(q->e.sqnr_db))
            snprintf(buf, size, "inf");
        else
            ui_fmt_num(q->e.sqnr_db, 1, buf, size);
        break;
    }
}

/* ---- drawing -------------------------------------------------------------------- */

static void draw_title(struct tui *t, const struct model_screen *m)
{
    const struct qmodel *md = wb_model(t->w);
    struct wb_summary s;
    wb_summary(t->w, &s);
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    char right[160];
    int n = snprintf(right, sizeof right, "%d tensors, %d quantized", s.n_tensors, s.n_quantized);
    if (m->filter[0] && n > 0 && (size_t)n < sizeof right)
        snprintf(right + n, sizeof right - (size_t)n, ", %d shown", m->table.n_rows);
    int rw = ui_width(right);
    int lw = ui_printf(&t->th, 0, 1, COLS - rw - 3, a, "qlab  Model: %s", md->name);
    if (lw + rw + 3 <= COLS)
        ui_print(&t->th, 0, COLS - rw - 1, rw, a, right);
}

static void draw_sizes(struct tui *t, int y)
{
    struct wb_summary s;
    wb_summary(t->w, &s);
    char fb[32], qb[32], bpw[32], ratio[32];
    ui_fmt_bytes((double)s.float_bytes, fb, sizeof fb);
    ui_fmt_bytes((double)s.bytes, qb, sizeof qb);
    snprintf(bpw, sizeof bpw, "%.2f", s.bits_per_weight);
    snprintf(ratio, sizeof ratio, "%.3f", s.ratio);
    int x = ui_kv(&t->th, y, 1, COLS, "float", fb, UI_VALUE);
    x = ui_kv(&t->th, y, x, COLS, "quantized", qb, s.n_quantized ? UI_QUANT : UI_VALUE);
    x = ui_kv(&t->th, y, x, COLS, "bits/weight", bpw, UI_VALUE);
    ui_kv(&t->th, y, x, COLS, "ratio", ratio, UI_VALUE);
}

static void draw_recipe(struct tui *t, int y)
{
    const char *r = wb_recipe_text(t->w);
    ui_kv(&t->th, y, 1, COLS - 1, "recipe", r[0] ? r : "(none: every tensor float)",
          r[0] ? UI_QUANT : UI_DIM);
}

/* "top-1 98.33 (float 98.61)", the value red when worse than float;
 * returns the next column. */
static int draw_pair(struct tui *t, int y, int x, const char *label, double q, double f,
                     int decimals, int higher_better)
{
    char qs[32], fs[32];
    ui_fmt_num(q, decimals, qs, sizeof qs);
    ui_fmt_num(f, decimals, fs, sizeof fs);
    int worse = (q - f) * (higher_better ? 1 : -1) < -1e-9;
    x = ui_kv(&t->th, y, x, COLS, label, qs, worse ? UI_BAD : UI_GOOD) - 1;
    if (x < COLS)
        x += ui_printf(&t->th, y, x, COLS - x, tui_attr(t, UI_DIM), "(float %s)", fs);
    return x + 2;
}

static void draw_run(struct tui *t, int y)
{
    if (!t->have_run) {
        ui_print(&t->th, y, 1, COLS - 2, tui_attr(t, UI_DIM),
                 "No run yet in this session: press r to evaluate the recipe.");
        return;
    }
    const struct wb_eval_outcome *o = &t->last;
    char id[64];
    snprintf(id, sizeof id, "#%lld", (long long)o->run_id);
    const char *st = o->status ? o->status : "failed";
    int done = strcmp(st, "done") == 0 && t->last_rc == 0;
    int x = ui_kv(&t->th, y, 1, COLS, "run", id, UI_VALUE);
    x = ui_kv(&t->th, y, x, COLS, NULL, st, done ? UI_GOOD : UI_BAD);
    if (!done) {
        if (t->last_rc != 0 && t->last_error[0])
            ui_print(&t->th, y, x, COLS - x - 1, tui_attr(t, UI_BAD), t->last_error);
        return;
    }
    const struct qclass_metrics *q = &o->metrics, *f = &o->float_metrics;
    x = draw_pair(t, y, x, "top-1", q->top1, f->top1, 2, 1);
    draw_pair(t, y, x, "top-5", q->top5, f->top5, 2, 1);
    y++;
    x = 3;
    x = draw_pair(t, y, x, "CE", q->cross_entropy, f->cross_entropy, 4, 0);
    char v[64];
    ui_fmt_num(q->has_ref ? q->top1_agreement : NAN, 2, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "agree", v, UI_VALUE);
    ui_fmt_num(q->has_ref ? q->kld_mean : NAN, 5, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "KLD", v, UI_VALUE);
    if (t->last_recipe && strcmp(t->last_recipe, wb_recipe_text(t->w)) != 0)
        ui_print(&t->th, y, x, COLS - x - 1, tui_attr(t, UI_DIM), "(recipe changed since)");
}

static void model_draw(struct tui *t, struct ui_screen *s)
{
    struct model_screen *m = (struct model_screen *)s;
    draw_title(t, m);
    draw_sizes(t, 1);
    draw_recipe(t, 2);
    draw_run(t, 3);
    int y = HEADER_LINES;
    int h = LINES - 2 - y;
    ui_table_draw(&t->th, &m->table, y, 0, h, COLS);
    if (m->table.n_rows == 0)
        ui_print(&t->th, y + 1, 2, COLS - 4, tui_attr(t, UI_DIM), "No tensor matches the filter.");
}

/* ---- prompts ----------------------------------------------------------------------- */

static void filter_change(struct tui *t, void *ctx, const char *text)
{
    (void)t;
    struct model_screen *m = ctx;
    snprintf(m->filter, sizeof m->filter, "%s", text);
    apply_filter(m);
}

static void filter_cancel(struct tui *t, void *ctx)
{
    filter_change(t, ctx, ((struct model_screen *)ctx)->filter_saved);
}

static void glob_accept(struct tui *t, void *ctx, const char *text)
{
    struct model_screen *m = ctx;
    if (!text[0]) {
        tui_status(t, 1, "a glob is needed, e.g. * or conv*");
        return;
    }
    int i = selected_tensor(m);
    tui_push(t, dialog_scheme_new(t, i >= 0 ? i : 0, text));
}

static void recipe_accept(struct tui *t, void *ctx, const char *text)
{
    (void)ctx;
    qerr e = {{0}};
    if (wb_set_recipe(t->w, text, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        return;
    }
    if (tui_refresh_weights(t) == 0)
        tui_status(t, 0, "recipe set");
}

/* ---- export ------------------------------------------------------------------------ */

/* "conv2.weight.int.safetensors": the tensor and the scheme names of its
 * label ("prune:...+int:bits=4" gives "prune+int"), as one file name in
 * the current directory. */
static void export_default_name(const char *tensor, const char *label, char *buf, size_t size)
{
    char schemes[128];
    size_t n = 0;
    for (const char *p = label; *p && n + 1 < sizeof schemes;) {
        size_t len = strcspn(p, ":+");
        for (size_t i = 0; i < len && n + 1 < sizeof schemes; i++)
            schemes[n++] = p[i];
        p += len;
        p += strcspn(p, "+"); /* skip the parameters */
        if (*p == '+' && n + 1 < sizeof schemes)
            schemes[n++] = *p++;
    }
    schemes[n] = 0;
    snprintf(buf, size, "%s.%s.safetensors", tensor, schemes);
    for (char *c = buf; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-' || *c == '+'))
            *c = '_'; /* a '/' of "plugin/scheme" must not make a folder */
}

static void overwrite_accept(struct tui *t, void *ctx, const char *text)
{
    struct model_screen *m = ctx;
    if (text[0] != 'y' && text[0] != 'Y') {
        tui_status(t, 0, "not exported: %s is left as it was", m->export_out);
        return;
    }
    tui_push(t, dialog_export_new(t, m->export_tensor, m->export_out));
}

static void export_accept(struct tui *t, void *ctx, const char *text)
{
    struct model_screen *m = ctx;
    if (!text[0]) {
        tui_status(t, 1, "an output file is needed, e.g. out.safetensors");
        return;
    }
    if (access(text, F_OK) == 0) {
        snprintf(m->export_out, sizeof m->export_out, "%s", text);
        char label[64];
        snprintf(label, sizeof label, "%.36s exists. Overwrite? (y/N)", text);
        tui_push(t, prompt_new(t, label, "",
                               (struct ui_prompt_cb){.accept = overwrite_accept, .ctx = m}));
        return;
    }
    tui_push(t, dialog_export_new(t, m->export_tensor, text));
}

static void start_export(struct tui *t, struct model_screen *m, int i)
{
    const char *name = wb_model(t->w)->tensors[i]->name;
    const char *label = wb_tensor_scheme_label(t->w, i);
    if (strcmp(label, "float") == 0) {
        tui_status(t, 1, "%s is float: nothing to export (choose a scheme first)", name);
        return;
    }
    char out[256];
    export_default_name(name, label, out, sizeof out);
    m->export_tensor = i;
    tui_push(t, prompt_new(t, "Export to:", out,
                           (struct ui_prompt_cb){.accept = export_accept, .ctx = m}));
}

/* ---- keys ------------------------------------------------------------------------------ */

static void set_float(struct tui *t, int i)
{
    qerr e = {{0}};
    if (wb_apply_tensor(t->w, i, "float", NULL, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        return;
    }
    if (tui_refresh_weights(t) == 0)
        tui_status(t, 0, "%s: float", wb_model(t->w)->tensors[i]->name);
}

static int model_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct model_screen *m = (struct model_screen *)s;
    if (ui_table_key(&m->table, ch))
        return 0;
    int i = selected_tensor(m);
    switch (ch) {
    case 's':
    case 'l':
    case KEY_RIGHT:
    case '\n':
    case '\r':
    case KEY_ENTER:
        if (i < 0)
            tui_status(t, 1, "no tensor selected");
        else
            tui_push(t, dialog_scheme_new(t, i, NULL));
        return 0;
    case 'a':
        tui_push(t, prompt_new(t, "Apply to tensors matching glob:", "*",
                               (struct ui_prompt_cb){.accept = glob_accept, .ctx = m}));
        return 0;
    case 'f':
        if (i < 0)
            tui_status(t, 1, "no tensor selected");
        else
            set_float(t, i);
        return 0;
    case 'e':
        tui_push(t, prompt_new(t, "Recipe:", wb_recipe_text(t->w),
                               (struct ui_prompt_cb){.accept = recipe_accept, .ctx = m}));
        return 0;
    case 'r':
        tui_push(t, dialog_eval_new(t));
        return 0;
    case 'H':
        tui_push(t, screen_history_new(t));
        return 0;
    case 'x':
        if (i < 0)
            tui_status(t, 1, "no tensor selected");
        else
            start_export(t, m, i);
        return 0;
    case 'P':
        tui_push(t, screen_plugins_new(t));
        return 0;
    case '/':
        memcpy(m->filter_saved, m->filter, sizeof m->filter);
        tui_push(t, prompt_new(t, "Filter tensors:", m->filter,
                               (struct ui_prompt_cb){.accept = filter_change,
                                                     .change = filter_change,
                                                     .cancel = filter_cancel, .ctx = m}));
        return 0;
    case UI_KEY_ESC:
        if (m->filter[0]) {
            m->filter[0] = 0;
            apply_filter(m);
        }
        return 0;
    case 'q':
    case KEY_F(10):
        return UI_QUIT;
    default:
        return UI_UNHANDLED;
    }
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void model_free(struct ui_screen *s)
{
    struct model_screen *m = (struct model_screen *)s;
    if (!m)
        return;
    free(m->rows);
    free(m);
}

/* 79 of 80 columns: "f Float" is left to the help */
static const struct ui_fkey model_fkeys[] = {
    {"F1", "Help"}, {"Enter", "Scheme"}, {"a", "Glob"}, {"r", "Run"}, {"x", "Export"},
    {"/", "Filter"}, {"H", "History"}, {"P", "Plugins"}, {"q", "Quit"},
};

static const struct ui_help model_help[] = {
    {"Up Down j k", "select a tensor"},
    {"PgUp PgDn g G", "page up and down, first and last tensor"},
    {"Enter s l", "choose the scheme of the tensor and edit its parameters"},
    {"a", "apply a scheme to every tensor matching a glob"},
    {"f", "put the tensor back to float"},
    {"e", "edit the recipe text"},
    {"r", "evaluate the recipe (Esc cancels)"},
    {"x", "write the quantized tensor to a .safetensors file"},
    {"H", "history of this model's runs"},
    {"P", "plugins, schemes, parameters; check a plugin"},
    {"/", "filter tensors by name; Esc clears the filter"},
    {"q", "quit"},
};

static const struct ui_screen_ops model_ops = {
    .name = "Model",
    .draw = model_draw,
    .key = model_key,
    .free = model_free,
    .fkeys = model_fkeys,
    .n_fkeys = (int)(sizeof model_fkeys / sizeof model_fkeys[0]),
    .help = model_help,
    .n_help = (int)(sizeof model_help / sizeof model_help[0]),
};

struct ui_screen *screen_model_new(struct tui *t)
{
    const struct qmodel *md = wb_model(t->w);
    struct model_screen *m = calloc(1, sizeof *m);
    if (m)
        m->rows = calloc((size_t)(md->n_tensors > 0 ? md->n_tensors : 1), sizeof *m->rows);
    if (!m || !m->rows) {
        model_free(m ? &m->base : NULL);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    m->base.ops = &model_ops;
    m->t = t;
    m->table = (struct ui_table){.cols = model_cols, .n_cols = C_COUNT, .cell = model_cell,
                                 .ctx = m};
    apply_filter(m);
    return &m->base;
}
