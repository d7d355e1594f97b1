/* prompt.c — a one-line text prompt drawn on the status line (filter, glob, recipe). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

struct prompt {
    struct ui_screen base;
    char label[64];
    struct ui_line line;
    struct ui_prompt_cb cb;
};

static void prompt_draw(struct tui *t, struct ui_screen *s)
{
    struct prompt *p = (struct prompt *)s;
    int y = LINES - 2;
    ui_fill(y, 0, COLS, tui_attr(t, UI_STATUS));
    int x = 1 + ui_print(&t->th, y, 1, COLS - 2, tui_attr(t, UI_LABEL), p->label);
    x++;
    int cx;
    ui_line_draw(&t->th, &p->line, y, x, COLS - x - 1, tui_attr(t, UI_EDIT), &cx);
    t->cursor_y = y;
    t->cursor_x = cx;
}

static int prompt_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct prompt *p = (struct prompt *)s;
    if (ui_key_is_enter(ch)) {
        p->cb.accept(t, p->cb.ctx, p->line.buf);
        return UI_CLOSE;
    }
    if (ch == UI_KEY_ESC) {
        if (p->cb.cancel)
            p->cb.cancel(t, p->cb.ctx);
        return UI_CLOSE;
    }
    if (ch == KEY_F(10))
        return UI_QUIT;
    char before[sizeof p->line.buf];
    memcpy(before, p->line.buf, sizeof before);
    if (!ui_line_key(&p->line, ch))
        return 0; /* typing keys are not global keys here */
    if (p->cb.change && strcmp(before, p->line.buf) != 0)
        p->cb.change(t, p->cb.ctx, p->line.buf);
    return 0;
}

static void prompt_free(struct ui_screen *s)
{
    free(s);
}

static const struct ui_fkey prompt_fkeys[] = {
    {"Enter", "OK"}, {"Esc", "Cancel"}, {"^U", "Clear"}, {"^W", "Word"},
};

static const struct ui_help prompt_help[] = {
    {"Enter", "accept"},
    {"Esc", "cancel"},
    {"Left Right Home End", "move in the text"},
    {"Backspace Del ^U ^K ^W", "delete a character, to the start, to the end, a word"},
};

static const struct ui_screen_ops prompt_ops = {
    .name = "Prompt",
    .overlay = 1,
    .owns_status = 1,
    .draw = prompt_draw,
    .key = prompt_key,
    .free = prompt_free,
    .fkeys = prompt_fkeys,
    .n_fkeys = (int)(sizeof prompt_fkeys / sizeof prompt_fkeys[0]),
    .help = prompt_help,
    .n_help = (int)(sizeof prompt_help / sizeof prompt_help[0]),
};

struct ui_screen *prompt_new(struct tui *t, const char *label, const char *init,
                             struct ui_prompt_cb cb)
{
    struct prompt *p = calloc(1, sizeof *p);
    if (!p) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    p->base.ops = &prompt_ops;
    snprintf(p->label, sizeof p->label, "%s", label);
    ui_line_set(&p->line, init);
    p->cb = cb;
    return &p->base;
}
