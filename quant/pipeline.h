/* pipeline.h — what one recipe rule does to a tensor: one scheme, or a pruning step then a quantizer. */
#ifndef QLAB_PIPELINE_H
#define QLAB_PIPELINE_H

#include <stdint.h>

#include "error.h"
#include "plugin_host.h"
#include "recipe.h"
#include "tensor.h"

struct qpipeline {
    int n;                                        /* stages, 1..QRULE_MAX_STAGES */
    struct qscheme_config *stage[QRULE_MAX_STAGES];
    int prunes;                                   /* stage[0] is a pruning (mask) scheme */
    char *name;       /* "int", or "prune+int" */
    char *plugin;     /* "int", or "prune+int" */
    char *label;      /* "int:bits=4", "prune:pattern=2:4+int:bits=4" (non-default params) */
    char *params_json;/* one stage: its params object; else {"prune": {...}, "int": {...}} */
    char *key;        /* every plugin, scheme and parameter: identifies the result */
};

/* Configures a rule's stages. A two-stage rule must start with a pruning
 * scheme and end with one that is not. Errors name the scheme and say
 * what is wrong. */
int qpipeline_configure(const struct qplugin_host *h, const struct qrule *rule,
                        struct qpipeline **out, qerr *err);
void qpipeline_free(struct qpipeline *p);
/* The stage a person thinks of as the tensor's scheme (the quantizer). */
const struct qscheme_config *qpipeline_main(const struct qpipeline *p);

/* Exact storage of a tensor in bits. A pruned tensor's storage depends on
 * how many values the mask keeps, so this needs the values. */
int qpipeline_size_bits(const struct qpipeline *p, const struct qtensor *t,
                        const struct qlab_host *host, uint64_t *bits, qerr *err);

/* Quantizes and dequantizes a tensor into out (room for out_capacity
 * floats, at least numel; with numel + QSCHEME_OUT_GUARD the plugin
 * writes straight into it, saving a copy) and gives its storage in bits.
 * out may be NULL when only the size is wanted. Pruning: the kept values
 * of each row are gathered into a rows x kept matrix, the next stage
 * quantizes that, and the results are scattered back with zeros where
 * values were removed. */
int qpipeline_run(const struct qpipeline *p, const struct qtensor *t, float *out,
                  int64_t out_capacity, uint64_t *bits, const struct qlab_host *host, qerr *err);

#endif
