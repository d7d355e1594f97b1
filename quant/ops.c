/* ops.c — the float kernels of the forward pass: linear/conv via OpenBLAS sgemm, pools, activations. */
#include "ops.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#ifndef M_SQRT1_2
#define M_SQRT1_2 0.70710678118654752440
#endif

/* Elementwise loops run in blocks of QOPS_BLOCK with a constant inner trip
 * count, which GCC vectorizes at -O2; the tail is scalar. */
#define QOPS_BLOCK 8

/* x[j] = v for j < n */
static void fill(float *x, int64_t n, float v)
{
    int64_t j = 0;
    for (; j + QOPS_BLOCK <= n; j += QOPS_BLOCK)
        for (int k = 0; k < QOPS_BLOCK; k++)
            x[j + k] = v;
    for (; j < n; j++)
        x[j] = v;
}

/* ---- linear ---------------------------------------------------------------- */

/* sgemm takes int sizes: very tall batches are cut into row chunks. */
#define QOPS_GEMM_ROWS (1 << 24)

void qop_linear(const float *x, int64_t n, int64_t in, const float *w,
                int transposed, const float *b, int64_t out, float *y)
{
    if (n <= 0 || out <= 0)
        return;
    /* the bias goes in first and sgemm adds to it (beta 1): one pass less */
    if (b)
        for (int64_t r = 0; r < n; r++)
            memcpy(y + r * out, b, (size_t)out * sizeof *y);
    if (in <= 0) { /* an empty dot product is 0: y is the bias */
        if (!b)
            memset(y, 0, (size_t)(n * out) * sizeof *y);
        return;
    }
    for (int64_t r0 = 0; r0 < n; r0 += QOPS_GEMM_ROWS) {
        int64_t m = n - r0 < QOPS_GEMM_ROWS ? n - r0 : QOPS_GEMM_ROWS;
        /* y = x . W^T with W [out, in], or x . W with W [in, out] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposed ? CblasNoTrans : CblasTrans,
                    (blasint)m, (blasint)out, (blasint)in, 1.0f, x + r0 * in, (blasint)in,
                    w, (blasint)(transposed ? out : in), b ? 1.0f : 0.0f, y + r0 * out,
                    (blasint)out);
    }
}

/* ---- conv2d ---------------------------------------------------------------- */

/* Output size of one spatial dim, or -1 when impossible. */
static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1)
{
    if (in <= 0 || k <= 0 || s <= 0 || d <= 0 || p0 < 0 || p1 < 0)
        return -1;
    int64_t span = d * (k - 1) + 1;     /* dilated kernel extent */
    int64_t padded = in + p0 + p1;
    if (span > padded)
        return -1;
    return (padded - span) / s + 1;
}

int qconv_geom_finish(struct qconv_geom *g)
{
    if (g->n < 0 || g->c <= 0 || g->oc <= 0 || g->groups < 1)
        return -1;
    if (g->c % g->groups || g->oc % g->groups)
        return -1;
    int64_t oh = conv_out(g->h, g->kh, g->sh, g->dh, g->pt, g->pb);
    int64_t ow = conv_out(g->w, g->kw, g->sw, g->dw, g->pl, g->pr);
    if (oh <= 0 || ow <= 0 || oh > INT_MAX || ow > INT_MAX)
        return -1;
    g->oh = (int)oh;
    g->ow = (int)ow;
    return 0;
}

/* 1x1, stride 1, no padding: the image itself is the column matrix. */
static int conv_is_pointwise(const struct qconv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 &&
           g->pt == 0 && g->pl == 0 && g->pb == 0 && g->pr == 0;
}

/* The column matrix is built for a band of output rows at a time, sized to
 * stay in L2 (about 256 KiB) while sgemm reads it back. */
#define QOPS_COL_FLOATS (64 * 1024)

/* Output rows per band: at least one. */
static int conv_band_rows(const struct qconv_geom *g)
{
    int64_t k = (int64_t)(g->c / g->groups) * g->kh * g->kw;
    int64_t rows = QOPS_COL_FLOATS / (k * g->ow);
    return rows < 1 ? 1 : rows > g->oh ? g->oh : (int)rows;
}

int64_t qop_conv2d_scratch(const struct qconv_geom *g)
{
    if (conv_is_pointwise(g))
        return 0;
    int64_t cg = g->c / g->groups;
    return cg * g->kh * g->kw * (int64_t)conv_band_rows(g) * g->ow;
}

/* First o in [0, n) with lo <= o*s + off, and first with o*s + off >= hi:
 * the outputs whose tap lands inside [lo, hi) form [*o0, *o1). */
static void tap_range(int64_t off, int64_t s, int64_t lo, int64_t hi, int64_t n,
                      int64_t *o0, int64_t *o1)
{
    /* ceil((lo - off) / s) for any sign */
    int64_t a = lo - off, b = hi - off;
    int64_t first = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t end = b <= 0 ? 0 : (b + s - 1) / s;
    *o0 = first < n ? first : n;
    *o1 = end < n ? end : n;
    if (*o1 < *o0)
        *o1 = *o0;
}

/* dst[0, n) = src[0, n) for the short spans of im2col (a row of the output):
 * fixed-size copies are inlined as vector moves where a memcpy call (which
 * GCC also makes of a plain copy loop) would cost more than the copy. The
 * last block overlaps the one before instead of a scalar tail. */
static void copy_short(float *restrict dst, const float *restrict src, int64_t n)
{
    if (n >= QOPS_BLOCK) {
        int64_t i = 0;
        for (; i + QOPS_BLOCK <= n; i += QOPS_BLOCK)
            memcpy(dst + i, src + i, QOPS_BLOCK * sizeof *dst);
        if (i < n)
            memcpy(dst + n - QOPS_BLOCK, src + n - QOPS_BLOCK, QOPS_BLOCK * sizeof *dst);
    } else if (n >= 4) {
        memcpy(dst, src, 4 * sizeof *dst);
        memcpy(dst + n - 4, src + n - 4, 4 * sizeof *dst);
    } else {
        for (int i = 0; i < 3; i++)
            if (i < n)
                dst[i] = src[i];
    }
}

/* One row of the column matrix for output rows [y0, y1):
 * r[(oy - y0)*ow + ox] = xc[base + oy*ystep + ox*sw] for oy in [oy0, oy1)
 * and ox in [ox0, ox1), else 0 (padding). Indices outside [ox0, ox1) may be
 * negative, so they stay indices, never pointers. */
static void col_row(float *restrict r, const float *restrict xc, int64_t base, int64_t ystep,
                    int sw, int ow, int64_t y0, int64_t y1, int64_t oy0, int64_t oy1,
                    int64_t ox0, int64_t ox1)
{
    oy0 = oy0 < y0 ? y0 : oy0 > y1 ? y1 : oy0;
    oy1 = oy1 > y1 ? y1 : oy1 < oy0 ? oy0 : oy1;
    memset(r, 0, (size_t)((oy0 - y0) * ow) * sizeof *r);
    for (int64_t oy = oy0; oy < oy1; oy++) {
        float *ro = r + (oy - y0) * ow;
        const int64_t at = base + oy * ystep;
        int64_t ox;
        for (ox = 0; ox < ox0; ox++)
            ro[ox] = 0.0f;
        if (sw == 1) {
            copy_short(ro + ox, xc + at + ox, ox1 - ox);
            ox = ox1;
        } else {
            for (; ox < ox1; ox++)
                ro[ox] = xc[at + ox * sw];
        }
        for (; ox < ow; ox++)
            ro[ox] = 0.0f;
    }
    memset(r + (oy1 - y0) * ow, 0, (size_t)((y1 - oy1) * ow) * sizeof *r);
}

/* col[(ci*kh + ky)*kw + kx, (oy - y0)*ow + ox] = x[ci, iy, ix] (0 in the
 * padding), for output rows [y0, y1) */
static void im2col(const struct qconv_geom *g, const float *x, int cg, int y0, int y1,
                   float *col)
{
    const int kh = g->kh, kw = g->kw, ow = g->ow;
    const int64_t n = (int64_t)(y1 - y0) * ow, hw = (int64_t)g->h * g->w;
    for (int ky = 0; ky < kh; ky++) {
        int64_t oy0, oy1;
        const int64_t offy = (int64_t)ky * g->dh - g->pt;  /* iy = oy*sh + offy */
        tap_range(offy, g->sh, 0, g->h, g->oh, &oy0, &oy1);
        for (int kx = 0; kx < kw; kx++) {
            int64_t ox0, ox1;
            const int64_t offx = (int64_t)kx * g->dw - g->pl;
            tap_range(offx, g->sw, 0, g->w, ow, &ox0, &ox1);
            for (int ci = 0; ci < cg; ci++)
                col_row(col + (((int64_t)ci * kh + ky) * kw + kx) * n, x + ci * hw,
                        offy * g->w + offx, (int64_t)g->sh * g->w, g->sw, ow, y0, y1, oy0,
                        oy1, ox0, ox1);
        }
    }
}

void qop_conv2d(const struct qconv_geom *g, const float *x, const float *w,
                const float *b, float *y, float *scratch)
{
    const int cg = g->c / g->groups, ocg = g->oc / g->groups;
    const int64_t hw = (int64_t)g->h * g->w, ohw = (int64_t)g->oh * g->ow;
    const int64_t k = (int64_t)cg * g->kh * g->kw;      /* one group's filter size */
    const int pointwise = conv_is_pointwise(g);
    const int band = pointwise ? g->oh : conv_band_rows(g);
    for (int i = 0; i < g->n; i++) {
        const float *xi = x + (int64_t)i * g->c * hw;
        float *yi = y + (int64_t)i * g->oc * ohw;
        /* the bias goes in first and sgemm adds to it (beta 1): one pass less */
        if (b)
            for (int o = 0; o < g->oc; o++)
                fill(yi + o * ohw, ohw, b[o]);
        for (int gr = 0; gr < g->groups; gr++) {
            const float *xg = xi + (int64_t)gr * cg * hw;
            const float *wg = w + (int64_t)gr * ocg * k;
            float *yg = yi + (int64_t)gr * ocg * ohw;
            for (int y0 = 0; y0 < g->oh; y0 += band) {
                int y1 = g->oh - y0 < band ? g->oh : y0 + band;
                int64_t n = (int64_t)(y1 - y0) * g->ow;
                const float *col = xg;  /* pointwise: the image is the column matrix */
                if (!pointwise) {
                    im2col(g, xg, cg, y0, y1, scratch);
                    col = scratch;
                }
                /* y_g[ocg, band] = W_g[ocg, k] . col[k, band] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)ocg,
                            (blasint)n, (blasint)k, 1.0f, wg, (blasint)k, col, (blasint)n,
                            b ? 1.0f : 0.0f, yg + (int64_t)y0 * g->ow, (blasint)ohw);
            }
        }
    }
}

/* ---- pooling --------------------------------------------------------------- */

/* PyTorch's pooling output size; -1 when impossible. A pad must be smaller
 * than the kernel so that every window holds at least one real element. */
static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int ceil_mode)
{
    if (in <= 0 || k <= 0 || s <= 0 || p0 < 0 || p1 < 0 || p0 >= k || p1 >= k)
        return -1;
    int64_t room = in + p0 + p1 - k;
    if (room < 0)
        return -1;
    int64_t out = (ceil_mode ? (room + s - 1) / s : room / s) + 1;
    /* the last window must start inside the input or the left padding */
    if (ceil_mode && (out - 1) * s >= in + p0)
        out--;
    return out;
}

int qpool_geom_finish(struct qpool_geom *g)
{
    if (g->n < 0 || g->c <= 0)
        return -1;
    int64_t oh = pool_out(g->h, g->kh, g->sh, g->pt, g->pb, g->ceil_mode);
    int64_t ow = pool_out(g->w, g->kw, g->sw, g->pl, g->pr, g->ceil_mode);
    if (oh <= 0 || ow <= 0 || oh > INT_MAX || ow > INT_MAX)
        return -1;
    g->oh = (int)oh;
    g->ow = (int)ow;
    return 0;
}

/* One window along a dim: [start, end) clipped to the input, and the size
 * PyTorch divides by with count_include_pad (clipped to the padded input). */
struct win {
    int64_t lo, hi, padded;
};

static struct win pool_window(int64_t o, int64_t s, int64_t k, int64_t p0, int64_t p1, int64_t in)
{
    int64_t start = o * s - p0;
    int64_t end = start + k < in + p1 ? start + k : in + p1;
    struct win wd = {start < 0 ? 0 : start, end < in ? end : in, end - start};
    return wd;
}

void qop_maxpool2d(const struct qpool_geom *g, const float *x, float *y)
{
    const int64_t hw = (int64_t)g->h * g->w;
    for (int64_t p = 0; p < (int64_t)g->n * g->c; p++) {
        const float *xp = x + p * hw;
        float *yp = y + p * g->oh * g->ow;
        for (int oy = 0; oy < g->oh; oy++) {
            struct win wy = pool_window(oy, g->sh, g->kh, g->pt, g->pb, g->h);
            for (int ox = 0; ox < g->ow; ox++) {
                struct win wx = pool_window(ox, g->sw, g->kw, g->pl, g->pr, g->w);
                float m = -INFINITY; /* padding never wins */
                int nan = 0;         /* a NaN anywhere wins, as in PyTorch */
                for (int64_t iy = wy.lo; iy < wy.hi; iy++) {
                    const float *row = xp + iy * g->w;
                    for (int64_t ix = wx.lo; ix < wx.hi; ix++) {
                        float v = row[ix];
                        m = v > m ? v : m;
                        nan |= v != v;
                    }
                }
                yp[oy * g->ow + ox] = nan ? NAN : m;
            }
        }
    }
}

void qop_avgpool2d(const struct qpool_geom *g, const float *x, float *y)
{
    const int64_t hw = (int64_t)g->h * g->w;
    for (int64_t p = 0; p < (int64_t)g->n * g->c; p++) {
        const float *xp = x + p * hw;
        float *yp = y + p * g->oh * g->ow;
        for (int oy = 0; oy < g->oh; oy++) {
            struct win wy = pool_window(oy, g->sh, g->kh, g->pt, g->pb, g->h);
            for (int ox = 0; ox < g->ow; ox++) {
                struct win wx = pool_window(ox, g->sw, g->kw, g->pl, g->pr, g->w);
                double sum = 0.0;
                for (int64_t iy = wy.lo; iy < wy.hi; iy++)
                    for (int64_t ix = wx.lo; ix < wx.hi; ix++)
                        sum += xp[iy * g->w + ix];
                int64_t count = g->count_include_pad ? wy.padded * wx.padded
                                                     : (wy.hi - wy.lo) * (wx.hi - wx.lo);
                yp[oy * g->ow + ox] = count > 0 ? (float)(sum / (double)count) : 0.0f;
            }
        }
    }
}

void qop_global_avgpool(const float *x, int n, int c, int64_t hw, float *y)
{
    for (int64_t p = 0; p < (int64_t)n * c; p++) {
        const float *xp = x + p * hw;
        double sum = 0.0;
        for (int64_t j = 0; j < hw; j++)
            sum += xp[j];
        y[p] = hw > 0 ? (float)(sum / (double)hw) : 0.0f;
    }
}

/* ---- elementwise ----------------------------------------------------------- */

void qop_relu(float *x, int64_t count)
{
    int64_t i = 0;
    for (; i + QOPS_BLOCK <= count; i += QOPS_BLOCK)
        for (int k = 0; k < QOPS_BLOCK; k++) {
            float v = x[i + k];
            x[i + k] = 0.0f > v ? 0.0f : v; /* NaN stays NaN, visibly */
        }
    for (; i < count; i++)
        x[i] = 0.0f > x[i] ? 0.0f : x[i];
}

void qop_gelu(float *x, int64_t count, int tanh_approx)
{
    if (tanh_approx) {
        const double k = sqrt(2.0 / M_PI);
        for (int64_t i = 0; i < count; i++) {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1.0 + tanh(k * (v + 0.044715 * v * v * v))));
        }
    } else {
        for (int64_t i = 0; i < count; i++) {
            double v = x[i];
            x[i] = (float)(0.5 * v * (1.0 + erf(v * M_SQRT1_2)));
        }
    }
}

void qop_batchnorm(float *x, int n, int c, int64_t hw, const float *gamma,
                   const float *beta, const float *mean, const float *var, float eps)
{
    for (int i = 0; i < n; i++) {
        for (int ch = 0; ch < c; ch++) {
            /* folded into one multiply-add per element */
            double s = (double)gamma[ch] / sqrt((double)var[ch] + (double)eps);
            float scale = (float)s;
            float shift = (float)((double)beta[ch] - (double)mean[ch] * s);
            float *xp = x + ((int64_t)i * c + ch) * hw;
            int64_t j = 0;
            for (; j + QOPS_BLOCK <= hw; j += QOPS_BLOCK)
                for (int k = 0; k < QOPS_BLOCK; k++)
                    xp[j + k] = xp[j + k] * scale + shift;
            for (; j < hw; j++)
                xp[j] = xp[j] * scale + shift;
        }
    }
}

void qop_add(const float *a, const float *b, float *y, int64_t count)
{
    /* y may be a or b (in place) */
    int64_t i = 0;
    for (; i + QOPS_BLOCK <= count; i += QOPS_BLOCK)
        for (int k = 0; k < QOPS_BLOCK; k++)
            y[i + k] = a[i + k] + b[i + k];
    for (; i < count; i++)
        y[i] = a[i] + b[i];
}

void qop_softmax(float *x, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        float mx = -INFINITY;
        for (int64_t j = 0; j < cols; j++)
            if (row[j] > mx)
                mx = row[j];
        double sum = 0.0;
        for (int64_t j = 0; j < cols; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < cols; j++)
            row[j] *= inv;
    }
}

/* ---- padding helpers ------------------------------------------------------- */

void qpad_same_upper(int in, int k, int stride, int dilation, int *pad_begin, int *pad_end)
{
    *pad_begin = *pad_end = 0;
    if (in <= 0 || k <= 0 || stride <= 0 || dilation <= 0)
        return;
    int64_t out = ((int64_t)in + stride - 1) / stride;
    int64_t total = (out - 1) * stride + (int64_t)(k - 1) * dilation + 1 - in;
    if (total <= 0)
        return;
    if (total > INT_MAX)
        total = INT_MAX;
    *pad_begin = (int)(total / 2);
    *pad_end = (int)(total - total / 2);
}
