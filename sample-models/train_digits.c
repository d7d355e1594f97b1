/* train_digits.c — trains the bundled digits-mlp and digits-cnn sample models on the UCI 8x8 digits, deterministically.
 *
 * Usage: train_digits DIGITS_CSV_GZ OUTDIR
 *
 * Reads the digits CSV that Debian's python3-sklearn ships
 * (sklearn/datasets/data/digits.csv.gz: 1797 lines of 64 pixels 0..16 and
 * a label 0..9), splits it 1437 train / 360 test with a seeded shuffle,
 * trains both models with plain-C forward/backward passes and Adam, and
 * writes under OUTDIR:
 *   digits/digits-train.safetensors, digits/digits-test.safetensors
 *   digits-mlp/{model.safetensors,model.json}
 *   digits-cnn/{model.safetensors,model.json}
 * Single-threaded, every sum in a fixed order, no rand(), no libm call
 * whose last bit could vary by CPU in anything that shapes the weights:
 * the same binary writes the same bytes on every run (and gcc and clang
 * builds at -O0..-O3 agree byte for byte).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "quant/error.h"
#include "quant/fsutil.h"
#include "quant/safetensors.h"
#include "quant/sha256.h"

/* Same bytes everywhere: no fused multiply-add, whatever the target.
 * GCC already keeps it off in ISO C mode (-std=c11) and does not know
 * this pragma; clang contracts by default. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define N_SAMPLES 1797
#define N_TEST 360
#define N_TRAIN (N_SAMPLES - N_TEST)
#define IMG 8                      /* images are IMG x IMG */
#define N_PIXELS (IMG * IMG)
#define PIXEL_MAX 16
#define N_CLASSES 10
#define SEED 1998u                 /* the year the data set was published */
#define BATCH 32
#define MAX_LAYERS 16

/* Independent PRNG streams derived from SEED, one per purpose. */
enum {
    STREAM_SPLIT = 1,
    STREAM_MLP = 2,                /* init, then the per-epoch orders */
    STREAM_CNN = 3,
};

/* ---- small helpers (a tool: it may print and exit) ---------------------- */

static void die(const char *fmt, ...) QLAB_PRINTF(1, 2);
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("train_digits: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        die("out of memory");
    return p;
}

static cJSON *jcheck(cJSON *item)
{
    if (!item)
        die("out of memory building JSON");
    return item;
}

/* ---- PRNG: splitmix64 ----------------------------------------------------
 * Tiny, fast, and fully specified here, so the split and the initial
 * weights do not depend on the C library's rand(). */

struct rng {
    uint64_t s;
};

static struct rng rng_new(uint64_t seed, uint64_t stream)
{
    struct rng r = {seed + stream * 0xD1B54A32D192ED03ull};
    return r;
}

static uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) without modulo bias (rejects the short last block). */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x >= limit);
    return (uint32_t)(x % n);
}

/* Uniform in [0, 1) with 24 random bits: exactly representable in float. */
static float rng_unit(struct rng *r)
{
    return (float)(rng_next(r) >> 40) * 0x1p-24f;
}

/* Fisher-Yates shuffle of idx[0..n). */
static void rng_shuffle(struct rng *r, int *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)i + 1);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* ---- data: the digits CSV ------------------------------------------------ */

struct digits {
    uint8_t pixels[N_SAMPLES][N_PIXELS];   /* 0..16, row-major 8x8 */
    uint8_t labels[N_SAMPLES];             /* 0..9 */
};

/* Parses one line "p0,p1,...,p63,label" into pixels and label. */
static void parse_line(const char *path, int lineno, char *line, uint8_t *pixels, uint8_t *label)
{
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    const char *p = line;
    for (int f = 0; f < N_PIXELS + 1; f++) {
        int v = 0, digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (digits == 0 || digits == 4)
            die("%s:%d: field %d is not an integer of at most 3 digits (expected %d comma-separated integers)",
                path, lineno, f + 1, N_PIXELS + 1);
        if (f < N_PIXELS && v > PIXEL_MAX)
            die("%s:%d: pixel %d is %d, outside 0..%d", path, lineno, f + 1, v, PIXEL_MAX);
        if (f == N_PIXELS && v >= N_CLASSES)
            die("%s:%d: label is %d, outside 0..%d", path, lineno, v, N_CLASSES - 1);
        if (f < N_PIXELS)
            pixels[f] = (uint8_t)v;
        else
            *label = (uint8_t)v;
        char want = f < N_PIXELS ? ',' : '\0';
        if (*p != want) {
            char found[32];
            if (*p > ' ' && *p < 0x7f)
                snprintf(found, sizeof found, "'%c'", *p);
            else if (*p)
                snprintf(found, sizeof found, "byte 0x%02x", (unsigned char)*p);
            else
                snprintf(found, sizeof found, "the end of the line");
            die("%s:%d: after field %d expected %s, found %s (need %d comma-separated integers)",
                path, lineno, f + 1, want ? "','" : "the end of the line", found, N_PIXELS + 1);
        }
        if (want)
            p++;
    }
}

