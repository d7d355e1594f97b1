/* kquants.c — ggml's K-quants (q2_K..q6_K): reference quantizers and decoders, bit-exact with ggml.
 *
 * Every function here reproduces ggml's scalar reference code
 * (quantize_row_q*_K_ref without an importance matrix, dequantize_row_q*_K,
 * llama.cpp build 4748) operation for operation: the same float types, the
 * same evaluation order, the same rounding and the same search parameters.
 * A change of one ulp anywhere changes bytes, so expressions below are
 * written in the order ggml evaluates them, and must be compiled without
 * floating-point contraction into FMAs (see the pragma below) and
 * without -ffast-math.
 *
 * Blocks are 256 values (QK_K). Every field is bytes (fp16 fields go
 * through ggml_put_half/ggml_get_half, little-endian as in GGUF files),
 * and blocks are built in a local struct and copied out, so neither the
 * caller's buffer alignment nor the host's byte order matters.
 */
#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ggml_types.h"

/* One fused multiply-add where ggml rounds twice changes bytes, so
 * contraction is off whatever the flags: clang contracts within an
 * expression by default, GCC everywhere in GNU C mode (-std=gnu11). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- block layouts (as in ggml-common.h) ------------------------------- */

#define QK_K 256
#define K_SCALE_SIZE 12
/* make_qx_quants/make_q3_quants treat a group with max |x| below this as zero */
#define GROUP_MAX_EPS 1e-15f

struct blk_q2_K {             /* 2.625 bits per weight */
    uint8_t scales[QK_K / 16];   /* per 16 values: low nibble scale, high nibble min */
    uint8_t qs[QK_K / 4];        /* 2-bit quants */
    uint8_t d[2];                /* fp16, super-block scale of the scales */
    uint8_t dmin[2];             /* fp16, super-block scale of the mins */
};
static_assert(sizeof(struct blk_q2_K) == 84, "q2_K block is 84 bytes");

struct blk_q3_K {             /* 3.4375 bits per weight */
    uint8_t hmask[QK_K / 8];     /* high bit of each quant */
    uint8_t qs[QK_K / 4];        /* low 2 bits of each quant */
    uint8_t scales[12];          /* 16 6-bit scales, packed */
    uint8_t d[2];                /* fp16, super-block scale */
};
static_assert(sizeof(struct blk_q3_K) == 110, "q3_K block is 110 bytes");

struct blk_q4_K {             /* 4.5 bits per weight */
    uint8_t d[2];                /* fp16, super-block scale of the scales */
    uint8_t dmin[2];             /* fp16, super-block scale of the mins */
    uint8_t scales[K_SCALE_SIZE];/* 8 6-bit scales and 8 6-bit mins, packed */
    uint8_t qs[QK_K / 2];        /* 4-bit quants */
};
static_assert(sizeof(struct blk_q4_K) == 144, "q4_K block is 144 bytes");

struct blk_q5_K {             /* 5.5 bits per weight */
    uint8_t d[2];                /* fp16, super-block scale of the scales */
    uint8_t dmin[2];             /* fp16, super-block scale of the mins */
    uint8_t scales[K_SCALE_SIZE];/* as in q4_K */
    uint8_t qh[QK_K / 8];        /* 5th bit of each quant */
    uint8_t qs[QK_K / 2];        /* low 4 bits of each quant */
};
static_assert(sizeof(struct blk_q5_K) == 176, "q5_K block is 176 bytes");

struct blk_q6_K {             /* 6.5625 bits per weight */
    uint8_t ql[QK_K / 2];        /* low 4 bits of each quant */
    uint8_t qh[QK_K / 4];        /* high 2 bits of each quant */
    int8_t scales[QK_K / 16];    /* 8-bit signed scale per 16 values */
    uint8_t d[2];                /* fp16, super-block scale */
};
static_assert(sizeof(struct blk_q6_K) == 210, "q6_K block is 210 bytes");

/* ---- shared helpers ----------------------------------------------------- */

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int iclamp(int v, int lo, int hi) { return imax(lo, imin(hi, v)); }

/* Round to nearest, ties to even, the way ggml does it: adding 1.5 * 2^23
 * pushes the integer part into the low mantissa bits. Valid for
 * |f| <= 2^22 - 1; outside that (and for NaN) it returns some int, as
 * ggml's does, without undefined behaviour. */
