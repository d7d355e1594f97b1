/* tokenizer.c — the vocabulary both tokenizer kinds share: copying, lookup by hash, llama2.c files, decode, lifecycle. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"

/* A vocabulary bigger than this is not a vocabulary (and keeps every
 * count below in int32 with room to spare). */
#define TOK_MAX_VOCAB (1 << 26)
/* llama2.c tokenizer.bin files are well under a megabyte. */
#define TOK_MAX_FILE ((size_t)1 << 30)

/* ---- lifecycle ----------------------------------------------------------- */

void qtok_free(struct qtokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->off);
    free(t->dec);
    free(t->dec_off);
    free(t->scores);
    free(t->byte_of);
    free(t->slots);
    free(t->pairs);
    free(t);
}

enum qtok_kind qtok_kind(const struct qtokenizer *t) { return t->kind; }
int qtok_vocab_size(const struct qtokenizer *t) { return t->n; }
int qtok_bos(const struct qtokenizer *t) { return t->bos; }
int qtok_add_bos(const struct qtokenizer *t) { return t->add_bos && t->bos >= 0; }
void qtok_set_add_bos(struct qtokenizer *t, int add_bos) { t->add_bos = add_bos != 0; }
int qtok_eos(const struct qtokenizer *t) { return t->eos; }

/* ---- vocabulary ---------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte a piece "<0xNN>" stands for, or -1 (SentencePiece byte pieces). */
static int byte_piece_value(const char *p, size_t len)
{
    if (len != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
        return -1;
    int hi = hexval((unsigned char)p[3]), lo = hexval((unsigned char)p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int special_ok(int id, int n)
{
    return id == -1 || (id >= 0 && id < n);
}

int tok_vocab_init(struct qtokenizer *t, const struct qtok_vocab *v, int need_scores, qerr *err)
{
    if (!v || v->n <= 0 || v->n > TOK_MAX_VOCAB)
        return qerr_set(err, "tokenizer: vocabulary of %d tokens (want 1..%d)", v ? v->n : 0,
                        TOK_MAX_VOCAB);
    if (!v->pieces)
        return qerr_set(err, "tokenizer: vocabulary has no pieces");
    if (need_scores && !v->scores)
        return qerr_set(err, "tokenizer: SPM vocabulary has no scores");
    if (!special_ok(v->bos, v->n) || !special_ok(v->eos, v->n) || !special_ok(v->unk, v->n))
        return qerr_set(err, "tokenizer: special ids bos %d, eos %d, unk %d outside the %d tokens",
                        v->bos, v->eos, v->unk, v->n);
    int n = v->n;
    t->n = n;
    t->bos = v->bos;
    t->eos = v->eos;
    t->unk = v->unk;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const char *p = v->pieces[i];
        if (!p)
            return qerr_set(err, "tokenizer: token %d has no piece", i);
        size_t len = v->lengths ? v->lengths[i] : strlen(p);
        if (memchr(p, 0, len))
            return qerr_set(err, "tokenizer: token %d: piece holds a NUL byte", i);
        if (len > SIZE_MAX / 2 - total)
            return qerr_set(err, "tokenizer: token %d: pieces too long", i);
        total += len;
        if (need_scores && isnan(v->scores[i]))
            return qerr_set(err, "tokenizer: token %d: score is NaN", i);
    }
    t->text = malloc(total ? total : 1);
    t->off = malloc(((size_t)n + 1) * sizeof *t->off);
    t->byte_of = malloc((size_t)n * sizeof *t->byte_of);
    if (need_scores)
        t->scores = malloc((size_t)n * sizeof *t->scores);
    if (!t->text || !t->off || !t->byte_of || (need_scores && !t->scores))
        return qerr_set(err, "tokenizer: out of memory for %d tokens", n);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t len = v->lengths ? v->lengths[i] : strlen(v->pieces[i]);
        memcpy(t->text + at, v->pieces[i], len);
        t->off[i] = at;
        t->byte_of[i] = (int16_t)byte_piece_value(t->text + at, len);
        if (len > t->max_len)
            t->max_len = len;
        at += len;
    }
    t->off[n] = at;
    if (need_scores)
        memcpy(t->scores, v->scores, (size_t)n * sizeof *t->scores);
    return 0;
}

/* ---- lookup by hash ------------------------------------------------------ */

/* FNV-1a, 64 bits. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static int is_special(const struct qtokenizer *t, int id)
{
    return id == t->bos || id == t->eos || id == t->unk || t->byte_of[id] >= 0;
}

int tok_index_build(struct qtokenizer *t, int skip_special, qerr *err)
{
    size_t cap = 16;
    while (cap < (size_t)t->n * 2)
        cap *= 2;
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots)
        return qerr_set(err, "tokenizer: out of memory for the index of %d tokens", t->n);
    memset(t->slots, 0xff, cap * sizeof *t->slots);
    t->cap = cap;
    for (int id = 0; id < t->n; id++) {
        if (skip_special && is_special(t, id))
            continue;
        const char *p = t->text + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        if (tok_find(t, p, len) >= 0)
            continue; /* a duplicate: the first id keeps the text */
        size_t i = (size_t)hash_bytes(p, len) & (cap - 1);
        while (t->slots[i] >= 0)
            i = (i + 1) & (cap - 1);
        t->slots[i] = id;
    }
    return 0;
}

