/* SPDX-License-Identifier: MIT */
/* Data-parallel training under `mpirun --oversubscribe -np 2` on this one
 * machine (loopback / shared memory), against the single-process trainer:
 * two ranks take the same steps as one rank with twice the gradient
 * accumulation (losses and weights within 1e-5 relative); a rank killed
 * mid-step ends the job within 30 s with a message naming it, and one
 * rank resumes the run from the last checkpoint; a rank that stops
 * answering ends the job through the collective timeout; weights that
 * drift apart stop the job with a message. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "io/safetensors.h"
#include "whale_cli.h"

#define MPIRUN "/usr/bin/mpirun"

static char g_dir[64];

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "mpi"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
    /* CI runs as root, which mpirun refuses unless told twice */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    /* Under make asan: OpenMPI 4.1 keeps thousands of allocations until
     * exit, from plugins LeakSanitizer cannot name, so the ranks run
     * without leak checks (AddressSanitizer's other checks stay on); the
     * same trainer code runs under leak checks in test_train_cli.c. */
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%sdetect_leaks=0", asan ? asan : "", asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    unsetenv("WHALE_FAULT_RANK");
    unsetenv("WHALE_COMM_TIMEOUT");
}

static void teardown(void) { h_rmtree(g_dir); }

TestSuite(mpi, .init = setup, .fini = teardown);

/* A tiny model and shards of a small grammar's sentences. */
static void make_model_and_data(void) {
    cr_assert_eq(h_write_grammar_corpus(h_path(g_dir, "corpus.jsonl"), 200, 5), 0);
    HRun h;
    WHALE(&h, "init", "-p", "tiny", "-o", h_path(g_dir, "model"), "--seed", "3");
    expect_ok(&h);
    h_run_free(&h);
    WHALE(&h, "data", "-m", h_path(g_dir, "model"), "-i", h_path(g_dir, "corpus.jsonl"), "-o",
          h_path(g_dir, "data"), "--val-fraction", "0.05");
    expect_ok(&h);
    h_run_free(&h);
}

/* `whale train` into g_dir/out for `steps` steps: on `ranks` processes
 * (mpirun, one thread each) or, with ranks 0, in this process's way (no
 * launcher, two threads). extra: more flags, NULL-terminated. */
static void train(HRun *h, int ranks, const char *out, int steps, const char *accum,
                  const char *const *extra) {
    char steps_s[16], np[16];
    snprintf(steps_s, sizeof steps_s, "%d", steps);
    snprintf(np, sizeof np, "%d", ranks);
    char *argv[64];
    int n = 0;
    if (ranks > 0) {
        cr_assert(access(MPIRUN, X_OK) == 0, MPIRUN " is missing (scripts/deps.sh installs openmpi-bin)");
        const char *pre[] = {MPIRUN, "--oversubscribe", "-np", np};
        for (int i = 0; i < 4; i++) argv[n++] = (char *)pre[i];
    }
    const char *args[] = {whale_bin(), "train", "-m", h_path(g_dir, "model"), "--data",
                          h_path(g_dir, "data"), "--out", h_path(g_dir, out), "--steps", steps_s,
                          "--batch", "4", "--seq", "32", "--lr", "3e-3", "--eval-every", "4",
                          "--save-every", "2", "--grad-accum", accum, "-t", ranks > 0 ? "1" : "2"};
    for (size_t i = 0; i < sizeof args / sizeof *args; i++) argv[n++] = (char *)args[i];
    for (; extra && *extra; extra++) argv[n++] = (char *)*extra;
    argv[n] = NULL;
    cr_assert_eq(h_run(h, argv, RUN_TIMEOUT_S), 0, "cannot run %s", argv[0]);
}

/* The "loss" and "eval_loss" values of a run's metrics.jsonl, in order. */
static int read_losses(const char *run, double *v, int max) {
    char *m = h_read_file(h_path(h_path(g_dir, run), "metrics.jsonl"), NULL);
    cr_assert(m, "%s has no metrics.jsonl", run);
    int n = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert(j, "%s: a metrics line is not JSON: %s", run, line);
        json_t *x = json_object_get(j, "loss");
        if (!x) x = json_object_get(j, "eval_loss");
        if (x && n < max) v[n++] = json_number_value(x);
        json_decref(j);
    }
    free(m);
    return n;
}

static void expect_same_losses(const char *a, const char *b, int want) {
    double x[64], y[64];
    int nx = read_losses(a, x, 64), ny = read_losses(b, y, 64);
    cr_assert_eq(nx, want, "%s: %d losses in metrics.jsonl, expected %d (one line per step)", a, nx, want);
    cr_assert_eq(ny, want, "%s: %d losses in metrics.jsonl, expected %d", b, ny, want);
    for (int i = 0; i < nx; i++)
        cr_expect(fabs(x[i] - y[i]) <= 1e-5 * fabs(y[i]), "loss %d: %s %.9g vs %s %.9g", i, a,
                  x[i], b, y[i]);
}

