/* pipeline.c — runs a rule's schemes on a tensor: quantize, or prune then quantize the kept values. */
#include "pipeline.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuring -------------------------------------------------------- */

void qpipeline_free(struct qpipeline *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        qscheme_config_free(p->stage[i]);
    free(p->name);
    free(p->plugin);
    free(p->label);
    free(p->params_json);
    free(p->key);
    free(p);
}

const struct qscheme_config *qpipeline_main(const struct qpipeline *p)
{
    return p->stage[p->n - 1];
}

/* "a+b" of each stage's string picked by `part`. */
static char *join(const struct qpipeline *p, const char *(*part)(const struct qscheme_config *))
{
    size_t n = 1;
    for (int i = 0; i < p->n; i++)
        n += strlen(part(p->stage[i])) + 1;
    char *s = malloc(n), *o = s;
    if (!s)
        return NULL;
    *o = 0;
    for (int i = 0; i < p->n; i++)
        o += snprintf(o, n - (size_t)(o - s), "%s%s", i ? "+" : "", part(p->stage[i]));
    return s;
}

static const char *scheme_of(const struct qscheme_config *c) { return c->ref.scheme->name; }
static const char *plugin_of(const struct qscheme_config *c) { return c->ref.plugin->desc->name; }
static const char *label_of(const struct qscheme_config *c) { return c->label; }

static char *make_key(const struct qpipeline *p)
{
    size_t n = 1;
    for (int i = 0; i < p->n; i++)
        n += strlen(plugin_of(p->stage[i])) + strlen(scheme_of(p->stage[i])) +
             strlen(p->stage[i]->params_text) + 4;
    char *s = malloc(n), *o = s;
    if (!s)
        return NULL;
    *o = 0;
    for (int i = 0; i < p->n; i++)
        o += snprintf(o, n - (size_t)(o - s), "%s%s/%s:%s", i ? "+" : "", plugin_of(p->stage[i]),
                      scheme_of(p->stage[i]), p->stage[i]->params_text);
    return s;
}

