/* ternary.c — ggml's ternary types TQ1_0 and TQ2_0 (BitNet b1.58, TriLM): {-1, 0, 1} times an fp16 scale.
 *
 * Blocks of 256 values; d = max |x|, t = lroundf(x * (1/d)) in {-1, 0, 1}
 * (1/d is 0 when d is 0), decoded as (t) * fp16(d). As quantize_row_tq*_ref
 * and dequantize_row_tq* in ggml (unchanged from their introduction in
 * September 2024 through llama.cpp build 4748 and since).
 *
 * TQ2_0 (66 bytes): 64 bytes of 2-bit codes t+1, then fp16 d. Values are
 *   taken in two runs of 128; in a run, byte m holds values m, m+32, m+64,
 *   m+96 at bits 0-1, 2-3, 4-5, 6-7.
 * TQ1_0 (54 bytes): 48 bytes qs, 4 bytes qh, then fp16 d. Five trits
 *   t+1 make a base-3 number n (first value most significant); the byte is
 *   ceil(n * 256 / 243), so the trits can be read back by multiplying by 3
 *   (mod 256) and taking the byte's top: trit_k = ((byte * 3^k mod 256) * 3) >> 8.
 *   qs[0..31]: value m + 32 k in byte m (k = 0..4, 160 values);
 *   qs[32..47]: value 160 + m + 16 k in byte 32 + m (80 values);
 *   qh[0..3]: four trits (value 240 + j + 4 k in byte j, k = 0..3), shifted
 *   up one trit, so a fifth, zero trit closes the number (16 values).
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ggml_types.h"

/* ---- block layouts ---------------------------------------------------------------- */

#define QK_K 256

struct blk_tq1_0 {
    uint8_t qs[(QK_K - 4 * QK_K / 64) / 5]; /* 48 bytes: 5 trits each */
    uint8_t qh[QK_K / 64];                  /* 4 bytes: 4 trits each */
    uint8_t d[2];                           /* fp16 scale */
};
static_assert(sizeof(struct blk_tq1_0) == 54, "tq1_0 block is 54 bytes");

struct blk_tq2_0 {
    uint8_t qs[QK_K / 4]; /* 2 bits a value */
    uint8_t d[2];
};
static_assert(sizeof(struct blk_tq2_0) == 66, "tq2_0 block is 66 bytes");

static const uint8_t pow3[6] = {1, 3, 9, 27, 81, 243};

/* ---- helpers ----------------------------------------------------------------------- */

/* t + 1 in {0, 1, 2} for one value. lroundf rounds halves away from zero.
 * x * id is non-finite only when 1/d overflowed (d below 2^-128); glibc's
 * lroundf then returns LONG_MIN, whose low 32 bits, all ggml keeps, are 0. */
static int trit(float x, float id)
{
    const float v = x * id;
    return (isfinite(v) ? (int)lroundf(v) : 0) + 1;
}

/* d = max |x| over a block of 256. */
static float block_amax(const float *x)
{
    float amax = 0.0f;
    for (int j = 0; j < QK_K; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a; /* ggml's MAX(amax, fabsf(v)) */
    }
    return amax;
}

/* ceil(n * 256 / 243): the byte holding five trits n (0..242) */
static uint8_t trits_byte(unsigned n)
{
    return (uint8_t)((n * 256 + (243 - 1)) / 243);
}

static float byte_trit(uint8_t byte, int k)
{
    const uint8_t q = (uint8_t)(byte * pow3[k]);
    return (float)((((uint16_t)q * 3) >> 8) - 1);
}

/* ---- TQ1_0 ------------------------------------------------------------------------- */

void ggml_quantize_row_tq1_0(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK_K; i++, out += sizeof(struct blk_tq1_0)) {
        struct blk_tq1_0 b;
        const float d = block_amax(x);
        const float id = d ? 1.0f / d : 0.0f;
        ggml_put_half(b.d, d);
        for (int m = 0; m < 32; m++) {
            unsigned n = 0;
            for (int t = 0; t < 5; t++)
                n = n * 3 + (unsigned)trit(x[m + t * 32], id);
            b.qs[m] = trits_byte(n);
        }
        x += 5 * 32;
        for (int m = 0; m < 16; m++) {
            unsigned n = 0;
            for (int t = 0; t < 5; t++)
                n = n * 3 + (unsigned)trit(x[m + t * 16], id);
            b.qs[32 + m] = trits_byte(n);
        }
        x += 5 * 16;
        for (int j = 0; j < 4; j++) {
            unsigned n = 0;
            for (int t = 0; t < 4; t++)
                n = n * 3 + (unsigned)trit(x[j + t * 4], id);
            b.qh[j] = trits_byte(n * 3); /* the first trit in the top place */
        }
        x += 4 * 4;
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_tq1_0(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK_K; i++, in += sizeof(struct blk_tq1_0)) {
        struct blk_tq1_0 b;
        memcpy(&b, in, sizeof b);
        const float d = ggml_get_half(b.d);
        for (int t = 0; t < 5; t++)
            for (int m = 0; m < 32; m++)
                *y++ = byte_trit(b.qs[m], t) * d;
        for (int t = 0; t < 5; t++)
            for (int m = 0; m < 16; m++)
                *y++ = byte_trit(b.qs[32 + m], t) * d;
        for (int t = 0; t < 4; t++)
            for (int j = 0; j < 4; j++)
                *y++ = byte_trit(b.qh[j], t) * d;
    }
}

/* ---- TQ2_0 ------------------------------------------------------------------------- */

void ggml_quantize_row_tq2_0(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK_K; i++, out += sizeof(struct blk_tq2_0)) {
        struct blk_tq2_0 b;
        const float d = block_amax(x);
        const float id = d ? 1.0f / d : 0.0f;
        ggml_put_half(b.d, d);
        for (int j = 0; j < QK_K / 4; j += 32) {
            for (int m = 0; m < 32; m++) {
                unsigned q = 0;
                for (int t = 0; t < 4; t++)
                    q += ((unsigned)trit(x[m + t * 32], id) & 3u) << (2 * t);
                b.qs[j + m] = (uint8_t)q;
            }
            x += 4 * 32;
        }
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_tq2_0(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK_K; i++, in += sizeof(struct blk_tq2_0)) {
        struct blk_tq2_0 b;
        memcpy(&b, in, sizeof b);
        const float d = ggml_get_half(b.d);
        for (int j = 0; j < QK_K / 4; j += 32)
            for (int t = 0; t < 4; t++)
                for (int m = 0; m < 32; m++)
                    *y++ = (float)(((b.qs[j + m] >> (2 * t)) & 3) - 1) * d;
    }
}
