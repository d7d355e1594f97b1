/* workbench_eval.c — evaluation runs: classifiers over labelled samples, and the run bookkeeping both kinds share. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quant/sha256.h"
#include "workbench.h"
#include "workbench_internal.h"

/* ---- evaluation ------------------------------------------------------------- */

int wbi_load_data(struct wb *w, const char *path, const char *labels, qerr *err)
{
    size_t n = strlen(path) + (labels ? strlen(labels) : 0) + 2;
    char *key = malloc(n);
    if (!key)
        return qerr_set(err, "out of memory");
    snprintf(key, n, "%s\n%s", path, labels ? labels : "");
    if (w->data && strcmp(w->data_key, key) == 0) {
        free(key);
        return 0;
    }
    struct qdataset *d;
    if (qdataset_open(path, labels, &d, err) < 0) {
        free(key);
        return -1;
    }
    qdataset_free(w->data);
    free(w->data_key);
    w->data = d;
    w->data_key = key;
    return 0;
}

char *wbi_abspath(const char *p)
{
    char *r = p ? realpath(p, NULL) : NULL;
    return r ? r : p ? strdup(p) : NULL;
}

static void metrics_to_json(cJSON *o, const struct qclass_metrics *m, int with_ref)
{
    cJSON_AddNumberToObject(o, "top1", m->top1);
    cJSON_AddNumberToObject(o, "top5", m->top5);
    cJSON_AddNumberToObject(o, "cross_entropy", m->cross_entropy);
    if (with_ref && m->has_ref) {
        cJSON_AddNumberToObject(o, "top1_agreement", m->top1_agreement);
        cJSON_AddNumberToObject(o, "kld_mean", m->kld_mean);
        cJSON_AddNumberToObject(o, "kld_max", m->kld_max);
    }
}

