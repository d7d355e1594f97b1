/* screen_model.c — the Model screen: size summary, recipe, last run, and the tensor table
 * (a language model's by block, collapsible, or by role across the blocks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_groups.h"
#include "quant/llm.h"
#include "ui.h"

#define HEADER_LINES 5 /* title, sizes, recipe, two lines of the last run */
#define LM_HEADER_LINES 6 /* and the architecture under the title */

/* A table row: a tensor, or (language models) a block or a role. */
enum row_kind { ROW_TENSOR, ROW_BLOCK, ROW_ROLE };

struct mrow {
    enum row_kind kind;
    int idx;               /* tensor, block or role index */
    int child;             /* a tensor shown under its open block */
};

struct model_screen {
    struct ui_screen base;
    struct tui *t;
    struct ui_table table;
    struct ui_col cols[UI_TABLE_MAX_COLS]; /* the columns shown ... */
    int col_of[UI_TABLE_MAX_COLS];         /* ... and which of C_* each one is */
    struct mrow *rows;     /* the rows shown (after the filter) */
    char filter[256];      /* substring, case-insensitive; "" = all */
    char filter_saved[256];/* restored when the filter prompt is cancelled */
    int export_tensor;     /* the tensor the export prompts are about */
    char export_out[256];  /* its output file, while asking to overwrite it */
    /* language models */
    struct lm_groups *lm;  /* NULL: a classifier, one flat table */
    char *open;            /* per block: expanded */
    int by_role;           /* the role view instead of the blocks */
};

enum { C_NAME, C_OP, C_SHAPE, C_PARAMS, C_SCHEME, C_BYTES, C_SQNR, C_COUNT };

static const struct ui_col model_cols[C_COUNT] = {
    [C_NAME] = {"Tensor", 12, 3, UI_LEFT},
    [C_OP] = {"Op", 9, 0, UI_LEFT, 3},
    [C_SHAPE] = {"Shape", 15, 0, UI_LEFT, 1},
    [C_PARAMS] = {"Params", 7, 0, UI_RIGHT, 2},
    [C_SCHEME] = {"Scheme", 10, 2, UI_LEFT},
    [C_BYTES] = {"Bytes", 6, 0, UI_RIGHT},
    [C_SQNR] = {"SQNR", 6, 0, UI_RIGHT},
};

/* Language models: no Op column (the name says it); the shape column
 * also counts a block's or a role's tensors. */
static const struct ui_col lm_cols[C_COUNT] = {
    [C_NAME] = {"Tensor", 18, 3, UI_LEFT},
    [C_SHAPE] = {"Shape", 12, 1, UI_LEFT, 1},
    [C_PARAMS] = {"Params", 7, 0, UI_RIGHT, 2},
    [C_SCHEME] = {"Scheme", 12, 2, UI_LEFT},
    [C_BYTES] = {"Bytes", 6, 0, UI_RIGHT},
    [C_SQNR] = {"SQNR", 6, 0, UI_RIGHT},
};

static void set_columns(struct model_screen *m)
{
    int n = 0;
    for (int c = 0; c < C_COUNT; c++) {
        if (m->lm && c == C_OP)
            continue;
        m->cols[n] = m->lm ? lm_cols[c] : model_cols[c];
        m->col_of[n++] = c;
    }
    if (m->by_role)
        m->cols[0].title = "Role";
    m->table.cols = m->cols;
    m->table.n_cols = n;
}

/* ---- rows ---------------------------------------------------------------- */

static int add_row(struct model_screen *m, int n, enum row_kind kind, int idx, int child)
{
    m->rows[n] = (struct mrow){kind, idx, child};
    return n + 1;
}

/* The blocks in model order, each where its first tensor is; an open
 * block's tensors under it. */
static int tree_rows(struct model_screen *m, const struct qmodel *md)
{
    const struct lm_groups *g = m->lm;
    int n = 0;
    for (int i = 0; i < md->n_tensors; i++) {
        int b = g->block[i];
        if (b < 0) {
            n = add_row(m, n, ROW_TENSOR, i, 0);
        } else if (g->by_block[g->start[b]] == i) {
            n = add_row(m, n, ROW_BLOCK, b, 0);
            for (int k = g->start[b]; m->open[b] && k < g->start[b + 1]; k++)
                n = add_row(m, n, ROW_TENSOR, g->by_block[k], 1);
        }
    }
    return n;
}

/* Rebuilds the rows (filter, view, open blocks), keeping the selection
 * on the same tensor, block or role when it is still shown. */
