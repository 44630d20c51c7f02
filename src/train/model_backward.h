/* SPDX-License-Identifier: MIT */
/* The training loss of DeepSeek-V3 and its gradient for every parameter:
 * cross-entropy of the next token, the MTP modules' losses (V3 §2.2,
 * weight lambda / D), and the sequence-wise balance loss (V3 eq. 17-20),
 * backpropagated through the activations a model_forward_train saved. The
 * exact objective is written out in docs/training.md. */
#ifndef WHALE_MODEL_BACKWARD_H
#define WHALE_MODEL_BACKWARD_H

#include "model/model_train.h"

#define LOSS_MAX_MTP 8

typedef struct LossOpts {
    float mtp_lambda;     /* weight of the MTP losses */
    float balance_alpha;  /* weight of the sequence-wise balance loss */
    float scale;          /* multiplies the loss whose gradient is taken (1 / micro-batches); 0: 1 */
    const float *token_weights; /* (n_seq, seq_len) weights of the main loss per token;
                                 * NULL: the mean over all tokens */
    /* Called (when set) as soon as layer l's gradients are complete (MTP
     * modules first, then the blocks from the top; weights_layer_span
     * gives their bytes): a data-parallel trainer starts their sum over the
     * ranks while the backward goes on below. */
    void (*layer_done)(void *ctx, int layer);
    void *layer_ctx;
} LossOpts;

typedef struct LossParts {
    double loss;               /* main + mtp_lambda / D sum mtp + balance (before scale) */
    double main;               /* the main next-token loss */
    double mtp[LOSS_MAX_MTP];  /* mean cross-entropy of each MTP depth (before lambda) */
    double balance;            /* the balance loss (alpha included) */
} LossParts;

/* Compute the loss of the batch acts was made from (tokens as given to
 * model_forward_train) and ADD its gradient, times o->scale, into grads (a
 * Weights of the model's shape in F32; the caller zeroes it once per
 * optimiser step). acts->logits are overwritten by their gradients.
 * Returns 0, or -1 with err (out of memory). */
int model_backward(Model *m, TrainActs *acts, const int32_t *tokens, const LossOpts *o,
                   Weights *grads, LossParts *out, Err *err);

#endif
