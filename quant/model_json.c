/* model_json.c — loads the native model format (model.json + safetensors) into the model IR. */
#include "model_json.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"

#define MAX_JSON_BYTES (16u << 20) /* a graph description, not weights */

/* ---- loader state ----------------------------------------------------- */

struct loader {
    struct qmodel *m;
    const char *file;    /* the model.json path, for messages */
    char *dir;           /* its folder, for relative paths */
    int cap_tensors;
    qerr *err;
};

/* Fields each op accepts beyond op/name/input. */
static const char *const op_fields[QOP_COUNT] = {
    [QOP_LINEAR] = "weight bias transposed",
    [QOP_CONV2D] = "weight bias stride padding dilation groups",
    [QOP_RELU] = "",
    [QOP_GELU] = "approximate",
    [QOP_MAXPOOL2D] = "kernel stride padding ceil_mode",
    [QOP_AVGPOOL2D] = "kernel stride padding ceil_mode count_include_pad",
    [QOP_GLOBAL_AVGPOOL] = "",
    [QOP_FLATTEN] = "",
    [QOP_RESHAPE] = "shape",
    [QOP_BATCHNORM] = "weight bias mean var eps",
    [QOP_ADD] = "",
    [QOP_SOFTMAX] = "",
};

static int word_in(const char *word, const char *list)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, word, n) == 0)
            return 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* ---- small JSON readers ------------------------------------------------ */

/* An integer that fits in int, within [lo, hi]. */
static int json_int(const cJSON *v, long lo, long hi, int *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return -1;
    *out = (int)d;
    return 0;
}

/* n or [a, b] into two ints (both >= lo). */
static int json_pair(struct loader *L, const char *where, const char *key, const cJSON *v,
                     int lo, int out[2])
{
    if (cJSON_IsNumber(v)) {
        if (json_int(v, lo, INT_MAX / 4, &out[0]) < 0)
            goto bad;
        out[1] = out[0];
        return 0;
    }
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 &&
        json_int(cJSON_GetArrayItem(v, 0), lo, INT_MAX / 4, &out[0]) == 0 &&
        json_int(cJSON_GetArrayItem(v, 1), lo, INT_MAX / 4, &out[1]) == 0)
        return 0;
bad:
    return qerr_set(L->err, "%s: %s: \"%s\" must be an integer >= %d or a list of two", L->file,
                    where, key, lo);
}

static int json_bool(struct loader *L, const char *where, const char *key, const cJSON *v, int *out)
{
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    return qerr_set(L->err, "%s: %s: \"%s\" must be true or false", L->file, where, key);
}

/* A path relative to the model.json folder (absolute paths stay). */
static char *resolve_path(const struct loader *L, const char *rel)
{
    if (rel[0] == '/' || strcmp(L->dir, ".") == 0)
        return strdup(rel);
    size_t n = strlen(L->dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", L->dir, rel);
    return p;
}

/* ---- tensors ------------------------------------------------------------ */

/* Index of the graph tensor `name`, adding it from the weight files on
 * first use. */
static int tensor_ref(struct loader *L, const char *where, const char *key, const cJSON *v, int *out)
{
    struct qmodel *m = L->m;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return qerr_set(L->err, "%s: %s: \"%s\" must name a tensor", L->file, where, key);
    const char *name = v->valuestring;
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i]->name, name) == 0) {
            *out = i;
            return 0;
        }
    struct qtensor *found = NULL;
    for (int f = 0; f < m->n_files && !found; f++)
        found = st_find(m->files[f], name);
    if (!found)
        return qerr_set(L->err, "%s: %s: tensor '%s' is not in %s%s", L->file, where, name,
                        m->n_files == 1 ? m->files[0]->path : "any of the weight files",
                        "");
    if (m->n_tensors == L->cap_tensors) {
        int cap = L->cap_tensors ? L->cap_tensors * 2 : 16;
        struct qtensor **t = realloc(m->tensors, (size_t)cap * sizeof *t);
        if (!t)
            return qerr_set(L->err, "%s: out of memory", L->file);
        m->tensors = t;
        L->cap_tensors = cap;
    }
    m->tensors[m->n_tensors] = found;
    *out = m->n_tensors++;
    return 0;
}