static inline int nearest_int(float f)
{
    float biased = f + 12582912.f;
    int32_t bits;
    memcpy(&bits, &biased, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* Symmetric quantization of n values to [-nmax, nmax-1], weighted by x^2
 * (ggml's make_qx_quants with rmse_type 1 and no importance weights, the
 * only form the reference quantizers use). Tries 18 scales around nmax/max
 * and keeps the one with the best weighted least-squares fit. L receives
 * level + nmax; returns the scale. */
static float qx_quants_rmse1(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i)
            L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = iclamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0)
            continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = iclamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i)
                L[i] = (int8_t)(nmax + iclamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric 3-bit-style quantization (ggml's make_q3_quants with
 * do_rmse): starts from nmax/max, then up to 5 passes move single levels
 * while that improves the x^2-weighted fit. L receives level + nmax, except
 * for an all-zero group, where ggml leaves every L at 0. Returns the scale. */
static float q3_quants_rmse(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i)
            L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = iclamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int pass = 0; pass < 5; ++pass) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = iclamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed)
            break;
    }
    for (int i = 0; i < n; ++i)
        L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric quantization x ~ scale * L - min, L in [0, nmax] (ggml's
 * make_qkx2_quants): a first fit over [min(x, 0), max(x)], then nstep + 1
 * trial scales (nmax + rmin + rdelta*is) / range, each refitted by weighted
 * least squares for scale and min; the lowest weighted error (|diff| when
 * use_mad, else diff^2) wins. Laux is scratch of n bytes. Stores the
 * (non-negative) min in *the_min; returns the scale. */
static float qkx2_quants(int n, int nmax, const float *x, const float *weights,
                         uint8_t *L, float *the_min, uint8_t *Laux,
                         float rmin, float rdelta, int nstep, bool use_mad)
{
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min)
            min = x[i];
        if (x[i] > max)
            max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0)
        min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i)
            L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)iclamp(l, 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = iclamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* The 12-byte packing of eight 6-bit scales and eight 6-bit mins used by
 * q4_K and q5_K: entries 0-3 sit in the low 6 bits of bytes 0-3 (scales)
 * and 4-7 (mins); entries 4-7 keep their low nibbles in bytes 8-11 and
 * their top 2 bits in the spare top bits of bytes 0-7. */
static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void put_scale_min_k4(int j, uint8_t *q, uint8_t ls, uint8_t lm)
{
    if (j < 4) {
        q[j] = ls;
        q[j + 4] = lm;
    } else {
        q[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        q[j - 4] |= (uint8_t)((ls >> 4) << 6);
        q[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* The 6-bit signed scale j (0..15) of a q3_K block, minus its +32 offset:
 * low nibbles in bytes 0-7 (j < 8 low half, else high half), top 2 bits in
 * bytes 8-11, two bits per scale. */
static int q3_K_scale(const uint8_t *scales, int j)
{
    int lo = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
    int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* Packs 256 2-bit values: byte l of each 32-byte group holds values
 * l, l+32, l+64, l+96 of a 128-value half, lowest bits first. */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) |
                                      (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* ---- q2_K --------------------------------------------------------------- */

void ggml_quantize_row_q2_K(const float *x, void *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    const float q4scale = 15.f;
    uint8_t *out = y;

    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        struct blk_q2_K b;
        uint8_t L[QK_K], Laux[16];
        float weights[16], mins[QK_K / 16], scales[QK_K / 16];
        float max_scale = 0, max_min = 0;   /* scales and mins are >= 0 here */

        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l)
                weights[l] = fabsf(x[16 * j + l]);
            scales[j] = qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j],
                                    Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale)
                max_scale = scales[j];
            if (mins[j] > max_min)
                max_min = mins[j];
        }

        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j)
                b.scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            ggml_put_half(b.d, max_scale / q4scale);
        } else {
            memset(b.scales, 0, sizeof b.scales);
            ggml_put_half(b.d, 0.f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j) {
                /* unsigned shift: ggml shifts the int, same low 8 bits */
                unsigned l = (unsigned)nearest_int(iscale * mins[j]);
                b.scales[j] = (uint8_t)(b.scales[j] | (l << 4));
            }
            ggml_put_half(b.dmin, max_min / q4scale);
        } else {
            ggml_put_half(b.dmin, 0.f);
        }

        /* requantize against the scales as they will be decoded */
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = ggml_get_half(b.d) * (b.scales[j] & 0xF);
            if (!d)
                continue;
            const float dm = ggml_get_half(b.dmin) * (b.scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii)
                L[16 * j + ii] = (uint8_t)iclamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3);
        }
        pack_2bit(L, b.qs);
        memcpy(out + i * (int64_t)sizeof b, &b, sizeof b);
    }
}

