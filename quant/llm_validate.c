/* llm_validate.c — checks a language model's configuration and every tensor's shape against it, and sets the tensor roles. */
#include "llm.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tokenizer.h"

/* What one tensor must be: its shape and, for the message, why. */
struct want {
    int idx;
    const char *name;           /* GGUF-style name, for a missing tensor */
    int ndim;
    int64_t shape[2];
    const char *why;            /* "(n_kv_heads 4 x head_dim 8, dim 64)" */
    enum qrole role;
};

static const char *model_src(const struct qmodel *m)
{
    return m->path ? m->path : m->name ? m->name : "model";
}

/* ---- configuration --------------------------------------------------------- */

/* Largest size of any one dimension; keeps every product below in int64
 * and every sgemm size in int. */
#define QLLM_MAX_DIM (1 << 24)

static int check_config(const struct qmodel *m, const struct qllm_config *c, qerr *err)
{
    const char *src = model_src(m);
    struct { const char *name; int v; } sizes[] = {
        {"dim", c->dim}, {"hidden_dim", c->hidden_dim}, {"n_layers", c->n_layers},
        {"n_heads", c->n_heads}, {"n_kv_heads", c->n_kv_heads}, {"head_dim", c->head_dim},
        {"vocab_size", c->vocab_size}, {"max_ctx", c->max_ctx},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (sizes[i].v <= 0)
            return qerr_set(err, "%s: %s is %d, must be positive", src, sizes[i].name,
                            sizes[i].v);
        /* max_ctx is only a length, never allocated from */
        if (sizes[i].v > QLLM_MAX_DIM && i != sizeof sizes / sizeof sizes[0] - 1)
            return qerr_set(err, "%s: %s is %d, more than qlab handles (%d)", src,
                            sizes[i].name, sizes[i].v, QLLM_MAX_DIM);
    }
    if ((unsigned)c->arch >= QLLM_ARCH_COUNT)
        return qerr_set(err, "%s: unknown architecture id %d", src, (int)c->arch);
    if (c->rope != QLLM_ROPE_INTERLEAVED && c->rope != QLLM_ROPE_HALF)
        return qerr_set(err, "%s: unknown RoPE layout id %d", src, (int)c->rope);
    if (c->n_heads % c->n_kv_heads)
        return qerr_set(err, "%s: n_heads %d is not a multiple of n_kv_heads %d", src,
                        c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return qerr_set(err, "%s: head_dim %d is odd; RoPE rotates pairs", src, c->head_dim);
    if ((int64_t)c->n_heads * c->head_dim > QLLM_MAX_DIM)
        return qerr_set(err, "%s: n_heads %d x head_dim %d is more than qlab handles (%d)", src,
                        c->n_heads, c->head_dim, QLLM_MAX_DIM);
    if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps))
        return qerr_set(err, "%s: norm_eps %g must be positive and finite", src,
                        (double)c->norm_eps);
    if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta))
        return qerr_set(err, "%s: rope_theta %g must be positive and finite", src,
                        (double)c->rope_theta);
    return 0;
}

/* ---- tensors ---------------------------------------------------------------- */

static int check_tensor(struct qmodel *m, const struct want *w, qerr *err)
{
    const char *src = model_src(m);
    if (w->idx < 0 || w->idx >= m->n_tensors || !m->tensors[w->idx])
        return qerr_set(err, "%s: %s is missing", src, w->name);
    const struct qtensor *t = m->tensors[w->idx];
    const char *name = t->name ? t->name : w->name;
    int same = t->ndim == w->ndim;
    for (int d = 0; same && d < w->ndim; d++)
        same = t->shape[d] == w->shape[d];
    if (!same) {
        char have[96], need[64];
        qshape_format(t->shape, t->ndim, have, sizeof have);
        qshape_format(w->shape, w->ndim, need, sizeof need);
        return qerr_set(err, "%s: %s is %s, expected %s %s", src, name, have, need, w->why);
    }
    if (m->roles[w->idx] != QROLE_OTHER && m->roles[w->idx] != w->role)
        return qerr_set(err, "%s: %s serves as two kinds of tensor (norm, matrix, bias)", src,
                        name);
    m->roles[w->idx] = w->role;
    return 0;
}

