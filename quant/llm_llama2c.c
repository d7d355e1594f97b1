/* llm_llama2c.c — loads llama2.c checkpoints (legacy v0, "ak42" v1 float32 and v2 int8 groups) as language models mapped read-only. */
#include "llm_load.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "llm.h"
#include "tokenizer.h"

#define L2C_MAGIC 0x616b3432u   /* "ak42" */
#define L2C_HEADER 256          /* bytes of a versioned header */
#define L2C_LEGACY_HEADER 28    /* seven int32 */
#define L2C_MAX_DIM (1 << 24)   /* any one size, as qllm_validate allows */

/* ---- types ------------------------------------------------------------------- */

/* The arrays of a checkpoint, in llama2.c's names. */
enum seg {
    S_EMB = 0,      /* token_embedding_table [vocab, dim] */
    S_RMS_ATT,      /* rms_att_weight [layer][dim] */
    S_WQ,           /* wq [layer][n_heads * head_size, dim] */
    S_WK,           /* wk [layer][n_kv_heads * head_size, dim] */
    S_WV,
    S_WO,           /* wo [layer][dim, n_heads * head_size] */
    S_RMS_FFN,
    S_W1,           /* w1 [layer][hidden, dim]: gate */
    S_W2,           /* w2 [layer][dim, hidden]: down */
    S_W3,           /* w3 [layer][hidden, dim]: up */
    S_RMS_FINAL,    /* rms_final_weight [dim] */
    S_FREQ_RE,      /* freq_cis_real [seq_len, head_size / 2]: v0 only, unused */
    S_FREQ_IM,
    S_WCLS,         /* wcls [vocab, dim], when not shared */
    S_COUNT
};

struct seg_info {
    const char *gguf;       /* name format (%d: layer) */
    const char *source;     /* llama2.c's name */
    int per_layer;
    int tensor;             /* becomes a model tensor */
};

static const struct seg_info SEG[S_COUNT] = {
    [S_EMB] = {"token_embd.weight", "token_embedding_table", 0, 1},
    [S_RMS_ATT] = {"blk.%d.attn_norm.weight", "rms_att_weight[%d]", 1, 1},
    [S_WQ] = {"blk.%d.attn_q.weight", "wq[%d]", 1, 1},
    [S_WK] = {"blk.%d.attn_k.weight", "wk[%d]", 1, 1},
    [S_WV] = {"blk.%d.attn_v.weight", "wv[%d]", 1, 1},
    [S_WO] = {"blk.%d.attn_output.weight", "wo[%d]", 1, 1},
    [S_RMS_FFN] = {"blk.%d.ffn_norm.weight", "rms_ffn_weight[%d]", 1, 1},
    [S_W1] = {"blk.%d.ffn_gate.weight", "w1[%d]", 1, 1},
    [S_W2] = {"blk.%d.ffn_down.weight", "w2[%d]", 1, 1},
    [S_W3] = {"blk.%d.ffn_up.weight", "w3[%d]", 1, 1},
    [S_RMS_FINAL] = {"output_norm.weight", "rms_final_weight", 0, 1},
    [S_FREQ_RE] = {NULL, "freq_cis_real", 0, 0},
    [S_FREQ_IM] = {NULL, "freq_cis_imag", 0, 0},
    [S_WCLS] = {"output.weight", "wcls", 0, 1},
};

/* File order of each version (export.py legacy_export, version1_export;
 * version 2 as runq.c reads it: the norms in float32, then per tensor its
 * int8 codes followed by its float32 group scales). */
static const enum seg ORDER_V0[] = {S_EMB, S_RMS_ATT, S_WQ, S_WK, S_WV, S_WO, S_RMS_FFN,
                                    S_W1, S_W2, S_W3, S_RMS_FINAL, S_FREQ_RE, S_FREQ_IM, S_WCLS};
static const enum seg ORDER_V1[] = {S_RMS_ATT, S_RMS_FFN, S_RMS_FINAL, S_EMB, S_WQ, S_WK,
                                    S_WV, S_WO, S_W1, S_W2, S_W3, S_WCLS};
static const enum seg ORDER_V2[] = {S_RMS_ATT, S_RMS_FFN, S_RMS_FINAL, S_EMB, S_WQ, S_WK,
                                    S_WV, S_WO, S_W1, S_W2, S_W3, S_WCLS};

struct hdr {
    int version;                /* 0 legacy, 1, 2 */
    int32_t dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len; /* vocab made positive */
    int shared;                 /* the classifier is the token embedding */
    int32_t group;              /* v2: values per scale */
    uint64_t data_off;          /* first weight byte */
};

