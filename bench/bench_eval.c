/* bench_eval.c — times qlab's forward pass over a dataset (best of N), for bench/run.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/workbench.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_eval MODEL DATA [RECIPE] [REPEAT] [THREADS] [BATCH]\n");
        return 2;
    }
    const char *recipe = argc > 3 ? argv[3] : "";
    int repeat = argc > 4 ? atoi(argv[4]) : 5;
    struct qeval_opts o = {.threads = argc > 5 ? atoi(argv[5]) : 0,
                           .batch = argc > 6 ? atoi(argv[6]) : 64};
    struct wb_options wo = {.no_store = 1};
    struct wb *w;
    struct qdataset *d = NULL;
    qerr err;
    if (wb_open(&wo, &w, &err) < 0 || wb_load_model(w, argv[1], &err) < 0 ||
        wb_set_recipe(w, recipe, &err) < 0 || wb_refresh(w, NULL, &err) < 0 ||
        qdataset_open(argv[2], NULL, &d, &err) < 0 || qeval_check(wb_model(w), d, &err) < 0) {
        fprintf(stderr, "bench_eval: %s\n", err.msg);
        return 1;
    }
    const struct qmodel *m = wb_model(w);
    float *logits = malloc((size_t)d->n * (size_t)m->n_classes * sizeof *logits);
    double best = 1e300;
    for (int r = 0; r < repeat; r++) {
        double t0 = now_s();
        if (qeval_logits(m, wb_weights(w)->ptrs, d, d->n, &o, NULL, "bench", logits, &err) != 0) {
            fprintf(stderr, "bench_eval: %s\n", err.msg);
            return 1;
        }
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    struct qclass_metrics mt;
    qmetrics_classify(logits, NULL, d->labels, d->n, m->n_classes, &mt);
    printf("{\"images\": %lld, \"seconds\": %.6f, \"images_per_s\": %.1f, \"top1\": %.2f}\n",
           (long long)d->n, best, (double)d->n / best, mt.top1);
    free(logits);
    qdataset_free(d);
    wb_close(w);
    return 0;
}
