/* ggml.c — the "ggml" plugin: one scheme per GGUF block type, packed and decoded bit-exactly as ggml does.
 *
 * Schemes are named like ggml's types ("q4_0", "q4_K", "iq4_nl", "tq1_0",
 * "mxfp4") and take no parameters. Each one:
 *   packed_row_bytes  cols / block * bytes (cols must be a multiple of the block)
 *   pack              every row quantized by ggml's reference quantizer, the
 *                     rows' blocks one after another (the layout of a GGUF tensor)
 *   unpack            ggml's dequantize_row_<type>
 *   quantize          pack then unpack, row by row, so the floats are exactly
 *                     what ggml would compute from a GGUF file
 *   size_bits         rows * packed_row_bytes * 8
 * A row length that is not a multiple of the block is refused (ggml cannot
 * store it either), as is a non-finite input value, and a row whose scales
 * overflow fp16 (values near 65504 * 127 and beyond decode to Inf or NaN).
 *
 * The type table says everything about a type; the code below never
 * switches on a type. Rows are built in a private scratch buffer and
 * copied out, so block code may use any alignment of the caller's memory.
 * No global mutable state: the tables are const and each call allocates
 * its own scratch.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_types.h"
#include "qlab_plugin.h"

/* ---- fp16 <-> fp32 ----------------------------------------------------------
 * IEEE binary16 with round-to-nearest-even, as ggml's reference code gets it
 * from F16C (_cvtss_sh(x, 0)) or from its portable fallback (the FP16
 * library's bit trick): both round to nearest even, make subnormals, and
 * send everything from 65520 up to Inf. Done here with integers only, so
 * the result never depends on the FPU's rounding mode. */

uint16_t ggml_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) /* NaN: a quiet NaN, as both of ggml's paths give */
        return (uint16_t)(sign | 0x7E00u);
    if (ax >= 0x47800000u) /* 65536 and up (and Inf): Inf */
        return (uint16_t)(sign | 0x7C00u);
    if (ax >= 0x38800000u) { /* a normal fp16 (2^-14 and up; a carry may reach Inf) */
        uint32_t r = ax + 0xFFFu + ((ax >> 13) & 1u);
        return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
    }
    /* Below 2^-14: a subnormal fp16, round(|f| * 2^24) to nearest even.
     * |f| = m * 2^(e - 150), so |f| * 2^24 = m >> (126 - e). */
    uint32_t e = ax >> 23;
    uint32_t m = (ax & 0x7FFFFFu) | (e ? 0x800000u : 0);
    uint32_t shift = e ? 126u - e : 125u;
    if (shift > 24)
        return sign; /* below 2^-25: rounds to zero */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u)))
        q++;
    return (uint16_t)(sign | q);
}

