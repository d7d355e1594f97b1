/* check_float_formats.c — the "float" plugin through the host: hand-worked values, every grid point and tie, MX scales, exact sizes, packed bytes, error bounds. */
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
    H = su_host("float.so");
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

/* Packs x; returns the bytes (caller frees) and their count in *n. */
static uint8_t *pack(const char *scheme, const char *params, const float *x, int64_t rows,
                     int64_t cols, int64_t *n)
{
    struct qscheme_config *c = cfg(scheme, params);
    struct qlab_tensor_view v = {.data = x, .rows = rows, .cols = cols, .name = "w"};
    qerr err = {{0}};
    int64_t rb = 0;
    ck_assert_msg(qscheme_packed_row_bytes(c, cols, &rb, &err) == 0, "%s", err.msg);
    *n = rb * rows;
    uint8_t *buf = malloc((size_t)*n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_msg(qscheme_pack(c, &v, buf, *n, NULL, &err) == 0, "%s:%s: %s", scheme, params,
                  err.msg);
    qscheme_config_free(c);
    return buf;
}

/* Unpacking bytes must fail with a message containing `phrase`. */
static void unpack_fails(const char *scheme, const char *params, const uint8_t *bytes,
                         int64_t n, int64_t rows, int64_t cols, const char *phrase)
{
    struct qscheme_config *c = cfg(scheme, params);
    float *y = calloc((size_t)(rows * cols) + 1, sizeof *y);
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_unpack(c, bytes, n, rows, cols, y, &err), 0);
    ck_assert_msg(strstr(err.msg, phrase), "got \"%s\", want \"%s\"", err.msg, phrase);
    free(y);
    qscheme_config_free(c);
}

static void assert_floats(const float *got, const float *want, int64_t n, const char *what)
{
    su_assert_floats(got, want, n, what);
}

/* Quantizes x[0..n-1] as one row and compares with want. */
static void expect_row(const char *scheme, const char *params, const float *x, const float *want,
                       int n)
{
    float *y = malloc((size_t)n * sizeof *y);
    char what[96];
    snprintf(what, sizeof what, "%s:%s", scheme, params);
    quant(scheme, params, x, 1, n, y);
    assert_floats(y, want, n, what);
    free(y);
}

static void assert_bytes(const uint8_t *got, const uint8_t *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s: byte %d = 0x%02x, want 0x%02x", what, i, got[i],
                      want[i]);
}

/* Deterministic samples (splitmix64). */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Values of every magnitude from 2^lo to 2^hi, both signs, plus some zeros. */
static void fill_wide(float *x, int64_t n, uint64_t seed, int lo, int hi)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s);
        double mant = 1.0 + (double)(r >> 11 & 0xfffff) / 1048576.0;
        int e = lo + (int)(r % (uint64_t)(hi - lo + 1));
        x[i] = (float)ldexp((r >> 63) ? -mant : mant, e);
        if (r % 97 == 0)
            x[i] = 0;
    }
}

#define P2(e) ((float)ldexp(1.0, (e)))

/* ---- Core: values worked by hand ------------------------------------------ */

START_TEST(test_e4m3_by_hand)
{
    /* E4M3, bias 7, 3 mantissa bits. Max 1.110b x 2^8 = 448 (1.111b x 2^8 is
     * NaN). 464 is halfway between 448 (mantissa 110, even) and 480 -> 448;
     * further out saturates. Smallest subnormal 0.001b x 2^-6 = 2^-9; 2^-10
     * is halfway between 0 and 2^-9 -> 0 (even); 3 x 2^-10 is halfway
     * between 2^-9 (001) and 2^-8 (010) -> 2^-8. Near 1 the step is 1/8:
     * 1 + 1/16 ties 1.000b / 1.001b -> 1; 1 + 3/16 ties 1.001b / 1.010b ->
     * 1.25. Near 16 the step is 2: 17 -> 16, 19 -> 20. 240 = 1.111b x 2^7. */
    const float x[] = {448,  464,         470,     1000,    -1e30f, P2(-9), P2(-10),
                       3 * P2(-10), 1.0625f, 1.1875f, 17,      19,     240,    -0.0f,
                       P2(-6), 0.3f};
    /* 0.3 = 1.2 x 2^-2: step 2^-5, 0.3 / 2^-5 = 9.6 -> 10 -> 0.3125 */
    const float want[] = {448, 448, 448, 448, -448, P2(-9), 0, P2(-8), 1, 1.25f, 16, 20, 240,
                          0, P2(-6), 0.3125f};
    expect_row("fp8_e4m3", "scale=none", x, want, (int)(sizeof x / sizeof x[0]));
}
END_TEST

START_TEST(test_e5m2_by_hand)
{
    /* E5M2, bias 15, 2 mantissa bits. Max 1.11b x 2^15 = 57344; 61440 is
     * halfway to 2^16 (Inf in IEEE) -> saturates. Smallest subnormal 2^-16;
     * 2^-17 -> 0. Near 1 the step is 1/4: 1.125 -> 1, 1.375 -> 1.5. */
    const float x[] = {57344, 61440, 1e9f, -70000, P2(-16), P2(-17), 1.125f, 1.375f, 3 * P2(-17)};
    const float want[] = {57344, 57344, 57344, -57344, P2(-16), 0, 1, 1.5f, P2(-15)};
    expect_row("fp8_e5m2", "scale=none", x, want, (int)(sizeof x / sizeof x[0]));
}
END_TEST

START_TEST(test_fp6_by_hand)
{
    /* E2M3, bias 1: subnormals k/8, then steps 1/8 in [1,2), 1/4 in [2,4),
     * 1/2 in [4,7.5]. Ties: 0.0625 -> 0, 0.1875 -> 0.25, 2.125 -> 2,
     * 4.25 -> 4, 4.75 -> 5; 7.75 (halfway to 8) and 8 saturate to 7.5. */
    const float x[] = {7.5f, 7.75f, 8, -100, 0.0625f, 0.1875f, 2.125f, 4.25f, 4.75f, 0.875f, 1.3f};
    const float want[] = {7.5f, 7.5f, 7.5f, -7.5f, 0, 0.25f, 2, 4, 5, 0.875f, 1.25f};
    expect_row("fp6_e2m3", "scale=none", x, want, (int)(sizeof x / sizeof x[0]));

    /* E3M2, bias 3: smallest subnormal 2^-4 = 0.0625, max 1.11b x 2^4 = 28.
     * 0.03125 -> 0; 0.09375 ties 0.0625 (01) / 0.125 (10) -> 0.125;
     * 26 ties 24 (10) / 28 (11) -> 24; 30 (halfway to 32) saturates. */
    const float x2[] = {28, 30, 100, 0.0625f, 0.03125f, 0.09375f, 26, -26, 5.5f};
    const float want2[] = {28, 28, 28, 0.0625f, 0, 0.125f, 24, -24, 6};
    expect_row("fp6_e3m2", "scale=none", x2, want2, (int)(sizeof x2 / sizeof x2[0]));
}
END_TEST

