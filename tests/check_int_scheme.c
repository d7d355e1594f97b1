/* check_int_scheme.c — the built-in "int" scheme through the host: hand-worked values, error bounds, clipping, scale storage, exact sizes. */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../quant/plugin_host.h"
#include "scheme_util.h"
#include "test_util.h"

/* ---- fixture and helpers ------------------------------------------------ */

static struct qplugin_host *H;

static void setup(void)
{
    H = su_host("int.so");
}

static void teardown(void)
{
    qhost_free(H);
    H = NULL;
}

static struct qscheme_config *cfg(const char *params)
{
    return su_config(H, "int", params);
}

/* Quantizes x (rows x cols) with `params` into y; must succeed. */
static void quant(const char *params, const float *x, int64_t rows, int64_t cols, float *y)
{
    su_quant(H, "int", params, x, rows, cols, y);
}

/* Quantizing must fail with a message containing `phrase`. */
static void quant_fails(const char *params, const float *x, int64_t rows, int64_t cols,
                        const char *phrase)
{
    su_quant_fails(H, "int", params, x, rows, cols, phrase);
}

static uint64_t size_of(const char *params, int64_t rows, int64_t cols)
{
    return su_size_bits(H, "int", params, rows, cols);
}

static void assert_floats(const float *got, const float *want, int64_t n, const char *what)
{
    su_assert_floats(got, want, n, what);
}

