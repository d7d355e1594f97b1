/* store.c — opening the qlab database: pragmas, schema migrations, and marking dead runs and sweeps interrupted. */
#include "store_internal.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- schema ------------------------------------------------------------ */
/* Append-only: MIGRATIONS[v] turns schema version v-1 into v. Never edit a
 * shipped step; add the next one and bump QSTORE_SCHEMA_VERSION.
 * Tables are STRICT so a wrong type is an error, not a silent conversion.
 * Timestamps are ISO 8601 UTC with milliseconds. */
#define NOW "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"

static const char *const MIGRATIONS[] = {
    [0] = NULL,
    [1] =
        "CREATE TABLE models ("
        "  id          INTEGER PRIMARY KEY,"
        "  path        TEXT NOT NULL,"
        "  sha256      TEXT NOT NULL,"      /* hex of the file's bytes */
        "  format      TEXT,"               /* "safetensors", ... */
        "  name        TEXT,"
        "  n_params    INTEGER,"
        "  float_bytes INTEGER,"            /* size of the weights as float32 */
        "  first_seen  TEXT NOT NULL DEFAULT " NOW ","
        "  UNIQUE (path, sha256)"
        ") STRICT;"
        "CREATE INDEX models_by_sha256 ON models (sha256);"

        "CREATE TABLE datasets ("
        "  id          INTEGER PRIMARY KEY,"
        "  path        TEXT NOT NULL,"
        "  labels_path TEXT,"
        "  sha256      TEXT NOT NULL,"
        "  kind        TEXT,"
        "  n_samples   INTEGER,"
        "  first_seen  TEXT NOT NULL DEFAULT " NOW ","
        "  UNIQUE (path, sha256)"
        ") STRICT;"

        "CREATE TABLE plugins ("
        "  id          INTEGER PRIMARY KEY,"
        "  name        TEXT NOT NULL,"
        "  version     TEXT NOT NULL,"
        "  path        TEXT,"               /* where it was first loaded from */
        "  sha256      TEXT NOT NULL,"
        "  first_seen  TEXT NOT NULL DEFAULT " NOW ","
        "  UNIQUE (name, version, sha256)"
        ") STRICT;"

        /* A run without a dataset (dataset_id NULL) measured sizes only. */
        "CREATE TABLE runs ("
        "  id              INTEGER PRIMARY KEY,"
        "  model_id        INTEGER NOT NULL REFERENCES models (id),"
        "  dataset_id      INTEGER REFERENCES datasets (id),"
        "  kind            TEXT NOT NULL,"
        "  recipe_text     TEXT NOT NULL,"
        "  recipe_json     TEXT,"
        "  recipe_hash     TEXT,"
        "  status          TEXT NOT NULL DEFAULT 'running' CHECK (status IN"
        "                  ('running', 'done', 'failed', 'cancelled', 'interrupted')),"
        "  pid             INTEGER,"        /* of the process running it */
        "  boot_id         TEXT,"           /* with proc_start: tells a reused pid */
        "  proc_start      INTEGER,"        /* /proc/PID/stat starttime, clock ticks */
        "  started_at      TEXT NOT NULL DEFAULT " NOW ","
        "  finished_at     TEXT,"           /* NULL while running or interrupted */
        "  elapsed_s       REAL,"
        "  n_samples       INTEGER,"
        "  size_bytes      INTEGER,"
        "  float_bytes     INTEGER,"
        "  bits_per_weight REAL,"
        "  metrics_json    TEXT,"
        "  error           TEXT"
        ") STRICT;"
        "CREATE INDEX runs_by_model ON runs (model_id, id);"
        "CREATE INDEX runs_by_dataset ON runs (dataset_id);"
        "CREATE INDEX runs_by_start ON runs (started_at);"
        "CREATE INDEX runs_running ON runs (id) WHERE status = 'running';"

        "CREATE TABLE run_plugins ("
        "  run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
        "  plugin_id INTEGER NOT NULL REFERENCES plugins (id),"
        "  PRIMARY KEY (run_id, plugin_id)"
        ") STRICT, WITHOUT ROWID;"
        "CREATE INDEX run_plugins_by_plugin ON run_plugins (plugin_id);"

        /* Error columns are NULL when has_error is 0 (and NaN reads as NULL). */
        "CREATE TABLE run_tensors ("
        "  run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
        "  idx             INTEGER NOT NULL CHECK (idx >= 0),"
        "  name            TEXT NOT NULL,"
        "  op              TEXT,"
        "  role            TEXT,"
        "  shape           TEXT,"           /* "[32, 1, 5, 5]" */
        "  numel           INTEGER NOT NULL,"
        "  scheme          TEXT NOT NULL,"
        "  plugin          TEXT,"           /* NULL for float and built-ins */
        "  params_json     TEXT,"
        "  bytes           INTEGER NOT NULL,"
        "  bits_per_weight REAL,"
        "  has_error       INTEGER NOT NULL CHECK (has_error IN (0, 1)),"
        "  mse             REAL,"
        "  sqnr_db         REAL,"           /* may be +Inf (exact tensor) */
        "  max_abs         REAL,"
        "  cosine          REAL,"
        "  PRIMARY KEY (run_id, idx)"
        ") STRICT, WITHOUT ROWID;"

        /* float32 logits, n rows of k, host (little-endian) byte order. */
        "CREATE TABLE reference_outputs ("
        "  model_sha256   TEXT NOT NULL,"
        "  dataset_sha256 TEXT NOT NULL,"
        "  n              INTEGER NOT NULL CHECK (n > 0),"
        "  k              INTEGER NOT NULL CHECK (k > 0),"
        "  logits         BLOB NOT NULL CHECK (length(logits) = n * k * 4),"
        "  metrics_json   TEXT,"
        "  created        TEXT NOT NULL DEFAULT " NOW ","
        "  PRIMARY KEY (model_sha256, dataset_sha256)"
        ") STRICT;",

    /* Sensitivity sweeps and the searches made over them. */
    [2] =
        /* Owner columns (pid, boot_id, proc_start) as in runs: the same
         * interrupted rule applies. */
        "CREATE TABLE sweeps ("
        "  id          INTEGER PRIMARY KEY,"
        "  model_id    INTEGER NOT NULL REFERENCES models (id),"
        "  dataset_id  INTEGER REFERENCES datasets (id),"
        "  kind        TEXT NOT NULL,"      /* "classify", "lm" */
        "  mode        TEXT NOT NULL,"      /* "one", "loo" */
        "  grouping    TEXT NOT NULL,"      /* "tensor", "block", "role", "glob" */
        "  group_spec  TEXT,"               /* the globs for "glob" */
        "  metric      TEXT NOT NULL,"
        "  params_json TEXT,"               /* the rest needed to resume */
        "  fixed_bits  INTEGER NOT NULL,"   /* tensors outside every group, float */
        "  total_numel INTEGER NOT NULL,"
        "  status      TEXT NOT NULL DEFAULT 'running' CHECK (status IN"
        "              ('running', 'done', 'failed', 'cancelled', 'interrupted')),"
        "  pid         INTEGER,"
        "  boot_id     TEXT,"
        "  proc_start  INTEGER,"
        "  created_at  TEXT NOT NULL DEFAULT " NOW ","
        "  finished_at TEXT,"
        "  error       TEXT"
        ") STRICT;"
        "CREATE INDEX sweeps_by_model ON sweeps (model_id, id);"
        "CREATE INDEX sweeps_by_dataset ON sweeps (dataset_id);"
        "CREATE INDEX sweeps_by_created ON sweeps (created_at);"
        "CREATE INDEX sweeps_running ON sweeps (id) WHERE status = 'running';"

        "CREATE TABLE sweep_groups ("
        "  sweep_id     INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,"
        "  idx          INTEGER NOT NULL CHECK (idx >= 0),"
        "  name         TEXT NOT NULL,"
        "  glob         TEXT NOT NULL,"     /* selects exactly its tensors */
        "  tensors_json TEXT NOT NULL,"     /* ["blk.0.attn_q.weight", ...] */
        "  numel        INTEGER NOT NULL,"
        "  float_bits   INTEGER NOT NULL,"
        "  PRIMARY KEY (sweep_id, idx)"
        ") STRICT, WITHOUT ROWID;"

        "CREATE TABLE sweep_schemes ("
        "  sweep_id INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,"
        "  idx      INTEGER NOT NULL CHECK (idx >= 0),"
        "  rhs      TEXT NOT NULL,"         /* "int:bits=4", "q4_K" */
        "  PRIMARY KEY (sweep_id, idx)"
        ") STRICT, WITHOUT ROWID;"

        /* One row per finished evaluation, committed on its own. The
         * composite keys make a point of an unknown group or scheme an
         * error. change is NULL when failed (and for NaN). */
        "CREATE TABLE sweep_points ("
        "  sweep_id     INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,"
        "  group_idx    INTEGER NOT NULL,"
        "  scheme_idx   INTEGER NOT NULL,"
        "  status       TEXT NOT NULL CHECK (status IN ('done', 'failed')),"
        "  bits         INTEGER,"
        "  change       REAL CHECK (status = 'done' OR change IS NULL),"
        "  metrics_json TEXT,"
        "  error        TEXT,"
        "  seconds      REAL,"
        "  committed_at TEXT NOT NULL DEFAULT " NOW ","
        "  PRIMARY KEY (sweep_id, group_idx, scheme_idx),"
        "  FOREIGN KEY (sweep_id, group_idx) REFERENCES sweep_groups (sweep_id, idx) ON DELETE CASCADE,"
        "  FOREIGN KEY (sweep_id, scheme_idx) REFERENCES sweep_schemes (sweep_id, idx) ON DELETE CASCADE"
        ") STRICT, WITHOUT ROWID;"
        "CREATE INDEX sweep_points_by_scheme ON sweep_points (sweep_id, scheme_idx);"

        "CREATE TABLE searches ("
        "  id          INTEGER PRIMARY KEY,"
        "  sweep_id    INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,"
        "  status      TEXT NOT NULL CHECK (status IN ('done', 'failed')),"
        "  budget_text TEXT,"               /* as given: "4.5bpw", "120000B" */
        "  budget_bits INTEGER,"
        "  ties_json   TEXT,"
        "  created_at  TEXT NOT NULL DEFAULT " NOW
        ") STRICT;"
        "CREATE INDEX searches_by_sweep ON searches (sweep_id, id);"
        "CREATE INDEX searches_by_created ON searches (created_at);"

        /* A point of the front; run_id and measured once a run verified it. */
        "CREATE TABLE search_points ("
        "  search_id   INTEGER NOT NULL REFERENCES searches (id) ON DELETE CASCADE,"
        "  idx         INTEGER NOT NULL CHECK (idx >= 0),"
        "  bits        INTEGER NOT NULL,"
        "  predicted   REAL,"
        "  recipe_text TEXT NOT NULL,"
        "  recipe_json TEXT,"
        "  is_optimum  INTEGER NOT NULL CHECK (is_optimum IN (0, 1)),"
        "  run_id      INTEGER REFERENCES runs (id) ON DELETE SET NULL,"
        "  measured    REAL,"
        "  PRIMARY KEY (search_id, idx)"
        ") STRICT, WITHOUT ROWID;"
        "CREATE INDEX search_points_by_run ON search_points (run_id) WHERE run_id IS NOT NULL;",
};

