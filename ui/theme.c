/* theme.c — colour pairs for the semantic UI elements, and UTF-8 or ASCII glyphs. */
#include "theme.h"

/* ---- glyphs ---------------------------------------------------------------- */

static const struct ui_glyphs glyphs_utf8 = {
    .h = "\u2500", .v = "\u2502", .tl = "\u250c", .tr = "\u2510", .bl = "\u2514", .br = "\u2518",
    .bar_done = "\u2588", .bar_todo = "\u2591", .delta = "\u0394", .ellipsis = "\u2026",
    .up = "\u25b2", .down = "\u25bc", .open = "\u25be", .closed = "\u25b8",
    .shade = {"\u00b7", "\u2591", "\u2592", "\u2593", "\u2588"},
    .optimum = "\u25c6", .measured = "\u25cb", .point = "*", .dot = ".", .tick = "\u252c",
};

static const struct ui_glyphs glyphs_ascii = {
    .h = "-", .v = "|", .tl = "+", .tr = "+", .bl = "+", .br = "+",
    .bar_done = "#", .bar_todo = ".", .delta = "d", .ellipsis = "~",
    .up = "^", .down = "v", .open = "-", .closed = "+",
    .shade = {".", ":", "=", "*", "#"},
    .optimum = "O", .measured = "o", .point = "*", .dot = ".", .tick = "+",
};

/* ---- colours ------------------------------------------------------------------ */

struct el_def {
    short fg, bg, fg256, bg256;
    attr_t attr, mono;
};

static const struct el_def el_defs[UI_EL_COUNT] = {
#define UI_EL_DEF(name, fg, bg, fg256, bg256, attr, mono) \
    [UI_##name] = {fg, bg, fg256, bg256, attr, mono},
    UI_ELEMENTS(UI_EL_DEF)
#undef UI_EL_DEF
};

void ui_theme_init(struct ui_theme *th, int want_color, int utf8)
{
    th->utf8 = utf8;
    th->g = utf8 ? &glyphs_utf8 : &glyphs_ascii;
    th->color = 0;
    if (want_color && has_colors() && start_color() == OK && COLOR_PAIRS > UI_EL_COUNT) {
        /* Without default-colour support, -1 means black on white-on-black. */
        int defaults = use_default_colors() == OK;
        int rich = COLORS >= 256;
        th->color = 1;
        for (int i = 0; i < UI_EL_COUNT; i++) {
            const struct el_def *d = &el_defs[i];
            short fg = rich ? d->fg256 : d->fg;
            short bg = rich ? d->bg256 : d->bg;
            if (!defaults) {
                fg = fg < 0 ? COLOR_WHITE : fg;
                bg = bg < 0 ? COLOR_BLACK : bg;
            }
            init_pair((short)(i + 1), fg, bg);
            th->attr[i] = COLOR_PAIR(i + 1) | d->attr;
        }
        return;
    }
    for (int i = 0; i < UI_EL_COUNT; i++)
        th->attr[i] = el_defs[i].mono;
}
