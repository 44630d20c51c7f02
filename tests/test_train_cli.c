/* SPDX-License-Identifier: MIT */
/* whale train as a user runs it: a tiny model learns a generated corpus
 * (the loss goes under the corpus's unigram entropy); a run stopped and
 * resumed, or killed with SIGKILL mid-run and resumed, ends with the same
 * bytes as an uninterrupted run; Ctrl-C leaves a checkpoint; bad shards,
 * a vocabulary mismatch, a resume into another model shape and NaN losses
 * each get a clear message. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "kernels/gemm.h"
#include "whale_cli.h"

static char g_dir[64];

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "train"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
}

static void teardown(void) { h_rmtree(g_dir); }

TestSuite(train_cli, .init = setup, .fini = teardown);

/* g_dir/model (tiny, seed 1) and g_dir/data from the corpus. */
static void make_model_and_data(void) {
    HRun r;
    WHALE(&r, "init", "-p", "tiny", "-o", h_path(g_dir, "model"), "--seed", "1");
    expect_ok(&r);
    h_run_free(&r);
    cr_assert_eq(h_write_grammar_corpus(h_path(g_dir, "corpus.jsonl"), 300, 11), 0);
    WHALE(&r, "data", "-m", h_path(g_dir, "model"), "-i", h_path(g_dir, "corpus.jsonl"), "-o",
          h_path(g_dir, "data"), "--val-fraction", "0.05");
    expect_ok(&r);
    h_run_free(&r);
}

/* The common flags of the small runs: 16 steps of 4 x 32 tokens. */
#define TRAIN_ARGS(out)                                                                         \
    "train", "-m", h_path(g_dir, "model"), "--data", h_path(g_dir, "data"), "--out",            \
        h_path(g_dir, out), "--batch", "4", "--seq", "32", "--lr", "3e-3",     \
        "--eval-every", "8", "--save-every", "4", "-t", "2"

Test(train_cli, loss_goes_under_the_unigram_entropy, .timeout = 300) {
    make_model_and_data();
    HRun r;
    WHALE(&r, "train", "-m", h_path(g_dir, "model"), "--data", h_path(g_dir, "data"), "--out",
          h_path(g_dir, "run"), "--steps", "60", "--batch", "8", "--seq", "32", "--lr", "3e-3",
          "--eval-every", "30", "--save-every", "0", "-t", "2", "-q", "--balance-alpha", "0");
    expect_ok(&r);
    h_run_free(&r);
    char *m = h_read_file(h_path(h_path(g_dir, "run"), "metrics.jsonl"), NULL);
    cr_assert(m);
    double entropy = NAN, first = NAN, last = NAN, eval = NAN, load = NAN;
    int n_train = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert(j, "metrics line is not JSON: %s", line);
        json_t *v;
        if ((v = json_object_get(j, "unigram_entropy"))) entropy = json_number_value(v);
        if ((v = json_object_get(j, "eval_loss"))) eval = json_number_value(v);
        if ((v = json_object_get(j, "loss"))) {
            if (n_train++ == 0) first = json_number_value(v);
            last = json_number_value(v);
            load = json_number_value(json_object_get(j, "load_max_mean"));
            cr_expect(json_object_get(j, "lr") && json_object_get(j, "grad_norm") &&
                          json_object_get(j, "tok_s") && json_object_get(j, "load_max_mean"),
                      "a training line lacks a field: %s", line);
        }
        json_decref(j);
    }
    free(m);
    cr_expect_eq(n_train, 60);
    cr_expect(last < entropy - 0.3, "loss %.3f (first %.3f) not under the unigram entropy %.3f",
              last, first, entropy);
    cr_expect(eval < entropy - 0.3, "eval loss %.3f vs unigram entropy %.3f", eval, entropy);
    /* the bias rule alone (no balance loss) keeps the experts' loads even */
    cr_expect(load <= 1.5, "expert load max/mean %.3f at the last step", load);
    cr_expect_geq(h_file_size(h_path(h_path(g_dir, "run"), "metrics.svg")), 1000);
    /* the run directory is a model the other commands load */
    WHALE(&r, "generate", "-m", h_path(g_dir, "run"), "-p", "the cat", "-n", "8", "--temp", "0");
    expect_ok(&r);
    h_run_free(&r);
}