static int open_weights(struct loader *L, const cJSON *w)
{
    struct qmodel *m = L->m;
    int n = cJSON_IsString(w) ? 1 : cJSON_IsArray(w) ? cJSON_GetArraySize(w) : -1;
    if (n <= 0)
        return qerr_set(L->err, "%s: \"weights\" must be a file name or a non-empty list of them",
                        L->file);
    m->files = calloc((size_t)n, sizeof *m->files);
    if (!m->files)
        return qerr_set(L->err, "%s: out of memory", L->file);
    for (int i = 0; i < n; i++) {
        const cJSON *item = cJSON_IsString(w) ? w : cJSON_GetArrayItem(w, i);
        if (!cJSON_IsString(item) || !item->valuestring[0])
            return qerr_set(L->err, "%s: \"weights\" entry %d is not a file name", L->file, i);
        char *path = resolve_path(L, item->valuestring);
        if (!path)
            return qerr_set(L->err, "%s: out of memory", L->file);
        int rc = st_open(path, &m->files[i], L->err);
        free(path);
        if (rc < 0)
            return -1;
        m->n_files = i + 1;
    }
    /* A name in two files would make the graph ambiguous. */
    for (int a = 0; a < m->n_files; a++)
        for (int t = 0; t < m->files[a]->n_tensors; t++)
            for (int b = a + 1; b < m->n_files; b++)
                if (st_find(m->files[b], m->files[a]->tensors[t].name))
                    return qerr_set(L->err, "%s: tensor '%s' is in both %s and %s", L->file,
                                    m->files[a]->tensors[t].name, m->files[a]->path,
                                    m->files[b]->path);
    return 0;
}

/* ---- input and preprocessing -------------------------------------------- */

static int read_floats(struct loader *L, const char *key, const cJSON *v, float **out, int *n)
{
    int count = cJSON_IsNumber(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (count <= 0 || count > 4096)
        return qerr_set(L->err, "%s: input \"%s\" must be a number or a list of 1..4096 numbers",
                        L->file, key);
    float *vals = malloc((size_t)count * sizeof *vals);
    if (!vals)
        return qerr_set(L->err, "%s: out of memory", L->file);
    for (int i = 0; i < count; i++) {
        const cJSON *item = cJSON_IsNumber(v) ? v : cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble)) {
            free(vals);
            return qerr_set(L->err, "%s: input \"%s\" entry %d is not a finite number", L->file,
                            key, i);
        }
        vals[i] = (float)item->valuedouble;
    }
    *out = vals;
    *n = count;
    return 0;
}

static int read_input(struct loader *L, const cJSON *in)
{
    struct qmodel *m = L->m;
    if (!cJSON_IsObject(in))
        return qerr_set(L->err, "%s: \"input\" must be an object with a \"shape\"", L->file);
    for (const cJSON *f = in->child; f; f = f->next)
        if (!word_in(f->string, "shape scale offset"))
            return qerr_set(L->err, "%s: input: unknown field '%s' (fields: shape, scale, offset)",
                            L->file, f->string);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
    int nd = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : 0;
    if (nd < 1 || nd > QT_MAX_DIMS)
        return qerr_set(L->err, "%s: input \"shape\" must list 1..%d dimensions (per sample)",
                        L->file, QT_MAX_DIMS);
    m->in_ndim = nd;
    for (int i = 0; i < nd; i++) {
        int d;
        if (json_int(cJSON_GetArrayItem(shape, i), 1, 1 << 24, &d) < 0)
            return qerr_set(L->err, "%s: input \"shape\" entry %d must be a positive integer",
                            L->file, i);
        m->in_shape[i] = d;
    }
    const cJSON *scale = cJSON_GetObjectItemCaseSensitive(in, "scale");
    const cJSON *offset = cJSON_GetObjectItemCaseSensitive(in, "offset");
    int ns = 0, no = 0;
    if (scale && read_floats(L, "scale", scale, &m->pre_scale, &ns) < 0)
        return -1;
    if (offset && read_floats(L, "offset", offset, &m->pre_offset, &no) < 0)
        return -1;
    if (scale && offset && ns != no)
        return qerr_set(L->err, "%s: input \"scale\" has %d values but \"offset\" has %d", L->file,
                        ns, no);
    m->n_pre = ns ? ns : no ? no : 1;
    if (!m->pre_scale) {
        m->pre_scale = malloc((size_t)m->n_pre * sizeof(float));
        if (!m->pre_scale)
            return qerr_set(L->err, "%s: out of memory", L->file);
        for (int i = 0; i < m->n_pre; i++)
            m->pre_scale[i] = 1.0f;
    }
    if (!m->pre_offset) {
        m->pre_offset = calloc((size_t)m->n_pre, sizeof(float));
        if (!m->pre_offset)
            return qerr_set(L->err, "%s: out of memory", L->file);
    }
    return 0;
}

