/* SPDX-License-Identifier: MIT */
/* The serving engine's context cache (serve/prefix_cache.c): the rows a
 * lookup copies are byte for byte those stored for the shared prefix (F32
 * and BF16), the longest stored prefix is found across divergent branches
 * and node splits, max_len caps it, least recently used leaves go first
 * under a byte budget the cache never exceeds, and a randomized run agrees
 * with a brute-force list of the stored sequences. KV rows are a hash of
 * (the prefix up to the position, layer, column), as a model's rows depend
 * on the whole prefix: rows copied from the wrong position or branch differ. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/rng.h"
#include "model/kvcache.h"
#include "model/presets.h"
#include "serve/prefix_cache.h"

#define N_CTX 64

static ModelConfig tiny_config(void) {
    ModelConfig c;
    Err err = {0};
    cr_assert_eq(preset_config("tiny", &c, &err), 0, "%s", err.msg);
    return c;
}

static void kv_open(KVCache *kv, DType type) {
    ModelConfig c = tiny_config();
    Err err = {0};
    cr_assert_eq(kvcache_init(kv, &c, N_CTX, type, 0, &err), 0, "%s", err.msg);
    memset(kv->data, 0xa5, kv->bytes); /* a lookup that copies nothing leaves this */
}

static PrefixCache *cache_open(const KVCache *kv, int64_t budget) {
    PrefixCache *pc;
    Err err = {0};
    cr_assert_eq(prefix_cache_init(&pc, kv->n_layers, kv->width, kv->type, budget, &err), 0,
                 "%s", err.msg);
    return pc;
}

/* Rows 0..n-1 of kv for the sequence ids: each number is +-2^e * (1 + m/128)
 * (exact in BF16) with sign, e and m drawn from a stream seeded by a hash
 * of ids[0..p]. Sets kv->len = n. */
static void kv_fill(KVCache *kv, const int *ids, int n) {
    float row[256];
    cr_assert(kv->width <= 256);
    uint64_t h = 1;
    for (int p = 0; p < n; p++) {
        Rng r;
        rng_seed(&r, h * 1000003u + (uint32_t)ids[p]); /* splitmix: a hash of the prefix */
        h = rng_u64(&r);
        for (int l = 0; l < kv->n_layers; l++) {
            for (int j = 0; j < kv->width; j++) {
                uint64_t b = rng_u64(&r);
                float v = ldexpf(1.0f + (float)(b & 127) / 128.0f, (int)((b >> 7) & 15) - 8);
                row[j] = (b >> 11) & 1 ? -v : v;
            }
            kvcache_store(kv, l, p, 1, row);
        }
    }
    kv->len = n;
}

/* 1 when positions 0..k-1 of every layer of got and want hold the same
 * bytes; prints the first mismatches otherwise. */
static int rows_equal(const KVCache *got, const KVCache *want, int k) {
    size_t rb = (size_t)got->width * dtype_size(got->type);
    int bad = 0;
    for (int l = 0; l < got->n_layers; l++)
        for (int p = 0; p < k; p++) {
            size_t off = ((size_t)l * got->n_ctx + p) * rb;
            if (memcmp((char *)got->data + off, (char *)want->data + off, rb) && bad++ < 5)
                fprintf(stderr, "layer %d position %d: rows differ\n", l, p);
        }
    return bad == 0;
}

/* 1 when position p of every layer still holds kv_open's filler bytes. */
static int row_untouched(const KVCache *kv, int p) {
    size_t rb = (size_t)kv->width * dtype_size(kv->type);
    for (int l = 0; l < kv->n_layers; l++) {
        const unsigned char *r = (unsigned char *)kv->data + ((size_t)l * kv->n_ctx + p) * rb;
        for (size_t i = 0; i < rb; i++)
            if (r[i] != 0xa5) return 0;
    }
    return 1;
}

static int64_t token_bytes(const KVCache *kv) {
    ModelConfig c = tiny_config();
    return kvcache_bytes_per_token(&c, kv->type) + (int64_t)sizeof(int);
}

