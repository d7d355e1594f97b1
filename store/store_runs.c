/* store_runs.c — runs in the database: begin, finish with tensor rows, list and read back. */
#include "store_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- begin ------------------------------------------------------------------ */
static int insert_run(struct qstore *s, const struct qstore_run_start *r, int64_t *run_id, qerr *err)
{
    static const char sql[] =
        "INSERT INTO runs (model_id, dataset_id, kind, recipe_text, recipe_json, recipe_hash,"
        " status, pid, boot_id, proc_start, started_at, n_samples)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8, ?9,"
        " strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?10)";
    sqlite3_stmt *st = NULL;
    struct qstore_owner me;
    qstore_owner_self(s, &me);
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, r->model_id, &rc);
    qstore_bind_id(st, 2, r->dataset_id, &rc);
    qstore_bind_text(st, 3, r->kind, &rc);
    qstore_bind_text(st, 4, r->recipe_text, &rc);
    qstore_bind_text(st, 5, r->recipe_json, &rc);
    qstore_bind_text(st, 6, r->recipe_hash, &rc);
    qstore_bind_owner(st, 7, &me, &rc);
    qstore_bind_int(st, 10, r->n_samples, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        qstore_dberr(s->db, s->path, err, "starting a run");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    *run_id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

static int insert_run_plugins(struct qstore *s, int64_t run_id, const int64_t *ids, int n, qerr *err)
{
    if (n == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    /* OR IGNORE: a recipe may name one plugin for several tensors. */
    int rc = sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO run_plugins (run_id, plugin_id) VALUES (?1, ?2)",
                                -1, &st, NULL);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_reset(st);
        qstore_bind_int(st, 1, run_id, &rc);
        qstore_bind_int(st, 2, ids[i], &rc);
        if (rc == SQLITE_OK && sqlite3_step(st) != SQLITE_DONE)
            rc = SQLITE_ERROR;
    }
    if (rc != SQLITE_OK) {
        qstore_dberr(s->db, s->path, err, "run %lld: recording its plugins", (long long)run_id);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int qstore_run_begin(struct qstore *s, const struct qstore_run_start *r, int64_t *run_id, qerr *err)
{
    assert(s && r && run_id);
    if (r->n_plugins < 0 || (r->n_plugins > 0 && !r->plugin_ids))
        return qerr_set(err, "%s: starting a run: %d plugin ids given without a list", s->path, r->n_plugins);
    int64_t id;
    if (qstore_exec(s->db, s->path, "BEGIN IMMEDIATE", err))
        return -1;
    if (insert_run(s, r, &id, err) || insert_run_plugins(s, id, r->plugin_ids, r->n_plugins, err) ||
        qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        return -1;
    }
    *run_id = id;
    return 0;
}

/* ---- finish ---------------------------------------------------------------- */
static int valid_end_status(const char *status)
{
    return status && (strcmp(status, "done") == 0 || strcmp(status, "failed") == 0 ||
                      strcmp(status, "cancelled") == 0);
}

/* Inside the transaction: the run must exist and still be running. */
static int check_running(struct qstore *s, int64_t run_id, qerr *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT status FROM runs WHERE id = ?1", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(st, 1, run_id) != SQLITE_OK) {
        qstore_dberr(s->db, s->path, err, "finishing run %lld", (long long)run_id);
        sqlite3_finalize(st);
        return -1;
    }
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_DONE) {
        ret = qerr_set(err, "no run %lld in %s", (long long)run_id, s->path);
    } else if (rc != SQLITE_ROW) {
        ret = qstore_dberr(s->db, s->path, err, "finishing run %lld", (long long)run_id);
    } else {
        const char *status = (const char *)sqlite3_column_text(st, 0);
        if (!status || strcmp(status, "running") != 0)
            ret = qerr_set(err, "%s: run %lld is not running (status %s)", s->path, (long long)run_id,
                           status ? status : "NULL");
    }
    sqlite3_finalize(st);
    return ret;
}

