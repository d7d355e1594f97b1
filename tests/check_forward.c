/* check_forward.c — graph checking (qmodel_finish_graph) and the executor on tiny hand-built models. */
#include <cblas.h>
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "quant/forward.h"
#include "quant/model.h"
#include "quant/safetensors.h"
#include "quant/sha256.h"
#include "test_util.h"

/* ---- building models by hand ----------------------------------------------- */

#define MAX_T 8

/* A model and the tensors it points to (owned here, not by the model). */
struct fx {
    struct qmodel *m;
    struct qtensor t[MAX_T];
    char names[MAX_T][32];
    float data[MAX_T][256];
};

static void fx_init(struct fx *f, int n_nodes, int in_ndim, ...)
{
    memset(f, 0, sizeof *f);
    struct qmodel *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    m->json_path = strdup("model.json");
    m->nodes = calloc((size_t)n_nodes, sizeof *m->nodes);
    m->n_nodes = n_nodes;
    m->tensors = calloc(MAX_T, sizeof *m->tensors);
    m->in_ndim = in_ndim;
    va_list ap;
    va_start(ap, in_ndim);
    for (int i = 0; i < in_ndim; i++)
        m->in_shape[i] = va_arg(ap, int);
    va_end(ap);
    m->n_pre = 1;
    m->pre_scale = malloc(sizeof(float));
    m->pre_offset = malloc(sizeof(float));
    m->pre_scale[0] = 1;
    m->pre_offset[0] = 0;
    m->output = -1;
    f->m = m;
}

/* Adds a float32 tensor holding vals (or zeros) and returns its index. */
static int fx_tensor(struct fx *f, const char *name, const float *vals, int ndim, ...)
{
    struct qmodel *m = f->m;
    int i = m->n_tensors++;
    ck_assert_int_lt(i, MAX_T);
    struct qtensor *t = &f->t[i];
    snprintf(f->names[i], sizeof f->names[i], "%s", name);
    t->name = f->names[i];
    t->dtype = QDT_F32;
    t->ndim = ndim;
    t->numel = 1;
    va_list ap;
    va_start(ap, ndim);
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = va_arg(ap, int);
        t->numel *= t->shape[d];
    }
    va_end(ap);
    ck_assert_int_le(t->numel, 256);
    if (vals)
        memcpy(f->data[i], vals, (size_t)t->numel * sizeof(float));
    t->data = t->f32 = f->data[i];
    t->nbytes = (size_t)t->numel * sizeof(float);
    m->tensors[i] = t;
    return i;
}

/* Fills tensor i with a fixed pseudo-random pattern in [-1, 1). */
static void fx_fill(struct fx *f, int i, unsigned seed)
{
    for (int64_t k = 0; k < f->t[i].numel; k++) {
        seed = seed * 1103515245u + 12345u;
        f->data[i][k] = (float)((seed >> 16) & 0xff) / 128.0f - 1.0f;
    }
}

static struct qnode *fx_node(struct fx *f, int i, enum qop op, const char *name, int in0)
{
    struct qnode *n = &f->m->nodes[i];
    n->name = strdup(name);
    n->op = op;
    n->n_in = 1;
    n->in[0] = in0;
    n->in[1] = -1;
    n->weight = n->bias = n->mean = n->var = -1;
    n->stride[0] = n->stride[1] = 1;
    n->dilation[0] = n->dilation[1] = 1;
    n->groups = 1;
    n->eps = 1e-5f;
    n->count_include_pad = 1;
    return n;
}

static void fx_free(struct fx *f)
{
    qmodel_free(f->m);
    f->m = NULL;
}

/* Runs the model on n samples. */
static void run(struct qmodel *m, const float *const *w, const float *x, int n, float *y)
{
    struct qforward *fw;
    qerr err = {{0}};
    ck_assert_msg(qforward_new(m, n, &fw, &err) == 0, "%s", err.msg);
    ck_assert_msg(qforward_run(fw, w, x, n, y, &err) == 0, "%s", err.msg);
    qforward_free(fw);
}

static void fill_input(float *x, int n, unsigned seed)
{
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 16) & 0xff) / 64.0f - 2.0f;
    }
}

static void assert_close(const float *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs((double)got[i] - want[i]) <= tol, "[%d]: got %.9g, want %.9g", i,
                      (double)got[i], want[i]);
}

/* ---- naive references (double, direct loops) ------------------------------ */

/* One sample of conv2d, [c, h, w] -> [oc, oh, ow], stride 1, groups 1. */
static void ref_conv(const float *x, int c, int h, int w, const float *wt, const float *b,
                     int oc, int k, int pad, double *y, int oh, int ow)
{
    for (int o = 0; o < oc; o++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                double s = b ? b[o] : 0;
                for (int ci = 0; ci < c; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy + ky - pad, ix = ox + kx - pad;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                s += (double)x[(ci * h + iy) * w + ix] *
                                     wt[((o * c + ci) * k + ky) * k + kx];
                        }
                y[(o * oh + oy) * ow + ox] = s;
            }
}

static void ref_linear(const double *x, int in, const float *w, const float *b, int out,
                       double *y)
{
    for (int o = 0; o < out; o++) {
        double s = b ? b[o] : 0;
        for (int i = 0; i < in; i++)
            s += x[i] * w[o * in + i];
        y[o] = s;
    }
}

/* ---- models ---------------------------------------------------------------- */

