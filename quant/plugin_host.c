/* plugin_host.c — loads scheme plugins, refuses malformed ones with the exact reason, and checks every result they return. */
#include "plugin_host.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "sha256.h"

/* Names longer than this are refused: they end up in labels, recipes and
 * database rows, and a bound keeps a garbage pointer from being walked far. */
#define NAME_MAX_LEN 64
/* An enum with more choices than this is surely a missing NULL terminator. */
#define MAX_CHOICES 256
/* Extra floats after the plugin's output that must come back untouched. */
#define GUARD_FLOATS QSCHEME_OUT_GUARD
/* The bit pattern the output buffer is filled with: a quiet NaN with a
 * payload, so a value the plugin forgot to write is also caught as NaN. */
#define SENTINEL_BITS 0x7fc0dea1u
/* Integer parameter bounds must be exactly representable as doubles. */
#define INT_BOUND 9007199254740992.0 /* 2^53 */

/* ---- small helpers ------------------------------------------------------ */

/* Plugin text is shown as one line: newlines and tabs become spaces. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r' || *s == '\t')
            *s = ' ';
}

/* A growable string; on allocation failure it remembers and stays valid. */
struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
};

static void sb_add(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

/* Returns the finished string (caller frees), or NULL on allocation failure. */
static char *sb_take(struct sbuf *b)
{
    if (b->oom || !b->p) {
        free(b->p);
        return b->oom ? NULL : strdup("");
    }
    return b->p;
}

/* Shortest text that reads back as the same double ("10", not "1e+01"). */
static void fmt_double(double x, char *buf, size_t size)
{
    if (x == floor(x) && fabs(x) < 1e15) {
        snprintf(buf, size, "%.0f", x);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

static int valid_name(const char *s, int allow_upper)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                 (allow_upper && c >= 'A' && c <= 'Z');
        if (!ok || n >= NAME_MAX_LEN)
            return 0;
    }
    return n > 0;
}

/* Enum choices are typed in "k=v,k=v" text inside a recipe, so they may
 * not hold those separators, blanks or the '+' that joins schemes; a ':'
 * is fine ("pattern=2:4"). */
static int valid_choice(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c <= ' ' || c == ',' || c == '=' || c == '+' || c == ';' || c >= 0x7f ||
            n >= NAME_MAX_LEN)
            return 0;
    }
    return n > 0;
}

static int n_choices(const struct qlab_param *p)
{
    int n = 0;
    while (n < MAX_CHOICES && p->choices[n])
        n++;
    return n;
}

static const char *type_name(enum qlab_param_type t)
{
    switch (t) {
    case QLAB_PARAM_INT: return "INT";
    case QLAB_PARAM_FLOAT: return "FLOAT";
    case QLAB_PARAM_BOOL: return "BOOL";
    case QLAB_PARAM_ENUM: return "ENUM";
    default: return "?";
    }
}

/* ---- descriptor validation ---------------------------------------------- */
/* Each check fills err without the file path; qhost_load puts it in front. */

static int check_number_param(const struct qlab_param *p, qerr *err)
{
    char lo[32], hi[32], def[32];
    fmt_double(p->min, lo, sizeof lo);
    fmt_double(p->max, hi, sizeof hi);
    fmt_double(p->def, def, sizeof def);
    if (!isfinite(p->min) || !isfinite(p->max) || !isfinite(p->def))
        return qerr_set(err, "min %s, max %s and default %s must all be finite", lo, hi, def);
    if (p->min > p->max)
        return qerr_set(err, "min %s is greater than max %s", lo, hi);
    if (p->def < p->min || p->def > p->max)
        return qerr_set(err, "default %s is outside [%s, %s]", def, lo, hi);
    if (p->type == QLAB_PARAM_INT) {
        if (p->min != floor(p->min) || p->max != floor(p->max) || p->def != floor(p->def))
            return qerr_set(err, "INT min %s, max %s and default %s must be integers", lo, hi,
                            def);
        if (fabs(p->min) > INT_BOUND || fabs(p->max) > INT_BOUND)
            return qerr_set(err, "INT range [%s, %s] exceeds +-2^53", lo, hi);
    }
    return 0;
}

static int check_enum_param(const struct qlab_param *p, qerr *err)
{
    if (!p->choices || !p->choices[0])
        return qerr_set(err, "ENUM has no choices (NULL or empty list)");
    int n = n_choices(p);
    if (n >= MAX_CHOICES)
        return qerr_set(err, "ENUM has %d or more choices (missing NULL terminator?)",
                        MAX_CHOICES);
    for (int i = 0; i < n; i++) {
        if (!valid_choice(p->choices[i]))
            return qerr_set(err,
                            "choice %d '%.64s' is empty or holds blanks, ',', '=', ';' or '+'", i,
                            p->choices[i]);
        for (int j = 0; j < i; j++)
            if (strcasecmp(p->choices[i], p->choices[j]) == 0)
                return qerr_set(err, "choice '%s' appears twice", p->choices[i]);
    }
    if (!isfinite(p->def) || p->def != floor(p->def) || p->def < 0 || p->def >= n) {
        char def[32];
        fmt_double(p->def, def, sizeof def);
        return qerr_set(err, "default %s is not a choice index 0..%d", def, n - 1);
    }
    return 0;
}