static int update_run_end(struct qstore *s, int64_t run_id, const struct qstore_run_end *e, qerr *err)
{
    static const char sql[] =
        "UPDATE runs SET status = ?2, error = ?3, finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
        " elapsed_s = ?4, size_bytes = ?5, float_bytes = ?6, bits_per_weight = ?7, metrics_json = ?8"
        " WHERE id = ?1 AND status = 'running'";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, run_id, &rc);
    qstore_bind_text(st, 2, e->status, &rc);
    qstore_bind_text(st, 3, e->error, &rc);
    qstore_bind_real(st, 4, e->elapsed_s, &rc);
    qstore_bind_int(st, 5, e->size_bytes, &rc);
    qstore_bind_int(st, 6, e->float_bytes, &rc);
    qstore_bind_real(st, 7, e->bits_per_weight, &rc);
    qstore_bind_text(st, 8, e->metrics_json, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        qstore_dberr(s->db, s->path, err, "finishing run %lld", (long long)run_id);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

static void bind_tensor(sqlite3_stmt *st, int64_t run_id, int idx, const struct qstore_tensor *t, int *rc)
{
    qstore_bind_int(st, 1, run_id, rc);
    qstore_bind_int(st, 2, idx, rc);
    qstore_bind_text(st, 3, t->name, rc);
    qstore_bind_text(st, 4, t->op, rc);
    qstore_bind_text(st, 5, t->role, rc);
    qstore_bind_text(st, 6, t->shape, rc);
    qstore_bind_int(st, 7, t->numel, rc);
    qstore_bind_text(st, 8, t->scheme, rc);
    qstore_bind_text(st, 9, t->plugin, rc);
    qstore_bind_text(st, 10, t->params_json, rc);
    qstore_bind_int(st, 11, t->bytes, rc);
    qstore_bind_real(st, 12, t->bits_per_weight, rc);
    qstore_bind_int(st, 13, t->has_error ? 1 : 0, rc);
    const double m[4] = {t->mse, t->sqnr_db, t->max_abs, t->cosine};
    for (int j = 0; j < 4; j++) {
        if (t->has_error)
            qstore_bind_real(st, 14 + j, m[j], rc);
        else
            qstore_bind_null(st, 14 + j, rc);
    }
}

static int insert_tensors(struct qstore *s, int64_t run_id, const struct qstore_tensor *ts, int n, qerr *err)
{
    static const char sql[] =
        "INSERT INTO run_tensors (run_id, idx, name, op, role, shape, numel, scheme, plugin,"
        " params_json, bytes, bits_per_weight, has_error, mse, sqnr_db, max_abs, cosine)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
    if (n == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return qstore_dberr(s->db, s->path, err, "run %lld: storing tensors", (long long)run_id);
    for (int i = 0; i < n; i++) {
        int rc = SQLITE_OK;
        sqlite3_reset(st);
        bind_tensor(st, run_id, i, &ts[i], &rc);
        if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
            qstore_dberr(s->db, s->path, err, "run %lld: tensor %d ('%s')", (long long)run_id, i,
                         ts[i].name ? ts[i].name : "(no name)");
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int qstore_run_finish(struct qstore *s, int64_t run_id, const struct qstore_run_end *e, qerr *err)
{
    assert(s && e);
    if (!valid_end_status(e->status))
        return qerr_set(err, "%s: run %lld: end status '%s' is not done, failed or cancelled", s->path,
                        (long long)run_id, e->status ? e->status : "(null)");
    if (e->n_tensors < 0 || (e->n_tensors > 0 && !e->tensors))
        return qerr_set(err, "%s: run %lld: %d tensors given without a list", s->path, (long long)run_id,
                        e->n_tensors);
    if (qstore_exec(s->db, s->path, "BEGIN IMMEDIATE", err))
        return -1;
    if (check_running(s, run_id, err) || update_run_end(s, run_id, e, err) ||
        insert_tensors(s, run_id, e->tensors, e->n_tensors, err) ||
        qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        return -1;
    }
    return 0;
}

/* ---- reading runs ----------------------------------------------------------- */
/* Left joins: a run stays listed even if its model row went missing. */
#define RUN_SELECT                                                                                   \
    "SELECT r.id, r.status, r.kind, r.model_id, m.path, m.name, m.sha256, m.format,"                 \
    " r.dataset_id, d.path, d.labels_path, d.sha256, r.recipe_text, r.recipe_json, r.recipe_hash,"  \
    " r.started_at, r.finished_at, r.elapsed_s, r.n_samples, r.size_bytes, r.float_bytes,"          \
    " r.bits_per_weight, r.metrics_json, r.error"                                                   \
    " FROM runs r LEFT JOIN models m ON m.id = r.model_id LEFT JOIN datasets d ON d.id = r.dataset_id "

/* Fills r from a RUN_SELECT row; *oom set when a copy failed. */
static void read_run_row(sqlite3_stmt *st, struct qstore_run *r, int *oom)
{
    r->id = sqlite3_column_int64(st, 0);
    r->status = qstore_col_text(st, 1, oom);
    r->kind = qstore_col_text(st, 2, oom);
    r->model_id = sqlite3_column_int64(st, 3);
    r->model_path = qstore_col_text(st, 4, oom);
    r->model_name = qstore_col_text(st, 5, oom);
    r->model_sha256 = qstore_col_text(st, 6, oom);
    r->model_format = qstore_col_text(st, 7, oom);
    r->dataset_id = sqlite3_column_int64(st, 8);
    r->dataset_path = qstore_col_text(st, 9, oom);
    r->dataset_labels_path = qstore_col_text(st, 10, oom);
    r->dataset_sha256 = qstore_col_text(st, 11, oom);
    r->recipe_text = qstore_col_text(st, 12, oom);
    r->recipe_json = qstore_col_text(st, 13, oom);
    r->recipe_hash = qstore_col_text(st, 14, oom);
    r->started_at = qstore_col_text(st, 15, oom);
    r->finished_at = qstore_col_text(st, 16, oom);
    r->elapsed_s = sqlite3_column_double(st, 17);
    r->n_samples = sqlite3_column_int64(st, 18);
    r->size_bytes = sqlite3_column_int64(st, 19);
    r->float_bytes = sqlite3_column_int64(st, 20);
    r->bits_per_weight = sqlite3_column_double(st, 21);
    r->metrics_json = qstore_col_text(st, 22, oom);
    r->error = qstore_col_text(st, 23, oom);
}

/* Error columns hold NULL for "no error measured" and for NaN. */
static double metric_col(sqlite3_stmt *st, int col, int has_error)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return has_error ? NAN : 0.0;
    return sqlite3_column_double(st, col);
}

static int load_tensors(struct qstore *s, struct qstore_run *r, qerr *err)
{
    static const char sql[] =
        "SELECT name, op, role, shape, numel, scheme, plugin, params_json, bytes, bits_per_weight,"
        " has_error, mse, sqnr_db, max_abs, cosine FROM run_tensors WHERE run_id = ?1 ORDER BY idx";
    sqlite3_stmt *st = NULL;
    int cap = 0, oom = 0, rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, r->id, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&r->tensors, &cap, r->n_tensors, sizeof *r->tensors)) {
            oom = 1;
            break;
        }
        struct qstore_tensor *t = &r->tensors[r->n_tensors++];
        t->name = qstore_col_text(st, 0, &oom);
        t->op = qstore_col_text(st, 1, &oom);
        t->role = qstore_col_text(st, 2, &oom);
        t->shape = qstore_col_text(st, 3, &oom);
        t->numel = sqlite3_column_int64(st, 4);
        t->scheme = qstore_col_text(st, 5, &oom);
        t->plugin = qstore_col_text(st, 6, &oom);
        t->params_json = qstore_col_text(st, 7, &oom);
        t->bytes = sqlite3_column_int64(st, 8);
        t->bits_per_weight = sqlite3_column_double(st, 9);
        t->has_error = sqlite3_column_int(st, 10) != 0;
        t->mse = metric_col(st, 11, t->has_error);
        t->sqnr_db = metric_col(st, 12, t->has_error);
        t->max_abs = metric_col(st, 13, t->has_error);
        t->cosine = metric_col(st, 14, t->has_error);
        rc = SQLITE_OK;
        if (oom)
            break;
    }
    int ret = 0;
    if (oom)
        ret = qerr_set(err, "%s: out of memory reading run %lld", s->path, (long long)r->id);
    else if (rc != SQLITE_DONE)
        ret = qstore_dberr(s->db, s->path, err, "reading the tensors of run %lld", (long long)r->id);
    sqlite3_finalize(st);
    return ret;
}

