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

void attention_head(float *out, int out_stride, const float *q, int q_stride, const float *k,
                    int k_stride, const float *v, int v_stride, int T, int pos0, int Dk, int Dv,
                    float scale, float *scores) {
    for (int t = 0; t < T; t++) {
        const float *qt = q + (size_t)t * q_stride;
        int S = pos0 + t + 1;
        for (int s = 0; s < S; s++) scores[s] = scale * dot(qt, k + (size_t)s * k_stride, Dk);
        softmax(scores, S);
        float *ot = out + (size_t)t * out_stride;
        for (int d = 0; d < Dv; d++) ot[d] = 0;
        for (int s = 0; s < S; s++) {
            const float p = scores[s], *vs = v + (size_t)s * v_stride;
            for (int d = 0; d < Dv; d++) ot[d] += p * vs[d];
        }
    }
}
