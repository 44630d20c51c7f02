/* SPDX-License-Identifier: MIT */
/* JSON through jansson, with errors that name file, line and column, and
 * typed field readers that name the field when it has the wrong type. */
#ifndef WHALE_JSON_H
#define WHALE_JSON_H

#include <jansson.h>

#include "base/err.h"

/* Parse a JSON file (at most max_bytes). Returns a new reference or NULL with
 * err = "path:LINE:COL: message". */
json_t *json_load_path(const char *path, size_t max_bytes, Err *err);

/* Typed optional fields of an object. Absent or null keeps *out unchanged and
 * returns 0; a present value of the wrong type (or an integer out of int
 * range) returns -1 with err "what: field 'key' must be ...". */
int json_get_int(const json_t *obj, const char *key, int *out, const char *what, Err *err);
int json_get_float(const json_t *obj, const char *key, float *out, const char *what, Err *err);
int json_get_bool(const json_t *obj, const char *key, int *out, const char *what, Err *err);
/* Copies at most n-1 bytes; a longer string is an error. */
int json_get_str(const json_t *obj, const char *key, char *out, size_t n, const char *what,
                 Err *err);

#endif
