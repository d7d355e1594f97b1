/* ops.h — the float kernels of the forward pass, on batched NCHW or [N, F] data. */
#ifndef QLAB_OPS_H
#define QLAB_OPS_H

#include <stdint.h>

/* y[n, out] = x[n, in] . W^T + b, W stored [out, in] (or [in, out] when
 * transposed). b may be NULL. */
void qop_linear(const float *x, int64_t n, int64_t in, const float *w,
                int transposed, const float *b, int64_t out, float *y);

struct qconv_geom {
    int n, c, h, w;             /* input */
    int oc, kh, kw;             /* weight [oc, c/groups, kh, kw] */
    int sh, sw, dh, dw;         /* stride, dilation */
    int pt, pl, pb, pr;         /* padding: top, left, bottom, right */
    int groups;
    int oh, ow;                 /* output, from qconv_geom_finish */
};

/* Computes oh/ow; returns -1 when the geometry is impossible (kernel
 * larger than padded input, zero stride, channels not divisible by groups). */
int qconv_geom_finish(struct qconv_geom *g);
/* Floats of scratch qop_conv2d needs. */
int64_t qop_conv2d_scratch(const struct qconv_geom *g);
void qop_conv2d(const struct qconv_geom *g, const float *x, const float *w,
                const float *b, float *y, float *scratch);

struct qpool_geom {
    int n, c, h, w;
    int kh, kw, sh, sw;
    int pt, pl, pb, pr;
    int ceil_mode, count_include_pad;
    int oh, ow;
};
int qpool_geom_finish(struct qpool_geom *g);
void qop_maxpool2d(const struct qpool_geom *g, const float *x, float *y);
void qop_avgpool2d(const struct qpool_geom *g, const float *x, float *y);
/* y[n, c] = mean over hw of x[n, c, hw] */
void qop_global_avgpool(const float *x, int n, int c, int64_t hw, float *y);

void qop_relu(float *x, int64_t count);
void qop_gelu(float *x, int64_t count, int tanh_approx);
/* x[n, c, hw] = (x - mean) / sqrt(var + eps) * gamma + beta, in place */
void qop_batchnorm(float *x, int n, int c, int64_t hw, const float *gamma,
                   const float *beta, const float *mean, const float *var, float eps);
void qop_add(const float *a, const float *b, float *y, int64_t count);
/* softmax over each row of [rows, cols], in place, max-subtracted */
void qop_softmax(float *x, int64_t rows, int64_t cols);

/* ONNX SAME_UPPER padding for one spatial dim: out = ceil(in / stride). */
void qpad_same_upper(int in, int k, int stride, int dilation, int *pad_begin, int *pad_end);

#endif
