/* check_ops.c — the float kernels against values worked out by hand (and im2col against a naive conv). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/ops.h"
#include "test_util.h"

#define EPS 1e-5

static void assert_close(const float *got, const double *want, int n, double tol)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabs((double)got[i] - want[i]) <= tol, "[%d]: got %.9g, want %.9g", i,
                      (double)got[i], want[i]);
}

/* ---- linear ---------------------------------------------------------------- */

static const float lin_x[6] = {1, 2, 3, 4, 5, 6};           /* [2, 3] */
static const float lin_w[6] = {1, 0, -1, 0.5f, 1, 2};       /* [out 2, in 3] */
static const float lin_wt[6] = {1, 0.5f, 0, 1, -1, 2};      /* the same, [in 3, out 2] */
static const float lin_b[2] = {0.5f, -1};

START_TEST(linear_bias)
{
    float y[4];
    /* row 0: 1-3+0.5 = -1.5, 0.5+2+6-1 = 7.5; row 1: 4-6+0.5, 2+5+12-1 */
    static const double want[4] = {-1.5, 7.5, -1.5, 18};
    qop_linear(lin_x, 2, 3, lin_w, 0, lin_b, 2, y);
    assert_close(y, want, 4, EPS);
}
END_TEST

START_TEST(linear_transposed)
{
    float y[4];
    static const double want[4] = {-1.5, 7.5, -1.5, 18};
    qop_linear(lin_x, 2, 3, lin_wt, 1, lin_b, 2, y);
    assert_close(y, want, 4, EPS);
    static const double nobias[4] = {-2, 8.5, -2, 19};
    qop_linear(lin_x, 2, 3, lin_wt, 1, NULL, 2, y);
    assert_close(y, nobias, 4, EPS);
}
END_TEST

/* ---- conv2d ---------------------------------------------------------------- */

static const float img3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; /* [1, 1, 3, 3] */
static const float k1234[4] = {1, 2, 3, 4};               /* [1, 1, 2, 2] */

/* Runs a conv with fresh scratch; geometry must be valid. */
static void run_conv(struct qconv_geom *g, const float *x, const float *w, const float *b,
                     float *y)
{
    ck_assert_int_eq(qconv_geom_finish(g), 0);
    int64_t s = qop_conv2d_scratch(g);
    float *scratch = s > 0 ? malloc((size_t)s * sizeof *scratch) : NULL;
    qop_conv2d(g, x, w, b, y, scratch);
    free(scratch);
}

START_TEST(conv_basic)
{
    struct qconv_geom g = {.n = 1, .c = 1, .h = 3, .w = 3, .oc = 1, .kh = 2, .kw = 2,
                           .sh = 1, .sw = 1, .dh = 1, .dw = 1, .groups = 1};
    float y[4], b = 1;
    run_conv(&g, img3, k1234, &b, y);
    ck_assert_int_eq(g.oh, 2);
    ck_assert_int_eq(g.ow, 2);
    /* 1+4+12+20 = 37, 2+6+15+24 = 47, 4+10+21+32 = 67, 5+12+24+36 = 77; + 1 */
    static const double want[4] = {38, 48, 68, 78};
    assert_close(y, want, 4, EPS);
}
END_TEST

START_TEST(conv_stride_pad)
{
    struct qconv_geom g = {.n = 1, .c = 1, .h = 3, .w = 3, .oc = 1, .kh = 2, .kw = 2,
                           .sh = 2, .sw = 2, .dh = 1, .dw = 1, .pt = 1, .pl = 1, .pb = 1, .pr = 1,
                           .groups = 1};
    float y[4];
    run_conv(&g, img3, k1234, NULL, y);
    ck_assert_int_eq(g.oh, 2);
    ck_assert_int_eq(g.ow, 2);
    /* windows of the zero-padded 5x5 at (0,0) (0,2) (2,0) (2,2):
     * 4*1 = 4; 3*2 + 4*3 = 18; 2*4 + 4*7 = 36; 5+12+24+36 = 77 */
    static const double want[4] = {4, 18, 36, 77};
    assert_close(y, want, 4, EPS);
}
END_TEST

