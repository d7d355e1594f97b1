/* cli_sweep.c — `qlab sweep`, `qlab sweeps`, `qlab search`, `qlab searches`: sensitivity tables and budgeted search. */
#include <cjson/cJSON.h>
#include <errno.h>
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

static const char sweep_help[] =
    "usage: qlab sweep MODEL --schemes 'S1;S2;...' [--group tensor|block|role|GLOBS]\n"
    "                  [--metric M] [--mode one|loo] [--data FILE [--labels FILE]]\n"
    "                  [--limit N] [--ctx N] [--chunks N] [--threads N] [--no-prefix] [--json]\n"
    "       qlab sweep --resume ID [--threads N] [--json]\n"
    "\n"
    "For each group and each candidate scheme, quantizes the group (mode one:\n"
    "only it, the rest float; loo: everything but it) and measures the metric's\n"
    "change from float. Every point is stored as it completes; a sweep killed\n"
    "at any moment resumes with --resume ID and ends with the same table.\n"
    "\n"
    "  --schemes S     candidates, ';'-separated: 'int:bits=2;int:bits=4;q4_K'\n"
    "  --group G       tensor (default), block (LM blk.N / classifier node),\n"
    "                  role (LM attn_q... across blocks / classifier op), or\n"
    "                  ';'-separated globs, one group each\n"
    "  --metric M      classifiers: cross_entropy (default), top1, kld_mean;\n"
    "                  language models: kld_mean (default), ppl, kld_p99, same_top;\n"
    "                  cheap proxies (mode one, no evaluation): weight_sqnr (the\n"
    "                  group's weights against float), output_sqnr (each layer the\n"
    "                  group starts, alone, on a calibration batch of float inputs);\n"
    "                  their change is the noise-to-signal ratio, 10^(-SQNR/10)\n"
    "  --no-prefix     naive full passes (prefix reuse is on by default)\n"
    "Data options as for qlab eval. Ctrl-C cancels; the points done stay.\n";

static const char sweeps_help[] =
    "usage: qlab sweeps list [--model MODEL] [--limit N] [--json]\n"
    "       qlab sweeps show ID [--json | --csv]\n"
    "\n"
    "show: the table of a sweep: per group and scheme, the size and the\n"
    "metric's change (failed points say why).\n";

static const char search_help[] =
    "usage: qlab search SWEEP_ID --budget B [--tie T]... [--verify K] [--json]\n"
    "\n"
    "Finds the assignment of schemes to groups (or float) that minimizes the\n"
    "summed metric change of a one-at-a-time sweep within a size budget,\n"
    "exactly (dynamic programming over Pareto sets), and the whole Pareto\n"
    "front of size against predicted change.\n"
    "  --budget B      4.5bpw (bits per weight over the whole model), 0.25x (of\n"
    "                  float32), 1.5MiB, 120000B\n"
    "  --tie T         groups that must share a scheme: qkv (attn_q/k/v of each\n"
    "                  block), gate_up (ffn_gate/up of each block), or a glob\n"
    "  --verify K      evaluate K front points (the optimum first) for real;\n"
    "                  they are stored as runs linked to the search\n";

/* A front point's recipe as JSON: its text and its rules resolved against
 * the sweep's model (loaded for that), as a run records them. */
static int print_recipe_json(struct wb *w, const struct qstore_sweep *sw,
                             const struct qstore_search *se, const struct qstore_search_point *p)
{
    qerr err;
    if (wb_load_model(w, sw->model_path, &err) < 0 ||
        wb_set_recipe(w, p->recipe_text, &err) < 0)
        return cli_runtime_error(&err);
    char *rules = wb_recipe_json(w);
    cJSON *parsed = rules ? cJSON_Parse(rules) : NULL;
    free(rules);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "search", (double)se->id);
    cJSON_AddNumberToObject(o, "point", (double)p->idx);
    cJSON_AddNumberToObject(o, "bits", (double)p->bits);
    cJSON_AddNumberToObject(o, "predicted", p->predicted);
    cJSON_AddStringToObject(o, "recipe", p->recipe_text);
    cJSON *list = parsed ? cJSON_DetachItemFromObjectCaseSensitive(parsed, "rules") : NULL;
    cJSON_AddItemToObject(o, "recipe_rules", list ? list : cJSON_CreateArray());
    cJSON_Delete(parsed);
    cli_print_json(o);
    return EXIT_OK;
}

