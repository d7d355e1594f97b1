/* llm_gguf.c — loads llama and qwen2 language models from GGUF files: configuration, tensors (decoded to float32), tokenizer. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "llm.h"
#include "llm_load.h"
#include "plugin_host.h"
#include "tokenizer.h"

#define GGML_F32 0u
#define GGML_F16 1u
#define GGML_BF16 30u
#define N_GGML_IDS 64u          /* ids below this get a decoder slot */

/* Limits on the configuration: above any released model, low enough that
 * products of them stay far inside int64. */
#define MAX_DIM (1 << 20)
#define MAX_LAYERS 4096
#define MAX_HEADS 4096
#define MAX_CTX (1 << 30)
#define MAX_VOCAB (1 << 24)

/* ---- loader context ---------------------------------------------------------- */

struct ld {
    const char *path;
    struct qgguf *g;
    const char *arch;                               /* "llama" or "qwen2" */
    const struct qplugin_host *host;
    struct qscheme_config *dec[N_GGML_IDS];         /* decoders, configured on first use */
    qerr *err;
};

static void ld_clear(struct ld *L)
{
    for (unsigned i = 0; i < N_GGML_IDS; i++)
        qscheme_config_free(L->dec[i]);
    qgguf_close(L->g);
}

/* ---- metadata ----------------------------------------------------------------- */

/* "llama.block_count" from "block_count". */
static void arch_key(const struct ld *L, const char *suffix, char *buf, size_t size)
{
    snprintf(buf, size, "%s.%s", L->arch, suffix);
}

/* An integer key ARCH.suffix in [lo, hi]; dflt when absent and not required. */
static int key_int(struct ld *L, const char *suffix, int required, int dflt, int lo, int hi,
                   int *out)
{
    char key[128];
    arch_key(L, suffix, key, sizeof key);
    if (!required && !qgguf_find(L->g, key)) {
        *out = dflt;
        return 0;
    }
    uint64_t v;
    if (qgguf_get_u64(L->g, key, &v, L->err) != 0)
        return -1;
    if (v < (uint64_t)lo || v > (uint64_t)hi)
        return qerr_set(L->err, "%s: key '%s' is %" PRIu64 " (expected %d to %d)", L->path, key,
                        v, lo, hi);
    *out = (int)v;
    return 0;
}

static int key_float(struct ld *L, const char *suffix, int required, double dflt, double lo,
                     double hi, float *out)
{
    char key[128];
    arch_key(L, suffix, key, sizeof key);
    double v = dflt;
    if ((required || qgguf_find(L->g, key)) && qgguf_get_f64(L->g, key, &v, L->err) != 0)
        return -1;
    if (!(v > lo && v <= hi)) /* also refuses NaN */
        return qerr_set(L->err, "%s: key '%s' is %g (expected more than %g and at most %g)",
                        L->path, key, v, lo, hi);
    *out = (float)v;
    return 0;
}

