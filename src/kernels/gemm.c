/* SPDX-License-Identifier: MIT */
/* GEMM with packed panels and a 12x32 register tile (see gemm.h), the
 * classic Goto/BLIS layout: for each KC-deep slice, the activations are
 * packed into MR-row strips, each NR-column panel of W into a KC x NR block
 * (converted to float32 on the way), and the microkernel keeps a 12 x 32 tile
 * of y in 24 zmm registers: per k, two loads of W, twelve broadcasts of x,
 * twenty-four FMAs. */
#include "kernels/gemm.h"

#include <assert.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "base/threads.h"
#include "kernels/transpose_avx512.h"

#define MR 12
#define NR 32
#define KC 256
/* rows ahead that the copy of a non-transposed B panel asks for: its
 * rows lie ldb apart, 128 bytes of each wanted */
#define PACK_AHEAD 8

int gemm_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

/* The lane masks of a row of nr <= NR floats split into two vectors. */
static inline void row_masks(int nr, __mmask16 *m0, __mmask16 *m1) {
    *m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    *m1 = nr <= 16 ? 0 : nr >= 32 ? 0xffff : (__mmask16)((1u << (nr - 16)) - 1);
}

/* Accumulators cleared, and C's tile asked for: it is read (or written)
 * only after the k loop, so its lines arrive while the products run (the
 * tile is one of ~170 a panel visits, long evicted from L1 since the slice
 * before). */
AVX512 static inline __attribute__((always_inline)) void
tile_start(__m512 c[MR][2], const float *y, int ldy, int mr) {
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        __builtin_prefetch(y + (size_t)i * ldy, 1, 3);
        __builtin_prefetch(y + (size_t)i * ldy + 16, 1, 3);
        __builtin_prefetch(y + (size_t)i * ldy + NR - 1, 1, 3);
    }
}

/* y tile = (first ? acc : y + acc) for the valid mr x nr part of acc. */
AVX512 static inline __attribute__((always_inline)) void
tile_store(__m512 c[MR][2], float *y, int ldy, int mr, int nr, int first) {
    __mmask16 m0, m1;
    row_masks(nr, &m0, &m1);
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

/* acc (MR x NR) = sum_k A(i, k) b[k][0..NR), A(i, k) = a[i * rs + k * ks];
 * then y tile = (first ? acc : y + acc) for the valid mr x nr part. Each
 * caller below fixes one stride or both, so each compiles to its own loop:
 * a packed strip (rs 1, ks MR), or a full strip of A read where it lies
 * (see direct_a). */
AVX512 static inline __attribute__((always_inline)) void
micro_tile(const float *a, size_t rs, size_t ks, const float *b, int kc, float *y, int ldy, int mr,
           int nr, int first) {
    __m512 c[MR][2];
    tile_start(c, y, ldy, mr);
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(b + k * NR), b1 = _mm512_loadu_ps(b + k * NR + 16);
        /* row i at base[i / 4] + (i % 4) rs: three bases and two strides
         * (rs, 3 rs) address all twelve rows, where a[i * rs] spilt the
         * twelve offsets out of the general registers */
        const float *ak = a + (size_t)k * ks;
        const float *const base[3] = {ak, ak + 4 * rs, ak + 8 * rs};
#define A_ROW(i) (base[(i) / 4] + ((i) % 4) * rs)
        /* twelve rows in place are twelve short streams (a kc-float run
         * each), too short for the hardware prefetcher to learn: ask for
         * each row's line after next, and halfway through, for the start
         * of the next strip's rows (the strip a panel visits next) */
        if (rs != 1 && (k & 15) == 0) {
#pragma GCC unroll 12
            for (int i = 0; i < MR; i++) __builtin_prefetch(A_ROW(i) + 32, 0, 3);
        }
        if (rs != 1 && k == kc / 2) {
#pragma GCC unroll 12
            for (int i = 0; i < MR; i++) {
                __builtin_prefetch(a + (MR + i) * rs, 0, 3);
                __builtin_prefetch(a + (MR + i) * rs + 16, 0, 3);
            }
        }
        /* fully unrolled so the 24 accumulators live in registers */
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(*A_ROW(i));
            c[i][0] = _mm512_fmadd_ps(ai, b0, c[i][0]);
            c[i][1] = _mm512_fmadd_ps(ai, b1, c[i][1]);
        }
    }
#undef A_ROW
    tile_store(c, y, ldy, mr, nr, first);
}

/* A packed strip a[k][0..MR). */
AVX512 static void micro_12x32(const float *a, const float *b, int kc, float *y, int ldy, int mr,
                               int nr, int first) {
    micro_tile(a, 1, MR, b, kc, y, ldy, mr, nr, first);
}

/* Twelve rows of A in place: A(i, k) = a[i * lda + k]. */
AVX512 static void micro_rows(const float *a, size_t lda, const float *b, int kc, float *y, int ldy,
                              int nr, int first) {
    micro_tile(a, lda, 1, b, kc, y, ldy, MR, nr, first);
}

/* Twelve columns of a transposed A in place: A(i, k) = a[k * lda + i]. */
AVX512 static void micro_cols(const float *a, size_t lda, const float *b, int kc, float *y, int ldy,
                              int nr, int first) {
    micro_tile(a, 1, lda, b, kc, y, ldy, MR, nr, first);
}

