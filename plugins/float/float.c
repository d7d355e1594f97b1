/* float.c — the "float" plugin: IEEE half and bfloat16, OCP 8/6/4-bit floats, and OCP MX block formats.
 *
 * Schemes (element formats in minifloat.c):
 *   fp16        IEEE binary16 E5M10          16 bits, max 65504
 *   bf16        bfloat16 E8M7                16 bits, max 3.3895314e38
 *   fp8_e4m3    OCP OFP8 E4M3 (bias 7)        8 bits, max 448, no Inf, NaN only S.1111.111
 *   fp8_e5m2    OCP OFP8 E5M2 (bias 15)       8 bits, max 57344, IEEE-like Inf/NaN
 *   fp6_e2m3    OCP MX FP6 E2M3 (bias 1)      6 bits, max 7.5, no Inf/NaN
 *   fp6_e3m2    OCP MX FP6 E3M2 (bias 3)      6 bits, max 28, no Inf/NaN
 *   fp4_e2m1    OCP MX FP4 E2M1 (bias 1)      4 bits, +-{0, .5, 1, 1.5, 2, 3, 4, 6}
 *   mxfp8_e4m3, mxfp8_e5m2, mxfp6_e2m3, mxfp6_e3m2, mxfp4 (E2M1), mxint8:
 *               OCP MX v1.0 concrete formats, blocks of 32 with an E8M0 scale
 *
 * Rounding. Every element is rounded to the nearest value of its format,
 * ties to the even significand (also among subnormals), and saturates:
 * a finite value beyond the largest finite value becomes +-max. IEEE
 * (and OFP8 E5M2 "non-saturating" mode) would round such a value to Inf;
 * qlab's host forbids Inf output, so fp16 saturates at +-65504, bf16 at
 * +-3.3895314e38 and E5M2 at +-57344, as OFP8's saturating mode does. The
 * sign of zero is kept (every float format here has -0); MXINT8 has none.
 * Non-finite input is refused with an error naming its index.
 *
 * Scale (fp16 and the 8/6/4-bit element schemes; bf16 has none: its range
 * is float32's, and amax / max_bf16 would be a float32 subnormal):
 *   none     the values themselves are rounded (saturating beyond max)
 *   tensor   s = amax / max over the tensor
 *   channel  s = amax / max per output channel (row); the default for
 *            the 8/6/4-bit schemes, "none" is fp16's
 * then x' = round(x / s) * s, in float32 arithmetic (x / s is a true
 * division, so amax / s lands on max or within an ulp, and saturation
 * takes care of the ulp). s is stored as a float32: 32 bits per scale. A
 * group whose s is 0 (all zeros, or so tiny that amax / max underflows)
 * comes back as zeros; a group whose max * s overflows float32 (amax
 * within 2^-24 of FLT_MAX) is refused rather than made Inf.
 *
 * MX (OCP Microscaling Formats v1.0, section 6.3). Each row is cut into
 * blocks of 32 consecutive elements; the last block of a row is shorter
 * when cols % 32 != 0 (it keeps its own scale; no padding is stored).
 * Per block, with emax_elem the exponent of the element format's largest
 * normal binade (E4M3 8, E5M2 15, E2M3 2, E3M2 4, E2M1 2, INT8 0):
 *   shared = floor(log2(amax)) - emax_elem, clamped to [-127, 127]
 *   X = 2^shared, stored as the E8M0 byte shared + 127 (0xff, NaN, never made)
 *   P_i = round(V_i / X) in the element format, saturating; x'_i = P_i * X
 * V_i / X is formed exactly (the exponent moves), not as a rounded float.
 * amax == 0: log2(0) = -inf clamps to the smallest scale, byte 0 (2^-127),
 * and every element is 0. (microxcaling's Python reference adds
 * FP32_MIN_NORMAL to a zero amax, which gives the same byte except for
 * MXINT8, where it makes byte 1; its C++ path gives byte 0. The decoded
 * block is zeros either way.)
 * MXINT8 elements are 8-bit two's complement with an implicit 2^-6: k/64
 * for k in -128..127, so emax_elem is 0 (the spec's table: max 1 63/64,
 * min -2). Dividing instead by 2^(floor(log2 amax) - 6) and keeping the
 * integer k is the same arithmetic; the E8M0 byte is the spec's. Like the
 * spec's two's complement (and unlike microxcaling, which clamps to
 * +-127/64) a block's negative extreme may round to -128/64.
 *
 * Storage (size_bits, exact): element bits per value plus
 *   MX:       8 bits per started block of 32 in each row
 *             (mxfp8/mxint8 8.25, mxfp6 6.25, mxfp4 4.25 bits per weight
 *             when cols is a multiple of 32)
 *   tensor:   32 bits once;  channel: 32 bits per row;  none: nothing.
 * An empty tensor stores nothing (0 bits).
 *
 * Packed bytes (pack/unpack). Element codes are the OCP/IEEE bit patterns
 * (sign, exponent field, mantissa; MXINT8 two's complement), written
 * LSB-first into a little-endian bit stream: 16-bit codes as two bytes,
 * little-endian; fp4 two per byte, the first element in the low nibble;
 * fp6 four per three bytes. A row is:
 *   none     its codes, the last byte zero-padded
 *   channel  the float32 scale (4 bytes, little-endian), then the codes
 *   MX       per block: the E8M0 scale byte, then the block's codes
 *            (a full block is 1 + 4 * bits bytes; a short last block
 *            pads its codes to a whole byte)
 * scale=tensor has one scale for the whole tensor, which no row layout
 * holds: packing it is refused. (OCP MX v1.0 leaves the memory layout of
 * scales and elements to implementations; this is qlab's.) Unpack refuses
 * NaN/Inf codes, the NaN scale byte 0xff, a non-finite float32 scale and a
 * decoded value beyond float32.
 *
 * No global mutable state: configure allocates the handle; quantize,
 * size_bits, pack and unpack only read it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "minifloat.h"
#include "qlab_plugin.h"

/* ---- parameters and handle ---------------------------------------------- */

