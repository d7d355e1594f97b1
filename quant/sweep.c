/* sweep.c — runs a sweep: every (group, scheme) point quantized and evaluated on worker threads, from saved float activations where it can. */
#include "sweep.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "forward.h"
#include "llm.h"
#include "metrics.h"
#include "recipe.h"
#include "sweep_internal.h"

#define SWEEP_BATCH 64                       /* samples per classifier forward call */
#define SWEEP_MAX_THREADS 64
#define SWEEP_CACHE_BYTES ((size_t)512 << 20) /* default bound on saved activations */

/* ---- types --------------------------------------------------------------------- */

enum metric { M_CROSS_ENTROPY, M_TOP1, M_KLD_MEAN, M_PPL, M_KLD_P99, M_SAME_TOP, M_WEIGHT_SQNR,
              M_OUTPUT_SQNR };

/* A cut: the float activations before classifier node `node`, every
 * sample, or at LM cut `at` (llm.h), every chunk. */
struct cut {
    int node;                    /* classifiers; LM: 2 * at.layer + at.ffn, for the order */
    struct qllm_cut at;          /* LM */
    int64_t floats;              /* per sample or chunk */
    float *saved;                /* units * floats; batch b from its first sample * floats */
    int64_t benefit;             /* points starting here x nodes or half-blocks they skip */
};

/* What every worker shares. */
struct sweep {
    const struct qsweep_spec *s;
    const struct qsweep_callbacks *cb;
    const struct qmodel *m;
    enum metric metric;
    struct qpipeline **pipe;     /* n_schemes; NULL where the scheme keeps float */
    int *group_of;               /* n_tensors: the tensor's group, or -1 */
    struct qdeq_cache *cache;    /* the spec's, a private one (loo), or NULL */
    struct qdeq_cache *own_cache;
    int64_t *todo;               /* points g * n_schemes + s still to run, in run order */
    int64_t n_todo;
    atomic_llong next;           /* the next todo entry (or batch, while saving cuts) to take */
    atomic_int stop;             /* a fatal error: workers leave after their point */
    pthread_mutex_t lock;        /* callbacks, the counters below and the first error */
    int failed;
    qerr err;
    int64_t done, total;         /* points done (skipped included) of all */
    int64_t finished;            /* todo entries measured or reported failed */
    int64_t measured;            /* points evaluated by this call, for the speed */
    double t0;                   /* seconds, when points started */
    /* classifiers */
    int64_t n_batches;
    struct qclass_metrics float_m;
    /* saved cuts: classifiers and LMs */
    struct cut *cuts;
    int n_cuts;
    int *cut_nodes;              /* n_cuts */
    int *group_cut;              /* n_groups: index into cuts, or -1 (full passes) */
    struct qsweep_proxy_cal *cal; /* output_sqnr */
};

/* One thread's own state. */
struct worker {
    struct sweep *w;
    pthread_t tid;
    struct qforward *f;          /* classifiers: single-threaded */
    float *logits;               /* classifiers: n_samples x classes */
    float **cut_ptrs;            /* n_cuts: where a batch's cuts go while saving */
    struct qpipeline **config;   /* n_tensors: the point's assignment */
    struct qsweep_proxy_scratch *proxy;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int core_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > SWEEP_MAX_THREADS ? SWEEP_MAX_THREADS : (int)n;
}

static int user_cancelled(const struct sweep *w)
{
    return w->cb && w->cb->cancel && atomic_load(w->cb->cancel);
}

static int should_stop(struct sweep *w)
{
    return atomic_load(&w->stop) || user_cancelled(w);
}

/* The plugins' cancel hook while quantizing. */
static int host_cancelled(void *ctx)
{
    return should_stop(ctx);
}

/* Keeps the first fatal error and stops every worker. */
static int fatal(struct sweep *w, const qerr *e)
{
    pthread_mutex_lock(&w->lock);
    if (!w->failed)
        w->err = *e;
    w->failed = 1;
    atomic_store(&w->stop, 1);
    pthread_mutex_unlock(&w->lock);
    return -1;
}

/* ---- checking the spec ---------------------------------------------------------- */