START_TEST(test_fp4_grid_and_ties)
{
    /* E2M1: +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}. Codes 0..7 in that order, so
     * a tie goes to the even code: 0.25 -> 0 (0), 0.75 -> 1 (2),
     * 1.25 -> 1 (2), 1.75 -> 2 (4), 2.5 -> 2 (4), 3.5 -> 4 (6), 5 -> 4 (6). */
    const float x[] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f,
                       5, 7, 100, -2.5f, -5, -0.3f, 0.26f};
    const float want[] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, 0, 1, 1, 2, 2, 4, 4, 6, 6, -2, -4, -0.5f,
                          0.5f};
    expect_row("fp4_e2m1", "scale=none", x, want, (int)(sizeof x / sizeof x[0]));
}
END_TEST

START_TEST(test_fp16_bf16_by_hand)
{
    /* fp16: step 2^-10 at 1. 1 + 2^-11 ties -> 1; 1 + 3 x 2^-11 ties
     * 1 + 2^-10 (odd) / 1 + 2^-9 -> 1 + 2^-9. 65520 is halfway between
     * 65504 and 2^16 (IEEE: Inf) -> saturates to 65504 by design.
     * Subnormal step 2^-24: 2^-25 -> 0, 3 x 2^-25 -> 2^-23.
     * 0.1f -> 0x2E66 = 0.0999755859375. */
    const float x[] = {1 + P2(-11), 1 + 3 * P2(-11), 65504, 65519, 65520, 1e10f, -1e10f,
                       P2(-24), P2(-25), 3 * P2(-25), 0.1f, 1 + P2(-11) + P2(-20)};
    const float want[] = {1, 1 + P2(-9), 65504, 65504, 65504, 65504, -65504, P2(-24), 0,
                          P2(-23), 0.0999755859375f, 1 + P2(-10)};
    expect_row("fp16", "", x, want, (int)(sizeof x / sizeof x[0]));

    /* bf16: step 2^-7 at 1. 1 + 2^-8 -> 1; 1 + 3 x 2^-8 -> 1 + 2^-6.
     * 0.1f = 0x3DCCCCCD -> 0x3DCD -> 0.10009765625. FLT_MAX saturates to
     * 0x7F7F = 255 x 2^120. Its subnormal step is 2^-133: 2^-134 -> 0. */
    const float xb[] = {1 + P2(-8), 1 + 3 * P2(-8), 0.1f, FLT_MAX, -FLT_MAX, P2(-133), P2(-134),
                        3 * P2(-134)};
    const float wantb[] = {1, 1 + P2(-6), 0.10009765625f, 255 * P2(120), -255 * P2(120), P2(-133),
                           0, P2(-132)};
    expect_row("bf16", "", xb, wantb, (int)(sizeof xb / sizeof xb[0]));
}
END_TEST

START_TEST(test_scale_tensor_and_channel)
{
    /* fp8_e4m3, channel. Row 0: amax 7 -> s = 7/448 = 2^-6; 0.1 / s = 6.4
     * -> 6.5 (step 1/2 in [4,8)) -> 6.5/64 = 0.1015625. Row 1: amax 896 ->
     * s = 2; 100/2 = 50 ties 48 (1.100b) / 52 -> 48 -> 96; -33/2 = -16.5 ->
     * -16 -> -32; 1/2 -> 1. */
    const float x[8] = {7, -3.5f, 0.1f, 0, 896, 100, -33, 1};
    const float per_channel[8] = {7, -3.5f, 0.1015625f, 0, 896, 96, -32, 1};
    /* tensor: s = 896/448 = 2 for both rows; 0.05 = 1.6 x 2^-5 -> 13 x 2^-8
     * = 0.05078125 -> 0.1015625. */
    const float per_tensor[8] = {7, -3.5f, 0.1015625f, 0, 896, 96, -32, 1};
    float y[8];
    quant("fp8_e4m3", "scale=channel", x, 2, 4, y);
    assert_floats(y, per_channel, 8, "channel");
    quant("fp8_e4m3", "scale=tensor", x, 2, 4, y);
    assert_floats(y, per_tensor, 8, "tensor");
    /* The default scale of the 8/6/4-bit schemes is channel. */
    quant("fp8_e4m3", "", x, 2, 4, y);
    assert_floats(y, per_channel, 8, "default");

    /* fp4, row [3, 1, 0.3, -2.9]: channel s = 3/6 = 0.5: 6, 2, 0.6 -> 0.5,
     * -5.8 -> -6: [3, 1, 0.25, -3]. Unscaled: 0.3 -> 0.5, -2.9 -> -3. A
     * second row of 0.01s shows the tensor scale flattening it to zero. */
    const float x4[8] = {3, 1, 0.3f, -2.9f, 0.01f, -0.01f, 0.01f, 0.02f};
    const float w_ch[8] = {3, 1, 0.25f, -3, 0.01f, -0.01f, 0.01f, 0.02f};
    const float w_none[8] = {3, 1, 0.5f, -3, 0, 0, 0, 0};
    const float w_tensor[8] = {3, 1, 0.25f, -3, 0, 0, 0, 0};
    quant("fp4_e2m1", "scale=channel", x4, 2, 4, y);
    /* row 1: s = 0.02/6, 0.01/s = 3 exactly?  fl(0.02/6) makes 0.01/s 3 up to
     * an ulp, and 3 is a grid point, so the values come back within 1 ulp. */
    assert_floats(y, w_ch, 4, "fp4 channel row 0");
    for (int i = 4; i < 8; i++)
        ck_assert_msg(fabsf(y[i] - w_ch[i]) <= 2 * FLT_EPSILON * fabsf(w_ch[i]), "[%d] %.9g", i,
                      y[i]);
    quant("fp4_e2m1", "scale=none", x4, 2, 4, y);
    assert_floats(y, w_none, 8, "fp4 none");
    quant("fp4_e2m1", "scale=tensor", x4, 2, 4, y);
    assert_floats(y, w_tensor, 8, "fp4 tensor");

    /* A row of zeros has scale 0 and comes back as zeros; so does a row
     * whose amax / max underflows float32. */
    const float z[6] = {0, 0, 0, P2(-149), -P2(-149), 0};
    quant("fp6_e2m3", "scale=channel", z, 2, 3, y);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(y[i] == 0, "[%d] = %g", i, y[i]);
}
END_TEST

