/* model.c — the model IR: the op table, model lifecycle, and graph checking with shape inference. */
#include "model.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#include "llm.h"
#include "ops.h"
#include "sha256.h"

/* ---- op table -------------------------------------------------------------- */

/* Which tensor slots of struct qnode an op reads. */
enum {
    QOPT_WEIGHT = 1 << 0,   /* required */
    QOPT_BIAS = 1 << 1,     /* optional for linear/conv2d */
    QOPT_NORM = 1 << 2,     /* weight, bias, mean, var: all required */
};

struct qop_info {
    const char *name;
    int n_in;
    unsigned tensors;
};

static const struct qop_info op_table[QOP_COUNT] = {
    [QOP_LINEAR] = {"linear", 1, QOPT_WEIGHT | QOPT_BIAS},
    [QOP_CONV2D] = {"conv2d", 1, QOPT_WEIGHT | QOPT_BIAS},
    [QOP_RELU] = {"relu", 1, 0},
    [QOP_GELU] = {"gelu", 1, 0},
    [QOP_MAXPOOL2D] = {"maxpool2d", 1, 0},
    [QOP_AVGPOOL2D] = {"avgpool2d", 1, 0},
    [QOP_GLOBAL_AVGPOOL] = {"global_avgpool", 1, 0},
    [QOP_FLATTEN] = {"flatten", 1, 0},
    [QOP_RESHAPE] = {"reshape", 1, 0},
    [QOP_BATCHNORM] = {"batchnorm", 1, QOPT_NORM},
    [QOP_ADD] = {"add", 2, 0},
    [QOP_SOFTMAX] = {"softmax", 1, 0},
};

const char *qop_name(enum qop op)
{
    if ((int)op < 0 || op >= QOP_COUNT)
        return "?";
    return op_table[op].name;
}

int qop_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < QOP_COUNT; i++)
        if (strcmp(op_table[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- lifecycle ------------------------------------------------------------- */

void qmodel_free(struct qmodel *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->path);
    free(m->json_path);
    free(m->format);
    free(m->description);
    if (m->files)
        for (int i = 0; i < m->n_files; i++)
            st_close(m->files[i]);
    free(m->files);
    free(m->tensors);       /* the tensors themselves belong to files[] */
    free(m->roles);
    free(m->tensor_node);
    if (m->nodes)
        for (int i = 0; i < m->n_nodes; i++)
            free(m->nodes[i].name);
    free(m->nodes);
    free(m->pre_scale);
    free(m->pre_offset);
    if (m->class_names)
        for (int i = 0; i < m->n_classes; i++)
            free(m->class_names[i]);
    free(m->class_names);
    free(m->dataset_path);
    free(m->labels_path);
    qllm_free(m->llm);
    if (m->source_names || m->stored_types)
        for (int i = 0; i < m->n_tensors; i++) {
            free(m->source_names ? m->source_names[i] : NULL);
            free(m->stored_types ? m->stored_types[i] : NULL);
        }
    free(m->source_names);
    free(m->stored_types);
    free(m->stored_bytes);
    for (int i = 0; i < m->n_extra_files; i++)
        free(m->extra_files[i]);
    free(m->extra_files);
    for (int i = 0; i < m->n_owned; i++)
        qtensor_clear(&m->owned[i]);
    free(m->owned);
    if (m->map)
        munmap(m->map, m->map_size);
    free(m);
}

/* ---- queries --------------------------------------------------------------- */

const char *qmodel_tensor_op(const struct qmodel *m, int tensor)
{
    if (tensor < 0 || tensor >= m->n_tensors)
        return "?";
    if (m->kind == QMODEL_LM) {
        if (m->llm && tensor == m->llm->token_embd)
            return "embedding";
        switch (m->roles ? m->roles[tensor] : QROLE_OTHER) {
        case QROLE_WEIGHT: return "matmul";
        case QROLE_NORM: return "rmsnorm";
        case QROLE_BIAS: return "bias";
        default: return "other";
        }
    }
    if (!m->nodes || !m->tensor_node)
        return "?";
    return qop_name(m->nodes[m->tensor_node[tensor]].op);
}

int qmodel_find_tensor(const struct qmodel *m, const char *name)
{
    if (!m || !name || !m->tensors)
        return -1;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i] && m->tensors[i]->name && strcmp(m->tensors[i]->name, name) == 0)
            return i;
    return -1;
}

