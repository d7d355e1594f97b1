/* check_store.c — the SQLite store: schema, migrations, runs, sweeps, searches, the interrupted rule, crashes, references. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_internal.h"
#include "test_util.h"

#define S(x) ((char *)(x)) /* qstore_tensor holds char *; tests write literals */

/* ---- helpers: the same file through a raw connection --------------------- */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* The first column of the first row as a static string ("" for NULL). */
static const char *raw_text(const char *path, const char *sql)
{
    static char buf[256];
    sqlite3 *db = raw_open(path);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    snprintf(buf, sizeof buf, "%s", t ? (const char *)t : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return buf;
}

static struct qstore *open_ok(const char *path)
{
    struct qstore *s = NULL;
    qerr err = {{0}};
    ck_assert_msg(qstore_open(path, &s, &err) == 0, "open %s: %s", path, err.msg);
    ck_assert_ptr_nonnull(s);
    return s;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "2024-05-01T12:34:56.789Z" */
static int is_iso_ms(const char *t)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (!t || strlen(t) != sizeof pat - 1)
        return 0;
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != pat[i])
            return 0;
    return 1;
}

static const struct qstore_model MODEL_A = {"models/digits.safetensors", "aaaa1111", "safetensors", "digits-cnn",
                                            12345, 49380};
static const struct qstore_dataset DATA_A = {"data/digits.csv.gz", NULL, "dddd4444", "digits-csv", 1797};

static int64_t add_model(struct qstore *s, const struct qstore_model *m)
{
    int64_t id = 0;
    qerr err = {{0}};
    ck_assert_msg(qstore_model_upsert(s, m, &id, &err) == 0, "%s", err.msg);
    ck_assert_int_gt(id, 0);
    return id;
}

static int64_t begin_run(struct qstore *s, int64_t model_id, int64_t dataset_id, const char *recipe)
{
    struct qstore_run_start r = {model_id, dataset_id, "classify", recipe, "{\"rules\":[]}",
                                 "ffff", 1797, NULL, 0};
    int64_t id = 0;
    qerr err = {{0}};
    ck_assert_msg(qstore_run_begin(s, &r, &id, &err) == 0, "%s", err.msg);
    ck_assert_int_gt(id, 0);
    return id;
}

static char *get_status(struct qstore *s, int64_t id)
{
    static char buf[32];
    struct qstore_run *r = NULL;
    qerr err = {{0}};
    ck_assert_msg(qstore_run_get(s, id, &r, &err) == 0, "%s", err.msg);
    snprintf(buf, sizeof buf, "%s", r->status);
    qstore_run_free(r);
    return buf;
}

/* ---- Schema: open, versions, migrations ------------------------------------ */
START_TEST(test_open_creates)
{
    const char *path = tu_path("new.db");
    struct qstore *s = open_ok(path);
    ck_assert_str_eq(qstore_path(s), path);
    ck_assert_int_eq(qstore_user_version(s), QSTORE_SCHEMA_VERSION);
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_str_eq(raw_text(path, "PRAGMA journal_mode"), "wal");
    ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), QSTORE_SCHEMA_VERSION);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN"
                                   " ('models', 'datasets', 'plugins', 'runs', 'run_plugins',"
                                   " 'run_tensors', 'reference_outputs')"),
                     7);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN"
                                   " ('runs_by_model', 'runs_by_start')"),
                     2);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN"
                                   " ('sweeps', 'sweep_groups', 'sweep_schemes', 'sweep_points', 'searches',"
                                   " 'search_points')"),
                     6);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN"
                                   " ('sweeps_by_model', 'sweeps_by_created', 'searches_by_sweep',"
                                   " 'searches_by_created')"),
                     4);
    /* The store's own connection enforces foreign keys. */
    qerr err = {{0}};
    ck_assert_int_eq(qstore_exec(s->db, path, "INSERT INTO runs (model_id, kind, recipe_text) VALUES (77, 'k', 'r')",
                                 &err),
                     -1);
    ck_assert_msg(strstr(err.msg, "FOREIGN KEY") != NULL, "%s", err.msg);
    qstore_close(s);

    /* Reopening changes nothing. */
    s = open_ok(path);
    ck_assert_int_eq(qstore_user_version(s), QSTORE_SCHEMA_VERSION);
    qstore_close(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 13);
    qstore_close(NULL);
}
END_TEST

START_TEST(test_open_refuses_newer)
{
    const char *path = tu_path("newer.db");
    raw_exec(path, "CREATE TABLE t (x); PRAGMA user_version = 99;");
    struct qstore *s = (struct qstore *)1;
    qerr err = {{0}};
    ck_assert_int_eq(qstore_open(path, &s, &err), -1);
    ck_assert_ptr_null(s);
    char want[600];
    snprintf(want, sizeof want, "%s: database schema version 99 is newer than this qlab's (%d); upgrade qlab", path,
             QSTORE_SCHEMA_VERSION);
    ck_assert_str_eq(err.msg, want);
    /* Nothing in the file was touched. */
    ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 99);
    ck_assert_str_eq(raw_text(path, "PRAGMA journal_mode"), "delete");
}
END_TEST

START_TEST(test_open_garbage)
{
    const char *path = tu_path("garbage.db");
    unsigned char junk[8192];
    uint32_t x = 2463534242u; /* xorshift32: the same junk every run */
    for (size_t i = 0; i < sizeof junk; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk[i] = (unsigned char)x;
    }
    tu_write_file(path, junk, sizeof junk);
    struct qstore *s = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qstore_open(path, &s, &err), -1);
    ck_assert_ptr_null(s);
    char want[600];
    snprintf(want, sizeof want, "%s: not a qlab database (file is not a database)", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    /* The file is left as it was. */
    size_t n = 0;
    char *back = tu_read_file(path, &n);
    ck_assert_uint_eq(n, sizeof junk);
    ck_assert_int_eq(memcmp(back, junk, n), 0);
    free(back);
}
END_TEST

/* A real database cut short or overwritten past its header: an error
 * naming the file, or (when SQLite can still read it) an open store. */
START_TEST(test_open_damaged)
{
    const char *good = tu_path("good.db");
    struct qstore *s = open_ok(good);
    int64_t mid = add_model(s, &MODEL_A);
    for (int i = 0; i < 20; i++)
        begin_run(s, mid, 0, "a recipe long enough to spill the runs table over a few pages of the file");
    qstore_close(s);
    size_t n = 0;
    unsigned char *img = (unsigned char *)tu_read_file(good, &n);
    ck_assert_uint_gt(n, 4096);
    const size_t cuts[] = {16, 100, 512, 4096, n - 1};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0] + 1; c++) {
        char name[32];
        snprintf(name, sizeof name, "damaged%zu.db", c);
        const char *path = tu_path(name);
        if (c < sizeof cuts / sizeof cuts[0]) {
            tu_write_file(path, img, cuts[c]);
        } else { /* header intact, every later byte flipped */
            unsigned char *bad = malloc(n);
            ck_assert_ptr_nonnull(bad);
            memcpy(bad, img, 100);
            for (size_t i = 100; i < n; i++)
                bad[i] = (unsigned char)~img[i];
            tu_write_file(path, bad, n);
            free(bad);
        }
        qerr err = {{0}};
        s = NULL;
        if (qstore_open(path, &s, &err) == 0) {
            struct qstore_run *runs = NULL;
            int nr = 0;
            if (qstore_runs_list(s, NULL, &runs, &nr, &err) == 0)
                qstore_runs_free(runs, nr);
            else
                ck_assert_msg(starts_with(err.msg, path), "%s", err.msg);
            qstore_close(s);
        } else {
            ck_assert_ptr_null(s);
            ck_assert_msg(starts_with(err.msg, path), "cut %zu: %s", c, err.msg);
            ck_assert_ptr_null(strchr(err.msg, '\n'));
        }
    }
    free(img);
}
END_TEST

START_TEST(test_open_empty_file)
{
    const char *path = tu_path("empty.db");
    tu_write_file(path, "", 0);
    struct qstore *s = open_ok(path);
    ck_assert_int_eq(qstore_user_version(s), QSTORE_SCHEMA_VERSION);
    qstore_close(s);
}
END_TEST

START_TEST(test_open_missing_folder)
{
    const char *path = tu_path("no/such/folder/q.db");
    struct qstore *s = NULL;
    qerr err = {{0}};
    ck_assert_int_eq(qstore_open(path, &s, &err), -1);
    ck_assert_msg(starts_with(err.msg, path), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "unable to open") != NULL, "%s", err.msg);
    ck_assert_int_eq(qstore_open(NULL, &s, &err), -1);
}
END_TEST

START_TEST(test_migrate_v0_with_other_table)
{
    const char *path = tu_path("v0.db");
    raw_exec(path, "CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('kept');");
    struct qstore *s = open_ok(path);
    ck_assert_int_eq(qstore_user_version(s), QSTORE_SCHEMA_VERSION);
    qstore_close(s);
    ck_assert_str_eq(raw_text(path, "SELECT x FROM notes"), "kept");
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'runs'"), 1);
}
END_TEST

/* A step whose second statement fails leaves the version and tables as
 * they were; earlier steps stay committed. */
START_TEST(test_migrate_failure_rolls_back)
{
    const char *path = tu_path("failmig.db");
    raw_exec(path, "CREATE TABLE notes (x);");
    static const char *const bad1[] = {NULL, "CREATE TABLE a (x); CREATE TABLE b (y"};
    sqlite3 *db = raw_open(path);
    qerr err = {{0}};
    ck_assert_int_eq(qstore_migrate(db, path, bad1, 1, &err), -1);
    ck_assert_msg(starts_with(err.msg, path), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "migrating the schema to version 1") != NULL, "%s", err.msg);
    ck_assert_int_eq(sqlite3_get_autocommit(db), 1); /* no transaction left open */
    sqlite3_close(db);
    ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 0);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name IN ('a', 'b')"), 0);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'notes'"), 1);

    /* Step 1 is fine, step 2 fails on its second statement. */
    static const char *const bad2[] = {NULL, "CREATE TABLE a (x);", "CREATE TABLE b (y); CREATE TABLE a (z);"};
    db = raw_open(path);
    ck_assert_int_eq(qstore_migrate(db, path, bad2, 2, &err), -1);
    ck_assert_msg(strstr(err.msg, "version 2") && strstr(err.msg, "already exists"), "%s", err.msg);
    sqlite3_close(db);
    ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'a'"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'b'"), 0);

    /* Up to date: nothing to do; a table that ends below the file: refused. */
    db = raw_open(path);
    ck_assert_int_eq(qstore_migrate(db, path, bad2, 1, &err), 0);
    ck_assert_int_eq(qstore_migrate(db, path, bad2, 0, &err), -1);
    ck_assert_msg(strstr(err.msg, "version 1 is newer than this qlab's (0)"), "%s", err.msg);
    sqlite3_close(db);

    /* A good step 2 then applies. */
    static const char *const good[] = {NULL, "CREATE TABLE a (x);", "CREATE TABLE b (y); CREATE INDEX b_y ON b (y);"};
    db = raw_open(path);
    ck_assert_msg(qstore_migrate(db, path, good, 2, &err) == 0, "%s", err.msg);
    sqlite3_close(db);
    ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 2);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name IN ('b', 'b_y')"), 2);
}
END_TEST

