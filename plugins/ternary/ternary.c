/* ternary.c — the "ternary" plugin: BitNet b1.58 absmean ternary weights and 1-bit sign weights.
 *
 * Scheme "ternary", parameters (in this order):
 *   granularity  ENUM tensor|channel, default tensor   one scale per tensor (as
 *                                                      BitNet b1.58) or per row
 *   packing      ENUM trit|2bit, default trit          how the codes are stored
 *
 *   BitNet b1.58 (Ma et al. 2024) writes W~ = RoundClip(W / (gamma
 *   + eps), -1, 1) with gamma = mean |W| and leaves eps unnamed; Microsoft's
 *   reference code ("The Era of 1-bit LLMs: Training Tips, Code and FAQ")
 *   fixes it as a clamp, and this scheme does exactly what that code does:
 *     gamma = mean |w| over the group (summed in double, rounded to float32)
 *     s     = 1.0f / max(gamma, 1e-5f)                       (float32)
 *     q     = clamp(round(w * s), -1, 1)                     round half to even,
 *                                                            as torch.round
 *     w'    = q / s
 *   so a group whose mean |w| is below 1e-5 is scaled as if it were 1e-5
 *   (its values below 5e-6 become 0), and zeros stay zeros, never NaN.
 *
 * Scheme "binary", no parameters: one row (output channel) at a time,
 *     m = mean |w| over the row, w' = +m when w >= 0 (so sign(0) = sign(-0)
 *     = +1, and a zero weight is never a third level), else -m.
 *   (BitNet's first, 1-bit paper also subtracts the mean of W before taking
 *   signs; this scheme does not: it is plain sign times absmean.)
 *
 * Storage. The codes of a tensor form one stream in row-major order:
 *   ternary, packing=trit: 5 trits per byte (3^5 = 243 <= 256), as ggml's
 *                          TQ1_0 packs them: 8 * ceil(n / 5) bits (1.6 per value)
 *   ternary, packing=2bit: 2 bits per value: 2 * n bits
 *   binary:                1 bit per value: n bits
 * plus a float32 scale per group: 1 (tensor) or rows (channel, binary).
 * An empty tensor stores nothing (0 bits).
 *
 * Non-finite inputs are refused with an error. No global state: configure
 * allocates the handle; quantize only reads it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab_plugin.h"

/* ---- parameters and handle ---------------------------------------------- */

enum ternary_param { P_GRANULARITY, P_PACKING, P_COUNT };
enum ternary_gran { G_TENSOR, G_CHANNEL };
enum ternary_pack { PACK_TRIT, PACK_2BIT };

static const char *const gran_choices[] = {"tensor", "channel", NULL};
static const char *const pack_choices[] = {"trit", "2bit", NULL};

static const struct qlab_param ternary_params[P_COUNT] = {
    [P_GRANULARITY] = {.name = "granularity", .type = QLAB_PARAM_ENUM,
                       .help = "one absmean scale per tensor (BitNet b1.58) or per output "
                               "channel (row)",
                       .def = G_TENSOR, .choices = gran_choices},
    [P_PACKING] = {.name = "packing", .type = QLAB_PARAM_ENUM,
                   .help = "code storage: 5 trits per byte (1.6 bits) or 2 bits per value",
                   .def = PACK_TRIT, .choices = pack_choices},
};

/* Both schemes share one handle; binary ignores packing and is per row. */
struct ternary_cfg {
    int binary;                /* 1: the binary scheme */
    enum ternary_gran gran;    /* ternary: one group per tensor or per row */
    enum ternary_pack packing; /* ternary: trit or 2bit */
};

/* The floor BitNet's reference code puts under gamma. */
#define GAMMA_MIN 1e-5f

/* How often (in values) the cancel callback is asked. */
#define CANCEL_EVERY 65536

static int ternary_configure(const struct qlab_value *v, void **handle, char *err,
                             size_t err_size)
{
    if (v[P_GRANULARITY].i < 0 || v[P_GRANULARITY].i > G_CHANNEL || v[P_PACKING].i < 0 ||
        v[P_PACKING].i > PACK_2BIT) {
        snprintf(err, err_size, "parameter values out of range");
        return -1;
    }
    struct ternary_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->binary = 0;
    c->gran = (enum ternary_gran)v[P_GRANULARITY].i;
    c->packing = (enum ternary_pack)v[P_PACKING].i;
    *handle = c;
    return 0;
}

static int binary_configure(const struct qlab_value *v, void **handle, char *err,
                            size_t err_size)
{
    (void)v;
    struct ternary_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    *c = (struct ternary_cfg){.binary = 1, .gran = G_CHANNEL, .packing = PACK_2BIT};
    *handle = c;
    return 0;
}

static void ternary_release(void *handle)
{
    free(handle);
}

/* ---- size accounting ---------------------------------------------------- */

