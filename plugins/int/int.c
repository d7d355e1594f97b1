/* int.c — the built-in "int" plugin: uniform affine integer quantization of weights.
 *
 * Scheme "int", parameters (in this order; later ones were appended, so a
 * recipe written before them keeps its meaning, and their defaults give
 * exactly the results of the first four alone):
 *   bits         INT 2..8, default 8      bits per weight code
 *   symmetric    BOOL, default true       symmetric around zero (no zero point)
 *   granularity  ENUM tensor|channel|group, default channel
 *   group        INT 1..1048576, default 128: G for granularity=group
 *   clip         ENUM minmax|mse|percentile, default minmax: how a group's range is chosen
 *   percentile   FLOAT 50..100, default 99.99: p for clip=percentile
 *   scale_dtype  ENUM fp32|fp16|e8m0, default fp32: how each scale is stored
 *
 * Groups. A quantization group is the whole tensor (tensor), one row, i.e.
 * one output channel (channel), or G consecutive elements of a row (group;
 * the last group of a row is shorter when cols % G != 0). Each group has
 * its own scale (and zero point).
 *
 * Range. Each group's range [lo, hi] is chosen by `clip`:
 *   minmax      lo = min x, hi = max x over the group.
 *   percentile  nearest rank on the sorted values: the p-th percentile of
 *               n values is the k-th smallest, k = ceil(n * p / 100)
 *               (computed in double; within a relative 1e-9 of an integer
 *               counts as that integer, so 99.99 % of 10000 is k = 9999
 *               although 99.99 has no exact binary form), k clamped to
 *               1..n. Symmetric: amax = the p-th percentile of |x|.
 *               Asymmetric: lo = the (100-p)-th, hi = the p-th percentile
 *               of x. p = 100 is minmax exactly. (Found by radix selection
 *               on the float bit patterns: no copy and no sort, O(n).)
 *   mse         a grid of 100 clip ratios r_k = fl32(k / 100), k = 1..100:
 *               symmetric amax_k = fl32(amax * r_k), asymmetric
 *               lo_k = fl32(lo * r_k), hi_k = fl32(hi * r_k) (lo, hi the
 *               minmax range after it is widened to hold 0, see below).
 *               Each candidate is quantized exactly as it would be stored
 *               (scale_dtype included) and the one with the smallest sum of
 *               squared errors sum_i ((double)x_i - (double)x'_i)^2, added
 *               in index order in double, wins; ties go to the larger r.
 *               r = 1 is the minmax grid, so mse never does worse than
 *               minmax on a group. Candidates whose scale cannot be stored
 *               are skipped; when none can, the r = 1 error is reported.
 *
 * Grid, from the range:
 * Symmetric:  qmax = 2^(bits-1) - 1, scale = max(|lo|, |hi|) / qmax,
 *             q = clamp(round(x / scale), -qmax, qmax), x' = q * scale.
 *             (The restricted range: -2^(bits-1) is never used, so the grid
 *             is symmetric and zero needs no zero point.)
 * Asymmetric: lo = min(lo, 0), hi = max(hi, 0) (zero stays exactly
 *             representable, as PyTorch's MinMaxObserver does),
 *             scale = (hi - lo) / (2^bits - 1),
 *             z = clamp(round(-lo / scale), 0, 2^bits - 1),
 *             q = clamp(round(x / scale) + z, 0, 2^bits - 1), x' = (q - z) * scale.
 * round is round-half-to-even and all of it is float32 arithmetic, so
 * results are bit-reproducible. Note x / scale is a true division:
 * PyTorch's quantize_val multiplies by a float 1/scale instead, which can
 * land on the other side of a tie (for scale = fl(3.25/3), 1.625/scale is
 * 1.5 but 1.625*(1/scale) is 1.49999988); the tests pin the division. A
 * group whose scale is 0 (all zeros, or so tiny the scale underflows)
 * dequantizes to zeros; no division by a zero scale is ever made.
 * Non-finite inputs are refused with an error.
 *
 * Scale storage (scale_dtype). The scale above is rounded to what is
 * stored before it is used (the zero point is computed from the stored
 * scale):
 *   fp32  as computed.
 *   fp16  IEEE binary16, round to nearest even (subnormal halves, multiples
 *         of 2^-24, included). A scale that rounds to 0 (below 2^-25, or
 *         2^-25 itself) makes the group zeros, as an underflowing fp32
 *         scale does; one that rounds past 65504 (>= 65520) is an error.
 *   e8m0  an 8-bit power-of-two exponent, 2^-127..2^127 (OCP MX E8M0):
 *         the scale rounds UP to a power of two, so the range still fits
 *         the grid and no value clips further than with fp32 (asymmetric:
 *         up to the zero point's rounding, as with fp32). Below 2^-127 it
 *         becomes 2^-127; above 2^127 is an error. A scale of 0 stays 0
 *         (all codes are 0, so any stored exponent decodes to zeros).
 *
 * Storage: `bits` per element, plus per group a scale of 32, 16 or 8 bits
 * (scale_dtype) and, when asymmetric, a zero point of `bits` bits:
 *   size_bits = n*bits + groups*(scale_bits + (symmetric ? 0 : bits)),
 *   groups = 1 (tensor), rows (channel) or rows*ceil(cols/G) (group);
 * an empty tensor stores nothing (0 bits).
 *
 * Speed. minmax is one pass over a group and the quantize pass a second
 * (a row is still in cache); both are loops with independent lanes that
 * GCC >= 12 vectorizes at -O2 with baseline SSE2, no libm call per
 * element (rounding is the 1.5*2^23 trick). The quantize pass is bound by
 * the division; x * (1/scale) measured only ~6% faster overall, and it is
 * not exact, so the division stays.
 *
 * No global state: configure allocates the handle; quantize only reads it.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab_plugin.h"

#if defined(__FAST_MATH__)
#error "int.c needs IEEE float32 semantics (exact division and rounding): build without -ffast-math"
#endif

/* ---- parameters and handle ---------------------------------------------- */

