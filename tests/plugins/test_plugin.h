/* test_plugin.h — the scaffolding shared by qlab's test plugins in tests/plugins/. */
#ifndef QLAB_TEST_PLUGIN_H
#define QLAB_TEST_PLUGIN_H

/* Why: each test plugin exists to show the host one flaw or one behaviour,
 * and the rest of it (a handle-free configure, float32 storage, a copying
 * quantize, the descriptors and the entry point) is the same every time.
 * Kept here, each plugin file holds only what makes it special. Header-only
 * because every test plugin is built from a single .c file. */

#include <stdio.h>

#include "qlab_plugin.h"

#define TP_UNUSED __attribute__((unused))

/* ---- scheme functions --------------------------------------------------- */

/* Nothing to configure: the handle is NULL. */
static TP_UNUSED int tp_configure_none(const struct qlab_value *v, void **handle, char *err,
                                       size_t err_size)
{
    (void)v;
    (void)err;
    (void)err_size;
    *handle = NULL;
    return 0;
}

static TP_UNUSED void tp_release_none(void *handle)
{
    (void)handle;
}

/* Plain float32 storage: 32 bits per value, no side data. */
static TP_UNUSED int tp_size_bits_f32(const void *handle, int64_t rows, int64_t cols,
                                      uint64_t *bits, char *err, size_t err_size)
{
    (void)handle;
    (void)err;
    (void)err_size;
    *bits = (uint64_t)rows * (uint64_t)cols * 32u;
    return 0;
}

/* The identity quantize: copies rows*cols values from in to out. */
static TP_UNUSED int tp_copy(const void *handle, const struct qlab_tensor_view *in, float *out,
                             int64_t out_capacity, int64_t *n_written,
                             const struct qlab_host *host, char *err, size_t err_size)
{
    (void)handle;
    (void)host;
    int64_t n = in->rows * in->cols;
    if (n > out_capacity) {
        snprintf(err, err_size, "output too small");
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = in->data[i];
    *n_written = n;
    return 0;
}

/* ---- descriptors -------------------------------------------------------- */

/* Defines tp_plugin: a plugin built for ABI `abi` that serves one scheme.
 * The arguments are named apart from the struct fields they fill. */
#define TP_DESCRIPTORS(abi, p_name, p_version, p_desc, s_name, s_desc, s_params, s_n_params, \
                       fn_configure, fn_release, fn_size_bits, fn_quantize)                 \
    static const struct qlab_scheme tp_scheme = {                                             \
        .struct_size = sizeof(struct qlab_scheme),                                            \
        .name = s_name,                                                                       \
        .description = s_desc,                                                                \
        .params = s_params,                                                                   \
        .n_params = s_n_params,                                                               \
        .configure = fn_configure,                                                            \
        .release = fn_release,                                                                \
        .size_bits = fn_size_bits,                                                            \
        .quantize = fn_quantize,                                                              \
    };                                                                                        \
    static const struct qlab_scheme *const tp_schemes[] = {&tp_scheme};                       \
    static const struct qlab_plugin tp_plugin = {                                             \
        .abi_version = abi,                                                                   \
        .struct_size = sizeof(struct qlab_plugin),                                            \
        .name = p_name,                                                                       \
        .version = p_version,                                                                 \
        .description = p_desc,                                                                \
        .schemes = tp_schemes,                                                                \
        .n_schemes = 1,                                                                       \
    }

/* A well-behaved plugin of one scheme: the descriptors for QLAB_PLUGIN_ABI and
 * the exported entry, which declines any other host ABI. Arguments as for
 * TP_DESCRIPTORS without abi. It ends with a function body, so no semicolon
 * follows it. */
#define TP_PLUGIN(...)                                                         \
    TP_DESCRIPTORS(QLAB_PLUGIN_ABI, __VA_ARGS__);                              \
    QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi) \
    {                                                                          \
        return host_abi == QLAB_PLUGIN_ABI ? &tp_plugin : NULL;                \
    }

#endif /* QLAB_TEST_PLUGIN_H */
