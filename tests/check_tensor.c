/* check_tensor.c — the dtype table, half-precision conversions and float32 views. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant/tensor.h"
#include "test_util.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- Table --------------------------------------------------------------- */

START_TEST(dtype_table)
{
    static const struct { const char *name; size_t size; } want[QDT_COUNT] = {
        [QDT_F32] = { "F32", 4 }, [QDT_F16] = { "F16", 2 }, [QDT_BF16] = { "BF16", 2 },
        [QDT_I64] = { "I64", 8 }, [QDT_I32] = { "I32", 4 }, [QDT_U8] = { "U8", 1 },
        [QDT_I8] = { "I8", 1 },
    };
    for (int t = 0; t < QDT_COUNT; t++) {
        const struct qdtype_info *info = qdtype_info(t);
        ck_assert_ptr_nonnull(info);
        ck_assert_str_eq(info->name, want[t].name);
        ck_assert_uint_eq(info->size, want[t].size);
        ck_assert_ptr_nonnull(info->to_float);
        ck_assert_int_eq(qdtype_from_name(want[t].name), t);
    }
    ck_assert_ptr_null(qdtype_info(QDT_COUNT));
    ck_assert_int_eq(qdtype_from_name("f32"), -1); /* safetensors spelling is upper case */
    ck_assert_int_eq(qdtype_from_name("F64"), -1);
    ck_assert_int_eq(qdtype_from_name(""), -1);
    ck_assert_int_eq(qdtype_from_name(NULL), -1);
}
END_TEST

/* Each converter reads little-endian bytes at an odd address. */
START_TEST(dtype_to_float)
{
    uint8_t buf[1 + 16];
    float out[2];
    /* F32: 1.5 = 0x3FC00000, -0.25 = 0xBE800000 */
    const uint8_t f32[] = { 0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x80, 0xBE };
    memcpy(buf + 1, f32, sizeof f32);
    qdtype_info(QDT_F32)->to_float(buf + 1, out, 2);
    ck_assert(out[0] == 1.5f && out[1] == -0.25f);
    /* F16: 0x3C00 = 1, 0xC000 = -2 */
    const uint8_t f16[] = { 0x00, 0x3C, 0x00, 0xC0 };
    memcpy(buf + 1, f16, sizeof f16);
    qdtype_info(QDT_F16)->to_float(buf + 1, out, 2);
    ck_assert(out[0] == 1.0f && out[1] == -2.0f);
    /* BF16: 0x3FC0 = 1.5, 0xC2F7 = -123.5 */
    const uint8_t bf16[] = { 0xC0, 0x3F, 0xF7, 0xC2 };
    memcpy(buf + 1, bf16, sizeof bf16);
    qdtype_info(QDT_BF16)->to_float(buf + 1, out, 2);
    ck_assert(out[0] == 1.5f && out[1] == -123.5f);
    /* I64: -5 and 2^40 */
    const uint8_t i64[] = { 0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                            0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00 };
    memcpy(buf + 1, i64, sizeof i64);
    qdtype_info(QDT_I64)->to_float(buf + 1, out, 2);
    ck_assert(out[0] == -5.0f && out[1] == 1099511627776.0f);
    /* I32: -2 and 65537 */
    const uint8_t i32[] = { 0xFE, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x01, 0x00 };
    memcpy(buf + 1, i32, sizeof i32);
    qdtype_info(QDT_I32)->to_float(buf + 1, out, 2);
    ck_assert(out[0] == -2.0f && out[1] == 65537.0f);
    const uint8_t bytes[] = { 0xFF, 0x80 };
    qdtype_info(QDT_U8)->to_float(bytes, out, 2);
    ck_assert(out[0] == 255.0f && out[1] == 128.0f);
    qdtype_info(QDT_I8)->to_float(bytes, out, 2);
    ck_assert(out[0] == -1.0f && out[1] == -128.0f);
}
END_TEST

/* ---- Half ---------------------------------------------------------------- */

