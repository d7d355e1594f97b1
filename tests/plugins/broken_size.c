/* broken_size.c — test plugin whose quantize reports one value fewer than rows*cols */
#include <stdio.h>

#include "qlab_plugin.h"

static int cfg_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    (void)v;
    (void)err;
    (void)err_size;
    *handle = NULL; /* nothing to configure */
    return 0;
}

static void cfg_release(void *handle)
{
    (void)handle;
}

static int cfg_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                         char *err, size_t err_size)
{
    (void)handle;
    (void)err;
    (void)err_size;
    *bits = (uint64_t)rows * (uint64_t)cols * 32u;
    return 0;
}

static int cfg_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                        int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                        char *err, size_t err_size)
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
    *n_written = n - 1; /* the flaw: one value short */
    return 0;
}

static const struct qlab_scheme scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "size",
    .description = "test plugin whose quantize reports one value fewer than rows*cols",
    .params = NULL,
    .n_params = 0,
    .configure = cfg_configure,
    .release = cfg_release,
    .size_bits = cfg_size_bits,
    .quantize = cfg_quantize,
};

static const struct qlab_scheme *const schemes[] = {&scheme};

static const struct qlab_plugin plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "broken_size",
    .version = "0.1",
    .description = "test plugin whose quantize reports one value fewer than rows*cols",
    .schemes = schemes,
    .n_schemes = 1,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi);

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &plugin : NULL;
}
