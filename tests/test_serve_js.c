/* SPDX-License-Identifier: MIT */
/* `whale serve` through real clients: the official openai npm package
 * (tests/js_serve/openai_client.mjs) and the web chat page driven in
 * Debian's chromium by playwright-core (tests/js_serve/page_chromium.mjs),
 * against a server on a free port holding a tiny model fine-tuned to think
 * and then answer (tests/serve_model.sh); SIGTERM then stops the server
 * cleanly. Also: the page the binary embeds is page.html byte for byte and
 * loads nothing from elsewhere. The npm packages are installed on first use
 * (tests/js_serve/npm.sh); a missing chromium fails with what to install.
 * No Criterion .timeout (see test_generate.c): every wait has a deadline. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "serve/page.h"
#include "serve_server.h"

#define CHROMIUM "/usr/bin/chromium"
#define API_KEY "sk-whale-test"

static char g_dir[64];
static ServeProc g_server;

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "serve_js"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
    setenv("OMP_WAIT_POLICY", "passive", 1);
}

static void teardown(void) {
    serve_kill(&g_server);
    h_rmtree(g_dir);
}

TestSuite(serve_js, .init = setup, .fini = teardown);

/* tests/<name>, found from WHALE_DATA (tests/data), in h_path's buffers. */
static const char *tests_path(const char *name) { return h_path(h_data(".."), name); }

/* Run `node tests/js_serve/script URL API_KEY` to exit 0, or fail with its
 * output (each script names the check that failed). */
static void run_node(const char *script, const char *url) {
    char *argv[] = {"/usr/bin/env", "node", (char *)h_path(tests_path("js_serve"), script),
                    (char *)url, API_KEY, NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 120), 0, "cannot run node");
    cr_assert(r.exited && r.code == 0, "%s: %s\nstdout:\n%s\nstderr:\n%s", r.cmd,
              h_run_status(&r), r.out, r.err);
    h_run_free(&r);
}

Test(serve_js, embedded_page_is_page_html_and_self_contained) {
    size_t n, file_n;
    const char *page = serve_page(&n);
    char *file = h_read_file(h_path(tests_path(".."), "src/serve/page.html"), &file_n);
    cr_assert(file, "cannot read src/serve/page.html");
    cr_assert(n == file_n && memcmp(page, file, n) == 0,
              "the embedded page (%zu bytes) is not src/serve/page.html (%zu bytes): a stale "
              "build/obj/src/serve/page.o?", n, file_n);
    /* no CDN, no external script, style, font or image */
    const char *outside[] = {"<script src", "stylesheet", "@import", "url(", "//cdn", "https://",
                             "http://"};
    for (size_t i = 0; i < sizeof outside / sizeof *outside; i++)
        cr_expect_null(strstr(file, outside[i]), "page.html contains \"%s\"", outside[i]);
    /* model output goes in as text only */
    cr_expect_null(strstr(file, "innerHTML"), "page.html uses innerHTML");
    free(file);
}

Test(serve_js, openai_client_and_web_page_in_chromium) {
    cr_assert(access(CHROMIUM, X_OK) == 0,
              CHROMIUM " is missing: the web page test needs Debian's chromium "
              "(apt-get install chromium, or make deps)");
    char *npm[] = {"/bin/bash", (char *)tests_path("js_serve/npm.sh"), NULL};
    HRun r;
    cr_assert_eq(h_run(&r, npm, 300), 0, "cannot run %s", npm[1]);
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    h_run_free(&r);

    const char *model = serve_fixture_model(g_dir);
    serve_start(&g_server, g_dir, model,
                (const char *const[]){"--api-key", API_KEY, "--parallel", "2", "-t", "1", NULL});
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", g_server.port);
    run_node("openai_client.mjs", url);
    run_node("page_chromium.mjs", url);
    serve_stop(&g_server);
}
