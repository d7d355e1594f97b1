/* check_safetensors.c — safetensors round trips, hand-built files and every malformed-header path. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/safetensors.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------- */

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes 8-byte length + header + data_len bytes (0x00, 0x01, ...) to name. */
static const char *write_raw(const char *name, const char *header, size_t data_len)
{
    size_t hl = strlen(header);
    uint8_t *buf = malloc(8 + hl + data_len);
    put_u64le(buf, hl);
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + hl + i] = (uint8_t)i;
    const char *path = tu_path(name);
    tu_write_file(path, buf, 8 + hl + data_len);
    free(buf);
    return path;
}

static void assert_error(const char *path, const char *phrase)
{
    struct st_file *f = (struct st_file *)1;
    qerr err = {{0}};
    ck_assert_int_eq(st_open(path, &f, &err), -1);
    ck_assert_ptr_null(f);
    ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "'%s' does not start with %s",
                  err.msg, path);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "'%s' lacks '%s'", err.msg, phrase);
}

/* ---- Core ---------------------------------------------------------------- */

START_TEST(write_read_every_dtype)
{
    const float f32[] = { 1.5f, -0.25f, 3.0e38f, -1e-40f /* subnormal */, 0.0f, 7.0f };
    const uint16_t f16[] = { 0x3C00, 0xC000, 0x7BFF, 0x0001 };
    const uint16_t bf16[] = { 0x3FC0, 0xC2F7 };
    const int64_t i64[] = { -5, 1099511627776LL, INT64_MIN };
    const int32_t i32[] = { -2, 65537 };
    const uint8_t u8[] = { 0, 128, 255 };
    const int8_t i8[] = { -128, 127, -1 };
    const int64_t s23[] = { 2, 3 }, s4[] = { 4 }, s2[] = { 2 }, s3[] = { 3 }, s0[] = { 0, 5 };
    const float scalar = 42.0f;
    const struct st_write_tensor ts[] = {
        { "w.f32", QDT_F32, 2, s23, f32 },
        { "w.f16", QDT_F16, 1, s4, f16 },
        { "w.bf16", QDT_BF16, 1, s2, bf16 },
        { "n.i64", QDT_I64, 1, s3, i64 },
        { "n.i32", QDT_I32, 1, s2, i32 },
        { "b.u8", QDT_U8, 1, s3, u8 },
        { "b.i8", QDT_I8, 1, s3, i8 },
        { "empty", QDT_F32, 2, s0, NULL },
        { "scalar", QDT_F32, 0, NULL, &scalar },
        { "odd \"name\"\\\n", QDT_U8, 1, s3, u8 },
    };
    const int n = (int)(sizeof ts / sizeof ts[0]);
    struct st_meta meta[] = { { "format", "pt" }, { "note", "quote \" and \\ and \t tab" } };
    const char *path = tu_path("all.safetensors");
    qerr err = {{0}};
    ck_assert_int_eq(st_write(path, ts, n, meta, 2, &err), 0);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0);

    /* the header length is a multiple of 8, so the data section is 8-aligned */
    size_t size;
    char *raw = tu_read_file(path, &size);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++)
        hl |= (uint64_t)(uint8_t)raw[i] << (8 * i);
    ck_assert_uint_eq(hl % 8, 0);
    ck_assert_uint_eq(size, 8 + hl + 24 + 8 + 4 + 24 + 8 + 3 + 3 + 0 + 4 + 3);
    ck_assert_int_eq(raw[8], '{');
    free(raw);

    struct st_file *f = NULL;
    ck_assert_msg(st_open(path, &f, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(f->n_tensors, n);
    ck_assert_uint_eq((uintptr_t)f->data % 8, 0);
    for (int i = 0; i < n; i++) {
        const struct qtensor *t = st_find(f, ts[i].name);
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(t->dtype, ts[i].dtype);
        ck_assert_int_eq(t->ndim, ts[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            ck_assert_int_eq(t->shape[d], ts[i].shape[d]);
        if (t->nbytes)
            ck_assert_int_eq(memcmp(t->data, ts[i].data, t->nbytes), 0);
        ck_assert_ptr_nonnull(t->f32);
        /* tensors are in offset order, which here is the order written */
        ck_assert_ptr_eq(t, &f->tensors[i]);
    }
    const struct qtensor *t = st_find(f, "w.f32");
    ck_assert_uint_eq(t->nbytes, 24);
    ck_assert_int_eq(t->numel, 6);
    ck_assert_ptr_eq(t->f32, t->data); /* aligned F32 is not copied */
    ck_assert(t->f32[0] == 1.5f && t->f32[2] == 3.0e38f && t->f32[3] == -1e-40f);
    t = st_find(f, "w.f16");
    ck_assert(t->f32[0] == 1.0f && t->f32[1] == -2.0f && t->f32[2] == 65504.0f);
    ck_assert(t->f32[3] == 0x1p-24f);
    t = st_find(f, "w.bf16");
    ck_assert(t->f32[0] == 1.5f && t->f32[1] == -123.5f);
    t = st_find(f, "n.i64");
    ck_assert(t->f32[0] == -5.0f && t->f32[1] == 1099511627776.0f && t->f32[2] == -0x1p63f);
    t = st_find(f, "n.i32");
    ck_assert(t->f32[0] == -2.0f && t->f32[1] == 65537.0f);
    t = st_find(f, "b.u8");
    ck_assert(t->f32[0] == 0.0f && t->f32[1] == 128.0f && t->f32[2] == 255.0f);
    t = st_find(f, "b.i8");
    ck_assert(t->f32[0] == -128.0f && t->f32[1] == 127.0f && t->f32[2] == -1.0f);
    t = st_find(f, "empty");
    ck_assert_int_eq(t->numel, 0);
    ck_assert_uint_eq(t->nbytes, 0);
    t = st_find(f, "scalar");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_int_eq(t->numel, 1);
    ck_assert(t->f32[0] == 42.0f);
    ck_assert_ptr_null(st_find(f, "nope"));

    ck_assert_int_eq(f->n_meta, 2);
    ck_assert_str_eq(st_meta_get(f, "format"), "pt");
    ck_assert_str_eq(st_meta_get(f, "note"), "quote \" and \\ and \t tab");
    ck_assert_ptr_null(st_meta_get(f, "absent"));
    st_close(f);
}
END_TEST

/* Header bytes built by hand, with an odd length so the data is misaligned,
 * entries listed out of offset order, a hole and unused trailing bytes. */
START_TEST(hand_built_file)
{
    const char *hdr = "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
                      "\"__metadata__\":{\"k\":\"v\"},"
                      "\"a\":{\"shape\":[1,2],\"dtype\":\"F16\",\"data_offsets\":[0,4]}}   ";
    size_t hl = strlen(hdr);
    ck_assert_uint_eq(hl % 4 != 0, 1);
    /* a: f16 [1.0, -2.0]; hole 4..12; b: f32 [1.5, -0.25]; 3 trailing bytes */
    const uint8_t data[23] = { 0x00, 0x3C, 0x00, 0xC0, 9, 9, 9, 9, 9, 9, 9, 9,
                               0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x80, 0xBE, 1, 2, 3 };
    uint8_t *buf = malloc(8 + hl + sizeof data);
    put_u64le(buf, hl);
    memcpy(buf + 8, hdr, hl);
    memcpy(buf + 8 + hl, data, sizeof data);
    const char *path = tu_path("hand.safetensors");
    tu_write_file(path, buf, 8 + hl + sizeof data);
    free(buf);

    struct st_file *f = NULL;
    qerr err = {{0}};
    ck_assert_msg(st_open(path, &f, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(f->path, path);
    ck_assert_uint_eq(f->map_size, 8 + hl + sizeof data);
    ck_assert_uint_eq(f->data_size, sizeof data);
    ck_assert_int_eq(f->n_tensors, 2);
    ck_assert_str_eq(f->tensors[0].name, "a");
    ck_assert_str_eq(f->tensors[1].name, "b");
    const struct qtensor *a = &f->tensors[0], *b = &f->tensors[1];
    ck_assert_int_eq(a->dtype, QDT_F16);
    ck_assert_int_eq(a->ndim, 2);
    ck_assert(a->shape[0] == 1 && a->shape[1] == 2);
    ck_assert(a->f32[0] == 1.0f && a->f32[1] == -2.0f);
    ck_assert_ptr_eq(b->data, f->data + 12);
    ck_assert(b->f32[0] == 1.5f && b->f32[1] == -0.25f);
    ck_assert_ptr_nonnull(b->f32_owned); /* misaligned F32 was copied */
    ck_assert_str_eq(st_meta_get(f, "k"), "v");
    st_close(f);
}
END_TEST

START_TEST(writer_rejects_bad_input)
{
    const uint8_t d[4] = {0};
    const int64_t s1[] = { 4 }, sneg[] = { -1 };
    qerr err = {{0}};
    const char *path = tu_path("bad-write.safetensors");
    struct st_write_tensor dup[] = { { "x", QDT_U8, 1, s1, d }, { "x", QDT_U8, 1, s1, d } };
    ck_assert_int_eq(st_write(path, dup, 2, NULL, 0, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, path));
    ck_assert_ptr_nonnull(strstr(err.msg, "'x' given twice"));
    ck_assert_int_ne(access(path, F_OK), 0);
    struct st_write_tensor neg[] = { { "x", QDT_U8, 1, sneg, d } };
    ck_assert_int_eq(st_write(path, neg, 1, NULL, 0, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "'x'"));
    struct st_write_tensor bad_dtype[] = { { "x", QDT_COUNT, 1, s1, d } };
    ck_assert_int_eq(st_write(path, bad_dtype, 1, NULL, 0, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "dtype"));
    struct st_meta m[] = { { "k", "a" }, { "k", "b" } };
    ck_assert_int_eq(st_write(path, NULL, 0, m, 2, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "'k' given twice"));
    /* a missing folder fails cleanly and names the temp file */
    const char *nodir = tu_path("no-such-dir/x.safetensors");
    ck_assert_int_eq(st_write(nodir, NULL, 0, NULL, 0, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such-dir"));
    /* an empty file (no tensors, no metadata) is still a valid file */
    ck_assert_int_eq(st_write(path, NULL, 0, NULL, 0, &err), 0);
    struct st_file *f = NULL;
    ck_assert_int_eq(st_open(path, &f, &err), 0);
    ck_assert_int_eq(f->n_tensors, 0);
    ck_assert_int_eq(f->n_meta, 0);
    st_close(f);
    st_close(NULL);
}
END_TEST

/* ---- Limits: every malformed file gives -1 and a message naming it ----------- */

struct bad_case {
    const char *name;     /* file name, also the case's label */
    const char *header;   /* written after its 8-byte length; NULL: raw below */
    size_t data_len;
    const char *phrase;
};

static const struct bad_case bad_cases[] = {
    { "not-json", "{not json}", 0, "header is not valid JSON" },
    { "array", "[1, 2]", 0, "not a JSON object" },
    { "string", "\"x\"", 0, "header is a string, not a JSON object" },
    { "trailing", "{} x", 0, "unexpected bytes after the object" },
    { "two-objects", "{}{}", 0, "unexpected bytes after the object" },
    { "unknown-dtype", "{\"w\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': unknown dtype 'F99' (known: F32, F16, BF16, I64, I32, U8, I8)" },
    { "dtype-number", "{\"w\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': dtype is a number, not a string" },
    { "negative-dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': shape[1] is -1, a negative dimension" },
    { "fraction-dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': shape[0] is not an integer" },
    { "huge-dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': shape[0] is not an integer" },
    { "shape-not-array", "{\"w\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,4]}}", 4,
      "tensor 'w': shape is a number, not an array" },
    { "too-many-dims",
      "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
      "tensor 'w': shape has 9 dimensions, at most 8" },
    { "product-overflow",
      "{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,1]}}",
      1, "tensor 'w': shape [4294967296, 4294967296, 16] has too many elements" },
    { "bytes-overflow",
      "{\"w\":{\"dtype\":\"I64\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,1]}}",
      1, "tensor 'w': shape [2147483648, 2147483648] x I64 is too many bytes" },
    { "size-mismatch", "{\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}",
      12, "tensor 'fc.weight': data_offsets [0, 12] hold 12 bytes, shape [2, 3] x F32 needs 24" },
    { "begin-after-end", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
      "tensor 'w': data_offsets [8, 4]: begin is after end" },
    { "end-past-data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
      "tensor 'w': data_offsets [0, 16] end past the 8-byte data section" },
    { "negative-offset", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}}", 8,
      "tensor 'w': data_offsets [-1, 0] are negative" },
    { "three-offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 8,
      "tensor 'w': data_offsets must be an array of 2 integers" },
    { "overlap",
      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
      "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]" },
    { "overlap-inside",
      "{\"big\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
      "\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[10,12]},"
      "\"small\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 16,
      "tensor 'small': data_offsets [2, 4] overlap tensor 'big' [0, 16]" },
    { "meta-number", "{\"__metadata__\":{\"k\":1}}", 0,
      "__metadata__ 'k' is a number, not a string" },
    { "meta-array", "{\"__metadata__\":[\"k\"]}", 0, "__metadata__ is an array, not an object" },
    { "meta-twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ appears twice" },
    { "meta-key-twice", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0,
      "__metadata__ key 'k' appears twice" },
    { "duplicate-name",
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
      "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2,
      "tensor 'a' appears twice" },
    { "missing-offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1,
      "tensor 'w': missing field 'data_offsets'" },
    { "missing-dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
      "tensor 'w': missing field 'dtype'" },
    { "unknown-field",
      "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"extra\":0}}", 1,
      "tensor 'w': unknown field 'extra'" },
    { "field-twice",
      "{\"w\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
      "tensor 'w': field 'dtype' appears twice" },
    { "entry-not-object", "{\"w\":5}", 0, "tensor 'w': entry is a number, not an object" },
};

START_TEST(malformed_header)
{
    const struct bad_case *c = &bad_cases[_i];
    char name[128];
    snprintf(name, sizeof name, "%s.safetensors", c->name);
    assert_error(write_raw(name, c->header, c->data_len), c->phrase);
}
END_TEST

START_TEST(malformed_sizes)
{
    uint8_t buf[64] = {0};
    const char *p = tu_path("empty.safetensors");
    tu_write_file(p, buf, 0);
    assert_error(p, "file is 0 bytes, shorter than the 8-byte header length field");
    p = tu_path("seven.safetensors");
    tu_write_file(p, buf, 7);
    assert_error(p, "file is 7 bytes");
    p = tu_path("zero-len.safetensors");
    tu_write_file(p, buf, 16);
    assert_error(p, "header length is 0");
    p = tu_path("long-len.safetensors");
    put_u64le(buf, 1000);
    memcpy(buf + 8, "{}        ", 10);
    tu_write_file(p, buf, 18);
    assert_error(p, "header length 1000 is larger than the 10 bytes that follow it");
    p = tu_path("huge-len.safetensors");
    put_u64le(buf, UINT64_MAX);
    tu_write_file(p, buf, 18);
    assert_error(p, "header length 18446744073709551615 is larger than the 10 bytes");
    /* a sparse file whose header claims just over 100 MiB */
    p = tu_path("100mib.safetensors");
    uint64_t n = ((uint64_t)100 << 20) + 1;
    put_u64le(buf, n);
    tu_write_file(p, buf, 8);
    ck_assert_int_eq(truncate(p, (off_t)(8 + n)), 0);
    assert_error(p, "exceeds the limit of 104857600 bytes (100 MiB)");
    unlink(p);
    assert_error(tu_path("does-not-exist.safetensors"), "cannot open");
    assert_error(tu_tmpdir(), "not a regular file");
}
END_TEST

/* cJSON's nesting limit turns deep nesting into an error, not a stack overflow. */
START_TEST(malformed_deep_nesting)
{
    size_t depth = 100000;
    char *h = malloc(2 * depth + 1);
    memset(h, '[', depth);
    memset(h + depth, ']', depth);
    h[2 * depth] = 0;
    assert_error(write_raw("deep.safetensors", h, 0), "header is not valid JSON");
    free(h);
}
END_TEST

START_TEST(truncated_file)
{
    const float v[4] = { 1, 2, 3, 4 };
    const int64_t s[] = { 4 };
    const struct st_write_tensor t[] = { { "w", QDT_F32, 1, s, v } };
    const char *p = tu_path("cut.safetensors");
    qerr err = {{0}};
    ck_assert_int_eq(st_write(p, t, 1, NULL, 0, &err), 0);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(truncate(p, st.st_size - 4), 0);
    assert_error(p, "tensor 'w': data_offsets [0, 16] end past the 12-byte data section");
    /* cut inside the header */
    ck_assert_int_eq(truncate(p, 20), 0);
    assert_error(p, "is larger than the 12 bytes that follow it");
}
END_TEST

/* Random damage to a valid file never crashes and always names the file
 * (run under ASan this is a small deterministic fuzz). */
START_TEST(mutations_never_crash)
{
    const float v[6] = { 1, 2, 3, 4, 5, 6 };
    const uint16_t h[3] = { 0x3C00, 0x4000, 0x4200 };
    const int64_t s23[] = { 2, 3 }, s3[] = { 3 };
    const struct st_write_tensor t[] = { { "a.weight", QDT_F32, 2, s23, v },
                                         { "a.bias", QDT_F16, 1, s3, h } };
    const struct st_meta m[] = { { "format", "pt" } };
    const char *good = tu_path("good.safetensors");
    qerr err = {{0}};
    ck_assert_int_eq(st_write(good, t, 2, m, 1, &err), 0);
    size_t n;
    uint8_t *orig = (uint8_t *)tu_read_file(good, &n);
    uint8_t *buf = malloc(n);
    static const char *const tokens[] = { "-1", "1e99", "[]", "{}", "\"F16\"", "\"\"", ",",
                                          "99999999999999999999", "4294967296", "0" };
    const char *p = tu_path("mutant.safetensors");
    uint32_t x = 12345;
    int opened = 0;
    for (int it = 0; it < 1000; it++) {
        memcpy(buf, orig, n);
        size_t len = n;
        for (int j = 0; j < 3; j++) {
            x = x * 1664525u + 1013904223u;
            size_t at = (x >> 8) % len;
            switch ((x >> 28) % 4) {
            case 0: buf[at] ^= (uint8_t)(1u << ((x >> 4) % 8)); break;
            case 1: buf[at] = (uint8_t)(x >> 12); break;
            case 2: len = at + 1; break;
            default: {
                const char *tok = tokens[(x >> 3) % 10];
                if (at + strlen(tok) < len)
                    memcpy(buf + at, tok, strlen(tok));
            }
            }
        }
        tu_write_file(p, buf, len);
        struct st_file *f = NULL;
        if (st_open(p, &f, &err) == 0) {
            opened++;
            for (int i = 0; i < f->n_tensors; i++)
                ck_assert_ptr_nonnull(f->tensors[i].f32);
            st_close(f);
        } else if (strncmp(err.msg, p, strlen(p)) != 0) {
            ck_abort_msg("message does not name the file: %s", err.msg);
        }
    }
    ck_assert_int_lt(opened, 1000);
    free(buf);
    free(orig);
}
END_TEST

/* ---- Real: files made by other people ------------------------------------ */

START_TEST(real_mnist_cnn)
{
    const char *p = tu_shared("mnist-cnn-bn/mnist.safetensors");
    struct st_file *f = NULL;
    qerr err = {{0}};
    ck_assert_msg(st_open(p, &f, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(f->n_tensors, 20);
    ck_assert_int_eq(f->n_meta, 0);
    ck_assert_str_eq(f->tensors[0].name, "layers.0.weight");
    ck_assert_str_eq(f->tensors[19].name, "layers.13.bias");
    const struct qtensor *w = st_find(f, "layers.0.weight");
    ck_assert_int_eq(w->dtype, QDT_F32);
    char s[64];
    qshape_format(w->shape, w->ndim, s, sizeof s);
    ck_assert_str_eq(s, "[32, 1, 5, 5]");
    uint32_t u;
    memcpy(&u, &w->f32[0], 4);
    ck_assert_uint_eq(u, 0xbc008d47u); /* bytes 47 8d 00 bc at data offset 0 */
    const struct qtensor *nb = st_find(f, "layers.4.num_batches_tracked");
    ck_assert_int_eq(nb->dtype, QDT_I64);
    ck_assert(nb->f32[0] == 350.0f);
    const struct qtensor *b = st_find(f, "layers.13.bias");
    memcpy(&u, &b->f32[9], 4);
    ck_assert_uint_eq(u, 0x3ca8a3b1u);
    qshape_format(st_find(f, "layers.13.weight")->shape, 2, s, sizeof s);
    ck_assert_str_eq(s, "[10, 576]");
    st_close(f);
}
END_TEST

START_TEST(real_ggml_reference_metadata)
{
    const char *p = tu_shared("ggml-reference/ggml-reference.safetensors");
    struct st_file *f = NULL;
    qerr err = {{0}};
    ck_assert_msg(st_open(p, &f, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(f->n_tensors, 162);
    ck_assert_int_eq(f->n_meta, 2);
    const char *prod = st_meta_get(f, "producer");
    ck_assert_ptr_nonnull(prod);
    ck_assert_int_eq(strncmp(prod, "ggml reference quantizers", 25), 0);
    const struct qtensor *q = st_find(f, "cos.q4_0.q");
    ck_assert_int_eq(q->dtype, QDT_U8);
    ck_assert(q->shape[0] == 16 && q->shape[1] == 144);
    st_close(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, write_read_every_dtype);
    tcase_add_test(tc, hand_built_file);
    tcase_add_test(tc, writer_rejects_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("Limits");
    tcase_add_loop_test(tc, malformed_header, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, malformed_sizes);
    tcase_add_test(tc, malformed_deep_nesting);
    tcase_add_test(tc, truncated_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("Fuzz");
    tcase_set_timeout(tc, 120); /* many files; slow under ASan */
    tcase_add_test(tc, mutations_never_crash);
    suite_add_tcase(s, tc);
    tc = tcase_create("RealMnistCnn");
    tcase_add_test(tc, real_mnist_cnn);
    static const char *const mnist[] = { "mnist-cnn-bn/mnist.safetensors" };
    tu_add_if_shared(s, tc, mnist, 1);
    tc = tcase_create("RealGgmlReference");
    tcase_add_test(tc, real_ggml_reference_metadata);
    static const char *const ggml[] = { "ggml-reference/ggml-reference.safetensors" };
    tu_add_if_shared(s, tc, ggml, 1);
    return tu_run(s);
}
