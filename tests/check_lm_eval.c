/* check_lm_eval.c — perplexity, reference files and KL divergence as llama-perplexity computes them, by hand and against a naive double-precision version. */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quant/llm.h"
#include "quant/llm_load.h"
#include "quant/lm_eval.h"
#include "quant/tokenizer.h"
#include "test_util.h"

#define DIM 8
#define HIDDEN 16
#define HEADS 2
#define KV_HEADS 1
#define HD 4

/* ---- tiny models ------------------------------------------------------------
 * A 2-layer llama of width 8 built in memory: every tensor owned by the
 * model, zero-filled, norms 1; tests fill in what they need. */

static int add_tensor(struct qmodel *m, const char *name, int64_t rows, int64_t cols)
{
    int i = m->n_owned++;
    struct qtensor *t = &m->owned[i];
    t->name = strdup(name);
    t->dtype = QDT_F32;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->numel = rows * (cols ? cols : 1);
    t->nbytes = (size_t)t->numel * sizeof(float);
    t->f32_owned = calloc((size_t)t->numel, sizeof(float));
    t->data = t->f32 = t->f32_owned;
    if (!cols)
        for (int64_t k = 0; k < rows; k++)
            t->f32_owned[k] = 1.0f;
    m->tensors[i] = t;
    m->n_tensors = m->n_owned;
    return i;
}

static struct qmodel *tiny_model(int vocab, int tied)
{
    struct qmodel *m = calloc(1, sizeof *m);
    m->kind = QMODEL_LM;
    m->name = strdup("tiny");
    m->format = strdup("test");
    int cap = 3 + 2 * 9;
    m->owned = calloc((size_t)cap, sizeof *m->owned);
    m->tensors = calloc((size_t)cap, sizeof *m->tensors);
    m->roles = calloc((size_t)cap, sizeof *m->roles);
    struct qllm *l = m->llm = qllm_new(2);
    l->c = (struct qllm_config){.arch = QLLM_LLAMA, .dim = DIM, .hidden_dim = HIDDEN,
                                .n_layers = 2, .n_heads = HEADS, .n_kv_heads = KV_HEADS,
                                .head_dim = HD, .vocab_size = vocab, .max_ctx = 64,
                                .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                                .rope = QLLM_ROPE_INTERLEAVED};
    l->token_embd = add_tensor(m, "token_embd.weight", vocab, DIM);
    l->output_norm = add_tensor(m, "output_norm.weight", DIM, 0);
    l->output = tied ? l->token_embd : add_tensor(m, "output.weight", vocab, DIM);
    char name[64];
    for (int b = 0; b < 2; b++) {
        struct qllm_layer *y = &l->layers[b];
#define T(field, suffix, r, c) \
    (snprintf(name, sizeof name, "blk.%d." suffix, b), y->field = add_tensor(m, name, r, c))
        T(attn_norm, "attn_norm.weight", DIM, 0);
        T(wq, "attn_q.weight", HEADS * HD, DIM);
        T(wk, "attn_k.weight", KV_HEADS * HD, DIM);
        T(wv, "attn_v.weight", KV_HEADS * HD, DIM);
        T(wo, "attn_output.weight", DIM, HEADS * HD);
        T(ffn_norm, "ffn_norm.weight", DIM, 0);
        T(w_gate, "ffn_gate.weight", HIDDEN, DIM);
        T(w_up, "ffn_up.weight", HIDDEN, DIM);
        T(w_down, "ffn_down.weight", DIM, HIDDEN);
#undef T
    }
    qerr err;
    ck_assert_msg(qllm_validate(m, &err) == 0, "%s", err.msg);
    return m;
}

