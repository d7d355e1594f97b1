/* store_internal.h — what the store's own files (and its tests) share: the handle, errors, owners, binding. */
#ifndef QLAB_STORE_INTERNAL_H
#define QLAB_STORE_INTERNAL_H

#include <math.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

/* ---- the handle ----------------------------------------------------- */
struct qstore {
    sqlite3 *db;
    char *path;                       /* as given to qstore_open, for messages */
    char boot_id[64];                 /* this boot's id, "" when unreadable */
};

/* ---- errors ---------------------------------------------------------- */
/* Fills err with "PATH: <what>: <sqlite3_errmsg>" and returns -1. Call it
 * before any ROLLBACK, which would replace the message. */
int qstore_dberr(sqlite3 *db, const char *path, qerr *err, const char *fmt, ...) QLAB_PRINTF(4, 5);

/* Runs sql (one or more statements, no results) or fails as qstore_dberr. */
int qstore_exec(sqlite3 *db, const char *path, const char *sql, qerr *err);

/* Rolls back an open transaction, keeping whatever err already says. */
void qstore_rollback(sqlite3 *db);

/* ---- migrations ------------------------------------------------------ */
/* Brings the database from its user_version up to `latest`: steps[v] is
 * the SQL that turns version v-1 into v (steps[0] is unused). Each step
 * runs in its own BEGIN IMMEDIATE transaction that also sets user_version,
 * and is rolled back whole on failure. A version above `latest` is
 * refused. Exposed so tests can pass a table with a failing step. */
int qstore_migrate(sqlite3 *db, const char *path, const char *const *steps, int latest, qerr *err);

/* The store's own steps (QSTORE_SCHEMA_VERSION + 1 entries), so a test can
 * build a database of an older version by migrating only part of the way. */
const char *const *qstore_migrations(void);

/* ---- processes and the interrupted rule ------------------------------ */
/* Parses the text of /proc/PID/stat: *state gets field 3 and *start field
 * 22 (starttime, clock ticks after boot). Fields are counted after the
 * last ')' because the command name may hold spaces and parentheses.
 * Returns 0, or -1 when the text is malformed. */
int qstore_parse_stat(const char *text, char *state, int64_t *start);

/* Reads /proc/PID/stat (pid 0: this process) through qstore_parse_stat.
 * Returns -1 when the process does not exist or cannot be read. */
int qstore_proc_stat(pid_t pid, char *state, int64_t *start);

/* Copies /proc/sys/kernel/random/boot_id without its newline ("" when it
 * cannot be read) into buf of n bytes. */
void qstore_read_boot_id(char *buf, size_t n);

/* Who began a run or sweep: its pid, boot_id and proc_start columns. */
struct qstore_owner {
    int64_t pid;
    const char *boot_id;              /* borrowed: a row's text or the handle's */
    int has_start;                    /* proc_start known */
    int64_t start;                    /* /proc/PID/stat starttime, clock ticks */
};

/* This process. */
void qstore_owner_self(const struct qstore *s, struct qstore_owner *o);
/* Columns col, col+1, col+2 of a row (pid, boot_id, proc_start); boot_id
 * stays valid until the statement steps again. */
void qstore_owner_read(sqlite3_stmt *st, int col, struct qstore_owner *o);
/* Whether that process still exists: not on another boot, not gone, not a
 * zombie, not a later process reusing the pid. When the process exists
 * but /proc cannot tell more, it is believed. */
int qstore_owner_alive(const struct qstore *s, const struct qstore_owner *o);
/* Whether the owner is this very process. */
int qstore_owner_is_self(const struct qstore *s, const struct qstore_owner *o);

/* Marks every `running` run and sweep whose process has ended (see
 * qstore_owner_alive) as `interrupted`. */
int qstore_mark_interrupted(struct qstore *s, qerr *err);

/* ---- reading columns -------------------------------------------------- */
/* A malloc'd copy of a text column, NULL for SQL NULL. Sets *oom when the
 * copy could not be made. */
char *qstore_col_text(sqlite3_stmt *st, int col, int *oom);

/* A REAL column; SQL NULL (how NaN is stored) reads back as NAN. */
double qstore_col_real(sqlite3_stmt *st, int col);

/* Grows *arr (of *cap items of size sz, new items zeroed) so index n
 * fits. Returns -1 when out of memory or past 2^28 items. */
int qstore_grow(void **arr, int *cap, int n, size_t sz);

/* ---- binding ------------------------------------------------------------ */
/* Each binder does nothing once *rc holds an error, so a row binds in a
 * straight line and is checked once. Strings are borrowed (SQLITE_STATIC):
 * they must outlive the statement's step. */
static inline void qstore_bind_text(sqlite3_stmt *st, int i, const char *v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC); /* NULL binds SQL NULL */
}

static inline void qstore_bind_int(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_int64(st, i, v);
}

static inline void qstore_bind_null(sqlite3_stmt *st, int i, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_null(st, i);
}

/* NaN binds SQL NULL (said here, not left to SQLite); infinities stay REAL. */
static inline void qstore_bind_real(sqlite3_stmt *st, int i, double v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = isnan(v) ? sqlite3_bind_null(st, i) : sqlite3_bind_double(st, i, v);
}

/* An id that is 0 or less (none) binds NULL. */
static inline void qstore_bind_id(sqlite3_stmt *st, int i, int64_t id, int *rc)
{
    if (id > 0)
        qstore_bind_int(st, i, id, rc);
    else
        qstore_bind_null(st, i, rc);
}

/* pid, boot_id, proc_start into parameters i, i+1, i+2. */
static inline void qstore_bind_owner(sqlite3_stmt *st, int i, const struct qstore_owner *o, int *rc)
{
    qstore_bind_int(st, i, o->pid, rc);
    qstore_bind_text(st, i + 1, o->boot_id, rc);
    if (o->has_start)
        qstore_bind_int(st, i + 2, o->start, rc);
    else
        qstore_bind_null(st, i + 2, rc);
}

#endif
