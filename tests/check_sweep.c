/* check_sweep.c — sensitivity sweeps: groups, points and their bits, prefix reuse against full passes, determinism, resume, cancel. */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "quant/assign.h"
#include "quant/eval.h"
#include "quant/forward.h"
#include "quant/llm.h"
#include "quant/llm_load.h"
#include "quant/lm_eval.h"
#include "quant/recipe.h"
#include "quant/safetensors.h"
#include "quant/sweep.h"
#include "quant/tokenizer.h"
#include "test_util.h"

/* ---- plugins --------------------------------------------------------------------- */

static struct qplugin_host *host_new(int *has_ggml)
{
    struct qplugin_host *h = qhost_new();
    ck_assert_ptr_nonnull(h);
    qerr err;
    ck_assert_msg(qhost_load(h, tu_plugin("int.so"), &err) == 0, "%s", err.msg);
    int ggml = access(tu_plugin("ggml.so"), R_OK) == 0 &&
               qhost_load(h, tu_plugin("ggml.so"), &err) == 0;
    if (has_ggml)
        *has_ggml = ggml;
    return h;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- a table of results, filled by the callbacks ---------------------------------- */

struct table {
    int G, S;
    int *count;                     /* G x S: reports of the point (either kind) */
    struct qsweep_result *r;        /* G x S */
    int *failed;                    /* G x S */
    char (*msg)[256];               /* G x S: the failure */
    int64_t n_points, n_failed;
    const unsigned char *done;      /* G x S: already stored (resume), or NULL */
    int64_t last_done, last_total;
    double last_speed;
    int progress_calls;
    atomic_int *cancel;
    int cancel_after;               /* set cancel once this many points came */
    int refuse_at;                  /* on_point fails at this point number (1-based), 0 never */
};

static void table_init(struct table *t, int G, int S)
{
    memset(t, 0, sizeof *t);
    t->G = G;
    t->S = S;
    t->count = calloc((size_t)(G * S), sizeof *t->count);
    t->r = calloc((size_t)(G * S), sizeof *t->r);
    t->failed = calloc((size_t)(G * S), sizeof *t->failed);
    t->msg = calloc((size_t)(G * S), sizeof *t->msg);
}

static void table_free(struct table *t)
{
    free(t->count);
    free(t->r);
    free(t->failed);
    free(t->msg);
}

static int cb_is_done(void *ctx, int64_t g, int64_t s)
{
    struct table *t = ctx;
    return t->done && t->done[g * t->S + s];
}

static int cb_point(void *ctx, const struct qsweep_result *r, qerr *err)
{
    struct table *t = ctx;
    ck_assert(r->group >= 0 && r->group < t->G && r->scheme >= 0 && r->scheme < t->S);
    int64_t i = r->group * t->S + r->scheme;
    t->count[i]++;
    t->r[i] = *r;
    t->n_points++;
    if (t->refuse_at && t->n_points == t->refuse_at)
        return qerr_set(err, "disk full (test)");
    return 0;
}

static int cb_failed(void *ctx, int64_t g, int64_t s, const char *error, qerr *err)
{
    (void)err;
    struct table *t = ctx;
    int64_t i = g * t->S + s;
    t->count[i]++;
    t->failed[i] = 1;
    snprintf(t->msg[i], sizeof t->msg[i], "%s", error);
    t->n_failed++;
    return 0;
}

static void cb_progress(void *ctx, int64_t done, int64_t total, double per_second)
{
    struct table *t = ctx;
    ck_assert_int_ge(done, t->last_done);
    t->last_done = done;
    t->last_total = total;
    t->last_speed = per_second;
    t->progress_calls++;
    if (t->cancel && t->cancel_after && t->n_points >= t->cancel_after)
        atomic_store(t->cancel, 1);
}

static int run_table(const struct qsweep_spec *s, struct table *t, qerr *err)
{
    struct qsweep_callbacks cb = {.ctx = t, .is_done = cb_is_done, .on_point = cb_point,
                                  .on_failed = cb_failed, .progress = cb_progress,
                                  .cancel = t->cancel};
    return qsweep_run(s, &cb, err);
}

static void run_ok(const struct qsweep_spec *s, struct table *t)
{
    qerr err = {{0}};
    int rc = run_table(s, t, &err);
    ck_assert_msg(rc == 0, "sweep: %d %s", rc, err.msg);
}

/* Bitwise equality of two results' numbers. */
static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static void assert_same_result(const struct qsweep_result *a, const struct qsweep_result *b)
{
    ck_assert_int_eq(a->group, b->group);
    ck_assert_int_eq(a->scheme, b->scheme);
    ck_assert_uint_eq(a->bits, b->bits);
    ck_assert_msg(same_bits(a->change, b->change), "change %.17g vs %.17g (group %lld scheme %lld)",
                  a->change, b->change, (long long)a->group, (long long)a->scheme);
    ck_assert(same_bits(a->cls.cross_entropy, b->cls.cross_entropy));
    ck_assert(same_bits(a->cls.top1, b->cls.top1));
    ck_assert(same_bits(a->cls.kld_mean, b->cls.kld_mean));
    ck_assert(same_bits(a->cls.kld_max, b->cls.kld_max));
    ck_assert(same_bits(a->lm.kld_mean, b->lm.kld_mean));
    ck_assert(same_bits(a->lm.ppl, b->lm.ppl));
    ck_assert(same_bits(a->lm.kld_p99, b->lm.kld_p99));
    ck_assert(same_bits(a->lm.same_top_pct, b->lm.same_top_pct));
}

static void assert_close(double a, double b, double rel, const char *what)
{
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    ck_assert_msg(fabs(a - b) <= rel * scale || a == b, "%s: %.17g vs %.17g", what, a, b);
}

/* Same numbers to rel (prefix reuse against full passes). */
static void assert_close_result(const struct qsweep_result *a, const struct qsweep_result *b,
                                double rel)
{
    ck_assert_uint_eq(a->bits, b->bits);
    assert_close(a->change, b->change, rel, "change");
    assert_close(a->cls.cross_entropy, b->cls.cross_entropy, rel, "cross_entropy");
    assert_close(a->cls.top1, b->cls.top1, rel, "top1");
    assert_close(a->cls.kld_mean, b->cls.kld_mean, rel, "kld_mean");
    assert_close(a->lm.kld_mean, b->lm.kld_mean, rel, "lm kld_mean");
    assert_close(a->lm.ppl, b->lm.ppl, rel, "lm ppl");
    assert_close(a->lm.kld_p99, b->lm.kld_p99, rel, "lm kld_p99");
    assert_close(a->lm.same_top_pct, b->lm.same_top_pct, rel, "lm same_top");
}

/* ---- digits-cnn ------------------------------------------------------------------- */

struct cls {
    struct qmodel *m;
    struct qdataset *d;
    float *ref;
    int64_t n;
    struct qplugin_host *h;
    int has_ggml;
};

static void cls_open(struct cls *c, const char *model_path)
{
    memset(c, 0, sizeof *c);
    qerr err;
    ck_assert_msg(qmodel_open(model_path, &c->m, &err) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(c->m->dataset_path);
    ck_assert_msg(qdataset_open(c->m->dataset_path, c->m->labels_path, &c->d, &err) == 0, "%s",
                  err.msg);
    c->n = c->d->n;
    c->ref = malloc((size_t)c->n * (size_t)c->m->n_classes * sizeof *c->ref);
    struct qeval_opts eo = {.batch = 64, .threads = 1};
    ck_assert_msg(qeval_logits(c->m, NULL, c->d, c->n, &eo, NULL, "ref", c->ref, &err) == 0, "%s",
                  err.msg);
    c->h = host_new(&c->has_ggml);
}

static void cls_close(struct cls *c)
{
    qhost_free(c->h);
    free(c->ref);
    qdataset_free(c->d);
    qmodel_free(c->m);
}

static struct qsweep_spec cls_spec(const struct cls *c, enum qsweep_mode mode,
                                   const struct qsweep_group *g, int ng,
                                   const char *const *schemes, int ns)
{
    return (struct qsweep_spec){.model = c->m, .host = c->h, .mode = mode, .groups = g,
                                .n_groups = ng, .schemes = schemes, .n_schemes = ns,
                                .data = c->d, .n_samples = c->n, .ref_logits = c->ref,
                                .threads = 2, .prefix_reuse = 1};
}

static void groups_of(const struct qmodel *m, enum qsweep_grouping how, const char *globs,
                      struct qsweep_group **g, int *n)
{
    qerr err;
    ck_assert_msg(qsweep_groups(m, how, globs, g, n, &err) == 0, "%s", err.msg);
}

static void assert_group(const struct qmodel *m, const struct qsweep_group *g, const char *name,
                         const char *glob, int first, const char *const *members, int n)
{
    ck_assert_str_eq(g->name, name);
    ck_assert_str_eq(g->glob, glob);
    ck_assert_int_eq(g->first_layer, first);
    ck_assert_int_eq(g->n_tensors, n);
    int64_t numel = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(m->tensors[g->tensors[i]]->name, members[i]);
        numel += m->tensors[g->tensors[i]]->numel;
    }
    ck_assert_int_eq(g->numel, numel);
}

#define DIGITS "sample-models/digits-cnn"

START_TEST(test_groups_digits)
{
    struct qmodel *m;
    qerr err;
    ck_assert_msg(qmodel_open(DIGITS, &m, &err) == 0, "%s", err.msg);
    struct qsweep_group *g;
    int n;
    static const char *const w[] = {"conv1.weight", "conv2.weight", "conv3.weight", "fc.weight"};
    static const int node[] = {0, 2, 5, 9}; /* conv1 relu1 conv2 relu2 pool1 conv3 ... fc */

    groups_of(m, QSWEEP_TENSOR, NULL, &g, &n);
    ck_assert_int_eq(n, 4);
    for (int i = 0; i < 4; i++)
        assert_group(m, &g[i], w[i], w[i], node[i], &w[i], 1);
    qsweep_groups_free(g, n);

    groups_of(m, QSWEEP_BLOCK, NULL, &g, &n);
    ck_assert_int_eq(n, 4);
    static const char *const nodes[] = {"conv1", "conv2", "conv3", "fc"};
    for (int i = 0; i < 4; i++)
        assert_group(m, &g[i], nodes[i], w[i], node[i], &w[i], 1);
    qsweep_groups_free(g, n);

    /* op kinds: no single glob holds the three convolutions */
    groups_of(m, QSWEEP_ROLE, NULL, &g, &n);
    ck_assert_int_eq(n, 2);
    assert_group(m, &g[0], "conv2d", "", 0, w, 3);
    assert_group(m, &g[1], "linear", "fc.weight", 9, &w[3], 1);
    qsweep_groups_free(g, n);

    groups_of(m, QSWEEP_GLOB, " conv* ; fc.weight;", &g, &n);
    ck_assert_int_eq(n, 2);
    assert_group(m, &g[0], "conv*", "conv*", 0, w, 3);
    assert_group(m, &g[1], "fc.weight", "fc.weight", 9, &w[3], 1);
    qsweep_groups_free(g, n);

    /* in the globs' order, not the model's */
    groups_of(m, QSWEEP_GLOB, "fc*;conv[23]*", &g, &n);
    ck_assert_int_eq(n, 2);
    assert_group(m, &g[0], "fc*", "fc*", 9, &w[3], 1);
    assert_group(m, &g[1], "conv[23]*", "conv[23]*", 2, &w[1], 2);
    qsweep_groups_free(g, n);
    qmodel_free(m);
}
END_TEST

START_TEST(test_groups_glob_errors)
{
    struct qmodel *m;
    qerr err;
    ck_assert_msg(qmodel_open(DIGITS, &m, &err) == 0, "%s", err.msg);
    struct qsweep_group *g = (void *)1;
    int n = 7;
    ck_assert_int_eq(qsweep_groups(m, QSWEEP_GLOB, "conv*;conv2.weight", &g, &n, &err), -1);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(n, 0);
    ck_assert_msg(strstr(err.msg, "'conv2.weight'") && strstr(err.msg, "already in glob 'conv*'"),
                  "%s", err.msg);
    ck_assert_int_eq(qsweep_groups(m, QSWEEP_GLOB, "conv1*;nothing*", &g, &n, &err), -1);
    ck_assert_msg(strstr(err.msg, "glob 'nothing*' selects no quantizable tensor"), "%s", err.msg);
    /* a bias is not a weight: the sweep never quantizes it */
    ck_assert_int_eq(qsweep_groups(m, QSWEEP_GLOB, "fc.bias", &g, &n, &err), -1);
    ck_assert_msg(strstr(err.msg, "'fc.bias' selects no"), "%s", err.msg);
    ck_assert_int_eq(qsweep_groups(m, QSWEEP_GLOB, " ; ;", &g, &n, &err), -1);
    ck_assert_msg(strstr(err.msg, "no globs given"), "%s", err.msg);
    ck_assert_int_eq(qsweep_groups(m, QSWEEP_GLOB, NULL, &g, &n, &err), -1);
    qmodel_free(m);
}
END_TEST

/* ---- a tiny language model ---------------------------------------------------------------
 * Two blocks of width 8 built in memory (untied output), every matrix
 * uniform in [-0.5, 0.5). */

#define DIM 8
#define HIDDEN 16
#define HEADS 2
#define KV_HEADS 1
#define HD 4
#define VOCAB 32

static int add_tensor(struct qmodel *m, const char *name, int64_t rows, int64_t cols,
                      uint32_t *seed)
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
    for (int64_t k = 0; k < t->numel; k++) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        t->f32_owned[k] = cols ? (float)(*seed >> 8) / 16777216.0f - 0.5f : 1.0f;
    }
    m->tensors[i] = t;
    m->n_tensors = m->n_owned;
    return i;
}

