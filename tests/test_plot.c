/* SPDX-License-Identifier: MIT */
/* plot: train/plot.c on synthetic metrics.jsonl files. The SVG must be
 * well-formed (tags balanced and nested, checked with a small stack), hold one
 * polyline per series present and panels only for groups with data, skip and
 * count broken lines, skip NaN/Inf, cope with one point, no data, unsorted
 * steps and long runs; a resumed run's metrics file keeps the lines up to
 * its checkpoint; `whale plot` writes metrics.svg beside its input and
 * answers a bad flag with exit 2. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "train/plot.h"

static char g_dir[64];

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "plot"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
}
static void teardown(void) { h_rmtree(g_dir); }
TestSuite(plot, .init = setup, .fini = teardown);

/* Write text as DIR/metrics.jsonl, plot it to DIR/metrics.svg; returns the SVG
 * (caller frees) and the function's result in *rc. */
static char *plot_text(const char *text, int *rc) {
    const char *in = h_path(g_dir, "metrics.jsonl"), *out = h_path(g_dir, "metrics.svg");
    cr_assert_eq(h_write_text(in, text), 0);
    Err err = {{0}};
    *rc = plot_metrics_svg(in, out, "run", &err);
    cr_assert_geq(*rc, 0, "plot_metrics_svg failed: %s", err.msg);
    char *svg = h_read_file(out, NULL);
    cr_assert_not_null(svg, "%s was not written", out);
    return svg;
}

/* Well-formed enough for a browser: starts with <svg xmlns, every tag closed
 * in order, no NaN/Inf coordinates. */
static void check_svg(const char *svg) {
    cr_assert(!strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39), "starts: %.60s",
              svg);
    char stack[64][32];
    int depth = 0, n_tags = 0;
    for (const char *p = strchr(svg, '<'); p; p = strchr(p + 1, '<')) {
        const char *end = strchr(p, '>');
        cr_assert_not_null(end, "unterminated tag at offset %ld", (long)(p - svg));
        int close = p[1] == '/';
        size_t n = strcspn(p + 1 + close, " />");
        cr_assert(n > 0 && n < 32, "bad tag name at offset %ld", (long)(p - svg));
        if (close) {
            cr_assert_gt(depth, 0, "</%.*s> closes nothing", (int)n, p + 2);
            depth--;
            cr_assert(strlen(stack[depth]) == n && !strncmp(stack[depth], p + 2, n),
                      "</%.*s> closes <%s>", (int)n, p + 2, stack[depth]);
        } else if (end[-1] != '/') {
            cr_assert_lt(depth, 64);
            snprintf(stack[depth++], 32, "%.*s", (int)n, p + 1);
        }
        n_tags++;
    }
    cr_assert_eq(depth, 0, "%d tags left open, innermost <%s>", depth, depth ? stack[depth - 1] : "");
    cr_assert_gt(n_tags, 2);
    cr_assert_null(strstr(svg, "nan"), "NaN in the SVG");
    cr_assert_null(strstr(svg, "inf"), "Inf in the SVG");
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The vertices of the polyline of series key: n of them into xy (x, y pairs);
 * -1 when there is no such polyline. */
static int points_of(const char *svg, const char *key, double *xy, int max) {
    char cls[64];
    snprintf(cls, sizeof cls, "<polyline class=\"%s\"", key);
    const char *p = strstr(svg, cls);
    if (!p) return -1;
    p = strstr(p, "points=\"") + 8;
    int n = 0;
    while (*p != '"') {
        char *e;
        double x = strtod(p, &e);
        cr_assert_eq(*e, ',', "bad point in %s", key);
        double y = strtod(e + 1, &e);
        cr_assert_lt(n, max);
        xy[2 * n] = x, xy[2 * n + 1] = y, n++;
        p = e + (*e == ' ');
    }
    return n;
}

static char *train_lines(int n, char *buf, size_t cap, const char *extra) {
    size_t k = 0;
    for (int i = 1; i <= n; i++)
        k += (size_t)snprintf(buf + k, cap - k,
                              "{\"step\":%d,\"loss\":%g,\"lr\":%g,\"grad_norm\":%g,\"tok_s\":%d%s}\n",
                              i, 5.0 / i, 1e-3 * i / n, 1.0 + i % 3, 900 + i, extra);
    cr_assert_lt(k, cap);
    return buf;
}

