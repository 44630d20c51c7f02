/* SPDX-License-Identifier: MIT */
/* Allocation helpers: overflow-checked size arithmetic for parsers, and
 * aligned allocation for kernel buffers. */
#ifndef WHALE_MEM_H
#define WHALE_MEM_H

#include <stddef.h>
#include <stdint.h>

/* *out = a * b; returns 0, or -1 when the product overflows size_t. */
static inline int size_mul(size_t a, size_t b, size_t *out) {
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

/* *out = a + b; returns 0, or -1 on overflow. */
static inline int size_add(size_t a, size_t b, size_t *out) {
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

/* 64-byte aligned, zero-filled allocation of n bytes (n may be 0). Returns NULL
 * when memory is exhausted. Free with mem_free. */
void *mem_alloc(size_t n);
/* The same, not zero-filled: for scratch that is written before it is
 * read (arena blocks). Zeroing hundreds of megabytes up front costs a
 * page fault and a clear per page whether or not the pages are used. */
void *mem_alloc_uninit(size_t n);
void mem_free(void *p);

#endif
