/* check_gguf.c — the GGUF reader and the GGUF language-model loader: hand-built files, every malformed path, the real stories260K. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "quant/gguf.h"
#include "quant/llm.h"
#include "quant/llm_load.h"
#include "quant/model.h"
#include "quant/plugin_host.h"
#include "quant/tensor.h"
#include "quant/tokenizer.h"
#include "test_util.h"

#define T_F32 0u
#define T_F16 1u
#define T_BF16 30u
#define T_Q8_0 8u
#define T_IQ2_XXS 16u
#define AUTO UINT64_MAX           /* tensor offset: next aligned position */

/* ---- a small GGUF writer ---------------------------------------------------- */

struct gw {
    uint8_t *b;
    size_t n, cap;
};

static void put(struct gw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        ck_assert_ptr_nonnull(w->b);
    }
    if (n)
        memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put_le(struct gw *w, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, (size_t)n);
}

static void put_u32(struct gw *w, uint32_t v) { put_le(w, v, 4); }
static void put_u64(struct gw *w, uint64_t v) { put_le(w, v, 8); }

static void put_f32(struct gw *w, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(w, u);
}

static void put_strn(struct gw *w, const char *s, size_t n)
{
    put_u64(w, n);
    put(w, s, n);
}

static void put_str(struct gw *w, const char *s) { put_strn(w, s, strlen(s)); }

/* The metadata section being built and its key count. */
struct kvs {
    struct gw w;
    uint64_t n;
};

static void kv_head(struct kvs *k, const char *key, uint32_t type)
{
    put_str(&k->w, key);
    put_u32(&k->w, type);
    k->n++;
}

static void kv_u32(struct kvs *k, const char *key, uint32_t v)
{
    kv_head(k, key, QGGUF_UINT32);
    put_u32(&k->w, v);
}

static void kv_f32(struct kvs *k, const char *key, float v)
{
    kv_head(k, key, QGGUF_FLOAT32);
    put_f32(&k->w, v);
}

static void kv_str(struct kvs *k, const char *key, const char *v)
{
    kv_head(k, key, QGGUF_STRING);
    put_str(&k->w, v);
}

static void kv_bool(struct kvs *k, const char *key, int v)
{
    kv_head(k, key, QGGUF_BOOL);
    uint8_t b = (uint8_t)v;
    put(&k->w, &b, 1);
}

static void kv_strs(struct kvs *k, const char *key, const char *const *v, int n)
{
    kv_head(k, key, QGGUF_ARRAY);
    put_u32(&k->w, QGGUF_STRING);
    put_u64(&k->w, (uint64_t)n);
    for (int i = 0; i < n; i++)
        put_str(&k->w, v[i]);
}

static void kv_f32s(struct kvs *k, const char *key, const float *v, int n)
{
    kv_head(k, key, QGGUF_ARRAY);
    put_u32(&k->w, QGGUF_FLOAT32);
    put_u64(&k->w, (uint64_t)n);
    for (int i = 0; i < n; i++)
        put_f32(&k->w, v[i]);
}

struct tspec {
    char name[80];
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;
    uint8_t *data;              /* owned */
    size_t nbytes;
    uint64_t offset;            /* AUTO: the next aligned position */
};

/* A whole file: header, metadata, tensor infos, padding, data. Returns
 * the bytes (caller frees) and their count. */
static uint8_t *gguf_bytes(uint32_t version, const struct kvs *k, const struct tspec *t, int n_t,
                           uint32_t align, size_t *size)
{
    struct gw w = {0};
    put(&w, "GGUF", 4);
    put_u32(&w, version);
    put_u64(&w, (uint64_t)n_t);
    put_u64(&w, k->n);
    put(&w, k->w.b, k->w.n);
    uint64_t *offs = calloc((size_t)n_t + 1, sizeof *offs), next = 0, end = 0;
    for (int i = 0; i < n_t; i++) {
        offs[i] = t[i].offset == AUTO ? next : t[i].offset;
        next = (offs[i] + t[i].nbytes + align - 1) / align * align;
        if (t[i].nbytes && offs[i] + t[i].nbytes > end)
            end = offs[i] + t[i].nbytes;
        put_str(&w, t[i].name);
        put_u32(&w, t[i].n_dims);
        for (uint32_t d = 0; d < t[i].n_dims; d++)
            put_u64(&w, t[i].ne[d]);
        put_u32(&w, t[i].type);
        put_u64(&w, offs[i]);
    }
    while (w.n % align)
        put(&w, "", 1);
    size_t base = w.n;
    uint8_t *zeros = calloc((size_t)end + 1, 1);
    put(&w, zeros, (size_t)end);
    free(zeros);
    for (int i = 0; i < n_t; i++)
        if (t[i].nbytes)
            memcpy(w.b + base + offs[i], t[i].data, t[i].nbytes);
    free(offs);
    *size = w.n;
    return w.b;
}

static const char *write_gguf(const char *name, uint32_t version, const struct kvs *k,
                              const struct tspec *t, int n_t, uint32_t align)
{
    size_t n;
    uint8_t *b = gguf_bytes(version, k, t, n_t, align, &n);
    const char *path = tu_path(name);
    tu_write_file(path, b, n);
    free(b);
    return path;
}

/* ---- the tiny llama model ------------------------------------------------------
 * dim 8, hidden 32, 2 layers, 2 heads of 4, 1 kv head, vocab 32. Values are
 * multiples of 1/8 in [-1, 1] (exact in F16 and BF16); blk.0.attn_q is F16,
 * blk.1.attn_v BF16, blk.0.ffn_down Q8_0 with scale 0.5 and hand-chosen
 * codes, the rest F32. */

#define TD 8
#define TH 32
#define TV 32
#define TL 2

struct tiny {
    struct kvs k;
    struct tspec t[40];
    int n_t;
};

static float tval(int k, int64_t j)
{
    return (float)((j * 5 + k * 3) % 17 - 8) / 8.0f;
}

static int8_t q8_code(int64_t j)
{
    return (int8_t)((j * 7) % 255 - 127);
}

/* Tensor k of a tiny model: name, type, ne = [ne0, ne1] (ne1 0: a vector). */
static void fill_tensor(struct tspec *s, int k, const char *name, uint32_t type, uint64_t ne0,
                        uint64_t ne1)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_dims = ne1 ? 2 : 1;
    s->ne[0] = ne0;
    s->ne[1] = ne1 ? ne1 : 1;
    s->type = type;
    s->offset = AUTO;
    uint64_t numel = ne0 * s->ne[1];
    if (type == T_F32) {
        s->nbytes = numel * 4;
        s->data = malloc(s->nbytes);
        for (uint64_t j = 0; j < numel; j++) {
            float v = tval(k, (int64_t)j);
            memcpy(s->data + 4 * j, &v, 4);
        }
    } else if (type == T_F16) {
        s->nbytes = numel * 2;
        s->data = malloc(s->nbytes);
        for (uint64_t j = 0; j < numel; j++) {
            uint16_t h = qf32_to_f16(tval(k, (int64_t)j));
            s->data[2 * j] = (uint8_t)h;
            s->data[2 * j + 1] = (uint8_t)(h >> 8);
        }
    } else if (type == T_BF16) {
        s->nbytes = numel * 2;
        s->data = malloc(s->nbytes);
        for (uint64_t j = 0; j < numel; j++) {
            uint16_t h = qf32_to_bf16(tval(k, (int64_t)j));
            s->data[2 * j] = (uint8_t)h;
            s->data[2 * j + 1] = (uint8_t)(h >> 8);
        }
    } else if (type == T_Q8_0) {
        s->nbytes = numel / 32 * 34;
        s->data = malloc(s->nbytes);
        for (uint64_t b = 0; b < numel / 32; b++) {
            uint8_t *p = s->data + 34 * b;
            p[0] = 0x00; /* fp16 0.5 = 0x3800, little-endian */
            p[1] = 0x38;
            for (int i = 0; i < 32; i++)
                p[2 + i] = (uint8_t)q8_code((int64_t)(b * 32 + (uint64_t)i));
        }
    } else { /* any block type: zero bytes of the right size */
        const struct qggml_type *ty = qggml_type(type);
        s->nbytes = numel / (uint64_t)ty->block * (uint64_t)ty->bytes;
        s->data = calloc(s->nbytes, 1);
    }
}

