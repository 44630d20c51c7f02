/* SPDX-License-Identifier: MIT */
/* The job's ranks (see comm.h): the single-process case here, the
 * exchanges handed to the backend (comm_backend.h) when there are others,
 * and the background thread that runs the overlapped sums: a queue of
 * buffers it sums in order while the main thread computes. The backend is
 * called by one thread at a time: the main thread's own calls first wait
 * for the queue to drain. */
#include "train/comm.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/rng.h"
#include "train/comm_backend.h"

static Comm g_world = {0, 1, 0};
static int g_started; /* the backend runs */

/* The background sums: a ring of buffers, summed in order by bg_main. */
#define BG_QUEUE 256
static struct {
    int on;             /* the thread runs */
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    struct { float *buf; size_t n; int id; } q[BG_QUEUE];
    int head, tail;     /* q[head .. tail) wait; tail - head <= BG_QUEUE */
    int busy;           /* one is being summed now */
    int failed;         /* the first failure, kept for comm_sum_wait */
    Err err;
} g_bg = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void *bg_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_bg.mu);
    for (;;) {
        while (g_bg.head == g_bg.tail) pthread_cond_wait(&g_bg.work, &g_bg.mu);
        float *buf = g_bg.q[g_bg.head % BG_QUEUE].buf;
        const size_t n = g_bg.q[g_bg.head % BG_QUEUE].n;
        const int id = g_bg.q[g_bg.head % BG_QUEUE].id;
        g_bg.head++;
        g_bg.busy = 1;
        pthread_mutex_unlock(&g_bg.mu);
        Err e = {0};
        const int rc = comm_backend_sum(id, buf, n, COMM_F32, &e);
        pthread_mutex_lock(&g_bg.mu);
        if (rc != 0 && !g_bg.failed) g_bg.failed = 1, g_bg.err = e;
        g_bg.busy = 0;
        pthread_cond_broadcast(&g_bg.done);
    }
    return NULL;
}

/* The job size a launcher announced in the environment (OpenMPI, then the
 * PMI variables of MPICH and Slurm), or 0 when no launcher started us. */
static int launcher_size(int *rank) {
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (int i = 0; i < 3; i++) {
        const char *s = getenv(size_vars[i]), *r = getenv(rank_vars[i]);
        if (s && *s) {
            *rank = r ? atoi(r) : 0;
            return atoi(s);
        }
    }
    return 0;
}

int comm_world_init(int *argc, char ***argv, Err *err) {
    int rank = 0, size = launcher_size(&rank);
    if (size <= 0) return 0; /* not started by a launcher: one rank, no MPI at all */
    if (!comm_backend_available()) {
        if (size == 1) return 0;
        log_set_rank(rank);
        return err_set(err, "started by mpirun as rank %d of %d, but this whale was built without "
                            "MPI (install libopenmpi-dev, then make clean && make)",
                       rank, size);
    }
    int threads = 0;
    if (comm_backend_start(argc, argv, &g_world.rank, &g_world.size, &threads, err) != 0) return -1;
    g_started = 1;
    pthread_t th;
    if (g_world.size > 1 && threads && pthread_create(&th, NULL, bg_main, NULL) == 0) {
        pthread_detach(th);
        g_bg.on = 1;
    }
    if (g_world.size > 1) log_set_rank(g_world.rank);
    return 0;
}

const Comm *comm_world(void) { return &g_world; }

int comm_world_end(int rc) {
    if (rc == 0 && comm_sum_wait(&g_world, NULL) != 0) rc = 1;
    if (g_started) comm_backend_stop(rc != 0 && g_world.size > 1 ? rc : 0);
    g_started = 0;
    return rc;
}

int comm_sum_start(const Comm *c, float *buf, size_t n, Err *err) {
    if (c->size == 1 || n == 0) return 0;
    if (!g_bg.on) return comm_backend_sum(c->id, buf, n, COMM_F32, err);
    pthread_mutex_lock(&g_bg.mu);
    while (g_bg.tail - g_bg.head >= BG_QUEUE) pthread_cond_wait(&g_bg.done, &g_bg.mu);
    g_bg.q[g_bg.tail % BG_QUEUE].buf = buf;
    g_bg.q[g_bg.tail % BG_QUEUE].n = n;
    g_bg.q[g_bg.tail % BG_QUEUE].id = c->id;
    g_bg.tail++;
    pthread_cond_signal(&g_bg.work);
    pthread_mutex_unlock(&g_bg.mu);
    return 0;
}

