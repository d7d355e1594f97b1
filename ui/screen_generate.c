/* screen_generate.c — the generation panel: the float and the quantized continuation of one prompt, scrollable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "ui.h"

#define HEADER_LINES 3   /* title, prompt and recipe, agreement */
#define SIDE_BY_SIDE 120 /* columns from which the two texts stand side by side */

struct gen_screen {
    struct ui_screen base;
    struct wb_generation g;      /* owned texts */
    char prompt[256];
    char *recipe;                /* the recipe the quantized text came from */
    int n_asked;                 /* tokens asked for */
    size_t diverge;              /* bytes the two texts share from the start */
    int top;                     /* first body line shown */
    int n_lines, page;           /* of the last draw: for scrolling */
};

/* ---- wrapping ------------------------------------------------------------------ */

struct span {
    size_t off, len;             /* bytes of the text on one screen line */
};

/* Bytes and display columns of the character at s (invalid or control
 * bytes: one byte, one column, as ui_print shows them). */
static void char_at(const char *s, size_t left, size_t *bytes, int *cols)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    wchar_t c;
    size_t k = mbrtowc(&c, s, left, &st);
    if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
        *bytes = 1;
        *cols = 1;
        return;
    }
    int w = wcwidth(c);
    *bytes = k;
    *cols = w < 0 || c < 32 ? 1 : w;
}

/* Word-wraps text into lines of at most w columns ('\n' breaks a line);
 * fills up to max spans (out may be NULL to count) and returns the count. */
static int wrap(const char *text, int w, struct span *out, int max)
{
    size_t len = strlen(text), pos = 0;
    int n = 0;
    if (w < 1)
        w = 1;
    while (pos < len) {
        size_t i = pos, space = 0;
        int used = 0, has_space = 0;
        while (i < len && text[i] != '\n') {
            size_t k;
            int cw;
            char_at(text + i, len - i, &k, &cw);
            if (used + cw > w && i > pos)
                break;
            if (text[i] == ' ') {
                space = i;
                has_space = 1;
            }
            used += cw;
            i += k;
        }
        size_t end = i, next = i;
        if (i < len && text[i] == '\n') {
            next = i + 1;
        } else if (i < len && has_space && space > pos) {
            end = space; /* break at the last space; it is not shown */
            next = space + 1;
        }
        if (out && n < max)
            out[n] = (struct span){pos, end - pos};
        n++;
        pos = next;
    }
    return n;
}

/* ---- drawing ------------------------------------------------------------------ */

/* One line of text from byte off: bytes before `diverge` in a, the rest in b. */
static void draw_span(struct tui *t, int y, int x, int w, const char *text, struct span sp,
                      size_t diverge, attr_t a, attr_t b)
{
    char buf[1024];
    size_t cut = sp.off >= diverge ? 0 : diverge - sp.off < sp.len ? diverge - sp.off : sp.len;
    size_t n = cut < sizeof buf ? cut : sizeof buf - 1;
    memcpy(buf, text + sp.off, n);
    buf[n] = 0;
    int used = n ? ui_print(&t->th, y, x, w, a, buf) : 0;
    if (cut >= sp.len || used >= w)
        return;
    n = sp.len - cut < sizeof buf ? sp.len - cut : sizeof buf - 1;
    memcpy(buf, text + sp.off + cut, n);
    buf[n] = 0;
    ui_print(&t->th, y, x + used, w - used, b, buf);
}

static void draw_header(struct tui *t, const struct gen_screen *s)
{
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    ui_printf(&t->th, 0, 1, COLS - 2, a, "qlab  Generation: %s", wb_model(t->w)->name);
    char p[300];
    snprintf(p, sizeof p, "\"%s\"", s->prompt);
    int x = ui_kv(&t->th, 1, 1, COLS - 1, "prompt", s->prompt[0] ? p : "(none: from BOS)",
                  s->prompt[0] ? UI_VALUE : UI_DIM);
    ui_kv(&t->th, 1, x, COLS - 1, "recipe", s->recipe && s->recipe[0] ? s->recipe : "(none: float)",
          s->recipe && s->recipe[0] ? UI_QUANT : UI_DIM);
    const struct wb_generation *g = &s->g;
    int all = g->same_prefix == g->n_float && g->n_float == g->n_quant;
    char v[96];
    if (all)
        snprintf(v, sizeof v, "all %d tokens identical", g->n_float);
    else
        snprintf(v, sizeof v, "first %d tokens identical", g->same_prefix);
    x = ui_kv(&t->th, 2, 1, COLS, NULL, v, all ? UI_GOOD : UI_BAD);
    snprintf(v, sizeof v, "%d of %d", g->n_float, s->n_asked);
    x = ui_kv(&t->th, 2, x, COLS, "float", v, UI_VALUE);
    snprintf(v, sizeof v, "%d", g->n_quant);
    ui_kv(&t->th, 2, x, COLS, "quantized", v, UI_VALUE);
}