int32_t tok_find(const struct qtokenizer *t, const char *s, size_t len)
{
    if (len > t->max_len || !t->slots)
        return -1;
    size_t i = (size_t)hash_bytes(s, len) & (t->cap - 1);
    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0)
            return -1;
        if (t->off[id + 1] - t->off[id] == len && memcmp(t->text + t->off[id], s, len) == 0)
            return id;
        i = (i + 1) & (t->cap - 1);
    }
}

void tok_byte_pieces(const struct qtokenizer *t, int out[256])
{
    for (int b = 0; b < 256; b++)
        out[b] = -1;
    for (int id = t->n - 1; id >= 0; id--) /* backwards: the first id wins */
        if (t->byte_of[id] >= 0)
            out[t->byte_of[id]] = id;
}

/* ---- UTF-8 --------------------------------------------------------------- */

int tok_utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < (size_t)len)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

int tok_utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- merging ------------------------------------------------------------- */

/* a comes out of the heap before b */
static int merge_before(const struct tok_merge *a, const struct tok_merge *b)
{
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

/* Room for one more entry. */
static int heap_room(struct tok_heap *h)
{
    if (h->n < h->cap)
        return 0;
    size_t cap = h->cap ? h->cap * 2 : 64;
    struct tok_merge *a = realloc(h->a, cap * sizeof *a);
    if (!a)
        return -1;
    h->a = a;
    h->cap = cap;
    return 0;
}

int tok_heap_push(struct tok_heap *h, struct tok_merge m)
{
    if (heap_room(h))
        return -1;
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!merge_before(&m, &h->a[up]))
            break;
        h->a[i] = h->a[up];
        i = up;
    }
    h->a[i] = m;
    return 0;
}

/* Moves m down from slot i to where the heap order holds. */
static void heap_sift_down(struct tok_heap *h, size_t i, struct tok_merge m)
{
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && merge_before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!merge_before(&h->a[c], &m))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    h->a[i] = m;
}

struct tok_merge tok_heap_pop(struct tok_heap *h)
{
    struct tok_merge top = h->a[0];
    if (--h->n)
        heap_sift_down(h, 0, h->a[h->n]);
    return top;
}

/* The merge of sym[left] and sym[right] when the tokenizer has one. */
static int candidate(const struct qtokenizer *t, const char *buf, const struct tok_sym *sym,
                     int32_t left, int32_t right, tok_pair_fn pair_fn, struct tok_merge *m)
{
    if (left < 0 || right < 0 || !sym[left].can_merge || !sym[right].can_merge)
        return 0;
    if (!pair_fn(t, buf, sym, left, right, m))
        return 0;
    m->left = left;
    m->right = right;
    m->len = sym[left].len + sym[right].len;
    return 1;
}

