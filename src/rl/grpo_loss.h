/* SPDX-License-Identifier: MIT */
/* The GRPO objective of DeepSeekMath §4.1 and DeepSeek-R1 §2.2, token by
 * token, with its derivative with respect to each token's log-probability
 * (the per-token weight that turns the language-model backward into the
 * policy gradient, train/loss.h):
 *   J = 1/G sum_i n_i sum_t [ min(rho A_i, clip(rho, 1-eps, 1+eps) A_i) - beta KL_t ]
 *   rho = pi(o_t) / pi_old(o_t),  KL_t = r - log r - 1 with r = pi_ref / pi (k3)
 * n_i is the length normalisation (1/|o_i| in GRPO, a constant in Dr. GRPO,
 * 1/sum|o| at token level as in DAPO); A_i = (r_i - mean) / std (std
 * optional, as Dr. GRPO drops it). */
#ifndef WHALE_GRPO_LOSS_H
#define WHALE_GRPO_LOSS_H

typedef enum GrpoNorm {
    GRPO_NORM_SEQ,   /* 1 / |o_i|: GRPO as published */
    GRPO_NORM_TOKEN, /* 1 / (sum of |o_i| in the batch): token-level (DAPO) */
    GRPO_NORM_CONST, /* 1 / max_tokens: Dr. GRPO */
} GrpoNorm;

typedef struct GrpoLossOpts {
    float clip_eps;  /* epsilon of the clipped ratio (0.2) */
    float beta;      /* KL weight; 0: no reference model */
    int scale_std;   /* 1: divide advantages by the group's std (GRPO); 0: Dr. GRPO */
} GrpoLossOpts;

/* Advantages of one group of G rewards: A_i = r_i - mean, divided by the
 * (population) std + 1e-4 when scale_std. Returns 0, or 1 when every reward
 * is the same (the group carries no signal: A = 0, and callers drop it). */
int grpo_advantages(const float *rewards, int G, int scale_std, float *adv);

/* k3 estimate of KL(pi || pi_ref) at one token from the two log-probs:
 * exp(d) - d - 1 with d = logp_ref - logp (>= 0, 0 iff equal). */
double grpo_kl_k3(double logp, double logp_ref);

/* One token of the objective: its value J_t (before the 1/G and length
 * factors), and dJ_t / dlogp (the PPO term's rho A where the ratio is not
 * clipped, 0 where it is, plus beta (r - 1) from the KL). *clipped tells
 * whether the clip was active; *kl gets KL_t. */
double grpo_token(double logp, double logp_old, double logp_ref, double adv,
                  const GrpoLossOpts *o, double *dj_dlogp, int *clipped, double *kl);

#endif
