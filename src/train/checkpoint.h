/* SPDX-License-Identifier: MIT */
/* Training checkpoints: OUT/checkpoint-NNNNNNNN/ is a complete Hugging Face
 * model directory (config.json, model.safetensors with HF names, the
 * tokenizer files) plus optimizer.safetensors (AdamW moments) and
 * trainer_state.json. A checkpoint is written into a temporary directory,
 * fsynced and renamed into place, and only then named in OUT/latest, so a
 * crash at any instant leaves the previous checkpoint whole. The newest
 * model is also linked to OUT/ itself, so `whale generate -m OUT` works. */
#ifndef WHALE_CHECKPOINT_H
#define WHALE_CHECKPOINT_H

#include <stdint.h>

#include "model/model.h"
#include "train/comm.h"
#include "train/optim.h"

typedef struct TrainState {
    int64_t step;        /* optimiser steps completed (GRPO: rollout batches) */
    int64_t tokens;      /* training tokens consumed */
    uint64_t seed;       /* data order and anything random */
    int batch, seq, grad_accum; /* the step's shape; SFT: batch, --max-len, 1;
                                 * GRPO: --prompts, --group, --mu */
    int nan_skipped;     /* steps skipped for a non-finite loss */
    int ranks;           /* data-parallel processes that took the steps (train/comm.h) */
} TrainState;

/* Write checkpoint st->step of m, opt and st under out; the tokenizer and
 * generation config files are copied from tok_dir (if present there).
 * Keeps the newest `keep` checkpoints. Returns 0 or -1 with err.
 *
 * shards NULL: m holds every tensor; one model.safetensors and one
 * optimizer.safetensors. Else m->w is shard shards->rank of shards->size
 * (model/weights.h weights_alloc_shard: expert parallelism) and every rank
 * of shards calls this, out being one directory they all see: each writes
 * model-0000K-of-0000N.safetensors and optimizer-0000K-of-0000N.safetensors
 * (K = its rank + 1) with its routed experts, the first also every other
 * tensor; rank 0 then writes model.safetensors.index.json and
 * optimizer.safetensors.index.json, as Hugging Face indexes a sharded
 * model, and the rest. Any rank that fails makes all return -1 with
 * nothing published. Either layout loads whole (weights_load, st_open) or
 * as any shard (the names are the same). */
int ckpt_save(const char *out, const Model *m, const AdamW *opt, const TrainState *st,
              const char *tok_dir, int keep, const Comm *shards, Err *err);

/* The directory of the newest checkpoint under out (from OUT/latest) into
 * dir. Returns 0, or -1 with err when there is none. */
int ckpt_latest(const char *out, char *dir, size_t n, Err *err);

/* For --resume: the newest checkpoint under out (ckpt_latest) into dir,
 * checked to hold a model of the shape of the one at model (the run's -m:
 * vocabulary, widths, layers, heads, experts, MTP modules). Returns 0, or
 * -1 with err (no checkpoint; another shape, the first differing field
 * named with both values). */
int ckpt_resume_dir(const char *out, const char *model, char *dir, size_t n, Err *err);

/* For --resume: the recorded state saved of checkpoint dir against this
 * run's flags want: the seed, and each of batch, seq, grad_accum whose
 * flag name is given in flags[0..2] (NULL: not compared). Returns 0, or -1
 * with err naming the first flag that differs and both values. */
int ckpt_check_flags(const char *dir, const TrainState *saved, const TrainState *want,
                     const char *const flags[3], Err *err);

/* Read the optimiser moments (for w's tensors) and the trainer state of a
 * checkpoint directory. Returns 0 or -1 with err naming the file. */
int ckpt_load_state(const char *dir, const Weights *w, AdamW *opt, TrainState *st, Err *err);

#endif
