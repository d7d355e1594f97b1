/* store_sweeps.c — sensitivity sweeps: begin, claim, points committed one by one, finish, read back. */
#include "store_internal.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* Runs a prepared statement that returns no rows, then finalizes it. */
static int step_done(sqlite3_stmt *st, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    return rc;
}

/* ---- begin ------------------------------------------------------------------ */
static int insert_sweep(struct qstore *s, const struct qstore_sweep *sw, int64_t *id, qerr *err)
{
    static const char sql[] =
        "INSERT INTO sweeps (model_id, dataset_id, kind, mode, grouping, group_spec, metric, params_json,"
        " fixed_bits, total_numel, status, pid, boot_id, proc_start, created_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'running', ?11, ?12, ?13, " NOW_SQL ")";
    struct qstore_owner me;
    qstore_owner_self(s, &me);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, sw->model_id, &rc);
    qstore_bind_id(st, 2, sw->dataset_id, &rc);
    qstore_bind_text(st, 3, sw->kind, &rc);
    qstore_bind_text(st, 4, sw->mode, &rc);
    qstore_bind_text(st, 5, sw->grouping, &rc);
    qstore_bind_text(st, 6, sw->group_spec, &rc);
    qstore_bind_text(st, 7, sw->metric, &rc);
    qstore_bind_text(st, 8, sw->params_json, &rc);
    qstore_bind_int(st, 9, sw->fixed_bits, &rc);
    qstore_bind_int(st, 10, sw->total_numel, &rc);
    qstore_bind_owner(st, 11, &me, &rc);
    if (step_done(st, rc) != SQLITE_OK) {
        qstore_dberr(s->db, s->path, err, "starting a sweep");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

static int insert_groups(struct qstore *s, int64_t id, const struct qstore_sweep_group *g, int n, qerr *err)
{
    static const char sql[] =
        "INSERT INTO sweep_groups (sweep_id, idx, name, glob, tensors_json, numel, float_bits)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return qstore_dberr(s->db, s->path, err, "sweep %lld: storing its groups", (long long)id);
    for (int i = 0; i < n; i++) {
        int rc = SQLITE_OK;
        sqlite3_reset(st);
        qstore_bind_int(st, 1, id, &rc);
        qstore_bind_int(st, 2, i, &rc);
        qstore_bind_text(st, 3, g[i].name, &rc);
        qstore_bind_text(st, 4, g[i].glob, &rc);
        qstore_bind_text(st, 5, g[i].tensors_json, &rc);
        qstore_bind_int(st, 6, g[i].numel, &rc);
        qstore_bind_int(st, 7, g[i].float_bits, &rc);
        if (step_done(st, rc) != SQLITE_OK) {
            qstore_dberr(s->db, s->path, err, "sweep %lld: group %d ('%s')", (long long)id, i,
                         g[i].name ? g[i].name : "(no name)");
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

static int insert_schemes(struct qstore *s, int64_t id, char *const *rhs, int n, qerr *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO sweep_schemes (sweep_id, idx, rhs) VALUES (?1, ?2, ?3)", -1, &st,
                           NULL) != SQLITE_OK)
        return qstore_dberr(s->db, s->path, err, "sweep %lld: storing its schemes", (long long)id);
    for (int i = 0; i < n; i++) {
        int rc = SQLITE_OK;
        sqlite3_reset(st);
        qstore_bind_int(st, 1, id, &rc);
        qstore_bind_int(st, 2, i, &rc);
        qstore_bind_text(st, 3, rhs[i], &rc);
        if (step_done(st, rc) != SQLITE_OK) {
            qstore_dberr(s->db, s->path, err, "sweep %lld: scheme %d ('%s')", (long long)id, i,
                         rhs[i] ? rhs[i] : "(none)");
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int qstore_sweep_begin(struct qstore *s, const struct qstore_sweep *sw, int64_t *id, qerr *err)
{
    assert(s && sw && id);
    if (sw->n_groups < 0 || (sw->n_groups > 0 && !sw->groups) || sw->n_schemes < 0 ||
        (sw->n_schemes > 0 && !sw->schemes))
        return qerr_set(err, "%s: starting a sweep: %d groups and %d schemes given, a list missing", s->path,
                        sw->n_groups, sw->n_schemes);
    int64_t new_id;
    if (qstore_exec(s->db, s->path, "BEGIN IMMEDIATE", err))
        return -1;
    if (insert_sweep(s, sw, &new_id, err) || insert_groups(s, new_id, sw->groups, sw->n_groups, err) ||
        insert_schemes(s, new_id, sw->schemes, sw->n_schemes, err) ||
        qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        return -1;
    }
    *id = new_id;
    return 0;
}

/* ---- the state a write depends on ------------------------------------------------ */
/* Read inside the write transaction, so nobody changes it before we act. */
struct sweep_state {
    char status[16];                  /* "running", ... (the CHECK keeps it short) */
    int64_t pid;
    int is_self, alive;               /* of the owner */
    int64_t n_groups, n_schemes;
};

static int read_state(struct qstore *s, int64_t id, struct sweep_state *ss, const char *doing, qerr *err)
{
    static const char sql[] =
        "SELECT status, pid, boot_id, proc_start,"
        " (SELECT count(*) FROM sweep_groups WHERE sweep_id = ?1),"
        " (SELECT count(*) FROM sweep_schemes WHERE sweep_id = ?1)"
        " FROM sweeps WHERE id = ?1";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL), ret = 0;
    qstore_bind_int(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ret = qerr_set(err, "no sweep %lld in %s", (long long)id, s->path);
    } else if (rc != SQLITE_ROW) {
        ret = qstore_dberr(s->db, s->path, err, "%s sweep %lld", doing, (long long)id);
    } else {
        const char *status = (const char *)sqlite3_column_text(st, 0);
        struct qstore_owner o;
        snprintf(ss->status, sizeof ss->status, "%s", status ? status : "NULL");
        qstore_owner_read(st, 1, &o);
        ss->pid = o.pid;
        ss->is_self = qstore_owner_is_self(s, &o);
        ss->alive = qstore_owner_alive(s, &o);
        ss->n_groups = sqlite3_column_int64(st, 4);
        ss->n_schemes = sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
    return ret;
}

/* Points and the end state are written only by the process running the sweep. */
static int require_owned(struct qstore *s, int64_t id, const struct sweep_state *ss, qerr *err)
{
    if (strcmp(ss->status, "running") != 0)
        return qerr_set(err, "%s: sweep %lld is not running (status %s)", s->path, (long long)id, ss->status);
    if (!ss->is_self)
        return qerr_set(err, "%s: sweep %lld is running in process %lld, not this one", s->path, (long long)id,
                        (long long)ss->pid);
    return 0;
}

/* ---- claim ------------------------------------------------------------------- */
/* The WHERE repeats the status and pid just read: should another process
 * have taken the sweep in between, nothing changes. */
static int take_over(struct qstore *s, int64_t id, const struct sweep_state *ss, qerr *err)
{
    static const char sql[] =
        "UPDATE sweeps SET status = 'running', pid = ?4, boot_id = ?5, proc_start = ?6,"
        " finished_at = NULL, error = NULL WHERE id = ?1 AND status = ?2 AND pid IS ?3";
    struct qstore_owner me;
    qstore_owner_self(s, &me);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, id, &rc);
    qstore_bind_text(st, 2, ss->status, &rc);
    qstore_bind_int(st, 3, ss->pid, &rc);
    qstore_bind_owner(st, 4, &me, &rc);
    int ret = 0;
    if (step_done(st, rc) != SQLITE_OK)
        ret = qstore_dberr(s->db, s->path, err, "claiming sweep %lld", (long long)id);
    else if (sqlite3_changes(s->db) != 1)
        ret = qerr_set(err, "%s: sweep %lld was claimed by another process meanwhile", s->path, (long long)id);
    sqlite3_finalize(st);
    return ret;
}

int qstore_sweep_claim(struct qstore *s, int64_t id, qerr *err)
{
    assert(s);
    struct sweep_state ss;
    if (qstore_exec(s->db, s->path, "BEGIN IMMEDIATE", err))
        return -1;
    int ret = read_state(s, id, &ss, "claiming", err);
    if (ret == 0 && strcmp(ss.status, "done") == 0)
        ret = qerr_set(err, "%s: sweep %lld is done", s->path, (long long)id);
    /* A running sweep whose process ended is interrupted, whether or not
     * the rule has marked it yet. */
    if (ret == 0 && strcmp(ss.status, "running") == 0 && ss.alive)
        ret = qerr_set(err, "%s: sweep %lld is running in process %lld", s->path, (long long)id,
                       (long long)ss.pid);
    if (ret == 0)
        ret = take_over(s, id, &ss, err);
    if (ret || qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        return -1;
    }
    return 0;
}

/* ---- points ------------------------------------------------------------------ */
static int valid_point_status(const char *status)
{
    return status && (strcmp(status, "done") == 0 || strcmp(status, "failed") == 0);
}

/* "group 2 'blk.2', scheme 1 'int:bits=4'" for messages (names when known). */
static void point_label(struct qstore *s, int64_t id, int64_t g, int64_t c, char *buf, size_t n)
{
    static const char sql[] =
        "SELECT (SELECT name FROM sweep_groups WHERE sweep_id = ?1 AND idx = ?2),"
        " (SELECT rhs FROM sweep_schemes WHERE sweep_id = ?1 AND idx = ?3)";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, id, &rc);
    qstore_bind_int(st, 2, g, &rc);
    qstore_bind_int(st, 3, c, &rc);
    const char *gname = NULL, *rhs = NULL;
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        gname = (const char *)sqlite3_column_text(st, 0);
        rhs = (const char *)sqlite3_column_text(st, 1);
    }
    snprintf(buf, n, "group %lld '%s', scheme %lld '%s'", (long long)g, gname ? gname : "?", (long long)c,
             rhs ? rhs : "?");
    sqlite3_finalize(st);
}

static int insert_point(struct qstore *s, int64_t id, const struct qstore_sweep_point *p, qerr *err)
{
    static const char sql[] =
        "INSERT INTO sweep_points (sweep_id, group_idx, scheme_idx, status, bits, change, metrics_json,"
        " error, seconds, committed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, " NOW_SQL ")";
    int failed = strcmp(p->status, "failed") == 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, id, &rc);
    qstore_bind_int(st, 2, p->group, &rc);
    qstore_bind_int(st, 3, p->scheme, &rc);
    qstore_bind_text(st, 4, p->status, &rc);
    qstore_bind_int(st, 5, p->bits, &rc);
    qstore_bind_real(st, 6, failed ? NAN : p->change, &rc);
    qstore_bind_text(st, 7, p->metrics_json, &rc);
    qstore_bind_text(st, 8, p->error, &rc);
    qstore_bind_real(st, 9, p->seconds, &rc);
    int ret = 0;
    if (step_done(st, rc) != SQLITE_OK) {
        char label[256];
        int dup = sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY;
        char why[256];
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(s->db));
        point_label(s, id, p->group, p->scheme, label, sizeof label);
        if (dup)
            ret = qerr_set(err, "%s: sweep %lld: the point of %s is already stored", s->path, (long long)id,
                           label);
        else
            ret = qerr_set(err, "%s: sweep %lld: storing the point of %s: %s", s->path, (long long)id, label,
                           why);
    }
    sqlite3_finalize(st);
    return ret;
}

