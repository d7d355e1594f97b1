/* nf4.c — the "nf4" plugin: bitsandbytes' blockwise 4-bit NF4 and FP4 formats, with QLoRA double quantization.
 *
 * Schemes "nf4" and "fp4", parameters (in this order):
 *   block         INT 16..4096, default 64   values per absmax block
 *   double_quant  BOOL, default false        QLoRA double quantization of the scales
 *
 * Levels. Each 4-bit code stands for one of 16 levels in [-1, 1], exactly
 * the tables of bitsandbytes (csrc: dDequantizeNF4 / dDequantizeFP4, and
 * functional.get_4bit_type):
 *   NF4 (QLoRA's 4-bit NormalFloat, code 0..15, ascending):
 *     -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
 *     -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0,
 *     0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
 *     0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
 *     0.7229568362236023, 1
 *   FP4 (bnb's sign + 3-bit magnitude, the E2M1-like [0, 0.0625, 8, 12, 4,
 *     6, 2, 3] / 12): code bit 3 is the sign, codes 0..7 are
 *     0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4 and codes 8..15 their negatives
 *     (code 8 decodes to +0, as bnb's CPU decoder does).
 *
 * Blocks. A block is `block` consecutive values of one row; the last block
 * of a row is shorter when cols % block != 0. (bitsandbytes blocks the
 * flattened tensor instead; the two agree whenever cols is a multiple of
 * block, and per-row blocks keep every row a whole number of blocks.)
 *
 * Encoding, as bnb's kQuantizeBlockwise does it: absmax = max |x| of the
 * block, s = x * (1.0f / absmax) in float32, and the code comes from bnb's
 * decision tree (dQuantizeNF4 / dQuantizeFP4), whose thresholds are the
 * midpoints of neighbouring levels written as float literals; a value goes
 * up only when it is strictly greater than the threshold, so a value
 * exactly on a midpoint takes the lower level (NF4) or the smaller
 * magnitude (FP4). FP4 takes the sign from x < 0 and the magnitude from
 * |s|. Decoding: x' = level[code] * absmax.
 * Guards bnb does not have: a block of zeros (absmax 0) encodes every value
 * as the zero level and decodes to +0, never 0 * inf = NaN; an absmax so
 * small that 1/absmax overflows (subnormal) uses s = x / absmax instead.
 *
 * Double quantization (QLoRA section 3, bnb quantize_4bit with
 * compress_statistics=True): the codes are chosen with the exact fp32
 * absmax values as above; then the tensor's list of block absmax values
 * (row-major block order) is compressed:
 *   offset = mean of all absmax (summed in double, rounded to float32),
 *   d = absmax - offset, in groups of 256 consecutive d values (the last
 *   group shorter): a2 = max |d|, t = clamp(d * (1.0f / a2), -1, 1),
 *   q = the index of the nearest entry of bnb's 8-bit signed dynamic map
 *   (create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8),
 *   below; a tie takes the lower index, as torch.argmin in bnb's reference
 *   backend does), and the stored scale decodes as
 *   absmax' = map[q] * a2 + offset, the scale used to decode the block.
 *   A group whose a2 is 0 decodes to offset. (bnb's CUDA kernel finds q by
 *   a binary search that only ever reaches odd indices of the map; this
 *   plugin follows the nearest-entry definition of the reference backend.)
 *   The map's lowest entry is -0.99296875, not -1, so the smallest
 *   absmax of a group comes back slightly larger: that is bnb. The offset
 *   is summed in double where torch sums in float32; the two can differ
 *   in the offset's last bit.
 *
 * Storage: 4 bits per value, plus per block a float32 absmax, or with
 * double quantization an 8-bit code per block, a float32 a2 per group of
 * 256 blocks and one float32 offset per tensor. The 256-entry dynamic map
 * is a constant of the format and is not counted.
 *   blocks   = rows * ceil(cols / block)
 *   plain:     4*n + 32*blocks
 *   double:    4*n + 8*blocks + 32*ceil(blocks / 256) + 32
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

/* ---- the two 4-bit formats ---------------------------------------------- */

struct fmt4 {
    float level[16];      /* decoded value of each code, in [-1, 1] */
    int zero_code;        /* the code of 0.0 */
    unsigned (*encode)(float s); /* s = x / absmax, finite */
};

/* NF4 thresholds: bnb's dQuantizeNF4 midpoints, ascending. The tree there
 * is a binary search over these with `s > t` going up, so the code is the
 * number of thresholds s is strictly greater than. */
static const float nf4_mid[15] = {
    -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f,
    -0.33967943489551544f, -0.23460740596055984f, -0.13791173323988914f,
    -0.045525018125772476f, 0.03979014977812767f, 0.1202552504837513f,
    0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
    0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
};

