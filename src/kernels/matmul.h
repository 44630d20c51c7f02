/* SPDX-License-Identifier: MIT */
/* Linear layers: y = x W^T with W stored row-major (N, K) as in PyTorch and
 * the Hugging Face checkpoints. The scalar loop is the reference; threads
 * split the output columns. */
#ifndef WHALE_MATMUL_H
#define WHALE_MATMUL_H

#include "base/dtype.h"

/* A weight matrix: rows = output features N, cols = input features K. The
 * type tag lets quantised and half-precision storage plug in beside F32. */
typedef struct Mat {
    const void *data; /* (rows, cols) of type */
    DType type;
    int rows, cols;
} Mat;

static inline Mat mat_f32(const float *w, int rows, int cols) {
    Mat m = {w, DTYPE_F32, rows, cols};
    return m;
}

/* y (T, N) = x (T, K) W^T, K = W->cols, N = W->rows. y must not alias x. */
void matmul(float *y, const float *x, const Mat *W, int T);

/* The same on a row range of W: y (T, n_rows) = x W[row0 : row0+n_rows]^T.
 * MLA uses it to take one head's slice of kv_b_proj. */
void matmul_rows(float *y, const float *x, const Mat *W, int row0, int n_rows, int T);

/* y (T, K) = x (T, N) W: the transposed product, for the absorbed MLA output
 * (latent <- head output) and, later, backward passes. */
void matmul_t(float *y, const float *x, const Mat *W, int row0, int n_rows, int T);

#endif
