/* check_cli.c — the qlab command line end to end: real binary, real sample models, real database. */
#include <check.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "quant/safetensors.h"
#include "test_util.h"

#define CNN "sample-models/digits-cnn"
#define MLP "sample-models/digits-mlp"

/* ---- helpers ------------------------------------------------------------------ */

/* Runs `qlab ARGS --db DB`; returns the exit status, output in *out and *err. */
static int qlab(const char *db, const char *args, char **out, char **err)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s %s --db '%s'", tu_qlab_bin(), args, db);
    return tu_run_cmd(cmd, out, err);
}

static cJSON *qlab_json(const char *db, const char *args)
{
    char *out, *err;
    int rc = qlab(db, args, &out, &err);
    ck_assert_msg(rc == 0, "qlab %s: exit %d: %s", args, rc, err);
    cJSON *j = cJSON_Parse(out);
    ck_assert_msg(j != NULL, "qlab %s: not JSON: %.300s", args, out);
    free(out);
    free(err);
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsNumber(v), "no number '%s'", key);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsString(v), "no string '%s'", key);
    return v->valuestring;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- usage ---------------------------------------------------------------------- */

START_TEST(version_help_and_usage_errors)
{
    const char *db = tu_path("usage.db");
    char *out, *err;
    ck_assert_int_eq(qlab(db, "--version", &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "qlab "));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "--help", &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "runs show ID"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "eval --help", &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "--quant RECIPE"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "frobnicate", &out, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown command 'frobnicate'"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "eval", &out, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "which model?"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "eval " CNN " --limit zero", &out, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "--limit takes a positive whole number"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "eval " CNN " --frob", &out, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "unknown option --frob"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "runs show abc", &out, &err), 2);
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "runs show 999", &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "no run 999"));
    free(out), free(err);
}
END_TEST

/* ---- info and plugins ------------------------------------------------------------ */

START_TEST(info_lists_tensors_and_sizes)
{
    const char *db = tu_path("info.db");
    cJSON *m = qlab_json(db, "info " CNN " --json");
    ck_assert_str_eq(str(m, "name"), "digits-cnn");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(m, "tensors");
    ck_assert(cJSON_GetArraySize(ts) >= 8);
    const cJSON *t0 = cJSON_GetArrayItem(ts, 0);
    ck_assert_str_eq(str(t0, "name"), "conv1.weight");
    ck_assert_str_eq(str(t0, "scheme"), "float");
    ck_assert_double_eq(num(m, "bits_per_weight"), 32.0);
    double float_bytes = num(m, "float_bytes");
    cJSON_Delete(m);

    /* under a recipe: weights at 4 bits, biases float, sizes add up */
    m = qlab_json(db, "info " CNN " --quant '*=int:bits=4,granularity=group,group=16' --json");
    ts = cJSON_GetObjectItemCaseSensitive(m, "tensors");
    double sum = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, ts)
    {
        sum += num(t, "bytes");
        if (strcmp(str(t, "role"), "weight") == 0) {
            ck_assert_str_eq(str(t, "scheme"), "int");
            ck_assert(num(t, "sqnr_db") > 10);
            /* 4 bits plus a 32-bit scale per group of at most 16 */
            ck_assert(num(t, "bits_per_weight") >= 4 + 32.0 / 16);
            ck_assert(num(t, "bits_per_weight") <= 4 + 32.0 / 9);
        } else {
            ck_assert_str_eq(str(t, "scheme"), "float");
            ck_assert_double_eq(num(t, "bits_per_weight"), 32);
        }
    }
    ck_assert_double_eq(sum, num(m, "size_bytes"));
    ck_assert(num(m, "size_bytes") < float_bytes / 4);
    cJSON_Delete(m);
}
END_TEST

START_TEST(plugins_lists_int)
{
    const char *db = tu_path("plugins.db");
    cJSON *j = qlab_json(db, "plugins --json");
    const cJSON *ps = cJSON_GetObjectItemCaseSensitive(j, "plugins"), *p, *found = NULL;
    cJSON_ArrayForEach(p, ps) if (strcmp(str(p, "name"), "int") == 0) found = p;
    ck_assert_ptr_nonnull(found);
    const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(found, "schemes"), 0);
    ck_assert_str_eq(str(s, "name"), "int");
    const cJSON *bits = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(s, "params"), 0);
    ck_assert_str_eq(str(bits, "name"), "bits");
    ck_assert_double_eq(num(bits, "min"), 2);
    ck_assert_double_eq(num(bits, "max"), 8);
    cJSON_Delete(j);
    char *out, *err;
    ck_assert_int_eq(qlab(db, "plugins", &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "granularity"));
    free(out), free(err);
}
END_TEST