static float *tw(struct qmodel *m, int i)
{
    return m->owned[i].f32_owned;
}

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static float rng_uniform(uint32_t *s)
{
    return (float)(rng_next(s) >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* Every matrix uniform in [-scale, scale) from seed; norms stay 1. */
static struct qmodel *random_model(int vocab, int tied, uint32_t seed, float scale)
{
    struct qmodel *m = tiny_model(vocab, tied);
    for (int i = 0; i < m->n_owned; i++)
        if (m->owned[i].ndim == 2)
            for (int64_t k = 0; k < m->owned[i].numel; k++)
                tw(m, i)[k] = scale * rng_uniform(&seed);
    return m;
}

/* A copy of tensor i plus noise of amplitude amp: the "quantized" weights. */
static float **perturbed(const struct qmodel *m, int i, float amp, uint32_t seed)
{
    float **w = calloc((size_t)m->n_tensors, sizeof *w);
    w[i] = malloc((size_t)m->owned[i].numel * sizeof(float));
    for (int64_t k = 0; k < m->owned[i].numel; k++)
        w[i][k] = m->owned[i].f32[k] + amp * rng_uniform(&seed);
    return w;
}

static void weights_free(const struct qmodel *m, float **w)
{
    for (int i = 0; w && i < m->n_tensors; i++)
        free(w[i]);
    free(w);
}

static int32_t *random_tokens(int64_t n, int vocab, uint32_t seed)
{
    int32_t *t = malloc((size_t)n * sizeof *t);
    for (int64_t i = 0; i < n; i++)
        t[i] = (int32_t)(rng_next(&seed) % (uint32_t)vocab);
    return t;
}

/* ---- the hand-worked model -----------------------------------------------------
 * Attention and feed-forward weights are zero, so the residual stream at a
 * position is its token's embedding, 1024 * (row t of the 8x8 Hadamard
 * matrix): its RMS is exactly 1024 (the 1e-5 epsilon vanishes in float
 * beside 2^20), so the final norm gives the +-1 row exactly, and an untied
 * output W[v] = sum_t L[t][v] H[t] / 8 gives logits L[t] exactly (all
 * values are multiples of 1/32). The logits at a position depend only on
 * its token, and are: */
static const float HAND_BASE[4][4] = {
    {0, 4, -20, 1},         /* range clamped to 16 nats: min_logit = 4 - 16 = -12 */
    {1, 1, 1, 1},           /* flat: scale 0, every code 0 */
    {2, 0, -1, 3},
    {-2, 3, 0.25f, 0},
};
static const float HAND_QUANT[4][4] = {
    {0, 3, -20, 1.5f},
    {1.5f, 1, 1, 0.5f},     /* argmax 0: the flat reference's first maximum */
    {2, 0.5f, -1, 1.5f},    /* argmax 0, the reference's is 3 */
    {-2, 3, 0.25f, 0.5f},
};
/* n_ctx 10: positions 5..8 are scored, with tokens 0, 1, 2, 3 predicting 1, 2, 3, 0. */
static const int32_t HAND_TOKENS[10] = {0, 0, 0, 0, 0, 0, 1, 2, 3, 0};

static int hadamard(int i, int k)
{
    return __builtin_popcount((unsigned)(i & k)) % 2 ? -1 : 1;
}

static void hand_output(const float L[4][4], float *w)
{
    for (int v = 0; v < 4; v++)
        for (int k = 0; k < DIM; k++) {
            float s = 0;
            for (int t = 0; t < 4; t++)
                s += L[t][v] * (float)hadamard(t, k);
            w[v * DIM + k] = s / 8;
        }
}

static struct qmodel *hand_model(void)
{
    struct qmodel *m = tiny_model(4, 0);
    float *e = tw(m, m->llm->token_embd);
    for (int t = 0; t < 4; t++)
        for (int k = 0; k < DIM; k++)
            e[t * DIM + k] = 1024.0f * (float)hadamard(t, k);
    hand_output(HAND_BASE, tw(m, m->llm->output));
    return m;
}

static float **hand_quant_weights(const struct qmodel *m)
{
    float **w = calloc((size_t)m->n_tensors, sizeof *w);
    w[m->llm->output] = malloc(4 * DIM * sizeof(float));
    hand_output(HAND_QUANT, w[m->llm->output]);
    return w;
}

static float rec_float(const uint8_t *rec, int k)
{
    float f;
    memcpy(&f, rec + 4 * k, sizeof f);
    return f;
}

static uint16_t rec_code(const uint8_t *rec, int i)
{
    uint16_t c;
    memcpy(&c, rec + 8 + 2 * i, sizeof c);
    return c;
}

/* ---- a naive double-precision llama-perplexity ------------------------------- */

static const struct qlm_opts *opts(int n_ctx, int n_chunks, int threads)
{
    static struct qlm_opts o;
    o = (struct qlm_opts){.n_ctx = n_ctx, .n_chunks = n_chunks, .threads = threads};
    return &o;
}

/* Logits of one chunk (first token set to bos, or left when bos < 0). */
static float *chunk_logits(const struct qmodel *m, const float *const *w, const int32_t *tokens,
                           int n_ctx, int bos)
{
    int V = m->llm->c.vocab_size;
    int32_t *c = malloc((size_t)n_ctx * sizeof *c);
    memcpy(c, tokens, (size_t)n_ctx * sizeof *c);
    if (bos >= 0)
        c[0] = bos;
    float *logits = malloc((size_t)n_ctx * V * sizeof *logits);
    struct qllm_state *s;
    qerr err;
    ck_assert_msg(qllm_state_new(m, n_ctx, &s, &err) == 0, "%s", err.msg);
    ck_assert_msg(qllm_forward(s, w, c, n_ctx, 0, 0, logits, &err) == 0, "%s", err.msg);
    qllm_state_free(s);
    free(c);
    return logits;
}

static double log_softmax_d(const float *l, int V, int i)
{
    double mx = l[0], s = 0;
    for (int k = 1; k < V; k++)
        mx = l[k] > mx ? l[k] : mx;
    for (int k = 0; k < V; k++)
        s += exp((double)l[k] - mx);
    return (double)l[i] - mx - log(s);
}

struct naive {
    int64_t count;
    double ppl, nll_base_mean, kld_mean, same_top_pct, dp_mean, dp_rms;
    double kld_median, kld_p99, kld_max;
};

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Perplexity, and with ref (a reference file) KL divergence against its records. */
static struct naive naive_run(const struct qmodel *m, const float *const *w,
                              const int32_t *tokens, int64_t n_tokens, int n_ctx, int bos,
                              const char *ref)
{
    int V = m->llm->c.vocab_size, first = n_ctx / 2, per = n_ctx - 1 - first;
    int64_t n_chunks = n_tokens / n_ctx;
    struct naive r = {.count = n_chunks * per};
    double *kld = malloc((size_t)r.count * sizeof *kld);
    FILE *f = ref ? fopen(ref, "rb") : NULL;
    uint8_t *rec = malloc((size_t)(8 + 2 * V));
    if (ref) {
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fseek(f, 64, SEEK_SET), 0);
    }
    double nll = 0, nll_base = 0, sum_kld = 0, dp = 0, dp2 = 0;
    int64_t same = 0, k = 0;
    for (int64_t c = 0; c < n_chunks; c++) {
        float *l = chunk_logits(m, w, tokens + c * n_ctx, n_ctx, bos);
        for (int j = first; j < n_ctx - 1; j++, k++) {
            const float *row = l + (size_t)j * V;
            int tok = tokens[c * n_ctx + j + 1];
            double lq = log_softmax_d(row, V, tok);
            nll -= lq;
            if (!ref)
                continue;
            ck_assert_uint_eq(fread(rec, 1, (size_t)(8 + 2 * V), f), (size_t)(8 + 2 * V));
            double scale = rec_float(rec, 0), mlp = rec_float(rec, 1), kl = 0, best = 0;
            int top_q = 0, top_b = 0;
            for (int i = 0; i < V; i++) {
                double lb = scale * rec_code(rec, i) + mlp;
                if (i == 0 || lb > best) {
                    best = lb;
                    top_b = i;
                }
                if (row[i] > row[top_q])
                    top_q = i;
                if (lb > -16)
                    kl += exp(lb) * (lb - log_softmax_d(row, V, i));
            }
            double lb_tok = scale * rec_code(rec, tok) + mlp;
            nll_base -= lb_tok;
            kld[k] = kl;
            sum_kld += kl;
            same += top_q == top_b;
            double d = exp(lq) - exp(lb_tok);
            dp += d;
            dp2 += d * d;
        }
        free(l);
    }
    double n = (double)r.count;
    r.ppl = exp(nll / n);
    if (ref) {
        r.nll_base_mean = nll_base / n;
        r.kld_mean = sum_kld / n;
        r.same_top_pct = 100.0 * (double)same / n;
        r.dp_mean = 100.0 * dp / n;
        r.dp_rms = 100.0 * sqrt(dp2 / n);
        qsort(kld, (size_t)r.count, sizeof *kld, cmp_d);
        size_t c = (size_t)r.count;
        r.kld_median = c % 2 ? kld[c / 2] : 0.5 * (kld[c / 2] + kld[c / 2 - 1]);
        double p = 0.99 * (double)(c - 1);
        size_t ip = (size_t)p;
        p -= (double)ip;
        r.kld_p99 = (1 - p) * kld[ip] + p * kld[ip + 1 < c ? ip + 1 : c - 1];
        r.kld_max = kld[c - 1];
        fclose(f);
    }
    free(rec);
    free(kld);
    return r;
}

static void assert_rel(double got, double want, double rel, const char *what)
{
    ck_assert_msg(fabs(got - want) <= rel * fabs(want), "%s: %.10g, want %.10g (rel %g)", what,
                  got, want, rel);
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

/* ---- Core: llama-perplexity's arithmetic on the hand-worked model ---------------- */

/* Without a reference: NLL = ln(sum e^l) - l[next], exactly
 *   t0: ln(1 + e^-4 + e^-3 + e^-24)           = 0.0658839038
 *   t1: ln 4                                    = 1.3862943611
 *   t2: ln(1 + e^-1 + e^-3 + e^-4)            = 0.3618490391
 *   t3: 5 + ln(1 + e^-5 + e^-2.75 + e^-3)     = 5.1137329577
 * mean 1.7319400654, PPL = e^mean = 5.65160777. */
START_TEST(test_hand_ppl)
{
    struct qmodel *m = hand_model();
    struct qlm_metrics r;
    qerr err;
    ck_assert_msg(qlm_perplexity(m, NULL, HAND_TOKENS, 10, opts(10, 0, 1), NULL, NULL, NULL, &r,
                                 &err) == 0, "%s", err.msg);
    ck_assert_int_eq(r.n_chunks, 1);
    ck_assert_int_eq(r.n_tokens_scored, 4);
    ck_assert_int_eq(r.has_ref, 0);
    ck_assert_double_eq_tol(r.nll_mean, 1.7319400654, 1e-7);
    ck_assert_double_eq_tol(r.ppl, 5.65160777, 1e-6);
    /* standard error: sqrt((mean(nll^2) - mean^2) / 3) * PPL */
    double s2 = (0.0658839038 * 0.0658839038 + 1.3862943611 * 1.3862943611 +
                 0.3618490391 * 0.3618490391 + 5.1137329577 * 5.1137329577) / 4 -
                1.7319400654 * 1.7319400654;
    ck_assert_double_eq_tol(r.ppl_err, sqrt(s2 / 3) * 5.65160777, 1e-6);
    qmodel_free(m);
}
END_TEST

/* The reference records. t0: max 4, min -20 clamped to -12, scale =
 * 16/65535, 1/scale = 4095.9375: codes 12 * 4095.9375 = 49151.25 -> 49151,
 * 16 -> 65535, -20 (not above min_logit) -> 0, 13 -> 53247.19 -> 53247;
 * min log-prob = -12 - 4 - ln(1 + e^-4 + e^-3 + e^-24) = -16.0658839.
 * t1: flat, scale 0, codes 0, min log-prob -ln 4. t2: range 4, 1/scale =
 * 16383.75: 49151.25 -> 49151, 16383.75 -> 16384, 0, 65535. t3: range 5,
 * 1/scale = 13107: 0, 65535, 2.25 * 13107 = 29490.75 -> 29491, 26214. */
START_TEST(test_hand_reference_codes)
{
    struct qmodel *m = hand_model();
    const char *path = tu_path("hand.ref");
    struct qlm_metrics r;
    qerr err;
    ck_assert_msg(qlm_perplexity(m, NULL, HAND_TOKENS, 10, opts(10, 0, 1), NULL, NULL, path, &r,
                                 &err) == 0, "%s", err.msg);
    size_t n;
    uint8_t *f = (uint8_t *)tu_read_file(path, &n);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(n, 64 + 4 * (4 + 4) * 2);
    ck_assert_int_eq(memcmp(f, "QLABREF1", 8), 0);
    static const uint16_t codes[4][4] = {
        {49151, 65535, 0, 53247}, {0, 0, 0, 0}, {49151, 16384, 0, 65535}, {0, 65535, 29491, 26214},
    };
    const float scales[4] = {16.f / 65535.f, 0.f, 4.f / 65535.f, 5.f / 65535.f};
    const double mlp[4] = {-16.0658839038, -1.3862943611, -4.3618490391, -5.1137329577};
    for (int t = 0; t < 4; t++) {
        const uint8_t *rec = f + 64 + t * 16;
        ck_assert_float_eq(rec_float(rec, 0), scales[t]);
        ck_assert_double_eq_tol(rec_float(rec, 1), mlp[t], 1e-6);
        for (int i = 0; i < 4; i++)
            ck_assert_uint_eq(rec_code(rec, i), codes[t][i]);
    }
    free(f);

    struct qlm_ref_info info;
    ck_assert_msg(qlm_ref_info(path, &info, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(info.n_vocab, 4);
    ck_assert_int_eq(info.n_ctx, 10);
    ck_assert_int_eq(info.n_chunks, 1);
    ck_assert_int_eq(info.n_tokens_scored, 4);
    ck_assert_double_eq_tol(info.nll_sum, 4 * 1.7319400654, 4e-6);  /* NLLs in float here */
    ck_assert_double_eq(info.ppl, r.ppl);
    ck_assert_double_eq(info.ppl, exp(info.nll_sum / 4));
    ck_assert_double_eq_tol(r.ppl, 5.65160777, 2e-6);
    ck_assert(!exists(tu_path("hand.ref.tmp")));
    qmodel_free(m);
}
END_TEST

/* The quantized logits against the records above, per token (KLD = sum over
 * the decoded reference log-probs above -16 of p_base * (log p_base - log q)):
 *   t0: KLD 0.0883614, NLL 0.2413113 vs 0.0658836, p diff -0.1506428, same top
 *   t1: KLD 0.0618596, NLL 1.4481540 vs ln 4,     p diff -0.0149963, same top
 *       (all four codes tie: the reference's argmax is the first, 0)
 *   t2: KLD 0.2963738, NLL 1.1309781 vs 0.3618488, p diff -0.3736702, top 0 vs 3
 *   t3: KLD 0.0062020, NLL 5.1421509 vs 5.1137328, p diff -0.0001685, same top
 * (the reference's own t0 entry -20 decodes to -16.066 <= -16, so it is left
 * out). Means: KLD 0.1131992, ln ratio 0.2587087, Δp -13.48694 %, RMS Δp
 * sqrt(mean p diff^2) = 20.15859 %, PPL(Q) e^(mean NLL) = 7.3202799; median
 * (0.0618596 + 0.0883614) / 2 = 0.0751105; 99th percentile at 0.99 * 3 =
 * 2.97: 0.03 * 0.0883614 + 0.97 * 0.2963738 = 0.2901335. */
START_TEST(test_hand_kl_divergence)
{
    struct qmodel *m = hand_model();
    const char *path = tu_path("hand-kl.ref");
    struct qlm_metrics base, r;
    qerr err;
    ck_assert_int_eq(qlm_perplexity(m, NULL, HAND_TOKENS, 10, opts(10, 0, 1), NULL, NULL, path,
                                    &base, &err), 0);
    float **w = hand_quant_weights(m);
    ck_assert_msg(qlm_perplexity(m, (const float *const *)w, HAND_TOKENS, 10, opts(10, 0, 1),
                                 NULL, path, NULL, &r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(r.has_ref, 1);
    ck_assert_int_eq(r.n_tokens_scored, 4);
    ck_assert_double_eq(r.ppl_ref, base.ppl);
    assert_rel(r.ppl, 7.32027992, 1e-7, "PPL(Q)");
    assert_rel(r.ln_ppl_ratio, 0.258708656, 1e-6, "ln ratio");
    assert_rel(r.kld_mean, 0.113199233, 1e-6, "mean KLD");
    assert_rel(r.kld_median, 0.0751105249, 1e-6, "median KLD");
    assert_rel(r.kld_p99, 0.290133476, 1e-6, "p99 KLD");
    assert_rel(r.kld_max, 0.296373844, 1e-6, "max KLD");
    ck_assert_double_eq(r.same_top_pct, 75.0);
    assert_rel(r.dp_mean, -13.4869431, 1e-6, "mean dp");
    assert_rel(r.dp_rms, 20.158594, 1e-6, "RMS dp");
    weights_free(m, w);
    qmodel_free(m);
}
END_TEST

/* ---- Chunks: counts, BOS, agreement with a naive version ---------------------- */

START_TEST(test_chunk_counts)
{
    struct qmodel *m = random_model(8, 1, 7, 0.5f);
    int64_t n = 5 * 16 + 3;
    int32_t *t = random_tokens(n, 8, 11);
    struct qlm_metrics r;
    qerr err;
    ck_assert_msg(qlm_perplexity(m, NULL, t, n, opts(16, 0, 1), NULL, NULL, NULL, &r, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(r.n_chunks, 5);
    ck_assert_int_eq(r.n_tokens_scored, 5 * 7);       /* positions 8..14 of each chunk */
    struct naive nv = naive_run(m, NULL, t, n, 16, 1, NULL);
    assert_rel(r.ppl, nv.ppl, 1e-6, "PPL vs naive");

    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(16, 2, 1), NULL, NULL, NULL, &r, &err), 0);
    ck_assert_int_eq(r.n_chunks, 2);
    ck_assert_int_eq(r.n_tokens_scored, 14);
    nv = naive_run(m, NULL, t, 32, 16, 1, NULL);
    assert_rel(r.ppl, nv.ppl, 1e-6, "2 chunks vs naive");

    /* odd n_ctx 9: first = 4, positions 4..7 scored, 83 / 9 = 9 chunks */
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(9, 0, 1), NULL, NULL, NULL, &r, &err), 0);
    ck_assert_int_eq(r.n_chunks, 9);
    ck_assert_int_eq(r.n_tokens_scored, 36);
    nv = naive_run(m, NULL, t, n, 9, 1, NULL);
    assert_rel(r.ppl, nv.ppl, 1e-6, "n_ctx 9 vs naive");
    free(t);
    qmodel_free(m);
}
END_TEST

/* Each chunk's first token is replaced by BOS (1 without a tokenizer):
 * changing it changes nothing, changing the second token does, and the
 * model does read the first token (a naive run without BOS differs). */
START_TEST(test_chunk_bos)
{
    struct qmodel *m = random_model(8, 0, 21, 0.8f);
    int64_t n = 4 * 12;
    int32_t *a = random_tokens(n, 8, 5), *b = malloc((size_t)n * sizeof *b);
    for (int64_t i = 0; i < n; i += 12)
        a[i] = 6;
    memcpy(b, a, (size_t)n * sizeof *b);
    for (int64_t i = 0; i < n; i += 12)
        b[i] = 3;
    struct qlm_metrics ra, rb, rc;
    qerr err;
    ck_assert_int_eq(qlm_perplexity(m, NULL, a, n, opts(12, 0, 1), NULL, NULL, NULL, &ra, &err), 0);
    ck_assert_int_eq(qlm_perplexity(m, NULL, b, n, opts(12, 0, 1), NULL, NULL, NULL, &rb, &err), 0);
    ck_assert_double_eq(ra.ppl, rb.ppl);
    b[1] = (b[1] + 1) % 8;
    ck_assert_int_eq(qlm_perplexity(m, NULL, b, n, opts(12, 0, 1), NULL, NULL, NULL, &rc, &err), 0);
    ck_assert(rc.ppl != ra.ppl);

    struct naive with_bos = naive_run(m, NULL, a, n, 12, 1, NULL);
    struct naive without = naive_run(m, NULL, a, n, 12, -1, NULL);
    assert_rel(ra.ppl, with_bos.ppl, 1e-6, "PPL vs naive with BOS");
    ck_assert_msg(fabs(without.ppl - with_bos.ppl) > 1e-4 * with_bos.ppl,
                  "the model ignores the first token: %.8f vs %.8f", without.ppl, with_bos.ppl);
    free(a);
    free(b);
    qmodel_free(m);
}
END_TEST

/* A run compared with its own reference: the records round log-probs to
 * (range/65535)/2 <= 16/65535/2 = 1.22e-4 nats, so KLD, ln ratio and Δp
 * stay within that of 0 (llama-perplexity does not give exactly 0 either),
 * and the argmax is the same everywhere. */
START_TEST(test_self_reference)
{
    struct qmodel *m = random_model(8, 1, 3, 0.5f);
    int64_t n = 6 * 16 + 5;
    int32_t *t = random_tokens(n, 8, 9);
    const char *path = tu_path("self.ref");
    struct qlm_metrics plain, base, r;
    qerr err;
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(16, 0, 1), NULL, NULL, NULL, &plain, &err), 0);
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(16, 0, 1), NULL, NULL, path, &base, &err), 0);
    assert_rel(base.ppl, plain.ppl, 1e-6, "reference-mode PPL");
    ck_assert_msg(qlm_perplexity(m, NULL, t, n, opts(16, 0, 1), NULL, path, NULL, &r, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(r.has_ref, 1);
    ck_assert_double_eq(r.ppl_ref, base.ppl);
    assert_rel(r.ppl, base.ppl, 1e-6, "PPL(Q) = PPL(base)");
    ck_assert_double_eq(r.same_top_pct, 100.0);
    double bound = 16.0 / 65535 / 2 * 1.01;
    ck_assert_msg(fabs(r.kld_mean) < bound && fabs(r.kld_max) < bound && fabs(r.kld_median) < bound,
                  "KLD %g max %g", r.kld_mean, r.kld_max);
    ck_assert_msg(fabs(r.ln_ppl_ratio) < bound, "ln ratio %g", r.ln_ppl_ratio);
    ck_assert_msg(fabs(r.dp_mean) < 100 * bound && r.dp_rms < 100 * bound, "dp %g rms %g",
                  r.dp_mean, r.dp_rms);
    struct naive nv = naive_run(m, NULL, t, n, 16, 1, path);
    ck_assert_double_eq_tol(r.kld_mean, nv.kld_mean, 1e-7);
    ck_assert_double_eq_tol(r.ln_ppl_ratio, log(nv.ppl) - nv.nll_base_mean, 1e-7);
    free(t);
    qmodel_free(m);
}
END_TEST

/* A perturbed model: KLD > 0, and every statistic as a double-precision
 * reading of the same records gives it. */
START_TEST(test_perturbed_vs_naive)
{
    struct qmodel *m = random_model(8, 0, 17, 0.6f);
    int64_t n = 8 * 32 + 7;
    int32_t *t = random_tokens(n, 8, 23);
    const char *path = tu_path("pert.ref");
    struct qlm_metrics base, r;
    qerr err;
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(32, 0, 1), NULL, NULL, path, &base, &err), 0);
    float **w = perturbed(m, m->llm->layers[1].w_down, 0.3f, 99);
    ck_assert_msg(qlm_perplexity(m, (const float *const *)w, t, n, opts(32, 0, 1), NULL, path,
                                 NULL, &r, &err) == 0, "%s", err.msg);
    struct naive nv = naive_run(m, (const float *const *)w, t, n, 32, 1, path);
    ck_assert_int_eq(r.n_tokens_scored, nv.count);
    ck_assert_msg(r.kld_mean > 1e-3, "KLD %g", r.kld_mean);
    assert_rel(r.ppl, nv.ppl, 1e-6, "PPL(Q)");
    assert_rel(r.kld_mean, nv.kld_mean, 1e-6, "mean KLD");
    assert_rel(r.kld_median, nv.kld_median, 1e-5, "median KLD");
    assert_rel(r.kld_p99, nv.kld_p99, 1e-5, "p99 KLD");
    assert_rel(r.kld_max, nv.kld_max, 1e-5, "max KLD");
    ck_assert_double_eq_tol(r.ln_ppl_ratio, log(nv.ppl) - nv.nll_base_mean, 1e-6);
    ck_assert_double_eq_tol(r.same_top_pct, nv.same_top_pct, 1e-9);
    ck_assert(r.same_top_pct < 100.0);
    assert_rel(r.dp_mean, nv.dp_mean, 1e-5, "mean dp");
    assert_rel(r.dp_rms, nv.dp_rms, 1e-6, "RMS dp");
    weights_free(m, w);
    free(t);
    qmodel_free(m);
}
END_TEST

