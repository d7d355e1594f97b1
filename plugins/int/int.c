/* int.c — the built-in "int" plugin: uniform affine integer quantization of weights.
 *
 * Scheme "int", parameters (in this order):
 *   bits         INT 2..8, default 8      bits per weight code
 *   symmetric    BOOL, default true       symmetric around zero (no zero point)
 *   granularity  ENUM tensor|channel|group, default channel
 *   group        INT 1..1048576, default 128: G for granularity=group
 *
 * Groups. A quantization group is the whole tensor (tensor), one row, i.e.
 * one output channel (channel), or G consecutive elements of a row (group;
 * the last group of a row is shorter when cols % G != 0). Each group has
 * its own scale (and zero point).
 *
 * Symmetric:  qmax = 2^(bits-1) - 1, scale = max|x| / qmax,
 *             q = clamp(round(x / scale), -qmax, qmax), x' = q * scale.
 *             (The restricted range: -2^(bits-1) is never used, so the grid
 *             is symmetric and zero needs no zero point.)
 * Asymmetric: lo = min(min x, 0), hi = max(max x, 0) (zero stays exactly
 *             representable, as PyTorch's MinMaxObserver does),
 *             scale = (hi - lo) / (2^bits - 1),
 *             z = clamp(round(-lo / scale), 0, 2^bits - 1),
 *             q = clamp(round(x / scale) + z, 0, 2^bits - 1), x' = (q - z) * scale.
 * round is round-half-to-even (nearbyintf in the default rounding mode) and
 * all of it is float32 arithmetic, so results are bit-reproducible. Note
 * x / scale is a true division: PyTorch's quantize_val multiplies by a
 * float 1/scale instead, which can land on the other side of a tie (for
 * scale = fl(3.25/3), 1.625/scale is 1.5 but 1.625*(1/scale) is
 * 1.49999988); the tests pin the division. A group whose scale is 0 (all zeros,
 * or so tiny the scale underflows) dequantizes to zeros; no division by a
 * zero scale is ever made. Non-finite inputs are refused with an error.
 *
 * Storage: `bits` per element, plus per group a float32 scale and, when
 * asymmetric, a zero point of `bits` bits:
 *   size_bits = n*bits + groups*(32 + (symmetric ? 0 : bits)),
 *   groups = 1 (tensor), rows (channel) or rows*ceil(cols/G) (group);
 * an empty tensor stores nothing (0 bits).
 *
 * No global state: configure allocates the handle; quantize only reads it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab_plugin.h"

/* ---- parameters and handle ---------------------------------------------- */

enum int_param { P_BITS, P_SYMMETRIC, P_GRANULARITY, P_GROUP, P_COUNT };
enum int_gran { G_TENSOR, G_CHANNEL, G_GROUP };

static const char *const gran_choices[] = {"tensor", "channel", "group", NULL};

static const struct qlab_param int_params[P_COUNT] = {
    [P_BITS] = {.name = "bits", .type = QLAB_PARAM_INT, .help = "bits per weight code",
                .min = 2, .max = 8, .def = 8},
    [P_SYMMETRIC] = {.name = "symmetric", .type = QLAB_PARAM_BOOL,
                     .help = "symmetric around zero (no zero point)", .def = 1},
    [P_GRANULARITY] = {.name = "granularity", .type = QLAB_PARAM_ENUM,
                       .help = "one scale per tensor, per output channel (row) or per group "
                               "of G along the input dimension",
                       .def = G_CHANNEL, .choices = gran_choices},
    [P_GROUP] = {.name = "group", .type = QLAB_PARAM_INT,
                 .help = "group size G along the input dimension (granularity=group)",
                 .min = 1, .max = 1048576, .def = 128},
};

struct int_cfg {
    int bits;            /* 2..8 */
    int symmetric;       /* 0 or 1 */
    enum int_gran gran;
    int64_t group;       /* G, elements; used when gran == G_GROUP */
};

/* How often (in elements) the cancel callback is asked. */
#define CANCEL_EVERY 65536

