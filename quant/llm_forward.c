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
/* Below this much work (multiply-adds; an exponential counts 8; ~10 us) a job
 * runs on the calling thread alone: handing it out costs more, and much
 * more when a busy machine has taken the worker's core. */
#define QLLM_PAR_WORK (1 << 17)
/* Attention weights held per thread: query rows are taken in blocks that
 * fit (at least one row), and of at most QLLM_ATT_ROWS, so a block's
 * scores for keys its rows may not see (causal) stay few. */
#define QLLM_SCORE_FLOATS (1 << 20)
#define QLLM_ATT_ROWS 64
/* Matrix products are split between threads in tiles of this many output
 * features, one OpenBLAS call each: a call's width changes how it rounds,
 * so fixed tiles give the same floats on any number of threads (and 32
 * costs ~6% against whole-part calls on the 15M shape; 16 costs 15%). */
#define QLLM_COL_TILE 32

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
    int stale;              /* a resumed call left some layers' KV cache unwritten */
    /* this call's saved cuts (qllm_forward_cut) and the slice's first row */
    int n_save, b0;
    const struct qllm_cut *save;
    float *const *x_save;
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

/* ---- vector arithmetic -------------------------------------------------------
 * GCC's generic vectors of 4 floats: SSE2 on x86-64, NEON on arm64, plain
 * code elsewhere; no intrinsics, no flags. Loads and stores go through
 * memcpy, so rows need no alignment. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
#define V4(c) ((v4f){(c), (c), (c), (c)})

static inline v4f v4_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v4_store(float *p, v4f v)
{
    memcpy(p, &v, sizeof v);
}

/* lanes of a where m is set, else of b */
static inline v4f v4_select(v4i m, v4f a, v4f b)
{
    return (v4f)((m & (v4i)a) | (~m & (v4i)b));
}

/* e^x lane by lane, within 2 ulp. x is clamped to [-87, 88], so results
 * are normal floats (e^-87 = 1.6e-38 stands for anything smaller); then
 * x = n ln2 + r with |r| <= ln2/2, and e^r is Cephes' expf polynomial. */
static inline v4f v4_exp(v4f x)
{
    x = v4_select(x < V4(-87.0f), V4(-87.0f), x);
    x = v4_select(x > V4(88.0f), V4(88.0f), x);
    /* n = round(x / ln2), by adding and taking away 1.5 x 2^23 */
    v4f n = x * V4(1.44269504088896341f) + V4(12582912.0f);
    n -= V4(12582912.0f);
    /* ln2 in two parts: n times the first (9 bits) is exact */
    v4f r = x - n * V4(0.693359375f);
    r -= n * V4(-2.12194440e-4f);
    v4f p = r * V4(1.9875691500e-4f) + V4(1.3981999507e-3f);
    p = p * r + V4(8.3334519073e-3f);
    p = p * r + V4(4.1665795894e-2f);
    p = p * r + V4(1.6666665459e-1f);
    p = p * r + V4(5.0000001201e-1f);
    p = p * (r * r) + r + V4(1.0f);
    /* times 2^n, built in the exponent field */
    v4i e = (__builtin_convertvector(n, v4i) + 127) << 23;
    return p * (v4f)e;
}

static float exp1(float x)
{
    return v4_exp(V4(x))[0];
}

void qllm_exp(float *y, const float *x, int64_t n)
{
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        v4_store(y + i, v4_exp(v4_load(x + i)));
    for (; i < n; i++)
        y[i] = exp1(x[i]);
}

/* x[j] /= d for j < n (one IEEE division each, as llama2.c divides);
 * returns the largest result. */
static float div_max(float *x, int n, float d)
{
    int j = 0;
    float m = -INFINITY;
    if (n >= 4) {
        v4f mv = V4(-INFINITY);
        for (; j + 4 <= n; j += 4) {
            v4f v = v4_load(x + j) / V4(d);
            v4_store(x + j, v);
            mv = v4_select(v > mv, v, mv);
        }
        for (int k = 0; k < 4; k++)
            m = mv[k] > m ? mv[k] : m;
    }
    for (; j < n; j++) {
        x[j] /= d;
        m = x[j] > m ? x[j] : m;
    }
    return m;
}

/* x[j] /= d for j < n, in blocks the compiler turns into vector divides:
 * each element still gets one IEEE division. */