static char *make_params_json(const struct qpipeline *p)
{
    if (p->n == 1)
        return strdup(p->stage[0]->params_json);
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < p->n; i++) {
        cJSON *v = cJSON_Parse(p->stage[i]->params_json);
        cJSON_AddItemToObject(o, scheme_of(p->stage[i]), v ? v : cJSON_CreateObject());
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int qpipeline_configure(const struct qplugin_host *h, const struct qrule *rule,
                        struct qpipeline **out, qerr *err)
{
    *out = NULL;
    struct qpipeline *p = calloc(1, sizeof *p);
    if (!p)
        return qerr_set(err, "out of memory");
    for (int i = 0; i < rule->n_stages; i++) {
        struct qscheme_ref ref;
        if (qhost_find_scheme(h, rule->stages[i].scheme, &ref, err) < 0 ||
            qscheme_configure(&ref, rule->stages[i].params, &p->stage[i], err) < 0)
            goto fail;
        p->n = i + 1;
        int masks = qscheme_can_mask(ref.scheme);
        if (masks && i > 0) {
            qerr_set(err, "%s prunes, so it must come first", ref.scheme->name);
            goto fail;
        }
        if (!masks && i == 0 && rule->n_stages > 1) {
            qerr_set(err, "%s does not prune, so nothing can follow it with '+' (write "
                     "prune:...+%s)", ref.scheme->name, rule->stages[1].scheme);
            goto fail;
        }
        if (masks) /* alone, the kept values stay float32 */
            p->prunes = 1;
    }
    p->name = join(p, scheme_of);
    p->plugin = join(p, plugin_of);
    p->label = join(p, label_of);
    p->params_json = make_params_json(p);
    p->key = make_key(p);
    if (!p->name || !p->plugin || !p->label || !p->params_json || !p->key) {
        qerr_set(err, "out of memory");
        goto fail;
    }
    *out = p;
    return 0;
fail:
    qpipeline_free(p);
    return -1;
}

/* ---- running ------------------------------------------------------------- */

static struct qlab_tensor_view view_of(const struct qtensor *t, const float *data, int64_t rows,
                                       int64_t cols)
{
    return (struct qlab_tensor_view){.data = data, .rows = rows, .cols = cols, .ndim = t->ndim,
                                     .shape = t->shape, .name = t->name};
}

/* A plain scheme: its own size and its own dequantized values. */
static int run_single(const struct qscheme_config *c, const struct qtensor *t, float *out,
                      int64_t out_capacity, uint64_t *bits, const struct qlab_host *host,
                      qerr *err)
{
    int64_t rows, cols;
    qtensor_matrix_shape(t, &rows, &cols);
    struct qlab_tensor_view v = view_of(t, t->f32, rows, cols);
    if (qscheme_size_bits(c, rows, cols, bits, err) < 0)
        return -1;
    if (!out)
        return 0;
    if (out_capacity < t->numel)
        return qerr_set(err, "tensor '%s': output too small", t->name);
    return out_capacity >= t->numel + QSCHEME_OUT_GUARD
               ? qscheme_quantize_into(c, &v, out, out_capacity, host, err)
               : qscheme_quantize(c, &v, out, host, err);
}

/* Prune, gather the kept values, quantize them (or keep them float32),
 * scatter back. out may be NULL when only the size is wanted. */
static int run_pruned(const struct qpipeline *p, const struct qtensor *t, float *out,
                      int64_t out_capacity, uint64_t *bits, const struct qlab_host *host,
                      qerr *err)
{
    int64_t rows, cols;
    qtensor_matrix_shape(t, &rows, &cols);
    struct qlab_tensor_view v = view_of(t, t->f32, rows, cols);
    int64_t n = rows * cols, kept = 0;
    uint8_t *keep = malloc((size_t)(n ? n : 1));
    float *packed = NULL, *deq = NULL;
    int rc = -1;
    if (out && out_capacity < n) {
        qerr_set(err, "tensor '%s': output too small", t->name);
        goto out;
    }
    if (!keep) {
        qerr_set(err, "tensor '%s': out of memory", t->name);
        goto out;
    }
    uint64_t mask_bits, value_bits;
    if (qscheme_mask(p->stage[0], &v, keep, &kept, host, err) < 0 ||
        qscheme_size_bits(p->stage[0], rows, cols, &mask_bits, err) < 0)
        goto out;
    size_t room = (size_t)(rows * kept) + QSCHEME_OUT_GUARD;
    packed = malloc(room * sizeof *packed);
    deq = malloc(room * sizeof *deq);
    if (!packed || !deq) {
        qerr_set(err, "tensor '%s': out of memory", t->name);
        goto out;
    }
    for (int64_t r = 0, k = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++)
            if (keep[r * cols + j])
                packed[k++] = t->f32[r * cols + j];
    if (p->n > 1) {
        struct qlab_tensor_view kv = view_of(t, packed, rows, kept);
        const struct qscheme_config *q = p->stage[1];
        if (qscheme_size_bits(q, rows, kept, &value_bits, err) < 0 ||
            (out && qscheme_quantize_into(q, &kv, deq, (int64_t)room, host, err) < 0)) {
            qerr_prefix(err, "after pruning to %lld of %lld values per row", (long long)kept,
                        (long long)cols);
            goto out;
        }
    } else {
        value_bits = (uint64_t)(rows * kept) * 32u;
        memcpy(deq, packed, (size_t)(rows * kept) * sizeof *deq);
    }
    *bits = mask_bits + value_bits;
    if (out)
        for (int64_t r = 0, k = 0; r < rows; r++)
            for (int64_t j = 0; j < cols; j++)
                out[r * cols + j] = keep[r * cols + j] ? deq[k++] : 0.0f;
    rc = 0;
out:
    free(keep);
    free(packed);
    free(deq);
    return rc;
}

int qpipeline_run(const struct qpipeline *p, const struct qtensor *t, float *out,
                  int64_t out_capacity, uint64_t *bits, const struct qlab_host *host, qerr *err)
{
    return p->prunes ? run_pruned(p, t, out, out_capacity, bits, host, err)
                     : run_single(p->stage[0], t, out, out_capacity, bits, host, err);
}

int qpipeline_size_bits(const struct qpipeline *p, const struct qtensor *t,
                        const struct qlab_host *host, uint64_t *bits, qerr *err)
{
    return qpipeline_run(p, t, NULL, 0, bits, host, err);
}
