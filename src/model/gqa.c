/* SPDX-License-Identifier: MIT */
/* Grouped-query attention of the qwen2 and llama blocks (the R1-Distill
 * models): q, k, v projections (qwen2 with biases), rotate-half RoPE, KV
 * heads shared by H/KV query heads. The cache row of a token is
 * [k (KV, Dh), v (KV, Dh)]. */
#include <string.h>

#include "base/threads.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "model/blocks.h"


static void add_bias(float *y, const float *b, int T, int n) {
    if (!b) return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

int gqa_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, KVCache *kv, int layer, int pos0, int T, Arena *a) {
    const int H = c->num_attention_heads, KV = c->num_key_value_heads, Dh = c->head_dim;
    const int W = 2 * KV * Dh, S = pos0 + T, group = H / KV;
    float *q = arena_floats(a, (size_t)T * H * Dh);
    float *k = arena_floats(a, (size_t)T * KV * Dh), *v = arena_floats(a, (size_t)T * KV * Dh);
    float *rowbuf = arena_floats(a, (size_t)T * W), *att = arena_floats(a, (size_t)T * H * Dh);
    if (!q || !k || !v || !rowbuf || !att) return -1;
    matmul(q, x, &L->wq, T);
    matmul(k, x, &L->wk, T);
    matmul(v, x, &L->wv, T);
    add_bias(q, L->bq, T, H * Dh);
    add_bias(k, L->bk, T, KV * Dh);
    add_bias(v, L->bv, T, KV * Dh);
    for (int t = 0; t < T; t++) {
        rope_apply_heads(rope, q + (size_t)t * H * Dh, H, Dh, pos0 + t);
        rope_apply_heads(rope, k + (size_t)t * KV * Dh, KV, Dh, pos0 + t);
        float *row = rowbuf + (size_t)t * W;
        memcpy(row, k + (size_t)t * KV * Dh, (size_t)KV * Dh * sizeof(float));
        memcpy(row + KV * Dh, v + (size_t)t * KV * Dh, (size_t)KV * Dh * sizeof(float));
    }
    kvcache_store(kv, layer, pos0, T, rowbuf);
    float *conv = kv->type == DTYPE_F32 ? NULL : arena_floats(a, (size_t)S * W);
    float *ws = arena_floats(a, (size_t)S * threads_max());
    if ((kv->type != DTYPE_F32 && !conv) || !ws) return -1;
    const float *rows = kvcache_rows(kv, layer, 0, S, conv);
#pragma omp parallel for schedule(dynamic, 1)
    for (int h = 0; h < H; h++) {
        const int g = h / group;
        attention_head(att + (size_t)h * Dh, H * Dh, q + (size_t)h * Dh, H * Dh,
                       rows + (size_t)g * Dh, W, rows + (size_t)(KV + g) * Dh, W, T, pos0, Dh, Dh,
                       rope->softmax_scale, ws + (size_t)S * thread_id());
    }
    matmul(out, att, &L->o_proj, T);
    add_bias(out, L->bo, T, c->hidden_size);
    return 0;
}
