/* check_hf.c — Hugging Face folders built from stories260K: config, shards, F16, tokenizer.json, and malformed folders. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant/fsutil.h"
#include "quant/llm.h"
#include "quant/llm_load.h"
#include "quant/model.h"
#include "quant/safetensors.h"
#include "quant/tokenizer.h"
#include "test_util.h"

#define STORIES "stories260k/stories260K.bin"
#define TOK512 "stories260k/tok512.bin"
#define EVAL32K "tinystories/eval-32k.txt"
#define SPACE_MARK "\xe2\x96\x81"

/* ---- stories260K, read by the offsets of its legacy header ------------------ */

struct stories {
    int dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len;
    float *all;                 /* every float after the header */
    const float *emb;           /* [vocab][dim] */
    const float *rms_att;       /* [layers][dim] */
    const float *wq, *wk, *wv, *wo; /* [layers][dim][dim], [layers][kv_dim][dim] x2, [layers][dim][dim] */
    const float *rms_ffn;       /* [layers][dim] */
    const float *w1, *w2, *w3;  /* [layers][hidden][dim], [layers][dim][hidden], [layers][hidden][dim] */
    const float *rms_final;     /* [dim] */
};

static struct stories S;

static void stories_load(void)
{
    size_t n;
    char *buf = tu_read_file(tu_shared(STORIES), &n);
    ck_assert_uint_eq(n, 1056540);
    int32_t h[7];
    memcpy(h, buf, sizeof h);
    S = (struct stories){.dim = h[0], .hidden = h[1], .n_layers = h[2], .n_heads = h[3],
                         .n_kv = h[4], .vocab = h[5], .seq_len = h[6]};
    ck_assert_int_eq(S.dim, 64);
    ck_assert_int_eq(S.n_kv, 4);
    S.all = malloc(n - 28);
    memcpy(S.all, buf + 28, n - 28);
    free(buf);
    int64_t d = S.dim, L = S.n_layers, hid = S.hidden, kvd = S.dim / S.n_heads * S.n_kv;
    const float *p = S.all;
    S.emb = p;      p += S.vocab * d;
    S.rms_att = p;  p += L * d;
    S.wq = p;       p += L * d * d;
    S.wk = p;       p += L * kvd * d;
    S.wv = p;       p += L * kvd * d;
    S.wo = p;       p += L * d * d;
    S.rms_ffn = p;  p += L * d;
    S.w1 = p;       p += L * hid * d;
    S.w2 = p;       p += L * d * hid;
    S.w3 = p;       p += L * hid * d;
    S.rms_final = p;
}

static void stories_free(void)
{
    free(S.all);
    S.all = NULL;
}

/* transformers' convert_llama_weights_to_hf.py permute(): llama2.c rotates
 * rows (2i, 2i+1) of a head, HF rows (i, i + hd/2); w.view(heads, hd/2, 2,
 * cols).transpose(1, 2) puts row h*hd + 2i + j at h*hd + j*hd/2 + i. */
static float *permute_rows(const float *w, int n_heads, int rows, int cols)
{
    float *out = malloc((size_t)rows * cols * sizeof *out);
    int hd = rows / n_heads, half = hd / 2;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(out + ((size_t)h * hd + j * half + i) * cols,
                       w + ((size_t)h * hd + 2 * i + j) * cols, (size_t)cols * sizeof *out);
    return out;
}

/* ---- building Hugging Face folders ---------------------------------------- */

enum tok_style {
    TOK_NONE = 0,
    TOK_LEGACY,     /* Prepend + Replace normalizer, merges as "a b" (tokenizers < 0.19) */
    TOK_METASPACE,  /* Metaspace pre-tokenizer, merges as ["a", "b"], tokenizer_config.json */
};

struct hf_opts {
    const char *arch;           /* default LlamaForCausalLM */
    int shards;                 /* 0/1: model.safetensors; 2: index + two shards */
    int f16;                    /* store every matrix and norm as F16 */
    int untied;                 /* lm_head.weight + tie_word_embeddings false */
    int biases;                 /* zero q/k/v biases (Qwen2) */
    const char *skip;           /* an HF tensor to leave out */
    const char *as_i32;         /* an HF tensor to store as I32 */
    const char *patch;          /* JSON object merged into config.json; "DELETE" removes a key */
    enum tok_style tok;
    int no_token_ids;           /* config.json without bos_token_id/eos_token_id */
};

struct wtensor {
    char name[96];
    enum qdtype dtype;
    int ndim;
    int64_t shape[2];
    const float *f32;
    void *owned;                /* converted data */
};

struct wlist {
    struct wtensor t[96];
    int n;
};

static void add_t(struct wlist *w, const struct hf_opts *o, const char *name, const float *x,
                  int64_t rows, int64_t cols)
{
    if (o->skip && strcmp(o->skip, name) == 0)
        return;
    ck_assert_int_lt(w->n, 96);
    struct wtensor *t = &w->t[w->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->f32 = x;
    t->dtype = QDT_F32;
    int64_t n = rows * (cols ? cols : 1);
    if (o->as_i32 && strcmp(o->as_i32, name) == 0) {
        int32_t *v = calloc((size_t)n, sizeof *v);
        t->owned = v;
        t->dtype = QDT_I32;
    } else if (o->f16) {
        uint16_t *v = malloc((size_t)n * sizeof *v);
        for (int64_t i = 0; i < n; i++)
            v[i] = qf32_to_f16(x[i]);
        t->owned = v;
        t->dtype = QDT_F16;
    }
}

static void write_shard(const char *path, struct wtensor *t, int n)
{
    struct st_write_tensor *ws = calloc((size_t)(n ? n : 1), sizeof *ws);
    for (int i = 0; i < n; i++)
        ws[i] = (struct st_write_tensor){t[i].name, t[i].dtype, t[i].ndim, t[i].shape,
                                         t[i].owned ? t[i].owned : (const void *)t[i].f32};
    qerr err = {{0}};
    ck_assert_msg(st_write(path, ws, n, NULL, 0, &err) == 0, "%s", err.msg);
    free(ws);
}

static void write_config(const char *dir, const struct hf_opts *o)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{\"architectures\": [\"%s\"], \"model_type\": \"llama\", \"hidden_size\": %d, "
             "\"intermediate_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
             "\"num_key_value_heads\": %d, \"max_position_embeddings\": %d, "
             "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"vocab_size\": %d, "
             "\"tie_word_embeddings\": %s, \"hidden_act\": \"silu\", \"torch_dtype\": \"%s\"}",
             o->arch ? o->arch : "LlamaForCausalLM", S.dim, S.hidden, S.n_layers, S.n_heads,
             S.n_kv, S.seq_len, S.vocab, o->untied ? "false" : "true",
             o->f16 ? "float16" : "float32");
    cJSON *root = cJSON_Parse(text);
    ck_assert_ptr_nonnull(root);
    if (!o->no_token_ids) {
        cJSON_AddNumberToObject(root, "bos_token_id", 1);
        cJSON_AddNumberToObject(root, "eos_token_id", 2);
    }
    if (o->patch) {
        cJSON *p = cJSON_Parse(o->patch);
        ck_assert_msg(p != NULL, "bad patch %s", o->patch);
        for (cJSON *e = p->child; e; e = e->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(root, e->string);
            if (!(cJSON_IsString(e) && strcmp(e->valuestring, "DELETE") == 0))
                cJSON_AddItemToObject(root, e->string, cJSON_Duplicate(e, 1));
        }
        cJSON_Delete(p);
    }
    char *out = cJSON_Print(root);
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    tu_write_file(path, out, strlen(out));
    free(out);
    cJSON_Delete(root);
}