static int check_param(const struct qlab_param *ps, uint32_t i, qerr *err)
{
    const struct qlab_param *p = &ps[i];
    if (!p->name)
        return qerr_set(err, "parameter %" PRIu32 " has no name", i);
    if (!valid_name(p->name, 0))
        return qerr_set(err, "parameter name '%.64s' is invalid (must match [a-z0-9_]+)",
                        p->name);
    for (uint32_t j = 0; j < i; j++)
        if (strcasecmp(ps[j].name, p->name) == 0)
            return qerr_set(err, "parameter '%s' appears twice", p->name);
    unsigned type = (unsigned)p->type;
    if (type >= QLAB_PARAM_TYPE_COUNT)
        return qerr_set(err, "parameter '%s': type %u is not a known type", p->name, type);
    if (!p->help)
        return qerr_set(err, "parameter '%s': help is NULL", p->name);
    int rc = 0;
    switch (p->type) {
    case QLAB_PARAM_INT:
    case QLAB_PARAM_FLOAT: rc = check_number_param(p, err); break;
    case QLAB_PARAM_ENUM: rc = check_enum_param(p, err); break;
    case QLAB_PARAM_BOOL:
        if (p->def != 0 && p->def != 1)
            rc = qerr_set(err, "BOOL default must be 0 or 1");
        break;
    default: break;
    }
    if (rc)
        return qerr_prefix(err, "parameter '%s' (%s)", p->name, type_name(p->type));
    return 0;
}

/* A field of a growing struct exists when struct_size covers it. */
#define HAS_FIELD(s, field) \
    ((s)->struct_size >= offsetof(struct qlab_scheme, field) + sizeof((s)->field))

/* A v1 scheme must reach up to and including quantize. */
#define SCHEME_V1_SIZE (offsetof(struct qlab_scheme, quantize) + sizeof(void (*)(void)))

static int check_scheme(const struct qlab_scheme *const *ss, uint32_t i, qerr *err)
{
    const struct qlab_scheme *s = ss[i];
    if (!s)
        return qerr_set(err, "scheme %" PRIu32 " is NULL", i);
    if (s->struct_size < SCHEME_V1_SIZE)
        return qerr_set(err, "scheme %" PRIu32 ": struct_size %" PRIu32
                        " is smaller than the %zu bytes of ABI %u",
                        i, s->struct_size, (size_t)SCHEME_V1_SIZE, QLAB_PLUGIN_ABI);
    if (!s->name)
        return qerr_set(err, "scheme %" PRIu32 " has no name", i);
    if (!valid_name(s->name, 1))
        return qerr_set(err, "scheme name '%.64s' is invalid (must match [a-zA-Z0-9_]+)",
                        s->name);
    for (uint32_t j = 0; j < i; j++)
        if (strcasecmp(ss[j]->name, s->name) == 0)
            return qerr_set(err, "scheme '%s' appears twice (names are case-insensitive)",
                            s->name);
    const char *missing = !s->configure ? "configure"
                        : !s->release   ? "release"
                        : !s->size_bits ? "size_bits"
                        : !s->quantize  ? "quantize"
                        : !s->description ? "description" : NULL;
    if (missing)
        return qerr_set(err, "scheme '%s': %s is NULL", s->name, missing);
    if (s->n_params > 0 && !s->params)
        return qerr_set(err, "scheme '%s': params is NULL but n_params is %" PRIu32, s->name,
                        s->n_params);
    for (uint32_t k = 0; k < s->n_params; k++)
        if (check_param(s->params, k, err))
            return qerr_prefix(err, "scheme '%s'", s->name);
    /* optional capabilities, when the plugin's struct has them */
    if (HAS_FIELD(s, flags) && (s->flags & ~(uint32_t)QLAB_SCHEME_GGUF))
        return qerr_set(err, "scheme '%s': unknown flags 0x%" PRIx32, s->name,
                        s->flags & ~(uint32_t)QLAB_SCHEME_GGUF);
    int pack = HAS_FIELD(s, pack) && s->pack, rows = HAS_FIELD(s, packed_row_bytes) &&
                                                     s->packed_row_bytes;
    int unpack = HAS_FIELD(s, unpack) && s->unpack;
    if (pack != rows || (unpack && !pack))
        return qerr_set(err, "scheme '%s': pack, packed_row_bytes and unpack go together "
                        "(pack and packed_row_bytes both set, unpack only with them)", s->name);
    return 0;
}

static int check_descriptor(const struct qlab_plugin *d, qerr *err)
{
    if (d->abi_version != QLAB_PLUGIN_ABI)
        return qerr_set(err, "plugin built for ABI %" PRIu32 ", this qlab speaks ABI %u",
                        d->abi_version, QLAB_PLUGIN_ABI);
    if (d->struct_size < sizeof(struct qlab_plugin))
        return qerr_set(err, "descriptor struct_size %" PRIu32
                        " is smaller than the %zu bytes of ABI %u",
                        d->struct_size, sizeof(struct qlab_plugin), QLAB_PLUGIN_ABI);
    if (!d->name)
        return qerr_set(err, "plugin has no name");
    if (!valid_name(d->name, 0))
        return qerr_set(err, "plugin name '%.64s' is invalid (must match [a-z0-9_]+)", d->name);
    if (!d->version || !d->description)
        return qerr_set(err, "plugin '%s': %s is NULL", d->name,
                        !d->version ? "version" : "description");
    if (d->n_schemes == 0 || !d->schemes)
        return qerr_set(err, "plugin '%s' declares no schemes", d->name);
    for (uint32_t i = 0; i < d->n_schemes; i++)
        if (check_scheme(d->schemes, i, err))
            return -1;
    return 0;
}

/* ---- lifecycle ---------------------------------------------------------- */

struct qplugin_host *qhost_new(void)
{
    return calloc(1, sizeof(struct qplugin_host));
}

static void plugin_free(struct qplugin *p)
{
    if (!p)
        return;
    if (p->dl)
        dlclose(p->dl);
    free(p->path);
    free(p);
}

