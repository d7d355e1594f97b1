/* check_codebook.c — the "codebook" plugin (k-means palettization) through the host: exact tables, known centroids, determinism, sizes, bounds. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../quant/plugin_host.h"
#include "scheme_util.h"
#include "test_util.h"

/* ---- fixture and helpers ------------------------------------------------ */

static struct qplugin_host *H;

static void setup(void)
{
    H = su_host("codebook.so");
}

static void teardown(void)
{
    qhost_free(H);
    H = NULL;
}

static struct qscheme_config *cfg(const char *params)
{
    return su_config(H, "kmeans", params);
}

/* Quantizes x (rows x cols) with `params` into y; must succeed. */
static void quant(const char *params, const float *x, int64_t rows, int64_t cols, float *y)
{
    su_quant(H, "kmeans", params, x, rows, cols, y);
}

/* Quantizing must fail with a message containing `phrase`. */
static void quant_fails(const char *params, const float *x, int64_t rows, int64_t cols,
                        const char *phrase)
{
    su_quant_fails(H, "kmeans", params, x, rows, cols, phrase);
}

static uint64_t size_of(const char *params, int64_t rows, int64_t cols)
{
    return su_size_bits(H, "kmeans", params, rows, cols);
}

static void assert_floats(const float *got, const float *want, int64_t n, const char *what)
{
    su_assert_floats(got, want, n, what);
}

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

/* Number of distinct values in y[0..n-1]. */
static int count_distinct(const float *y, int64_t n)
{
    float seen[512];
    int d = 0;
    for (int64_t i = 0; i < n; i++) {
        int k = 0;
        while (k < d && seen[k] != y[i])
            k++;
        if (k == d) {
            if (d == 512)
                return d + 1;
            seen[d++] = y[i];
        }
    }
    return d;
}

/* ---- Core: exact tables --------------------------------------------------- */

START_TEST(test_exactly_k_values_come_back)
{
    /* 2^bits distinct values, each in many copies with uneven counts, all
     * representable in fp16: the table is those values and nothing moves. */
    enum { R = 8, C = 64, N = R * C };
    static float x[N], y[N];
    for (int bits = 2; bits <= 8; bits++) {
        int k = 1 << bits;
        uint64_t s = (uint64_t)bits;
        for (int i = 0; i < N; i++) {
            int j = i < k ? i : (int)(rng_next(&s) % (uint64_t)k); /* every value at least once */
            x[i] = (float)(j - k / 2) * 0.25f;
        }
        char params[64];
        snprintf(params, sizeof params, "bits=%d", bits);
        quant(params, x, R, C, y);
        assert_floats(y, x, N, params);
    }
    /* With an fp32 table, values fp16 cannot hold come back exactly too. */
    for (int i = 0; i < N; i++)
        x[i] = 0.1f * (float)(i % 16) + 1e-3f;
    quant("bits=4,lut=fp32", x, R, C, y);
    assert_floats(y, x, N, "fp32 table");
    /* ... and an fp16 table rounds them to fp16 (0.1f -> 0.0999755859). */
    float one = 0.1f, out;
    quant("bits=4", &one, 1, 1, &out);
    ck_assert_float_eq(out, 0.0999755859375f);
}
END_TEST

START_TEST(test_fewer_values_than_entries)
{
    /* 3 distinct values, 16 entries: exact. A constant: exact (in fp16). */
    float x[60], y[60];
    for (int i = 0; i < 60; i++)
        x[i] = i % 3 == 0 ? -1.5f : i % 3 == 1 ? 0.25f : 7.0f;
    quant("bits=4", x, 6, 10, y);
    assert_floats(y, x, 60, "3 values");
    quant("bits=8,group_rows=1", x, 6, 10, y);
    assert_floats(y, x, 60, "3 values, a table per row");
    for (int i = 0; i < 60; i++)
        x[i] = 0.75f;
    quant("bits=2", x, 6, 10, y);
    assert_floats(y, x, 60, "constant");
    /* A constant fp16 cannot hold: its fp16 rounding (fp32: itself). */
    for (int i = 0; i < 60; i++)
        x[i] = 0.7f;
    quant("bits=4", x, 6, 10, y);
    for (int i = 0; i < 60; i++)
        ck_assert_float_eq(y[i], 0.7001953125f);
    quant("bits=4,lut=fp32", x, 6, 10, y);
    assert_floats(y, x, 60, "constant fp32");
}
END_TEST

