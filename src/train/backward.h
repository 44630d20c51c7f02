/* SPDX-License-Identifier: MIT */
/* Backward passes of the model's pieces, each the mirror of its forward in
 * model/ (same argument order, the forward's saved activations as input):
 * mla_backward.c <-> model/mla.c, moe_backward.c <-> model/moe.c. Each takes
 * the gradient at the output dout and ADDS the gradient at the input into
 * dx and each parameter's gradient into G, a LayerWeights of the gradient
 * buffer (same layout as the weights). Scratch comes from the arena; each
 * returns 0 or -1 when it cannot grow. */
#ifndef WHALE_BACKWARD_H
#define WHALE_BACKWARD_H

#include <stdint.h>

#include "model/blocks.h"

/* The writable F32 storage behind a gradient Mat or norm pointer. */
static inline float *grad_of(const void *p) { return (float *)(uintptr_t)p; }

/* dx (T, D) += backward of mla_forward_train. */
int mla_backward(float *dx, const float *dout, const float *x, const LayerWeights *L,
                 const LayerWeights *G, const ModelConfig *c, const Rope *rope, int n_seq,
                 int seq_len, const MlaSaved *sv, Arena *a);

/* dx (T, D) += backward of ffn_forward; gG, gU, gD: the gradients of gate,
 * up, down. work: scratch of 3 T I floats (I = gate->rows), so experts can
 * run side by side on threads of their own. */
void ffn_backward(float *dx, const float *dout, const float *x, const Mat *gate, const Mat *up,
                  const Mat *down, const Mat *gG, const Mat *gU, const Mat *gD, int T,
                  const FfnSaved *sv, float *work);

/* The sequence-wise balance loss of DeepSeek-V3 eq. 17-20 for one MoE layer:
 * coef * sum over the n_seq sequences of sum_e f_e P_e (coef = alpha / B
 * times the micro-batch's loss scale). */
typedef struct MoeBalance {
    float coef;
    int n_seq, seq_len;
    double loss; /* out: this layer's balance loss (coef included) */
} MoeBalance;

/* dx (T, D) += backward of moe_forward through the experts, their combine
 * weights, the router affinities and (bal may be NULL) the balance loss. */
int moe_backward(float *dx, const float *dout, const float *x, const LayerWeights *L,
                 const LayerWeights *G, const ModelConfig *c, int T, const MoeSaved *sv,
                 MoeBalance *bal, Arena *a);

#endif