void qhost_free(struct qplugin_host *h)
{
    if (!h)
        return;
    for (int i = 0; i < h->n_plugins; i++)
        plugin_free(h->plugins[i]);
    free(h->plugins);
    for (int i = 0; i < h->n_refused; i++)
        free(h->refused[i]);
    free(h->refused);
    free(h);
}

/* ---- loading ------------------------------------------------------------ */

/* dlopen, the entry symbol and the handshake; fills *dl and *desc. */
static int open_plugin(const char *path, void **dl, const struct qlab_plugin **desc, qerr *err)
{
    /* Without a slash dlopen would search the library path, not the file. */
    char local[4096];
    const char *open_path = path;
    if (!strchr(path, '/')) {
        snprintf(local, sizeof local, "./%s", path);
        open_path = local;
    }
    dlerror();
    *dl = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) {
        const char *why = dlerror();
        return qerr_set(err, "not a loadable shared object: %s", why ? why : "unknown reason");
    }
    /* ISO C has no function<->object pointer cast; POSIX guarantees this copy works. */
    void *sym = dlsym(*dl, QLAB_PLUGIN_ENTRY_SYMBOL);
    qlab_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    if (!entry)
        return qerr_set(err, "no %s symbol: not a qlab plugin", QLAB_PLUGIN_ENTRY_SYMBOL);
    *desc = entry(QLAB_PLUGIN_ABI);
    if (!*desc)
        return qerr_set(err, "plugin declines host ABI %u", QLAB_PLUGIN_ABI);
    return 0;
}

int qhost_load(struct qplugin_host *h, const char *path, qerr *err)
{
    void *dl = NULL;
    const struct qlab_plugin *desc = NULL;
    qerr e = {{0}};
    if (open_plugin(path, &dl, &desc, &e))
        goto refuse;
    /* dlopen hands back the same handle for the same file (even through a
     * symlink), so that is how "already loaded" is recognised. */
    for (int i = 0; i < h->n_plugins; i++) {
        if (h->plugins[i]->dl == dl) {
            dlclose(dl);
            return 0;
        }
    }
    if (check_descriptor(desc, &e))
        goto refuse;
    for (int i = 0; i < h->n_plugins; i++) {
        if (strcmp(h->plugins[i]->desc->name, desc->name) == 0) {
            qerr_set(&e, "plugin '%s' is already loaded from %s", desc->name,
                     h->plugins[i]->path);
            goto refuse;
        }
    }
    struct qplugin *p = calloc(1, sizeof *p);
    struct qplugin **grown = NULL;
    if (p)
        p->path = strdup(path);
    if (p && p->path)
        grown = realloc(h->plugins, (size_t)(h->n_plugins + 1) * sizeof *grown);
    if (!grown) {
        plugin_free(p);
        qerr_set(&e, "out of memory");
        goto refuse;
    }
    h->plugins = grown;
    if (sha256_file_hex(path, p->sha256, &e)) {
        /* sha256's message already names the file. */
        plugin_free(p);
        dlclose(dl);
        one_line(e.msg);
        return qerr_set(err, "%s", e.msg);
    }
    p->dl = dl;
    p->desc = desc;
    h->plugins[h->n_plugins++] = p;
    return 0;

refuse:
    if (dl)
        dlclose(dl);
    one_line(e.msg);
    return qerr_set(err, "%s: %s", path, e.msg);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_refused(struct qplugin_host *h, const char *line)
{
    char **grown = realloc(h->refused, (size_t)(h->n_refused + 1) * sizeof *grown);
    if (!grown)
        return;
    h->refused = grown;
    char *copy = strdup(line);
    if (copy) {
        one_line(copy);
        h->refused[h->n_refused++] = copy;
    }
}

/* Names of the regular files ending in ".so" in dir, sorted; NULL-free count in *n. */
static char **list_so_files(const char *dir, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **names = NULL;
    int cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0)
            continue;
        char full[4096];
        struct stat st;
        if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, de->d_name) >= sizeof full ||
            stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (*n == cap) {
            int ncap = cap ? cap * 2 : 16;
            char **grown = realloc(names, (size_t)ncap * sizeof *grown);
            if (!grown)
                break;
            names = grown;
            cap = ncap;
        }
        if ((names[*n] = strdup(de->d_name)) != NULL)
            (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(names, (size_t)*n, sizeof *names, cmp_str);
    return names;
}

void qhost_discover(struct qplugin_host *h, const char *dir)
{
    int n;
    char **names = list_so_files(dir, &n);
    for (int i = 0; i < n; i++) {
        char full[4096];
        snprintf(full, sizeof full, "%s/%s", dir, names[i]);
        qerr e = {{0}};
        if (qhost_load(h, full, &e))
            add_refused(h, e.msg);
        free(names[i]);
    }
    free(names);
}

/* ---- finding schemes ---------------------------------------------------- */

/* Number of loaded schemes called `name` (case-insensitive). */
static int count_scheme(const struct qplugin_host *h, const char *name)
{
    int n = 0;
    for (int i = 0; i < h->n_plugins; i++) {
        const struct qlab_plugin *d = h->plugins[i]->desc;
        for (uint32_t k = 0; k < d->n_schemes; k++)
            n += strcasecmp(d->schemes[k]->name, name) == 0;
    }
    return n;
}

