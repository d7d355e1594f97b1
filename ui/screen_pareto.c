/* screen_pareto.c — a search's Pareto front charted (bits per weight against predicted change); Enter applies a point's recipe. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui.h"

#define TOP_LINES 3      /* title, the search, the y axis title */
#define BOTTOM_LINES 6   /* x axis, its numbers, the legend, three lines about the point */
#define YLAB_W 9         /* the y axis numbers, and the axis */
#define MAX_TIES 32

struct pareto {
    struct ui_screen base;
    struct tui *t;
    int64_t id;
    struct qstore_search *se;    /* points by increasing size */
    struct qstore_sweep *sw;     /* the sweep searched: weights, metric, model */
    int cur;                     /* the point under the cursor */
    int opt;                     /* the optimum, -1: none within the budget */
    int n_verified;
    int zoom;                    /* the chart ends not far past the budget */
};

const char *tui_default_budget(const struct tui *t)
{
    return t->budget[0] ? t->budget : tui_is_lm(t) ? "4.5bpw" : "5bpw";
}

/* ---- the search on a worker -------------------------------------------------------------- */

/* Handed to the worker: it alone touches the workbench until done. */
struct search_work {
    struct wb *w;
    int64_t sweep_id;
    char budget[64];
    char tie_text[MAX_TIES][64];
    const char *ties[MAX_TIES];
    int n_ties;
    int verify;
    struct pareto *replace;      /* the screen to show the new search in (NULL: a new one);
                                    it lies beneath the busy dialog, so it outlives the work */
    struct ui_progress prog;
    int64_t search_id;
    int rc;
    qerr err;
};

static void search_run(void *ctx)
{
    struct search_work *s = ctx;
    struct wb_search_request r = {.sweep_id = s->sweep_id, .budget = s->budget,
                                  .ties = s->ties, .n_ties = s->n_ties, .verify = s->verify,
                                  .progress = &s->prog.q};
    s->rc = wb_search(s->w, &r, &s->search_id, &s->err);
}

static int pareto_load(struct pareto *p, int64_t id, qerr *err);

static void search_done(struct tui *t, void *ctx)
{
    struct search_work *s = ctx;
    if (s->verify)
        tui_refresh_weights(t); /* the verifying runs set recipes, then put ours back */
    if (!s->search_id) {
        tui_status(t, 1, "search failed: %s", s->err.msg);
        return;
    }
    qerr e;
    if (s->replace) {
        if (pareto_load(s->replace, s->search_id, &e) < 0) {
            tui_status(t, 1, "%s", e.msg);
            return;
        }
    } else {
        struct ui_screen *p = screen_pareto_new(t, s->search_id);
        if (!p)
            return;
        tui_push(t, p);
    }
    if (s->rc < 0)
        tui_status(t, 1, "search %lld stored, but: %s", (long long)s->search_id, s->err.msg);
    else
        tui_status(t, 0, "search %lld of sweep %lld, budget %s%s", (long long)s->search_id,
                   (long long)s->sweep_id, s->budget,
                   s->verify ? ": verified points show what they measured" : "");
}

static void search_release(void *ctx)
{
    struct search_work *s = ctx;
    ui_progress_destroy(&s->prog);
    free(s);
}

