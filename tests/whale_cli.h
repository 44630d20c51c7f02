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

#endif
