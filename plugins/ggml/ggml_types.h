/* ggml_types.h — the GGUF block formats of the ggml plugin: one table row per type.
 *
 * Each type quantizes a row of k values (k a multiple of the block size)
 * into k / block blocks of `bytes` bytes, exactly as ggml's reference
 * quantizer quantize_row_<type>_ref does, and decodes them exactly as
 * ggml's dequantize_row_<type> does. The plugin (ggml.c) turns each row
 * of the table into a scheme named like the ggml type ("q4_0", "q4_K").
 */
#ifndef QLAB_GGML_TYPES_H
#define QLAB_GGML_TYPES_H

#include <stdint.h>

struct ggml_type_info {
    const char *name;          /* ggml's type name: "q4_0", "q4_K", "iq4_nl", "tq1_0", "mxfp4" */
    uint32_t gguf_type;        /* GGML_TYPE_* id as stored in GGUF files */
    int block;                 /* values per block (32 or 256) */
    int bytes;                 /* bytes per block */
    const char *description;   /* one line for the scheme picker */
    void (*quantize_row)(const float *x, void *blocks, int64_t k);
    void (*dequantize_row)(const void *blocks, float *y, int64_t k);
};

/* The K-quants, in kquants.c */
void ggml_quantize_row_q2_K(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q2_K(const void *x, float *y, int64_t k);
void ggml_quantize_row_q3_K(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q3_K(const void *x, float *y, int64_t k);
void ggml_quantize_row_q4_K(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q4_K(const void *x, float *y, int64_t k);
void ggml_quantize_row_q5_K(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q5_K(const void *x, float *y, int64_t k);
void ggml_quantize_row_q6_K(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q6_K(const void *x, float *y, int64_t k);

/* The legacy 32-value types, in legacy.c */
void ggml_quantize_row_q4_0(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q4_0(const void *x, float *y, int64_t k);
void ggml_quantize_row_q4_1(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q4_1(const void *x, float *y, int64_t k);
void ggml_quantize_row_q5_0(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q5_0(const void *x, float *y, int64_t k);
void ggml_quantize_row_q5_1(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q5_1(const void *x, float *y, int64_t k);
void ggml_quantize_row_q8_0(const float *x, void *y, int64_t k);
void ggml_dequantize_row_q8_0(const void *x, float *y, int64_t k);

/* The non-linear 4-bit type, in iq4_nl.c */
void ggml_quantize_row_iq4_nl(const float *x, void *y, int64_t k);
void ggml_dequantize_row_iq4_nl(const void *x, float *y, int64_t k);

/* The ternary types, in ternary.c */
void ggml_quantize_row_tq1_0(const float *x, void *y, int64_t k);
void ggml_dequantize_row_tq1_0(const void *x, float *y, int64_t k);
void ggml_quantize_row_tq2_0(const float *x, void *y, int64_t k);
void ggml_dequantize_row_tq2_0(const void *x, float *y, int64_t k);

/* OCP microscaling FP4, in mxfp4.c */
void ggml_quantize_row_mxfp4(const float *x, void *y, int64_t k);
void ggml_dequantize_row_mxfp4(const void *x, float *y, int64_t k);

/* fp16 <-> fp32 as ggml does it (shared by every file of the plugin), in ggml.c */
float ggml_fp16_to_fp32(uint16_t h);
uint16_t ggml_fp32_to_fp16(float f);

/* An fp16 field of a block, little-endian as in GGUF, at any alignment. */
static inline void ggml_put_half(uint8_t *p, float f)
{
    uint16_t h = ggml_fp32_to_fp16(f);
    p[0] = (uint8_t)(h & 0xFF);
    p[1] = (uint8_t)(h >> 8);
}

static inline float ggml_get_half(const uint8_t *p)
{
    return ggml_fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8)));
}

#endif