static const char searches_help[] =
    "usage: qlab searches list [--sweep ID] [--json]\n"
    "       qlab searches show ID [--json] [--recipe [--point K]]\n"
    "\n"
    "show --recipe prints the --quant text of the optimum (or of front point\n"
    "K), for qlab eval MODEL --quant \"$(qlab searches show ID --recipe)\"; with\n"
    "--json, the text and its rules resolved against the model, as runs keep them.\n";

/* ---- progress and Ctrl-C (as qlab eval) --------------------------------------------- */

static atomic_int cancel_flag;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&cancel_flag, 1);
    signal(SIGINT, SIG_DFL);
}

struct progress {
    int tty;
    double last, start;
    int64_t done0;              /* points stored before this run (a resumed sweep) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_progress(void *ctx, const char *phase, int64_t done, int64_t total)
{
    struct progress *p = ctx;
    double t = now_s();
    if (!p->tty || (t - p->last < 0.1 && done < total) || total <= 0)
        return;
    const int sweep = !strcmp(phase, "sweep");
    if (sweep && !p->start) {
        p->start = t;   /* the speed counts this run's points, after the reference pass */
        p->done0 = done;
    }
    p->last = t;
    fprintf(stderr, "\r\033[K%-16s %lld/%lld (%3.0f%%)", phase, (long long)done,
            (long long)total, 100.0 * (double)done / (double)total);
    if (sweep && done > p->done0 && t > p->start) {
        double rate = (double)(done - p->done0) / (t - p->start);
        fprintf(stderr, "  %.2f points/s, %.0f s left", rate, (double)(total - done) / rate);
    }
    fflush(stderr);
}

/* ---- sweep ------------------------------------------------------------------------- */

static cJSON *sweep_json(const struct qstore_sweep *sw, const struct qstore_sweep_point *pts,
                         int n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)sw->id);
    cJSON_AddStringToObject(o, "status", sw->status);
    cJSON_AddStringToObject(o, "kind", sw->kind);
    cJSON *m = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(m, "name", sw->model_name ? sw->model_name : "");
    cJSON_AddStringToObject(m, "path", sw->model_path ? sw->model_path : "");
    cJSON_AddStringToObject(m, "sha256", sw->model_sha256 ? sw->model_sha256 : "");
    cJSON_AddStringToObject(o, "dataset", sw->dataset_path ? sw->dataset_path : "");
    cJSON_AddStringToObject(o, "mode", sw->mode);
    cJSON_AddStringToObject(o, "grouping", sw->grouping);
    cJSON_AddStringToObject(o, "metric", sw->metric);
    cJSON_AddItemToObject(o, "params", sw->params_json ? cJSON_Parse(sw->params_json)
                                                       : cJSON_CreateNull());
    cJSON_AddStringToObject(o, "created_at", sw->created_at ? sw->created_at : "");
    cJSON_AddNumberToObject(o, "points_done", (double)sw->n_done);
    cJSON_AddNumberToObject(o, "points_failed", (double)sw->n_failed);
    cJSON_AddNumberToObject(o, "points_total", (double)sw->n_groups * sw->n_schemes);
    cJSON_AddNumberToObject(o, "n_groups", sw->n_groups);
    cJSON_AddNumberToObject(o, "n_schemes", sw->n_schemes);
    if (!sw->schemes || !sw->groups) /* a list row: counts only */
        return o;
    cJSON *sc = cJSON_AddArrayToObject(o, "schemes");
    for (int i = 0; i < sw->n_schemes; i++)
        cJSON_AddItemToArray(sc, cJSON_CreateString(sw->schemes[i]));
    cJSON *gs = cJSON_AddArrayToObject(o, "groups");
    for (int g = 0; g < sw->n_groups; g++) {
        cJSON *gj = cJSON_CreateObject();
        cJSON_AddStringToObject(gj, "name", sw->groups[g].name);
        cJSON_AddNumberToObject(gj, "numel", (double)sw->groups[g].numel);
        cJSON_AddNumberToObject(gj, "float_bits", (double)sw->groups[g].float_bits);
        cJSON *cells = cJSON_AddArrayToObject(gj, "points");
        for (int s = 0; s < sw->n_schemes; s++) {
            const struct qstore_sweep_point *p = NULL;
            for (int i = 0; i < n; i++)
                if (pts[i].group == g && pts[i].scheme == s)
                    p = &pts[i];
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "scheme", sw->schemes[s]);
            cJSON_AddStringToObject(c, "status", p ? p->status : "pending");
            if (p && !strcmp(p->status, "done")) {
                cJSON_AddNumberToObject(c, "bits", (double)p->bits);
                cJSON_AddItemToObject(c, "change", json_number_or_null(p->change));
                cJSON_AddItemToObject(c, "metrics", p->metrics_json ? cJSON_Parse(p->metrics_json)
                                                                    : cJSON_CreateNull());
            } else if (p && p->error) {
                cJSON_AddStringToObject(c, "error", p->error);
            }
            cJSON_AddItemToArray(cells, c);
        }
        cJSON_AddItemToArray(gs, gj);
    }
    return o;
}