static int unknown_scheme(const struct qplugin_host *h, const char *name, qerr *err)
{
    struct sbuf b = {0};
    for (int i = 0; i < h->n_plugins; i++) {
        const struct qlab_plugin *d = h->plugins[i]->desc;
        for (uint32_t k = 0; k < d->n_schemes; k++) {
            const char *s = d->schemes[k]->name;
            if (b.len)
                sb_add(&b, ", ");
            /* A name two plugins share is only usable qualified. */
            if (count_scheme(h, s) > 1) {
                sb_add(&b, d->name);
                sb_add(&b, "/");
            }
            sb_add(&b, s);
        }
    }
    char *known = sb_take(&b);
    qerr_set(err, "unknown scheme '%s' (known: %s)", name,
             known && *known ? known : "none, no plugins loaded");
    free(known);
    return -1;
}

int qhost_find_scheme(const struct qplugin_host *h, const char *name,
                      struct qscheme_ref *out, qerr *err)
{
    if (!name)
        name = "";
    const char *slash = strchr(name, '/');
    size_t plen = slash ? (size_t)(slash - name) : 0;
    const char *sname = slash ? slash + 1 : name;
    struct qscheme_ref found = {0};
    int hits = 0;
    struct sbuf where = {0};
    for (int i = 0; i < h->n_plugins; i++) {
        const struct qlab_plugin *d = h->plugins[i]->desc;
        if (slash && (strlen(d->name) != plen || strncasecmp(d->name, name, plen) != 0))
            continue;
        for (uint32_t k = 0; k < d->n_schemes; k++) {
            if (strcasecmp(d->schemes[k]->name, sname) != 0)
                continue;
            found.plugin = h->plugins[i];
            found.scheme = d->schemes[k];
            if (hits++)
                sb_add(&where, " and ");
            sb_add(&where, d->name);
            sb_add(&where, "/");
            sb_add(&where, d->schemes[k]->name);
        }
    }
    char *places = sb_take(&where);
    int rc = 0;
    if (hits == 0)
        rc = unknown_scheme(h, name, err);
    else if (hits > 1)
        rc = qerr_set(err, "ambiguous: scheme '%s' is in %s; write plugin/scheme", name,
                      places ? places : "several plugins");
    else if (out)
        *out = found;
    free(places);
    return rc;
}

/* ---- parameter values --------------------------------------------------- */

void qparam_format_value(const struct qlab_param *p, const struct qlab_value *v,
                         char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    switch (p->type) {
    case QLAB_PARAM_INT: snprintf(buf, size, "%" PRId64, v->i); break;
    case QLAB_PARAM_FLOAT: fmt_double(v->f, buf, size); break;
    case QLAB_PARAM_BOOL: snprintf(buf, size, "%s", v->i ? "true" : "false"); break;
    case QLAB_PARAM_ENUM:
        if (p->choices && v->i >= 0 && v->i < n_choices(p))
            snprintf(buf, size, "%s", p->choices[v->i]);
        else
            snprintf(buf, size, "?");
        break;
    default: snprintf(buf, size, "?"); break;
    }
}

static void range_text(const struct qlab_param *p, char *buf, size_t size)
{
    char lo[32], hi[32];
    fmt_double(p->min, lo, sizeof lo);
    fmt_double(p->max, hi, sizeof hi);
    snprintf(buf, size, "%s..%s", lo, hi);
}

static int parse_int(const struct qlab_param *p, const char *text, struct qlab_value *v,
                     qerr *err)
{
    char range[80];
    range_text(p, range, sizeof range);
    const char *s = text + (text[0] == '+' || text[0] == '-');
    if (!*s || strspn(s, "0123456789") != strlen(s))
        return qerr_set(err, "%s=%s is not an integer (%s)", p->name, text, range);
    errno = 0;
    long long x = strtoll(text, NULL, 10);
    if (errno == ERANGE || (double)x < p->min || (double)x > p->max)
        return qerr_set(err, "%s=%s is out of range %s", p->name, text, range);
    v->i = x;
    v->f = (double)x;
    return 0;
}

static int parse_float(const struct qlab_param *p, const char *text, struct qlab_value *v,
                       qerr *err)
{
    char range[80];
    range_text(p, range, sizeof range);
    char *end = NULL;
    /* strtod would skip leading blanks; the whole text must be the number. */
    double x = isspace((unsigned char)text[0]) ? 0 : strtod(text, &end);
    if (!end || end == text || *end)
        return qerr_set(err, "%s=%s is not a number (%s)", p->name, text, range);
    if (!isfinite(x))
        return qerr_set(err, "%s=%s is not a finite number (%s)", p->name, text, range);
    if (x < p->min || x > p->max)
        return qerr_set(err, "%s=%s is out of range %s", p->name, text, range);
    v->f = x;
    v->i = 0;
    return 0;
}

static int parse_bool(const struct qlab_param *p, const char *text, struct qlab_value *v,
                      qerr *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++) {
        if (strcasecmp(text, yes[k]) == 0 || strcasecmp(text, no[k]) == 0) {
            v->i = strcasecmp(text, yes[k]) == 0;
            v->f = (double)v->i;
            return 0;
        }
    }
    return qerr_set(err, "%s=%s is not a boolean (true/false)", p->name, text);
}

static int parse_enum(const struct qlab_param *p, const char *text, struct qlab_value *v,
                      qerr *err)
{
    int n = n_choices(p);
    for (int k = 0; k < n; k++) {
        if (strcasecmp(text, p->choices[k]) == 0) {
            v->i = k;
            v->f = k;
            return 0;
        }
    }
    struct sbuf b = {0};
    for (int k = 0; k < n; k++) {
        if (k)
            sb_add(&b, ", ");
        sb_add(&b, p->choices[k]);
    }
    char *list = sb_take(&b);
    qerr_set(err, "%s=%s is not one of %s", p->name, text, list ? list : "its choices");
    free(list);
    return -1;
}

