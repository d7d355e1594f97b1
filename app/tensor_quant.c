/* tensor_quant.c — one tensor of a safetensors file through a scheme, written back as .deq and .q. */
#include "tensor_quant.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/pipeline.h"
#include "quant/safetensors.h"

int tq_quantize_file(struct wb *w, const char *in_path, const char *name, const char *scheme_rhs,
                     const char *out_path, struct tq_result *r, qerr *err)
{
    memset(r, 0, sizeof *r);
    struct st_file *f = NULL;
    struct qpipeline *p = NULL;
    struct qrecipe rec = {0};
    float *deq = NULL;
    uint8_t *packed = NULL;
    int rc = -1;
    if (st_open(in_path, &f, err) < 0)
        return -1;
    struct qtensor *t = st_find(f, name);
    if (!t) {
        qerr_set(err, "%s: no tensor named '%s'", in_path, name);
        goto out;
    }
    if (t->ndim < 1 || t->numel == 0) {
        qerr_set(err, "%s: tensor '%s' is empty or a scalar", in_path, name);
        goto out;
    }
    if (qrecipe_add_text(&rec, "*", scheme_rhs, err) < 0 || qrule_is_float(&rec.rules[0]) ||
        qpipeline_configure(wb_plugins(w), &rec.rules[0], &p, err) < 0) {
        if (rec.n && qrule_is_float(&rec.rules[0]))
            qerr_set(err, "float is not a scheme to quantize with");
        qerr_prefix(err, "--scheme '%s'", scheme_rhs);
        goto out;
    }
    qtensor_matrix_shape(t, &r->rows, &r->cols);
    deq = malloc((size_t)(t->numel + QSCHEME_OUT_GUARD) * sizeof *deq);
    if (!deq) {
        qerr_set(err, "out of memory");
        goto out;
    }
    if (qpipeline_run(p, t, deq, t->numel + QSCHEME_OUT_GUARD, &r->bits, NULL, err) < 0)
        goto out;
    qtensor_error_compute(t->f32, deq, t->numel, &r->e);
    r->bits_per_weight = (double)r->bits / (double)t->numel;
    snprintf(r->scheme, sizeof r->scheme, "%s", p->label);
    snprintf(r->params_json, sizeof r->params_json, "%s", p->params_json);
    const struct qscheme_config *c = p->stage[0];
    int64_t row_bytes = 0;
    if (p->n == 1 && qscheme_can_pack(c->ref.scheme)) {
        struct qlab_tensor_view v = {.data = t->f32, .rows = r->rows, .cols = r->cols,
                                     .ndim = t->ndim, .shape = t->shape, .name = t->name};
        if (qscheme_packed_row_bytes(c, r->cols, &row_bytes, err) < 0)
            goto out;
        r->packed_bytes = row_bytes * r->rows;
        packed = malloc((size_t)(r->packed_bytes ? r->packed_bytes : 1));
        if (!packed) {
            qerr_set(err, "out of memory");
            goto out;
        }
        if (qscheme_pack(c, &v, packed, r->packed_bytes, NULL, err) < 0)
            goto out;
        r->has_gguf_type = qscheme_gguf_type(c->ref.scheme, &r->gguf_type);
    }

    /* NAME.deq and NAME.q, and what produced them */
    size_t nlen = strlen(name) + 8;
    char *deq_name = malloc(nlen), *q_name = malloc(nlen);
    char bits[32], bpw[32], gguf[16];
    snprintf(bits, sizeof bits, "%" PRIu64, r->bits);
    snprintf(bpw, sizeof bpw, "%.6f", r->bits_per_weight);
    snprintf(gguf, sizeof gguf, "%" PRIu32, r->gguf_type);
    if (!deq_name || !q_name) {
        free(deq_name);
        free(q_name);
        qerr_set(err, "out of memory");
        goto out;
    }
    snprintf(deq_name, nlen, "%s.deq", name);
    snprintf(q_name, nlen, "%s.q", name);
    int64_t qshape[2] = {r->rows, row_bytes};
    struct st_write_tensor wt[2] = {
        {.name = deq_name, .dtype = QDT_F32, .ndim = t->ndim, .shape = t->shape, .data = deq},
        {.name = q_name, .dtype = QDT_U8, .ndim = 2, .shape = qshape, .data = packed},
    };
    struct st_meta meta[6] = {
        {"source", (char *)in_path}, {"tensor", (char *)name}, {"scheme", r->scheme},
        {"params", r->params_json},  {"bits", bits},            {"bits_per_weight", bpw},
    };
    struct st_meta all_meta[7];
    memcpy(all_meta, meta, sizeof meta);
    all_meta[6] = (struct st_meta){"gguf_type", gguf};
    rc = st_write(out_path, wt, packed ? 2 : 1, all_meta, r->has_gguf_type ? 7 : 6, err);
    free(deq_name);
    free(q_name);
out:
    free(deq);
    free(packed);
    qpipeline_free(p);
    qrecipe_clear(&rec);
    st_close(f);
    return rc;
}
