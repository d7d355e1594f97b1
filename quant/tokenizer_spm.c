/* tokenizer_spm.c — SentencePiece-style BPE by piece score with byte fallback, as llama2.c's encode() and llama.cpp's llm_tokenizer_spm. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "tokenizer_impl.h"

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's word marker */
static const char SPM_MARK[] = "\xE2\x96\x81";
#define SPM_MARK_LEN 3

/* ---- construction -------------------------------------------------------- */

/* What qtok_decode prints for each token: byte pieces as their byte, the
 * marker as a space, control tokens (BOS, EOS) as nothing. Never longer
 * than the piece. */
static int spm_build_decoded(struct qtokenizer *t, qerr *err)
{
    t->dec = malloc(t->off[t->n] ? t->off[t->n] : 1);
    t->dec_off = malloc(((size_t)t->n + 1) * sizeof *t->dec_off);
    if (!t->dec || !t->dec_off)
        return qerr_set(err, "tokenizer: out of memory for %d tokens", t->n);
    size_t at = 0;
    for (int id = 0; id < t->n; id++) {
        t->dec_off[id] = at;
        const char *p = t->text + t->off[id];
        size_t len = t->off[id + 1] - t->off[id];
        if (id == t->bos || id == t->eos)
            continue;
        if (t->byte_of[id] >= 0) {
            t->dec[at++] = (char)t->byte_of[id];
            continue;
        }
        for (size_t i = 0; i < len;) {
            if (t->space_marker && len - i >= SPM_MARK_LEN && memcmp(p + i, SPM_MARK, SPM_MARK_LEN) == 0) {
                t->dec[at++] = ' ';
                i += SPM_MARK_LEN;
            } else {
                t->dec[at++] = p[i++];
            }
        }
    }
    t->dec_off[t->n] = at;
    return 0;
}

int qtok_new_spm(const struct qtok_vocab *v, int space_marker, int add_space_prefix,
                 struct qtokenizer **out, qerr *err)
{
    *out = NULL;
    struct qtokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return qerr_set(err, "tokenizer: out of memory");
    t->kind = QTOK_SPM;
    t->add_bos = 1; /* SentencePiece models start with BOS (llama.cpp: add_bos for SPM) */
    t->space_marker = space_marker != 0;
    t->add_space_prefix = add_space_prefix != 0;
    t->pre = QTOK_PRE_GPT2;
    if (tok_vocab_init(t, v, 1, err) || tok_index_build(t, 1, err) || spm_build_decoded(t, err)) {
        qtok_free(t);
        return -1;
    }
    tok_byte_pieces(t, t->byte_tok);
    for (int b = 0; b < 256; b++)
        t->byte_fb[b] = -1;
    *out = t;
    return 0;
}

/* ---- encode -------------------------------------------------------------- */

/* The merge of two adjacent symbols: the piece spelled by both, if the
 * vocabulary has it, keyed by its score. */
static int spm_pair(const struct qtokenizer *t, const char *buf, const struct tok_sym *sym,
                    int32_t left, int32_t right, struct tok_merge *m)
{
    size_t len = (size_t)sym[left].len + (size_t)sym[right].len;
    int32_t id = tok_find(t, buf + sym[left].start, len);
    if (id < 0)
        return 0;
    m->key = t->scores[id];
    m->id = id;
    return 1;
}

/* The working text: a space first (add_space_prefix), spaces as U+2581
 * when the vocabulary spells them so. */
static char *spm_prepare(const struct qtokenizer *t, const char *text, size_t len, size_t *out_len)
{
    size_t spaces = t->add_space_prefix;
    if (t->space_marker)
        for (size_t i = 0; i < len; i++)
            spaces += text[i] == ' ';
    size_t blen = len + t->add_space_prefix + (t->space_marker ? spaces * (SPM_MARK_LEN - 1) : 0);
    char *buf = malloc(blen ? blen : 1);
    if (!buf)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < len + t->add_space_prefix; i++) {
        char c = i < (size_t)t->add_space_prefix ? ' ' : text[i - t->add_space_prefix];
        if (c == ' ' && t->space_marker) {
            memcpy(buf + at, SPM_MARK, SPM_MARK_LEN);
            at += SPM_MARK_LEN;
        } else {
            buf[at++] = c;
        }
    }
    *out_len = at;
    return buf;
}

