/* SPDX-License-Identifier: MIT */
/* `whale grpo`: R1-Zero reinforcement learning (DeepSeek-R1 §2.2, the GRPO
 * of DeepSeekMath §4.1). Each step draws P training problems of a task,
 * samples G completions of each with the current policy, scores them with
 * the rule rewards, turns rewards into group-relative advantages (groups
 * whose rewards are all equal carry no signal and are dropped), and takes
 * mu optimiser steps on the clipped objective (rl/grpo_loss.h) through the
 * one backward pass of pretraining: the objective's derivative per token
 * is the weight on that token's log-probability gradient. */
#ifndef WHALE_GRPO_H
#define WHALE_GRPO_H

#include <signal.h>
#include <stdint.h>

#include "base/err.h"
#include "rl/grpo_loss.h"
#include "rl/reward.h"
#include "rl/template.h"
#include "train/optim.h"

typedef struct GrpoOpts {
    const char *model;    /* the policy to start from (also the reference when beta > 0) */
    const char *task;
    const char *out;      /* run directory: metrics.jsonl, checkpoints, the newest model */
    RlTemplate tpl;
    int steps;            /* rollout batches */
    int prompts;          /* P problems per batch */
    int group;            /* G completions per problem */
    int mu;               /* optimiser steps per batch */
    int max_tokens;       /* per completion */
    int difficulty;       /* 0: the task's default */
    float temperature;    /* of the rollouts (1) */
    GrpoLossOpts loss;    /* clip epsilon, beta, std scaling */
    GrpoNorm norm;        /* length normalisation */
    RewardOpts reward;
    OptimOpts optim;
    float bias_gamma;     /* MoE balancing bias step during RL */
    uint64_t seed;
    int save_every;
    double time_limit;    /* seconds: stop, with a checkpoint, after the step that reaches it; 0: none */
    int resume;           /* continue from the newest checkpoint in out (its policy and AdamW
                             state, at its step); the reference stays model */
    int quiet;
    volatile sig_atomic_t *stop;
} GrpoOpts;

/* Run GRPO per o. 0 (done, or stopped with a checkpoint), or -1 with err
 * (also for a resume without a checkpoint, into a model of another shape,
 * or with other --prompts, --group, --mu or --seed than the checkpoint's:
 * a resumed run draws the problems and samples of the uninterrupted one,
 * as they are functions of the seed and the step alone). */
int grpo_run(const GrpoOpts *o, Err *err);

#endif
