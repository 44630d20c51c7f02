/* SPDX-License-Identifier: MIT */
/* Running the real binary (WHALE_BIN) from Criterion tests: WHALE(&r,
 * args...) runs it with captured output, expect_ok / EXPECT_FAIL state what
 * a good run and a clean failure look like. Unlike helpers.h these assert. */
#ifndef WHALE_TESTS_WHALE_CLI_H
#define WHALE_TESTS_WHALE_CLI_H

#include <criterion/criterion.h>
#include <unistd.h>

#include "helpers.h"

/* Per command; ASan builds of the tiny models take well under this. */
#ifndef RUN_TIMEOUT_S
#define RUN_TIMEOUT_S 300
#endif

static inline const char *whale_bin(void) {
    const char *b = getenv("WHALE_BIN");
    if (!b || !b[0]) b = "build/whale";
    cr_assert(access(b, X_OK) == 0, "whale binary %s is not executable (set WHALE_BIN)", b);
    return b;
}

/* Run `whale ARGS...` (NULL-terminated) into r. */
static inline void whale_v(HRun *r, const char *const *args) {
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)whale_bin();
    for (; *args; args++) {
        cr_assert_lt(n, 63, "too many arguments");
        argv[n++] = (char *)*args;
    }
    argv[n] = NULL;
    cr_assert_eq(h_run(r, argv, RUN_TIMEOUT_S), 0, "cannot run %s", argv[0]);
}
#define WHALE(r, ...) whale_v(r, (const char *const[]){__VA_ARGS__, NULL})

/* A successful run: exit 0, no crash, no sanitizer report. */
static inline void expect_ok(const HRun *r) {
    cr_assert(r->exited && r->code == 0, "%s: expected exit 0, got %s; stderr:\n%s", r->cmd,
              h_run_status(r), r->err);
    cr_assert_null(strstr(r->err, "Sanitizer"), "%s: sanitizer report:\n%s", r->cmd, r->err);
}

/* A clean failure: a normal non-zero exit (a signal is a crash), no
 * sanitizer report, nothing on stdout, exactly one line on stderr, which
 * contains every needle. */
static inline void expect_fail(const HRun *r, const char *const *needles) {
    cr_assert(!r->signaled, "%s: crashed (%s); stderr:\n%s", r->cmd, h_run_status(r), r->err);
    cr_assert_null(strstr(r->err, "Sanitizer"), "%s: sanitizer report:\n%s", r->cmd, r->err);
    cr_assert(r->exited && r->code != 0, "%s: expected a non-zero exit, got %s; stderr:\n%s",
              r->cmd, h_run_status(r), r->err);
    cr_assert_eq(h_count_lines(r->err), 1,
                 "%s: expected exactly one line on stderr, got %d:\n%s", r->cmd,
                 h_count_lines(r->err), r->err);
    cr_assert(r->err_len > 0 && r->err[r->err_len - 1] == '\n',
              "%s: the stderr line should end with a newline: \"%s\"", r->cmd, r->err);
    cr_assert_eq(r->out_len, 0, "%s: expected nothing on stdout after an error, got:\n%s", r->cmd,
                 r->out);
    for (const char *const *n = needles; *n; n++)
        cr_assert(strstr(r->err, *n), "%s: stderr should contain \"%s\", got: %s", r->cmd, *n,
                  r->err);
}
#define EXPECT_FAIL(r, ...) expect_fail(r, (const char *const[]){__VA_ARGS__, NULL})

/* `whale init` of a tiny model in dir from seed, weights of std 0.05 (the
 * scale the fine-tuning tests learn quickly from). */
static inline void whale_init_tiny(const char *dir, int seed) {
    char s[16];
    snprintf(s, sizeof s, "%d", seed);
    HRun r;
    whale_v(&r, (const char *const[]){"init", "-p", "tiny", "-o", dir, "--seed", s, "--std",
                                      "0.05", NULL});
    expect_ok(&r);
    h_run_free(&r);
}