static void load_digits(const char *path, struct digits *d)
{
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        die("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    char line[1024];
    int lineno = 0;
    int zerr = Z_OK;
    while (gzgets(gz, line, (int)sizeof line)) {
        lineno++;
        /* a damaged stream still hands back the partial line: report the
         * damage, not the half line */
        const char *msg = gzerror(gz, &zerr);
        if (zerr != Z_OK && zerr != Z_STREAM_END)
            die("%s (near line %d)", msg, lineno);
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n')
            die("%s:%d: line longer than %zu bytes", path, lineno, sizeof line - 2);
        if (lineno > N_SAMPLES)
            die("%s:%d: more than %d lines", path, lineno, N_SAMPLES);
        parse_line(path, lineno, line, d->pixels[lineno - 1], &d->labels[lineno - 1]);
    }
    const char *msg = gzerror(gz, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END)
        die("%s: read error after line %d: %s", path, lineno, msg);
    gzclose(gz);
    if (lineno != N_SAMPLES)
        die("%s: %d lines, expected %d", path, lineno, N_SAMPLES);
}

/* Plain (not stratified) seeded shuffle; each split keeps the file order. */
static void split_digits(int *train, int *test)
{
    int order[N_SAMPLES];
    uint8_t is_test[N_SAMPLES] = {0};
    for (int i = 0; i < N_SAMPLES; i++)
        order[i] = i;
    struct rng r = rng_new(SEED, STREAM_SPLIT);
    rng_shuffle(&r, order, N_SAMPLES);
    for (int i = 0; i < N_TEST; i++)
        is_test[order[i]] = 1;
    int nt = 0, ns = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        if (is_test[i])
            test[ns++] = i;
        else
            train[nt++] = i;
    }
}

/* The x / 16 preprocessing model.json declares (scale 0.0625, offset 0). */
static void preprocess(const uint8_t *pixels, float *x)
{
    for (int i = 0; i < N_PIXELS; i++)
        x[i] = (float)pixels[i] * 0.0625f + 0.0f;
}

/* ---- layers: shapes and parameters -------------------------------------- */

enum lkind { L_CONV3X3, L_RELU, L_MAXPOOL2, L_FLATTEN, L_LINEAR };

struct layer_spec {
    enum lkind kind;
    const char *name;   /* node name; conv/linear: also the tensor prefix */
    int out;            /* conv: output channels; linear: output features */
};

struct layer {
    enum lkind kind;
    const char *name;
    int in_c, in_h, in_w;       /* input per sample; a vector is [n, 1, 1] */
    int out_c, out_h, out_w;
    int n_w, n_b;               /* parameter counts (0 for no parameters) */
    int w_ndim;
    int64_t w_shape[4];         /* conv [oc, ic, 3, 3]; linear [out, in] */
    int64_t b_shape[1];
    char w_name[32], b_name[32];
    float *w, *b;
    double *gw, *gb;            /* gradients summed over the minibatch */
    double *mw, *vw, *mb, *vb;  /* Adam first and second moments */
};

/* Per-sample scratch of the conv backward pass. */
struct conv_scratch {
    float *patch, *dpatch;      /* [H*W][C*9] */
    float *gpad;                /* [C][H+2][W+2] */
    float *gw;                  /* [OC][C*9]: this sample's weight gradient */
};

struct net {
    const char *name;
    int n_layers;
    struct layer layers[MAX_LAYERS];
    /* one sample's activations: act[0] is the input, act[i + 1] the output
     * of layer i; grad[i] is d loss / d act[i] */
    float *act[MAX_LAYERS + 1], *grad[MAX_LAYERS + 1];
    float *pad[MAX_LAYERS];     /* conv: the zero-padded input, kept for backward */
    struct conv_scratch cs;     /* sized for the largest conv layer */
    int *argmax[MAX_LAYERS];    /* maxpool: input index of each output */
    int64_t n_params;
};

static int numel3(int c, int h, int w)
{
    return c * h * w;
}

/* He-uniform: U(-b, b) with b = sqrt(6 / fan_in) keeps ReLU activations'
 * variance steady from layer to layer. Biases start at 0. */
static void init_params(struct layer *L, int fan_in, struct rng *r)
{
    float bound = (float)sqrt(6.0 / fan_in);
    for (int i = 0; i < L->n_w; i++)
        L->w[i] = (2.0f * rng_unit(r) - 1.0f) * bound;
}

static void alloc_params(struct layer *L)
{
    L->w = xcalloc((size_t)L->n_w, sizeof *L->w);
    L->b = xcalloc((size_t)L->n_b, sizeof *L->b);
    L->gw = xcalloc((size_t)L->n_w, sizeof *L->gw);
    L->gb = xcalloc((size_t)L->n_b, sizeof *L->gb);
    L->mw = xcalloc((size_t)L->n_w, sizeof *L->mw);
    L->vw = xcalloc((size_t)L->n_w, sizeof *L->vw);
    L->mb = xcalloc((size_t)L->n_b, sizeof *L->mb);
    L->vb = xcalloc((size_t)L->n_b, sizeof *L->vb);
    snprintf(L->w_name, sizeof L->w_name, "%s.weight", L->name);
    snprintf(L->b_name, sizeof L->b_name, "%s.bias", L->name);
    L->b_shape[0] = L->n_b;
}