/* Pack strips s0..s1-1 of A (strip s: rows m0 = s MR .. of the M, as
 * ap[s - s0][k][i], zero padding to MR), columns k0..k0+kc; A(m, k) = A[m * lda
 * + k], or A[k * lda + m] when trans. Row-major: a full strip goes 16
 * columns at a time through a register transpose (twelve row loads, 64
 * shuffles, twelve-lane stores) instead of one scalar load per element
 * from twelve rows. Transposed: k outermost, so each row of A is read once
 * and in order for all the strips, not once per strip 48 bytes at a time
 * (the dW = dy^T x products: the packing had been 10% of a training step). */
AVX512 static void pack_a(float *ap, const float *A, int lda, int trans, int M, int s0, int s1,
                          int k0, int kc) {
    if (trans) {
        /* 16 rows of A (in L1) at a time, each strip's 16 x MR contiguous */
        for (int kb = 0; kb < kc; kb += 16) {
            const int ke = kc - kb < 16 ? kc : kb + 16;
            for (int s = s0; s < s1; s++) {
                const int m0 = s * MR, mr = M - m0 < MR ? M - m0 : MR;
                const __mmask16 m = (__mmask16)((1u << mr) - 1);
                float *as = ap + (size_t)(s - s0) * MR * KC;
                for (int k = kb; k < ke; k++)
                    _mm512_mask_storeu_ps(as + (size_t)k * MR, 0x0fff,
                                          _mm512_maskz_loadu_ps(m, A + (size_t)(k0 + k) * lda + m0));
            }
        }
        return;
    }
    for (int s = s0; s < s1; s++) {
        const int m0 = s * MR, mr = M - m0 < MR ? M - m0 : MR;
        float *as = ap + (size_t)(s - s0) * MR * KC;
        const float *rows = A + (size_t)m0 * lda + k0;
        int k = 0;
        if (mr == MR)
            for (; k + 16 <= kc; k += 16) {
                __m512 r[16];
                _Pragma("GCC unroll 12") for (int i = 0; i < MR; i++)
                    r[i] = _mm512_loadu_ps(rows + (size_t)i * lda + k);
                _Pragma("GCC unroll 4") for (int i = MR; i < 16; i++) r[i] = _mm512_setzero_ps();
                transpose16(r);
                _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++)
                    _mm512_mask_storeu_ps(as + (size_t)(k + j) * MR, 0x0fff, r[j]);
            }
        for (; k < kc; k++) {
            for (int i = 0; i < mr; i++) as[k * MR + i] = rows[(size_t)i * lda + k];
            for (int i = mr; i < MR; i++) as[k * MR + i] = 0.0f;
        }
    }
}

/* This thread's share of the strips of a pack: contiguous, so a transposed
 * A is still read row by row. Inside a team only. */
static void team_strips(int n, int *s0, int *s1) {
    const int nth = threads_in_team(), tid = thread_id();
    *s0 = (int)((long)n * tid / nth);
    *s1 = (int)((long)n * (tid + 1) / nth);
}

/* Pack columns n0..n0+nr of B, rows k0..k0+kc, as bp[k][j], zero padding;
 * B(k, n) = B[k * ldb + n], or B[n * ldb + k] when trans. Transposed, each
 * of B's rows holds one column of the panel: sixteen rows go 16 k at a
 * time through the register transpose (the score products Q K^T of
 * attention, whose packing had been one strided scalar load per element). */