/* Scoring is shared out over threads when the work is large (vocabulary
 * 4096): the result is the same to the bit with one thread or two. */
START_TEST(test_threads_identical)
{
    struct qmodel *m = random_model(4096, 1, 31, 0.5f);
    int64_t n = 2 * 256;
    int32_t *t = random_tokens(n, 4096, 41);
    const char *path = tu_path("threads.ref");
    struct qlm_metrics a, b, ka, kb;
    qerr err;
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(256, 0, 1), NULL, NULL, path, &a, &err), 0);
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(256, 0, 2), NULL, NULL, NULL, &b, &err), 0);
    assert_rel(b.ppl, a.ppl, 1e-6, "plain vs reference mode");
    float **w = perturbed(m, m->llm->token_embd, 0.05f, 5);
    ck_assert_int_eq(qlm_perplexity(m, (const float *const *)w, t, n, opts(256, 0, 1), NULL, path,
                                    NULL, &ka, &err), 0);
    ck_assert_int_eq(qlm_perplexity(m, (const float *const *)w, t, n, opts(256, 0, 2), NULL, path,
                                    NULL, &kb, &err), 0);
    ck_assert_int_eq(memcmp(&ka, &kb, sizeof ka), 0);
    ck_assert(ka.kld_mean > 0);
    weights_free(m, w);
    free(t);
    qmodel_free(m);
}
END_TEST