static void print_table(const struct qstore_sweep *sw, const struct qstore_sweep_point *pts,
                        int n, int csv)
{
    if (csv) {
        printf("group,scheme,status,bits,bits_per_weight,change,error\n");
        for (int i = 0; i < n; i++) {
            const struct qstore_sweep_point *p = &pts[i];
            const struct qstore_sweep_group *g = &sw->groups[p->group];
            printf("\"%s\",\"%s\",%s,%lld,%.6f,%.9g,\"%s\"\n", g->name, sw->schemes[p->scheme],
                   p->status, (long long)p->bits,
                   g->numel ? (double)p->bits / (double)g->numel : 0.0, p->change,
                   p->error ? p->error : "");
        }
        return;
    }
    printf("sweep %lld  %s  %s on %s\n%s, groups by %s, metric change: %s; %lld/%lld points "
           "(%lld failed)\n\n",
           (long long)sw->id, sw->status, sw->model_name, sw->dataset_path, sw->mode,
           sw->grouping, sw->metric, (long long)(sw->n_done + sw->n_failed),
           (long long)sw->n_groups * sw->n_schemes, (long long)sw->n_failed);
    printf("%-28s", "GROUP");
    for (int s = 0; s < sw->n_schemes; s++)
        printf(" %14.14s", sw->schemes[s]);
    printf("\n");
    for (int g = 0; g < sw->n_groups; g++) {
        printf("%-28.28s", sw->groups[g].name);
        for (int s = 0; s < sw->n_schemes; s++) {
            const struct qstore_sweep_point *p = NULL;
            for (int i = 0; i < n; i++)
                if (pts[i].group == g && pts[i].scheme == s)
                    p = &pts[i];
            if (!p)
                printf(" %14s", ".");
            else if (strcmp(p->status, "done") != 0)
                printf(" %14s", "failed");
            else
                printf(" %14.6g", p->change);
        }
        printf("\n");
    }
}

static int show_sweep(struct wb *w, int64_t id, int json, int csv)
{
    struct qstore_sweep *sw;
    struct qstore_sweep_point *pts = NULL;
    int n = 0;
    qerr err;
    if (qstore_sweep_get(wb_store(w), id, &sw, &err) < 0 ||
        qstore_sweep_points(wb_store(w), id, &pts, &n, &err) < 0) {
        return cli_runtime_error(&err);
    }
    if (json)
        cli_print_json(sweep_json(sw, pts, n));
    else
        print_table(sw, pts, n, csv);
    qstore_sweep_points_free(pts, n);
    qstore_sweep_free(sw);
    return EXIT_OK;
}

