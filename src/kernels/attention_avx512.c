/* SPDX-License-Identifier: MIT */
/* AVX-512 forms of one head's training attention (attention_simd.h):
 * every product runs in a register tile that reads its operands where they
 * lie, and each block of query rows goes through its scores, softmax and
 * P V (or, backward, dP, dS and dQ) while those rows are in L1.
 *
 * Through sgemm_causal, a head at T 256, Dk 64, Dv 32 ran at a third of
 * the machine's peak: its depths are 32 to 256, so a packed panel of B
 * (15% of the time) and the 24-register tile's stores are paid for few
 * FMAs, and each pass (scores, softmax, P V) walked the whole (T, T)
 * matrix, out of L1 by the next pass. Here only K and V are transposed,
 * once per head, into column panels of 64; everything else is read in
 * place. */
#include <immintrin.h>
#include <string.h>

#include "kernels/attention.h"
#include "kernels/attention_simd.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/transpose_avx512.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

#define PANEL 64 /* columns of a transposed K or V panel: four vectors */
#define MR_MAX 12 /* the deepest tile: ATTENTION_P_ZEROS covers its reach */

/* Rows of the tile for nv vectors per row: 24 accumulators at most,
 * leaving registers for the nv loads of B and a broadcast of A. */
static inline int tile_rows(int nv) { return nv <= 2 ? 12 : nv == 3 ? 8 : 6; }

/* C[i][0..n) = alpha acc + (add ? C[i][0..n) : 0), i < mr, where acc =
 * sum_{k < kn} A(i, k) B[k][0..n) and A(i, k) = a[i rs + k ks]. NV vectors
 * cover n (the last one masked); MR = tile_rows(NV). One of rs, ks is 1 at
 * every call site, so each form compiles to its own loop. With mr < MR the
 * missing rows repeat the last one (computed, never stored), so A is read
 * only inside its mr rows. */
AVX512 static inline __attribute__((always_inline)) void
tile_k(const int NV, const int MR, __m512 acc[MR_MAX][4], const float *a, const size_t *off,
       size_t ks, const float *b, size_t ldb, int kn, __mmask16 last) {
    for (int k = 0; k < kn; k++) {
        const float *bk = b + (size_t)k * ldb, *ak = a + (size_t)k * ks;
        __m512 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_maskz_loadu_ps(v == NV - 1 ? last : (__mmask16)0xffff, bk + 16 * v);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            const __m512 ai = _mm512_set1_ps(ak[off[i]]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
}

AVX512 static inline __attribute__((always_inline)) void
tile(const int NV, const int MR, float *c, size_t ldc, const float *a, size_t rs, size_t ks,
     const float *b, size_t ldb, int kn, int mr, int n, float alpha, int add) {
    __m512 acc[MR_MAX][4];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    const int tail = n - (NV - 1) * 16;
    const __mmask16 last = tail >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << tail) - 1);
    /* two calls, so that in the full tile's the offsets are constants
     * the compiler folds into the broadcasts' addresses */
    if (mr == MR) {
        size_t off[MR_MAX];
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) off[i] = (size_t)i * rs;
        tile_k(NV, MR, acc, a, off, ks, b, ldb, kn, last);
    } else {
        size_t off[MR_MAX];
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) off[i] = (size_t)(i < mr ? i : mr - 1) * rs;
        tile_k(NV, MR, acc, a, off, ks, b, ldb, kn, last);
    }
    const __m512 va = _mm512_set1_ps(alpha);
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if (i >= mr) break;
        float *ci = c + (size_t)i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            const __mmask16 m = v == NV - 1 ? last : (__mmask16)0xffff;
            __m512 y = _mm512_mul_ps(acc[i][v], va);
            if (add) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(m, ci + 16 * v));
            _mm512_mask_storeu_ps(ci + 16 * v, m, y);
        }
    }
}

/* tile() for A's rows in place (A(i, k) = a[i lda + k]) or its columns (a
 * transposed A: A(i, k) = a[k lda + i]), n <= 64 columns, mr <= block_rows(n). */
typedef enum { A_ROWS, A_COLS } AForm;

static inline int block_rows(int n) { return tile_rows((n + 15) / 16); }

