/* SPDX-License-Identifier: MIT */
/* Data-parallel training under `mpirun --oversubscribe -np 2` on this one
 * machine (loopback / shared memory), against the single-process trainer:
 * two ranks take the same steps as one rank with twice the gradient
 * accumulation (losses and weights within 1e-5 relative); a rank killed
 * mid-step ends the job within 30 s with a message naming it, and one
 * rank resumes the run from the last checkpoint; a rank that stops
 * answering ends the job through the collective timeout; weights that
 * drift apart stop the job with a message. whale sft and whale grpo share
 * their steps the same way: equal losses and weights, the same rollouts.
 * Expert parallelism (--ep 2, on 2 and on 4 ranks) gives one rank's
 * losses, gradients and update; each rank holds its experts only and
 * writes them to its shard of the checkpoint, which resumes on other rank
 * counts. */
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
#include "task_fixture.h"
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

/* argv for `whale ARGS` on `ranks` processes (mpirun), or without a
 * launcher when ranks is 0; args NULL-terminated. */
static void run_ranks(HRun *h, int ranks, const char *const *args) {
    char np[16], *argv[64];
    int n = 0;
    snprintf(np, sizeof np, "%d", ranks);
    if (ranks > 0) {
        cr_assert(access(MPIRUN, X_OK) == 0, MPIRUN " is missing (scripts/deps.sh installs openmpi-bin)");
        const char *pre[] = {MPIRUN, "--oversubscribe", "-np", np};
        for (int i = 0; i < 4; i++) argv[n++] = (char *)pre[i];
    }
    argv[n++] = (char *)whale_bin();
    for (; *args; args++) {
        cr_assert_lt(n, 63);
        argv[n++] = (char *)*args;
    }
    argv[n] = NULL;
    cr_assert_eq(h_run(h, argv, RUN_TIMEOUT_S), 0, "cannot run %s", argv[0]);
}

/* `whale train` into g_dir/out for `steps` steps: on `ranks` processes
 * (mpirun, one thread each) or, with ranks 0, in this process's way (no
 * launcher, two threads). extra: more flags, NULL-terminated. */
static void train(HRun *h, int ranks, const char *out, int steps, const char *accum,
                  const char *const *extra) {
    char steps_s[16];
    snprintf(steps_s, sizeof steps_s, "%d", steps);
    const char *args[64] = {"train", "-m", h_path(g_dir, "model"), "--data", h_path(g_dir, "data"),
                            "--out", h_path(g_dir, out), "--steps", steps_s, "--batch", "4",
                            "--seq", "32", "--lr", "3e-3", "--eval-every", "4", "--save-every",
                            "2", "--grad-accum", accum, "-t", ranks > 0 ? "1" : "2"};
    int n = 0;
    while (args[n]) n++;
    for (; extra && *extra; extra++) args[n++] = *extra;
    run_ranks(h, ranks, args);
}

/* train() that must succeed. */
static void train_ok(int ranks, const char *out, int steps, const char *accum,
                     const char *const *extra) {
    HRun h;
    train(&h, ranks, out, steps, accum, extra);
    expect_ok(&h);
    h_run_free(&h);
}

/* What read_values reads from metrics.jsonl. */
enum { LOSSES_AND_EVAL, GRAD_NORMS, STEP_LOSSES };

/* The "loss" and "eval_loss" values of a run's metrics.jsonl, in order
 * (GRAD_NORMS: the "grad_norm" values instead; STEP_LOSSES: "loss" only). */
static int read_values(const char *run, int what, double *v, int max) {
    char *m = h_read_file(h_path(h_path(g_dir, run), "metrics.jsonl"), NULL);
    cr_assert(m, "%s has no metrics.jsonl", run);
    int n = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert(j, "%s: a metrics line is not JSON: %s", run, line);
        json_t *x = json_object_get(j, what == GRAD_NORMS ? "grad_norm" : "loss");
        if (!x && what == LOSSES_AND_EVAL) x = json_object_get(j, "eval_loss");
        if (x && n < max) v[n++] = json_number_value(x);
        json_decref(j);
    }
    free(m);
    return n;
}