static int ternary_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                             char *err, size_t err_size)
{
    const struct ternary_cfg *c = handle;
    if (rows < 0 || cols < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)rows, (long long)cols);
        return -1;
    }
    if (rows == 0 || cols == 0) {
        *bits = 0;
        return 0;
    }
    uint64_t n, code_bits, scale_bits, total;
    if (__builtin_mul_overflow((uint64_t)rows, (uint64_t)cols, &n))
        goto too_big;
    if (c->binary)
        code_bits = n;
    else if (c->packing == PACK_TRIT) {
        if (__builtin_mul_overflow(n / 5 + (n % 5 != 0), 8u, &code_bits))
            goto too_big;
    } else if (__builtin_mul_overflow(n, 2u, &code_bits))
        goto too_big;
    uint64_t groups = c->gran == G_TENSOR ? 1u : (uint64_t)rows;
    if (__builtin_mul_overflow(groups, 32u, &scale_bits) ||
        __builtin_add_overflow(code_bits, scale_bits, &total))
        goto too_big;
    *bits = total;
    return 0;
too_big:
    snprintf(err, err_size, "tensor %lld x %lld is too large to count in bits",
             (long long)rows, (long long)cols);
    return -1;
}

/* ---- quantization ------------------------------------------------------- */

static int is_cancelled(const struct qlab_host *host)
{
    return host && host->struct_size >= offsetof(struct qlab_host, cancelled) +
                                            sizeof host->cancelled &&
           host->cancelled && host->cancelled(host->ctx);
}

/* mean |x| of x[0..n-1] (n >= 1) in double, rounded to float; fails at the
 * first non-finite value (*bad = its index). */
static int absmean(const float *x, int64_t n, float *mean, int64_t *bad)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            *bad = i;
            return -1;
        }
        s += fabs((double)x[i]);
    }
    *mean = (float)(s / (double)n);
    return 0;
}

static void ternary_apply(float gamma, const float *x, float *y, int64_t n)
{
    const float s = 1.0f / fmaxf(gamma, GAMMA_MIN);
    for (int64_t i = 0; i < n; i++) {
        float q = fminf(fmaxf(nearbyintf(x[i] * s), -1.0f), 1.0f);
        y[i] = q / s;
    }
}

static void binary_apply(float m, const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] >= 0 ? m : -m;
}

static int ternary_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                            int64_t out_capacity, int64_t *n_written,
                            const struct qlab_host *host, char *err, size_t err_size)
{
    const struct ternary_cfg *c = handle;
    int64_t rows = in->rows, cols = in->cols, n;
    *n_written = 0;
    if (rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) || n > out_capacity) {
        snprintf(err, err_size, "shape %lld x %lld does not fit the output (%lld floats)",
                 (long long)rows, (long long)cols, (long long)out_capacity);
        return -1;
    }
    if (n == 0)
        return 0;
    if (!in->data) {
        snprintf(err, err_size, "no input data");
        return -1;
    }
    /* One scale for the whole tensor, or one per row. */
    const int64_t glen = c->gran == G_TENSOR ? n : cols;
    float scale = 0;
    int64_t since = CANCEL_EVERY;
    for (int64_t r = 0; r < rows; r++, since += cols) {
        if (since >= CANCEL_EVERY) {
            since = 0;
            if (is_cancelled(host)) {
                snprintf(err, err_size, "cancelled");
                return -1;
            }
        }
        const int64_t at = r * cols;
        if (at % glen == 0) {
            int64_t bad = 0;
            if (absmean(in->data + at, glen, &scale, &bad)) {
                snprintf(err, err_size, "non-finite input value at index %lld",
                         (long long)(at + bad));
                return -1;
            }
        }
        if (c->binary)
            binary_apply(scale, in->data + at, out + at, cols);
        else
            ternary_apply(scale, in->data + at, out + at, cols);
    }
    *n_written = n;
    return 0;
}

/* ---- descriptor --------------------------------------------------------- */

static const struct qlab_scheme ternary_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "ternary",
    .description = "BitNet b1.58 absmean ternary {-1, 0, +1} times gamma",
    .params = ternary_params,
    .n_params = P_COUNT,
    .configure = ternary_configure,
    .release = ternary_release,
    .size_bits = ternary_size_bits,
    .quantize = ternary_quantize,
};

static const struct qlab_scheme binary_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "binary",
    .description = "1-bit sign(w) times the row's mean |w|",
    .params = NULL,
    .n_params = 0,
    .configure = binary_configure,
    .release = ternary_release,
    .size_bits = ternary_size_bits,
    .quantize = ternary_quantize,
};

static const struct qlab_scheme *const ternary_schemes[] = {&ternary_scheme, &binary_scheme};

static const struct qlab_plugin ternary_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "ternary",
    .version = "1.0.0",
    .description = "BitNet-style ternary (absmean) and binary (sign) weights",
    .schemes = ternary_schemes,
    .n_schemes = 2,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &ternary_plugin : NULL;
}
