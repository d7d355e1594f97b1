/* tui.c — the TUI's main loop: terminal setup, the screen stack, global keys, signals. */
#include "tui.h"

#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ui.h"

#define MIN_COLS 60
#define MIN_LINES 15
#define TICK_MS 100 /* getch timeout: how often progress is redrawn */

/* ---- signals ----------------------------------------------------------------
 * The one piece of global state: a signal handler can only reach a flag.
 * The main loop sees it within TICK_MS and leaves cleanly (job cancelled,
 * terminal restored). */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

struct saved_signals {
    struct sigaction intr, term, hup;
};

static void catch_signals(struct saved_signals *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    got_signal = 0;
    sigaction(SIGINT, &sa, &old->intr);
    sigaction(SIGTERM, &sa, &old->term);
    sigaction(SIGHUP, &sa, &old->hup); /* the terminal went away: still record the run */
}

static void restore_signals(const struct saved_signals *old)
{
    sigaction(SIGINT, &old->intr, NULL);
    sigaction(SIGTERM, &old->term, NULL);
    sigaction(SIGHUP, &old->hup, NULL);
}

/* ---- the screen stack ------------------------------------------------------------ */

void tui_push(struct tui *t, struct ui_screen *s)
{
    if (!s)
        return;
    if (t->depth == UI_MAX_STACK) {
        s->ops->free(s);
        tui_status(t, 1, "too many windows open");
        return;
    }
    t->stack[t->depth++] = s;
}

static void tui_remove(struct tui *t, struct ui_screen *s)
{
    for (int i = 0; i < t->depth; i++)
        if (t->stack[i] == s) {
            memmove(&t->stack[i], &t->stack[i + 1], (size_t)(t->depth - i - 1) * sizeof *t->stack);
            t->depth--;
            s->ops->free(s);
            return;
        }
}

static struct ui_screen *tui_top(const struct tui *t)
{
    return t->depth ? t->stack[t->depth - 1] : NULL;
}

/* ---- shared services -------------------------------------------------------------- */

void tui_status(struct tui *t, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->status, sizeof t->status, fmt, ap);
    va_end(ap);
    t->status_error = error;
    t->status_seq++;
}

