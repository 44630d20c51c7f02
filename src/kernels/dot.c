/* SPDX-License-Identifier: MIT */
/* SIMD dot products (see dot.h). Each variant accumulates in float lanes
 * and reduces once at the end, so its rounding differs from the scalar
 * loop's by a few ulps of the row's magnitude; tests bound it relatively.
 * The integer products of Q8_0/Q4_0 blocks (and of the Q4_K/Q6_K
 * sub-blocks) are exact in every variant. */
#include "kernels/dot.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "base/dtype.h"

static float dot_ref_f32(const void *w, const float *xf, const BlockQ8_0 *xq, int n) {
    return vec_dot_ref(QTYPE_F32, w, xf, xq, n);
}
static float dot_ref_f16(const void *w, const float *xf, const BlockQ8_0 *xq, int n) {
    return vec_dot_ref(QTYPE_F16, w, xf, xq, n);
}
static float dot_ref_bf16(const void *w, const float *xf, const BlockQ8_0 *xq, int n) {
    return vec_dot_ref(QTYPE_BF16, w, xf, xq, n);
}
static float dot_ref_q8_0(const void *w, const float *xf, const BlockQ8_0 *xq, int n) {
    return vec_dot_ref(QTYPE_Q8_0, w, xf, xq, n);
}
static float dot_ref_q4_0(const void *w, const float *xf, const BlockQ8_0 *xq, int n) {
    return vec_dot_ref(QTYPE_Q4_0, w, xf, xq, n);
}
static float dot_ref_q4_k(const void *w, const float *xf, const BlockQ8_0 *xq, int n) {
    return vec_dot_ref(QTYPE_Q4_K, w, xf, xq, n);
}
static float dot_ref_q6_k(const void *w, const float *xf, const BlockQ8_0 *xq, int n) {
    return vec_dot_ref(QTYPE_Q6_K, w, xf, xq, n);
}

/* ---- AVX2 + FMA + F16C ---- */
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static float dot_avx2_f32(const void *wv, const float *x, const BlockQ8_0 *xq, int n) {
    const float *w = wv;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += w[i] * x[i];
    (void)xq;
    return s;
}

AVX2 static float dot_avx2_half(const uint16_t *w, const float *x, int n, int bf16) {
    __m256 a0 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(w + i));
        __m256 f = bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
                        : _mm256_cvtph_ps(h);
        a0 = _mm256_fmadd_ps(f, _mm256_loadu_ps(x + i), a0);
    }
    float s = hsum256(a0);
    for (; i < n; i++) s += (bf16 ? bf16_to_f32(w[i]) : f16_to_f32(w[i])) * x[i];
    return s;
}
AVX2 static float dot_avx2_f16(const void *w, const float *x, const BlockQ8_0 *xq, int n) {
    (void)xq;
    return dot_avx2_half(w, x, n, 0);
}
AVX2 static float dot_avx2_bf16(const void *w, const float *x, const BlockQ8_0 *xq, int n) {
    (void)xq;
    return dot_avx2_half(w, x, n, 1);
}

/* 32 int8 weights (as two 16-lane int16 halves) times 32 int8 activations */
AVX2 static inline __m256i madd_i8x32_avx2(__m256i w, __m256i x) {
    __m256i wl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w));
    __m256i wh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w, 1));
    __m256i xl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(x));
    __m256i xh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(x, 1));
    return _mm256_add_epi32(_mm256_madd_epi16(wl, xl), _mm256_madd_epi16(wh, xh));
}

AVX2 static float dot_avx2_q8_0(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ8_0 *w = wv;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK; i++) {
        __m256i p = madd_i8x32_avx2(_mm256_loadu_si256((const __m256i *)w[i].qs),
                                    _mm256_loadu_si256((const __m256i *)xq[i].qs));
        __m256 d = _mm256_set1_ps(_cvtsh_ss(w[i].d) * _cvtsh_ss(xq[i].d));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc);
    }
    (void)xf;
    return hsum256(acc);
}

