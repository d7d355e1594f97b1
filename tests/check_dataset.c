/* check_dataset.c — IDX (plain and gzip) and safetensors evaluation datasets, their checks and hashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "quant/dataset.h"
#include "quant/safetensors.h"
#include "quant/sha256.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------- */

/* IDX bytes: 00 00 type ndim, big-endian dims, then the given data. */
static size_t idx_bytes(uint8_t *out, uint8_t type, int ndim, const uint32_t *dims,
                        const void *data, size_t data_len)
{
    out[0] = 0;
    out[1] = 0;
    out[2] = type;
    out[3] = (uint8_t)ndim;
    size_t n = 4;
    for (int i = 0; i < ndim; i++) {
        out[n++] = (uint8_t)(dims[i] >> 24);
        out[n++] = (uint8_t)(dims[i] >> 16);
        out[n++] = (uint8_t)(dims[i] >> 8);
        out[n++] = (uint8_t)dims[i];
    }
    memcpy(out + n, data, data_len);
    return n + data_len;
}

static void write_gz(const char *path, const void *data, size_t n)
{
    gzFile g = gzopen(path, "wb");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, data, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(g), Z_OK);
}

/* Images [3, 2, 2] u8 and labels [3] u8, as name-images / name-labels. */
static const uint8_t pix[12] = { 0, 1, 2, 3, 10, 20, 30, 40, 255, 128, 7, 0 };
static const uint8_t lab[3] = { 7, 2, 9 };

static void write_small_idx(const char *images, const char *labels, int gz)
{
    uint8_t buf[64];
    const uint32_t di[3] = { 3, 2, 2 }, dl[1] = { 3 };
    size_t n = idx_bytes(buf, 0x08, 3, di, pix, sizeof pix);
    if (gz)
        write_gz(images, buf, n);
    else
        tu_write_file(images, buf, n);
    n = idx_bytes(buf, 0x08, 1, dl, lab, sizeof lab);
    if (gz)
        write_gz(labels, buf, n);
    else
        tu_write_file(labels, buf, n);
}

static void sha_of_files(const char *a, const char *b, char out[65])
{
    size_t na, nb;
    char *da = tu_read_file(a, &na), *db = b ? tu_read_file(b, &nb) : NULL;
    struct sha256 s;
    uint8_t d[32];
    sha256_init(&s);
    sha256_update(&s, da, na);
    if (db)
        sha256_update(&s, db, nb);
    sha256_final(&s, d);
    sha256_hex(d, out);
    free(da);
    free(db);
}

static void assert_open_fails(const char *path, const char *labels, const char *starts,
                              const char *phrase)
{
    struct qdataset *d = (struct qdataset *)1;
    qerr err = {{0}};
    ck_assert_int_eq(qdataset_open(path, labels, &d, &err), -1);
    ck_assert_ptr_null(d);
    ck_assert_msg(strncmp(err.msg, starts, strlen(starts)) == 0, "'%s' does not start with %s",
                  err.msg, starts);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "'%s' lacks '%s'", err.msg, phrase);
}

/* ---- Idx ----------------------------------------------------------------- */

static void check_small(const struct qdataset *d)
{
    ck_assert_str_eq(d->kind, "idx");
    ck_assert_int_eq(d->n, 3);
    ck_assert_int_eq(d->ndim, 2);
    ck_assert(d->shape[0] == 2 && d->shape[1] == 2);
    ck_assert_int_eq(d->sample_numel, 4);
    for (int i = 0; i < 12; i++)
        ck_assert(d->inputs[i] == (float)pix[i]);
    ck_assert(d->labels[0] == 7 && d->labels[1] == 2 && d->labels[2] == 9);
    ck_assert_int_eq(d->max_label, 9);
}