static void rebuild(struct model_screen *m, struct mrow keep)
{
    const struct qmodel *md = wb_model(m->t->w);
    int n = 0;
    if (m->lm && m->by_role) {
        for (int r = 0; r < m->lm->n_roles; r++)
            if (!m->filter[0] || strcasestr(m->lm->roles[r].name, m->filter))
                n = add_row(m, n, ROW_ROLE, r, 0);
    } else if (m->lm && !m->filter[0]) {
        n = tree_rows(m, md);
    } else {
        for (int i = 0; i < md->n_tensors; i++)
            if (!m->filter[0] || strcasestr(md->tensors[i]->name, m->filter))
                n = add_row(m, n, ROW_TENSOR, i, 0);
    }
    ui_table_set_rows(&m->table, n);
    for (int r = 0; r < n; r++)
        if (m->rows[r].kind == keep.kind && m->rows[r].idx == keep.idx) {
            m->table.cur = r;
            break;
        }
}

static const struct mrow *selected(const struct model_screen *m)
{
    return m->table.n_rows > 0 ? &m->rows[m->table.cur] : NULL;
}

static void apply_filter(struct model_screen *m)
{
    const struct mrow *r = selected(m);
    rebuild(m, r ? *r : (struct mrow){ROW_TENSOR, -1, 0});
}

static int selected_tensor(const struct model_screen *m)
{
    const struct mrow *r = selected(m);
    return r && r->kind == ROW_TENSOR ? r->idx : -1;
}

static void fmt_count(int64_t n, char *buf, size_t size)
{
    if (n < 10000000)
        snprintf(buf, size, "%lld", (long long)n);
    else
        snprintf(buf, size, "%.1fM", (double)n / 1e6);
}

static void fmt_sqnr(double db, char *buf, size_t size)
{
    if (isinf(db))
        snprintf(buf, size, "inf");
    else
        ui_fmt_num(db, 1, buf, size); /* NAN (nothing quantized): "-" */
}

/* The name column of a tensor row: a language model's under its block by
 * leaf name, and at the top level indented like the block names. */
static void tensor_name(const struct model_screen *m, const struct mrow *r, char *buf,
                        size_t size)
{
    const char *name = wb_model(m->t->w)->tensors[r->idx]->name;
    if (r->child) {
        const char *leaf = name;
        for (int dots = 0; *leaf && dots < 2; leaf++) /* past "blk.N." */
            dots += *leaf == '.';
        snprintf(buf, size, "    %s", leaf);
    } else if (m->lm && !m->by_role && !m->filter[0]) {
        snprintf(buf, size, "  %s", name);
    } else {
        snprintf(buf, size, "%s", name);
    }
}

static void tensor_cell(struct model_screen *m, const struct mrow *r, int col, char *buf,
                        size_t size, enum ui_el *el)
{
    struct wb *w = m->t->w;
    int i = r->idx;
    const struct qmodel *md = wb_model(w);
    const struct qtensor *tn = md->tensors[i];
    const struct qweights *qw = wb_weights(w);
    const struct qtensor_q *q = qw ? &qw->t[i] : NULL;
    switch (col) {
    case C_NAME:
        tensor_name(m, r, buf, size);
        break;
    case C_OP:
        snprintf(buf, size, "%s", qmodel_tensor_op(md, i));
        *el = UI_DIM;
        break;
    case C_SHAPE:
        qshape_format(tn->shape, tn->ndim, buf, size);
        break;
    case C_PARAMS:
        fmt_count(tn->numel, buf, size);
        break;
    case C_SCHEME:
        snprintf(buf, size, "%s", wb_tensor_scheme_label(w, i));
        *el = q && q->quantized ? UI_QUANT : UI_FLOAT;
        break;
    case C_BYTES:
        ui_fmt_bytes_short(q ? (double)qtensor_q_bytes(q) : (double)tn->numel * 4, buf, size);
        break;
    case C_SQNR:
        fmt_sqnr(q && q->quantized ? q->e.sqnr_db : NAN, buf, size);
        break;
    }
}