int qparam_parse_value(const struct qlab_param *p, const char *text,
                       struct qlab_value *v, qerr *err)
{
    struct qlab_value tmp = {0, 0};
    int rc;
    if (!text)
        text = "";
    switch (p->type) {
    case QLAB_PARAM_INT: rc = parse_int(p, text, &tmp, err); break;
    case QLAB_PARAM_FLOAT: rc = parse_float(p, text, &tmp, err); break;
    case QLAB_PARAM_BOOL: rc = parse_bool(p, text, &tmp, err); break;
    case QLAB_PARAM_ENUM: rc = parse_enum(p, text, &tmp, err); break;
    default: rc = qerr_set(err, "%s: unknown parameter type %u", p->name, (unsigned)p->type);
    }
    if (rc == 0)
        *v = tmp;
    return rc;
}

static struct qlab_value default_value(const struct qlab_param *p)
{
    struct qlab_value v = {0, 0};
    if (p->type == QLAB_PARAM_FLOAT)
        v.f = p->def;
    else
        v.i = (int64_t)p->def;
    if (p->type != QLAB_PARAM_FLOAT)
        v.f = (double)v.i;
    return v;
}

static int is_default(const struct qlab_param *p, const struct qlab_value *v)
{
    if (p->type == QLAB_PARAM_FLOAT)
        return v->f == p->def;
    return v->i == (int64_t)p->def;
}

/* ---- configuring a scheme ----------------------------------------------- */

/* The public struct plus whether the plugin handed out a handle that
 * must go back through release (a NULL handle may be valid too). */
struct config_priv {
    struct qscheme_config pub;
    int configured;
};

void qscheme_config_free(struct qscheme_config *c)
{
    if (!c)
        return;
    struct config_priv *cp = (struct config_priv *)c;
    if (cp->configured && c->ref.scheme)
        c->ref.scheme->release(c->handle);
    free(c->values);
    free(c->params_text);
    free(c->params_json);
    free(c->label);
    free(cp);
}

/* Trims blanks at both ends of s in place; returns the start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

static int find_param(const struct qlab_scheme *s, const char *key)
{
    for (uint32_t k = 0; k < s->n_params; k++)
        if (strcasecmp(s->params[k].name, key) == 0)
            return (int)k;
    return -1;
}

static int unknown_param(const struct qlab_scheme *s, const char *key, qerr *err)
{
    struct sbuf b = {0};
    for (uint32_t k = 0; k < s->n_params; k++) {
        if (k)
            sb_add(&b, ", ");
        sb_add(&b, s->params[k].name);
    }
    char *list = sb_take(&b);
    qerr_set(err, "%s: unknown parameter '%s' (parameters: %s)", s->name, key,
             list && *list ? list : "none");
    free(list);
    return -1;
}

/* Parses "k=v, k=v" into values[] (given[] marks what was set). */
static int parse_params(const struct qlab_scheme *s, const char *text,
                        struct qlab_value *values, unsigned char *given, qerr *err)
{
    char *copy = strdup(text ? text : "");
    if (!copy)
        return qerr_set(err, "%s: out of memory", s->name);
    int rc = 0;
    if (*trim(copy) == 0)
        goto done;
    char *rest = copy;
    while (rest && rc == 0) {
        char *item = rest;
        char *comma = strchr(rest, ',');
        if (comma)
            *comma = 0;
        rest = comma ? comma + 1 : NULL;
        item = trim(item);
        char *eq = strchr(item, '=');
        if (!*item) {
            rc = qerr_set(err, "%s: empty item in parameters '%s'", s->name, text);
            break;
        }
        if (!eq) {
            rc = qerr_set(err, "%s: '%s' has no '=' (write key=value)", s->name, item);
            break;
        }
        *eq = 0;
        char *key = trim(item), *val = trim(eq + 1);
        int k = find_param(s, key);
        if (k < 0)
            rc = unknown_param(s, key, err);
        else if (given[k])
            rc = qerr_set(err, "%s: parameter '%s' is given twice", s->name, s->params[k].name);
        else if (!*val)
            rc = qerr_set(err, "%s: parameter '%s' has an empty value", s->name,
                          s->params[k].name);
        else if (qparam_parse_value(&s->params[k], val, &values[k], err))
            rc = qerr_prefix(err, "%s", s->name);
        else
            given[k] = 1;
    }
done:
    free(copy);
    return rc;
}

/* params_text, params_json and label from the parsed values. */
static int describe_config(struct qscheme_config *c)
{
    const struct qlab_scheme *s = c->ref.scheme;
    struct sbuf text = {0}, label = {0};
    cJSON *json = cJSON_CreateObject();
    int ok = json != NULL, n_changed = 0;
    sb_add(&label, s->name);
    for (uint32_t k = 0; k < s->n_params && ok; k++) {
        const struct qlab_param *p = &s->params[k];
        const struct qlab_value *v = &c->values[k];
        char val[128];
        qparam_format_value(p, v, val, sizeof val);
        if (k)
            sb_add(&text, ",");
        sb_add(&text, p->name);
        sb_add(&text, "=");
        sb_add(&text, val);
        if (!is_default(p, v)) {
            sb_add(&label, n_changed++ ? "," : ":");
            sb_add(&label, p->name);
            sb_add(&label, "=");
            sb_add(&label, val);
        }
        cJSON *item = NULL;
        switch (p->type) {
        case QLAB_PARAM_INT: item = cJSON_AddNumberToObject(json, p->name, (double)v->i); break;
        case QLAB_PARAM_FLOAT: item = cJSON_AddNumberToObject(json, p->name, v->f); break;
        case QLAB_PARAM_BOOL: item = cJSON_AddBoolToObject(json, p->name, v->i != 0); break;
        default: item = cJSON_AddStringToObject(json, p->name, val); break;
        }
        ok = item != NULL;
    }
    c->params_text = sb_take(&text);
    c->label = sb_take(&label);
    c->params_json = ok ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    return c->params_text && c->label && c->params_json ? 0 : -1;
}

