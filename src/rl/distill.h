/* SPDX-License-Identifier: MIT */
/* `whale distill`: rejection-sampling distillation (DeepSeek-R1 §2.3.3 and
 * §2.4): a teacher samples k completions for each of N training-split
 * problems of a task, the rule rewards keep those that are right and well
 * formed (accuracy 1 and format 1), repeats of one completion for one
 * problem are dropped, the kept pairs are written as {"prompt",
 * "completion"} JSONL, and a student is fine-tuned on them by the SFT loop
 * (rl/sft.h). Teacher and student must share one vocabulary. */
#ifndef WHALE_DISTILL_H
#define WHALE_DISTILL_H

#include <stdint.h>

#include "rl/reward.h"
#include "rl/sft.h"
#include "rl/template.h"

typedef struct DistillOpts {
    const char *teacher;  /* the model that samples */
    const char *student;  /* the model fine-tuned on the kept samples (NULL with data_only:
                             no vocabulary check) */
    const char *task;
    const char *out;      /* run directory: distill.jsonl, then the student's SFT run */
    RlTemplate tpl;
    int problems;         /* N training-split problems: 0 .. N-1 of the seed */
    int k;                /* samples per problem */
    int max_tokens;       /* per completion */
    int difficulty;       /* 0: the task's default */
    float temperature;    /* of the teacher's samples */
    RewardOpts reward;    /* how samples are scored (kept: accuracy 1 and format 1) */
    uint64_t seed;        /* which problems and the samples' seeds */
    int data_only;        /* stop after writing distill.jsonl */
    int quiet;
    SftOpts sft;          /* the student's training; model, data and out are set here */
} DistillOpts;

typedef struct DistillStats {
    int problems;         /* problems sampled */
    int64_t samples;      /* completions drawn */
    int64_t right;        /* of which accuracy 1 and format 1 */
    int64_t kept;         /* of those, the distinct ones written */
    int problems_kept;    /* problems with at least one kept completion */
} DistillStats;

/* Check the student's vocabulary against the teacher's (when o->student),
 * then sample, filter and write path (atomically; {"prompt", "completion"}
 * per line, problems in order) per o, the counts into *st. 0, or -1 with
 * err. */
int distill_sample(const DistillOpts *o, const char *path, DistillStats *st, Err *err);

/* The whole command: distill_sample into OUT/distill.jsonl, the counts
 * into OUT/distill.json, the summary on stderr, then (unless data_only)
 * SFT the student into OUT. 0, or -1 with err (also when nothing was kept
 * to train on). */
int distill_run(const DistillOpts *o, Err *err);

#endif