/* ---- Core: k-means itself ---------------------------------------------------- */

START_TEST(test_known_centroids)
{
    /* Four clusters far apart: {0, 1, 5} mean 2, {100, 101} mean 100.5,
     * {200, 204} mean 202, {300} alone. k-means++ seeds one centroid in each
     * (the far clusters carry ~10^4 times the sampling weight), and one Lloyd
     * step lands on the means. */
    const float x[8] = {0, 1, 5, 100, 101, 200, 204, 300};
    const float want[8] = {2, 2, 2, 100.5f, 100.5f, 202, 202, 300};
    float y[8];
    for (int seed = 0; seed < 20; seed++) {
        char params[64];
        snprintf(params, sizeof params, "bits=2,seed=%d", seed);
        quant(params, x, 2, 4, y);
        assert_floats(y, want, 8, params);
    }
}
END_TEST

START_TEST(test_lloyd_moves_to_the_optimum)
{
    /* 1-D data in two tight groups per side: 0 x 30 and 1 x 10 below,
     * 10 x 10 and 11 x 30 above, plus 100 x 5 and 200 x 5 (bits 2: 4 entries).
     * k-means++ seeds 100 and 200 (they carry nearly all the sampling
     * weight), so two centroids start somewhere in {0, 1, 10, 11}; even from
     * {0, 1} Lloyd moves on ({0} {1, 10, 11} -> 0 and 8.8, then {0, 1}
     * {10, 11}) and settles at the means 0.25 and 10.75. */
    float x[90], y[90];
    int n = 0;
    for (int i = 0; i < 30; i++)
        x[n++] = 0;
    for (int i = 0; i < 10; i++)
        x[n++] = 1;
    for (int i = 0; i < 10; i++)
        x[n++] = 10;
    for (int i = 0; i < 30; i++)
        x[n++] = 11;
    for (int i = 0; i < 5; i++)
        x[n++] = 100;
    for (int i = 0; i < 5; i++)
        x[n++] = 200;
    for (int seed = 0; seed < 10; seed++) {
        char params[64];
        snprintf(params, sizeof params, "bits=2,seed=%d", seed);
        quant(params, x, 9, 10, y);
        for (int i = 0; i < 90; i++) {
            float want = x[i] < 5 ? 0.25f : x[i] < 50 ? 10.75f : x[i];
            ck_assert_msg(y[i] == want, "%s: %g -> %g, want %g", params, x[i], y[i], want);
        }
    }
    /* max_iter=1 stops after one move; the result is still a valid table. */
    quant("bits=2,max_iter=1", x, 9, 10, y);
    ck_assert_int_le(count_distinct(y, 90), 4);
}
END_TEST

START_TEST(test_deterministic)
{
    enum { R = 32, C = 128, N = R * C };
    static float x[N], y1[N], y2[N];
    fill_normal(x, N, 17, 1.0f);
    quant("bits=3,seed=5", x, R, C, y1);
    quant("bits=3,seed=5", x, R, C, y2);
    ck_assert_int_eq(memcmp(y1, y2, sizeof y1), 0);
    ck_assert_int_le(count_distinct(y1, N), 8);
    quant("bits=3,seed=5,group_rows=8", x, R, C, y1);
    quant("bits=3,seed=5,group_rows=8", x, R, C, y2);
    ck_assert_int_eq(memcmp(y1, y2, sizeof y1), 0);
    /* Another seed may land elsewhere; it must still be a table of 8. */
    quant("bits=3,seed=6", x, R, C, y2);
    ck_assert_int_le(count_distinct(y2, N), 8);
}
END_TEST

