/* SPDX-License-Identifier: MIT */
/* A scratch arena for per-step buffers: take() bumps a pointer, reset()
 * frees everything at once. If a step needs more than the current block, a
 * new block is chained (earlier pointers stay valid) and the next reset
 * replaces the chain by one block of the high-water mark, so after the
 * first step of a given shape no allocation happens in the steady state.
 * Blocks are not zeroed: the first step touches only the pages it uses. */
#ifndef WHALE_ARENA_H
#define WHALE_ARENA_H

#include <stddef.h>

typedef struct ArenaBlock ArenaBlock;

typedef struct Arena {
    ArenaBlock *head;  /* current block; older blocks chained behind it */
    ArenaBlock *spare; /* the largest block a release unchained, for the next chain */
    size_t used_total; /* bytes taken since the last reset, over all blocks */
    size_t high_water; /* largest used_total seen */
} Arena;

/* n floats, 64-byte aligned, uninitialised. Returns NULL only when memory is
 * exhausted. */
float *arena_floats(Arena *a, size_t n);
/* n bytes, 64-byte aligned, uninitialised. */
void *arena_take(Arena *a, size_t n);
void arena_reset(Arena *a);
void arena_free(Arena *a);

/* A point to come back to: arena_release gives back everything taken
 * since arena_mark, so a loop whose iterations each need scratch (the
 * layers of a forward pass) peaks at one iteration's, not at the sum.
 * Pointers taken after the mark are invalid after the release; a mark is
 * invalid after a reset. Blocks chained since the mark are unchained (the
 * largest kept as the spare the next chain takes), so the high-water mark,
 * and the one block the next reset makes, is the true peak even in the
 * first step of a larger shape. */
typedef struct ArenaMark {
    ArenaBlock *block;
    size_t used, total;
} ArenaMark;
ArenaMark arena_mark(const Arena *a);
void arena_release(Arena *a, ArenaMark m);

#endif