static int metric_of(const struct qmodel *m, const char *name, enum metric *out, qerr *err)
{
    static const struct {
        const char *name;
        enum qmodel_kind kind;
        enum metric metric;
    } table[] = {
        {"cross_entropy", QMODEL_CLASSIFIER, M_CROSS_ENTROPY},
        {"top1", QMODEL_CLASSIFIER, M_TOP1},
        {"kld_mean", QMODEL_CLASSIFIER, M_KLD_MEAN},
        {"kld_mean", QMODEL_LM, M_KLD_MEAN},
        {"ppl", QMODEL_LM, M_PPL},
        {"kld_p99", QMODEL_LM, M_KLD_P99},
        {"same_top", QMODEL_LM, M_SAME_TOP},
        {"weight_sqnr", QMODEL_CLASSIFIER, M_WEIGHT_SQNR},
        {"weight_sqnr", QMODEL_LM, M_WEIGHT_SQNR},
        {"output_sqnr", QMODEL_CLASSIFIER, M_OUTPUT_SQNR},
        {"output_sqnr", QMODEL_LM, M_OUTPUT_SQNR},
    };
    if (!name)
        name = qsweep_default_metric(m->kind);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].kind == m->kind && strcmp(table[i].name, name) == 0) {
            *out = table[i].metric;
            return 0;
        }
    return qerr_set(err, "sweep: metric '%s' does not apply to %s models (%s)", name,
                    m->kind == QMODEL_LM ? "language" : "classifier",
                    m->kind == QMODEL_LM
                        ? "kld_mean, ppl, kld_p99, same_top, weight_sqnr, output_sqnr"
                        : "cross_entropy, top1, kld_mean, weight_sqnr, output_sqnr");
}

/* Groups hold valid, distinct weight tensors; group_of is filled. */
static int check_groups(struct sweep *w, qerr *err)
{
    const struct qsweep_spec *s = w->s;
    const struct qmodel *m = w->m;
    w->group_of = malloc((size_t)(m->n_tensors ? m->n_tensors : 1) * sizeof *w->group_of);
    if (!w->group_of)
        return qerr_set(err, "sweep: out of memory");
    for (int t = 0; t < m->n_tensors; t++)
        w->group_of[t] = -1;
    for (int g = 0; g < s->n_groups; g++) {
        const struct qsweep_group *gr = &s->groups[g];
        if (gr->n_tensors < 1 || !gr->tensors)
            return qerr_set(err, "sweep: group %d '%s' has no tensors", g,
                            gr->name ? gr->name : "?");
        for (int i = 0; i < gr->n_tensors; i++) {
            int t = gr->tensors[i];
            if (t < 0 || t >= m->n_tensors)
                return qerr_set(err, "sweep: group '%s': tensor index %d is not in the model",
                                gr->name, t);
            if (w->group_of[t] >= 0)
                return qerr_set(err, "sweep: tensor '%s' is in groups '%s' and '%s'",
                                m->tensors[t]->name, s->groups[w->group_of[t]].name, gr->name);
            if (!m->tensors[t]->f32)
                return qerr_set(err, "sweep: tensor '%s' has no float32 values",
                                m->tensors[t]->name);
            w->group_of[t] = g;
        }
    }
    return 0;
}

static int check_data(struct sweep *w, qerr *err)
{
    const struct qsweep_spec *s = w->s;
    const struct qmodel *m = w->m;
    if (m->kind == QMODEL_LM) {
        if (!m->llm)
            return qerr_set(err, "sweep: %s: a language model without its architecture", m->name);
        if (!s->tokens || !s->tokens->tokens)
            return qerr_set(err, "sweep: no tokens to evaluate %s on", m->name);
        if (!s->lm_ref_path && w->metric != M_OUTPUT_SQNR)
            return qerr_set(err, "sweep: no float reference file for %s", m->name);
        return 0;
    }
    if (!s->data || (!s->ref_logits && w->metric != M_OUTPUT_SQNR))
        return qerr_set(err, "sweep: a classifier needs its data and the float reference logits");
    if (s->n_samples < 1 || s->n_samples > s->data->n)
        return qerr_set(err, "%s: a sweep over %lld samples; the dataset has %lld", s->data->path,
                        (long long)s->n_samples, (long long)s->data->n);
    if (qeval_check(m, s->data, err) < 0)
        return -1;
    w->n_batches = (s->n_samples + SWEEP_BATCH - 1) / SWEEP_BATCH;
    /* the float model's metrics, against itself */
    if (s->ref_logits)
        qmetrics_classify(s->ref_logits, s->ref_logits, s->data->labels, s->n_samples,
                          m->n_classes, &w->float_m);
    return 0;
}