/* ---- evaluation and history ------------------------------------------------------- */

static cJSON *eval_json(const char *db, const char *model, const char *recipe)
{
    char args[1024];
    snprintf(args, sizeof args, "eval %s --quant '%s' --json", model, recipe);
    cJSON *r = qlab_json(db, args);
    ck_assert_str_eq(str(r, "status"), "done");
    return r;
}

START_TEST(eval_int8_close_int2_lower_and_listed)
{
    const char *db = tu_path("eval.db");
    const char *models[] = {CNN, MLP};
    for (int k = 0; k < 2; k++) {
        cJSON *r8 = eval_json(db, models[k], "*=int:bits=8,granularity=channel");
        cJSON *r2 = eval_json(db, models[k], "*=int:bits=2,granularity=tensor");
        const cJSON *m8 = cJSON_GetObjectItemCaseSensitive(r8, "metrics");
        const cJSON *m2 = cJSON_GetObjectItemCaseSensitive(r2, "metrics");
        double f = num(cJSON_GetObjectItemCaseSensitive(m8, "float"), "top1");
        ck_assert_msg(f > 90, "%s float top-1 %.2f", models[k], f);
        ck_assert_msg(fabs(num(m8, "top1") - f) <= 0.5, "%s int8 %.2f vs float %.2f", models[k],
                      num(m8, "top1"), f);
        ck_assert_msg(num(m2, "top1") < f - 5, "%s int2 %.2f vs float %.2f", models[k],
                      num(m2, "top1"), f);
        ck_assert(num(m8, "kld_mean") < num(m2, "kld_mean"));
        ck_assert(num(m8, "top1_agreement") > num(m2, "top1_agreement"));
        ck_assert(num(r8, "bits_per_weight") > num(r2, "bits_per_weight"));
        ck_assert(num(r8, "size_bytes") < num(r8, "float_bytes"));
        /* every tensor is in the run, weights quantized, the rest float */
        const cJSON *t;
        int weights = 0;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(r8, "tensors"))
        {
            if (strcmp(str(t, "role"), "weight") != 0)
                continue;
            weights++;
            ck_assert_str_eq(str(t, "scheme"), "int");
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(t, "params");
            ck_assert_double_eq(num(params, "bits"), 8);
            ck_assert(num(t, "sqnr_db") > 30);
        }
        ck_assert(weights >= 3);
        ck_assert_str_eq(str(r8, "recipe"), "*=int:bits=8,granularity=channel");
        cJSON_Delete(r8);
        cJSON_Delete(r2);
    }
    /* history: all four runs, newest first, with size and metrics */
    cJSON *list = qlab_json(db, "runs list --json");
    ck_assert_int_eq(cJSON_GetArraySize(list), 4);
    int64_t prev = INT64_MAX;
    const cJSON *r;
    cJSON_ArrayForEach(r, list)
    {
        ck_assert(num(r, "id") < prev);
        prev = (int64_t)num(r, "id");
        ck_assert_str_eq(str(r, "status"), "done");
        ck_assert(num(r, "size_bytes") > 0);
        ck_assert(num(cJSON_GetObjectItemCaseSensitive(r, "metrics"), "top1") > 0);
    }
    cJSON_Delete(list);
    list = qlab_json(db, "runs list --model " CNN " --json");
    ck_assert_int_eq(cJSON_GetArraySize(list), 2);
    cJSON_Delete(list);
    char *out, *err;
    ck_assert_int_eq(qlab(db, "runs list", &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "granularity=tensor"));
    ck_assert_int_eq(count_lines(out), 5);
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "runs show 1", &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "conv1.weight"));
    free(out), free(err);
}
END_TEST