/* ---- graph -------------------------------------------------------------- */

static int find_node(const struct qmodel *m, int upto, const char *name)
{
    if (strcmp(name, "input") == 0)
        return QNODE_INPUT;
    for (int i = upto - 1; i >= 0; i--)
        if (m->nodes[i].name && strcmp(m->nodes[i].name, name) == 0)
            return i;
    return -2;
}

static int read_padding(struct loader *L, const char *where, const cJSON *v, struct qnode *n)
{
    if (cJSON_IsString(v)) {
        if (strcmp(v->valuestring, "valid") == 0)
            return 0;
        if (strcmp(v->valuestring, "same_upper") == 0) {
            n->pad_same_upper = 1;
            return 0;
        }
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 4) {
        for (int i = 0; i < 4; i++)
            if (json_int(cJSON_GetArrayItem(v, i), 0, INT_MAX / 4, &n->pad[i]) < 0)
                goto bad;
        return 0;
    } else {
        int hw[2];
        qerr ignore;
        struct loader quiet = *L;
        quiet.err = &ignore;
        if (json_pair(&quiet, where, "padding", v, 0, hw) == 0) {
            n->pad[0] = n->pad[2] = hw[0];
            n->pad[1] = n->pad[3] = hw[1];
            return 0;
        }
    }
bad:
    return qerr_set(L->err,
                    "%s: %s: \"padding\" must be n, [h, w], [top, left, bottom, right], "
                    "\"valid\" or \"same_upper\"",
                    L->file, where);
}

