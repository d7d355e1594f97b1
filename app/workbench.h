/* workbench.h — qlab's application API: everything the TUI and the CLI can do, in one place.
 *
 * A workbench holds the store, the loaded plugins, one model, the recipe
 * being edited and its quantized weights. The TUI and the subcommands only
 * call these functions, so scripts and tests reach everything a person can.
 * Not thread-safe: while wb_eval runs on a worker thread, other threads
 * may only read progress and set the cancel flag.
 */
#ifndef QLAB_WORKBENCH_H
#define QLAB_WORKBENCH_H

#include <stdint.h>

#include "quant/assign.h"
#include "quant/dataset.h"
#include "quant/error.h"
#include "quant/eval.h"
#include "quant/lm_eval.h"
#include "quant/metrics.h"
#include "quant/model.h"
#include "quant/plugin_host.h"
#include "quant/qweights.h"
#include "quant/recipe.h"
#include "store/store.h"

struct wb_options {
    const char *db_path;                /* NULL: $XDG_DATA_HOME/qlab/qlab.db */
    const char *const *plugin_files;    /* --plugin FILE.so, loaded first */
    int n_plugin_files;
    int no_store;                       /* commands that need no database */
};

struct wb;

/* Opens the store (creating its folder) and loads the plugins: --plugin
 * files, then $QLAB_PLUGIN_PATH, the build folder and the installed
 * folder. A --plugin file that fails is an error; refusals found by
 * discovery are kept in wb_plugins(w)->refused. */
int wb_open(const struct wb_options *o, struct wb **out, qerr *err);
void wb_close(struct wb *w);

const struct qplugin_host *wb_plugins(const struct wb *w);
struct qstore *wb_store(struct wb *w);
const char *wb_db_path(const struct wb *w);

/* ---- the model ---------------------------------------------------------- */
int wb_load_model(struct wb *w, const char *path, qerr *err);
/* The same with a tokenizer file (llama2.c checkpoints; NULL: found beside). */
int wb_load_model_ex(struct wb *w, const char *path, const char *tokenizer, qerr *err);
const struct qmodel *wb_model(const struct wb *w);
const char *wb_model_abspath(const struct wb *w);
/* SHA-256 of the model files (computed once per load). */
int wb_model_sha256(struct wb *w, const char **hex, qerr *err);

/* ---- the recipe and the current assignment ------------------------------ */
/* Replaces the recipe; validated against the model and the plugins. On
 * error nothing changes. */
int wb_set_recipe(struct wb *w, const char *text, qerr *err);
/* Appends GLOB=SCHEME[:params] (dropping earlier rules with the very same
 * glob, which it overrides anyway). scheme "float" keeps float. */
int wb_apply_rule(struct wb *w, const char *glob, const char *scheme, const char *params,
                  qerr *err);
/* The same for one tensor, by index (its name escaped as a glob). */
int wb_apply_tensor(struct wb *w, int tensor, const char *scheme, const char *params, qerr *err);
const char *wb_recipe_text(const struct wb *w);
/* The recipe's rules resolved against the model and plugins, every
 * parameter spelled out, as JSON ({"rules": [...]}), malloc'd; NULL when
 * out of memory. */
char *wb_recipe_json(const struct wb *w);
const struct qrecipe *wb_recipe(const struct wb *w);
const struct qassign *wb_assign(const struct wb *w);

/* Quantizes what the recipe assigns (cached per tensor and scheme) so
 * sizes and weight errors are known; cheap when nothing changed. */
int wb_refresh(struct wb *w, const struct qlab_host *host, qerr *err);
const struct qweights *wb_weights(const struct wb *w); /* NULL before wb_refresh */

struct wb_summary {
    int n_tensors, n_quantized;
    int64_t n_params;
    int64_t float_bytes, bytes;
    double bits_per_weight, ratio;     /* ratio = bytes / float_bytes */
};
/* Needs wb_refresh first (else float sizes). */
void wb_summary(const struct wb *w, struct wb_summary *s);

/* The scheme label shown for a tensor: "float" or "int:bits=4,...". */
const char *wb_tensor_scheme_label(const struct wb *w, int tensor);

/* Bits per weight a scheme with params ("k=v,...", NULL for defaults)
 * would take on one tensor, without changing the recipe. Errors are the
 * plugin's (bad parameters, a shape the scheme refuses). */
int wb_scheme_bits_per_weight(const struct wb *w, int tensor, const struct qscheme_ref *ref,
                              const char *params, double *bpw, qerr *err);

/* ---- evaluation ------------------------------------------------------------ */
struct wb_eval_request {
    const char *data;        /* NULL: the model's default dataset (classifiers) */
    const char *labels;      /* IDX labels file, NULL: found beside data */
    int64_t limit;           /* classifiers: first N samples; 0: all */
    int batch, threads;      /* 0: defaults */
    int n_ctx, n_chunks;     /* language models: tokens per chunk, chunks (0: defaults, all) */
    const struct qprogress *progress;
};

