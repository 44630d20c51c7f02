/* SPDX-License-Identifier: MIT */
/* A real `whale serve` for the serving tests: the fixture model that thinks
 * then answers (tests/serve_model.sh), a server started on a free port
 * (--port 0, the port read from its "listening on" line), stopped with
 * SIGTERM (exit 0, no sanitizer report), or killed on the way out of a
 * failed test. Header-only and asserting, like whale_cli.h. */
#ifndef WHALE_TESTS_SERVE_SERVER_H
#define WHALE_TESTS_SERVE_SERVER_H

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "whale_cli.h"

typedef struct ServeProc {
    pid_t pid;           /* 0 or -1: not running */
    int port;
    char err_path[1024]; /* its stderr */
} ServeProc;

/* tests/serve_model.sh's model, made in dir/model; returns that path (in
 * one of h_path's buffers). */
static inline const char *serve_fixture_model(const char *dir) {
    const char *model = h_path(dir, "model");
    setenv("WHALE_BIN", whale_bin(), 1);
    char *argv[] = {"/bin/bash", (char *)h_path(h_data(".."), "serve_model.sh"), (char *)model,
                    NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 300), 0, "cannot run %s", argv[1]);
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    h_run_free(&r);
    return model;
}

/* Start `whale serve -m model --port 0 extra...` (extra NULL-terminated)
 * with its stdout and stderr in dir/serve.out and dir/serve.err; returns
 * once its stderr names the port (s->port), or fails with that stderr. */
static inline void serve_start(ServeProc *s, const char *dir, const char *model,
                               const char *const *extra) {
    char *argv[32] = {(char *)whale_bin(), "serve", "-m", (char *)model, "--port", "0"};
    int n = 6;
    for (; *extra; extra++) {
        cr_assert_lt(n, 31, "too many arguments");
        argv[n++] = (char *)*extra;
    }
    argv[n] = NULL;
    snprintf(s->err_path, sizeof s->err_path, "%s/serve.err", dir);
    s->port = 0;
    s->pid = h_spawn(argv, h_path(dir, "serve.out"), s->err_path);
    cr_assert_gt(s->pid, 0, "cannot start %s", argv[0]);
    const char *needle = "whale serve: listening on http://127.0.0.1:";
    for (int i = 0; i < 6000; i++) { /* 60 s: an ASan build loads slowly */
        char *text = h_read_file(s->err_path, NULL);
        const char *at = text ? strstr(text, needle) : NULL;
        if (at && sscanf(at + strlen(needle), "%d", &s->port) == 1 && s->port > 0) {
            free(text);
            return;
        }
        HRun st;
        if (h_wait(s->pid, 0, &st) == 0) {
            s->pid = -1;
            cr_assert_fail("whale serve ended (%s) before listening; stderr:\n%s",
                           h_run_status(&st), text ? text : "");
        }
        free(text);
        usleep(10000);
    }
    cr_assert_fail("whale serve did not say where it listens within 60 s");
}

/* SIGTERM; the server must exit 0 within 20 s with no sanitizer report. */
static inline void serve_stop(ServeProc *s) {
    cr_assert_gt(s->pid, 0, "whale serve is not running");
    kill(s->pid, SIGTERM);
    HRun r;
    cr_assert_eq(h_wait(s->pid, 20, &r), 0, "whale serve still runs 20 s after SIGTERM");
    s->pid = -1;
    char *text = h_read_file(s->err_path, NULL);
    cr_expect(r.exited && r.code == 0, "whale serve after SIGTERM: %s; stderr:\n%s",
              h_run_status(&r), text ? text : "");
    cr_expect(text && !strstr(text, "Sanitizer"), "sanitizer report:\n%s", text ? text : "");
    free(text);
}

/* For a suite's teardown: a failed assertion leaves the server running, so
 * kill its process group. Does nothing when it is not running. */
static inline void serve_kill(ServeProc *s) {
    if (s->pid > 0) {
        kill(-s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = -1;
    }
}

#endif