AVX2 static inline __m256i unpack_q4_avx2(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(15);
    __m128i lo = _mm_and_si128(b, m), hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
    __m256i v = _mm256_set_m128i(hi, lo);
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

AVX2 static float dot_avx2_q4_0(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ4_0 *w = wv;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK; i++) {
        __m256i p = madd_i8x32_avx2(unpack_q4_avx2(w[i].qs),
                                    _mm256_loadu_si256((const __m256i *)xq[i].qs));
        __m256 d = _mm256_set1_ps(_cvtsh_ss(w[i].d) * _cvtsh_ss(xq[i].d));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), d, acc);
    }
    (void)xf;
    return hsum256(acc);
}

/* Q4_K x Q8_0: per 32-element sub-block, vpmaddubsw of the unsigned codes
 * with the activation bytes (pairs <= 2*15*127, no saturation), widened by
 * the sub-block scale; the min term from the activation's byte sum. */
AVX2 static float dot_avx2_q4_k(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ4_K *w = wv;
    const __m256i m4 = _mm256_set1_epi8(15), ones = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(w[i].d), dmin = _cvtsh_ss(w[i].dmin);
        for (int p = 0; p < 4; p++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * p));
            __m256i q[2] = {_mm256_and_si256(b, m4), _mm256_and_si256(_mm256_srli_epi16(b, 4), m4)};
            for (int k = 0; k < 2; k++) {
                const int j = 2 * p + k;
                const BlockQ8_0 *x = &xq[8 * i + j];
                int sc, m;
                q4k_scale_min(w[i].scales, j, &sc, &m);
                __m256i xv = _mm256_loadu_si256((const __m256i *)x->qs);
                __m256i qx = _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], xv),
                                               _mm256_set1_epi16((short)sc));
                __m256i sx = _mm256_madd_epi16(_mm256_maddubs_epi16(ones, xv),
                                               _mm256_set1_epi16((short)m));
                const float dx = _cvtsh_ss(x->d);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(qx), _mm256_set1_ps(dx * d), acc);
                acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(sx), _mm256_set1_ps(dx * dmin), acc);
            }
        }
    }
    (void)xf;
    return hsum256(acc);
}

/* Q6_K x Q8_0: the 6-bit codes (0..63) assembled per 32-element group,
 * vpmaddubsw against the activation (pairs <= 2*63*127) minus the same for
 * the offset 32, then vpmaddwd by the two 16-element sub-block scales. */
AVX2 static float dot_avx2_q6_k(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ6_K *w = wv;
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    const __m256i off = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(w[i].d);
        for (int h = 0; h < 2; h++) {
            __m256i ql[2] = {_mm256_loadu_si256((const __m256i *)(w[i].ql + 64 * h)),
                             _mm256_loadu_si256((const __m256i *)(w[i].ql + 64 * h + 32))};
            __m256i qh = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            for (int g = 0; g < 4; g++) {
                __m256i lo = ql[g & 1];
                if (g >= 2) lo = _mm256_srli_epi16(lo, 4);
                lo = _mm256_and_si256(lo, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), m2);
                __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
                const BlockQ8_0 *x = &xq[8 * i + 4 * h + g];
                __m256i xv = _mm256_loadu_si256((const __m256i *)x->qs);
                __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv),
                                               _mm256_maddubs_epi16(off, xv));
                const int8_t *sc = w[i].scales + 8 * h + 2 * g;
                __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[1]), _mm_set1_epi16(sc[0]));
                __m256i p32 = _mm256_madd_epi16(p16, scv);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), _mm256_set1_ps(_cvtsh_ss(x->d) * d),
                                      acc);
            }
        }
    }
    (void)xf;
    return hsum256(acc);
}

/* ---- AVX-512 F + BW + VL ---- */
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

