/* dialog_eval.c — runs an evaluation on a worker thread and shows its progress; Esc cancels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

struct eval_dialog {
    struct ui_screen base;
    WINDOW *beneath;             /* the last frame before the job: while it runs
                                    the workbench may not be read to draw it again */
    struct wb_job_status st;     /* as of the last tick */
    char phase[32];              /* phase whose rate is measured */
    double t0;                   /* job seconds when the phase was first seen */
    int64_t done0;               /* samples done then */
    int is_lm;                   /* counts chunks of n_ctx tokens, not samples */
    int n_ctx;
};

/* ---- the job ------------------------------------------------------------------ */

static void report_done(struct tui *t, const struct wb_eval_outcome *o)
{
    if (o->is_lm)
        tui_status(t, 0, "run #%lld done in %.2f s: PPL %.4f (float %.4f)", (long long)o->run_id,
                   o->seconds, o->lm.ppl, o->lm.ppl_ref);
    else
        tui_status(t, 0, "run #%lld done in %.2f s: top-1 %.2f%% (float %.2f%%)",
                   (long long)o->run_id, o->seconds, o->metrics.top1, o->float_metrics.top1);
}

static void finish(struct tui *t, int n_ctx)
{
    struct wb_eval_outcome o;
    qerr e = {{0}};
    int rc = wb_job_finish(t->job, &o, &e);
    t->job = NULL;
    t->have_run = 1;
    t->last = o;
    t->last_rc = rc;
    t->last_ctx = n_ctx;
    snprintf(t->last_error, sizeof t->last_error, "%s", rc < 0 ? e.msg : "");
    free(t->last_recipe);
    t->last_recipe = strdup(wb_recipe_text(t->w));
    if (rc < 0) {
        if (o.run_id > 0)
            tui_status(t, 1, "run #%lld failed: %s", (long long)o.run_id, e.msg);
        else
            tui_status(t, 1, "evaluation failed: %s", e.msg);
    } else if (o.status && strcmp(o.status, "done") == 0) {
        report_done(t, &o);
    } else {
        tui_status(t, 0, "run #%lld %s", (long long)o.run_id, o.status ? o.status : "ended");
    }
}

static int eval_tick(struct tui *t, struct ui_screen *s)
{
    struct eval_dialog *d = (struct eval_dialog *)s;
    if (!t->job)
        return UI_CLOSE;
    int64_t before = d->st.done;
    wb_job_poll(t->job, &d->st);
    /* a new phase, or the same one again (the float pass, then the
     * quantized one, are both "perplexity"): the rate starts over */
    if (strcmp(d->phase, d->st.phase) != 0 || d->st.done < before) {
        snprintf(d->phase, sizeof d->phase, "%s", d->st.phase);
        d->t0 = d->st.elapsed;
        d->done0 = d->st.done;
    }
    if (!d->st.finished)
        return 0;
    finish(t, d->n_ctx);
    return UI_CLOSE;
}

/* ---- drawing ------------------------------------------------------------------------ */

static void eval_draw(struct tui *t, struct ui_screen *s)
{
    struct eval_dialog *d = (struct eval_dialog *)s;
    const struct wb_job_status *st = &d->st;
    if (d->beneath)
        overwrite(d->beneath, stdscr);
    struct ui_rect r = ui_dialog(&t->th, 10, 60, "Evaluating");
    attr_t a = tui_attr(t, UI_DIALOG);
    int y = r.y;
    int chunks = d->is_lm && strcmp(st->phase, "perplexity") == 0;
    ui_printf(&t->th, y++, r.x, r.w, a, "phase    %s", st->phase[0] ? st->phase : "starting");
    double frac = st->total > 0 ? (double)st->done / (double)st->total : 0;
    int bw = r.w - 7;
    ui_bar(&t->th, y, r.x, bw, frac);
    ui_printf(&t->th, y++, r.x + bw + 1, 6, a, "%3.0f%%", frac * 100);
    ui_printf(&t->th, y++, r.x, r.w, a, "done     %lld / %lld%s", (long long)st->done,
              (long long)st->total, chunks ? " chunks" : "");
    double secs = st->elapsed - d->t0;
    char rate[64];
    /* perplexity counts chunks; their tokens are the rate people compare */
    double per = chunks ? d->n_ctx : 1;
    const char *unit = chunks ? "tokens/s" : "samples/s";
    if (secs > 0 && st->done > d->done0)
        snprintf(rate, sizeof rate, "%.0f %s", (double)(st->done - d->done0) * per / secs, unit);
    else if (st->elapsed > 0 && st->done > 0) /* seen once: a rough rate over the whole job */
        snprintf(rate, sizeof rate, "~%.0f %s", (double)st->done * per / st->elapsed, unit);
    else
        snprintf(rate, sizeof rate, "-");
    ui_printf(&t->th, y++, r.x, r.w, a, "rate     %s", rate);
    ui_printf(&t->th, y++, r.x, r.w, a, "elapsed  %.1f s", st->elapsed);
    ui_print(&t->th, r.y + r.h - 1, r.x, r.w, tui_attr(t, st->cancel_requested ? UI_DIALOG_ERROR : UI_DIALOG_DIM),
             st->cancel_requested ? "cancelling..." : "Esc cancel");
}

/* ---- keys ------------------------------------------------------------------------------ */

static int eval_key(struct tui *t, struct ui_screen *s, int ch)
{
    (void)s;
    if (ch == UI_KEY_ESC || ch == 'q') {
        if (t->job)
            wb_job_cancel(t->job);
        return 0; /* the dialog closes when the worker has stopped */
    }
    return UI_UNHANDLED;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void eval_free(struct ui_screen *s)
{
    struct eval_dialog *d = (struct eval_dialog *)s;
    if (!d)
        return;
    if (d->beneath)
        delwin(d->beneath);
    free(d);
}

static const struct ui_fkey eval_fkeys[] = {
    {"Esc", "Cancel"}, {"F1", "Help"}, {"F10", "Quit"},
};

static const struct ui_help eval_help[] = {
    {"Esc q", "cancel the evaluation (the run is recorded as cancelled)"},
};

static const struct ui_screen_ops eval_ops = {
    .name = "Evaluation",
    .overlay = 1,
    .freeze_beneath = 1,
    .draw = eval_draw,
    .key = eval_key,
    .tick = eval_tick,
    .free = eval_free,
    .fkeys = eval_fkeys,
    .n_fkeys = (int)(sizeof eval_fkeys / sizeof eval_fkeys[0]),
    .help = eval_help,
    .n_help = (int)(sizeof eval_help / sizeof eval_help[0]),
};

struct ui_screen *dialog_eval_new(struct tui *t, const struct wb_eval_request *r)
{
    if (t->job) {
        tui_status(t, 1, "an evaluation is already running");
        return NULL;
    }
    struct eval_dialog *d = calloc(1, sizeof *d);
    if (!d) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    d->base.ops = &eval_ops;
    d->beneath = dupwin(stdscr); /* NULL only costs the background */
    snprintf(d->st.phase, sizeof d->st.phase, "starting");
    d->is_lm = tui_is_lm(t);
    d->n_ctx = r->n_ctx;
    qerr e = {{0}};
    if (wb_job_start_eval(t->w, r, &t->job, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        eval_free(&d->base);
        return NULL;
    }
    return &d->base;
}
