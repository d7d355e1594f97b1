/* broken_matrix.c — test plugin with one malformed descriptor per flaw, chosen by $QLAB_TEST_FLAW ("valid" for none). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_plugin.h"

/* ---- a valid scheme to spoil one field at a time ------------------------- */

/* Unlike tp_copy, never fails: copies what fits and reports rows*cols. */
static int m_quantize(const void *handle, const struct qlab_tensor_view *in, float *out,
                      int64_t out_capacity, int64_t *n_written, const struct qlab_host *host,
                      char *err, size_t err_size)
{
    (void)handle;
    (void)host;
    (void)err;
    (void)err_size;
    int64_t n = in->rows * in->cols;
    for (int64_t i = 0; i < n && i < out_capacity; i++)
        out[i] = in->data[i];
    *n_written = n;
    return 0;
}

#define FNS .configure = tp_configure_none, .release = tp_release_none, \
            .size_bits = tp_size_bits_f32, .quantize = m_quantize
#define SCHEME(nm, ps, np) \
    {.struct_size = sizeof(struct qlab_scheme), .name = nm, .description = "d", \
     .params = ps, .n_params = np, FNS}
#define PARAMS(...) ((const struct qlab_param[]){__VA_ARGS__})
#define INTP(nm) {.name = nm, .type = QLAB_PARAM_INT, .help = "h", .min = 2, .max = 8, .def = 8}
#define PLUGIN_X(size, nm, ver, desc, ss, ns) \
    {.abi_version = QLAB_PLUGIN_ABI, .struct_size = size, .name = nm, .version = ver, \
     .description = desc, .schemes = ss, .n_schemes = ns}
#define PLUGIN_SS(ss, ns) PLUGIN_X(sizeof(struct qlab_plugin), "broken_matrix", "0.1", "d", ss, ns)
#define PLUGIN(ss) PLUGIN_SS(ss, 1)
#define ONE(s) ((const struct qlab_scheme *const[]){&(s)})

static const char *const abc[] = {"a", "b", "c", NULL};
static const char *const none[] = {NULL};

static const struct qlab_scheme s_valid = SCHEME("m", PARAMS(INTP("bits")), 1);
static const struct qlab_scheme s_small = {.struct_size = 16, .name = "m", .description = "d", FNS};
static const struct qlab_scheme s_badname = SCHEME("bad name", NULL, 0);
static const struct qlab_scheme s_twin1 = SCHEME("Twin", NULL, 0);
static const struct qlab_scheme s_twin2 = SCHEME("twin", NULL, 0);
static const struct qlab_scheme s_nofn = {.struct_size = sizeof(struct qlab_scheme), .name = "m",
    .description = "d", .configure = tp_configure_none, .release = tp_release_none,
    .size_bits = tp_size_bits_f32};
static const struct qlab_scheme s_params_null = SCHEME("m", NULL, 1);
static const struct qlab_scheme s_param_name = SCHEME("m", PARAMS(INTP("Bits")), 1);
static const struct qlab_scheme s_param_dup = SCHEME("m", PARAMS(INTP("bits"), INTP("bits")), 2);
static const struct qlab_scheme s_param_type = SCHEME("m", PARAMS({.name = "bits",
    .type = (enum qlab_param_type)7, .help = "h"}), 1);
static const struct qlab_scheme s_param_help = SCHEME("m", PARAMS({.name = "bits",
    .type = QLAB_PARAM_INT, .min = 2, .max = 8, .def = 8}), 1);
static const struct qlab_scheme s_int_minmax = SCHEME("m", PARAMS({.name = "bits",
    .type = QLAB_PARAM_INT, .help = "h", .min = 8, .max = 2, .def = 4}), 1);
static const struct qlab_scheme s_int_frac = SCHEME("m", PARAMS({.name = "bits",
    .type = QLAB_PARAM_INT, .help = "h", .min = 0.5, .max = 8, .def = 4}), 1);
static const struct qlab_scheme s_float_inf = SCHEME("m", PARAMS({.name = "gain",
    .type = QLAB_PARAM_FLOAT, .help = "h", .min = 0, .max = INFINITY, .def = 1}), 1);
