/* SPDX-License-Identifier: MIT */
/* The one door between the trainer and other processes: sum a flat buffer
 * over all ranks. The trainer averages gradients and adds expert loads
 * through it and nothing else, so a data-parallel backend (MPI) plugs in
 * here without touching train/trainer.c. This build has the single-process
 * backend: rank 0 of 1, where the sums are the identity. */
#ifndef WHALE_COMM_H
#define WHALE_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct Comm {
    int rank, size;
} Comm;

/* The single-process communicator. */
void comm_init_single(Comm *c);

/* buf (n) = its sum over all ranks, in place. 0 or -1 with err. */
int comm_allreduce_f32(Comm *c, float *buf, size_t n, Err *err);
int comm_allreduce_i64(Comm *c, int64_t *buf, size_t n, Err *err);

#endif
