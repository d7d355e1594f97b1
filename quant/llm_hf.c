/* llm_hf.c — loads a Hugging Face folder (config.json, safetensors weights, tokenizer.json) as a language model. */
#include "llm_load.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "llm.h"
#include "llm_hf.h"
#include "tokenizer.h"

#define MAX_CONFIG_BYTES (4u << 20)   /* config.json: a few KB in practice */
#define MAX_INDEX_BYTES (64u << 20)   /* model.safetensors.index.json */
#define MAX_WEIGHT_MAP (1 << 22)      /* entries of its weight_map */

/* ---- JSON files ------------------------------------------------------------ */

int qhf_read_json(const char *path, size_t max, cJSON **out, qerr *err)
{
    *out = NULL;
    char *text;
    size_t len;
    if (qfile_read_all(path, max, &text, &len, err) < 0)
        return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        int line = 1;
        for (size_t i = 0; i < at && i < len; i++)
            line += text[i] == '\n';
        free(text);
        return qerr_set(err, "%s: not valid JSON (error near line %d, byte %zu)", path, line, at);
    }
    for (const char *p = end; p && p < text + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            free(text);
            cJSON_Delete(root);
            return qerr_set(err, "%s: unexpected text after the JSON value", path);
        }
    free(text);
    *out = root;
    return 0;
}

/* A name from a file, fit for a one-line message: control bytes as '?',
 * cut at size - 1 bytes. */
static const char *oneline(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    for (; s && *s && o + 1 < size; s++)
        buf[o++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
    buf[o] = 0;
    return buf;
}

/* ---- loader state ------------------------------------------------------------ */

/* One tensor the weight files offer, under its Hugging Face name. */
struct hf_entry {
    const char *name;           /* the tensor's own name string (stays valid when renamed) */
    struct qtensor *t;
    int file;                   /* index into m->files */
};

struct hf {
    struct qmodel *m;
    const char *dir;
    char *config_path;          /* DIR/config.json */
    char *weights_path;         /* model.safetensors or the index: named when a tensor is missing */
    struct hf_entry *ents;      /* n_ents, sorted by name */
    int n_ents;
    int cap_tensors;            /* room in m->tensors and the per-tensor arrays */
    qerr *err;
};

/* What config.json says beyond struct qllm_config. */
struct hf_config {
    struct qllm_config c;
    const char *arch_name;      /* "LlamaForCausalLM", ... (static) */
    int tied;                   /* tie_word_embeddings */
    int bos, eos;               /* bos_token_id, eos_token_id; -1 when absent */
};

/* The transformers classes read, and what config.json omits for them
 * (the defaults of LlamaConfig, MistralConfig and Qwen2Config). */
static const struct {
    const char *name;
    enum qllm_arch arch;
    int max_ctx;                /* max_position_embeddings */
} hf_archs[] = {
    {"LlamaForCausalLM", QLLM_LLAMA, 2048},
    {"MistralForCausalLM", QLLM_LLAMA, 4096 * 32},
    {"Qwen2ForCausalLM", QLLM_QWEN2, 32768},
};
#define N_HF_ARCHS ((int)(sizeof hf_archs / sizeof hf_archs[0]))

/* ---- config.json ---------------------------------------------------------------- */

/* An integer field in [lo, hi]: 1 when read into *out, 0 when absent or
 * null, -1 (error set) when malformed. */
static int cfg_int(const struct hf *H, const cJSON *root, const char *key, long lo, long hi,
                   int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return qerr_set(H->err, "%s: \"%s\" must be an integer in %ld..%ld", H->config_path, key,
                        lo, hi);
    *out = (int)d;
    return 1;
}

static int cfg_need_int(const struct hf *H, const cJSON *root, const char *key, long lo, long hi,
                        int *out)
{
    int rc = cfg_int(H, root, key, lo, hi, out);
    if (rc == 0)
        return qerr_set(H->err, "%s: no \"%s\"", H->config_path, key);
    return rc < 0 ? -1 : 0;
}

/* A number field in (lo, hi]; absent or null keeps *out. */
static int cfg_float(const struct hf *H, const cJSON *root, const char *key, double lo, double hi,
                     float *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d <= lo || d > hi)
        return qerr_set(H->err, "%s: \"%s\" must be a number in (%g, %g]", H->config_path, key,
                        lo, hi);
    *out = (float)d;
    return 0;
}

