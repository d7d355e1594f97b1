/* model_groups.h — a language model's tensors by block (blk.N.*) and by role across the blocks, with their sums. */
#ifndef QLAB_UI_MODEL_GROUPS_H
#define QLAB_UI_MODEL_GROUPS_H

#include <stdint.h>

#include "app/workbench.h"

/* One role: the tensors of the same name in every block ("ffn_down"), or
 * one tensor outside the blocks ("token_embd"). */
struct lm_role {
    char *name;          /* "ffn_down", "attn_q.bias", "token_embd" */
    char *glob;          /* "blk.*.ffn_down.weight"; NULL outside the blocks */
    int *tensors, n;     /* n >= 1, in model order */
};

struct lm_groups {
    int n_blocks;
    int *block;          /* per tensor: its block, or -1 */
    int *by_block;       /* block b's tensors: by_block[start[b] .. start[b+1]), model order */
    int *start;          /* n_blocks + 1 */
    int n_roles;
    struct lm_role *roles; /* the usual order: attention, feed-forward, norms, then the rest */
};

/* NULL when out of memory. The model must be a language model. */
struct lm_groups *lm_groups_new(const struct qmodel *m);
void lm_groups_free(struct lm_groups *g);

/* The tensor a block's or a role's scheme picker shows bits per weight
 * for: the first matrix (a norm takes no scheme by default). */
int lm_block_lead(const struct lm_groups *g, const struct qmodel *m, int block);

/* What a group of tensors adds up to with the current recipe. */
struct lm_sum {
    int n, n_quantized;
    int64_t params, bytes;
    const char *label;   /* the scheme label of the quantized ones, if they share one */
    int mixed;           /* the quantized ones use several labels */
    double sqnr_db;      /* over all quantized tensors together; NAN: none; INFINITY: exact */
};
void lm_sum(const struct wb *w, const int *tensors, int n, struct lm_sum *s);
/* "float", "int:bits=4", "int:bits=4 (7/9)", "mixed (7/9)"; returns 1
 * when anything is quantized. */
int lm_sum_scheme(const struct lm_sum *s, char *buf, size_t size);

#endif