static int int_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    /* The host checked types and ranges; check again, cheaply, so a
     * direct caller cannot drive the shifts below out of range. */
    if (v[P_BITS].i < 2 || v[P_BITS].i > 8 || v[P_GRANULARITY].i < 0 ||
        v[P_GRANULARITY].i > G_GROUP || v[P_GROUP].i < 1) {
        snprintf(err, err_size, "parameter values out of range");
        return -1;
    }
    struct int_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->bits = (int)v[P_BITS].i;
    c->symmetric = v[P_SYMMETRIC].i != 0;
    c->gran = (enum int_gran)v[P_GRANULARITY].i;
    c->group = v[P_GROUP].i;
    *handle = c;
    return 0;
}

static void int_release(void *handle)
{
    free(handle);
}

/* ---- size accounting ---------------------------------------------------- */

static int int_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                         char *err, size_t err_size)
{
    const struct int_cfg *c = handle;
    if (rows < 0 || cols < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)rows, (long long)cols);
        return -1;
    }
    if (rows == 0 || cols == 0) {
        *bits = 0;
        return 0;
    }
    uint64_t r = (uint64_t)rows, n, groups;
    if (__builtin_mul_overflow(r, (uint64_t)cols, &n))
        goto too_big;
    switch (c->gran) {
    case G_TENSOR: groups = 1; break;
    case G_CHANNEL: groups = r; break;
    default: {
        uint64_t per_row = ((uint64_t)cols + (uint64_t)c->group - 1) / (uint64_t)c->group;
        if (__builtin_mul_overflow(r, per_row, &groups))
            goto too_big;
    }
    }
    uint64_t code_bits, group_bits, total;
    uint64_t per_group = 32u + (c->symmetric ? 0u : (uint64_t)c->bits);
    if (__builtin_mul_overflow(n, (uint64_t)c->bits, &code_bits) ||
        __builtin_mul_overflow(groups, per_group, &group_bits) ||
        __builtin_add_overflow(code_bits, group_bits, &total))
        goto too_big;
    *bits = total;
    return 0;
too_big:
    snprintf(err, err_size, "tensor %lld x %lld is too large to count in bits",
             (long long)rows, (long long)cols);
    return -1;
}

/* ---- quantization ------------------------------------------------------- */

/* One group's grid: x' = (clamp(round(x / scale) + zero, qlo, qhi) - zero) * scale. */
struct grid {
    float scale;
    float zero;     /* zero point; 0 when symmetric */
    float qlo, qhi; /* code range */
};

/* min and max of x[0..n-1]; fails at the first non-finite value (*bad = its index). */
static int minmax(const float *x, int64_t n, float *lo, float *hi, int64_t *bad)
{
    float mn = x[0], mx = x[0];
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            *bad = i;
            return -1;
        }
        mn = fminf(mn, x[i]);
        mx = fmaxf(mx, x[i]);
    }
    *lo = mn;
    *hi = mx;
    return 0;
}

static int make_grid(const struct int_cfg *c, float lo, float hi, struct grid *g)
{
    if (c->symmetric) {
        float qmax = (float)((1 << (c->bits - 1)) - 1);
        float amax = fmaxf(fabsf(lo), fabsf(hi));
        g->scale = amax / qmax;
        g->zero = 0;
        g->qlo = -qmax;
        g->qhi = qmax;
    } else {
        float levels = (float)((1 << c->bits) - 1);
        lo = fminf(lo, 0.0f);
        hi = fmaxf(hi, 0.0f);
        g->scale = (hi - lo) / levels;
        g->zero = 0;
        if (g->scale > 0)
            g->zero = fminf(fmaxf(nearbyintf(-lo / g->scale), 0.0f), levels);
        g->qlo = 0;
        g->qhi = levels;
    }
    /* The widest dequantized value must stay a float (only ranges near
     * FLT_MAX can break this). */
    float reach = fmaxf(g->zero - g->qlo, g->qhi - g->zero);
    return isfinite(g->scale) && isfinite(reach * g->scale) ? 0 : -1;
}