int qscheme_configure(const struct qscheme_ref *ref, const char *params_text,
                      struct qscheme_config **out, qerr *err)
{
    *out = NULL;
    const struct qlab_scheme *s = ref->scheme;
    struct config_priv *cp = calloc(1, sizeof *cp);
    struct qscheme_config *c = cp ? &cp->pub : NULL;
    unsigned char *given = calloc((size_t)s->n_params + 1, 1);
    if (c)
        c->values = calloc((size_t)s->n_params + 1, sizeof *c->values);
    if (!c || !given || !c->values) {
        free(given);
        qscheme_config_free(c);
        return qerr_set(err, "%s: out of memory", s->name);
    }
    c->ref = *ref;
    if (parse_params(s, params_text, c->values, given, err)) {
        free(given);
        qscheme_config_free(c);
        return -1;
    }
    for (uint32_t k = 0; k < s->n_params; k++)
        if (!given[k])
            c->values[k] = default_value(&s->params[k]);
    free(given);

    char ebuf[512] = "";
    void *handle = NULL;
    if (s->configure(c->values, &handle, ebuf, sizeof ebuf) != 0) {
        ebuf[sizeof ebuf - 1] = 0;
        one_line(ebuf);
        qerr_set(err, "%s/%s: %s", ref->plugin->desc->name, s->name,
                 *ebuf ? ebuf : "configure failed without a message");
        qscheme_config_free(c);
        return -1;
    }
    c->handle = handle;
    cp->configured = 1;
    if (describe_config(c)) {
        qscheme_config_free(c);
        return qerr_set(err, "%s: out of memory", s->name);
    }
    *out = c;
    return 0;
}

/* ---- calling a configured scheme ---------------------------------------- */

static void scheme_prefix(const struct qscheme_config *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", c->ref.plugin->desc->name, c->ref.scheme->name);
}

int qscheme_size_bits(const struct qscheme_config *c, int64_t rows, int64_t cols,
                      uint64_t *bits, qerr *err)
{
    char who[160];
    scheme_prefix(c, who, sizeof who);
    if (rows < 0 || cols < 0)
        return qerr_set(err, "%s: invalid tensor shape %" PRId64 " x %" PRId64, who, rows, cols);
    char ebuf[512] = "";
    uint64_t b = 0;
    if (c->ref.scheme->size_bits(c->handle, rows, cols, &b, ebuf, sizeof ebuf) != 0) {
        ebuf[sizeof ebuf - 1] = 0;
        one_line(ebuf);
        return qerr_set(err, "%s: %s", who, *ebuf ? ebuf : "size_bits failed without a message");
    }
    if (b == 0 && rows > 0 && cols > 0)
        return qerr_set(err, "%s: size_bits returned 0 bits for a %" PRId64 " x %" PRId64
                        " tensor", who, rows, cols);
    *bits = b;
    return 0;
}

/* Index of the first value that is not finite, or -1. The common case (all
 * finite) is one branch-free pass over the exponent bits. */
static int64_t first_non_finite(const float *x, int64_t n)
{
    uint32_t any = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], sizeof u); /* the bits, without breaking aliasing rules */
        any |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    if (!any)
        return -1;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return -1;
}

/* Runs the plugin into buf, which has room for n + GUARD_FLOATS values,
 * and checks what it wrote. */
static int quantize_checked(const struct qscheme_config *c, const struct qlab_tensor_view *in,
                            float *buf, int64_t n, const struct qlab_host *host, const char *who,
                            qerr *err)
{
    /* A write past the end lands in the guard, which must stay intact. */
    const uint32_t sentinel_bits = SENTINEL_BITS;
    for (int i = 0; i < GUARD_FLOATS; i++)
        memcpy(&buf[n + i], &sentinel_bits, sizeof sentinel_bits);
    struct qlab_host def_host = {.struct_size = sizeof def_host};
    char ebuf[512] = "";
    int64_t written = -1;
    int rc = c->ref.scheme->quantize(c->handle, in, buf, n, &written,
                                     host ? host : &def_host, ebuf, sizeof ebuf);
    ebuf[sizeof ebuf - 1] = 0;
    one_line(ebuf);
    if (rc != 0)
        return qerr_set(err, "%s: %s", who, *ebuf ? ebuf : "quantize failed without a message");
    if (written != n)
        return qerr_set(err, "%s: returned %" PRId64 " values, expected %" PRId64, who, written,
                        n);
    /* Compared bit for bit: the sentinel is a NaN, which never equals itself. */
    for (int i = 0; i < GUARD_FLOATS; i++)
        if (memcmp(&buf[n + i], &sentinel_bits, sizeof sentinel_bits) != 0)
            return qerr_set(err, "%s: wrote past the end of its output buffer", who);
    int64_t bad = first_non_finite(buf, n);
    if (bad >= 0)
        return qerr_set(err, "%s: produced %s at index %" PRId64, who,
                        isnan(buf[bad]) ? "NaN" : "Inf", bad);
    return 0;
}