static const struct qlab_scheme s_float_def = SCHEME("m", PARAMS({.name = "gain",
    .type = QLAB_PARAM_FLOAT, .help = "h", .min = 0, .max = 10, .def = 11}), 1);
static const struct qlab_scheme s_enum_null = SCHEME("m", PARAMS({.name = "mode",
    .type = QLAB_PARAM_ENUM, .help = "h"}), 1);
static const struct qlab_scheme s_enum_empty = SCHEME("m", PARAMS({.name = "mode",
    .type = QLAB_PARAM_ENUM, .help = "h", .choices = none}), 1);
static const struct qlab_scheme s_enum_def = SCHEME("m", PARAMS({.name = "mode",
    .type = QLAB_PARAM_ENUM, .help = "h", .def = 3, .choices = abc}), 1);
static const struct qlab_scheme s_bool_def = SCHEME("m", PARAMS({.name = "flag",
    .type = QLAB_PARAM_BOOL, .help = "h", .def = 2}), 1);

/* ---- one descriptor per flaw -------------------------------------------- */

struct flaw {
    const char *name;
    struct qlab_plugin desc;
};

static const struct flaw flaws[] = {
    {"valid", PLUGIN(ONE(s_valid))},
    {"struct_size", PLUGIN_X(8, "broken_matrix", "0.1", "d", ONE(s_valid), 1)},
    {"plugin_name_null", PLUGIN_X(sizeof(struct qlab_plugin), NULL, "0.1", "d", ONE(s_valid), 1)},
    {"plugin_name_bad", PLUGIN_X(sizeof(struct qlab_plugin), "Bad-Name", "0.1", "d", ONE(s_valid), 1)},
    {"version_null", PLUGIN_X(sizeof(struct qlab_plugin), "broken_matrix", NULL, "d", ONE(s_valid), 1)},
    {"description_null", PLUGIN_X(sizeof(struct qlab_plugin), "broken_matrix", "0.1", NULL, ONE(s_valid), 1)},
    {"no_schemes", PLUGIN_SS(ONE(s_valid), 0)},
    {"schemes_null", PLUGIN(NULL)},
    {"scheme_null", PLUGIN(((const struct qlab_scheme *const[]){NULL}))},
    {"scheme_size", PLUGIN(ONE(s_small))},
    {"scheme_name_bad", PLUGIN(ONE(s_badname))},
    {"scheme_dup", PLUGIN_SS(((const struct qlab_scheme *const[]){&s_twin1, &s_twin2}), 2)},
    {"fn_null", PLUGIN(ONE(s_nofn))},
    {"params_null", PLUGIN(ONE(s_params_null))},
    {"param_name_bad", PLUGIN(ONE(s_param_name))},
    {"param_dup", PLUGIN(ONE(s_param_dup))},
    {"param_type", PLUGIN(ONE(s_param_type))},
    {"param_help", PLUGIN(ONE(s_param_help))},
    {"int_minmax", PLUGIN(ONE(s_int_minmax))},
    {"int_frac", PLUGIN(ONE(s_int_frac))},
    {"float_inf", PLUGIN(ONE(s_float_inf))},
    {"float_def", PLUGIN(ONE(s_float_def))},
    {"enum_null", PLUGIN(ONE(s_enum_null))},
    {"enum_empty", PLUGIN(ONE(s_enum_empty))},
    {"enum_def", PLUGIN(ONE(s_enum_def))},
    {"bool_def", PLUGIN(ONE(s_bool_def))},
};

QLAB_EXPORT const struct qlab_plugin *qlab_plugin_entry(uint32_t host_abi)
{
    const char *want = getenv("QLAB_TEST_FLAW");
    if (host_abi != QLAB_PLUGIN_ABI || !want)
        return NULL;
    for (size_t i = 0; i < sizeof flaws / sizeof flaws[0]; i++)
        if (strcmp(flaws[i].name, want) == 0)
            return &flaws[i].desc;
    return NULL;
}
