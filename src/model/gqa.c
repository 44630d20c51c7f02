/* SPDX-License-Identifier: MIT */
/* Grouped-query attention of the qwen2 and llama blocks (the R1-Distill
 * models): q, k, v projections (qwen2 with biases), rotate-half RoPE, KV
 * heads shared by H/KV query heads. The cache row of a token is
 * [k (KV, Dh), v (KV, Dh)]. */
#include <string.h>

#include "base/threads.h"
#include "kernels/attention.h"
#include "kernels/attention_decode.h"
#include "kernels/matmul.h"
#include "model/blocks.h"


static void add_bias(float *y, const float *b, int T, int n) {
    if (!b) return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++) y[(size_t)t * n + i] += b[i];
}

int gqa_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, const SeqRows *sr, int layer, Arena *a) {
    const int H = c->num_attention_heads, KV = c->num_key_value_heads, Dh = c->head_dim;
    const int W = 2 * KV * Dh, group = H / KV, N = sr->n_seq, T = sr->start[N];
    float *q = arena_floats(a, (size_t)T * H * Dh);
    float *k = arena_floats(a, (size_t)T * KV * Dh), *v = arena_floats(a, (size_t)T * KV * Dh);
    float *rowbuf = arena_floats(a, (size_t)T * W), *att = arena_floats(a, (size_t)T * H * Dh);
    const float **rows = arena_take(a, (size_t)N * sizeof *rows);
    if (!q || !k || !v || !rowbuf || !att || !rows) return -1;
    float *const qkv[3] = {q, k, v};
    const Mat *const wqkv[3] = {&L->wq, &L->wk, &L->wv};
    matmul_same_x(qkv, x, wqkv, 3, T);
    add_bias(q, L->bq, T, H * Dh);
    add_bias(k, L->bk, T, KV * Dh);
    add_bias(v, L->bv, T, KV * Dh);
    for (int t = 0; t < T; t++) {
        rope_apply_heads(rope, q + (size_t)t * H * Dh, H, Dh, sr->pos[t]);
        rope_apply_heads(rope, k + (size_t)t * KV * Dh, KV, Dh, sr->pos[t]);
        float *row = rowbuf + (size_t)t * W;
        memcpy(row, k + (size_t)t * KV * Dh, (size_t)KV * Dh * sizeof(float));
        memcpy(row + KV * Dh, v + (size_t)t * KV * Dh, (size_t)KV * Dh * sizeof(float));
    }
    int s_max = 0;
    for (int i = 0; i < N; i++) {
        const int r0 = sr->start[i], n = sr->start[i + 1] - r0, S = sr->pos[r0] + n;
        KVCache *kv = sr->kv[i];
        kvcache_store(kv, layer, sr->pos[r0], n, rowbuf + (size_t)r0 * W);
        /* all cached rows 0..S-1 of the sequence, this call's included */
        float *conv = kv->type == DTYPE_F32 ? NULL : arena_floats(a, (size_t)S * W);
        if (kv->type != DTYPE_F32 && !conv) return -1;
        rows[i] = kvcache_rows(kv, layer, 0, S, conv);
        s_max = S > s_max ? S : s_max;
    }
    int t_max = 0;
    for (int i = 0; i < N; i++)
        t_max = sr->start[i + 1] - sr->start[i] > t_max ? sr->start[i + 1] - sr->start[i] : t_max;
    size_t per = (size_t)attention_scratch(t_max, s_max);
    if (per < (size_t)group * s_max) per = (size_t)group * s_max; /* the decode groups' scores */
    float *ws = arena_floats(a, per * threads_max());
    if (!ws) return -1;
    /* One task per (sequence, head): a prompt chunk runs head by head
     * (blocked GEMMs from 32 rows); a sequence decoding one row runs each
     * KV head's group of query heads together over its cache, in the
     * group's first task (kernels/attention_decode.h: each cached row read
     * once for the group), and its other tasks have nothing to do. */
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int i = 0; i < N; i++) {
        for (int h = 0; h < H; h++) {
            const int r0 = sr->start[i], n = sr->start[i + 1] - r0, g = h / group;
            const size_t qo = (size_t)r0 * H * Dh + (size_t)h * Dh;
            float *p = ws + per * thread_id();
            if (n > 1)
                attention_head(att + qo, H * Dh, q + qo, H * Dh, rows[i] + (size_t)g * Dh, W,
                               rows[i] + (size_t)(KV + g) * Dh, W, n, sr->pos[r0], Dh, Dh,
                               rope->softmax_scale, p);
            else if (h % group == 0)
                attention_decode(att + qo, Dh, q + qo, Dh, rows[i] + (size_t)g * Dh, W,
                                 rows[i] + (size_t)(KV + g) * Dh, W, group, sr->pos[r0] + 1, Dh,
                                 Dh, rope->softmax_scale, p);
        }
    }
    matmul(out, att, &L->o_proj, T);
    add_bias(out, L->bo, T, c->hidden_size);
    return 0;
}
