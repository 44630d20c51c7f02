/* SPDX-License-Identifier: MIT */
/* Error reporting for bad input: library code fills a caller-supplied Err with
 * one line that names the file, field or tensor, and returns -1. Bugs are
 * asserts; only cli/ decides to exit. */
#ifndef WHALE_ERR_H
#define WHALE_ERR_H

#include <stddef.h>

typedef struct Err {
    char msg[512];
} Err;

/* Format a message into err (if non-NULL) and return -1, so that a failing
 * call reads `return err_set(err, "%s: ...", path);`. A later err_set
 * overwrites an earlier one. */
int err_set(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current message with "prefix: " (e.g. the file name once the
 * caller knows it). Returns -1. */
int err_prefix(Err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
