/* SPDX-License-Identifier: MIT */
/* GEMM throughput of whale's matmul: y (T, N) = x (T, K) W^T for a few
 * shapes, best of 5 after a warm-up, each checked against the per-row dot
 * path first. Float32 weights (the packed float GEMM), then Q8_0 and Q4_0
 * weights at the R1-Distill-Qwen-1.5B MLP shapes: matmul (the int8 GEMM
 * where the CPU has VNNI; the timer includes quantising the activations)
 * against the float GEMM on the same weights (gemm_nt, which converts
 * them to float as it packs). Prints one JSON object. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"

/* Best of 5 seconds of one product after a warm-up: matmul, or gemm_nt when f32gemm. */
static double best_time(float *y, const float *x, const Mat *m, int T, int f32gemm) {
    double best = 1e9;
    for (int r = 0; r < 6; r++) {
        double t0 = time_now();
        if (f32gemm) gemm_nt(y, x, m, 0, m->rows, T);
        else matmul(y, x, m, T);
        double dt = time_now() - t0;
        if (r > 0 && dt < best) best = dt;
    }
    return best;
}

/* y against y0 (the dot path) within rel * (1 + |y0|); 0 or 1 with a message. */
static int check(const char *what, const float *y, const float *y0, long n, float rel) {
    for (long i = 0; i < n; i++)
        if (fabsf(y[i] - y0[i]) > rel * (1 + fabsf(y0[i]))) {
            fprintf(stderr, "gemm: %s mismatch at %ld: %g vs %g\n", what, i, y[i], y0[i]);
            return 1;
        }
    return 0;
}

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
        if (check("f32", y, y0, (long)T * N, 1e-3f)) return 1;
        printf("%s\"gemm_%dx%dx%d_gflop_s\": %.1f", s ? ", " : "", T, N, K,
               2.0 * T * N * K / best_time(y, x, &m, T, 0) / 1e9);
        free(x), free(w), free(y), free(y0);
    }
    const int qshapes[][3] = {{128, 8960, 1536}, {128, 1536, 8960}};
    const QType qtypes[] = {QTYPE_Q8_0, QTYPE_Q4_0};
    for (int q = 0; q < 2; q++)
        for (int s = 0; s < 2; s++) {
            const int T = qshapes[s][0], N = qshapes[s][1], K = qshapes[s][2];
            const size_t rb = qtype_row_bytes(qtypes[q], K);
            float *x = malloc(4L * T * K), *w = malloc(4L * K);
            float *y = malloc(4L * T * N), *y0 = malloc(4L * T * N);
            char *wq = malloc(rb * N);
            for (long i = 0; i < (long)T * K; i++) x[i] = (float)((i * 7) % 11 - 5) * 0.1f;
            for (int n = 0; n < N; n++) {
                for (int k = 0; k < K; k++) w[k] = (float)(((long)n * K + k) * 5 % 13 - 6) * 0.01f;
                quantize_row(qtypes[q], w, wq + rb * n, K);
            }
            Mat m = {wq, qtypes[q], N, K};
            matmul_use_gemm = 0;
            matmul(y0, x, &m, T);
            matmul_use_gemm = 1;
            matmul(y, x, &m, T);
            /* the same integer block sums, summed in another float order */
            if (check(qtype_name(qtypes[q]), y, y0, (long)T * N, 1e-4f)) return 1;
            const double ops = 2.0 * T * N * K / 1e9;
            printf(", \"matmul_%s_%dx%dx%d_gop_s\": %.1f", qtype_name(qtypes[q]), T, N, K,
                   ops / best_time(y, x, &m, T, 0));
            if (gemm_available())
                printf(", \"f32gemm_%s_%dx%dx%d_gop_s\": %.1f", qtype_name(qtypes[q]), T, N, K,
                       ops / best_time(y, x, &m, T, 1));
            free(x), free(w), free(y), free(y0), free(wq);
        }
    printf("}\n");
    return 0;
}