static void net_free(struct net *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n_layers; i++) {
        struct layer *L = &n->layers[i];
        free(L->w);
        free(L->b);
        free(L->gw);
        free(L->gb);
        free(L->mw);
        free(L->vw);
        free(L->mb);
        free(L->vb);
        free(n->pad[i]);
        free(n->argmax[i]);
    }
    for (int i = 0; i <= n->n_layers; i++) {
        free(n->act[i]);
        free(n->grad[i]);
    }
    free(n->cs.patch);
    free(n->cs.dpatch);
    free(n->cs.gpad);
    free(n->cs.gw);
    free(n);
}

/* Builds the layers from the spec on a [1, 8, 8] input, inferring every
 * shape, and draws the initial weights from r. */
static struct net *net_new(const char *name, const struct layer_spec *spec, int n_spec, struct rng *r)
{
    if (n_spec > MAX_LAYERS)
        die("%s: %d layers, at most %d", name, n_spec, MAX_LAYERS);
    struct net *n = xcalloc(1, sizeof *n);
    n->name = name;
    n->n_layers = n_spec;
    int c = 1, h = IMG, w = IMG, max_pad = 1, max_patch = 1, max_w = 1;
    n->act[0] = xcalloc((size_t)numel3(c, h, w), sizeof(float));
    n->grad[0] = xcalloc((size_t)numel3(c, h, w), sizeof(float));
    for (int i = 0; i < n_spec; i++) {
        struct layer *L = &n->layers[i];
        L->kind = spec[i].kind;
        L->name = spec[i].name;
        L->in_c = c, L->in_h = h, L->in_w = w;
        switch (L->kind) {
        case L_CONV3X3:
            L->out_c = spec[i].out, L->out_h = h, L->out_w = w;
            L->n_w = spec[i].out * c * 9, L->n_b = spec[i].out;
            alloc_params(L);
            L->w_ndim = 4;
            L->w_shape[0] = spec[i].out, L->w_shape[1] = c, L->w_shape[2] = 3, L->w_shape[3] = 3;
            init_params(L, c * 9, r);
            n->pad[i] = xcalloc((size_t)numel3(c, h + 2, w + 2), sizeof(float));
            if (numel3(c, h + 2, w + 2) > max_pad)
                max_pad = numel3(c, h + 2, w + 2);
            if (h * w * c * 9 > max_patch)
                max_patch = h * w * c * 9;
            if (L->n_w > max_w)
                max_w = L->n_w;
            break;
        case L_RELU:
            L->out_c = c, L->out_h = h, L->out_w = w;
            break;
        case L_MAXPOOL2:
            if (h % 2 || w % 2)
                die("%s: %s: odd input %dx%d", name, L->name, h, w);
            L->out_c = c, L->out_h = h / 2, L->out_w = w / 2;
            n->argmax[i] = xcalloc((size_t)numel3(c, h / 2, w / 2), sizeof(int));
            break;
        case L_FLATTEN:
            L->out_c = c * h * w, L->out_h = 1, L->out_w = 1;
            break;
        case L_LINEAR:
            if (h != 1 || w != 1)
                die("%s: %s: linear needs a flat input", name, L->name);
            L->out_c = spec[i].out, L->out_h = 1, L->out_w = 1;
            L->n_w = spec[i].out * c, L->n_b = spec[i].out;
            alloc_params(L);
            L->w_ndim = 2;
            L->w_shape[0] = spec[i].out, L->w_shape[1] = c;
            init_params(L, c, r);
            break;
        }
        c = L->out_c, h = L->out_h, w = L->out_w;
        n->act[i + 1] = xcalloc((size_t)numel3(c, h, w), sizeof(float));
        n->grad[i + 1] = xcalloc((size_t)numel3(c, h, w), sizeof(float));
        n->n_params += L->n_w + L->n_b;
    }
    if (numel3(c, h, w) != N_CLASSES)
        die("%s: the last layer gives %d outputs, not %d", name, numel3(c, h, w), N_CLASSES);
    n->cs.patch = xcalloc((size_t)max_patch, sizeof(float));
    n->cs.dpatch = xcalloc((size_t)max_patch, sizeof(float));
    n->cs.gpad = xcalloc((size_t)max_pad, sizeof(float));
    n->cs.gw = xcalloc((size_t)max_w, sizeof(float));
    return n;
}

/* ---- layers: forward ------------------------------------------------------
 * Convolutions run in float as "out row += w * input row" (each output's
 * additions happen in one fixed order, so vectorizing changes nothing);
 * dot products of the linear layers and the gradient sums over a
 * minibatch are accumulated in double. */

/* y[0..n) += a * x[0..n), in blocks of 4 so compilers vectorize it at -O2
 * (each y[i] gets one multiply and one add either way: same bytes). */
