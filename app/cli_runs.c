/* cli_runs.c — `qlab runs list|show`: the recorded runs. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json_out.h"

static const char help[] =
    "usage: qlab runs list [--model MODEL] [--limit N] [--json]\n"
    "       qlab runs show ID [--json]\n"
    "\n"
    "list: recorded runs, newest first, with size and metrics; --model keeps\n"
    "      the runs of one model (same path or same content).\n"
    "show: one run with its recipe, metrics, plugins and per-tensor table.\n"
    "Status is running, done, failed, cancelled, or interrupted (the process\n"
    "running it ended without finishing it).\n";

/* A metric from the run's metrics JSON, or NAN. */
static double metric(const cJSON *m, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void fmt_num(char *buf, size_t n, const char *fmt, double v)
{
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
}

static void print_list(const struct qstore_run *runs, int n)
{
    printf("%5s %-11s %-12s %-34s %9s %6s %12s %8s %9s %s\n", "ID", "STATUS", "MODEL", "RECIPE",
           "SIZE", "BPW", "TOP1/PPL", "vs float", "KLD", "STARTED");
    for (int i = 0; i < n; i++) {
        const struct qstore_run *r = &runs[i];
        cJSON *m = r->metrics_json ? cJSON_Parse(r->metrics_json) : NULL;
        /* classifiers: top-1 % and its change; language models: PPL and its change % */
        int lm = r->kind && strcmp(r->kind, "lm") == 0;
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(m, "float");
        double v = metric(m, lm ? "ppl" : "top1"), fv = metric(f, lm ? "ppl" : "top1");
        char size[32] = "-", bpw[16], t1[24], dt[16], kld[16];
        if (r->size_bytes > 0)
            cli_format_bytes((double)r->size_bytes, size, sizeof size);
        fmt_num(bpw, sizeof bpw, "%.2f", r->size_bytes > 0 ? r->bits_per_weight : NAN);
        fmt_num(t1, sizeof t1, lm ? "PPL %.4f" : "%.2f", v);
        fmt_num(dt, sizeof dt, lm ? "%+.2f%%" : "%+.2f", lm ? 100.0 * (v / fv - 1) : v - fv);
        fmt_num(kld, sizeof kld, "%.5f", metric(m, "kld_mean"));
        const char *recipe = r->recipe_text && *r->recipe_text ? r->recipe_text : "(float)";
        printf("%5lld %-11s %-12.12s %-34.34s %9s %6s %12s %8s %9s %s\n", (long long)r->id,
               r->status, r->model_name ? r->model_name : "?", recipe, size, bpw, t1, dt, kld,
               r->started_at ? r->started_at : "");
        cJSON_Delete(m);
    }
    if (n == 0)
        printf("(no runs yet: qlab eval MODEL --quant RECIPE records one)\n");
}

static void print_run(const struct qstore_run *r)
{
    char size[32] = "-", fsize[32];
    if (r->size_bytes > 0)
        cli_format_bytes((double)r->size_bytes, size, sizeof size);
    cli_format_bytes((double)r->float_bytes, fsize, sizeof fsize);
    printf("run %lld  %s  (%s)\n", (long long)r->id, r->status, r->kind ? r->kind : "");
    printf("model     %s  %s\n          sha256 %s\n", r->model_name, r->model_path,
           r->model_sha256);
    printf("dataset   %s%s%s  (%lld samples)\n          sha256 %s\n", r->dataset_path,
           r->dataset_labels_path ? " + " : "",
           r->dataset_labels_path ? r->dataset_labels_path : "", (long long)r->n_samples,
           r->dataset_sha256);
    printf("recipe    %s\n", r->recipe_text && *r->recipe_text ? r->recipe_text : "(all float)");
    printf("started   %s   finished %s   %.2f s\n", r->started_at,
           r->finished_at ? r->finished_at : "-", r->elapsed_s);
    printf("size      %s of %s float, %.3f bits/weight\n", size, fsize, r->bits_per_weight);
    for (int i = 0; i < r->n_plugins; i++)
        printf("plugin    %s %s  %s\n", r->plugins[i].name, r->plugins[i].version,
               r->plugins[i].sha256);
    if (r->error)
        printf("error     %s\n", r->error);
    cJSON *m = r->metrics_json ? cJSON_Parse(r->metrics_json) : NULL;
    if (m && r->kind && strcmp(r->kind, "lm") == 0) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(m, "float");
        printf("metrics   PPL %.4f +/- %.5f (float %.4f) over %.0f tokens, ctx %.0f\n"
               "          KLD mean %.6f median %.6f p99 %.6f max %.6f  same top %.3f%%  "
               "dp mean %.3f%% rms %.3f%%\n",
               metric(m, "ppl"), metric(m, "ppl_err"), metric(f, "ppl"),
               metric(m, "n_tokens_scored"), metric(m, "n_ctx"), metric(m, "kld_mean"),
               metric(m, "kld_median"), metric(m, "kld_p99"), metric(m, "kld_max"),
               metric(m, "same_top_pct"), metric(m, "dp_mean"), metric(m, "dp_rms"));
        cJSON_Delete(m);
        m = NULL;
    }
    if (m) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(m, "float");
        printf("metrics   top-1 %.2f%% (float %.2f%%)  top-5 %.2f%%  cross-entropy %.4f "
               "(float %.4f)\n          agreement %.2f%%  KLD mean %.6f max %.6f\n",
               metric(m, "top1"), metric(f, "top1"), metric(m, "top5"),
               metric(m, "cross_entropy"), metric(f, "cross_entropy"),
               metric(m, "top1_agreement"), metric(m, "kld_mean"), metric(m, "kld_max"));
        cJSON_Delete(m);
    }
    printf("\n%-26s %-8s %-34s %9s %7s %11s %8s %8s\n", "TENSOR", "SCHEME", "PARAMS", "BYTES",
           "BPW", "MSE", "SQNR dB", "COSINE");
    for (int i = 0; i < r->n_tensors; i++) {
        const struct qstore_tensor *t = &r->tensors[i];
        char mse[24] = "-", sqnr[16] = "-", cosv[16] = "-";
        if (t->has_error) {
            snprintf(mse, sizeof mse, "%.3e", t->mse);
            snprintf(sqnr, sizeof sqnr, isfinite(t->sqnr_db) ? "%.2f" : "inf", t->sqnr_db);
            snprintf(cosv, sizeof cosv, "%.5f", t->cosine);
        }
        printf("%-26s %-8s %-34.34s %9lld %7.3f %11s %8s %8s\n", t->name, t->scheme,
               t->params_json ? t->params_json : "", (long long)t->bytes, t->bits_per_weight,
               mse, sqnr, cosv);
    }
}