static void apply_grid(const struct grid *g, const float *x, float *y, int64_t n)
{
    if (!(g->scale > 0)) {
        memset(y, 0, (size_t)n * sizeof *y);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float q = nearbyintf(x[i] / g->scale) + g->zero;
        q = fminf(fmaxf(q, g->qlo), g->qhi);
        y[i] = (q - g->zero) * g->scale;
    }
}

/* Quantizes one group x[0..n-1] (n >= 1) into y; base is x's index in the tensor. */
static int quantize_group(const struct int_cfg *c, const float *x, float *y, int64_t n,
                          int64_t base, char *err, size_t err_size)
{
    float lo, hi;
    int64_t bad = 0;
    struct grid g;
    if (minmax(x, n, &lo, &hi, &bad)) {
        snprintf(err, err_size, "non-finite input value at index %lld", (long long)(base + bad));
        return -1;
    }
    if (make_grid(c, lo, hi, &g)) {
        snprintf(err, err_size, "values in [%g, %g] (from index %lld) are too large for a "
                 "float32 scale", lo, hi, (long long)base);
        return -1;
    }
    apply_grid(&g, x, y, n);
    return 0;
}

static int is_cancelled(const struct qlab_host *host)
{
    return host && host->struct_size >= offsetof(struct qlab_host, cancelled) +
                                            sizeof host->cancelled &&
           host->cancelled && host->cancelled(host->ctx);
}

static int int_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                        int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                        char *err, size_t err_size)
{
    const struct int_cfg *c = handle;
    int64_t rows = in->rows, cols = in->cols, n;
    *n_written = 0;
    if (rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) || n > out_capacity) {
        snprintf(err, err_size, "shape %lld x %lld does not fit the output (%lld floats)",
                 (long long)rows, (long long)cols, (long long)out_capacity);
        return -1;
    }
    if (n == 0) {
        return 0;
    }
    if (!in->data) {
        snprintf(err, err_size, "no input data");
        return -1;
    }
    if (c->gran == G_TENSOR) {
        /* One grid for everything: rows are processed separately only so
         * that cancel is asked now and then. */
        float lo, hi;
        int64_t bad = 0;
        struct grid g;
        if (minmax(in->data, n, &lo, &hi, &bad)) {
            snprintf(err, err_size, "non-finite input value at index %lld", (long long)bad);
            return -1;
        }
        if (make_grid(c, lo, hi, &g)) {
            snprintf(err, err_size, "values in [%g, %g] are too large for a float32 scale", lo,
                     hi);
            return -1;
        }
        int64_t since = CANCEL_EVERY;
        for (int64_t r = 0; r < rows; r++, since += cols) {
            if (since >= CANCEL_EVERY) {
                since = 0;
                if (is_cancelled(host))
                    goto cancelled;
            }
            apply_grid(&g, in->data + r * cols, out + r * cols, cols);
        }
    } else {
        int64_t glen = c->gran == G_CHANNEL ? cols : c->group;
        int64_t since = CANCEL_EVERY;
        for (int64_t r = 0; r < rows; r++, since += cols) {
            if (since >= CANCEL_EVERY) {
                since = 0;
                if (is_cancelled(host))
                    goto cancelled;
            }
            for (int64_t j = 0; j < cols; j += glen) {
                int64_t len = cols - j < glen ? cols - j : glen;
                int64_t at = r * cols + j;
                if (quantize_group(c, in->data + at, out + at, len, at, err, err_size))
                    return -1;
            }
        }
    }
    *n_written = n;
    return 0;
cancelled:
    snprintf(err, err_size, "cancelled");
    return -1;
}

/* ---- descriptor --------------------------------------------------------- */

static const struct qlab_scheme int_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "int",
    .description = "uniform affine integer quantization, per tensor, channel or group",
    .params = int_params,
    .n_params = P_COUNT,
    .configure = int_configure,
    .release = int_release,
    .size_bits = int_size_bits,
    .quantize = int_quantize,
};

static const struct qlab_scheme *const int_schemes[] = {&int_scheme};

static const struct qlab_plugin int_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "int",
    .version = "1.0.0",
    .description = "built-in uniform integer quantization (symmetric or affine)",
    .schemes = int_schemes,
    .n_schemes = 1,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi);

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &int_plugin : NULL;
}