/* A boolean field; absent or null keeps *out. */
static int cfg_bool(const struct hf *H, const cJSON *root, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsBool(v))
        return qerr_set(H->err, "%s: \"%s\" must be true or false", H->config_path, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* bos_token_id / eos_token_id: an id, or a list of ids (the first is
 * taken: the tokenizer holds one), or null. */
static int cfg_token_id(const struct hf *H, const cJSON *root, const char *key, int *out)
{
    *out = -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsArray(v))
        v = v->child;
    if (!v || cJSON_IsNull(v))
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < 0 || d > (double)(INT_MAX / 2))
        return qerr_set(H->err, "%s: \"%s\" must be a token id or a list of them",
                        H->config_path, key);
    *out = (int)d;
    return 0;
}

static int read_arch(const struct hf *H, const cJSON *root, struct hf_config *hc)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (!a || cJSON_IsNull(a))
        return qerr_set(H->err, "%s: no \"architectures\" (the transformers class of the model)",
                        H->config_path);
    if (!cJSON_IsArray(a) || !cJSON_IsString(a->child))
        return qerr_set(H->err, "%s: \"architectures\" must be a list of class names",
                        H->config_path);
    const char *name = a->child->valuestring;
    for (int i = 0; i < N_HF_ARCHS; i++)
        if (strcmp(name, hf_archs[i].name) == 0) {
            hc->c.arch = hf_archs[i].arch;
            hc->c.max_ctx = hf_archs[i].max_ctx;
            hc->arch_name = hf_archs[i].name;
            return 0;
        }
    char shown[80];
    return qerr_set(H->err,
                    "%s: architecture '%s' is not supported (LlamaForCausalLM, "
                    "MistralForCausalLM, Qwen2ForCausalLM)",
                    H->config_path, oneline(name, shown, sizeof shown));
}

/* RoPE: only the plain rotary embedding. transformers 4.x writes
 * rope_theta and rope_scaling; 5.x writes rope_parameters {rope_type,
 * rope_theta}. */
static int read_rope(const struct hf *H, const cJSON *root, struct hf_config *hc)
{
    hc->c.rope = QLLM_ROPE_HALF; /* transformers' rotate_half: pairs (i, i + head_dim/2) */
    hc->c.rope_theta = 10000.0f;
    if (cfg_float(H, root, "rope_theta", 0, 1e12, &hc->c.rope_theta) < 0)
        return -1;
    const char *keys[2] = {"rope_scaling", "rope_parameters"};
    for (int k = 0; k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!v || cJSON_IsNull(v))
            continue;
        if (!cJSON_IsObject(v))
            return qerr_set(H->err, "%s: \"%s\" must be an object or null", H->config_path,
                            keys[k]);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "rope_type");
        if (!type)
            type = cJSON_GetObjectItemCaseSensitive(v, "type");
        /* rope_parameters without a type is the plain one */
        const char *tname = cJSON_IsString(type) ? type->valuestring : k == 1 ? "default" : "?";
        int plain = strcmp(tname, "default") == 0;
        if (k == 0 || !plain) {
            char shown[40];
            return qerr_set(H->err,
                            "%s: \"%s\" (rope_type '%s') is not supported yet: qlab runs plain "
                            "RoPE only",
                            H->config_path, keys[k], oneline(tname, shown, sizeof shown));
        }
        if (cfg_float(H, v, "rope_theta", 0, 1e12, &hc->c.rope_theta) < 0)
            return -1;
    }
    return 0;
}

/* Features of the three classes that the forward pass does not have. */
static int refuse_extras(const struct hf *H, const cJSON *root, const struct hf_config *hc)
{
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0))
        return qerr_set(H->err, "%s: \"hidden_act\" must be \"silu\" (SwiGLU)", H->config_path);
    int attn_bias = 0, mlp_bias = 0;
    if (cfg_bool(H, root, "mlp_bias", &mlp_bias) < 0)
        return -1;
    /* Llama's attention_bias adds biases to q, k, v and o; Qwen2 always
     * has q, k, v biases and no such field. */
    if (hc->c.arch == QLLM_LLAMA && cfg_bool(H, root, "attention_bias", &attn_bias) < 0)
        return -1;
    if (attn_bias || mlp_bias)
        return qerr_set(H->err, "%s: \"%s\" is true; qlab's llama has no %s biases",
                        H->config_path, attn_bias ? "attention_bias" : "mlp_bias",
                        attn_bias ? "attention" : "MLP");
    /* Mistral's sliding_window and Qwen2's use_sliding_window are accepted:
     * attention here is always over the whole context, which equals
     * windowed attention while the context is no longer than the window
     * (4096 for Mistral 7B v0.1, larger than any context qlab evaluates
     * with by default). Contexts beyond the window are not windowed. */
    return 0;
}