static struct qmodel *tiny_lm(void)
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
                                .head_dim = HD, .vocab_size = VOCAB, .max_ctx = 64,
                                .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                                .rope = QLLM_ROPE_INTERLEAVED};
    uint32_t seed = 12345;
    l->token_embd = add_tensor(m, "token_embd.weight", VOCAB, DIM, &seed);
    char name[64];
    for (int b = 0; b < 2; b++) {
        struct qllm_layer *y = &l->layers[b];
#define T(field, suffix, r, c) \
    (snprintf(name, sizeof name, "blk.%d." suffix, b), y->field = add_tensor(m, name, r, c, &seed))
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
    l->output_norm = add_tensor(m, "output_norm.weight", DIM, 0, &seed);
    l->output = add_tensor(m, "output.weight", VOCAB, DIM, &seed);
    qerr err;
    ck_assert_msg(qllm_validate(m, &err) == 0, "%s", err.msg);
    return m;
}

START_TEST(test_groups_lm)
{
    struct qmodel *m = tiny_lm();
    struct qsweep_group *g;
    int n;
    static const char *const b0[] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                     "blk.0.attn_v.weight", "blk.0.attn_output.weight",
                                     "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
                                     "blk.0.ffn_down.weight"};
    static const char *const b1[] = {"blk.1.attn_q.weight", "blk.1.attn_k.weight",
                                     "blk.1.attn_v.weight", "blk.1.attn_output.weight",
                                     "blk.1.ffn_gate.weight", "blk.1.ffn_up.weight",
                                     "blk.1.ffn_down.weight"};
    static const char *const emb[] = {"token_embd.weight"}, *const out[] = {"output.weight"};

    groups_of(m, QSWEEP_TENSOR, NULL, &g, &n);
    ck_assert_int_eq(n, 16);
    assert_group(m, &g[0], "token_embd.weight", "token_embd.weight", -1, emb, 1);
    assert_group(m, &g[1], b0[0], b0[0], 0, b0, 1);
    assert_group(m, &g[14], b1[6], b1[6], 1, &b1[6], 1);
    assert_group(m, &g[15], "output.weight", "output.weight", 2, out, 1);
    qsweep_groups_free(g, n);

    groups_of(m, QSWEEP_BLOCK, NULL, &g, &n);
    ck_assert_int_eq(n, 4);
    assert_group(m, &g[0], "token_embd.weight", "token_embd.weight", -1, emb, 1);
    assert_group(m, &g[1], "blk.0", "blk.0.*", 0, b0, 7);
    assert_group(m, &g[2], "blk.1", "blk.1.*", 1, b1, 7);
    assert_group(m, &g[3], "output.weight", "output.weight", 2, out, 1);
    qsweep_groups_free(g, n);

    groups_of(m, QSWEEP_ROLE, NULL, &g, &n);
    ck_assert_int_eq(n, 9);
    static const char *const roles[] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                        "ffn_gate", "ffn_up", "ffn_down"};
    assert_group(m, &g[0], "token_embd.weight", "token_embd.weight", -1, emb, 1);
    for (int r = 0; r < 7; r++) {
        char glob[64];
        snprintf(glob, sizeof glob, "blk.*.%s.weight", roles[r]);
        const char *members[] = {b0[r], b1[r]};
        assert_group(m, &g[1 + r], roles[r], glob, 0, members, 2);
    }
    assert_group(m, &g[8], "output.weight", "output.weight", 2, out, 1);
    qsweep_groups_free(g, n);

    groups_of(m, QSWEEP_GLOB, "blk.1.*;*embd*;blk.0.ffn*", &g, &n);
    ck_assert_int_eq(n, 3);
    assert_group(m, &g[0], "blk.1.*", "blk.1.*", 1, b1, 7);
    assert_group(m, &g[1], "*embd*", "*embd*", -1, emb, 1);
    assert_group(m, &g[2], "blk.0.ffn*", "blk.0.ffn*", 0, &b0[4], 3);
    qsweep_groups_free(g, n);

    /* "*.weight" as a recipe rule would take the norms too: no glob for it */
    groups_of(m, QSWEEP_GLOB, "*.weight", &g, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(g[0].n_tensors, 16);
    ck_assert_str_eq(g[0].name, "*.weight");
    ck_assert_str_eq(g[0].glob, "");
    qsweep_groups_free(g, n);

    qerr err;
    ck_assert_int_eq(qsweep_groups(m, QSWEEP_GLOB, "blk.*;blk.0.attn_q.weight", &g, &n, &err), -1);
    ck_assert_msg(strstr(err.msg, "already in glob 'blk.*'"), "%s", err.msg);
    qmodel_free(m);
}
END_TEST

