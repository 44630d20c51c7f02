/* SPDX-License-Identifier: MIT */
/* Chained bump allocator (see arena.h). */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>

#include "base/mem.h"

struct ArenaBlock {
    ArenaBlock *prev;
    size_t size, used;
    unsigned char *mem;
};

static ArenaBlock *block_new(size_t size, ArenaBlock *prev) {
    ArenaBlock *b = malloc(sizeof *b);
    if (!b) return NULL;
    b->mem = mem_alloc_uninit(size);
    if (!b->mem) {
        free(b);
        return NULL;
    }
    b->prev = prev;
    b->size = size;
    b->used = 0;
    return b;
}

static void block_free(ArenaBlock *b) {
    if (!b) return;
    mem_free(b->mem);
    free(b);
}

void *arena_take(Arena *a, size_t n) {
    size_t need = (n + 63) & ~(size_t)63;
    if (need < n) return NULL;
    if (!a->head || a->head->size - a->head->used < need) {
        ArenaBlock *b = a->spare;
        if (b && b->size >= need) {
            a->spare = NULL;
            b->prev = a->head;
            b->used = 0;
        } else {
            /* at least 1 MiB, and twice the block before: a training
             * step's first pass chained a block for nearly every buffer,
             * most under mem.c's 8 MiB huge-page threshold and so faulted
             * in 4 KiB pages (1-2 s of system time for the bench model) */
            size_t size = (size_t)1 << 20;
            if (a->head && a->head->size <= SIZE_MAX / 2 && 2 * a->head->size > size)
                size = 2 * a->head->size;
            if (need > size) size = need;
            b = block_new(size, a->head);
            if (!b) return NULL;
        }
        a->head = b;
    }
    void *p = a->head->mem + a->head->used;
    a->head->used += need;
    a->used_total += need;
    if (a->used_total > a->high_water) a->high_water = a->used_total;
    return p;
}

float *arena_floats(Arena *a, size_t n) {
    size_t bytes;
    if (size_mul(n, sizeof(float), &bytes)) return NULL;
    return arena_take(a, bytes);
}

void arena_reset(Arena *a) {
    if (a->head && (a->head->prev || a->high_water > a->head->size)) {
        /* More than one block was needed (chained now, or chained and
         * released): replace them by one block that holds the high-water
         * mark, so the next step does not chain. */
        size_t hw = a->high_water;
        arena_free(a);
        /* 1.5x headroom: decode needs a little more scratch at every
         * position, and must not come back here at every token */
        a->head = block_new(hw + hw / 2, NULL);
        a->high_water = hw;
    }
    if (a->head) a->head->used = 0;
    a->used_total = 0;
}

void arena_free(Arena *a) {
    ArenaBlock *b = a->head;
    while (b) {
        ArenaBlock *prev = b->prev;
        block_free(b);
        b = prev;
    }
    block_free(a->spare);
    a->head = a->spare = NULL;
    a->used_total = 0;
}

ArenaMark arena_mark(const Arena *a) {
    ArenaMark m = {a->head, a->head ? a->head->used : 0, a->used_total};
    return m;
}

void arena_release(Arena *a, ArenaMark m) {
    /* blocks chained since the mark hold only what was taken since it */
    while (a->head && a->head != m.block) {
        ArenaBlock *b = a->head;
        a->head = b->prev;
        if (!a->spare || b->size > a->spare->size) {
            block_free(a->spare);
            a->spare = b;
        } else {
            block_free(b);
        }
    }
    if (a->head) a->head->used = m.used;
    a->used_total = m.total;
}