/* Deterministic normal samples (splitmix64 + Box-Muller). */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_normal(float *x, int64_t n, uint64_t seed, float sigma, float mean)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        double u1 = ((double)(rng_next(&s) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(rng_next(&s) >> 11) / 9007199254740992.0;
        x[i] = (float)(mean + sigma * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
    }
}

/* ---- Core: values worked by hand ------------------------------------------ */

START_TEST(test_symmetric_2bit_half_to_even)
{
    /* qmax = 1, scale = 1/1 = 1; 0.5 / 1 = 0.5 rounds to even 0. */
    const float x[4] = {-1, 0, 0.5f, 1};
    const float want[4] = {-1, 0, 0, 1};
    float y[4];
    quant("bits=2", x, 1, 4, y);
    assert_floats(y, want, 4, "bits=2");
}
END_TEST

START_TEST(test_symmetric_3bit_ties)
{
    /* qmax = 3, scale = 3/3 = 1: 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -2.5 -> -2. */
    const float x[5] = {3, 1.5f, 2.5f, -0.5f, -2.5f};
    const float want[5] = {3, 2, 2, 0, -2};
    float y[5];
    quant("bits=3", x, 1, 5, y);
    assert_floats(y, want, 5, "bits=3");

    /* x / scale, not x * (1 / scale): scale = fl(3.25 / 3) = 1.08333337,
     * 1.625 / scale = 1.5 exactly -> 2, while 1.625 * fl(1 / scale)
     * = 1.49999988 would give 1. */
    const float s = 3.25f / 3.0f;
    const float xd[3] = {3.25f, 1.625f, -1.625f};
    const float wd[3] = {3 * s, 2 * s, -2 * s};
    quant("bits=3", xd, 1, 3, y);
    assert_floats(y, wd, 3, "x / scale");
}
END_TEST

START_TEST(test_asymmetric_2bit)
{
    /* lo = -0.5, hi = 1, scale = 1.5 / 3 = 0.5, z = round(0.5 / 0.5) = 1.
     * -0.5: round(-1) + 1 = 0 -> (0-1)*0.5 = -0.5
     * 0.25: round(0.5) = 0 (even) + 1 = 1 -> 0
     * 0.75: round(1.5) = 2 + 1 = 3 -> 1.0
     * 1.0:  round(2) + 1 = 3 -> 1.0 */
    const float x[4] = {-0.5f, 0.25f, 0.75f, 1.0f};
    const float want[4] = {-0.5f, 0, 1.0f, 1.0f};
    float y[4];
    quant("bits=2,symmetric=false", x, 1, 4, y);
    assert_floats(y, want, 4, "asym 2-bit");

    /* All positive: lo is pulled to 0, so z = 0 and scale = 1.5 / 3 = 0.5.
     * 0.2/0.5 = 0.4 -> 0; 0.4/0.5 = 0.8 -> 1 -> 0.5; 1.0 -> 2 -> 1.0; 1.5 -> 3. */
    const float xp[4] = {0.2f, 0.4f, 1.0f, 1.5f};
    const float wp[4] = {0, 0.5f, 1.0f, 1.5f};
    quant("bits=2,symmetric=false", xp, 1, 4, y);
    assert_floats(y, wp, 4, "asym 2-bit positive");

    /* All negative: hi is pulled to 0, scale = 3 / 3 = 1, z = round(3/1) = 3.
     * -3 -> 0 -> -3; -1.5 -> round(-1.5) = -2 + 3 = 1 -> -2; -0.4 -> 3 -> 0. */
    const float xn[3] = {-3, -1.5f, -0.4f};
    const float wn[3] = {-3, -2, 0};
    quant("bits=2,symmetric=false", xn, 1, 3, y);
    assert_floats(y, wn, 3, "asym 2-bit negative");
}
END_TEST

START_TEST(test_tensor_vs_channel_scales)
{
    /* bits 3 (qmax 3). Row 0 max 3 -> scale 1; row 1 max 12 -> scale 4. */
    const float x[8] = {3, -1.5f, 1, 0.4f, 12, -6, 4, 2};
    const float per_channel[8] = {3, -2, 1, 0, 12, -8, 4, 0};
    /* One scale 12/3 = 4 for both rows: 3/4 = 0.75 -> 1 -> 4, the rest of row 0 -> 0. */
    const float per_tensor[8] = {4, 0, 0, 0, 12, -8, 4, 0};
    float y[8];
    quant("bits=3,granularity=channel", x, 2, 4, y);
    assert_floats(y, per_channel, 8, "channel");
    quant("bits=3,granularity=tensor", x, 2, 4, y);
    assert_floats(y, per_tensor, 8, "tensor");
}
END_TEST

START_TEST(test_groups_with_short_last_group)
{
    /* bits 2 (qmax 1), G = 2, cols 5: groups [4,-2] (scale 4), [1,0.5]
     * (scale 1), [6] (scale 6). -2/4 = -0.5 -> -0; 0.5/1 -> 0. */
    const float x[10] = {4, -2, 1, 0.5f, 6, /* row 1 */ 0, 0, -1, 1, -0.25f};
    const float want[10] = {4, 0, 1, 0, 6, /* groups [0,0] -> 0, [-1,1], [-0.25] */ 0, 0, -1, 1,
                            -0.25f};
    float y[10];
    quant("bits=2,granularity=group,group=2", x, 2, 5, y);
    assert_floats(y, want, 10, "group=2");
    /* G larger than a row is one group per row, the same as channel. */
    float yc[10];
    quant("bits=2,granularity=group,group=1000", x, 2, 5, y);
    quant("bits=2,granularity=channel", x, 2, 5, yc);
    assert_floats(y, yc, 10, "group=1000 vs channel");
}
END_TEST

START_TEST(test_zeros_constant_and_1x1)
{
    static const char *const modes[] = {
        "granularity=tensor", "granularity=channel", "granularity=group,group=3",
        "granularity=tensor,symmetric=false", "granularity=channel,symmetric=false",
        "granularity=group,group=3,symmetric=false"};
    float zeros[12] = {0}, y[12];
    for (size_t m = 0; m < 6; m++) {
        memset(y, 0x7f, sizeof y);
        quant(modes[m], zeros, 3, 4, y);
        for (int i = 0; i < 12; i++)
            ck_assert_msg(y[i] == 0 && !signbit(y[i]), "%s: zeros -> %g", modes[m], y[i]);
    }
    /* A constant comes back within a rounding of the scale's division. */
    const float consts[3] = {0.7f, -0.7f, 1e-3f};
    for (size_t m = 0; m < 6; m++) {
        for (int k = 0; k < 3; k++) {
            float x[12];
            for (int i = 0; i < 12; i++)
                x[i] = consts[k];
            quant(modes[m], x, 3, 4, y);
            for (int i = 0; i < 12; i++)
                ck_assert_msg(fabsf(y[i] - x[i]) <= 2 * FLT_EPSILON * fabsf(x[i]),
                              "%s: %g -> %.9g", modes[m], x[i], y[i]);
        }
    }
    /* 1x1: the value itself is the range. */
    const float one[3] = {2.5f, -3.0f, 1e-20f};
    for (size_t m = 0; m < 6; m++) {
        for (int k = 0; k < 3; k++) {
            float out;
            quant(modes[m], &one[k], 1, 1, &out);
            ck_assert_msg(fabsf(out - one[k]) <= 2 * FLT_EPSILON * fabsf(one[k]),
                          "%s: %g -> %.9g", modes[m], one[k], out);
        }
    }
    /* 8-bit symmetric 1x1 exactly: scale = 2.5/127, 127 * scale. */
    float out;
    quant("bits=8", &one[0], 1, 1, &out);
    ck_assert_float_eq(out, 127.0f * (2.5f / 127.0f));
}
END_TEST

START_TEST(test_bad_input)
{
    const float x[4] = {1, 2, NAN, 4};
    quant_fails("", x, 1, 4, "int/int: tensor 'w': non-finite input value at index 2");
    quant_fails("granularity=tensor", x, 2, 2, "non-finite input value at index 2");
    const float xi[4] = {1, 2, 3, -INFINITY};
    quant_fails("granularity=group,group=2", xi, 2, 2, "non-finite input value at index 3");
    /* Inside long rows too, where the scan runs in lanes: 200 values per
     * row, a NaN at 237 (row 1) and an Inf at 64 (row 0) for tensor. */
    static float xl[400];
    fill_normal(xl, 400, 8, 1, 0);
    xl[237] = NAN;
    quant_fails("", xl, 2, 200, "non-finite input value at index 237");
    quant_fails("clip=percentile,granularity=group,group=40", xl, 2, 200, "at index 237");
    xl[64] = -INFINITY;
    quant_fails("granularity=tensor", xl, 2, 200, "non-finite input value at index 64");
    /* A range wider than float32 can hold as one step count is refused, not Inf. */
    const float huge[2] = {-3e38f, 3e38f};
    quant_fails("symmetric=false", huge, 1, 2, "too large for a float32 scale");
}
END_TEST

/* ---- Bounds: round-trip error over random tensors ------------------------ */

/* The scale of the group x[0..n-1], computed as the scheme documents it. */
static float group_scale(const float *x, int64_t n, int bits, int symmetric)
{
    float lo = x[0], hi = x[0];
    for (int64_t i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    if (symmetric)
        return fmaxf(fabsf(lo), fabsf(hi)) / (float)((1 << (bits - 1)) - 1);
    return (fmaxf(hi, 0) - fminf(lo, 0)) / (float)((1 << bits) - 1);
}

static float ulp(float x)
{
    x = fabsf(x);
    return nextafterf(x, INFINITY) - x;
}

/* Checks |x - x'| <= scale/2 + 1 ulp of the group's largest magnitude. */
static void check_bound(const float *x, const float *y, int64_t n, int bits, int symmetric,
                        const char *what)
{
    float s = group_scale(x, n, bits, symmetric), amax = 0;
    for (int64_t i = 0; i < n; i++)
        amax = fmaxf(amax, fabsf(x[i]));
    for (int64_t i = 0; i < n; i++) {
        float e = fabsf(x[i] - y[i]);
        ck_assert_msg(e <= s / 2 + ulp(amax), "%s: x=%.9g x'=%.9g error %.9g > scale/2 %.9g",
                      what, x[i], y[i], e, s / 2);
    }
}

START_TEST(test_round_trip_bound)
{
    enum { ROWS = 7, COLS = 50, G = 16 }; /* 50 = 3*16 + 2: a short last group */
    float x[ROWS * COLS], y[ROWS * COLS];
    static const char *const grans[] = {"tensor", "channel", "group"};
    uint64_t seed = 1;
    for (int bits = 2; bits <= 8; bits++) {
        for (int sym = 0; sym <= 1; sym++) {
            for (int g = 0; g < 3; g++) {
                for (int trial = 0; trial < 4; trial++) {
                    /* Trials 2 and 3 are off-centre, so zero points are not trivial. */
                    fill_normal(x, ROWS * COLS, seed++, 1.0f + (float)trial, trial >= 2 ? 1.5f : 0);
                    char params[128];
                    snprintf(params, sizeof params, "bits=%d,symmetric=%s,granularity=%s,group=%d",
                             bits, sym ? "true" : "false", grans[g], G);
                    quant(params, x, ROWS, COLS, y);
                    if (g == 0) {
                        check_bound(x, y, ROWS * COLS, bits, sym, params);
                        continue;
                    }
                    for (int r = 0; r < ROWS; r++) {
                        int glen = g == 1 ? COLS : G;
                        for (int j = 0; j < COLS; j += glen) {
                            int len = COLS - j < glen ? COLS - j : glen;
                            check_bound(x + r * COLS + j, y + r * COLS + j, len, bits, sym,
                                        params);
                        }
                    }
                }
            }
        }
    }
}
END_TEST

START_TEST(test_last_group_has_its_own_scale)
{
    /* cols 100, G 32: groups of 32, 32, 32 and 4. The last 4 values are
     * tiny; sharing a scale with the big ones would zero them. */
    float x[100], y[100];
    fill_normal(x, 100, 99, 10.0f, 0);
    const float tail[4] = {0.001f, -0.002f, 0.003f, 0.0005f};
    memcpy(x + 96, tail, sizeof tail);
    quant("bits=4,symmetric=false,granularity=group,group=32", x, 1, 100, y);
    check_bound(x + 96, y + 96, 4, 4, 0, "last group");
    for (int i = 96; i < 100; i++)
        ck_assert_msg(fabsf(y[i] - x[i]) < 0.00025f, "[%d] %g -> %g", i, x[i], y[i]);
}
END_TEST

static double mse(const float *x, const float *y, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    return s / (double)n;
}

START_TEST(test_more_bits_less_error)
{
    enum { N = 16 * 256 };
    static float x[N], y[N];
    fill_normal(x, N, 7, 0.05f, 0.01f);
    static const char *const modes[] = {"granularity=channel", "granularity=tensor,symmetric=false",
                                        "granularity=group,group=64"};
    for (size_t m = 0; m < 3; m++) {
        double prev = INFINITY, first = 0, last = 0;
        for (int bits = 2; bits <= 8; bits++) {
            char params[96];
            snprintf(params, sizeof params, "bits=%d,%s", bits, modes[m]);
            quant(params, x, 16, 256, y);
            double e = mse(x, y, N);
            ck_assert_msg(e < prev, "%s: mse %g not below %g", params, e, prev);
            prev = e;
            if (bits == 2)
                first = e;
            last = e;
        }
        /* Six bits more is ~4^6 = 4096x less error; ask for 500x. */
        ck_assert_msg(last * 500 < first, "%s: mse 8-bit %g vs 2-bit %g", modes[m], last, first);
    }
}
END_TEST

/* ---- Size: exact bits of storage ----------------------------------------- */

START_TEST(test_size_bits)
{
    /* codes + one 32-bit scale per row */
    ck_assert_uint_eq(size_of("bits=4", 64, 64), 64 * 64 * 4 + 64 * 32);
    ck_assert_uint_eq(size_of("bits=8", 64, 64), 64 * 64 * 8 + 64 * 32);
    /* asymmetric adds a bits-wide zero point per group */
    ck_assert_uint_eq(size_of("bits=4,symmetric=false", 64, 64), 64 * 64 * 4 + 64 * (32 + 4));
    /* G=32, cols 100: 4 groups per row (32, 32, 32, 4) */
    ck_assert_uint_eq(size_of("bits=4,symmetric=false,granularity=group,group=32", 3, 100),
                      3 * 100 * 4 + 3 * 4 * (32 + 4));
    ck_assert_uint_eq(size_of("bits=3,granularity=group,group=32", 3, 96), 3 * 96 * 3 + 3 * 3 * 32);
    /* tensor: one scale (and zero point) in all */
    ck_assert_uint_eq(size_of("bits=8,granularity=tensor", 10, 10), 800 + 32);
    ck_assert_uint_eq(size_of("bits=8,granularity=tensor,symmetric=false", 10, 10), 800 + 40);
    ck_assert_uint_eq(size_of("bits=2", 1, 1), 2 + 32);
    /* an empty tensor stores nothing */
    ck_assert_uint_eq(size_of("", 0, 5), 0);
    /* a tensor too large to count is an error, not a wrapped number */
    struct qscheme_config *c = cfg("bits=8");
    uint64_t bits = 0;
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_size_bits(c, INT64_MAX, INT64_MAX, &bits, &err), 0);
    ck_assert_msg(strstr(err.msg, "int/int: ") && strstr(err.msg, "too large"), "%s", err.msg);
    qscheme_config_free(c);
}
END_TEST

/* ---- Clip, Scales: the appended parameters ------------------------------- */

/* The documented grid for a given stored scale (and, asymmetric, the range's
 * lo, which sets the zero point), written the plain way, with nearbyintf. */
static void ref_grid(const float *x, int64_t n, int bits, int symmetric, float scale, float lo,
                     float *y)
{
    if (!(scale > 0)) {
        for (int64_t i = 0; i < n; i++)
            y[i] = 0;
        return;
    }
    if (symmetric) {
        float qmax = (float)((1 << (bits - 1)) - 1);
        for (int64_t i = 0; i < n; i++)
            y[i] = fminf(fmaxf(nearbyintf(x[i] / scale), -qmax), qmax) * scale;
        return;
    }
    float levels = (float)((1 << bits) - 1);
    float z = fminf(fmaxf(nearbyintf(-fminf(lo, 0) / scale), 0), levels);
    for (int64_t i = 0; i < n; i++)
        y[i] = (fminf(fmaxf(nearbyintf(x[i] / scale) + z, 0), levels) - z) * scale;
}

/* Sum of squared errors, in index order, in double: the plugin's own measure. */
static double sse(const float *x, const float *y, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)y[i];
        s += d * d;
    }
    return s;
}