/* Guards: a missing eval_loss series, panels for absent groups, a load panel
 * without load keys. */
Test(plot, training_with_eval) {
    static char text[16384];
    train_lines(30, text, sizeof text, ",\"extra\":[1,{\"a\":2}]");
    strcat(text, "{\"step\":10,\"eval_loss\":1.5}\n{\"step\":20,\"eval_loss\":1.2}\n");
    int rc;
    char *svg = plot_text(text, &rc);
    check_svg(svg);
    cr_assert_eq(rc, 0);
    cr_assert_eq(count(svg, "<polyline"), 5, "expected 5 polylines (loss, eval_loss, lr, "
                 "grad_norm, tok_s), got %d", count(svg, "<polyline"));
    double xy[200];
    cr_assert_eq(points_of(svg, "loss", xy, 100), 30);
    cr_assert_eq(points_of(svg, "eval_loss", xy, 100), 2);
    cr_assert_eq(points_of(svg, "load_max_mean", xy, 100), -1);
    cr_assert_null(strstr(svg, "expert load"));
    cr_assert_null(strstr(svg, "stroke-dasharray"));
    cr_assert_null(strstr(svg, "reward"));
    cr_assert(strstr(svg, ">run</text>"), "title missing");
    cr_assert(strstr(svg, ">step</text>"), "x axis label missing");
    free(svg);
}

/* Guards: the load panel missing when only the per-layer array is given,
 * the worst layer not being the maximum. */
Test(plot, expert_load_from_layers) {
    int rc;
    char *svg = plot_text("{\"step\":1,\"loss\":2,\"load_max_mean_layers\":[1.0,3.0]}\n"
                          "{\"step\":2,\"loss\":1,\"load_max_mean_layers\":[1.2,1.4,null]}\n",
                          &rc);
    check_svg(svg);
    cr_assert(strstr(svg, "expert load max/mean"));
    cr_assert(strstr(svg, "stroke-dasharray"), "no reference line at 1.5");
    double mean[8], worst[8];
    cr_assert_eq(points_of(svg, "load_max_mean", mean, 4), 2);
    cr_assert_eq(points_of(svg, "load_worst_layer", worst, 4), 2);
    /* step 1: mean 2.0 below the worst 3.0, so a larger y pixel */
    cr_assert_gt(mean[1], worst[1] + 1);
    /* step 2: worst 1.4, mean 1.3 */
    cr_assert_gt(mean[3], worst[3]);
    cr_assert_eq(count(svg, "<polyline"), 3);
    free(svg);
}

/* Guards: a bad line aborting the plot or going uncounted. */
Test(plot, broken_lines_skipped_and_counted) {
    int rc;
    char *svg = plot_text("{\"step\":1,\"loss\":3}\nnot json\n{\"step\":2,\"loss\":\n"
                          "[1,2]\n\n   \r\n{\"loss\":9}\n{\"step\":\"x\",\"loss\":9}\n"
                          "{\"step\":3,\"loss\":2.5}", &rc);
    check_svg(svg);
    cr_assert_eq(rc, 3, "expected 3 skipped lines, got %d", rc);
    double xy[20];
    cr_assert_eq(points_of(svg, "loss", xy, 10), 2);
    cr_assert(strstr(svg, "(3 unreadable lines skipped)"));
    free(svg);
}

/* Guards: NaN/Inf reaching the coordinates, or a NaN token losing the whole
 * line's other values. */
Test(plot, nonfinite_values_skipped) {
    int rc;
    char *svg = plot_text("{\"step\":1,\"loss\":3,\"lr\":0.1}\n"
                          "{\"step\":2,\"loss\":NaN,\"lr\":0.2,\"note\":\"NaN inf\"}\n"
                          "{\"step\":3,\"loss\":Infinity,\"lr\":0.3}\n"
                          "{\"step\":4,\"loss\":-inf,\"lr\":0.4}\n"
                          "{\"step\":5,\"loss\":null,\"lr\":0.5}\n"
                          "{\"step\":NaN,\"loss\":7,\"lr\":0.6}\n"
                          "{\"step\":7,\"loss\":2,\"lr\":0.7}\n", &rc);
    check_svg(svg);
    cr_assert_eq(rc, 0);
    double xy[40];
    cr_assert_eq(points_of(svg, "loss", xy, 20), 2);
    cr_assert_eq(points_of(svg, "lr", xy, 20), 6);
    free(svg);
}

