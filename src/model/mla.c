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
#include "kernels/attention_decode.h"
#include "kernels/dot.h"
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

int mla_saved_alloc(MlaSaved *s, const ModelConfig *c, int n_seq, int seq_len, Arena *a) {
    const size_t T = (size_t)n_seq * seq_len, H = c->num_attention_heads;
    const size_t qk = c->qk_nope_head_dim + c->qk_rope_head_dim, W = c->kv_lora_rank + c->qk_rope_head_dim;
    memset(s, 0, sizeof *s);
    if (c->q_lora_rank > 0) {
        s->cq = arena_floats(a, T * c->q_lora_rank);
        s->cq_n = arena_floats(a, T * c->q_lora_rank);
        if (!s->cq || !s->cq_n) return -1;
    }
    s->kva = arena_floats(a, T * W);
    s->q = arena_floats(a, T * H * qk);
    s->lat = arena_floats(a, T * W);
    s->kv = arena_floats(a, T * H * (c->qk_nope_head_dim + c->v_head_dim));
    s->p = arena_floats(a, (size_t)n_seq * H * seq_len * seq_len);
    s->att = arena_floats(a, T * H * c->v_head_dim);
    return s->kva && s->q && s->lat && s->kv && s->p && s->att ? 0 : -1;
}

int mla_project(float *q, float *lat, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, const int *pos, int T, MlaSaved *sv, Arena *a) {
    const int H = c->num_attention_heads, R = c->kv_lora_rank, ql = c->q_lora_rank;
    const int nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, qk = nope + rd, W = R + rd;
    const float eps = c->rms_norm_eps;
    if (ql > 0) {
        float *cq = sv ? sv->cq : arena_floats(a, (size_t)T * ql);
        float *cqn = sv ? sv->cq_n : cq;
        if (!cq) return -1;
        float *const y[2] = {cq, lat};
        const Mat *const w[2] = {&L->q_a_proj, &L->kv_a_proj};
        matmul_same_x(y, x, w, 2, T);
        rmsnorm(cqn, cq, L->q_a_norm, T, ql, eps);
        matmul(q, cqn, &L->q_b_proj, T);
    } else {
        float *const y[2] = {q, lat};
        const Mat *const w[2] = {&L->q_proj, &L->kv_a_proj};
        matmul_same_x(y, x, w, 2, T);
    }
    if (sv) memcpy(sv->kva, lat, (size_t)T * W * sizeof(float));
    /* the angles once per position when the rows share few of them (a
     * training batch, a prompt), else row by row (a batch of decodes) */
    int p0 = T > 0 ? pos[0] : 0, p1 = p0;
    for (int t = 1; t < T; t++) p0 = pos[t] < p0 ? pos[t] : p0, p1 = pos[t] > p1 ? pos[t] : p1;
    float *cs = T >= 64 && p1 - p0 < T ? arena_floats(a, (size_t)(p1 - p0 + 1) * rope->dim) : NULL;
    if (cs) rope_table(rope, p0, p1 - p0 + 1, cs);
#pragma omp parallel for schedule(static) if (T >= 64)
    for (int t = 0; t < T; t++) {
        float *row = lat + (size_t)t * W, *qt = q + (size_t)t * H * qk + nope;
        /* only the latent is normalised; the rope key is not */
        rmsnorm(row, row, L->kv_a_norm, 1, R, eps);
        if (cs) {
            const float *ang = cs + (size_t)(pos[t] - p0) * rope->dim;
            rope_rotate_cs(rope, ang, row + R, 1, 0, 1.0f);
            rope_rotate_cs(rope, ang, qt, H, qk, 1.0f);
        } else {
            rope_apply(rope, row + R, pos[t]);
            rope_apply_heads(rope, qt, H, qk, pos[t]);
        }
    }
    return 0;
}