/* fc1 (4 -> 3) -> relu -> fc2 (3 -> 2), small numbers worked by hand. */
static void build_mlp(struct fx *f)
{
    static const float w1[12] = {1, 0, -1, 0, 0.5f, 0.5f, 0, 0, 0, 0, 0, 1};
    static const float b1[3] = {0, 1, -1};
    static const float w2[6] = {1, 2, 3, -1, 0, 1};
    static const float b2[2] = {0.25f, 0};
    fx_init(f, 3, 1, 4);
    int tw1 = fx_tensor(f, "fc1.weight", w1, 2, 3, 4);
    int tb1 = fx_tensor(f, "fc1.bias", b1, 1, 3);
    int tw2 = fx_tensor(f, "fc2.weight", w2, 2, 2, 3);
    int tb2 = fx_tensor(f, "fc2.bias", b2, 1, 2);
    struct qnode *n = fx_node(f, 0, QOP_LINEAR, "fc1", QNODE_INPUT);
    n->weight = tw1, n->bias = tb1;
    fx_node(f, 1, QOP_RELU, "relu1", 0);
    n = fx_node(f, 2, QOP_LINEAR, "fc2", 1);
    n->weight = tw2, n->bias = tb2;
}

/* two samples: h = [-2, 0.5, -0.5] and [-3, 0.5, 3] before the relu */
static const float mlp_x[8] = {1, -2, 3, 0.5f, -1, 0, 2, 4};

START_TEST(mlp)
{
    struct fx f;
    qerr err = {{0}};
    build_mlp(&f);
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(f.m->output, 2);
    ck_assert_int_eq(f.m->n_classes, 2);
    ck_assert_int_eq(f.m->in_numel, 4);
    ck_assert_int_eq(f.m->nodes[0].out_ndim, 1);
    ck_assert_int_eq(f.m->nodes[0].out_shape[0], 3);
    ck_assert_int_eq(f.m->roles[0], QROLE_WEIGHT);
    ck_assert_int_eq(f.m->roles[1], QROLE_BIAS);
    ck_assert_int_eq(f.m->roles[2], QROLE_WEIGHT);
    ck_assert_int_eq(f.m->tensor_node[0], 0);
    ck_assert_int_eq(f.m->tensor_node[3], 2);
    float y[4];
    run(f.m, NULL, mlp_x, 2, y);
    static const double want[4] = {1.25, 0, 10.25, 3};
    assert_close(y, want, 4, 1e-6);
    fx_free(&f);
}
END_TEST

START_TEST(mlp_transposed)
{
    /* fc1 stored [in, out]: the same numbers as build_mlp's */
    static const float w1t[12] = {1, 0.5f, 0, 0, 0.5f, 0, -1, 0, 0, 0, 0, 1};
    struct fx f;
    qerr err = {{0}};
    build_mlp(&f);
    memcpy(f.data[0], w1t, sizeof w1t);
    f.t[0].shape[0] = 4, f.t[0].shape[1] = 3;
    f.m->nodes[0].transposed = 1;
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    float y[4];
    run(f.m, NULL, mlp_x, 2, y);
    static const double want[4] = {1.25, 0, 10.25, 3};
    assert_close(y, want, 4, 1e-6);
    fx_free(&f);
}
END_TEST

START_TEST(weights_override)
{
    struct fx f;
    qerr err = {{0}};
    build_mlp(&f);
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    static const float w2[6] = {0, 0, 1, 1, 1, 1};
    static const float b1[3] = {0, 0, 0};
    const float *w[MAX_T] = {NULL};
    float y[4];
    w[2] = w2;              /* relu outputs [0, 0.5, 0] and [0, 0.5, 3] */
    run(f.m, w, mlp_x, 2, y);
    static const double want2[4] = {0.25, 0.5, 3.25, 3.5};
    assert_close(y, want2, 4, 1e-6);
    w[2] = NULL;
    w[1] = b1;              /* sample 0: relu [0, 0, 0.5]; fc2: 1.5 + 0.25, 0.5 */
    run(f.m, w, mlp_x, 1, y);
    static const double want1[2] = {1.75, 0.5};
    assert_close(y, want1, 2, 1e-6);
    w[1] = NULL;            /* all NULL: the model's own weights */
    run(f.m, w, mlp_x, 1, y);
    static const double want0[2] = {1.25, 0};
    assert_close(y, want0, 2, 1e-6);
    fx_free(&f);
}
END_TEST

/* conv (1 -> 2, 3x3, pad 1) -> relu -> maxpool 2/2 -> flatten -> fc (8 -> 3) */
static void build_cnn(struct fx *f)
{
    fx_init(f, 5, 3, 1, 5, 5);
    int cw = fx_tensor(f, "conv.weight", NULL, 4, 2, 1, 3, 3);
    int cb = fx_tensor(f, "conv.bias", NULL, 1, 2);
    int fw = fx_tensor(f, "fc.weight", NULL, 2, 3, 8);
    int fb = fx_tensor(f, "fc.bias", NULL, 1, 3);
    for (int i = 0; i < 4; i++)
        fx_fill(f, i, 77u + (unsigned)i);
    struct qnode *n = fx_node(f, 0, QOP_CONV2D, "conv", QNODE_INPUT);
    n->weight = cw, n->bias = cb;
    n->pad[0] = n->pad[1] = n->pad[2] = n->pad[3] = 1;
    fx_node(f, 1, QOP_RELU, "relu", 0);
    n = fx_node(f, 2, QOP_MAXPOOL2D, "pool", 1);
    n->kernel[0] = n->kernel[1] = 2;
    n->stride[0] = n->stride[1] = 2;
    fx_node(f, 3, QOP_FLATTEN, "flat", 2);
    n = fx_node(f, 4, QOP_LINEAR, "fc", 3);
    n->weight = fw, n->bias = fb;
}

