/* llm.h — llama-family transformers (llama, qwen2): configuration, per-layer tensors, forward pass.
 *
 * A language model is a qmodel of kind QMODEL_LM. Its tensors live in
 * qmodel->tensors like any other model's (so recipes, quantization and
 * sizes work unchanged) under GGUF-style names, whatever the source format:
 *
 *   token_embd.weight [vocab, dim]          output_norm.weight [dim]
 *   output.weight [vocab, dim]              (absent when tied to token_embd)
 *   blk.N.attn_norm.weight [dim]            blk.N.ffn_norm.weight [dim]
 *   blk.N.attn_q.weight [n_heads*hd, dim]   blk.N.attn_q.bias (qwen2)
 *   blk.N.attn_k.weight [n_kv*hd, dim]      blk.N.attn_k.bias (qwen2)
 *   blk.N.attn_v.weight [n_kv*hd, dim]      blk.N.attn_v.bias (qwen2)
 *   blk.N.attn_output.weight [dim, n_heads*hd]
 *   blk.N.ffn_gate.weight [hidden, dim]     blk.N.ffn_up.weight [hidden, dim]
 *   blk.N.ffn_down.weight [dim, hidden]
 *
 * Shapes are [out, in], row-major (PyTorch order; GGUF lists them as
 * ne0 = in, ne1 = out). Matrices have role QROLE_WEIGHT (token_embd too:
 * llama.cpp quantizes it), norms QROLE_NORM, biases QROLE_BIAS.
 */
#ifndef QLAB_LLM_H
#define QLAB_LLM_H

#include <stdint.h>

#include "error.h"
#include "model.h"

struct qtokenizer;

enum qllm_arch {
    QLLM_LLAMA = 0,   /* Llama 1/2/3, TinyLlama, SmolLM, Mistral, llama2.c */
    QLLM_QWEN2,       /* as llama, plus q/k/v biases */
    QLLM_ARCH_COUNT
};

enum qllm_rope {
    QLLM_ROPE_INTERLEAVED = 0, /* rotate pairs (2i, 2i+1) of a head: llama2.c, GGUF llama */
    QLLM_ROPE_HALF,            /* rotate (i, i + hd/2): Hugging Face, GGUF qwen2 (NEOX) */
};

struct qllm_config {
    enum qllm_arch arch;
    int dim;               /* embedding width */
    int hidden_dim;        /* feed-forward width */
    int n_layers;
    int n_heads;
    int n_kv_heads;        /* grouped-query attention: n_heads % n_kv_heads == 0 */
    int head_dim;          /* usually dim / n_heads */
    int vocab_size;
    int max_ctx;           /* the context length the model was trained for */
    float norm_eps;        /* RMSNorm epsilon */
    float rope_theta;      /* RoPE base frequency (10000 for llama 2) */
    enum qllm_rope rope;
};

/* Indices into qmodel->tensors; -1 where absent. */
struct qllm_layer {
    int attn_norm, wq, wk, wv, wo;
    int bq, bk, bv;                     /* qwen2 */
    int ffn_norm, w_gate, w_up, w_down;
};

struct qllm {
    struct qllm_config c;
    int token_embd, output_norm;
    int output;                         /* == token_embd when the output is tied */
    struct qllm_layer *layers;          /* c.n_layers */
    struct qtokenizer *tok;             /* NULL when the format carries none */
    char *tok_note;                     /* when tok is NULL: why (a tokenizer qlab does not
                                           implement), for messages; else NULL */
};

struct qllm *qllm_new(int n_layers);    /* layers filled with -1 */
void qllm_free(struct qllm *l);

/* Checks the configuration and every tensor's presence and shape against
 * it, and sets the roles of the model's tensors. Loaders call it last.
 * Errors name the file and the tensor. */
int qllm_validate(struct qmodel *m, qerr *err);

/* ---- forward pass --------------------------------------------------------
 * A state holds the KV cache and the activations for up to n_ctx
 * positions. qllm_forward runs n tokens at positions pos..pos+n-1 (after
 * what the cache holds for 0..pos-1), all n positions through each matrix
 * product together, with causal attention, and writes the logits of the
 * call's tokens logits_from..n-1 ((n - logits_from) * vocab floats, one
 * row after another) into logits: 0 for every token, n - 1 for the last
 * only (0 <= logits_from < n). Rows before logits_from skip the last
 * layer's feed-forward and the output projection, which is most of the
 * work of a small model with a large vocabulary; with logits_from = n/2
 * (perplexity's scored half) the logits are the very floats a call for
 * every token gives. weights[i] overrides tensor i (dequantized values),
 * NULL or weights == NULL for the model's own. */
struct qllm_state;

int qllm_state_new(const struct qmodel *m, int n_ctx, struct qllm_state **out, qerr *err);
void qllm_state_free(struct qllm_state *s);
int qllm_forward(struct qllm_state *s, const float *const *weights, const int32_t *tokens,
                 int n, int pos, int logits_from, float *logits, qerr *err);

#endif