int64_t qmodel_n_params(const struct qmodel *m)
{
    int64_t n = 0;
    if (!m || !m->tensors)
        return 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i])
            n += m->tensors[i]->numel;
    return n;
}

int64_t qmodel_float_bytes(const struct qmodel *m)
{
    return qmodel_n_params(m) * (int64_t)sizeof(float);
}

int qmodel_sha256(const struct qmodel *m, char out[65], qerr *err)
{
    const char *src = m && m->json_path ? m->json_path : m && m->path ? m->path : "model";
    if (!m || (!m->json_path && !m->n_files && !m->n_extra_files))
        return qerr_set(err, "%s: no files to hash", src);
    struct sha256 s;
    sha256_init(&s);
    if (m->json_path && sha256_update_file(&s, m->json_path, err) != 0)
        return -1;
    for (int i = 0; i < m->n_files; i++) {
        if (!m->files || !m->files[i] || !m->files[i]->path)
            return qerr_set(err, "%s: weight file %d is not open", src, i);
        if (sha256_update_file(&s, m->files[i]->path, err) != 0)
            return -1;
    }
    for (int i = 0; i < m->n_extra_files; i++)
        if (sha256_update_file(&s, m->extra_files[i], err) != 0)
            return -1;
    uint8_t digest[32];
    sha256_final(&s, digest);
    sha256_hex(digest, out);
    return 0;
}

/* ---- graph checking -------------------------------------------------------- */

/* Largest per-sample value count of any activation or weight: keeps every
 * size an int for sgemm and every allocation sane. */
#define QMODEL_MAX_NUMEL ((int64_t)1 << 28)

/* Context of one finish_graph pass: the file name and the current node. */
struct gctx {
    struct qmodel *m;
    const char *src;
    int idx;
    const struct qnode *nd;
    qerr *err;
};

static const char *node_name(const struct qnode *nd)
{
    return nd->name ? nd->name : "?";
}

static const char *tensor_name(const struct qtensor *t)
{
    return t->name ? t->name : "?";
}

/* "model.json: node 3 'conv2' (conv2d): " + what is wrong */
static int node_err(const struct gctx *g, const char *fmt, ...) QLAB_PRINTF(2, 3);

static int node_err(const struct gctx *g, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return qerr_set(g->err, "%s: node %d '%s' (%s): %s", g->src, g->idx, node_name(g->nd),
                    qop_name(g->nd->op), what);
}

static void fmt_shape(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = 0;
    o += (size_t)snprintf(buf + o, size - o, "[");
    for (int i = 0; i < ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

/* Product of dims into *numel; -1 when a dim is not positive or the
 * product exceeds QMODEL_MAX_NUMEL. */
static int shape_numel(const int64_t *shape, int ndim, int64_t *numel)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || shape[i] > QMODEL_MAX_NUMEL)
            return -1;
        n *= shape[i];
        if (n > QMODEL_MAX_NUMEL)
            return -1;
    }
    *numel = n;
    return 0;
}

/* The shape of a value: the model input or an earlier node's output. */
struct vshape {
    int ndim;
    const int64_t *shape;
    int64_t numel;
};

static struct vshape value_shape(const struct qmodel *m, int v)
{
    struct vshape s;
    if (v == QNODE_INPUT) {
        s.ndim = m->in_ndim;
        s.shape = m->in_shape;
        s.numel = m->in_numel;
    } else {
        s.ndim = m->nodes[v].out_ndim;
        s.shape = m->nodes[v].out_shape;
        s.numel = m->nodes[v].out_numel;
    }
    return s;
}