START_TEST(test_defaults_unchanged)
{
    /* Spelling out the appended parameters at their defaults changes nothing. */
    enum { ROWS = 5, COLS = 77 };
    float x[ROWS * COLS], y0[ROWS * COLS], y1[ROWS * COLS];
    fill_normal(x, ROWS * COLS, 21, 2.0f, 0.3f);
    static const char *const modes[] = {"granularity=tensor", "granularity=channel",
                                        "granularity=group,group=16"};
    for (int bits = 2; bits <= 8; bits += 3) {
        for (int sym = 0; sym <= 1; sym++) {
            for (size_t m = 0; m < 3; m++) {
                char a[160], b[224];
                snprintf(a, sizeof a, "bits=%d,symmetric=%d,%s", bits, sym, modes[m]);
                snprintf(b, sizeof b, "%s,clip=minmax,percentile=99.99,scale_dtype=fp32", a);
                quant(a, x, ROWS, COLS, y0);
                quant(b, x, ROWS, COLS, y1);
                ck_assert_msg(memcmp(y0, y1, sizeof y0) == 0, "%s", b);
                ck_assert_uint_eq(size_of(a, ROWS, COLS), size_of(b, ROWS, COLS));
            }
        }
    }
    /* percentile is read only by clip=percentile. */
    quant("percentile=60", x, ROWS, COLS, y1);
    quant("", x, ROWS, COLS, y0);
    ck_assert_int_eq(memcmp(y0, y1, sizeof y0), 0);

    /* And the defaults are the first revision's formula, written the plain
     * way (nearbyintf, x / scale), bit for bit, in every mode. */
    for (int bits = 2; bits <= 8; bits++) {
        for (int sym = 0; sym <= 1; sym++) {
            for (int m = 0; m < 3; m++) {
                char a[160];
                snprintf(a, sizeof a, "bits=%d,symmetric=%d,%s", bits, sym, modes[m]);
                quant(a, x, ROWS, COLS, y0);
                int glen = m == 0 ? ROWS * COLS : m == 1 ? COLS : 16;
                int rlen = m == 0 ? ROWS * COLS : COLS;
                for (int r0 = 0; r0 < ROWS * COLS; r0 += rlen) {
                    for (int j = 0; j < rlen; j += glen) {
                        int at = r0 + j, len = rlen - j < glen ? rlen - j : glen;
                        float lo = x[at];
                        for (int i = 0; i < len; i++)
                            lo = fminf(lo, x[at + i]);
                        ref_grid(x + at, len, bits, sym, group_scale(x + at, len, bits, sym), lo,
                                 y1 + at);
                    }
                }
                assert_floats(y0, y1, ROWS * COLS, a);
            }
        }
    }
}
END_TEST

