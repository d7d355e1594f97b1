/* tensor_quant.h — quantizes one tensor of a safetensors file outside any model (`qlab quant`). */
#ifndef QLAB_TENSOR_QUANT_H
#define QLAB_TENSOR_QUANT_H

#include <stdint.h>

#include "quant/metrics.h"
#include "workbench.h"

struct tq_result {
    char scheme[256];          /* label of what ran: "q4_K", "prune:pattern=2:4+int:bits=4" */
    char params_json[1024];
    int64_t rows, cols;
    uint64_t bits;             /* exact storage */
    double bits_per_weight;
    int64_t packed_bytes;      /* 0 when the scheme does not pack */
    int has_gguf_type;
    uint32_t gguf_type;
    struct qtensor_error e;    /* dequantized against the input */
};

/* Reads tensor `name` from in_path, runs scheme_rhs ("SCHEME[:k=v,...]",
 * or "prune:...+SCHEME") with the workbench's plugins, and writes out_path
 * with NAME.deq (float32, the input's shape) and, where the scheme packs,
 * NAME.q (uint8 [rows, bytes per row]: one row of blocks per row). */
int tq_quantize_file(struct wb *w, const char *in_path, const char *name, const char *scheme_rhs,
                     const char *out_path, struct tq_result *r, qerr *err);

#endif