/* Where one array lies. */
struct span {
    int present;
    uint64_t off;               /* bytes from the start of the file */
    int64_t rows, cols;         /* of one tensor (rows 0: a vector of cols) */
    uint64_t bytes_each;        /* of one tensor (per layer when per_layer) */
};

/* ---- header ------------------------------------------------------------------ */

static int32_t rd_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static int parse_header(const char *src, const uint8_t *base, uint64_t size, struct hdr *h,
                        qerr *err)
{
    memset(h, 0, sizeof *h);
    uint32_t magic = 0;
    if (size >= 4)
        memcpy(&magic, base, 4);
    const uint8_t *ints;
    if (magic == L2C_MAGIC) {
        if (size < L2C_HEADER)
            return qerr_set(err, "%s: truncated: %llu bytes, an ak42 header needs %d", src,
                            (unsigned long long)size, L2C_HEADER);
        h->version = rd_i32(base + 4);
        if (h->version != 1 && h->version != 2)
            return qerr_set(err, "%s: llama2.c checkpoint version %d; qlab reads 0 (legacy), 1 "
                            "(float32) and 2 (int8 groups)", src, h->version);
        ints = base + 8;
        uint8_t shared = base[36];
        if (shared > 1)
            return qerr_set(err, "%s: shared_classifier flag is %u, must be 0 or 1", src, shared);
        h->shared = shared;
        if (h->version == 2)
            h->group = rd_i32(base + 37);
        h->data_off = L2C_HEADER;
    } else {
        if (size < L2C_LEGACY_HEADER)
            return qerr_set(err, "%s: truncated: %llu bytes, a llama2.c header needs %d", src,
                            (unsigned long long)size, L2C_LEGACY_HEADER);
        ints = base;
        h->data_off = L2C_LEGACY_HEADER;
    }
    h->dim = rd_i32(ints);
    h->hidden = rd_i32(ints + 4);
    h->n_layers = rd_i32(ints + 8);
    h->n_heads = rd_i32(ints + 12);
    h->n_kv = rd_i32(ints + 16);
    h->vocab = rd_i32(ints + 20);
    h->seq_len = rd_i32(ints + 24);
    if (h->version == 0) {
        /* legacy: a negative vocab_size says an unshared classifier follows */
        h->shared = h->vocab > 0;
        if (h->vocab < 0 && h->vocab != INT32_MIN)
            h->vocab = -h->vocab;
    }
    struct { const char *name; int32_t v; } f[] = {
        {"dim", h->dim}, {"hidden_dim", h->hidden}, {"n_layers", h->n_layers},
        {"n_heads", h->n_heads}, {"n_kv_heads", h->n_kv}, {"vocab_size", h->vocab},
        {"seq_len", h->seq_len},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].v <= 0)
            return qerr_set(err, "%s: header %s is %d, must be positive", src, f[i].name,
                            (int)f[i].v);
        /* seq_len (last) only bounds positions; the rest size tensors */
        if (f[i].v > L2C_MAX_DIM && i + 1 < sizeof f / sizeof f[0])
            return qerr_set(err, "%s: header %s is %d, more than qlab handles (%d)", src,
                            f[i].name, (int)f[i].v, L2C_MAX_DIM);
    }
    if (h->dim % h->n_heads)
        return qerr_set(err, "%s: header dim %d is not a multiple of n_heads %d", src, h->dim,
                        h->n_heads);
    if (h->n_heads % h->n_kv)
        return qerr_set(err, "%s: header n_heads %d is not a multiple of n_kv_heads %d", src,
                        h->n_heads, h->n_kv);
    if ((h->dim / h->n_heads) % 2)
        return qerr_set(err, "%s: head size %d (dim %d / n_heads %d) is odd; RoPE rotates pairs",
                        src, h->dim / h->n_heads, h->dim, h->n_heads);
    if (h->version == 2 && h->group <= 0)
        return qerr_set(err, "%s: header group_size is %d, must be positive", src,
                        (int)h->group);
    return 0;
}

/* ---- layout ------------------------------------------------------------------ */

static int mul_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    return __builtin_mul_overflow(a, b, r);
}

/* Lays out the arrays of h's version from h->data_off; *end is the byte
 * after the last. Returns -1 when a size overflows 64 bits. */