int qllm_validate(struct qmodel *m, qerr *err)
{
    if (!m)
        return qerr_set(err, "model: no model to validate");
    const char *src = model_src(m);
    const struct qllm *l = m->llm;
    if (m->kind != QMODEL_LM || !l)
        return qerr_set(err, "%s: not a language model", src);
    const struct qllm_config *c = &l->c;
    if (check_config(m, c, err) != 0)
        return -1;
    if (!l->layers)
        return qerr_set(err, "%s: no layers", src);
    if (m->n_tensors < 0 || (m->n_tensors > 0 && !m->tensors))
        return qerr_set(err, "%s: the tensor list is missing", src);

    if (!m->roles)
        m->roles = calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof *m->roles);
    if (!m->tensor_node)
        m->tensor_node = calloc((size_t)(m->n_tensors ? m->n_tensors : 1),
                                sizeof *m->tensor_node);
    if (!m->roles || !m->tensor_node)
        return qerr_set(err, "%s: out of memory", src);
    /* no graph: every tensor belongs to "node 0", the whole model */
    for (int i = 0; i < m->n_tensors; i++) {
        m->roles[i] = QROLE_OTHER;
        m->tensor_node[i] = 0;
    }

    const int64_t dim = c->dim, hid = c->hidden_dim, V = c->vocab_size;
    const int64_t qd = (int64_t)c->n_heads * c->head_dim;
    const int64_t kvd = (int64_t)c->n_kv_heads * c->head_dim;
    char why_embd[96], why_norm[48], why_q[96], why_kv[96], why_o[96], why_up[64],
        why_down[64], why_bq[64], why_bkv[64];
    snprintf(why_embd, sizeof why_embd, "(vocab_size %d, dim %d)", c->vocab_size, c->dim);
    snprintf(why_norm, sizeof why_norm, "(dim %d)", c->dim);
    snprintf(why_q, sizeof why_q, "(n_heads %d x head_dim %d, dim %d)", c->n_heads, c->head_dim,
             c->dim);
    snprintf(why_kv, sizeof why_kv, "(n_kv_heads %d x head_dim %d, dim %d)", c->n_kv_heads,
             c->head_dim, c->dim);
    snprintf(why_o, sizeof why_o, "(dim %d, n_heads %d x head_dim %d)", c->dim, c->n_heads,
             c->head_dim);
    snprintf(why_up, sizeof why_up, "(hidden_dim %d, dim %d)", c->hidden_dim, c->dim);
    snprintf(why_down, sizeof why_down, "(dim %d, hidden_dim %d)", c->dim, c->hidden_dim);
    snprintf(why_bq, sizeof why_bq, "(n_heads %d x head_dim %d)", c->n_heads, c->head_dim);
    snprintf(why_bkv, sizeof why_bkv, "(n_kv_heads %d x head_dim %d)", c->n_kv_heads,
             c->head_dim);

    struct want top[] = {
        {l->token_embd, "token_embd.weight", 2, {V, dim}, why_embd, QROLE_WEIGHT},
        {l->output_norm, "output_norm.weight", 1, {dim, 0}, why_norm, QROLE_NORM},
        {l->output, "output.weight", 2, {V, dim}, why_embd, QROLE_WEIGHT},
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if (check_tensor(m, &top[i], err) != 0)
            return -1;

    for (int b = 0; b < c->n_layers; b++) {
        const struct qllm_layer *L = &l->layers[b];
        char names[12][48];
        static const char *const suffix[12] = {
            "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight",
            "attn_output.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias",
            "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
        };
        for (int k = 0; k < 12; k++)
            snprintf(names[k], sizeof names[k], "blk.%d.%s", b, suffix[k]);
        struct want w[12] = {
            {L->attn_norm, names[0], 1, {dim, 0}, why_norm, QROLE_NORM},
            {L->wq, names[1], 2, {qd, dim}, why_q, QROLE_WEIGHT},
            {L->wk, names[2], 2, {kvd, dim}, why_kv, QROLE_WEIGHT},
            {L->wv, names[3], 2, {kvd, dim}, why_kv, QROLE_WEIGHT},
            {L->wo, names[4], 2, {dim, qd}, why_o, QROLE_WEIGHT},
            {L->bq, names[5], 1, {qd, 0}, why_bq, QROLE_BIAS},
            {L->bk, names[6], 1, {kvd, 0}, why_bkv, QROLE_BIAS},
            {L->bv, names[7], 1, {kvd, 0}, why_bkv, QROLE_BIAS},
            {L->ffn_norm, names[8], 1, {dim, 0}, why_norm, QROLE_NORM},
            {L->w_gate, names[9], 2, {hid, dim}, why_up, QROLE_WEIGHT},
            {L->w_up, names[10], 2, {hid, dim}, why_up, QROLE_WEIGHT},
            {L->w_down, names[11], 2, {dim, hid}, why_down, QROLE_WEIGHT},
        };
        for (int k = 0; k < 12; k++) {
            int bias = k >= 5 && k <= 7;
            /* llama may carry q/k/v biases (llama.cpp reads them when
             * present); qwen2 always has them */
            if (bias && w[k].idx < 0 && c->arch != QLLM_QWEN2)
                continue;
            if (check_tensor(m, &w[k], err) != 0)
                return -1;
        }
    }

    if (l->tok && qtok_vocab_size(l->tok) > c->vocab_size)
        return qerr_set(err, "%s: the tokenizer has %d tokens, the model only %d", src,
                        qtok_vocab_size(l->tok), c->vocab_size);
    m->n_classes = c->vocab_size;
    return 0;
}