Test(train_cli, stop_and_resume_equals_one_run, .timeout = 300) {
    make_model_and_data();
    HRun r;
    WHALE(&r, TRAIN_ARGS("a"), "--steps", "16");
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, TRAIN_ARGS("b"), "--steps", "16", "--stop-at", "6");
    expect_ok(&r);
    h_run_free(&r);
    cr_assert_lt(h_file_size(h_path(h_path(g_dir, "b"), "checkpoint-00000008")), 0,
                 "the stopped run went past its step");
    WHALE(&r, TRAIN_ARGS("b"), "--steps", "16", "--resume");
    expect_ok(&r);
    h_run_free(&r);
    expect_same_file(h_path(h_path(g_dir, "a"), "model.safetensors"),
                     h_path(h_path(g_dir, "b"), "model.safetensors"));
    expect_same_file(h_path(h_path(g_dir, "a"), "checkpoint-00000016/optimizer.safetensors"),
                     h_path(h_path(g_dir, "b"), "checkpoint-00000016/optimizer.safetensors"));
    char *ma = metrics_without_timing(h_path(g_dir, "a"));
    char *mb = metrics_without_timing(h_path(g_dir, "b"));
    cr_expect_str_eq(mb, ma, "the resumed run's metrics differ from the uninterrupted run's");
    free(ma), free(mb);
}

/* The training losses of run directory dir's metrics.jsonl into loss[0..max); their count. */
static int read_losses(const char *dir, double *loss, int max) {
    char *m = h_read_file(h_path(dir, "metrics.jsonl"), NULL);
    cr_assert(m, "no metrics.jsonl in %s", dir);
    int n = 0;
    for (char *line = strtok(m, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL), *v;
        cr_assert(j, "metrics line is not JSON: %s", line);
        if ((v = json_object_get(j, "loss"))) loss[n++] = json_number_value(v);
        json_decref(j);
    }
    free(m);
    return n;
}

/* --bf16 rounds the weight products' operands to bfloat16: the run is
 * another run (its weights differ), but its losses follow the float32
 * run's within 2% at every step. Without AVX512-BF16 it says so and is the
 * float32 run. */
Test(train_cli, bf16_follows_float32, .timeout = 300) {
    make_model_and_data();
    HRun r;
    WHALE(&r, TRAIN_ARGS("f32"), "--steps", "16");
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, TRAIN_ARGS("bf16"), "--steps", "16", "--bf16");
    expect_ok(&r);
    const int have = gemm_bf16_available();
    cr_expect(have || strstr(r.err, "no AVX512-BF16"), "no note that --bf16 fell back: %s", r.err);
    h_run_free(&r);
    double a[16], b[16];
    cr_assert_eq(read_losses(h_path(g_dir, "f32"), a, 16), 16);
    cr_assert_eq(read_losses(h_path(g_dir, "bf16"), b, 16), 16);
    for (int i = 0; i < 16; i++)
        cr_expect(fabs(b[i] - a[i]) <= 0.02 * a[i], "step %d: loss %.4f with --bf16, %.4f without",
                  i + 1, b[i], a[i]);
    cr_expect_lt(b[15], b[0] - 0.5, "--bf16 did not learn: loss %.3f -> %.3f", b[0], b[15]);
    const int differ = !same_file(h_path(h_path(g_dir, "f32"), "model.safetensors"),
                                  h_path(h_path(g_dir, "bf16"), "model.safetensors"));
    cr_expect(differ == have, "%s",
              have ? "--bf16 left the weights bit for bit as float32's"
                   : "--bf16 without AVX512-BF16 changed the weights");
}