AVX512 static void pack_b_f32(float *bp, const float *B, int ldb, int trans, int n0, int nr, int k0,
                              int kc) {
    if (!trans) {
        /* a panel row is two vectors: masked loads copy it and clear the
         * padding (a memcpy call per 128-byte row had been 4% of a
         * training step) */
        __mmask16 m0, m1;
        row_masks(nr, &m0, &m1);
        for (int k = 0; k < kc; k++) {
            const float *src = B + (size_t)(k0 + k) * ldb + n0;
            if (k + PACK_AHEAD < kc) {
                __builtin_prefetch(src + (size_t)PACK_AHEAD * ldb, 0, 3);
                __builtin_prefetch(src + (size_t)PACK_AHEAD * ldb + 16, 0, 3);
            }
            _mm512_storeu_ps(bp + (size_t)k * NR, _mm512_maskz_loadu_ps(m0, src));
            _mm512_storeu_ps(bp + (size_t)k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
        }
        return;
    }
    for (int j0 = 0; j0 < NR; j0 += 16) {
        const int rows = nr - j0 < 0 ? 0 : nr - j0 > 16 ? 16 : nr - j0;
        for (int kb = 0; kb < kc; kb += 16) {
            const int kn = kc - kb < 16 ? kc - kb : 16;
            const __mmask16 m = (__mmask16)((1u << kn) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_maskz_loadu_ps(m, B + (size_t)(n0 + j0 + i) * ldb + k0 + kb)
                                : _mm512_setzero_ps();
            transpose16(r);
            for (int k = 0; k < kn; k++) _mm512_storeu_ps(bp + (size_t)(kb + k) * NR + j0, r[k]);
        }
    }
}

/* Pack rows n0..n0+nr of W, columns k0..k0+kc, as bp[k][j] float32, zero
 * padding to NR columns. W's rows are B's columns, a transposed B, which
 * pack_b_f32 takes in 16 x 16 blocks; other types are dequantised first,
 * row j into rows + j * KC (scratch of NR x KC floats). A block cannot be
 * started mid-way: k0 is a multiple of KC, itself a multiple of every
 * block size. (A scalar transposing loop here was a quarter of a float
 * product's time: 131 -> 171 GFLOP/s on one thread, 256x2048x2048.) */
static void pack_b(float *bp, const Mat *W, int n0, int nr, int k0, int kc, float *rows) {
    const int K = W->cols;
    if (W->type == QTYPE_F32) {
        pack_b_f32(bp, (const float *)W->data, K, 1, n0, nr, k0, kc);
        return;
    }
    const int blk = qtype_block(W->type);
    assert(k0 % blk == 0);
    int len = (kc + blk - 1) / blk * blk;
    if (k0 + len > K) len = K - k0;
    for (int j = 0; j < nr; j++)
        dequantize_row(W->type, (const char *)mat_row(W, n0 + j) + qtype_row_bytes(W->type, k0),
                       rows + (size_t)j * KC, len);
    pack_b_f32(bp, rows, KC, 1, 0, nr, 0, kc);
}

/* Grow-only packing buffers of the calling thread (the model's worker), so
 * the steady state allocates nothing. */
static _Thread_local float *pack_buf;
static _Thread_local size_t pack_cap;

/* The packing buffer with room for need floats, or NULL. */
static float *pack_get(size_t need) {
    if (need > pack_cap) {
        float *p = aligned_alloc(64, ((need * sizeof(float)) + 63) & ~(size_t)63);
        if (!p) return NULL;
        free(pack_buf);
        pack_buf = p;
        pack_cap = need;
    }
    return pack_buf;
}

void *gemm_scratch(size_t bytes) { return pack_get((bytes + sizeof(float) - 1) / sizeof(float)); }

void gemm_thread_free(void) {
    free(pack_buf);
    pack_buf = NULL;
    pack_cap = 0;
}

/* The parallel products below pack the strips of A for one KC slice
 * (each thread its share), wait at a barrier, then share out the panels.
 * With the strips of successive slices in two buffers, and a panel on the
 * same thread in every slice (a static schedule assigns a loop's
 * iterations alike each time), no thread needs to wait at the end of the
 * panels: a thread packing the next slice overwrites the buffer of the
 * slice before, which the barrier it has just passed shows every thread
 * done with; a panel's C columns are accumulated by one thread in slice
 * order. That halves the synchronisations (each a futex sleep and wake
 * under OMP_WAIT_POLICY=PASSIVE). Where the panels do not share out
 * evenly, the dynamic schedule and its closing barrier stay. */
static int panels_static(int n_panels) {
    const int nth = threads_in_team();
    return n_panels % nth == 0 || n_panels >= 8 * nth;
}

/* Whether a product reads A's full strips where they lie instead of
 * packing them: packing copies all of A once so that every panel streams
 * it contiguously; with few panels there is little streaming to speed up
 * and the copy dominates (attention's P V, dS K, dS^T Q and P^T dO have
 * one or two panels, a training step's weight gradients eight). The
 * micro-kernel does the same FMAs in the same order either way, so the
 * results are the same bits. Measured on the train bench (2 threads):
 * +5-12% tokens/s reading in place up to 16 panels, about the same with no
 * limit; a 256x2048x2048 product (64 panels, rows 8 KB apart) loses 14%
 * in place. */
#define DIRECT_MAX_PANELS 16
static int direct_a(int n_panels) { return n_panels <= DIRECT_MAX_PANELS; }

/* One gemm_nt call's operands and buffers. */
typedef struct GemmNt {
    float *y;
    const float *x;
    const Mat *W;
    int row0, n_rows, T, K;
    int direct;          /* full strips of x read in place, not packed */
    float *bp;           /* per-thread panels of W */
    size_t per_thread;
} GemmNt;

/* Panel p (NR rows of W, NR columns of y) against every strip, on thread
 * slot tid's buffer (the panel, its rows dequantised, a last partial strip). */
static void gemm_nt_panel(const GemmNt *g, const float *ap, int p, int k0, int kc, int tid) {
    float *b = g->bp + (size_t)tid * g->per_thread;
    const int n0 = p * NR, nr = g->n_rows - n0 < NR ? g->n_rows - n0 : NR;
    const int n_strips = (g->T + MR - 1) / MR;
    pack_b(b, g->W, g->row0 + n0, nr, k0, kc, b + NR * KC);
    for (int s = 0; s < n_strips; s++) {
        const int t0 = s * MR, mr = g->T - t0 < MR ? g->T - t0 : MR;
        float *y = g->y + (size_t)t0 * g->n_rows + n0;
        if (!g->direct) {
            micro_12x32(ap + (size_t)s * MR * KC, b, kc, y, g->n_rows, mr, nr, k0 == 0);
        } else if (mr == MR) {
            micro_rows(g->x + (size_t)t0 * g->K + k0, g->K, b, kc, y, g->n_rows, nr, k0 == 0);
        } else { /* a few rows, packed on this thread: no barrier waits for it */
            float *a = b + g->per_thread - (size_t)MR * KC;
            pack_a(a, g->x, g->K, 0, g->T, s, s + 1, k0, kc);
            micro_12x32(a, b, kc, y, g->n_rows, mr, nr, k0 == 0);
        }
    }
}

static int sgemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);

int gemm_nt(float *y, const float *x, const Mat *W, int row0, int n_rows, int T) {
    if (gemm_bf16 && W->type == QTYPE_F32 &&
        sgemm_bf16(0, 1, T, n_rows, W->cols, x, W->cols,
                   (const float *)W->data + (size_t)row0 * W->cols, W->cols, 0.0f, y, n_rows) == 0)
        return 0;
    const int K = W->cols, n_strips = (T + MR - 1) / MR, n_panels = (n_rows + NR - 1) / NR;
    const int nt = threads_max(), direct = direct_a(n_panels);
    /* per thread: a KC x NR panel, NR dequantised rows of it and a strip */
    const size_t per_thread = (size_t)(2 * NR + MR) * KC;
    const size_t a_floats = direct ? 0 : (size_t)n_strips * MR * KC;
    float *ap = pack_get(2 * a_floats + (size_t)nt * per_thread); /* strips: two slices */
    if (!ap) return -1;
    const GemmNt g = {y, x, W, row0, n_rows, T, K, direct, ap + 2 * a_floats, per_thread};
    if (!threads_in_parallel()) {
        /* one region for the whole product, the strips' packing shared out
         * too (see panels_static); read in place, there is none to wait for */
#pragma omp parallel
        {
            const int stat = panels_static(n_panels);
            for (int k0 = 0; k0 < K; k0 += KC) {
                const int kc = K - k0 < KC ? K - k0 : KC;
                float *apk = ap + (size_t)((k0 / KC) & 1) * a_floats;
                if (!direct) {
                    int s0, s1;
                    team_strips(n_strips, &s0, &s1);
                    pack_a(apk + (size_t)s0 * MR * KC, x, K, 0, T, s0, s1, k0, kc);
#pragma omp barrier
                }
                if (stat) {
#pragma omp for schedule(static) nowait
                    for (int p = 0; p < n_panels; p++) gemm_nt_panel(&g, apk, p, k0, kc, thread_id());
                } else {
#pragma omp for schedule(dynamic, 1)
                    for (int p = 0; p < n_panels; p++) gemm_nt_panel(&g, apk, p, k0, kc, thread_id());
                }
            }
        }
    } else {
        for (int k0 = 0; k0 < K; k0 += KC) {
            const int kc = K - k0 < KC ? K - k0 : KC;
            if (!direct) pack_a(ap, x, K, 0, T, 0, n_strips, k0, kc);
            for (int p = 0; p < n_panels; p++) gemm_nt_panel(&g, ap, p, k0, kc, 0);
        }
    }
    return 0;
}

/* ---- few tokens: no packing ------------------------------------------------------ */

/* 16 weights at column k of a row as floats: F32 as they are, F16 through
 * vcvtph2ps, BF16 by shifting its 16 bits into the top of a float (exact);
 * the _m forms mask the columns past the end. */
#define LOAD_F32(w, k) _mm512_loadu_ps((const float *)(w) + (k))
#define LOAD_F32_M(w, k, m) _mm512_maskz_loadu_ps(m, (const float *)(w) + (k))
#define LOAD_F16(w, k) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const short *)(w) + (k))))
#define LOAD_F16_M(w, k, m) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const short *)(w) + (k)))
#define BF16_TO_F32(h) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
#define LOAD_BF16(w, k) BF16_TO_F32(_mm256_loadu_si256((const __m256i *)((const short *)(w) + (k))))
#define LOAD_BF16_M(w, k, m) BF16_TO_F32(_mm256_maskz_loadu_epi16(m, (const short *)(w) + (k)))

/* acc[i][j] = w_i . x_j for 4 weight rows and 4 token rows of K floats
 * (rows past the valid ones point at valid rows; their sums are dropped).
 * Per 16 columns: 8 loads, 16 FMAs into 16 zmm accumulators. One copy per
 * weight type, so the loads carry no branch. */
#define DEFINE_SMALL_4X4(NAME, LOAD, LOAD_M)                                                       \
    AVX512 static void NAME(const void *const w[4], const float *const x[4], int K,               \
                            float out[4][4]) {                                                     \
        __m512 acc[4][4];                                                                          \
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)                                        \
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_ps();   \
        int k = 0;                                                                                 \
        for (; k + 16 <= K; k += 16) {                                                             \
            __m512 wv[4], xv[4];                                                                   \
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {                                  \
                wv[i] = LOAD(w[i], k);                                                             \
                xv[i] = _mm512_loadu_ps(x[i] + k);                                                 \
            }                                                                                      \
            _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)                                    \
                _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++)                                \
                    acc[i][j] = _mm512_fmadd_ps(wv[i], xv[j], acc[i][j]);                          \
        }                                                                                          \
        if (k < K) {                                                                               \
            const __mmask16 m = (__mmask16)((1u << (K - k)) - 1);                                  \
            __m512 wv[4], xv[4];                                                                   \
            for (int i = 0; i < 4; i++) {                                                          \
                wv[i] = LOAD_M(w[i], k, m);                                                        \
                xv[i] = _mm512_maskz_loadu_ps(m, x[i] + k);                                        \
            }                                                                                      \
            for (int i = 0; i < 4; i++)                                                            \
                for (int j = 0; j < 4; j++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv[j], acc[i][j]);  \
        }                                                                                          \
        for (int i = 0; i < 4; i++)                                                                \
            for (int j = 0; j < 4; j++) out[i][j] = _mm512_reduce_add_ps(acc[i][j]);               \
    }
