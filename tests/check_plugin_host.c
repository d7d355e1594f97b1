/* check_plugin_host.c — the plugin host: loading, refusing, finding, configuring and checking plugin output. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../quant/plugin_host.h"
#include "../quant/sha256.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------ */

/* tu_plugin/tu_test_plugin rotate static buffers: keep copies. */
static char int_so[PATH_MAX], identity_so[PATH_MAX];

static void find_plugins(void)
{
    snprintf(int_so, sizeof int_so, "%s", tu_plugin("int.so"));
    snprintf(identity_so, sizeof identity_so, "%s", tu_test_plugin("good_identity.so"));
}

static struct qplugin_host *host_with(const char *a, const char *b)
{
    struct qplugin_host *h = qhost_new();
    qerr err = {{0}};
    ck_assert_ptr_nonnull(h);
    if (a)
        ck_assert_msg(qhost_load(h, a, &err) == 0, "%s", err.msg);
    if (b)
        ck_assert_msg(qhost_load(h, b, &err) == 0, "%s", err.msg);
    return h;
}

static struct qscheme_config *configure(const struct qplugin_host *h, const char *scheme,
                                        const char *params)
{
    struct qscheme_ref ref;
    struct qscheme_config *c = NULL;
    qerr err = {{0}};
    ck_assert_msg(qhost_find_scheme(h, scheme, &ref, &err) == 0, "%s", err.msg);
    ck_assert_msg(qscheme_configure(&ref, params, &c, &err) == 0, "%s", err.msg);
    return c;
}

/* Configuring must fail with a message containing `phrase`. */
static void configure_fails(const struct qplugin_host *h, const char *scheme,
                            const char *params, const char *phrase)
{
    struct qscheme_ref ref;
    struct qscheme_config *c = NULL;
    qerr err = {{0}};
    ck_assert_msg(qhost_find_scheme(h, scheme, &ref, &err) == 0, "%s", err.msg);
    ck_assert_msg(qscheme_configure(&ref, params, &c, &err) != 0, "'%s' was accepted", params);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err.msg, phrase), "'%s': got \"%s\", want \"%s\"", params, err.msg,
                  phrase);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Loading must fail; the message starts with the path and holds `phrase`. */
static void load_fails(struct qplugin_host *h, const char *path, const char *phrase)
{
    qerr err = {{0}};
    int before = h->n_plugins;
    ck_assert_msg(qhost_load(h, path, &err) != 0, "%s was accepted", path);
    ck_assert_int_eq(h->n_plugins, before);
    ck_assert_msg(starts_with(err.msg, path), "message does not start with %s: %s", path,
                  err.msg);
    ck_assert_msg(strstr(err.msg, phrase), "%s: got \"%s\", want \"%s\"", path, err.msg, phrase);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
}

/* The host still loads int.so and quantizes with it after a failure. */
static void host_still_works(struct qplugin_host *h)
{
    qerr err = {{0}};
    ck_assert_msg(qhost_load(h, int_so, &err) == 0, "%s", err.msg);
    struct qscheme_config *c = configure(h, "int", "bits=2");
    const float x[4] = {-1, 0, 0.5f, 1};
    float y[4] = {9, 9, 9, 9};
    struct qlab_tensor_view v = {.data = x, .rows = 1, .cols = 4, .name = "after"};
    ck_assert_msg(qscheme_quantize(c, &v, y, NULL, &err) == 0, "%s", err.msg);
    ck_assert_float_eq(y[0], -1);
    ck_assert_float_eq(y[2], 0);
    ck_assert_float_eq(y[3], 1);
    qscheme_config_free(c);
}

static void copy_file(const char *from, const char *to)
{
    size_t n = 0;
    char *data = tu_read_file(from, &n);
    ck_assert_msg(data != NULL, "cannot read %s", from);
    tu_write_file(to, data, n);
    free(data);
}

static void symlink_to(const char *target, const char *linkpath)
{
    char abs[PATH_MAX];
    ck_assert_msg(realpath(target, abs) != NULL, "cannot resolve %s", target);
    unlink(linkpath);
    ck_assert_int_eq(symlink(abs, linkpath), 0);
}

