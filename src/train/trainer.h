/* SPDX-License-Identifier: MIT */
/* `whale train`: the pretraining loop. Samples batches from token shards
 * (train/data.h), runs the training forward and backward
 * (model/model_train.h, train/model_backward.h), averages gradients over
 * micro-batches and ranks (train/comm.h), steps AdamW (train/optim.h),
 * moves the balancing biases (train/balance.h), evaluates on the held-out
 * split, logs metrics.jsonl with a plot beside it, and writes checkpoints
 * (train/checkpoint.h) that a resumed run continues bit for bit. */
#ifndef WHALE_TRAINER_H
#define WHALE_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "base/err.h"
#include "train/optim.h"

typedef struct TrainOpts {
    const char *model;   /* model directory to start from */
    const char *data;    /* token shards (train-*.bin, val-*.bin) */
    const char *out;     /* run directory: checkpoints, metrics.jsonl, the newest model */
    int steps;           /* optimiser steps in all (a resumed run continues to it) */
    int batch, seq, grad_accum;
    OptimOpts optim;     /* total_steps defaults to steps */
    float mtp_lambda, balance_alpha, bias_gamma;
    uint64_t seed;
    int doc_start;       /* training windows begin at a document start (shards_index_docs) */
    int eval_every, eval_batches, save_every, log_every;
    int keep;            /* checkpoints kept (default 2) */
    int ep;              /* expert parallelism: ranks per group sharing the routed experts
                          * (divides the ranks and the experts); 0 or 1: none */
    int max_nan;         /* consecutive non-finite steps before stopping (default 5) */
    int resume;
    int stop_at;         /* stop (with a checkpoint) once this step is done; 0: no */
    int quiet;           /* no progress line */
    volatile sig_atomic_t *stop; /* set (by a signal handler) to stop after the current step */
} TrainOpts;

/* Train per o. Returns 0 (finished, or stopped by *stop with a checkpoint
 * written), or -1 with err (bad input named, repeated non-finite losses,
 * I/O failure); no checkpoint is left half-written in either case. */
int train_run(const TrainOpts *o, Err *err);

#endif