/* Guards: a zero-width range dividing by zero. */
Test(plot, single_point) {
    int rc;
    char *svg = plot_text("{\"step\":0,\"loss\":0,\"lr\":0,\"grad_norm\":0,\"tok_s\":0}\n", &rc);
    check_svg(svg);
    cr_assert_eq(count(svg, "<polyline"), 4);
    cr_assert_eq(count(svg, "<circle"), 4, "a single point needs a marker");
    free(svg);
}

/* Decided: no data is a valid SVG saying so, not an error. */
Test(plot, empty_file_says_no_data) {
    int rc;
    char *svg = plot_text("", &rc);
    check_svg(svg);
    cr_assert_eq(rc, 0);
    cr_assert(strstr(svg, "no data"));
    cr_assert_eq(count(svg, "<polyline"), 0);
    free(svg);
}

/* Guards: a silent success or a stray output for a missing input. */
Test(plot, missing_file_names_it) {
    const char *in = h_path(g_dir, "nope.jsonl"), *out = h_path(g_dir, "nope.svg");
    Err err = {{0}};
    cr_assert_eq(plot_metrics_svg(in, out, NULL, &err), -1);
    cr_assert(strstr(err.msg, in), "error should name %s: %s", in, err.msg);
    cr_assert_lt(h_file_size(out), 0, "an SVG was written");
}

/* Guards: the vertex cap not applied, and downsampling losing a spike. */
Test(plot, long_run_downsampled_keeps_spike) {
    size_t cap = 20000 * 40, k = 0;
    char *text = malloc(cap);
    for (int i = 0; i < 20000; i++)
        k += (size_t)snprintf(text + k, cap - k, "{\"step\":%d,\"loss\":%g}\n", i,
                              i == 12345 ? 100.0 : 1.0 + (i % 7) * 0.01);
    int rc;
    char *svg = plot_text(text, &rc);
    free(text);
    check_svg(svg);
    static double xy[2 * PLOT_MAX_POINTS + 2];
    int n = points_of(svg, "loss", xy, PLOT_MAX_POINTS + 1);
    cr_assert(n > PLOT_MAX_POINTS / 2 && n <= PLOT_MAX_POINTS, "%d points", n);
    double top = 1e9;
    for (int i = 0; i < n; i++) top = xy[2 * i + 1] < top ? xy[2 * i + 1] : top;
    cr_assert_lt(top, 50, "the spike is gone (highest point at y=%g)", top);
    free(svg);
}

/* Guards: steps drawn in file order after a resume; the log axis. */
Test(plot, unsorted_steps_and_log_scale) {
    int rc;
    char *svg = plot_text("{\"step\":5,\"grad_norm\":0.01}\n{\"step\":1,\"grad_norm\":0.1}\n"
                          "{\"step\":9,\"grad_norm\":50}\n{\"step\":3,\"grad_norm\":1}\n", &rc);
    check_svg(svg);
    cr_assert(strstr(svg, "grad_norm (log)"));
    double xy[20];
    cr_assert_eq(points_of(svg, "grad_norm", xy, 10), 4);
    for (int i = 1; i < 4; i++) cr_assert_gt(xy[2 * i], xy[2 * i - 2], "x not increasing");
    free(svg);
    svg = plot_text("{\"step\":1,\"grad_norm\":1}\n{\"step\":2,\"grad_norm\":50}\n", &rc);
    cr_assert_null(strstr(svg, "(log)"), "50x range should stay linear");
    free(svg);
}

/* Guards: markup injected through the title. */
Test(plot, title_escaped) {
    const char *in = h_path(g_dir, "m.jsonl"), *out = h_path(g_dir, "m.svg");
    cr_assert_eq(h_write_text(in, "{\"step\":1,\"kl\":0.1}\n"), 0);
    Err err = {{0}};
    cr_assert_eq(plot_metrics_svg(in, out, "<a & \"b\">\n", &err), 0, "%s", err.msg);
    char *svg = h_read_file(out, NULL);
    check_svg(svg);
    cr_assert(strstr(svg, "&lt;a &amp; &quot;b&quot;&gt; </text>"));
    cr_assert(strstr(svg, "class=\"kl\""));
    free(svg);
}