static int set_out(struct gctx *g, struct qnode *nd, const int64_t *shape, int ndim)
{
    char buf[128];
    if (ndim < 1 || ndim > QT_MAX_DIMS)
        return node_err(g, "output would have %d dimensions (1 to %d allowed)", ndim, QT_MAX_DIMS);
    int64_t tmp[QT_MAX_DIMS];
    memcpy(tmp, shape, (size_t)ndim * sizeof *tmp); /* shape may alias out_shape */
    if (shape_numel(tmp, ndim, &nd->out_numel) != 0) {
        fmt_shape(tmp, ndim, buf, sizeof buf);
        return node_err(g, "output shape %s is empty or larger than %lld values", buf,
                        (long long)QMODEL_MAX_NUMEL);
    }
    nd->out_ndim = ndim;
    memcpy(nd->out_shape, tmp, (size_t)ndim * sizeof *tmp);
    return 0;
}

/* Checks one tensor slot and records its role and first user. */
static int use_tensor(struct gctx *g, int ti, const char *slot, enum qrole role,
                      const struct qtensor **out)
{
    struct qmodel *m = g->m;
    if (ti < 0)
        return node_err(g, "%s needs a %s tensor", qop_name(g->nd->op), slot);
    if (ti >= m->n_tensors)
        return node_err(g, "%s refers to tensor %d of %d", slot, ti, m->n_tensors);
    const struct qtensor *t = m->tensors[ti];
    if (!t)
        return node_err(g, "%s (tensor %d) is missing", slot, ti);
    if (!t->f32)
        return node_err(g, "%s '%s' has no float32 view", slot, tensor_name(t));
    if (t->numel < 1)
        return node_err(g, "%s '%s' is empty", slot, tensor_name(t));
    if (t->numel > QMODEL_MAX_NUMEL)
        return node_err(g, "%s '%s' has %lld values (at most %lld)", slot, tensor_name(t),
                        (long long)t->numel, (long long)QMODEL_MAX_NUMEL);
    if (m->roles[ti] != QROLE_OTHER && m->roles[ti] != role) {
        static const char *const rn[QROLE_COUNT] = {"other", "weight", "bias", "norm"};
        return node_err(g, "%s '%s' is also used as a %s by node %d", slot, tensor_name(t),
                        rn[m->roles[ti]], m->tensor_node[ti]);
    }
    m->roles[ti] = role;
    if (m->tensor_node[ti] < 0)
        m->tensor_node[ti] = g->idx;
    *out = t;
    return 0;
}

/* A 1-D tensor of exactly n values. */
static int check_vector(struct gctx *g, const struct qtensor *t, const char *slot, int64_t n,
                        const char *why)
{
    if (t->ndim == 1 && t->shape[0] == n)
        return 0;
    char buf[128];
    fmt_shape(t->shape, t->ndim, buf, sizeof buf);
    return node_err(g, "%s '%s' is %s; expected [%lld] (%s)", slot, tensor_name(t), buf,
                    (long long)n, why);
}

static int fits_int(int64_t v)
{
    return v >= 0 && v <= INT_MAX;
}

