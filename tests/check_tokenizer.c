/* check_tokenizer.c — SPM and byte-level BPE tokenizers against hand-worked vocabularies, llama2.c's own loop and tok512.bin. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/tokenizer.h"
#include "quant/tokenizer_impl.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------- */

#define MAXV 600
#define BYTE(b) (3 + (b)) /* <0xNN> ids in the vocabularies built here (as in llama2.c) */

/* A vocabulary under construction: <unk> 0, <s> 1, </s> 2, optionally the
 * 256 byte pieces 3..258, then the extra pieces. */
struct vb {
    int n;
    char *pieces[MAXV];
    float scores[MAXV];
};

static int vb_add(struct vb *b, const char *p, float score)
{
    ck_assert_int_lt(b->n, MAXV);
    b->pieces[b->n] = strdup(p);
    b->scores[b->n] = score;
    return b->n++;
}

static void vb_init(struct vb *b, int with_bytes)
{
    b->n = 0;
    vb_add(b, "<unk>", 0);
    vb_add(b, "<s>", 0);
    vb_add(b, "</s>", 0);
    for (int i = 0; with_bytes && i < 256; i++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", i);
        vb_add(b, s, 0);
    }
}

static void vb_free(struct vb *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->pieces[i]);
    b->n = 0;
}

static struct qtokenizer *vb_spm(struct vb *b, int marker, int prefix)
{
    struct qtok_vocab v = {.n = b->n, .pieces = (const char *const *)b->pieces,
                           .scores = b->scores, .bos = 1, .eos = 2, .unk = 0};
    struct qtokenizer *t = NULL;
    qerr e = {{0}};
    ck_assert_msg(qtok_new_spm(&v, marker, prefix, &t, &e) == 0, "%s", e.msg);
    return t;
}