AVX512 static float dot_avx512_f32(const void *wv, const float *x, const BlockQ8_0 *xq, int n) {
    const float *w = wv;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    }
    if (i + 16 <= n) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        i += 16;
    }
    if (i < n) { /* masked tail */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a1);
    }
    (void)xq;
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AVX512 static float dot_avx512_half(const uint16_t *w, const float *x, int n, int bf16) {
    __m512 a0 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(w + i));
        __m512 f = bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                        : _mm512_cvtph_ps(h);
        a0 = _mm512_fmadd_ps(f, _mm512_loadu_ps(x + i), a0);
    }
    float s = _mm512_reduce_add_ps(a0);
    for (; i < n; i++) s += (bf16 ? bf16_to_f32(w[i]) : f16_to_f32(w[i])) * x[i];
    return s;
}
AVX512 static float dot_avx512_f16(const void *w, const float *x, const BlockQ8_0 *xq, int n) {
    (void)xq;
    return dot_avx512_half(w, x, n, 0);
}
AVX512 static float dot_avx512_bf16(const void *w, const float *x, const BlockQ8_0 *xq, int n) {
    (void)xq;
    return dot_avx512_half(w, x, n, 1);
}

/* Two blocks per step: 64 int8 products widened to int16 pairs. */
AVX512 static inline __m512i madd_i8x32_avx512(__m256i w, __m256i x) {
    return _mm512_madd_epi16(_mm512_cvtepi8_epi16(w), _mm512_cvtepi8_epi16(x));
}

AVX512 static float dot_avx512_q8_0(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ8_0 *w = wv;
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n / QK; i++) {
        __m512i p = madd_i8x32_avx512(_mm256_loadu_si256((const __m256i *)w[i].qs),
                                      _mm256_loadu_si256((const __m256i *)xq[i].qs));
        __m512 d = _mm512_set1_ps(_cvtsh_ss(w[i].d) * _cvtsh_ss(xq[i].d));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
    }
    (void)xf;
    return _mm512_reduce_add_ps(acc);
}

AVX512 static float dot_avx512_q4_0(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ4_0 *w = wv;
    __m512 acc = _mm512_setzero_ps();
    const __m128i m = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (int i = 0; i < n / QK; i++) {
        __m128i b = _mm_loadu_si128((const __m128i *)w[i].qs);
        __m128i lo = _mm_sub_epi8(_mm_and_si128(b, m), eight);
        __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), m), eight);
        __m256i q = _mm256_set_m128i(hi, lo);
        __m512i p = madd_i8x32_avx512(q, _mm256_loadu_si256((const __m256i *)xq[i].qs));
        __m512 d = _mm512_set1_ps(_cvtsh_ss(w[i].d) * _cvtsh_ss(xq[i].d));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
    }
    (void)xf;
    return _mm512_reduce_add_ps(acc);
}

/* ---- AVX-512 VNNI: byte dot products (vpdpbusd), two blocks per step ---- */
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/* Scales of blocks i and i+1 in the low and high 8 lanes. */
VNNI static inline __m512 scale_pair(float a, float b) {
    return _mm512_mask_blend_ps((__mmask16)0xff00, _mm512_set1_ps(a), _mm512_set1_ps(b));
}

