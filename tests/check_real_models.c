/* check_real_models.c — models and data made by other people: the numbers must match theirs. */
#include <check.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/dataset.h"
#include "quant/eval.h"
#include "quant/metrics.h"
#include "quant/model_json.h"
#include "test_util.h"

/* The fixture model.json with its weights pointed at $QLAB_SHARED_DATA,
 * wherever that is, written to the temp dir. */
static const char *fixture_model(void)
{
    size_t n;
    char *text = tu_read_file("tests/fixtures/mnist-cnn-bn/model.json", &n);
    ck_assert_ptr_nonnull(text);
    cJSON *j = cJSON_Parse(text);
    free(text);
    ck_assert_ptr_nonnull(j);
    char *weights = realpath(tu_shared("mnist-cnn-bn/mnist.safetensors"), NULL);
    ck_assert_ptr_nonnull(weights);
    cJSON_ReplaceItemInObject(j, "weights", cJSON_CreateString(weights));
    free(weights);
    cJSON_DeleteItemFromObject(j, "dataset");
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    const char *path = tu_path("mnist-cnn-bn.json");
    tu_write_file(path, out, strlen(out));
    free(out);
    return path;
}

START_TEST(mnist_cnn_bn_scores_99_16)
{
    struct qmodel *m;
    struct qdataset *d;
    qerr err;
    ck_assert_msg(qmodel_json_load(fixture_model(), &m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(m->n_classes, 10);
    ck_assert_msg(qdataset_open(tu_shared("mnist/t10k-images-idx3-ubyte.gz"), NULL, &d, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(qeval_check(m, d, &err), 0);
    float *logits = malloc((size_t)d->n * 10 * sizeof *logits);
    struct qeval_opts o = {.batch = 100};
    ck_assert_msg(qeval_logits(m, NULL, d, d->n, &o, NULL, "float", logits, &err) == 0, "%s",
                  err.msg);
    struct qclass_metrics r;
    qmetrics_classify(logits, NULL, d->labels, d->n, 10, &r);
    /* 9916 of 10000, as the model's authors report */
    ck_assert_int_eq(r.n, 10000);
    ck_assert_double_eq_tol(r.top1, 99.16, 1e-9);
    ck_assert(r.top5 > 99.9);
    ck_assert(r.cross_entropy > 0.0 && r.cross_entropy < 0.05);
    free(logits);
    qdataset_free(d);
    qmodel_free(m);
}
END_TEST

/* Batch size and thread count must not change a single logit. */
START_TEST(mnist_logits_do_not_depend_on_batching)
{
    struct qmodel *m;
    struct qdataset *d;
    qerr err;
    ck_assert_int_eq(qmodel_json_load(fixture_model(), &m, &err), 0);
    ck_assert_int_eq(qdataset_open(tu_shared("mnist/t10k-images-idx3-ubyte.gz"), NULL, &d, &err),
                     0);
    int n = 200;
    float *a = malloc((size_t)n * 10 * sizeof *a), *b = malloc((size_t)n * 10 * sizeof *b);
    struct qeval_opts one = {.batch = 1, .threads = 1}, many = {.batch = 37, .threads = 2};
    ck_assert_int_eq(qeval_logits(m, NULL, d, n, &one, NULL, "a", a, &err), 0);
    ck_assert_int_eq(qeval_logits(m, NULL, d, n, &many, NULL, "b", b, &err), 0);
    for (int i = 0; i < n * 10; i++)
        ck_assert_float_eq_tol(a[i], b[i], 1e-4f * (1.0f + (a[i] < 0 ? -a[i] : a[i])));
    free(a);
    free(b);
    qdataset_free(d);
    qmodel_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("real_models");
    TCase *mnist = tcase_create("MnistCnnBn");
    tcase_set_timeout(mnist, 300);
    tcase_add_test(mnist, mnist_cnn_bn_scores_99_16);
    tcase_add_test(mnist, mnist_logits_do_not_depend_on_batching);
    const char *need[] = {"mnist-cnn-bn/mnist.safetensors", "mnist/t10k-images-idx3-ubyte.gz",
                          "mnist/t10k-labels-idx1-ubyte.gz"};
    tu_add_if_shared(s, mnist, need, 3);
    return tu_run(s);
}