int cli_sweep(struct cli *c)
{
    if (c->help) {
        fputs(sweep_help, stdout);
        return EXIT_OK;
    }
    const char *model = NULL, *tokenizer = NULL, *v;
    struct wb_sweep_request r = {0};
    long long resume = 0, n;
    for (int i = 0; i < c->argc; i++) {
        int k;
        struct {
            const char *name;
            const char **dst;
        } strs[] = {{"--schemes", &r.schemes}, {"--group", &r.group},   {"--metric", &r.metric},
                    {"--mode", &r.mode},       {"--data", &r.data},     {"--labels", &r.labels},
                    {"--tokenizer", &tokenizer}};
        int matched = 0;
        for (size_t s = 0; s < sizeof strs / sizeof *strs && !matched; s++)
            if ((k = cli_opt_value(c, c->argc, c->argv, &i, strs[s].name, &v)) != 0) {
                if (k < 0)
                    return EXIT_USAGE;
                *strs[s].dst = v;
                matched = 1;
            }
        if (matched)
            continue;
        struct {
            const char *name;
            long long max;
        } nums[] = {{"--limit", 1LL << 40}, {"--ctx", 1 << 20}, {"--chunks", 1 << 30},
                    {"--threads", 64},      {"--resume", 1LL << 62}};
        for (size_t s = 0; s < sizeof nums / sizeof *nums && !matched; s++)
            if ((k = cli_opt_value(c, c->argc, c->argv, &i, nums[s].name, &v)) != 0) {
                if (k < 0 || cli_parse_count(c, nums[s].name, v, &n) < 0)
                    return EXIT_USAGE;
                if (n > nums[s].max)
                    return cli_usage_error(c, "%s is at most %lld", nums[s].name, nums[s].max);
                if (!strcmp(nums[s].name, "--limit"))
                    r.limit = n;
                else if (!strcmp(nums[s].name, "--ctx"))
                    r.n_ctx = (int)n;
                else if (!strcmp(nums[s].name, "--chunks"))
                    r.n_chunks = (int)n;
                else if (!strcmp(nums[s].name, "--threads"))
                    r.threads = (int)n;
                else
                    resume = n;
                matched = 1;
            }
        if (matched)
            continue;
        if (!strcmp(c->argv[i], "--no-prefix"))
            r.no_prefix = 1;
        else if (c->argv[i][0] == '-' && c->argv[i][1])
            return cli_usage_error(c, "unknown option %s (see qlab sweep --help)", c->argv[i]);
        else if (!model)
            model = c->argv[i];
        else
            return cli_usage_error(c, "one MODEL only ('%s' is extra)", c->argv[i]);
    }
    if (!resume && !model)
        return cli_usage_error(c, "which model? (qlab sweep MODEL --schemes ...)");
    if (resume && model)
        return cli_usage_error(c, "--resume takes the model and data the sweep recorded");
    if (!resume && !r.schemes)
        return cli_usage_error(c, "which schemes? (--schemes 'int:bits=4;int:bits=8')");
    struct wb *w;
    if (cli_open(c, 0, &w) < 0)
        return EXIT_RUNTIME;
    qerr err;
    int rc = EXIT_OK;
    struct progress ps = {.tty = isatty(STDERR_FILENO)};
    struct qprogress prog = {.fn = on_progress, .ctx = &ps, .cancel = &cancel_flag};
    r.progress = &prog;
    struct sigaction sa = {.sa_handler = on_signal}, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    struct wb_sweep_outcome o;
    int erc;
    if (!resume && wb_load_model_ex(w, model, tokenizer, &err) < 0) {
        rc = cli_runtime_error(&err);
        goto out;
    }
    atomic_store(&cancel_flag, 0);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    erc = resume ? wb_sweep_resume(w, resume, r.threads, &prog, &o, &err)
                 : wb_sweep(w, &r, &o, &err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (ps.tty)
        fputs("\r\033[K", stderr);
    if (erc < 0) {
        rc = cli_runtime_error(&err);
        if (o.sweep_id)
            fprintf(stderr, "qlab: sweep %lld stopped; resume with qlab sweep --resume %lld\n",
                    (long long)o.sweep_id, (long long)o.sweep_id);
        goto out;
    }
    if (!c->json)
        printf("sweep %lld %s: %lld points computed now in %.1f s (%.2f points/s); %lld/%lld "
               "stored, %lld failed\n\n",
               (long long)o.sweep_id, o.status, (long long)o.n_run, o.seconds, o.points_per_s,
               (long long)(o.n_done + o.n_failed), (long long)o.n_points,
               (long long)o.n_failed);
    rc = show_sweep(w, o.sweep_id, c->json, 0);
    if (strcmp(o.status, "cancelled") == 0) {
        fprintf(stderr, "qlab: sweep %lld cancelled; resume with qlab sweep --resume %lld\n",
                (long long)o.sweep_id, (long long)o.sweep_id);
        rc = EXIT_RUNTIME;
    }
out:
    wb_close(w);
    return rc;
}

static int parse_id(const struct cli *c, const char *text, int64_t *id)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v <= 0) {
        cli_usage_error(c, "'%s' is not an id (a positive number)", text);
        return -1;
    }
    *id = v;
    return 0;
}

