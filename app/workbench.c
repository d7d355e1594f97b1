/* workbench.c — the application API: model, recipe, quantized weights, evaluation runs, history. */
#include "workbench.h"
#include "workbench_internal.h"

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
    qlm_data_free(w->lm_data); /* tokenized with this model's tokenizer */
    w->lm_data = NULL;
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

char *wb_recipe_json(const struct wb *w)
{
    return qassign_recipe_json(&w->recipe, &w->assign);
}
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
    return wb_load_model_ex(w, path, NULL, err);
}

int wb_load_model_ex(struct wb *w, const char *path, const char *tokenizer, qerr *err)
{
    struct qmodel *m;
    struct qmodel_open_opts o = {.tokenizer = tokenizer, .host = w->host};
    if (qmodel_open_ex(path, &o, &m, err) < 0)
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
