/* SPDX-License-Identifier: MIT */
/* Held-out evaluation (see eval.h). Problem i is test-split problem i of
 * the seed; sample j of it uses rollout_seed(seed ^ i-mix, j), so the
 * figures depend on nothing but the model and the options. Problems run in
 * chunks: the greedy completion and the k samples of every problem of a
 * chunk decode together (rollout_run_batch). */
#include "rl/eval.h"

#include <stdlib.h>
#include <string.h>

/* Problems per batched call: enough waiting sequences to keep the batch
 * full, few enough that the chunk's rollouts stay small. */
#define EVAL_CHUNK 256

int eval_run(Generator *g, const EvalOpts *o, EvalEach each, void *user, EvalResult *res,
             Err *err) {
    memset(res, 0, sizeof *res);
    res->n = o->n;
    res->k = o->k;
    const int per = 1 + (o->k > 0 ? o->k : 0); /* rollouts per problem: greedy, then samples */
    TaskProblem *probs = malloc(sizeof *probs * EVAL_CHUNK);
    RolloutJob *jobs = malloc(sizeof *jobs * 2 * EVAL_CHUNK);
    Rollout *rolls = calloc((size_t)EVAL_CHUNK * per, sizeof *rolls);
    int rc = -1;
    if (!probs || !jobs || !rolls) {
        err_set(err, "out of memory");
        goto done;
    }
    double right = 0, right_s = 0, any = 0, fmt = 0, len = 0;
    for (int i0 = 0; i0 < o->n; i0 += EVAL_CHUNK) {
        const int n = o->n - i0 < EVAL_CHUNK ? o->n - i0 : EVAL_CHUNK;
        int n_jobs = 0;
        for (int i = 0; i < n; i++) {
            TaskProblem *p = &probs[i];
            if (task_generate(o->task, o->seed, TASK_TEST, (uint64_t)(i0 + i), o->difficulty, p) !=
                0) {
                err_set(err, "%s: difficulty %d is out of range", o->task->name, o->difficulty);
                goto done;
            }
            jobs[n_jobs++] = (RolloutJob){p, 1, 0.0f, 0};
            if (o->k > 0)
                jobs[n_jobs++] = (RolloutJob){p, o->k, o->temperature,
                                              rollout_seed(o->seed, 0x10000000ULL + (uint64_t)(i0 + i))};
        }
        if (rollout_run_batch(g, o->task, o->tpl, jobs, n_jobs, o->max_tokens, NULL, rolls, err) != 0)
            goto done;
        for (int i = 0; i < n; i++) {
            const Rollout *greedy = &rolls[(size_t)i * per];
            right += greedy->reward.accuracy;
            fmt += greedy->reward.format;
            len += greedy->n_gen;
            int n_right = 0;
            for (int j = 1; j < per; j++) n_right += greedy[j].reward.accuracy > 0;
            if (o->k > 0) {
                right_s += (double)n_right / o->k;
                any += n_right > 0;
            }
            if (each) each(user, i0 + i, &probs[i], greedy, n_right);
        }
        for (int i = 0; i < n * per; i++) rollout_free(&rolls[i]);
    }
    if (o->n > 0) {
        res->pass1 = right / o->n;
        res->format = fmt / o->n;
        res->completion_len = len / o->n;
        if (o->k > 0) res->pass1_sampled = right_s / o->n, res->passk = any / o->n;
    }
    rc = 0;
done:
    free(probs);
    free(jobs);
    free(rolls);
    return rc;
}
