/* SPDX-License-Identifier: MIT */
/* jansson wrappers with positioned, named errors (see json.h). */
#include "base/json.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"

json_t *json_load_path(const char *path, size_t max_bytes, Err *err) {
    char *text;
    size_t len;
    if (file_read_all(path, max_bytes, &text, &len, err) != 0) return NULL;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    free(text);
    if (!root) err_set(err, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    return root;
}

int json_get_int(const json_t *obj, const char *key, int *out, const char *what, Err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    double d;
    if (json_is_integer(v)) {
        d = (double)json_integer_value(v);
    } else if (json_is_real(v) && fabs(json_real_value(v)) < 1e15 &&
               json_real_value(v) == floor(json_real_value(v))) {
        d = json_real_value(v); /* 4096.0 is an integer; 1e300 is out of range below */
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) {
        return err_set(err, "%s: field '%s' is out of range", what, key);
    } else {
        return err_set(err, "%s: field '%s' must be an integer", what, key);
    }
    if (d < INT_MIN || d > INT_MAX)
        return err_set(err, "%s: field '%s' is out of range", what, key);
    *out = (int)d;
    return 0;
}

int json_get_float(const json_t *obj, const char *key, float *out, const char *what, Err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return err_set(err, "%s: field '%s' must be a number", what, key);
    *out = (float)json_number_value(v);
    return 0;
}

int json_get_bool(const json_t *obj, const char *key, int *out, const char *what, Err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return err_set(err, "%s: field '%s' must be true or false", what, key);
    *out = json_is_true(v);
    return 0;
}

int json_get_str(const json_t *obj, const char *key, char *out, size_t n, const char *what,
                 Err *err) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return err_set(err, "%s: field '%s' must be a string", what, key);
    size_t len = json_string_length(v);
    if (len >= n) return err_set(err, "%s: field '%s' is too long", what, key);
    memcpy(out, json_string_value(v), len + 1);
    return 0;
}
