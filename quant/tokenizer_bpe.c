/* tokenizer_bpe.c — byte-level BPE (GPT-2): hand-written pre-tokenizers, the byte-to-unicode mapping, merges by rank. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "tokenizer_impl.h"
#include "unicode_tables.h"

#define TOK_MAX_MERGES (1 << 26)

/* ---- GPT-2 bytes_to_unicode ---------------------------------------------- */

/* Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the 68
 * others (0x00..0x20, 0x7F..0xA0, 0xAD), in byte order, for U+0100..U+0143. */
uint32_t tok_byte_to_cp(int b)
{
    if (b <= 0x20)
        return 256u + (uint32_t)b;
    if (b <= 0x7E)
        return (uint32_t)b;
    if (b <= 0xA0)
        return 256u + 33u + (uint32_t)(b - 0x7F);
    if (b == 0xAD)
        return 256u + 33u + 34u;
    return (uint32_t)b;
}

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256)
        return (cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || cp >= 0xAE ? (int)cp : -1;
    if (cp < 256 + 33)
        return (int)(cp - 256);
    if (cp < 256 + 33 + 34)
        return (int)(cp - 256 - 33 + 0x7F);
    return cp == 256 + 33 + 34 ? 0xAD : -1;
}

/* ---- pre-tokenizers ------------------------------------------------------ */

enum { C_L = 1, C_N = 2, C_S = 4 }; /* \p{L}, \p{N}, \s */

/* The text as code points. A byte that starts no valid UTF-8 sequence is
 * one "code point" of no class (it matches [^\s\p{L}\p{N}]), so the words
 * still cover every byte. */
struct cpv {
    uint32_t *cp;               /* n code points (0x110000 for an invalid byte) */
    unsigned char *cls;         /* n class bits C_* */
    size_t *boff;               /* n + 1 byte offsets */
    size_t n;
};

static int is_l(const struct cpv *c, size_t i) { return i < c->n && (c->cls[i] & C_L); }
static int is_n(const struct cpv *c, size_t i) { return i < c->n && (c->cls[i] & C_N); }
static int is_s(const struct cpv *c, size_t i) { return i < c->n && (c->cls[i] & C_S); }
/* [^\s\p{L}\p{N}] */
static int is_other(const struct cpv *c, size_t i) { return i < c->n && c->cls[i] == 0; }
static int is_crlf(const struct cpv *c, size_t i)
{
    return i < c->n && (c->cp[i] == '\r' || c->cp[i] == '\n');
}
static uint32_t cp_at(const struct cpv *c, size_t i) { return i < c->n ? c->cp[i] : 0; }
static uint32_t ascii_lower(uint32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp; }

/* 's|'t|'re|'ve|'m|'ll|'d (fold: also the upper-case letters). Returns the
 * end, or i when none matches. */
