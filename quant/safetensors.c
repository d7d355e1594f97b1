/* safetensors.c — read (mmap, every field validated before use) and write safetensors files. */
#include "safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is not a model header but an attack or an accident. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* Integers above 2^53 do not survive cJSON's doubles exactly. */
#define ST_MAX_JSON_INT 9007199254740992.0

/* One header entry while it is being validated. */
struct entry {
    const char *name;             /* points into the cJSON tree */
    enum qdtype dtype;
    int ndim;
    int64_t shape[QT_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;          /* bytes, relative to the data section */
};

/* ---- small helpers ------------------------------------------------------ */

static const char *json_kind(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsNull(v))
        return "null";
    return "not valid JSON";
}

/* A JSON number that is an integer a double holds exactly. */
static int json_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= -ST_MAX_JSON_INT && d <= ST_MAX_JSON_INT) || d != (double)(int64_t)d)
        return -1;
    *out = (int64_t)d;
    return 0;
}

/* a * b into *out; -1 on overflow. Both are >= 0. */
static int mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

static void known_dtypes(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (int t = 0; t < QDT_COUNT && used < size; t++) {
        int k = snprintf(buf + used, size - used, "%s%s", t ? ", " : "", qdtype_info(t)->name);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns a name that occurs twice among names[0..n), or NULL. Sorting
 * keeps this O(n log n) for headers with very many entries. */
static const char *find_duplicate(const char **names, int n, int *oom)
{
    *oom = 0;
    if (n < 2)
        return NULL;
    const char **s = malloc((size_t)n * sizeof *s);
    if (!s) {
        *oom = 1;
        return NULL;
    }
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            dup = s[i];
    free(s);
    return dup;
}

static int cmp_entry_offset(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---- header entries ----------------------------------------------------- */

static int parse_dtype(const char *path, const char *name, const cJSON *v, struct entry *e,
                       qerr *err)
{
    if (!cJSON_IsString(v))
        return qerr_set(err, "%s: tensor '%s': dtype is %s, not a string", path, name,
                        json_kind(v));
    int t = qdtype_from_name(v->valuestring);
    if (t < 0) {
        char known[128];
        known_dtypes(known, sizeof known);
        return qerr_set(err, "%s: tensor '%s': unknown dtype '%s' (known: %s)", path, name,
                        v->valuestring, known);
    }
    e->dtype = (enum qdtype)t;
    return 0;
}

static int parse_shape(const char *path, const char *name, const cJSON *v, struct entry *e,
                       qerr *err)
{
    if (!cJSON_IsArray(v))
        return qerr_set(err, "%s: tensor '%s': shape is %s, not an array", path, name,
                        json_kind(v));
    int n = cJSON_GetArraySize(v);
    if (n > QT_MAX_DIMS)
        return qerr_set(err, "%s: tensor '%s': shape has %d dimensions, at most %d are supported",
                        path, name, n, QT_MAX_DIMS);
    uint64_t numel = 1;
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, v) {
        int64_t x;
        if (json_int(d, &x) != 0)
            return qerr_set(err, "%s: tensor '%s': shape[%d] is not an integer", path, name, i);
        if (x < 0)
            return qerr_set(err, "%s: tensor '%s': shape[%d] is %lld, a negative dimension",
                            path, name, i, (long long)x);
        e->shape[i++] = x;
    }
    e->ndim = n;
    for (i = 0; i < n; i++) {
        if (mul_u64(numel, (uint64_t)e->shape[i], &numel) != 0 || numel > INT64_MAX) {
            char s[256];
            qshape_format(e->shape, n, s, sizeof s);
            return qerr_set(err, "%s: tensor '%s': shape %s has too many elements "
                            "(the product overflows 64 bits)", path, name, s);
        }
    }
    e->numel = (int64_t)numel;
    return 0;
}

static int parse_offsets(const char *path, const char *name, const cJSON *v, struct entry *e,
                         qerr *err)
{
    int64_t b, x;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return qerr_set(err, "%s: tensor '%s': data_offsets must be an array of 2 integers",
                        path, name);
    if (json_int(cJSON_GetArrayItem(v, 0), &b) != 0 || json_int(cJSON_GetArrayItem(v, 1), &x) != 0)
        return qerr_set(err, "%s: tensor '%s': data_offsets must be an array of 2 integers",
                        path, name);
    if (b < 0 || x < 0)
        return qerr_set(err, "%s: tensor '%s': data_offsets [%lld, %lld] are negative", path,
                        name, (long long)b, (long long)x);
    e->begin = (uint64_t)b;
    e->end = (uint64_t)x;
    return 0;
}

/* Checks one tensor entry: exactly dtype, shape and data_offsets, sizes agreeing. */
static int parse_entry(const char *path, const cJSON *item, uint64_t data_size, struct entry *e,
                       qerr *err)
{
    const char *name = item->string;
    e->name = name;
    if (!cJSON_IsObject(item))
        return qerr_set(err, "%s: tensor '%s': entry is %s, not an object", path, name,
                        json_kind(item));
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL, *f;
    cJSON_ArrayForEach(f, item) {
        const cJSON **slot = NULL;
        if (strcmp(f->string, "dtype") == 0)
            slot = &dtype;
        else if (strcmp(f->string, "shape") == 0)
            slot = &shape;
        else if (strcmp(f->string, "data_offsets") == 0)
            slot = &offs;
        else
            return qerr_set(err, "%s: tensor '%s': unknown field '%s'", path, name, f->string);
        if (*slot)
            return qerr_set(err, "%s: tensor '%s': field '%s' appears twice", path, name,
                            f->string);
        *slot = f;
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offs ? "data_offsets" : NULL;
    if (missing)
        return qerr_set(err, "%s: tensor '%s': missing field '%s'", path, name, missing);
    if (parse_dtype(path, name, dtype, e, err) || parse_shape(path, name, shape, e, err)
        || parse_offsets(path, name, offs, e, err))
        return -1;

    if (e->begin > e->end)
        return qerr_set(err, "%s: tensor '%s': data_offsets [%llu, %llu]: begin is after end",
                        path, name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_size)
        return qerr_set(err, "%s: tensor '%s': data_offsets [%llu, %llu] end past the %llu-byte "
                        "data section", path, name, (unsigned long long)e->begin,
                        (unsigned long long)e->end, (unsigned long long)data_size);
    uint64_t need;
    char s[256];
    qshape_format(e->shape, e->ndim, s, sizeof s);
    if (mul_u64((uint64_t)e->numel, qdtype_info(e->dtype)->size, &need) != 0)
        return qerr_set(err, "%s: tensor '%s': shape %s x %s is too many bytes", path, name, s,
                        qdtype_info(e->dtype)->name);
    if (e->end - e->begin != need)
        return qerr_set(err, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes, "
                        "shape %s x %s needs %llu", path, name, (unsigned long long)e->begin,
                        (unsigned long long)e->end, (unsigned long long)(e->end - e->begin), s,
                        qdtype_info(e->dtype)->name, (unsigned long long)need);
    return 0;
}

static int parse_meta(const char *path, const cJSON *item, struct st_file *f, qerr *err)
{
    if (!cJSON_IsObject(item))
        return qerr_set(err, "%s: __metadata__ is %s, not an object of strings", path,
                        json_kind(item));
    int n = cJSON_GetArraySize(item);
    f->meta = calloc(n ? (size_t)n : 1, sizeof *f->meta);
    if (!f->meta)
        return qerr_set(err, "%s: out of memory", path);
    const cJSON *m;
    cJSON_ArrayForEach(m, item) {
        if (!cJSON_IsString(m))
            return qerr_set(err, "%s: __metadata__ '%s' is %s, not a string", path, m->string,
                            json_kind(m));
        struct st_meta *s = &f->meta[f->n_meta];
        s->key = strdup(m->string);
        s->value = strdup(m->valuestring);
        f->n_meta++;
        if (!s->key || !s->value)
            return qerr_set(err, "%s: out of memory", path);
    }
    const char **keys = malloc((n ? (size_t)n : 1) * sizeof *keys);
    if (!keys)
        return qerr_set(err, "%s: out of memory", path);
    for (int i = 0; i < f->n_meta; i++)
        keys[i] = f->meta[i].key;
    int oom;
    const char *dup = find_duplicate(keys, f->n_meta, &oom);
    int rc = 0;
    if (oom)
        rc = qerr_set(err, "%s: out of memory", path);
    else if (dup)
        rc = qerr_set(err, "%s: __metadata__ key '%s' appears twice", path, dup);
    free(keys);
    return rc;
}

/* ---- the header as a whole ---------------------------------------------- */

/* Validates every entry of the parsed header and fills f->tensors and f->meta. */
static int load_header(struct st_file *f, const cJSON *root, qerr *err)
{
    const char *path = f->path;
    int n_items = cJSON_GetArraySize(root);
    struct entry *es = calloc(n_items ? (size_t)n_items : 1, sizeof *es);
    const char **names = malloc((n_items ? (size_t)n_items : 1) * sizeof *names);
    int rc = -1, n = 0, n_meta_objs = 0;
    if (!es || !names) {
        qerr_set(err, "%s: out of memory", path);
        goto out;
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (n_meta_objs++) {
                qerr_set(err, "%s: __metadata__ appears twice", path);
                goto out;
            }
            if (parse_meta(path, item, f, err) != 0)
                goto out;
            continue;
        }
        if (parse_entry(path, item, f->data_size, &es[n], err) != 0)
            goto out;
        names[n] = es[n].name;
        n++;
    }
    int oom;
    const char *dup = find_duplicate(names, n, &oom);
    if (oom || dup) {
        if (oom)
            qerr_set(err, "%s: out of memory", path);
        else
            qerr_set(err, "%s: tensor '%s' appears twice in the header", path, dup);
        goto out;
    }

    /* sorted by offset, a tensor overlaps an earlier one exactly when it
     * begins before the furthest end seen so far; empty ranges hold no bytes */
    qsort(es, (size_t)n, sizeof *es, cmp_entry_offset);
    const struct entry *far = NULL;
    for (int i = 0; i < n; i++) {
        if (es[i].begin == es[i].end)
            continue;
        if (far && es[i].begin < far->end) {
            qerr_set(err, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' "
                     "[%llu, %llu]", path, es[i].name, (unsigned long long)es[i].begin,
                     (unsigned long long)es[i].end, far->name, (unsigned long long)far->begin,
                     (unsigned long long)far->end);
            goto out;
        }
        if (!far || es[i].end > far->end)
            far = &es[i];
    }

    f->tensors = calloc(n ? (size_t)n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        qerr_set(err, "%s: out of memory", path);
        goto out;
    }
    f->n_tensors = n;
    for (int i = 0; i < n; i++) {
        struct qtensor *t = &f->tensors[i];
        t->name = strdup(es[i].name);
        if (!t->name) {
            qerr_set(err, "%s: out of memory", path);
            goto out;
        }
        t->dtype = es[i].dtype;
        t->ndim = es[i].ndim;
        memcpy(t->shape, es[i].shape, sizeof t->shape);
        t->numel = es[i].numel;
        t->data = f->data + es[i].begin;
        t->nbytes = (size_t)(es[i].end - es[i].begin);
        if (qtensor_make_f32(t, err) != 0) {
            qerr_prefix(err, "%s", path);
            goto out;
        }
    }
    rc = 0;
out:
    free(es);
    free(names);
    return rc;
}

/* Parses the N header bytes that follow the length field. */
static int parse_header(struct st_file *f, uint64_t n, qerr *err)
{
    const char *path = f->path;
    /* a NUL-terminated private copy: cJSON never reads past it */
    char *text = malloc((size_t)n + 1);
    if (!text)
        return qerr_set(err, "%s: out of memory for a %llu-byte header", path,
                        (unsigned long long)n);
    memcpy(text, (const uint8_t *)f->map + 8, (size_t)n);
    text[n] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    int rc = -1;
    if (!root) {
        size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        qerr_set(err, "%s: header is not valid JSON (error near byte %zu of %llu)", path, at,
                 (unsigned long long)n);
        goto out;
    }
    for (const char *p = end; p < text + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            qerr_set(err, "%s: header is not valid JSON (unexpected bytes after the object at "
                     "byte %zu of %llu)", path, (size_t)(p - text), (unsigned long long)n);
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        qerr_set(err, "%s: header is %s, not a JSON object", path, json_kind(root));
        goto out;
    }
    rc = load_header(f, root, err);
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ---- open and close ----------------------------------------------------- */

/* Maps the file read-only; checks it is a regular file of at least 8 bytes. */
static int map_file(struct st_file *f, qerr *err)
{
    const char *path = f->path;
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return qerr_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) != 0) {
        qerr_set(err, "%s: cannot stat: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        qerr_set(err, "%s: not a regular file", path);
    } else if (st.st_size < 8) {
        qerr_set(err, "%s: file is %lld bytes, shorter than the 8-byte header length field",
                 path, (long long)st.st_size);
    } else if ((uint64_t)st.st_size > SIZE_MAX) {
        qerr_set(err, "%s: file of %lld bytes is too large to map", path,
                 (long long)st.st_size);
    } else {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            qerr_set(err, "%s: cannot map %lld bytes: %s", path, (long long)st.st_size,
                     strerror(errno));
        } else {
            f->map = m;
            f->map_size = (size_t)st.st_size;
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

int st_open(const char *path, struct st_file **out, qerr *err)
{
    *out = NULL;
    struct st_file *f = calloc(1, sizeof *f);
    if (!f)
        return qerr_set(err, "%s: out of memory", path);
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return qerr_set(err, "%s: out of memory", path);
    }
    if (map_file(f, err) != 0)
        goto fail;
    const uint8_t *p = f->map;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n |= (uint64_t)p[i] << (8 * i);
    uint64_t room = (uint64_t)f->map_size - 8;
    if (n == 0) {
        qerr_set(err, "%s: header length is 0", path);
        goto fail;
    }
    if (n > room) {
        qerr_set(err, "%s: header length %llu is larger than the %llu bytes that follow it "
                 "(file truncated or not safetensors)", path, (unsigned long long)n,
                 (unsigned long long)room);
        goto fail;
    }
    if (n > ST_MAX_HEADER) {
        qerr_set(err, "%s: header length %llu exceeds the limit of %llu bytes (100 MiB)", path,
                 (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);
        goto fail;
    }
    f->data = p + 8 + n;
    f->data_size = (size_t)(room - n);
    if (parse_header(f, n, err) != 0)
        goto fail;
    *out = f;
    return 0;
fail:
    st_close(f);
    return -1;
}

void st_close(struct st_file *f)
{
    if (!f)
        return;
    if (f->tensors)
        for (int i = 0; i < f->n_tensors; i++)
            qtensor_clear(&f->tensors[i]);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta[i].key);
        free(f->meta[i].value);
    }
    free(f->meta);
    if (f->map)
        munmap(f->map, f->map_size);
    free(f->path);
    free(f);
}

struct qtensor *st_find(const struct st_file *f, const char *name)
{
    if (!f || !name)
        return NULL;
    for (int i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].name && strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *st_meta_get(const struct st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

/* ---- writing ------------------------------------------------------------ */

struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_u64(struct sbuf *b, uint64_t v)
{
    char t[32];
    int k = snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    sb_put(b, t, (size_t)k);
}

/* A JSON string literal; bytes >= 0x80 pass through (UTF-8 is the caller's). */
static void sb_json_string(struct sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int write_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Checks the tensors and meta and builds the padded header; sizes[i] gets
 * each tensor's byte count. */
static int build_header(const char *path, const struct st_write_tensor *ts, int n,
                        const struct st_meta *meta, int n_meta, uint64_t *sizes,
                        struct sbuf *b, qerr *err)
{
    int oom;
    const char **names = malloc((size_t)(n > n_meta ? n : n_meta) * sizeof *names + 1);
    if (!names)
        return qerr_set(err, "%s: out of memory", path);
    for (int i = 0; i < n_meta; i++)
        names[i] = meta[i].key;
    const char *dup = find_duplicate(names, n_meta, &oom);
    if (dup || oom) {
        free(names);
        return dup ? qerr_set(err, "%s: metadata key '%s' given twice", path, dup)
                   : qerr_set(err, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++)
        names[i] = ts[i].name;
    dup = find_duplicate(names, n, &oom);
    free(names);
    if (dup || oom)
        return dup ? qerr_set(err, "%s: tensor name '%s' given twice", path, dup)
                   : qerr_set(err, "%s: out of memory", path);

    sb_str(b, "{");
    if (n_meta > 0) {
        sb_str(b, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                sb_str(b, ",");
            sb_json_string(b, meta[i].key);
            sb_str(b, ":");
            sb_json_string(b, meta[i].value);
        }
        sb_str(b, "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const struct st_write_tensor *t = &ts[i];
        const struct qdtype_info *info = qdtype_info(t->dtype);
        if (strcmp(t->name, "__metadata__") == 0)
            return qerr_set(err, "%s: '__metadata__' cannot name a tensor", path);
        if (!info)
            return qerr_set(err, "%s: tensor '%s': unknown dtype id %d", path, t->name,
                            (int)t->dtype);
        if (t->ndim < 0 || t->ndim > QT_MAX_DIMS || (t->ndim > 0 && !t->shape))
            return qerr_set(err, "%s: tensor '%s': %d dimensions (0..%d allowed)", path,
                            t->name, t->ndim, QT_MAX_DIMS);
        uint64_t bytes = info->size;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || mul_u64(bytes, (uint64_t)t->shape[d], &bytes) != 0
                || bytes > (uint64_t)INT64_MAX)
                return qerr_set(err, "%s: tensor '%s': bad shape (dimension %d is %lld)", path,
                                t->name, d, (long long)t->shape[d]);
        }
        if (bytes > 0 && !t->data)
            return qerr_set(err, "%s: tensor '%s': no data for %llu bytes", path, t->name,
                            (unsigned long long)bytes);
        if (offset + bytes < offset || offset + bytes > (uint64_t)INT64_MAX)
            return qerr_set(err, "%s: tensors are too large in total", path);
        sizes[i] = bytes;
        if (n_meta > 0 || i > 0)
            sb_str(b, ",");
        sb_json_string(b, t->name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, info->name);
        sb_str(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d)
                sb_str(b, ",");
            sb_u64(b, (uint64_t)t->shape[d]);
        }
        sb_str(b, "],\"data_offsets\":[");
        sb_u64(b, offset);
        sb_str(b, ",");
        sb_u64(b, offset + bytes);
        sb_str(b, "]}");
        offset += bytes;
    }
    sb_str(b, "}");
    /* spaces up to a multiple of 8 so the data section starts 8-aligned */
    while (!b->oom && b->len % 8 != 0)
        sb_str(b, " ");
    if (b->oom)
        return qerr_set(err, "%s: out of memory", path);
    return 0;
}

int st_write(const char *path, const struct st_write_tensor *tensors, int n,
             const struct st_meta *meta, int n_meta, qerr *err)
{
    if (n < 0 || n_meta < 0 || (n > 0 && !tensors) || (n_meta > 0 && !meta))
        return qerr_set(err, "%s: bad tensor or metadata count", path);
    for (int i = 0; i < n; i++)
        if (!tensors[i].name)
            return qerr_set(err, "%s: tensor %d has no name", path, i);
    for (int i = 0; i < n_meta; i++)
        if (!meta[i].key || !meta[i].value)
            return qerr_set(err, "%s: metadata entry %d has no key or value", path, i);

    struct sbuf hdr = {0};
    uint64_t *sizes = calloc(n ? (size_t)n : 1, sizeof *sizes);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    int fd = -1, rc = -1, created = 0;
    if (!sizes || !tmp) {
        qerr_set(err, "%s: out of memory", path);
        goto out;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    if (build_header(path, tensors, n, meta, n_meta, sizes, &hdr, err) != 0)
        goto out;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        qerr_set(err, "%s: cannot create: %s", tmp, strerror(errno));
        goto out;
    }
    created = 1;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr.len >> (8 * i));
    int bad = write_all(fd, len8, 8) || write_all(fd, hdr.p, hdr.len);
    for (int i = 0; i < n && !bad; i++)
        bad = write_all(fd, tensors[i].data, (size_t)sizes[i]);
    if (bad || fsync(fd) != 0) {
        qerr_set(err, "%s: write error: %s", tmp, strerror(errno));
        goto out;
    }
    int c = close(fd);
    fd = -1;
    if (c != 0) {
        qerr_set(err, "%s: write error: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        qerr_set(err, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && created)
        unlink(tmp);
    free(tmp);
    free(sizes);
    free(hdr.p);
    return rc;
}
