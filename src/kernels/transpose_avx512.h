/* SPDX-License-Identifier: MIT */
/* A 16 x 16 float transpose in AVX-512 registers, for the kernels that
 * turn rows into columns as they pack (gemm.c's panels, the training
 * attention's K and V panels): 64 shuffles against 256 scalar moves. */
#ifndef WHALE_TRANSPOSE_AVX512_H
#define WHALE_TRANSPOSE_AVX512_H

#include <immintrin.h>

/* r[0..16) transposed in place: r[j] lane i <- r[i] lane j. */
static inline __attribute__((always_inline, target("avx512f"))) void transpose16(__m512 r[16]) {
    __m512 t[16];
    /* pairs of rows interleaved by 32-bit lanes */
    _Pragma("GCC unroll 8") for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* then by 64-bit pairs: r[4q + c] lane L holds rows 4q..4q+3 of column 4L + c */
    _Pragma("GCC unroll 4") for (int i = 0; i < 16; i += 4)
        _Pragma("GCC unroll 2") for (int j = 0; j < 2; j++) {
            const __m512d x = _mm512_castps_pd(t[i + j]), y = _mm512_castps_pd(t[i + j + 2]);
            r[i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(x, y));
            r[i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(x, y));
        }
    /* then 128-bit lanes gathered: column C from lane C / 4 of r[4q + C % 4], q = 0..3 */
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);      /* lanes 0, 2 | 0, 2 */
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);  /* lanes 1, 3 | 1, 3 */
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);       /* column i */
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);   /* column i + 8 */
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);  /* column i + 4 */
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd); /* column i + 12 */
    }
}

#endif
