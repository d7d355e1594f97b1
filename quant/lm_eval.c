/* lm_eval.c — perplexity and KL divergence of a language model over token chunks, with llama-perplexity's arithmetic. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm.h"
#include "lm_eval.h"
#include "tokenizer.h"

/* Records hold native floats and uint16 codes; the file format is little-endian. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lm_eval.c writes reference records in host order, which must be little-endian"
#endif

#define REF_MAGIC "QLABREF1"
#define REF_HEADER 64           /* bytes: magic, sizes, the reference run's sums, tokens hash */
#define MAX_CTX (1 << 20)       /* tokens per chunk: far beyond any model, small enough to size */
#define MAX_VOCAB (1 << 24)
#define PAR_MIN_WORK (1 << 18)  /* scored tokens x vocabulary below which one thread scores */

/* ---- llama-perplexity's log-softmax arithmetic -----------------------------
 * Three variants, as perplexity.cpp has them; where a value is float and
 * where double decides the last digits, so each is followed exactly:
 * exp in float, sum_exp in double, log(sum_exp) in double (plain mode) or
 * rounded to float (reference and KL modes). */

/* Round to nearest (ties to even) through the float mantissa, as ggml's nearest_int. */
static int nearest_int(float fval)
{
    float val = fval + 12582912.f;
    int i;
    memcpy(&i, &val, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* std::max of floats: (a < b) ? b : a. */
static float max_f(float a, float b)
{
    return a < b ? b : a;
}

/* Plain perplexity: -log p(tok), the log-probability in double. */
static double nll_plain(const float *logits, int n_vocab, int tok)
{
    float max_logit = logits[0];
    for (int i = 1; i < n_vocab; i++)
        max_logit = max_f(max_logit, logits[i]);
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; i++)
        sum_exp += expf(logits[i] - max_logit);
    double log_softmax = (double)(logits[tok] - max_logit) - log(sum_exp);
    return -log_softmax;
}

/* Reference mode: encodes the log-probabilities within 16 nats of the
 * maximum as uint16 codes after two floats (scale, min log-prob) in rec
 * (4 + n_vocab uint16), and returns -log p(tok) computed in float. */
static double nll_encode(const float *logits, int n_vocab, int tok, uint16_t *rec)
{
    float max_logit = logits[0], min_logit = logits[0];
    for (int i = 1; i < n_vocab; i++) {
        max_logit = max_f(max_logit, logits[i]);
        min_logit = logits[i] < min_logit ? logits[i] : min_logit;
    }
    min_logit = max_f(min_logit, max_logit - 16);
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; i++)
        sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    const float min_log_prob = min_logit - max_logit - log_sum_exp;
    const float scale = (max_logit - min_logit) / 65535.f;
    memcpy(rec, &scale, sizeof scale);
    memcpy(rec + 2, &min_log_prob, sizeof min_log_prob);
    uint16_t *code = rec + 4;
    if (scale != 0.f) {
        const float inv_scale = 1 / scale;
        for (int i = 0; i < n_vocab; i++)
            code[i] = logits[i] > min_logit ? (uint16_t)nearest_int(inv_scale * (logits[i] - min_logit))
                                            : 0;
    } else {
        memset(code, 0, (size_t)n_vocab * sizeof *code);
    }
    const float nll = max_logit + log_sum_exp - logits[tok];
    return nll;
}

/* One scored token compared with its reference record. */
struct kld_tok {
    float nll, nll_base;        /* -log p(tok): this model, the decoded reference */
    double kld;                 /* KL(reference || this model), nats */
    float p_diff;               /* p(tok) - p_base(tok) */
    int same_top;               /* both argmaxes agree */
};