static inline void axpy(float *restrict y, const float *restrict x, float a, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++)
            y[i + j] += a * x[i + j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void conv_forward(const struct layer *L, const float *in, float *pad, float *out)
{
    int C = L->in_c, H = L->in_h, W = L->in_w, PH = H + 2, PW = W + 2;
    memset(pad, 0, (size_t)numel3(C, PH, PW) * sizeof *pad);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            memcpy(pad + (c * PH + y + 1) * PW + 1, in + (c * H + y) * W, (size_t)W * sizeof *in);
    for (int oc = 0; oc < L->out_c; oc++) {
        float *o = out + oc * H * W;
        for (int i = 0; i < H * W; i++)
            o[i] = L->b[oc];
        for (int ic = 0; ic < C; ic++)
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) {
                    float wv = L->w[((oc * C + ic) * 3 + ky) * 3 + kx];
                    for (int y = 0; y < H; y++)
                        axpy(o + y * W, pad + (ic * PH + y + ky) * PW + kx, wv, W);
                }
    }
}

static void relu_forward(const struct layer *L, const float *in, float *out)
{
    int n = numel3(L->in_c, L->in_h, L->in_w);
    for (int i = 0; i < n; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

/* 2x2 windows, stride 2; the first maximum in scan order wins a tie. */
static void maxpool_forward(const struct layer *L, const float *in, float *out, int *arg)
{
    int H = L->in_h, W = L->in_w, OH = L->out_h, OW = L->out_w;
    for (int c = 0; c < L->in_c; c++)
        for (int y = 0; y < OH; y++)
            for (int x = 0; x < OW; x++) {
                int best = (c * H + 2 * y) * W + 2 * x;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        int j = (c * H + 2 * y + dy) * W + 2 * x + dx;
                        if (in[j] > in[best])
                            best = j;
                    }
                int o = (c * OH + y) * OW + x;
                out[o] = in[best];
                arg[o] = best;
            }
}

static void linear_forward(const struct layer *L, const float *in, float *out)
{
    int I = L->in_c;
    for (int o = 0; o < L->out_c; o++) {
        const float *wr = L->w + o * I;
        double acc = L->b[o];
        for (int i = 0; i < I; i++)
            acc += (double)wr[i] * in[i];
        out[o] = (float)acc;
    }
}

/* Runs one preprocessed sample (already in act[0]); returns the logits. */
static const float *net_forward(struct net *n)
{
    for (int i = 0; i < n->n_layers; i++) {
        const struct layer *L = &n->layers[i];
        const float *in = n->act[i];
        float *out = n->act[i + 1];
        switch (L->kind) {
        case L_CONV3X3:
            conv_forward(L, in, n->pad[i], out);
            break;
        case L_RELU:
            relu_forward(L, in, out);
            break;
        case L_MAXPOOL2:
            maxpool_forward(L, in, out, n->argmax[i]);
            break;
        case L_FLATTEN:
            memcpy(out, in, (size_t)numel3(L->in_c, L->in_h, L->in_w) * sizeof *out);
            break;
        case L_LINEAR:
            linear_forward(L, in, out);
            break;
        }
    }
    return n->act[n->n_layers];
}

/* ---- layers: backward ------------------------------------------------------
 * Each takes d loss / d output (gout) and adds the parameter gradients to
 * gw/gb; gin (d loss / d input) is skipped when NULL (the first layer). */

/* The 3x3 patch under each output position, [H*W][C*9], from the padded
 * input: patch[p][ic*9 + ky*3 + kx] = pad[ic][y + ky][x + kx]. */
static void conv_patches(int C, int H, int W, const float *pad, float *patch)
{
    int PH = H + 2, PW = W + 2, C9 = C * 9;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float *row = patch + (y * W + x) * C9;
            for (int ic = 0; ic < C; ic++)
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        row[ic * 9 + ky * 3 + kx] = pad[(ic * PH + y + ky) * PW + x + kx];
        }
}

/* With the weights as [OC][C*9] rows and the patches as [H*W][C*9] rows:
 *   d weight[oc]   = sum_p gout[oc][p] * patch[p]      (sum over one sample in float,
 *                                                       over the batch in double)
 *   d patch[p]     = sum_oc gout[oc][p] * weight[oc]   (then scattered back to the input)
 * Both are sums of whole rows, which vectorize; a zero gradient (behind a
 * ReLU, most of them) is skipped. */
static void conv_backward(struct layer *L, const float *pad, const float *gout,
                          struct conv_scratch *cs, float *gin)
{
    int C = L->in_c, H = L->in_h, W = L->in_w, HW = H * W, C9 = C * 9, PH = H + 2, PW = W + 2;
    conv_patches(C, H, W, pad, cs->patch);
    memset(cs->gw, 0, (size_t)L->n_w * sizeof *cs->gw);
    for (int oc = 0; oc < L->out_c; oc++) {
        const float *g = gout + oc * HW;
        double gb = 0.0;
        for (int p = 0; p < HW; p++) {
            gb += g[p];
            if (g[p] != 0.0f)
                axpy(cs->gw + oc * C9, cs->patch + p * C9, g[p], C9);
        }
        L->gb[oc] += gb;
    }
    for (int i = 0; i < L->n_w; i++)
        L->gw[i] += cs->gw[i];
    if (!gin)
        return;

