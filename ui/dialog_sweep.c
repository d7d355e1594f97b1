/* dialog_sweep.c — the form for a new sensitivity sweep: schemes, grouping, metric, mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/sweep.h"
#include "ui.h"

enum { F_SCHEMES, F_GROUP, F_METRIC, F_MODE, F_COUNT };

struct sweep_form {
    struct ui_screen base;
    struct ui_line line[F_MODE];   /* the text fields */
    int loo;
    int field;                     /* the one with the cursor */
    int lm;
    char error[160];               /* why Enter did not start */
    void (*accept)(struct tui *t, void *ctx, const struct ui_sweep_form *f);
    void *ctx;
};

static const char *const labels[F_COUNT] = {"Schemes", "Group", "Metric", "Mode"};

/* ---- drawing ---------------------------------------------------------------------- */

static const char *hint(const struct sweep_form *d, int f)
{
    switch (f) {
    case F_SCHEMES:
        return "candidates, ';'-separated: int:bits=4;q4_K;nf4";
    case F_GROUP:
        return d->lm ? "tensor, block, role, or globs: blk.0.*;blk.1.*"
                     : "tensor, block, role, or globs: conv*;fc*";
    case F_METRIC:
        return d->lm ? "kld_mean ppl kld_p99 same_top weight_sqnr output_sqnr"
                     : "cross_entropy top1 kld_mean weight_sqnr output_sqnr";
    default:
        return "";
    }
}

static void data_text(struct tui *t, char *buf, size_t size)
{
    if (!tui_is_lm(t)) {
        snprintf(buf, size, "%s", t->data_path[0] ? t->data_path : "the model's own dataset");
        return;
    }
    if (!t->data_path[0])
        snprintf(buf, size, "a text file, asked for next");
    else if (t->lm_ctx > 0)
        snprintf(buf, size, "%s, %d tokens per chunk", t->data_path, t->lm_ctx);
    else
        snprintf(buf, size, "%s", t->data_path);
}

static void form_draw(struct tui *t, struct ui_screen *s)
{
    struct sweep_form *d = (struct sweep_form *)s;
    char title[128];
    snprintf(title, sizeof title, "New sweep of %s", wb_model(t->w)->name);
    struct ui_rect r = ui_dialog(&t->th, 14, 72, title);
    attr_t a = tui_attr(t, UI_DIALOG), dim = tui_attr(t, UI_DIALOG_DIM);
    int lx = r.x + 9, lw = r.w - 9;
    for (int f = 0; f < F_COUNT; f++) {
        int y = r.y + f * 2;
        ui_print(&t->th, y, r.x, 8, tui_attr(t, f == d->field ? UI_DIALOG_TITLE : UI_DIALOG),
                 labels[f]);
        if (f < F_MODE) {
            int cx;
            ui_line_draw(&t->th, &d->line[f], y, lx, lw, tui_attr(t, UI_EDIT), &cx);
            if (f == d->field) {
                t->cursor_y = y;
                t->cursor_x = cx;
            }
            ui_print(&t->th, y + 1, lx, lw, dim, hint(d, f));
        } else {
            char mode[96];
            snprintf(mode, sizeof mode, "(%c) one at a time   (%c) leave one out",
                     d->loo ? ' ' : '*', d->loo ? '*' : ' ');
            ui_print(&t->th, y, lx, lw, f == d->field ? tui_attr(t, UI_EDIT) : a, mode);
        }
    }
    int y = r.y + F_COUNT * 2;
    char data[1100];
    data_text(t, data, sizeof data);
    ui_print(&t->th, y, r.x, 8, a, "Data");
    ui_print(&t->th, y, lx, lw, dim, data);
    if (d->error[0])
        ui_print(&t->th, r.y + r.h - 2, r.x, r.w, tui_attr(t, UI_DIALOG_ERROR), d->error);
    ui_print(&t->th, r.y + r.h - 1, r.x, r.w, dim,
             "Enter start   Tab Up Down field   Space mode   Esc cancel");
}

/* ---- keys ------------------------------------------------------------------------- */

/* The text without blanks around it. */
static void trimmed(const char *s, char *buf, size_t size)
{
    while (*s == ' ')
        s++;
    snprintf(buf, size, "%s", s);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = 0;
}