static int layout(const struct hdr *h, struct span sp[S_COUNT], uint64_t *end, int *bad_group,
                  enum seg *bad_seg)
{
    const int64_t hs = h->dim / h->n_heads;
    const int64_t q_dim = (int64_t)h->n_heads * hs, kv_dim = (int64_t)h->n_kv * hs;
    int64_t shape[S_COUNT][2] = {
        [S_EMB] = {h->vocab, h->dim}, [S_RMS_ATT] = {0, h->dim},
        [S_WQ] = {q_dim, h->dim}, [S_WK] = {kv_dim, h->dim}, [S_WV] = {kv_dim, h->dim},
        [S_WO] = {h->dim, q_dim}, [S_RMS_FFN] = {0, h->dim},
        [S_W1] = {h->hidden, h->dim}, [S_W2] = {h->dim, h->hidden}, [S_W3] = {h->hidden, h->dim},
        [S_RMS_FINAL] = {0, h->dim}, [S_FREQ_RE] = {h->seq_len, hs / 2},
        [S_FREQ_IM] = {h->seq_len, hs / 2}, [S_WCLS] = {h->vocab, h->dim},
    };
    const enum seg *order = h->version == 0 ? ORDER_V0 : h->version == 1 ? ORDER_V1 : ORDER_V2;
    size_t n_order = h->version == 0 ? sizeof ORDER_V0 / sizeof ORDER_V0[0]
                   : h->version == 1 ? sizeof ORDER_V1 / sizeof ORDER_V1[0]
                                     : sizeof ORDER_V2 / sizeof ORDER_V2[0];
    memset(sp, 0, sizeof(struct span) * S_COUNT);
    *bad_group = 0;
    uint64_t off = h->data_off;
    for (size_t i = 0; i < n_order; i++) {
        enum seg s = order[i];
        if (s == S_WCLS && h->shared)
            continue;
        uint64_t elems, bytes, count = SEG[s].per_layer ? (uint64_t)h->n_layers : 1;
        uint64_t rows = shape[s][0] ? (uint64_t)shape[s][0] : 1;
        if (mul_u64(rows, (uint64_t)shape[s][1], &elems))
            return -1;
        int quantized = h->version == 2 && shape[s][0] && s != S_FREQ_RE && s != S_FREQ_IM;
        if (quantized) {
            if (elems % (uint64_t)h->group) {
                *bad_group = 1;
                *bad_seg = s;
                return 0;
            }
            /* int8 codes, then one float32 scale per group */
            if (__builtin_add_overflow(elems, elems / (uint64_t)h->group * 4, &bytes))
                return -1;
        } else if (mul_u64(elems, 4, &bytes)) {
            return -1;
        }
        uint64_t total;
        if (mul_u64(bytes, count, &total) || __builtin_add_overflow(off, total, &off))
            return -1;
        sp[s] = (struct span){1, off - total, shape[s][0], shape[s][1], bytes};
    }
    *end = off;
    return 0;
}

/* ---- tokenizer --------------------------------------------------------------- */

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* tokenizer.bin beside the checkpoint, else the only tok*.bin there, else
 * NULL. The result is malloc'd. */
static char *find_tokenizer(const char *path)
{
    char *dir = qpath_dirname(path);
    if (!dir)
        return NULL;
    char *cand = qpath_join(dir, "tokenizer.bin");
    if (cand && is_file(cand)) {
        free(dir);
        return cand;
    }
    free(cand);
    cand = NULL;
    int found = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    const char *self = qpath_basename(path);
    while (d && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 7 || strncmp(e->d_name, "tok", 3) != 0 ||
            strcmp(e->d_name + len - 4, ".bin") != 0 || strcmp(e->d_name, self) == 0)
            continue;
        char *p = qpath_join(dir, e->d_name);
        if (p && is_file(p)) {
            found++;
            free(cand);
            cand = p;
        } else {
            free(p);
        }
    }
    if (d)
        closedir(d);
    free(dir);
    if (found != 1) {
        free(cand);
        return NULL;
    }
    return cand;
}

/* ---- loader ------------------------------------------------------------------ */

static char *name_of(const char *path)
{
    const char *b = qpath_basename(path);
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char *r = malloc(n + 1);
    if (r) {
        memcpy(r, b, n);
        r[n] = 0;
    }
    return r;
}

static char *fmt_dup(const char *fmt, int layer)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, layer);
    return strdup(buf);
}

/* Fills tensor t from span sp (tensor `layer` of it). v2 matrices are
 * dequantized: x = code * scale[i / group], as runq.c does. */