static void add_tensor(struct tiny *m, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1)
{
    fill_tensor(&m->t[m->n_t], m->n_t, name, type, ne0, ne1);
    m->n_t++;
}

/* The expected float32 value j of tensor k of a tiny model. */
static float texpect(const struct tiny *m, int k, int64_t j)
{
    if (m->t[k].type == T_Q8_0)
        return 0.5f * (float)q8_code(j);
    return tval(k, j);
}

/* skip: a key to leave out (or NULL). */
static void tiny_init(struct tiny *m, const char *arch, const char *skip)
{
    memset(m, 0, sizeof *m);
    struct kvs *k = &m->k;
    char key[128];
#define ARCH_U32(suffix, v)                                                      \
    do {                                                                         \
        snprintf(key, sizeof key, "%s.%s", arch, suffix);                        \
        if (!skip || strcmp(skip, key) != 0)                                     \
            kv_u32(k, key, v);                                                   \
    } while (0)
    if (!skip || strcmp(skip, "general.architecture") != 0)
        kv_str(k, "general.architecture", arch);
    kv_str(k, "general.name", "tiny");
    ARCH_U32("embedding_length", TD);
    ARCH_U32("feed_forward_length", TH);
    ARCH_U32("block_count", TL);
    ARCH_U32("attention.head_count", 2);
    ARCH_U32("attention.head_count_kv", 1);
    ARCH_U32("context_length", 64);
    ARCH_U32("rope.dimension_count", 4);
#undef ARCH_U32
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if (!skip || strcmp(skip, key) != 0)
        kv_f32(k, key, 1e-5f);
    if (strcmp(arch, "llama") == 0)
        kv_f32(k, "llama.rope.freq_base", 500000.0f);

    add_tensor(m, "token_embd.weight", T_F32, TD, TV);
    add_tensor(m, "output_norm.weight", T_F32, TD, 0);
    for (int l = 0; l < TL; l++) {
        char n[64];
#define T(suffix, type, a, b)                                                    \
    do {                                                                         \
        snprintf(n, sizeof n, "blk.%d.%s", l, suffix);                           \
        add_tensor(m, n, type, a, b);                                            \
    } while (0)
        T("attn_norm.weight", T_F32, TD, 0);
        T("attn_q.weight", T_F16, TD, TD);
        T("attn_k.weight", T_F32, TD, 4);
        T("attn_v.weight", l == 1 ? T_BF16 : T_F32, TD, 4);
        T("attn_output.weight", T_F32, TD, TD);
        if (strcmp(arch, "qwen2") == 0) {
            T("attn_q.bias", T_F32, TD, 0);
            T("attn_k.bias", T_F32, 4, 0);
            T("attn_v.bias", T_F32, 4, 0);
        }
        T("ffn_norm.weight", T_F32, TD, 0);
        T("ffn_gate.weight", T_F32, TD, TH);
        T("ffn_up.weight", T_F16, TD, TH);
        T("ffn_down.weight", l == 0 ? T_Q8_0 : T_F32, TH, TD);
#undef T
    }
}

static void tiny_free(struct tiny *m)
{
    free(m->k.w.b);
    for (int i = 0; i < m->n_t; i++)
        free(m->t[i].data);
}

static int tiny_find(const struct tiny *m, const char *name)
{
    for (int i = 0; i < m->n_t; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return i;
    return -1;
}

static const char *tiny_write(const struct tiny *m, const char *name)
{
    return write_gguf(name, 3, &m->k, m->t, m->n_t, 32);
}

/* ---- fixture: the ggml plugin, for Q8_0 ---------------------------------------- */

static struct qplugin_host *H;

static void host_setup(void)
{
    qerr err = {{0}};
    H = qhost_new();
    ck_assert_ptr_nonnull(H);
    ck_assert_msg(qhost_load(H, tu_plugin("ggml.so"), &err) == 0, "%s", err.msg);
}

static void host_teardown(void)
{
    qhost_free(H);
    H = NULL;
}

/* ---- assertions ------------------------------------------------------------------ */

static void assert_open_fails(const char *path, const char *phrase)
{
    struct qgguf *g = (struct qgguf *)1;
    qerr err = {{0}};
    ck_assert_int_eq(qgguf_open(path, &g, &err), -1);
    ck_assert_ptr_null(g);
    ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "'%s' does not start with %s",
                  err.msg, path);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "'%s' lacks '%s'", err.msg, phrase);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
}

static void assert_load_fails(const char *path, const struct qplugin_host *h, const char *phrase)
{
    struct qmodel *m = (struct qmodel *)1;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_load_gguf(path, h, &m, &err), -1);
    ck_assert_ptr_null(m);
    ck_assert_msg(strncmp(err.msg, path, strlen(path)) == 0, "'%s' does not start with %s",
                  err.msg, path);
    ck_assert_msg(strstr(err.msg, phrase) != NULL, "'%s' lacks '%s'", err.msg, phrase);
}

