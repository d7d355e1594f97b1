/* ggml_types.c — ggml's tensor type table: every GGML_TYPE_* id with its name, block size and bytes per block. */
#include <stddef.h>

#include "gguf.h"

/* As ggml's type_traits (ggml.c) and gguf-py's GGML_QUANT_SIZES define them;
 * names as GGUF tools print them (gguf-py's GGMLQuantizationType). Ids
 * removed from ggml stay as comments and are unknown here: ggml refuses
 * them in GGUF files too. QK_K = 256. */
static const struct qggml_type types[] = {
    [0] = {"F32", 1, 4},
    [1] = {"F16", 1, 2},
    [2] = {"Q4_0", 32, 2 + 16},
    [3] = {"Q4_1", 32, 2 + 2 + 16},
    /* 4 Q4_2, 5 Q4_3: removed */
    [6] = {"Q5_0", 32, 2 + 4 + 16},
    [7] = {"Q5_1", 32, 2 + 2 + 4 + 16},
    [8] = {"Q8_0", 32, 2 + 32},
    [9] = {"Q8_1", 32, 4 + 4 + 32},
    [10] = {"Q2_K", 256, 2 + 2 + 256 / 16 + 256 / 4},
    [11] = {"Q3_K", 256, 2 + 256 / 4 + 256 / 8 + 12},
    [12] = {"Q4_K", 256, 2 + 2 + 256 / 2 + 12},
    [13] = {"Q5_K", 256, 2 + 2 + 256 / 2 + 256 / 8 + 12},
    [14] = {"Q6_K", 256, 2 + 256 / 2 + 256 / 4 + 256 / 16},
    [15] = {"Q8_K", 256, 4 + 256 + 256 / 8},
    [16] = {"IQ2_XXS", 256, 2 + 256 / 4},
    [17] = {"IQ2_XS", 256, 2 + 256 / 4 + 256 / 32},
    [18] = {"IQ3_XXS", 256, 2 + 256 / 4 + 256 / 8},
    [19] = {"IQ1_S", 256, 2 + 256 / 8 + 256 / 16},
    [20] = {"IQ4_NL", 32, 2 + 16},
    [21] = {"IQ3_S", 256, 2 + 256 / 4 + 256 / 8 + 256 / 32 + 4},
    [22] = {"IQ2_S", 256, 2 + 256 / 4 + 256 / 16},
    [23] = {"IQ4_XS", 256, 2 + 2 + 256 / 2 + 256 / 64},
    [24] = {"I8", 1, 1},
    [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},
    [27] = {"I64", 1, 8},
    [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 256 / 8 + 256 / 16 + 256 / 32},
    [30] = {"BF16", 1, 2},
    /* 31 Q4_0_4_4, 32 Q4_0_4_8, 33 Q4_0_8_8: removed from GGUF files */
    [34] = {"TQ1_0", 256, 2 + 4 * 13},
    [35] = {"TQ2_0", 256, 2 + 64},
    /* 36 IQ4_NL_4_4, 37 IQ4_NL_4_8, 38 IQ4_NL_8_8: removed from GGUF files */
    [39] = {"MXFP4", 32, 1 + 16},
    [40] = {"NVFP4", 64, 4 + 32},
    [41] = {"Q1_0", 128, 2 + 16},
};

#define N_TYPES (sizeof types / sizeof types[0])

_Static_assert(N_TYPES == 42, "ggml type table: ids 0..41");

const struct qggml_type *qggml_type(uint32_t id)
{
    if (id >= N_TYPES || !types[id].name)
        return NULL;
    return &types[id];
}