/* ties_json: the ties of the search being repeated, or NULL */
static void start_search(struct tui *t, int64_t sweep_id, const char *budget,
                         const char *ties_json, int verify, struct pareto *replace)
{
    if (t->busy || t->job) {
        tui_status(t, 1, "a sweep or an evaluation is running");
        return;
    }
    struct search_work *s = calloc(1, sizeof *s);
    if (!s) {
        tui_status(t, 1, "out of memory");
        return;
    }
    s->w = t->w;
    s->sweep_id = sweep_id;
    snprintf(s->budget, sizeof s->budget, "%s", budget);
    s->verify = verify;
    s->replace = replace;
    cJSON *ties = ties_json ? cJSON_Parse(ties_json) : NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, ties)
    {
        if (cJSON_IsString(it) && s->n_ties < MAX_TIES) {
            snprintf(s->tie_text[s->n_ties], sizeof s->tie_text[0], "%s", it->valuestring);
            s->ties[s->n_ties] = s->tie_text[s->n_ties];
            s->n_ties++;
        }
    }
    cJSON_Delete(ties);
    ui_progress_init(&s->prog);
    char title[96], what[160];
    snprintf(title, sizeof title, "%s sweep %lld", verify ? "Searching and verifying" : "Searching",
             (long long)sweep_id);
    if (verify)
        snprintf(what, sizeof what, "budget %s; evaluating %d front point%s for real", budget,
                 verify, verify == 1 ? "" : "s");
    else
        snprintf(what, sizeof what, "budget %s: the exact optimum and the Pareto front", budget);
    tui_push(t, dialog_busy_new(t, title, what,
                                (struct ui_work){.run = search_run, .done = search_done,
                                                 .release = search_release, .ctx = s,
                                                 .reads_workbench = 1,
                                                 .doing = verify ? "verifying" : "searching",
                                                 .progress = &s->prog}));
}

static void budget_accept(struct tui *t, void *ctx, const char *text)
{
    struct pareto *p = ctx; /* NULL: asked for a sweep (t->search_sweep) */
    while (*text == ' ')
        text++;
    if (!text[0]) {
        tui_status(t, 1, "a budget is needed: 4.5bpw, 0.25x, 1.5MiB or 120000B");
        return;
    }
    snprintf(t->budget, sizeof t->budget, "%s", text);
    if (p)
        start_search(t, p->se->sweep_id, t->budget, p->se->ties_json, 0, p);
    else
        start_search(t, t->search_sweep, t->budget, NULL, 0, NULL);
}

#define BUDGET_LABEL "Budget (4.5bpw, 0.25x, 1.5MiB):"

void tui_search(struct tui *t, int64_t sweep_id)
{
    if (t->busy || t->job) {
        tui_status(t, 1, "a sweep or an evaluation is running");
        return;
    }
    t->search_sweep = sweep_id;
    tui_push(t, prompt_new(t, BUDGET_LABEL, tui_default_budget(t),
                           (struct ui_prompt_cb){.accept = budget_accept}));
}

static void verify_accept(struct tui *t, void *ctx, const char *text)
{
    struct pareto *p = ctx;
    char *end;
    long k = strtol(text, &end, 10);
    while (*end == ' ')
        end++;
    if (end == text || *end || k < 1 || k > 100) {
        tui_status(t, 1, "points to verify: '%s' is not a whole number in 1..100", text);
        return;
    }
    start_search(t, p->se->sweep_id, p->se->budget_text, p->se->ties_json, (int)k, p);
}

/* ---- data ------------------------------------------------------------------------------ */

static int by_index(const void *a, const void *b)
{
    const struct qstore_search_point *pa = a, *pb = b;
    return (pa->idx > pb->idx) - (pa->idx < pb->idx);
}

static int pareto_load(struct pareto *p, int64_t id, qerr *err)
{
    struct qstore *db = wb_store(p->t->w);
    struct qstore_search *se = NULL;
    struct qstore_sweep *sw = NULL;
    if (qstore_search_get(db, id, &se, err) < 0)
        return -1;
    if (qstore_sweep_get(db, se->sweep_id, &sw, err) < 0) {
        qstore_search_free(se);
        return -1;
    }
    qsort(se->points, (size_t)se->n_points, sizeof *se->points, by_index);
    qstore_search_free(p->se);
    qstore_sweep_free(p->sw);
    p->id = id;
    p->se = se;
    p->sw = sw;
    p->opt = -1;
    p->n_verified = 0;
    for (int i = 0; i < se->n_points; i++) {
        if (se->points[i].is_optimum)
            p->opt = i;
        p->n_verified += se->points[i].run_id > 0 && isfinite(se->points[i].measured);
    }
    p->cur = p->opt >= 0 ? p->opt : 0;
    p->zoom = 1; /* where the front allows it (zoomable) */
    return 0;
}

