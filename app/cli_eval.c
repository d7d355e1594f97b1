/* cli_eval.c — `qlab eval MODEL`: evaluate a recipe, record the run, print its metrics. */
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json_out.h"

static const char help[] =
    "usage: qlab eval MODEL [--quant RECIPE] [--data FILE [--labels FILE]]\n"
    "                 [--limit N] [--batch N] [--threads N] [--json]\n"
    "       qlab eval LANGUAGE-MODEL --data TEXT [--ctx N] [--chunks N]\n"
    "                 [--tokenizer FILE] [--quant RECIPE] [--json]\n"
    "\n"
    "Quantizes MODEL's tensors by RECIPE, runs it over the evaluation data\n"
    "next to the float model, and records the run in the database.\n"
    "MODEL: a model.json folder or file, a GGUF file, a llama2.c checkpoint,\n"
    "or a Hugging Face folder.\n"
    "\n"
    "  --quant RECIPE  rules 'GLOB=SCHEME[:key=value,...];...': the last rule\n"
    "                  that matches a tensor wins; 'float' keeps it in float.\n"
    "                  Only linear/conv weights are quantized unless a rule\n"
    "                  names the tensor (e.g. '*.bias=int:bits=8').\n"
    "                  Example: '*=int:bits=4,granularity=group,group=32'\n"
    "  --data FILE     safetensors with inputs/labels, or an IDX images file\n"
    "                  (gzip or plain); default: the model's own dataset\n"
    "  --labels FILE   the IDX labels file (default: found beside --data)\n"
    "  --limit N       evaluate the first N samples only\n"
    "  --batch N       samples per forward pass (default 64)\n"
    "  --threads N     worker threads (default: one per core)\n"
    "  --json          print the run as JSON (schema in README.md)\n"
    "\n"
    "Language models report perplexity as llama-perplexity computes it (chunks\n"
    "of --ctx tokens, the first set to BOS, the second half scored) and its KL\n"
    "divergence from the float model, whose log-probabilities are computed\n"
    "once per (model, data, ctx, chunks) and cached.\n"
    "  --data FILE     text (tokenized with one BOS), or token ids: a\n"
    "                  .safetensors file, or raw little-endian .i32/.u32\n"
    "  --ctx N         tokens per chunk (default: the model's context, at most 512)\n"
    "  --chunks N      evaluate the first N chunks only\n"
    "  --tokenizer F   llama2.c tokenizer.bin (default: found beside the model)\n"
    "\n"
    "Ctrl-C cancels; the run is recorded as cancelled.\n";

/* ---- progress on stderr and Ctrl-C ---------------------------------------- */

static atomic_int cancel_flag;

static void on_sigint(int sig)
{
    (void)sig;
    atomic_store(&cancel_flag, 1);
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C stops at once */
}