static int quantize_args(const struct qscheme_config *c, const struct qlab_tensor_view *in,
                         const float *out, char *who, size_t who_size, int64_t *n, qerr *err)
{
    snprintf(who, who_size, "%s/%s: tensor '%.200s'", c->ref.plugin->desc->name,
             c->ref.scheme->name, in->name ? in->name : "(unnamed)");
    if (in->rows < 0 || in->cols < 0 || __builtin_mul_overflow(in->rows, in->cols, n) ||
        (uint64_t)*n > SIZE_MAX / sizeof(float) - GUARD_FLOATS)
        return qerr_set(err, "%s: invalid shape %" PRId64 " x %" PRId64, who, in->rows,
                        in->cols);
    if (*n > 0 && (!in->data || !out))
        return qerr_set(err, "%s: no data", who);
    return 0;
}

int qscheme_quantize(const struct qscheme_config *c, const struct qlab_tensor_view *in,
                     float *out, const struct qlab_host *host, qerr *err)
{
    char who[400];
    int64_t n;
    if (quantize_args(c, in, out, who, sizeof who, &n, err) < 0)
        return -1;
    /* a private buffer, so the caller's stays untouched on failure */
    float *buf = malloc(((size_t)n + GUARD_FLOATS) * sizeof *buf);
    if (!buf)
        return qerr_set(err, "%s: out of memory for %" PRId64 " values", who, n);
    int rc = quantize_checked(c, in, buf, n, host, who, err);
    if (rc == 0 && n > 0)
        memcpy(out, buf, (size_t)n * sizeof *out);
    free(buf);
    return rc;
}

int qscheme_quantize_into(const struct qscheme_config *c, const struct qlab_tensor_view *in,
                          float *out, int64_t out_capacity, const struct qlab_host *host,
                          qerr *err)
{
    char who[400];
    int64_t n;
    if (quantize_args(c, in, out, who, sizeof who, &n, err) < 0)
        return -1;
    if (out_capacity < n + QSCHEME_OUT_GUARD)
        return qerr_set(err, "%s: output has room for %" PRId64 " values, %" PRId64 " needed",
                        who, out_capacity, n + QSCHEME_OUT_GUARD);
    return quantize_checked(c, in, out, n, host, who, err);
}

/* ---- optional capabilities: packing, decoding, pruning masks -------------- */

int qscheme_gguf_type(const struct qlab_scheme *s, uint32_t *type)
{
    if (!HAS_FIELD(s, gguf_type) || !(s->flags & QLAB_SCHEME_GGUF))
        return 0;
    *type = s->gguf_type;
    return 1;
}

int qscheme_can_pack(const struct qlab_scheme *s)
{
    return HAS_FIELD(s, pack) && s->pack && s->packed_row_bytes;
}

int qscheme_can_unpack(const struct qlab_scheme *s)
{
    return qscheme_can_pack(s) && HAS_FIELD(s, unpack) && s->unpack;
}

int qscheme_can_mask(const struct qlab_scheme *s)
{
    return HAS_FIELD(s, mask) && s->mask;
}

int qscheme_packed_row_bytes(const struct qscheme_config *c, int64_t cols, int64_t *bytes,
                             qerr *err)
{
    char who[160];
    scheme_prefix(c, who, sizeof who);
    if (!qscheme_can_pack(c->ref.scheme))
        return qerr_set(err, "%s: the scheme has no packed format", who);
    char ebuf[512] = "";
    int64_t b = -1;
    if (cols < 0 || c->ref.scheme->packed_row_bytes(c->handle, cols, &b, ebuf, sizeof ebuf) != 0) {
        ebuf[sizeof ebuf - 1] = 0;
        one_line(ebuf);
        return qerr_set(err, "%s: %s", who, *ebuf ? ebuf : "packed_row_bytes failed");
    }
    if (b < 0 || (cols > 0 && b == 0))
        return qerr_set(err, "%s: packed_row_bytes gave %" PRId64 " bytes for %" PRId64
                        " values", who, b, cols);
    *bytes = b;
    return 0;
}

#define GUARD_BYTES 64

int qscheme_pack(const struct qscheme_config *c, const struct qlab_tensor_view *in, uint8_t *out,
                 int64_t out_size, const struct qlab_host *host, qerr *err)
{
    char who[400];
    snprintf(who, sizeof who, "%s/%s: tensor '%.200s'", c->ref.plugin->desc->name,
             c->ref.scheme->name, in->name ? in->name : "(unnamed)");
    int64_t row, need;
    if (qscheme_packed_row_bytes(c, in->cols, &row, err) < 0)
        return -1;
    if (in->rows < 0 || __builtin_mul_overflow(row, in->rows, &need) ||
        (uint64_t)need > SIZE_MAX - GUARD_BYTES)
        return qerr_set(err, "%s: packed size overflows", who);
    if (out_size < need)
        return qerr_set(err, "%s: %" PRId64 " bytes of room, %" PRId64 " needed", who, out_size,
                        need);
    uint8_t *buf = malloc((size_t)need + GUARD_BYTES);
    if (!buf)
        return qerr_set(err, "%s: out of memory for %" PRId64 " bytes", who, need);
    memset(buf + need, 0xA5, GUARD_BYTES);
    struct qlab_host def_host = {.struct_size = sizeof def_host};
    char ebuf[512] = "";
    int64_t written = -1;
    int rc = c->ref.scheme->pack(c->handle, in, buf, need, &written, host ? host : &def_host,
                                 ebuf, sizeof ebuf);
    ebuf[sizeof ebuf - 1] = 0;
    one_line(ebuf);
    if (rc != 0)
        rc = qerr_set(err, "%s: %s", who, *ebuf ? ebuf : "pack failed without a message");
    else if (written != need)
        rc = qerr_set(err, "%s: packed %" PRId64 " bytes, expected %" PRId64, who, written, need);
    else
        for (int i = 0; i < GUARD_BYTES && rc == 0; i++)
            if (buf[need + i] != 0xA5)
                rc = qerr_set(err, "%s: wrote past the end of its packed buffer", who);
    if (rc == 0 && need > 0)
        memcpy(out, buf, (size_t)need);
    free(buf);
    return rc ? -1 : 0;
}