/* "Float  32 tokens  1234 tok/s" */
static void heading(struct tui *t, int y, int x, int w, const char *name, int n, double tps)
{
    char h[128];
    snprintf(h, sizeof h, "%s  %d token%s  %.0f tokens/s", name, n, n == 1 ? "" : "s", tps);
    ui_fill(y, x, w, tui_attr(t, UI_TABLE_HEAD));
    ui_print(&t->th, y, x, w, tui_attr(t, UI_TABLE_HEAD), h);
}

/* The texts one above the other, scrolled as one document. */
static void draw_stacked(struct tui *t, struct gen_screen *s, int y0, int h)
{
    int w = COLS - 2;
    int nf = wrap(s->g.float_text, w, NULL, 0), nq = wrap(s->g.quant_text, w, NULL, 0);
    nf += nf == 0;
    nq += nq == 0;
    struct span *f = calloc((size_t)nf, sizeof *f), *q = calloc((size_t)nq, sizeof *q);
    if (!f || !q) {
        free(f);
        free(q);
        ui_print(&t->th, y0, 1, w, tui_attr(t, UI_BAD), "out of memory");
        return;
    }
    wrap(s->g.float_text, w, f, nf);
    wrap(s->g.quant_text, w, q, nq);
    /* lines: heading, float text, blank, heading, quantized text */
    s->n_lines = 1 + nf + 1 + 1 + nq;
    s->page = h;
    if (s->top > s->n_lines - h)
        s->top = s->n_lines - h;
    if (s->top < 0)
        s->top = 0;
    attr_t normal = tui_attr(t, UI_NORMAL), changed = tui_attr(t, UI_QUANT);
    for (int r = 0; r < h; r++) {
        int line = s->top + r, y = y0 + r;
        if (line == 0)
            heading(t, y, 0, COLS, "Float", s->g.n_float, s->g.float_tps);
        else if (line <= nf)
            draw_span(t, y, 1, w, s->g.float_text, f[line - 1], (size_t)-1, normal, normal);
        else if (line == nf + 2)
            heading(t, y, 0, COLS, "Quantized", s->g.n_quant, s->g.quant_tps);
        else if (line > nf + 2 && line < s->n_lines)
            draw_span(t, y, 1, w, s->g.quant_text, q[line - nf - 3], s->diverge, normal,
                      changed);
    }
    if (s->top > 0)
        ui_print(&t->th, y0, COLS - 1, 1, tui_attr(t, UI_TABLE_HEAD), t->th.g->up);
    if (s->top + h < s->n_lines)
        ui_print(&t->th, y0 + h - 1, COLS - 1, 1, tui_attr(t, UI_DIM), t->th.g->down);
    free(f);
    free(q);
}

/* The texts in two columns, scrolled together. */
static void draw_side_by_side(struct tui *t, struct gen_screen *s, int y0, int h)
{
    int w = (COLS - 3) / 2, xq = 2 + w + 1;
    int nf = wrap(s->g.float_text, w, NULL, 0), nq = wrap(s->g.quant_text, w, NULL, 0);
    struct span *f = calloc((size_t)(nf + 1), sizeof *f), *q = calloc((size_t)(nq + 1), sizeof *q);
    if (!f || !q) {
        free(f);
        free(q);
        ui_print(&t->th, y0, 1, COLS - 2, tui_attr(t, UI_BAD), "out of memory");
        return;
    }
    wrap(s->g.float_text, w, f, nf);
    wrap(s->g.quant_text, w, q, nq);
    heading(t, y0, 0, xq - 1, "Float", s->g.n_float, s->g.float_tps);
    heading(t, y0, xq - 1, COLS - xq + 1, " Quantized", s->g.n_quant, s->g.quant_tps);
    int rows = h - 1;
    s->n_lines = nf > nq ? nf : nq;
    s->page = rows;
    if (s->top > s->n_lines - rows)
        s->top = s->n_lines - rows;
    if (s->top < 0)
        s->top = 0;
    attr_t normal = tui_attr(t, UI_NORMAL), changed = tui_attr(t, UI_QUANT);
    for (int r = 0; r < rows; r++) {
        int line = s->top + r, y = y0 + 1 + r;
        if (line < nf)
            draw_span(t, y, 1, w, s->g.float_text, f[line], (size_t)-1, normal, normal);
        ui_print(&t->th, y, xq - 2, 1, tui_attr(t, UI_DIM), t->th.g->v);
        if (line < nq)
            draw_span(t, y, xq, w, s->g.quant_text, q[line], s->diverge, normal, changed);
    }
    if (s->top + rows < s->n_lines)
        ui_print(&t->th, y0 + h - 1, COLS - 1, 1, tui_attr(t, UI_DIM), t->th.g->down);
    free(f);
    free(q);
}

