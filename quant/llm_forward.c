/* llm_forward.c — the llama forward pass: batched positions through OpenBLAS, a KV cache, causal GQA, on all cores. */
#include "llm.h"
#include "llm_kernels.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Positions that go through the matrices together; longer calls run in
 * slices of this many, so activations stay small whatever n_ctx is. */
#define QLLM_MAX_BATCH 512
#define QLLM_MAX_THREADS 64
/* Elementwise loops run in blocks of this many with a constant inner trip
 * count, which GCC vectorizes at -O2. */
#define QLLM_BLOCK 8
/* Below this much work (multiply-adds; an expf counts 8; ~10 us) a job
 * runs on the calling thread alone: handing it out costs more, and much
 * more when a busy machine has taken the worker's core. */
#define QLLM_PAR_WORK (1 << 17)
/* Attention weights held per thread: query rows are taken in blocks that
 * fit (at least one row). */
#define QLLM_SCORE_FLOATS (1 << 20)
/* Matrix products are split between threads in multiples of this many
 * output features, so each part keeps whole kernel tiles. */
#define QLLM_COL_TILE 16

/* ---- types ----------------------------------------------------------------- */

/* Float values of one layer's tensors for the current call (NULL: absent bias). */
struct layer_w {
    const float *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv;
    const float *ffn_norm, *gate, *up, *down;
};

/* range_fn runs items [begin, end) of a job as part `part`. */
typedef void (*range_fn)(void *ctx, int64_t begin, int64_t end, int part);

/* Worker threads that live as long as the state and wait for jobs. */
struct pool {
    pthread_mutex_t mu;         /* with go: where idle workers sleep */
    pthread_cond_t go;
    int mu_ok, go_ok;           /* initialized, for a half-built pool */
    int n_workers;              /* started; worker w runs part w + 1 */
    pthread_t tid[QLLM_MAX_THREADS];
    struct worker { struct pool *p; int part; } w[QLLM_MAX_THREADS];
    atomic_uint gen;            /* job number: moves when a job is posted */
    atomic_int busy;            /* workers still on the job */
    atomic_int sleepers;        /* workers waiting on go */
    atomic_int quit;
    range_fn fn;                /* the job */
    void *ctx;
    int64_t total;
    int parts;
};

struct qllm_state {
    const struct qmodel *m;
    struct qllm_config c;
    int n_ctx;              /* positions the cache holds */
    int nb_max;             /* positions per slice: min(n_ctx, QLLM_MAX_BATCH) */
    int q_dim, kv_dim;      /* n_heads * head_dim, n_kv_heads * head_dim */
    int threads;            /* cores: the pool's workers + the caller */
    int score_rows;         /* query rows whose attention weights a thread holds */
    float *k_cache;         /* [n_layers][n_ctx][kv_dim] */
    float *v_cache;         /* [n_layers][n_ctx][kv_dim] */
    float *x;               /* [nb_max, dim] residual stream */
    float *xb;              /* [nb_max, dim] normalized input of a branch */
    float *xo;              /* [nb_max, dim] output of a branch */
    float *q;               /* [nb_max, q_dim] queries */
    float *att;             /* [nb_max, q_dim] attention output */
    float *hg, *hu;         /* [nb_max, hidden_dim] gate, up */
    float *rope;            /* [nb_max, head_dim/2, 2] cos, sin */
    float *scores;          /* [threads][score_rows, n_ctx] attention weights */
    const float *emb, *out_norm, *out;  /* this call's weights */
    struct layer_w *lw;     /* n_layers */
    struct pool pool;
};

/* ---- kernels ----------------------------------------------------------------- */

void qllm_rmsnorm(float *o, const float *x, const float *w, int size, float eps)
{
    float ss = 0.0f;
    for (int j = 0; j < size; j++)
        ss += x[j] * x[j];
    ss /= size;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    int j = 0;
    for (; j + QLLM_BLOCK <= size; j += QLLM_BLOCK)
        for (int k = 0; k < QLLM_BLOCK; k++)
            o[j + k] = w[j + k] * (ss * x[j + k]);
    for (; j < size; j++)
        o[j] = w[j] * (ss * x[j]);
}