START_TEST(float_reference_is_computed_once)
{
    const char *db = tu_path("ref.db");
    cJSON *a = eval_json(db, CNN, "*=int:bits=6");
    cJSON *b = eval_json(db, CNN, "");
    /* the all-float run is the reference: agreement 100 %, KL 0 */
    const cJSON *mb = cJSON_GetObjectItemCaseSensitive(b, "metrics");
    ck_assert_double_eq(num(mb, "top1_agreement"), 100);
    ck_assert_double_eq(num(mb, "kld_mean"), 0);
    ck_assert_double_eq(num(b, "bits_per_weight"), 32);
    ck_assert_double_eq(num(cJSON_GetObjectItemCaseSensitive(
                                cJSON_GetObjectItemCaseSensitive(a, "metrics"), "float"), "top1"),
                        num(mb, "top1"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    sqlite3 *h;
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st;
    ck_assert_int_eq(sqlite3_prepare_v2(h, "SELECT count(*) FROM reference_outputs", -1, &st, 0),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    sqlite3_close(h);
}
END_TEST

START_TEST(recipe_errors_are_usage_errors)
{
    const char *db = tu_path("recipe.db");
    struct {
        const char *recipe, *phrase;
    } cases[] = {
        {"conv*", "rule 1 'conv*': expected GLOB=SCHEME"},
        {"*=nosuch", "unknown scheme 'nosuch'"},
        {"*=int:bits=9", "bits=9 is out of range 2..8"},
        {"*=int:granularity=row", "granularity=row is not one of"},
        {"*=int:bitz=4", "unknown parameter 'bitz'"},
        {"*=int;lstm.*=int", "rule 2 'lstm.*=int': selects no tensor"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char args[512], *out, *err;
        snprintf(args, sizeof args, "eval " CNN " --quant '%s'", cases[i].recipe);
        ck_assert_int_eq(qlab(db, args, &out, &err), 2);
        ck_assert_msg(strstr(err, cases[i].phrase) != NULL, "'%s': %s", cases[i].recipe, err);
        ck_assert_int_eq(count_lines(err), 1);
        free(out), free(err);
    }
    /* nothing was recorded for rejected recipes */
    cJSON *list = qlab_json(db, "runs list --json");
    ck_assert_int_eq(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
}
END_TEST

/* ---- bad files ------------------------------------------------------------------------ */

/* A copy of the digits-cnn folder in the temp dir, returned as a path. */
static const char *copy_cnn(const char *name)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_path(name));
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -R " CNN " '%s' && cp -R sample-models/digits '%s/../'",
             dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    return dir;
}

static void expect_one_line_error(const char *db, const char *args, const char *phrase)
{
    char *out, *err;
    ck_assert_int_eq(qlab(db, args, &out, &err), 1);
    ck_assert_msg(strstr(err, phrase) != NULL, "%s: %s", args, err);
    ck_assert_msg(count_lines(err) == 1, "%s: not one line: %s", args, err);
    ck_assert_ptr_null(strstr(err, "AddressSanitizer"));
    free(out), free(err);
}

START_TEST(bad_model_files_exit_1_with_one_line)
{
    const char *db = tu_path("bad.db");
    char args[2048], path[1200];
    const char *dir = copy_cnn("cut");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    size_t len;
    char *data = tu_read_file(path, &len);
    tu_write_file(path, data, len / 2);
    snprintf(args, sizeof args, "eval '%s'", dir);
    expect_one_line_error(db, args, "model.safetensors");
    /* a corrupted header: the length field says more than the file holds */
    data[3] = 0x7f;
    tu_write_file(path, data, len);
    expect_one_line_error(db, args, "model.safetensors");
    free(data);

    dir = copy_cnn("badjson");
    snprintf(path, sizeof path, "%s/model.json", dir);
    data = tu_read_file(path, &len);
    tu_write_file(path, data, len / 3);
    snprintf(args, sizeof args, "info '%s'", dir);
    expect_one_line_error(db, args, "model.json");
    free(data);
    expect_one_line_error(db, "info /nonexistent/model", "/nonexistent/model");

    /* data that does not fit the model */
    snprintf(args, sizeof args, "eval " CNN " --data '%s/model.json'", dir);
    expect_one_line_error(db, args, "model.json");
}
END_TEST

START_TEST(plugin_errors_are_clear)
{
    const char *db = tu_path("plug.db");
    char args[2048];
    const char *fake = tu_path("fake.so");
    tu_write_file(fake, "not an ELF", 10);
    snprintf(args, sizeof args, "plugins --plugin '%s'", fake);
    expect_one_line_error(db, args, "fake.so");
    /* a plugin whose output has NaN: the run fails cleanly and is recorded */
    snprintf(args, sizeof args, "eval " CNN " --plugin '%s' --quant '*=broken_nan/nan'",
             tu_test_plugin("broken_nan.so"));
    char *out, *err;
    int rc = qlab(db, args, &out, &err);
    ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
    ck_assert_msg(strstr(err, "NaN") != NULL, "%s", err);
    free(out), free(err);
    cJSON *list = qlab_json(db, "runs list --json");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(list, 0), "status"), "failed");
    cJSON_Delete(list);
}
END_TEST

/* ---- plugins check and quant -------------------------------------------------------- */

START_TEST(plugins_check_passes_good_and_fails_broken)
{
    const char *db = tu_path("check.db");
    char args[2048], *out, *err;
    snprintf(args, sizeof args, "plugins check '%s' --json", tu_plugin("int.so"));
    cJSON *r = qlab_json(db, args);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")));
    const cJSON *s0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "schemes"), 0);
    ck_assert_int_ge(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s0, "cases")), 6);
    cJSON_Delete(r);
    snprintf(args, sizeof args, "plugins check '%s'", tu_test_plugin("broken_nan.so"));
    ck_assert_int_eq(qlab(db, args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(out, "FAIL"));
    ck_assert_ptr_nonnull(strstr(out, "produced NaN"));
    free(out), free(err);
    snprintf(args, sizeof args, "plugins check '%s'", tu_test_plugin("broken_abi.so"));
    ck_assert_int_eq(qlab(db, args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(out, "ABI 99"));
    free(out), free(err);
}
END_TEST

START_TEST(quant_writes_deq_and_packed_bytes)
{
    const char *db = tu_path("quant.db");
    char out_path[1024], args[2048];
    snprintf(out_path, sizeof out_path, "%s", tu_path("conv3.q4_0.safetensors"));
    snprintf(args, sizeof args,
             "quant " CNN "/model.safetensors --tensor conv3.weight --scheme q4_0 -o '%s' --json",
             out_path);
    cJSON *r = qlab_json(db, args);
    ck_assert_double_eq(num(r, "bits_per_weight"), 4.5);
    ck_assert_double_eq(num(r, "gguf_type"), 2);
    cJSON_Delete(r);
    struct st_file *f;
    qerr e;
    ck_assert_msg(st_open(out_path, &f, &e) == 0, "%s", e.msg);
    const struct qtensor *deq = st_find(f, "conv3.weight.deq"), *q = st_find(f, "conv3.weight.q");
    ck_assert_ptr_nonnull(deq);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(deq->ndim, 4);
    ck_assert_int_eq(deq->numel, 32 * 32 * 9);
    /* 288 values per row: 9 blocks of 18 bytes */
    ck_assert_int_eq(q->dtype, QDT_U8);
    ck_assert_int_eq(q->shape[0], 32);
    ck_assert_int_eq(q->shape[1], 9 * 18);
    ck_assert_str_eq(st_meta_get(f, "scheme"), "q4_0");
    st_close(f);
    /* a pipeline writes the dequantized values only */
    snprintf(args, sizeof args,
             "quant " CNN "/model.safetensors --tensor conv3.weight --scheme "
             "'prune:pattern=2:4+int:bits=4' -o '%s' --json",
             out_path);
    r = qlab_json(db, args);
    ck_assert_double_eq(num(r, "packed_bytes"), 0);
    /* 2:4: half the values at 4 bits, a 32-bit scale per row, 1 bit of index per value */
    ck_assert_double_eq_tol(num(r, "bits_per_weight"), 0.5 * 4 + 32.0 / 288 + 1, 1e-9);
    cJSON_Delete(r);
    /* a block format refuses rows it cannot hold, saying so */
    char *out, *err;
    snprintf(args, sizeof args,
             "quant " CNN "/model.safetensors --tensor conv3.weight --scheme q4_K -o '%s'",
             out_path);
    ck_assert_int_eq(qlab(db, args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "256"));
    ck_assert_int_eq(count_lines(err), 1);
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "quant " CNN "/model.safetensors --tensor nope --scheme int -o x",
                          &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "no tensor named 'nope'"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "quant " CNN "/model.safetensors --scheme int", &out, &err), 2);
    free(out), free(err);
}
END_TEST

