/* forward.c — the graph executor: activation buffers (shared where safe), preprocessing, one pass over the ops, or the part after a saved cut. */
#include "forward.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* ---- types ----------------------------------------------------------------- */

/* Values are numbered by slot: slot 0 is the preprocessed model input,
 * slot i + 1 the output of node i. Several slots may share one buffer:
 * flatten/reshape are views, and elementwise ops overwrite their input
 * when nothing else reads it. */
struct qforward {
    const struct qmodel *m;
    int max_batch;
    int n_slots;                /* n_nodes + 1 */
    int *owner;                 /* n_slots: the slot whose buffer holds this value */
    int *last_read;             /* n_slots: the last node reading the value (n_nodes: the
                                   output), -1 when none */
    float **buf;                /* n_slots: max_batch * numel floats, for owner slots only */
    unsigned char *fuse_relu;   /* n_nodes: conv2d applies the next node's relu per image */
    struct qconv_geom *conv;    /* n_nodes: geometry of conv2d nodes (n = 1) */
    struct qpool_geom *pool;    /* n_nodes: geometry of pool nodes (n = 1) */
    float *scratch;             /* im2col columns of one image and group */
};

/* ---- lifecycle ------------------------------------------------------------- */

void qforward_free(struct qforward *f)
{
    if (!f)
        return;
    if (f->buf)
        for (int s = 0; s < f->n_slots; s++)
            free(f->buf[s]);
    free(f->buf);
    free(f->owner);
    free(f->last_read);
    free(f->fuse_relu);
    free(f->conv);
    free(f->pool);
    free(f->scratch);
    free(f);
}

/* count * max_batch floats, or NULL on overflow or no memory. */
static float *alloc_floats(int64_t count, int max_batch)
{
    if (count <= 0 || count > (int64_t)(SIZE_MAX / sizeof(float)) / max_batch)
        return NULL;
    return malloc((size_t)count * (size_t)max_batch * sizeof(float));
}

static const char *model_src(const struct qmodel *m)
{
    return m->json_path ? m->json_path : m->path ? m->path : "model";
}

static int slot_of(int value)
{
    return value == QNODE_INPUT ? 0 : value + 1;
}

static const int64_t *value_shape(const struct qmodel *m, int value, int *ndim, int64_t *numel)
{
    if (value == QNODE_INPUT) {
        *ndim = m->in_ndim;
        *numel = m->in_numel;
        return m->in_shape;
    }
    *ndim = m->nodes[value].out_ndim;
    *numel = m->nodes[value].out_numel;
    return m->nodes[value].out_shape;
}

/* ---- planning -------------------------------------------------------------- */

static void node_geometry(const struct qmodel *m, const struct qnode *nd,
                          struct qconv_geom *cg, struct qpool_geom *pg)
{
    int ndim;
    int64_t numel;
    const int64_t *x = value_shape(m, nd->in[0], &ndim, &numel);
    if (nd->op == QOP_CONV2D) {
        const struct qtensor *w = m->tensors[nd->weight];
        *cg = (struct qconv_geom){
            .n = 1, .c = (int)x[0], .h = (int)x[1], .w = (int)x[2], .oc = (int)w->shape[0],
            .kh = (int)w->shape[2], .kw = (int)w->shape[3], .sh = nd->stride[0],
            .sw = nd->stride[1], .dh = nd->dilation[0], .dw = nd->dilation[1],
            .pt = nd->pad[0], .pl = nd->pad[1], .pb = nd->pad[2], .pr = nd->pad[3],
            .groups = nd->groups,
        };
    } else {
        *pg = (struct qpool_geom){
            .n = 1, .c = (int)x[0], .h = (int)x[1], .w = (int)x[2],
            .kh = nd->kernel[0], .kw = nd->kernel[1], .sh = nd->stride[0], .sw = nd->stride[1],
            .pt = nd->pad[0], .pl = nd->pad[1], .pb = nd->pad[2], .pr = nd->pad[3],
            .ceil_mode = nd->ceil_mode, .count_include_pad = nd->count_include_pad,
        };
    }
}

