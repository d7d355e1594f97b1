/* gguf.c — reads GGUF v2/v3 files: maps them read-only and validates every count, length, type and offset before use. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sane maxima: far above any real model (a few hundred keys, a few
 * thousand tensors), far below what could exhaust memory. */
#define QGGUF_MAX_KV ((uint64_t)1 << 20)
#define QGGUF_MAX_TENSORS ((uint64_t)1 << 20)
#define QGGUF_MAX_KEY 65535       /* the specification's limit on key length */
#define QGGUF_MAX_NAME 64         /* ... and on tensor name length */
#define QGGUF_MAX_ALIGNMENT ((uint32_t)1 << 30)
/* Smallest encodings: a key-value pair (key length, 1-byte key, value
 * type, 1-byte value) and a tensor info (name length, 1-byte name,
 * n_dims, one dim, type, offset). Used to refuse counts the file cannot
 * hold before allocating anything. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_BYTES (8 + 1 + 4 + 8 + 4 + 8)

/* ---- value types ------------------------------------------------------------ */

static const char *const vtype_names[QGGUF_VTYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};

/* Bytes of one scalar of type t; 0 for string and array. */
static size_t vtype_size(uint32_t t)
{
    static const unsigned char sz[QGGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < QGGUF_VTYPE_COUNT ? sz[t] : 0;
}

static const char *vtype_name(uint32_t t)
{
    return t < QGGUF_VTYPE_COUNT ? vtype_names[t] : "unknown";
}

/* ---- little-endian loads (any alignment) ------------------------------------- */

static uint64_t ld_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- the cursor over the header ----------------------------------------------- */

struct cur {
    const uint8_t *base;
    size_t size;
    size_t pos;               /* next byte to read; pos <= size always */
    const char *path;
    qerr *err;
};

static size_t left(const struct cur *c)
{
    return c->size - c->pos;
}

/* "what": the object being read, for the message ("key 3 'general.name'"). */
static int need(struct cur *c, uint64_t n, const char *what)
{
    if (n > left(c))
        return qerr_set(c->err, "%s: truncated: %s needs %" PRIu64 " bytes at offset %zu, "
                        "%zu left", c->path, what, n, c->pos, left(c));
    return 0;
}

static int rd_u32(struct cur *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what) != 0)
        return -1;
    *v = (uint32_t)ld_le(c->base + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int rd_u64(struct cur *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what) != 0)
        return -1;
    *v = ld_le(c->base + c->pos, 8);
    c->pos += 8;
    return 0;
}

/* A string: u64 length then bytes, checked against the bytes left. */
static int rd_str(struct cur *c, struct qgguf_str *s, const char *what)
{
    uint64_t len;
    if (rd_u64(c, &len, what) != 0)
        return -1;
    if (len > left(c))
        return qerr_set(c->err, "%s: %s: string length %" PRIu64 " runs past the end of the "
                        "file (%zu bytes left)", c->path, what, len, left(c));
    s->s = (const char *)(c->base + c->pos);
    s->len = len;
    c->pos += (size_t)len;
    return 0;
}

/* A name (key or tensor name) as a C string: no NUL inside, 1..max bytes. */
static int rd_name(struct cur *c, size_t max, char **out, const char *what)
{
    struct qgguf_str s;
    if (rd_str(c, &s, what) != 0)
        return -1;
    if (s.len == 0)
        return qerr_set(c->err, "%s: %s is empty", c->path, what);
    if (s.len > max)
        return qerr_set(c->err, "%s: %s is %" PRIu64 " bytes long (at most %zu)", c->path, what,
                        s.len, max);
    /* names go into one-line messages and C strings: no control bytes */
    for (uint64_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.s[i];
        if (ch < 0x20 || ch == 0x7f)
            return qerr_set(c->err, "%s: %s contains control byte 0x%02x at position %" PRIu64,
                            c->path, what, ch, i);
    }
    char *p = malloc((size_t)s.len + 1);
    if (!p)
        return qerr_set(c->err, "%s: out of memory", c->path);
    memcpy(p, s.s, (size_t)s.len);
    p[s.len] = 0;
    *out = p;
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------------- */

void qgguf_close(struct qgguf *g)
{
    if (!g)
        return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            if (g->kv[i].v.type == QGGUF_ARRAY)
                free(g->kv[i].v.arr.strs);
        }
    free(g->kv);
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++)
            free(g->tensors[i].name);
    free(g->tensors);
    if (g->map)
        munmap(g->map, g->size);
    free(g->path);
    free(g);
}

void qgguf_take_map(struct qgguf *g, void **map, size_t *size)
{
    *map = g->map;
    *size = g->size;
    g->map = NULL;
}