static double bpw(const struct pareto *p, int64_t bits)
{
    return p->sw->total_numel > 0 ? (double)bits / (double)p->sw->total_numel : 0;
}

static int verified(const struct qstore_search_point *pt)
{
    return pt->run_id > 0 && isfinite(pt->measured);
}

/* ---- the chart --------------------------------------------------------------------------
 * A canvas of cells, each 2 x 4 dots (braille) in UTF-8 or one dot in ASCII.
 * x is bits per weight; y the predicted change, on an asinh scale when the
 * values span decades (the cheap end of a front is often 1000x the rest). */

struct plot {
    int x0, y0, w, h;            /* cells inside the axes */
    int sx, sy;                  /* dots per cell */
    double xmin, xmax;           /* bits per weight shown */
    double ymin, ymax;           /* scaled change; ymax at the top */
    double s;                    /* asinh scale; 0: linear */
    unsigned char *dots;         /* w x h: braille bits, or 1 for an ASCII line cell */
};

static double yscale(const struct plot *c, double v)
{
    return c->s > 0 ? asinh(v / c->s) : v;
}

static double yunscale(const struct plot *c, double f)
{
    return c->s > 0 ? c->s * sinh(f) : f;
}

/* Dot coordinates, unclipped (a zoomed chart has points off its edges). */
static long dot_x(const struct plot *c, double x)
{
    return lround((x - c->xmin) / (c->xmax - c->xmin) * (c->w * c->sx - 1));
}

static long dot_y(const struct plot *c, double v)
{
    return lround((c->ymax - yscale(c, v)) / (c->ymax - c->ymin) * (c->h * c->sy - 1));
}

static int inside(const struct plot *c, long dx, long dy)
{
    return dx >= 0 && dx < c->w * c->sx && dy >= 0 && dy < c->h * c->sy;
}

static void set_dot(struct plot *c, long dx, long dy)
{
    static const unsigned char bit[4][2] = {{0x01, 0x08}, {0x02, 0x10}, {0x04, 0x20},
                                            {0x40, 0x80}};
    if (!inside(c, dx, dy))
        return;
    size_t cell = (size_t)(dy / c->sy) * (size_t)c->w + (size_t)(dx / c->sx);
    c->dots[cell] |= c->sx == 2 ? bit[dy % 4][dx % 2] : 1;
}

/* Bresenham between two dots, clipped to the canvas */
static void line(struct plot *c, long x0, long y0, long x1, long y1)
{
    long dx = labs(x1 - x0), dy = -labs(y1 - y0);
    long stx = x0 < x1 ? 1 : -1, sty = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        set_dot(c, x0, y0);
        if (x0 == x1 && y0 == y1)
            break;
        long e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += stx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sty;
        }
    }
}

/* Where the front is and where the budget lies, in bits per weight. */
static void front_span(const struct pareto *p, double *lo, double *hi, double *budget)
{
    *budget = bpw(p, p->se->budget_bits);
    *lo = *hi = *budget;
    for (int i = 0; i < p->se->n_points; i++) {
        *lo = fmin(*lo, bpw(p, p->se->points[i].bits));
        *hi = fmax(*hi, bpw(p, p->se->points[i].bits));
    }
}

/* Zoomed: from the smallest point to as far past the budget as the budget
 * is past it (the costly end of a front is long and flat). */
static int zoomable(const struct pareto *p)
{
    double lo, hi, b;
    front_span(p, &lo, &hi, &b);
    return b > lo && hi - b > 2 * (b - lo);
}

/* The ranges: the points shown (their predicted and measured values) and
 * the budget. */
