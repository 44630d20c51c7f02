/* SPDX-License-Identifier: MIT */
/* The job's ranks (see comm.h): the single-process case here, the
 * exchanges handed to the backend (comm_backend.h) when there are others. */
#include "train/comm.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/rng.h"
#include "train/comm_backend.h"

static Comm g_world = {0, 1};
static int g_started; /* the backend runs */

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
    if (comm_backend_start(argc, argv, &g_world.rank, &g_world.size, err) != 0) return -1;
    g_started = 1;
    if (g_world.size > 1) log_set_rank(g_world.rank);
    return 0;
}

const Comm *comm_world(void) { return &g_world; }

int comm_world_end(int rc) {
    if (g_started) comm_backend_stop(rc != 0 && g_world.size > 1 ? rc : 0);
    g_started = 0;
    return rc;
}

int comm_allreduce_f32(const Comm *c, float *buf, size_t n, Err *err) {
    return c->size == 1 ? 0 : comm_backend_sum(buf, n, COMM_F32, err);
}

int comm_allreduce_f64(const Comm *c, double *buf, size_t n, Err *err) {
    return c->size == 1 ? 0 : comm_backend_sum(buf, n, COMM_F64, err);
}

int comm_allreduce_i64(const Comm *c, int64_t *buf, size_t n, Err *err) {
    return c->size == 1 ? 0 : comm_backend_sum(buf, n, COMM_I64, err);
}

int comm_check_same(const Comm *c, uint64_t v, const char *what, Err *err) {
    if (c->size == 1) return 0;
    uint64_t *all = malloc(sizeof *all * (size_t)c->size);
    if (!all) return err_set(err, "out of memory");
    int rc = comm_backend_gather_u64(v, all, err);
    for (int r = 1; rc == 0 && r < c->size; r++)
        if (all[r] != all[0])
            rc = err_set(err, "%s are not the same on every rank: rank %d has hash %016" PRIx64
                              ", rank 0 has %016" PRIx64 "; stopped",
                         what, r, all[r], all[0]);
    free(all);
    return rc;
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