static unsigned nf4_encode(float s)
{
    unsigned code = 0;
    for (int i = 0; i < 15; i++)
        code += s > nf4_mid[i];
    return code;
}

/* FP4: bnb's dQuantizeFP4 thresholds on |s| (ascending), and the 3-bit
 * magnitude code of each rank (0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1). */
static const float fp4_mid[7] = {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f,
                                 0.4166667f, 0.583333f, 0.8333333f};
static const unsigned char fp4_rank_code[8] = {0x0, 0x1, 0x6, 0x7, 0x4, 0x5, 0x2, 0x3};

static unsigned fp4_encode(float s)
{
    unsigned sign = s < 0 ? 8u : 0u;
    float a = fabsf(s);
    unsigned rank = 0;
    for (int i = 0; i < 7; i++)
        rank += a > fp4_mid[i];
    return sign + fp4_rank_code[rank];
}

static const struct fmt4 fmt_nf4 = {
    .level = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
              -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
              0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
              0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
              0.7229568362236023f, 1.0f},
    .zero_code = 7,
    .encode = nf4_encode,
};

static const struct fmt4 fmt_fp4 = {
    .level = {0.0f, 5.208333333e-03f, 0.66666667f, 1.0f, 0.33333333f, 0.5f, 0.16666667f, 0.25f,
              0.0f, -5.208333333e-03f, -0.66666667f, -1.0f, -0.33333333f, -0.5f, -0.16666667f,
              -0.25f},
    .zero_code = 0,
    .encode = fp4_encode,
};

/* The positive half of bnb's signed 8-bit dynamic map, ascending. The full
 * map (256 entries, ascending) is -pos[126..0], 0, pos[0..126], 1.0: index
 * 127 is 0 and index 255 is 1. Each entry is float32(10^(i-6) * (b[k] +
 * b[k+1]) / 2) for exponent i = 0..6 and b = the 2^i + 1 float32 points of
 * linspace(0.1, 1), as create_dynamic_map builds it. */
static const float dyn_pos[127] = {
    5.49999982e-07f, 3.24999996e-06f, 7.7499999e-06f, 2.12499999e-05f, 4.37499984e-05f,
    6.62500024e-05f, 8.87499991e-05f, 0.000156249997f, 0.000268750009f, 0.000381249993f,
    0.000493750034f, 0.000606250018f, 0.000718750001f, 0.000831249985f, 0.000943749968f,
    0.00128125004f, 0.00184375001f, 0.00240624999f, 0.00296874996f, 0.00353124994f,
    0.00409374991f, 0.00465625012f, 0.00521874987f, 0.00578125007f, 0.00634375028f,
    0.00690625003f, 0.00746874977f, 0.00803124998f, 0.00859375019f, 0.00915625039f,
    0.00971874967f, 0.0114062503f, 0.0142187495f, 0.0170312505f, 0.0198437497f,
    0.0226562507f, 0.0254687499f, 0.028281251f, 0.0310937501f, 0.0339062512f,
    0.0367187485f, 0.0395312496f, 0.0423437506f, 0.0451562479f, 0.047968749f,
    0.05078125f, 0.053593751f, 0.0564062521f, 0.0592187494f, 0.0620312467f,
    0.0648437515f, 0.0676562488f, 0.0704687536f, 0.0732812509f, 0.0760937482f,
    0.078906253f, 0.0817187503f, 0.0845312476f, 0.0873437524f, 0.0901562497f,
    0.092968747f, 0.0957812518f, 0.0985937491f, 0.107031256f, 0.12109375f,
    0.135156244f, 0.149218753f, 0.163281247f, 0.177343756f, 0.19140625f,
    0.205468744f, 0.219531253f, 0.233593747f, 0.247656241f, 0.26171875f,
    0.275781274f, 0.289843738f, 0.303906262f, 0.317968726f, 0.33203125f,
    0.346093774f, 0.360156238f, 0.374218762f, 0.388281226f, 0.40234375f,
    0.416406274f, 0.430468738f, 0.444531262f, 0.458593726f, 0.47265625f,
    0.486718774f, 0.500781238f, 0.514843762f, 0.528906226f, 0.54296875f,
    0.557031274f, 0.571093738f, 0.585156262f, 0.599218726f, 0.61328125f,
    0.627343774f, 0.641406238f, 0.655468762f, 0.669531226f, 0.68359375f,
    0.697656274f, 0.711718738f, 0.725781262f, 0.739843726f, 0.75390625f,
    0.767968774f, 0.782031238f, 0.796093762f, 0.810156226f, 0.82421875f,
    0.838281274f, 0.852343738f, 0.866406262f, 0.880468726f, 0.89453125f,
    0.908593774f, 0.922656238f, 0.936718762f, 0.950781226f, 0.96484375f,
    0.978906274f, 0.992968738f,
};

