/* plugin_check.c — `qlab plugins check`: runs every scheme of a plugin on random and edge-case tensors. */
#include "plugin_check.h"

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "quant/pipeline.h"
#include "quant/plugin_host.h"

/* ---- test tensors ------------------------------------------------------------ */

enum fill { F_RANDOM, F_ZEROS, F_CONST, F_HUGE, F_TINY };

struct check_case {
    const char *name;
    int64_t rows, cols;
    enum fill fill;
    int must_work;      /* refusing it is a failure */
};

static const struct check_case cases[] = {
    {"random 16x256", 16, 256, F_RANDOM, 1},
    {"random 3x4096", 3, 4096, F_RANDOM, 1},
    {"zeros 4x256", 4, 256, F_ZEROS, 1},
    {"constant 4x256", 4, 256, F_CONST, 1},
    {"huge values 4x256", 4, 256, F_HUGE, 0},
    {"tiny values 4x256", 4, 256, F_TINY, 0},
    {"one element 1x1", 1, 1, F_RANDOM, 0},
    {"odd shape 7x33", 7, 33, F_RANDOM, 0},
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Roughly normal values: the sum of four uniforms, centred. */
static float normalish(uint64_t *s)
{
    double u = 0;
    for (int i = 0; i < 4; i++)
        u += (double)(splitmix(s) >> 11) / 9007199254740992.0;
    return (float)((u - 2.0) * 1.7320508);
}

static void fill_case(const struct check_case *c, float *x)
{
    uint64_t seed = 0x51ab + (uint64_t)c->rows * 131 + (uint64_t)c->cols;
    int64_t n = c->rows * c->cols;
    for (int64_t i = 0; i < n; i++) {
        switch (c->fill) {
        case F_RANDOM: x[i] = normalish(&seed) * 0.05f; break;
        case F_ZEROS: x[i] = 0; break;
        case F_CONST: x[i] = 0.5f; break;
        case F_HUGE: x[i] = normalish(&seed) * 1e30f; break;
        case F_TINY: x[i] = normalish(&seed) * 1e-30f; break;
        }
    }
}

/* ---- one case ----------------------------------------------------------------- */

static double rel_rmse(const float *x, const float *y, int64_t n)
{
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - (double)y[i];
        e += d * d;
        r += (double)x[i] * (double)x[i];
    }
    return r > 0 ? sqrt(e / r) : sqrt(e / (double)(n ? n : 1));
}

/* Pack, then unpack, must give exactly what quantize gave. */
static const char *check_pack(const struct qscheme_config *c, const struct qlab_tensor_view *v,
                              const float *deq, qerr *err)
{
    if (!qscheme_can_pack(c->ref.scheme))
        return "n/a";
    int64_t row, n = v->rows * v->cols;
    if (qscheme_packed_row_bytes(c, v->cols, &row, err) < 0)
        return "fail";
    uint8_t *bytes = malloc((size_t)(row * v->rows + 1));
    float *back = malloc((size_t)(n + 1) * sizeof *back);
    const char *verdict = "ok";
    if (!bytes || !back || qscheme_pack(c, v, bytes, row * v->rows, NULL, err) < 0)
        verdict = "fail";
    else if (qscheme_can_unpack(c->ref.scheme)) {
        if (qscheme_unpack(c, bytes, row * v->rows, v->rows, v->cols, back, err) < 0)
            verdict = "fail";
        else if (memcmp(back, deq, (size_t)n * sizeof *back) != 0) {
            qerr_set(err, "unpack(pack(x)) differs from quantize(x)");
            verdict = "fail";
        }
    }
    free(bytes);
    free(back);
    return verdict;
}

static cJSON *run_case(const struct qpipeline *p, const struct check_case *cc, int *ok)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "case", cc->name);
    cJSON_AddNumberToObject(o, "rows", (double)cc->rows);
    cJSON_AddNumberToObject(o, "cols", (double)cc->cols);
    int64_t n = cc->rows * cc->cols;
    /* a and b go through the private-copy path and the direct one */
    float *x = malloc((size_t)n * sizeof *x), *a = malloc((size_t)n * sizeof *a),
          *b = malloc((size_t)(n + QSCHEME_OUT_GUARD) * sizeof *b);
    int64_t shape[2] = {cc->rows, cc->cols};
    struct qtensor t = {.name = (char *)cc->name, .dtype = QDT_F32, .ndim = 2,
                        .shape = {shape[0], shape[1]}, .numel = n, .f32 = x};
    qerr err = {{0}};
    uint64_t bits_a = 0, bits_b = 0;
    const char *status = "ok";
    if (!x || !a || !b) {
        status = "fail";
        qerr_set(&err, "out of memory");
        goto done;
    }
    fill_case(cc, x);
    t.data = x;
    t.nbytes = (size_t)n * sizeof *x;
    if (qpipeline_run(p, &t, a, n, &bits_a, NULL, &err) < 0) {
        /* a refusal is fine on awkward input, if it says why */
        status = cc->must_work || !err.msg[0] || strstr(err.msg, "without a message") ||
                         strstr(err.msg, "NaN") || strstr(err.msg, "Inf") ||
                         strstr(err.msg, "past the end") || strstr(err.msg, "values, expected")
                     ? "fail"
                     : "refused";
        goto done;
    }
    cJSON_AddNumberToObject(o, "bits_per_weight", (double)bits_a / (double)n);
    cJSON_AddNumberToObject(o, "rel_rmse", rel_rmse(x, a, n));
    int same = qpipeline_run(p, &t, b, n + QSCHEME_OUT_GUARD, &bits_b, NULL, &err) == 0 &&
               bits_a == bits_b &&
               memcmp(a, b, (size_t)n * sizeof *a) == 0;
    cJSON_AddBoolToObject(o, "deterministic", same);
    if (!same) {
        status = "fail";
        if (!err.msg[0])
            qerr_set(&err, "two runs on the same tensor gave different results");
        goto done;
    }
    if (cc->fill == F_ZEROS)
        for (int64_t i = 0; i < n; i++)
            if (a[i] != 0) {
                status = "fail";
                qerr_set(&err, "zeros do not stay zero (value %g at index %lld)", a[i],
                         (long long)i);
                goto done;
            }
    if (bits_a == 0) {
        status = "fail";
        qerr_set(&err, "the tensor takes 0 bits");
        goto done;
    }
    if (p->n == 1) {
        struct qlab_tensor_view v = {.data = x, .rows = cc->rows, .cols = cc->cols, .ndim = 2,
                                     .shape = shape, .name = cc->name};
        const char *packed = check_pack(p->stage[0], &v, a, &err);
        cJSON_AddStringToObject(o, "packed", packed);
        if (strcmp(packed, "fail") == 0)
            status = "fail";
    }