VNNI static inline __m512i load_pair(const int8_t *a, const int8_t *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* Q8_0 x Q8_0: vpdpbusd multiplies unsigned by signed bytes, so the weight
 * goes in as |w| and its sign moves onto the activation. */
VNNI static float dot_vnni_q8_0(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ8_0 *w = wv;
    const int nb = n / QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512();
    int i = 0;
    for (; i + 4 <= nb; i += 4) {
        __m512i wa = load_pair(w[i].qs, w[i + 1].qs), xa = load_pair(xq[i].qs, xq[i + 1].qs);
        __m512i wb = load_pair(w[i + 2].qs, w[i + 3].qs);
        __m512i xb = load_pair(xq[i + 2].qs, xq[i + 3].qs);
        xa = _mm512_mask_sub_epi8(xa, _mm512_movepi8_mask(wa), zero, xa);
        xb = _mm512_mask_sub_epi8(xb, _mm512_movepi8_mask(wb), zero, xb);
        __m512i pa = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wa), xa);
        __m512i pb = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(wb), xb);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pa),
                               scale_pair(_cvtsh_ss(w[i].d) * _cvtsh_ss(xq[i].d),
                                          _cvtsh_ss(w[i + 1].d) * _cvtsh_ss(xq[i + 1].d)),
                               acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pb),
                               scale_pair(_cvtsh_ss(w[i + 2].d) * _cvtsh_ss(xq[i + 2].d),
                                          _cvtsh_ss(w[i + 3].d) * _cvtsh_ss(xq[i + 3].d)),
                               acc1);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++) { /* tail blocks: exact integer dot, as the reference */
        int a = 0;
        for (int j = 0; j < QK; j++) a += w[i].qs[j] * xq[i].qs[j];
        s += (float)a * _cvtsh_ss(w[i].d) * _cvtsh_ss(xq[i].d);
    }
    (void)xf;
    return s;
}

/* Q4_0 x Q8_0: the nibbles are already unsigned (0..15); the offset of 8
 * is taken off as 8 * sum(x), a second vpdpbusd against a vector of 8s. */
VNNI static float dot_vnni_q4_0(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ4_0 *w = wv;
    const int nb = n / QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512(), eights = _mm512_set1_epi8(8);
    const __m512i low = _mm512_set1_epi8(15);
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        /* [b0, b1] -> [lo0, hi0, lo1, hi1]: elements 0..31 of each block in order */
        __m256i b = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)w[i + 1].qs),
                                     _mm_loadu_si128((const __m128i *)w[i].qs));
        __m512i bb = _mm512_inserti64x4(_mm512_castsi256_si512(b), _mm256_srli_epi16(b, 4), 1);
        bb = _mm512_and_si512(_mm512_shuffle_i64x2(bb, bb, _MM_SHUFFLE(3, 1, 2, 0)), low);
        __m512i x = load_pair(xq[i].qs, xq[i + 1].qs);
        __m512i p = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, bb, x),
                                     _mm512_dpbusd_epi32(zero, eights, x));
        __m512 d = scale_pair(_cvtsh_ss(w[i].d) * _cvtsh_ss(xq[i].d),
                              _cvtsh_ss(w[i + 1].d) * _cvtsh_ss(xq[i + 1].d));
        if (i & 2) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc1);
        else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; i < nb; i++) {
        int a = 0;
        for (int j = 0; j < QK / 2; j++)
            a += ((w[i].qs[j] & 15) - 8) * xq[i].qs[j] + ((w[i].qs[j] >> 4) - 8) * xq[i].qs[j + QK / 2];
        s += (float)a * _cvtsh_ss(w[i].d) * _cvtsh_ss(xq[i].d);
    }
    (void)xf;
    return s;
}

/* The eight 6-bit scales (*sc) and mins (*m) of a Q4_K block as bytes,
 * unpacked four at a time in 32-bit words: with A, B, C the words of
 * scales[0..3], [4..7], [8..11], sub-blocks 0-3 are A & 63 and B & 63 per
 * byte, sub-blocks 4-7 take their low 4 bits from C's nibbles and their
 * top 2 from the top bits of A and B. */
static inline void q4k_unpack8(const uint8_t *scales, uint64_t *sc, uint64_t *m) {
    uint32_t a, b, c;
    memcpy(&a, scales, 4), memcpy(&b, scales + 4, 4), memcpy(&c, scales + 8, 4);
    const uint32_t low6 = 0x3f3f3f3fu, nib = 0x0f0f0f0fu, top2 = 0x30303030u;
    uint32_t sc_hi = (c & nib) | ((a >> 2) & top2), m_hi = ((c >> 4) & nib) | ((b >> 2) & top2);
    *sc = (uint64_t)(a & low6) | (uint64_t)sc_hi << 32;
    *m = (uint64_t)(b & low6) | (uint64_t)m_hi << 32;
}