#define DQ_GROUP 256 /* absmax values per second-level scale, as QLoRA */

static float dyn_map(int q)
{
    if (q == 127)
        return 0.0f;
    if (q == 255)
        return 1.0f;
    return q < 127 ? -dyn_pos[126 - q] : dyn_pos[q - 128];
}

/* The index of the entry nearest t in [-1, 1]; a tie takes the lower index. */
static int dyn_nearest(float t)
{
    int lo = 0, hi = 255; /* map[lo] <= t <= map[hi] once t is in range */
    if (t <= dyn_map(0))
        return 0;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (dyn_map(mid) <= t)
            lo = mid;
        else
            hi = mid;
    }
    /* |t - map[lo]| <= |t - map[hi]| in float32, as argmin compares them */
    return fabsf(t - dyn_map(lo)) <= fabsf(t - dyn_map(hi)) ? lo : hi;
}

/* ---- parameters and handle ---------------------------------------------- */

enum nf4_param { P_BLOCK, P_DOUBLE_QUANT, P_COUNT };

static const struct qlab_param nf4_params[P_COUNT] = {
    [P_BLOCK] = {.name = "block", .type = QLAB_PARAM_INT,
                 .help = "values per absmax block along a row (bitsandbytes default 64)",
                 .min = 16, .max = 4096, .def = 64},
    [P_DOUBLE_QUANT] = {.name = "double_quant", .type = QLAB_PARAM_BOOL,
                        .help = "QLoRA double quantization: 8-bit scales, fp32 per 256 blocks",
                        .def = 0},
};

struct nf4_cfg {
    const struct fmt4 *fmt;
    int64_t block;       /* values per block, 16..4096 */
    int double_quant;    /* 0 or 1 */
};

/* How often (in values) the cancel callback is asked. */
#define CANCEL_EVERY 65536

static int configure_fmt(const struct fmt4 *fmt, const struct qlab_value *v, void **handle,
                         char *err, size_t err_size)
{
    if (v[P_BLOCK].i < 16 || v[P_BLOCK].i > 4096) {
        snprintf(err, err_size, "block %lld is outside 16..4096", (long long)v[P_BLOCK].i);
        return -1;
    }
    struct nf4_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->fmt = fmt;
    c->block = v[P_BLOCK].i;
    c->double_quant = v[P_DOUBLE_QUANT].i != 0;
    *handle = c;
    return 0;
}

static int nf4_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    return configure_fmt(&fmt_nf4, v, handle, err, err_size);
}

static int fp4_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    return configure_fmt(&fmt_fp4, v, handle, err, err_size);
}

static void nf4_release(void *handle)
{
    free(handle);
}

/* ---- size accounting ---------------------------------------------------- */

static int nf4_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                         char *err, size_t err_size)
{
    const struct nf4_cfg *c = handle;
    if (rows < 0 || cols < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)rows, (long long)cols);
        return -1;
    }
    if (rows == 0 || cols == 0) {
        *bits = 0;
        return 0;
    }
    uint64_t n, blocks, code_bits, scale_bits, total;
    uint64_t per_row = ((uint64_t)cols + (uint64_t)c->block - 1) / (uint64_t)c->block;
    if (__builtin_mul_overflow((uint64_t)rows, (uint64_t)cols, &n) ||
        __builtin_mul_overflow((uint64_t)rows, per_row, &blocks) ||
        __builtin_mul_overflow(n, 4u, &code_bits))
        goto too_big;
    if (c->double_quant) {
        uint64_t groups = (blocks + DQ_GROUP - 1) / DQ_GROUP;
        if (__builtin_mul_overflow(blocks, 8u, &scale_bits) ||
            __builtin_add_overflow(scale_bits, groups * 32u + 32u, &scale_bits))
            goto too_big;
    } else if (__builtin_mul_overflow(blocks, 32u, &scale_bits)) {
        goto too_big;
    }
    if (__builtin_add_overflow(code_bits, scale_bits, &total))
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

/* absmax[b] for every block, row-major; fails at the first non-finite value. */
static int block_absmax(const struct nf4_cfg *c, const struct qlab_tensor_view *in,
                        float *absmax, char *err, size_t err_size)
{
    int64_t b = 0;
    for (int64_t r = 0; r < in->rows; r++) {
        const float *row = in->data + r * in->cols;
        for (int64_t j = 0; j < in->cols; j += c->block, b++) {
            int64_t len = in->cols - j < c->block ? in->cols - j : c->block;
            float m = 0;
            for (int64_t i = 0; i < len; i++) {
                if (!isfinite(row[j + i])) {
                    snprintf(err, err_size, "non-finite input value at index %lld",
                             (long long)(r * in->cols + j + i));
                    return -1;
                }
                m = fmaxf(m, fabsf(row[j + i]));
            }
            absmax[b] = m;
        }
    }
    return 0;
}