/* Configures every scheme once (a bad scheme stops the sweep before it starts). */
static int configure_schemes(struct sweep *w, qerr *err)
{
    const struct qsweep_spec *s = w->s;
    w->pipe = calloc((size_t)s->n_schemes, sizeof *w->pipe);
    if (!w->pipe)
        return qerr_set(err, "sweep: out of memory");
    for (int i = 0; i < s->n_schemes; i++) {
        struct qrecipe r = {0};
        int rc = s->schemes[i] ? qrecipe_add_text(&r, "*", s->schemes[i], err)
                               : qerr_set(err, "no scheme text");
        if (rc == 0 && !qrule_is_float(&r.rules[0]))
            rc = qpipeline_configure(s->host, &r.rules[0], &w->pipe[i], err);
        qrecipe_clear(&r);
        if (rc != 0)
            return qerr_prefix(err, "sweep: scheme %d '%s'", i + 1,
                               s->schemes[i] ? s->schemes[i] : "");
    }
    return 0;
}

static int check_spec(struct sweep *w, qerr *err)
{
    const struct qsweep_spec *s = w->s;
    if (!s || !s->model)
        return qerr_set(err, "sweep: no model");
    w->m = s->model;
    if (!s->host)
        return qerr_set(err, "sweep: no plugin host");
    if ((unsigned)s->mode >= QSWEEP_MODE_COUNT)
        return qerr_set(err, "sweep: unknown mode %d", (int)s->mode);
    if (s->n_groups < 1 || !s->groups || s->n_schemes < 1 || !s->schemes)
        return qerr_set(err, "sweep: %d groups and %d schemes: need at least one of each",
                        s->n_groups, s->n_schemes);
    if (metric_of(w->m, s->metric, &w->metric, err) < 0)
        return -1;
    const int proxy = w->metric == M_WEIGHT_SQNR || w->metric == M_OUTPUT_SQNR;
    if (proxy && s->mode != QSWEEP_ONE)
        return qerr_set(err, "sweep: %s measures one group at a time: use mode one",
                        s->metric);
    if (check_groups(w, err) < 0 || (w->metric != M_WEIGHT_SQNR && check_data(w, err) < 0) ||
        configure_schemes(w, err) < 0)
        return -1;
    return 0;
}

/* ---- the points ---------------------------------------------------------------------
 * Mode one runs group by group; loo runs scheme by scheme, so the tensors
 * every point of a scheme shares are quantized once and found in the cache. */

static int64_t point_at(const struct qsweep_spec *s, int64_t i)
{
    if (s->mode == QSWEEP_LOO) {
        int64_t sc = i / s->n_groups, g = i % s->n_groups;
        return g * s->n_schemes + sc;
    }
    return i;
}

static int plan_points(struct sweep *w, qerr *err)
{
    const struct qsweep_spec *s = w->s;
    const struct qsweep_callbacks *cb = w->cb;
    w->total = (int64_t)s->n_groups * s->n_schemes;
    w->todo = malloc((size_t)w->total * sizeof *w->todo);
    if (!w->todo)
        return qerr_set(err, "sweep: out of memory for %lld points", (long long)w->total);
    for (int64_t i = 0; i < w->total; i++) {
        int64_t p = point_at(s, i);
        if (cb && cb->is_done && cb->is_done(cb->ctx, p / s->n_schemes, p % s->n_schemes))
            w->done++;
        else
            w->todo[w->n_todo++] = p;
    }
    return 0;
}

/* The point's assignment: which tensors take the scheme. */
static int takes_scheme(const struct sweep *w, int t, int64_t g)
{
    int in = w->group_of[t];
    return w->s->mode == QSWEEP_ONE ? in == g : in >= 0 && in != g;
}

