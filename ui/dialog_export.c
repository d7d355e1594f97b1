/* dialog_export.c — writes one tensor, quantized with its current scheme, to a safetensors file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/tensor_quant.h"
#include "quant/safetensors.h"
#include "ui.h"

struct export_work {
    struct wb *w;
    char *in, *name, *scheme, *out;  /* source file, tensor, "int:bits=4", output file */
    struct tq_result r;
    qerr e;
    int rc;
};

static void export_run(void *ctx)
{
    struct export_work *x = ctx;
    x->rc = tq_quantize_file(x->w, x->in, x->name, x->scheme, x->out, &x->r, &x->e);
}

static void export_done(struct tui *t, void *ctx)
{
    struct export_work *x = ctx;
    if (x->rc < 0) {
        tui_status(t, 1, "%s", x->e.msg);
        return;
    }
    char sqnr[32], packed[160] = "";
    if (isinf(x->r.e.sqnr_db))
        snprintf(sqnr, sizeof sqnr, "inf");
    else
        ui_fmt_num(x->r.e.sqnr_db, 2, sqnr, sizeof sqnr);
    if (x->r.packed_bytes > 0)
        snprintf(packed, sizeof packed, " (+ %s.q, %lld bytes)", x->name,
                 (long long)x->r.packed_bytes);
    tui_status(t, 0, "wrote %s: %s.deq%s at %.3f bits/weight, SQNR %s dB", x->out, x->name,
               packed, x->r.bits_per_weight, sqnr);
    /* a long path would push the numbers off the line: name the file alone */
    const char *base = strrchr(x->out, '/');
    if (ui_width(t->status) > COLS - 2 && base && base[1])
        tui_status(t, 0, "wrote %s: %s.deq%s at %.3f bits/weight, SQNR %s dB", base + 1, x->name,
                   packed, x->r.bits_per_weight, sqnr);
}

static void export_release(void *ctx)
{
    struct export_work *x = ctx;
    if (!x)
        return;
    free(x->in);
    free(x->name);
    free(x->scheme);
    free(x->out);
    free(x);
}

/* The weight file that holds the tensor, or NULL. */
static const char *source_file(const struct qmodel *m, const char *name)
{
    for (int f = 0; f < m->n_files; f++)
        if (st_find(m->files[f], name))
            return m->files[f]->path;
    return NULL;
}

struct ui_screen *dialog_export_new(struct tui *t, int tensor, const char *out)
{
    const struct qmodel *m = wb_model(t->w);
    if (tensor < 0 || tensor >= m->n_tensors) {
        tui_status(t, 1, "the model has no such tensor");
        return NULL;
    }
    const char *name = m->tensors[tensor]->name;
    const char *label = wb_tensor_scheme_label(t->w, tensor);
    if (!label || strcmp(label, "float") == 0) {
        tui_status(t, 1, "%s is float: nothing to export (choose a scheme first)", name);
        return NULL;
    }
    const char *in = source_file(m, name);
    if (!in) {
        tui_status(t, 1, "%s: no weight file of the model holds it", name);
        return NULL;
    }
    struct export_work *x = calloc(1, sizeof *x);
    if (!x || !(x->in = strdup(in)) || !(x->name = strdup(name)) ||
        !(x->scheme = strdup(label)) || !(x->out = strdup(out))) {
        export_release(x);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    x->w = t->w;
    char title[300], what[600];
    snprintf(title, sizeof title, "Exporting %s", name);
    snprintf(what, sizeof what, "%s with %s", out, label);
    /* the plugins are the workbench's: nothing else may read it meanwhile */
    return dialog_busy_new(t, title, what,
                           (struct ui_work){.run = export_run, .done = export_done,
                                            .release = export_release, .ctx = x,
                                            .reads_workbench = 1, .doing = "quantizing"});
}
