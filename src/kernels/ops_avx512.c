/* SPDX-License-Identifier: MIT */
/* AVX-512 forms of the exp-bound ops of ops.c (softmax, the SwiGLU gate and
 * its backward), which ops.c calls where dot_best() is an AVX-512 level:
 * attention's softmax over every score and the gates' sigmoids had been
 * a tenth of a training step in glibc's scalar expf. Each is tested
 * against its scalar reference (tests/test_kernels.c). */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_simd.h"

#define AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))

/* e^x in 16 lanes, within 2 ulp of expf: x = n ln2 + r with |r| <= ln2/2
 * (ln2 split in two so n ln2 is exact), e^r by Cephes' degree-6 minimax
 * polynomial of expf, times 2^n by vscalefps. Inputs are clamped to
 * [-104, 88.72] first (e^-104 underflows to 0, e^88.72 is below FLT_MAX),
 * with x as the second operand so that a NaN passes through. */
AVX512 static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(88.72283f), x));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(exp_poly[0]);
#pragma GCC unroll 6
    for (int k = 1; k < 6; k++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(exp_poly[k]));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
}

/* 1 / (1 + e^-g) */
AVX512 static inline __m512 sigmoid16(__m512 g) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

static inline __mmask16 tail_mask(size_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

AVX512 double softmax_avx512(float *x, int n) {
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask((size_t)(n - i));
        vmx = _mm512_mask_max_ps(vmx, m, vmx, _mm512_maskz_loadu_ps(m, x + i));
    }
    const float mx = _mm512_reduce_max_ps(vmx);
    if (mx == -INFINITY) { /* nothing allowed: zeros, as the reference */
        for (int i = 0; i < n; i++) x[i] = 0;
        return -INFINITY;
    }
    /* the sum in double, as the reference keeps it */
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    const __m512 vm = _mm512_set1_ps(mx);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask((size_t)(n - i));
        const __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vm)));
        _mm512_mask_storeu_ps(x + i, m, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
    }
    const double sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    const __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask((size_t)(n - i));
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
    return mx + log(sum);
}

AVX512 void swiglu_avx512(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_mul_ps(gv, sigmoid16(gv)), uv));
    }
}

AVX512 void swiglu_backward_avx512(float *dg, float *du, const float *da, const float *g,
                                   const float *u, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 gv = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
        const __m512 dav = _mm512_maskz_loadu_ps(m, da + i), s = sigmoid16(gv);
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(dav, _mm512_mul_ps(gv, s)));
        /* da u s (1 + g (1 - s)) */
        const __m512 t = _mm512_fmadd_ps(gv, _mm512_sub_ps(one, s), one);
        _mm512_mask_storeu_ps(dg + i, m, _mm512_mul_ps(_mm512_mul_ps(dav, uv), _mm512_mul_ps(s, t)));
    }
}
