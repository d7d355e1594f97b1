/* qlab_plugin.h — the ABI between qlab and a quantization scheme plugin.
 *
 * This is the only header a plugin includes. A plugin is a shared object
 * (built with -fPIC -shared -fvisibility=hidden) that exports exactly one
 * well-known symbol:
 *
 *     QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi);
 *
 * Handshake. The host calls qlab_plugin_entry(QLAB_PLUGIN_ABI) once, right
 * after dlopen. The plugin returns NULL when it cannot serve that host ABI,
 * or a pointer to a static descriptor whose abi_version it was built with.
 * The host refuses the plugin (and dlcloses it) when abi_version differs
 * from its own, when struct_size is smaller than the host knows, or when
 * the descriptor or any scheme or parameter description is malformed.
 *
 * Growth. Every struct below begins (or ends, for arrays of plain data)
 * with what it had in version 1 and only grows at the end; a struct that
 * may grow carries its own struct_size, so an older plugin keeps working
 * with a newer host. Enum values are append-only.
 *
 * Lifecycle of a scheme, all calls made by the host:
 *   configure(values)      -> opaque handle (one per tensor or per rule)
 *   size_bits(handle, r,c) -> storage of an r x c tensor, in bits, exactly
 *   quantize(handle, view) -> dequantized floats, same shape as the input
 *   release(handle)
 *
 * Threading. A plugin keeps no global mutable state. After configure
 * returns, the host may call size_bits and quantize on the same handle from
 * several threads at once, so those two must only read the handle.
 * configure and release on one handle are never concurrent with any other
 * call on that handle.
 *
 * Errors. Every fallible call returns 0 on success and non-zero on error,
 * after writing one line of text (no newline, no trailing period needed)
 * into err[0..err_size-1], NUL-terminated. The host shows that text to the
 * user with the plugin and scheme name in front. A plugin never prints,
 * never exits and never aborts on bad input.
 *
 * Output checks. The host checks every result before use: quantize must
 * report exactly rows*cols values written and none may be NaN or Inf;
 * size_bits must be positive. A plugin that breaks these is reported, its
 * result is discarded, and qlab keeps running.
 */
#ifndef QLAB_PLUGIN_H
#define QLAB_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QLAB_PLUGIN_ABI 1u
#define QLAB_PLUGIN_ENTRY_SYMBOL "qlab_plugin_entry"

#if defined(__GNUC__)
#define QLAB_EXPORT __attribute__((visibility("default")))
#else
#define QLAB_EXPORT
#endif

/* ---- parameters --------------------------------------------------------
 * A scheme describes its parameters so that any front end (CLI recipe
 * parser, TUI editor) can validate and edit them without knowing the
 * scheme. The host parses "key=value" text against these descriptions,
 * enforces type and range, fills defaults, and hands the plugin one typed
 * value per parameter, in the order of the description array.
 */
enum qlab_param_type {
    QLAB_PARAM_INT = 0,   /* integer in [min, max]; value in .i */
    QLAB_PARAM_FLOAT = 1, /* real in [min, max]; value in .f */
    QLAB_PARAM_BOOL = 2,  /* true/false, yes/no, 1/0; value in .i (0 or 1) */
    QLAB_PARAM_ENUM = 3,  /* one of choices[]; value in .i (index) */
    QLAB_PARAM_TYPE_COUNT
};

struct qlab_param {
    const char *name;            /* [a-z0-9_]+, unique within the scheme */
    enum qlab_param_type type;
    const char *help;            /* one line for the UI */
    double min, max;             /* INT, FLOAT: inclusive range */
    double def;                  /* default; ENUM: index into choices */
    const char *const *choices;  /* ENUM: NULL-terminated list; else NULL */
};

struct qlab_value {
    int64_t i; /* INT, BOOL, ENUM */
    double f;  /* FLOAT */
};

/* ---- tensors -----------------------------------------------------------
 * A weight tensor is presented as a row-major float32 matrix whose rows
 * are output channels: shape [out, in] stays as it is, a convolution
 * [out, in/groups, kh, kw] becomes rows = out, cols = in/groups*kh*kw, a
 * 1-D tensor becomes one row. The original shape is given for schemes that
 * care about it.
 */
struct qlab_tensor_view {
    const float *data;     /* rows * cols values, read-only */
    int64_t rows, cols;
    int ndim;              /* of the original shape */
    const int64_t *shape;  /* original shape, ndim entries */
    const char *name;      /* tensor name, for error messages */
};