static int submit(struct tui *t, struct sweep_form *d)
{
    struct ui_sweep_form f = {.loo = d->loo};
    trimmed(d->line[F_SCHEMES].buf, f.schemes, sizeof f.schemes);
    trimmed(d->line[F_GROUP].buf, f.group, sizeof f.group);
    trimmed(d->line[F_METRIC].buf, f.metric, sizeof f.metric);
    if (!f.schemes[0]) {
        snprintf(d->error, sizeof d->error, "which schemes? e.g. int:bits=4;int:bits=8");
        d->field = F_SCHEMES;
        return 0;
    }
    if (!f.group[0])
        snprintf(f.group, sizeof f.group, "tensor");
    enum qmodel_kind kind = wb_model(t->w)->kind;
    if (f.metric[0] && !qsweep_metric_valid(kind, f.metric)) {
        snprintf(d->error, sizeof d->error, "metric '%.40s' is not one of %s", f.metric,
                 kind == QMODEL_LM ? "kld_mean, ppl, kld_p99, same_top, weight_sqnr, output_sqnr"
                                   : "cross_entropy, top1, kld_mean, weight_sqnr, output_sqnr");
        d->field = F_METRIC;
        return 0;
    }
    d->accept(t, d->ctx, &f);
    return UI_CLOSE;
}

static int form_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct sweep_form *d = (struct sweep_form *)s;
    if (ui_key_is_enter(ch))
        return submit(t, d);
    switch (ch) {
    case UI_KEY_ESC:
        tui_status(t, 0, "no sweep started");
        return UI_CLOSE;
    case KEY_F(10):
        return UI_QUIT;
    case '\t':
    case KEY_DOWN:
        d->field = (d->field + 1) % F_COUNT;
        return 0;
    case KEY_BTAB:
    case KEY_UP:
        d->field = (d->field + F_COUNT - 1) % F_COUNT;
        return 0;
    case KEY_F(1):
        return UI_UNHANDLED;
    default:
        break;
    }
    if (d->field == F_MODE) {
        if (ch == ' ' || ch == KEY_LEFT || ch == KEY_RIGHT || ch == 'h' || ch == 'l')
            d->loo = !d->loo;
        else if (ch == 'o')
            d->loo = 0;
        else if (ch == '?')
            return UI_UNHANDLED;
        return 0;
    }
    if (ui_line_key(&d->line[d->field], ch))
        d->error[0] = 0;
    return 0; /* typing keys are not global keys here */
}

/* ---- lifecycle -------------------------------------------------------------------- */

static void form_free(struct ui_screen *s)
{
    free(s);
}

static const struct ui_fkey form_fkeys[] = {
    {"Enter", "Start"}, {"Tab", "Field"}, {"Esc", "Cancel"}, {"F1", "Help"},
};

static const struct ui_help form_help[] = {
    {"Enter", "start; the heatmap fills in as it runs"},
    {"Tab Down / Up", "next / previous field"},
    {"Space Left Right", "on Mode: one at a time or leave one out"},
    {"Schemes", "candidate schemes as in a recipe, ';'-separated"},
    {"Group", "tensor, block, role, or globs (a group each)"},
    {"Metric", "what the change is in (empty: the default)"},
    {"", "one: only the group; loo: all but the group"},
    {"(data)", "as for r: --data, or the text file asked for next"},
    {"Esc", "close without starting"},
};

static const struct ui_screen_ops form_ops = {
    .name = "New sweep",
    .overlay = 1,
    .draw = form_draw,
    .key = form_key,
    .free = form_free,
    .fkeys = form_fkeys,
    .n_fkeys = (int)(sizeof form_fkeys / sizeof form_fkeys[0]),
    .help = form_help,
    .n_help = (int)(sizeof form_help / sizeof form_help[0]),
};

struct ui_screen *dialog_sweep_new(struct tui *t, const struct ui_sweep_form *init,
                                   void (*accept)(struct tui *t, void *ctx,
                                                  const struct ui_sweep_form *f),
                                   void *ctx)
{
    struct sweep_form *d = calloc(1, sizeof *d);
    if (!d) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    d->base.ops = &form_ops;
    d->lm = tui_is_lm(t);
    ui_line_set(&d->line[F_SCHEMES], init->schemes);
    ui_line_set(&d->line[F_GROUP], init->group[0] ? init->group : "tensor");
    ui_line_set(&d->line[F_METRIC],
                init->metric[0] ? init->metric : qsweep_default_metric(wb_model(t->w)->kind));
    d->loo = init->loo;
    d->accept = accept;
    d->ctx = ctx;
    return &d->base;
}
