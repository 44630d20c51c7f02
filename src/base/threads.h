/* SPDX-License-Identifier: MIT */
/* Thread count and id through OpenMP, with single-thread fallbacks so the
 * code also builds without it. Kernels split work with `omp parallel for`;
 * per-thread scratch is indexed by thread_id(). */
#ifndef WHALE_THREADS_H
#define WHALE_THREADS_H

#include <stdatomic.h>

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

/* Shares of a run of equal work items (the weight panels of a decoding
 * step's product) among the threads of a team, each in proportion to the
 * speed it showed on earlier runs, so that all finish together. A static
 * split in equal halves assumes equal threads; on a Zen 4 VM one of two
 * threads streamed its half 10-15% slower for minutes at a time (the
 * other then waited ~18 us of every ~135 us product), and hybrid CPUs
 * (performance and efficiency cores) differ by more. Each range stays
 * one contiguous run, as a stored panel's stream wants; the results do
 * not depend on the split. Zero-initialised means equal shares. */
#define THREADS_SHARE_MAX 64
typedef struct ThreadShares {
    int n_threads;                   /* the team size the weights are for */
    float weight[THREADS_SHARE_MAX]; /* relative speeds, mean 1 */
} ThreadShares;

/* [*lo, *hi): thread id's run of the n items when nt threads (<=
 * THREADS_SHARE_MAX) split them by s; the runs of ids 0..nt-1 tile [0, n)
 * in order. A team size other than s's gets equal shares. */
void threads_share_range(const ThreadShares *s, int n, int id, int nt, int *lo, int *hi);

/* Learn from one run: rate[i] is thread i's items per second, counted from
 * the run's start to that thread's finish (so a thread that starts late
 * looks slower too, as it should). Weights move a tenth of the way to the
 * rates' proportions each time, which smooths per-run noise, and stay
 * within 4x of each other. A run where some thread did nothing
 * (rate <= 0), or whose rates are not finite, teaches nothing. */
void threads_share_learn(ThreadShares *s, const double *rate, int nt);

/* One parallel loop over equal items, split by the calling thread's shares
 * (one ThreadShares per thread that leads a team: a server's worker, a
 * test's thread), timed and learnt from:
 *     ThreadRun run;
 *     threads_run_begin(&run, n);
 *     #pragma omp parallel
 *     {
 *         int lo, hi;
 *         while (threads_run_next(&run, &lo, &hi))
 *             for (int i = lo; i < hi; i++) work(i);
 *         threads_run_done(&run);
 *     }
 *     threads_run_end(&run);
 * Each thread takes its own run from the front, in chunks of a quarter of
 * what is left of it; a thread whose run is spent takes half of what is
 * left of the fullest other run, from its back. The shares keep the runs
 * whole when the threads keep their speeds; the taking evens out what
 * the shares cannot foresee: a thread that starts late, or loses its
 * core or memory for a while: on a Zen 4 VM (2 threads) with the shares
 * learnt, the two threads of a 1.5B model's decoding products still
 * finished 6-15% of the product's time apart on average (21-42 us of
 * 245-490 us for gate/up and down), 1-7 us apart with the taking. Every
 * item runs exactly once, on one thread. The region must read run by
 * pointer, not the thread-local shares. */
typedef struct ThreadRunSlot {
    /* items taken from the run's front (low 32 bits) and from its back by
     * other threads (high 32 bits), moved together by compare-and-swap;
     * alone on a cache line, which its owner writes as it goes */
    _Alignas(64) _Atomic unsigned long long taken;
    int done; /* items this thread ran: its own and others' */
} ThreadRunSlot;
typedef struct ThreadRun {
    ThreadShares *shares;
    double start;
    int n, team;
    double rate[THREADS_SHARE_MAX];
    ThreadRunSlot slot[THREADS_SHARE_MAX];
} ThreadRun;
void threads_run_begin(ThreadRun *run, int n);
/* The calling thread's next chunk [*lo, *hi) of items: 1, or 0 when no
 * item is left anywhere. */
int threads_run_next(ThreadRun *run, int *lo, int *hi);
void threads_run_done(ThreadRun *run);
void threads_run_end(ThreadRun *run);

/* A note for every `omp parallel` site: an `if (cond)` clause that is false
 * still enters libgomp, and libgomp ends every region, a one-thread one
 * too, with a futex system call (~1.2 us here). Ops that are called per
 * row or per head (norms, small GEMMs inside head loops) paid that tens of
 * thousands of times per training step, so they branch around the
 * construct instead: `if (par) { omp parallel for ... } else { for ... }`. */

#endif