static void ref_cnn(const struct fx *f, const float *x, double *y)
{
    double c[50], p[8];
    ref_conv(x, 1, 5, 5, f->data[0], f->data[1], 2, 3, 1, c, 5, 5);
    for (int i = 0; i < 50; i++)
        c[i] = c[i] > 0 ? c[i] : 0;
    for (int o = 0; o < 2; o++)         /* the 5th row and column are dropped */
        for (int py = 0; py < 2; py++)
            for (int px = 0; px < 2; px++) {
                double mx = -INFINITY;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        mx = fmax(mx, c[o * 25 + (2 * py + dy) * 5 + 2 * px + dx]);
                p[o * 4 + py * 2 + px] = mx;
            }
    ref_linear(p, 8, f->data[2], f->data[3], 3, y);
}

START_TEST(cnn)
{
    struct fx f;
    qerr err = {{0}};
    build_cnn(&f);
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(f.m->nodes[0].out_numel, 50);
    ck_assert_int_eq(f.m->nodes[2].out_shape[1], 2);
    ck_assert_int_eq(f.m->nodes[3].out_shape[0], 8);
    ck_assert_int_eq(f.m->n_classes, 3);
    float x[75], y[9];
    fill_input(x, 75, 5);
    run(f.m, NULL, x, 3, y);
    for (int s = 0; s < 3; s++) {
        double want[3];
        ref_cnn(&f, x + 25 * s, want);
        assert_close(y + 3 * s, want, 3, 1e-5);
    }
    fx_free(&f);
}
END_TEST

/* conv (2 -> 3, 3x3, no pad) -> batchnorm -> relu -> global_avgpool */
static void build_cnn_bn(struct fx *f)
{
    fx_init(f, 4, 3, 2, 4, 4);
    int cw = fx_tensor(f, "conv.weight", NULL, 4, 3, 2, 3, 3);
    int cb = fx_tensor(f, "conv.bias", NULL, 1, 3);
    static const float gamma[3] = {1.5f, -0.5f, 2}, beta[3] = {0.1f, 0.2f, -0.3f};
    static const float mean[3] = {0.5f, -1, 0}, var[3] = {4, 0.25f, 1};
    int g = fx_tensor(f, "bn.weight", gamma, 1, 3);
    int b = fx_tensor(f, "bn.bias", beta, 1, 3);
    int mu = fx_tensor(f, "bn.running_mean", mean, 1, 3);
    int v = fx_tensor(f, "bn.running_var", var, 1, 3);
    fx_fill(f, cw, 11);
    fx_fill(f, cb, 12);
    struct qnode *n = fx_node(f, 0, QOP_CONV2D, "conv", QNODE_INPUT);
    n->weight = cw, n->bias = cb;
    n = fx_node(f, 1, QOP_BATCHNORM, "bn", 0);
    n->weight = g, n->bias = b, n->mean = mu, n->var = v;
    n->eps = 1e-3f;
    fx_node(f, 2, QOP_RELU, "relu", 1);
    fx_node(f, 3, QOP_GLOBAL_AVGPOOL, "gap", 2);
}

static void ref_cnn_bn(const struct fx *f, const float *x, double *y)
{
    double c[12];
    ref_conv(x, 2, 4, 4, f->data[0], f->data[1], 3, 3, 0, c, 2, 2);
    for (int o = 0; o < 3; o++) {
        double s = 0;
        for (int j = 0; j < 4; j++) {
            double v = (c[o * 4 + j] - f->data[4][o]) / sqrt((double)f->data[5][o] + 1e-3f) *
                           f->data[2][o] + f->data[3][o];
            s += v > 0 ? v : 0;
        }
        y[o] = s / 4;
    }
}

START_TEST(cnn_batchnorm)
{
    struct fx f;
    qerr err = {{0}};
    build_cnn_bn(&f);
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    for (int i = 2; i < 6; i++)
        ck_assert_int_eq(f.m->roles[i], QROLE_NORM);
    ck_assert_int_eq(f.m->tensor_node[5], 1);
    ck_assert_int_eq(f.m->n_classes, 3);
    float x[64], y[6];
    fill_input(x, 64, 9);
    run(f.m, NULL, x, 2, y);
    for (int s = 0; s < 2; s++) {
        double want[3];
        ref_cnn_bn(&f, x + 32 * s, want);
        assert_close(y + 3 * s, want, 3, 1e-5);
    }
    fx_free(&f);
}
END_TEST

START_TEST(batch_equals_singles)
{
    for (int which = 0; which < 2; which++) {
        struct fx f;
        qerr err = {{0}};
        if (which == 0)
            build_cnn(&f);
        else
            build_cnn_bn(&f);
        ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
        int in = (int)f.m->in_numel, nc = f.m->n_classes;
        float x[3 * 32], yb[9], ys[3];
        fill_input(x, 3 * in, 21);
        struct qforward *fw;
        ck_assert_int_eq(qforward_new(f.m, 3, &fw, &err), 0);
        ck_assert_int_eq(qforward_run(fw, NULL, x, 3, yb, &err), 0);
        for (int s = 0; s < 3; s++) {       /* the same runner, reused */
            ck_assert_int_eq(qforward_run(fw, NULL, x + s * in, 1, ys, &err), 0);
            for (int k = 0; k < nc; k++)
                ck_assert_float_eq_tol(ys[k], yb[s * nc + k], 1e-6);
        }
        qforward_free(fw);
        fx_free(&f);
    }
}
END_TEST

