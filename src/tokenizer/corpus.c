/* SPDX-License-Identifier: MIT */
/* Reading training documents from text and JSONL files (see corpus.h). */
#include "tokenizer/corpus.h"

#include <jansson.h>
#include <string.h>

#include "base/file.h"

/* One JSONL line: its documents to sink. line is 1-based, for messages. */
static int jsonl_line(const char *path, size_t line, const char *p, size_t n, CorpusSink sink,
                      void *ctx, size_t *n_docs, Err *err) {
    size_t k = 0;
    while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r')) k++;
    if (k == n) return 0; /* blank */
    json_error_t je;
    json_t *v = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v) return err_set(err, "%s:%zu:%d: %s", path, line, je.column, je.text);
    int rc = 0;
    json_t *text = json_is_object(v) ? json_object_get(v, "text") : NULL;
    json_t *msgs = json_is_object(v) ? json_object_get(v, "messages") : NULL;
    if (!json_is_object(v)) {
        rc = err_set(err, "%s:%zu:1: expected a JSON object", path, line);
    } else if (json_is_string(text)) {
        (*n_docs)++;
        rc = sink(ctx, json_string_value(text), json_string_length(text), err);
    } else if (json_is_array(msgs)) {
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            json_t *content = json_is_object(m) ? json_object_get(m, "content") : NULL;
            if (json_is_null(content)) continue;
            if (!json_is_string(content)) {
                rc = err_set(err, "%s:%zu:1: messages[%zu] must be an object with a string "
                             "\"content\"", path, line, i);
                break;
            }
            (*n_docs)++;
            if ((rc = sink(ctx, json_string_value(content), json_string_length(content), err)) != 0)
                break;
        }
    } else {
        rc = err_set(err, "%s:%zu:1: expected a \"text\" string or a \"messages\" array", path,
                     line);
    }
    json_decref(v);
    return rc;
}

int corpus_read_file(const char *path, CorpusSink sink, void *ctx, size_t *n_docs, Err *err) {
    size_t docs = 0;
    if (n_docs) *n_docs = 0;
    if (file_is_dir(path))
        return err_set(err, "%s: is a directory, not a text or .jsonl file", path);
    MappedFile mf;
    if (mfile_open(&mf, path, err) != 0) return -1;
    const char *p = (const char *)mf.data;
    int rc = 0;
    if (!path_has_suffix(path, ".jsonl")) {
        if (mf.size) {
            docs = 1;
            rc = sink(ctx, p, mf.size, err);
        }
    } else if (mf.size) { /* no lines, and no pointer arithmetic on NULL */
        const char *end = p + mf.size;
        for (size_t line = 1; p < end && rc == 0; line++) {
            const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop = nl ? nl : end;
            rc = jsonl_line(path, line, p, (size_t)(stop - p), sink, ctx, &docs, err);
            p = nl ? nl + 1 : end;
        }
    }
    mfile_close(&mf);
    if (n_docs) *n_docs = docs;
    return rc;
}