static int read_config(const struct hf *H, const cJSON *root, struct hf_config *hc)
{
    struct qllm_config *c = &hc->c;
    memset(hc, 0, sizeof *hc);
    if (!cJSON_IsObject(root))
        return qerr_set(H->err, "%s: not a model configuration (expected a JSON object)",
                        H->config_path);
    if (read_arch(H, root, hc) < 0)
        return -1;
    if (cfg_need_int(H, root, "hidden_size", 1, 1 << 16, &c->dim) < 0 ||
        cfg_need_int(H, root, "intermediate_size", 1, 1 << 20, &c->hidden_dim) < 0 ||
        cfg_need_int(H, root, "num_hidden_layers", 1, 4096, &c->n_layers) < 0 ||
        cfg_need_int(H, root, "num_attention_heads", 1, 4096, &c->n_heads) < 0 ||
        cfg_need_int(H, root, "vocab_size", 1, 1 << 24, &c->vocab_size) < 0)
        return -1;
    c->n_kv_heads = c->n_heads; /* transformers: None means multi-head attention */
    if (cfg_int(H, root, "num_key_value_heads", 1, 4096, &c->n_kv_heads) < 0)
        return -1;
    if (c->n_heads % c->n_kv_heads != 0)
        return qerr_set(H->err, "%s: num_attention_heads %d is not a multiple of "
                        "num_key_value_heads %d", H->config_path, c->n_heads, c->n_kv_heads);
    int rc = cfg_int(H, root, "head_dim", 1, 1 << 16, &c->head_dim);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        if (c->dim % c->n_heads != 0)
            return qerr_set(H->err, "%s: hidden_size %d is not a multiple of "
                            "num_attention_heads %d (and there is no head_dim)",
                            H->config_path, c->dim, c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    }
    if (c->head_dim % 2 != 0)
        return qerr_set(H->err, "%s: head_dim %d is odd; rotary embeddings need pairs",
                        H->config_path, c->head_dim);
    if (cfg_int(H, root, "max_position_embeddings", 1, INT_MAX, &c->max_ctx) < 0)
        return -1;
    c->norm_eps = 1e-6f; /* LlamaConfig, MistralConfig and Qwen2Config */
    if (cfg_float(H, root, "rms_norm_eps", 0, 1, &c->norm_eps) < 0)
        return -1;
    if (read_rope(H, root, hc) < 0 || refuse_extras(H, root, hc) < 0)
        return -1;
    /* torch_dtype is not read: each tensor's own dtype decides its view. */
    if (cfg_bool(H, root, "tie_word_embeddings", &hc->tied) < 0)
        return -1;
    if (cfg_token_id(H, root, "bos_token_id", &hc->bos) < 0 ||
        cfg_token_id(H, root, "eos_token_id", &hc->eos) < 0)
        return -1;
    return 0;
}

/* ---- weight files ---------------------------------------------------------------- */

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct hf_entry *)a)->name, ((const struct hf_entry *)b)->name);
}