int mla_forward_train(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                      const Rope *rope, int n_seq, int seq_len, MlaSaved *sv, Arena *a) {
    const int H = c->num_attention_heads, R = c->kv_lora_rank, T = n_seq * seq_len;
    const int nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, vd = c->v_head_dim;
    const int qk = nope + rd, W = R + rd, kvw = nope + vd;
    /* each sequence at positions 0..seq_len-1 */
    int *pos = arena_take(a, (size_t)T * sizeof(int));
    if (!pos) return -1;
    for (int t = 0; t < T; t++) pos[t] = t % seq_len;
    if (mla_project(sv->q, sv->lat, x, L, c, rope, pos, T, sv, a) != 0) return -1;
    /* keys' nope part and values of every head in one product: (T, H (nope + v)) */
    float *lat_c = arena_floats(a, (size_t)T * R);
    float *K = arena_floats(a, (size_t)n_seq * H * seq_len * qk);
    if (!lat_c || !K) return -1;
    for (int t = 0; t < T; t++)
        memcpy(lat_c + (size_t)t * R, sv->lat + (size_t)t * W, (size_t)R * sizeof(float));
    matmul(sv->kv, lat_c, &L->kv_b_proj, T);
    const size_t SS = (size_t)seq_len * seq_len;
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if (n_seq * H * SS >= 1 << 14)
    for (int b = 0; b < n_seq; b++) {
        for (int h = 0; h < H; h++) {
            /* this head's keys [k_nope, k_rope] contiguous, the rope key shared by heads */
            float *Kh = K + ((size_t)b * H + h) * seq_len * qk;
            for (int s = 0; s < seq_len; s++) {
                const size_t row = (size_t)b * seq_len + s;
                memcpy(Kh + (size_t)s * qk, sv->kv + (row * H + h) * kvw, (size_t)nope * sizeof(float));
                memcpy(Kh + (size_t)s * qk + nope, sv->lat + row * W + R, (size_t)rd * sizeof(float));
            }
            const size_t r0 = (size_t)b * seq_len;
            attention_head_train(sv->att + (r0 * H + h) * vd, H * vd, sv->p + ((size_t)b * H + h) * SS,
                                 sv->q + (r0 * H + h) * qk, H * qk, Kh, qk,
                                 sv->kv + (r0 * H + h) * kvw + nope, H * kvw, seq_len, qk, vd,
                                 rope->softmax_scale);
        }
    }
    matmul(out, sv->att, &L->o_proj, T);
    return 0;
}

/* The prefill path for one sequence: its T queries q (T, H, qk) at
 * positions pos0.. against the cached rows (S = pos0 + T, R + rope each),
 * every head's keys and values up-projected from the latents; att (T, H, v).
 * Threads split the heads. */
static int mla_attend_prefill(float *att, const float *q, const float *rows, int S, int pos0,
                              int T, const LayerWeights *L, const ModelConfig *c, const Rope *rope,
                              Arena *a) {
    const int H = c->num_attention_heads, R = c->kv_lora_rank;
    const int nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, vd = c->v_head_dim;
    const int qk = nope + rd, W = R + rd, nt = threads_max();
    /* latents and rope keys as separate contiguous matrices */
    float *cl = arena_floats(a, (size_t)S * R), *kp = arena_floats(a, (size_t)S * rd);
    size_t per = (size_t)S * (nope + qk + vd) + (size_t)attention_scratch(T, S);
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
        attention_head(att + (size_t)h * vd, H * vd, q + (size_t)h * qk, H * qk, K, qk, V, vd, T,
                       pos0, qk, vd, rope->softmax_scale, sc);
    }
    return 0;
}

/* Heads h0..h1-1 of absorbed row t (of T) at position pos against its
 * cached rows: qa[h] = [W_UK[h]^T q_nope, q_rope] into ws (then the
 * scores), their latent outputs into oc (H, T, R). */
static void absorbed_row(float *oc, float *ws, const float *qu, const float *q, const float *rows,
                         int t, int T, int h0, int h1, int pos, const ModelConfig *c, float scale) {
    const int H = c->num_attention_heads, R = c->kv_lora_rank;
    const int nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, qk = nope + rd, W = R + rd;
    float *qa = ws, *p = qa + (size_t)(h1 - h0) * W; /* (heads, W), (heads, S) */
    for (int h = h0; h < h1; h++) {
        memcpy(qa + (size_t)(h - h0) * W, qu + ((size_t)h * T + t) * R, (size_t)R * sizeof(float));
        memcpy(qa + (size_t)(h - h0) * W + R, q + ((size_t)t * H + h) * qk + nope,
               (size_t)rd * sizeof(float));
    }
    if (h1 > h0)
        attention_decode(oc + ((size_t)h0 * T + t) * R, (size_t)T * R, qa, W, rows, W, rows, W,
                         h1 - h0, pos + 1, W, R, scale, p);
}

long mla_heads_split_min = 1L << 16;