static void plot_ranges(struct plot *c, const struct pareto *p)
{
    const struct qstore_search *se = p->se;
    double xlo, xhi, b, lo = INFINITY, hi = -INFINITY, big = 0, small = INFINITY;
    front_span(p, &xlo, &xhi, &b);
    if (p->zoom && zoomable(p))
        xhi = b + (b - xlo);
    for (int i = 0; i < se->n_points; i++) {
        const struct qstore_search_point *pt = &se->points[i];
        double x = bpw(p, pt->bits);
        if (x < xlo || x > xhi)
            continue;
        double ys[2] = {pt->predicted, verified(pt) ? pt->measured : NAN};
        for (int k = 0; k < 2; k++) {
            if (!isfinite(ys[k]))
                continue;
            lo = fmin(lo, ys[k]);
            hi = fmax(hi, ys[k]);
            big = fmax(big, fabs(ys[k]));
            if (ys[k] != 0)
                small = fmin(small, fabs(ys[k]));
        }
    }
    if (!(hi >= lo))
        lo = hi = 0;
    c->s = big > 0 && small < big * 1e-2 ? big * 1e-3 : 0;
    double pad = (xhi - xlo) * 0.03;
    c->xmin = xlo - (pad > 0 ? pad : 0.5);
    c->xmax = xhi + (pad > 0 ? pad : 0.5);
    c->ymin = yscale(c, lo);
    c->ymax = yscale(c, hi);
    pad = (c->ymax - c->ymin) * 0.05;
    c->ymin -= pad > 0 ? pad : 1;
    c->ymax += pad > 0 ? pad : 1;
}

static void put_glyph(struct tui *t, int y, int x, attr_t a, const char *g)
{
    ui_print(&t->th, y, x, 1, a, g);
}

/* "⣿" for the braille bits of a cell */
static void braille(unsigned char bits, char out[4])
{
    unsigned cp = 0x2800u + bits;
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    out[3] = 0;
}

static void draw_cells(struct tui *t, const struct plot *c)
{
    attr_t a = tui_attr(t, UI_QUANT);
    for (int r = 0; r < c->h; r++)
        for (int k = 0; k < c->w; k++) {
            unsigned char b = c->dots[r * c->w + k];
            if (!b)
                continue;
            char g[4];
            if (c->sx == 2)
                braille(b, g);
            else
                snprintf(g, sizeof g, "%s", t->th.g->dot);
            put_glyph(t, c->y0 + r, c->x0 + k, a, g);
        }
}

static void draw_axes(struct tui *t, const struct plot *c)
{
    attr_t dim = tui_attr(t, UI_DIM), lab = tui_attr(t, UI_LABEL);
    const struct ui_glyphs *g = t->th.g;
    int ay = c->y0 + c->h;
    for (int r = 0; r < c->h; r++)
        put_glyph(t, c->y0 + r, c->x0 - 1, dim, g->v);
    put_glyph(t, ay, c->x0 - 1, dim, g->bl);
    for (int k = 0; k < c->w; k++)
        put_glyph(t, ay, c->x0 + k, dim, g->h);
    /* y: the exact value at four rows */
    int rows[4] = {0, c->h / 3, 2 * c->h / 3, c->h - 1};
    for (int i = 0; i < 4; i++) {
        if (i > 0 && rows[i] <= rows[i - 1])
            continue;
        double centre = rows[i] * c->sy + (c->sy - 1) / 2.0;
        double f = c->ymax - centre / (c->h * c->sy - 1) * (c->ymax - c->ymin);
        char num[32];
        snprintf(num, sizeof num, "%.3g", yunscale(c, f));
        ui_cell(&t->th, c->y0 + rows[i], c->x0 - YLAB_W, YLAB_W - 1, lab, UI_RIGHT, num);
    }
    /* x: round numbers where they fall */
    double range = c->xmax - c->xmin;
    int want = c->w / 10 > 2 ? c->w / 10 : 2;
    double raw = range / want, mag = pow(10, floor(log10(raw))), step = 10 * mag;
    const double mult[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++)
        if (mult[i] * mag >= raw) {
            step = mult[i] * mag;
            break;
        }
    int last_end = c->x0 - 1;
    for (long k = (long)ceil(c->xmin / step); k * step <= c->xmax; k++) {
        double x = k * step;
        int col = c->x0 + (int)(dot_x(c, x) / c->sx);
        if (col < c->x0 || col >= c->x0 + c->w)
            continue;
        put_glyph(t, ay, col, dim, g->tick);
        char num[32];
        snprintf(num, sizeof num, "%g", fabs(x) < step * 1e-6 ? 0.0 : x);
        int len = ui_width(num), start = col - len / 2;
        if (start > last_end && start + len < COLS - 13) {
            ui_print(&t->th, ay + 1, start, len, lab, num);
            last_end = start + len;
        }
    }
    ui_print(&t->th, ay + 1, COLS - 12, 11, dim, "bits/weight");
}

