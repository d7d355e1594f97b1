/* store_searches.c — searches over a sweep: the front stored whole, verifying runs linked later. */
#include "store_internal.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- put ---------------------------------------------------------------------- */
static int insert_search(struct qstore *s, const struct qstore_search *se, int64_t *id, qerr *err)
{
    static const char sql[] =
        "INSERT INTO searches (sweep_id, status, budget_text, budget_bits, ties_json, created_at)"
        " VALUES (?1, ?2, ?3, ?4, ?5, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, se->sweep_id, &rc);
    qstore_bind_text(st, 2, se->status, &rc);
    qstore_bind_text(st, 3, se->budget_text, &rc);
    qstore_bind_int(st, 4, se->budget_bits, &rc);
    qstore_bind_text(st, 5, se->ties_json, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    if (rc != SQLITE_OK) {
        qstore_dberr(s->db, s->path, err, "storing a search of sweep %lld", (long long)se->sweep_id);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    *id = sqlite3_last_insert_rowid(s->db);
    return 0;
}

static int insert_points(struct qstore *s, int64_t id, const struct qstore_search_point *pts, int n, qerr *err)
{
    static const char sql[] =
        "INSERT INTO search_points (search_id, idx, bits, predicted, recipe_text, recipe_json, is_optimum,"
        " run_id, measured) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return qstore_dberr(s->db, s->path, err, "search %lld: storing its points", (long long)id);
    for (int i = 0; i < n; i++) {
        const struct qstore_search_point *p = &pts[i];
        int rc = SQLITE_OK;
        sqlite3_reset(st);
        qstore_bind_int(st, 1, id, &rc);
        qstore_bind_int(st, 2, p->idx, &rc);
        qstore_bind_int(st, 3, p->bits, &rc);
        qstore_bind_real(st, 4, p->predicted, &rc);
        qstore_bind_text(st, 5, p->recipe_text, &rc);
        qstore_bind_text(st, 6, p->recipe_json, &rc);
        qstore_bind_int(st, 7, p->is_optimum ? 1 : 0, &rc);
        qstore_bind_id(st, 8, p->run_id, &rc);
        qstore_bind_real(st, 9, p->measured, &rc);
        if (rc != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
            qstore_dberr(s->db, s->path, err, "search %lld: point %lld", (long long)id, (long long)p->idx);
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    return 0;
}

int qstore_search_put(struct qstore *s, const struct qstore_search *se, int64_t *id, qerr *err)
{
    assert(s && se && id);
    if (se->n_points < 0 || (se->n_points > 0 && !se->points))
        return qerr_set(err, "%s: storing a search of sweep %lld: %d points given without a list", s->path,
                        (long long)se->sweep_id, se->n_points);
    int64_t new_id;
    if (qstore_exec(s->db, s->path, "BEGIN IMMEDIATE", err))
        return -1;
    if (insert_search(s, se, &new_id, err) || insert_points(s, new_id, se->points, se->n_points, err) ||
        qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        return -1;
    }
    *id = new_id;
    return 0;
}

/* ---- verify ------------------------------------------------------------------- */
/* Why an update touched no row: no such search, or no such point. */
static int no_point(struct qstore *s, int64_t search_id, int64_t idx, qerr *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM searches WHERE id = ?1", -1, &st, NULL);
    qstore_bind_int(st, 1, search_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return qerr_set(err, "no search %lld in %s", (long long)search_id, s->path);
    if (rc != SQLITE_ROW)
        return qstore_dberr(s->db, s->path, err, "reading search %lld", (long long)search_id);
    return qerr_set(err, "%s: search %lld has no point %lld", s->path, (long long)search_id, (long long)idx);
}

int qstore_search_verify(struct qstore *s, int64_t search_id, int64_t idx, int64_t run_id, double measured,
                         qerr *err)
{
    assert(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "UPDATE search_points SET run_id = ?3, measured = ?4"
                                " WHERE search_id = ?1 AND idx = ?2",
                                -1, &st, NULL);
    qstore_bind_int(st, 1, search_id, &rc);
    qstore_bind_int(st, 2, idx, &rc);
    qstore_bind_id(st, 3, run_id, &rc);
    qstore_bind_real(st, 4, measured, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    int ret = 0;
    if (rc != SQLITE_OK)
        ret = qstore_dberr(s->db, s->path, err, "search %lld: linking point %lld to run %lld", (long long)search_id,
                           (long long)idx, (long long)run_id);
    else if (sqlite3_changes(s->db) == 0)
        ret = no_point(s, search_id, idx, err);
    sqlite3_finalize(st);
    return ret;
}

/* ---- freeing -------------------------------------------------------------------- */
static void search_clear(struct qstore_search *se)
{
    free(se->status);
    free(se->budget_text);
    free(se->ties_json);
    free(se->created_at);
    for (int i = 0; se->points && i < se->n_points; i++) {
        free(se->points[i].recipe_text);
        free(se->points[i].recipe_json);
    }
    free(se->points);
}

void qstore_search_free(struct qstore_search *se)
{
    if (!se)
        return;
    search_clear(se);
    free(se);
}

void qstore_searches_free(struct qstore_search *se, int n)
{
    if (!se)
        return;
    for (int i = 0; i < n; i++)
        search_clear(&se[i]);
    free(se);
}

/* ---- reading --------------------------------------------------------------------- */
#define SEARCH_SELECT "SELECT se.id, se.sweep_id, se.status, se.budget_text, se.budget_bits, se.ties_json," \
                      " se.created_at FROM searches se "

static void read_search_row(sqlite3_stmt *st, struct qstore_search *se, int *oom)
{
    se->id = sqlite3_column_int64(st, 0);
    se->sweep_id = sqlite3_column_int64(st, 1);
    se->status = qstore_col_text(st, 2, oom);
    se->budget_text = qstore_col_text(st, 3, oom);
    se->budget_bits = sqlite3_column_int64(st, 4);
    se->ties_json = qstore_col_text(st, 5, oom);
    se->created_at = qstore_col_text(st, 6, oom);
}

static int load_points(struct qstore *s, struct qstore_search *se, qerr *err)
{
    static const char sql[] =
        "SELECT idx, bits, predicted, recipe_text, recipe_json, is_optimum, run_id, measured"
        " FROM search_points WHERE search_id = ?1 ORDER BY idx";
    sqlite3_stmt *st = NULL;
    int cap = 0, oom = 0, rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, se->id, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&se->points, &cap, se->n_points, sizeof *se->points)) {
            oom = 1;
            break;
        }
        struct qstore_search_point *p = &se->points[se->n_points++];
        p->idx = sqlite3_column_int64(st, 0);
        p->bits = sqlite3_column_int64(st, 1);
        p->predicted = qstore_col_real(st, 2);
        p->recipe_text = qstore_col_text(st, 3, &oom);
        p->recipe_json = qstore_col_text(st, 4, &oom);
        p->is_optimum = sqlite3_column_int(st, 5) != 0;
        p->run_id = sqlite3_column_int64(st, 6); /* NULL reads 0: not verified */
        p->measured = qstore_col_real(st, 7);
        rc = SQLITE_OK;
        if (oom)
            break;
    }
    int ret = 0;
    if (oom)
        ret = qerr_set(err, "%s: out of memory reading search %lld", s->path, (long long)se->id);
    else if (rc != SQLITE_DONE)
        ret = qstore_dberr(s->db, s->path, err, "reading the points of search %lld", (long long)se->id);
    sqlite3_finalize(st);
    return ret;
}

static int get_rows(struct qstore *s, int64_t id, struct qstore_search *se, qerr *err)
{
    sqlite3_stmt *st = NULL;
    int oom = 0, ret = 0;
    int rc = sqlite3_prepare_v2(s->db, SEARCH_SELECT "WHERE se.id = ?1", -1, &st, NULL);
    qstore_bind_int(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        ret = qerr_set(err, "no search %lld in %s", (long long)id, s->path);
    else if (rc != SQLITE_ROW)
        ret = qstore_dberr(s->db, s->path, err, "reading search %lld", (long long)id);
    if (ret == 0) {
        read_search_row(st, se, &oom);
        if (oom)
            ret = qerr_set(err, "%s: out of memory reading search %lld", s->path, (long long)id);
    }
    sqlite3_finalize(st);
    if (ret == 0 && load_points(s, se, err))
        ret = -1;
    return ret;
}

int qstore_search_get(struct qstore *s, int64_t id, struct qstore_search **out, qerr *err)
{
    assert(s && out);
    *out = NULL;
    struct qstore_search *se = calloc(1, sizeof *se);
    if (!se)
        return qerr_set(err, "%s: out of memory reading search %lld", s->path, (long long)id);
    if (qstore_exec(s->db, s->path, "BEGIN", err)) {
        free(se);
        return -1;
    }
    if (get_rows(s, id, se, err) || qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        qstore_search_free(se);
        return -1;
    }
    *out = se;
    return 0;
}

int qstore_searches_list(struct qstore *s, int64_t sweep_id, const struct qstore_run_filter *f,
                         struct qstore_search **out, int *n_out, qerr *err)
{
    /* The model is the sweep's: a search has none of its own. */
    static const char sql[] = SEARCH_SELECT
        "LEFT JOIN sweeps w ON w.id = se.sweep_id LEFT JOIN models m ON m.id = w.model_id"
        " WHERE (?1 <= 0 OR se.sweep_id = ?1)"
        " AND ((?2 IS NULL AND ?3 IS NULL) OR m.path = ?2 OR m.sha256 = ?3)"
        " ORDER BY se.id DESC LIMIT ?4";
    assert(s && out && n_out);
    *out = NULL;
    *n_out = 0;
    sqlite3_stmt *st = NULL;
    struct qstore_search *se = NULL;
    int n = 0, cap = 0, oom = 0, ret = 0;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    qstore_bind_int(st, 1, sweep_id, &rc);
    qstore_bind_text(st, 2, f ? f->model_path : NULL, &rc);
    qstore_bind_text(st, 3, f ? f->model_sha256 : NULL, &rc);
    qstore_bind_int(st, 4, f && f->limit > 0 ? f->limit : -1, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (qstore_grow((void **)&se, &cap, n, sizeof *se)) {
            oom = 1;
            break;
        }
        read_search_row(st, &se[n++], &oom); /* zeroed by grow, so freeable when half read */
        rc = SQLITE_OK;
        if (oom)
            break;
    }
    if (oom)
        ret = qerr_set(err, "%s: out of memory listing searches", s->path);
    else if (rc != SQLITE_DONE)
        ret = qstore_dberr(s->db, s->path, err, "listing searches");
    sqlite3_finalize(st);
    if (ret) {
        qstore_searches_free(se, n);
        return -1;
    }
    *out = se;
    *n_out = n;
    return 0;
}
