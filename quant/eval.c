/* eval.c — batched forward passes over a dataset, split across threads. */
#include "eval.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"

int qeval_check(const struct qmodel *m, const struct qdataset *d, qerr *err)
{
    if (d->sample_numel != m->in_numel) {
        char ds[96], ms[96];
        qshape_format(d->shape, d->ndim, ds, sizeof ds);
        qshape_format(m->in_shape, m->in_ndim, ms, sizeof ms);
        return qerr_set(err, "%s: samples are %s (%lld values) but model %s takes %s (%lld)",
                        d->path, ds, (long long)d->sample_numel, m->name, ms,
                        (long long)m->in_numel);
    }
    if (d->max_label >= m->n_classes)
        return qerr_set(err, "%s: label %d is out of range for model %s with %d classes",
                        d->labels_path ? d->labels_path : d->path, (int)d->max_label, m->name,
                        m->n_classes);
    return 0;
}

/* ---- the worker pool ---------------------------------------------------- */

struct job {
    const struct qmodel *m;
    const float *const *weights;
    const struct qdataset *d;
    int64_t n;
    int batch;
    float *logits;
    const struct qprogress *p;
    const char *phase;
    pthread_mutex_t lock;
    int64_t next;          /* first sample not yet taken */
    int64_t done;          /* samples finished */
    int failed, cancelled;
    qerr err;
};

static int job_cancelled(struct job *j)
{
    return j->p && j->p->cancel && atomic_load(j->p->cancel);
}

static void *worker(void *arg)
{
    struct job *j = arg;
    struct qforward *f = NULL;
    qerr err;
    if (qforward_new(j->m, j->batch, &f, &err) < 0) {
        pthread_mutex_lock(&j->lock);
        if (!j->failed)
            j->err = err;
        j->failed = 1;
        pthread_mutex_unlock(&j->lock);
        return NULL;
    }
    int k = j->m->n_classes;
    for (;;) {
        pthread_mutex_lock(&j->lock);
        int stop = j->failed || j->cancelled || j->next >= j->n;
        if (!stop && job_cancelled(j))
            stop = j->cancelled = 1;
        int64_t start = j->next;
        int count = (int)(j->n - start < j->batch ? j->n - start : j->batch);
        if (!stop)
            j->next += count;
        pthread_mutex_unlock(&j->lock);
        if (stop)
            break;
        const float *in = j->d->inputs + start * j->d->sample_numel;
        int rc = qforward_run(f, j->weights, in, count, j->logits + start * k, &err);
        pthread_mutex_lock(&j->lock);
        if (rc < 0) {
            if (!j->failed)
                j->err = err;
            j->failed = 1;
        } else {
            j->done += count;
            if (j->p && j->p->fn)
                j->p->fn(j->p->ctx, j->phase, j->done, j->n);
        }
        pthread_mutex_unlock(&j->lock);
    }
    qforward_free(f);
    return NULL;
}

static int core_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

int qeval_logits(const struct qmodel *m, const float *const *weights, const struct qdataset *d,
                 int64_t n, const struct qeval_opts *o, const struct qprogress *p,
                 const char *phase, float *logits, qerr *err)
{
    if (n < 0 || n > d->n)
        return qerr_set(err, "%s: asked for %lld samples, the dataset has %lld", d->path,
                        (long long)n, (long long)d->n);
    struct job j = {.m = m, .weights = weights, .d = d, .n = n, .logits = logits, .p = p,
                    .phase = phase};
    j.batch = o && o->batch > 0 ? o->batch : 64;
    int threads = o && o->threads > 0 ? o->threads : core_count();
    int64_t batches = (n + j.batch - 1) / j.batch;
    if (threads > batches)
        threads = batches > 0 ? (int)batches : 1;
    /* Batches run in parallel; each matrix product then stays on one core,
     * which is faster for the small products of a batch than splitting. */
    openblas_set_num_threads(1);
    pthread_mutex_init(&j.lock, NULL);
    pthread_t tids[64];
    int started = 0;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tids[started], NULL, worker, &j) != 0)
            break;
        started++;
    }
    worker(&j);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    pthread_mutex_destroy(&j.lock);
    if (j.failed) {
        if (err)
            *err = j.err;
        return -1;
    }
    return j.cancelled ? QEVAL_CANCELLED : 0;
}
