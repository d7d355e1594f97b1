/* workbench_sweep.c — sensitivity sweeps stored point by point, resumable, and exact searches over them. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/fsutil.h"
#include "quant/search.h"
#include "quant/sweep.h"
#include "workbench.h"
#include "workbench_internal.h"

/* ---- scheme lists and groupings ------------------------------------------------ */

struct schemes {
    int n;
    char **rhs;
};

static void schemes_free(struct schemes *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->rhs[i]);
    free(s->rhs);
    memset(s, 0, sizeof *s);
}

/* "int:bits=4;int:bits=8;q4_K": each checked against the plugins now, so a
 * typo fails before any work. */
static int parse_schemes(struct wb *w, const char *text, struct schemes *out, qerr *err)
{
    memset(out, 0, sizeof *out);
    struct qrecipe r = {0};
    const char *p = text ? text : "";
    while (*p) {
        size_t len = strcspn(p, ";");
        char *one = strndup(p, len);
        int rc = one ? 0 : qerr_set(err, "out of memory");
        if (rc == 0) {
            char *t = one;
            while (isspace((unsigned char)*t))
                t++;
            if (*t) {
                struct qpipeline *pipe = NULL;
                rc = qrecipe_add_text(&r, "*", t, err);
                if (rc == 0 && qrule_is_float(&r.rules[r.n - 1]))
                    rc = qerr_set(err, "float is the baseline of every sweep, not a candidate");
                if (rc == 0)
                    rc = qpipeline_configure(wb_plugins(w), &r.rules[r.n - 1], &pipe, err);
                qpipeline_free(pipe);
                if (rc == 0) {
                    char **grown = realloc(out->rhs, (size_t)(out->n + 1) * sizeof *grown);
                    if (!grown || !(grown[out->n] = qrule_rhs(&r.rules[r.n - 1]))) {
                        if (grown)
                            out->rhs = grown;
                        rc = qerr_set(err, "out of memory");
                    } else {
                        out->rhs = grown;
                        out->n++;
                    }
                }
                if (rc < 0)
                    qerr_prefix(err, "scheme '%s'", t);
            }
        }
        free(one);
        if (rc < 0) {
            qrecipe_clear(&r);
            schemes_free(out);
            return -1;
        }
        p += len;
        if (*p)
            p++;
    }
    qrecipe_clear(&r);
    if (out->n == 0)
        return qerr_set(err, "no candidate schemes (--schemes 'int:bits=4;int:bits=8')");
    return 0;
}

static int grouping_of(const char *group, enum qsweep_grouping *g, const char **globs)
{
    static const char *const names[] = {"tensor", "block", "role"};
    *globs = NULL;
    for (int i = 0; i < 3; i++)
        if (strcmp(group ? group : "tensor", names[i]) == 0) {
            *g = (enum qsweep_grouping)i;
            return 0;
        }
    *g = QSWEEP_GLOB;
    *globs = group;
    return 0;
}

/* ---- a sweep in progress ----------------------------------------------------------- */

struct sweep_ctx {
    struct wb *w;
    int64_t id;
    int n_groups, n_schemes;
    unsigned char *done;         /* n_groups x n_schemes, points already stored: 1 done, 2 failed */
    int proxy;                   /* a proxy metric: no model metrics */
    int64_t n_done, n_failed, n_run;
    const struct qprogress *progress;
    pthread_mutex_t lock;
};

static int cb_is_done(void *ctx, int64_t g, int64_t s)
{
    struct sweep_ctx *c = ctx;
    return c->done[g * c->n_schemes + s] != 0;
}

