/* SPDX-License-Identifier: MIT */
/* Training on whole sequences with one weight per token: the step GRPO, SFT
 * and distillation share (they differ only in the weights on the log-prob
 * gradient, STYLE.md). A pass forwards sequences of equal length together
 * (one forward over n_seq x len rows, nothing padded), hands each bucket's
 * target log-probs to the caller, who sets the weights w_t, and
 * backpropagates sum_t w_t (-log p_t) through the pretraining backward
 * (train/model_backward.h) into one gradient buffer; an update ties the MTP
 * heads, takes the global norm, steps AdamW and moves the balancing biases
 * (DeepSeek-V3 §2.1.2). */
#ifndef WHALE_SEQTRAIN_H
#define WHALE_SEQTRAIN_H

#include <stdint.h>

#include "model/model_train.h"
#include "train/balance.h"
#include "train/comm.h"
#include "train/optim.h"

/* Most sequences in one forward. */
#define SEQTRAIN_MAX_BUCKET 64

/* One sequence of a pass: its ids, borrowed. */
typedef struct SeqItem {
    const int32_t *ids; /* (len) */
    int len;            /* >= 2: row t predicts ids[t + 1] */
} SeqItem;

typedef struct SeqTrain {
    Model *m;             /* the trained model (borrowed) */
    Comm comm;            /* the job's ranks (train/comm.h), each with its share of a step */
    TrainActs acts;
    Weights grads;        /* F32, the model's shape */
    AdamW opt;
    ExpertLoad load;      /* expert selections of this step's training forwards */
    int32_t *tok, *y;     /* (rows) a bucket's tokens and targets */
    float *wts, *logp, *ent; /* (rows) */
    size_t cap_rows;
} SeqTrain;

/* Gradients, AdamW moments and load counters for m (borrowed; it must
 * outlive s). 0, or -1 with err (out of memory). Free with seqtrain_free
 * (accepts a zeroed struct). */
int seqtrain_init(SeqTrain *s, Model *m, Err *err);
void seqtrain_free(SeqTrain *s);

/* Zero the gradients and the expert loads: once per optimiser step, before
 * its passes. */
void seqtrain_zero(SeqTrain *s);

/* Called once per bucket after its forward: sequences i0 .. i0 + n - 1 of
 * the pass, all of length L. Row b (L - 1) + t of logp, ent and w belongs to
 * sequence i0 + b predicting its token t + 1. logp and ent (log-prob of the
 * target and the row's entropy, nats) are NULL unless the pass asked for
 * them; w (NULL when the pass does no backward) is to be filled with the
 * weight of every row. */
typedef void (*SeqBucketFn)(void *user, int i0, int n, int L, const float *logp,
                            const float *ent, float *w);

typedef struct SeqPass {
    Model *model;   /* NULL: s->m; else a model of the same shape (a frozen reference),
                       forwarded with s's buffers; no backward then */
    int logprobs;   /* compute the targets' log-probs and entropies for fn */
    int backward;   /* add the gradient of sum_t w_t (-log p_t) into s->grads and count the
                       expert loads */
    SeqBucketFn fn; /* required */
    void *user;
} SeqPass;

/* One pass over n sequences in order: runs of consecutive equal lengths
 * (sort by length to share forwards) make buckets of at most
 * SEQTRAIN_MAX_BUCKET. With backward, *loss (may be NULL) gets sum_t w_t
 * nll_t over the pass. 0, or -1 with err (a token out of the vocabulary,
 * out of memory). */
int seqtrain_pass(SeqTrain *s, const SeqItem *seqs, int n, const SeqPass *p, double *loss,
                  Err *err);

/* Data parallel: sum this step's gradients and expert loads over the
 * ranks, and the caller's n numbers sums (losses, counts, a stop request)
 * with them. Collective; nothing to do on one rank. 0, or -1 with err. */
int seqtrain_reduce(SeqTrain *s, double *sums, int n, Err *err);

/* The optimiser step s (0-based, for the schedule) on the accumulated
 * gradients: tie the MTP heads, the global norm, AdamW with o (clipping
 * included), then the balancing bias step bias_gamma from the loads.
 * Returns the gradient norm; when it is not finite nothing changes (the
 * caller reports the skipped step). */
double seqtrain_update(SeqTrain *s, const OptimOpts *o, int step, float bias_gamma);

#endif