_Static_assert(sizeof MIGRATIONS / sizeof MIGRATIONS[0] == QSTORE_SCHEMA_VERSION + 1,
               "one migration step per schema version");

/* ---- errors and small SQL helpers ---------------------------------------- */
int qstore_dberr(sqlite3 *db, const char *path, qerr *err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return qerr_set(err, "%s: %s: %s", path, what, sqlite3_errmsg(db));
}

int qstore_exec(sqlite3 *db, const char *path, const char *sql, qerr *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        /* Name the statement by its first word or two; the whole SQL is noise. */
        char head[40];
        snprintf(head, sizeof head, "%s", sql);
        return qstore_dberr(db, path, err, "%s", head);
    }
    return 0;
}

void qstore_rollback(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

const char *const *qstore_migrations(void)
{
    return MIGRATIONS;
}

double qstore_col_real(sqlite3_stmt *st, int col)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NAN;
    return sqlite3_column_double(st, col);
}

int qstore_grow(void **arr, int *cap, int n, size_t sz)
{
    if (n < *cap)
        return 0;
    if (*cap > (1 << 28))
        return -1;
    int ncap = *cap ? 2 * *cap : 8;
    void *p = realloc(*arr, (size_t)ncap * sz);
    if (!p)
        return -1;
    memset((char *)p + (size_t)*cap * sz, 0, (size_t)(ncap - *cap) * sz);
    *arr = p;
    *cap = ncap;
    return 0;
}