/* A block's or a role's row: its tensors summed. */
static void group_cell(struct model_screen *m, const struct mrow *r, int col, char *buf,
                       size_t size, enum ui_el *el)
{
    const struct lm_groups *g = m->lm;
    const struct qmodel *md = wb_model(m->t->w);
    const int *ts;
    int n;
    if (r->kind == ROW_BLOCK) {
        ts = &g->by_block[g->start[r->idx]];
        n = g->start[r->idx + 1] - g->start[r->idx];
    } else {
        ts = g->roles[r->idx].tensors;
        n = g->roles[r->idx].n;
    }
    struct lm_sum sum;
    lm_sum(m->t->w, ts, n, &sum);
    switch (col) {
    case C_NAME:
        if (r->kind == ROW_BLOCK)
            snprintf(buf, size, "%s blk.%d", m->open[r->idx] ? m->t->th.g->open
                                                              : m->t->th.g->closed, r->idx);
        else
            snprintf(buf, size, "%s", g->roles[r->idx].name);
        *el = UI_VALUE;
        break;
    case C_SHAPE: {
        /* a role's tensors share a shape (checked, not assumed) */
        const struct qtensor *t0 = md->tensors[ts[0]];
        int same = r->kind == ROW_ROLE;
        for (int k = 1; same && k < n; k++) {
            const struct qtensor *tk = md->tensors[ts[k]];
            same = tk->ndim == t0->ndim &&
                   memcmp(tk->shape, t0->shape, (size_t)t0->ndim * sizeof *t0->shape) == 0;
        }
        char shape[64];
        qshape_format(t0->shape, t0->ndim, shape, sizeof shape);
        if (same && n == 1)
            snprintf(buf, size, "%s", shape);
        else if (same)
            snprintf(buf, size, "%dx %s", n, shape);
        else
            snprintf(buf, size, "%d tensors", n);
        *el = UI_DIM;
        break;
    }
    case C_PARAMS:
        fmt_count(sum.params, buf, size);
        break;
    case C_SCHEME:
        *el = lm_sum_scheme(&sum, buf, size) ? UI_QUANT : UI_FLOAT;
        break;
    case C_BYTES:
        ui_fmt_bytes_short((double)sum.bytes, buf, size);
        break;
    case C_SQNR:
        fmt_sqnr(sum.sqnr_db, buf, size);
        break;
    }
}

static void model_cell(void *ctx, int row, int col, char *buf, size_t size, enum ui_el *el)
{
    struct model_screen *m = ctx;
    const struct mrow *r = &m->rows[row];
    if (r->kind == ROW_TENSOR)
        tensor_cell(m, r, m->col_of[col], buf, size, el);
    else
        group_cell(m, r, m->col_of[col], buf, size, el);
}

/* ---- drawing -------------------------------------------------------------------- */

static void draw_title(struct tui *t, const struct model_screen *m)
{
    const struct qmodel *md = wb_model(t->w);
    struct wb_summary s;
    wb_summary(t->w, &s);
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    char right[160];
    int n = snprintf(right, sizeof right, "%d tensors, %d quantized", s.n_tensors, s.n_quantized);
    if (m->filter[0] && n > 0 && (size_t)n < sizeof right)
        snprintf(right + n, sizeof right - (size_t)n, ", %d shown", m->table.n_rows);
    int rw = ui_width(right);
    int lw = ui_printf(&t->th, 0, 1, COLS - rw - 3, a, "qlab  Model: %s", md->name);
    if (lw + rw + 3 <= COLS)
        ui_print(&t->th, 0, COLS - rw - 1, rw, a, right);
}

static void draw_sizes(struct tui *t, int y)
{
    struct wb_summary s;
    wb_summary(t->w, &s);
    char fb[32], qb[32], bpw[32], ratio[32];
    ui_fmt_bytes((double)s.float_bytes, fb, sizeof fb);
    ui_fmt_bytes((double)s.bytes, qb, sizeof qb);
    snprintf(bpw, sizeof bpw, "%.2f", s.bits_per_weight);
    snprintf(ratio, sizeof ratio, "%.3f", s.ratio);
    int x = ui_kv(&t->th, y, 1, COLS, "float", fb, UI_VALUE);
    x = ui_kv(&t->th, y, x, COLS, "quantized", qb, s.n_quantized ? UI_QUANT : UI_VALUE);
    x = ui_kv(&t->th, y, x, COLS, "bits/weight", bpw, UI_VALUE);
    ui_kv(&t->th, y, x, COLS, "ratio", ratio, UI_VALUE);
}

static void draw_recipe(struct tui *t, int y)
{
    const char *r = wb_recipe_text(t->w);
    ui_kv(&t->th, y, 1, COLS - 1, "recipe", r[0] ? r : "(none: every tensor float)",
          r[0] ? UI_QUANT : UI_DIM);
}

/* "top-1 98.33 (float 98.61)", the value red when worse than float;
 * returns the next column. */
static int draw_pair(struct tui *t, int y, int x, const char *label, double q, double f,
                     int decimals, int higher_better)
{
    char qs[32], fs[32];
    ui_fmt_num(q, decimals, qs, sizeof qs);
    ui_fmt_num(f, decimals, fs, sizeof fs);
    int worse = (q - f) * (higher_better ? 1 : -1) < -1e-9;
    x = ui_kv(&t->th, y, x, COLS, label, qs, worse ? UI_BAD : UI_GOOD) - 1;
    if (x < COLS)
        x += ui_printf(&t->th, y, x, COLS - x, tui_attr(t, UI_DIM), "(float %s)", fs);
    return x + 2;
}

