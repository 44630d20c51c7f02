/* SPDX-License-Identifier: MIT */
/* GEMM throughput of whale's matmul on float32 weights: y (T, N) = x (T, K)
 * W^T for a few shapes, best of 5 after a warm-up, checked against the
 * per-row dot path first. Prints one JSON object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "kernels/matmul.h"

int main(void) {
    const int shapes[][3] = {{128, 2048, 2048}, {256, 2048, 2048}, {512, 4096, 1024}};
    printf("{");
    for (int s = 0; s < 3; s++) {
        const int T = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *x = malloc(4L * T * K), *w = malloc(4L * N * K);
        float *y = malloc(4L * T * N), *y0 = malloc(4L * T * N);
        for (long i = 0; i < (long)T * K; i++) x[i] = (float)((i * 7) % 11 - 5) * 0.1f;
        for (long i = 0; i < (long)N * K; i++) w[i] = (float)((i * 5) % 13 - 6) * 0.01f;
        Mat m = mat_f32(w, N, K);
        matmul_use_gemm = 0;
        matmul(y0, x, &m, T);
        matmul_use_gemm = 1;
        matmul(y, x, &m, T);
        for (long i = 0; i < (long)T * N; i++)
            if (fabsf(y[i] - y0[i]) > 1e-3f * (1 + fabsf(y0[i]))) {
                fprintf(stderr, "gemm: mismatch at %ld: %g vs %g\n", i, y[i], y0[i]);
                return 1;
            }
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t0 = time_now();
            matmul(y, x, &m, T);
            double dt = time_now() - t0;
            if (dt < best) best = dt;
        }
        printf("%s\"gemm_%dx%dx%d_gflop_s\": %.1f", s ? ", " : "", T, N, K,
               2.0 * T * N * K / best / 1e9);
        free(x), free(w), free(y), free(y0);
    }
    printf("}\n");
    return 0;
}
