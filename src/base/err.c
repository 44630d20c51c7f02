/* SPDX-License-Identifier: MIT */
/* Error messages in caller-supplied buffers (see err.h). */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(Err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int err_prefix(Err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* shift the old message right and put "prefix: " in front, truncating
     * the tail if the whole does not fit */
    size_t cap = sizeof err->msg, lp = strlen(prefix), lo = strnlen(err->msg, cap - 1);
    if (lp + 2 >= cap) lp = cap - 3;
    if (lp + 2 + lo >= cap) lo = cap - 1 - lp - 2;
    memmove(err->msg + lp + 2, err->msg, lo);
    memcpy(err->msg, prefix, lp);
    err->msg[lp] = ':';
    err->msg[lp + 1] = ' ';
    err->msg[lp + 2 + lo] = 0;
    return -1;
}