/* Q4_K x Q8_0: a pair of sub-blocks (the low and high nibbles of 32 code
 * bytes) per step, vpdpbusd of the unsigned codes against their two Q8_0
 * blocks; the min term from vpdpbusd of ones against the same bytes. The
 * per-sub-block factors (d*sc*dx and dmin*m*dx) are made eight at a time
 * and spread to the pair's lanes by a permute; the scale and min terms
 * accumulate apart and meet once at the end. */
VNNI static float dot_vnni_q4_k(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ4_K *w = wv;
    const __m512i zero = _mm512_setzero_si512(), ones = _mm512_set1_epi8(1);
    const __m256i m4 = _mm256_set1_epi8(15);
    __m512i pick[4]; /* lanes 0-7 <- factor 2p, lanes 8-15 <- factor 2p+1 */
    for (int p = 0; p < 4; p++)
        pick[p] = _mm512_mask_blend_epi32((__mmask16)0xff00, _mm512_set1_epi32(2 * p),
                                          _mm512_set1_epi32(2 * p + 1));
    __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const BlockQ8_0 *x = xq + 8 * i;
        uint64_t sc8, m8;
        q4k_unpack8(w[i].scales, &sc8, &m8);
        __m256 dx = _mm256_cvtph_ps(_mm_setr_epi16((short)x[0].d, (short)x[1].d, (short)x[2].d,
                                                   (short)x[3].d, (short)x[4].d, (short)x[5].d,
                                                   (short)x[6].d, (short)x[7].d));
        __m256 fsc = _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc8))),
            _mm256_mul_ps(dx, _mm256_set1_ps(_cvtsh_ss(w[i].d))));
        __m256 fm = _mm256_mul_ps(
            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)m8))),
            _mm256_mul_ps(dx, _mm256_set1_ps(_cvtsh_ss(w[i].dmin))));
        const __m512 fsc16 = _mm512_castps256_ps512(fsc), fm16 = _mm512_castps256_ps512(fm);
        for (int p = 0; p < 4; p++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * p));
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(b, m4)),
                                           _mm256_and_si256(_mm256_srli_epi16(b, 4), m4), 1);
            __m512i xv = load_pair(x[2 * p].qs, x[2 * p + 1].qs);
            __m512 dot = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, q, xv));
            __m512 sum = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, ones, xv));
            acc = _mm512_fmadd_ps(dot, _mm512_permutexvar_ps(pick[p], fsc16), acc);
            accm = _mm512_fmadd_ps(sum, _mm512_permutexvar_ps(pick[p], fm16), accm);
        }
    }
    (void)xf;
    return _mm512_reduce_add_ps(_mm512_sub_ps(acc, accm));
}

/* Q6_K x Q8_0: per half, the codes of groups (0, 1) and (2, 3) assembled
 * 64 at a time, vpdpbusd against two Q8_0 blocks minus the same for the
 * offset 32; each lane then holds 4 elements of one 16-element sub-block
 * and is multiplied by its scale as int32. */