START_TEST(test_mse_hand_example)
{
    /* bits 2 (levels -1, 0, 1), one group {4, 1 x 15}. minmax: scale 4,
     * the ones round to 0: SSE 15. A ratio r < 0.5 puts every value on
     * the code 1, x' = 4r: SSE(r) = 16(1-r)^2 + 15(1-4r)^2, least at
     * r = 152/512; on the grid SSE(0.29) = 8.4496, SSE(0.30) = 8.44,
     * SSE(0.31) = 8.4816, so r = 0.30 and every x' = fl(4 * fl(0.3)). */
    float x[16], y[16];
    x[0] = 4;
    for (int i = 1; i < 16; i++)
        x[i] = 1;
    const float want = 4.0f * 0.3f;
    quant("bits=2,clip=mse", x, 1, 16, y);
    for (int i = 0; i < 16; i++)
        ck_assert_msg(y[i] == want, "[%d] = %.9g, want %.9g", i, y[i], want);
    ck_assert(fabs(sse(x, y, 16) - 8.44) < 1e-5);
    quant("bits=2", x, 1, 16, y);
    ck_assert(sse(x, y, 16) == 15.0);
}
END_TEST

/* Rows of normal values; with outliers, each row also holds one value of
 * +-(25..40) sigma, which minmax lets stretch the whole row's scale. */
static void fill_rows(float *x, int rows, int cols, uint64_t seed, int outliers)
{
    fill_normal(x, (int64_t)rows * cols, seed, 1.0f, 0.1f);
    if (!outliers)
        return;
    uint64_t s = seed;
    for (int r = 0; r < rows; r++) {
        int at = (int)(rng_next(&s) % (uint64_t)cols);
        float mag = 25.0f + (float)(rng_next(&s) % 16);
        x[(int64_t)r * cols + at] = (rng_next(&s) & 1) ? mag : -mag;
    }
}

START_TEST(test_mse_never_worse_than_minmax)
{
    enum { ROWS = 12, COLS = 200, G = 64 }; /* 200 = 3*64 + 8: a short last group */
    static float x[ROWS * COLS], ym[ROWS * COLS], yc[ROWS * COLS];
    static const char *const grans[] = {"tensor", "channel", "group"};
    static const char *const sdt[] = {"fp32", "fp16", "e8m0"};
    int strictly_better = 0, groups = 0;
    for (int outliers = 0; outliers <= 1; outliers++) {
        fill_rows(x, ROWS, COLS, 40 + (uint64_t)outliers, outliers);
        for (int bits = 2; bits <= 8; bits += 2) {
            for (int sym = 0; sym <= 1; sym++) {
                for (int g = 0; g < 3; g++) {
                    for (int d = 0; d < 3; d++) {
                        char base[160], pm[200];
                        snprintf(base, sizeof base,
                                 "bits=%d,symmetric=%d,granularity=%s,group=%d,scale_dtype=%s",
                                 bits, sym, grans[g], G, sdt[d]);
                        snprintf(pm, sizeof pm, "%s,clip=mse", base);
                        quant(base, x, ROWS, COLS, ym);
                        quant(pm, x, ROWS, COLS, yc);
                        int glen = g == 0 ? ROWS * COLS : g == 1 ? COLS : G;
                        int rlen = g == 0 ? ROWS * COLS : COLS;
                        for (int r0 = 0; r0 < ROWS * COLS; r0 += rlen) {
                            for (int j = 0; j < rlen; j += glen) {
                                int at = r0 + j, len = rlen - j < glen ? rlen - j : glen;
                                double em = sse(x + at, ym + at, len);
                                double ec = sse(x + at, yc + at, len);
                                ck_assert_msg(ec <= em, "%s: group at %d: SSE %.17g > minmax %.17g",
                                              pm, at, ec, em);
                                groups++;
                                strictly_better += ec < em;
                            }
                        }
                    }
                }
            }
        }
    }
    ck_assert_int_gt(strictly_better, groups / 4);
}
END_TEST

