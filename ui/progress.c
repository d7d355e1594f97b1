/* progress.c — progress a worker thread reports through a qprogress, read by the UI thread. */
#include <stdio.h>
#include <string.h>

#include "ui.h"

/* Called on the engine's threads (a sweep reports from several, one at a
 * time under its own lock): only the snapshot is touched. */
static void on_progress(void *ctx, const char *phase, int64_t done, int64_t total)
{
    struct ui_progress *p = ctx;
    pthread_mutex_lock(&p->lock);
    snprintf(p->phase, sizeof p->phase, "%s", phase ? phase : "");
    p->done = done;
    p->total = total;
    pthread_mutex_unlock(&p->lock);
}

void ui_progress_init(struct ui_progress *p)
{
    memset(p->phase, 0, sizeof p->phase);
    pthread_mutex_init(&p->lock, NULL);
    p->done = p->total = 0;
    atomic_init(&p->cancel, 0);
    p->q = (struct qprogress){.fn = on_progress, .ctx = p, .cancel = &p->cancel};
}

void ui_progress_destroy(struct ui_progress *p)
{
    pthread_mutex_destroy(&p->lock);
}

void ui_progress_read(struct ui_progress *p, char *phase, size_t size, int64_t *done,
                      int64_t *total)
{
    pthread_mutex_lock(&p->lock);
    if (phase && size)
        snprintf(phase, size, "%s", p->phase);
    if (done)
        *done = p->done;
    if (total)
        *total = p->total;
    pthread_mutex_unlock(&p->lock);
}
