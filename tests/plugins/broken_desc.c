/* broken_desc.c — test plugin with a parameter whose default (9) lies outside its range 2..8. */
#include <stdio.h>

#include "qlab_plugin.h"

static const struct qlab_param params[] = {
    {.name = "bits", .type = QLAB_PARAM_INT, .help = "bits per weight", .min = 2, .max = 8,
     .def = 9}, /* the flaw */
};

static int d_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    (void)v;
    (void)err;
    (void)err_size;
    *handle = NULL;
    return 0;
}

static void d_release(void *handle)
{
    (void)handle;
}

static int d_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                       char *err, size_t err_size)
{
    (void)handle;
    (void)err;
    (void)err_size;
    *bits = (uint64_t)rows * (uint64_t)cols * 32u;
    return 0;
}

static int d_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
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
    *n_written = n;
    return 0;
}

static const struct qlab_scheme scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "baddefault",
    .description = "a scheme whose parameter default is out of range",
    .params = params,
    .n_params = 1,
    .configure = d_configure,
    .release = d_release,
    .size_bits = d_size_bits,
    .quantize = d_quantize,
};

static const struct qlab_scheme *const schemes[] = {&scheme};

static const struct qlab_plugin plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "broken_desc",
    .version = "0.1",
    .description = "test plugin with a malformed parameter description",
    .schemes = schemes,
    .n_schemes = 1,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi);

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &plugin : NULL;
}