static int propose(const struct qtokenizer *t, const char *buf, const struct tok_sym *sym,
                   int32_t left, int32_t right, struct tok_heap *h, tok_pair_fn pair_fn)
{
    struct tok_merge m;
    return candidate(t, buf, sym, left, right, pair_fn, &m) ? tok_heap_push(h, m) : 0;
}

/* The best pair is merged first: highest key, then leftmost (llama2.c
 * rescans every pair each round and keeps the first best; a heap with
 * stale entries skipped gives the same sequence of merges). */
int tok_merge_run(const struct qtokenizer *t, const char *buf, struct tok_sym *sym, int32_t first,
                  int32_t last, struct tok_heap *h, tok_pair_fn pair_fn)
{
    /* the first candidates go in unordered, then one heapify: O(n) */
    h->n = 0;
    for (int32_t i = first; i != last; i = sym[i].next) {
        struct tok_merge m;
        if (!candidate(t, buf, sym, i, sym[i].next, pair_fn, &m))
            continue;
        if (heap_room(h))
            return -1;
        h->a[h->n++] = m;
    }
    for (size_t i = h->n / 2; i-- > 0;)
        heap_sift_down(h, i, h->a[i]);
    while (h->n) {
        struct tok_merge m = tok_heap_pop(h);
        struct tok_sym *l = &sym[m.left], *r = &sym[m.right];
        /* stale: one side was merged away or grew since the push */
        if (l->len == 0 || r->len == 0 || l->len + r->len != m.len)
            continue;
        l->len += r->len;
        l->id = m.id;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = m.left;
        r->len = 0;
        if (propose(t, buf, sym, l->prev, m.left, h, pair_fn) ||
            propose(t, buf, sym, m.left, l->next, h, pair_fn))
            return -1;
    }
    return 0;
}

