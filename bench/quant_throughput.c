/* quant_throughput.c — quantize+dequantize throughput (MB/s of float32 input) of every scheme in a plugin folder, for bench/quant.sh.
 *
 * Usage: quant_throughput BUILD_PLUGIN_DIR [REPEAT] [LIMIT_S]
 *
 * Loads every .so in the folder, and for every scheme of every plugin,
 * with default parameters (for int/int also int8 and int4 per channel,
 * symmetric, minmax), quantizes one fixed-seed 4096 x 4096 float32 tensor
 * of normal values, best of REPEAT (default 5), single thread. Each
 * repetition times three calls on the same handle: the host path into a
 * reused output buffer (qscheme_quantize_into: guard and NaN/Inf checks),
 * the same into a freshly allocated buffer (as PyTorch's fake_quantize,
 * which returns a new tensor, and as an evaluation's first run of a
 * tensor), and the plugin's raw quantize call, so each overhead shows.
 *
 * Output: '#' lines (the setting, refused plugins, the column names), then
 * one tab-separated line per run: tag, plugin/scheme, params, host MB/s,
 * host-fresh MB/s, raw MB/s, bits/weight, the mean squared error of the result against the
 * input, status. MB = 10^6 bytes of float32 input. Each scheme runs in a
 * child process, so one that refuses the shape, crashes, or takes over
 * LIMIT_S (default 60) seconds for one call is reported on its line and
 * the rest carry on.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "quant/plugin_host.h"

enum { ROWS = 4096, COLS = 4096 };
/* A scheme slower than this in total stops repeating early (best of fewer). */
#define BUDGET_S 30.0

/* One line of the table: a configured scheme to time. */
struct run {
    char tag[16];                 /* "int8/channel", "int4/channel" or "default" */
    struct qscheme_config *c;     /* NULL when configure failed */
    char name[160];               /* plugin/scheme */
    char error[600];              /* configure's error, if any */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- input --------------------------------------------------------------- */

/* splitmix64 + Box-Muller, as the tests use: normal(0, 1) values. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void fill_normal(float *x, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) {
        double u1 = ((double)(rng_next(&s) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(rng_next(&s) >> 11) / 9007199254740992.0;
        x[i] = (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
    }
}

/* ---- the child: time one configured scheme --------------------------------- */

/* Writes one line to the parent; a short write only loses a report. */
static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
    char line[600];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if (len > (int)sizeof line - 2)
        len = (int)sizeof line - 2;
    for (int i = 0; i < len; i++)
        if (line[i] == '\n' || line[i] == '\t')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(fd, line, (size_t)len);
    (void)w;
}

/* Mean squared error of y against x, in double. */
static double mse(const float *x, const float *y, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
    return s / (double)n;
}

/* Reports "bits B", then per repetition "host S", "fresh S" and "raw S" (seconds;
 * after the first host call also "mse E"), then "done"; or "error MESSAGE".
 * The parent limits each line's wait. */
static int time_scheme(const struct qscheme_config *c, const float *x, int repeat, int fd)
{
    const int64_t n = (int64_t)ROWS * COLS;
    struct qlab_tensor_view v = {.data = x, .rows = ROWS, .cols = COLS, .name = "bench"};
    qerr err = {{0}};
    uint64_t bits = 0;
    if (qscheme_size_bits(c, ROWS, COLS, &bits, &err) == 0)
        say(fd, "bits %.6f", (double)bits / (double)n);
    float *out = malloc((size_t)(n + QSCHEME_OUT_GUARD) * sizeof *out);
    if (!out) {
        say(fd, "error out of memory");
        return 1;
    }
    memset(out, 0, (size_t)n * sizeof *out); /* fault the pages in before timing */
    struct qlab_host host = {.struct_size = sizeof host};
    double spent = 0;
    for (int r = 0; r < repeat && (r == 0 || spent < BUDGET_S); r++) {
        double t0 = now_s();
        if (qscheme_quantize_into(c, &v, out, n + QSCHEME_OUT_GUARD, &host, &err) != 0) {
            say(fd, "error %s", err.msg);
            free(out);
            return 1;
        }
        double t1 = now_s();
        say(fd, "host %.9f", t1 - t0);
        if (r == 0)
            say(fd, "mse %.9g", mse(x, out, n));
        float *fresh = malloc((size_t)(n + QSCHEME_OUT_GUARD) * sizeof *fresh);
        if (!fresh || qscheme_quantize_into(c, &v, fresh, n + QSCHEME_OUT_GUARD, &host, &err) != 0) {
            say(fd, "error %s", fresh ? err.msg : "out of memory");
            free(fresh);
            free(out);
            return 1;
        }
        free(fresh);
        double t1b = now_s();
        say(fd, "fresh %.9f", t1b - t1);
        t1 = t1b;
        char ebuf[512] = "";
        int64_t written = -1;
        int rc = c->ref.scheme->quantize(c->handle, &v, out, n, &written, &host, ebuf,
                                         sizeof ebuf);
        double t2 = now_s();
        if (rc != 0 || written != n) {
            ebuf[sizeof ebuf - 1] = 0;
            say(fd, "error raw call: %s", rc ? ebuf : "wrong count written");
            free(out);
            return 1;
        }
        say(fd, "raw %.9f", t2 - t1);
        spent += t2 - t0;
    }
    say(fd, "done");
    free(out);
    return 0;
}

