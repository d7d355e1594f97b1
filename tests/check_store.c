/* check_store.c — the SQLite store: schema and migrations, runs and their tensors, the interrupted rule, references. */
#include <check.h>
#include <errno.h>
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
    ck_assert_int_eq(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"), 7);
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
    snprintf(want, sizeof want, "%s: database schema version 99 is newer than this qlab's (1); upgrade qlab", path);
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

    TCase *conc = tcase_create("Concurrency");
    tcase_set_timeout(conc, 30);
    tcase_add_test(conc, test_second_process_reads);
    suite_add_tcase(s, conc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--reader") == 0)
        return reader_main(argv[2], atoll(argv[3]), argv[4]);
    tu_tmpdir(); /* made once here, not in each forked test */
    return tu_run(store_suite());
}