int qstore_sweep_point_put(struct qstore *s, int64_t sweep_id, const struct qstore_sweep_point *p, qerr *err)
{
    assert(s && p);
    if (!valid_point_status(p->status))
        return qerr_set(err, "%s: sweep %lld: point status '%s' is not done or failed", s->path,
                        (long long)sweep_id, p->status ? p->status : "(null)");
    struct sweep_state ss;
    if (qstore_exec(s->db, s->path, "BEGIN IMMEDIATE", err))
        return -1;
    int ret = read_state(s, sweep_id, &ss, "storing a point of", err);
    if (ret == 0)
        ret = require_owned(s, sweep_id, &ss, err);
    if (ret == 0 && (p->group < 0 || p->group >= ss.n_groups || p->scheme < 0 || p->scheme >= ss.n_schemes))
        ret = qerr_set(err, "%s: sweep %lld: point (group %lld, scheme %lld) is outside its %lld groups x %lld schemes",
                       s->path, (long long)sweep_id, (long long)p->group, (long long)p->scheme,
                       (long long)ss.n_groups, (long long)ss.n_schemes);
    if (ret == 0)
        ret = insert_point(s, sweep_id, p, err);
    if (ret || qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        return -1;
    }
    return 0;
}

/* ---- finish ------------------------------------------------------------------ */
static int valid_end_status(const char *status)
{
    return status && (strcmp(status, "done") == 0 || strcmp(status, "failed") == 0 ||
                      strcmp(status, "cancelled") == 0);
}

