/* SPDX-License-Identifier: MIT */
/* Decode attention for a group of heads over one cache (see
 * attention_decode.h): scores of all heads against the cached keys, a
 * softmax per head, then each head's weighted sum of the cached values. */
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

/* The lane sums of a[0..15] as one vector (lane j: the sum of a[j]'s
 * lanes): pairs interleaved at 32 and then 64 bits within 128-bit lanes,
 * then the 128-bit lanes folded twice; 15 adds and 30 shuffles for 16
 * sums, where one horizontal sum each costs about as many apiece. */
AVX512 static inline __m512 sum16(const __m512 a[16]) {
    __m512 b[8], c[4];
    for (int k = 0; k < 8; k++) /* per 128-bit lane: [a2k, a2k+1, a2k, a2k+1] partials */
        b[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]),
                             _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
    for (int m = 0; m < 4; m++) { /* per 128-bit lane: a4m .. a4m+3, that lane's part */
        const __m512d x = _mm512_castps_pd(b[2 * m]), y = _mm512_castps_pd(b[2 * m + 1]);
        c[m] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    /* fold the four 128-bit lanes: lanes (0+1, 2+3), then (01 + 23) */
    const __m512 e0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88),
                                    _mm512_shuffle_f32x4(c[0], c[1], 0xdd));
    const __m512 e1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x88),
                                    _mm512_shuffle_f32x4(c[2], c[3], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(e0, e1, 0x88), _mm512_shuffle_f32x4(e0, e1, 0xdd));
}

/* Scores head by head, 16 keys at a time (their 16 dot products summed
 * across lanes together, sum16), the block of keys staying in L1 across
 * the heads; the softmax; then each head's output in registers, 256
 * numbers at a time, over all values. */
AVX512 static void decode_avx512(float *o, size_t o_stride, const float *q, size_t q_stride,
                                 const float *k, size_t k_stride, const float *v, size_t v_stride,
                                 int H, int S, int Dk, int Dv, float scale, float *p) {
    const __m512 vscale = _mm512_set1_ps(scale);
    int s0 = 0;
    for (; s0 + 16 <= S; s0 += 16)
        for (int h = 0; h < H; h++) {
            const float *qh = q + h * q_stride;
            __m512 acc[16];
            for (int j = 0; j < 16; j++) acc[j] = _mm512_setzero_ps();
            for (int i = 0; i < Dk; i += 16) {
                const __mmask16 m = tail(Dk, i);
                const __m512 qi = _mm512_maskz_loadu_ps(m, qh + i);
                for (int j = 0; j < 16; j++)
                    acc[j] = _mm512_fmadd_ps(
                        qi, _mm512_maskz_loadu_ps(m, k + (size_t)(s0 + j) * k_stride + i), acc[j]);
            }
            _mm512_storeu_ps(p + (size_t)h * S + s0, _mm512_mul_ps(vscale, sum16(acc)));
        }
    for (int s = s0; s < S; s++) { /* the last keys one by one */
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
    for (int h = 0; h < H; h++) {
        const float *ph = p + (size_t)h * S;
        for (int d0 = 0; d0 < Dv; d0 += 256) {
            const int nc = (Dv - d0 + 15) / 16 < 16 ? (Dv - d0 + 15) / 16 : 16;
            __m512 acc[16];
            for (int c = 0; c < 16; c++) acc[c] = _mm512_setzero_ps();
            for (int s = 0; s < S; s++) {
                const float *vs = v + s * v_stride + d0;
                const __m512 ps = _mm512_set1_ps(ph[s]);
                for (int c = 0; c < nc; c++)
                    acc[c] = _mm512_fmadd_ps(ps, _mm512_maskz_loadu_ps(tail(Dv - d0, 16 * c), vs + 16 * c),
                                             acc[c]);
            }
            for (int c = 0; c < nc; c++)
                _mm512_mask_storeu_ps(o + h * o_stride + d0 + 16 * c, tail(Dv - d0, 16 * c), acc[c]);
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
