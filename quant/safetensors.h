/* safetensors.h — read (memory-mapped, fully validated) and write safetensors files. */
#ifndef QLAB_SAFETENSORS_H
#define QLAB_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tensor.h"

struct st_meta {
    char *key, *value;
};

struct st_file {
    char *path;
    void *map;                /* the whole file, read-only */
    size_t map_size;
    const uint8_t *data;      /* start of the data section */
    size_t data_size;
    int n_tensors;
    struct qtensor *tensors;  /* in file order of offsets; f32 views made */
    int n_meta;
    struct st_meta *meta;     /* __metadata__ string pairs */
};

/* Opens and validates: 8-byte header length vs file size, header is a JSON
 * object, every entry has a known dtype, a shape of non-negative ints, and
 * data_offsets [begin, end] with end - begin == numel * dtype size, inside
 * the data section, ranges not overlapping; __metadata__ maps strings to
 * strings. Every tensor's float32 view is made. Errors name the file. */
int st_open(const char *path, struct st_file **out, qerr *err);
void st_close(struct st_file *f);
struct qtensor *st_find(const struct st_file *f, const char *name);
const char *st_meta_get(const struct st_file *f, const char *key);

/* One tensor to write; data is numel * dtype size bytes, little-endian. */
struct st_write_tensor {
    const char *name;
    enum qdtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data;
};

/* Writes a safetensors file (header padded to 8 bytes, tensors in the
 * given order). Writes to path.tmp and renames, so a reader never sees a
 * half-written file. meta may be NULL. */
int st_write(const char *path, const struct st_write_tensor *tensors, int n,
             const struct st_meta *meta, int n_meta, qerr *err);

#endif