static int infer_linear(struct gctx *g, struct qnode *nd, struct vshape x)
{
    const struct qtensor *w, *b = NULL;
    char ws[128];
    if (use_tensor(g, nd->weight, "weight", QROLE_WEIGHT, &w) != 0)
        return -1;
    fmt_shape(w->shape, w->ndim, ws, sizeof ws);
    if (w->ndim != 2)
        return node_err(g, "weight '%s' is %s; a linear weight is 2-D", tensor_name(w), ws);
    int64_t in = x.shape[x.ndim - 1];
    int64_t wi = nd->transposed ? w->shape[0] : w->shape[1];
    int64_t out = nd->transposed ? w->shape[1] : w->shape[0];
    if (wi != in)
        return node_err(g, "weight '%s' is %s%s but the input has %lld features", tensor_name(w),
                        ws, nd->transposed ? " (transposed: [in, out])" : "", (long long)in);
    if (nd->bias >= 0) {
        if (use_tensor(g, nd->bias, "bias", QROLE_BIAS, &b) != 0 ||
            check_vector(g, b, "bias", out, "one per output") != 0)
            return -1;
    }
    int64_t shape[QT_MAX_DIMS];
    memcpy(shape, x.shape, (size_t)x.ndim * sizeof *shape);
    shape[x.ndim - 1] = out;
    return set_out(g, nd, shape, x.ndim);
}

static int check_spatial_attrs(struct gctx *g, const struct qnode *nd, int dilation)
{
    for (int i = 0; i < 2; i++) {
        if (nd->stride[i] <= 0)
            return node_err(g, "stride %d must be positive", nd->stride[i]);
        if (dilation && nd->dilation[i] <= 0)
            return node_err(g, "dilation %d must be positive", nd->dilation[i]);
    }
    if (!nd->pad_same_upper)
        for (int i = 0; i < 4; i++)
            if (nd->pad[i] < 0)
                return node_err(g, "padding %d is negative", nd->pad[i]);
    return 0;
}

static int infer_conv2d(struct gctx *g, struct qnode *nd, struct vshape x)
{
    const struct qtensor *w, *b = NULL;
    char xs[128], ws[128];
    fmt_shape(x.shape, x.ndim, xs, sizeof xs);
    if (x.ndim != 3)
        return node_err(g, "input is %s; conv2d needs [C, H, W]", xs);
    if (use_tensor(g, nd->weight, "weight", QROLE_WEIGHT, &w) != 0)
        return -1;
    fmt_shape(w->shape, w->ndim, ws, sizeof ws);
    if (w->ndim != 4)
        return node_err(g, "weight '%s' is %s; a conv2d weight is [OC, C/groups, KH, KW]",
                        tensor_name(w), ws);
    if (nd->groups < 1)
        return node_err(g, "groups %d must be at least 1", nd->groups);
    if (check_spatial_attrs(g, nd, 1) != 0)
        return -1;
    int64_t c = x.shape[0], oc = w->shape[0];
    if (c % nd->groups)
        return node_err(g, "input channels %lld are not divisible by groups %d", (long long)c,
                        nd->groups);
    if (oc % nd->groups)
        return node_err(g, "weight '%s' is %s: output channels %lld are not divisible by groups %d",
                        tensor_name(w), ws, (long long)oc, nd->groups);
    if (w->shape[1] != c / nd->groups)
        return node_err(g, "weight '%s' is %s but the input %s has %lld channels / %d groups = %lld",
                        tensor_name(w), ws, xs, (long long)c, nd->groups,
                        (long long)(c / nd->groups));
    if (nd->bias >= 0) {
        if (use_tensor(g, nd->bias, "bias", QROLE_BIAS, &b) != 0 ||
            check_vector(g, b, "bias", oc, "one per output channel") != 0)
            return -1;
    }
    if (!fits_int(w->shape[2]) || !fits_int(w->shape[3]))
        return node_err(g, "weight '%s' is %s: kernel too large", tensor_name(w), ws);
    int kh = (int)w->shape[2], kw = (int)w->shape[3];
    if (nd->pad_same_upper) {
        qpad_same_upper((int)x.shape[1], kh, nd->stride[0], nd->dilation[0], &nd->pad[0], &nd->pad[2]);
        qpad_same_upper((int)x.shape[2], kw, nd->stride[1], nd->dilation[1], &nd->pad[1], &nd->pad[3]);
    }
    struct qconv_geom cg = {
        .n = 1, .c = (int)c, .h = (int)x.shape[1], .w = (int)x.shape[2], .oc = (int)oc,
        .kh = kh, .kw = kw, .sh = nd->stride[0], .sw = nd->stride[1],
        .dh = nd->dilation[0], .dw = nd->dilation[1], .pt = nd->pad[0], .pl = nd->pad[1],
        .pb = nd->pad[2], .pr = nd->pad[3], .groups = nd->groups,
    };
    if (qconv_geom_finish(&cg) != 0)
        return node_err(g, "kernel %dx%d with dilation %dx%d does not fit the input %s padded by "
                        "[%d, %d, %d, %d]", kh, kw, nd->dilation[0], nd->dilation[1], xs,
                        nd->pad[0], nd->pad[1], nd->pad[2], nd->pad[3]);
    int64_t shape[3] = {oc, cg.oh, cg.ow};
    return set_out(g, nd, shape, 3);
}

