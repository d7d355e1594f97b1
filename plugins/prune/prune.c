/* prune.c — the built-in "prune" plugin: magnitude pruning, unstructured or N:M, that any quantizer can follow.
 *
 * Scheme "prune", parameters:
 *   pattern   ENUM unstructured|2:4|4:8, default unstructured
 *   sparsity  FLOAT 0..0.99, default 0.5: the fraction removed (unstructured)
 *
 * Which values are kept (the mask):
 *   unstructured  each row keeps its k = cols - round(cols * sparsity)
 *                 largest magnitudes (at least one). Every row keeps the
 *                 same count, so the kept values form a dense rows x k
 *                 matrix that the next scheme in a recipe quantizes
 *                 (`prune:sparsity=0.5+int:bits=4`).
 *   N:M           in every group of M consecutive values of a row, the N
 *                 largest magnitudes (rows must be a multiple of M long).
 *   Ties keep the value with the lower index, so the mask is deterministic.
 *
 * Storage of the mask (size_bits), as sparse formats keep it:
 *   unstructured  a bitmap, 1 bit per value;
 *   N:M           N indices of ceil(log2 M) bits per group (2:4: 4 bits per
 *                 4 values, as sparse tensor cores store it; 4:8: 12 per 8).
 * The kept values' storage is the next scheme's (32 bits each when the
 * recipe has no next scheme); the host adds the two.
 *
 * quantize alone returns the pruned tensor: kept values unchanged, the
 * others zero. No global state.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qlab_plugin.h"

/* ---- parameters and handle -------------------------------------------------- */

enum { P_PATTERN, P_SPARSITY, P_COUNT };
enum pattern { PAT_UNSTRUCTURED, PAT_2_4, PAT_4_8 };

static const char *const pattern_choices[] = {"unstructured", "2:4", "4:8", NULL};

static const struct qlab_param prune_params[P_COUNT] = {
    [P_PATTERN] = {.name = "pattern", .type = QLAB_PARAM_ENUM,
                   .help = "unstructured (per-row magnitude) or N:M structured sparsity",
                   .def = PAT_UNSTRUCTURED, .choices = pattern_choices},
    [P_SPARSITY] = {.name = "sparsity", .type = QLAB_PARAM_FLOAT,
                    .help = "fraction of each row removed (pattern=unstructured)", .min = 0,
                    .max = 0.99, .def = 0.5},
};

struct prune_cfg {
    enum pattern pattern;
    double sparsity;
    int n, m;            /* N:M; 0 for unstructured */
};

static int prune_configure(const struct qlab_value *v, void **handle, char *err, size_t err_size)
{
    struct prune_cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    c->pattern = (enum pattern)v[P_PATTERN].i;
    c->sparsity = v[P_SPARSITY].f;
    c->n = c->pattern == PAT_2_4 ? 2 : c->pattern == PAT_4_8 ? 4 : 0;
    c->m = c->pattern == PAT_2_4 ? 4 : c->pattern == PAT_4_8 ? 8 : 0;
    *handle = c;
    return 0;
}

static void prune_release(void *handle)
{
    free(handle);
}

/* Values a row of cols keeps. */
static int64_t kept_per_row(const struct prune_cfg *c, int64_t cols)
{
    if (c->m)
        return cols / c->m * c->n;
    int64_t k = cols - (int64_t)llround((double)cols * c->sparsity);
    return k < 1 && cols > 0 ? 1 : k;
}

static int check_cols(const struct prune_cfg *c, int64_t cols, char *err, size_t err_size)
{
    if (c->m && cols % c->m) {
        snprintf(err, err_size, "%d:%d pruning needs rows whose length is a multiple of %d; "
                 "these rows have %lld values", c->n, c->m, c->m, (long long)cols);
        return -1;
    }
    return 0;
}

static int prune_size_bits(const void *handle, int64_t rows, int64_t cols, uint64_t *bits,
                           char *err, size_t err_size)
{
    const struct prune_cfg *c = handle;
    if (rows < 0 || cols < 0 || check_cols(c, cols, err, err_size))
        return rows < 0 || cols < 0 ? (snprintf(err, err_size, "invalid shape"), -1) : -1;
    uint64_t n = (uint64_t)rows * (uint64_t)cols;
    if (!c->m) {
        *bits = n; /* bitmap */
        return 0;
    }
    uint64_t index_bits = c->m == 4 ? 2 : 3;
    *bits = n / (uint64_t)c->m * (uint64_t)c->n * index_bits;
    return 0;
}

