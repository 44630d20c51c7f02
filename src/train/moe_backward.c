/* SPDX-License-Identifier: MIT */
/* Backward of the SwiGLU FFN and DeepSeekMoE (model/moe.c). Gradients flow
 * through each selected expert (dispatched by expert, one product per
 * expert as in the forward), through the combine weights into the router
 * affinities (normalised or not, times routed_scaling_factor), through the
 * sequence-wise balance loss (DeepSeek-V3 eq. 17-20), and from the
 * affinities (sigmoid or softmax) into the router. The selection itself and
 * the correction bias carry no gradient. With expert parallelism the
 * experts' part runs where their forward ran: the output gradients travel
 * to the experts' ranks and the input gradients come back (moe_ep.c), and
 * each rank's expert gradients hold all ranks' tokens (zero for the
 * experts of other ranks, so the data-parallel sum completes them). */
#include <math.h>
#include <string.h>

#include "kernels/matmul.h"
#include "base/threads.h"
#include "kernels/ops.h"
#include "train/backward.h"

void ffn_backward(float *dx, const float *dout, const float *x, const Mat *gate, const Mat *up,
                  const Mat *down, const Mat *gG, const Mat *gU, const Mat *gD, int T,
                  const FfnSaved *sv, float *work) {
    const size_t n = (size_t)T * gate->rows;
    float *da = work, *dg = work + n, *du = work + 2 * n;
    memset(da, 0, n * sizeof(float));
    matmul_backward(da, grad_of(gD->data), dout, sv->a, down, T);
    swiglu_backward(dg, du, da, sv->g, sv->u, n);
    matmul_backward(dx, grad_of(gG->data), dg, x, gate, T);
    matmul_backward(dx, grad_of(gU->data), du, x, up, T);
}

/* Expert parallelism: the experts' backward for every dispatch slot. dye
 * (T K, D, dispatch order) is the gradient at each slot's expert output;
 * the input gradients are added into dx by token. */
static int experts_parallel_backward(float *dx, const float *dye, const LayerWeights *L,
                                     const LayerWeights *G, const ModelConfig *c, int T,
                                     const MoeSaved *sv, Arena *a) {
    const int D = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    const int Im = c->moe_intermediate_size, per = E / sv->ep->size;
    const size_t R = (size_t)sv->ep_rows;
    float *dy = arena_floats(a, R * D + 1), *dxo = arena_floats(a, R * D + 1);
    float *dxd = arena_floats(a, (size_t)T * K * D + 1);
    if (!dy || !dxo || !dxd || moe_ep_dispatch(sv, E, dye, D, dy, a) != 0) return -1;
    memset(dxo, 0, R * D * sizeof(float));
    for (int j = 0; j < per; j++) {
        const int e = sv->ep->rank * per + j;
        int r0, n;
        moe_ep_expert_rows(sv, E, j, &r0, &n);
        if (n == 0) continue;
        const size_t off = (size_t)r0 * Im, ro = (size_t)r0 * D;
        const FfnSaved part = {sv->ep_exp.g + off, sv->ep_exp.u + off, sv->ep_exp.a + off};
        const ArenaMark mark = arena_mark(a);
        float *work = arena_floats(a, 3 * (size_t)n * Im);
        if (!work) return -1;
        ffn_backward(dxo + ro, dy + ro, sv->ep_x + ro, &L->exp_gate[e], &L->exp_up[e],
                     &L->exp_down[e], &G->exp_gate[e], &G->exp_up[e], &G->exp_down[e], n, &part,
                     work);
        arena_release(a, mark);
    }
    if (moe_ep_combine(sv, E, dxo, D, dxd, a) != 0) return -1;
    return moe_combine(dx, dxd, NULL, sv->order, T, K, D, a);
}

/* Router affinities of one token from its logits (E). */
static void affinities(const ModelConfig *c, const float *logits, float *s) {
    const int E = c->n_routed_experts;
    if (c->scoring_func == SCORE_SOFTMAX) {
        memcpy(s, logits, (size_t)E * sizeof(float));
        softmax(s, E);
    } else {
        for (int e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-logits[e]));
    }
}

