/* minifloat.h — the element formats of the float plugin: rounding float32 onto a small float (or MXINT8) grid, and their bit codes. */
#ifndef QLAB_FLOAT_MINIFLOAT_H
#define QLAB_FLOAT_MINIFLOAT_H

#include <stdint.h>

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

/* Rounds the finite float32 with bits `x`, divided by 2^shift (exactly:
 * no intermediate float is formed), to the nearest value of f, ties to
 * the even significand, saturating to +-max. */
void mf_round(const struct mf_format *f, uint32_t x, int shift, struct mf_value *v);

/* (-1)^sign * n * 2^(qe + shift) as a float32; exact whenever it fits,
 * +-Inf when it does not (only possible for decoded foreign bytes). */
float mf_to_float(const struct mf_value *v, int shift);

/* The code of a rounded value (the low f->bits bits). */
uint32_t mf_encode(const struct mf_format *f, const struct mf_value *v);

/* Decodes a code; -1 for a NaN or Inf code. */
int mf_decode(const struct mf_format *f, uint32_t code, struct mf_value *v);

/* floor(log2 |x|) for the non-zero finite float32 with |x| bits `a`. */
int mf_floor_log2(uint32_t a);

#endif
