/* SPDX-License-Identifier: MIT */
/* The MPI backend of comm.h (comm_backend.h), built when the Makefile finds
 * OpenMPI (WHALE_MPI). Sums are MPI_Allreduce in place, in pieces that fit
 * MPI's int counts. MPI runs at MPI_THREAD_SERIALIZED: one thread at a time
 * calls it (the main thread, or comm.c's background thread while the main
 * thread computes); OpenMP teams compute between the calls.
 *
 * The watchdog: a blocking collective waits for the slowest rank, for ever
 * if one is stopped or its network is gone (a rank killed outright is
 * noticed by mpirun itself, which ends the job). A thread started with the
 * job checks once a second how long the main thread has been inside a
 * collective; past WHALE_COMM_TIMEOUT seconds (default 600: longer than a
 * checkpoint write or an evaluation on another rank) it prints which
 * operation waited and _exits, and mpirun ends the rest of the job. */
#include "train/comm_backend.h"

#ifdef WHALE_MPI

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

static double g_timeout_s = 600;
static _Atomic double g_busy_since; /* 0: not in a collective */
static const char *_Atomic g_busy_op;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *watchdog(void *arg) {
    (void)arg;
    for (;;) {
        sleep(1);
        const double since = atomic_load(&g_busy_since);
        if (since > 0 && now_s() - since > g_timeout_s) {
            fprintf(stderr,
                    "%swhale: waited %.0f s in %s for the other ranks (one died, hangs or lost "
                    "its network); ending the job. Resume from the last checkpoint with --resume "
                    "(WHALE_COMM_TIMEOUT sets the wait)\n",
                    log_prefix(), now_s() - since, atomic_load(&g_busy_op));
            fflush(stderr);
            _exit(1);
        }
    }
    return NULL;
}

static void busy(const char *op) {
    atomic_store(&g_busy_op, op);
    atomic_store(&g_busy_since, now_s());
}

static void idle(void) { atomic_store(&g_busy_since, 0.0); }

static int mpi_fail(int rc, const char *op, Err *err) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return err_set(err, "%s failed: %.*s", op, len, msg);
}

int comm_backend_available(void) { return 1; }

int comm_backend_start(int *argc, char ***argv, int *rank, int *size, int *threads, Err *err) {
    int provided, rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return err_set(err, "MPI_Init_thread failed (code %d)", rc);
    *threads = provided >= MPI_THREAD_SERIALIZED;
    /* errors come back as codes, so a failed collective is reported by name */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    const char *t = getenv("WHALE_COMM_TIMEOUT");
    if (t && *t) {
        char *end;
        double v = strtod(t, &end);
        if (*end || !(v > 0))
            return err_set(err, "WHALE_COMM_TIMEOUT must be a number of seconds > 0, not '%s'", t);
        g_timeout_s = v;
    }
    pthread_t th;
    if (*size > 1 && pthread_create(&th, NULL, watchdog, NULL) == 0) pthread_detach(th);
    return 0;
}

void comm_backend_stop(int code) {
    if (code == 0) MPI_Finalize();
    else MPI_Abort(MPI_COMM_WORLD, code);
}

/* The communicators: 0 is MPI_COMM_WORLD, the rest from comm_backend_split. */
#define MAX_COMMS 8
static MPI_Comm g_comms[MAX_COMMS];
static int g_n_comms = 1;

static MPI_Comm comm_of(int id) { return id == 0 ? MPI_COMM_WORLD : g_comms[id]; }

int comm_backend_sum(int id, void *buf, size_t n, CommType t, Err *err) {
    static const size_t elem[] = {4, 8, 8};
    const MPI_Datatype type = t == COMM_F32 ? MPI_FLOAT : t == COMM_F64 ? MPI_DOUBLE : MPI_INT64_T;
    const size_t piece = (size_t)1 << 28; /* MPI counts are int */
    busy("MPI_Allreduce");
    for (size_t i = 0; i < n; i += piece) {
        const int cnt = (int)(n - i < piece ? n - i : piece);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + i * elem[t], cnt, type, MPI_SUM,
                               comm_of(id));
        if (rc != MPI_SUCCESS) {
            idle();
            return mpi_fail(rc, "MPI_Allreduce", err);
        }
    }
    idle();
    return 0;
}