/* A metadata string as a printable C string, for messages and names. */
static char *printable(const struct qgguf_str *s, size_t max)
{
    size_t n = s->len < max ? (size_t)s->len : max;
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s->s[i];
        p[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    p[n] = 0;
    return p;
}

static int str_is(const struct qgguf_str *s, const char *lit)
{
    return s->len == strlen(lit) && memcmp(s->s, lit, s->len) == 0;
}

static int read_arch(struct ld *L, enum qllm_arch *arch)
{
    struct qgguf_str s;
    if (qgguf_get_str(L->g, "general.architecture", &s, L->err) != 0)
        return -1;
    if (str_is(&s, "llama")) {
        L->arch = "llama";
        *arch = QLLM_LLAMA;
        return 0;
    }
    if (str_is(&s, "qwen2")) {
        L->arch = "qwen2";
        *arch = QLLM_QWEN2;
        return 0;
    }
    char *p = printable(&s, 64);
    qerr_set(L->err, "%s: architecture '%s' is not supported (llama, qwen2)", L->path,
             p ? p : "?");
    free(p);
    return -1;
}

/* RoPE scaling changes every position's rotation; the forward pass does
 * not implement it, so a scaled model is refused rather than run wrong.
 * A factor of 0 or 1 (llama.cpp's "none") is fine whatever the type. */
static int check_rope_scaling(struct ld *L)
{
    static const char *const factor_keys[] = {"rope.scaling.factor", "rope.scale_linear"};
    for (size_t i = 0; i < sizeof factor_keys / sizeof *factor_keys; i++) {
        char key[128];
        double f;
        arch_key(L, factor_keys[i], key, sizeof key);
        if (!qgguf_find(L->g, key))
            continue;
        if (qgguf_get_f64(L->g, key, &f, L->err) != 0)
            return -1;
        if (f != 0.0 && f != 1.0)
            return qerr_set(L->err, "%s: RoPE scaling (key '%s' = %g) is not supported", L->path,
                            key, f);
    }
    if (qgguf_find_tensor(L->g, "rope_freqs.weight"))
        return qerr_set(L->err, "%s: tensor 'rope_freqs.weight' (Llama 3.1-style RoPE frequency "
                        "factors) is not supported", L->path);
    return 0;
}

static int read_config(struct ld *L, struct qllm_config *c)
{
    if (read_arch(L, &c->arch) != 0)
        return -1;
    c->rope = c->arch == QLLM_QWEN2 ? QLLM_ROPE_HALF : QLLM_ROPE_INTERLEAVED;
    int experts = 0;
    if (key_int(L, "embedding_length", 1, 0, 1, MAX_DIM, &c->dim) != 0 ||
        key_int(L, "feed_forward_length", 1, 0, 1, MAX_DIM, &c->hidden_dim) != 0 ||
        key_int(L, "block_count", 1, 0, 1, MAX_LAYERS, &c->n_layers) != 0 ||
        key_int(L, "attention.head_count", 1, 0, 1, MAX_HEADS, &c->n_heads) != 0 ||
        key_int(L, "attention.head_count_kv", 0, c->n_heads, 1, MAX_HEADS, &c->n_kv_heads) != 0 ||
        key_int(L, "context_length", 1, 0, 1, MAX_CTX, &c->max_ctx) != 0 ||
        key_int(L, "expert_count", 0, 0, 0, INT32_MAX, &experts) != 0 ||
        key_float(L, "attention.layer_norm_rms_epsilon", 1, 0, 0.0, 1.0, &c->norm_eps) != 0 ||
        key_float(L, "rope.freq_base", 0, 10000.0, 0.0, 1e30, &c->rope_theta) != 0)
        return -1;
    if (experts > 0)
        return qerr_set(L->err, "%s: %s.expert_count is %d: mixture-of-experts models are not "
                        "supported", L->path, L->arch, experts);
    if (c->n_heads % c->n_kv_heads != 0)
        return qerr_set(L->err, "%s: %d attention heads cannot be grouped over %d key/value "
                        "heads", L->path, c->n_heads, c->n_kv_heads);
    /* head size: attention.key_length when given, else dim / heads (llama.cpp's rule) */
    int dflt_hd = c->dim % c->n_heads == 0 ? c->dim / c->n_heads : 0;
    int v_len, rope_dims;
    if (key_int(L, "attention.key_length", 0, dflt_hd, 1, MAX_DIM, &c->head_dim) != 0)
        return -1;
    if (c->head_dim == 0)
        return qerr_set(L->err, "%s: embedding_length %d is not a multiple of head_count %d and "
                        "%s.attention.key_length is absent", L->path, c->dim, c->n_heads, L->arch);
    if (key_int(L, "attention.value_length", 0, c->head_dim, 1, MAX_DIM, &v_len) != 0 ||
        key_int(L, "rope.dimension_count", 0, c->head_dim, 1, MAX_DIM, &rope_dims) != 0)
        return -1;
    if (v_len != c->head_dim)
        return qerr_set(L->err, "%s: value heads of %d and key heads of %d values: different "
                        "sizes are not supported", L->path, v_len, c->head_dim);
    if (rope_dims != c->head_dim)
        return qerr_set(L->err, "%s: %s.rope.dimension_count is %d but heads have %d values: "
                        "partial RoPE is not supported", L->path, L->arch, rope_dims, c->head_dim);
    return check_rope_scaling(L);
}

/* ---- tensors ------------------------------------------------------------------- */

/* The list of types this load can decode, for the message that refuses one. */
static void decodable_list(const struct ld *L, char *buf, size_t size)
{
    size_t o = (size_t)snprintf(buf, size, "F32, F16, BF16");
    int n = 0;
    for (uint32_t id = 0; id < N_GGML_IDS && o < size; id++) {
        const struct qggml_type *ty = qggml_type(id);
        if (!ty || id == GGML_F32 || id == GGML_F16 || id == GGML_BF16 || !L->host)
            continue;
        int found = 0;
        for (int p = 0; p < L->host->n_plugins && !found; p++) {
            const struct qlab_plugin *d = L->host->plugins[p]->desc;
            for (uint32_t s = 0; s < d->n_schemes && !found; s++) {
                uint32_t t;
                found = qscheme_gguf_type(d->schemes[s], &t) && t == id &&
                        qscheme_can_unpack(d->schemes[s]);
            }
        }
        if (found) {
            o += (size_t)snprintf(buf + o, size - o, ", %s", ty->name);
            n++;
        }
    }
    if (n == 0 && o < size)
        snprintf(buf + o, size - o, "; no plugin that decodes ggml block types is loaded");
}

static int refuse_type(struct ld *L, const struct qgguf_tensor *gt)
{
    char list[400];
    decodable_list(L, list, sizeof list);
    return qerr_set(L->err, "%s: tensor '%s' is %s, which qlab cannot decode (it decodes %s)",
                    L->path, gt->name, qggml_type(gt->type)->name, list);
}

/* The configured scheme that decodes ggml type id, or NULL. */
static struct qscheme_config *decoder(struct ld *L, uint32_t id)
{
    if (id >= N_GGML_IDS || !L->host)
        return NULL;
    if (L->dec[id])
        return L->dec[id];
    for (int p = 0; p < L->host->n_plugins; p++) {
        const struct qplugin *pl = L->host->plugins[p];
        for (uint32_t s = 0; s < pl->desc->n_schemes; s++) {
            const struct qlab_scheme *sc = pl->desc->schemes[s];
            uint32_t t;
            if (!qscheme_gguf_type(sc, &t) || t != id || !qscheme_can_unpack(sc))
                continue;
            struct qscheme_ref ref = {pl, sc};
            qerr e;
            if (qscheme_configure(&ref, NULL, &L->dec[id], &e) == 0)
                return L->dec[id];
        }
    }
    return NULL;
}

static int decode_blocks(struct ld *L, const struct qgguf_tensor *gt, struct qtensor *t)
{
    struct qscheme_config *c = decoder(L, gt->type);
    if (!c)
        return refuse_type(L, gt);
    if ((uint64_t)t->numel > SIZE_MAX / sizeof(float))
        return qerr_set(L->err, "%s: tensor '%s' is too large", L->path, gt->name);
    float *buf = malloc((size_t)t->numel * sizeof *buf);
    if (!buf)
        return qerr_set(L->err, "%s: tensor '%s': out of memory for %" PRId64 " floats", L->path,
                        gt->name, t->numel);
    int64_t cols = (int64_t)gt->ne[0];
    if (qscheme_unpack(c, gt->data, (int64_t)gt->nbytes, t->numel / cols, cols, buf,
                       L->err) != 0) {
        free(buf);
        return qerr_prefix(L->err, "%s: tensor '%s'", L->path, gt->name);
    }
    t->dtype = QDT_F32;
    t->data = buf;
    t->nbytes = (size_t)t->numel * sizeof *buf;
    t->f32 = t->f32_owned = buf;
    return 0;
}

/* One GGUF tensor into t: shape reversed to [out, in], float32 view made. */
static int load_tensor(struct ld *L, const struct qgguf_tensor *gt, struct qtensor *t)
{
    t->name = strdup(gt->name);
    if (!t->name)
        return qerr_set(L->err, "%s: out of memory", L->path);
    t->ndim = (int)gt->n_dims;
    t->numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        t->shape[d] = (int64_t)gt->ne[t->ndim - 1 - d];
        t->numel *= t->shape[d];   /* the reader checked the product */
    }
    switch (gt->type) {
    case GGML_F32: t->dtype = QDT_F32; break;
    case GGML_F16: t->dtype = QDT_F16; break;
    case GGML_BF16: t->dtype = QDT_BF16; break;
    default: return decode_blocks(L, gt, t);
    }
    t->data = gt->data;
    t->nbytes = (size_t)gt->nbytes;
    if (qtensor_make_f32(t, L->err) != 0)
        return qerr_prefix(L->err, "%s", L->path);
    return 0;
}

