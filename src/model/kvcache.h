/* SPDX-License-Identifier: MIT */
/* The KV cache of one sequence. MLA layers keep, per token, only the
 * normalised latent c_kv (R) and the rotated shared rope key (rope dim):
 * R + rope numbers, nothing more (DeepSeek-V2 §2.1.2). GQA layers keep K and
 * V of each KV head. Storage is F32 (exact) or BF16 (half the memory). */
#ifndef WHALE_KVCACHE_H
#define WHALE_KVCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/err.h"
#include "io/config.h"

typedef struct KVCache {
    int n_layers;        /* decoder layers (+ MTP modules when asked for) */
    int n_ctx;           /* capacity in tokens */
    int len;             /* tokens stored (the next position) */
    int width;           /* numbers per token per layer */
    DType type;          /* F32 or BF16 */
    void *data;          /* (n_layers, n_ctx, width) of type */
    size_t bytes;        /* allocated bytes of data */
} KVCache;

/* Bytes one token occupies in the cache of the main layers at the given
 * storage type. This is what kvcache_init allocates per token (without
 * with_mtp; MTP layers add their own rows). */
int64_t kvcache_bytes_per_token(const ModelConfig *cfg, DType type);

/* Allocate a cache for n_ctx tokens. with_mtp adds the MTP modules' layers
 * after the main ones. 0 or -1 with err (bad type, out of memory). */
int kvcache_init(KVCache *kv, const ModelConfig *cfg, int n_ctx, DType type, int with_mtp,
                 Err *err);
void kvcache_free(KVCache *kv);

/* Store src (n, width) floats as positions pos..pos+n-1 of layer. */
void kvcache_store(KVCache *kv, int layer, int pos, int n, const float *src);

/* Rows pos..pos+n-1 of layer as floats: a pointer into the cache when it
 * is F32, else converted into tmp (n, width), which is returned. */
const float *kvcache_rows(const KVCache *kv, int layer, int pos, int n, float *tmp);

#endif
