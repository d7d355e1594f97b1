/* sweep_internal.h — what sweep.c and sweep_groups.c share. */
#ifndef QLAB_SWEEP_INTERNAL_H
#define QLAB_SWEEP_INTERNAL_H

#include "model.h"

/* Where tensor t is first used: its classifier node, or its LM block (-1
 * for the embedding, n_layers for the output projection and its norm). */
int qsweep_first_use(const struct qmodel *m, int t);

#endif