/* Fills geometries and sizes the conv scratch. The model was checked by
 * qmodel_finish_graph; a mismatch here means it was not. */
static int plan_geometry(struct qforward *f, int64_t *scratch, qerr *err)
{
    const struct qmodel *m = f->m;
    *scratch = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const struct qnode *nd = &m->nodes[i];
        if (nd->op == QOP_CONV2D) {
            node_geometry(m, nd, &f->conv[i], NULL);
            if (qconv_geom_finish(&f->conv[i]) != 0 || f->conv[i].oh != nd->out_shape[1] ||
                f->conv[i].ow != nd->out_shape[2])
                return qerr_set(err, "%s: node %d: conv2d geometry does not match its checked "
                                "shape (was qmodel_finish_graph run?)", model_src(m), i);
            int64_t s = qop_conv2d_scratch(&f->conv[i]);
            if (s > *scratch)
                *scratch = s;
        } else if (nd->op == QOP_MAXPOOL2D || nd->op == QOP_AVGPOOL2D) {
            node_geometry(m, nd, NULL, &f->pool[i]);
            if (qpool_geom_finish(&f->pool[i]) != 0 || f->pool[i].oh != nd->out_shape[1] ||
                f->pool[i].ow != nd->out_shape[2])
                return qerr_set(err, "%s: node %d: pool geometry does not match its checked "
                                "shape (was qmodel_finish_graph run?)", model_src(m), i);
        }
    }
    return 0;
}

static int is_elementwise(enum qop op)
{
    return op == QOP_RELU || op == QOP_GELU || op == QOP_BATCHNORM || op == QOP_SOFTMAX ||
           op == QOP_ADD;
}

/* Node i may overwrite buffer o when no later node reads a value held in
 * o so far and none of them is the model output. */
static int may_overwrite(const struct qforward *f, int o, int i)
{
    const struct qmodel *m = f->m;
    for (int s = 0; s <= i; s++) {
        if (f->owner[s] != o)
            continue;
        if (s == slot_of(m->output))
            return 0;
        for (int j = i + 1; j < m->n_nodes; j++)
            for (int k = 0; k < m->nodes[j].n_in; k++)
                if (j > i && slot_of(m->nodes[j].in[k]) == s)
                    return 0;
    }
    return 1;
}

/* Decides which buffer holds every value. */
static void plan_buffers(struct qforward *f)
{
    const struct qmodel *m = f->m;
    f->owner[0] = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const struct qnode *nd = &m->nodes[i];
        int s = i + 1;
        f->owner[s] = s;
        if (nd->op == QOP_FLATTEN || nd->op == QOP_RESHAPE) {
            f->owner[s] = f->owner[slot_of(nd->in[0])];
            continue;
        }
        if (!is_elementwise(nd->op))
            continue;
        for (int k = 0; k < nd->n_in; k++) {
            int o = f->owner[slot_of(nd->in[k])];
            if (may_overwrite(f, o, i)) {
                f->owner[s] = o;
                break;
            }
        }
    }
    /* conv -> relu in place: the relu runs per image while it is in cache */
    for (int i = 0; i + 1 < m->n_nodes; i++) {
        const struct qnode *nd = &m->nodes[i], *next = &m->nodes[i + 1];
        f->fuse_relu[i] = nd->op == QOP_CONV2D && next->op == QOP_RELU && next->in[0] == i &&
                          f->owner[i + 2] == f->owner[i + 1];
    }
}