static size_t m_contraction(const struct cpv *c, size_t i, int fold)
{
    if (cp_at(c, i) != '\'')
        return i;
    uint32_t a = cp_at(c, i + 1), b = cp_at(c, i + 2);
    if (fold) {
        a = ascii_lower(a);
        b = ascii_lower(b);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return i + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return i + 3;
    return i;
}

/* \s+(?!\S)|\s+ at a whitespace: the whole run, except that a run of two
 * or more followed by a non-space leaves its last character to the next
 * word (the lookahead backtracks one); a single one then matches \s+. */
static size_t m_spaces(const struct cpv *c, size_t i)
{
    size_t e = i;
    while (is_s(c, e))
        e++;
    return e < c->n && e - i >= 2 ? e - 1 : e;
}

/* ' ?[^\s\p{L}\p{N}]+' then, when crlf, '[\r\n]*'. Returns i when none. */
static size_t m_punct(const struct cpv *c, size_t i, int crlf)
{
    size_t j = i + (cp_at(c, i) == ' ');
    if (!is_other(c, j))
        return i;
    while (is_other(c, j))
        j++;
    while (crlf && is_crlf(c, j))
        j++;
    return j;
}

/* GPT-2:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The alternatives are tried in order at each position, the first that
 * matches wins (regex alternation, not longest match). */
static size_t m_gpt2(const struct cpv *c, size_t i)
{
    size_t e = m_contraction(c, i, 0);
    if (e > i)
        return e;
    size_t j = i + (cp_at(c, i) == ' '); /* ' ?': a space is neither L nor N */
    if (is_l(c, j)) {
        while (is_l(c, j))
            j++;
        return j;
    }
    if (is_n(c, j)) {
        while (is_n(c, j))
            j++;
        return j;
    }
    e = m_punct(c, i, 0);
    if (e > i)
        return e;
    if (is_s(c, i))
        return m_spaces(c, i);
    return i + 1; /* unreachable: every code point is L, N, \s or other */
}

/* llama-bpe (Llama 3), max_digits 3, and qwen2, max_digits 1:
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
 *   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * with \p{N} for \p{N}{1,3} in qwen2. (?i:...) folds ASCII only, as
 * llama.cpp's '[sS]|'[tT]... rewrite does. */
static size_t m_llama3(const struct cpv *c, size_t i, int max_digits)
{
    size_t e = m_contraction(c, i, 1);
    if (e > i)
        return e;
    /* [^\r\n\p{L}\p{N}]?\p{L}+: one leading non-letter (space, tab,
     * punctuation) joins the letters after it */
    size_t j = i;
    if (!is_l(c, i) && !is_crlf(c, i) && !is_n(c, i) && is_l(c, i + 1))
        j = i + 1;
    if (is_l(c, j)) {
        while (is_l(c, j))
            j++;
        return j;
    }
    if (is_n(c, i)) {
        j = i + 1;
        while (j - i < (size_t)max_digits && is_n(c, j))
            j++;
        return j;
    }
    e = m_punct(c, i, 1);
    if (e > i)
        return e;
    if (!is_s(c, i))
        return i + 1; /* unreachable, as above */
    /* \s*[\r\n]+: backtracking leaves the match at the last CR/LF of the
     * whitespace run */
    size_t last = SIZE_MAX;
    for (j = i; is_s(c, j); j++)
        if (is_crlf(c, j))
            last = j;
    if (last != SIZE_MAX)
        return last + 1;
    return m_spaces(c, i);
}

static size_t pre_match(enum qtok_pre pre, const struct cpv *c, size_t i)
{
    switch (pre) {
    case QTOK_PRE_LLAMA3:
        return m_llama3(c, i, 3);
    case QTOK_PRE_QWEN2:
        return m_llama3(c, i, 1);
    default:
        return m_gpt2(c, i);
    }
}

static void cpv_free(struct cpv *c)
{
    free(c->cp);
    free(c->cls);
    free(c->boff);
}

static int cpv_make(struct cpv *c, const char *text, size_t len, qerr *err)
{
    memset(c, 0, sizeof *c);
    c->cp = malloc((len ? len : 1) * sizeof *c->cp);
    c->cls = malloc(len ? len : 1);
    c->boff = malloc((len + 1) * sizeof *c->boff);
    if (!c->cp || !c->cls || !c->boff) {
        cpv_free(c);
        return qerr_set(err, "tokenizer: out of memory for a text of %zu bytes", len);
    }
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = tok_utf8_len(s + i, len - i, &cp);
        if (!k)
            cp = 0x110000, k = 1;
        c->cp[c->n] = cp;
        c->cls[c->n] = (unsigned char)((uni_is_letter(cp) ? C_L : 0) | (uni_is_number(cp) ? C_N : 0) |
                                       (uni_is_space(cp) ? C_S : 0));
        c->boff[c->n++] = i;
        i += (size_t)k;
    }
    c->boff[c->n] = len;
    return 0;
}

int tok_bpe_split(enum qtok_pre pre, const char *text, size_t len, size_t **ends, size_t *n,
                  qerr *err)
{
    *ends = NULL;
    *n = 0;
    struct cpv c;
    if (cpv_make(&c, text, len, err))
        return -1;
    size_t *e = malloc((c.n ? c.n : 1) * sizeof *e), k = 0;
    if (!e) {
        cpv_free(&c);
        return qerr_set(err, "tokenizer: out of memory for a text of %zu bytes", len);
    }
    for (size_t i = 0; i < c.n;) {
        i = pre_match(pre, &c, i);
        e[k++] = c.boff[i];
    }
    cpv_free(&c);
    *ends = e;
    *n = k;
    return 0;
}

/* ---- construction -------------------------------------------------------- */

static uint64_t pair_hash(int32_t l, int32_t r)
{
    uint64_t k = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    k *= 0x9E3779B97F4A7C15u;
    return k ^ (k >> 29);
}

static const struct tok_pair *pair_find(const struct qtokenizer *t, int32_t l, int32_t r)
{
    if (!t->pair_cap)
        return NULL;
    size_t i = (size_t)pair_hash(l, r) & (t->pair_cap - 1);
    for (;;) {
        const struct tok_pair *p = &t->pairs[i];
        if (p->left < 0)
            return NULL;
        if (p->left == l && p->right == r)
            return p;
        i = (i + 1) & (t->pair_cap - 1);
    }
}