/* Every tensor of two model files within 1e-5 of the larger magnitude. */
static void expect_close_models(const char *a, const char *b) {
    SafeTensors sa, sb;
    Err err = {0};
    cr_assert_eq(st_open(&sa, h_path(g_dir, a), &err), 0, "%s", err.msg);
    cr_assert_eq(st_open(&sb, h_path(g_dir, b), &err), 0, "%s", err.msg);
    cr_assert_eq(sa.n_tensors, sb.n_tensors);
    for (int i = 0; i < sa.n_tensors; i++) {
        const StTensor *ta = &sa.tensors[i], *tb = st_find(&sb, ta->name);
        cr_assert(tb && tb->n_bytes == ta->n_bytes, "%s: %s missing or resized", b, ta->name);
        const int64_t n = st_numel(ta);
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
        cr_assert(x && y);
        cr_assert_eq(st_to_f32(&sa, ta, x, &err), 0, "%s", err.msg);
        cr_assert_eq(st_to_f32(&sb, tb, y, &err), 0, "%s", err.msg);
        double amax = 0, dmax = 0;
        for (int64_t k = 0; k < n; k++) {
            amax = fmax(amax, fabs(y[k]));
            dmax = fmax(dmax, fabs((double)x[k] - y[k]));
        }
        cr_expect(dmax <= 1e-5 * amax, "%s: %s and %s differ by %g (largest value %g)", ta->name,
                  a, b, dmax, amax);
        free(x), free(y);
    }
    st_close(&sa), st_close(&sb);
}

Test(mpi, two_ranks_equal_one_rank_with_twice_the_accumulation, .timeout = 300) {
    make_model_and_data();
    HRun h;
    train(&h, 0, "one", 5, "2", NULL);
    expect_ok(&h);
    h_run_free(&h);
    train(&h, 2, "two", 5, "1", NULL);
    expect_ok(&h);
    h_run_free(&h);
    /* 5 step losses and the eval losses of steps 4 and 5, written once (by rank 0) */
    expect_same_losses("two", "one", 7);
    expect_close_models("two/model.safetensors", "one/model.safetensors");
    expect_close_models("two/checkpoint-00000005/optimizer.safetensors",
                        "one/checkpoint-00000005/optimizer.safetensors");
    char *st = h_read_file(h_path(g_dir, "two/checkpoint-00000005/trainer_state.json"), NULL);
    cr_assert(st && strstr(st, "\"ranks\": 2"), "trainer_state.json should record 2 ranks:\n%s", st);
    free(st);
}

Test(mpi, a_killed_rank_ends_the_job_and_one_rank_resumes, .timeout = 300) {
    make_model_and_data();
    HRun h;
    setenv("WHALE_FAULT_RANK", "1:3:kill", 1);
    const double t0 = (double)time(NULL);
    train(&h, 2, "run", 8, "1", NULL);
    const double took = (double)time(NULL) - t0;
    unsetenv("WHALE_FAULT_RANK");
    cr_expect(!(h.exited && h.code == 0), "a job with a killed rank should fail; stderr:\n%s", h.err);
    cr_expect_lt(took, 30, "the job took %.0f s to end after rank 1 died", took);
    cr_expect(strstr(h.err, "rank 1"), "the message should name rank 1:\n%s", h.err);
    h_run_free(&h);
    /* step 2's checkpoint (--save-every 2) is the last one: one rank, twice
     * the accumulation, continues the same run as the two ranks would have */
    char *latest = h_read_file(h_path(g_dir, "run/latest"), NULL);
    cr_assert(latest && strstr(latest, "checkpoint-00000002"), "latest: %s", latest);
    free(latest);
    const char *resume[] = {"--resume", NULL};
    train(&h, 0, "run", 8, "2", resume);
    expect_ok(&h);
    h_run_free(&h);
    train(&h, 2, "whole", 8, "1", NULL);
    expect_ok(&h);
    h_run_free(&h);
    expect_same_losses("run", "whole", 8 + 2);
    expect_close_models("run/model.safetensors", "whole/model.safetensors");
}

Test(mpi, a_rank_that_stops_answering_ends_the_job, .timeout = 300) {
    make_model_and_data();
    HRun h;
    setenv("WHALE_FAULT_RANK", "1:2:hang", 1);
    setenv("WHALE_COMM_TIMEOUT", "3", 1);
    const double t0 = (double)time(NULL);
    train(&h, 2, "run", 6, "1", NULL);
    const double took = (double)time(NULL) - t0;
    cr_expect(!(h.exited && h.code == 0), "a job with a hung rank should fail; stderr:\n%s", h.err);
    cr_expect_lt(took, 30, "the job took %.0f s to end", took);
    cr_expect(strstr(h.err, "rank 0: whale: waited") && strstr(h.err, "MPI_Allreduce"),
              "rank 0 should say what it waited for:\n%s", h.err);
    h_run_free(&h);
}

Test(mpi, weights_that_drift_apart_stop_the_job, .timeout = 300) {
    make_model_and_data();
    HRun h;
    setenv("WHALE_FAULT_RANK", "1:3:drift", 1);
    train(&h, 2, "run", 6, "1", NULL);
    cr_expect(!(h.exited && h.code == 0), "drifted weights should stop the job; stderr:\n%s", h.err);
    cr_expect(strstr(h.err, "the weights after step 4 are not the same on every rank: rank 1"),
              "the message should name the step and the rank:\n%s", h.err);
    h_run_free(&h);
    /* the checkpoint of step 4 was not written from drifted weights */
    char *latest = h_read_file(h_path(g_dir, "run/latest"), NULL);
    cr_assert(latest && strstr(latest, "checkpoint-00000002"), "latest: %s", latest);
    free(latest);
}