/* The cell of a value at x bits per weight, or 0 when off the chart. */
static int cell_of(const struct plot *c, double x, double v, int *row, int *col)
{
    long dx = dot_x(c, x), dy = dot_y(c, v);
    if (!inside(c, dx, dy))
        return 0;
    *row = c->y0 + (int)(dy / c->sy);
    *col = c->x0 + (int)(dx / c->sx);
    return 1;
}

/* Verified points at what they measured, with the value beside. */
static void draw_measured(struct tui *t, const struct pareto *p, const struct plot *c)
{
    for (int i = 0; i < p->se->n_points; i++) {
        const struct qstore_search_point *pt = &p->se->points[i];
        int row, col;
        if (!verified(pt) || !cell_of(c, bpw(p, pt->bits), pt->measured, &row, &col))
            continue;
        char num[32];
        snprintf(num, sizeof num, "%.3g", pt->measured);
        int len = ui_width(num);
        if (col + 1 + len < c->x0 + c->w)
            ui_print(&t->th, row, col + 1, len, tui_attr(t, UI_GOOD), num);
        else if (col - len > c->x0)
            ui_print(&t->th, row, col - len, len, tui_attr(t, UI_GOOD), num);
        put_glyph(t, row, col, tui_attr(t, UI_GOOD), t->th.g->measured);
    }
}

static void draw_chart(struct tui *t, const struct pareto *p)
{
    struct plot c = {.x0 = YLAB_W, .y0 = TOP_LINES, .w = COLS - YLAB_W - 1,
                     .h = LINES - 2 - TOP_LINES - BOTTOM_LINES, .sx = t->th.utf8 ? 2 : 1,
                     .sy = t->th.utf8 ? 4 : 1};
    if (c.w < 10 || c.h < 3)
        return;
    plot_ranges(&c, p);
    c.dots = calloc((size_t)c.w * (size_t)c.h, 1);
    if (!c.dots)
        return;
    const struct qstore_search *se = p->se;
    long px = 0, py = 0;
    for (int i = 0; i < se->n_points; i++) {
        long x = dot_x(&c, bpw(p, se->points[i].bits)), y = dot_y(&c, se->points[i].predicted);
        if (i > 0 && (inside(&c, px, 0) || inside(&c, x, 0)))
            line(&c, px, py, x, y);
        else
            set_dot(&c, x, y);
        px = x;
        py = y;
    }
    draw_axes(t, &c);
    /* the budget, where no dot is */
    long bx = dot_x(&c, bpw(p, se->budget_bits));
    int bcol = (int)(bx / c.sx);
    for (int r = 0; r < c.h && inside(&c, bx, 0); r++)
        if (!c.dots[r * c.w + bcol])
            put_glyph(t, c.y0 + r, c.x0 + bcol, tui_attr(t, UI_BAD), t->th.g->v);
    draw_cells(t, &c);
    int row, col;
    for (int i = 0; c.sx == 1 && i < se->n_points; i++) /* ASCII: the points over the line */
        if (cell_of(&c, bpw(p, se->points[i].bits), se->points[i].predicted, &row, &col))
            put_glyph(t, row, col, tui_attr(t, UI_QUANT), t->th.g->point);
    draw_measured(t, p, &c);
    if (p->opt >= 0 &&
        cell_of(&c, bpw(p, se->points[p->opt].bits), se->points[p->opt].predicted, &row, &col))
        put_glyph(t, row, col, tui_attr(t, UI_GOOD), t->th.g->optimum);
    /* the cursor: the cell of the point, reversed, with what is in it */
    const struct qstore_search_point *cp = &se->points[p->cur];
    if (cell_of(&c, bpw(p, cp->bits), cp->predicted, &row, &col)) {
        char g[8];
        unsigned char b = c.dots[(row - c.y0) * c.w + (col - c.x0)];
        if (p->cur == p->opt)
            snprintf(g, sizeof g, "%s", t->th.g->optimum);
        else if (c.sx == 2)
            braille(b, g);
        else
            snprintf(g, sizeof g, "%s", t->th.g->point);
        put_glyph(t, row, col, tui_attr(t, UI_CURSOR), g);
    }
    free(c.dots);
    char title[160];
    snprintf(title, sizeof title, "predicted %s%s%s", change_prefix(t, p->sw->metric), p->sw->metric,
             c.s > 0 ? " (log-ish scale)" : "");
    ui_print(&t->th, TOP_LINES - 1, 1, COLS - 2, tui_attr(t, UI_LABEL), title);
}

