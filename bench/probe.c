/* SPDX-License-Identifier: MIT */
/* The machine's limits, for the roofline columns of bench/RESULTS.md:
 * memory read bandwidth (every thread sums its share of a 2 GiB buffer with
 * AVX-512 loads; best of 5; the buffer on transparent huge pages where the
 * kernel grants them on request, as whale's weights are: on a Zen 4 VM one
 * thread read 32 GB/s against 29 on 4 KiB pages) and float32 FMA peak
 * (independent FMA chains in registers, every thread; best of 5). Prints
 * one JSON object. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "read_bw.h"

/* Twelve independent accumulators, named so they stay in registers (an
 * array indexed in loops can be kept in memory): enough FMAs in flight to
 * cover the latency on two pipes. */
__attribute__((target("avx512f,fma"))) static double fma_peak(void) {
    double best = 0;
    const long iters = 20000000;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = read_bw_now(), sink = 0;
#pragma omp parallel reduction(+ : sink)
        {
            const __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
            __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2);
            __m512 a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5);
            __m512 a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7), a8 = _mm512_set1_ps(8);
            __m512 a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
            for (long i = 0; i < iters; i++) {
                a0 = _mm512_fmadd_ps(a0, b, c), a1 = _mm512_fmadd_ps(a1, b, c);
                a2 = _mm512_fmadd_ps(a2, b, c), a3 = _mm512_fmadd_ps(a3, b, c);
                a4 = _mm512_fmadd_ps(a4, b, c), a5 = _mm512_fmadd_ps(a5, b, c);
                a6 = _mm512_fmadd_ps(a6, b, c), a7 = _mm512_fmadd_ps(a7, b, c);
                a8 = _mm512_fmadd_ps(a8, b, c), a9 = _mm512_fmadd_ps(a9, b, c);
                a10 = _mm512_fmadd_ps(a10, b, c), a11 = _mm512_fmadd_ps(a11, b, c);
            }
            __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                     _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
            s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
            sink += _mm512_reduce_add_ps(s);
        }
        double flops = 2.0 * 16 * 12 * iters * omp_get_max_threads();
        double g = flops / (read_bw_now() - t0) / 1e9;
        if (sink == 1.0) printf(" ");
        if (g > best) best = g;
    }
    return best;
}

int main(void) {
    size_t n = (size_t)512 << 20; /* 2 GiB of floats */
    float *buf = aligned_alloc((size_t)2 << 20, n * 4);
    if (!buf) return 1;
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, n * 4, MADV_HUGEPAGE);
#endif
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) buf[i] = 1.0f;
    printf("{\"threads\": %d, \"read_gb_s\": %.1f, \"fma_peak_gflop_s\": %.1f}\n",
           omp_get_max_threads(), read_bw(buf, n, 5), fma_peak());
    free(buf);
    return 0;
}