done:
    cJSON_AddStringToObject(o, "status", status);
    if (strcmp(status, "ok") != 0)
        cJSON_AddStringToObject(o, "message", err.msg[0] ? err.msg : "refused without a reason");
    if (strcmp(status, "fail") == 0)
        *ok = 0;
    free(x);
    free(a);
    free(b);
    return o;
}

/* ---- one scheme, in a child process ---------------------------------------------- */

static cJSON *run_scheme(const struct qplugin_host *h, const struct qplugin *pl,
                         const struct qlab_scheme *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", s->name);
    int ok = 1;
    char name[256];
    snprintf(name, sizeof name, "%s/%s", pl->desc->name, s->name);
    struct qrule rule = {.glob = "*", .n_stages = 1, .stages = {{.scheme = name, .params = ""}}};
    struct qpipeline *p;
    qerr err;
    if (qpipeline_configure(h, &rule, &p, &err) < 0) {
        cJSON_AddStringToObject(o, "message", err.msg);
        ok = 0;
    } else {
        cJSON_AddStringToObject(o, "defaults", p->stage[0]->params_text);
        cJSON *list = cJSON_AddArrayToObject(o, "cases");
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
            cJSON_AddItemToArray(list, run_case(p, &cases[i], &ok));
        qpipeline_free(p);
    }
    cJSON_AddBoolToObject(o, "ok", ok);
    return o;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Runs one scheme in a child so that a crash is a finding, not the end. */
static cJSON *isolated(const struct qplugin_host *h, const struct qplugin *pl,
                       const struct qlab_scheme *s)
{
    int fds[2];
    fflush(NULL);
    if (pipe(fds) != 0)
        return run_scheme(h, pl, s);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return run_scheme(h, pl, s);
    }
    if (pid == 0) {
        close(fds[0]);
        cJSON *o = run_scheme(h, pl, s);
        char *text = cJSON_PrintUnformatted(o);
        int rc = text && write_all(fds[1], text, strlen(text)) == 0 ? 0 : 1;
        _exit(rc);
    }
    close(fds[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (ssize_t r; buf && (r = read(fds[0], buf + len, cap - len - 1)) > 0;) {
        len += (size_t)r;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                break;
            buf = nb;
        }
    }
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    cJSON *o = NULL;
    if (buf) {
        buf[len] = 0;
        o = WIFEXITED(st) && WEXITSTATUS(st) == 0 ? cJSON_Parse(buf) : NULL;
    }
    free(buf);
    if (!o) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->name);
        char msg[128];
        if (WIFSIGNALED(st))
            snprintf(msg, sizeof msg, "crashed with signal %d (%s)", WTERMSIG(st),
                     strsignal(WTERMSIG(st)));
        else
            snprintf(msg, sizeof msg, "the check process ended with status %d",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        cJSON_AddStringToObject(o, "message", msg);
        cJSON_AddBoolToObject(o, "ok", 0);
    }
    return o;
}

/* ---- the report -------------------------------------------------------------------- */

cJSON *plugin_check_file(const char *path)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", path);
    struct qplugin_host *h = qhost_new();
    qerr err;
    if (!h || qhost_load(h, path, &err) < 0) {
        cJSON_AddBoolToObject(o, "ok", 0);
        cJSON_AddStringToObject(o, "error", h ? err.msg : "out of memory");
        qhost_free(h);
        return o;
    }
    const struct qplugin *pl = h->plugins[0];
    cJSON *pj = cJSON_AddObjectToObject(o, "plugin");
    cJSON_AddStringToObject(pj, "name", pl->desc->name);
    cJSON_AddStringToObject(pj, "version", pl->desc->version);
    cJSON_AddStringToObject(pj, "description", pl->desc->description);
    cJSON_AddNumberToObject(pj, "abi", pl->desc->abi_version);
    cJSON_AddStringToObject(pj, "sha256", pl->sha256);
    int ok = 1;
    cJSON *list = cJSON_AddArrayToObject(o, "schemes");
    for (uint32_t i = 0; i < pl->desc->n_schemes; i++) {
        cJSON *s = isolated(h, pl, pl->desc->schemes[i]);
        ok &= cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "ok"));
        cJSON_AddItemToArray(list, s);
    }
    cJSON_AddBoolToObject(o, "ok", ok);
    qhost_free(h);
    return o;
}
