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

/* As qllm_state_new with the pool's threads (the caller included) given:
 * 0 for one per core. A forward's floats do not depend on it for n = 1. */
int qllm_state_new_threads(const struct qmodel *m, int n_ctx, int threads,
                           struct qllm_state **out, qerr *err);

/* ---- cuts: passes that start part way ------------------------------------
 * A cut is a point of the residual stream: entering block `layer`'s
 * attention (ffn 0) or its feed-forward (ffn 1); layer n_layers, ffn 0 is
 * after the last block. When the tensors before a cut keep the model's
 * own values, the rows there are the float model's, so a sensitivity
 * sweep saves them once per chunk and starts each point's pass there. */
struct qllm_cut {
    int layer, ffn;
};

/* The cut where tensor t is first used: {-1, 0} for the token embedding
 * (and a tensor the forward pass does not read), {n_layers, 0} for the
 * output norm and projection (unless tied to the embedding). */
struct qllm_cut qllm_first_use(const struct qmodel *m, int t);
/* <0, 0, >0 as a comes before, with, after b in the pass */
int qllm_cut_cmp(struct qllm_cut a, struct qllm_cut b);

/* One half-block alone, for layer-output proxies: the residual rows x_in
 * (n x dim, positions 0..n-1) at cut `at` (a block's attention, ffn 0, or
 * its feed-forward, ffn 1) through that half-block into x_out; the
 * branch's output is x_out - x_in. Leaves the KV cache stale (the next
 * forward starts at position 0). */
int qllm_half_block(struct qllm_state *s, const float *const *weights, int n,
                    struct qllm_cut at, const float *x_in, float *x_out, qerr *err);

/* qllm_forward from position 0, resuming at a cut and/or saving cuts.
 * from (NULL: from the embedding): x_from holds the n x dim residual rows
 * at that cut from a pass of the same tokens; the blocks before it are
 * skipped and their KV cache is not written, so the state's next call
 * must start at position 0 again. save[i], i < n_save: the rows at that
 * cut are copied into x_save[i] (n x dim; after the last block only rows
 * logits_from.. are computed and copied). The logits are the very floats
 * qllm_forward gives when from's rows are those a save of it copied. */
int qllm_forward_cut(struct qllm_state *s, const float *const *weights, const int32_t *tokens,
                     int n, int logits_from, float *logits, const struct qllm_cut *from,
                     const float *x_from, int n_save, const struct qllm_cut *save,
                     float *const *x_save, qerr *err);

#endif
