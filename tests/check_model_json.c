/* check_model_json.c — the native model format: valid graphs load, every malformed one is refused clearly. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant/forward.h"
#include "quant/model_json.h"
#include "quant/safetensors.h"
#include "test_util.h"

/* ---- fixtures --------------------------------------------------------------- */

/* A tiny CNN's weights: conv 1->2 3x3, batchnorm(2), linear 8->3. */
static char weights_path[1024];

static void write_weights(void)
{
    static float cw[2 * 1 * 3 * 3], cb[2], g[2] = {1, 2}, b[2] = {0, 1}, mu[2] = {0, 0.5f},
                                              var[2] = {1, 4}, lw[3 * 8], lb[3] = {0.1f, 0, -0.1f};
    for (int i = 0; i < 18; i++)
        cw[i] = (float)(i % 5) * 0.25f - 0.5f;
    cb[0] = 0.5f;
    cb[1] = -0.25f;
    for (int i = 0; i < 24; i++)
        lw[i] = (float)((i * 7) % 11) / 10.0f - 0.5f;
    static const int64_t s_cw[] = {2, 1, 3, 3}, s2[] = {2}, s_lw[] = {3, 8}, s3[] = {3};
    struct st_write_tensor t[] = {
        {"conv.weight", QDT_F32, 4, s_cw, cw}, {"conv.bias", QDT_F32, 1, s2, cb},
        {"bn.weight", QDT_F32, 1, s2, g},      {"bn.bias", QDT_F32, 1, s2, b},
        {"bn.mean", QDT_F32, 1, s2, mu},       {"bn.var", QDT_F32, 1, s2, var},
        {"fc.weight", QDT_F32, 2, s_lw, lw},   {"fc.bias", QDT_F32, 1, s3, lb},
    };
    qerr err;
    snprintf(weights_path, sizeof weights_path, "%s", tu_path("w.safetensors"));
    ck_assert_msg(st_write(weights_path, t, 8, NULL, 0, &err) == 0, "%s", err.msg);
}

static const char good_graph[] =
    "\"graph\": ["
    "{\"op\":\"conv2d\",\"name\":\"conv\",\"weight\":\"conv.weight\",\"bias\":\"conv.bias\","
    "\"padding\":1},"
    "{\"op\":\"batchnorm\",\"name\":\"bn\",\"weight\":\"bn.weight\",\"bias\":\"bn.bias\","
    "\"mean\":\"bn.mean\",\"var\":\"bn.var\"},"
    "{\"op\":\"relu\"},"
    "{\"op\":\"maxpool2d\",\"kernel\":2},"
    "{\"op\":\"flatten\"},"
    "{\"op\":\"linear\",\"name\":\"fc\",\"weight\":\"fc.weight\",\"bias\":\"fc.bias\"}]";

/* Writes dir/model.json with the given body inside the top-level object. */
static const char *write_model(const char *name, const char *body)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s", tu_path(name));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    char file[1100];
    snprintf(file, sizeof file, "%s/model.json", dir);
    char *text = malloc(strlen(body) + 64);
    sprintf(text, "{%s}", body);
    tu_write_file(file, text, strlen(text));
    free(text);
    return dir;
}

static char *model_body(const char *extra_top, const char *graph)
{
    char *b = malloc(8192);
    snprintf(b, 8192,
             "\"qlab_model\": 1, \"weights\": \"%s\", \"input\": {\"shape\": [1, 4, 4], "
             "\"scale\": [0.5], \"offset\": [1]}, %s%s",
             weights_path, extra_top, graph);
    return b;
}

/* ---- valid models ------------------------------------------------------------- */

