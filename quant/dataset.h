/* dataset.h — classification evaluation data: inputs and integer labels. */
#ifndef QLAB_DATASET_H
#define QLAB_DATASET_H

#include <stdint.h>

#include "error.h"
#include "tensor.h"

struct qdataset {
    char *path;                 /* inputs file */
    char *labels_path;          /* labels file (IDX) or NULL (safetensors) */
    const char *kind;           /* "safetensors" or "idx" */
    int64_t n;                  /* samples */
    int ndim;                   /* per-sample shape */
    int64_t shape[QT_MAX_DIMS];
    int64_t sample_numel;
    float *inputs;              /* n * sample_numel raw values */
    int32_t *labels;            /* n, each >= 0 */
    int32_t max_label;
    char sha256[65];            /* over the inputs file then the labels file */
};

/* Opens a dataset:
 *  - a safetensors file with `inputs` [N, ...] (any dtype) and `labels` [N]
 *    (integer dtype); labels_path must be NULL;
 *  - an IDX images file (gzip or plain), whose labels are labels_path or,
 *    when NULL, the file beside it named by the standard convention.
 * Every size is checked; errors name the file. */
int qdataset_open(const char *path, const char *labels_path,
                  struct qdataset **out, qerr *err);
void qdataset_free(struct qdataset *d);

/* The IDX labels file name for an images file: "images" -> "labels" and
 * "idx3" -> "idx1" in the base name (t10k-images-idx3-ubyte.gz ->
 * t10k-labels-idx1-ubyte.gz). Returns -1 if the name has no "images". */
int qdataset_idx_labels_path(const char *images_path, char *out, size_t size);

/* Reads any IDX file (magic 0x00 0x00 type ndim, big-endian dims; types
 * u8, i8, i16, i32, f32, f64), gzip or plain, into floats. The caller frees
 * *data. Bounded: at most max_elems elements. */
int qidx_read(const char *path, int64_t max_elems, float **data, int *ndim,
              int64_t dims[QT_MAX_DIMS], qerr *err);

#endif