/* Start `whale ARGS` in the background; returns its pid. */
static pid_t spawn(const char *const *args) {
    char *argv[64];
    int n = 0;
    argv[n++] = (char *)whale_bin();
    for (; *args; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Wait until path exists (polling), at most timeout_s. */
static int wait_for(const char *path, int timeout_s) {
    for (int i = 0; i < timeout_s * 100; i++) {
        if (access(path, F_OK) == 0) return 0;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    return -1;
}

Test(train_cli, sigkill_mid_run_then_resume_equals_one_run, .timeout = 300) {
    make_model_and_data();
    HRun r;
    WHALE(&r, TRAIN_ARGS("a"), "--steps", "16");
    expect_ok(&r);
    h_run_free(&r);
    /* kill as soon as the first checkpoint is named: the kill lands while
     * later steps and checkpoints are being written */
    pid_t pid = spawn((const char *const[]){TRAIN_ARGS("b"), "--steps", "16", NULL});
    cr_assert_eq(wait_for(h_path(h_path(g_dir, "b"), "latest"), 120), 0, "no checkpoint appeared");
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    /* whatever the instant, the named checkpoint is whole */
    WHALE(&r, "info", "-m", h_path(g_dir, "b"));
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, TRAIN_ARGS("b"), "--steps", "16", "--resume");
    expect_ok(&r);
    h_run_free(&r);
    expect_same_file(h_path(h_path(g_dir, "a"), "model.safetensors"),
                     h_path(h_path(g_dir, "b"), "model.safetensors"));
    char *ma = metrics_without_timing(h_path(g_dir, "a"));
    char *mb = metrics_without_timing(h_path(g_dir, "b"));
    cr_expect_str_eq(mb, ma, "the resumed run's metrics differ from the uninterrupted run's");
    free(ma), free(mb);
}

Test(train_cli, sigint_writes_a_checkpoint, .timeout = 300) {
    make_model_and_data();
    pid_t pid = spawn((const char *const[]){TRAIN_ARGS("c"), "--steps", "16", NULL});
    cr_assert_eq(wait_for(h_path(h_path(g_dir, "c"), "metrics.jsonl"), 120), 0);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return; /* it finished before the signal */
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "expected exit 130 after SIGINT");
    char *latest = h_read_file(h_path(h_path(g_dir, "c"), "latest"), NULL);
    cr_assert(latest, "SIGINT left no checkpoint");
    free(latest);
    HRun r;
    WHALE(&r, TRAIN_ARGS("c"), "--steps", "16", "--resume");
    expect_ok(&r);
    h_run_free(&r);
}

Test(train_cli, bad_shards_and_mismatches_are_named, .timeout = 300) {
    make_model_and_data();
    HRun r;
    /* a truncated shard */
    const char *shard = h_path(h_path(g_dir, "data"), "train-00000.bin");
    long long n = h_file_size(shard);
    cr_assert_gt(n, 100);
    cr_assert_eq(truncate(shard, n - 6), 0);
    WHALE(&r, TRAIN_ARGS("x"), "--steps", "16");
    EXPECT_FAIL(&r, "train-00000.bin");
    h_run_free(&r);
    /* shards made for another vocabulary */
    WHALE(&r, "init", "-p", "small", "-o", h_path(g_dir, "small"));
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, "data", "-m", h_path(g_dir, "small"), "-i", h_path(g_dir, "corpus.jsonl"), "-o",
          h_path(g_dir, "data2"));
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, "train", "-m", h_path(g_dir, "model"), "--data", h_path(g_dir, "data2"), "--out",
          h_path(g_dir, "y"), "--steps", "2", "--batch", "2", "--seq", "16");
    EXPECT_FAIL(&r, "vocab");
    h_run_free(&r);
    /* resuming a run of the tiny model as the small one */
    WHALE(&r, "train", "-m", h_path(g_dir, "small"), "--data", h_path(g_dir, "data2"), "--out",
          h_path(g_dir, "z"), "--steps", "1", "--batch", "2", "--seq", "16");
    expect_ok(&r);
    h_run_free(&r);
    WHALE(&r, "train", "-m", h_path(g_dir, "model"), "--data", h_path(g_dir, "data2"), "--out",
          h_path(g_dir, "z"), "--steps", "2", "--batch", "2", "--seq", "16", "--resume");
    EXPECT_FAIL(&r, "another shape", "vocab_size");
    h_run_free(&r);
    /* resume with nothing to resume */
    WHALE(&r, TRAIN_ARGS("empty"), "--steps", "16", "--resume");
    EXPECT_FAIL(&r, "no checkpoint");
    h_run_free(&r);
}

Test(train_cli, nan_steps_are_skipped_then_stop, .timeout = 300) {
    make_model_and_data();
    HRun r;
    /* one bad step: reported, skipped, training goes on */
    setenv("WHALE_FAULT_NAN_STEPS", "3", 1);
    WHALE(&r, TRAIN_ARGS("n1"), "--steps", "6");
    expect_ok(&r);
    cr_expect(strstr(r.err, "step 3") && strstr(r.err, "skipped"), "no skip report: %s", r.err);
    h_run_free(&r);
    char *s = h_read_file(h_path(h_path(g_dir, "n1"), "checkpoint-00000006/trainer_state.json"), NULL);
    cr_assert(s);
    cr_expect(strstr(s, "\"nan_skipped\": 1"), "state: %s", s);
    free(s);
    /* many in a row: stop with a message, the last good weights kept */
    setenv("WHALE_FAULT_NAN_STEPS", "2,3,4,5,6", 1);
    WHALE(&r, TRAIN_ARGS("n2"), "--steps", "16", "--max-nan", "3");
    cr_expect(r.exited && r.code == 1, "expected exit 1, got %s", h_run_status(&r));
    cr_expect(strstr(r.err, "not finite for 3 steps"), "stderr: %s", r.err);
    h_run_free(&r);
    unsetenv("WHALE_FAULT_NAN_STEPS");
    WHALE(&r, "info", "-m", h_path(g_dir, "n2"));
    expect_ok(&r);
    h_run_free(&r);
}