/* ---- tensor roles and the per-layer indices --------------------------------------- */

struct slot {
    const char *suffix;
    size_t off;                 /* of the int in struct qllm_layer */
    enum qrole role;
};

static const struct slot layer_slots[] = {
    {"attn_norm.weight", offsetof(struct qllm_layer, attn_norm), QROLE_NORM},
    {"attn_q.weight", offsetof(struct qllm_layer, wq), QROLE_WEIGHT},
    {"attn_k.weight", offsetof(struct qllm_layer, wk), QROLE_WEIGHT},
    {"attn_v.weight", offsetof(struct qllm_layer, wv), QROLE_WEIGHT},
    {"attn_output.weight", offsetof(struct qllm_layer, wo), QROLE_WEIGHT},
    {"attn_q.bias", offsetof(struct qllm_layer, bq), QROLE_BIAS},
    {"attn_k.bias", offsetof(struct qllm_layer, bk), QROLE_BIAS},
    {"attn_v.bias", offsetof(struct qllm_layer, bv), QROLE_BIAS},
    {"ffn_norm.weight", offsetof(struct qllm_layer, ffn_norm), QROLE_NORM},
    {"ffn_gate.weight", offsetof(struct qllm_layer, w_gate), QROLE_WEIGHT},
    {"ffn_up.weight", offsetof(struct qllm_layer, w_up), QROLE_WEIGHT},
    {"ffn_down.weight", offsetof(struct qllm_layer, w_down), QROLE_WEIGHT},
};