START_TEST(test_group_rows)
{
    /* Rows 0-1 hold 16 values in [0, 1), rows 2-3 16 values in [100, 101):
     * a table per 2 rows keeps all 32 exactly; one table for all cannot. */
    float x[64], y[64];
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 16; j++)
            x[r * 16 + j] = (r < 2 ? 0.0f : 100.0f) + (float)j / 16;
    quant("bits=4,group_rows=2", x, 4, 16, y);
    assert_floats(y, x, 64, "group_rows=2");
    quant("bits=4", x, 4, 16, y);
    ck_assert_int_le(count_distinct(y, 64), 16);
    int moved = 0;
    for (int i = 0; i < 64; i++)
        moved += y[i] != x[i];
    ck_assert_int_gt(moved, 0);
    /* group_rows larger than the tensor: one table. */
    float y2[64];
    quant("bits=4,group_rows=100", x, 4, 16, y2);
    assert_floats(y2, y, 64, "group_rows=100 vs tensor");
    /* A last group shorter than the others (5 rows, 2 per group). */
    float x5[80], y5[80];
    for (int i = 0; i < 80; i++)
        x5[i] = (float)(i / 32) * 10 + (float)(i % 4); /* 4 values per pair of rows */
    quant("bits=2,group_rows=2", x5, 5, 16, y5);
    assert_floats(y5, x5, 64, "groups of two rows");
    assert_floats(y5 + 64, x5 + 64, 16, "last group");
}
END_TEST

/* ---- Core: edge cases ------------------------------------------------------- */

START_TEST(test_zeros_and_1x1)
{
    float zeros[24] = {0}, y[24];
    zeros[5] = -0.0f;
    memset(y, 0x7f, sizeof y);
    quant("bits=4", zeros, 4, 6, y);
    for (int i = 0; i < 24; i++)
        ck_assert_msg(y[i] == 0 && !signbit(y[i]), "zeros -> %g", y[i]);
    const float one[3] = {2.5f, -3.0f, 1e-3f};
    for (int k = 0; k < 3; k++) {
        float out;
        quant("bits=2,lut=fp32", &one[k], 1, 1, &out);
        ck_assert_float_eq(out, one[k]);
    }
}
END_TEST

START_TEST(test_bad_input)
{
    const float x[4] = {1, 2, NAN, 4};
    quant_fails("", x, 1, 4, "codebook/kmeans: tensor 'w': non-finite input value at index 2");
    const float xi[4] = {1, 2, 3, -INFINITY};
    quant_fails("group_rows=1", xi, 2, 2, "non-finite input value at index 3");
    /* fp16 tables stop at 65504 */
    const float big[4] = {1e5f, 1, 2, 3};
    quant_fails("bits=2", big, 1, 4, "beyond the fp16 range; use lut=fp32");
    float y[4];
    quant("bits=2,lut=fp32", big, 1, 4, y);
    assert_floats(y, big, 4, "fp32 table");
}
END_TEST

/* ---- Bounds -------------------------------------------------------------------- */

/* test-quantize-fns: x[i] = 0.1 + 2 cos(i + offset), 4096 values, error =
 * sqrt(sum of squared differences) / n, 0.002 for 4-bit formats. */
START_TEST(test_llama_synthetic)
{
    enum { N = 32 * 128 };
    static float x[N], y[N];
    for (size_t i = 0; i < N; i++)
        x[i] = 0.1 + 2 * cosf(i + 0.0f);
    static const char *const cases[] = {"bits=4", "bits=4,lut=fp32", "bits=5", "bits=8",
                                        "bits=4,seed=3"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        quant(cases[k], x, 1, N, y);
        double sum = 0;
        for (size_t i = 0; i < N; i++) {
            double diff = x[i] - y[i];
            sum += diff * diff;
        }
        float e = sqrtf(sum) / N;
        printf("codebook plugin: kmeans %s: llama synthetic error %.6f\n", cases[k], e);
        ck_assert_msg(e < 0.002f, "%s: error %g", cases[k], e);
    }
}
END_TEST