static int infer_pool(struct gctx *g, struct qnode *nd, struct vshape x)
{
    char xs[128];
    fmt_shape(x.shape, x.ndim, xs, sizeof xs);
    if (x.ndim != 3)
        return node_err(g, "input is %s; pooling needs [C, H, W]", xs);
    for (int i = 0; i < 2; i++)
        if (nd->kernel[i] <= 0)
            return node_err(g, "kernel %d must be positive", nd->kernel[i]);
    if (check_spatial_attrs(g, nd, 0) != 0)
        return -1;
    if (nd->pad_same_upper) {
        qpad_same_upper((int)x.shape[1], nd->kernel[0], nd->stride[0], 1, &nd->pad[0], &nd->pad[2]);
        qpad_same_upper((int)x.shape[2], nd->kernel[1], nd->stride[1], 1, &nd->pad[1], &nd->pad[3]);
    }
    struct qpool_geom pg = {
        .n = 1, .c = (int)x.shape[0], .h = (int)x.shape[1], .w = (int)x.shape[2],
        .kh = nd->kernel[0], .kw = nd->kernel[1], .sh = nd->stride[0], .sw = nd->stride[1],
        .pt = nd->pad[0], .pl = nd->pad[1], .pb = nd->pad[2], .pr = nd->pad[3],
        .ceil_mode = nd->ceil_mode, .count_include_pad = nd->count_include_pad,
    };
    if (qpool_geom_finish(&pg) != 0)
        return node_err(g, "kernel %dx%d padded by [%d, %d, %d, %d] does not fit the input %s "
                        "(each pad must be smaller than the kernel)", nd->kernel[0], nd->kernel[1],
                        nd->pad[0], nd->pad[1], nd->pad[2], nd->pad[3], xs);
    int64_t shape[3] = {x.shape[0], pg.oh, pg.ow};
    return set_out(g, nd, shape, 3);
}

static int infer_reshape(struct gctx *g, struct qnode *nd, struct vshape x)
{
    if (nd->target_ndim < 1 || nd->target_ndim > QT_MAX_DIMS)
        return node_err(g, "target shape has %d dimensions (1 to %d allowed)", nd->target_ndim,
                        QT_MAX_DIMS);
    int64_t shape[QT_MAX_DIMS], known = 1;
    int infer = -1;
    char ts[128], xs[128];
    fmt_shape(nd->target, nd->target_ndim, ts, sizeof ts);
    fmt_shape(x.shape, x.ndim, xs, sizeof xs);
    for (int i = 0; i < nd->target_ndim; i++) {
        shape[i] = nd->target[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
        } else if (shape[i] <= 0 || shape[i] > QMODEL_MAX_NUMEL) {
            return node_err(g, "target shape %s: each dimension must be positive (one -1 allowed)",
                            ts);
        } else {
            known *= shape[i];
            if (known > QMODEL_MAX_NUMEL)
                return node_err(g, "target shape %s is too large", ts);
        }
    }
    if (infer >= 0) {
        if (x.numel % known)
            return node_err(g, "target shape %s does not divide the input %s (%lld values)", ts,
                            xs, (long long)x.numel);
        shape[infer] = x.numel / known;
    } else if (known != x.numel) {
        return node_err(g, "target shape %s has %lld values but the input %s has %lld", ts,
                        (long long)known, xs, (long long)x.numel);
    }
    return set_out(g, nd, shape, nd->target_ndim);
}

