/* scheme_util.c — a host with one plugin, and schemes run through it with Check assertions. */
#include "scheme_util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

struct qplugin_host *su_host(const char *so)
{
    qerr err = {{0}};
    struct qplugin_host *h = qhost_new();
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(qhost_load(h, tu_plugin(so), &err) == 0, "%s", err.msg);
    return h;
}

struct qscheme_config *su_config(const struct qplugin_host *h, const char *scheme,
                                 const char *params)
{
    struct qscheme_ref ref;
    struct qscheme_config *c = NULL;
    qerr err = {{0}};
    ck_assert_msg(qhost_find_scheme(h, scheme, &ref, &err) == 0, "%s", err.msg);
    ck_assert_msg(qscheme_configure(&ref, params, &c, &err) == 0, "%s:%s: %s", scheme, params,
                  err.msg);
    return c;
}

void su_quant(const struct qplugin_host *h, const char *scheme, const char *params,
              const float *x, int64_t rows, int64_t cols, float *y)
{
    struct qscheme_config *c = su_config(h, scheme, params);
    struct qlab_tensor_view v = {.data = x, .rows = rows, .cols = cols, .name = "w"};
    qerr err = {{0}};
    ck_assert_msg(qscheme_quantize(c, &v, y, NULL, &err) == 0, "%s:%s: %s", scheme, params,
                  err.msg);
    qscheme_config_free(c);
}

void su_quant_fails(const struct qplugin_host *h, const char *scheme, const char *params,
                    const float *x, int64_t rows, int64_t cols, const char *phrase)
{
    struct qscheme_config *c = su_config(h, scheme, params);
    struct qlab_tensor_view v = {.data = x, .rows = rows, .cols = cols, .name = "w"};
    float *y = calloc((size_t)(rows * cols) + 1, sizeof *y);
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_quantize(c, &v, y, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, phrase), "got \"%s\", want \"%s\"", err.msg, phrase);
    free(y);
    qscheme_config_free(c);
}

uint64_t su_size_bits(const struct qplugin_host *h, const char *scheme, const char *params,
                      int64_t rows, int64_t cols)
{
    struct qscheme_config *c = su_config(h, scheme, params);
    uint64_t bits = 0;
    qerr err = {{0}};
    ck_assert_msg(qscheme_size_bits(c, rows, cols, &bits, &err) == 0, "%s", err.msg);
    qscheme_config_free(c);
    return bits;
}

void su_assert_floats(const float *got, const float *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s: [%lld] = %.9g, want %.9g", what, (long long)i,
                      got[i], want[i]);
}