/* Orders by file, then name: finds a tensor in one shard. */
static int cmp_file_entry(const void *a, const void *b)
{
    const struct hf_entry *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Opens a weight file and appends it to m->files. */
static int add_file(struct hf *H, const char *path)
{
    struct qmodel *m = H->m;
    struct st_file **files = realloc(m->files, (size_t)(m->n_files + 1) * sizeof *files);
    if (!files)
        return qerr_set(H->err, "%s: out of memory", path);
    m->files = files;
    if (st_open(path, &m->files[m->n_files], H->err) < 0)
        return -1;
    m->n_files++;
    return 0;
}

/* After sorting: a name given twice would make the weights ambiguous. */
static int check_unique(const struct hf *H, const char *where)
{
    char shown[96];
    for (int i = 1; i < H->n_ents; i++)
        if (strcmp(H->ents[i - 1].name, H->ents[i].name) == 0)
            return qerr_set(H->err, "%s: tensor '%s' is listed twice", where,
                            oneline(H->ents[i].name, shown, sizeof shown));
    return 0;
}

static int open_single(struct hf *H, const char *path)
{
    if (add_file(H, path) < 0)
        return -1;
    const struct st_file *f = H->m->files[0];
    H->ents = calloc((size_t)(f->n_tensors ? f->n_tensors : 1), sizeof *H->ents);
    if (!H->ents)
        return qerr_set(H->err, "%s: out of memory", path);
    for (int i = 0; i < f->n_tensors; i++)
        H->ents[i] = (struct hf_entry){f->tensors[i].name, &f->tensors[i], 0};
    H->n_ents = f->n_tensors;
    qsort(H->ents, (size_t)H->n_ents, sizeof *H->ents, cmp_entry);
    return check_unique(H, path);
}

/* A shard must be a file of the folder itself: no paths from strangers. */
static int plain_file_name(const char *s)
{
    return s[0] && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* The shard file named by weight_map value `shard`, opened on first use;
 * its index in m->files into *file. names: the shard names opened so far. */
static int shard_index(struct hf *H, const char *index, const char *tensor, const char *shard,
                       const char ***names, int *file)
{
    struct qmodel *m = H->m;
    for (int i = 0; i < m->n_files; i++)
        if (strcmp((*names)[i], shard) == 0) {
            *file = i;
            return 0;
        }
    char *path = qpath_join(H->dir, shard);
    if (!path)
        return qerr_set(H->err, "%s: out of memory", index);
    if (access(path, F_OK) != 0) {
        char a[96], b[96];
        qerr_set(H->err, "%s: shard '%s' (of tensor '%s') is listed but absent", index,
                 oneline(shard, a, sizeof a), oneline(tensor, b, sizeof b));
        free(path);
        return -1;
    }
    const char **grown = realloc(*names, (size_t)(m->n_files + 1) * sizeof *grown);
    if (!grown) {
        free(path);
        return qerr_set(H->err, "%s: out of memory", index);
    }
    *names = grown;
    int rc = add_file(H, path);
    free(path);
    if (rc < 0)
        return -1;
    grown[m->n_files - 1] = shard;
    *file = m->n_files - 1;
    return 0;
}

/* Points every weight_map entry at its tensor in its shard. */
static int resolve_entries(struct hf *H, const char *index)
{
    struct qmodel *m = H->m;
    size_t total = 0;
    for (int f = 0; f < m->n_files; f++)
        total += (size_t)m->files[f]->n_tensors;
    struct hf_entry *all = calloc(total ? total : 1, sizeof *all);
    if (!all)
        return qerr_set(H->err, "%s: out of memory", index);
    size_t k = 0;
    for (int f = 0; f < m->n_files; f++)
        for (int i = 0; i < m->files[f]->n_tensors; i++)
            all[k++] = (struct hf_entry){m->files[f]->tensors[i].name, &m->files[f]->tensors[i], f};
    qsort(all, total, sizeof *all, cmp_file_entry);
    for (int i = 0; i < H->n_ents; i++) {
        struct hf_entry *e = &H->ents[i];
        const struct hf_entry *hit = bsearch(e, all, total, sizeof *all, cmp_file_entry);
        if (!hit) {
            char shown[96];
            qerr_set(H->err, "%s: tensor '%s' (listed in %s) is not in the file",
                     m->files[e->file]->path, oneline(e->name, shown, sizeof shown),
                     qpath_basename(index));
            free(all);
            return -1;
        }
        *e = *hit; /* the name now belongs to the tensor, not to the index's JSON */
    }
    free(all);
    return 0;
}

static int open_sharded(struct hf *H, const char *index)
{
    cJSON *root = NULL;
    const char **names = NULL;
    int rc = -1;
    if (qhf_read_json(index, MAX_INDEX_BYTES, &root, H->err) < 0)
        return -1;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(wm)) {
        qerr_set(H->err, "%s: no \"weight_map\" object (tensor name -> shard file)", index);
        goto done;
    }
    int n = 0;
    for (const cJSON *e = wm->child; e; e = e->next)
        if (++n > MAX_WEIGHT_MAP) {
            qerr_set(H->err, "%s: more than %d tensors in \"weight_map\"", index, MAX_WEIGHT_MAP);
            goto done;
        }
    if (n == 0) {
        qerr_set(H->err, "%s: \"weight_map\" is empty", index);
        goto done;
    }
    H->ents = calloc((size_t)n, sizeof *H->ents);
    if (!H->ents) {
        qerr_set(H->err, "%s: out of memory", index);
        goto done;
    }
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !plain_file_name(e->valuestring)) {
            char shown[96];
            qerr_set(H->err, "%s: weight_map entry '%s' must name a file of the folder", index,
                     oneline(e->string, shown, sizeof shown));
            goto done;
        }
        int file = 0;
        if (shard_index(H, index, e->string, e->valuestring, &names, &file) < 0)
            goto done;
        H->ents[H->n_ents++] = (struct hf_entry){e->string, NULL, file};
    }
    if (resolve_entries(H, index) < 0)
        goto done;
    qsort(H->ents, (size_t)H->n_ents, sizeof *H->ents, cmp_entry);
    rc = check_unique(H, index);