void qllm_rope_table(float *cs, int pos0, int n, int hd, float theta)
{
    const int half = hd / 2;
    for (int j = 0; j < half; j++) {
        const float freq = 1.0f / powf(theta, (float)(2 * j) / (float)hd);
        for (int i = 0; i < n; i++) {
            const float val = (float)(pos0 + i) * freq;
            cs[((size_t)i * half + j) * 2] = cosf(val);
            cs[((size_t)i * half + j) * 2 + 1] = sinf(val);
        }
    }
}

void qllm_rope_row(float *x, int n_heads, int hd, const float *cs, enum qllm_rope layout)
{
    const int half = hd / 2;
    /* pair j is (a, b) = (2j, 2j+1) or (j, j + half) */
    const int step = layout == QLLM_ROPE_HALF ? 1 : 2;
    const int other = layout == QLLM_ROPE_HALF ? half : 1;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (int j = 0; j < half; j++) {
            const float fcr = cs[2 * j], fci = cs[2 * j + 1];
            float *a = v + j * step, *b = a + other;
            const float v0 = *a, v1 = *b;
            *a = v0 * fcr - v1 * fci;
            *b = v0 * fci + v1 * fcr;
        }
    }
}

int qllm_kv_head(int h, int n_heads, int n_kv_heads)
{
    return h / (n_heads / n_kv_heads);
}

/* x[j] /= d for j < n, in blocks the compiler turns into vector divides:
 * each element still gets one IEEE division, so results are unchanged. */
static void div_all(float *x, int n, float d)
{
    int j = 0;
    for (; j + QLLM_BLOCK <= n; j += QLLM_BLOCK)
        for (int k = 0; k < QLLM_BLOCK; k++)
            x[j + k] /= d;
    for (; j < n; j++)
        x[j] /= d;
}

/* softmax in place, max-subtracted, the sum in float in order, as llama2.c */
static void softmax(float *x, int size)
{
    float max_val = x[0];
    for (int i = 1; i < size; i++)
        if (x[i] > max_val)
            max_val = x[i];
    float sum = 0.0f;
    for (int i = 0; i < size; i++) {
        x[i] = expf(x[i] - max_val);
        sum += x[i];
    }
    div_all(x, size, sum);
}

/* Attention of query rows i0..i1-1 (positions pos+i0..) of head h over
 * keys 0..pos+i1-1: scores [rows, len] = q_h . k_g^T (sgemm), each row's
 * keys 0..pos+i scaled by 1/sqrt(hd) (divided, as llama2.c) and
 * softmaxed, the rest 0, then out_h = scores . v_g (sgemm). */
static void att_block(const float *q, const float *kc, const float *vc, float *out, int pos,
                      int n_heads, int n_kv, int hd, int h, int i0, int i1, float *scores)
{
    const int rows = i1 - i0, len = pos + i1, q_dim = n_heads * hd, kv_dim = n_kv * hd;
    const size_t g = (size_t)qllm_kv_head(h, n_heads, n_kv) * hd;
    const float *qh = q + (size_t)i0 * q_dim + (size_t)h * hd;
    float *oh = out + (size_t)i0 * q_dim + (size_t)h * hd;
    if (rows == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, len, hd, 1.0f, kc + g, kv_dim, qh, 1, 0.0f,
                    scores, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, len, hd, 1.0f, qh, q_dim,
                    kc + g, kv_dim, 0.0f, scores, len);
    const float root = sqrtf((float)hd);
    for (int r = 0; r < rows; r++) {
        float *row = scores + (size_t)r * len;
        const int keep = pos + i0 + r + 1;
        div_all(row, keep, root);
        softmax(row, keep);
        memset(row + keep, 0, (size_t)(len - keep) * sizeof *row);
    }
    if (rows == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, len, hd, 1.0f, vc + g, kv_dim, scores, 1, 0.0f,
                    oh, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, len, 1.0f, scores, len,
                    vc + g, kv_dim, 0.0f, oh, q_dim);
}

