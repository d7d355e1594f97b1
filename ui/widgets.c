/* widgets.c — text cells, boxes, progress bars, the function bar, tables and a line editor. */
#include "widgets.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

/* ---- keys ---------------------------------------------------------------- */

int ui_key_is_enter(int ch)
{
    return ch == '\n' || ch == '\r' || ch == KEY_ENTER;
}

int ui_key_is_backspace(int ch)
{
    return ch == KEY_BACKSPACE || ch == 127 || ch == 8;
}

/* ---- text -------------------------------------------------------------- */

#define WTEXT_MAX 1024 /* characters of one drawn string; longer text is cut */

/* Decodes s into printable wide characters and their widths. */
static int decode(const char *s, wchar_t *wc, int *wd, int max)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t left = strlen(s);
    int n = 0;
    while (left > 0 && n < max) {
        wchar_t c;
        size_t k = mbrtowc(&c, s, left, &st);
        if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
            memset(&st, 0, sizeof st);
            c = L'?';
            k = 1;
        }
        int w = wcwidth(c);
        if (w < 0 || c < 32) {
            c = L'?';
            w = 1;
        }
        wc[n] = c;
        wd[n] = w;
        n++;
        s += k;
        left -= k;
    }
    return n;
}

int ui_width(const char *s)
{
    wchar_t wc[WTEXT_MAX];
    int wd[WTEXT_MAX];
    int n = decode(s, wc, wd, WTEXT_MAX), w = 0;
    for (int i = 0; i < n; i++)
        w += wd[i];
    return w;
}

int ui_print(const struct ui_theme *th, int y, int x, int w, attr_t a, const char *s)
{
    if (w <= 0 || y < 0 || y >= LINES || x < 0 || x >= COLS)
        return 0;
    if (x + w > COLS)
        w = COLS - x;
    wchar_t wc[WTEXT_MAX + 1];
    int wd[WTEXT_MAX];
    int n = decode(s, wc, wd, WTEXT_MAX), total = 0;
    for (int i = 0; i < n; i++)
        total += wd[i];
    int k = 0, used = 0, cut = total > w;
    int room = cut ? w - 1 : w; /* one column for the ellipsis */
    while (k < n && used + wd[k] <= room)
        used += wd[k++];
    attrset(a);
    if (k > 0)
        mvaddnwstr(y, x, wc, k);
    if (cut && used < w) {
        mvaddstr(y, x + used, th->g->ellipsis);
        used++;
    }
    attrset(A_NORMAL);
    return used;
}

int ui_printf(const struct ui_theme *th, int y, int x, int w, attr_t a, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return ui_print(th, y, x, w, a, buf);
}

int ui_wrap(const struct ui_theme *th, int y, int x, int w, int max_lines, attr_t a,
            const char *s)
{
    int lines = 0;
    while (*s && lines < max_lines && w > 0) {
        while (*s == ' ')
            s++;
        size_t len = strlen(s);
        char line[1024];
        size_t take = len;
        if (ui_width(s) > w && lines < max_lines - 1) {
            /* the longest prefix of whole words that fits; a long word is cut */
            size_t best = 0;
            for (size_t i = 1; i <= len && i < sizeof line; i++) {
                if (s[i] != ' ' && s[i] != 0)
                    continue;
                snprintf(line, sizeof line, "%.*s", (int)i, s);
                if (ui_width(line) > w)
                    break;
                best = i;
            }
            take = best ? best : (size_t)w;
        }
        if (take > len)
            take = len;
        if (take >= sizeof line)
            take = sizeof line - 1;
        snprintf(line, sizeof line, "%.*s", (int)take, s);
        ui_print(th, y + lines, x, w, a, line);
        s += take;
        lines++;
    }
    return lines;
}

void ui_fill(int y, int x, int w, attr_t a)
{
    if (y < 0 || y >= LINES || x < 0 || w <= 0)
        return;
    if (x + w > COLS)
        w = COLS - x;
    attrset(a);
    mvhline(y, x, ' ', w);
    attrset(A_NORMAL);
}

void ui_cell(const struct ui_theme *th, int y, int x, int w, attr_t a, enum ui_align al,
             const char *s)
{
    if (w <= 0)
        return;
    ui_fill(y, x, w, a);
    int tw = ui_width(s);
    int off = al == UI_RIGHT && tw < w ? w - tw : 0;
    ui_print(th, y, x + off, w - off, a, s);
}