START_TEST(eval_with_pruning_and_other_plugins)
{
    const char *db = tu_path("pipe.db");
    /* conv1's rows hold 9 values, which 2:4 cannot split: a later rule keeps it dense */
    cJSON *r = eval_json(db, CNN, "*=prune:pattern=2:4+int:bits=8;conv1.weight=int:bits=8");
    const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "tensors"), 2);
    ck_assert_str_eq(str(t, "name"), "conv2.weight");
    ck_assert_str_eq(str(t, "scheme"), "prune+int");
    ck_assert_str_eq(str(t, "plugin"), "prune+int");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(t, "params");
    ck_assert_str_eq(str(cJSON_GetObjectItemCaseSensitive(params, "prune"), "pattern"), "2:4");
    ck_assert_double_eq(num(cJSON_GetObjectItemCaseSensitive(params, "int"), "bits"), 8);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "plugins")), 2);
    cJSON_Delete(r);
    char *out, *err;
    ck_assert_int_eq(qlab(db, "eval " CNN " --quant '*=int+prune'", &out, &err), 2);
    ck_assert_ptr_nonnull(strstr(err, "does not prune"));
    free(out), free(err);
}
END_TEST

/* ---- language models ----------------------------------------------------------------- */

START_TEST(lm_eval_reports_perplexity_and_divergence)
{
    const char *db = tu_path("lm.db");
    char model[1024], data[1024], args[4096];
    snprintf(model, sizeof model, "%s", tu_shared("stories260k/stories260K.bin"));
    snprintf(data, sizeof data, "%s", tu_shared("tinystories/eval-32k.txt"));
    /* the float model alone: llama-perplexity's number */
    snprintf(args, sizeof args, "eval '%s' --data '%s' --ctx 128 --json", model, data);
    cJSON *f = qlab_json(db, args);
    const cJSON *fm = cJSON_GetObjectItemCaseSensitive(f, "metrics");
    ck_assert_str_eq(str(f, "kind"), "lm");
    ck_assert_double_eq_tol(num(fm, "ppl"), 3.761508, 5e-5);
    ck_assert_double_eq(num(fm, "n_tokens_scored"), 7686);
    ck_assert_double_eq(num(fm, "n_chunks"), 122);
    ck_assert_double_eq(num(fm, "kld_mean"), 0);
    cJSON_Delete(f);
    /* 8-bit per channel diverges less than 4-bit groups of 32 */
    double kld[2], same[2];
    const char *recipes[] = {"*=int:bits=4,granularity=group,group=32",
                             "*=int:bits=8,granularity=channel"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "eval '%s' --data '%s' --ctx 128 --quant '%s' --json", model,
                 data, recipes[i]);
        cJSON *r = qlab_json(db, args);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "metrics");
        ck_assert_str_eq(str(r, "status"), "done");
        ck_assert(num(m, "ppl") > 3.7);
        ck_assert_double_eq_tol(num(cJSON_GetObjectItemCaseSensitive(m, "float"), "ppl"),
                                3.761508, 5e-5);
        kld[i] = num(m, "kld_mean");
        same[i] = num(m, "same_top_pct");
        ck_assert(num(m, "kld_p99") >= num(m, "kld_median"));
        ck_assert(num(m, "kld_max") >= num(m, "kld_p99"));
        ck_assert(num(m, "ln_ppl_ratio") > -0.05);
        cJSON_Delete(r);
    }
    ck_assert_msg(kld[1] < kld[0], "8-bit KLD %g, 4-bit %g", kld[1], kld[0]);
    ck_assert(kld[1] > 0);
    ck_assert(same[1] > same[0]);
    /* the human form prints the same numbers */
    char *out, *err;
    snprintf(args, sizeof args, "runs show 3");
    ck_assert_int_eq(qlab(db, args, &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "PPL"));
    ck_assert_ptr_nonnull(strstr(out, "same top"));
    free(out), free(err);
    /* generation: the model's own greedy story */
    snprintf(args, sizeof args, "generate '%s' -n 20 --quant '*=int:bits=8' --json", model);
    cJSON *g = qlab_json(db, args);
    ck_assert_ptr_nonnull(strstr(str(g, "float"), "Once upon a time"));
    ck_assert(num(g, "same_prefix_tokens") >= 1);
    cJSON_Delete(g);
    /* token ids as data: raw little-endian int32 */
    int32_t ids[300];
    for (int i = 0; i < 300; i++)
        ids[i] = 3 + (i * 37) % 500;
    const char *idf = tu_path("ids.i32");
    tu_write_file(idf, ids, sizeof ids);
    snprintf(args, sizeof args, "eval '%s' --data '%s' --ctx 64 --json", model, idf);
    cJSON *t = qlab_json(db, args);
    ck_assert_double_eq(num(cJSON_GetObjectItemCaseSensitive(t, "metrics"), "n_chunks"), 4);
    cJSON_Delete(t);
    ids[123] = 512; /* outside the 512-token vocabulary */
    tu_write_file(idf, ids, sizeof ids);
    ck_assert_int_eq(qlab(db, args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "token id 512 at position 123"));
    free(out), free(err);
    /* a language model needs data */
    snprintf(args, sizeof args, "eval '%s'", model);
    ck_assert_int_eq(qlab(db, args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "give --data"));
    free(out), free(err);
}
END_TEST

