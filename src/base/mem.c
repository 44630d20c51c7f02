/* SPDX-License-Identifier: MIT */
/* Aligned allocation, zeroed or not (see mem.h). */
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

/* n rounded up to whole 64-byte lines (at least one), or 0 on overflow. */
static size_t lines_of(size_t n) {
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n) return 0;
    return rounded ? rounded : 64;
}

void *mem_alloc_uninit(size_t n) {
    const size_t bytes = lines_of(n);
    return bytes ? aligned_alloc(64, bytes) : NULL;
}

void *mem_alloc(size_t n) {
    void *p = mem_alloc_uninit(n);
    if (p) memset(p, 0, lines_of(n)); /* the padding too */
    return p;
}

void mem_free(void *p) { free(p); }