/* Heads h0..h1-1 of n query rows, rows taken block_rows at a time. */
static void att_heads(const float *q, const float *kc, const float *vc, float *out, int n,
                      int pos, int n_heads, int n_kv, int hd, int h0, int h1, int block_rows,
                      float *scores)
{
    for (int h = h0; h < h1; h++)
        for (int i0 = 0; i0 < n; i0 += block_rows)
            att_block(q, kc, vc, out, pos, n_heads, n_kv, hd, h, i0,
                      i0 + block_rows < n ? i0 + block_rows : n, scores);
}

void qllm_attention(const float *q, const float *kc, const float *vc, float *out, int n, int pos,
                    int n_heads, int n_kv, int hd, int h0, int h1, float *scores)
{
    att_heads(q, kc, vc, out, n, pos, n_heads, n_kv, hd, h0, h1, n, scores);
}

void qllm_swiglu(float *gate, const float *up, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float val = gate[i];
        val *= 1.0f / (1.0f + expf(-val));
        gate[i] = val * up[i];
    }
}

/* ---- thread pool --------------------------------------------------------------- */

/* Between jobs a worker spins this many times (~0.1 ms) before it sleeps:
 * the jobs of one forward call come microseconds apart, and a futex wake
 * costs more than most of them. */
#define QLLM_SPINS 4096

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->quit)) {
            if (++spins < QLLM_SPINS) {
                cpu_relax();
                continue;
            }
            /* sleepers is raised before gen is read again under the lock,
             * and the dispatcher raises gen before it reads sleepers: one
             * of the two sees the other (all seq_cst) */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->go, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->quit))
            break;
        seen = g;
        const int parts = p->parts, k = w->part;
        if (k < parts)
            p->fn(p->ctx, p->total * k / parts, p->total * (k + 1) / parts, k);
        atomic_fetch_sub(&p->busy, 1);
    }
    return NULL;
}

/* Starts up to threads - 1 workers; fewer (even none) if the system
 * refuses: jobs then run on fewer threads, still correctly. */
static void pool_start(struct pool *p, int threads)
{
    atomic_init(&p->gen, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
    p->mu_ok = pthread_mutex_init(&p->mu, NULL) == 0;
    p->go_ok = pthread_cond_init(&p->go, NULL) == 0;
    if (!p->mu_ok || !p->go_ok)
        return;
    for (int i = 0; i + 1 < threads; i++) {
        p->w[i] = (struct worker){p, i + 1};
        if (pthread_create(&p->tid[i], NULL, worker_main, &p->w[i]) != 0)
            break;
        p->n_workers++;
    }
}

static void pool_stop(struct pool *p)
{
    if (p->n_workers) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->quit, 1);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_workers; i++)
            pthread_join(p->tid[i], NULL);
    }
    if (p->go_ok)
        pthread_cond_destroy(&p->go);
    if (p->mu_ok)
        pthread_mutex_destroy(&p->mu);
}

/* fn over items [0, total) in contiguous parts, the caller running part 0;
 * on the caller alone when work (multiply-adds or so) is small. */
static void pool_run(struct pool *p, int64_t total, double work, range_fn fn, void *ctx)
{
    int parts = p->n_workers + 1;
    if (parts > total)
        parts = (int)total;
    if (parts <= 1 || work < QLLM_PAR_WORK) {
        fn(ctx, 0, total, 0);
        return;
    }
    /* the job's fields are published by the seq_cst increment of gen */
    p->fn = fn;
    p->ctx = ctx;
    p->total = total;
    p->parts = parts;
    atomic_store(&p->busy, p->n_workers);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, total / parts, 0);
    for (int spins = 0; atomic_load(&p->busy) > 0;) {
        if (spins < QLLM_SPINS) {
            spins++;
            cpu_relax();
        } else {
            sched_yield(); /* a worker lost its core: let it have ours */
        }
    }
}

/* ---- parallel jobs ------------------------------------------------------------ */

/* y[r, 0..out) (rows ldy apart) = x[r, 0..in) . W^T for r < n; W [out, in] */
static void matmul(float *y, int ldy, const float *x, int n, int in, const float *w, int out)
{
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, 0.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in,
                    0.0f, y, ldy);
}