float ggml_fp16_to_fp32(uint16_t h)
{
#ifdef QLAB_GGML_EMULATE_UNINIT_FP16
    /* Test builds only (tests/plugins/ggml_uninit_fp16.so): ggml read fp16
     * values from a table that only ggml_init() fills, so a program that
     * skipped it decoded every fp16 as +0. The shared reference vectors
     * were made that way; this build reproduces them bit for bit. */
    (void)h;
    return 0.0f;
#endif
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu, bits;
    if (e == 0x1F) {
        bits = sign | 0x7F800000u | (m << 13);
    } else if (e != 0) {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    } else if (m == 0) {
        bits = sign;
    } else { /* subnormal: normalize m * 2^-24 */
        uint32_t k = 0;
        while (!(m & 0x400u)) {
            m <<= 1;
            k++;
        }
        bits = sign | ((113u - k) << 23) | ((m & 0x3FFu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ---- the type table ---------------------------------------------------------
 * X(name, ggml type id, values per block, bytes per block, description).
 * name is ggml's type name and also names the row functions. */
#define GGML_TYPE_LIST(X)                                                                    \
    X(q4_0, 2, 32, 18, "ggml Q4_0: blocks of 32, fp16 scale, 4-bit codes (4.5 bpw)")            \
    X(q4_1, 3, 32, 20, "ggml Q4_1: blocks of 32, fp16 scale and min, 4-bit codes (5 bpw)")      \
    X(q5_0, 6, 32, 22, "ggml Q5_0: blocks of 32, fp16 scale, 5-bit codes (5.5 bpw)")            \
    X(q5_1, 7, 32, 24, "ggml Q5_1: blocks of 32, fp16 scale and min, 5-bit codes (6 bpw)")      \
    X(q8_0, 8, 32, 34, "ggml Q8_0: blocks of 32, fp16 scale, 8-bit codes (8.5 bpw)")            \
    X(q2_K, 10, 256, 84, "ggml Q2_K: super-blocks of 256, 4-bit sub-scales, 2-bit codes "       \
                         "(2.625 bpw)")                                                        \
    X(q3_K, 11, 256, 110, "ggml Q3_K: super-blocks of 256, 6-bit sub-scales, 3-bit codes "      \
                          "(3.4375 bpw)")                                                      \
    X(q4_K, 12, 256, 144, "ggml Q4_K: super-blocks of 256, 6-bit sub-scales and mins, 4-bit "   \
                          "codes (4.5 bpw)")                                                   \
    X(q5_K, 13, 256, 176, "ggml Q5_K: super-blocks of 256, 6-bit sub-scales and mins, 5-bit "   \
                          "codes (5.5 bpw)")                                                   \
    X(q6_K, 14, 256, 210, "ggml Q6_K: super-blocks of 256, 8-bit sub-scales, 6-bit codes "      \
                          "(6.5625 bpw)")                                                      \
    X(iq4_nl, 20, 32, 18, "ggml IQ4_NL: blocks of 32, fp16 scale, 4-bit non-linear codes "      \
                          "(4.5 bpw)")                                                         \
    X(tq1_0, 34, 256, 54, "ggml TQ1_0: ternary {-1,0,1} x fp16 scale, 5 trits a byte "          \
                          "(1.6875 bpw)")                                                      \
    X(tq2_0, 35, 256, 66, "ggml TQ2_0: ternary {-1,0,1} x fp16 scale, 2 bits a value "          \
                          "(2.0625 bpw)")                                                      \
    X(mxfp4, 39, 32, 17, "OCP MXFP4 as ggml: blocks of 32, E8M0 scale, E2M1 codes (4.25 bpw)")

enum ggml_row {
#define X_ENUM(n, id, blk, sz, desc) T_##n,
    GGML_TYPE_LIST(X_ENUM)
#undef X_ENUM
    T_COUNT
};

static const struct ggml_type_info ggml_types[T_COUNT] = {
#define X_INFO(n, id, blk, sz, desc)                                                         \
    [T_##n] = {.name = #n,                                                                 \
               .gguf_type = id,                                                            \
               .block = blk,                                                               \
               .bytes = sz,                                                                \
               .description = desc,                                                        \
               .quantize_row = ggml_quantize_row_##n,                                      \
               .dequantize_row = ggml_dequantize_row_##n},
    GGML_TYPE_LIST(X_INFO)
#undef X_INFO
};

/* ---- handle ------------------------------------------------------------------ */

struct ggml_cfg {
    const struct ggml_type_info *type; /* row of ggml_types */
};

static int ggml_configure(const struct ggml_type_info *t, void **handle, char *err,
                          size_t err_size)
{
    struct ggml_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->type = t;
    *handle = c;
    return 0;
}

static void ggml_release(void *handle)
{
    free(handle);
}

/* ---- sizes ------------------------------------------------------------------- */

/* Bytes of one packed row of cols values; refuses a partial block. */
static int row_bytes(const struct ggml_type_info *t, int64_t cols, int64_t *bytes, char *err,
                     size_t err_size)
{
    if (cols < 0) {
        snprintf(err, err_size, "invalid row length %lld", (long long)cols);
        return -1;
    }
    if (cols % t->block != 0) {
        snprintf(err, err_size,
                 "%s needs rows whose length is a multiple of %d; this tensor's rows have "
                 "%lld values (choose another scheme for it)",
                 t->name, t->block, (long long)cols);
        return -1;
    }
    if (__builtin_mul_overflow(cols / t->block, (int64_t)t->bytes, bytes)) {
        snprintf(err, err_size, "a row of %lld values is too large", (long long)cols);
        return -1;
    }
    return 0;
}

static int ggml_packed_row_bytes(const void *handle, int64_t cols, int64_t *bytes, char *err,
                                 size_t err_size)
{
    const struct ggml_cfg *c = handle;
    return row_bytes(c->type, cols, bytes, err, err_size);
}

static int ggml_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                          char *err, size_t err_size)
{
    const struct ggml_cfg *c = handle;
    int64_t rb;
    if (rows < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)rows, (long long)cols);
        return -1;
    }
    if (row_bytes(c->type, cols, &rb, err, err_size))
        return -1;
    uint64_t total;
    if (__builtin_mul_overflow((uint64_t)rows, (uint64_t)rb, &total) ||
        __builtin_mul_overflow(total, (uint64_t)8, &total)) {
        snprintf(err, err_size, "tensor %lld x %lld is too large to count in bits",
                 (long long)rows, (long long)cols);
        return -1;
    }
    *bits = total;
    return 0;
}

/* ---- encoding rows ------------------------------------------------------------ */

static int is_cancelled(const struct qlab_host *host)
{
    return host &&
           host->struct_size >= offsetof(struct qlab_host, cancelled) + sizeof host->cancelled &&
           host->cancelled && host->cancelled(host->ctx);
}

/* A pass over a tensor: checks its shape against the output room and
 * holds one row of scratch (packed bytes and decoded floats). */
struct row_pass {
    const struct ggml_type_info *type;
    int64_t rows, cols, rb; /* shape; bytes per packed row */
    uint8_t *packed;        /* rb bytes */
    float *decoded;         /* cols floats */
};

static void pass_free(struct row_pass *p)
{
    free(p->packed);
    free(p->decoded);
    p->packed = NULL;
    p->decoded = NULL;
}

/* packed_out: the output is packed bytes (rb a row), else floats (cols a row). */
static int pass_init(struct row_pass *p, const struct ggml_type_info *t,
                     const struct qlab_tensor_view *in, int64_t capacity, int packed_out,
                     char *err, size_t err_size)
{
    memset(p, 0, sizeof *p);
    p->type = t;
    p->rows = in->rows;
    p->cols = in->cols;
    if (p->rows < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)p->rows,
                 (long long)p->cols);
        return -1;
    }
    if (row_bytes(t, p->cols, &p->rb, err, err_size))
        return -1;
    int64_t need;
    if (__builtin_mul_overflow(p->rows, packed_out ? p->rb : p->cols, &need) ||
        need > capacity) {
        snprintf(err, err_size, "shape %lld x %lld does not fit the output (%lld %s)",
                 (long long)p->rows, (long long)p->cols, (long long)capacity,
                 packed_out ? "bytes" : "floats");
        return -1;
    }
    if (need > 0 && !in->data) {
        snprintf(err, err_size, "no input data");
        return -1;
    }
    if (need > 0) {
        p->packed = malloc((size_t)p->rb);
        p->decoded = malloc((size_t)p->cols * sizeof *p->decoded);
        if (!p->packed || !p->decoded) {
            pass_free(p);
            snprintf(err, err_size, "out of memory for a row of %lld values", (long long)p->cols);
            return -1;
        }
    }
    return 0;
}