START_TEST(test_names)
{
    ck_assert_str_eq(qsweep_mode_name(QSWEEP_ONE), "one");
    ck_assert_str_eq(qsweep_mode_name(QSWEEP_LOO), "loo");
    ck_assert_str_eq(qsweep_grouping_name(QSWEEP_ROLE), "role");
    ck_assert_str_eq(qsweep_grouping_name(QSWEEP_GLOB), "glob");
    ck_assert_str_eq(qsweep_default_metric(QMODEL_CLASSIFIER), "cross_entropy");
    ck_assert_str_eq(qsweep_default_metric(QMODEL_LM), "kld_mean");
    ck_assert(qsweep_metric_valid(QMODEL_CLASSIFIER, "top1"));
    ck_assert(!qsweep_metric_valid(QMODEL_CLASSIFIER, "ppl"));
    ck_assert(qsweep_metric_valid(QMODEL_LM, "same_top"));
    ck_assert(!qsweep_metric_valid(QMODEL_LM, "top1"));
    ck_assert(!qsweep_metric_valid(QMODEL_LM, NULL));
}
END_TEST

/* ---- sweeps on digits-cnn ------------------------------------------------------------------ */

/* Exact bits of a tensor with a scheme, through the pipeline directly. */
static uint64_t pipeline_bits(const struct cls *c, int t, const char *rhs)
{
    struct qrecipe r = {0};
    qerr err;
    ck_assert_msg(qrecipe_add_text(&r, "*", rhs, &err) == 0, "%s", err.msg);
    struct qpipeline *p;
    ck_assert_msg(qpipeline_configure(c->h, &r.rules[0], &p, &err) == 0, "%s", err.msg);
    uint64_t bits;
    ck_assert_msg(qpipeline_size_bits(p, c->m->tensors[t], NULL, &bits, &err) == 0, "%s", err.msg);
    qpipeline_free(p);
    qrecipe_clear(&r);
    return bits;
}

/* The point's recipe, run as an ordinary evaluation, measures what the sweep did. */
static void check_recipe_run(const struct cls *c, const struct qsweep_spec *s,
                             const struct qsweep_result *r)
{
    char *text = qsweep_point_recipe(s, r->group, r->scheme);
    ck_assert_ptr_nonnull(text);
    struct qrecipe rec;
    struct qassign a;
    struct qweights w;
    qerr err;
    ck_assert_msg(qrecipe_parse(text, &rec, &err) == 0, "%s: %s", text, err.msg);
    ck_assert_msg(qassign_resolve(&rec, c->m, c->h, &a, &err) == 0, "%s: %s", text, err.msg);
    ck_assert_msg(qweights_build(c->m, &a, NULL, NULL, NULL, &w, &err) == 0, "%s", err.msg);
    uint64_t bits = 0;
    for (int t = 0; t < c->m->n_tensors; t++)
        if (a.config[t])
            bits += w.t[t].bits;
    ck_assert_uint_eq(bits, r->bits);
    int k = c->m->n_classes;
    float *logits = malloc((size_t)c->n * (size_t)k * sizeof *logits);
    struct qeval_opts eo = {.batch = 64, .threads = 1};
    ck_assert_msg(qeval_logits(c->m, w.ptrs, c->d, c->n, &eo, NULL, "x", logits, &err) == 0, "%s",
                  err.msg);
    struct qclass_metrics cm;
    qmetrics_classify(logits, c->ref, c->d->labels, c->n, k, &cm);
    ck_assert_msg(same_bits(cm.cross_entropy, r->cls.cross_entropy), "%s: %.17g vs %.17g", text,
                  cm.cross_entropy, r->cls.cross_entropy);
    ck_assert(same_bits(cm.kld_mean, r->cls.kld_mean));
    free(logits);
    qweights_clear(&w);
    qassign_clear(&a);
    qrecipe_clear(&rec);
    free(text);
}