int qscheme_unpack(const struct qscheme_config *c, const uint8_t *in, int64_t in_size,
                   int64_t rows, int64_t cols, float *out, qerr *err)
{
    char who[160];
    scheme_prefix(c, who, sizeof who);
    if (!qscheme_can_unpack(c->ref.scheme))
        return qerr_set(err, "%s: the scheme cannot decode packed bytes", who);
    int64_t row, need, n;
    if (qscheme_packed_row_bytes(c, cols, &row, err) < 0)
        return -1;
    if (rows < 0 || __builtin_mul_overflow(row, rows, &need) ||
        __builtin_mul_overflow(rows, cols, &n) || (uint64_t)n > SIZE_MAX / sizeof(float) - 16)
        return qerr_set(err, "%s: invalid shape %" PRId64 " x %" PRId64, who, rows, cols);
    if (in_size != need)
        return qerr_set(err, "%s: %" PRId64 " bytes given, a %" PRId64 " x %" PRId64
                        " tensor packs to %" PRId64, who, in_size, rows, cols, need);
    float *buf = malloc(((size_t)n + 16) * sizeof *buf);
    if (!buf)
        return qerr_set(err, "%s: out of memory", who);
    const uint32_t sentinel_bits = SENTINEL_BITS;
    for (int i = 0; i < 16; i++)
        memcpy(&buf[n + i], &sentinel_bits, sizeof sentinel_bits);
    char ebuf[512] = "";
    int rc = c->ref.scheme->unpack(c->handle, in, in_size, rows, cols, buf, n, ebuf, sizeof ebuf);
    ebuf[sizeof ebuf - 1] = 0;
    one_line(ebuf);
    if (rc != 0)
        rc = qerr_set(err, "%s: %s", who, *ebuf ? ebuf : "unpack failed without a message");
    for (int i = 0; i < 16 && rc == 0; i++)
        if (memcmp(&buf[n + i], &sentinel_bits, sizeof sentinel_bits) != 0)
            rc = qerr_set(err, "%s: wrote past the end of its output buffer", who);
    for (int64_t i = 0; i < n && rc == 0; i++)
        if (!isfinite(buf[i]))
            rc = qerr_set(err, "%s: decoded %s at index %" PRId64, who,
                          isnan(buf[i]) ? "NaN" : "Inf", i);
    if (rc == 0 && n > 0)
        memcpy(out, buf, (size_t)n * sizeof *out);
    free(buf);
    return rc ? -1 : 0;
}

int qscheme_mask(const struct qscheme_config *c, const struct qlab_tensor_view *in, uint8_t *keep,
                 int64_t *kept_per_row, const struct qlab_host *host, qerr *err)
{
    char who[400];
    snprintf(who, sizeof who, "%s/%s: tensor '%.200s'", c->ref.plugin->desc->name,
             c->ref.scheme->name, in->name ? in->name : "(unnamed)");
    if (!qscheme_can_mask(c->ref.scheme))
        return qerr_set(err, "%s: the scheme does not prune", who);
    int64_t n;
    if (in->rows < 0 || in->cols < 0 || __builtin_mul_overflow(in->rows, in->cols, &n) ||
        (uint64_t)n > SIZE_MAX - GUARD_BYTES)
        return qerr_set(err, "%s: invalid shape", who);
    uint8_t *buf = malloc((size_t)n + GUARD_BYTES);
    if (!buf)
        return qerr_set(err, "%s: out of memory", who);
    memset(buf, 0xA5, (size_t)n + GUARD_BYTES);
    struct qlab_host def_host = {.struct_size = sizeof def_host};
    char ebuf[512] = "";
    int rc = c->ref.scheme->mask(c->handle, in, buf, n, host ? host : &def_host, ebuf,
                                 sizeof ebuf);
    ebuf[sizeof ebuf - 1] = 0;
    one_line(ebuf);
    if (rc != 0)
        rc = qerr_set(err, "%s: %s", who, *ebuf ? ebuf : "mask failed without a message");
    for (int i = 0; i < GUARD_BYTES && rc == 0; i++)
        if (buf[n + i] != 0xA5)
            rc = qerr_set(err, "%s: wrote past the end of its mask", who);
    int64_t per_row = -1;
    for (int64_t r = 0; r < in->rows && rc == 0; r++) {
        int64_t k = 0;
        for (int64_t j = 0; j < in->cols && rc == 0; j++) {
            uint8_t v = buf[r * in->cols + j];
            if (v > 1)
                rc = qerr_set(err, "%s: mask value %u at index %" PRId64 " is not 0 or 1", who,
                              v, r * in->cols + j);
            k += v;
        }
        if (rc == 0 && per_row >= 0 && k != per_row)
            rc = qerr_set(err, "%s: row %" PRId64 " keeps %" PRId64 " values but row 0 keeps %"
                          PRId64 " (every row must keep the same count)", who, r, k, per_row);
        per_row = k;
    }
    if (rc == 0) {
        if (n > 0)
            memcpy(keep, buf, (size_t)n);
        *kept_per_row = per_row < 0 ? 0 : per_row;
    }
    free(buf);
    return rc ? -1 : 0;
}