/* ---- sweeps and searches ----------------------------------------------------------- */

/* The sweep table as "group|scheme|status|bits|change" lines, for comparing. */
static char *sweep_table(const char *db, int64_t id)
{
    char args[256];
    snprintf(args, sizeof args, "sweeps show %lld --json", (long long)id);
    cJSON *sw = qlab_json(db, args);
    size_t cap = 1 << 16, len = 0;
    char *t = malloc(cap);
    t[0] = 0;
    const cJSON *g, *p;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(sw, "groups"))
    {
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(g, "points"))
        {
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(p, "change");
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(p, "bits");
            len += (size_t)snprintf(t + len, cap - len, "%s|%s|%s|%.0f|%.17g\n", str(g, "name"),
                                    str(p, "scheme"), str(p, "status"),
                                    cJSON_IsNumber(b) ? b->valuedouble : -1,
                                    cJSON_IsNumber(ch) ? ch->valuedouble : -1);
        }
    }
    cJSON_Delete(sw);
    return t;
}

START_TEST(sweep_search_and_verify)
{
    const char *db = tu_path("sweep.db");
    cJSON *r = qlab_json(db, "sweep " CNN " --schemes 'int:bits=2;int:bits=4;int:bits=8' --json");
    ck_assert_str_eq(str(r, "status"), "done");
    ck_assert_double_eq(num(r, "points_done"), 12);
    int64_t id = (int64_t)num(r, "id");
    /* 8-bit hurts every layer less than 2-bit */
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(r, "groups"))
    {
        const cJSON *pts = cJSON_GetObjectItemCaseSensitive(g, "points");
        double c2 = num(cJSON_GetArrayItem(pts, 0), "change");
        double c8 = num(cJSON_GetArrayItem(pts, 2), "change");
        ck_assert_msg(c8 < c2, "%s: 8-bit %g, 2-bit %g", str(g, "name"), c8, c2);
    }
    cJSON_Delete(r);
    char args[512], *out, *err;
    snprintf(args, sizeof args, "sweeps show %lld --csv", (long long)id);
    ck_assert_int_eq(qlab(db, args, &out, &err), 0);
    ck_assert_int_eq(count_lines(out), 13);
    ck_assert_ptr_nonnull(strstr(out, "\"conv2.weight\",\"int:bits=4\",done,"));
    free(out), free(err);
    /* the search: exact optimum within 5 bits per weight, three points verified */
    snprintf(args, sizeof args, "search %lld --budget 5bpw --verify 3 --json", (long long)id);
    cJSON *se = qlab_json(db, args);
    const cJSON *front = cJSON_GetObjectItemCaseSensitive(se, "front");
    int n = cJSON_GetArraySize(front), verified = 0;
    ck_assert_int_ge(n, 3);
    double budget = num(se, "budget_bits"), prev_bits = -1, prev_change = 1e300;
    const cJSON *p;
    cJSON_ArrayForEach(p, front)
    {
        /* a Pareto front: more bits, less predicted change */
        ck_assert(num(p, "bits") > prev_bits);
        ck_assert(num(p, "predicted") < prev_change);
        prev_bits = num(p, "bits");
        prev_change = num(p, "predicted");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "optimum")))
            ck_assert(num(p, "bits") <= budget);
        if (cJSON_GetObjectItemCaseSensitive(p, "run_id"))
            verified++;
    }
    ck_assert_int_eq(verified, 3);
    int64_t search = (int64_t)num(se, "id");
    cJSON_Delete(se);
    /* the optimum's recipe is a recipe qlab eval takes */
    snprintf(args, sizeof args, "searches show %lld --recipe", (long long)search);
    ck_assert_int_eq(qlab(db, args, &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "conv1.weight=int"));
    out[strcspn(out, "\n")] = 0;
    char args2[2048], *o2, *e2;
    snprintf(args2, sizeof args2, "eval " CNN " --quant '%s'", out);
    ck_assert_int_eq(qlab(db, args2, &o2, &e2), 0);
    free(o2), free(e2);
    /* and as JSON: the same text, and one resolved rule per group it sets */
    snprintf(args2, sizeof args2, "searches show %lld --recipe --json", (long long)search);
    cJSON *rj = qlab_json(db, args2);
    ck_assert_str_eq(str(rj, "recipe"), out);
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(rj, "recipe_rules");
    ck_assert_int_ge(cJSON_GetArraySize(rules), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(rules, 0), "glob"), "conv1.weight");
    ck_assert(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rules, 0),
                                                              "params")));
    cJSON_Delete(rj);
    free(out), free(err);
    /* a budget below the smallest size says so */
    snprintf(args, sizeof args, "search %lld --budget 1bpw", (long long)id);
    ck_assert_int_eq(qlab(db, args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "below the smallest possible size"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "sweep " CNN " --schemes 'int:bits=9'", &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "bits=9 is out of range"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "sweeps list", &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(out, "digits-cnn"));
    free(out), free(err);
    /* proxies: SQNR in the metrics, more bits more SQNR; no --verify of them */
    r = qlab_json(db, "sweep " CNN " --schemes 'int:bits=2;int:bits=8' --metric output_sqnr --json");
    ck_assert_str_eq(str(r, "metric"), "output_sqnr");
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(r, "groups"))
    {
        const cJSON *pts = cJSON_GetObjectItemCaseSensitive(g, "points");
        const cJSON *m2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(pts, 0), "metrics");
        const cJSON *m8 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(pts, 1), "metrics");
        ck_assert_msg(num(m8, "sqnr_db") > num(m2, "sqnr_db") + 20, "%s", str(g, "name"));
    }
    id = (int64_t)num(r, "id");
    cJSON_Delete(r);
    snprintf(args, sizeof args, "search %lld --budget 6bpw --verify 1", (long long)id);
    ck_assert_int_eq(qlab(db, args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "a proxy no run reports"));
    free(out), free(err);
    ck_assert_int_eq(qlab(db, "sweep " CNN " --schemes 'int:bits=2' --metric weight_sqnr --mode loo",
                          &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "one group at a time"));
    free(out), free(err);
}
END_TEST