START_TEST(test_digits_one)
{
    struct cls c;
    cls_open(&c, DIGITS);
    struct qsweep_group *g;
    int ng;
    groups_of(c.m, QSWEEP_TENSOR, NULL, &g, &ng);
    const char *schemes[] = {"int:bits=2", "int:bits=4", "int:bits=8", "q4_K"};
    int ns = c.has_ggml ? 4 : 3;
    struct qsweep_spec s = cls_spec(&c, QSWEEP_ONE, g, ng, schemes, ns);
    struct table t;
    table_init(&t, ng, ns);
    run_ok(&s, &t);
    ck_assert_int_eq(t.last_done, ng * ns);
    ck_assert_int_eq(t.last_total, ng * ns);
    ck_assert(t.last_speed > 0);
    for (int i = 0; i < ng; i++) {
        for (int k = 0; k < ns; k++)
            ck_assert_int_eq(t.count[i * ns + k], 1);
        for (int k = 0; k < 3; k++) {
            const struct qsweep_result *r = &t.r[i * ns + k];
            ck_assert(!t.failed[i * ns + k]);
            ck_assert_uint_eq(r->bits, pipeline_bits(&c, g[i].tensors[0], schemes[k]));
            ck_assert(r->seconds >= 0);
            ck_assert_int_eq(r->cls.n, c.n);
            ck_assert(isfinite(r->change));
        }
        /* 8 bits change the loss less than 2 bits, for every tensor */
        ck_assert_msg(fabs(t.r[i * ns + 2].change) < fabs(t.r[i * ns].change),
                      "%s: 8-bit change %g, 2-bit %g", g[i].name, t.r[i * ns + 2].change,
                      t.r[i * ns].change);
        ck_assert(t.r[i * ns].change > 0);
        /* q4_K needs rows of 256: every tensor of digits-cnn is refused */
        if (ns == 4) {
            ck_assert(t.failed[i * ns + 3]);
            ck_assert_msg(strstr(t.msg[i * ns + 3], g[i].name), "%s", t.msg[i * ns + 3]);
        }
    }
    /* the change is the metric minus the float model's */
    struct qclass_metrics fm;
    qmetrics_classify(c.ref, c.ref, c.d->labels, c.n, c.m->n_classes, &fm);
    ck_assert(same_bits(t.r[1].change, t.r[1].cls.cross_entropy - fm.cross_entropy));
    check_recipe_run(&c, &s, &t.r[1 * ns + 0]);
    check_recipe_run(&c, &s, &t.r[3 * ns + 1]);
    char *text = qsweep_point_recipe(&s, 2, 1);
    ck_assert_str_eq(text, "conv3.weight=int:bits=4");
    free(text);
    table_free(&t);

    /* top1 counts a drop as positive; kld_mean is the divergence itself */
    s.metric = "top1";
    table_init(&t, ng, ns);
    run_ok(&s, &t);
    ck_assert(same_bits(t.r[0].change, fm.top1 - t.r[0].cls.top1));
    table_free(&t);
    s.metric = "kld_mean";
    table_init(&t, ng, ns);
    run_ok(&s, &t);
    ck_assert(same_bits(t.r[0].change, t.r[0].cls.kld_mean));
    ck_assert(t.r[0].change > 0);
    table_free(&t);
    qsweep_groups_free(g, ng);
    cls_close(&c);
}
END_TEST

START_TEST(test_digits_loo)
{
    struct cls c;
    cls_open(&c, DIGITS);
    struct qsweep_group *g;
    int ng;
    groups_of(c.m, QSWEEP_TENSOR, NULL, &g, &ng);
    const char *schemes[] = {"int:bits=2", "int:bits=4", "int:bits=8"};
    struct qsweep_spec s = cls_spec(&c, QSWEEP_LOO, g, ng, schemes, 3);
    struct qdeq_cache *cache = qdeq_cache_new((size_t)1 << 24);
    s.cache = cache;
    struct table t;
    table_init(&t, ng, 3);
    run_ok(&s, &t);
    for (int i = 0; i < ng; i++)
        for (int k = 0; k < 3; k++) {
            ck_assert_int_eq(t.count[i * 3 + k], 1);
            uint64_t want = 0;
            for (int j = 0; j < ng; j++)
                if (j != i)
                    want += pipeline_bits(&c, g[j].tensors[0], schemes[k]);
            ck_assert_uint_eq(t.r[i * 3 + k].bits, want);
        }
    /* leaving a tensor out at 2 bits: still far worse than all but one at 8 */
    for (int i = 0; i < ng; i++)
        ck_assert(fabs(t.r[i * 3 + 2].change) < fabs(t.r[i * 3].change));
    char *text = qsweep_point_recipe(&s, 1, 0);
    ck_assert_str_eq(text, "*=int:bits=2;conv2.weight=float");
    free(text);
    check_recipe_run(&c, &s, &t.r[1 * 3 + 0]);
    check_recipe_run(&c, &s, &t.r[3 * 3 + 2]);

    /* groups that leave a tensor out: loo names the others one by one */
    struct qsweep_spec s2 = s;
    s2.groups = g + 1;
    s2.n_groups = 2;
    text = qsweep_point_recipe(&s2, 0, 1);
    ck_assert_str_eq(text, "conv3.weight=int:bits=4");
    free(text);

    /* the shared cache already holds every tensor: a second sweep gives the same table */
    struct table t2;
    table_init(&t2, ng, 3);
    s.threads = 1;
    run_ok(&s, &t2);
    for (int i = 0; i < ng * 3; i++)
        assert_same_result(&t.r[i], &t2.r[i]);
    table_free(&t2);
    table_free(&t);
    qdeq_cache_free(cache);
    qsweep_groups_free(g, ng);
    cls_close(&c);
}
END_TEST

/* ---- determinism, resume, cancel -------------------------------------------------------------- */

START_TEST(test_threads_and_resume)
{
    struct cls c;
    cls_open(&c, DIGITS);
    struct qsweep_group *g;
    int ng;
    groups_of(c.m, QSWEEP_TENSOR, NULL, &g, &ng);
    const char *schemes[] = {"int:bits=2", "int:bits=3", "int:bits=4", "int:bits=8"};
    int ns = 4, np = ng * ns;
    for (int mode = 0; mode < 2; mode++) {
        struct qsweep_spec s = cls_spec(&c, (enum qsweep_mode)mode, g, ng, schemes, ns);
        struct table one, two, resumed;
        s.threads = 1;
        table_init(&one, ng, ns);
        run_ok(&s, &one);
        s.threads = 2;
        table_init(&two, ng, ns);
        run_ok(&s, &two);
        /* half the points stored already: only the others run, as they were */
        unsigned char *done = calloc((size_t)np, 1);
        for (int i = 0; i < np; i++)
            done[i] = (i * 7) % 2;
        table_init(&resumed, ng, ns);
        resumed.done = done;
        run_ok(&s, &resumed);
        ck_assert_int_eq(resumed.n_points, np / 2);
        ck_assert_int_eq(resumed.last_done, np);
        for (int i = 0; i < np; i++) {
            ck_assert_int_eq(one.count[i], 1);
            ck_assert_int_eq(two.count[i], 1);
            assert_same_result(&one.r[i], &two.r[i]);
            ck_assert_int_eq(resumed.count[i], !done[i]);
            if (!done[i])
                assert_same_result(&one.r[i], &resumed.r[i]);
        }
        /* everything stored: nothing runs */
        memset(done, 1, (size_t)np);
        struct table none;
        table_init(&none, ng, ns);
        none.done = done;
        run_ok(&s, &none);
        ck_assert_int_eq(none.n_points, 0);
        ck_assert_int_eq(none.last_done, np);
        table_free(&none);
        free(done);
        table_free(&one);
        table_free(&two);
        table_free(&resumed);
    }
    qsweep_groups_free(g, ng);
    cls_close(&c);
}
END_TEST

START_TEST(test_cancel)
{
    struct cls c;
    cls_open(&c, DIGITS);
    struct qsweep_group *g;
    int ng;
    groups_of(c.m, QSWEEP_TENSOR, NULL, &g, &ng);
    const char *schemes[] = {"int:bits=2", "int:bits=4", "int:bits=8"};
    struct qsweep_spec s = cls_spec(&c, QSWEEP_ONE, g, ng, schemes, 3);
    s.threads = 1;
    atomic_int cancel;
    atomic_init(&cancel, 0);
    struct table t;
    table_init(&t, ng, 3);
    t.cancel = &cancel;
    t.cancel_after = 3;
    qerr err = {{0}};
    ck_assert_int_eq(run_table(&s, &t, &err), QEVAL_CANCELLED);
    ck_assert_int_eq(t.n_points, 3);
    ck_assert_int_eq(t.count[0] + t.count[1] + t.count[2], 3);
    table_free(&t);

    /* two threads: the sweep stops too, with every reported point whole */
    atomic_store(&cancel, 0);
    s.threads = 2;
    table_init(&t, ng, 3);
    t.cancel = &cancel;
    t.cancel_after = 3;
    ck_assert_int_eq(run_table(&s, &t, &err), QEVAL_CANCELLED);
    ck_assert(t.n_points >= 3 && t.n_points < ng * 3);
    table_free(&t);

    /* cancelled before it starts: no point at all */
    atomic_store(&cancel, 1);
    table_init(&t, ng, 3);
    t.cancel = &cancel;
    ck_assert_int_eq(run_table(&s, &t, &err), QEVAL_CANCELLED);
    ck_assert_int_eq(t.n_points, 0);
    table_free(&t);

    /* a callback that fails stops the sweep with its error */
    atomic_store(&cancel, 0);
    table_init(&t, ng, 3);
    t.refuse_at = 2;
    ck_assert_int_eq(run_table(&s, &t, &err), -1);
    ck_assert_str_eq(err.msg, "disk full (test)");
    ck_assert(t.n_points >= 2 && t.n_points < ng * 3);
    table_free(&t);
    qsweep_groups_free(g, ng);
    cls_close(&c);
}
END_TEST

