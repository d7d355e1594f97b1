/* broken_desc.c — test plugin with a parameter whose default (9) lies outside its range 2..8. */
#include "test_plugin.h"

static const struct qlab_param params[] = {
    {.name = "bits", .type = QLAB_PARAM_INT, .help = "bits per weight", .min = 2, .max = 8,
     .def = 9}, /* the flaw */
};

TP_PLUGIN("broken_desc", "0.1", "test plugin with a malformed parameter description",
          "baddefault", "a scheme whose parameter default is out of range", params, 1,
          tp_configure_none, tp_release_none, tp_size_bits_f32, tp_copy)