static double change_of(const struct sweep *w, const struct qsweep_result *r)
{
    switch (w->metric) {
    case M_CROSS_ENTROPY:
        return r->cls.cross_entropy - w->float_m.cross_entropy;
    case M_TOP1:
        return w->float_m.top1 - r->cls.top1;
    case M_KLD_MEAN:
        return w->m->kind == QMODEL_LM ? r->lm.kld_mean : r->cls.kld_mean;
    case M_PPL:
        return r->lm.ppl - r->lm.ppl_ref;
    case M_KLD_P99:
        return r->lm.kld_p99;
    case M_SAME_TOP:
        return 100.0 - r->lm.same_top_pct;
    case M_WEIGHT_SQNR:
    case M_OUTPUT_SQNR:
        return r->proxy.nsr;
    }
    return 0;
}

/* ---- reporting (under the lock) ------------------------------------------------------ */

static void progress_locked(struct sweep *w)
{
    const struct qsweep_callbacks *cb = w->cb;
    if (!cb || !cb->progress)
        return;
    double dt = now_s() - w->t0;
    cb->progress(cb->ctx, w->done, w->total, dt > 0 ? (double)w->measured / dt : 0);
}

static int report_point(struct sweep *w, const struct qsweep_result *r)
{
    const struct qsweep_callbacks *cb = w->cb;
    qerr e = {{0}};
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    if (cb && cb->on_point && cb->on_point(cb->ctx, r, &e) != 0)
        rc = -1;
    if (rc == 0) {
        w->done++;
        w->finished++;
        w->measured++;
        progress_locked(w);
    }
    pthread_mutex_unlock(&w->lock);
    return rc == 0 ? 0 : fatal(w, &e);
}

static int report_failed(struct sweep *w, int64_t g, int64_t sc, const char *msg)
{
    const struct qsweep_callbacks *cb = w->cb;
    qerr e = {{0}};
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    if (cb && cb->on_failed && cb->on_failed(cb->ctx, g, sc, msg, &e) != 0)
        rc = -1;
    if (rc == 0) {
        w->done++;
        w->finished++;
        progress_locked(w);
    }
    pthread_mutex_unlock(&w->lock);
    return rc == 0 ? 0 : fatal(w, &e);
}

/* ---- evaluating ------------------------------------------------------------------------- */

/* Logits of every sample with weights wts, from the group's cut when one is saved. */
static int eval_classifier(struct worker *k, int64_t g, const float *const *wts,
                           struct qsweep_result *r, qerr *err)
{
    struct sweep *w = k->w;
    const struct qsweep_spec *s = w->s;
    const int nc = w->m->n_classes;
    const struct cut *c = w->group_cut && w->group_cut[g] >= 0 ? &w->cuts[w->group_cut[g]] : NULL;
    for (int64_t b = 0; b < w->n_batches; b++) {
        if (should_stop(w))
            return QEVAL_CANCELLED;
        int64_t start = b * SWEEP_BATCH;
        int count = (int)(s->n_samples - start < SWEEP_BATCH ? s->n_samples - start : SWEEP_BATCH);
        float *out = k->logits + start * nc;
        int rc = c ? qforward_run_from(k->f, wts, c->node, c->saved + start * c->floats, count,
                                       out, err)
                   : qforward_run(k->f, wts, s->data->inputs + start * s->data->sample_numel,
                                  count, out, err);
        if (rc < 0)
            return -1;
    }
    qmetrics_classify(k->logits, s->ref_logits, s->data->labels, s->n_samples, nc, &r->cls);
    return 0;
}

static int eval_lm(struct worker *k, int64_t g, const float *const *wts, struct qsweep_result *r,
                   qerr *err)
{
    struct sweep *w = k->w;
    const struct qsweep_spec *s = w->s;
    /* one thread inside: the points already share out the cores */
    struct qlm_opts o = s->lm;
    o.threads = 1;
    struct qprogress p = {.cancel = w->cb ? w->cb->cancel : NULL};
    const struct cut *c = w->group_cut && w->group_cut[g] >= 0 ? &w->cuts[w->group_cut[g]] : NULL;
    struct qlm_cuts from = {.from = c ? &c->at : NULL, .x_from = c ? c->saved : NULL};
    return qlm_perplexity_cut(w->m, wts, s->tokens->tokens, s->tokens->n, &o, &p, s->lm_ref_path,
                              NULL, c ? &from : NULL, &r->lm, err);
}

