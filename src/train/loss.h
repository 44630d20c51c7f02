/* SPDX-License-Identifier: MIT */
/* The language-modelling loss: fused, numerically stable softmax
 * cross-entropy whose gradient overwrites the logits. Pretraining, SFT and
 * GRPO differ only in the per-token weights given here. */
#ifndef WHALE_LOSS_H
#define WHALE_LOSS_H

#include <stdint.h>

/* For each row t of logits (T, V) with target y[t]: nll_t = logsumexp(z_t)
 * - z_t[y_t], weighted by c_t = scale * (weights ? weights[t] : 1); rows
 * with y[t] < 0 have c_t = 0. Returns sum_t c_t nll_t and overwrites row t
 * with its gradient c_t (softmax(z_t) - onehot(y_t)). nll (may be NULL)
 * receives the unweighted nll_t (0 for skipped rows). */
double xent_forward_backward(float *logits, const int32_t *y, const float *weights, float scale,
                             int T, int V, float *nll);

/* Per-row log-probability of the target, log softmax(z_t)[y_t], into logp
 * (T) without touching the logits (GRPO needs them before it knows its
 * weights), and the row's entropy in nats into entropy (may be NULL). */
void xent_logprobs(const float *logits, const int32_t *y, int T, int V, float *logp,
                   float *entropy);

#endif