static void div_all(float *x, int n, float d)
{
    int j = 0;
    for (; j + QLLM_BLOCK <= n; j += QLLM_BLOCK)
        for (int k = 0; k < QLLM_BLOCK; k++)
            x[j + k] /= d;
    for (; j < n; j++)
        x[j] /= d;
}

/* Attention weights of one row of raw scores: x / scale, softmaxed
 * (max-subtracted; the sum in float in order, as llama2.c). */
static void softmax_scaled(float *x, int size, float scale)
{
    const float max_val = div_max(x, size, scale);
    float sum = 0.0f;
    int j = 0;
    for (; j + 4 <= size; j += 4) {
        v4f e = v4_exp(v4_load(x + j) - V4(max_val));
        v4_store(x + j, e);
        sum += e[0];
        sum += e[1];
        sum += e[2];
        sum += e[3];
    }
    for (; j < size; j++) {
        x[j] = exp1(x[j] - max_val);
        sum += x[j];
    }
    div_all(x, size, sum);
}

/* Attention of query rows i0..i1-1 (positions pos+i0..) of head h over
 * keys 0..pos+i1-1: scores [rows, len] = q_h . k_g^T (sgemm), each row's
 * keys 0..pos+i divided by sqrt(hd) (as llama2.c) and softmaxed, the
 * rest 0, then out_h = scores . v_g (sgemm). */
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
        softmax_scaled(row, keep, root);
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
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f g = v4_load(gate + i);
        g *= V4(1.0f) / (V4(1.0f) + v4_exp(-g));
        v4_store(gate + i, g * v4_load(up + i));
    }
    for (; i < n; i++) {
        float val = gate[i];
        val *= 1.0f / (1.0f + exp1(-val));
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

/* Products that share their input x [n, in]: y_i[r, 0..out_i) (rows ldy_i
 * apart) = x[r] . W_i^T. Their output features are dealt out as one list
 * of tiles, so q, k and v take one trip through the pool. */
#define QLLM_MAX_FUSED 3
struct mm_job {
    const float *x;
    int n, in, count;
    struct mm_out { float *y; int ldy, out; const float *w; int64_t tile0; } o[QLLM_MAX_FUSED];
};

/* tiles [b, e) of the joint list: each output's share of them */
static void mm_range(void *ctx, int64_t b, int64_t e, int part)
{
    (void)part;
    const struct mm_job *j = ctx;
    for (int i = 0; i < j->count; i++) {
        const struct mm_out *o = &j->o[i];
        int64_t c0 = (b > o->tile0 ? b - o->tile0 : 0) * QLLM_COL_TILE;
        int64_t c1 = (e - o->tile0) * QLLM_COL_TILE;
        if (c1 > o->out)
            c1 = o->out;
        /* one call per tile: OpenBLAS rounds a column differently with
         * the width of its call, so fixed tiles make the floats the same
         * whatever the number of threads */
        for (int64_t c = c0; c < c1; c += QLLM_COL_TILE) {
            int64_t w = c1 - c < QLLM_COL_TILE ? c1 - c : QLLM_COL_TILE;
            matmul(o->y + c, o->ldy, j->x, j->n, j->in, o->w + c * j->in, (int)w);
        }
    }
}

/* The job's products split over the pool by output features: every
 * thread runs OpenBLAS on its share of the W_i's rows. */
static void mm_run(struct qllm_state *s, struct mm_job *j)
{
    int64_t tiles = 0;
    double work = 0;
    for (int i = 0; i < j->count; i++) {
        j->o[i].tile0 = tiles;
        tiles += (j->o[i].out + QLLM_COL_TILE - 1) / QLLM_COL_TILE;
        work += (double)j->n * j->in * j->o[i].out;
    }
    pool_run(&s->pool, tiles, work, mm_range, j);
}

static void mm(struct qllm_state *s, float *y, int ldy, const float *x, int n, int in,
               const float *w, int out)
{
    struct mm_job j = {x, n, in, 1, {{y, ldy, out, w, 0}}};
    mm_run(s, &j);
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
    const float *q, *kc, *vc;
    float *out;
    int n, pos;
};

/* heads [b, e), with this part's own score rows */
static void att_range(void *ctx, int64_t b, int64_t e, int part)
{
    const struct att_job *j = ctx;
    struct qllm_state *s = j->s;
    const struct qllm_config *c = &s->c;
    att_heads(j->q, j->kc, j->vc, j->out, j->n, j->pos, c->n_heads, c->n_kv_heads, c->head_dim,
              (int)b, (int)e, s->score_rows,
              s->scores + (size_t)part * s->score_rows * s->n_ctx);
}

/* The feed-forward's first half: hg = silu(x . W_gate^T) * (x . W_up^T),
 * x [n, in], hg and hu [n, hidden]. Each thread takes the same hidden
 * features of both products and applies SwiGLU to them while they are in
 * its cache, with no wait between. */
struct ffn_job {
    const float *x, *gate, *up;
    float *hg, *hu;
    int n, in, hidden;
};

/* hidden features [b, e) x QLLM_COL_TILE */
static void ffn_range(void *ctx, int64_t b, int64_t e, int part)
{
    (void)part;
    const struct ffn_job *j = ctx;
    int64_t c0 = b * QLLM_COL_TILE, c1 = e * QLLM_COL_TILE < j->hidden ? e * QLLM_COL_TILE
                                                                      : j->hidden;
    if (c1 <= c0)
        return;
    for (int64_t c = c0; c < c1; c += QLLM_COL_TILE) {
        int w = (int)(c1 - c < QLLM_COL_TILE ? c1 - c : QLLM_COL_TILE);
        matmul(j->hg + c, j->hidden, j->x, j->n, j->in, j->gate + c * j->in, w);
        matmul(j->hu + c, j->hidden, j->x, j->n, j->in, j->up + c * j->in, w);
    }
    for (int r = 0; r < j->n; r++) {
        size_t at = (size_t)r * j->hidden + (size_t)c0;
        qllm_swiglu(j->hg + at, j->hu + at, c1 - c0);
    }
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

/* The cores this process may run on (taskset, cpusets), else those online. */
static int cores(void)
{
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                          : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > QLLM_MAX_THREADS ? QLLM_MAX_THREADS : (int)n;
}

int qllm_state_new(const struct qmodel *m, int n_ctx, struct qllm_state **out, qerr *err)
{
    return qllm_state_new_threads(m, n_ctx, 0, out, err);
}

int qllm_state_new_threads(const struct qmodel *m, int n_ctx, int threads,
                           struct qllm_state **out, qerr *err)
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
    if (threads > 0 && threads < s->threads)
        s->threads = threads;
    int rows = QLLM_SCORE_FLOATS / n_ctx;
    rows = rows > QLLM_ATT_ROWS ? QLLM_ATT_ROWS : rows;
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

/* Rows [g0, g1) of the slice's residual into every saved cut at (l, ffn). */
static void save_rows(struct qllm_state *s, int l, int ffn, int g0, int g1)
{
    const int dim = s->c.dim;
    for (int i = 0; i < s->n_save; i++)
        if (s->save[i].layer == l && s->save[i].ffn == ffn)
            memcpy(s->x_save[i] + ((size_t)s->b0 + (size_t)g0) * dim, s->x + (size_t)g0 * dim,
                   (size_t)(g1 - g0) * dim * sizeof(float));
}

/* The feed-forward of layer l for rows [g0, g1) of a slice:
 * x += w_down(silu(w_gate xb) * w_up xb), xb = rmsnorm(x). */
static void ffn_rows(struct qllm_state *s, int l, int g0, int g1)
{
    const struct qllm_config *c = &s->c;
    const struct layer_w *w = &s->lw[l];
    const int dim = c->dim, hidden = c->hidden_dim, n = g1 - g0;
    float *x = s->x + (size_t)g0 * dim, *xb = s->xb + (size_t)g0 * dim;
    float *xo = s->xo + (size_t)g0 * dim;
    float *hg = s->hg + (size_t)g0 * hidden, *hu = s->hu + (size_t)g0 * hidden;
    norm_all(s, xb, x, w->ffn_norm, n);
    struct ffn_job fj = {xb, w->gate, w->up, hg, hu, n, dim, hidden};
    pool_run(&s->pool, (hidden + QLLM_COL_TILE - 1) / QLLM_COL_TILE,
             (double)n * hidden * (2.0 * dim + 8.0), ffn_range, &fj);
    mm(s, xo, dim, hg, n, hidden, w->down, dim);
    residual_add(x, xo, (size_t)n * dim);
}

/* Rows [g0, g1) of a slice at positions p0 + g0.. through the rest of
 * layer l, once their k and v are in the cache: q (unless q_done),
 * attention, w_o, the feed-forward. Every buffer is used at the rows'
 * own offsets, so groups of one slice leave each other's rows alone. */
static void layer_rows(struct qllm_state *s, int l, int p0, int g0, int g1, int q_done,
                       int with_ffn)
{
    const struct qllm_config *c = &s->c;
    const struct layer_w *w = &s->lw[l];
    const int dim = c->dim, hd = c->head_dim, q_dim = s->q_dim;
    const int n = g1 - g0;
    const size_t kv_layer = (size_t)l * s->n_ctx * s->kv_dim;
    float *x = s->x + (size_t)g0 * dim, *xb = s->xb + (size_t)g0 * dim;
    float *xo = s->xo + (size_t)g0 * dim, *q = s->q + (size_t)g0 * q_dim;
    float *att = s->att + (size_t)g0 * q_dim;

    if (!q_done)
        mm(s, q, q_dim, xb, n, dim, w->wq, q_dim);
    add_bias(q, q_dim, n, w->bq, q_dim);
    for (int i = 0; i < n; i++)
        qllm_rope_row(q + (size_t)i * q_dim, c->n_heads, hd, s->rope + (size_t)(g0 + i) * hd,
                      c->rope);
    struct att_job aj = {s, q, s->k_cache + kv_layer, s->v_cache + kv_layer, att, n, p0 + g0};
    /* scores and weighted values: 2 x heads x rows x keys x head_dim, plus
     * an exponential per score (~8 multiply-adds) */
    double keys = p0 + g0 + (n + 1) / 2.0;
    pool_run(&s->pool, c->n_heads, (double)c->n_heads * n * keys * (2.0 * hd + 8.0), att_range,
             &aj);
    mm(s, xo, dim, att, n, q_dim, w->wo, dim);
    residual_add(x, xo, (size_t)n * dim);
    save_rows(s, l, 1, g0, g1);
    if (with_ffn)
        ffn_rows(s, l, g0, g1);
}

/* The row groups of a slice of nb rows that go through the last layer
 * and the output projection when rows r0..nb-1 want logits: [r0, h) and
 * [max(r0, h), nb), h = nb/2, empty ones left out. OpenBLAS rounds a row
 * differently depending on how many rows share its call, so the second
 * half is always a call of its own: the scored half of a perplexity chunk
 * (r0 = n_ctx/2) then gets the very logits a whole-chunk call gives it. */
static int row_groups(int nb, int r0, int g[2][2])
{
    const int h = nb / 2;
    int count = 0;
    if (r0 < h)
        g[count][0] = r0, g[count++][1] = h;
    if (r0 < nb)
        g[count][0] = r0 > h ? r0 : h, g[count++][1] = nb;
    return count;
}

/* One layer over the nb positions of a slice starting at p0; s->x holds
 * their residuals. Every position's k and v go to the cache; the last
 * layer takes on only rows r0..nb-1 (in row_groups), as the others would
 * only feed logits nobody asked for. */
static void layer_forward(struct qllm_state *s, int l, int nb, int p0, int r0, int with_ffn)
{
    const struct qllm_config *c = &s->c;
    const struct layer_w *w = &s->lw[l];
    const int dim = c->dim, hd = c->head_dim, q_dim = s->q_dim, kv_dim = s->kv_dim;
    const int last = l + 1 == c->n_layers;
    save_rows(s, l, 0, 0, nb);
    float *krow = s->k_cache + ((size_t)l * s->n_ctx + (size_t)p0) * kv_dim;
    float *vrow = s->v_cache + ((size_t)l * s->n_ctx + (size_t)p0) * kv_dim;

    /* k and v straight into the cache rows of p0.., with q when every row goes on */
    norm_all(s, s->xb, s->x, w->attn_norm, nb);
    struct mm_job qkv = {s->xb, nb, dim, 2, {{krow, kv_dim, kv_dim, w->wk, 0},
                                             {vrow, kv_dim, kv_dim, w->wv, 0}}};
    if (!last)
        qkv.o[qkv.count++] = (struct mm_out){s->q, q_dim, q_dim, w->wq, 0};
    mm_run(s, &qkv);
    add_bias(krow, kv_dim, nb, w->bk, kv_dim);
    add_bias(vrow, kv_dim, nb, w->bv, kv_dim);
    for (int i = 0; i < nb; i++)
        qllm_rope_row(krow + (size_t)i * kv_dim, c->n_kv_heads, hd, s->rope + (size_t)i * hd,
                      c->rope);
    if (!last) {
        layer_rows(s, l, p0, 0, nb, 1, with_ffn);
        return;
    }
    int g[2][2];
    for (int k = 0, n = row_groups(nb, r0, g); k < n; k++)
        layer_rows(s, l, p0, g[k][0], g[k][1], 0, with_ffn);
}

/* Layer l's feed-forward alone, resuming at its cut: the rows
 * layer_forward would take there, in the same groups. */
static void layer_ffn_only(struct qllm_state *s, int l, int nb, int r0)
{
    if (l + 1 < s->c.n_layers) {
        ffn_rows(s, l, 0, nb);
        return;
    }
    int g[2][2];
    for (int k = 0, n = row_groups(nb, r0, g); k < n; k++)
        ffn_rows(s, l, g[k][0], g[k][1]);
}

/* Logits of rows r0..r0+rows-1 of s->x into out (vocab apart). */
static void logits_rows(struct qllm_state *s, int r0, int rows, float *out)
{
    const int dim = s->c.dim, vocab = s->c.vocab_size;
    norm_all(s, s->xb, s->x + (size_t)r0 * dim, s->out_norm, rows);
    mm(s, out, vocab, s->xb, rows, dim, s->out, vocab);
}

static int forward(struct qllm_state *s, const float *const *weights, const int32_t *tokens,
                   int n, int pos, int logits_from, float *logits, const struct qllm_cut *from,
                   const float *x_from, qerr *err)
{
    if (!s)
        return qerr_set(err, "qllm_forward: no state");
    const char *src = model_src(s->m);
    const int dim = s->c.dim, vocab = s->c.vocab_size;
    if (!tokens || !logits || n <= 0)
        return qerr_set(err, "%s: forward of %d tokens: need tokens and a logits buffer", src, n);
    if (logits_from < 0 || logits_from >= n)
        return qerr_set(err, "%s: logits from token %d of %d: need 0 <= from < %d", src,
                        logits_from, n, n);
    if (pos < 0 || pos > s->n_ctx - n)
        return qerr_set(err, "%s: positions %d..%d do not fit a context of %d", src, pos,
                        pos + n - 1, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= vocab)
            return qerr_set(err, "%s: the token at position %d is id %d, outside the vocabulary "
                            "[0, %d)", src, pos + i, (int)tokens[i], vocab);
    if (pos > 0 && s->stale)
        return qerr_set(err, "%s: positions from %d after a pass that skipped layers: start at 0",
                        src, pos);
    if (from && (from->layer < 0 || from->layer > s->c.n_layers || from->ffn < 0 ||
                 from->ffn > (from->layer < s->c.n_layers) || !x_from))
        return qerr_set(err, "%s: no cut at layer %d%s to resume from", src,
                        from->layer, from->ffn ? " (feed-forward)" : "");
    if (resolve_weights(s, weights, err) != 0)
        return -1;
    s->stale = from && (from->layer > 0 || from->ffn);
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
        if (from)
            memcpy(s->x, x_from + (size_t)b0 * dim, (size_t)nb * dim * sizeof(float));
        else
            for (int i = 0; i < nb; i++)
                memcpy(s->x + (size_t)i * dim, s->emb + (size_t)tokens[b0 + i] * dim,
                       (size_t)dim * sizeof(float));
        qllm_rope_table(s->rope, p0, nb, s->c.head_dim, s->c.rope_theta);
        /* rows of this slice whose logits are wanted: r0..nb-1 (none when r0 >= nb) */
        const int r0 = logits_from - b0 < 0 ? 0 : logits_from - b0 > nb ? nb : logits_from - b0;
        s->b0 = b0;
        int l = from ? from->layer : 0;
        if (from && from->ffn)
            layer_ffn_only(s, l++, nb, r0);
        for (; l < s->c.n_layers; l++)
            layer_forward(s, l, nb, p0, r0, 1);
        save_rows(s, s->c.n_layers, 0, r0, nb);
        int g[2][2];
        for (int k = 0, ng = row_groups(nb, r0, g); k < ng; k++)
            logits_rows(s, g[k][0], g[k][1] - g[k][0],
                        logits + (size_t)(b0 + g[k][0] - logits_from) * vocab);
    }
    if (blas_threads != 1)
        openblas_set_num_threads(blas_threads);
    return 0;
}

int qllm_forward(struct qllm_state *s, const float *const *weights, const int32_t *tokens,
                 int n, int pos, int logits_from, float *logits, qerr *err)
{
    if (s)
        s->n_save = 0;
    return forward(s, weights, tokens, n, pos, logits_from, logits, NULL, NULL, err);
}

int qllm_forward_cut(struct qllm_state *s, const float *const *weights, const int32_t *tokens,
                     int n, int logits_from, float *logits, const struct qllm_cut *from,
                     const float *x_from, int n_save, const struct qllm_cut *save,
                     float *const *x_save, qerr *err)
{
    if (!s)
        return qerr_set(err, "qllm_forward: no state");
    if (n_save < 0 || (n_save > 0 && (!save || !x_save)))
        return qerr_set(err, "%s: %d cuts to save without their buffers", model_src(s->m),
                        n_save);
    for (int i = 0; i < n_save; i++)
        if (save[i].layer < 0 || save[i].layer > s->c.n_layers || save[i].ffn < 0 ||
            save[i].ffn > (save[i].layer < s->c.n_layers) || !x_save[i])
            return qerr_set(err, "%s: no cut at layer %d to save", model_src(s->m),
                            save[i].layer);
    s->n_save = n_save;
    s->save = save;
    s->x_save = x_save;
    int rc = forward(s, weights, tokens, n, 0, logits_from, logits, from, x_from, err);
    s->n_save = 0;
    return rc;
}

int qllm_half_block(struct qllm_state *s, const float *const *weights, int n,
                    struct qllm_cut at, const float *x_in, float *x_out, qerr *err)
{
    if (!s)
        return qerr_set(err, "qllm_half_block: no state");
    const char *src = model_src(s->m);
    const int dim = s->c.dim;
    if (n <= 0 || n > s->n_ctx || !x_in || !x_out)
        return qerr_set(err, "%s: half-block over %d positions (context %d): need rows in and out",
                        src, n, s->n_ctx);
    if (at.layer < 0 || at.layer >= s->c.n_layers || at.ffn < 0 || at.ffn > 1)
        return qerr_set(err, "%s: no half-block at layer %d", src, at.layer);
    if (resolve_weights(s, weights, err) != 0)
        return -1;
    const int blas_threads = openblas_get_num_threads();
    if (blas_threads != 1)
        openblas_set_num_threads(1);
    s->n_save = 0;
    s->stale = 1;   /* the other layers' KV cache is not written */
    for (int b0 = 0; b0 < n; b0 += s->nb_max) {
        const int nb = n - b0 < s->nb_max ? n - b0 : s->nb_max;
        memcpy(s->x, x_in + (size_t)b0 * dim, (size_t)nb * dim * sizeof(float));
        qllm_rope_table(s->rope, b0, nb, s->c.head_dim, s->c.rope_theta);
        s->b0 = b0;
        if (at.ffn)
            layer_ffn_only(s, at.layer, nb, 0);
        else
            layer_forward(s, at.layer, nb, b0, 0, 0);
        memcpy(x_out + (size_t)b0 * dim, s->x, (size_t)nb * dim * sizeof(float));
    }
    if (blas_threads != 1)
        openblas_set_num_threads(blas_threads);
    return 0;
}

struct qllm_cut qllm_first_use(const struct qmodel *m, int t)
{
    const struct qllm *l = m->llm;
    struct qllm_cut none = {-1, 0};
    if (!l || t < 0 || t == l->token_embd)
        return none;
    for (int i = 0; i < l->c.n_layers; i++) {
        const struct qllm_layer *L = &l->layers[i];
        if (t == L->attn_norm || t == L->wq || t == L->wk || t == L->wv || t == L->wo ||
            t == L->bq || t == L->bk || t == L->bv)
            return (struct qllm_cut){i, 0};
        if (t == L->ffn_norm || t == L->w_gate || t == L->w_up || t == L->w_down)
            return (struct qllm_cut){i, 1};
    }
    if (t == l->output_norm || t == l->output)
        return (struct qllm_cut){l->c.n_layers, 0};
    return none;
}

int qllm_cut_cmp(struct qllm_cut a, struct qllm_cut b)
{
    if (a.layer != b.layer)
        return a.layer < b.layer ? -1 : 1;
    return a.ffn - b.ffn;
}