enum int_param {
    P_BITS, P_SYMMETRIC, P_GRANULARITY, P_GROUP, /* the first revision */
    P_CLIP, P_PERCENTILE, P_SCALE_DTYPE,         /* appended */
    P_COUNT
};
enum int_gran { G_TENSOR, G_CHANNEL, G_GROUP, G_COUNT };
enum int_clip { C_MINMAX, C_MSE, C_PERCENTILE, C_COUNT };
enum int_sdtype { S_FP32, S_FP16, S_E8M0, S_COUNT };

static const char *const gran_choices[] = {"tensor", "channel", "group", NULL};
static const char *const clip_choices[] = {"minmax", "mse", "percentile", NULL};
static const char *const sdtype_choices[] = {"fp32", "fp16", "e8m0", NULL};

static const struct qlab_param int_params[P_COUNT] = {
    [P_BITS] = {.name = "bits", .type = QLAB_PARAM_INT, .help = "bits per weight code",
                .min = 2, .max = 8, .def = 8},
    [P_SYMMETRIC] = {.name = "symmetric", .type = QLAB_PARAM_BOOL,
                     .help = "symmetric around zero (no zero point)", .def = 1},
    [P_GRANULARITY] = {.name = "granularity", .type = QLAB_PARAM_ENUM,
                       .help = "one scale per tensor, per output channel (row) or per group "
                               "of G along the input dimension",
                       .def = G_CHANNEL, .choices = gran_choices},
    [P_GROUP] = {.name = "group", .type = QLAB_PARAM_INT,
                 .help = "group size G along the input dimension (granularity=group)",
                 .min = 1, .max = 1048576, .def = 128},
    [P_CLIP] = {.name = "clip", .type = QLAB_PARAM_ENUM,
                .help = "range of each group: min/max, the clip ratio (of 100) with least "
                        "squared error, or a percentile of the values",
                .def = C_MINMAX, .choices = clip_choices},
    [P_PERCENTILE] = {.name = "percentile", .type = QLAB_PARAM_FLOAT,
                      .help = "clip=percentile: range is this nearest-rank percentile of |x| "
                              "(symmetric) or the (100-p, p) percentiles of x",
                      .min = 50, .max = 100, .def = 99.99},
    [P_SCALE_DTYPE] = {.name = "scale_dtype", .type = QLAB_PARAM_ENUM,
                       .help = "scale storage: fp32, fp16 (nearest even) or e8m0 (power of "
                               "two, rounded up)",
                       .def = S_FP32, .choices = sdtype_choices},
};

