/* check_sha256.c — SHA-256 against the FIPS 180-4 vectors and sha256sum. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/sha256.h"
#include "test_util.h"

static void hash_hex(const void *data, size_t n, char out[65])
{
    struct sha256 s;
    uint8_t d[32];
    sha256_init(&s);
    sha256_update(&s, data, n);
    sha256_final(&s, d);
    sha256_hex(d, out);
}

/* ---- Core ---------------------------------------------------------------- */

START_TEST(known_vectors)
{
    char hex[65];
    hash_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hash_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hash_hex(m448, strlen(m448), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    hash_hex(m896, strlen(m896), hex);
    ck_assert_str_eq(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}
END_TEST

START_TEST(million_a)
{
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    char hex[65];
    hash_hex(a, 1000000, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* the same bytes in uneven pieces go through the partial-block path */
    struct sha256 s;
    uint8_t d[32];
    sha256_init(&s);
    static const size_t steps[] = { 1, 63, 64, 65, 127, 3, 1000 };
    size_t off = 0;
    for (int i = 0; off < 1000000; i++) {
        size_t k = steps[i % 7];
        if (k > 1000000 - off)
            k = 1000000 - off;
        sha256_update(&s, a + off, k);
        off += k;
    }
    ck_assert_uint_eq(s.len, 1000000);
    sha256_final(&s, d);
    sha256_hex(d, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}
END_TEST

/* Lengths around the 55/56/64-byte padding boundaries agree with one-shot hashing. */
START_TEST(padding_boundaries)
{
    uint8_t buf[130];
    for (int i = 0; i < 130; i++)
        buf[i] = (uint8_t)(i * 7 + 1);
    for (size_t n = 50; n <= 130; n++) {
        char one[65], split[65];
        hash_hex(buf, n, one);
        struct sha256 s;
        uint8_t d[32];
        sha256_init(&s);
        sha256_update(&s, buf, n / 3);
        sha256_update(&s, buf + n / 3, n - n / 3);
        sha256_final(&s, d);
        sha256_hex(d, split);
        ck_assert_str_eq(one, split);
    }
    /* 55 and 56 'a': one and two final blocks */
    char hex[65];
    memset(buf, 'a', 64);
    hash_hex(buf, 55, hex);
    ck_assert_str_eq(hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    hash_hex(buf, 56, hex);
    ck_assert_str_eq(hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    hash_hex(buf, 64, hex);
    ck_assert_str_eq(hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}
END_TEST

/* ---- Files --------------------------------------------------------------- */

START_TEST(file_matches_sha256sum)
{
    /* 200 KiB + 17: several 64 KiB read chunks and a tail */
    size_t n = 200 * 1024 + 17;
    uint8_t *buf = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    const char *path = tu_path("blob.bin");
    tu_write_file(path, buf, n);
    char mem[65], file[65];
    hash_hex(buf, n, mem);
    qerr err = {{0}};
    ck_assert_int_eq(sha256_file_hex(path, file, &err), 0);
    ck_assert_str_eq(file, mem);

    char cmd[1200], *out = NULL, *eout = NULL;
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out, &eout), 0);
    ck_assert_uint_ge(strlen(out), 64);
    out[64] = 0;
    ck_assert_str_eq(file, out);
    free(out);
    free(eout);

    /* update_file continues a running hash: "abc" then the file */
    struct sha256 s;
    uint8_t d[32];
    sha256_init(&s);
    sha256_update(&s, "abc", 3);
    ck_assert_int_eq(sha256_update_file(&s, path, &err), 0);
    sha256_final(&s, d);
    sha256_hex(d, file);
    uint8_t *cat = malloc(n + 3);
    memcpy(cat, "abc", 3);
    memcpy(cat + 3, buf, n);
    hash_hex(cat, n + 3, mem);
    ck_assert_str_eq(file, mem);
    free(cat);
    free(buf);
}
END_TEST

START_TEST(file_errors_name_the_file)
{
    char hex[65];
    qerr err = {{0}};
    const char *missing = tu_path("no-such-file.bin");
    ck_assert_int_eq(sha256_file_hex(missing, hex, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, missing));
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open"));
    ck_assert_int_eq(sha256_file_hex(tu_tmpdir(), hex, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, tu_tmpdir()));
    ck_assert_ptr_nonnull(strstr(err.msg, "not a regular file"));
    /* an empty file hashes like the empty string */
    const char *empty = tu_path("empty.bin");
    tu_write_file(empty, "", 0);
    ck_assert_int_eq(sha256_file_hex(empty, hex, &err), 0);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("Core");
    tcase_add_test(tc, known_vectors);
    tcase_add_test(tc, million_a);
    tcase_add_test(tc, padding_boundaries);
    suite_add_tcase(s, tc);
    tc = tcase_create("Files");
    tcase_add_test(tc, file_matches_sha256sum);
    tcase_add_test(tc, file_errors_name_the_file);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