int ui_kv(const struct ui_theme *th, int y, int x, int xmax, const char *label, const char *value,
          enum ui_el el)
{
    if (x >= xmax)
        return x;
    if (label && *label) {
        x += ui_print(th, y, x, xmax - x, ui_attr(th, UI_LABEL), label);
        x++;
    }
    if (x < xmax)
        x += ui_print(th, y, x, xmax - x, ui_attr(th, el), value);
    return x + 2;
}

/* ---- numbers ------------------------------------------------------------------- */

static void fmt_bytes(double b, char *buf, size_t size, const char *const *units)
{
    int u = 0;
    while (fabs(b) >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f%s", b, units[0]);
    else
        snprintf(buf, size, "%.*f%s", fabs(b) < 100 ? 1 : 0, b, units[u]);
}

void ui_fmt_bytes(double bytes, char *buf, size_t size)
{
    static const char *const units[] = {" B", " KiB", " MiB", " GiB", " TiB"};
    fmt_bytes(bytes, buf, size, units);
}

void ui_fmt_bytes_short(double bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "K", "M", "G", "T"};
    fmt_bytes(bytes, buf, size, units);
}

void ui_fmt_num(double v, int decimals, char *buf, size_t size)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "inf" : "-inf");
    else
        snprintf(buf, size, "%.*f", decimals, v);
}

void ui_fmt_time(const char *iso, const char *fmt, char *buf, size_t size)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!iso || !strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(buf, size, "%s", iso ? iso : "-");
        return;
    }
    time_t when = timegm(&tm);
    struct tm local;
    if (!localtime_r(&when, &local) || strftime(buf, size, fmt, &local) == 0)
        snprintf(buf, size, "%s", iso);
}

/* ---- boxes, dialogs, bars ---------------------------------------------------- */

struct ui_rect ui_body(void)
{
    return (struct ui_rect){0, 0, LINES - 2 > 0 ? LINES - 2 : 0, COLS};
}

static void glyph(int y, int x, const char *g, attr_t a)
{
    if (y < 0 || y >= LINES || x < 0 || x >= COLS)
        return;
    attrset(a);
    mvaddstr(y, x, g);
    attrset(A_NORMAL);
}

void ui_box(const struct ui_theme *th, struct ui_rect r, const char *title, enum ui_el border,
            enum ui_el body)
{
    if (r.h < 2 || r.w < 2)
        return;
    attr_t ab = ui_attr(th, border), ai = ui_attr(th, body);
    const struct ui_glyphs *g = th->g;
    for (int y = r.y; y < r.y + r.h; y++)
        ui_fill(y, r.x, r.w, ai);
    for (int x = r.x + 1; x < r.x + r.w - 1; x++) {
        glyph(r.y, x, g->h, ab);
        glyph(r.y + r.h - 1, x, g->h, ab);
    }
    for (int y = r.y + 1; y < r.y + r.h - 1; y++) {
        glyph(y, r.x, g->v, ab);
        glyph(y, r.x + r.w - 1, g->v, ab);
    }
    glyph(r.y, r.x, g->tl, ab);
    glyph(r.y, r.x + r.w - 1, g->tr, ab);
    glyph(r.y + r.h - 1, r.x, g->bl, ab);
    glyph(r.y + r.h - 1, r.x + r.w - 1, g->br, ab);
    if (title && *title && r.w > 6) {
        char t[256];
        snprintf(t, sizeof t, " %s ", title);
        ui_print(th, r.y, r.x + 2, r.w - 4, ui_attr(th, UI_DIALOG_TITLE), t);
    }
}

struct ui_rect ui_dialog(const struct ui_theme *th, int h, int w, const char *title)
{
    struct ui_rect b = ui_body();
    if (h > b.h)
        h = b.h;
    if (w > b.w - 2)
        w = b.w - 2;
    struct ui_rect r = {b.y + (b.h - h) / 2, b.x + (b.w - w) / 2, h, w};
    ui_box(th, r, title, UI_DIALOG_BORDER, UI_DIALOG);
    return (struct ui_rect){r.y + 1, r.x + 2, r.h - 2, r.w - 4};
}

void ui_bar(const struct ui_theme *th, int y, int x, int w, double frac)
{
    if (!(frac >= 0))
        frac = 0;
    if (frac > 1)
        frac = 1;
    int done = (int)(frac * w + 0.5);
    for (int i = 0; i < w; i++)
        glyph(y, x + i, i < done ? th->g->bar_done : th->g->bar_todo,
              ui_attr(th, i < done ? UI_BAR_DONE : UI_BAR_TODO));
}

/* ---- function bar and status line ------------------------------------------ */

