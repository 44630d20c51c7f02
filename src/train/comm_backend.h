/* SPDX-License-Identifier: MIT */
/* What comm.c needs from a multi-process backend (train/comm_mpi.c); only
 * comm.c includes this. Every call but comm_backend_available may assume
 * a started job of more than one rank. */
#ifndef WHALE_COMM_BACKEND_H
#define WHALE_COMM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef enum { COMM_F32, COMM_F64, COMM_I64 } CommType;

/* 1 when this build has the backend. */
int comm_backend_available(void);

/* Start it; *rank and *size of the job; *threads: 1 when any one thread at
 * a time may call the backend (else only the thread that started it). 0 or
 * -1 with err. */
int comm_backend_start(int *argc, char ***argv, int *rank, int *size, int *threads, Err *err);

/* Finalize (code 0), or end every rank of the job with exit code `code`. */
void comm_backend_stop(int code);

/* buf (n elements of type t) = its sum over the ranks of communicator id
 * (0: the whole job). 0 or -1 with err. */
int comm_backend_sum(int id, void *buf, size_t n, CommType t, Err *err);

/* all (size) = every rank's v, by rank, over communicator id. 0 or -1. */
int comm_backend_gather_u64(int id, uint64_t v, uint64_t *all, Err *err);

/* A new communicator of communicator id's ranks with the same color: its
 * *new_id, and this rank's *rank and *size in it. 0 or -1 with err. */
int comm_backend_split(int id, int color, int *new_id, int *rank, int *size, Err *err);

/* MPI_Alltoallv / MPI_Alltoall on communicator id (counts in elements,
 * packed in rank order). 0 or -1 with err. */
int comm_backend_alltoallv_f32(int id, const float *send, const size_t *send_n, float *recv,
                               const size_t *recv_n, int size, Err *err);
int comm_backend_alltoall_i32(int id, const int *send, int *recv, int n, Err *err);

#endif