/* ---- metadata ------------------------------------------------------------------ */

/* One scalar of type t at the cursor into v. */
static int rd_scalar(struct cur *c, uint32_t t, struct qgguf_value *v, const char *what)
{
    size_t n = vtype_size(t);
    if (need(c, n, what) != 0)
        return -1;
    uint64_t raw = ld_le(c->base + c->pos, n);
    c->pos += n;
    switch (t) {
    case QGGUF_UINT8: case QGGUF_UINT16: case QGGUF_UINT32: case QGGUF_UINT64:
        v->u = raw;
        break;
    case QGGUF_INT8: v->i = (int8_t)raw; break;
    case QGGUF_INT16: v->i = (int16_t)raw; break;
    case QGGUF_INT32: v->i = (int32_t)raw; break;
    case QGGUF_INT64: v->i = (int64_t)raw; break;
    case QGGUF_BOOL:
        if (raw > 1)
            return qerr_set(c->err, "%s: %s: bool value %" PRIu64 " (must be 0 or 1)", c->path,
                            what, raw);
        v->u = raw;
        break;
    case QGGUF_FLOAT32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, sizeof f);
        v->f = f;
        break;
    }
    case QGGUF_FLOAT64: {
        double d;
        memcpy(&d, &raw, sizeof d);
        v->f = d;
        break;
    }
    default:
        return qerr_set(c->err, "%s: %s: value type %u is not a scalar", c->path, what, t);
    }
    return 0;
}

static int rd_array(struct cur *c, struct qgguf_value *v, const char *what)
{
    uint32_t et;
    uint64_t n;
    if (rd_u32(c, &et, what) != 0 || rd_u64(c, &n, what) != 0)
        return -1;
    if (et == QGGUF_ARRAY)
        return qerr_set(c->err, "%s: %s: arrays of arrays are not supported", c->path, what);
    if (et >= QGGUF_VTYPE_COUNT)
        return qerr_set(c->err, "%s: %s: unknown array element type %u", c->path, what, et);
    v->arr.type = et;
    v->arr.n = n;
    v->arr.data = c->base + c->pos;
    if (et != QGGUF_STRING) {
        size_t es = vtype_size(et);
        if (n > left(c) / es)
            return qerr_set(c->err, "%s: %s: array of %" PRIu64 " %s runs past the end of the "
                            "file (%zu bytes left)", c->path, what, n, vtype_name(et), left(c));
        if (et == QGGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (c->base[c->pos + i] > 1)
                    return qerr_set(c->err, "%s: %s: element %" PRIu64 " is bool value %u "
                                    "(must be 0 or 1)", c->path, what, i, c->base[c->pos + i]);
        c->pos += (size_t)(n * es);
        return 0;
    }
    /* every string takes at least its 8-byte length */
    if (n > left(c) / 8)
        return qerr_set(c->err, "%s: %s: array of %" PRIu64 " strings runs past the end of the "
                        "file (%zu bytes left)", c->path, what, n, left(c));
    v->arr.strs = malloc((size_t)(n ? n : 1) * sizeof *v->arr.strs);
    if (!v->arr.strs)
        return qerr_set(c->err, "%s: %s: out of memory for %" PRIu64 " strings", c->path, what, n);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = left(c) >= 8 ? ld_le(c->base + c->pos, 8) : UINT64_MAX;
        if (left(c) < 8 || len > left(c) - 8)
            return qerr_set(c->err, "%s: %s: string %" PRIu64 " of %" PRIu64 " runs past the "
                            "end of the file", c->path, what, i, n);
        v->arr.strs[i] = (struct qgguf_str){(const char *)(c->base + c->pos + 8), len};
        c->pos += 8 + (size_t)len;
    }
    return 0;
}

static int rd_kv(struct cur *c, uint64_t i, struct qgguf_kv *kv)
{
    char what[400];
    snprintf(what, sizeof what, "key %" PRIu64, i);
    if (rd_name(c, QGGUF_MAX_KEY, &kv->key, what) != 0)
        return -1;
    snprintf(what, sizeof what, "key '%.300s'", kv->key);
    uint32_t t;
    if (rd_u32(c, &t, what) != 0)
        return -1;
    if (t >= QGGUF_VTYPE_COUNT)
        return qerr_set(c->err, "%s: %s: unknown value type %u", c->path, what, t);
    kv->v.type = t;
    if (t == QGGUF_STRING)
        return rd_str(c, &kv->v.str, what);
    if (t == QGGUF_ARRAY)
        return rd_array(c, &kv->v, what);
    return rd_scalar(c, t, &kv->v, what);
}

