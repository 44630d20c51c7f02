/* SPDX-License-Identifier: MIT */
/* Memory read bandwidth, shared by bench/probe.c and bench/decode_share.c:
 * every OpenMP thread sums its static share of buf (n floats, 64-byte
 * aligned, n a multiple of 64) with AVX-512 loads into four accumulators;
 * the best GB/s of reps passes. */
#ifndef WHALE_BENCH_READ_BW_H
#define WHALE_BENCH_READ_BW_H

#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static inline double read_bw_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

__attribute__((target("avx512f"))) static double read_bw(const float *buf, size_t n, int reps) {
    double best = 0;
    for (int rep = 0; rep < reps; rep++) {
        double t0 = read_bw_now(), total = 0;
#pragma omp parallel reduction(+ : total)
        {
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
#pragma omp for schedule(static)
            for (size_t i = 0; i < n; i += 64) {
                a0 = _mm512_add_ps(a0, _mm512_load_ps(buf + i));
                a1 = _mm512_add_ps(a1, _mm512_load_ps(buf + i + 16));
                a2 = _mm512_add_ps(a2, _mm512_load_ps(buf + i + 32));
                a3 = _mm512_add_ps(a3, _mm512_load_ps(buf + i + 48));
            }
            total += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        }
        double gbs = (double)n * 4 / (read_bw_now() - t0) / 1e9;
        if (total == 12345.0) fputc(' ', stderr); /* keep the sum alive */
        if (gbs > best) best = gbs;
    }
    return best;
}

#endif
