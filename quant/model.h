/* model.h — the model IR: named tensors and an ordered graph of ops. */
#ifndef QLAB_MODEL_H
#define QLAB_MODEL_H

#include <stdint.h>

#include "error.h"
#include "safetensors.h"
#include "tensor.h"

/* Op kinds. Append-only. */
enum qop {
    QOP_LINEAR = 0,
    QOP_CONV2D,
    QOP_RELU,
    QOP_GELU,
    QOP_MAXPOOL2D,
    QOP_AVGPOOL2D,
    QOP_GLOBAL_AVGPOOL,
    QOP_FLATTEN,
    QOP_RESHAPE,
    QOP_BATCHNORM,
    QOP_ADD,
    QOP_SOFTMAX,
    QOP_COUNT
};

const char *qop_name(enum qop op);
int qop_from_name(const char *name); /* -1 when unknown */

#define QNODE_INPUT (-1) /* value id of the model input */

/* One op. Shapes are per sample: the batch dimension is implicit. */
struct qnode {
    char *name;                 /* the value this node produces */
    enum qop op;
    int n_in;
    int in[2];                  /* producing node, or QNODE_INPUT */
    int weight, bias;           /* tensor index or -1; batchnorm: gamma, beta */
    int mean, var;              /* batchnorm running statistics, tensor index */
    int kernel[2];              /* pools: kh, kw (conv takes it from the weight) */
    int stride[2];
    int pad[4];                 /* top, left, bottom, right */
    int pad_same_upper;         /* ONNX SAME_UPPER: padding from the input size */
    int dilation[2];
    int groups;
    int ceil_mode;              /* pools */
    int count_include_pad;      /* avgpool */
    int gelu_tanh;              /* gelu: tanh approximation instead of erf */
    float eps;                  /* batchnorm */
    int target_ndim;            /* reshape: per-sample target, one -1 allowed */
    int64_t target[QT_MAX_DIMS];
    int transposed;             /* linear: weight stored [in, out] */
    int out_ndim;               /* inferred output shape, per sample */
    int64_t out_shape[QT_MAX_DIMS];
    int64_t out_numel;
};

/* What a tensor is to the graph; decides default quantization. */
enum qrole {
    QROLE_OTHER = 0,
    QROLE_WEIGHT,   /* weight of a linear or conv2d: quantized by default */
    QROLE_BIAS,
    QROLE_NORM,     /* batchnorm parameters and statistics */
    QROLE_COUNT
};

enum qmodel_kind {
    QMODEL_CLASSIFIER = 0,      /* a graph of ops (model.json) over input samples */
    QMODEL_LM,                  /* a llama-family transformer over tokens (llm.h) */
};

struct qllm;
struct qplugin_host;

struct qmodel {
    enum qmodel_kind kind;
    char *name;
    char *path;                 /* as opened (folder or model.json) */
    char *json_path;            /* the model.json actually read */
    char *format;               /* "qlab-json", "gguf", "llama2c", "hf" */
    char *description;

    int n_files;
    struct st_file **files;     /* weight files, kept mapped */

    int n_tensors;              /* tensors the graph uses, in first-use order */
    struct qtensor **tensors;   /* point into files[] */
    enum qrole *roles;          /* n_tensors */
    int *tensor_node;           /* n_tensors: first node using it */

    int n_nodes;
    struct qnode *nodes;
    int output;                 /* node index of the model output */

    int in_ndim;                /* per-sample input shape, e.g. [1, 28, 28] */
    int64_t in_shape[QT_MAX_DIMS];
    int64_t in_numel;
    int n_pre;                  /* preprocessing: x * scale[c] + offset[c] */
    float *pre_scale, *pre_offset; /* n_pre (1 = all channels) */

    int n_classes;              /* output numel */
    char **class_names;         /* optional, n_classes */
    char *dataset_path;         /* default evaluation data, resolved, or NULL */
    char *labels_path;          /* optional */

    /* ---- language models (kind == QMODEL_LM) ---- */
    struct qllm *llm;           /* architecture, per-layer tensor indices, tokenizer */
    /* Tensors that no safetensors file holds (GGUF, llama2.c): owned here,
     * their data pointing into map (or, decoded, into f32_owned). */
    int n_owned;
    struct qtensor *owned;
    void *map;                  /* the mapped model file, or NULL */
    size_t map_size;
    /* Per tensor (n_tensors entries each, any may be NULL): */
    char **source_names;        /* the name in the file when qlab renamed it (HF -> GGUF style) */
    char **stored_types;        /* the type the file stores it as ("Q4_K", "F16"), or NULL */
    int64_t *stored_bytes;      /* bytes the file uses for it (0: numel * dtype size) */
    /* Files besides json_path and files[] whose bytes identify the model
     * (the GGUF or checkpoint itself, a tokenizer, config.json), hashed by
     * qmodel_sha256 in this order after them. */
    int n_extra_files;
    char **extra_files;
};

/* Opens a model of any format qlab reads: a native model (a folder holding
 * model.json, or a .json file), a GGUF file, a llama2.c checkpoint (.bin,
 * with its tokenizer found beside it), or a Hugging Face folder
 * (config.json). The format is decided by content, not by name. */
int qmodel_open(const char *path, struct qmodel **out, qerr *err);
/* The same, with options that only some formats take. */
struct qmodel_open_opts {
    const char *tokenizer;      /* llama2.c: tokenizer.bin path (default: found beside) */
    const struct qplugin_host *host; /* decodes quantized GGUF tensors (the ggml plugin) */
};
int qmodel_open_ex(const char *path, const struct qmodel_open_opts *o, struct qmodel **out,
                   qerr *err);
void qmodel_free(struct qmodel *m);
int qmodel_find_tensor(const struct qmodel *m, const char *name); /* -1 if absent */
/* What uses a tensor, for display: the op of its graph node ("conv2d"), or
 * for a language model "embedding", "matmul", "rmsnorm" or "bias". */
const char *qmodel_tensor_op(const struct qmodel *m, int tensor);
/* Bytes of all graph tensors stored as float32. */
int64_t qmodel_float_bytes(const struct qmodel *m);
int64_t qmodel_n_params(const struct qmodel *m);
/* sha256 over model.json, every weight file, then every extra file, hex. */
int qmodel_sha256(const struct qmodel *m, char out[65], qerr *err);

/* Fills roles/tensor_node and infers every node's output shape; checks
 * weight shapes against their ops. Used by loaders after building nodes. */
int qmodel_finish_graph(struct qmodel *m, qerr *err);

#endif
