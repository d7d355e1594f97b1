/* lm_data.h — token streams for language-model evaluation: text, or token ids. */
#ifndef QLAB_LM_DATA_H
#define QLAB_LM_DATA_H

#include <stdint.h>

#include "error.h"
#include "tokenizer.h"

struct qlm_data {
    char *path;
    const char *kind;       /* "text" or "tokens" */
    int32_t *tokens;
    int64_t n;
    int64_t file_bytes;
    char sha256[65];        /* of the file's bytes */
};

/* Reads evaluation data for a model with vocabulary vocab:
 *  - a .safetensors file holding one 1-D integer tensor of ids ("tokens",
 *    or the only tensor);
 *  - a file named *.i32, *.u32 or *.ids: raw little-endian 32-bit ids;
 *  - anything else: UTF-8 text, tokenized with tok (one BOS first when the
 *    tokenizer adds BOS, as llama-perplexity does).
 * Every id is checked against the vocabulary; errors name the file. Text
 * with no tokenizer is refused, giving tok_note (why there is none). */
int qlm_data_open(const char *path, const struct qtokenizer *tok, const char *tok_note,
                  int vocab, struct qlm_data **out, qerr *err);
void qlm_data_free(struct qlm_data *d);

#endif
