/* check_llm.c — the llama forward pass (kernels by hand, batched = one at a time), validation, and the llama2.c loader. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/llm.h"
#include "quant/llm_kernels.h"
#include "quant/llm_load.h"
#include "quant/model.h"
#include "quant/tokenizer.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------- */

static void assert_close(const float *got, const double *want, int n, double tol, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= tol, "%s[%d]: got %.9g, want %.9g", what, i,
                      (double)got[i], want[i]);
}

static float max_abs_diff(const float *a, const float *b, size_t n)
{
    float d = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float e = fabsf(a[i] - b[i]);
        if (isnan(e))
            return e;
        if (e > d)
            d = e;
    }
    return d;
}

/* xorshift32: the same weights on every run */
static float rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return (float)(*s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
}

/* A small model built in memory: its tensors own their floats. */
struct tiny {
    int dim, hidden, layers, heads, kv, head_dim, vocab, ctx;
    enum qllm_arch arch;
    enum qllm_rope rope;
    int untied;
};

static const struct tiny TINY = {8, 12, 2, 2, 1, 4, 16, 64, QLLM_LLAMA, QLLM_ROPE_INTERLEAVED, 0};

static int add_tensor(struct qmodel *m, const char *name, int64_t rows, int64_t cols,
                      float base, float spread, uint32_t *seed)
{
    int i = m->n_owned++;
    struct qtensor *t = &m->owned[i];
    t->name = strdup(name);
    t->dtype = QDT_F32;
    t->ndim = rows ? 2 : 1;
    t->shape[0] = rows ? rows : cols;
    t->shape[1] = rows ? cols : 0;
    t->numel = (rows ? rows : 1) * cols;
    t->f32_owned = malloc((size_t)t->numel * sizeof(float));
    for (int64_t j = 0; j < t->numel; j++)
        t->f32_owned[j] = base + spread * rnd(seed);
    t->data = t->f32 = t->f32_owned;
    t->nbytes = (size_t)t->numel * sizeof(float);
    m->tensors[i] = t;
    m->n_tensors = m->n_owned;
    return i;
}

static struct qmodel *tiny_new(const struct tiny *c, const char *path, uint32_t seed)
{
    struct qmodel *m = calloc(1, sizeof *m);
    m->kind = QMODEL_LM;
    m->path = strdup(path);
    m->name = strdup("tiny");
    m->format = strdup("test");
    struct qllm *l = m->llm = qllm_new(c->layers);
    l->c = (struct qllm_config){c->arch, c->dim, c->hidden, c->layers, c->heads, c->kv,
                                c->head_dim, c->vocab, c->ctx, 1e-5f, 10000.0f, c->rope};
    int cap = 3 + 12 * c->layers;
    m->owned = calloc((size_t)cap, sizeof *m->owned);
    m->tensors = calloc((size_t)cap, sizeof *m->tensors);
    const int64_t qd = (int64_t)c->heads * c->head_dim, kvd = (int64_t)c->kv * c->head_dim;
    char n[64];
    l->token_embd = add_tensor(m, "token_embd.weight", c->vocab, c->dim, 0, 1, &seed);
    for (int b = 0; b < c->layers; b++) {
        struct qllm_layer *L = &l->layers[b];
        /* matrices scaled like 1/sqrt(in) so activations stay O(1) */
        float sd = 1.0f / sqrtf((float)c->dim), sh = 1.0f / sqrtf((float)c->hidden);
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", b);
        L->attn_norm = add_tensor(m, n, 0, c->dim, 1, 0.2f, &seed);
        snprintf(n, sizeof n, "blk.%d.attn_q.weight", b);
        L->wq = add_tensor(m, n, qd, c->dim, 0, sd, &seed);
        snprintf(n, sizeof n, "blk.%d.attn_k.weight", b);
        L->wk = add_tensor(m, n, kvd, c->dim, 0, sd, &seed);
        snprintf(n, sizeof n, "blk.%d.attn_v.weight", b);
        L->wv = add_tensor(m, n, kvd, c->dim, 0, sd, &seed);
        snprintf(n, sizeof n, "blk.%d.attn_output.weight", b);
        L->wo = add_tensor(m, n, c->dim, qd, 0, 1.0f / sqrtf((float)qd), &seed);
        if (c->arch == QLLM_QWEN2) {
            snprintf(n, sizeof n, "blk.%d.attn_q.bias", b);
            L->bq = add_tensor(m, n, 0, qd, 0, 0.5f, &seed);
            snprintf(n, sizeof n, "blk.%d.attn_k.bias", b);
            L->bk = add_tensor(m, n, 0, kvd, 0, 0.5f, &seed);
            snprintf(n, sizeof n, "blk.%d.attn_v.bias", b);
            L->bv = add_tensor(m, n, 0, kvd, 0, 0.5f, &seed);
        }
        snprintf(n, sizeof n, "blk.%d.ffn_norm.weight", b);
        L->ffn_norm = add_tensor(m, n, 0, c->dim, 1, 0.2f, &seed);
        snprintf(n, sizeof n, "blk.%d.ffn_gate.weight", b);
        L->w_gate = add_tensor(m, n, c->hidden, c->dim, 0, sd, &seed);
        snprintf(n, sizeof n, "blk.%d.ffn_up.weight", b);
        L->w_up = add_tensor(m, n, c->hidden, c->dim, 0, sd, &seed);
        snprintf(n, sizeof n, "blk.%d.ffn_down.weight", b);
        L->w_down = add_tensor(m, n, c->dim, c->hidden, 0, sh, &seed);
    }
    l->output_norm = add_tensor(m, "output_norm.weight", 0, c->dim, 1, 0.2f, &seed);
    l->output = c->untied ? add_tensor(m, "output.weight", c->vocab, c->dim, 0, 1, &seed)
                          : l->token_embd;
    return m;
}

static struct qmodel *tiny_valid(const struct tiny *c, uint32_t seed)
{
    struct qmodel *m = tiny_new(c, "tiny", seed);
    qerr err = {{0}};
    ck_assert_msg(qllm_validate(m, &err) == 0, "validate: %s", err.msg);
    return m;
}

/* Logits of tokens[0..n) through a fresh state, in slices of `step`
 * positions (n for all at once), every position's logits. */
static float *run_slices(const struct qmodel *m, const float *const *w, const int32_t *tokens,
                         int n, int step, int n_ctx)
{
    int V = m->llm->c.vocab_size;
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    ck_assert_msg(qllm_state_new(m, n_ctx, &s, &err) == 0, "state: %s", err.msg);
    float *logits = malloc((size_t)n * V * sizeof(float));
    for (int p = 0; p < n; p += step) {
        int k = n - p < step ? n - p : step;
        ck_assert_msg(qllm_forward(s, w, tokens + p, k, p, 0, logits + (size_t)p * V, &err) == 0,
                      "forward: %s", err.msg);
    }
    qllm_state_free(s);
    return logits;
}

/* ---- reference: llama2.c's loops ------------------------------------------- */

/* y = W x, W [out, in], sums in float in order (llama2.c's matmul) */
static void ref_matvec(float *y, const float *w, const float *x, int out, int in)
{
    for (int i = 0; i < out; i++) {
        float v = 0.0f;
        for (int j = 0; j < in; j++)
            v += w[(size_t)i * in + j] * x[j];
        y[i] = v;
    }
}

static void ref_rmsnorm(float *o, const float *x, const float *w, int n)
{
    float ss = 0.0f;
    for (int j = 0; j < n; j++)
        ss += x[j] * x[j];
    ss = 1.0f / sqrtf(ss / n + 1e-5f);
    for (int j = 0; j < n; j++)
        o[j] = w[j] * (ss * x[j]);
}

static const float *ref_w(const struct qmodel *m, int i)
{
    return i < 0 ? NULL : m->tensors[i]->f32;
}

/* Rotates one head at pos: pairs (2j, 2j+1), or (j, j + hd/2) for HALF */
static void ref_rope(float *v, int hd, int pos, float theta, enum qllm_rope layout)
{
    for (int j = 0; j < hd / 2; j++) {
        float freq = 1.0f / powf(theta, (float)(2 * j) / (float)hd);
        float fcr = cosf(pos * freq), fci = sinf(pos * freq);
        int half = layout == QLLM_ROPE_HALF;
        int a = half ? j : 2 * j, b = half ? j + hd / 2 : a + 1;
        float v0 = v[a], v1 = v[b];
        v[a] = v0 * fcr - v1 * fci;
        v[b] = v0 * fci + v1 * fcr;
    }
}

/* llama2.c's forward, one position at a time with plain loops, plus
 * q/k/v biases and the half RoPE layout: what the batched pass must give. */
