/* SPDX-License-Identifier: MIT */
/* AVX2+FMA forms of the exp-bound ops (see ops_avx512.c, whose algorithm
 * this follows in 8 lanes): for CPUs without AVX-512. AVX2 has no
 * vscalefps, so 2^n is built in the exponent bits, which needs n in
 * [-126, 127]: inputs are clamped to [-87.3, 88.3] and those below -87.3
 * (e^x under FLT_MIN, -inf scores) give 0. Tails run the same lanes
 * masked. Tested against the scalar references (tests/test_kernels.c). */
#include <immintrin.h>
#include <math.h>

#include "kernels/ops_simd.h"

#define AVX2 __attribute__((target("avx2,fma")))

/* e^x in 8 lanes, within 2 ulp of expf for x in [-87.3, 88.3]; 0 below,
 * NaN passed on (x is the second operand of the clamps). */
AVX2 static inline __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.3f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(lo, _mm256_min_ps(_mm256_set1_ps(88.3f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(exp_poly[0]);
#pragma GCC unroll 6
    for (int k = 1; k < 6; k++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(exp_poly[k]));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

AVX2 static inline __m256 sigmoid8(__m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

/* Lanes i .. i+7 that are below n. */
AVX2 static inline __m256i tail8(size_t left) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left >= 8 ? 8 : (int)left), idx);
}

AVX2 double softmax_avx2(float *x, int n) {
    __m256 vmx = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 8) {
        const __m256i m = tail8((size_t)(n - i));
        const __m256 v = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(x + i, m),
                                          _mm256_castsi256_ps(m));
        vmx = _mm256_max_ps(vmx, v);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vmx);
    float mx = lanes[0];
    for (int k = 1; k < 8; k++) mx = lanes[k] > mx ? lanes[k] : mx;
    if (mx == -INFINITY) { /* nothing allowed: zeros, as the reference */
        for (int i = 0; i < n; i++) x[i] = 0;
        return -INFINITY;
    }
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    const __m256 vm = _mm256_set1_ps(mx);
    for (int i = 0; i < n; i += 8) {
        const __m256i m = tail8((size_t)(n - i));
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vm)),
                                       _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + i, m, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sl[4];
    _mm256_storeu_pd(sl, _mm256_add_pd(s0, s1));
    const double sum = sl[0] + sl[1] + sl[2] + sl[3];
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    for (int i = 0; i < n; i += 8) {
        const __m256i m = tail8((size_t)(n - i));
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
    }
    return mx + log(sum);
}

AVX2 void swiglu_avx2(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        const __m256i m = tail8(n - i);
        const __m256 gv = _mm256_maskload_ps(g + i, m), uv = _mm256_maskload_ps(u + i, m);
        _mm256_maskstore_ps(g + i, m, _mm256_mul_ps(_mm256_mul_ps(gv, sigmoid8(gv)), uv));
    }
}

AVX2 void swiglu_backward_avx2(float *dg, float *du, const float *da, const float *g,
                               const float *u, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 8) {
        const __m256i m = tail8(n - i);
        const __m256 gv = _mm256_maskload_ps(g + i, m), uv = _mm256_maskload_ps(u + i, m);
        const __m256 dav = _mm256_maskload_ps(da + i, m), s = sigmoid8(gv);
        _mm256_maskstore_ps(du + i, m, _mm256_mul_ps(dav, _mm256_mul_ps(gv, s)));
        const __m256 t = _mm256_fmadd_ps(gv, _mm256_sub_ps(one, s), one);
        _mm256_maskstore_ps(dg + i, m, _mm256_mul_ps(_mm256_mul_ps(dav, uv), _mm256_mul_ps(s, t)));
    }
}
