/* plugin_check.h — exercises a plugin file: descriptor, every scheme on random and edge-case tensors. */
#ifndef QLAB_PLUGIN_CHECK_H
#define QLAB_PLUGIN_CHECK_H

#include <cjson/cJSON.h>

/* Loads the plugin at path in a fresh host and runs every scheme, with its
 * default parameters, on random and edge-case tensors; each scheme runs in
 * a child process so a crash is reported instead of taken down with it.
 * Returns the report (never NULL unless out of memory):
 *   {"file", "ok", "error" (when the plugin was refused), "plugin": {...},
 *    "schemes": [{"name", "ok", "cases": [{"case", "rows", "cols",
 *      "status": "ok"|"refused"|"fail", "message", "bits_per_weight",
 *      "rel_rmse", "deterministic", "packed"}]}]}
 * A scheme fails when it errs or refuses on the well-shaped random
 * tensors, when two runs differ, when zeros do not stay zero, when a
 * refusal carries no reason, when pack and unpack disagree with quantize,
 * or when it crashes; refusing an awkward shape with a reason is fine. */
cJSON *plugin_check_file(const char *path);

#endif