START_TEST(residual_add)
{
    /* fc (diag 1, -1, 2) -> relu -> add(relu, input) */
    static const float w[9] = {1, 0, 0, 0, -1, 0, 0, 0, 2};
    struct fx f;
    qerr err = {{0}};
    fx_init(&f, 3, 1, 3);
    int tw = fx_tensor(&f, "fc.weight", w, 2, 3, 3);
    fx_node(&f, 0, QOP_LINEAR, "fc", QNODE_INPUT)->weight = tw;
    fx_node(&f, 1, QOP_RELU, "relu", 0);
    struct qnode *n = fx_node(&f, 2, QOP_ADD, "res", 1);
    n->n_in = 2, n->in[1] = QNODE_INPUT;
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    static const float x[6] = {1, 2, -3, -1, -2, 0.5f};
    float y[6];
    run(f.m, NULL, x, 2, y);
    /* fc: [1, -2, -6] -> relu [1, 0, 0] -> + x; [-1, 2, 1] -> [0, 2, 1] -> + x */
    static const double want[6] = {2, 2, -3, -1, 0, 1.5};
    assert_close(y, want, 6, 1e-6);
    fx_free(&f);
}
END_TEST

START_TEST(reshape_softmax)
{
    /* [6] -> reshape [2, -1] -> softmax over each row of 3 -> flatten */
    struct fx f;
    qerr err = {{0}};
    fx_init(&f, 3, 1, 6);
    struct qnode *n = fx_node(&f, 0, QOP_RESHAPE, "r", QNODE_INPUT);
    n->target_ndim = 2, n->target[0] = 2, n->target[1] = -1;
    fx_node(&f, 1, QOP_SOFTMAX, "p", 0);
    fx_node(&f, 2, QOP_FLATTEN, "out", 1);
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(f.m->nodes[0].out_shape[1], 3);
    static const float x[6] = {1, 2, 3, 1000, 1001, 1000};
    float y[6];
    run(f.m, NULL, x, 1, y);
    /* e^k / (e + e^2 + e^3); 1 / (2 + e), e / (2 + e) */
    static const double want[6] = {0.0900305732, 0.2447284711, 0.6652409558,
                                   0.2119415576, 0.5761168847, 0.2119415576};
    assert_close(y, want, 6, 1e-6);
    fx_free(&f);
}
END_TEST

START_TEST(preprocess_per_channel)
{
    struct fx f;
    qerr err = {{0}};
    fx_init(&f, 1, 3, 2, 1, 2);
    fx_node(&f, 0, QOP_RELU, "relu", QNODE_INPUT);
    f.m->n_pre = 2;
    f.m->pre_scale = realloc(f.m->pre_scale, 2 * sizeof(float));
    f.m->pre_offset = realloc(f.m->pre_offset, 2 * sizeof(float));
    f.m->pre_scale[0] = 2, f.m->pre_scale[1] = 0.5f;
    f.m->pre_offset[0] = 1, f.m->pre_offset[1] = -1;
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    static const float x[8] = {1, -3, 4, 6, 0, 0, 0, 0};
    float y[8];
    run(f.m, NULL, x, 2, y);
    /* channel 0: 2x + 1 -> [3, -5]; channel 1: x / 2 - 1 -> [1, 2]; relu;
     * the zero sample gives [1, 1] and [-1, -1] */
    static const double want[8] = {3, 0, 1, 2, 1, 1, 0, 0};
    assert_close(y, want, 8, 0);

    f.m->n_pre = 1;         /* one value for every channel */
    f.m->pre_scale[0] = 0.5f, f.m->pre_offset[0] = 1;
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    run(f.m, NULL, x, 1, y);
    static const double want1[4] = {1.5, 0, 3, 4};
    assert_close(y, want1, 4, 0);
    fx_free(&f);
}
END_TEST

START_TEST(same_upper_pool_avg)
{
    /* conv 1x1 (x2) with SAME_UPPER 2x2/2 avgpool on a 3x3 input:
     * out 2x2, pads [0, 0, 1, 1]; the padding is counted */
    static const float w[1] = {2};
    struct fx f;
    qerr err = {{0}};
    fx_init(&f, 2, 3, 1, 3, 3);
    int tw = fx_tensor(&f, "c.weight", w, 4, 1, 1, 1, 1);
    fx_node(&f, 0, QOP_CONV2D, "c", QNODE_INPUT)->weight = tw;
    struct qnode *n = fx_node(&f, 1, QOP_AVGPOOL2D, "avg", 0);
    n->kernel[0] = n->kernel[1] = 2;
    n->stride[0] = n->stride[1] = 2;
    n->pad_same_upper = 1;
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n->pad[0], 0);
    ck_assert_int_eq(n->pad[2], 1);
    ck_assert_int_eq(f.m->n_classes, 4);
    static const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float y[4];
    run(f.m, NULL, x, 1, y);
    /* 2 * (1+2+4+5)/4, 2 * (3+6)/4, 2 * (7+8)/4, 2 * 9/4 */
    static const double want[4] = {6, 4.5, 7.5, 4.5};
    assert_close(y, want, 4, 1e-6);
    fx_free(&f);
}
END_TEST

