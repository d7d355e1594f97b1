/* model_groups.c — groups a language model's tensors by block and by role, and sums a group's sizes and errors. */
#include "model_groups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/llm.h"
#include "quant/recipe.h"

/* ---- names --------------------------------------------------------------------- */

/* The block of "blk.N.rest" (N below n_layers) and where rest starts, or -1. */
static int block_of(const char *name, int n_layers, const char **rest)
{
    if (strncmp(name, "blk.", 4) != 0 || name[4] < '0' || name[4] > '9')
        return -1;
    long n = 0;
    const char *p = name + 4;
    while (*p >= '0' && *p <= '9' && n <= n_layers)
        n = n * 10 + (*p++ - '0');
    if (*p != '.' || !p[1] || n >= n_layers)
        return -1;
    *rest = p + 1;
    return (int)n;
}

/* Where a role sorts: the order of a llama block, then the rest. */
static int role_rank(const char *name, int in_block)
{
    static const char *const block_roles[] = {"attn_q",   "attn_k",  "attn_v",
                                              "attn_output", "ffn_gate", "ffn_up",
                                              "ffn_down", "attn_norm", "ffn_norm"};
    static const char *const top_roles[] = {"token_embd", "output", "output_norm"};
    const int nb = (int)(sizeof block_roles / sizeof *block_roles);
    const int nt = (int)(sizeof top_roles / sizeof *top_roles);
    if (in_block) {
        for (int i = 0; i < nb; i++)
            if (strcmp(name, block_roles[i]) == 0)
                return i;
        return nb; /* biases and anything new, after the known ones */
    }
    for (int i = 0; i < nt; i++)
        if (strcmp(name, top_roles[i]) == 0)
            return nb + 1 + i;
    return nb + 1 + nt;
}

/* "ffn_down.weight" -> "ffn_down"; other suffixes stay ("attn_q.bias"). */
static char *role_name(const char *leaf)
{
    size_t n = strlen(leaf);
    if (n > 7 && strcmp(leaf + n - 7, ".weight") == 0)
        n -= 7;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, leaf, n);
        s[n] = 0;
    }
    return s;
}

/* ---- building ------------------------------------------------------------------- */

void lm_groups_free(struct lm_groups *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_roles; i++) {
        free(g->roles[i].name);
        free(g->roles[i].glob);
        free(g->roles[i].tensors);
    }
    free(g->roles);
    free(g->block);
    free(g->by_block);
    free(g->start);
    free(g);
}

static int build_blocks(struct lm_groups *g, const struct qmodel *m, int n_layers)
{
    int n = m->n_tensors;
    g->n_blocks = 0;
    for (int i = 0; i < n; i++) {
        const char *rest;
        g->block[i] = block_of(m->tensors[i]->name, n_layers, &rest);
        if (g->block[i] >= g->n_blocks)
            g->n_blocks = g->block[i] + 1;
    }
    g->start = calloc((size_t)g->n_blocks + 1, sizeof *g->start);
    if (!g->start)
        return -1;
    for (int i = 0; i < n; i++) /* counting sort by block, stable */
        if (g->block[i] >= 0)
            g->start[g->block[i] + 1]++;
    for (int b = 0; b < g->n_blocks; b++)
        g->start[b + 1] += g->start[b];
    int *fill = calloc((size_t)g->n_blocks + 1, sizeof *fill);
    if (!fill)
        return -1;
    for (int i = 0; i < n; i++) {
        int b = g->block[i];
        if (b >= 0)
            g->by_block[g->start[b] + fill[b]++] = i;
    }
    free(fill);
    return 0;
}

/* The role of tensor i: found by name among the first n, or added. */
static int add_to_role(struct lm_groups *g, const struct qmodel *m, int i)
{
    const char *rest, *name = m->tensors[i]->name;
    int in_block = g->block[i] >= 0;
    if (in_block)
        block_of(name, g->n_blocks, &rest);
    else
        rest = name;
    char *rn = role_name(rest);
    if (!rn)
        return -1;
    struct lm_role *r = NULL;
    for (int k = 0; k < g->n_roles && !r; k++)
        if (strcmp(g->roles[k].name, rn) == 0 && (g->roles[k].glob != NULL) == in_block)
            r = &g->roles[k];
    if (r) {
        free(rn);
    } else {
        r = &g->roles[g->n_roles++];
        r->name = rn;
        r->tensors = calloc((size_t)m->n_tensors, sizeof *r->tensors);
        if (!r->tensors)
            return -1;
        if (in_block) {
            char *esc = qglob_escape(rest);
            size_t len = esc ? strlen(esc) + 7 : 0;
            r->glob = esc ? malloc(len) : NULL;
            if (r->glob)
                snprintf(r->glob, len, "blk.*.%s", esc);
            free(esc);
            if (!r->glob)
                return -1;
        }
    }
    r->tensors[r->n++] = i;
    return 0;
}