/* One symbol per byte, for a character the vocabulary lacks or invalid
 * UTF-8: the <0xNN> token, else unk. They never merge (llama2.c's byte
 * tokens spell "<0xNN>", which no merge contains). */
static int spm_bytes(const struct qtokenizer *t, const char *buf, int32_t start, int k,
                     struct tok_sym *sym, int32_t *ns, qerr *err)
{
    for (int j = 0; j < k; j++) {
        int b = (unsigned char)buf[start + j];
        int id = t->byte_tok[b] >= 0 ? t->byte_tok[b] : t->unk;
        if (id < 0)
            return qerr_set(err, "tokenizer: byte 0x%02X of the text has no token (no <0x%02X> "
                            "piece, no unk)", b, b);
        sym[*ns] = (struct tok_sym){start + j, 1, *ns - 1, *ns + 1, id, 0};
        (*ns)++;
    }
    return 0;
}

int tok_spm_encode(const struct qtokenizer *t, const char *text, size_t len, struct tok_ids *o,
                   qerr *err)
{
    /* symbols index the working text with int32: up to 3 bytes per input byte */
    if (len > (size_t)(INT32_MAX / SPM_MARK_LEN - 8))
        return qerr_set(err, "tokenizer: text of %zu bytes is longer than the %d the tokenizer takes",
                        len, INT32_MAX / SPM_MARK_LEN - 8);
    size_t blen = 0;
    char *buf = spm_prepare(t, text, len, &blen);
    struct tok_sym *sym = malloc((blen ? blen : 1) * sizeof *sym);
    struct tok_heap h = {0};
    int rc = -1;
    if (!buf || !sym) {
        qerr_set(err, "tokenizer: out of memory for a text of %zu bytes", len);
        goto done;
    }
    /* split into UTF-8 characters: a character the vocabulary has is one
     * mergeable symbol, any other byte is a byte symbol */
    int32_t ns = 0;
    for (size_t i = 0; i < blen;) {
        uint32_t cp;
        int k = tok_utf8_len((const unsigned char *)buf + i, blen - i, &cp);
        int32_t id = k ? tok_find(t, buf + i, (size_t)k) : -1;
        if (id >= 0) {
            sym[ns] = (struct tok_sym){(int32_t)i, k, ns - 1, ns + 1, id, 1};
            ns++;
        } else if (spm_bytes(t, buf, (int32_t)i, k ? k : 1, sym, &ns, err)) {
            goto done;
        }
        i += k ? (size_t)k : 1;
    }
    if (ns == 0) {
        rc = 0;
        goto done;
    }
    sym[ns - 1].next = -1;
    /* byte symbols cut the text into stretches that merge on their own:
     * small heaps stay in cache (a newline is a byte in llama vocabularies) */
    for (int32_t a = 0; a < ns;) {
        int32_t b = a;
        while (b + 1 < ns && sym[b].can_merge && sym[b + 1].can_merge)
            b++;
        if (b > a && tok_merge_run(t, buf, sym, a, b, &h, spm_pair)) {
            qerr_set(err, "tokenizer: out of memory merging a text of %zu bytes", len);
            goto done;
        }
        a = b + 1;
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next)
        if (tok_ids_push(o, sym[i].id)) {
            qerr_set(err, "tokenizer: out of memory for the tokens of a text of %zu bytes", len);
            goto done;
        }
    rc = 0;
done:
    free(h.a);
    free(sym);
    free(buf);
    return rc;
}