START_TEST(test_mse_wins_on_outliers)
{
    /* 4-bit, per channel, each row 1023 normal values and one outlier of
     * 25..40 sigma: minmax spends the grid on the outlier (most values
     * round to 0); mse clips it, strictly better on every row, and over
     * 20% less error in all (about 29% here). (With few values per row,
     * one clipped outlier can cost more than the rest gain: 256 is not
     * always enough at 4 bits.) */
    enum { ROWS = 16, COLS = 1024 };
    static float x[ROWS * COLS], ym[ROWS * COLS], yc[ROWS * COLS];
    fill_rows(x, ROWS, COLS, 77, 1);
    for (int sym = 0; sym <= 1; sym++) {
        char pm[96], pc[96];
        snprintf(pm, sizeof pm, "bits=4,symmetric=%d", sym);
        snprintf(pc, sizeof pc, "bits=4,symmetric=%d,clip=mse", sym);
        quant(pm, x, ROWS, COLS, ym);
        quant(pc, x, ROWS, COLS, yc);
        double tm = 0, tc = 0;
        for (int r = 0; r < ROWS; r++) {
            double em = sse(x + r * COLS, ym + r * COLS, COLS);
            double ec = sse(x + r * COLS, yc + r * COLS, COLS);
            ck_assert_msg(ec < em, "%s: row %d: SSE %g not below minmax %g", pc, r, ec, em);
            tm += em;
            tc += ec;
        }
        ck_assert_msg(tc < 0.8 * tm, "%s: total SSE %g vs minmax %g", pc, tc, tm);
    }
}
END_TEST

START_TEST(test_percentile_hand_examples)
{
    /* Symmetric, bits 3 (qmax 3), n = 10, p = 90: k = ceil(10 * 0.9) = 9;
     * |x| sorted 1..9, 100: amax = 9, scale 3. -100 clips to -9. */
    const float x[10] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -100};
    const float want[10] = {0, -3, 3, -3, 6, -6, 6, -9, 9, -9};
    float y[10];
    quant("bits=3,clip=percentile,percentile=90", x, 1, 10, y);
    assert_floats(y, want, 10, "p=90");
    /* p = 80: k = 8, amax 8, scale fl(8/3). */
    quant("bits=3,clip=percentile,percentile=80", x, 1, 10, y);
    const float s8 = 8.0f / 3.0f;
    const float want80[10] = {0, -s8, s8, -2 * s8, 2 * s8, -2 * s8, 3 * s8, -3 * s8, 3 * s8,
                              -3 * s8};
    assert_floats(y, want80, 10, "p=80");
    /* p = 95: k = ceil(9.5) = 10, the maximum: the same as minmax. */
    float ym[10];
    quant("bits=3,clip=percentile,percentile=95", x, 1, 10, y);
    quant("bits=3", x, 1, 10, ym);
    assert_floats(y, ym, 10, "p=95 vs minmax");

    /* Asymmetric, bits 3 (levels 7), p = 80: hi = 8th smallest of
     * -10 -1 0 1 2 2.5 4 5 6 50 = 5, lo = the 20th percentile, 2nd = -1.
     * scale = 6/7, z = round(1 / (6/7)) = round(1.17) = 1; codes
     * -10 -> 0, -1 -> round(-1.17)+1 = 0, 0 -> 1, 1 -> 2, 2 -> 3,
     * 2.5 -> round(2.92)+1 = 4, 4 -> round(4.67)+1 = 6, 5 -> 7, 6 -> 8 -> 7, 50 -> 7. */
    const float xa[10] = {4, -1, 50, 0, 2.5f, 1, -10, 6, 2, 5}; /* unsorted on purpose */
    const float s = 6.0f / 7.0f;
    const float wa[10] = {5 * s, -s, 6 * s, 0, 3 * s, s, -s, 6 * s, 2 * s, 6 * s};
    quant("bits=3,symmetric=false,clip=percentile,percentile=80", xa, 1, 10, y);
    assert_floats(y, wa, 10, "asym p=80");
}
END_TEST

START_TEST(test_percentile_rank_snapping)
{
    /* 99.99 has no exact binary form: 10000 * 99.99 / 100 is 9999 in
     * double, but 10000 * (100 - 99.99) / 100 = 1.0000000000005;
     * nearest-rank snaps it to rank 1, not 2. x = -4999 .. 5000. */
    enum { N = 10000 };
    static float x[N], y[N], yr[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(i + 1 - 5000);
    /* Symmetric: |x| ranks 9999 -> 4999 (|x| sorted: 0, 1, 1, 2, 2, ...). */
    quant("bits=8,clip=percentile,percentile=99.99", x, 1, N, y);
    ref_grid(x, N, 8, 1, 4999.0f / 127.0f, 0, yr);
    assert_floats(y, yr, N, "sym 99.99");
    /* Asymmetric: lo = rank 1 = -4999, hi = rank 9999 = 4999. */
    quant("bits=8,symmetric=false,clip=percentile,percentile=99.99", x, 1, N, y);
    ref_grid(x, N, 8, 0, (4999.0f - -4999.0f) / 255.0f, -4999.0f, yr);
    assert_floats(y, yr, N, "asym 99.99");
}
END_TEST

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile, the plain way: sort a copy. */
static float ref_percentile(const float *x, int64_t n, double p, int magnitude)
{
    float *c = malloc((size_t)n * sizeof *c);
    for (int64_t i = 0; i < n; i++)
        c[i] = magnitude ? fabsf(x[i]) : x[i];
    qsort(c, (size_t)n, sizeof *c, cmp_float);
    double t = (double)n * p / 100.0, r = nearbyint(t);
    if (fabs(t - r) <= 1e-9 * t)
        t = r;
    int64_t k = (int64_t)ceil(t);
    k = k < 1 ? 1 : k > n ? n : k;
    float v = c[k - 1];
    free(c);
    return v;
}

START_TEST(test_percentile_matches_sorting)
{
    /* Radix selection against qsort, over awkward data: duplicates, signed
     * zeros, all-negative rows, tiny and huge magnitudes. */
    enum { ROWS = 6, COLS = 333, G = 50 };
    static float x[ROWS * COLS], y[ROWS * COLS], yr[ROWS * COLS];
    fill_normal(x, ROWS * COLS, 5, 3.0f, 0);
    for (int i = 0; i < COLS; i++) {
        x[1 * COLS + i] = (float)(i % 7) - 3.0f;                /* duplicates */
        x[2 * COLS + i] = (i % 3 == 0) ? -0.0f : (i % 3 == 1 ? 0.0f : x[2 * COLS + i]);
        x[3 * COLS + i] = -fabsf(x[3 * COLS + i]) - 1.0f;       /* all negative */
        x[4 * COLS + i] *= (i % 2) ? 1e-30f : 1e30f;            /* wide range */
    }
    static const double ps[] = {50, 62.5, 90, 99, 99.9, 99.99, 100};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        for (int sym = 0; sym <= 1; sym++) {
            for (int g = 0; g < 2; g++) {
                char params[160];
                snprintf(params, sizeof params,
                         "bits=6,symmetric=%d,clip=percentile,percentile=%.17g%s", sym, ps[k],
                         g ? ",granularity=group,group=50" : "");
                quant(params, x, ROWS, COLS, y);
                int glen = g ? G : COLS;
                for (int r = 0; r < ROWS; r++) {
                    for (int j = 0; j < COLS; j += glen) {
                        int at = r * COLS + j, len = COLS - j < glen ? COLS - j : glen;
                        float scale, lo = 0;
                        if (sym) {
                            scale = ref_percentile(x + at, len, ps[k], 1) / 31.0f;
                        } else {
                            lo = fminf(ref_percentile(x + at, len, 100 - ps[k], 0), 0);
                            float hi = fmaxf(ref_percentile(x + at, len, ps[k], 0), 0);
                            scale = (hi - lo) / 63.0f;
                        }
                        ref_grid(x + at, len, 6, sym, scale, lo, yr + at);
                        assert_floats(y + at, yr + at, len, params);
                    }
                }
            }
        }
    }
    /* p = 100 is minmax, bit for bit. */
    float ym[ROWS * COLS];
    quant("bits=5,symmetric=false,clip=percentile,percentile=100", x, ROWS, COLS, y);
    quant("bits=5,symmetric=false", x, ROWS, COLS, ym);
    assert_floats(y, ym, ROWS * COLS, "p=100 vs minmax");
}
END_TEST

