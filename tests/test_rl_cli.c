/* SPDX-License-Identifier: MIT */
/* whale eval and whale grpo as a user runs them. eval: the same model and
 * seed give the same figures on every run, the JSON line has DESIGN.md's
 * fields, bad flags are named; grpo (with a KL reference): metrics.jsonl
 * lines with DESIGN.md's fields and a model eval loads; a run stopped and
 * resumed (--resume) ends with the bytes of an uninterrupted one, and a
 * resume that cannot continue says why; the R1-Zero recipe
 * (recipes/r1-zero/run.sh) end to end at toy sizes. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "helpers.h"
#include "kernels/gemm.h"
#include "task_fixture.h"
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

/* g_dir/skilled: a tiny model fine-tuned on six worked arith-add solutions
 * (difficulty 1, seed 7) until its samples of those problems are right some
 * of the time (not always), so GRPO's groups carry a signal to learn from. */
static void make_skilled_model(void) {
    char prompts[6][128], completions[6][512];
    const char *data = h_path(g_dir, "solutions.jsonl");
    cr_assert_eq(h_write_task_solutions(data, "arith-add", 7, 1, 6, prompts, completions), 0);
    whale_init_tiny(h_path(g_dir, "m"), 5);
    HRun r;
    WHALE(&r, "sft", "-m", h_path(g_dir, "m"), "--data", data, "--out", h_path(g_dir, "skilled"),
          "--steps", "60", "--batch", "6", "--lr", "3e-3", "--schedule", "constant",
          "--weight-decay", "0", "--save-every", "0", "-t", "1");
    expect_ok(&r);
    h_run_free(&r);
}

/* GRPO from g_dir/MODEL on the skilled model's problems, with a KL
 * reference and the MoE balancing biases moving; GRPO_STEP: what a step
 * draws, 2 problems x 4 samples of seed 7 (a flag may be given once). */
#define GRPO_ARGS(model, out)                                                                   \
    "grpo", "-m", h_path(g_dir, model), "--task", "arith-add", "--template", "short",           \
        "--difficulty", "1", "--max-tokens", "48", "--kl", "0.05", "--bias-gamma", "0.01", "-t", \
        "1", "--out", h_path(g_dir, out)
#define GRPO_STEP "--seed", "7", "--prompts", "2", "--group", "4"

Test(rl_cli, grpo_resume_equals_one_run, .timeout = 300) {
    make_skilled_model();
    HRun r;
    WHALE(&r, GRPO_ARGS("skilled", "a"), GRPO_STEP, "--steps", "4");
    expect_ok(&r);
    h_run_free(&r);
    /* b stops after step 3 with a checkpoint of step 2 and resumes from it */
    WHALE(&r, GRPO_ARGS("skilled", "b"), GRPO_STEP, "--steps", "3", "--save-every", "2");
    expect_ok(&r);
    h_run_free(&r);
    EXPECT_RESUME_EQUALS_RUN(h_path(g_dir, "a"), h_path(g_dir, "b"), 2, 4,
                             GRPO_ARGS("skilled", "b"), GRPO_STEP, "--steps", "4", "--resume");
    /* the steps after the checkpoint updated the policy (groups with a signal) */
    char *m = h_read_file(h_path(h_path(g_dir, "a"), "metrics.jsonl"), NULL);
    int kept = 0, lines = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert(j, "not JSON: %s", line);
        if (json_integer_value(json_object_get(j, "step")) > 2)
            kept += (int)json_integer_value(json_object_get(j, "kept_groups"));
        json_decref(j);
    }
    cr_expect_eq(lines, 4);
    cr_expect_gt(kept, 0, "no group of steps 3 and 4 had a signal: nothing was trained");
    free(m);
}

/* --bf16 reaches the engine from grpo and sft (and distill, which shares
 * sft's flags): the same run with it ends with other weights where the CPU
 * has AVX512-BF16, and says it stays float32 where it has not. GRPO starts
 * from the skilled model, whose groups carry a signal. */
Test(rl_cli, grpo_and_sft_take_bf16, .timeout = 300) {
    const int have = gemm_bf16_available();
    make_skilled_model();
    const char *runs[2] = {"f32", "bf16"};
    HRun r;
    for (int i = 0; i < 2; i++) {
        char g[16], sft[16];
        snprintf(g, sizeof g, "%sg", runs[i]), snprintf(sft, sizeof sft, "%ss", runs[i]);
        WHALE(&r, GRPO_ARGS("skilled", g), GRPO_STEP, "--steps", "2", i ? "--bf16" : "-q");
        expect_ok(&r);
        cr_expect(!i || have || strstr(r.err, "no AVX512-BF16"), "no fallback note: %s", r.err);
        h_run_free(&r);
        WHALE(&r, "sft", "-m", h_path(g_dir, "m"), "--data", h_path(g_dir, "solutions.jsonl"),
              "--out", h_path(g_dir, sft), "--steps", "4", "--batch", "4", "--save-every", "0",
              "-t", "1", i ? "--bf16" : "-q");
        expect_ok(&r);
        h_run_free(&r);
    }
    for (int c = 0; c < 2; c++) {
        const char *cmd = c ? "sft" : "grpo";
        char a[64], b[64];
        snprintf(a, sizeof a, "f32%c/model.safetensors", cmd[0]);
        snprintf(b, sizeof b, "bf16%c/model.safetensors", cmd[0]);
        cr_expect_eq(!same_file(h_path(g_dir, a), h_path(g_dir, b)), have,
                     "%s --bf16 (AVX512-BF16 here: %d)", cmd, have);
    }
}