START_TEST(f16_known_values)
{
    ck_assert(qf16_to_f32(0x3C00) == 1.0f);
    ck_assert(qf16_to_f32(0xC000) == -2.0f);
    ck_assert(qf16_to_f32(0x7BFF) == 65504.0f);
    ck_assert(qf16_to_f32(0x0001) == ldexpf(1.0f, -24));
    ck_assert(qf16_to_f32(0x03FF) == 1023.0f * ldexpf(1.0f, -24)); /* largest subnormal */
    ck_assert(qf16_to_f32(0x0400) == ldexpf(1.0f, -14));            /* smallest normal */
    ck_assert(qf16_to_f32(0x3555) == 0x1.554p-2f);                   /* 0.333251953125 */
    ck_assert(isinf(qf16_to_f32(0x7C00)) && qf16_to_f32(0x7C00) > 0);
    ck_assert(isinf(qf16_to_f32(0xFC00)) && qf16_to_f32(0xFC00) < 0);
    ck_assert(isnan(qf16_to_f32(0x7E00)));
    ck_assert(isnan(qf16_to_f32(0x7C01))); /* signalling payload is still NaN */
    ck_assert_uint_eq(bits(qf16_to_f32(0x8000)), 0x80000000u);
    ck_assert_uint_eq(bits(qf16_to_f32(0x0000)), 0);

    ck_assert_uint_eq(qf32_to_f16(1.0f), 0x3C00);
    ck_assert_uint_eq(qf32_to_f16(-2.0f), 0xC000);
    ck_assert_uint_eq(qf32_to_f16(65504.0f), 0x7BFF);
    ck_assert_uint_eq(qf32_to_f16(ldexpf(1.0f, -24)), 0x0001);
    ck_assert_uint_eq(qf32_to_f16(ldexpf(1.0f, -14)), 0x0400);
    ck_assert_uint_eq(qf32_to_f16(-0.0f), 0x8000);
    ck_assert_uint_eq(qf32_to_f16(INFINITY), 0x7C00);
    ck_assert_uint_eq(qf32_to_f16(-INFINITY), 0xFC00);
    uint16_t n = qf32_to_f16(NAN);
    ck_assert_uint_eq(n & 0x7C00, 0x7C00);
    ck_assert_uint_ne(n & 0x03FF, 0);
    /* a NaN whose payload sits only in the low bits must not become inf */
    n = qf32_to_f16(from_bits(0x7F800001u));
    ck_assert_uint_eq(n & 0x7C00, 0x7C00);
    ck_assert_uint_ne(n & 0x03FF, 0);
}
END_TEST

START_TEST(f16_round_to_nearest_even)
{
    /* spacing at 1 is 2^-10: 1 + 2^-11 is halfway between 0x3C00 (even) and 0x3C01 */
    ck_assert_uint_eq(qf32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3C00);
    /* 1 + 3*2^-11 is halfway between 0x3C01 and 0x3C02 (even) */
    ck_assert_uint_eq(qf32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)), 0x3C02);
    /* just above the first tie rounds up */
    ck_assert_uint_eq(qf32_to_f16(1.0f + ldexpf(1.0f, -11) + ldexpf(1.0f, -20)), 0x3C01);
    /* just below the second tie rounds down */
    ck_assert_uint_eq(qf32_to_f16(1.0f + 3 * ldexpf(1.0f, -11) - ldexpf(1.0f, -20)), 0x3C01);
    /* a carry out of the mantissa: 2 - 2^-11 is halfway between 0x3FFF and 0x4000 */
    ck_assert_uint_eq(qf32_to_f16(2.0f - ldexpf(1.0f, -11)), 0x4000);
    ck_assert_uint_eq(qf32_to_f16(2.0f - ldexpf(1.0f, -10)), 0x3FFF);
    /* overflow: 65519 rounds to 65504; 65520 is the tie that goes to inf */
    ck_assert_uint_eq(qf32_to_f16(65519.0f), 0x7BFF);
    ck_assert_uint_eq(qf32_to_f16(65520.0f), 0x7C00);
    ck_assert_uint_eq(qf32_to_f16(1e6f), 0x7C00);
    ck_assert_uint_eq(qf32_to_f16(-1e6f), 0xFC00);
    ck_assert_uint_eq(qf32_to_f16(3.0e38f), 0x7C00);
    /* subnormals, in units of 2^-24 */
    float u = ldexpf(1.0f, -24);
    ck_assert_uint_eq(qf32_to_f16(0.5f * u), 0x0000);   /* tie with 0 goes to even 0 */
    ck_assert_uint_eq(qf32_to_f16(nextafterf(0.5f * u, 1.0f)), 0x0001);
    ck_assert_uint_eq(qf32_to_f16(-0.5f * u), 0x8000);
    ck_assert_uint_eq(qf32_to_f16(1.5f * u), 0x0002);   /* tie 1|2 -> 2 */
    ck_assert_uint_eq(qf32_to_f16(2.5f * u), 0x0002);   /* tie 2|3 -> 2 */
    ck_assert_uint_eq(qf32_to_f16(2.75f * u), 0x0003);
    ck_assert_uint_eq(qf32_to_f16(1023.5f * u), 0x0400); /* tie 0x3FF|0x400 -> 0x400 */
    ck_assert_uint_eq(qf32_to_f16(1e-30f), 0x0000);
    ck_assert_uint_eq(qf32_to_f16(from_bits(1)), 0x0000); /* f32 subnormal */
}
END_TEST