/* Insert ids (n) with freshly filled rows; returns what insert returned. */
static int put(PrefixCache *pc, KVCache *src, const int *ids, int n) {
    kv_fill(src, ids, n);
    return prefix_cache_insert(pc, ids, n, src);
}

/* Look ids (n) up with max_len into a fresh KV cache of type; expects k
 * tokens, their rows equal to a fill of ids, and row k not written. */
static void check_lookup(PrefixCache *pc, DType type, const int *ids, int n, int max_len, int k) {
    KVCache got, want;
    kv_open(&got, type);
    kv_open(&want, type);
    kv_fill(&want, ids, n);
    got.len = 99;
    int r = prefix_cache_lookup(pc, ids, n, max_len, &got);
    cr_expect_eq(r, k, "lookup of %d tokens (max_len %d): expected %d shared, got %d", n,
                 max_len, k, r);
    cr_expect_eq(got.len, r, "kv->len %d after a lookup of %d", got.len, r);
    cr_expect(rows_equal(&got, &want, r < k ? r : k), "rows of the %d shared tokens", k);
    if (r < N_CTX) cr_expect(row_untouched(&got, r), "row %d written past the shared prefix", r);
    kvcache_free(&got);
    kvcache_free(&want);
}

static void shared_prefix_rows(DType type) {
    KVCache src;
    kv_open(&src, type);
    PrefixCache *pc = cache_open(&src, 1 << 20);
    int a[20], b[20];
    for (int i = 0; i < 20; i++) a[i] = b[i] = 100 + i;
    for (int i = 12; i < 20; i++) b[i] = 300 + i;
    cr_assert_eq(put(pc, &src, a, 20), 20);
    check_lookup(pc, type, b, 20, 19, 12); /* diverges after 12 */
    check_lookup(pc, type, a, 20, 19, 19); /* the engine's n - 1 */
    check_lookup(pc, type, a, 20, 25, 20); /* max_len past n: n */
    check_lookup(pc, type, a, 7, 25, 7);   /* a shorter prompt: inside the node */
    check_lookup(pc, type, a, 20, 0, 0);
    int c[3] = {7, 100, 101};
    check_lookup(pc, type, c, 3, 3, 0); /* shares nothing: first token differs */
    PrefixCacheStats s;
    prefix_cache_stats(pc, &s);
    cr_expect_eq(s.lookups, 6);
    cr_expect_eq(s.hits, 4);
    cr_expect_eq(s.tokens, 20);
    cr_expect_eq(s.leaves, 1);
    prefix_cache_free(pc);
    kvcache_free(&src);
}

Test(prefix_cache, shared_prefix_rows_f32) { shared_prefix_rows(DTYPE_F32); }
Test(prefix_cache, shared_prefix_rows_bf16) { shared_prefix_rows(DTYPE_BF16); }

Test(prefix_cache, divergent_branches_split_nodes) {
    KVCache src;
    kv_open(&src, DTYPE_BF16);
    PrefixCache *pc = cache_open(&src, 1 << 20);
    int a[20], b[16], c[9], d[20];
    for (int i = 0; i < 16; i++) a[i] = b[i] = i + 1;
    for (int i = 8; i < 16; i++) b[i] = 50 + i;       /* diverges from a after 8 */
    for (int i = 0; i < 9; i++) c[i] = i < 8 ? i + 1 : 99; /* after 8, a third token */
    for (int i = 0; i < 20; i++) d[i] = i < 16 ? a[i] : 200 + i;
    cr_expect_eq(put(pc, &src, a, 16), 16);
    cr_expect_eq(put(pc, &src, b, 16), 8, "b shares 8 tokens with a");
    cr_expect_eq(put(pc, &src, a, 16), 0, "a again: nothing new");
    cr_expect_eq(put(pc, &src, a, 4), 0, "a prefix of a: split, nothing new");
    PrefixCacheStats s;
    prefix_cache_stats(pc, &s);
    cr_expect_eq(s.tokens, 24);
    cr_expect_eq(s.leaves, 2);
    check_lookup(pc, DTYPE_BF16, a, 16, 16, 16);
    check_lookup(pc, DTYPE_BF16, b, 16, 16, 16);
    check_lookup(pc, DTYPE_BF16, c, 9, 9, 8);
    check_lookup(pc, DTYPE_BF16, a, 3, 3, 3);
    check_lookup(pc, DTYPE_BF16, a, 16, 6, 6);
    cr_expect_eq(put(pc, &src, d, 20), 4, "d extends a by 4");
    prefix_cache_stats(pc, &s);
    cr_expect_eq(s.tokens, 28);
    cr_expect_eq(s.leaves, 2, "a extended is still one sequence");
    cr_expect_eq(put(pc, &src, c, 9), 1);
    prefix_cache_stats(pc, &s);
    cr_expect_eq(s.leaves, 3);
    check_lookup(pc, DTYPE_BF16, d, 20, 19, 19);
    check_lookup(pc, DTYPE_BF16, c, 9, 9, 9);
    check_lookup(pc, DTYPE_BF16, b, 16, 15, 15);
    prefix_cache_free(pc);
    kvcache_free(&src);
}

