/* SPDX-License-Identifier: MIT */
/* Aligned allocation, zeroed or not (see mem.h). */
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

void *mem_alloc_uninit(size_t n) {
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n) return NULL;
    return aligned_alloc(64, rounded ? rounded : 64);
}

void *mem_alloc(size_t n) {
    void *p = mem_alloc_uninit(n);
    if (p) memset(p, 0, n ? (n + 63) & ~(size_t)63 : 64); /* the padding too */
    return p;
}

void mem_free(void *p) { free(p); }