static int runs_list(struct cli *c)
{
    const char *model = NULL, *v;
    long long limit = 0;
    for (int i = 1; i < c->argc; i++) {
        int r;
        if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--model", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            model = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--limit", &v)) != 0) {
            if (r < 0 || cli_parse_count(c, "--limit", v, &limit) < 0)
                return EXIT_USAGE;
        } else
            return cli_usage_error(c, "unexpected '%s' (see qlab runs --help)", c->argv[i]);
    }
    struct wb *w;
    if (cli_open(c, 0, &w) < 0)
        return EXIT_RUNTIME;
    qerr err;
    struct qstore_run *runs = NULL;
    int n = 0, rc = EXIT_OK;
    if ((model && wb_load_model(w, model, &err) < 0) ||
        wb_runs(w, model == NULL, limit > 1000000 ? 1000000 : (int)limit, &runs, &n, &err) < 0) {
        rc = cli_runtime_error(&err);
    } else if (c->json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(arr, json_run(&runs[i]));
        cli_print_json(arr);
    } else {
        print_list(runs, n);
    }
    qstore_runs_free(runs, n);
    wb_close(w);
    return rc;
}

static int runs_show(struct cli *c)
{
    if (c->argc != 2)
        return cli_usage_error(c, "which run? (qlab runs show ID)");
    char *end;
    errno = 0;
    long long id = strtoll(c->argv[1], &end, 10);
    if (errno || end == c->argv[1] || *end || id <= 0)
        return cli_usage_error(c, "'%s' is not a run id (a positive number)", c->argv[1]);
    struct wb *w;
    if (cli_open(c, 0, &w) < 0)
        return EXIT_RUNTIME;
    qerr err;
    struct qstore_run *r;
    int rc = EXIT_OK;
    if (wb_run(w, id, &r, &err) < 0) {
        rc = cli_runtime_error(&err);
    } else {
        if (c->json)
            cli_print_json(json_run(r));
        else
            print_run(r);
        qstore_run_free(r);
    }
    wb_close(w);
    return rc;
}

int cli_runs(struct cli *c)
{
    if (c->help) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    if (c->argc == 0)
        return cli_usage_error(c, "list or show? (qlab runs list, qlab runs show ID)");
    if (strcmp(c->argv[0], "list") == 0) {
        c->cmd = "runs list";
        return runs_list(c);
    }
    if (strcmp(c->argv[0], "show") == 0) {
        c->cmd = "runs show";
        return runs_show(c);
    }
    return cli_usage_error(c, "unknown subcommand '%s' (list, show)", c->argv[0]);
}