int qstore_sweep_finish(struct qstore *s, int64_t id, const char *status, const char *error, qerr *err)
{
    assert(s);
    if (!valid_end_status(status))
        return qerr_set(err, "%s: sweep %lld: end status '%s' is not done, failed or cancelled", s->path,
                        (long long)id, status ? status : "(null)");
    struct sweep_state ss;
    if (qstore_exec(s->db, s->path, "BEGIN IMMEDIATE", err))
        return -1;
    int ret = read_state(s, id, &ss, "finishing", err);
    if (ret == 0)
        ret = require_owned(s, id, &ss, err);
    if (ret == 0) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db,
                                    "UPDATE sweeps SET status = ?2, error = ?3, finished_at = " NOW_SQL
                                    " WHERE id = ?1 AND status = 'running'",
                                    -1, &st, NULL);
        qstore_bind_int(st, 1, id, &rc);
        qstore_bind_text(st, 2, status, &rc);
        qstore_bind_text(st, 3, error, &rc);
        if (step_done(st, rc) != SQLITE_OK)
            ret = qstore_dberr(s->db, s->path, err, "finishing sweep %lld", (long long)id);
        sqlite3_finalize(st);
    }
    if (ret || qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        return -1;
    }
    return 0;
}

/* ---- freeing ------------------------------------------------------------------ */
static void sweep_clear(struct qstore_sweep *sw)
{
    char *strs[] = {sw->status,   sw->model_path, sw->model_name,  sw->model_sha256, sw->dataset_path,
                    sw->dataset_sha256, sw->kind, sw->mode,        sw->grouping,     sw->group_spec,
                    sw->metric,   sw->params_json, sw->created_at, sw->finished_at,  sw->error};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(strs[i]);
    for (int i = 0; sw->groups && i < sw->n_groups; i++) {
        free(sw->groups[i].name);
        free(sw->groups[i].glob);
        free(sw->groups[i].tensors_json);
    }
    free(sw->groups);
    for (int i = 0; sw->schemes && i < sw->n_schemes; i++)
        free(sw->schemes[i]);
    free(sw->schemes);
}

