/* fsutil.h — path and whole-file helpers shared by readers and the app. */
#ifndef QLAB_FSUTIL_H
#define QLAB_FSUTIL_H

#include <stddef.h>

#include "error.h"

/* "a" + "b" -> "a/b" (malloc'd; NULL when out of memory). */
char *qpath_join(const char *a, const char *b);
/* The folder part of a path ("." when there is none), malloc'd. */
char *qpath_dirname(const char *path);
/* The last component (points into path). */
const char *qpath_basename(const char *path);
/* Reads a whole file of at most max bytes, NUL-terminated; errors name it. */
int qfile_read_all(const char *path, size_t max, char **data, size_t *len, qerr *err);
/* mkdir -p; errors name the folder. */
int qmkdir_p(const char *path, qerr *err);
/* Writes data to path atomically (path.tmp, fsync, rename). */
int qfile_write_atomic(const char *path, const void *data, size_t len, qerr *err);

#endif