int cli_sweeps(struct cli *c)
{
    if (c->help) {
        fputs(sweeps_help, stdout);
        return EXIT_OK;
    }
    if (c->argc < 1)
        return cli_usage_error(c, "list or show? (qlab sweeps list, qlab sweeps show ID)");
    struct wb *w;
    int rc = EXIT_OK;
    qerr err;
    if (!strcmp(c->argv[0], "show")) {
        c->cmd = "sweeps show";
        int64_t id;
        int csv = c->argc == 3 && !strcmp(c->argv[2], "--csv");
        if ((c->argc != 2 && !csv) || parse_id(c, c->argv[1], &id) < 0)
            return c->argc < 2 ? cli_usage_error(c, "which sweep? (qlab sweeps show ID)")
                               : EXIT_USAGE;
        if (cli_open(c, 0, &w) < 0)
            return EXIT_RUNTIME;
        rc = show_sweep(w, id, c->json, csv);
        wb_close(w);
        return rc;
    }
    if (strcmp(c->argv[0], "list") != 0)
        return cli_usage_error(c, "unknown subcommand '%s' (list, show)", c->argv[0]);
    c->cmd = "sweeps list";
    const char *model = NULL, *v;
    long long limit = 0;
    for (int i = 1; i < c->argc; i++) {
        int k;
        if ((k = cli_opt_value(c, c->argc, c->argv, &i, "--model", &v)) != 0) {
            if (k < 0)
                return EXIT_USAGE;
            model = v;
        } else if ((k = cli_opt_value(c, c->argc, c->argv, &i, "--limit", &v)) != 0) {
            if (k < 0 || cli_parse_count(c, "--limit", v, &limit) < 0)
                return EXIT_USAGE;
        } else
            return cli_usage_error(c, "unexpected '%s'", c->argv[i]);
    }
    if (cli_open(c, 0, &w) < 0)
        return EXIT_RUNTIME;
    struct qstore_sweep *sws = NULL;
    int n = 0;
    if ((model && wb_load_model(w, model, &err) < 0) ||
        wb_sweeps(w, model == NULL, limit > 1000000 ? 1000000 : (int)limit, &sws, &n, &err) < 0) {
        rc = cli_runtime_error(&err);
    } else if (c->json) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(a, sweep_json(&sws[i], NULL, 0));
        cli_print_json(a);
    } else {
        printf("%5s %-11s %-14s %-6s %-8s %-14s %12s %s\n", "ID", "STATUS", "MODEL", "MODE",
               "GROUPS", "METRIC", "POINTS", "CREATED");
        for (int i = 0; i < n; i++)
            printf("%5lld %-11s %-14.14s %-6s %-8s %-14s %5lld/%-6lld %s\n",
                   (long long)sws[i].id, sws[i].status, sws[i].model_name, sws[i].mode,
                   sws[i].grouping, sws[i].metric, (long long)(sws[i].n_done + sws[i].n_failed),
                   (long long)sws[i].n_groups * sws[i].n_schemes,
                   sws[i].created_at ? sws[i].created_at : "");
        if (n == 0)
            printf("(no sweeps yet: qlab sweep MODEL --schemes ...)\n");
    }
    qstore_sweeps_free(sws, n);
    wb_close(w);
    return rc;
}

/* ---- search ------------------------------------------------------------------------ */

static cJSON *search_json(const struct qstore_search *se)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)se->id);
    cJSON_AddNumberToObject(o, "sweep_id", (double)se->sweep_id);
    cJSON_AddStringToObject(o, "status", se->status);
    cJSON_AddStringToObject(o, "budget", se->budget_text);
    cJSON_AddNumberToObject(o, "budget_bits", (double)se->budget_bits);
    cJSON_AddItemToObject(o, "ties", se->ties_json ? cJSON_Parse(se->ties_json)
                                                   : cJSON_CreateArray());
    cJSON_AddStringToObject(o, "created_at", se->created_at ? se->created_at : "");
    cJSON *front = cJSON_AddArrayToObject(o, "front");
    for (int i = 0; i < se->n_points; i++) {
        const struct qstore_search_point *p = &se->points[i];
        cJSON *pj = cJSON_CreateObject();
        cJSON_AddNumberToObject(pj, "index", (double)p->idx);
        cJSON_AddNumberToObject(pj, "bits", (double)p->bits);
        cJSON_AddNumberToObject(pj, "predicted", p->predicted);
        cJSON_AddBoolToObject(pj, "optimum", p->is_optimum);
        cJSON_AddStringToObject(pj, "recipe", p->recipe_text ? p->recipe_text : "");
        if (p->run_id) {
            cJSON_AddNumberToObject(pj, "run_id", (double)p->run_id);
            cJSON_AddItemToObject(pj, "measured", json_number_or_null(p->measured));
        }
        cJSON_AddItemToArray(front, pj);
        if (p->is_optimum) {
            cJSON_AddNumberToObject(o, "optimum", (double)p->idx);
            cJSON_AddStringToObject(o, "recipe", p->recipe_text ? p->recipe_text : "");
        }
    }
    return o;
}

