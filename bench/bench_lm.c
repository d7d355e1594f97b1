/* bench_lm.c — times qlab's perplexity evaluation of a language model over all chunks (best of N), for bench/lm.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "app/workbench.h"
#include "quant/llm.h"
#include "quant/lm_data.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The ids the run evaluates (every chunk), for the peer to read. */
static int write_ids(const char *path, const int32_t *ids, int64_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = fwrite(ids, sizeof *ids, (size_t)n, f);
    return fclose(f) == 0 && put == (size_t)n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_lm MODEL DATA N_CTX [REPEAT] [THREADS] [IDS_OUT] [RECIPE]\n"
                        "  DATA: text (tokenized by the model's tokenizer) or .i32 ids;\n"
                        "  IDS_OUT: where to write the evaluated ids (int32), for the peer\n");
        return 2;
    }
    int n_ctx = atoi(argv[3]);
    int repeat = argc > 4 ? atoi(argv[4]) : 3;
    int threads = argc > 5 ? atoi(argv[5]) : 0;
    const char *ids_out = argc > 6 && argv[6][0] ? argv[6] : NULL;
    const char *recipe = argc > 7 ? argv[7] : "";
    struct wb_options wo = {.no_store = 1};
    struct wb *w = NULL;
    struct qlm_data *d = NULL;
    qerr err;
    if (wb_open(&wo, &w, &err) < 0 || wb_load_model(w, argv[1], &err) < 0 ||
        wb_set_recipe(w, recipe, &err) < 0 || wb_refresh(w, NULL, &err) < 0)
        goto fail;
    const struct qmodel *m = wb_model(w);
    if (m->kind != QMODEL_LM) {
        qerr_set(&err, "%s is not a language model", argv[1]);
        goto fail;
    }
    if (qlm_data_open(argv[2], m->llm->tok, m->llm->tok_note, m->llm->c.vocab_size, &d,
                      &err) < 0)
        goto fail;
    if (n_ctx < 3 || d->n < n_ctx) {
        qerr_set(&err, "%s: %lld tokens, n_ctx %d: need n_ctx >= 3 and one chunk", argv[2],
                 (long long)d->n, n_ctx);
        goto fail;
    }
    int64_t chunks = d->n / n_ctx;
    if (ids_out && write_ids(ids_out, d->tokens, chunks * n_ctx) < 0) {
        qerr_set(&err, "%s: cannot write the token ids", ids_out);
        goto fail;
    }
    const struct qweights *qw = wb_weights(w);
    const float *const *weights = qw->n_quantized ? qw->ptrs : NULL;
    struct qlm_opts o = {.n_ctx = n_ctx, .threads = threads};
    struct qlm_metrics mt;
    double best = 1e300;
    for (int r = 0; r < (repeat > 0 ? repeat : 1); r++) {
        double t0 = now_s();
        if (qlm_perplexity(m, weights, d->tokens, d->n, &o, NULL, NULL, NULL, &mt, &err) != 0)
            goto fail;
        double t = now_s() - t0;
        best = t < best ? t : best;
    }
    int64_t evaluated = mt.n_chunks * n_ctx;
    printf("{\"chunks\": %lld, \"tokens\": %lld, \"scored\": %lld, \"seconds\": %.6f, "
           "\"tokens_per_s\": %.1f, \"ppl\": %.9g}\n",
           (long long)mt.n_chunks, (long long)evaluated, (long long)mt.n_tokens_scored, best,
           (double)evaluated / best, mt.ppl);
    qlm_data_free(d);
    wb_close(w);
    return 0;
fail:
    fprintf(stderr, "bench_lm: %s\n", err.msg);
    qlm_data_free(d);
    wb_close(w);
    return 1;
}
