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

/* The low and the high 8 lanes of v as doubles. */
AVX512 static inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
AVX512 static inline __m512d hi_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }

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
        s0 = _mm512_add_pd(s0, lo_pd(e));
        s1 = _mm512_add_pd(s1, hi_pd(e));
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

/* ---- RMSNorm: bandwidth-bound, the sums in double as the references ---- */

/* Sums over a row of n in double, 16 floats at a time, the tail masked:
 * x^2 into *ss and, with dy and w, dy w x into *dot. */
AVX512 static inline void row_sums(const float *x, const float *dy, const float *w, int n,
                                   double *ss, double *dot) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512d d0 = _mm512_setzero_pd(), d1 = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask((size_t)(n - i));
        const __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
        const __m512d xl = lo_pd(xv);
        const __m512d xh = hi_pd(xv);
        s0 = _mm512_fmadd_pd(xl, xl, s0);
        s1 = _mm512_fmadd_pd(xh, xh, s1);
        if (dy) {
            const __m512 gv = _mm512_maskz_loadu_ps(m, dy + i), wv = _mm512_maskz_loadu_ps(m, w + i);
            const __m512d gl = lo_pd(gv);
            const __m512d gh = hi_pd(gv);
            const __m512d wl = lo_pd(wv);
            const __m512d wh = hi_pd(wv);
            d0 = _mm512_fmadd_pd(_mm512_mul_pd(gl, wl), xl, d0);
            d1 = _mm512_fmadd_pd(_mm512_mul_pd(gh, wh), xh, d1);
        }
    }
    *ss = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    if (dot) *dot = _mm512_reduce_add_pd(_mm512_add_pd(d0, d1));
}

AVX512 void rmsnorm_rows_avx512(float *y, const float *x, const float *w, int T, int n, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * n;
        float *yt = y + (size_t)t * n;
        double ss;
        row_sums(xt, NULL, NULL, n, &ss, NULL);
        const __m512 r = _mm512_set1_ps((float)(1.0 / sqrt(ss / n + eps)));
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = tail_mask((size_t)(n - i));
            const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xt + i), r);
            _mm512_mask_storeu_ps(yt + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i)));
        }
    }
}

AVX512 void rmsnorm_backward_rows_avx512(float *dx, const float *dy, const float *x, const float *w,
                                         int T, int n, float eps, float *rs) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
        float *dxt = dx + (size_t)t * n;
        double ss, dot;
        row_sums(xt, dyt, w, n, &ss, &dot);
        const double r = 1.0 / sqrt(ss / n + eps);
        const float rf = (float)r;
        rs[t] = rf;
        const __m512 rv = _mm512_set1_ps(rf), cv = _mm512_set1_ps((float)(r * r * r * dot / n));
        for (int i = 0; i < n; i += 16) {
            const __mmask16 m = tail_mask((size_t)(n - i));
            const __m512 g = _mm512_mul_ps(_mm512_mul_ps(rv, _mm512_maskz_loadu_ps(m, dyt + i)),
                                           _mm512_maskz_loadu_ps(m, w + i));
            const __m512 d = _mm512_sub_ps(g, _mm512_mul_ps(cv, _mm512_maskz_loadu_ps(m, xt + i)));
            _mm512_mask_storeu_ps(dxt + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dxt + i), d));
        }
    }
}

AVX512 void rms_gain_block_avx512(float *dw, const float *dy, const float *x, const float *rs,
                                  int T, int n, int i0) {
    const __mmask16 m = tail_mask((size_t)(n - i0));
    __m512 acc = _mm512_setzero_ps();
    for (int t = 0; t < T; t++) {
        const size_t o = (size_t)t * n + i0;
        const __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + o), _mm512_maskz_loadu_ps(m, x + o));
        acc = _mm512_add_ps(acc, _mm512_mul_ps(p, _mm512_set1_ps(rs[t])));
    }
    _mm512_mask_storeu_ps(dw + i0, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dw + i0), acc));
}

/* ---- sums in double for the backward and the gradient norm ---- */

AVX512 double sum_squares_avx512(const float *x, size_t n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512d s2 = _mm512_setzero_pd(), s3 = _mm512_setzero_pd(); /* four chains: latency */
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        const __m512d al = lo_pd(a);
        const __m512d ah = hi_pd(a);
        const __m512d bl = lo_pd(b);
        const __m512d bh = hi_pd(b);
        s0 = _mm512_fmadd_pd(al, al, s0), s1 = _mm512_fmadd_pd(ah, ah, s1);
        s2 = _mm512_fmadd_pd(bl, bl, s2), s3 = _mm512_fmadd_pd(bh, bh, s3);
    }
    double tail;
    row_sums(x + i, NULL, NULL, (int)(n - i), &tail, NULL);
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), _mm512_add_pd(s2, s3))) + tail;
}

AVX512 void softmax_backward_avx512(float *d, const float *p, int n, float scale) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask((size_t)(n - i));
        const __m512 pv = _mm512_maskz_loadu_ps(m, p + i), dv = _mm512_maskz_loadu_ps(m, d + i);
        const __m512d pl = lo_pd(pv);
        const __m512d ph = hi_pd(pv);
        const __m512d dl = lo_pd(dv);
        const __m512d dh = hi_pd(dv);
        s0 = _mm512_fmadd_pd(pl, dl, s0), s1 = _mm512_fmadd_pd(ph, dh, s1);
    }
    const __m512 sum = _mm512_set1_ps((float)_mm512_reduce_add_pd(_mm512_add_pd(s0, s1)));
    const __m512 sc = _mm512_set1_ps(scale);
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask((size_t)(n - i));
        const __m512 pv = _mm512_maskz_loadu_ps(m, p + i), dv = _mm512_maskz_loadu_ps(m, d + i);
        _mm512_mask_storeu_ps(d + i, m, _mm512_mul_ps(_mm512_mul_ps(pv, _mm512_sub_ps(dv, sum)), sc));
    }
}