/* Bytes of a cache holding three unrelated 16-token sequences after
 * inserting the first, measured through the stats so the test does not
 * depend on the size of the cache's node structs. */
static void sizes(const KVCache *kv, int64_t *empty, int64_t *one_seq) {
    KVCache src = *kv;
    PrefixCache *pc = cache_open(&src, 1 << 20);
    PrefixCacheStats s;
    prefix_cache_stats(pc, &s);
    *empty = s.bytes;
    int a[16], b[16];
    for (int i = 0; i < 16; i++) a[i] = 1000 + i, b[i] = 2000 + i;
    cr_assert_eq(prefix_cache_insert(pc, a, 16, &src), 16);
    cr_assert_eq(prefix_cache_insert(pc, b, 16, &src), 16);
    int64_t two = (prefix_cache_stats(pc, &s), s.bytes);
    int c[16];
    for (int i = 0; i < 16; i++) c[i] = 3000 + i;
    cr_assert_eq(prefix_cache_insert(pc, c, 16, &src), 16);
    prefix_cache_stats(pc, &s);
    *one_seq = s.bytes - two; /* may include the root's kid array growing */
    if (two - *empty > 2 * *one_seq) *one_seq = (two - *empty + 1) / 2;
    prefix_cache_free(pc);
}

Test(prefix_cache, lru_evicts_the_oldest_leaf) {
    KVCache src;
    kv_open(&src, DTYPE_F32);
    kv_fill(&src, (int[16]){0}, 16);
    int64_t empty, seq;
    sizes(&src, &empty, &seq);
    cr_assert(seq >= 16 * token_bytes(&src), "a sequence costs at least its rows");
    /* room for two sequences and a little, not for three */
    PrefixCache *pc = cache_open(&src, empty + 2 * seq + seq / 4);
    int a[16], b[16], c[16];
    for (int i = 0; i < 16; i++) a[i] = 10 + i, b[i] = 40 + i, c[i] = 70 + i;
    cr_assert_eq(put(pc, &src, a, 16), 16);
    cr_assert_eq(put(pc, &src, b, 16), 16);
    check_lookup(pc, DTYPE_F32, a, 16, 15, 15); /* a is now newer than b */
    cr_expect_eq(put(pc, &src, c, 16), 16, "c fits by evicting");
    PrefixCacheStats s;
    prefix_cache_stats(pc, &s);
    cr_expect(s.bytes <= s.budget, "bytes %lld over budget %lld", (long long)s.bytes,
              (long long)s.budget);
    cr_expect(s.evicted_tokens > 0);
    check_lookup(pc, DTYPE_F32, a, 16, 16, 16);
    check_lookup(pc, DTYPE_F32, c, 16, 16, 16);
    /* b lost its tail: trimmed by what c needed beyond the slack, not more */
    KVCache got;
    kv_open(&got, DTYPE_F32);
    int kb = prefix_cache_lookup(pc, b, 16, 16, &got);
    kvcache_free(&got);
    cr_expect(kb < 16 && kb == 16 - s.evicted_tokens, "b keeps %d tokens, %lld evicted", kb,
              (long long)s.evicted_tokens);
    cr_expect_eq(s.tokens, 32 + kb);
    prefix_cache_free(pc);

    pc = cache_open(&src, empty + 2 * seq + 8);
    cr_assert_eq(put(pc, &src, a, 16), 16);
    cr_assert_eq(put(pc, &src, b, 16), 16);
    check_lookup(pc, DTYPE_F32, a, 16, 3, 3); /* touching a's first node is enough */
    cr_expect_eq(put(pc, &src, c, 16), 16);
    prefix_cache_stats(pc, &s);
    cr_expect(s.bytes <= s.budget);
    cr_expect_eq(s.leaves, 2, "b removed whole");
    cr_expect_eq(s.evicted_tokens, 16);
    check_lookup(pc, DTYPE_F32, b, 16, 16, 0);
    check_lookup(pc, DTYPE_F32, a, 16, 16, 16);
    check_lookup(pc, DTYPE_F32, c, 16, 16, 16);
    prefix_cache_free(pc);
    kvcache_free(&src);
}

