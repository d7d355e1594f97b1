/* llm_hf_tokenizer.c — reads a Hugging Face tokenizer.json (Llama-2-style or byte-level BPE) into a qtokenizer.
 *
 * Two kinds of tokenizer.json are read, both with model.type "BPE":
 *
 * - Llama-2 style (converted from SentencePiece): byte_fallback, spaces
 *   written "▁" by a Replace(" " -> "▁") normalizer or a Metaspace
 *   pre-tokenizer, a "▁" put before the text by a Prepend normalizer or by
 *   Metaspace's prepend_scheme. It becomes qtok_new_spm, which merges the
 *   adjacent pair whose merged piece scores best. The scores are made from
 *   the merge ranks: a piece scores -(rank of the first merge that makes
 *   it); single characters and <0xNN> bytes score 0. transformers
 *   generates such merges from the SentencePiece model (generate_merges):
 *   every split of every piece into two pieces of the vocabulary, ordered
 *   by the merged piece's score, so "pair is a merge" equals "concatenation
 *   is in the vocabulary" and ranks order pieces as their scores did; both
 *   algorithms then pick the same pair at every step, leftmost among
 *   equals. Where they can differ: two overlapping pairs (A,B) and (B,C)
 *   with A+B == B+C, for which HF prefers the longer left piece and SPM
 *   the leftmost pair; and pieces that no merge makes (specials such as
 *   "<s>"), which score -1e30 so that an SPM tokenizer skips them as a
 *   merge result (HF never makes them).
 *
 * - byte-level (GPT-2, Llama 3, Qwen2): a ByteLevel pre-tokenizer, possibly
 *   after a Split with the regex that chooses the pre-tokenizer. It becomes
 *   qtok_new_bpe with the merges in rank order.
 */
#include "llm_hf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#define MAX_TOKENIZER_BYTES (256u << 20) /* Llama 3's tokenizer.json is 9 MB */
#define MAX_TOKCONFIG_BYTES (16u << 20)  /* tokenizer_config.json: chat templates */
#define MAX_TOKENS (1 << 22)
#define MAX_MERGES (1 << 24)             /* ranks stay exact as float scores */
#define MAX_DEPTH 4                      /* nested Sequence normalizers/pre-tokenizers */
#define SPACE_MARK "\xe2\x96\x81"        /* U+2581 "▁" */
#define UNMADE_SCORE (-1e30f)            /* a piece no merge makes */

/* The Split regexes of Llama 3 and Qwen2 as tokenizer.json holds them. */
static const char re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char re_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ---- state ------------------------------------------------------------------- */

struct tj_piece {
    const char *s;
    int id;
};

/* What the normalizer and pre-tokenizer do, as far as qlab cares. */
struct tj_shape {
    int bytelevel;              /* a ByteLevel pre-tokenizer */
    int bytelevel_regex;        /* its use_regex: GPT-2's split */
    const char *split;          /* a Split pre-tokenizer's regex, or NULL */
    int metaspace;              /* a Metaspace pre-tokenizer ("▁" for spaces) */
    int metaspace_prefix;       /* it puts "▁" before the text */
    int prepend;                /* a Prepend("▁") normalizer */
    int replace_space;          /* a Replace(" " -> "▁") normalizer */
};

struct tj {
    const char *path;
    int n;                      /* tokens: highest id + 1 */
    const char **pieces;        /* n, into the JSON tree */
    struct tj_piece *sorted;    /* n, by string then id: lookups */
    int n_merges;
    char **merges;              /* "left right" strings in rank order */
    int *merge_split;           /* n_merges: byte length of the left piece */
    int merges_as_text;         /* byte-level: merges go out as "left right", so no spaces inside */
    qerr *err;
};