/* QLoRA double quantization: scale[b] = the decoded 8-bit version of absmax[b]. */
static int double_quantize(const float *absmax, float *scale, int64_t blocks, char *err,
                           size_t err_size)
{
    double sum = 0;
    for (int64_t b = 0; b < blocks; b++)
        sum += absmax[b];
    const float offset = (float)(sum / (double)blocks);
    for (int64_t g = 0; g < blocks; g += DQ_GROUP) {
        int64_t len = blocks - g < DQ_GROUP ? blocks - g : DQ_GROUP;
        float a2 = 0;
        for (int64_t i = 0; i < len; i++)
            a2 = fmaxf(a2, fabsf(absmax[g + i] - offset));
        const float inv = a2 > 0 ? 1.0f / a2 : 0.0f;
        for (int64_t i = 0; i < len; i++) {
            int q = 127; /* map[127] = 0: a group with a2 = 0 decodes to offset */
            if (a2 > 0) {
                float d = absmax[g + i] - offset;
                float t = isfinite(inv) ? d * inv : d / a2;
                q = dyn_nearest(fminf(fmaxf(t, -1.0f), 1.0f));
            }
            scale[g + i] = dyn_map(q) * a2 + offset;
            if (!isfinite(scale[g + i])) {
                snprintf(err, err_size, "block scales near %g are too large for double "
                         "quantization", absmax[g + i]);
                return -1;
            }
        }
    }
    return 0;
}

/* Encodes x[0..n-1] against absmax and decodes with scale into y. */
static void code_block(const struct fmt4 *f, const float *x, float *y, int64_t n, float absmax,
                       float scale)
{
    if (!(absmax > 0)) {
        memset(y, 0, (size_t)n * sizeof *y);
        return;
    }
    const float inv = 1.0f / absmax;
    const int recip = isfinite(inv);
    for (int64_t i = 0; i < n; i++) {
        float s = recip ? x[i] * inv : x[i] / absmax;
        y[i] = f->level[f->encode(s)] * scale;
    }
}

static int nf4_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                        int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                        char *err, size_t err_size)
{
    const struct nf4_cfg *c = handle;
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
    const int64_t per_row = (cols + c->block - 1) / c->block, blocks = rows * per_row;
    /* absmax, then the decoding scales (the same values without double quant) */
    float *absmax = malloc((size_t)blocks * sizeof *absmax);
    float *scale = c->double_quant ? malloc((size_t)blocks * sizeof *scale) : absmax;
    int rc = -1;
    if (!absmax || !scale) {
        snprintf(err, err_size, "out of memory for %lld block scales", (long long)blocks);
        goto out;
    }
    if (block_absmax(c, in, absmax, err, err_size))
        goto out;
    if (c->double_quant && double_quantize(absmax, scale, blocks, err, err_size))
        goto out;
    int64_t since = CANCEL_EVERY;
    for (int64_t r = 0; r < rows; r++, since += cols) {
        if (since >= CANCEL_EVERY) {
            since = 0;
            if (is_cancelled(host)) {
                snprintf(err, err_size, "cancelled");
                goto out;
            }
        }
        for (int64_t j = 0, b = r * per_row; j < cols; j += c->block, b++) {
            int64_t len = cols - j < c->block ? cols - j : c->block;
            code_block(c->fmt, in->data + r * cols + j, out + r * cols + j, len, absmax[b],
                       scale[b]);
        }
    }
    *n_written = n;
    rc = 0;
out:
    if (scale != absmax)
        free(scale);
    free(absmax);
    return rc;
}

/* ---- descriptor --------------------------------------------------------- */

static const struct qlab_scheme nf4_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "nf4",
    .description = "QLoRA 4-bit NormalFloat (bitsandbytes NF4), absmax per block",
    .params = nf4_params,
    .n_params = P_COUNT,
    .configure = nf4_configure,
    .release = nf4_release,
    .size_bits = nf4_size_bits,
    .quantize = nf4_quantize,
};

static const struct qlab_scheme fp4_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "fp4",
    .description = "bitsandbytes 4-bit float (sign + 3-bit magnitude), absmax per block",
    .params = nf4_params,
    .n_params = P_COUNT,
    .configure = fp4_configure,
    .release = nf4_release,
    .size_bits = nf4_size_bits,
    .quantize = nf4_quantize,
};

static const struct qlab_scheme *const nf4_schemes[] = {&nf4_scheme, &fp4_scheme};

static const struct qlab_plugin nf4_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "nf4",
    .version = "1.0.0",
    .description = "bitsandbytes/QLoRA 4-bit NF4 and FP4 with optional double quantization",
    .schemes = nf4_schemes,
    .n_schemes = 2,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &nf4_plugin : NULL;
}
