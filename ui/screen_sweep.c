/* screen_sweep.c — the Sweep screen: groups x schemes as a heatmap of the metric change, filled live while a sweep runs. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ui.h"

#define CELL_W 10        /* columns of one scheme's cell */
#define NAME_MIN 8       /* the group column: at least, ... */
#define NAME_MAX 26      /* ... at most */
#define GRID_TOP 3       /* title, sweep line, scheme names */
#define BOTTOM_LINES 4   /* the legend and three lines about the cell under the cursor */
#define POLL_S 0.25      /* how often a running sweep's table is read again (at most) */

/* ---- the colour scale ----------------------------------------------------------
 * Buckets equally wide in asinh(change / s): about linear within s of zero
 * and logarithmic beyond, so a table whose changes span decades (and may be
 * negative: quantizing can help) still spreads over every bucket. */

struct heat {
    int n;                               /* values on the scale; 0: none yet */
    double lo, hi;                       /* the least and the greatest change */
    double s;                            /* linear below about s */
    double edge[UI_HEAT_BUCKETS + 1];    /* bucket bounds, in the metric's units */
};

static double heat_f(const struct heat *h, double v)
{
    return asinh(v / h->s);
}

static void heat_build(struct heat *h, const double *v, int n)
{
    memset(h, 0, sizeof *h);
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        if (h->n == 0 || v[i] < h->lo)
            h->lo = v[i];
        if (h->n == 0 || v[i] > h->hi)
            h->hi = v[i];
        h->n++;
    }
    double big = fmax(fabs(h->lo), fabs(h->hi));
    h->s = big > 0 ? big * 1e-3 : 1; /* three decades under the largest are resolved */
    double f0 = heat_f(h, h->lo), f1 = heat_f(h, h->hi);
    for (int k = 0; k <= UI_HEAT_BUCKETS; k++)
        h->edge[k] = h->s * sinh(f0 + (f1 - f0) * k / UI_HEAT_BUCKETS);
    h->edge[0] = h->lo; /* exact ends, not a round trip through sinh */
    h->edge[UI_HEAT_BUCKETS] = h->hi;
}

static int heat_bucket(const struct heat *h, double v)
{
    double f0 = heat_f(h, h->lo), f1 = heat_f(h, h->hi);
    if (!(f1 > f0))
        return 0;
    int k = (int)floor((heat_f(h, v) - f0) / (f1 - f0) * UI_HEAT_BUCKETS);
    return k < 0 ? 0 : k >= UI_HEAT_BUCKETS ? UI_HEAT_BUCKETS - 1 : k;
}

/* "0.0622", "-0.00413", "8.0e-05": at most 8 columns */
static void fmt_change(double v, char *buf, size_t size)
{
    if (isnan(v))
        snprintf(buf, size, "-");
    else if (v == 0 || (fabs(v) >= 1e-3 && fabs(v) < 1e4))
        snprintf(buf, size, "%.3g", v);
    else
        snprintf(buf, size, "%.1e", v);
}

/* ---- the worker -------------------------------------------------------------------- */

/* Handed to the worker: it alone touches the workbench until finished. */
struct sweep_job {
    struct wb *w;
    int64_t resume_id;           /* 0: a new sweep */
    struct ui_sweep_form form;
    char data[1024];             /* "" : the model's own dataset */
    int n_ctx, n_chunks;
    struct ui_progress prog;
    struct wb_sweep_outcome o;
    int rc;
    qerr err;
    pthread_t thread;
    int started;                 /* thread is joinable */
    atomic_int finished;
};

static void *sweep_worker(void *arg)
{
    struct sweep_job *j = arg;
    if (j->resume_id) {
        j->rc = wb_sweep_resume(j->w, j->resume_id, 0, &j->prog.q, &j->o, &j->err);
    } else {
        struct wb_sweep_request r = {
            .data = j->data[0] ? j->data : NULL, .n_ctx = j->n_ctx, .n_chunks = j->n_chunks,
            .schemes = j->form.schemes, .group = j->form.group,
            .metric = j->form.metric[0] ? j->form.metric : NULL,
            .mode = j->form.loo ? "loo" : "one", .progress = &j->prog.q};
        j->rc = wb_sweep(j->w, &r, &j->o, &j->err);
    }
    atomic_store(&j->finished, 1);
    return NULL;
}

static void job_free(struct sweep_job *j)
{
    if (!j)
        return;
    if (j->started) {
        atomic_store(&j->prog.cancel, 1); /* quitting: the points done stay */
        pthread_join(j->thread, NULL);
    }
    ui_progress_destroy(&j->prog);
    free(j);
}

/* ---- the screen ---------------------------------------------------------------------- */