/* Records tensor i under its name's slot; names qlab does not use stay
 * QROLE_OTHER. */
static int assign_slot(struct ld *L, struct qmodel *m, int i)
{
    const char *name = m->tensors[i]->name;
    struct qllm *l = m->llm;
    if (strcmp(name, "token_embd.weight") == 0) {
        l->token_embd = i;
        m->roles[i] = QROLE_WEIGHT;
    } else if (strcmp(name, "output_norm.weight") == 0) {
        l->output_norm = i;
        m->roles[i] = QROLE_NORM;
    } else if (strcmp(name, "output.weight") == 0) {
        l->output = i;
        m->roles[i] = QROLE_WEIGHT;
    } else if (strncmp(name, "blk.", 4) == 0 && name[4] >= '0' && name[4] <= '9') {
        char *end;
        long b = strtol(name + 4, &end, 10);
        if (*end != '.')
            return 0;
        for (size_t s = 0; s < sizeof layer_slots / sizeof *layer_slots; s++) {
            if (strcmp(end + 1, layer_slots[s].suffix) != 0)
                continue;
            if (b >= l->c.n_layers)
                return qerr_set(L->err, "%s: tensor '%s' is for block %ld but %s.block_count is "
                                "%d", L->path, name, b, L->arch, l->c.n_layers);
            *(int *)((char *)&l->layers[b] + layer_slots[s].off) = i;
            m->roles[i] = layer_slots[s].role;
        }
    }
    return 0;
}

/* ---- tokenizer ------------------------------------------------------------------------ */

/* A string array key with exactly n entries; NULL (no error) when absent. */
static int str_array(struct ld *L, const char *key, int64_t n, const struct qgguf_kv **out)
{
    const struct qgguf_kv *kv = qgguf_find(L->g, key);
    *out = NULL;
    if (!kv)
        return 0;
    if (kv->v.type != QGGUF_ARRAY || kv->v.arr.type != QGGUF_STRING)
        return qerr_set(L->err, "%s: key '%s' is not an array of strings", L->path, key);
    if (n >= 0 && kv->v.arr.n != (uint64_t)n)
        return qerr_set(L->err, "%s: key '%s' has %" PRIu64 " entries, expected %" PRId64,
                        L->path, key, kv->v.arr.n, n);
    *out = kv;
    return 0;
}

/* A token id key: absent, negative or out of range (0xFFFFFFFF means
 * "none" in GGUF files) gives dflt, as llama.cpp does. */
