/* llm_load.h — loaders of language models: GGUF, llama2.c checkpoints, Hugging Face folders. */
#ifndef QLAB_LLM_LOAD_H
#define QLAB_LLM_LOAD_H

#include "error.h"
#include "model.h"

/* Each loader fills a qmodel of kind QMODEL_LM: tensors under GGUF-style
 * names with their float32 views, model->llm (configuration, per-layer
 * tensor indices, tokenizer), then calls qllm_validate. format is set to
 * "gguf", "llama2c" or "hf". Errors name the file and what is wrong. */

/* GGUF v2/v3, architectures llama and qwen2. F32, F16 and BF16 tensors are
 * viewed as float32 here; tensors stored in a ggml block type are decoded
 * through host's scheme with that GGUF type (the ggml plugin), their stored
 * type and size kept in model->stored_types/stored_bytes. */
int qllm_load_gguf(const char *path, const struct qplugin_host *host, struct qmodel **out,
                   qerr *err);

/* llama2.c checkpoints: the legacy header of 7 int32 (version 0, float32)
 * and the versioned "ak42" headers (version 1 float32; version 2 int8 Q8_0
 * groups). tokenizer: tokenizer.bin path, or NULL to look beside the
 * checkpoint (tokenizer.bin, else the only tok*.bin there). */
int qllm_load_llama2c(const char *path, const char *tokenizer, struct qmodel **out, qerr *err);

/* A Hugging Face folder: config.json (LlamaForCausalLM, MistralForCausalLM,
 * Qwen2ForCausalLM), model.safetensors or model.safetensors.index.json
 * shards, tokenizer.json. Tensors are renamed to GGUF style; the original
 * names are kept in model->source_names. */
int qllm_load_hf(const char *dir, struct qmodel **out, qerr *err);

#endif