static void ref_forward(const struct qmodel *m, const int32_t *tokens, int n, float *logits)
{
    const struct qllm *l = m->llm;
    const struct qllm_config *c = &l->c;
    const int D = c->dim, F = c->hidden_dim, H = c->n_heads, hd = c->head_dim;
    const int qd = H * hd, kvd = c->n_kv_heads * hd, V = c->vocab_size;
    float *kc = calloc((size_t)c->n_layers * n * kvd, sizeof(float));
    float *vc = calloc((size_t)c->n_layers * n * kvd, sizeof(float));
    float *x = malloc((size_t)D * 4), *xb = malloc((size_t)(D > qd ? D : qd) * 4);
    float *xb2 = malloc((size_t)D * 4), *q = malloc((size_t)qd * 4), *o = malloc((size_t)qd * 4);
    float *att = malloc((size_t)n * 4), *hb = malloc((size_t)F * 4), *hb2 = malloc((size_t)F * 4);
    for (int pos = 0; pos < n; pos++) {
        memcpy(x, ref_w(m, l->token_embd) + (size_t)tokens[pos] * D, (size_t)D * 4);
        for (int b = 0; b < c->n_layers; b++) {
            const struct qllm_layer *L = &l->layers[b];
            float *k = kc + ((size_t)b * n + pos) * kvd, *v = vc + ((size_t)b * n + pos) * kvd;
            ref_rmsnorm(xb, x, ref_w(m, L->attn_norm), D);
            ref_matvec(q, ref_w(m, L->wq), xb, qd, D);
            ref_matvec(k, ref_w(m, L->wk), xb, kvd, D);
            ref_matvec(v, ref_w(m, L->wv), xb, kvd, D);
            for (int i = 0; L->bq >= 0 && i < qd; i++)
                q[i] += ref_w(m, L->bq)[i];
            for (int i = 0; L->bk >= 0 && i < kvd; i++) {
                k[i] += ref_w(m, L->bk)[i];
                v[i] += ref_w(m, L->bv)[i];
            }
            for (int h = 0; h < H; h++)
                ref_rope(q + h * hd, hd, pos, c->rope_theta, c->rope);
            for (int h = 0; h < c->n_kv_heads; h++)
                ref_rope(k + h * hd, hd, pos, c->rope_theta, c->rope);
            for (int h = 0; h < H; h++) {
                int g = h / (H / c->n_kv_heads);
                float mx = -INFINITY, sum = 0.0f;
                for (int t = 0; t <= pos; t++) {
                    const float *kt = kc + ((size_t)b * n + t) * kvd + g * hd;
                    float sc = 0.0f;
                    for (int i = 0; i < hd; i++)
                        sc += q[h * hd + i] * kt[i];
                    att[t] = sc / sqrtf((float)hd);
                    mx = att[t] > mx ? att[t] : mx;
                }
                for (int t = 0; t <= pos; t++)
                    sum += att[t] = expf(att[t] - mx);
                for (int i = 0; i < hd; i++) {
                    float acc = 0.0f;
                    for (int t = 0; t <= pos; t++)
                        acc += att[t] / sum * vc[((size_t)b * n + t) * kvd + g * hd + i];
                    o[h * hd + i] = acc;
                }
            }
            ref_matvec(xb2, ref_w(m, L->wo), o, D, qd);
            for (int i = 0; i < D; i++)
                x[i] += xb2[i];
            ref_rmsnorm(xb, x, ref_w(m, L->ffn_norm), D);
            ref_matvec(hb, ref_w(m, L->w_gate), xb, F, D);
            ref_matvec(hb2, ref_w(m, L->w_up), xb, F, D);
            for (int i = 0; i < F; i++)
                hb[i] = hb[i] / (1.0f + expf(-hb[i])) * hb2[i];
            ref_matvec(xb2, ref_w(m, L->w_down), hb, D, F);
            for (int i = 0; i < D; i++)
                x[i] += xb2[i];
        }
        ref_rmsnorm(xb, x, ref_w(m, l->output_norm), D);
        ref_matvec(logits + (size_t)pos * V, ref_w(m, l->output), xb, V, D);
    }
    free(kc);
    free(vc);
    free(x);
    free(xb);
    free(xb2);
    free(q);
    free(o);
    free(att);
    free(hb);
    free(hb2);
}

/* ---- Kernels: hand-computed values ---------------------------------------- */

START_TEST(rmsnorm_hand)
{
    /* x = [1, 2, 3, 4]: mean of squares 30/4 = 7.5; 1/sqrt(7.5 + 1e-5) =
     * 0.36514813; times w = [1, 0.5, 2, 1] */
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 0.5f, 2, 1};
    float o[4];
    qllm_rmsnorm(o, x, w, 4, 1e-5f);
    const double want[4] = {0.36514813, 0.36514813, 2.19088877, 1.46059251};
    assert_close(o, want, 4, 1e-6, "rmsnorm");
    /* in place gives the same */
    float y[4] = {1, 2, 3, 4};
    qllm_rmsnorm(y, y, w, 4, 1e-5f);
    ck_assert_mem_eq(y, o, sizeof o);
}
END_TEST

/* One head of 4 values, theta 100: pair 0 turns by pos x 1 rad, pair 1 by
 * pos x 100^(-2/4) = pos x 0.1 rad. cos 1 = 0.54030231, sin 1 = 0.84147098,
 * cos 0.1 = 0.99500417, sin 0.1 = 0.09983342, cos 2 = -0.41614684,
 * sin 2 = 0.90929743, cos 0.2 = 0.98006658, sin 0.2 = 0.19866933. */
START_TEST(rope_table_hand)
{
    float cs[3 * 2 * 2];
    qllm_rope_table(cs, 0, 3, 4, 100.0f);
    const double want[12] = {1, 0, 1, 0,
                             0.54030231, 0.84147098, 0.99500417, 0.09983342,
                             -0.41614684, 0.90929743, 0.98006658, 0.19866933};
    assert_close(cs, want, 12, 1e-6, "cos/sin");
    /* a table from pos0 = 2 is row 2 of the one from 0 */
    float cs2[4];
    qllm_rope_table(cs2, 2, 1, 4, 100.0f);
    ck_assert_mem_eq(cs2, cs + 8, sizeof cs2);
}
END_TEST

START_TEST(rope_interleaved_hand)
{
    /* pairs (0,1) and (2,3) of x = [1, 2, 3, 4]:
     * pos 1: (1c1 - 2s1, 1s1 + 2c1) = (-1.14263966, 1.92207560),
     *        (3c.1 - 4s.1, 3s.1 + 4c.1) = (2.58567883, 4.27951691)
     * pos 2: (1c2 - 2s2, 1s2 + 2c2) = (-2.23474169, 0.07700375),
     *        (3c.2 - 4s.2, 3s.2 + 4c.2) = (2.14552241, 4.51627430) */
    const double want[3][4] = {{1, 2, 3, 4},
                               {-1.14263966, 1.92207560, 2.58567883, 4.27951691},
                               {-2.23474169, 0.07700375, 2.14552241, 4.51627430}};
    float cs[12];
    qllm_rope_table(cs, 0, 3, 4, 100.0f);
    for (int p = 0; p < 3; p++) {
        float x[4] = {1, 2, 3, 4};
        qllm_rope_row(x, 1, 4, cs + p * 4, QLLM_ROPE_INTERLEAVED);
        assert_close(x, want[p], 4, 1e-6, "interleaved");
    }
}
END_TEST

START_TEST(rope_half_hand)
{
    /* pairs (0,2) and (1,3) of x = [1, 2, 3, 4] (rotate_half):
     * pos 1: x0 = 1c1 - 3s1 = -1.98411065, x2 = 1s1 + 3c1 = 2.46237790,
     *        x1 = 2c.1 - 4s.1 = 1.59067466, x3 = 2s.1 + 4c.1 = 4.17968349
     * pos 2: x0 = 1c2 - 3s2 = -3.14403912, x2 = 1s2 + 3c2 = -0.33914308,
     *        x1 = 2c.2 - 4s.2 = 1.16545583, x3 = 2s.2 + 4c.2 = 4.31760497 */
    const double want[3][4] = {{1, 2, 3, 4},
                               {-1.98411065, 1.59067466, 2.46237790, 4.17968349},
                               {-3.14403912, 1.16545583, -0.33914308, 4.31760497}};
    float cs[12];
    qllm_rope_table(cs, 0, 3, 4, 100.0f);
    for (int p = 0; p < 3; p++) {
        /* two heads: each turns the same way */
        float x[8] = {1, 2, 3, 4, 1, 2, 3, 4};
        qllm_rope_row(x, 2, 4, cs + p * 4, QLLM_ROPE_HALF);
        assert_close(x, want[p], 4, 1e-6, "half head 0");
        assert_close(x + 4, want[p], 4, 1e-6, "half head 1");
    }
}
END_TEST

START_TEST(attention_causal_hand)
{
    /* 1 head, head_dim 2: q = k = [1,0], [0,1], [1,1]; v = [1,2], [3,4], [5,6].
     * row 0 sees key 0 only: out = v0 = [1, 2].
     * row 1: scores [0, 1]/sqrt2 = [0, 0.70710678]; softmax =
     *   [1, e^0.7071] / (1 + 2.02811498) = [0.33023845, 0.66976155];
     *   out = 0.33023845 [1,2] + 0.66976155 [3,4] = [2.33952310, 3.33952310].
     * row 2: scores [1, 1, 2]/sqrt2; softmax = [e^-0.7071, e^-0.7071, 1] /
     *   1.98613866 = [0.24825508, 0.24825508, 0.50348984];
     *   out = [3.51046953, 4.51046953]. */
    const float q[6] = {1, 0, 0, 1, 1, 1}, k[6] = {1, 0, 0, 1, 1, 1}, v[6] = {1, 2, 3, 4, 5, 6};
    float out[6], scores[9];
    qllm_attention(q, k, v, out, 3, 0, 1, 1, 2, 0, 1, scores);
    const double want[6] = {1, 2, 2.33952310, 3.33952310, 3.51046953, 4.51046953};
    assert_close(out, want, 6, 1e-6, "attention");
    /* row 2 alone, with rows 0 and 1 already cached (pos 2), is the same */
    float out2[2];
    qllm_attention(q + 4, k, v, out2, 1, 2, 1, 1, 2, 0, 1, scores);
    assert_close(out2, want + 4, 2, 1e-6, "attention at pos 2");
}
END_TEST