static char *run_metrics_json(const struct wb_eval_outcome *o)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "n_samples", (double)o->metrics.n);
    metrics_to_json(root, &o->metrics, 1);
    cJSON *f = cJSON_AddObjectToObject(root, "float");
    metrics_to_json(f, &o->float_metrics, 0);
    /* speed is unknown when no forward pass ran (the float reference was reused) */
    if (o->seconds > 0) {
        cJSON_AddNumberToObject(root, "eval_seconds", o->seconds);
        cJSON_AddNumberToObject(root, "samples_per_second", o->samples_per_s);
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

double wbi_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int wbi_cancelled_cb(void *ctx)
{
    atomic_int *flag = ctx;
    return flag && atomic_load(flag);
}

/* The float logits of the first n samples: stored ones when there are
 * enough, else computed now and stored for every later run. */
int wbi_reference_logits(struct wb *w, int batch, int threads, const struct qprogress *p,
                         int64_t n, float **out, double *seconds, qerr *err)
{
    *seconds = 0;
    const struct qmodel *m = w->model;
    int k = m->n_classes;
    /* The stored reference covers n samples, or the whole dataset (of
     * which the first n rows serve). */
    float *stored = NULL;
    int64_t tries[2] = {n, w->data->n};
    for (int t = 0; t < 2 && !stored; t++)
        if (qstore_reference_get(w->store, w->model_sha, w->data->sha256, tries[t], k, &stored,
                                 NULL, err) < 0)
            return -1;
    if (stored) {
        *out = stored;
        return 0;
    }
    float *logits = malloc((size_t)(n ? n : 1) * (size_t)k * sizeof *logits);
    if (!logits)
        return qerr_set(err, "out of memory for %lld x %d logits", (long long)n, k);
    struct qeval_opts eo = {.batch = batch, .threads = threads};
    double t0 = wbi_now();
    int rc = qeval_logits(m, NULL, w->data, n, &eo, p, "float reference", logits, err);
    *seconds = wbi_now() - t0;
    if (rc != 0) {
        free(logits);
        return rc;
    }
    if (qstore_reference_put(w->store, w->model_sha, w->data->sha256, n, k, logits, NULL, err) <
        0) {
        free(logits);
        return -1;
    }
    *out = logits;
    return 0;
}

/* Tensor rows of a run, borrowing strings from the workbench. */
static struct qstore_tensor *tensor_rows(struct wb *w, char ***owned)
{
    const struct qmodel *m = w->model;
    int n = m->n_tensors;
    struct qstore_tensor *rows = calloc((size_t)(n ? n : 1), sizeof *rows);
    char **strs = calloc((size_t)(2 * n + 1), sizeof *strs);
    if (!rows || !strs) {
        free(rows);
        free(strs);
        return NULL;
    }
    static const char *const role_names[QROLE_COUNT] = {
        [QROLE_OTHER] = "other", [QROLE_WEIGHT] = "weight", [QROLE_BIAS] = "bias",
        [QROLE_NORM] = "norm"};
    for (int i = 0; i < n; i++) {
        const struct qtensor *t = m->tensors[i];
        const struct qtensor_q *q = &w->weights.t[i];
        const struct qpipeline *c = w->assign.config[i];
        char shape[128];
        qshape_format(t->shape, t->ndim, shape, sizeof shape);
        strs[2 * i] = strdup(shape);
        strs[2 * i + 1] = strdup(c ? c->params_json : "{}");
        rows[i] = (struct qstore_tensor){
            .name = t->name,
            .op = (char *)qmodel_tensor_op(m, i),
            .role = (char *)role_names[m->roles[i]],
            .shape = strs[2 * i],
            .numel = t->numel,
            .scheme = c ? c->name : (char *)"float",
            .plugin = c ? c->plugin : NULL,
            .params_json = strs[2 * i + 1],
            .bytes = qtensor_q_bytes(q),
            .bits_per_weight = t->numel ? (double)q->bits / (double)t->numel : 0.0,
            .has_error = q->quantized,
            .mse = q->e.mse,
            .sqnr_db = q->e.sqnr_db,
            .max_abs = q->e.max_abs,
            .cosine = q->e.cosine,
        };
    }
    *owned = strs;
    return rows;
}

static void free_strs(char **strs, int n)
{
    if (!strs)
        return;
    for (int i = 0; i < n; i++)
        free(strs[i]);
    free(strs);
}

int wbi_finish_run(struct wb *w, int64_t id, const char *status, const char *error,
                   const char *metrics_json, double elapsed, qerr *err)
{
    struct qstore_run_end e = {.status = status, .error = error, .elapsed_s = elapsed,
                               .metrics_json = metrics_json};
    char **strs = NULL;
    struct qstore_tensor *rows = NULL;
    if (w->weights_ok) {
        rows = tensor_rows(w, &strs);
        if (!rows)
            return qerr_set(err, "out of memory");
        e.n_tensors = w->model->n_tensors;
        e.tensors = rows;
        e.size_bytes = qweights_bytes(&w->weights);
        e.bits_per_weight = qweights_bits_per_weight(&w->weights);
    }
    e.float_bytes = qmodel_float_bytes(w->model);
    int rc = qstore_run_finish(w->store, id, &e, err);
    free(rows);
    free_strs(strs, 2 * w->model->n_tensors);
    return rc;
}

int wbi_upsert_model_data(struct wb *w, const struct qstore_dataset *data, int64_t *model_id,
                          int64_t *data_id, qerr *err)
{
    const struct qmodel *m = w->model;
    const char *sha;
    if (wb_model_sha256(w, &sha, err) < 0)
        return -1;
    struct qstore_model sm = {.path = w->model_abspath, .sha256 = sha, .format = m->format,
                              .name = m->name, .n_params = qmodel_n_params(m),
                              .float_bytes = qmodel_float_bytes(m)};
    if (qstore_model_upsert(w->store, &sm, model_id, err) < 0 ||
        qstore_dataset_upsert(w->store, data, data_id, err) < 0)
        return -1;
    return 0;
}

int wbi_begin_run(struct wb *w, const struct qstore_dataset *data, const char *kind, int64_t n,
                  int64_t *id, qerr *err)
{
    int64_t model_id, data_id;
    if (wbi_upsert_model_data(w, data, &model_id, &data_id, err) < 0)
        return -1;
    int rc;
    /* the plugins this recipe uses, each once */
    int64_t pids[64];
    int np = 0;
    const struct qplugin *seen[64];
    for (int i = 0; i < w->assign.n_rules; i++) {
        const struct qpipeline *pipe = w->assign.rule_config[i];
        for (int k = 0; pipe && k < pipe->n && np < 64; k++) {
            const struct qplugin *p = pipe->stage[k]->ref.plugin;
            int dup = 0;
            for (int j = 0; j < np; j++)
                dup |= seen[j] == p;
            if (dup)
                continue;
            struct qstore_plugin sp = {.name = p->desc->name, .version = p->desc->version,
                                       .path = p->path, .sha256 = p->sha256};
            if (qstore_plugin_upsert(w->store, &sp, &pids[np], err) < 0)
                return -1;
            seen[np++] = p;
        }
    }
    char *rjson = qassign_recipe_json(&w->recipe, &w->assign);
    if (!rjson)
        return qerr_set(err, "out of memory");
    uint8_t digest[32];
    char rhash[65];
    struct sha256 h;
    sha256_init(&h);
    sha256_update(&h, rjson, strlen(rjson));
    sha256_final(&h, digest);
    sha256_hex(digest, rhash);
    struct qstore_run_start rs = {.model_id = model_id, .dataset_id = data_id,
                                  .kind = kind, .recipe_text = wb_recipe_text(w),
                                  .recipe_json = rjson, .recipe_hash = rhash, .n_samples = n,
                                  .plugin_ids = pids, .n_plugins = np};
    rc = qstore_run_begin(w->store, &rs, id, err);
    free(rjson);
    return rc;
}

int wb_eval(struct wb *w, const struct wb_eval_request *r, struct wb_eval_outcome *o, qerr *err)
{
    memset(o, 0, sizeof *o);
    o->status = "failed";
    if (!w->model)
        return qerr_set(err, "no model loaded");
    if (!w->store)
        return qerr_set(err, "no database open");
    return w->model->kind == QMODEL_LM ? wbi_eval_lm(w, r, o, err)
                                       : wbi_eval_classifier(w, r, o, err);
}

int wbi_eval_classifier(struct wb *w, const struct wb_eval_request *r,
                        struct wb_eval_outcome *o, qerr *err)
{
    const struct qmodel *m = w->model;
    const char *data = r->data ? r->data : m->dataset_path;
    const char *labels = r->data ? r->labels : (r->labels ? r->labels : m->labels_path);
    if (!data)
        return qerr_set(err, "%s names no evaluation dataset: give --data FILE", m->json_path);
    const char *sha;
    if (wbi_load_data(w, data, labels, err) < 0 || qeval_check(m, w->data, err) < 0 ||
        wb_model_sha256(w, &sha, err) < 0)
        return -1;
    int64_t n = r->limit > 0 && r->limit < w->data->n ? r->limit : w->data->n;
    if (n == 0)
        return qerr_set(err, "%s: the dataset is empty", w->data->path);

    char *dpath = wbi_abspath(w->data->path), *lpath = wbi_abspath(w->data->labels_path);
    struct qstore_dataset sd = {.path = dpath, .labels_path = lpath, .sha256 = w->data->sha256,
                                .kind = w->data->kind, .n_samples = w->data->n};
    int64_t id;
    int brc = dpath ? wbi_begin_run(w, &sd, "classify", n, &id, err)
                    : qerr_set(err, "out of memory");
    free(dpath);
    free(lpath);
    if (brc < 0)
        return -1;
    o->run_id = id;
    double t0 = wbi_now();
    atomic_int *cancel = r->progress ? r->progress->cancel : NULL;
    struct qlab_host host = {.struct_size = sizeof host, .ctx = cancel, .cancelled = wbi_cancelled_cb};
    float *ref = NULL, *logits = NULL;
    int rc = 0;
    const char *status = "failed";

    if (r->progress && r->progress->fn)
        r->progress->fn(r->progress->ctx, "quantize", 0, 1);
    if (wb_refresh(w, &host, err) < 0) {
        rc = cancel && atomic_load(cancel) ? QEVAL_CANCELLED : -1;
        goto end;
    }
    double ref_seconds;
    rc = wbi_reference_logits(w, r->batch, r->threads, r->progress, n, &ref, &ref_seconds, err);
    if (rc != 0)
        goto end;
    qmetrics_classify(ref, NULL, w->data->labels, n, m->n_classes, &o->float_metrics);
    double t1 = wbi_now();
    if (w->weights.n_quantized == 0) {
        logits = ref; /* nothing quantized: the float pass is this run */
        o->seconds = ref_seconds; /* 0 when the stored reference was reused */
    } else {
        logits = malloc((size_t)n * (size_t)m->n_classes * sizeof *logits);
        if (!logits) {
            rc = qerr_set(err, "out of memory");
            goto end;
        }
        struct qeval_opts eo = {.batch = r->batch, .threads = r->threads};
        rc = qeval_logits(m, w->weights.ptrs, w->data, n, &eo, r->progress, "evaluate", logits,
                          err);
        if (rc != 0)
            goto end;
        o->seconds = wbi_now() - t1;
    }
    o->samples_per_s = o->seconds > 0 ? (double)n / o->seconds : 0;
    qmetrics_classify(logits, ref, w->data->labels, n, m->n_classes, &o->metrics);
    status = "done";
end:
    if (rc == QEVAL_CANCELLED)
        status = "cancelled";
    qerr ferr;
    char *metrics = strcmp(status, "done") == 0 ? run_metrics_json(o) : NULL;
    int frc = wbi_finish_run(w, id, status, strcmp(status, "failed") == 0 ? err->msg : NULL,
                             metrics, wbi_now() - t0, &ferr);
    free(metrics);
    if (logits != ref)
        free(logits);
    free(ref);
    o->status = status;
    if (rc < 0)
        return -1;
    if (frc < 0) {
        *err = ferr;
        return -1;
    }
    return 0;
}

