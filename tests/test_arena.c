/* SPDX-License-Identifier: MIT */
/* The scratch arena: reset keeps one block of the high-water mark, and
 * mark/release gives back what a loop iteration took, chained blocks too. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "base/arena.h"

Test(arena, release_gives_back_what_was_taken_since_the_mark) {
    Arena a = {0};
    char *base = arena_take(&a, 100);
    cr_assert(base);
    const ArenaMark m = arena_mark(&a);
    char *p = arena_take(&a, 1000);
    cr_assert(p && (uintptr_t)p % 64 == 0);
    cr_assert_eq(a.used_total, 128 + 1024);
    arena_release(&a, m);
    cr_assert_eq(a.used_total, 128);
    char *q = arena_take(&a, 1000);
    cr_assert_eq(q, p, "the released bytes are taken again");
    cr_assert_eq(a.high_water, 128 + 1024, "the high-water mark is the peak, not the sum");
    arena_free(&a);
}

Test(arena, release_unchains_the_blocks_taken_since_the_mark) {
    Arena a = {0};
    cr_assert(arena_take(&a, 64));
    const ArenaMark m = arena_mark(&a);
    char *big = arena_take(&a, (size_t)2 << 20); /* more than the first 1 MiB block: chains */
    cr_assert(big);
    arena_release(&a, m);
    cr_assert_eq(a.used_total, 64, "the chained block is given back at once");
    cr_assert_eq(arena_take(&a, (size_t)2 << 20), big, "and taken again by the next chain");
    arena_release(&a, m);
    char *other = arena_take(&a, (size_t)3 << 20); /* larger than the spare: a new block */
    cr_assert(other && other != big);
    arena_release(&a, m);
    cr_assert_eq(a.high_water, 64 + ((size_t)3 << 20), "the high-water mark is the peak, not the sum");
    arena_reset(&a); /* one block of 1.5 x the peak */
    cr_assert_eq(a.used_total, 0);
    cr_assert(arena_take(&a, 64));
    const ArenaMark m2 = arena_mark(&a);
    char *p = arena_take(&a, (size_t)3 << 20);
    arena_release(&a, m2);
    cr_assert_eq(a.used_total, 64, "inside one block the release holds");
    cr_assert_eq(arena_take(&a, (size_t)3 << 20), p, "no chain after the reset");
    arena_free(&a);
}

Test(arena, release_to_a_mark_before_any_block_gives_back_everything) {
    Arena a = {0};
    ArenaMark none = arena_mark(&a);
    cr_assert(arena_take(&a, 100));
    cr_assert(arena_take(&a, (size_t)2 << 20));
    arena_release(&a, none);
    cr_assert_eq(a.used_total, 0);
    cr_assert(arena_take(&a, 100), "taking again after an empty release");
    arena_free(&a);
}

/* A chain grows by doubling, so a first pass that takes a gigabyte in
 * small pieces makes a few blocks, not one per MiB (each then faulted in
 * 4 KiB pages): the second block holds two pieces of a MiB, side by side. */
Test(arena, chained_blocks_double) {
    Arena a = {0};
    const size_t mib = (size_t)1 << 20;
    char *p1 = arena_take(&a, mib); /* the first block, 1 MiB */
    char *p2 = arena_take(&a, mib); /* chains a block of 2 MiB */
    char *p3 = arena_take(&a, mib); /* fits beside p2 */
    cr_assert(p1 && p2 && p3);
    cr_assert_eq(p3, p2 + mib, "the second block is twice the first");
    char *p4 = arena_take(&a, mib); /* chains 4 MiB */
    char *p5 = arena_take(&a, 3 * mib);
    cr_assert(p4 && p5);
    cr_assert_eq(p5, p4 + mib, "and the third twice the second");
    arena_free(&a);
}