static void print_search(const struct qstore_search *se, int64_t total_numel)
{
    printf("search %lld on sweep %lld: budget %s (%lld bits), %d front points\n",
           (long long)se->id, (long long)se->sweep_id, se->budget_text,
           (long long)se->budget_bits, se->n_points);
    printf("%5s %12s %8s %14s %14s %7s  %s\n", "POINT", "BITS", "BPW", "PREDICTED", "MEASURED",
           "RUN", "RECIPE");
    for (int i = 0; i < se->n_points; i++) {
        const struct qstore_search_point *p = &se->points[i];
        if (!p->is_optimum && !p->run_id && se->n_points > 40 && i % (se->n_points / 20 + 1))
            continue; /* a long front: every so many points, plus the ones that matter */
        char measured[24] = "-", run[16] = "-";
        if (p->run_id) {
            snprintf(measured, sizeof measured, "%.6g", p->measured);
            snprintf(run, sizeof run, "%lld", (long long)p->run_id);
        }
        printf("%5lld %12lld %8.4f %14.6g %14s %7s  %s%.70s\n", (long long)p->idx,
               (long long)p->bits, total_numel ? (double)p->bits / (double)total_numel : 0.0,
               p->predicted, measured, run, p->is_optimum ? "* " : "",
               p->recipe_text ? p->recipe_text : "");
    }
}

int cli_search(struct cli *c)
{
    if (c->help) {
        fputs(search_help, stdout);
        return EXIT_OK;
    }
    struct wb_search_request r = {0};
    const char *ties[32], *v;
    long long n;
    int64_t sweep = 0;
    for (int i = 0; i < c->argc; i++) {
        int k;
        if ((k = cli_opt_value(c, c->argc, c->argv, &i, "--budget", &v)) != 0) {
            if (k < 0)
                return EXIT_USAGE;
            r.budget = v;
        } else if ((k = cli_opt_value(c, c->argc, c->argv, &i, "--tie", &v)) != 0) {
            if (k < 0)
                return EXIT_USAGE;
            if (r.n_ties == 32)
                return cli_usage_error(c, "at most 32 --tie options");
            ties[r.n_ties++] = v;
        } else if ((k = cli_opt_value(c, c->argc, c->argv, &i, "--verify", &v)) != 0) {
            if (k < 0 || cli_parse_count(c, "--verify", v, &n) < 0)
                return EXIT_USAGE;
            if (n > 100)
                return cli_usage_error(c, "--verify is at most 100");
            r.verify = (int)n;
        } else if (c->argv[i][0] == '-' && c->argv[i][1])
            return cli_usage_error(c, "unknown option %s (see qlab search --help)", c->argv[i]);
        else if (!sweep) {
            if (parse_id(c, c->argv[i], &sweep) < 0)
                return EXIT_USAGE;
        } else
            return cli_usage_error(c, "one SWEEP_ID only ('%s' is extra)", c->argv[i]);
    }
    if (!sweep || !r.budget)
        return cli_usage_error(c, "needs SWEEP_ID and --budget (qlab search 3 --budget 4.5bpw)");
    r.sweep_id = sweep;
    r.ties = ties;
    struct wb *w;
    if (cli_open(c, 0, &w) < 0)
        return EXIT_RUNTIME;
    struct progress ps = {.tty = isatty(STDERR_FILENO)};
    struct qprogress prog = {.fn = on_progress, .ctx = &ps, .cancel = &cancel_flag};
    r.progress = &prog;
    qerr err;
    int64_t id;
    int rc = EXIT_OK;
    struct qstore_search *se = NULL;
    struct qstore_sweep *sw = NULL;
    if (wb_search(w, &r, &id, &err) < 0 || qstore_search_get(wb_store(w), id, &se, &err) < 0 ||
        qstore_sweep_get(wb_store(w), sweep, &sw, &err) < 0) {
        rc = cli_runtime_error(&err);
    } else if (c->json) {
        cli_print_json(search_json(se));
    } else {
        if (ps.tty)
            fputs("\r\033[K", stderr);
        print_search(se, sw->total_numel);
    }
    qstore_search_free(se);
    qstore_sweep_free(sw);
    wb_close(w);
    return rc;
}