/* One expert's backward over the n dispatch rows from c0: the gradient at
 * its output rows (combine weight times the block's output gradient) into
 * dye, d loss / d combine weight of each slot into dw, its inputs gathered
 * into xe, the input gradients into dxe (all in dispatch order); with
 * run, the expert's own backward too (else its rank runs it, EP). work:
 * 3 n Im floats. */
static void expert_backward(int e, float *dxe, float *dye, float *xe, float *dw, const float *dout,
                            const float *x, const LayerWeights *L, const LayerWeights *G,
                            const ModelConfig *c, const MoeSaved *sv, int run, float *work) {
    const int D = c->hidden_size, K = c->num_experts_per_tok, Im = c->moe_intermediate_size;
    const int c0 = sv->count[e], n = sv->count[e + 1] - c0;
    const int *slots = sv->order + c0;
    const float *ye = sv->ye + (size_t)c0 * D;
    for (int i = 0; i < n; i++) {
        const int t = slots[i] / K;
        const float *g = dout + (size_t)t * D, *y = ye + (size_t)i * D;
        double d = 0;
        for (int j = 0; j < D; j++) d += (double)g[j] * y[j];
        dw[slots[i]] = (float)d;
        float *dy = dye + ((size_t)c0 + i) * D;
        for (int j = 0; j < D; j++) dy[j] = sv->wts[slots[i]] * g[j];
        if (run) memcpy(xe + ((size_t)c0 + i) * D, x + (size_t)t * D, (size_t)D * sizeof(float));
    }
    if (!run) return;
    const size_t off = (size_t)c0 * Im, r0 = (size_t)c0 * D;
    const FfnSaved part = {sv->exp.g + off, sv->exp.u + off, sv->exp.a + off};
    memset(dxe + r0, 0, (size_t)n * D * sizeof(float));
    ffn_backward(dxe + r0, dye + r0, xe + r0, &L->exp_gate[e], &L->exp_up[e], &L->exp_down[e],
                 &G->exp_gate[e], &G->exp_up[e], &G->exp_down[e], n, &part, work);
}