/* st is prepared once per listing and reset for each run. */
static int load_plugins(struct qstore *s, sqlite3_stmt *st, struct qstore_run *r, qerr *err)
{
    int cap = 0, oom = 0, rc = SQLITE_OK;
    sqlite3_reset(st);
    qstore_bind_int(st, 1, r->id, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&r->plugins, &cap, r->n_plugins, sizeof *r->plugins)) {
            oom = 1;
            break;
        }
        struct qstore_run_plugin *p = &r->plugins[r->n_plugins++];
        p->name = qstore_col_text(st, 0, &oom);
        p->version = qstore_col_text(st, 1, &oom);
        p->path = qstore_col_text(st, 2, &oom);
        p->sha256 = qstore_col_text(st, 3, &oom);
        rc = SQLITE_OK;
        if (oom)
            break;
    }
    if (oom)
        return qerr_set(err, "%s: out of memory reading run %lld", s->path, (long long)r->id);
    if (rc != SQLITE_DONE)
        return qstore_dberr(s->db, s->path, err, "reading the plugins of run %lld", (long long)r->id);
    return 0;
}

static int prepare_plugins(struct qstore *s, sqlite3_stmt **st, qerr *err)
{
    static const char sql[] =
        "SELECT p.name, p.version, p.path, p.sha256 FROM run_plugins rp"
        " JOIN plugins p ON p.id = rp.plugin_id WHERE rp.run_id = ?1 ORDER BY p.name, p.version, p.id";
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return qstore_dberr(s->db, s->path, err, "reading run plugins");
    return 0;
}

