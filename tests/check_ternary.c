/* check_ternary.c — the "ternary" plugin (BitNet b1.58 absmean ternary, sign binary) through the host: hand-worked values, sizes, error bounds. */
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
    H = su_host("ternary.so");
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

/* ---- Core: ternary by hand -------------------------------------------------- */

START_TEST(test_ternary_rounding_and_clamp)
{
    /* gamma = (3 + 0.5 + 0.5 + 0) / 4 = 1, s = 1: 3 clamps to 1, +-0.5
     * round half to even to 0; 1.5 -> 2 -> 1, -1.5 -> -1. */
    const float x[8] = {3, 0.5f, -0.5f, 0, /* gamma 1 as well: */ 1.5f, -1.5f, 0.5f, 0.5f};
    const float want[8] = {1, 0, 0, 0, 1, -1, 0, 0};
    float y[8];
    quant("ternary", "granularity=channel", x, 2, 4, y);
    assert_floats(y, want, 8, "ternary gamma 1");

    /* gamma = (0.5 + 1 + 0.1 + 2) / 4 = 0.9 (float 0.9f), s = 1 / 0.9f:
     * 0.556 -> 1, -1.11 -> -1, 0.111 -> 0, 2.22 -> clamp 1; w' = q / s. */
    const float x2[4] = {0.5f, -1.0f, 0.1f, 2.0f};
    const float s = 1.0f / 0.9f;
    const float want2[4] = {1 / s, -1 / s, 0, 1 / s};
    quant("ternary", "", x2, 1, 4, y);
    assert_floats(y, want2, 4, "ternary gamma 0.9");
    ck_assert_float_eq_tol(y[0], 0.9f, 1e-7f);
}
END_TEST

START_TEST(test_ternary_tensor_vs_channel)
{
    /* Row 1 is row 0 times 10. Per channel: gamma 1 and 10. Per tensor:
     * gamma = (4 + 40) / 8 = 5.5, s = 1/5.5: 3 -> 0.545 -> 1; 0.5 -> 0;
     * 30 -> 1; 5 -> 0.909 -> 1; -5 -> -1. */
    const float x[8] = {3, 0.5f, -0.5f, 0, 30, 5, -5, 0};
    const float channel[8] = {1, 0, 0, 0, 10, 0, 0, 0};
    const float g = 1 / (1.0f / 5.5f);
    const float tensor[8] = {g, 0, 0, 0, g, g, -g, 0};
    float y[8];
    quant("ternary", "granularity=channel", x, 2, 4, y);
    assert_floats(y, channel, 8, "channel");
    quant("ternary", "granularity=tensor", x, 2, 4, y);
    assert_floats(y, tensor, 8, "tensor");
    /* packing changes storage only */
    float y2[8];
    quant("ternary", "granularity=tensor,packing=2bit", x, 2, 4, y2);
    assert_floats(y2, tensor, 8, "2bit packing");
}
END_TEST

START_TEST(test_ternary_gamma_floor)
{
    /* BitNet's reference code clamps gamma at 1e-5. gamma = 2e-6 here, so
     * s = 1e5: 4e-6 * 1e5 = 0.4 -> 0 (with the raw gamma it would be 2 -> 1). */
    const float x[4] = {4e-6f, -4e-6f, 0, 0};
    const float zero[4] = {0, 0, 0, 0};
    float y[4];
    quant("ternary", "", x, 1, 4, y);
    assert_floats(y, zero, 4, "below the floor");
    /* gamma = 5.25e-6 < 1e-5: 2e-5 * 1e5 = 2 -> 1 -> 1 / s. */
    const float x2[4] = {2e-5f, 1e-6f, 0, 0};
    const float s = 1.0f / 1e-5f;
    const float want2[4] = {1 / s, 0, 0, 0};
    quant("ternary", "", x2, 1, 4, y);
    assert_floats(y, want2, 4, "floor");
}
END_TEST

/* ---- Core: binary by hand ----------------------------------------------------- */

START_TEST(test_binary_signs_and_scale)
{
    /* Row 0: mean |w| = (3 + 1 + 0 + 0 + 2) / 5 = 1.2; 0 and -0 count as +.
     * Row 1 has its own scale: mean |w| = (4 + 4 + 1 + 1 + 0) / 5 = 2. */
    const float x[10] = {3, -1, 0, -0.0f, 2, -4, 4, 1, -1, 0};
    const float m0 = (float)(6.0 / 5);
    const float want[10] = {m0, -m0, m0, m0, m0, -2, 2, 2, -2, 2};
    float y[10];
    quant("binary", "", x, 2, 5, y);
    assert_floats(y, want, 10, "binary");
    ck_assert(!signbit(y[3]));
}
END_TEST

/* ---- Core: edge cases ------------------------------------------------------- */

