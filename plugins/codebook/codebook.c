/* codebook.c — the "codebook" plugin: k-means palettization of weights into 2^bits-entry lookup tables, as Core ML does.
 *
 * Scheme "kmeans", parameters (in this order):
 *   bits        INT 2..8, default 4      index bits; the table has 2^bits entries
 *   group_rows  INT 0..2^30, default 0   0: one table per tensor; else one table
 *                                        per group of that many rows (the last
 *                                        group shorter), like Core ML's
 *                                        per_grouped_channel granularity
 *   seed        INT 0..2^31-1, default 0 seed of the k-means++ sampling
 *   max_iter    INT 1..10000, default 100 cap on Lloyd iterations
 *   lut         ENUM fp16|fp32, default fp16   how table entries are stored
 *
 * Per table, over the values of its rows (a 1-D problem):
 *   1. k-means++ seeding (Arthur & Vassilvitskii 2007) of k = 2^bits
 *      centroids over the multiset of values: the first centroid is a value
 *      drawn uniformly, each next one is drawn with probability proportional
 *      to its squared distance to the nearest centroid so far. Draws use
 *      splitmix64 seeded with seed + 2^32 * (group index), so the result is
 *      deterministic. When every value already is a centroid (fewer distinct
 *      values than k), seeding stops and the remaining entries repeat the
 *      largest centroid.
 *   2. Lloyd iterations: assign each value to its nearest centroid (a value
 *      exactly halfway between two goes to the lower one), move each
 *      centroid to the mean of its values; stop when no assignment changes
 *      or after max_iter moves. An empty cluster keeps its centroid.
 *   3. The table stores the centroids rounded to the lut type (fp16 round
 *      to nearest even, as Core ML keeps the LUT in the fp16 weights'
 *      dtype; or fp32), and every value is then given the index of its
 *      nearest stored entry (ties to the lower entry), so the error is that
 *      of the table actually kept. A centroid beyond the fp16 range (65504)
 *      is an error naming lut=fp32 as the way out.
 * The 1-D structure makes this fast: values are sorted once (radix sort)
 * and collapsed to distinct values with counts; in sorted order every
 * cluster is a contiguous run, found by binary search at the midpoints
 * between centroids, and its mean comes from sums kept per block of
 * distinct values (summed in double). A cluster of one distinct value takes
 * that value exactly, so a tensor with at most 2^bits distinct values
 * (representable in the lut type) comes back unchanged. -0 and +0 count
 * as one value, 0. One table holds at most 2^32 - 2 values (counts are
 * 32-bit); a larger one is refused with a hint to set group_rows.
 * A 4096 x 4096 tensor with one 4-bit table takes about a second.
 *
 * Storage: bits per value plus, per table, 2^bits entries of 16 or 32 bits:
 *   size_bits = n*bits + tables * 2^bits * (16 | 32),
 *   tables = 1 (group_rows = 0) or ceil(rows / group_rows);
 * an empty tensor stores nothing (0 bits).
 *
 * Non-finite inputs are refused with an error. No global state: configure
 * allocates the handle; quantize only reads it and allocates its scratch.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qlab_plugin.h"

/* ---- parameters and handle ---------------------------------------------- */

enum kmeans_param { P_BITS, P_GROUP_ROWS, P_SEED, P_MAX_ITER, P_LUT, P_COUNT };
enum kmeans_lut { LUT_FP16, LUT_FP32 };

static const char *const lut_choices[] = {"fp16", "fp32", NULL};

static const struct qlab_param kmeans_params[P_COUNT] = {
    [P_BITS] = {.name = "bits", .type = QLAB_PARAM_INT,
                .help = "index bits per weight; the table has 2^bits entries",
                .min = 2, .max = 8, .def = 4},
    [P_GROUP_ROWS] = {.name = "group_rows", .type = QLAB_PARAM_INT,
                      .help = "rows sharing one table; 0 = one table for the whole tensor",
                      .min = 0, .max = 1073741824, .def = 0},
    [P_SEED] = {.name = "seed", .type = QLAB_PARAM_INT,
                .help = "seed of the k-means++ initialization",
                .min = 0, .max = 2147483647, .def = 0},
    [P_MAX_ITER] = {.name = "max_iter", .type = QLAB_PARAM_INT,
                    .help = "most Lloyd iterations per table",
                    .min = 1, .max = 10000, .def = 100},
    [P_LUT] = {.name = "lut", .type = QLAB_PARAM_ENUM,
               .help = "table entry type (Core ML keeps the fp16 weights' dtype)",
               .def = LUT_FP16, .choices = lut_choices},
};