DEFINE_SMALL_4X4(small_4x4_f32, LOAD_F32, LOAD_F32_M)
DEFINE_SMALL_4X4(small_4x4_f16, LOAD_F16, LOAD_F16_M)
DEFINE_SMALL_4X4(small_4x4_bf16, LOAD_BF16, LOAD_BF16_M)

typedef void (*Small4x4)(const void *const w[4], const float *const x[4], int K, float out[4][4]);

/* Rows 4b .. 4b+3 of W (row0 on) against all T tokens. */
static void small_block(Small4x4 kern, float *y, const float *x, const Mat *W, int row0,
                        int n_rows, int T, int b) {
    const int K = W->cols, n0 = b * 4, nr = n_rows - n0 < 4 ? n_rows - n0 : 4;
    const void *w[4];
    for (int i = 0; i < 4; i++) w[i] = mat_row(W, row0 + n0 + (i < nr ? i : 0));
    for (int t0 = 0; t0 < T; t0 += 4) {
        const int tr = T - t0 < 4 ? T - t0 : 4;
        const float *xs[4];
        for (int j = 0; j < 4; j++) xs[j] = x + (size_t)(t0 + (j < tr ? j : 0)) * K;
        float acc[4][4];
        kern(w, xs, K, acc);
        for (int j = 0; j < tr; j++)
            for (int i = 0; i < nr; i++) y[(size_t)(t0 + j) * n_rows + n0 + i] = acc[i][j];
    }
}