/* ---- freeing ---------------------------------------------------------------- */
static void tensor_clear(struct qstore_tensor *t)
{
    free(t->name);
    free(t->op);
    free(t->role);
    free(t->shape);
    free(t->scheme);
    free(t->plugin);
    free(t->params_json);
}

static void run_clear(struct qstore_run *r)
{
    char *strs[] = {r->status, r->kind, r->model_path, r->model_name, r->model_sha256, r->model_format,
                    r->dataset_path, r->dataset_labels_path, r->dataset_sha256, r->recipe_text,
                    r->recipe_json, r->recipe_hash, r->started_at, r->finished_at, r->metrics_json,
                    r->error};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(strs[i]);
    for (int i = 0; r->tensors && i < r->n_tensors; i++)
        tensor_clear(&r->tensors[i]);
    free(r->tensors);
    for (int i = 0; r->plugins && i < r->n_plugins; i++) {
        free(r->plugins[i].name);
        free(r->plugins[i].version);
        free(r->plugins[i].path);
        free(r->plugins[i].sha256);
    }
    free(r->plugins);
}

void qstore_run_free(struct qstore_run *r)
{
    if (!r)
        return;
    run_clear(r);
    free(r);
}

void qstore_runs_free(struct qstore_run *runs, int n)
{
    if (!runs)
        return;
    for (int i = 0; i < n; i++)
        run_clear(&runs[i]);
    free(runs);
}

/* ---- list and get ------------------------------------------------------------ */
/* Reads every listed run (and its plugins) while the caller holds a read
 * transaction, so rows and plugins come from one snapshot. */