struct int_cfg {
    int bits;              /* 2..8 */
    int symmetric;         /* 0 or 1 */
    enum int_gran gran;
    int64_t group;         /* G, elements; used when gran == G_GROUP */
    enum int_clip clip;
    double percentile;     /* 50..100; used when clip == C_PERCENTILE */
    enum int_sdtype sdtype;
};

/* How often (in elements) the cancel callback is asked. */
#define CANCEL_EVERY 65536

static int int_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    /* The host checked types and ranges; check again, cheaply, so a
     * direct caller cannot drive the shifts and tables below out of range. */
    if (v[P_BITS].i < 2 || v[P_BITS].i > 8 || v[P_GRANULARITY].i < 0 ||
        v[P_GRANULARITY].i >= G_COUNT || v[P_GROUP].i < 1 || v[P_CLIP].i < 0 ||
        v[P_CLIP].i >= C_COUNT || !(v[P_PERCENTILE].f >= 50 && v[P_PERCENTILE].f <= 100) ||
        v[P_SCALE_DTYPE].i < 0 || v[P_SCALE_DTYPE].i >= S_COUNT) {
        snprintf(err, err_size, "parameter values out of range");
        return -1;
    }
    struct int_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->bits = (int)v[P_BITS].i;
    c->symmetric = v[P_SYMMETRIC].i != 0;
    c->gran = (enum int_gran)v[P_GRANULARITY].i;
    c->group = v[P_GROUP].i;
    c->clip = (enum int_clip)v[P_CLIP].i;
    c->percentile = v[P_PERCENTILE].f;
    c->sdtype = (enum int_sdtype)v[P_SCALE_DTYPE].i;
    *handle = c;
    return 0;
}

static void int_release(void *handle)
{
    free(handle);
}

/* ---- scale formats -------------------------------------------------------- */

/* Round half to even for |v| < 2^22 without a libm call: adding 1.5*2^23
 * leaves no fraction bits, so the float addition itself rounds (in the
 * default rounding mode), and subtracting it back is exact. Needs float
 * arithmetic done in float (FLT_EVAL_METHOD 0, as on x86-64 and AArch64);
 * elsewhere the libm call is the safe answer. */
static inline float round_even(float v)
{
#if FLT_EVAL_METHOD == 0
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
#else
    return nearbyintf(v);
#endif
}

/* Each rounds a positive finite scale to the value its format stores, or
 * returns -1 when the format cannot hold it. */
static int round_fp32(float s, float *out)
{
    *out = s;
    return 0;
}

static int round_fp16(float s, float *out)
{
    if (s >= 65520.0f) /* half-way to 2^16 and beyond round to +Inf */
        return -1;
    if (s < 0x1p-14f) {
        /* Subnormal halves are the multiples of 2^-24; both scalings are exact. */
        *out = round_even(s * 0x1p24f) * 0x1p-24f;
        return 0;
    }
    /* Normal: keep 11 significant bits of 24, nearest even; a carry out
     * of the mantissa correctly bumps the exponent. */
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    u += 0x0fffu + ((u >> 13) & 1u);
    u &= ~(uint32_t)0x1fff;
    memcpy(out, &u, sizeof u);
    return 0;
}

static int round_e8m0(float s, float *out)
{
    if (s <= 0x1p-127f) {
        *out = 0x1p-127f;
        return 0;
    }
    int e;
    float m = frexpf(s, &e); /* s = m * 2^e, m in [0.5, 1) */
    if (m == 0.5f)
        e--;                 /* already a power of two */
    if (e > 127)
        return -1;
    *out = ldexpf(1.0f, e);
    return 0;
}

static const struct scale_format {
    const char *name;      /* as in the scale_dtype parameter */
    uint64_t bits;         /* stored bits per scale */
    const char *limit;     /* the largest storable scale, for messages */
    int (*round)(float s, float *out);
} scale_formats[S_COUNT] = {
    [S_FP32] = {.name = "fp32", .bits = 32, .limit = "FLT_MAX", .round = round_fp32},
    [S_FP16] = {.name = "fp16", .bits = 16, .limit = "65504", .round = round_fp16},
    [S_E8M0] = {.name = "e8m0", .bits = 8, .limit = "2^127", .round = round_e8m0},
};