START_TEST(gqa_mapping)
{
    /* 4 query heads over 2 KV heads: heads 0,1 read KV head 0; 2,3 read 1 */
    ck_assert_int_eq(qllm_kv_head(0, 4, 2), 0);
    ck_assert_int_eq(qllm_kv_head(1, 4, 2), 0);
    ck_assert_int_eq(qllm_kv_head(2, 4, 2), 1);
    ck_assert_int_eq(qllm_kv_head(3, 4, 2), 1);
    /* stories260K: 8 heads over 4 */
    ck_assert_int_eq(qllm_kv_head(7, 8, 4), 3);
    ck_assert_int_eq(qllm_kv_head(5, 8, 8), 5);
    /* one position: softmax of one score is 1, so each head returns the V
     * of its KV head. kv head 0 has v = [10, 11], head 1 [20, 21]. */
    const float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, k[4] = {1, 1, 1, 1}, v[4] = {10, 11, 20, 21};
    float out[8], scores[1];
    qllm_attention(q, k, v, out, 1, 0, 4, 2, 2, 0, 4, scores);
    const double want[8] = {10, 11, 10, 11, 20, 21, 20, 21};
    assert_close(out, want, 8, 0, "gqa");
    /* a head range touches only its heads */
    float part[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
    qllm_attention(q, k, v, part, 1, 0, 4, 2, 2, 2, 3, scores);
    const double want_part[8] = {-1, -1, -1, -1, 20, 21, -1, -1};
    assert_close(part, want_part, 8, 0, "head range");
}
END_TEST

START_TEST(swiglu_hand)
{
    /* silu(g) = g / (1 + e^-g): silu(0) = 0, silu(1) = 0.73105858,
     * silu(-2) = -2 / (1 + e^2) = -0.23840584, silu(3) = 2.85772238 */
    float g[4] = {0, 1, -2, 3};
    const float u[4] = {5, 2, 1, -1};
    qllm_swiglu(g, u, 4);
    const double want[4] = {0, 1.46211716, -0.23840584, -2.85772238};
    assert_close(g, want, 4, 1e-6, "swiglu");
}
END_TEST

START_TEST(exp_within_two_ulp)
{
    /* a sweep of [-87, 88] against exp in double: within 2 ulp (2.4e-7) */
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    double worst = 0;
    for (int i = 0; i < N; i++)
        x[i] = -87.0f + 175.0f * (float)i / (float)(N - 1);
    qllm_exp(y, x, N);
    for (int i = 0; i < N; i++) {
        double want = exp((double)x[i]), rel = fabs(y[i] - want) / want;
        worst = rel > worst ? rel : worst;
    }
    ck_assert_msg(worst <= 2.4e-7, "worst relative error %g", worst);
    /* exact where it must be; clamped outside [-87, 88], never inf or 0;
     * 7 values: the vector path and the tail agree */
    const float e[7] = {0.0f, 1.0f, -1.0f, -1000.0f, -INFINITY, 1000.0f, 0.0f};
    float o[7];
    qllm_exp(o, e, 7);
    ck_assert_float_eq(o[0], 1.0f);
    ck_assert_float_eq(o[6], 1.0f);
    ck_assert_msg(fabs(o[1] - 2.718281828) <= 3e-7 && fabs(o[2] - 0.3678794412) <= 5e-8,
                  "e^1 %.9g, e^-1 %.9g", (double)o[1], (double)o[2]);
    qllm_exp(y, x, 1);
    ck_assert_float_eq(o[3], y[0]);             /* e^-1000 gives e^-87 */
    ck_assert_float_eq(o[4], y[0]);
    ck_assert(o[3] > 0 && isfinite(o[5]) && o[5] > 1e38f);
    free(x);
    free(y);
}
END_TEST

START_TEST(swiglu_vector_and_tail)
{
    /* 7 values: 4 through the vector path, 3 through the tail; against
     * g / (1 + e^-g) * u in double, within 3e-7 relative, and far out in
     * both directions (silu(-100) ~ -3.7e-42 flushes to ~0) */
    float g[7] = {0.5f, -0.25f, 2.0f, -3.0f, 7.5f, -100.0f, 100.0f};
    const float u[7] = {1, 2, -1, 0.5f, 3, 1, -2};
    double want[7];
    for (int i = 0; i < 7; i++)
        want[i] = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    qllm_swiglu(g, u, 7);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(fabs(g[i] - want[i]) <= 3e-7 * fabs(want[i]), "swiglu[%d]: %.9g, want %.9g",
                      i, (double)g[i], want[i]);
    ck_assert_msg(fabs(g[5]) < 1e-35, "silu(-100): %g", (double)g[5]);
    ck_assert_float_eq(g[6], -200.0f);
}
END_TEST

/* ---- Forward: batched = one at a time -------------------------------------- */

static const int32_t TOKENS5[5] = {1, 7, 3, 15, 7};

static void batched_vs_single(const struct tiny *c)
{
    struct qmodel *m = tiny_valid(c, 12345);
    int V = c->vocab;
    float *all = run_slices(m, NULL, TOKENS5, 5, 5, 16);
    /* the plain loops of llama2.c give the same, up to the order of sums */
    float *ref = malloc((size_t)5 * V * sizeof(float));
    ref_forward(m, TOKENS5, 5, ref);
    float dr = max_abs_diff(all, ref, (size_t)5 * V);
    ck_assert_msg(dr <= 1e-5f, "batched vs reference loops: max diff %g", (double)dr);
    free(ref);
    float *one = run_slices(m, NULL, TOKENS5, 5, 1, 16);
    float d = max_abs_diff(all, one, (size_t)5 * V);
    ck_assert_msg(d <= 1e-5f, "batched vs one at a time: max diff %g", (double)d);
    /* logits are not trivially equal across positions */
    ck_assert_msg(max_abs_diff(all, all + V, (size_t)V) > 1e-3f, "positions 0 and 1 agree");
    /* positions 0..2 then 3..4 through the cache */
    float *split = run_slices(m, NULL, TOKENS5, 5, 3, 16);
    d = max_abs_diff(all, split, (size_t)5 * V);
    ck_assert_msg(d <= 1e-5f, "3 + 2 vs 5: max diff %g", (double)d);
    for (int i = 0; i < 5 * V; i++)
        ck_assert_msg(isfinite(all[i]), "logit %d is %g", i, (double)all[i]);
    free(all);
    free(one);
    free(split);
    qmodel_free(m);
}

START_TEST(batched_equals_sequential_llama)
{
    batched_vs_single(&TINY);
}
END_TEST

START_TEST(batched_equals_sequential_qwen2)
{
    struct tiny c = TINY;
    c.arch = QLLM_QWEN2;
    c.rope = QLLM_ROPE_HALF;
    c.heads = 4;
    c.kv = 2;
    c.head_dim = 4; /* n_heads x head_dim = 16, twice dim */
    c.untied = 1;
    batched_vs_single(&c);
}
END_TEST

START_TEST(split_between_threads)
{
    /* large enough that every product, the attention and SwiGLU are split
     * between the cores (vocab 300: a partial tile of output features) */
    struct tiny c = {64, 320, 2, 4, 2, 16, 300, 64, QLLM_QWEN2, QLLM_ROPE_HALF, 1};
    struct qmodel *m = tiny_valid(&c, 77);
    int n = 64, V = c.vocab;
    int32_t tok[64];
    for (int i = 0; i < n; i++)
        tok[i] = (i * 37 + 11) % V;
    float *all = run_slices(m, NULL, tok, n, n, n);
    float *ref = malloc((size_t)n * V * sizeof(float));
    ref_forward(m, tok, n, ref);
    float d = max_abs_diff(all, ref, (size_t)n * V);
    ck_assert_msg(d <= 1e-4f, "batched vs reference loops: max diff %g", (double)d);
    float *one = run_slices(m, NULL, tok, n, 1, n);
    d = max_abs_diff(all, one, (size_t)n * V);
    ck_assert_msg(d <= 1e-4f, "batched vs one at a time: max diff %g", (double)d);
    free(one);
    free(ref);
    free(all);
    qmodel_free(m);
}
END_TEST

START_TEST(threads_same_to_the_bit)
{
    /* products go through OpenBLAS in fixed tiles of output features, so
     * one thread and several give the very same floats */
    struct tiny c = {64, 320, 2, 4, 2, 16, 300, 64, QLLM_LLAMA, QLLM_ROPE_INTERLEAVED, 0};
    struct qmodel *m = tiny_valid(&c, 31);
    int n = 64, V = c.vocab;
    int32_t tok[64];
    for (int i = 0; i < n; i++)
        tok[i] = (i * 29 + 5) % V;
    float *out[3];
    for (int t = 0; t < 3; t++) {
        struct qllm_state *s = NULL;
        qerr err = {{0}};
        ck_assert_int_eq(qllm_state_new_threads(m, n, t + 1, &s, &err), 0);
        out[t] = malloc((size_t)n * V * sizeof(float));
        ck_assert_msg(qllm_forward(s, NULL, tok, n, 0, 0, out[t], &err) == 0, "%s", err.msg);
        qllm_state_free(s);
    }
    for (int t = 1; t < 3; t++)
        ck_assert_msg(memcmp(out[0], out[t], (size_t)n * V * sizeof(float)) == 0,
                      "%d threads differ from one", t + 1);
    for (int t = 0; t < 3; t++)
        free(out[t]);
    qmodel_free(m);
}
END_TEST

/* Saves every cut of a pass (logits from `from`), then resumes from each
 * with another tensor's override after it: the logits equal a full pass
 * with that override, to the bit. */
static void cuts_resume(const struct tiny *c, int n, int from, uint32_t seed)
{
    struct qmodel *m = tiny_valid(c, seed);
    const int V = c->vocab, L = c->layers, dim = c->dim, rows = n - from;
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    for (int i = 0; i < n; i++)
        tok[i] = (i * 11 + 7) % V;
    struct qllm_cut cuts[2 * 8 + 1];
    float *x[2 * 8 + 1];
    int nc = 0;
    for (int l = 0; l <= L; l++)
        for (int f = 0; f <= (l < L); f++) {
            cuts[nc] = (struct qllm_cut){l, f};
            x[nc++] = calloc((size_t)n * dim, sizeof(float));
        }
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_state_new_threads(m, n, 2, &s, &err), 0);
    float *full = malloc((size_t)rows * V * sizeof(float));
    float *cut = malloc((size_t)rows * V * sizeof(float));
    float *plain = malloc((size_t)rows * V * sizeof(float));
    ck_assert_msg(qllm_forward_cut(s, NULL, tok, n, from, full, NULL, NULL, nc, cuts, x, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(qllm_forward(s, NULL, tok, n, 0, from, plain, &err), 0);
    ck_assert(memcmp(full, plain, (size_t)rows * V * sizeof(float)) == 0);
    /* the residual entering block 0 is the embedding */
    for (int i = 0; i < n; i++)
        ck_assert(memcmp(x[0] + (size_t)i * dim, m->tensors[m->llm->token_embd]->f32 +
                         (size_t)tok[i] * dim, (size_t)dim * sizeof(float)) == 0);
    /* an override used at or after each cut: ffn_down of the last block,
     * or for the cut after it the output norm */
    const int ts[2] = {m->llm->layers[L - 1].w_down, m->llm->output_norm};
    float *w[2];
    const float **wts[2];
    for (int o = 0; o < 2; o++) {
        const int64_t numel = m->tensors[ts[o]]->numel;
        w[o] = malloc((size_t)numel * sizeof(float));
        for (int64_t i = 0; i < numel; i++)
            w[o][i] = m->tensors[ts[o]]->f32[i] * 0.75f;
        wts[o] = calloc((size_t)m->n_tensors, sizeof *wts[o]);
        wts[o][ts[o]] = w[o];
    }
    for (int k = 0; k < nc; k++) {
        const float *const *wk = (const float *const *)wts[cuts[k].layer == L];
        ck_assert_int_eq(qllm_forward(s, wk, tok, n, 0, from, full, &err), 0);
        ck_assert_msg(qllm_forward_cut(s, wk, tok, n, from, cut, &cuts[k], x[k], 0, NULL, NULL,
                                       &err) == 0, "%s", err.msg);
        ck_assert_msg(memcmp(full, cut, (size_t)rows * V * sizeof(float)) == 0,
                      "resumed at block %d%s: logits differ from a full pass", cuts[k].layer,
                      cuts[k].ffn ? " (feed-forward)" : "");
    }
    /* after a resume the skipped layers' cache is stale: no call from pos > 0 */
    ck_assert_int_eq(qllm_forward_cut(s, NULL, tok, n, from, cut, &cuts[2], x[2], 0, NULL, NULL,
                                      &err), 0);
    ck_assert_int_eq(qllm_forward(s, NULL, tok, 1, 1, 0, cut, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "start at 0"));
    ck_assert_int_eq(qllm_forward(s, NULL, tok, n, 0, from, cut, &err), 0);
    ck_assert_int_eq(qllm_forward(s, NULL, tok, 1, n - 1, 0, cut, &err), 0);
    /* cuts that do not exist */
    struct qllm_cut bad[] = {{-1, 0}, {L, 1}, {L + 1, 0}, {0, 2}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_int_eq(qllm_forward_cut(s, NULL, tok, n, from, cut, &bad[k], x[0], 0, NULL,
                                          NULL, &err), -1);
        ck_assert_int_eq(qllm_forward_cut(s, NULL, tok, n, from, cut, NULL, NULL, 1, &bad[k], x,
                                          &err), -1);
    }
    ck_assert_int_eq(qllm_forward_cut(s, NULL, tok, n, from, cut, &cuts[1], NULL, 0, NULL, NULL,
                                      &err), -1);
    qllm_state_free(s);
    for (int k = 0; k < nc; k++)
        free(x[k]);
    for (int o = 0; o < 2; o++) {
        free(wts[o]);
        free(w[o]);
    }
    free(full);
    free(cut);
    free(plain);
    free(tok);
    qmodel_free(m);
}

START_TEST(cuts_resume_to_the_bit)
{
    struct tiny big = {64, 320, 3, 4, 2, 16, 300, 64, QLLM_QWEN2, QLLM_ROPE_HALF, 1};
    cuts_resume(&TINY, 16, 8, 3);
    cuts_resume(&big, 64, 32, 4);
    cuts_resume(&big, 63, 0, 5);
    /* slices: 600 positions go through in slices of 512 */
    struct tiny long_ctx = TINY;
    long_ctx.ctx = 700;
    cuts_resume(&long_ctx, 600, 300, 6);
}
END_TEST

START_TEST(first_use_of_tensors)
{
    struct tiny c = TINY;
    c.untied = 1;
    struct qmodel *m = tiny_valid(&c, 8);
    const struct qllm *l = m->llm;
    struct qllm_cut u = qllm_first_use(m, l->token_embd);
    ck_assert_int_eq(u.layer, -1);
    u = qllm_first_use(m, l->layers[1].wv);
    ck_assert(u.layer == 1 && u.ffn == 0);
    u = qllm_first_use(m, l->layers[0].w_up);
    ck_assert(u.layer == 0 && u.ffn == 1);
    u = qllm_first_use(m, l->output);
    ck_assert(u.layer == c.layers && u.ffn == 0);
    ck_assert(qllm_cut_cmp((struct qllm_cut){0, 1}, (struct qllm_cut){1, 0}) < 0);
    ck_assert(qllm_cut_cmp((struct qllm_cut){1, 1}, (struct qllm_cut){1, 0}) > 0);
    ck_assert_int_eq(qllm_cut_cmp((struct qllm_cut){2, 0}, (struct qllm_cut){2, 0}), 0);
    qmodel_free(m);
}
END_TEST

START_TEST(scored_half_same_to_the_bit)
{
    /* perplexity asks for the logits of a chunk's second half (from n/2):
     * they are the very floats a call for every row gives, so its numbers
     * do not depend on the saving (even and odd n; a model large enough
     * for every product to be split between the cores) */
    struct tiny big = {64, 320, 2, 4, 2, 16, 300, 64, QLLM_LLAMA, QLLM_ROPE_INTERLEAVED, 0};
    const struct tiny *cfg[2] = {&TINY, &big};
    for (int k = 0; k < 2; k++)
        for (int n = 63; n <= 64; n++) {
            struct qmodel *m = tiny_valid(cfg[k], 90 + (uint32_t)n);
            int V = cfg[k]->vocab, from = n / 2;
            int32_t tok[64];
            for (int i = 0; i < n; i++)
                tok[i] = (i * 13 + 2) % V;
            float *all = run_slices(m, NULL, tok, n, n, 64);
            float *half = malloc((size_t)(n - from) * V * sizeof *half);
            struct qllm_state *s = NULL;
            qerr err = {{0}};
            ck_assert_int_eq(qllm_state_new(m, 64, &s, &err), 0);
            ck_assert_int_eq(qllm_forward(s, NULL, tok, n, 0, from, half, &err), 0);
            ck_assert_msg(memcmp(half, all + (size_t)from * V, (size_t)(n - from) * V *
                                 sizeof *half) == 0, "model %d, n %d: the half differs", k, n);
            qllm_state_free(s);
            free(half);
            free(all);
            qmodel_free(m);
        }
}
END_TEST

START_TEST(attention_row_blocks)
{
    /* 150 query rows take attention in blocks of at most 64 rows: against
     * llama2.c's loops, and against one position at a time */
    struct tiny c = {16, 24, 2, 4, 2, 4, 40, 160, QLLM_LLAMA, QLLM_ROPE_INTERLEAVED, 0};
    struct qmodel *m = tiny_valid(&c, 79);
    int n = 150, V = c.vocab;
    int32_t tok[150];
    for (int i = 0; i < n; i++)
        tok[i] = (i * 17 + 3) % V;
    float *all = run_slices(m, NULL, tok, n, n, 160);
    float *ref = malloc((size_t)n * V * sizeof(float));
    ref_forward(m, tok, n, ref);
    float d = max_abs_diff(all, ref, (size_t)n * V);
    ck_assert_msg(d <= 1e-4f, "batched vs reference loops: max diff %g", (double)d);
    float *one = run_slices(m, NULL, tok, n, 1, 160);
    d = max_abs_diff(all, one, (size_t)n * V);
    ck_assert_msg(d <= 1e-4f, "batched vs one at a time: max diff %g", (double)d);
    free(one);
    free(ref);
    free(all);
    qmodel_free(m);
}
END_TEST

START_TEST(causal_prefix_unchanged)
{
    /* the logits of position 2 do not depend on the tokens after it */
    struct qmodel *m = tiny_valid(&TINY, 99);
    const int32_t a[5] = {4, 5, 6, 7, 8}, b[5] = {4, 5, 6, 0, 1};
    float *la = run_slices(m, NULL, a, 5, 5, 8), *lb = run_slices(m, NULL, b, 5, 5, 8);
    int V = TINY.vocab;
    ck_assert_float_eq(max_abs_diff(la, lb, (size_t)3 * V), 0.0f);
    ck_assert(max_abs_diff(la + 3 * V, lb + 3 * V, (size_t)V) > 1e-4f);
    free(la);
    free(lb);
    qmodel_free(m);
}
END_TEST

START_TEST(last_only_is_last_row)
{
    struct qmodel *m = tiny_valid(&TINY, 7);
    int V = TINY.vocab;
    float *all = run_slices(m, NULL, TOKENS5, 5, 5, 8);
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_state_new(m, 8, &s, &err), 0);
    float last[16];
    ck_assert_int_eq(qllm_forward(s, NULL, TOKENS5, 5, 0, 4, last, &err), 0);
    float d = max_abs_diff(last, all + 4 * V, (size_t)V);
    ck_assert_msg(d <= 1e-5f, "logits of the last only: max diff %g", (double)d);
    /* rerunning position 0 over the cache restarts cleanly */
    ck_assert_int_eq(qllm_forward(s, NULL, TOKENS5, 1, 0, 0, last, &err), 0);
    d = max_abs_diff(last, all, (size_t)V);
    ck_assert_msg(d <= 1e-5f, "rerun pos 0: max diff %g", (double)d);
    qllm_state_free(s);
    free(all);
    qmodel_free(m);
}
END_TEST

START_TEST(logits_from_writes_rows_compactly)
{
    /* rows 2..4 of a 5-token call land at rows 0..2 of the buffer, and the
     * floats after them are not touched */
    struct qmodel *m = tiny_valid(&TINY, 8);
    int V = TINY.vocab;
    float *all = run_slices(m, NULL, TOKENS5, 5, 5, 8);
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_state_new(m, 8, &s, &err), 0);
    float part[4 * 16];
    for (int i = 0; i < 4 * V; i++)
        part[i] = -7.0f;
    ck_assert_int_eq(qllm_forward(s, NULL, TOKENS5, 5, 0, 2, part, &err), 0);
    float d = max_abs_diff(part, all + 2 * V, (size_t)3 * V);
    ck_assert_msg(d <= 1e-5f, "rows 2..4: max diff %g", (double)d);
    for (int i = 3 * V; i < 4 * V; i++)
        ck_assert_float_eq(part[i], -7.0f);
    /* the cache was filled for every position: the next call continues it */
    float next[16];
    const int32_t more[1] = {9};
    ck_assert_int_eq(qllm_forward(s, NULL, more, 1, 5, 0, next, &err), 0);
    int32_t six[6];
    memcpy(six, TOKENS5, sizeof TOKENS5);
    six[5] = 9;
    float *all6 = run_slices(m, NULL, six, 6, 6, 8);
    d = max_abs_diff(next, all6 + 5 * V, (size_t)V);
    ck_assert_msg(d <= 1e-5f, "continued after a partial call: max diff %g", (double)d);
    /* logits_from must name a token of the call */
    ck_assert_int_eq(qllm_forward(s, NULL, TOKENS5, 5, 0, 5, part, &err), -1);
    ck_assert_str_eq(err.msg, "tiny: logits from token 5 of 5: need 0 <= from < 5");
    ck_assert_int_eq(qllm_forward(s, NULL, TOKENS5, 5, 0, -1, part, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "logits from token -1 of 5"));
    qllm_state_free(s);
    free(all6);
    free(all);
    qmodel_free(m);
}
END_TEST