static struct qmodel *load_ok(const char *path, const struct qplugin_host *h)
{
    struct qmodel *m = NULL;
    qerr err = {{0}};
    ck_assert_msg(qllm_load_gguf(path, h, &m, &err) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(m);
    return m;
}

static const struct qtensor *tensor(const struct qmodel *m, const char *name)
{
    int i = qmodel_find_tensor(m, name);
    ck_assert_msg(i >= 0, "tensor %s missing", name);
    return m->tensors[i];
}

/* ---- Core: the type table ---------------------------------------------------------- */

START_TEST(type_table_matches_ggml)
{
    /* (id, name, block, bytes) from ggml's type_traits / gguf-py GGML_QUANT_SIZES */
    static const struct { uint32_t id; const char *name; int block, bytes; } want[] = {
        {0, "F32", 1, 4},       {1, "F16", 1, 2},        {2, "Q4_0", 32, 18},
        {3, "Q4_1", 32, 20},    {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},
        {8, "Q8_0", 32, 34},    {9, "Q8_1", 32, 40},     {10, "Q2_K", 256, 84},
        {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
        {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292},  {16, "IQ2_XXS", 256, 66},
        {17, "IQ2_XS", 256, 74}, {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},
        {20, "IQ4_NL", 32, 18}, {21, "IQ3_S", 256, 110}, {22, "IQ2_S", 256, 82},
        {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},      {25, "I16", 1, 2},
        {26, "I32", 1, 4},      {27, "I64", 1, 8},       {28, "F64", 1, 8},
        {29, "IQ1_M", 256, 56}, {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},
        {35, "TQ2_0", 256, 66}, {39, "MXFP4", 32, 17},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct qggml_type *t = qggml_type(want[i].id);
        ck_assert_msg(t != NULL, "type %u unknown", want[i].id);
        ck_assert_str_eq(t->name, want[i].name);
        ck_assert_int_eq(t->block, want[i].block);
        ck_assert_int_eq(t->bytes, want[i].bytes);
    }
    static const uint32_t removed[] = {4, 5, 31, 32, 33, 36, 37, 38, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++)
        ck_assert_ptr_null(qggml_type(removed[i]));
}
END_TEST

/* ---- Core: metadata ------------------------------------------------------------------ */

START_TEST(every_value_type_round_trips)
{
    struct kvs k = {0};
    kv_head(&k, "u8", QGGUF_UINT8);
    put_le(&k.w, 200, 1);
    kv_head(&k, "i8", QGGUF_INT8);
    put_le(&k.w, (uint8_t)-100, 1);
    kv_head(&k, "u16", QGGUF_UINT16);
    put_le(&k.w, 65535, 2);
    kv_head(&k, "i16", QGGUF_INT16);
    put_le(&k.w, (uint16_t)-30000, 2);
    kv_u32(&k, "u32", 4000000000u);
    kv_head(&k, "i32", QGGUF_INT32);
    put_le(&k.w, (uint32_t)INT32_MIN, 4);
    kv_f32(&k, "f32", -1.5f);
    kv_bool(&k, "bool", 1);
    kv_head(&k, "str", QGGUF_STRING);
    put_strn(&k.w, "a\0b", 3);
    kv_head(&k, "u64", QGGUF_UINT64);
    put_u64(&k.w, UINT64_MAX);
    kv_head(&k, "i64", QGGUF_INT64);
    put_u64(&k.w, (uint64_t)INT64_MIN);
    kv_head(&k, "f64", QGGUF_FLOAT64);
    double d = 0.1;
    uint64_t du;
    memcpy(&du, &d, 8);
    put_u64(&k.w, du);
    kv_head(&k, "arr.i16", QGGUF_ARRAY);
    put_u32(&k.w, QGGUF_INT16);
    put_u64(&k.w, 3);
    put_le(&k.w, (uint16_t)-1, 2);
    put_le(&k.w, 2, 2);
    put_le(&k.w, 300, 2);
    const char *strs[] = {"x", "", "hello"};
    kv_strs(&k, "arr.str", strs, 3);
    kv_head(&k, "arr.empty", QGGUF_ARRAY);
    put_u32(&k.w, QGGUF_UINT32);
    put_u64(&k.w, 0);
    const char *path = write_gguf("meta.gguf", 3, &k, NULL, 0, 32);
    free(k.w.b);

    struct qgguf *g = NULL;
    qerr err = {{0}};
    ck_assert_msg(qgguf_open(path, &g, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(g->version, 3);
    ck_assert_uint_eq(g->n_kv, 15);
    ck_assert_uint_eq(g->n_tensors, 0);
    ck_assert_uint_eq(g->alignment, 32);
    ck_assert_uint_eq(qgguf_find(g, "u8")->v.u, 200);
    ck_assert_int_eq(qgguf_find(g, "i8")->v.i, -100);
    ck_assert_uint_eq(qgguf_find(g, "u16")->v.u, 65535);
    ck_assert_int_eq(qgguf_find(g, "i16")->v.i, -30000);
    ck_assert_uint_eq(qgguf_find(g, "u32")->v.u, 4000000000u);
    ck_assert_int_eq(qgguf_find(g, "i32")->v.i, INT32_MIN);
    ck_assert(qgguf_find(g, "f32")->v.f == -1.5);
    ck_assert_int_eq(qgguf_find(g, "bool")->v.type, QGGUF_BOOL);
    ck_assert_uint_eq(qgguf_find(g, "bool")->v.u, 1);
    const struct qgguf_kv *s = qgguf_find(g, "str");
    ck_assert_int_eq(s->v.type, QGGUF_STRING);
    ck_assert_uint_eq(s->v.str.len, 3);
    ck_assert_int_eq(memcmp(s->v.str.s, "a\0b", 3), 0);
    ck_assert(qgguf_find(g, "u64")->v.u == UINT64_MAX);
    ck_assert(qgguf_find(g, "i64")->v.i == INT64_MIN);
    ck_assert(qgguf_find(g, "f64")->v.f == 0.1);
    const struct qgguf_kv *a = qgguf_find(g, "arr.i16");
    ck_assert_int_eq(a->v.type, QGGUF_ARRAY);
    ck_assert_int_eq(a->v.arr.type, QGGUF_INT16);
    ck_assert_uint_eq(a->v.arr.n, 3);
    ck_assert_int_eq(a->v.arr.data[0], 0xff);
    ck_assert_int_eq(a->v.arr.data[1], 0xff);
    ck_assert_int_eq(a->v.arr.data[4], 300 & 0xff);
    ck_assert_int_eq(a->v.arr.data[5], 300 >> 8);
    a = qgguf_find(g, "arr.str");
    ck_assert_int_eq(a->v.arr.type, QGGUF_STRING);
    ck_assert_uint_eq(a->v.arr.n, 3);
    ck_assert_uint_eq(a->v.arr.strs[0].len, 1);
    ck_assert_int_eq(a->v.arr.strs[0].s[0], 'x');
    ck_assert_uint_eq(a->v.arr.strs[1].len, 0);
    ck_assert_uint_eq(a->v.arr.strs[2].len, 5);
    ck_assert_int_eq(memcmp(a->v.arr.strs[2].s, "hello", 5), 0);
    ck_assert_uint_eq(qgguf_find(g, "arr.empty")->v.arr.n, 0);
    ck_assert_ptr_null(qgguf_find(g, "absent"));
    ck_assert_ptr_null(qgguf_find_tensor(g, "absent"));

    /* typed getters: widths convert, signs and types are checked */
    uint64_t u;
    double f;
    struct qgguf_str str;
    ck_assert_int_eq(qgguf_get_u64(g, "u8", &u, &err), 0);
    ck_assert_uint_eq(u, 200);
    ck_assert_int_eq(qgguf_get_u64(g, "u64", &u, &err), 0);
    ck_assert(u == UINT64_MAX);
    ck_assert_int_eq(qgguf_get_u64(g, "i8", &u, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "'i8'"));
    ck_assert_int_eq(qgguf_get_u64(g, "str", &u, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "key 'str' has type string; expected an integer"));
    ck_assert_int_eq(qgguf_get_u64(g, "absent", &u, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "key 'absent' is missing"));
    ck_assert_int_eq(qgguf_get_f64(g, "f32", &f, &err), 0);
    ck_assert(f == -1.5);
    ck_assert_int_eq(qgguf_get_f64(g, "i16", &f, &err), 0);
    ck_assert(f == -30000.0);
    ck_assert_int_eq(qgguf_get_f64(g, "arr.i16", &f, &err), -1);
    ck_assert_int_eq(qgguf_get_str(g, "str", &str, &err), 0);
    ck_assert_uint_eq(str.len, 3);
    ck_assert_int_eq(qgguf_get_str(g, "u8", &str, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "'u8' has type uint8; expected a string"));
    qgguf_close(g);
    qgguf_close(NULL);
}
END_TEST

START_TEST(version_2_and_custom_alignment)
{
    struct kvs k = {0};
    kv_u32(&k, "general.alignment", 64);
    struct tspec t[2] = {{.name = "a", .n_dims = 1, .ne = {3}, .type = T_F32, .offset = AUTO},
                         {.name = "b", .n_dims = 1, .ne = {2}, .type = T_F16, .offset = AUTO}};
    float fa[3] = {1, 2, 3};
    uint16_t hb[2] = {0x3C00, 0xC000};
    t[0].data = (uint8_t *)fa;
    t[0].nbytes = 12;
    t[1].data = (uint8_t *)hb;
    t[1].nbytes = 4;
    const char *path = write_gguf("v2.gguf", 2, &k, t, 2, 64);
    free(k.w.b);
    struct qgguf *g = NULL;
    qerr err = {{0}};
    ck_assert_msg(qgguf_open(path, &g, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(g->version, 2);
    ck_assert_uint_eq(g->alignment, 64);
    ck_assert_uint_eq((size_t)(g->data - (const uint8_t *)g->map) % 64, 0);
    const struct qgguf_tensor *b = qgguf_find_tensor(g, "b");
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->offset, 64);
    ck_assert_uint_eq(b->nbytes, 4);
    ck_assert_ptr_eq(b->data, g->data + 64);
    ck_assert_int_eq(b->data[1], 0x3C);
    /* the mapping can be taken over */
    void *map;
    size_t size;
    qgguf_take_map(g, &map, &size);
    ck_assert_ptr_null(g->map);
    qgguf_close(g);
    ck_assert_int_eq(memcmp(map, "GGUF", 4), 0); /* still mapped */
    ck_assert_int_eq(munmap(map, size), 0);
}
END_TEST

/* ---- Core: the language-model loader ------------------------------------------------- */

START_TEST(tiny_llama_loads)
{
    struct tiny t;
    tiny_init(&t, "llama", NULL);
    const char *path = tiny_write(&t, "tiny.gguf");
    struct qmodel *m = load_ok(path, H);
    ck_assert_int_eq(m->kind, QMODEL_LM);
    ck_assert_str_eq(m->format, "gguf");
    ck_assert_str_eq(m->name, "tiny");
    ck_assert_str_eq(m->path, path);
    ck_assert_int_eq(m->n_extra_files, 1);
    ck_assert_str_eq(m->extra_files[0], path);
    ck_assert_ptr_nonnull(m->map);
    const struct qllm_config *c = &m->llm->c;
    ck_assert_int_eq(c->arch, QLLM_LLAMA);
    ck_assert_int_eq(c->dim, TD);
    ck_assert_int_eq(c->hidden_dim, TH);
    ck_assert_int_eq(c->n_layers, TL);
    ck_assert_int_eq(c->n_heads, 2);
    ck_assert_int_eq(c->n_kv_heads, 1);
    ck_assert_int_eq(c->head_dim, 4);
    ck_assert_int_eq(c->vocab_size, TV);
    ck_assert_int_eq(c->max_ctx, 64);
    ck_assert(c->norm_eps == 1e-5f);
    ck_assert(c->rope_theta == 500000.0f);
    ck_assert_int_eq(c->rope, QLLM_ROPE_INTERLEAVED);
    ck_assert_ptr_null(m->llm->tok);

    ck_assert_int_eq(m->n_tensors, t.n_t);
    ck_assert_int_eq(m->llm->output, m->llm->token_embd); /* tied */
    ck_assert_str_eq(m->tensors[m->llm->token_embd]->name, "token_embd.weight");
    ck_assert_str_eq(m->tensors[m->llm->output_norm]->name, "output_norm.weight");
    ck_assert_str_eq(m->tensors[m->llm->layers[1].wq]->name, "blk.1.attn_q.weight");
    ck_assert_str_eq(m->tensors[m->llm->layers[0].w_down]->name, "blk.0.ffn_down.weight");
    ck_assert_str_eq(m->tensors[m->llm->layers[1].ffn_norm]->name, "blk.1.ffn_norm.weight");
    ck_assert_int_eq(m->llm->layers[0].bq, -1);
    ck_assert_int_eq(m->roles[m->llm->layers[0].wq], QROLE_WEIGHT);
    ck_assert_int_eq(m->roles[m->llm->layers[0].attn_norm], QROLE_NORM);

    /* shapes reversed to [out, in] */
    const struct qtensor *te = tensor(m, "token_embd.weight");
    ck_assert_int_eq(te->ndim, 2);
    ck_assert_int_eq(te->shape[0], TV);
    ck_assert_int_eq(te->shape[1], TD);
    const struct qtensor *dn = tensor(m, "blk.0.ffn_down.weight");
    ck_assert_int_eq(dn->shape[0], TD);
    ck_assert_int_eq(dn->shape[1], TH);
    const struct qtensor *wk = tensor(m, "blk.1.attn_k.weight");
    ck_assert_int_eq(wk->shape[0], 4);
    ck_assert_int_eq(wk->shape[1], TD);
    ck_assert_int_eq(tensor(m, "output_norm.weight")->ndim, 1);

    /* F32 is viewed in place inside the mapping; F16 keeps its bytes there */
    const uint8_t *lo = m->map, *hi = lo + m->map_size;
    ck_assert_ptr_eq(te->f32, te->data);
    ck_assert((const uint8_t *)te->data >= lo && (const uint8_t *)te->data < hi);
    const struct qtensor *wq = tensor(m, "blk.0.attn_q.weight");
    ck_assert_int_eq(wq->dtype, QDT_F16);
    ck_assert((const uint8_t *)wq->data >= lo && (const uint8_t *)wq->data < hi);
    ck_assert_ptr_nonnull(wq->f32_owned);
    ck_assert_int_eq(tensor(m, "blk.1.attn_v.weight")->dtype, QDT_BF16);
    ck_assert_int_eq(dn->dtype, QDT_F32);
    ck_assert_ptr_nonnull(dn->f32_owned);

    /* every value, every tensor; stored types and sizes */
    for (int k = 0; k < t.n_t; k++) {
        const struct qtensor *x = tensor(m, t.t[k].name);
        int i = qmodel_find_tensor(m, t.t[k].name);
        for (int64_t j = 0; j < x->numel; j++)
            ck_assert_msg(x->f32[j] == texpect(&t, k, j), "%s[%lld] = %g, expected %g",
                          t.t[k].name, (long long)j, x->f32[j], texpect(&t, k, j));
        ck_assert_str_eq(m->stored_types[i], qggml_type(t.t[k].type)->name);
        ck_assert_int_eq(m->stored_bytes[i], (int64_t)t.t[k].nbytes);
    }
    int i = qmodel_find_tensor(m, "blk.0.ffn_down.weight");
    ck_assert_str_eq(m->stored_types[i], "Q8_0");
    ck_assert_int_eq(m->stored_bytes[i], 8 * 34);
    /* a hand check of the Q8_0 decode: code(33) = 231 % 255 - 127 = 104 */
    ck_assert(dn->f32[33] == 52.0f);
    qmodel_free(m);
    tiny_free(&t);
}
END_TEST

/* With general.alignment 2 the data section can start 2 bytes off a
 * float boundary: F32 tensors are then copied, not viewed, and still right. */
START_TEST(misaligned_f32_is_copied)
{
    for (int pad = 0; pad < 4; pad++) {
        struct tiny t;
        tiny_init(&t, "llama", NULL);
        kv_u32(&t.k, "general.alignment", 2);
        char padding[8] = "xxxxxxx";
        padding[pad] = 0;
        kv_str(&t.k, "pad", padding);
        const char *path = write_gguf("align2.gguf", 3, &t.k, t.t, t.n_t, 2);
        struct qgguf *g = NULL;
        qerr err = {{0}};
        ck_assert_msg(qgguf_open(path, &g, &err) == 0, "%s", err.msg);
        size_t start = (size_t)(g->data - (const uint8_t *)g->map);
        qgguf_close(g);
        if (start % 4 != 2) {
            tiny_free(&t);
            continue;
        }
        struct qmodel *m = load_ok(path, H);
        const struct qtensor *te = tensor(m, "token_embd.weight");
        ck_assert_ptr_nonnull(te->f32_owned);
        ck_assert_ptr_ne(te->f32, te->data);
        for (int64_t j = 0; j < te->numel; j++)
            ck_assert(te->f32[j] == tval(0, j));
        qmodel_free(m);
        tiny_free(&t);
        return;
    }
    ck_abort_msg("no padding put the data section at 2 mod 4");
}
END_TEST

START_TEST(tiny_qwen2_loads)
{
    struct tiny t;
    tiny_init(&t, "qwen2", NULL);
    kv_str(&t.k, "general.name", "x"); /* duplicate: refused */
    const char *bad = tiny_write(&t, "qwen-dup.gguf");
    assert_open_fails(bad, "key 'general.name' appears twice");
    tiny_free(&t);

    tiny_init(&t, "qwen2", NULL);
    add_tensor(&t, "output.weight", T_F32, TD, TV);
    const char *path = tiny_write(&t, "qwen.gguf");
    struct qmodel *m = load_ok(path, H);
    const struct qllm *l = m->llm;
    ck_assert_int_eq(l->c.arch, QLLM_QWEN2);
    ck_assert_int_eq(l->c.rope, QLLM_ROPE_HALF);
    ck_assert(l->c.rope_theta == 10000.0f); /* the default */
    ck_assert_str_eq(m->tensors[l->layers[1].bk]->name, "blk.1.attn_k.bias");
    ck_assert_int_eq(m->roles[l->layers[1].bk], QROLE_BIAS);
    ck_assert_str_eq(m->tensors[l->output]->name, "output.weight");
    ck_assert_int_ne(l->output, l->token_embd);
    qmodel_free(m);
    tiny_free(&t);
}
END_TEST

START_TEST(config_errors_name_the_key)
{
    struct tiny t;
    tiny_init(&t, "llama", "llama.block_count");
    assert_load_fails(tiny_write(&t, "nolayers.gguf"), H, "key 'llama.block_count' is missing");
    tiny_free(&t);

    tiny_init(&t, "llama", "llama.attention.layer_norm_rms_epsilon");
    assert_load_fails(tiny_write(&t, "noeps.gguf"), H,
                      "key 'llama.attention.layer_norm_rms_epsilon' is missing");
    tiny_free(&t);

    /* head_count_kv defaults to head_count: then attn_k has the wrong shape */
    tiny_init(&t, "llama", "llama.attention.head_count_kv");
    assert_load_fails(tiny_write(&t, "nokv.gguf"), H,
                      "blk.0.attn_k.weight is [4, 8], expected [8, 8]");
    tiny_free(&t);

    tiny_init(&t, "llama", NULL);
    kv_u32(&t.k, "llama.rope.dimension_count", 2);
    assert_open_fails(tiny_write(&t, "dup-rope.gguf"), "appears twice");
    tiny_free(&t);

    tiny_init(&t, "llama", "llama.rope.dimension_count");
    kv_u32(&t.k, "llama.rope.dimension_count", 2);
    assert_load_fails(tiny_write(&t, "partial-rope.gguf"), H, "partial RoPE");
    tiny_free(&t);

    tiny_init(&t, "llama", NULL);
    kv_f32(&t.k, "llama.rope.scaling.factor", 8.0f);
    assert_load_fails(tiny_write(&t, "scaled.gguf"), H, "RoPE scaling");
    tiny_free(&t);

    tiny_init(&t, "llama", "llama.embedding_length");
    kv_u32(&t.k, "llama.embedding_length", 0);
    assert_load_fails(tiny_write(&t, "dim0.gguf"), H, "key 'llama.embedding_length' is 0");
    tiny_free(&t);

    tiny_init(&t, "llama", "general.architecture");
    assert_load_fails(tiny_write(&t, "noarch.gguf"), H, "key 'general.architecture' is missing");
    tiny_free(&t);

    /* a missing tensor */
    tiny_init(&t, "llama", NULL);
    int i = tiny_find(&t, "blk.1.ffn_up.weight");
    struct tspec tmp = t.t[i];
    t.t[i] = t.t[t.n_t - 1];
    t.t[--t.n_t] = tmp;
    assert_load_fails(tiny_write(&t, "noup.gguf"), H, "blk.1.ffn_up.weight is missing");
    t.n_t++;
    tiny_free(&t);
}
END_TEST

START_TEST(unsupported_architecture)
{
    struct tiny t;
    tiny_init(&t, "gpt2", NULL);
    const char *path = tiny_write(&t, "gpt2.gguf");
    char want[1200];
    snprintf(want, sizeof want, "%s: architecture 'gpt2' is not supported (llama, qwen2)", path);
    struct qmodel *m = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_load_gguf(path, H, &m, &err), -1);
    ck_assert_str_eq(err.msg, want);
    tiny_free(&t);
}
END_TEST

START_TEST(undecodable_types)
{
    struct tiny t;
    tiny_init(&t, "llama", NULL);
    int i = tiny_find(&t, "blk.0.attn_q.weight");
    free(t.t[i].data);
    fill_tensor(&t.t[i], i, "blk.0.attn_q.weight", T_IQ2_XXS, 256, 1);
    const char *path = tiny_write(&t, "iq2.gguf");
    assert_load_fails(path, H, "tensor 'blk.0.attn_q.weight' is IQ2_XXS, which qlab cannot "
                      "decode (it decodes F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K");
    assert_load_fails(path, NULL, "is IQ2_XXS, which qlab cannot decode (it decodes F32, F16, "
                      "BF16;");
    tiny_free(&t);

    /* Q8_0 needs the ggml plugin */
    tiny_init(&t, "llama", NULL);
    path = tiny_write(&t, "q8-nohost.gguf");
    assert_load_fails(path, NULL, "tensor 'blk.0.ffn_down.weight' is Q8_0, which qlab cannot "
                      "decode");
    tiny_free(&t);
}
END_TEST

/* A 512-token SPM vocabulary as GGUF llama files write it. */
static void tokenizer_kvs(struct tiny *t, const char *model, int n)
{
    const char **toks = calloc((size_t)n, sizeof *toks);
    char (*buf)[16] = calloc((size_t)n, sizeof *buf);
    float *scores = calloc((size_t)n, sizeof *scores);
    ck_assert(toks && buf && scores);
    for (int i = 0; i < n; i++) {
        if (i == 0)
            snprintf(buf[i], sizeof buf[i], "<unk>");
        else if (i == 1)
            snprintf(buf[i], sizeof buf[i], "<s>");
        else if (i == 2)
            snprintf(buf[i], sizeof buf[i], "</s>");
        else
            snprintf(buf[i], sizeof buf[i], "\xe2\x96\x81w%d", i);
        toks[i] = buf[i];
        scores[i] = (float)-i;
    }
    kv_str(&t->k, "tokenizer.ggml.model", model);
    kv_strs(&t->k, "tokenizer.ggml.tokens", toks, n);
    kv_f32s(&t->k, "tokenizer.ggml.scores", scores, n);
    kv_u32(&t->k, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(&t->k, "tokenizer.ggml.eos_token_id", 2);
    free(toks);
    free(buf);
    free(scores);
}

START_TEST(tokenizer_errors)
{
    struct tiny t;
    tiny_init(&t, "llama", NULL);
    tokenizer_kvs(&t, "bert", TV);
    {
        /* a tokenizer qlab does not implement: the model loads for token-id
         * data and keeps the reason for text data */
        struct qmodel *m = NULL;
        qerr e = {{0}};
        ck_assert_msg(qllm_load_gguf(tiny_write(&t, "bert.gguf"), H, &m, &e) == 0, "%s", e.msg);
        ck_assert_ptr_null(m->llm->tok);
        ck_assert_ptr_nonnull(strstr(m->llm->tok_note, "tokenizer 'bert' (tokenizer.ggml.model) "
                                                       "is not supported (llama, gpt2)"));
        qmodel_free(m);
    }
    tiny_free(&t);

    tiny_init(&t, "llama", NULL);
    tokenizer_kvs(&t, "llama", TV - 1);
    assert_load_fails(tiny_write(&t, "short-vocab.gguf"), H,
                      "tokenizer.ggml.tokens has 31 tokens but token_embd.weight has 32 rows");
    tiny_free(&t);

    tiny_init(&t, "llama", NULL);
    kv_str(&t.k, "tokenizer.ggml.model", "gpt2");
    const char *toks[TV];
    for (int i = 0; i < TV; i++)
        toks[i] = "t";
    kv_strs(&t.k, "tokenizer.ggml.tokens", toks, TV);
    assert_load_fails(tiny_write(&t, "nomerges.gguf"), H, "'tokenizer.ggml.merges' is missing");
    tiny_free(&t);
}
END_TEST

START_TEST(spm_tokenizer_from_gguf)
{
    struct tiny t;
    tiny_init(&t, "llama", NULL);
    tokenizer_kvs(&t, "llama", TV);
    struct qmodel *m = load_ok(tiny_write(&t, "spm.gguf"), H);
    ck_assert_ptr_nonnull(m->llm->tok);
    ck_assert_int_eq(qtok_kind(m->llm->tok), QTOK_SPM);
    ck_assert_int_eq(qtok_vocab_size(m->llm->tok), TV);
    ck_assert_int_eq(qtok_bos(m->llm->tok), 1);
    ck_assert_int_eq(qtok_eos(m->llm->tok), 2);
    qmodel_free(m);
    tiny_free(&t);
}
END_TEST

START_TEST(bpe_tokenizer_from_gguf)
{
    struct tiny t;
    tiny_init(&t, "qwen2", NULL);
    /* a byte-level vocabulary: "a", "b", "ab", then fillers */
    const char *toks[TV];
    char fill[TV][8];
    toks[0] = "a";
    toks[1] = "b";
    toks[2] = "ab";
    for (int i = 3; i < TV; i++) {
        snprintf(fill[i], sizeof fill[i], "%c", 'c' + i);
        toks[i] = fill[i];
    }
    const char *merges[] = {"a b"};
    kv_str(&t.k, "tokenizer.ggml.model", "gpt2");
    kv_str(&t.k, "tokenizer.ggml.pre", "qwen2");
    kv_strs(&t.k, "tokenizer.ggml.tokens", toks, TV);
    kv_strs(&t.k, "tokenizer.ggml.merges", merges, 1);
    kv_u32(&t.k, "tokenizer.ggml.eos_token_id", 5);
    struct qmodel *m = load_ok(tiny_write(&t, "bpe.gguf"), H);
    ck_assert_ptr_nonnull(m->llm->tok);
    ck_assert_int_eq(qtok_kind(m->llm->tok), QTOK_BPE);
    ck_assert_int_eq(qtok_vocab_size(m->llm->tok), TV);
    ck_assert_int_eq(qtok_eos(m->llm->tok), 5);
    qmodel_free(m);
    tiny_free(&t);
}
END_TEST

/* ---- Limits: malformed files --------------------------------------------------------- */

/* A header by hand: magic, version, n_tensors, n_kv, then body. */
static const char *raw_file(const char *name, const char *magic, uint32_t version,
                            uint64_t n_tensors, uint64_t n_kv, const struct gw *body)
{
    struct gw w = {0};
    put(&w, magic, 4);
    put_u32(&w, version);
    put_u64(&w, n_tensors);
    put_u64(&w, n_kv);
    if (body)
        put(&w, body->b, body->n);
    for (int i = 0; i < 1000; i++) /* padding: a 1 KB file */
        put(&w, "", 1);
    const char *path = tu_path(name);
    tu_write_file(path, w.b, w.n);
    free(w.b);
    return path;
}

START_TEST(bad_header)
{
    assert_open_fails(raw_file("magic.gguf", "GGUX", 3, 0, 0, NULL), "not a GGUF file");
    assert_open_fails(raw_file("v1.gguf", "GGUF", 1, 0, 0, NULL),
                      "GGUF version 1 is not supported");
    assert_open_fails(raw_file("v4.gguf", "GGUF", 4, 0, 0, NULL),
                      "GGUF version 4 is not supported");
    assert_open_fails(raw_file("v-be.gguf", "GGUF", 0x03000000, 0, 0, NULL), "big-endian");
    assert_open_fails(raw_file("hugekv.gguf", "GGUF", 3, 0, (uint64_t)1 << 60, NULL),
                      "metadata keys cannot fit");
    assert_open_fails(raw_file("huget.gguf", "GGUF", 3, (uint64_t)1 << 60, 0, NULL),
                      "tensors cannot fit");
    assert_open_fails(raw_file("maxkv.gguf", "GGUF", 3, 0, UINT64_MAX, NULL),
                      "metadata keys cannot fit");
    const char *path = tu_path("empty.gguf");
    tu_write_file(path, "", 0);
    assert_open_fails(path, "empty");
    path = tu_path("short.gguf");
    tu_write_file(path, "GGUF\3\0", 6);
    assert_open_fails(path, "truncated");
}
END_TEST

/* One metadata pair in a hand-built file. */
static const char *one_kv(const char *name, void (*body)(struct gw *))
{
    struct gw b = {0};
    body(&b);
    const char *p = raw_file(name, "GGUF", 3, 0, 1, &b);
    free(b.b);
    return p;
}

static void b_long_string(struct gw *w)
{
    put_str(w, "k");
    put_u32(w, QGGUF_STRING);
    put_u64(w, 1000000);
}

static void b_long_key(struct gw *w)
{
    put_u64(w, (uint64_t)1 << 62);
}

static void b_long_array(struct gw *w)
{
    put_str(w, "k");
    put_u32(w, QGGUF_ARRAY);
    put_u32(w, QGGUF_UINT32);
    put_u64(w, (uint64_t)1 << 40);
}

static void b_long_str_array(struct gw *w)
{
    put_str(w, "k");
    put_u32(w, QGGUF_ARRAY);
    put_u32(w, QGGUF_STRING);
    put_u64(w, (uint64_t)1 << 58);
}

static void b_str_array_bad_elem(struct gw *w)
{
    put_str(w, "k");
    put_u32(w, QGGUF_ARRAY);
    put_u32(w, QGGUF_STRING);
    put_u64(w, 2);
    put_str(w, "ok");
    put_u64(w, 5000);
}

static void b_nested(struct gw *w)
{
    put_str(w, "k");
    put_u32(w, QGGUF_ARRAY);
    put_u32(w, QGGUF_ARRAY);
    put_u64(w, 1);
    put_u32(w, QGGUF_UINT8);
    put_u64(w, 1);
}

static void b_bad_type(struct gw *w)
{
    put_str(w, "k");
    put_u32(w, 13);
}

static void b_bad_elem_type(struct gw *w)
{
    put_str(w, "k");
    put_u32(w, QGGUF_ARRAY);
    put_u32(w, 99);
    put_u64(w, 1);
}

static void b_bad_bool(struct gw *w)
{
    put_str(w, "flag");
    put_u32(w, QGGUF_BOOL);
    put_le(w, 2, 1);
}

static void b_empty_key(struct gw *w)
{
    put_str(w, "");
    put_u32(w, QGGUF_UINT8);
    put_le(w, 1, 1);
}

static void b_control_key(struct gw *w)
{
    put_strn(w, "a\nb", 3);
    put_u32(w, QGGUF_UINT8);
    put_le(w, 1, 1);
}

static void b_align0(struct gw *w)
{
    put_str(w, "general.alignment");
    put_u32(w, QGGUF_UINT32);
    put_u32(w, 0);
}

static void b_align3(struct gw *w)
{
    put_str(w, "general.alignment");
    put_u32(w, QGGUF_UINT32);
    put_u32(w, 3);
}

static void b_align_u64(struct gw *w)
{
    put_str(w, "general.alignment");
    put_u32(w, QGGUF_UINT64);
    put_u64(w, 32);
}

START_TEST(bad_metadata)
{
    assert_open_fails(one_kv("str-long.gguf", b_long_string),
                      "key 'k': string length 1000000 runs past the end");
    assert_open_fails(one_kv("key-long.gguf", b_long_key), "key 0: string length");
    assert_open_fails(one_kv("arr-long.gguf", b_long_array),
                      "key 'k': array of 1099511627776 uint32 runs past the end");
    assert_open_fails(one_kv("sarr-long.gguf", b_long_str_array), "strings runs past the end");
    assert_open_fails(one_kv("sarr-elem.gguf", b_str_array_bad_elem),
                      "key 'k': string 1 of 2 runs past the end");
    assert_open_fails(one_kv("nested.gguf", b_nested), "key 'k': arrays of arrays");
    assert_open_fails(one_kv("vtype.gguf", b_bad_type), "key 'k': unknown value type 13");
    assert_open_fails(one_kv("etype.gguf", b_bad_elem_type), "unknown array element type 99");
    assert_open_fails(one_kv("bool.gguf", b_bad_bool), "key 'flag': bool value 2");
    assert_open_fails(one_kv("emptykey.gguf", b_empty_key), "key 0 is empty");
    assert_open_fails(one_kv("ctlkey.gguf", b_control_key), "control byte 0x0a");
    assert_open_fails(one_kv("align0.gguf", b_align0), "'general.alignment' is 0; it must be a "
                      "power of two");
    assert_open_fails(one_kv("align3.gguf", b_align3), "'general.alignment' is 3");
    assert_open_fails(one_kv("alignu64.gguf", b_align_u64), "must be a uint32");
}
END_TEST

/* A file of the given tensor specs (data zero-filled when not given). */
static const char *tensors_file(const char *name, struct tspec *t, int n)
{
    for (int i = 0; i < n; i++)
        if (!t[i].data && t[i].nbytes)
            t[i].data = calloc(t[i].nbytes, 1);
    struct kvs k = {0};
    const char *p = write_gguf(name, 3, &k, t, n, 32);
    for (int i = 0; i < n; i++)
        free(t[i].data);
    return p;
}

START_TEST(bad_tensor_infos)
{
    struct tspec t[2];
#define ONE(nm, nd, a, b, ty, off, sz)                                                           \
    (memset(t, 0, sizeof t), snprintf(t[0].name, sizeof t[0].name, "%s", nm), t[0].n_dims = nd, \
     t[0].ne[0] = a, t[0].ne[1] = b, t[0].type = ty, t[0].offset = off, t[0].nbytes = sz)
    ONE("w", 0, 4, 1, T_F32, AUTO, 16);
    assert_open_fails(tensors_file("ndim0.gguf", t, 1), "tensor 'w' has 0 dimensions (1 to 4");
    {
        struct gw w = {0};
        put_str(&w, "w");
        put_u32(&w, 5);
        for (int d = 0; d < 5; d++)
            put_u64(&w, 1);
        put_u32(&w, T_F32);
        put_u64(&w, 0);
        assert_open_fails(raw_file("ndim5.gguf", "GGUF", 3, 1, 0, &w),
                          "tensor 'w' has 5 dimensions (1 to 4");
        free(w.b);
    }
    ONE("w", 2, 4, 0, T_F32, AUTO, 16);
    assert_open_fails(tensors_file("dim0.gguf", t, 1), "tensor 'w': dimension 1 is 0");
    ONE("w", 2, (uint64_t)1 << 32, (uint64_t)1 << 32, T_F32, AUTO, 16);
    assert_open_fails(tensors_file("dimovf.gguf", t, 1), "tensor 'w': the dimensions' product "
                      "overflows");
    ONE("w", 2, (uint64_t)1 << 31, (uint64_t)1 << 31, T_F32, AUTO, 16);
    assert_open_fails(tensors_file("bytesovf.gguf", t, 1), "tensor 'w': its byte size overflows");
    ONE("w", 1, 4, 0, 4, AUTO, 16);
    assert_open_fails(tensors_file("type4.gguf", t, 1), "tensor 'w' has unknown ggml type 4");
    ONE("w", 1, 4, 0, 99, AUTO, 16);
    assert_open_fails(tensors_file("type99.gguf", t, 1), "tensor 'w' has unknown ggml type 99");
    ONE("w", 2, 16, 2, T_Q8_0, AUTO, 34);
    assert_open_fails(tensors_file("block.gguf", t, 1), "tensor 'w' is Q8_0 with rows of 16 "
                      "values, not a multiple of its block size 32");
    ONE("w", 1, 4, 0, T_F32, 4, 16);
    assert_open_fails(tensors_file("misalign.gguf", t, 1), "tensor 'w': offset 4 is not a "
                      "multiple of the alignment 32");
    ONE("w", 1, 4, 0, T_F32, 1024, 16);
    t[0].nbytes = 0; /* nothing written there: the data section is empty */
    assert_open_fails(tensors_file("pastend.gguf", t, 1), "tensor 'w': 16 bytes at offset 1024 "
                      "run past the end of the data section (0 bytes)");
    ONE("w", 1, 16, 0, T_F32, 0, 64);
    snprintf(t[1].name, sizeof t[1].name, "v");
    t[1].n_dims = 1;
    t[1].ne[0] = 16;
    t[1].type = T_F32;
    t[1].offset = 32;
    t[1].nbytes = 64;
    assert_open_fails(tensors_file("overlap.gguf", t, 2), "tensors 'w' (bytes 0..64) and 'v' "
                      "(from byte 32) overlap");
    ONE("w", 1, 16, 0, T_F32, AUTO, 64);
    t[1] = t[0];
    t[1].data = NULL;
    assert_open_fails(tensors_file("duptensor.gguf", t, 2), "tensor 'w' appears twice");
    ONE("", 1, 16, 0, T_F32, AUTO, 64);
    memset(t[0].name, 'x', 65);
    assert_open_fails(tensors_file("longname.gguf", t, 1), "is 65 bytes long (at most 64)");
#undef ONE
}
END_TEST

START_TEST(truncated_everywhere)
{
    struct tiny t;
    tiny_init(&t, "llama", NULL);
    size_t size;
    uint8_t *b = gguf_bytes(3, &t.k, t.t, t.n_t, 32, &size);
    tiny_free(&t);
    const char *path = tu_path("trunc.gguf");
    int n = 0;
    for (size_t len = 0; len < size; len += 7, n++) {
        tu_write_file(path, b, len);
        struct qgguf *g = NULL;
        qerr err = {{0}};
        ck_assert_msg(qgguf_open(path, &g, &err) == -1, "a file cut at %zu of %zu opened",
                      len, size);
        ck_assert_ptr_null(g);
        ck_assert_msg(err.msg[0] != 0, "no message at %zu", len);
        struct qmodel *m = NULL;
        ck_assert_int_eq(qllm_load_gguf(path, H, &m, &err), -1);
        ck_assert_ptr_null(m);
    }
    ck_assert_int_gt(n, 100);
    /* the whole file still loads */
    tu_write_file(path, b, size);
    qmodel_free(load_ok(path, H));
    free(b);
}
END_TEST

/* Random byte changes in the header region: every outcome is a clean
 * success or a clean error (ASan watches). */
START_TEST(mutations_never_crash)
{
    struct tiny t;
    tiny_init(&t, "llama", NULL);
    tokenizer_kvs(&t, "llama", TV);
    size_t size;
    uint8_t *b = gguf_bytes(3, &t.k, t.t, t.n_t, 32, &size);
    tiny_free(&t);
    uint8_t *c = malloc(size);
    const char *path = tu_path("mut.gguf");
    uint64_t s = 0x9E3779B97F4A7C15ull;
    int opened = 0;
    for (int iter = 0; iter < 600; iter++) {
        memcpy(c, b, size);
        int flips = 1 + iter % 4;
        for (int f = 0; f < flips; f++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(s >> 33) % (size / 2); /* mostly header */
            c[pos] = (uint8_t)(s >> 13);
        }
        tu_write_file(path, c, size);
        struct qgguf *g = NULL;
        qerr err = {{0}};
        if (qgguf_open(path, &g, &err) == 0) {
            opened++;
            qgguf_close(g);
        } else {
            ck_assert_ptr_null(g);
            ck_assert(err.msg[0] != 0);
        }
        struct qmodel *m = NULL;
        if (qllm_load_gguf(path, H, &m, &err) == 0)
            qmodel_free(m);
    }
    ck_assert_int_gt(opened, 0);
    free(c);
    free(b);
}
END_TEST

/* ---- Real: stories260K as llama.cpp converted it ------------------------------------- */

/* n float32 values of stories260K.bin starting at float index off (after
 * the 7-int32 header). */
static float *bin_floats(const char *bin, size_t nbin, size_t off, size_t n)
{
    ck_assert_uint_le(28 + 4 * (off + n), nbin);
    float *f = malloc(n * sizeof *f);
    memcpy(f, bin + 28 + 4 * off, n * sizeof *f);
    return f;
}

static void assert_same_bits(const struct qtensor *t, const float *want, size_t n)
{
    ck_assert_int_eq(t->numel, (int64_t)n);
    ck_assert_msg(memcmp(t->f32, want, n * sizeof *want) == 0, "%s differs from stories260K.bin",
                  t->name);
}

START_TEST(real_stories260k)
{
    const char *path = tu_shared("gguf/stories260K-f32.gguf");
    struct qmodel *m = load_ok(path, NULL); /* all F32: no plugin needed */
    const struct qllm_config *c = &m->llm->c;
    ck_assert_int_eq(c->arch, QLLM_LLAMA);
    ck_assert_int_eq(c->dim, 64);
    ck_assert_int_eq(c->n_layers, 5);
    ck_assert_int_eq(c->n_heads, 8);
    ck_assert_int_eq(c->n_kv_heads, 4);
    ck_assert_int_eq(c->head_dim, 8);
    ck_assert_int_eq(c->hidden_dim, 172);
    ck_assert_int_eq(c->vocab_size, 512);
    ck_assert_int_eq(c->max_ctx, 128);
    ck_assert(c->norm_eps == 1e-5f);
    ck_assert(c->rope_theta == 10000.0f);
    ck_assert_int_eq(c->rope, QLLM_ROPE_INTERLEAVED);
    ck_assert_int_eq(m->n_tensors, 48);
    ck_assert_str_eq(m->name, "llama");
    for (int i = 0; i < m->n_tensors; i++) {
        ck_assert_str_eq(m->stored_types[i], "F32");
        ck_assert_int_eq(m->stored_bytes[i], m->tensors[i]->numel * 4);
    }
    ck_assert_ptr_nonnull(m->llm->tok);
    ck_assert_int_eq(qtok_kind(m->llm->tok), QTOK_SPM);
    ck_assert_int_eq(qtok_vocab_size(m->llm->tok), 512);
    ck_assert_int_eq(qtok_bos(m->llm->tok), 1);
    ck_assert_int_eq(qtok_eos(m->llm->tok), 2);

    size_t nbin;
    char *bin = tu_read_file(tu_shared("stories260k/stories260K.bin"), &nbin);
    ck_assert_ptr_nonnull(bin);
    /* float offsets of the llama2.c arrays (5 layers, dim 64, kv dim 32, hidden 172) */
    const size_t emb = 0, rms_att = emb + 512 * 64, wq = rms_att + 5 * 64, wk = wq + 5 * 64 * 64,
                 wv = wk + 5 * 32 * 64, wo = wv + 5 * 32 * 64, rms_ffn = wo + 5 * 64 * 64,
                 w1 = rms_ffn + 5 * 64, w2 = w1 + 5 * 172 * 64, w3 = w2 + 5 * 64 * 172,
                 rms_final = w3 + 5 * 172 * 64;
    struct { const char *name; size_t off, n; } cmp[] = {
        {"token_embd.weight", emb, 512 * 64},
        {"output.weight", emb, 512 * 64},
        {"blk.0.attn_q.weight", wq, 64 * 64},
        {"blk.2.attn_k.weight", wk + 2 * 32 * 64, 32 * 64},
        {"blk.3.attn_v.weight", wv + 3 * 32 * 64, 32 * 64},
        {"blk.1.attn_output.weight", wo + 64 * 64, 64 * 64},
        {"blk.4.attn_norm.weight", rms_att + 4 * 64, 64},
        {"blk.0.ffn_norm.weight", rms_ffn, 64},
        {"blk.2.ffn_gate.weight", w1 + 2 * 172 * 64, 172 * 64},
        {"blk.4.ffn_down.weight", w2 + 4 * 64 * 172, 64 * 172},
        {"blk.1.ffn_up.weight", w3 + 172 * 64, 172 * 64},
        {"output_norm.weight", rms_final, 64},
    };
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        float *want = bin_floats(bin, nbin, cmp[i].off, cmp[i].n);
        assert_same_bits(tensor(m, cmp[i].name), want, cmp[i].n);
        free(want);
    }
    const struct qtensor *down = tensor(m, "blk.4.ffn_down.weight");
    ck_assert_int_eq(down->shape[0], 64);
    ck_assert_int_eq(down->shape[1], 172);
    free(bin);
    qmodel_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("Core");
    tcase_add_checked_fixture(tc, host_setup, host_teardown);
    tcase_add_test(tc, type_table_matches_ggml);
    tcase_add_test(tc, every_value_type_round_trips);
    tcase_add_test(tc, version_2_and_custom_alignment);
    tcase_add_test(tc, tiny_llama_loads);
    tcase_add_test(tc, misaligned_f32_is_copied);
    tcase_add_test(tc, tiny_qwen2_loads);
    tcase_add_test(tc, config_errors_name_the_key);
    tcase_add_test(tc, unsupported_architecture);
    tcase_add_test(tc, undecodable_types);
    tcase_add_test(tc, tokenizer_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("Tokenizer");
    tcase_add_checked_fixture(tc, host_setup, host_teardown);
    tcase_add_test(tc, spm_tokenizer_from_gguf);
    tcase_add_test(tc, bpe_tokenizer_from_gguf);
    suite_add_tcase(s, tc);
    tc = tcase_create("Limits");
    tcase_add_checked_fixture(tc, host_setup, host_teardown);
    tcase_set_timeout(tc, 120); /* hundreds of files; slow under ASan */
    tcase_add_test(tc, bad_header);
    tcase_add_test(tc, bad_metadata);
    tcase_add_test(tc, bad_tensor_infos);
    tcase_add_test(tc, truncated_everywhere);
    tcase_add_test(tc, mutations_never_crash);
    suite_add_tcase(s, tc);
    tc = tcase_create("RealStories260K");
    tcase_add_test(tc, real_stories260k);
    static const char *const real[] = {"gguf/stories260K-f32.gguf",
                                       "stories260k/stories260K.bin"};
    tu_add_if_shared(s, tc, real, 2);
    return tu_run(s);
}
