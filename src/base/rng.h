/* SPDX-License-Identifier: MIT */
/* Seeded pseudo-random numbers (xoshiro256** seeded by splitmix64): the same
 * seed gives the same stream on every machine, which initialisation, data
 * sampling and resumable training rely on. */
#ifndef WHALE_RNG_H
#define WHALE_RNG_H

#include <stdint.h>

typedef struct Rng {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
/* splitmix64's output function: a bijection that scatters neighbouring
 * inputs (seeds derived from a counter, ids). */
uint64_t rng_mix(uint64_t z);
uint64_t rng_u64(Rng *r);
/* Uniform in [0, 1) with 24 bits of precision. */
float rng_uniform(Rng *r);
/* Standard normal (Box-Muller). */
float rng_normal(Rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rng_below(Rng *r, uint64_t n);

#endif