Test(rl_cli, grpo_resume_refuses_what_it_cannot_continue, .timeout = 120) {
    whale_init_tiny(h_path(g_dir, "m"), 3);
    HRun r;
    WHALE(&r, GRPO_ARGS("m", "g"), GRPO_STEP, "--steps", "1");
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, GRPO_ARGS("m", "empty"), GRPO_STEP, "--steps", "2", "--resume");
    EXPECT_FAIL(&r, "no checkpoint");
    h_run_free(&r);
    /* the flags that decide what a step draws, each changed */
    const struct {
        const char *seed, *prompts, *group, *mu, *was, *is;
    } changed[] = {{"7", "3", "4", "2", "--prompts 2", "--prompts 3"},
                   {"7", "2", "3", "2", "--group 4", "--group 3"},
                   {"7", "2", "4", "1", "--mu 2", "--mu 1"},
                   {"8", "2", "4", "2", "--seed 7", "--seed 8"}};
    for (size_t i = 0; i < sizeof changed / sizeof *changed; i++) {
        WHALE(&r, GRPO_ARGS("m", "g"), "--steps", "2", "--resume", "--seed", changed[i].seed,
              "--prompts", changed[i].prompts, "--group", changed[i].group, "--mu", changed[i].mu);
        EXPECT_FAIL(&r, changed[i].was, changed[i].is);
        h_run_free(&r);
    }
    /* -m a model of another shape than the checkpoint's */
    json_t *c = json_load_file(h_path(h_path(g_dir, "m"), "config.json"), 0, NULL);
    cr_assert(c, "no config.json");
    json_object_set_new(c, "num_hidden_layers", json_integer(3));
    cr_assert_eq(mkdir(h_path(g_dir, "deeper"), 0755), 0);
    cr_assert_eq(json_dump_file(c, h_path(h_path(g_dir, "deeper"), "config.json"), 0), 0);
    json_decref(c);
    WHALE(&r, GRPO_ARGS("deeper", "g"), GRPO_STEP, "--steps", "2", "--resume");
    EXPECT_FAIL(&r, "another shape", "num_hidden_layers");
    h_run_free(&r);
}

/* The R1-Zero recipe end to end at toy sizes: every stage runs, the models
 * land where DESIGN.md says, and report.json carries its fields. */
Test(rl_cli, recipe_runs_end_to_end, .timeout = 600) {
    const char *out = h_path(g_dir, "recipe");
    char *argv[] = {"/bin/bash", "recipes/r1-zero/run.sh", "--task", "arith", "--out", (char *)out,
                    "--threads", "1", "--set", "CORPUS_N=300", "--set", "PRE_STEPS=8",
                    "--set", "STU_STEPS=4", "--set", "PRE_BATCH=2", "--set", "EVAL_N=3",
                    "--set", "EVAL_K=2", "--set", "MAX_TOKENS=16", "--set", "GRPO_STEPS=2",
                    "--set", "GRPO_P=2", "--set", "GRPO_G=2", "--set", "DIST_PROBLEMS=3",
                    "--set", "DIST_K=2", "--set", "DIST_STEPS=2", NULL};
    HRun r;
    cr_assert_eq(h_run(&r, argv, 580), 0);
    expect_ok(&r);
    cr_assert(strstr(r.out, "report: "), "no report line in:\n%s", r.out);
    h_run_free(&r);
    const char *models[] = {"base", "grpo"};
    for (int i = 0; i < 2; i++) {
        const char *f = h_path(h_path(out, models[i]), "model.safetensors");
        cr_assert_eq(access(f, R_OK), 0, "%s is missing", f);
    }
    json_error_t je;
    json_t *j = json_load_file(h_path(out, "report.json"), 0, &je);
    cr_assert_not_null(j, "report.json: %s", je.text);
    cr_assert_str_eq(json_string_value(json_object_get(j, "task")), "arith-add");
    const char *fields[] = {"pass1_base", "pass1_sampled_base", "passk_base", "pass1_grpo",
                            "pass1_sampled_grpo", "passk_grpo", "pass1_student", "minutes"};
    for (int i = 0; i < 8; i++) {
        json_t *v = json_object_get(j, fields[i]);
        if (i == 6 && json_is_null(v)) continue; /* a toy teacher may get nothing right to distil */
        cr_assert(json_is_number(v), "report.json: %s is not a number", fields[i]);
        double x = json_number_value(v);
        cr_assert(x >= 0 && (i == 7 || x <= 1), "report.json: %s = %g", fields[i], x);
    }
    cr_assert_eq(json_integer_value(json_object_get(j, "k")), 2);
    json_decref(j);
    size_t n;
    char *md = h_read_file(h_path(out, "report.md"), &n);
    cr_assert(md && strstr(md, "![pass rates before and after GRPO](passrates.svg)"));
    free(md);
    cr_assert_eq(access(h_path(out, "passrates.svg"), R_OK), 0);
}
