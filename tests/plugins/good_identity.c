/* good_identity.c — test plugin "identity_test": a correct minimal scheme that multiplies by a gain. */
#include <stdio.h>
#include <stdlib.h>

#include "test_plugin.h"

/* ---- parameters ---------------------------------------------------------- */

static const char *const sign_choices[] = {"keep", "flip", NULL};

static const struct qlab_param identity_params[] = {
    {.name = "gain", .type = QLAB_PARAM_FLOAT, .help = "factor every value is multiplied by",
     .min = 0, .max = 10, .def = 1},
    {.name = "sign", .type = QLAB_PARAM_ENUM, .help = "keep or flip the sign",
     .def = 0, .choices = sign_choices},
};

struct identity_cfg {
    float factor; /* gain, negated when sign=flip */
};

/* ---- scheme -------------------------------------------------------------- */

static int identity_configure(const struct qlab_value *v, void **handle, char *err,
                              size_t err_size)
{
    /* A cross-check the host cannot know about, so tests can see how a
     * plugin's own configure error is reported. */
    if (v[0].f == 0) {
        snprintf(err, err_size, "gain must be non-zero");
        return -1;
    }
    struct identity_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->factor = (float)(v[1].i == 1 ? -v[0].f : v[0].f);
    *handle = c;
    return 0;
}

static void identity_release(void *handle)
{
    free(handle);
}

static int identity_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                             int64_t out_capacity, int64_t *n_written,
                             const struct qlab_host *host, char *err, size_t err_size)
{
    const struct identity_cfg *c = handle;
    int64_t n = in->rows * in->cols;
    /* The host promises a host struct even when its caller gave none. */
    if (!host || host->struct_size < sizeof *host) {
        snprintf(err, err_size, "no host services");
        return -1;
    }
    if (host->cancelled && host->cancelled(host->ctx)) {
        snprintf(err, err_size, "cancelled");
        return -1;
    }
    if (n > out_capacity) {
        snprintf(err, err_size, "output too small");
        return -1;
    }
    if (host->log)
        host->log(host->ctx, "identity: quantizing");
    for (int64_t i = 0; i < n; i++)
        out[i] = in->data[i] * c->factor;
    *n_written = n;
    return 0;
}

TP_PLUGIN("identity_test", "0.1", "a correct minimal plugin for the host tests",
          "identity", "multiplies by gain (a test scheme)", identity_params, 2,
          identity_configure, identity_release, tp_size_bits_f32, identity_quantize)