static int infer_batchnorm(struct gctx *g, struct qnode *nd, struct vshape x)
{
    static const char *const slots[4] = {"weight", "bias", "mean", "var"};
    int idx[4] = {nd->weight, nd->bias, nd->mean, nd->var};
    const struct qtensor *t[4];
    int64_t c = x.shape[0];
    if (!(nd->eps > 0.0f) || !isfinite(nd->eps))
        return node_err(g, "eps %g must be positive", (double)nd->eps);
    for (int i = 0; i < 4; i++) {
        if (use_tensor(g, idx[i], slots[i], QROLE_NORM, &t[i]) != 0 ||
            check_vector(g, t[i], slots[i], c, "one per input channel") != 0)
            return -1;
    }
    for (int64_t j = 0; j < c; j++)  /* sqrt(var + eps) must stay real */
        if (!(t[3]->f32[j] >= 0.0f))
            return node_err(g, "var '%s'[%lld] is %g; a variance is >= 0", tensor_name(t[3]),
                            (long long)j, (double)t[3]->f32[j]);
    return set_out(g, nd, x.shape, x.ndim);
}

static int infer_add(struct gctx *g, struct qnode *nd, struct vshape a, struct vshape b)
{
    int same = a.ndim == b.ndim;
    for (int i = 0; same && i < a.ndim; i++)
        same = a.shape[i] == b.shape[i];
    if (!same) {
        char as[128], bs[128];
        fmt_shape(a.shape, a.ndim, as, sizeof as);
        fmt_shape(b.shape, b.ndim, bs, sizeof bs);
        return node_err(g, "inputs have different shapes %s and %s", as, bs);
    }
    return set_out(g, nd, a.shape, a.ndim);
}

static int infer_node(struct gctx *g, struct qnode *nd)
{
    struct vshape x = value_shape(g->m, nd->in[0]);
    switch (nd->op) {
    case QOP_LINEAR:
        return infer_linear(g, nd, x);
    case QOP_CONV2D:
        return infer_conv2d(g, nd, x);
    case QOP_MAXPOOL2D:
    case QOP_AVGPOOL2D:
        return infer_pool(g, nd, x);
    case QOP_GLOBAL_AVGPOOL: {
        if (x.ndim < 2) {
            char xs[128];
            fmt_shape(x.shape, x.ndim, xs, sizeof xs);
            return node_err(g, "input is %s; global_avgpool needs [C, H, W]", xs);
        }
        int64_t shape[1] = {x.shape[0]};
        return set_out(g, nd, shape, 1);
    }
    case QOP_FLATTEN: {
        int64_t shape[1] = {x.numel};
        return set_out(g, nd, shape, 1);
    }
    case QOP_RESHAPE:
        return infer_reshape(g, nd, x);
    case QOP_BATCHNORM:
        return infer_batchnorm(g, nd, x);
    case QOP_ADD:
        return infer_add(g, nd, x, value_shape(g->m, nd->in[1]));
    case QOP_RELU:
    case QOP_GELU:
    case QOP_SOFTMAX:
        return set_out(g, nd, x.shape, x.ndim);
    case QOP_COUNT:
        break;
    }
    return node_err(g, "unknown op %d", (int)nd->op);
}

