/* store_refs.c — what runs refer to (models, datasets, plugins) and the cached float reference outputs. */
#include "store_internal.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- upserts ---------------------------------------------------------------- */
/* A value to bind: text (possibly NULL) or an integer. */
struct val {
    const char *text;
    int64_t num;
    int is_num;
};

/* Binds vals[0..] to as many parameters as st has, so one list serves
 * the INSERT (all columns) and the SELECT (the unique key, ?1 and ?2). */
static int bind_vals(sqlite3_stmt *st, const struct val *v, int n)
{
    int np = sqlite3_bind_parameter_count(st), rc = SQLITE_OK;
    for (int i = 0; i < np && i < n && rc == SQLITE_OK; i++)
        rc = v[i].is_num ? sqlite3_bind_int64(st, i + 1, v[i].num)
                         : sqlite3_bind_text(st, i + 1, v[i].text, -1, SQLITE_STATIC);
    return rc;
}

/* Inserts unless the unique key is taken, then reads the row's id. ON
 * CONFLICT DO NOTHING (not OR IGNORE) so a NULL key is still an error. */
static int upsert(struct qstore *s, const char *what, const char *ins, const char *sel, const struct val *v, int n,
                  int64_t *id, qerr *err)
{
    sqlite3_stmt *a = NULL, *b = NULL;
    const char *key = v[0].text ? v[0].text : "(null)";
    int ret = 0;
    if (sqlite3_prepare_v2(s->db, ins, -1, &a, NULL) != SQLITE_OK || bind_vals(a, v, n) != SQLITE_OK ||
        sqlite3_step(a) != SQLITE_DONE || sqlite3_prepare_v2(s->db, sel, -1, &b, NULL) != SQLITE_OK ||
        bind_vals(b, v, n) != SQLITE_OK) {
        ret = qstore_dberr(s->db, s->path, err, "recording %s '%s'", what, key);
    } else {
        int rc = sqlite3_step(b);
        if (rc == SQLITE_ROW)
            *id = sqlite3_column_int64(b, 0);
        else if (rc == SQLITE_DONE) /* deleted by another process in between */
            ret = qerr_set(err, "%s: %s '%s' vanished while being recorded", s->path, what, key);
        else
            ret = qstore_dberr(s->db, s->path, err, "recording %s '%s'", what, key);
    }
    sqlite3_finalize(a);
    sqlite3_finalize(b);
    return ret;
}

int qstore_model_upsert(struct qstore *s, const struct qstore_model *m, int64_t *id, qerr *err)
{
    assert(s && m && id);
    const struct val v[] = {{m->path, 0, 0},     {m->sha256, 0, 0},      {m->format, 0, 0},
                            {m->name, 0, 0},     {NULL, m->n_params, 1}, {NULL, m->float_bytes, 1}};
    return upsert(s, "model",
                  "INSERT INTO models (path, sha256, format, name, n_params, float_bytes)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (path, sha256) DO NOTHING",
                  "SELECT id FROM models WHERE path = ?1 AND sha256 = ?2", v, 6, id, err);
}

int qstore_dataset_upsert(struct qstore *s, const struct qstore_dataset *d, int64_t *id, qerr *err)
{
    assert(s && d && id);
    const struct val v[] = {{d->path, 0, 0}, {d->sha256, 0, 0}, {d->labels_path, 0, 0},
                            {d->kind, 0, 0}, {NULL, d->n_samples, 1}};
    return upsert(s, "dataset",
                  "INSERT INTO datasets (path, sha256, labels_path, kind, n_samples)"
                  " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (path, sha256) DO NOTHING",
                  "SELECT id FROM datasets WHERE path = ?1 AND sha256 = ?2", v, 5, id, err);
}