START_TEST(long_prompt_in_slices)
{
    /* 600 positions pass through the matrices in slices of at most 512 */
    struct tiny c = TINY;
    c.ctx = 700;
    struct qmodel *m = tiny_valid(&c, 5);
    int n = 600, V = c.vocab;
    int32_t *tok = malloc((size_t)n * sizeof *tok);
    for (int i = 0; i < n; i++)
        tok[i] = (i * 7 + 3) % V;
    float *all = run_slices(m, NULL, tok, n, n, 700);
    float *parts = run_slices(m, NULL, tok, n, 100, 700);
    float d = max_abs_diff(all, parts, (size_t)n * V);
    ck_assert_msg(d <= 1e-4f, "600 at once vs 6 x 100: max diff %g", (double)d);
    /* logits from a row of the first slice on, across the slice boundary */
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_state_new(m, 700, &s, &err), 0);
    float *tail = malloc((size_t)(n - 300) * V * sizeof *tail);
    ck_assert_int_eq(qllm_forward(s, NULL, tok, n, 0, 300, tail, &err), 0);
    d = max_abs_diff(tail, all + (size_t)300 * V, (size_t)(n - 300) * V);
    ck_assert_msg(d <= 1e-4f, "rows 300..599: max diff %g", (double)d);
    /* and from a row of the second slice only */
    ck_assert_int_eq(qllm_forward(s, NULL, tok, n, 0, 550, tail, &err), 0);
    d = max_abs_diff(tail, all + (size_t)550 * V, (size_t)(n - 550) * V);
    ck_assert_msg(d <= 1e-4f, "rows 550..599: max diff %g", (double)d);
    qllm_state_free(s);
    free(tail);
    free(all);
    free(parts);
    free(tok);
    qmodel_free(m);
}
END_TEST

