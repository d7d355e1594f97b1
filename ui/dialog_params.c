/* dialog_params.c — the parameter editor of a chosen scheme, built from its parameter descriptions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

struct params_dialog {
    struct ui_screen base;
    int tensor;                 /* whose bits per weight are shown */
    char *glob;                 /* NULL: the tensor alone */
    struct qscheme_ref ref;
    int n;                      /* parameters; row n is "Apply" */
    struct qlab_value *v;       /* n values being edited */
    int cur;
    int editing;                /* typing a value into line */
    struct ui_line line;
    char error[512];            /* a refused value or apply error */
    char note[512];             /* the configured label and size, or the plugin's objection */
    int note_bad;
};

/* ---- values ------------------------------------------------------------------ */

static const struct qlab_param *param(const struct params_dialog *d, int i)
{
    return &d->ref.scheme->params[i];
}

/* "k=v,k=v" of the values that differ from their defaults, so the
 * recipe reads as a person would write it. */
static void params_text(const struct params_dialog *d, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < d->n && used < size; i++) {
        const struct qlab_param *p = param(d, i);
        struct qlab_value def = {.i = (int64_t)p->def, .f = p->def};
        char v[128], dv[128];
        qparam_format_value(p, &d->v[i], v, sizeof v);
        qparam_format_value(p, &def, dv, sizeof dv);
        if (strcmp(v, dv) == 0)
            continue;
        int k = snprintf(buf + used, size - used, "%s%s=%s", used ? "," : "", p->name, v);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* Configures the scheme with the current values to show its label and
 * size, or what the plugin objects to. */
static void update_note(struct tui *t, struct params_dialog *d)
{
    char text[2048];
    params_text(d, text, sizeof text);
    qerr e = {{0}};
    double bpw = tui_scheme_bpw(t, &d->ref, text, d->tensor, &e);
    d->note_bad = isnan(bpw);
    if (d->note_bad)
        snprintf(d->note, sizeof d->note, "%s", e.msg);
    else
        snprintf(d->note, sizeof d->note, "%.3f bits/weight for %s", bpw,
                 wb_model(t->w)->tensors[d->tensor]->name);
}

static void step_choice(struct params_dialog *d, int dir)
{
    const struct qlab_param *p = param(d, d->cur);
    struct qlab_value *v = &d->v[d->cur];
    if (p->type == QLAB_PARAM_BOOL) {
        v->i = !v->i;
    } else if (p->type == QLAB_PARAM_ENUM) {
        int64_t n = 0;
        while (p->choices[n])
            n++;
        v->i = n > 0 ? ((v->i + dir) % n + n) % n : 0;
    }
}

static void begin_edit(struct params_dialog *d, const char *init)
{
    d->editing = 1;
    d->error[0] = 0;
    ui_line_set(&d->line, init);
}

static void commit_edit(struct tui *t, struct params_dialog *d)
{
    qerr e = {{0}};
    struct qlab_value v = d->v[d->cur];
    if (qparam_parse_value(param(d, d->cur), d->line.buf, &v, &e) < 0) {
        snprintf(d->error, sizeof d->error, "%s", e.msg);
        return; /* the value is not taken; keep editing */
    }
    d->v[d->cur] = v;
    d->editing = 0;
    d->error[0] = 0;
    update_note(t, d);
}

static int apply(struct tui *t, struct params_dialog *d)
{
    char text[2048], name[128];
    params_text(d, text, sizeof text);
    tui_scheme_name(t, &d->ref, name, sizeof name);
    if (tui_apply(t, d->tensor, d->glob, name, text) < 0) {
        snprintf(d->error, sizeof d->error, "%s", t->status);
        return 0;
    }
    return UI_CLOSE;
}

/* ---- drawing ---------------------------------------------------------------------- */

static void range_text(const struct qlab_param *p, char *buf, size_t size)
{
    switch (p->type) {
    case QLAB_PARAM_INT:
        snprintf(buf, size, "%.0f..%.0f", p->min, p->max);
        break;
    case QLAB_PARAM_FLOAT:
        snprintf(buf, size, "%g..%g", p->min, p->max);
        break;
    case QLAB_PARAM_BOOL:
        snprintf(buf, size, "true|false");
        break;
    default: {
        size_t used = 0;
        buf[0] = 0;
        for (int i = 0; p->choices && p->choices[i] && used < size; i++) {
            int k = snprintf(buf + used, size - used, "%s%s", i ? "|" : "", p->choices[i]);
            if (k < 0)
                break;
            used += (size_t)k;
        }
    }
    }
}

static void default_text(const struct qlab_param *p, char *buf, size_t size)
{
    struct qlab_value v = {.i = (int64_t)p->def, .f = p->def};
    qparam_format_value(p, &v, buf, size);
}

#define NAME_W 14
#define VALUE_W 12

static void draw_param(struct tui *t, struct params_dialog *d, int i, int y, int x, int w)
{
    const struct qlab_param *p = param(d, i);
    int sel = i == d->cur;
    attr_t a = tui_attr(t, sel ? UI_CURSOR : UI_DIALOG);
    ui_fill(y, x, w, a);
    ui_cell(&t->th, y, x + 1, NAME_W, a, UI_LEFT, p->name);
    int vx = x + 1 + NAME_W + 1;
    if (sel && d->editing) {
        int cx;
        ui_line_draw(&t->th, &d->line, y, vx, VALUE_W, tui_attr(t, UI_EDIT), &cx);
        t->cursor_y = y;
        t->cursor_x = cx;
    } else {
        char v[128], shown[160];
        qparam_format_value(p, &d->v[i], v, sizeof v);
        if (p->type == QLAB_PARAM_BOOL || p->type == QLAB_PARAM_ENUM)
            snprintf(shown, sizeof shown, "< %s >", v);
        else
            snprintf(shown, sizeof shown, "%s", v);
        ui_cell(&t->th, y, vx, VALUE_W, sel ? a : tui_attr(t, UI_DIALOG_TITLE), UI_LEFT, shown);
    }
    char range[256];
    range_text(p, range, sizeof range);
    int rx = vx + VALUE_W + 2;
    ui_print(&t->th, y, rx, x + w - rx, sel ? a : tui_attr(t, UI_DIALOG_DIM), range);
}

static void params_draw(struct tui *t, struct ui_screen *s)
{
    struct params_dialog *d = (struct params_dialog *)s;
    char title[300];
    const char *target = d->glob ? d->glob : wb_model(t->w)->tensors[d->tensor]->name;
    snprintf(title, sizeof title, "%s/%s for %s", d->ref.plugin->desc->name,
             d->ref.scheme->name, target);
    struct ui_rect r = ui_dialog(&t->th, d->n + 9, 72, title);
    int y = r.y;
    ui_print(&t->th, y++, r.x, r.w, tui_attr(t, UI_DIALOG_DIM), d->ref.scheme->description);
    ui_print(&t->th, y++, r.x, r.w, tui_attr(t, d->note_bad ? UI_DIALOG_ERROR : UI_DIALOG),
             d->note);
    /* parameter rows and the Apply line, scrolled when the dialog is short */
    int list = r.h - 6;
    if (list < 1)
        list = 1;
    int top = d->cur >= list ? d->cur - list + 1 : 0;
    for (int i = 0; i < list && top + i <= d->n; i++) {
        int row = top + i, ry = y + i;
        if (row < d->n) {
            draw_param(t, d, row, ry, r.x, r.w);
        } else {
            attr_t a = tui_attr(t, d->cur == d->n ? UI_CURSOR : UI_DIALOG_TITLE);
            ui_fill(ry, r.x, r.w, tui_attr(t, UI_DIALOG));
            ui_cell(&t->th, ry, r.x + 1, 9, a, UI_LEFT, "[ Apply ]");
        }
    }
    y = r.y + r.h - 4;
    if (d->error[0]) {
        ui_wrap(&t->th, y, r.x, r.w, 2, tui_attr(t, UI_DIALOG_ERROR), d->error);
    } else if (d->cur < d->n) {
        const struct qlab_param *p = param(d, d->cur);
        char def[128], help[600];
        default_text(p, def, sizeof def);
        snprintf(help, sizeof help, "%s (default %s)", p->help ? p->help : "", def);
        ui_wrap(&t->th, y, r.x, r.w, 2, tui_attr(t, UI_DIALOG), help);
    }
    const char *keys = d->editing ? "type a value   Enter accept   Esc undo"
                                  : "Enter edit/apply   Left Right Space change   Esc cancel";
    ui_print(&t->th, r.y + r.h - 1, r.x, r.w, tui_attr(t, UI_DIALOG_DIM), keys);
}

/* ---- keys ------------------------------------------------------------------------------ */

static int edit_key(struct tui *t, struct params_dialog *d, int ch)
{
    if (ui_key_is_enter(ch)) {
        commit_edit(t, d);
    } else if (ch == UI_KEY_ESC) {
        d->editing = 0;
        d->error[0] = 0;
    } else if (ch == KEY_UP || ch == KEY_DOWN) {
        commit_edit(t, d);
        if (!d->editing)
            d->cur += ch == KEY_UP ? (d->cur > 0 ? -1 : 0) : 1;
    } else {
        ui_line_key(&d->line, ch);
    }
    return 0;
}

static int is_number_char(int ch)
{
    return (ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.';
}

static int params_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct params_dialog *d = (struct params_dialog *)s;
    if (d->editing)
        return edit_key(t, d, ch);
    int on_apply = d->cur == d->n;
    enum qlab_param_type type = on_apply ? QLAB_PARAM_TYPE_COUNT : param(d, d->cur)->type;
    int numeric = type == QLAB_PARAM_INT || type == QLAB_PARAM_FLOAT;
    d->error[0] = 0;
    switch (ch) {
    case KEY_UP:
    case 'k':
        if (d->cur > 0)
            d->cur--;
        return 0;
    case KEY_DOWN:
    case 'j':
    case '\t':
        if (d->cur < d->n)
            d->cur++;
        return 0;
    case KEY_HOME:
    case 'g':
        d->cur = 0;
        return 0;
    case KEY_END:
    case 'G':
        d->cur = d->n;
        return 0;
    case '\n':
    case '\r':
    case KEY_ENTER:
        if (on_apply)
            return apply(t, d);
        if (numeric) {
            char v[128];
            qparam_format_value(param(d, d->cur), &d->v[d->cur], v, sizeof v);
            begin_edit(d, v);
            return 0;
        }
        step_choice(d, 1);
        update_note(t, d);
        return 0;
    case ' ':
    case KEY_RIGHT:
    case 'l':
    case KEY_LEFT:
    case 'h':
        if (!on_apply && !numeric) {
            step_choice(d, ch == KEY_LEFT || ch == 'h' ? -1 : 1);
            update_note(t, d);
        }
        return 0;
    case UI_KEY_ESC:
    case 'q':
        return UI_CLOSE;
    default:
        if (numeric && is_number_char(ch)) {
            begin_edit(d, "");
            ui_line_key(&d->line, ch);
            return 0;
        }
        return UI_UNHANDLED;
    }
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void params_free(struct ui_screen *s)
{
    struct params_dialog *d = (struct params_dialog *)s;
    if (!d)
        return;
    free(d->v);
    free(d->glob);
    free(d);
}

static const struct ui_fkey params_fkeys[] = {
    {"F1", "Help"}, {"Enter", "Edit/Apply"}, {"Space", "Change"}, {"Esc", "Cancel"},
};

static const struct ui_help params_help[] = {
    {"Up Down j k Tab", "select a parameter or the Apply line"},
    {"Enter", "edit a number, change a choice, or apply on [ Apply ]"},
    {"0-9 - .", "start typing a number"},
    {"Left Right Space", "change a choice or a yes/no"},
    {"Esc", "undo the edit of a value; else cancel the dialog"},
};

static const struct ui_screen_ops params_ops = {
    .name = "Parameters",
    .overlay = 1,
    .draw = params_draw,
    .key = params_key,
    .free = params_free,
    .fkeys = params_fkeys,
    .n_fkeys = (int)(sizeof params_fkeys / sizeof params_fkeys[0]),
    .help = params_help,
    .n_help = (int)(sizeof params_help / sizeof params_help[0]),
};

/* Starting values: the tensor's own when it already uses this scheme
 * (for a glob: the tensor shown, so a role's bits=4 comes back as 4),
 * else the defaults. */
static void initial_values(struct tui *t, struct params_dialog *d)
{
    const struct qassign *a = wb_assign(t->w);
    const struct qscheme_config *cur =
        a && a->config[d->tensor] ? qpipeline_main(a->config[d->tensor]) : NULL;
    if (cur && cur->ref.scheme == d->ref.scheme) {
        memcpy(d->v, cur->values, (size_t)d->n * sizeof *d->v);
        return;
    }
    for (int i = 0; i < d->n; i++) {
        const struct qlab_param *p = param(d, i);
        d->v[i] = (struct qlab_value){.i = (int64_t)p->def, .f = p->def};
    }
}

struct ui_screen *dialog_params_new(struct tui *t, int tensor, const char *glob,
                                    struct qscheme_ref ref)
{
    struct params_dialog *d = calloc(1, sizeof *d);
    if (d) {
        d->n = (int)ref.scheme->n_params;
        d->v = calloc((size_t)(d->n > 0 ? d->n : 1), sizeof *d->v);
    }
    if (!d || !d->v || (glob && !(d->glob = strdup(glob)))) {
        params_free(d ? &d->base : NULL);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    d->base.ops = &params_ops;
    d->tensor = tensor;
    d->ref = ref;
    initial_values(t, d);
    update_note(t, d);
    return &d->base;
}
