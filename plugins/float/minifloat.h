/* minifloat.h — the element formats of the float plugin: rounding float32 onto a small float (or MXINT8) grid, and their bit codes.
 *
 * Rounding works on the float32 bit pattern: the significand (with its
 * hidden bit) is shifted right onto the target grid with round half to
 * even, so the result does not depend on the FPU rounding mode, no libm
 * is called, and a power-of-two block scale is applied by moving the
 * exponent, not by a float division that could round first. The rounding
 * functions are inline here because they run once per element.
 */
#ifndef QLAB_FLOAT_MINIFLOAT_H
#define QLAB_FLOAT_MINIFLOAT_H

#include <stdint.h>
#include <string.h>

/* Which codes of a format are not numbers. */
enum mf_kind {
    MF_IEEE,   /* all-ones exponent field is Inf/NaN (fp16, bf16, OCP E5M2) */
    MF_E4M3,   /* only S.1111.111 is NaN; no infinities (OCP E4M3) */
    MF_FINITE, /* every code is a number (OCP MX E2M3, E3M2, E2M1) */
    MF_INT,    /* two's complement integer k meaning k * 2^-m (OCP MXINT8) */
    MF_KIND_COUNT
};

/* A sign-magnitude grid: the magnitudes are n * 2^qe with
 *   qe = max(e, emin) - m  (e = floor(log2 |x|); below emin: subnormals)
 *   n  < 2^(m+1), and at most nmax * 2^(emax - m).
 * MXINT8 fits the same mould with emin = emax = 0, m = 6: every value is
 * k * 2^-6, |k| <= 127 (positive) or 128 (negative: -2.0 is a code). */
struct mf_format {
    const char *name;     /* "e4m3", for messages */
    int bits;             /* code width: 4, 6, 8 or 16 */
    int m;                /* fraction bits (the hidden bit not counted) */
    int emin, emax;       /* exponents of the smallest and largest normal binade */
    uint32_t nmax;        /* largest significand at emax: max = nmax * 2^(emax - m) */
    uint32_t nmax_neg;    /* the same for negative values (differs for MXINT8 only) */
    enum mf_kind kind;
    float max;            /* largest finite value, nmax * 2^(emax - m) */
};

/* The element formats, with exact constants (see minifloat.c). */
extern const struct mf_format MF_FP16, MF_BF16, MF_FP8_E4M3, MF_FP8_E5M2, MF_FP6_E2M3,
    MF_FP6_E3M2, MF_FP4_E2M1, MF_MXINT8;

/* A rounded element: (-1)^sign * n * 2^qe. */
struct mf_value {
    uint32_t sign; /* 0 or 1 */
    uint32_t n;    /* significand, < 2^(m+1) */
    int qe;        /* exponent of n's unit bit, in [emin - m, emax - m] */
};

/* The code of a rounded value (the low f->bits bits). */
uint32_t mf_encode(const struct mf_format *f, const struct mf_value *v);

/* Decodes a code; -1 for a NaN or Inf code. */
int mf_decode(const struct mf_format *f, uint32_t code, struct mf_value *v);

/* ---- rounding (inline: called once per element) ------------------------- */

/* floor(log2 |x|) for the non-zero finite float32 with |x| bits `a`. */
static inline int mf_floor_log2(uint32_t a)
{
    uint32_t ex = a >> 23;
    if (ex)
        return (int)ex - 127;
    return -149 + 31 - __builtin_clz(a); /* float32 subnormal: its top set bit */
}

/* Rounds the non-zero magnitude a (float32 bits) / 2^shift onto f's grid
 * with largest significand nmax; returns 1 when it saturates instead. */
static inline int mf_round_magnitude(const struct mf_format *f, uint32_t a, int shift,
                                     uint32_t nmax, uint32_t *n_out, int *qe_out)
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

/* Rounds the finite float32 with bits `x`, divided by 2^shift (exactly:
 * no intermediate float is formed), to the nearest value of f, ties to
 * the even significand, saturating to +-max. */
static inline void mf_round(const struct mf_format *f, uint32_t x, int shift,
                            struct mf_value *v)
{
    uint32_t a = x & 0x7fffffffu;
    uint32_t nmax = (x >> 31) ? f->nmax_neg : f->nmax;
    v->sign = x >> 31;
    v->n = 0;
    v->qe = f->emin - f->m;
    if (a != 0 && mf_round_magnitude(f, a, shift, nmax, &v->n, &v->qe)) {
        v->n = nmax;
        v->qe = f->emax - f->m;
    }
    /* Two's complement has no -0: a negative value that rounds to 0 is 0. */
    if (f->kind == MF_INT && v->n == 0)
        v->sign = 0;
}

/* (-1)^sign * n * 2^(qe + shift) as a float32; exact whenever it fits,
 * +-Inf when it does not (only possible for decoded foreign bytes). */
static inline float mf_to_float(const struct mf_value *v, int shift)
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

#endif