/* Head h's output rows: att[t][h] (v) = W_UV[h] oc[h][t] for the absorbed
 * rows t; oh: scratch of (T, v). */
static void absorbed_out(float *att, float *oh, const float *oc, const int *seq, int T, int h,
                         const LayerWeights *L, const ModelConfig *c) {
    const int H = c->num_attention_heads, R = c->kv_lora_rank;
    const int nope = c->qk_nope_head_dim, vd = c->v_head_dim;
    if (L->wuv.data) matmul_rows(oh, oc + (size_t)h * T * R, &L->wuv, h * vd, vd, T);
    else matmul_rows(oh, oc + (size_t)h * T * R, &L->kv_b_proj, h * (nope + vd) + nope, vd, T);
    for (int t = 0; t < T; t++)
        if (seq[t] >= 0)
            memcpy(att + ((size_t)t * H + h) * vd, oh + (size_t)t * vd, (size_t)vd * sizeof(float));
}

/* The absorbed path for every row t with seq[t] >= 0: query t (H, qk) at
 * position pos[t] against rows[seq[t]], the cached rows 0..pos[t] of its
 * sequence; att (T, H, v). With W_UK absorbed, head h attends to the
 * cached rows [c_kv, k_rope] themselves as keys, with the query
 * [W_UK[h]^T q_nope, q_rope], and takes the latents c_kv as values; W_UV[h]
 * then maps the result to the head's output, one product per head over all
 * rows. Threads split the (row, head) pairs; s_max bounds the positions + 1. */
static int mla_attend_absorbed(float *att, const float *q, const float *const *rows,
                               const int *seq, const int *pos, int T, int s_max,
                               const LayerWeights *L, const ModelConfig *c, const Rope *rope,
                               Arena *a) {
    const int H = c->num_attention_heads, R = c->kv_lora_rank;
    const int nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, vd = c->v_head_dim;
    const int qk = nope + rd, W = R + rd;
    const float scale = rope->softmax_scale;
    const size_t per = (size_t)H * (W + s_max);
    float *ws = arena_floats(a, per * threads_max());
    float *oc = arena_floats(a, (size_t)H * T * R); /* (H, T, R) each head's latent output */
    float *ohs = arena_floats(a, (size_t)threads_max() * T * vd); /* (T, v) one head's output, per thread */
    float *qn = arena_floats(a, (size_t)H * T * (nope > 0 ? nope : 1)); /* (H, T, nope) */
    float *qu = arena_floats(a, (size_t)H * T * R); /* (H, T, R) W_UK[h]^T q_nope */
    if (!ws || !oc || !ohs || !qn || !qu) return -1;
    /* The absorbed queries of all rows, one product per head. A quantised
     * model has W_UK[h]^T stored apart (wuk_t, weights_mla_decode_copies):
     * an ordinary product per head. Else, with several rows, W_UK in another
     * type than F32 is converted once per step into a float copy, so the
     * products take the packed GEMM; one row reads it as stored. */
    if (nope > 0) {
        Mat wuk = L->kv_b_proj;
        if (!L->wuk_t.data && wuk.type != QTYPE_F32 && T >= 2) {
            float *f = arena_floats(a, (size_t)wuk.rows * R);
            if (!f) return -1;
            for (int h = 0; h < H; h++)
                for (int i = 0; i < nope; i++) {
                    const int r = h * (nope + vd) + i;
                    mat_dequantize_row(&L->kv_b_proj, r, f + (size_t)r * R);
                }
            wuk = mat_f32(f, wuk.rows, wuk.cols);
        }
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++)
                memcpy(qn + ((size_t)h * T + t) * nope, q + ((size_t)t * H + h) * qk,
                       (size_t)nope * sizeof(float));
#pragma omp parallel for schedule(static) if (H > 1 && (long)T * nope * R * H >= 1L << 16)
        for (int h = 0; h < H; h++) {
            float *qh = qu + (size_t)h * T * R, *xh = qn + (size_t)h * T * nope;
            if (L->wuk_t.data) matmul_rows(qh, xh, &L->wuk_t, h * R, R, T);
            else matmul_t(qh, xh, &wuk, h * (nope + vd), nope, T);
        }
    } else {
        memset(qu, 0, (size_t)H * T * R * sizeof(float));
    }
    /* Row by row, all heads together over the row's latent cache: the
     * fused kernel (kernels/attention_decode.h), keys and values both the
     * cached rows, the values their first R numbers. One row alone (one
     * sequence decoding) would leave the other threads waiting: its heads
     * are split over them instead, each reading the cache for its own. */
    const int split_heads = T == 1 && seq[0] >= 0 && H > 1 && threads_max() > 1 &&
                            !threads_in_parallel() && (long)H * (pos[0] + 1) * W >= mla_heads_split_min;
    if (split_heads) {
#pragma omp parallel
        {
            const int nth = threads_in_team(), i = thread_id();
            absorbed_row(oc, ws + per * i, qu, q, rows[seq[0]], 0, 1, H * i / nth, H * (i + 1) / nth,
                         pos[0], c, scale);
        }
    } else {
#pragma omp parallel for schedule(dynamic, 1) if (T > 1)
        for (int t = 0; t < T; t++) {
            if (seq[t] < 0) {
                for (int h = 0; h < H; h++) memset(oc + ((size_t)h * T + t) * R, 0, (size_t)R * sizeof(float));
                continue;
            }
            absorbed_row(oc, ws + per * thread_id(), qu, q, rows[seq[t]], t, T, 0, H, pos[t], c, scale);
        }
    }
    /* o_h (T, v) = o_c W_UV[h]^T, the heads side by side when each product
     * is too small to split; rows of other paths are overwritten by their own */
    const int heads_par = H > 1 && !threads_in_parallel() && (long)T * vd * R * H >= 1L << 16 &&
                          (long)T * vd * R < 1L << 20;
    if (heads_par) {
#pragma omp parallel for schedule(static)
        for (int h = 0; h < H; h++)
            absorbed_out(att, ohs + (size_t)thread_id() * T * vd, oc, seq, T, h, L, c);
    } else {
        for (int h = 0; h < H; h++) absorbed_out(att, ohs, oc, seq, T, h, L, c);
    }
    return 0;
}