/* ---- Grid: every representable value and every tie, against the formats' definitions ---- */

struct grid_fmt {
    const char *scheme;
    int bits, ebits, mbits, bias;
    int special; /* 0 none, 1 IEEE top exponent, 2 E4M3 (only .1111.111 is NaN) */
};

static const struct grid_fmt GRIDS[] = {
    {"fp16", 16, 5, 10, 15, 1},     {"bf16", 16, 8, 7, 127, 1},   {"fp8_e4m3", 8, 4, 3, 7, 2},
    {"fp8_e5m2", 8, 5, 2, 15, 1},   {"fp6_e2m3", 6, 2, 3, 1, 0},  {"fp6_e3m2", 6, 3, 2, 3, 0},
    {"fp4_e2m1", 4, 2, 1, 1, 0},
};

/* The non-negative finite values of a format, in code order (= value
 * order), straight from the bit layout: (-1)^s 2^(E-bias) 1.M, or
 * 2^(1-bias) 0.M when E = 0. Returns the count. */
static int grid_values(const struct grid_fmt *g, double *v)
{
    int n = 0;
    int emax_field = (1 << g->ebits) - 1, mmask = (1 << g->mbits) - 1;
    for (int code = 0; code < (1 << (g->bits - 1)); code++) {
        int e = code >> g->mbits, m = code & mmask;
        if (g->special == 1 && e == emax_field)
            break;
        if (g->special == 2 && e == emax_field && m == mmask)
            break;
        v[n++] = e == 0 ? ldexp(m, 1 - g->bias - g->mbits)
                        : ldexp((1 << g->mbits) + m, e - g->bias - g->mbits);
    }
    return n;
}

START_TEST(test_every_value_and_tie)
{
    const struct grid_fmt *g = &GRIDS[_i];
    double *v = malloc(sizeof(double) << (g->bits - 1));
    int n = grid_values(g, v);
    /* per value: +v, -v; per gap: midpoint, its float neighbours below and
     * above; beyond max: the midpoint to the next binade step and 2*max */
    int64_t cap = 5 * (int64_t)n + 8, k = 0;
    float *x = malloc((size_t)cap * sizeof *x), *want = malloc((size_t)cap * sizeof *want);
    float *y = malloc((size_t)cap * sizeof *y);
    for (int i = 0; i < n; i++) {
        x[k] = (float)v[i], want[k++] = (float)v[i];
        x[k] = (float)-v[i], want[k++] = (float)-v[i];
        if (i + 1 < n) {
            float mid = (float)((v[i] + v[i + 1]) / 2);
            ck_assert_msg((double)mid == (v[i] + v[i + 1]) / 2, "midpoint not exact");
            /* ties to the even code: code i and i+1 are adjacent */
            x[k] = mid, want[k++] = (float)(i % 2 == 0 ? v[i] : v[i + 1]);
            x[k] = nextafterf(mid, 0), want[k++] = (float)v[i];
            x[k] = nextafterf(mid, INFINITY), want[k++] = (float)v[i + 1];
        }
    }
    /* (bf16's next step up, 2^128, is past float32: FLT_MAX stands in) */
    double max = v[n - 1], step = max - v[n - 2];
    x[k] = (float)(max + step / 2), want[k++] = (float)max;
    x[k] = (float)fmin(max + step, FLT_MAX), want[k++] = (float)max;
    x[k] = (float)-fmin(2 * max, FLT_MAX), want[k++] = (float)-max;
    quant(g->scheme, g->bits == 16 && g->ebits == 8 ? "" : "scale=none", x, 1, k, y);
    for (int64_t i = 0; i < k; i++)
        ck_assert_msg(y[i] == want[i], "%s: %.9g -> %.9g, want %.9g", g->scheme, x[i], y[i],
                      want[i]);
    if (_i == 2)
        ck_assert_int_eq(n, 127); /* E4M3: 0x00..0x7e are numbers */
    if (_i == 6)
        ck_assert_int_eq(n, 8);
    free(v);
    free(x);
    free(want);
    free(y);
}
END_TEST

#ifdef __FLT16_MAX__
/* fp16 against the compiler's float -> _Float16 conversion (IEEE RNE),
 * except that the plugin saturates where IEEE makes Inf. */
