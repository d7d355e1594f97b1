/* cli_common.c — what the subcommands share: errors, option values, opening the workbench, output. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_usage_error(const struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "qlab%s%s: ", c->cmd && *c->cmd ? " " : "", c->cmd ? c->cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_runtime_error(const qerr *err)
{
    fprintf(stderr, "qlab: %s\n", err->msg);
    return EXIT_RUNTIME;
}

int cli_open(const struct cli *c, int no_store, struct wb **w)
{
    struct wb_options o = {.db_path = c->db_path, .plugin_files = c->plugin_files,
                           .n_plugin_files = c->n_plugin_files, .no_store = no_store};
    qerr err;
    if (wb_open(&o, w, &err) < 0) {
        cli_runtime_error(&err);
        return -1;
    }
    return 0;
}

int cli_opt_value(const struct cli *c, int argc, char **argv, int *i, const char *name,
                  const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != 0)
        return 0;
    if (*i + 1 >= argc) {
        cli_usage_error(c, "%s needs a value", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int cli_parse_count(const struct cli *c, const char *name, const char *text, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v <= 0) {
        cli_usage_error(c, "%s takes a positive whole number, not '%s'", name, text);
        return -1;
    }
    *out = v;
    return 0;
}

void cli_print_json(cJSON *j)
{
    char *s = cJSON_Print(j);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
    }
    free(s);
    cJSON_Delete(j);
}

void cli_format_bytes(double bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f B", bytes);
    else
        snprintf(buf, size, "%.1f %s", bytes, units[u]);
}