/* ---- tokenizer.json from tok512.bin ----------------------------------------- */

struct tok512 {
    char *piece[512];           /* as tok512.bin has them (plain spaces) */
    float score[512];
};

static void tok512_load(struct tok512 *t)
{
    size_t n;
    char *buf = tu_read_file(tu_shared(TOK512), &n);
    size_t o = 4;
    for (int i = 0; i < 512; i++) {
        int32_t len;
        ck_assert_uint_le(o + 8, n);
        memcpy(&t->score[i], buf + o, 4);
        memcpy(&len, buf + o + 4, 4);
        ck_assert(len > 0 && o + 8 + (size_t)len <= n);
        t->piece[i] = strndup(buf + o + 8, (size_t)len);
        o += 8 + (size_t)len;
    }
    free(buf);
}

static void tok512_free(struct tok512 *t)
{
    for (int i = 0; i < 512; i++)
        free(t->piece[i]);
}

/* The piece as a converted Llama-2 tokenizer.json holds it. */
static char *hf_piece(const struct tok512 *t, int id)
{
    if (id == 1)
        return strdup("<s>");
    if (id == 2)
        return strdup("</s>");
    const char *p = t->piece[id];
    char *out = malloc(strlen(p) * 3 + 1), *q = out;
    for (; *p; p++)
        if (*p == ' ') {
            memcpy(q, SPACE_MARK, 3);
            q += 3;
        } else {
            *q++ = *p;
        }
    *q = 0;
    return out;
}

static int utf8_chars(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

struct cand {
    int left, right;
    float score;
    int lchars, rchars, seq;
};

/* transformers' generate_merges: score, then longer left, longer right,
 * all descending; equal keys keep their order. */
static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->lchars != y->lchars)
        return x->lchars > y->lchars ? -1 : 1;
    if (x->rchars != y->rchars)
        return x->rchars > y->rchars ? -1 : 1;
    return x->seq - y->seq;
}

static int find_piece(char *const *pieces, const char *s)
{
    for (int i = 0; i < 512; i++)
        if (strcmp(pieces[i], s) == 0)
            return i;
    return -1;
}

/* Merges as transformers makes them from a SentencePiece model: every
 * split of every piece into two pieces of the vocabulary. */
static int make_merges(char *const *pieces, const float *scores, struct cand *out)
{
    int n = 0;
    for (int id = 0; id < 512; id++) {
        const char *p = pieces[id];
        size_t len = strlen(p);
        int first = n;
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)p[k] & 0xC0) == 0x80)
                continue; /* inside a character */
            char *l = strndup(p, k);
            int li = find_piece(pieces, l), ri = find_piece(pieces, p + k);
            ck_assert_int_lt(n, 4096);
            if (li >= 0 && ri >= 0)
                out[n++] = (struct cand){li, ri, scores[id], utf8_chars(l), utf8_chars(p + k), 0};
            free(l);
        }
        /* within one piece: by the ids of left, then right */
        for (int a = first; a < n; a++)
            for (int b = a + 1; b < n; b++)
                if (out[b].left < out[a].left ||
                    (out[b].left == out[a].left && out[b].right < out[a].right)) {
                    struct cand tmp = out[a];
                    out[a] = out[b];
                    out[b] = tmp;
                }
    }
    for (int i = 0; i < n; i++)
        out[i].seq = i;
    qsort(out, (size_t)n, sizeof *out, cmp_cand);
    return n;
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tu_write_file(path, text, strlen(text));
}

static void write_json(const char *dir, const char *name, cJSON *root)
{
    char *out = cJSON_PrintUnformatted(root);
    write_text(dir, name, out);
    free(out);
}

/* tok512.bin as a converted tokenizer.json holds it. */
struct hf_vocab {
    char *pieces[512];
    struct cand m[4096];        /* merges in rank order */
    int n_merges;
};

static struct hf_vocab *hf_vocab_new(void)
{
    struct tok512 t;
    tok512_load(&t);
    struct hf_vocab *v = calloc(1, sizeof *v);
    for (int i = 0; i < 512; i++)
        v->pieces[i] = hf_piece(&t, i);
    v->n_merges = make_merges(v->pieces, t.score, v->m);
    tok512_free(&t);
    return v;
}

static void hf_vocab_free(struct hf_vocab *v)
{
    for (int i = 0; i < 512; i++)
        free(v->pieces[i]);
    free(v);
}

static void write_tokenizer(const char *dir, enum tok_style style)
{
    struct hf_vocab *v = hf_vocab_new();
    char *const *pieces = v->pieces;
    const struct cand *m = v->m;
    int n_merges = v->n_merges;

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < 3; i++) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", i);
        cJSON_AddStringToObject(a, "content", pieces[i]);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
    }
    if (style == TOK_LEGACY) {
        cJSON *nz = cJSON_Parse("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": "
                                "\"Prepend\", \"prepend\": \"" SPACE_MARK "\"}, {\"type\": "
                                "\"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \""
                                SPACE_MARK "\"}]}");
        cJSON_AddItemToObject(root, "normalizer", nz);
        cJSON_AddNullToObject(root, "pre_tokenizer");
    } else {
        cJSON_AddNullToObject(root, "normalizer");
        cJSON_AddItemToObject(root, "pre_tokenizer",
                              cJSON_Parse("{\"type\": \"Metaspace\", \"replacement\": \""
                                          SPACE_MARK "\", \"prepend_scheme\": \"first\", "
                                          "\"split\": false}"));
    }
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int i = 0; i < 512; i++)
        cJSON_AddNumberToObject(vocab, pieces[i], i);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < n_merges; i++) {
        const char *l = pieces[m[i].left], *r = pieces[m[i].right];
        if (style == TOK_LEGACY) {
            char buf[64];
            snprintf(buf, sizeof buf, "%s %s", l, r);
            cJSON_AddItemToArray(merges, cJSON_CreateString(buf));
        } else {
            const char *pair[2] = {l, r};
            cJSON_AddItemToArray(merges, cJSON_CreateStringArray(pair, 2));
        }
    }
    write_json(dir, "tokenizer.json", root);
    cJSON_Delete(root);
    if (style == TOK_METASPACE)
        write_text(dir, "tokenizer_config.json",
                   "{\"add_bos_token\": true, \"bos_token\": {\"__type\": \"AddedToken\", "
                   "\"content\": \"<s>\", \"special\": true}, \"eos_token\": \"</s>\", "
                   "\"unk_token\": \"<unk>\"}");
    hf_vocab_free(v);
}

