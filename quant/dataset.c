/* dataset.c — evaluation data: IDX (plain or gzip) and safetensors files, checked and hashed. */
#include "dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "safetensors.h"
#include "sha256.h"

/* No dataset file may hold more than this many values (8 GiB as floats). */
#define QDS_MAX_ELEMS ((int64_t)1 << 31)
/* Bytes read (and decoded) at a time; every IDX element size divides it. */
#define IDX_CHUNK (64 * 1024)

/* ---- IDX element types (all big-endian) ---------------------------------- */

static void be_u8(const uint8_t *p, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = p[i];
}

static void be_i8(const uint8_t *p, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        d[i] = (int8_t)p[i];
}

static void be_i16(const uint8_t *p, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 2)
        d[i] = (int16_t)(uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void be_i32(const uint8_t *p, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 4)
        d[i] = (int32_t)be32(p);
}

static void be_f32(const uint8_t *p, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 4) {
        uint32_t u = be32(p);
        float f;
        memcpy(&f, &u, sizeof f);
        d[i] = f;
    }
}

static void be_f64(const uint8_t *p, double *d, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 8) {
        uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
        memcpy(&d[i], &u, sizeof u);
    }
}

static const struct idx_type {
    uint8_t code;
    uint8_t size;       /* bytes per element */
    const char *name;
    void (*decode)(const uint8_t *src, double *dst, size_t n); /* exact for every type */
} idx_types[] = {
    { .code = 0x08, .size = 1, .name = "u8",  .decode = be_u8 },
    { .code = 0x09, .size = 1, .name = "i8",  .decode = be_i8 },
    { .code = 0x0B, .size = 2, .name = "i16", .decode = be_i16 },
    { .code = 0x0C, .size = 4, .name = "i32", .decode = be_i32 },
    { .code = 0x0D, .size = 4, .name = "f32", .decode = be_f32 },
    { .code = 0x0E, .size = 8, .name = "f64", .decode = be_f64 },
};

static const struct idx_type *idx_type_find(uint8_t code)
{
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == code)
            return &idx_types[i];
    return NULL;
}

/* ---- reading through zlib ------------------------------------------------ */

struct idx_in {
    gzFile gz;
    const char *path;
    int cut;            /* the gzip stream ended before its trailer */
};

/* zlib's message without the "<fd:N>: " it puts in front for gzdopen files. */
static const char *zlib_reason(const char *msg)
{
    const char *r = msg;
    for (const char *p = msg; (p = strstr(p, ": ")) != NULL; p += 2)
        r = p + 2;
    return r;
}

/* Reads up to n bytes; fewer only at the end of the file. -1 on a read or
 * gzip error. */
static int64_t idx_read(struct idx_in *in, void *buf, size_t n, qerr *err)
{
    uint8_t *p = buf;
    size_t got = 0;
    /* Z_BUF_ERROR (input ended early) can come while decompressed bytes
     * are still buffered, so keep reading until zlib returns nothing */
    while (got < n) {
        size_t want = n - got > INT_MAX ? INT_MAX : n - got;
        int k = gzread(in->gz, p + got, (unsigned)want);
        int errnum = Z_OK;
        const char *msg = gzerror(in->gz, &errnum);
        if (errnum == Z_ERRNO)
            return qerr_set(err, "%s: read error: %s", in->path, strerror(errno));
        if (errnum == Z_BUF_ERROR)
            in->cut = 1;
        else if (errnum != Z_OK || k < 0)
            return qerr_set(err, "%s: gzip data is corrupt: %s", in->path, zlib_reason(msg));
        if (k > 0)
            got += (size_t)k;
        if (k == 0)
            break;
    }
    return (int64_t)got;
}

enum idx_want { IDX_FLOATS, IDX_LABELS };

