/* error.c — filling and prefixing engine error messages. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int qerr_set(qerr *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int qerr_prefix(qerr *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[256], joined[sizeof prefix + sizeof err->msg + 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
    /* truncation is intended: a message is one line of bounded length */
    memcpy(err->msg, joined, sizeof err->msg - 1);
    err->msg[sizeof err->msg - 1] = 0;
    return -1;
}
