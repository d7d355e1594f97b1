/* slow_sleep.c — test plugin "slow_test": an identity scheme that takes its time, so tests can kill or cancel a run mid-way. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "test_plugin.h"

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

static int slow_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                         int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                         char *err, size_t err_size)
{
    int64_t ms = *(const int64_t *)handle;
    for (int64_t t = 0; t < ms; t += 10) {
        if (host && host->cancelled && host->cancelled(host->ctx)) {
            snprintf(err, err_size, "cancelled");
            return -1;
        }
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
    return tp_copy(handle, in, out, out_capacity, n_written, host, err, err_size);
}

TP_PLUGIN("slow_test", "1.0", "a deliberately slow identity scheme for kill and cancel tests",
          "slow", "identity after a configurable delay (tests only)", slow_params, 1,
          slow_configure, slow_release, tp_size_bits_f32, slow_quantize)
