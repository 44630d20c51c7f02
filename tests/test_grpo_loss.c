/* SPDX-License-Identifier: MIT */
/* GRPO's objective on hand-checkable numbers: advantages (with and without
 * the std), the clipped ratio on both sides for both signs of the
 * advantage, the k3 KL (never negative, zero at equality) and the
 * derivative of each token's objective against central differences. */
#include <criterion/criterion.h>
#include <math.h>

#include "rl/grpo_loss.h"

Test(grpo_loss, advantages_of_a_pair) {
    float r[2] = {1, 0}, a[2];
    cr_expect_eq(grpo_advantages(r, 2, 1, a), 0);
    /* mean 0.5, population std 0.5 */
    cr_expect(fabsf(a[0] - 0.5f / 0.5001f) < 1e-6f && fabsf(a[1] + 0.5f / 0.5001f) < 1e-6f,
              "%g %g", a[0], a[1]);
    grpo_advantages(r, 2, 0, a); /* Dr. GRPO: no std */
    cr_expect(a[0] == 0.5f && a[1] == -0.5f);
}

Test(grpo_loss, constant_rewards_give_no_signal) {
    float r[4] = {0.3f, 0.3f, 0.3f, 0.3f}, a[4] = {9, 9, 9, 9};
    cr_expect_eq(grpo_advantages(r, 4, 1, a), 1);
    for (int i = 0; i < 4; i++) cr_expect_eq(a[i], 0.0f);
    /* and a zero advantage gives a zero gradient without KL */
    GrpoLossOpts o = {0.2f, 0.0f, 1};
    double d;
    int c;
    double kl;
    grpo_token(-1.3, -1.0, -1.0, 0.0, &o, &d, &c, &kl);
    cr_expect_eq(d, 0.0);
}

Test(grpo_loss, clipping_on_each_side) {
    GrpoLossOpts o = {0.2f, 0.0f, 1};
    double d, kl;
    int c;
    /* on-policy: rho = 1, gradient = A */
    double j = grpo_token(-2.0, -2.0, -2.0, 0.7, &o, &d, &c, &kl);
    cr_expect(fabs(j - 0.7) < 1e-12 && fabs(d - 0.7) < 1e-12 && !c);
    /* rho = 1.5, A > 0: clipped at 1.2, no gradient */
    j = grpo_token(log(1.5), 0.0, 0.0, 1.0, &o, &d, &c, &kl);
    cr_expect(c && fabs(j - 1.2) < 1e-6 && d == 0.0, "j %g d %g", j, d);
    /* rho = 1.5, A < 0: the unclipped term is lower, gradient rho A */
    j = grpo_token(log(1.5), 0.0, 0.0, -1.0, &o, &d, &c, &kl);
    cr_expect(!c && fabs(j + 1.5) < 1e-12 && fabs(d + 1.5) < 1e-12, "j %g d %g", j, d);
    /* rho = 0.5, A < 0: clipped at 0.8, no gradient */
    j = grpo_token(log(0.5), 0.0, 0.0, -1.0, &o, &d, &c, &kl);
    cr_expect(c && fabs(j + 0.8) < 1e-6 && d == 0.0, "j %g d %g", j, d);
    /* rho = 0.5, A > 0: unclipped */
    j = grpo_token(log(0.5), 0.0, 0.0, 1.0, &o, &d, &c, &kl);
    cr_expect(!c && fabs(j - 0.5) < 1e-12 && fabs(d - 0.5) < 1e-12);
}

Test(grpo_loss, k3_is_nonnegative_and_zero_at_equality) {
    cr_expect_eq(grpo_kl_k3(-3.25, -3.25), 0.0);
    for (int i = 0; i < 2000; i++) {
        double a = -0.01 * i, b = -0.013 * ((i * 7919) % 2000);
        cr_expect(grpo_kl_k3(a, b) >= 0.0, "k3(%g, %g) = %g", a, b, grpo_kl_k3(a, b));
    }
    /* k3 at pi_ref / pi = e: e - 1 - 1 */
    cr_expect(fabs(grpo_kl_k3(0.0, 1.0) - (exp(1.0) - 2.0)) < 1e-12);
}

Test(grpo_loss, derivative_matches_central_differences) {
    GrpoLossOpts opts[] = {{0.2f, 0.0f, 1}, {0.2f, 0.04f, 1}, {0.1f, 0.5f, 0}};
    for (size_t k = 0; k < sizeof opts / sizeof *opts; k++)
        for (int i = 0; i < 200; i++) {
            double logp = -0.05 - 0.02 * i, old = logp + 0.3 * sin(i), ref = logp + 0.5 * cos(i);
            double adv = sin(3.0 * i);
            double d, kl, dp, dm;
            int c, cp, cm;
            grpo_token(logp, old, ref, adv, &opts[k], &d, &c, &kl);
            const double h = 1e-6;
            double jp = grpo_token(logp + h, old, ref, adv, &opts[k], &dp, &cp, &kl);
            double jm = grpo_token(logp - h, old, ref, adv, &opts[k], &dm, &cm, &kl);
            if (cp != cm) continue; /* on the clip boundary: a kink */
            double fd = (jp - jm) / (2 * h);
            cr_expect(fabs(fd - d) < 1e-6 * (1 + fabs(d)), "opts %zu token %d: fd %.9g vs %.9g",
                      k, i, fd, d);
        }
}

/* ---- through the model: the per-token weights give d J / d theta --------- */