static int token_id(const struct ld *L, const char *key, int n, int dflt)
{
    const struct qgguf_kv *kv = qgguf_find(L->g, key);
    int64_t v = -1;
    if (kv && (kv->v.type == QGGUF_UINT8 || kv->v.type == QGGUF_UINT16 ||
               kv->v.type == QGGUF_UINT32 || kv->v.type == QGGUF_UINT64))
        v = kv->v.u <= INT32_MAX ? (int64_t)kv->v.u : -1;
    else if (kv && (kv->v.type == QGGUF_INT8 || kv->v.type == QGGUF_INT16 ||
                    kv->v.type == QGGUF_INT32 || kv->v.type == QGGUF_INT64))
        v = kv->v.i;
    if (v < 0 || v >= n)
        return dflt < n ? dflt : -1;
    return (int)v;
}

static int key_bool(const struct ld *L, const char *key, int dflt)
{
    const struct qgguf_kv *kv = qgguf_find(L->g, key);
    return kv && kv->v.type == QGGUF_BOOL ? (int)kv->v.u : dflt;
}

static int has_space_marker(const struct qgguf_str *s, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (s[i].len >= 3 && memmem(s[i].s, (size_t)s[i].len, "\xe2\x96\x81", 3))
            return 1;
    return 0;
}

static int build_spm(struct ld *L, const struct qtok_vocab *v0, const struct qgguf_kv *toks,
                     struct qtokenizer **out)
{
    struct qtok_vocab v = *v0;
    const struct qgguf_kv *sk = qgguf_find(L->g, "tokenizer.ggml.scores");
    float *scores = calloc((size_t)v.n, sizeof *scores);
    if (!scores)
        return qerr_set(L->err, "%s: out of memory", L->path);
    if (sk) {
        if (sk->v.type != QGGUF_ARRAY || sk->v.arr.type != QGGUF_FLOAT32 ||
            sk->v.arr.n != (uint64_t)v.n) {
            free(scores);
            return qerr_set(L->err, "%s: key 'tokenizer.ggml.scores' must be %d float32 values",
                            L->path, v.n);
        }
        for (int i = 0; i < v.n; i++) {
            const uint8_t *p = sk->v.arr.data + 4 * (size_t)i;
            uint32_t b = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            memcpy(&scores[i], &b, sizeof b);
        }
    }
    v.scores = scores;
    v.unk = token_id(L, "tokenizer.ggml.unknown_token_id", v.n, 0);
    v.bos = token_id(L, "tokenizer.ggml.bos_token_id", v.n, 1);
    v.eos = token_id(L, "tokenizer.ggml.eos_token_id", v.n, 2);
    int marker = has_space_marker(toks->v.arr.strs, v.n);
    int prefix = key_bool(L, "tokenizer.ggml.add_space_prefix", 1);
    int rc = qtok_new_spm(&v, marker, prefix, out, L->err);
    free(scores);
    return rc;
}

static int build_bpe(struct ld *L, const struct qtok_vocab *v0, struct qtokenizer **out)
{
    struct qtok_vocab v = *v0;
    const struct qgguf_kv *mk;
    if (str_array(L, "tokenizer.ggml.merges", -1, &mk) != 0)
        return -1;
    if (!mk)
        return qerr_set(L->err, "%s: key 'tokenizer.ggml.merges' is missing (a gpt2 tokenizer "
                        "needs its merges)", L->path);
    if (mk->v.arr.n > INT32_MAX)
        return qerr_set(L->err, "%s: too many merges", L->path);
    int n = (int)mk->v.arr.n;
    char **merges = calloc((size_t)(n ? n : 1), sizeof *merges);
    int rc = merges ? 0 : qerr_set(L->err, "%s: out of memory", L->path);
    for (int i = 0; i < n && rc == 0; i++) {
        const struct qgguf_str *s = &mk->v.arr.strs[i];
        if (memchr(s->s, 0, (size_t)s->len))
            rc = qerr_set(L->err, "%s: merge %d contains a NUL byte", L->path, i);
        else if (!(merges[i] = strndup(s->s, (size_t)s->len)))
            rc = qerr_set(L->err, "%s: out of memory", L->path);
    }
    if (rc == 0) {
        enum qtok_pre pre = QTOK_PRE_GPT2;
        const struct qgguf_kv *pk = qgguf_find(L->g, "tokenizer.ggml.pre");
        if (pk && pk->v.type == QGGUF_STRING && str_is(&pk->v.str, "llama-bpe"))
            pre = QTOK_PRE_LLAMA3;
        else if (pk && pk->v.type == QGGUF_STRING && str_is(&pk->v.str, "qwen2"))
            pre = QTOK_PRE_QWEN2;
        v.scores = NULL;
        v.unk = token_id(L, "tokenizer.ggml.unknown_token_id", v.n, -1);
        v.bos = token_id(L, "tokenizer.ggml.bos_token_id", v.n, -1);
        v.eos = token_id(L, "tokenizer.ggml.eos_token_id", v.n, -1);
        rc = qtok_new_bpe(&v, (const char *const *)merges, n, pre, out, L->err);
    }
    for (int i = 0; merges && i < n; i++)
        free(merges[i]);
    free(merges);
    return rc;
}