/* ---- Progress and cancel ------------------------------------------------------- */

struct prog {
    int calls;
    int64_t last_done, total;
    int cancel_after;
    atomic_int cancel;
};

static void on_progress(void *ctx, const char *phase, int64_t done, int64_t total)
{
    struct prog *p = ctx;
    ck_assert_str_eq(phase, "perplexity");
    ck_assert_int_eq(done, p->last_done + 1);
    p->calls++;
    p->last_done = done;
    p->total = total;
    if (p->cancel_after && done == p->cancel_after)
        atomic_store(&p->cancel, 1);
}

START_TEST(test_progress_and_cancel)
{
    struct qmodel *m = random_model(8, 1, 3, 0.5f);
    int64_t n = 5 * 16;
    int32_t *t = random_tokens(n, 8, 1);
    struct prog pg = {0};
    atomic_init(&pg.cancel, 0);
    struct qprogress p = {on_progress, &pg, &pg.cancel};
    struct qlm_metrics r;
    qerr err;
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(16, 0, 1), &p, NULL, NULL, &r, &err), 0);
    ck_assert_int_eq(pg.calls, 5);
    ck_assert_int_eq(pg.total, 5);

    pg = (struct prog){.cancel_after = 2};
    atomic_init(&pg.cancel, 0);
    const char *path = tu_path("cancel.ref");
    struct qlm_metrics untouched = {.ppl = -1};
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, n, opts(16, 0, 1), &p, NULL, path, &untouched,
                                    &err), QEVAL_CANCELLED);
    ck_assert_int_eq(pg.calls, 2);
    ck_assert_double_eq(untouched.ppl, -1);
    ck_assert(!exists(path));
    ck_assert(!exists(tu_path("cancel.ref.tmp")));
    free(t);
    qmodel_free(m);
}
END_TEST