/* Every half value survives the round trip through float32. */
START_TEST(f16_round_trip_all)
{
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = qf16_to_f32((uint16_t)h);
        uint16_t back = qf32_to_f16(f);
        if (isnan(f)) {
            ck_assert_msg((h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0, "0x%04x", h);
            ck_assert_msg((back & 0x7C00) == 0x7C00 && (back & 0x3FF), "0x%04x", h);
            ck_assert_uint_eq(back & 0x8000, h & 0x8000);
        } else {
            ck_assert_msg(back == h, "0x%04x -> %a -> 0x%04x", h, (double)f, back);
        }
    }
}
END_TEST

#ifdef __FLT16_MAX__
/* The compiler's _Float16 conversion (IEEE 754, round to nearest even) is
 * an independent reference: compare over a sweep of float bit patterns. */
START_TEST(f16_matches_compiler)
{
    for (uint64_t u = 0; u <= 0xFFFFFFFFu; u += 997) {
        float f = from_bits((uint32_t)u);
        if (isnan(f))
            continue;
        _Float16 h = (_Float16)f;
        uint16_t want;
        memcpy(&want, &h, sizeof want);
        /* plain ifs: a passing ck_assert costs a pipe write in fork mode */
        if (qf32_to_f16(f) != want)
            ck_abort_msg("%a: 0x%04x, compiler 0x%04x", (double)f, qf32_to_f16(f), want);
        if (bits(qf16_to_f32(want)) != bits((float)h))
            ck_abort_msg("0x%04x widens differently", want);
    }
}
END_TEST
#endif

START_TEST(bf16_conversions)
{
    ck_assert(qbf16_to_f32(0x3F80) == 1.0f);
    ck_assert(qbf16_to_f32(0xC2F7) == -123.5f);
    ck_assert_uint_eq(bits(qbf16_to_f32(0x0001)), 0x00010000u); /* subnormal kept exactly */
    ck_assert(isinf(qbf16_to_f32(0x7F80)));
    ck_assert(isnan(qbf16_to_f32(0x7FC0)));
    /* 0x3F808000: exact tie, 0x3F80 is even */
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0x3F808000u)), 0x3F80);
    /* 0x3F818000: exact tie, 0x3F81 is odd -> 0x3F82 */
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0x3F818000u)), 0x3F82);
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0x3F808001u)), 0x3F81);
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0x3F817FFFu)), 0x3F81);
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0xBF808000u)), 0xBF80);
    ck_assert_uint_eq(qf32_to_bf16(1.0f), 0x3F80);
    /* FLT_MAX rounds up to inf; inf stays inf */
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0x7F7FFFFFu)), 0x7F80);
    ck_assert_uint_eq(qf32_to_bf16(INFINITY), 0x7F80);
    ck_assert_uint_eq(qf32_to_bf16(-INFINITY), 0xFF80);
    /* NaN stays NaN, quiet, even when the payload is only in the low half */
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0x7F800001u)), 0x7FC0);
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0xFFFFFFFFu)), 0xFFFF);
    ck_assert_uint_eq(qf32_to_bf16(from_bits(0x7FC00000u)), 0x7FC0);
}
END_TEST

/* ---- Views --------------------------------------------------------------- */

START_TEST(f32_view_aligned_is_the_data)
{
    float data[3] = { 1.0f, -2.5f, 3.25f };
    struct qtensor t = { .dtype = QDT_F32, .ndim = 1, .shape = { 3 }, .numel = 3,
                         .data = data, .nbytes = sizeof data };
    qerr err = {{0}};
    ck_assert_int_eq(qtensor_make_f32(&t, &err), 0);
    ck_assert_ptr_eq(t.f32, data);
    ck_assert_ptr_null(t.f32_owned);
    qtensor_clear(&t);
}
END_TEST

START_TEST(f32_view_unaligned_is_copied)
{
    /* 1.0 = 0x3F800000, -0.5 = 0xBF000000, little-endian at an odd address */
    uint8_t buf[12] = { 0, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xBF };
    struct qtensor t = { .name = strdup("w"), .dtype = QDT_F32, .ndim = 1, .shape = { 2 },
                         .numel = 2, .data = buf + 1, .nbytes = 8 };
    qerr err = {{0}};
    ck_assert_int_eq(qtensor_make_f32(&t, &err), 0);
    ck_assert_ptr_nonnull(t.f32_owned);
    ck_assert_ptr_eq(t.f32, t.f32_owned);
    ck_assert(t.f32[0] == 1.0f && t.f32[1] == -0.5f);
    /* a second call keeps the view */
    const float *v = t.f32;
    ck_assert_int_eq(qtensor_make_f32(&t, &err), 0);
    ck_assert_ptr_eq(t.f32, v);
    qtensor_clear(&t);
    ck_assert_ptr_null(t.name);
    ck_assert_ptr_null(t.f32);
}
END_TEST