static int fill_tensor(struct qmodel *m, int ti, enum seg s, int layer, const struct span *sp,
                       const struct hdr *h, qerr *err)
{
    struct qtensor *t = &m->owned[ti];
    t->name = fmt_dup(SEG[s].gguf, layer);
    m->source_names[ti] = fmt_dup(SEG[s].source, layer);
    if (!t->name || !m->source_names[ti])
        return qerr_set(err, "%s: out of memory", m->path);
    t->dtype = QDT_F32;
    t->ndim = sp->rows ? 2 : 1;
    t->shape[0] = sp->rows ? sp->rows : sp->cols;
    t->shape[1] = sp->rows ? sp->cols : 0;
    t->numel = sp->rows ? sp->rows * sp->cols : sp->cols;
    const uint8_t *p = (const uint8_t *)m->map + sp->off + (uint64_t)layer * sp->bytes_each;
    if (h->version == 2 && sp->rows) {
        float *f = malloc((size_t)t->numel * sizeof *f);
        if (!f)
            return qerr_set(err, "%s: out of memory for %s", m->path, t->name);
        const int8_t *q = (const int8_t *)p;
        const uint8_t *sc = p + t->numel;
        for (int64_t g = 0; g < t->numel / h->group; g++) {
            float scale;
            memcpy(&scale, sc + g * 4, 4); /* scales need not be aligned */
            for (int64_t i = g * h->group; i < (g + 1) * h->group; i++)
                f[i] = q[i] * scale;
        }
        t->f32_owned = f;
        t->data = f;
        t->f32 = f;
        t->nbytes = (size_t)t->numel * sizeof(float);
        char buf[48];
        snprintf(buf, sizeof buf, "int8 g%d (llama2.c Q8_0)", (int)h->group);
        m->stored_types[ti] = strdup(buf);
        m->stored_bytes[ti] = (int64_t)sp->bytes_each;
        if (!m->stored_types[ti])
            return qerr_set(err, "%s: out of memory", m->path);
        return 0;
    }
    t->data = p;
    t->nbytes = (size_t)t->numel * sizeof(float);
    return qtensor_make_f32(t, err); /* a view: the mapping is 4-aligned */
}

static int load_tokenizer(struct qmodel *m, const char *tokenizer, const struct hdr *h,
                          qerr *err)
{
    char *tp = tokenizer ? strdup(tokenizer) : find_tokenizer(m->path);
    if (tokenizer && !tp)
        return qerr_set(err, "%s: out of memory", m->path);
    m->extra_files = calloc(2, sizeof *m->extra_files);
    if (!m->extra_files) {
        free(tp);
        return qerr_set(err, "%s: out of memory", m->path);
    }
    m->extra_files[m->n_extra_files++] = strdup(m->path);
    if (!tp)
        return m->extra_files[0] ? 0 : qerr_set(err, "%s: out of memory", m->path);
    m->extra_files[m->n_extra_files++] = tp;
    if (!m->extra_files[0])
        return qerr_set(err, "%s: out of memory", m->path);
    return qtok_load_llama2c(tp, h->vocab, &m->llm->tok, err);
}

static int build(struct qmodel *m, const struct hdr *h, const struct span sp[S_COUNT],
                 const char *tokenizer, qerr *err)
{
    struct qllm *l = m->llm = qllm_new(h->n_layers);
    if (!l)
        return qerr_set(err, "%s: out of memory", m->path);
    l->c = (struct qllm_config){
        .arch = QLLM_LLAMA, .dim = h->dim, .hidden_dim = h->hidden, .n_layers = h->n_layers,
        .n_heads = h->n_heads, .n_kv_heads = h->n_kv, .head_dim = h->dim / h->n_heads,
        .vocab_size = h->vocab, .max_ctx = h->seq_len, .norm_eps = 1e-5f,
        .rope_theta = 10000.0f, .rope = QLLM_ROPE_INTERLEAVED,
    };
    /* tensors in the order the forward pass uses them */
    int n = 2 + 9 * h->n_layers + (h->shared ? 0 : 1);
    m->owned = calloc((size_t)n, sizeof *m->owned);
    m->tensors = calloc((size_t)n, sizeof *m->tensors);
    m->source_names = calloc((size_t)n, sizeof *m->source_names);
    if (h->version == 2) {
        m->stored_types = calloc((size_t)n, sizeof *m->stored_types);
        m->stored_bytes = calloc((size_t)n, sizeof *m->stored_bytes);
    }
    if (!m->owned || !m->tensors || !m->source_names ||
        (h->version == 2 && (!m->stored_types || !m->stored_bytes)))
        return qerr_set(err, "%s: out of memory", m->path);
    m->n_owned = m->n_tensors = n;
    for (int i = 0; i < n; i++)
        m->tensors[i] = &m->owned[i];

    int ti = 0;
    l->token_embd = ti;
    if (fill_tensor(m, ti++, S_EMB, 0, &sp[S_EMB], h, err))
        return -1;
    static const enum seg per_layer[9] = {S_RMS_ATT, S_WQ, S_WK, S_WV, S_WO,
                                          S_RMS_FFN, S_W1, S_W3, S_W2};
    for (int b = 0; b < h->n_layers; b++) {
        struct qllm_layer *L = &l->layers[b];
        int *slot[9] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo,
                        &L->ffn_norm, &L->w_gate, &L->w_up, &L->w_down};
        for (int k = 0; k < 9; k++) {
            *slot[k] = ti;
            if (fill_tensor(m, ti++, per_layer[k], b, &sp[per_layer[k]], h, err))
                return -1;
        }
    }
    l->output_norm = ti;
    if (fill_tensor(m, ti++, S_RMS_FINAL, 0, &sp[S_RMS_FINAL], h, err))
        return -1;
    l->output = l->token_embd;
    if (!h->shared) {
        l->output = ti;
        if (fill_tensor(m, ti++, S_WCLS, 0, &sp[S_WCLS], h, err))
            return -1;
    }
    if (load_tokenizer(m, tokenizer, h, err) != 0)
        return -1;
    return qllm_validate(m, err);
}