static void expect_same_values(const char *a, const char *b, int what, int want) {
    static const char *const names[] = {"loss", "grad_norm", "step loss"};
    double x[64], y[64];
    int nx = read_values(a, what, x, 64), ny = read_values(b, what, y, 64);
    cr_assert_eq(nx, want, "%s: %d values in metrics.jsonl, expected %d (one line per step)", a, nx, want);
    cr_assert_eq(ny, want, "%s: %d values in metrics.jsonl, expected %d", b, ny, want);
    for (int i = 0; i < nx; i++)
        cr_expect(fabs(x[i] - y[i]) <= 1e-5 * fabs(y[i]), "%s %d: %s %.9g vs %s %.9g", names[what],
                  i, a, x[i], b, y[i]);
}

static void expect_same_losses(const char *a, const char *b, int want) {
    expect_same_values(a, b, LOSSES_AND_EVAL, want);
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

/* Two runs from the model `base` took the same steps: their weights differ
 * by at most 1e-4 of the distance the first moved them (root of summed
 * squares over every tensor). For sft and grpo, whose ranks forward other
 * groupings of the batch than one rank does: the float sums then round
 * differently, and a router score near a tie can send a token to another
 * expert, so single elements may differ more than 1e-5 while the update
 * as a whole agrees. */
static void expect_close_updates(const char *base, const char *a, const char *b) {
    SafeTensors s0, sa, sb;
    Err err = {0};
    cr_assert_eq(st_open(&s0, h_path(g_dir, base), &err), 0, "%s", err.msg);
    cr_assert_eq(st_open(&sa, h_path(g_dir, a), &err), 0, "%s", err.msg);
    cr_assert_eq(st_open(&sb, h_path(g_dir, b), &err), 0, "%s", err.msg);
    double diff = 0, moved = 0;
    for (int i = 0; i < sa.n_tensors; i++) {
        const StTensor *ta = &sa.tensors[i], *tb = st_find(&sb, ta->name), *t0 = st_find(&s0, ta->name);
        cr_assert(tb && t0 && tb->n_bytes == ta->n_bytes, "%s missing or resized", ta->name);
        const int64_t n = st_numel(ta);
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n),
              *z = malloc(sizeof(float) * (size_t)n);
        cr_assert(x && y && z);
        cr_assert(st_to_f32(&sa, ta, x, &err) == 0 && st_to_f32(&sb, tb, y, &err) == 0 &&
                  st_to_f32(&s0, t0, z, &err) == 0, "%s", err.msg);
        for (int64_t k = 0; k < n; k++) {
            diff += ((double)x[k] - y[k]) * ((double)x[k] - y[k]);
            moved += ((double)x[k] - z[k]) * ((double)x[k] - z[k]);
        }
        free(x), free(y), free(z);
    }
    cr_assert_gt(moved, 0, "%s did not move the weights of %s", a, base);
    cr_expect_leq(sqrt(diff), 1e-4 * sqrt(moved), "%s and %s differ by %g, %g of the update",
                  a, b, sqrt(diff), sqrt(diff / moved));
    st_close(&s0), st_close(&sa), st_close(&sb);
}