int comm_sum_wait(const Comm *c, Err *err) {
    if (c->size == 1 || !g_bg.on) return 0;
    pthread_mutex_lock(&g_bg.mu);
    while (g_bg.head != g_bg.tail || g_bg.busy) pthread_cond_wait(&g_bg.done, &g_bg.mu);
    const int failed = g_bg.failed;
    if (failed && err) *err = g_bg.err;
    g_bg.failed = 0;
    pthread_mutex_unlock(&g_bg.mu);
    return failed ? -1 : 0;
}

/* A call from the main thread: the background thread must be idle. */
static int sum_now(const Comm *c, void *buf, size_t n, CommType t, Err *err) {
    if (c->size == 1) return 0;
    if (comm_sum_wait(c, err) != 0) return -1;
    return comm_backend_sum(c->id, buf, n, t, err);
}

int comm_allreduce_f32(const Comm *c, float *buf, size_t n, Err *err) {
    return sum_now(c, buf, n, COMM_F32, err);
}

int comm_allreduce_f64(const Comm *c, double *buf, size_t n, Err *err) {
    return sum_now(c, buf, n, COMM_F64, err);
}

int comm_allreduce_i64(const Comm *c, int64_t *buf, size_t n, Err *err) {
    return sum_now(c, buf, n, COMM_I64, err);
}

int comm_check_same(const Comm *c, uint64_t v, const char *what, Err *err) {
    if (c->size == 1) return 0;
    uint64_t *all = malloc(sizeof *all * 2 * (size_t)c->size);
    if (!all) return err_set(err, "out of memory");
    uint64_t *who = all + c->size;
    int rc = comm_sum_wait(c, err) == 0 ? comm_backend_gather_u64(c->id, v, all, err) : -1;
    /* the job's rank numbers, for the message, where c is a part of it */
    if (rc == 0 && c->id != 0)
        rc = comm_backend_gather_u64(c->id, (uint64_t)g_world.rank, who, err);
    else
        for (int r = 0; r < c->size; r++) who[r] = (uint64_t)r;
    for (int r = 1; rc == 0 && r < c->size; r++)
        if (all[r] != all[0])
            rc = err_set(err, "%s are not the same on every rank: rank %d has hash %016" PRIx64
                              ", rank %d has %016" PRIx64 "; stopped",
                         what, (int)who[r], all[r], (int)who[0], all[0]);
    free(all);
    return rc;
}

int comm_split(const Comm *c, int color, Comm *out, Err *err) {
    if (c->size == 1) return *out = *c, 0;
    if (comm_sum_wait(c, err) != 0) return -1;
    return comm_backend_split(c->id, color, &out->id, &out->rank, &out->size, err);
}

int comm_alltoallv_f32(const Comm *c, const float *send, const size_t *send_n, float *recv,
                       const size_t *recv_n, Err *err) {
    if (c->size == 1) {
        memcpy(recv, send, sizeof(float) * send_n[0]);
        return 0;
    }
    if (comm_sum_wait(c, err) != 0) return -1;
    return comm_backend_alltoallv_f32(c->id, send, send_n, recv, recv_n, c->size, err);
}

int comm_alltoall_i32(const Comm *c, const int *send, int *recv, int n, Err *err) {
    if (c->size == 1) {
        memcpy(recv, send, sizeof(int) * (size_t)n);
        return 0;
    }
    if (comm_sum_wait(c, err) != 0) return -1;
    return comm_backend_alltoall_i32(c->id, send, recv, n, err);
}

int comm_check_weights(const Comm *c, const void *data, size_t n, int64_t step, Err *err) {
    if (c->size == 1) return 0;
    char what[64];
    snprintf(what, sizeof what, "the weights after step %" PRId64, step);
    return comm_check_same(c, comm_hash(data, n), what, err);
}

uint64_t comm_hash(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, b + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return rng_mix(h);
}