struct kmeans_cfg {
    int bits;           /* 2..8 */
    int k;              /* 2^bits table entries */
    int64_t group_rows; /* 0: one table per tensor */
    uint64_t seed;
    int max_iter;
    enum kmeans_lut lut;
};

#define KMAX 256
/* Values per partial sum when drawing k-means++ samples. */
#define SUM_BLOCK 1024
/* How often (in values) the cancel callback is asked while assigning. */
#define CANCEL_EVERY 65536

static int kmeans_configure(const struct qlab_value *v, void **handle, char *err,
                            size_t err_size)
{
    if (v[P_BITS].i < 2 || v[P_BITS].i > 8 || v[P_GROUP_ROWS].i < 0 || v[P_SEED].i < 0 ||
        v[P_MAX_ITER].i < 1 || v[P_LUT].i < 0 || v[P_LUT].i > LUT_FP32) {
        snprintf(err, err_size, "parameter values out of range");
        return -1;
    }
    struct kmeans_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->bits = (int)v[P_BITS].i;
    c->k = 1 << c->bits;
    c->group_rows = v[P_GROUP_ROWS].i;
    c->seed = (uint64_t)v[P_SEED].i;
    c->max_iter = (int)v[P_MAX_ITER].i;
    c->lut = (enum kmeans_lut)v[P_LUT].i;
    *handle = c;
    return 0;
}

static void kmeans_release(void *handle)
{
    free(handle);
}

/* ---- size accounting ---------------------------------------------------- */

static int kmeans_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                            char *err, size_t err_size)
{
    const struct kmeans_cfg *c = handle;
    if (rows < 0 || cols < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)rows, (long long)cols);
        return -1;
    }
    if (rows == 0 || cols == 0) {
        *bits = 0;
        return 0;
    }
    uint64_t n, code_bits, table_bits, total;
    uint64_t gr = (uint64_t)c->group_rows;
    uint64_t tables = gr == 0 ? 1u : ((uint64_t)rows + gr - 1) / gr;
    uint64_t per_table = (uint64_t)c->k * (c->lut == LUT_FP16 ? 16u : 32u);
    if (__builtin_mul_overflow((uint64_t)rows, (uint64_t)cols, &n) ||
        __builtin_mul_overflow(n, (uint64_t)c->bits, &code_bits) ||
        __builtin_mul_overflow(tables, per_table, &table_bits) ||
        __builtin_add_overflow(code_bits, table_bits, &total)) {
        snprintf(err, err_size, "tensor %lld x %lld is too large to count in bits",
                 (long long)rows, (long long)cols);
        return -1;
    }
    *bits = total;
    return 0;
}

/* ---- helpers: random numbers, fp16, sorting ----------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 random bits. */
static double uniform01(uint64_t *state)
{
    return (double)(splitmix64(state) >> 11) * 0x1.0p-53;
}

/* f rounded to the nearest binary16 value (ties to even), returned as a
 * float; +-Inf when it lies beyond the binary16 range. */
static float round_fp16(float f)
{
    if (f == 0 || !isfinite(f))
        return f;
    int e;
    frexpf(fabsf(f), &e); /* |f| in [2^(e-1), 2^e): 11 significant bits -> step 2^(e-11) */
    int qe = e - 11 < -24 ? -24 : e - 11; /* subnormals: step 2^-24 */
    float q = ldexpf(1.0f, qe);
    float r = nearbyintf(fabsf(f) / q) * q;
    return copysignf(r > 65504.0f ? INFINITY : r, f);
}