static int read_node(struct loader *L, int idx, const cJSON *j)
{
    struct qmodel *m = L->m;
    struct qnode *n = &m->nodes[idx];
    char where[160];
    n->weight = n->bias = n->mean = n->var = -1;
    n->stride[0] = n->stride[1] = 1;
    n->dilation[0] = n->dilation[1] = 1;
    n->groups = 1;
    n->eps = 1e-5f;
    n->count_include_pad = 1;

    if (!cJSON_IsObject(j))
        return qerr_set(L->err, "%s: graph node %d is not an object", L->file, idx);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    if (!cJSON_IsString(op))
        return qerr_set(L->err, "%s: graph node %d has no \"op\"", L->file, idx);
    int k = qop_from_name(op->valuestring);
    if (k < 0)
        return qerr_set(L->err,
                        "%s: graph node %d: unknown op '%s' (ops: linear, conv2d, relu, gelu, "
                        "maxpool2d, avgpool2d, global_avgpool, flatten, reshape, batchnorm, add, "
                        "softmax)",
                        L->file, idx, op->valuestring);
    n->op = (enum qop)k;

    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (name && (!cJSON_IsString(name) || !name->valuestring[0] ||
                 strcmp(name->valuestring, "input") == 0))
        return qerr_set(L->err, "%s: graph node %d: \"name\" must be a non-empty string other "
                        "than \"input\"", L->file, idx);
    char auto_name[48];
    snprintf(auto_name, sizeof auto_name, "%s%d", qop_name(n->op), idx);
    n->name = strdup(name ? name->valuestring : auto_name);
    if (!n->name)
        return qerr_set(L->err, "%s: out of memory", L->file);
    if (find_node(m, idx, n->name) >= 0)
        return qerr_set(L->err, "%s: graph node %d: name '%s' is used twice", L->file, idx,
                        n->name);
    snprintf(where, sizeof where, "node %d '%s' (%s)", idx, n->name, qop_name(n->op));

    /* Every field must mean something for this op: a typo is an error. */
    for (const cJSON *f = j->child; f; f = f->next)
        if (!word_in(f->string, "op name input") && !word_in(f->string, op_fields[n->op]))
            return qerr_set(L->err, "%s: %s: unknown field '%s'%s%s%s", L->file, where, f->string,
                            op_fields[n->op][0] ? " (fields: " : "", op_fields[n->op],
                            op_fields[n->op][0] ? ")" : "");

    /* Inputs: default is the previous node (or the model input). */
    int want = n->op == QOP_ADD ? 2 : 1;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(j, "input");
    if (!in) {
        if (want == 2)
            return qerr_set(L->err, "%s: %s: \"input\" must list the two values to add", L->file,
                            where);
        n->n_in = 1;
        n->in[0] = idx == 0 ? QNODE_INPUT : idx - 1;
    } else {
        int cnt = cJSON_IsString(in) ? 1 : cJSON_IsArray(in) ? cJSON_GetArraySize(in) : 0;
        if (cnt != want)
            return qerr_set(L->err, "%s: %s: \"input\" must name %d value%s", L->file, where,
                            want, want == 1 ? "" : "s");
        n->n_in = cnt;
        for (int i = 0; i < cnt; i++) {
            const cJSON *s = cJSON_IsString(in) ? in : cJSON_GetArrayItem(in, i);
            if (!cJSON_IsString(s))
                return qerr_set(L->err, "%s: %s: \"input\" entries must be names", L->file, where);
            int src = find_node(m, idx, s->valuestring);
            if (src == -2)
                return qerr_set(L->err, "%s: %s: input '%s' is not \"input\" or an earlier node",
                                L->file, where, s->valuestring);
            n->in[i] = src;
        }
    }

    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "weight")) &&
        tensor_ref(L, where, "weight", v, &n->weight) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "bias")) &&
        tensor_ref(L, where, "bias", v, &n->bias) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "mean")) &&
        tensor_ref(L, where, "mean", v, &n->mean) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "var")) &&
        tensor_ref(L, where, "var", v, &n->var) < 0)
        return -1;
    if ((n->op == QOP_LINEAR || n->op == QOP_CONV2D) && n->weight < 0)
        return qerr_set(L->err, "%s: %s: needs a \"weight\" tensor", L->file, where);
    if (n->op == QOP_BATCHNORM && (n->weight < 0 || n->bias < 0 || n->mean < 0 || n->var < 0))
        return qerr_set(L->err, "%s: %s: needs \"weight\", \"bias\", \"mean\" and \"var\" tensors",
                        L->file, where);

    int have_stride = 0;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "kernel")) &&
        json_pair(L, where, "kernel", v, 1, n->kernel) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "stride"))) {
        if (json_pair(L, where, "stride", v, 1, n->stride) < 0)
            return -1;
        have_stride = 1;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "dilation")) &&
        json_pair(L, where, "dilation", v, 1, n->dilation) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "padding")) && read_padding(L, where, v, n) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "groups")) &&
        json_int(v, 1, 1 << 20, &n->groups) < 0)
        return qerr_set(L->err, "%s: %s: \"groups\" must be a positive integer", L->file, where);
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "ceil_mode")) &&
        json_bool(L, where, "ceil_mode", v, &n->ceil_mode) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "count_include_pad")) &&
        json_bool(L, where, "count_include_pad", v, &n->count_include_pad) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "transposed")) &&
        json_bool(L, where, "transposed", v, &n->transposed) < 0)
        return -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "eps"))) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble))
            return qerr_set(L->err, "%s: %s: \"eps\" must be a positive number", L->file, where);
        n->eps = (float)v->valuedouble;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "approximate"))) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, "tanh") == 0)
            n->gelu_tanh = 1;
        else if (!(cJSON_IsString(v) && strcmp(v->valuestring, "none") == 0))
            return qerr_set(L->err, "%s: %s: \"approximate\" must be \"none\" or \"tanh\"",
                            L->file, where);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(j, "shape"))) {
        int nd = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
        if (nd < 1 || nd > QT_MAX_DIMS)
            return qerr_set(L->err, "%s: %s: \"shape\" must list 1..%d dimensions", L->file,
                            where, QT_MAX_DIMS);
        n->target_ndim = nd;
        for (int i = 0; i < nd; i++) {
            int d;
            if (json_int(cJSON_GetArrayItem(v, i), -1, 1 << 30, &d) < 0 || d == 0)
                return qerr_set(L->err, "%s: %s: \"shape\" entries must be positive or -1",
                                L->file, where);
            n->target[i] = d;
        }
    } else if (n->op == QOP_RESHAPE) {
        return qerr_set(L->err, "%s: %s: needs a \"shape\"", L->file, where);
    }
    if (n->op == QOP_MAXPOOL2D || n->op == QOP_AVGPOOL2D) {
        if (!n->kernel[0])
            return qerr_set(L->err, "%s: %s: needs a \"kernel\"", L->file, where);
        if (!have_stride) { /* PyTorch: stride defaults to the kernel */
            n->stride[0] = n->kernel[0];
            n->stride[1] = n->kernel[1];
        }
    }
    return 0;
}

