/* dialog_busy.c — runs one piece of work on a worker thread under a "please wait" dialog. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ui.h"

struct busy_dialog {
    struct ui_screen base;
    struct ui_work work;
    char title[128];
    char what[512];
    char doing[32];           /* "checking" */
    WINDOW *beneath;          /* last frame, shown while the work reads the workbench */
    pthread_t thread;
    int started;              /* thread is joinable */
    atomic_int finished;      /* set by the worker as it returns */
    int done_called;          /* work.done has run (it owns what it took from ctx) */
    double t0;                /* monotonic seconds at the start */
    int frame;                /* spinner step, one per tick */
    int asked_cancel;         /* Esc was pressed: say it cannot be cancelled */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the worker ----------------------------------------------------------------- */

static void *worker(void *arg)
{
    struct busy_dialog *d = arg;
    d->work.run(d->work.ctx);
    atomic_store(&d->finished, 1);
    return NULL;
}

static void join(struct busy_dialog *d)
{
    if (d->started) {
        pthread_join(d->thread, NULL);
        d->started = 0;
    }
}

/* Hands the result over once the worker is done and no overlay (help)
 * sits above: what done pushes must land on top. */
static int busy_tick(struct tui *t, struct ui_screen *s)
{
    struct busy_dialog *d = (struct busy_dialog *)s;
    d->frame++;
    if (!atomic_load(&d->finished) || t->depth == 0 || t->stack[t->depth - 1] != s)
        return 0;
    join(d);
    d->done_called = 1;
    d->work.done(t, d->work.ctx);
    return UI_CLOSE;
}

/* ---- drawing ------------------------------------------------------------------- */

static void busy_draw(struct tui *t, struct ui_screen *s)
{
    struct busy_dialog *d = (struct busy_dialog *)s;
    if (d->work.reads_workbench && d->beneath)
        overwrite(d->beneath, stdscr);
    struct ui_rect r = ui_dialog(&t->th, 7, 64, d->title);
    attr_t a = tui_attr(t, UI_DIALOG);
    static const char spin[] = "|/-\\";
    ui_print(&t->th, r.y, r.x, r.w, a, d->what);
    ui_printf(&t->th, r.y + 2, r.x, r.w, a, "%c %s... %.1f s", spin[d->frame & 3],
              d->doing, now_s() - d->t0);
    if (d->work.progress) {
        char phase[32];
        int64_t done, total;
        ui_progress_read(d->work.progress, phase, sizeof phase, &done, &total);
        if (total > 0) {
            int bw = r.w - 30 > 10 ? r.w - 30 : 10;
            ui_bar(&t->th, r.y + 3, r.x, bw, (double)done / (double)total);
            ui_printf(&t->th, r.y + 3, r.x + bw + 1, r.w - bw - 1, a, "%s %lld/%lld", phase,
                      (long long)done, (long long)total);
        }
        int cancelling = atomic_load(&d->work.progress->cancel) != 0;
        ui_print(&t->th, r.y + r.h - 1, r.x, r.w,
                 tui_attr(t, cancelling ? UI_DIALOG_ERROR : UI_DIALOG_DIM),
                 cancelling ? "cancelling..." : "Esc cancel");
    } else if (d->asked_cancel)
        ui_print(&t->th, r.y + r.h - 1, r.x, r.w, tui_attr(t, UI_DIALOG_ERROR),
                 "this cannot be cancelled; it ends on its own");
    else
        ui_print(&t->th, r.y + r.h - 1, r.x, r.w, tui_attr(t, UI_DIALOG_DIM),
                 "please wait; the dialog closes when it is done");
}

static int busy_key(struct tui *t, struct ui_screen *s, int ch)
{
    (void)t;
    struct busy_dialog *d = (struct busy_dialog *)s;
    if (ch == UI_KEY_ESC || ch == 'q') {
        if (d->work.progress)
            atomic_store(&d->work.progress->cancel, 1);
        d->asked_cancel = 1;
        return 0;
    }
    return UI_UNHANDLED;
}

/* ---- lifecycle ----------------------------------------------------------------- */

/* Joins a worker still running (quitting waits for it: it is never
 * left touching freed memory; cancelled first when it can be). */
static void busy_free(struct ui_screen *s)
{
    struct busy_dialog *d = (struct busy_dialog *)s;
    if (!d)
        return;
    if (d->started && d->work.progress)
        atomic_store(&d->work.progress->cancel, 1);
    join(d);
    if (d->work.release)
        d->work.release(d->work.ctx);
    if (d->beneath)
        delwin(d->beneath);
    free(d);
}

static const struct ui_fkey busy_fkeys[] = {
    {"F1", "Help"}, {"F10", "Quit"},
};

static const struct ui_help busy_help[] = {
    {"(wait)", "runs in the background; results show at the end"},
    {"Esc q", "cancel where it says so; else wait for the end"},
};

#define BUSY_OPS(freeze)                                                                   \
    {                                                                                      \
        .name = "Working", .overlay = 1, .freeze_beneath = freeze, .draw = busy_draw,     \
        .key = busy_key, .tick = busy_tick, .free = busy_free, .fkeys = busy_fkeys,        \
        .n_fkeys = (int)(sizeof busy_fkeys / sizeof busy_fkeys[0]), .help = busy_help,     \
        .n_help = (int)(sizeof busy_help / sizeof busy_help[0]),                           \
    }

static const struct ui_screen_ops busy_ops = BUSY_OPS(0);
static const struct ui_screen_ops busy_frozen_ops = BUSY_OPS(1); /* the work reads the workbench */

struct ui_screen *dialog_busy_new(struct tui *t, const char *title, const char *what,
                                  struct ui_work work)
{
    struct busy_dialog *d = calloc(1, sizeof *d);
    if (!d) {
        if (work.release)
            work.release(work.ctx);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    d->base.ops = work.reads_workbench ? &busy_frozen_ops : &busy_ops;
    d->work = work;
    snprintf(d->title, sizeof d->title, "%s", title);
    snprintf(d->what, sizeof d->what, "%s", what ? what : "");
    snprintf(d->doing, sizeof d->doing, "%s", work.doing ? work.doing : "working");
    if (work.reads_workbench)
        d->beneath = dupwin(stdscr); /* NULL only costs the background */
    atomic_init(&d->finished, 0);
    d->t0 = now_s();
    int rc = pthread_create(&d->thread, NULL, worker, d);
    if (rc != 0) {
        tui_status(t, 1, "%s: cannot start a thread: %s", title, strerror(rc));
        busy_free(&d->base);
        return NULL;
    }
    d->started = 1;
    return &d->base;
}
