/* broken_nosymbol.c — test plugin that is a valid shared object but exports no qlab_plugin_entry. */
#include "qlab_plugin.h"

/* Hidden by -fvisibility=hidden and misnamed besides: the host finds no entry. */
int qlab_plugin_entry_misspelled(uint32_t host_abi);

int qlab_plugin_entry_misspelled(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI;
}