/* A piece as a one-line message shows it: control bytes escaped, cut short. */
static const char *show(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    for (; *s && o + 5 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    if (*s && o + 4 <= size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
    return buf;
}

static const char *jstr(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int cmp_piece(const void *a, const void *b)
{
    const struct tj_piece *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* The lowest id of piece s, or -1. */
static int lookup(const struct tj *T, const char *s)
{
    int lo = 0, hi = T->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(T->sorted[mid].s, s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < T->n && strcmp(T->sorted[lo].s, s) == 0 ? T->sorted[lo].id : -1;
}

static void tj_clear(struct tj *T)
{
    for (int i = 0; i < T->n_merges; i++)
        free(T->merges[i]);
    free(T->merges);
    free(T->merge_split);
    free(T->pieces);
    free(T->sorted);
}

/* ---- vocabulary ---------------------------------------------------------------- */

static int token_id(const cJSON *v, int *id)
{
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!(d >= 0 && d < MAX_TOKENS) || d != (double)(int)d)
        return -1;
    *id = (int)d;
    return 0;
}

/* Puts piece s at id; an id given to two different pieces is an error. */
static int place(struct tj *T, int id, const char *s)
{
    char a[64], b[64];
    if (!s[0])
        return qerr_set(T->err, "%s: token %d is an empty string", T->path, id);
    if (T->pieces[id] && strcmp(T->pieces[id], s) != 0)
        return qerr_set(T->err, "%s: id %d is given to both '%s' and '%s'", T->path, id,
                        show(T->pieces[id], a, sizeof a), show(s, b, sizeof b));
    T->pieces[id] = s;
    return 0;
}

/* model.vocab {piece: id} and added_tokens [{id, content}] into pieces[],
 * which must cover 0..n-1. */
static int read_vocab(struct tj *T, const cJSON *model, const cJSON *added)
{
    char a[64];
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsObject(vocab))
        return qerr_set(T->err, "%s: model has no \"vocab\" object", T->path);
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
        return qerr_set(T->err, "%s: \"added_tokens\" must be a list", T->path);
    int max_id = -1, id;
    for (const cJSON *v = vocab->child; v; v = v->next) {
        if (token_id(v, &id) < 0)
            return qerr_set(T->err, "%s: vocab entry '%s' needs an id in 0..%d", T->path,
                            show(v->string, a, sizeof a), MAX_TOKENS - 1);
        max_id = id > max_id ? id : max_id;
    }
    for (const cJSON *t = cJSON_IsArray(added) ? added->child : NULL; t; t = t->next) {
        if (token_id(cJSON_GetObjectItemCaseSensitive(t, "id"), &id) < 0 ||
            !jstr(t, "content"))
            return qerr_set(T->err, "%s: added_tokens entries need an \"id\" in 0..%d and a "
                            "\"content\" string", T->path, MAX_TOKENS - 1);
        max_id = id > max_id ? id : max_id;
    }
    if (max_id < 0)
        return qerr_set(T->err, "%s: the vocabulary is empty", T->path);
    T->n = max_id + 1;
    T->pieces = calloc((size_t)T->n, sizeof *T->pieces);
    T->sorted = calloc((size_t)T->n, sizeof *T->sorted);
    if (!T->pieces || !T->sorted)
        return qerr_set(T->err, "%s: out of memory", T->path);
    for (const cJSON *v = vocab->child; v; v = v->next)
        if (token_id(v, &id) < 0 || place(T, id, v->string) < 0)
            return -1;
    for (const cJSON *t = cJSON_IsArray(added) ? added->child : NULL; t; t = t->next)
        if (token_id(cJSON_GetObjectItemCaseSensitive(t, "id"), &id) < 0 ||
            place(T, id, jstr(t, "content")) < 0)
            return -1;
    for (int i = 0; i < T->n; i++) {
        if (!T->pieces[i])
            return qerr_set(T->err, "%s: no token has id %d (ids must run 0..%d without gaps)",
                            T->path, i, T->n - 1);
        T->sorted[i] = (struct tj_piece){T->pieces[i], i};
    }
    qsort(T->sorted, (size_t)T->n, sizeof *T->sorted, cmp_piece);
    return 0;
}

/* ---- merges -------------------------------------------------------------------- */

/* Merge r as its two pieces: "left right" or ["left", "right"] (newer
 * files, which allow spaces inside pieces). */
static int merge_pair(const struct tj *T, const cJSON *m, int r, const char **l, size_t *ll,
                      const char **rt)
{
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        if (!sp || sp == m->valuestring || !sp[1] || strchr(sp + 1, ' '))
            return qerr_set(T->err, "%s: merge %d must be two pieces separated by one space",
                            T->path, r);
        *l = m->valuestring;
        *ll = (size_t)(sp - m->valuestring);
        *rt = sp + 1;
        return 0;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
        cJSON_IsString(m->child->next) && m->child->valuestring[0] &&
        m->child->next->valuestring[0]) {
        *l = m->child->valuestring;
        *ll = strlen(*l);
        *rt = m->child->next->valuestring;
        return 0;
    }
    return qerr_set(T->err, "%s: merge %d must be \"left right\" or [\"left\", \"right\"]",
                    T->path, r);
}

/* Reads model.merges; both pieces and their concatenation must be tokens. */
static int read_merges(struct tj *T, const cJSON *model)
{
    char a[64], b[64], c[64];
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsArray(ms))
        return qerr_set(T->err, "%s: model has no \"merges\" list", T->path);
    int n = 0;
    for (const cJSON *m = ms->child; m; m = m->next)
        if (++n > MAX_MERGES)
            return qerr_set(T->err, "%s: more than %d merges", T->path, MAX_MERGES);
    T->merges = calloc((size_t)(n ? n : 1), sizeof *T->merges);
    T->merge_split = calloc((size_t)(n ? n : 1), sizeof *T->merge_split);
    if (!T->merges || !T->merge_split)
        return qerr_set(T->err, "%s: out of memory", T->path);
    int r = 0;
    for (const cJSON *m = ms->child; m; m = m->next, r++) {
        const char *l = NULL, *rt = NULL;
        size_t ll = 0;
        if (merge_pair(T, m, r, &l, &ll, &rt) < 0)
            return -1;
        size_t rl = strlen(rt);
        if (T->merges_as_text && (memchr(l, ' ', ll) || strchr(rt, ' ')))
            return qerr_set(T->err, "%s: merge %d has a space inside a piece", T->path, r);
        char *s = malloc(ll + rl + 2);
        if (!s)
            return qerr_set(T->err, "%s: out of memory", T->path);
        memcpy(s, l, ll);
        s[ll] = 0;
        memcpy(s + ll + 1, rt, rl + 1);
        T->merges[r] = s;
        T->merge_split[r] = (int)ll;
        T->n_merges = r + 1;
        /* s holds "left\0right": look both up, then the concatenation. */
        const char *bad = lookup(T, s) < 0 ? s : lookup(T, s + ll + 1) < 0 ? s + ll + 1 : NULL;
        if (bad)
            return qerr_set(T->err, "%s: merge %d ('%s' '%s'): '%s' is not in the vocabulary",
                            T->path, r, show(s, a, sizeof a), show(s + ll + 1, b, sizeof b),
                            show(bad, c, sizeof c));
        memmove(s + ll, s + ll + 1, rl + 1);
        int made = lookup(T, s);
        memmove(s + ll + 1, s + ll, rl + 1);
        s[ll] = ' ';
        if (made < 0) {
            s[ll] = 0;
            return qerr_set(T->err, "%s: merge %d ('%s' '%s') makes a piece that is not in the "
                            "vocabulary", T->path, r, show(s, a, sizeof a),
                            show(s + ll + 1, b, sizeof b));
        }
    }
    return 0;
}

/* ---- normalizer and pre-tokenizer ------------------------------------------------ */

static int read_normalizer(const struct tj *T, const cJSON *nz, int depth, struct tj_shape *s)
{
    char a[64], b[64];
    if (!nz || cJSON_IsNull(nz))
        return 0;
    const char *type = jstr(nz, "type");
    if (!type || depth > MAX_DEPTH)
        return qerr_set(T->err, "%s: a normalizer without a \"type\"", T->path);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(nz, "normalizers");
        for (const cJSON *e = cJSON_IsArray(list) ? list->child : NULL; e; e = e->next)
            if (read_normalizer(T, e, depth + 1, s) < 0)
                return -1;
        return 0;
    }
    if (strcmp(type, "Prepend") == 0) {
        const char *p = jstr(nz, "prepend");
        if (!p || strcmp(p, SPACE_MARK) != 0)
            return qerr_set(T->err, "%s: normalizer Prepend('%s') is not supported (only '"
                            SPACE_MARK "')", T->path, show(p ? p : "?", a, sizeof a));
        s->prepend = 1;
        return 0;
    }
    if (strcmp(type, "Replace") == 0) {
        const char *from = jstr(cJSON_GetObjectItemCaseSensitive(nz, "pattern"), "String");
        const char *to = jstr(nz, "content");
        if (!from || !to || strcmp(from, " ") != 0 || strcmp(to, SPACE_MARK) != 0)
            return qerr_set(T->err, "%s: normalizer Replace('%s' -> '%s') is not supported "
                            "(only ' ' -> '" SPACE_MARK "')", T->path,
                            show(from ? from : "?", a, sizeof a), show(to ? to : "?", b, sizeof b));
        s->replace_space = 1;
        return 0;
    }
    /* Qwen2's NFC: qlab does not normalize; text that is already NFC (as
     * almost all text is) tokenizes the same. */
    if (strcmp(type, "NFC") == 0)
        return 0;
    return qerr_set(T->err, "%s: normalizer '%s' is not supported (Prepend, Replace, NFC)",
                    T->path, show(type, a, sizeof a));
}

