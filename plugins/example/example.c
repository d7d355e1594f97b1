/* example.c — a small, complete qlab scheme plugin to copy: logarithmic (power-of-two) quantization.
 *
 * Copy this file, rename the plugin and the scheme, change quantize, and
 * build it out of tree with (see plugins/README.md):
 *
 *   cc -std=c11 -O2 -fPIC -shared -fvisibility=hidden $(pkg-config --cflags qlab-plugin) \
 *      -o example.so example.c -lm
 *
 * The scheme "log2" keeps a sign and an exponent per weight: with s the
 * row's largest magnitude, w' = sign(w) * s * 2^-e, e = round(log2(s/|w|))
 * clamped to 0..2^(bits-1)-1; a magnitude below s * 2^-(emax + 0.5)
 * becomes 0 (one exponent code is spent on zero). Storage: `bits` per
 * weight plus a 32-bit scale per row.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "qlab_plugin.h" /* the only header a plugin needs */

/* ---- parameters ----------------------------------------------------------
 * Describe every parameter; the host parses "bits=4" against this table,
 * enforces the range, fills defaults, and the TUI builds its editor from
 * it. Values arrive in configure in this order. */
static const struct qlab_param log2_params[] = {
    {.name = "bits", .type = QLAB_PARAM_INT, .help = "bits per weight: a sign and an exponent",
     .min = 2, .max = 8, .def = 4},
};

/* Configuration lives in a handle the host owns through configure/release:
 * a plugin keeps no global mutable state. */
struct log2_cfg {
    int bits; /* per weight */
    int emax; /* largest exponent code: magnitudes down to s * 2^-emax */
};

static int log2_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    struct log2_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory"); /* one line, no newline */
        return -1;
    }
    /* 2^(bits-1) codes for the magnitude: exponents 0..emax and zero. */
    c->bits = (int)v[0].i;
    c->emax = (1 << (c->bits - 1)) - 2;
    *handle = c;
    return 0;
}

static void log2_release(void *handle)
{
    free(handle);
}

/* Exact storage in bits: codes plus one float32 scale per row. */
static int log2_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                          char *err, size_t err_size)
{
    const struct log2_cfg *c = handle;
    (void)err;
    (void)err_size;
    *bits = (uint64_t)rows * (uint64_t)cols * (uint64_t)c->bits + (uint64_t)rows * 32u;
    return 0;
}

/* Quantize and dequantize: may be called from several threads at once on
 * the same handle, so it only reads it. The host checks what comes out
 * (count, NaN/Inf, writes past the end). */
static int log2_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                         int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                         char *err, size_t err_size)
{
    const struct log2_cfg *c = handle;
    int64_t n = in->rows * in->cols;
    if (n > out_capacity) {
        snprintf(err, err_size, "output too small");
        return -1;
    }
    for (int64_t r = 0; r < in->rows; r++) {
        if (host->cancelled && host->cancelled(host->ctx)) { /* long work: let users stop it */
            snprintf(err, err_size, "cancelled");
            return -1;
        }
        const float *x = in->data + r * in->cols;
        float *y = out + r * in->cols;
        float s = 0;
        for (int64_t j = 0; j < in->cols; j++) {
            if (!isfinite(x[j])) { /* bad input is an error, never a crash */
                snprintf(err, err_size, "non-finite value at index %lld",
                         (long long)(r * in->cols + j));
                return -1;
            }
            s = fmaxf(s, fabsf(x[j]));
        }
        for (int64_t j = 0; j < in->cols; j++) {
            float a = fabsf(x[j]);
            if (s == 0 || a < s * exp2f(-(float)c->emax - 0.5f)) { /* guard the division */
                y[j] = 0;
                continue;
            }
            float e = fminf(fmaxf(nearbyintf(log2f(s / a)), 0), (float)c->emax);
            y[j] = copysignf(s * exp2f(-e), x[j]);
        }
    }
    *n_written = n;
    return 0;
}

/* ---- the descriptor ----------------------------------------------------------
 * struct_size lets the host tell which fields this plugin knows about;
 * optional fields (pack, unpack, mask, ...) are simply left out. */
static const struct qlab_scheme log2_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "log2",
    .description = "power-of-two (logarithmic) weights with a per-row scale",
    .params = log2_params,
    .n_params = sizeof log2_params / sizeof log2_params[0],
    .configure = log2_configure,
    .release = log2_release,
    .size_bits = log2_size_bits,
    .quantize = log2_quantize,
};

static const struct qlab_scheme *const example_schemes[] = {&log2_scheme};

static const struct qlab_plugin example_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "example",
    .version = "1.0.0",
    .description = "an example plugin to copy: logarithmic quantization",
    .schemes = example_schemes,
    .n_schemes = 1,
};

/* The one exported symbol. Refuse a host ABI you were not built for. */
QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &example_plugin : NULL;
}
