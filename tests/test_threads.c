/* SPDX-License-Identifier: MIT */
/* threads_chunks: every index visited exactly once, in runs of the chunk
 * size, on any thread count, for empty and odd-sized ranges; the
 * speed-weighted shares of threads_share_*. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/threads.h"

typedef struct Visits {
    atomic_int *seen;
    long chunk, n;
    atomic_int bad_run;
} Visits;

static void visit(void *ctx, long lo, long hi) {
    Visits *v = ctx;
    /* a run starts on a chunk boundary and is a whole chunk but the last */
    if (lo % v->chunk || hi <= lo || (hi - lo != v->chunk && hi != v->n))
        atomic_store(&v->bad_run, 1);
    for (long i = lo; i < hi; i++) atomic_fetch_add(&v->seen[i], 1);
}

Test(threads, chunks_cover_every_index_once) {
    const long ns[] = {0, 1, 5, 16, 1000, 4097};
    const long chunks[] = {1, 7, 16, 5000};
    const int counts[] = {1, 2, 3, 8};
    const int before = threads_max();
    for (int ti = 0; ti < 4; ti++) {
        threads_set(counts[ti]);
        for (int ni = 0; ni < 6; ni++)
            for (int ci = 0; ci < 4; ci++) {
                const long n = ns[ni];
                Visits v = {calloc((size_t)n + 1, sizeof(atomic_int)), chunks[ci], n, 0};
                cr_assert(v.seen);
                threads_chunks(n, chunks[ci], visit, &v);
                for (long i = 0; i < n; i++)
                    cr_assert_eq(atomic_load(&v.seen[i]), 1, "n %ld chunk %ld threads %d: index %ld",
                                 n, chunks[ci], counts[ti], i);
                cr_assert_eq(atomic_load(&v.bad_run), 0, "n %ld chunk %ld: a run off its chunk", n,
                             chunks[ci]);
                free(v.seen);
            }
    }
    threads_set(before);
}

/* threads_share_range: for any weights the runs of threads 0..nt-1 tile
 * [0, n) in order, and equal shares (a zeroed ThreadShares, or one learnt
 * for another team size) split like a static schedule. */
Test(threads, shares_tile_the_items_in_order) {
    unsigned seed = 7;
    for (int nt = 1; nt <= 9; nt++)
        for (int trial = 0; trial < 20; trial++) {
            ThreadShares s = {0};
            if (trial) {
                s.n_threads = nt;
                for (int i = 0; i < nt; i++) {
                    seed = seed * 1103515245u + 12345u;
                    s.weight[i] = 0.25f + (float)(seed >> 16 & 1023) / 256.0f;
                }
            }
            const int ns[] = {0, 1, 2, 7, 100, 9496};
            for (int ni = 0; ni < 6; ni++) {
                int expect = 0;
                for (int id = 0; id < nt; id++) {
                    int lo, hi;
                    threads_share_range(&s, ns[ni], id, nt, &lo, &hi);
                    cr_assert_eq(lo, expect, "n %d, %d threads, trial %d: thread %d starts at %d, "
                                 "not %d", ns[ni], nt, trial, id, lo, expect);
                    cr_assert(hi >= lo, "thread %d: [%d, %d)", id, lo, hi);
                    if (!trial) cr_assert_eq(hi, (int)((long)ns[ni] * (id + 1) / nt));
                    expect = hi;
                }
                cr_assert_eq(expect, ns[ni], "n %d, %d threads: the runs end at %d", ns[ni], nt,
                             expect);
            }
        }
}

/* threads_share_learn: shares move to the measured speeds (a thread twice
 * as fast ends up with twice the items), stay within 4x of each other
 * however lopsided the rates, ignore runs where a thread did nothing or
 * a rate is not finite, and start over when the team size changes. */