START_TEST(weights_override)
{
    struct qmodel *m = tiny_valid(&TINY, 3);
    int V = TINY.vocab;
    float *base = run_slices(m, NULL, TOKENS5, 5, 5, 8);
    /* the model's own values as overrides change nothing */
    const float **w = calloc((size_t)m->n_tensors, sizeof *w);
    for (int i = 0; i < m->n_tensors; i++)
        w[i] = m->tensors[i]->f32;
    float *same = run_slices(m, w, TOKENS5, 5, 5, 8);
    ck_assert_mem_eq(base, same, (size_t)5 * V * sizeof(float));
    /* a changed output norm is used: doubling it doubles every logit */
    int on = m->llm->output_norm;
    float *twice = malloc((size_t)TINY.dim * sizeof(float));
    for (int j = 0; j < TINY.dim; j++)
        twice[j] = 2.0f * m->tensors[on]->f32[j];
    w[on] = twice;
    float *dbl = run_slices(m, w, TOKENS5, 5, 5, 8);
    for (int i = 0; i < 5 * V; i++)
        ck_assert_msg(fabsf(dbl[i] - 2.0f * base[i]) <= 1e-5f * fabsf(base[i]) + 1e-6f,
                      "logit %d: %g vs 2 x %g", i, (double)dbl[i], (double)base[i]);
    free(twice);
    free(dbl);
    free(same);
    free(base);
    free(w);
    qmodel_free(m);
}
END_TEST

struct thread_arg {
    const struct qmodel *m;
    float *logits;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    if (qllm_state_new(a->m, 16, &s, &err) == 0) {
        for (int rep = 0; rep < 20; rep++)
            if (qllm_forward(s, NULL, TOKENS5, 5, 0, 0, a->logits, &err) != 0)
                break;
    }
    qllm_state_free(s);
    return NULL;
}

START_TEST(two_states_two_threads)
{
    struct qmodel *m = tiny_valid(&TINY, 11);
    int V = TINY.vocab;
    float *ref = run_slices(m, NULL, TOKENS5, 5, 5, 16);
    struct thread_arg a[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (struct thread_arg){m, calloc((size_t)5 * V, sizeof(float))};
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        ck_assert_mem_eq(a[i].logits, ref, (size_t)5 * V * sizeof(float));
        free(a[i].logits);
    }
    free(ref);
    qmodel_free(m);
}
END_TEST

START_TEST(forward_errors)
{
    struct qmodel *m = tiny_valid(&TINY, 1);
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_state_new(m, 0, &s, &err), -1);
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(err.msg, "context of 0"));
    ck_assert_int_eq(qllm_state_new(m, 8, &s, &err), 0);
    float logits[8 * 16];
    const int32_t bad[3] = {1, 2, 16};
    ck_assert_int_eq(qllm_forward(s, NULL, bad, 3, 4, 0, logits, &err), -1);
    ck_assert_str_eq(err.msg, "tiny: the token at position 6 is id 16, outside the vocabulary "
                     "[0, 16)");
    const int32_t neg[1] = {-3};
    ck_assert_int_eq(qllm_forward(s, NULL, neg, 1, 0, 0, logits, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "position 0 is id -3"));
    ck_assert_int_eq(qllm_forward(s, NULL, TOKENS5, 5, 4, 0, logits, &err), -1);
    ck_assert_str_eq(err.msg, "tiny: positions 4..8 do not fit a context of 8");
    ck_assert_int_eq(qllm_forward(s, NULL, TOKENS5, 0, 0, 0, logits, &err), -1);
    ck_assert_int_eq(qllm_forward(s, NULL, TOKENS5, 1, -1, 0, logits, &err), -1);
    qllm_state_free(s);
    qllm_state_free(NULL);
    qmodel_free(m);
}
END_TEST

/* ---- Validate ---------------------------------------------------------------- */

START_TEST(validate_sets_roles)
{
    struct tiny c = TINY;
    c.arch = QLLM_QWEN2;
    c.untied = 1;
    struct qmodel *m = tiny_valid(&c, 2);
    ck_assert_int_eq(m->n_classes, c.vocab);
    const struct qllm *l = m->llm;
    ck_assert_int_eq(m->roles[l->token_embd], QROLE_WEIGHT);
    ck_assert_int_eq(m->roles[l->output], QROLE_WEIGHT);
    ck_assert_int_eq(m->roles[l->output_norm], QROLE_NORM);
    ck_assert_int_eq(m->roles[l->layers[1].attn_norm], QROLE_NORM);
    ck_assert_int_eq(m->roles[l->layers[1].ffn_norm], QROLE_NORM);
    ck_assert_int_eq(m->roles[l->layers[1].wq], QROLE_WEIGHT);
    ck_assert_int_eq(m->roles[l->layers[0].w_down], QROLE_WEIGHT);
    ck_assert_int_eq(m->roles[l->layers[0].bk], QROLE_BIAS);
    for (int i = 0; i < m->n_tensors; i++) {
        ck_assert_int_eq(m->tensor_node[i], 0);
        ck_assert_int_ne(m->roles[i], QROLE_OTHER);
    }
    qmodel_free(m);
}
END_TEST

static void assert_invalid(struct qmodel *m, const char *want)
{
    qerr err = {{0}};
    ck_assert_int_eq(qllm_validate(m, &err), -1);
    ck_assert_msg(strstr(err.msg, want) != NULL, "'%s' lacks '%s'", err.msg, want);
    qmodel_free(m);
}

START_TEST(validate_bad_shape)
{
    /* stories260K's sizes with blk.2.attn_k as wide as attn_q */
    struct tiny c = {64, 8, 3, 8, 4, 8, 16, 32, QLLM_LLAMA, QLLM_ROPE_INTERLEAVED, 0};
    struct tiny wide = c;
    wide.kv = 8;
    struct qmodel *m = tiny_new(&c, "stories260K.bin", 1);
    struct qmodel *w = tiny_new(&wide, "x", 1);
    /* swap in the [64, 64] k of the wider model */
    int k = m->llm->layers[2].wk, kw = w->llm->layers[2].wk;
    struct qtensor tmp = m->owned[k];
    m->owned[k] = w->owned[kw];
    w->owned[kw] = tmp;
    qmodel_free(w);
    qerr err = {{0}};
    ck_assert_int_eq(qllm_validate(m, &err), -1);
    ck_assert_str_eq(err.msg, "stories260K.bin: blk.2.attn_k.weight is [64, 64], expected "
                     "[32, 64] (n_kv_heads 4 x head_dim 8, dim 64)");
    qmodel_free(m);
}
END_TEST