struct mm_job {
    float *y;
    int ldy;
    const float *x;
    int n, in, out;
    const float *w;
};

/* output features [b, e) x QLLM_COL_TILE */
static void mm_range(void *ctx, int64_t b, int64_t e, int part)
{
    (void)part;
    const struct mm_job *j = ctx;
    int64_t c0 = b * QLLM_COL_TILE, c1 = e * QLLM_COL_TILE < j->out ? e * QLLM_COL_TILE : j->out;
    if (c1 > c0)
        matmul(j->y + c0, j->ldy, j->x, j->n, j->in, j->w + c0 * j->in, (int)(c1 - c0));
}

/* The product split over the pool by output features: every thread runs
 * OpenBLAS on its share of W's rows. */
static void mm(struct qllm_state *s, float *y, int ldy, const float *x, int n, int in,
               const float *w, int out)
{
    struct mm_job j = {y, ldy, x, n, in, out, w};
    int64_t tiles = (out + QLLM_COL_TILE - 1) / QLLM_COL_TILE;
    pool_run(&s->pool, tiles, (double)n * in * out, mm_range, &j);
}

static void add_bias(float *y, int ldy, int n, const float *b, int out)
{
    if (!b)
        return;
    for (int r = 0; r < n; r++)
        for (int j = 0; j < out; j++)
            y[(size_t)r * ldy + j] += b[j];
}

struct norm_job {
    float *o;
    const float *x, *w;
    int dim;
    float eps;
};

static void norm_rows(void *ctx, int64_t b, int64_t e, int part)
{
    (void)part;
    const struct norm_job *j = ctx;
    for (int64_t r = b; r < e; r++)
        qllm_rmsnorm(j->o + r * j->dim, j->x + r * j->dim, j->w, j->dim, j->eps);
}

/* o[r] = rmsnorm(x[r]) for rows r < rows */
static void norm_all(struct qllm_state *s, float *o, const float *x, const float *w, int rows)
{
    struct norm_job j = {o, x, w, s->c.dim, s->c.norm_eps};
    pool_run(&s->pool, rows, (double)rows * s->c.dim, norm_rows, &j);
}

struct att_job {
    struct qllm_state *s;
    const float *kc, *vc;
    int n, pos;
};

/* heads [b, e), with this part's own score rows */
static void att_range(void *ctx, int64_t b, int64_t e, int part)
{
    const struct att_job *j = ctx;
    struct qllm_state *s = j->s;
    const struct qllm_config *c = &s->c;
    att_heads(s->q, j->kc, j->vc, s->att, j->n, j->pos, c->n_heads, c->n_kv_heads, c->head_dim,
              (int)b, (int)e, s->score_rows,
              s->scores + (size_t)part * s->score_rows * s->n_ctx);
}

struct swiglu_job {
    float *gate;
    const float *up;
};

static void swiglu_range(void *ctx, int64_t b, int64_t e, int part)
{
    (void)part;
    const struct swiglu_job *j = ctx;
    qllm_swiglu(j->gate + b, j->up + b, e - b);
}

/* ---- state ------------------------------------------------------------------- */

static const char *model_src(const struct qmodel *m)
{
    return m->path ? m->path : m->name ? m->name : "model";
}

/* *out = a * b * c floats, or -1 when that overflows size_t bytes */
static int floats3(size_t a, size_t b, size_t c, size_t *out)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r) || __builtin_mul_overflow(r, c, &r) ||
        __builtin_mul_overflow(r, sizeof(float), &r))
        return -1;
    *out = r / sizeof(float);
    return 0;
}

void qllm_state_free(struct qllm_state *s)
{
    if (!s)
        return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->x);
    free(s->xb);
    free(s->xo);
    free(s->q);
    free(s->att);
    free(s->hg);
    free(s->hu);
    free(s->rope);
    free(s->scores);
    free(s->lw);
    pool_stop(&s->pool);
    free(s);
}

static int cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > QLLM_MAX_THREADS ? QLLM_MAX_THREADS : (int)n;
}