/* Quantizes row r into p->packed and decodes it into p->decoded. Refuses
 * non-finite input and scales that overflow. */
static int pass_row(struct row_pass *p, const float *x, int64_t r, char *err, size_t err_size)
{
    for (int64_t j = 0; j < p->cols; j++) {
        if (!isfinite(x[j])) {
            snprintf(err, err_size, "non-finite input value at index %lld (row %lld, column %lld)",
                     (long long)(r * p->cols + j), (long long)r, (long long)j);
            return -1;
        }
    }
    p->type->quantize_row(x, p->packed, p->cols);
    p->type->dequantize_row(p->packed, p->decoded, p->cols);
    for (int64_t j = 0; j < p->cols; j++) {
        if (!isfinite(p->decoded[j])) {
            float amax = 0;
            for (int64_t i = 0; i < p->cols; i++)
                amax = fmaxf(amax, fabsf(x[i]));
            /* worded without "NaN" or "Inf", which would read as a broken
             * result; this is a refusal of the input */
            snprintf(err, err_size,
                     "row %lld: values up to %g are too large for %s, whose fp16 scales "
                     "stop at 65504 (index %lld would not decode to a number)",
                     (long long)r, amax, p->type->name, (long long)(r * p->cols + j));
            return -1;
        }
    }
    return 0;
}

/* Runs every row; writes packed bytes to out_bytes or floats to out_floats. */
static int run_rows(const struct ggml_cfg *c, const struct qlab_tensor_view *in,
                    uint8_t *out_bytes, float *out_floats, int64_t capacity, int64_t *n_written,
                    const struct qlab_host *host, char *err, size_t err_size)
{
    struct row_pass p;
    *n_written = 0;
    if (pass_init(&p, c->type, in, capacity, out_bytes != NULL, err, err_size))
        return -1;
    int rc = 0;
    for (int64_t r = 0; r < p.rows && p.cols > 0; r++) {
        if (is_cancelled(host)) {
            snprintf(err, err_size, "cancelled");
            rc = -1;
            break;
        }
        if (pass_row(&p, in->data + r * p.cols, r, err, err_size)) {
            rc = -1;
            break;
        }
        if (out_bytes)
            memcpy(out_bytes + r * p.rb, p.packed, (size_t)p.rb);
        else
            memcpy(out_floats + r * p.cols, p.decoded, (size_t)p.cols * sizeof *out_floats);
    }
    if (rc == 0)
        *n_written = p.rows * (out_bytes ? p.rb : p.cols);
    pass_free(&p);
    return rc;
}