/* ---- Files: reference files refused with their name ------------------------------ */

struct ref_fixture {
    struct qmodel *m;
    int32_t *t;
    int64_t n;
    char path[1024];
};

static void make_ref(struct ref_fixture *f, const char *name)
{
    f->m = random_model(8, 1, 3, 0.5f);
    f->n = 3 * 16;
    f->t = random_tokens(f->n, 8, 2);
    snprintf(f->path, sizeof f->path, "%s", tu_path(name));
    struct qlm_metrics r;
    qerr err;
    ck_assert_int_eq(qlm_perplexity(f->m, NULL, f->t, f->n, opts(16, 0, 1), NULL, NULL, f->path,
                                    &r, &err), 0);
}

static void free_ref(struct ref_fixture *f)
{
    free(f->t);
    qmodel_free(f->m);
}

/* qlm_ref_info and a comparison both refuse path, with msg in the error. */
static void assert_refused(struct ref_fixture *f, const char *path, const char *msg)
{
    struct qlm_ref_info info;
    struct qlm_metrics r;
    qerr err;
    ck_assert_int_eq(qlm_ref_info(path, &info, &err), -1);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, msg), "%s", err.msg);
    ck_assert_int_eq(qlm_perplexity(f->m, NULL, f->t, f->n, opts(16, 0, 1), NULL, path, NULL, &r,
                                    &err), -1);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, msg), "%s", err.msg);
}