/* ---- the rest of the screen ------------------------------------------------------------- */

static void draw_legend(struct tui *t, const struct pareto *p, int y)
{
    const struct ui_glyphs *g = t->th.g;
    char buf[128];
    int x = 1;
    snprintf(buf, sizeof buf, "%s front (%d points)", t->th.utf8 ? "\xe2\xa3\xbf" : g->point,
             p->se->n_points);
    x = ui_kv(&t->th, y, x, COLS - 1, NULL, buf, UI_QUANT);
    snprintf(buf, sizeof buf, "%s optimum", g->optimum);
    x = ui_kv(&t->th, y, x, COLS - 1, NULL, buf, UI_GOOD);
    snprintf(buf, sizeof buf, "%s measured (%d)", g->measured, p->n_verified);
    x = ui_kv(&t->th, y, x, COLS - 1, NULL, buf, UI_GOOD);
    snprintf(buf, sizeof buf, "%s budget %s", g->v, p->se->budget_text);
    x = ui_kv(&t->th, y, x, COLS - 1, NULL, buf, UI_BAD);
    if (zoomable(p))
        ui_kv(&t->th, y, x, COLS - 1, "z", p->zoom ? "all" : "zoom", UI_DIM);
}

/* The point under the cursor: three lines from y. */
static void draw_point(struct tui *t, const struct pareto *p, int y)
{
    const struct qstore_search_point *pt = &p->se->points[p->cur];
    char buf[128];
    int x = 1;
    snprintf(buf, sizeof buf, "point %lld", (long long)pt->idx);
    x = ui_kv(&t->th, y, x, COLS - 1, NULL, buf, UI_VALUE);
    if (pt->is_optimum)
        x = ui_kv(&t->th, y, x, COLS - 1, NULL, "optimum", UI_GOOD);
    snprintf(buf, sizeof buf, "%.4f", bpw(p, pt->bits));
    x = ui_kv(&t->th, y, x, COLS - 1, "bits/weight", buf, UI_VALUE);
    snprintf(buf, sizeof buf, "(%lld bits)", (long long)pt->bits);
    x = ui_kv(&t->th, y, x, COLS - 1, NULL, buf, UI_DIM);
    snprintf(buf, sizeof buf, "%.6g", pt->predicted);
    ui_kv(&t->th, y, x, COLS - 1, "predicted", buf, UI_VALUE);
    if (verified(pt)) {
        snprintf(buf, sizeof buf, "%.6g (run #%lld)", pt->measured, (long long)pt->run_id);
        ui_kv(&t->th, y + 1, 1, COLS - 1, "measured", buf, UI_GOOD);
    } else {
        ui_kv(&t->th, y + 1, 1, COLS - 1, "measured", "- (V evaluates points for real)",
              UI_DIM);
    }
    const char *r = pt->recipe_text && pt->recipe_text[0] ? pt->recipe_text
                                                          : "(every tensor float)";
    ui_kv(&t->th, y + 2, 1, COLS - 1, "recipe", r, UI_QUANT);
}