/* ---- size accounting ---------------------------------------------------- */

static int int_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                         char *err, size_t err_size)
{
    const struct int_cfg *c = handle;
    if (rows < 0 || cols < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)rows, (long long)cols);
        return -1;
    }
    if (rows == 0 || cols == 0) {
        *bits = 0;
        return 0;
    }
    uint64_t r = (uint64_t)rows, n, groups;
    if (__builtin_mul_overflow(r, (uint64_t)cols, &n))
        goto too_big;
    switch (c->gran) {
    case G_TENSOR: groups = 1; break;
    case G_CHANNEL: groups = r; break;
    default: {
        uint64_t per_row = ((uint64_t)cols + (uint64_t)c->group - 1) / (uint64_t)c->group;
        if (__builtin_mul_overflow(r, per_row, &groups))
            goto too_big;
    }
    }
    uint64_t code_bits, group_bits, total;
    uint64_t per_group = scale_formats[c->sdtype].bits + (c->symmetric ? 0u : (uint64_t)c->bits);
    if (__builtin_mul_overflow(n, (uint64_t)c->bits, &code_bits) ||
        __builtin_mul_overflow(groups, per_group, &group_bits) ||
        __builtin_add_overflow(code_bits, group_bits, &total))
        goto too_big;
    *bits = total;
    return 0;
too_big:
    snprintf(err, err_size, "tensor %lld x %lld is too large to count in bits",
             (long long)rows, (long long)cols);
    return -1;
}

/* ---- kernels ------------------------------------------------------------- */

/* Loops keep one accumulator per lane and run over blocks of lanes, so
 * that they vectorize without reassociating float arithmetic (results are
 * the same whatever the vector width); tails are the same code, scalar.
 * The shapes below are measured ones: GCC 12 -O2 keeps two sets of 4 lanes
 * in registers (minmax 26 GB/s), but a [2][4] array or 16 lanes in memory
 * (9-14 GB/s). */
#define LANES 4         /* one SSE vector of floats */
#define APPLY_BLOCK 16  /* floats per block of the quantize loop */

/* One grid: x' = (clamp(round(x / scale) + zero, qlo, qhi) - zero) * scale. */
struct grid {
    float scale;
    float zero;     /* zero point; 0 when symmetric */
    float qlo, qhi; /* code range */
};

/* Lane j holds the min, the max and the finiteness sum of x[j], x[j + LANES], ... */
struct lanes {
    float mn[LANES], mx[LANES];
    float nf[LANES]; /* sum of x - x: +0 while all are finite, NaN (sticky) after Inf or NaN */
};

static void lanes_init(struct lanes *l, float first)
{
    for (int j = 0; j < LANES; j++) {
        l->mn[j] = l->mx[j] = first;
        l->nf[j] = 0;
    }
}

static inline void lanes_add(struct lanes *l, const float *restrict x)
{
    for (int j = 0; j < LANES; j++) {
        float v = x[j];
        l->mn[j] = v < l->mn[j] ? v : l->mn[j];
        l->mx[j] = v > l->mx[j] ? v : l->mx[j];
        l->nf[j] += v - v;
    }
}

/* min and max of x[0..n-1] (n >= 1) in one pass; -1 when a value is not
 * finite, then *bad = the index of the first. */
static int minmax(const float *restrict x, int64_t n, float *lo, float *hi, int64_t *bad)
{
    struct lanes a, b; /* two sets, so two dependency chains run at once */
    lanes_init(&a, x[0]);
    lanes_init(&b, x[0]);
    int64_t nb = n - n % (2 * LANES), i = 0;
    for (; i < nb; i += 2 * LANES) {
        lanes_add(&a, x + i);
        lanes_add(&b, x + i + LANES);
    }
    for (; i < n; i++) {
        float v = x[i];
        a.mn[0] = v < a.mn[0] ? v : a.mn[0];
        a.mx[0] = v > a.mx[0] ? v : a.mx[0];
        a.nf[0] += v - v;
    }
    float mn = a.mn[0], mx = a.mx[0], f = 0;
    for (int j = 0; j < LANES; j++) {
        mn = a.mn[j] < mn ? a.mn[j] : mn;
        mn = b.mn[j] < mn ? b.mn[j] : mn;
        mx = a.mx[j] > mx ? a.mx[j] : mx;
        mx = b.mx[j] > mx ? b.mx[j] : mx;
        f += a.nf[j] + b.nf[j];
    }
    if (f != 0) {
        for (i = 0; i < n && isfinite(x[i]); i++)
            ;
        *bad = i;
        return -1;
    }
    *lo = mn;
    *hi = mx;
    return 0;
}