START_TEST(validate_bad_config)
{
    struct qmodel *m = tiny_new(&TINY, "tiny", 1);
    m->llm->c.n_kv_heads = 3;
    assert_invalid(m, "tiny: n_heads 2 is not a multiple of n_kv_heads 3");

    struct tiny odd = {6, 12, 1, 2, 2, 3, 16, 8, QLLM_LLAMA, QLLM_ROPE_INTERLEAVED, 0};
    assert_invalid(tiny_new(&odd, "odd", 1), "odd: head_dim 3 is odd; RoPE rotates pairs");

    m = tiny_new(&TINY, "tiny", 1);
    m->llm->c.norm_eps = 0.0f;
    assert_invalid(m, "norm_eps 0 must be positive");
    m = tiny_new(&TINY, "tiny", 1);
    m->llm->c.norm_eps = NAN;
    assert_invalid(m, "norm_eps nan");
    m = tiny_new(&TINY, "tiny", 1);
    m->llm->c.rope_theta = -1.0f;
    assert_invalid(m, "rope_theta -1");
    m = tiny_new(&TINY, "tiny", 1);
    m->llm->c.vocab_size = 0;
    assert_invalid(m, "vocab_size is 0, must be positive");
    m = tiny_new(&TINY, "tiny", 1);
    m->llm->c.head_dim = 2; /* q is [8, 8], 2 heads x 2 = 4 */
    assert_invalid(m, "blk.0.attn_q.weight is [8, 8], expected [4, 8] (n_heads 2 x head_dim 2, "
                   "dim 8)");
    m = tiny_new(&TINY, "tiny", 1);
    m->llm->layers[1].w_up = -1;
    assert_invalid(m, "tiny: blk.1.ffn_up.weight is missing");
    m = tiny_new(&TINY, "tiny", 1);
    m->llm->layers[0].attn_norm = m->llm->layers[0].wq; /* a matrix where a norm goes */
    assert_invalid(m, "tiny: blk.0.attn_q.weight is [8, 8], expected [8] (dim 8)");
    m = tiny_new(&TINY, "tiny", 1);
    m->llm->layers[1].wv = 999;
    assert_invalid(m, "tiny: blk.1.attn_v.weight is missing");
    struct tiny q = TINY;
    q.arch = QLLM_QWEN2;
    m = tiny_new(&q, "qwen", 1);
    m->llm->layers[1].bv = -1;
    assert_invalid(m, "qwen: blk.1.attn_v.bias is missing");
    m = tiny_new(&q, "qwen", 1);
    m->llm->layers[0].bq = m->llm->layers[0].bk; /* [4] where [8] goes */
    assert_invalid(m, "qwen: blk.0.attn_k.bias is [4], expected [8] (n_heads 2 x head_dim 4)");
}
END_TEST

/* ---- llama2.c checkpoints: writers ------------------------------------------ */

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_i32(struct buf *b, int32_t v)
{
    put(b, &v, 4);
}

static const struct qtensor *tensor(const struct qmodel *m, const char *name)
{
    int i = qmodel_find_tensor(m, name);
    ck_assert_msg(i >= 0, "no tensor %s", name);
    return m->tensors[i];
}

/* fmt with %d: every layer's tensor in turn; else the one tensor */
static void put_f32(struct buf *b, const struct qmodel *m, const char *fmt)
{
    int layers = strstr(fmt, "%d") ? m->llm->c.n_layers : 1;
    for (int l = 0; l < layers; l++) {
        char name[64];
        snprintf(name, sizeof name, fmt, l);
        const struct qtensor *t = tensor(m, name);
        put(b, t->f32, (size_t)t->numel * sizeof(float));
    }
}

static void put_header7(struct buf *b, const struct qllm_config *c, int32_t vocab)
{
    const int32_t h[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, vocab,
                          c->max_ctx};
    put(b, h, sizeof h);
}

static void pad_to(struct buf *b, size_t n)
{
    while (b->n < n)
        put(b, "", 1);
}

/* The bytes export.py writes for m: legacy_export (v0) or version1_export. */
static struct buf l2c_bytes(const struct qmodel *m, int version)
{
    struct buf b = {0};
    const struct qllm_config *c = &m->llm->c;
    int shared = m->llm->output == m->llm->token_embd;
    if (version == 0) {
        put_header7(&b, c, shared ? c->vocab_size : -c->vocab_size);
        put_f32(&b, m, "token_embd.weight");
        put_f32(&b, m, "blk.%d.attn_norm.weight");
        put_f32(&b, m, "blk.%d.attn_q.weight");
        put_f32(&b, m, "blk.%d.attn_k.weight");
        put_f32(&b, m, "blk.%d.attn_v.weight");
        put_f32(&b, m, "blk.%d.attn_output.weight");
        put_f32(&b, m, "blk.%d.ffn_norm.weight");
        put_f32(&b, m, "blk.%d.ffn_gate.weight");  /* w1 */
        put_f32(&b, m, "blk.%d.ffn_down.weight");  /* w2 */
        put_f32(&b, m, "blk.%d.ffn_up.weight");    /* w3 */
        put_f32(&b, m, "output_norm.weight");
        /* freq_cis_real, freq_cis_imag: [seq_len, head_size / 2] each, unused */
        for (int i = 0; i < c->max_ctx * c->head_dim; i++) {
            float f = (float)i;
            put(&b, &f, 4);
        }
    } else {
        const uint32_t magic = 0x616b3432;
        put(&b, &magic, 4);
        put_i32(&b, 1);
        put_header7(&b, c, c->vocab_size);
        uint8_t flag = (uint8_t)shared;
        put(&b, &flag, 1);
        pad_to(&b, 256);
        put_f32(&b, m, "blk.%d.attn_norm.weight");
        put_f32(&b, m, "blk.%d.ffn_norm.weight");
        put_f32(&b, m, "output_norm.weight");
        put_f32(&b, m, "token_embd.weight");
        put_f32(&b, m, "blk.%d.attn_q.weight");
        put_f32(&b, m, "blk.%d.attn_k.weight");
        put_f32(&b, m, "blk.%d.attn_v.weight");
        put_f32(&b, m, "blk.%d.attn_output.weight");
        put_f32(&b, m, "blk.%d.ffn_gate.weight");
        put_f32(&b, m, "blk.%d.ffn_down.weight");
        put_f32(&b, m, "blk.%d.ffn_up.weight");
    }
    if (!shared)
        put_f32(&b, m, "output.weight");
    return b;
}

/* A fresh folder under the test's temp dir. */
static const char *subdir(const char *name)
{
    const char *d = tu_path(name);
    ck_assert_int_eq(mkdir(d, 0700), 0);
    return d;
}

static char *join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static struct qmodel *load_ok(const char *path, const char *tok)
{
    struct qmodel *m = NULL;
    qerr err = {{0}};
    ck_assert_msg(qllm_load_llama2c(path, tok, &m, &err) == 0, "load: %s", err.msg);
    ck_assert_ptr_nonnull(m);
    return m;
}

static void assert_same_tensors(const struct qmodel *want, const struct qmodel *got)
{
    ck_assert_int_eq(got->n_tensors, want->n_tensors);
    for (int i = 0; i < want->n_tensors; i++) {
        const struct qtensor *a = want->tensors[i], *b = tensor(got, a->name);
        ck_assert_int_eq(b->ndim, a->ndim);
        ck_assert_mem_eq(b->shape, a->shape, sizeof a->shape);
        ck_assert_mem_eq(b->f32, a->f32, (size_t)a->numel * sizeof(float));
    }
}

/* ---- llama2.c checkpoints: loading ----------------------------------------- */

static void roundtrip(int version, int untied, const char *dirname)
{
    struct tiny c = TINY;
    c.untied = untied;
    struct qmodel *m = tiny_valid(&c, 21);
    struct buf b = l2c_bytes(m, version);
    char *path = join(subdir(dirname), "model.v.bin");
    tu_write_file(path, b.p, b.n);
    free(b.p);
    struct qmodel *g = load_ok(path, NULL);
    ck_assert_int_eq(g->kind, QMODEL_LM);
    ck_assert_str_eq(g->format, "llama2c");
    ck_assert_str_eq(g->name, "model.v");
    ck_assert_str_eq(g->path, path);
    ck_assert_int_eq(g->n_extra_files, 1); /* no tokenizer beside */
    ck_assert_str_eq(g->extra_files[0], path);
    ck_assert_ptr_null(g->llm->tok);
    const struct qllm_config *gc = &g->llm->c;
    ck_assert_int_eq(gc->dim, 8);
    ck_assert_int_eq(gc->hidden_dim, 12);
    ck_assert_int_eq(gc->n_layers, 2);
    ck_assert_int_eq(gc->n_heads, 2);
    ck_assert_int_eq(gc->n_kv_heads, 1);
    ck_assert_int_eq(gc->head_dim, 4);
    ck_assert_int_eq(gc->vocab_size, 16);
    ck_assert_int_eq(gc->max_ctx, 64);
    ck_assert_int_eq(gc->rope, QLLM_ROPE_INTERLEAVED);
    ck_assert_float_eq(gc->norm_eps, 1e-5f);
    ck_assert_float_eq(gc->rope_theta, 10000.0f);
    ck_assert_int_eq(g->llm->output == g->llm->token_embd, !untied);
    ck_assert_int_eq(g->n_classes, 16);
    assert_same_tensors(m, g);
    /* views into the mapping, not copies */
    const struct qtensor *e = g->tensors[g->llm->token_embd];
    ck_assert_ptr_eq(e->f32, e->data);
    ck_assert((const char *)e->data >= (const char *)g->map &&
              (const char *)e->data < (const char *)g->map + g->map_size);
    ck_assert_str_eq(g->source_names[g->llm->layers[1].w_gate], "w1[1]");
    /* the same floats give the same logits, bit for bit */
    float *lm = run_slices(m, NULL, TOKENS5, 5, 5, 8), *lg = run_slices(g, NULL, TOKENS5, 5, 5, 8);
    ck_assert_mem_eq(lm, lg, (size_t)5 * 16 * sizeof(float));
    free(lm);
    free(lg);
    qmodel_free(g);
    qmodel_free(m);
    free(path);
}

START_TEST(llama2c_v0_tied)
{
    roundtrip(0, 0, "v0t");
}
END_TEST

START_TEST(llama2c_v0_untied)
{
    roundtrip(0, 1, "v0u");
}
END_TEST

START_TEST(llama2c_v1_tied)
{
    roundtrip(1, 0, "v1t");
}
END_TEST

START_TEST(llama2c_v1_untied)
{
    roundtrip(1, 1, "v1u");
}
END_TEST

/* v2 codes and scales that say which tensor (file index k) they are */
static int8_t v2_code(int k, int64_t i)
{
    return (int8_t)((i * 37 + k * 11) % 255 - 127);
}

