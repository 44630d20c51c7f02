/* SPDX-License-Identifier: MIT */
/* Linear layers: y = x W^T with W stored row-major (N, K) as in PyTorch and
 * the Hugging Face checkpoints, in any storage type of quant.h. Threads
 * split the output rows; each row's dot product runs the best SIMD level
 * (dot.h). Quantised weights meet the activations quantised to Q8_0. */
#ifndef WHALE_MATMUL_H
#define WHALE_MATMUL_H

#include <assert.h>

#include "kernels/quant.h"

/* A weight matrix: rows = output features N, cols = input features K. */
typedef struct Mat {
    const void *data; /* (rows, cols) in type; rows are qtype_row_bytes apart */
    QType type;
    int rows, cols;
    /* 1: data holds the rows repacked into 16-row panels for the integer
     * kernels (qgemm.h, Q8_0, Q4_0, Q4_K and Q6_K, at the same size); rows are then not
     * addressable one by one: mat_dequantize_row reads one back. */
    int panels;
} Mat;

/* A matrix in the row layout. */
static inline Mat mat_of(const void *data, QType type, int rows, int cols) {
    Mat m = {.data = data, .type = type, .rows = rows, .cols = cols};
    return m;
}

static inline Mat mat_f32(const float *w, int rows, int cols) {
    return mat_of(w, QTYPE_F32, rows, cols);
}

/* Row r of W as bytes (not for panels). */
static inline const void *mat_row(const Mat *W, int r) {
    assert(!W->panels);
    return (const char *)W->data + (size_t)r * qtype_row_bytes(W->type, W->cols);
}

/* Row r of W as floats, in either layout. */
void mat_dequantize_row(const Mat *W, int r, float *out);

/* 1 (default): products over 4 or more tokens use the packed GEMM
 * (gemm.h) where the CPU has AVX-512; 0: always the per-row dot kernels.
 * Tests compare the two. */
extern int matmul_use_gemm;

/* Free the calling thread's matmul and GEMM scratch, and its OpenMP
 * team's: for a thread that ran
 * the model and is about to exit (the serving engine's worker), whose
 * thread-local buffers would otherwise leak. */
void matmul_thread_free(void);

/* y (T, N) = x (T, K) W^T, K = W->cols, N = W->rows. y must not alias x. */
void matmul(float *y, const float *x, const Mat *W, int T);

/* n products of the same x: y[i] (T, W[i]->rows) = x W[i]^T, each W[i]
 * with K columns. Where the integer GEMM takes them all (one type and
 * layout, n <= 32), in one pass (qgemm_nt_multi); else one matmul each.
 * Either way the same numbers as matmul on each. */
void matmul_same_x(float *const *y, const float *x, const Mat *const *W, int n, int T);

/* n products each of its own input: y[i] (T, W[i]->rows) = x[i] W[i]^T,
 * K = W[i]->cols free; in one pass (qgemm_nt_each) where the integer GEMM
 * takes them all, else one matmul each; the same numbers either way. */
void matmul_each(float *const *y, const float *const *x, const Mat *const *W, int n, int T);

/* The same on a row range of W: y (T, n_rows) = x W[row0 : row0+n_rows]^T.
 * MLA uses it to take one head's slice of kv_b_proj. */
void matmul_rows(float *y, const float *x, const Mat *W, int row0, int n_rows, int T);

/* y (T, K) = x (T, n_rows) W[row0 : row0+n_rows]: the transposed product,
 * for the absorbed MLA query (latent <- head) and, later, backward passes. */
void matmul_t(float *y, const float *x, const Mat *W, int row0, int n_rows, int T);

/* Backward of matmul for F32 W (N, K), over T rows: dW (N, K) += dy^T x and,
 * when dx is not NULL, dx (T, K) += dy W. dy (T, N), x (T, K). */
void matmul_backward(float *dx, float *dW, const float *dy, const float *x, const Mat *W, int T);

#endif
