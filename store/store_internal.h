/* store_internal.h — what the store's own files (and its tests) share: the handle, error and process helpers. */
#ifndef QLAB_STORE_INTERNAL_H
#define QLAB_STORE_INTERNAL_H

#include <sqlite3.h>
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

/* Marks every `running` run whose process has ended (other boot, no such
 * pid, a zombie, or a pid reused by a later process) as `interrupted`. */
int qstore_mark_interrupted(struct qstore *s, qerr *err);

/* ---- reading columns -------------------------------------------------- */
/* A malloc'd copy of a text column, NULL for SQL NULL. Sets *oom when the
 * copy could not be made. */
char *qstore_col_text(sqlite3_stmt *st, int col, int *oom);

#endif
