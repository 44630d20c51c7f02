/* SPDX-License-Identifier: MIT */
/* threads_chunks: plain POSIX threads, created and joined per call (see
 * threads.h for why not OpenMP there); threads_share_*: a split of equal
 * items by the threads' measured speeds. */
#include "base/threads.h"

#include "base/log.h"

#include <math.h>
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

static int shares_for(const ThreadShares *s, int nt) {
    return nt >= 1 && nt <= THREADS_SHARE_MAX && s->n_threads == nt;
}

void threads_share_range(const ThreadShares *s, int n, int id, int nt, int *lo, int *hi) {
    if (!shares_for(s, nt)) {
        *lo = (int)((long)n * id / nt);
        *hi = (int)((long)n * (id + 1) / nt);
        return;
    }
    double total = 0, below = 0;
    for (int i = 0; i < nt; i++) {
        total += s->weight[i];
        if (i < id) below += s->weight[i];
    }
    /* the same rounding for a thread's end and the next one's start */
    *lo = (int)(n * (below / total) + 0.5);
    *hi = id == nt - 1 ? n : (int)(n * ((below + s->weight[id]) / total) + 0.5);
}

void threads_share_learn(ThreadShares *s, const double *rate, int nt) {
    if (nt < 1 || nt > THREADS_SHARE_MAX) return;
    double sum = 0;
    for (int i = 0; i < nt; i++) {
        /* NaN, and infinity (a run timed at zero), would poison every
         * later split */
        if (!(rate[i] > 0 && rate[i] < HUGE_VAL)) return;
        sum += rate[i];
    }
    if (s->n_threads != nt) {
        s->n_threads = nt;
        for (int i = 0; i < nt; i++) s->weight[i] = 1.0f;
    }
    double mean = 0;
    for (int i = 0; i < nt; i++) {
        double w = 0.9 * s->weight[i] + 0.1 * nt * rate[i] / sum;
        s->weight[i] = (float)(w < 0.5 ? 0.5 : w > 2.0 ? 2.0 : w);
        mean += s->weight[i];
    }
    mean /= nt;
    for (int i = 0; i < nt; i++) s->weight[i] = (float)(s->weight[i] / mean);
}

/* The shares of the team this thread leads. */
static _Thread_local ThreadShares my_shares;

void threads_run_begin(ThreadRun *run) {
    run->shares = &my_shares;
    run->team = 1;
    run->start = time_now();
}

void threads_run_range(ThreadRun *run, int n, int *lo, int *hi) {
    const int id = thread_id(), nt = threads_in_team();
    if (id == 0) run->team = nt;
    threads_share_range(run->shares, n, id, nt, lo, hi);
}

void threads_run_done(ThreadRun *run, int lo, int hi) {
    const int id = thread_id();
    if (id < THREADS_SHARE_MAX) run->rate[id] = (hi - lo) / (time_now() - run->start);
}

void threads_run_end(ThreadRun *run) { threads_share_learn(run->shares, run->rate, run->team); }
