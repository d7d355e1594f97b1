/* test_util.c — helpers shared by the Check suites (linked into each test program). */
#include "test_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *tu_tmpdir(void)
{
    static char dir[512];
    if (dir[0])
        return dir;
    const char *base = getenv("QLAB_TMP");
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(dir, sizeof dir, "%s/tu.XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "cannot create a temp dir under %s: %s\n", base, strerror(errno));
        abort();
    }
    return dir;
}

const char *tu_path(const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 1024, "%s/%s", tu_tmpdir(), name);
    return b;
}

void tu_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

char *tu_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[len] = 0;
    if (n)
        *n = len;
    return buf;
}

const char *tu_shared(const char *rel)
{
    static char bufs[8][1024];
    static int next;
    const char *base = getenv("QLAB_SHARED_DATA");
    if (!base || !*base)
        base = "../shared/data";
    char *b = bufs[next++ % 8];
    snprintf(b, 1024, "%s/%s", base, rel);
    return access(b, R_OK) == 0 ? b : NULL;
}

/* Check keeps suite names private; tu_suite_name records them. */
static const char *suite_name_of(Suite *s)
{
    (void)s;
    return program_invocation_short_name;
}

void tu_add_if_shared(Suite *s, TCase *tc, const char *const *rels, int n)
{
    for (int i = 0; i < n; i++) {
        if (!tu_shared(rels[i])) {
            const char *base = getenv("QLAB_SHARED_DATA");
            fprintf(stderr, "SKIP: %s: a test case needs %s/%s, which is absent\n",
                    suite_name_of(s), base && *base ? base : "../shared/data", rels[i]);
            /* Check frees test cases only through a runner: give the
             * skipped one to a runner that never runs. */
            Suite *skipped = suite_create("skipped");
            suite_add_tcase(skipped, tc);
            srunner_free(srunner_create(skipped));
            return;
        }
    }
    suite_add_tcase(s, tc);
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

static const char *env_join(const char *var, const char *def, const char *name)
{
    static char bufs[8][1024];
    static int next;
    const char *base = getenv(var);
    if (!base || !*base)
        base = def;
    char *b = bufs[next++ % 8];
    snprintf(b, 1024, "%s/%s", base, name);
    return b;
}

const char *tu_plugin(const char *name)
{
    return env_join("QLAB_PLUGIN_BUILD", "build/plugins", name);
}

const char *tu_test_plugin(const char *name)
{
    return env_join("QLAB_TEST_PLUGINS", "build/tests/plugins", name);
}

const char *tu_qlab_bin(void)
{
    const char *b = getenv("QLAB_BIN");
    return b && *b ? b : "build/qlab";
}

int tu_run_cmd(const char *cmdline, char **out, char **err)
{
    static int seq;
    char op[64], ep[64];
    snprintf(op, sizeof op, "cmd-%d-%d.out", (int)getpid(), seq);
    snprintf(ep, sizeof ep, "cmd-%d-%d.err", (int)getpid(), seq++);
    /* not tu_path: callers hold its rotating buffers across commands */
    char opath[1024], epath[1024];
    snprintf(opath, sizeof opath, "%s/%s", tu_tmpdir(), op);
    snprintf(epath, sizeof epath, "%s/%s", tu_tmpdir(), ep);
    size_t len = strlen(cmdline) + 2 * 1024 + 32;
    char *full = malloc(len);
    snprintf(full, len, "%s >'%s' 2>'%s'", cmdline, opath, epath);
    int st = system(full);
    free(full);
    char *o = tu_read_file(opath, NULL), *e = tu_read_file(epath, NULL);
    unlink(opath);
    unlink(epath);
    if (out)
        *out = o ? o : strdup("");
    else
        free(o);
    if (err)
        *err = e ? e : strdup("");
    else
        free(e);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}