START_TEST(test_spec_errors)
{
    struct cls c;
    cls_open(&c, DIGITS);
    struct qsweep_group *g;
    int ng;
    groups_of(c.m, QSWEEP_TENSOR, NULL, &g, &ng);
    const char *bad[] = {"int:bits=4", "nosuch:bits=4"};
    struct qsweep_spec s = cls_spec(&c, QSWEEP_ONE, g, ng, bad, 2);
    struct table t;
    table_init(&t, ng, 2);
    qerr err;
    ck_assert_int_eq(run_table(&s, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "scheme 2 'nosuch:bits=4'"), "%s", err.msg);
    ck_assert_int_eq(t.n_points, 0);
    const char *params[] = {"int:bits=99"};
    s.schemes = params;
    s.n_schemes = 1;
    ck_assert_int_eq(run_table(&s, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "scheme 1 'int:bits=99'") && strstr(err.msg, "bits"), "%s",
                  err.msg);
    const char *ok[] = {"int:bits=4"};
    s.schemes = ok;
    s.metric = "ppl";
    ck_assert_int_eq(run_table(&s, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "metric 'ppl'"), "%s", err.msg);
    s.metric = NULL;
    s.n_samples = c.n + 1;
    ck_assert_int_eq(run_table(&s, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "samples"), "%s", err.msg);
    s.n_samples = c.n;
    /* one tensor in two groups */
    int both[] = {g[0].tensors[0]};
    struct qsweep_group dup[2] = {g[0], g[1]};
    dup[1].tensors = both;
    s.groups = dup;
    s.n_groups = 2;
    ck_assert_int_eq(run_table(&s, &t, &err), -1);
    ck_assert_msg(strstr(err.msg, "'conv1.weight' is in groups"), "%s", err.msg);
    ck_assert_int_eq(t.n_points, 0);
    /* the float scheme keeps the group in float: no change at all, 32 bits a value */
    const char *fl[] = {"float"};
    s.groups = g;
    s.n_groups = ng;
    s.schemes = fl;
    table_free(&t);
    table_init(&t, ng, 1);
    run_ok(&s, &t);
    for (int i = 0; i < ng; i++) {
        ck_assert_uint_eq(t.r[i].bits, (uint64_t)g[i].numel * 32);
        ck_assert(fabs(t.r[i].change) < 1e-6);
    }
    table_free(&t);
    qsweep_groups_free(g, ng);
    cls_close(&c);
}
END_TEST

/* ---- prefix reuse ------------------------------------------------------------------------------ */

/* The same sweep with cuts and with full passes. */
static void prefix_vs_naive(const struct cls *c, enum qsweep_grouping how, size_t cache_bytes)
{
    struct qsweep_group *g;
    int ng;
    groups_of(c->m, how, NULL, &g, &ng);
    const char *schemes[] = {"int:bits=2", "int:bits=4", "int:bits=8"};
    struct qsweep_spec s = cls_spec(c, QSWEEP_ONE, g, ng, schemes, 3);
    s.cache_bytes = cache_bytes;
    struct table naive, reuse;
    table_init(&naive, ng, 3);
    table_init(&reuse, ng, 3);
    s.prefix_reuse = 0;
    run_ok(&s, &naive);
    s.prefix_reuse = 1;
    run_ok(&s, &reuse);
    for (int i = 0; i < ng * 3; i++) {
        ck_assert_int_eq(reuse.count[i], 1);
        assert_close_result(&naive.r[i], &reuse.r[i], 1e-6);
    }
    table_free(&naive);
    table_free(&reuse);
    qsweep_groups_free(g, ng);
}

START_TEST(test_prefix_digits)
{
    struct cls c;
    cls_open(&c, DIGITS);
    prefix_vs_naive(&c, QSWEEP_TENSOR, 0);
    prefix_vs_naive(&c, QSWEEP_ROLE, 0);
    /* room for some cuts only (conv3's input is 32x4x4 floats a sample) */
    prefix_vs_naive(&c, QSWEEP_TENSOR, (size_t)c.n * 32 * 4 * 4 * 4 + 100);
    prefix_vs_naive(&c, QSWEEP_TENSOR, 1);
    cls_close(&c);
}
END_TEST

/* A residual graph: fc1 relu fc2 relu fc3 add(fc3, relu1) fc4. The cut
 * before fc3 holds two values: relu2 (fc3's input) and relu1 (the add's). */
static const char *residual_model(void)
{
    const char *json =
        "{\"qlab_model\": 1, \"name\": \"residual\", \"weights\": [\"w.safetensors\"],\n"
        " \"input\": {\"shape\": [4]}, \"dataset\": \"data.safetensors\",\n"
        " \"graph\": [\n"
        "  {\"op\": \"linear\", \"name\": \"fc1\", \"weight\": \"fc1.weight\", \"bias\": \"fc1.bias\"},\n"
        "  {\"op\": \"relu\", \"name\": \"relu1\"},\n"
        "  {\"op\": \"linear\", \"name\": \"fc2\", \"weight\": \"fc2.weight\"},\n"
        "  {\"op\": \"relu\", \"name\": \"relu2\"},\n"
        "  {\"op\": \"linear\", \"name\": \"fc3\", \"weight\": \"fc3.weight\"},\n"
        "  {\"op\": \"add\", \"name\": \"sum\", \"input\": [\"fc3\", \"relu1\"]},\n"
        "  {\"op\": \"linear\", \"name\": \"fc4\", \"weight\": \"fc4.weight\", \"bias\": \"fc4.bias\"}\n"
        " ], \"output\": \"fc4\"}\n";
    const char *dir = tu_path("residual");
    static char path[1024];
    snprintf(path, sizeof path, "%s", dir);
    char file[1100];
    mkdir(path, 0777);
    snprintf(file, sizeof file, "%s/model.json", path);
    tu_write_file(file, json, strlen(json));

    uint32_t seed = 777;
    float w1[6 * 4], b1[6], w2[6 * 6], w3[6 * 6], w4[3 * 6], b4[3];
    float *all[] = {w1, b1, w2, w3, w4, b4};
    const int sizes[] = {24, 6, 36, 36, 18, 3};
    for (int k = 0; k < 6; k++)
        for (int i = 0; i < sizes[k]; i++) {
            seed = seed * 1103515245u + 12345u;
            all[k][i] = (float)((seed >> 16) & 0x7fff) / 16384.0f - 1.0f;
        }
    const int64_t s1[] = {6, 4}, s6[] = {6}, s66[] = {6, 6}, s4[] = {3, 6}, s3[] = {3};
    const struct st_write_tensor ts[] = {
        {"fc1.weight", QDT_F32, 2, s1, w1}, {"fc1.bias", QDT_F32, 1, s6, b1},
        {"fc2.weight", QDT_F32, 2, s66, w2}, {"fc3.weight", QDT_F32, 2, s66, w3},
        {"fc4.weight", QDT_F32, 2, s4, w4}, {"fc4.bias", QDT_F32, 1, s3, b4},
    };
    qerr err;
    snprintf(file, sizeof file, "%s/w.safetensors", path);
    ck_assert_msg(st_write(file, ts, 6, NULL, 0, &err) == 0, "%s", err.msg);

    enum { N = 150 };
    static float in[N * 4];
    static int32_t labels[N];
    for (int i = 0; i < N * 4; i++) {
        seed = seed * 1103515245u + 12345u;
        in[i] = (float)((seed >> 16) & 0x7fff) / 8192.0f - 2.0f;
    }
    for (int i = 0; i < N; i++)
        labels[i] = i % 3;
    const int64_t sin[] = {N, 4}, sl[] = {N};
    const struct st_write_tensor ds[] = {{"inputs", QDT_F32, 2, sin, in},
                                         {"labels", QDT_I32, 1, sl, labels}};
    snprintf(file, sizeof file, "%s/data.safetensors", path);
    ck_assert_msg(st_write(file, ds, 2, NULL, 0, &err) == 0, "%s", err.msg);
    return path;
}

