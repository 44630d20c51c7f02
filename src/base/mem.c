/* SPDX-License-Identifier: MIT */
/* Aligned, zeroed allocation (see mem.h). */
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

void *mem_alloc(size_t n) {
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n) return NULL;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (p) memset(p, 0, rounded ? rounded : 64);
    return p;
}

void mem_free(void *p) { free(p); }
