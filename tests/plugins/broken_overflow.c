/* broken_overflow.c — test plugin whose quantize writes 4 floats past the end of its output */
#include "test_plugin.h"

static int overflow_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                             int64_t out_capacity, int64_t *n_written,
                             const struct qlab_host *host, char *err, size_t err_size)
{
    if (tp_copy(handle, in, out, out_capacity, n_written, host, err, err_size) != 0)
        return -1;
    /* The flaw: 4 floats past out_capacity. Deliberate; the host gives
     * plugins an over-allocated private buffer, so this hits its guard. */
    for (int64_t i = 0; i < 4; i++)
        out[out_capacity + i] = 1.0f;
    return 0;
}

TP_PLUGIN("broken_overflow", "0.1",
          "test plugin whose quantize writes 4 floats past the end of its output",
          "overflow", "test plugin whose quantize writes 4 floats past the end of its output",
          NULL, 0, tp_configure_none, tp_release_none, tp_size_bits_f32, overflow_quantize)