static void kld_token(const float *logits, int n_vocab, const uint16_t *rec, int tok,
                      struct kld_tok *r)
{
    float max_logit = logits[0];
    int imax = 0;
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > max_logit) {
            max_logit = logits[i];
            imax = i;
        }
    double sum_exp = 0.0;
    for (int i = 0; i < n_vocab; i++)
        sum_exp += expf(logits[i] - max_logit);
    const float log_sum_exp = (float)log(sum_exp);
    float scale, min_log_prob;
    memcpy(&scale, rec, sizeof scale);
    memcpy(&min_log_prob, rec + 2, sizeof min_log_prob);
    const uint16_t *code = rec + 4;

    r->nll = max_logit + log_sum_exp - logits[tok];
    r->nll_base = -(scale * code[tok] + min_log_prob);

    max_logit += log_sum_exp;   /* logits[i] - max_logit is now log q_i */
    double sum = 0;
    int imax_base = -1;
    float p_log_base_max = 0;
    for (int i = 0; i < n_vocab; i++) {
        const float p_log_base = scale * code[i] + min_log_prob;
        if (i == 0 || p_log_base > p_log_base_max) {
            p_log_base_max = p_log_base;
            imax_base = i;
        }
        if (p_log_base > -16.f) {
            const float p_base = expf(p_log_base);
            sum += p_base * (p_log_base - logits[i] + max_logit);
        }
    }
    r->kld = sum;
    r->same_top = imax == imax_base;
    const float p_base = expf(-r->nll_base);
    const float p = expf(-r->nll);
    r->p_diff = p - p_base;
}

/* ---- the statistics llama-perplexity keeps -------------------------------- */

/* Plain and reference modes: NLL sums. */
struct nll_sums {
    double nll, nll2;
};

/* KL mode: kl_divergence_result of perplexity.cpp. */
struct kld_sums {
    double nll, nll2, nll_base, nll_base2, nll_nll_base;
    double kld, kld2, p_diff, p_diff2, p_diff4;
    int64_t n_same_top, count;
};

static void kld_sums_add_token(struct kld_sums *s, const struct kld_tok *t)
{
    s->nll += t->nll;
    s->nll2 += t->nll * t->nll;                 /* float product, as llama.cpp */
    s->nll_base += t->nll_base;
    s->nll_base2 += t->nll_base * t->nll_base;
    s->nll_nll_base += t->nll * t->nll_base;
    s->kld += t->kld;
    s->kld2 += t->kld * t->kld;
    s->p_diff += t->p_diff;
    const double p_diff2 = t->p_diff * t->p_diff;
    s->p_diff2 += p_diff2;
    s->p_diff4 += p_diff2 * p_diff2;
    s->n_same_top += t->same_top;
    s->count++;
}

static void kld_sums_add(struct kld_sums *s, const struct kld_sums *a)
{
    s->nll += a->nll;
    s->nll2 += a->nll2;
    s->nll_base += a->nll_base;
    s->nll_base2 += a->nll_base2;
    s->nll_nll_base += a->nll_nll_base;
    s->kld += a->kld;
    s->kld2 += a->kld2;
    s->p_diff += a->p_diff;
    s->p_diff2 += a->p_diff2;
    s->p_diff4 += a->p_diff4;
    s->n_same_top += a->n_same_top;
    s->count += a->count;
}

/* perplexity.cpp's mean_and_uncertainty: the mean and its standard error. */
static void mean_unc(double sum, double sum2, int64_t count, double *mean, double *unc)
{
    *mean = *unc = 0;
    if (count < 1)
        return;
    double f = sum / (double)count;
    double df = sum2 / (double)count - f * f;
    *mean = f;
    *unc = df > 0 && count > 10 ? sqrt(df / (double)(count - 1)) : 0.;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);     /* NaN last, so the order is total */
    return (x > y) - (x < y);
}

/* perplexity.cpp's percentile: linear interpolation in float over sorted values. */
static float percentile(const float *v, size_t n, float fraction)
{
    if (fraction <= 0)
        return v[0];
    if (fraction >= 1)
        return v[n - 1];
    float p = fraction * (float)(n - 1);
    size_t ip = (size_t)p;
    p -= (float)ip;
    return (1 - p) * v[ip] + p * v[ip + 1 < n ? ip + 1 : n - 1];
}

static float median(const float *v, size_t n)
{
    return n % 2 == 0 ? 0.5f * (v[n / 2] + v[n / 2 - 1]) : v[n / 2];
}

/* ---- reference files ------------------------------------------------------- */

