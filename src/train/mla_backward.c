/* SPDX-License-Identifier: MIT */
/* Backward of MLA's training forward (model/mla.c, mla_forward_train),
 * step by step in reverse: o_proj, per-head causal attention (the rope key
 * shared by all heads collects every head's gradient), kv_b_proj
 * (up-projection of the latents), kv_a_layernorm and the rope rotations,
 * kv_a_proj, and the query path (q_b_proj, q_a_layernorm, q_a_proj, or
 * q_proj). DeepSeek-V2 §2.1 for the forward equations. */
#include <string.h>

#include "base/threads.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "train/backward.h"

int mla_backward(float *dx, const float *dout, const float *x, const LayerWeights *L,
                 const LayerWeights *G, const ModelConfig *c, const Rope *rope, int n_seq,
                 int seq_len, const MlaSaved *sv, Arena *a) {
    const int H = c->num_attention_heads, R = c->kv_lora_rank, T = n_seq * seq_len;
    const int nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, vd = c->v_head_dim;
    const int qk = nope + rd, W = R + rd, kvw = nope + vd, ql = c->q_lora_rank;
    const float eps = c->rms_norm_eps;
    const size_t SS = (size_t)seq_len * seq_len, head_k = (size_t)seq_len * qk;
    float *datt = arena_floats(a, (size_t)T * H * vd);
    float *dq = arena_floats(a, (size_t)T * H * qk);
    float *dkv = arena_floats(a, (size_t)T * H * kvw);
    float *K = arena_floats(a, (size_t)n_seq * H * head_k);
    float *dK = arena_floats(a, (size_t)n_seq * H * head_k);
    float *dp = arena_floats(a, (size_t)threads_max() * SS);
    float *lat_c = arena_floats(a, (size_t)T * R), *dlat = arena_floats(a, (size_t)T * R);
    float *dkva = arena_floats(a, (size_t)T * W);
    if (!datt || !dq || !dkv || !K || !dK || !dp || !lat_c || !dlat || !dkva) return -1;

    /* o_proj */
    memset(datt, 0, (size_t)T * H * vd * sizeof(float));
    matmul_backward(datt, grad_of(G->o_proj.data), dout, sv->att, &L->o_proj, T);

    /* attention, one (sequence, head) pair per task */
    memset(dq, 0, (size_t)T * H * qk * sizeof(float));
    memset(dkv, 0, (size_t)T * H * kvw * sizeof(float));
    memset(dK, 0, (size_t)n_seq * H * head_k * sizeof(float));
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (n_seq * H * SS >= 1 << 14)
    for (int b = 0; b < n_seq; b++) {
        for (int h = 0; h < H; h++) {
            float *Kh = K + ((size_t)b * H + h) * head_k, *dKh = dK + ((size_t)b * H + h) * head_k;
            const size_t r0 = (size_t)b * seq_len;
            for (int s = 0; s < seq_len; s++) {
                const size_t row = r0 + s;
                memcpy(Kh + (size_t)s * qk, sv->kv + (row * H + h) * kvw, (size_t)nope * sizeof(float));
                memcpy(Kh + (size_t)s * qk + nope, sv->lat + row * W + R, (size_t)rd * sizeof(float));
            }
            /* dV lands in dkv directly; dK in this head's own buffer */
            attention_head_backward(dq + (r0 * H + h) * qk, dKh, dkv + (r0 * H + h) * kvw + nope,
                                    datt + (r0 * H + h) * vd, H * vd,
                                    sv->p + ((size_t)b * H + h) * SS, sv->q + (r0 * H + h) * qk,
                                    H * qk, Kh, qk, sv->kv + (r0 * H + h) * kvw + nope, H * kvw,
                                    seq_len, qk, vd, rope->softmax_scale,
                                    dp + (size_t)thread_id() * SS);
        }
    }
    /* scatter dK: the nope part to its head's slot of dkv, the rope part
     * summed over heads into the shared rope key */
    memset(dkva, 0, (size_t)T * W * sizeof(float));
#pragma omp parallel for schedule(static) if (T >= 64)
    for (int row = 0; row < T; row++) {
        const int b = row / seq_len, s = row % seq_len;
        float *kr = dkva + (size_t)row * W + R;
        for (int h = 0; h < H; h++) { /* heads in order: the same sums on any threads */
            const float *g = dK + ((size_t)b * H + h) * head_k + (size_t)s * qk;
            float *kn = dkv + ((size_t)row * H + h) * kvw;
            for (int i = 0; i < nope; i++) kn[i] += g[i];
            for (int i = 0; i < rd; i++) kr[i] += g[nope + i];
        }
    }

    /* kv_b_proj: kv (T, H kvw) = lat_c (T, R) W^T */
    for (int t = 0; t < T; t++)
        memcpy(lat_c + (size_t)t * R, sv->lat + (size_t)t * W, (size_t)R * sizeof(float));
    memset(dlat, 0, (size_t)T * R * sizeof(float));
    matmul_backward(dlat, grad_of(G->kv_b_proj.data), dkv, lat_c, &L->kv_b_proj, T);

    /* kv_a_layernorm on the latent (its input gathered into lat_c, free
     * now, its gradient into dlat_n), rope on the key, then kv_a_proj */
    float *dlat_n = arena_floats(a, (size_t)T * R);
    if (!dlat_n) return -1;
    for (int t = 0; t < T; t++)
        memcpy(lat_c + (size_t)t * R, sv->kva + (size_t)t * W, (size_t)R * sizeof(float));
    memset(dlat_n, 0, (size_t)T * R * sizeof(float));
    rmsnorm_backward(dlat_n, grad_of(G->kv_a_norm), dlat, lat_c, L->kv_a_norm, T, R, eps);
    float *cs = arena_floats(a, (size_t)seq_len * rope->dim); /* angles by position */
    if (!cs) return -1;
    rope_table(rope, 0, seq_len, cs);
#pragma omp parallel for schedule(static) if (T >= 64)
    for (int t = 0; t < T; t++) {
        float *row = dkva + (size_t)t * W;
        const float *ang = cs + (size_t)(t % seq_len) * rope->dim;
        memcpy(row, dlat_n + (size_t)t * R, (size_t)R * sizeof(float)); /* the latent part was 0 */
        rope_rotate_cs(rope, ang, row + R, 1, 0, -1.0f);
        rope_rotate_cs(rope, ang, dq + (size_t)t * H * qk + nope, H, qk, -1.0f);
    }
    matmul_backward(dx, grad_of(G->kv_a_proj.data), dkva, x, &L->kv_a_proj, T);

    /* the query path */
    if (ql > 0) {
        float *dcqn = arena_floats(a, (size_t)T * ql), *dcq = arena_floats(a, (size_t)T * ql);
        if (!dcqn || !dcq) return -1;
        memset(dcqn, 0, (size_t)T * ql * sizeof(float));
        memset(dcq, 0, (size_t)T * ql * sizeof(float));
        matmul_backward(dcqn, grad_of(G->q_b_proj.data), dq, sv->cq_n, &L->q_b_proj, T);
        rmsnorm_backward(dcq, grad_of(G->q_a_norm), dcqn, sv->cq, L->q_a_norm, T, ql, eps);
        matmul_backward(dx, grad_of(G->q_a_proj.data), dcq, x, &L->q_a_proj, T);
    } else {
        matmul_backward(dx, grad_of(G->q_proj.data), dq, x, &L->q_proj, T);
    }
    return 0;
}
