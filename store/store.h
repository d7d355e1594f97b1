/* store.h — SQLite persistence of models, datasets, plugins, runs and float references. */
#ifndef QLAB_STORE_H
#define QLAB_STORE_H

#include <stdint.h>

#include "../quant/error.h"

/* Schema version this build writes (PRAGMA user_version). Opening an older
 * database migrates it forward, one transaction per step; a newer one is
 * refused. */
#define QSTORE_SCHEMA_VERSION 1

struct qstore;

/* Opens (creating when absent) the database at path: WAL, busy timeout
 * 5 s, foreign keys on, migrations applied, and runs left `running` by a
 * process that no longer exists marked `interrupted`. The parent folder
 * must exist. Errors name the file. */
int qstore_open(const char *path, struct qstore **out, qerr *err);
void qstore_close(struct qstore *s);
const char *qstore_path(const struct qstore *s);
int qstore_user_version(struct qstore *s);

/* ---- things runs refer to (insert or return the existing id) -------- */
struct qstore_model {
    const char *path, *sha256, *format, *name;
    int64_t n_params, float_bytes;
};
int qstore_model_upsert(struct qstore *s, const struct qstore_model *m, int64_t *id, qerr *err);

struct qstore_dataset {
    const char *path, *labels_path, *sha256, *kind; /* labels_path may be NULL */
    int64_t n_samples;
};
int qstore_dataset_upsert(struct qstore *s, const struct qstore_dataset *d, int64_t *id, qerr *err);

struct qstore_plugin {
    const char *name, *version, *path, *sha256;
};
int qstore_plugin_upsert(struct qstore *s, const struct qstore_plugin *p, int64_t *id, qerr *err);

/* ---- runs ----------------------------------------------------------- */
/* Run status: running (in flight), done, failed, cancelled, interrupted
 * (left running by a process that died). */

struct qstore_run_start {
    int64_t model_id, dataset_id;
    const char *kind;                 /* "classify" */
    const char *recipe_text;          /* the --quant text */
    const char *recipe_json;          /* the parsed rules as JSON */
    const char *recipe_hash;          /* sha256 hex of recipe_json */
    int64_t n_samples;
    const int64_t *plugin_ids;        /* plugins the recipe uses */
    int n_plugins;
};

/* Inserts the run as `running` with this process's pid, boot id and
 * process start time, and commits at once. */
int qstore_run_begin(struct qstore *s, const struct qstore_run_start *r, int64_t *run_id, qerr *err);

/* One tensor of a run (strings owned when read back, borrowed when written). */
struct qstore_tensor {
    char *name;
    char *op;                 /* "conv2d", "linear", "batchnorm", ... */
    char *role;               /* "weight", "bias", "norm", "other" */
    char *shape;              /* "[32, 1, 5, 5]" */
    int64_t numel;
    char *scheme;             /* "float" or the scheme name */
    char *plugin;             /* plugin name, or NULL for float */
    char *params_json;        /* "{}" for float */
    int64_t bytes;            /* storage in bytes (bits rounded up) */
    double bits_per_weight;
    int has_error;            /* the four below are meaningful */
    double mse, sqnr_db, max_abs, cosine; /* sqnr_db may be +INFINITY */
};

struct qstore_run_end {
    const char *status;               /* "done", "failed" or "cancelled" */
    const char *error;                /* NULL unless failed */
    int64_t size_bytes, float_bytes;
    double bits_per_weight;
    const char *metrics_json;         /* "{...}" or NULL */
    double elapsed_s;
    int n_tensors;
    const struct qstore_tensor *tensors;
};

/* Sets the end state, metrics and every tensor row in one transaction. */
int qstore_run_finish(struct qstore *s, int64_t run_id, const struct qstore_run_end *e, qerr *err);

struct qstore_run_plugin {
    char *name, *version, *path, *sha256;
};

struct qstore_run {
    int64_t id;
    char *status, *kind;
    int64_t model_id;
    char *model_path, *model_name, *model_sha256, *model_format;
    int64_t dataset_id;
    char *dataset_path, *dataset_labels_path, *dataset_sha256;
    char *recipe_text, *recipe_json, *recipe_hash;
    char *started_at, *finished_at;   /* ISO 8601 UTC; finished_at may be NULL */
    double elapsed_s;
    int64_t n_samples, size_bytes, float_bytes;
    double bits_per_weight;
    char *metrics_json;               /* may be NULL */
    char *error;                      /* may be NULL */
    int n_tensors;                    /* 0 from qstore_runs_list */
    struct qstore_tensor *tensors;
    int n_plugins;
    struct qstore_run_plugin *plugins;
};

struct qstore_run_filter {
    const char *model_path;           /* NULL: any; else runs of this path ... */
    const char *model_sha256;         /* ... or of this content */
    int limit;                        /* 0: no limit */
};

/* Newest first, without tensor rows. */
int qstore_runs_list(struct qstore *s, const struct qstore_run_filter *f,
                     struct qstore_run **runs, int *n, qerr *err);
/* One run with its tensors and plugins; "no run ID in FILE" when absent. */
int qstore_run_get(struct qstore *s, int64_t id, struct qstore_run **run, qerr *err);
void qstore_run_free(struct qstore_run *r);
void qstore_runs_free(struct qstore_run *runs, int n);

/* ---- float reference outputs, computed once per (model, dataset) ---- */
/* *logits is NULL (and 0 returned) when no reference is stored or the
 * stored one has another n or k. */
int qstore_reference_get(struct qstore *s, const char *model_sha256, const char *dataset_sha256,
                         int64_t n, int k, float **logits, char **metrics_json, qerr *err);
int qstore_reference_put(struct qstore *s, const char *model_sha256, const char *dataset_sha256,
                         int64_t n, int k, const float *logits, const char *metrics_json, qerr *err);

#endif