START_TEST(test_fp16_matches_compiler)
{
    enum { N = 1 << 20 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint64_t s = 42;
    for (int i = 0; i < N; i++) {
        /* random bit patterns with exponents around half's range */
        uint32_t r = (uint32_t)rng_next(&s);
        uint32_t ex = 127 - 27 + (r >> 23) % 45; /* 2^-27 .. 2^17 */
        uint32_t b = (r & 0x807fffffu) | ex << 23;
        memcpy(&x[i], &b, sizeof b);
    }
    quant("fp16", "", x, 1, N, y);
    for (int i = 0; i < N; i++) {
        float want = (float)(_Float16)x[i];
        if (isinf(want))
            want = copysignf(65504.0f, want);
        ck_assert_msg(y[i] == want || (y[i] == 0 && want == 0), "%.9g -> %.9g, want %.9g", x[i],
                      y[i], want);
    }
    free(x);
    free(y);
}
END_TEST
#endif

/* ---- MX: scale choice, saturation, short blocks ----------------------------- */

START_TEST(test_mx_scale_choice)
{
    /* MXFP4, amax 5: floor(log2 5) = 2, emax(E2M1) = 2 -> X = 2^0, byte 127.
     * Elements as plain E2M1: 5 -> 4, 2.5 -> 2, 3.5 -> 4, 0.25 -> 0,
     * 1.25 -> 1, 0.75 -> 1. */
    float x[32] = {5, 2.5f, 3.5f, 0.25f, -5, 1.25f, 0.75f, 6};
    float want[32] = {4, 2, 4, 0, -4, 1, 1, 6};
    float y[32];
    int64_t nb;
    quant("mxfp4", "", x, 1, 32, y);
    assert_floats(y, want, 32, "mxfp4 amax 5");
    uint8_t *b = pack("mxfp4", "", x, 1, 32, &nb);
    ck_assert_int_eq(nb, 1 + 16);
    /* byte 127, then codes 4 -> 0110, 2 -> 0100 | 4 -> 0110, 0 | -4 -> 1110,
     * 1 -> 0010 | 1 -> 0010, 6 -> 0111: low nibble first */
    const uint8_t wb[6] = {127, 0x46, 0x06, 0x2e, 0x72, 0x00};
    assert_bytes(b, wb, 6, "mxfp4 bytes");
    free(b);

    /* MXFP8 E4M3, amax 1000: floor(log2 1000) = 9, emax 8 -> X = 2, byte
     * 128. 1000/2 = 500 saturates to 448 -> 896; 3/2 = 1.5 -> 3; 0.001/2 is
     * below half the smallest subnormal 2^-9 -> 0. */
    float x8[32] = {1000, 3, 0.001f, -999};
    float w8[32] = {896, 3, 0, -896};
    quant("mxfp8_e4m3", "", x8, 1, 32, y);
    assert_floats(y, w8, 32, "mxfp8_e4m3 amax 1000");
    b = pack("mxfp8_e4m3", "", x8, 1, 32, &nb);
    ck_assert_int_eq(nb, 33);
    const uint8_t wb8[5] = {128, 0x7e, 0x3c /* 1.5 = 0.1111.100 */, 0x00, 0xfe};
    assert_bytes(b, wb8, 5, "mxfp8_e4m3 bytes");
    free(b);

    /* MXFP8 E5M2, the same block: emax 15 -> X = 2^(9-15) = 2^-6, byte 121;
     * 1000 x 64 = 64000 saturates to 57344 -> 896; 3 x 64 = 192 -> 192 -> 3;
     * 0.001 x 64 = 0.064 = 1.024 x 2^-4 -> 2^-4 -> 2^-10. */
    float w5[32] = {896, 3, P2(-10), -896};
    quant("mxfp8_e5m2", "", x8, 1, 32, y);
    assert_floats(y, w5, 32, "mxfp8_e5m2 amax 1000");
    b = pack("mxfp8_e5m2", "", x8, 1, 32, &nb);
    ck_assert_int_eq(b[0], 121);
    free(b);

    /* MXFP6: E2M3 amax 7.5 -> floor 2 - 2 = 0, X = 1: 7.5 stays; amax 8 ->
     * X = 2: 8 -> 4 -> 8, 1.1 -> 0.55 -> 0.5 (step 1/8 below 1: 0.5 or
     * 0.625) -> 1. E3M2 amax 30 -> floor 4 - 4 = 0, X = 1: 30 -> 28. */
    float x6[64] = {7.5f, 7.4f};
    x6[32] = 8, x6[33] = 1.1f;
    float w6[64] = {7.5f, 7.5f};
    w6[32] = 8, w6[33] = 1;
    float y6[64];
    quant("mxfp6_e2m3", "", x6, 1, 64, y6);
    assert_floats(y6, w6, 64, "mxfp6_e2m3");
    b = pack("mxfp6_e2m3", "", x6, 1, 64, &nb);
    ck_assert_int_eq(nb, 2 * (1 + 24));
    ck_assert_int_eq(b[0], 127);
    ck_assert_int_eq(b[25], 128);
    free(b);
    float x3[32] = {30, -29, 0.2f};
    float w3[32] = {28, -28, 0.1875f}; /* 0.2 = 1.6 x 2^-3 -> 1.5 x 2^-3 */
    quant("mxfp6_e3m2", "", x3, 1, 32, y);
    assert_floats(y, w3, 32, "mxfp6_e3m2");
}
END_TEST

START_TEST(test_mxint8)
{
    /* MXINT8: elements k/64, k in -128..127, emax_elem 0. amax 1.99 ->
     * floor 0 -> X = 1, byte 127: 1.5 = 96/64; 0.01 x 64 = 0.64 -> 1/64;
     * -1.99 x 64 = -127.36 -> -127/64; 0.5/64 ties 0 and 1/64 -> 0;
     * 1.5/64 ties 1/64 and 2/64 -> 2/64. */
    float x[32] = {1.5f, 0.01f, -1.99f, 0.5f / 64, 1.5f / 64};
    float want[32] = {1.5f, 1.0f / 64, -127.0f / 64, 0, 2.0f / 64};
    float y[64];
    int64_t nb;
    quant("mxint8", "", x, 1, 32, y);
    assert_floats(y, want, 32, "mxint8 amax 1.99");
    uint8_t *b = pack("mxint8", "", x, 1, 32, &nb);
    const uint8_t wb[6] = {127, 96, 1, 0x81 /* -127 */, 0, 2};
    assert_bytes(b, wb, 6, "mxint8 bytes");
    free(b);

    /* Two's complement reaches -2: amax 1.995 (negative) -> X = 1,
     * -1.995 x 64 = -127.68 -> -128 = 0x80 -> -2.0, while +1.995 saturates
     * to +127/64. Block 2: amax 3.99 -> X = 2: -3.99/2 -> -128/64 -> -4. */
    float x2[64] = {-1.995f, 1.995f};
    x2[32] = -3.99f, x2[33] = 1;
    float w2[64] = {-2, 127.0f / 64};
    w2[32] = -4, w2[33] = 1;
    quant("mxint8", "", x2, 1, 64, y);
    assert_floats(y, w2, 64, "mxint8 -2");
    b = pack("mxint8", "", x2, 1, 64, &nb);
    ck_assert_int_eq(nb, 66);
    ck_assert_int_eq(b[0], 127);
    ck_assert_int_eq(b[1], 0x80);
    ck_assert_int_eq(b[2], 0x7f);
    ck_assert_int_eq(b[33], 128);
    ck_assert_int_eq(b[34], 0x80);
    ck_assert_int_eq(b[35], 32); /* 1 / 2 = 32/64 */
    free(b);
}
END_TEST

START_TEST(test_mx_zeros_short_block_extremes)
{
    static const char *const mx[] = {"mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2",
                                     "mxfp4", "mxint8"};
    /* A block of zeros: scale byte 0 (2^-127, log2 0 clamped), codes 0. */
    float z[40] = {0}, y[40];
    for (int s = 0; s < 6; s++) {
        int64_t nb;
        memset(y, 0x7f, sizeof y);
        quant(mx[s], "", z, 1, 40, y);
        for (int i = 0; i < 40; i++)
            ck_assert_msg(y[i] == 0, "%s: zeros -> %g", mx[s], y[i]);
        uint8_t *b = pack(mx[s], "", z, 1, 40, &nb);
        for (int64_t i = 0; i < nb; i++)
            ck_assert_msg(b[i] == 0, "%s: byte %lld = %d", mx[s], (long long)i, b[i]);
        free(b);
    }

    /* cols 40: a full block and a short one of 8, each with its own scale.
     * MXFP4 block 1 amax 1 -> X = 2^(0-2), byte 125: 1 -> 1, 0.3 -> 1.2 ->
     * 1 -> 0.25. Block 2 amax 100 -> X = 2^(6-2) = 16, byte 131: 100 ->
     * 6.25 -> 6 -> 96, 0.3 -> 0.01875 -> 0, 20 -> 1.25 -> 1 -> 16. */
    float x[40] = {1, 0.3f};
    x[32] = 100, x[33] = 0.3f, x[34] = 20;
    float want[40] = {1, 0.25f};
    want[32] = 96, want[33] = 0, want[34] = 16;
    quant("mxfp4", "", x, 1, 40, y);
    assert_floats(y, want, 40, "short last block");
    int64_t nb;
    uint8_t *b = pack("mxfp4", "", x, 1, 40, &nb);
    ck_assert_int_eq(nb, (1 + 16) + (1 + 4));
    ck_assert_int_eq(b[0], 125);
    ck_assert_int_eq(b[17], 131);
    ck_assert_int_eq(b[18], 0x07);       /* 6 = 0111, then 0 */
    ck_assert_int_eq(b[19], 0x02);       /* 1 = 0010 */
    free(b);

    /* Extremes of E8M0. amax 3e38: floor(log2) = 127, MXFP4 X = 2^125, byte
     * 252: 3e38 / 2^125 = 7.05 saturates to 6. A float32 subnormal block
     * clamps to X = 2^-127 (byte 0) and keeps its values to E4M3's 4
     * significant bits: 1e-40 x 2^127 = 0.01701 -> 9 x 2^-9. */
    float big[1] = {3e38f}, tiny[2] = {1e-40f, -1e-40f};
    quant("mxfp4", "", big, 1, 1, y);
    ck_assert_float_eq(y[0], 6 * P2(125));
    b = pack("mxfp4", "", big, 1, 1, &nb);
    ck_assert_int_eq(nb, 2);
    ck_assert_int_eq(b[0], 252);
    free(b);
    quant("mxfp8_e4m3", "", tiny, 1, 2, y);
    ck_assert_float_eq(y[0], (float)ldexp(9, -9 - 127));
    ck_assert_float_eq(y[1], (float)-ldexp(9, -9 - 127));
    b = pack("mxfp8_e4m3", "", tiny, 1, 2, &nb);
    ck_assert_int_eq(b[0], 0);
    free(b);
}
END_TEST

/* ---- Size: exact bits ----------------------------------------------------- */

START_TEST(test_size_bits)
{
    ck_assert_uint_eq(size_of("fp16", "", 64, 64), 64 * 64 * 16);
    ck_assert_uint_eq(size_of("fp16", "scale=channel", 64, 64), 64 * 64 * 16 + 64 * 32);
    ck_assert_uint_eq(size_of("fp16", "scale=tensor", 64, 64), 64 * 64 * 16 + 32);
    ck_assert_uint_eq(size_of("bf16", "", 3, 7), 3 * 7 * 16);
    ck_assert_uint_eq(size_of("fp8_e4m3", "scale=channel", 10, 100), 8000 + 10 * 32);
    ck_assert_uint_eq(size_of("fp8_e5m2", "scale=none", 10, 100), 8000);
    ck_assert_uint_eq(size_of("fp6_e2m3", "scale=channel", 4, 50), 4 * 50 * 6 + 4 * 32);
    ck_assert_uint_eq(size_of("fp6_e3m2", "scale=tensor", 4, 50), 4 * 50 * 6 + 32);
    ck_assert_uint_eq(size_of("fp4_e2m1", "scale=none", 3, 5), 60);
    /* MX: 8 bits per started block of 32 in each row */
    ck_assert_uint_eq(size_of("mxfp8_e4m3", "", 1, 32), 32 * 8 + 8);   /* 8.25 b/w */
    ck_assert_uint_eq(size_of("mxfp8_e5m2", "", 2, 64), 2 * 64 * 8 + 2 * 2 * 8);
    ck_assert_uint_eq(size_of("mxfp6_e2m3", "", 4, 64), 4 * 64 * 6 + 4 * 2 * 8); /* 6.25 */
    ck_assert_uint_eq(size_of("mxfp6_e3m2", "", 1, 33), 33 * 6 + 2 * 8);
    ck_assert_uint_eq(size_of("mxfp4", "", 2, 128), 2 * 128 * 4 + 2 * 4 * 8);     /* 4.25 */
    ck_assert_uint_eq(size_of("mxint8", "", 3, 40), 3 * 40 * 8 + 3 * 2 * 8);
    ck_assert_uint_eq(size_of("mxfp4", "", 5, 1), 5 * (4 + 8));
    /* bits per weight for a 4096 x 4096 tensor */
    static const struct {
        const char *scheme, *params;
        double bpw;
    } bpw[] = {{"mxfp8_e4m3", "", 8.25},     {"mxfp8_e5m2", "", 8.25}, {"mxfp6_e2m3", "", 6.25},
               {"mxfp6_e3m2", "", 6.25},     {"mxfp4", "", 4.25},      {"mxint8", "", 8.25},
               {"fp8_e4m3", "scale=channel", 8 + 32.0 / 4096}, {"fp4_e2m1", "scale=none", 4},
               {"fp16", "", 16},             {"bf16", "", 16}};
    for (size_t i = 0; i < sizeof bpw / sizeof bpw[0]; i++) {
        uint64_t b = size_of(bpw[i].scheme, bpw[i].params, 4096, 4096);
        ck_assert_msg((double)b / (4096.0 * 4096.0) == bpw[i].bpw, "%s: %.6f bits per weight",
                      bpw[i].scheme, (double)b / (4096.0 * 4096.0));
    }
    /* empty tensors store nothing; too large is an error, not a wrap */
    ck_assert_uint_eq(size_of("mxfp4", "", 0, 32), 0);
    ck_assert_uint_eq(size_of("fp8_e4m3", "scale=tensor", 5, 0), 0);
    struct qscheme_config *c = cfg("mxfp8_e4m3", "");
    uint64_t bits = 0;
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_size_bits(c, INT64_MAX, INT64_MAX, &bits, &err), 0);
    ck_assert_msg(strstr(err.msg, "float/mxfp8_e4m3: ") && strstr(err.msg, "too large"), "%s",
                  err.msg);
    qscheme_config_free(c);
}
END_TEST

