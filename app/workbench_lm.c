/* workbench_lm.c — language-model runs: perplexity and KL divergence against a cached float reference, and greedy generation. */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "quant/fsutil.h"
#include "quant/llm.h"
#include "quant/tokenizer.h"
#include "workbench.h"
#include "workbench_internal.h"

/* ---- evaluation data and the reference cache --------------------------------- */

int wbi_load_lm_data(struct wb *w, const char *path, qerr *err)
{
    if (w->lm_data && strcmp(w->lm_data->path, path) == 0)
        return 0;
    struct qlm_data *d;
    const struct qllm *l = w->model->llm;
    if (qlm_data_open(path, l->tok, l->tok_note, l->c.vocab_size, &d, err) < 0)
        return -1;
    qlm_data_free(w->lm_data);
    w->lm_data = d;
    return 0;
}

/* Where the float reference of (model, data, n_ctx, chunks) is kept:
 * CACHE/lm-ref/MODEL-DATA-cN-kM.ref (the folder is created). */
static int reference_path(struct wb *w, int n_ctx, int64_t chunks, char *buf, size_t size,
                          qerr *err)
{
    char dir[PATH_MAX];
    if (qlab_cache_dir(dir, sizeof dir - 16) < 0)
        return qerr_set(err, "cannot find a cache folder: set HOME or XDG_CACHE_HOME");
    strcat(dir, "/lm-ref");
    if (qmkdir_p(dir, err) < 0)
        return -1;
    int n = snprintf(buf, size, "%s/%.16s-%.16s-c%d-k%lld.ref", dir, w->model_sha,
                     w->lm_data->sha256, n_ctx, (long long)chunks);
    return n > 0 && (size_t)n < size ? 0 : qerr_set(err, "cache path too long");
}

/* Renames the phase of the reference pass, so a progress display can tell
 * the two perplexity passes apart. */
struct named_progress {
    struct qprogress p;
    const struct qprogress *inner;
    const char *phase;
};

static void named_fn(void *ctx, const char *phase, int64_t done, int64_t total)
{
    struct named_progress *n = ctx;
    (void)phase;
    if (n->inner && n->inner->fn)
        n->inner->fn(n->inner->ctx, n->phase, done, total);
}

static const struct qprogress *named(struct named_progress *n, const struct qprogress *inner,
                                     const char *phase)
{
    if (!inner)
        return NULL;
    *n = (struct named_progress){.p = {.fn = named_fn, .ctx = n, .cancel = inner->cancel},
                                 .inner = inner, .phase = phase};
    return &n->p;
}

int wbi_lm_prepare(struct wb *w, const char *data, int n_ctx, int n_chunks, int threads,
                   struct qlm_opts *opts, int64_t *chunks, qerr *err)
{
    const struct qllm *l = w->model->llm;
    const char *sha;
    if (!data)
        return qerr_set(err, "%s is a language model: give --data (a text file, or token ids "
                        "as .safetensors, .i32 or .u32)", w->model->name);
    if (wbi_load_lm_data(w, data, err) < 0 || wb_model_sha256(w, &sha, err) < 0)
        return -1;
    *opts = (struct qlm_opts){.n_ctx = n_ctx, .n_chunks = n_chunks, .threads = threads};
    if (!opts->n_ctx)
        opts->n_ctx = l->c.max_ctx > 0 && l->c.max_ctx < 512 ? l->c.max_ctx : 512;
    *chunks = w->lm_data->n / opts->n_ctx;
    if (n_chunks > 0 && n_chunks < *chunks)
        *chunks = n_chunks;
    if (*chunks < 1)
        return qerr_set(err, "%s: %lld tokens, fewer than one chunk of --ctx %d", data,
                        (long long)w->lm_data->n, opts->n_ctx);
    opts->n_chunks = (int)*chunks;
    return 0;
}