Test(prefix_cache, sequence_larger_than_budget) {
    KVCache src;
    kv_open(&src, DTYPE_F32);
    int64_t tb = token_bytes(&src);
    PrefixCache *pc = cache_open(&src, 0);
    PrefixCacheStats s;
    prefix_cache_stats(pc, &s);
    int64_t empty = s.bytes;
    int a[40], b[40];
    for (int i = 0; i < 40; i++) a[i] = 5 + i, b[i] = i < 5 ? 5 + i : 900 + i;
    cr_expect_eq(put(pc, &src, a, 40), 0, "a zero budget stores nothing");
    prefix_cache_free(pc);

    int64_t budget = empty + 10 * tb + 512; /* about ten tokens and a node */
    pc = cache_open(&src, budget);
    put(pc, &src, (int[4]){1, 2, 3, 4}, 4); /* an older sequence: evicted first */
    int r = put(pc, &src, a, 40);
    prefix_cache_stats(pc, &s);
    cr_expect(s.bytes <= s.budget, "bytes %lld over budget %lld", (long long)s.bytes,
              (long long)budget);
    /* as far as fits: one more token and a node (< 256 bytes) would not */
    cr_expect(r * tb <= budget - empty && (r + 1) * tb + 256 > budget - empty,
              "stored %d of 40 tokens of %lld bytes in a budget of %lld over the empty cache", r,
              (long long)tb, (long long)(budget - empty));
    cr_expect_eq(s.tokens, r, "the older sequence made room");
    cr_expect_eq(s.leaves, 1);
    check_lookup(pc, DTYPE_F32, a, 40, 39, r);
    /* a second long one, diverging from a after 5 tokens, replaces a's tail */
    int r2 = put(pc, &src, b, 40);
    prefix_cache_stats(pc, &s);
    cr_expect(s.bytes <= s.budget);
    cr_expect(r2 > 0 && 5 + r2 <= r + 1, "b stored %d new tokens", r2);
    check_lookup(pc, DTYPE_F32, b, 40, 39, 5 + r2);
    check_lookup(pc, DTYPE_F32, a, 40, 39, 5 + (int)s.tokens - (5 + r2));
    prefix_cache_free(pc);
    kvcache_free(&src);
}

#define N_RAND 400
#define MAX_SEQ 24

/* Longest common prefix of ids with any stored sequence, at most max_len. */
static int brute_lookup(int seqs[][MAX_SEQ], const int *lens, int n_seqs, const int *ids, int n,
                        int max_len) {
    int best = 0;
    for (int s = 0; s < n_seqs; s++) {
        int k = 0;
        while (k < n && k < lens[s] && seqs[s][k] == ids[k]) k++;
        if (k > best) best = k;
    }
    return best < max_len ? best : max_len;
}

