/* tensor.c — the storage-type table, half-precision conversions and float32 views of tensors. */
#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- little-endian loads (any alignment, any host byte order) ----------- */

static uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static float bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ---- half-precision conversions ------------------------------------------ */

float qf16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) /* inf, or NaN with its payload kept */
        return bits_to_f32(sign | 0x7f800000u | mant << 13);
    if (exp == 0) {
        if (mant == 0)
            return bits_to_f32(sign);
        /* subnormal: mant * 2^-24, exact in float32 */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | (exp + 112) << 23 | mant << 13);
}

float qbf16_to_f32(uint16_t h)
{
    return bits_to_f32((uint32_t)h << 16);
}

/* Round-to-nearest-even of mant >> shift (shift >= 1). */
static uint32_t shift_rne(uint32_t mant, int shift)
{
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return q;
}

uint16_t qf32_to_f16(float f)
{
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet, top payload bits kept */
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u) /* >= 65520 rounds to inf (and inf itself) */
        return (uint16_t)(sign | 0x7c00);
    if (ax >= 0x38800000u) { /* >= 2^-14: normal half */
        uint32_t h = ((ax >> 23) - 112) << 10 | ((ax & 0x7fffff) >> 13);
        uint32_t rem = ax & 0x1fff;
        /* a carry out of the mantissa bumps the exponent, as it should */
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    if (ax <= 0x33000000u) /* <= 2^-25: the tie at 2^-25 goes to even 0 */
        return sign;
    /* subnormal half: value / 2^-24 = mant * 2^(e - 126), e in [102, 112] */
    uint32_t mant = (ax & 0x7fffff) | 0x800000;
    int e = (int)(ax >> 23);
    return (uint16_t)(sign | shift_rne(mant, 126 - e));
}

uint16_t qf32_to_bf16(float f)
{
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN stays NaN: set the quiet bit */
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- the dtype table ---------------------------------------------------- */

static void f32_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = bits_to_f32(ld32(p + 4 * i));
}

static void f16_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = qf16_to_f32(ld16(p + 2 * i));
}

static void bf16_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = qbf16_to_f32(ld16(p + 2 * i));
}

static void i64_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(int64_t)ld64(p + 8 * i);
}

static void i32_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(int32_t)ld32(p + 4 * i);
}

static void u8_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)p[i];
}

static void i8_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = (float)(int8_t)p[i];
}

static const struct qdtype_info dtype_table[QDT_COUNT] = {
    [QDT_F32]  = { .name = "F32",  .size = 4, .to_float = f32_to_float },
    [QDT_F16]  = { .name = "F16",  .size = 2, .to_float = f16_to_float },
    [QDT_BF16] = { .name = "BF16", .size = 2, .to_float = bf16_to_float },
    [QDT_I64]  = { .name = "I64",  .size = 8, .to_float = i64_to_float },
    [QDT_I32]  = { .name = "I32",  .size = 4, .to_float = i32_to_float },
    [QDT_U8]   = { .name = "U8",   .size = 1, .to_float = u8_to_float },
    [QDT_I8]   = { .name = "I8",   .size = 1, .to_float = i8_to_float },
};

const struct qdtype_info *qdtype_info(enum qdtype t)
{
    if ((int)t < 0 || t >= QDT_COUNT)
        return NULL;
    return &dtype_table[t];
}

int qdtype_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int t = 0; t < QDT_COUNT; t++)
        if (strcmp(dtype_table[t].name, name) == 0)
            return t;
    return -1;
}

/* ---- tensors ------------------------------------------------------------ */

int qtensor_make_f32(struct qtensor *t, qerr *err)
{
    if (t->f32)
        return 0;
    const char *name = t->name ? t->name : "(unnamed)";
    const struct qdtype_info *info = qdtype_info(t->dtype);
    if (!info)
        return qerr_set(err, "tensor '%s': unknown dtype id %d", name, (int)t->dtype);
    if (t->numel < 0 || (uint64_t)t->numel > SIZE_MAX / sizeof(float)
        || (uint64_t)t->numel > SIZE_MAX / info->size)
        return qerr_set(err, "tensor '%s': %lld elements are too many", name,
                        (long long)t->numel);
    size_t need = (size_t)t->numel * info->size;
    if (t->nbytes < need || (need > 0 && !t->data))
        return qerr_set(err, "tensor '%s': %zu bytes of data, %lld x %s needs %zu", name,
                        t->data ? t->nbytes : 0, (long long)t->numel, info->name, need);
    if (t->dtype == QDT_F32 && t->data && (uintptr_t)t->data % _Alignof(float) == 0) {
        t->f32 = t->data;
        return 0;
    }
    /* at least one element so an empty tensor still gets a valid pointer */
    size_t count = t->numel > 0 ? (size_t)t->numel : 1;
    float *buf = malloc(count * sizeof(float));
    if (!buf)
        return qerr_set(err, "tensor '%s': out of memory for %lld floats", name,
                        (long long)t->numel);
    if (t->numel > 0)
        info->to_float(t->data, buf, t->numel);
    t->f32_owned = buf;
    t->f32 = buf;
    return 0;
}

void qtensor_clear(struct qtensor *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->f32_owned);
    memset(t, 0, sizeof *t);
}

void qtensor_matrix_shape(const struct qtensor *t, int64_t *rows, int64_t *cols)
{
    int64_t r = 1, c = 1;
    if (t->ndim == 1) {
        c = t->shape[0];
    } else if (t->ndim >= 2) {
        r = t->shape[0];
        for (int i = 1; i < t->ndim; i++)
            c *= t->shape[i];
    }
    if (rows)
        *rows = r;
    if (cols)
        *cols = c;
}

void qshape_format(const int64_t *shape, int ndim, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    size_t used = 0;
    buf[0] = 0;
    /* snprintf returns what it wanted to write; clamp so `used` stays in bounds */
#define PUT(...)                                                      \
    do {                                                              \
        int k_ = snprintf(buf + used, size - used, __VA_ARGS__);      \
        if (k_ < 0 || (size_t)k_ >= size - used) {                    \
            used = size - 1;                                          \
        } else {                                                      \
            used += (size_t)k_;                                       \
        }                                                             \
    } while (0)
    PUT("[");
    for (int i = 0; i < ndim; i++)
        PUT(i ? ", %lld" : "%lld", (long long)shape[i]);
    PUT("]");
#undef PUT
}
