/* test_util.h — small helpers shared by the Check suites: temp files, shared data, running suites. */
#ifndef QLAB_TEST_UTIL_H
#define QLAB_TEST_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $QLAB_TMP (or /tmp) for this process; removed
 * by the test runner. The result is static: copy it if kept. */
const char *tu_tmpdir(void);
/* tu_tmpdir()/name into a static buffer (one of 8 rotating). */
const char *tu_path(const char *name);
/* Writes n bytes to path; ck_abort on failure. */
void tu_write_file(const char *path, const void *data, size_t n);
/* Reads a whole file (NUL-terminated); *n gets its size; caller frees. */
char *tu_read_file(const char *path, size_t *n);

/* $QLAB_SHARED_DATA (default ../shared/data) joined with rel, or NULL
 * when the file is absent; then the suite registering the test prints
 * "SKIP: <what> (<path> absent)" and leaves the test out. */
const char *tu_shared(const char *rel);
/* Adds tc to s if every shared file exists; else prints one SKIP line. */
void tu_add_if_shared(Suite *s, TCase *tc, const char *const *rels, int n);

/* Runs the suite and returns the process exit code (0 all passed). */
int tu_run(Suite *s);

/* The built plugin folder ($QLAB_PLUGIN_BUILD or build/plugins) and the
 * test plugins ($QLAB_TEST_PLUGINS or build/tests/plugins), joined with name. */
const char *tu_plugin(const char *name);
const char *tu_test_plugin(const char *name);
/* The qlab binary: $QLAB_BIN or build/qlab. */
const char *tu_qlab_bin(void);

/* Runs a shell command line, capturing stdout and stderr separately.
 * Returns the exit status (or -1). Outputs are NUL-terminated; free them. */
int tu_run_cmd(const char *cmdline, char **out, char **err);

#endif