/* Stores decoded values as floats or as checked labels. */
static int idx_store(const struct idx_in *in, enum idx_want want, const double *v, size_t n,
                     void *out, int64_t at, qerr *err)
{
    if (want == IDX_FLOATS) {
        float *f = (float *)out + at;
        for (size_t i = 0; i < n; i++)
            f[i] = (float)v[i];
        return 0;
    }
    int32_t *l = (int32_t *)out + at;
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] >= 0 && v[i] <= INT32_MAX) || v[i] != (double)(int32_t)v[i])
            return qerr_set(err, "%s: label %lld is %g; labels must be integers in 0..%d",
                            in->path, (long long)(at + (int64_t)i), v[i], INT32_MAX);
        l[i] = (int32_t)v[i];
    }
    return 0;
}

/* Reads the 4-byte magic and the dims; *count gets the element count. */
static int idx_header(struct idx_in *in, int64_t max_elems, const struct idx_type **type,
                      int *ndim, int64_t dims[QT_MAX_DIMS], int64_t *count, qerr *err)
{
    uint8_t h[4 + 4 * QT_MAX_DIMS];
    int64_t got = idx_read(in, h, 4, err);
    if (got < 0)
        return -1;
    if (got < 4)
        return qerr_set(err, "%s: truncated: %lld bytes, an IDX header needs 4%s", in->path,
                        (long long)got, in->cut ? " (gzip stream ends early)" : "");
    if (h[0] != 0 || h[1] != 0)
        return qerr_set(err, "%s: not an IDX file (bad magic: first bytes %02x %02x, expected "
                        "00 00)", in->path, h[0], h[1]);
    *type = idx_type_find(h[2]);
    if (!*type)
        return qerr_set(err, "%s: unknown IDX type code 0x%02X (known: 0x08 u8, 0x09 i8, "
                        "0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)", in->path, h[2]);
    int nd = h[3];
    if (nd < 1 || nd > QT_MAX_DIMS)
        return qerr_set(err, "%s: IDX file has %d dimensions (1..%d supported)", in->path, nd,
                        QT_MAX_DIMS);
    got = idx_read(in, h + 4, 4 * (size_t)nd, err);
    if (got < 0)
        return -1;
    if (got < 4 * nd)
        return qerr_set(err, "%s: truncated in the IDX header: %d dimensions need %d bytes, "
                        "found %lld", in->path, nd, 4 * nd, (long long)got);
    int64_t total = 1;
    for (int i = 0; i < nd; i++) {
        dims[i] = be32(h + 4 + 4 * i);
        /* dims are < 2^32 and total <= max_elems here, so the check cannot overflow */
        if (dims[i] != 0 && total > max_elems / dims[i]) {
            char s[256];
            qshape_format(dims, i + 1, s, sizeof s);
            return qerr_set(err, "%s: IDX dimensions %s%s hold more than the limit of %lld "
                            "elements", in->path, s, i + 1 < nd ? "..." : "",
                            (long long)max_elems);
        }
        total *= dims[i];
    }
    *ndim = nd;
    *count = total;
    return 0;
}

/* Reads count elements into a buffer that grows with the data actually
 * present, so a small file claiming a huge size cannot force a huge
 * allocation; then insists on the end of the file. */