VNNI static float dot_vnni_q6_k(const void *wv, const float *xf, const BlockQ8_0 *xq, int n) {
    const BlockQ6_K *w = wv;
    const __m512i zero = _mm512_setzero_si512(), m4 = _mm512_set1_epi8(15);
    const __m512i m2 = _mm512_set1_epi8(3), off = _mm512_set1_epi8(32);
    const __m128i rep01 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m128i rep23 = _mm_add_epi8(rep01, _mm_set1_epi8(4));
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = _cvtsh_ss(w[i].d);
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512((const void *)(w[i].ql + 64 * h));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            __m512i qh01 = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
            __m512i qh23 = _mm512_srli_epi16(qh01, 4);
            __m512i q01 = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                          _mm512_slli_epi16(_mm512_and_si512(qh01, m2), 4));
            __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                          _mm512_slli_epi16(_mm512_and_si512(qh23, m2), 4));
            __m128i sc8 = _mm_loadl_epi64((const __m128i *)(w[i].scales + 8 * h));
            __m512i s01 = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc8, rep01));
            __m512i s23 = _mm512_cvtepi8_epi32(_mm_shuffle_epi8(sc8, rep23));
            const BlockQ8_0 *x = xq + 8 * i + 4 * h;
            __m512i x01 = load_pair(x[0].qs, x[1].qs), x23 = load_pair(x[2].qs, x[3].qs);
            __m512i p01 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, q01, x01),
                                           _mm512_dpbusd_epi32(zero, off, x01));
            __m512i p23 = _mm512_sub_epi32(_mm512_dpbusd_epi32(zero, q23, x23),
                                           _mm512_dpbusd_epi32(zero, off, x23));
            p01 = _mm512_mullo_epi32(p01, s01);
            p23 = _mm512_mullo_epi32(p23, s23);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p01),
                                  scale_pair(_cvtsh_ss(x[0].d) * d, _cvtsh_ss(x[1].d) * d), acc);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23),
                                  scale_pair(_cvtsh_ss(x[2].d) * d, _cvtsh_ss(x[3].d) * d), acc);
        }
    }
    (void)xf;
    return _mm512_reduce_add_ps(acc);
}

/* The k-quants run their AVX2 kernels at the AVX2 and AVX-512 levels. */
static const DotKernels levels[DOT_LEVELS] = {
    {"scalar", {dot_ref_f32, dot_ref_f16, dot_ref_bf16, dot_ref_q8_0, dot_ref_q4_0, dot_ref_q4_k,
                dot_ref_q6_k}},
    {"avx2", {dot_avx2_f32, dot_avx2_f16, dot_avx2_bf16, dot_avx2_q8_0, dot_avx2_q4_0,
              dot_avx2_q4_k, dot_avx2_q6_k}},
    {"avx512", {dot_avx512_f32, dot_avx512_f16, dot_avx512_bf16, dot_avx512_q8_0,
                dot_avx512_q4_0, dot_avx2_q4_k, dot_avx2_q6_k}},
    {"avx512vnni",
     {dot_avx512_f32, dot_avx512_f16, dot_avx512_bf16, dot_vnni_q8_0, dot_vnni_q4_0,
      dot_vnni_q4_k, dot_vnni_q6_k}},
};
_Static_assert(QTYPE_COUNT == 7, "every level lists a kernel per storage type");

static int level_supported(DotLevel l) {
    __builtin_cpu_init();
    switch (l) {
    case DOT_SCALAR: return 1;
    case DOT_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    case DOT_AVX512:
        return level_supported(DOT_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    case DOT_AVX512_VNNI:
        return level_supported(DOT_AVX512) && __builtin_cpu_supports("avx512vnni");
    default: return 0;
    }
}

const DotKernels *dot_kernels(DotLevel level) {
    return level < DOT_LEVELS && level_supported(level) ? &levels[level] : NULL;
}

const DotKernels *dot_best(void) {
    /* Racing first calls compute the same answer; the atomics make the
     * publication of the pointer well defined. */
    static const DotKernels *best;
    const DotKernels *b = __atomic_load_n(&best, __ATOMIC_ACQUIRE);
    if (b) return b;
    DotLevel cap = DOT_AVX512_VNNI;
    const char *env = getenv("WHALE_SIMD");
    if (env && !strcmp(env, "scalar")) cap = DOT_SCALAR;
    else if (env && !strcmp(env, "avx2")) cap = DOT_AVX2;
    else if (env && !strcmp(env, "avx512")) cap = DOT_AVX512;
    b = &levels[DOT_SCALAR];
    for (int l = cap; l >= 0; l--)
        if (level_supported((DotLevel)l)) {
            b = &levels[l];
            break;
        }
    __atomic_store_n(&best, b, __ATOMIC_RELEASE);
    return b;
}
