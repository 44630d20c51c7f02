/* SPDX-License-Identifier: MIT */
/* GRPO's per-token objective and derivative (see grpo_loss.h). */
#include "rl/grpo_loss.h"

#include <math.h>

int grpo_advantages(const float *rewards, int G, int scale_std, float *adv) {
    double mean = 0, var = 0;
    for (int i = 0; i < G; i++) mean += rewards[i];
    mean /= G;
    for (int i = 0; i < G; i++) var += (rewards[i] - mean) * (rewards[i] - mean);
    const double sd = sqrt(var / G);
    int flat = 1;
    for (int i = 0; i < G; i++) flat &= rewards[i] == rewards[0];
    for (int i = 0; i < G; i++)
        adv[i] = flat ? 0.0f : (float)((rewards[i] - mean) / (scale_std ? sd + 1e-4 : 1.0));
    return flat;
}

double grpo_kl_k3(double logp, double logp_ref) {
    const double d = logp_ref - logp;
    /* exp(d) - 1 - d loses everything to cancellation near 0: expm1 keeps it */
    return expm1(d) - d;
}

double grpo_token(double logp, double logp_old, double logp_ref, double adv,
                  const GrpoLossOpts *o, double *dj_dlogp, int *clipped, double *kl) {
    const double rho = exp(logp - logp_old);
    const double lo = 1.0 - o->clip_eps, hi = 1.0 + o->clip_eps;
    const double rc = rho < lo ? lo : rho > hi ? hi : rho;
    const double s1 = rho * adv, s2 = rc * adv;
    /* the min takes the clipped term only where clipping lowers the
     * objective: then it is constant in logp and passes no gradient */
    *clipped = s2 < s1;
    double j = *clipped ? s2 : s1, d = *clipped ? 0.0 : s1;
    *kl = 0;
    if (o->beta != 0.0f) {
        *kl = grpo_kl_k3(logp, logp_ref);
        j -= o->beta * *kl;
        /* d/dlogp (exp(d) - d - 1), d = logp_ref - logp: 1 - pi_ref / pi */
        d -= o->beta * (1.0 - exp(logp_ref - logp));
    }
    *dj_dlogp = d;
    return j;
}