static int read_pretokenizer(const struct tj *T, const cJSON *pt, int depth, struct tj_shape *s)
{
    char a[64];
    if (!pt || cJSON_IsNull(pt))
        return 0;
    const char *type = jstr(pt, "type");
    if (!type || depth > MAX_DEPTH)
        return qerr_set(T->err, "%s: a pre_tokenizer without a \"type\"", T->path);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers");
        for (const cJSON *e = cJSON_IsArray(list) ? list->child : NULL; e; e = e->next)
            if (read_pretokenizer(T, e, depth + 1, s) < 0)
                return -1;
        return 0;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(pt, "add_prefix_space");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pt, "use_regex");
        if (cJSON_IsTrue(prefix))
            return qerr_set(T->err, "%s: ByteLevel with add_prefix_space is not supported",
                            T->path);
        s->bytelevel = 1;
        s->bytelevel_regex = !cJSON_IsFalse(re); /* default true */
        return 0;
    }
    if (strcmp(type, "Split") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const char *re = jstr(pat, "Regex");
        if (!re)
            re = jstr(pat, "String");
        if (!re || s->split)
            return qerr_set(T->err, "%s: %s", T->path, re ? "more than one Split pre-tokenizer"
                            : "a Split pre-tokenizer without a pattern");
        s->split = re;
        return 0;
    }
    if (strcmp(type, "Metaspace") == 0) {
        const char *rep = jstr(pt, "replacement");
        const char *scheme = jstr(pt, "prepend_scheme");
        if (!rep || strcmp(rep, SPACE_MARK) != 0)
            return qerr_set(T->err, "%s: Metaspace must replace spaces with '" SPACE_MARK "'",
                            T->path);
        s->metaspace = 1;
        /* "first" and "always" differ only after special tokens in the text,
         * which qlab's tokenizers do not look for. Older files say
         * add_prefix_space (default true). "split" only stops merges across
         * a "▁", which SentencePiece vocabularies never hold inside a piece. */
        if (scheme)
            s->metaspace_prefix = strcmp(scheme, "never") != 0;
        else
            s->metaspace_prefix = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(
                pt, "add_prefix_space"));
        return 0;
    }
    return qerr_set(T->err, "%s: pre_tokenizer '%s' is not supported (ByteLevel, Split, "
                    "Metaspace)", T->path, show(type, a, sizeof a));
}

