/* SPDX-License-Identifier: MIT */
/* One head of causal softmax attention (see attention.h). */
#include "kernels/attention.h"

#include <stddef.h>

#include "kernels/ops.h"

static inline float dot(const float *a, const float *b, int n) {
    float s[4] = {0};
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) s[j] += a[i + j] * b[i + j];
    float r = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* The forward for queries t = 0..T-1; row t's probabilities are left in
 * scores + t * p_stride (p_stride 0: one scratch row reused). */
static void attend(float *out, int out_stride, const float *q, int q_stride, const float *k,
                   int k_stride, const float *v, int v_stride, int T, int pos0, int Dk, int Dv,
                   float scale, float *scores, size_t p_stride) {
    for (int t = 0; t < T; t++) {
        const float *qt = q + (size_t)t * q_stride;
        float *p = scores + t * p_stride;
        int S = pos0 + t + 1;
        for (int s = 0; s < S; s++) p[s] = scale * dot(qt, k + (size_t)s * k_stride, Dk);
        softmax(p, S);
        float *ot = out + (size_t)t * out_stride;
        for (int d = 0; d < Dv; d++) ot[d] = 0;
        for (int s = 0; s < S; s++) {
            const float ps = p[s], *vs = v + (size_t)s * v_stride;
            for (int d = 0; d < Dv; d++) ot[d] += ps * vs[d];
        }
    }
}

void attention_head(float *out, int out_stride, const float *q, int q_stride, const float *k,
                    int k_stride, const float *v, int v_stride, int T, int pos0, int Dk, int Dv,
                    float scale, float *scores) {
    attend(out, out_stride, q, q_stride, k, k_stride, v, v_stride, T, pos0, Dk, Dv, scale, scores,
           0);
}

void attention_head_train(float *out, int out_stride, float *P, const float *q, int q_stride,
                          const float *k, int k_stride, const float *v, int v_stride, int T, int Dk,
                          int Dv, float scale) {
    attend(out, out_stride, q, q_stride, k, k_stride, v, v_stride, T, 0, Dk, Dv, scale, P,
           (size_t)T);
}

void attention_head_backward(float *dq, float *dk, float *dv, const float *dout, int out_stride,
                             const float *P, const float *q, int q_stride, const float *k,
                             int k_stride, const float *v, int v_stride, int T, int Dk, int Dv,
                             float scale, float *dp) {
    for (int t = 0; t < T; t++) {
        const float *p = P + (size_t)t * T, *dot_ = dout + (size_t)t * out_stride;
        const float *qt = q + (size_t)t * q_stride;
        float *dqt = dq + (size_t)t * q_stride;
        /* dP = dout . v; dS = P (dP - sum P dP): the softmax Jacobian */
        double sum = 0;
        for (int s = 0; s <= t; s++) {
            dp[s] = dot(dot_, v + (size_t)s * v_stride, Dv);
            sum += (double)p[s] * dp[s];
        }
        for (int s = 0; s <= t; s++) {
            const float ds = p[s] * (dp[s] - (float)sum) * scale;
            const float *ks = k + (size_t)s * k_stride;
            float *dks = dk + (size_t)s * k_stride, *dvs = dv + (size_t)s * v_stride;
            for (int d = 0; d < Dk; d++) {
                dqt[d] += ds * ks[d];
                dks[d] += ds * qt[d];
            }
            for (int d = 0; d < Dv; d++) dvs[d] += p[s] * dot_[d];
        }
    }
}