static int read_graph(struct loader *L, const cJSON *g)
{
    struct qmodel *m = L->m;
    int n = cJSON_IsArray(g) ? cJSON_GetArraySize(g) : 0;
    if (n <= 0 || n > 100000)
        return qerr_set(L->err, "%s: \"graph\" must be a non-empty list of nodes", L->file);
    m->nodes = calloc((size_t)n, sizeof *m->nodes);
    if (!m->nodes)
        return qerr_set(L->err, "%s: out of memory", L->file);
    int i = 0;
    for (const cJSON *node = g->child; node; node = node->next, i++) {
        m->n_nodes = i + 1;
        if (read_node(L, i, node) < 0)
            return -1;
    }
    return 0;
}

static int read_classes(struct loader *L, const cJSON *c)
{
    struct qmodel *m = L->m;
    int n = cJSON_IsArray(c) ? cJSON_GetArraySize(c) : -1;
    if (n <= 0)
        return qerr_set(L->err, "%s: \"classes\" must be a non-empty list of names", L->file);
    m->class_names = calloc((size_t)n, sizeof *m->class_names);
    if (!m->class_names)
        return qerr_set(L->err, "%s: out of memory", L->file);
    m->n_classes = n; /* the array's length until the graph check confirms it */
    int i = 0;
    for (const cJSON *s = c->child; s; s = s->next, i++) {
        if (!cJSON_IsString(s))
            return qerr_set(L->err, "%s: \"classes\" entry %d is not a string", L->file, i);
        m->class_names[i] = strdup(s->valuestring);
        if (!m->class_names[i])
            return qerr_set(L->err, "%s: out of memory", L->file);
    }
    return n;
}

/* ---- entry point ------------------------------------------------------- */

/* The folder's name for dir/model.json, else the file's name without .json. */
static char *default_name(const struct loader *L)
{
    const char *base = qpath_basename(L->file);
    if (strcmp(base, "model.json") == 0 && strcmp(L->dir, ".") != 0)
        return strdup(qpath_basename(L->dir));
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".json") == 0)
        n -= 5;
    return strndup(base, n);
}

static const char *const top_fields =
    "qlab_model name description weights input classes dataset labels graph output";

