/* SPDX-License-Identifier: MIT */
/* Held-out evaluation (see eval.h). Problem i is test-split problem i of
 * the seed; sample j of it uses rollout_seed(seed ^ i-mix, j), so the
 * figures depend on nothing but the model and the options. */
#include "rl/eval.h"

#include <stdlib.h>
#include <string.h>

int eval_run(Generator *g, const EvalOpts *o, EvalEach each, void *user, EvalResult *res,
             Err *err) {
    memset(res, 0, sizeof *res);
    res->n = o->n;
    res->k = o->k;
    Rollout *samples = calloc((size_t)(o->k > 0 ? o->k : 1), sizeof *samples);
    if (!samples) return err_set(err, "out of memory");
    int rc = -1;
    double right = 0, right_s = 0, any = 0, fmt = 0, len = 0;
    for (int i = 0; i < o->n; i++) {
        TaskProblem p;
        if (task_generate(o->task, o->seed, TASK_TEST, (uint64_t)i, o->difficulty, &p) != 0) {
            err_set(err, "%s: difficulty %d is out of range", o->task->name, o->difficulty);
            goto done;
        }
        Rollout greedy;
        if (rollout_run(g, o->task, o->tpl, &p, 1, 0.0f, 0, o->max_tokens, NULL, &greedy, err) != 0)
            goto done;
        right += greedy.reward.accuracy;
        fmt += greedy.reward.format;
        len += greedy.n_gen;
        int n_right = 0;
        if (o->k > 0) {
            uint64_t s = rollout_seed(o->seed, 0x10000000ULL + (uint64_t)i);
            if (rollout_run(g, o->task, o->tpl, &p, o->k, o->temperature, s, o->max_tokens, NULL,
                            samples, err) != 0) {
                rollout_free(&greedy);
                goto done;
            }
            for (int j = 0; j < o->k; j++) {
                n_right += samples[j].reward.accuracy > 0;
                rollout_free(&samples[j]);
            }
            right_s += (double)n_right / o->k;
            any += n_right > 0;
        }
        if (each) each(user, i, &p, &greedy, n_right);
        rollout_free(&greedy);
    }
    if (o->n > 0) {
        res->pass1 = right / o->n;
        res->format = fmt / o->n;
        res->completion_len = len / o->n;
        if (o->k > 0) res->pass1_sampled = right_s / o->n, res->passk = any / o->n;
    }
    rc = 0;
done:
    free(samples);
    return rc;
}
