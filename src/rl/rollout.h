/* SPDX-License-Identifier: MIT */
/* Rollouts: completions of a task's prompt sampled from the current model,
 * with their token ids and rewards. The G samples of one prompt share its
 * prefill. Sample j of a prompt is drawn with the seed rollout_seed(seed,
 * j), so any one can be replayed. rollout_run decodes one sequence at a
 * time through the generator; rollout_run_batch decodes the samples of
 * many prompts together, one batched forward per token (GRPO and eval use
 * it). Used by GRPO, eval and distillation. */
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

/* One prompt's share of a batch: G completions of problem p. */
typedef struct RolloutJob {
    const TaskProblem *p;
    int G;
    float temperature; /* <= 0: greedy */
    uint64_t seed;     /* completion j draws with rollout_seed(seed, j) */
} RolloutJob;

/* Sequences decoding at once in rollout_run_batch, at most, and the memory
 * their caches, samplers and logits may take (fewer sequences when they
 * need more); the others wait and join as sequences finish. Throughput
 * still grows from 64 to 128 sequences on small models, little beyond. */
#define ROLLOUT_MAX_BATCH 256
#define ROLLOUT_BATCH_BYTES ((size_t)1 << 30)

/* The completions of n_jobs jobs (template tpl, at most max_tokens each,
 * scored with ro; NULL: the defaults) into out, job after job (sum of G
 * entries, each freed by the caller with rollout_free). All sequences
 * decode together: each job's prompt is prefilled once and its cache rows
 * copied to its G sequences; then every step runs one model_forward_batch
 * over the sequences still going, each with its own cache and its own
 * sampler (g's sampling options, reseeded as rollout_run does). A
 * sequence leaves at a stop id, max_tokens or g's context size, and the
 * next waiting one joins (at most ROLLOUT_MAX_BATCH at once, and as many
 * as fit ROLLOUT_BATCH_BYTES). Each
 * completion is the one rollout_run draws, up to float summation order in
 * the logits (products over 4 or more rows take the packed GEMM): the
 * same seed gives the same tokens unless two candidates' logits are
 * within ~1e-6 of each other. The generator's own cache is not used. 0, or
 * -1 with err (a prompt does not fit the context, out of memory). */
int rollout_run_batch(Generator *g, const Task *t, RlTemplate tpl, const RolloutJob *jobs,
                      int n_jobs, int max_tokens, const RewardOpts *ro, Rollout *out, Err *err);

#endif
