/* legacy.c — ggml's first block types, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: reference quantizers and decoders.
 *
 * Blocks of 32 values. Each function reproduces ggml's scalar reference
 * (quantize_row_<type>_ref, dequantize_row_<type>; unchanged from 2023
 * through llama.cpp build 4748 and since) operation for operation: the
 * same float expressions in the same order, the float (not fp16-rounded)
 * scale for the codes, and the same truncating conversions. Compile
 * without floating-point contraction (ISO C mode; no -ffast-math).
 *
 *   q4_0  d = max / -8 (max: the value of largest magnitude), q = min(15, trunc(x/d + 8.5)),
 *         x' = (q - 8) d
 *   q4_1  d = (max - min) / 15, q = min(15, trunc((x - min)/d + 0.5)), x' = q d + min
 *   q5_0  as q4_0 with -16, 16.5, 31; the fifth bits in a 32-bit word qh
 *   q5_1  as q4_1 with 31 (no clamp, as in ggml); fifth bits in qh
 *   q8_0  d = amax / 127, q = roundf(x/d), x' = q d
 * where x/d is x * (1/d), and 1/d is 0 when d is 0.
 *
 * Codes of value j and j+16 share byte j (low nibble, high nibble). Multi-
 * byte fields are little-endian. All blocks are plain byte arrays, so any
 * alignment works.
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ggml_types.h"

/* ---- block layouts (ggml-common.h) -------------------------------------------- */

#define QK 32

struct blk_q4_0 {
    uint8_t d[2];        /* fp16 scale */
    uint8_t qs[QK / 2];  /* 4-bit codes, value j low nibble, j+16 high */
};
static_assert(sizeof(struct blk_q4_0) == 18, "q4_0 block is 18 bytes");

struct blk_q4_1 {
    uint8_t d[2], m[2];  /* fp16 scale, fp16 min */
    uint8_t qs[QK / 2];
};
static_assert(sizeof(struct blk_q4_1) == 20, "q4_1 block is 20 bytes");

struct blk_q5_0 {
    uint8_t d[2];
    uint8_t qh[4];       /* bit j: fifth bit of value j (little-endian uint32) */
    uint8_t qs[QK / 2];  /* low 4 bits */
};
static_assert(sizeof(struct blk_q5_0) == 22, "q5_0 block is 22 bytes");

struct blk_q5_1 {
    uint8_t d[2], m[2];
    uint8_t qh[4];
    uint8_t qs[QK / 2];
};
static_assert(sizeof(struct blk_q5_1) == 24, "q5_1 block is 24 bytes");

struct blk_q8_0 {
    uint8_t d[2];
    int8_t qs[QK];
};
static_assert(sizeof(struct blk_q8_0) == 34, "q8_0 block is 34 bytes");

/* ---- helpers -------------------------------------------------------------------- */

/* C's float-to-int8 conversion as ggml's x86-64 build performs it
 * (cvttss2si, then the low byte): truncation toward zero; NaN and values
 * beyond int32 give INT32_MIN, whose low byte is 0. In range this is the
 * plain C conversion; out of range (only when 1/d overflows for scales
 * near the float minimum) C leaves it undefined, so it is spelled out. */
static int32_t trunc_i32(float v)
{
    return v >= -2147483648.0f && v < 2147483648.0f ? (int32_t)v : INT32_MIN;
}

static int low_byte_signed(float v)
{
    int b = (int)((uint32_t)trunc_i32(v) & 0xFFu);
    return b >= 128 ? b - 256 : b;
}

static int low_byte_unsigned(float v)
{
    return (int)((uint32_t)trunc_i32(v) & 0xFFu);
}

static int imin(int a, int b)
{
    return a < b ? a : b;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The value of largest magnitude (the first of equals), as q4_0/q5_0 pick it. */
static float signed_absmax(const float *x)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, float *lo, float *hi)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QK; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    *lo = min;
    *hi = max;
}

/* ---- Q4_0 ----------------------------------------------------------------------- */

void ggml_quantize_row_q4_0(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK; i++, x += QK, out += sizeof(struct blk_q4_0)) {
        struct blk_q4_0 b;
        const float d = signed_absmax(x) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        ggml_put_half(b.d, d);
        for (int j = 0; j < QK / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[j + QK / 2] * id;
            const int q0 = imin(15, low_byte_signed(x0 + 8.5f));
            const int q1 = imin(15, low_byte_signed(x1 + 8.5f));
            b.qs[j] = (uint8_t)((q0 & 0xFF) | ((q1 & 0xFF) << 4)); /* as ggml's uint8_t */
        }
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_q4_0(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK; i++, in += sizeof(struct blk_q4_0), y += QK) {
        struct blk_q4_0 b;
        memcpy(&b, in, sizeof b);
        const float d = ggml_get_half(b.d);
        for (int j = 0; j < QK / 2; j++) {
            const int x0 = (b.qs[j] & 0x0F) - 8;
            const int x1 = (b.qs[j] >> 4) - 8;
            y[j] = x0 * d;
            y[j + QK / 2] = x1 * d;
        }
    }
}

/* ---- Q4_1 ----------------------------------------------------------------------- */