static int cmp_roles(const void *a, const void *b)
{
    const struct lm_role *x = a, *y = b;
    int rx = role_rank(x->name, x->glob != NULL), ry = role_rank(y->name, y->glob != NULL);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return x->tensors[0] < y->tensors[0] ? -1 : x->tensors[0] > y->tensors[0]; /* first seen */
}

struct lm_groups *lm_groups_new(const struct qmodel *m)
{
    int n = m->n_tensors;
    int n_layers = m->llm ? m->llm->c.n_layers : 0;
    struct lm_groups *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->block = calloc((size_t)(n > 0 ? n : 1), sizeof *g->block);
    g->by_block = calloc((size_t)(n > 0 ? n : 1), sizeof *g->by_block);
    g->roles = calloc((size_t)(n > 0 ? n : 1), sizeof *g->roles);
    if (!g->block || !g->by_block || !g->roles || build_blocks(g, m, n_layers) < 0)
        goto fail;
    for (int i = 0; i < n; i++)
        if (add_to_role(g, m, i) < 0)
            goto fail;
    qsort(g->roles, (size_t)g->n_roles, sizeof *g->roles, cmp_roles);
    return g;
fail:
    lm_groups_free(g);
    return NULL;
}

int lm_block_lead(const struct lm_groups *g, const struct qmodel *m, int block)
{
    for (int k = g->start[block]; k < g->start[block + 1]; k++)
        if (m->roles[g->by_block[k]] == QROLE_WEIGHT)
            return g->by_block[k];
    return g->by_block[g->start[block]];
}

/* ---- sums ------------------------------------------------------------------------ */

void lm_sum(const struct wb *w, const int *tensors, int n, struct lm_sum *s)
{
    const struct qmodel *m = wb_model(w);
    const struct qweights *qw = wb_weights(w);
    memset(s, 0, sizeof *s);
    s->n = n;
    /* SQNR of the group: all signal over all noise, each tensor's energies
     * recovered from its MSE and SQNR (an exact tensor adds no noise, and
     * its signal is not known: the group's figure errs low) */
    double noise = 0, signal = 0;
    for (int k = 0; k < n; k++) {
        int i = tensors[k];
        const struct qtensor_q *q = qw ? &qw->t[i] : NULL;
        s->params += m->tensors[i]->numel;
        s->bytes += q ? qtensor_q_bytes(q) : m->tensors[i]->numel * 4;
        if (!q || !q->quantized)
            continue;
        const char *label = wb_tensor_scheme_label(w, i);
        if (!s->n_quantized++)
            s->label = label;
        else if (strcmp(label, s->label) != 0)
            s->mixed = 1;
        double e = q->e.mse * (double)m->tensors[i]->numel;
        if (e > 0 && isfinite(e) && isfinite(q->e.sqnr_db)) {
            noise += e;
            signal += e * pow(10.0, q->e.sqnr_db / 10.0);
        }
    }
    if (!s->n_quantized)
        s->sqnr_db = NAN;
    else if (noise == 0)
        s->sqnr_db = INFINITY;
    else
        s->sqnr_db = 10.0 * log10(signal / noise);
}

int lm_sum_scheme(const struct lm_sum *s, char *buf, size_t size)
{
    if (!s->n_quantized)
        snprintf(buf, size, "float");
    else if (s->mixed)
        snprintf(buf, size, "mixed (%d/%d)", s->n_quantized, s->n);
    else if (s->n_quantized < s->n)
        snprintf(buf, size, "%s (%d/%d)", s->label, s->n_quantized, s->n);
    else
        snprintf(buf, size, "%s", s->label);
    return s->n_quantized > 0;
}