START_TEST(f32_view_converts_f16)
{
    const uint16_t h[4] = { 0x3C00, 0xC000, 0x7BFF, 0x0001 };
    struct qtensor t = { .dtype = QDT_F16, .ndim = 2, .shape = { 2, 2 }, .numel = 4,
                         .data = h, .nbytes = sizeof h };
    qerr err = {{0}};
    ck_assert_int_eq(qtensor_make_f32(&t, &err), 0);
    ck_assert(t.f32[0] == 1.0f && t.f32[1] == -2.0f && t.f32[2] == 65504.0f);
    ck_assert(t.f32[3] == ldexpf(1.0f, -24));
    qtensor_clear(&t);
}
END_TEST

START_TEST(f32_view_empty_tensor)
{
    struct qtensor t = { .dtype = QDT_BF16, .ndim = 2, .shape = { 0, 3 }, .numel = 0 };
    qerr err = {{0}};
    ck_assert_int_eq(qtensor_make_f32(&t, &err), 0);
    ck_assert_ptr_nonnull(t.f32);
    qtensor_clear(&t);
}
END_TEST

START_TEST(f32_view_rejects_bad_sizes)
{
    uint8_t buf[8] = {0};
    qerr err = {{0}};
    /* numel * 4 overflows size_t */
    struct qtensor t = { .name = strdup("huge"), .dtype = QDT_F32, .ndim = 1,
                         .shape = { INT64_MAX }, .numel = INT64_MAX, .data = buf, .nbytes = 8 };
    ck_assert_int_eq(qtensor_make_f32(&t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "huge"));
    ck_assert_ptr_null(t.f32);
    /* fewer bytes than the shape needs */
    t.numel = 3;
    t.shape[0] = 3;
    ck_assert_int_eq(qtensor_make_f32(&t, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "8 bytes"));
    ck_assert_ptr_nonnull(strstr(err.msg, "needs 12"));
    t.numel = -1;
    ck_assert_int_eq(qtensor_make_f32(&t, &err), -1);
    qtensor_clear(&t);
}
END_TEST

START_TEST(matrix_shape)
{
    int64_t r, c;
    struct qtensor s = { .ndim = 0, .numel = 1 };
    qtensor_matrix_shape(&s, &r, &c);
    ck_assert(r == 1 && c == 1);
    struct qtensor v = { .ndim = 1, .shape = { 7 }, .numel = 7 };
    qtensor_matrix_shape(&v, &r, &c);
    ck_assert(r == 1 && c == 7);
    struct qtensor m = { .ndim = 2, .shape = { 3, 4 }, .numel = 12 };
    qtensor_matrix_shape(&m, &r, &c);
    ck_assert(r == 3 && c == 4);
    struct qtensor k = { .ndim = 4, .shape = { 32, 1, 5, 5 }, .numel = 800 };
    qtensor_matrix_shape(&k, &r, &c);
    ck_assert(r == 32 && c == 25);
}
END_TEST

START_TEST(shape_format)
{
    char buf[64];
    const int64_t s[4] = { 32, 1, 5, 5 };
    qshape_format(s, 4, buf, sizeof buf);
    ck_assert_str_eq(buf, "[32, 1, 5, 5]");
    qshape_format(s, 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "[]");
    qshape_format(s, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "[32]");
    const int64_t big[2] = { 4294967296LL, 0 };
    qshape_format(big, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, "[4294967296, 0]");
    /* a short buffer gets a terminated prefix */
    char small[6];
    memset(small, 'x', sizeof small);
    qshape_format(s, 4, small, sizeof small);
    ck_assert_str_eq(small, "[32, ");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("Table");
    tcase_add_test(tc, dtype_table);
    tcase_add_test(tc, dtype_to_float);
    suite_add_tcase(s, tc);
    tc = tcase_create("Half");
    tcase_set_timeout(tc, 60); /* the compiler sweep is slow under ASan */
    tcase_add_test(tc, f16_known_values);
    tcase_add_test(tc, f16_round_to_nearest_even);
    tcase_add_test(tc, f16_round_trip_all);
#ifdef __FLT16_MAX__
    tcase_add_test(tc, f16_matches_compiler);
#endif
    tcase_add_test(tc, bf16_conversions);
    suite_add_tcase(s, tc);
    tc = tcase_create("Views");
    tcase_add_test(tc, f32_view_aligned_is_the_data);
    tcase_add_test(tc, f32_view_unaligned_is_copied);
    tcase_add_test(tc, f32_view_converts_f16);
    tcase_add_test(tc, f32_view_empty_tensor);
    tcase_add_test(tc, f32_view_rejects_bad_sizes);
    tcase_add_test(tc, matrix_shape);
    tcase_add_test(tc, shape_format);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