/* The grid's dequantized values of x[0..n-1]. Clamping before rounding is
 * the same as after (round is monotone and keeps integers), keeps |v|
 * small enough for round_even, and clamps in units of q - zero, so
 * (q - zero) is never formed from a rounded sum. */
static void apply_grid(const struct grid *g, const float *restrict x, float *restrict y, int64_t n)
{
    if (!(g->scale > 0)) {
        memset(y, 0, (size_t)n * sizeof *y);
        return;
    }
    const float s = g->scale, lo = g->qlo - g->zero, hi = g->qhi - g->zero;
    int64_t nb = n - n % APPLY_BLOCK, i = 0;
    for (; i < nb; i += APPLY_BLOCK) {
        for (int j = 0; j < APPLY_BLOCK; j++) {
            float v = x[i + j] / s;
            v = v < lo ? lo : v;
            v = v > hi ? hi : v;
            y[i + j] = round_even(v) * s;
        }
    }
    for (; i < n; i++) {
        float v = x[i] / s;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        y[i] = round_even(v) * s;
    }
}

/* Sum of squared errors of the grid over x[0..n-1], in index order, in
 * double. Partial sums never decrease, so it stops once it reaches limit
 * (the result is then >= limit, which is all the caller needs). */
static double grid_sse(const struct grid *g, const float *x, int64_t n, double limit)
{
    enum { BLOCK = 256 };
    float y[BLOCK];
    double sse = 0;
    for (int64_t i = 0; i < n && sse < limit; i += BLOCK) {
        int64_t len = n - i < BLOCK ? n - i : BLOCK;
        apply_grid(g, x + i, y, len);
        for (int64_t j = 0; j < len; j++) {
            double d = (double)x[i + j] - (double)y[j];
            sse += d * d;
        }
    }
    return sse;
}

/* ---- percentiles: radix selection ------------------------------------- */

/* A uint32 key whose order is the order of the values (of |v| when magnitude). */
static uint32_t order_key(float v, int magnitude)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if (magnitude)
        return u & 0x7fffffffu;
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

