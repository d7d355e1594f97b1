/* workbench.c — the application API: model, recipe, quantized weights, evaluation runs, history. */
#include "workbench.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "paths.h"
#include "quant/fsutil.h"
#include "quant/sha256.h"

#define DEQ_CACHE_BYTES ((size_t)1 << 30) /* dequantized tensors kept per model */

struct wb {
    char *db_path;
    struct qstore *store;
    struct qplugin_host *host;

    struct qmodel *model;
    char *model_abspath;
    char model_sha[65];
    struct qdeq_cache *cache;

    struct qrecipe recipe;
    char *recipe_text;
    struct qassign assign;
    int assign_ok;
    struct qweights weights;
    int weights_ok;
    char **labels;             /* per tensor scheme label */

    struct qdataset *data;     /* last evaluation data, kept for the next run */
    char *data_key;            /* path + labels it was loaded from */
};

/* ---- lifecycle ------------------------------------------------------------ */

static int load_plugins(struct wb *w, const struct wb_options *o, qerr *err)
{
    for (int i = 0; i < o->n_plugin_files; i++)
        if (qhost_load(w->host, o->plugin_files[i], err) < 0)
            return -1;
    const char *dirs[32];
    int n = qlab_plugin_dirs(dirs, 32);
    for (int i = 0; i < n; i++)
        qhost_discover(w->host, dirs[i]);
    return 0;
}

int wb_open(const struct wb_options *o, struct wb **out, qerr *err)
{
    *out = NULL;
    struct wb *w = calloc(1, sizeof *w);
    if (!w || !(w->host = qhost_new())) {
        free(w);
        return qerr_set(err, "out of memory");
    }
    if (load_plugins(w, o, err) < 0)
        goto fail;
    if (!o->no_store) {
        char def[PATH_MAX];
        const char *path = o->db_path;
        if (!path) {
            if (qlab_default_db(def, sizeof def) < 0) {
                qerr_set(err, "cannot find a place for the database: set HOME or XDG_DATA_HOME, "
                         "or give --db FILE");
                goto fail;
            }
            path = def;
        }
        w->db_path = strdup(path);
        char *dir = qpath_dirname(path);
        int rc = dir ? qmkdir_p(dir, err) : qerr_set(err, "out of memory");
        free(dir);
        if (!w->db_path || rc < 0 || qstore_open(w->db_path, &w->store, err) < 0)
            goto fail;
    }
    *out = w;
    return 0;
fail:
    wb_close(w);
    return -1;
}

static void drop_weights(struct wb *w)
{
    qweights_clear(&w->weights);
    w->weights_ok = 0;
}

static void drop_assign(struct wb *w)
{
    drop_weights(w);
    if (w->labels && w->model)
        for (int i = 0; i < w->model->n_tensors; i++)
            free(w->labels[i]);
    free(w->labels);
    w->labels = NULL;
    qassign_clear(&w->assign);
    w->assign_ok = 0;
}

static void drop_model(struct wb *w)
{
    drop_assign(w);
    qrecipe_clear(&w->recipe);
    free(w->recipe_text);
    w->recipe_text = NULL;
    qdeq_cache_free(w->cache);
    w->cache = NULL;
    qmodel_free(w->model);
    w->model = NULL;
    free(w->model_abspath);
    w->model_abspath = NULL;
    w->model_sha[0] = 0;
}

void wb_close(struct wb *w)
{
    if (!w)
        return;
    drop_model(w);
    qdataset_free(w->data);
    free(w->data_key);
    qstore_close(w->store);
    qhost_free(w->host);
    free(w->db_path);
    free(w);
}