enum float_scale { S_NONE, S_TENSOR, S_CHANNEL, S_COUNT };

static const char *const scale_choices[] = {"none", "tensor", "channel", NULL};

#define SCALE_HELP "divide by amax/max per tensor or per output channel (row) first; none rounds " \
                   "the values themselves"

/* The 8/6/4-bit formats cover too little range to be used unscaled on
 * weights, so they default to a per-channel scale; fp16 to none. */
static const struct qlab_param scale_param_channel[1] = {
    {.name = "scale", .type = QLAB_PARAM_ENUM, .help = SCALE_HELP, .def = S_CHANNEL,
     .choices = scale_choices},
};
static const struct qlab_param scale_param_none[1] = {
    {.name = "scale", .type = QLAB_PARAM_ENUM, .help = SCALE_HELP, .def = S_NONE,
     .choices = scale_choices},
};

#define MX_BLOCK 32 /* elements per MX block (OCP MX v1.0 k = 32) */

struct float_cfg {
    const struct mf_format *f; /* element format */
    int mx;                    /* 1: OCP MX blocks of MX_BLOCK with E8M0 scales */
    enum float_scale scale;    /* for mx == 0 */
};

/* How often (in elements) the cancel callback is asked. */
#define CANCEL_EVERY 65536

static int configure(const struct mf_format *f, int mx, int has_scale,
                     const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    if (has_scale && (v[0].i < 0 || v[0].i >= S_COUNT)) {
        snprintf(err, err_size, "parameter values out of range");
        return -1;
    }
    struct float_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->f = f;
    c->mx = mx;
    c->scale = has_scale ? (enum float_scale)v[0].i : S_NONE;
    *handle = c;
    return 0;
}

static void float_release(void *handle)
{
    free(handle);
}

/* ---- size accounting ---------------------------------------------------- */

