/* qweights.h — the weights of one assignment: dequantized tensors, their storage and error. */
#ifndef QLAB_QWEIGHTS_H
#define QLAB_QWEIGHTS_H

#include <stdint.h>

#include "assign.h"
#include "error.h"
#include "metrics.h"
#include "model.h"

/* Dequantized tensors keyed by (tensor, scheme, every parameter), shared
 * between the runs of one loaded model; entries in use are never evicted.
 * Thread-safe. */
struct qdeq_cache;
struct qdeq_cache *qdeq_cache_new(size_t max_bytes);
void qdeq_cache_free(struct qdeq_cache *c);

struct qtensor_q {
    const float *deq;            /* dequantized values; NULL when kept in float */
    uint64_t bits;               /* storage: the scheme's exact bits, or 32 per float value */
    int quantized;
    struct qtensor_error e;      /* against the float values (when quantized) */
    void *entry;                 /* the cache entry holding deq */
};

struct qweights {
    int n;                       /* tensors of the model */
    struct qtensor_q *t;
    const float **ptrs;          /* per tensor: deq or NULL, for qforward_run */
    uint64_t total_bits;
    int64_t total_numel;
    int n_quantized;
    struct qdeq_cache *cache;    /* where entries are held */
};

struct qweights_progress {
    void (*fn)(void *ctx, int64_t done, int64_t total);
    void *ctx;
};

/* Quantizes every assigned tensor (reusing cache entries) and sizes every
 * tensor. host carries the cancel callback; a cancelled build returns -1
 * with "cancelled". Errors name the tensor and the scheme. */
int qweights_build(const struct qmodel *m, const struct qassign *a, struct qdeq_cache *cache,
                   const struct qlab_host *host, const struct qweights_progress *p,
                   struct qweights *w, qerr *err);
void qweights_clear(struct qweights *w);

double qweights_bits_per_weight(const struct qweights *w);
int64_t qweights_bytes(const struct qweights *w);   /* sum of per-tensor bytes */
int64_t qtensor_q_bytes(const struct qtensor_q *t); /* bits rounded up to bytes */

#endif