AVX512 static void tile_any(AForm form, float *c, size_t ldc, const float *a, size_t lda,
                            const float *b, size_t ldb, int kn, int mr, int n, float alpha,
                            int add) {
#define TILE_NV(NV)                                                                              \
    if (form == A_ROWS)                                                                          \
        tile(NV, tile_rows(NV), c, ldc, a, lda, 1, b, ldb, kn, mr, n, alpha, add);               \
    else                                                                                         \
        tile(NV, tile_rows(NV), c, ldc, a, 1, lda, b, ldb, kn, mr, n, alpha, add);
    switch ((n + 15) / 16) {
    case 1: TILE_NV(1) break;
    case 2: TILE_NV(2) break;
    case 3: TILE_NV(3) break;
    default: TILE_NV(4) break;
    }
#undef TILE_NV
}

/* X (T, D, rows stride ld) transposed into column panels: panel p holds
 * xt[p][d][0..PANEL) = X[p PANEL + j][d], the last panel's missing
 * columns zero. 16 x 16 blocks go through registers. */
AVX512 static void transpose_panels(float *xt, const float *x, size_t ld, int T, int D) {
    for (int j0 = 0; j0 < T; j0 += 16) {
        float *xp = xt + (size_t)(j0 / PANEL) * PANEL * D + j0 % PANEL;
        const int rows = T - j0 < 16 ? T - j0 : 16;
        for (int d0 = 0; d0 < D; d0 += 16) {
            const int cols = D - d0 < 16 ? D - d0 : 16;
            const __mmask16 m = cols == 16 ? (__mmask16)0xffff : (__mmask16)((1u << cols) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_maskz_loadu_ps(m, x + (size_t)(j0 + i) * ld + d0)
                                : _mm512_setzero_ps();
            transpose16(r);
            for (int i = 0; i < cols; i++) _mm512_storeu_ps(xp + (size_t)(d0 + i) * PANEL, r[i]);
        }
    }
    const int last = T % PANEL ? (T + 15) / 16 * 16 : T; /* zero the last panel's unused columns */
    for (int j0 = last; j0 % PANEL; j0 += 16)
        for (int d = 0; d < D; d++)
            _mm512_storeu_ps(xt + (size_t)(j0 / PANEL) * PANEL * D + (size_t)d * PANEL + j0 % PANEL,
                             _mm512_setzero_ps());
}

static inline size_t panels_floats(int T, int D) {
    return (size_t)((T + PANEL - 1) / PANEL) * PANEL * D;
}

/* C (mr rows, 0..n_cols) = alpha A (mr, D) X^T for X's panels xt (depth
 * D): a block of query rows against the first n_cols keys. */
AVX512 static void times_panels_t(float *c, size_t ldc, const float *a, size_t lda, const float *xt,
                                  int D, int mr, int n_cols, float alpha) {
    for (int p0 = 0; p0 < n_cols; p0 += PANEL) {
        const int w = n_cols - p0 < PANEL ? n_cols - p0 : PANEL, R = block_rows(w);
        for (int i = 0; i < mr; i += R)
            tile_any(A_ROWS, c + (size_t)i * ldc + p0, ldc, a + (size_t)i * lda, lda,
                     xt + (size_t)p0 * D, PANEL, D, mr - i < R ? mr - i : R, w, alpha, 0);
    }
}

/* Rows m0..m0+mr of C (M, N) (+)= op(A) B, each block of tile rows over
 * the k range the causal mask leaves it: with A_ROWS, A(m, k) = a[m lda +
 * k] is 0 for k > m, so block m.. sums k in [0, m + its rows); with
 * A_COLS, A(m, k) = a[k lda + m] is 0 for k < m, so k in [m, M). */
AVX512 static void causal_rows(AForm form, float *c, size_t ldc, const float *a, size_t lda,
                               const float *b, size_t ldb, int M, int m0, int mr, int N, int add) {
    for (int n0 = 0; n0 < N; n0 += PANEL) {
        const int w = N - n0 < PANEL ? N - n0 : PANEL, R = block_rows(w);
        for (int m = m0; m < m0 + mr; m += R) {
            const int r = m0 + mr - m < R ? m0 + mr - m : R;
            float *cm = c + (size_t)m * ldc + n0;
            if (form == A_ROWS)
                tile_any(A_ROWS, cm, ldc, a + (size_t)m * lda, lda, b + n0, ldb, m + r, r, w, 1.0f,
                         add);
            else
                tile_any(A_COLS, cm, ldc, a + (size_t)m * lda + m, lda, b + (size_t)m * ldb + n0,
                         ldb, M - m, r, w, 1.0f, add);
        }
    }
}

/* Row t's promised zeros past the diagonal (attention.h), as far as T. */
static inline void zero_past_diagonal(float *row, int t, int T) {
    const int end = t + 1 + ATTENTION_P_ZEROS < T ? t + 1 + ATTENTION_P_ZEROS : T;
    memset(row + t + 1, 0, sizeof(float) * (size_t)(end - t - 1));
}

/* Rows t0..t0+MR_MAX of the (T, T) matrix x, their first n columns, asked
 * for a block ahead: the P of a backward was written long ago and is read
 * from memory, a forward's rows are written to lines not in cache, and a
 * row's run of 0.5-1 KB is too short for the hardware prefetcher. */
static void prefetch_rows(const float *x, int T, int t0, int n, int write) {
    if (n > T) n = T;
    for (int t = t0; t < t0 + MR_MAX && t < T; t++)
        for (int j = 0; j < n; j += 16) {
            if (write) __builtin_prefetch(x + (size_t)t * T + j, 1, 3);
            else __builtin_prefetch(x + (size_t)t * T + j, 0, 3);
        }
}

int attention_train_avx512(float *out, int out_stride, float *P, const float *q, int q_stride,
                           const float *k, int k_stride, const float *v, int v_stride, int T,
                           int Dk, int Dv, float scale) {
    if (!gemm_available()) return -1;
    float *kt = gemm_scratch(sizeof(float) * panels_floats(T, Dk));
    if (!kt) return -1;
    transpose_panels(kt, k, (size_t)k_stride, T, Dk);
    const int R = MR_MAX;
    for (int t0 = 0; t0 < T; t0 += R) {
        const int mr = T - t0 < R ? T - t0 : R, seen = t0 + mr;
        float *pb = P + (size_t)t0 * T;
        prefetch_rows(P, T, t0 + R, seen + R, 1);
        times_panels_t(pb, (size_t)T, q + (size_t)t0 * q_stride, (size_t)q_stride, kt, Dk, mr,
                       seen, scale);
        for (int i = 0; i < mr; i++) {
            float *p = pb + (size_t)i * T;
            softmax(p, t0 + i + 1);
            zero_past_diagonal(p, t0 + i, T);
        }
        causal_rows(A_ROWS, out, (size_t)out_stride, P, (size_t)T, v, (size_t)v_stride, T, t0, mr,
                    Dv, 0);
    }
    return 0;
}

int attention_backward_avx512(float *dq, float *dk, float *dv, const float *dout, int out_stride,
                              const float *P, const float *q, int q_stride, const float *k,
                              int k_stride, const float *v, int v_stride, int T, int Dk, int Dv,
                              float scale, float *dp) {
    if (!gemm_available()) return -1;
    float *vt = gemm_scratch(sizeof(float) * panels_floats(T, Dv));
    if (!vt) return -1;
    transpose_panels(vt, v, (size_t)v_stride, T, Dv);
    const int R = MR_MAX;
    /* dP = dO V^T, then dS = P (dP - sum P dP) scale row by row; the
     * entries just past the diagonal are cleared as P's are, for the
     * products below that read them */
    for (int t0 = 0; t0 < T; t0 += R) {
        const int mr = T - t0 < R ? T - t0 : R, seen = t0 + mr;
        float *db = dp + (size_t)t0 * T;
        prefetch_rows(P, T, t0 + R, seen + R, 0);
        times_panels_t(db, (size_t)T, dout + (size_t)t0 * out_stride, (size_t)out_stride, vt, Dv,
                       mr, seen, 1.0f);
        for (int i = 0; i < mr; i++) {
            const int t = t0 + i;
            softmax_backward(db + (size_t)i * T, P + (size_t)t * T, t + 1, scale);
            zero_past_diagonal(db + (size_t)i * T, t, T);
        }
        causal_rows(A_ROWS, dq, (size_t)q_stride, dp, (size_t)T, k, (size_t)k_stride, T, t0, mr, Dk,
                    1);
    }
    /* dK = dS^T Q and dV = P^T dO need whole columns of dS and P */
    causal_rows(A_COLS, dk, (size_t)k_stride, dp, (size_t)T, q, (size_t)q_stride, T, 0, T, Dk, 1);
    causal_rows(A_COLS, dv, (size_t)v_stride, P, (size_t)T, dout, (size_t)out_stride, T, 0, T, Dv,
                1);
    return 0;
}
