/* llm_hf.h — internal to the Hugging Face folder loader: what llm_hf.c and llm_hf_tokenizer.c share. */
#ifndef QLAB_LLM_HF_H
#define QLAB_LLM_HF_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"

struct qtokenizer;

/* Reads and parses a whole JSON file of at most max bytes. Errors name the
 * file and the line of a syntax error. */
int qhf_read_json(const char *path, size_t max, cJSON **out, qerr *err);

/* Reads tokenizer.json (Llama-2-style SentencePiece BPE or byte-level
 * BPE). tok_config: tokenizer_config.json beside it, or NULL when absent;
 * its bos_token/eos_token win over cfg_bos/cfg_eos (config.json's
 * bos_token_id/eos_token_id, -1 when absent). vocab_size: the model's
 * embedding rows, which the tokenizer may not exceed. */
int qhf_load_tokenizer(const char *path, const char *tok_config, int cfg_bos, int cfg_eos,
                       int vocab_size, struct qtokenizer **out, qerr *err);

#endif