/* "dim 64  layers 5  heads 8 (4 kv)  vocab 512  context 512  ffn 172" */
static void draw_arch(struct tui *t, int y)
{
    const struct qllm *l = wb_model(t->w)->llm;
    if (!l)
        return;
    const struct qllm_config *c = &l->c;
    char v[64];
    int x = ui_kv(&t->th, y, 1, COLS, NULL, c->arch == QLLM_QWEN2 ? "qwen2" : "llama", UI_VALUE);
    snprintf(v, sizeof v, "%d", c->dim);
    x = ui_kv(&t->th, y, x, COLS, "dim", v, UI_VALUE);
    snprintf(v, sizeof v, "%d", c->n_layers);
    x = ui_kv(&t->th, y, x, COLS, "layers", v, UI_VALUE);
    if (c->n_kv_heads != c->n_heads)
        snprintf(v, sizeof v, "%d (%d kv)", c->n_heads, c->n_kv_heads);
    else
        snprintf(v, sizeof v, "%d", c->n_heads);
    x = ui_kv(&t->th, y, x, COLS, "heads", v, UI_VALUE);
    snprintf(v, sizeof v, "%d", c->vocab_size);
    x = ui_kv(&t->th, y, x, COLS, "vocab", v, UI_VALUE);
    snprintf(v, sizeof v, "%d", c->max_ctx);
    x = ui_kv(&t->th, y, x, COLS, "context", v, UI_VALUE);
    snprintf(v, sizeof v, "%d", c->hidden_dim);
    ui_kv(&t->th, y, x, COLS, "ffn", v, UI_VALUE);
}

/* The last run's perplexity and divergence, two lines from x on line y. */
static void draw_lm_run(struct tui *t, int y, int x)
{
    const struct qlm_metrics *q = &t->last.lm;
    double ref = q->has_ref ? q->ppl_ref : NAN;
    char v[64];
    x = draw_pair(t, y, x, "PPL", q->ppl, ref, 4, 0);
    ui_fmt_num(q->has_ref ? q->ln_ppl_ratio : NAN, 5, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "ln ratio", v, UI_VALUE);
    if (q->has_ref)
        snprintf(v, sizeof v, "%.2f%%", q->same_top_pct);
    else
        snprintf(v, sizeof v, "-");
    ui_kv(&t->th, y, x, COLS, "same top", v, UI_VALUE);
    y++;
    x = 3;
    ui_fmt_num(q->has_ref ? q->kld_mean : NAN, 5, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "KLD", v, UI_VALUE);
    ui_fmt_num(q->has_ref ? q->kld_p99 : NAN, 4, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "p99", v, UI_VALUE);
    char dp[32];
    if (q->has_ref)
        snprintf(dp, sizeof dp, "%+.2f%%", q->dp_mean);
    else
        snprintf(dp, sizeof dp, "-");
    char label[16];
    snprintf(label, sizeof label, "%sp", t->th.g->delta);
    x = ui_kv(&t->th, y, x, COLS, label, dp, UI_VALUE);
    if (q->has_ref)
        snprintf(v, sizeof v, "%.2f%%", q->dp_rms);
    else
        snprintf(v, sizeof v, "-");
    x = ui_kv(&t->th, y, x, COLS, "rms", v, UI_VALUE);
    snprintf(v, sizeof v, "%d", t->last_ctx);
    if (t->last_ctx > 0)
        x = ui_kv(&t->th, y, x, COLS, "ctx", v, UI_DIM);
    if (t->last_recipe && strcmp(t->last_recipe, wb_recipe_text(t->w)) != 0)
        ui_print(&t->th, y, x, COLS - x - 1, tui_attr(t, UI_DIM), "(recipe changed since)");
}