static char *result_json(const struct sweep_ctx *c, const struct qsweep_result *r)
{
    cJSON *o = cJSON_CreateObject();
    if (c->proxy) {
        /* infinite SQNR (no error at all) is stored as null */
        cJSON_AddNumberToObject(o, "sqnr_db", r->proxy.sqnr_db);
        cJSON_AddNumberToObject(o, "mse", r->proxy.mse);
        cJSON_AddNumberToObject(o, "nsr", r->proxy.nsr);
    } else if (c->w->model->kind == QMODEL_LM) {
        const struct qlm_metrics *m = &r->lm;
        cJSON_AddNumberToObject(o, "ppl", m->ppl);
        cJSON_AddNumberToObject(o, "ln_ppl_ratio", m->ln_ppl_ratio);
        cJSON_AddNumberToObject(o, "kld_mean", m->kld_mean);
        cJSON_AddNumberToObject(o, "kld_median", m->kld_median);
        cJSON_AddNumberToObject(o, "kld_p99", m->kld_p99);
        cJSON_AddNumberToObject(o, "kld_max", m->kld_max);
        cJSON_AddNumberToObject(o, "same_top_pct", m->same_top_pct);
        cJSON_AddNumberToObject(o, "dp_mean", m->dp_mean);
        cJSON_AddNumberToObject(o, "dp_rms", m->dp_rms);
    } else {
        const struct qclass_metrics *m = &r->cls;
        cJSON_AddNumberToObject(o, "top1", m->top1);
        cJSON_AddNumberToObject(o, "top5", m->top5);
        cJSON_AddNumberToObject(o, "cross_entropy", m->cross_entropy);
        cJSON_AddNumberToObject(o, "top1_agreement", m->top1_agreement);
        cJSON_AddNumberToObject(o, "kld_mean", m->kld_mean);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void report(struct sweep_ctx *c)
{
    if (c->progress && c->progress->fn)
        c->progress->fn(c->progress->ctx, "sweep", c->n_done + c->n_failed,
                        (int64_t)c->n_groups * c->n_schemes);
}

static int cb_point(void *ctx, const struct qsweep_result *r, qerr *err)
{
    struct sweep_ctx *c = ctx;
    char *metrics = result_json(c, r);
    struct qstore_sweep_point p = {.group = r->group, .scheme = r->scheme, .status = "done",
                                   .bits = (int64_t)r->bits, .change = r->change,
                                   .metrics_json = metrics, .seconds = r->seconds};
    pthread_mutex_lock(&c->lock);
    int rc = metrics ? qstore_sweep_point_put(wb_store(c->w), c->id, &p, err)
                     : qerr_set(err, "out of memory");
    if (rc == 0) {
        c->n_done++;
        c->n_run++;
        report(c);
    }
    pthread_mutex_unlock(&c->lock);
    free(metrics);
    return rc;
}

static int cb_failed(void *ctx, int64_t g, int64_t s, const char *error, qerr *err)
{
    struct sweep_ctx *c = ctx;
    struct qstore_sweep_point p = {.group = g, .scheme = s, .status = "failed", .change = NAN,
                                   .error = (char *)error};
    pthread_mutex_lock(&c->lock);
    int rc = qstore_sweep_point_put(wb_store(c->w), c->id, &p, err);
    if (rc == 0) {
        c->n_failed++;
        c->n_run++;
        report(c);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* What the sweep needs besides its definition, as recorded for resuming. */
struct sweep_params {
    const char *data, *labels;
    int64_t limit;
    int n_ctx, n_chunks;
};

static char *params_json(const struct sweep_params *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "data", p->data);
    if (p->labels)
        cJSON_AddStringToObject(o, "labels", p->labels);
    cJSON_AddNumberToObject(o, "limit", (double)p->limit);
    cJSON_AddNumberToObject(o, "n_ctx", p->n_ctx);
    cJSON_AddNumberToObject(o, "n_chunks", p->n_chunks);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Everything a sweep evaluates with: the data, the reference, the spec. */
struct sweep_setup {
    struct qsweep_spec spec;
    struct qsweep_group *groups;
    int n_groups;
    struct schemes schemes;
    float *ref_logits;
    char ref_path[PATH_MAX];
    struct qstore_dataset data;
    char *data_abs, *labels_abs;
    struct sweep_params params;   /* resolved: data path, n_ctx and chunks as used */
};

static void setup_free(struct sweep_setup *s)
{
    qsweep_groups_free(s->groups, s->n_groups);
    schemes_free(&s->schemes);
    free(s->ref_logits);
    free(s->data_abs);
    free(s->labels_abs);
    memset(s, 0, sizeof *s);
}

static int setup(struct wb *w, const struct sweep_params *in, const char *schemes,
                 const char *group, const char *metric, enum qsweep_mode mode, int threads,
                 int no_prefix, const struct qprogress *progress, struct sweep_setup *s,
                 qerr *err)
{
    memset(s, 0, sizeof *s);
    const struct qmodel *m = w->model;
    enum qsweep_grouping gk;
    const char *globs;
    if (!metric)
        metric = qsweep_default_metric(m->kind);
    if (!qsweep_metric_valid(m->kind, metric))
        return qerr_set(err, "metric '%s' does not apply to %s models (%s)", metric,
                        m->kind == QMODEL_LM ? "language" : "classifier",
                        m->kind == QMODEL_LM
                            ? "kld_mean, ppl, kld_p99, same_top, weight_sqnr, output_sqnr"
                            : "cross_entropy, top1, kld_mean, weight_sqnr, output_sqnr");
    if (qsweep_metric_is_proxy(metric) && mode != QSWEEP_ONE)
        return qerr_set(err, "metric %s measures one group at a time: use --mode one", metric);
    /* proxies compare weights or single layers: no float reference pass */
    const int proxy = qsweep_metric_is_proxy(metric);
    if (parse_schemes(w, schemes, &s->schemes, err) < 0)
        return -1;
    grouping_of(group, &gk, &globs);
    if (qsweep_groups(m, gk, globs, &s->groups, &s->n_groups, err) < 0)
        goto fail;
    s->params = *in;
    struct qsweep_spec *sp = &s->spec;
    *sp = (struct qsweep_spec){.model = m, .host = wb_plugins(w), .mode = mode,
                               .groups = s->groups, .n_groups = s->n_groups,
                               .schemes = (const char *const *)s->schemes.rhs,
                               .n_schemes = s->schemes.n, .metric = metric,
                               .threads = threads, .prefix_reuse = !no_prefix,
                               .cache = w->cache};
    if (m->kind == QMODEL_LM) {
        int64_t chunks;
        int computed;
        struct qlm_metrics fm;
        double secs;
        if (wbi_lm_prepare(w, in->data, in->n_ctx, in->n_chunks, 0, &sp->lm, &chunks, err) < 0 ||
            (!proxy && wbi_lm_reference(w, &sp->lm, progress, s->ref_path, sizeof s->ref_path,
                                        &computed, &fm, &secs, err) != 0))
            goto fail;
        sp->tokens = w->lm_data;
        sp->lm_ref_path = proxy ? NULL : s->ref_path;
        s->params.n_ctx = sp->lm.n_ctx;
        s->params.n_chunks = sp->lm.n_chunks;
        s->data_abs = wbi_abspath(w->lm_data->path);
        s->data = (struct qstore_dataset){.path = s->data_abs, .sha256 = w->lm_data->sha256,
                                          .kind = w->lm_data->kind,
                                          .n_samples = w->lm_data->n};
    } else {
        const char *data = in->data ? in->data : m->dataset_path;
        const char *labels = in->data ? in->labels : m->labels_path;
        double secs;
        if (!data) {
            qerr_set(err, "%s names no evaluation dataset: give --data FILE", m->json_path);
            goto fail;
        }
        if (wbi_load_data(w, data, labels, err) < 0 || qeval_check(m, w->data, err) < 0)
            goto fail;
        int64_t n = in->limit > 0 && in->limit < w->data->n ? in->limit : w->data->n;
        if (!proxy &&
            wbi_reference_logits(w, 0, threads, progress, n, &s->ref_logits, &secs, err) != 0)
            goto fail;
        sp->data = w->data;
        sp->n_samples = n;
        sp->ref_logits = s->ref_logits;
        s->params.data = data;
        s->params.labels = labels;
        s->data_abs = wbi_abspath(w->data->path);
        s->labels_abs = wbi_abspath(w->data->labels_path);
        s->data = (struct qstore_dataset){.path = s->data_abs, .labels_path = s->labels_abs,
                                          .sha256 = w->data->sha256, .kind = w->data->kind,
                                          .n_samples = w->data->n};
    }
    return 0;
fail:
    setup_free(s);
    return -1;
}

/* Runs the points a sweep lacks and records how it ended. */
static int run_points(struct wb *w, int64_t id, struct sweep_setup *s, unsigned char *done,
                      const struct qprogress *progress, struct wb_sweep_outcome *o, qerr *err)
{
    struct sweep_ctx c = {.w = w, .id = id, .n_groups = s->n_groups,
                          .n_schemes = s->schemes.n, .done = done, .progress = progress,
                          .proxy = qsweep_metric_is_proxy(s->spec.metric)};
    for (int64_t i = 0; i < (int64_t)s->n_groups * s->schemes.n; i++)
        if (done[i])
            *(done[i] == 2 ? &c.n_failed : &c.n_done) += 1;
    pthread_mutex_init(&c.lock, NULL);
    struct qsweep_callbacks cb = {.ctx = &c, .is_done = cb_is_done, .on_point = cb_point,
                                  .on_failed = cb_failed,
                                  .cancel = progress ? progress->cancel : NULL};
    double t0 = wbi_now();
    report(&c);
    int rc = qsweep_run(&s->spec, &cb, err);
    pthread_mutex_destroy(&c.lock);
    o->sweep_id = id;
    o->seconds = wbi_now() - t0;
    o->n_points = (int64_t)s->n_groups * s->schemes.n;
    o->n_done = c.n_done;
    o->n_failed = c.n_failed;
    o->n_run = c.n_run;
    o->points_per_s = o->seconds > 0 ? (double)c.n_run / o->seconds : 0;
    o->status = rc == 0 ? "done" : rc == QEVAL_CANCELLED ? "cancelled" : "failed";
    qerr ferr;
    if (qstore_sweep_finish(wb_store(w), id, o->status, rc < 0 ? err->msg : NULL, &ferr) < 0 &&
        rc == 0) {
        *err = ferr;
        return -1;
    }
    return rc < 0 ? -1 : 0;
}

static char *tensor_names_json(const struct qmodel *m, const struct qsweep_group *g)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < g->n_tensors; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(m->tensors[g->tensors[i]]->name));
    char *s = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return s;
}

int wb_sweep(struct wb *w, const struct wb_sweep_request *r, struct wb_sweep_outcome *o,
             qerr *err)
{
    memset(o, 0, sizeof *o);
    o->status = "failed";
    if (!w->model)
        return qerr_set(err, "no model loaded");
    if (!w->store)
        return qerr_set(err, "no database open");
    enum qsweep_mode mode = QSWEEP_ONE;
    if (r->mode && strcmp(r->mode, "one") != 0) {
        if (strcmp(r->mode, "loo") != 0)
            return qerr_set(err, "mode '%s' is not one or loo", r->mode);
        mode = QSWEEP_LOO;
    }
    struct sweep_params in = {.data = r->data, .labels = r->labels, .limit = r->limit,
                              .n_ctx = r->n_ctx, .n_chunks = r->n_chunks};
    struct sweep_setup s;
    if (setup(w, &in, r->schemes, r->group, r->metric, mode, r->threads, r->no_prefix,
              r->progress, &s, err) < 0)
        return -1;
    const struct qmodel *m = w->model;
    int64_t model_id, data_id, id;
    int rc = -1;
    struct qstore_sweep_group *sg = calloc((size_t)s.n_groups, sizeof *sg);
    char *pj = params_json(&s.params);
    unsigned char *done = calloc((size_t)s.n_groups * (size_t)s.schemes.n, 1);
    int64_t group_numel = 0;
    if (!sg || !pj || !done) {
        qerr_set(err, "out of memory");
        goto out;
    }
    for (int g = 0; g < s.n_groups; g++) {
        sg[g] = (struct qstore_sweep_group){.name = s.groups[g].name, .glob = s.groups[g].glob,
                                            .tensors_json = tensor_names_json(m, &s.groups[g]),
                                            .numel = s.groups[g].numel,
                                            .float_bits = s.groups[g].numel * 32};
        group_numel += s.groups[g].numel;
    }
    enum qsweep_grouping gk;
    const char *globs;
    grouping_of(r->group, &gk, &globs);
    struct qstore_sweep sw = {
        .kind = m->kind == QMODEL_LM ? "lm" : "classify", .mode = (char *)qsweep_mode_name(mode),
        .grouping = (char *)qsweep_grouping_name(gk), .group_spec = (char *)globs,
        .metric = (char *)s.spec.metric, .params_json = pj,
        .fixed_bits = (qmodel_n_params(m) - group_numel) * 32,
        .total_numel = qmodel_n_params(m), .n_groups = s.n_groups, .n_schemes = s.schemes.n,
        .groups = sg, .schemes = s.schemes.rhs};
    if (wbi_upsert_model_data(w, &s.data, &model_id, &data_id, err) < 0)
        goto out;
    sw.model_id = model_id;
    sw.dataset_id = data_id;
    if (qstore_sweep_begin(w->store, &sw, &id, err) < 0)
        goto out;
    rc = run_points(w, id, &s, done, r->progress, o, err);
out:
    if (sg)
        for (int g = 0; g < s.n_groups; g++)
            free(sg[g].tensors_json);
    free(sg);
    free(pj);
    free(done);
    setup_free(&s);
    return rc;
}

static int json_int(const cJSON *o, const char *k, int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : (int)dflt;
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Loads the model a stored sweep (or search) was made with, unless it is
 * loaded; refuses it when its content changed. */
static int load_sweep_model(struct wb *w, const struct qstore_sweep *sw, qerr *err)
{
    const char *sha;
    if (!w->model || !w->model_abspath || strcmp(w->model_abspath, sw->model_path) != 0) {
        if (wb_load_model(w, sw->model_path, err) < 0)
            return qerr_prefix(err, "sweep %lld's model", (long long)sw->id);
    }
    if (wb_model_sha256(w, &sha, err) < 0)
        return -1;
    if (strcmp(sha, sw->model_sha256) != 0)
        return qerr_set(err, "%s changed since sweep %lld was made (sha256 %.12s, was %.12s)",
                        sw->model_path, (long long)sw->id, sha, sw->model_sha256);
    return 0;
}

int wb_sweep_resume(struct wb *w, int64_t id, int threads, const struct qprogress *p,
                    struct wb_sweep_outcome *o, qerr *err)
{
    memset(o, 0, sizeof *o);
    o->status = "failed";
    if (!w->store)
        return qerr_set(err, "no database open");
    struct qstore_sweep *sw = NULL;
    struct qstore_sweep_point *pts = NULL;
    int npts = 0, rc = -1;
    cJSON *params = NULL;
    unsigned char *done = NULL;
    struct sweep_setup s = {0};
    if (qstore_sweep_get(w->store, id, &sw, err) < 0)
        return -1;
    if (strcmp(sw->status, "done") == 0) {
        qerr_set(err, "sweep %lld is done: nothing to resume", (long long)id);
        goto out;
    }
    if (load_sweep_model(w, sw, err) < 0)
        goto out;
    params = cJSON_Parse(sw->params_json ? sw->params_json : "{}");
    struct sweep_params in = {.data = json_str(params, "data"),
                              .labels = json_str(params, "labels"),
                              .limit = json_int(params, "limit", 0),
                              .n_ctx = json_int(params, "n_ctx", 0),
                              .n_chunks = json_int(params, "n_chunks", 0)};
    /* the same schemes, as one text */
    size_t len = 1;
    for (int i = 0; i < sw->n_schemes; i++)
        len += strlen(sw->schemes[i]) + 1;
    char *schemes = malloc(len);
    if (!schemes) {
        qerr_set(err, "out of memory");
        goto out;
    }
    schemes[0] = 0;
    for (int i = 0; i < sw->n_schemes; i++) {
        strcat(schemes, sw->schemes[i]);
        strcat(schemes, ";");
    }
    const char *group = strcmp(sw->grouping, "glob") == 0 ? sw->group_spec : sw->grouping;
    enum qsweep_mode mode = strcmp(sw->mode, "loo") == 0 ? QSWEEP_LOO : QSWEEP_ONE;
    rc = setup(w, &in, schemes, group, sw->metric, mode, threads, 0, p, &s, err);
    free(schemes);
    if (rc < 0)
        goto out;
    rc = -1;
    if (strcmp(s.data.sha256, sw->dataset_sha256) != 0) {
        qerr_set(err, "%s changed since sweep %lld was made", s.data.path, (long long)id);
        goto out;
    }
    if (s.n_groups != sw->n_groups || s.schemes.n != sw->n_schemes) {
        qerr_set(err, "sweep %lld: the model now gives %d groups, the sweep has %d", (long long)id,
                 s.n_groups, sw->n_groups);
        goto out;
    }
    for (int g = 0; g < s.n_groups; g++)
        if (strcmp(s.groups[g].name, sw->groups[g].name) != 0) {
            qerr_set(err, "sweep %lld: group %d is now '%s', was '%s'", (long long)id, g,
                     s.groups[g].name, sw->groups[g].name);
            goto out;
        }
    if (qstore_sweep_points(w->store, id, &pts, &npts, err) < 0 ||
        qstore_sweep_claim(w->store, id, err) < 0)
        goto out;
    done = calloc((size_t)s.n_groups * (size_t)s.schemes.n, 1);
    if (!done) {
        qerr_set(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < npts; i++)
        if (pts[i].group < s.n_groups && pts[i].scheme < s.schemes.n)
            done[pts[i].group * s.schemes.n + pts[i].scheme] =
                pts[i].status && strcmp(pts[i].status, "failed") == 0 ? 2 : 1;
    rc = run_points(w, id, &s, done, p, o, err);
out:
    cJSON_Delete(params);
    free(done);
    setup_free(&s);
    qstore_sweep_points_free(pts, npts);
    qstore_sweep_free(sw);
    return rc;
}

int wb_sweeps(struct wb *w, int all_models, int limit, struct qstore_sweep **sweeps, int *n,
              qerr *err)
{
    if (!w->store)
        return qerr_set(err, "no database open");
    struct qstore_run_filter f = {.limit = limit};
    const char *sha;
    if (!all_models) {
        if (!w->model || wb_model_sha256(w, &sha, err) < 0)
            return w->model ? -1 : qerr_set(err, "no model loaded");
        f.model_path = w->model_abspath;
        f.model_sha256 = sha;
    }
    return qstore_sweeps_list(w->store, &f, sweeps, n, err);
}

/* ---- search ------------------------------------------------------------------------ */

/* "4.5bpw", "0.25x", "1.5MiB", "120000B" or bytes: the budget in bits. */
static int parse_budget(const char *text, int64_t numel, uint64_t *bits, qerr *err)
{
    char *end;
    double v = strtod(text ? text : "", &end);
    if (!text || end == text || !isfinite(v) || v <= 0)
        return qerr_set(err, "budget '%s' is not a positive size (4.5bpw, 0.25x, 1.5MiB, "
                        "120000B)", text ? text : "");
    double b;
    if (strcmp(end, "bpw") == 0)
        b = v * (double)numel;
    else if (strcmp(end, "x") == 0)
        b = v * (double)numel * 32;
    else if (strcmp(end, "B") == 0 || *end == 0)
        b = v * 8;
    else if (strcmp(end, "KiB") == 0)
        b = v * 8 * 1024;
    else if (strcmp(end, "MiB") == 0)
        b = v * 8 * 1024 * 1024;
    else if (strcmp(end, "GiB") == 0)
        b = v * 8 * 1024 * 1024 * 1024;
    else
        return qerr_set(err, "budget '%s': unknown unit '%s' (bpw, x, B, KiB, MiB, GiB)", text,
                        end);
    if (b >= 1.8e19)
        return qerr_set(err, "budget '%s' is too large", text);
    *bits = (uint64_t)floor(b);
    return 0;
}

/* The tie of a group: presets tie within each block ("qkv": attn_q/k/v of
 * blk.N; "gate_up": ffn_gate/up), a glob ties every group inside it. */
static int tie_key(const struct qstore_sweep_group *g, const char *tie, char *key, size_t size)
{
    cJSON *names = cJSON_Parse(g->tensors_json ? g->tensors_json : "[]");
    int n = cJSON_GetArraySize(names), ok = n > 0;
    long block = -1;
    for (int i = 0; i < n && ok; i++) {
        const char *t = cJSON_GetArrayItem(names, i)->valuestring;
        long b;
        char role[64];
        int is_preset = strcmp(tie, "qkv") == 0 || strcmp(tie, "gate_up") == 0;
        if (is_preset) {
            if (sscanf(t, "blk.%ld.%63[a-z_].weight", &b, role) != 2 || (block >= 0 && b != block))
                ok = 0;
            else if (strcmp(tie, "qkv") == 0)
                ok = !strcmp(role, "attn_q") || !strcmp(role, "attn_k") || !strcmp(role, "attn_v");
            else
                ok = !strcmp(role, "ffn_gate") || !strcmp(role, "ffn_up");
            block = b;
        } else {
            struct qrule r = {.glob = (char *)tie, .names_leaf = 1};
            ok = qrule_applies(&r, t, QROLE_WEIGHT);
        }
    }
    cJSON_Delete(names);
    if (ok)
        snprintf(key, size, "%s#%ld", tie, block);
    return ok;
}

/* The rules selecting a group: its glob, or one escaped name per tensor
 * when no single glob holds it (a classifier node with several weights). */
static int add_group_rules(struct qrecipe *r, const struct qstore_sweep_group *g,
                           const char *rhs, qerr *err)
{
    if (g->glob && *g->glob)
        return qrecipe_add_text(r, g->glob, rhs, err);
    cJSON *names = cJSON_Parse(g->tensors_json ? g->tensors_json : "[]");
    int rc = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, names)
    {
        char *glob = cJSON_IsString(t) ? qglob_escape(t->valuestring) : NULL;
        rc = glob ? qrecipe_add_text(r, glob, rhs, err) : qerr_set(err, "out of memory");
        free(glob);
        if (rc < 0)
            break;
    }
    cJSON_Delete(names);
    return rc;
}

/* The --quant text of a front point: rules for every group not at float. */
static char *point_recipe(const struct qstore_sweep *sw, const int *choice, qerr *err)
{
    struct qrecipe r = {0};
    for (int g = 0; g < sw->n_groups; g++)
        if (choice[g] > 0 &&
            add_group_rules(&r, &sw->groups[g], sw->schemes[choice[g] - 1], err) < 0) {
            qrecipe_clear(&r);
            return NULL;
        }
    char *s = qrecipe_text(&r);
    qrecipe_clear(&r);
    if (!s)
        qerr_set(err, "out of memory");
    return s;
}

/* The measured change of a verifying run, as the sweep measured points. */
static double measured_change(const char *metric, const struct wb_eval_outcome *o)
{
    if (o->is_lm) {
        const struct qlm_metrics *m = &o->lm;
        if (!strcmp(metric, "ppl"))
            return m->ppl - m->ppl_ref;
        if (!strcmp(metric, "kld_p99"))
            return m->kld_p99;
        if (!strcmp(metric, "same_top"))
            return 100.0 - m->same_top_pct;
        return m->kld_mean;
    }
    const struct qclass_metrics *m = &o->metrics, *f = &o->float_metrics;
    if (!strcmp(metric, "top1"))
        return f->top1 - m->top1;
    if (!strcmp(metric, "kld_mean"))
        return m->kld_mean;
    return m->cross_entropy - f->cross_entropy;
}

/* Which front points to verify: the optimum, then K - 1 cheaper front
 * points below it, spread over the top quarter of the front within the
 * budget: the candidates a user would pick from once measured (points
 * above the budget are not eligible, and far cheaper ones lose anyway). */
static int pick_verify(const struct qsearch_front *f, int k, int *out)
{
    int n = 0;
    if (f->optimum < 0 || k < 1)
        return 0;
    out[n++] = f->optimum;
    int stride = k > 1 ? f->optimum / (4 * (k - 1)) : 1;
    if (stride < 1)
        stride = 1;
    for (int idx = f->optimum - stride; n < k && idx >= 0; idx -= stride)
        out[n++] = idx;
    return n;
}

int wb_search(struct wb *w, const struct wb_search_request *r, int64_t *search_id, qerr *err)
{
    *search_id = 0;
    if (!w->store)
        return qerr_set(err, "no database open");
    struct qstore_sweep *sw = NULL;
    struct qstore_sweep_point *pts = NULL;
    struct qsearch_choice *ch = NULL;
    int *tie_of = NULL, npts = 0, rc = -1;
    char (*keys)[160] = NULL;
    struct qsearch_front front = {0};
    struct qstore_search_point *sp = NULL;
    char *ties_json = NULL;
    if (qstore_sweep_get(w->store, r->sweep_id, &sw, err) < 0 ||
        qstore_sweep_points(w->store, r->sweep_id, &pts, &npts, err) < 0)
        goto out;
    if (strcmp(sw->mode, "one") != 0) {
        qerr_set(err, "sweep %lld is leave-one-out: a search needs a one-at-a-time sweep",
                 (long long)sw->id);
        goto out;
    }
    if (r->verify > 0 && qsweep_metric_is_proxy(sw->metric)) {
        qerr_set(err, "sweep %lld measured %s, a proxy no run reports: --verify needs a sweep "
                 "of a measured metric", (long long)sw->id, sw->metric);
        goto out;
    }
    uint64_t budget = 0;
    if (parse_budget(r->budget, sw->total_numel, &budget, err) < 0)
        goto out;
    int G = sw->n_groups, C = sw->n_schemes + 1;
    ch = calloc((size_t)G * (size_t)C, sizeof *ch);
    tie_of = malloc((size_t)(G ? G : 1) * sizeof *tie_of);
    keys = calloc((size_t)(G ? G : 1), sizeof *keys);
    if (!ch || !tie_of || !keys) {
        qerr_set(err, "out of memory");
        goto out;
    }
    for (int g = 0; g < G; g++) {
        ch[g * C] = (struct qsearch_choice){.bits = (uint64_t)sw->groups[g].float_bits,
                                            .change = 0, .valid = 1};
        tie_of[g] = -1;
    }
    for (int i = 0; i < npts; i++)
        if (!strcmp(pts[i].status, "done") && pts[i].group < G && pts[i].scheme < C - 1)
            ch[pts[i].group * C + pts[i].scheme + 1] =
                (struct qsearch_choice){.bits = (uint64_t)pts[i].bits, .change = pts[i].change,
                                        .valid = 1};
    /* ties: groups with the same key share one */
    int n_ties = 0;
    cJSON *tj = cJSON_CreateArray();
    for (int t = 0; t < r->n_ties; t++) {
        cJSON_AddItemToArray(tj, cJSON_CreateString(r->ties[t]));
        int hits = 0;
        for (int g = 0; g < G; g++) {
            char key[160];
            if (!tie_key(&sw->groups[g], r->ties[t], key, sizeof key))
                continue;
            hits++;
            if (tie_of[g] >= 0) {
                cJSON_Delete(tj);
                qerr_set(err, "group '%s' is in two ties", sw->groups[g].name);
                goto out;
            }
            int k = 0;
            while (k < n_ties && strcmp(keys[k], key) != 0)
                k++;
            if (k == n_ties)
                snprintf(keys[n_ties++], sizeof keys[0], "%s", key);
            tie_of[g] = k;
        }
        if (!hits) {
            cJSON_Delete(tj);
            qerr_set(err, "tie '%s' holds no group of sweep %lld", r->ties[t],
                     (long long)sw->id);
            goto out;
        }
    }
    ties_json = cJSON_PrintUnformatted(tj);
    cJSON_Delete(tj);
    struct qsearch_problem prob = {.n_groups = G, .n_choices = C, .c = ch,
                                   .fixed_bits = (uint64_t)sw->fixed_bits, .n_ties = n_ties,
                                   .tie_of = tie_of};
    if (qsearch_solve(&prob, budget, 0, &front, err) < 0)
        goto out;
    sp = calloc((size_t)(front.n ? front.n : 1), sizeof *sp);
    if (!sp) {
        qerr_set(err, "out of memory");
        goto out;
    }
    for (int i = 0; i < front.n; i++) {
        sp[i] = (struct qstore_search_point){.idx = i, .bits = (int64_t)front.points[i].bits,
                                             .predicted = front.points[i].change,
                                             .is_optimum = i == front.optimum,
                                             .measured = NAN};
        if (!(sp[i].recipe_text = point_recipe(sw, front.points[i].choice, err)))
            goto out;
    }
    struct qstore_search se = {.sweep_id = sw->id, .status = "done",
                               .budget_text = (char *)r->budget, .budget_bits = (int64_t)budget,
                               .ties_json = ties_json, .n_points = front.n, .points = sp};
    if (qstore_search_put(w->store, &se, search_id, err) < 0)
        goto out;
    if (r->verify > 0) {
        /* evaluate chosen points for real, as runs linked to the search */
        if (load_sweep_model(w, sw, err) < 0)
            goto out;
        cJSON *params = cJSON_Parse(sw->params_json ? sw->params_json : "{}");
        int *pick = malloc((size_t)r->verify * sizeof *pick);
        int np = pick ? pick_verify(&front, r->verify, pick) : 0;
        char *saved = strdup(wb_recipe_text(w));
        int vrc = pick && saved ? 0 : qerr_set(err, "out of memory");
        for (int i = 0; i < np && vrc == 0; i++) {
            struct wb_eval_request er = {.data = json_str(params, "data"),
                                         .labels = json_str(params, "labels"),
                                         .limit = json_int(params, "limit", 0),
                                         .n_ctx = json_int(params, "n_ctx", 0),
                                         .n_chunks = json_int(params, "n_chunks", 0),
                                         .progress = r->progress};
            struct wb_eval_outcome eo;
            vrc = wb_set_recipe(w, sp[pick[i]].recipe_text, err);
            if (vrc == 0)
                vrc = wb_eval(w, &er, &eo, err);
            if (vrc == 0 && strcmp(eo.status, "done") != 0)
                vrc = qerr_set(err, "verifying run %lld was %s", (long long)eo.run_id,
                               eo.status);
            if (vrc == 0)
                vrc = qstore_search_verify(w->store, *search_id, pick[i], eo.run_id,
                                           measured_change(sw->metric, &eo), err);
        }
        if (saved) {
            qerr ignore;
            wb_set_recipe(w, saved, &ignore);
        }
        free(saved);
        free(pick);
        cJSON_Delete(params);
        if (vrc < 0)
            goto out;
    }
    rc = 0;
out:
    if (sp)
        for (int i = 0; i < front.n; i++)
            free(sp[i].recipe_text);
    free(sp);
    free(ties_json);
    qsearch_front_free(&front);
    free(keys);
    free(tie_of);
    free(ch);
    qstore_sweep_points_free(pts, npts);
    qstore_sweep_free(sw);
    return rc;
}

int wb_searches(struct wb *w, int64_t sweep_id, int all_models, struct qstore_search **out,
                int *n, qerr *err)
{
    if (!w->store)
        return qerr_set(err, "no database open");
    struct qstore_run_filter f = {0};
    const char *sha;
    if (!all_models) {
        if (!w->model || wb_model_sha256(w, &sha, err) < 0)
            return w->model ? -1 : qerr_set(err, "no model loaded");
        f.model_path = w->model_abspath;
        f.model_sha256 = sha;
    }
    return qstore_searches_list(w->store, sweep_id, &f, out, n, err);
}