int cli_searches(struct cli *c)
{
    if (c->help) {
        fputs(searches_help, stdout);
        return EXIT_OK;
    }
    if (c->argc < 1)
        return cli_usage_error(c, "list or show? (qlab searches list, qlab searches show ID)");
    struct wb *w;
    qerr err;
    int rc = EXIT_OK;
    if (!strcmp(c->argv[0], "show")) {
        c->cmd = "searches show";
        int64_t id = 0;
        int recipe = 0;
        long long point = -1;
        const char *v;
        for (int i = 1; i < c->argc; i++) {
            int k;
            if (!strcmp(c->argv[i], "--recipe"))
                recipe = 1;
            else if ((k = cli_opt_value(c, c->argc, c->argv, &i, "--point", &v)) != 0) {
                char *end;
                point = k > 0 ? strtoll(v, &end, 10) : -1;
                if (k < 0 || *end || point < 0)
                    return k < 0 ? EXIT_USAGE : cli_usage_error(c, "--point takes an index");
            } else if (!id) {
                if (parse_id(c, c->argv[i], &id) < 0)
                    return EXIT_USAGE;
            } else
                return cli_usage_error(c, "unexpected '%s'", c->argv[i]);
        }
        if (!id)
            return cli_usage_error(c, "which search? (qlab searches show ID)");
        if (cli_open(c, 0, &w) < 0)
            return EXIT_RUNTIME;
        struct qstore_search *se;
        struct qstore_sweep *sw = NULL;
        if (qstore_search_get(wb_store(w), id, &se, &err) < 0 ||
            qstore_sweep_get(wb_store(w), se->sweep_id, &sw, &err) < 0) {
            rc = cli_runtime_error(&err);
        } else if (recipe) {
            const struct qstore_search_point *p = NULL;
            for (int i = 0; i < se->n_points; i++)
                if (point >= 0 ? se->points[i].idx == point : se->points[i].is_optimum)
                    p = &se->points[i];
            if (!p) {
                fprintf(stderr, "qlab: search %lld has no %s\n", (long long)id,
                        point >= 0 ? "such point" : "optimum within its budget");
                rc = EXIT_RUNTIME;
            } else if (c->json) {
                rc = print_recipe_json(w, sw, se, p);
            } else {
                printf("%s\n", p->recipe_text);
            }
        } else if (c->json) {
            cli_print_json(search_json(se));
        } else {
            print_search(se, sw->total_numel);
        }
        qstore_search_free(se);
        qstore_sweep_free(sw);
        wb_close(w);
        return rc;
    }
    if (strcmp(c->argv[0], "list") != 0)
        return cli_usage_error(c, "unknown subcommand '%s' (list, show)", c->argv[0]);
    c->cmd = "searches list";
    int64_t sweep = 0;
    const char *v;
    for (int i = 1; i < c->argc; i++) {
        int k;
        if ((k = cli_opt_value(c, c->argc, c->argv, &i, "--sweep", &v)) != 0) {
            if (k < 0 || parse_id(c, v, &sweep) < 0)
                return EXIT_USAGE;
        } else
            return cli_usage_error(c, "unexpected '%s'", c->argv[i]);
    }
    if (cli_open(c, 0, &w) < 0)
        return EXIT_RUNTIME;
    struct qstore_search *ses = NULL;
    int n = 0;
    if (wb_searches(w, sweep, 1, &ses, &n, &err) < 0) {
        rc = cli_runtime_error(&err);
    } else if (c->json) {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(a, search_json(&ses[i]));
        cli_print_json(a);
    } else {
        printf("%5s %6s %-12s %14s %s\n", "ID", "SWEEP", "BUDGET", "BITS", "CREATED");
        for (int i = 0; i < n; i++)
            printf("%5lld %6lld %-12s %14lld %s\n", (long long)ses[i].id,
                   (long long)ses[i].sweep_id, ses[i].budget_text,
                   (long long)ses[i].budget_bits, ses[i].created_at ? ses[i].created_at : "");
        if (n == 0)
            printf("(no searches yet: qlab search SWEEP_ID --budget 4.5bpw)\n");
    }
    qstore_searches_free(ses, n);
    wb_close(w);
    return rc;
}