START_TEST(conv_dilation)
{
    struct qconv_geom g = {.n = 1, .c = 1, .h = 3, .w = 3, .oc = 1, .kh = 2, .kw = 2,
                           .sh = 1, .sw = 1, .dh = 2, .dw = 2, .groups = 1};
    float y[1];
    run_conv(&g, img3, k1234, NULL, y);
    ck_assert_int_eq(g.oh, 1);
    ck_assert_int_eq(g.ow, 1);
    /* taps at the corners: 1*1 + 3*2 + 7*3 + 9*4 */
    static const double want[1] = {64};
    assert_close(y, want, 1, EPS);
}
END_TEST

START_TEST(conv_depthwise)
{
    float x[18], y[8];
    memcpy(x, img3, sizeof img3);
    for (int i = 0; i < 9; i++)
        x[9 + i] = (float)(9 - i);                  /* channel 1: 9..1 */
    static const float w[8] = {1, 2, 3, 4, 1, 0, 0, 1}; /* [2, 1, 2, 2] */
    static const float b[2] = {0, 10};
    struct qconv_geom g = {.n = 1, .c = 2, .h = 3, .w = 3, .oc = 2, .kh = 2, .kw = 2,
                           .sh = 1, .sw = 1, .dh = 1, .dw = 1, .groups = 2};
    run_conv(&g, x, w, b, y);
    /* channel 1 sums its window's diagonal: 9+5, 8+4, 6+2, 5+1, then + 10 */
    static const double want[8] = {37, 47, 67, 77, 24, 22, 18, 16};
    assert_close(y, want, 8, EPS);
}
END_TEST

START_TEST(conv_pointwise)
{
    /* 2 channels of 2x2; w [2, 2, 1, 1] = [[1, 1], [2, -1]] */
    static const float x[8] = {1, 2, 3, 4, 10, 20, 30, 40};
    static const float w[4] = {1, 1, 2, -1};
    static const float b[2] = {0.5f, 0};
    struct qconv_geom g = {.n = 1, .c = 2, .h = 2, .w = 2, .oc = 2, .kh = 1, .kw = 1,
                           .sh = 1, .sw = 1, .dh = 1, .dw = 1, .groups = 1};
    float y[8], yp[32];
    ck_assert_int_eq(qconv_geom_finish(&g), 0);
    ck_assert_int_eq(qop_conv2d_scratch(&g), 0); /* the fast path needs no columns */
    run_conv(&g, x, w, b, y);
    static const double want[8] = {11.5, 22.5, 33.5, 44.5, -8, -16, -24, -32};
    assert_close(y, want, 8, EPS);

    /* padding 1 forces im2col: the interior equals the fast path, the
     * border is the bias alone */
    struct qconv_geom gp = g;
    gp.pt = gp.pl = gp.pb = gp.pr = 1;
    run_conv(&gp, x, w, b, yp);
    ck_assert_int_eq(gp.oh, 4);
    for (int o = 0; o < 2; o++)
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) {
                float v = yp[o * 16 + r * 4 + c];
                if (r == 0 || r == 3 || c == 0 || c == 3)
                    ck_assert_float_eq(v, b[o]);
                else
                    ck_assert_float_eq(v, y[o * 4 + (r - 1) * 2 + (c - 1)]);
            }
}
END_TEST

/* The naive definition: every output is a sum over its taps. */
static void conv_naive(const struct qconv_geom *g, const float *x, const float *w,
                       const float *b, float *y)
{
    int cg = g->c / g->groups, ocg = g->oc / g->groups;
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->oc; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    double s = b ? b[o] : 0;
                    int gr = o / ocg;
                    for (int ci = 0; ci < cg; ci++)
                        for (int ky = 0; ky < g->kh; ky++)
                            for (int kx = 0; kx < g->kw; kx++) {
                                int iy = oy * g->sh - g->pt + ky * g->dh;
                                int ix = ox * g->sw - g->pl + kx * g->dw;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                int c = gr * cg + ci;
                                s += (double)x[((n * g->c + c) * g->h + iy) * g->w + ix] *
                                     w[((o * cg + ci) * g->kh + ky) * g->kw + kx];
                            }
                    y[((n * g->oc + o) * g->oh + oy) * g->ow + ox] = (float)s;
                }
}