/* A resumed run's metrics file keeps the lines up to its checkpoint's step
 * (eval lines of that step too) and appends; a new run's starts empty. */
Test(plot, metrics_open_for_a_resumed_run) {
    const char *in = h_path(g_dir, "metrics.jsonl");
    cr_assert_eq(h_write_text(in, "{\"step\": 0, \"unigram_entropy\": 5}\n"
                                  "{\"step\": 1, \"loss\": 3}\n"
                                  "{\"step\": 2, \"loss\": 2}\n"
                                  "{\"step\": 2, \"eval_loss\": 2.5}\n"
                                  "not json\n"
                                  "{\"step\": 3, \"loss\": 1}\n"
                                  "{\"step\": 4, \"loss\": 0.5}"), /* no final newline */
                 0);
    char mp[1024], pp[1024];
    Err err = {{0}};
    FILE *f = plot_metrics_open(g_dir, 2, mp, sizeof mp, pp, sizeof pp, &err);
    cr_assert_not_null(f, "%s", err.msg);
    cr_expect_str_eq(mp, in);
    cr_expect_str_eq(pp, h_path(g_dir, "metrics.svg"));
    fprintf(f, "{\"step\": 3, \"loss\": 1.5}\n");
    fclose(f);
    char *text = h_read_file(in, NULL);
    cr_expect_str_eq(text, "{\"step\": 0, \"unigram_entropy\": 5}\n"
                           "{\"step\": 1, \"loss\": 3}\n"
                           "{\"step\": 2, \"loss\": 2}\n"
                           "{\"step\": 2, \"eval_loss\": 2.5}\n"
                           "{\"step\": 3, \"loss\": 1.5}\n");
    free(text);
    f = plot_metrics_open(g_dir, -1, mp, sizeof mp, pp, sizeof pp, &err);
    cr_assert_not_null(f, "%s", err.msg);
    fclose(f);
    cr_expect_eq(h_file_size(in), 0, "a new run's metrics file is not empty");
}

static const char *whale_bin(void) {
    const char *b = getenv("WHALE_BIN");
    if (!b || !b[0]) b = "build/whale";
    cr_assert(access(b, X_OK) == 0, "whale binary %s is not executable (set WHALE_BIN)", b);
    return b;
}

/* Guards: the default output path, exit codes, one-line errors. */
Test(plot, cli) {
    const char *in = h_path(g_dir, "metrics.jsonl"), *svg = h_path(g_dir, "metrics.svg");
    cr_assert_eq(h_write_text(in, "{\"step\":1,\"reward\":0.5,\"accuracy\":0.2,\"format\":1}\n"
                                  "{\"step\":2,\"reward\":0.7,\"accuracy\":0.4,\"format\":1}\n"),
                 0);
    HRun r;
    char *ok[] = {(char *)whale_bin(), "plot", "--metrics", (char *)in, NULL};
    cr_assert_eq(h_run(&r, ok, 60), 0);
    cr_assert(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    cr_assert_gt(h_file_size(svg), 0, "%s not written", svg);
    char *text = h_read_file(svg, NULL);
    cr_assert_eq(count(text, "<polyline"), 3);
    free(text);
    h_run_free(&r);

    char *bad[] = {(char *)whale_bin(), "plot", "--metrics", (char *)in, "--bogus", NULL};
    cr_assert_eq(h_run(&r, bad, 60), 0);
    cr_assert(r.exited && r.code == 2, "%s: %s", r.cmd, h_run_status(&r));
    cr_assert(h_count_lines(r.err) == 1 && strstr(r.err, "--bogus"), "stderr: %s", r.err);
    h_run_free(&r);

    char *none[] = {(char *)whale_bin(), "plot", NULL};
    cr_assert_eq(h_run(&r, none, 60), 0);
    cr_assert(r.exited && r.code == 2, "%s: %s", r.cmd, h_run_status(&r));
    h_run_free(&r);

    const char *missing = h_path(g_dir, "gone/metrics.jsonl");
    char *miss[] = {(char *)whale_bin(), "plot", "--metrics", (char *)missing, NULL};
    cr_assert_eq(h_run(&r, miss, 60), 0);
    cr_assert(r.exited && r.code == 1, "%s: %s", r.cmd, h_run_status(&r));
    cr_assert(h_count_lines(r.err) == 1 && strstr(r.err, missing), "stderr: %s", r.err);
    h_run_free(&r);
}