static void randomized(int64_t budget_seqs, uint64_t seed) {
    KVCache src;
    kv_open(&src, DTYPE_BF16);
    PrefixCache *pc = cache_open(&src, 1 << 24);
    PrefixCacheStats s;
    prefix_cache_stats(pc, &s);
    prefix_cache_free(pc);
    int64_t empty = s.bytes;
    int64_t budget = budget_seqs ? s.bytes + budget_seqs * 8 * token_bytes(&src) : 1 << 24;
    pc = cache_open(&src, budget);
    static int seqs[N_RAND][MAX_SEQ];
    int lens[N_RAND], n_seqs = 0, n_hit = 0;
    Rng st;
    rng_seed(&st, seed);
    for (int it = 0; it < N_RAND; it++) {
        int ids[MAX_SEQ], n = 1 + (int)rng_below(&st, MAX_SEQ);
        /* often start from a stored sequence, over a 3-token alphabet */
        if (n_seqs && rng_below(&st, 2)) {
            int from = (int)rng_below(&st, (uint64_t)n_seqs);
            int keep = (int)rng_below(&st, (uint64_t)lens[from] + 1);
            for (int i = 0; i < n; i++) ids[i] = i < keep ? seqs[from][i] : (int)rng_below(&st, 3);
        } else {
            for (int i = 0; i < n; i++) ids[i] = (int)rng_below(&st, 3);
        }
        int max_len = (int)rng_below(&st, MAX_SEQ + 2);
        int want = brute_lookup(seqs, lens, n_seqs, ids, n, max_len);
        KVCache got, ref;
        kv_open(&got, DTYPE_BF16);
        kv_open(&ref, DTYPE_BF16);
        kv_fill(&ref, ids, n);
        int k = prefix_cache_lookup(pc, ids, n, max_len, &got);
        if (budget_seqs)
            cr_assert(k <= want, "seed %llu step %d: lookup %d, but only %d stored",
                      (unsigned long long)seed, it, k, want);
        else
            cr_assert_eq(k, want, "seed %llu step %d: lookup %d, brute force %d",
                         (unsigned long long)seed, it, k, want);
        cr_assert(rows_equal(&got, &ref, k), "seed %llu step %d: rows", (unsigned long long)seed,
                  it);
        n_hit += k > 0;
        kvcache_free(&got);
        kvcache_free(&ref);
        if (rng_below(&st, 4)) {
            cr_assert_geq(put(pc, &src, ids, n), 0);
            memcpy(seqs[n_seqs], ids, sizeof ids);
            lens[n_seqs++] = n;
            prefix_cache_stats(pc, &s);
            cr_assert(s.bytes <= s.budget, "seed %llu step %d: %lld bytes over %lld",
                      (unsigned long long)seed, it, (long long)s.bytes, (long long)s.budget);
            /* honest bytes: every token's rows and id, and per leaf at least a
             * node with its parent, id and row pointers */
            int64_t floor = empty + s.tokens * token_bytes(&src) +
                            s.leaves * 3 * (int64_t)sizeof(void *);
            cr_assert(s.bytes >= floor, "seed %llu step %d: %lld bytes < %lld for %lld tokens",
                      (unsigned long long)seed, it, (long long)s.bytes, (long long)floor,
                      (long long)s.tokens);
            /* what was just stored (all of it fits) is found whole */
            KVCache g2;
            kv_open(&g2, DTYPE_BF16);
            cr_assert_eq(prefix_cache_lookup(pc, ids, n, n, &g2), n, "seed %llu step %d",
                         (unsigned long long)seed, it);
            kvcache_free(&g2);
        }
    }
    prefix_cache_stats(pc, &s);
    cr_expect_eq(s.lookups, N_RAND + n_seqs);
    cr_expect_eq(s.hits, n_hit + n_seqs);
    if (!budget_seqs) cr_expect_eq(s.evicted_tokens, 0);
    else cr_expect_gt(s.evicted_tokens, 0);
    prefix_cache_free(pc);
    kvcache_free(&src);
}

Test(prefix_cache, randomized_against_brute_force) { randomized(0, 20240917); }
Test(prefix_cache, randomized_under_a_small_budget) { randomized(6, 7); }
