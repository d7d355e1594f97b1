/* slow_sleep.c — test plugin "slow_test": an identity scheme that takes its time, so tests can kill or cancel a run mid-way. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "qlab_plugin.h"

static const struct qlab_param slow_params[] = {
    {.name = "ms", .type = QLAB_PARAM_INT, .help = "milliseconds to spend on each tensor",
     .min = 0, .max = 60000, .def = 200},
};

static int slow_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    int64_t *ms = malloc(sizeof *ms);
    if (!ms) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    *ms = v[0].i;
    *handle = ms;
    return 0;
}

static void slow_release(void *handle)
{
    free(handle);
}

static int slow_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                          char *err, size_t err_size)
{
    (void)handle;
    (void)err;
    (void)err_size;
    *bits = (uint64_t)rows * (uint64_t)cols * 32u;
    return 0;
}

static int slow_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                         int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                         char *err, size_t err_size)
{
    int64_t ms = *(const int64_t *)handle, n = in->rows * in->cols;
    for (int64_t t = 0; t < ms; t += 10) {
        if (host && host->cancelled && host->cancelled(host->ctx)) {
            snprintf(err, err_size, "cancelled");
            return -1;
        }
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    if (n > out_capacity) {
        snprintf(err, err_size, "output too small");
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = in->data[i];
    *n_written = n;
    return 0;
}

static const struct qlab_scheme slow_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "slow",
    .description = "identity after a configurable delay (tests only)",
    .params = slow_params,
    .n_params = 1,
    .configure = slow_configure,
    .release = slow_release,
    .size_bits = slow_size_bits,
    .quantize = slow_quantize,
};

static const struct qlab_scheme *const slow_schemes[] = {&slow_scheme};

static const struct qlab_plugin slow_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "slow_test",
    .version = "1.0",
    .description = "a deliberately slow identity scheme for kill and cancel tests",
    .schemes = slow_schemes,
    .n_schemes = 1,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &slow_plugin : NULL;
}
