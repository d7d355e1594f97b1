/* cli_info.c — `qlab info MODEL`: graph, tensors, shapes and sizes (optionally under a recipe). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json_out.h"
#include "quant/llm.h"
#include "quant/tokenizer.h"

static const char help[] =
    "usage: qlab info MODEL [--quant RECIPE] [--tokenizer FILE] [--json]\n"
    "\n"
    "Shows a model's input, graph and every tensor with its shape and size.\n"
    "With --quant, each tensor's scheme, quantized size and weight error\n"
    "(MSE, SQNR) under that recipe, without running an evaluation.\n"
    "MODEL: a model.json folder or file, a GGUF file, a llama2.c checkpoint\n"
    "(--tokenizer: its tokenizer.bin, default found beside it), or a Hugging\n"
    "Face folder.\n";

static void print_model(struct wb *w)
{
    const struct qmodel *m = wb_model(w);
    const struct qweights *qw = wb_weights(w);
    struct wb_summary s;
    wb_summary(w, &s);
    char fb[32], qb[32], shape[96];
    cli_format_bytes((double)s.float_bytes, fb, sizeof fb);
    cli_format_bytes((double)s.bytes, qb, sizeof qb);
    qshape_format(m->in_shape, m->in_ndim, shape, sizeof shape);
    printf("%s (%s)  %s\n", m->name, m->format, wb_model_abspath(w));
    if (m->description && *m->description)
        printf("  %s\n", m->description);
    if (m->kind == QMODEL_LM) {
        const struct qllm_config *k = &m->llm->c;
        printf("%s: dim %d, %d layers, %d heads (%d kv), head dim %d, hidden %d, vocab %d, "
               "context %d, rope %s theta %g, eps %g; tokenizer: %s\n",
               k->arch == QLLM_QWEN2 ? "qwen2" : "llama", k->dim, k->n_layers, k->n_heads,
               k->n_kv_heads, k->head_dim, k->hidden_dim, k->vocab_size, k->max_ctx,
               k->rope == QLLM_ROPE_HALF ? "half" : "interleaved", (double)k->rope_theta,
               (double)k->norm_eps,
               !m->llm->tok ? "none" : qtok_kind(m->llm->tok) == QTOK_SPM ? "SentencePiece BPE"
                                                                          : "byte-level BPE");
    } else {
        printf("input %s -> %d outputs; default data: %s\n", shape, m->n_classes,
               m->dataset_path ? m->dataset_path : "(none)");
    }
    printf("%lld parameters in %d tensors; float32 %s; recipe: %s\n", (long long)s.n_params,
           s.n_tensors, fb, *wb_recipe_text(w) ? wb_recipe_text(w) : "(none: all float)");
    printf("size %s (%.1f%% of float), %.3f bits/weight, %d tensors quantized\n\n", qb,
           100.0 * s.ratio, s.bits_per_weight, s.n_quantized);
    if (m->n_nodes)
        printf("%-3s %-14s %-15s %s\n", "#", "NODE", "OP", "OUTPUT");
    for (int i = 0; i < m->n_nodes; i++) {
        qshape_format(m->nodes[i].out_shape, m->nodes[i].out_ndim, shape, sizeof shape);
        printf("%-3d %-14s %-15s %s\n", i, m->nodes[i].name, qop_name(m->nodes[i].op), shape);
    }
    int sw = 6; /* the scheme column fits the longest label */
    for (int i = 0; i < m->n_tensors; i++) {
        int len = (int)strlen(wb_tensor_scheme_label(w, i));
        sw = len > sw ? (len < 60 ? len : 60) : sw;
    }
    printf("\n%-26s %-9s %-15s %8s  %-*s %9s %7s %8s\n", "TENSOR",
           m->kind == QMODEL_LM ? "STORED" : "OP", "SHAPE", "PARAMS", sw,
           "SCHEME", "BYTES", "BPW", "SQNR dB");
    for (int i = 0; i < m->n_tensors; i++) {
        const struct qtensor *t = m->tensors[i];
        const struct qtensor_q *q = qw ? &qw->t[i] : NULL;
        char sqnr[16] = "-";
        if (q && q->quantized)
            snprintf(sqnr, sizeof sqnr, q->e.sqnr_db > 1e300 ? "inf" : "%.2f", q->e.sqnr_db);
        qshape_format(t->shape, t->ndim, shape, sizeof shape);
        printf("%-26s %-9s %-15s %8lld  %-*s %9lld %7.3f %8s\n", t->name,
               m->kind == QMODEL_LM ? (m->stored_types && m->stored_types[i]
                                           ? m->stored_types[i]
                                           : qdtype_info(t->dtype)->name)
                                    : qmodel_tensor_op(m, i),
               shape, (long long)t->numel, sw,
               wb_tensor_scheme_label(w, i),
               (long long)(q ? qtensor_q_bytes(q) : t->numel * 4),
               q && t->numel ? (double)q->bits / (double)t->numel : 32.0, sqnr);
    }
}

int cli_info(struct cli *c)
{
    const char *model = NULL, *quant = NULL, *tokenizer = NULL, *v;
    if (c->help) {
        fputs(help, stdout);
        return EXIT_OK;
    }
    for (int i = 0; i < c->argc; i++) {
        int r;
        if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--quant", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            quant = v;
        } else if ((r = cli_opt_value(c, c->argc, c->argv, &i, "--tokenizer", &v)) != 0) {
            if (r < 0)
                return EXIT_USAGE;
            tokenizer = v;
        } else if (c->argv[i][0] == '-' && c->argv[i][1])
            return cli_usage_error(c, "unknown option %s (see qlab info --help)", c->argv[i]);
        else if (!model)
            model = c->argv[i];
        else
            return cli_usage_error(c, "one MODEL only ('%s' is extra)", c->argv[i]);
    }
    if (!model)
        return cli_usage_error(c, "which model? (qlab info MODEL)");
    struct wb *w;
    if (cli_open(c, 1, &w) < 0)
        return EXIT_RUNTIME;
    qerr err;
    int rc = EXIT_OK;
    if (wb_load_model_ex(w, model, tokenizer, &err) < 0)
        rc = cli_runtime_error(&err);
    else if (quant && wb_set_recipe(w, quant, &err) < 0)
        rc = (fprintf(stderr, "qlab info: --quant: %s\n", err.msg), EXIT_USAGE);
    else if (wb_refresh(w, NULL, &err) < 0)
        rc = cli_runtime_error(&err);
    else if (c->json)
        cli_print_json(json_model(w));
    else
        print_model(w);
    wb_close(w);
    return rc;
}