struct progress_state {
    int tty;
    double last;
    double start;
    char phase[32];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_progress(void *ctx, const char *phase, int64_t done, int64_t total)
{
    struct progress_state *p = ctx;
    double t = now_s();
    if (strcmp(p->phase, phase) != 0) {
        snprintf(p->phase, sizeof p->phase, "%s", phase);
        p->start = t;
    } else if (t - p->last < 0.1 && done < total) {
        return;
    }
    p->last = t;
    if (!p->tty || total <= 0)
        return;
    double rate = t > p->start ? (double)done / (t - p->start) : 0;
    fprintf(stderr, "\r\033[K%-15s %lld/%lld (%3.0f%%)", phase, (long long)done,
            (long long)total, 100.0 * (double)done / (double)total);
    if (rate > 0 && strcmp(phase, "quantize") != 0)
        fprintf(stderr, "  %.1f/s", rate);
    fflush(stderr);
}

/* ---- output ------------------------------------------------------------------ */

static void print_lm(const struct wb_eval_outcome *o)
{
    const struct qlm_metrics *m = &o->lm;
    printf("tokens          %lld scored in %lld chunks\n", (long long)m->n_tokens_scored,
           (long long)m->n_chunks);
    printf("perplexity      %.4f +/- %.5f   (float %.4f)\n", m->ppl, m->ppl_err, m->ppl_ref);
    printf("ln(PPL(Q)/PPL(base)) %.6f\n", m->ln_ppl_ratio);
    printf("KL divergence   mean %.6f  median %.6f  99%% %.6f  max %.6f\n", m->kld_mean,
           m->kld_median, m->kld_p99, m->kld_max);
    printf("same top token  %.3f %%\n", m->same_top_pct);
    printf("delta p         mean %.3f %%  RMS %.3f %%\n", m->dp_mean, m->dp_rms);
    if (o->samples_per_s > 0)
        printf("speed           %.0f tokens/s\n", o->samples_per_s);
}

static void print_human(const struct qstore_run *r, const struct wb_eval_outcome *o)
{
    char qb[32], fb[32];
    cli_format_bytes((double)r->size_bytes, qb, sizeof qb);
    cli_format_bytes((double)r->float_bytes, fb, sizeof fb);
    printf("run %lld %s: %s on %s (%lld %s)\n", (long long)r->id, r->status, r->model_name,
           r->dataset_path, (long long)r->n_samples, o->is_lm ? "scored tokens" : "samples");
    printf("recipe          %s\n", r->recipe_text && *r->recipe_text ? r->recipe_text
                                                                     : "(none: all float)");
    printf("size            %s of %s float (%.1f%%), %.3f bits/weight\n", qb, fb,
           r->float_bytes ? 100.0 * (double)r->size_bytes / (double)r->float_bytes : 0.0,
           r->bits_per_weight);
    if (strcmp(o->status, "done") != 0)
        return;
    if (o->is_lm) {
        print_lm(o);
        return;
    }
    const struct qclass_metrics *m = &o->metrics, *f = &o->float_metrics;
    printf("                %10s %10s %10s\n", "quantized", "float", "change");
    printf("top-1 %%         %10.2f %10.2f %+10.2f\n", m->top1, f->top1, m->top1 - f->top1);
    printf("top-5 %%         %10.2f %10.2f %+10.2f\n", m->top5, f->top5, m->top5 - f->top5);
    printf("cross-entropy   %10.4f %10.4f %+10.4f\n", m->cross_entropy, f->cross_entropy,
           m->cross_entropy - f->cross_entropy);
    printf("top-1 agreement %9.2f%%\n", m->top1_agreement);
    printf("KL(float||q)    mean %.6f  max %.6f\n", m->kld_mean, m->kld_max);
    if (o->samples_per_s > 0)
        printf("speed           %.0f samples/s\n", o->samples_per_s);
    else
        printf("speed           not measured (nothing quantized; the stored float reference "
               "was reused)\n");
}

/* ---- the command ----------------------------------------------------------- */

int cli_eval(struct cli *c)
{
    const char *model = NULL, *quant = "", *tokenizer = NULL, *v;
    struct wb_eval_request req = {0};
    if (c->help) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < c->argc; i++) {
        int r;
        long long n;
        if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--quant", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            quant = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--data", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            req.data = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--labels", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            req.labels = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--tokenizer", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            tokenizer = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--ctx", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "--ctx", v, &n) < 0)
                return EXIT_USAGE;
            if (n < 4 || n > 1048576)
                return cli_usage_error(c, "--ctx is 4..1048576");
            req.n_ctx = (int)n;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--chunks", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "--chunks", v, &n) < 0)
                return EXIT_USAGE;
            req.n_chunks = n > 1000000000 ? 1000000000 : (int)n;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--limit", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "--limit", v, &n) < 0)
                return EXIT_USAGE;
            req.limit = n;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--batch", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "--batch", v, &n) < 0)
                return EXIT_USAGE;
            if (n > 65536)
                return cli_usage_error(c, "--batch is at most 65536");
            req.batch = (int)n;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--threads", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "--threads", v, &n) < 0)
                return EXIT_USAGE;
            if (n > 64)
                return cli_usage_error(c, "--threads is at most 64");
            req.threads = (int)n;
        } else if (c->argv[i][0] == '-' && c->argv[i][1])
            return cli_usage_error(c, "unknown option %s (see qlab eval --help)", c->argv[i]);
        else if (!model)
            model = c->argv[i];
        else
            return cli_usage_error(c, "one MODEL only ('%s' is extra)", c->argv[i]);
    }
    if (!model)
        return cli_usage_error(c, "which model? (qlab eval MODEL --quant RECIPE)");
    if (req.labels && !req.data)
        return cli_usage_error(c, "--labels goes with --data");

    struct wb *w;
    if (cli_open(c, 0, &w) < 0)
        return EXIT_RUNTIME;
    qerr err;
    int rc = EXIT_OK;
    if (wb_load_model_ex(w, model, tokenizer, &err) < 0) {
        rc = cli_runtime_error(&err);
        goto out;
    }
    if (wb_set_recipe(w, quant, &err) < 0) {
        fprintf(stderr, "qlab eval: --quant: %s\n", err.msg);
        rc = EXIT_USAGE;
        goto out;
    }
    struct progress_state ps = {.tty = isatty(STDERR_FILENO)};
    struct qprogress prog = {.fn = on_progress, .ctx = &ps, .cancel = &cancel_flag};
    req.progress = &prog;
    atomic_store(&cancel_flag, 0);
    struct sigaction sa = {.sa_handler = on_sigint}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    struct wb_eval_outcome o;
    int erc = wb_eval(w, &req, &o, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ps.tty && ps.phase[0])
        fputs("\r\033[K", stderr);
    if (erc < 0) {
        rc = cli_runtime_error(&err);
        if (o.run_id)
            fprintf(stderr, "qlab: run %lld recorded as failed\n", (long long)o.run_id);
        goto out;
    }
    struct qstore_run *run;
    if (wb_run(w, o.run_id, &run, &err) < 0) {
        rc = cli_runtime_error(&err);
        goto out;
    }
    if (c->json)
        cli_print_json(json_run(run));
    else
        print_human(run, &o);
    qstore_run_free(run);
    if (strcmp(o.status, "cancelled") == 0) {
        fprintf(stderr, "qlab: run %lld cancelled\n", (long long)o.run_id);
        rc = EXIT_RUNTIME;
    }
out:
    wb_close(w);
    return rc;
}