void qstore_sweep_free(struct qstore_sweep *sw)
{
    if (!sw)
        return;
    sweep_clear(sw);
    free(sw);
}

void qstore_sweeps_free(struct qstore_sweep *sw, int n)
{
    if (!sw)
        return;
    for (int i = 0; i < n; i++)
        sweep_clear(&sw[i]);
    free(sw);
}

void qstore_sweep_points_free(struct qstore_sweep_point *p, int n)
{
    if (!p)
        return;
    for (int i = 0; i < n; i++) {
        free(p[i].status);
        free(p[i].metrics_json);
        free(p[i].error);
    }
    free(p);
}

/* ---- reading sweeps ------------------------------------------------------------ */
/* Left joins: a sweep stays listed even if its model row went missing. */
#define SWEEP_SELECT                                                                                 \
    "SELECT w.id, w.status, w.model_id, m.path, m.name, m.sha256, w.dataset_id, d.path, d.sha256,"  \
    " w.kind, w.mode, w.grouping, w.group_spec, w.metric, w.params_json, w.fixed_bits,"             \
    " w.total_numel, w.created_at, w.finished_at, w.error,"                                        \
    " (SELECT count(*) FROM sweep_points p WHERE p.sweep_id = w.id AND p.status = 'done'),"        \
    " (SELECT count(*) FROM sweep_points p WHERE p.sweep_id = w.id AND p.status = 'failed'),"      \
    " (SELECT count(*) FROM sweep_groups g WHERE g.sweep_id = w.id),"                               \
    " (SELECT count(*) FROM sweep_schemes c WHERE c.sweep_id = w.id)"                               \
    " FROM sweeps w LEFT JOIN models m ON m.id = w.model_id LEFT JOIN datasets d ON d.id = w.dataset_id "

