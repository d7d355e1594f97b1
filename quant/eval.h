/* eval.h — runs a model over a classification dataset, in batches, on all cores. */
#ifndef QLAB_EVAL_H
#define QLAB_EVAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "dataset.h"
#include "error.h"
#include "model.h"

#define QEVAL_CANCELLED 1

/* Progress and cancel for long work. fn is called under a lock, so from
 * one thread at a time, at most once per batch. */
struct qprogress {
    void (*fn)(void *ctx, const char *phase, int64_t done, int64_t total);
    void *ctx;
    atomic_int *cancel;    /* non-zero: stop at the next batch */
};

struct qeval_opts {
    int batch;             /* samples per forward call (default 64) */
    int threads;           /* worker threads (0: one per core) */
};

/* Checks that the dataset fits the model: per-sample size equals the
 * model's input, and every label is an output class. */
int qeval_check(const struct qmodel *m, const struct qdataset *d, qerr *err);

/* Logits of the first n samples into logits[n * m->n_classes], using
 * weights (per tensor, NULL = the model's float values). Returns 0,
 * QEVAL_CANCELLED, or -1 with err. */
int qeval_logits(const struct qmodel *m, const float *const *weights, const struct qdataset *d,
                 int64_t n, const struct qeval_opts *o, const struct qprogress *p,
                 const char *phase, float *logits, qerr *err);

#endif