/* tokenizer.ggml.*: "llama" (SentencePiece) or "gpt2" (byte-level BPE);
 * none at all leaves the model without a tokenizer. */
static int load_tokenizer(struct ld *L, int vocab, struct qtokenizer **out)
{
    *out = NULL;
    const struct qgguf_kv *mk = qgguf_find(L->g, "tokenizer.ggml.model");
    if (!mk)
        return 0;
    if (mk->v.type != QGGUF_STRING)
        return qerr_set(L->err, "%s: key 'tokenizer.ggml.model' is not a string", L->path);
    const struct qgguf_str *model = &mk->v.str;
    if (str_is(model, "none") || str_is(model, "no_vocab"))
        return 0;
    int spm = str_is(model, "llama"), bpe = str_is(model, "gpt2");
    if (!spm && !bpe) {
        char *p = printable(model, 64);
        qerr_set(L->err, "%s: tokenizer '%s' (tokenizer.ggml.model) is not supported (llama, "
                 "gpt2)", L->path, p ? p : "?");
        free(p);
        return -1;
    }
    const struct qgguf_kv *toks;
    if (str_array(L, "tokenizer.ggml.tokens", -1, &toks) != 0)
        return -1;
    if (!toks)
        return qerr_set(L->err, "%s: key 'tokenizer.ggml.tokens' is missing", L->path);
    if (toks->v.arr.n != (uint64_t)vocab)
        return qerr_set(L->err, "%s: tokenizer.ggml.tokens has %" PRIu64 " tokens but "
                        "token_embd.weight has %d rows", L->path, toks->v.arr.n, vocab);
    const char **pieces = malloc((size_t)vocab * sizeof *pieces);
    size_t *lengths = malloc((size_t)vocab * sizeof *lengths);
    int rc = pieces && lengths ? 0 : qerr_set(L->err, "%s: out of memory", L->path);
    for (int i = 0; i < vocab && rc == 0; i++) {
        const struct qgguf_str *s = &toks->v.arr.strs[i];
        if (memchr(s->s, 0, (size_t)s->len))
            rc = qerr_set(L->err, "%s: token %d contains a NUL byte", L->path, i);
        pieces[i] = s->s;
        lengths[i] = (size_t)s->len;
    }
    if (rc == 0) {
        struct qtok_vocab v = {.n = vocab, .pieces = pieces, .lengths = lengths,
                               .bos = -1, .eos = -1, .unk = -1};
        rc = spm ? build_spm(L, &v, toks, out) : build_bpe(L, &v, out);
        if (rc != 0 && strncmp(L->err ? L->err->msg : "", L->path, strlen(L->path)) != 0)
            qerr_prefix(L->err, "%s", L->path);
        /* llama.cpp's add_bos: the model's own say, else the kind's default */
        const struct qgguf_kv *ab = qgguf_find(L->g, "tokenizer.ggml.add_bos_token");
        if (rc == 0 && ab && ab->v.type == QGGUF_BOOL)
            qtok_set_add_bos(*out, ab->v.u != 0);
    }
    free(pieces);
    free(lengths);
    return rc;
}

/* ---- the model ---------------------------------------------------------------------------- */

/* general.name, else the file name without its folder and ".gguf". */
static char *model_name(const struct ld *L)
{
    const struct qgguf_kv *kv = qgguf_find(L->g, "general.name");
    if (kv && kv->v.type == QGGUF_STRING && kv->v.str.len > 0)
        return printable(&kv->v.str, 200);
    const char *base = strrchr(L->path, '/');
    base = base ? base + 1 : L->path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    return strndup(base, n);
}