/* ---- Pack: bytes as laid out, and unpack(pack(x)) == quantize(x) ------------ */

START_TEST(test_packed_bytes_by_hand)
{
    int64_t nb;
    /* E4M3: 448 = 0.1111.110, -448 = 1.1111.110, 1 = 0.0111.000,
     * 2^-9 = 0.0000.001, 0, -0 = 0x80. */
    const float x8[6] = {448, -448, 1, P2(-9), 0, -0.0f};
    const uint8_t w8[6] = {0x7e, 0xfe, 0x38, 0x01, 0x00, 0x80};
    uint8_t *b = pack("fp8_e4m3", "scale=none", x8, 1, 6, &nb);
    ck_assert_int_eq(nb, 6);
    assert_bytes(b, w8, 6, "e4m3");
    free(b);
    /* E5M2: 1 = 0.01111.00 = 0x3c, 57344 = 0.11110.11 = 0x7b */
    const float x5[2] = {1, 57344};
    const uint8_t w5[2] = {0x3c, 0x7b};
    b = pack("fp8_e5m2", "scale=none", x5, 1, 2, &nb);
    assert_bytes(b, w5, 2, "e5m2");
    free(b);
    /* fp16 1.0 = 0x3c00, 65504 = 0x7bff; bf16 1.0 = 0x3f80; little-endian */
    const float x16[2] = {1, 65504};
    const uint8_t w16[4] = {0x00, 0x3c, 0xff, 0x7b};
    b = pack("fp16", "", x16, 1, 2, &nb);
    ck_assert_int_eq(nb, 4);
    assert_bytes(b, w16, 4, "fp16");
    free(b);
    const uint8_t wb16[4] = {0x80, 0x3f, 0x80, 0xbf};
    const float xb16[2] = {1, -1};
    b = pack("bf16", "", xb16, 1, 2, &nb);
    assert_bytes(b, wb16, 4, "bf16");
    free(b);
    /* fp4 [1, 6, -0.5]: codes 0x2, 0x7, 0x9 -> 0x72, 0x09 (low nibble first) */
    const float x4[3] = {1, 6, -0.5f};
    const uint8_t w4[2] = {0x72, 0x09};
    b = pack("fp4_e2m1", "scale=none", x4, 1, 3, &nb);
    ck_assert_int_eq(nb, 2);
    assert_bytes(b, w4, 2, "fp4");
    free(b);
    /* E2M3 [1, 7.5, -0.125, 2]: codes 001000, 011111, 100001, 010000 in an
     * LSB-first stream: 0x08 | 0x1f << 6, 0x1f >> 2 | 0x21 << 4,
     * 0x21 >> 4 | 0x10 << 2 = c8 17 42. */
    const float x6[4] = {1, 7.5f, -0.125f, 2};
    const uint8_t w6[3] = {0xc8, 0x17, 0x42};
    b = pack("fp6_e2m3", "scale=none", x6, 1, 4, &nb);
    ck_assert_int_eq(nb, 3);
    assert_bytes(b, w6, 3, "e2m3");
    free(b);
    /* channel: the float32 scale first (2.0f = 0x40000000), then codes:
     * [896, 2] / 2 = [448, 1] */
    const float xc[2] = {896, 2};
    const uint8_t wc[6] = {0x00, 0x00, 0x00, 0x40, 0x7e, 0x38};
    b = pack("fp8_e4m3", "scale=channel", xc, 1, 2, &nb);
    ck_assert_int_eq(nb, 6);
    assert_bytes(b, wc, 6, "e4m3 channel");
    free(b);
}
END_TEST

