/* SPDX-License-Identifier: MIT */
/* Context caching: the KV rows of prompts seen before, kept in a prefix
 * tree over token ids so a new prompt that shares a prefix with an earlier
 * one copies those rows instead of prefilling them. With MLA a row is only
 * the latent + rope key (kv_lora_rank + rope dim numbers per layer), so the
 * cache holds many more prompts than a full-K/V cache would. Least recently
 * used leaves are evicted to stay under a byte budget. Owned by the serving
 * engine's worker thread: not thread-safe. */
#ifndef WHALE_PREFIX_CACHE_H
#define WHALE_PREFIX_CACHE_H

#include <stdint.h>

#include "base/err.h"
#include "model/kvcache.h"

typedef struct PrefixCache PrefixCache;

/* A cache for KV caches of this geometry (n_layers layers of width numbers
 * per token, stored as type: the KVCache fields), holding at most
 * budget_bytes of rows and bookkeeping. 0 with *out, or -1 with err. */
int prefix_cache_init(PrefixCache **out, int n_layers, int width, DType type,
                      int64_t budget_bytes, Err *err);
void prefix_cache_free(PrefixCache *pc); /* NULL allowed */

/* The longest stored prefix of ids (n), at most max_len tokens long: its
 * rows are copied into positions 0..k-1 of every layer of kv (same
 * geometry, n_ctx >= k) and kv->len is set to k. The path is marked as
 * recently used. Returns k (0: nothing shared; kv->len set to 0). */
int prefix_cache_lookup(PrefixCache *pc, const int *ids, int n, int max_len, KVCache *kv);

/* Store the rows of positions 0..n-1 of kv (kv->len >= n) under ids (n),
 * sharing what is already stored, then evict least recently used leaves
 * (never the path just stored) until under budget: the oldest leaf loses
 * only as many tokens from its end as needed, or goes whole. A sequence
 * whose own rows exceed the budget is stored only as far as fits. Returns
 * the tokens newly stored and kept (0 when all were there), or -1 out of
 * memory (the cache is left valid and under budget). */
int prefix_cache_insert(PrefixCache *pc, const int *ids, int n, const KVCache *kv);

typedef struct PrefixCacheStats {
    int64_t bytes;      /* rows + nodes */
    int64_t budget;
    int64_t tokens;     /* tokens whose rows are stored */
    int64_t leaves;     /* distinct stored sequences (leaves of the tree) */
    int64_t hits, lookups; /* lookups that shared at least one token, all lookups */
    int64_t evicted_tokens;
} PrefixCacheStats;
void prefix_cache_stats(const PrefixCache *pc, PrefixCacheStats *s);

#endif