/* Quantizes, evaluates and reports one point. -1 only for a fatal error. */
static int run_point(struct worker *k, int64_t p)
{
    struct sweep *w = k->w;
    const struct qsweep_spec *s = w->s;
    const struct qmodel *m = w->m;
    const int64_t g = p / s->n_schemes, sc = p % s->n_schemes;
    double t0 = now_s();
    for (int t = 0; t < m->n_tensors; t++)
        k->config[t] = takes_scheme(w, t, g) ? w->pipe[sc] : NULL;
    struct qassign a = {.n_tensors = m->n_tensors, .config = k->config};
    struct qlab_host host = {.struct_size = sizeof host, .ctx = w, .cancelled = host_cancelled};
    struct qweights qw;
    qerr err = {{0}};
    if (qweights_build(m, &a, w->cache, &host, NULL, &qw, &err) < 0) {
        if (should_stop(w))
            return 0;   /* "cancelled": the point is left for a resumed run */
        return report_failed(w, g, sc, err.msg);
    }
    struct qsweep_result r = {.group = g, .scheme = sc};
    for (int t = 0; t < m->n_tensors; t++)
        if (takes_scheme(w, t, g))
            r.bits += qw.t[t].bits;
    int rc;
    if (w->metric == M_WEIGHT_SQNR)
        rc = qsweep_proxy_weights(s, g, qw.ptrs, &r.proxy);
    else if (w->metric == M_OUTPUT_SQNR)
        rc = qsweep_proxy_outputs(w->cal, &k->proxy, s, g, qw.ptrs, &r.proxy, &err);
    else
        rc = m->kind == QMODEL_LM ? eval_lm(k, g, qw.ptrs, &r, &err)
                                  : eval_classifier(k, g, qw.ptrs, &r, &err);
    qweights_clear(&qw);
    if (rc == QEVAL_CANCELLED)
        return 0;
    if (rc != 0)
        return fatal(w, &err);
    r.change = change_of(w, &r);
    r.seconds = now_s() - t0;
    return report_point(w, &r);
}

static void *points_main(void *arg)
{
    struct worker *k = arg;
    struct sweep *w = k->w;
    for (;;) {
        if (should_stop(w))
            break;
        int64_t i = atomic_fetch_add(&w->next, 1);
        if (i >= w->n_todo || run_point(k, w->todo[i]) < 0)
            break;
    }
    return NULL;
}

/* ---- saving classifier cuts ---------------------------------------------------------------
 * Mode one: the nodes before a group's first node see float weights only,
 * so their activations are the float model's, computed once here. */

static int cmp_benefit(const void *a, const void *b)
{
    const struct cut *x = a, *y = b;
    if (x->benefit != y->benefit)
        return x->benefit > y->benefit ? -1 : 1;
    return x->node - y->node;
}

/* The node where group g's tensors are first used. */
static int group_first_node(const struct sweep *w, int g)
{
    const struct qsweep_group *gr = &w->s->groups[g];
    int first = w->m->n_nodes;
    for (int i = 0; i < gr->n_tensors; i++) {
        int node = qsweep_first_use(w->m, gr->tensors[i]);
        if (node < first)
            first = node;
    }
    return first;
}

/* The LM cut where group g's tensors are first used, as a node number
 * (2 * layer + ffn; below 1: nothing to skip). */
static struct qllm_cut group_first_cut(const struct sweep *w, int g)
{
    const struct qsweep_group *gr = &w->s->groups[g];
    struct qllm_cut first = {w->m->llm->c.n_layers + 1, 0};
    for (int i = 0; i < gr->n_tensors; i++) {
        struct qllm_cut c = qllm_first_use(w->m, gr->tensors[i]);
        if (qllm_cut_cmp(c, first) < 0)
            first = c;
    }
    return first;
}