/* Writes the folder tu_tmpdir()/name for stories260K; its path into dir. */
static void make_hf(char *dir, size_t size, const char *name, const struct hf_opts *o)
{
    snprintf(dir, size, "%s/%s", tu_tmpdir(), name);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    write_config(dir, o);

    int d = S.dim, kvd = S.dim / S.n_heads * S.n_kv, hid = S.hidden;
    static float zeros[256];
    float *perm[2 * 32] = {0};
    struct wlist *w = calloc(1, sizeof *w);
    int split_at = 0; /* tensors before it go to shard 1 */
    char nm[96];
    add_t(w, o, "model.embed_tokens.weight", S.emb, S.vocab, d);
    for (int l = 0; l < S.n_layers; l++) {
#define LT(suffix, x, r, c)                                                     \
    do {                                                                        \
        snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix);               \
        add_t(w, o, nm, x, r, c);                                               \
    } while (0)
        perm[2 * l] = permute_rows(S.wq + (size_t)l * d * d, S.n_heads, d, d);
        perm[2 * l + 1] = permute_rows(S.wk + (size_t)l * kvd * d, S.n_kv, kvd, d);
        LT("input_layernorm.weight", S.rms_att + (size_t)l * d, d, 0);
        LT("self_attn.q_proj.weight", perm[2 * l], d, d);
        LT("self_attn.k_proj.weight", perm[2 * l + 1], kvd, d);
        LT("self_attn.v_proj.weight", S.wv + (size_t)l * kvd * d, kvd, d);
        LT("self_attn.o_proj.weight", S.wo + (size_t)l * d * d, d, d);
        if (o->biases) {
            LT("self_attn.q_proj.bias", zeros, d, 0);
            LT("self_attn.k_proj.bias", zeros, kvd, 0);
            LT("self_attn.v_proj.bias", zeros, kvd, 0);
        }
        LT("self_attn.rotary_emb.inv_freq", zeros, 4, 0); /* older checkpoints: not needed */
        LT("post_attention_layernorm.weight", S.rms_ffn + (size_t)l * d, d, 0);
        LT("mlp.gate_proj.weight", S.w1 + (size_t)l * hid * d, hid, d);
        LT("mlp.down_proj.weight", S.w2 + (size_t)l * d * hid, d, hid);
        LT("mlp.up_proj.weight", S.w3 + (size_t)l * hid * d, hid, d);
#undef LT
        if (l == 2)
            split_at = w->n;
    }
    add_t(w, o, "model.norm.weight", S.rms_final, d, 0);
    if (o->untied)
        add_t(w, o, "lm_head.weight", S.emb, S.vocab, d);

    char path[700];
    if (o->shards == 2) {
        const char *files[2] = {"model-00001-of-00002.safetensors",
                                "model-00002-of-00002.safetensors"};
        snprintf(path, sizeof path, "%s/%s", dir, files[0]);
        write_shard(path, w->t, split_at);
        snprintf(path, sizeof path, "%s/%s", dir, files[1]);
        write_shard(path, w->t + split_at, w->n - split_at);
        cJSON *idx = cJSON_CreateObject();
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(idx, "metadata"), "total_size", 1);
        cJSON *wm = cJSON_AddObjectToObject(idx, "weight_map");
        for (int i = 0; i < w->n; i++)
            cJSON_AddStringToObject(wm, w->t[i].name, files[i >= split_at]);
        write_json(dir, "model.safetensors.index.json", idx);
        cJSON_Delete(idx);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        write_shard(path, w->t, w->n);
    }
    for (int i = 0; i < w->n; i++)
        free(w->t[i].owned);
    for (int i = 0; i < 2 * 32; i++)
        free(perm[i]);
    free(w);
    if (o->tok != TOK_NONE)
        write_tokenizer(dir, o->tok);
}

static struct qmodel *load_ok(const char *dir)
{
    struct qmodel *m = NULL;
    qerr err = {{0}};
    ck_assert_msg(qllm_load_hf(dir, &m, &err) == 0, "%s", err.msg);
    ck_assert_ptr_nonnull(m);
    return m;
}

/* The load fails with one line that holds every phrase given. */
static void load_fails(const char *dir, const char *p1, const char *p2)
{
    struct qmodel *m = (struct qmodel *)1;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_load_hf(dir, &m, &err), -1);
    ck_assert_ptr_null(m);
    ck_assert_msg(err.msg[0] && !strchr(err.msg, '\n'), "not one line: '%s'", err.msg);
    ck_assert_msg(strstr(err.msg, p1), "'%s' lacks '%s'", err.msg, p1);
    ck_assert_msg(!p2 || strstr(err.msg, p2), "'%s' lacks '%s'", err.msg, p2);
}

static const struct qtensor *tensor(const struct qmodel *m, const char *name)
{
    int i = qmodel_find_tensor(m, name);
    ck_assert_msg(i >= 0, "no tensor %s", name);
    return m->tensors[i];
}

/* ---- Core: configuration and tensors ----------------------------------------- */

static void setup(void)
{
    stories_load();
}

static void teardown(void)
{
    stories_free();
}

