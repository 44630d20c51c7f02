/* SPDX-License-Identifier: MIT */
/* `whale sft`: supervised fine-tuning (the cold-start and rejection-sampling
 * SFT stages of DeepSeek-R1, §2.3.1 and §2.3.3). Examples come from a JSONL
 * file (rl/sft_data.h); each optimiser step takes `batch` of them in a
 * seeded per-epoch order and minimises the mean negative log-likelihood of
 * their target tokens (the answers, never the prompts) through the shared
 * weighted-sequence pass (rl/seqtrain.h). Held-out examples give an eval
 * loss; metrics.jsonl, its plot and checkpoints are written as `whale
 * train` writes them. */
#ifndef WHALE_SFT_H
#define WHALE_SFT_H

#include <signal.h>
#include <stdint.h>

#include "base/err.h"
#include "train/optim.h"

typedef struct SftOpts {
    const char *model;         /* the model to fine-tune (a directory) */
    const char *data;          /* JSONL examples */
    const char *out;           /* run directory: metrics.jsonl, checkpoints, the newest model */
    const char *chat_template; /* for {"messages"} lines; NULL: the model's */
    int epochs;                /* passes over the training examples, when steps is 0 */
    int steps;                 /* optimiser steps; 0: epochs x examples / batch, rounded up */
    int batch;                 /* sequences per optimiser step */
    int max_len;               /* longest example in tokens; 0: the model's context */
    int val;                   /* examples held out for the eval loss (a seeded choice) */
    int eval_every;            /* steps between eval losses (and at the end); 0: the end only */
    int save_every;            /* steps between checkpoints (and at the end); 0: the end only */
    int log_every;             /* progress line every N steps when stderr is no terminal */
    OptimOpts optim;           /* total_steps is set here; warmup < 0: steps / 20, at most 200;
                                  WSD decay_steps 0: steps / 10 */
    float bias_gamma;          /* MoE balancing bias step */
    uint64_t seed;             /* the held-out choice and the order of every epoch */
    int quiet;                 /* no progress output */
    int resume;                /* continue from the newest checkpoint in out (its model and
                                  AdamW state, at its step) */
    volatile sig_atomic_t *stop; /* set by a signal: checkpoint after this step and return */
} SftOpts;

/* Fine-tune per o. 0 (done, or stopped by *stop with a checkpoint written),
 * or -1 with err (bad data named by file and line, a model that cannot be
 * trained, non-finite losses, I/O; a resume without a checkpoint, into a
 * model of another shape, or with another --batch, --max-len or --seed
 * than the checkpoint's). A resumed run given the same data and flags
 * ends as the uninterrupted one would. */
int sft_run(const SftOpts *o, Err *err);

#endif