/* The cut node where group g starts (classifier node or LM half-block). */
static int group_cut_node(const struct sweep *w, int g)
{
    if (w->m->kind != QMODEL_LM)
        return group_first_node(w, g);
    struct qllm_cut c = group_first_cut(w, g);
    return c.layer < 0 ? 0 : 2 * c.layer + c.ffn;
}

/* Picks the cuts worth saving within the byte budget, most useful first,
 * and allocates them: units (samples or chunks) x floats_per_unit each. A
 * cut that does not fit leaves its groups on full passes: slower, never
 * different. f: the classifier's forward (for the sizes), else NULL. */
static int plan_cuts(struct sweep *w, const struct qforward *f, int64_t units,
                     int64_t lm_floats, qerr *err)
{
    const struct qsweep_spec *s = w->s;
    const struct qmodel *m = w->m;
    const int max_node = m->kind == QMODEL_LM ? 2 * m->llm->c.n_layers : m->n_nodes - 1;
    w->group_cut = malloc((size_t)s->n_groups * sizeof *w->group_cut);
    int *pending = calloc((size_t)s->n_groups, sizeof *pending);
    w->cuts = calloc((size_t)s->n_groups, sizeof *w->cuts);
    if (!w->group_cut || !pending || !w->cuts) {
        free(pending);
        return qerr_set(err, "sweep: out of memory");
    }
    for (int64_t i = 0; i < w->n_todo; i++)
        pending[w->todo[i] / s->n_schemes]++;
    int n = 0;
    for (int g = 0; g < s->n_groups; g++) {
        w->group_cut[g] = -1;
        int node = group_cut_node(w, g);
        if (!pending[g] || node <= 0 || node > max_node)
            continue;   /* a cut before the first node saves nothing */
        int c = 0;
        while (c < n && w->cuts[c].node != node)
            c++;
        if (c == n) {
            w->cuts[n] = (struct cut){.node = node};
            if (m->kind == QMODEL_LM) {
                w->cuts[n].at = (struct qllm_cut){node / 2, node % 2};
                w->cuts[n].floats = lm_floats;
            } else {
                w->cuts[n].floats = qforward_cut_floats(f, node);
            }
            n++;
        }
        w->cuts[c].benefit += (int64_t)pending[g] * node;
    }
    free(pending);
    qsort(w->cuts, (size_t)n, sizeof *w->cuts, cmp_benefit);
    size_t budget = s->cache_bytes ? s->cache_bytes : SWEEP_CACHE_BYTES, used = 0;
    for (int c = 0; c < n && c < QLM_MAX_CUTS; c++) {
        struct cut *cu = &w->cuts[c];
        double bytes = (double)units * (double)cu->floats * sizeof(float);
        if (cu->floats <= 0 || bytes > (double)(budget - used))
            continue;
        cu->saved = malloc((size_t)bytes);
        if (cu->saved)
            used += (size_t)bytes;
    }
    /* keep the saved ones, in the order found */
    w->n_cuts = 0;
    for (int c = 0; c < n; c++) {
        if (w->cuts[c].saved)
            w->cuts[w->n_cuts++] = w->cuts[c];
    }
    w->cut_nodes = malloc((size_t)(w->n_cuts ? w->n_cuts : 1) * sizeof *w->cut_nodes);
    if (!w->cut_nodes)
        return qerr_set(err, "sweep: out of memory");
    for (int c = 0; c < w->n_cuts; c++)
        w->cut_nodes[c] = w->cuts[c].node;
    for (int g = 0; g < s->n_groups; g++) {
        int node = group_cut_node(w, g);
        for (int c = 0; c < w->n_cuts; c++)
            if (w->cuts[c].node == node)
                w->group_cut[g] = c;
    }
    return 0;
}

/* LM: one float pass (one thread, as every point's) saving every cut of
 * every chunk. */
