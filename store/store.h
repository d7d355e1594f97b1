/* store.h — SQLite persistence of models, datasets, plugins, runs and float references. */
#ifndef QLAB_STORE_H
#define QLAB_STORE_H

#include <stdint.h>

#include "../quant/error.h"

/* Schema version this build writes (PRAGMA user_version). Opening an older
 * database migrates it forward, one transaction per step; a newer one is
 * refused. */
#define QSTORE_SCHEMA_VERSION 2

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

/* ---- sweeps (schema 2) ------------------------------------------------------
 * A sweep is created `running` with its definition, groups and schemes in
 * one transaction; each point is committed in its own transaction as it
 * completes, so a killed sweep keeps every finished point. A sweep left
 * running by a dead process shows as `interrupted` (the same rule as runs)
 * and can be resumed: qstore_sweep_claim takes it over for this process. */

struct qstore_sweep_group {
    char *name, *glob;
    char *tensors_json;       /* ["blk.0.attn_q.weight", ...] */
    int64_t numel;
    int64_t float_bits;       /* the group's storage in float32 */
};

struct qstore_sweep {
    int64_t id;
    char *status;             /* running, done, failed, cancelled, interrupted */
    int64_t model_id;
    char *model_path, *model_name, *model_sha256;
    int64_t dataset_id;
    char *dataset_path, *dataset_sha256;
    char *kind;               /* "classify" or "lm" */
    char *mode;               /* "one" or "loo" */
    char *grouping;           /* "tensor", "block", "role", "glob" */
    char *group_spec;         /* the globs for "glob", else NULL */
    char *metric;
    char *params_json;        /* everything else needed to resume: n_ctx, chunks, limit, ... */
    int64_t fixed_bits;       /* tensors outside every group, in float */
    int64_t total_numel;      /* of every tensor of the model */
    char *created_at, *finished_at;
    char *error;
    int n_groups, n_schemes;
    struct qstore_sweep_group *groups;
    char **schemes;           /* right-hand sides */
    int64_t n_done, n_failed; /* points stored */
};

struct qstore_sweep_point {
    int64_t group, scheme;
    char *status;             /* "done" or "failed" */
    int64_t bits;
    double change;            /* the sweep's metric change (NAN when failed) */
    char *metrics_json;
    char *error;
    double seconds;
};

/* Creates the sweep (status running, this process as owner). Borrowed strings. */
int qstore_sweep_begin(struct qstore *s, const struct qstore_sweep *sw, int64_t *id, qerr *err);
/* Takes over an interrupted (or cancelled/failed) sweep for this process:
 * status back to running. Refuses a sweep that is done, or running in a
 * live process ("sweep 3 is running in process 1234"). */
int qstore_sweep_claim(struct qstore *s, int64_t id, qerr *err);
/* One point, in its own transaction; a point already stored is an error. */
int qstore_sweep_point_put(struct qstore *s, int64_t sweep_id, const struct qstore_sweep_point *p,
                           qerr *err);
/* status done, failed (with error) or cancelled. */
int qstore_sweep_finish(struct qstore *s, int64_t id, const char *status, const char *error,
                        qerr *err);
/* With groups and schemes; points are read separately. "no sweep N in FILE". */
int qstore_sweep_get(struct qstore *s, int64_t id, struct qstore_sweep **out, qerr *err);
/* Every stored point of a sweep, by group then scheme. */
int qstore_sweep_points(struct qstore *s, int64_t id, struct qstore_sweep_point **out, int *n,
                        qerr *err);
/* Newest first, without groups and schemes (n_groups and n_schemes are
 * counted, groups and schemes NULL); model filter as for runs. */
int qstore_sweeps_list(struct qstore *s, const struct qstore_run_filter *f,
                       struct qstore_sweep **out, int *n, qerr *err);
void qstore_sweep_free(struct qstore_sweep *sw);
void qstore_sweeps_free(struct qstore_sweep *sw, int n);
void qstore_sweep_points_free(struct qstore_sweep_point *p, int n);

/* ---- searches (schema 2) ---------------------------------------------------- */
struct qstore_search_point {
    int64_t idx;              /* position on the front */
    int64_t bits;
    double predicted;         /* summed predicted change */
    char *recipe_text;        /* the --quant text of this point */
    char *recipe_json;
    int is_optimum;
    int64_t run_id;           /* the verifying run, or 0 */
    double measured;          /* the metric change that run measured (NAN until verified) */
};

struct qstore_search {
    int64_t id, sweep_id;
    char *status;             /* done, failed */
    char *budget_text;        /* as given: "4.5bpw", "120000B", "0.25x" */
    int64_t budget_bits;
    char *ties_json;          /* the tie globs */
    char *created_at;
    int n_points;
    struct qstore_search_point *points;
};

/* Stores a search and its front in one transaction. */
int qstore_search_put(struct qstore *s, const struct qstore_search *se, int64_t *id, qerr *err);
/* Links a verifying run to a point and records what it measured. */
int qstore_search_verify(struct qstore *s, int64_t search_id, int64_t idx, int64_t run_id,
                         double measured, qerr *err);
int qstore_search_get(struct qstore *s, int64_t id, struct qstore_search **out, qerr *err);
/* Newest first, without points; by sweep (0: any) and model filter. */
int qstore_searches_list(struct qstore *s, int64_t sweep_id, const struct qstore_run_filter *f,
                         struct qstore_search **out, int *n, qerr *err);
void qstore_search_free(struct qstore_search *se);
void qstore_searches_free(struct qstore_search *se, int n);

#endif
