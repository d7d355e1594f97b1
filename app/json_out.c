/* json_out.c — builds the JSON that --json prints: runs, models, plugins. */
#include "json_out.h"

#include "quant/llm.h"
#include "quant/tokenizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

cJSON *json_number_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *string_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* Parsed JSON text, or null when absent or unparsable. */
static cJSON *parsed_or_null(const char *text)
{
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    return j ? j : cJSON_CreateNull();
}

/* "[32, 1, 5, 5]" -> [32, 1, 5, 5] */
static cJSON *shape_array(const char *shape)
{
    cJSON *j = shape ? cJSON_Parse(shape) : NULL;
    return cJSON_IsArray(j) ? j : (cJSON_Delete(j), cJSON_CreateArray());
}

static cJSON *json_tensor_row(const struct qstore_tensor *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddItemToObject(o, "op", string_or_null(t->op));
    cJSON_AddItemToObject(o, "role", string_or_null(t->role));
    cJSON_AddItemToObject(o, "shape", shape_array(t->shape));
    cJSON_AddNumberToObject(o, "numel", (double)t->numel);
    cJSON_AddItemToObject(o, "scheme", string_or_null(t->scheme));
    cJSON_AddItemToObject(o, "plugin", string_or_null(t->plugin));
    cJSON *p = parsed_or_null(t->params_json);
    cJSON_AddItemToObject(o, "params", cJSON_IsNull(p) ? (cJSON_Delete(p), cJSON_CreateObject()) : p);
    cJSON_AddNumberToObject(o, "bytes", (double)t->bytes);
    cJSON_AddNumberToObject(o, "bits_per_weight", t->bits_per_weight);
    if (t->has_error) {
        cJSON_AddNumberToObject(o, "mse", t->mse);
        cJSON_AddItemToObject(o, "sqnr_db", json_number_or_null(t->sqnr_db));
        cJSON_AddNumberToObject(o, "max_abs_error", t->max_abs);
        cJSON_AddNumberToObject(o, "cosine", t->cosine);
    } else {
        cJSON_AddNullToObject(o, "mse");
        cJSON_AddNullToObject(o, "sqnr_db");
        cJSON_AddNullToObject(o, "max_abs_error");
        cJSON_AddNullToObject(o, "cosine");
    }
    return o;
}

cJSON *json_run(const struct qstore_run *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)r->id);
    cJSON_AddStringToObject(o, "status", r->status);
    cJSON_AddItemToObject(o, "kind", string_or_null(r->kind));
    cJSON *m = cJSON_AddObjectToObject(o, "model");
    cJSON_AddItemToObject(m, "name", string_or_null(r->model_name));
    cJSON_AddItemToObject(m, "path", string_or_null(r->model_path));
    cJSON_AddItemToObject(m, "sha256", string_or_null(r->model_sha256));
    cJSON_AddItemToObject(m, "format", string_or_null(r->model_format));
    cJSON *d = cJSON_AddObjectToObject(o, "dataset");
    cJSON_AddItemToObject(d, "path", string_or_null(r->dataset_path));
    cJSON_AddItemToObject(d, "labels_path", string_or_null(r->dataset_labels_path));
    cJSON_AddItemToObject(d, "sha256", string_or_null(r->dataset_sha256));
    cJSON_AddItemToObject(o, "recipe", string_or_null(r->recipe_text));
    cJSON *rules = parsed_or_null(r->recipe_json);
    cJSON *rule_list = cJSON_DetachItemFromObjectCaseSensitive(rules, "rules");
    cJSON_Delete(rules);
    cJSON_AddItemToObject(o, "recipe_rules", rule_list ? rule_list : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "recipe_hash", string_or_null(r->recipe_hash));
    cJSON_AddItemToObject(o, "started_at", string_or_null(r->started_at));
    cJSON_AddItemToObject(o, "finished_at", string_or_null(r->finished_at));
    cJSON_AddNumberToObject(o, "elapsed_s", r->elapsed_s);
    cJSON_AddNumberToObject(o, "n_samples", (double)r->n_samples);
    int sized = r->size_bytes > 0;
    cJSON_AddItemToObject(o, "size_bytes", sized ? cJSON_CreateNumber((double)r->size_bytes)
                                                 : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "float_bytes", (double)r->float_bytes);
    cJSON_AddItemToObject(o, "bits_per_weight",
                          sized ? cJSON_CreateNumber(r->bits_per_weight) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "ratio",
                          sized && r->float_bytes
                              ? cJSON_CreateNumber((double)r->size_bytes / (double)r->float_bytes)
                              : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "metrics", parsed_or_null(r->metrics_json));
    cJSON_AddItemToObject(o, "error", string_or_null(r->error));
    if (r->n_plugins) {
        cJSON *ps = cJSON_AddArrayToObject(o, "plugins");
        for (int i = 0; i < r->n_plugins; i++) {
            cJSON *p = cJSON_CreateObject();
            cJSON_AddItemToObject(p, "name", string_or_null(r->plugins[i].name));
            cJSON_AddItemToObject(p, "version", string_or_null(r->plugins[i].version));
            cJSON_AddItemToObject(p, "path", string_or_null(r->plugins[i].path));
            cJSON_AddItemToObject(p, "sha256", string_or_null(r->plugins[i].sha256));
            cJSON_AddItemToArray(ps, p);
        }
    }
    if (r->n_tensors) {
        cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
        for (int i = 0; i < r->n_tensors; i++)
            cJSON_AddItemToArray(ts, json_tensor_row(&r->tensors[i]));
    }
    return o;
}

