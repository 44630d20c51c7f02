/* SPDX-License-Identifier: MIT */
/* Rollouts: completions of a task's prompt sampled from the current model,
 * with their token ids and rewards. The G samples of one prompt share its
 * prefill (the generator keeps the prompt's cache and only decodes). Sample
 * j of a prompt is drawn with the seed rollout_seed(seed, j), so any one can
 * be replayed. Used by GRPO, eval and distillation. */
#ifndef WHALE_ROLLOUT_H
#define WHALE_ROLLOUT_H

#include <stdint.h>

#include "infer/generate.h"
#include "rl/reward.h"
#include "rl/task.h"
#include "rl/template.h"

typedef struct Rollout {
    int32_t *ids;       /* (n_prompt + n_gen) prompt then completion (owned); the completion
                         * ends with the end-of-sequence id when stopped */
    int n_prompt, n_gen;
    char *text;         /* the completion's text (owned, NUL-terminated) */
    RewardParts reward;
    int stopped;        /* 1: ended by an end-of-sequence id; 0: cut at max_tokens */
} Rollout;

void rollout_free(Rollout *r);

/* The seed of sample j drawn with seed. */
uint64_t rollout_seed(uint64_t seed, uint64_t j);

/* G completions of problem p's prompt (template tpl) at temperature
 * (<= 0: greedy), at most max_tokens each, scored with ro (NULL: the
 * defaults) into out (G entries, each freed by the caller with
 * rollout_free). 0, or -1 with err (the prompt does not fit the context,
 * out of memory). */
int rollout_run(Generator *g, const Task *t, RlTemplate tpl, const TaskProblem *p, int G,
                float temperature, uint64_t seed, int max_tokens, const RewardOpts *ro,
                Rollout *out, Err *err);

#endif