void ggml_quantize_row_q4_1(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK; i++, x += QK, out += sizeof(struct blk_q4_1)) {
        struct blk_q4_1 b;
        float min, max;
        min_max(x, &min, &max);
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        ggml_put_half(b.d, d);
        ggml_put_half(b.m, min);
        for (int j = 0; j < QK / 2; j++) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[j + QK / 2] - min) * id;
            const int q0 = imin(15, low_byte_signed(x0 + 0.5f));
            const int q1 = imin(15, low_byte_signed(x1 + 0.5f));
            b.qs[j] = (uint8_t)((q0 & 0xFF) | ((q1 & 0xFF) << 4)); /* as ggml's uint8_t */
        }
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_q4_1(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK; i++, in += sizeof(struct blk_q4_1), y += QK) {
        struct blk_q4_1 b;
        memcpy(&b, in, sizeof b);
        const float d = ggml_get_half(b.d);
        const float m = ggml_get_half(b.m);
        for (int j = 0; j < QK / 2; j++) {
            const int x0 = b.qs[j] & 0x0F;
            const int x1 = b.qs[j] >> 4;
            y[j] = x0 * d + m;
            y[j + QK / 2] = x1 * d + m;
        }
    }
}

/* ---- Q5_0 ----------------------------------------------------------------------- */

void ggml_quantize_row_q5_0(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK; i++, x += QK, out += sizeof(struct blk_q5_0)) {
        struct blk_q5_0 b;
        const float d = signed_absmax(x) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        ggml_put_half(b.d, d);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[j + QK / 2] * id;
            /* ggml keeps these in uint8_t: a negative byte wraps */
            const uint32_t q0 = (uint32_t)imin(31, low_byte_signed(x0 + 16.5f)) & 0xFFu;
            const uint32_t q1 = (uint32_t)imin(31, low_byte_signed(x1 + 16.5f)) & 0xFFu;
            b.qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + QK / 2);
        }
        put_u32(b.qh, qh);
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_q5_0(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK; i++, in += sizeof(struct blk_q5_0), y += QK) {
        struct blk_q5_0 b;
        memcpy(&b, in, sizeof b);
        const float d = ggml_get_half(b.d);
        const uint32_t qh = get_u32(b.qh);
        for (int j = 0; j < QK / 2; j++) {
            const int h0 = (int)(((qh >> j) << 4) & 0x10u);
            const int h1 = (int)((qh >> (j + 12)) & 0x10u);
            const int x0 = ((b.qs[j] & 0x0F) | h0) - 16;
            const int x1 = ((b.qs[j] >> 4) | h1) - 16;
            y[j] = x0 * d;
            y[j + QK / 2] = x1 * d;
        }
    }
}

/* ---- Q5_1 ----------------------------------------------------------------------- */

void ggml_quantize_row_q5_1(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK; i++, x += QK, out += sizeof(struct blk_q5_1)) {
        struct blk_q5_1 b;
        float min, max;
        min_max(x, &min, &max);
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        ggml_put_half(b.d, d);
        ggml_put_half(b.m, min);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[j + QK / 2] - min) * id;
            const uint32_t q0 = (uint32_t)low_byte_unsigned(x0 + 0.5f);
            const uint32_t q1 = (uint32_t)low_byte_unsigned(x1 + 0.5f);
            b.qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= ((q0 & 0x10u) >> 4) << j;
            qh |= ((q1 & 0x10u) >> 4) << (j + QK / 2);
        }
        put_u32(b.qh, qh);
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_q5_1(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK; i++, in += sizeof(struct blk_q5_1), y += QK) {
        struct blk_q5_1 b;
        memcpy(&b, in, sizeof b);
        const float d = ggml_get_half(b.d);
        const float m = ggml_get_half(b.m);
        const uint32_t qh = get_u32(b.qh);
        for (int j = 0; j < QK / 2; j++) {
            const int h0 = (int)(((qh >> j) << 4) & 0x10u);
            const int h1 = (int)((qh >> (j + 12)) & 0x10u);
            const int x0 = (b.qs[j] & 0x0F) | h0;
            const int x1 = (b.qs[j] >> 4) | h1;
            y[j] = x0 * d + m;
            y[j + QK / 2] = x1 * d + m;
        }
    }
}

/* ---- Q8_0 ----------------------------------------------------------------------- */

void ggml_quantize_row_q8_0(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK; i++, x += QK, out += sizeof(struct blk_q8_0)) {
        struct blk_q8_0 b;
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) {
            const float a = fabsf(x[j]);
            amax = amax > a ? amax : a; /* ggml's MAX(amax, fabsf(v)) */
        }
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        ggml_put_half(b.d, d);
        for (int j = 0; j < QK; j++)
            b.qs[j] = (int8_t)low_byte_signed(roundf(x[j] * id));
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_q8_0(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK; i++, in += sizeof(struct blk_q8_0), y += QK) {
        struct blk_q8_0 b;
        memcpy(&b, in, sizeof b);
        const float d = ggml_get_half(b.d);
        for (int j = 0; j < QK; j++)
            y[j] = b.qs[j] * d;
    }
}
