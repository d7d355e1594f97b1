/* workbench_internal.h — the workbench's state and the helpers its source files share (not API). */
#ifndef QLAB_WORKBENCH_INTERNAL_H
#define QLAB_WORKBENCH_INTERNAL_H

#include "quant/lm_data.h"
#include "workbench.h"

#define DEQ_CACHE_BYTES ((size_t)1 << 30) /* dequantized tensors kept per model */

struct wb {
    char *db_path;
    struct qstore *store;
    struct qplugin_host *host;

    struct qmodel *model;
    char *model_abspath;
    char model_sha[65];
    struct qdeq_cache *cache;

    struct qrecipe recipe;
    char *recipe_text;
    struct qassign assign;
    int assign_ok;
    struct qweights weights;
    int weights_ok;
    char **labels;             /* per tensor scheme label */

    struct qdataset *data;     /* last evaluation data, kept for the next run */
    char *data_key;            /* path + labels it was loaded from */
    struct qlm_data *lm_data;  /* last language-model data (tokens) */
};

/* Monotonic seconds. */
double wbi_now(void);
/* host->cancelled for an atomic_int flag (ctx). */
int wbi_cancelled_cb(void *ctx);
/* realpath, or a copy when the file does not resolve; NULL stays NULL. */
char *wbi_abspath(const char *p);
/* The model's and the dataset's rows (inserted when new). */
int wbi_upsert_model_data(struct wb *w, const struct qstore_dataset *data, int64_t *model_id,
                          int64_t *data_id, qerr *err);
/* Records the model, the dataset, the plugins the recipe uses, and the run
 * itself as `running` (committed at once). */
int wbi_begin_run(struct wb *w, const struct qstore_dataset *data, const char *kind, int64_t n,
                  int64_t *id, qerr *err);
/* Finishes a run: status, error (failed), metrics JSON (done), every
 * tensor's row (when the weights were built), in one transaction. */
int wbi_finish_run(struct wb *w, int64_t id, const char *status, const char *error,
                   const char *metrics_json, double elapsed, qerr *err);

/* Classifier data (kept for the next run) and its float reference logits
 * for the first n samples (stored ones, else computed and stored). */
int wbi_load_data(struct wb *w, const char *path, const char *labels, qerr *err);
int wbi_reference_logits(struct wb *w, int batch, int threads, const struct qprogress *p,
                         int64_t n, float **out, double *seconds, qerr *err);
/* Language-model data (tokenized with the model's tokenizer, kept), the
 * chunk options, and the float reference file for them (computed unless
 * cached; *computed says which, float_m and seconds then hold its run). */
int wbi_load_lm_data(struct wb *w, const char *path, qerr *err);
int wbi_lm_prepare(struct wb *w, const char *data, int n_ctx, int n_chunks, int threads,
                   struct qlm_opts *opts, int64_t *chunks, qerr *err);
int wbi_lm_reference(struct wb *w, const struct qlm_opts *opts, const struct qprogress *p,
                     char *ref, size_t size, int *computed, struct qlm_metrics *float_m,
                     double *seconds, qerr *err);

/* The two kinds of evaluation behind wb_eval. */
int wbi_eval_classifier(struct wb *w, const struct wb_eval_request *r,
                        struct wb_eval_outcome *o, qerr *err);
int wbi_eval_lm(struct wb *w, const struct wb_eval_request *r, struct wb_eval_outcome *o,
                qerr *err);

#endif