START_TEST(test_ref_round_trip)
{
    struct ref_fixture f;
    make_ref(&f, "rt.ref");
    struct qlm_ref_info info;
    qerr err;
    ck_assert_msg(qlm_ref_info(f.path, &info, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(info.n_vocab, 8);
    ck_assert_int_eq(info.n_ctx, 16);
    ck_assert_int_eq(info.n_chunks, 3);
    ck_assert_int_eq(info.n_tokens_scored, 21);
    ck_assert_double_eq(info.ppl, exp(info.nll_sum / 21));
    ck_assert(info.nll2_sum > info.nll_sum * info.nll_sum / 21);
    size_t n;
    char *bytes = tu_read_file(f.path, &n);
    ck_assert_uint_eq(n, 64 + 21 * (4 + 8) * 2);
    free(bytes);
    ck_assert(!exists(tu_path("rt.ref.tmp")));
    free_ref(&f);
}
END_TEST

START_TEST(test_ref_damaged)
{
    struct ref_fixture f;
    make_ref(&f, "dmg.ref");
    size_t n;
    char *bytes = tu_read_file(f.path, &n);
    const char *p = tu_path("dmg-trunc.ref");
    tu_write_file(p, bytes, n - 1);
    assert_refused(&f, p, "truncated");
    p = tu_path("dmg-short.ref");
    tu_write_file(p, bytes, 20);
    assert_refused(&f, p, "truncated");
    p = tu_path("dmg-long.ref");
    char *longer = calloc(n + 2, 1);
    memcpy(longer, bytes, n);
    tu_write_file(p, longer, n + 2);
    assert_refused(&f, p, "bytes");
    free(longer);
    p = tu_path("dmg-magic.ref");
    bytes[0] = '_';
    tu_write_file(p, bytes, n);
    assert_refused(&f, p, "QLABREF1");
    bytes[0] = 'Q';
    p = tu_path("dmg-count.ref");
    bytes[24] = 20;     /* scored tokens 21 -> 20 */
    tu_write_file(p, bytes, n);
    assert_refused(&f, p, "header says 20");
    bytes[24] = 21;
    p = tu_path("dmg-vocab.ref");
    bytes[11] = 0x7f;   /* vocabulary 0x7f000008 */
    tu_write_file(p, bytes, n);
    assert_refused(&f, p, "out of range");
    assert_refused(&f, tu_path("absent.ref"), "cannot open");
    free(bytes);
    free_ref(&f);
}
END_TEST

START_TEST(test_ref_mismatch)
{
    struct ref_fixture f;
    make_ref(&f, "mm.ref");
    struct qlm_metrics r;
    qerr err;
    /* n_ctx */
    ck_assert_int_eq(qlm_perplexity(f.m, NULL, f.t, f.n, opts(12, 0, 1), NULL, f.path, NULL, &r,
                                    &err), -1);
    ck_assert_msg(strstr(err.msg, f.path) && strstr(err.msg, "n_ctx 16"), "%s", err.msg);
    /* chunks */
    ck_assert_int_eq(qlm_perplexity(f.m, NULL, f.t, f.n, opts(16, 2, 1), NULL, f.path, NULL, &r,
                                    &err), -1);
    ck_assert_msg(strstr(err.msg, f.path) && strstr(err.msg, "3 chunks"), "%s", err.msg);
    /* vocabulary */
    struct qmodel *m6 = random_model(6, 1, 3, 0.5f);
    int32_t *t6 = random_tokens(f.n, 6, 2);
    ck_assert_int_eq(qlm_perplexity(m6, NULL, t6, f.n, opts(16, 0, 1), NULL, f.path, NULL, &r,
                                    &err), -1);
    ck_assert_msg(strstr(err.msg, f.path) && strstr(err.msg, "vocabulary of 8"), "%s", err.msg);
    /* other tokens: the same counts, another text */
    int32_t *other = random_tokens(f.n, 8, 77);
    ck_assert_int_eq(qlm_perplexity(f.m, NULL, other, f.n, opts(16, 0, 1), NULL, f.path, NULL, &r,
                                    &err), -1);
    ck_assert_msg(strstr(err.msg, f.path) && strstr(err.msg, "other tokens"), "%s", err.msg);
    free(other);
    free(t6);
    qmodel_free(m6);
    free_ref(&f);
}
END_TEST

/* ---- Limits: arguments ------------------------------------------------------------ */

START_TEST(test_limits)
{
    struct qmodel *m = random_model(8, 1, 3, 0.5f);
    int32_t *t = random_tokens(40, 8, 2);
    struct qlm_metrics r;
    qerr err;
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, 15, opts(16, 0, 1), NULL, NULL, NULL, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "15 tokens, fewer than one chunk of n_ctx 16"), "%s", err.msg);
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, 40, opts(2, 0, 1), NULL, NULL, NULL, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "n_ctx 2"), "%s", err.msg);
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, 40, opts(16, -1, 1), NULL, NULL, NULL, &r, &err), -1);
    t[17] = 8;
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, 40, opts(16, 0, 1), NULL, NULL, NULL, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "token 8 at position 17"), "%s", err.msg);
    /* a token past the last full chunk is never read */
    t[17] = 1;
    t[35] = -3;
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, 40, opts(16, 0, 1), NULL, NULL, NULL, &r, &err), 0);
    ck_assert_int_eq(r.n_chunks, 2);
    /* n_ctx 3 is the least that scores a token; 0 means min(max_ctx, 512) = 64 */
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, 7, opts(3, 0, 1), NULL, NULL, NULL, &r, &err), 0);
    ck_assert_int_eq(r.n_tokens_scored, 2);
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, 40, opts(0, 0, 1), NULL, NULL, NULL, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "n_ctx 64"), "%s", err.msg);
    /* an unwritable reference leaves nothing behind */
    const char *bad = tu_path("no-such-dir/x.ref");
    ck_assert_int_eq(qlm_perplexity(m, NULL, t, 32, opts(16, 0, 1), NULL, NULL, bad, &r, &err), -1);
    ck_assert_msg(strstr(err.msg, "no-such-dir/x.ref.tmp"), "%s", err.msg);
    /* not a language model */
    struct qmodel cls = {.kind = QMODEL_CLASSIFIER, .name = "cnn"};
    ck_assert_int_eq(qlm_perplexity(&cls, NULL, t, 32, opts(16, 0, 1), NULL, NULL, NULL, &r, &err),
                     -1);
    ck_assert_msg(strstr(err.msg, "cnn: not a language model"), "%s", err.msg);
    free(t);
    qmodel_free(m);
}
END_TEST