int moe_backward(float *dx, const float *dout, const float *x, const LayerWeights *L,
                 const LayerWeights *G, const ModelConfig *c, int T, const MoeSaved *sv,
                 MoeBalance *bal, Arena *a) {
    const int D = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    const int Im = c->moe_intermediate_size;
    const size_t TK = (size_t)T * K;
    float *dw = arena_floats(a, TK);                 /* d loss / d combine weight, per slot */
    float *dlog = arena_floats(a, (size_t)T * E);    /* d loss / d router logit */
    float *s = arena_floats(a, (size_t)T * E);       /* affinities */
    int max_n = 0, n_active = 0;
    for (int e = 0; e < E; e++) {
        const int n = sv->count[e + 1] - sv->count[e];
        max_n = n > max_n ? n : max_n;
        n_active += n > 0;
    }
    /* every slot's rows in dispatch order: output gradient, input, input gradient */
    float *dye = arena_floats(a, TK * D + 1), *xe = arena_floats(a, TK * D + 1);
    float *dxe = arena_floats(a, TK * D + 1);
    if (!dw || !dlog || !s || !dye || !xe || !dxe) return -1;

    /* the shared experts straight into dx, then each routed expert over the
     * rows dispatched to it: side by side, one thread each, the shared
     * ones first and then the largest, when enough are busy (see
     * moe_forward); the routed input gradients reach dx after them all */
    const int parallel = sv->ep && sv->ep->size > 1, run = !parallel;
    const int by_expert = run && n_active >= 2 * threads_max() && threads_max() > 1;
    const int Is = c->n_shared_experts * Im, sh_task = by_expert && Is > 0;
    const size_t per_work = 3 * (size_t)max_n * Im;
    float *work = arena_floats(a, (by_expert ? threads_max() : 1) * per_work + 1);
    float *sh_work = Is > 0 ? arena_floats(a, 3 * (size_t)T * Is) : NULL;
    int *by_size = experts_by_size(sv->count, E, a);
    if (!work || !by_size || (Is > 0 && !sh_work)) return -1;
    if (Is > 0 && !sh_task)
        ffn_backward(dx, dout, x, &L->gate, &L->up, &L->down, &G->gate, &G->up, &G->down, T,
                     &sv->shared, sh_work);
    if (by_expert) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < E + sh_task; j++) {
            if (sh_task && j == 0)
                ffn_backward(dx, dout, x, &L->gate, &L->up, &L->down, &G->gate, &G->up, &G->down,
                             T, &sv->shared, sh_work);
            else
                expert_backward(by_size[j - sh_task], dxe, dye, xe, dw, dout, x, L, G, c, sv, run,
                                work + (size_t)thread_id() * per_work);
        }
    } else {
        for (int e = 0; e < E; e++) expert_backward(e, dxe, dye, xe, dw, dout, x, L, G, c, sv, run, work);
    }
    if (parallel) {
        if (experts_parallel_backward(dx, dye, L, G, c, T, sv, a) != 0) return -1;
    } else {
        /* input gradients into dx by token, experts in ascending order */
        if (moe_combine(dx, dxe, NULL, sv->order, T, K, D, a) != 0) return -1;
    }

    /* combine weights -> affinities: w_k = rsf s_k / S (S = sum over the
     * selected, as the forward with its 1e-20) or w_k = rsf s_k */
    float *ds = dlog; /* d loss / d affinity first, turned into logits below */
    memset(ds, 0, (size_t)T * E * sizeof(float));
    const float rsf = c->routed_scaling_factor;
    for (int t = 0; t < T; t++) {
        float *st = s + (size_t)t * E, *dst = ds + (size_t)t * E;
        const int *idx = sv->idx + (size_t)t * K;
        const float *dwt = dw + (size_t)t * K;
        affinities(c, sv->logits + (size_t)t * E, st);
        if (c->norm_topk_prob) {
            double S = 0, dot = 0;
            for (int k = 0; k < K; k++) S += st[idx[k]];
            S += 1e-20;
            for (int k = 0; k < K; k++) dot += (double)dwt[k] * st[idx[k]];
            for (int k = 0; k < K; k++)
                dst[idx[k]] += (float)(rsf * (dwt[k] / S - dot / (S * S)));
        } else {
            for (int k = 0; k < K; k++) dst[idx[k]] += rsf * dwt[k];
        }
    }

    /* sequence-wise balance loss: coef sum_e f_e P_e per sequence with
     * f_e = E / (K n) count_e (a constant) and P_e = mean_t s_e / sum_j s_j */
    if (bal && bal->coef != 0.0f) {
        const int n = bal->seq_len;
        double total = 0;
        float *f = arena_floats(a, (size_t)E);
        if (!f) return -1;
        for (int b = 0; b < bal->n_seq; b++) {
            memset(f, 0, (size_t)E * sizeof(float));
            for (int t = b * n; t < (b + 1) * n; t++)
                for (int k = 0; k < K; k++) f[sv->idx[(size_t)t * K + k]] += 1.0f;
            for (int e = 0; e < E; e++) f[e] *= (float)E / ((float)K * n);
            for (int t = b * n; t < (b + 1) * n; t++) {
                const float *st = s + (size_t)t * E;
                float *dst = ds + (size_t)t * E;
                double Z = 0, fs = 0;
                for (int e = 0; e < E; e++) Z += st[e], fs += (double)f[e] * st[e];
                total += fs / Z / n;
                /* d/ds_j of (sum_e f_e s_e / Z) = f_j / Z - sum_e f_e s_e / Z^2 */
                for (int e = 0; e < E; e++)
                    dst[e] += (float)(bal->coef / n * (f[e] / Z - fs / (Z * Z)));
            }
        }
        bal->loss = bal->coef * total;
    }

    /* affinities -> router logits */
    for (int t = 0; t < T; t++) {
        const float *st = s + (size_t)t * E;
        float *d = ds + (size_t)t * E;
        if (c->scoring_func == SCORE_SOFTMAX) {
            double dot = 0;
            for (int e = 0; e < E; e++) dot += (double)d[e] * st[e];
            for (int e = 0; e < E; e++) d[e] = st[e] * (d[e] - (float)dot);
        } else {
            for (int e = 0; e < E; e++) d[e] *= st[e] * (1.0f - st[e]);
        }
    }
    matmul_backward(dx, grad_of(G->router.data), dlog, x, &L->router, T);
    return 0;
}
