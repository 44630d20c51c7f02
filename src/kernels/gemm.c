/* SPDX-License-Identifier: MIT */
/* GEMM with packed panels and a 12x32 register tile (see gemm.h), the
 * classic Goto/BLIS layout: for each KC-deep slice, the activations are
 * packed into MR-row strips, each NR-column panel of W into a KC x NR block
 * (converted to float32 on the way), and the microkernel keeps a 12 x 32 tile
 * of y in 24 zmm registers: per k, two loads of W, twelve broadcasts of x,
 * twenty-four FMAs. */
#include "kernels/gemm.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "base/threads.h"

#define MR 12
#define NR 32
#define KC 256

int gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

#define AVX512 __attribute__((target("avx512f,avx2,fma")))

/* acc (MR x NR) = sum_k a[k][0..MR) * b[k][0..NR); then y tile = (first ?
 * acc : y + acc) for the valid mr x nr part. */
AVX512 static void micro_12x32(const float *a, const float *b, int kc, float *y, int ldy, int mr,
                               int nr, int first) {
    __m512 c[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b + k * NR), b1 = _mm512_loadu_ps(b + k * NR + 16);
        const float *ak = a + k * MR;
        /* fully unrolled so the 24 accumulators live in registers */
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(ak[i]);
            c[i][0] = _mm512_fmadd_ps(ai, b0, c[i][0]);
            c[i][1] = _mm512_fmadd_ps(ai, b1, c[i][1]);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr <= 16 ? 0 : nr >= 32 ? 0xffff : (__mmask16)((1u << (nr - 16)) - 1);
    for (int i = 0; i < mr; i++) {
        float *yi = y + (size_t)i * ldy;
        __m512 v0 = c[i][0], v1 = c[i][1];
        if (!first) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, yi));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, yi + 16));
        }
        _mm512_mask_storeu_ps(yi, m0, v0);
        _mm512_mask_storeu_ps(yi + 16, m1, v1);
    }
}

/* Pack rows n0..n0+nr of W, columns k0..k0+kc, as bp[k][j] float32, zero
 * padding to NR columns. row: scratch for one dequantised row (K floats). */
static void pack_b(float *bp, const Mat *W, int n0, int nr, int k0, int kc, float *row) {
    const int K = W->cols;
    for (int j = 0; j < nr; j++) {
        const float *src;
        if (W->type == QTYPE_F32) {
            src = (const float *)W->data + (size_t)(n0 + j) * K + k0;
        } else {
            /* whole row: block formats cannot start mid-block; k0 is a
             * multiple of KC, itself a multiple of every block size */
            int blk = qtype_block(W->type);
            int start = k0 / blk * blk, len = kc + (k0 - start);
            len = (len + blk - 1) / blk * blk;
            if (start + len > K) len = K - start;
            const char *r = (const char *)mat_row(W, n0 + j) +
                            qtype_row_bytes(W->type, start);
            dequantize_row(W->type, r, row, len);
            src = row + (k0 - start);
        }
        for (int k = 0; k < kc; k++) bp[k * NR + j] = src[k];
    }
    for (int j = nr; j < NR; j++)
        for (int k = 0; k < kc; k++) bp[k * NR + j] = 0.0f;
}

/* Pack tokens t0..t0+mr, columns k0..k0+kc, as ap[k][i], zero padding. */
static void pack_a(float *ap, const float *x, int K, int t0, int mr, int k0, int kc) {
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < mr; i++) ap[k * MR + i] = x[(size_t)(t0 + i) * K + k0 + k];
        for (int i = mr; i < MR; i++) ap[k * MR + i] = 0.0f;
    }
}

/* Grow-only packing buffers of the calling thread (the model's worker), so
 * the steady state allocates nothing. */
static _Thread_local float *pack_buf;
static _Thread_local size_t pack_cap;

int gemm_nt(float *y, const float *x, const Mat *W, int row0, int n_rows, int T) {
    const int K = W->cols, n_strips = (T + MR - 1) / MR, n_panels = (n_rows + NR - 1) / NR;
    const int nt = threads_max();
    /* per thread: a KC x NR panel and one dequantised row, 64-byte rounded */
    const size_t per_thread = ((size_t)NR * KC + (size_t)K + 15) & ~(size_t)15;
    const size_t a_floats = (size_t)n_strips * MR * KC, need = a_floats + (size_t)nt * per_thread;
    if (need > pack_cap) {
        float *p = aligned_alloc(64, need * sizeof(float));
        if (!p) return -1;
        free(pack_buf);
        pack_buf = p;
        pack_cap = need;
    }
    float *ap = pack_buf, *bp = pack_buf + a_floats;
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC;
        for (int s = 0; s < n_strips; s++) {
            int t0 = s * MR, mr = T - t0 < MR ? T - t0 : MR;
            pack_a(ap + (size_t)s * MR * KC, x, K, t0, mr, k0, kc);
        }
#pragma omp parallel for schedule(dynamic, 1)
        for (int p = 0; p < n_panels; p++) {
            float *b = bp + (size_t)thread_id() * per_thread;
            const int n0 = p * NR, nr = n_rows - n0 < NR ? n_rows - n0 : NR;
            pack_b(b, W, row0 + n0, nr, k0, kc, b + NR * KC);
            for (int s = 0; s < n_strips; s++) {
                int t0 = s * MR, mr = T - t0 < MR ? T - t0 : MR;
                micro_12x32(ap + (size_t)s * MR * KC, b, kc, y + (size_t)t0 * n_rows + n0,
                            n_rows, mr, nr, k0 == 0);
            }
        }
    }
    return 0;
}
