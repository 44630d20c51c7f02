/* SPDX-License-Identifier: MIT */
/* Scalar + OpenMP linear layers (see matmul.h). Dot products use eight
 * independent partial sums, which lets the compiler vectorise without
 * -ffast-math and keeps the rounding error well under the 1e-4 logit
 * tolerance of the reference tests. */
#include "kernels/matmul.h"

#include <assert.h>

static inline float dot_f32(const float *a, const float *b, int n) {
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

void matmul_rows(float *y, const float *x, const Mat *W, int row0, int n_rows, int T) {
    assert(W->type == DTYPE_F32);
    assert(row0 >= 0 && row0 + n_rows <= W->rows);
    const int K = W->cols;
    const float *w = (const float *)W->data + (size_t)row0 * K;
    /* Parallel over output rows of W: each weight row is read once per
     * thread and reused for all T tokens while it sits in cache. */
#pragma omp parallel for schedule(static) if ((long)n_rows * K * T > 32768)
    for (int n = 0; n < n_rows; n++) {
        const float *wn = w + (size_t)n * K;
        for (int t = 0; t < T; t++) y[(size_t)t * n_rows + n] = dot_f32(x + (size_t)t * K, wn, K);
    }
}

void matmul(float *y, const float *x, const Mat *W, int T) { matmul_rows(y, x, W, 0, W->rows, T); }

void matmul_t(float *y, const float *x, const Mat *W, int row0, int n_rows, int T) {
    assert(W->type == DTYPE_F32);
    assert(row0 >= 0 && row0 + n_rows <= W->rows);
    const int K = W->cols;
    const float *w = (const float *)W->data + (size_t)row0 * K;
#pragma omp parallel for schedule(static) if ((long)n_rows * K * T > 32768)
    for (int t = 0; t < T; t++) {
        float *yt = y + (size_t)t * K;
        const float *xt = x + (size_t)t * n_rows;
        for (int k = 0; k < K; k++) yt[k] = 0.0f;
        for (int n = 0; n < n_rows; n++) {
            const float a = xt[n], *wn = w + (size_t)n * K;
            for (int k = 0; k < K; k++) yt[k] += a * wn[k];
        }
    }
}
