/* SPDX-License-Identifier: MIT */
/* Files: read-only mappings for weights, whole-file reads for small text
 * files, and atomic writes (temp file, fsync, rename) so that an interrupted
 * write never leaves a half-written checkpoint behind. */
#ifndef WHALE_FILE_H
#define WHALE_FILE_H

#include <stddef.h>

#include "base/err.h"

typedef struct MappedFile {
    const unsigned char *data; /* (size) read-only; NULL for an empty file */
    size_t size;
    char *path;                /* owned copy, for error messages */
} MappedFile;

/* Map path read-only. Returns 0, or -1 with err naming the file. Free with
 * mfile_close (accepts a zeroed struct). */
int mfile_open(MappedFile *mf, const char *path, Err *err);
void mfile_close(MappedFile *mf);

/* Read a whole file into a NUL-terminated malloc'd buffer (*out, caller
 * frees); *len gets the byte count without the NUL. Refuses files over
 * max_bytes. Returns 0 or -1 with err. */
int file_read_all(const char *path, size_t max_bytes, char **out, size_t *len, Err *err);

/* Write n bytes to path atomically: path.tmp.PID is written, fsynced and
 * renamed over path, then the directory is fsynced. Returns 0 or -1 with err;
 * on failure path is untouched and the temp file removed. */
int file_write_atomic(const char *path, const void *data, size_t n, Err *err);

/* Copy a file (up to 1 GiB) with file_write_atomic. 0 or -1 with err. */
int file_copy(const char *from, const char *to, Err *err);

/* Streaming form of the same: open a temp file beside path. Write with
 * fwrite to af->fp, then commit (fsync + rename) or abort (remove). */
typedef struct AtomicFile {
    void *fp;          /* FILE*, kept opaque so callers need not include stdio */
    char *path, *tmp;
} AtomicFile;
int afile_open(AtomicFile *af, const char *path, Err *err);
int afile_commit(AtomicFile *af, Err *err);
void afile_abort(AtomicFile *af);

/* 1 if path exists (any type), else 0. */
int file_exists(const char *path);
/* 1 if path is a directory. */
int file_is_dir(const char *path);
/* Remove the files of a directory (one level: it holds no subdirectories)
 * and then the directory; a missing directory is not an error. For temp
 * and staging folders the writers own. */
void dir_remove_flat(const char *dir);
/* mkdir -p. Returns 0 or -1 with err. */
int dir_create(const char *path, Err *err);
/* The directory a model path stands for: the path itself when it is a
 * directory, else the folder of the file ("." for a bare name). */
void path_dir_of(const char *path, char *dir, size_t n);
/* 1 if path ends with suffix (".gguf", ".json"). */
int path_has_suffix(const char *path, const char *suffix);
/* snprintf(buf, n, "%s/%s", dir, name); returns -1 if it does not fit. */
int path_join(char *buf, size_t n, const char *dir, const char *name);

#endif
