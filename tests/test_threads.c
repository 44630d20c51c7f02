/* SPDX-License-Identifier: MIT */
/* threads_chunks: every index visited exactly once, in runs of the chunk
 * size, on any thread count, for empty and odd-sized ranges. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>

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
