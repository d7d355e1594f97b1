/* sweep_proxy.c — cheap sweep metrics: weight SQNR, and each layer's output error on a calibration batch with float inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "llm.h"
#include "lm_eval.h"
#include "sweep_internal.h"
#include "tokenizer.h"

#define PROXY_SAMPLES 64        /* classifier calibration batch */
#define PROXY_POSITIONS 256     /* LM calibration: the first chunk's first positions */

/* Where a layer starts: a classifier node, or an LM half-block 2 * layer
 * + ffn (-1: the embedding lookup, 2 * n_layers: the output projection). */
static int layer_of(const struct qmodel *m, int t)
{
    if (m->kind != QMODEL_LM)
        return qsweep_first_use(m, t);
    struct qllm_cut c = qllm_first_use(m, t);
    return c.layer < 0 ? -1 : 2 * c.layer + c.ffn;
}

struct qsweep_proxy_cal {
    const struct qmodel *m;
    int n;                      /* calibration samples or positions */
    int n_layers;               /* classifier nodes, or 2 * LM layers + 1 */
    float **in;                 /* per layer: its saved input (classifier cut, LM residual), or NULL */
    float **ref;                /* classifier: per node, its float output */
    float *ref_logits;          /* LM: n x vocab, float */
    int32_t *tokens;            /* LM: the n calibration tokens */
};

struct qsweep_proxy_scratch {
    struct qforward *f;         /* classifier */
    struct qllm_state *st;      /* LM */
    float *y;                   /* a layer's output */
};

void qsweep_proxy_cal_free(struct qsweep_proxy_cal *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_layers; i++) {
        if (c->in)
            free(c->in[i]);
        if (c->ref)
            free(c->ref[i]);
    }
    free(c->in);
    free(c->ref);
    free(c->ref_logits);
    free(c->tokens);
    free(c);
}

void qsweep_proxy_scratch_free(struct qsweep_proxy_scratch *sc)
{
    if (!sc)
        return;
    qforward_free(sc->f);
    qllm_state_free(sc->st);
    free(sc->y);
    free(sc);
}

/* Marks the classifier nodes any group's tensor starts. */
static void mark_nodes(const struct qsweep_spec *s, unsigned char *used)
{
    for (int g = 0; g < s->n_groups; g++)
        for (int i = 0; i < s->groups[g].n_tensors; i++) {
            int node = layer_of(s->model, s->groups[g].tensors[i]);
            if (node >= 0 && node < s->model->n_nodes)
                used[node] = 1;
        }
}

static int check_bytes(const struct qsweep_spec *s, double bytes, qerr *err)
{
    double budget = s->cache_bytes ? (double)s->cache_bytes : 512.0 * 1024 * 1024;
    if (bytes > budget)
        return qerr_set(err, "sweep: the calibration activations of %s take %.0f MiB, more than "
                        "the %.0f MiB allowed", s->model->name, bytes / 1048576.0,
                        budget / 1048576.0);
    return 0;
}

static int prepare_classifier(const struct qsweep_spec *s, struct qsweep_proxy_cal *c, qerr *err)
{
    const struct qmodel *m = s->model;
    c->n = s->n_samples < PROXY_SAMPLES ? (int)s->n_samples : PROXY_SAMPLES;
    unsigned char *used = calloc((size_t)m->n_nodes, 1);
    int *nodes = malloc((size_t)m->n_nodes * sizeof *nodes);
    float **saved = malloc((size_t)m->n_nodes * sizeof *saved);
    float *logits = malloc((size_t)c->n * (size_t)m->n_classes * sizeof *logits);
    struct qforward *f = NULL;
    int rc = -1, k = 0;
    if (!used || !nodes || !saved || !logits) {
        qerr_set(err, "sweep: out of memory");
        goto out;
    }
    mark_nodes(s, used);
    if (qforward_new(m, c->n, &f, err) < 0)
        goto out;
    double bytes = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (used[i]) {
            bytes += (double)c->n * (double)(qforward_cut_floats(f, i) + m->nodes[i].out_numel);
            nodes[k++] = i;
        }
    if (check_bytes(s, bytes * sizeof(float), err) < 0)
        goto out;
    for (int j = 0; j < k; j++) {
        int i = nodes[j];
        c->in[i] = malloc((size_t)c->n * (size_t)qforward_cut_floats(f, i) * sizeof(float));
        c->ref[i] = malloc((size_t)c->n * (size_t)m->nodes[i].out_numel * sizeof(float));
        if (!c->in[i] || !c->ref[i]) {
            qerr_set(err, "sweep: out of memory for the calibration activations");
            goto out;
        }
        saved[j] = c->in[i];
    }
    if (qforward_run_capture(f, NULL, s->data->inputs, c->n, logits, k, nodes, saved, err) < 0)
        goto out;
    for (int j = 0; j < k; j++)
        if (qforward_node_output(f, NULL, nodes[j], c->in[nodes[j]], c->n, c->ref[nodes[j]],
                                 err) < 0)
            goto out;
    rc = 0;
out:
    qforward_free(f);
    free(used);
    free(nodes);
    free(saved);
    free(logits);
    return rc;
}