static int idx_body(struct idx_in *in, const struct idx_type *type, int64_t count,
                    enum idx_want want, void **out, qerr *err)
{
    uint8_t *raw = malloc(IDX_CHUNK);
    double *val = malloc(IDX_CHUNK * sizeof *val);
    int64_t cap = count < IDX_CHUNK ? (count > 0 ? count : 1) : IDX_CHUNK;
    void *buf = malloc((size_t)cap * 4); /* float and int32 are both 4 bytes */
    int rc = -1;
    if (!raw || !val || !buf) {
        qerr_set(err, "%s: out of memory", in->path);
        goto out;
    }
    uint64_t need = (uint64_t)count * type->size, have = 0;
    while (have < need) {
        size_t want_b = need - have < IDX_CHUNK ? (size_t)(need - have) : IDX_CHUNK;
        int64_t got = idx_read(in, raw, want_b, err);
        if (got < 0)
            goto out;
        int64_t at = (int64_t)(have / type->size), n = got / type->size;
        if (at + n > cap) {
            while (at + n > cap)
                cap = cap * 2 < count ? cap * 2 : count;
            void *nb = realloc(buf, (size_t)cap * 4);
            if (!nb) {
                qerr_set(err, "%s: out of memory for %lld elements", in->path, (long long)cap);
                goto out;
            }
            buf = nb;
        }
        type->decode(raw, val, (size_t)n);
        if (idx_store(in, want, val, (size_t)n, buf, at, err) != 0)
            goto out;
        have += (uint64_t)got;
        if ((size_t)got < want_b) {
            qerr_set(err, "%s: truncated: expected %llu bytes of data, found %llu%s", in->path,
                     (unsigned long long)need, (unsigned long long)have,
                     in->cut ? " (gzip stream ends early)" : "");
            goto out;
        }
    }
    uint64_t extra = 0;
    for (;;) {
        int64_t got = idx_read(in, raw, IDX_CHUNK, err);
        if (got < 0)
            goto out;
        extra += (uint64_t)got;
        if (got < IDX_CHUNK)
            break;
    }
    if (extra > 0) {
        qerr_set(err, "%s: %llu unexpected bytes after the data", in->path,
                 (unsigned long long)extra);
        goto out;
    }
    if (in->cut) {
        qerr_set(err, "%s: gzip stream ends early (unexpected end of file)", in->path);
        goto out;
    }
    *out = buf;
    buf = NULL;
    rc = 0;
out:
    free(raw);
    free(val);
    free(buf);
    return rc;
}

static int idx_load(const char *path, int64_t max_elems, enum idx_want want, void **data,
                    int *ndim, int64_t dims[QT_MAX_DIMS], qerr *err)
{
    *data = NULL;
    /* O_NONBLOCK: a FIFO must not hang the open; only regular files are read */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return qerr_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return qerr_set(err, "%s: not a regular file", path);
    }
    struct idx_in in = { .gz = gzdopen(fd, "rb"), .path = path };
    if (!in.gz) {
        close(fd);
        return qerr_set(err, "%s: cannot read through zlib", path);
    }
    gzbuffer(in.gz, 128 * 1024);
    const struct idx_type *type = NULL;
    int64_t count = 0;
    int nd = 0;
    int64_t d[QT_MAX_DIMS] = {0};
    int rc = idx_header(&in, max_elems, &type, &nd, d, &count, err);
    if (rc == 0)
        rc = idx_body(&in, type, count, want, data, err);
    gzclose(in.gz);
    if (rc == 0) {
        *ndim = nd;
        memcpy(dims, d, sizeof d);
    }
    return rc;
}

int qidx_read(const char *path, int64_t max_elems, float **data, int *ndim,
              int64_t dims[QT_MAX_DIMS], qerr *err)
{
    void *p = NULL;
    if (max_elems < 0)
        max_elems = 0;
    int rc = idx_load(path, max_elems, IDX_FLOATS, &p, ndim, dims, err);
    *data = p;
    return rc;
}

/* ---- IDX datasets -------------------------------------------------------- */

int qdataset_idx_labels_path(const char *images_path, char *out, size_t size)
{
    size_t len = strlen(images_path);
    if (len + 1 > size)
        return -1;
    memcpy(out, images_path, len + 1);
    char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    /* both replacements keep the length */
    char *im = strstr(base, "images");
    if (!im)
        return -1;
    memcpy(im, "labels", 6);
    char *id = strstr(base, "idx3");
    if (id)
        memcpy(id, "idx1", 4);
    return 0;
}