START_TEST(test_clip_bad_input)
{
    const float x[6] = {1, 2, 3, 4, INFINITY, 6};
    quant_fails("clip=mse", x, 2, 3, "non-finite input value at index 4");
    quant_fails("clip=percentile", x, 1, 6, "non-finite input value at index 4");
    quant_fails("clip=mse,granularity=tensor", x, 3, 2, "non-finite input value at index 4");
    /* mse skips the ratios whose scale cannot be stored: r = 1 needs a
     * step of 6e38/3, beyond float32, r = 0.5 does not. */
    const float huge[2] = {-3e38f, 3e38f};
    float y[2];
    quant("bits=2,symmetric=false,clip=mse", huge, 1, 2, y);
    ck_assert(isfinite(y[0]) && isfinite(y[1]));
    quant_fails("bits=2,symmetric=false", huge, 1, 2, "too large for a float32 scale");
}
END_TEST

/* The half nearest to s (ties to even), as the compiler converts it. */
static float to_half(float s)
{
#ifdef __FLT16_MANT_DIG__
    return (float)(_Float16)s;
#else
    /* No _Float16: the same rounding by scaling to an integer significand. */
    if (s < 0x1p-14f)
        return nearbyintf(s * 0x1p24f) * 0x1p-24f;
    int e;
    frexpf(s, &e);
    return ldexpf(nearbyintf(ldexpf(s, 11 - e)), e - 11);
#endif
}

/* A float that a binary16 holds exactly (finite). */
static int is_half(float v)
{
    v = fabsf(v);
    if (v > 65504.0f)
        return 0;
    if (v < 0x1p-14f)
        return v == nearbyintf(v * 0x1p24f) * 0x1p-24f;
    int e;
    float m = frexpf(v, &e); /* v = m 2^e: an 11-bit significand */
    return ldexpf(m, 11) == nearbyintf(ldexpf(m, 11));
}

START_TEST(test_fp16_scales)
{
    /* Per channel, 8-bit symmetric: row r has amax a[r]; the stored scale
     * is the half nearest to a[r]/127, and the row is quantized with it. */
    enum { COLS = 40 };
    static const float amax[] = {
        1.0f, 3.7f, 0.015f, 250.0f, 1234.5f,
        127.0f * (1 + 0x1p-11f),     /* tie: 1 + 2^-11 -> 1 (even) */
        127.0f * (1 + 3 * 0x1p-11f), /* tie: -> 1 + 2^-9 (even) */
        127.0f * 3e-6f,              /* a subnormal half */
        127.0f * 4e-8f,              /* the smallest subnormal, 2^-24 */
        127.0f * 1e-8f,              /* rounds to 0: zeros */
        127.0f * 1511 * 0x1p-25f,    /* subnormal tie: 755.5 * 2^-24 -> 756 * 2^-24 */
        127.0f * 65504.0f,           /* the largest half */
        127.0f * 65519.0f,           /* just below the overflow: rounds to 65504 */
    };
    enum { ROWS = sizeof amax / sizeof amax[0] };
    static float x[ROWS * COLS], y[ROWS * COLS], yr[COLS];
    fill_normal(x, ROWS * COLS, 9, 0.4f, 0);
    for (int r = 0; r < ROWS; r++) {
        for (int i = 0; i < COLS; i++)
            x[r * COLS + i] = fminf(fmaxf(x[r * COLS + i], -1), 1) * amax[r];
        x[r * COLS + r % COLS] = -amax[r]; /* the row's range is exactly amax */
    }
    quant("bits=8,scale_dtype=fp16", x, ROWS, COLS, y);
    for (int r = 0; r < ROWS; r++) {
        float raw = amax[r] / 127.0f, s = to_half(raw);
        ck_assert_msg(is_half(s), "row %d: %.9g is not a half", r, s);
        ref_grid(x + r * COLS, COLS, 8, 1, s, 0, yr);
        assert_floats(y + r * COLS, yr, COLS, "fp16 row");
        /* The scale shows in the row's extreme: |x'| = 127 * s (normal
         * halves are within 2^-11 of the raw scale, so it rounds to 127). */
        if (s >= 0x1p-14f)
            ck_assert_msg(y[r * COLS + r % COLS] == -127.0f * s, "row %d: %.9g vs 127 * %.9g", r,
                          y[r * COLS + r % COLS], s);
    }
    ck_assert(to_half(amax[5] / 127.0f) == 1.0f);
    ck_assert(to_half(amax[6] / 127.0f) == 1.0f + 0x1p-9f);
    ck_assert(to_half(amax[8] / 127.0f) == 0x1p-24f);
    ck_assert(to_half(amax[10] / 127.0f) == 756 * 0x1p-24f);
    ck_assert(to_half(amax[12] / 127.0f) == 65504.0f);
    for (int i = 0; i < COLS; i++) /* the underflowing row is zeros */
        ck_assert(y[9 * COLS + i] == 0 && !signbit(y[9 * COLS + i]));

    /* Asymmetric: the zero point comes from the stored scale. */
    float xa[COLS], ya[COLS], ra[COLS];
    fill_normal(xa, COLS, 10, 1.3f, 0.7f);
    float lo = xa[0], hi = xa[0];
    for (int i = 0; i < COLS; i++) {
        lo = fminf(lo, xa[i]);
        hi = fmaxf(hi, xa[i]);
    }
    lo = fminf(lo, 0);
    hi = fmaxf(hi, 0);
    quant("bits=4,symmetric=false,scale_dtype=fp16", xa, 1, COLS, ya);
    ref_grid(xa, COLS, 4, 0, to_half((hi - lo) / 15.0f), lo, ra);
    assert_floats(ya, ra, COLS, "fp16 asymmetric");

    /* A scale past the half range is an error, not Inf: from 65520 on,
     * half-way to 2^16, it would round to Inf. */
    const float big[2] = {127.0f * 70000.0f, 1}, edge[2] = {127.0f * 65520.0f, 1};
    quant_fails("bits=8,scale_dtype=fp16", big, 1, 2,
                "need a scale above the fp16 maximum 65504");
    quant_fails("bits=8,scale_dtype=fp16", edge, 1, 2, "above the fp16 maximum");
}
END_TEST