const struct qplugin_host *wb_plugins(const struct wb *w) { return w->host; }
struct qstore *wb_store(struct wb *w) { return w->store; }
const char *wb_db_path(const struct wb *w) { return w->db_path; }
const struct qmodel *wb_model(const struct wb *w) { return w->model; }
const char *wb_model_abspath(const struct wb *w) { return w->model_abspath; }
const char *wb_recipe_text(const struct wb *w) { return w->recipe_text ? w->recipe_text : ""; }
const struct qrecipe *wb_recipe(const struct wb *w) { return &w->recipe; }
const struct qassign *wb_assign(const struct wb *w) { return w->assign_ok ? &w->assign : NULL; }
const struct qweights *wb_weights(const struct wb *w) { return w->weights_ok ? &w->weights : NULL; }

/* ---- the recipe ------------------------------------------------------------- */

/* Resolves r against the model; on success it becomes the workbench's. */
static int adopt_recipe(struct wb *w, struct qrecipe *r, qerr *err)
{
    struct qassign a;
    if (qassign_resolve(r, w->model, w->host, &a, err) < 0)
        return -1;
    char *text = qrecipe_text(r);
    char **labels = calloc((size_t)(w->model->n_tensors ? w->model->n_tensors : 1), sizeof *labels);
    if (!text || !labels) {
        free(text);
        free(labels);
        qassign_clear(&a);
        return qerr_set(err, "out of memory");
    }
    for (int i = 0; i < w->model->n_tensors; i++)
        labels[i] = strdup(a.config[i] ? a.config[i]->label : "float");
    drop_assign(w);
    qrecipe_clear(&w->recipe);
    w->recipe = *r;
    memset(r, 0, sizeof *r);
    free(w->recipe_text);
    w->recipe_text = text;
    w->assign = a;
    w->assign_ok = 1;
    w->labels = labels;
    return 0;
}

int wb_set_recipe(struct wb *w, const char *text, qerr *err)
{
    if (!w->model)
        return qerr_set(err, "no model loaded");
    struct qrecipe r;
    if (qrecipe_parse(text, &r, err) < 0)
        return -1;
    int rc = adopt_recipe(w, &r, err);
    qrecipe_clear(&r);
    return rc;
}

int wb_apply_rule(struct wb *w, const char *glob, const char *scheme, const char *params,
                  qerr *err)
{
    if (!w->model)
        return qerr_set(err, "no model loaded");
    struct qrecipe r;
    if (qrecipe_copy(&w->recipe, &r, err) < 0)
        return -1;
    for (int i = r.n - 1; i >= 0; i--)
        if (strcmp(r.rules[i].glob, glob) == 0)
            qrecipe_remove(&r, i);
    int rc = qrecipe_add(&r, glob, scheme, params, err);
    if (rc == 0)
        rc = adopt_recipe(w, &r, err);
    qrecipe_clear(&r);
    return rc;
}

int wb_apply_tensor(struct wb *w, int tensor, const char *scheme, const char *params, qerr *err)
{
    if (!w->model || tensor < 0 || tensor >= w->model->n_tensors)
        return qerr_set(err, "no such tensor");
    char *glob = qglob_escape(w->model->tensors[tensor]->name);
    if (!glob)
        return qerr_set(err, "out of memory");
    int rc = wb_apply_rule(w, glob, scheme, params, err);
    free(glob);
    return rc;
}

const char *wb_tensor_scheme_label(const struct wb *w, int tensor)
{
    if (!w->labels || tensor < 0 || !w->model || tensor >= w->model->n_tensors)
        return "float";
    return w->labels[tensor];
}

int wb_scheme_bits_per_weight(const struct wb *w, int tensor, const struct qscheme_ref *ref,
                              const char *params, double *bpw, qerr *err)
{
    if (!w->model || tensor < 0 || tensor >= w->model->n_tensors)
        return qerr_set(err, "no such tensor");
    const struct qtensor *t = w->model->tensors[tensor];
    struct qscheme_config *c;
    if (qscheme_configure(ref, params, &c, err) < 0)
        return -1;
    int64_t rows, cols;
    qtensor_matrix_shape(t, &rows, &cols);
    uint64_t bits = 0;
    int rc = qscheme_size_bits(c, rows, cols, &bits, err);
    qscheme_config_free(c);
    if (rc < 0)
        return -1;
    *bpw = t->numel > 0 ? (double)bits / (double)t->numel : 0.0;
    return 0;
}

