/* broken_null.c — test plugin whose entry declines every host ABI (returns NULL). */
#include "qlab_plugin.h"

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi);

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    (void)host_abi;
    return NULL;
}
