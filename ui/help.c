/* help.c — the help overlay: every key of the screen beneath, then the global keys. */
#include <stdio.h>
#include <stdlib.h>

#include "ui.h"

struct help {
    struct ui_screen base;
    const struct ui_screen_ops *of;   /* the screen whose keys are listed */
    int top;                          /* first line shown */
};

static int n_lines(const struct help *h)
{
    return h->of->n_help + 1 + ui_n_global_help;
}

static void help_draw(struct tui *t, struct ui_screen *s)
{
    struct help *h = (struct help *)s;
    char title[64];
    snprintf(title, sizeof title, "Help: %s", h->of->name);
    struct ui_rect r = ui_dialog(&t->th, n_lines(h) + 4, 72, title);
    int list = r.h - 2;
    if (h->top > n_lines(h) - list)
        h->top = n_lines(h) - list;
    if (h->top < 0)
        h->top = 0;
    int keys_w = 17;
    for (int i = 0; i < list && h->top + i < n_lines(h); i++) {
        int line = h->top + i, y = r.y + i;
        const struct ui_help *e = NULL;
        if (line < h->of->n_help)
            e = &h->of->help[line];
        else if (line > h->of->n_help)
            e = &ui_global_help[line - h->of->n_help - 1];
        if (!e)
            continue; /* a blank line between the two groups */
        ui_print(&t->th, y, r.x, keys_w, tui_attr(t, UI_DIALOG_TITLE), e->keys);
        ui_print(&t->th, y, r.x + keys_w + 1, r.w - keys_w - 1, tui_attr(t, UI_DIALOG), e->what);
    }
    ui_print(&t->th, r.y + r.h - 1, r.x, r.w, tui_attr(t, UI_DIALOG_DIM),
             n_lines(h) > list ? "Up Down scroll   q Esc close" : "q Esc close");
}

static int help_key(struct tui *t, struct ui_screen *s, int ch)
{
    (void)t;
    struct help *h = (struct help *)s;
    switch (ch) {
    case KEY_UP:
    case 'k':
        h->top--;
        return 0;
    case KEY_DOWN:
    case 'j':
        h->top++;
        return 0;
    case KEY_F(10):
        return UI_QUIT;
    default:
        return UI_CLOSE; /* any other key closes help */
    }
}

static void help_free(struct ui_screen *s)
{
    free(s);
}

static const struct ui_fkey help_fkeys[] = {
    {"q", "Close"}, {"Up/Dn", "Scroll"},
};

static const struct ui_screen_ops help_ops = {
    .name = "Help",
    .overlay = 1,
    .draw = help_draw,
    .key = help_key,
    .free = help_free,
    .fkeys = help_fkeys,
    .n_fkeys = (int)(sizeof help_fkeys / sizeof help_fkeys[0]),
};

struct ui_screen *help_new(struct tui *t, const struct ui_screen *beneath)
{
    struct help *h = calloc(1, sizeof *h);
    if (!h) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    h->base.ops = &help_ops;
    h->of = beneath->ops;
    return &h->base;
}
