/* broken_abi.c — test plugin built for ABI 99, which the host must refuse */
#include "test_plugin.h"

TP_DESCRIPTORS(99, "broken_abi", "0.1", "test plugin built for ABI 99, which the host must refuse",
               "copy", "test plugin built for ABI 99, which the host must refuse", NULL, 0,
               tp_configure_none, tp_release_none, tp_size_bits_f32, tp_copy);

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    (void)host_abi; /* answers every host, as a careless plugin would */
    return &tp_plugin;
}