/* The least power of two >= s (s > 0), by doubling and halving (exact). */
static float pow2_up(float s)
{
    double p = 1;
    while (p < s)
        p *= 2;
    while (p / 2 >= s)
        p /= 2;
    return (float)p;
}

START_TEST(test_e8m0_scales)
{
    enum { ROWS = 24, COLS = 64 };
    static float x[ROWS * COLS], y[ROWS * COLS], yr[COLS];
    for (int sym = 0; sym <= 1; sym++) {
        for (int bits = 2; bits <= 8; bits += 3) {
            fill_normal(x, ROWS * COLS, 12 + (uint64_t)bits, 1.0f, sym ? 0 : 0.4f);
            for (int r = 0; r < ROWS; r++) /* magnitudes from 2^-30 to 2^16 */
                for (int i = 0; i < COLS; i++)
                    x[r * COLS + i] = ldexpf(x[r * COLS + i], 2 * r - 30);
            char params[96];
            snprintf(params, sizeof params, "bits=%d,symmetric=%d,scale_dtype=e8m0", bits, sym);
            quant(params, x, ROWS, COLS, y);
            for (int r = 0; r < ROWS; r++) {
                const float *xr = x + r * COLS, *yrow = y + r * COLS;
                float raw = group_scale(xr, COLS, bits, sym), s = pow2_up(raw);
                int e;
                ck_assert(frexpf(s, &e) == 0.5f && s >= raw && s < 2 * raw);
                float lo = xr[0];
                for (int i = 0; i < COLS; i++)
                    lo = fminf(lo, xr[i]);
                ref_grid(xr, COLS, bits, sym, s, lo, yr);
                assert_floats(yrow, yr, COLS, params);
                /* Symmetric: rounding up clips nothing, every error <= s/2. */
                for (int i = 0; sym && i < COLS; i++)
                    ck_assert_msg(fabsf(xr[i] - yrow[i]) <= s / 2, "%s: row %d: %g -> %g, s %g",
                                  params, r, xr[i], yrow[i], s);
            }
        }
    }
    /* A power of two stays as it is: scale 0.5, not 1 (with 1, 0.5 -> 0). */
    const float p2[3] = {0.5f, -0.25f, 0.1f};
    float y3[3];
    quant("bits=2,scale_dtype=e8m0", p2, 1, 3, y3);
    ck_assert(y3[0] == 0.5f && y3[1] == 0 && y3[2] == 0);
    /* Tiny: a scale below 2^-127 becomes 2^-127. 1e-38 / 2^-127 = 1.70 -> 2. */
    const float tiny[2] = {1e-38f, -5e-39f};
    float yt[2];
    quant("bits=8,scale_dtype=e8m0", tiny, 1, 2, yt);
    ck_assert(yt[0] == 2 * 0x1p-127f && yt[1] == -1 * 0x1p-127f);
    /* Zeros stay zeros; a scale past 2^127 is an error. */
    const float zeros[3] = {0, -0.0f, 0};
    quant("scale_dtype=e8m0,symmetric=false", zeros, 1, 3, y3);
    ck_assert(y3[0] == 0 && y3[1] == 0 && !signbit(y3[1]) && y3[2] == 0);
    const float huge[2] = {3e38f, 1};
    quant_fails("bits=2,scale_dtype=e8m0", huge, 1, 2, "need a scale above the e8m0 maximum 2^127");
}
END_TEST

START_TEST(test_size_bits_scale_dtypes)
{
    /* Per group: the scale's 32, 16 or 8 bits, plus a bits-wide zero point
     * when asymmetric. 3 x 100 with G = 32: 4 groups per row, 12 in all. */
    static const char *const sdt[] = {"fp32", "fp16", "e8m0"};
    static const uint64_t sbits[] = {32, 16, 8};
    for (int d = 0; d < 3; d++) {
        char p[160];
        snprintf(p, sizeof p, "bits=4,granularity=group,group=32,scale_dtype=%s", sdt[d]);
        ck_assert_uint_eq(size_of(p, 3, 100), 3 * 100 * 4 + 12 * sbits[d]);
        snprintf(p, sizeof p, "bits=4,symmetric=false,granularity=group,group=32,scale_dtype=%s",
                 sdt[d]);
        ck_assert_uint_eq(size_of(p, 3, 100), 3 * 100 * 4 + 12 * (sbits[d] + 4));
        snprintf(p, sizeof p, "bits=8,granularity=tensor,symmetric=false,scale_dtype=%s", sdt[d]);
        ck_assert_uint_eq(size_of(p, 10, 10), 800 + sbits[d] + 8);
    }
    /* Bits per weight, 4096 x 4096 per channel: 4 + 8/4096 for int4 e8m0,
     * 8 + 16/4096 for int8 fp16, 4 + (32 + 4)/4096 for asymmetric int4. */
    const double n = 4096.0 * 4096.0;
    ck_assert(size_of("bits=4,scale_dtype=e8m0", 4096, 4096) / n == 4.001953125);
    ck_assert(size_of("bits=8,scale_dtype=fp16", 4096, 4096) / n == 8.00390625);
    ck_assert(size_of("bits=4,symmetric=false", 4096, 4096) / n == 4.0087890625);
    ck_assert(size_of("bits=4,symmetric=false,scale_dtype=e8m0,granularity=group,group=32",
                      4096, 4096) / n == 4.375);
    /* clip does not change the storage. */
    ck_assert_uint_eq(size_of("bits=3,clip=mse", 7, 9), size_of("bits=3", 7, 9));
}
END_TEST