static void read_sweep_row(sqlite3_stmt *st, struct qstore_sweep *sw, int *oom)
{
    sw->id = sqlite3_column_int64(st, 0);
    sw->status = qstore_col_text(st, 1, oom);
    sw->model_id = sqlite3_column_int64(st, 2);
    sw->model_path = qstore_col_text(st, 3, oom);
    sw->model_name = qstore_col_text(st, 4, oom);
    sw->model_sha256 = qstore_col_text(st, 5, oom);
    sw->dataset_id = sqlite3_column_int64(st, 6);
    sw->dataset_path = qstore_col_text(st, 7, oom);
    sw->dataset_sha256 = qstore_col_text(st, 8, oom);
    sw->kind = qstore_col_text(st, 9, oom);
    sw->mode = qstore_col_text(st, 10, oom);
    sw->grouping = qstore_col_text(st, 11, oom);
    sw->group_spec = qstore_col_text(st, 12, oom);
    sw->metric = qstore_col_text(st, 13, oom);
    sw->params_json = qstore_col_text(st, 14, oom);
    sw->fixed_bits = sqlite3_column_int64(st, 15);
    sw->total_numel = sqlite3_column_int64(st, 16);
    sw->created_at = qstore_col_text(st, 17, oom);
    sw->finished_at = qstore_col_text(st, 18, oom);
    sw->error = qstore_col_text(st, 19, oom);
    sw->n_done = sqlite3_column_int64(st, 20);
    sw->n_failed = sqlite3_column_int64(st, 21);
}

static int load_groups(struct qstore *s, struct qstore_sweep *sw, qerr *err)
{
    static const char sql[] =
        "SELECT name, glob, tensors_json, numel, float_bits FROM sweep_groups WHERE sweep_id = ?1 ORDER BY idx";
    sqlite3_stmt *st = NULL;
    int cap = 0, oom = 0, rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, sw->id, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&sw->groups, &cap, sw->n_groups, sizeof *sw->groups)) {
            oom = 1;
            break;
        }
        struct qstore_sweep_group *g = &sw->groups[sw->n_groups++];
        g->name = qstore_col_text(st, 0, &oom);
        g->glob = qstore_col_text(st, 1, &oom);
        g->tensors_json = qstore_col_text(st, 2, &oom);
        g->numel = sqlite3_column_int64(st, 3);
        g->float_bits = sqlite3_column_int64(st, 4);
        rc = SQLITE_OK;
        if (oom)
            break;
    }
    int ret = 0;
    if (oom)
        ret = qerr_set(err, "%s: out of memory reading sweep %lld", s->path, (long long)sw->id);
    else if (rc != SQLITE_DONE)
        ret = qstore_dberr(s->db, s->path, err, "reading the groups of sweep %lld", (long long)sw->id);
    sqlite3_finalize(st);
    return ret;
}

