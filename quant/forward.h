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

#endif