    memset(cs->dpatch, 0, (size_t)HW * C9 * sizeof *cs->dpatch);
    for (int p = 0; p < HW; p++)
        for (int oc = 0; oc < L->out_c; oc++) {
            float gv = gout[oc * HW + p];
            if (gv != 0.0f)
                axpy(cs->dpatch + p * C9, L->w + oc * C9, gv, C9);
        }
    /* scatter the patch gradients back onto the padded input, then crop */
    float *gpad = cs->gpad;
    memset(gpad, 0, (size_t)numel3(C, PH, PW) * sizeof *gpad);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const float *row = cs->dpatch + (y * W + x) * C9;
            for (int ic = 0; ic < C; ic++)
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                        gpad[(ic * PH + y + ky) * PW + x + kx] += row[ic * 9 + ky * 3 + kx];
        }
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            memcpy(gin + (c * H + y) * W, gpad + (c * PH + y + 1) * PW + 1, (size_t)W * sizeof *gin);
}

static void relu_backward(const struct layer *L, const float *out, const float *gout, float *gin)
{
    int n = numel3(L->in_c, L->in_h, L->in_w);
    for (int i = 0; i < n; i++)
        gin[i] = out[i] > 0.0f ? gout[i] : 0.0f;
}

static void maxpool_backward(const struct layer *L, const int *arg, const float *gout, float *gin)
{
    memset(gin, 0, (size_t)numel3(L->in_c, L->in_h, L->in_w) * sizeof *gin);
    int n = numel3(L->out_c, L->out_h, L->out_w);
    for (int o = 0; o < n; o++)
        gin[arg[o]] += gout[o];
}

static void linear_backward(struct layer *L, const float *in, const float *gout, float *gin)
{
    int I = L->in_c, O = L->out_c;
    for (int o = 0; o < O; o++) {
        double g = gout[o];
        L->gb[o] += g;
        if (g == 0.0)
            continue;
        double *gw = L->gw + o * I;
        for (int i = 0; i < I; i++)
            gw[i] += g * in[i];
    }
    if (!gin)
        return;
    for (int i = 0; i < I; i++) {
        double acc = 0.0;
        for (int o = 0; o < O; o++)
            acc += (double)L->w[o * I + i] * gout[o];
        gin[i] = (float)acc;
    }
}

/* Backpropagates grad[n_layers] (d loss / d logits) through every layer. */
static void net_backward(struct net *n)
{
    for (int i = n->n_layers - 1; i >= 0; i--) {
        struct layer *L = &n->layers[i];
        const float *gout = n->grad[i + 1];
        float *gin = i > 0 ? n->grad[i] : NULL;
        switch (L->kind) {
        case L_CONV3X3:
            conv_backward(L, n->pad[i], gout, &n->cs, gin);
            break;
        case L_RELU:
            if (gin)
                relu_backward(L, n->act[i + 1], gout, gin);
            break;
        case L_MAXPOOL2:
            if (gin)
                maxpool_backward(L, n->argmax[i], gout, gin);
            break;
        case L_FLATTEN:
            if (gin)
                memcpy(gin, gout, (size_t)numel3(L->in_c, L->in_h, L->in_w) * sizeof *gin);
            break;
        case L_LINEAR:
            linear_backward(L, n->act[i], gout, gin);
            break;
        }
    }
}

/* ---- loss ------------------------------------------------------------------ */

/* e^x for x <= 0 from + - * / alone. libm's exp may pick a different code
 * path per CPU (glibc has an FMA variant) and differ in the last bit;
 * this one gives the same bits everywhere, so the trained weights do too.
 * x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in two so k ln2 is exact),
 * e^r by its Taylor series to r^13 (the next term is below 1e-17), then
 * scaled by 2^k exactly. Error about 1 ulp, ample for softmax gradients. */
static double det_exp(double x)
{
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    if (x < -700.0)
        return 0.0;             /* below 1e-304: nothing to a softmax */
    double k = floor(x / 0.69314718055994530942 + 0.5);
    double r = (x - k * ln2_hi) - k * ln2_lo;
    double p = 1.0;
    for (int i = 13; i >= 1; i--)
        p = 1.0 + p * r / i;    /* Horner form of sum r^i / i! */
    return ldexp(p, (int)k);
}

/* Lowest index of the largest logit. */
static int argmax10(const float *z)
{
    int best = 0;
    for (int i = 1; i < N_CLASSES; i++)
        if (z[i] > z[best])
            best = i;
    return best;
}

/* Cross-entropy -ln softmax(z)[y] in double; writes d loss / d z =
 * softmax(z) - onehot(y) to g. */
static double softmax_xent(const float *z, int y, float *g)
{
    double mx = z[0];
    for (int i = 1; i < N_CLASSES; i++)
        if (z[i] > mx)
            mx = z[i];
    double e[N_CLASSES], s = 0.0;
    for (int i = 0; i < N_CLASSES; i++) {
        e[i] = det_exp((double)z[i] - mx);
        s += e[i];
    }
    for (int i = 0; i < N_CLASSES; i++)
        g[i] = (float)(e[i] / s - (i == y ? 1.0 : 0.0));
    return mx + log(s) - (double)z[y];
}

/* ---- optimizer: Adam ---------------------------------------------------- */

struct adam {
    double lr, beta1, beta2, eps;
    double beta1_t, beta2_t;    /* beta^t by repeated products, not pow() */
};