/* ---- the model -------------------------------------------------------------- */

int wb_load_model(struct wb *w, const char *path, qerr *err)
{
    struct qmodel *m;
    if (qmodel_open(path, &m, err) < 0)
        return -1;
    drop_model(w);
    w->model = m;
    w->model_abspath = realpath(path, NULL);
    if (!w->model_abspath)
        w->model_abspath = strdup(path);
    w->cache = qdeq_cache_new(DEQ_CACHE_BYTES);
    struct qrecipe empty = {0};
    if (!w->model_abspath || !w->cache || adopt_recipe(w, &empty, err) < 0) {
        drop_model(w);
        return qerr_set(err, "%s: out of memory", path);
    }
    return 0;
}

int wb_model_sha256(struct wb *w, const char **hex, qerr *err)
{
    if (!w->model)
        return qerr_set(err, "no model loaded");
    if (!w->model_sha[0] && qmodel_sha256(w->model, w->model_sha, err) < 0)
        return -1;
    *hex = w->model_sha;
    return 0;
}

int wb_refresh(struct wb *w, const struct qlab_host *host, qerr *err)
{
    if (!w->model || !w->assign_ok)
        return qerr_set(err, "no model loaded");
    if (w->weights_ok)
        return 0;
    if (qweights_build(w->model, &w->assign, w->cache, host, NULL, &w->weights, err) < 0)
        return -1;
    w->weights_ok = 1;
    return 0;
}

void wb_summary(const struct wb *w, struct wb_summary *s)
{
    memset(s, 0, sizeof *s);
    if (!w->model)
        return;
    s->n_tensors = w->model->n_tensors;
    s->n_params = qmodel_n_params(w->model);
    s->float_bytes = qmodel_float_bytes(w->model);
    if (w->weights_ok) {
        s->n_quantized = w->weights.n_quantized;
        s->bytes = qweights_bytes(&w->weights);
        s->bits_per_weight = qweights_bits_per_weight(&w->weights);
    } else {
        s->bytes = s->float_bytes;
        s->bits_per_weight = 32.0;
    }
    s->ratio = s->float_bytes ? (double)s->bytes / (double)s->float_bytes : 1.0;
}

/* ---- evaluation ------------------------------------------------------------- */

static int load_data(struct wb *w, const char *path, const char *labels, qerr *err)
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

static char *abspath_or_copy(const char *p)
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

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cancelled_cb(void *ctx)
{
    atomic_int *flag = ctx;
    return flag && atomic_load(flag);
}

/* The float logits of the first n samples: stored ones when there are
 * enough, else computed now and stored for every later run. */
static int reference_logits(struct wb *w, const struct wb_eval_request *r, int64_t n,
                            float **out, double *seconds, qerr *err)
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
    struct qeval_opts eo = {.batch = r->batch, .threads = r->threads};
    double t0 = now_s();
    int rc = qeval_logits(m, NULL, w->data, n, &eo, r->progress, "float reference", logits, err);
    *seconds = now_s() - t0;
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
            .op = (char *)qop_name(m->nodes[m->tensor_node[i]].op),
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

/* Records the end of a run; on a store error the run stays as it is (it
 * will show as interrupted) and the error is returned. */
static int finish_run(struct wb *w, int64_t id, const char *status, const char *error,
                      const struct wb_eval_outcome *o, double elapsed, qerr *err)
{
    struct qstore_run_end e = {.status = status, .error = error, .elapsed_s = elapsed};
    char **strs = NULL;
    struct qstore_tensor *rows = NULL;
    char *metrics = NULL;
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
    if (o && strcmp(status, "done") == 0)
        e.metrics_json = metrics = run_metrics_json(o);
    int rc = qstore_run_finish(w->store, id, &e, err);
    free(metrics);
    free(rows);
    free_strs(strs, 2 * w->model->n_tensors);
    return rc;
}

