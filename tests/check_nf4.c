/* check_nf4.c — the "nf4" plugin (NF4, FP4, double quantization) through the host: tables, hand-worked blocks, ties, sizes, error bounds. */
#include <float.h>
#include <math.h>
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
    H = su_host("nf4.so");
}

static void teardown(void)
{
    qhost_free(H);
    H = NULL;
}

static struct qscheme_config *cfg(const char *scheme, const char *params)
{
    return su_config(H, scheme, params);
}

/* Quantizes x (rows x cols) with scheme:params into y; must succeed. */
static void quant(const char *scheme, const char *params, const float *x, int64_t rows,
                  int64_t cols, float *y)
{
    su_quant(H, scheme, params, x, rows, cols, y);
}

/* Quantizing must fail with a message containing `phrase`. */
static void quant_fails(const char *scheme, const char *params, const float *x, int64_t rows,
                        int64_t cols, const char *phrase)
{
    su_quant_fails(H, scheme, params, x, rows, cols, phrase);
}

static uint64_t size_of(const char *scheme, const char *params, int64_t rows, int64_t cols)
{
    return su_size_bits(H, scheme, params, rows, cols);
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

static void fill_normal(float *x, int64_t n, uint64_t seed, float sigma)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        double u1 = ((double)(rng_next(&s) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(rng_next(&s) >> 11) / 9007199254740992.0;
        x[i] = (float)(sigma * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
    }
}

static double rmse(const float *x, const float *y, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    return sqrt(s / (double)n);
}

/* The 16 NF4 levels of QLoRA / bitsandbytes (functional.get_4bit_type("nf4")). */
static const float NF4[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};

/* ---- Core: the tables --------------------------------------------------- */

START_TEST(test_nf4_table)
{
    /* With absmax 1 every level maps to its own code and back unchanged,
     * so this decodes all 16 codes. */
    float y[16];
    quant("nf4", "block=16", NF4, 1, 16, y);
    assert_floats(y, NF4, 16, "nf4 levels");
    /* The table is NormalFloat: symmetric-ish, 0 exact, 8 positive levels. */
    ck_assert_float_eq(NF4[7], 0.0f);
    for (int i = 1; i < 16; i++)
        ck_assert(NF4[i] > NF4[i - 1]);
    /* Scaled by a power of two, still exact. */
    float x8[16], want[16];
    for (int i = 0; i < 16; i++)
        x8[i] = want[i] = 8 * NF4[i];
    quant("nf4", "block=16", x8, 1, 16, y);
    assert_floats(y, want, 16, "nf4 levels x 8");
}
END_TEST

START_TEST(test_fp4_table)
{
    /* bnb FP4 codes 0..15: [0, 0.0625, 8, 12, 4, 6, 2, 3] / 12 with a sign bit;
     * code 8 (-0) decodes to +0. Listed by code, they come back exactly. */
    const float fp4[16] = {0, 0.0625f / 12, 8.0f / 12, 1, 4.0f / 12, 0.5f, 2.0f / 12, 0.25f,
                           0, -0.0625f / 12, -8.0f / 12, -1, -4.0f / 12, -0.5f, -2.0f / 12,
                           -0.25f};
    float y[16];
    quant("fp4", "block=16", fp4, 1, 16, y);
    assert_floats(y, fp4, 16, "fp4 levels");
    ck_assert_float_eq(fp4[1], 5.208333333e-03f);
    ck_assert_float_eq(fp4[2], 0.66666667f);
}
END_TEST

/* ---- Core: values worked by hand -------------------------------------------- */

START_TEST(test_nf4_hand_block)
{
    /* One block of 16, absmax 2: s = x * 0.5.
     *   2 -> s 1 -> code 15 -> 2;  -2 -> code 0 -> -2
     *   1 -> s 0.5: 0.4407 < 0.5 < 0.50166 (midpoint 12|13) -> code 12
     *   0.3 -> 0.15: 0.12026 < 0.15 < 0.20352 -> code 9
     *   -0.5 -> -0.25: -0.28444 < -0.25 < -0.23461 -> code 4
     *   0, 0.05 (s 0.025 < 0.03979) -> code 7 -> 0
     *   0.1 -> 0.05 > 0.03979 -> code 8;  1.5 -> 0.75: 0.64279 < 0.75 < 0.86148 -> 14
     *   -1.2 -> -0.6: -0.61063 < -0.6 < -0.46 -> code 2 */
    const float x[16] = {2, -2, 1, 0.3f, -0.5f, 0, 0.05f, 0.1f,
                         1.5f, -1.2f, 0, 0, 0, 0, 0, 0};
    const float want[16] = {2, -2, 2 * NF4[12], 2 * NF4[9], 2 * NF4[4], 0, 0, 2 * NF4[8],
                            2 * NF4[14], 2 * NF4[2], 0, 0, 0, 0, 0, 0};
    float y[16];
    quant("nf4", "block=16", x, 1, 16, y);
    assert_floats(y, want, 16, "nf4 block");
    /* fp4, same block: 0.5 -> 1/2; 0.15 -> 1/6 (0.0859 < 0.15 < 0.2083);
     * -0.25 -> -1/4; 0.025 -> 1/192 (> 0.0026); 0.75 -> 2/3 (< 0.8333);
     * -0.6 -> -2/3 (> 0.5833) */
    const float wfp4[16] = {2, -2, 1, 2 * (2.0f / 12), -0.5f, 0, 2 * (0.0625f / 12),
                            2 * (0.0625f / 12), 2 * (8.0f / 12), -2 * (8.0f / 12), 0, 0, 0, 0,
                            0, 0};
    quant("fp4", "block=16", x, 1, 16, y);
    assert_floats(y, wfp4, 16, "fp4 block");
}
END_TEST

START_TEST(test_ties_take_the_lower_level)
{
    /* absmax 1 (first value), so s = x. bnb's tree goes up only when s is
     * strictly above the midpoint literal. */
    const float t15 = 0.8614784181118011f, t1 = -0.8480964004993439f, t8 = 0.03979014977812767f;
    const float x[8] = {1, t15, nextafterf(t15, 2), t1, nextafterf(t1, 2), t8,
                        nextafterf(t8, 2), -0.045525018125772476f};
    const float want[8] = {1, NF4[14], NF4[15], NF4[0], NF4[1], NF4[7], NF4[8], NF4[6]};
    float y[8];
    quant("nf4", "block=16", x, 1, 8, y);
    assert_floats(y, want, 8, "nf4 ties");

    /* fp4 on |s|: exactly on a midpoint keeps the smaller magnitude, and
     * the sign comes from s < 0. */
    const float f[8] = {1, 0.8333333f, nextafterf(0.8333333f, 2), -0.8333333f, 0.00260417f,
                        nextafterf(0.00260417f, 1), -0.29166667f, 0.4166667f};
    const float wf[8] = {1, 8.0f / 12, 1, -8.0f / 12, 0, 0.0625f / 12, -0.25f, 4.0f / 12};
    quant("fp4", "block=16", f, 1, 8, y);
    assert_floats(y, wf, 8, "fp4 ties");
}
END_TEST

START_TEST(test_blocks_along_rows)
{
    /* cols 20, block 16: per row a block of 16 and a block of 4, each with
     * its own absmax. Row 0: big block (absmax 4), tail [0.5, -0.25, 0.1, 0]
     * with absmax 0.5: s = 1, -0.5 (code 2: < -0.46), 0.2 (code 9: < 0.2035), 0.
     * Row 1 is row 0 times 2: its own blocks, same codes. */
    float x[40] = {0}, y[40], want[40] = {0};
    x[0] = 4;
    x[1] = -1; /* s -0.25 -> code 4 */
    want[0] = 4;
    want[1] = 4 * NF4[4];
    const float tail[4] = {0.5f, -0.25f, 0.1f, 0};
    const float wtail[4] = {0.5f, 0.5f * NF4[2], 0.5f * NF4[9], 0};
    memcpy(x + 16, tail, sizeof tail);
    memcpy(want + 16, wtail, sizeof wtail);
    for (int i = 0; i < 20; i++) {
        x[20 + i] = 2 * x[i];
        want[20 + i] = 2 * want[i];
    }
    quant("nf4", "block=16", x, 2, 20, y);
    assert_floats(y, want, 40, "short last block");
    /* A block longer than the row is one block per row. */
    float y2[40];
    quant("nf4", "block=4096", x, 2, 20, y2);
    for (int r = 0; r < 2; r++) {
        float a = r ? 8.0f : 4.0f; /* row absmax */
        for (int i = 16; i < 20; i++) {
            float s = x[r * 20 + i] * (1.0f / a);
            int code = 0;
            for (int k = 0; k < 16; k++)
                if (fabsf(NF4[k] - s) < fabsf(NF4[code] - s))
                    code = k;
            ck_assert_float_eq(y2[r * 20 + i], NF4[code] * a);
        }
    }
}
END_TEST

/* ---- Core: double quantization ---------------------------------------------- */

START_TEST(test_double_quant_hand)
{
    /* Two blocks of 16 with absmax 1 and 3: offset = 2, absmax - offset =
     * [-1, 1], a2 = 1, t = [-1, 1] -> dynamic map entries 0 (-0.99296875,
     * the map has no -1) and 255 (1). Decoded scales: -0.992968738 * 1 + 2
     * and 1 * 1 + 2 = 3. The codes still come from the exact absmax. */
    float x[32] = {0}, y[32], want[32] = {0};
    x[0] = 1;
    x[1] = 0.5f; /* code 12 */
    x[16] = 3;
    x[17] = 1.5f; /* s 0.5 -> code 12 */
    const float s0 = -0.992968738f * 1.0f + 2.0f, s1 = 3;
    want[0] = 1 * s0;
    want[1] = NF4[12] * s0;
    want[16] = 3;
    want[17] = NF4[12] * s1;
    quant("nf4", "block=16,double_quant=true", x, 1, 32, y);
    assert_floats(y, want, 32, "double quant");
    ck_assert_float_eq(s0, 1.00703126f);
    /* Without double quantization the first block keeps absmax 1. */
    quant("nf4", "block=16", x, 1, 32, y);
    ck_assert_float_eq(y[0], 1.0f);
    /* One block only: d = 0, a2 = 0, the scale decodes to offset = absmax. */
    quant("nf4", "block=16,double_quant=true", x, 1, 16, y);
    ck_assert_float_eq(y[0], 1.0f);
    ck_assert_float_eq(y[1], NF4[12]);
}
END_TEST

START_TEST(test_double_quant_dynamic_map)
{
    /* Four blocks of 16 with absmax [1, 5, 3 + u, 3 - u]: offset 3,
     * d = [-2, 2, u, -u], a2 = 2, t = [-1, 1, u/2, -u/2].
     * u = 1: t = +-0.5 lies between the map entries 0.486718774 and
     * 0.500781238; the nearer is 0.500781238, so the scales decode to
     * 3 +- 2 * 0.500781238. */
    float x[64] = {0}, y[64];
    x[0] = 1;
    x[16] = 5;
    x[32] = 4;
    x[48] = 2;
    quant("nf4", "block=16,double_quant=true", x, 1, 64, y);
    ck_assert_float_eq(y[0], -0.992968738f * 2.0f + 3.0f);
    ck_assert_float_eq(y[16], 5.0f);
    ck_assert_float_eq(y[32], 0.500781238f * 2.0f + 3.0f);
    ck_assert_float_eq(y[48], -0.500781238f * 2.0f + 3.0f);
    /* u = 1.5078125: t = 0.75390625 is an entry of the map itself, so the
     * scale comes back exact. */
    x[32] = 4.5078125f;
    x[48] = 1.4921875f;
    quant("nf4", "block=16,double_quant=true", x, 1, 64, y);
    ck_assert_float_eq(y[32], 4.5078125f);
    ck_assert_float_eq(y[48], 1.4921875f);
}
END_TEST

START_TEST(test_double_quant_error_small)
{
    /* QLoRA: double quantization costs (almost) nothing in accuracy. */
    enum { R = 64, C = 1024, N = R * C };
    float *x = malloc(N * sizeof *x), *y1 = malloc(N * sizeof *y1), *y2 = malloc(N * sizeof *y2);
    fill_normal(x, N, 5, 0.02f);
    static const char *const schemes[] = {"nf4", "fp4"};
    for (int s = 0; s < 2; s++) {
        quant(schemes[s], "", x, R, C, y1);
        quant(schemes[s], "double_quant=true", x, R, C, y2);
        double e1 = rmse(x, y1, N), e2 = rmse(x, y2, N);
        ck_assert_msg(e2 < e1 * 1.01, "%s: rmse %g with double quant vs %g", schemes[s], e2, e1);
        /* measured: nf4 0.092 sigma, fp4 0.1225 sigma on normal data */
        ck_assert_msg(e1 < 0.02 * (s == 0 ? 0.095 : 0.125), "%s: rmse %g of sigma 0.02",
                      schemes[s], e1);
        printf("nf4 plugin: %s rmse/sigma %.4f, with double quant %.4f\n", schemes[s],
               e1 / 0.02, e2 / 0.02);
    }
    free(x);
    free(y1);
    free(y2);
}
END_TEST

/* ---- Core: edge cases ------------------------------------------------------- */

START_TEST(test_zeros_constants_and_1x1)
{
    static const char *const schemes[] = {"nf4", "fp4"};
    static const char *const params[] = {"block=16", "block=16,double_quant=true"};
    for (int s = 0; s < 2; s++) {
        for (int p = 0; p < 2; p++) {
            float zeros[40] = {0}, y[40];
            memset(y, 0x7f, sizeof y);
            quant(schemes[s], params[p], zeros, 2, 20, y);
            for (int i = 0; i < 40; i++)
                ck_assert_msg(y[i] == 0 && !signbit(y[i]), "%s %s: zeros -> %g", schemes[s],
                              params[p], y[i]);
            /* A constant is its own absmax: level +-1 times |c|, exactly. */
            const float consts[3] = {0.7f, -0.7f, 3e-3f};
            for (int k = 0; k < 3; k++) {
                float x[40];
                for (int i = 0; i < 40; i++)
                    x[i] = consts[k];
                quant(schemes[s], params[p], x, 2, 20, y);
                for (int i = 0; i < 40; i++)
                    ck_assert_msg(y[i] == x[i], "%s %s: %g -> %.9g", schemes[s], params[p],
                                  x[i], y[i]);
            }
            /* 1x1 */
            const float one[3] = {2.5f, -3.0f, 1e-30f};
            for (int k = 0; k < 3; k++) {
                float out;
                quant(schemes[s], params[p], &one[k], 1, 1, &out);
                ck_assert_msg(out == one[k], "%s %s: %g -> %.9g", schemes[s], params[p], one[k],
                              out);
            }
            /* A subnormal absmax (1/absmax overflows) still decodes sanely. */
            const float tiny[2] = {1e-40f, 0};
            float ty[2];
            quant(schemes[s], params[p], tiny, 1, 2, ty);
            ck_assert_float_eq(ty[0], 1e-40f);
            ck_assert_float_eq(ty[1], 0.0f);
        }
    }
}
END_TEST

START_TEST(test_bad_input)
{
    const float x[4] = {1, 2, NAN, 4};
    quant_fails("nf4", "", x, 1, 4, "nf4/nf4: tensor 'w': non-finite input value at index 2");
    quant_fails("fp4", "double_quant=true", x, 2, 2, "nf4/fp4: tensor 'w': non-finite input "
                "value at index 2");
    const float xi[4] = {1, 2, 3, -INFINITY};
    quant_fails("nf4", "block=16", xi, 2, 2, "non-finite input value at index 3");
}
END_TEST

static int cancel_always(void *ctx)
{
    ++*(int *)ctx;
    return 1;
}

START_TEST(test_cancel)
{
    static float x[300 * 300], y[300 * 300];
    fill_normal(x, 300 * 300, 3, 1);
    struct qscheme_config *c = cfg("nf4", "");
    struct qlab_tensor_view v = {.data = x, .rows = 300, .cols = 300, .name = "big"};
    int asked = 0;
    struct qlab_host host = {.struct_size = sizeof host, .ctx = &asked, .cancelled = cancel_always};
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_quantize(c, &v, y, &host, &err), 0);
    ck_assert_str_eq(err.msg, "nf4/nf4: tensor 'big': cancelled");
    ck_assert_int_ge(asked, 1);
    qscheme_config_free(c);
}
END_TEST

/* ---- Bounds: llama.cpp's synthetic data --------------------------------------- */

/* test-quantize-fns: x[i] = 0.1 + 2 cos(i + offset), 4096 values, error =
 * sqrt(sum of squared differences) / n. */
static float llama_error(const char *scheme, const char *params, float *x, float *y)
{
    enum { N = 32 * 128 };
    for (size_t i = 0; i < N; i++)
        x[i] = 0.1 + 2 * cosf(i + 0.0f);
    quant(scheme, params, x, 1, N, y);
    double sum = 0;
    for (size_t i = 0; i < N; i++) {
        double diff = x[i] - y[i];
        sum += diff * diff;
    }
    return sqrtf(sum) / N;
}

START_TEST(test_llama_synthetic)
{
    /* llama.cpp asks 0.002 of its 4-bit formats (0.003 of FP4). NF4's levels
     * are placed for normal data; this cosine data piles up near +-absmax,
     * where NF4 and FP4 levels are sparse, so the exact bitsandbytes levels
     * land above 0.002: nf4 0.002143, fp4 0.002488 at block 64 (the same
     * numbers come from a plain nearest-level search in double, below). */
    enum { N = 32 * 128 };
    static float x[N], y[N];
    static const struct {
        const char *scheme, *params;
        float bound;
    } cases[] = {
        {"nf4", "", 0.00215f}, {"nf4", "double_quant=true", 0.00215f},
        {"nf4", "block=16", 0.00209f}, {"nf4", "block=256", 0.00215f},
        {"fp4", "", 0.0025f}, {"fp4", "double_quant=true", 0.0025f},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float e = llama_error(cases[k].scheme, cases[k].params, x, y);
        printf("nf4 plugin: %s %s: llama synthetic error %.6f\n", cases[k].scheme,
               cases[k].params, e);
        ck_assert_msg(e < cases[k].bound, "%s %s: error %g", cases[k].scheme, cases[k].params,
                      e);
    }
    /* Every value against a plain nearest-level search (no ties occur here). */
    llama_error("nf4", "", x, y);
    for (int b = 0; b < N; b += 64) {
        float a = 0;
        for (int i = b; i < b + 64; i++)
            a = fmaxf(a, fabsf(x[i]));
        for (int i = b; i < b + 64; i++) {
            float s = x[i] * (1.0f / a);
            int best = 0;
            for (int k = 1; k < 16; k++)
                if (fabsf(NF4[k] - s) < fabsf(NF4[best] - s))
                    best = k;
            ck_assert_msg(y[i] == NF4[best] * a, "[%d] %.9g -> %.9g, nearest level %.9g", i, x[i],
                          y[i], NF4[best] * a);
        }
    }
}
END_TEST

/* ---- Size: exact bits of storage ----------------------------------------- */

START_TEST(test_size_bits)
{
    /* 4 bits per value + one fp32 absmax per block of 64 */
    ck_assert_uint_eq(size_of("nf4", "", 64, 64), 64 * 64 * 4 + 64 * 32);
    ck_assert_uint_eq(size_of("fp4", "", 64, 64), 64 * 64 * 4 + 64 * 32);
    /* cols 100, block 64: two blocks per row (64 and 36) */
    ck_assert_uint_eq(size_of("nf4", "", 3, 100), 3 * 100 * 4 + 3 * 2 * 32);
    ck_assert_uint_eq(size_of("nf4", "block=16", 1, 1), 4 + 32);
    /* double quant: 8 bits per block, fp32 per 256 blocks, one fp32 offset */
    ck_assert_uint_eq(size_of("nf4", "double_quant=true", 64, 64),
                      64 * 64 * 4 + 64 * 8 + 1 * 32 + 32);
    ck_assert_uint_eq(size_of("nf4", "double_quant=true", 1, 1), 4 + 8 + 32 + 32);
    /* 1024 x 4096, block 64: 65536 blocks, 256 groups: 4 + 8/64 + 32/(64*256)
     * bits per weight plus the offset */
    ck_assert_uint_eq(size_of("nf4", "double_quant=true", 1024, 4096),
                      1024ull * 4096 * 4 + 65536ull * 8 + 256 * 32 + 32);
    /* 257 blocks need two second-level scales */
    ck_assert_uint_eq(size_of("fp4", "double_quant=true,block=4096", 257, 4096),
                      257ull * 4096 * 4 + 257 * 8 + 2 * 32 + 32);
    ck_assert_uint_eq(size_of("nf4", "block=4096", 2, 4097), 2 * 4097 * 4 + 2 * 2 * 32);
    /* bits per weight of a 4096 x 4096 tensor: 4.5 plain, 4.127 with double quant */
    double plain = (double)size_of("nf4", "", 4096, 4096) / (4096.0 * 4096);
    double dq = (double)size_of("nf4", "double_quant=true", 4096, 4096) / (4096.0 * 4096);
    ck_assert_double_eq_tol(plain, 4.5, 1e-12);
    ck_assert_double_eq_tol(dq, 4 + 8.0 / 64 + 32.0 / (64 * 256) + 32.0 / (4096.0 * 4096),
                            1e-12);
    ck_assert_uint_eq(size_of("nf4", "", 0, 5), 0);
    struct qscheme_config *c = cfg("nf4", "");
    uint64_t bits = 0;
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_size_bits(c, INT64_MAX, INT64_MAX, &bits, &err), 0);
    ck_assert_msg(strstr(err.msg, "nf4/nf4: ") && strstr(err.msg, "too large"), "%s", err.msg);
    qscheme_config_free(c);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *nf4_suite(void)
{
    Suite *s = suite_create("nf4");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_test(core, test_nf4_table);
    tcase_add_test(core, test_fp4_table);
    tcase_add_test(core, test_nf4_hand_block);
    tcase_add_test(core, test_ties_take_the_lower_level);
    tcase_add_test(core, test_blocks_along_rows);
    tcase_add_test(core, test_double_quant_hand);
    tcase_add_test(core, test_double_quant_dynamic_map);
    tcase_add_test(core, test_zeros_constants_and_1x1);
    tcase_add_test(core, test_bad_input);
    tcase_add_test(core, test_cancel);
    suite_add_tcase(s, core);

    TCase *bounds = tcase_create("Bounds");
    tcase_add_checked_fixture(bounds, setup, teardown);
    tcase_add_test(bounds, test_double_quant_error_small);
    tcase_add_test(bounds, test_llama_synthetic);
    tcase_set_timeout(bounds, 60);
    suite_add_tcase(s, bounds);

    TCase *size = tcase_create("Size");
    tcase_add_checked_fixture(size, setup, teardown);
    tcase_add_test(size, test_size_bits);
    suite_add_tcase(s, size);
    return s;
}

int main(void)
{
    return tu_run(nf4_suite());
}