struct sweep_screen {
    struct ui_screen base;
    struct tui *t;
    struct qstore *db;           /* a connection of its own: read while the worker
                                    writes through the workbench's (NULL: none) */
    char model_path[4096];       /* the loaded model, as the store has it */
    char model_sha[72];          /* its content ("" when unknown) */
    char model_name[128];
    /* the sweep shown */
    int64_t id;                  /* 0: none */
    struct qstore_sweep *sw;
    struct qstore_sweep_point *pts;
    int n_pts;
    int *cell;                   /* n_groups x n_schemes: index into pts, -1 pending */
    int *order;                  /* rows: group indices, in model order or by sensitivity */
    int64_t group_numel;         /* of every group (loo: the bits per weight of a point) */
    int sorted;
    struct heat heat;
    int row, col, top, left;     /* the cursor (row of order, scheme) and the first shown */
    int page;                    /* rows shown by the last draw */
    /* a sweep running from this screen */
    struct sweep_job *job;
    int64_t newest_before;       /* newest sweep id when it started: its own is above */
    int64_t prev_id;             /* the sweep shown before it (again if it fails at once) */
    int64_t seen_done;           /* its progress at the last read of the table */
    double last_read;
    int rate_started;            /* its speed: points done since rate_t0 (resumed ones */
    double rate_t0;              /* and the float reference pass left out) */
    int64_t rate_done0;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* What to read the store through: its own connection, or the workbench's
 * while no worker holds it. */
static struct qstore *store(const struct sweep_screen *v)
{
    return v->db ? v->db : v->job ? NULL : wb_store(v->t->w);
}

static void drop_sweep(struct sweep_screen *v)
{
    qstore_sweep_points_free(v->pts, v->n_pts);
    qstore_sweep_free(v->sw);
    free(v->cell);
    free(v->order);
    v->sw = NULL;
    v->pts = NULL;
    v->n_pts = 0;
    v->cell = NULL;
    v->order = NULL;
    memset(&v->heat, 0, sizeof v->heat);
}

static const struct qstore_sweep_point *point_at(const struct sweep_screen *v, int g, int s)
{
    int i = v->cell[(size_t)g * (size_t)v->sw->n_schemes + (size_t)s];
    return i >= 0 ? &v->pts[i] : NULL;
}

static int point_done(const struct qstore_sweep_point *p)
{
    return p && strcmp(p->status, "done") == 0;
}

/* The change at the group's cheapest scheme that has one: how much the
 * group minds being squeezed (NAN: nothing measured yet). */
static double sensitivity(const struct sweep_screen *v, int g)
{
    const struct qstore_sweep_point *best = NULL;
    for (int s = 0; s < v->sw->n_schemes; s++) {
        const struct qstore_sweep_point *p = point_at(v, g, s);
        if (point_done(p) && isfinite(p->change) && (!best || p->bits < best->bits))
            best = p;
    }
    return best ? best->change : NAN;
}

struct ranked {
    double sens;  /* NAN: nothing measured */
    int g;
};

static int by_sensitivity(const void *a, const void *b)
{
    const struct ranked *ra = a, *rb = b;
    if (isnan(ra->sens) != isnan(rb->sens))
        return isnan(ra->sens) ? 1 : -1; /* unmeasured last */
    if (!isnan(ra->sens) && ra->sens != rb->sens)
        return ra->sens > rb->sens ? -1 : 1;
    return ra->g - rb->g;
}

/* Model order, or by sensitivity; the cursor stays on its group. */
static void order_rows(struct sweep_screen *v)
{
    int G = v->sw->n_groups;
    int at = G > 0 && v->row < G ? v->order[v->row] : -1;
    struct ranked *r = v->sorted && G > 1 ? malloc((size_t)G * sizeof *r) : NULL;
    for (int g = 0; g < G; g++)
        v->order[g] = g;
    if (r) { /* without memory the model order stays */
        for (int g = 0; g < G; g++)
            r[g] = (struct ranked){sensitivity(v, g), g};
        qsort(r, (size_t)G, sizeof *r, by_sensitivity);
        for (int g = 0; g < G; g++)
            v->order[g] = r[g].g;
        free(r);
    }
    for (int k = 0; k < G; k++)
        if (v->order[k] == at)
            v->row = k;
}

/* Reads the sweep and its points again (the id may be new). */
static int load(struct sweep_screen *v, int64_t id, qerr *err)
{
    struct qstore *db = store(v);
    struct qstore_sweep *sw = NULL;
    struct qstore_sweep_point *pts = NULL;
    int n = 0;
    if (!db)
        return qerr_set(err, "the database is busy");
    if (qstore_sweep_get(db, id, &sw, err) < 0)
        return -1;
    if (qstore_sweep_points(db, id, &pts, &n, err) < 0) {
        qstore_sweep_free(sw);
        return -1;
    }
    int G = sw->n_groups > 0 ? sw->n_groups : 0, S = sw->n_schemes > 0 ? sw->n_schemes : 0;
    size_t n_cells = (size_t)G * (size_t)S;
    int *cell = malloc((n_cells ? n_cells : 1) * sizeof *cell);
    int *order = malloc((size_t)(G > 0 ? G : 1) * sizeof *order);
    double *vals = malloc((size_t)(n > 0 ? n : 1) * sizeof *vals);
    if (!cell || !order || !vals) {
        free(cell);
        free(order);
        free(vals);
        qstore_sweep_points_free(pts, n);
        qstore_sweep_free(sw);
        return qerr_set(err, "out of memory");
    }
    for (size_t i = 0; i < n_cells; i++)
        cell[i] = -1;
    int nv = 0;
    for (int i = 0; i < n; i++) {
        if (pts[i].group < 0 || pts[i].group >= G || pts[i].scheme < 0 || pts[i].scheme >= S)
            continue; /* a stranger's row: not drawn */
        cell[(size_t)pts[i].group * (size_t)S + (size_t)pts[i].scheme] = i;
        if (point_done(&pts[i]))
            vals[nv++] = pts[i].change;
    }
    int same = v->sw && v->id == id && v->sw->n_groups == G && v->sw->n_schemes == S;
    int keep_row = same && v->row < G ? v->order[v->row] : 0;
    drop_sweep(v);
    v->id = id;
    v->sw = sw;
    v->pts = pts;
    v->n_pts = n;
    v->cell = cell;
    v->order = order;
    heat_build(&v->heat, vals, nv);
    free(vals);
    v->group_numel = 0;
    for (int g = 0; g < G; g++)
        v->group_numel += sw->groups[g].numel;
    if (!same)
        v->row = v->col = v->top = v->left = 0;
    for (int g = 0; g < G; g++)
        order[g] = g;
    v->row = keep_row; /* a group index until order_rows maps it */
    order_rows(v);
    return 0;
}

/* The newest sweep of the model that started after newest_before: the
 * worker's, as soon as it is created (the outcome names it only at the end). */
static void find_new_sweep(struct sweep_screen *v)
{
    struct qstore_sweep *list = NULL;
    int n = 0;
    qerr e;
    struct qstore_run_filter f = {.model_path = v->model_path,
                                  .model_sha256 = v->model_sha[0] ? v->model_sha : NULL,
                                  .limit = 8};
    if (!v->db || qstore_sweeps_list(v->db, &f, &list, &n, &e) < 0)
        return;
    int64_t id = 0;
    for (int i = 0; i < n; i++)
        if (list[i].id > v->newest_before && strcmp(list[i].status, "running") == 0 &&
            (!id || list[i].id < id))
            id = list[i].id;
    qstore_sweeps_free(list, n);
    if (id)
        load(v, id, &e);
}

static int64_t newest_sweep_id(struct sweep_screen *v)
{
    struct qstore_sweep *list = NULL;
    int n = 0;
    qerr e;
    struct qstore_run_filter f = {.limit = 1};
    int64_t id = 0;
    struct qstore *db = store(v);
    if (db && qstore_sweeps_list(db, &f, &list, &n, &e) == 0 && n > 0)
        id = list[0].id;
    qstore_sweeps_free(list, n);
    return id;
}

/* ---- running ---------------------------------------------------------------------------- */

static int start_job(struct tui *t, struct sweep_screen *v, struct sweep_job *j)
{
    j->w = t->w;
    ui_progress_init(&j->prog);
    atomic_init(&j->finished, 0);
    v->newest_before = j->resume_id ? 0 : newest_sweep_id(v);
    int rc = pthread_create(&j->thread, NULL, sweep_worker, j);
    if (rc != 0) {
        tui_status(t, 1, "sweep: cannot start a thread: %s", strerror(rc));
        job_free(j);
        return -1;
    }
    j->started = 1;
    v->job = j;
    v->rate_started = 0;
    v->seen_done = -1;
    v->last_read = 0;
    t->busy = 1;
    return 0;
}

static void start_sweep(struct tui *t, void *ctx)
{
    struct sweep_screen *v = ctx;
    if (v->job || t->busy || t->job) {
        tui_status(t, 1, "a sweep or an evaluation is already running");
        return;
    }
    struct sweep_job *j = calloc(1, sizeof *j);
    if (!j) {
        tui_status(t, 1, "out of memory");
        return;
    }
    j->form = t->sweep_form;
    snprintf(j->data, sizeof j->data, "%s", t->data_path);
    if (tui_is_lm(t)) {
        j->n_ctx = t->lm_ctx;
        j->n_chunks = t->lm_chunks;
    }
    if (start_job(t, v, j) < 0)
        return;
    v->prev_id = v->id;
    drop_sweep(v); /* the new sweep shows as soon as it is stored */
    v->id = 0;
    tui_status(t, 0, "sweep started: %s by %s; Esc cancels (the points done stay)",
               j->form.schemes, j->form.group);
}

static void form_accept(struct tui *t, void *ctx, const struct ui_sweep_form *f)
{
    t->sweep_form = *f;
    if (tui_is_lm(t))
        tui_with_lm_data(t, 0, start_sweep, ctx);
    else
        start_sweep(t, ctx);
}

static void new_sweep(struct tui *t, struct sweep_screen *v)
{
    if (v->job) {
        tui_status(t, 1, "a sweep is running: Esc cancels it first");
        return;
    }
    tui_push(t, dialog_sweep_new(t, &t->sweep_form, form_accept, v));
}

static void resume_sweep(struct tui *t, struct sweep_screen *v)
{
    const struct qstore_sweep *sw = v->sw;
    if (v->job) {
        tui_status(t, 1, "a sweep is running: Esc cancels it first");
        return;
    }
    if (!sw) {
        tui_status(t, 1, "no sweep to resume");
        return;
    }
    if (!sw->status || strcmp(sw->status, "done") == 0 || strcmp(sw->status, "running") == 0) {
        tui_status(t, 1, "sweep %lld is %s: nothing to resume", (long long)v->id, sw->status);
        return;
    }
    /* resuming loads the sweep's model: only the one the Model screen shows */
    if (!sw->model_path || strcmp(sw->model_path, v->model_path) != 0) {
        tui_status(t, 1, "sweep %lld is of %s: resume it with qlab sweep --resume %lld",
                   (long long)v->id, sw->model_path, (long long)v->id);
        return;
    }
    struct sweep_job *j = calloc(1, sizeof *j);
    if (!j) {
        tui_status(t, 1, "out of memory");
        return;
    }
    j->resume_id = v->id;
    if (start_job(t, v, j) == 0)
        tui_status(t, 0, "resuming sweep %lld; Esc cancels", (long long)v->id);
}

/* The worker has returned: the outcome to the status line, the table read again. */
static void finish_job(struct tui *t, struct sweep_screen *v)
{
    struct sweep_job *j = v->job;
    pthread_join(j->thread, NULL);
    j->started = 0;
    v->job = NULL;
    t->busy = 0;
    const struct wb_sweep_outcome *o = &j->o;
    qerr e;
    int64_t show = o->sweep_id > 0 ? o->sweep_id : v->id ? v->id : v->prev_id;
    if (show > 0 && load(v, show, &e) < 0)
        tui_status(t, 1, "%s", e.msg);
    if (j->rc < 0 && o->sweep_id > 0)
        tui_status(t, 1, "sweep %lld failed: %s (R resumes it)", (long long)o->sweep_id,
                   j->err.msg);
    else if (j->rc < 0)
        tui_status(t, 1, "sweep failed: %s", j->err.msg);
    else if (strcmp(o->status, "done") == 0)
        tui_status(t, 0, "sweep %lld done: %lld points computed in %.1f s (%.2f points/s)",
                   (long long)o->sweep_id, (long long)o->n_run, o->seconds, o->points_per_s);
    else
        tui_status(t, 0, "sweep %lld %s: %lld/%lld points kept; R resumes it",
                   (long long)o->sweep_id, o->status, (long long)(o->n_done + o->n_failed),
                   (long long)o->n_points);
    job_free(j);
}

static int sweep_tick(struct tui *t, struct ui_screen *s)
{
    struct sweep_screen *v = (struct sweep_screen *)s;
    qerr e;
    if (!v->job) {
        /* a sweep running in another process fills in too, more slowly */
        double now = now_s();
        if (v->sw && v->sw->status && strcmp(v->sw->status, "running") == 0 &&
            now - v->last_read > 1.0) {
            v->last_read = now;
            load(v, v->id, &e);
        }
        return 0;
    }
    if (atomic_load(&v->job->finished)) {
        finish_job(t, v);
        return 0;
    }
    double now = now_s();
    int64_t done;
    char phase[32];
    ui_progress_read(&v->job->prog, phase, sizeof phase, &done, NULL);
    if (!v->rate_started && strcmp(phase, "sweep") == 0) {
        v->rate_started = 1;
        v->rate_t0 = now;
        v->rate_done0 = done;
    }
    if (now - v->last_read < POLL_S || (v->id && done == v->seen_done))
        return 0;
    v->last_read = now;
    if (!v->id)
        find_new_sweep(v);
    else if (load(v, v->id, &e) == 0)
        v->seen_done = done;
    return 0;
}

/* ---- drawing ------------------------------------------------------------------------------ */

static int name_width(const struct sweep_screen *v)
{
    int w = NAME_MIN;
    for (int g = 0; v->sw && g < v->sw->n_groups; g++) {
        int n = ui_width(v->sw->groups[g].name) + 1;
        if (n > w)
            w = n;
    }
    return w > NAME_MAX ? NAME_MAX : w;
}

static int grid_rows(void)
{
    int n = LINES - 2 - BOTTOM_LINES - GRID_TOP;
    return n > 1 ? n : 1;
}

static int grid_cols(const struct sweep_screen *v)
{
    int n = (COLS - name_width(v)) / (CELL_W + 1);
    return n > 1 ? n : 1;
}

/* Keeps the cursor inside the table and on the screen. */
static void clamp_view(struct sweep_screen *v)
{
    if (!v->sw)
        return;
    int G = v->sw->n_groups, S = v->sw->n_schemes, rows = grid_rows(), cols = grid_cols(v);
    v->row = v->row >= G ? G - 1 : v->row;
    v->row = v->row < 0 ? 0 : v->row;
    v->col = v->col >= S ? S - 1 : v->col;
    v->col = v->col < 0 ? 0 : v->col;
    if (v->row < v->top)
        v->top = v->row;
    if (v->row >= v->top + rows)
        v->top = v->row - rows + 1;
    if (v->col < v->left)
        v->left = v->col;
    if (v->col >= v->left + cols)
        v->left = v->col - cols + 1;
    v->top = v->top < 0 ? 0 : v->top;
    v->left = v->left < 0 ? 0 : v->left;
}

static attr_t heat_attr(struct tui *t, int k)
{
    return tui_attr(t, (enum ui_el)(UI_HEAT0 + k));
}

/* A legend patch or a cell's mark: colour alone, or under NO_COLOR the
 * bucket's shade character in its attributes. */
static void draw_patch(struct tui *t, int y, int x, int k)
{
    char patch[16];
    if (t->th.color)
        snprintf(patch, sizeof patch, "  ");
    else
        snprintf(patch, sizeof patch, "%s%s", t->th.g->shade[k], t->th.g->shade[k]);
    ui_print(&t->th, y, x, 2, heat_attr(t, k), patch);
}

static void draw_cell(struct tui *t, const struct sweep_screen *v, int y, int x, int g, int s)
{
    const struct qstore_sweep_point *p = point_at(v, g, s);
    int cur = v->order[v->row] == g && v->col == s;
    char val[32], text[48];
    attr_t a;
    if (!p) {
        a = tui_attr(t, cur ? UI_CURSOR : UI_NORMAL);
        ui_cell(&t->th, y, x, CELL_W, a, UI_RIGHT, cur ? "pending " : "");
        return;
    }
    if (!point_done(p)) {
        a = tui_attr(t, cur ? UI_CURSOR : UI_BAD);
        ui_cell(&t->th, y, x, CELL_W, a, UI_RIGHT, "failed ");
        return;
    }
    int k = heat_bucket(&v->heat, p->change);
    fmt_change(p->change, val, sizeof val);
    snprintf(text, sizeof text, "%s ", val);
    /* the cursor: its bucket's colour reversed (the cursor colour itself may
     * be a bucket's in 8 colours); without colour, marked '>' */
    a = heat_attr(t, k);
    if (cur)
        a = t->th.color ? a | A_REVERSE | A_BOLD : tui_attr(t, UI_CURSOR) | A_BOLD;
    ui_cell(&t->th, y, x, CELL_W, a, UI_RIGHT, text);
    if (!t->th.color) /* the bucket's mark where colour cannot show it */
        ui_print(&t->th, y, x, 1, a, cur ? ">" : t->th.g->shade[k]);
}

static void draw_grid(struct tui *t, struct sweep_screen *v)
{
    const struct qstore_sweep *sw = v->sw;
    int nw = name_width(v), rows = grid_rows(), cols = grid_cols(v);
    v->page = rows;
    clamp_view(v);
    attr_t head = tui_attr(t, UI_TABLE_HEAD);
    ui_fill(GRID_TOP - 1, 0, COLS, head);
    ui_print(&t->th, GRID_TOP - 1, 0, nw - 1, head, v->sorted ? "Group (by sensitivity)"
                                                              : "Group");
    for (int c = 0; c < cols && v->left + c < sw->n_schemes; c++) {
        int s = v->left + c, x = nw + c * (CELL_W + 1);
        ui_cell(&t->th, GRID_TOP - 1, x, CELL_W, s == v->col ? tui_attr(t, UI_CURSOR) : head,
                UI_RIGHT, sw->schemes[s]);
    }
    if (v->left > 0)
        ui_print(&t->th, GRID_TOP - 1, nw - 1, 1, head, "<");
    if (v->left + cols < sw->n_schemes)
        ui_print(&t->th, GRID_TOP - 1, COLS - 1, 1, head, ">");
    for (int r = 0; r < rows && v->top + r < sw->n_groups; r++) {
        int row = v->top + r, g = v->order[row], y = GRID_TOP + r;
        ui_print(&t->th, y, 0, nw - 1, tui_attr(t, row == v->row ? UI_VALUE : UI_NORMAL),
                 sw->groups[g].name);
        for (int c = 0; c < cols && v->left + c < sw->n_schemes; c++)
            draw_cell(t, v, y, nw + c * (CELL_W + 1), g, v->left + c);
    }
    if (v->top > 0)
        ui_print(&t->th, GRID_TOP, nw - 1, 1, tui_attr(t, UI_DIM), t->th.g->up);
    if (v->top + rows < sw->n_groups)
        ui_print(&t->th, GRID_TOP + rows - 1, nw - 1, 1, tui_attr(t, UI_DIM), t->th.g->down);
}

/* "Δ cross_entropy ██ -0.0043 ██ -1.1e-04 ... up to 1.13   failed  blank: pending" */
static void draw_legend(struct tui *t, const struct sweep_screen *v, int y)
{
    const struct heat *h = &v->heat;
    int x = 1;
    if (h->n == 0) {
        ui_print(&t->th, y, x, COLS - 2, tui_attr(t, UI_DIM),
                 "no point measured yet: cells fill in as they are");
        return;
    }
    char label[64], num[32];
    snprintf(label, sizeof label, "%s%s", change_prefix(t, v->sw->metric), v->sw->metric);
    x += ui_print(&t->th, y, x, COLS - x, tui_attr(t, UI_LABEL), label) + 1;
    int buckets = h->hi > h->lo ? UI_HEAT_BUCKETS : 1;
    for (int k = 0; k < buckets && x < COLS - 4; k++) {
        draw_patch(t, y, x, k);
        fmt_change(h->edge[k], num, sizeof num);
        x += 3 + ui_printf(&t->th, y, x + 3, COLS - x - 3, tui_attr(t, UI_NORMAL), "%s", num) + 1;
    }
    fmt_change(h->hi, num, sizeof num);
    x += ui_printf(&t->th, y, x, COLS - x, tui_attr(t, UI_DIM), "to %s", num) + 2;
    if (x < COLS - 14)
        ui_print(&t->th, y, x, COLS - x, tui_attr(t, UI_BAD), "failed");
}

/* "top1 96.94  cross_entropy 0.1212 ..." from a point's metrics JSON */
static void metrics_text(const char *json, char *buf, size_t size)
{
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    size_t used = 0;
    buf[0] = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        if (!cJSON_IsNumber(it) || !it->string || used + 1 >= size)
            continue;
        int n = snprintf(buf + used, size - used, "%s%s %.5g", used ? "  " : "", it->string,
                         it->valuedouble);
        if (n < 0)
            break;
        used += (size_t)n < size - used ? (size_t)n : size - used - 1;
    }
    cJSON_Delete(o);
}

