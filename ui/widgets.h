/* widgets.h — drawing pieces the screens share: text cells, boxes, tables, bars, a line editor. */
#ifndef QLAB_UI_WIDGETS_H
#define QLAB_UI_WIDGETS_H

#include <stddef.h>
#include <stdint.h>

#include "theme.h"

/* ---- keys ---------------------------------------------------------------- */
#define UI_KEY_ESC 27
#define UI_KEY_CTRL(c) ((c) & 0x1f)
int ui_key_is_enter(int ch);
int ui_key_is_backspace(int ch);

/* ---- text -------------------------------------------------------------- */
enum ui_align { UI_LEFT, UI_RIGHT };

/* Display columns of UTF-8 text (control or invalid bytes count as one). */
int ui_width(const char *s);
/* Writes s at (y, x) in at most w columns, cut with an ellipsis when it is
 * longer; returns the columns written. Control and invalid bytes show as '?'. */
int ui_print(const struct ui_theme *th, int y, int x, int w, attr_t a, const char *s);
int ui_printf(const struct ui_theme *th, int y, int x, int w, attr_t a, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Word-wraps s into at most max_lines lines of w columns from (y, x);
 * returns the lines used. */
int ui_wrap(const struct ui_theme *th, int y, int x, int w, int max_lines, attr_t a,
            const char *s);
/* Exactly w columns: s aligned, padded with spaces in attribute a. */
void ui_cell(const struct ui_theme *th, int y, int x, int w, attr_t a, enum ui_align al,
             const char *s);
void ui_fill(int y, int x, int w, attr_t a);
/* "label value" at (y, x), label in UI_LABEL and value in el, not past
 * column xmax; returns the column after it plus a gap of two. */
int ui_kv(const struct ui_theme *th, int y, int x, int xmax, const char *label, const char *value,
          enum ui_el el);

/* ---- numbers as people read them ------------------------------------------ */
void ui_fmt_bytes(double bytes, char *buf, size_t size);       /* "312.4 KiB" */
void ui_fmt_bytes_short(double bytes, char *buf, size_t size); /* "312.4K" */
/* Metric with a fixed number of decimals, "-" when not a number. */
void ui_fmt_num(double v, int decimals, char *buf, size_t size);

/* An ISO 8601 UTC time ("2024-05-01T12:34:56.789Z") in local time with
 * strftime's fmt; the text itself when it does not parse. */
void ui_fmt_time(const char *iso, const char *fmt, char *buf, size_t size);

/* ---- boxes, dialogs, bars ---------------------------------------------------- */
struct ui_rect {
    int y, x, h, w;
};

/* The screen area above the status line and the function bar. */
struct ui_rect ui_body(void);
/* Draws a framed box filled with body, the title in its top border. */
void ui_box(const struct ui_theme *th, struct ui_rect r, const char *title, enum ui_el border,
            enum ui_el body);
/* A centred dialog of about h x w (clamped to the body); returns its
 * interior, one row and two columns inside the frame. */
struct ui_rect ui_dialog(const struct ui_theme *th, int h, int w, const char *title);
/* A progress bar of w columns, frac in [0, 1]. */
void ui_bar(const struct ui_theme *th, int y, int x, int w, double frac);

/* ---- function bar and status line ------------------------------------------ */
struct ui_fkey {
    const char *key, *label; /* "F1", "Help" */
};
void ui_fnbar(const struct ui_theme *th, const struct ui_fkey *keys, int n);
void ui_statusline(const struct ui_theme *th, const char *msg, int error);

/* ---- a scrolling table ------------------------------------------------------------ */
#define UI_TABLE_MAX_COLS 12

struct ui_col {
    const char *title;
    int width;             /* columns; the least width when flex > 0 */
    int flex;              /* share of the spare width (0: fixed) */
    enum ui_align align;
    int hide;              /* when too narrow, higher hides first; 0: never */
};

struct ui_table {
    const struct ui_col *cols;
    int n_cols;
    int n_rows;
    int cur, top;          /* selected row, first row shown */
    int page;              /* rows shown by the last draw */
    /* Text and element of one cell; *el comes in as UI_NORMAL. */
    void (*cell)(void *ctx, int row, int col, char *buf, size_t size, enum ui_el *el);
    void *ctx;
};

/* Header row plus rows in h lines; keeps cur visible. */
void ui_table_draw(const struct ui_theme *th, struct ui_table *t, int y, int x, int h, int w);
/* Arrows, j/k, PgUp/PgDn, g/G, Home/End. Returns 1 when ch was one of them. */
int ui_table_key(struct ui_table *t, int ch);
void ui_table_set_rows(struct ui_table *t, int n_rows);

/* ---- a one-line text editor (ASCII) --------------------------------------------- */
struct ui_line {
    char buf[256];
    int len, pos;          /* bytes, cursor */
};

void ui_line_set(struct ui_line *l, const char *s);
/* Printable characters, Backspace, Delete, arrows, Home/End, Ctrl-A/E/U/K/W.
 * Returns 1 when ch was used. */
int ui_line_key(struct ui_line *l, int ch);
/* Draws the text in w columns (scrolled so the cursor shows) and returns
 * the cursor's column in *cx. */
void ui_line_draw(const struct ui_theme *th, const struct ui_line *l, int y, int x, int w,
                  attr_t a, int *cx);

#endif
