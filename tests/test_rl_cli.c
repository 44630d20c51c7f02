/* SPDX-License-Identifier: MIT */
/* whale eval and whale grpo as a user runs them. eval: the same model and
 * seed give the same figures on every run, the JSON line has DESIGN.md's
 * fields, bad flags are named; grpo (with a KL reference): metrics.jsonl
 * lines with DESIGN.md's fields and a model eval loads. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "helpers.h"
#include "whale_cli.h"

static char g_dir[64];

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "rl"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
}

static void teardown(void) { h_rmtree(g_dir); }

TestSuite(rl_cli, .init = setup, .fini = teardown);

Test(rl_cli, same_figures_on_every_run, .timeout = 300) {
    HRun r;
    WHALE(&r, "init", "-p", "tiny", "-o", h_path(g_dir, "m"), "--seed", "3", "--std", "0.5");
    expect_ok(&r);
    h_run_free(&r);
    char *first = NULL;
    for (int run = 0; run < 2; run++) {
        WHALE(&r, "eval", "-m", h_path(g_dir, "m"), "--task", "arith", "--n", "6", "--k", "3",
              "--seed", "5", "--max-tokens", "12", "--json", "-t", run ? "1" : "2");
        expect_ok(&r);
        json_t *j = json_loads(r.out, 0, NULL);
        cr_assert(j, "not JSON: %s", r.out);
        const char *keys[] = {"task", "n", "pass1", "pass1_sampled", "passk", "k", "completion_len"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            cr_expect(json_object_get(j, keys[i]), "no %s in %s", keys[i], r.out);
        cr_expect_eq(json_integer_value(json_object_get(j, "n")), 6);
        cr_expect_eq(json_integer_value(json_object_get(j, "k")), 3);
        json_decref(j);
        if (!first) first = strdup(r.out);
        else cr_expect_str_eq(r.out, first, "a second run gave other figures");
        h_run_free(&r);
    }
    free(first);
}

Test(rl_cli, bad_flags_are_named) {
    HRun r;
    WHALE(&r, "eval", "-m", h_path(g_dir, "m"), "--task", "nosuch");
    EXPECT_FAIL(&r, "nosuch", "arith");
    h_run_free(&r);
    WHALE(&r, "eval", "-m", h_path(g_dir, "m"), "--task", "arith", "--difficulty", "99");
    EXPECT_FAIL(&r, "difficulty");
    h_run_free(&r);
    WHALE(&r, "eval", "-m", h_path(g_dir, "nomodel"), "--task", "arith");
    EXPECT_FAIL(&r, "nomodel");
    h_run_free(&r);
}

Test(rl_cli, grpo_writes_metrics_and_a_model, .timeout = 300) {
    HRun r;
    WHALE(&r, "init", "-p", "tiny", "-o", h_path(g_dir, "m"), "--seed", "3");
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, "grpo", "-m", h_path(g_dir, "m"), "--task", "arith-add", "--template", "short",
          "--out", h_path(g_dir, "g"), "--steps", "2", "--prompts", "3", "--group", "4",
          "--max-tokens", "16", "-t", "1", "--kl", "0.05");
    expect_ok(&r);
    h_run_free(&r);
    char *m = h_read_file(h_path(h_path(g_dir, "g"), "metrics.jsonl"), NULL);
    cr_assert(m, "no metrics.jsonl");
    int lines = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert(j, "not JSON: %s", line);
        const char *keys[] = {"step", "reward", "accuracy", "format", "completion_len", "kl", "tok_s"};
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            cr_expect(json_object_get(j, keys[i]), "no %s in %s", keys[i], line);
        cr_expect(json_number_value(json_object_get(j, "kl")) >= 0);
        json_decref(j);
    }
    free(m);
    cr_expect_eq(lines, 2);
    /* the run directory is a model eval loads */
    WHALE(&r, "eval", "-m", h_path(g_dir, "g"), "--task", "arith-add", "--template", "short",
          "--n", "2", "--k", "0", "--max-tokens", "8", "--json");
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, "grpo", "-m", h_path(g_dir, "m"), "--task", "arith-add", "--out",
          h_path(g_dir, "g2"), "--group", "1");
    EXPECT_FAIL(&r, "--group");
    h_run_free(&r);
}