int qllm_state_new(const struct qmodel *m, int n_ctx, struct qllm_state **out, qerr *err)
{
    *out = NULL;
    if (!m || m->kind != QMODEL_LM || !m->llm)
        return qerr_set(err, "%s: not a language model", m ? model_src(m) : "model");
    const struct qllm_config *c = &m->llm->c;
    const char *src = model_src(m);
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->vocab_size <= 0 ||
        c->n_heads % c->n_kv_heads || c->head_dim % 2)
        return qerr_set(err, "%s: the configuration is not valid (run qllm_validate)", src);
    if (n_ctx <= 0)
        return qerr_set(err, "%s: context of %d positions: need at least 1", src, n_ctx);
    int64_t q_dim = (int64_t)c->n_heads * c->head_dim;
    int64_t kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    if (q_dim > INT32_MAX || kv_dim > INT32_MAX)
        return qerr_set(err, "%s: %lld query features are too many", src, (long long)q_dim);

    struct qllm_state *s = calloc(1, sizeof *s);
    if (!s)
        return qerr_set(err, "%s: out of memory for the forward state", src);
    s->m = m;
    s->c = *c;
    s->n_ctx = n_ctx;
    s->nb_max = n_ctx < QLLM_MAX_BATCH ? n_ctx : QLLM_MAX_BATCH;
    s->q_dim = (int)q_dim;
    s->kv_dim = (int)kv_dim;
    s->threads = cores();
    int rows = QLLM_SCORE_FLOATS / n_ctx;
    s->score_rows = rows < 1 ? 1 : rows > s->nb_max ? s->nb_max : rows;

    size_t nkv, nx, nq, nh, nr, ns;
    size_t nb = (size_t)s->nb_max;
    int bad = floats3((size_t)c->n_layers, (size_t)n_ctx, (size_t)kv_dim, &nkv) ||
              floats3(nb, (size_t)c->dim, 1, &nx) || floats3(nb, (size_t)q_dim, 1, &nq) ||
              floats3(nb, (size_t)c->hidden_dim, 1, &nh) ||
              floats3(nb, (size_t)c->head_dim, 1, &nr) ||
              floats3((size_t)s->threads, (size_t)s->score_rows, (size_t)n_ctx, &ns);
    if (bad) {
        qllm_state_free(s);
        return qerr_set(err, "%s: a KV cache of %d positions is too large to address", src,
                        n_ctx);
    }
    /* calloc: cache pages never written are never touched */
    s->k_cache = calloc(nkv, sizeof(float));
    s->v_cache = calloc(nkv, sizeof(float));
    s->x = malloc(nx * sizeof(float));
    s->xb = malloc(nx * sizeof(float));
    s->xo = malloc(nx * sizeof(float));
    s->q = malloc(nq * sizeof(float));
    s->att = malloc(nq * sizeof(float));
    s->hg = malloc(nh * sizeof(float));
    s->hu = malloc(nh * sizeof(float));
    s->rope = malloc(nr * sizeof(float));
    s->scores = malloc(ns * sizeof(float));
    s->lw = calloc((size_t)c->n_layers, sizeof *s->lw);
    if (!s->k_cache || !s->v_cache || !s->x || !s->xb || !s->xo || !s->q || !s->att ||
        !s->hg || !s->hu || !s->rope || !s->scores || !s->lw) {
        double mib = 2.0 * (double)nkv * sizeof(float) / (1024.0 * 1024.0);
        qllm_state_free(s);
        return qerr_set(err, "%s: out of memory for a context of %d positions (KV cache %.0f MiB)",
                        src, n_ctx, mib);
    }
    pool_start(&s->pool, s->threads);
    *out = s;
    return 0;
}

/* ---- forward ----------------------------------------------------------------- */