START_TEST(loads_a_small_cnn)
{
    write_weights();
    char *body = model_body("\"classes\": [\"a\", \"b\", \"c\"], ", good_graph);
    const char *dir = write_model("cnn", body);
    free(body);
    struct qmodel *m;
    qerr err;
    ck_assert_msg(qmodel_json_load(dir, &m, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(m->name, "cnn"); /* the folder's name by default */
    ck_assert_int_eq(m->n_nodes, 6);
    ck_assert_int_eq(m->n_tensors, 8);
    ck_assert_int_eq(m->n_classes, 3);
    ck_assert_str_eq(m->class_names[2], "c");
    ck_assert_str_eq(m->nodes[2].name, "relu2"); /* auto names: op + index */
    ck_assert_int_eq(m->nodes[3].stride[0], 2);   /* pool stride defaults to the kernel */
    ck_assert_int_eq(m->nodes[0].pad[0], 1);
    ck_assert_int_eq(m->nodes[0].pad[3], 1);
    ck_assert_int_eq(m->roles[qmodel_find_tensor(m, "conv.weight")], QROLE_WEIGHT);
    ck_assert_int_eq(m->roles[qmodel_find_tensor(m, "conv.bias")], QROLE_BIAS);
    ck_assert_int_eq(m->roles[qmodel_find_tensor(m, "bn.var")], QROLE_NORM);
    ck_assert_int_eq(m->roles[qmodel_find_tensor(m, "fc.weight")], QROLE_WEIGHT);
    ck_assert_int_eq(m->nodes[4].out_numel, 8);
    ck_assert_float_eq(m->pre_scale[0], 0.5f);
    ck_assert_float_eq(m->pre_offset[0], 1.0f);
    ck_assert_int_eq(qmodel_n_params(m), 18 + 2 + 8 + 24 + 3);
    ck_assert_int_eq(qmodel_float_bytes(m), 4 * (18 + 2 + 8 + 24 + 3));

    /* the forward pass of the loaded graph runs and is deterministic */
    struct qforward *f;
    ck_assert_int_eq(qforward_new(m, 2, &f, &err), 0);
    float in[32], out1[6], out2[6];
    for (int i = 0; i < 32; i++)
        in[i] = (float)(i % 7);
    ck_assert_int_eq(qforward_run(f, NULL, in, 2, out1, &err), 0);
    ck_assert_int_eq(qforward_run(f, NULL, in, 2, out2, &err), 0);
    ck_assert_mem_eq(out1, out2, sizeof out1);
    qforward_free(f);
    qmodel_free(m);
}
END_TEST

START_TEST(json_file_and_relative_paths)
{
    write_weights();
    /* weights named relative to the JSON file's folder */
    char body[4096];
    snprintf(body, sizeof body,
             "\"qlab_model\": 1, \"name\": \"tiny\", \"weights\": [\"../w.safetensors\"], "
             "\"dataset\": \"data.safetensors\", \"input\": {\"shape\": [1, 4, 4]}, %s",
             good_graph);
    const char *dir = write_model("rel", body);
    char file[1200];
    snprintf(file, sizeof file, "%s/model.json", dir);
    struct qmodel *m;
    qerr err;
    ck_assert_msg(qmodel_json_load(file, &m, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(m->name, "tiny");
    ck_assert_ptr_nonnull(strstr(m->dataset_path, "rel/data.safetensors"));
    ck_assert_float_eq(m->pre_scale[0], 1.0f); /* no preprocessing given */
    ck_assert_float_eq(m->pre_offset[0], 0.0f);
    qmodel_free(m);
}
END_TEST

/* ---- malformed models ---------------------------------------------------------- */

static void expect_refused(const char *dirname, const char *body, const char *phrase)
{
    const char *dir = write_model(dirname, body);
    struct qmodel *m = NULL;
    qerr err = {{0}};
    ck_assert_msg(qmodel_json_load(dir, &m, &err) == -1, "%s loaded", dirname);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "%s: '%s' lacks '%s'", dirname, err.msg,
                  phrase);
    ck_assert_msg(strstr(err.msg, "model.json") != NULL || strstr(err.msg, ".safetensors"),
                  "%s: '%s' names no file", dirname, err.msg);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
}

START_TEST(refuses_bad_documents)
{
    write_weights();
    expect_refused("notjson", "\"qlab_model\": 1, \"weights\": ", "not valid JSON");
    expect_refused("noversion", "\"weights\": \"x\"", "no \"qlab_model\"");
    expect_refused("future", "\"qlab_model\": 2", "newer than this qlab reads");
    expect_refused("unknowntop", "\"qlab_model\": 1, \"wieghts\": 1", "unknown field 'wieghts'");
    expect_refused("noweights", "\"qlab_model\": 1, \"input\": {\"shape\": [1]}",
                   "no \"weights\"");
    expect_refused("missingfile",
                   "\"qlab_model\": 1, \"weights\": \"nope.safetensors\", \"input\": "
                   "{\"shape\": [1]}, \"graph\": [{\"op\": \"relu\"}]",
                   "nope.safetensors");
    char *b;
    b = model_body("", "\"graph\": []");
    expect_refused("emptygraph", b, "non-empty list of nodes");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"conv3d\"}]");
    expect_refused("badop", b, "unknown op 'conv3d'");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"relu\", \"kernel\": 2}]");
    expect_refused("badfield", b, "unknown field 'kernel'");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"linear\", \"weight\": \"nothere\"}]");
    expect_refused("notensor", b, "tensor 'nothere' is not in");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"linear\"}]");
    expect_refused("noweight", b, "needs a \"weight\"");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"relu\", \"input\": \"later\"}, "
                       "{\"op\": \"relu\", \"name\": \"later\"}]");
    expect_refused("forward", b, "not \"input\" or an earlier node");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"conv2d\", \"weight\": \"conv.weight\", "
                       "\"stride\": 0}]");
    expect_refused("stride0", b, "\"stride\" must be an integer >= 1");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"conv2d\", \"weight\": \"conv.weight\", "
                       "\"padding\": \"same\"}]");
    expect_refused("badpad", b, "\"padding\" must be");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"maxpool2d\"}]");
    expect_refused("nokernel", b, "needs a \"kernel\"");
    free(b);
    b = model_body("\"output\": \"nowhere\", ", good_graph);
    expect_refused("badoutput", b, "\"output\" must name a node");
    free(b);
    b = model_body("\"classes\": [\"a\"], ", good_graph);
    expect_refused("badclasses", b, "1 class names but the output");
    free(b);
    /* shape errors found by graph checks name the node */
    b = model_body("", "\"graph\": [{\"op\": \"flatten\"}, {\"op\": \"linear\", \"name\": "
                       "\"fc\", \"weight\": \"fc.weight\"}]");
    expect_refused("indim", b, "'fc'");
    free(b);
    b = model_body("", "\"graph\": [{\"op\": \"relu\", \"name\": \"x\"}, {\"op\": \"relu\", "
                       "\"name\": \"x\"}]");
    expect_refused("dupname", b, "name 'x' is used twice");
    free(b);
    expect_refused("badinput",
                   "\"qlab_model\": 1, \"weights\": \"../w.safetensors\", \"input\": "
                   "{\"shape\": [0]}, \"graph\": [{\"op\": \"relu\"}]",
                   "positive integer");
    expect_refused("prelen",
                   "\"qlab_model\": 1, \"weights\": \"../w.safetensors\", \"input\": "
                   "{\"shape\": [2, 2], \"scale\": [1, 2], \"offset\": [0]}, "
                   "\"graph\": [{\"op\": \"relu\"}]",
                   "\"scale\" has 2 values but \"offset\" has 1");
}
END_TEST