static int float_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                           char *err, size_t err_size)
{
    const struct float_cfg *c = handle;
    if (rows < 0 || cols < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)rows, (long long)cols);
        return -1;
    }
    if (rows == 0 || cols == 0) {
        *bits = 0;
        return 0;
    }
    uint64_t r = (uint64_t)rows, n, code_bits, scale_bits = 0, total;
    if (__builtin_mul_overflow(r, (uint64_t)cols, &n) ||
        __builtin_mul_overflow(n, (uint64_t)c->f->bits, &code_bits))
        goto too_big;
    if (c->mx) {
        uint64_t blocks = ((uint64_t)cols + MX_BLOCK - 1) / MX_BLOCK;
        if (__builtin_mul_overflow(r, blocks * 8u, &scale_bits))
            goto too_big;
    } else if (c->scale == S_TENSOR) {
        scale_bits = 32;
    } else if (c->scale == S_CHANNEL) {
        if (__builtin_mul_overflow(r, (uint64_t)32, &scale_bits))
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

/* ---- scales ------------------------------------------------------------- */

static uint32_t float_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

/* |x| bits of the largest magnitude in x[0..n-1]; fails at the first
 * non-finite value (*bad = its index). Unsigned order of |x| bits is the
 * order of the magnitudes. */
static int scan_amax(const float *x, int64_t n, uint32_t *amax, int64_t *bad)
{
    uint32_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t a = float_bits(x[i]) & 0x7fffffffu;
        if (a >= 0x7f800000u) {
            *bad = i;
            return -1;
        }
        m = a > m ? a : m;
    }
    *amax = m;
    return 0;
}

/* The E8M0 exponent of an MX block whose largest magnitude has bits amax. */
static int mx_shared_exp(const struct mf_format *f, uint32_t amax)
{
    if (amax == 0)
        return -127; /* floor(log2 0) = -inf, clamped */
    int s = mf_floor_log2(amax) - f->emax;
    return s < -127 ? -127 : s > 127 ? 127 : s;
}

/* s = amax / max as a float32; -1 (and err) when max * s is not finite. */
static int group_scale(const struct mf_format *f, uint32_t amax, int64_t base, float *s,
                       char *err, size_t err_size)
{
    float a;
    memcpy(&a, &amax, sizeof a);
    *s = a / f->max;
    if (!isfinite(f->max * *s)) {
        snprintf(err, err_size, "values up to %g (from index %lld) are too large for a float32 "
                 "scale", (double)a, (long long)base);
        return -1;
    }
    return 0;
}

/* ---- quantization ------------------------------------------------------- */

/* y = round(x / 2^shift) * 2^shift, element by element. */
static void round_pow2(const struct mf_format *f, const float *x, float *y, int64_t n, int shift)
{
    for (int64_t i = 0; i < n; i++) {
        struct mf_value v;
        mf_round(f, float_bits(x[i]), shift, &v);
        y[i] = mf_to_float(&v, shift);
    }
}

/* y = round(x / s) * s in float32; zeros when s is 0. */
static void round_scaled(const struct mf_format *f, const float *x, float *y, int64_t n, float s)
{
    if (!(s > 0)) {
        memset(y, 0, (size_t)n * sizeof *y);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        struct mf_value v;
        mf_round(f, float_bits(x[i] / s), 0, &v);
        y[i] = mf_to_float(&v, 0) * s;
    }
}

static int non_finite(int64_t at, char *err, size_t err_size)
{
    snprintf(err, err_size, "non-finite input value at index %lld", (long long)at);
    return -1;
}

/* One row x[0..cols-1] (index base in the tensor) into y; s_tensor is
 * the tensor's scale for scale=tensor. */
static int quantize_row(const struct float_cfg *c, const float *x, float *y, int64_t cols,
                        int64_t base, float s_tensor, char *err, size_t err_size)
{
    uint32_t amax;
    int64_t bad = 0;
    if (c->mx) {
        for (int64_t j = 0; j < cols; j += MX_BLOCK) {
            int64_t len = cols - j < MX_BLOCK ? cols - j : MX_BLOCK;
            if (scan_amax(x + j, len, &amax, &bad))
                return non_finite(base + j + bad, err, err_size);
            round_pow2(c->f, x + j, y + j, len, mx_shared_exp(c->f, amax));
        }
        return 0;
    }
    if (c->scale == S_TENSOR) {
        round_scaled(c->f, x, y, cols, s_tensor);
        return 0;
    }
    if (scan_amax(x, cols, &amax, &bad))
        return non_finite(base + bad, err, err_size);
    if (c->scale == S_NONE) {
        round_pow2(c->f, x, y, cols, 0);
        return 0;
    }
    float s;
    if (group_scale(c->f, amax, base, &s, err, err_size))
        return -1;
    round_scaled(c->f, x, y, cols, s);
    return 0;
}

static int is_cancelled(const struct qlab_host *host)
{
    return host && host->struct_size >= offsetof(struct qlab_host, cancelled) +
                                            sizeof host->cancelled &&
           host->cancelled && host->cancelled(host->ctx);
}