cJSON *json_model(struct wb *w)
{
    const struct qmodel *m = wb_model(w);
    const struct qweights *qw = wb_weights(w);
    struct wb_summary s;
    wb_summary(w, &s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "path", wb_model_abspath(w));
    cJSON_AddStringToObject(o, "format", m->format);
    cJSON_AddStringToObject(o, "description", m->description);
    const char *sha;
    qerr err;
    if (wb_model_sha256(w, &sha, &err) == 0)
        cJSON_AddStringToObject(o, "sha256", sha);
    cJSON *in = cJSON_AddArrayToObject(o, "input_shape");
    for (int i = 0; i < m->in_ndim; i++)
        cJSON_AddItemToArray(in, cJSON_CreateNumber((double)m->in_shape[i]));
    cJSON_AddStringToObject(o, "kind", m->kind == QMODEL_LM ? "lm" : "classifier");
    if (m->kind == QMODEL_LM) {
        const struct qllm_config *k = &m->llm->c;
        cJSON *c = cJSON_AddObjectToObject(o, "llm");
        cJSON_AddStringToObject(c, "arch", k->arch == QLLM_QWEN2 ? "qwen2" : "llama");
        cJSON_AddNumberToObject(c, "dim", k->dim);
        cJSON_AddNumberToObject(c, "hidden_dim", k->hidden_dim);
        cJSON_AddNumberToObject(c, "n_layers", k->n_layers);
        cJSON_AddNumberToObject(c, "n_heads", k->n_heads);
        cJSON_AddNumberToObject(c, "n_kv_heads", k->n_kv_heads);
        cJSON_AddNumberToObject(c, "head_dim", k->head_dim);
        cJSON_AddNumberToObject(c, "vocab_size", k->vocab_size);
        cJSON_AddNumberToObject(c, "context_length", k->max_ctx);
        cJSON_AddNumberToObject(c, "rope_theta", k->rope_theta);
        cJSON_AddStringToObject(c, "rope", k->rope == QLLM_ROPE_HALF ? "half" : "interleaved");
        cJSON_AddNumberToObject(c, "norm_eps", k->norm_eps);
        cJSON_AddBoolToObject(c, "tied_output", m->llm->output == m->llm->token_embd);
        cJSON_AddItemToObject(c, "tokenizer",
                              !m->llm->tok ? cJSON_CreateNull()
                              : cJSON_CreateString(qtok_kind(m->llm->tok) == QTOK_SPM ? "spm"
                                                                                   : "bpe"));
    }
    cJSON_AddNumberToObject(o, "n_classes", m->n_classes);
    cJSON_AddItemToObject(o, "dataset", string_or_null(m->dataset_path));
    cJSON_AddNumberToObject(o, "n_params", (double)s.n_params);
    cJSON_AddNumberToObject(o, "float_bytes", (double)s.float_bytes);
    cJSON_AddStringToObject(o, "recipe", wb_recipe_text(w));
    cJSON_AddNumberToObject(o, "size_bytes", (double)s.bytes);
    cJSON_AddNumberToObject(o, "bits_per_weight", s.bits_per_weight);
    cJSON_AddNumberToObject(o, "ratio", s.ratio);
    cJSON *nodes = cJSON_AddArrayToObject(o, "graph");
    for (int i = 0; i < m->n_nodes; i++) {
        cJSON *n = cJSON_CreateObject();
        cJSON_AddStringToObject(n, "name", m->nodes[i].name);
        cJSON_AddStringToObject(n, "op", qop_name(m->nodes[i].op));
        cJSON *sh = cJSON_AddArrayToObject(n, "output_shape");
        for (int d = 0; d < m->nodes[i].out_ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)m->nodes[i].out_shape[d]));
        cJSON_AddItemToArray(nodes, n);
    }
    static const char *const roles[QROLE_COUNT] = {
        [QROLE_OTHER] = "other", [QROLE_WEIGHT] = "weight", [QROLE_BIAS] = "bias",
        [QROLE_NORM] = "norm"};
    const struct qassign *a = wb_assign(w);
    cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
    for (int i = 0; i < m->n_tensors; i++) {
        const struct qtensor *t = m->tensors[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", t->name);
        cJSON_AddStringToObject(j, "op", qmodel_tensor_op(m, i));
        if (m->kind == QMODEL_LM) {
            cJSON_AddItemToObject(j, "source_name",
                                  string_or_null(m->source_names ? m->source_names[i] : NULL));
            cJSON_AddItemToObject(j, "stored_type",
                                  string_or_null(m->stored_types ? m->stored_types[i] : NULL));
        } else {
            cJSON_AddStringToObject(j, "node", m->nodes[m->tensor_node[i]].name);
        }
        cJSON_AddStringToObject(j, "role", roles[m->roles[i]]);
        cJSON_AddStringToObject(j, "dtype", qdtype_info(t->dtype)->name);
        cJSON *sh = cJSON_AddArrayToObject(j, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddNumberToObject(j, "numel", (double)t->numel);
        const struct qpipeline *c = a ? a->config[i] : NULL;
        cJSON_AddStringToObject(j, "scheme", c ? c->name : "float");
        cJSON_AddItemToObject(j, "plugin", string_or_null(c ? c->plugin : NULL));
        cJSON *p = c ? cJSON_Parse(c->params_json) : NULL;
        cJSON_AddItemToObject(j, "params", p ? p : cJSON_CreateObject());
        if (qw) {
            const struct qtensor_q *q = &qw->t[i];
            cJSON_AddNumberToObject(j, "bytes", (double)qtensor_q_bytes(q));
            cJSON_AddNumberToObject(j, "bits_per_weight",
                                    t->numel ? (double)q->bits / (double)t->numel : 0);
            if (q->quantized) {
                cJSON_AddNumberToObject(j, "mse", q->e.mse);
                cJSON_AddItemToObject(j, "sqnr_db", json_number_or_null(q->e.sqnr_db));
                cJSON_AddNumberToObject(j, "max_abs_error", q->e.max_abs);
                cJSON_AddNumberToObject(j, "cosine", q->e.cosine);
            }
        }
        cJSON_AddItemToArray(ts, j);
    }
    return o;
}

static const char *const param_types[QLAB_PARAM_TYPE_COUNT] = {
    [QLAB_PARAM_INT] = "int", [QLAB_PARAM_FLOAT] = "float", [QLAB_PARAM_BOOL] = "bool",
    [QLAB_PARAM_ENUM] = "enum"};

cJSON *json_plugins(const struct qplugin_host *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, "plugins");
    for (int i = 0; i < h->n_plugins; i++) {
        const struct qplugin *p = h->plugins[i];
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddStringToObject(pj, "name", p->desc->name);
        cJSON_AddStringToObject(pj, "version", p->desc->version);
        cJSON_AddStringToObject(pj, "description", p->desc->description);
        cJSON_AddStringToObject(pj, "path", p->path);
        cJSON_AddStringToObject(pj, "sha256", p->sha256);
        cJSON_AddNumberToObject(pj, "abi", p->desc->abi_version);
        cJSON *schemes = cJSON_AddArrayToObject(pj, "schemes");
        for (uint32_t s = 0; s < p->desc->n_schemes; s++) {
            const struct qlab_scheme *sc = p->desc->schemes[s];
            cJSON *sj = cJSON_CreateObject();
            cJSON_AddStringToObject(sj, "name", sc->name);
            cJSON_AddStringToObject(sj, "description", sc->description);
            cJSON *params = cJSON_AddArrayToObject(sj, "params");
            for (uint32_t k = 0; k < sc->n_params; k++) {
                const struct qlab_param *pp = &sc->params[k];
                cJSON *q = cJSON_CreateObject();
                cJSON_AddStringToObject(q, "name", pp->name);
                cJSON_AddStringToObject(q, "type", param_types[pp->type]);
                cJSON_AddStringToObject(q, "help", pp->help);
                char def[128];
                struct qlab_value v = {.i = (int64_t)pp->def, .f = pp->def};
                qparam_format_value(pp, &v, def, sizeof def);
                cJSON_AddStringToObject(q, "default", def);
                if (pp->type == QLAB_PARAM_INT || pp->type == QLAB_PARAM_FLOAT) {
                    cJSON_AddNumberToObject(q, "min", pp->min);
                    cJSON_AddNumberToObject(q, "max", pp->max);
                }
                if (pp->type == QLAB_PARAM_ENUM) {
                    cJSON *ch = cJSON_AddArrayToObject(q, "choices");
                    for (const char *const *c = pp->choices; *c; c++)
                        cJSON_AddItemToArray(ch, cJSON_CreateString(*c));
                }
                cJSON_AddItemToArray(params, q);
            }
            cJSON_AddItemToArray(schemes, sj);
        }
        cJSON_AddItemToArray(list, pj);
    }
    cJSON *refused = cJSON_AddArrayToObject(o, "refused");
    for (int i = 0; i < h->n_refused; i++)
        cJSON_AddItemToArray(refused, cJSON_CreateString(h->refused[i]));
    return o;
}
