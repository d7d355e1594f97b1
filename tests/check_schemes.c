/* check_schemes.c — one table-driven walk over every scheme of every built plugin. */
#include <check.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/plugin_check.h"
#include "quant/pipeline.h"
#include "quant/plugin_host.h"
#include "test_util.h"

/* ---- round-trip bounds ----------------------------------------------------------
 * llama.cpp's test-quantize-fns: x[i] = 0.1 + 2 cos(i + offset), 4096 values,
 * error = sqrt(sum of squared differences) / n, below 0.002 for most types,
 * 0.0075 for 2-bit, 0.004 for 3-bit and 0.01 for ternary ones. Schemes not
 * listed get 0.002. */
struct bound {
    const char *scheme;
    double max_error;
};

static const struct bound bounds[] = {
    {"q2_K", 0.0075},    {"q3_K", 0.0040},   {"tq1_0", 0.01},
    {"tq2_0", 0.01},     {"ternary", 0.01},  {"binary", 0.01},
    /* 4-bit floats keep 3 magnitudes per octave at the top of their range */
    {"fp4_e2m1", 0.004}, {"mxfp4", 0.004},   {"fp4", 0.004},
    /* NF4's levels are spaced for normal data; this data bunches at +-max */
    {"nf4", 0.0025},
    /* powers of two: neighbours are a factor 2 apart (the SDK example) */
    {"log2", 0.01},
    /* pruning alone removes half of the values: it is no quantizer */
    {"prune", -1},
};

static double bound_for(const char *scheme)
{
    for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++)
        if (strcasecmp(bounds[i].scheme, scheme) == 0)
            return bounds[i].max_error;
    return 0.002;
}

/* ---- the plugins --------------------------------------------------------------- */

static struct qplugin_host *host;

static void load_all(void)
{
    host = qhost_new();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_plugin(""));
    qhost_discover(host, dir);
    ck_assert_msg(host->n_plugins >= 1, "no plugins in %s", dir);
    for (int i = 0; i < host->n_refused; i++)
        ck_abort_msg("a built-in plugin was refused: %s", host->refused[i]);
}

static void unload_all(void)
{
    qhost_free(host);
    host = NULL;
}

static int n_schemes(void)
{
    int n = 0;
    for (int p = 0; p < host->n_plugins; p++)
        n += (int)host->plugins[p]->desc->n_schemes;
    return n;
}

static void nth_scheme(int k, const struct qplugin **pl, const struct qlab_scheme **s)
{
    for (int p = 0; p < host->n_plugins; p++)
        for (uint32_t i = 0; i < host->plugins[p]->desc->n_schemes; i++)
            if (k-- == 0) {
                *pl = host->plugins[p];
                *s = host->plugins[p]->desc->schemes[i];
                return;
            }
    ck_abort_msg("no scheme %d", k);
}

static struct qpipeline *configure_default(const struct qplugin *pl, const struct qlab_scheme *s)
{
    char name[256];
    snprintf(name, sizeof name, "%s/%s", pl->desc->name, s->name);
    struct qrule rule = {.glob = "*", .n_stages = 1, .stages = {{.scheme = name, .params = ""}}};
    struct qpipeline *p;
    qerr err;
    ck_assert_msg(qpipeline_configure(host, &rule, &p, &err) == 0, "%s: %s", name, err.msg);
    return p;
}

/* ---- per scheme ------------------------------------------------------------------ */

#define N 4096

START_TEST(round_trip_within_bound)
{
    load_all();
    int total = n_schemes();
    for (int k = 0; k < total; k++) {
        const struct qplugin *pl;
        const struct qlab_scheme *s;
        nth_scheme(k, &pl, &s);
        struct qpipeline *p = configure_default(pl, s);
        static float x[N], y[N], y2[N + QSCHEME_OUT_GUARD];
        for (int i = 0; i < N; i++)
            x[i] = 0.1f + 2 * cosf((float)i);
        struct qtensor t = {.name = "test-quantize-fns", .dtype = QDT_F32, .ndim = 2,
                            .shape = {1, N}, .numel = N, .data = x, .nbytes = sizeof x, .f32 = x};
        uint64_t bits = 0, bits2 = 0;
        qerr err;
        ck_assert_msg(qpipeline_run(p, &t, y, N, &bits, NULL, &err) == 0, "%s/%s: %s",
                      pl->desc->name, s->name, err.msg);
        double sum = 0;
        for (int i = 0; i < N; i++)
            sum += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
        double error = sqrt(sum) / N, bound = bound_for(s->name);
        printf("  %-10s %-12s %8.4f bits/weight  error %.6f  (bound %g)\n", pl->desc->name,
               s->name, (double)bits / N, error, bound);
        if (bound > 0)
            ck_assert_msg(error < bound, "%s/%s: error %.6f, bound %g", pl->desc->name, s->name,
                          error, bound);
        /* size: positive, and two rows take between one and two rows' bits */
        ck_assert_msg(bits > 0, "%s/%s: 0 bits", pl->desc->name, s->name);
        static float x2[2 * N], z2[2 * N];
        memcpy(x2, x, sizeof x);
        memcpy(x2 + N, x, sizeof x);
        struct qtensor t2 = t;
        t2.shape[0] = 2;
        t2.numel = 2 * N;
        t2.data = t2.f32 = x2;
        t2.nbytes = sizeof x2;
        ck_assert_int_eq(qpipeline_run(p, &t2, z2, 2 * N, &bits2, NULL, &err), 0);
        ck_assert_msg(bits2 >= bits && bits2 <= 2 * bits, "%s/%s: 1 row %llu bits, 2 rows %llu",
                      pl->desc->name, s->name, (unsigned long long)bits,
                      (unsigned long long)bits2);
        /* determinism, bit for bit */
        ck_assert_int_eq(qpipeline_run(p, &t, y2, N + QSCHEME_OUT_GUARD, &bits2, NULL, &err), 0);
        ck_assert_msg(memcmp(y, y2, sizeof y) == 0, "%s/%s: two runs differ", pl->desc->name,
                      s->name);
        qpipeline_free(p);
    }
    unload_all();
}
END_TEST

/* Every built plugin passes `qlab plugins check` (zeros, constants, huge
 * and tiny values, odd shapes, pack/unpack, determinism, crashes). */
START_TEST(every_built_plugin_passes_the_checker)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_plugin(""));
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int checked = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        cJSON *r = plugin_check_file(path);
        int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
        if (!ok) { /* the whole report, for the log; Check's message is short */
            char *text = cJSON_Print(r);
            fprintf(stderr, "%s\n", text);
            free(text);
        }
        ck_assert_msg(ok, "%s failed the plugin check (report above)", path);
        cJSON_Delete(r);
        checked++;
    }
    closedir(d);
    ck_assert_int_ge(checked, 1);
}
END_TEST

START_TEST(the_checker_fails_broken_plugins)
{
    const char *broken[] = {"broken_nan.so", "broken_size.so", "broken_overflow.so",
                            "broken_abi.so", "broken_nosymbol.so"};
    for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
        cJSON *r = plugin_check_file(tu_test_plugin(broken[i]));
        ck_assert_msg(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r, "ok")), "%s passed",
                      broken[i]);
        cJSON_Delete(r);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("schemes");
    TCase *tc = tcase_create("EveryScheme");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, round_trip_within_bound);
    tcase_add_test(tc, every_built_plugin_passes_the_checker);
    tcase_add_test(tc, the_checker_fails_broken_plugins);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