static int list_rows(struct qstore *s, const struct qstore_run_filter *f, struct qstore_run **out, int *n_out,
                     qerr *err)
{
    static const char sql[] = RUN_SELECT
        "WHERE (?1 IS NULL AND ?2 IS NULL) OR m.path = ?1 OR m.sha256 = ?2 ORDER BY r.id DESC LIMIT ?3";
    sqlite3_stmt *st = NULL, *pst = NULL;
    struct qstore_run *runs = NULL;
    int n = 0, cap = 0, oom = 0, ret = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_text(st, 1, f ? f->model_path : NULL, &rc);
    qstore_bind_text(st, 2, f ? f->model_sha256 : NULL, &rc);
    qstore_bind_int(st, 3, f && f->limit > 0 ? f->limit : -1, &rc);
    if (rc != SQLITE_OK || prepare_plugins(s, &pst, err)) {
        if (rc != SQLITE_OK)
            qstore_dberr(s->db, s->path, err, "listing runs");
        ret = -1;
        goto done;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&runs, &cap, n, sizeof *runs)) {
            oom = 1;
            break;
        }
        struct qstore_run *r = &runs[n++]; /* zeroed by grow, so freeable when half read */
        read_run_row(st, r, &oom);
        if (oom || load_plugins(s, pst, r, err))
            break;
    }
    if (oom)
        ret = qerr_set(err, "%s: out of memory listing runs", s->path);
    else if (rc == SQLITE_ROW) /* load_plugins failed and said why */
        ret = -1;
    else if (rc != SQLITE_DONE)
        ret = qstore_dberr(s->db, s->path, err, "listing runs");
done:
    sqlite3_finalize(st);
    sqlite3_finalize(pst);
    if (ret) {
        qstore_runs_free(runs, n);
        return -1;
    }
    *out = runs;
    *n_out = n;
    return 0;
}

int qstore_runs_list(struct qstore *s, const struct qstore_run_filter *f, struct qstore_run **runs, int *n,
                     qerr *err)
{
    assert(s && runs && n);
    *runs = NULL;
    *n = 0;
    if (qstore_mark_interrupted(s, err) || qstore_exec(s->db, s->path, "BEGIN", err))
        return -1;
    if (list_rows(s, f, runs, n, err)) {
        qstore_rollback(s->db);
        return -1;
    }
    if (qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        qstore_runs_free(*runs, *n);
        *runs = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

static int get_rows(struct qstore *s, int64_t id, struct qstore_run *r, qerr *err)
{
    sqlite3_stmt *st = NULL, *pst = NULL;
    int oom = 0, ret = 0;
    int rc = sqlite3_prepare_v2(s->db, RUN_SELECT "WHERE r.id = ?1", -1, &st, NULL);
    qstore_bind_int(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        ret = qerr_set(err, "no run %lld in %s", (long long)id, s->path);
    else if (rc != SQLITE_ROW)
        ret = qstore_dberr(s->db, s->path, err, "reading run %lld", (long long)id);
    if (ret == 0) {
        read_run_row(st, r, &oom);
        if (oom)
            ret = qerr_set(err, "%s: out of memory reading run %lld", s->path, (long long)id);
    }
    if (ret == 0 && (load_tensors(s, r, err) || prepare_plugins(s, &pst, err) || load_plugins(s, pst, r, err)))
        ret = -1;
    sqlite3_finalize(st);
    sqlite3_finalize(pst);
    return ret;
}

int qstore_run_get(struct qstore *s, int64_t id, struct qstore_run **run, qerr *err)
{
    assert(s && run);
    *run = NULL;
    struct qstore_run *r = calloc(1, sizeof *r);
    if (!r)
        return qerr_set(err, "%s: out of memory reading run %lld", s->path, (long long)id);
    if (qstore_mark_interrupted(s, err) || qstore_exec(s->db, s->path, "BEGIN", err)) {
        free(r);
        return -1;
    }
    if (get_rows(s, id, r, err) || qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        qstore_run_free(r);
        return -1;
    }
    *run = r;
    return 0;
}