/* The cell under the cursor, exactly: three lines from y. */
static void draw_detail(struct tui *t, const struct sweep_screen *v, int y)
{
    const struct qstore_sweep *sw = v->sw;
    int g = v->order[v->row], s = v->col;
    const struct qstore_sweep_group *gr = &sw->groups[g];
    const struct qstore_sweep_point *p = point_at(v, g, s);
    int x = 1;
    char buf[1024], label[32];
    if (point_done(p)) {
        draw_patch(t, y, x, heat_bucket(&v->heat, p->change));
        x += 3;
    }
    x = ui_kv(&t->th, y, x, COLS - 1, NULL, gr->name, UI_VALUE);
    x = ui_kv(&t->th, y, x, COLS - 1, NULL, sw->schemes[s], UI_QUANT);
    if (!p) {
        ui_print(&t->th, y, x, COLS - x - 1, tui_attr(t, UI_DIM),
                 v->job ? "pending: not measured yet" : "pending: not measured (R resumes)");
        snprintf(buf, sizeof buf, "%lld weights, %lld bits in float", (long long)gr->numel,
                 (long long)gr->float_bits);
        ui_print(&t->th, y + 1, 1, COLS - 2, tui_attr(t, UI_DIM), buf);
        return;
    }
    if (!point_done(p)) {
        ui_kv(&t->th, y, x, COLS - 1, NULL, "failed", UI_BAD);
        ui_wrap(&t->th, y + 1, 1, COLS - 2, 2, tui_attr(t, UI_BAD), p->error ? p->error : "");
        return;
    }
    snprintf(label, sizeof label, "%s%s", change_prefix(t, sw->metric), sw->metric);
    snprintf(buf, sizeof buf, "%.6g", p->change);
    x = ui_kv(&t->th, y, x, COLS - 1, label, buf, UI_VALUE);
    /* loo: the bits are of every other group, quantized */
    int64_t numel = strcmp(sw->mode, "loo") == 0 ? v->group_numel - gr->numel : gr->numel;
    snprintf(buf, sizeof buf, "%.4f", numel > 0 ? (double)p->bits / (double)numel : 0.0);
    ui_kv(&t->th, y, x, COLS - 1, "bits/weight", buf, UI_VALUE);
    int n = snprintf(buf, sizeof buf, "%lld bits of %lld weights, %.2f s:  ", (long long)p->bits,
                     (long long)numel, p->seconds);
    if (n > 0 && (size_t)n < sizeof buf)
        metrics_text(p->metrics_json, buf + n, sizeof buf - (size_t)n);
    ui_wrap(&t->th, y + 1, 1, COLS - 2, 2, tui_attr(t, UI_NORMAL), buf);
}