done:
    if (rc < 0)
        H->n_ents = 0; /* entries may still point into the JSON freed below */
    free(names);
    cJSON_Delete(root);
    return rc;
}

/* model.safetensors, else the shards of model.safetensors.index.json (the
 * order transformers' from_pretrained looks in). */
static int open_weights(struct hf *H)
{
    char *single = qpath_join(H->dir, "model.safetensors");
    char *index = qpath_join(H->dir, "model.safetensors.index.json");
    int rc = -1;
    if (!single || !index) {
        qerr_set(H->err, "%s: out of memory", H->dir);
    } else if (access(single, F_OK) == 0) {
        H->weights_path = single;
        single = NULL;
        rc = open_single(H, H->weights_path);
    } else if (access(index, F_OK) == 0) {
        H->weights_path = index;
        index = NULL;
        rc = open_sharded(H, H->weights_path);
    } else {
        qerr_set(H->err, "%s: no model.safetensors or model.safetensors.index.json (qlab reads "
                 "safetensors weights only)", H->dir);
    }
    free(single);
    free(index);
    return rc;
}

/* ---- tensors ------------------------------------------------------------------- */

static struct hf_entry *find_entry(const struct hf *H, const char *name)
{
    struct hf_entry key = {name, NULL, 0};
    return H->n_ents ? bsearch(&key, H->ents, (size_t)H->n_ents, sizeof *H->ents, cmp_entry)
                     : NULL;
}

/* Room for every tensor a model of n_layers can take. */
static int reserve_tensors(struct hf *H, int n_layers)
{
    struct qmodel *m = H->m;
    size_t cap = 3 + 12 * (size_t)n_layers;
    m->tensors = calloc(cap, sizeof *m->tensors);
    m->source_names = calloc(cap, sizeof *m->source_names);
    m->stored_types = calloc(cap, sizeof *m->stored_types);
    m->stored_bytes = calloc(cap, sizeof *m->stored_bytes);
    if (!m->tensors || !m->source_names || !m->stored_types || !m->stored_bytes)
        return qerr_set(H->err, "%s: out of memory", H->dir);
    H->cap_tensors = (int)cap;
    return 0;
}

/* Takes the tensor the files call `hf` into the model under the GGUF-style
 * name `gguf`, keeping `hf` in source_names; its index into *slot. An
 * absent tensor is an error when required, else leaves *slot. */
