/* SPDX-License-Identifier: MIT */
/* Batched rollouts (rollout_run_batch) against the sequential path
 * (rollout_run, one gen_run per completion) on a random tiny DeepSeek-V3:
 * greedy and sampled completions of several problems give the same ids,
 * text, stop reason and reward, including when sequences stop at a stop
 * id, at max_tokens or at the context size at different times and more of
 * them wait than the batch holds. The two paths sum the logits in other
 * orders (~1e-6 relative), so equal tokens hold for these seeds unless two
 * candidates tie that closely; a wrong cache, position or sampler stream
 * changes them at once. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "infer/chat.h"
#include "rl/rollout.h"
#include "whale_cli.h"

static char g_dir[64];

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "rollout"), 0, "mkdtemp failed");
    setenv("WHALE_QUIET", "1", 1);
    HRun r;
    /* std 0.5: a peaked, input-dependent distribution, not near-uniform noise */
    WHALE(&r, "init", "-p", "tiny", "-o", h_path(g_dir, "m"), "--seed", "3", "--std", "0.5");
    expect_ok(&r);
    h_run_free(&r);
}

static void teardown(void) { h_rmtree(g_dir); }

TestSuite(rollout, .init = setup, .fini = teardown);

static void open_session(ChatSession *s, int n_ctx) {
    Err err = {0};
    ChatOpts co = {.raw = 1};
    co.gen.n_ctx = n_ctx;
    cr_assert_eq(chat_open(s, h_path(g_dir, "m"), &co, &err), 0, "%s", err.msg);
}

/* Problems 0..n-1 of arith's training split. */
static void problems(const Task *t, TaskProblem *p, int n) {
    for (int i = 0; i < n; i++)
        cr_assert_eq(task_generate(t, 7, TASK_TRAIN, (uint64_t)i, 0, &p[i]), 0);
}

/* Every job through rollout_run, then all of them through
 * rollout_run_batch: the same completions. Returns how many stopped. */
static int compare(ChatSession *s, const Task *t, const RolloutJob *jobs, int n_jobs,
                   int max_tokens) {
    int n = 0;
    for (int i = 0; i < n_jobs; i++) n += jobs[i].G;
    Rollout *seq = calloc((size_t)n, sizeof *seq), *bat = calloc((size_t)n, sizeof *bat);
    Err err = {0};
    for (int i = 0, k = 0; i < n_jobs; k += jobs[i++].G)
        cr_assert_eq(rollout_run(&s->gen, t, RL_TEMPLATE_R1ZERO, jobs[i].p, jobs[i].G,
                                 jobs[i].temperature, jobs[i].seed, max_tokens, NULL, seq + k, &err),
                     0, "%s", err.msg);
    cr_assert_eq(rollout_run_batch(&s->gen, t, RL_TEMPLATE_R1ZERO, jobs, n_jobs, max_tokens, NULL,
                                   bat, &err),
                 0, "%s", err.msg);
    int stopped = 0;
    for (int k = 0; k < n; k++) {
        const Rollout *a = &seq[k], *b = &bat[k];
        cr_expect_eq(b->n_prompt, a->n_prompt, "rollout %d: prompt %d tokens, expected %d", k,
                     b->n_prompt, a->n_prompt);
        cr_expect_eq(b->n_gen, a->n_gen, "rollout %d: %d tokens generated, expected %d", k,
                     b->n_gen, a->n_gen);
        const int m = a->n_prompt + (a->n_gen < b->n_gen ? a->n_gen : b->n_gen);
        for (int i = 0; i < m; i++)
            if (a->ids[i] != b->ids[i]) {
                cr_expect_fail("rollout %d: id %d is %d, expected %d", k, i, b->ids[i], a->ids[i]);
                break;
            }
        cr_expect_str_eq(b->text, a->text, "rollout %d: text", k);
        cr_expect_eq(b->stopped, a->stopped, "rollout %d: stopped", k);
        cr_expect_eq(b->reward.total, a->reward.total, "rollout %d: reward", k);
        stopped += a->stopped;
    }
    for (int k = 0; k < n; k++) rollout_free(&seq[k]), rollout_free(&bat[k]);
    free(seq), free(bat);
    return stopped;
}

Test(rollout, batched_equals_sequential, .timeout = 120) {
    const Task *t = task_find("arith");
    TaskProblem p[3];
    problems(t, p, 3);
    ChatSession s;
    open_session(&s, 0);
    /* greedy, sampled, and both kinds in one batch */
    const RolloutJob greedy[3] = {{&p[0], 1, 0.0f, 0}, {&p[1], 1, 0.0f, 0}, {&p[2], 1, 0.0f, 0}};
    compare(&s, t, greedy, 3, 16);
    const RolloutJob sampled[3] = {{&p[0], 4, 1.0f, 11}, {&p[1], 3, 1.0f, 12}, {&p[2], 4, 0.7f, 13}};
    compare(&s, t, sampled, 3, 16);
    const RolloutJob mixed[4] = {{&p[0], 1, 0.0f, 0}, {&p[0], 3, 1.0f, 5}, {&p[2], 0, 1.0f, 6},
                                 {&p[1], 2, 1.0f, 7}};
    compare(&s, t, mixed, 4, 10);
    chat_close(&s);
}

/* Sequences leave at a stop id at different steps while more wait than
 * the batch holds (ROLLOUT_MAX_BATCH), and at a full context. */
Test(rollout, sequences_leave_and_join, .timeout = 120) {
    const Task *t = task_find("arith");
    TaskProblem p[2];
    problems(t, p, 2);
    ChatSession s;
    open_session(&s, 0);
    /* a frequent id as an extra stop: the first sampled id of some completion */
    Rollout r[4];
    Err err = {0};
    cr_assert_eq(rollout_run(&s.gen, t, RL_TEMPLATE_R1ZERO, &p[0], 4, 1.0f, 3, 8, NULL, r, &err), 0,
                 "%s", err.msg);
    const int stop_id = r[1].ids[r[1].n_prompt + 2], n_prompt = r[0].n_prompt;
    for (int j = 0; j < 4; j++) rollout_free(&r[j]);
    gen_add_stop_id(&s.gen, stop_id);
    const int G = ROLLOUT_MAX_BATCH / 2 + 8;
    const RolloutJob jobs[2] = {{&p[0], G, 1.0f, 21}, {&p[1], G, 1.0f, 22}};
    int stopped = compare(&s, t, jobs, 2, 12);
    cr_expect(stopped > 0 && stopped < 2 * G, "%d of %d stopped at id %d: the test needs some of each",
              stopped, 2 * G, stop_id);
    chat_close(&s);

    /* a context that ends a few tokens after the prompt */
    open_session(&s, n_prompt + 5);
    const RolloutJob few[2] = {{&p[0], 3, 1.0f, 31}, {&p[1], 1, 0.0f, 0}};
    compare(&s, t, few, 2, 50);
    chat_close(&s);
}

Test(rollout, prompt_longer_than_the_context_fails, .timeout = 60) {
    const Task *t = task_find("arith");
    TaskProblem p;
    problems(t, &p, 1);
    ChatSession s;
    open_session(&s, 8);
    Rollout r[2];
    Err err = {0};
    const RolloutJob job = {&p, 2, 1.0f, 1};
    cr_expect_neq(rollout_run_batch(&s.gen, t, RL_TEMPLATE_R1ZERO, &job, 1, 4, NULL, r, &err), 0);
    cr_expect(strstr(err.msg, "does not fit the context"), "message: %s", err.msg);
    cr_expect(r[0].ids == NULL && r[1].ids == NULL, "nothing is left to free after an error");
    chat_close(&s);
}