/* The sweep's state on line 1: how far along, or how it ended. */
static void draw_state(struct tui *t, const struct sweep_screen *v, int y)
{
    const struct qstore_sweep *sw = v->sw;
    char buf[256];
    int x = 1;
    if (v->job && !sw) {
        char phase[32];
        int64_t done, total;
        ui_progress_read(&v->job->prog, phase, sizeof phase, &done, &total);
        if (total > 0)
            snprintf(buf, sizeof buf, "starting: %s %lld/%lld", phase, (long long)done,
                     (long long)total);
        else
            snprintf(buf, sizeof buf, "starting: %s", phase[0] ? phase : "loading");
        ui_print(&t->th, y, x, COLS - 2, tui_attr(t, UI_QUANT), buf);
        return;
    }
    int64_t total = (int64_t)sw->n_groups * sw->n_schemes, got = sw->n_done + sw->n_failed;
    const char *st = v->job ? "running" : sw->status ? sw->status : "?";
    x = ui_kv(&t->th, y, x, COLS, NULL, st,
              strcmp(st, "done") == 0 ? UI_GOOD : strcmp(st, "running") == 0 ? UI_QUANT
                                                                               : UI_BAD);
    if (v->job) {
        ui_bar(&t->th, y, x, 16, total > 0 ? (double)got / (double)total : 0);
        x += 18;
    }
    snprintf(buf, sizeof buf, "%lld/%lld", (long long)got, (long long)total);
    x = ui_kv(&t->th, y, x, COLS, "points", buf, UI_VALUE);
    if (sw->n_failed) {
        snprintf(buf, sizeof buf, "%lld failed", (long long)sw->n_failed);
        x = ui_kv(&t->th, y, x, COLS, NULL, buf, UI_BAD);
    }
    snprintf(buf, sizeof buf, "%s, by %s", strcmp(sw->mode, "loo") == 0 ? "leave one out"
                                                                        : "one at a time",
             sw->grouping);
    x = ui_kv(&t->th, y, x, COLS, NULL, buf, UI_NORMAL);
    if (v->job && v->rate_started) {
        int64_t done;
        ui_progress_read(&v->job->prog, NULL, 0, &done, NULL);
        double dt = now_s() - v->rate_t0;
        if (done > v->rate_done0 && dt > 0) {
            double rate = (double)(done - v->rate_done0) / dt;
            snprintf(buf, sizeof buf, "%.1f/s, %.0f s left", rate,
                     (double)(total - done) / rate);
            x = ui_kv(&t->th, y, x, COLS, NULL, buf, UI_NORMAL);
        }
    }
    if (v->job) {
        ui_print(&t->th, y, x, COLS - x - 1, tui_attr(t, UI_DIM), "Esc cancels");
    } else {
        ui_fmt_time(sw->created_at, "%m-%d %H:%M", buf, sizeof buf);
        ui_print(&t->th, y, x, COLS - x - 1, tui_attr(t, UI_DIM), buf);
    }
}