START_TEST(refuses_truncated_and_corrupt_files)
{
    write_weights();
    char *b = model_body("", good_graph);
    const char *dir = write_model("trunc", b);
    char file[1200];
    snprintf(file, sizeof file, "%s/model.json", dir);
    /* every prefix of a valid model.json is refused cleanly */
    size_t len = strlen(b) + 2;
    char *full = tu_read_file(file, NULL);
    for (size_t cut = 0; cut < len; cut += 7) {
        tu_write_file(file, full, cut);
        struct qmodel *m = NULL;
        qerr err;
        ck_assert_msg(qmodel_json_load(dir, &m, &err) == -1, "prefix %zu loaded", cut);
        ck_assert_ptr_nonnull(strstr(err.msg, "model.json"));
    }
    free(full);
    free(b);
    /* a truncated weights file is refused with its own name */
    size_t wlen;
    char *w = tu_read_file(weights_path, &wlen);
    const char *cut_path = tu_path("cut.safetensors");
    tu_write_file(cut_path, w, wlen - 5);
    free(w);
    char body[4096];
    snprintf(body, sizeof body,
             "\"qlab_model\": 1, \"weights\": \"%s\", \"input\": {\"shape\": [1, 4, 4]}, %s",
             cut_path, good_graph);
    expect_refused("cutweights", body, "cut.safetensors");
}
END_TEST

START_TEST(refuses_names_in_two_files)
{
    write_weights();
    char body[4096];
    snprintf(body, sizeof body,
             "\"qlab_model\": 1, \"weights\": [\"%s\", \"%s\"], \"input\": {\"shape\": [1, 4, 4]},"
             " %s",
             weights_path, weights_path, good_graph);
    expect_refused("twofiles", body, "is in both");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_json");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, loads_a_small_cnn);
    tcase_add_test(core, json_file_and_relative_paths);
    suite_add_tcase(s, core);
    TCase *limits = tcase_create("Limits");
    tcase_add_test(limits, refuses_bad_documents);
    tcase_add_test(limits, refuses_truncated_and_corrupt_files);
    tcase_add_test(limits, refuses_names_in_two_files);
    suite_add_tcase(s, limits);
    return tu_run(s);
}