START_TEST(config_and_names)
{
    char dir[512];
    make_hf(dir, sizeof dir, "stories-hf", &(struct hf_opts){.tok = TOK_NONE});
    struct qmodel *m = load_ok(dir);
    const struct qllm_config *c = &m->llm->c;
    ck_assert_int_eq(m->kind, QMODEL_LM);
    ck_assert_str_eq(m->format, "hf");
    ck_assert_str_eq(m->name, "stories-hf");
    ck_assert_int_eq(c->arch, QLLM_LLAMA);
    ck_assert_int_eq(c->rope, QLLM_ROPE_HALF);
    ck_assert_int_eq(c->dim, 64);
    ck_assert_int_eq(c->hidden_dim, 172);
    ck_assert_int_eq(c->n_layers, 5);
    ck_assert_int_eq(c->n_heads, 8);
    ck_assert_int_eq(c->n_kv_heads, 4);
    ck_assert_int_eq(c->head_dim, 8);
    ck_assert_int_eq(c->vocab_size, 512);
    ck_assert_int_eq(c->max_ctx, 512);
    ck_assert_float_eq(c->norm_eps, 1e-5f);
    ck_assert_float_eq(c->rope_theta, 10000.0f);
    /* 1 embedding + 5 x 9 + output_norm; tied: no output.weight */
    ck_assert_int_eq(m->n_tensors, 47);
    ck_assert_int_eq(m->llm->output, m->llm->token_embd);
    ck_assert_int_eq(qmodel_find_tensor(m, "output.weight"), -1);
    ck_assert_ptr_null(m->llm->tok);
    ck_assert_int_eq(m->n_files, 1);
    ck_assert_int_eq(m->n_extra_files, 1);
    ck_assert_str_eq(qpath_basename(m->extra_files[0]), "config.json");

    int q = qmodel_find_tensor(m, "blk.3.attn_q.weight");
    ck_assert_int_eq(q, m->llm->layers[3].wq);
    ck_assert_str_eq(m->source_names[q], "model.layers.3.self_attn.q_proj.weight");
    ck_assert_str_eq(m->source_names[m->llm->layers[4].w_down], "model.layers.4.mlp.down_proj.weight");
    ck_assert_str_eq(m->source_names[m->llm->output_norm], "model.norm.weight");
    ck_assert_int_eq(m->llm->layers[0].bq, -1);

    /* values: the embedding as stored; q rows permuted within each head
     * (head 2, pair i = 1: llama2.c rows 2*8+2, 2*8+3 -> HF rows 17, 21) */
    const struct qtensor *e = tensor(m, "token_embd.weight");
    ck_assert_float_eq(e->f32[300 * 64 + 7], S.emb[300 * 64 + 7]);
    const struct qtensor *wq = tensor(m, "blk.1.attn_q.weight");
    const float *src = S.wq + 64 * 64;
    for (int c2 = 0; c2 < 64; c2++) {
        ck_assert_float_eq(wq->f32[17 * 64 + c2], src[18 * 64 + c2]);
        ck_assert_float_eq(wq->f32[21 * 64 + c2], src[19 * 64 + c2]);
    }
    const struct qtensor *wk = tensor(m, "blk.0.attn_k.weight");
    ck_assert_int_eq(wk->shape[0], 32);
    ck_assert_float_eq(wk->f32[4 * 64 + 5], S.wk[1 * 64 + 5]); /* head 0, i=0, j=1 -> row 4 */
    ck_assert_float_eq(tensor(m, "blk.2.ffn_up.weight")->f32[171 * 64 + 63],
                       S.w3[(size_t)2 * 172 * 64 + 171 * 64 + 63]);
    ck_assert_int_eq(m->roles[m->llm->layers[0].attn_norm], QROLE_NORM);
    ck_assert_int_eq(m->roles[q], QROLE_WEIGHT);
    qmodel_free(m);

    /* qmodel_open tells the folder by its config.json */
    qerr err = {{0}};
    ck_assert_msg(qmodel_open(dir, &m, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(m->format, "hf");
    ck_assert_int_eq(m->n_tensors, 47);
    qmodel_free(m);
}
END_TEST

START_TEST(untied_and_defaults)
{
    char dir[512];
    /* Mistral with a sliding window, no head_dim/kv heads/eps/theta/max ctx:
     * transformers' defaults apply */
    make_hf(dir, sizeof dir, "mistral-hf",
            &(struct hf_opts){.arch = "MistralForCausalLM", .untied = 1,
                              .patch = "{\"sliding_window\": 4096, \"rms_norm_eps\": \"DELETE\", "
                                       "\"rope_theta\": \"DELETE\", \"max_position_embeddings\": "
                                       "\"DELETE\", \"rope_scaling\": null, \"head_dim\": null}"});
    struct qmodel *m = load_ok(dir);
    const struct qllm_config *c = &m->llm->c;
    ck_assert_int_eq(c->arch, QLLM_LLAMA);
    ck_assert_float_eq(c->norm_eps, 1e-6f);
    ck_assert_float_eq(c->rope_theta, 10000.0f);
    ck_assert_int_eq(c->max_ctx, 131072);
    ck_assert_int_eq(c->head_dim, 8);
    ck_assert_int_ne(m->llm->output, m->llm->token_embd);
    ck_assert_str_eq(m->tensors[m->llm->output]->name, "output.weight");
    ck_assert_str_eq(m->source_names[m->llm->output], "lm_head.weight");
    ck_assert_int_eq(m->n_tensors, 48);
    qmodel_free(m);

    /* tie_word_embeddings false but no lm_head.weight: tied; rope_parameters
     * (transformers 5) carries the theta */
    make_hf(dir, sizeof dir, "llama-nohead",
            &(struct hf_opts){.patch = "{\"tie_word_embeddings\": false, \"rope_parameters\": "
                                       "{\"rope_type\": \"default\", \"rope_theta\": 500000.0}}"});
    m = load_ok(dir);
    ck_assert_int_eq(m->llm->output, m->llm->token_embd);
    ck_assert_float_eq(m->llm->c.rope_theta, 500000.0f);
    qmodel_free(m);
}
END_TEST

START_TEST(sharded_and_f16)
{
    char one[512], two[512], half[512];
    make_hf(one, sizeof one, "single", &(struct hf_opts){0});
    make_hf(two, sizeof two, "sharded", &(struct hf_opts){.shards = 2});
    make_hf(half, sizeof half, "f16", &(struct hf_opts){.f16 = 1});
    struct qmodel *a = load_ok(one), *b = load_ok(two), *h = load_ok(half);
    ck_assert_int_eq(b->n_files, 2);
    ck_assert_str_eq(qpath_basename(b->files[0]->path), "model-00001-of-00002.safetensors");
    ck_assert_str_eq(qpath_basename(b->files[1]->path), "model-00002-of-00002.safetensors");
    ck_assert_int_eq(b->n_tensors, a->n_tensors);
    for (int i = 0; i < a->n_tensors; i++) {
        const struct qtensor *x = a->tensors[i], *y = b->tensors[i], *z = h->tensors[i];
        ck_assert_str_eq(x->name, y->name);
        ck_assert_str_eq(x->name, z->name);
        ck_assert_str_eq(a->source_names[i], b->source_names[i]);
        ck_assert_int_eq(x->numel, y->numel);
        ck_assert_int_eq(memcmp(x->f32, y->f32, (size_t)x->numel * sizeof(float)), 0);
        ck_assert_int_eq(z->dtype, QDT_F16);
        for (int64_t k = 0; k < x->numel; k++)
            ck_assert_float_eq(z->f32[k], qf16_to_f32(qf32_to_f16(x->f32[k])));
    }
    /* shard 2 holds layers 3, 4 and the final norm */
    ck_assert_ptr_eq(b->tensors[b->llm->layers[3].wq], st_find(b->files[1], "blk.3.attn_q.weight"));
    ck_assert_ptr_eq(b->tensors[b->llm->token_embd], st_find(b->files[0], "token_embd.weight"));
    qmodel_free(a);
    qmodel_free(b);
    qmodel_free(h);
}
END_TEST

START_TEST(qwen2_biases)
{
    char dir[512];
    make_hf(dir, sizeof dir, "qwen2-hf",
            &(struct hf_opts){.arch = "Qwen2ForCausalLM", .biases = 1,
                              .patch = "{\"use_sliding_window\": false, \"sliding_window\": 32768}"});
    struct qmodel *m = load_ok(dir);
    ck_assert_int_eq(m->llm->c.arch, QLLM_QWEN2);
    for (int l = 0; l < 5; l++) {
        const struct qllm_layer *L = &m->llm->layers[l];
        ck_assert_int_ge(L->bq, 0);
        ck_assert_int_eq(m->tensors[L->bk]->shape[0], 32);
        ck_assert_int_eq(m->roles[L->bv], QROLE_BIAS);
    }
    ck_assert_str_eq(m->source_names[m->llm->layers[2].bk], "model.layers.2.self_attn.k_proj.bias");
    ck_assert_int_eq(m->n_tensors, 47 + 15);
    qmodel_free(m);
    /* Qwen2 without its biases is refused, naming the first one missing */
    make_hf(dir, sizeof dir, "qwen2-nobias", &(struct hf_opts){.arch = "Qwen2ForCausalLM"});
    load_fails(dir, "model.safetensors: tensor 'model.layers.0.self_attn.q_proj.bias' is missing",
               NULL);
}
END_TEST

/* ---- Tokenizer --------------------------------------------------------------- */

static void encode(const struct qtokenizer *t, const char *text, int add_bos, int32_t **ids,
                   int64_t *n)
{
    qerr err = {{0}};
    ck_assert_msg(qtok_encode(t, text, strlen(text), add_bos, ids, n, &err) == 0, "%s", err.msg);
}

static const char *const sentences[] = {
    "Once upon a time, there was a little girl named Lily.",
    "The cat sat on the mat.\nIt was happy!",
    "caf\xc3\xa9 \xe2\x84\xa2 123",
    "  two  spaces, and \xf0\x9f\x98\x80 an emoji",
    "",
};

/* Hugging Face's BPE as tokenizers runs it on these files: "▁" before the
 * text and for every space, one symbol per character (its <0xNN> bytes
 * when absent), then again and again the adjacent pair of lowest merge
 * rank, leftmost first. The reference the SPM scores must reproduce. */
static int hf_bpe(const struct hf_vocab *v, const char *text, int32_t *out, int cap)
{
    char *norm = malloc(strlen(text) * 3 + 4), *q = norm;
    memcpy(q, SPACE_MARK, 3);
    q += 3;
    for (const char *p = text; *p; p++)
        if (*p == ' ') {
            memcpy(q, SPACE_MARK, 3);
            q += 3;
        } else {
            *q++ = *p;
        }
    *q = 0;
    int n = 0;
    for (const char *p = norm; *p;) {
        size_t len = 1;
        while (((unsigned char)p[len] & 0xC0) == 0x80)
            len++;
        char *ch = strndup(p, len);
        int id = find_piece(v->pieces, ch);
        for (size_t b = 0; b < (id < 0 ? len : 1); b++) {
            ck_assert_int_lt(n, cap);
            out[n++] = id >= 0 ? id : 3 + (unsigned char)p[b];
        }
        free(ch);
        p += len;
    }
    free(norm);
    for (;;) {
        int best = -1, at = -1;
        for (int i = 0; i + 1 < n; i++)
            for (int r = 0; r < v->n_merges && (best < 0 || r < best); r++)
                if (v->m[r].left == out[i] && v->m[r].right == out[i + 1]) {
                    best = r;
                    at = i;
                }
        if (best < 0)
            break;
        char *joined = malloc(strlen(v->pieces[out[at]]) + strlen(v->pieces[out[at + 1]]) + 1);
        strcpy(joined, v->pieces[out[at]]);
        strcat(joined, v->pieces[out[at + 1]]);
        out[at] = find_piece(v->pieces, joined);
        ck_assert_int_ge(out[at], 0);
        free(joined);
        memmove(out + at + 1, out + at + 2, (size_t)(n - at - 2) * sizeof *out);
        n--;
    }
    return n;
}

START_TEST(spm_tokenizer_matches_tok512)
{
    char dir[512];
    enum tok_style style = _i == 0 ? TOK_LEGACY : TOK_METASPACE;
    make_hf(dir, sizeof dir, _i == 0 ? "tok-legacy" : "tok-metaspace",
            &(struct hf_opts){.tok = style, .no_token_ids = style == TOK_METASPACE});
    struct qmodel *m = load_ok(dir);
    const struct qtokenizer *t = m->llm->tok;
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(qtok_kind(t), QTOK_SPM);
    ck_assert_int_eq(qtok_vocab_size(t), 512);
    ck_assert_int_eq(qtok_bos(t), 1); /* config.json ids, or tokenizer_config.json names */
    ck_assert_int_eq(qtok_eos(t), 2);
    ck_assert_int_eq(m->n_extra_files, 2);
    ck_assert_str_eq(qpath_basename(m->extra_files[1]), "tokenizer.json");

    /* hand-checked: llama2.c's encode() of the first sentence */
    static const int32_t once[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315,
                                   421, 395, 317, 426};
    int32_t *ids;
    int64_t n;
    encode(t, sentences[0], 1, &ids, &n);
    ck_assert_int_eq(n, 16);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(ids[i], once[i]);
    free(ids);

    struct qtokenizer *ref = NULL;
    qerr err = {{0}};
    ck_assert_msg(qtok_load_llama2c(tu_shared(TOK512), 512, &ref, &err) == 0, "%s", err.msg);
    for (size_t s = 0; s < sizeof sentences / sizeof sentences[0]; s++) {
        int32_t *a, *b;
        int64_t na, nb;
        encode(t, sentences[s], 1, &a, &na);
        encode(ref, sentences[s], 1, &b, &nb);
        ck_assert_int_eq(na, nb);
        for (int64_t i = 0; i < na; i++)
            ck_assert_msg(a[i] == b[i], "sentence %zu token %lld: %d vs %d", s, (long long)i,
                          a[i], b[i]);
        free(a);
        free(b);
    }
    qtok_free(ref);

    /* and Hugging Face's own algorithm on its merges */
    struct hf_vocab *v = hf_vocab_new();
    ck_assert_int_eq(v->n_merges, 165);
    for (size_t s = 0; s < sizeof sentences / sizeof sentences[0]; s++) {
        if (!sentences[s][0])
            continue; /* HF's Prepend leaves "" empty */
        int32_t want[256], *got;
        int nw = hf_bpe(v, sentences[s], want, 256);
        encode(t, sentences[s], 0, &got, &n);
        ck_assert_int_eq(n, nw);
        for (int i = 0; i < nw; i++)
            ck_assert_msg(got[i] == want[i], "sentence %zu token %d: %d vs HF %d", s, i, got[i],
                          want[i]);
        free(got);
    }
    hf_vocab_free(v);
    qmodel_free(m);
}
END_TEST

/* The whole perplexity text: 15,652 tokens with BOS, as tok512.bin gives. */
START_TEST(spm_tokenizer_eval_text)
{
    char dir[512];
    make_hf(dir, sizeof dir, "tok-eval", &(struct hf_opts){.tok = TOK_LEGACY});
    struct qmodel *m = load_ok(dir);
    size_t len;
    char *text = tu_read_file(tu_shared(EVAL32K), &len);
    struct qtokenizer *ref = NULL;
    qerr err = {{0}};
    ck_assert_msg(qtok_load_llama2c(tu_shared(TOK512), 512, &ref, &err) == 0, "%s", err.msg);
    int32_t *a, *b;
    int64_t na, nb;
    ck_assert(qtok_encode(m->llm->tok, text, len, 1, &a, &na, &err) == 0);
    ck_assert(qtok_encode(ref, text, len, 1, &b, &nb, &err) == 0);
    ck_assert_int_eq(na, 15652);
    ck_assert_int_eq(nb, 15652);
    ck_assert_int_eq(memcmp(a, b, (size_t)na * sizeof *a), 0);
    free(a);
    free(b);
    free(text);
    qtok_free(ref);
    qmodel_free(m);
}
END_TEST

/* GPT-2's byte-to-unicode map: printable bytes stand for themselves, the
 * rest take U+0100 onwards in byte order. */
static void byte_char(int b, char out[4])
{
    int cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
        int k = 0;
        for (int x = 0; x < b; x++)
            k += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255));
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* A byte-level tokenizer.json: 256 byte characters (id = byte), then
 * merges of digits and " the". pre: the pre_tokenizer JSON. */
static void write_bytelevel(const char *dir, const char *pre)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNullToObject(root, "normalizer");
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre));
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int b = 0; b < 256; b++) {
        char c[4];
        byte_char(b, c);
        cJSON_AddNumberToObject(vocab, c, b);
    }
    /* ids 256.. in merge order; "\xc4\xa0" is U+0120 'Ġ', the space */
    static const char *const merges[][3] = {
        {"1", "2", "12"},      {"12", "3", "123"}, {"123", "4", "1234"},
        {"1234", "5", "12345"}, {"4", "5", "45"},  {"\xc4\xa0", "t", "\xc4\xa0t"},
        {"h", "e", "he"},      {"\xc4\xa0t", "he", "\xc4\xa0the"},
    };
    cJSON *ms = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < 8; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%s %s", merges[i][0], merges[i][1]);
        cJSON_AddItemToArray(ms, cJSON_CreateString(buf));
        cJSON_AddNumberToObject(vocab, merges[i][2], 256 + i);
    }
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *eot = cJSON_CreateObject();
    cJSON_AddNumberToObject(eot, "id", 264);
    cJSON_AddStringToObject(eot, "content", "<|endoftext|>");
    cJSON_AddBoolToObject(eot, "special", 1);
    cJSON_AddItemToArray(added, eot);
    write_json(dir, "tokenizer.json", root);
    cJSON_Delete(root);
}