static const char *const ROUND_TRIP[][2] = {
    {"fp16", "scale=none"},       {"fp16", "scale=channel"},     {"bf16", ""},
    {"fp8_e4m3", "scale=none"},   {"fp8_e4m3", "scale=channel"}, {"fp8_e5m2", "scale=none"},
    {"fp8_e5m2", "scale=channel"}, {"fp6_e2m3", "scale=none"},   {"fp6_e2m3", "scale=channel"},
    {"fp6_e3m2", "scale=none"},   {"fp6_e3m2", "scale=channel"}, {"fp4_e2m1", "scale=none"},
    {"fp4_e2m1", "scale=channel"}, {"mxfp8_e4m3", ""},           {"mxfp8_e5m2", ""},
    {"mxfp6_e2m3", ""},           {"mxfp6_e3m2", ""},            {"mxfp4", ""},
    {"mxint8", ""},
};

START_TEST(test_unpack_of_pack_is_quantize)
{
    const char *scheme = ROUND_TRIP[_i][0], *params = ROUND_TRIP[_i][1];
    enum { R = 6, C = 77 }; /* 77 = 2 full MX blocks and one of 13; odd for fp4/fp6 */
    static float x[R * C], y[R * C], u[R * C];
    fill_wide(x, R * C, 100 + (uint64_t)_i, -30, 20);
    for (int i = 0; i < C; i++)
        x[4 * C + i] = 0;            /* a row of zeros */
    x[5 * C + 3] = 1e-42f;           /* a float32 subnormal */
    quant(scheme, params, x, R, C, y);
    int64_t nb;
    uint8_t *b = pack(scheme, params, x, R, C, &nb);
    struct qscheme_config *c = cfg(scheme, params);
    qerr err = {{0}};
    ck_assert_msg(qscheme_unpack(c, b, nb, R, C, u, &err) == 0, "%s", err.msg);
    for (int i = 0; i < R * C; i++) {
        uint32_t yb, ub;
        memcpy(&yb, &y[i], 4);
        memcpy(&ub, &u[i], 4);
        ck_assert_msg(yb == ub, "%s:%s [%d] %.9g: quantize %.9g, unpack %.9g", scheme, params, i,
                      x[i], y[i], u[i]);
    }
    qscheme_config_free(c);
    free(b);
}
END_TEST

START_TEST(test_unpack_refuses_bad_bytes)
{
    const uint8_t nan_e4m3[2] = {0x38, 0x7f};
    unpack_fails("fp8_e4m3", "scale=none", nan_e4m3, 2, 1, 2,
                 "row 0, column 1: e4m3 code 0x7f is not a number");
    const uint8_t inf_e5m2[1] = {0xfc};
    unpack_fails("fp8_e5m2", "scale=none", inf_e5m2, 1, 1, 1, "not a number");
    const uint8_t inf_fp16[2] = {0x00, 0x7c};
    unpack_fails("fp16", "", inf_fp16, 2, 1, 1, "fp16 code 0x7c00 is not a number");
    /* 0xff is the E8M0 NaN */
    uint8_t mx4[1 + 16] = {0xff};
    unpack_fails("mxfp4", "", mx4, 17, 1, 32, "row 0, block 0: E8M0 scale byte 0xff is NaN");
    /* 2^127 x 57344 does not fit a float32 */
    uint8_t mx5[1 + 32] = {254, 0x7b};
    unpack_fails("mxfp8_e5m2", "", mx5, 33, 1, 32, "overflows float32");
    /* a NaN float32 scale */
    const uint8_t ch[5] = {0x00, 0x00, 0xc0, 0x7f, 0x38};
    unpack_fails("fp8_e4m3", "scale=channel", ch, 5, 1, 1, "row 0: the float32 scale is not "
                 "finite");
    /* the wrong byte count (the host's check) */
    unpack_fails("fp8_e4m3", "scale=none", nan_e4m3, 1, 1, 2, "1 bytes given");
    /* a whole-tensor scale has no row layout */
    struct qscheme_config *c = cfg("fp6_e2m3", "scale=tensor");
    int64_t rb;
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_packed_row_bytes(c, 10, &rb, &err), 0);
    ck_assert_msg(strstr(err.msg, "scale=tensor keeps one scale"), "%s", err.msg);
    qscheme_config_free(c);
}
END_TEST