int comm_backend_split(int id, int color, int *new_id, int *rank, int *size, Err *err) {
    if (g_n_comms == MAX_COMMS) return err_set(err, "more than %d communicators", MAX_COMMS - 1);
    MPI_Comm nc;
    busy("MPI_Comm_split");
    int rc = MPI_Comm_split(comm_of(id), color, 0, &nc);
    idle();
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Comm_split", err);
    MPI_Comm_set_errhandler(nc, MPI_ERRORS_RETURN);
    MPI_Comm_rank(nc, rank);
    MPI_Comm_size(nc, size);
    g_comms[g_n_comms] = nc;
    *new_id = g_n_comms++;
    return 0;
}

int comm_backend_alltoallv_f32(int id, const float *send, const size_t *send_n, float *recv,
                               const size_t *recv_n, int size, Err *err) {
    int *c = malloc(sizeof(int) * 4 * (size_t)size);
    if (!c) return err_set(err, "out of memory");
    int *sc = c, *sd = c + size, *rcn = c + 2 * size, *rd = c + 3 * size;
    size_t so = 0, ro = 0;
    for (int q = 0; q < size; q++) {
        sc[q] = (int)send_n[q], sd[q] = (int)so, rcn[q] = (int)recv_n[q], rd[q] = (int)ro;
        so += send_n[q], ro += recv_n[q];
    }
    if (so > INT_MAX || ro > INT_MAX) {
        free(c);
        return err_set(err, "an all-to-all of more than %d floats", INT_MAX);
    }
    busy("MPI_Alltoallv");
    int rc = MPI_Alltoallv(send, sc, sd, MPI_FLOAT, recv, rcn, rd, MPI_FLOAT, comm_of(id));
    idle();
    free(c);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Alltoallv", err);
}

int comm_backend_alltoall_i32(int id, const int *send, int *recv, int n, Err *err) {
    busy("MPI_Alltoall");
    int rc = MPI_Alltoall(send, n, MPI_INT, recv, n, MPI_INT, comm_of(id));
    idle();
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Alltoall", err);
}

int comm_backend_gather_u64(int id, uint64_t v, uint64_t *all, Err *err) {
    busy("MPI_Allgather");
    int rc = MPI_Allgather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, comm_of(id));
    idle();
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allgather", err);
}

#else /* built without OpenMPI: one process, and comm.c never calls the rest */

int comm_backend_available(void) { return 0; }

int comm_backend_start(int *argc, char ***argv, int *rank, int *size, int *threads, Err *err) {
    (void)argc, (void)argv;
    *rank = 0, *size = 1, *threads = 0;
    return err_set(err, "this whale was built without MPI");
}

void comm_backend_stop(int code) { (void)code; }

int comm_backend_sum(int id, void *buf, size_t n, CommType t, Err *err) {
    (void)id, (void)buf, (void)n, (void)t;
    return err_set(err, "this whale was built without MPI");
}

int comm_backend_gather_u64(int id, uint64_t v, uint64_t *all, Err *err) {
    (void)id, (void)v, (void)all;
    return err_set(err, "this whale was built without MPI");
}

int comm_backend_split(int id, int color, int *new_id, int *rank, int *size, Err *err) {
    (void)id, (void)color, (void)new_id, (void)rank, (void)size;
    return err_set(err, "this whale was built without MPI");
}

int comm_backend_alltoallv_f32(int id, const float *send, const size_t *send_n, float *recv,
                               const size_t *recv_n, int size, Err *err) {
    (void)id, (void)send, (void)send_n, (void)recv, (void)recv_n, (void)size;
    return err_set(err, "this whale was built without MPI");
}

int comm_backend_alltoall_i32(int id, const int *send, int *recv, int n, Err *err) {
    (void)id, (void)send, (void)recv, (void)n;
    return err_set(err, "this whale was built without MPI");
}

#endif
