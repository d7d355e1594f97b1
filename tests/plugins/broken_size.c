/* broken_size.c — test plugin whose quantize reports one value fewer than rows*cols */
#include "test_plugin.h"

static int size_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                         int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                         char *err, size_t err_size)
{
    if (tp_copy(handle, in, out, out_capacity, n_written, host, err, err_size) != 0)
        return -1;
    *n_written -= 1; /* the flaw: one value short */
    return 0;
}

TP_PLUGIN("broken_size", "0.1", "test plugin whose quantize reports one value fewer than rows*cols",
          "size", "test plugin whose quantize reports one value fewer than rows*cols", NULL, 0,
          tp_configure_none, tp_release_none, tp_size_bits_f32, size_quantize)
