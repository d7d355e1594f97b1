/* broken_nan.c — test plugin whose quantize writes a NaN at index 5 */
#include <math.h>

#include "test_plugin.h"

static int nan_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                        int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                        char *err, size_t err_size)
{
    if (tp_copy(handle, in, out, out_capacity, n_written, host, err, err_size) != 0)
        return -1;
    int64_t n = *n_written;
    if (n > 0)
        out[n > 5 ? 5 : 0] = NAN; /* the flaw */
    return 0;
}

TP_PLUGIN("broken_nan", "0.1", "test plugin whose quantize writes a NaN at index 5",
          "nan", "test plugin whose quantize writes a NaN at index 5", NULL, 0,
          tp_configure_none, tp_release_none, tp_size_bits_f32, nan_quantize)