/* Elementwise ops overwrite their input only when nothing else reads it. */
START_TEST(buffer_sharing)
{
    struct fx f;
    qerr err = {{0}};
    float y[8];
    /* fc1 -> relu -> add(fc1, relu): fc1 must survive the relu */
    build_mlp(&f);
    struct qnode *n = &f.m->nodes[2];
    n->op = QOP_ADD, n->n_in = 2, n->in[0] = 0, n->in[1] = 1, n->weight = n->bias = -1;
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    run(f.m, NULL, mlp_x, 1, y);
    static const double want[3] = {-2, 1, -0.5};  /* [-2, .5, -.5] + [0, .5, 0] */
    assert_close(y, want, 3, 1e-6);
    fx_free(&f);

    /* relu(input) -> add(relu, input): the input must survive too */
    fx_init(&f, 2, 1, 4);
    fx_node(&f, 0, QOP_RELU, "r", QNODE_INPUT);
    n = fx_node(&f, 1, QOP_ADD, "a", 0);
    n->n_in = 2, n->in[1] = QNODE_INPUT;
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    run(f.m, NULL, mlp_x, 2, y);
    static const double want2[8] = {2, -2, 6, 1, -1, 0, 4, 8};
    assert_close(y, want2, 8, 1e-6);
    fx_free(&f);

    /* the output is a middle node: later in-place ops must not touch it */
    build_mlp(&f);
    free(f.m->nodes[2].name);
    fx_node(&f, 2, QOP_GELU, "g", 1);       /* replaces fc2 */
    f.m->output = 1;
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(f.m->n_classes, 3);
    run(f.m, NULL, mlp_x, 2, y);
    static const double want3[6] = {0, 0.5, 0, 0, 0.5, 3};
    assert_close(y, want3, 6, 0);
    fx_free(&f);

    /* the output is the conv before its relu: no conv+relu fusion then */
    build_cnn(&f);
    f.m->output = 0;
    float x[50], yc[100];
    fill_input(x, 50, 3);
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(f.m->n_classes, 50);
    run(f.m, NULL, x, 2, yc);
    for (int k = 0; k < 2; k++) {
        double wc[50];
        ref_conv(x + 25 * k, 1, 5, 5, f.data[0], f.data[1], 2, 3, 1, wc, 5, 5);
        assert_close(yc + 50 * k, wc, 50, 1e-5);
    }
    fx_free(&f);
}
END_TEST

/* Two runners on one model in two threads: no shared mutable state. */
struct thread_job {
    const struct qmodel *m;
    const float *x;
    float y[4 * 3];
    int rc;
};

static void *thread_run(void *arg)
{
    struct thread_job *j = arg;
    struct qforward *fw;
    qerr err;
    j->rc = qforward_new(j->m, 4, &fw, &err);
    for (int rep = 0; rep < 50 && j->rc == 0; rep++)
        j->rc = qforward_run(fw, NULL, j->x, 4, j->y, &err);
    qforward_free(fw);
    return NULL;
}

