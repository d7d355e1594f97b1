/* minifloat.c — round-to-nearest-even onto small float grids and their OCP/IEEE bit codes, in integer arithmetic.
 *
 * Rounding works on the float32 bit pattern: the significand (with its
 * hidden bit) is shifted right onto the target grid with round half to
 * even, so the result does not depend on the FPU rounding mode, no libm
 * is called, and a power-of-two block scale is applied by moving the
 * exponent, not by a float division that could round first.
 */
#include "minifloat.h"

#include <string.h>

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

/* ---- rounding ----------------------------------------------------------- */

int mf_floor_log2(uint32_t a)
{
    uint32_t ex = a >> 23;
    if (ex)
        return (int)ex - 127;
    return -149 + 31 - __builtin_clz(a); /* float32 subnormal: its top set bit */
}

/* Rounds the non-zero magnitude a (float32 bits) / 2^shift onto f's grid
 * with largest significand nmax; returns 1 when it saturates instead. */
static int round_magnitude(const struct mf_format *f, uint32_t a, int shift, uint32_t nmax,
                           uint32_t *n_out, int *qe_out)
{
    /* a / 2^shift = sig * 2^lsb exactly, and e = floor(log2) of it */
    uint32_t sig = (a >> 23) ? (a & 0x7fffffu) | 0x800000u : a;
    int lsb = ((a >> 23) ? (int)(a >> 23) - 150 : -149) - shift;
    int e = mf_floor_log2(a) - shift;
    if (e > f->emax)
        return 1;

    int qe = (e > f->emin ? e : f->emin) - f->m;
    int k = qe - lsb; /* bits of sig below the grid's unit */
    uint32_t n;
    if (k <= 0)
        n = sig << -k; /* already on the grid; n < 2^(m+1), so -k <= m+1 */
    else if (k > 25)
        n = 0;         /* below a quarter of the grid's unit */
    else               /* half to even: add just under a half, plus the kept lsb */
        n = (sig + (1u << (k - 1)) - 1u + ((sig >> k) & 1u)) >> k;
    if (n >> (f->m + 1)) { /* rounded up into the next binade */
        n >>= 1;
        qe++;
    }
    int top = f->emax - f->m; /* qe of the largest binade */
    if (qe > top || (qe == top && n > nmax))
        return 1;
    *n_out = n;
    *qe_out = qe;
    return 0;
}

void mf_round(const struct mf_format *f, uint32_t x, int shift, struct mf_value *v)
{
    uint32_t a = x & 0x7fffffffu;
    uint32_t nmax = (x >> 31) ? f->nmax_neg : f->nmax;
    v->sign = x >> 31;
    v->n = 0;
    v->qe = f->emin - f->m;
    if (a != 0 && round_magnitude(f, a, shift, nmax, &v->n, &v->qe)) {
        v->n = nmax;
        v->qe = f->emax - f->m;
    }
    /* Two's complement has no -0: a negative value that rounds to 0 is 0. */
    if (f->kind == MF_INT && v->n == 0)
        v->sign = 0;
}

float mf_to_float(const struct mf_value *v, int shift)
{
    /* n * 2^q in double is exact (|q| < 300); the cast to float is then
     * exact for every value the quantizer makes, Inf past FLT_MAX. */
    int q = v->qe + shift;
    uint64_t pbits = (uint64_t)(q + 1023) << 52;
    double p;
    memcpy(&p, &pbits, sizeof p);
    double d = (double)v->n * p;
    return (float)(v->sign ? -d : d);
}

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