START_TEST(test_zeros_constants_and_1x1)
{
    static const char *const modes[][2] = {{"ternary", ""},
                                           {"ternary", "granularity=channel"},
                                           {"binary", ""}};
    for (int m = 0; m < 3; m++) {
        float zeros[12] = {0}, y[12];
        memset(y, 0x7f, sizeof y);
        quant(modes[m][0], modes[m][1], zeros, 3, 4, y);
        for (int i = 0; i < 12; i++)
            ck_assert_msg(y[i] == 0 && !signbit(y[i]), "%s %s: zeros -> %g", modes[m][0],
                          modes[m][1], y[i]);
        /* A constant is its own absmean: +-1 times gamma. */
        const float consts[3] = {0.7f, -0.7f, 3e-3f};
        for (int k = 0; k < 3; k++) {
            float x[12];
            for (int i = 0; i < 12; i++)
                x[i] = consts[k];
            quant(modes[m][0], modes[m][1], x, 3, 4, y);
            for (int i = 0; i < 12; i++)
                ck_assert_msg(fabsf(y[i] - x[i]) <= FLT_EPSILON * fabsf(x[i]), "%s %s: %g -> %.9g",
                              modes[m][0], modes[m][1], x[i], y[i]);
        }
        const float one[2] = {2.5f, -3.0f};
        for (int k = 0; k < 2; k++) {
            float out;
            quant(modes[m][0], modes[m][1], &one[k], 1, 1, &out);
            ck_assert_msg(fabsf(out - one[k]) <= FLT_EPSILON * fabsf(one[k]), "%s: %g -> %.9g",
                          modes[m][0], one[k], out);
        }
    }
}
END_TEST

START_TEST(test_bad_input)
{
    const float x[4] = {1, 2, NAN, 4};
    quant_fails("ternary", "", x, 1, 4, "ternary/ternary: tensor 'w': non-finite input value "
                "at index 2");
    quant_fails("ternary", "granularity=channel", x, 2, 2, "non-finite input value at index 2");
    const float xi[4] = {1, 2, 3, INFINITY};
    quant_fails("binary", "", xi, 2, 2, "ternary/binary: tensor 'w': non-finite input value "
                "at index 3");
}
END_TEST

/* ---- Bounds: llama.cpp's synthetic data --------------------------------------- */

/* test-quantize-fns: x[i] = 0.1 + 2 cos(i + offset), 4096 values, error =
 * sqrt(sum of squared differences) / n, 0.01 for its ternary types. */
static float llama_error(const char *scheme, const char *params)
{
    enum { N = 32 * 128 };
    static float x[N], y[N];
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
    static const char *const cases[][2] = {{"ternary", ""}, {"binary", ""}};
    for (int k = 0; k < 2; k++) {
        float e = llama_error(cases[k][0], cases[k][1]);
        printf("ternary plugin: %s: llama synthetic error %.6f\n", cases[k][0], e);
        ck_assert_msg(e < 0.01f, "%s: error %g", cases[k][0], e);
    }
}
END_TEST

/* ---- Size: exact bits of storage ----------------------------------------- */

START_TEST(test_size_bits)
{
    /* trit: 5 values per byte over the tensor's code stream, + one fp32 gamma */
    ck_assert_uint_eq(size_of("ternary", "", 64, 64), 8 * 820 + 32); /* ceil(4096/5) = 820 */
    ck_assert_uint_eq(size_of("ternary", "", 1, 1), 8 + 32);
    ck_assert_uint_eq(size_of("ternary", "", 3, 7), 8 * 5 + 32); /* 21 values -> 5 bytes */
    ck_assert_uint_eq(size_of("ternary", "", 5, 1), 8 + 32);
    /* 2bit: 2 bits per value */
    ck_assert_uint_eq(size_of("ternary", "packing=2bit", 64, 64), 2 * 4096 + 32);
    ck_assert_uint_eq(size_of("ternary", "packing=2bit", 3, 7), 2 * 21 + 32);
    /* channel: a gamma per row */
    ck_assert_uint_eq(size_of("ternary", "granularity=channel", 64, 64), 8 * 820 + 64 * 32);
    ck_assert_uint_eq(size_of("ternary", "granularity=channel,packing=2bit", 3, 7),
                      2 * 21 + 3 * 32);
    /* binary: 1 bit per value + an fp32 scale per row */
    ck_assert_uint_eq(size_of("binary", "", 64, 64), 4096 + 64 * 32);
    ck_assert_uint_eq(size_of("binary", "", 3, 7), 21 + 3 * 32);
    /* bits per weight of a 4096 x 4096 tensor: 1.6 (+ 32 / n) */
    ck_assert_double_eq_tol((double)size_of("ternary", "", 4096, 4096) / (4096.0 * 4096),
                            8.0 * 3355444 / (4096.0 * 4096) + 32 / (4096.0 * 4096), 1e-12);
    ck_assert_uint_eq(size_of("ternary", "", 0, 5), 0);
    ck_assert_uint_eq(size_of("binary", "", 5, 0), 0);
    struct qscheme_config *c = cfg("ternary", "packing=2bit");
    uint64_t bits = 0;
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_size_bits(c, INT64_MAX, INT64_MAX, &bits, &err), 0);
    ck_assert_msg(strstr(err.msg, "too large"), "%s", err.msg);
    qscheme_config_free(c);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *ternary_suite(void)
{
    Suite *s = suite_create("ternary");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_test(core, test_ternary_rounding_and_clamp);
    tcase_add_test(core, test_ternary_tensor_vs_channel);
    tcase_add_test(core, test_ternary_gamma_floor);
    tcase_add_test(core, test_binary_signs_and_scale);
    tcase_add_test(core, test_zeros_constants_and_1x1);
    tcase_add_test(core, test_bad_input);
    suite_add_tcase(s, core);

    TCase *bounds = tcase_create("Bounds");
    tcase_add_checked_fixture(bounds, setup, teardown);
    tcase_add_test(bounds, test_llama_synthetic);
    suite_add_tcase(s, bounds);

    TCase *size = tcase_create("Size");
    tcase_add_checked_fixture(size, setup, teardown);
    tcase_add_test(size, test_size_bits);
    suite_add_tcase(s, size);
    return s;
}

int main(void)
{
    return tu_run(ternary_suite());
}