START_TEST(two_threads)
{
    struct fx f;
    qerr err = {{0}};
    build_cnn(&f);
    ck_assert_msg(qmodel_finish_graph(f.m, &err) == 0, "%s", err.msg);
    float x[2][100];
    fill_input(x[0], 100, 31);
    fill_input(x[1], 100, 32);
    struct thread_job job[2] = {{.m = f.m, .x = x[0]}, {.m = f.m, .x = x[1]}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_run, &job[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(job[i].rc, 0);
        for (int s = 0; s < 4; s++) {
            double want[3];
            ref_cnn(&f, x[i] + 25 * s, want);
            assert_close(job[i].y + 3 * s, want, 3, 1e-5);
        }
    }
    fx_free(&f);
}
END_TEST

START_TEST(run_errors)
{
    struct fx f;
    qerr err = {{0}};
    build_mlp(&f);
    struct qforward *fw;
    ck_assert_int_eq(qmodel_finish_graph(f.m, &err), 0);
    ck_assert_int_eq(qforward_new(f.m, 0, &fw, &err), -1);
    ck_assert_ptr_null(fw);
    ck_assert_int_eq(qforward_new(f.m, 2, &fw, &err), 0);
    float y[6];
    ck_assert_int_eq(qforward_run(fw, NULL, mlp_x, 3, y, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "batch of 3"));
    ck_assert_int_eq(qforward_run(fw, NULL, mlp_x, 0, y, &err), -1);
    qforward_free(fw);
    qforward_free(NULL);
    fx_free(&f);
}
END_TEST

/* ---- finish_graph errors --------------------------------------------------- */

static void expect_error(struct fx *f, const char *const *parts, int n)
{
    qerr err = {{0}};
    ck_assert_int_eq(qmodel_finish_graph(f->m, &err), -1);
    for (int i = 0; i < n; i++)
        ck_assert_msg(strstr(err.msg, parts[i]) != NULL, "'%s' not in: %s", parts[i], err.msg);
    fx_free(f);
}

START_TEST(err_later_node)
{
    struct fx f;
    build_mlp(&f);
    f.m->nodes[1].in[0] = 2;
    static const char *const want[] = {"model.json: node 1 'relu1'", "node 2"};
    expect_error(&f, want, 2);
}
END_TEST

START_TEST(err_self_input)
{
    struct fx f;
    build_mlp(&f);
    f.m->nodes[0].in[0] = 0;
    static const char *const want[] = {"node 0 'fc1'"};
    expect_error(&f, want, 1);
}
END_TEST

START_TEST(err_linear_in)
{
    struct fx f;
    build_mlp(&f);
    f.m->in_shape[0] = 5;
    static const char *const want[] = {
        "model.json: node 0 'fc1' (linear): weight 'fc1.weight' is [3, 4] but the input has 5 "
        "features"};
    expect_error(&f, want, 1);
}
END_TEST

START_TEST(err_linear_bias)
{
    struct fx f;
    build_mlp(&f);
    f.t[3].shape[0] = 3, f.t[3].numel = 3;
    static const char *const want[] = {"node 2 'fc2'", "bias 'fc2.bias' is [3]; expected [2]"};
    expect_error(&f, want, 2);
}
END_TEST

START_TEST(err_conv_channels)
{
    struct fx f;
    build_cnn_bn(&f);
    f.m->in_shape[0] = 3;   /* the weight wants 2 channels */
    static const char *const want[] = {"node 0 'conv' (conv2d)", "[3, 2, 3, 3]", "3 channels"};
    expect_error(&f, want, 3);
}
END_TEST

START_TEST(err_conv_groups)
{
    struct fx f;
    build_cnn_bn(&f);
    f.m->nodes[0].groups = 2;  /* 2 / 2 = 1 channel per group, weight has 2 */
    static const char *const want[] = {"'conv'", "groups"};
    expect_error(&f, want, 2);
    build_cnn_bn(&f);
    f.m->nodes[0].groups = 0;
    expect_error(&f, want, 2);
}
END_TEST

START_TEST(err_conv_too_small)
{
    struct fx f;
    build_cnn_bn(&f);
    f.m->in_shape[1] = 2;   /* 3x3 kernel, 2x4 input, no padding */
    static const char *const want[] = {"'conv'", "does not fit", "[2, 2, 4]"};
    expect_error(&f, want, 3);
    build_cnn_bn(&f);
    f.m->nodes[0].stride[1] = 0;
    static const char *const want2[] = {"'conv'", "stride 0"};
    expect_error(&f, want2, 2);
}
END_TEST

START_TEST(err_pool)
{
    struct fx f;
    build_cnn(&f);
    f.m->nodes[2].kernel[0] = 6;
    static const char *const want[] = {"node 2 'pool' (maxpool2d)", "kernel 6x2"};
    expect_error(&f, want, 2);
    build_cnn(&f);
    f.m->nodes[2].pad[0] = 2;  /* a window of padding only */
    expect_error(&f, want + 0, 1);
    build_mlp(&f);              /* a pool on the 1-D output of fc1 */
    struct qnode *n = &f.m->nodes[1];
    n->op = QOP_MAXPOOL2D;
    n->kernel[0] = n->kernel[1] = 1;
    static const char *const want3[] = {"node 1 'relu1' (maxpool2d)", "input is [3]"};
    expect_error(&f, want3, 2);
}
END_TEST

START_TEST(err_add_shapes)
{
    struct fx f;
    build_mlp(&f);
    struct qnode *n = &f.m->nodes[2];
    free(n->name);
    n->name = strdup("sum");
    n->op = QOP_ADD;
    n->n_in = 2, n->in[0] = 1, n->in[1] = QNODE_INPUT;
    n->weight = n->bias = -1;
    static const char *const want[] = {"node 2 'sum' (add)", "[3]", "[4]"};
    expect_error(&f, want, 3);
    build_mlp(&f);
    f.m->nodes[1].n_in = 2; /* relu takes one */
    static const char *const want2[] = {"'relu1'", "2 inputs"};
    expect_error(&f, want2, 2);
}
END_TEST

START_TEST(err_reshape)
{
    struct fx f;
    fx_init(&f, 1, 1, 6);
    struct qnode *n = fx_node(&f, 0, QOP_RESHAPE, "r", QNODE_INPUT);
    n->target_ndim = 2, n->target[0] = 4, n->target[1] = 2;
    static const char *const want[] = {"node 0 'r' (reshape)", "[4, 2] has 8 values", "6"};
    expect_error(&f, want, 3);
    fx_init(&f, 1, 1, 6);
    n = fx_node(&f, 0, QOP_RESHAPE, "r", QNODE_INPUT);
    n->target_ndim = 2, n->target[0] = 4, n->target[1] = -1;
    static const char *const want2[] = {"[4, -1]", "does not divide"};
    expect_error(&f, want2, 2);
    fx_init(&f, 1, 1, 6);
    n = fx_node(&f, 0, QOP_RESHAPE, "r", QNODE_INPUT);
    n->target_ndim = 3, n->target[0] = -1, n->target[1] = -1, n->target[2] = 6;
    static const char *const want3[] = {"[-1, -1, 6]"};
    expect_error(&f, want3, 1);
}
END_TEST

START_TEST(err_batchnorm)
{
    struct fx f;
    build_cnn_bn(&f);
    f.t[4].shape[0] = 2, f.t[4].numel = 2;  /* running mean of 2 for 3 channels */
    static const char *const want[] = {"node 1 'bn' (batchnorm)",
                                       "mean 'bn.running_mean' is [2]; expected [3]"};
    expect_error(&f, want, 2);
    build_cnn_bn(&f);
    f.m->nodes[1].eps = 0;
    static const char *const want2[] = {"'bn'", "eps"};
    expect_error(&f, want2, 2);
    build_cnn_bn(&f);
    f.data[5][1] = -0.5f;
    static const char *const want3[] = {"'bn'", "var 'bn.running_var'[1] is -0.5"};
    expect_error(&f, want3, 2);
    build_cnn_bn(&f);
    f.m->nodes[1].var = -1;
    static const char *const want4[] = {"'bn'", "var"};
    expect_error(&f, want4, 2);
}
END_TEST

START_TEST(err_n_pre)
{
    struct fx f;
    build_cnn_bn(&f);       /* input [2, 4, 4]: 1 or 2 values */
    f.m->n_pre = 3;
    f.m->pre_scale = realloc(f.m->pre_scale, 3 * sizeof(float));
    f.m->pre_offset = realloc(f.m->pre_offset, 3 * sizeof(float));
    static const char *const want[] = {"model.json", "3 scale/offset values", "1 or 2"};
    expect_error(&f, want, 3);
}
END_TEST

START_TEST(err_roles_and_tensors)
{
    struct fx f;
    build_mlp(&f);
    f.m->nodes[2].bias = 0; /* fc1.weight as fc2's bias */
    static const char *const want[] = {"node 2 'fc2'", "'fc1.weight'", "weight"};
    expect_error(&f, want, 3);
    build_mlp(&f);
    f.t[2].f32 = NULL;
    static const char *const want2[] = {"'fc2.weight'", "float32"};
    expect_error(&f, want2, 2);
    build_mlp(&f);
    f.m->nodes[2].weight = 7;
    static const char *const want3[] = {"'fc2'", "tensor 7"};
    expect_error(&f, want3, 2);
    build_mlp(&f);
    f.m->nodes[0].weight = -1;
    static const char *const want4[] = {"'fc1'", "needs a weight"};
    expect_error(&f, want4, 2);
    build_mlp(&f);
    f.m->output = 3;
    static const char *const want5[] = {"output"};
    expect_error(&f, want5, 1);
}
END_TEST

/* ---- model helpers --------------------------------------------------------- */

START_TEST(op_names)
{
    for (int i = 0; i < QOP_COUNT; i++) {
        ck_assert_str_ne(qop_name((enum qop)i), "?");
        ck_assert_int_eq(qop_from_name(qop_name((enum qop)i)), i);
    }
    ck_assert_str_eq(qop_name(QOP_GLOBAL_AVGPOOL), "global_avgpool");
    ck_assert_int_eq(qop_from_name("conv2d"), QOP_CONV2D);
    ck_assert_int_eq(qop_from_name("Conv2d"), -1);
    ck_assert_int_eq(qop_from_name(NULL), -1);
}
END_TEST

START_TEST(queries)
{
    struct fx f;
    build_mlp(&f);
    ck_assert_int_eq(qmodel_find_tensor(f.m, "fc2.weight"), 2);
    ck_assert_int_eq(qmodel_find_tensor(f.m, "fc3.weight"), -1);
    ck_assert_int_eq(qmodel_n_params(f.m), 12 + 3 + 6 + 2);
    ck_assert_int_eq(qmodel_float_bytes(f.m), 4 * 23);
    fx_free(&f);
    qmodel_free(NULL);
    struct qmodel *half = calloc(1, sizeof *half); /* a loader that failed early */
    half->name = strdup("x");
    half->n_nodes = 3;
    qmodel_free(half);
}
END_TEST

START_TEST(sha256_of_files)
{
    /* model.json then every weight file, in order */
    const char *json = tu_path("fwd_model.json");
    static const char text[] = "{\"qlab_model\": 1}\n";
    tu_write_file(json, text, sizeof text - 1);
    const char *st = tu_path("fwd_w.safetensors");
    static const float v[3] = {1, 2, 3};
    static const int64_t shape[1] = {3};
    struct st_write_tensor wt = {"w", QDT_F32, 1, shape, v};
    qerr err = {{0}};
    ck_assert_msg(st_write(st, &wt, 1, NULL, 0, &err) == 0, "%s", err.msg);

    struct fx f;
    build_mlp(&f);
    free(f.m->json_path);
    f.m->json_path = strdup(json);
    f.m->files = calloc(1, sizeof *f.m->files);
    ck_assert_msg(st_open(st, &f.m->files[0], &err) == 0, "%s", err.msg);
    f.m->n_files = 1;
    char got[65];
    ck_assert_msg(qmodel_sha256(f.m, got, &err) == 0, "%s", err.msg);

    size_t nj, ns;
    char *a = tu_read_file(json, &nj), *b = tu_read_file(st, &ns);
    struct sha256 s;
    uint8_t d[32];
    char want[65];
    sha256_init(&s);
    sha256_update(&s, a, nj);
    sha256_update(&s, b, ns);
    sha256_final(&s, d);
    sha256_hex(d, want);
    ck_assert_str_eq(got, want);
    free(a), free(b);

    free(f.m->json_path);
    f.m->json_path = strdup(tu_path("absent.json"));
    ck_assert_int_eq(qmodel_sha256(f.m, got, &err), -1);
    fx_free(&f);                            /* st_closes the file */
}
END_TEST

/* ---- a real model ---------------------------------------------------------- */

#define MNIST_BN "mnist-cnn-bn/mnist.safetensors"
#define MNIST_IMAGES "mnist/t10k-images-idx3-ubyte.gz"
#define MNIST_LABELS "mnist/t10k-labels-idx1-ubyte.gz"

/* n bytes after a header of skip bytes of a gzip file; caller frees. */
static unsigned char *read_gz(const char *path, size_t skip, size_t n)
{
    gzFile z = gzopen(path, "rb");
    ck_assert_msg(z != NULL, "cannot open %s", path);
    unsigned char *buf = malloc(skip + n);
    ck_assert_int_eq(gzread(z, buf, (unsigned)(skip + n)), (int)(skip + n));
    gzclose(z);
    memmove(buf, buf + skip, n);
    return buf;
}

/* Adds the tensor called name (which must exist) to the graph. */
static int real_tensor(struct qmodel *m, const char *name)
{
    struct qtensor *t = st_find(m->files[0], name);
    ck_assert_msg(t != NULL, "no tensor %s", name);
    m->tensors[m->n_tensors] = t;
    return m->n_tensors++;
}

static struct qnode *real_node(struct qmodel *m, enum qop op, const char *name)
{
    int i = m->n_nodes++;
    struct qnode *n = &m->nodes[i];
    n->name = strdup(name);
    n->op = op;
    n->n_in = 1;
    n->in[0] = i == 0 ? QNODE_INPUT : i - 1;
    n->weight = n->bias = n->mean = n->var = -1;
    n->stride[0] = n->stride[1] = n->dilation[0] = n->dilation[1] = n->groups = 1;
    n->eps = 1e-5f;
    return n;
}

static void real_conv(struct qmodel *m, int layer)
{
    char w[32], b[32], name[16];
    snprintf(w, sizeof w, "layers.%d.weight", layer);
    snprintf(b, sizeof b, "layers.%d.bias", layer);
    snprintf(name, sizeof name, "conv%d", layer);
    struct qnode *n = real_node(m, QOP_CONV2D, name);
    n->weight = real_tensor(m, w);
    n->bias = real_tensor(m, b);
    snprintf(name, sizeof name, "relu%d", layer);
    real_node(m, QOP_RELU, name);
}

static void real_bn_pool(struct qmodel *m, int layer)
{
    char t[40], name[16];
    snprintf(name, sizeof name, "bn%d", layer);
    struct qnode *n = real_node(m, QOP_BATCHNORM, name);
    int *slots[4] = {&n->weight, &n->bias, &n->mean, &n->var};
    static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        snprintf(t, sizeof t, "layers.%d.%s", layer, suffix[i]);
        *slots[i] = real_tensor(m, t);
    }
    snprintf(name, sizeof name, "pool%d", layer);
    n = real_node(m, QOP_MAXPOOL2D, name);
    n->kernel[0] = n->kernel[1] = n->stride[0] = n->stride[1] = 2;
}