static int prepare_lm(const struct qsweep_spec *s, struct qsweep_proxy_cal *c, qerr *err)
{
    const struct qmodel *m = s->model;
    const struct qllm_config *cf = &m->llm->c;
    int n_ctx;
    int64_t n_chunks;
    if (qlm_chunking(m, s->tokens->tokens, s->tokens->n, &s->lm, &n_ctx, &n_chunks, err) < 0)
        return -1;
    c->n = n_ctx < PROXY_POSITIONS ? n_ctx : PROXY_POSITIONS;
    if (check_bytes(s, ((double)c->n_layers * cf->dim + cf->vocab_size) * c->n * sizeof(float),
                    err) < 0)
        return -1;
    /* the first chunk's first positions, BOS first as perplexity has it */
    c->tokens = malloc((size_t)c->n * sizeof *c->tokens);
    c->ref_logits = malloc((size_t)c->n * (size_t)cf->vocab_size * sizeof(float));
    struct qllm_cut *cuts = malloc((size_t)c->n_layers * sizeof *cuts);
    if (!c->tokens || !c->ref_logits || !cuts) {
        free(cuts);
        return qerr_set(err, "sweep: out of memory");
    }
    memcpy(c->tokens, s->tokens->tokens, (size_t)c->n * sizeof *c->tokens);
    const struct qtokenizer *tok = m->llm->tok;
    int32_t bos = !tok ? 1 : qtok_add_bos(tok) ? qtok_bos(tok) : -1;
    if (bos >= 0)
        c->tokens[0] = bos;
    for (int k = 0; k < c->n_layers; k++) {
        cuts[k] = (struct qllm_cut){k / 2, k % 2};
        c->in[k] = malloc((size_t)c->n * (size_t)cf->dim * sizeof(float));
        if (!c->in[k]) {
            free(cuts);
            return qerr_set(err, "sweep: out of memory for the calibration activations");
        }
    }
    struct qllm_state *st = NULL;
    int rc = qllm_state_new_threads(m, c->n, s->threads, &st, err);
    if (rc == 0)
        rc = qllm_forward_cut(st, NULL, c->tokens, c->n, 0, c->ref_logits, NULL, NULL,
                              c->n_layers, cuts, c->in, err);
    qllm_state_free(st);
    free(cuts);
    return rc;
}