#define RE_LLAMA3                                                                       \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| " \
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"
#define RE_QWEN2                                                                       \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "   \
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"
#define SPLIT(re)                                                                      \
    "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": "  \
    "{\"Regex\": \"" re "\"}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": " \
    "\"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}"

START_TEST(bytelevel_pretokenizers)
{
    /* "12345" splits as GPT-2's " ?\p{N}+" (one pre-token: 12345 = 259),
     * Llama 3's "\p{N}{1,3}" (123 = 257 | 45 = 260) or Qwen2's "\p{N}"
     * (single digits, ids = bytes) */
    static const char *const pres[3] = {
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}",
        SPLIT(RE_LLAMA3), SPLIT(RE_QWEN2)};
    static const int want_n[3] = {1, 2, 5};
    static const int32_t want[3][5] = {{259}, {257, 260}, {'1', '2', '3', '4', '5'}};
    char dir[512], name[32];
    snprintf(name, sizeof name, "bytelevel-%d", _i);
    make_hf(dir, sizeof dir, name,
            &(struct hf_opts){.patch = "{\"bos_token_id\": 264, \"eos_token_id\": [264, 2]}"});
    write_bytelevel(dir, pres[_i]);
    struct qmodel *m = load_ok(dir);
    const struct qtokenizer *t = m->llm->tok;
    ck_assert_int_eq(qtok_kind(t), QTOK_BPE);
    ck_assert_int_eq(qtok_vocab_size(t), 265);
    ck_assert_int_eq(qtok_bos(t), 264);
    ck_assert_int_eq(qtok_eos(t), 264); /* the first of config.json's list */
    int32_t *ids;
    int64_t n;
    encode(t, "12345", 0, &ids, &n);
    ck_assert_int_eq(n, want_n[_i]);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(ids[i], want[_i][i]);
    free(ids);
    encode(t, " the", 0, &ids, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ids[0], 263);
    free(ids);
    qmodel_free(m);
}
END_TEST