/* The tinygrad "beautiful MNIST" CNN with BatchNorm, described by hand:
 * its published top-1 on the MNIST test set is 99.16 %. */
START_TEST(real_mnist_cnn_bn)
{
    qerr err = {{0}};
    struct qmodel *m = calloc(1, sizeof *m);
    m->path = strdup(tu_shared(MNIST_BN));
    m->files = calloc(1, sizeof *m->files);
    ck_assert_msg(st_open(m->path, &m->files[0], &err) == 0, "%s", err.msg);
    m->n_files = 1;
    m->tensors = calloc(32, sizeof *m->tensors); /* 18 used */
    m->nodes = calloc(16, sizeof *m->nodes);
    m->in_ndim = 3;
    m->in_shape[0] = 1, m->in_shape[1] = 28, m->in_shape[2] = 28;
    m->output = -1;         /* n_pre 0: raw pixels 0..255 */
    real_conv(m, 0);
    real_conv(m, 2);
    real_bn_pool(m, 4);
    real_conv(m, 6);
    real_conv(m, 8);
    real_bn_pool(m, 10);
    real_node(m, QOP_FLATTEN, "flatten");
    struct qnode *fc = real_node(m, QOP_LINEAR, "fc");
    fc->weight = real_tensor(m, "layers.13.weight");
    fc->bias = real_tensor(m, "layers.13.bias");
    ck_assert_msg(qmodel_finish_graph(m, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(m->nodes[m->n_nodes - 2].out_shape[0], 576);
    ck_assert_int_eq(m->n_classes, 10);

    enum { N = 10000, B = 100, PIX = 784 };
    unsigned char *img = read_gz(tu_shared(MNIST_IMAGES), 16, (size_t)N * PIX);
    unsigned char *lab = read_gz(tu_shared(MNIST_LABELS), 8, N);
    float *x = malloc((size_t)B * PIX * sizeof *x), y[B * 10];
    struct qforward *fw;
    ck_assert_msg(qforward_new(m, B, &fw, &err) == 0, "%s", err.msg);
    int correct = 0;
    for (int i0 = 0; i0 < N; i0 += B) {
        for (int k = 0; k < B * PIX; k++)
            x[k] = img[(size_t)i0 * PIX + (size_t)k];
        ck_assert_msg(qforward_run(fw, NULL, x, B, y, &err) == 0, "%s", err.msg);
        for (int s = 0; s < B; s++) {
            int best = 0;
            for (int c = 1; c < 10; c++)
                if (y[s * 10 + c] > y[s * 10 + best])
                    best = c;
            correct += best == lab[i0 + s];
        }
    }
    ck_assert_int_eq(correct, 9916);
    qforward_free(fw);
    free(x), free(img), free(lab);
    qmodel_free(m);
}
END_TEST

static Suite *forward_suite(void)
{
    Suite *s = suite_create("forward");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, mlp);
    tcase_add_test(core, mlp_transposed);
    tcase_add_test(core, weights_override);
    tcase_add_test(core, cnn);
    tcase_add_test(core, cnn_batchnorm);
    tcase_add_test(core, batch_equals_singles);
    tcase_add_test(core, residual_add);
    tcase_add_test(core, reshape_softmax);
    tcase_add_test(core, preprocess_per_channel);
    tcase_add_test(core, same_upper_pool_avg);
    tcase_add_test(core, buffer_sharing);
    tcase_add_test(core, two_threads);
    tcase_add_test(core, run_errors);
    suite_add_tcase(s, core);
    TCase *graph = tcase_create("GraphErrors");
    tcase_add_test(graph, err_later_node);
    tcase_add_test(graph, err_self_input);
    tcase_add_test(graph, err_linear_in);
    tcase_add_test(graph, err_linear_bias);
    tcase_add_test(graph, err_conv_channels);
    tcase_add_test(graph, err_conv_groups);
    tcase_add_test(graph, err_conv_too_small);
    tcase_add_test(graph, err_pool);
    tcase_add_test(graph, err_add_shapes);
    tcase_add_test(graph, err_reshape);
    tcase_add_test(graph, err_batchnorm);
    tcase_add_test(graph, err_n_pre);
    tcase_add_test(graph, err_roles_and_tensors);
    suite_add_tcase(s, graph);
    TCase *model = tcase_create("Model");
    tcase_add_test(model, op_names);
    tcase_add_test(model, queries);
    tcase_add_test(model, sha256_of_files);
    suite_add_tcase(s, model);
    TCase *real = tcase_create("Real");
    tcase_set_timeout(real, 120);
    tcase_add_test(real, real_mnist_cnn_bn);
    static const char *const need[] = {MNIST_BN, MNIST_IMAGES, MNIST_LABELS};
    tu_add_if_shared(s, real, need, 3);
    return s;
}

int main(void)
{
    /* One BLAS thread: the real-model case is 3 to 10 times slower with
     * OpenBLAS's spinning workers on a busy 2-core machine or under ASan. */
    openblas_set_num_threads(1);
    return tu_run(forward_suite());
}
