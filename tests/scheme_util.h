/* scheme_util.h — what the plugin suites share: a host with one plugin, and schemes run through it with Check assertions. */
#ifndef QLAB_SCHEME_UTIL_H
#define QLAB_SCHEME_UTIL_H

#include <stdint.h>

#include "quant/plugin_host.h"

/* A host with the built plugin `so` (e.g. "int.so") loaded; fails the test otherwise. */
struct qplugin_host *su_host(const char *so);

/* scheme configured with params (a failure fails the test); the caller frees it. */
struct qscheme_config *su_config(const struct qplugin_host *h, const char *scheme,
                                 const char *params);
/* x (rows x cols) quantized with scheme:params into y; must succeed. */
void su_quant(const struct qplugin_host *h, const char *scheme, const char *params,
              const float *x, int64_t rows, int64_t cols, float *y);
/* Quantizing must fail with a message containing `phrase`. */
void su_quant_fails(const struct qplugin_host *h, const char *scheme, const char *params,
                    const float *x, int64_t rows, int64_t cols, const char *phrase);
/* The exact storage of a rows x cols tensor. */
uint64_t su_size_bits(const struct qplugin_host *h, const char *scheme, const char *params,
                      int64_t rows, int64_t cols);
/* got[i] == want[i] for every i < n, bit for bit as floats compare. */
void su_assert_floats(const float *got, const float *want, int64_t n, const char *what);

#endif