char *qstore_col_text(sqlite3_stmt *st, int col, int *oom)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    char *copy = t ? malloc((size_t)n + 1) : NULL;
    if (!copy) {
        *oom = 1;
        return NULL;
    }
    memcpy(copy, t, (size_t)n);
    copy[n] = 0;
    return copy;
}

static int read_user_version(sqlite3 *db, const char *path, int *version, qerr *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        qstore_dberr(db, path, err, "reading the schema version");
        sqlite3_finalize(st);
        return -1;
    }
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
}

static int newer_error(const char *path, int version, int latest, qerr *err)
{
    return qerr_set(err, "%s: database schema version %d is newer than this qlab's (%d); upgrade qlab",
                    path, version, latest);
}

/* ---- migrations ---------------------------------------------------------- */
/* One step inside its own write transaction. The version is read again
 * under the lock: another process may have migrated meanwhile. Returns 1
 * when already at `latest`, 0 after a step, -1 on failure (rolled back). */
static int migrate_step(sqlite3 *db, const char *path, const char *const *steps, int latest, qerr *err)
{
    if (qstore_exec(db, path, "BEGIN IMMEDIATE", err))
        return -1;
    int v;
    if (read_user_version(db, path, &v, err))
        goto fail;
    if (v > latest) {
        newer_error(path, v, latest, err);
        goto fail;
    }
    if (v == latest)
        return qstore_exec(db, path, "COMMIT", err) ? -1 : 1;
    if (v < 0 || !steps[v + 1]) {
        qerr_set(err, "%s: no migration from schema version %d", path, v);
        goto fail;
    }
    if (sqlite3_exec(db, steps[v + 1], NULL, NULL, NULL) != SQLITE_OK) {
        qstore_dberr(db, path, err, "migrating the schema to version %d", v + 1);
        goto fail;
    }
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
    if (qstore_exec(db, path, sql, err) || qstore_exec(db, path, "COMMIT", err))
        goto fail;
    return 0;
fail:
    qstore_rollback(db);
    return -1;
}