static int save_lm_cuts(struct sweep *w, qerr *err)
{
    const struct qsweep_spec *s = w->s;
    struct qllm_cut at[QLM_MAX_CUTS];
    float *x[QLM_MAX_CUTS];
    for (int c = 0; c < w->n_cuts; c++) {
        at[c] = w->cuts[c].at;
        x[c] = w->cuts[c].saved;
    }
    struct qlm_opts o = s->lm;
    o.threads = 1;
    struct qprogress p = {.cancel = w->cb ? w->cb->cancel : NULL};
    struct qlm_cuts save = {.n_save = w->n_cuts, .save = at, .x_save = x};
    struct qlm_metrics unused;
    return qlm_perplexity_cut(w->m, NULL, s->tokens->tokens, s->tokens->n, &o, &p, NULL, NULL,
                              &save, &unused, err);
}

static void *cuts_main(void *arg);
static void run_workers(struct worker *ks, int n, void *(*fn)(void *));

/* Saves the cuts prefix reuse starts points from (mode one). */
static int prepare_cuts(struct sweep *w, struct worker *ks, int n, qerr *err)
{
    const struct qsweep_spec *s = w->s;
    if (w->metric == M_OUTPUT_SQNR)
        return qsweep_proxy_prepare(s, &w->cal, err);
    if (w->metric == M_WEIGHT_SQNR || s->mode != QSWEEP_ONE || !s->prefix_reuse)
        return 0;
    if (w->m->kind == QMODEL_CLASSIFIER) {
        if (plan_cuts(w, ks[0].f, s->n_samples, 0, err) < 0)
            return -1;
        if (w->n_cuts > 0) {
            run_workers(ks, n < w->n_batches ? n : (int)w->n_batches, cuts_main);
            atomic_store(&w->next, 0);
        }
        return 0;
    }
    int n_ctx;
    int64_t n_chunks;
    if (qlm_chunking(w->m, s->tokens->tokens, s->tokens->n, &s->lm, &n_ctx, &n_chunks, err) < 0 ||
        plan_cuts(w, NULL, n_chunks, (int64_t)n_ctx * w->m->llm->c.dim, err) < 0)
        return -1;
    if (w->n_cuts == 0)
        return 0;
    int rc = save_lm_cuts(w, err);
    return rc == QEVAL_CANCELLED ? 0 : rc;  /* cancelled: the points loop stops at once */
}

/* Float passes over batches handed out by w->next, saving every cut. */
static void *cuts_main(void *arg)
{
    struct worker *k = arg;
    struct sweep *w = k->w;
    const struct qsweep_spec *s = w->s;
    for (;;) {
        if (should_stop(w))
            break;
        int64_t b = atomic_fetch_add(&w->next, 1);
        if (b >= w->n_batches)
            break;
        int64_t start = b * SWEEP_BATCH;
        int count = (int)(s->n_samples - start < SWEEP_BATCH ? s->n_samples - start : SWEEP_BATCH);
        for (int c = 0; c < w->n_cuts; c++)
            k->cut_ptrs[c] = w->cuts[c].saved + start * w->cuts[c].floats;
        qerr err;
        if (qforward_run_capture(k->f, NULL, s->data->inputs + start * s->data->sample_numel,
                                 count, k->logits + start * w->m->n_classes, w->n_cuts,
                                 w->cut_nodes, k->cut_ptrs, &err) < 0) {
            fatal(w, &err);
            break;
        }
    }
    return NULL;
}

/* ---- threads ------------------------------------------------------------------------------ */

static void workers_free(struct worker *ks, int n)
{
    for (int i = 0; ks && i < n; i++) {
        qforward_free(ks[i].f);
        free(ks[i].logits);
        free(ks[i].cut_ptrs);
        free(ks[i].config);
        qsweep_proxy_scratch_free(ks[i].proxy);
    }
    free(ks);
}

static int workers_new(struct sweep *w, int n, struct worker **out, qerr *err)
{
    const struct qmodel *m = w->m;
    struct worker *ks = calloc((size_t)n, sizeof *ks);
    if (!ks)
        return qerr_set(err, "sweep: out of memory");
    for (int i = 0; i < n; i++) {
        struct worker *k = &ks[i];
        k->w = w;
        k->config = calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof *k->config);
        k->cut_ptrs = calloc((size_t)w->s->n_groups, sizeof *k->cut_ptrs);
        if (!k->config || !k->cut_ptrs)
            goto oom;
        if (m->kind == QMODEL_LM || w->metric == M_WEIGHT_SQNR || w->metric == M_OUTPUT_SQNR)
            continue;
        int batch = w->s->n_samples < SWEEP_BATCH ? (int)w->s->n_samples : SWEEP_BATCH;
        k->logits = malloc((size_t)w->s->n_samples * (size_t)m->n_classes * sizeof *k->logits);
        if (!k->logits)
            goto oom;
        if (qforward_new(m, batch, &k->f, err) < 0) {
            workers_free(ks, n);
            return -1;
        }
    }
    *out = ks;
    return 0;
