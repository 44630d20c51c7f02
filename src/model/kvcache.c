/* SPDX-License-Identifier: MIT */
/* KV cache storage (see kvcache.h). */
#include "model/kvcache.h"

#include <assert.h>
#include <string.h>

#include "base/mem.h"

int64_t kvcache_bytes_per_token(const ModelConfig *cfg, DType type) {
    return (int64_t)cfg->num_hidden_layers * config_kv_numbers_per_token_layer(cfg) *
           (int64_t)dtype_size(type);
}

int kvcache_init(KVCache *kv, const ModelConfig *cfg, int n_ctx, DType type, int with_mtp,
                 Err *err) {
    memset(kv, 0, sizeof *kv);
    if (type != DTYPE_F32 && type != DTYPE_BF16)
        return err_set(err, "KV cache type must be f32 or bf16, not %s", dtype_name(type));
    if (n_ctx < 1) return err_set(err, "KV cache needs a context of at least 1 token");
    kv->n_layers = cfg->num_hidden_layers + (with_mtp ? cfg->num_nextn_predict_layers : 0);
    kv->n_ctx = n_ctx;
    kv->width = (int)config_kv_numbers_per_token_layer(cfg);
    kv->type = type;
    size_t n;
    if (size_mul((size_t)kv->n_layers * (size_t)kv->width, (size_t)n_ctx, &n) ||
        size_mul(n, dtype_size(type), &kv->bytes))
        return err_set(err, "KV cache of %d tokens is too large", n_ctx);
    kv->data = mem_alloc(kv->bytes);
    if (!kv->data) {
        double gb = (double)kv->bytes / 1e9;
        memset(kv, 0, sizeof *kv);
        return err_set(err, "cannot allocate %.2f GB for a KV cache of %d tokens", gb, n_ctx);
    }
    return 0;
}

void kvcache_free(KVCache *kv) {
    mem_free(kv->data);
    memset(kv, 0, sizeof *kv);
}

static size_t row_index(const KVCache *kv, int layer, int pos) {
    return ((size_t)layer * kv->n_ctx + (size_t)pos) * kv->width;
}

void kvcache_store(KVCache *kv, int layer, int pos, int n, const float *src) {
    assert(layer >= 0 && layer < kv->n_layers && pos >= 0 && pos + n <= kv->n_ctx);
    size_t i0 = row_index(kv, layer, pos), count = (size_t)n * kv->width;
    if (kv->type == DTYPE_F32) {
        memcpy((float *)kv->data + i0, src, count * sizeof(float));
    } else {
        uint16_t *d = (uint16_t *)kv->data + i0;
        for (size_t i = 0; i < count; i++) d[i] = f32_to_bf16(src[i]);
    }
}

const float *kvcache_rows(const KVCache *kv, int layer, int pos, int n, float *tmp) {
    assert(layer >= 0 && layer < kv->n_layers && pos >= 0 && pos + n <= kv->n_ctx);
    size_t i0 = row_index(kv, layer, pos);
    if (kv->type == DTYPE_F32) return (const float *)kv->data + i0;
    dtype_to_f32(tmp, (const uint16_t *)kv->data + i0, DTYPE_BF16, (size_t)n * kv->width);
    return tmp;
}