START_TEST(test_bad_input)
{
    const float x[4] = {1, 2, NAN, 4};
    quant_fails("fp8_e4m3", "scale=none", x, 1, 4,
                "float/fp8_e4m3: tensor 'w': non-finite input value at index 2");
    quant_fails("fp16", "scale=tensor", x, 2, 2, "non-finite input value at index 2");
    quant_fails("bf16", "", x, 2, 2, "non-finite input value at index 2");
    const float xi[4] = {1, 2, 3, -INFINITY};
    quant_fails("fp4_e2m1", "scale=channel", xi, 2, 2, "non-finite input value at index 3");
    static float xm[70];
    xm[69] = INFINITY;
    quant_fails("mxfp6_e3m2", "", xm, 1, 70, "non-finite input value at index 69");
    quant_fails("mxint8", "", xm, 2, 35, "non-finite input value at index 69");
    /* fp16's max x fl(FLT_MAX / 65504) rounds past FLT_MAX: refused, not Inf */
    const float huge[2] = {FLT_MAX, 1};
    quant_fails("fp16", "scale=channel", huge, 1, 2, "too large for a float32 scale");
    /* ... while the formats with room to spare take it */
    float y[2];
    quant("fp8_e4m3", "scale=channel", huge, 1, 2, y);
    ck_assert(isfinite(y[0]) && y[0] > 3e38f);
    /* pack checks input too */
    struct qscheme_config *c = cfg("mxfp4", "");
    struct qlab_tensor_view v = {.data = xm, .rows = 1, .cols = 70, .name = "w"};
    uint8_t buf[64];
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_pack(c, &v, buf, sizeof buf, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, "index 69"), "%s", err.msg);
    qscheme_config_free(c);
}
END_TEST

/* ---- Bounds: llama.cpp's test-quantize-fns data ---------------------------- */

/* test-quantize-fns.cpp: x[i] = 0.1 + 2 cos(i + offset), error =
 * sqrt(sum (x - x')^2) / n (so 0.002 at n = 4096 is an RMS of 0.128). */
static void llama_data(float offset, int n, float *x)
{
    for (int i = 0; i < n; i++)
        x[i] = (float)(0.1 + 2 * cos((double)i + offset));
}

static double llama_error(const float *x, const float *y, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    return sqrt(s) / n;
}

/* The 6/8/16-bit schemes must meet llama.cpp's 0.002. The 4-bit ones
 * cannot be held to it: E2M1 has 2 significant bits, so the grid step
 * near the data's extremes (|x| up to 2.1, where 0.1 + 2 cos(i) spends
 * most of its time) is 0.5 unscaled (values 1, 1.5, 2; 2.1 -> 2), 0.5 for
 * MXFP4 (X = 2^(floor(log2 2.1) - 2) = 1/2, elements 2, 3, 4 -> 1, 1.5, 2)
 * and 0.7 with a channel scale (s = 2.1/6 = 0.35, grid 1.4, 2.1). A
 * uniform rounding error over a step h has RMS h/sqrt(12), so the error
 * is at most about h/sqrt(12)/sqrt(4096): 0.00226 for h = 0.5 and 0.00316
 * for h = 0.7. The bounds are those plus 10% (measured: 0.00219, 0.00188
 * and 0.00246). Every scheme is also held to the largest single error it
 * can make on |x| < 4 (max_abs): half its grid step in [2, 4) -- for a
 * channel scale s = 2.1/max, half the top binade's step times s (E4M3 32s,
 * E5M2 8192s, E2M3 0.5s, E3M2 4s) -- except E2M1, whose [2, 4) step of 1
 * only ever meets x <= 2.1 (error <= 0.1): there the [1, 2) step decides. */
static const struct {
    const char *scheme, *params;
    double bound;   /* on llama_error */
    double max_abs; /* on max |x - x'| */
} LLAMA[] = {
    {"fp16", "", 0.002, 0x1p-10},     {"bf16", "", 0.002, 0x1p-7},
    {"fp8_e4m3", "scale=none", 0.002, 0.125},  {"fp8_e4m3", "scale=channel", 0.002, 16 * 2.1 / 448},
    {"fp8_e5m2", "scale=none", 0.002, 0.25},   {"fp8_e5m2", "scale=channel", 0.002, 4096 * 2.1 / 57344},
    {"fp6_e2m3", "scale=none", 0.002, 0.125},  {"fp6_e2m3", "scale=channel", 0.002, 0.25 * 2.1 / 7.5},
    {"fp6_e3m2", "scale=none", 0.002, 0.25},   {"fp6_e3m2", "scale=channel", 0.002, 2 * 2.1 / 28},
    {"mxfp8_e4m3", "", 0.002, 0.125}, {"mxfp8_e5m2", "", 0.002, 0.25},
    {"mxfp6_e2m3", "", 0.002, 0.125}, {"mxfp6_e3m2", "", 0.002, 0.25},
    {"mxint8", "", 0.002, 1.0 / 64},
    {"fp4_e2m1", "scale=none", 0.0025, 0.25}, {"fp4_e2m1", "scale=channel", 0.0035, 0.35},
    {"mxfp4", "", 0.0025, 0.25},
};

START_TEST(test_llama_round_trip)
{
    enum { N = 4096 };
    float x[N], y[N];
    for (int off = 0; off < 2; off++) {
        llama_data((float)off, N, x);
        for (size_t k = 0; k < sizeof LLAMA / sizeof LLAMA[0]; k++) {
            quant(LLAMA[k].scheme, LLAMA[k].params, x, 1, N, y);
            double e = llama_error(x, y, N), worst = 0;
            for (int i = 0; i < N; i++)
                worst = fmax(worst, fabs((double)x[i] - y[i]));
            printf("round trip %-11s %-14s offset %d: error %.6f (bound %.4f), max |err| %.5f\n",
                   LLAMA[k].scheme, LLAMA[k].params, off, e, LLAMA[k].bound, worst);
            ck_assert_msg(e < LLAMA[k].bound, "%s:%s offset %d: error %g", LLAMA[k].scheme,
                          LLAMA[k].params, off, e);
            /* (1 + 2^-20): the channel scale's own float32 rounding */
            ck_assert_msg(worst <= LLAMA[k].max_abs * (1 + 0x1p-20), "%s:%s offset %d: max "
                          "error %g", LLAMA[k].scheme, LLAMA[k].params, off, worst);
        }
    }
}
END_TEST