int gemm_nt_small(float *y, const float *x, const Mat *W, int row0, int n_rows, int T) {
    const Small4x4 kern = W->type == QTYPE_F32    ? small_4x4_f32
                          : W->type == QTYPE_F16  ? small_4x4_f16
                          : W->type == QTYPE_BF16 ? small_4x4_bf16
                                                  : NULL;
    if (!kern) return -1; /* quantised: the Q8_0 dot products */
    const int K = W->cols, n_blocks = (n_rows + 3) / 4;
    /* a parallel region costs microseconds, and even a one-thread one a
     * system call (threads.h): small products stay out of OpenMP */
    if ((long)n_rows * K * T >= 1L << 17 && !threads_in_parallel()) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < n_blocks; b++) small_block(kern, y, x, W, row0, n_rows, T, b);
    } else {
        for (int b = 0; b < n_blocks; b++) small_block(kern, y, x, W, row0, n_rows, T, b);
    }
    return 0;
}

/* Whether an sgemm product opens a parallel region: a region costs
 * microseconds, and even a one-thread one a system call (threads.h), so
 * only with panels to share and work to pay for it, never inside another. */
static int worth_a_region(int n_panels, int M, int N, int K) {
    return n_panels > 1 && (double)M * N * K >= 1 << 18 && !threads_in_parallel();
}

/* C (M, N) = beta C + op(A) op(B), scalar: the reference for sgemm. */
static void sgemm_ref(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                      int ldb, float beta, float *C, int ldc) {
#pragma omp parallel for schedule(static) if ((long)M * N * K > 65536)
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
                float b = tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                acc += (double)a * b;
            }
            float *c = C + (size_t)m * ldc + n;
            *c = (float)acc + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}

int sgemm_use_ref;

/* One sgemm call's operands and packing buffers. */
typedef struct SgemmSlice {
    int ta, tb, M, N, K;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    float *C;
    int ldc;
    float beta;
    Causal causal;
    int diag;
    int direct;          /* full strips of A read in place, not packed */
    float *bp;           /* per-thread panels of B */
    size_t per_thread;
} SgemmSlice;

/* The k range [*lo, *hi) that strip s (rows m0..m0+mr) needs: all of K,
 * or the part where its rows of op(A) may be nonzero. */
static void strip_k_range(const SgemmSlice *g, int m0, int mr, int *lo, int *hi) {
    *lo = 0, *hi = g->K;
    if (g->causal == CAUSAL_A && m0 + mr + g->diag < *hi) *hi = m0 + mr + g->diag;
    if (g->causal == CAUSAL_AT && m0 - g->diag > 0) *lo = m0 - g->diag;
    if (*hi < *lo) *hi = *lo;
}

/* The strips [*s0, *s1) with something to do in slice k0..k0+kc. */
static void slice_strips(const SgemmSlice *g, int k0, int kc, int *s0, int *s1) {
    const int n_strips = (g->M + MR - 1) / MR;
    *s0 = n_strips, *s1 = 0;
    for (int s = 0; s < n_strips; s++) {
        int lo, hi;
        const int m0 = s * MR;
        strip_k_range(g, m0, g->M - m0 < MR ? g->M - m0 : MR, &lo, &hi);
        if (lo < k0 + kc && hi > k0) {
            if (s < *s0) *s0 = s;
            *s1 = s + 1;
        }
    }
    if (*s1 < *s0) *s0 = *s1 = 0;
}

/* Panel p (NR columns of B and C) against every strip that needs slice
 * k0..k0+kc, on thread slot tid's buffer (the panel, then a last partial
 * strip of a direct product). The first slice overwrites C unless beta
 * is 1. */