static void adam_update(const struct adam *a, float *p, double *g, double *m, double *v,
                        int n, double inv_batch)
{
    double c1 = 1.0 - a->beta1_t, c2 = 1.0 - a->beta2_t;
    for (int i = 0; i < n; i++) {
        double gi = g[i] * inv_batch;
        m[i] = a->beta1 * m[i] + (1.0 - a->beta1) * gi;
        v[i] = a->beta2 * v[i] + (1.0 - a->beta2) * gi * gi;
        p[i] = (float)(p[i] - a->lr * (m[i] / c1) / (sqrt(v[i] / c2) + a->eps));
        g[i] = 0.0;
    }
}

static void adam_step(struct adam *a, struct net *n, int batch)
{
    a->beta1_t *= a->beta1;
    a->beta2_t *= a->beta2;
    for (int i = 0; i < n->n_layers; i++) {
        struct layer *L = &n->layers[i];
        if (!L->n_w)
            continue;
        adam_update(a, L->w, L->gw, L->mw, L->vw, L->n_w, 1.0 / batch);
        adam_update(a, L->b, L->gb, L->mb, L->vb, L->n_b, 1.0 / batch);
    }
}

/* ---- training ------------------------------------------------------------ */

struct model_spec {
    const char *name, *description;
    const struct layer_spec *layers;
    int n_layers;
    int epochs;
    double lr;
    uint64_t stream;
};

static const struct layer_spec mlp_layers[] = {
    {L_FLATTEN, "flatten", 0},
    {L_LINEAR, "fc1", 64},
    {L_RELU, "relu1", 0},
    {L_LINEAR, "fc2", 32},
    {L_RELU, "relu2", 0},
    {L_LINEAR, "fc3", N_CLASSES},
};