/* Float values of tensor i: the caller's override, else the model's own. */
static int weight(const struct qllm_state *s, const float *const *weights, int i,
                  const float **out, qerr *err)
{
    const struct qmodel *m = s->m;
    *out = NULL;
    if (i < 0)
        return 0;
    if (i >= m->n_tensors || !m->tensors[i])
        return qerr_set(err, "%s: tensor index %d is not in the model (run qllm_validate)",
                        model_src(m), i);
    *out = weights && weights[i] ? weights[i] : m->tensors[i]->f32;
    if (!*out)
        return qerr_set(err, "%s: %s has no float32 values", model_src(m),
                        m->tensors[i]->name ? m->tensors[i]->name : "a tensor");
    return 0;
}

static int resolve_weights(struct qllm_state *s, const float *const *weights, qerr *err)
{
    const struct qllm *l = s->m->llm;
    if (weight(s, weights, l->token_embd, &s->emb, err) ||
        weight(s, weights, l->output_norm, &s->out_norm, err) ||
        weight(s, weights, l->output, &s->out, err))
        return -1;
    if (!s->emb || !s->out_norm || !s->out)
        return qerr_set(err, "%s: token_embd, output_norm or output is missing (run qllm_validate)",
                        model_src(s->m));
    for (int i = 0; i < s->c.n_layers; i++) {
        const struct qllm_layer *L = &l->layers[i];
        struct layer_w *w = &s->lw[i];
        if (weight(s, weights, L->attn_norm, &w->attn_norm, err) ||
            weight(s, weights, L->wq, &w->wq, err) || weight(s, weights, L->wk, &w->wk, err) ||
            weight(s, weights, L->wv, &w->wv, err) || weight(s, weights, L->wo, &w->wo, err) ||
            weight(s, weights, L->bq, &w->bq, err) || weight(s, weights, L->bk, &w->bk, err) ||
            weight(s, weights, L->bv, &w->bv, err) ||
            weight(s, weights, L->ffn_norm, &w->ffn_norm, err) ||
            weight(s, weights, L->w_gate, &w->gate, err) ||
            weight(s, weights, L->w_up, &w->up, err) ||
            weight(s, weights, L->w_down, &w->down, err))
            return -1;
        if (!w->attn_norm || !w->wq || !w->wk || !w->wv || !w->wo || !w->ffn_norm || !w->gate ||
            !w->up || !w->down)
            return qerr_set(err, "%s: layer %d lacks a tensor (run qllm_validate)",
                            model_src(s->m), i);
    }
    return 0;
}

static void residual_add(float *x, const float *y, size_t count)
{
    size_t i = 0;
    for (; i + QLLM_BLOCK <= count; i += QLLM_BLOCK)
        for (int k = 0; k < QLLM_BLOCK; k++)
            x[i + k] += y[i + k];
    for (; i < count; i++)
        x[i] += y[i];
}

/* One layer over nb positions starting at p0; s->x holds their residuals. */
static void layer_forward(struct qllm_state *s, int l, int nb, int p0)
{
    const struct qllm_config *c = &s->c;
    const struct layer_w *w = &s->lw[l];
    const int dim = c->dim, hd = c->head_dim, hidden = c->hidden_dim;
    const int q_dim = s->q_dim, kv_dim = s->kv_dim;
    float *kc = s->k_cache + (size_t)l * s->n_ctx * kv_dim;
    float *vc = s->v_cache + (size_t)l * s->n_ctx * kv_dim;
    float *krow = kc + (size_t)p0 * kv_dim, *vrow = vc + (size_t)p0 * kv_dim;

    /* attention: q, and k, v straight into the cache rows of p0.. */
    norm_all(s, s->xb, s->x, w->attn_norm, nb);
    mm(s, s->q, q_dim, s->xb, nb, dim, w->wq, q_dim);
    mm(s, krow, kv_dim, s->xb, nb, dim, w->wk, kv_dim);
    mm(s, vrow, kv_dim, s->xb, nb, dim, w->wv, kv_dim);
    add_bias(s->q, q_dim, nb, w->bq, q_dim);
    add_bias(krow, kv_dim, nb, w->bk, kv_dim);
    add_bias(vrow, kv_dim, nb, w->bv, kv_dim);
    for (int i = 0; i < nb; i++) {
        const float *cs = s->rope + (size_t)i * hd;
        qllm_rope_row(s->q + (size_t)i * q_dim, c->n_heads, hd, cs, c->rope);
        qllm_rope_row(krow + (size_t)i * kv_dim, c->n_kv_heads, hd, cs, c->rope);
    }
    struct att_job aj = {s, kc, vc, nb, p0};
    /* scores and weighted values: 2 x heads x rows x keys x head_dim, plus
     * an expf per score (~8 multiply-adds) */
    double keys = p0 + (nb + 1) / 2.0;
    pool_run(&s->pool, c->n_heads, (double)c->n_heads * nb * keys * (2.0 * hd + 8.0), att_range,
             &aj);
    mm(s, s->xo, dim, s->att, nb, q_dim, w->wo, dim);
    residual_add(s->x, s->xo, (size_t)nb * dim);

    /* feed-forward: w_down(silu(w_gate x) * w_up x) */
    norm_all(s, s->xb, s->x, w->ffn_norm, nb);
    mm(s, s->hg, hidden, s->xb, nb, dim, w->gate, hidden);
    mm(s, s->hu, hidden, s->xb, nb, dim, w->up, hidden);
    int64_t elems = (int64_t)nb * hidden;
    struct swiglu_job sj = {s->hg, s->hu};
    pool_run(&s->pool, elems, 8.0 * (double)elems, swiglu_range, &sj);
    mm(s, s->xo, dim, s->hg, nb, hidden, w->down, dim);
    residual_add(s->x, s->xo, (size_t)nb * dim);
}