static void sgemm_panel(const SgemmSlice *g, const float *ap, int p, int k0, int kc, int tid) {
    float *b = g->bp + (size_t)tid * g->per_thread;
    const int n0 = p * NR, nr = g->N - n0 < NR ? g->N - n0 : NR;
    const int n_strips = (g->M + MR - 1) / MR;
    int packed = 0;
    for (int s = 0; s < n_strips; s++) {
        const int m0 = s * MR, mr = g->M - m0 < MR ? g->M - m0 : MR;
        if (g->causal == CAUSAL_OUT && n0 > m0 + mr - 1 + g->diag) continue; /* above the diagonal */
        int lo, hi;
        strip_k_range(g, m0, mr, &lo, &hi);
        if (lo < k0) lo = k0;
        if (hi > k0 + kc) hi = k0 + kc;
        if (lo >= hi) continue;
        if (!packed) pack_b_f32(b, g->B, g->ldb, g->tb, n0, nr, k0, kc), packed = 1;
        float *c = g->C + (size_t)m0 * g->ldc + n0;
        const float *bk = b + (size_t)(lo - k0) * NR;
        const int first = g->beta == 0.0f && lo == 0;
        if (g->direct && mr == MR && g->ta) {
            micro_cols(g->A + (size_t)lo * g->lda + m0, g->lda, bk, hi - lo, c, g->ldc, nr, first);
            continue;
        }
        if (g->direct && mr == MR) {
            micro_rows(g->A + (size_t)m0 * g->lda + lo, g->lda, bk, hi - lo, c, g->ldc, nr, first);
            continue;
        }
        const float *a = ap + (size_t)s * MR * KC;
        if (g->direct) { /* the last few rows, packed here at the end of this thread's
                          * slot (as gemm_nt_panel does): no barrier waits for them */
            float *strip = b + g->per_thread - (size_t)MR * KC;
            pack_a(strip, g->A, g->lda, g->ta, g->M, s, s + 1, k0, kc);
            a = strip;
        }
        micro_12x32(a + (size_t)(lo - k0) * MR, bk, hi - lo, c, g->ldc, mr, nr, first);
    }
}

void sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
           float beta, float *C, int ldc) {
    sgemm_causal(CAUSAL_NONE, 0, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void sgemm_causal(Causal causal, int diag, int ta, int tb, int M, int N, int K, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    assert(beta == 0.0f || beta == 1.0f);
    if (M <= 0 || N <= 0) return;
    /* a strip whose k range misses the first slice, or is empty, still
     * owes C its values: with op(A) triangular, C is cleared first and
     * accumulated into */
    if (beta == 0.0f && (K <= 0 || causal == CAUSAL_A || causal == CAUSAL_AT)) {
        for (int m = 0; m < M; m++) memset(C + (size_t)m * ldc, 0, (size_t)N * sizeof(float));
        beta = 1.0f;
    }
    if (K <= 0) return;
    if (gemm_bf16 && causal == CAUSAL_NONE && !sgemm_use_ref &&
        sgemm_bf16(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
    const int n_strips = (M + MR - 1) / MR, n_panels = (N + NR - 1) / NR;
    const int direct = direct_a(n_panels);
    /* per thread: a panel of B and a strip of A */
    const size_t a_floats = direct ? 0 : (size_t)n_strips * MR * KC;
    const size_t per_thread = (size_t)(NR + MR) * KC;
    float *ap = NULL;
    if (!sgemm_use_ref && gemm_available()) /* strips: two slices (see panels_static) */
        ap = pack_get(2 * a_floats + (size_t)threads_max() * per_thread);
    if (!ap) {
        sgemm_ref(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const SgemmSlice g = {ta,   tb,     M,    N,      K,  A, lda, B, ldb, C, ldc,
                          beta, causal, diag, direct, ap + 2 * a_floats, per_thread};
    const int big = worth_a_region(n_panels, M, N, K);
    if (big) {
        /* one region (see panels_static) */
#pragma omp parallel
        {
            const int stat = panels_static(n_panels);
            for (int k0 = 0; k0 < K; k0 += KC) {
                const int kc = K - k0 < KC ? K - k0 : KC;
                float *apk = ap + (size_t)((k0 / KC) & 1) * a_floats;
                if (!direct) { /* read in place, there is nothing to wait for */
                    int s0, s1, t0, t1;
                    slice_strips(&g, k0, kc, &s0, &s1);
                    team_strips(s1 - s0, &t0, &t1);
                    pack_a(apk + (size_t)(s0 + t0) * MR * KC, A, lda, ta, M, s0 + t0, s0 + t1,
                           k0, kc);
#pragma omp barrier
                }
                if (stat) {
#pragma omp for schedule(static) nowait
                    for (int p = 0; p < n_panels; p++) sgemm_panel(&g, apk, p, k0, kc, thread_id());
                } else {
#pragma omp for schedule(dynamic, 1)
                    for (int p = 0; p < n_panels; p++) sgemm_panel(&g, apk, p, k0, kc, thread_id());
                }
            }
        }
    } else {
        for (int k0 = 0; k0 < K; k0 += KC) {
            const int kc = K - k0 < KC ? K - k0 : KC;
            int s0, s1;
            slice_strips(&g, k0, kc, &s0, &s1);
            if (!direct) pack_a(ap + (size_t)s0 * MR * KC, A, lda, ta, M, s0, s1, k0, kc);
            for (int p = 0; p < n_panels; p++) sgemm_panel(&g, ap, p, k0, kc, 0);
        }
    }
}

/* ---- bfloat16 operands ---------------------------------------------------------- */

/* With gemm_bf16 set, sgemm (CAUSAL_NONE) and gemm_nt on float32 weights
 * round both operands to bfloat16 (nearest even) and multiply them with
 * vdpbf16ps, which sums a pair of products per lane into float32: twice
 * the products of an FMA per instruction (on Zen 4 a probe reads 334
 * against 117 GFLOP/s per core, a GEMM tile of it 215-220). The packed layouts hold k in pairs: a strip as pairs[k/2][MR]
 * and a panel as pairs[k/2][NR], each 32-bit pair (row k low, row k+1
 * high), a last odd k paired with 0. Operands are rounded as they are
 * packed; every product packs its A. */

int gemm_bf16;

#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

int gemm_bf16_available(void) {
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = gemm_available() && __builtin_cpu_supports("avx512bf16");
    }
    return have;
}

/* 16 lanes of row k and of row k+1 as 16 rounded pairs. */
BF16 static inline __m512i bf16_pairs(__m512 r0, __m512 r1) {
    /* lane j of the result: 16-bit elements j (row k) and 16 + j (row k+1) */
    static const unsigned short order[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                             21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                             11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(order),
                                    (__m512i)_mm512_cvtne2ps_pbh(r1, r0));
}

/* kn floats of a row (up to 32 read, the rest taken as 0) as 16 rounded
 * pairs (k, k+1) in order: a 32-bit lane holds bfloat16 elements 2p and
 * 2p + 1, just as the conversion lays them out. */
BF16 static inline __m512 row_pairs(const float *x, int kn) {
    __mmask16 m0, m1;
    row_masks(kn, &m0, &m1);
    return (__m512)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + 16),
                                       _mm512_maskz_loadu_ps(m0, x));
}

/* rows (<= 16) rows ld apart, kn floats of each from x on (up to 32 read),
 * as pairs turned columns: r[j] lane i is row i's pair j. Returns how many
 * of r hold pairs, (kn + 1) / 2 up to 16. */
BF16 static inline int pairs_transposed(const float *x, size_t ld, int rows, int kn, __m512 r[16]) {
    for (int i = 0; i < 16; i++) r[i] = i < rows ? row_pairs(x + i * ld, kn) : _mm512_setzero_ps();
    transpose16(r);
    return (kn + 1) / 2 < 16 ? (kn + 1) / 2 : 16;
}

/* Strips s0..s1-1 of op(A) (as pack_a), columns k0..k0+kc, as pairs, strip
 * s at ap + (s - s0) MR KC / 2. Row-major, a strip's rows become pairs in
 * place and go 16 pairs at a time through the register transpose;
 * transposed, two rows of A at a time feed every strip in turn (each row
 * read once and in order, as in pack_a). */
BF16 static void pack_a_pairs(unsigned *ap, const float *A, int lda, int trans, int M, int s0,
                              int s1, int k0, int kc) {
    if (trans) {
        for (int k = 0; k < kc; k += 2) {
            const float *r = A + (size_t)(k0 + k) * lda;
            for (int s = s0; s < s1; s++) {
                const int m0 = s * MR, mr = M - m0 < MR ? M - m0 : MR;
                const __mmask16 m = (__mmask16)((1u << mr) - 1);
                const __m512 r0 = _mm512_maskz_loadu_ps(m, r + m0);
                const __m512 r1 = k + 1 < kc ? _mm512_maskz_loadu_ps(m, r + lda + m0)
                                             : _mm512_setzero_ps();
                _mm512_mask_storeu_epi32(ap + (size_t)(s - s0) * MR * (KC / 2) + (size_t)k / 2 * MR,
                                         0x0fff, bf16_pairs(r0, r1));
            }
        }
        return;
    }
    for (int s = s0; s < s1; s++) {
        const int m0 = s * MR, mr = M - m0 < MR ? M - m0 : MR;
        unsigned *as = ap + (size_t)(s - s0) * MR * (KC / 2);
        for (int kb = 0; kb < kc; kb += 32) {
            __m512 r[16];
            const int np = pairs_transposed(A + (size_t)m0 * lda + k0 + kb, lda, mr, kc - kb, r);
            for (int j = 0; j < np; j++)
                _mm512_mask_storeu_epi32(as + (size_t)(kb / 2 + j) * MR, 0x0fff,
                                         _mm512_castps_si512(r[j]));
        }
    }
}

/* Columns n0..n0+nr of op(B) (as pack_b_f32), rows k0..k0+kc, as
 * pairs[kc / 2][NR], zero padding: transposed (W's rows), each of B's rows
 * becomes pairs in place and 16 of them go through the register transpose;
 * else two rows of B make a panel row of pairs. */
BF16 static void pack_b_pairs(unsigned *bp, const float *B, int ldb, int trans, int n0, int nr,
                              int k0, int kc) {
    if (!trans) {
        __mmask16 m0, m1;
        row_masks(nr, &m0, &m1);
        for (int k = 0; k < kc; k += 2) {
            const float *r = B + (size_t)(k0 + k) * ldb + n0;
            const int two = k + 1 < kc;
            if (k + PACK_AHEAD < kc) {
                __builtin_prefetch(r + (size_t)PACK_AHEAD * ldb, 0, 3);
                __builtin_prefetch(r + (size_t)(PACK_AHEAD + 1) * ldb, 0, 3);
            }
            const __m512 z = _mm512_setzero_ps();
            _mm512_storeu_si512(bp + (size_t)k / 2 * NR,
                                bf16_pairs(_mm512_maskz_loadu_ps(m0, r),
                                           two ? _mm512_maskz_loadu_ps(m0, r + ldb) : z));
            _mm512_storeu_si512(bp + (size_t)k / 2 * NR + 16,
                                bf16_pairs(_mm512_maskz_loadu_ps(m1, r + 16),
                                           two ? _mm512_maskz_loadu_ps(m1, r + ldb + 16) : z));
        }
        return;
    }
    for (int j0 = 0; j0 < NR; j0 += 16) {
        const int rows = nr - j0 < 0 ? 0 : nr - j0 > 16 ? 16 : nr - j0;
        for (int kb = 0; kb < kc; kb += 32) {
            __m512 r[16];
            const int np =
                pairs_transposed(B + (size_t)(n0 + j0) * ldb + k0 + kb, ldb, rows, kc - kb, r);
            for (int j = 0; j < np; j++)
                _mm512_storeu_si512(bp + (size_t)(kb / 2 + j) * NR + j0, _mm512_castps_si512(r[j]));
        }
    }
}

/* The tile of micro_12x32 over kp pairs of k: per pair two loads of the
 * panel, twelve broadcasts of a strip's pairs, twenty-four vdpbf16ps. */
BF16 static void micro_bf16(const unsigned *a, const unsigned *b, int kp, float *y, int ldy, int mr,
                            int nr, int first) {
    __m512 c[MR][2];
    tile_start(c, y, ldy, mr);
    for (int k = 0; k < kp; k++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + (size_t)k * NR);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + (size_t)k * NR + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[(size_t)k * MR + i]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], ai, b0);
            c[i][1] = _mm512_dpbf16_ps(c[i][1], ai, b1);
        }
    }
    tile_store(c, y, ldy, mr, nr, first);
}

