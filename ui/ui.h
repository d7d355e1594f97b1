/* ui.h — what the TUI's screens share: the session state, the screen interface, the constructors. */
#ifndef QLAB_UI_H
#define QLAB_UI_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "app/job.h"
#include "app/workbench.h"
#include "quant/sweep.h"
#include "theme.h"
#include "widgets.h"

/* ---- screens -------------------------------------------------------------
 * Each screen (or dialog) is an init/draw/key triple: a constructor, a
 * draw function and a key handler that returns flags to the main loop.
 * Dialogs are overlays: the screen beneath is drawn first. */

enum {
    UI_CLOSE = 1,        /* remove the screen that handled the key */
    UI_QUIT = 2,         /* leave the TUI */
    UI_UNHANDLED = 4,    /* let the main loop try its global keys */
    UI_HOME = 8,         /* close every screen above the first (back to the Model screen) */
};

struct tui;
struct ui_screen;

struct ui_help {
    const char *keys, *what; /* "Enter s", "choose the scheme of the tensor" */
};

struct ui_screen_ops {
    const char *name;                  /* for the help title */
    int overlay;                       /* drawn over the screen beneath */
    int owns_status;                   /* draws on the status line itself (prompts) */
    int freeze_beneath;                /* the workbench is busy: screens beneath are not
                                          drawn (the screen shows their last frame) */
    void (*draw)(struct tui *t, struct ui_screen *s);
    int (*key)(struct tui *t, struct ui_screen *s, int ch);
    int (*tick)(struct tui *t, struct ui_screen *s); /* every ~100 ms; may be NULL */
    void (*free)(struct ui_screen *s);
    const struct ui_fkey *fkeys;
    int n_fkeys;
    const struct ui_help *help;
    int n_help;
};

struct ui_screen {
    const struct ui_screen_ops *ops;
};

/* ---- the session ---------------------------------------------------------- */
#define UI_MAX_STACK 16

/* What the new-sweep form asks for (dialog_sweep.c), kept between sweeps. */
struct ui_sweep_form {
    char schemes[256];     /* "int:bits=2;int:bits=4" */
    char group[256];       /* "tensor", "block", "role", or globs "a*;b*" */
    char metric[64];       /* "" until set: the model kind's default */
    int loo;               /* mode loo instead of one */
};

struct tui {
    struct wb *w;
    struct ui_theme th;
    struct ui_screen *stack[UI_MAX_STACK];
    int depth;
    char status[512];
    int status_error;
    unsigned status_seq;               /* counts tui_status calls */
    int cursor_y, cursor_x;            /* set by a draw that wants the cursor; -1: hidden */
    struct wb_job *job;                /* the evaluation in flight (owned by the TUI) */
    int have_run;                      /* last holds the latest run of this session */
    struct wb_eval_outcome last;
    int last_rc;                       /* wb_job_finish's answer */
    char last_error[512];
    char *last_recipe;                 /* recipe text of that run */
    int last_ctx;                      /* language models: that run's tokens per chunk */
    /* Language models: what `r` measures perplexity on and `g` generates
     * from, first from the command line, then as last entered. */
    char data_path[1024];              /* text file; "" until given (a classifier's
                                          --data: its evaluation data) */
    char data_typed[256];              /* the last text typed for it, even when it
                                          could not be read: the next prompt's */
    int lm_ctx;                        /* tokens per chunk; 0 until chosen */
    int lm_ctx_given;                  /* --ctx was given: `r` does not ask */
    int lm_chunks;                     /* the first N chunks only; 0: all */
    char gen_prompt[256];              /* the last prompt */
    int gen_tokens;                    /* tokens to generate (default 128) */
    /* what tui_with_lm_data calls once the text file and n_ctx are known */
    void (*lm_then)(struct tui *t, void *ctx);
    void *lm_then_ctx;
    /* Sweeps and searches */
    struct ui_sweep_form sweep_form;   /* the last one started (defaults until then) */
    char budget[64];                   /* the last budget asked for ("" until then) */
    int64_t search_sweep;              /* the sweep the budget prompt is about */
    int busy;                          /* a sweep or search worker holds the workbench:
                                          nothing else may call wb_* until it ends */
};