/* Checks the shape against the room; *n = rows * cols. */
static int check_view(const struct qlab_tensor_view *in, int64_t capacity, int64_t *n,
                      const char *unit, char *err, size_t err_size)
{
    if (in->rows < 0 || in->cols < 0 || __builtin_mul_overflow(in->rows, in->cols, n) ||
        *n > capacity) {
        snprintf(err, err_size, "shape %lld x %lld does not fit the output (%lld %s)",
                 (long long)in->rows, (long long)in->cols, (long long)capacity, unit);
        return -1;
    }
    if (*n > 0 && !in->data) {
        snprintf(err, err_size, "no input data");
        return -1;
    }
    return 0;
}

/* The tensor-wide scale for scale=tensor (else 0, unused). */
static int tensor_scale(const struct float_cfg *c, const struct qlab_tensor_view *in, int64_t n,
                        float *s, char *err, size_t err_size)
{
    *s = 0;
    if (c->mx || c->scale != S_TENSOR)
        return 0;
    uint32_t amax;
    int64_t bad = 0;
    if (scan_amax(in->data, n, &amax, &bad))
        return non_finite(bad, err, err_size);
    return group_scale(c->f, amax, 0, s, err, err_size);
}

static int float_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                          int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                          char *err, size_t err_size)
{
    const struct float_cfg *c = handle;
    int64_t n, cols = in->cols;
    float s_tensor;
    *n_written = 0;
    if (check_view(in, out_capacity, &n, "floats", err, err_size))
        return -1;
    if (n == 0)
        return 0;
    if (tensor_scale(c, in, n, &s_tensor, err, err_size))
        return -1;
    int64_t since = CANCEL_EVERY;
    for (int64_t r = 0; r < in->rows; r++, since += cols) {
        if (since >= CANCEL_EVERY) {
            since = 0;
            if (is_cancelled(host)) {
                snprintf(err, err_size, "cancelled");
                return -1;
            }
        }
        int64_t at = r * cols;
        if (quantize_row(c, in->data + at, out + at, cols, at, s_tensor, err, err_size))
            return -1;
    }
    *n_written = n;
    return 0;
}

/* ---- packed bytes ------------------------------------------------------- */

/* Bytes of n codes of `bits` each; -1 on overflow. */
static int64_t code_bytes(int64_t n, int bits)
{
    int64_t b;
    if (__builtin_mul_overflow(n, (int64_t)bits, &b) || b > INT64_MAX - 7)
        return -1;
    return (b + 7) / 8;
}

static int row_bytes(const struct float_cfg *c, int64_t cols, int64_t *bytes, char *err,
                     size_t err_size)
{
    int64_t b = -1;
    if (cols < 0) {
        snprintf(err, err_size, "invalid row length %lld", (long long)cols);
        return -1;
    }
    if (c->mx) {
        int64_t full = cols / MX_BLOCK, rem = cols % MX_BLOCK;
        int64_t per_block = 1 + code_bytes(MX_BLOCK, c->f->bits);
        int64_t tail = rem ? 1 + code_bytes(rem, c->f->bits) : 0;
        if (__builtin_mul_overflow(full, per_block, &b) || __builtin_add_overflow(b, tail, &b))
            b = -1;
    } else if (c->scale == S_TENSOR) {
        snprintf(err, err_size, "scale=tensor keeps one scale for the whole tensor, which a "
                 "packed row cannot hold; use scale=none or scale=channel");
        return -1;
    } else {
        b = code_bytes(cols, c->f->bits);
        if (b >= 0 && c->scale == S_CHANNEL && cols > 0 && __builtin_add_overflow(b, 4, &b))
            b = -1;
    }
    if (b < 0) {
        snprintf(err, err_size, "a row of %lld values is too large to pack", (long long)cols);
        return -1;
    }
    *bytes = b;
    return 0;
}

static int float_packed_row_bytes(const void *handle, int64_t cols, int64_t *bytes, char *err,
                                  size_t err_size)
{
    return row_bytes(handle, cols, bytes, err, err_size);
}

/* Code i of a little-endian, LSB-first bit stream of `bits`-bit codes.
 * put_code ORs into bytes that start out zero. */
