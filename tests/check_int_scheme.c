/* check_int_scheme.c — the built-in "int" scheme through the host: hand-worked values, error bounds, exact sizes. */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../quant/plugin_host.h"
#include "test_util.h"

/* ---- fixture and helpers ------------------------------------------------ */

static struct qplugin_host *H;

static void setup(void)
{
    qerr err = {{0}};
    H = qhost_new();
    ck_assert_ptr_nonnull(H);
    ck_assert_msg(qhost_load(H, tu_plugin("int.so"), &err) == 0, "%s", err.msg);
}

static void teardown(void)
{
    qhost_free(H);
    H = NULL;
}

static struct qscheme_config *cfg(const char *params)
{
    struct qscheme_ref ref;
    struct qscheme_config *c = NULL;
    qerr err = {{0}};
    ck_assert_msg(qhost_find_scheme(H, "int", &ref, &err) == 0, "%s", err.msg);
    ck_assert_msg(qscheme_configure(&ref, params, &c, &err) == 0, "%s: %s", params, err.msg);
    return c;
}

/* Quantizes x (rows x cols) with `params` into y; must succeed. */
static void quant(const char *params, const float *x, int64_t rows, int64_t cols, float *y)
{
    struct qscheme_config *c = cfg(params);
    struct qlab_tensor_view v = {.data = x, .rows = rows, .cols = cols, .name = "w"};
    qerr err = {{0}};
    ck_assert_msg(qscheme_quantize(c, &v, y, NULL, &err) == 0, "%s: %s", params, err.msg);
    qscheme_config_free(c);
}

/* Quantizing must fail with a message containing `phrase`. */
static void quant_fails(const char *params, const float *x, int64_t rows, int64_t cols,
                        const char *phrase)
{
    struct qscheme_config *c = cfg(params);
    struct qlab_tensor_view v = {.data = x, .rows = rows, .cols = cols, .name = "w"};
    float *y = calloc((size_t)(rows * cols) + 1, sizeof *y);
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_quantize(c, &v, y, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, phrase), "got \"%s\", want \"%s\"", err.msg, phrase);
    free(y);
    qscheme_config_free(c);
}

static uint64_t size_of(const char *params, int64_t rows, int64_t cols)
{
    struct qscheme_config *c = cfg(params);
    uint64_t bits = 0;
    qerr err = {{0}};
    ck_assert_msg(qscheme_size_bits(c, rows, cols, &bits, &err) == 0, "%s", err.msg);
    qscheme_config_free(c);
    return bits;
}

static void assert_floats(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s: [%d] = %.9g, want %.9g", what, i, got[i], want[i]);
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
    struct qscheme_config *c = cfg("bits=5,symmetric=false,granularity=group,group=48");
    quant("bits=5,symmetric=false,granularity=group,group=48", x, 64, 200, ref);
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

    TCase *size = tcase_create("Size");
    tcase_add_checked_fixture(size, setup, teardown);
    tcase_add_test(size, test_size_bits);
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
