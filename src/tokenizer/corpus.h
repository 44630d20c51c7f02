/* SPDX-License-Identifier: MIT */
/* Training text from files: a plain text file is one document; a .jsonl
 * file holds one JSON object per line, {"text": "..."} or {"messages":
 * [{"role": ..., "content": "..."}, ...]} (each content one document).
 * Used by the tokenizer trainer; reading only, no tokenization. */
#ifndef WHALE_TOKENIZER_CORPUS_H
#define WHALE_TOKENIZER_CORPUS_H

#include <stddef.h>

#include "base/err.h"

/* Receives each document (len bytes, not NUL-terminated, valid only during
 * the call). Returns 0, or -1 with err to stop. */
typedef int (*CorpusSink)(void *ctx, const char *text, size_t len, Err *err);

/* Pass the documents of path to sink, in file order: the whole file for a
 * plain text file (mapped, so its size is not bounded by memory), each
 * line's text or message contents for a path ending in ".jsonl" (blank
 * lines skipped; a message whose content is null skipped). *n_docs (if
 * non-NULL) gets the number of documents passed. Returns 0 or -1 with err:
 * a file that cannot be read, or "path:LINE:COL: reason" for a line that
 * is not JSON, not an object, or has neither a "text" string nor a
 * "messages" array of objects with string (or null) "content". */
int corpus_read_file(const char *path, CorpusSink sink, void *ctx, size_t *n_docs, Err *err);

#endif