/* Logits of rows r0..r0+rows-1 of s->x into out (vocab apart). */
static void logits_rows(struct qllm_state *s, int r0, int rows, float *out)
{
    const int dim = s->c.dim, vocab = s->c.vocab_size;
    norm_all(s, s->xb, s->x + (size_t)r0 * dim, s->out_norm, rows);
    mm(s, out, vocab, s->xb, rows, dim, s->out, vocab);
}

int qllm_forward(struct qllm_state *s, const float *const *weights, const int32_t *tokens,
                 int n, int pos, int last_only, float *logits, qerr *err)
{
    if (!s)
        return qerr_set(err, "qllm_forward: no state");
    const char *src = model_src(s->m);
    const int dim = s->c.dim, vocab = s->c.vocab_size;
    if (!tokens || !logits || n <= 0)
        return qerr_set(err, "%s: forward of %d tokens: need tokens and a logits buffer", src, n);
    if (pos < 0 || pos > s->n_ctx - n)
        return qerr_set(err, "%s: positions %d..%d do not fit a context of %d", src, pos,
                        pos + n - 1, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return qerr_set(err, "%s: the token at position %d is id %d, outside the vocabulary "
                            "[0, %d)", src, pos + i, (int)tokens[i], vocab);
    if (resolve_weights(s, weights, err) != 0)
        return -1;
    /* The pool splits every product between the cores, so OpenBLAS runs
     * single-threaded inside each part: its own threads would nest under
     * ours, and between calls they spin on the cores our workers need.
     * The setting is process-wide: set on every call, put back after. */
    const int blas_threads = openblas_get_num_threads();
    if (blas_threads != 1)
        openblas_set_num_threads(1);

    for (int b0 = 0; b0 < n; b0 += s->nb_max) {
        const int nb = n - b0 < s->nb_max ? n - b0 : s->nb_max;
        const int p0 = pos + b0;
        for (int i = 0; i < nb; i++)
            memcpy(s->x + (size_t)i * dim, s->emb + (size_t)tokens[b0 + i] * dim,
                   (size_t)dim * sizeof(float));
        qllm_rope_table(s->rope, p0, nb, s->c.head_dim, s->c.rope_theta);
        for (int l = 0; l < s->c.n_layers; l++)
            layer_forward(s, l, nb, p0);
        if (!last_only)
            logits_rows(s, 0, nb, logits + (size_t)b0 * vocab);
        else if (b0 + nb == n)
            logits_rows(s, nb - 1, 1, logits);
    }
    if (blas_threads != 1)
        openblas_set_num_threads(blas_threads);
    return 0;
}
