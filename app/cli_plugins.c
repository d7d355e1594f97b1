/* cli_plugins.c — `qlab plugins`: loaded plugins, their schemes and parameters, and refusals. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "json_out.h"
#include "plugin_check.h"

static const char help[] =
    "usage: qlab plugins [--plugin FILE.so]... [--json]\n"
    "       qlab plugins check FILE.so [--json]\n"
    "\n"
    "Lists every scheme plugin found (--plugin files, $QLAB_PLUGIN_PATH, the\n"
    "build folder, the installed folder), each scheme with its parameters\n"
    "(type, range or choices, default), and any plugin file that was refused\n"
    "with the reason.\n"
    "\n"
    "check: loads FILE.so, validates its descriptor and parameter descriptions,\n"
    "runs every scheme (default parameters) on random and edge-case tensors\n"
    "(zeros, constants, huge and tiny values, one element, odd shapes) and\n"
    "reports size, NaN/Inf, determinism, pack/unpack and round-trip error.\n"
    "Exits 1 on any failure.\n";

static const char *const type_names[QLAB_PARAM_TYPE_COUNT] = {
    [QLAB_PARAM_INT] = "int", [QLAB_PARAM_FLOAT] = "float", [QLAB_PARAM_BOOL] = "bool",
    [QLAB_PARAM_ENUM] = "enum"};

static void print_param(const struct qlab_param *p)
{
    char def[64], range[256] = "";
    struct qlab_value v = {.i = (int64_t)p->def, .f = p->def};
    qparam_format_value(p, &v, def, sizeof def);
    if (p->type == QLAB_PARAM_INT)
        snprintf(range, sizeof range, "%.0f..%.0f", p->min, p->max);
    else if (p->type == QLAB_PARAM_FLOAT)
        snprintf(range, sizeof range, "%g..%g", p->min, p->max);
    else if (p->type == QLAB_PARAM_BOOL)
        snprintf(range, sizeof range, "true|false");
    else {
        size_t len = 0;
        for (const char *const *ch = p->choices; *ch && len < sizeof range; ch++)
            len += (size_t)snprintf(range + len, sizeof range - len, "%s%s",
                                    ch == p->choices ? "" : "|", *ch);
    }
    printf("      %-14s %-5s %-24s default %-10s %s\n", p->name, type_names[p->type], range, def,
           p->help);
}

static void print_check(const cJSON *r)
{
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(r, "plugin");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r, "error");
    if (cJSON_IsString(e)) {
        printf("FAIL %s: %s\n", cJSON_GetObjectItemCaseSensitive(r, "file")->valuestring,
               e->valuestring);
        return;
    }
    printf("%s %s: %s\n", cJSON_GetObjectItemCaseSensitive(pl, "name")->valuestring,
           cJSON_GetObjectItemCaseSensitive(pl, "version")->valuestring,
           cJSON_GetObjectItemCaseSensitive(r, "file")->valuestring);
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(r, "schemes"))
    {
        int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "ok"));
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(s, "message");
        printf("  %s %s%s%s\n", ok ? "ok  " : "FAIL",
               cJSON_GetObjectItemCaseSensitive(s, "name")->valuestring,
               cJSON_IsString(msg) ? ": " : "", cJSON_IsString(msg) ? msg->valuestring : "");
        const cJSON *k;
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(s, "cases"))
        {
            const char *st = cJSON_GetObjectItemCaseSensitive(k, "status")->valuestring;
            const cJSON *bpw = cJSON_GetObjectItemCaseSensitive(k, "bits_per_weight");
            const cJSON *rm = cJSON_GetObjectItemCaseSensitive(k, "rel_rmse");
            const cJSON *pk = cJSON_GetObjectItemCaseSensitive(k, "packed");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(k, "message");
            printf("       %-8s %-20s", st, cJSON_GetObjectItemCaseSensitive(k, "case")->valuestring);
            if (cJSON_IsNumber(bpw))
                printf(" %7.3f bits/weight  rel. RMSE %.3g", bpw->valuedouble, rm->valuedouble);
            if (cJSON_IsString(pk) && strcmp(pk->valuestring, "n/a") != 0)
                printf("  pack %s", pk->valuestring);
            if (cJSON_IsString(m))
                printf("  %s", m->valuestring);
            printf("\n");
        }
    }
    printf("%s\n", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok")) ? "all checks passed"
                                                                          : "checks FAILED");
}

static int plugins_check(struct cli *c)
{
    c->cmd = "plugins check";
    if (c->argc != 2)
        return cli_usage_error(c, "which plugin? (qlab plugins check FILE.so)");
    cJSON *r = plugin_check_file(c->argv[1]);
    if (!r)
        return EXIT_RUNTIME;
    int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
    if (c->json)
        cli_print_json(r);
    else {
        print_check(r);
        cJSON_Delete(r);
    }
    return ok ? EXIT_OK : EXIT_RUNTIME;
}

int cli_plugins(struct cli *c)
{
    if (c->help) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    if (c->argc > 0 && strcmp(c->argv[0], "check") == 0)
        return plugins_check(c);
    if (c->argc > 0)
        return cli_usage_error(c, "unexpected argument '%s' (see qlab plugins --help)",
                               c->argv[0]);
    struct wb *w;
    if (cli_open(c, 1, &w) < 0)
        return EXIT_RUNTIME;
    const struct qplugin_host *h = wb_plugins(w);
    if (c->json) {
        cli_print_json(json_plugins(h));
    } else {
        if (h->n_plugins == 0)
            printf("no plugins found (build them with make, or give --plugin FILE.so)\n");
        for (int i = 0; i < h->n_plugins; i++) {
            const struct qplugin *p = h->plugins[i];
            printf("%s %s  %s\n  %s\n", p->desc->name, p->desc->version, p->path,
                   p->desc->description);
            for (uint32_t s = 0; s < p->desc->n_schemes; s++) {
                const struct qlab_scheme *sc = p->desc->schemes[s];
                printf("    %s — %s\n", sc->name, sc->description);
                for (uint32_t k = 0; k < sc->n_params; k++)
                    print_param(&sc->params[k]);
            }
        }
        for (int i = 0; i < h->n_refused; i++)
            printf("refused: %s\n", h->refused[i]);
    }
    wb_close(w);
    return EXIT_OK;
}