#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "helpers.h"
#include "model/model_train.h"
#include "train/loss.h"
#include "train/model_backward.h"

enum { TOY_L = 9, TOY_PROMPT = 4 }; /* two sequences: 4 prompt + 5 completion tokens */

typedef struct Toy {
    Model m;
    TrainActs acts;
    int32_t tok[2 * TOY_L];
    float old[2][TOY_L], ref[2][TOY_L], adv[2];
    GrpoLossOpts o;
} Toy;

/* J(theta) = 1/2 sum_i 1/|o_i| sum_t J_t, and (grads != NULL) its gradient
 * through the weights w_t = dJ/dlogp_t / (2 |o_i|) on -logp (nll). */
static double toy_objective(Toy *t, Weights *grads) {
    Err err;
    const int T = TOY_L - 1, V = t->m.cfg.vocab_size;
    cr_assert(model_forward_train(&t->m, &t->acts, t->tok, 2, T, &err) == 0, "%s", err.msg);
    int32_t y[2 * (TOY_L - 1)];
    float logp[2 * (TOY_L - 1)], w[2 * (TOY_L - 1)] = {0};
    for (int b = 0; b < 2; b++) memcpy(y + b * T, t->tok + b * TOY_L + 1, sizeof(int32_t) * T);
    xent_logprobs(t->acts.logits, y, 2 * T, V, logp, NULL);
    double J = 0;
    const int n_gen = TOY_L - TOY_PROMPT;
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < n_gen; k++) {
            const int row = b * T + TOY_PROMPT - 1 + k;
            double d, kl;
            int c;
            J += grpo_token(logp[row], t->old[b][k], t->ref[b][k], t->adv[b], &t->o, &d, &c, &kl) /
                 (2.0 * n_gen);
            w[row] = (float)(d / (2.0 * n_gen));
        }
    if (grads) {
        LossOpts lo = {.scale = 1, .token_weights = w};
        LossParts lp;
        cr_assert(model_backward(&t->m, &t->acts, t->tok, &lo, grads, &lp, &err) == 0);
    }
    return J;
}

Test(grpo_loss, model_gradient_is_the_objectives_gradient, .timeout = 120) {
    Toy t;
    Err err;
    memset(&t, 0, sizeof t);
    ModelConfig cfg;
    cr_assert(config_load(&cfg, h_data("v3_f32"), &err) == 0, "%s", err.msg);
    cfg.first_k_dense_replace = cfg.num_hidden_layers + 1; /* no routing flips under FD */
    cfg.num_nextn_predict_layers = 0;
    cr_assert(model_create(&t.m, &cfg, &err) == 0);
    weights_init_random(&t.m.w, 21, 0.3f);
    Rng r;
    rng_seed(&r, 4);
    for (int i = 0; i < 2 * TOY_L; i++) t.tok[i] = 3 + (int)rng_below(&r, 200);
    t.adv[0] = 1.0f, t.adv[1] = -1.0f; /* rewards 1 and 0 */
    /* old and reference log-probs near the current ones: some ratios clip */
    float cur[2 * (TOY_L - 1)];
    {
        const int T = TOY_L - 1;
        int32_t y[2 * (TOY_L - 1)];
        cr_assert(model_forward_train(&t.m, &t.acts, t.tok, 2, T, &err) == 0);
        for (int b = 0; b < 2; b++) memcpy(y + b * T, t.tok + b * TOY_L + 1, sizeof(int32_t) * T);
        xent_logprobs(t.acts.logits, y, 2 * T, cfg.vocab_size, cur, NULL);
        for (int b = 0; b < 2; b++)
            for (int k = 0; k < TOY_L - TOY_PROMPT; k++) {
                const float c = cur[b * T + TOY_PROMPT - 1 + k];
                t.old[b][k] = c + (k % 2 ? 0.4f : 0.05f) * (b ? 1 : -1);
                t.ref[b][k] = c + 0.3f * (float)rng_normal(&r);
            }
    }
    GrpoLossOpts opts[] = {{0.2f, 0.0f, 1}, {0.2f, 0.1f, 1}};
    for (size_t k = 0; k < 2; k++) {
        t.o = opts[k];
        Weights g;
        cr_assert(weights_alloc(&g, &cfg, QTYPE_F32, &err) == 0);
        toy_objective(&t, &g);
        double worst = 0;
        for (int si = 0; si < t.m.w.n_specs; si += 3) {
            const ParamSpec *sp = &t.m.w.specs[si];
            float *p = (float *)(t.m.w.data + sp->offset), *gp = (float *)(g.data + sp->offset);
            int64_t imax = 0;
            for (int64_t i = 0; i < sp->numel; i++)
                if (fabsf(gp[i]) > fabsf(gp[imax])) imax = i;
            const float h = 1e-3f, old = p[imax]; /* small: the clip has kinks */
            p[imax] = old + h;
            double jp = toy_objective(&t, NULL);
            p[imax] = old - h;
            double jm = toy_objective(&t, NULL);
            p[imax] = old;
            /* minimising the weighted nll ascends J: its gradient is -dJ */
            double fd = -(jp - jm) / (2 * h);
            worst = fmax(worst, fabs(fd - gp[imax]) / fmax(fabs(gp[imax]), 1e-3));
        }
        cr_expect(worst < 2e-2, "beta %g: worst relative error %g", opts[k].beta, worst);
        weights_free(&g);
    }
    train_acts_free(&t.acts);
    model_free(&t.m);
}
