/* sweep.h — sensitivity sweeps: each group of tensors quantized with each candidate scheme, the metric change measured.
 *
 * A sweep has groups (a tensor, a transformer block, a role across blocks,
 * or user globs) and candidate schemes (recipe right-hand sides such as
 * "int:bits=4" or "q4_K"). A point (g, s) is one evaluation:
 *   one  — only group g's tensors take scheme s, everything else float;
 *   loo  — every group takes s except g, which stays float (leave one out).
 * Each point yields its exact storage in bits and its metrics against the
 * float reference; the sweep's chosen metric (e.g. the mean KL divergence)
 * is the "change" a search later minimizes.
 *
 * Prefix reuse: in mode one, everything before the first layer that uses a
 * tensor of g is the float model's, so the float activations at that cut
 * are computed once per batch or chunk and every point starts there.
 *
 * The engine knows nothing of storage: it reports each finished point
 * through a callback (the app commits it at once) and skips points the
 * caller marks as already done, which is how a killed sweep resumes.
 */
#ifndef QLAB_SWEEP_H
#define QLAB_SWEEP_H

#include <stdint.h>

#include "dataset.h"
#include "error.h"
#include "eval.h"
#include "lm_data.h"
#include "lm_eval.h"
#include "model.h"
#include "pipeline.h"
#include "plugin_host.h"
#include "qweights.h"

enum qsweep_mode { QSWEEP_ONE = 0, QSWEEP_LOO, QSWEEP_MODE_COUNT };
enum qsweep_grouping {
    QSWEEP_TENSOR = 0,   /* each quantizable tensor */
    QSWEEP_BLOCK,        /* LM: blk.N (and each non-block tensor); classifier: each graph node */
    QSWEEP_ROLE,         /* LM: attn_q, ..., ffn_down across blocks (and the rest); classifier: op kind */
    QSWEEP_GLOB,         /* user globs, one group each ("blk.0.*;blk.1.*") */
    QSWEEP_GROUPING_COUNT
};

const char *qsweep_mode_name(enum qsweep_mode m);           /* "one", "loo" */
const char *qsweep_grouping_name(enum qsweep_grouping g);   /* "tensor", "block", "role", "glob" */

struct qsweep_group {
    char *name;          /* "blk.3", "ffn_down", "conv2.weight", or the glob */
    char *glob;          /* the recipe glob that selects exactly its tensors, or "" when
                            no single glob does (several weights of a classifier): then
                            a recipe takes one rule per tensor name */
    int n_tensors;
    int *tensors;        /* indices into the model's tensors */
    int64_t numel;
    int first_layer;     /* where its first tensor is used: classifier node, LM block (-1: the embedding) */
};

/* The groups of a model's quantizable tensors (QROLE_WEIGHT), in model
 * order; globs (';'-separated) for QSWEEP_GLOB. A glob selecting nothing is
 * an error naming it; so is a tensor claimed by two globs. */
int qsweep_groups(const struct qmodel *m, enum qsweep_grouping g, const char *globs,
                  struct qsweep_group **out, int *n, qerr *err);
void qsweep_groups_free(struct qsweep_group *g, int n);

/* A proxy point: error against float over the group's weights
 * (weight_sqnr) or its layers' outputs on calibration data (output_sqnr).
 * nsr = sum of squared errors / sum of squared signal, the point's change;
 * sqnr_db = -10 log10(nsr); mse per element. */
struct qsweep_proxy {
    double nsr, sqnr_db, mse;
};

/* The metric of a point, beside all the others it measured. */
struct qsweep_result {
    int64_t group, scheme;     /* indices */
    uint64_t bits;             /* storage of the group's tensors with the scheme (one), or
                                  of the whole quantized part (loo) */
    double change;             /* chosen metric minus its float value */
    struct qclass_metrics cls; /* classifiers */
    struct qlm_metrics lm;     /* language models */
    struct qsweep_proxy proxy; /* proxy metrics */
    double seconds;
};

/* What a sweep measures. Classifier metrics: "cross_entropy" (default),
 * "top1" (the change counts a drop as positive), "kld_mean". Language
 * models: "kld_mean" (default), "ppl", "kld_p99", "same_top" (a drop counts
 * as positive). Both, cheap proxies with no evaluation (mode one only):
 * "weight_sqnr" and "output_sqnr" (struct qsweep_proxy; the change is the
 * noise-to-signal ratio). */
int qsweep_metric_is_proxy(const char *metric);
int qsweep_metric_valid(enum qmodel_kind kind, const char *metric);
const char *qsweep_default_metric(enum qmodel_kind kind);

struct qsweep_spec {
    const struct qmodel *model;
    const struct qplugin_host *host;
    enum qsweep_mode mode;
    const struct qsweep_group *groups;
    int n_groups;
    const char *const *schemes;     /* right-hand sides, n_schemes */
    int n_schemes;
    const char *metric;
    /* classifiers: the data and the float reference logits (n x classes) */
    const struct qdataset *data;
    int64_t n_samples;
    const float *ref_logits;
    /* language models: the tokens, the chunks and the float reference file */
    const struct qlm_data *tokens;
    struct qlm_opts lm;
    const char *lm_ref_path;
    int threads;                    /* 0: one per core */
    int prefix_reuse;               /* 1: start at the cut (mode one); 0: naive full passes */
    size_t cache_bytes;             /* bound on cached activations (0: 512 MiB) */
    struct qdeq_cache *cache;       /* dequantized tensors shared with the app (may be NULL) */
};

struct qsweep_callbacks {
    void *ctx;
    /* 1 when the point is already stored (a resumed sweep skips it) */
    int (*is_done)(void *ctx, int64_t group, int64_t scheme);
    /* a finished point; returning non-zero stops the sweep with that error */
    int (*on_point)(void *ctx, const struct qsweep_result *r, qerr *err);
    /* a point that failed (e.g. a scheme refuses the group's shapes): stored
     * as failed, the sweep goes on */
    int (*on_failed)(void *ctx, int64_t group, int64_t scheme, const char *error, qerr *err);
    /* progress: points done (incl. skipped) of total, points per second */
    void (*progress)(void *ctx, int64_t done, int64_t total, double per_second);
    atomic_int *cancel;
};

/* Runs every point not yet done, in parallel over the cores, reporting
 * each as it completes. Returns 0, QEVAL_CANCELLED or -1. The numbers do
 * not depend on the order, the thread count or on resuming. */
int qsweep_run(const struct qsweep_spec *s, const struct qsweep_callbacks *cb, qerr *err);

/* The recipe a point evaluates ("conv2.weight=int:bits=4", or for loo
 * "*=int:bits=4;conv2.weight=float"), malloc'd. */
char *qsweep_point_recipe(const struct qsweep_spec *s, int64_t group, int64_t scheme);

#endif