int mla_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, const SeqRows *sr, int layer, MlaPath path, Arena *a) {
    const int H = c->num_attention_heads, R = c->kv_lora_rank;
    const int nope = c->qk_nope_head_dim, rd = c->qk_rope_head_dim, vd = c->v_head_dim;
    const int qk = nope + rd, W = R + rd, N = sr->n_seq, T = sr->start[N];

    float *q = arena_floats(a, (size_t)T * H * qk);    /* (T, H, qk) */
    float *lat = arena_floats(a, (size_t)T * W);       /* (T, R+rope) new cache rows */
    float *att = arena_floats(a, (size_t)T * H * vd);  /* (T, H, v) */
    const float **rows = arena_take(a, (size_t)N * sizeof *rows);
    int *seq = arena_take(a, (size_t)T * sizeof(int)); /* row -> its sequence on the absorbed path */
    if (!q || !lat || !att || !rows || !seq) return -1;
    if (mla_project(q, lat, x, L, c, rope, sr->pos, T, NULL, a) != 0) return -1;

    int n_absorbed = 0, s_max = 0;
    for (int i = 0; i < N; i++) {
        const int r0 = sr->start[i], n = sr->start[i + 1] - r0, pos0 = sr->pos[r0], S = pos0 + n;
        KVCache *kv = sr->kv[i];
        kvcache_store(kv, layer, pos0, n, lat + (size_t)r0 * W);
        /* all cached rows 0..S-1 of the sequence, this call's included */
        float *conv = kv->type == DTYPE_F32 ? NULL : arena_floats(a, (size_t)S * W);
        if (kv->type != DTYPE_F32 && !conv) return -1;
        rows[i] = kvcache_rows(kv, layer, 0, S, conv);
        const int absorbed = path == MLA_ABSORBED || (path == MLA_AUTO && n == 1);
        for (int t = r0; t < r0 + n; t++) seq[t] = absorbed ? i : -1;
        if (absorbed) {
            n_absorbed += n;
            s_max = S > s_max ? S : s_max;
        } else if (mla_attend_prefill(att + (size_t)r0 * H * vd, q + (size_t)r0 * H * qk, rows[i], S,
                                      pos0, n, L, c, rope, a) != 0) {
            return -1;
        }
    }
    if (n_absorbed > 0 &&
        mla_attend_absorbed(att, q, rows, seq, sr->pos, T, s_max, L, c, rope, a) != 0)
        return -1;
    matmul(out, att, &L->o_proj, T);
    return 0;
}