/* ---- the parent: one child per run, each line within the limit ------------ */

struct result {
    double host_s, fresh_s, raw_s;  /* best seconds; 0 = none */
    double bits_per_weight; /* 0 = unknown */
    double mse;             /* of the result against the input; < 0 = unknown */
    int runs;
    char status[640];
};

/* Reads one line from fd into line within limit_s; 1 got one, 0 EOF, -1 timeout. */
static int read_line(int fd, char *line, size_t size, double limit_s)
{
    size_t len = 0;
    double end = now_s() + limit_s;
    for (;;) {
        double left = end - now_s();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue; /* re-check the clock */
        char ch;
        ssize_t got = read(fd, &ch, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 0;
        if (ch == '\n') {
            line[len] = 0;
            return 1;
        }
        if (len + 1 < size)
            line[len++] = ch;
    }
}

static void measure(const struct run *run, const float *x, int repeat, int limit_s,
                    struct result *res)
{
    memset(res, 0, sizeof *res);
    res->mse = -1;
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(res->status, sizeof res->status, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(res->status, sizeof res->status, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        _exit(time_scheme(run->c, x, repeat, fds[1]));
    }
    close(fds[1]);
    char line[600];
    int done = 0;
    for (;;) {
        int got = read_line(fds[0], line, sizeof line, limit_s);
        if (got < 0) {
            kill(pid, SIGKILL);
            snprintf(res->status, sizeof res->status, "over %d s for one call: stopped", limit_s);
            break;
        }
        if (got == 0)
            break;
        double t;
        if (sscanf(line, "bits %lf", &t) == 1) {
            res->bits_per_weight = t;
        } else if (sscanf(line, "mse %lf", &t) == 1) {
            res->mse = t;
        } else if (sscanf(line, "host %lf", &t) == 1) {
            res->host_s = res->host_s == 0 || t < res->host_s ? t : res->host_s;
        } else if (sscanf(line, "fresh %lf", &t) == 1) {
            res->fresh_s = res->fresh_s == 0 || t < res->fresh_s ? t : res->fresh_s;
        } else if (sscanf(line, "raw %lf", &t) == 1) {
            res->raw_s = res->raw_s == 0 || t < res->raw_s ? t : res->raw_s;
            res->runs++;
        } else if (strncmp(line, "error ", 6) == 0) {
            snprintf(res->status, sizeof res->status, "%s", line + 6);
        } else if (strcmp(line, "done") == 0) {
            done = 1;
        }
    }
    close(fds[0]);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
        ;
    if (!res->status[0] && WIFSIGNALED(ws))
        snprintf(res->status, sizeof res->status, "crashed (signal %d)", WTERMSIG(ws));
    else if (!res->status[0] && !done)
        snprintf(res->status, sizeof res->status, "stopped without a result");
    else if (!res->status[0])
        snprintf(res->status, sizeof res->status, "ok, best of %d", res->runs);
}

/* ---- the list of runs -------------------------------------------------------- */

/* The runs to time, in plugin and scheme order. */
struct run_list {
    struct run *v;
    int n, cap;
};

/* Adds a run unless an earlier one of the same scheme has the same
 * canonical parameters; -1 when out of memory. */
static int add_run(struct run_list *l, const struct qscheme_ref *ref, const char *tag,
                   const char *params)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        struct run *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    struct run *r = &l->v[l->n];
    memset(r, 0, sizeof *r);
    snprintf(r->tag, sizeof r->tag, "%s", tag);
    snprintf(r->name, sizeof r->name, "%s/%s", ref->plugin->desc->name, ref->scheme->name);
    qerr err = {{0}};
    if (qscheme_configure(ref, params, &r->c, &err) != 0) {
        snprintf(r->error, sizeof r->error, "configure: %.500s", err.msg);
        r->c = NULL;
        l->n++;
        return 0;
    }
    for (int i = 0; i < l->n; i++) {
        struct run *o = &l->v[i];
        if (o->c && o->c->ref.scheme == ref->scheme &&
            strcmp(o->c->params_text, r->c->params_text) == 0) {
            /* Same configuration: keep the first, but let the new tag name it. */
            if (strcmp(o->tag, "default") == 0)
                snprintf(o->tag, sizeof o->tag, "%s", tag);
            qscheme_config_free(r->c);
            r->c = NULL;
            return 0;
        }
    }
    l->n++;
    return 0;
}

/* The label's parameter part ("bits=4" of "int:bits=4"), or "defaults". */
static const char *params_of(const struct run *r)
{
    if (!r->c)
        return "-";
    const char *colon = strchr(r->c->label, ':');
    return colon ? colon + 1 : "defaults";
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: quant_throughput BUILD_PLUGIN_DIR [REPEAT] [LIMIT_S]\n");
        return 2;
    }
    int repeat = argc > 2 ? atoi(argv[2]) : 5;
    if (repeat < 1)
        repeat = 1;
    int limit_s = argc > 3 ? atoi(argv[3]) : 60;
    if (limit_s < 1)
        limit_s = 1;
    struct qplugin_host *h = qhost_new();
    if (!h) {
        fprintf(stderr, "quant_throughput: out of memory\n");
        return 1;
    }
    qhost_discover(h, argv[1]);
    if (h->n_plugins == 0) {
        fprintf(stderr, "quant_throughput: no plugin loaded from %s\n", argv[1]);
        qhost_free(h);
        return 1;
    }

    struct run_list runs = {0};
    int oom = 0;
    for (int p = 0; p < h->n_plugins; p++) {
        const struct qlab_plugin *d = h->plugins[p]->desc;
        for (uint32_t s = 0; s < d->n_schemes; s++) {
            struct qscheme_ref ref = {.plugin = h->plugins[p], .scheme = d->schemes[s]};
            oom |= add_run(&runs, &ref, "default", "");
            if (strcmp(d->name, "int") == 0 && strcmp(d->schemes[s]->name, "int") == 0) {
                oom |= add_run(&runs, &ref, "int8/channel",
                               "bits=8,symmetric=true,granularity=channel");
                oom |= add_run(&runs, &ref, "int4/channel",
                               "bits=4,symmetric=true,granularity=channel");
            }
        }
    }

    const int64_t n = (int64_t)ROWS * COLS;
    float *x = oom ? NULL : malloc((size_t)n * sizeof *x);
    if (!x) {
        fprintf(stderr, "quant_throughput: out of memory\n");
        for (int i = 0; i < runs.n; i++)
            qscheme_config_free(runs.v[i].c);
        free(runs.v);
        qhost_free(h);
        return 1;
    }
    fill_normal(x, n, 20240601);
    const double mb = (double)n * sizeof(float) / 1e6;

    printf("# %d x %d float32 (%.1f MB), best of %d, 1 thread\n", ROWS, COLS, mb, repeat);
    for (int i = 0; i < h->n_refused; i++)
        printf("# refused: %s\n", h->refused[i]);
    printf("# tag\tplugin/scheme\tparams\thost_MB/s\traw_MB/s\tbits/weight\tmse\tstatus\n");
    for (int i = 0; i < runs.n; i++) {
        struct run *r = &runs.v[i];
        struct result res = {.mse = -1};
        if (r->c)
            measure(r, x, repeat, limit_s, &res);
        else
            snprintf(res.status, sizeof res.status, "%s", r->error);
        char host[32] = "-", fresh[32] = "-", raw[32] = "-", bpw[32] = "-", err2[32] = "-";
        if (res.host_s > 0 && res.runs > 0)
            snprintf(host, sizeof host, "%.0f", mb / res.host_s);
        if (res.fresh_s > 0 && res.runs > 0)
            snprintf(fresh, sizeof fresh, "%.0f", mb / res.fresh_s);
        if (res.raw_s > 0 && res.runs > 0)
            snprintf(raw, sizeof raw, "%.0f", mb / res.raw_s);
        if (res.bits_per_weight > 0)
            snprintf(bpw, sizeof bpw, "%.4f", res.bits_per_weight);
        if (res.mse >= 0)
            snprintf(err2, sizeof err2, "%.6g", res.mse);
        printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r->tag, r->name, params_of(r), host,
               fresh, raw, bpw, err2, res.status);
        fflush(stdout);
    }
    for (int i = 0; i < runs.n; i++)
        qscheme_config_free(runs.v[i].c);
    free(runs.v);
    free(x);
    qhost_free(h);
    return 0;
}