/* ---- Host: cancel and concurrent use ------------------------------------- */

static int cancel_always(void *ctx)
{
    ++*(int *)ctx;
    return 1;
}

static int cancel_never(void *ctx)
{
    ++*(int *)ctx;
    return 0;
}

START_TEST(test_cancel)
{
    static float x[300 * 300], y[300 * 300];
    fill_normal(x, 300 * 300, 3, 1, 0);
    struct qscheme_config *c = cfg("bits=4");
    struct qlab_tensor_view v = {.data = x, .rows = 300, .cols = 300, .name = "big"};
    int asked = 0;
    struct qlab_host host = {.struct_size = sizeof host, .ctx = &asked, .cancelled = cancel_never};
    qerr err = {{0}};
    ck_assert_msg(qscheme_quantize(c, &v, y, &host, &err) == 0, "%s", err.msg);
    /* 90000 values, asked about every 65536: at the start and once more. */
    ck_assert_int_ge(asked, 2);
    host.cancelled = cancel_always;
    ck_assert_int_ne(qscheme_quantize(c, &v, y, &host, &err), 0);
    ck_assert_str_eq(err.msg, "int/int: tensor 'big': cancelled");
    qscheme_config_free(c);
    /* The mse search over one large group asks too, between ratios. */
    c = cfg("bits=4,clip=mse,granularity=tensor");
    asked = 0;
    ck_assert_int_ne(qscheme_quantize(c, &v, y, &host, &err), 0);
    ck_assert_str_eq(err.msg, "int/int: tensor 'big': cancelled");
    ck_assert_int_eq(asked, 1);
    qscheme_config_free(c);
}
END_TEST

struct job {
    const struct qscheme_config *c;
    const float *x;
    float *y;
    int rc;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    struct qlab_tensor_view v = {.data = j->x, .rows = 64, .cols = 200, .name = "t"};
    qerr err;
    j->rc = qscheme_quantize(j->c, &v, j->y, NULL, &err);
    return NULL;
}

START_TEST(test_threads_share_a_config)
{
    enum { N = 64 * 200, T = 4 };
    static float x[N], ref[N], out[T][N];
    fill_normal(x, N, 11, 1, 0.2f);
    /* The clip searches work on the stack only, so they share a handle too. */
    static const char *const params[] = {
        "bits=5,symmetric=false,granularity=group,group=48",
        "bits=4,clip=mse,scale_dtype=e8m0",
        "bits=6,symmetric=false,granularity=group,group=48,clip=percentile,percentile=99"};
    for (size_t k = 0; k < sizeof params / sizeof params[0]; k++) {
        struct qscheme_config *c = cfg(params[k]);
        quant(params[k], x, 64, 200, ref);
        pthread_t th[T];
        struct job jobs[T];
        for (int t = 0; t < T; t++) {
            jobs[t] = (struct job){.c = c, .x = x, .y = out[t], .rc = -1};
            ck_assert_int_eq(pthread_create(&th[t], NULL, run_job, &jobs[t]), 0);
        }
        for (int t = 0; t < T; t++) {
            ck_assert_int_eq(pthread_join(th[t], NULL), 0);
            ck_assert_int_eq(jobs[t].rc, 0);
            ck_assert_msg(memcmp(out[t], ref, sizeof ref) == 0, "%s: thread %d", params[k], t);
        }
        qscheme_config_free(c);
    }
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *int_scheme_suite(void)
{
    Suite *s = suite_create("int_scheme");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_test(core, test_symmetric_2bit_half_to_even);
    tcase_add_test(core, test_symmetric_3bit_ties);
    tcase_add_test(core, test_asymmetric_2bit);
    tcase_add_test(core, test_tensor_vs_channel_scales);
    tcase_add_test(core, test_groups_with_short_last_group);
    tcase_add_test(core, test_zeros_constant_and_1x1);
    tcase_add_test(core, test_bad_input);
    suite_add_tcase(s, core);

    TCase *bounds = tcase_create("Bounds");
    tcase_add_checked_fixture(bounds, setup, teardown);
    tcase_add_test(bounds, test_round_trip_bound);
    tcase_add_test(bounds, test_last_group_has_its_own_scale);
    tcase_add_test(bounds, test_more_bits_less_error);
    tcase_set_timeout(bounds, 60);
    suite_add_tcase(s, bounds);

    TCase *clip = tcase_create("Clip");
    tcase_add_checked_fixture(clip, setup, teardown);
    tcase_add_test(clip, test_defaults_unchanged);
    tcase_add_test(clip, test_mse_hand_example);
    tcase_add_test(clip, test_mse_never_worse_than_minmax);
    tcase_add_test(clip, test_mse_wins_on_outliers);
    tcase_add_test(clip, test_percentile_hand_examples);
    tcase_add_test(clip, test_percentile_rank_snapping);
    tcase_add_test(clip, test_percentile_matches_sorting);
    tcase_add_test(clip, test_clip_bad_input);
    tcase_set_timeout(clip, 60);
    suite_add_tcase(s, clip);

    TCase *scales = tcase_create("Scales");
    tcase_add_checked_fixture(scales, setup, teardown);
    tcase_add_test(scales, test_fp16_scales);
    tcase_add_test(scales, test_e8m0_scales);
    suite_add_tcase(s, scales);

    TCase *size = tcase_create("Size");
    tcase_add_checked_fixture(size, setup, teardown);
    tcase_add_test(size, test_size_bits);
    tcase_add_test(size, test_size_bits_scale_dtypes);
    suite_add_tcase(s, size);

    TCase *host = tcase_create("Host");
    tcase_add_checked_fixture(host, setup, teardown);
    tcase_add_test(host, test_cancel);
    tcase_add_test(host, test_threads_share_a_config);
    suite_add_tcase(s, host);
    return s;
}

int main(void)
{
    return tu_run(int_scheme_suite());
}
