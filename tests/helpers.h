/* SPDX-License-Identifier: MIT */
/* Helpers shared by the test files: a private temporary directory per test
 * (tests run in parallel), whole-file reads, writes and copies, and running
 * a program with its exit status, stdout and stderr captured. Header-only
 * and static inline, so each test file gets its own copy and a helper it
 * does not use costs no warning. Nothing here asserts: each returns a status
 * and the test decides what a failure means. */
#ifndef WHALE_TESTS_HELPERS_H
#define WHALE_TESTS_HELPERS_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/rng.h"

/* ---- temporary directories ------------------------------------------------ */

/* Create a fresh directory /tmp/whale_<tag>_XXXXXX into buf (>= 64 bytes).
 * Returns 0 or -1. */
static inline int h_tmpdir(char *buf, size_t n, const char *tag) {
    if (snprintf(buf, n, "/tmp/whale_%s_XXXXXX", tag) >= (int)n) return -1;
    return mkdtemp(buf) ? 0 : -1;
}

static inline int h_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf path (does not follow symlinks). Accepts "" (does nothing). */
static inline void h_rmtree(const char *path) {
    if (path && path[0]) nftw(path, h_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* "dir/name" in one of a ring of 16 static buffers, so that a few can be
 * live at once (e.g. the arguments of one command line). */
static inline const char *h_path(const char *dir, const char *name) {
    static char bufs[16][1024];
    static int k;
    char tmp[sizeof bufs[0]]; /* dir or name may be an earlier result */
    snprintf(tmp, sizeof tmp, "%s/%s", dir, name);
    char *b = bufs[k++ % 16];
    memcpy(b, tmp, sizeof tmp);
    return b;
}

/* tests/data/<name> (from WHALE_DATA, set by make test, else relative to
 * the repository), in one of h_path's buffers. */
static inline const char *h_data(const char *name) {
    const char *d = getenv("WHALE_DATA");
    return h_path(d && d[0] ? d : "tests/data", name);
}

/* ---- files ------------------------------------------------------------------ */

/* Whole file into a malloc'd NUL-terminated buffer (caller frees); *len (if
 * non-NULL) gets the byte count. NULL if it cannot be read. */
static inline char *h_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* Write n bytes to path (created or truncated). Returns 0 or -1. */
static inline int h_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && k == n) ? 0 : -1;
}

static inline int h_write_text(const char *path, const char *text) {
    return h_write_file(path, text, strlen(text));
}

static inline int h_copy_file(const char *from, const char *to) {
    size_t n;
    char *buf = h_read_file(from, &n);
    if (!buf) return -1;
    int rc = h_write_file(to, buf, n);
    free(buf);
    return rc;
}

/* Copy the regular files directly inside dir `from` into the existing
 * directory `to` (not recursive). Returns the number copied, or -1. */