static const struct layer_spec cnn_layers[] = {
    {L_CONV3X3, "conv1", 16},
    {L_RELU, "relu1", 0},
    {L_CONV3X3, "conv2", 32},
    {L_RELU, "relu2", 0},
    {L_MAXPOOL2, "pool1", 0},
    {L_CONV3X3, "conv3", 32},
    {L_RELU, "relu3", 0},
    {L_MAXPOOL2, "pool2", 0},
    {L_FLATTEN, "flatten", 0},
    {L_LINEAR, "fc", N_CLASSES},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const struct model_spec models[] = {
    {"digits-mlp",
     "MLP 64-64-32-10 (ReLU) on the 8x8 UCI digits; trained by sample-models/train_digits.c",
     mlp_layers, COUNT(mlp_layers), 60, 1e-3, STREAM_MLP},
    {"digits-cnn",
     "CNN conv16-conv32-pool-conv32-pool-fc10 (3x3, ReLU) on the 8x8 UCI digits; trained by sample-models/train_digits.c",
     cnn_layers, COUNT(cnn_layers), 30, 1e-3, STREAM_CNN},
};

/* Correct answers of the float model on the given samples. */
static int evaluate(struct net *n, const struct digits *d, const int *idx, int count)
{
    int correct = 0;
    for (int s = 0; s < count; s++) {
        preprocess(d->pixels[idx[s]], n->act[0]);
        correct += argmax10(net_forward(n)) == d->labels[idx[s]];
    }
    return correct;
}

static void train(struct net *n, const struct model_spec *ms, const struct digits *d,
                  const int *train_idx, struct rng *r)
{
    struct adam a = {ms->lr, 0.9, 0.999, 1e-8, 1.0, 1.0};
    int order[N_TRAIN];
    memcpy(order, train_idx, sizeof order);
    for (int epoch = 1; epoch <= ms->epochs; epoch++) {
        rng_shuffle(r, order, N_TRAIN);
        double loss = 0.0;
        int correct = 0;
        for (int start = 0; start < N_TRAIN; start += BATCH) {
            int bs = N_TRAIN - start < BATCH ? N_TRAIN - start : BATCH;
            for (int s = start; s < start + bs; s++) {
                int k = order[s];
                preprocess(d->pixels[k], n->act[0]);
                const float *z = net_forward(n);
                correct += argmax10(z) == d->labels[k];
                loss += softmax_xent(z, d->labels[k], n->grad[n->n_layers]);
                net_backward(n);
            }
            adam_step(&a, n, bs);
        }
        printf("%s  epoch %2d/%d  loss %.4f  train acc %.2f %% (during the epoch)\n",
               ms->name, epoch, ms->epochs, loss / N_TRAIN, 100.0 * correct / N_TRAIN);
        fflush(stdout);
    }
}

/* ---- export ------------------------------------------------------------- */

static void write_dataset(const char *path, const struct digits *d, const int *idx, int count,
                          const char *split, const char *csv_sha)
{
    uint8_t *inputs = xcalloc((size_t)count * N_PIXELS, 1);
    uint8_t *labels = xcalloc((size_t)count, 1);
    for (int s = 0; s < count; s++) {
        memcpy(inputs + (size_t)s * N_PIXELS, d->pixels[idx[s]], N_PIXELS);
        labels[s] = d->labels[idx[s]];
    }
    const int64_t in_shape[4] = {count, 1, IMG, IMG}, lab_shape[1] = {count};
    const struct st_write_tensor t[2] = {
        {"inputs", QDT_U8, 4, in_shape, inputs},
        {"labels", QDT_U8, 1, lab_shape, labels},
    };
    char seed[32], split_desc[256], sha[65];
    snprintf(seed, sizeof seed, "%u", SEED);
    snprintf(sha, sizeof sha, "%s", csv_sha);
    snprintf(split_desc, sizeof split_desc,
             "%s: %d of %d samples; plain shuffle (splitmix64 Fisher-Yates, seed %u), "
             "the first %d shuffled samples are the test set; file order kept",
             split, count, N_SAMPLES, SEED, N_TEST);
    const struct st_meta meta[] = {
        {"source", "Debian python3-sklearn sklearn/datasets/data/digits.csv.gz: UCI Optical "
                   "Recognition of Handwritten Digits (E. Alpaydin, C. Kaynak)"},
        {"source_sha256", sha},
        {"license", "BSD-3-Clause"},
        {"split", split_desc},
        {"seed", seed},
        {"inputs", "raw pixel counts 0..16 (8x8 blocks of a 32x32 bitmap), [N, 1, 8, 8]"},
        {"trainer", "sample-models/train_digits.c"},
    };
    qerr err;
    if (st_write(path, t, 2, meta, COUNT(meta), &err) < 0)
        die("%s", err.msg);
    free(inputs);
    free(labels);
}

static void write_weights(const char *path, const struct net *n, const struct model_spec *ms,
                          int train_ok, int test_ok)
{
    struct st_write_tensor t[2 * MAX_LAYERS];
    int nt = 0;
    for (int i = 0; i < n->n_layers; i++) {
        const struct layer *L = &n->layers[i];
        if (!L->n_w)
            continue;
        t[nt++] = (struct st_write_tensor){L->w_name, QDT_F32, L->w_ndim, L->w_shape, L->w};
        t[nt++] = (struct st_write_tensor){L->b_name, QDT_F32, 1, L->b_shape, L->b};
    }
    char seed[32], epochs[32], train_acc[64], test_acc[64], opt[128];
    snprintf(seed, sizeof seed, "%u", SEED);
    snprintf(epochs, sizeof epochs, "%d", ms->epochs);
    snprintf(train_acc, sizeof train_acc, "%.2f %% (%d/%d)", 100.0 * train_ok / N_TRAIN, train_ok, N_TRAIN);
    snprintf(test_acc, sizeof test_acc, "%.2f %% (%d/%d)", 100.0 * test_ok / N_TEST, test_ok, N_TEST);
    snprintf(opt, sizeof opt, "Adam lr %g betas 0.9 0.999 eps 1e-8, batch %d, cross-entropy, He-uniform init",
             ms->lr, BATCH);
    const struct st_meta meta[] = {
        {"format", "pt"},
        {"trainer", "sample-models/train_digits.c"},
        {"seed", seed},
        {"epochs", epochs},
        {"optimizer", opt},
        {"preprocessing", "x / 16 (scale 0.0625, offset 0)"},
        {"train_accuracy", train_acc},
        {"test_accuracy", test_acc},
        {"dataset", "../digits/digits-test.safetensors"},
    };
    qerr err;
    if (st_write(path, t, nt, meta, COUNT(meta), &err) < 0)
        die("%s", err.msg);
}

static cJSON *graph_node(const struct layer *L)
{
    cJSON *o = jcheck(cJSON_CreateObject());
    switch (L->kind) {
    case L_CONV3X3:
        jcheck(cJSON_AddStringToObject(o, "op", "conv2d"));
        jcheck(cJSON_AddStringToObject(o, "name", L->name));
        jcheck(cJSON_AddStringToObject(o, "weight", L->w_name));
        jcheck(cJSON_AddStringToObject(o, "bias", L->b_name));
        jcheck(cJSON_AddNumberToObject(o, "stride", 1));
        jcheck(cJSON_AddNumberToObject(o, "padding", 1));
        break;
    case L_RELU:
        jcheck(cJSON_AddStringToObject(o, "op", "relu"));
        jcheck(cJSON_AddStringToObject(o, "name", L->name));
        break;
    case L_MAXPOOL2:
        jcheck(cJSON_AddStringToObject(o, "op", "maxpool2d"));
        jcheck(cJSON_AddStringToObject(o, "name", L->name));
        jcheck(cJSON_AddNumberToObject(o, "kernel", 2));
        jcheck(cJSON_AddNumberToObject(o, "stride", 2));
        break;
    case L_FLATTEN:
        jcheck(cJSON_AddStringToObject(o, "op", "flatten"));
        jcheck(cJSON_AddStringToObject(o, "name", L->name));
        break;
    case L_LINEAR:
        jcheck(cJSON_AddStringToObject(o, "op", "linear"));
        jcheck(cJSON_AddStringToObject(o, "name", L->name));
        jcheck(cJSON_AddStringToObject(o, "weight", L->w_name));
        jcheck(cJSON_AddStringToObject(o, "bias", L->b_name));
        break;
    }
    return o;
}

static void write_model_json(const char *path, const struct net *n, const struct model_spec *ms)
{
    cJSON *root = jcheck(cJSON_CreateObject());
    jcheck(cJSON_AddNumberToObject(root, "qlab_model", 1));
    jcheck(cJSON_AddStringToObject(root, "name", ms->name));
    jcheck(cJSON_AddStringToObject(root, "description", ms->description));
    cJSON *weights = jcheck(cJSON_AddArrayToObject(root, "weights"));
    cJSON_AddItemToArray(weights, jcheck(cJSON_CreateString("model.safetensors")));

    cJSON *input = jcheck(cJSON_AddObjectToObject(root, "input"));
    const int shape[3] = {1, IMG, IMG};
    const double scale[1] = {1.0 / PIXEL_MAX}, offset[1] = {0.0};
    cJSON_AddItemToObject(input, "shape", jcheck(cJSON_CreateIntArray(shape, 3)));
    cJSON_AddItemToObject(input, "scale", jcheck(cJSON_CreateDoubleArray(scale, 1)));
    cJSON_AddItemToObject(input, "offset", jcheck(cJSON_CreateDoubleArray(offset, 1)));

    cJSON *classes = jcheck(cJSON_AddArrayToObject(root, "classes"));
    for (int c = 0; c < N_CLASSES; c++) {
        char s[16];
        snprintf(s, sizeof s, "%d", c);
        cJSON_AddItemToArray(classes, jcheck(cJSON_CreateString(s)));
    }
    jcheck(cJSON_AddStringToObject(root, "dataset", "../digits/digits-test.safetensors"));

    cJSON *graph = jcheck(cJSON_AddArrayToObject(root, "graph"));
    for (int i = 0; i < n->n_layers; i++)
        cJSON_AddItemToArray(graph, graph_node(&n->layers[i]));
    jcheck(cJSON_AddStringToObject(root, "output", n->layers[n->n_layers - 1].name));

    char *text = cJSON_Print(root);
    if (!text)
        die("out of memory printing JSON");
    size_t len = strlen(text);
    char *buf = xcalloc(len + 2, 1);
    memcpy(buf, text, len);
    buf[len] = '\n';
    qerr err;
    if (qfile_write_atomic(path, buf, len + 1, &err) < 0)
        die("%s", err.msg);
    free(buf);
    cJSON_free(text);
    cJSON_Delete(root);
}

static char *join(const char *dir, const char *rel)
{
    char *p = qpath_join(dir, rel);
    if (!p)
        die("out of memory");
    return p;
}

static void make_dir(const char *dir, const char *rel)
{
    char *p = join(dir, rel);
    qerr err;
    if (qmkdir_p(p, &err) < 0)
        die("%s", err.msg);
    free(p);
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: train_digits DIGITS_CSV_GZ OUTDIR\n"
                        "  e.g. train_digits ../shared/data/digits/digits.csv.gz sample-models\n");
        return 2;
    }
    const char *csv = argv[1], *outdir = argv[2];

    struct digits *d = xcalloc(1, sizeof *d);
    load_digits(csv, d);
    char csv_sha[65];
    qerr err;
    if (sha256_file_hex(csv, csv_sha, &err) < 0)
        die("%s", err.msg);
    int train_idx[N_TRAIN], test_idx[N_TEST];
    split_digits(train_idx, test_idx);
    printf("data: %s: %d samples, %d train / %d test (seed %u)\n", csv, N_SAMPLES, N_TRAIN, N_TEST, SEED);

    make_dir(outdir, "digits");
    char *p = join(outdir, "digits/digits-train.safetensors");
    write_dataset(p, d, train_idx, N_TRAIN, "train", csv_sha);
    free(p);
    p = join(outdir, "digits/digits-test.safetensors");
    write_dataset(p, d, test_idx, N_TEST, "test", csv_sha);
    free(p);

    int test_ok[COUNT(models)];
    int64_t n_params[COUNT(models)];
    for (int m = 0; m < COUNT(models); m++) {
        const struct model_spec *ms = &models[m];
        struct rng r = rng_new(SEED, ms->stream);
        struct net *n = net_new(ms->name, ms->layers, ms->n_layers, &r);
        n_params[m] = n->n_params;
        printf("%s: %lld parameters, %d epochs\n", ms->name, (long long)n->n_params, ms->epochs);
        train(n, ms, d, train_idx, &r);
        int train_ok = evaluate(n, d, train_idx, N_TRAIN);
        test_ok[m] = evaluate(n, d, test_idx, N_TEST);
        printf("%s: float train accuracy %d/%d = %.2f %%, test accuracy %d/%d = %.2f %%\n",
               ms->name, train_ok, N_TRAIN, 100.0 * train_ok / N_TRAIN,
               test_ok[m], N_TEST, 100.0 * test_ok[m] / N_TEST);

        make_dir(outdir, ms->name);
        char rel[128];
        snprintf(rel, sizeof rel, "%s/model.safetensors", ms->name);
        p = join(outdir, rel);
        write_weights(p, n, ms, train_ok, test_ok[m]);
        free(p);
        snprintf(rel, sizeof rel, "%s/model.json", ms->name);
        p = join(outdir, rel);
        write_model_json(p, n, ms);
        free(p);
        net_free(n);
    }

    printf("summary (float, %d test samples):\n", N_TEST);
    for (int m = 0; m < COUNT(models); m++)
        printf("  %-11s %6lld params  test %d/%d = %.2f %%\n", models[m].name,
               (long long)n_params[m], test_ok[m], N_TEST, 100.0 * test_ok[m] / N_TEST);
    free(d);
    return 0;
}