void ui_fnbar(const struct ui_theme *th, const struct ui_fkey *keys, int n)
{
    int y = LINES - 1, x = 0;
    ui_fill(y, 0, COLS, ui_attr(th, UI_FLABEL));
    for (int i = 0; i < n && x < COLS; i++) {
        x += ui_print(th, y, x, COLS - x, ui_attr(th, UI_FKEY), keys[i].key);
        char label[64];
        snprintf(label, sizeof label, "%s ", keys[i].label);
        x += ui_print(th, y, x, COLS - x, ui_attr(th, UI_FLABEL), label);
        x++; /* a gap in the bar's colour */
    }
}

void ui_statusline(const struct ui_theme *th, const char *msg, int error)
{
    int y = LINES - 2;
    attr_t a = ui_attr(th, error ? UI_ERROR : UI_STATUS);
    ui_fill(y, 0, COLS, ui_attr(th, UI_STATUS));
    if (msg && *msg) {
        if (error)
            ui_fill(y, 0, COLS, a);
        ui_print(th, y, 1, COLS - 2, a, msg);
    }
}

/* ---- table ------------------------------------------------------------------------- */

void ui_table_set_rows(struct ui_table *t, int n_rows)
{
    t->n_rows = n_rows;
    if (t->cur >= n_rows)
        t->cur = n_rows - 1;
    if (t->cur < 0)
        t->cur = 0;
    if (t->top > t->cur)
        t->top = t->cur;
}

/* Column widths for w columns: optional columns hidden (width 0) until
 * the rest fits, then the spare width goes to the flex ones by share;
 * what still does not fit is cut at the right. */
static void col_widths(const struct ui_table *t, int w, int *cw)
{
    int shown[UI_TABLE_MAX_COLS];
    for (int i = 0; i < t->n_cols; i++)
        shown[i] = 1;
    int fixed, flex;
    for (;;) {
        fixed = flex = 0;
        int n = 0, drop = -1;
        for (int i = 0; i < t->n_cols; i++) {
            if (!shown[i])
                continue;
            fixed += t->cols[i].width + (n++ > 0);
            flex += t->cols[i].flex;
            if (t->cols[i].hide > 0 && (drop < 0 || t->cols[i].hide > t->cols[drop].hide))
                drop = i;
        }
        if (fixed <= w || drop < 0)
            break;
        shown[drop] = 0;
    }
    int spare = w - fixed, left = spare > 0 ? spare : 0;
    for (int i = 0; i < t->n_cols; i++) {
        cw[i] = shown[i] ? t->cols[i].width : 0;
        if (shown[i] && spare > 0 && t->cols[i].flex > 0) {
            int add = spare * t->cols[i].flex / flex;
            cw[i] += add;
            left -= add;
        }
    }
    for (int i = t->n_cols - 1; i >= 0 && left > 0; i--) /* the rounding rest */
        if (shown[i] && t->cols[i].flex > 0) {
            cw[i] += left;
            left = 0;
        }
    for (int i = 0, x = 0; i < t->n_cols; i++) {
        if (!cw[i])
            continue;
        int sep = x > 0;
        if (x + sep + cw[i] > w)
            cw[i] = x + sep < w ? w - x - sep : 0;
        x += sep + cw[i];
    }
}

void ui_table_draw(const struct ui_theme *th, struct ui_table *t, int y, int x, int h, int w)
{
    if (h < 1 || w < 1)
        return;
    int cw[UI_TABLE_MAX_COLS];
    col_widths(t, w, cw);
    attr_t head = ui_attr(th, UI_TABLE_HEAD);
    ui_fill(y, x, w, head);
    for (int c = 0, cx = x; c < t->n_cols; c++) {
        if (!cw[c])
            continue;
        cx += cx > x;
        ui_cell(th, y, cx, cw[c], head, t->cols[c].align, t->cols[c].title);
        cx += cw[c];
    }
    int rows = h - 1;
    t->page = rows > 0 ? rows : 1;
    if (t->cur >= t->n_rows)
        t->cur = t->n_rows - 1;
    if (t->cur < 0)
        t->cur = 0;
    if (t->cur < t->top)
        t->top = t->cur;
    if (t->cur >= t->top + t->page)
        t->top = t->cur - t->page + 1;
    if (t->top > t->n_rows - t->page)
        t->top = t->n_rows - t->page;
    if (t->top < 0)
        t->top = 0;
    for (int r = 0; r < rows; r++) {
        int row = t->top + r;
        int ry = y + 1 + r;
        ui_fill(ry, x, w, ui_attr(th, UI_NORMAL));
        if (row >= t->n_rows)
            continue;
        int sel = row == t->cur;
        if (sel)
            ui_fill(ry, x, w, ui_attr(th, UI_CURSOR));
        for (int c = 0, cx = x; c < t->n_cols; c++) {
            if (!cw[c])
                continue;
            cx += cx > x;
            char buf[512];
            enum ui_el el = UI_NORMAL;
            buf[0] = 0;
            t->cell(t->ctx, row, c, buf, sizeof buf, &el);
            ui_cell(th, ry, cx, cw[c], ui_attr(th, sel ? UI_CURSOR : el), t->cols[c].align, buf);
            cx += cw[c];
        }
    }
    /* marks when rows are hidden above or below */
    if (t->top > 0)
        glyph(y, x + w - 1, th->g->up, head);
    if (t->top + rows < t->n_rows)
        glyph(y + h - 1, x + w - 1, th->g->down, ui_attr(th, UI_DIM));
}