START_TEST(idx_plain_and_gzip)
{
    const char *im = tu_path("small-images-idx3-ubyte"), *lb = tu_path("small-labels-idx1-ubyte");
    const char *gim = tu_path("gz-images-idx3-ubyte.gz"), *glb = tu_path("gz-labels-idx1-ubyte.gz");
    write_small_idx(im, lb, 0);
    write_small_idx(gim, glb, 1);
    struct qdataset *d = NULL, *g = NULL;
    qerr err = {{0}};
    ck_assert_msg(qdataset_open(im, NULL, &d, &err) == 0, "%s", err.msg);
    check_small(d);
    ck_assert_str_eq(d->path, im);
    ck_assert_str_eq(d->labels_path, lb); /* derived */
    char want[65];
    sha_of_files(im, lb, want);
    ck_assert_str_eq(d->sha256, want);

    ck_assert_msg(qdataset_open(gim, NULL, &g, &err) == 0, "%s", err.msg);
    check_small(g);
    ck_assert_str_eq(g->labels_path, glb);
    sha_of_files(gim, glb, want);
    ck_assert_str_eq(g->sha256, want);
    /* the hash is of the bytes on disk, so gzip and plain differ */
    ck_assert_str_ne(g->sha256, d->sha256);
    qdataset_free(g);

    /* an explicit labels file wins over the derived name, and mixes formats */
    ck_assert_msg(qdataset_open(im, glb, &g, &err) == 0, "%s", err.msg);
    check_small(g);
    ck_assert_str_eq(g->labels_path, glb);
    sha_of_files(im, glb, want);
    ck_assert_str_eq(g->sha256, want);
    qdataset_free(g);

    /* one changed label byte changes the hash */
    uint8_t buf[16];
    const uint32_t dl[1] = { 3 };
    const uint8_t lab2[3] = { 7, 3, 9 };
    size_t n = idx_bytes(buf, 0x08, 1, dl, lab2, 3);
    tu_write_file(lb, buf, n);
    ck_assert_int_eq(qdataset_open(im, NULL, &g, &err), 0);
    ck_assert_int_eq(g->labels[1], 3);
    ck_assert_str_ne(g->sha256, d->sha256);
    qdataset_free(g);
    qdataset_free(d);
    qdataset_free(NULL);
}
END_TEST