/* FNV-1a over the evaluated tokens, so a reference is never compared with another text. */
static uint64_t tokens_hash(const int32_t *t, int64_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)t[i];
        for (int b = 0; b < 4; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    put_u64(p, v);
}

static double get_f64(const uint8_t *p)
{
    uint64_t v = get_u64(p);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* Layout: magic[8], i32 n_vocab, i32 n_ctx, i64 n_chunks, i64 n_tokens_scored,
 * f64 nll_sum, f64 nll2_sum, f64 ppl, u64 tokens hash. */
static void header_encode(uint8_t h[REF_HEADER], const struct qlm_ref_info *in, uint64_t hash)
{
    memcpy(h, REF_MAGIC, 8);
    uint32_t nv = (uint32_t)in->n_vocab, nc = (uint32_t)in->n_ctx;
    for (int i = 0; i < 4; i++) {
        h[8 + i] = (uint8_t)(nv >> (8 * i));
        h[12 + i] = (uint8_t)(nc >> (8 * i));
    }
    put_u64(h + 16, (uint64_t)in->n_chunks);
    put_u64(h + 24, (uint64_t)in->n_tokens_scored);
    put_f64(h + 32, in->nll_sum);
    put_f64(h + 40, in->nll2_sum);
    put_f64(h + 48, in->ppl);
    put_u64(h + 56, hash);
}

static int64_t scored_per_chunk(int n_ctx)
{
    return n_ctx - 1 - n_ctx / 2;
}

/* Opens a reference file, checks its header and its size; *f is left at the first record. */
static int ref_open(const char *path, struct qlm_ref_info *info, uint64_t *hash, FILE **out,
                    qerr *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return qerr_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        qerr_set(err, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    uint8_t h[REF_HEADER];
    if (st.st_size < REF_HEADER || fread(h, 1, REF_HEADER, f) != REF_HEADER) {
        qerr_set(err, "%s: truncated: %lld bytes, shorter than the %d-byte header", path,
                 (long long)st.st_size, REF_HEADER);
        goto fail;
    }
    if (memcmp(h, REF_MAGIC, 8) != 0) {
        qerr_set(err, "%s: not a qlab reference file (no %s magic)", path, REF_MAGIC);
        goto fail;
    }
    uint32_t nv = 0, nc = 0;
    for (int i = 0; i < 4; i++) {
        nv |= (uint32_t)h[8 + i] << (8 * i);
        nc |= (uint32_t)h[12 + i] << (8 * i);
    }
    struct qlm_ref_info in = {0};
    in.n_chunks = (int64_t)get_u64(h + 16);
    in.n_tokens_scored = (int64_t)get_u64(h + 24);
    in.nll_sum = get_f64(h + 32);
    in.nll2_sum = get_f64(h + 40);
    in.ppl = get_f64(h + 48);
    if (nv < 1 || nv > MAX_VOCAB) {
        qerr_set(err, "%s: vocabulary size %u is out of range [1, %d]", path, nv, MAX_VOCAB);
        goto fail;
    }
    if (nc < 3 || nc > MAX_CTX) {
        qerr_set(err, "%s: n_ctx %u is out of range [3, %d]", path, nc, MAX_CTX);
        goto fail;
    }
    in.n_vocab = (int)nv;
    in.n_ctx = (int)nc;
    int64_t per = scored_per_chunk(in.n_ctx);
    if (in.n_chunks < 1 || in.n_chunks > INT64_MAX / MAX_CTX ||
        in.n_tokens_scored != in.n_chunks * per) {
        qerr_set(err, "%s: %lld chunks of n_ctx %d score %lld tokens, but the header says %lld",
                 path, (long long)in.n_chunks, in.n_ctx,
                 in.n_chunks >= 1 && in.n_chunks <= INT64_MAX / MAX_CTX
                     ? (long long)(in.n_chunks * per) : -1LL,
                 (long long)in.n_tokens_scored);
        goto fail;
    }
    if (!isfinite(in.nll_sum) || !isfinite(in.nll2_sum) || !(in.ppl > 0) || !isfinite(in.ppl)) {
        qerr_set(err, "%s: the header's NLL sums or perplexity are not finite", path);
        goto fail;
    }
    int64_t rec_bytes = 2 * (4 + (int64_t)in.n_vocab);
    if (in.n_tokens_scored > (INT64_MAX - REF_HEADER) / rec_bytes) {
        qerr_set(err, "%s: %lld scored tokens x %d vocabulary overflow a file size", path,
                 (long long)in.n_tokens_scored, in.n_vocab);
        goto fail;
    }
    int64_t want = REF_HEADER + in.n_tokens_scored * rec_bytes;
    if ((int64_t)st.st_size != want) {
        qerr_set(err, "%s: %lld bytes, but %lld scored tokens x (4 + %d) uint16 need %lld%s", path,
                 (long long)st.st_size, (long long)in.n_tokens_scored, in.n_vocab,
                 (long long)want, (int64_t)st.st_size < want ? " (truncated)" : "");
        goto fail;
    }
    *info = in;
    *hash = get_u64(h + 56);
    *out = f;
    return 0;
fail:
    fclose(f);
    return -1;
}

int qlm_ref_info(const char *path, struct qlm_ref_info *info, qerr *err)
{
    if (!path || !info)
        return qerr_set(err, "reference file: no path given");
    uint64_t hash;
    FILE *f;
    if (ref_open(path, info, &hash, &f, err) != 0)
        return -1;
    fclose(f);
    return 0;
}

/* Streams records to path.tmp; the header is written last, then the file is renamed. */
struct ref_writer {
    const char *path;
    char *tmp;
    FILE *f;
};

static int writer_open(struct ref_writer *w, const char *path, qerr *err)
{
    w->path = path;
    size_t n = strlen(path) + 5;
    w->tmp = malloc(n);
    if (!w->tmp)
        return qerr_set(err, "%s: out of memory", path);
    snprintf(w->tmp, n, "%s.tmp", path);
    w->f = fopen(w->tmp, "wb");
    if (!w->f)
        return qerr_set(err, "%s: cannot create: %s", w->tmp, strerror(errno));
    uint8_t zero[REF_HEADER] = {0};    /* no magic until the run is complete */
    if (fwrite(zero, 1, sizeof zero, w->f) != sizeof zero)
        return qerr_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
    return 0;
}

static int writer_put(struct ref_writer *w, const uint16_t *rec, size_t n, qerr *err)
{
    if (fwrite(rec, sizeof *rec, n, w->f) != n)
        return qerr_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
    return 0;
}

static int writer_finish(struct ref_writer *w, const struct qlm_ref_info *info, uint64_t hash,
                         qerr *err)
{
    uint8_t h[REF_HEADER];
    header_encode(h, info, hash);
    if (fflush(w->f) != 0 || fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h
        || fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
        return qerr_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
    FILE *f = w->f;
    w->f = NULL;
    if (fclose(f) != 0)
        return qerr_set(err, "%s: write failed: %s", w->tmp, strerror(errno));
    if (rename(w->tmp, w->path) != 0)
        return qerr_set(err, "%s: cannot rename to %s: %s", w->tmp, w->path, strerror(errno));
    free(w->tmp);
    w->tmp = NULL;
    return 0;
}

/* Frees the writer; an unfinished file is removed. */
static void writer_close(struct ref_writer *w)
{
    if (w->f)
        fclose(w->f);
    if (w->tmp)
        remove(w->tmp);
    free(w->tmp);
    w->f = NULL;
    w->tmp = NULL;
}

/* ---- scoring one chunk ------------------------------------------------------
 * The tokens of a chunk are independent, so threads share them out; the
 * sums are then taken in token order on one thread, so the result does
 * not depend on the thread count (llama-perplexity's with one thread). */

struct score_job {
    const float *logits;        /* (n_scored, n_vocab): rows first .. n_ctx - 2 */
    const int32_t *next;        /* n_scored: the tokens those rows predict */
    int n_vocab, n_scored;
    uint16_t *rec_out;          /* n_scored * (4 + n_vocab), or NULL */
    const uint16_t *rec_in;     /* the same layout, or NULL */
    double *nll;                /* n_scored: plain (or, with rec_out, reference-mode) NLL */
    struct kld_tok *kld;        /* n_scored when rec_in */
    int begin, end;             /* this worker's tokens */
};

static void score_range(const struct score_job *j)
{
    size_t rec = 4 + (size_t)j->n_vocab;
    for (int i = j->begin; i < j->end; i++) {
        const float *l = j->logits + (size_t)i * j->n_vocab;
        if (j->rec_out)
            j->nll[i] = nll_encode(l, j->n_vocab, j->next[i], j->rec_out + i * rec);
        else
            j->nll[i] = nll_plain(l, j->n_vocab, j->next[i]);
        if (j->rec_in)
            kld_token(l, j->n_vocab, j->rec_in + i * rec, j->next[i], &j->kld[i]);
    }
}

static void *score_worker(void *arg)
{
    score_range(arg);
    return NULL;
}

static void score_chunk(const struct score_job *base, int n_threads)
{
    enum { MAX_THREADS = 64 };
    if ((int64_t)base->n_scored * base->n_vocab < PAR_MIN_WORK)
        n_threads = 1;
    if (n_threads > base->n_scored)
        n_threads = base->n_scored;
    if (n_threads > MAX_THREADS)
        n_threads = MAX_THREADS;
    if (n_threads < 1)
        n_threads = 1;
    struct score_job jobs[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 0; t < n_threads; t++) {
        jobs[t] = *base;
        jobs[t].begin = (int)((int64_t)base->n_scored * t / n_threads);
        jobs[t].end = (int)((int64_t)base->n_scored * (t + 1) / n_threads);
        if (t > 0)
            started[t] = pthread_create(&tid[t], NULL, score_worker, &jobs[t]) == 0;
    }
    score_range(&jobs[0]);
    for (int t = 1; t < n_threads; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            score_range(&jobs[t]);      /* no thread to be had: do its share here */
    }
}

/* ---- the run ---------------------------------------------------------------- */

struct run {
    int n_vocab, n_ctx, first, n_scored, n_threads, dim;
    int64_t n_chunks;
    int32_t bos;
    struct qllm_state *state;
    int32_t *chunk;             /* n_ctx tokens, the first replaced by BOS */
    float *logits;              /* (n_ctx - first) * n_vocab: rows first..n_ctx-1 */
    double *nll;                /* n_scored */
    struct kld_tok *kld;        /* n_scored, with a reference */
    uint16_t *rec_in, *rec_out; /* n_scored records each, when used */
    float *kld_values;          /* n_chunks * n_scored, with a reference */
    FILE *ref;
    struct ref_writer w;
};

static void run_free(struct run *r)
{
    qllm_state_free(r->state);
    free(r->chunk);
    free(r->logits);
    free(r->nll);
    free(r->kld);
    free(r->rec_in);
    free(r->rec_out);
    free(r->kld_values);
    if (r->ref)
        fclose(r->ref);
    writer_close(&r->w);
}

static int check_args(const struct qmodel *m, const int32_t *tokens, int64_t n_tokens,
                      const struct qlm_opts *o, int *n_ctx, int64_t *n_chunks, qerr *err)
{
    if (!m || m->kind != QMODEL_LM || !m->llm)
        return qerr_set(err, "%s: not a language model", m && m->name ? m->name : "model");
    const struct qllm_config *c = &m->llm->c;
    if (c->vocab_size < 1 || c->vocab_size > MAX_VOCAB)
        return qerr_set(err, "%s: vocabulary size %d is out of range", m->name ? m->name : "model",
                        c->vocab_size);
    int ctx = o ? o->n_ctx : 0;
    if (ctx == 0)
        ctx = c->max_ctx > 0 && c->max_ctx < 512 ? c->max_ctx : 512;
    /* n_ctx - 1 - n_ctx/2 tokens are scored per chunk: none below 3. */
    if (ctx < 3 || ctx > MAX_CTX)
        return qerr_set(err, "n_ctx %d is out of range [3, %d]", ctx, MAX_CTX);
    if (o && (o->n_chunks < 0 || o->threads < 0))
        return qerr_set(err, "n_chunks %d and threads %d must not be negative", o->n_chunks,
                        o->threads);
    if (!tokens || n_tokens < ctx)
        return qerr_set(err, "%lld tokens, fewer than one chunk of n_ctx %d",
                        (long long)(tokens ? n_tokens : 0), ctx);
    int64_t n = n_tokens / ctx;
    if (o && o->n_chunks > 0 && o->n_chunks < n)
        n = o->n_chunks;
    for (int64_t i = 0; i < n * ctx; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return qerr_set(err, "token %d at position %lld is outside the vocabulary of %d",
                            (int)tokens[i], (long long)i, c->vocab_size);
    *n_ctx = ctx;
    *n_chunks = n;
    return 0;
}

/* Opens ref_in and checks it against this run. */
static int open_ref_in(struct run *r, const char *path, const int32_t *tokens,
                       struct qlm_ref_info *info, qerr *err)
{
    uint64_t hash;
    if (ref_open(path, info, &hash, &r->ref, err) != 0)
        return -1;
    if (info->n_vocab != r->n_vocab)
        return qerr_set(err, "%s: made with a vocabulary of %d, the model has %d", path,
                        info->n_vocab, r->n_vocab);
    if (info->n_ctx != r->n_ctx)
        return qerr_set(err, "%s: made with n_ctx %d, this run uses %d", path, info->n_ctx,
                        r->n_ctx);
    if (info->n_chunks != r->n_chunks)
        return qerr_set(err, "%s: holds %lld chunks, this run has %lld", path,
                        (long long)info->n_chunks, (long long)r->n_chunks);
    if (hash != tokens_hash(tokens, r->n_chunks * r->n_ctx))
        return qerr_set(err, "%s: made from other tokens than this run's", path);
    return 0;
}

static int alloc_run(struct run *r, int with_ref, int with_out, qerr *err)
{
    size_t rec = (4 + (size_t)r->n_vocab) * r->n_scored;
    r->chunk = malloc((size_t)r->n_ctx * sizeof *r->chunk);
    r->logits = malloc((size_t)(r->n_ctx - r->first) * r->n_vocab * sizeof *r->logits);
    r->nll = malloc((size_t)r->n_scored * sizeof *r->nll);
    if (with_ref) {
        r->kld = malloc((size_t)r->n_scored * sizeof *r->kld);
        r->rec_in = malloc(rec * sizeof *r->rec_in);
        r->kld_values = malloc((size_t)r->n_chunks * r->n_scored * sizeof *r->kld_values);
    }
    if (with_out)
        r->rec_out = malloc(rec * sizeof *r->rec_out);
    if (!r->chunk || !r->logits || !r->nll || (with_ref && (!r->kld || !r->rec_in || !r->kld_values))
        || (with_out && !r->rec_out))
        return qerr_set(err, "perplexity: out of memory for n_ctx %d x vocabulary %d", r->n_ctx,
                        r->n_vocab);
    return 0;
}

static int cancelled(const struct qprogress *p)
{
    return p && p->cancel && atomic_load(p->cancel);
}

/* Chunk i through the model: logits of the scored rows only (and of the
 * last, which predicts nothing), from and to the chunk's cuts if any. */
static int forward_chunk(struct run *r, const float *const *weights, int64_t i,
                         const struct qlm_cuts *c, qerr *err)
{
    if (!c)
        return qllm_forward(r->state, weights, r->chunk, r->n_ctx, 0, r->first, r->logits, err);
    const size_t at = (size_t)i * r->n_ctx * r->dim;
    float *save[QLM_MAX_CUTS];
    for (int k = 0; k < c->n_save; k++)
        save[k] = c->x_save[k] + at;
    return qllm_forward_cut(r->state, weights, r->chunk, r->n_ctx, r->first, r->logits, c->from,
                            c->from ? c->x_from + at : NULL, c->n_save, c->save, save, err);
}

/* Runs chunk i through the model and scores its second half. */
static int run_chunk(struct run *r, const float *const *weights, const int32_t *tokens, int64_t i,
                     const char *ref_in, const struct qlm_cuts *cuts, qerr *err)
{
    memcpy(r->chunk, tokens + i * r->n_ctx, (size_t)r->n_ctx * sizeof *r->chunk);
    if (r->bos >= 0)
        r->chunk[0] = r->bos;
    if (forward_chunk(r, weights, i, cuts, err) != 0)
        return -1;
    size_t rec = (4 + (size_t)r->n_vocab) * r->n_scored;
    if (r->rec_in && fread(r->rec_in, sizeof *r->rec_in, rec, r->ref) != rec)
        return qerr_set(err, "%s: cannot read the records of chunk %lld", ref_in,
                        (long long)i + 1);
    struct score_job job = {
        .logits = r->logits,
        .next = r->chunk + r->first + 1,
        .n_vocab = r->n_vocab,
        .n_scored = r->n_scored,
        .rec_out = r->rec_out,
        .rec_in = r->rec_in,
        .nll = r->nll,
        .kld = r->kld,
    };
    score_chunk(&job, r->n_threads);
    if (r->rec_out)
        return writer_put(&r->w, r->rec_out, rec, err);
    return 0;
}

int qlm_chunking(const struct qmodel *m, const int32_t *tokens, int64_t n_tokens,
                 const struct qlm_opts *o, int *n_ctx, int64_t *n_chunks, qerr *err)
{
    return check_args(m, tokens, n_tokens, o, n_ctx, n_chunks, err);
}

int qlm_perplexity(const struct qmodel *m, const float *const *weights, const int32_t *tokens,
                   int64_t n_tokens, const struct qlm_opts *o, const struct qprogress *p,
                   const char *ref_in, const char *ref_out, struct qlm_metrics *out, qerr *err)
{
    return qlm_perplexity_cut(m, weights, tokens, n_tokens, o, p, ref_in, ref_out, NULL, out,
                              err);
}

int qlm_perplexity_cut(const struct qmodel *m, const float *const *weights,
                       const int32_t *tokens, int64_t n_tokens, const struct qlm_opts *o,
                       const struct qprogress *p, const char *ref_in, const char *ref_out,
                       const struct qlm_cuts *cuts, struct qlm_metrics *out, qerr *err)
{
    struct run r = {0};
    if (!out)
        return qerr_set(err, "perplexity: no metrics to fill");
    if (check_args(m, tokens, n_tokens, o, &r.n_ctx, &r.n_chunks, err) != 0)
        return -1;
    if (cuts && (cuts->n_save < 0 || cuts->n_save > QLM_MAX_CUTS ||
                 (cuts->from && !cuts->x_from)))
        return qerr_set(err, "perplexity: %d cuts to save (at most %d), or a cut without rows",
                        cuts->n_save, QLM_MAX_CUTS);
    r.dim = m->llm->c.dim;
    r.n_vocab = m->llm->c.vocab_size;
    r.first = r.n_ctx / 2;
    r.n_scored = (int)scored_per_chunk(r.n_ctx);
    long nproc = sysconf(_SC_NPROCESSORS_ONLN);
    r.n_threads = o && o->threads > 0 ? o->threads : nproc > 0 ? (int)nproc : 1;
    /* llama-perplexity replaces each chunk's first token by BOS; a model
     * without a tokenizer is taken to use llama's BOS, 1. */
    /* llama-perplexity puts BOS first in each chunk only when the vocabulary
     * adds BOS; token-id data without a tokenizer: llama's BOS, 1 */
    r.bos = !m->llm->tok ? 1 : qtok_add_bos(m->llm->tok) ? qtok_bos(m->llm->tok) : -1;

    struct qlm_ref_info ref = {0};
    int rc = -1;
    if (ref_in && open_ref_in(&r, ref_in, tokens, &ref, err) != 0)
        goto done;
    if (alloc_run(&r, ref_in != NULL, ref_out != NULL, err) != 0)
        goto done;
    if (qllm_state_new_threads(m, r.n_ctx, r.n_threads, &r.state, err) != 0)
        goto done;
    if (ref_out && writer_open(&r.w, ref_out, err) != 0)
        goto done;

    struct nll_sums plain = {0};
    struct kld_sums kl = {0};
    for (int64_t i = 0; i < r.n_chunks; i++) {
        if (cancelled(p)) {
            rc = QEVAL_CANCELLED;
            goto done;
        }
        if (run_chunk(&r, weights, tokens, i, ref_in, cuts, err) != 0)
            goto done;
        /* Chunk sums first, then the totals, as llama-perplexity adds them. */
        struct nll_sums cs = {0};
        struct kld_sums ck = {0};
        for (int k = 0; k < r.n_scored; k++) {
            cs.nll += r.nll[k];
            cs.nll2 += r.nll[k] * r.nll[k];
            if (ref_in) {
                kld_sums_add_token(&ck, &r.kld[k]);
                r.kld_values[i * r.n_scored + k] = (float)r.kld[k].kld;
            }
        }
        plain.nll += cs.nll;
        plain.nll2 += cs.nll2;
        kld_sums_add(&kl, &ck);
        if (p && p->fn)
            p->fn(p->ctx, "perplexity", i + 1, r.n_chunks);
    }

    struct qlm_metrics res = {0};
    int64_t count = r.n_chunks * r.n_scored;
    res.n_chunks = r.n_chunks;
    res.n_tokens_scored = count;
    double nll = plain.nll / (double)count;
    double nll2 = plain.nll2 / (double)count - nll * nll;
    double ppl = exp(nll);
    res.nll_mean = nll;
    res.ppl = ppl;
    res.ppl_err = nll2 > 0 && count > 1 ? sqrt(nll2 / (double)(count - 1)) * ppl : 0;

    if (ref_out) {
        struct qlm_ref_info info = {
            .n_vocab = r.n_vocab, .n_ctx = r.n_ctx, .n_chunks = r.n_chunks,
            .n_tokens_scored = count, .nll_sum = plain.nll, .nll2_sum = plain.nll2, .ppl = ppl,
        };
        if (writer_finish(&r.w, &info, tokens_hash(tokens, r.n_chunks * r.n_ctx), err) != 0)
            goto done;
    }
    if (ref_in) {
        /* KL mode: llama-perplexity reports PPL(Q) from the float NLLs. */
        double log_ppl, log_ppl_unc, log_base, log_base_unc, unused;
        mean_unc(kl.nll, kl.nll2, kl.count, &log_ppl, &log_ppl_unc);
        mean_unc(kl.nll_base, kl.nll_base2, kl.count, &log_base, &log_base_unc);
        res.has_ref = 1;
        res.nll_mean = log_ppl;
        res.ppl = exp(log_ppl);
        res.ppl_err = res.ppl * log_ppl_unc;
        res.ppl_ref = ref.ppl;
        res.ln_ppl_ratio = log_ppl - log_base;
        mean_unc(kl.kld, kl.kld2, kl.count, &res.kld_mean, &unused);
        size_t n = (size_t)count;
        qsort(r.kld_values, n, sizeof *r.kld_values, cmp_float);
        res.kld_median = median(r.kld_values, n);
        res.kld_p99 = percentile(r.kld_values, n, 0.990f);
        res.kld_max = r.kld_values[n - 1];
        res.same_top_pct = 100.0 * (double)kl.n_same_top / (double)kl.count;
        double dp, dp_mse;
        mean_unc(kl.p_diff, kl.p_diff2, kl.count, &dp, &unused);
        mean_unc(kl.p_diff2, kl.p_diff4, kl.count, &dp_mse, &unused);
        res.dp_mean = 100.0 * dp;
        res.dp_rms = 100.0 * sqrt(dp_mse);
    }
    *out = res;
    rc = 0;
done:
    run_free(&r);
    return rc;
}

void qlm_metrics_of_reference(const struct qlm_ref_info *info, struct qlm_metrics *m)
{
    memset(m, 0, sizeof *m);
    int64_t count = info->n_tokens_scored;
    m->n_chunks = info->n_chunks;
    m->n_tokens_scored = count;
    if (count < 1)
        return;
    double nll = info->nll_sum / (double)count;
    double nll2 = info->nll2_sum / (double)count - nll * nll;
    m->nll_mean = nll;
    m->ppl = exp(nll);
    m->ppl_err = nll2 > 0 && count > 1 ? sqrt(nll2 / (double)(count - 1)) * m->ppl : 0;
    /* the float model against itself: no divergence at all */
    m->has_ref = 1;
    m->ppl_ref = m->ppl;
    m->same_top_pct = 100.0;
}