int ui_table_key(struct ui_table *t, int ch)
{
    int page = t->page > 1 ? t->page - 1 : 1;
    switch (ch) {
    case KEY_UP:
    case 'k':
        t->cur--;
        break;
    case KEY_DOWN:
    case 'j':
        t->cur++;
        break;
    case KEY_PPAGE:
    case UI_KEY_CTRL('b'):
        t->cur -= page;
        t->top -= page;
        break;
    case KEY_NPAGE:
    case UI_KEY_CTRL('f'):
        t->cur += page;
        t->top += page;
        break;
    case KEY_HOME:
    case 'g':
        t->cur = 0;
        break;
    case KEY_END:
    case 'G':
        t->cur = t->n_rows - 1;
        break;
    default:
        return 0;
    }
    if (t->cur >= t->n_rows)
        t->cur = t->n_rows - 1;
    if (t->cur < 0)
        t->cur = 0;
    if (t->top < 0)
        t->top = 0;
    return 1;
}

/* ---- line editor ------------------------------------------------------------------ */

void ui_line_set(struct ui_line *l, const char *s)
{
    snprintf(l->buf, sizeof l->buf, "%s", s ? s : "");
    l->len = (int)strlen(l->buf);
    l->pos = l->len;
}

static void line_delete(struct ui_line *l, int from, int to)
{
    memmove(l->buf + from, l->buf + to, (size_t)(l->len - to + 1));
    l->len -= to - from;
    l->pos = from;
}

int ui_line_key(struct ui_line *l, int ch)
{
    if (ch >= 32 && ch < 127) {
        if (l->len + 1 >= (int)sizeof l->buf)
            return 1;
        memmove(l->buf + l->pos + 1, l->buf + l->pos, (size_t)(l->len - l->pos + 1));
        l->buf[l->pos++] = (char)ch;
        l->len++;
        return 1;
    }
    if (ui_key_is_backspace(ch)) {
        if (l->pos > 0)
            line_delete(l, l->pos - 1, l->pos);
        return 1;
    }
    switch (ch) {
    case KEY_DC:
        if (l->pos < l->len)
            line_delete(l, l->pos, l->pos + 1);
        return 1;
    case KEY_LEFT:
        if (l->pos > 0)
            l->pos--;
        return 1;
    case KEY_RIGHT:
        if (l->pos < l->len)
            l->pos++;
        return 1;
    case KEY_HOME:
    case UI_KEY_CTRL('a'):
        l->pos = 0;
        return 1;
    case KEY_END:
    case UI_KEY_CTRL('e'):
        l->pos = l->len;
        return 1;
    case UI_KEY_CTRL('u'):
        line_delete(l, 0, l->pos);
        return 1;
    case UI_KEY_CTRL('k'):
        l->buf[l->pos] = 0;
        l->len = l->pos;
        return 1;
    case UI_KEY_CTRL('w'): {
        int p = l->pos;
        while (p > 0 && l->buf[p - 1] == ' ')
            p--;
        while (p > 0 && l->buf[p - 1] != ' ')
            p--;
        line_delete(l, p, l->pos);
        return 1;
    }
    default:
        return 0;
    }
}

void ui_line_draw(const struct ui_theme *th, const struct ui_line *l, int y, int x, int w,
                  attr_t a, int *cx)
{
    if (w < 2) {
        *cx = x;
        return;
    }
    /* the text is ASCII: one byte, one column */
    int start = l->pos >= w ? l->pos - w + 1 : 0;
    char shown[sizeof l->buf];
    snprintf(shown, sizeof shown, "%.*s", w, l->buf + start);
    ui_fill(y, x, w, a);
    ui_print(th, y, x, w, a, shown);
    *cx = x + l->pos - start;
}