/* Merges become (left id, right id) -> (rank, merged id). A merge whose
 * sides or result the vocabulary lacks can never apply and is skipped; a
 * repeated pair keeps its first (best) rank. */
static int bpe_build_merges(struct qtokenizer *t, const char *const *merges, int n_merges, qerr *err)
{
    if (n_merges < 0 || n_merges > TOK_MAX_MERGES || (n_merges && !merges))
        return qerr_set(err, "tokenizer: %d merges (want 0..%d)", n_merges, TOK_MAX_MERGES);
    size_t cap = 16;
    while (cap < (size_t)n_merges * 2)
        cap *= 2;
    t->pairs = malloc(cap * sizeof *t->pairs);
    char *cat = malloc(2 * t->max_len + 1);
    if (!t->pairs || !cat) {
        free(cat);
        return qerr_set(err, "tokenizer: out of memory for %d merges", n_merges);
    }
    t->pair_cap = cap;
    for (size_t i = 0; i < cap; i++)
        t->pairs[i] = (struct tok_pair){-1, -1, 0, -1};
    for (int r = 0; r < n_merges; r++) {
        const char *m = merges[r];
        if (!m) {
            free(cat);
            return qerr_set(err, "tokenizer: merge %d is missing", r);
        }
        /* the first space after the first byte separates (a left side may
         * itself be a space, as llama.cpp allows) */
        size_t len = strlen(m);
        const char *sp = len > 1 ? memchr(m + 1, ' ', len - 1) : NULL;
        if (!sp || sp + 1 == m + len) {
            free(cat);
            return qerr_set(err, "tokenizer: merge %d \"%.60s\" is not \"left right\"", r, m);
        }
        size_t ll = (size_t)(sp - m), rl = len - ll - 1;
        int32_t l = tok_find(t, m, ll), rt = tok_find(t, sp + 1, rl);
        if (l < 0 || rt < 0 || ll + rl > t->max_len)
            continue;
        memcpy(cat, m, ll);
        memcpy(cat + ll, sp + 1, rl);
        int32_t id = tok_find(t, cat, ll + rl);
        if (id < 0 || pair_find(t, l, rt))
            continue;
        size_t i = (size_t)pair_hash(l, rt) & (cap - 1);
        while (t->pairs[i].left >= 0)
            i = (i + 1) & (cap - 1);
        t->pairs[i] = (struct tok_pair){l, rt, r, id};
    }
    free(cat);
    return 0;
}

/* What qtok_decode prints: each code point of the piece as the byte it
 * stands for; a code point that stands for none (added tokens) as itself;
 * a <0xNN> token used as byte fallback as its byte; BOS/EOS as nothing. */
static int bpe_build_decoded(struct qtokenizer *t, qerr *err)
{
    t->dec = malloc(t->off[t->n] ? t->off[t->n] : 1);
    t->dec_off = malloc(((size_t)t->n + 1) * sizeof *t->dec_off);
    if (!t->dec || !t->dec_off)
        return qerr_set(err, "tokenizer: out of memory for %d tokens", t->n);
    size_t at = 0;
    for (int id = 0; id < t->n; id++) {
        t->dec_off[id] = at;
        const unsigned char *p = (const unsigned char *)t->text + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        if (id == t->bos || id == t->eos)
            continue;
        if (t->byte_of[id] >= 0 && t->byte_tok[t->byte_of[id]] < 0) {
            t->dec[at++] = (char)t->byte_of[id];
            continue;
        }
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            int k = tok_utf8_len(p + i, len - i, &cp);
            int b = k ? tok_cp_to_byte(cp) : -1;
            if (b >= 0) {
                t->dec[at++] = (char)b;
                i += (size_t)k;
            } else {
                size_t m = k ? (size_t)k : 1;
                memcpy(t->dec + at, p + i, m);
                at += m;
                i += m;
            }
        }
    }
    t->dec_off[t->n] = at;
    return 0;
}