/* Order-preserving map of a float's bits to an unsigned key, and back. */
static uint32_t float_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static float key_float(uint32_t k)
{
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* LSD radix sort of a[0..n-1] in three 11-bit passes, using b as scratch;
 * returns whichever of the two holds the sorted keys. */
static uint32_t *radix_sort(uint32_t *a, uint32_t *b, int64_t n)
{
    static const int shift[3] = {0, 11, 22};
    for (int p = 0; p < 3; p++) {
        int64_t count[2048] = {0};
        for (int64_t i = 0; i < n; i++)
            count[(a[i] >> shift[p]) & 2047u]++;
        int64_t pos = 0;
        for (int d = 0; d < 2048; d++) {
            int64_t c = count[d];
            count[d] = pos;
            pos += c;
        }
        for (int64_t i = 0; i < n; i++)
            b[count[(a[i] >> shift[p]) & 2047u]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    return a;
}

/* ---- scratch ------------------------------------------------------------ */

/* Working memory of one quantize call, sized for its largest table of m
 * values: two key buffers for the radix sort, which then hold the distinct
 * values (as keys) and their prefix counts, and one double per block of
 * SUM_BLOCK distinct values (k-means++ weights, then Lloyd's prefix sums). */
struct scratch {
    uint32_t *ka, *kb; /* m + 1 each */
    double *blk;       /* m / SUM_BLOCK + 2 */
};

/* Large buffers ask for transparent huge pages: the 4 KiB page faults of a
 * fresh 64 MiB buffer cost more than sorting it on some virtual machines.
 * A hint only; memory from here is released with free(). */
static void *big_alloc(size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const size_t huge = (size_t)2 << 20;
    if (bytes >= 4 * huge) {
        size_t size = (bytes + huge - 1) / huge * huge;
        void *p = aligned_alloc(huge, size);
        if (p)
            madvise(p, size, MADV_HUGEPAGE);
        return p;
    }
#endif
    return malloc(bytes);
}

static void scratch_free(struct scratch *w)
{
    free(w->ka);
    free(w->kb);
    free(w->blk);
}

static int scratch_new(struct scratch *w, int64_t m)
{
    w->ka = big_alloc(((size_t)m + 1) * sizeof *w->ka);
    w->kb = big_alloc(((size_t)m + 1) * sizeof *w->kb);
    w->blk = malloc(((size_t)m / SUM_BLOCK + 2) * sizeof *w->blk);
    if (w->ka && w->kb && w->blk)
        return 0;
    scratch_free(w);
    return -1;
}

/* ---- one table: the 1-D k-means ------------------------------------------ */

/* The distinct values of a table, ascending, with counts as prefix sums:
 * value i is key_float(key[i]) and occurs cum[i+1] - cum[i] times. */
struct distinct {
    const uint32_t *key; /* d keys, ascending */
    const uint32_t *cum; /* d + 1 prefix counts, cum[0] = 0, cum[d] = m */
    int64_t d;
};

static float dval(const struct distinct *s, int64_t i)
{
    return key_float(s->key[i]);
}

static double dcount(const struct distinct *s, int64_t i)
{
    return (double)(s->cum[i + 1] - s->cum[i]);
}

/* Sorts x[0..m-1] (finite) and collapses it to distinct values in w. */
static struct distinct distinct_build(const float *x, int64_t m, struct scratch *w)
{
    for (int64_t i = 0; i < m; i++)
        w->ka[i] = float_key(x[i] == 0 ? 0.0f : x[i]); /* -0 sorts and counts as +0 */
    uint32_t *srt = radix_sort(w->ka, w->kb, m);
    uint32_t *cum = srt == w->ka ? w->kb : w->ka;
    int64_t d = 0;
    cum[0] = 0;
    for (int64_t i = 0; i < m; i++) {
        if (d == 0 || srt[i] != srt[d - 1])
            srt[d++] = srt[i]; /* in place: d <= i */
        cum[d] = (uint32_t)(i + 1);
    }
    return (struct distinct){.key = srt, .cum = cum, .d = d};
}

/* Index of the first distinct value > t (d when none). */
static int64_t upper_bound(const struct distinct *s, double t)
{
    int64_t lo = 0, hi = s->d;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if ((double)dval(s, mid) <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Index of the first distinct value >= t (d when none). */
static int64_t lower_bound(const struct distinct *s, double t)
{
    int64_t lo = 0, hi = s->d;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if ((double)dval(s, mid) < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void sort_doubles(double *a, int n)
{
    for (int i = 1; i < n; i++) {
        double t = a[i];
        int j = i - 1;
        for (; j >= 0 && a[j] > t; j--)
            a[j + 1] = a[j];
        a[j + 1] = t;
    }
}

/* k-means++ weight of distinct value i: count * (distance to the nearest of
 * the nc ascending centres ctr)^2; *p is a hint: the first centre >= the
 * value, for walks over ascending values. */
static double pp_weight(const struct distinct *s, int64_t i, const double *ctr, int nc, int *p)
{
    const double v = dval(s, i);
    while (*p < nc && ctr[*p] < v)
        ++*p;
    double dist = INFINITY;
    if (*p < nc)
        dist = ctr[*p] - v;
    if (*p > 0 && v - ctr[*p - 1] < dist)
        dist = v - ctr[*p - 1];
    return dcount(s, i) * dist * dist;
}

/* The sum of the weights of block b, always in the same order. */
static double pp_block(const struct distinct *s, int64_t b, const double *ctr, int nc)
{
    int64_t end = (b + 1) * SUM_BLOCK < s->d ? (b + 1) * SUM_BLOCK : s->d;
    int p = 0;
    double t = 0;
    for (int64_t i = b * SUM_BLOCK; i < end; i++)
        t += pp_weight(s, i, ctr, nc, &p);
    return t;
}

/* k-means++ seeding; mu gets k centroids, ascending. The weights are never
 * stored: bsum holds their sum per block, and a draw walks one block. */
static void seed_plusplus(const struct distinct *s, int k, uint64_t rng, double *bsum,
                          double *mu)
{
    const int64_t d = s->d, nb = (d + SUM_BLOCK - 1) / SUM_BLOCK;
    /* First centroid: a value drawn uniformly from all m values. */
    const uint32_t m = s->cum[d];
    uint64_t r = (uint64_t)(uniform01(&rng) * (double)m);
    if (r >= m)
        r = m - 1;
    int64_t lo = 0, hi = d; /* the i with cum[i] <= r < cum[i+1] */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->cum[mid] <= r)
            lo = mid;
        else
            hi = mid;
    }
    int nc = 1;
    mu[0] = dval(s, lo);
    for (int64_t b = 0; b < nb; b++)
        bsum[b] = pp_block(s, b, mu, nc);
    while (nc < k) {
        double total = 0;
        for (int64_t b = 0; b < nb; b++)
            total += bsum[b];
        if (!(total > 0))
            break; /* every value is a centroid */
        double t = uniform01(&rng) * total, acc = 0;
        int64_t b = 0, pick = -1;
        for (; b < nb - 1 && acc + bsum[b] <= t; b++)
            acc += bsum[b];
        int p = 0;
        int64_t end = (b + 1) * SUM_BLOCK < d ? (b + 1) * SUM_BLOCK : d;
        for (int64_t i = b * SUM_BLOCK; i < end; i++) {
            double wi = pp_weight(s, i, mu, nc, &p);
            if (wi > 0)
                pick = i; /* the last candidate, should rounding run past t */
            acc += wi;
            if (wi > 0 && acc > t)
                break;
        }
        for (b = nb - 1; pick < 0 && b >= 0; b--) { /* a block whose sum rounded to 0 */
            if (bsum[b] > 0) {
                p = 0;
                end = (b + 1) * SUM_BLOCK < d ? (b + 1) * SUM_BLOCK : d;
                for (int64_t i = b * SUM_BLOCK; i < end; i++)
                    if (pp_weight(s, i, mu, nc, &p) > 0)
                        pick = i;
            }
        }
        if (pick < 0)
            break;
        /* Insert the new centre; only values between its neighbours move to it. */
        const double c = dval(s, pick);
        int at = nc;
        while (at > 0 && mu[at - 1] > c) {
            mu[at] = mu[at - 1];
            at--;
        }
        mu[at] = c;
        nc++;
        int64_t from = at > 0 ? upper_bound(s, mu[at - 1]) : 0;
        int64_t to = at + 1 < nc ? lower_bound(s, mu[at + 1]) : d;
        for (int64_t bb = from / SUM_BLOCK; bb < nb && bb * SUM_BLOCK < to; bb++)
            bsum[bb] = pp_block(s, bb, mu, nc);
    }
    for (int j = nc; j < k; j++)
        mu[j] = mu[nc - 1];
}

/* Sum of count * value over distinct values [a, b). bpre[q] is the sum over
 * blocks before block q; short ranges are summed directly. */
static double range_sum(const struct distinct *s, const double *bpre, int64_t a, int64_t b)
{
    double t = 0;
    if (b - a <= 2 * SUM_BLOCK) {
        for (int64_t i = a; i < b; i++)
            t += dcount(s, i) * dval(s, i);
        return t;
    }
    int64_t qa = a / SUM_BLOCK, qb = b / SUM_BLOCK;
    double head = 0, tail = 0; /* [qa*SB, a) and [qb*SB, b) */
    for (int64_t i = qa * SUM_BLOCK; i < a; i++)
        head += dcount(s, i) * dval(s, i);
    for (int64_t i = qb * SUM_BLOCK; i < b; i++)
        tail += dcount(s, i) * dval(s, i);
    return (bpre[qb] - bpre[qa]) + (tail - head);
}

/* bound[j] = first distinct index of cluster j; bound[k] = d. */
static void assign(const struct distinct *s, const double *mu, int k, int64_t *bound)
{
    bound[0] = 0;
    for (int j = 1; j < k; j++)
        bound[j] = upper_bound(s, (mu[j - 1] + mu[j]) / 2);
    bound[k] = s->d;
}

static int is_cancelled(const struct qlab_host *host)
{
    return host && host->struct_size >= offsetof(struct qlab_host, cancelled) +
                                            sizeof host->cancelled &&
           host->cancelled && host->cancelled(host->ctx);
}

/* Lloyd iterations from the seeded mu (ascending); -1 when cancelled. */
static int lloyd(const struct distinct *s, int k, int max_iter, double *bpre, double *mu,
                 const struct qlab_host *host)
{
    int64_t bound[KMAX + 1], prev[KMAX + 1];
    const int64_t nb = (s->d + SUM_BLOCK - 1) / SUM_BLOCK;
    bpre[0] = 0;
    for (int64_t q = 0; q < nb; q++) {
        int64_t end = (q + 1) * SUM_BLOCK < s->d ? (q + 1) * SUM_BLOCK : s->d;
        double t = 0;
        for (int64_t i = q * SUM_BLOCK; i < end; i++)
            t += dcount(s, i) * dval(s, i);
        bpre[q + 1] = bpre[q] + t;
    }
    assign(s, mu, k, bound);
    for (int it = 0; it < max_iter; it++) {
        if (is_cancelled(host))
            return -1;
        for (int j = 0; j < k; j++) {
            int64_t a = bound[j], b = bound[j + 1];
            if (a == b)
                continue; /* empty: keeps its centroid */
            mu[j] = b - a == 1 ? (double)dval(s, a)
                               : range_sum(s, bpre, a, b) / (double)(s->cum[b] - s->cum[a]);
        }
        sort_doubles(mu, k);
        memcpy(prev, bound, sizeof bound);
        assign(s, mu, k, bound);
        if (memcmp(prev, bound, sizeof bound) == 0)
            break;
    }
    return 0;
}

/* ---- quantization ------------------------------------------------------- */

/* The index of the entry nearest x: the number of midpoints below x (a
 * value on a midpoint takes the lower entry). Branch-free halving over
 * n >= 1 ascending midpoints. */
static int nearest_entry(const double *mid, int n, double x)
{
    int at = 0;
    while (n > 1) {
        int half = n / 2;
        at += half & -(int)(mid[at + half - 1] < x); /* no branch to mispredict */
        n -= half;
    }
    return at + (mid[at] < x);
}

/* Palettizes the m values x (rows of one table) into y; group = table index. */
static int palettize(const struct kmeans_cfg *c, const float *x, float *y, int64_t m,
                     int64_t base, int64_t group, struct scratch *w,
                     const struct qlab_host *host, char *err, size_t err_size)
{
    for (int64_t i = 0; i < m; i++) {
        if (!isfinite(x[i])) {
            snprintf(err, err_size, "non-finite input value at index %lld",
                     (long long)(base + i));
            return -1;
        }
    }
    double mu[KMAX];
    struct distinct s = distinct_build(x, m, w);
    seed_plusplus(&s, c->k, c->seed + ((uint64_t)group << 32), w->blk, mu);
    if (lloyd(&s, c->k, c->max_iter, w->blk, mu, host)) {
        snprintf(err, err_size, "cancelled");
        return -1;
    }
    /* The stored table, and the midpoints that pick its nearest entry. */
    float lut[KMAX];
    double mid[KMAX];
    for (int j = 0; j < c->k; j++) {
        lut[j] = c->lut == LUT_FP16 ? round_fp16((float)mu[j]) : (float)mu[j];
        if (!isfinite(lut[j])) {
            snprintf(err, err_size, "table %lld: centroid %g is beyond the fp16 range; "
                     "use lut=fp32", (long long)group, mu[j]);
            return -1;
        }
    }
    for (int j = 1; j < c->k; j++)
        mid[j - 1] = ((double)lut[j - 1] + (double)lut[j]) / 2;
    for (int64_t i0 = 0; i0 < m; i0 += CANCEL_EVERY) {
        if (i0 > 0 && is_cancelled(host)) {
            snprintf(err, err_size, "cancelled");
            return -1;
        }
        int64_t end = m - i0 < CANCEL_EVERY ? m : i0 + CANCEL_EVERY;
        for (int64_t i = i0; i < end; i++)
            y[i] = lut[nearest_entry(mid, c->k - 1, x[i])];
    }
    return 0;
}

static int kmeans_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                           int64_t out_capacity, int64_t *n_written,
                           const struct qlab_host *host, char *err, size_t err_size)
{
    const struct kmeans_cfg *c = handle;
    int64_t rows = in->rows, cols = in->cols, n;
    *n_written = 0;
    if (rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) || n > out_capacity) {
        snprintf(err, err_size, "shape %lld x %lld does not fit the output (%lld floats)",
                 (long long)rows, (long long)cols, (long long)out_capacity);
        return -1;
    }
    if (n == 0)
        return 0;
    if (!in->data) {
        snprintf(err, err_size, "no input data");
        return -1;
    }
    const int64_t gr = c->group_rows == 0 || c->group_rows > rows ? rows : c->group_rows;
    if ((uint64_t)(gr * cols) >= UINT32_MAX) {
        snprintf(err, err_size, "a table of %lld values is more than this scheme counts; "
                 "use group_rows", (long long)(gr * cols));
        return -1;
    }
    struct scratch w;
    if (scratch_new(&w, gr * cols)) {
        snprintf(err, err_size, "out of memory for a table of %lld values",
                 (long long)(gr * cols));
        return -1;
    }
    int rc = 0;
    for (int64_t r = 0, g = 0; r < rows && rc == 0; r += gr, g++) {
        if (is_cancelled(host)) {
            snprintf(err, err_size, "cancelled");
            rc = -1;
            break;
        }
        int64_t nr = rows - r < gr ? rows - r : gr;
        int64_t at = r * cols;
        rc = palettize(c, in->data + at, out + at, nr * cols, at, g, &w, host, err, err_size);
    }
    scratch_free(&w);
    if (rc == 0)
        *n_written = n;
    return rc;
}

/* ---- descriptor --------------------------------------------------------- */

static const struct qlab_scheme kmeans_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "kmeans",
    .description = "k-means palettization: 2^bits-entry lookup table per tensor or row group",
    .params = kmeans_params,
    .n_params = P_COUNT,
    .configure = kmeans_configure,
    .release = kmeans_release,
    .size_bits = kmeans_size_bits,
    .quantize = kmeans_quantize,
};

static const struct qlab_scheme *const kmeans_schemes[] = {&kmeans_scheme};

static const struct qlab_plugin codebook_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "codebook",
    .version = "1.0.0",
    .description = "lookup-table (palettized) weights from 1-D k-means, as Core ML",
    .schemes = kmeans_schemes,
    .n_schemes = 1,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &codebook_plugin : NULL;
}
