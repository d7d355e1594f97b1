/* gguf.h — GGUF v2 and v3 files (llama.cpp's model format): metadata, tensor infos, data; all validated. */
#ifndef QLAB_GGUF_H
#define QLAB_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Metadata value types, as the GGUF specification numbers them. */
enum qgguf_vtype {
    QGGUF_UINT8 = 0, QGGUF_INT8 = 1, QGGUF_UINT16 = 2, QGGUF_INT16 = 3,
    QGGUF_UINT32 = 4, QGGUF_INT32 = 5, QGGUF_FLOAT32 = 6, QGGUF_BOOL = 7,
    QGGUF_STRING = 8, QGGUF_ARRAY = 9, QGGUF_UINT64 = 10, QGGUF_INT64 = 11,
    QGGUF_FLOAT64 = 12, QGGUF_VTYPE_COUNT
};

struct qgguf_str {
    const char *s;        /* points into the mapping: NOT NUL-terminated */
    uint64_t len;
};

struct qgguf_value {
    enum qgguf_vtype type;
    union {
        uint64_t u;       /* unsigned integers and bool */
        int64_t i;        /* signed integers */
        double f;         /* floats */
        struct qgguf_str str;
        struct {
            enum qgguf_vtype type;    /* element type (arrays of arrays are refused) */
            uint64_t n;
            const uint8_t *data;      /* the raw elements in the mapping */
            struct qgguf_str *strs;   /* for string arrays: n entries (owned) */
        } arr;
    };
};

struct qgguf_kv {
    char *key;
    struct qgguf_value v;
};

struct qgguf_tensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[4];       /* ne[0] is the fastest-varying (the row length) */
    uint32_t type;        /* ggml type id */
    uint64_t offset;      /* from the start of the data section */
    const uint8_t *data;  /* in the mapping */
    uint64_t nbytes;
};

struct qgguf {
    char *path;
    void *map;
    size_t size;
    uint32_t version;
    uint32_t alignment;   /* general.alignment, default 32 */
    uint64_t n_kv, n_tensors;
    struct qgguf_kv *kv;
    struct qgguf_tensor *tensors;
    const uint8_t *data;  /* the aligned data section */
    uint64_t data_size;
};

/* ggml's type table: name, values per block, bytes per block (0 when the
 * id is unknown). Known to qlab's reader for sizes and messages even where
 * it cannot decode the type. */
struct qggml_type {
    const char *name;
    int block, bytes;
};
const struct qggml_type *qggml_type(uint32_t id);   /* NULL if unknown */

/* Maps and validates the whole file: magic, version 2 or 3, every count
 * against what the file can hold, every string and array length, value
 * types, key uniqueness, alignment (a power of two), tensor dims (1..4,
 * each > 0, product without overflow, ne[0] a multiple of the block size),
 * types (known ids), offsets (aligned, inside the data section, not
 * overlapping). Errors name the file and the key or tensor. */
int qgguf_open(const char *path, struct qgguf **out, qerr *err);
void qgguf_close(struct qgguf *g);
/* Gives the mapping to the caller (who munmaps map/size); g keeps pointers. */
void qgguf_take_map(struct qgguf *g, void **map, size_t *size);

const struct qgguf_kv *qgguf_find(const struct qgguf *g, const char *key);
const struct qgguf_tensor *qgguf_find_tensor(const struct qgguf *g, const char *name);
/* Typed getters: -1 (with err naming the key) when absent or of another type;
 * integers of any width convert when the value fits. */
int qgguf_get_u64(const struct qgguf *g, const char *key, uint64_t *v, qerr *err);
int qgguf_get_f64(const struct qgguf *g, const char *key, double *v, qerr *err);
int qgguf_get_str(const struct qgguf *g, const char *key, struct qgguf_str *v, qerr *err);

#endif
