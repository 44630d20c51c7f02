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
