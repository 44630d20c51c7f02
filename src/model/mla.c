/* SPDX-License-Identifier: MIT */
/* Multi-head Latent Attention (DeepSeek-V2 §2.1, V3 §2.1.1):
 *   c_q = RMSNorm(x W_DQ)             (or q = x W_Q without q_lora)
 *   [q_nope, q_rope] = c_q W_UQ,      q_rope rotated
 *   [c_kv, k_rope] = x W_DKV,         c_kv normalised, k_rope rotated (one per token)
 *   k_nope, v = c_kv W_UK, c_kv W_UV  (kv_b_proj)
 * The cache holds [c_kv, k_rope] only. Prefill up-projects the cached latents
 * to per-head keys and values; decode absorbs W_UK into the query
 * (q_c = W_UK^T q_nope) and W_UV into the output (o = W_UV (sum p c_kv)), as
 * the official inference code's attn_impl = "absorb". */
#include <string.h>

#include "base/threads.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/blocks.h"


/* Keys and values of head h for positions 0..S-1 from the latents. */
static void mla_head_kv(float *K, float *V, float *tmp, const float *lat, const float *kpe,
                        const Mat *kvb, int h, int S, int nope, int rope, int vd) {
    const int qk = nope + rope, base = h * (nope + vd);
    if (nope > 0) matmul_rows(tmp, lat, kvb, base, nope, S);
    for (int s = 0; s < S; s++) {
        memcpy(K + (size_t)s * qk, tmp + (size_t)s * nope, (size_t)nope * sizeof(float));
        memcpy(K + (size_t)s * qk + nope, kpe + (size_t)s * rope, (size_t)rope * sizeof(float));
    }
    matmul_rows(V, lat, kvb, base + nope, vd, S);
}

int mla_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, KVCache *kv, int layer, int pos0, int T, MlaPath path,
                Arena *a) {
    const int D = c->hidden_size, H = c->num_attention_heads, R = c->kv_lora_rank;
    const int nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, vd = c->v_head_dim;
    const int qk = nope + rd, W = R + rd, S = pos0 + T;
    const float eps = c->rms_norm_eps;
    (void)D;

    float *q = arena_floats(a, (size_t)T * H * qk);    /* (T, H, qk) */
    float *lat = arena_floats(a, (size_t)T * W);       /* (T, R+rope) new cache rows */
    float *att = arena_floats(a, (size_t)T * H * vd);  /* (T, H, v) */
    if (!q || !lat || !att) return -1;

    if (c->q_lora_rank > 0) {
        float *cq = arena_floats(a, (size_t)T * c->q_lora_rank);
        if (!cq) return -1;
        matmul(cq, x, &L->q_a_proj, T);
        rmsnorm(cq, cq, L->q_a_norm, T, c->q_lora_rank, eps);
        matmul(q, cq, &L->q_b_proj, T);
    } else {
        matmul(q, x, &L->q_proj, T);
    }
    matmul(lat, x, &L->kv_a_proj, T);
    for (int t = 0; t < T; t++) {
        float *row = lat + (size_t)t * W;
        /* only the latent is normalised; the rope key is not */
        rmsnorm(row, row, L->kv_a_norm, 1, R, eps);
        rope_apply(rope, row + R, pos0 + t);
        for (int h = 0; h < H; h++) rope_apply(rope, q + ((size_t)t * H + h) * qk + nope, pos0 + t);
    }
    kvcache_store(kv, layer, pos0, T, lat);

    /* all cached rows 0..S-1, this call's included */
    float *conv = kv->type == DTYPE_F32 ? NULL : arena_floats(a, (size_t)S * W);
    if (kv->type != DTYPE_F32 && !conv) return -1;
    const float *rows = kvcache_rows(kv, layer, 0, S, conv);
    const float scale = rope->softmax_scale;
    const int nt = threads_max();
    int absorbed = path == MLA_ABSORBED || (path == MLA_AUTO && T == 1);

    if (!absorbed) {
        /* latents and rope keys as separate contiguous matrices */
        float *cl = arena_floats(a, (size_t)S * R), *kp = arena_floats(a, (size_t)S * rd);
        size_t per = (size_t)S * (nope + qk + vd + 1);
        float *ws = arena_floats(a, per * nt);
        if (!cl || !kp || !ws) return -1;
        for (int s = 0; s < S; s++) {
            memcpy(cl + (size_t)s * R, rows + (size_t)s * W, (size_t)R * sizeof(float));
            memcpy(kp + (size_t)s * rd, rows + (size_t)s * W + R, (size_t)rd * sizeof(float));
        }
#pragma omp parallel for schedule(dynamic, 1)
        for (int h = 0; h < H; h++) {
            float *tmp = ws + per * thread_id(), *K = tmp + (size_t)S * nope;
            float *V = K + (size_t)S * qk, *sc = V + (size_t)S * vd;
            mla_head_kv(K, V, tmp, cl, kp, &L->kv_b_proj, h, S, nope, rd, vd);
            attention_head(att + (size_t)h * vd, H * vd, q + (size_t)h * qk, H * qk, K, qk, V, vd,
                           T, pos0, qk, vd, scale, sc);
        }
    } else {
        size_t per = (size_t)R * 2 + S;
        float *ws = arena_floats(a, per * nt);
        if (!ws) return -1;
#pragma omp parallel for collapse(2) schedule(static)
        for (int t = 0; t < T; t++) {
            for (int h = 0; h < H; h++) {
                float *qc = ws + per * thread_id(), *oc = qc + R, *sc = oc + R;
                const float *qh = q + ((size_t)t * H + h) * qk;
                const int base = h * (nope + vd), n_s = pos0 + t + 1;
                /* q_c (R) = W_UK[h]^T q_nope: scores against latents directly */
                if (nope > 0) matmul_t(qc, qh, &L->kv_b_proj, base, nope, 1);
                else memset(qc, 0, (size_t)R * sizeof(float));
                for (int s = 0; s < n_s; s++) {
                    const float *r = rows + (size_t)s * W;
                    float d = 0, e = 0;
                    for (int i = 0; i < R; i++) d += qc[i] * r[i];
                    for (int i = 0; i < rd; i++) e += qh[nope + i] * r[R + i];
                    sc[s] = (d + e) * scale;
                }
                softmax(sc, n_s);
                memset(oc, 0, (size_t)R * sizeof(float));
                for (int s = 0; s < n_s; s++) {
                    const float p = sc[s], *r = rows + (size_t)s * W;
                    for (int i = 0; i < R; i++) oc[i] += p * r[i];
                }
                /* o_h (v) = W_UV[h] o_c */
                matmul_rows(att + ((size_t)t * H + h) * vd, oc, &L->kv_b_proj, base + nope, vd, 1);
            }
        }
    }
    matmul(out, att, &L->o_proj, T);
    return 0;
}
