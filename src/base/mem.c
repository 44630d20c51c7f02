/* SPDX-License-Identifier: MIT */
/* Aligned allocation, zeroed or not (see mem.h). */
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* n rounded up to whole 64-byte lines (at least one), or 0 on overflow. */
static size_t lines_of(size_t n) {
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n) return 0;
    return rounded ? rounded : 64;
}

/* Buffers from HUGE_MIN up (weights, gradients, optimiser moments, the
 * activation arena) are 2 MiB-aligned and asked to be backed by
 * transparent huge pages where the kernel does that on request
 * (transparent_hugepage=madvise, Debian's default): a training step walks
 * over a gigabyte, which in 4 KiB pages is a TLB miss every few rows and
 * half a million page faults in the first steps. The advice is only that:
 * without it the memory is the same. */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)8 << 20)

void *mem_alloc_uninit(size_t n) {
    const size_t bytes = lines_of(n);
    if (!bytes) return NULL;
    if (bytes < HUGE_MIN) return aligned_alloc(64, bytes);
    const size_t rounded = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = rounded >= bytes ? aligned_alloc(HUGE_PAGE, rounded) : NULL;
#ifdef MADV_HUGEPAGE
    if (p) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

void *mem_alloc(size_t n) {
    void *p = mem_alloc_uninit(n);
    if (p) memset(p, 0, lines_of(n)); /* the padding too */
    return p;
}

void mem_free(void *p) { free(p); }