/* ---- Core: loading and the descriptor ----------------------------------- */

START_TEST(test_load_descriptors)
{
    struct qplugin_host *h = host_with(int_so, identity_so);
    ck_assert_int_eq(h->n_plugins, 2);
    ck_assert_int_eq(h->n_refused, 0);

    const struct qplugin *pi = h->plugins[0], *pg = h->plugins[1];
    ck_assert_str_eq(pi->path, int_so);
    ck_assert_ptr_nonnull(pi->dl);
    ck_assert_str_eq(pi->desc->name, "int");
    ck_assert_uint_eq(pi->desc->abi_version, QLAB_PLUGIN_ABI);
    ck_assert_uint_eq(pi->desc->n_schemes, 1);
    ck_assert_str_eq(pi->desc->schemes[0]->name, "int");
    ck_assert_uint_eq(pi->desc->schemes[0]->n_params, 7);
    const struct qlab_param *p = pi->desc->schemes[0]->params;
    ck_assert_str_eq(p[0].name, "bits");
    ck_assert_int_eq(p[0].type, QLAB_PARAM_INT);
    ck_assert(p[0].min == 2 && p[0].max == 8 && p[0].def == 8);
    ck_assert_str_eq(p[1].name, "symmetric");
    ck_assert_int_eq(p[1].type, QLAB_PARAM_BOOL);
    ck_assert(p[1].def == 1);
    ck_assert_str_eq(p[2].name, "granularity");
    ck_assert_int_eq(p[2].type, QLAB_PARAM_ENUM);
    ck_assert_str_eq(p[2].choices[p[2].def == 1 ? 1 : 0], "channel");
    ck_assert_str_eq(p[3].name, "group");
    ck_assert(p[3].min == 1 && p[3].max == 1048576 && p[3].def == 128);

    ck_assert_str_eq(pg->desc->name, "identity_test");
    ck_assert_str_eq(pg->desc->version, "0.1");

    /* The recorded hash is the file's. */
    char want[65];
    qerr err = {{0}};
    ck_assert_msg(sha256_file_hex(int_so, want, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(pi->sha256, want);
    ck_assert_uint_eq(strlen(pg->sha256), 64);
    qhost_free(h);
}
END_TEST

START_TEST(test_same_file_twice_is_noop)
{
    struct qplugin_host *h = host_with(int_so, int_so);
    ck_assert_int_eq(h->n_plugins, 1);
    /* A symlink to the same file is the same plugin, not a duplicate. */
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s", tu_path("int_link.so"));
    symlink_to(int_so, link);
    qerr err = {{0}};
    ck_assert_msg(qhost_load(h, link, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(h->n_plugins, 1);
    qhost_free(h);
}
END_TEST

START_TEST(test_copy_with_same_name_is_refused)
{
    struct qplugin_host *h = host_with(int_so, NULL);
    char copy[PATH_MAX], want[PATH_MAX + 64];
    snprintf(copy, sizeof copy, "%s", tu_path("int_copy.so"));
    copy_file(int_so, copy);
    snprintf(want, sizeof want, "plugin 'int' is already loaded from %s", int_so);
    load_fails(h, copy, want);
    /* broken_dupname is a different plugin that also calls itself int. */
    load_fails(h, tu_test_plugin("broken_dupname.so"), want);
    ck_assert_int_eq(h->n_plugins, 1);
    host_still_works(h);
    qhost_free(h);
}
END_TEST

START_TEST(test_free_null)
{
    qhost_free(NULL);
    qscheme_config_free(NULL);
}
END_TEST

/* ---- Find: scheme names -------------------------------------------------- */

START_TEST(test_find_scheme)
{
    struct qplugin_host *h = host_with(int_so, identity_so);
    struct qscheme_ref ref;
    qerr err = {{0}};
    const char *ok[] = {"int", "INT", "int/int", "Int/INT", "identity", "identity_test/identity"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        memset(&ref, 0, sizeof ref);
        ck_assert_msg(qhost_find_scheme(h, ok[i], &ref, &err) == 0, "%s: %s", ok[i], err.msg);
        ck_assert_ptr_nonnull(ref.scheme);
        ck_assert_ptr_eq(ref.plugin, h->plugins[i < 4 ? 0 : 1]);
    }
    ck_assert_int_ne(qhost_find_scheme(h, "foo", &ref, &err), 0);
    ck_assert_str_eq(err.msg, "unknown scheme 'foo' (known: int, identity)");
    ck_assert_int_ne(qhost_find_scheme(h, "int/identity", &ref, &err), 0);
    ck_assert(starts_with(err.msg, "unknown scheme 'int/identity' (known: int, identity)"));
    ck_assert_int_ne(qhost_find_scheme(h, "nope/int", &ref, &err), 0);
    ck_assert(starts_with(err.msg, "unknown scheme 'nope/int'"));
    ck_assert_int_ne(qhost_find_scheme(h, "", &ref, &err), 0);
    ck_assert(starts_with(err.msg, "unknown scheme ''"));
    qhost_free(h);

    struct qplugin_host *empty = qhost_new();
    ck_assert_int_ne(qhost_find_scheme(empty, "int", &ref, &err), 0);
    ck_assert(strstr(err.msg, "unknown scheme 'int' (known: none"));
    qhost_free(empty);
}
END_TEST

START_TEST(test_find_ambiguous)
{
    struct qplugin_host *h = host_with(identity_so, tu_test_plugin("good_twin.so"));
    struct qscheme_ref ref;
    qerr err = {{0}};
    ck_assert_int_ne(qhost_find_scheme(h, "identity", &ref, &err), 0);
    ck_assert_msg(starts_with(err.msg, "ambiguous: ") && strstr(err.msg, "identity_test/identity")
                  && strstr(err.msg, "identity_twin/identity")
                  && strstr(err.msg, "write plugin/scheme"), "%s", err.msg);
    ck_assert_int_eq(qhost_find_scheme(h, "identity_twin/identity", &ref, &err), 0);
    ck_assert_ptr_eq(ref.plugin, h->plugins[1]);
    ck_assert_int_eq(qhost_find_scheme(h, "IDENTITY_TEST/identity", &ref, &err), 0);
    ck_assert_ptr_eq(ref.plugin, h->plugins[0]);
    /* The known list names shared schemes with their plugin. */
    ck_assert_int_ne(qhost_find_scheme(h, "x", &ref, &err), 0);
    ck_assert_str_eq(err.msg,
                     "unknown scheme 'x' (known: identity_test/identity, identity_twin/identity)");
    qhost_free(h);
}
END_TEST

/* ---- Params: parsing, defaults and canonical text ------------------------ */

START_TEST(test_configure_defaults)
{
    struct qplugin_host *h = host_with(int_so, NULL);
    const char *texts[] = {NULL, "", "   "};
    for (size_t i = 0; i < 3; i++) {
        struct qscheme_config *c = configure(h, "int", texts[i]);
        ck_assert_str_eq(c->params_text, "bits=8,symmetric=true,granularity=channel,group=128,"
                                         "clip=minmax,percentile=99.99,scale_dtype=fp32");
        ck_assert_str_eq(c->params_json,
                         "{\"bits\":8,\"symmetric\":true,\"granularity\":\"channel\",\"group\":128,"
                         "\"clip\":\"minmax\",\"percentile\":99.99,\"scale_dtype\":\"fp32\"}");
        ck_assert_str_eq(c->label, "int");
        ck_assert_int_eq(c->values[0].i, 8);
        ck_assert_int_eq(c->values[1].i, 1);
        ck_assert_int_eq(c->values[2].i, 1);
        ck_assert_int_eq(c->values[3].i, 128);
        ck_assert_ptr_nonnull(c->handle);
        qscheme_config_free(c);
    }
    qhost_free(h);
}
END_TEST

START_TEST(test_configure_with_spaces)
{
    struct qplugin_host *h = host_with(int_so, NULL);
    struct qscheme_config *c =
        configure(h, "INT", "  bits = 4 ,granularity =GROUP,  symmetric=Off , group= 32 ");
    ck_assert_str_eq(c->params_text, "bits=4,symmetric=false,granularity=group,group=32,"
                                     "clip=minmax,percentile=99.99,scale_dtype=fp32");
    ck_assert_str_eq(c->params_json,
                     "{\"bits\":4,\"symmetric\":false,\"granularity\":\"group\",\"group\":32,"
                     "\"clip\":\"minmax\",\"percentile\":99.99,\"scale_dtype\":\"fp32\"}");
    ck_assert_str_eq(c->label, "int:bits=4,symmetric=false,granularity=group,group=32");
    qscheme_config_free(c);
    /* Giving a default explicitly keeps it out of the label. */
    c = configure(h, "int", "bits=4,granularity=group,group=128,symmetric=yes");
    ck_assert_str_eq(c->label, "int:bits=4,granularity=group");
    qscheme_config_free(c);
    qhost_free(h);
}
END_TEST

START_TEST(test_configure_errors)
{
    struct qplugin_host *h = host_with(int_so, NULL);
    static const struct {
        const char *text, *phrase;
    } bad[] = {
        {"bits=9", "int: bits=9 is out of range 2..8"},
        {"bits=1", "bits=1 is out of range 2..8"},
        {"bits=-3", "bits=-3 is out of range 2..8"},
        {"bits=99999999999999999999", "is out of range 2..8"},
        {"bits=4x", "bits=4x is not an integer"},
        {"bits=4.0", "bits=4.0 is not an integer"},
        {"bits=0x4", "bits=0x4 is not an integer"},
        {"bits=+", "is not an integer"},
        {"bits=", "parameter 'bits' has an empty value"},
        {"granularity=row", "granularity=row is not one of tensor, channel, group"},
        {"symmetric=maybe", "symmetric=maybe is not a boolean (true/false)"},
        {"symmetric=2", "symmetric=2 is not a boolean"},
        {"bitz=3", "int: unknown parameter 'bitz' (parameters: bits, symmetric, granularity, "
                   "group, clip, percentile, scale_dtype)"},
        {"bits=4, bits=5", "int: parameter 'bits' is given twice"},
        {"bits=4,BITS=4", "is given twice"},
        {"bits", "int: 'bits' has no '='"},
        {"bits=4,,group=3", "empty item"},
        {"bits=4,", "empty item"},
        {"=4", "unknown parameter ''"},
        {"group=0", "group=0 is out of range 1..1048576"},
        {"group=1048577", "group=1048577 is out of range 1..1048576"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        configure_fails(h, "int", bad[i].text, bad[i].phrase);
    host_still_works(h);
    qhost_free(h);
}
END_TEST

START_TEST(test_parse_and_format_values)
{
    struct qplugin_host *h = host_with(int_so, identity_so);
    struct qscheme_ref ref;
    qerr err = {{0}};
    ck_assert_int_eq(qhost_find_scheme(h, "int", &ref, &err), 0);
    const struct qlab_param *bits = &ref.scheme->params[0], *sym = &ref.scheme->params[1],
                            *gran = &ref.scheme->params[2];
    struct qlab_value v = {0, 0};
    const char *yes[] = {"true", "TRUE", "yes", "Yes", "on", "ON", "1"};
    const char *no[] = {"false", "False", "no", "NO", "off", "Off", "0"};
    for (size_t i = 0; i < 7; i++) {
        v.i = -1;
        ck_assert_int_eq(qparam_parse_value(sym, yes[i], &v, &err), 0);
        ck_assert_int_eq(v.i, 1);
        ck_assert_int_eq(qparam_parse_value(sym, no[i], &v, &err), 0);
        ck_assert_int_eq(v.i, 0);
    }
    ck_assert_int_eq(qparam_parse_value(gran, "Tensor", &v, &err), 0);
    ck_assert_int_eq(v.i, 0);
    ck_assert_int_eq(qparam_parse_value(bits, "+5", &v, &err), 0);
    ck_assert_int_eq(v.i, 5);
    /* A failed parse leaves the value alone. */
    ck_assert_int_ne(qparam_parse_value(bits, " 5", &v, &err), 0);
    ck_assert_int_eq(v.i, 5);

    char buf[64];
    v.i = 2;
    qparam_format_value(gran, &v, buf, sizeof buf);
    ck_assert_str_eq(buf, "group");
    v.i = 0;
    qparam_format_value(sym, &v, buf, sizeof buf);
    ck_assert_str_eq(buf, "false");
    v.i = 7;
    qparam_format_value(bits, &v, buf, sizeof buf);
    ck_assert_str_eq(buf, "7");

    ck_assert_int_eq(qhost_find_scheme(h, "identity", &ref, &err), 0);
    const struct qlab_param *gain = &ref.scheme->params[0];
    ck_assert_int_eq(qparam_parse_value(gain, "0.1", &v, &err), 0);
    ck_assert(v.f == 0.1);
    qparam_format_value(gain, &v, buf, sizeof buf);
    ck_assert_str_eq(buf, "0.1");
    ck_assert_int_eq(qparam_parse_value(gain, "2.5e0", &v, &err), 0);
    qparam_format_value(gain, &v, buf, sizeof buf);
    ck_assert_str_eq(buf, "2.5");
    qhost_free(h);
}
END_TEST

START_TEST(test_float_and_plugin_errors)
{
    struct qplugin_host *h = host_with(int_so, identity_so);
    struct qscheme_config *c = configure(h, "identity", " gain = 2.5 , sign = FLIP ");
    ck_assert_str_eq(c->params_text, "gain=2.5,sign=flip");
    ck_assert_str_eq(c->params_json, "{\"gain\":2.5,\"sign\":\"flip\"}");
    ck_assert_str_eq(c->label, "identity:gain=2.5,sign=flip");
    ck_assert(c->values[0].f == 2.5);
    ck_assert_int_eq(c->values[1].i, 1);
    qscheme_config_free(c);

    configure_fails(h, "identity", "gain=11", "identity: gain=11 is out of range 0..10");
    configure_fails(h, "identity", "gain=-0.5", "gain=-0.5 is out of range 0..10");
    configure_fails(h, "identity", "gain=abc", "gain=abc is not a number (0..10)");
    configure_fails(h, "identity", "gain=2.5x", "gain=2.5x is not a number");
    configure_fails(h, "identity", "gain=nan", "gain=nan is not a finite number");
    configure_fails(h, "identity", "gain=1e400", "gain=1e400 is not a finite number");
    configure_fails(h, "identity", "sign=up", "sign=up is not one of keep, flip");
    /* The plugin's own refusal, with plugin and scheme in front. */
    configure_fails(h, "identity", "gain=0", "identity_test/identity: gain must be non-zero");
    qerr err = {{0}};
    ck_assert_msg(qhost_load(h, tu_test_plugin("broken_nan.so"), &err) == 0, "%s", err.msg);
    configure_fails(h, "nan", "x=1", "nan: unknown parameter 'x' (parameters: none)");
    c = configure(h, "broken_nan/nan", "");
    ck_assert_str_eq(c->params_text, "");
    ck_assert_str_eq(c->params_json, "{}");
    ck_assert_str_eq(c->label, "nan");
    qscheme_config_free(c);
    host_still_works(h);
    qhost_free(h);
}
END_TEST

/* ---- Refuse: malformed plugins ------------------------------------------ */

START_TEST(test_broken_plugins_refused)
{
    static const struct {
        const char *file, *phrase;
    } broken[] = {
        {"broken_nosymbol.so", ": no qlab_plugin_entry symbol: not a qlab plugin"},
        {"broken_null.so", ": plugin declines host ABI 1"},
        {"broken_abi.so", ": plugin built for ABI 99, this qlab speaks ABI 1"},
        {"broken_desc.so",
         ": scheme 'baddefault': parameter 'bits' (INT): default 9 is outside [2, 8]"},
    };
    struct qplugin_host *h = qhost_new();
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s", tu_test_plugin(broken[i].file));
        load_fails(h, path, broken[i].phrase);
    }
    char fake[PATH_MAX];
    snprintf(fake, sizeof fake, "%s", tu_path("fake.so"));
    tu_write_file(fake, "not an ELF file\n", 16);
    load_fails(h, fake, ": not a loadable shared object: ");
    load_fails(h, tu_path("missing.so"), ": not a loadable shared object: ");
    load_fails(h, tu_tmpdir(), ": not a loadable shared object: ");
    ck_assert_int_eq(h->n_plugins, 0);
    host_still_works(h);
    qhost_free(h);
}
END_TEST

/* broken_matrix serves one flaw at a time, chosen by $QLAB_TEST_FLAW. */
START_TEST(test_descriptor_checks)
{
    static const struct {
        const char *flaw, *phrase;
    } cases[] = {
        {"struct_size", "descriptor struct_size 8 is smaller than the"},
        {"plugin_name_null", "plugin has no name"},
        {"plugin_name_bad", "plugin name 'Bad-Name' is invalid (must match [a-z0-9_]+)"},
        {"version_null", "plugin 'broken_matrix': version is NULL"},
        {"description_null", "plugin 'broken_matrix': description is NULL"},
        {"no_schemes", "plugin 'broken_matrix' declares no schemes"},
        {"schemes_null", "plugin 'broken_matrix' declares no schemes"},
        {"scheme_null", "scheme 0 is NULL"},
        {"scheme_size", "scheme 0: struct_size 16 is smaller than the"},
        {"scheme_name_bad", "scheme name 'bad name' is invalid (must match [a-zA-Z0-9_]+)"},
        {"scheme_dup", "scheme 'twin' appears twice"},
        {"fn_null", "scheme 'm': quantize is NULL"},
        {"params_null", "scheme 'm': params is NULL but n_params is 1"},
        {"param_name_bad", "scheme 'm': parameter name 'Bits' is invalid"},
        {"param_dup", "scheme 'm': parameter 'bits' appears twice"},
        {"param_type", "scheme 'm': parameter 'bits': type 7 is not a known type"},
        {"param_help", "scheme 'm': parameter 'bits': help is NULL"},
        {"int_minmax", "parameter 'bits' (INT): min 8 is greater than max 2"},
        {"int_frac", "parameter 'bits' (INT): INT min 0.5, max 8 and default 4 must be integers"},
        {"float_inf", "parameter 'gain' (FLOAT): min 0, max inf and default 1 must all be finite"},
        {"float_def", "parameter 'gain' (FLOAT): default 11 is outside [0, 10]"},
        {"enum_null", "parameter 'mode' (ENUM): ENUM has no choices"},
        {"enum_empty", "parameter 'mode' (ENUM): ENUM has no choices"},
        {"enum_def", "parameter 'mode' (ENUM): default 3 is not a choice index 0..2"},
        {"bool_def", "parameter 'flag' (BOOL): BOOL default must be 0 or 1"},
        {"unknown_flaw", "plugin declines host ABI 1"},
    };
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", tu_test_plugin("broken_matrix.so"));
    struct qplugin_host *h = qhost_new();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(setenv("QLAB_TEST_FLAW", cases[i].flaw, 1), 0);
        load_fails(h, path, cases[i].phrase);
    }
    /* The same file without a flaw loads: the refusals were the flaws'. */
    ck_assert_int_eq(setenv("QLAB_TEST_FLAW", "valid", 1), 0);
    qerr err = {{0}};
    ck_assert_msg(qhost_load(h, path, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(h->n_plugins, 1);
    unsetenv("QLAB_TEST_FLAW");
    host_still_works(h);
    qhost_free(h);
}
END_TEST

/* ---- Discover: a folder of plugins -------------------------------------- */

START_TEST(test_discover)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", tu_path("plugdir"));
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    char p[PATH_MAX + 64];
#define IN_DIR(name) (snprintf(p, sizeof p, "%s/%s", dir, name), p)
    symlink_to(int_so, IN_DIR("int.so"));
    copy_file(identity_so, IN_DIR("good_identity.so"));
    const char *linked[] = {"broken_abi.so", "broken_desc.so", "broken_nosymbol.so",
                            "broken_null.so"};
    for (size_t i = 0; i < 4; i++)
        symlink_to(tu_test_plugin(linked[i]), IN_DIR(linked[i]));
    symlink_to(tu_test_plugin("broken_dupname.so"), IN_DIR("zz_dupname.so"));
    tu_write_file(IN_DIR("fake.so"), "hello", 5);
    /* Not candidates: another suffix, a folder named *.so, a bare ".so". */
    tu_write_file(IN_DIR("notes.txt"), "x", 1);
    tu_write_file(IN_DIR("int.so.bak"), "x", 1);
    tu_write_file(IN_DIR(".so"), "x", 1);
    ck_assert_int_eq(mkdir(IN_DIR("sub.so"), 0755), 0);

    struct qplugin_host *h = qhost_new();
    qhost_discover(h, dir);
    ck_assert_int_eq(h->n_plugins, 2);
    ck_assert_str_eq(h->plugins[0]->desc->name, "identity_test");
    ck_assert_str_eq(h->plugins[1]->desc->name, "int");
    /* Refusals, one line each, in file-name order. */
    static const struct {
        const char *file, *phrase;
    } want[] = {
        {"broken_abi.so", "plugin built for ABI 99, this qlab speaks ABI 1"},
        {"broken_desc.so", "default 9 is outside [2, 8]"},
        {"broken_nosymbol.so", "no qlab_plugin_entry symbol"},
        {"broken_null.so", "plugin declines host ABI 1"},
        {"fake.so", "not a loadable shared object"},
        {"zz_dupname.so", "plugin 'int' is already loaded from"},
    };
    ck_assert_int_eq(h->n_refused, 6);
    for (int i = 0; i < 6; i++) {
        const char *line = h->refused[i];
        ck_assert_msg(starts_with(line, IN_DIR(want[i].file)), "line %d: %s", i, line);
        ck_assert_msg(strstr(line, want[i].phrase), "line %d: %s", i, line);
        ck_assert_ptr_null(strchr(line, '\n'));
    }
    /* Discovering again adds no plugin twice. */
    qhost_discover(h, dir);
    ck_assert_int_eq(h->n_plugins, 2);
    struct qscheme_config *c = configure(h, "identity", "gain=3");
    qscheme_config_free(c);
    qhost_free(h);
#undef IN_DIR

    /* A missing folder is no error and adds nothing. */
    h = qhost_new();
    qhost_discover(h, tu_path("no-such-dir"));
    ck_assert_int_eq(h->n_plugins, 0);
    ck_assert_int_eq(h->n_refused, 0);
    host_still_works(h);
    qhost_free(h);
}
END_TEST

/* ---- Output: results are checked before use ------------------------------ */

/* Quantizing a 4x4 tensor with `scheme` must fail with `phrase`, leaving out alone. */
static void quantize_fails(struct qplugin_host *h, const char *scheme, const char *phrase)
{
    struct qscheme_config *c = configure(h, scheme, "");
    float x[16], y[16];
    for (int i = 0; i < 16; i++) {
        x[i] = (float)i - 7.5f;
        y[i] = 42.0f;
    }
    struct qlab_tensor_view v = {.data = x, .rows = 4, .cols = 4, .name = "fc.weight"};
    qerr err = {{0}};
    ck_assert_int_ne(qscheme_quantize(c, &v, y, NULL, &err), 0);
    ck_assert_msg(strstr(err.msg, phrase), "got \"%s\", want \"%s\"", err.msg, phrase);
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq(y[i], 42.0f);
    qscheme_config_free(c);
}

START_TEST(test_bad_output_is_caught)
{
    struct qplugin_host *h = qhost_new();
    const char *files[] = {"broken_nan.so", "broken_size.so", "broken_overflow.so"};
    qerr err = {{0}};
    for (size_t i = 0; i < 3; i++)
        ck_assert_msg(qhost_load(h, tu_test_plugin(files[i]), &err) == 0, "%s", err.msg);
    quantize_fails(h, "nan", "broken_nan/nan: tensor 'fc.weight': produced NaN at index 5");
    quantize_fails(h, "size", "broken_size/size: tensor 'fc.weight': returned 15 values, expected 16");
    quantize_fails(h, "overflow",
                   "broken_overflow/overflow: tensor 'fc.weight': wrote past the end of its output buffer");
    host_still_works(h);
    quantize_fails(h, "size", "returned 15 values, expected 16");
    qhost_free(h);
}
END_TEST

static int cancel_yes(void *ctx)
{
    (void)ctx;
    return 1;
}

static void count_log(void *ctx, const char *message)
{
    (void)message;
    ++*(int *)ctx;
}

START_TEST(test_quantize_through_host)
{
    struct qplugin_host *h = host_with(identity_so, NULL);
    struct qscheme_config *c = configure(h, "identity", "gain=2,sign=flip");
    const float x[6] = {1, -2, 3, 0.5f, 0, -0.25f};
    float y[6] = {0};
    struct qlab_tensor_view v = {.data = x, .rows = 2, .cols = 3, .name = "w"};
    qerr err = {{0}};
    /* NULL host: the plugin still gets a host struct (it refuses none). */
    ck_assert_msg(qscheme_quantize(c, &v, y, NULL, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 6; i++)
        ck_assert_float_eq(y[i], -2 * x[i]);

    int logs = 0;
    struct qlab_host host = {.struct_size = sizeof host, .ctx = &logs, .log = count_log};
    ck_assert_msg(qscheme_quantize(c, &v, y, &host, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(logs, 1);
    host.cancelled = cancel_yes;
    ck_assert_int_ne(qscheme_quantize(c, &v, y, &host, &err), 0);
    ck_assert_str_eq(err.msg, "identity_test/identity: tensor 'w': cancelled");

    uint64_t bits = 0;
    ck_assert_int_eq(qscheme_size_bits(c, 2, 3, &bits, &err), 0);
    ck_assert_uint_eq(bits, 6 * 32);
    ck_assert_int_ne(qscheme_size_bits(c, -1, 3, &bits, &err), 0);
    qscheme_config_free(c);

    /* Finite input, infinite output: 1e38 * 10 overflows and is refused. */
    c = configure(h, "identity", "gain=10");
    const float big[2] = {1, 1e38f};
    v = (struct qlab_tensor_view){.data = big, .rows = 1, .cols = 2, .name = "big"};
    ck_assert_int_ne(qscheme_quantize(c, &v, y, NULL, &err), 0);
    ck_assert_str_eq(err.msg, "identity_test/identity: tensor 'big': produced Inf at index 1");
    /* A shape whose size overflows is refused before the plugin is called. */
    v.rows = INT64_MAX / 2;
    ck_assert_int_ne(qscheme_quantize(c, &v, y, NULL, &err), 0);
    ck_assert(strstr(err.msg, "invalid shape"));
    qscheme_config_free(c);
    qhost_free(h);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *plugin_host_suite(void)
{
    Suite *s = suite_create("plugin_host");
    TCase *core = tcase_create("Core");
    tcase_add_test(core, test_load_descriptors);
    tcase_add_test(core, test_same_file_twice_is_noop);
    tcase_add_test(core, test_copy_with_same_name_is_refused);
    tcase_add_test(core, test_free_null);
    suite_add_tcase(s, core);

    TCase *find = tcase_create("Find");
    tcase_add_test(find, test_find_scheme);
    tcase_add_test(find, test_find_ambiguous);
    suite_add_tcase(s, find);

    TCase *params = tcase_create("Params");
    tcase_add_test(params, test_configure_defaults);
    tcase_add_test(params, test_configure_with_spaces);
    tcase_add_test(params, test_configure_errors);
    tcase_add_test(params, test_parse_and_format_values);
    tcase_add_test(params, test_float_and_plugin_errors);
    suite_add_tcase(s, params);

    TCase *refuse = tcase_create("Refuse");
    tcase_add_test(refuse, test_broken_plugins_refused);
    tcase_add_test(refuse, test_descriptor_checks);
    tcase_add_test(refuse, test_discover);
    suite_add_tcase(s, refuse);

    TCase *output = tcase_create("Output");
    tcase_add_test(output, test_bad_output_is_caught);
    tcase_add_test(output, test_quantize_through_host);
    suite_add_tcase(s, output);
    return s;
}

int main(void)
{
    find_plugins();
    return tu_run(plugin_host_suite());
}
