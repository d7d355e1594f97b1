/* llm_kernels.h — the float kernels of the llama forward pass (llm_forward.c), exposed so tests can check them by hand. */
#ifndef QLAB_LLM_KERNELS_H
#define QLAB_LLM_KERNELS_H

#include <stdint.h>

#include "llm.h"

/* o = w * x / sqrt(mean(x^2) + eps), the sum of squares accumulated in
 * float in order, as llama2.c does. o may be x. */
void qllm_rmsnorm(float *o, const float *x, const float *w, int size, float eps);

/* Cosine and sine of the RoPE angles of positions pos0..pos0+n-1:
 * cs[(i * hd/2 + j) * 2 + {0, 1}] for pair j of position pos0 + i, angle
 * (pos0 + i) * freq_j, freq_j = 1 / theta^(2j / hd) (as llama2.c computes
 * it, in float). */
void qllm_rope_table(float *cs, int pos0, int n, int hd, float theta);

/* Rotates the n_heads heads of hd values in one row by one position's
 * row of the table: pairs (2j, 2j+1) when interleaved (llama2.c, GGUF
 * llama), (j, j + hd/2) when half (Hugging Face rotate_half). */
void qllm_rope_row(float *x, int n_heads, int hd, const float *cs, enum qllm_rope layout);

/* The KV head that query head h reads (grouped-query attention). */
int qllm_kv_head(int h, int n_heads, int n_kv_heads);

/* y[i] = e^x[i] for i < n, within 2 ulp, 4 at a time (the exponential of
 * the attention softmax and of SiLU). x is clamped to [-87, 88]: results
 * are never infinite or subnormal (below e^-87, 1.6e-38, gives e^-87). */
void qllm_exp(float *y, const float *x, int64_t n);

/* Causal attention of n query rows at positions pos..pos+n-1 over the
 * cached rows 0..pos+n-1, for query heads h0..h1-1:
 * q, out [n, n_heads*hd]; kc, vc [pos+n, n_kv*hd]; scores: n * (pos+n)
 * floats of scratch. Scores are q.k / sqrt(hd), softmax over 0..pos+i
 * (exponentials by qllm_exp). */
void qllm_attention(const float *q, const float *kc, const float *vc, float *out, int n, int pos,
                    int n_heads, int n_kv, int hd, int h0, int h1, float *scores);

/* gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g) (by qllm_exp) */
void qllm_swiglu(float *gate, const float *up, int64_t n);

#endif