static void gen_draw(struct tui *t, struct ui_screen *scr)
{
    struct gen_screen *s = (struct gen_screen *)scr;
    draw_header(t, s);
    int y0 = HEADER_LINES, h = LINES - 2 - y0;
    if (h < 2)
        return;
    if (COLS >= SIDE_BY_SIDE)
        draw_side_by_side(t, s, y0, h);
    else
        draw_stacked(t, s, y0, h);
}

/* ---- keys ------------------------------------------------------------------------ */

static int gen_key(struct tui *t, struct ui_screen *scr, int ch)
{
    struct gen_screen *s = (struct gen_screen *)scr;
    int page = s->page > 1 ? s->page - 1 : 1;
    switch (ch) {
    case KEY_UP:
    case 'k':
        s->top--;
        break;
    case KEY_DOWN:
    case 'j':
        s->top++;
        break;
    case KEY_PPAGE:
    case UI_KEY_CTRL('b'):
        s->top -= page;
        break;
    case KEY_NPAGE:
    case UI_KEY_CTRL('f'):
    case ' ':
        s->top += page;
        break;
    case KEY_HOME:
    case 'g':
        s->top = 0;
        break;
    case KEY_END:
    case 'G':
        s->top = s->n_lines;
        break;
    case 'n':
        tui_generate(t); /* its prompt goes over this panel, which closes */
        return UI_CLOSE;
    case 'q':
    case UI_KEY_ESC:
    case KEY_LEFT:
    case 'h':
        return UI_CLOSE;
    default:
        return UI_UNHANDLED;
    }
    if (s->top < 0) /* the upper bound is clamped by the draw, which knows the layout */
        s->top = 0;
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void gen_free(struct ui_screen *scr)
{
    struct gen_screen *s = (struct gen_screen *)scr;
    if (!s)
        return;
    wb_generation_clear(&s->g);
    free(s->recipe);
    free(s);
}

static const struct ui_fkey gen_fkeys[] = {
    {"F1", "Help"}, {"Up/Dn", "Scroll"}, {"n", "New"}, {"q", "Back"},
};

static const struct ui_help gen_help[] = {
    {"Up Down j k", "scroll a line"},
    {"PgUp PgDn Space", "scroll a page"},
    {"g G Home End", "top, bottom"},
    {"n", "generate again with another prompt or length"},
    {"q Esc h", "back to the Model screen"},
    {"(highlighted)", "quantized text from where it leaves the float"},
};

static const struct ui_screen_ops gen_ops = {
    .name = "Generation",
    .draw = gen_draw,
    .key = gen_key,
    .free = gen_free,
    .fkeys = gen_fkeys,
    .n_fkeys = (int)(sizeof gen_fkeys / sizeof gen_fkeys[0]),
    .help = gen_help,
    .n_help = (int)(sizeof gen_help / sizeof gen_help[0]),
};

struct ui_screen *screen_generate_new(struct tui *t, struct wb_generation *g, const char *prompt,
                                      int n_asked)
{
    struct gen_screen *s = calloc(1, sizeof *s);
    if (!s || !(s->recipe = strdup(wb_recipe_text(t->w)))) {
        gen_free(s ? &s->base : NULL);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    s->base.ops = &gen_ops;
    s->g = *g;
    memset(g, 0, sizeof *g); /* the texts are the screen's now */
    if (!s->g.float_text)
        s->g.float_text = strdup("");
    if (!s->g.quant_text)
        s->g.quant_text = strdup("");
    if (!s->g.float_text || !s->g.quant_text) {
        gen_free(&s->base);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    snprintf(s->prompt, sizeof s->prompt, "%s", prompt);
    s->n_asked = n_asked;
    const char *a = s->g.float_text, *b = s->g.quant_text;
    while (a[s->diverge] && a[s->diverge] == b[s->diverge])
        s->diverge++;
    if (!a[s->diverge] && !b[s->diverge])
        s->diverge = (size_t)-1; /* the same text: nothing to mark */
    else /* mark from the start of the character that differs */
        while (s->diverge > 0 && ((unsigned char)b[s->diverge] & 0xC0) == 0x80)
            s->diverge--;
    return &s->base;
}