static void pareto_draw(struct tui *t, struct ui_screen *s)
{
    struct pareto *p = (struct pareto *)s;
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    char right[96];
    snprintf(right, sizeof right, "search %lld of sweep %lld", (long long)p->id,
             (long long)p->se->sweep_id);
    int rw = ui_width(right);
    ui_printf(&t->th, 0, 1, COLS - rw - 3, a, "qlab  Pareto: %s",
              p->sw->model_name ? p->sw->model_name : "");
    ui_print(&t->th, 0, COLS - rw - 1, rw, a, right);
    char buf[128];
    int x = 1;
    snprintf(buf, sizeof buf, "%s = %.4f bits/weight", p->se->budget_text,
             bpw(p, p->se->budget_bits));
    x = ui_kv(&t->th, 1, x, COLS - 1, "budget", buf, UI_VALUE);
    if (p->opt >= 0) {
        const struct qstore_search_point *o = &p->se->points[p->opt];
        snprintf(buf, sizeof buf, "%.4f bits/weight, %s %.6g", bpw(p, o->bits), change_prefix(t, p->sw->metric),
                 o->predicted);
        ui_kv(&t->th, 1, x, COLS - 1, "optimum", buf, UI_GOOD);
    } else {
        ui_kv(&t->th, 1, x, COLS - 1, NULL, "no point within the budget", UI_BAD);
    }
    if (p->se->n_points == 0) {
        ui_print(&t->th, 3, 2, COLS - 4, tui_attr(t, UI_DIM), "This search has no front.");
        return;
    }
    draw_chart(t, p);
    draw_legend(t, p, LINES - 2 - 4);
    draw_point(t, p, LINES - 2 - 3);
}

/* ---- keys ----------------------------------------------------------------------------------- */

static int same_model(struct tui *t, const struct qstore_sweep *sw)
{
    const char *path = wb_model_abspath(t->w), *sha;
    qerr e;
    if (path && sw->model_path && strcmp(path, sw->model_path) == 0)
        return 1;
    return wb_model_sha256(t->w, &sha, &e) == 0 && sw->model_sha256 &&
           strcmp(sha, sw->model_sha256) == 0;
}

/* The whole front when the cursor leaves the zoomed part. */
static void unzoom_to(struct pareto *p)
{
    double lo, hi, b;
    if (p->se->n_points == 0)
        return;
    front_span(p, &lo, &hi, &b);
    if (p->zoom && zoomable(p) && bpw(p, p->se->points[p->cur].bits) > b + (b - lo))
        p->zoom = 0;
}