static void sweep_draw(struct tui *t, struct ui_screen *s)
{
    struct sweep_screen *v = (struct sweep_screen *)s;
    attr_t a = tui_attr(t, UI_TITLE);
    ui_fill(0, 0, COLS, a);
    char right[96] = "";
    if (v->sw)
        snprintf(right, sizeof right, "%d group%s x %d scheme%s", v->sw->n_groups,
                 v->sw->n_groups == 1 ? "" : "s", v->sw->n_schemes,
                 v->sw->n_schemes == 1 ? "" : "s");
    int rw = ui_width(right);
    if (v->id)
        ui_printf(&t->th, 0, 1, COLS - rw - 3, a, "qlab  Sweep %lld: %s", (long long)v->id,
                  v->sw && v->sw->model_name ? v->sw->model_name : v->model_name);
    else
        ui_printf(&t->th, 0, 1, COLS - rw - 3, a, "qlab  Sweep: %s", v->model_name);
    if (rw)
        ui_print(&t->th, 0, COLS - rw - 1, rw, a, right);
    if (!v->sw) {
        if (v->job)
            draw_state(t, v, 1);
        else
            ui_print(&t->th, 2, 2, COLS - 4, tui_attr(t, UI_DIM),
                     "No sweep of this model yet: press n to start one.");
        return;
    }
    draw_state(t, v, 1);
    if (v->sw->n_groups == 0 || v->sw->n_schemes == 0) {
        ui_print(&t->th, 3, 2, COLS - 4, tui_attr(t, UI_DIM), "This sweep has no groups.");
        return;
    }
    draw_grid(t, v);
    draw_legend(t, v, LINES - 2 - BOTTOM_LINES);
    draw_detail(t, v, LINES - 1 - BOTTOM_LINES);
}