static void draw_run(struct tui *t, int y)
{
    if (!t->have_run) {
        ui_print(&t->th, y, 1, COLS - 2, tui_attr(t, UI_DIM),
                 tui_is_lm(t) ? "No run yet in this session: press r to measure perplexity."
                              : "No run yet in this session: press r to evaluate the recipe.");
        return;
    }
    const struct wb_eval_outcome *o = &t->last;
    char id[64];
    snprintf(id, sizeof id, "#%lld", (long long)o->run_id);
    const char *st = o->status ? o->status : "failed";
    int done = strcmp(st, "done") == 0 && t->last_rc == 0;
    int x = ui_kv(&t->th, y, 1, COLS, "run", id, UI_VALUE);
    x = ui_kv(&t->th, y, x, COLS, NULL, st, done ? UI_GOOD : UI_BAD);
    if (!done) {
        if (t->last_rc != 0 && t->last_error[0])
            ui_wrap(&t->th, y, x, COLS - x - 1, 2, tui_attr(t, UI_BAD), t->last_error);
        return;
    }
    if (o->is_lm) {
        draw_lm_run(t, y, x);
        return;
    }
    const struct qclass_metrics *q = &o->metrics, *f = &o->float_metrics;
    x = draw_pair(t, y, x, "top-1", q->top1, f->top1, 2, 1);
    draw_pair(t, y, x, "top-5", q->top5, f->top5, 2, 1);
    y++;
    x = 3;
    x = draw_pair(t, y, x, "CE", q->cross_entropy, f->cross_entropy, 4, 0);
    char v[64];
    ui_fmt_num(q->has_ref ? q->top1_agreement : NAN, 2, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "agree", v, UI_VALUE);
    ui_fmt_num(q->has_ref ? q->kld_mean : NAN, 5, v, sizeof v);
    x = ui_kv(&t->th, y, x, COLS, "KLD", v, UI_VALUE);
    if (t->last_recipe && strcmp(t->last_recipe, wb_recipe_text(t->w)) != 0)
        ui_print(&t->th, y, x, COLS - x - 1, tui_attr(t, UI_DIM), "(recipe changed since)");
}

static void model_draw(struct tui *t, struct ui_screen *s)
{
    struct model_screen *m = (struct model_screen *)s;
    int y = 1;
    draw_title(t, m);
    if (m->lm)
        draw_arch(t, y++);
    draw_sizes(t, y++);
    draw_recipe(t, y++);
    draw_run(t, y);
    y = m->lm ? LM_HEADER_LINES : HEADER_LINES;
    int h = LINES - 2 - y;
    ui_table_draw(&t->th, &m->table, y, 0, h, COLS);
    if (m->table.n_rows == 0)
        ui_print(&t->th, y + 1, 2, COLS - 4, tui_attr(t, UI_DIM),
                 m->by_role ? "No role matches the filter." : "No tensor matches the filter.");
}

/* ---- what a row stands for ---------------------------------------------------------- */

/* The tensor whose bits per weight the scheme picker shows for a row. */
static int row_lead(const struct model_screen *m, const struct mrow *r)
{
    if (r->kind == ROW_BLOCK)
        return lm_block_lead(m->lm, wb_model(m->t->w), r->idx);
    if (r->kind == ROW_ROLE)
        return m->lm->roles[r->idx].tensors[0];
    return r->idx;
}

/* The glob a row's scheme goes to: "blk.3.*" (the block's weights),
 * "blk.*.ffn_down.weight"; NULL for one tensor. */
static const char *row_glob(const struct model_screen *m, const struct mrow *r, char *buf,
                            size_t size)
{
    if (r->kind == ROW_BLOCK) {
        snprintf(buf, size, "blk.%d.*", r->idx);
        return buf;
    }
    if (r->kind == ROW_ROLE)
        return m->lm->roles[r->idx].glob; /* NULL: a tensor outside the blocks */
    return NULL;
}

/* ---- prompts ----------------------------------------------------------------------- */

static void filter_change(struct tui *t, void *ctx, const char *text)
{
    (void)t;
    struct model_screen *m = ctx;
    snprintf(m->filter, sizeof m->filter, "%s", text);
    apply_filter(m);
}

static void filter_cancel(struct tui *t, void *ctx)
{
    filter_change(t, ctx, ((struct model_screen *)ctx)->filter_saved);
}

static void glob_accept(struct tui *t, void *ctx, const char *text)
{
    struct model_screen *m = ctx;
    if (!text[0]) {
        tui_status(t, 1, "a glob is needed, e.g. * or conv*");
        return;
    }
    const struct mrow *r = selected(m);
    int i = r ? row_lead(m, r) : -1;
    tui_push(t, dialog_scheme_new(t, i >= 0 ? i : 0, text));
}