/* Every IDX element type, big-endian, with negative values. */
START_TEST(idx_types)
{
    struct { uint8_t type; uint8_t bytes[16]; size_t len; float want[2]; } cases[] = {
        { 0x08, { 0xFF, 0x01 }, 2, { 255, 1 } },
        { 0x09, { 0xFF, 0x80 }, 2, { -1, -128 } },
        { 0x0B, { 0xFF, 0xFE, 0x01, 0x02 }, 4, { -2, 258 } },
        { 0x0C, { 0xFF, 0xFF, 0xFF, 0xFD, 0x00, 0x01, 0x00, 0x00 }, 8, { -3, 65536 } },
        { 0x0D, { 0x3F, 0xC0, 0x00, 0x00, 0xBE, 0x80, 0x00, 0x00 }, 8, { 1.5f, -0.25f } },
        { 0x0E, { 0x40, 0x09, 0x21, 0xFB, 0x54, 0x44, 0x2D, 0x18,
                  0xC0, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 }, 16, { (float)3.141592653589793, -10 } },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t buf[64];
        const uint32_t dims[1] = { 2 };
        size_t n = idx_bytes(buf, cases[c].type, 1, dims, cases[c].bytes, cases[c].len);
        char name[32];
        snprintf(name, sizeof name, "type-%02x.idx", cases[c].type);
        const char *p = tu_path(name);
        tu_write_file(p, buf, n);
        float *data = NULL;
        int ndim = 0;
        int64_t d[QT_MAX_DIMS];
        qerr err = {{0}};
        ck_assert_msg(qidx_read(p, 100, &data, &ndim, d, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(ndim, 1);
        ck_assert_int_eq(d[0], 2);
        ck_assert_msg(data[0] == cases[c].want[0] && data[1] == cases[c].want[1],
                      "type 0x%02x: %g %g", cases[c].type, (double)data[0], (double)data[1]);
        free(data);
    }
}
END_TEST

START_TEST(labels_path_derivation)
{
    char out[256];
    ck_assert_int_eq(qdataset_idx_labels_path("t10k-images-idx3-ubyte.gz", out, sizeof out), 0);
    ck_assert_str_eq(out, "t10k-labels-idx1-ubyte.gz");
    ck_assert_int_eq(qdataset_idx_labels_path("data/train-images.idx3-ubyte", out, sizeof out), 0);
    ck_assert_str_eq(out, "data/train-labels.idx1-ubyte");
    /* only the base name changes */
    ck_assert_int_eq(qdataset_idx_labels_path("/x/images/idx3/t-images-idx3", out, sizeof out), 0);
    ck_assert_str_eq(out, "/x/images/idx3/t-labels-idx1");
    ck_assert_int_eq(qdataset_idx_labels_path("my-images.bin", out, sizeof out), 0);
    ck_assert_str_eq(out, "my-labels.bin");
    ck_assert_int_eq(qdataset_idx_labels_path("images/data.idx3", out, sizeof out), -1);
    ck_assert_int_eq(qdataset_idx_labels_path("pictures.gz", out, sizeof out), -1);
    char small[8];
    ck_assert_int_eq(qdataset_idx_labels_path("t-images-idx3", small, sizeof small), -1);
}
END_TEST

/* ---- IdxErrors ----------------------------------------------------------- */

START_TEST(idx_count_mismatch)
{
    const char *im = tu_path("cm-images"), *lb = tu_path("cm-labels");
    write_small_idx(im, lb, 0);
    uint8_t buf[16];
    const uint32_t dl[1] = { 2 };
    tu_write_file(lb, buf, idx_bytes(buf, 0x08, 1, dl, lab, 2));
    assert_open_fails(im, NULL, lb, "2 labels for 3 images in");
}
END_TEST

START_TEST(idx_truncated_and_trailing)
{
    uint8_t buf[64];
    const uint32_t dims[2] = { 3, 4 };
    size_t n = idx_bytes(buf, 0x08, 2, dims, pix, 12);
    const char *p = tu_path("cut-images");
    tu_write_file(p, buf, n - 2);
    float *data = NULL;
    int nd;
    int64_t d[QT_MAX_DIMS];
    qerr err = {{0}};
    ck_assert_int_eq(qidx_read(p, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_null(data);
    ck_assert_ptr_nonnull(strstr(err.msg, p));
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated: expected 12 bytes of data, found 10"));
    /* the same through gzip */
    const char *g = tu_path("cut-images.gz");
    write_gz(g, buf, n - 2);
    ck_assert_int_eq(qidx_read(g, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated: expected 12 bytes of data, found 10"));
    /* and a header cut short */
    tu_write_file(p, buf, 3);
    ck_assert_int_eq(qidx_read(p, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated: 3 bytes"));
    tu_write_file(p, buf, 9);
    ck_assert_int_eq(qidx_read(p, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated in the IDX header"));

    memcpy(buf + n, "xy", 2);
    const char *t = tu_path("trail-images");
    tu_write_file(t, buf, n + 2);
    ck_assert_int_eq(qidx_read(t, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, t));
    ck_assert_ptr_nonnull(strstr(err.msg, "2 unexpected bytes after the data"));
    write_gz(g, buf, n + 2);
    ck_assert_int_eq(qidx_read(g, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "2 unexpected bytes after the data"));
}
END_TEST

START_TEST(idx_bad_header)
{
    uint8_t buf[64];
    const uint32_t dims[1] = { 2 };
    float *data = NULL;
    int nd;
    int64_t d[QT_MAX_DIMS];
    qerr err = {{0}};
    const char *p = tu_path("bad.idx");
    size_t n = idx_bytes(buf, 0x08, 1, dims, "ab", 2);
    buf[1] = 0x12;
    tu_write_file(p, buf, n);
    ck_assert_int_eq(qidx_read(p, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, p));
    ck_assert_ptr_nonnull(strstr(err.msg, "bad magic"));
    buf[1] = 0;
    buf[2] = 0x07;
    tu_write_file(p, buf, n);
    ck_assert_int_eq(qidx_read(p, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown IDX type code 0x07"));
    buf[2] = 0x08;
    buf[3] = 0;
    tu_write_file(p, buf, n);
    ck_assert_int_eq(qidx_read(p, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "0 dimensions"));
    buf[3] = 9;
    tu_write_file(p, buf, n);
    ck_assert_int_eq(qidx_read(p, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "9 dimensions"));
    ck_assert_int_eq(qidx_read(tu_path("absent.idx"), 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open"));
    ck_assert_ptr_null(data);
}
END_TEST

/* A tiny file that claims a huge size fails by its size, never by allocating it. */
START_TEST(idx_size_limits)
{
    uint8_t buf[64];
    float *data = NULL;
    int nd;
    int64_t d[QT_MAX_DIMS];
    qerr err = {{0}};
    const char *p = tu_path("huge-images");
    const uint32_t big[3] = { 65536, 65536, 2 };
    tu_write_file(p, buf, idx_bytes(buf, 0x08, 3, big, "abcd", 4));
    ck_assert_int_eq(qidx_read(p, (int64_t)1 << 31, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "more than the limit of 2147483648 elements"));
    const uint32_t claim[1] = { 0x7FFFFFFF };
    tu_write_file(p, buf, idx_bytes(buf, 0x0E, 1, claim, "abcdefgh", 8));
    ck_assert_int_eq(qidx_read(p, (int64_t)1 << 31, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "truncated: expected 17179869176 bytes of data, found 8"));
    /* the limit is inclusive */
    const uint32_t four[1] = { 4 };
    tu_write_file(p, buf, idx_bytes(buf, 0x08, 1, four, "abcd", 4));
    ck_assert_int_eq(qidx_read(p, 3, &data, &nd, d, &err), -1);
    ck_assert_int_eq(qidx_read(p, 4, &data, &nd, d, &err), 0);
    ck_assert(data[3] == 'd');
    free(data);
}
END_TEST

START_TEST(idx_gzip_corrupt)
{
    uint8_t buf[64];
    const uint32_t dims[2] = { 3, 4 };
    size_t n = idx_bytes(buf, 0x08, 2, dims, pix, 12);
    const char *g = tu_path("corrupt-images.gz");
    write_gz(g, buf, n);
    size_t len;
    char *z = tu_read_file(g, &len);
    /* the gzip trailer is CRC-32 then size; a wrong CRC is a data error */
    z[len - 8] ^= 0x55;
    tu_write_file(g, z, len);
    float *data = NULL;
    int nd;
    int64_t d[QT_MAX_DIMS];
    qerr err = {{0}};
    ck_assert_int_eq(qidx_read(g, 1000, &data, &nd, d, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, g));
    ck_assert_msg(strstr(err.msg, "gzip data is corrupt") != NULL, "%s", err.msg);
    /* a stream missing its trailer ends early even though the data is all there */
    z[len - 8] ^= 0x55;
    tu_write_file(g, z, len - 6);
    ck_assert_int_eq(qidx_read(g, 1000, &data, &nd, d, &err), -1);
    ck_assert_msg(strstr(err.msg, "gzip stream ends early") != NULL, "%s", err.msg);
    free(z);
    ck_assert_ptr_null(data);
}
END_TEST

START_TEST(idx_missing_labels)
{
    const char *im = tu_path("lonely-images-idx3-ubyte.gz");
    uint8_t buf[64];
    const uint32_t di[3] = { 3, 2, 2 };
    write_gz(im, buf, idx_bytes(buf, 0x08, 3, di, pix, 12));
    char msg[2048];
    assert_open_fails(im, NULL, im, "give --labels FILE");
    snprintf(msg, sizeof msg, "%s does not exist", tu_path("lonely-labels-idx1-ubyte.gz"));
    assert_open_fails(im, NULL, im, msg);
    /* no "images" in the name: nothing to derive */
    const char *odd = tu_path("pictures.idx");
    write_gz(odd, buf, idx_bytes(buf, 0x08, 3, di, pix, 12));
    assert_open_fails(odd, NULL, odd, "cannot derive the labels file name");
    /* a labels file given but absent */
    const char *absent = tu_path("absent-labels");
    assert_open_fails(im, absent, absent, "cannot open");
}
END_TEST

START_TEST(idx_bad_labels)
{
    const char *im = tu_path("bl-images"), *lb = tu_path("bl-labels");
    write_small_idx(im, lb, 0);
    uint8_t buf[64];
    const uint32_t dl[1] = { 3 }, dl2[2] = { 3, 1 };
    const uint8_t neg[3] = { 1, 0xFF, 2 };
    tu_write_file(lb, buf, idx_bytes(buf, 0x09, 1, dl, neg, 3));
    assert_open_fails(im, NULL, lb, "label 1 is -1");
    const uint8_t frac[12] = { 0x3F, 0x80, 0, 0, 0x3F, 0xC0, 0, 0, 0, 0, 0, 0 }; /* 1, 1.5, 0 */
    tu_write_file(lb, buf, idx_bytes(buf, 0x0D, 1, dl, frac, 12));
    assert_open_fails(im, NULL, lb, "label 1 is 1.5");
    tu_write_file(lb, buf, idx_bytes(buf, 0x08, 2, dl2, lab, 3));
    assert_open_fails(im, NULL, lb, "labels must have 1 dimension; this file has 2");
    /* i32 labels keep full precision: 2^24 + 1 is exact */
    const uint8_t wide[12] = { 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0 };
    tu_write_file(lb, buf, idx_bytes(buf, 0x0C, 1, dl, wide, 12));
    struct qdataset *d = NULL;
    qerr err = {{0}};
    ck_assert_msg(qdataset_open(im, NULL, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d->labels[1], 16777217);
    ck_assert_int_eq(d->max_label, 16777217);
    qdataset_free(d);
    /* images must be at least 2-D */
    const uint32_t flat[1] = { 3 };
    tu_write_file(im, buf, idx_bytes(buf, 0x08, 1, flat, pix, 3));
    assert_open_fails(im, NULL, im, "at least 2 dimensions");
    /* zero samples */
    const uint32_t none[2] = { 0, 4 }, dl0[1] = { 0 };
    tu_write_file(im, buf, idx_bytes(buf, 0x08, 2, none, pix, 0));
    tu_write_file(lb, buf, idx_bytes(buf, 0x08, 1, dl0, lab, 0));
    assert_open_fails(im, NULL, im, "no samples");
}
END_TEST

/* Random damage to a gzip IDX file never crashes and always names a file. */
START_TEST(idx_mutations_never_crash)
{
    const char *im = tu_path("mut-images.gz"), *lb = tu_path("mut-labels.gz");
    write_small_idx(im, lb, 1);
    size_t n;
    uint8_t *orig = (uint8_t *)tu_read_file(im, &n);
    uint8_t *buf = malloc(n);
    const char *p = tu_path("mutant-images");
    uint32_t x = 777;
    for (int it = 0; it < 1000; it++) {
        memcpy(buf, orig, n);
        size_t len = n;
        for (int j = 0; j < 2; j++) {
            x = x * 1664525u + 1013904223u;
            size_t at = (x >> 8) % len;
            if ((x >> 30) == 0)
                len = at + 1;
            else
                buf[at] ^= (uint8_t)(1u << ((x >> 4) % 8));
        }
        tu_write_file(p, buf, len);
        struct qdataset *d = NULL;
        qerr err = {{0}};
        if (qdataset_open(p, lb, &d, &err) == 0) {
            ck_assert_int_eq(d->n, 3);
            qdataset_free(d);
        } else if (strncmp(err.msg, p, strlen(p)) != 0 && strncmp(err.msg, lb, strlen(lb)) != 0) {
            ck_abort_msg("message does not name the file: %s", err.msg);
        }
    }
    free(buf);
    free(orig);
}
END_TEST

/* ---- Safetensors --------------------------------------------------------- */

static const char *write_st_dataset(const char *name, enum qdtype in_dt, const void *inputs,
                                    const int64_t *in_shape, int in_ndim, enum qdtype lab_dt,
                                    const void *labels, int64_t n_labels)
{
    const int64_t ls[1] = { n_labels };
    const struct st_write_tensor ts[] = {
        { "inputs", in_dt, in_ndim, in_shape, inputs },
        { "labels", lab_dt, 1, ls, labels },
    };
    const char *p = tu_path(name);
    qerr err = {{0}};
    ck_assert_msg(st_write(p, ts, 2, NULL, 0, &err) == 0, "%s", err.msg);
    return p;
}

START_TEST(st_dataset)
{
    const uint16_t in[6] = { 0x3C00, 0xC000, 0x0000, 0x3800, 0x4200, 0x7BFF }; /* 1 -2 0 .5 3 65504 */
    const int64_t shape[3] = { 3, 1, 2 };
    const int64_t labels[3] = { 4, 0, 11 };
    const char *p = write_st_dataset("ds.safetensors", QDT_F16, in, shape, 3, QDT_I64, labels, 3);
    struct qdataset *d = NULL;
    qerr err = {{0}};
    ck_assert_msg(qdataset_open(p, NULL, &d, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(d->kind, "safetensors");
    ck_assert_ptr_null(d->labels_path);
    ck_assert_int_eq(d->n, 3);
    ck_assert_int_eq(d->ndim, 2);
    ck_assert(d->shape[0] == 1 && d->shape[1] == 2);
    ck_assert_int_eq(d->sample_numel, 2);
    const float want[6] = { 1, -2, 0, 0.5f, 3, 65504 };
    for (int i = 0; i < 6; i++)
        ck_assert(d->inputs[i] == want[i]);
    ck_assert(d->labels[0] == 4 && d->labels[1] == 0 && d->labels[2] == 11);
    ck_assert_int_eq(d->max_label, 11);
    char sha[65];
    sha_of_files(p, NULL, sha);
    ck_assert_str_eq(d->sha256, sha);
    qdataset_free(d);

    /* U8 inputs, I8 and I32 labels; 1-D inputs give scalar samples */
    const uint8_t u[4] = { 0, 255, 3, 4 };
    const int64_t s1[1] = { 4 };
    const int8_t l8[4] = { 1, 2, 3, 127 };
    p = write_st_dataset("ds8.safetensors", QDT_U8, u, s1, 1, QDT_I8, l8, 4);
    ck_assert_msg(qdataset_open(p, NULL, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d->ndim, 0);
    ck_assert_int_eq(d->sample_numel, 1);
    ck_assert(d->inputs[1] == 255.0f);
    ck_assert_int_eq(d->max_label, 127);
    char sha8[65];
    memcpy(sha8, d->sha256, sizeof sha8);
    qdataset_free(d);
    const int32_t l32[4] = { 1, 2, 3, INT32_MAX };
    p = write_st_dataset("ds8.safetensors", QDT_U8, u, s1, 1, QDT_I32, l32, 4);
    ck_assert_msg(qdataset_open(p, NULL, &d, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(d->max_label, INT32_MAX);
    ck_assert_str_ne(d->sha256, sha8);
    qdataset_free(d);
}
END_TEST

START_TEST(st_dataset_errors)
{
    const float in[3] = { 1, 2, 3 };
    const int64_t s3[1] = { 3 };
    const int64_t neg[3] = { 0, -1, 2 }, big[3] = { 2147483648LL, 0, 0 };
    const char *p = write_st_dataset("neg.safetensors", QDT_F32, in, s3, 1, QDT_I64, neg, 3);
    assert_open_fails(p, NULL, p, "labels[1] is -1");
    p = write_st_dataset("big.safetensors", QDT_F32, in, s3, 1, QDT_I64, big, 3);
    assert_open_fails(p, NULL, p, "labels[0] is 2147483648");
    const int8_t n8[3] = { 0, 1, -5 };
    p = write_st_dataset("neg8.safetensors", QDT_F32, in, s3, 1, QDT_I8, n8, 3);
    assert_open_fails(p, NULL, p, "labels[2] is -5");
    const float fl[3] = { 0, 1, 2 };
    p = write_st_dataset("flt.safetensors", QDT_F32, in, s3, 1, QDT_F32, fl, 3);
    assert_open_fails(p, NULL, p, "labels must be I64, I32, U8 or I8");
    const int64_t ok[2] = { 0, 1 };
    p = write_st_dataset("count.safetensors", QDT_F32, in, s3, 1, QDT_I64, ok, 2);
    assert_open_fails(p, NULL, p, "tensor 'labels' has shape [2]; with inputs [3] it must be [3]");
    /* labels_path is for IDX only */
    const int64_t ok3[3] = { 0, 1, 2 };
    p = write_st_dataset("lp.safetensors", QDT_F32, in, s3, 1, QDT_I64, ok3, 3);
    assert_open_fails(p, "x-labels", p, "do not give a labels file");

    /* missing tensors are named */
    const struct st_write_tensor only_in[] = { { "inputs", QDT_F32, 1, s3, in } };
    const struct st_write_tensor only_lab[] = { { "labels", QDT_I64, 1, s3, neg } };
    qerr err = {{0}};
    p = tu_path("nolabels.safetensors");
    ck_assert_int_eq(st_write(p, only_in, 1, NULL, 0, &err), 0);
    assert_open_fails(p, NULL, p, "no tensor 'labels'");
    p = tu_path("noinputs.safetensors");
    ck_assert_int_eq(st_write(p, only_lab, 1, NULL, 0, &err), 0);
    assert_open_fails(p, NULL, p, "no tensor 'inputs'");
    /* a broken safetensors file reports the reader's own error */
    p = tu_path("junk.safetensors");
    tu_write_file(p, "1234", 4);
    assert_open_fails(p, NULL, p, "file is 4 bytes");
}
END_TEST

/* ---- Real: the MNIST test set -------------------------------------------- */

START_TEST(real_mnist)
{
    const char *im = tu_shared("mnist/t10k-images-idx3-ubyte.gz");
    struct qdataset *d = NULL;
    qerr err = {{0}};
    ck_assert_msg(qdataset_open(im, NULL, &d, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(d->kind, "idx");
    ck_assert_int_eq(d->n, 10000);
    ck_assert_int_eq(d->ndim, 2);
    ck_assert(d->shape[0] == 28 && d->shape[1] == 28);
    ck_assert_int_eq(d->sample_numel, 784);
    ck_assert_int_eq(d->labels[0], 7);
    ck_assert_int_eq(d->labels[1], 2);
    ck_assert_int_eq(d->labels[9], 9);
    ck_assert_int_eq(d->max_label, 9);
    double sum0 = 0;
    float hi = 0;
    for (int64_t i = 0; i < d->n * d->sample_numel; i++) {
        float v = d->inputs[i];
        if (!(v >= 0 && v <= 255 && v == (float)(int)v))
            ck_abort_msg("pixel %lld is %g", (long long)i, (double)v);
        if (v > hi)
            hi = v;
        if (i < 784)
            sum0 += v;
    }
    ck_assert(hi == 255.0f);
    ck_assert(sum0 == 18454.0); /* sum of the first image's pixels */
    ck_assert(d->inputs[7 * 28 + 7] == 0xb9); /* row 7, column 7 of the first image */
    ck_assert_ptr_nonnull(strstr(d->labels_path, "t10k-labels-idx1-ubyte.gz"));
    /* the hash is of both gzip files as stored */
    char cmd[4200], *out = NULL, *eout = NULL;
    snprintf(cmd, sizeof cmd, "cat '%s' '%s' | sha256sum", im, d->labels_path);
    ck_assert_int_eq(tu_run_cmd(cmd, &out, &eout), 0);
    ck_assert_uint_ge(strlen(out), 64);
    out[64] = 0;
    ck_assert_str_eq(d->sha256, out);
    free(out);
    free(eout);
    qdataset_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("Idx");
    tcase_add_test(tc, idx_plain_and_gzip);
    tcase_add_test(tc, idx_types);
    tcase_add_test(tc, labels_path_derivation);
    suite_add_tcase(s, tc);
    tc = tcase_create("IdxErrors");
    tcase_add_test(tc, idx_count_mismatch);
    tcase_add_test(tc, idx_truncated_and_trailing);
    tcase_add_test(tc, idx_bad_header);
    tcase_add_test(tc, idx_size_limits);
    tcase_add_test(tc, idx_gzip_corrupt);
    tcase_add_test(tc, idx_missing_labels);
    tcase_add_test(tc, idx_bad_labels);
    suite_add_tcase(s, tc);
    tc = tcase_create("Fuzz");
    tcase_set_timeout(tc, 120); /* many files; slow under ASan */
    tcase_add_test(tc, idx_mutations_never_crash);
    suite_add_tcase(s, tc);
    tc = tcase_create("Safetensors");
    tcase_add_test(tc, st_dataset);
    tcase_add_test(tc, st_dataset_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("RealMnist");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, real_mnist);
    static const char *const mnist[] = { "mnist/t10k-images-idx3-ubyte.gz",
                                         "mnist/t10k-labels-idx1-ubyte.gz" };
    tu_add_if_shared(s, tc, mnist, 2);
    return tu_run(s);
}