static int ggml_pack(const void *handle, const struct qlab_tensor_view *in, uint8_t *out,
                     int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                     char *err, size_t err_size)
{
    return run_rows(handle, in, out, NULL, out_capacity, n_written, host, err, err_size);
}

static int ggml_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                         int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                         char *err, size_t err_size)
{
    return run_rows(handle, in, NULL, out, out_capacity, n_written, host, err, err_size);
}

static int ggml_unpack(const void *handle, const uint8_t *in, int64_t in_size, int64_t rows,
                       int64_t cols, float *out, int64_t out_capacity, char *err,
                       size_t err_size)
{
    const struct ggml_cfg *c = handle;
    int64_t rb, need, n;
    if (rows < 0) {
        snprintf(err, err_size, "invalid shape %lld x %lld", (long long)rows, (long long)cols);
        return -1;
    }
    if (row_bytes(c->type, cols, &rb, err, err_size))
        return -1;
    if (__builtin_mul_overflow(rows, rb, &need) || __builtin_mul_overflow(rows, cols, &n) ||
        need != in_size || n > out_capacity) {
        snprintf(err, err_size, "%lld bytes for a %lld x %lld tensor of %s (needs %lld bytes, "
                 "room for %lld floats)", (long long)in_size, (long long)rows, (long long)cols,
                 c->type->name, (long long)need, (long long)out_capacity);
        return -1;
    }
    if (n == 0)
        return 0;
    if (!in) {
        snprintf(err, err_size, "no input data");
        return -1;
    }
    /* Each row is copied to aligned scratch first: blocks may be read as
     * structs, and the caller's bytes (say, an mmap'ed file) may sit at any
     * offset. */
    uint8_t *row = malloc((size_t)rb);
    if (!row) {
        snprintf(err, err_size, "out of memory for a row of %lld bytes", (long long)rb);
        return -1;
    }
    for (int64_t r = 0; r < rows; r++) {
        memcpy(row, in + r * rb, (size_t)rb);
        c->type->dequantize_row(row, out + r * cols, cols);
    }
    free(row);
    return 0;
}

/* ---- descriptor -------------------------------------------------------------- */

#define X_SCHEME(n, id, blk, sz, desc)                                                       \
    static int configure_##n(const struct qlab_value *v, void **handle, char *err,            \
                             size_t err_size)                                                \
    {                                                                                        \
        (void)v;                                                                             \
        return ggml_configure(&ggml_types[T_##n], handle, err, err_size);                    \
    }                                                                                        \
    static const struct qlab_scheme scheme_##n = {                                           \
        .struct_size = sizeof(struct qlab_scheme),                                           \
        .name = #n,                                                                          \
        .description = desc,                                                                 \
        .params = NULL,                                                                      \
        .n_params = 0,                                                                       \
        .configure = configure_##n,                                                          \
        .release = ggml_release,                                                             \
        .size_bits = ggml_size_bits,                                                         \
        .quantize = ggml_quantize,                                                           \
        .flags = QLAB_SCHEME_GGUF,                                                           \
        .gguf_type = id,                                                                     \
        .packed_row_bytes = ggml_packed_row_bytes,                                           \
        .pack = ggml_pack,                                                                   \
        .unpack = ggml_unpack,                                                               \
    };
GGML_TYPE_LIST(X_SCHEME)
#undef X_SCHEME

static const struct qlab_scheme *const ggml_schemes[T_COUNT] = {
#define X_PTR(n, id, blk, sz, desc) [T_##n] = &scheme_##n,
    GGML_TYPE_LIST(X_PTR)
#undef X_PTR
};

static const struct qlab_plugin ggml_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "ggml",
    .version = "1.0.0",
    .description = "ggml's GGUF block formats (Q4_0 ... Q6_K, IQ4_NL, TQ1_0, TQ2_0, MXFP4), "
                   "bit-exact with ggml's reference code",
    .schemes = ggml_schemes,
    .n_schemes = T_COUNT,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &ggml_plugin : NULL;
}
