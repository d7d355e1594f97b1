/* plugin_host.h — loads scheme plugins, validates them, and calls them safely. */
#ifndef QLAB_PLUGIN_HOST_H
#define QLAB_PLUGIN_HOST_H

#include <stdint.h>

#include "../plugins/qlab_plugin.h"
#include "error.h"

struct qplugin {
    char *path;                       /* the .so as loaded */
    char sha256[65];                  /* of the .so file */
    void *dl;                         /* dlopen handle */
    const struct qlab_plugin *desc;   /* validated descriptor */
};

struct qplugin_host {
    int n_plugins;
    struct qplugin **plugins;
    int n_refused;
    char **refused;                   /* one line per plugin refused by discovery */
};

struct qplugin_host *qhost_new(void);
void qhost_free(struct qplugin_host *h);

/* Loads one plugin file: dlopen, the entry symbol, the ABI handshake, and
 * a check of the descriptor and of every scheme and parameter description.
 * On any failure the file is dlclosed and err says which file and why
 * (not a shared object, no qlab_plugin_entry, ABI 7 vs host 1, ...). A
 * plugin whose name is already loaded is refused unless it is the same
 * file (then this is a no-op). */
int qhost_load(struct qplugin_host *h, const char *path, qerr *err);

/* Loads every *.so in dir (sorted by name). Refusals go to h->refused and
 * do not stop the others. A missing dir is not an error. */
void qhost_discover(struct qplugin_host *h, const char *dir);

struct qscheme_ref {
    const struct qplugin *plugin;
    const struct qlab_scheme *scheme;
};

/* Finds a scheme by name, case-insensitively: "int" or "plugin/scheme".
 * Errors: unknown scheme (listing the known ones) or ambiguous name. */
int qhost_find_scheme(const struct qplugin_host *h, const char *name,
                      struct qscheme_ref *out, qerr *err);

/* A scheme with its parameters parsed, validated and configured. */
struct qscheme_config {
    struct qscheme_ref ref;
    struct qlab_value *values;        /* one per parameter, in description order */
    void *handle;                     /* the plugin's configured handle */
    char *params_text;                /* canonical: every parameter, k=v,... in order */
    char *params_json;                /* the same as a JSON object */
    char *label;                      /* scheme name plus non-default params: "int:bits=4,granularity=group" */
};

/* params_text: "k=v,k=v" (spaces around tokens allowed; may be NULL or
 * empty). Unknown keys, repeated keys, values of the wrong type or out of
 * range, and the plugin's own configure errors are reported with the
 * parameter's name and its allowed values. */
int qscheme_configure(const struct qscheme_ref *ref, const char *params_text,
                      struct qscheme_config **out, qerr *err);
void qscheme_config_free(struct qscheme_config *c);

/* Exact storage in bits of a rows x cols tensor; a non-positive answer or
 * a plugin error becomes an error. */
int qscheme_size_bits(const struct qscheme_config *c, int64_t rows, int64_t cols,
                      uint64_t *bits, qerr *err);

/* Quantizes and dequantizes one tensor into out (rows*cols floats). The
 * result is checked: count written, NaN/Inf, writes past the buffer. */
int qscheme_quantize(const struct qscheme_config *c, const struct qlab_tensor_view *in,
                     float *out, const struct qlab_host *host, qerr *err);

/* ---- optional capabilities (ABI 1 revision 2) ----------------------------- */
/* 1 and the ggml type id when the scheme declares one, else 0. */
int qscheme_gguf_type(const struct qlab_scheme *s, uint32_t *type);
int qscheme_can_pack(const struct qlab_scheme *s);
int qscheme_can_unpack(const struct qlab_scheme *s);
int qscheme_can_mask(const struct qlab_scheme *s);
/* Bytes of one packed row of cols values. */
int qscheme_packed_row_bytes(const struct qscheme_config *c, int64_t cols, int64_t *bytes,
                             qerr *err);
/* Packs a tensor into out (room for out_size bytes; rows * row bytes are
 * written). Checked: byte count, writes past the end. */
int qscheme_pack(const struct qscheme_config *c, const struct qlab_tensor_view *in, uint8_t *out,
                 int64_t out_size, const struct qlab_host *host, qerr *err);
/* Decodes rows x cols values from exactly rows * row bytes. Checked:
 * NaN/Inf, writes past the end. */
int qscheme_unpack(const struct qscheme_config *c, const uint8_t *in, int64_t in_size,
                   int64_t rows, int64_t cols, float *out, qerr *err);
/* The keep mask of a pruning scheme (0/1 per value, same count per row). */
int qscheme_mask(const struct qscheme_config *c, const struct qlab_tensor_view *in, uint8_t *keep,
                 int64_t *kept_per_row, const struct qlab_host *host, qerr *err);

/* Floats of room past the values that qscheme_quantize_into needs. */
#define QSCHEME_OUT_GUARD 16

/* The same checks without the private copy: the plugin writes straight
 * into out, which must have room for rows*cols + QSCHEME_OUT_GUARD floats.
 * On failure out holds whatever the plugin left there. */
int qscheme_quantize_into(const struct qscheme_config *c, const struct qlab_tensor_view *in,
                          float *out, int64_t out_capacity, const struct qlab_host *host,
                          qerr *err);

/* Text value of a parameter for display ("channel", "8", "true"). */
void qparam_format_value(const struct qlab_param *p, const struct qlab_value *v,
                         char *buf, size_t size);
/* Parses one value for p; err names the parameter and the allowed values. */
int qparam_parse_value(const struct qlab_param *p, const char *text,
                       struct qlab_value *v, qerr *err);

#endif