oom:
    workers_free(ks, n);
    return qerr_set(err, "sweep: out of memory for %d workers", n);
}

/* fn on n workers: the caller runs the first. A thread that cannot start
 * leaves its share to the others. */
static void run_workers(struct worker *ks, int n, void *(*fn)(void *))
{
    int started[SWEEP_MAX_THREADS] = {0};
    for (int i = 1; i < n; i++)
        started[i] = pthread_create(&ks[i].tid, NULL, fn, &ks[i]) == 0;
    fn(&ks[0]);
    for (int i = 1; i < n; i++)
        if (started[i])
            pthread_join(ks[i].tid, NULL);
}

/* ---- the sweep ------------------------------------------------------------------------------ */

static void sweep_clear(struct sweep *w)
{
    if (w->pipe)
        for (int i = 0; i < w->s->n_schemes; i++)
            qpipeline_free(w->pipe[i]);
    free(w->pipe);
    free(w->group_of);
    free(w->todo);
    for (int c = 0; c < w->n_cuts; c++)
        free(w->cuts[c].saved);
    free(w->cuts);
    free(w->cut_nodes);
    free(w->group_cut);
    qdeq_cache_free(w->own_cache);
    qsweep_proxy_cal_free(w->cal);
}

/* The tensors of every group once, in float bytes: what loo keeps quantized. */
static size_t groups_bytes(const struct sweep *w)
{
    size_t bytes = 0;
    for (int g = 0; g < w->s->n_groups; g++)
        bytes += (size_t)w->s->groups[g].numel * sizeof(float);
    return bytes;
}

int qsweep_run(const struct qsweep_spec *s, const struct qsweep_callbacks *cb, qerr *err)
{
    struct sweep w = {.s = s, .cb = cb};
    struct worker *ks = NULL;
    int rc = -1, n = 0, blas = -1;
    atomic_init(&w.next, 0);
    atomic_init(&w.stop, 0);
    pthread_mutex_init(&w.lock, NULL);
    if (check_spec(&w, err) < 0 || plan_points(&w, err) < 0)
        goto out;
    w.t0 = now_s();
    if (cb && cb->progress)
        cb->progress(cb->ctx, w.done, w.total, 0);
    if (w.n_todo == 0) {
        rc = 0;
        goto out;
    }
    w.cache = s->cache;
    if (!w.cache && s->mode == QSWEEP_LOO) {
        /* private: every point of a scheme shares all but one group's tensors */
        if (!(w.cache = w.own_cache = qdeq_cache_new(groups_bytes(&w) + 1))) {
            qerr_set(err, "sweep: out of memory");
            goto out;
        }
    }
    n = s->threads > 0 ? s->threads : core_count();
    if (n > SWEEP_MAX_THREADS)
        n = SWEEP_MAX_THREADS;
    if (n > w.n_todo)
        n = (int)w.n_todo;
    if (workers_new(&w, n, &ks, err) < 0)
        goto out;
    /* each forward is single-threaded: the points share out the cores */
    blas = openblas_get_num_threads();
    openblas_set_num_threads(1);
    if (prepare_cuts(&w, ks, n, err) < 0)
        goto out;
    w.t0 = now_s();
    if (!should_stop(&w))
        run_workers(ks, n, points_main);
    if (w.failed) {
        if (err)
            *err = w.err;
        goto out;
    }
    rc = w.finished < w.n_todo ? QEVAL_CANCELLED : 0;
out:
    if (blas > 0)
        openblas_set_num_threads(blas);
    workers_free(ks, n);
    sweep_clear(&w);
    pthread_mutex_destroy(&w.lock);
    return rc;
}