static int apply_point(struct tui *t, struct pareto *p)
{
    const struct qstore_search_point *pt = &p->se->points[p->cur];
    if (t->busy || t->job) {
        tui_status(t, 1, "a sweep or an evaluation is running");
        return 0;
    }
    if (!same_model(t, p->sw)) {
        tui_status(t, 1, "search %lld is of %s, not of the model loaded", (long long)p->id,
                   p->sw->model_path);
        return 0;
    }
    qerr e = {{0}};
    if (wb_set_recipe(t->w, pt->recipe_text ? pt->recipe_text : "", &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        return 0;
    }
    if (tui_refresh_weights(t) == 0)
        tui_status(t, 0, "recipe of search %lld point %lld set (%.4f bits/weight, predicted "
                         "%s %.6g): r evaluates it",
                   (long long)p->id, (long long)pt->idx, bpw(p, pt->bits), change_prefix(t, p->sw->metric),
                   pt->predicted);
    return UI_HOME;
}

static int pareto_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct pareto *p = (struct pareto *)s;
    int n = p->se->n_points;
    switch (ch) {
    case KEY_LEFT:
    case 'h':
    case KEY_DOWN:
    case 'j':
        if (p->cur > 0)
            p->cur--;
        return 0;
    case KEY_RIGHT:
    case 'l':
    case KEY_UP:
    case 'k':
        if (p->cur < n - 1)
            p->cur++;
        unzoom_to(p);
        return 0;
    case KEY_HOME:
    case 'g':
        p->cur = 0;
        return 0;
    case KEY_END:
    case 'G':
        p->cur = n > 0 ? n - 1 : 0;
        unzoom_to(p);
        return 0;
    case 'z':
        p->zoom = !p->zoom;
        if (!zoomable(p))
            tui_status(t, 0, "the whole front fits: nothing to zoom");
        return 0;
    case 'o':
        if (p->opt >= 0)
            p->cur = p->opt;
        else
            tui_status(t, 1, "no point fits the budget");
        return 0;
    case '\n':
    case '\r':
    case KEY_ENTER:
        return n > 0 ? apply_point(t, p) : 0;
    case 'b':
        tui_push(t, prompt_new(t, BUDGET_LABEL, p->se->budget_text,
                               (struct ui_prompt_cb){.accept = budget_accept, .ctx = p}));
        return 0;
    case 'V':
        /* verifying loads the sweep's model unless it is the one loaded */
        if (strcmp(wb_model_abspath(t->w) ? wb_model_abspath(t->w) : "", p->sw->model_path)) {
            tui_status(t, 1, "verifying evaluates %s: open that model (qlab search %lld "
                             "--verify K)",
                       p->sw->model_path, (long long)p->se->sweep_id);
            return 0;
        }
        tui_push(t, prompt_new(t, "Front points to verify (the optimum first):", "2",
                               (struct ui_prompt_cb){.accept = verify_accept, .ctx = p}));
        return 0;
    case 'q':
    case UI_KEY_ESC:
        return UI_CLOSE;
    default:
        return UI_UNHANDLED;
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void pareto_free(struct ui_screen *s)
{
    struct pareto *p = (struct pareto *)s;
    if (!p)
        return;
    qstore_search_free(p->se);
    qstore_sweep_free(p->sw);
    free(p);
}

static const struct ui_fkey pareto_fkeys[] = {
    {"F1", "Help"}, {"Left/Right", "Point"}, {"o", "Optimum"}, {"Enter", "Apply"},
    {"V", "Verify"}, {"b", "Budget"}, {"q", "Back"},
};

static const struct ui_help pareto_help[] = {
    {"Left Right h l", "the previous or next point along the front"},
    {"Home End g G", "the smallest and the largest point"},
    {"o", "the optimum: least change within the budget"},
    {"Enter", "apply the point's recipe; back to the Model screen"},
    {"", "(then r evaluates it for real)"},
    {"V", "search again, evaluating K points for real"},
    {"b", "search again with another budget"},
    {"z", "zoom to the budget's end of a long front, or all"},
    {"(chart)", "x bits per weight, y the summed predicted change;"},
    {"", "log-ish y when the values span decades"},
    {"q Esc", "back"},
};

static const struct ui_screen_ops pareto_ops = {
    .name = "Pareto",
    .draw = pareto_draw,
    .key = pareto_key,
    .free = pareto_free,
    .fkeys = pareto_fkeys,
    .n_fkeys = (int)(sizeof pareto_fkeys / sizeof pareto_fkeys[0]),
    .help = pareto_help,
    .n_help = (int)(sizeof pareto_help / sizeof pareto_help[0]),
};

struct ui_screen *screen_pareto_new(struct tui *t, int64_t search_id)
{
    struct pareto *p = calloc(1, sizeof *p);
    if (!p) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    p->base.ops = &pareto_ops;
    p->t = t;
    qerr e = {{0}};
    if (pareto_load(p, search_id, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        pareto_free(&p->base);
        return NULL;
    }
    return &p->base;
}