Test(mpi, two_ranks_equal_one_rank_with_twice_the_accumulation, .timeout = 300) {
    make_model_and_data();
    HRun h;
    train_ok(0, "one", 5, "2", NULL);
    train_ok(2, "two", 5, "1", NULL);
    /* 5 step losses and the eval losses of steps 4 and 5, written once (by rank 0) */
    /* the gradients summed after the backward instead of layer by layer during it */
    setenv("WHALE_COMM_OVERLAP", "0", 1);
    train(&h, 2, "after", 5, "1", NULL);
    unsetenv("WHALE_COMM_OVERLAP");
    expect_ok(&h);
    h_run_free(&h);
    expect_same_losses("two", "one", 7);
    expect_same_losses("after", "one", 7);
    expect_close_models("two/model.safetensors", "one/model.safetensors");
    expect_close_models("after/model.safetensors", "one/model.safetensors");
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
    train_ok(0, "run", 8, "2", resume);
    train_ok(2, "whole", 8, "1", NULL);
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

/* sft and grpo, each on 1 and on 2 ranks from the same model; each
 * resumed on 1 rank from a checkpoint 2 ranks wrote. */
Test(mpi, sft_and_grpo_share_their_steps, .timeout = 300) {
    char prompts[6][128], completions[6][512], data[256];
    snprintf(data, sizeof data, "%s", h_path(g_dir, "mem.jsonl")); /* h_path's buffers are reused */
    cr_assert_eq(h_write_task_solutions(data, "arith-add", 7, 1, 6, prompts, completions), 0);
    HRun h;
    WHALE(&h, "init", "-p", "tiny", "-o", h_path(g_dir, "model"), "--seed", "5", "--std", "0.05");
    expect_ok(&h);
    h_run_free(&h);
    for (int ranks = 0; ranks <= 2; ranks += 2) {
        const char *sft[] = {"sft", "-m", h_path(g_dir, "model"), "--data", data, "--out",
                             h_path(g_dir, ranks ? "sft2" : "sft1"), "--steps", "5", "--batch", "6",
                             "--val", "1", "--eval-every", "5", "--lr", "3e-3", "-t", ranks ? "1" : "2",
                             NULL};
        run_ranks(&h, ranks, sft);
        expect_ok(&h);
        h_run_free(&h);
    }
    expect_same_losses("sft2", "sft1", 5 + 1);
    expect_close_updates("model/model.safetensors", "sft2/model.safetensors", "sft1/model.safetensors");
    /* 3 steps on 2 ranks, resumed on 1 to step 5: the steps of sft2 (a
     * constant schedule, so --steps does not change the first ones) */
    for (int part = 0; part < 3; part++) {
        const char *sft[] = {"sft", "-m", h_path(g_dir, "model"), "--data", data, "--out",
                             h_path(g_dir, part ? "sftr" : "sftc"), "--steps", part == 1 ? "3" : "5",
                             "--batch", "6", "--val", "1", "--eval-every", "5", "--lr", "3e-3",
                             "--schedule", "constant", "-t", part == 1 ? "1" : "2",
                             part == 2 ? "--resume" : NULL, NULL};
        run_ranks(&h, part == 1 ? 2 : 0, sft);
        expect_ok(&h);
        h_run_free(&h);
    }
    expect_same_values("sftr", "sftc", STEP_LOSSES, 5); /* sftr evaluated at step 3 too */
    expect_close_updates("model/model.safetensors", "sftr/model.safetensors", "sftc/model.safetensors");
    /* a model that knows the problems answers some right, so GRPO has groups to learn from */
    const char *mem[] = {"sft", "-m", h_path(g_dir, "model"), "--data", data, "--out",
                         h_path(g_dir, "mem"), "--steps", "40", "--batch", "6", "--lr", "5e-3",
                         "--schedule", "constant", "--weight-decay", "0", "-t", "2", NULL};
    run_ranks(&h, 0, mem);
    expect_ok(&h);
    h_run_free(&h);
    for (int ranks = 0; ranks <= 2; ranks += 2) {
        const char *grpo[] = {"grpo", "-m", h_path(g_dir, "mem"), "--task", "arith-add",
                              "--template", "short", "--difficulty", "1", "--seed", "7", "--steps",
                              "2", "--prompts", "4", "--group", "4", "--max-tokens", "40", "--kl",
                              "0.05", "--out", h_path(g_dir, ranks ? "grpo2" : "grpo1"), "-t",
                              ranks ? "1" : "2", NULL};
        run_ranks(&h, ranks, grpo);
        expect_ok(&h);
        h_run_free(&h);
    }
    /* the same samples (rollout seeds are per problem), rewards and kept groups */
    char *a = h_read_file(h_path(g_dir, "grpo1/metrics.jsonl"), NULL);
    char *b = h_read_file(h_path(g_dir, "grpo2/metrics.jsonl"), NULL);
    cr_assert(a && b);
    const char *keys[] = {"reward", "accuracy", "format", "completion_len", "kept_groups", "kl",
                          "entropy"};
    char *sa, *sb;
    int lines = 0, kept = 0;
    for (char *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb); la && lb;
         la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb), lines++) {
        json_t *ja = json_loads(la, 0, NULL), *jb = json_loads(lb, 0, NULL);
        cr_assert(ja && jb);
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
            const double x = json_number_value(json_object_get(ja, keys[k]));
            const double y = json_number_value(json_object_get(jb, keys[k]));
            cr_expect(fabs(x - y) <= 1e-4 * fabs(x) + 1e-6, "step %d %s: 1 rank %g, 2 ranks %g",
                      lines + 1, keys[k], x, y);
        }
        kept += (int)json_integer_value(json_object_get(ja, "kept_groups"));
        json_decref(ja), json_decref(jb);
    }
    free(a), free(b);
    cr_expect_eq(lines, 2);
    cr_assert_gt(kept, 0, "no group had a reward signal: the comparison tests nothing");
    expect_close_updates("mem/model.safetensors", "grpo2/model.safetensors", "grpo1/model.safetensors");
    /* step 1 on 2 ranks, step 2 resumed on 1: where grpo1 ended */
    for (int part = 0; part < 2; part++) {
        const char *grpo[] = {"grpo", "-m", h_path(g_dir, "mem"), "--task", "arith-add",
                              "--template", "short", "--difficulty", "1", "--seed", "7", "--steps",
                              part ? "2" : "1", "--prompts", "4", "--group", "4", "--max-tokens",
                              "40", "--kl", "0.05", "--out", h_path(g_dir, "grpor"), "-t",
                              part ? "2" : "1", part ? "--resume" : NULL, NULL};
        run_ranks(&h, part ? 0 : 2, grpo);
        expect_ok(&h);
        h_run_free(&h);
    }
    expect_close_updates("mem/model.safetensors", "grpor/model.safetensors", "grpo1/model.safetensors");
}