void ggml_dequantize_row_q2_K(const void *x, float *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    const uint8_t *in = x;

    for (int64_t i = 0; i < nb; ++i) {
        struct blk_q2_K b;
        memcpy(&b, in + i * (int64_t)sizeof b, sizeof b);
        const float d = ggml_get_half(b.d);
        const float min = ggml_get_half(b.dmin);
        const uint8_t *q = b.qs;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; ++half) {
                    uint8_t sc = b.scales[is++];
                    const float dl = d * (sc & 0xF);
                    const float ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l)
                        *y++ = dl * ((q[16 * half + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* ---- q3_K --------------------------------------------------------------- */

void ggml_quantize_row_q3_K(const float *x, void *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    uint8_t *out = y;

    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        struct blk_q3_K b;
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0, amax = 0;   /* the signed scale of largest magnitude */

        for (int j = 0; j < QK_K / 16; ++j) {
            scales[j] = q3_quants_rmse(16, 4, x + 16 * j, L + 16 * j);
            float s = fabsf(scales[j]);
            if (s > amax) {
                amax = s;
                max_scale = scales[j];
            }
        }

        memset(b.scales, 0, sizeof b.scales);
        if (max_scale) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                /* ggml narrows to int8_t before clamping; keep that */
                int l = iclamp((int8_t)nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8)
                    b.scales[j] = (uint8_t)(l & 0xF);
                else
                    b.scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                b.scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            ggml_put_half(b.d, 1 / iscale);
        } else {
            ggml_put_half(b.d, 0.f);
        }

        /* requantize against the decoded scales; a zero scale keeps the
         * levels the group search chose */
        for (int j = 0; j < QK_K / 16; ++j) {
            float d = ggml_get_half(b.d) * q3_K_scale(b.scales, j);
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ++ii)
                L[16 * j + ii] = (int8_t)(iclamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
        }

        /* bit 0 of hmask[m] holds the high bit of value m, bit 1 that of
         * value m + 32, and so on */
        memset(b.hmask, 0, sizeof b.hmask);
        uint8_t low[QK_K];
        for (int j = 0; j < QK_K; ++j) {
            int l = L[j];
            if (l > 3) {
                b.hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                l -= 4;
            }
            low[j] = (uint8_t)l;
        }
        pack_2bit(low, b.qs);
        memcpy(out + i * (int64_t)sizeof b, &b, sizeof b);
    }
}

void ggml_dequantize_row_q3_K(const void *x, float *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    const uint8_t *in = x;

    for (int64_t i = 0; i < nb; ++i) {
        struct blk_q3_K b;
        memcpy(&b, in + i * (int64_t)sizeof b, sizeof b);
        const float d_all = ggml_get_half(b.d);
        const uint8_t *q = b.qs;
        unsigned m = 1;
        int is = 0;
        for (int n = 0; n < QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int half = 0; half < 2; ++half) {
                    const float dl = d_all * q3_K_scale(b.scales, is++);
                    for (int l = 0; l < 16; ++l) {
                        int idx = 16 * half + l;
                        int v = ((q[idx] >> shift) & 3) - ((b.hmask[idx] & m) ? 0 : 4);
                        *y++ = dl * v;
                    }
                }
            }
        }
    }
}

/* ---- q4_K and q5_K ------------------------------------------------------- */

/* The common first half of q4_K and q5_K: per 32 values an asymmetric fit
 * with nmax levels, then the 6-bit scales/mins, d and dmin, then the
 * requantized levels L (0..nmax) against the decoded scales. */
static void quantize_kx_scales(const float *x, int nmax, float rmin, int nstep,
                               uint8_t scales_out[K_SCALE_SIZE], uint8_t d_out[2],
                               uint8_t dmin_out[2], uint8_t L[QK_K])
{
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;

    for (int j = 0; j < QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j],
                                Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale)
            max_scale = scales[j];
        if (mins[j] > max_min)
            max_min = mins[j];
    }

    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; ++j) {
        /* ggml stores the int in a uint8_t before clamping: keep the wrap */
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        put_scale_min_k4(j, scales_out, ls < 63 ? ls : 63, lm < 63 ? lm : 63);
    }
    ggml_put_half(d_out, max_scale / 63.f);
    ggml_put_half(dmin_out, max_min / 63.f);

    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, scales_out, &sc, &m);
        const float d = ggml_get_half(d_out) * sc;
        if (!d)
            continue;
        const float dm = ggml_get_half(dmin_out) * m;
        for (int ii = 0; ii < 32; ++ii)
            L[32 * j + ii] = (uint8_t)iclamp(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

void ggml_quantize_row_q4_K(const float *x, void *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    uint8_t *out = y;

    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        struct blk_q4_K b;
        uint8_t L[QK_K];
        quantize_kx_scales(x, 15, -1.f, 20, b.scales, b.d, b.dmin, L);
        /* each 32-byte group: values j..j+31 low nibbles, j+32..j+63 high */
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; ++l)
                b.qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        memcpy(out + i * (int64_t)sizeof b, &b, sizeof b);
    }
}