START_TEST(test_large_tensor_speed)
{
    /* 1024 x 4096 with one 16-entry table: sorting and 1-D Lloyd keep this
     * well under the timeout even under sanitizers. */
    enum { R = 1024, C = 4096 };
    float *x = malloc((size_t)R * C * sizeof *x), *y = malloc((size_t)R * C * sizeof *y);
    fill_normal(x, (int64_t)R * C, 23, 0.02f);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    quant("bits=4", x, R, C, y);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double e = 0;
    for (int64_t i = 0; i < (int64_t)R * C; i++)
        e += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    e = sqrt(e / ((double)R * C));
    printf("codebook plugin: kmeans bits=4 on 1024x4096: %.2f s, rmse/sigma %.5f\n", s, e / 0.02);
    /* Lloyd-Max 16 levels on a normal: rmse 0.0950 sigma (MSE 0.009497). */
    ck_assert_msg(e / 0.02 < 0.098, "rmse/sigma %g", e / 0.02);
    ck_assert_int_le(count_distinct(y, 100000), 16);
    free(x);
    free(y);
}
END_TEST

/* ---- Size: exact bits of storage ----------------------------------------- */

START_TEST(test_size_bits)
{
    /* bits per value + 2^bits fp16 entries per table */
    ck_assert_uint_eq(size_of("", 64, 64), 64 * 64 * 4 + 16 * 16);
    ck_assert_uint_eq(size_of("bits=2", 64, 64), 64 * 64 * 2 + 4 * 16);
    ck_assert_uint_eq(size_of("lut=fp32", 64, 64), 64 * 64 * 4 + 16 * 32);
    /* group_rows=16: 4 tables; 10 rows by 3: 4 tables (3, 3, 3, 1) */
    ck_assert_uint_eq(size_of("group_rows=16", 64, 64), 64 * 64 * 4 + 4 * 16 * 16);
    ck_assert_uint_eq(size_of("bits=8,group_rows=3", 10, 10), 100 * 8 + 4 * 256 * 16);
    ck_assert_uint_eq(size_of("bits=8,group_rows=3,lut=fp32", 10, 10), 100 * 8 + 4 * 256 * 32);
    ck_assert_uint_eq(size_of("group_rows=1000", 10, 10), 100 * 4 + 16 * 16);
    ck_assert_uint_eq(size_of("bits=3", 1, 1), 3 + 8 * 16);
    /* bits per weight of 4096 x 4096, one 4-bit table: 4 + 256 / 2^24 */
    ck_assert_double_eq_tol((double)size_of("", 4096, 4096) / (4096.0 * 4096),
                            4 + 256.0 / (4096.0 * 4096), 1e-12);
    ck_assert_uint_eq(size_of("", 0, 5), 0);
    struct qscheme_config *c = cfg("");
    uint64_t bits = 0;
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_size_bits(c, INT64_MAX, INT64_MAX, &bits, &err), 0);
    ck_assert_msg(strstr(err.msg, "codebook/kmeans: ") && strstr(err.msg, "too large"), "%s",
                  err.msg);
    qscheme_config_free(c);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *codebook_suite(void)
{
    Suite *s = suite_create("codebook");
    TCase *core = tcase_create("Core");
    tcase_add_checked_fixture(core, setup, teardown);
    tcase_add_test(core, test_exactly_k_values_come_back);
    tcase_add_test(core, test_fewer_values_than_entries);
    tcase_add_test(core, test_known_centroids);
    tcase_add_test(core, test_lloyd_moves_to_the_optimum);
    tcase_add_test(core, test_deterministic);
    tcase_add_test(core, test_group_rows);
    tcase_add_test(core, test_zeros_and_1x1);
    tcase_add_test(core, test_bad_input);
    suite_add_tcase(s, core);

    TCase *bounds = tcase_create("Bounds");
    tcase_add_checked_fixture(bounds, setup, teardown);
    tcase_add_test(bounds, test_llama_synthetic);
    tcase_add_test(bounds, test_large_tensor_speed);
    tcase_set_timeout(bounds, 120);
    suite_add_tcase(s, bounds);

    TCase *size = tcase_create("Size");
    tcase_add_checked_fixture(size, setup, teardown);
    tcase_add_test(size, test_size_bits);
    suite_add_tcase(s, size);
    return s;
}

int main(void)
{
    return tu_run(codebook_suite());
}
