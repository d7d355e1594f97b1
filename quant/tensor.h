/* tensor.h — named n-d tensors of a few storage types, viewable as float32. */
#ifndef QLAB_TENSOR_H
#define QLAB_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Storage types. Append-only: ids are stored in databases. */
enum qdtype {
    QDT_F32 = 0,
    QDT_F16 = 1,
    QDT_BF16 = 2,
    QDT_I64 = 3,
    QDT_I32 = 4,
    QDT_U8 = 5,
    QDT_I8 = 6,
    QDT_COUNT
};

struct qdtype_info {
    const char *name;   /* as safetensors spells it: "F32", "BF16", ... */
    size_t size;        /* bytes per element */
    /* n elements at src (any alignment, little-endian) to float32 */
    void (*to_float)(const void *src, float *dst, int64_t n);
};

const struct qdtype_info *qdtype_info(enum qdtype t);
/* Returns the dtype named `name` (safetensors spelling), or -1. */
int qdtype_from_name(const char *name);

#define QT_MAX_DIMS 8

struct qtensor {
    char *name;
    enum qdtype dtype;
    int ndim;
    int64_t shape[QT_MAX_DIMS];
    int64_t numel;          /* product of shape; 1 for a scalar */
    const void *data;       /* numel * dtype size bytes, usually inside a mapping */
    size_t nbytes;
    const float *f32;       /* float32 view: data itself when F32 and aligned,
                               else f32_owned; NULL until qtensor_make_f32 */
    float *f32_owned;
};

/* Makes t->f32 valid (converting or copying when needed). */
int qtensor_make_f32(struct qtensor *t, qerr *err);
/* Frees what the tensor owns (name, f32_owned), not the mapped data. */
void qtensor_clear(struct qtensor *t);

/* rows = shape[0] (output channels), cols = the rest; a 1-D tensor or a
 * scalar is one row. */
void qtensor_matrix_shape(const struct qtensor *t, int64_t *rows, int64_t *cols);

/* "[32, 1, 5, 5]" into buf. */
void qshape_format(const int64_t *shape, int ndim, char *buf, size_t size);

/* Half-precision conversions used by readers and schemes. */
float qf16_to_f32(uint16_t h);
float qbf16_to_f32(uint16_t h);
uint16_t qf32_to_f16(float f);
uint16_t qf32_to_bf16(float f);  /* round to nearest even */

#endif