static float key_value(uint32_t k, int magnitude)
{
    uint32_t u = magnitude ? k : (k & 0x80000000u) ? k & 0x7fffffffu : ~k;
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* For t < nk (1 or 2), out[t] = the rank[t]-th smallest (0-based) of x[0..n-1]
 * as order keys: four passes of 8 bits each, most significant first, each
 * counting only the values whose higher bits match the answer so far. */
static void select_ranks(const float *x, int64_t n, int magnitude, int nk, const int64_t *rank,
                         float *out)
{
    uint32_t prefix[2] = {0, 0}, mask = 0;
    int64_t want[2] = {rank[0], nk > 1 ? rank[1] : 0};
    for (int shift = 24; shift >= 0; shift -= 8) {
        int64_t hist[2][256];
        memset(hist, 0, sizeof hist);
        for (int64_t i = 0; i < n; i++) {
            uint32_t key = order_key(x[i], magnitude);
            for (int t = 0; t < nk; t++)
                if ((key & mask) == prefix[t])
                    hist[t][(key >> shift) & 255u]++;
        }
        for (int t = 0; t < nk; t++) {
            uint32_t b = 0;
            while (b < 255 && want[t] >= hist[t][b]) /* the bucket holding rank want[t] */
                want[t] -= hist[t][b++];
            prefix[t] |= b << shift;
        }
        mask |= 255u << shift;
    }
    for (int t = 0; t < nk; t++)
        out[t] = key_value(prefix[t], magnitude);
}

/* Nearest rank (1-based, 1..n) of the p-th percentile of n values. */
static int64_t nearest_rank(int64_t n, double p)
{
    double t = (double)n * p / 100.0, r = nearbyint(t);
    if (fabs(t - r) <= 1e-9 * t)
        t = r;
    double k = ceil(t);
    return k < 1 ? 1 : k > (double)n ? n : (int64_t)k;
}

/* ---- grids from ranges --------------------------------------------------- */

enum grid_status { GRID_OK, GRID_FLOAT_RANGE, GRID_SCALE_RANGE };

static enum grid_status make_grid(const struct int_cfg *c, float lo, float hi, struct grid *g)
{
    const struct scale_format *sf = &scale_formats[c->sdtype];
    float levels;
    if (c->symmetric) {
        levels = (float)((1 << (c->bits - 1)) - 1); /* qmax */
        float amax = fmaxf(fabsf(lo), fabsf(hi));
        g->scale = amax / levels;
        g->qlo = -levels;
    } else {
        levels = (float)((1 << c->bits) - 1);
        lo = fminf(lo, 0.0f);
        hi = fmaxf(hi, 0.0f);
        g->scale = (hi - lo) / levels;
        g->qlo = 0;
    }
    g->qhi = levels;
    g->zero = 0;
    if (!isfinite(g->scale))
        return GRID_FLOAT_RANGE;
    if (g->scale > 0 && sf->round(g->scale, &g->scale))
        return GRID_SCALE_RANGE;
    if (!c->symmetric && g->scale > 0)
        g->zero = fminf(fmaxf(nearbyintf(-lo / g->scale), 0.0f), levels);
    /* The widest dequantized value must stay a float (only ranges near
     * FLT_MAX can break this). */
    float reach = fmaxf(g->zero - g->qlo, g->qhi - g->zero);
    return isfinite(reach * g->scale) ? GRID_OK : GRID_FLOAT_RANGE;
}

/* What one quantize call works with: the handle, the host and the error buffer. */
struct job {
    const struct int_cfg *c;
    const struct qlab_host *host;
    char *err;
    size_t err_size;
};

static int is_cancelled(const struct qlab_host *host)
{
    return host && host->struct_size >= offsetof(struct qlab_host, cancelled) +
                                            sizeof host->cancelled &&
           host->cancelled && host->cancelled(host->ctx);
}

/* The clip=mse grid of x[0..n-1], whose minmax range (widened to hold 0
 * when asymmetric) is [lo, hi]; GRID_OK or r = 1's failure. */
static enum grid_status mse_grid(const struct job *jb, const float *x, int64_t n, float lo,
                                 float hi, struct grid *best, int *cancelled)
{
    const struct int_cfg *c = jb->c;
    float amax = fmaxf(fabsf(lo), fabsf(hi));
    enum grid_status first = GRID_OK;
    double best_sse = INFINITY;
    int have = 0;
    for (int k = 100; k >= 1; k--) {
        /* Large tensors: ask about cancel between candidates. */
        if (n >= CANCEL_EVERY && is_cancelled(jb->host)) {
            *cancelled = 1;
            return GRID_OK;
        }
        float r = (float)k / 100.0f;
        struct grid g;
        enum grid_status st = c->symmetric ? make_grid(c, 0.0f, amax * r, &g)
                                           : make_grid(c, lo * r, hi * r, &g);
        if (k == 100)
            first = st;
        if (st != GRID_OK)
            continue;
        if (have && g.scale == best->scale && g.zero == best->zero)
            continue; /* the same grid (e8m0 scales repeat): the larger r is kept */
        double sse = grid_sse(&g, x, n, best_sse);
        if (!have || sse < best_sse) {
            *best = g;
            best_sse = sse;
            have = 1;
        }
    }
    return have ? GRID_OK : first;
}

/* Chooses the grid of x[0..n-1] (n >= 1) as `clip` says. base is x's
 * index in the tensor, or -1 for the whole tensor (messages then name no
 * index). Fills jb->err on failure. */
static int choose_grid(const struct job *jb, const float *x, int64_t n, int64_t base,
                       struct grid *g)
{
    const struct int_cfg *c = jb->c;
    float lo, hi;
    int64_t bad = 0;
    if (minmax(x, n, &lo, &hi, &bad)) {
        snprintf(jb->err, jb->err_size, "non-finite input value at index %lld",
                 (long long)((base < 0 ? 0 : base) + bad));
        return -1;
    }
    enum grid_status st;
    int cancelled = 0;
    if (c->clip == C_PERCENTILE) {
        float v[2];
        if (c->symmetric) {
            int64_t k = nearest_rank(n, c->percentile) - 1;
            select_ranks(x, n, 1, 1, &k, v);
            lo = 0.0f;
            hi = v[0];
        } else {
            int64_t k[2] = {nearest_rank(n, 100.0 - c->percentile) - 1,
                            nearest_rank(n, c->percentile) - 1};
            select_ranks(x, n, 0, 2, k, v);
            lo = v[0];
            hi = v[1];
        }
        st = make_grid(c, lo, hi, g);
    } else if (c->clip == C_MSE) {
        if (!c->symmetric) {
            lo = fminf(lo, 0.0f);
            hi = fmaxf(hi, 0.0f);
        }
        st = mse_grid(jb, x, n, lo, hi, g, &cancelled);
    } else {
        st = make_grid(c, lo, hi, g);
    }
    if (cancelled) {
        snprintf(jb->err, jb->err_size, "cancelled");
        return -1;
    }
    if (st == GRID_OK)
        return 0;
    char where[48] = "";
    if (base >= 0)
        snprintf(where, sizeof where, " (from index %lld)", (long long)base);
    if (st == GRID_FLOAT_RANGE)
        snprintf(jb->err, jb->err_size, "values in [%g, %g]%s are too large for a float32 scale",
                 lo, hi, where);
    else
        snprintf(jb->err, jb->err_size,
                 "values in [%g, %g]%s need a scale above the %s maximum %s", lo, hi, where,
                 scale_formats[c->sdtype].name, scale_formats[c->sdtype].limit);
    return -1;
}

/* ---- quantization ------------------------------------------------------- */

static int int_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                        int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                        char *err, size_t err_size)
{
    const struct int_cfg *c = handle;
    const struct job jb = {.c = c, .host = host, .err = err, .err_size = err_size};
    int64_t rows = in->rows, cols = in->cols, n;
    *n_written = 0;
    if (rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) || n > out_capacity) {
        snprintf(err, err_size, "shape %lld x %lld does not fit the output (%lld floats)",
                 (long long)rows, (long long)cols, (long long)out_capacity);
        return -1;
    }
    if (n == 0) {
        return 0;
    }
    if (!in->data) {
        snprintf(err, err_size, "no input data");
        return -1;
    }
    if (c->gran == G_TENSOR) {
        /* One grid for everything: rows are processed separately only so
         * that cancel is asked now and then. */
        struct grid g;
        if (choose_grid(&jb, in->data, n, -1, &g))
            return -1;
        int64_t since = CANCEL_EVERY;
        for (int64_t r = 0; r < rows; r++, since += cols) {
            if (since >= CANCEL_EVERY) {
                since = 0;
                if (is_cancelled(host))
                    goto cancelled;
            }
            apply_grid(&g, in->data + r * cols, out + r * cols, cols);
        }
    } else {
        int64_t glen = c->gran == G_CHANNEL ? cols : c->group;
        int64_t since = CANCEL_EVERY;
        for (int64_t r = 0; r < rows; r++, since += cols) {
            if (since >= CANCEL_EVERY) {
                since = 0;
                if (is_cancelled(host))
                    goto cancelled;
            }
            for (int64_t j = 0; j < cols; j += glen) {
                int64_t len = cols - j < glen ? cols - j : glen;
                int64_t at = r * cols + j;
                struct grid g;
                if (choose_grid(&jb, in->data + at, len, at, &g))
                    return -1;
                apply_grid(&g, in->data + at, out + at, len);
            }
        }
    }
    *n_written = n;
    return 0;
cancelled:
    snprintf(err, err_size, "cancelled");
    return -1;
}

/* ---- descriptor --------------------------------------------------------- */

static const struct qlab_scheme int_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "int",
    .description = "uniform affine integer quantization, per tensor, channel or group",
    .params = int_params,
    .n_params = P_COUNT,
    .configure = int_configure,
    .release = int_release,
    .size_bits = int_size_bits,
    .quantize = int_quantize,
};

static const struct qlab_scheme *const int_schemes[] = {&int_scheme};

static const struct qlab_plugin int_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "int",
    .version = "1.1.0",
    .description = "built-in uniform integer quantization (symmetric or affine)",
    .schemes = int_schemes,
    .n_schemes = 1,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi);

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &int_plugin : NULL;
}
