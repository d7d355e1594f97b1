/* iq4_nl.c — ggml's IQ4_NL: 4-bit codes into a fixed non-linear table, one fp16 scale per 32 values.
 *
 * Reproduces what ggml_quantize_chunk does for IQ4_NL without an importance
 * matrix in llama.cpp build 4748: quantize_iq4_nl -> quantize_row_iq4_nl_impl
 * with super-block = block = 32 and ntry = 7, weights w = x^2, and the
 * binary-search best_index_int8 of that build. Float expressions keep
 * ggml's order; compile without contraction (ISO C mode; no -ffast-math).
 *
 * Per block of 32:
 *   max: the value of largest magnitude; |max| < 1e-15 makes the scale 0
 *   d0 = -max / -127; codes l_j = nearest table entry to x_j / d0;
 *   d  = sum w x v / sum w v^2 (v = table[l]); then for t in -7..7 the
 *        grid 1/d = (t - 127) / max is tried and kept when it fits better
 *        (larger (sum w x v)^2 / sum w v^2)
 *   stored: fp16(d), and codes redone as nearest entry to x_j * (1/d)
 *   decoded: fp16(d) * table[l]
 * Values j and j+16 share byte j (low nibble, high nibble).
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ggml_types.h"

/* ---- block layout ---------------------------------------------------------------- */

#define QK4_NL 32
#define GROUP_MAX_EPS 1e-15f
#define IQ4_NTRY 7

struct blk_iq4_nl {
    uint8_t d[2];            /* fp16 scale */
    uint8_t qs[QK4_NL / 2];  /* indices into kvalues_iq4nl */
};
static_assert(sizeof(struct blk_iq4_nl) == 18, "iq4_nl block is 18 bytes");

/* ggml-common.h kvalues_iq4nl: sorted, 16 entries */
static const int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                         1,    13,   25,  38,  53,  69,  89,  113};

/* ---- search ----------------------------------------------------------------------- */

/* Index of the table entry nearest to x: clamp at the ends, bisect, then
 * compare the two distances in float (the lower entry wins only when
 * strictly nearer), as best_index_int8 does in build 4748. */
static int best_index(const int8_t *val, int n, float x)
{
    if (x <= val[0])
        return 0;
    if (x >= val[n - 1])
        return n - 1;
    int lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (x < val[mid])
            hi = mid;
        else
            lo = mid;
    }
    return x - val[hi - 1] < val[hi] - x ? hi - 1 : hi;
}

/* The scale of one block of x with weights w (the codes are redone by the
 * caller from the final scale, as ggml does). */
static float block_scale(const float *x, const float *w)
{
    float amax = 0, max = 0;
    for (int j = 0; j < QK4_NL; j++) {
        float ax = fabsf(x[j]);
        if (ax > amax) {
            amax = ax;
            max = x[j];
        }
    }
    if (amax < GROUP_MAX_EPS)
        return 0;
    float d = -max / kvalues_iq4nl[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < QK4_NL; j++) {
        float al = id * x[j];
        float q = kvalues_iq4nl[best_index(kvalues_iq4nl, 16, al)];
        sumqx += w[j] * q * x[j];
        sumq2 += w[j] * q * q;
    }
    d = sumqx / sumq2;
    float best = d * sumqx;
    for (int itry = -IQ4_NTRY; itry <= IQ4_NTRY; ++itry) {
        id = (itry + kvalues_iq4nl[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < QK4_NL; j++) {
            float al = id * x[j];
            float q = kvalues_iq4nl[best_index(kvalues_iq4nl, 16, al)];
            sumqx += w[j] * q * x[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

/* ---- rows ------------------------------------------------------------------------- */

void ggml_quantize_row_iq4_nl(const float *x, void *y, int64_t k)
{
    uint8_t *out = y;
    for (int64_t i = 0; i < k / QK4_NL; i++, x += QK4_NL, out += sizeof(struct blk_iq4_nl)) {
        struct blk_iq4_nl b;
        float w[QK4_NL];
        uint8_t L[QK4_NL];
        for (int j = 0; j < QK4_NL; j++)
            w[j] = x[j] * x[j];
        const float d = block_scale(x, w);
        ggml_put_half(b.d, d);
        const float id = d ? 1 / d : 0;
        for (int j = 0; j < QK4_NL; j++)
            L[j] = (uint8_t)best_index(kvalues_iq4nl, 16, id * x[j]);
        for (int j = 0; j < QK4_NL / 2; j++)
            b.qs[j] = (uint8_t)(L[j] | (L[j + QK4_NL / 2] << 4));
        memcpy(out, &b, sizeof b);
    }
}

void ggml_dequantize_row_iq4_nl(const void *x, float *y, int64_t k)
{
    const uint8_t *in = x;
    for (int64_t i = 0; i < k / QK4_NL; i++, in += sizeof(struct blk_iq4_nl), y += QK4_NL) {
        struct blk_iq4_nl b;
        memcpy(&b, in, sizeof b);
        const float d = ggml_get_half(b.d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            y[j] = d * kvalues_iq4nl[b.qs[j] & 0xF];
            y[j + QK4_NL / 2] = d * kvalues_iq4nl[b.qs[j] >> 4];
        }
    }
}
