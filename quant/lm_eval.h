/* lm_eval.h — perplexity and KL divergence of a language model over a token stream, as llama-perplexity computes them.
 *
 * Chunks: the tokens (one BOS first, from the tokenizer) are split into
 * floor(n_tokens / n_ctx) chunks of n_ctx tokens; each chunk's first token
 * is replaced by BOS; the chunk runs through the model from position 0;
 * only its second half is scored: the logits at position j (first = n_ctx/2
 * <= j < n_ctx - 1) predict the token at j + 1. That gives
 * n_chunks * (n_ctx - 1 - n_ctx/2) scored tokens.
 *
 * Reference: for the float model the log-probabilities of every scored
 * token are kept as llama-perplexity's --kl-divergence-base file keeps
 * them (per token: float scale, float min log-prob, then n_vocab uint16
 * codes of the log-probabilities within 16 nats of the maximum: 2 bytes
 * per vocabulary entry), and a quantized run is compared with them exactly
 * as llama-perplexity --kl-divergence does.
 */
#ifndef QLAB_LM_EVAL_H
#define QLAB_LM_EVAL_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "eval.h"
#include "llm.h"
#include "model.h"

struct qlm_opts {
    int n_ctx;            /* tokens per chunk (default: min(model's max_ctx, 512)) */
    int n_chunks;         /* 0: all */
    int threads;          /* 0: one per core */
};

/* What llama-perplexity prints, with its JSON names in qlab. */
struct qlm_metrics {
    int64_t n_chunks, n_tokens_scored;
    double ppl, ppl_err;          /* perplexity and its standard error */
    double nll_mean;              /* mean negative log-likelihood, nats */
    int has_ref;                  /* the rest needs a float reference */
    double ppl_ref;               /* of the reference (float) model */
    double ln_ppl_ratio;          /* ln(PPL_q / PPL_float) */
    double kld_mean, kld_median, kld_p99, kld_max;
    double same_top_pct;          /* % of scored tokens with the same argmax */
    double dp_mean, dp_rms;       /* change in probability of the correct token, in % */
};

/* A reference file: a header (magic, n_vocab, n_ctx, n_chunks, scored
 * tokens, the reference run's NLL sums) then, per scored token, 4 uint16
 * (two floats: scale, min log-prob) and n_vocab uint16 codes. It is
 * written and read a chunk at a time, so memory stays at one chunk. */
struct qlm_ref_info {
    int n_vocab, n_ctx;
    int64_t n_chunks, n_tokens_scored;
    double nll_sum, nll2_sum;     /* of the reference run */
    double ppl;
};

/* Reads and checks a reference file's header (and that its size matches). */
int qlm_ref_info(const char *path, struct qlm_ref_info *info, qerr *err);

/* Perplexity of the model over tokens. ref_out: path to keep this (float)
 * run's log-probabilities in, written to path.tmp and renamed when done,
 * or NULL. ref_in: a reference to compare with (same n_ctx, vocabulary and
 * chunks), or NULL. weights as qllm_forward. Returns 0, QEVAL_CANCELLED or
 * -1. */
int qlm_perplexity(const struct qmodel *m, const float *const *weights, const int32_t *tokens,
                   int64_t n_tokens, const struct qlm_opts *o, const struct qprogress *p,
                   const char *ref_in, const char *ref_out, struct qlm_metrics *out, qerr *err);

/* The chunks a run with these options takes: n_ctx (resolved when 0) and
 * their count; the same checks and errors as qlm_perplexity. */
int qlm_chunking(const struct qmodel *m, const int32_t *tokens, int64_t n_tokens,
                 const struct qlm_opts *o, int *n_ctx, int64_t *n_chunks, qerr *err);

/* Cuts (llm.h) of every chunk, for sensitivity sweeps: each chunk's pass
 * resumes at `from` with its rows at x_from + chunk * n_ctx * dim (NULL:
 * from the embedding), and/or saves n_save cuts into x_save[i] + chunk *
 * n_ctx * dim. Each buffer holds n_chunks * n_ctx * dim floats. */
#define QLM_MAX_CUTS 1024
struct qlm_cuts {
    const struct qllm_cut *from;
    const float *x_from;
    int n_save;
    const struct qllm_cut *save;
    float *const *x_save;
};

/* qlm_perplexity with cuts (NULL: none). */
int qlm_perplexity_cut(const struct qmodel *m, const float *const *weights,
                       const int32_t *tokens, int64_t n_tokens, const struct qlm_opts *o,
                       const struct qprogress *p, const char *ref_in, const char *ref_out,
                       const struct qlm_cuts *cuts, struct qlm_metrics *out, qerr *err);

/* The metrics of the float model against itself, from its reference's
 * header alone: its perplexity (and error) as qlm_perplexity computed it,
 * KL divergence 0, the same top token everywhere. */
void qlm_metrics_of_reference(const struct qlm_ref_info *info, struct qlm_metrics *m);

#endif
