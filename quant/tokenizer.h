/* tokenizer.h — text to token ids and back: SentencePiece-style BPE by score, and byte-level BPE by merges. */
#ifndef QLAB_TOKENIZER_H
#define QLAB_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum qtok_kind {
    QTOK_SPM = 0,   /* SentencePiece-style: merge the adjacent pair whose merged
                       piece has the best score, byte fallback <0xNN> */
    QTOK_BPE,       /* byte-level BPE (GPT-2): bytes mapped to printable
                       code points, pre-tokenized, merged by merge rank */
};

/* Pre-tokenizers of byte-level BPE, as llama.cpp names them (GGUF
 * tokenizer.ggml.pre) */
enum qtok_pre {
    QTOK_PRE_GPT2 = 0,  /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    QTOK_PRE_LLAMA3,    /* llama-bpe: case-insensitive contractions, \p{N}{1,3}, ... */
    QTOK_PRE_QWEN2,     /* qwen2: as llama3 with single digits */
    QTOK_PRE_COUNT
};

struct qtokenizer;

/* The vocabulary both kinds share. Strings are copied. */
struct qtok_vocab {
    int n;                    /* tokens */
    const char *const *pieces;/* n UTF-8 strings (may contain any byte but NUL) */
    const size_t *lengths;    /* n byte lengths (pieces may hold no terminator), or NULL */
    const float *scores;      /* SPM: n merge scores (higher merges first); else NULL */
    int bos, eos, unk;        /* ids, or -1 */
};

/* SPM. space_marker: the vocabulary writes spaces as U+2581 ("▁", as
 * SentencePiece and GGUF llama vocabularies do) rather than ' ' (llama2.c's
 * tokenizer.bin). add_space_prefix: a space is put before the text, as
 * llama2.c and SentencePiece do. Byte tokens are the pieces "<0x00>".."<0xFF>". */
int qtok_new_spm(const struct qtok_vocab *v, int space_marker, int add_space_prefix,
                 struct qtokenizer **out, qerr *err);

/* Byte-level BPE. merges: n_merges pairs "left right" (space-separated, in
 * vocabulary encoding) in rank order. */
int qtok_new_bpe(const struct qtok_vocab *v, const char *const *merges, int n_merges,
                 enum qtok_pre pre, struct qtokenizer **out, qerr *err);

/* llama2.c tokenizer.bin: int32 max_token_length, then per token float32
 * score, int32 length, bytes. Every size checked; errors name the file. */
int qtok_load_llama2c(const char *path, int vocab_size, struct qtokenizer **out, qerr *err);

void qtok_free(struct qtokenizer *t);

enum qtok_kind qtok_kind(const struct qtokenizer *t);
int qtok_vocab_size(const struct qtokenizer *t);
int qtok_bos(const struct qtokenizer *t);
/* Whether text starts with BOS, as llama.cpp's add_bos: SentencePiece
 * vocabularies do, byte-level BPE ones only when the model says so (GGUF
 * tokenizer.ggml.add_bos_token, Hugging Face add_bos_token). Perplexity
 * chunks start with BOS only when this holds. */
int qtok_add_bos(const struct qtokenizer *t);
void qtok_set_add_bos(struct qtokenizer *t, int add_bos);
int qtok_eos(const struct qtokenizer *t);

/* Encodes len bytes of UTF-8 text (invalid UTF-8 falls back to bytes),
 * with one BOS first when add_bos. *ids is malloc'd. */
int qtok_encode(const struct qtokenizer *t, const char *text, size_t len, int add_bos,
                int32_t **ids, int64_t *n, qerr *err);

/* The bytes of token id as text, the way llama2.c and llama.cpp print
 * it: byte tokens become their byte, the space marker a space, and SPM
 * drops the leading space of the first piece after BOS (prev == bos).
 * Returns the byte count written to buf (at most size - 1, NUL-terminated). */
size_t qtok_decode(const struct qtokenizer *t, int32_t prev, int32_t id, char *buf, size_t size);

#endif