/* Every cut of a graph, saved once, restarts a run with other weights
 * exactly as a full run with them. */
static void check_every_cut(const struct qmodel *m, const float *input, int n)
{
    struct qforward *f;
    qerr err;
    ck_assert_msg(qforward_new(m, n, &f, &err) == 0, "%s", err.msg);
    int nn = m->n_nodes, k = m->n_classes;
    int *cuts = malloc((size_t)nn * sizeof *cuts);
    float **saved = malloc((size_t)nn * sizeof *saved);
    for (int i = 0; i < nn; i++) {
        cuts[i] = i;
        int64_t floats = qforward_cut_floats(f, i);
        ck_assert_int_gt(floats, 0);
        saved[i] = malloc((size_t)(n * floats) * sizeof(float));
    }
    ck_assert_int_eq(qforward_cut_floats(f, -1), -1);
    ck_assert_int_eq(qforward_cut_floats(f, nn), -1);
    float *y0 = malloc((size_t)(n * k) * sizeof *y0), *y1 = malloc((size_t)(n * k) * sizeof *y1),
          *y2 = malloc((size_t)(n * k) * sizeof *y2);
    ck_assert_msg(qforward_run_capture(f, NULL, input, n, y0, nn, cuts, saved, &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(qforward_run(f, NULL, input, n, y1, &err) == 0, "%s", err.msg);
    ck_assert_mem_eq(y0, y1, (size_t)(n * k) * sizeof *y0);
    /* other weights from each cut on: the last weight tensor scaled */
    const float **w = calloc((size_t)m->n_tensors, sizeof *w);
    int last = -1;
    for (int t = 0; t < m->n_tensors; t++)
        if (m->roles[t] == QROLE_WEIGHT)
            last = t;
    float *scaled = malloc((size_t)m->tensors[last]->numel * sizeof *scaled);
    for (int64_t i = 0; i < m->tensors[last]->numel; i++)
        scaled[i] = m->tensors[last]->f32[i] * 0.75f;
    w[last] = scaled;
    ck_assert_msg(qforward_run(f, w, input, n, y1, &err) == 0, "%s", err.msg);
    for (int i = 0; i <= m->tensor_node[last]; i++) {
        ck_assert_msg(qforward_run_from(f, w, i, saved[i], n, y2, &err) == 0, "%s", err.msg);
        ck_assert_msg(memcmp(y1, y2, (size_t)(n * k) * sizeof *y1) == 0, "cut before node %d", i);
    }
    ck_assert_int_eq(qforward_run_from(f, w, nn, saved[0], n, y2, &err), -1);
    ck_assert_msg(strstr(err.msg, "cut before node"), "%s", err.msg);
    ck_assert_int_eq(qforward_run_from(f, w, 0, saved[0], n + 1, y2, &err), -1);
    free(scaled);
    free(w);
    for (int i = 0; i < nn; i++)
        free(saved[i]);
    free(saved);
    free(cuts);
    free(y0);
    free(y1);
    free(y2);
    qforward_free(f);
}

START_TEST(test_forward_cuts)
{
    struct cls c;
    cls_open(&c, residual_model());
    struct qforward *f;
    qerr err;
    ck_assert_msg(qforward_new(c.m, 8, &f, &err) == 0, "%s", err.msg);
    /* input | fc1 relu1 (in place) | fc2 relu2 | fc3 sum | fc4 */
    static const int64_t want[] = {4, 6, 6, 6 + 6, 6 + 6, 6 + 6, 6};
    ck_assert_int_eq(c.m->n_nodes, 7);
    for (int i = 0; i < 7; i++)
        ck_assert_msg(qforward_cut_floats(f, i) == want[i], "cut %d: %lld floats", i,
                      (long long)qforward_cut_floats(f, i));
    qforward_free(f);
    check_every_cut(c.m, c.d->inputs, 37);
    cls_close(&c);

    /* digits-cnn: conv -> relu fused in place, pools, a flatten view */
    cls_open(&c, DIGITS);
    check_every_cut(c.m, c.d->inputs, 20);
    cls_close(&c);
}
END_TEST

START_TEST(test_prefix_residual)
{
    struct cls c;
    cls_open(&c, residual_model());
    prefix_vs_naive(&c, QSWEEP_TENSOR, 0);
    prefix_vs_naive(&c, QSWEEP_TENSOR, (size_t)c.n * 12 * 4);
    cls_close(&c);
}
END_TEST

/* ---- language models ------------------------------------------------------------------------------ */

struct lm {
    struct qmodel *m;
    struct qlm_data data;
    struct qlm_opts o;
    char ref[1024];
    struct qplugin_host *h;
};

static struct qsweep_spec lm_spec(const struct lm *x, enum qsweep_mode mode,
                                  const struct qsweep_group *g, int ng,
                                  const char *const *schemes, int ns)
{
    return (struct qsweep_spec){.model = x->m, .host = x->h, .mode = mode, .groups = g,
                                .n_groups = ng, .schemes = schemes, .n_schemes = ns,
                                .tokens = &x->data, .lm = x->o, .lm_ref_path = x->ref,
                                .threads = 2, .prefix_reuse = 1};
}

static void lm_reference(struct lm *x, const char *name)
{
    snprintf(x->ref, sizeof x->ref, "%s", tu_path(name));
    struct qlm_metrics fm;
    qerr err;
    ck_assert_msg(qlm_perplexity(x->m, NULL, x->data.tokens, x->data.n, &x->o, NULL, NULL, x->ref,
                                 &fm, &err) == 0, "%s", err.msg);
    x->h = host_new(NULL);
}

/* n pseudo-random ids of the tiny vocabulary as the model's data */
static void random_tokens(struct lm *x, int32_t *toks, int n, uint32_t seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        toks[i] = (int32_t)((seed >> 16) % VOCAB);
    }
    x->data.tokens = toks;
    x->data.n = n;
}

START_TEST(test_lm_tiny)
{
    struct lm x = {.m = tiny_lm(), .o = {.n_ctx = 16, .n_chunks = 3, .threads = 1}};
    int32_t toks[64];
    random_tokens(&x, toks, 64, 99u);
    lm_reference(&x, "tiny.ref");
    struct qsweep_group *g;
    int ng;
    groups_of(x.m, QSWEEP_BLOCK, NULL, &g, &ng);
    const char *schemes[] = {"int:bits=2", "int:bits=8"};
    for (int mode = 0; mode < 2; mode++) {
        struct qsweep_spec s = lm_spec(&x, (enum qsweep_mode)mode, g, ng, schemes, 2);
        struct table naive, reuse;
        table_init(&naive, ng, 2);
        table_init(&reuse, ng, 2);
        s.prefix_reuse = 0;
        run_ok(&s, &naive);
        s.prefix_reuse = 1;
        s.threads = 1;
        run_ok(&s, &reuse);
        for (int i = 0; i < ng; i++) {
            ck_assert_int_eq(naive.count[2 * i] + naive.count[2 * i + 1], 2);
            const struct qsweep_result *r2 = &naive.r[2 * i], *r8 = &naive.r[2 * i + 1];
            ck_assert(r2->lm.has_ref);
            ck_assert_int_eq(r2->lm.n_tokens_scored, 3 * 7);
            ck_assert(same_bits(r2->change, r2->lm.kld_mean));
            ck_assert_msg(r8->change < r2->change, "%s: KLD %g (8 bits) vs %g (2 bits)",
                          g[i].name, r8->change, r2->change);
            ck_assert(r8->change >= 0);
            /* a pass from a saved cut is the full pass to the bit */
            for (int k = 0; k < 2; k++) {
                assert_close_result(&naive.r[2 * i + k], &reuse.r[2 * i + k], 1e-6);
                ck_assert(same_bits(naive.r[2 * i + k].change, reuse.r[2 * i + k].change));
            }
        }
        table_free(&naive);
        table_free(&reuse);
    }
    /* ppl and same_top changes */
    struct qsweep_spec s = lm_spec(&x, QSWEEP_ONE, g, ng, schemes, 2);
    s.metric = "ppl";
    struct table t;
    table_init(&t, ng, 2);
    run_ok(&s, &t);
    ck_assert(same_bits(t.r[0].change, t.r[0].lm.ppl - t.r[0].lm.ppl_ref));
    table_free(&t);
    s.metric = "same_top";
    table_init(&t, ng, 2);
    run_ok(&s, &t);
    ck_assert(same_bits(t.r[2].change, 100.0 - t.r[2].lm.same_top_pct));
    table_free(&t);
    char *text = qsweep_point_recipe(&s, 1, 0);
    ck_assert_str_eq(text, "blk.0.attn_q.weight=int:bits=2;blk.0.attn_k.weight=int:bits=2;"
                           "blk.0.attn_v.weight=int:bits=2;blk.0.attn_output.weight=int:bits=2;"
                           "blk.0.ffn_gate.weight=int:bits=2;blk.0.ffn_up.weight=int:bits=2;"
                           "blk.0.ffn_down.weight=int:bits=2");
    free(text);
    qsweep_groups_free(g, ng);
    qhost_free(x.h);
    qmodel_free(x.m);
}
END_TEST

/* Weights of one point's recipe, dequantized through the ordinary path. */
static void point_weights(const struct qmodel *m, const struct qplugin_host *h,
                          const struct qsweep_spec *s, int64_t g, int64_t sc, struct qweights *w)
{
    char *text = qsweep_point_recipe(s, g, sc);
    struct qrecipe rec;
    struct qassign a;
    qerr err;
    ck_assert_msg(qrecipe_parse(text, &rec, &err) == 0, "%s: %s", text, err.msg);
    ck_assert_msg(qassign_resolve(&rec, m, h, &a, &err) == 0, "%s: %s", text, err.msg);
    ck_assert_msg(qweights_build(m, &a, NULL, NULL, NULL, w, &err) == 0, "%s", err.msg);
    qassign_clear(&a);
    qrecipe_clear(&rec);
    free(text);
}

/* Proxies: weight SQNR by hand; the output error of a half-block against
 * a pass from its cut (qllm_forward_cut, tested against full passes);
 * float is error-free, more bits less error; one group at a time only. */
START_TEST(test_proxies)
{
    struct lm x = {.m = tiny_lm(), .o = {.n_ctx = 16, .n_chunks = 3, .threads = 1}};
    int32_t toks[64];
    random_tokens(&x, toks, 64, 7u);
    x.h = host_new(NULL);
    struct qsweep_group *g;
    int ng;
    groups_of(x.m, QSWEEP_TENSOR, NULL, &g, &ng);
    const char *schemes[] = {"int:bits=2", "int:bits=8", "float"};
    struct qsweep_spec s = lm_spec(&x, QSWEEP_ONE, g, ng, schemes, 3);
    s.lm_ref_path = NULL; /* proxies need no reference */
    const char *metrics[] = {"weight_sqnr", "output_sqnr"};
    struct table t[2];
    for (int k = 0; k < 2; k++) {
        s.metric = metrics[k];
        table_init(&t[k], ng, 3);
        run_ok(&s, &t[k]);
        for (int i = 0; i < ng; i++) {
            const struct qsweep_result *r = &t[k].r[3 * i];
            ck_assert_msg(r[2].proxy.nsr == 0 && isinf(r[2].proxy.sqnr_db),
                          "%s %s: float has error %g", metrics[k], g[i].name, r[2].proxy.nsr);
            ck_assert_msg(r[1].proxy.nsr > 0 && r[1].proxy.nsr < r[0].proxy.nsr,
                          "%s %s: 8 bits %g vs 2 bits %g", metrics[k], g[i].name,
                          r[1].proxy.nsr, r[0].proxy.nsr);
            ck_assert(same_bits(r[0].change, r[0].proxy.nsr));
            ck_assert(fabs(r[0].proxy.sqnr_db + 10 * log10(r[0].proxy.nsr)) < 1e-9);
        }
    }
    /* weight SQNR of every group at 2 bits, by hand */
    for (int i = 0; i < ng; i++) {
        struct qweights w;
        point_weights(x.m, x.h, &s, i, 0, &w);
        double e = 0, v = 0;
        for (int j = 0; j < g[i].n_tensors; j++) {
            const struct qtensor *q = x.m->tensors[g[i].tensors[j]];
            for (int64_t k = 0; k < q->numel; k++) {
                double d = (double)w.ptrs[g[i].tensors[j]][k] - q->f32[k];
                e += d * d;
                v += (double)q->f32[k] * q->f32[k];
            }
        }
        ck_assert_msg(fabs(t[0].r[3 * i].proxy.nsr - e / v) <= 1e-12 * (e / v), "%s: %g vs %g",
                      g[i].name, t[0].r[3 * i].proxy.nsr, e / v);
        qweights_clear(&w);
    }
    /* the output error of blk.1.ffn_down (the last half-block) by hand: the
     * calibration rows are the first chunk (n_ctx 16), BOS first */
    int gi = -1;
    for (int i = 0; i < ng; i++)
        if (!strcmp(g[i].name, "blk.1.ffn_down.weight"))
            gi = i;
    ck_assert_int_ge(gi, 0);
    const int n = 16, L = 2;
    int32_t cal[16];
    memcpy(cal, toks, sizeof cal);
    cal[0] = 1; /* the tiny model has no tokenizer: llama's BOS */
    struct qllm_cut cuts[2] = {{L - 1, 1}, {L, 0}};
    float *xs[2], *xq = malloc((size_t)n * DIM * sizeof(float));
    float *logits = malloc((size_t)n * VOCAB * sizeof(float));
    for (int k = 0; k < 2; k++)
        xs[k] = malloc((size_t)n * DIM * sizeof(float));
    struct qllm_state *st;
    qerr err;
    ck_assert_int_eq(qllm_state_new_threads(x.m, n, 1, &st, &err), 0);
    ck_assert_msg(qllm_forward_cut(st, NULL, cal, n, 0, logits, NULL, NULL, 2, cuts, xs, &err) == 0,
                  "%s", err.msg);
    struct qweights w;
    point_weights(x.m, x.h, &s, gi, 0, &w);
    ck_assert_msg(qllm_forward_cut(st, w.ptrs, cal, n, 0, logits, &cuts[0], xs[0], 1, &cuts[1],
                                   &xq, &err) == 0, "%s", err.msg);
    double e = 0, v = 0;
    for (int i = 0; i < n * DIM; i++) {
        e += ((double)xq[i] - xs[1][i]) * ((double)xq[i] - xs[1][i]);
        v += ((double)xs[1][i] - xs[0][i]) * ((double)xs[1][i] - xs[0][i]);
    }
    ck_assert_msg(fabs(t[1].r[3 * gi].proxy.nsr - e / v) <= 1e-9 * (e / v), "%g vs %g",
                  t[1].r[3 * gi].proxy.nsr, e / v);
    qweights_clear(&w);
    qllm_state_free(st);
    free(xq);
    free(logits);
    free(xs[0]);
    free(xs[1]);
    /* a classifier's layer outputs: float error-free, 8 bits below 2 */
    struct cls c;
    cls_open(&c, DIGITS);
    struct qsweep_group *cg;
    int ncg;
    groups_of(c.m, QSWEEP_TENSOR, NULL, &cg, &ncg);
    struct qsweep_spec cs = cls_spec(&c, QSWEEP_ONE, cg, ncg, schemes, 3);
    cs.metric = "output_sqnr";
    cs.ref_logits = NULL;
    struct table ct;
    table_init(&ct, ncg, 3);
    run_ok(&cs, &ct);
    for (int i = 0; i < ncg; i++) {
        const struct qsweep_result *r = &ct.r[3 * i];
        ck_assert(r[2].proxy.nsr == 0);
        ck_assert_msg(r[1].proxy.nsr > 0 && r[1].proxy.nsr < r[0].proxy.nsr, "%s", cg[i].name);
    }
    table_free(&ct);
    qsweep_groups_free(cg, ncg);
    cls_close(&c);
    /* leave-one-out has no proxy */
    s.mode = QSWEEP_LOO;
    struct table bad;
    table_init(&bad, ng, 3);
    ck_assert_int_eq(run_table(&s, &bad, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "one group at a time"));
    table_free(&bad);
    table_free(&t[0]);
    table_free(&t[1]);
    qsweep_groups_free(g, ng);
    qhost_free(x.h);
    qmodel_free(x.m);
}
END_TEST

/* stories260K per tensor, 4 chunks of 128 tokens. */
START_TEST(test_real_stories260k)
{
    struct lm x = {.o = {.n_ctx = 128, .n_chunks = 4, .threads = 0}};
    qerr err;
    ck_assert_msg(qllm_load_llama2c(tu_shared("stories260k/stories260K.bin"),
                                    tu_shared("stories260k/tok512.bin"), &x.m, &err) == 0, "%s",
                  err.msg);
    size_t len;
    char *text = tu_read_file(tu_shared("tinystories/eval-32k.txt"), &len);
    ck_assert_ptr_nonnull(text);
    int32_t *ids;
    int64_t n;
    ck_assert_msg(qtok_encode(x.m->llm->tok, text, len, 1, &ids, &n, &err) == 0, "%s", err.msg);
    x.data.tokens = ids;
    x.data.n = n;
    lm_reference(&x, "stories.ref");
    struct qsweep_group *g;
    int ng;
    groups_of(x.m, QSWEEP_TENSOR, NULL, &g, &ng);
    ck_assert_int_eq(ng, 1 + 5 * 7); /* token_embd (the output is tied to it) and 7 per block */
    const char *schemes[] = {"int:bits=4", "int:bits=8"};
    struct qsweep_spec s = lm_spec(&x, QSWEEP_ONE, g, ng, schemes, 2);
    struct table naive, reuse;
    table_init(&naive, ng, 2);
    table_init(&reuse, ng, 2);
    s.threads = 0;
    s.prefix_reuse = 0;
    double t0 = now_s();
    run_ok(&s, &naive);
    double t1 = now_s();
    s.prefix_reuse = 1;
    run_ok(&s, &reuse);
    double t2 = now_s();
    for (int i = 0; i < ng; i++) {
        const struct qsweep_result *r4 = &naive.r[2 * i], *r8 = &naive.r[2 * i + 1];
        ck_assert_int_eq(naive.count[2 * i] + naive.count[2 * i + 1], 2);
        ck_assert_int_eq(r4->lm.n_tokens_scored, 4 * 63);
        ck_assert_msg(r8->change < r4->change, "%s: KLD %g (8 bits) vs %g (4 bits)", g[i].name,
                      r8->change, r4->change);
        for (int k = 0; k < 2; k++) {
            assert_close_result(&naive.r[2 * i + k], &reuse.r[2 * i + k], 1e-6);
            ck_assert(same_bits(naive.r[2 * i + k].change, reuse.r[2 * i + k].change));
        }
    }
    fprintf(stderr, "stories260K per-tensor sweep, %d points: %.1f points/s full passes, "
            "%.1f points/s with prefix reuse\n", 2 * ng, 2 * ng / (t1 - t0), 2 * ng / (t2 - t1));
    table_free(&naive);
    table_free(&reuse);
    qsweep_groups_free(g, ng);
    qhost_free(x.h);
    free(ids);
    free(text);
    qmodel_free(x.m);
}
END_TEST

/* Speed of the digits-cnn per-tensor sweep, with and without cuts (printed). */
START_TEST(test_speed_digits)
{
    struct cls c;
    cls_open(&c, DIGITS);
    struct qsweep_group *g;
    int ng;
    groups_of(c.m, QSWEEP_TENSOR, NULL, &g, &ng);
    const char *schemes[] = {"int:bits=2", "int:bits=3", "int:bits=4", "int:bits=5",
                             "int:bits=6", "int:bits=8"};
    struct qsweep_spec s = cls_spec(&c, QSWEEP_ONE, g, ng, schemes, 6);
    s.threads = 0;
    double speed[2];
    for (int reuse = 0; reuse < 2; reuse++) {
        s.prefix_reuse = reuse;
        struct table t;
        table_init(&t, ng, 6);
        double t0 = now_s();
        run_ok(&s, &t);
        speed[reuse] = ng * 6 / (now_s() - t0);
        ck_assert_int_eq(t.n_points, ng * 6);
        table_free(&t);
    }
    fprintf(stderr, "digits-cnn per-tensor sweep, %d points: %.1f points/s full passes, "
            "%.1f points/s with prefix reuse\n", ng * 6, speed[0], speed[1]);
    qsweep_groups_free(g, ng);
    cls_close(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sweep");
    TCase *groups = tcase_create("Groups");
    tcase_add_test(groups, test_names);
    tcase_add_test(groups, test_groups_digits);
    tcase_add_test(groups, test_groups_glob_errors);
    tcase_add_test(groups, test_groups_lm);
    suite_add_tcase(s, groups);

    TCase *core = tcase_create("Core");
    tcase_set_timeout(core, 120);
    tcase_add_test(core, test_digits_one);
    tcase_add_test(core, test_digits_loo);
    tcase_add_test(core, test_lm_tiny);
    tcase_add_test(core, test_proxies);
    suite_add_tcase(s, core);

    TCase *prefix = tcase_create("Prefix");
    tcase_set_timeout(prefix, 120);
    tcase_add_test(prefix, test_forward_cuts);
    tcase_add_test(prefix, test_prefix_digits);
    tcase_add_test(prefix, test_prefix_residual);
    suite_add_tcase(s, prefix);

    TCase *det = tcase_create("Determinism");
    tcase_set_timeout(det, 120);
    tcase_add_test(det, test_threads_and_resume);
    tcase_add_test(det, test_cancel);
    suite_add_tcase(s, det);

    TCase *limits = tcase_create("Limits");
    tcase_set_timeout(limits, 60);
    tcase_add_test(limits, test_spec_errors);
    suite_add_tcase(s, limits);

    TCase *speed = tcase_create("Speed");
    tcase_set_timeout(speed, 120);
    tcase_add_test(speed, test_speed_digits);
    suite_add_tcase(s, speed);

    TCase *real = tcase_create("Real");
    tcase_set_timeout(real, 600);
    tcase_add_test(real, test_real_stories260k);
    const char *need[] = {"stories260k/stories260K.bin", "stories260k/tok512.bin",
                          "tinystories/eval-32k.txt"};
    tu_add_if_shared(s, real, need, 3);
    return tu_run(s);
}