/* Puts s on top (frees it and reports in the status line when full). */
void tui_push(struct tui *t, struct ui_screen *s);
void tui_status(struct tui *t, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* wb_refresh after a recipe change; a failure goes to the status line. */
int tui_refresh_weights(struct tui *t);
/* Applies a scheme to one tensor (glob NULL) or to a glob's tensors,
 * refreshes the weights and reports in the status line. */
int tui_apply(struct tui *t, int tensor, const char *glob, const char *scheme, const char *params);
/* Bits per weight the scheme with params (NULL: defaults) takes for the
 * tensor, or NAN with err set. */
double tui_scheme_bpw(const struct tui *t, const struct qscheme_ref *ref, const char *params,
                      int tensor, qerr *err);
/* The scheme text for a tensor's recipe: "int", or "plugin/int" when
 * several plugins have a scheme of that name. */
void tui_scheme_name(const struct tui *t, const struct qscheme_ref *ref, char *buf, size_t size);

static inline attr_t tui_attr(const struct tui *t, enum ui_el el)
{
    return ui_attr(&t->th, el);
}

/* What a sweep's change is called before its metric: "Δ" (or "d"), or
 * "nsr " for a proxy, whose change is a noise-to-signal ratio. */
static inline const char *change_prefix(const struct tui *t, const char *metric)
{
    return qsweep_metric_is_proxy(metric) ? "nsr " : t->th.g->delta;
}

/* ---- constructors (NULL with the reason in the status line) ---------------- */
struct ui_screen *screen_model_new(struct tui *t);
struct ui_screen *screen_history_new(struct tui *t);
struct ui_screen *screen_run_new(struct tui *t, int64_t run_id);
/* Scheme picker for one tensor (glob NULL) or for every tensor a glob
 * matches (tensor: the one whose bits per weight are shown). */
struct ui_screen *dialog_scheme_new(struct tui *t, int tensor, const char *glob);
/* Parameter editor for a chosen scheme; applies on its "Apply" line. */
struct ui_screen *dialog_params_new(struct tui *t, int tensor, const char *glob,
                                    struct qscheme_ref ref);
/* Starts the evaluation job (r's strings are copied) and shows its progress. */
struct ui_screen *dialog_eval_new(struct tui *t, const struct wb_eval_request *r);

/* ---- language models (lm_actions.c, screen_generate.c) ---------------------- */
static inline int tui_is_lm(const struct tui *t)
{
    return wb_model(t->w)->kind == QMODEL_LM;
}
/* `r`: evaluates the recipe; a language model needs a text file and a
 * context length, asked for on the status line when not known yet (or
 * always when ask is set). */
void tui_run_eval(struct tui *t, int ask);
/* The same questions for other work (a sweep): then(t, ctx) runs at once
 * when t->data_path and the context length are known (and ask is 0), else
 * after the prompts are answered; not at all when they are cancelled. ctx
 * must outlive the prompts (a screen beneath them). */
void tui_with_lm_data(struct tui *t, int ask, void (*then)(struct tui *t, void *ctx), void *ctx);
/* `g`: asks for a prompt and a token count, generates on a worker thread
 * under a busy dialog, then opens the generation panel. */
void tui_generate(struct tui *t);
/* The float and the quantized continuation of prompt, scrollable; takes
 * g's texts (g is cleared). */
struct ui_screen *screen_generate_new(struct tui *t, struct wb_generation *g, const char *prompt,
                                      int n_asked);
/* The keys of the screen beneath, and the global ones. */
struct ui_screen *help_new(struct tui *t, const struct ui_screen *beneath);

/* Loaded plugins, their schemes and parameters, and the refused files;
 * Enter checks the selected plugin's file. */
struct ui_screen *screen_plugins_new(struct tui *t);
/* A plugin check report ({"file", "ok", "plugin", "schemes": [...]}, see
 * app/plugin_check.h) in a scrolling table; takes the report (freed with
 * the screen, or at once when NULL is returned). */
struct cJSON;
struct ui_screen *screen_report_new(struct tui *t, struct cJSON *report);
/* Quantizes one tensor with its current scheme into out (a safetensors
 * file with NAME.deq and, where the scheme packs, NAME.q); the outcome
 * goes to the status line. */
struct ui_screen *dialog_export_new(struct tui *t, int tensor, const char *out);

/* Progress a worker reports through q (a qprogress for the engine) and a
 * screen reads: the phase, done of total, and a cancel flag. */
struct ui_progress {
    pthread_mutex_t lock;
    char phase[32];
    int64_t done, total;
    atomic_int cancel;
    struct qprogress q;      /* give &q to wb_sweep, wb_search ... */
};
void ui_progress_init(struct ui_progress *p);
void ui_progress_destroy(struct ui_progress *p);
/* A consistent snapshot (any of the outputs may be NULL). */
void ui_progress_read(struct ui_progress *p, char *phase, size_t size, int64_t *done,
                      int64_t *total);

/* Work that must not freeze the screen, run on a worker thread under a
 * "please wait" dialog. run gets ctx on the worker; done gets it back on
 * the main thread once the worker has returned (and the dialog is on
 * top); release frees it in every case, done or not (may be NULL). */
struct ui_work {
    void (*run)(void *ctx);
    void (*done)(struct tui *t, void *ctx);
    void (*release)(void *ctx);
    void *ctx;
    int reads_workbench;     /* the screens beneath are not drawn while it runs */
    const char *doing;       /* "checking" shown with the time; NULL: "working" */
    struct ui_progress *progress; /* shown as a bar, Esc sets its cancel flag (may be NULL:
                                     a spinner, and the work cannot be cancelled) */
};
/* title: "Checking int 1.1.0"; what: one line under it (a file name).
 * On failure to start, work.release is called and NULL returned. */
struct ui_screen *dialog_busy_new(struct tui *t, const char *title, const char *what,
                                  struct ui_work work);

/* ---- sweeps and searches (screen_sweep.c, screen_pareto.c, dialog_sweep.c) ---- */
enum ui_sweep_action {
    UI_SWEEP_SHOW = 0,       /* just the heatmap */
    UI_SWEEP_NEW,            /* and the new-sweep form over it */
    UI_SWEEP_RESUME,         /* and resume the sweep (interrupted or cancelled) */
};
/* Opens the Sweep screen on sweep id (0: the newest of the loaded model,
 * or none yet) and does action there. */
void tui_open_sweep(struct tui *t, int64_t id, enum ui_sweep_action action);
/* The form for a new sweep, filled from init; accept gets the answers. */
struct ui_screen *dialog_sweep_new(struct tui *t, const struct ui_sweep_form *init,
                                   void (*accept)(struct tui *t, void *ctx,
                                                  const struct ui_sweep_form *f),
                                   void *ctx);
/* Asks for a budget, searches sweep_id on a worker, then opens the Pareto
 * screen on the search. */
void tui_search(struct tui *t, int64_t sweep_id);
/* The front of a stored search as a chart; Enter applies a point's recipe. */
struct ui_screen *screen_pareto_new(struct tui *t, int64_t search_id);
/* "4.5bpw" for language models, "5bpw" for the rest, or the last one asked. */
const char *tui_default_budget(const struct tui *t);

/* A text prompt on the status line. accept gets the text on Enter; change
 * (may be NULL) after every edit; cancel (may be NULL) on Esc. */
struct ui_prompt_cb {
    void (*accept)(struct tui *t, void *ctx, const char *text);
    void (*change)(struct tui *t, void *ctx, const char *text);
    void (*cancel)(struct tui *t, void *ctx);
    void *ctx;
};
struct ui_screen *prompt_new(struct tui *t, const char *label, const char *init,
                             struct ui_prompt_cb cb);

/* Global keys shown in every help overlay. */
extern const struct ui_help ui_global_help[];
extern const int ui_n_global_help;

#endif
