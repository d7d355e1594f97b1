/* minifloat.c — the element format table of the float plugin and the OCP/IEEE bit codes of rounded values. */
#include "minifloat.h"

/* ---- the formats -------------------------------------------------------
 * bias = 1 - emin; max = nmax * 2^(emax - m):
 *   fp16 (IEEE binary16)  bias 15   max 2047 * 2^5    = 65504
 *   bf16                  bias 127  max 255 * 2^120   = 3.3895314e38
 *   OCP E4M3              bias 7    max 14 * 2^5      = 448 (1.111 x 2^8 is NaN)
 *   OCP E5M2              bias 15   max 7 * 2^13      = 57344
 *   OCP MX E2M3           bias 1    max 15 * 2^-1     = 7.5
 *   OCP MX E3M2           bias 3    max 7 * 2^2       = 28
 *   OCP MX E2M1           bias 1    max 3 * 2^1       = 6
 *   OCP MXINT8            k * 2^-6, k in -128..127:  1.984375 and -2
 */
const struct mf_format MF_FP16 = {.name = "fp16", .bits = 16, .m = 10, .emin = -14, .emax = 15,
                                  .nmax = 2047, .nmax_neg = 2047, .kind = MF_IEEE,
                                  .max = 65504.0f};
const struct mf_format MF_BF16 = {.name = "bf16", .bits = 16, .m = 7, .emin = -126, .emax = 127,
                                  .nmax = 255, .nmax_neg = 255, .kind = MF_IEEE,
                                  .max = 3.38953139e38f};
const struct mf_format MF_FP8_E4M3 = {.name = "e4m3", .bits = 8, .m = 3, .emin = -6, .emax = 8,
                                      .nmax = 14, .nmax_neg = 14, .kind = MF_E4M3,
                                      .max = 448.0f};
const struct mf_format MF_FP8_E5M2 = {.name = "e5m2", .bits = 8, .m = 2, .emin = -14, .emax = 15,
                                      .nmax = 7, .nmax_neg = 7, .kind = MF_IEEE,
                                      .max = 57344.0f};
const struct mf_format MF_FP6_E2M3 = {.name = "e2m3", .bits = 6, .m = 3, .emin = 0, .emax = 2,
                                      .nmax = 15, .nmax_neg = 15, .kind = MF_FINITE,
                                      .max = 7.5f};
const struct mf_format MF_FP6_E3M2 = {.name = "e3m2", .bits = 6, .m = 2, .emin = -2, .emax = 4,
                                      .nmax = 7, .nmax_neg = 7, .kind = MF_FINITE,
                                      .max = 28.0f};
const struct mf_format MF_FP4_E2M1 = {.name = "e2m1", .bits = 4, .m = 1, .emin = 0, .emax = 2,
                                      .nmax = 3, .nmax_neg = 3, .kind = MF_FINITE,
                                      .max = 6.0f};
const struct mf_format MF_MXINT8 = {.name = "int8", .bits = 8, .m = 6, .emin = 0, .emax = 0,
                                    .nmax = 127, .nmax_neg = 128, .kind = MF_INT,
                                    .max = 1.984375f};

/* ---- codes -------------------------------------------------------------- */

uint32_t mf_encode(const struct mf_format *f, const struct mf_value *v)
{
    if (f->kind == MF_INT) {
        /* two's complement of +-n in 8 bits (n <= 128) */
        uint32_t k = v->sign ? 256u - v->n : v->n;
        return k & 0xffu;
    }
    uint32_t s = v->sign << (f->bits - 1), hidden = 1u << f->m;
    if (v->n < hidden) /* zero or subnormal: exponent field 0, qe = emin - m */
        return s | v->n;
    uint32_t field = (uint32_t)(v->qe + f->m - f->emin + 1);
    return s | field << f->m | (v->n - hidden);
}

int mf_decode(const struct mf_format *f, uint32_t code, struct mf_value *v)
{
    if (f->kind == MF_INT) {
        code &= 0xffu;
        v->sign = code >> 7;
        v->n = v->sign ? 256u - code : code;
        v->qe = -f->m;
        return 0;
    }
    uint32_t mmask = (1u << f->m) - 1u;
    uint32_t emask = (1u << (f->bits - 1 - f->m)) - 1u;
    uint32_t field = (code >> f->m) & emask, mant = code & mmask;
    v->sign = (code >> (f->bits - 1)) & 1u;
    if (f->kind == MF_IEEE && field == emask)
        return -1;
    if (f->kind == MF_E4M3 && field == emask && mant == mmask)
        return -1;
    if (field == 0) {
        v->n = mant;
        v->qe = f->emin - f->m;
    } else {
        v->n = mant | (1u << f->m);
        v->qe = (int)field - 1 + f->emin - f->m;
    }
    return 0;
}