/* Tensor names of a safetensors file, index or model directory, as one
 * string ("name\n" each), for strstr. */
static char *tensor_names(const char *path) {
    SafeTensors st;
    Err err = {0};
    cr_assert_eq(st_open(&st, path, &err), 0, "%s", err.msg);
    size_t n = 1;
    for (int i = 0; i < st.n_tensors; i++) n += strlen(st.tensors[i].name) + 1;
    char *s = calloc(1, n);
    cr_assert(s);
    for (int i = 0; i < st.n_tensors; i++) strcat(strcat(s, st.tensors[i].name), "\n");
    st_close(&st);
    return s;
}

/* A run directory of --ep 2 holds its model in two shards and an index:
 * the second shard the experts 4-7 of the tiny model's MoE layers (1 and
 * the MTP module's 2), the first every other tensor. */
static void expect_sharded_model(const char *run) {
    const char *dir = h_path(g_dir, run);
    cr_expect(access(h_path(dir, "model.safetensors"), F_OK) != 0, "%s keeps a model.safetensors", run);
    char *a = tensor_names(h_path(dir, "model-00001-of-00002.safetensors"));
    char *b = tensor_names(h_path(dir, "model-00002-of-00002.safetensors"));
    char *all = tensor_names(dir);
    for (int l = 1; l <= 2; l++)
        for (int e = 0; e < 8; e++) {
            char name[96];
            snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.up_proj.weight\n", l, e);
            cr_expect(!strstr(e < 4 ? b : a, name) && strstr(e < 4 ? a : b, name),
                      "%s: expert %d of layer %d is not (only) in shard %d", run, e, l, e < 4 ? 1 : 2);
            cr_expect(strstr(all, name), "%s: the index lacks %s", run, name);
        }
    for (char *line = strtok(b, "\n"); line; line = strtok(NULL, "\n"))
        cr_expect(strstr(line, ".mlp.experts."), "%s: the second shard holds %s", run, line);
    cr_expect(strstr(all, "model.embed_tokens.weight\n") && strstr(all, "model.layers.1.mlp.gate.weight\n"));
    free(a), free(b), free(all);
}

/* --ep 2: the routed experts held and computed on their rank, tokens sent
 * there and back by all-to-all; against one rank with twice the
 * accumulation */