/* ---- the mask ------------------------------------------------------------ */

/* Orders (magnitude desc, index asc), so ties keep the lower index. */
struct item {
    float mag;
    int64_t idx;
};

static int item_before(const struct item *a, const struct item *b)
{
    return a->mag > b->mag || (a->mag == b->mag && a->idx < b->idx);
}

/* Moves the k first items of the order to v[0..k-1] (quickselect). */
static void select_top(struct item *v, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        struct item pivot = v[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (item_before(&v[i], &pivot))
                i++;
            while (item_before(&pivot, &v[j]))
                j--;
            if (i <= j) {
                struct item t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            break;
    }
}

static int prune_mask(const void *handle, const struct qlab_tensor_view *in, uint8_t *keep,
                      int64_t keep_capacity, const struct qlab_host *host, char *err,
                      size_t err_size)
{
    const struct prune_cfg *c = handle;
    int64_t rows = in->rows, cols = in->cols;
    if (rows < 0 || cols < 0 || rows * cols > keep_capacity) {
        snprintf(err, err_size, "shape does not fit the mask");
        return -1;
    }
    if (check_cols(c, cols, err, err_size))
        return -1;
    for (int64_t i = 0; i < rows * cols; i++)
        if (!isfinite(in->data[i])) {
            snprintf(err, err_size, "non-finite input value at index %lld", (long long)i);
            return -1;
        }
    int64_t span = c->m ? c->m : cols, take = c->m ? c->n : kept_per_row(c, cols);
    struct item *items = malloc((size_t)(span ? span : 1) * sizeof *items);
    if (!items) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (int64_t r = 0; r < rows; r++) {
        if (host && host->cancelled && (r & 255) == 0 && host->cancelled(host->ctx)) {
            free(items);
            snprintf(err, err_size, "cancelled");
            return -1;
        }
        for (int64_t g = 0; g < cols; g += span) {
            const float *x = in->data + r * cols + g;
            uint8_t *k = keep + r * cols + g;
            for (int64_t j = 0; j < span; j++) {
                items[j] = (struct item){fabsf(x[j]), j};
                k[j] = 0;
            }
            select_top(items, span, take);
            for (int64_t j = 0; j < take; j++)
                k[items[j].idx] = 1;
        }
    }
    free(items);
    return 0;
}

static int prune_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                          int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                          char *err, size_t err_size)
{
    int64_t n = in->rows * in->cols;
    if (n > out_capacity) {
        snprintf(err, err_size, "output too small");
        return -1;
    }
    uint8_t *keep = malloc((size_t)(n ? n : 1));
    if (!keep) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    if (prune_mask(handle, in, keep, n, host, err, err_size)) {
        free(keep);
        return -1;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = keep[i] ? in->data[i] : 0.0f;
    free(keep);
    *n_written = n;
    return 0;
}

/* ---- descriptor --------------------------------------------------------------- */

static const struct qlab_scheme prune_scheme = {
    .struct_size = sizeof(struct qlab_scheme),
    .name = "prune",
    .description = "magnitude pruning (per-row or N:M); follow it with a quantizer: prune+int",
    .params = prune_params,
    .n_params = P_COUNT,
    .configure = prune_configure,
    .release = prune_release,
    .size_bits = prune_size_bits,
    .quantize = prune_quantize,
    .mask = prune_mask,
};

static const struct qlab_scheme *const prune_schemes[] = {&prune_scheme};

static const struct qlab_plugin prune_plugin = {
    .abi_version = QLAB_PLUGIN_ABI,
    .struct_size = sizeof(struct qlab_plugin),
    .name = "prune",
    .version = "1.0.0",
    .description = "built-in magnitude pruning, unstructured or N:M, composable with any scheme",
    .schemes = prune_schemes,
    .n_schemes = 1,
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    return host_abi == QLAB_PLUGIN_ABI ? &prune_plugin : NULL;
}
