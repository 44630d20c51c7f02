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

void threads_run_begin(ThreadRun *run, int n) {
    run->shares = &my_shares;
    run->n = n;
    run->team = 1;
    const int nt = threads_max() < THREADS_SHARE_MAX ? threads_max() : THREADS_SHARE_MAX;
    for (int i = 0; i < nt; i++) {
        atomic_init(&run->slot[i].taken, 0);
        run->slot[i].done = 0;
        run->rate[i] = 0;
    }
    run->start = time_now();
}

/* Threads that own a run: all of the team, up to THREADS_SHARE_MAX (any
 * more only take from the others' runs). */
static int run_owners(void) {
    const int nt = threads_in_team();
    return nt < THREADS_SHARE_MAX ? nt : THREADS_SHARE_MAX;
}

/* Items left of run r, spanning [lo, hi); v: its slot's taken word. */
static int run_left(int lo, int hi, unsigned long long v) {
    return hi - lo - (int)(v & 0xffffffffu) - (int)(v >> 32);
}

/* Take a chunk of run r ([lo, hi)): from its front (its owner) a quarter
 * of what is left, from its back (another thread) half; 0 if none left. */
static int run_take(ThreadRunSlot *s, int lo, int hi, int back, int *a, int *b) {
    unsigned long long v = atomic_load_explicit(&s->taken, memory_order_relaxed);
    for (;;) {
        const int left = run_left(lo, hi, v);
        if (left <= 0) return 0;
        const int c = back ? (left + 1) / 2 : (left + 3) / 4;
        const unsigned long long nv = back ? v + ((unsigned long long)c << 32) : v + (unsigned)c;
        /* relaxed: the word only hands out items; the outputs are ordered
         * by the region's closing barrier */
        if (atomic_compare_exchange_weak_explicit(&s->taken, &v, nv, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            const int f = (int)(v & 0xffffffffu), k = (int)(v >> 32);
            *a = back ? hi - k - c : lo + f;
            *b = *a + c;
            return 1;
        }
    }
}

int threads_run_next(ThreadRun *run, int *lo, int *hi) {
    const int id = thread_id(), owners = run_owners();
    if (id == 0) run->team = owners;
    int rlo, rhi;
    if (id < owners) {
        threads_share_range(run->shares, run->n, id, owners, &rlo, &rhi);
        if (run_take(&run->slot[id], rlo, rhi, 0, lo, hi)) goto took;
    }
    for (;;) { /* from the back of the run with the most left */
        int best = -1, most = 0, blo = 0, bhi = 0;
        for (int r = 0; r < owners; r++) {
            if (r == id) continue;
            threads_share_range(run->shares, run->n, r, owners, &rlo, &rhi);
            const int left = run_left(
                rlo, rhi, atomic_load_explicit(&run->slot[r].taken, memory_order_relaxed));
            if (left > most) most = left, best = r, blo = rlo, bhi = rhi;
        }
        if (best < 0) return 0;
        if (run_take(&run->slot[best], blo, bhi, 1, lo, hi)) goto took;
    }
took:
    if (id < owners) run->slot[id].done += *hi - *lo;
    return 1;
}

void threads_run_done(ThreadRun *run) {
    const int id = thread_id();
    if (id < run_owners()) run->rate[id] = run->slot[id].done / (time_now() - run->start);
}

void threads_run_end(ThreadRun *run) { threads_share_learn(run->shares, run->rate, run->team); }