/* One bfloat16 product's operands and buffers: C = beta C + op(A) op(B). */
typedef struct Bf16Gemm {
    int ta, tb, M, N, K;
    const float *A;
    int lda;
    const float *B;
    int ldb;
    float beta;
    float *C;
    int ldc;
    unsigned *ap; /* the strips of one slice, paired */
    unsigned *bp; /* per thread: a panel, paired */
} Bf16Gemm;

#define PANEL_PAIRS ((size_t)NR * (KC / 2))

/* Panel p of slice k0..k0+kc against every strip, on thread slot tid. */
static void bf16_panel(const Bf16Gemm *g, int p, int k0, int kc, int tid) {
    unsigned *bq = g->bp + (size_t)tid * PANEL_PAIRS;
    const int n0 = p * NR, nr = g->N - n0 < NR ? g->N - n0 : NR;
    const int n_strips = (g->M + MR - 1) / MR, first = g->beta == 0.0f && k0 == 0;
    pack_b_pairs(bq, g->B, g->ldb, g->tb, n0, nr, k0, kc);
    for (int s = 0; s < n_strips; s++) {
        const int m0 = s * MR, mr = g->M - m0 < MR ? g->M - m0 : MR;
        micro_bf16(g->ap + (size_t)s * MR * (KC / 2), bq, (kc + 1) / 2,
                   g->C + (size_t)m0 * g->ldc + n0, g->ldc, mr, nr, first);
    }
}

/* sgemm's bfloat16 form; -1 where the CPU lacks AVX512-BF16 or packing
 * memory cannot be had (the caller then runs the float32 product). */
static int sgemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
    const int n_strips = (M + MR - 1) / MR, n_panels = (N + NR - 1) / NR;
    const size_t a_pairs = (size_t)n_strips * MR * (KC / 2);
    if (!gemm_bf16_available()) return -1;
    unsigned *buf = (unsigned *)pack_get(a_pairs + (size_t)threads_max() * PANEL_PAIRS);
    if (!buf) return -1;
    const Bf16Gemm g = {ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, buf, buf + a_pairs};
    if (worth_a_region(n_panels, M, N, K)) {
#pragma omp parallel
        for (int k0 = 0; k0 < K; k0 += KC) {
            const int kc = K - k0 < KC ? K - k0 : KC;
            int s0, s1;
            team_strips(n_strips, &s0, &s1);
            pack_a_pairs(g.ap + (size_t)s0 * MR * (KC / 2), A, lda, ta, M, s0, s1, k0, kc);
#pragma omp barrier
#pragma omp for schedule(dynamic, 1)
            for (int p = 0; p < n_panels; p++) bf16_panel(&g, p, k0, kc, thread_id());
        }
    } else {
        for (int k0 = 0; k0 < K; k0 += KC) {
            const int kc = K - k0 < KC ? K - k0 : KC;
            pack_a_pairs(g.ap, A, lda, ta, M, 0, n_strips, k0, kc);
            for (int p = 0; p < n_panels; p++) bf16_panel(&g, p, k0, kc, 0);
        }
    }
    return 0;
}