int qstore_plugin_upsert(struct qstore *s, const struct qstore_plugin *p, int64_t *id, qerr *err)
{
    assert(s && p && id);
    /* The key is (name, version, sha256); ?3 must be the last key part. */
    const struct val v[] = {{p->name, 0, 0}, {p->version, 0, 0}, {p->sha256, 0, 0}, {p->path, 0, 0}};
    return upsert(s, "plugin",
                  "INSERT INTO plugins (name, version, sha256, path)"
                  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name, version, sha256) DO NOTHING",
                  "SELECT id FROM plugins WHERE name = ?1 AND version = ?2 AND sha256 = ?3", v, 4, id, err);
}

/* ---- float references --------------------------------------------------------- */
/* The blob is float32 little-endian; a big-endian host swaps on the way. */
static void to_le(float *x, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        u = __builtin_bswap32(u);
        memcpy(&x[i], &u, 4);
    }
#else
    (void)x;
    (void)n;
#endif
}

/* Bytes of n x k float32, or 0 when the shape is empty or too large for
 * one SQLite blob. */
static size_t logits_bytes(int64_t n, int k)
{
    if (n <= 0 || k <= 0 || n > (INT_MAX / 4) / k)
        return 0;
    return (size_t)n * (size_t)k * 4;
}

int qstore_reference_get(struct qstore *s, const char *model_sha256, const char *dataset_sha256, int64_t n, int k,
                         float **logits, char **metrics_json, qerr *err)
{
    assert(s && logits);
    *logits = NULL;
    if (metrics_json)
        *metrics_json = NULL;
    size_t want = logits_bytes(n, k);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT n, k, logits, metrics_json FROM reference_outputs"
                                " WHERE model_sha256 = ?1 AND dataset_sha256 = ?2",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, model_sha256, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, dataset_sha256, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        qstore_dberr(s->db, s->path, err, "reading the reference outputs of model %s",
                     model_sha256 ? model_sha256 : "(null)");
        sqlite3_finalize(st);
        return -1;
    }
    /* A stored reference of another shape is no reference for this one. */
    int ret = 0;
    if (rc == SQLITE_ROW && want && sqlite3_column_int64(st, 0) == n && sqlite3_column_int64(st, 1) == k) {
        const void *blob = sqlite3_column_blob(st, 2);
        if (blob && (size_t)sqlite3_column_bytes(st, 2) == want) {
            int oom = 0;
            float *copy = malloc(want);
            char *metrics = metrics_json ? qstore_col_text(st, 3, &oom) : NULL;
            if (!copy || oom) {
                free(copy);
                free(metrics);
                ret = qerr_set(err, "%s: out of memory reading reference outputs", s->path);
            } else {
                memcpy(copy, blob, want);
                to_le(copy, want / 4);
                *logits = copy;
                if (metrics_json)
                    *metrics_json = metrics;
            }
        }
    }
    sqlite3_finalize(st);
    return ret;
}

int qstore_reference_put(struct qstore *s, const char *model_sha256, const char *dataset_sha256, int64_t n, int k,
                         const float *logits, const char *metrics_json, qerr *err)
{
    assert(s && logits);
    size_t bytes = logits_bytes(n, k);
    if (!bytes)
        return qerr_set(err, "%s: reference outputs of model %s: shape %lld x %d is empty or too large", s->path,
                        model_sha256 ? model_sha256 : "(null)", (long long)n, k);
    const void *blob = logits;
    float *swapped = NULL;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    if (!(swapped = malloc(bytes)))
        return qerr_set(err, "%s: out of memory storing reference outputs", s->path);
    memcpy(swapped, logits, bytes);
    to_le(swapped, bytes / 4);
    blob = swapped;
#endif
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT OR REPLACE INTO reference_outputs"
                                " (model_sha256, dataset_sha256, n, k, logits, metrics_json, created)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, model_sha256, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, dataset_sha256, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, n);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 4, k);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 5, blob, bytes, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 6, metrics_json, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    int ret = 0;
    if (rc != SQLITE_OK)
        ret = qstore_dberr(s->db, s->path, err, "storing the reference outputs of model %s",
                           model_sha256 ? model_sha256 : "(null)");
    sqlite3_finalize(st);
    free(swapped);
    return ret;
}