static inline int h_copy_dir_files(const char *from, const char *to) {
    DIR *d = opendir(from);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    char src[1024], dst[1024];
    while ((e = readdir(d))) {
        struct stat sb;
        snprintf(src, sizeof src, "%s/%s", from, e->d_name);
        if (stat(src, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        snprintf(dst, sizeof dst, "%s/%s", to, e->d_name);
        if (h_copy_file(src, dst) != 0) {
            n = -1;
            break;
        }
        n++;
    }
    closedir(d);
    return n;
}

/* Size of a file in bytes, or -1. */
static inline long long h_file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* ---- running a program ---------------------------------------------------- */

typedef struct HRun {
    int exited;        /* 1: exited normally with `code` */
    int code;
    int signaled;      /* 1: killed by signal `sig` (SIGALRM: ran past the timeout) */
    int sig;
    char *out, *err;   /* captured stdout and stderr, NUL-terminated (owned) */
    size_t out_len, err_len;
    char cmd[1024];    /* the command line, for messages */
} HRun;

static inline void h_run_free(HRun *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

static inline char *h_slurp_fp(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    rewind(f);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0) break;
    }
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

/* Run argv[0] (a path; no PATH search) with argv, stdin from /dev/null,
 * stdout and stderr captured into r (r->out, r->err; free with h_run_free).
 * The child gets SIGALRM after timeout_s seconds (0: none), which shows as
 * signaled with SIGALRM; it runs in its own process group, which is killed
 * when it ends, so nothing it started outlives it (a timed-out script's
 * children included). Returns 0 if the program ran (whatever its status),
 * -1 if it could not be started (then r->code is 127 when exec failed). */
static inline int h_run(HRun *r, char *const argv[], unsigned timeout_s) {
    memset(r, 0, sizeof *r);
    size_t k = 0;
    for (int i = 0; argv[i] && k < sizeof r->cmd - 1; i++)
        k += (size_t)snprintf(r->cmd + k, sizeof r->cmd - k, "%s'%s'", i ? " " : "", argv[i]);
    FILE *fo = tmpfile(), *fe = tmpfile();
    if (!fo || !fe) {
        if (fo) fclose(fo);
        if (fe) fclose(fe);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fclose(fo);
        fclose(fe);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own group, so a timeout takes down what it started too */
        int in = open("/dev/null", O_RDONLY);
        if (in >= 0) dup2(in, 0);
        dup2(fileno(fo), 1);
        dup2(fileno(fe), 2);
        if (timeout_s) alarm(timeout_s); /* a pending alarm survives exec */
        execv(argv[0], argv);
        fprintf(stderr, "exec %s failed\n", argv[0]);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
    }
    kill(-pid, SIGKILL); /* children a timed-out script left running (none, normally) */
    r->exited = WIFEXITED(st);
    r->code = r->exited ? WEXITSTATUS(st) : -1;
    r->signaled = WIFSIGNALED(st);
    r->sig = r->signaled ? WTERMSIG(st) : 0;
    r->out = h_slurp_fp(fo, &r->out_len);
    r->err = h_slurp_fp(fe, &r->err_len);
    fclose(fo);
    fclose(fe);
    if (!r->out || !r->err) return -1;
    return (r->exited && r->code == 127 && strstr(r->err, "exec ") == r->err) ? -1 : 0;
}

/* Start argv[0] (a path) with argv in the background, in its own process
 * group, stdin from /dev/null, stdout and stderr appended to out_path and
 * err_path (a server whose log a test reads while it runs). Returns the pid,
 * or -1. The caller ends it (h_wait, or kill(-pid, SIGKILL) on the way out). */
static inline pid_t h_spawn(char *const argv[], const char *out_path, const char *err_path) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0) return pid < 0 ? -1 : pid;
    setpgid(0, 0);
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(127);
    dup2(in, 0), dup2(out, 1), dup2(err, 2);
    execv(argv[0], argv);
    _exit(127);
}

/* Wait up to timeout_s (polling every 10 ms) for h_spawn's pid to end, then
 * fill r's status fields (exited, code, signaled, sig; no output). Returns 0
 * when it ended, -1 when it still runs. */
static inline int h_wait(pid_t pid, unsigned timeout_s, HRun *r) {
    memset(r, 0, sizeof *r);
    for (unsigned i = 0; i <= timeout_s * 100; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            r->exited = WIFEXITED(st);
            r->code = r->exited ? WEXITSTATUS(st) : -1;
            r->signaled = WIFSIGNALED(st);
            r->sig = r->signaled ? WTERMSIG(st) : 0;
            return 0;
        }
        usleep(10000);
    }
    return -1;
}

/* "exit 1", "signal 11 (timeout)" ... for messages, in a static buffer. */
static inline const char *h_run_status(const HRun *r) {
    static char buf[64];
    if (r->exited) snprintf(buf, sizeof buf, "exit %d", r->code);
    else if (r->signaled)
        snprintf(buf, sizeof buf, "killed by signal %d%s", r->sig,
                 r->sig == SIGALRM ? " (timeout)" : "");
    else snprintf(buf, sizeof buf, "unknown status");
    return buf;
}

/* Number of lines in s: '\n'-terminated ones plus an unterminated tail. */
static inline int h_count_lines(const char *s) {
    int n = 0;
    for (const char *p = s; *p; p++) n += *p == '\n';
    size_t len = strlen(s);
    if (len && s[len - 1] != '\n') n++;
    return n;
}

/* A JSONL corpus (path) with structure a tiny model learns in a few dozen
 * steps: n_docs documents of 12 sentences from a small grammar, drawn with
 * seed. Returns 0, or -1 when path cannot be written. */
static inline int h_write_grammar_corpus(const char *path, int n_docs, uint64_t seed) {
    static const char *subj[] = {"the cat", "a dog", "my friend", "the old man", "a bird"};
    static const char *verb[] = {"sees", "likes", "finds", "follows", "calls"};
    static const char *obj[] = {"the ball", "a tree", "the river", "her hat", "the moon"};
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    Rng r;
    rng_seed(&r, seed);
    for (int d = 0; d < n_docs; d++) {
        fprintf(f, "{\"text\": \"");
        for (int s = 0; s < 12; s++)
            fprintf(f, "%s %s %s. ", subj[rng_below(&r, 5)], verb[rng_below(&r, 5)],
                    obj[rng_below(&r, 5)]);
        fprintf(f, "\"}\n");
    }
    return fclose(f) == 0 ? 0 : -1;
}

#endif
