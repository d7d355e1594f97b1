/* assign.c — turns recipe rules into configured schemes per tensor. */
#include "assign.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qassign_clear(struct qassign *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->n_rules; i++)
        qpipeline_free(a->rule_config[i]);
    free(a->rule_config);
    free(a->config);
    free(a->rule);
    memset(a, 0, sizeof *a);
}

static int rule_error(const struct qrecipe *r, int i, qerr *err)
{
    char *text = qrule_text(&r->rules[i]);
    qerr_prefix(err, "rule %d '%s'", i + 1, text ? text : "?");
    free(text);
    return -1;
}

int qassign_resolve(const struct qrecipe *r, const struct qmodel *m,
                    const struct qplugin_host *h, struct qassign *a, qerr *err)
{
    memset(a, 0, sizeof *a);
    a->n_tensors = m->n_tensors;
    a->n_rules = r->n;
    a->rule = malloc((size_t)(m->n_tensors ? m->n_tensors : 1) * sizeof *a->rule);
    a->config = calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof *a->config);
    a->rule_config = calloc((size_t)(r->n ? r->n : 1), sizeof *a->rule_config);
    if (!a->rule || !a->config || !a->rule_config) {
        qassign_clear(a);
        return qerr_set(err, "out of memory");
    }
    for (int i = 0; i < r->n; i++) {
        const struct qrule *rule = &r->rules[i];
        if (qrule_is_float(rule))
            continue;
        if (qpipeline_configure(h, rule, &a->rule_config[i], err) < 0) {
            rule_error(r, i, err);
            qassign_clear(a);
            return -1;
        }
    }
    int *used = calloc((size_t)(r->n ? r->n : 1), sizeof *used);
    if (!used) {
        qassign_clear(a);
        return qerr_set(err, "out of memory");
    }
    for (int t = 0; t < m->n_tensors; t++) {
        int k = qrecipe_match(r, m->tensors[t]->name, m->roles[t]);
        a->rule[t] = k;
        a->config[t] = k >= 0 ? a->rule_config[k] : NULL;
        /* A rule counts as used if it selects a tensor, even when a later
         * rule overrides it: only patterns that select nothing are typos. */
        for (int i = 0; i < r->n; i++)
            if (!used[i] && qrule_applies(&r->rules[i], m->tensors[t]->name, m->roles[t]))
                used[i] = 1;
    }
    for (int i = 0; i < r->n; i++)
        if (!used[i]) {
            qerr_set(err, "selects no tensor of %s (see qlab info for the names; biases and "
                     "norm tensors need their name spelled out, like *.bias)", m->name);
            rule_error(r, i, err);
            free(used);
            qassign_clear(a);
            return -1;
        }
    free(used);
    return 0;
}

char *qassign_recipe_json(const struct qrecipe *r, const struct qassign *a)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *rules = cJSON_AddArrayToObject(root, "rules");
    for (int i = 0; i < r->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "glob", r->rules[i].glob);
        const struct qpipeline *c = i < a->n_rules ? a->rule_config[i] : NULL;
        if (c) {
            cJSON_AddStringToObject(o, "scheme", c->name);
            cJSON_AddStringToObject(o, "plugin", c->plugin);
            cJSON *p = cJSON_Parse(c->params_json);
            cJSON_AddItemToObject(o, "params", p ? p : cJSON_CreateObject());
        } else {
            cJSON_AddStringToObject(o, "scheme", "float");
            cJSON_AddNullToObject(o, "plugin");
            cJSON_AddItemToObject(o, "params", cJSON_CreateObject());
        }
        cJSON_AddItemToArray(rules, o);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}
