/* SPDX-License-Identifier: MIT */
/* Decode attention for a group of heads over one cache (see
 * attention_decode.h): scores of all heads against each cached key, a
 * softmax per head, then each cached value added into all heads' outputs. */
#include "kernels/attention_decode.h"

#include <immintrin.h>
#include <string.h>

#include "kernels/dot.h"
#include "kernels/ops.h"

void attention_decode_ref(float *o, size_t o_stride, const float *q, size_t q_stride,
                          const float *k, size_t k_stride, const float *v, size_t v_stride, int H,
                          int S, int Dk, int Dv, float scale, float *p) {
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++) {
            float d = 0;
            for (int i = 0; i < Dk; i++) d += q[h * q_stride + i] * k[s * k_stride + i];
            p[(size_t)h * S + s] = scale * d;
        }
    for (int h = 0; h < H; h++) softmax(p + (size_t)h * S, S);
    for (int h = 0; h < H; h++) memset(o + h * o_stride, 0, sizeof(float) * (size_t)Dv);
    for (int s = 0; s < S; s++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Dv; i++) o[h * o_stride + i] += p[(size_t)h * S + s] * v[s * v_stride + i];
}

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

/* The lanes of n - i left (at most 16) as a mask. */
AVX512 static inline __mmask16 tail(int n, int i) {
    const int r = n - i;
    return r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1);
}

AVX512 static void decode_avx512(float *o, size_t o_stride, const float *q, size_t q_stride,
                                 const float *k, size_t k_stride, const float *v, size_t v_stride,
                                 int H, int S, int Dk, int Dv, float scale, float *p) {
    for (int s = 0; s < S; s++) {
        const float *ks = k + s * k_stride;
        for (int h = 0; h < H; h++) {
            const float *qh = q + h * q_stride;
            __m512 acc = _mm512_setzero_ps();
            for (int i = 0; i < Dk; i += 16) {
                const __mmask16 m = tail(Dk, i);
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qh + i),
                                      _mm512_maskz_loadu_ps(m, ks + i), acc);
            }
            p[(size_t)h * S + s] = scale * _mm512_reduce_add_ps(acc);
        }
    }
    for (int h = 0; h < H; h++) softmax(p + (size_t)h * S, S);
    for (int h = 0; h < H; h++) memset(o + h * o_stride, 0, sizeof(float) * (size_t)Dv);
    for (int s = 0; s < S; s++) {
        const float *vs = v + s * v_stride;
        for (int h = 0; h < H; h++) {
            float *oh = o + h * o_stride;
            const __m512 ps = _mm512_set1_ps(p[(size_t)h * S + s]);
            for (int i = 0; i < Dv; i += 16) {
                const __mmask16 m = tail(Dv, i);
                const __m512 r = _mm512_fmadd_ps(ps, _mm512_maskz_loadu_ps(m, vs + i),
                                                 _mm512_maskz_loadu_ps(m, oh + i));
                _mm512_mask_storeu_ps(oh + i, m, r);
            }
        }
    }
}

void attention_decode(float *o, size_t o_stride, const float *q, size_t q_stride, const float *k,
                      size_t k_stride, const float *v, size_t v_stride, int H, int S, int Dk,
                      int Dv, float scale, float *p) {
    const DotKernels *b = dot_best(); /* its level, which WHALE_SIMD caps */
    if (b == dot_kernels(DOT_AVX512) || b == dot_kernels(DOT_AVX512_VNNI))
        decode_avx512(o, o_stride, q, q_stride, k, k_stride, v, v_stride, H, S, Dk, Dv, scale, p);
    else
        attention_decode_ref(o, o_stride, q, q_stride, k, k_stride, v, v_stride, H, S, Dk, Dv,
                             scale, p);
}