/* Model, dataset and plugin rows, then the run itself as `running`. */
static int begin_run(struct wb *w, int64_t n, int64_t *id, qerr *err)
{
    const struct qmodel *m = w->model;
    int64_t model_id, data_id;
    struct qstore_model sm = {.path = w->model_abspath, .sha256 = w->model_sha,
                              .format = m->format, .name = m->name,
                              .n_params = qmodel_n_params(m),
                              .float_bytes = qmodel_float_bytes(m)};
    if (qstore_model_upsert(w->store, &sm, &model_id, err) < 0)
        return -1;
    char *dpath = abspath_or_copy(w->data->path);
    char *lpath = abspath_or_copy(w->data->labels_path);
    struct qstore_dataset sd = {.path = dpath, .labels_path = lpath, .sha256 = w->data->sha256,
                                .kind = w->data->kind, .n_samples = w->data->n};
    int rc = qstore_dataset_upsert(w->store, &sd, &data_id, err);
    free(dpath);
    free(lpath);
    if (rc < 0)
        return -1;
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
                                  .kind = "classify", .recipe_text = wb_recipe_text(w),
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
    const struct qmodel *m = w->model;
    const char *data = r->data ? r->data : m->dataset_path;
    const char *labels = r->data ? r->labels : (r->labels ? r->labels : m->labels_path);
    if (!data)
        return qerr_set(err, "%s names no evaluation dataset: give --data FILE", m->json_path);
    const char *sha;
    if (load_data(w, data, labels, err) < 0 || qeval_check(m, w->data, err) < 0 ||
        wb_model_sha256(w, &sha, err) < 0)
        return -1;
    int64_t n = r->limit > 0 && r->limit < w->data->n ? r->limit : w->data->n;
    if (n == 0)
        return qerr_set(err, "%s: the dataset is empty", w->data->path);

    int64_t id;
    if (begin_run(w, n, &id, err) < 0)
        return -1;
    o->run_id = id;
    double t0 = now_s();
    atomic_int *cancel = r->progress ? r->progress->cancel : NULL;
    struct qlab_host host = {.struct_size = sizeof host, .ctx = cancel, .cancelled = cancelled_cb};
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
    rc = reference_logits(w, r, n, &ref, &ref_seconds, err);
    if (rc != 0)
        goto end;
    qmetrics_classify(ref, NULL, w->data->labels, n, m->n_classes, &o->float_metrics);
    double t1 = now_s();
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
        o->seconds = now_s() - t1;
    }
    o->samples_per_s = o->seconds > 0 ? (double)n / o->seconds : 0;
    qmetrics_classify(logits, ref, w->data->labels, n, m->n_classes, &o->metrics);
    status = "done";
end:
    if (rc == QEVAL_CANCELLED)
        status = "cancelled";
    qerr ferr;
    int frc = finish_run(w, id, status, strcmp(status, "failed") == 0 ? err->msg : NULL, o,
                         now_s() - t0, &ferr);
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

/* ---- history ---------------------------------------------------------------- */

int wb_runs(struct wb *w, int all_models, int limit, struct qstore_run **runs, int *n, qerr *err)
{
    if (!w->store)
        return qerr_set(err, "no database open");
    struct qstore_run_filter f = {.limit = limit};
    if (!all_models) {
        const char *sha;
        if (!w->model)
            return qerr_set(err, "no model loaded");
        if (wb_model_sha256(w, &sha, err) < 0)
            return -1;
        f.model_path = w->model_abspath;
        f.model_sha256 = sha;
    }
    return qstore_runs_list(w->store, &f, runs, n, err);
}

int wb_run(struct wb *w, int64_t id, struct qstore_run **run, qerr *err)
{
    if (!w->store)
        return qerr_set(err, "no database open");
    return qstore_run_get(w->store, id, run, err);
}