/* ---- Regress: logits against the llama2.c checkpoint ------------------------- */

/* Logits of every position for tokens, n_ctx 32. */
static float *run(const struct qmodel *m, const int32_t *tokens, int n)
{
    struct qllm_state *s = NULL;
    qerr err = {{0}};
    ck_assert_msg(qllm_state_new(m, 32, &s, &err) == 0, "%s", err.msg);
    float *logits = malloc((size_t)n * 512 * sizeof *logits);
    ck_assert_msg(qllm_forward(s, NULL, tokens, n, 0, 0, logits, &err) == 0, "%s", err.msg);
    qllm_state_free(s);
    return logits;
}

static const int32_t prompt[16] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315,
                                   421, 395, 317, 426};

START_TEST(logits_match_llama2c)
{
    struct qmodel *ref = NULL;
    qerr err = {{0}};
    ck_assert_msg(qllm_load_llama2c(tu_shared(STORIES), tu_shared(TOK512), &ref, &err) == 0, "%s",
                  err.msg);
    float *want = run(ref, prompt, 16);
    char dir[512];
    make_hf(dir, sizeof dir, "logits-hf", &(struct hf_opts){.tok = TOK_LEGACY});
    struct qmodel *m = load_ok(dir);
    float *hf = run(m, prompt, 16);
    qmodel_free(m);
    /* The permuted rows put each head's q.k terms in another order, so
     * float32 sums round differently (observed: 1.1e-5 at logits up to
     * 20.5, about 6 ulps); bound: 1e-5 of the largest logit. A wrong
     * permutation or RoPE layout moves logits by whole units. */
    double worst = 0, scale = 0;
    for (int i = 0; i < 16 * 512; i++) {
        worst = fmax(worst, fabs((double)hf[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    ck_assert_msg(scale > 10 && worst <= 1e-5 * scale, "logits differ by %g (largest %g)", worst,
                  scale);
    for (int p = 0; p < 16; p++) { /* the same greedy choice at every position */
        int a = 0, b = 0;
        for (int v = 1; v < 512; v++) {
            a = want[p * 512 + v] > want[p * 512 + a] ? v : a;
            b = hf[p * 512 + v] > hf[p * 512 + b] ? v : b;
        }
        ck_assert_int_eq(a, b);
    }

    /* other layouts of the same weights: the same logits, bit for bit */
    static const struct hf_opts variants[] = {
        {.shards = 2},
        {.untied = 1},
        {.arch = "Qwen2ForCausalLM", .biases = 1}, /* zero biases */
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        char name[32];
        snprintf(name, sizeof name, "logits-%zu", v);
        make_hf(dir, sizeof dir, name, &variants[v]);
        m = load_ok(dir);
        float *got = run(m, prompt, 16);
        ck_assert_msg(memcmp(got, hf, 16 * 512 * sizeof *got) == 0, "variant %zu differs", v);
        free(got);
        qmodel_free(m);
    }
    /* F16 weights: near, not equal (observed 0.017; F16 keeps 11 bits) */
    make_hf(dir, sizeof dir, "logits-f16", &(struct hf_opts){.f16 = 1});
    m = load_ok(dir);
    float *got = run(m, prompt, 16);
    worst = 0;
    for (int i = 0; i < 16 * 512; i++)
        worst = fmax(worst, fabs((double)got[i] - hf[i]));
    ck_assert_msg(worst > 0 && worst < 0.05, "F16 logits differ by %g", worst);
    free(got);
    qmodel_free(m);
    free(hf);
    free(want);
    qmodel_free(ref);
}
END_TEST

/* ---- Limits: malformed folders -------------------------------------------------- */

/* These need no weights: config.json is read and refused first. */
START_TEST(missing_and_bad_config)
{
    char dir[512], path[600], want[800];
    snprintf(dir, sizeof dir, "%s/noconfig", tu_tmpdir());
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    load_fails(dir, path, "No such file");

    write_text(dir, "config.json", "{\"architectures\": [\"LlamaForCausalLM\"],\n \"hidden_size\": ");
    load_fails(dir, path, "not valid JSON (error near line 2");
    write_text(dir, "config.json", "{} []");
    load_fails(dir, path, "unexpected text after the JSON value");
    write_text(dir, "config.json", "[]");
    load_fails(dir, path, "not a model configuration");

    write_text(dir, "config.json", "{\"architectures\": [\"GPT2LMHeadModel\"], \"n_embd\": 768}");
    struct qmodel *m = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qllm_load_hf(dir, &m, &err), -1);
    ck_assert_ptr_null(m);
    snprintf(want, sizeof want,
             "%s/config.json: architecture 'GPT2LMHeadModel' is not supported "
             "(LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)", dir);
    ck_assert_str_eq(err.msg, want);

    write_text(dir, "config.json", "{\"architectures\": [\"Evil\\nModel\"]}");
    load_fails(dir, "architecture 'Evil?Model' is not supported", NULL);

    write_text(dir, "config.json",
               "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, "
               "\"intermediate_size\": 172, \"num_hidden_layers\": 5, \"num_attention_heads\": 8, "
               "\"vocab_size\": 512, \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}}");
    load_fails(dir, path, "\"rope_scaling\" (rope_type 'dynamic') is not supported yet");
    /* the configuration is fine without rope_scaling: the weights are next */
    write_text(dir, "config.json",
               "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, "
               "\"intermediate_size\": 172, \"num_hidden_layers\": 5, \"num_attention_heads\": 8, "
               "\"vocab_size\": 512}");
    load_fails(dir, "noconfig: no model.safetensors or model.safetensors.index.json", NULL);
}
END_TEST

/* config.json patches that must be refused, and a phrase of the message. */
static const struct {
    const char *patch, *phrase;
} bad_configs[] = {
    {"{\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}", "\"rope_scaling\" (rope_type 'linear') is not supported"},
    {"{\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}", "rope_type 'llama3'"},
    {"{\"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 1e6}}", "rope_parameters"},
    {"{\"num_attention_heads\": \"8\"}", "\"num_attention_heads\" must be an integer"},
    {"{\"hidden_size\": 0}", "\"hidden_size\" must be an integer in 1.."},
    {"{\"hidden_size\": 64.5}", "\"hidden_size\" must be an integer"},
    {"{\"hidden_size\": \"DELETE\"}", "no \"hidden_size\""},
    {"{\"vocab_size\": 1e300}", "\"vocab_size\" must be an integer"},
    {"{\"num_key_value_heads\": 3}", "num_attention_heads 8 is not a multiple of num_key_value_heads 3"},
    {"{\"num_attention_heads\": 7, \"num_key_value_heads\": 7}", "hidden_size 64 is not a multiple of num_attention_heads 7"},
    {"{\"head_dim\": 7, \"num_attention_heads\": 4, \"num_key_value_heads\": 4}", "head_dim 7 is odd"},
    {"{\"rms_norm_eps\": -1}", "\"rms_norm_eps\" must be a number"},
    {"{\"rope_theta\": \"big\"}", "\"rope_theta\" must be a number"},
    {"{\"tie_word_embeddings\": 1}", "\"tie_word_embeddings\" must be true or false"},
    {"{\"hidden_act\": \"gelu\"}", "\"hidden_act\" must be \"silu\""},
    {"{\"attention_bias\": true}", "\"attention_bias\" is true"},
    {"{\"mlp_bias\": true}", "\"mlp_bias\" is true"},
    {"{\"architectures\": \"DELETE\"}", "no \"architectures\""},
    {"{\"architectures\": \"LlamaForCausalLM\"}", "\"architectures\" must be a list"},
    {"{\"bos_token_id\": -1}", "\"bos_token_id\" must be a token id"},
    /* shapes that contradict the tensors: qllm_validate names the tensor */
    {"{\"intermediate_size\": 100}", "blk.0.ffn_gate.weight is [172, 64], expected [100, 64]"},
    {"{\"vocab_size\": 500}", "token_embd.weight is [512, 64], expected [500, 64]"},
    {"{\"num_key_value_heads\": 8}", "blk.0.attn_k.weight is [32, 64], expected [64, 64]"},
};

START_TEST(bad_config_field)
{
    char dir[512], name[32], path[600];
    snprintf(name, sizeof name, "badcfg-%d", _i);
    make_hf(dir, sizeof dir, name, &(struct hf_opts){.patch = bad_configs[_i].patch});
    /* config errors name config.json; shape errors the folder */
    snprintf(path, sizeof path, "%s/config.json", dir);
    load_fails(dir, strstr(bad_configs[_i].phrase, "expected") ? dir : path,
               bad_configs[_i].phrase);
}
END_TEST

START_TEST(bad_weights)
{
    char dir[512], path[700];
    /* a needed tensor missing, single file and sharded */
    make_hf(dir, sizeof dir, "skip1", &(struct hf_opts){.skip = "model.layers.3.mlp.up_proj.weight"});
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    load_fails(dir, path, ": tensor 'model.layers.3.mlp.up_proj.weight' is missing");
    make_hf(dir, sizeof dir, "skip2",
            &(struct hf_opts){.shards = 2, .skip = "model.norm.weight"});
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    load_fails(dir, path, ": tensor 'model.norm.weight' is missing");

    /* an integer tensor */
    make_hf(dir, sizeof dir, "i32", &(struct hf_opts){.as_i32 = "model.norm.weight"});
    load_fails(dir, "model.safetensors: tensor 'model.norm.weight' is I32", NULL);

    /* a shard listed but absent */
    make_hf(dir, sizeof dir, "noshard", &(struct hf_opts){.shards = 2});
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", dir);
    unlink(path);
    load_fails(dir, "model.safetensors.index.json: shard 'model-00002-of-00002.safetensors'",
               "is listed but absent");

    /* a tensor the index puts in a shard that does not hold it */
    make_hf(dir, sizeof dir, "misplaced", &(struct hf_opts){.shards = 2});
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    size_t len;
    char *text = tu_read_file(path, &len);
    cJSON *idx = cJSON_Parse(text);
    free(text);
    cJSON *wm = cJSON_GetObjectItem(idx, "weight_map");
    cJSON_ReplaceItemInObject(wm, "model.norm.weight",
                              cJSON_CreateString("model-00001-of-00002.safetensors"));
    write_json(dir, "model.safetensors.index.json", idx);
    cJSON_Delete(idx);
    load_fails(dir, "model-00001-of-00002.safetensors: tensor 'model.norm.weight' (listed in "
               "model.safetensors.index.json) is not in the file", NULL);

    /* a name twice (JSON allows it; the weights would be ambiguous) */
    write_text(dir, "model.safetensors.index.json",
               "{\"weight_map\": {\"model.norm.weight\": \"model-00002-of-00002.safetensors\", "
               "\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}");
    load_fails(dir, "model.safetensors.index.json: tensor 'model.norm.weight' is listed twice", NULL);

    /* shard names are files of the folder */
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
    load_fails(dir, "weight_map entry 'a' must name a file of the folder", NULL);
    write_text(dir, "model.safetensors.index.json", "{\"weight_map\": {}}");
    load_fails(dir, "\"weight_map\" is empty", NULL);
    write_text(dir, "model.safetensors.index.json", "[1, 2]");
    load_fails(dir, "no \"weight_map\" object", NULL);

    /* a truncated shard */
    make_hf(dir, sizeof dir, "truncated", &(struct hf_opts){0});
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(truncate(path, st.st_size / 2), 0);
    load_fails(dir, path, NULL);

    /* no weights at all */
    unlink(path);
    load_fails(dir, "no model.safetensors or model.safetensors.index.json", NULL);
}
END_TEST

/* tokenizer.json texts that must be refused, and a phrase of the message. */
static const struct {
    const char *json, *phrase;
} bad_tokenizers[] = {
    {"{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "model type 'Unigram' is not supported"},
    {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "neither byte-level"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
     "{\"a\": 0, \"b\": 2}, \"merges\": []}}", "no token has id 1"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
     "{\"a\": 0, \"b\": 1}, \"merges\": [\"a c\"]}}", "merge 0 ('a' 'c'): 'c' is not in the vocabulary"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
     "{\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "makes a piece that is not in the vocabulary"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
     "{\"a\": 0, \"b\": 1}, \"merges\": [\"ab\"]}}", "merge 0 must be two pieces"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
     "{\"a\": 0, \"b\": -1}, \"merges\": []}}", "vocab entry 'b' needs an id"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"added_tokens\": [{\"id\": 0, \"content\": "
     "\"x\"}], \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
     "id 0 is given to both 'a' and 'x'"},
    {"{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {\"type\": \"BPE\"}}",
     "pre_tokenizer 'Whitespace' is not supported"},
    {"{\"normalizer\": {\"type\": \"Lowercase\"}, \"model\": {\"type\": \"BPE\"}}",
     "normalizer 'Lowercase' is not supported"},
    {"{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"" SPACE_MARK "\"}, "
     "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}",
     "without byte_fallback is not supported"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"unk_token\": "
     "\"<unk>\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "unk_token '<unk>' is not in the vocabulary"},
    {"{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": "
     "{\"a\\nb\": 0, \"c\": 1}, \"merges\": [\"a\\nb d\"]}}", "merge 0 ('a\\x0ab' 'd')"},
    {"[1, 2", "not valid JSON"},
};

START_TEST(bad_tokenizer)
{
    char dir[512], name[32], path[600];
    snprintf(name, sizeof name, "badtok-%d", _i);
    make_hf(dir, sizeof dir, name, &(struct hf_opts){0});
    write_text(dir, "tokenizer.json", bad_tokenizers[_i].json);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (strstr(bad_tokenizers[_i].phrase, "not supported")) {
        /* well formed but not implemented: the model loads for token-id data,
         * keeping the reason for text data */
        struct qmodel *m = load_ok(dir);
        ck_assert_ptr_null(m->llm->tok);
        ck_assert_ptr_nonnull(m->llm->tok_note);
        ck_assert_msg(strstr(m->llm->tok_note, bad_tokenizers[_i].phrase) != NULL, "%s",
                      m->llm->tok_note);
        qmodel_free(m);
        return;
    }
    load_fails(dir, path, bad_tokenizers[_i].phrase);
}
END_TEST

START_TEST(bad_tokenizer_config)
{
    char dir[512], path[600];
    make_hf(dir, sizeof dir, "badtokcfg", &(struct hf_opts){.tok = TOK_LEGACY});
    write_text(dir, "tokenizer_config.json", "{\"bos_token\": \"<bos>\"}");
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    load_fails(dir, path, "bos_token '<bos>' is not a token of");
    write_text(dir, "tokenizer_config.json", "{\"eos_token\": 2}");
    load_fails(dir, path, "\"eos_token\" must be a string");
    /* config.json's id beyond the tokenizer */
    make_hf(dir, sizeof dir, "badtokid",
            &(struct hf_opts){.tok = TOK_LEGACY, .patch = "{\"eos_token_id\": 512}"});
    load_fails(dir, "tokenizer.json: config.json's eos_token_id 512 is not a token id", NULL);
    /* more tokens than embedding rows (checked before the shapes are) */
    make_hf(dir, sizeof dir, "bigtok", &(struct hf_opts){.tok = TOK_LEGACY, .patch = "{\"vocab_size\": 300}"});
    load_fails(dir, "tokenizer.json: 512 tokens, more than config.json's vocab_size 300", NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hf");
    static const char *const model[] = {STORIES};
    static const char *const tok[] = {STORIES, TOK512};
    static const char *const eval[] = {STORIES, TOK512, EVAL32K};

    TCase *tc = tcase_create("Core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, config_and_names);
    tcase_add_test(tc, untied_and_defaults);
    tcase_add_test(tc, sharded_and_f16);
    tcase_add_test(tc, qwen2_biases);
    tu_add_if_shared(s, tc, model, 1);

    tc = tcase_create("Tokenizer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, spm_tokenizer_matches_tok512, 0, 2);
    tcase_add_loop_test(tc, bytelevel_pretokenizers, 0, 3);
    tu_add_if_shared(s, tc, tok, 2);

    tc = tcase_create("TokenizerEvalText");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, spm_tokenizer_eval_text);
    tu_add_if_shared(s, tc, eval, 3);

    tc = tcase_create("Regress");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, logits_match_llama2c);
    tu_add_if_shared(s, tc, tok, 2);

    tc = tcase_create("Config");
    tcase_add_test(tc, missing_and_bad_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("Limits");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, bad_config_field, 0, (int)(sizeof bad_configs / sizeof bad_configs[0]));
    tcase_add_test(tc, bad_weights);
    tcase_add_loop_test(tc, bad_tokenizer, 0,
                        (int)(sizeof bad_tokenizers / sizeof bad_tokenizers[0]));
    tcase_add_test(tc, bad_tokenizer_config);
    tu_add_if_shared(s, tc, tok, 2);
    return tu_run(s);
}