/* Llama 3's and Qwen2's regexes are known by their text; any other is
 * taken as GPT-2's (where it differs, so will some pre-tokens). */
static enum qtok_pre choose_pre(const struct tj_shape *s)
{
    if (s->split && strcmp(s->split, re_llama3) == 0)
        return QTOK_PRE_LLAMA3;
    if (s->split && strcmp(s->split, re_qwen2) == 0)
        return QTOK_PRE_QWEN2;
    return QTOK_PRE_GPT2;
}

/* ---- SentencePiece-style scores --------------------------------------------------- */

/* One whole UTF-8 character, or a byte piece <0xNN>. */
static int base_piece(const char *s)
{
    unsigned char c = (unsigned char)s[0];
    size_t len = strlen(s);
    size_t want = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (want && len == want)
        return 1;
    unsigned x;
    char tail;
    return len == 6 && sscanf(s, "<0x%2X%c", &x, &tail) == 2 && tail == '>';
}

static float *spm_scores(const struct tj *T)
{
    float *scores = malloc((size_t)T->n * sizeof *scores);
    char *done = calloc((size_t)T->n, 1);
    if (!scores || !done) {
        free(scores);
        free(done);
        return NULL;
    }
    for (int i = 0; i < T->n; i++)
        scores[i] = base_piece(T->pieces[i]) ? 0.0f : UNMADE_SCORE;
    for (int r = 0; r < T->n_merges; r++) {
        char *s = T->merges[r];
        size_t ll = (size_t)T->merge_split[r];
        size_t rl = strlen(s + ll + 1);
        memmove(s + ll, s + ll + 1, rl + 1); /* "left right" -> "leftright" */
        int id = lookup(T, s);
        memmove(s + ll + 1, s + ll, rl + 1);
        s[ll] = ' ';
        if (id >= 0 && !done[id]) {
            done[id] = 1;
            scores[id] = -(float)r;
        }
    }
    free(done);
    return scores;
}

