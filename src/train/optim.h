/* SPDX-License-Identifier: MIT */
/* The optimiser step of docs/training.md: learning-rate schedules (linear
 * warmup, then cosine or warmup-stable-decay), the tied MTP heads (V3
 * §2.2: the MTP modules share the main output head), global-norm gradient
 * clipping, and AdamW with decoupled weight decay (Loshchilov & Hutter;
 * torch.optim.AdamW semantics) on float32 master weights. */
#ifndef WHALE_OPTIM_H
#define WHALE_OPTIM_H

#include <stdint.h>

#include "model/weights.h"

typedef enum LrSchedule { LR_COSINE, LR_WSD, LR_CONSTANT } LrSchedule;

typedef struct OptimOpts {
    float lr;            /* peak learning rate */
    float min_lr_ratio;  /* the schedule ends at lr * min_lr_ratio */
    int warmup;          /* linear warmup steps */
    int total_steps;     /* the schedule's length */
    int decay_steps;     /* WSD: the final decay phase */
    LrSchedule schedule;
    float beta1, beta2, eps, weight_decay;
    float clip;          /* global grad-norm clip; 0: none */
} OptimOpts;

/* The defaults: lr 3e-4 (use the caller's), betas 0.9 / 0.95, eps 1e-8,
 * weight decay 0.1, clip 1.0, cosine to 0.1 of the peak. */
OptimOpts optim_defaults(void);

/* Learning rate of step s (0-based). */
float optim_lr_at(const OptimOpts *o, int s);

/* AdamW state: the two moments, each one flat buffer at the weights'
 * offsets (so tensor i's moments sit at specs[i].offset too). */
typedef struct AdamW {
    float *m, *v;
    size_t n;      /* floats in each, = weights' bytes / 4 */
} AdamW;

int adamw_init(AdamW *a, const Weights *w, Err *err);
void adamw_free(AdamW *a);

/* 1 if the tensor is trained by gradients (not e_score_correction_bias, not
 * a tied MTP head copy), and whether weight decay applies to it. */
int optim_is_trained(const ParamSpec *s);
int optim_has_decay(const ParamSpec *s);

/* Fold the MTP heads' gradients into lm_head's (they are one shared head). */
void optim_tie_grads(const Weights *w, Weights *grads);

/* The global L2 norm of the trained gradients (in double). */
double optim_grad_norm(const Weights *grads);

/* Its square in two parts: the routed experts' tensors (*experts) and all
 * others (*shared), so that expert-parallel ranks, each holding its share
 * of the experts, add the first over their group. NaN both on out of
 * memory. */
void optim_grad_sumsq(const Weights *grads, double *shared, double *experts);

/* One step s (0-based) on w (F32) from grads (already tied): clip to
 * o->clip, AdamW at optim_lr_at(o, s), then copy lm_head into the MTP
 * heads. Returns the learning rate used. */
float adamw_step(AdamW *a, Weights *w, Weights *grads, const OptimOpts *o, int s, double grad_norm);

/* One tensor's (or a piece's) update with everything but the data fixed:
 * adamw_update runs 16 lanes where the CPU has AVX-512, the same bits as
 * the scalar adamw_update_ref (IEEE square root and division, nothing
 * fused). */
typedef struct AdamWCoef {
    float lr, clip, b1, b2, ibc1, ibc2, eps; /* ibc: 1 / (1 - beta^t) */
    float decay;                             /* 1 - lr weight_decay, or 1 */
} AdamWCoef;
void adamw_update(float *p, float *m, float *v, const float *g, size_t n, const AdamWCoef *k);
void adamw_update_ref(float *p, float *m, float *v, const float *g, size_t n, const AdamWCoef *k);

#endif
