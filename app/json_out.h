/* json_out.h — the stable JSON schema of runs, models and plugins (documented in README.md). */
#ifndef QLAB_JSON_OUT_H
#define QLAB_JSON_OUT_H

#include <cjson/cJSON.h>

#include "workbench.h"

/* A run; tensors and plugins only when the run holds them (qstore_run_get). */
cJSON *json_run(const struct qstore_run *r);
/* The loaded model with its tensors, current schemes and sizes. */
cJSON *json_model(struct wb *w);
/* Every loaded plugin with its schemes and parameters, and refusals. */
cJSON *json_plugins(const struct qplugin_host *h);

/* A number, or null when it is not finite (JSON has no infinity). */
cJSON *json_number_or_null(double v);

#endif
