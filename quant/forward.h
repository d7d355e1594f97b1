/* forward.h — runs a model's graph on a batch, with any set of weights. */
#ifndef QLAB_FORWARD_H
#define QLAB_FORWARD_H

#include "error.h"
#include "model.h"

struct qforward; /* activation buffers and scratch for up to max_batch samples */

int qforward_new(const struct qmodel *m, int max_batch, struct qforward **out, qerr *err);
void qforward_free(struct qforward *f);

/* input: n * m->in_numel raw values (preprocessing is applied here).
 * weights[i]: float data for tensor i, or NULL (or weights == NULL) for
 * the model's own. out: n * m->n_classes values of the output node. */
int qforward_run(struct qforward *f, const float *const *weights,
                 const float *input, int n, float *out, qerr *err);

/* ---- running from a cut -----------------------------------------------------
 * The cut before node `first` holds every activation computed before that
 * node and read by it or a later node (or being the output): for a chain
 * the input of node `first`, for a graph with residual adds every value
 * that jumps over the cut. Saved from one run, it lets later runs start at
 * `first` with other weights for nodes first..end and give exactly what a
 * full run gives when the nodes before the cut used the same weights. */

/* Floats one sample of the cut before node first (0 <= first < n_nodes)
 * takes; -1 when first is out of range. */
int64_t qforward_cut_floats(const struct qforward *f, int first);

/* qforward_run that also saves, for each k < n_cuts, the cut before node
 * cuts[k] into saved[k] (room for n * qforward_cut_floats(f, cuts[k])
 * floats; the layout is private, read back by qforward_run_from with the
 * same n). */
int qforward_run_capture(struct qforward *f, const float *const *weights, const float *input,
                         int n, float *out, int n_cuts, const int *cuts, float *const *saved,
                         qerr *err);

/* Restores the cut before `node` saved for n samples, runs that node alone
 * with weights, and copies its output (n x out_numel floats) into out: a
 * layer's output on float inputs, for layer-output proxies. */
int qforward_node_output(struct qforward *f, const float *const *weights, int node,
                         const float *saved, int n, float *out, qerr *err);

/* Restores a cut saved for n samples and runs nodes first..end with weights. */
int qforward_run_from(struct qforward *f, const float *const *weights, int first,
                      const float *saved, int n, float *out, qerr *err);

#endif
