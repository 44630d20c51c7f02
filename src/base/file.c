/* SPDX-License-Identifier: MIT */
/* File helpers: mmap, whole-file reads, atomic writes (see file.h). */
#include "base/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int mfile_open(MappedFile *mf, const char *path, Err *err) {
    memset(mf, 0, sizeof *mf);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return err_set(err, "%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(err, "%s: not a regular file", path);
    }
    mf->size = (size_t)st.st_size;
    if (mf->size > 0) {
        void *p = mmap(NULL, mf->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return err_set(err, "%s: cannot map: %s", path, strerror(errno));
        }
        mf->data = p;
    }
    close(fd); /* the mapping keeps the file alive */
    mf->path = strdup(path);
    return 0;
}

void mfile_close(MappedFile *mf) {
    if (mf->data) munmap((void *)mf->data, mf->size);
    free(mf->path);
    memset(mf, 0, sizeof *mf);
}

int file_read_all(const char *path, size_t max_bytes, char **out, size_t *len, Err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) goto oom;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > max_bytes) {
                free(buf);
                fclose(f);
                return err_set(err, "%s: larger than %zu bytes", path, max_bytes);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) goto oom;
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return err_set(err, "%s: read error", path);
    }
    if (n > max_bytes) {
        free(buf);
        fclose(f);
        return err_set(err, "%s: larger than %zu bytes", path, max_bytes);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return 0;
oom:
    free(buf);
    fclose(f);
    return err_set(err, "%s: out of memory", path);
}

int afile_open(AtomicFile *af, const char *path, Err *err) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = strdup(path);
    af->tmp = malloc(n);
    if (!af->path || !af->tmp) {
        afile_abort(af);
        return err_set(err, "%s: out of memory", path);
    }
    snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp, "wb");
    if (!af->fp) {
        int e = errno;
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return err_set(err, "%s: cannot create: %s", path, strerror(e));
    }
    return 0;
}

static void fsync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int afile_commit(AtomicFile *af, Err *err) {
    FILE *fp = af->fp;
    int bad = ferror(fp) || fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    int e = errno;
    if (fclose(fp) != 0) bad = 1;
    af->fp = NULL;
    if (bad) {
        err_set(err, "%s: write failed: %s", af->path, strerror(e));
        afile_abort(af);
        return -1;
    }
    if (rename(af->tmp, af->path) != 0) {
        err_set(err, "%s: rename failed: %s", af->path, strerror(errno));
        afile_abort(af);
        return -1;
    }
    fsync_parent_dir(af->path);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
    return 0;
}

void afile_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp) unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

int file_write_atomic(const char *path, const void *data, size_t n, Err *err) {
    AtomicFile af;
    if (afile_open(&af, path, err) != 0) return -1;
    if (n && fwrite(data, 1, n, af.fp) != n) {
        err_set(err, "%s: write failed: %s", path, strerror(errno));
        afile_abort(&af);
        return -1;
    }
    return afile_commit(&af, err);
}

int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int file_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dir_create(const char *path, Err *err) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) return err_set(err, "%s: bad directory path", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return err_set(err, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    if (!file_is_dir(path)) return err_set(err, "%s: exists and is not a directory", path);
    return 0;
}

int path_join(char *buf, size_t n, const char *dir, const char *name) {
    int k = snprintf(buf, n, "%s/%s", dir, name);
    return (k < 0 || (size_t)k >= n) ? -1 : 0;
}

void path_dir_of(const char *path, char *dir, size_t n) {
    snprintf(dir, n, "%s", path);
    if (file_is_dir(path)) return;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, n, ".");
}

int path_has_suffix(const char *path, const char *suffix) {
    size_t a = strlen(path), b = strlen(suffix);
    return a > b && !strcmp(path + a - b, suffix);
}

int file_copy(const char *from, const char *to, Err *err) {
    char *buf;
    size_t n;
    if (file_read_all(from, (size_t)1 << 30, &buf, &n, err) != 0) return -1;
    int rc = file_write_atomic(to, buf, n, err);
    free(buf);
    return rc;
}

void dir_remove_flat(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            path_join(path, sizeof path, dir, e->d_name) == 0)
            unlink(path);
    closedir(d);
    rmdir(dir);
}