/* Two files with the same bytes. */
/* 1 if files a and b hold the same bytes, else 0 (both must be readable). */
static inline int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = h_read_file(a, &na), *y = h_read_file(b, &nb);
    cr_assert(x && y, "cannot read %s or %s", a, b);
    const int same = na == nb && memcmp(x, y, na) == 0;
    free(x), free(y);
    return same;
}

static inline void expect_same_file(const char *a, const char *b) {
    cr_expect(same_file(a, b), "%s and %s differ", a, b);
}

/* The metrics.jsonl of run directory dir with the timing keys (every key
 * that ends in tok_s: tok_s, rollout_tok_s, ...) and their values cut out,
 * so two runs that did the same work compare equal. Caller frees. */
static inline char *metrics_without_timing(const char *dir) {
    char *m = h_read_file(h_path(dir, "metrics.jsonl"), NULL);
    cr_assert(m, "%s has no metrics.jsonl", dir);
    char *w = m;
    for (const char *p = m; *p;) {
        const int key = *p == '"' && p > m && (p[-1] == '{' || p[-1] == ' ');
        const char *q = key ? strchr(p + 1, '"') : NULL;
        if (q && q - p > 5 && !strncmp(q - 5, "tok_s", 5) && !strncmp(q, "\": ", 3)) {
            p = q + 3;
            while (*p && *p != ',' && *p != '}') p++;
        } else {
            *w++ = *p++;
        }
    }
    *w = 0;
    return m;
}

/* Resume run directory b with the command args (NULL-terminated, with
 * --resume) from its checkpoint of step from, as a run killed before its
 * next checkpoint leaves it: OUT/latest names that checkpoint and
 * metrics.jsonl may hold later steps. The resumed run must say so and end
 * as the uninterrupted run a did: the same model.safetensors, the same
 * AdamW moments in the checkpoint of its last step, and the same metrics
 * but for timing. */
static inline void expect_resume_equals_run(const char *a, const char *b, int from, int last,
                                            const char *const *args) {
    char da[256], db[256], pa[512], pb[512];
    snprintf(da, sizeof da, "%s", a), snprintf(db, sizeof db, "%s", b); /* h_path's buffers */
    snprintf(pb, sizeof pb, "%s/latest", db);
    snprintf(pa, sizeof pa, "checkpoint-%08d\n", from);
    cr_assert_eq(h_write_text(pb, pa), 0, "cannot write %s", pb);
    HRun r;
    const char *q = getenv("WHALE_QUIET");
    char quiet[16];
    snprintf(quiet, sizeof quiet, "%s", q ? q : "");
    setenv("WHALE_QUIET", "0", 1); /* for the progress lines */
    whale_v(&r, args);
    if (q) setenv("WHALE_QUIET", quiet, 1);
    else unsetenv("WHALE_QUIET");
    expect_ok(&r);
    snprintf(pa, sizeof pa, "resuming at step %d", from);
    cr_expect(strstr(r.err, pa), "no \"%s\" in:\n%s", pa, r.err);
    h_run_free(&r);
    snprintf(pa, sizeof pa, "%s/model.safetensors", da);
    snprintf(pb, sizeof pb, "%s/model.safetensors", db);
    expect_same_file(pa, pb);
    snprintf(pa, sizeof pa, "%s/checkpoint-%08d/optimizer.safetensors", da, last);
    snprintf(pb, sizeof pb, "%s/checkpoint-%08d/optimizer.safetensors", db, last);
    expect_same_file(pa, pb);
    char *ma = metrics_without_timing(da), *mb = metrics_without_timing(db);
    cr_expect_str_eq(mb, ma, "the resumed run's metrics differ from the uninterrupted run's");
    free(ma), free(mb);
}
#define EXPECT_RESUME_EQUALS_RUN(a, b, from, last, ...)                                         \
    expect_resume_equals_run(a, b, from, last, (const char *const[]){__VA_ARGS__, NULL})

#endif