Test(threads, shares_follow_measured_speeds) {
    ThreadShares s = {0};
    const double two_to_one[2] = {2.0e6, 1.0e6};
    for (int i = 0; i < 100; i++) threads_share_learn(&s, two_to_one, 2);
    int lo, hi;
    threads_share_range(&s, 3000, 0, 2, &lo, &hi);
    cr_assert(hi >= 1990 && hi <= 2010, "2:1 speeds gave thread 0 %d of 3000 items", hi);
    const double idle[2] = {0.0, 1.0e6}, nan[2] = {NAN, 1.0e6}, inf[2] = {1.0e6, INFINITY};
    const ThreadShares before = s;
    threads_share_learn(&s, idle, 2);
    threads_share_learn(&s, nan, 2);
    threads_share_learn(&s, inf, 2);
    cr_assert_eq(memcmp(&s, &before, sizeof s), 0, "an idle thread's run moved the shares");
    const double lopsided[3] = {1.0e9, 1.0, 1.0e3};
    for (int i = 0; i < 200; i++) threads_share_learn(&s, lopsided, 3);
    cr_assert_eq(s.n_threads, 3);
    float lo_w = s.weight[0], hi_w = s.weight[0];
    for (int i = 1; i < 3; i++) {
        if (s.weight[i] < lo_w) lo_w = s.weight[i];
        if (s.weight[i] > hi_w) hi_w = s.weight[i];
    }
    cr_assert(hi_w <= 4.0f * lo_w * 1.0001f, "weights %g .. %g", lo_w, hi_w);
    cr_assert(s.weight[0] > s.weight[2] && s.weight[2] >= s.weight[1]);
}

/* threads_run_*: on 1-4 threads, with learnt shares or none, every item
 * runs exactly once; what a thread runs of its own run is a prefix of it
 * (others take from the back); and when one of two threads is held up
 * (thread 1 spins 20 us an item) the other takes over the end of its run. */
static void spin_us(double us) {
    const double until = time_now() + us * 1e-6;
    while (time_now() < until) {
    }
}

Test(threads, runs_give_every_item_once_and_take_from_the_slow) {
    const int before = threads_max(), ns[] = {0, 1, 2, 7, 100, 2000};
    for (int nt = 1; nt <= 4; nt++) {
        threads_set(nt);
        for (int ni = 0; ni < 6; ni++)
            for (int slow = 0; slow < 2; slow++) {
                const int n = ns[ni];
                int *by = malloc(sizeof(int) * ((size_t)n + 1));
                atomic_int *count = calloc((size_t)n + 1, sizeof(atomic_int));
                cr_assert(by && count);
                ThreadRun run;
                threads_run_begin(&run, n);
                int team = 1;
                atomic_int bad_chunk = 0;
#pragma omp parallel
                {
                    int lo, hi;
                    const int id = thread_id();
                    if (id == 0) team = threads_in_team();
                    while (threads_run_next(&run, &lo, &hi)) {
                        if (lo < 0 || lo >= hi || hi > n) {
                            atomic_store(&bad_chunk, 1);
                            break;
                        }
                        for (int i = lo; i < hi; i++) {
                            by[i] = id;
                            atomic_fetch_add(&count[i], 1);
                            if (slow && id == 1) spin_us(20);
                        }
                    }
                    threads_run_done(&run);
                }
                cr_assert(!atomic_load(&bad_chunk), "n %d: a chunk outside [0, n)", n);
                /* each owner's items: a prefix of its run (the run as it
                 * was split: the shares move only in threads_run_end) */
                for (int id = 0; id < team; id++) {
                    int lo, hi, others_seen = 0;
                    threads_share_range(run.shares, n, id, team, &lo, &hi);
                    for (int i = lo; i < hi; i++) {
                        if (by[i] != id) others_seen = 1;
                        else cr_assert(!others_seen, "n %d, %d threads: thread %d ran item %d "
                                       "after another thread took an earlier one of its run",
                                       n, team, id, i);
                    }
                }
                if (slow && team == 2 && n >= 2000) {
                    /* thread 1's run takes it ~20 ms: unless thread 0 is
                     * off its core all that time, it takes some of it */
                    int lo, hi, taken = 0;
                    threads_share_range(run.shares, n, 1, 2, &lo, &hi);
                    for (int i = lo; i < hi; i++) taken += by[i] != 1;
                    cr_assert(taken > 0, "thread 0 took none of the %d items of thread 1, which "
                              "spent 20 us on each", hi - lo);
                }
                threads_run_end(&run);
                for (int i = 0; i < n; i++)
                    cr_assert_eq(atomic_load(&count[i]), 1, "n %d, %d threads: item %d ran %d times",
                                 n, team, i, atomic_load(&count[i]));
                free(by), free(count);
            }
    }
    threads_set(before);
}