/* Services the host passes in; a plugin links against nothing of qlab's. */
struct qlab_host {
    uint32_t struct_size;
    void *ctx;
    void (*log)(void *ctx, const char *message);  /* may be NULL */
    int (*cancelled)(void *ctx);                  /* non-zero: stop early, return an error */
};

/* ---- schemes ---------------------------------------------------------- */
struct qlab_scheme {
    uint32_t struct_size;      /* sizeof(struct qlab_scheme) the plugin was built with */
    const char *name;          /* [a-zA-Z0-9_]+, unique within the plugin */
    const char *description;   /* one line */
    const struct qlab_param *params;
    uint32_t n_params;

    /* Cross-parameter validation and precomputation. values has n_params
     * entries, already type- and range-checked by the host. */
    int (*configure)(const struct qlab_value *values, void **handle,
                     char *err, size_t err_size);
    void (*release)(void *handle);

    /* Exact storage of a rows x cols tensor in bits: codes plus every
     * scale, zero point, table or mask the format must keep. */
    int (*size_bits)(const void *handle, int64_t rows, int64_t cols,
                     uint64_t *bits, char *err, size_t err_size);

    /* Quantize and dequantize: write rows*cols floats to out (room for
     * out_capacity floats) and set *n_written. */
    int (*quantize)(const void *handle, const struct qlab_tensor_view *in,
                    float *out, int64_t out_capacity, int64_t *n_written,
                    const struct qlab_host *host, char *err, size_t err_size);

    /* ---- optional, since ABI 1 revision 2 ----------------------------
     * The host reads these only when struct_size covers them, so a plugin
     * built against the first revision keeps working. Leave a function
     * NULL (and flags 0) for what the scheme does not do. */
    uint32_t flags;            /* QLAB_SCHEME_* bits below */
    uint32_t gguf_type;        /* ggml type id (GGML_TYPE_Q4_0 = 2, ...), with QLAB_SCHEME_GGUF */

    /* Packed storage: the bytes the format keeps. Rows are packed one after
     * another, each row a whole number of bytes (a row of blocks for block
     * formats). packed_row_bytes gives the bytes of one row of `cols`
     * values; pack writes rows * that many bytes; unpack decodes them to
     * floats exactly as the format's reference decoder does. */
    int (*packed_row_bytes)(const void *handle, int64_t cols, int64_t *bytes,
                            char *err, size_t err_size);
    int (*pack)(const void *handle, const struct qlab_tensor_view *in,
                uint8_t *out, int64_t out_capacity, int64_t *n_written,
                const struct qlab_host *host, char *err, size_t err_size);
    int (*unpack)(const void *handle, const uint8_t *in, int64_t in_size,
                  int64_t rows, int64_t cols, float *out, int64_t out_capacity,
                  char *err, size_t err_size);

    /* Pruning: a scheme with a mask function removes weights. It writes
     * keep[i] = 1 for each value it keeps and 0 for each it removes; every
     * row must keep the same count, so the kept values form a dense
     * rows x kept matrix. In a recipe, `prune:...+int:bits=4` runs the
     * next scheme on that matrix; the tensor's storage is the mask's bits
     * (this scheme's size_bits) plus the next scheme's bits for the kept
     * values (32 per value when nothing follows). */
    int (*mask)(const void *handle, const struct qlab_tensor_view *in,
                uint8_t *keep, int64_t keep_capacity,
                const struct qlab_host *host, char *err, size_t err_size);
};

/* flags */
#define QLAB_SCHEME_GGUF 0x1u   /* gguf_type holds the ggml type this scheme packs to */

/* ---- the plugin ------------------------------------------------------- */
struct qlab_plugin {
    uint32_t abi_version;      /* QLAB_PLUGIN_ABI the plugin was built with */
    uint32_t struct_size;      /* sizeof(struct qlab_plugin) */
    const char *name;          /* [a-z0-9_]+ */
    const char *version;       /* free text, e.g. "1.0.0" */
    const char *description;   /* one line */
    const struct qlab_scheme *const *schemes;
    uint32_t n_schemes;
};

typedef const struct qlab_plugin *(*qlab_plugin_entry_fn)(uint32_t host_abi);

/* What a plugin defines (declared here so plugins build warning-free). */
QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi);

#ifdef __cplusplus
}
#endif

#endif /* QLAB_PLUGIN_H */