void ggml_dequantize_row_q4_K(const void *x, float *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    const uint8_t *in = x;

    for (int64_t i = 0; i < nb; ++i) {
        struct blk_q4_K b;
        memcpy(&b, in + i * (int64_t)sizeof b, sizeof b);
        const float d = ggml_get_half(b.d);
        const float min = ggml_get_half(b.dmin);
        const uint8_t *q = b.qs;
        for (int is = 0; is < QK_K / 32; is += 2, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(is, b.scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, b.scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

void ggml_quantize_row_q5_K(const float *x, void *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    uint8_t *out = y;

    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        struct blk_q5_K b;
        uint8_t L[QK_K];
        quantize_kx_scales(x, 31, -0.5f, 15, b.scales, b.d, b.dmin, L);
        /* as q4_K, with the 5th bit of values n+j and n+j+32 (n = 0, 64,
         * 128, 192) in bits 2n/64 and 2n/64 + 1 of qh[j] */
        memset(b.qh, 0, sizeof b.qh);
        for (int n = 0; n < QK_K; n += 64) {
            const int bit = n / 32;
            for (int j = 0; j < 32; ++j) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    b.qh[j] |= (uint8_t)(1u << bit);
                }
                if (l2 > 15) {
                    l2 -= 16;
                    b.qh[j] |= (uint8_t)(2u << bit);
                }
                b.qs[n / 2 + j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
        memcpy(out + i * (int64_t)sizeof b, &b, sizeof b);
    }
}

void ggml_dequantize_row_q5_K(const void *x, float *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    const uint8_t *in = x;

    for (int64_t i = 0; i < nb; ++i) {
        struct blk_q5_K b;
        memcpy(&b, in + i * (int64_t)sizeof b, sizeof b);
        const float d = ggml_get_half(b.d);
        const float min = ggml_get_half(b.dmin);
        const uint8_t *ql = b.qs;
        unsigned u1 = 1, u2 = 2;
        for (int is = 0; is < QK_K / 32; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            get_scale_min_k4(is, b.scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, b.scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l)
                *y++ = d1 * ((ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l)
                *y++ = d2 * ((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

/* ---- q6_K --------------------------------------------------------------- */

void ggml_quantize_row_q6_K(const float *x, void *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    uint8_t *out = y;

    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        struct blk_q6_K b;
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0, max_abs_scale = 0;

        for (int ib = 0; ib < QK_K / 16; ++ib) {
            scales[ib] = qx_quants_rmse1(16, 32, x + 16 * ib, L + 16 * ib);
            float s = fabsf(scales[ib]);
            if (s > max_abs_scale) {
                max_abs_scale = s;
                max_scale = scales[ib];
            }
        }

        memset(&b, 0, sizeof b);
        if (max_abs_scale < GROUP_MAX_EPS) {
            /* an all-(near-)zero block is all zero bytes, d = +0 */
            ggml_put_half(b.d, 0.f);
            memcpy(out + i * (int64_t)sizeof b, &b, sizeof b);
            continue;
        }

        float iscale = -128.f / max_scale;
        ggml_put_half(b.d, 1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib)
            b.scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));

        for (int j = 0; j < QK_K / 16; ++j) {
            float d = ggml_get_half(b.d) * b.scales[j];
            if (!d)
                continue;
            for (int ii = 0; ii < 16; ++ii)
                L[16 * j + ii] = (int8_t)(iclamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
        }

        /* per 128 values: ql[l] holds values l (low) and l+64 (high
         * nibble), ql[l+32] values l+32 and l+96; qh[l] their top 2 bits */
        for (int j = 0; j < QK_K; j += 128) {
            uint8_t *ql = b.ql + j / 2, *qh = b.qh + j / 4;
            for (int l = 0; l < 32; ++l) {
                const uint8_t v0 = (uint8_t)L[j + l], v1 = (uint8_t)L[j + l + 32];
                const uint8_t v2 = (uint8_t)L[j + l + 64], v3 = (uint8_t)L[j + l + 96];
                ql[l] = (uint8_t)((v0 & 0xF) | ((v2 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((v1 & 0xF) | ((v3 & 0xF) << 4));
                qh[l] = (uint8_t)((v0 >> 4) | ((v1 >> 4) << 2) | ((v2 >> 4) << 4) | ((v3 >> 4) << 6));
            }
        }
        memcpy(out + i * (int64_t)sizeof b, &b, sizeof b);
    }
}

void ggml_dequantize_row_q6_K(const void *x, float *y, int64_t k)
{
    assert(k % QK_K == 0);
    const int64_t nb = k / QK_K;
    const uint8_t *in = x;

    for (int64_t i = 0; i < nb; ++i) {
        struct blk_q6_K b;
        memcpy(&b, in + i * (int64_t)sizeof b, sizeof b);
        const float d = ggml_get_half(b.d);
        for (int n = 0; n < QK_K / 128; ++n) {
            const uint8_t *ql = b.ql + 64 * n, *qh = b.qh + 32 * n;
            const int8_t *sc = b.scales + 8 * n;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
        }
    }
}