static void put_code(uint8_t *p, int64_t i, int bits, uint32_t code)
{
    int64_t pos = i * bits, last = (pos + bits - 1) >> 3;
    for (int64_t b = pos >> 3; b <= last; b++) {
        int64_t off = pos - 8 * b; /* where code's bit 0 sits relative to this byte */
        p[b] |= (uint8_t)(off >= 0 ? code << off : code >> -off);
    }
}

static uint32_t get_code(const uint8_t *p, int64_t i, int bits)
{
    int64_t pos = i * bits, last = (pos + bits - 1) >> 3;
    uint32_t code = 0;
    for (int64_t b = pos >> 3; b <= last; b++) {
        int64_t off = pos - 8 * b;
        code |= off >= 0 ? (uint32_t)p[b] >> off : (uint32_t)p[b] << -off;
    }
    return code & ((1u << bits) - 1u);
}

/* Codes of x[0..n-1] / 2^shift (s == 0) or x / s (s > 0) into p. */
static void pack_codes(const struct mf_format *f, const float *x, int64_t n, int shift, float s,
                       uint8_t *p)
{
    for (int64_t i = 0; i < n; i++) {
        struct mf_value v;
        uint32_t xb = s > 0 ? float_bits(x[i] / s) : float_bits(x[i]);
        mf_round(f, xb, shift, &v);
        put_code(p, i, f->bits, mf_encode(f, &v));
    }
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One row into p (zeroed, row_bytes long). */
static int pack_row(const struct float_cfg *c, const float *x, int64_t cols, int64_t base,
                    uint8_t *p, char *err, size_t err_size)
{
    uint32_t amax;
    int64_t bad = 0;
    if (c->mx) {
        for (int64_t j = 0; j < cols; j += MX_BLOCK) {
            int64_t len = cols - j < MX_BLOCK ? cols - j : MX_BLOCK;
            if (scan_amax(x + j, len, &amax, &bad))
                return non_finite(base + j + bad, err, err_size);
            int shared = mx_shared_exp(c->f, amax);
            *p++ = (uint8_t)(shared + 127);
            pack_codes(c->f, x + j, len, shared, 0, p);
            p += code_bytes(len, c->f->bits);
        }
        return 0;
    }
    if (cols == 0)
        return 0;
    if (scan_amax(x, cols, &amax, &bad))
        return non_finite(base + bad, err, err_size);
    if (c->scale == S_NONE) {
        pack_codes(c->f, x, cols, 0, 0, p);
        return 0;
    }
    float s; /* scale=channel; 0 leaves every code 0 */
    if (group_scale(c->f, amax, base, &s, err, err_size))
        return -1;
    put_le32(p, float_bits(s));
    if (s > 0)
        pack_codes(c->f, x, cols, 0, s, p + 4);
    return 0;
}

static int float_pack(const void *handle, const struct qlab_tensor_view *in, uint8_t *out,
                      int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                      char *err, size_t err_size)
{
    const struct float_cfg *c = handle;
    int64_t n, rb, need;
    *n_written = 0;
    if (check_view(in, INT64_MAX, &n, "values", err, err_size) ||
        row_bytes(c, in->cols, &rb, err, err_size))
        return -1;
    if (__builtin_mul_overflow(rb, in->rows, &need) || need > out_capacity) {
        snprintf(err, err_size, "%lld rows of %lld bytes do not fit %lld bytes",
                 (long long)in->rows, (long long)rb, (long long)out_capacity);
        return -1;
    }
    int64_t since = CANCEL_EVERY;
    for (int64_t r = 0; r < in->rows; r++, since += in->cols) {
        if (since >= CANCEL_EVERY) {
            since = 0;
            if (is_cancelled(host)) {
                snprintf(err, err_size, "cancelled");
                return -1;
            }
        }
        uint8_t *p = out + r * rb;
        memset(p, 0, (size_t)rb);
        int64_t at = r * in->cols;
        if (pack_row(c, in->data + at, in->cols, at, p, err, err_size))
            return -1;
    }
    *n_written = need;
    return 0;
}

/* n codes at p into y: each value times 2^shift, then times s when use_s;
 * row and col0 name the first one in errors. */
static int unpack_codes(const struct mf_format *f, const uint8_t *p, int64_t n, int shift,
                        float s, int use_s, float *y, int64_t row, int64_t col0, char *err,
                        size_t err_size)
{
    for (int64_t i = 0; i < n; i++) {
        struct mf_value v;
        uint32_t code = get_code(p, i, f->bits);
        if (mf_decode(f, code, &v)) {
            snprintf(err, err_size, "row %lld, column %lld: %s code 0x%x is not a number",
                     (long long)row, (long long)(col0 + i), f->name, (unsigned)code);
            return -1;
        }
        float val = mf_to_float(&v, shift);
        y[i] = use_s ? val * s : val;
        if (!isfinite(y[i])) {
            snprintf(err, err_size, "row %lld, column %lld: the decoded value overflows float32",
                     (long long)row, (long long)(col0 + i));
            return -1;
        }
    }
    return 0;
}

static int unpack_row(const struct float_cfg *c, const uint8_t *p, int64_t cols, float *y,
                      int64_t row, char *err, size_t err_size)
{
    if (c->mx) {
        for (int64_t j = 0; j < cols; j += MX_BLOCK) {
            int64_t len = cols - j < MX_BLOCK ? cols - j : MX_BLOCK;
            uint8_t e8m0 = *p++;
            if (e8m0 == 0xff) {
                snprintf(err, err_size, "row %lld, block %lld: E8M0 scale byte 0xff is NaN",
                         (long long)row, (long long)(j / MX_BLOCK));
                return -1;
            }
            if (unpack_codes(c->f, p, len, (int)e8m0 - 127, 0, 0, y + j, row, j, err, err_size))
                return -1;
            p += code_bytes(len, c->f->bits);
        }
        return 0;
    }
    if (cols == 0)
        return 0;
    if (c->scale == S_NONE)
        return unpack_codes(c->f, p, cols, 0, 0, 0, y, row, 0, err, err_size);
    uint32_t sb = get_le32(p);
    float s;
    memcpy(&s, &sb, sizeof s);
    if (!isfinite(s)) {
        snprintf(err, err_size, "row %lld: the float32 scale is not finite", (long long)row);
        return -1;
    }
    return unpack_codes(c->f, p + 4, cols, 0, s, 1, y, row, 0, err, err_size);
}

static int float_unpack(const void *handle, const uint8_t *in, int64_t in_size, int64_t rows,
                        int64_t cols, float *out, int64_t out_capacity, char *err,
                        size_t err_size)
{
    const struct float_cfg *c = handle;
    int64_t rb, need, n;
    if (rows < 0) {
        snprintf(err, err_size, "invalid row count %lld", (long long)rows);
        return -1;
    }
    if (row_bytes(c, cols, &rb, err, err_size))
        return -1;
    if (__builtin_mul_overflow(rb, rows, &need) || need != in_size ||
        __builtin_mul_overflow(rows, cols, &n) || n > out_capacity) {
        snprintf(err, err_size, "%lld bytes given for %lld x %lld values (%lld bytes per row, "
                 "room for %lld floats)", (long long)in_size, (long long)rows, (long long)cols,
                 (long long)rb, (long long)out_capacity);
        return -1;
    }
    for (int64_t r = 0; r < rows; r++)
        if (unpack_row(c, in + r * rb, cols, out + r * cols, r, err, err_size))
            return -1;
    return 0;
}

/* ---- descriptor --------------------------------------------------------- */

/* One configure per scheme: the ABI's configure does not say which
 * scheme it serves. */
#define CONFIGURE(fn, fmt, mx, has_scale)                                                      \
    static int fn(const struct qlab_value *v, void **handle, char *err, size_t err_size)    \
    {                                                                                          \
        return configure(&(fmt), (mx), (has_scale), v, handle, err, err_size);                \
    }

CONFIGURE(cfg_fp16, MF_FP16, 0, 1)
CONFIGURE(cfg_bf16, MF_BF16, 0, 0)
CONFIGURE(cfg_fp8_e4m3, MF_FP8_E4M3, 0, 1)
CONFIGURE(cfg_fp8_e5m2, MF_FP8_E5M2, 0, 1)
CONFIGURE(cfg_fp6_e2m3, MF_FP6_E2M3, 0, 1)
CONFIGURE(cfg_fp6_e3m2, MF_FP6_E3M2, 0, 1)
CONFIGURE(cfg_fp4_e2m1, MF_FP4_E2M1, 0, 1)
CONFIGURE(cfg_mxfp8_e4m3, MF_FP8_E4M3, 1, 0)
CONFIGURE(cfg_mxfp8_e5m2, MF_FP8_E5M2, 1, 0)
CONFIGURE(cfg_mxfp6_e2m3, MF_FP6_E2M3, 1, 0)
CONFIGURE(cfg_mxfp6_e3m2, MF_FP6_E3M2, 1, 0)
CONFIGURE(cfg_mxfp4, MF_FP4_E2M1, 1, 0)
CONFIGURE(cfg_mxint8, MF_MXINT8, 1, 0)

#define SCHEME(id, desc, params_, n_params_)                                                   \
    static const struct qlab_scheme scheme_##id = {                                           \
        .struct_size = sizeof(struct qlab_scheme),                                            \
        .name = #id,                                                                          \
        .description = desc,                                                                  \
        .params = params_,                                                                    \
        .n_params = n_params_,                                                                \
        .configure = cfg_##id,                                                                \
        .release = float_release,                                                             \
        .size_bits = float_size_bits,                                                         \
        .quantize = float_quantize,                                                           \
        .packed_row_bytes = float_packed_row_bytes,                                           \
        .pack = float_pack,                                                                   \
        .unpack = float_unpack,                                                               \
    };