int qstore_migrate(sqlite3 *db, const char *path, const char *const *steps, int latest, qerr *err)
{
    int v;
    if (read_user_version(db, path, &v, err))
        return -1;
    if (v > latest)
        return newer_error(path, v, latest, err);
    if (v == latest) /* the usual case: no write lock needed */
        return 0;
    for (;;) {
        int rc = migrate_step(db, path, steps, latest, err);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
}

/* ---- processes ----------------------------------------------------------- */
int qstore_parse_stat(const char *text, char *state, int64_t *start)
{
    const char *p = strrchr(text, ')');
    if (!p)
        return -1;
    p++;
    for (int field = 3;; field++) {
        while (*p == ' ')
            p++;
        if (!*p || *p == '\n')
            return -1;
        if (field == 3)
            *state = *p;
        if (field == 22) {
            if (!isdigit((unsigned char)*p))
                return -1;
            errno = 0;
            char *end;
            unsigned long long v = strtoull(p, &end, 10);
            if (errno || v > INT64_MAX || (*end && *end != ' ' && *end != '\n'))
                return -1;
            *start = (int64_t)v;
            return 0;
        }
        while (*p && *p != ' ' && *p != '\n')
            p++;
    }
}

/* Reads a small /proc file whole into buf (NUL-terminated). */
static int read_small_file(const char *file, char *buf, size_t n)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < n) {
        ssize_t got = read(fd, buf + len, n - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = 0;
    return 0;
}

int qstore_proc_stat(pid_t pid, char *state, int64_t *start)
{
    char file[64], buf[4096];
    if (pid == 0)
        snprintf(file, sizeof file, "/proc/self/stat");
    else
        snprintf(file, sizeof file, "/proc/%ld/stat", (long)pid);
    if (read_small_file(file, buf, sizeof buf))
        return -1;
    return qstore_parse_stat(buf, state, start);
}

void qstore_read_boot_id(char *buf, size_t n)
{
    assert(n > 0);
    if (read_small_file("/proc/sys/kernel/random/boot_id", buf, n)) {
        buf[0] = 0;
        return;
    }
    size_t len = strlen(buf);
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        buf[--len] = 0;
}

/* ---- owners and the interrupted rule -------------------------------------- */
void qstore_owner_self(const struct qstore *s, struct qstore_owner *o)
{
    char state;
    o->pid = (int64_t)getpid();
    o->boot_id = s->boot_id;
    o->has_start = qstore_proc_stat(0, &state, &o->start) == 0;
    if (!o->has_start)
        o->start = 0;
}

void qstore_owner_read(sqlite3_stmt *st, int col, struct qstore_owner *o)
{
    o->pid = sqlite3_column_int64(st, col);
    o->boot_id = (const char *)sqlite3_column_text(st, col + 1);
    o->has_start = sqlite3_column_type(st, col + 2) != SQLITE_NULL;
    o->start = sqlite3_column_int64(st, col + 2);
}

int qstore_owner_alive(const struct qstore *s, const struct qstore_owner *o)
{
    if (strcmp(o->boot_id ? o->boot_id : "", s->boot_id) != 0)
        return 0;
    if (o->pid <= 0 || o->pid > INT_MAX)
        return 0;
    char state;
    int64_t start;
    if (qstore_proc_stat((pid_t)o->pid, &state, &start) != 0)
        return kill((pid_t)o->pid, 0) == 0 || errno == EPERM;
    if (state == 'Z' || state == 'X')
        return 0;
    return !o->has_start || start == o->start;
}

int qstore_owner_is_self(const struct qstore *s, const struct qstore_owner *o)
{
    struct qstore_owner me;
    qstore_owner_self(s, &me);
    return o->pid == me.pid && strcmp(o->boot_id ? o->boot_id : "", me.boot_id) == 0 &&
           o->has_start == me.has_start && o->start == me.start;
}

/* The tables whose rows a process owns while `running`. The update asks
 * for status = 'running' again: the row may have finished since the scan. */
#define OWNED_TABLE(table, what)                                                                    \
    {what, "SELECT id, pid, boot_id, proc_start FROM " table " WHERE status = 'running'",           \
     "UPDATE " table " SET status = 'interrupted', error = ?2 WHERE id = ?1 AND status = 'running'"}

static const struct owned_table {
    const char *what;                 /* "run", for messages */
    const char *find_running;         /* id, pid, boot_id, proc_start */
    const char *mark;                 /* ?1 id, ?2 error */
} OWNED_TABLES[] = {
    OWNED_TABLE("runs", "run"),
    OWNED_TABLE("sweeps", "sweep"),
};

struct dead_row {
    int64_t id, pid;
};

/* The running rows whose process has ended, into a malloc'd array. */
static int find_dead(struct qstore *s, const struct owned_table *t, struct dead_row **out, int *n_out, qerr *err)
{
    sqlite3_stmt *st = NULL;
    struct dead_row *dead = NULL;
    int n = 0, cap = 0, rc;
    *out = NULL;
    *n_out = 0;
    if (sqlite3_prepare_v2(s->db, t->find_running, -1, &st, NULL) != SQLITE_OK)
        return qstore_dberr(s->db, s->path, err, "looking for interrupted %ss", t->what);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct qstore_owner o;
        qstore_owner_read(st, 1, &o);
        if (qstore_owner_alive(s, &o))
            continue;
        if (qstore_grow((void **)&dead, &cap, n, sizeof *dead)) {
            free(dead);
            sqlite3_finalize(st);
            return qerr_set(err, "%s: out of memory looking for interrupted %ss", s->path, t->what);
        }
        dead[n++] = (struct dead_row){sqlite3_column_int64(st, 0), o.pid};
    }
    if (rc != SQLITE_DONE) {
        qstore_dberr(s->db, s->path, err, "looking for interrupted %ss", t->what);
        free(dead);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    *out = dead;
    *n_out = n;
    return 0;
}

static int mark_table(struct qstore *s, const struct owned_table *t, qerr *err)
{
    struct dead_row *dead;
    int n;
    if (find_dead(s, t, &dead, &n, err))
        return -1;
    if (n == 0)
        return 0;
    sqlite3_stmt *st = NULL;
    if (qstore_exec(s->db, s->path, "BEGIN IMMEDIATE", err)) {
        free(dead);
        return -1;
    }
    if (sqlite3_prepare_v2(s->db, t->mark, -1, &st, NULL) != SQLITE_OK)
        goto fail;
    for (int i = 0; i < n; i++) {
        char msg[96];
        snprintf(msg, sizeof msg, "process %lld ended without finishing the %s", (long long)dead[i].pid, t->what);
        sqlite3_reset(st);
        if (sqlite3_bind_int64(st, 1, dead[i].id) != SQLITE_OK ||
            sqlite3_bind_text(st, 2, msg, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_DONE)
            goto fail;
    }
    sqlite3_finalize(st);
    free(dead);
    if (qstore_exec(s->db, s->path, "COMMIT", err)) {
        qstore_rollback(s->db);
        return -1;
    }
    return 0;
fail:
    qstore_dberr(s->db, s->path, err, "marking interrupted %ss", t->what);
    sqlite3_finalize(st);
    free(dead);
    qstore_rollback(s->db);
    return -1;
}

int qstore_mark_interrupted(struct qstore *s, qerr *err)
{
    for (size_t i = 0; i < sizeof OWNED_TABLES / sizeof OWNED_TABLES[0]; i++)
        if (mark_table(s, &OWNED_TABLES[i], err))
            return -1;
    return 0;
}

/* ---- open and close ------------------------------------------------------ */
/* The first read of the file: here a stranger's file shows it is no database. */
static int probe_database(sqlite3 *db, const char *path, qerr *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st) == SQLITE_ROW ? SQLITE_OK : sqlite3_errcode(db);
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        return 0;
    if ((rc & 0xff) == SQLITE_NOTADB)
        return qerr_set(err, "%s: not a qlab database (%s)", path, sqlite3_errmsg(db));
    return qstore_dberr(db, path, err, "cannot read the database");
}

static int set_wal(sqlite3 *db, const char *path, qerr *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        qstore_dberr(db, path, err, "switching to WAL journal mode");
        sqlite3_finalize(st);
        return -1;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    int ok = mode && strcmp(mode, "wal") == 0;
    if (!ok)
        qerr_set(err, "%s: cannot switch to WAL journal mode (it stays '%s')", path, mode ? mode : "?");
    sqlite3_finalize(st);
    return ok ? 0 : -1;
}

static int open_db(struct qstore *s, qerr *err)
{
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK)
        return qerr_set(err, "%s: cannot open the database: %s", s->path,
                        s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    sqlite3_busy_timeout(s->db, 5000);
    if (probe_database(s->db, s->path, err))
        return -1;
    /* Refuse a newer schema before changing anything in the file. */
    int v;
    if (read_user_version(s->db, s->path, &v, err))
        return -1;
    if (v > QSTORE_SCHEMA_VERSION)
        return newer_error(s->path, v, QSTORE_SCHEMA_VERSION, err);
    if (set_wal(s->db, s->path, err) ||
        qstore_exec(s->db, s->path, "PRAGMA foreign_keys = ON", err) ||
        qstore_exec(s->db, s->path, "PRAGMA synchronous = NORMAL", err))
        return -1;
    return qstore_migrate(s->db, s->path, MIGRATIONS, QSTORE_SCHEMA_VERSION, err);
}

int qstore_open(const char *path, struct qstore **out, qerr *err)
{
    assert(out);
    *out = NULL;
    if (!path || !*path)
        return qerr_set(err, "qstore_open: no database path given");
    struct qstore *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return qerr_set(err, "%s: out of memory opening the database", path);
    }
    qstore_read_boot_id(s->boot_id, sizeof s->boot_id);
    if (open_db(s, err) || qstore_mark_interrupted(s, err)) {
        qstore_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void qstore_close(struct qstore *s)
{
    if (!s)
        return;
    sqlite3_close(s->db); /* NULL is a no-op */
    free(s->path);
    free(s);
}

const char *qstore_path(const struct qstore *s)
{
    return s->path;
}

int qstore_user_version(struct qstore *s)
{
    int v;
    return read_user_version(s->db, s->path, &v, NULL) ? -1 : v;
}