static int open_idx(struct qdataset *d, const char *labels_path, qerr *err)
{
    int nd, lnd;
    int64_t dims[QT_MAX_DIMS], ldims[QT_MAX_DIMS];
    if (qidx_read(d->path, QDS_MAX_ELEMS, &d->inputs, &nd, dims, err) != 0)
        return -1;
    if (nd < 2)
        return qerr_set(err, "%s: IDX images need at least 2 dimensions (N, then each "
                        "sample's shape); this file has %d", d->path, nd);

    char derived[4096];
    if (!labels_path) {
        if (qdataset_idx_labels_path(d->path, derived, sizeof derived) != 0)
            return qerr_set(err, "%s: cannot derive the labels file name (no 'images' in the "
                            "name); give --labels FILE", d->path);
        if (access(derived, F_OK) != 0)
            return qerr_set(err, "%s: the labels file %s does not exist; give --labels FILE",
                            d->path, derived);
        labels_path = derived;
    }
    d->labels_path = strdup(labels_path);
    if (!d->labels_path)
        return qerr_set(err, "%s: out of memory", d->path);
    void *labels = NULL;
    if (idx_load(d->labels_path, QDS_MAX_ELEMS, IDX_LABELS, &labels, &lnd, ldims, err) != 0)
        return -1;
    d->labels = labels;
    if (lnd != 1)
        return qerr_set(err, "%s: IDX labels must have 1 dimension; this file has %d",
                        d->labels_path, lnd);
    if (ldims[0] != dims[0])
        return qerr_set(err, "%s: %lld labels for %lld images in %s", d->labels_path,
                        (long long)ldims[0], (long long)dims[0], d->path);
    d->n = dims[0];
    d->ndim = nd - 1;
    memcpy(d->shape, dims + 1, (size_t)(nd - 1) * sizeof dims[0]);
    return 0;
}

/* ---- safetensors datasets ------------------------------------------------ */

static int read_st_labels(struct qdataset *d, const struct qtensor *t, qerr *err)
{
    const uint8_t *p = t->data;
    size_t es = qdtype_info(t->dtype)->size;
    d->labels = malloc((t->numel > 0 ? (size_t)t->numel : 1) * sizeof *d->labels);
    if (!d->labels)
        return qerr_set(err, "%s: out of memory", d->path);
    for (int64_t i = 0; i < t->numel; i++, p += es) {
        uint64_t u = 0;
        for (size_t b = 0; b < es; b++)
            u |= (uint64_t)p[b] << (8 * b);
        int64_t v;
        if (t->dtype == QDT_U8)
            v = (int64_t)u;
        else if (t->dtype == QDT_I8)
            v = (int8_t)u;
        else if (t->dtype == QDT_I32)
            v = (int32_t)(uint32_t)u;
        else
            v = (int64_t)u;
        if (v < 0 || v > INT32_MAX)
            return qerr_set(err, "%s: labels[%lld] is %lld; labels must be in 0..%d", d->path,
                            (long long)i, (long long)v, INT32_MAX);
        d->labels[i] = (int32_t)v;
    }
    return 0;
}

static int open_st(struct qdataset *d, qerr *err)
{
    struct st_file *f = NULL;
    if (st_open(d->path, &f, err) != 0)
        return -1;
    int rc = -1;
    const struct qtensor *in = st_find(f, "inputs"), *lab = st_find(f, "labels");
    const char *missing = !in ? "inputs" : !lab ? "labels" : NULL;
    if (missing) {
        qerr_set(err, "%s: no tensor '%s' (a safetensors dataset holds 'inputs' [N, ...] and "
                 "'labels' [N])", d->path, missing);
        goto out;
    }
    char s1[256], s2[256];
    qshape_format(in->shape, in->ndim, s1, sizeof s1);
    qshape_format(lab->shape, lab->ndim, s2, sizeof s2);
    if (in->ndim < 1) {
        qerr_set(err, "%s: tensor 'inputs' has shape %s; it needs [N, ...]", d->path, s1);
        goto out;
    }
    if (lab->ndim != 1 || lab->shape[0] != in->shape[0]) {
        qerr_set(err, "%s: tensor 'labels' has shape %s; with inputs %s it must be [%lld]",
                 d->path, s2, s1, (long long)in->shape[0]);
        goto out;
    }
    if (lab->dtype != QDT_I64 && lab->dtype != QDT_I32 && lab->dtype != QDT_U8
        && lab->dtype != QDT_I8) {
        qerr_set(err, "%s: tensor 'labels' is %s; labels must be I64, I32, U8 or I8", d->path,
                 qdtype_info(lab->dtype)->name);
        goto out;
    }
    if (in->numel > QDS_MAX_ELEMS) {
        qerr_set(err, "%s: tensor 'inputs' has %lld elements, more than the limit of %lld",
                 d->path, (long long)in->numel, (long long)QDS_MAX_ELEMS);
        goto out;
    }
    if (read_st_labels(d, lab, err) != 0)
        goto out;
    d->inputs = malloc((in->numel > 0 ? (size_t)in->numel : 1) * sizeof *d->inputs);
    if (!d->inputs) {
        qerr_set(err, "%s: out of memory for %lld inputs", d->path, (long long)in->numel);
        goto out;
    }
    if (in->numel > 0)
        memcpy(d->inputs, in->f32, (size_t)in->numel * sizeof *d->inputs);
    d->n = in->shape[0];
    d->ndim = in->ndim - 1;
    memcpy(d->shape, in->shape + 1, (size_t)(in->ndim - 1) * sizeof in->shape[0]);
    rc = 0;
out:
    st_close(f);
    return rc;
}