START_TEST(sweep_killed_resumes_to_the_same_table)
{
    /* the uninterrupted table */
    const char *db1 = tu_path("sweep-a.db");
    char schemes[] = "int:bits=3;slow_test/slow:ms=150;int:bits=6";
    char args[1024];
    snprintf(args, sizeof args, "sweep " CNN " --plugin '%s' --schemes '%s' --threads 1 --json",
             tu_test_plugin("slow_sleep.so"), schemes);
    cJSON *a = qlab_json(db1, args);
    int64_t ida = (int64_t)num(a, "id");
    cJSON_Delete(a);
    char *want = sweep_table(db1, ida);
    /* the same sweep, killed after its first points, then resumed */
    char db2[1024];
    snprintf(db2, sizeof db2, "%s", tu_path("sweep-b.db"));
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(tu_qlab_bin(), "qlab", "sweep", CNN, "--db", db2, "--plugin",
              tu_test_plugin("slow_sleep.so"), "--schemes", schemes, "--threads", "1",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { /* until some points are stored */
        sqlite3 *h;
        int got = 0;
        if (access(db2, F_OK) == 0 && sqlite3_open_v2(db2, &h, SQLITE_OPEN_READONLY, 0) == 0) {
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(h, "SELECT count(*) FROM sweep_points", -1, &st, 0) == 0 &&
                sqlite3_step(st) == SQLITE_ROW)
                got = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
            sqlite3_close(h);
        }
        if (got >= 3)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    cJSON *l = qlab_json(db2, "sweeps list --json");
    const cJSON *sw = cJSON_GetArrayItem(l, 0);
    ck_assert_str_eq(str(sw, "status"), "interrupted");
    int64_t idb = (int64_t)num(sw, "id");
    ck_assert(num(sw, "points_done") < 12);
    cJSON_Delete(l);
    snprintf(args, sizeof args, "sweep --resume %lld --plugin '%s' --json", (long long)idb,
             tu_test_plugin("slow_sleep.so"));
    cJSON *b = qlab_json(db2, args);
    ck_assert_str_eq(str(b, "status"), "done");
    cJSON_Delete(b);
    char *got = sweep_table(db2, idb);
    ck_assert_str_eq(got, want);
    free(got);
    free(want);
    char *out, *err;
    snprintf(args, sizeof args, "sweep --resume %lld", (long long)idb);
    ck_assert_int_eq(qlab(db2, args, &out, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "is done"));
    free(out), free(err);
}
END_TEST

/* ---- kill -9 and Ctrl-C -------------------------------------------------------------- */

/* Starts qlab eval with the slow plugin in the background; returns its pid. */
static pid_t start_slow_eval(const char *db)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execl(tu_qlab_bin(), "qlab", "eval", CNN, "--db", db, "--plugin",
              tu_test_plugin("slow_sleep.so"), "--quant", "*=slow_test/slow:ms=2000",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Polls the database until a run is `running` (deadline 20 s). */
static void wait_for_running(const char *db)
{
    for (int i = 0; i < 400; i++) {
        sqlite3 *h;
        int found = 0;
        if (access(db, F_OK) == 0 && sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, 0) == SQLITE_OK) {
            sqlite3_stmt *st;
            if (sqlite3_prepare_v2(h, "SELECT count(*) FROM runs WHERE status='running'", -1, &st,
                                   0) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                found = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
            sqlite3_close(h);
        }
        if (found)
            return;
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    }
    ck_abort_msg("no running run appeared in %s", db);
}

START_TEST(kill_9_leaves_a_consistent_store_and_an_interrupted_run)
{
    const char *db = tu_path("kill.db");
    pid_t pid = start_slow_eval(db);
    wait_for_running(db);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFSIGNALED(st));
    sqlite3 *h;
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *s;
    ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &s, 0), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    sqlite3_close(h);
    cJSON *list = qlab_json(db, "runs list --json");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(list, 0), "status"), "interrupted");
    cJSON_Delete(list);
    /* the store keeps working: a new run completes */
    cJSON *r = eval_json(db, CNN, "*=int:bits=8");
    cJSON_Delete(r);
}
END_TEST