static int take(struct hf *H, const char *hf, const char *gguf, int required, int *slot)
{
    struct qmodel *m = H->m;
    const struct hf_entry *e = find_entry(H, hf);
    if (!e) {
        if (!required)
            return 0;
        return qerr_set(H->err, "%s: tensor '%s' is missing", H->weights_path, hf);
    }
    struct qtensor *t = e->t;
    const char *file = m->files[e->file]->path;
    if (t->dtype != QDT_F32 && t->dtype != QDT_F16 && t->dtype != QDT_BF16)
        return qerr_set(H->err, "%s: tensor '%s' is %s; qlab reads F32, F16 and BF16 weights",
                        file, hf, qdtype_info(t->dtype)->name);
    if (!t->f32 && qtensor_make_f32(t, H->err) < 0)
        return -1;
    if (m->n_tensors >= H->cap_tensors)
        return qerr_set(H->err, "%s: too many tensors", H->dir); /* cannot happen: reserved */
    char *name = strdup(gguf);
    if (!name)
        return qerr_set(H->err, "%s: out of memory", file);
    int i = m->n_tensors++;
    m->tensors[i] = t;
    m->source_names[i] = t->name; /* st_close frees the new name, qmodel_free the old */
    t->name = name;
    *slot = i;
    return 0;
}

/* Per layer: Hugging Face name (after "model.layers.N."), GGUF-style name
 * (after "blk.N."), the field of struct qllm_layer, and whether only
 * Qwen2 has it. */
static const struct {
    const char *hf, *gguf;
    size_t slot;
    int qwen2;
} layer_tensors[] = {
    {"input_layernorm.weight", "attn_norm.weight", offsetof(struct qllm_layer, attn_norm), 0},
    {"self_attn.q_proj.weight", "attn_q.weight", offsetof(struct qllm_layer, wq), 0},
    {"self_attn.q_proj.bias", "attn_q.bias", offsetof(struct qllm_layer, bq), 1},
    {"self_attn.k_proj.weight", "attn_k.weight", offsetof(struct qllm_layer, wk), 0},
    {"self_attn.k_proj.bias", "attn_k.bias", offsetof(struct qllm_layer, bk), 1},
    {"self_attn.v_proj.weight", "attn_v.weight", offsetof(struct qllm_layer, wv), 0},
    {"self_attn.v_proj.bias", "attn_v.bias", offsetof(struct qllm_layer, bv), 1},
    {"self_attn.o_proj.weight", "attn_output.weight", offsetof(struct qllm_layer, wo), 0},
    {"post_attention_layernorm.weight", "ffn_norm.weight", offsetof(struct qllm_layer, ffn_norm),
     0},
    {"mlp.gate_proj.weight", "ffn_gate.weight", offsetof(struct qllm_layer, w_gate), 0},
    {"mlp.up_proj.weight", "ffn_up.weight", offsetof(struct qllm_layer, w_up), 0},
    {"mlp.down_proj.weight", "ffn_down.weight", offsetof(struct qllm_layer, w_down), 0},
};
#define N_LAYER_TENSORS ((int)(sizeof layer_tensors / sizeof layer_tensors[0]))

static int take_tensors(struct hf *H, const struct hf_config *hc)
{
    struct qllm *l = H->m->llm;
    if (reserve_tensors(H, hc->c.n_layers) < 0)
        return -1;
    if (take(H, "model.embed_tokens.weight", "token_embd.weight", 1, &l->token_embd) < 0)
        return -1;
    for (int b = 0; b < hc->c.n_layers; b++)
        for (int k = 0; k < N_LAYER_TENSORS; k++) {
            if (layer_tensors[k].qwen2 && hc->c.arch != QLLM_QWEN2)
                continue;
            char hf[96], gguf[96];
            snprintf(hf, sizeof hf, "model.layers.%d.%s", b, layer_tensors[k].hf);
            snprintf(gguf, sizeof gguf, "blk.%d.%s", b, layer_tensors[k].gguf);
            int *slot = (int *)((char *)&l->layers[b] + layer_tensors[k].slot);
            if (take(H, hf, gguf, 1, slot) < 0)
                return -1;
        }
    if (take(H, "model.norm.weight", "output_norm.weight", 1, &l->output_norm) < 0)
        return -1;
    /* Tied: the output is the embedding, as transformers ties it (a stored
     * lm_head.weight is then ignored); without lm_head.weight at all the
     * output is tied too. */
    l->output = l->token_embd;
    if (!hc->tied && take(H, "lm_head.weight", "output.weight", 0, &l->output) < 0)
        return -1;
    return 0;
}

/* ---- tokenizer ------------------------------------------------------------------ */