/* ---- uniqueness (sorting, so a million names cost n log n, not n^2) ------------- */

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first name that occurs twice, or NULL (also NULL when out of memory:
 * *oom is set then). */
static const char *find_duplicate(char **names, uint64_t n, int *oom)
{
    *oom = 0;
    if (n < 2)
        return NULL;
    char **s = malloc((size_t)n * sizeof *s);
    if (!s) {
        *oom = 1;
        return NULL;
    }
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_strp);
    const char *dup = NULL;
    for (uint64_t i = 1; i < n && !dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            dup = s[i];
    free(s);
    return dup;
}

/* ---- tensor infos --------------------------------------------------------------- */

static int rd_tensor(struct cur *c, uint64_t i, struct qgguf_tensor *t)
{
    char what[200];
    snprintf(what, sizeof what, "tensor %" PRIu64 "'s name", i);
    if (rd_name(c, QGGUF_MAX_NAME, &t->name, what) != 0)
        return -1;
    snprintf(what, sizeof what, "tensor '%s'", t->name);
    if (rd_u32(c, &t->n_dims, what) != 0)
        return -1;
    if (t->n_dims < 1 || t->n_dims > 4)
        return qerr_set(c->err, "%s: %s has %u dimensions (1 to 4 allowed)", c->path, what,
                        t->n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < 4; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && rd_u64(c, &t->ne[d], what) != 0)
            return -1;
        if (t->ne[d] == 0)
            return qerr_set(c->err, "%s: %s: dimension %u is 0", c->path, what, d);
        if (t->ne[d] > (uint64_t)INT64_MAX / numel)
            return qerr_set(c->err, "%s: %s: the dimensions' product overflows", c->path, what);
        numel *= t->ne[d];
    }
    if (rd_u32(c, &t->type, what) != 0)
        return -1;
    const struct qggml_type *ty = qggml_type(t->type);
    if (!ty)
        return qerr_set(c->err, "%s: %s has unknown ggml type %u", c->path, what, t->type);
    if (t->ne[0] % (uint64_t)ty->block != 0)
        return qerr_set(c->err, "%s: %s is %s with rows of %" PRIu64 " values, not a multiple "
                        "of its block size %d", c->path, what, ty->name, t->ne[0], ty->block);
    /* numel < 2^63 and bytes <= 2 * block below, so only the product can overflow */
    uint64_t blocks = numel / (uint64_t)ty->block;
    if (blocks > (uint64_t)INT64_MAX / (uint64_t)ty->bytes)
        return qerr_set(c->err, "%s: %s: its byte size overflows", c->path, what);
    t->nbytes = blocks * (uint64_t)ty->bytes;
    return rd_u64(c, &t->offset, what);
}

struct span {
    uint64_t off, end;
    uint64_t idx;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Offsets aligned, data inside the data section, no two tensors sharing bytes. */
static int check_layout(struct qgguf *g, qerr *err)
{
    uint64_t n = g->n_tensors;
    for (uint64_t i = 0; i < n; i++) {
        struct qgguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment != 0)
            return qerr_set(err, "%s: tensor '%s': offset %" PRIu64 " is not a multiple of the "
                            "alignment %u", g->path, t->name, t->offset, g->alignment);
        if (t->offset > g->data_size || t->nbytes > g->data_size - t->offset)
            return qerr_set(err, "%s: tensor '%s': %" PRIu64 " bytes at offset %" PRIu64
                            " run past the end of the data section (%" PRIu64 " bytes)",
                            g->path, t->name, t->nbytes, t->offset, g->data_size);
        t->data = g->data + t->offset;
    }
    if (n < 2)
        return 0;
    struct span *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return qerr_set(err, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < n; i++)
        s[i] = (struct span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].nbytes, i};
    qsort(s, (size_t)n, sizeof *s, cmp_span);
    int rc = 0;
    for (uint64_t i = 1; i < n && rc == 0; i++)
        if (s[i].off < s[i - 1].end)
            rc = qerr_set(err, "%s: tensors '%s' (bytes %" PRIu64 "..%" PRIu64 ") and '%s' "
                          "(from byte %" PRIu64 ") overlap", g->path,
                          g->tensors[s[i - 1].idx].name, s[i - 1].off, s[i - 1].end,
                          g->tensors[s[i].idx].name, s[i].off);
    free(s);
    return rc;
}

/* ---- the file --------------------------------------------------------------------- */

