/* bench_sweep.c — times a one-at-a-time sweep with naive full passes and with prefix reuse, for bench/sweep.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/workbench.h"
#include "quant/sweep.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The changes of every point, in (group, scheme) order; failed points NaN. */
struct table {
    int n_schemes;
    double *change;
    int64_t points;
};

static int on_point(void *ctx, const struct qsweep_result *r, qerr *err)
{
    (void)err;
    struct table *t = ctx;
    t->change[r->group * t->n_schemes + r->scheme] = r->change;
    t->points++;
    return 0;
}

static int on_failed(void *ctx, int64_t g, int64_t s, const char *msg, qerr *err)
{
    (void)msg;
    (void)err;
    struct table *t = ctx;
    t->change[g * t->n_schemes + s] = -1e300;
    t->points++;
    return 0;
}

static int split_schemes(char *text, const char **out, int max)
{
    int n = 0;
    for (char *tok = strtok(text, ";"); tok && n < max; tok = strtok(NULL, ";"))
        out[n++] = tok;
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_sweep MODEL DATA SCHEMES [THREADS] [N_CTX] [REPEAT]\n"
                        "  a per-tensor one-at-a-time sweep, naive and with prefix reuse\n");
        return 2;
    }
    const int threads = argc > 4 ? atoi(argv[4]) : 0;
    const int n_ctx = argc > 5 ? atoi(argv[5]) : 256;
    const int repeat = argc > 6 ? atoi(argv[6]) : 3;
    char *scheme_text = strdup(argv[3]);
    const char *schemes[64];
    const int ns = split_schemes(scheme_text, schemes, 64);

    struct wb_options wo = {.no_store = 1};
    struct wb *w;
    qerr err;
    if (wb_open(&wo, &w, &err) < 0 || wb_load_model(w, argv[1], &err) < 0) {
        fprintf(stderr, "bench_sweep: %s\n", err.msg);
        return 1;
    }
    const struct qmodel *m = wb_model(w);
    struct qsweep_spec s = {.model = m, .host = wb_plugins(w), .mode = QSWEEP_ONE,
                            .schemes = schemes, .n_schemes = ns, .threads = threads};
    struct qdataset *d = NULL;
    struct qlm_data *toks = NULL;
    float *ref_logits = NULL;
    char ref_path[64] = "";
    if (m->kind == QMODEL_LM) {
        s.lm = (struct qlm_opts){.n_ctx = n_ctx};
        snprintf(ref_path, sizeof ref_path, "/tmp/qlab-bench-sweep-%d.ref", (int)getpid());
        struct qlm_metrics fm;
        if (qlm_data_open(argv[2], m->llm->tok, m->llm->tok_note, m->llm->c.vocab_size, &toks,
                          &err) < 0 ||
            qlm_perplexity(m, NULL, toks->tokens, toks->n, &s.lm, NULL, NULL, ref_path, &fm,
                           &err) != 0) {
            fprintf(stderr, "bench_sweep: %s\n", err.msg);
            return 1;
        }
        s.tokens = toks;
        s.lm_ref_path = ref_path;
    } else {
        struct qeval_opts o = {0};
        if (qdataset_open(argv[2], NULL, &d, &err) < 0 || qeval_check(m, d, &err) < 0) {
            fprintf(stderr, "bench_sweep: %s\n", err.msg);
            return 1;
        }
        ref_logits = malloc((size_t)d->n * (size_t)m->n_classes * sizeof *ref_logits);
        if (!ref_logits ||
            qeval_logits(m, NULL, d, d->n, &o, NULL, "reference", ref_logits, &err) != 0) {
            fprintf(stderr, "bench_sweep: %s\n", err.msg);
            return 1;
        }
        s.data = d;
        s.n_samples = d->n;
        s.ref_logits = ref_logits;
    }
    struct qsweep_group *g;
    int ng;
    if (qsweep_groups(m, QSWEEP_TENSOR, NULL, &g, &ng, &err) < 0) {
        fprintf(stderr, "bench_sweep: %s\n", err.msg);
        return 1;
    }
    s.groups = g;
    s.n_groups = ng;

    /* best of `repeat` for each, alternating; both tables must agree to the bit */
    struct table t[2];
    double best[2] = {1e300, 1e300};
    for (int k = 0; k < 2; k++) {
        t[k].n_schemes = ns;
        t[k].change = calloc((size_t)ng * ns, sizeof *t[k].change);
    }
    for (int r = 0; r < repeat; r++)
        for (int k = 0; k < 2; k++) {
            s.prefix_reuse = k;
            t[k].points = 0;
            struct qsweep_callbacks cb = {.ctx = &t[k], .on_point = on_point,
                                          .on_failed = on_failed};
            double t0 = now_s();
            if (qsweep_run(&s, &cb, &err) != 0) {
                fprintf(stderr, "bench_sweep: %s\n", err.msg);
                return 1;
            }
            double dt = now_s() - t0;
            best[k] = dt < best[k] ? dt : best[k];
        }
    int same = memcmp(t[0].change, t[1].change, (size_t)ng * ns * sizeof(double)) == 0;
    int64_t points = (int64_t)ng * ns;
    printf("{\"groups\": %d, \"schemes\": %d, \"points\": %lld, \"naive_s\": %.4f, "
           "\"reuse_s\": %.4f, \"naive_points_per_s\": %.1f, \"reuse_points_per_s\": %.1f, "
           "\"speedup\": %.3f, \"same_table\": %s}\n",
           ng, ns, (long long)points, best[0], best[1], (double)points / best[0],
           (double)points / best[1], best[0] / best[1], same ? "true" : "false");
    if (ref_path[0])
        unlink(ref_path);
    qsweep_groups_free(g, ng);
    free(t[0].change);
    free(t[1].change);
    free(ref_logits);
    qdataset_free(d);
    qlm_data_free(toks);
    free(scheme_text);
    wb_close(w);
    return same ? 0 : 1;
}
