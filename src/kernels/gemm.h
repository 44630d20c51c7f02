/* SPDX-License-Identifier: MIT */
/* Blocked single-precision GEMM for many-token products (prefill and
 * training): y (T, N) = x (T, K) W^T, W (N, K) in any storage type of
 * quant.h. Panels of W are unpacked to float32 as they are packed, so
 * BF16 and quantised weights run the same float32 microkernel. AVX-512
 * only; gemm_available() says whether it can run here. */
#ifndef WHALE_GEMM_H
#define WHALE_GEMM_H

#include "kernels/matmul.h"

/* Free the calling thread's packing buffer (a thread that used gemm_nt
 * and is about to exit: the serving engine's worker). */
void gemm_thread_free(void);

/* The calling thread's packing buffer with room for bytes, 64-byte
 * aligned, or NULL: grow-only, freed by gemm_thread_free, and shared by
 * the GEMMs of gemm.c and qgemm.c (none runs inside another). The
 * contents do not outlive the next call. */
void *gemm_scratch(size_t bytes);

/* 1 if this CPU can run gemm_nt and gemm_nt_small (AVX-512 F, BW, VL). */
int gemm_available(void);

/* y (T, n_rows) = x (T, K) W[row0 : row0+n_rows]^T. Threads split the
 * output columns. Returns 0, or -1 when scratch memory cannot be had
 * (y is then untouched and the caller falls back). */
int gemm_nt(float *y, const float *x, const Mat *W, int row0, int n_rows, int T);

/* The same for a few tokens (decoding a batch: 2 to a few dozen), without
 * packing: 4 weight rows meet 4 tokens at a time in registers, so each
 * weight is read once per 4 tokens. Float weights only (F32, and F16/BF16
 * converted in registers as they are loaded); -1 for quantised types
 * (their Q8_0 dot products keep llama.cpp's numerics). */
int gemm_nt_small(float *y, const float *x, const Mat *W, int row0, int n_rows, int T);

/* General float32 GEMM for training: C (M, N) = beta C + op(A) op(B) with
 * op(A)(m, k) = ta ? A[k lda + m] : A[m lda + k] and op(B)(k, n) = tb ?
 * B[n ldb + k] : B[k ldb + n]; beta is 0 (overwrite) or 1 (accumulate, for
 * gradients). The backward passes use its three forms: y = x W^T (0, 1),
 * dx = dy W (0, 0), dW += dy^T x (1, 0). Runs the packed AVX-512 kernel,
 * else (or with sgemm_use_ref set, for tests) a scalar reference that sums
 * in double. Never fails: without packing memory it takes the reference. */
void sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
           float beta, float *C, int ldc);
extern int sgemm_use_ref;

/* Set, sgemm (its CAUSAL_NONE form) and gemm_nt on float32 weights round
 * both operands to bfloat16, nearest even, and sum the products in float32
 * (AVX512-BF16's vdpbf16ps: 1.9x the float32 products' rate on Zen 4);
 * the training's --bf16. Where gemm_bf16_available() is 0 it has no
 * effect. Attention and the small products of a few tokens stay float32. */
extern int gemm_bf16;
int gemm_bf16_available(void);

/* sgemm for causal attention, whose (T, T) matrices are lower triangular
 * up to a diagonal offset (row t sees columns 0 .. t + diag): the tiles
 * and the parts of the sum known to be zero or unused are skipped, about
 * half the FLOPs.
 *   CAUSAL_OUT: only C(m, n) with n <= m + diag is wanted; the rest of C
 *               is left unspecified (the scores Q K^T, dP = dO V^T).
 *   CAUSAL_A:   op(A)(m, k) is 0 for k > m + diag (P V, dS K).
 *   CAUSAL_AT:  op(A)(m, k) is 0 for m > k + diag (P^T dO, dS^T Q).
 * The zeros must really be there: the kernel may still read some of them
 * (and the scalar reference all). */
typedef enum { CAUSAL_NONE, CAUSAL_OUT, CAUSAL_A, CAUSAL_AT } Causal;
void sgemm_causal(Causal causal, int diag, int ta, int tb, int M, int N, int K, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