START_TEST(conv_vs_naive)
{
    /* n c h w oc kh kw sh sw dh dw pt pl pb pr groups */
    static const int cases[][16] = {
        {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {1, 4, 9, 8, 6, 3, 2, 2, 3, 1, 1, 0, 2, 1, 0, 2},
        {2, 2, 8, 8, 2, 3, 3, 2, 2, 2, 2, 2, 1, 0, 2, 2},
        {1, 3, 5, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        {3, 2, 6, 5, 4, 1, 1, 2, 1, 1, 1, 0, 0, 0, 0, 2},
        {1, 1, 4, 4, 1, 4, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1},
        /* big enough that the columns are built in bands of output rows */
        {1, 64, 12, 120, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
        {2, 16, 30, 200, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},
        {1, 8, 20, 300, 4, 5, 5, 1, 1, 2, 1, 2, 2, 3, 2, 2},
    };
    unsigned seed = 12345;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int *k = cases[t];
        struct qconv_geom g = {.n = k[0], .c = k[1], .h = k[2], .w = k[3], .oc = k[4],
                               .kh = k[5], .kw = k[6], .sh = k[7], .sw = k[8], .dh = k[9],
                               .dw = k[10], .pt = k[11], .pl = k[12], .pb = k[13], .pr = k[14],
                               .groups = k[15]};
        ck_assert_int_eq(qconv_geom_finish(&g), 0);
        int nx = g.n * g.c * g.h * g.w, nw = g.oc * (g.c / g.groups) * g.kh * g.kw;
        int ny = g.n * g.oc * g.oh * g.ow;
        float *x = malloc((size_t)nx * sizeof *x), *w = malloc((size_t)nw * sizeof *w);
        float *b = malloc((size_t)g.oc * sizeof *b);
        float *y = malloc((size_t)ny * sizeof *y), *r = malloc((size_t)ny * sizeof *r);
        for (int i = 0; i < nx; i++)
            x[i] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0xff) / 64.0f - 2.0f;
        for (int i = 0; i < nw; i++)
            w[i] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0xff) / 128.0f - 1.0f;
        for (int i = 0; i < g.oc; i++)
            b[i] = (float)i - 1.5f;
        run_conv(&g, x, w, b, y);
        conv_naive(&g, x, w, b, r);
        for (int i = 0; i < ny; i++)
            ck_assert_msg(fabsf(y[i] - r[i]) <= 1e-4f, "case %zu [%d]: %g vs %g", t, i,
                          (double)y[i], (double)r[i]);
        free(x), free(w), free(b), free(y), free(r);
    }
}
END_TEST

START_TEST(conv_geometry_errors)
{
    struct qconv_geom ok = {.n = 1, .c = 2, .h = 3, .w = 3, .oc = 2, .kh = 2, .kw = 2,
                            .sh = 1, .sw = 1, .dh = 1, .dw = 1, .groups = 1};
    struct qconv_geom g = ok;
    ck_assert_int_eq(qconv_geom_finish(&g), 0);
    g = ok, g.kh = 4;                       /* kernel taller than the input */
    ck_assert_int_eq(qconv_geom_finish(&g), -1);
    g = ok, g.kh = 4, g.pt = 1;             /* ... but it fits once padded */
    ck_assert_int_eq(qconv_geom_finish(&g), 0);
    ck_assert_int_eq(g.oh, 1);
    g = ok, g.dh = 3;                       /* dilated extent 4 > 3 */
    ck_assert_int_eq(qconv_geom_finish(&g), -1);
    g = ok, g.sw = 0;
    ck_assert_int_eq(qconv_geom_finish(&g), -1);
    g = ok, g.dw = 0;
    ck_assert_int_eq(qconv_geom_finish(&g), -1);
    g = ok, g.c = 3, g.groups = 2;          /* channels not divisible */
    ck_assert_int_eq(qconv_geom_finish(&g), -1);
    g = ok, g.oc = 3, g.groups = 2;
    ck_assert_int_eq(qconv_geom_finish(&g), -1);
    g = ok, g.groups = 0;
    ck_assert_int_eq(qconv_geom_finish(&g), -1);
    g = ok, g.pl = -1;
    ck_assert_int_eq(qconv_geom_finish(&g), -1);
}
END_TEST