int qtok_new_bpe(const struct qtok_vocab *v, const char *const *merges, int n_merges,
                 enum qtok_pre pre, struct qtokenizer **out, qerr *err)
{
    *out = NULL;
    if ((int)pre < 0 || pre >= QTOK_PRE_COUNT)
        return qerr_set(err, "tokenizer: unknown pre-tokenizer %d", (int)pre);
    struct qtokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return qerr_set(err, "tokenizer: out of memory");
    t->kind = QTOK_BPE;
    t->pre = pre;
    /* llama.cpp sets ignore_merges for llama-bpe, as its tokenizer.json does */
    t->ignore_merges = pre == QTOK_PRE_LLAMA3;
    if (tok_vocab_init(t, v, 0, err) || tok_index_build(t, 0, err))
        goto fail;
    tok_byte_pieces(t, t->byte_fb);
    for (int b = 0; b < 256; b++) {
        char u[4];
        int k = tok_utf8_put(tok_byte_to_cp(b), u);
        t->byte_tok[b] = tok_find(t, u, (size_t)k);
    }
    if (bpe_build_merges(t, merges, n_merges, err) || bpe_build_decoded(t, err))
        goto fail;
    *out = t;
    return 0;
fail:
    qtok_free(t);
    return -1;
}

/* ---- encode -------------------------------------------------------------- */

static int bpe_pair(const struct qtokenizer *t, const char *buf, const struct tok_sym *sym,
                    int32_t left, int32_t right, struct tok_merge *m)
{
    (void)buf;
    const struct tok_pair *p = pair_find(t, sym[left].id, sym[right].id);
    if (!p)
        return 0;
    m->key = -(double)p->rank;
    m->id = p->id;
    return 1;
}

/* Scratch space one encode call reuses across its words. */
struct bpe_work {
    struct tok_sym *sym;        /* one per byte of the longest word */
    char *mapped;               /* the word in vocabulary encoding (2 bytes per byte at most) */
    struct tok_heap heap;
};

/* One pre-tokenized word [a, b) of text: its bytes as mapped characters,
 * merged by rank. */
static int bpe_word(const struct qtokenizer *t, const char *text, size_t a, size_t b,
                    struct bpe_work *w, struct tok_ids *o, qerr *err)
{
    if (t->ignore_merges) {
        size_t ml = 0;
        for (size_t i = a; i < b; i++)
            ml += (size_t)tok_utf8_put(tok_byte_to_cp((unsigned char)text[i]), w->mapped + ml);
        int32_t id = tok_find(t, w->mapped, ml);
        if (id >= 0)
            return tok_ids_push(o, id) ? qerr_set(err, "tokenizer: out of memory") : 0;
    }
    int32_t ns = 0;
    for (size_t i = a; i < b; i++) {
        int c = (unsigned char)text[i];
        int32_t id = t->byte_tok[c];
        int can = 1;
        if (id < 0) {
            can = 0;
            id = t->byte_fb[c] >= 0 ? t->byte_fb[c] : t->unk;
            if (id < 0)
                return qerr_set(err, "tokenizer: byte 0x%02X at offset %zu has no token (no mapped "
                                "character, no <0x%02X>, no unk)", c, i, c);
        }
        w->sym[ns] = (struct tok_sym){(int32_t)i, 1, ns - 1, ns + 1, id, can};
        ns++;
    }
    w->sym[ns - 1].next = -1;
    if (tok_merge_run(t, text, w->sym, 0, ns - 1, &w->heap, bpe_pair))
        return qerr_set(err, "tokenizer: out of memory");
    for (int32_t i = 0; i >= 0; i = w->sym[i].next)
        if (tok_ids_push(o, w->sym[i].id))
            return qerr_set(err, "tokenizer: out of memory");
    return 0;
}

int tok_bpe_encode(const struct qtokenizer *t, const char *text, size_t len, struct tok_ids *o,
                   qerr *err)
{
    if (len > (size_t)INT32_MAX - 8)
        return qerr_set(err, "tokenizer: text of %zu bytes is longer than the %d the tokenizer takes",
                        len, INT32_MAX - 8);
    size_t *ends = NULL, nw = 0;
    if (tok_bpe_split(t->pre, text, len, &ends, &nw, err))
        return -1;
    size_t longest = 0;
    for (size_t i = 0, a = 0; i < nw; a = ends[i++])
        if (ends[i] - a > longest)
            longest = ends[i] - a;
    struct bpe_work w = {0};
    w.sym = malloc(longest * sizeof *w.sym);
    w.mapped = malloc(2 * longest);
    int rc = -1;
    if (!w.sym || !w.mapped) {
        qerr_set(err, "tokenizer: out of memory for a word of %zu bytes", longest);
        goto done;
    }
    for (size_t i = 0, a = 0; i < nw; a = ends[i++])
        if (bpe_word(t, text, a, ends[i], &w, o, err))
            goto done;
    rc = 0;
done:
    free(w.heap.a);
    free(w.mapped);
    free(w.sym);
    free(ends);
    return rc;
}
