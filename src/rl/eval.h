/* SPDX-License-Identifier: MIT */
/* `whale eval`: a model on n held-out problems of a task (the test split,
 * drawn by seed): greedy pass@1, the mean accuracy of k samples at
 * temperature 1 (sampled pass@1), pass@k (a problem counts when any of its
 * k samples is right; the unbiased estimator of Chen et al. with n = k),
 * the format rate and the mean completion length. The same model, seed and
 * options give the same figures on every run. */
#ifndef WHALE_EVAL_H
#define WHALE_EVAL_H

#include "rl/rollout.h"

typedef struct EvalOpts {
    const Task *task;
    RlTemplate tpl;
    int n;            /* problems */
    int k;            /* samples per problem for pass1_sampled / passk; 0: greedy only */
    int difficulty;   /* 0: the task's default */
    uint64_t seed;    /* which problems, and the samples' seeds */
    int max_tokens;   /* per completion */
    float temperature; /* of the k samples (1) */
} EvalOpts;

typedef struct EvalResult {
    int n, k;
    double pass1;          /* greedy */
    double pass1_sampled;  /* mean accuracy of the k samples */
    double passk;          /* share of problems with a right answer among the k */
    double format;         /* share of greedy completions in the right format */
    double completion_len; /* mean tokens of the greedy completions */
} EvalResult;

/* Called after each problem with its greedy rollout (for examples and
 * progress); may be NULL. */
typedef void (*EvalEach)(void *user, int i, const TaskProblem *p, const Rollout *greedy,
                         int n_right_sampled);

int eval_run(Generator *g, const EvalOpts *o, EvalEach each, void *user, EvalResult *res,
             Err *err);

#endif