struct wb_eval_outcome {
    int64_t run_id;
    const char *status;                /* "done", "cancelled" or "failed" */
    int is_lm;                         /* which of the two metric sets holds */
    struct qclass_metrics metrics;     /* classifiers: of the quantized model */
    struct qclass_metrics float_metrics;
    struct qlm_metrics lm;             /* language models: perplexity and KL divergence */
    double seconds, samples_per_s;     /* of the quantized pass (samples: scored tokens) */
};

/* Runs the current recipe over the data and records the run: created as
 * `running` before any work, finished (done, cancelled or failed) with
 * its metrics and every tensor's row in one transaction. The float
 * reference logits for (model, dataset) are computed once and reused. A
 * failure after the run was created returns -1 with the run recorded as
 * failed (outcome->run_id set). */
int wb_eval(struct wb *w, const struct wb_eval_request *r, struct wb_eval_outcome *o,
            qerr *err);

/* ---- generation (language models) -------------------------------------------- */
struct wb_generation {
    char *float_text;        /* the float model's continuation (malloc'd) */
    char *quant_text;        /* the current recipe's (malloc'd; a copy of float_text's
                                words when nothing is quantized) */
    int n_float, n_quant;    /* tokens generated */
    int same_prefix;         /* tokens both generated identically from the start */
    double float_tps, quant_tps;
};

/* Greedy generation of up to n_tokens tokens after prompt (BOS first),
 * stopping at BOS or EOS, with the float model and with the current
 * recipe's weights, as llama2.c's run with temperature 0 does. p (may be
 * NULL) hears "generate float" / "generate quantized" per token and its
 * cancel flag stops it (returning QEVAL_CANCELLED, err "cancelled"). */
int wb_generate(struct wb *w, const char *prompt, int n_tokens, const struct qprogress *p,
                struct wb_generation *g, qerr *err);
void wb_generation_clear(struct wb_generation *g);

/* ---- sweeps and searches ------------------------------------------------------ */
struct wb_sweep_request {
    const char *data, *labels;   /* evaluation data (classifiers: default the model's) */
    int64_t limit;               /* classifiers: first N samples */
    int n_ctx, n_chunks;         /* language models */
    const char *schemes;         /* candidates: "int:bits=4;int:bits=8;q4_K" */
    const char *group;           /* "tensor", "block", "role", or globs "blk.0.*;blk.1.*" */
    const char *metric;          /* NULL: the default of the model kind */
    const char *mode;            /* "one" (default) or "loo" */
    int threads;                 /* 0: one per core */
    int no_prefix;               /* naive full passes (for comparison) */
    const struct qprogress *progress; /* phase "sweep", points done of total */
};

struct wb_sweep_outcome {
    int64_t sweep_id;
    const char *status;          /* "done", "cancelled", "failed" */
    int64_t n_points, n_done, n_failed, n_run; /* n_run: points computed by this call */
    double seconds, points_per_s;
};

/* Runs a sweep of the loaded model and stores it: created `running`, each
 * point committed as it completes. */
int wb_sweep(struct wb *w, const struct wb_sweep_request *r, struct wb_sweep_outcome *o,
             qerr *err);
/* Resumes sweep id (interrupted, cancelled or failed): loads its model and
 * data as recorded (refusing them if their content changed) and computes
 * the points it lacks; the finished table is the one an uninterrupted
 * sweep gives. */
int wb_sweep_resume(struct wb *w, int64_t id, int threads, const struct qprogress *p,
                    struct wb_sweep_outcome *o, qerr *err);
int wb_sweeps(struct wb *w, int all_models, int limit, struct qstore_sweep **sweeps, int *n,
              qerr *err);

struct wb_search_request {
    int64_t sweep_id;
    const char *budget;          /* "4.5bpw", "120000B", "1.5MiB", "0.25x" */
    const char *const *ties;     /* "qkv", "gate_up", or a glob: groups tied to one scheme */
    int n_ties;
    int verify;                  /* evaluate this many front points for real (0: none) */
    const struct qprogress *progress;
};

/* Exact search over a finished (or partial) sweep of the loaded model (the
 * sweep's model is loaded when none is). Stores the search with its whole
 * front; with verify, the runs it evaluates are linked to their points. */
int wb_search(struct wb *w, const struct wb_search_request *r, int64_t *search_id, qerr *err);
int wb_searches(struct wb *w, int64_t sweep_id, int all_models, struct qstore_search **out,
                int *n, qerr *err);

/* ---- history --------------------------------------------------------------- */
/* Runs of the loaded model (by path or content), or all runs when
 * all_models is set; newest first. */
int wb_runs(struct wb *w, int all_models, int limit, struct qstore_run **runs, int *n,
            qerr *err);
int wb_run(struct wb *w, int64_t id, struct qstore_run **run, qerr *err);

#endif
