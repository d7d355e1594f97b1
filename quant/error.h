/* error.h — how the engine reports failure: a status and one line of text. */
#ifndef QLAB_ERROR_H
#define QLAB_ERROR_H

#include <stddef.h>

/* The engine never prints and never exits. A fallible function returns 0
 * on success and -1 on failure after filling a qerr (when one is given)
 * with one line that names the file or object and what is wrong. */
typedef struct qerr {
    char msg[512];
} qerr;

#if defined(__GNUC__)
#define QLAB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define QLAB_PRINTF(a, b)
#endif

/* Sets the message (err may be NULL) and returns -1, so callers can write
 * `return qerr_set(err, "%s: ...", path);`. */
int qerr_set(qerr *err, const char *fmt, ...) QLAB_PRINTF(2, 3);

/* Puts "prefix: " in front of the current message. Returns -1. */
int qerr_prefix(qerr *err, const char *fmt, ...) QLAB_PRINTF(2, 3);

#endif