/* ---- open and free ------------------------------------------------------- */

/* IDX when the file starts like one (gzip or 00 00 type) and is not named
 * .safetensors; everything else is tried as safetensors. */
static int looks_like_idx(const char *path)
{
    size_t len = strlen(path);
    if (len >= 12 && strcmp(path + len - 12, ".safetensors") == 0)
        return 0;
    uint8_t b[3] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 1; /* let the IDX reader name the open error */
    ssize_t got = read(fd, b, sizeof b);
    close(fd);
    if (got == (ssize_t)sizeof b && b[0] == 0x1f && b[1] == 0x8b)
        return 1;
    return got == (ssize_t)sizeof b && b[0] == 0 && b[1] == 0 && idx_type_find(b[2]);
}

static int hash_files(struct qdataset *d, qerr *err)
{
    struct sha256 s;
    uint8_t dig[32];
    sha256_init(&s);
    if (sha256_update_file(&s, d->path, err) != 0)
        return -1;
    if (d->labels_path && sha256_update_file(&s, d->labels_path, err) != 0)
        return -1;
    sha256_final(&s, dig);
    sha256_hex(dig, d->sha256);
    return 0;
}

int qdataset_open(const char *path, const char *labels_path, struct qdataset **out, qerr *err)
{
    *out = NULL;
    struct qdataset *d = calloc(1, sizeof *d);
    if (!d || !(d->path = strdup(path))) {
        free(d);
        return qerr_set(err, "%s: out of memory", path);
    }
    int rc;
    if (looks_like_idx(path)) {
        d->kind = "idx";
        rc = open_idx(d, labels_path, err);
    } else if (labels_path) {
        d->kind = "safetensors";
        rc = qerr_set(err, "%s: a safetensors dataset holds its own 'labels' tensor; do not "
                      "give a labels file (%s)", path, labels_path);
    } else {
        d->kind = "safetensors";
        rc = open_st(d, err);
    }
    if (rc == 0 && d->n == 0)
        rc = qerr_set(err, "%s: the dataset has no samples", path);
    if (rc == 0)
        rc = hash_files(d, err);
    if (rc != 0) {
        qdataset_free(d);
        return -1;
    }
    d->sample_numel = 1;
    for (int i = 0; i < d->ndim; i++)
        d->sample_numel *= d->shape[i];
    d->max_label = 0;
    for (int64_t i = 0; i < d->n; i++)
        if (d->labels[i] > d->max_label)
            d->max_label = d->labels[i];
    *out = d;
    return 0;
}

void qdataset_free(struct qdataset *d)
{
    if (!d)
        return;
    free(d->path);
    free(d->labels_path);
    free(d->inputs);
    free(d->labels);
    free(d);
}