static int load(struct loader *L, const cJSON *root)
{
    struct qmodel *m = L->m;
    if (!cJSON_IsObject(root))
        return qerr_set(L->err, "%s: not a model description (expected a JSON object)", L->file);
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "qlab_model");
    int version;
    if (!ver)
        return qerr_set(L->err, "%s: not a qlab model.json (no \"qlab_model\" version field)",
                        L->file);
    if (json_int(ver, 1, INT_MAX, &version) < 0)
        return qerr_set(L->err, "%s: \"qlab_model\" must be a positive integer", L->file);
    if (version != 1)
        return qerr_set(L->err, "%s: model format version %d is newer than this qlab reads (1)",
                        L->file, version);
    for (const cJSON *f = root->child; f; f = f->next)
        if (!word_in(f->string, top_fields))
            return qerr_set(L->err, "%s: unknown field '%s'", L->file, f->string);

    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (v && !cJSON_IsString(v))
        return qerr_set(L->err, "%s: \"name\" must be a string", L->file);
    m->name = v ? strdup(v->valuestring) : default_name(L);
    v = cJSON_GetObjectItemCaseSensitive(root, "description");
    if (v && !cJSON_IsString(v))
        return qerr_set(L->err, "%s: \"description\" must be a string", L->file);
    m->description = strdup(v ? v->valuestring : "");
    m->format = strdup("qlab-json");
    if (!m->name || !m->description || !m->format)
        return qerr_set(L->err, "%s: out of memory", L->file);

    const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "weights");
    if (!w)
        return qerr_set(L->err, "%s: no \"weights\" (the safetensors file(s) to load)", L->file);
    if (open_weights(L, w) < 0)
        return -1;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(root, "input");
    if (!in)
        return qerr_set(L->err, "%s: no \"input\" (its per-sample \"shape\" is needed)", L->file);
    if (read_input(L, in) < 0)
        return -1;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "graph");
    if (!g)
        return qerr_set(L->err, "%s: no \"graph\"", L->file);
    if (read_graph(L, g) < 0)
        return -1;

    m->output = -1;
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "output"))) {
        if (!cJSON_IsString(v) || (m->output = find_node(m, m->n_nodes, v->valuestring)) < 0)
            return qerr_set(L->err, "%s: \"output\" must name a node of the graph", L->file);
    }
    const char *paths[2] = {"dataset", "labels"};
    char **dst[2] = {&m->dataset_path, &m->labels_path};
    for (int i = 0; i < 2; i++) {
        if (!(v = cJSON_GetObjectItemCaseSensitive(root, paths[i])))
            continue;
        if (!cJSON_IsString(v) || !v->valuestring[0])
            return qerr_set(L->err, "%s: \"%s\" must be a file name", L->file, paths[i]);
        if (!(*dst[i] = resolve_path(L, v->valuestring)))
            return qerr_set(L->err, "%s: out of memory", L->file);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "classes")) && read_classes(L, v) < 0)
        return -1;
    return qmodel_finish_graph(m, L->err); /* also checks the class names' count */
}

int qmodel_json_load(const char *path, struct qmodel **out, qerr *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return qerr_set(err, "%s: %s", path, strerror(errno));
    char *file = S_ISDIR(st.st_mode) ? qpath_join(path, "model.json") : strdup(path);
    if (!file)
        return qerr_set(err, "%s: out of memory", path);

    struct qmodel *m = calloc(1, sizeof *m);
    struct loader L = {.m = m, .file = file, .dir = qpath_dirname(file), .err = err};
    char *text = NULL;
    cJSON *root = NULL;
    int rc = -1;
    if (!m || !L.dir) {
        qerr_set(err, "%s: out of memory", path);
        goto done;
    }
    m->path = strdup(path);
    m->json_path = strdup(file);
    if (!m->path || !m->json_path) {
        qerr_set(err, "%s: out of memory", path);
        goto done;
    }
    size_t len;
    if (qfile_read_all(file, MAX_JSON_BYTES, &text, &len, err) < 0)
        goto done;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        int line = 1;
        for (size_t i = 0; i < at && i < len; i++)
            line += text[i] == '\n';
        qerr_set(err, "%s: not valid JSON (error near line %d, byte %zu)", file, line, at);
        goto done;
    }
    for (const char *p = end; p && p < text + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            qerr_set(err, "%s: unexpected text after the JSON object", file);
            goto done;
        }
    rc = load(&L, root);
done:
    cJSON_Delete(root);
    free(text);
    free(L.dir);
    free(file);
    if (rc < 0) {
        qmodel_free(m);
        return -1;
    }
    /* messages should name the model file the user gave us */
    *out = m;
    return 0;
}
