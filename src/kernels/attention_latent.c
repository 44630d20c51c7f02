/* SPDX-License-Identifier: MIT */
/* The fused MLA decode attention (see attention_latent.h): scores of all
 * heads against each cached row, a softmax per head, then each cached
 * row added into all heads' outputs. */
#include "kernels/attention_latent.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/dot.h"
#include "kernels/ops.h"

void attention_latent_ref(float *o, size_t o_stride, const float *qa, const float *kv, int H,
                          int S, int W, int R, float scale, float *p) {
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++) {
            float d = 0;
            for (int i = 0; i < W; i++) d += qa[(size_t)h * W + i] * kv[(size_t)s * W + i];
            p[(size_t)h * S + s] = scale * d;
        }
    for (int h = 0; h < H; h++) softmax(p + (size_t)h * S, S);
    for (int h = 0; h < H; h++) memset(o + h * o_stride, 0, sizeof(float) * (size_t)R);
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < R; i++)
                o[h * o_stride + i] += p[(size_t)h * S + s] * kv[(size_t)s * W + i];
}

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

/* The lanes of n - i left (at most 16) as a mask. */
AVX512 static inline __mmask16 tail(int n, int i) {
    const int k = n - i;
    return k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << k) - 1);
}

AVX512 static void latent_avx512(float *o, size_t o_stride, const float *qa, const float *kv,
                                 int H, int S, int W, int R, float scale, float *p) {
    for (int s = 0; s < S; s++) {
        const float *r = kv + (size_t)s * W;
        for (int h = 0; h < H; h++) {
            const float *q = qa + (size_t)h * W;
            __m512 acc = _mm512_setzero_ps();
            for (int i = 0; i < W; i += 16) {
                const __mmask16 m = tail(W, i);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, r + i),
                                      acc);
            }
            p[(size_t)h * S + s] = scale * _mm512_reduce_add_ps(acc);
        }
    }
    for (int h = 0; h < H; h++) softmax(p + (size_t)h * S, S);
    for (int h = 0; h < H; h++) memset(o + h * o_stride, 0, sizeof(float) * (size_t)R);
    for (int s = 0; s < S; s++) {
        const float *r = kv + (size_t)s * W;
        for (int h = 0; h < H; h++) {
            float *oh = o + h * o_stride;
            const __m512 ps = _mm512_set1_ps(p[(size_t)h * S + s]);
            for (int i = 0; i < R; i += 16) {
                const __mmask16 m = tail(R, i);
                const __m512 v = _mm512_fmadd_ps(ps, _mm512_maskz_loadu_ps(m, r + i),
                                                 _mm512_maskz_loadu_ps(m, oh + i));
                _mm512_mask_storeu_ps(oh + i, m, v);
            }
        }
    }
}

void attention_latent(float *o, size_t o_stride, const float *qa, const float *kv, int H, int S,
                      int W, int R, float scale, float *p) {
    const DotKernels *b = dot_best(); /* its level, which WHALE_SIMD caps */
    if (b == dot_kernels(DOT_AVX512) || b == dot_kernels(DOT_AVX512_VNNI)) latent_avx512(o, o_stride, qa, kv, H, S, W, R, scale, p);
    else attention_latent_ref(o, o_stride, qa, kv, H, S, W, R, scale, p);
}