int wbi_lm_reference(struct wb *w, const struct qlm_opts *opts, const struct qprogress *p,
                     char *ref, size_t size, int *computed, struct qlm_metrics *float_m,
                     double *seconds, qerr *err)
{
    const struct qmodel *m = w->model;
    struct qlm_ref_info info;
    qerr ignore;
    *computed = 0;
    if (reference_path(w, opts->n_ctx, opts->n_chunks, ref, size, err) < 0)
        return -1;
    if (qlm_ref_info(ref, &info, &ignore) == 0 && info.n_ctx == opts->n_ctx &&
        info.n_chunks == opts->n_chunks && info.n_vocab == m->llm->c.vocab_size)
        return 0;
    double t1 = wbi_now();
    struct named_progress np;
    int rc = qlm_perplexity(m, NULL, w->lm_data->tokens, w->lm_data->n, opts,
                            named(&np, p, "float reference"), NULL, ref, float_m, err);
    if (rc == 0) {
        *computed = 1;
        *seconds = wbi_now() - t1;
    }
    return rc;
}

/* ---- run metrics ----------------------------------------------------------------- */

static char *lm_metrics_json(const struct qlm_metrics *m, int n_ctx, double seconds)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n_ctx", n_ctx);
    cJSON_AddNumberToObject(o, "n_chunks", (double)m->n_chunks);
    cJSON_AddNumberToObject(o, "n_tokens_scored", (double)m->n_tokens_scored);
    cJSON_AddNumberToObject(o, "ppl", m->ppl);
    cJSON_AddNumberToObject(o, "ppl_err", m->ppl_err);
    cJSON_AddNumberToObject(o, "nll_mean", m->nll_mean);
    if (m->has_ref) {
        cJSON_AddNumberToObject(o, "ln_ppl_ratio", m->ln_ppl_ratio);
        cJSON_AddNumberToObject(o, "kld_mean", m->kld_mean);
        cJSON_AddNumberToObject(o, "kld_median", m->kld_median);
        cJSON_AddNumberToObject(o, "kld_p99", m->kld_p99);
        cJSON_AddNumberToObject(o, "kld_max", m->kld_max);
        cJSON_AddNumberToObject(o, "same_top_pct", m->same_top_pct);
        cJSON_AddNumberToObject(o, "dp_mean", m->dp_mean);
        cJSON_AddNumberToObject(o, "dp_rms", m->dp_rms);
        cJSON *f = cJSON_AddObjectToObject(o, "float");
        cJSON_AddNumberToObject(f, "ppl", m->ppl_ref);
    }
    if (seconds > 0) {
        cJSON_AddNumberToObject(o, "eval_seconds", seconds);
        cJSON_AddNumberToObject(o, "tokens_per_second",
                                (double)m->n_chunks * n_ctx / seconds);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- the run ----------------------------------------------------------------------- */

int wbi_eval_lm(struct wb *w, const struct wb_eval_request *r, struct wb_eval_outcome *o,
                qerr *err)
{
    const struct qmodel *m = w->model;
    o->is_lm = 1;
    struct qlm_opts opts;
    int64_t chunks;
    if (wbi_lm_prepare(w, r->data, r->n_ctx, r->n_chunks, r->threads, &opts, &chunks, err) < 0)
        return -1;
    int64_t scored = chunks * (opts.n_ctx - 1 - opts.n_ctx / 2);

    char *dpath = wbi_abspath(w->lm_data->path);
    struct qstore_dataset sd = {.path = dpath, .sha256 = w->lm_data->sha256,
                                .kind = w->lm_data->kind, .n_samples = w->lm_data->n};
    int64_t id;
    int brc = dpath ? wbi_begin_run(w, &sd, "lm", scored, &id, err)
                    : qerr_set(err, "out of memory");
    free(dpath);
    if (brc < 0)
        return -1;
    o->run_id = id;
    double t0 = wbi_now();
    atomic_int *cancel = r->progress ? r->progress->cancel : NULL;
    struct qlab_host host = {.struct_size = sizeof host, .ctx = cancel,
                             .cancelled = wbi_cancelled_cb};
    const char *status = "failed";
    char ref[PATH_MAX];
    struct qlm_ref_info info;
    struct qlm_metrics float_m;
    int rc = 0, have_float = 0;

    if (r->progress && r->progress->fn)
        r->progress->fn(r->progress->ctx, "quantize", 0, 1);
    if (wb_refresh(w, &host, err) < 0) {
        rc = cancel && atomic_load(cancel) ? QEVAL_CANCELLED : -1;
        goto end;
    }
    if ((rc = wbi_lm_reference(w, &opts, r->progress, ref, sizeof ref, &have_float, &float_m,
                               &o->seconds, err)) != 0)
        goto end;
    if (w->weights.n_quantized == 0) {
        /* nothing quantized: the float model is the reference itself (its
         * stored log-probabilities are rounded, so comparing would show a
         * tiny divergence that is not there) */
        if (qlm_ref_info(ref, &info, err) < 0) {
            rc = -1;
            goto end;
        }
        qlm_metrics_of_reference(&info, &o->lm);
        if (!have_float)
            o->seconds = 0; /* no forward pass ran: speed unknown */
    } else {
        double t1 = wbi_now();
        struct named_progress np;
        rc = qlm_perplexity(m, w->weights.ptrs, w->lm_data->tokens, w->lm_data->n, &opts,
                            named(&np, r->progress, "perplexity"), ref, NULL, &o->lm, err);
        if (rc != 0)
            goto end;
        o->seconds = wbi_now() - t1;
    }
    o->samples_per_s = o->seconds > 0 ? (double)chunks * opts.n_ctx / o->seconds : 0;
    status = "done";
end:
    if (rc == QEVAL_CANCELLED)
        status = "cancelled";
    qerr ferr;
    char *metrics = strcmp(status, "done") == 0 ? lm_metrics_json(&o->lm, opts.n_ctx, o->seconds)
                                                : NULL;
    int frc = wbi_finish_run(w, id, status, strcmp(status, "failed") == 0 ? err->msg : NULL,
                             metrics, wbi_now() - t0, &ferr);
    free(metrics);
    o->status = status;
    if (rc < 0)
        return -1;
    if (frc < 0) {
        *err = ferr;
        return -1;
    }
    return 0;
}

/* ---- greedy generation ----------------------------------------------------------- */

void wb_generation_clear(struct wb_generation *g)
{
    free(g->float_text);
    free(g->quant_text);
    memset(g, 0, sizeof *g);
}

struct text {
    char *s;
    size_t len, cap;
};

static int text_add(struct text *t, const char *p, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = (t->cap ? t->cap * 2 : 256) + n;
        char *s = realloc(t->s, cap);
        if (!s)
            return -1;
        t->s = s;
        t->cap = cap;
    }
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = 0;
    return 0;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Runs the prompt, then one token at a time; ids of the generated tokens
 * go to out (up to n_tokens), their text to text. */
static int generate_one(const struct qmodel *m, const float *const *weights,
                        const int32_t *prompt, int n_prompt, int n_tokens, int32_t *out,
                        int *n_out, struct text *text, double *tps,
                        const struct qprogress *p, const char *phase, qerr *err)
{
    const struct qllm *l = m->llm;
    int n_ctx = n_prompt + n_tokens;
    struct qllm_state *s;
    float *logits = malloc((size_t)l->c.vocab_size * sizeof *logits);
    if (!logits)
        return qerr_set(err, "out of memory");
    if (qllm_state_new(m, n_ctx, &s, err) < 0) {
        free(logits);
        return -1;
    }
    double t0 = wbi_now();
    int rc = qllm_forward(s, weights, prompt, n_prompt, 0, n_prompt - 1, logits, err);
    int prev = prompt[n_prompt - 1], n = 0;
    int bos = qtok_bos(l->tok), eos = qtok_eos(l->tok);
    while (rc == 0 && n < n_tokens) {
        if (p && p->cancel && atomic_load(p->cancel)) {
            rc = QEVAL_CANCELLED;
            break;
        }
        if (p && p->fn)
            p->fn(p->ctx, phase, n, n_tokens);
        int next = argmax(logits, l->c.vocab_size);
        if (next == bos || next == eos) /* llama2.c stops at BOS, llama.cpp at EOS */
            break;
        char piece[512];
        size_t len = qtok_decode(l->tok, prev, next, piece, sizeof piece);
        if (text_add(text, piece, len) < 0) {
            rc = qerr_set(err, "out of memory");
            break;
        }
        out[n++] = next;
        prev = next;
        if (n < n_tokens)
            rc = qllm_forward(s, weights, &out[n - 1], 1, n_prompt + n - 1, 0, logits, err);
    }
    double dt = wbi_now() - t0;
    *tps = dt > 0 ? n / dt : 0;
    *n_out = n;
    qllm_state_free(s);
    free(logits);
    return rc;
}

int wb_generate(struct wb *w, const char *prompt, int n_tokens, const struct qprogress *p,
                struct wb_generation *g, qerr *err)
{
    memset(g, 0, sizeof *g);
    if (!w->model || w->model->kind != QMODEL_LM)
        return qerr_set(err, "generation needs a language model");
    const struct qllm *l = w->model->llm;
    if (!l->tok)
        return qerr_set(err, "%s carries no tokenizer, so it cannot turn a prompt into tokens",
                        w->model->name);
    if (n_tokens < 1 || n_tokens > 65536)
        return qerr_set(err, "the number of tokens to generate must be 1..65536");
    int32_t *ids = NULL, *out_f = NULL, *out_q = NULL;
    int64_t n_prompt = 0;
    struct text tf = {0}, tq = {0};
    int rc = -1;
    if (qtok_encode(l->tok, prompt, strlen(prompt), qtok_add_bos(l->tok), &ids, &n_prompt,
                    err) < 0)
        goto out;
    if (n_prompt == 0) {
        qerr_set(err, "the prompt is empty and this tokenizer adds no BOS: give a prompt");
        goto out;
    }
    if (n_prompt + n_tokens > INT_MAX / 2) {
        qerr_set(err, "prompt too long");
        goto out;
    }
    out_f = malloc((size_t)n_tokens * sizeof *out_f);
    out_q = malloc((size_t)n_tokens * sizeof *out_q);
    if (!out_f || !out_q || text_add(&tf, "", 0) < 0 || text_add(&tq, "", 0) < 0) {
        qerr_set(err, "out of memory");
        goto out;
    }
    /* the prompt itself, as it will be continued */
    for (int64_t i = 1; i < n_prompt; i++) {
        char piece[512];
        size_t len = qtok_decode(l->tok, ids[i - 1], ids[i], piece, sizeof piece);
        if (text_add(&tf, piece, len) < 0 || text_add(&tq, piece, len) < 0) {
            qerr_set(err, "out of memory");
            goto out;
        }
    }
    if (wb_refresh(w, NULL, err) < 0)
        goto out;
    if ((rc = generate_one(w->model, NULL, ids, (int)n_prompt, n_tokens, out_f, &g->n_float,
                           &tf, &g->float_tps, p, "generate float", err)) != 0 ||
        (rc = generate_one(w->model, w->weights.n_quantized ? w->weights.ptrs : NULL, ids,
                           (int)n_prompt, n_tokens, out_q, &g->n_quant, &tq, &g->quant_tps, p,
                           "generate quantized", err)) != 0) {
        if (rc == QEVAL_CANCELLED)
            qerr_set(err, "cancelled");
        goto out;
    }
    while (g->same_prefix < g->n_float && g->same_prefix < g->n_quant &&
           out_f[g->same_prefix] == out_q[g->same_prefix])
        g->same_prefix++;
    g->float_text = tf.s;
    g->quant_text = tq.s;
    tf.s = tq.s = NULL;
    rc = 0;
out:
    free(ids);
    free(out_f);
    free(out_q);
    free(tf.s);
    free(tq.s);
    return rc;
}
