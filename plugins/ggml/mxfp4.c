/* mxfp4.c — OCP microscaling FP4 (MXFP4) as ggml stores it: an E8M0 scale byte and 32 E2M1 codes per block.
 *
 * Block (17 bytes, 4.25 bits per weight): byte e, then 16 bytes of 4-bit
 * codes, value j in the low nibble of byte j and value j+16 in the high one.
 * A code c means 2 * E2M1 value kvalues[c] = {0, 1, 2, 3, 4, 6, 8, 12, and
 * their negatives at c+8}, and the scale byte means 2^(e-128) (half of the
 * E8M0 value 2^(e-127), which undoes the doubling), so x' = kvalues[c] * 2^(e-128).
 *
 * As quantize_row_mxfp4_ref / dequantize_row_mxfp4 in current ggml (added
 * for gpt-oss, August 2025; not in llama.cpp build 4748):
 *   amax = max |x|;  e = amax > 0 ? floor(log2(amax)) - 2 + 127 : 0,
 *   so the largest magnitude lands in [4, 8) times the half-scale;
 *   each code is the first index of least |kvalues[c] * d - x| (so 0, not
 *   -0, and the lower of two equally near levels).
 * Nothing saturates: a value above 12 * d (amax just below the next power
 * of two) takes code 7 (12 * d). Blocks with amax below 2^-125 give a
 * negative exponent, which ggml converts to its byte modulo 256 (x86
 * cvttss2si; C leaves the direct float-to-uint8 conversion undefined, so
 * it is spelled out here): the scale becomes huge and the block decodes
 * to zeros, as ggml's own build does.
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ggml_types.h"

/* ---- block layout ---------------------------------------------------------------- */

#define QK_MXFP4 32

struct blk_mxfp4 {
    uint8_t e;                 /* E8M0 shared exponent */
    uint8_t qs[QK_MXFP4 / 2];  /* E2M1 codes */
};
static_assert(sizeof(struct blk_mxfp4) == 17, "mxfp4 block is 17 bytes");

/* ggml-common.h kvalues_mxfp4: E2M1 values doubled */
static const int8_t kvalues_mxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

/* ---- helpers ----------------------------------------------------------------------- */

/* 2^(e-128) as a float: ggml's GGML_E8M0_TO_FP32_HALF (subnormal for e < 2). */
static float e8m0_half(uint8_t e)
{
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint8_t block_exponent(float amax)
{
    if (!(amax > 0.0f))
        return 0;
    const int e = (int)(floorf(log2f(amax)) - 2 + 127); /* -24 .. 252 for finite amax */
    return (uint8_t)e;                                  /* modulo 256, as ggml's build */
}

static int best_code(float x, float d)
{
    int best = 0;
    float best_err = fabsf(kvalues_mxfp4[0] * d - x);
    for (int c = 1; c < 16; c++) {
        const float err = fabsf(kvalues_mxfp4[c] * d - x);
        if (err < best_err) {
            best = c;
            best_err = err;
        }
    }
    return best;
}

/* ---- rows ------------------------------------------------------------------------- */

void ggml_quantize_row_mxfp4(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK_MXFP4; i++, x += QK_MXFP4, out += sizeof(struct blk_mxfp4)) {
        struct blk_mxfp4 b;
        float amax = 0.0f;
        for (int j = 0; j < QK_MXFP4; j++)
            if (amax < fabsf(x[j]))
                amax = fabsf(x[j]);
        b.e = block_exponent(amax);
        const float d = e8m0_half(b.e);
        for (int j = 0; j < QK_MXFP4 / 2; j++)
            b.qs[j] = (uint8_t)(best_code(x[j], d) | (best_code(x[j + QK_MXFP4 / 2], d) << 4));
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_mxfp4(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK_MXFP4; i++, in += sizeof(struct blk_mxfp4), y += QK_MXFP4) {
        struct blk_mxfp4 b;
        memcpy(&b, in, sizeof b);
        const float d = e8m0_half(b.e);
        for (int j = 0; j < QK_MXFP4 / 2; j++) {
            y[j] = kvalues_mxfp4[b.qs[j] & 0x0F] * d;
            y[j + QK_MXFP4 / 2] = kvalues_mxfp4[b.qs[j] >> 4] * d;
        }
    }
}