/* Encodes s and compares with want[0..n). */
static void expect_ids(const struct qtokenizer *t, const char *s, size_t len, int bos,
                       const int32_t *want, int64_t n)
{
    int32_t *ids = NULL;
    int64_t k = -1;
    qerr e = {{0}};
    ck_assert_msg(qtok_encode(t, s, len, bos, &ids, &k, &e) == 0, "%s", e.msg);
    ck_assert_ptr_nonnull(ids);
    ck_assert_msg(k == n, "\"%s\": %lld tokens, want %lld", s, (long long)k, (long long)n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(ids[i] == want[i], "\"%s\": token %lld is %d, want %d", s, (long long)i,
                      ids[i], want[i]);
    free(ids);
}

#define EXPECT(t, s, bos, ...)                                                     \
    do {                                                                           \
        const int32_t want_[] = {__VA_ARGS__};                                     \
        expect_ids(t, s, strlen(s), bos, want_, sizeof want_ / sizeof want_[0]);   \
    } while (0)

/* decode(encode(s)) with one BOS first, the way llama2.c prints it. */
static char *round_trip(const struct qtokenizer *t, const char *s, size_t len, size_t *out_len)
{
    int32_t *ids = NULL;
    int64_t n = 0;
    qerr e = {{0}};
    ck_assert_msg(qtok_encode(t, s, len, 1, &ids, &n, &e) == 0, "%s", e.msg);
    ck_assert_int_ge(n, 1);
    ck_assert_int_eq(ids[0], qtok_bos(t));
    char *out = malloc(len * 4 + 64), piece[256];
    size_t at = 0;
    for (int64_t i = 1; i < n; i++) {
        size_t k = qtok_decode(t, ids[i - 1], ids[i], piece, sizeof piece);
        ck_assert_uint_le(at + k, len * 4 + 63);
        memcpy(out + at, piece, k);
        at += k;
    }
    out[at] = 0;
    free(ids);
    *out_len = at;
    return out;
}

static void expect_round_trip(const struct qtokenizer *t, const char *s)
{
    size_t n;
    char *back = round_trip(t, s, strlen(s), &n);
    ck_assert_msg(n == strlen(s) && memcmp(back, s, n) == 0, "\"%s\" came back as \"%s\"", s, back);
    free(back);
}

static const char *decode1(const struct qtokenizer *t, int32_t prev, int32_t id)
{
    static char buf[64];
    qtok_decode(t, prev, id, buf, sizeof buf);
    return buf;
}

/* ---- SPM ----------------------------------------------------------------- */

START_TEST(spm_merges_by_score)
{
    struct vb b;
    vb_init(&b, 1);
    /* 259 " ", 260 a, 261 b, 262 c, 263 " a", 264 ab, 265 bc, 266 abc */
    const char *p[] = {" ", "a", "b", "c", " a", "ab", "bc", "abc"};
    const float s[] = {-10, -11, -12, -13, -3, -2, -1, -4};
    for (int i = 0; i < 8; i++)
        vb_add(&b, p[i], s[i]);
    struct qtokenizer *t = vb_spm(&b, 0, 1);
    /* " abc": bc (-1) first, then " a" (-3); "abc" (-4) needs a+bc, gone */
    EXPECT(t, "abc", 0, 263, 265);
    EXPECT(t, "abc", 1, 1, 263, 265);
    qtok_free(t);
    /* ab now best (-0.5): " ", ab, c -> " ", abc (-4); " abc" is no piece */
    b.scores[264] = -0.5f;
    t = vb_spm(&b, 0, 1);
    EXPECT(t, "abc", 0, 259, 266);
    /* no prefix: a b c -> ab c -> abc */
    qtok_free(t);
    t = vb_spm(&b, 0, 0);
    EXPECT(t, "abc", 0, 266);
    EXPECT(t, "cab", 0, 262, 264);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_leftmost_on_ties)
{
    struct vb b;
    vb_init(&b, 1);
    /* 259 a, 260 aa, 261 x, 262 y, 263 z, 264 xy, 265 yz */
    const char *p[] = {"a", "aa", "x", "y", "z", "xy", "yz"};
    const float s[] = {-1, -2, -1, -1, -1, -5, -5};
    for (int i = 0; i < 7; i++)
        vb_add(&b, p[i], s[i]);
    struct qtokenizer *t = vb_spm(&b, 0, 0);
    EXPECT(t, "aaa", 0, 260, 259);
    EXPECT(t, "aaaaa", 0, 260, 260, 259);
    EXPECT(t, "xyz", 0, 264, 263);
    qtok_free(t);
    b.scores[265] = -4; /* a better score beats leftmost */
    t = vb_spm(&b, 0, 0);
    EXPECT(t, "xyz", 0, 261, 265);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_byte_fallback)
{
    struct vb b;
    vb_init(&b, 1);
    vb_add(&b, " ", -1); /* 259 */
    vb_add(&b, "a", -2); /* 260 */
    vb_add(&b, "\xC3\xB1", -3); /* 261 ñ */
    struct qtokenizer *t = vb_spm(&b, 0, 1);
    /* é (C3 A9) is missing: one token per byte */
    EXPECT(t, "\xC3\xA9", 0, 259, BYTE(0xC3), BYTE(0xA9));
    EXPECT(t, "a\xC3\xA9\xC3\xB1", 1, 1, 259, 260, BYTE(0xC3), BYTE(0xA9), 261);
    /* a 4-byte character: four byte tokens */
    EXPECT(t, "\xF0\x9F\x99\x82", 0, 259, BYTE(0xF0), BYTE(0x9F), BYTE(0x99), BYTE(0x82));
    /* a newline is just another missing character */
    EXPECT(t, "a\na", 0, 259, 260, BYTE(0x0A), 260);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_invalid_utf8_as_bytes)
{
    struct vb b;
    vb_init(&b, 1);
    vb_add(&b, " ", -1); /* 259 */
    vb_add(&b, "a", -2); /* 260 */
    vb_add(&b, "\xC3\xB1", -3); /* 261 ñ */
    struct qtokenizer *t = vb_spm(&b, 0, 1);
    EXPECT(t, "a\xFF", 0, 259, 260, BYTE(0xFF));
    /* a lead byte without its continuation, then a valid character */
    EXPECT(t, "\xC3" "a", 0, 259, BYTE(0xC3), 260);
    EXPECT(t, "\xC3\xC3\xB1", 0, 259, BYTE(0xC3), 261);
    /* stray continuation bytes, an overlong NUL, a surrogate */
    EXPECT(t, "\xB1\xB1", 0, 259, BYTE(0xB1), BYTE(0xB1));
    EXPECT(t, "\xC0\x80", 0, 259, BYTE(0xC0), BYTE(0x80));
    EXPECT(t, "\xED\xA0\x80", 0, 259, BYTE(0xED), BYTE(0xA0), BYTE(0x80));
    /* a NUL inside the text is a byte like any other */
    expect_ids(t, "a\0a", 3, 0, (const int32_t[]){259, 260, BYTE(0), 260}, 4);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_unk_only_without_byte_piece)
{
    struct vb b;
    vb_init(&b, 0);
    vb_add(&b, " ", -1); /* 3 */
    vb_add(&b, "a", -2); /* 4 */
    vb_add(&b, "<0xA9>", 0); /* 5: one byte piece only */
    struct qtokenizer *t = vb_spm(&b, 0, 1);
    EXPECT(t, "a\xC3\xA9", 0, 3, 4, 0, 5);
    qtok_free(t);
    /* no unk and no byte piece: refused, naming the byte */
    struct qtok_vocab v = {.n = b.n, .pieces = (const char *const *)b.pieces, .scores = b.scores,
                           .bos = 1, .eos = 2, .unk = -1};
    qerr e = {{0}};
    ck_assert_int_eq(qtok_new_spm(&v, 0, 1, &t, &e), 0);
    int32_t *ids = (int32_t *)&e;
    int64_t n = 7;
    ck_assert_int_eq(qtok_encode(t, "\xC3\xA9", 2, 0, &ids, &n, &e), -1);
    ck_assert_ptr_null(ids);
    ck_assert_int_eq(n, 0);
    ck_assert_msg(strstr(e.msg, "0xC3"), "%s", e.msg);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_empty_text)
{
    struct vb b;
    vb_init(&b, 1);
    vb_add(&b, " ", -1);
    struct qtokenizer *t = vb_spm(&b, 0, 1);
    EXPECT(t, "", 1, 1);
    int32_t *ids = NULL;
    int64_t n = -1;
    qerr e = {{0}};
    ck_assert_int_eq(qtok_encode(t, "", 0, 0, &ids, &n, &e), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_nonnull(ids);
    free(ids);
    ck_assert_int_eq(qtok_encode(t, NULL, 0, 1, &ids, &n, &e), 0);
    ck_assert_int_eq(n, 1);
    free(ids);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_control_and_byte_pieces_not_matched)
{
    struct vb b;
    vb_init(&b, 1);
    /* 259 <, 260 s, 261 >, 262 <s, 263 0, 264 x, 265 4, 266 1, 267 <0, 268 <0x */
    const char *p[] = {"<", "s", ">", "<s", "0", "x", "4", "1", "<0", "<0x"};
    const float s[] = {-1, -1, -1, -2, -1, -1, -1, -1, -3, -4};
    for (int i = 0; i < 10; i++)
        vb_add(&b, p[i], s[i]);
    struct qtokenizer *t = vb_spm(&b, 0, 0);
    /* the text "<s>" is not BOS, nor "<0x41>" the byte A */
    EXPECT(t, "<s>", 0, 262, 261);
    EXPECT(t, "<0x41>", 0, 268, 265, 266, 261);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_round_trip)
{
    struct vb b;
    vb_init(&b, 1);
    const char *p[] = {" ", "a", "b", "c", " a", "ab", "bc", "abc", "e", "l", "o", "h", "he", "ll",
                       " w", "or", "\xC3\xB1", "\xE6\x97\xA5"};
    for (int i = 0; i < 18; i++)
        vb_add(&b, p[i], -(float)i);
    struct qtokenizer *t = vb_spm(&b, 0, 1);
    const char *cases[] = {
        "hello world", "  two  spaces  ", " ", "a", "abc cab bca",
        "\xC3\xA9 \xC3\xB1 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x99\x82",
        "tab\there\nnew line\n", "\xFF\xFE" "bad\xC3", "<s> </s> <0x41>",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_round_trip(t, cases[i]);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_space_marker)
{
    struct vb b;
    vb_init(&b, 1);
    /* 259 ▁, 260 a, 261 b, 262 ▁a, 263 ▁b, 264 ' ' (never matched: spaces are ▁) */
    vb_add(&b, "\xE2\x96\x81", -10);
    vb_add(&b, "a", -11);
    vb_add(&b, "b", -12);
    vb_add(&b, "\xE2\x96\x81" "a", -1);
    vb_add(&b, "\xE2\x96\x81" "b", -2);
    vb_add(&b, " ", 0);
    struct qtokenizer *t = vb_spm(&b, 1, 1);
    EXPECT(t, "a b", 1, 1, 262, 263);
    EXPECT(t, "a  b", 0, 262, 259, 263);
    EXPECT(t, "ab ", 0, 262, 261, 259);
    ck_assert_str_eq(decode1(t, 1, 262), "a");
    ck_assert_str_eq(decode1(t, 262, 262), " a");
    ck_assert_str_eq(decode1(t, 262, 259), " ");
    expect_round_trip(t, "a  b ab ba");
    expect_round_trip(t, " leading and trailing ");
    qtok_free(t);
    /* no space prefix: nothing is stripped after BOS either */
    t = vb_spm(&b, 1, 0);
    EXPECT(t, "a b", 0, 260, 263);
    ck_assert_str_eq(decode1(t, 1, 263), " b");
    expect_round_trip(t, "a b");
    expect_round_trip(t, " b");
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_decode)
{
    struct vb b;
    vb_init(&b, 1);
    vb_add(&b, " a", -1); /* 259 */
    struct qtokenizer *t = vb_spm(&b, 0, 1);
    ck_assert_str_eq(decode1(t, 1, 259), "a");   /* after BOS: leading space dropped */
    ck_assert_str_eq(decode1(t, 259, 259), " a");
    ck_assert_str_eq(decode1(t, 1, BYTE(0x20)), " "); /* a byte piece keeps its byte */
    ck_assert_str_eq(decode1(t, 5, BYTE('A')), "A");
    ck_assert_str_eq(decode1(t, 5, 1), "");     /* BOS and EOS print nothing */
    ck_assert_str_eq(decode1(t, 5, 2), "");
    ck_assert_str_eq(decode1(t, 5, 0), "<unk>");
    char buf[4] = "xyz";
    ck_assert_uint_eq(qtok_decode(t, 5, 259, buf, 2), 1);
    ck_assert_str_eq(buf, " ");
    ck_assert_uint_eq(qtok_decode(t, 5, 259, buf, 0), 0);
    ck_assert_str_eq(buf, " ");
    ck_assert_uint_eq(qtok_decode(t, 5, -1, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(qtok_decode(t, 5, b.n, buf, sizeof buf), 0);
    char nul[8] = "xxxxxxx";
    ck_assert_uint_eq(qtok_decode(t, 5, BYTE(0), nul, sizeof nul), 1);
    ck_assert_int_eq(nul[0], 0);
    ck_assert_int_eq(qtok_kind(t), QTOK_SPM);
    ck_assert_int_eq(qtok_vocab_size(t), 260);
    ck_assert_int_eq(qtok_bos(t), 1);
    ck_assert_int_eq(qtok_eos(t), 2);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

START_TEST(spm_bad_vocabularies)
{
    const char *p[] = {"<unk>", "<s>", "a"};
    float s[] = {0, 0, -1};
    size_t lens[] = {5, 3, 2};
    struct qtokenizer *t = (struct qtokenizer *)&lens;
    qerr e = {{0}};
    struct qtok_vocab v = {.n = 0, .pieces = p, .scores = s, .bos = 1, .eos = -1, .unk = 0};
    ck_assert_int_eq(qtok_new_spm(&v, 0, 1, &t, &e), -1);
    ck_assert_ptr_null(t);
    v.n = 3;
    v.bos = 3;
    ck_assert_int_eq(qtok_new_spm(&v, 0, 1, &t, &e), -1);
    ck_assert_msg(strstr(e.msg, "bos 3"), "%s", e.msg);
    v.bos = 1;
    v.scores = NULL;
    ck_assert_int_eq(qtok_new_spm(&v, 0, 1, &t, &e), -1);
    v.scores = s;
    s[2] = NAN;
    ck_assert_int_eq(qtok_new_spm(&v, 0, 1, &t, &e), -1);
    ck_assert_msg(strstr(e.msg, "token 2") && strstr(e.msg, "NaN"), "%s", e.msg);
    s[2] = -1;
    v.lengths = lens; /* "a" plus its terminator: a NUL inside the piece */
    ck_assert_int_eq(qtok_new_spm(&v, 0, 1, &t, &e), -1);
    ck_assert_msg(strstr(e.msg, "token 2") && strstr(e.msg, "NUL"), "%s", e.msg);
    lens[2] = 1;
    ck_assert_int_eq(qtok_new_spm(&v, 0, 1, &t, &e), 0);
    EXPECT(t, "aa", 0, 0, 2, 2); /* no " " and no byte pieces: the prefix space is unk */
    qtok_free(t);
    p[1] = NULL;
    ck_assert_int_eq(qtok_new_spm(&v, 0, 1, &t, &e), -1);
    ck_assert_msg(strstr(e.msg, "token 1"), "%s", e.msg);
    qtok_free(NULL);
}
END_TEST

/* ---- BPE ----------------------------------------------------------------- */

/* GPT-2's bytes_to_unicode written the way encoder.py writes it: the
 * printable bytes keep their value, the rest get 256, 257, ... in order. */
static uint32_t gpt2_map(int b)
{
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable)
        return (uint32_t)b;
    int k = 0;
    for (int c = 0; c < b; c++)
        k += !((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF));
    return 256u + (uint32_t)k;
}

/* The 256 mapped byte characters as ids 0..255 (id == byte), then extras
 * from 256; bos/eos at the end when asked. */
static struct qtokenizer *bpe_make(const char *const *extra, int n_extra, const char *const *merges,
                                   int n_merges, enum qtok_pre pre, int with_specials)
{
    struct vb b = {0};
    for (int i = 0; i < 256; i++) {
        char u[8] = {0};
        tok_utf8_put(gpt2_map(i), u);
        vb_add(&b, u, 0);
    }
    for (int i = 0; i < n_extra; i++)
        vb_add(&b, extra[i], 0);
    int bos = -1, eos = -1;
    if (with_specials) {
        bos = vb_add(&b, "<|begin_of_text|>", 0);
        eos = vb_add(&b, "<|end_of_text|>", 0);
    }
    struct qtok_vocab v = {.n = b.n, .pieces = (const char *const *)b.pieces, .bos = bos,
                           .eos = eos, .unk = -1};
    struct qtokenizer *t = NULL;
    qerr e = {{0}};
    ck_assert_msg(qtok_new_bpe(&v, merges, n_merges, pre, &t, &e) == 0, "%s", e.msg);
    vb_free(&b);
    return t;
}

/* Splits s and compares the pieces with want, "|"-separated. */
static void expect_split(enum qtok_pre pre, const char *s, const char *want)
{
    size_t *ends = NULL, n = 0;
    qerr e = {{0}};
    ck_assert_msg(tok_bpe_split(pre, s, strlen(s), &ends, &n, &e) == 0, "%s", e.msg);
    char got[512] = "";
    size_t at = 0, start = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_uint_gt(ends[i], start);
        if (i)
            got[at++] = '|';
        memcpy(got + at, s + start, ends[i] - start);
        at += ends[i] - start;
        start = ends[i];
    }
    got[at] = 0;
    ck_assert_uint_eq(start, strlen(s));
    ck_assert_msg(strcmp(got, want) == 0, "pre %d: \"%s\" split as \"%s\", want \"%s\"", (int)pre, s,
                  got, want);
    free(ends);
}

START_TEST(bpe_split_gpt2)
{
    const enum qtok_pre G = QTOK_PRE_GPT2;
    expect_split(G, "Hello world's 12345 !!  ok\n\nend",
                 "Hello| world|'s| 12345| !!| | ok|\n|\n|end");
    expect_split(G, "I'm we'll they'RE DON'T", "I|'m| we|'ll| they|'|RE| DON|'|T");
    expect_split(G, "a'xyz ?'s", "a|'|xyz| ?'|s");
    expect_split(G, "x   y", "x|  | y");
    expect_split(G, "x \t y", "x| \t| y");
    expect_split(G, "trail  ", "trail|  ");
    expect_split(G, "a\r\nb", "a|\r|\n|b");
    expect_split(G, "abc123def", "abc|123|def");
    /* letters and numbers beyond ASCII: caf\u00e9, \u00b2 (No), \u0663 (Nd) */
    expect_split(G, "caf\xC3\xA9 x\xC2\xB2 \xD9\xA3\xD9\xA3", "caf\xC3\xA9| x|\xC2\xB2| \xD9\xA3\xD9\xA3");
    /* no-break space is \s; invalid bytes are "other" */
    expect_split(G, "a\xC2\xA0" "b", "a|\xC2\xA0|b");
    expect_split(G, "a \xFF\xFE" "b", "a| \xFF\xFE|b");
    expect_split(G, "", "");
}
END_TEST

START_TEST(bpe_split_llama3_qwen2)
{
    const enum qtok_pre L = QTOK_PRE_LLAMA3, Q = QTOK_PRE_QWEN2;
    expect_split(L, "Hello world's 12345 !!  ok\n\nend",
                 "Hello| world|'s| |123|45| !!| | ok|\n\n|end");
    expect_split(Q, "Hello world's 12345 !!  ok\n\nend",
                 "Hello| world|'s| |1|2|3|4|5| !!| | ok|\n\n|end");
    /* contractions fold case; any other apostrophe joins the letters */
    expect_split(L, "I'm DON'T we'LL", "I|'m| DON|'T| we|'LL");
    expect_split(L, "a'xyz", "a|'xyz");
    expect_split(L, "1234567", "123|456|7");
    expect_split(Q, "x1234", "x|1|2|3|4");
    expect_split(L, "x   y", "x|  | y");
    expect_split(L, "x \t y", "x| \t| y");
    expect_split(L, "\ty", "\ty");
    expect_split(L, "Hi!\n\nYo", "Hi|!\n\n|Yo");
    expect_split(L, "a \n \n  b", "a| \n \n| | b");
    expect_split(L, "a\r\nb", "a|\r\n|b");
    expect_split(L, "\nabc", "\n|abc");
    expect_split(L, "...abc", "...|abc");
    expect_split(L, "(abc) x", "(abc|)| x"); /* "(" is the one leading non-letter */
    expect_split(L, "trail  ", "trail|  ");
    expect_split(Q, "caf\xC3\xA9 \xD9\xA3\xD9\xA3", "caf\xC3\xA9| |\xD9\xA3|\xD9\xA3");
}
END_TEST

START_TEST(bpe_byte_mapping)
{
    /* known points of the GPT-2 mapping */
    ck_assert_uint_eq(tok_byte_to_cp(' '), 0x120);  /* Ġ */
    ck_assert_uint_eq(tok_byte_to_cp('\n'), 0x10A); /* Ċ */
    ck_assert_uint_eq(tok_byte_to_cp(0), 0x100);
    ck_assert_uint_eq(tok_byte_to_cp(0x7F), 0x121);
    ck_assert_uint_eq(tok_byte_to_cp(0xA0), 0x142);
    ck_assert_uint_eq(tok_byte_to_cp(0xAD), 0x143);
    ck_assert_uint_eq(tok_byte_to_cp('A'), 'A');
    ck_assert_uint_eq(tok_byte_to_cp(0xE9), 0xE9);
    for (int b = 0; b < 256; b++) {
        ck_assert_uint_eq(tok_byte_to_cp(b), gpt2_map(b));
        ck_assert_int_eq(tok_cp_to_byte(tok_byte_to_cp(b)), b);
    }
    ck_assert_int_eq(tok_cp_to_byte(' '), -1);
    ck_assert_int_eq(tok_cp_to_byte(0xAD), -1);
    ck_assert_int_eq(tok_cp_to_byte(0x144), -1);

    /* all 256 bytes through encode and decode: one token per byte */
    struct qtokenizer *t = bpe_make(NULL, 0, NULL, 0, QTOK_PRE_GPT2, 1);
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    int32_t *ids = NULL;
    int64_t n = 0;
    qerr e = {{0}};
    ck_assert_int_eq(qtok_encode(t, all, 256, 1, &ids, &n, &e), 0);
    ck_assert_int_eq(n, 257);
    ck_assert_int_eq(ids[0], 256);
    for (int i = 0; i < 256; i++)
        ck_assert_int_eq(ids[i + 1], i);
    free(ids);
    size_t len;
    char *back = round_trip(t, all, 256, &len);
    ck_assert_uint_eq(len, 256);
    ck_assert(memcmp(back, all, 256) == 0);
    free(back);
    ck_assert_str_eq(decode1(t, 256, 256), ""); /* BOS prints nothing */
    ck_assert_str_eq(decode1(t, 256, ' '), " "); /* no space is dropped in BPE */
    qtok_free(t);
}
END_TEST

START_TEST(bpe_merges_by_rank)
{
    const char *ex[] = {"ab", "bc", "abc", "aa"}; /* 256..259 */
    const char *m1[] = {"b c", "a b", "a bc", "a a"};
    struct qtokenizer *t = bpe_make(ex, 4, m1, 4, QTOK_PRE_GPT2, 0);
    EXPECT(t, "abc", 0, 258);          /* bc (rank 0), then a+bc (rank 2) */
    EXPECT(t, "aaa", 0, 259, 'a');     /* one pair, three places: leftmost */
    EXPECT(t, "abab", 0, 256, 256);
    qtok_free(t);
    const char *m2[] = {"a b", "b c", "a bc"};
    t = bpe_make(ex, 4, m2, 3, QTOK_PRE_GPT2, 0);
    EXPECT(t, "abc", 0, 256, 'c');     /* ab (rank 0) first; "ab c" is no merge */
    qtok_free(t);
    const char *m3[] = {"b c", "a b"};
    t = bpe_make(ex, 4, m3, 2, QTOK_PRE_GPT2, 0);
    EXPECT(t, "abc", 0, 'a', 257);
    /* merges never cross pre-tokenizer words */
    EXPECT(t, "a bc", 0, 'a', ' ', 257); /* "a", " bc": ids are bytes here */
    qtok_free(t);
}
END_TEST

START_TEST(bpe_words_and_ignore_merges)
{
    /* 256 Ġw, 257 or, 258 Ġwor, 259 ld, 260 Ġworld, 261 ab, 262 abc */
    const char *ex[] = {"\xC4\xA0w", "or", "\xC4\xA0wor", "ld", "\xC4\xA0world", "ab", "abc"};
    const char *m[] = {"\xC4\xA0 w", "o r", "\xC4\xA0w or", "l d", "\xC4\xA0wor ld", "a b"};
    struct qtokenizer *t = bpe_make(ex, 7, m, 6, QTOK_PRE_GPT2, 1);
    EXPECT(t, "hello world", 0, 'h', 'e', 'l', 'l', 'o', 260);
    EXPECT(t, "abc", 0, 261, 'c');
    ck_assert_str_eq(decode1(t, 263, 260), " world");
    expect_round_trip(t, "hello world, abc!\n\tworld  world");
    qtok_free(t);
    /* llama3 takes a word that is a token whole, whatever the merges say */
    t = bpe_make(ex, 7, m, 6, QTOK_PRE_LLAMA3, 1);
    EXPECT(t, "abc", 1, 263, 262);
    EXPECT(t, "abcd", 0, 261, 'c', 'd');
    EXPECT(t, "hello world", 0, 'h', 'e', 'l', 'l', 'o', 260);
    qtok_free(t);
    /* qwen2 does not */
    t = bpe_make(ex, 7, m, 6, QTOK_PRE_QWEN2, 1);
    EXPECT(t, "abc", 0, 261, 'c');
    qtok_free(t);
}
END_TEST

START_TEST(bpe_byte_fallback_and_errors)
{
    /* a vocabulary without the mapped characters of 0xC3 and 0xA9 */
    struct vb b = {0};
    vb_add(&b, "a", 0);             /* 0 */
    vb_add(&b, "<0xC3>", 0);        /* 1 */
    vb_add(&b, "<0xA9>", 0);        /* 2 */
    vb_add(&b, "<unk>", 0);         /* 3 */
    vb_add(&b, "<0x41>", 0);        /* 4: 'A' is missing too */
    struct qtok_vocab v = {.n = b.n, .pieces = (const char *const *)b.pieces, .bos = -1,
                           .eos = -1, .unk = 3};
    struct qtokenizer *t = NULL;
    qerr e = {{0}};
    ck_assert_int_eq(qtok_new_bpe(&v, NULL, 0, QTOK_PRE_GPT2, &t, &e), 0);
    EXPECT(t, "a\xC3\xA9" "A", 0, 0, 1, 2, 4);
    EXPECT(t, "ab", 0, 0, 3);
    ck_assert_str_eq(decode1(t, 0, 1), "\xC3");
    ck_assert_str_eq(decode1(t, 0, 4), "A");
    int32_t *ids;
    int64_t n;
    ck_assert_int_eq(qtok_encode(t, "x", 1, 1, &ids, &n, &e), -1); /* no BOS */
    ck_assert_msg(strstr(e.msg, "BOS"), "%s", e.msg);
    qtok_free(t);
    v.unk = -1;
    ck_assert_int_eq(qtok_new_bpe(&v, NULL, 0, QTOK_PRE_GPT2, &t, &e), 0);
    ck_assert_int_eq(qtok_encode(t, "ab", 2, 0, &ids, &n, &e), -1);
    ck_assert_msg(strstr(e.msg, "0x62"), "%s", e.msg);
    qtok_free(t);
    /* malformed merges are refused, naming the merge */
    const char *bad[] = {"a <0xC3>", "a<0xC3>"};
    ck_assert_int_eq(qtok_new_bpe(&v, bad, 2, QTOK_PRE_GPT2, &t, &e), -1);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(e.msg, "merge 1"), "%s", e.msg);
    const char *bad2[] = {"a "};
    ck_assert_int_eq(qtok_new_bpe(&v, bad2, 1, QTOK_PRE_GPT2, &t, &e), -1);
    ck_assert_int_eq(qtok_new_bpe(&v, NULL, 1, QTOK_PRE_GPT2, &t, &e), -1);
    ck_assert_int_eq(qtok_new_bpe(&v, NULL, 0, QTOK_PRE_COUNT, &t, &e), -1);
    /* a merge of pieces the vocabulary lacks never applies */
    const char *odd[] = {"a zz", "a a"};
    ck_assert_int_eq(qtok_new_bpe(&v, odd, 2, QTOK_PRE_GPT2, &t, &e), 0);
    EXPECT(t, "aa", 0, 0, 0);
    qtok_free(t);
    vb_free(&b);
}
END_TEST

/* ---- llama2.c tokenizer.bin: malformed files ----------------------------- */

/* A small valid tokenizer.bin: max_token_length 6, five tokens; off[i]
 * gets where token i starts. */
static size_t tiny_bin(unsigned char *out, size_t off[5])
{
    const char *p[] = {"<unk>", "\n<s>\n", "\n</s>\n", " ", "a"};
    int32_t max = 6;
    size_t at = 0;
    memcpy(out, &max, 4);
    at = 4;
    for (int i = 0; i < 5; i++) {
        float s = -(float)i;
        int32_t len = (int32_t)strlen(p[i]);
        if (off)
            off[i] = at;
        memcpy(out + at, &s, 4);
        memcpy(out + at + 4, &len, 4);
        memcpy(out + at + 8, p[i], (size_t)len);
        at += 8 + (size_t)len;
    }
    return at;
}

/* Writes data and expects the load to fail naming the file and saying what. */
static void expect_refused(const char *name, const unsigned char *data, size_t n, int vocab,
                           const char *what)
{
    const char *path = tu_path(name);
    char keep[1024];
    snprintf(keep, sizeof keep, "%s", path);
    tu_write_file(keep, data, n);
    struct qtokenizer *t = (struct qtokenizer *)&n;
    qerr e = {{0}};
    ck_assert_int_eq(qtok_load_llama2c(keep, vocab, &t, &e), -1);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(e.msg, keep), "%s: error does not name the file: %s", name, e.msg);
    ck_assert_msg(strstr(e.msg, what), "%s: error \"%s\" does not say \"%s\"", name, e.msg, what);
}

START_TEST(llama2c_valid_tiny)
{
    unsigned char d[256];
    size_t n = tiny_bin(d, NULL);
    const char *path = tu_path("tiny.bin");
    tu_write_file(path, d, n);
    struct qtokenizer *t = NULL;
    qerr e = {{0}};
    ck_assert_msg(qtok_load_llama2c(path, 5, &t, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(qtok_vocab_size(t), 5);
    ck_assert_int_eq(qtok_bos(t), 1);
    ck_assert_int_eq(qtok_eos(t), 2);
    ck_assert_int_eq(t->unk, 0);
    ck_assert_uint_eq(t->max_len, 6);
    EXPECT(t, "a a", 1, 1, 3, 4, 3, 4);
    EXPECT(t, "b", 0, 3, 0); /* no byte pieces: unk */
    qtok_free(t);
}
END_TEST

START_TEST(llama2c_malformed)
{
    unsigned char d[256], c[256];
    size_t off[5];
    size_t n = tiny_bin(d, off);
    int32_t v;
    ck_assert_uint_eq(n, 62);
    expect_refused("cut_bytes.bin", d, n - 1, 5, "token 4");
    expect_refused("cut_header.bin", d, off[3] + 5, 5, "token 3");
    expect_refused("cut_len.bin", d, off[3], 5, "token 3");
    expect_refused("empty.bin", d, 0, 5, "too short");
    expect_refused("two.bin", d, 2, 5, "too short");
    memcpy(c, d, n);
    v = -1;
    memcpy(c + off[2] + 4, &v, 4);
    expect_refused("negative.bin", c, n, 5, "token 2: negative length -1");
    memcpy(c, d, n);
    v = 7;
    memcpy(c + off[3] + 4, &v, 4);
    expect_refused("toolong.bin", c, n, 5, "token 3: length 7 exceeds max_token_length 6");
    v = 1 << 30;
    memcpy(c + off[3] + 4, &v, 4);
    expect_refused("huge.bin", c, n, 5, "token 3");
    memcpy(c, d, n);
    v = 0;
    memcpy(c, &v, 4);
    expect_refused("max0.bin", c, n, 5, "max_token_length 0");
    v = -3;
    memcpy(c, &v, 4);
    expect_refused("maxneg.bin", c, n, 5, "max_token_length -3");
    /* the wrong count either way */
    expect_refused("fewer.bin", d, n, 4, "9 bytes after the 4 tokens");
    expect_refused("more.bin", d, n, 6, "token 5");
    expect_refused("many.bin", d, n, 1000000, "token");
    memcpy(c, d, n);
    c[n] = 'x';
    expect_refused("trailing.bin", c, n + 1, 5, "1 bytes after");
    memcpy(c, d, n);
    float nan = NAN;
    memcpy(c + off[1], &nan, 4);
    expect_refused("nan.bin", c, n, 5, "token 1: score is NaN");
    memcpy(c, d, n);
    c[off[3] + 8] = 0; /* token 3 " " becomes a NUL */
    expect_refused("nul.bin", c, n, 5, "token 3");
    /* absent file, and a vocabulary size that is no size */
    const char *gone = tu_path("absent.bin");
    struct qtokenizer *t = NULL;
    qerr e = {{0}};
    ck_assert_int_eq(qtok_load_llama2c(gone, 5, &t, &e), -1);
    ck_assert_msg(strstr(e.msg, "absent.bin"), "%s", e.msg);
    tu_write_file(tu_path("ok.bin"), d, n);
    ck_assert_int_eq(qtok_load_llama2c(tu_path("ok.bin"), 0, &t, &e), -1);
    ck_assert_msg(strstr(e.msg, "ok.bin"), "%s", e.msg);
    ck_assert_int_eq(qtok_load_llama2c(tu_path("ok.bin"), -5, &t, &e), -1);
}
END_TEST

/* ---- real data: tok512.bin and TinyStories ------------------------------- */

/* llama2.c's encode(), written again from its run.c as an oracle: pieces
 * looked up by bsearch over the sorted vocabulary, byte fallback id =
 * byte + 3, then the adjacent pair with the best score merged (leftmost on
 * ties) until none is in the vocabulary. O(n^2): short texts only. */
struct oracle {
    int n, max_len;
    char **vocab;
    float *scores;
    struct oidx {
        const char *s;
        int id;
    } *sorted;
};

static int oidx_cmp(const void *a, const void *b)
{
    return strcmp(((const struct oidx *)a)->s, ((const struct oidx *)b)->s);
}

static int oracle_lookup(const struct oracle *o, const char *s)
{
    struct oidx key = {s, 0};
    const struct oidx *r = bsearch(&key, o->sorted, (size_t)o->n, sizeof key, oidx_cmp);
    return r ? r->id : -1;
}

static void oracle_load(struct oracle *o, const char *path, int n)
{
    size_t size;
    unsigned char *d = (unsigned char *)tu_read_file(path, &size);
    memcpy(&o->max_len, d, 4);
    o->n = n;
    o->vocab = calloc((size_t)n, sizeof *o->vocab);
    o->scores = calloc((size_t)n, sizeof *o->scores);
    o->sorted = calloc((size_t)n, sizeof *o->sorted);
    size_t at = 4;
    for (int i = 0; i < n; i++) {
        int32_t len;
        memcpy(&o->scores[i], d + at, 4);
        memcpy(&len, d + at + 4, 4);
        o->vocab[i] = calloc((size_t)len + 1, 1);
        memcpy(o->vocab[i], d + at + 8, (size_t)len);
        at += 8 + (size_t)len;
        o->sorted[i] = (struct oidx){o->vocab[i], i};
    }
    ck_assert_uint_eq(at, size);
    qsort(o->sorted, (size_t)n, sizeof *o->sorted, oidx_cmp);
    free(d);
}

static void oracle_free(struct oracle *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->vocab[i]);
    free(o->vocab);
    free(o->scores);
    free(o->sorted);
}

static int oracle_encode(const struct oracle *o, const char *text, int bos, int *tokens)
{
    char *buf = malloc((size_t)o->max_len * 2 + 3);
    size_t len = 0;
    int n = 0;
    if (bos)
        tokens[n++] = 1;
    if (text[0])
        tokens[n++] = oracle_lookup(o, " ");
    for (const char *c = text; *c; c++) {
        if ((*c & 0xC0) != 0x80)
            len = 0;
        buf[len++] = *c;
        buf[len] = 0;
        if ((c[1] & 0xC0) == 0x80 && len < 4)
            continue;
        int id = oracle_lookup(o, buf);
        if (id != -1)
            tokens[n++] = id;
        else
            for (size_t i = 0; i < len; i++)
                tokens[n++] = (unsigned char)buf[i] + 3;
        len = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1, best_i = -1;
        for (int i = 0; i < n - 1; i++) {
            sprintf(buf, "%s%s", o->vocab[tokens[i]], o->vocab[tokens[i + 1]]);
            int id = oracle_lookup(o, buf);
            if (id != -1 && o->scores[id] > best) {
                best = o->scores[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_i == -1)
            break;
        tokens[best_i] = best_id;
        for (int i = best_i + 1; i < n - 1; i++)
            tokens[i] = tokens[i + 1];
        n--;
    }
    free(buf);
    return n;
}

static struct qtokenizer *load_tok512(void)
{
    struct qtokenizer *t = NULL;
    qerr e = {{0}};
    ck_assert_msg(qtok_load_llama2c(tu_shared("stories260k/tok512.bin"), 512, &t, &e) == 0, "%s",
                  e.msg);
    return t;
}

static void expect_oracle(const struct qtokenizer *t, const struct oracle *o, const char *s)
{
    size_t len = strlen(s);
    int *want = malloc((len * 4 + 4) * sizeof *want);
    int nw = oracle_encode(o, s, 1, want);
    int32_t *ids;
    int64_t n;
    qerr e = {{0}};
    ck_assert_msg(qtok_encode(t, s, len, 1, &ids, &n, &e) == 0, "%s", e.msg);
    ck_assert_msg(n == nw, "%lld tokens, llama2.c %d, for \"%.40s...\"", (long long)n, nw, s);
    for (int i = 0; i < nw; i++)
        ck_assert_msg(ids[i] == want[i], "token %d: %d, llama2.c %d", i, ids[i], want[i]);
    free(ids);
    free(want);
}

START_TEST(tok512_loads)
{
    struct qtokenizer *t = load_tok512();
    ck_assert_int_eq(qtok_kind(t), QTOK_SPM);
    ck_assert_int_eq(qtok_vocab_size(t), 512);
    ck_assert_uint_eq(t->max_len, 7);
    ck_assert_int_eq(qtok_bos(t), 1);
    ck_assert_int_eq(qtok_eos(t), 2);
    ck_assert_int_eq(t->unk, 0);
    /* byte pieces 3..258, merges from 259 */
    ck_assert_str_eq(decode1(t, 5, 3 + 'A'), "A");
    ck_assert_str_eq(decode1(t, 5, 259), " t");
    qtok_free(t);
}
END_TEST

START_TEST(tok512_known_sentence)
{
    struct qtokenizer *t = load_tok512();
    /* read from tok512.bin: 403 " Once", 407 " upon", 261 " a", 378 " time" */
    EXPECT(t, "Once upon a time", 1, 1, 403, 407, 261, 378);
    const int32_t ids[] = {403, 407, 261, 378};
    char joined[64] = "";
    for (int i = 0; i < 4; i++)
        strcat(joined, decode1(t, -1, ids[i]));
    ck_assert_str_eq(joined, " Once upon a time");
    /* '\n' has no piece in tok512: the byte <0x0A> (13) */
    EXPECT(t, "Once\n", 0, 403, 13);
    struct oracle o;
    oracle_load(&o, tu_shared("stories260k/tok512.bin"), 512);
    expect_oracle(t, &o, "Once upon a time");
    expect_oracle(t, &o, "Tom said, \xE2\x80\x9CI can\xE2\x80\x99t!\xE2\x80\x9D caf\xC3\xA9 \xF0\x9F\x99\x82 \xC3\xA7" "a\n\nThe end.");
    expect_oracle(t, &o, "   spaced    out   \t tabs ~|~ [x] 100% $5 \\ ");
    oracle_free(&o);
    qtok_free(t);
}
END_TEST

START_TEST(tok512_matches_llama2c_loop)
{
    struct qtokenizer *t = load_tok512();
    size_t len;
    char *text = tu_read_file(tu_shared("tinystories/eval-32k.txt"), &len);
    struct oracle o;
    oracle_load(&o, tu_shared("stories260k/tok512.bin"), 512);
    /* the first 2000 characters (the file is ASCII up to there), and a
     * stretch from the middle */
    ck_assert_uint_gt(len, 20000);
    text[2000] = 0;
    expect_oracle(t, &o, text);
    text[16000] = 0;
    expect_oracle(t, &o, text + 14000);
    oracle_free(&o);
    free(text);
    qtok_free(t);
}
END_TEST

START_TEST(eval32k_count_and_decode)
{
    struct qtokenizer *t = load_tok512();
    size_t len;
    char *text = tu_read_file(tu_shared("tinystories/eval-32k.txt"), &len);
    ck_assert_uint_eq(len, 32722);
    int32_t *ids;
    int64_t n;
    qerr e = {{0}};
    ck_assert_msg(qtok_encode(t, text, len, 1, &ids, &n, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(n, 15652);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 403); /* " Once" */
    free(ids);
    size_t back_len;
    char *back = round_trip(t, text, len, &back_len);
    ck_assert_uint_eq(back_len, len);
    ck_assert(memcmp(back, text, len) == 0);
    free(back);
    free(text);
    qtok_free(t);
}
END_TEST

struct enc_job {
    const struct qtokenizer *t;
    const char *text;
    size_t len;
    int32_t *ids;
    int64_t n;
};

static void *enc_thread(void *arg)
{
    struct enc_job *j = arg;
    qerr e;
    if (qtok_encode(j->t, j->text, j->len, 1, &j->ids, &j->n, &e))
        j->n = -1;
    return NULL;
}

START_TEST(val500k_round_trip_and_threads)
{
    struct qtokenizer *t = load_tok512();
    size_t len;
    char *text = tu_read_file(tu_shared("tinystories/tinystories_val.txt"), &len);
    ck_assert_uint_eq(len, 498878);
    size_t back_len;
    char *back = round_trip(t, text, len, &back_len);
    ck_assert_uint_eq(back_len, len);
    ck_assert(memcmp(back, text, len) == 0);
    free(back);
    /* two threads share the tokenizer and agree token for token */
    struct enc_job j[2] = {{t, text, len, NULL, 0}, {t, text, len / 2, NULL, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, enc_thread, &j[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    struct enc_job solo = {t, text, len / 2, NULL, 0};
    enc_thread(&solo);
    ck_assert_int_gt(j[0].n, j[1].n);
    ck_assert_int_eq(j[1].n, solo.n);
    ck_assert(memcmp(j[1].ids, solo.ids, (size_t)solo.n * sizeof *solo.ids) == 0);
    free(j[0].ids);
    free(j[1].ids);
    free(solo.ids);
    free(text);
    qtok_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("Spm");
    tcase_add_test(tc, spm_merges_by_score);
    tcase_add_test(tc, spm_leftmost_on_ties);
    tcase_add_test(tc, spm_byte_fallback);
    tcase_add_test(tc, spm_invalid_utf8_as_bytes);
    tcase_add_test(tc, spm_unk_only_without_byte_piece);
    tcase_add_test(tc, spm_empty_text);
    tcase_add_test(tc, spm_control_and_byte_pieces_not_matched);
    tcase_add_test(tc, spm_round_trip);
    tcase_add_test(tc, spm_space_marker);
    tcase_add_test(tc, spm_decode);
    tcase_add_test(tc, spm_bad_vocabularies);
    suite_add_tcase(s, tc);
    tc = tcase_create("Bpe");
    tcase_add_test(tc, bpe_split_gpt2);
    tcase_add_test(tc, bpe_split_llama3_qwen2);
    tcase_add_test(tc, bpe_byte_mapping);
    tcase_add_test(tc, bpe_merges_by_rank);
    tcase_add_test(tc, bpe_words_and_ignore_merges);
    tcase_add_test(tc, bpe_byte_fallback_and_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("Limits");
    tcase_add_test(tc, llama2c_valid_tiny);
    tcase_add_test(tc, llama2c_malformed);
    suite_add_tcase(s, tc);
    tc = tcase_create("RealTok512");
    tcase_set_timeout(tc, 300); /* the O(n^2) llama2.c oracle, slow under ASan */
    tcase_add_test(tc, tok512_loads);
    tcase_add_test(tc, tok512_known_sentence);
    tcase_add_test(tc, tok512_matches_llama2c_loop);
    tcase_add_test(tc, eval32k_count_and_decode);
    tcase_add_test(tc, val500k_round_trip_and_threads);
    const char *need[] = {"stories260k/tok512.bin", "tinystories/eval-32k.txt",
                          "tinystories/tinystories_val.txt"};
    tu_add_if_shared(s, tc, need, 3);
    return tu_run(s);
}
