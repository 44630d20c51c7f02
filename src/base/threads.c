/* SPDX-License-Identifier: MIT */
/* threads_chunks: plain POSIX threads, created and joined per call (see
 * threads.h for why not OpenMP there). */
#include "base/threads.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct Chunks {
    void (*fn)(void *ctx, long lo, long hi);
    void *ctx;
    long n, chunk;
    atomic_long next;
} Chunks;

static void *run_chunks(void *arg) {
    Chunks *c = arg;
    for (;;) {
        const long lo = atomic_fetch_add(&c->next, c->chunk);
        if (lo >= c->n) return NULL;
        c->fn(c->ctx, lo, lo + c->chunk < c->n ? lo + c->chunk : c->n);
    }
}

#define CHUNK_THREADS 256

void threads_chunks(long n, long chunk, void (*fn)(void *ctx, long lo, long hi), void *ctx) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    Chunks c = {fn, ctx, n, chunk, 0};
    long want = (n + chunk - 1) / chunk;
    int nt = threads_max();
    if (nt > CHUNK_THREADS) nt = CHUNK_THREADS;
    if (want < nt) nt = (int)want;
    pthread_t th[CHUNK_THREADS];
    int started = 0;
    /* a thread that cannot be had leaves its chunks to the others */
    while (started < nt - 1 && pthread_create(&th[started], NULL, run_chunks, &c) == 0) started++;
    run_chunks(&c);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
}
