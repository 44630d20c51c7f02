/* SPDX-License-Identifier: MIT */
/* Thread count and id through OpenMP, with single-thread fallbacks so the
 * code also builds without it. Kernels split work with `omp parallel for`;
 * per-thread scratch is indexed by thread_id(). */
#ifndef WHALE_THREADS_H
#define WHALE_THREADS_H

#ifdef _OPENMP
#include <omp.h>
static inline int threads_max(void) { return omp_get_max_threads(); }
static inline int thread_id(void) { return omp_get_thread_num(); }
/* Threads in the current team (1 outside a parallel region). */
static inline int threads_in_team(void) { return omp_get_num_threads(); }
static inline void threads_set(int n) {
    if (n > 0) omp_set_num_threads(n);
}
/* Inside a parallel region (a nested one would get one thread). */
static inline int threads_in_parallel(void) { return omp_in_parallel(); }
#else
static inline int threads_max(void) { return 1; }
static inline int thread_id(void) { return 0; }
static inline int threads_in_team(void) { return 1; }
static inline void threads_set(int n) { (void)n; }
static inline int threads_in_parallel(void) { return 0; }
#endif

/* fn(ctx, lo, hi) over [0, n) in runs of `chunk`, each run on whichever of
 * up to threads_max() threads comes free; the threads are POSIX ones,
 * created and joined within the call. For work on a thread that later
 * hands the model to another (the server loads on its main thread and
 * decodes on a worker): an OpenMP region there would leave a team behind
 * beside the worker's, more threads than cores, and libgomp then puts
 * idle threads to sleep at once (a futex wake per product after that). */
void threads_chunks(long n, long chunk, void (*fn)(void *ctx, long lo, long hi), void *ctx);

/* A note for every `omp parallel` site: an `if (cond)` clause that is false
 * still enters libgomp, and libgomp ends every region, a one-thread one
 * too, with a futex system call (~1.2 us here). Ops that are called per
 * row or per head (norms, small GEMMs inside head loops) paid that tens of
 * thousands of times per training step, so they branch around the
 * construct instead: `if (par) { omp parallel for ... } else { for ... }`. */

#endif
