/* tokenizer_impl.h — what tokenizer.c, tokenizer_spm.c and tokenizer_bpe.c share (private; not installed). */
#ifndef QLAB_TOKENIZER_IMPL_H
#define QLAB_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tokenizer.h"

/* ---- the tokenizer ------------------------------------------------------- */

/* One BPE merge: the token pair (left, right) becomes id; lower rank first. */
struct tok_pair {
    int32_t left, right;        /* token ids; left == -1: empty slot */
    int32_t rank;               /* index in the merges list */
    int32_t id;                 /* the merged token */
};

/* Immutable after qtok_new_*: threads may share it. Encoding allocates its
 * own scratch space. */
struct qtokenizer {
    enum qtok_kind kind;
    int n;                      /* tokens */
    int bos, eos, unk;          /* ids, or -1 */
    int add_bos;                /* text starts with BOS (SPM: yes; BPE: only if the model says) */
    char *text;                 /* every piece back to back, as the vocabulary spells it */
    size_t *off;                /* n + 1 offsets into text */
    size_t max_len;             /* longest piece, bytes */
    char *dec;                  /* every token as decoded text (qtok_decode) */
    size_t *dec_off;            /* n + 1 offsets into dec */
    float *scores;              /* n merge scores (SPM), else NULL */
    int16_t *byte_of;           /* n: the byte a "<0xNN>" piece stands for, or -1 */

    /* piece text -> id (open addressing; the first id of a text wins). SPM
     * leaves out control (bos, eos, unk) and byte tokens: text never spells them. */
    int32_t *slots;             /* cap entries, -1 empty */
    size_t cap;                 /* power of two */

    int byte_tok[256];          /* SPM: the <0xNN> token of each byte (-1: none);
                                   BPE: the token of the byte's mapped character */
    int byte_fb[256];           /* BPE: <0xNN> token when byte_tok is missing, or -1 */

    /* SPM */
    int space_marker;           /* spaces are U+2581 in the vocabulary */
    int add_space_prefix;       /* a space goes before the text */

    /* BPE */
    enum qtok_pre pre;
    int ignore_merges;          /* llama3: a word that is a token is not merged */
    struct tok_pair *pairs;     /* pair_cap slots */
    size_t pair_cap;            /* power of two */
};

/* ---- shared helpers (tokenizer.c) ---------------------------------------- */

/* Copies and checks the vocabulary (count, pieces, special ids, scores when
 * need_scores) into a zeroed t; builds byte_of. */
int tok_vocab_init(struct qtokenizer *t, const struct qtok_vocab *v, int need_scores, qerr *err);
/* Builds the piece index; skip_special leaves out bos/eos/unk and byte tokens. */
int tok_index_build(struct qtokenizer *t, int skip_special, qerr *err);
/* The id of the piece spelled by s[0..len), or -1. */
int32_t tok_find(const struct qtokenizer *t, const char *s, size_t len);
/* out[b]: the id of the piece "<0xNN>" for byte b (searched in all
 * tokens, the first wins), or -1. */
void tok_byte_pieces(const struct qtokenizer *t, int out[256]);

/* Length of the valid UTF-8 sequence at s (1..4; shortest form, no
 * surrogates, <= U+10FFFF), or 0 when the bytes there are not one. *cp gets
 * the code point. */
int tok_utf8_len(const unsigned char *s, size_t n, uint32_t *cp);
/* Writes cp as UTF-8 to out (4 bytes room); returns the length. */
int tok_utf8_put(uint32_t cp, char *out);

/* A run of symbols being merged: slices of one text, in a linked list. */
struct tok_sym {
    int32_t start, len;         /* bytes of the working text; len 0: merged away */
    int32_t prev, next;         /* neighbours, -1 at the ends */
    int32_t id;                 /* its token */
    int32_t can_merge;          /* 0: a byte-fallback or unk symbol */
};

/* A candidate merge of sym[left] and sym[right] into token id. */
struct tok_merge {
    double key;                 /* higher first (SPM score, BPE -rank) */
    int32_t left, right;        /* symbols; ties go to the lower left */
    int32_t len;                /* bytes of the pair when pushed (stale check) */
    int32_t id;
};

/* A binary max-heap of candidate merges. */
struct tok_heap {
    struct tok_merge *a;
    size_t n, cap;
};

int tok_heap_push(struct tok_heap *h, struct tok_merge m);
struct tok_merge tok_heap_pop(struct tok_heap *h);

/* Growing array of output ids. */
struct tok_ids {
    int32_t *v;
    int64_t n, cap;
};

int tok_ids_push(struct tok_ids *o, int32_t id);

/* Merges the symbols first..last (linked, not yet merged) by the heap
 * until no candidate is left; merges never reach past a symbol that cannot
 * merge, so first..last may be one stretch between two such. pair_fn
 * proposes the merge of two adjacent live symbols (0: there is none). */
typedef int (*tok_pair_fn)(const struct qtokenizer *t, const char *buf, const struct tok_sym *sym,
                           int32_t left, int32_t right, struct tok_merge *m);
int tok_merge_run(const struct qtokenizer *t, const char *buf, struct tok_sym *sym, int32_t first,
                  int32_t last, struct tok_heap *h, tok_pair_fn pair_fn);

/* ---- per kind ------------------------------------------------------------ */

int tok_spm_encode(const struct qtokenizer *t, const char *text, size_t len, struct tok_ids *o,
                   qerr *err);
int tok_bpe_encode(const struct qtokenizer *t, const char *text, size_t len, struct tok_ids *o,
                   qerr *err);

/* Pre-tokenizes text for byte-level BPE: *ends gets the end offset (bytes)
 * of each piece, in order; the pieces cover the text. Exposed for tests. */
int tok_bpe_split(enum qtok_pre pre, const char *text, size_t len, size_t **ends, size_t *n,
                  qerr *err);

/* GPT-2's bytes_to_unicode: the printable code point standing for byte b,
 * and back (-1 when cp stands for no byte). */
uint32_t tok_byte_to_cp(int b);
int tok_cp_to_byte(uint32_t cp);

#endif