START_TEST(sigint_cancels_and_records_cancelled)
{
    const char *db = tu_path("cancel.db");
    pid_t pid = start_slow_eval(db);
    wait_for_running(db);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 1);
    cJSON *list = qlab_json(db, "runs list --json");
    ck_assert_str_eq(str(cJSON_GetArrayItem(list, 0), "status"), "cancelled");
    cJSON_Delete(list);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *core = tcase_create("Core");
    tcase_set_timeout(core, 120);
    tcase_add_test(core, version_help_and_usage_errors);
    tcase_add_test(core, info_lists_tensors_and_sizes);
    tcase_add_test(core, plugins_lists_int);
    tcase_add_test(core, eval_int8_close_int2_lower_and_listed);
    tcase_add_test(core, float_reference_is_computed_once);
    tcase_add_test(core, plugins_check_passes_good_and_fails_broken);
    tcase_add_test(core, quant_writes_deq_and_packed_bytes);
    tcase_add_test(core, eval_with_pruning_and_other_plugins);
    tcase_add_test(core, sweep_search_and_verify);
    suite_add_tcase(s, core);
    TCase *errors = tcase_create("Errors");
    tcase_set_timeout(errors, 120);
    tcase_add_test(errors, recipe_errors_are_usage_errors);
    tcase_add_test(errors, bad_model_files_exit_1_with_one_line);
    tcase_add_test(errors, plugin_errors_are_clear);
    suite_add_tcase(s, errors);
    TCase *crash = tcase_create("Crash");
    tcase_set_timeout(crash, 120);
    tcase_add_test(crash, kill_9_leaves_a_consistent_store_and_an_interrupted_run);
    tcase_add_test(crash, sigint_cancels_and_records_cancelled);
    tcase_add_test(crash, sweep_killed_resumes_to_the_same_table);
    suite_add_tcase(s, crash);
    TCase *lm = tcase_create("LanguageModel");
    tcase_set_timeout(lm, 300);
    tcase_add_test(lm, lm_eval_reports_perplexity_and_divergence);
    const char *need[] = {"stories260k/stories260K.bin", "stories260k/tok512.bin",
                          "tinystories/eval-32k.txt"};
    tu_add_if_shared(s, lm, need, 3);
    return tu_run(s);
}