int tui_refresh_weights(struct tui *t)
{
    qerr e = {{0}};
    if (wb_refresh(t->w, NULL, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        return -1;
    }
    return 0;
}

int tui_apply(struct tui *t, int tensor, const char *glob, const char *scheme, const char *params)
{
    qerr e = {{0}};
    int rc = glob ? wb_apply_rule(t->w, glob, scheme, params, &e)
                  : wb_apply_tensor(t->w, tensor, scheme, params, &e);
    if (rc < 0) {
        tui_status(t, 1, "%s", e.msg);
        return -1;
    }
    if (tui_refresh_weights(t) < 0)
        return -1;
    const struct qmodel *m = wb_model(t->w);
    if (!glob) {
        tui_status(t, 0, "%s: %s", m->tensors[tensor]->name, wb_tensor_scheme_label(t->w, tensor));
        return 0;
    }
    const struct qassign *a = wb_assign(t->w);
    int n = 0;
    for (int i = 0; a && i < m->n_tensors; i++)
        n += a->rule[i] == a->n_rules - 1;
    tui_status(t, 0, "%s=%s: %d tensor%s", glob, scheme, n, n == 1 ? "" : "s");
    return 0;
}

double tui_scheme_bpw(const struct tui *t, const struct qscheme_ref *ref, const char *params,
                      int tensor, qerr *err)
{
    double bpw;
    return wb_scheme_bits_per_weight(t->w, tensor, ref, params, &bpw, err) < 0 ? NAN : bpw;
}

void tui_scheme_name(const struct tui *t, const struct qscheme_ref *ref, char *buf, size_t size)
{
    const struct qplugin_host *h = wb_plugins(t->w);
    int same = 0;
    for (int p = 0; p < h->n_plugins; p++)
        for (uint32_t s = 0; s < h->plugins[p]->desc->n_schemes; s++)
            same += strcasecmp(h->plugins[p]->desc->schemes[s]->name, ref->scheme->name) == 0;
    if (same > 1)
        snprintf(buf, size, "%s/%s", ref->plugin->desc->name, ref->scheme->name);
    else
        snprintf(buf, size, "%s", ref->scheme->name);
}

const struct ui_help ui_global_help[] = {
    {"F1 ?", "this help"},
    {"Ctrl-L", "redraw the screen"},
    {"F10", "quit qlab (a running evaluation or sweep is cancelled)"},
};
const int ui_n_global_help = (int)(sizeof ui_global_help / sizeof ui_global_help[0]);

/* ---- drawing ------------------------------------------------------------------------ */

static void draw_too_small(const struct tui *t)
{
    char size[64], need[64];
    snprintf(size, sizeof size, "Terminal too small: %dx%d", COLS, LINES);
    snprintf(need, sizeof need, "qlab needs at least %dx%d", MIN_COLS, MIN_LINES);
    const char *lines[] = {size, need, "Enlarge the window, or press q to quit"};
    int y = LINES / 2 - 1;
    for (int i = 0; i < 3; i++) {
        int w = ui_width(lines[i]);
        ui_print(&t->th, y + i, w < COLS ? (COLS - w) / 2 : 0, COLS,
                 tui_attr(t, i == 0 ? UI_BAD : UI_NORMAL), lines[i]);
    }
}

static int too_small(void)
{
    return COLS < MIN_COLS || LINES < MIN_LINES;
}

static void draw_all(struct tui *t)
{
    erase();
    t->cursor_y = t->cursor_x = -1;
    if (too_small()) {
        draw_too_small(t);
    } else if (t->depth > 0) {
        int base = t->depth - 1;
        while (base > 0 && t->stack[base]->ops->overlay && !t->stack[base]->ops->freeze_beneath)
            base--;
        for (int i = base; i < t->depth; i++)
            t->stack[i]->ops->draw(t, t->stack[i]);
        const struct ui_screen *top = tui_top(t);
        if (!top->ops->owns_status)
            ui_statusline(&t->th, t->status, t->status_error);
        for (int i = t->depth - 1; i >= 0; i--)
            if (t->stack[i]->ops->n_fkeys > 0) {
                ui_fnbar(&t->th, t->stack[i]->ops->fkeys, t->stack[i]->ops->n_fkeys);
                break;
            }
    }
    if (t->cursor_y >= 0) {
        move(t->cursor_y, t->cursor_x);
        curs_set(1);
    } else {
        curs_set(0);
    }
    refresh();
}

/* ---- the loop ------------------------------------------------------------------------ */

/* Applies a handler's flags for screen s; returns 1 to quit. */
static int apply_flags(struct tui *t, struct ui_screen *s, int flags)
{
    if (flags & UI_QUIT)
        return 1;
    if (flags & UI_HOME) {
        while (t->depth > 1)
            tui_remove(t, t->stack[t->depth - 1]);
        return 0;
    }
    if (flags & UI_CLOSE)
        tui_remove(t, s);
    return t->depth == 0;
}

static int on_stack(const struct tui *t, const struct ui_screen *s)
{
    for (int i = 0; i < t->depth; i++)
        if (t->stack[i] == s)
            return 1;
    return 0;
}

static int global_key(struct tui *t, int ch)
{
    struct ui_screen *top = tui_top(t);
    if (ch == KEY_F(1) || ch == '?') {
        if (top && strcmp(top->ops->name, "Help") != 0)
            tui_push(t, help_new(t, top));
    } else if (ch == KEY_F(10)) {
        return UI_QUIT;
    }
    return 0;
}

/* Ticks every screen that asks for it; returns 1 to quit. */
static int tick_all(struct tui *t, int *dirty)
{
    struct ui_screen *snap[UI_MAX_STACK];
    int n = t->depth;
    memcpy(snap, t->stack, (size_t)n * sizeof *snap);
    for (int i = 0; i < n; i++) {
        if (!on_stack(t, snap[i]) || !snap[i]->ops->tick)
            continue; /* closed by an earlier tick */
        int f = snap[i]->ops->tick(t, snap[i]);
        *dirty = 1;
        if (apply_flags(t, snap[i], f))
            return 1;
    }
    return 0;
}

static int key(struct tui *t, int ch)
{
    if (ch == UI_KEY_CTRL('l')) {
        clearok(curscr, TRUE);
        return 0;
    }
    if (too_small())
        return ch == 'q' || ch == KEY_F(10);
    struct ui_screen *s = tui_top(t);
    unsigned seq = t->status_seq;
    int f = s->ops->key(t, s, ch);
    if (f & UI_UNHANDLED)
        f = (f & ~UI_UNHANDLED) | global_key(t, ch);
    /* a message lasts until the next key that does not set one */
    if (seq == t->status_seq && tui_top(t) == s)
        t->status[0] = 0;
    return apply_flags(t, s, f);
}

static void run_loop(struct tui *t)
{
    int dirty = 1;
    for (;;) {
        if (got_signal)
            return;
        if (dirty) {
            draw_all(t);
            dirty = 0;
        }
        int ch = getch();
        if (tick_all(t, &dirty))
            return;
        if (ch == ERR)
            continue;
        dirty = 1;
        if (ch == KEY_RESIZE)
            continue;
        if (key(t, ch))
            return;
    }
}

/* ---- entry -------------------------------------------------------------------------- */

static void shutdown_session(struct tui *t)
{
    if (t->job) {
        wb_job_cancel(t->job);
        struct wb_eval_outcome o;
        qerr e;
        wb_job_finish(t->job, &o, &e);
        t->job = NULL;
    }
    while (t->depth > 0)
        tui_remove(t, t->stack[t->depth - 1]);
    free(t->last_recipe);
}

/* Terminal modes for the session: keys unbuffered, Ctrl-C still a signal. */
static void setup_terminal(void)
{
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    timeout(TICK_MS);
    curs_set(0);
}

/* The session on a terminal that is set up; returns 0, or 1 with err. */
static int session(struct wb *w, const struct tui_options *o, int color, int utf8, qerr *err)
{
    struct tui *t = calloc(1, sizeof *t);
    if (!t) {
        qerr_set(err, "tui: out of memory");
        return 1;
    }
    t->w = w;
    ui_theme_init(&t->th, color, utf8);
    if (o->data)
        snprintf(t->data_path, sizeof t->data_path, "%s", o->data);
    t->lm_ctx = o->n_ctx;
    t->lm_ctx_given = o->n_ctx > 0;
    t->lm_chunks = o->n_chunks;
    t->gen_tokens = 128;
    snprintf(t->sweep_form.schemes, sizeof t->sweep_form.schemes, "%s",
             "int:bits=2;int:bits=3;int:bits=4;int:bits=8");
    snprintf(t->sweep_form.group, sizeof t->sweep_form.group, "tensor");
    tui_refresh_weights(t);
    tui_push(t, screen_model_new(t));
    int failed = t->depth == 0;
    if (failed)
        qerr_set(err, "tui: %s", t->status);
    else
        run_loop(t);
    shutdown_session(t);
    free(t);
    return failed;
}

int tui_run(struct wb *w, const struct tui_options *o, qerr *err)
{
    if (!wb_model(w)) {
        qerr_set(err, "tui: no model loaded");
        return 1;
    }
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        qerr_set(err, "tui: standard input and output must be a terminal");
        return 1;
    }
    /* The locale decides the glyphs; numbers stay in the C locale so
     * parameter values and metrics keep their '.'. Restored at the end. */
    const char *cur = setlocale(LC_ALL, NULL);
    char *old_locale = cur ? strdup(cur) : NULL;
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    const char *codeset = nl_langinfo(CODESET);
    int utf8 = !o->ascii && codeset &&
               (strcasecmp(codeset, "UTF-8") == 0 || strcasecmp(codeset, "utf8") == 0);
    const char *nc = getenv("NO_COLOR");
    int color = !o->no_color && !(nc && *nc);

    struct saved_signals old;
    catch_signals(&old);
    int rc = 1;
    SCREEN *scr = newterm(NULL, stdout, stdin);
    if (scr) {
        set_term(scr);
        setup_terminal();
        rc = session(w, o, color, utf8, err);
        endwin();
        delscreen(scr);
    } else {
        const char *term = getenv("TERM");
        qerr_set(err, "tui: cannot use the terminal (TERM=%s)", term ? term : "(unset)");
    }
    restore_signals(&old);
    if (old_locale)
        setlocale(LC_ALL, old_locale);
    free(old_locale);
    return rc;
}