static int map_file(struct qgguf *g, qerr *err)
{
    int fd = open(g->path, O_RDONLY);
    if (fd < 0)
        return qerr_set(err, "%s: %s", g->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qerr_set(err, "%s: %s", g->path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return qerr_set(err, "%s: not a regular file", g->path);
    }
    if (st.st_size == 0) {
        close(fd);
        return qerr_set(err, "%s: the file is empty", g->path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return qerr_set(err, "%s: too large to map", g->path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return qerr_set(err, "%s: mmap: %s", g->path, strerror(e));
    g->map = p;
    g->size = (size_t)st.st_size;
    return 0;
}

static int parse_header(struct qgguf *g, struct cur *c)
{
    qerr *err = c->err;
    if (need(c, 4, "the magic") != 0)
        return -1;
    if (memcmp(c->base, "GGUF", 4) != 0)
        return qerr_set(err, "%s: not a GGUF file (magic bytes %02x %02x %02x %02x, expected "
                        "\"GGUF\")", g->path, c->base[0], c->base[1], c->base[2], c->base[3]);
    c->pos = 4;
    uint64_t n_tensors, n_kv;
    if (rd_u32(c, &g->version, "the version") != 0)
        return -1;
    if (g->version == 1)
        return qerr_set(err, "%s: GGUF version 1 is not supported (only versions 2 and 3; "
                        "convert the file with a newer llama.cpp)", g->path);
    if (g->version != 2 && g->version != 3) {
        if (g->version != 0 && (g->version & 0xFFFF) == 0)
            return qerr_set(err, "%s: GGUF version %u looks byte-swapped: big-endian GGUF "
                            "files are not supported", g->path, g->version);
        return qerr_set(err, "%s: GGUF version %u is not supported (only versions 2 and 3)",
                        g->path, g->version);
    }
    if (rd_u64(c, &n_tensors, "the tensor count") != 0 || rd_u64(c, &n_kv, "the key count") != 0)
        return -1;
    if (n_kv > QGGUF_MAX_KV || n_kv > left(c) / MIN_KV_BYTES)
        return qerr_set(err, "%s: %" PRIu64 " metadata keys cannot fit in the %zu bytes left "
                        "(limit %" PRIu64 ")", g->path, n_kv, left(c), QGGUF_MAX_KV);
    if (n_tensors > QGGUF_MAX_TENSORS ||
        n_tensors > (left(c) - n_kv * MIN_KV_BYTES) / MIN_TENSOR_BYTES)
        return qerr_set(err, "%s: %" PRIu64 " tensors cannot fit in the %zu bytes left (limit %"
                        PRIu64 ")", g->path, n_tensors, left(c), QGGUF_MAX_TENSORS);
    g->kv = calloc((size_t)(n_kv ? n_kv : 1), sizeof *g->kv);
    g->tensors = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *g->tensors);
    if (!g->kv || !g->tensors)
        return qerr_set(err, "%s: out of memory", g->path);
    g->n_kv = n_kv;
    g->n_tensors = n_tensors;
    return 0;
}

static int parse_alignment(struct qgguf *g, qerr *err)
{
    g->alignment = 32;
    const struct qgguf_kv *kv = qgguf_find(g, "general.alignment");
    if (!kv)
        return 0;
    if (kv->v.type != QGGUF_UINT32)
        return qerr_set(err, "%s: key 'general.alignment' has type %s; it must be a uint32",
                        g->path, vtype_name(kv->v.type));
    uint64_t a = kv->v.u;
    if (a == 0 || (a & (a - 1)) != 0 || a > QGGUF_MAX_ALIGNMENT)
        return qerr_set(err, "%s: key 'general.alignment' is %" PRIu64 "; it must be a power of "
                        "two (at most %u)", g->path, a, QGGUF_MAX_ALIGNMENT);
    g->alignment = (uint32_t)a;
    return 0;
}

static int parse(struct qgguf *g, qerr *err)
{
    struct cur c = {.base = g->map, .size = g->size, .pos = 0, .path = g->path, .err = err};
    if (parse_header(g, &c) != 0)
        return -1;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (rd_kv(&c, i, &g->kv[i]) != 0)
            return -1;
    int oom;
    char **keys = malloc((size_t)(g->n_kv ? g->n_kv : 1) * sizeof *keys);
    if (!keys)
        return qerr_set(err, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_kv; i++)
        keys[i] = g->kv[i].key;
    const char *dup = find_duplicate(keys, g->n_kv, &oom);
    int rc = dup ? qerr_set(err, "%s: key '%.300s' appears twice", g->path, dup)
           : oom ? qerr_set(err, "%s: out of memory", g->path) : 0;
    free(keys);
    if (rc != 0 || parse_alignment(g, err) != 0)
        return -1;

    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (rd_tensor(&c, i, &g->tensors[i]) != 0)
            return -1;
    char **names = malloc((size_t)(g->n_tensors ? g->n_tensors : 1) * sizeof *names);
    if (!names)
        return qerr_set(err, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < g->n_tensors; i++)
        names[i] = g->tensors[i].name;
    dup = find_duplicate(names, g->n_tensors, &oom);
    rc = dup ? qerr_set(err, "%s: tensor '%s' appears twice", g->path, dup)
       : oom ? qerr_set(err, "%s: out of memory", g->path) : 0;
    free(names);
    if (rc != 0)
        return -1;

    /* the data section starts at the next multiple of the alignment; a file
     * without tensors may end before it */
    uint64_t start = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
    if (start > g->size) {
        if (g->n_tensors > 0)
            return qerr_set(err, "%s: truncated: the data section would start at byte %" PRIu64
                            " of %zu", g->path, start, g->size);
        start = g->size;
    }
    g->data = (const uint8_t *)g->map + start;
    g->data_size = g->size - start;
    return check_layout(g, err);
}

int qgguf_open(const char *path, struct qgguf **out, qerr *err)
{
    *out = NULL;
    struct qgguf *g = calloc(1, sizeof *g);
    if (!g)
        return qerr_set(err, "%s: out of memory", path);
    g->path = strdup(path);
    if (!g->path) {
        free(g);
        return qerr_set(err, "%s: out of memory", path);
    }
    if (map_file(g, err) != 0 || parse(g, err) != 0) {
        qgguf_close(g);
        return -1;
    }
    *out = g;
    return 0;
}

/* ---- lookups ----------------------------------------------------------------------- */

const struct qgguf_kv *qgguf_find(const struct qgguf *g, const char *key)
{
    if (!g || !key || !g->kv)
        return NULL;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0)
            return &g->kv[i];
    return NULL;
}

const struct qgguf_tensor *qgguf_find_tensor(const struct qgguf *g, const char *name)
{
    if (!g || !name || !g->tensors)
        return NULL;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name && strcmp(g->tensors[i].name, name) == 0)
            return &g->tensors[i];
    return NULL;
}

static const struct qgguf_kv *find_or_err(const struct qgguf *g, const char *key, qerr *err)
{
    const struct qgguf_kv *kv = qgguf_find(g, key);
    if (!kv)
        qerr_set(err, "%s: key '%s' is missing", g ? g->path : "gguf", key);
    return kv;
}

static int is_unsigned(enum qgguf_vtype t)
{
    return t == QGGUF_UINT8 || t == QGGUF_UINT16 || t == QGGUF_UINT32 || t == QGGUF_UINT64;
}

static int is_signed(enum qgguf_vtype t)
{
    return t == QGGUF_INT8 || t == QGGUF_INT16 || t == QGGUF_INT32 || t == QGGUF_INT64;
}

int qgguf_get_u64(const struct qgguf *g, const char *key, uint64_t *v, qerr *err)
{
    const struct qgguf_kv *kv = find_or_err(g, key, err);
    if (!kv)
        return -1;
    if (is_unsigned(kv->v.type)) {
        *v = kv->v.u;
        return 0;
    }
    if (is_signed(kv->v.type)) {
        if (kv->v.i < 0)
            return qerr_set(err, "%s: key '%s' is %" PRId64 "; expected a non-negative integer",
                            g->path, key, kv->v.i);
        *v = (uint64_t)kv->v.i;
        return 0;
    }
    return qerr_set(err, "%s: key '%s' has type %s; expected an integer", g->path, key,
                    vtype_name(kv->v.type));
}

int qgguf_get_f64(const struct qgguf *g, const char *key, double *v, qerr *err)
{
    const struct qgguf_kv *kv = find_or_err(g, key, err);
    if (!kv)
        return -1;
    if (kv->v.type == QGGUF_FLOAT32 || kv->v.type == QGGUF_FLOAT64)
        *v = kv->v.f;
    else if (is_unsigned(kv->v.type))
        *v = (double)kv->v.u;
    else if (is_signed(kv->v.type))
        *v = (double)kv->v.i;
    else
        return qerr_set(err, "%s: key '%s' has type %s; expected a number", g->path, key,
                        vtype_name(kv->v.type));
    return 0;
}

int qgguf_get_str(const struct qgguf *g, const char *key, struct qgguf_str *v, qerr *err)
{
    const struct qgguf_kv *kv = find_or_err(g, key, err);
    if (!kv)
        return -1;
    if (kv->v.type != QGGUF_STRING)
        return qerr_set(err, "%s: key '%s' has type %s; expected a string", g->path, key,
                        vtype_name(kv->v.type));
    *v = kv->v.str;
    return 0;
}