Test(mpi, expert_parallel_equals_one_rank, .timeout = 300) {
    make_model_and_data();
    HRun h;
    train_ok(0, "one", 5, "2", NULL);
    const char *ep[] = {"--ep", "2", NULL};
    train_ok(2, "ep", 5, "1", ep);
    expect_same_losses("ep", "one", 7);
    expect_same_values("ep", "one", GRAD_NORMS, 5);
    expect_close_updates("model/model.safetensors", "ep", "one/model.safetensors");
    expect_sharded_model("ep");
    expect_sharded_model("ep/checkpoint-00000005");
    cr_expect(access(h_path(g_dir, "ep/checkpoint-00000005/optimizer.safetensors.index.json"), F_OK) == 0);
    /* each step logs the two ranks' shares of the routed rows */
    char *m = h_read_file(h_path(g_dir, "ep/metrics.jsonl"), NULL);
    cr_assert(m);
    int lines = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL), *l = json_object_get(j, "ep_rank_load");
        if (l) {
            cr_assert_eq(json_array_size(l), 2, "%s", line);
            const double a = json_number_value(json_array_get(l, 0)), b = json_number_value(json_array_get(l, 1));
            cr_expect(a > 0 && b > 0 && fabs(a + b - 1) < 1e-3, "shares %g + %g: %s", a, b, line);
            lines++;
        }
        json_decref(j);
    }
    free(m);
    cr_expect_eq(lines, 5);
    /* the sharded model loads whole: its logits are the one-rank model's */
    const char *ids = "1,17,42,5,99,7";
    WHALE(&h, "logits", "-m", h_path(g_dir, "ep"), "--ids", ids, "--out", h_path(g_dir, "ep.f32"));
    expect_ok(&h);
    h_run_free(&h);
    WHALE(&h, "logits", "-m", h_path(g_dir, "one"), "--ids", ids, "--out", h_path(g_dir, "one.f32"));
    expect_ok(&h);
    h_run_free(&h);
    size_t na = 0, nb = 0;
    float *la = (float *)h_read_file(h_path(g_dir, "ep.f32"), &na), *lb = (float *)h_read_file(h_path(g_dir, "one.f32"), &nb);
    cr_assert(la && lb && na == nb && na >= 6 * 512 * sizeof(float), "logits files of %zu and %zu bytes", na, nb);
    double dmax = 0, amax = 0;
    for (size_t i = 0; i < na / sizeof(float); i++)
        dmax = fmax(dmax, fabs((double)la[i] - lb[i])), amax = fmax(amax, fabs(lb[i]));
    cr_expect_leq(dmax, 1e-4 * amax, "logits differ by %g (largest %g)", dmax, amax);
    free(la), free(lb);
    /* groups that do not divide the ranks or the experts are refused by name */
    const char *three[] = {"--ep", "3", NULL};
    train(&h, 2, "bad", 2, "1", three);
    cr_expect(!(h.exited && h.code == 0));
    cr_expect(strstr(h.err, "--ep 3 must divide the 2 ranks"), "%s", h.err);
    h_run_free(&h);
    /* a .gguf is refused by name: shards are loaded from a model directory */
    WHALE(&h, "convert", "-m", h_path(g_dir, "model"), "--out", h_path(g_dir, "model.gguf"));
    expect_ok(&h);
    h_run_free(&h);
    const char *gguf[] = {"train", "-m", h_path(g_dir, "model.gguf"), "--data", h_path(g_dir, "data"),
                          "--out", h_path(g_dir, "bad"), "--steps", "1", "--batch", "2", "--seq",
                          "16", "--ep", "2", "-t", "1", NULL};
    run_ranks(&h, 2, gguf);
    cr_expect(!(h.exited && h.code == 0));
    cr_expect(strstr(h.err, "model.gguf: experts are shared out over ranks from a model directory"),
              "%s", h.err);
    h_run_free(&h);
}

/* The gradients of one step: AdamW's first moment after step 1 is
 * (1 - beta1) x the clipped gradient, tensor by tensor, so the two runs'
 * exp_avg must agree within 1e-5 of each tensor's length. */