static int check_inputs(struct gctx *g, const struct qnode *nd)
{
    int want = op_table[nd->op].n_in;
    if (nd->n_in != want)
        return node_err(g, "has %d inputs; %s takes %d", nd->n_in, qop_name(nd->op), want);
    for (int j = 0; j < nd->n_in; j++) {
        int v = nd->in[j];
        if (v == QNODE_INPUT)
            continue;
        if (v < 0 || v >= g->idx)
            return node_err(g, "input %d refers to node %d; only the model input or an earlier "
                            "node (0 to %d) can be used", j, v, g->idx - 1);
    }
    return 0;
}

static int check_input_spec(struct qmodel *m, const char *src, qerr *err)
{
    char buf[128];
    if (m->in_ndim < 1 || m->in_ndim > QT_MAX_DIMS)
        return qerr_set(err, "%s: input shape has %d dimensions (1 to %d allowed)", src,
                        m->in_ndim, QT_MAX_DIMS);
    if (shape_numel(m->in_shape, m->in_ndim, &m->in_numel) != 0) {
        fmt_shape(m->in_shape, m->in_ndim, buf, sizeof buf);
        return qerr_set(err, "%s: input shape %s is empty or larger than %lld values", src, buf,
                        (long long)QMODEL_MAX_NUMEL);
    }
    /* n_pre 0 means no preprocessing */
    if (m->n_pre != 0 && m->n_pre != 1 && m->n_pre != m->in_shape[0]) {
        fmt_shape(m->in_shape, m->in_ndim, buf, sizeof buf);
        return qerr_set(err, "%s: input has %d scale/offset values; the input %s needs 1 or %lld "
                        "(one per channel)", src, m->n_pre, buf, (long long)m->in_shape[0]);
    }
    if (m->n_pre > 0 && (!m->pre_scale || !m->pre_offset))
        return qerr_set(err, "%s: input scale/offset values are missing", src);
    return 0;
}

int qmodel_finish_graph(struct qmodel *m, qerr *err)
{
    const char *src = m->json_path ? m->json_path : m->path ? m->path : "model";
    if (check_input_spec(m, src, err) != 0)
        return -1;
    if (m->n_nodes < 1 || !m->nodes)
        return qerr_set(err, "%s: the graph has no nodes", src);
    if (m->n_tensors < 0 || (m->n_tensors > 0 && !m->tensors))
        return qerr_set(err, "%s: the tensor list is missing", src);

    free(m->roles);
    free(m->tensor_node);
    m->roles = calloc((size_t)m->n_tensors + 1, sizeof *m->roles);
    m->tensor_node = malloc(((size_t)m->n_tensors + 1) * sizeof *m->tensor_node);
    if (!m->roles || !m->tensor_node)
        return qerr_set(err, "%s: out of memory", src);
    for (int i = 0; i < m->n_tensors; i++)
        m->tensor_node[i] = -1;

    struct gctx g = {.m = m, .src = src, .err = err};
    for (int i = 0; i < m->n_nodes; i++) {
        struct qnode *nd = &m->nodes[i];
        g.idx = i;
        g.nd = nd;
        if ((int)nd->op < 0 || nd->op >= QOP_COUNT)
            return node_err(&g, "unknown op %d", (int)nd->op);
        if (check_inputs(&g, nd) != 0 || infer_node(&g, nd) != 0)
            return -1;
    }

    int out = m->output < 0 ? m->n_nodes - 1 : m->output;
    if (m->output < -1 || out >= m->n_nodes)
        return qerr_set(err, "%s: output refers to node %d of %d", src, m->output, m->n_nodes);
    m->output = out;
    int64_t nc = m->nodes[out].out_numel;
    /* A loader that already set n_classes to its count of class names gets
     * the check here, and n_classes keeps naming the array's length. */
    if (m->class_names && m->n_classes > 0 && m->n_classes != nc)
        return qerr_set(err, "%s: %d class names but the output '%s' has %lld values", src,
                        m->n_classes, node_name(&m->nodes[out]), (long long)nc);
    m->n_classes = (int)nc;
    return 0;
}
