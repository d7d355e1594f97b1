/* job.h — runs an evaluation on a worker thread, with progress to poll and a cancel flag. */
#ifndef QLAB_JOB_H
#define QLAB_JOB_H

#include <stdint.h>

#include "workbench.h"

struct wb_job;

struct wb_job_status {
    int finished;            /* the worker has returned; call wb_job_finish */
    char phase[32];          /* "quantize", "float reference", "evaluate" */
    int64_t done, total;     /* samples (or steps) of the phase */
    double elapsed;          /* seconds since start */
    int cancel_requested;
};

/* Starts wb_eval(w, r) on a thread (r's strings are copied). Until
 * wb_job_finish returns, the caller must not touch w. */
int wb_job_start_eval(struct wb *w, const struct wb_eval_request *r, struct wb_job **out,
                      qerr *err);
void wb_job_poll(struct wb_job *j, struct wb_job_status *s);
void wb_job_cancel(struct wb_job *j);
/* Joins the thread, frees the job, and returns what wb_eval returned. */
int wb_job_finish(struct wb_job *j, struct wb_eval_outcome *o, qerr *err);

#endif
