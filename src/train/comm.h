/* SPDX-License-Identifier: MIT */
/* The one door between the trainers and other processes. A job started by
 * `mpirun -np N` is N whale processes, the ranks of MPI_COMM_WORLD; a job
 * started without it is rank 0 of 1, where every exchange is the identity.
 * The trainers average gradients, add expert loads and metrics, and compare
 * weight checksums through these calls and nothing else, so train/trainer.c
 * and rl/ never see MPI (train/comm_mpi.c holds it; a build without OpenMPI
 * runs the same commands single-process).
 *
 * A collective that waits longer than WHALE_COMM_TIMEOUT seconds (default
 * 600) for the other ranks, because one died, hangs or lost its network,
 * ends this process with a message naming the operation; mpirun then ends
 * the job, and the last checkpoint resumes it. */
#ifndef WHALE_COMM_H
#define WHALE_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct Comm {
    int rank, size;
    int id; /* the backend's communicator: 0 the whole job, else from comm_split */
} Comm;

/* Join the job this process was started in: MPI when a launcher (mpirun)
 * started it, else rank 0 of 1. Called once, by main, before any command.
 * Sets the log rank (base/log.h). 0, or -1 with err (started by mpirun but
 * built without MPI; MPI failed to start). */
int comm_world_init(int *argc, char ***argv, Err *err);

/* This process's place in the job (rank 0 of 1 before comm_world_init). */
const Comm *comm_world(void);

/* Leave the job with the command's exit code rc: a normal MPI finalize when
 * rc is 0; when it is not and other ranks run, end them all now rather than
 * leave them waiting for this one. Returns rc. */
int comm_world_end(int rc);

/* buf (n) = its sum over the ranks of c, in place, identical on each.
 * Waits for the background sums first (comm_sum_wait). 0 or -1 with err. */
int comm_allreduce_f32(const Comm *c, float *buf, size_t n, Err *err);
int comm_allreduce_f64(const Comm *c, double *buf, size_t n, Err *err);
int comm_allreduce_i64(const Comm *c, int64_t *buf, size_t n, Err *err);

/* The ranks of c with the same color, as a communicator of their own (rank
 * order kept): the expert-parallel groups. Collective over c. 0, or -1 with
 * err. */
int comm_split(const Comm *c, int color, Comm *out, Err *err);

/* All-to-all over c: send holds send_n[q] floats for rank q, packed in
 * rank order; recv gets recv_n[q] floats from rank q, packed the same way
 * (each rank's recv_n must match what the others send it). 0 or -1 with
 * err. */
int comm_alltoallv_f32(const Comm *c, const float *send, const size_t *send_n, float *recv,
                       const size_t *recv_n, Err *err);

/* All-to-all of n ints to every rank of c: send (size x n), recv (size x n). */
int comm_alltoall_i32(const Comm *c, const int *send, int *recv, int n, Err *err);

/* Overlap: start summing buf (n) over the ranks in the background (a
 * thread of comm.c does the same MPI_Allreduce) and return at once, so the
 * caller computes on while it travels; buf must stay untouched until
 * comm_sum_wait. Every rank starts the same sums in the same order. Done
 * on the spot when the backend allows no second thread; nothing to do on
 * one rank. 0, or -1 with err (a full queue is waited out, not an error). */
int comm_sum_start(const Comm *c, float *buf, size_t n, Err *err);

/* Wait until every started sum is done. 0, or -1 with the first failure. */
int comm_sum_wait(const Comm *c, Err *err);

/* The ranks of c agree on v (e.g. a hash of the weights): 0 when they do;
 * -1 with err "WHAT are not the same on every rank: rank R has ..., rank
 * F has ..." naming the first rank that differs and c's first (by their
 * rank in the job). Collective: every rank of c calls it. */
int comm_check_same(const Comm *c, uint64_t v, const char *what, Err *err);

/* comm_check_same on a hash of the weights (n bytes at data) after step
 * `step`: the ranks take the same steps on the same summed gradients, so
 * they must hold the same bytes; a bug or a flipped bit would part them. */
int comm_check_weights(const Comm *c, const void *data, size_t n, int64_t step, Err *err);

/* A 64-bit hash of n bytes, for comm_check_same over the weights: any
 * changed bit changes it (with overwhelming odds); 8 bytes a step. */
uint64_t comm_hash(const void *p, size_t n);

#endif