/* ---- special tokens ------------------------------------------------------------- */

/* tokenizer_config.json's key: "<s>" or {"content": "<s>", ...}; 1 when it
 * names a token (id into *id), 0 when absent or null. */
static int named_token(const struct tj *T, const char *file, const cJSON *tc, const char *key,
                       int *id)
{
    char a[64];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(tc, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    const char *content = cJSON_IsString(v) ? v->valuestring : jstr(v, "content");
    if (!content)
        return qerr_set(T->err, "%s: \"%s\" must be a string or {\"content\": ...}", file, key);
    if ((*id = lookup(T, content)) < 0)
        return qerr_set(T->err, "%s: %s '%s' is not a token of %s", file, key,
                        show(content, a, sizeof a), T->path);
    return 1;
}

/* bos/eos: tokenizer_config.json's names first (as llama.cpp's converter
 * reads them), else config.json's ids. */
static int read_specials(struct tj *T, const cJSON *model, const char *tok_config, int cfg_bos,
                         int cfg_eos, int *bos, int *eos, int *unk)
{
    char a[64];
    *bos = cfg_bos;
    *eos = cfg_eos;
    *unk = -1;
    const char *u = jstr(model, "unk_token");
    if (u && (*unk = lookup(T, u)) < 0)
        return qerr_set(T->err, "%s: unk_token '%s' is not in the vocabulary", T->path,
                        show(u, a, sizeof a));
    if (tok_config) {
        cJSON *tc = NULL;
        if (qhf_read_json(tok_config, MAX_TOKCONFIG_BYTES, &tc, T->err) < 0)
            return -1;
        int id, rc = 0;
        if (!cJSON_IsObject(tc))
            rc = qerr_set(T->err, "%s: expected a JSON object", tok_config);
        if (rc == 0 && (rc = named_token(T, tok_config, tc, "bos_token", &id)) > 0)
            *bos = id;
        if (rc >= 0 && (rc = named_token(T, tok_config, tc, "eos_token", &id)) > 0)
            *eos = id;
        cJSON_Delete(tc);
        if (rc < 0)
            return -1;
    }
    if (*bos >= T->n || *eos >= T->n)
        return qerr_set(T->err, "%s: config.json's %s %d is not a token id (%d tokens)", T->path,
                        *bos >= T->n ? "bos_token_id" : "eos_token_id",
                        *bos >= T->n ? *bos : *eos, T->n);
    return 0;
}

/* ---- entry point ---------------------------------------------------------------- */

static int build(struct tj *T, const cJSON *root, const char *tok_config, int cfg_bos,
                 int cfg_eos, int vocab_size, struct qtokenizer **out)
{
    char a[64];
    if (!cJSON_IsObject(root))
        return qerr_set(T->err, "%s: not a tokenizer (expected a JSON object)", T->path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *type = jstr(model, "type");
    if (!cJSON_IsObject(model) || (type && strcmp(type, "BPE") != 0))
        return qerr_set(T->err, "%s: model type '%s' is not supported (BPE only)", T->path,
                        show(type ? type : "?", a, sizeof a));
    const char *cont = jstr(model, "continuing_subword_prefix");
    const char *suffix = jstr(model, "end_of_word_suffix");
    if ((cont && cont[0]) || (suffix && suffix[0]))
        return qerr_set(T->err, "%s: BPE with a subword prefix or word suffix is not supported",
                        T->path);
    struct tj_shape s = {0};
    if (read_normalizer(T, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), 0, &s) < 0 ||
        read_pretokenizer(T, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), 0, &s) < 0)
        return -1;
    int spm = !s.bytelevel && (s.metaspace || s.replace_space);
    if (s.bytelevel && (s.metaspace || s.prepend || s.replace_space))
        return qerr_set(T->err, "%s: mixes a ByteLevel pre-tokenizer with '" SPACE_MARK
                        "' spaces", T->path);
    if (!s.bytelevel && !spm)
        return qerr_set(T->err, "%s: neither byte-level (a ByteLevel pre-tokenizer) nor "
                        "SentencePiece-style (spaces as '" SPACE_MARK "'); qlab reads those two",
                        T->path);
    if (spm && s.split)
        return qerr_set(T->err, "%s: a Split pre-tokenizer on a SentencePiece-style vocabulary "
                        "is not supported", T->path);
    if (spm && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")))
        return qerr_set(T->err, "%s: SentencePiece-style BPE without byte_fallback is not "
                        "supported", T->path);

    int bos, eos, unk;
    T->merges_as_text = !spm;
    if (read_vocab(T, model, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) < 0 ||
        read_merges(T, model) < 0 ||
        read_specials(T, model, tok_config, cfg_bos, cfg_eos, &bos, &eos, &unk) < 0)
        return -1;
    if (T->n > vocab_size)
        return qerr_set(T->err, "%s: %d tokens, more than config.json's vocab_size %d", T->path,
                        T->n, vocab_size);

    struct qtok_vocab v = {.n = T->n, .pieces = T->pieces, .bos = bos, .eos = eos, .unk = unk};
    int rc;
    if (spm) {
        float *scores = spm_scores(T);
        if (!scores)
            return qerr_set(T->err, "%s: out of memory", T->path);
        v.scores = scores;
        rc = qtok_new_spm(&v, 1, s.prepend || (s.metaspace && s.metaspace_prefix), out, T->err);
        free(scores);
    } else {
        /* merges[r] is "left right" again after read_merges. Llama 3's
         * ignore_merges (a pre-token that is a whole token is taken as it
         * is) is not applied: merges reach the same token in practice. */
        rc = qtok_new_bpe(&v, (const char *const *)T->merges, T->n_merges, choose_pre(&s), out,
                          T->err);
    }
    return rc < 0 ? qerr_prefix(T->err, "%s", T->path) : 0;
}

int qhf_load_tokenizer(const char *path, const char *tok_config, int cfg_bos, int cfg_eos,
                       int vocab_size, struct qtokenizer **out, qerr *err)
{
    *out = NULL;
    cJSON *root = NULL;
    if (qhf_read_json(path, MAX_TOKENIZER_BYTES, &root, err) < 0)
        return -1;
    struct tj T = {.path = path, .err = err};
    int rc = build(&T, root, tok_config, cfg_bos, cfg_eos, vocab_size, out);
    tj_clear(&T);
    cJSON_Delete(root);
    return rc;
}
