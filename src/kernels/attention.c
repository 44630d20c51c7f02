/* SPDX-License-Identifier: MIT */
/* One head of causal softmax attention (see attention.h). */
#include "kernels/attention.h"

#include <stddef.h>

#include "kernels/attention_simd.h"
#include "kernels/gemm.h"
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

/* Queries t0..t0+n-1 as a block: P (n, S) = Q K^T over the S keys the
 * block's last query sees, each row scaled, masked past its own position
 * and normalised; out = P V. The packed GEMM runs ~10x the row loop's
 * speed, and skips the tiles above the diagonal. */
static void attention_block(float *out, int out_stride, const float *q, int q_stride,
                            const float *k, int k_stride, const float *v, int v_stride, int n,
                            int pos, int Dk, int Dv, float scale, float *P) {
    const int S = pos + n;
    sgemm_causal(CAUSAL_OUT, pos, 0, 1, n, S, Dk, q, q_stride, k, k_stride, 0.0f, P, S);
    for (int t = 0; t < n; t++) {
        float *p = P + (size_t)t * S;
        const int seen = pos + t + 1;
        for (int s = 0; s < seen; s++) p[s] *= scale;
        softmax(p, seen);
        for (int s = seen; s < S; s++) p[s] = 0.0f;
    }
    sgemm_causal(CAUSAL_A, pos, 0, 0, n, Dv, S, P, S, v, v_stride, 0.0f, out, out_stride);
}

void attention_head(float *out, int out_stride, const float *q, int q_stride, const float *k,
                    int k_stride, const float *v, int v_stride, int T, int pos0, int Dk, int Dv,
                    float scale, float *scores) {
    if (T >= ATTENTION_BLOCK) {
        for (int t0 = 0; t0 < T; t0 += ATTENTION_BLOCK) {
            const int n = T - t0 < ATTENTION_BLOCK ? T - t0 : ATTENTION_BLOCK;
            attention_block(out + (size_t)t0 * out_stride, out_stride, q + (size_t)t0 * q_stride,
                            q_stride, k, k_stride, v, v_stride, n, pos0 + t0, Dk, Dv, scale,
                            scores);
        }
        return;
    }
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

/* Training attention: the AVX-512 tiles of attention_avx512.c where they
 * run (not under sgemm_use_ref, so that tests reach the reference), else
 * whole (T, T) score matrices through sgemm, whose causal forms skip the
 * masked upper half, and whose scalar reference keeps the check. */
void attention_head_train(float *out, int out_stride, float *P, const float *q, int q_stride,
                          const float *k, int k_stride, const float *v, int v_stride, int T, int Dk,
                          int Dv, float scale) {
    if (!sgemm_use_ref && attention_train_avx512(out, out_stride, P, q, q_stride, k, k_stride, v,
                                                 v_stride, T, Dk, Dv, scale) == 0)
        return;
    sgemm_causal(CAUSAL_OUT, 0, 0, 1, T, T, Dk, q, q_stride, k, k_stride, 0.0f, P, T);
    for (int t = 0; t < T; t++) {
        float *p = P + (size_t)t * T;
        for (int s = 0; s <= t; s++) p[s] *= scale;
        softmax(p, t + 1);
        for (int s = t + 1; s < T; s++) p[s] = 0.0f; /* causal: P V must not see them */
    }
    sgemm_causal(CAUSAL_A, 0, 0, 0, T, Dv, T, P, T, v, v_stride, 0.0f, out, out_stride);
}

void attention_head_backward(float *dq, float *dk, float *dv, const float *dout, int out_stride,
                             const float *P, const float *q, int q_stride, const float *k,
                             int k_stride, const float *v, int v_stride, int T, int Dk, int Dv,
                             float scale, float *dp) {
    if (!sgemm_use_ref && attention_backward_avx512(dq, dk, dv, dout, out_stride, P, q, q_stride,
                                                    k, k_stride, v, v_stride, T, Dk, Dv, scale,
                                                    dp) == 0)
        return;
    /* dP = dout V^T, then dS = P (dP - sum_s P dP) scale: the softmax
     * Jacobian; P is 0 above the diagonal, so dS is too */
    sgemm_causal(CAUSAL_OUT, 0, 0, 1, T, T, Dv, dout, out_stride, v, v_stride, 0.0f, dp, T);
    for (int t = 0; t < T; t++) {
        const float *p = P + (size_t)t * T;
        float *d = dp + (size_t)t * T;
        softmax_backward(d, p, t + 1, scale);
        for (int s = t + 1; s < T; s++) d[s] = 0.0f;
    }
    sgemm_causal(CAUSAL_A, 0, 0, 0, T, Dk, T, dp, T, k, k_stride, 1.0f, dq, q_stride);
    sgemm_causal(CAUSAL_AT, 0, 1, 0, T, Dk, T, dp, T, q, q_stride, 1.0f, dk, k_stride);
    sgemm_causal(CAUSAL_AT, 0, 1, 0, T, Dv, T, P, T, dout, out_stride, 1.0f, dv, v_stride);
}