int qsweep_proxy_prepare(const struct qsweep_spec *s, struct qsweep_proxy_cal **out, qerr *err)
{
    *out = NULL;
    const struct qmodel *m = s->model;
    struct qsweep_proxy_cal *c = calloc(1, sizeof *c);
    int layers = m->kind == QMODEL_LM ? 2 * m->llm->c.n_layers + 1 : m->n_nodes;
    if (!c || !(c->in = calloc((size_t)layers, sizeof *c->in)) ||
        !(c->ref = calloc((size_t)layers, sizeof *c->ref))) {
        qsweep_proxy_cal_free(c);
        return qerr_set(err, "sweep: out of memory");
    }
    c->m = m;
    c->n_layers = layers;
    int rc = m->kind == QMODEL_LM ? prepare_lm(s, c, err) : prepare_classifier(s, c, err);
    if (rc < 0) {
        qsweep_proxy_cal_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* Sums of squares of the error (got - want) and of the signal (want - base, or want). */
struct energy {
    double err, sig;
    int64_t count;
};

static void add_energy(struct energy *e, const float *got, const float *want, const float *base,
                       int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        double v = base ? (double)want[i] - base[i] : want[i];
        e->err += d * d;
        e->sig += v * v;
    }
    e->count += n;
}

static int scratch_for(const struct qsweep_proxy_cal *c, struct qsweep_proxy_scratch **sc,
                       qerr *err)
{
    if (*sc)
        return 0;
    const struct qmodel *m = c->m;
    struct qsweep_proxy_scratch *x = calloc(1, sizeof *x);
    if (!x)
        return qerr_set(err, "sweep: out of memory");
    int64_t most = 0;
    int rc;
    if (m->kind == QMODEL_LM) {
        most = (int64_t)m->llm->c.vocab_size > m->llm->c.dim ? m->llm->c.vocab_size
                                                             : m->llm->c.dim;
        rc = qllm_state_new_threads(m, c->n, 1, &x->st, err);
    } else {
        for (int i = 0; i < m->n_nodes; i++)
            most = m->nodes[i].out_numel > most ? m->nodes[i].out_numel : most;
        rc = qforward_new(m, c->n, &x->f, err);
    }
    x->y = rc == 0 ? malloc((size_t)c->n * (size_t)most * sizeof(float)) : NULL;
    if (rc == 0 && !x->y)
        rc = qerr_set(err, "sweep: out of memory");
    if (rc < 0) {
        qsweep_proxy_scratch_free(x);
        return -1;
    }
    *sc = x;
    return 0;
}

/* The output error of the layer starting at `layer` with weights wts. */
static int layer_energy(const struct qsweep_proxy_cal *c, struct qsweep_proxy_scratch *sc,
                        int layer, const float *const *wts, struct energy *e, qerr *err)
{
    const struct qmodel *m = c->m;
    if (m->kind != QMODEL_LM) {
        if (layer < 0 || layer >= m->n_nodes || !c->in[layer])
            return qerr_set(err, "sweep: %s: no layer uses a tensor of the group", m->name);
        if (qforward_node_output(sc->f, wts, layer, c->in[layer], c->n, sc->y, err) < 0)
            return -1;
        add_energy(e, sc->y, c->ref[layer], NULL, (int64_t)c->n * m->nodes[layer].out_numel);
        return 0;
    }
    const struct qllm *l = m->llm;
    const int dim = l->c.dim, last = 2 * l->c.n_layers;
    if (layer < 0) {
        /* the embedding lookup: the rows of the calibration tokens */
        const float *q = wts[l->token_embd] ? wts[l->token_embd]
                                            : m->tensors[l->token_embd]->f32;
        const float *f = m->tensors[l->token_embd]->f32;
        for (int i = 0; i < c->n; i++)
            add_energy(e, q + (size_t)c->tokens[i] * dim, f + (size_t)c->tokens[i] * dim, NULL,
                       dim);
        return 0;
    }
    if (layer == last) {
        /* the output norm and projection of the float final residual */
        struct qllm_cut at = {l->c.n_layers, 0};
        if (qllm_forward_cut(sc->st, wts, c->tokens, c->n, 0, sc->y, &at, c->in[last], 0, NULL,
                             NULL, err) < 0)
            return -1;
        add_energy(e, sc->y, c->ref_logits, NULL, (int64_t)c->n * l->c.vocab_size);
        return 0;
    }
    struct qllm_cut at = {layer / 2, layer % 2};
    if (qllm_half_block(sc->st, wts, c->n, at, c->in[layer], sc->y, err) < 0)
        return -1;
    /* the branch's output is what changes: the residual it adds to */
    add_energy(e, sc->y, c->in[layer + 1], c->in[layer], (int64_t)c->n * dim);
    return 0;
}

static void finish(const struct energy *e, struct qsweep_proxy *out)
{
    out->mse = e->count ? e->err / (double)e->count : 0;
    out->nsr = e->sig > 0 ? e->err / e->sig : e->err > 0 ? INFINITY : 0;
    out->sqnr_db = e->err > 0 ? 10.0 * log10(e->sig / e->err) : INFINITY;
}

int qsweep_proxy_weights(const struct qsweep_spec *s, int64_t g, const float *const *wts,
                         struct qsweep_proxy *out)
{
    const struct qsweep_group *gr = &s->groups[g];
    struct energy e = {0};
    for (int i = 0; i < gr->n_tensors; i++) {
        const struct qtensor *t = s->model->tensors[gr->tensors[i]];
        add_energy(&e, wts[gr->tensors[i]] ? wts[gr->tensors[i]] : t->f32, t->f32, NULL,
                   t->numel);
    }
    finish(&e, out);
    return 0;
}

int qsweep_proxy_outputs(const struct qsweep_proxy_cal *c, struct qsweep_proxy_scratch **sc,
                         const struct qsweep_spec *s, int64_t g, const float *const *wts,
                         struct qsweep_proxy *out, qerr *err)
{
    if (scratch_for(c, sc, err) < 0)
        return -1;
    const struct qsweep_group *gr = &s->groups[g];
    struct energy e = {0};
    /* each layer the group's tensors start once, in order */
    int prev = -2;
    for (;;) {
        int next = INT32_MAX;
        for (int i = 0; i < gr->n_tensors; i++) {
            int at = layer_of(c->m, gr->tensors[i]);
            if (at > prev && at < next)
                next = at;
        }
        if (next == INT32_MAX)
            break;
        if (layer_energy(c, *sc, next, wts, &e, err) < 0)
            return -1;
        prev = next;
    }
    finish(&e, out);
    return 0;
}