static int load_schemes(struct qstore *s, struct qstore_sweep *sw, qerr *err)
{
    sqlite3_stmt *st = NULL;
    int cap = 0, oom = 0;
    int rc = sqlite3_prepare_v2(s->db, "SELECT rhs FROM sweep_schemes WHERE sweep_id = ?1 ORDER BY idx", -1, &st,
                                NULL);
    qstore_bind_int(st, 1, sw->id, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&sw->schemes, &cap, sw->n_schemes, sizeof *sw->schemes)) {
            oom = 1;
            break;
        }
        sw->schemes[sw->n_schemes++] = qstore_col_text(st, 0, &oom);
        rc = SQLITE_OK;
        if (oom)
            break;
    }
    int ret = 0;
    if (oom)
        ret = qerr_set(err, "%s: out of memory reading sweep %lld", s->path, (long long)sw->id);
    else if (rc != SQLITE_DONE)
        ret = qstore_dberr(s->db, s->path, err, "reading the schemes of sweep %lld", (long long)sw->id);
    sqlite3_finalize(st);
    return ret;
}

static int get_rows(struct qstore *s, int64_t id, struct qstore_sweep *sw, qerr *err)
{
    sqlite3_stmt *st = NULL;
    int oom = 0, ret = 0;
    int rc = sqlite3_prepare_v2(s->db, SWEEP_SELECT "WHERE w.id = ?1", -1, &st, NULL);
    qstore_bind_int(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        ret = qerr_set(err, "no sweep %lld in %s", (long long)id, s->path);
    else if (rc != SQLITE_ROW)
        ret = qstore_dberr(s->db, s->path, err, "reading sweep %lld", (long long)id);
    if (ret == 0) {
        read_sweep_row(st, sw, &oom);
        if (oom)
            ret = qerr_set(err, "%s: out of memory reading sweep %lld", s->path, (long long)id);
    }
    sqlite3_finalize(st);
    if (ret == 0 && (load_groups(s, sw, err) || load_schemes(s, sw, err)))
        ret = -1;
    return ret;
}

int qstore_sweep_get(struct qstore *s, int64_t id, struct qstore_sweep **out, qerr *err)
{
    assert(s && out);
    *out = NULL;
    struct qstore_sweep *sw = calloc(1, sizeof *sw);
    if (!sw)
        return qerr_set(err, "%s: out of memory reading sweep %lld", s->path, (long long)id);
    /* One read transaction: the row, groups, schemes and counts agree. */
    if (qstore_mark_interrupted(s, err) || qstore_exec(s->db, s->path, "BEGIN", err)) {
        free(sw);
        return -1;
    }
    if (get_rows(s, id, sw, err) || qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        qstore_sweep_free(sw);
        return -1;
    }
    *out = sw;
    return 0;
}

static int list_rows(struct qstore *s, const struct qstore_run_filter *f, struct qstore_sweep **out, int *n_out,
                     qerr *err)
{
    static const char sql[] = SWEEP_SELECT
        "WHERE (?1 IS NULL AND ?2 IS NULL) OR m.path = ?1 OR m.sha256 = ?2 ORDER BY w.id DESC LIMIT ?3";
    sqlite3_stmt *st = NULL;
    struct qstore_sweep *sw = NULL;
    int n = 0, cap = 0, oom = 0, ret = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_text(st, 1, f ? f->model_path : NULL, &rc);
    qstore_bind_text(st, 2, f ? f->model_sha256 : NULL, &rc);
    qstore_bind_int(st, 3, f && f->limit > 0 ? f->limit : -1, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&sw, &cap, n, sizeof *sw)) {
            oom = 1;
            break;
        }
        struct qstore_sweep *row = &sw[n++]; /* zeroed by grow, so freeable when half read */
        read_sweep_row(st, row, &oom);
        /* Counts only: a list shows progress (points of groups x schemes)
         * without the groups themselves. */
        row->n_groups = sqlite3_column_int(st, 22);
        row->n_schemes = sqlite3_column_int(st, 23);
        rc = SQLITE_OK;
        if (oom)
            break;
    }
    if (oom)
        ret = qerr_set(err, "%s: out of memory listing sweeps", s->path);
    else if (rc != SQLITE_DONE)
        ret = qstore_dberr(s->db, s->path, err, "listing sweeps");
    sqlite3_finalize(st);
    if (ret) {
        qstore_sweeps_free(sw, n);
        return -1;
    }
    *out = sw;
    *n_out = n;
    return 0;
}