START_TEST(pad_same_upper)
{
    int b, e;
    qpad_same_upper(28, 5, 1, 1, &b, &e);   /* out 28, total 27 + 5 - 28 = 4 */
    ck_assert_int_eq(b, 2);
    ck_assert_int_eq(e, 2);
    qpad_same_upper(5, 2, 2, 1, &b, &e);    /* out 3, total 4 + 2 - 5 = 1: the extra at the end */
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(e, 1);
    qpad_same_upper(7, 3, 2, 2, &b, &e);    /* out 4, total 6 + 5 - 7 = 4 */
    ck_assert_int_eq(b, 2);
    ck_assert_int_eq(e, 2);
    qpad_same_upper(4, 1, 2, 1, &b, &e);    /* out 2, total 2 + 1 - 4 < 0 */
    ck_assert_int_eq(b, 0);
    ck_assert_int_eq(e, 0);
    qpad_same_upper(6, 4, 1, 1, &b, &e);    /* total 3 */
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(e, 2);
}
END_TEST

/* ---- pooling --------------------------------------------------------------- */

START_TEST(maxpool_padding)
{
    float x[16], y[9];
    for (int i = 0; i < 16; i++)
        x[i] = -(float)(i + 1);             /* all negative: a padded 0 would win */
    struct qpool_geom g = {.n = 1, .c = 1, .h = 4, .w = 4, .kh = 2, .kw = 2, .sh = 2, .sw = 2,
                           .pt = 1, .pl = 1, .pb = 1, .pr = 1};
    ck_assert_int_eq(qpool_geom_finish(&g), 0);
    ck_assert_int_eq(g.oh, 3);
    ck_assert_int_eq(g.ow, 3);
    qop_maxpool2d(&g, x, y);
    /* real rows per window: {0} {1,2} {3}, the same for columns */
    static const double want[9] = {-1, -2, -4, -5, -6, -8, -13, -14, -16};
    assert_close(y, want, 9, 0);
}
END_TEST