static float v2_scale(int k, int64_t g)
{
    return (float)(k + 1) * 0.25f + (float)g * 0.0078125f;
}

START_TEST(llama2c_v2_groups)
{
    /* dim 6, hidden 5, group 2: w1 has 30 codes, so the scales after it
     * start at an odd offset */
    struct tiny c = {6, 5, 2, 1, 1, 6, 9, 16, QLLM_LLAMA, QLLM_ROPE_INTERLEAVED, 1};
    struct qmodel *m = tiny_new(&c, "ref", 4);
    struct buf b = {0};
    const uint32_t magic = 0x616b3432;
    put(&b, &magic, 4);
    put_i32(&b, 2);
    put_header7(&b, &m->llm->c, c.vocab);
    uint8_t shared = 0;
    put(&b, &shared, 1);
    put_i32(&b, 2); /* group_size, at byte 37 */
    pad_to(&b, 256);
    put_f32(&b, m, "blk.%d.attn_norm.weight");
    put_f32(&b, m, "blk.%d.ffn_norm.weight");
    put_f32(&b, m, "output_norm.weight");
    /* version2_export's list: embedding, wq.., wk.., wv.., wo.., w1.., w2..,
     * w3.., then the classifier */
    const char *order[] = {"token_embd.weight", "blk.0.attn_q.weight", "blk.1.attn_q.weight",
                           "blk.0.attn_k.weight", "blk.1.attn_k.weight", "blk.0.attn_v.weight",
                           "blk.1.attn_v.weight", "blk.0.attn_output.weight",
                           "blk.1.attn_output.weight", "blk.0.ffn_gate.weight",
                           "blk.1.ffn_gate.weight", "blk.0.ffn_down.weight",
                           "blk.1.ffn_down.weight", "blk.0.ffn_up.weight", "blk.1.ffn_up.weight",
                           "output.weight"};
    const int n_order = (int)(sizeof order / sizeof order[0]);
    for (int k = 0; k < n_order; k++) {
        int64_t numel = tensor(m, order[k])->numel;
        for (int64_t i = 0; i < numel; i++) {
            int8_t q = v2_code(k, i);
            put(&b, &q, 1);
        }
        for (int64_t g = 0; g < numel / 2; g++) {
            float s = v2_scale(k, g);
            put(&b, &s, 4);
        }
    }
    char *path = join(subdir("v2"), "q80.bin");
    tu_write_file(path, b.p, b.n);
    free(b.p);
    struct qmodel *g = load_ok(path, NULL);
    ck_assert_str_eq(g->description, "llama2.c checkpoint v2 (int8, groups of 2)");
    for (int k = 0; k < n_order; k++) {
        int ti = qmodel_find_tensor(g, order[k]);
        ck_assert_int_ge(ti, 0);
        const struct qtensor *t = g->tensors[ti];
        for (int64_t i = 0; i < t->numel; i++)
            ck_assert_msg(t->f32[i] == (float)v2_code(k, i) * v2_scale(k, i / 2),
                          "%s[%lld] = %g", order[k], (long long)i, (double)t->f32[i]);
        ck_assert_ptr_nonnull(g->stored_types[ti]);
        ck_assert_int_eq(g->stored_bytes[ti], t->numel + t->numel / 2 * 4);
    }
    /* the norms stay float32 views */
    const struct qtensor *on = g->tensors[g->llm->output_norm];
    ck_assert_mem_eq(on->f32, tensor(m, "output_norm.weight")->f32, 6 * sizeof(float));
    ck_assert_ptr_null(g->stored_types[g->llm->output_norm]);
    float *l = run_slices(g, NULL, TOKENS5, 3, 3, 4);
    for (int i = 0; i < 3 * 9; i++)
        ck_assert(isfinite(l[i]));
    free(l);
    qmodel_free(g);
    qmodel_free(m);
    free(path);
}
END_TEST

/* ---- llama2.c checkpoints: malformed ---------------------------------------- */

static void assert_refused(const char *path, const char *phrase)
{
    struct qmodel *m = (struct qmodel *)1;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_load_llama2c(path, NULL, &m, &err), -1);
    ck_assert_ptr_null(m);
    ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "'%s' does not name %s", err.msg,
                  path);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "'%s' lacks '%s'", err.msg, phrase);
}

static struct buf valid_v0(void)
{
    struct qmodel *m = tiny_valid(&TINY, 8);
    struct buf b = l2c_bytes(m, 0);
    qmodel_free(m);
    return b;
}

START_TEST(llama2c_truncated)
{
    struct buf b = valid_v0();
    const char *dir = subdir("trunc");
    const size_t cuts[] = {0, 3, 27, 28, 29, 100, 28 + 16 * 8 * 4, 2000, b.n - 4, b.n - 1};
    const char *why[] = {"empty file", "a llama2.c header needs 28", "a llama2.c header needs 28",
                         "implies", "implies", "implies", "implies", "implies", "implies",
                         "implies"};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "cut%zu.bin", cuts[i]);
        char *p = join(dir, name);
        tu_write_file(p, b.p, cuts[i]);
        assert_refused(p, why[i]);
        free(p);
    }
    /* one byte too many is refused too */
    put(&b, "", 1);
    char *p = join(dir, "long.bin");
    tu_write_file(p, b.p, b.n);
    char want[96];
    snprintf(want, sizeof want, "implies %zu bytes, the file has %zu", b.n - 1, b.n);
    assert_refused(p, want);
    free(p);
    free(b.p);
}
END_TEST

struct header_case {
    int field;      /* int32 index in the legacy header */
    int32_t value;
    const char *phrase;
};

static const struct header_case header_cases[] = {
    {2, -1, "header n_layers is -1, must be positive"},
    {2, 0, "header n_layers is 0, must be positive"},
    {0, 1 << 30, "header dim is 1073741824, more than qlab handles"},
    {1, INT32_MAX, "header hidden_dim is 2147483647, more than qlab handles"},
    {2, 1000, "implies"},                       /* more data than the file holds */
    {5, INT32_MIN, "header vocab_size is -2147483648"},
    {5, -16, "it fits a shared classifier"},   /* says untied, holds none */
    {6, INT32_MAX, "implies"},                  /* freq_cis of 2^31 positions */
    {3, 3, "header dim 8 is not a multiple of n_heads 3"},
    {4, 3, "header n_heads 2 is not a multiple of n_kv_heads 3"},
    {3, 8, "head size 1 (dim 8 / n_heads 8) is odd"},
    {4, 0, "header n_kv_heads is 0"},
};

START_TEST(llama2c_bad_header)
{
    const struct header_case *hc = &header_cases[_i];
    struct buf b = valid_v0();
    int32_t v = hc->value;
    if (hc->field == 3 && v == 8) {
        int32_t kv = 8; /* keep n_heads % n_kv_heads == 0 */
        memcpy(b.p + 16, &kv, 4);
    }
    memcpy(b.p + 4 * hc->field, &v, 4);
    char name[32];
    snprintf(name, sizeof name, "hdr%d.bin", _i);
    const char *p = tu_path(name);
    tu_write_file(p, b.p, b.n);
    assert_refused(p, hc->phrase);
    free(b.p);
}
END_TEST

START_TEST(llama2c_overflow)
{
    /* every size at the limit: w1 alone is 2^24 x 2^24 x 2^24 x 4 bytes */
    const int32_t h[7] = {1 << 24, 1 << 24, 1 << 24, 1, 1, 1 << 24, 1 << 24};
    tu_write_file(tu_path("overflow.bin"), h, sizeof h);
    assert_refused(tu_path("overflow.bin"), "overflow 64-bit byte counts");
}
END_TEST

START_TEST(llama2c_bad_versioned)
{
    uint8_t h[300] = {0};
    const uint32_t magic = 0x616b3432;
    const int32_t cfg[7] = {8, 12, 2, 2, 1, 16, 64};
    memcpy(h, &magic, 4);
    memcpy(h + 8, cfg, sizeof cfg);
    int32_t v = 3;
    memcpy(h + 4, &v, 4);
    tu_write_file(tu_path("v3.bin"), h, 300);
    assert_refused(tu_path("v3.bin"), "llama2.c checkpoint version 3");
    v = 1;
    memcpy(h + 4, &v, 4);
    tu_write_file(tu_path("v1short.bin"), h, 100);
    assert_refused(tu_path("v1short.bin"), "an ak42 header needs 256");
    h[36] = 2;
    tu_write_file(tu_path("v1flag.bin"), h, 300);
    assert_refused(tu_path("v1flag.bin"), "shared_classifier flag is 2");
    h[36] = 1;
    tu_write_file(tu_path("v1size.bin"), h, 300);
    assert_refused(tu_path("v1size.bin"), "implies");
    v = 2;
    memcpy(h + 4, &v, 4);
    int32_t group = 0;
    memcpy(h + 37, &group, 4);
    tu_write_file(tu_path("v2g0.bin"), h, 300);
    assert_refused(tu_path("v2g0.bin"), "group_size is 0");
    group = 5;
    memcpy(h + 37, &group, 4);
    tu_write_file(tu_path("v2g5.bin"), h, 300);
    assert_refused(tu_path("v2g5.bin"), "does not split into groups of 5");
    assert_refused(tu_path("absent.bin"), "No such file");
}
END_TEST