/* ---- Limits: /proc parsing ------------------------------------------------------ */
START_TEST(test_parse_stat)
{
    /* comm "a) b) (c" holds spaces and parentheses; starttime (field 22) is 98765. */
    const char *line = "1234 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 98765 19 20\n";
    char state = 0;
    int64_t start = 0;
    ck_assert_int_eq(qstore_parse_stat(line, &state, &start), 0);
    ck_assert_int_eq(state, 'S');
    ck_assert_int_eq(start, 98765);
    /* Field 22 is the last one present. */
    ck_assert_int_eq(qstore_parse_stat("1 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 42", &state, &start), 0);
    ck_assert_int_eq(state, 'Z');
    ck_assert_int_eq(start, 42);
    ck_assert_int_eq(qstore_parse_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18", &state, &start), -1);
    ck_assert_int_eq(qstore_parse_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5", &state, &start), -1);
    ck_assert_int_eq(qstore_parse_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 7x", &state, &start), -1);
    ck_assert_int_eq(qstore_parse_stat("no parenthesis at all", &state, &start), -1);
    ck_assert_int_eq(qstore_parse_stat("", &state, &start), -1);

    /* Our own entry reads, and pid 0 means "self". */
    int64_t self = 0, mine = 0;
    ck_assert_int_eq(qstore_proc_stat(0, &state, &self), 0);
    ck_assert_int_eq(state, 'R');
    ck_assert_int_eq(qstore_proc_stat(getpid(), &state, &mine), 0);
    ck_assert_int_eq(self, mine);
    ck_assert_int_gt(self, 0);

    char boot[64];
    qstore_read_boot_id(boot, sizeof boot);
    ck_assert_uint_eq(strlen(boot), 36); /* a UUID, newline trimmed */
}
END_TEST

/* ---- Upserts ----------------------------------------------------------------- */
START_TEST(test_upserts_idempotent)
{
    const char *path = tu_path("upsert.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t a = add_model(s, &MODEL_A), again = add_model(s, &MODEL_A);
    ck_assert_int_eq(a, again);
    struct qstore_model other_sha = MODEL_A, other_path = MODEL_A;
    other_sha.sha256 = "bbbb2222";
    other_path.path = "models/copy.safetensors";
    int64_t b = add_model(s, &other_sha), c = add_model(s, &other_path);
    ck_assert_int_ne(b, a);
    ck_assert_int_ne(c, a);
    ck_assert_int_ne(c, b);
    ck_assert_int_eq(add_model(s, &other_sha), b);

    /* A missing key is an error, not a silently ignored row. */
    struct qstore_model no_path = MODEL_A;
    no_path.path = NULL;
    int64_t id = -7;
    ck_assert_int_eq(qstore_model_upsert(s, &no_path, &id, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "NOT NULL"), "%s", err.msg);
    ck_assert_int_eq(id, -7);

    int64_t d1 = 0, d2 = 0, d3 = 0;
    ck_assert_int_eq(qstore_dataset_upsert(s, &DATA_A, &d1, &err), 0);
    ck_assert_int_eq(qstore_dataset_upsert(s, &DATA_A, &d2, &err), 0);
    struct qstore_dataset dl = DATA_A;
    dl.labels_path = "data/labels.bin";
    dl.sha256 = "eeee5555";
    ck_assert_int_eq(qstore_dataset_upsert(s, &dl, &d3, &err), 0);
    ck_assert_int_eq(d1, d2);
    ck_assert_int_ne(d1, d3);

    struct qstore_plugin p = {"int", "1.0.0", "/lib/qlab/int.so", "cccc3333"};
    int64_t p1 = 0, p2 = 0, p3 = 0;
    ck_assert_int_eq(qstore_plugin_upsert(s, &p, &p1, &err), 0);
    p.path = "/elsewhere/int.so"; /* same plugin found elsewhere: same row */
    ck_assert_int_eq(qstore_plugin_upsert(s, &p, &p2, &err), 0);
    p.version = "1.0.1";
    ck_assert_int_eq(qstore_plugin_upsert(s, &p, &p3, &err), 0);
    ck_assert_int_eq(p1, p2);
    ck_assert_int_ne(p1, p3);
    qstore_close(s);

    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM models"), 3);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM datasets"), 2);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM plugins"), 2);
    ck_assert_str_eq(raw_text(path, "SELECT path FROM plugins WHERE version = '1.0.0'"), "/lib/qlab/int.so");
    ck_assert(is_iso_ms(raw_text(path, "SELECT first_seen FROM models LIMIT 1")));
}
END_TEST

/* ---- Runs -------------------------------------------------------------------------- */
START_TEST(test_run_lifecycle)
{
    const char *path = tu_path("life.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t mid = add_model(s, &MODEL_A), did = 0, p_int = 0, p_fp8 = 0;
    ck_assert_int_eq(qstore_dataset_upsert(s, &DATA_A, &did, &err), 0);
    struct qstore_plugin pi = {"int", "1.0.0", "/lib/qlab/int.so", "cccc3333"};
    struct qstore_plugin pf = {"fp8", "0.2", "/lib/qlab/fp8.so", "9999aaaa"};
    ck_assert_int_eq(qstore_plugin_upsert(s, &pi, &p_int, &err), 0);
    ck_assert_int_eq(qstore_plugin_upsert(s, &pf, &p_fp8, &err), 0);

    const int64_t pids[] = {p_int, p_fp8, p_int}; /* a repeat is recorded once */
    struct qstore_run_start rs = {mid, did, "classify", "conv*=int8,fc*=fp8", "{\"rules\":[1]}",
                                  "0123abcd", 1797, pids, 3};
    int64_t rid = 0;
    ck_assert_msg(qstore_run_begin(s, &rs, &rid, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(raw_int(path, "SELECT pid FROM runs"), getpid());
    char state;
    int64_t start;
    ck_assert_int_eq(qstore_proc_stat(0, &state, &start), 0);
    ck_assert_int_eq(raw_int(path, "SELECT proc_start FROM runs"), start);
    ck_assert_str_eq(raw_text(path, "SELECT boot_id FROM runs"), s->boot_id);

    /* Listed as running, without tensors. */
    struct qstore_run *list = NULL;
    int n = -1;
    ck_assert_msg(qstore_runs_list(s, NULL, &list, &n, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(list[0].id, rid);
    ck_assert_str_eq(list[0].status, "running");
    ck_assert_ptr_null(list[0].finished_at);
    ck_assert(is_iso_ms(list[0].started_at));
    ck_assert_str_eq(list[0].model_path, MODEL_A.path);
    ck_assert_str_eq(list[0].dataset_path, DATA_A.path);
    ck_assert_int_eq(list[0].n_tensors, 0);
    ck_assert_ptr_null(list[0].tensors);
    ck_assert_int_eq(list[0].n_plugins, 2);
    qstore_runs_free(list, n);

    const struct qstore_tensor ts[3] = {
        {S("conv1.weight"), S("conv2d"), S("weight"), S("[32, 1, 5, 5]"), 800, S("int8"), S("int"),
         S("{\"bits\":8}"), 800, 8.0, 1, 1.5e-5, 38.25, 0.0078125, 0.1},
        {S("conv1.bias"), S("conv2d"), S("bias"), S("[32]"), 32, S("float"), NULL, S("{}"), 128, 32.0, 0, 0,
         0, 0, 0},
        {S("fc.weight"), S("linear"), S("weight"), S("[10, 128]"), 1280, S("fp8"), S("fp8"), S("{\"e\":4}"),
         1280, 8.0, 1, 0.0, INFINITY, 0.0, 1.0},
    };
    struct qstore_run_end end = {"done", NULL, 2208, 8840, 2208.0 * 8 / 2112, "{\"top1\":98.33}", 1.25, 3, ts};
    ck_assert_msg(qstore_run_finish(s, rid, &end, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(raw_text(path, "SELECT typeof(sqnr_db) FROM run_tensors WHERE idx = 2"), "real");

    struct qstore_run *r = NULL;
    ck_assert_msg(qstore_run_get(s, rid, &r, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(r->id, rid);
    ck_assert_str_eq(r->status, "done");
    ck_assert_str_eq(r->kind, "classify");
    ck_assert_int_eq(r->model_id, mid);
    ck_assert_str_eq(r->model_path, MODEL_A.path);
    ck_assert_str_eq(r->model_name, MODEL_A.name);
    ck_assert_str_eq(r->model_sha256, MODEL_A.sha256);
    ck_assert_str_eq(r->model_format, MODEL_A.format);
    ck_assert_int_eq(r->dataset_id, did);
    ck_assert_str_eq(r->dataset_path, DATA_A.path);
    ck_assert_ptr_null(r->dataset_labels_path);
    ck_assert_str_eq(r->dataset_sha256, DATA_A.sha256);
    ck_assert_str_eq(r->recipe_text, rs.recipe_text);
    ck_assert_str_eq(r->recipe_json, rs.recipe_json);
    ck_assert_str_eq(r->recipe_hash, rs.recipe_hash);
    ck_assert(is_iso_ms(r->started_at));
    ck_assert(is_iso_ms(r->finished_at));
    ck_assert(strcmp(r->finished_at, r->started_at) >= 0);
    ck_assert(r->elapsed_s == 1.25);
    ck_assert_int_eq(r->n_samples, 1797);
    ck_assert_int_eq(r->size_bytes, 2208);
    ck_assert_int_eq(r->float_bytes, 8840);
    ck_assert(r->bits_per_weight == 2208.0 * 8 / 2112); /* bit-exact double round trip */
    ck_assert_str_eq(r->metrics_json, "{\"top1\":98.33}");
    ck_assert_ptr_null(r->error);

    ck_assert_int_eq(r->n_tensors, 3);
    for (int i = 0; i < 3; i++) {
        const struct qstore_tensor *a = &r->tensors[i], *b = &ts[i];
        ck_assert_str_eq(a->name, b->name);
        ck_assert_str_eq(a->op, b->op);
        ck_assert_str_eq(a->role, b->role);
        ck_assert_str_eq(a->shape, b->shape);
        ck_assert_int_eq(a->numel, b->numel);
        ck_assert_str_eq(a->scheme, b->scheme);
        if (b->plugin)
            ck_assert_str_eq(a->plugin, b->plugin);
        else
            ck_assert_ptr_null(a->plugin);
        ck_assert_str_eq(a->params_json, b->params_json);
        ck_assert_int_eq(a->bytes, b->bytes);
        ck_assert(a->bits_per_weight == b->bits_per_weight);
        ck_assert_int_eq(a->has_error, b->has_error);
        ck_assert(a->mse == b->mse);
        ck_assert(a->max_abs == b->max_abs);
        ck_assert(a->cosine == b->cosine);
    }
    ck_assert(r->tensors[0].sqnr_db == 38.25);
    ck_assert(r->tensors[0].cosine == 0.1); /* not representable: must come back bit-exact */
    ck_assert(r->tensors[1].sqnr_db == 0.0);
    ck_assert(isinf(r->tensors[2].sqnr_db) && r->tensors[2].sqnr_db > 0);

    /* Plugins ordered by name: fp8, int. */
    ck_assert_int_eq(r->n_plugins, 2);
    ck_assert_str_eq(r->plugins[0].name, "fp8");
    ck_assert_str_eq(r->plugins[0].version, "0.2");
    ck_assert_str_eq(r->plugins[0].path, "/lib/qlab/fp8.so");
    ck_assert_str_eq(r->plugins[0].sha256, "9999aaaa");
    ck_assert_str_eq(r->plugins[1].name, "int");
    ck_assert_str_eq(r->plugins[1].version, "1.0.0");
    ck_assert_str_eq(r->plugins[1].path, "/lib/qlab/int.so");
    ck_assert_str_eq(r->plugins[1].sha256, "cccc3333");
    qstore_run_free(r);
    qstore_run_free(NULL);
    qstore_runs_free(NULL, 0);

    /* A second finish is refused and changes nothing. */
    struct qstore_run_end again = {"failed", "late", 1, 1, 1.0, NULL, 9.0, 0, NULL};
    ck_assert_int_eq(qstore_run_finish(s, rid, &again, &err), -1);
    char want[600];
    snprintf(want, sizeof want, "%s: run %lld is not running (status done)", path, (long long)rid);
    ck_assert_str_eq(err.msg, want);
    ck_assert_str_eq(get_status(s, rid), "done");
    qstore_close(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM run_tensors"), 3);
}
END_TEST

START_TEST(test_run_finish_bad_input)
{
    const char *path = tu_path("badfinish.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t rid = begin_run(s, add_model(s, &MODEL_A), 0, "all=int8");
    struct qstore_run_end e = {"interrupted", NULL, 0, 0, 0, NULL, 0, 0, NULL};
    ck_assert_int_eq(qstore_run_finish(s, rid, &e, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "'interrupted'"), "%s", err.msg);
    e.status = NULL;
    ck_assert_int_eq(qstore_run_finish(s, rid, &e, &err), -1);
    e.status = "done";
    e.n_tensors = 2; /* without a list */
    ck_assert_int_eq(qstore_run_finish(s, rid, &e, &err), -1);
    e.n_tensors = 0;
    ck_assert_int_eq(qstore_run_finish(s, 999, &e, &err), -1);
    char want[600];
    snprintf(want, sizeof want, "no run 999 in %s", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_str_eq(get_status(s, rid), "running");

    /* A run without a dataset, and a failed one with its error. */
    e.status = "failed";
    e.error = "conv1.weight: plugin returned NaN";
    ck_assert_msg(qstore_run_finish(s, rid, &e, &err) == 0, "%s", err.msg);
    struct qstore_run *r = NULL;
    ck_assert_int_eq(qstore_run_get(s, rid, &r, &err), 0);
    ck_assert_str_eq(r->status, "failed");
    ck_assert_str_eq(r->error, "conv1.weight: plugin returned NaN");
    ck_assert_int_eq(r->dataset_id, 0);
    ck_assert_ptr_null(r->dataset_path);
    ck_assert_ptr_null(r->metrics_json);
    ck_assert_int_eq(r->n_tensors, 0);
    ck_assert_ptr_null(r->tensors);
    ck_assert_int_eq(r->n_plugins, 0);
    qstore_run_free(r);

    /* Beginning with an unknown plugin or model stores nothing. */
    int64_t bogus[] = {4242};
    struct qstore_run_start rs = {1, 0, "classify", "x", NULL, NULL, 0, bogus, 1};
    int64_t id = -3;
    ck_assert_int_eq(qstore_run_begin(s, &rs, &id, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "FOREIGN KEY"), "%s", err.msg);
    ck_assert_int_eq(id, -3);
    rs.model_id = 555;
    rs.n_plugins = 0;
    ck_assert_int_eq(qstore_run_begin(s, &rs, &id, &err), -1);
    qstore_close(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM runs"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM run_plugins"), 0);
}
END_TEST

/* The 2nd tensor row breaks NOT NULL: nothing of the finish is kept. */
START_TEST(test_run_finish_atomic)
{
    const char *path = tu_path("atomic.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t rid = begin_run(s, add_model(s, &MODEL_A), 0, "all=int4");
    struct qstore_tensor ts[3] = {
        {S("a"), S("linear"), S("weight"), S("[2]"), 2, S("int4"), S("int"), S("{}"), 1, 4.0, 0, 0, 0, 0, 0},
        {NULL, S("linear"), S("bias"), S("[2]"), 2, S("float"), NULL, S("{}"), 8, 32.0, 0, 0, 0, 0, 0},
        {S("c"), S("linear"), S("weight"), S("[2]"), 2, S("int4"), S("int"), S("{}"), 1, 4.0, 0, 0, 0, 0, 0},
    };
    struct qstore_run_end e = {"done", NULL, 10, 24, 6.67, "{}", 2.0, 3, ts};
    ck_assert_int_eq(qstore_run_finish(s, rid, &e, &err), -1);
    ck_assert_msg(starts_with(err.msg, path), "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "tensor 1") && strstr(err.msg, "NOT NULL"), "%s", err.msg);

    struct qstore_run *r = NULL;
    ck_assert_int_eq(qstore_run_get(s, rid, &r, &err), 0);
    ck_assert_str_eq(r->status, "running");
    ck_assert_ptr_null(r->finished_at);
    ck_assert_int_eq(r->size_bytes, 0);
    ck_assert_ptr_null(r->metrics_json);
    ck_assert_int_eq(r->n_tensors, 0);
    qstore_run_free(r);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM run_tensors"), 0);

    /* The connection is usable again and the corrected finish works. */
    ts[1].name = S("b");
    ck_assert_msg(qstore_run_finish(s, rid, &e, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(get_status(s, rid), "done");
    qstore_close(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM run_tensors WHERE run_id = 1"), 3);
}
END_TEST

START_TEST(test_run_get_missing)
{
    const char *path = tu_path("missing.db");
    struct qstore *s = open_ok(path);
    struct qstore_run *r = (struct qstore_run *)1;
    qerr err = {{0}};
    ck_assert_int_eq(qstore_run_get(s, 42, &r, &err), -1);
    ck_assert_ptr_null(r);
    char want[600];
    snprintf(want, sizeof want, "no run 42 in %s", path);
    ck_assert_str_eq(err.msg, want);
    qstore_close(s);
}
END_TEST

START_TEST(test_runs_list_filters)
{
    const char *path = tu_path("list.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    struct qstore_model a = MODEL_A, b = MODEL_A, c = MODEL_A;
    b.path = "models/b.safetensors";
    b.sha256 = "bbbb";
    c.sha256 = "cccc"; /* same path as a, new content */
    int64_t ma = add_model(s, &a), mb = add_model(s, &b), mc = add_model(s, &c);
    int64_t owner[] = {ma, mb, mc, ma, mb}; /* runs 1..5 */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(begin_run(s, owner[i], 0, "r"), i + 1);

    struct {
        const char *path, *sha;
        int limit, n;
        int64_t ids[5];
    } cases[] = {
        {NULL, NULL, 0, 5, {5, 4, 3, 2, 1}},
        {a.path, NULL, 0, 3, {4, 3, 1}},
        {NULL, "bbbb", 0, 2, {5, 2}},
        {b.path, "cccc", 0, 3, {5, 3, 2}},
        {NULL, NULL, 2, 2, {5, 4}},
        {a.path, NULL, 2, 2, {4, 3}},
        {NULL, "aaaa1111", 1, 1, {4}},
        {"models/none", NULL, 0, 0, {0}},
    };
    for (size_t c_i = 0; c_i < sizeof cases / sizeof cases[0]; c_i++) {
        struct qstore_run_filter f = {cases[c_i].path, cases[c_i].sha, cases[c_i].limit};
        struct qstore_run *runs = NULL;
        int n = -1;
        ck_assert_msg(qstore_runs_list(s, &f, &runs, &n, &err) == 0, "%s", err.msg);
        ck_assert_msg(n == cases[c_i].n, "case %zu: %d runs", c_i, n);
        for (int i = 0; i < n; i++) {
            ck_assert_msg(runs[i].id == cases[c_i].ids[i], "case %zu row %d: run %lld", c_i, i,
                          (long long)runs[i].id);
            ck_assert_int_eq(runs[i].model_id, owner[runs[i].id - 1]);
            ck_assert_str_eq(runs[i].status, "running");
        }
        if (n == 0)
            ck_assert_ptr_null(runs);
        qstore_runs_free(runs, n);
    }
    qstore_close(s);
}
END_TEST

/* ---- Interrupted: runs of processes that ended ---------------------------------- */
static pid_t dead_child(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return pid;
}

static void set_run(const char *path, const char *column, const char *value, int64_t id)
{
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE runs SET %s = %s WHERE id = %lld", column, value, (long long)id);
    raw_exec(path, sql);
}

START_TEST(test_interrupted_rule)
{
    const char *path = tu_path("interrupted.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t mid = add_model(s, &MODEL_A);
    int64_t mine = begin_run(s, mid, 0, "mine"), gone = begin_run(s, mid, 0, "gone"),
            other_boot = begin_run(s, mid, 0, "other boot"), reused = begin_run(s, mid, 0, "reused pid"),
            finished = begin_run(s, mid, 0, "finished");
    struct qstore_run_end e = {"cancelled", NULL, 0, 0, 0, NULL, 0.5, 0, NULL};
    ck_assert_int_eq(qstore_run_finish(s, finished, &e, &err), 0);
    qstore_close(s);

    pid_t dead = dead_child();
    char v[64];
    snprintf(v, sizeof v, "%ld", (long)dead);
    set_run(path, "pid", v, gone);
    set_run(path, "pid", v, finished);
    set_run(path, "boot_id", "'00000000-0000-0000-0000-000000000000'", other_boot);
    set_run(path, "proc_start", "proc_start + 1", reused); /* our pid, but a later process */

    s = open_ok(path);
    /* Opening alone marked them (raw reads do not apply the rule). */
    ck_assert_str_eq(raw_text(path, "SELECT group_concat(status, ',') FROM (SELECT status FROM runs ORDER BY id)"),
                     "running,interrupted,interrupted,interrupted,cancelled");
    struct qstore_run *r = NULL;
    ck_assert_int_eq(qstore_run_get(s, mine, &r, &err), 0);
    ck_assert_str_eq(r->status, "running");
    ck_assert_ptr_null(r->error);
    qstore_run_free(r);

    char want[128];
    snprintf(want, sizeof want, "process %ld ended without finishing the run", (long)dead);
    ck_assert_int_eq(qstore_run_get(s, gone, &r, &err), 0);
    ck_assert_str_eq(r->status, "interrupted");
    ck_assert_str_eq(r->error, want);
    ck_assert_ptr_null(r->finished_at);
    qstore_run_free(r);
    snprintf(want, sizeof want, "process %ld ended without finishing the run", (long)getpid());
    ck_assert_int_eq(qstore_run_get(s, other_boot, &r, &err), 0);
    ck_assert_str_eq(r->status, "interrupted");
    ck_assert_str_eq(r->error, want);
    qstore_run_free(r);
    ck_assert_str_eq(get_status(s, reused), "interrupted");
    ck_assert_str_eq(get_status(s, finished), "cancelled"); /* only running runs change */

    /* An interrupted run cannot be finished. */
    e.status = "done";
    ck_assert_int_eq(qstore_run_finish(s, gone, &e, &err), -1);
    ck_assert_msg(strstr(err.msg, "is not running (status interrupted)"), "%s", err.msg);

    /* The list applies the rule too, without reopening. */
    int64_t late = begin_run(s, mid, 0, "late");
    set_run(path, "pid", v, late);
    struct qstore_run *list = NULL;
    int n = 0;
    ck_assert_msg(qstore_runs_list(s, NULL, &list, &n, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n, 6);
    ck_assert_int_eq(list[0].id, late);
    ck_assert_str_eq(list[0].status, "interrupted");
    qstore_runs_free(list, n);
    qstore_close(s);
}
END_TEST

/* A live process of someone else keeps its run; as a zombie it has ended. */
START_TEST(test_interrupted_other_process)
{
    const char *path = tu_path("other.db");
    struct qstore *s = open_ok(path);
    int64_t rid = begin_run(s, add_model(s, &MODEL_A), 0, "child");
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char c;
        close(fds[1]);
        while (read(fds[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(fds[0]);
    char state;
    int64_t start;
    ck_assert_int_eq(qstore_proc_stat(child, &state, &start), 0);
    char v[64];
    snprintf(v, sizeof v, "%ld", (long)child);
    set_run(path, "pid", v, rid);
    snprintf(v, sizeof v, "%lld", (long long)start);
    set_run(path, "proc_start", v, rid);
    ck_assert_str_eq(get_status(s, rid), "running");

    /* Let it end but do not reap it: its /proc entry stays, as a zombie. */
    close(fds[1]);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    ck_assert_int_eq(waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT), 0);
    ck_assert_int_eq(qstore_proc_stat(child, &state, &start), 0);
    ck_assert_int_eq(state, 'Z');
    ck_assert_str_eq(get_status(s, rid), "interrupted");
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    qstore_close(s);
}
END_TEST

/* ---- Concurrency: a second process reads while we hold a write lock ------------------ */
/* Run as `check_store --reader DB RUN_ID RECIPE`; exits 0 when it sees the
 * run still `running` with that recipe. A fresh exec, not a bare fork,
 * because SQLite connections must not cross fork(). */
static int reader_main(const char *path, long long id, const char *recipe)
{
    struct qstore *s = NULL;
    qerr err = {{0}};
    if (qstore_open(path, &s, &err)) {
        fprintf(stderr, "reader: %s\n", err.msg);
        return 2;
    }
    struct qstore_run *runs = NULL, *r = NULL;
    int n = 0, rc = 0;
    if (qstore_runs_list(s, NULL, &runs, &n, &err) || qstore_run_get(s, id, &r, &err)) {
        fprintf(stderr, "reader: %s\n", err.msg);
        rc = 3;
    } else if (n != 1 || runs[0].id != id || strcmp(runs[0].status, "running") != 0 ||
               strcmp(r->recipe_text, recipe) != 0) {
        fprintf(stderr, "reader: saw %d runs, recipe '%s'\n", n, r->recipe_text);
        rc = 4;
    }
    qstore_runs_free(runs, n);
    qstore_run_free(r);
    qstore_close(s);
    return rc;
}

START_TEST(test_second_process_reads)
{
    const char *path = tu_path("shared.db");
    char dbpath[1024];
    snprintf(dbpath, sizeof dbpath, "%s", path);
    struct qstore *s = open_ok(dbpath);
    int64_t rid = begin_run(s, add_model(s, &MODEL_A), 0, "committed recipe");
    /* Hold an uncommitted change: WAL readers see the last commit. */
    qerr err = {{0}};
    ck_assert_int_eq(qstore_exec(s->db, dbpath, "BEGIN IMMEDIATE; UPDATE runs SET recipe_text = 'uncommitted'", &err),
                     0);
    char idtext[32];
    snprintf(idtext, sizeof idtext, "%lld", (long long)rid);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char *argv[] = {S("check_store"), S("--reader"), dbpath, idtext, S("committed recipe"), NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int st = 0;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    ck_assert_int_eq(qstore_exec(s->db, dbpath, "ROLLBACK", &err), 0);
    qstore_close(s);
}
END_TEST

/* ---- References ------------------------------------------------------------------------ */
START_TEST(test_reference_roundtrip)
{
    const char *path = tu_path("ref.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    float x[12] = {0.1f, -0.0f, 1e-45f, FLT_MAX, -FLT_MIN, 3.14159265f, INFINITY, -INFINITY,
                   1.0f / 3.0f, -2.5f, 16777217.0f, 0.0f};
    ck_assert_msg(qstore_reference_put(s, "m1", "d1", 3, 4, x, "{\"top1\":97.5}", &err) == 0, "%s", err.msg);

    float *got = NULL;
    char *metrics = NULL;
    ck_assert_int_eq(qstore_reference_get(s, "m1", "d1", 3, 4, &got, &metrics, &err), 0);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(memcmp(got, x, sizeof x), 0);
    ck_assert_str_eq(metrics, "{\"top1\":97.5}");
    free(got);
    free(metrics);

    /* Another shape, another dataset, another model: no reference. */
    const struct {
        const char *m, *d;
        int64_t n;
        int k;
    } miss[] = {{"m1", "d1", 2, 4}, {"m1", "d1", 3, 5}, {"m1", "d1", 4, 3}, {"m1", "d2", 3, 4}, {"m2", "d1", 3, 4}};
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++) {
        got = (float *)x;
        metrics = S("x");
        ck_assert_int_eq(qstore_reference_get(s, miss[i].m, miss[i].d, miss[i].n, miss[i].k, &got, &metrics, &err),
                         0);
        ck_assert_ptr_null(got);
        ck_assert_ptr_null(metrics);
    }

    /* Put replaces, and metrics may be NULL. */
    const float y[4] = {1, 2, 3, 4};
    ck_assert_int_eq(qstore_reference_put(s, "m1", "d1", 2, 2, y, NULL, &err), 0);
    ck_assert_int_eq(qstore_reference_get(s, "m1", "d1", 3, 4, &got, NULL, &err), 0);
    ck_assert_ptr_null(got);
    ck_assert_int_eq(qstore_reference_get(s, "m1", "d1", 2, 2, &got, &metrics, &err), 0);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(memcmp(got, y, sizeof y), 0);
    ck_assert_ptr_null(metrics);
    free(got);

    /* Empty or absurd shapes are refused. */
    ck_assert_int_eq(qstore_reference_put(s, "m1", "d1", 0, 4, y, NULL, &err), -1);
    ck_assert_msg(starts_with(err.msg, path), "%s", err.msg);
    ck_assert_int_eq(qstore_reference_put(s, "m1", "d1", (int64_t)1 << 40, 10, y, NULL, &err), -1);
    ck_assert_int_eq(qstore_reference_get(s, "m1", "d1", -2, -2, &got, NULL, &err), 0);
    ck_assert_ptr_null(got);
    qstore_close(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM reference_outputs"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT length(logits) FROM reference_outputs"), 16);

    /* A blob of the wrong size (forced past the CHECK) is no reference. */
    raw_exec(path, "PRAGMA ignore_check_constraints = ON; UPDATE reference_outputs SET logits = x'0000803f';");
    s = open_ok(path);
    ck_assert_int_eq(qstore_reference_get(s, "m1", "d1", 2, 2, &got, NULL, &err), 0);
    ck_assert_ptr_null(got);
    qstore_close(s);
}
END_TEST

/* Closes after checking the store left no statement unfinalized and no
 * transaction open, whatever failed before. */
static void close_ok(struct qstore *s)
{
    ck_assert_ptr_null(sqlite3_next_stmt(s->db, NULL));
    ck_assert_int_eq(sqlite3_get_autocommit(s->db), 1);
    qstore_close(s);
}

/* ---- Migration: a schema 1 database with runs ------------------------------------------ */
/* Built by running only step 0 -> 1 of the store's own migrations, then
 * filled the way qlab 1 filled it. */
START_TEST(test_migrate_v1_keeps_runs)
{
    const char *p = tu_path("v1.db");
    char path[1024];
    snprintf(path, sizeof path, "%s", p);
    sqlite3 *db = raw_open(path);
    qerr err = {{0}};
    ck_assert_msg(qstore_migrate(db, path, qstore_migrations(), 1, &err) == 0, "%s", err.msg);
    sqlite3_close(db);
    ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'sweeps'"), 0);

    pid_t dead = dead_child();
    char sql[2048];
    snprintf(sql, sizeof sql,
             "INSERT INTO models (path, sha256, format, name) VALUES ('m.safetensors', 'aaaa', 'safetensors', 'm');"
             "INSERT INTO datasets (path, sha256) VALUES ('d.csv', 'dddd');"
             "INSERT INTO plugins (name, version, sha256) VALUES ('int', '1.0', 'pppp');"
             "INSERT INTO runs (model_id, dataset_id, kind, recipe_text, status, finished_at, size_bytes,"
             " bits_per_weight, metrics_json) VALUES (1, 1, 'classify', 'conv*=int8', 'done',"
             " '2024-01-02T03:04:05.678Z', 2208, 8.5, '{\"top1\":98.33}');"
             "INSERT INTO run_plugins VALUES (1, 1);"
             "INSERT INTO run_tensors (run_id, idx, name, numel, scheme, bytes, has_error, mse)"
             " VALUES (1, 0, 'conv1.weight', 800, 'int8', 800, 1, 0.25), (1, 1, 'fc.bias', 10, 'float', 40, 0, NULL);"
             /* left running by a process that has since ended */
             "INSERT INTO runs (model_id, kind, recipe_text, pid, boot_id)"
             " VALUES (1, 'classify', 'fc*=int4', %ld, '%s');"
             "INSERT INTO reference_outputs (model_sha256, dataset_sha256, n, k, logits)"
             " VALUES ('aaaa', 'dddd', 1, 1, x'0000803f');",
             (long)dead, "00000000-0000-0000-0000-000000000000");
    raw_exec(path, sql);

    struct qstore *s = open_ok(path);
    ck_assert_int_eq(qstore_user_version(s), 2);
    struct qstore_run *r = NULL;
    ck_assert_msg(qstore_run_get(s, 1, &r, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(r->status, "done");
    ck_assert_str_eq(r->recipe_text, "conv*=int8");
    ck_assert_str_eq(r->model_path, "m.safetensors");
    ck_assert_str_eq(r->dataset_path, "d.csv");
    ck_assert_str_eq(r->finished_at, "2024-01-02T03:04:05.678Z");
    ck_assert_int_eq(r->size_bytes, 2208);
    ck_assert(r->bits_per_weight == 8.5);
    ck_assert_str_eq(r->metrics_json, "{\"top1\":98.33}");
    ck_assert_int_eq(r->n_tensors, 2);
    ck_assert_str_eq(r->tensors[0].name, "conv1.weight");
    ck_assert(r->tensors[0].mse == 0.25);
    ck_assert_str_eq(r->tensors[1].name, "fc.bias");
    ck_assert_int_eq(r->n_plugins, 1);
    ck_assert_str_eq(r->plugins[0].name, "int");
    qstore_run_free(r);
    ck_assert_str_eq(get_status(s, 2), "interrupted"); /* the rule ran after the migration */

    /* The new tables work beside the old rows. */
    float *logits = NULL;
    ck_assert_int_eq(qstore_reference_get(s, "aaaa", "dddd", 1, 1, &logits, NULL, &err), 0);
    ck_assert_ptr_nonnull(logits);
    ck_assert(logits[0] == 1.0f);
    free(logits);
    struct qstore_sweep_group g = {S("all"), S("*"), S("[]"), 1, 32};
    char *rhs[] = {S("int:bits=4")};
    struct qstore_sweep sw = {.model_id = 1, .kind = S("classify"), .mode = S("one"), .grouping = S("tensor"),
                              .metric = S("top1"), .n_groups = 1, .groups = &g, .n_schemes = 1, .schemes = rhs};
    int64_t id = 0;
    ck_assert_msg(qstore_sweep_begin(s, &sw, &id, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(id, 1);
    close_ok(s);

    ck_assert_int_eq(raw_int(path, "PRAGMA user_version"), 2);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM runs"), 2);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM run_tensors"), 2);
    ck_assert_str_eq(raw_text(path, "PRAGMA integrity_check"), "ok");
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
}
END_TEST

/* ---- Sweeps: fixtures --------------------------------------------------------------------- */
static struct qstore_sweep_group GROUPS[3] = {
    {S("blk.0"), S("blk.0.*"), S("[\"blk.0.attn_q.weight\",\"blk.0.ffn_up.weight\"]"), 8192, 262144},
    {S("blk.1"), S("blk.1.*"), S("[\"blk.1.attn_q.weight\"]"), 4096, 131072},
    {S("output"), S("output.weight"), S("[\"output.weight\"]"), 32000, 1024000},
};
static char *SCHEMES[2] = {S("int:bits=4"), S("q4_K")};

static struct qstore_sweep sweep_def(int64_t model_id, int64_t dataset_id)
{
    struct qstore_sweep sw = {
        .model_id = model_id,
        .dataset_id = dataset_id,
        .kind = S("lm"),
        .mode = S("one"),
        .grouping = S("block"),
        .metric = S("kld_mean"),
        .params_json = S("{\"n_ctx\":512,\"chunks\":4}"),
        .fixed_bits = 4096000,
        .total_numel = 172288,
        .n_groups = 3,
        .groups = GROUPS,
        .n_schemes = 2,
        .schemes = SCHEMES,
    };
    return sw;
}

static int64_t begin_sweep(struct qstore *s, int64_t model_id, int64_t dataset_id)
{
    struct qstore_sweep sw = sweep_def(model_id, dataset_id);
    int64_t id = 0;
    qerr err = {{0}};
    ck_assert_msg(qstore_sweep_begin(s, &sw, &id, &err) == 0, "%s", err.msg);
    ck_assert_int_gt(id, 0);
    return id;
}

static void put_point(struct qstore *s, int64_t id, int64_t g, int64_t c, double change)
{
    char metrics[64];
    snprintf(metrics, sizeof metrics, "{\"kld_mean\":%.17g}", change);
    struct qstore_sweep_point p = {g, c, S("done"), 1000 * g + c, change, metrics, NULL, 0.5};
    qerr err = {{0}};
    ck_assert_msg(qstore_sweep_point_put(s, id, &p, &err) == 0, "(%lld, %lld): %s", (long long)g, (long long)c,
                  err.msg);
}

static const char *sweep_status(struct qstore *s, int64_t id)
{
    static char buf[32];
    struct qstore_sweep *sw = NULL;
    qerr err = {{0}};
    ck_assert_msg(qstore_sweep_get(s, id, &sw, &err) == 0, "%s", err.msg);
    snprintf(buf, sizeof buf, "%s", sw->status);
    qstore_sweep_free(sw);
    return buf;
}

static void set_sweep(const char *path, const char *column, const char *value, int64_t id)
{
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE sweeps SET %s = %s WHERE id = %lld", column, value, (long long)id);
    raw_exec(path, sql);
}

/* A child blocked on a pipe until *release is closed; its pid. */
static pid_t live_child(int *release)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        char c;
        close(fds[1]);
        while (read(fds[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(fds[0]);
    *release = fds[1];
    return child;
}

/* Makes the child the owner of sweep id, as if it had begun it. */
static void give_sweep(const char *path, int64_t id, pid_t child)
{
    char state, v[64];
    int64_t start;
    ck_assert_int_eq(qstore_proc_stat(child, &state, &start), 0);
    snprintf(v, sizeof v, "%ld", (long)child);
    set_sweep(path, "pid", v, id);
    snprintf(v, sizeof v, "%lld", (long long)start);
    set_sweep(path, "proc_start", v, id);
}

/* ---- Sweeps ---------------------------------------------------------------------------- */
START_TEST(test_sweep_lifecycle)
{
    const char *path = tu_path("sweep.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t mid = add_model(s, &MODEL_A), did = 0;
    ck_assert_int_eq(qstore_dataset_upsert(s, &DATA_A, &did, &err), 0);
    struct qstore_sweep def = sweep_def(mid, did);
    def.mode = S("loo");
    def.grouping = S("glob");
    def.group_spec = S("blk.0.*;blk.1.*;output.weight");
    int64_t id = 0;
    ck_assert_msg(qstore_sweep_begin(s, &def, &id, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(id, 1);
    ck_assert_int_eq(raw_int(path, "SELECT pid FROM sweeps"), getpid());
    char state;
    int64_t start;
    ck_assert_int_eq(qstore_proc_stat(0, &state, &start), 0);
    ck_assert_int_eq(raw_int(path, "SELECT proc_start FROM sweeps"), start);
    ck_assert_str_eq(raw_text(path, "SELECT boot_id FROM sweeps"), s->boot_id);

    /* Points arrive in any order and are read back by group, then scheme. */
    put_point(s, id, 2, 1, 0.75);
    put_point(s, id, 0, 0, 0.1); /* not representable: must come back bit-exact */
    struct qstore_sweep_point failed = {1,   1, S("failed"), 0, 123.0, NULL,
                                        S("q4_K: 4097 columns are not a multiple of 256"), 0.25};
    ck_assert_msg(qstore_sweep_point_put(s, id, &failed, &err) == 0, "%s", err.msg);
    put_point(s, id, 0, 1, -1.0 / 3.0);
    ck_assert(is_iso_ms(raw_text(path, "SELECT committed_at FROM sweep_points LIMIT 1")));

    struct qstore_sweep_point *pts = NULL;
    int n = -1;
    ck_assert_msg(qstore_sweep_points(s, id, &pts, &n, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n, 4);
    const int64_t want_g[] = {0, 0, 1, 2}, want_c[] = {0, 1, 1, 1};
    const double want_change[] = {0.1, -1.0 / 3.0, NAN, 0.75};
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(pts[i].group, want_g[i]);
        ck_assert_int_eq(pts[i].scheme, want_c[i]);
        if (i == 2) {
            ck_assert_str_eq(pts[i].status, "failed");
            ck_assert(isnan(pts[i].change)); /* failed: no change, whatever was passed */
            ck_assert_ptr_null(pts[i].metrics_json);
            ck_assert_str_eq(pts[i].error, "q4_K: 4097 columns are not a multiple of 256");
            ck_assert(pts[i].seconds == 0.25);
            continue;
        }
        char metrics[64];
        snprintf(metrics, sizeof metrics, "{\"kld_mean\":%.17g}", want_change[i]);
        ck_assert_str_eq(pts[i].status, "done");
        ck_assert_int_eq(pts[i].bits, 1000 * want_g[i] + want_c[i]);
        ck_assert(pts[i].change == want_change[i]);
        ck_assert_str_eq(pts[i].metrics_json, metrics);
        ck_assert_ptr_null(pts[i].error);
        ck_assert(pts[i].seconds == 0.5);
    }
    qstore_sweep_points_free(pts, n);

    struct qstore_sweep *sw = NULL;
    ck_assert_msg(qstore_sweep_get(s, id, &sw, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(sw->id, id);
    ck_assert_str_eq(sw->status, "running");
    ck_assert_int_eq(sw->model_id, mid);
    ck_assert_str_eq(sw->model_path, MODEL_A.path);
    ck_assert_str_eq(sw->model_name, MODEL_A.name);
    ck_assert_str_eq(sw->model_sha256, MODEL_A.sha256);
    ck_assert_int_eq(sw->dataset_id, did);
    ck_assert_str_eq(sw->dataset_path, DATA_A.path);
    ck_assert_str_eq(sw->dataset_sha256, DATA_A.sha256);
    ck_assert_str_eq(sw->kind, "lm");
    ck_assert_str_eq(sw->mode, "loo");
    ck_assert_str_eq(sw->grouping, "glob");
    ck_assert_str_eq(sw->group_spec, "blk.0.*;blk.1.*;output.weight");
    ck_assert_str_eq(sw->metric, "kld_mean");
    ck_assert_str_eq(sw->params_json, "{\"n_ctx\":512,\"chunks\":4}");
    ck_assert_int_eq(sw->fixed_bits, 4096000);
    ck_assert_int_eq(sw->total_numel, 172288);
    ck_assert(is_iso_ms(sw->created_at));
    ck_assert_ptr_null(sw->finished_at);
    ck_assert_ptr_null(sw->error);
    ck_assert_int_eq(sw->n_groups, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_str_eq(sw->groups[i].name, GROUPS[i].name);
        ck_assert_str_eq(sw->groups[i].glob, GROUPS[i].glob);
        ck_assert_str_eq(sw->groups[i].tensors_json, GROUPS[i].tensors_json);
        ck_assert_int_eq(sw->groups[i].numel, GROUPS[i].numel);
        ck_assert_int_eq(sw->groups[i].float_bits, GROUPS[i].float_bits);
        ck_assert_ptr_ne(sw->groups[i].name, GROUPS[i].name); /* copies */
    }
    ck_assert_int_eq(sw->n_schemes, 2);
    ck_assert_str_eq(sw->schemes[0], "int:bits=4");
    ck_assert_str_eq(sw->schemes[1], "q4_K");
    ck_assert_int_eq(sw->n_done, 3);
    ck_assert_int_eq(sw->n_failed, 1);
    qstore_sweep_free(sw);

    ck_assert_msg(qstore_sweep_finish(s, id, "done", NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(qstore_sweep_get(s, id, &sw, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(sw->status, "done");
    ck_assert(is_iso_ms(sw->finished_at));
    ck_assert(strcmp(sw->finished_at, sw->created_at) >= 0);
    ck_assert_ptr_null(sw->error);
    ck_assert_int_eq(sw->n_done, 3);
    qstore_sweep_free(sw);

    /* Done is final: no more points, no second finish, no claim. */
    char want[1200];
    snprintf(want, sizeof want, "%s: sweep 1 is not running (status done)", path);
    struct qstore_sweep_point late = {1, 0, S("done"), 5, 0.5, S("{}"), NULL, 1.0};
    ck_assert_int_eq(qstore_sweep_point_put(s, id, &late, &err), -1);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(qstore_sweep_finish(s, id, "failed", "late", &err), -1);
    ck_assert_str_eq(err.msg, want);
    snprintf(want, sizeof want, "%s: sweep 1 is done", path);
    ck_assert_int_eq(qstore_sweep_claim(s, id, &err), -1);
    ck_assert_str_eq(err.msg, want);

    /* A failed sweep keeps its error. */
    int64_t id2 = begin_sweep(s, mid, 0);
    ck_assert_int_eq(qstore_sweep_finish(s, id2, "failed", "out of memory", &err), 0);
    ck_assert_msg(qstore_sweep_get(s, id2, &sw, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(sw->status, "failed");
    ck_assert_str_eq(sw->error, "out of memory");
    ck_assert_int_eq(sw->dataset_id, 0);
    ck_assert_ptr_null(sw->dataset_path);
    ck_assert_ptr_null(sw->group_spec);
    ck_assert_int_eq(sw->n_done + sw->n_failed, 0);
    qstore_sweep_free(sw);
    ck_assert_msg(qstore_sweep_points(s, id2, &pts, &n, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_null(pts);

    qstore_sweep_free(NULL);
    qstore_sweeps_free(NULL, 0);
    qstore_sweep_points_free(NULL, 0);
    close_ok(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sweep_points"), 4);
    ck_assert_str_eq(raw_text(path, "SELECT typeof(change) FROM sweep_points WHERE status = 'failed'"), "null");
}
END_TEST

START_TEST(test_sweeps_list_filters)
{
    const char *path = tu_path("sweeplist.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    struct qstore_model a = MODEL_A, b = MODEL_A, c = MODEL_A;
    b.path = "models/b.safetensors";
    b.sha256 = "bbbb";
    c.sha256 = "cccc"; /* same path as a, new content */
    int64_t ma = add_model(s, &a), mb = add_model(s, &b), mc = add_model(s, &c);
    int64_t owner[] = {ma, mb, mc, ma, mb}; /* sweeps 1..5 */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(begin_sweep(s, owner[i], 0), i + 1);
    put_point(s, 4, 1, 1, 2.0);
    put_point(s, 4, 2, 0, 3.0);

    struct {
        const char *path, *sha;
        int limit, n;
        int64_t ids[5];
    } cases[] = {
        {NULL, NULL, 0, 5, {5, 4, 3, 2, 1}},
        {a.path, NULL, 0, 3, {4, 3, 1}},
        {NULL, "bbbb", 0, 2, {5, 2}},
        {b.path, "cccc", 0, 3, {5, 3, 2}},
        {NULL, NULL, 2, 2, {5, 4}},
        {a.path, NULL, 2, 2, {4, 3}},
        {NULL, "aaaa1111", 1, 1, {4}},
        {"models/none", NULL, 0, 0, {0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct qstore_run_filter f = {cases[k].path, cases[k].sha, cases[k].limit};
        struct qstore_sweep *sw = NULL;
        int n = -1;
        ck_assert_msg(qstore_sweeps_list(s, &f, &sw, &n, &err) == 0, "%s", err.msg);
        ck_assert_msg(n == cases[k].n, "case %zu: %d sweeps", k, n);
        for (int i = 0; i < n; i++) {
            ck_assert_msg(sw[i].id == cases[k].ids[i], "case %zu row %d: sweep %lld", k, i, (long long)sw[i].id);
            ck_assert_int_eq(sw[i].model_id, owner[sw[i].id - 1]);
            ck_assert_str_eq(sw[i].status, "running");
            ck_assert_str_eq(sw[i].metric, "kld_mean");
            ck_assert_int_eq(sw[i].n_groups, 3); /* lists count groups and schemes ... */
            ck_assert_ptr_null(sw[i].groups);    /* ... without reading them */
            ck_assert_int_eq(sw[i].n_schemes, 2);
            ck_assert_ptr_null(sw[i].schemes);
            ck_assert_int_eq(sw[i].n_done, sw[i].id == 4 ? 2 : 0);
        }
        if (n == 0)
            ck_assert_ptr_null(sw);
        qstore_sweeps_free(sw, n);
    }
    close_ok(s);
}
END_TEST

START_TEST(test_sweep_bad_input)
{
    const char *p = tu_path("sweepbad.db");
    char path[1024];
    snprintf(path, sizeof path, "%s", p);
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t mid = add_model(s, &MODEL_A);
    int64_t id = begin_sweep(s, mid, 0);
    put_point(s, id, 1, 0, 0.5);

    /* A point stored twice names its group and scheme; the first stays. */
    char want[1200];
    struct qstore_sweep_point again = {1, 0, S("done"), 7, 9.0, S("{\"again\":1}"), NULL, 1.0};
    ck_assert_int_eq(qstore_sweep_point_put(s, id, &again, &err), -1);
    snprintf(want, sizeof want, "%s: sweep 1: the point of group 1 'blk.1', scheme 0 'int:bits=4' is already stored",
             path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_str_eq(raw_text(path, "SELECT metrics_json FROM sweep_points"), "{\"kld_mean\":0.5}");
    again.status = S("failed"); /* a failed point does not replace a done one either */
    ck_assert_int_eq(qstore_sweep_point_put(s, id, &again, &err), -1);
    ck_assert_str_eq(err.msg, want);

    /* Outside the groups x schemes, a bad status, an unknown sweep. */
    const int64_t outside[][2] = {{3, 0}, {0, 2}, {-1, 0}, {0, -1}, {INT64_MAX, 0}};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        struct qstore_sweep_point q = {outside[i][0], outside[i][1], S("done"), 1, 0.0, NULL, NULL, 0.0};
        ck_assert_int_eq(qstore_sweep_point_put(s, id, &q, &err), -1);
        ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "outside its 3 groups x 2 schemes"), "%s",
                      err.msg);
    }
    struct qstore_sweep_point q = {0, 0, S("skipped"), 1, 0.0, NULL, NULL, 0.0};
    ck_assert_int_eq(qstore_sweep_point_put(s, id, &q, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "'skipped' is not done or failed"), "%s", err.msg);
    q.status = NULL;
    ck_assert_int_eq(qstore_sweep_point_put(s, id, &q, &err), -1);
    q.status = S("done");
    ck_assert_int_eq(qstore_sweep_point_put(s, 99, &q, &err), -1);
    snprintf(want, sizeof want, "no sweep 99 in %s", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(qstore_sweep_finish(s, 99, "done", NULL, &err), -1);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(qstore_sweep_claim(s, 99, &err), -1);
    ck_assert_str_eq(err.msg, want);
    struct qstore_sweep *sw = (struct qstore_sweep *)1;
    ck_assert_int_eq(qstore_sweep_get(s, 99, &sw, &err), -1);
    ck_assert_str_eq(err.msg, want);
    ck_assert_ptr_null(sw);
    struct qstore_sweep_point *pts = (struct qstore_sweep_point *)1;
    int n = -1;
    ck_assert_int_eq(qstore_sweep_points(s, 99, &pts, &n, &err), -1);
    ck_assert_str_eq(err.msg, want);
    ck_assert_ptr_null(pts);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(qstore_sweep_finish(s, id, "interrupted", NULL, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "'interrupted'"), "%s", err.msg);
    ck_assert_int_eq(qstore_sweep_finish(s, id, NULL, NULL, &err), -1);
    ck_assert_str_eq(sweep_status(s, id), "running");

    /* Beginning: a list missing, a group without a name (the second), an
     * unknown model. Nothing half-made is kept. */
    struct qstore_sweep def = sweep_def(mid, 0);
    def.groups = NULL;
    int64_t nid = -5;
    ck_assert_int_eq(qstore_sweep_begin(s, &def, &nid, &err), -1);
    ck_assert_msg(starts_with(err.msg, path), "%s", err.msg);
    struct qstore_sweep_group bad[2] = {GROUPS[0], GROUPS[1]};
    bad[1].name = NULL;
    def.groups = bad;
    def.n_groups = 2;
    ck_assert_int_eq(qstore_sweep_begin(s, &def, &nid, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "group 1") && strstr(err.msg, "NOT NULL"), "%s",
                  err.msg);
    def = sweep_def(777, 0);
    ck_assert_int_eq(qstore_sweep_begin(s, &def, &nid, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "FOREIGN KEY"), "%s", err.msg);
    ck_assert_int_eq(nid, -5);
    close_ok(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sweeps"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sweep_groups"), 3);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sweep_schemes"), 2);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sweep_points"), 1);
}
END_TEST

/* Deleting a sweep takes its groups, schemes, points and searches along. */
START_TEST(test_sweep_delete_cascades)
{
    const char *path = tu_path("cascade.db");
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t mid = add_model(s, &MODEL_A);
    int64_t keep = begin_sweep(s, mid, 0), gone = begin_sweep(s, mid, 0);
    put_point(s, keep, 0, 0, 1.0);
    put_point(s, gone, 0, 0, 1.0);
    put_point(s, gone, 1, 1, 1.0);
    struct qstore_search_point sp = {0, 100, 0.5, S("*=q4_K"), NULL, 1, 0, NAN};
    struct qstore_search se = {.sweep_id = gone, .status = S("done"), .budget_text = S("4bpw"), .n_points = 1,
                               .points = &sp};
    int64_t sid = 0;
    ck_assert_msg(qstore_search_put(s, &se, &sid, &err) == 0, "%s", err.msg);
    se.sweep_id = keep;
    ck_assert_msg(qstore_search_put(s, &se, &sid, &err) == 0, "%s", err.msg);
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM sweeps WHERE id = %lld", (long long)gone);
    ck_assert_msg(qstore_exec(s->db, path, sql, &err) == 0, "%s", err.msg);
    close_ok(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sweep_groups"), 3);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sweep_schemes"), 2);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sweep_points"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM searches"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM search_points"), 1);
    ck_assert_int_eq(raw_int(path, "SELECT sweep_id FROM searches"), keep);
}
END_TEST

/* ---- Sweeps: claim and the interrupted rule ------------------------------------------------ */
START_TEST(test_sweep_claim_rules)
{
    const char *p = tu_path("claim.db");
    char path[1024];
    snprintf(path, sizeof path, "%s", p);
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t mid = add_model(s, &MODEL_A);
    char want[1200];

    /* Running here: this process is alive, so it cannot claim it again. */
    int64_t mine = begin_sweep(s, mid, 0);
    ck_assert_int_eq(qstore_sweep_claim(s, mine, &err), -1);
    snprintf(want, sizeof want, "%s: sweep %lld is running in process %ld", path, (long long)mine, (long)getpid());
    ck_assert_str_eq(err.msg, want);

    /* Running in another live process: no claim, no points, no finish from here. */
    int64_t theirs = begin_sweep(s, mid, 0);
    put_point(s, theirs, 0, 0, 0.25);
    int release;
    pid_t child = live_child(&release);
    give_sweep(path, theirs, child);
    ck_assert_int_eq(qstore_sweep_claim(s, theirs, &err), -1);
    snprintf(want, sizeof want, "%s: sweep %lld is running in process %ld", path, (long long)theirs, (long)child);
    ck_assert_str_eq(err.msg, want);
    struct qstore_sweep_point pt = {1, 0, S("done"), 1, 0.5, S("{}"), NULL, 1.0};
    ck_assert_int_eq(qstore_sweep_point_put(s, theirs, &pt, &err), -1);
    snprintf(want, sizeof want, "%s: sweep %lld is running in process %ld, not this one", path, (long long)theirs,
             (long)child);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(qstore_sweep_finish(s, theirs, "cancelled", NULL, &err), -1);
    ck_assert_str_eq(err.msg, want);
    ck_assert_str_eq(sweep_status(s, theirs), "running");

    /* It ends (a zombie, not yet reaped): interrupted, then ours to resume. */
    close(release);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    ck_assert_int_eq(waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT), 0);
    struct qstore_sweep *sw = NULL;
    ck_assert_int_eq(qstore_sweep_get(s, theirs, &sw, &err), 0);
    ck_assert_str_eq(sw->status, "interrupted");
    snprintf(want, sizeof want, "process %ld ended without finishing the sweep", (long)child);
    ck_assert_str_eq(sw->error, want);
    ck_assert_ptr_null(sw->finished_at);
    ck_assert_int_eq(sw->n_done, 1);
    qstore_sweep_free(sw);
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert_msg(qstore_sweep_claim(s, theirs, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(qstore_sweep_get(s, theirs, &sw, &err), 0);
    ck_assert_str_eq(sw->status, "running");
    ck_assert_ptr_null(sw->error);
    qstore_sweep_free(sw);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pid FROM sweeps WHERE id = %lld", (long long)theirs);
    ck_assert_int_eq(raw_int(path, sql), getpid());
    ck_assert_msg(qstore_sweep_point_put(s, theirs, &pt, &err) == 0, "%s", err.msg);
    ck_assert_msg(qstore_sweep_finish(s, theirs, "done", NULL, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(sweep_status(s, theirs), "done");

    /* Cancelled and failed sweeps are claimable too, and lose their end state. */
    const char *ends[] = {"cancelled", "failed"};
    for (int i = 0; i < 2; i++) {
        int64_t id = begin_sweep(s, mid, 0);
        ck_assert_int_eq(qstore_sweep_finish(s, id, ends[i], "stopped", &err), 0);
        ck_assert_msg(qstore_sweep_claim(s, id, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(qstore_sweep_get(s, id, &sw, &err), 0);
        ck_assert_str_eq(sw->status, "running");
        ck_assert_ptr_null(sw->error);
        ck_assert_ptr_null(sw->finished_at);
        qstore_sweep_free(sw);
        put_point(s, id, 2, 1, 1.5);
    }

    /* A running sweep whose owner died is claimable even before the rule
     * has marked it (the raw write below bypasses the rule). */
    pid_t dead = dead_child();
    char v[32];
    snprintf(v, sizeof v, "%ld", (long)dead);
    set_sweep(path, "pid", v, mine);
    ck_assert_msg(qstore_sweep_claim(s, mine, &err) == 0, "%s", err.msg);
    snprintf(sql, sizeof sql, "SELECT pid FROM sweeps WHERE id = %lld", (long long)mine);
    ck_assert_int_eq(raw_int(path, sql), getpid());
    close_ok(s);
}
END_TEST

/* Run as `check_store --claim DB ID REPORT_FD RELEASE_FD` in two processes
 * at once: each reports 'y' (claimed) or 'n' (refused: running elsewhere)
 * on REPORT_FD, then waits for RELEASE_FD to close so the winner is alive
 * while the loser tries. */
static int claim_main(const char *path, long long id, int report, int release)
{
    struct qstore *s = NULL;
    qerr err = {{0}};
    char verdict = 'e';
    if (qstore_open(path, &s, &err) == 0) {
        if (qstore_sweep_claim(s, id, &err) == 0)
            verdict = 'y';
        else if (strstr(err.msg, "is running in process"))
            verdict = 'n';
        else
            fprintf(stderr, "claimer: %s\n", err.msg);
    }
    qstore_close(s);
    if (write(report, &verdict, 1) != 1)
        return 2;
    char c;
    while (read(release, &c, 1) < 0 && errno == EINTR)
        ;
    return 0;
}

START_TEST(test_sweep_claim_race)
{
    const char *p = tu_path("race.db");
    char path[1024];
    snprintf(path, sizeof path, "%s", p);
    struct qstore *s = open_ok(path);
    int64_t id = begin_sweep(s, add_model(s, &MODEL_A), 0);
    close_ok(s);
    set_sweep(path, "status", "'interrupted'", id);

    /* Close-on-exec, but for the two ends a claimer uses: a claimer holding
     * the release pipe's write end would wait for itself. */
    int report[2], release[2];
    ck_assert_int_eq(pipe2(report, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(release, O_CLOEXEC), 0);
    char idtext[32], rtext[16], ltext[16];
    snprintf(idtext, sizeof idtext, "%lld", (long long)id);
    snprintf(rtext, sizeof rtext, "%d", report[1]);
    snprintf(ltext, sizeof ltext, "%d", release[0]);
    pid_t kids[2];
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            if (fcntl(report[1], F_SETFD, 0) || fcntl(release[0], F_SETFD, 0))
                _exit(126);
            char *argv[] = {S("check_store"), S("--claim"), path, idtext, rtext, ltext, NULL};
            execv("/proc/self/exe", argv);
            _exit(127);
        }
    }
    close(report[1]);
    close(release[0]);
    char got[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(read(report[0], &got[i], 1), 1);
    close(report[0]);
    ck_assert_msg((got[0] == 'y' && got[1] == 'n') || (got[0] == 'n' && got[1] == 'y'), "verdicts %c %c", got[0],
                  got[1]);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pid FROM sweeps WHERE id = %lld", (long long)id);
    int64_t owner = raw_int(path, sql);
    ck_assert_msg(owner == kids[0] || owner == kids[1], "owner %lld", (long long)owner);
    close(release[1]);
    for (int i = 0; i < 2; i++) {
        int st;
        ck_assert_int_eq(waitpid(kids[i], &st, 0), kids[i]);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    /* The winner ended without finishing: interrupted once more. */
    s = open_ok(path);
    ck_assert_str_eq(sweep_status(s, id), "interrupted");
    close_ok(s);
}
END_TEST

START_TEST(test_sweep_interrupted_rule)
{
    const char *p = tu_path("sweepdead.db");
    char path[1024];
    snprintf(path, sizeof path, "%s", p);

    /* A process begins a sweep, stores a point and exits without finishing. */
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        struct qstore *cs = NULL;
        qerr cerr = {{0}};
        int64_t mid = 0, id = 0;
        struct qstore_sweep def = sweep_def(0, 0);
        struct qstore_sweep_point pt = {0, 1, S("done"), 100, 0.125, S("{}"), NULL, 1.0};
        if (qstore_open(path, &cs, &cerr) || qstore_model_upsert(cs, &MODEL_A, &mid, &cerr))
            _exit(2);
        def.model_id = mid;
        if (qstore_sweep_begin(cs, &def, &id, &cerr) || qstore_sweep_point_put(cs, id, &pt, &cerr))
            _exit(3);
        _exit(0); /* no finish, no close */
    }
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_str_eq(raw_text(path, "SELECT status FROM sweeps"), "running");

    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    ck_assert_str_eq(raw_text(path, "SELECT status FROM sweeps"), "interrupted"); /* marked at open */
    struct qstore_sweep *sw = NULL;
    ck_assert_int_eq(qstore_sweep_get(s, 1, &sw, &err), 0);
    ck_assert_str_eq(sw->status, "interrupted");
    char want[128];
    snprintf(want, sizeof want, "process %ld ended without finishing the sweep", (long)child);
    ck_assert_str_eq(sw->error, want);
    ck_assert_ptr_null(sw->finished_at);
    ck_assert_int_eq(sw->n_done, 1);
    qstore_sweep_free(sw);

    /* Resumed here: the stored point stays, the rest are added. */
    ck_assert_msg(qstore_sweep_claim(s, 1, &err) == 0, "%s", err.msg);
    for (int g = 0; g < 3; g++)
        for (int c = 0; c < 2; c++)
            if (!(g == 0 && c == 1))
                put_point(s, 1, g, c, g + c / 4.0);
    ck_assert_int_eq(qstore_sweep_finish(s, 1, "done", NULL, &err), 0);
    ck_assert_int_eq(qstore_sweep_get(s, 1, &sw, &err), 0);
    ck_assert_str_eq(sw->status, "done");
    ck_assert_int_eq(sw->n_done, 6);
    qstore_sweep_free(sw);

    /* Listing and getting apply the rule without reopening; only running
     * sweeps change. */
    int64_t gone = begin_sweep(s, 1, 0), other_boot = begin_sweep(s, 1, 0), reused = begin_sweep(s, 1, 0),
            live = begin_sweep(s, 1, 0);
    pid_t dead = dead_child();
    char v[64];
    snprintf(v, sizeof v, "%ld", (long)dead);
    set_sweep(path, "pid", v, gone);
    set_sweep(path, "pid", v, 1); /* done: stays done */
    set_sweep(path, "boot_id", "'00000000-0000-0000-0000-000000000000'", other_boot);
    set_sweep(path, "proc_start", "proc_start + 1", reused);
    struct qstore_sweep *list = NULL;
    int n = 0;
    ck_assert_msg(qstore_sweeps_list(s, NULL, &list, &n, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n, 5);
    const int64_t ids[] = {live, reused, other_boot, gone, 1};
    const char *const status[] = {"running", "interrupted", "interrupted", "interrupted", "done"};
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(list[i].id, ids[i]);
        ck_assert_str_eq(list[i].status, status[i]);
    }
    qstore_sweeps_free(list, n);
    snprintf(want, sizeof want, "process %ld ended without finishing the sweep", (long)dead);
    ck_assert_int_eq(qstore_sweep_get(s, gone, &sw, &err), 0);
    ck_assert_str_eq(sw->error, want);
    qstore_sweep_free(sw);

    /* An interrupted sweep takes no points until claimed. */
    struct qstore_sweep_point pt = {0, 0, S("done"), 1, 0.5, S("{}"), NULL, 1.0};
    ck_assert_int_eq(qstore_sweep_point_put(s, gone, &pt, &err), -1);
    ck_assert_msg(strstr(err.msg, "is not running (status interrupted)"), "%s", err.msg);
    close_ok(s);
}
END_TEST

/* ---- Crash consistency: SIGKILL in the middle of committing points ---------------------------- */
enum { CRASH_GROUPS = 100, CRASH_SCHEMES = 50, CRASH_PAD = 1500 };

/* The point (g, c) the crashing child stores: metrics long enough to span
 * pages, derived from (g, c) so a torn or mixed row shows. */
static void crash_point(int g, int c, char *metrics, size_t n, struct qstore_sweep_point *p)
{
    int len = snprintf(metrics, n, "{\"g\":%d,\"c\":%d,\"pad\":\"", g, c);
    for (int i = 0; i < CRASH_PAD && (size_t)len + 3 < n; i++)
        metrics[len++] = (char)('a' + (g * 7 + c * 13 + i) % 26);
    snprintf(metrics + len, n - (size_t)len, "\"}");
    *p = (struct qstore_sweep_point){g, c, S("done"), 1000 * (int64_t)g + c, g + c / 64.0, metrics, NULL, 0.001 * c};
}

/* In the child: begins the sweep, tells the parent after the 5th point,
 * and goes on storing until killed. Never returns. */
static void crash_child(const char *path, int tell)
{
    struct qstore *s = NULL;
    qerr err = {{0}};
    int64_t mid = 0, id = 0;
    if (qstore_open(path, &s, &err) || qstore_model_upsert(s, &MODEL_A, &mid, &err))
        _exit(2);
    static struct qstore_sweep_group groups[CRASH_GROUPS];
    static char names[CRASH_GROUPS][16];
    static char *schemes[CRASH_SCHEMES];
    for (int g = 0; g < CRASH_GROUPS; g++) {
        snprintf(names[g], sizeof names[g], "g%d", g);
        groups[g] = (struct qstore_sweep_group){names[g], names[g], S("[]"), 64, 2048};
    }
    for (int c = 0; c < CRASH_SCHEMES; c++)
        schemes[c] = S("int:bits=4");
    struct qstore_sweep def = sweep_def(mid, 0);
    def.groups = groups;
    def.n_groups = CRASH_GROUPS;
    def.schemes = schemes;
    def.n_schemes = CRASH_SCHEMES;
    if (qstore_sweep_begin(s, &def, &id, &err))
        _exit(3);
    int stored = 0;
    static char metrics[CRASH_PAD + 64];
    for (int g = 0; g < CRASH_GROUPS; g++)
        for (int c = 0; c < CRASH_SCHEMES; c++) {
            struct qstore_sweep_point p;
            crash_point(g, c, metrics, sizeof metrics, &p);
            if (qstore_sweep_point_put(s, id, &p, &err))
                _exit(4);
            if (++stored == 5 && write(tell, "5", 1) != 1)
                _exit(5);
        }
    for (;;) /* all stored before the kill: the parent sees it and fails */
        pause();
}

START_TEST(test_sweep_crash_consistency)
{
    const char *p = tu_path("crash.db");
    char path[1024];
    snprintf(path, sizeof path, "%s", p);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        close(fds[0]);
        crash_child(path, fds[1]);
    }
    close(fds[1]);
    char c = 0;
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    close(fds[0]);
    usleep(20000); /* let it commit some more, then kill it mid-loop */
    ck_assert_int_eq(kill(child, SIGKILL), 0);
    int st;
    ck_assert_int_eq(waitpid(child, &st, 0), child);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);

    ck_assert_str_eq(raw_text(path, "PRAGMA integrity_check"), "ok");
    int64_t stored = raw_int(path, "SELECT count(*) FROM sweep_points");
    ck_assert_int_ge(stored, 5);
    ck_assert_msg(stored < CRASH_GROUPS * CRASH_SCHEMES, "the child stored every point before the kill");

    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    struct qstore_sweep *sw = NULL;
    ck_assert_int_eq(qstore_sweep_get(s, 1, &sw, &err), 0);
    ck_assert_str_eq(sw->status, "interrupted");
    ck_assert_int_eq(sw->n_done, stored);
    ck_assert_int_eq(sw->n_failed, 0);
    ck_assert_int_eq(sw->n_groups, CRASH_GROUPS);
    qstore_sweep_free(sw);

    /* Whole points, exactly the first `stored` in the order they were put. */
    struct qstore_sweep_point *pts = NULL;
    int n = 0;
    ck_assert_msg(qstore_sweep_points(s, 1, &pts, &n, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n, stored);
    static char metrics[CRASH_PAD + 64];
    for (int i = 0; i < n; i++) {
        struct qstore_sweep_point want;
        crash_point(i / CRASH_SCHEMES, i % CRASH_SCHEMES, metrics, sizeof metrics, &want);
        ck_assert_int_eq(pts[i].group, want.group);
        ck_assert_int_eq(pts[i].scheme, want.scheme);
        ck_assert_str_eq(pts[i].status, "done");
        ck_assert_int_eq(pts[i].bits, want.bits);
        ck_assert(pts[i].change == want.change);
        ck_assert(pts[i].seconds == want.seconds);
        ck_assert_str_eq(pts[i].metrics_json, want.metrics_json);
    }
    qstore_sweep_points_free(pts, n);

    /* And it resumes where it stopped. */
    ck_assert_msg(qstore_sweep_claim(s, 1, &err) == 0, "%s", err.msg);
    struct qstore_sweep_point next;
    crash_point((int)(stored / CRASH_SCHEMES), (int)(stored % CRASH_SCHEMES), metrics, sizeof metrics, &next);
    ck_assert_msg(qstore_sweep_point_put(s, 1, &next, &err) == 0, "%s", err.msg);
    close_ok(s);
}
END_TEST

/* ---- Searches ---------------------------------------------------------------------------------- */
START_TEST(test_search_roundtrip)
{
    const char *p = tu_path("search.db");
    char path[1024];
    snprintf(path, sizeof path, "%s", p);
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    struct qstore_model b = MODEL_A;
    b.path = "models/b.safetensors";
    b.sha256 = "bbbb";
    int64_t ma = add_model(s, &MODEL_A), mb = add_model(s, &b);
    int64_t swa = begin_sweep(s, ma, 0), swb = begin_sweep(s, mb, 0);

    /* Given out of order; read back by idx. */
    struct qstore_search_point pts[3] = {
        {2, 4096000, 0.0, S("*=float"), S("{\"rules\":[]}"), 0, 0, NAN},
        {0, 1200000, 0.75, S("*=int:bits=2"), S("{\"rules\":[2]}"), 0, 0, NAN},
        {1, 2400000, 0.1, S("blk.0.*=q4_K;*=int:bits=4"), S("{\"rules\":[4]}"), 1, 0, NAN},
    };
    struct qstore_search se = {.sweep_id = swa,
                               .status = S("done"),
                               .budget_text = S("4.5bpw"),
                               .budget_bits = 2500000,
                               .ties_json = S("[\"blk.*.attn_[qkv].weight\"]"),
                               .n_points = 3,
                               .points = pts};
    int64_t sid = 0;
    ck_assert_msg(qstore_search_put(s, &se, &sid, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(sid, 1);

    struct qstore_search *got = NULL;
    ck_assert_msg(qstore_search_get(s, sid, &got, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(got->id, sid);
    ck_assert_int_eq(got->sweep_id, swa);
    ck_assert_str_eq(got->status, "done");
    ck_assert_str_eq(got->budget_text, "4.5bpw");
    ck_assert_int_eq(got->budget_bits, 2500000);
    ck_assert_str_eq(got->ties_json, "[\"blk.*.attn_[qkv].weight\"]");
    ck_assert(is_iso_ms(got->created_at));
    ck_assert_int_eq(got->n_points, 3);
    const int order[] = {1, 2, 0}; /* pts[] index of idx 0, 1, 2 */
    for (int i = 0; i < 3; i++) {
        const struct qstore_search_point *a = &got->points[i], *w = &pts[order[i]];
        ck_assert_int_eq(a->idx, i);
        ck_assert_int_eq(a->bits, w->bits);
        ck_assert(a->predicted == w->predicted);
        ck_assert_str_eq(a->recipe_text, w->recipe_text);
        ck_assert_str_eq(a->recipe_json, w->recipe_json);
        ck_assert_int_eq(a->is_optimum, w->is_optimum);
        ck_assert_int_eq(a->run_id, 0);
        ck_assert(isnan(a->measured));
    }
    qstore_search_free(got);

    /* Verify the optimum with a real run. */
    int64_t rid = begin_run(s, ma, 0, "blk.0.*=q4_K;*=int:bits=4");
    ck_assert_msg(qstore_search_verify(s, sid, 1, rid, 0.09375, &err) == 0, "%s", err.msg);
    ck_assert_msg(qstore_search_get(s, sid, &got, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(got->points[1].run_id, rid);
    ck_assert(got->points[1].measured == 0.09375);
    ck_assert_int_eq(got->points[0].run_id, 0);
    ck_assert(isnan(got->points[0].measured));
    qstore_search_free(got);

    char want[1200];
    ck_assert_int_eq(qstore_search_verify(s, sid, 7, rid, 0.5, &err), -1);
    snprintf(want, sizeof want, "%s: search 1 has no point 7", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(qstore_search_verify(s, 9, 0, rid, 0.5, &err), -1);
    snprintf(want, sizeof want, "no search 9 in %s", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(qstore_search_verify(s, sid, 0, 4242, 0.5, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "FOREIGN KEY"), "%s", err.msg);
    struct qstore_search *none = (struct qstore_search *)1;
    ck_assert_int_eq(qstore_search_get(s, 42, &none, &err), -1);
    snprintf(want, sizeof want, "no search 42 in %s", path);
    ck_assert_str_eq(err.msg, want);
    ck_assert_ptr_null(none);

    /* Searches 2 (sweep a, failed, no points) and 3 (sweep b). */
    struct qstore_search se2 = {.sweep_id = swa, .status = S("failed"), .budget_text = S("1B"), .budget_bits = 8};
    int64_t sid2 = 0, sid3 = 0;
    ck_assert_msg(qstore_search_put(s, &se2, &sid2, &err) == 0, "%s", err.msg);
    se.sweep_id = swb;
    ck_assert_msg(qstore_search_put(s, &se, &sid3, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(sid2, 2);
    ck_assert_int_eq(sid3, 3);

    struct {
        int64_t sweep;
        const char *path, *sha;
        int limit, n;
        int64_t ids[3];
    } cases[] = {
        {0, NULL, NULL, 0, 3, {3, 2, 1}},
        {swa, NULL, NULL, 0, 2, {2, 1}},
        {swb, NULL, NULL, 0, 1, {3}},
        {0, "models/b.safetensors", NULL, 0, 1, {3}},
        {0, NULL, MODEL_A.sha256, 0, 2, {2, 1}},
        {0, NULL, NULL, 2, 2, {3, 2}},
        {swb, MODEL_A.path, NULL, 0, 0, {0}},
        {99, NULL, NULL, 0, 0, {0}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct qstore_run_filter f = {cases[k].path, cases[k].sha, cases[k].limit};
        struct qstore_search *list = NULL;
        int n = -1;
        ck_assert_msg(qstore_searches_list(s, cases[k].sweep, &f, &list, &n, &err) == 0, "%s", err.msg);
        ck_assert_msg(n == cases[k].n, "case %zu: %d searches", k, n);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(list[i].id, cases[k].ids[i]);
            ck_assert_int_eq(list[i].n_points, 0); /* lists carry no points */
            ck_assert_ptr_null(list[i].points);
        }
        qstore_searches_free(list, n);
    }
    struct qstore_search *all = NULL;
    int n_all = 0;
    ck_assert_int_eq(qstore_searches_list(s, 0, NULL, &all, &n_all, &err), 0);
    ck_assert_int_eq(n_all, 3);
    ck_assert_str_eq(all[1].status, "failed");
    ck_assert_ptr_null(all[1].ties_json);
    qstore_searches_free(all, n_all);

    /* Puts are whole: a repeated idx or an unknown sweep stores nothing. */
    pts[2].idx = 0;
    se.sweep_id = swa;
    int64_t bad = -1;
    ck_assert_int_eq(qstore_search_put(s, &se, &bad, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "point 0") && strstr(err.msg, "UNIQUE"), "%s",
                  err.msg);
    pts[2].idx = 2;
    se.sweep_id = 555;
    ck_assert_int_eq(qstore_search_put(s, &se, &bad, &err), -1);
    ck_assert_msg(starts_with(err.msg, path) && strstr(err.msg, "FOREIGN KEY"), "%s", err.msg);
    se.sweep_id = swa;
    se.points = NULL;
    ck_assert_int_eq(qstore_search_put(s, &se, &bad, &err), -1);
    ck_assert_int_eq(bad, -1);
    qstore_search_free(NULL);
    qstore_searches_free(NULL, 0);
    close_ok(s);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM searches"), 3);
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM search_points"), 6);
}
END_TEST

/* ---- NaN: REAL columns hold NULL for NaN and give NAN back ------------------------------------ */
START_TEST(test_nan_roundtrip)
{
    const char *p = tu_path("nan.db");
    char path[1024];
    snprintf(path, sizeof path, "%s", p);
    struct qstore *s = open_ok(path);
    qerr err = {{0}};
    int64_t id = begin_sweep(s, add_model(s, &MODEL_A), 0);
    /* SQLite keeps no sign on a zero (it stores 0.0 as an integer): -0.0 reads 0.0. */
    const double changes[] = {NAN, INFINITY, -INFINITY, 0.1, DBL_MIN / 4, -DBL_MAX};
    for (int i = 0; i < 6; i++) {
        struct qstore_sweep_point pt = {i / 2, i % 2, S("done"), 1, changes[i], NULL, NULL, i == 0 ? NAN : 1.0};
        ck_assert_msg(qstore_sweep_point_put(s, id, &pt, &err) == 0, "%s", err.msg);
    }
    ck_assert_str_eq(raw_text(path, "SELECT typeof(change) || typeof(seconds) FROM sweep_points"
                                    " WHERE group_idx = 0 AND scheme_idx = 0"),
                     "nullnull");
    struct qstore_sweep_point *pts = NULL;
    int n = 0;
    ck_assert_msg(qstore_sweep_points(s, id, &pts, &n, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(n, 6);
    ck_assert(isnan(pts[0].change));
    ck_assert(isnan(pts[0].seconds));
    ck_assert(pts[1].seconds == 1.0);
    for (int i = 1; i < 6; i++)
        ck_assert_msg(memcmp(&pts[i].change, &changes[i], sizeof(double)) == 0, "point %d: %a", i, pts[i].change);
    qstore_sweep_points_free(pts, n);

    struct qstore_search_point sp[2] = {{0, 8, NAN, S("*=float"), NULL, 0, 0, NAN},
                                        {1, 4, INFINITY, S("*=int:bits=4"), NULL, 1, 0, -0.0}};
    struct qstore_search se = {.sweep_id = id, .status = S("done"), .n_points = 2, .points = sp};
    int64_t sid = 0;
    ck_assert_msg(qstore_search_put(s, &se, &sid, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(raw_text(path, "SELECT typeof(predicted) || typeof(measured) FROM search_points WHERE idx = 0"),
                     "nullnull");
    struct qstore_search *got = NULL;
    ck_assert_msg(qstore_search_get(s, sid, &got, &err) == 0, "%s", err.msg);
    ck_assert(isnan(got->points[0].predicted) && isnan(got->points[0].measured));
    ck_assert(isinf(got->points[1].predicted) && got->points[1].predicted > 0);
    ck_assert(got->points[1].measured == 0.0);
    ck_assert_ptr_null(got->budget_text);
    ck_assert_ptr_null(got->points[0].recipe_json);
    qstore_search_free(got);

    /* A verification that measured NaN stores NULL, and reads NAN. */
    int64_t rid = begin_run(s, 1, 0, "*=int:bits=4");
    ck_assert_int_eq(qstore_search_verify(s, sid, 1, rid, NAN, &err), 0);
    ck_assert_str_eq(raw_text(path, "SELECT typeof(measured) FROM search_points WHERE idx = 1"), "null");
    ck_assert_msg(qstore_search_get(s, sid, &got, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(got->points[1].run_id, rid);
    ck_assert(isnan(got->points[1].measured));
    qstore_search_free(got);
    close_ok(s);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------------ */
static Suite *store_suite(void)
{
    Suite *s = suite_create("store");

    TCase *schema = tcase_create("Schema");
    tcase_add_test(schema, test_open_creates);
    tcase_add_test(schema, test_open_refuses_newer);
    tcase_add_test(schema, test_open_garbage);
    tcase_add_test(schema, test_open_empty_file);
    tcase_add_test(schema, test_open_damaged);
    tcase_add_test(schema, test_open_missing_folder);
    tcase_add_test(schema, test_migrate_v0_with_other_table);
    tcase_add_test(schema, test_migrate_failure_rolls_back);
    tcase_add_test(schema, test_migrate_v1_keeps_runs);
    suite_add_tcase(s, schema);

    TCase *core = tcase_create("Core");
    tcase_add_test(core, test_upserts_idempotent);
    tcase_add_test(core, test_run_lifecycle);
    tcase_add_test(core, test_run_finish_bad_input);
    tcase_add_test(core, test_run_finish_atomic);
    tcase_add_test(core, test_run_get_missing);
    tcase_add_test(core, test_runs_list_filters);
    tcase_add_test(core, test_reference_roundtrip);
    suite_add_tcase(s, core);

    TCase *interrupted = tcase_create("Interrupted");
    tcase_add_test(interrupted, test_parse_stat);
    tcase_add_test(interrupted, test_interrupted_rule);
    tcase_add_test(interrupted, test_interrupted_other_process);
    suite_add_tcase(s, interrupted);

    TCase *sweeps = tcase_create("Sweeps");
    tcase_add_test(sweeps, test_sweep_lifecycle);
    tcase_add_test(sweeps, test_sweeps_list_filters);
    tcase_add_test(sweeps, test_sweep_bad_input);
    tcase_add_test(sweeps, test_sweep_delete_cascades);
    tcase_add_test(sweeps, test_sweep_claim_rules);
    tcase_add_test(sweeps, test_sweep_interrupted_rule);
    tcase_add_test(sweeps, test_search_roundtrip);
    tcase_add_test(sweeps, test_nan_roundtrip);
    suite_add_tcase(s, sweeps);

    TCase *conc = tcase_create("Concurrency");
    tcase_set_timeout(conc, 30);
    tcase_add_test(conc, test_second_process_reads);
    tcase_add_test(conc, test_sweep_claim_race);
    tcase_add_test(conc, test_sweep_crash_consistency);
    suite_add_tcase(s, conc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--reader") == 0)
        return reader_main(argv[2], atoll(argv[3]), argv[4]);
    if (argc == 6 && strcmp(argv[1], "--claim") == 0)
        return claim_main(argv[2], atoll(argv[3]), atoi(argv[4]), atoi(argv[5]));
    tu_tmpdir(); /* made once here, not in each forked test */
    return tu_run(store_suite());
}