START_TEST(test_more_bits_less_error)
{
    /* The same element format with more mantissa bits does better. */
    enum { N = 4096 };
    float x[N], y[N];
    llama_data(0, N, x);
    static const char *const order[][2] = {{"mxfp4", ""}, {"mxfp6_e3m2", ""}, {"mxfp6_e2m3", ""},
                                           {"mxfp8_e4m3", ""}, {"mxint8", ""}, {"bf16", ""},
                                           {"fp16", ""}};
    double prev = INFINITY;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        quant(order[k][0], order[k][1], x, 1, N, y);
        double e = llama_error(x, y, N);
        ck_assert_msg(e < prev, "%s: %g not below %g", order[k][0], e, prev);
        prev = e;
    }
}
END_TEST

START_TEST(test_deterministic_and_zeros)
{
    enum { R = 8, C = 100 };
    static float x[R * C], a[R * C], b[R * C], z[R * C];
    fill_wide(x, R * C, 5, -12, 6);
    for (size_t k = 0; k < sizeof ROUND_TRIP / sizeof ROUND_TRIP[0]; k++) {
        quant(ROUND_TRIP[k][0], ROUND_TRIP[k][1], x, R, C, a);
        quant(ROUND_TRIP[k][0], ROUND_TRIP[k][1], x, R, C, b);
        ck_assert_msg(memcmp(a, b, sizeof a) == 0, "%s not deterministic", ROUND_TRIP[k][0]);
        memset(a, 0x7f, sizeof a);
        quant(ROUND_TRIP[k][0], ROUND_TRIP[k][1], z, R, C, a);
        for (int i = 0; i < R * C; i++)
            ck_assert_msg(a[i] == 0, "%s: zeros -> %g", ROUND_TRIP[k][0], a[i]);
    }
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
    fill_wide(x, 300 * 300, 3, -4, 4);
    static const char *const schemes[] = {"mxfp4", "fp8_e4m3"};
    for (int s = 0; s < 2; s++) {
        struct qscheme_config *c = cfg(schemes[s], "");
        struct qlab_tensor_view v = {.data = x, .rows = 300, .cols = 300, .name = "big"};
        int asked = 0;
        struct qlab_host host = {.struct_size = sizeof host, .ctx = &asked,
                                 .cancelled = cancel_never};
        qerr err = {{0}};
        ck_assert_msg(qscheme_quantize(c, &v, y, &host, &err) == 0, "%s", err.msg);
        ck_assert_int_ge(asked, 2); /* 90000 values, asked every 65536 */
        host.cancelled = cancel_always;
        ck_assert_int_ne(qscheme_quantize(c, &v, y, &host, &err), 0);
        char want[64];
        snprintf(want, sizeof want, "float/%s: tensor 'big': cancelled", schemes[s]);
        ck_assert_str_eq(err.msg, want);
        qscheme_config_free(c);
    }
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
    fill_wide(x, N, 11, -8, 8);
    struct qscheme_config *c = cfg("mxfp6_e2m3", "");
    quant("mxfp6_e2m3", "", x, 64, 200, ref);
    pthread_t th[T];
    struct job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (struct job){.c = c, .x = x, .y = out[t], .rc = -1};
        ck_assert_int_eq(pthread_create(&th[t], NULL, run_job, &jobs[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        ck_assert_int_eq(jobs[t].rc, 0);
        ck_assert_int_eq(memcmp(out[t], ref, sizeof ref), 0);
    }
    qscheme_config_free(c);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *float_formats_suite(void)
{
    Suite *s = suite_create("float_formats");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_test(core, test_e4m3_by_hand);
    tcase_add_test(core, test_e5m2_by_hand);
    tcase_add_test(core, test_fp6_by_hand);
    tcase_add_test(core, test_fp4_grid_and_ties);
    tcase_add_test(core, test_fp16_bf16_by_hand);
    tcase_add_test(core, test_scale_tensor_and_channel);
    tcase_add_test(core, test_bad_input);
    suite_add_tcase(s, core);

    TCase *grid = tcase_create("Grid");
    tcase_add_checked_fixture(grid, setup, teardown);
    tcase_add_loop_test(grid, test_every_value_and_tie, 0, (int)(sizeof GRIDS / sizeof GRIDS[0]));
#ifdef __FLT16_MAX__
    tcase_add_test(grid, test_fp16_matches_compiler);
#endif
    tcase_set_timeout(grid, 60);
    suite_add_tcase(s, grid);

    TCase *mx = tcase_create("MX");
    tcase_add_checked_fixture(mx, setup, teardown);
    tcase_add_test(mx, test_mx_scale_choice);
    tcase_add_test(mx, test_mxint8);
    tcase_add_test(mx, test_mx_zeros_short_block_extremes);
    suite_add_tcase(s, mx);

    TCase *size = tcase_create("Size");
    tcase_add_checked_fixture(size, setup, teardown);
    tcase_add_test(size, test_size_bits);
    suite_add_tcase(s, size);

    TCase *packed = tcase_create("Pack");
    tcase_add_checked_fixture(packed, setup, teardown);
    tcase_add_test(packed, test_packed_bytes_by_hand);
    tcase_add_loop_test(packed, test_unpack_of_pack_is_quantize, 0,
                        (int)(sizeof ROUND_TRIP / sizeof ROUND_TRIP[0]));
    tcase_add_test(packed, test_unpack_refuses_bad_bytes);
    suite_add_tcase(s, packed);

    TCase *bounds = tcase_create("Bounds");
    tcase_add_checked_fixture(bounds, setup, teardown);
    tcase_add_test(bounds, test_llama_round_trip);
    tcase_add_test(bounds, test_more_bits_less_error);
    tcase_add_test(bounds, test_deterministic_and_zeros);
    tcase_set_timeout(bounds, 60);
    suite_add_tcase(s, bounds);

    TCase *host = tcase_create("Host");
    tcase_add_checked_fixture(host, setup, teardown);
    tcase_add_test(host, test_cancel);
    tcase_add_test(host, test_threads_share_a_config);
    suite_add_tcase(s, host);
    return s;
}

int main(void)
{
    return tu_run(float_formats_suite());
}
