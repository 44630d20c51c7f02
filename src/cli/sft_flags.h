/* SPDX-License-Identifier: MIT */
/* The training flags `whale sft` and `whale distill` share (epochs or
 * steps, batch, the optimiser and schedule with `whale train`'s names and
 * defaults, held-out examples, checkpoints, threads, seed), declared once:
 * each command appends these specs to its own and checks them into SftOpts. */
#ifndef WHALE_SFT_FLAGS_H
#define WHALE_SFT_FLAGS_H

#include "cli/args.h"
#include "rl/sft.h"

#define SFT_FLAGS_N 22 /* specs sft_flags_specs writes */

typedef struct SftFlags {
    SftOpts o;
    const char *schedule;
    int warmup, seed, threads, bf16;
} SftFlags;

/* Defaults: 2 epochs (as DeepSeek-R1's SFT stages), batch 8, lr 1e-4 with
 * whale train's cosine schedule, warmup, weight decay 0.1, betas and clip;
 * eval every 50 steps when --val is given, checkpoints every 500 steps. */
void sft_flags_init(SftFlags *f);

/* Write the shared specs into specs (room for SFT_FLAGS_N); returns the count. */
int sft_flags_specs(SftFlags *f, ArgSpec *specs);

/* Check the values into f->o (schedule, seed, threads) and point f->o.stop
 * at the flag the signal handlers set. Returns 0, or 2 after printing an
 * error line for cmd. */
int sft_flags_apply(const char *cmd, SftFlags *f);

/* Ctrl-C and SIGTERM set *f->o.stop (the run checkpoints after its step
 * and returns); a second one kills. */
void sft_flags_catch_signals(void);

/* Restore the default handlers and turn a run's result into the exit code:
 * 1 after printing err for cmd when rc != 0, 130 when a signal stopped it,
 * else 0. */
int sft_flags_finish(const char *cmd, int rc, const Err *err);

#endif