static void expect_same_gradients(const char *a, const char *b) {
    SafeTensors sa, sb;
    Err err = {0};
    cr_assert_eq(st_open(&sa, h_path(g_dir, a), &err), 0, "%s", err.msg);
    cr_assert_eq(st_open(&sb, h_path(g_dir, b), &err), 0, "%s", err.msg);
    cr_assert_eq(sa.n_tensors, sb.n_tensors, "%s and %s hold other tensors", a, b);
    int n_cmp = 0;
    double worst = 0;
    for (int i = 0; i < sa.n_tensors; i++) {
        const StTensor *ta = &sa.tensors[i], *tb = st_find(&sb, ta->name);
        cr_assert(tb && tb->n_bytes == ta->n_bytes, "%s: %s missing or resized", b, ta->name);
        if (strncmp(ta->name, "exp_avg.", 8) != 0) continue;
        const int64_t n = st_numel(ta);
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
        cr_assert(x && y);
        cr_assert(st_to_f32(&sa, ta, x, &err) == 0 && st_to_f32(&sb, tb, y, &err) == 0, "%s", err.msg);
        double d = 0, len = 0;
        for (int64_t k = 0; k < n; k++) d += ((double)x[k] - y[k]) * ((double)x[k] - y[k]), len += (double)y[k] * y[k];
        cr_expect_leq(sqrt(d), 1e-5 * sqrt(len) + 1e-12, "%s: %s and %s differ by %g of its length %g",
                      ta->name, a, b, sqrt(d / (len > 0 ? len : 1)), sqrt(len));
        if (len > 0) worst = fmax(worst, sqrt(d / len));
        n_cmp++;
        free(x), free(y);
    }
    cr_expect_gt(n_cmp, 50, "only %d gradients compared", n_cmp);
    cr_log_info("%s vs %s: %d gradients, worst %.2g of its length", a, b, n_cmp, worst);
    st_close(&sa), st_close(&sb);
}

/* One step's gradients, tensor by tensor: --ep 2 on 2 ranks against 1
 * rank with 2x accumulation, and on 4 ranks (two groups, whose expert
 * gradients are summed between the ranks holding the same experts)
 * against 1 rank with 4x. */
Test(mpi, expert_parallel_gradients_equal_one_rank, .timeout = 300) {
    make_model_and_data();
    const char *ep[] = {"--ep", "2", NULL};
    train_ok(0, "g2", 1, "2", NULL);
    train_ok(2, "gep2", 1, "1", ep);
    expect_same_gradients("gep2/checkpoint-00000001/optimizer.safetensors.index.json",
                          "g2/checkpoint-00000001/optimizer.safetensors");
    train_ok(0, "g4", 1, "4", NULL);
    train_ok(4, "gep4", 1, "1", ep);
    expect_same_gradients("gep4/checkpoint-00000001/optimizer.safetensors.index.json",
                          "g4/checkpoint-00000001/optimizer.safetensors");
    expect_same_losses("gep4", "g4", 2);
    expect_sharded_model("gep4");
}

/* A sharded checkpoint resumes on one rank without --ep, and a whole one
 * on two ranks with it; the run ends where an uninterrupted one does, and
 * the run directory holds the last layout only. */
Test(mpi, expert_parallel_resumes_on_other_rank_counts, .timeout = 300) {
    make_model_and_data();
    const char *ep2[] = {"--ep", "2", "--stop-at", "2", NULL},
               *resume4[] = {"--resume", "--stop-at", "4", NULL},
               *ep_resume[] = {"--ep", "2", "--resume", NULL};
    train_ok(0, "one", 5, "2", NULL);
    train_ok(2, "r", 5, "1", ep2);
    train_ok(0, "r", 5, "2", resume4);
    cr_expect(access(h_path(g_dir, "r/model.safetensors"), F_OK) == 0);
    cr_expect(access(h_path(g_dir, "r/model.safetensors.index.json"), F_OK) != 0,
              "the index of the sharded checkpoint is left beside the whole model");
    train_ok(2, "r", 5, "1", ep_resume);
    expect_same_losses("r", "one", 7);
    expect_same_values("r", "one", GRAD_NORMS, 5);
    expect_sharded_model("r");
    expect_close_updates("model/model.safetensors", "r", "one/model.safetensors");
}