SCHEME(fp16, "IEEE half (E5M10), round to nearest even, saturating at +-65504",
       scale_param_none, 1)
SCHEME(bf16, "bfloat16 (E8M7), round to nearest even, saturating at +-3.39e38", NULL, 0)
SCHEME(fp8_e4m3, "OCP FP8 E4M3 (max 448, no Inf), nearest even, saturating; optional fp32 scale",
       scale_param_channel, 1)
SCHEME(fp8_e5m2, "OCP FP8 E5M2 (max 57344), nearest even, saturating; optional fp32 scale",
       scale_param_channel, 1)
SCHEME(fp6_e2m3, "OCP FP6 E2M3 (max 7.5), nearest even, saturating; optional fp32 scale",
       scale_param_channel, 1)
SCHEME(fp6_e3m2, "OCP FP6 E3M2 (max 28), nearest even, saturating; optional fp32 scale",
       scale_param_channel, 1)
SCHEME(fp4_e2m1, "OCP FP4 E2M1 (+-{0,.5,1,1.5,2,3,4,6}), nearest even, saturating; optional "
       "fp32 scale", scale_param_channel, 1)
SCHEME(mxfp8_e4m3, "OCP MXFP8 E4M3: blocks of 32 along a row with an E8M0 scale (8.25 bits)",
       NULL, 0)