static int load_tokenizer(struct hf *H, const struct hf_config *hc, char **tok_path)
{
    char *path = qpath_join(H->dir, "tokenizer.json");
    char *tcfg = qpath_join(H->dir, "tokenizer_config.json");
    int rc = -1;
    if (!path || !tcfg) {
        qerr_set(H->err, "%s: out of memory", H->dir);
    } else if (access(path, F_OK) != 0) {
        rc = 0; /* a model for token-id data */
    } else {
        rc = qhf_load_tokenizer(path, access(tcfg, F_OK) == 0 ? tcfg : NULL, hc->bos, hc->eos,
                                hc->c.vocab_size, &H->m->llm->tok, H->err);
        if (rc == 0) {
            *tok_path = path;
            path = NULL;
        } else if (strstr(H->err->msg, "is not supported")) {
            /* a well-formed tokenizer qlab does not implement: the model still
             * serves token-id data, and text data gets this reason */
            H->m->llm->tok_note = strdup(H->err->msg);
            rc = H->m->llm->tok_note ? 0 : qerr_set(H->err, "%s: out of memory", H->dir);
        }
    }
    free(path);
    free(tcfg);
    return rc;
}

/* ---- entry point ---------------------------------------------------------------- */

/* The folder's own name: "models/tiny/" -> "tiny"; "." -> the real name. */
static char *folder_name(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    const char *b = dir + n;
    while (b > dir && b[-1] != '/')
        b--;
    size_t len = (size_t)(dir + n - b);
    if (len == 0 || (len == 1 && b[0] == '.') || (len == 2 && b[0] == '.' && b[1] == '.') ||
        (len == 1 && b[0] == '/')) {
        char *real = realpath(dir, NULL);
        if (real && strcmp(real, "/") != 0) {
            char *name = strdup(qpath_basename(real));
            free(real);
            return name;
        }
        free(real);
        return strdup("model");
    }
    return strndup(b, len);
}

static int describe(struct hf *H, const struct hf_config *hc)
{
    struct qmodel *m = H->m;
    char desc[128];
    snprintf(desc, sizeof desc, "Hugging Face %s", hc->arch_name);
    m->path = strdup(H->dir);
    m->name = folder_name(H->dir);
    m->format = strdup("hf");
    m->description = strdup(desc);
    m->llm = qllm_new(hc->c.n_layers);
    if (!m->path || !m->name || !m->format || !m->description || !m->llm)
        return qerr_set(H->err, "%s: out of memory", H->dir);
    m->llm->c = hc->c;
    return 0;
}

/* config.json and tokenizer.json identify the model beside the weights. */
static int set_extra_files(struct hf *H, char **tok_path)
{
    struct qmodel *m = H->m;
    m->extra_files = calloc(2, sizeof *m->extra_files);
    if (!m->extra_files)
        return qerr_set(H->err, "%s: out of memory", H->dir);
    m->extra_files[m->n_extra_files++] = H->config_path;
    H->config_path = NULL;
    if (*tok_path) {
        m->extra_files[m->n_extra_files++] = *tok_path;
        *tok_path = NULL;
    }
    return 0;
}

int qllm_load_hf(const char *dir, struct qmodel **out, qerr *err)
{
    *out = NULL;
    struct hf H = {.dir = dir, .err = err};
    struct hf_config hc;
    cJSON *cfg = NULL;
    char *tok_path = NULL;
    int rc = -1;
    H.m = calloc(1, sizeof *H.m);
    H.config_path = qpath_join(dir, "config.json");
    if (!H.m || !H.config_path) {
        qerr_set(err, "%s: out of memory", dir);
        goto done;
    }
    H.m->kind = QMODEL_LM;
    if (qhf_read_json(H.config_path, MAX_CONFIG_BYTES, &cfg, err) < 0 ||
        read_config(&H, cfg, &hc) < 0 || describe(&H, &hc) < 0 || open_weights(&H) < 0 ||
        take_tensors(&H, &hc) < 0 || load_tokenizer(&H, &hc, &tok_path) < 0 ||
        set_extra_files(&H, &tok_path) < 0 || qllm_validate(H.m, err) < 0)
        goto done;
    rc = 0;
done:
    cJSON_Delete(cfg);
    free(H.config_path);
    free(H.weights_path);
    free(H.ents);
    free(tok_path);
    if (rc < 0) {
        qmodel_free(H.m);
        return -1;
    }
    *out = H.m;
    return 0;
}