START_TEST(llama2c_header_mutations_never_crash)
{
    /* every header byte set to a few values: refused cleanly or loaded and runnable */
    struct buf b = valid_v0();
    const uint8_t vals[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
    uint8_t *copy = malloc(b.n);
    for (int pos = 0; pos < 28; pos++)
        for (size_t k = 0; k < sizeof vals; k++) {
            memcpy(copy, b.p, b.n);
            copy[pos] = vals[k];
            const char *p = tu_path("mut.bin");
            tu_write_file(p, copy, b.n);
            struct qmodel *m = NULL;
            qerr err = {{0}};
            if (qllm_load_llama2c(p, NULL, &m, &err) != 0) {
                ck_assert_ptr_null(m);
                ck_assert_msg(strncmp(err.msg, p, strlen(p)) == 0, "%s", err.msg);
                continue;
            }
            float *l = run_slices(m, NULL, TOKENS5, 2, 2, 2);
            free(l);
            qmodel_free(m);
        }
    free(copy);
    free(b.p);
}
END_TEST

/* ---- llama2.c checkpoints: tokenizer beside -------------------------------- */

static void write_copy(const char *from, const char *to)
{
    size_t n;
    char *d = tu_read_file(from, &n);
    ck_assert_ptr_nonnull(d);
    tu_write_file(to, d, n);
    free(d);
}

START_TEST(llama2c_finds_tokenizer)
{
    const char *tok = tu_shared("stories260k/tok512.bin");
    struct tiny c = TINY;
    c.vocab = 512;
    struct qmodel *m = tiny_valid(&c, 6);
    struct buf b = l2c_bytes(m, 0);
    qmodel_free(m);

    /* tokenizer.bin wins over tok*.bin */
    const char *d1 = subdir("tok1");
    char *p1 = join(d1, "m.bin"), *t1 = join(d1, "tokenizer.bin"), *o1 = join(d1, "tok512.bin");
    tu_write_file(p1, b.p, b.n);
    write_copy(tok, t1);
    write_copy(tok, o1);
    struct qmodel *g = load_ok(p1, NULL);
    ck_assert_ptr_nonnull(g->llm->tok);
    ck_assert_int_eq(qtok_vocab_size(g->llm->tok), 512);
    ck_assert_int_eq(g->n_extra_files, 2);
    ck_assert_str_eq(g->extra_files[1], t1);
    qmodel_free(g);

    /* else the only tok*.bin */
    const char *d2 = subdir("tok2");
    char *p2 = join(d2, "m.bin"), *t2 = join(d2, "tok512.bin");
    tu_write_file(p2, b.p, b.n);
    write_copy(tok, t2);
    g = load_ok(p2, NULL);
    ck_assert_ptr_nonnull(g->llm->tok);
    ck_assert_str_eq(g->extra_files[1], t2);
    qmodel_free(g);

    /* two candidates: none is guessed */
    char *t3 = join(d2, "tok_other.bin");
    write_copy(tok, t3);
    g = load_ok(p2, NULL);
    ck_assert_ptr_null(g->llm->tok);
    ck_assert_int_eq(g->n_extra_files, 1);
    qmodel_free(g);

    /* a named tokenizer is used as given */
    g = load_ok(p2, t3);
    ck_assert_ptr_nonnull(g->llm->tok);
    ck_assert_str_eq(g->extra_files[1], t3);
    qmodel_free(g);

    /* a named tokenizer that is not there is an error naming it */
    struct qmodel *bad = NULL;
    qerr err = {{0}};
    char *t4 = join(d2, "missing.bin");
    ck_assert_int_eq(qllm_load_llama2c(p2, t4, &bad, &err), -1);
    ck_assert_ptr_null(bad);
    ck_assert_msg(strstr(err.msg, t4) != NULL, "'%s' does not name %s", err.msg, t4);

    free(t4);
    free(t3);
    free(p1);
    free(t1);
    free(o1);
    free(p2);
    free(t2);
    free(b.p);
}
END_TEST

/* ---- Real: stories260K -------------------------------------------------------- */

/* The story between the fences after "-t 0.0" in stories260K.md. */
static char *expected_story(void)
{
    size_t n;
    char *md = tu_read_file(tu_shared("stories260k/stories260K.md"), &n);
    ck_assert_ptr_nonnull(md);
    const char *cmd = strstr(md, "-t 0.0\n");
    ck_assert_ptr_nonnull(cmd);
    const char *start = cmd + strlen("-t 0.0\n");
    const char *end = strstr(start, "\n```");
    ck_assert_ptr_nonnull(end);
    char *story = strndup(start, (size_t)(end - start));
    free(md);
    return story;
}

START_TEST(stories260k_greedy_story)
{
    struct qmodel *m = load_ok(tu_shared("stories260k/stories260K.bin"), NULL);
    const struct qllm_config *c = &m->llm->c;
    ck_assert_int_eq(c->dim, 64);
    ck_assert_int_eq(c->hidden_dim, 172);
    ck_assert_int_eq(c->n_layers, 5);
    ck_assert_int_eq(c->n_heads, 8);
    ck_assert_int_eq(c->n_kv_heads, 4);
    ck_assert_int_eq(c->vocab_size, 512);
    ck_assert_int_eq(c->max_ctx, 512);
    ck_assert_ptr_nonnull(m->llm->tok); /* tok512.bin beside it */
    const struct qtokenizer *t = m->llm->tok;
    ck_assert_int_eq(qtok_bos(t), 1);

    /* run.c -t 0.0 -n 256: BOS, then argmax each step; stop at BOS */
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_state_new(m, 256, &s, &err), 0);
    float logits[512];
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    int32_t token = 1;
    for (int pos = 0; pos < 256; pos++) {
        ck_assert_msg(qllm_forward(s, NULL, &token, 1, pos, 0, logits, &err) == 0, "%s",
                      err.msg);
        int32_t next = 0;
        for (int i = 1; i < 512; i++)
            if (logits[i] > logits[next])
                next = i;
        if (next == 1)
            break;
        char piece[64];
        size_t k = qtok_decode(t, token, next, piece, sizeof piece);
        ck_assert_uint_lt(len + k, cap);
        memcpy(text + len, piece, k);
        len += k;
        token = next;
    }
    text[len] = 0;
    char *want = expected_story();
    ck_assert_str_eq(text, want);
    free(want);
    free(text);
    qllm_state_free(s);
    qmodel_free(m);
}
END_TEST

START_TEST(stories260k_bin_equals_gguf)
{
    struct qmodel *b = load_ok(tu_shared("stories260k/stories260K.bin"), NULL);
    struct qmodel *g = NULL;
    qerr err = {{0}};
    /* all F32: no plugin needed to decode */
    ck_assert_msg(qllm_load_gguf(tu_shared("gguf/stories260K-f32.gguf"), NULL, &g, &err) == 0,
                  "gguf: %s", err.msg);
    ck_assert_int_eq(g->llm->c.rope, QLLM_ROPE_INTERLEAVED);
    ck_assert_int_eq(g->llm->c.vocab_size, 512);
    int32_t tok[64];
    tok[0] = 1;
    for (int i = 1; i < 64; i++)
        tok[i] = (int32_t)((i * 131 + 7) % 509 + 3);
    float *lb = run_slices(b, NULL, tok, 64, 64, 64), *lg = run_slices(g, NULL, tok, 64, 64, 64);
    /* the same floats in the same order through the same code: bit for bit */
    float d = max_abs_diff(lb, lg, (size_t)64 * 512);
    ck_assert_msg(memcmp(lb, lg, (size_t)64 * 512 * sizeof(float)) == 0,
                  "logits differ: max %g", (double)d);
    free(lb);
    free(lg);
    qmodel_free(g);
    qmodel_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("llm");
    TCase *tc = tcase_create("Kernels");
    tcase_add_test(tc, rmsnorm_hand);
    tcase_add_test(tc, rope_table_hand);
    tcase_add_test(tc, rope_interleaved_hand);
    tcase_add_test(tc, rope_half_hand);
    tcase_add_test(tc, attention_causal_hand);
    tcase_add_test(tc, gqa_mapping);
    tcase_add_test(tc, swiglu_hand);
    tcase_add_test(tc, exp_within_two_ulp);
    tcase_add_test(tc, swiglu_vector_and_tail);
    suite_add_tcase(s, tc);

    tc = tcase_create("Forward");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, batched_equals_sequential_llama);
    tcase_add_test(tc, batched_equals_sequential_qwen2);
    tcase_add_test(tc, split_between_threads);
    tcase_add_test(tc, causal_prefix_unchanged);
    tcase_add_test(tc, last_only_is_last_row);
    tcase_add_test(tc, logits_from_writes_rows_compactly);
    tcase_add_test(tc, scored_half_same_to_the_bit);
    tcase_add_test(tc, threads_same_to_the_bit);
    tcase_add_test(tc, cuts_resume_to_the_bit);
    tcase_add_test(tc, first_use_of_tensors);
    tcase_add_test(tc, attention_row_blocks);
    tcase_add_test(tc, long_prompt_in_slices);
    tcase_add_test(tc, weights_override);
    tcase_add_test(tc, two_states_two_threads);
    tcase_add_test(tc, forward_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("Validate");
    tcase_add_test(tc, validate_sets_roles);
    tcase_add_test(tc, validate_bad_shape);
    tcase_add_test(tc, validate_bad_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("Llama2c");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, llama2c_v0_tied);
    tcase_add_test(tc, llama2c_v0_untied);
    tcase_add_test(tc, llama2c_v1_tied);
    tcase_add_test(tc, llama2c_v1_untied);
    tcase_add_test(tc, llama2c_v2_groups);
    suite_add_tcase(s, tc);

    tc = tcase_create("Limits");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, llama2c_truncated);
    tcase_add_loop_test(tc, llama2c_bad_header, 0,
                        (int)(sizeof header_cases / sizeof header_cases[0]));
    tcase_add_test(tc, llama2c_overflow);
    tcase_add_test(tc, llama2c_bad_versioned);
    tcase_add_test(tc, llama2c_header_mutations_never_crash);
    suite_add_tcase(s, tc);

    const char *tok[] = {"stories260k/tok512.bin"};
    tc = tcase_create("TokenizerBeside");
    tcase_add_test(tc, llama2c_finds_tokenizer);
    tu_add_if_shared(s, tc, tok, 1);

    const char *story[] = {"stories260k/stories260K.bin", "stories260k/tok512.bin",
                           "stories260k/stories260K.md"};
    tc = tcase_create("RealStories260K");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stories260k_greedy_story);
    tu_add_if_shared(s, tc, story, 3);

    const char *gguf[] = {"stories260k/stories260K.bin", "gguf/stories260K-f32.gguf"};
    tc = tcase_create("RealGguf");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, stories260k_bin_equals_gguf);
    tu_add_if_shared(s, tc, gguf, 2);
    return tu_run(s);
}