int qstore_sweeps_list(struct qstore *s, const struct qstore_run_filter *f, struct qstore_sweep **out, int *n,
                       qerr *err)
{
    assert(s && out && n);
    *out = NULL;
    *n = 0;
    if (qstore_mark_interrupted(s, err))
        return -1;
    return list_rows(s, f, out, n, err);
}

/* ---- reading points -------------------------------------------------------------- */
static int exists(struct qstore *s, int64_t id, qerr *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM sweeps WHERE id = ?1", -1, &st, NULL);
    qstore_bind_int(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return qerr_set(err, "no sweep %lld in %s", (long long)id, s->path);
    return qstore_dberr(s->db, s->path, err, "reading sweep %lld", (long long)id);
}

static int points_rows(struct qstore *s, int64_t id, struct qstore_sweep_point **out, int *n_out, qerr *err)
{
    static const char sql[] =
        "SELECT group_idx, scheme_idx, status, bits, change, metrics_json, error, seconds FROM sweep_points"
        " WHERE sweep_id = ?1 ORDER BY group_idx, scheme_idx";
    if (exists(s, id, err))
        return -1;
    sqlite3_stmt *st = NULL;
    struct qstore_sweep_point *pts = NULL;
    int n = 0, cap = 0, oom = 0, ret = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, id, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&pts, &cap, n, sizeof *pts)) {
            oom = 1;
            break;
        }
        struct qstore_sweep_point *p = &pts[n++];
        p->group = sqlite3_column_int64(st, 0);
        p->scheme = sqlite3_column_int64(st, 1);
        p->status = qstore_col_text(st, 2, &oom);
        p->bits = sqlite3_column_int64(st, 3);
        p->change = qstore_col_real(st, 4);
        p->metrics_json = qstore_col_text(st, 5, &oom);
        p->error = qstore_col_text(st, 6, &oom);
        p->seconds = qstore_col_real(st, 7);
        rc = SQLITE_OK;
        if (oom)
            break;
    }
    if (oom)
        ret = qerr_set(err, "%s: out of memory reading the points of sweep %lld", s->path, (long long)id);
    else if (rc != SQLITE_DONE)
        ret = qstore_dberr(s->db, s->path, err, "reading the points of sweep %lld", (long long)id);
    sqlite3_finalize(st);
    if (ret) {
        qstore_sweep_points_free(pts, n);
        return -1;
    }
    *out = pts;
    *n_out = n;
    return 0;
}

int qstore_sweep_points(struct qstore *s, int64_t id, struct qstore_sweep_point **out, int *n, qerr *err)
{
    assert(s && out && n);
    *out = NULL;
    *n = 0;
    if (qstore_exec(s->db, s->path, "BEGIN", err))
        return -1;
    if (points_rows(s, id, out, n, err) || qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        qstore_sweep_points_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}