/* ---- keys ----------------------------------------------------------------------------------- */

static int move_key(struct sweep_screen *v, int ch)
{
    int page = v->page > 1 ? v->page - 1 : 1;
    switch (ch) {
    case KEY_UP:
    case 'k':
        v->row--;
        break;
    case KEY_DOWN:
    case 'j':
        v->row++;
        break;
    case KEY_LEFT:
    case 'h':
        v->col--;
        break;
    case KEY_RIGHT:
    case 'l':
        v->col++;
        break;
    case KEY_PPAGE:
    case UI_KEY_CTRL('b'):
        v->row -= page;
        break;
    case KEY_NPAGE:
    case UI_KEY_CTRL('f'):
        v->row += page;
        break;
    case KEY_HOME:
    case 'g':
        v->row = 0;
        break;
    case KEY_END:
    case 'G':
        v->row = v->sw->n_groups - 1;
        break;
    case '0':
        v->col = 0;
        break;
    case '$':
        v->col = v->sw->n_schemes - 1;
        break;
    default:
        return 0;
    }
    clamp_view(v);
    return 1;
}

static int sweep_key(struct tui *t, struct ui_screen *s, int ch)
{
    struct sweep_screen *v = (struct sweep_screen *)s;
    if (v->sw && v->sw->n_groups > 0 && v->sw->n_schemes > 0 && move_key(v, ch))
        return 0;
    qerr e;
    switch (ch) {
    case 'n':
        new_sweep(t, v);
        return 0;
    case 'R':
        resume_sweep(t, v);
        return 0;
    case 'o':
        if (!v->sw)
            return 0;
        v->sorted = !v->sorted;
        order_rows(v);
        tui_status(t, 0, v->sorted ? "by sensitivity: the change at the cheapest scheme, "
                                     "greatest first"
                                   : "in model order");
        return 0;
    case 'p':
    case '\n':
    case '\r':
    case KEY_ENTER:
        if (v->job)
            tui_status(t, 1, "the sweep is still running: search it when it ends");
        else if (!v->sw)
            tui_status(t, 1, "no sweep to search: press n to start one");
        else
            tui_search(t, v->id);
        return 0;
    case 'r':
        if (v->id && load(v, v->id, &e) < 0)
            tui_status(t, 1, "%s", e.msg);
        return 0;
    case UI_KEY_ESC:
        if (v->job) {
            atomic_store(&v->job->prog.cancel, 1);
            tui_status(t, 0, "cancelling the sweep: the points done stay");
            return 0;
        }
        return UI_CLOSE;
    case 'q':
        if (v->job) {
            tui_status(t, 1, "a sweep is running: Esc cancels it (the points done stay)");
            return 0;
        }
        return UI_CLOSE;
    default:
        return UI_UNHANDLED;
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void sweep_free(struct ui_screen *s)
{
    struct sweep_screen *v = (struct sweep_screen *)s;
    if (!v)
        return;
    if (v->job) {
        job_free(v->job); /* cancels and waits: the workbench is free again */
        v->t->busy = 0;
    }
    drop_sweep(v);
    qstore_close(v->db);
    free(v);
}

static const struct ui_fkey sweep_fkeys[] = {
    {"F1", "Help"}, {"n", "New"}, {"p", "Pareto"}, {"o", "Sort"}, {"R", "Resume"},
    {"Esc", "Cancel"}, {"q", "Back"},
};

static const struct ui_help sweep_help[] = {
    {"Arrows hjkl", "move between groups (rows) and schemes (columns)"},
    {"PgUp PgDn g G", "page up and down, first and last group"},
    {"0 $", "first and last scheme"},
    {"(cells)", "the change from float, coloured by the legend's"},
    {"", "buckets (log-ish); blank: pending"},
    {"o", "sort by sensitivity (change, cheapest scheme)"},
    {"n", "a new sweep: schemes, grouping, metric, mode"},
    {"Esc", "cancel the running sweep (the points done stay)"},
    {"R", "resume this sweep when interrupted or cancelled"},
    {"p Enter", "search: a budget, the Pareto front, the optimum"},
    {"r", "read the sweep again from the database"},
    {"q Esc", "back (when no sweep is running)"},
};

static const struct ui_screen_ops sweep_ops = {
    .name = "Sweep",
    .draw = sweep_draw,
    .key = sweep_key,
    .tick = sweep_tick,
    .free = sweep_free,
    .fkeys = sweep_fkeys,
    .n_fkeys = (int)(sizeof sweep_fkeys / sizeof sweep_fkeys[0]),
    .help = sweep_help,
    .n_help = (int)(sizeof sweep_help / sizeof sweep_help[0]),
};

/* id 0: the newest sweep of the loaded model, if any. */
static struct sweep_screen *screen_sweep_new(struct tui *t, int64_t id)
{
    struct sweep_screen *v = calloc(1, sizeof *v);
    if (!v) {
        tui_status(t, 1, "out of memory");
        return NULL;
    }
    v->base.ops = &sweep_ops;
    v->t = t;
    snprintf(v->model_path, sizeof v->model_path, "%s",
             wb_model_abspath(t->w) ? wb_model_abspath(t->w) : "");
    snprintf(v->model_name, sizeof v->model_name, "%s", wb_model(t->w)->name);
    qerr e = {{0}};
    const char *sha;
    if (wb_model_sha256(t->w, &sha, &e) == 0)
        snprintf(v->model_sha, sizeof v->model_sha, "%s", sha);
    /* its own connection, so the table can be read while a worker writes */
    if (wb_db_path(t->w) && qstore_open(wb_db_path(t->w), &v->db, &e) < 0)
        v->db = NULL; /* then no live table, only the progress */
    if (!id) {
        struct qstore_sweep *list = NULL;
        int n = 0;
        if (wb_sweeps(t->w, 0, 1, &list, &n, &e) < 0) {
            tui_status(t, 1, "%s", e.msg);
            sweep_free(&v->base);
            return NULL;
        }
        id = n > 0 ? list[0].id : 0;
        qstore_sweeps_free(list, n);
    }
    if (id && load(v, id, &e) < 0) {
        tui_status(t, 1, "%s", e.msg);
        sweep_free(&v->base);
        return NULL;
    }
    return v;
}

void tui_open_sweep(struct tui *t, int64_t id, enum ui_sweep_action action)
{
    if (t->busy || t->job) {
        tui_status(t, 1, "a sweep or an evaluation is running");
        return;
    }
    struct sweep_screen *v = screen_sweep_new(t, id);
    if (!v)
        return;
    tui_push(t, &v->base);
    if (t->depth == 0 || t->stack[t->depth - 1] != &v->base)
        return; /* the stack was full: freed */
    if (action == UI_SWEEP_NEW)
        new_sweep(t, v);
    else if (action == UI_SWEEP_RESUME)
        resume_sweep(t, v);
}
