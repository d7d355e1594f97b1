/* theme.h — semantic colours (one X-macro of UI elements) and the line-drawing characters. */
#ifndef QLAB_UI_THEME_H
#define QLAB_UI_THEME_H

#include <ncurses.h>

/* Every element the UI draws, with its colours and its monochrome look.
 *   X(name, fg, bg, fg256, bg256, colour attributes, monochrome attributes)
 * -1 is the terminal's default colour; fg256/bg256 are used when the
 * terminal has 256 colours. Monochrome uses bold and reverse (and dim for
 * the coolest heat bucket). HEAT0..HEAT4 are the buckets of a heatmap,
 * from the least metric change to the most (UI_HEAT_BUCKETS of them). */
#define UI_ELEMENTS(X)                                                                    \
    X(NORMAL,        -1,            -1,          -1,  -1,  A_NORMAL, A_NORMAL)            \
    X(TITLE,         COLOR_BLACK,   COLOR_CYAN,  16,  74,  A_BOLD,   A_REVERSE | A_BOLD)  \
    X(LABEL,         COLOR_CYAN,    -1,          110, -1,  A_NORMAL, A_NORMAL)            \
    X(VALUE,         -1,            -1,          -1,  -1,  A_BOLD,   A_BOLD)              \
    X(DIM,           COLOR_BLUE,    -1,          244, -1,  A_NORMAL, A_NORMAL)            \
    X(GOOD,          COLOR_GREEN,   -1,          114, -1,  A_BOLD,   A_BOLD)              \
    X(BAD,           COLOR_RED,     -1,          203, -1,  A_BOLD,   A_BOLD)              \
    X(TABLE_HEAD,    COLOR_BLACK,   COLOR_GREEN, 16,  108, A_NORMAL, A_REVERSE)           \
    X(CURSOR,        COLOR_BLACK,   COLOR_CYAN,  16,  117, A_NORMAL, A_REVERSE)           \
    X(FLOAT,         -1,            -1,          250, -1,  A_NORMAL, A_NORMAL)            \
    X(QUANT,         COLOR_YELLOW,  -1,          221, -1,  A_BOLD,   A_BOLD)              \
    X(STATUS,        -1,            -1,          -1,  -1,  A_NORMAL, A_NORMAL)            \
    X(ERROR,         COLOR_WHITE,   COLOR_RED,   231, 160, A_BOLD,   A_REVERSE | A_BOLD)  \
    X(FKEY,          -1,            -1,          -1,  -1,  A_BOLD,   A_BOLD)              \
    X(FLABEL,        COLOR_BLACK,   COLOR_CYAN,  16,  74,  A_NORMAL, A_REVERSE)           \
    X(DIALOG,        COLOR_WHITE,   COLOR_BLUE,  252, 237, A_NORMAL, A_NORMAL)            \
    X(DIALOG_BORDER, COLOR_CYAN,    COLOR_BLUE,  74,  237, A_BOLD,   A_NORMAL)            \
    X(DIALOG_TITLE,  COLOR_YELLOW,  COLOR_BLUE,  221, 237, A_BOLD,   A_BOLD)              \
    X(DIALOG_DIM,    COLOR_CYAN,    COLOR_BLUE,  246, 237, A_NORMAL, A_NORMAL)            \
    X(DIALOG_ERROR,  COLOR_RED,     COLOR_BLUE,  210, 237, A_BOLD,   A_BOLD)              \
    X(HEADING,       COLOR_YELLOW,  COLOR_BLUE,  221, 237, A_BOLD,   A_BOLD)              \
    X(EDIT,          COLOR_BLACK,   COLOR_WHITE, 16,  252, A_NORMAL, A_BOLD)              \
    X(BAR_DONE,      COLOR_GREEN,   COLOR_BLUE,  114, 237, A_BOLD,   A_REVERSE)           \
    X(BAR_TODO,      COLOR_CYAN,    COLOR_BLUE,  240, 237, A_NORMAL, A_NORMAL)            \
    X(HEAT0,         COLOR_WHITE,   COLOR_BLUE,  231, 25,  A_NORMAL, A_DIM)               \
    X(HEAT1,         COLOR_BLACK,   COLOR_CYAN,  16,  37,  A_NORMAL, A_NORMAL)            \
    X(HEAT2,         COLOR_BLACK,   COLOR_GREEN, 16,  114, A_NORMAL, A_BOLD)              \
    X(HEAT3,         COLOR_BLACK,   COLOR_YELLOW,16,  221, A_NORMAL, A_REVERSE)           \
    X(HEAT4,         COLOR_WHITE,   COLOR_RED,   231, 160, A_BOLD,   A_REVERSE | A_BOLD)

enum ui_el {
#define UI_EL_ENUM(name, fg, bg, fg256, bg256, attr, mono) UI_##name,
    UI_ELEMENTS(UI_EL_ENUM)
#undef UI_EL_ENUM
    UI_EL_COUNT
};

#define UI_HEAT_BUCKETS 5 /* UI_HEAT0 .. UI_HEAT4 */

/* Characters for boxes, bars and a few symbols: UTF-8 or plain ASCII. */
struct ui_glyphs {
    const char *h, *v, *tl, *tr, *bl, *br; /* box lines and corners */
    const char *bar_done, *bar_todo;       /* progress bar cells */
    const char *delta;                     /* "Δ" */
    const char *ellipsis;                  /* marks text cut short, one column */
    const char *up, *down;                 /* "more above/below" marks */
    const char *open, *closed;             /* an expanded and a collapsed tree row */
    const char *shade[5];                  /* heat buckets, coolest first (monochrome marks) */
    const char *optimum, *measured;        /* chart markers: the optimum, a verified value */
    const char *point, *dot;               /* ASCII charts: a front point, a line between */
    const char *tick;                      /* a tick on the x axis */
};

struct ui_theme {
    int color;                      /* colour pairs in use */
    int utf8;                       /* UTF-8 glyphs */
    attr_t attr[UI_EL_COUNT];
    const struct ui_glyphs *g;
};

/* Fills th. With want_color and a colour terminal it sets up colour pairs
 * (call after initscr); otherwise the monochrome attributes are used. */
void ui_theme_init(struct ui_theme *th, int want_color, int utf8);

static inline attr_t ui_attr(const struct ui_theme *th, enum ui_el el)
{
    return th->attr[el];
}

#endif
