/* job.c — an evaluation on a worker thread, with progress to poll and a cancel flag. */
#include "job.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wb_job {
    struct wb *w;
    struct wb_eval_request req;
    char *data, *labels;
    struct qprogress progress;
    atomic_int cancel;
    atomic_int finished;
    pthread_t thread;
    pthread_mutex_t lock;     /* guards the progress fields */
    char phase[32];
    int64_t done, total;
    struct timespec start;
    int rc;
    struct wb_eval_outcome outcome;
    qerr err;
};

static void on_progress(void *ctx, const char *phase, int64_t done, int64_t total)
{
    struct wb_job *j = ctx;
    pthread_mutex_lock(&j->lock);
    snprintf(j->phase, sizeof j->phase, "%s", phase);
    j->done = done;
    j->total = total;
    pthread_mutex_unlock(&j->lock);
}

static void *run(void *arg)
{
    struct wb_job *j = arg;
    j->rc = wb_eval(j->w, &j->req, &j->outcome, &j->err);
    atomic_store(&j->finished, 1);
    return NULL;
}

int wb_job_start_eval(struct wb *w, const struct wb_eval_request *r, struct wb_job **out,
                      qerr *err)
{
    *out = NULL;
    struct wb_job *j = calloc(1, sizeof *j);
    if (!j)
        return qerr_set(err, "out of memory");
    j->w = w;
    j->req = *r;
    j->data = r->data ? strdup(r->data) : NULL;
    j->labels = r->labels ? strdup(r->labels) : NULL;
    j->req.data = j->data;
    j->req.labels = j->labels;
    atomic_init(&j->cancel, 0);
    atomic_init(&j->finished, 0);
    j->progress = (struct qprogress){.fn = on_progress, .ctx = j, .cancel = &j->cancel};
    j->req.progress = &j->progress;
    snprintf(j->phase, sizeof j->phase, "starting");
    pthread_mutex_init(&j->lock, NULL);
    clock_gettime(CLOCK_MONOTONIC, &j->start);
    if (pthread_create(&j->thread, NULL, run, j) != 0) {
        pthread_mutex_destroy(&j->lock);
        free(j->data);
        free(j->labels);
        free(j);
        return qerr_set(err, "cannot start a worker thread");
    }
    *out = j;
    return 0;
}

void wb_job_poll(struct wb_job *j, struct wb_job_status *s)
{
    pthread_mutex_lock(&j->lock);
    snprintf(s->phase, sizeof s->phase, "%s", j->phase);
    s->done = j->done;
    s->total = j->total;
    pthread_mutex_unlock(&j->lock);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    s->elapsed = (double)(now.tv_sec - j->start.tv_sec) +
                 (double)(now.tv_nsec - j->start.tv_nsec) * 1e-9;
    s->finished = atomic_load(&j->finished);
    s->cancel_requested = atomic_load(&j->cancel);
}

void wb_job_cancel(struct wb_job *j)
{
    atomic_store(&j->cancel, 1);
}

int wb_job_finish(struct wb_job *j, struct wb_eval_outcome *o, qerr *err)
{
    pthread_join(j->thread, NULL);
    int rc = j->rc;
    if (o)
        *o = j->outcome;
    if (err)
        *err = j->err;
    pthread_mutex_destroy(&j->lock);
    free(j->data);
    free(j->labels);
    free(j);
    return rc;
}