/* Maps the whole file read-only into m->map. */
static int map_file(struct qmodel *m, const char *path, qerr *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return qerr_set(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return qerr_set(err, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return qerr_set(err, "%s: empty file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return qerr_set(err, "%s: too large to map", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return qerr_set(err, "%s: cannot map: %s", path, strerror(errno));
    m->map = p;
    m->map_size = (size_t)st.st_size;
    return 0;
}

int qllm_load_llama2c(const char *path, const char *tokenizer, struct qmodel **out, qerr *err)
{
    *out = NULL;
    if (!path)
        return qerr_set(err, "llama2.c: no path");
    struct qmodel *m = calloc(1, sizeof *m);
    if (!m)
        return qerr_set(err, "%s: out of memory", path);
    m->kind = QMODEL_LM;
    m->path = strdup(path);
    m->name = name_of(path);
    m->format = strdup("llama2c");
    if (!m->path || !m->name || !m->format) {
        qmodel_free(m);
        return qerr_set(err, "%s: out of memory", path);
    }
    if (map_file(m, path, err) != 0) {
        qmodel_free(m);
        return -1;
    }
    struct hdr h;
    struct span sp[S_COUNT];
    uint64_t end = 0;
    int bad_group = 0;
    enum seg bad_seg = S_EMB;
    if (parse_header(path, m->map, m->map_size, &h, err) != 0)
        goto fail;
    if (layout(&h, sp, &end, &bad_group, &bad_seg) != 0) {
        qerr_set(err, "%s: the header's sizes (dim %d, hidden_dim %d, n_layers %d, vocab_size "
                 "%d, seq_len %d) overflow 64-bit byte counts", path, (int)h.dim, (int)h.hidden,
                 (int)h.n_layers, (int)h.vocab, (int)h.seq_len);
        goto fail;
    }
    if (bad_group) {
        qerr_set(err, "%s: %s does not split into groups of %d (group_size)", path,
                 SEG[bad_seg].source, (int)h.group);
        goto fail;
    }
    if (end != m->map_size) {
        char other[96] = "";
        if (h.version == 0) {
            /* the other classifier variant: would it fit? */
            uint64_t cls = (uint64_t)h.vocab * (uint64_t)h.dim * 4;
            uint64_t alt = h.shared ? end + cls : end - cls;
            if (alt == m->map_size)
                snprintf(other, sizeof other, " (it fits %s classifier: vocab_size should be %d)",
                         h.shared ? "an unshared" : "a shared", h.shared ? -h.vocab : h.vocab);
        }
        qerr_set(err, "%s: the header (v%d: dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                 "n_kv_heads %d, vocab_size %d%s, seq_len %d) implies %llu bytes, the file has "
                 "%llu%s", path, h.version, (int)h.dim, (int)h.hidden, (int)h.n_layers,
                 (int)h.n_heads, (int)h.n_kv, (int)h.vocab, h.shared ? " shared" : " unshared",
                 (int)h.seq_len, (unsigned long long)end, (unsigned long long)m->map_size, other);
        goto fail;
    }
    char desc[160];
    if (h.version == 2)
        snprintf(desc, sizeof desc, "llama2.c checkpoint v2 (int8, groups of %d)", (int)h.group);
    else
        snprintf(desc, sizeof desc, "llama2.c checkpoint v%d (float32)", h.version);
    m->description = strdup(desc);
    if (!m->description) {
        qerr_set(err, "%s: out of memory", path);
        goto fail;
    }
    if (build(m, &h, sp, tokenizer, err) != 0)
        goto fail;
    *out = m;
    return 0;
fail:
    qmodel_free(m);
    return -1;
}