START_TEST(maxpool_ceil_mode)
{
    float x[50], y[18];
    for (int i = 0; i < 25; i++) {
        x[i] = (float)(i + 1);              /* x[r][c] = 5r + c + 1 */
        x[25 + i] = (float)(-i);            /* channel 1: max at each window's top-left */
    }
    struct qpool_geom g = {.n = 1, .c = 2, .h = 5, .w = 5, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
    ck_assert_int_eq(qpool_geom_finish(&g), 0);
    ck_assert_int_eq(g.oh, 2);              /* floor: the last column is dropped */
    g.ceil_mode = 1;
    ck_assert_int_eq(qpool_geom_finish(&g), 0);
    ck_assert_int_eq(g.oh, 3);
    ck_assert_int_eq(g.ow, 3);
    qop_maxpool2d(&g, x, y);
    static const double want[18] = {7, 9, 10, 17, 19, 20, 22, 24, 25,
                                    0, -2, -4, -10, -12, -14, -20, -22, -24};
    assert_close(y, want, 18, 0);

    /* in 5, k 2, s 2, pad 1, ceil: ceil(5/2) + 1 = 4, but window 4 would start
     * at 6 - 1 = 5, in the right padding only: PyTorch gives 3 */
    struct qpool_geom p = {.n = 1, .c = 1, .h = 5, .w = 5, .kh = 2, .kw = 2, .sh = 2, .sw = 2,
                           .pt = 1, .pl = 1, .pb = 1, .pr = 1, .ceil_mode = 1};
    ck_assert_int_eq(qpool_geom_finish(&p), 0);
    ck_assert_int_eq(p.oh, 3);
    ck_assert_int_eq(p.ow, 3);
}
END_TEST

START_TEST(avgpool_count_include_pad)
{
    float y[9];
    struct qpool_geom g = {.n = 1, .c = 1, .h = 3, .w = 3, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                           .pt = 1, .pl = 1, .pb = 1, .pr = 1, .count_include_pad = 1};
    ck_assert_int_eq(qpool_geom_finish(&g), 0);
    ck_assert_int_eq(g.oh, 3);
    qop_avgpool2d(&g, img3, y);
    /* corner: (1+2+4+5)/9; top edge: (1+..+6)/9; centre 45/9 */
    ck_assert_float_eq_tol(y[0], 12.0 / 9, EPS);
    ck_assert_float_eq_tol(y[1], 21.0 / 9, EPS);
    ck_assert_float_eq_tol(y[4], 5.0, EPS);
    ck_assert_float_eq_tol(y[8], (5 + 6 + 8 + 9) / 9.0, EPS);
    g.count_include_pad = 0;
    qop_avgpool2d(&g, img3, y);
    ck_assert_float_eq_tol(y[0], 12.0 / 4, EPS);
    ck_assert_float_eq_tol(y[1], 21.0 / 6, EPS);
    ck_assert_float_eq_tol(y[4], 5.0, EPS);
    ck_assert_float_eq_tol(y[8], 28.0 / 4, EPS);
}
END_TEST

START_TEST(avgpool_ceil_window)
{
    /* 3x3, k 2, s 2, ceil: the last windows hang past the input (no
     * padding there), so even count_include_pad divides by what is inside */
    float y[4];
    struct qpool_geom g = {.n = 1, .c = 1, .h = 3, .w = 3, .kh = 2, .kw = 2, .sh = 2, .sw = 2,
                           .ceil_mode = 1, .count_include_pad = 1};
    ck_assert_int_eq(qpool_geom_finish(&g), 0);
    ck_assert_int_eq(g.oh, 2);
    qop_avgpool2d(&g, img3, y);
    static const double want[4] = {(1 + 2 + 4 + 5) / 4.0, (3 + 6) / 2.0, (7 + 8) / 2.0, 9};
    assert_close(y, want, 4, EPS);
}
END_TEST

START_TEST(pool_geometry_errors)
{
    struct qpool_geom ok = {.n = 1, .c = 1, .h = 3, .w = 3, .kh = 2, .kw = 2, .sh = 1, .sw = 1};
    struct qpool_geom g = ok;
    ck_assert_int_eq(qpool_geom_finish(&g), 0);
    g = ok, g.kw = 4;                       /* larger than the input */
    ck_assert_int_eq(qpool_geom_finish(&g), -1);
    g = ok, g.sh = 0;
    ck_assert_int_eq(qpool_geom_finish(&g), -1);
    g = ok, g.pt = 2;                       /* a window of padding only */
    ck_assert_int_eq(qpool_geom_finish(&g), -1);
    g = ok, g.kh = 0;
    ck_assert_int_eq(qpool_geom_finish(&g), -1);
    g = ok, g.pr = -1;
    ck_assert_int_eq(qpool_geom_finish(&g), -1);
}
END_TEST

START_TEST(global_avgpool)
{
    static const float x[12] = {1, 2, 3, 4, 5, 9, -1, -1, -1, 0, 0, 0.3f}; /* [2, 2, 3] */
    float y[4];
    qop_global_avgpool(x, 2, 2, 3, y);
    static const double want[4] = {2, 6, -1, 0.1};
    assert_close(y, want, 4, EPS);
}
END_TEST

/* ---- elementwise ----------------------------------------------------------- */

START_TEST(relu)
{
    float x[5] = {-1, 0, 2.5f, -1e-30f, 7};
    qop_relu(x, 5);
    static const double want[5] = {0, 0, 2.5, 0, 7};
    assert_close(x, want, 5, 0);
}
END_TEST

START_TEST(gelu)
{
    float x[4] = {1, -1, 0, 2};
    qop_gelu(x, 4, 0);
    /* x * Phi(x): Phi(1) = 0.8413447461, Phi(2) = 0.9772498681 */
    static const double want[4] = {0.8413447461, -0.1586552539, 0, 1.9544997362};
    assert_close(x, want, 4, 1e-6);
    float t[3] = {1, -1, 0};
    qop_gelu(t, 3, 1);
    /* gelu(x) - gelu(-x) = x for the tanh form too */
    static const double want_t[3] = {0.8411919906, -0.1588080094, 0};
    assert_close(t, want_t, 3, 1e-6);
}
END_TEST

START_TEST(batchnorm)
{
    /* [n 2, c 2, hw 2]; eps 0.01 makes sqrt(var + eps) = 2 and 0.5 */
    float x[8] = {1, 3, 2, 4, -1, 2, 1, 0};
    static const float gamma[2] = {2, 0.25f}, beta[2] = {1, -1};
    static const float mean[2] = {2, 1}, var[2] = {3.99f, 0.24f};
    qop_batchnorm(x, 2, 2, 2, gamma, beta, mean, var, 0.01f);
    /* (x - mean) / sd * gamma + beta */
    static const double want[8] = {0, 2, -0.5, 0.5, -2, 1, -1, -1.5};
    assert_close(x, want, 8, EPS);
}
END_TEST

START_TEST(add)
{
    static const float a[3] = {1, 2, 3}, b[3] = {0.5f, -2, 10};
    float y[3];
    qop_add(a, b, y, 3);
    static const double want[3] = {1.5, 0, 13};
    assert_close(y, want, 3, 0);
}
END_TEST

START_TEST(softmax)
{
    float x[11] = {1, 2, 3, 1000, 1001, 5, 5, 5, 5, -1000, 0};
    qop_softmax(x, 1, 3);
    qop_softmax(x + 3, 1, 2);
    qop_softmax(x + 5, 1, 4);
    qop_softmax(x + 9, 1, 2);
    /* e / sum(e): e^1, e^2, e^3 over 30.19287485; 1/(1+e), e/(1+e) */
    static const double want[11] = {0.0900305732, 0.2447284711, 0.6652409558, 0.2689414214,
                                    0.7310585786, 0.25, 0.25, 0.25, 0.25, 0, 1};
    assert_close(x, want, 11, 1e-6);
    for (int i = 0; i < 11; i++)
        ck_assert(isfinite(x[i]));
    /* rows are independent */
    float r[6] = {1000, 1001, 1, 2, 3, 3};
    qop_softmax(r, 3, 2);
    ck_assert_float_eq_tol(r[1], 0.7310585786, 1e-6);
    ck_assert_float_eq_tol(r[3], 0.7310585786, 1e-6);
    ck_assert_float_eq_tol(r[4], 0.5, 1e-6);
}
END_TEST

/* A NaN from a broken weight must show in the output, not vanish. */
START_TEST(nan_propagates)
{
    float r[3] = {NAN, -1, 1};
    qop_relu(r, 3);
    ck_assert(isnan(r[0]));
    ck_assert_float_eq(r[1], 0);
    float x[4] = {1, NAN, 3, 2}, y[1];
    struct qpool_geom g = {.n = 1, .c = 1, .h = 2, .w = 2, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
    ck_assert_int_eq(qpool_geom_finish(&g), 0);
    qop_maxpool2d(&g, x, y);
    ck_assert(isnan(y[0]));
    x[1] = 0;               /* and a window without one is a plain max */
    qop_maxpool2d(&g, x, y);
    ck_assert_float_eq(y[0], 3);
}
END_TEST

static Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *lin = tcase_create("Linear");
    tcase_add_test(lin, linear_bias);
    tcase_add_test(lin, linear_transposed);
    suite_add_tcase(s, lin);
    TCase *conv = tcase_create("Conv");
    tcase_add_test(conv, conv_basic);
    tcase_add_test(conv, conv_stride_pad);
    tcase_add_test(conv, conv_dilation);
    tcase_add_test(conv, conv_depthwise);
    tcase_add_test(conv, conv_pointwise);
    tcase_add_test(conv, conv_vs_naive);
    tcase_add_test(conv, pad_same_upper);
    suite_add_tcase(s, conv);
    TCase *pool = tcase_create("Pool");
    tcase_add_test(pool, maxpool_padding);
    tcase_add_test(pool, maxpool_ceil_mode);
    tcase_add_test(pool, avgpool_count_include_pad);
    tcase_add_test(pool, avgpool_ceil_window);
    tcase_add_test(pool, global_avgpool);
    suite_add_tcase(s, pool);
    TCase *ew = tcase_create("Elementwise");
    tcase_add_test(ew, relu);
    tcase_add_test(ew, gelu);
    tcase_add_test(ew, batchnorm);
    tcase_add_test(ew, add);
    tcase_add_test(ew, softmax);
    suite_add_tcase(s, ew);
    TCase *lim = tcase_create("Limits");
    tcase_add_test(lim, conv_geometry_errors);
    tcase_add_test(lim, pool_geometry_errors);
    tcase_add_test(lim, nan_propagates);
    suite_add_tcase(s, lim);
    return s;
}

int main(void)
{
    return tu_run(ops_suite());
}