SCHEME(mxfp8_e5m2, "OCP MXFP8 E5M2: blocks of 32 along a row with an E8M0 scale (8.25 bits)",
       NULL, 0)
SCHEME(mxfp6_e2m3, "OCP MXFP6 E2M3: blocks of 32 along a row with an E8M0 scale (6.25 bits)",
       NULL, 0)
SCHEME(mxfp6_e3m2, "OCP MXFP6 E3M2: blocks of 32 along a row with an E8M0 scale (6.25 bits)",
       NULL, 0)
SCHEME(mxfp4, "OCP MXFP4 E2M1: blocks of 32 along a row with an E8M0 scale (4.25 bits)", NULL, 0)
SCHEME(mxint8, "OCP MXINT8: 8-bit k/64 in blocks of 32 along a row with an E8M0 scale (8.25 "
       "bits)", NULL, 0)

static const struct qlab_scheme *const float_schemes[] = {
    &scheme_fp16,       &scheme_bf16,       &scheme_fp8_e4m3,   &scheme_fp8_e5m2,
    &scheme_fp6_e2m3,   &scheme_fp6_e3m2,   &scheme_fp4_e2m1,   &scheme_mxfp8_e4m3,
    &scheme_mxfp8_e5m2, &scheme_mxfp6_e2m3, &scheme_mxfp6_e3m2, &scheme_mxfp4,
    &scheme_mxint8,
};

static const struct qlab_plugin float_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "float",
    .version = "1.0.0",
    .description = "low-precision floats: fp16, bf16, OCP FP8/FP6/FP4 and OCP MX block formats",
    .schemes = float_schemes,
    .n_schemes = sizeof float_schemes / sizeof float_schemes[0],
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &float_plugin : NULL;
}