/* The last reader of every value, for cuts. */
static void plan_reads(struct qforward *f)
{
    const struct qmodel *m = f->m;
    for (int s = 0; s < f->n_slots; s++)
        f->last_read[s] = -1;
    for (int j = 0; j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            f->last_read[slot_of(m->nodes[j].in[k])] = j;
    f->last_read[slot_of(m->output)] = m->n_nodes;
}

int qforward_new(const struct qmodel *m, int max_batch, struct qforward **out, qerr *err)
{
    *out = NULL;
    const char *src = model_src(m);
    if (max_batch < 1)
        return qerr_set(err, "%s: batch size %d must be at least 1", src, max_batch);
    if (m->n_nodes < 1 || m->in_numel < 1 || m->output < 0 || m->output >= m->n_nodes ||
        m->n_classes != m->nodes[m->output].out_numel)
        return qerr_set(err, "%s: the graph is not checked (run qmodel_finish_graph)", src);
    struct qforward *f = calloc(1, sizeof *f);
    if (!f)
        return qerr_set(err, "%s: out of memory", src);
    f->m = m;
    f->max_batch = max_batch;
    f->n_slots = m->n_nodes + 1;
    size_t nn = (size_t)m->n_nodes, ns = (size_t)f->n_slots;
    f->owner = calloc(ns, sizeof *f->owner);
    f->last_read = calloc(ns, sizeof *f->last_read);
    f->buf = calloc(ns, sizeof *f->buf);
    f->fuse_relu = calloc(nn, sizeof *f->fuse_relu);
    f->conv = calloc(nn, sizeof *f->conv);
    f->pool = calloc(nn, sizeof *f->pool);
    if (!f->owner || !f->last_read || !f->buf || !f->fuse_relu || !f->conv || !f->pool)
        goto oom;
    int64_t scratch;
    if (plan_geometry(f, &scratch, err) != 0) {
        qforward_free(f);
        return -1;
    }
    if (scratch > 0 && !(f->scratch = alloc_floats(scratch, 1)))
        goto oom;
    plan_buffers(f);
    plan_reads(f);
    for (int s = 0; s < f->n_slots; s++) {
        if (f->owner[s] != s)
            continue;
        int64_t numel = s == 0 ? m->in_numel : m->nodes[s - 1].out_numel;
        if (!(f->buf[s] = alloc_floats(numel, max_batch)))
            goto oom;
    }
    *out = f;
    return 0;
oom:
    qforward_free(f);
    return qerr_set(err, "%s: out of memory for activations of %d samples", src, max_batch);
}

/* ---- run ------------------------------------------------------------------- */

static void preprocess(const struct qmodel *m, const float *in, int n, float *x)
{
    int64_t total = (int64_t)n * m->in_numel;
    if (m->n_pre == 0) {
        memcpy(x, in, (size_t)total * sizeof *x);
    } else if (m->n_pre == 1) {
        const float s = m->pre_scale[0], o = m->pre_offset[0];
        for (int64_t i = 0; i < total; i++)
            x[i] = in[i] * s + o;
    } else {
        /* channel c = index along in_shape[0] */
        int64_t inner = m->in_numel / m->in_shape[0];
        for (int64_t p = 0; p < (int64_t)n * m->n_pre; p++) {
            const float s = m->pre_scale[p % m->n_pre], o = m->pre_offset[p % m->n_pre];
            const float *src = in + p * inner;
            float *dst = x + p * inner;
            for (int64_t j = 0; j < inner; j++)
                dst[j] = src[j] * s + o;
        }
    }
}

static float *value_buf(const struct qforward *f, int value)
{
    return f->buf[f->owner[slot_of(value)]];
}

static const float *tensor_data(const struct qmodel *m, const float *const *weights, int i)
{
    return weights && weights[i] ? weights[i] : m->tensors[i]->f32;
}

static void run_conv(const struct qforward *f, const float *const *w, int i, int n,
                     const float *x, float *y)
{
    const struct qmodel *m = f->m;
    const struct qnode *nd = &m->nodes[i];
    struct qconv_geom g = f->conv[i];
    const float *wt = tensor_data(m, w, nd->weight);
    const float *b = nd->bias >= 0 ? tensor_data(m, w, nd->bias) : NULL;
    if (!f->fuse_relu[i]) {
        g.n = n;
        qop_conv2d(&g, x, wt, b, y, f->scratch);
        return;
    }
    const int64_t in_img = (int64_t)g.c * g.h * g.w, out_img = (int64_t)g.oc * g.oh * g.ow;
    for (int k = 0; k < n; k++) {
        qop_conv2d(&g, x + k * in_img, wt, b, y + k * out_img, f->scratch);
        qop_relu(y + k * out_img, out_img);
    }
}

static void run_node(const struct qforward *f, const float *const *w, int i, int n)
{
    const struct qmodel *m = f->m;
    const struct qnode *nd = &m->nodes[i];
    int xnd;
    int64_t xnumel;
    const int64_t *xs = value_shape(m, nd->in[0], &xnd, &xnumel);
    const float *x = value_buf(f, nd->in[0]);
    float *y = f->buf[f->owner[i + 1]];
    const int64_t count = (int64_t)n * nd->out_numel;

    /* elementwise ops work in place: bring the input over when it is not */
    if (y != x && is_elementwise(nd->op) && nd->op != QOP_ADD)
        memcpy(y, x, (size_t)count * sizeof *y);

    switch (nd->op) {
    case QOP_LINEAR: {
        int64_t in = xs[xnd - 1], outf = nd->out_shape[nd->out_ndim - 1];
        const float *b = nd->bias >= 0 ? tensor_data(m, w, nd->bias) : NULL;
        /* every leading index is one row: rows = n * numel / in */
        qop_linear(x, count / outf, in, tensor_data(m, w, nd->weight), nd->transposed, b, outf, y);
        break;
    }
    case QOP_CONV2D:
        run_conv(f, w, i, n, x, y);
        break;
    case QOP_MAXPOOL2D:
    case QOP_AVGPOOL2D: {
        struct qpool_geom g = f->pool[i];
        g.n = n;
        if (nd->op == QOP_MAXPOOL2D)
            qop_maxpool2d(&g, x, y);
        else
            qop_avgpool2d(&g, x, y);
        break;
    }
    case QOP_GLOBAL_AVGPOOL:
        qop_global_avgpool(x, n, (int)xs[0], xnumel / xs[0], y);
        break;
    case QOP_FLATTEN:
    case QOP_RESHAPE:
        break; /* a view */
    case QOP_RELU:
        if (!(i > 0 && f->fuse_relu[i - 1]))
            qop_relu(y, count);
        break;
    case QOP_GELU:
        qop_gelu(y, count, nd->gelu_tanh);
        break;
    case QOP_BATCHNORM:
        qop_batchnorm(y, n, (int)xs[0], nd->out_numel / xs[0], tensor_data(m, w, nd->weight),
                      tensor_data(m, w, nd->bias), tensor_data(m, w, nd->mean),
                      tensor_data(m, w, nd->var), nd->eps);
        break;
    case QOP_ADD:
        qop_add(x, value_buf(f, nd->in[1]), y, count);
        break;
    case QOP_SOFTMAX: {
        int64_t cols = nd->out_shape[nd->out_ndim - 1];
        qop_softmax(y, count / cols, cols);
        break;
    }
    case QOP_COUNT:
        break;
    }
}

static int check_batch(const struct qforward *f, int n, qerr *err)
{
    if (n < 1 || n > f->max_batch)
        return qerr_set(err, "%s: batch of %d samples; this runner takes 1 to %d",
                        model_src(f->m), n, f->max_batch);
    return 0;
}

static void copy_output(const struct qforward *f, int n, float *out)
{
    const struct qmodel *m = f->m;
    memcpy(out, value_buf(f, m->output), (size_t)n * (size_t)m->n_classes * sizeof *out);
}

int qforward_run(struct qforward *f, const float *const *weights,
                 const float *input, int n, float *out, qerr *err)
{
    return qforward_run_capture(f, weights, input, n, out, 0, NULL, NULL, err);
}

/* ---- running from a cut ------------------------------------------------------
 * A value read after the cut is never overwritten before it (see
 * may_overwrite), so at the cut its buffer still holds it: saving a cut
 * is copying the buffers that hold such values, restoring it copying them
 * back. Views (flatten) share their input's buffer and are copied once. */

static int64_t slot_numel(const struct qforward *f, int s)
{
    return s == 0 ? f->m->in_numel : f->m->nodes[s - 1].out_numel;
}

/* Whether buffer o holds, at the cut before node first, a value made
 * before the cut (slots 0..first) and read at or after it (or the output). */
static int cut_holds(const struct qforward *f, int o, int first)
{
    for (int s = o; s <= first; s++)
        if (f->owner[s] == o && f->last_read[s] >= first)
            return 1;
    return 0;
}

int64_t qforward_cut_floats(const struct qforward *f, int first)
{
    if (first < 0 || first >= f->m->n_nodes)
        return -1;
    int64_t total = 0;
    for (int o = 0; o <= first; o++)
        if (f->owner[o] == o && cut_holds(f, o, first))
            total += slot_numel(f, o);
    return total;
}

/* Copies the cut's buffers for n samples into to (saving), or from from
 * back into them (restoring). */
static void cut_copy(struct qforward *f, int first, int n, float *to, const float *from)
{
    for (int o = 0; o <= first; o++) {
        if (f->owner[o] != o || !cut_holds(f, o, first))
            continue;
        size_t count = (size_t)n * (size_t)slot_numel(f, o);
        if (to) {
            memcpy(to, f->buf[o], count * sizeof *to);
            to += count;
        } else {
            memcpy(f->buf[o], from, count * sizeof *from);
            from += count;
        }
    }
}

int qforward_run_capture(struct qforward *f, const float *const *weights, const float *input,
                         int n, float *out, int n_cuts, const int *cuts, float *const *saved,
                         qerr *err)
{
    const struct qmodel *m = f->m;
    if (check_batch(f, n, err) < 0)
        return -1;
    for (int k = 0; k < n_cuts; k++)
        if (cuts[k] < 0 || cuts[k] >= m->n_nodes)
            return qerr_set(err, "%s: cut before node %d; the graph has nodes 0 to %d",
                            model_src(m), cuts[k], m->n_nodes - 1);
    preprocess(m, input, n, f->buf[0]);
    for (int i = 0; i < m->n_nodes; i++) {
        for (int k = 0; k < n_cuts; k++)
            if (cuts[k] == i)
                cut_copy(f, i, n, saved[k], NULL);
        run_node(f, weights, i, n);
    }
    copy_output(f, n, out);
    return 0;
}

int qforward_run_from(struct qforward *f, const float *const *weights, int first,
                      const float *saved, int n, float *out, qerr *err)
{
    const struct qmodel *m = f->m;
    if (check_batch(f, n, err) < 0)
        return -1;
    if (first < 0 || first >= m->n_nodes)
        return qerr_set(err, "%s: cut before node %d; the graph has nodes 0 to %d",
                        model_src(m), first, m->n_nodes - 1);
    cut_copy(f, first, n, NULL, saved);
    for (int i = first; i < m->n_nodes; i++)
        run_node(f, weights, i, n);
    copy_output(f, n, out);
    return 0;
}

int qforward_node_output(struct qforward *f, const float *const *weights, int node,
                         const float *saved, int n, float *out, qerr *err)
{
    const struct qmodel *m = f->m;
    if (check_batch(f, n, err) < 0)
        return -1;
    if (node < 0 || node >= m->n_nodes)
        return qerr_set(err, "%s: node %d; the graph has nodes 0 to %d", model_src(m), node,
                        m->n_nodes - 1);
    cut_copy(f, node, n, NULL, saved);
    run_node(f, weights, node, n);
    memcpy(out, value_buf(f, node), (size_t)n * (size_t)m->nodes[node].out_numel * sizeof *out);
    return 0;
}
