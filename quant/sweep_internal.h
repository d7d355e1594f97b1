/* sweep_internal.h — what sweep.c and sweep_groups.c share. */
#ifndef QLAB_SWEEP_INTERNAL_H
#define QLAB_SWEEP_INTERNAL_H

#include "model.h"
#include "sweep.h"

/* Where tensor t is first used: its classifier node, or its LM block (-1
 * for the embedding, n_layers for the output projection and its norm). */
int qsweep_first_use(const struct qmodel *m, int t);

/* ---- proxies (sweep_proxy.c) ----
 * Calibration activations (float), made once per sweep: a classifier's
 * inputs and outputs of every node a group's tensor starts, on the first
 * 64 samples; a language model's residual stream at every cut on the
 * first chunk's first 256 positions. Bounded by the spec's cache_bytes
 * (an error beyond). */
struct qsweep_proxy_cal;
struct qsweep_proxy_scratch;   /* a worker's own buffers, made on first use */

int qsweep_proxy_prepare(const struct qsweep_spec *s, struct qsweep_proxy_cal **out, qerr *err);
void qsweep_proxy_cal_free(struct qsweep_proxy_cal *c);
void qsweep_proxy_scratch_free(struct qsweep_proxy_scratch *sc);

/* Group g's weights wts (the model's own where NULL) against float. */
int qsweep_proxy_weights(const struct qsweep_spec *s, int64_t g, const float *const *wts,
                         struct qsweep_proxy *out);
/* The output of each layer group g's tensors start, alone on float
 * inputs, with wts against float: summed error over summed signal (for an
 * LM half-block the signal is the branch's output, not the residual). */
int qsweep_proxy_outputs(const struct qsweep_proxy_cal *c, struct qsweep_proxy_scratch **sc,
                         const struct qsweep_spec *s, int64_t g, const float *const *wts,
                         struct qsweep_proxy *out, qerr *err);

#endif