/* ---- Real: stories260K on the TinyStories evaluation text --------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void real_ppl(struct qmodel *m)
{
    size_t len;
    char *text = tu_read_file(tu_shared("tinystories/eval-32k.txt"), &len);
    ck_assert_ptr_nonnull(text);
    int32_t *ids;
    int64_t n;
    qerr err;
    ck_assert_msg(qtok_encode(m->llm->tok, text, len, 1, &ids, &n, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n, 15652);
    struct qlm_metrics r;
    double t0 = now_s();
    ck_assert_msg(qlm_perplexity(m, NULL, ids, n, opts(128, 0, 0), NULL, NULL, NULL, &r, &err) == 0,
                  "%s", err.msg);
    double dt = now_s() - t0;
    ck_assert_int_eq(r.n_chunks, 122);
    ck_assert_int_eq(r.n_tokens_scored, 7686);
    char printed[32];
    snprintf(printed, sizeof printed, "%.4f", r.ppl);
    ck_assert_str_eq(printed, "3.7615");
    ck_assert_msg(fabs(r.ppl - 3.761508) < 5e-5, "PPL %.6f", r.ppl);
    fprintf(stderr, "%s: PPL = %.6f +/- %.5f over %lld tokens in %.2f s\n", m->format, r.ppl,
            r.ppl_err, (long long)r.n_tokens_scored, dt);
    free(ids);
    free(text);
}

START_TEST(test_real_stories260k)
{
    struct qmodel *m;
    qerr err;
    ck_assert_msg(qllm_load_llama2c(tu_shared("stories260k/stories260K.bin"),
                                    tu_shared("stories260k/tok512.bin"), &m, &err) == 0, "%s",
                  err.msg);
    real_ppl(m);
    qmodel_free(m);
}
END_TEST

START_TEST(test_real_stories260k_gguf)
{
    struct qmodel *m;
    qerr err;
    ck_assert_msg(qllm_load_gguf(tu_shared("gguf/stories260K-f32.gguf"), NULL, &m, &err) == 0,
                  "%s", err.msg);
    real_ppl(m);
    qmodel_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lm_eval");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, test_hand_ppl);
    tcase_add_test(core, test_hand_reference_codes);
    tcase_add_test(core, test_hand_kl_divergence);
    suite_add_tcase(s, core);

    TCase *chunks = tcase_create("Chunks");
    tcase_set_timeout(chunks, 60);
    tcase_add_test(chunks, test_chunk_counts);
    tcase_add_test(chunks, test_chunk_bos);
    tcase_add_test(chunks, test_self_reference);
    tcase_add_test(chunks, test_perturbed_vs_naive);
    tcase_add_test(chunks, test_threads_identical);
    tcase_add_test(chunks, test_progress_and_cancel);
    suite_add_tcase(s, chunks);

    TCase *files = tcase_create("Files");
    tcase_add_test(files, test_ref_round_trip);
    tcase_add_test(files, test_ref_damaged);
    tcase_add_test(files, test_ref_mismatch);
    suite_add_tcase(s, files);

    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, test_limits);
    suite_add_tcase(s, limits);

    TCase *real = tcase_create("Real");
    tcase_set_timeout(real, 300);
    tcase_add_test(real, test_real_stories260k);
    const char *need[] = {"stories260k/stories260K.bin", "stories260k/tok512.bin",
                          "tinystories/eval-32k.txt"};
    tu_add_if_shared(s, real, need, 3);
    TCase *real_gguf = tcase_create("RealGGUF");
    tcase_set_timeout(real_gguf, 300);
    tcase_add_test(real_gguf, test_real_stories260k_gguf);
    const char *need_gguf[] = {"gguf/stories260K-f32.gguf", "tinystories/eval-32k.txt"};
    tu_add_if_shared(s, real_gguf, need_gguf, 2);
    return tu_run(s);
}
