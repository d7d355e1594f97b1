/* assign.h — resolves a recipe against a model and the loaded plugins: every tensor's scheme. */
#ifndef QLAB_ASSIGN_H
#define QLAB_ASSIGN_H

#include "error.h"
#include "model.h"
#include "pipeline.h"
#include "plugin_host.h"
#include "recipe.h"

struct qassign {
    int n_tensors;
    int *rule;                            /* per tensor: deciding rule, -1 = float by default */
    struct qpipeline **config;            /* per tensor, borrowed from rule_config; NULL = float */
    int n_rules;
    struct qpipeline **rule_config;       /* per rule; NULL for float rules */
};

/* Configures every rule's scheme once and picks each tensor's rule (the
 * last that applies). Errors name the rule: unknown scheme, bad
 * parameters, or a rule that selects no tensor of the model. */
int qassign_resolve(const struct qrecipe *r, const struct qmodel *m,
                    const struct qplugin_host *h, struct qassign *a, qerr *err);
void qassign_clear(struct qassign *a);

/* The resolved recipe as JSON text (malloc'd):
 * {"rules":[{"glob":"*","scheme":"int","plugin":"int","params":{...}}]} —
 * (for prune+int: "scheme":"prune+int", "params":{"prune":{...},"int":{...}})
 * every parameter spelled out, so the hash identifies what was run. */
char *qassign_recipe_json(const struct qrecipe *r, const struct qassign *a);

#endif