static void recipe_accept(struct tui *t, void *ctx, const char *text)
{
    (void)ctx;
    qerr e = {{0}};
    if (wb_set_recipe(t->w, text, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        return;
    }
    if (tui_refresh_weights(t) == 0)
        tui_status(t, 0, "recipe set");
}

/* ---- export ------------------------------------------------------------------------ */

/* "conv2.weight.int.safetensors": the tensor and the scheme names of its
 * label ("prune:...+int:bits=4" gives "prune+int"), as one file name in
 * the current directory. */
static void export_default_name(const char *tensor, const char *label, char *buf, size_t size)
{
    char schemes[128];
    size_t n = 0;
    for (const char *p = label; *p && n + 1 < sizeof schemes;) {
        size_t len = strcspn(p, ":+");
        for (size_t i = 0; i < len && n + 1 < sizeof schemes; i++)
            schemes[n++] = p[i];
        p += len;
        p += strcspn(p, "+"); /* skip the parameters */
        if (*p == '+' && n + 1 < sizeof schemes)
            schemes[n++] = *p++;
    }
    schemes[n] = 0;
    snprintf(buf, size, "%s.%s.safetensors", tensor, schemes);
    for (char *c = buf; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-' || *c == '+'))
            *c = '_'; /* a '/' of "plugin/scheme" must not make a folder */
}

static void overwrite_accept(struct tui *t, void *ctx, const char *text)
{
    struct model_screen *m = ctx;
    if (text[0] != 'y' && text[0] != 'Y') {
        tui_status(t, 0, "not exported: %s is left as it was", m->export_out);
        return;
    }
    tui_push(t, dialog_export_new(t, m->export_tensor, m->export_out));
}

static void export_accept(struct tui *t, void *ctx, const char *text)
{
    struct model_screen *m = ctx;
    if (!text[0]) {
        tui_status(t, 1, "an output file is needed, e.g. out.safetensors");
        return;
    }
    if (access(text, F_OK) == 0) {
        snprintf(m->export_out, sizeof m->export_out, "%s", text);
        char label[64];
        snprintf(label, sizeof label, "%.36s exists. Overwrite? (y/N)", text);
        tui_push(t, prompt_new(t, label, "",
                               (struct ui_prompt_cb){.accept = overwrite_accept, .ctx = m}));
        return;
    }
    tui_push(t, dialog_export_new(t, m->export_tensor, text));
}

static void start_export(struct tui *t, struct model_screen *m, int i)
{
    const char *name = wb_model(t->w)->tensors[i]->name;
    const char *label = wb_tensor_scheme_label(t->w, i);
    if (strcmp(label, "float") == 0) {
        tui_status(t, 1, "%s is float: nothing to export (choose a scheme first)", name);
        return;
    }
    char out[256];
    export_default_name(name, label, out, sizeof out);
    m->export_tensor = i;
    tui_push(t, prompt_new(t, "Export to:", out,
                           (struct ui_prompt_cb){.accept = export_accept, .ctx = m}));
}

/* ---- keys ------------------------------------------------------------------------------ */

static void set_float(struct tui *t, int i)
{
    qerr e = {{0}};
    if (wb_apply_tensor(t->w, i, "float", NULL, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        return;
    }
    if (tui_refresh_weights(t) == 0)
        tui_status(t, 0, "%s: float", wb_model(t->w)->tensors[i]->name);
}

static void pick_scheme(struct tui *t, struct model_screen *m)
{
    const struct mrow *r = selected(m);
    if (!r) {
        tui_status(t, 1, "no tensor selected");
        return;
    }
    char glob[64];
    tui_push(t, dialog_scheme_new(t, row_lead(m, r), row_glob(m, r, glob, sizeof glob)));
}

static void row_float(struct tui *t, struct model_screen *m)
{
    const struct mrow *r = selected(m);
    char buf[64];
    const char *glob = r ? row_glob(m, r, buf, sizeof buf) : NULL;
    if (!r)
        tui_status(t, 1, "no tensor selected");
    else if (glob)
        tui_apply(t, row_lead(m, r), glob, "float", NULL);
    else
        set_float(t, row_lead(m, r));
}

/* Opens (1) or closes (0) block b, or every block (b < 0). */
static void set_open(struct model_screen *m, int b, int open)
{
    struct mrow keep = *selected(m);
    if (b < 0) {
        memset(m->open, open, (size_t)m->lm->n_blocks);
        if (keep.kind == ROW_TENSOR && m->lm->block[keep.idx] >= 0 && !open)
            keep = (struct mrow){ROW_BLOCK, m->lm->block[keep.idx], 0};
    } else {
        m->open[b] = (char)open;
    }
    rebuild(m, keep);
}

/* The keys of a language model's tree: returns 1 when ch was one. */
static int tree_key(struct model_screen *m, int ch)
{
    const struct mrow *r = selected(m);
    if (!r || m->by_role || m->filter[0])
        return 0;
    int b = r->kind == ROW_BLOCK ? r->idx : -1;
    int parent = r->kind == ROW_TENSOR && r->child ? m->lm->block[r->idx] : -1;
    switch (ch) {
    case '\n':
    case '\r':
    case KEY_ENTER:
        if (b < 0)
            return 0;
        set_open(m, b, !m->open[b]);
        return 1;
    case KEY_RIGHT:
    case 'l':
        if (b < 0)
            return 0;
        if (m->open[b]) /* already open: step into it */
            ui_table_key(&m->table, KEY_DOWN);
        else
            set_open(m, b, 1);
        return 1;
    case KEY_LEFT:
    case 'h':
        if (b >= 0) {
            set_open(m, b, 0);
        } else if (parent >= 0) {
            m->open[parent] = 0;
            rebuild(m, (struct mrow){ROW_BLOCK, parent, 0});
        } else {
            return 0;
        }
        return 1;
    case '*': {
        int all = 1;
        for (int k = 0; k < m->lm->n_blocks; k++)
            all &= m->open[k] != 0;
        set_open(m, -1, !all);
        return 1;
    }
    case '+':
    case '-':
        set_open(m, -1, ch == '+');
        return 1;
    default:
        return 0;
    }
}

static void toggle_view(struct tui *t, struct model_screen *m)
{
    const struct mrow *r = selected(m);
    struct mrow keep = {ROW_TENSOR, -1, 0};
    m->by_role = !m->by_role;
    /* the role of the tensor, or the block of it, stays selected */
    if (r && m->by_role && r->kind == ROW_TENSOR) {
        for (int k = 0; k < m->lm->n_roles; k++)
            for (int j = 0; j < m->lm->roles[k].n; j++)
                if (m->lm->roles[k].tensors[j] == r->idx)
                    keep = (struct mrow){ROW_ROLE, k, 0};
    } else if (r && !m->by_role && r->kind == ROW_ROLE) {
        int i = m->lm->roles[r->idx].tensors[0];
        int b = m->lm->block[i];
        keep = b >= 0 ? (struct mrow){ROW_BLOCK, b, 0} : (struct mrow){ROW_TENSOR, i, 0};
    }
    m->filter[0] = 0;
    m->table.cur = m->table.top = 0;
    set_columns(m);
    rebuild(m, keep);
    tui_status(t, 0, m->by_role ? "by role: a scheme here goes to that tensor in every block"
                                : "by block: Enter opens a block, s sets all its weights");
}

static int model_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct model_screen *m = (struct model_screen *)s;
    if (m->lm && ch == 'g') { /* a language model's g generates; Home goes to the top */
        tui_generate(t);
        return 0;
    }
    if (ui_table_key(&m->table, ch))
        return 0;
    if (m->lm && tree_key(m, ch))
        return 0;
    int i = selected_tensor(m);
    switch (ch) {
    case 's':
    case 'l':
    case KEY_RIGHT:
    case '\n':
    case '\r':
    case KEY_ENTER:
        pick_scheme(t, m);
        return 0;
    case 'a':
        tui_push(t, prompt_new(t, "Apply to tensors matching glob:", "*",
                               (struct ui_prompt_cb){.accept = glob_accept, .ctx = m}));
        return 0;
    case 'f':
        row_float(t, m);
        return 0;
    case 'e':
        tui_push(t, prompt_new(t, "Recipe:", wb_recipe_text(t->w),
                               (struct ui_prompt_cb){.accept = recipe_accept, .ctx = m}));
        return 0;
    case 'r':
    case 'R':
        tui_run_eval(t, ch == 'R');
        return 0;
    case 'v':
        if (!m->lm)
            return UI_UNHANDLED;
        toggle_view(t, m);
        return 0;
    case 'H':
        tui_push(t, screen_history_new(t));
        return 0;
    case 'S':
        tui_open_sweep(t, 0, UI_SWEEP_SHOW);
        return 0;
    case 'n':
        tui_open_sweep(t, 0, UI_SWEEP_NEW);
        return 0;
    case 'x':
        if (i < 0)
            tui_status(t, 1, "no tensor selected");
        else
            start_export(t, m, i);
        return 0;
    case 'P':
        tui_push(t, screen_plugins_new(t));
        return 0;
    case '/':
        memcpy(m->filter_saved, m->filter, sizeof m->filter);
        tui_push(t, prompt_new(t, m->by_role ? "Filter roles:" : "Filter tensors:", m->filter,
                               (struct ui_prompt_cb){.accept = filter_change,
                                                     .change = filter_change,
                                                     .cancel = filter_cancel, .ctx = m}));
        return 0;
    case UI_KEY_ESC:
        if (m->filter[0]) {
            m->filter[0] = 0;
            apply_filter(m);
        }
        return 0;
    case 'q':
    case KEY_F(10):
        return UI_QUIT;
    default:
        return UI_UNHANDLED;
    }
}

/* ---- lifecycle -------------------------------------------------------------------------- */

static void model_free(struct ui_screen *s)
{
    struct model_screen *m = (struct model_screen *)s;
    if (!m)
        return;
    lm_groups_free(m->lm);
    free(m->open);
    free(m->rows);
    free(m);
}

/* 78 of 80 columns: "f Float" and "x Export" are left to the help */
static const struct ui_fkey model_fkeys[] = {
    {"F1", "Help"}, {"Enter", "Scheme"}, {"a", "Glob"}, {"r", "Run"}, {"S", "Sweep"},
    {"/", "Filter"}, {"H", "History"}, {"P", "Plugins"}, {"q", "Quit"},
};

static const struct ui_help model_help[] = {
    {"Up Down j k", "select a tensor"},
    {"PgUp PgDn g G", "page up and down, first and last tensor"},
    {"Enter s l", "choose the scheme of the tensor and edit its parameters"},
    {"a", "apply a scheme to every tensor matching a glob"},
    {"f", "put the tensor back to float"},
    {"e", "edit the recipe text"},
    {"r", "evaluate the recipe (Esc cancels)"},
    {"x", "write the quantized tensor to a .safetensors file"},
    {"S", "sensitivity sweep: heatmap of the newest, Pareto"},
    {"n", "start a new sensitivity sweep"},
    {"H", "history of this model's runs, sweeps and searches"},
    {"P", "plugins, schemes, parameters; check a plugin"},
    {"/", "filter tensors by name; Esc clears the filter"},
    {"q", "quit"},
};

/* 75 of 80 columns: Plugins, Export, Glob and Float are left to the help */
static const struct ui_fkey lm_fkeys[] = {
    {"F1", "Help"}, {"s", "Scheme"}, {"v", "View"}, {"r", "Run"}, {"g", "Generate"},
    {"/", "Filter"}, {"S", "Sweep"}, {"H", "History"}, {"q", "Quit"},
};

static const struct ui_help lm_help[] = {
    {"Up Down j k", "select a block, a tensor or a role"},
    {"PgUp PgDn", "page up and down"},
    {"Home End", "first and last row (g generates here)"},
    {"Enter Right l", "open a block; on a tensor or role: its scheme"},
    {"Enter", "on an open block: close it"},
    {"Left h", "close the block (from any of its tensors)"},
    {"* + -", "open or close all blocks; open all; close all"},
    {"s", "choose a scheme; on a block for all its weights"},
    {"v", "by block / by role (a role across all blocks)"},
    {"", "Enter on ffn_down: rule blk.*.ffn_down.weight"},
    {"f", "back to float: the tensor, block or role"},
    {"a", "apply a scheme to every tensor matching a glob"},
    {"e", "edit the recipe text"},
    {"r", "perplexity and KL divergence (Esc cancels)"},
    {"R", "the same, asking for the text file and n_ctx"},
    {"g", "generate text with the float and quantized model"},
    {"x", "write the quantized tensor to a .safetensors file"},
    {"S", "sensitivity sweep: heatmap of the newest, Pareto"},
    {"n", "start a new sensitivity sweep (block, role...)"},
    {"H", "history of this model's runs, sweeps and searches"},
    {"P", "plugins, schemes, parameters; check a plugin"},
    {"/", "filter by name (flat list); Esc clears it"},
    {"q", "quit"},
};

#define MODEL_OPS(fk, hl)                                                                  \
    {                                                                                      \
        .name = "Model", .draw = model_draw, .key = model_key, .free = model_free,        \
        .fkeys = fk, .n_fkeys = (int)(sizeof fk / sizeof fk[0]), .help = hl,               \
        .n_help = (int)(sizeof hl / sizeof hl[0]),                                         \
    }

static const struct ui_screen_ops model_ops = MODEL_OPS(model_fkeys, model_help);
static const struct ui_screen_ops lm_model_ops = MODEL_OPS(lm_fkeys, lm_help);

struct ui_screen *screen_model_new(struct tui *t)
{
    const struct qmodel *md = wb_model(t->w);
    int lm = md->kind == QMODEL_LM;
    struct model_screen *m = calloc(1, sizeof *m);
    if (m && lm) {
        m->lm = lm_groups_new(md);
        m->open = m->lm ? calloc((size_t)m->lm->n_blocks + 1, 1) : NULL;
    }
    size_t rows = (size_t)md->n_tensors + (m && m->lm ? (size_t)m->lm->n_blocks : 0) + 1;
    if (m)
        m->rows = calloc(rows, sizeof *m->rows);
    if (!m || !m->rows || (lm && (!m->lm || !m->open))) {
        model_free(m ? &m->base : NULL);
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    m->base.ops = lm ? &lm_model_ops : &model_ops;
    m->t = t;
    m->table = (struct ui_table){.cell = model_cell, .ctx = m};
    set_columns(m);
    apply_filter(m);
    return &m->base;
}