int tok_ids_push(struct tok_ids *o, int32_t id)
{
    if (o->n == o->cap) {
        int64_t cap = o->cap ? o->cap * 2 : 256;
        int32_t *v = realloc(o->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = id;
    return 0;
}

/* ---- encode and decode --------------------------------------------------- */

int qtok_encode(const struct qtokenizer *t, const char *text, size_t len, int add_bos,
                int32_t **ids, int64_t *n, qerr *err)
{
    *ids = NULL;
    *n = 0;
    if (!text && len)
        return qerr_set(err, "tokenizer: no text");
    struct tok_ids o = {0};
    if (add_bos) {
        if (t->bos < 0)
            return qerr_set(err, "tokenizer: BOS asked for, but the vocabulary has none");
        if (tok_ids_push(&o, t->bos))
            return qerr_set(err, "tokenizer: out of memory");
    }
    int rc = len == 0                ? 0
             : t->kind == QTOK_SPM ? tok_spm_encode(t, text, len, &o, err)
                                   : tok_bpe_encode(t, text, len, &o, err);
    if (rc) {
        free(o.v);
        return -1;
    }
    if (!o.v) { /* nothing: still a valid (freeable) array */
        o.v = malloc(sizeof *o.v);
        if (!o.v)
            return qerr_set(err, "tokenizer: out of memory");
    }
    *ids = o.v;
    *n = o.n;
    return 0;
}

size_t qtok_decode(const struct qtokenizer *t, int32_t prev, int32_t id, char *buf, size_t size)
{
    if (size == 0)
        return 0;
    buf[0] = 0;
    if (id < 0 || id >= t->n)
        return 0;
    const char *p = t->dec + t->dec_off[id];
    size_t len = t->dec_off[id + 1] - t->dec_off[id];
    /* SentencePiece's decoder drops the space it added before the text:
     * llama2.c strips a leading space from the piece after BOS */
    if (t->kind == QTOK_SPM && t->add_space_prefix && t->bos >= 0 && prev == t->bos &&
        t->byte_of[id] < 0 && len > 0 && p[0] == ' ') {
        p++;
        len--;
    }
    if (len > size - 1)
        len = size - 1;
    memcpy(buf, p, len);
    buf[len] = 0;
    return len;
}

/* ---- llama2.c tokenizer.bin ---------------------------------------------- */

static int32_t rd_i32(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static float rd_f32(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Walks the file, checking every size; fills pieces/lengths/scores when
 * given (a first pass only checks). */
static int llama2c_parse(const char *path, const unsigned char *d, size_t size, int vocab_size,
                         const char **pieces, size_t *lengths, float *scores, qerr *err)
{
    if (size < 4)
        return qerr_set(err, "%s: %zu bytes, too short for the max_token_length header", path, size);
    int32_t max_len = rd_i32(d);
    if (max_len <= 0 || (size_t)max_len > size)
        return qerr_set(err, "%s: max_token_length %d is not a length", path, (int)max_len);
    size_t at = 4;
    for (int i = 0; i < vocab_size; i++) {
        if (size - at < 8)
            return qerr_set(err, "%s: token %d: file ends at byte %zu, before its score and length "
                            "(expected %d tokens)", path, i, size, vocab_size);
        float score = rd_f32(d + at);
        int32_t len = rd_i32(d + at + 4);
        at += 8;
        if (len < 0)
            return qerr_set(err, "%s: token %d: negative length %d", path, i, (int)len);
        if (len > max_len)
            return qerr_set(err, "%s: token %d: length %d exceeds max_token_length %d", path, i,
                            (int)len, (int)max_len);
        if ((size_t)len > size - at)
            return qerr_set(err, "%s: token %d: length %d runs past the end of the file (%zu bytes)",
                            path, i, (int)len, size);
        if (isnan(score))
            return qerr_set(err, "%s: token %d: score is NaN", path, i);
        if (memchr(d + at, 0, (size_t)len))
            return qerr_set(err, "%s: token %d: piece holds a NUL byte", path, i);
        if (pieces) {
            pieces[i] = (const char *)d + at;
            lengths[i] = (size_t)len;
            scores[i] = score;
        }
        at += (size_t)len;
    }
    if (at != size)
        return qerr_set(err, "%s: %zu bytes after the %d tokens (a different vocabulary size?)",
                        path, size - at, vocab_size);
    return 0;
}

int qtok_load_llama2c(const char *path, int vocab_size, struct qtokenizer **out, qerr *err)
{
    *out = NULL;
    if (vocab_size <= 0 || vocab_size > TOK_MAX_VOCAB)
        return qerr_set(err, "%s: vocabulary size %d (want 1..%d)", path, vocab_size, TOK_MAX_VOCAB);
    char *data = NULL;
    size_t size = 0;
    if (qfile_read_all(path, TOK_MAX_FILE, &data, &size, err))
        return -1;
    const unsigned char *d = (const unsigned char *)data;
    /* check before allocating: every token takes at least 8 bytes */
    if (size < 4 || (size - 4) / 8 < (size_t)vocab_size) {
        int rc = llama2c_parse(path, d, size, vocab_size, NULL, NULL, NULL, err);
        free(data);
        return rc ? -1 : qerr_set(err, "%s: too short for %d tokens", path, vocab_size);
    }
    const char **pieces = malloc((size_t)vocab_size * sizeof *pieces);
    size_t *lengths = malloc((size_t)vocab_size * sizeof *lengths);
    float *scores = malloc((size_t)vocab_size * sizeof *scores);
    int rc = -1;
    if (!pieces || !lengths || !scores) {
        qerr_set(err, "%s: out of memory for %d tokens", path, vocab_size);
    } else if (llama2c_parse(path, d, size, vocab_size, pieces, lengths, scores, err) == 0) {
        /* llama2.c: <unk> 0, BOS 1, EOS 2; spaces are plain ' ' and a
         * space goes before the text */
        struct qtok_vocab v = {
            .n = vocab_size, .pieces = pieces, .lengths = lengths, .scores = scores,
            .bos = vocab_size > 1 ? 1 : -1, .eos = vocab_size > 2 ? 2 : -1, .unk = 0,
        };
        rc = qtok_new_spm(&v, 0, 1, out, err);
        if (rc)
            qerr_prefix(err, "%s", path);
    }
    free(pieces);
    free(lengths);
    free(scores);
    free(data);
    return rc;
}
