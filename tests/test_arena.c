/* SPDX-License-Identifier: MIT */
/* The scratch arena: reset keeps one block of the high-water mark, and
 * mark/release gives back what a loop iteration took. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "base/arena.h"

Test(arena, release_gives_back_what_was_taken_since_the_mark) {
    Arena a = {0};
    ArenaMark none = arena_mark(&a); /* before any block: a release does nothing */
    char *base = arena_take(&a, 100);
    cr_assert(base);
    arena_release(&a, none);
    cr_assert_eq(a.used_total, 128, "nothing given back past a mark taken before any block");
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

Test(arena, release_after_a_chained_block_waits_for_the_reset) {
    Arena a = {0};
    cr_assert(arena_take(&a, 64));
    const ArenaMark m = arena_mark(&a);
    cr_assert(arena_take(&a, (size_t)2 << 20)); /* more than the first 1 MiB block: chains */
    const size_t used = a.used_total;
    arena_release(&a, m);
    cr_assert_eq(a.used_total, used, "a chained block is kept until the reset");
    arena_reset(&a); /* one block of 1.5 x the high-water mark */
    cr_assert_eq(a.used_total, 0);
    cr_assert(arena_take(&a, 64));
    const ArenaMark m2 = arena_mark(&a);
    char *p = arena_take(&a, (size_t)2 << 20);
    arena_release(&a, m2);
    cr_assert_eq(a.used_total, 64, "inside one block the release holds");
    cr_assert_eq(arena_take(&a, (size_t)2 << 20), p);
    arena_free(&a);
}