/* Everything the model owns, allocated empty so qmodel_free can undo a
 * half-built model at any point. */
static int alloc_model(struct ld *L, struct qmodel *m, int n)
{
    m->kind = QMODEL_LM;
    m->path = strdup(L->path);
    m->format = strdup("gguf");
    m->name = model_name(L);
    m->extra_files = calloc(1, sizeof *m->extra_files);
    if (m->extra_files && (m->extra_files[0] = strdup(L->path)))
        m->n_extra_files = 1;
    size_t k = (size_t)(n ? n : 1);
    m->owned = calloc(k, sizeof *m->owned);
    m->tensors = calloc(k, sizeof *m->tensors);
    m->roles = calloc(k, sizeof *m->roles);
    m->tensor_node = malloc(k * sizeof *m->tensor_node);
    m->stored_types = calloc(k, sizeof *m->stored_types);
    m->stored_bytes = calloc(k, sizeof *m->stored_bytes);
    if (!m->path || !m->format || !m->name || m->n_extra_files != 1 || !m->owned ||
        !m->tensors || !m->roles || !m->tensor_node || !m->stored_types || !m->stored_bytes)
        return qerr_set(L->err, "%s: out of memory", L->path);
    m->n_owned = m->n_tensors = n;
    for (int i = 0; i < n; i++) {
        m->tensors[i] = &m->owned[i];
        m->tensor_node[i] = -1;
    }
    m->output = -1;
    return 0;
}

static int load_tensors(struct ld *L, struct qmodel *m)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const struct qgguf_tensor *gt = &L->g->tensors[i];
        if (load_tensor(L, gt, &m->owned[i]) != 0)
            return -1;
        m->stored_types[i] = strdup(qggml_type(gt->type)->name);
        if (!m->stored_types[i])
            return qerr_set(L->err, "%s: out of memory", L->path);
        m->stored_bytes[i] = (int64_t)gt->nbytes;
        if (assign_slot(L, m, i) != 0)
            return -1;
    }
    return 0;
}

static int build(struct ld *L, struct qmodel *m)
{
    struct qllm_config c = {0};
    if (read_config(L, &c) != 0)
        return -1;
    if (L->g->n_tensors > INT32_MAX)
        return qerr_set(L->err, "%s: too many tensors", L->path);
    if (alloc_model(L, m, (int)L->g->n_tensors) != 0)
        return -1;
    if (!(m->llm = qllm_new(c.n_layers)))
        return qerr_set(L->err, "%s: out of memory", L->path);
    m->llm->c = c;
    if (load_tensors(L, m) != 0)
        return -1;
    struct qllm *l = m->llm;
    if (l->token_embd < 0)
        return qerr_set(L->err, "%s: tensor 'token_embd.weight' is missing", L->path);
    const struct qtensor *te = m->tensors[l->token_embd];
    if (te->ndim != 2 || te->shape[0] > MAX_VOCAB)
        return qerr_set(L->err, "%s: tensor 'token_embd.weight' is not a [vocab, dim] matrix of "
                        "at most %d rows", L->path, MAX_VOCAB);
    l->c.vocab_size = (int)te->shape[0];
    if (l->output < 0)
        l->output = l->token_embd;   /* tied */
    if (load_tokenizer(L, l->c.vocab_size, &l->tok) != 0) {
        /* a tokenizer qlab does not implement: the model still serves
         * token-id data, and text data gets this reason */
        if (!strstr(L->err->msg, "is not supported") || !(l->tok_note = strdup(L->err->msg)))
            return -1;
    }
    qgguf_take_map(L->g, &m->map, &m->map_size);
    return qllm_validate(m, L->err);
}

int qllm_load_gguf(const char *path, const struct qplugin_host *host, struct qmodel **out,
                   qerr *err)
{
    *out = NULL;
    struct ld L = {.path = path, .host = host, .err = err};
    if (qgguf_open(path, &L.g, err) != 0)
        return -1;
    struct qmodel *m = calloc(1, sizeof *m);
    if (!m) {
        ld_clear(&L);
        return qerr_set(err, "%s: out of memory", path);
    }
    int rc = build(&L, m);
    ld_clear(&L);
    if (rc != 0) {
        qmodel_free(m);
        return -1;
    }
    *out = m;
    return 0;
}
