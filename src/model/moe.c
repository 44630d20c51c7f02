/* SPDX-License-Identifier: MIT */
/* The SwiGLU FFN and DeepSeekMoE (DeepSeekMoE; V2 §2.2; V3 §2.1.2):
 *   y = sum_{i in TopK} g_i FFN_i(x) + sum_shared FFN_s(x)
 * Routing follows the official inference/model.py Gate: affinities by
 * softmax (V2) or sigmoid (V3); the correction bias of auxiliary-loss-free
 * balancing enters the selection only; group-limited selection keeps the
 * topk_group best groups (group score: max affinity, or with the bias the sum
 * of the two best biased affinities) and masks the other groups' experts
 * with minus infinity (HF's modeling_deepseek masks with 0). Tokens are dispatched by
 * expert so each expert runs one matmul over the tokens that chose it; with
 * expert parallelism (sv->ep) over the tokens every rank routed to it. */
#include <math.h>
#include <string.h>

#include "base/threads.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/blocks.h"

#define MOE_MAX_GROUPS 256

int ffn_saved_alloc(FfnSaved *s, int T, int I, Arena *a) {
    const size_t n = (size_t)T * I;
    s->g = arena_floats(a, n);
    s->u = arena_floats(a, n);
    s->a = arena_floats(a, n);
    return s->g && s->u && s->a ? 0 : -1;
}

int moe_saved_alloc(MoeSaved *s, const ModelConfig *c, int T, Arena *a) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok, D = c->hidden_size;
    const size_t TK = (size_t)T * K;
    memset(s, 0, sizeof *s);
    s->logits = arena_floats(a, (size_t)T * E);
    s->idx = arena_take(a, TK * sizeof(int));
    s->wts = arena_floats(a, TK);
    s->count = arena_take(a, ((size_t)E + 1) * sizeof(int));
    s->order = arena_take(a, TK * sizeof(int));
    s->ye = arena_floats(a, TK * D);
    if (!s->logits || !s->idx || !s->wts || !s->count || !s->order || !s->ye) return -1;
    if (ffn_saved_alloc(&s->exp, (int)TK, c->moe_intermediate_size, a) != 0) return -1;
    if (c->n_shared_experts > 0 &&
        ffn_saved_alloc(&s->shared, T, c->n_shared_experts * c->moe_intermediate_size, a) != 0)
        return -1;
    return 0;
}

int ffn_forward(float *out, const float *x, const Mat *gate, const Mat *up, const Mat *down, int T,
                FfnSaved *sv, Arena *a) {
    const int I = gate->rows;
    float *g = sv ? sv->g : arena_floats(a, (size_t)T * I);
    float *u = sv ? sv->u : arena_floats(a, (size_t)T * I);
    if (!g || !u) return -1;
    float *const gu[2] = {g, u};
    const Mat *const wgu[2] = {gate, up};
    matmul_same_x(gu, x, wgu, 2, T);
    float *act = g;
    if (sv) {
        /* keep the gate's input for the backward: the product goes apart */
        act = sv->a;
        memcpy(act, g, (size_t)T * I * sizeof(float));
    }
    swiglu(act, u, (size_t)T * I);
    matmul(out, act, down, T);
    return 0;
}

/* Expert parallelism: every dispatch slot's output row into sv->ye, from
 * the ranks that own the experts (moe_ep.c), this rank running its own
 * experts over the rows all ranks sent. */
static int experts_parallel(const float *x, const LayerWeights *L, const ModelConfig *c, int T,
                            MoeSaved *sv, Arena *a) {
    const int D = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    const int Im = c->moe_intermediate_size, per = E / sv->ep->size;
    /* what the backward needs first; the rest is scratch, given back at the end */
    if (moe_ep_counts(sv, E, a) != 0) return -1;
    const size_t R = (size_t)sv->ep_rows;
    sv->ep_x = arena_floats(a, R * D + 1);
    if (!sv->ep_x || ffn_saved_alloc(&sv->ep_exp, (int)R + 1, Im, a) != 0) return -1;
    const ArenaMark mark = arena_mark(a);
    float *xd = arena_floats(a, (size_t)T * K * D + 1), *y = arena_floats(a, R * D + 1);
    int rc = xd && y ? 0 : -1;
    for (int i = 0; rc == 0 && i < T * K; i++)
        memcpy(xd + (size_t)i * D, x + (size_t)(sv->order[i] / K) * D, (size_t)D * sizeof(float));
    if (rc == 0) rc = moe_ep_dispatch(sv, E, xd, D, sv->ep_x, a);
    for (int j = 0; rc == 0 && j < per; j++) {
        const int e = sv->ep->rank * per + j;
        int r0, n;
        moe_ep_expert_rows(sv, E, j, &r0, &n);
        if (n == 0) continue;
        const size_t off = (size_t)r0 * Im;
        FfnSaved part = {sv->ep_exp.g + off, sv->ep_exp.u + off, sv->ep_exp.a + off};
        rc = ffn_forward(y + (size_t)r0 * D, sv->ep_x + (size_t)r0 * D, &L->exp_gate[e],
                         &L->exp_up[e], &L->exp_down[e], n, &part, a);
    }
    if (rc == 0) rc = moe_ep_combine(sv, E, y, D, sv->ye, a);
    arena_release(a, mark);
    return rc;
}

/* Index of the largest of v[0..n) not yet taken; ties go to the lower index. */
static int argmax_free(const float *v, const unsigned char *taken, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!taken[i] && (best < 0 || v[i] > v[best])) best = i;
    return best;
}

void moe_route(const ModelConfig *c, const float *logits, const float *bias, int *idx, float *w,
               float *scratch) {
    const int E = c->n_routed_experts, K = c->num_experts_per_tok;
    float *scores = scratch, *sel = scratch + E;
    if (c->scoring_func == SCORE_SOFTMAX) {
        memcpy(scores, logits, (size_t)E * sizeof(float));
        softmax(scores, E);
    } else {
        for (int e = 0; e < E; e++) scores[e] = 1.0f / (1.0f + expf(-logits[e]));
    }
    for (int e = 0; e < E; e++) sel[e] = scores[e] + (bias ? bias[e] : 0.0f);

    const int G = c->n_group; /* at most MOE_MAX_GROUPS (config_validate) */
    if (c->topk_method != TOPK_GREEDY && G > 1) {
        const int per = E / G;
        float gs[MOE_MAX_GROUPS];
        unsigned char keep[MOE_MAX_GROUPS] = {0}, gtaken[MOE_MAX_GROUPS] = {0};
        for (int g = 0; g < G; g++) {
            const float *s = sel + g * per;
            if (bias) { /* V3: sum of the two best biased affinities */
                float b1 = -INFINITY, b2 = -INFINITY;
                for (int i = 0; i < per; i++) {
                    if (s[i] > b1) b2 = b1, b1 = s[i];
                    else if (s[i] > b2) b2 = s[i];
                }
                gs[g] = b1 + b2;
            } else { /* V2: the best affinity */
                float b = -INFINITY;
                for (int i = 0; i < per; i++) b = s[i] > b ? s[i] : b;
                gs[g] = b;
            }
        }
        for (int k = 0; k < c->topk_group; k++) {
            int g = argmax_free(gs, gtaken, G);
            gtaken[g] = keep[g] = 1;
        }
        for (int g = 0; g < G; g++)
            if (!keep[g])
                for (int i = 0; i < per; i++) sel[g * per + i] = -INFINITY;
    }
    /* top-K by selection score; weights are the unbiased affinities */
    float sum = 0;
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int used = 0;
            for (int j = 0; j < k; j++) used |= idx[j] == e;
            if (!used && (best < 0 || sel[e] > sel[best])) best = e;
        }
        idx[k] = best;
        w[k] = scores[best];
        sum += w[k];
    }
    for (int k = 0; k < K; k++) {
        if (c->norm_topk_prob) w[k] /= sum + 1e-20f;
        w[k] *= c->routed_scaling_factor;
    }
}

int *experts_by_size(const int *count, int E, Arena *a) {
    int *ix = arena_take(a, (size_t)E * sizeof(int));
    if (!ix) return NULL;
    for (int e = 0; e < E; e++) { /* insertion sort: E is small */
        const int n = count[e + 1] - count[e];
        int j = e;
        for (; j > 0 && count[ix[j - 1] + 1] - count[ix[j - 1]] < n; j--) ix[j] = ix[j - 1];
        ix[j] = e;
    }
    return ix;
}

/* out row t += w[slot] rows[i] (w NULL: 1) over the token's slots, rows
 * in dispatch order; the slots of one token in ascending dispatch order,
 * that is their experts in ascending order, as a loop over the experts
 * adds them, on any number of threads. */
static void combine_token(float *out, const float *rows, const float *w, const int *order,
                          int *pos, int t, int K, int D) {
    int *p = pos + (size_t)t * K;
    for (int j = 1; j < K; j++) { /* insertion sort: K is small */
        const int v = p[j];
        int i = j;
        for (; i > 0 && p[i - 1] > v; i--) p[i] = p[i - 1];
        p[i] = v;
    }
    float *o = out + (size_t)t * D;
    for (int j = 0; j < K; j++) {
        const float g = w ? w[order[p[j]]] : 1.0f, *y = rows + (size_t)p[j] * D;
        for (int d = 0; d < D; d++) o[d] += g * y[d];
    }
}

int moe_combine(float *out, const float *rows, const float *w, const int *order, int T, int K,
                int D, Arena *a) {
    const size_t TK = (size_t)T * K;
    int *pos = arena_take(a, TK * sizeof(int) + 1); /* slot -> dispatch row */
    if (!pos) return -1;
    for (size_t i = 0; i < TK; i++) pos[order[i]] = (int)i;
    if (threads_max() > 1 && !threads_in_parallel() && TK * D >= 1 << 16) {
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T; t++) combine_token(out, rows, w, order, pos, t, K, D);
    } else {
        for (int t = 0; t < T; t++) combine_token(out, rows, w, order, pos, t, K, D);
    }
    return 0;
}

int moe_one_token_pass = 1;

/* Most experts (routed, then the shared ones as one) one token runs. */
#define ONE_TOKEN_MAX 16

/* One token's active experts and shared experts on all threads: every
 * gate and up as one list of products of x, then every down as another,
 * each of its own input (matmul_each). Each list's weights stream split
 * over the threads, a thread done early taking over the end of another's
 * (threads.h), where a loop running each expert on one thread left a
 * thread idle for up to an expert at the end (a 2-thread V2-Lite decode:
 * 2-7% of the MoE's time). Rows into ydisp in dispatch order (count,
 * experts ascending), the shared experts' sum into sh: the numbers the
 * loop gives. Returns -1 without scratch memory (the caller checked that
 * the token's experts fit ONE_TOKEN_MAX). */
static int one_token(float *ydisp, float *sh, const float *x, const LayerWeights *L,
                     const ModelConfig *c, const int *count, Arena *a) {
    const int D = c->hidden_size, E = c->n_routed_experts, Im = c->moe_intermediate_size;
    const int Is = c->n_shared_experts * Im;
    const Mat *gu[2 * ONE_TOKEN_MAX], *dn[ONE_TOKEN_MAX];
    float *gu_y[2 * ONE_TOKEN_MAX], *dn_y[ONE_TOKEN_MAX];
    const float *dn_x[ONE_TOKEN_MAX];
    int width[ONE_TOKEN_MAX], n = 0;
    for (int e = 0; e < E; e++) {
        if (count[e + 1] == count[e]) continue;
        if (n == ONE_TOKEN_MAX - 1) return -1;
        gu[2 * n] = &L->exp_gate[e], gu[2 * n + 1] = &L->exp_up[e], dn[n] = &L->exp_down[e];
        dn_y[n] = ydisp + (size_t)count[e] * D;
        width[n++] = Im;
    }
    if (Is > 0) {
        gu[2 * n] = &L->gate, gu[2 * n + 1] = &L->up, dn[n] = &L->down;
        dn_y[n] = sh;
        width[n++] = Is;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) total += 2 * (size_t)width[i];
    float *buf = arena_floats(a, total);
    if (!buf) return -1;
    for (int i = 0; i < n; i++) {
        gu_y[2 * i] = buf;
        dn_x[i] = buf;
        gu_y[2 * i + 1] = buf + width[i];
        buf += 2 * (size_t)width[i];
    }
    matmul_same_x(gu_y, x, gu, 2 * n, 1);
    for (int i = 0; i < n; i++) swiglu(gu_y[2 * i], gu_y[2 * i + 1], (size_t)width[i]);
    matmul_each(dn_y, dn_x, dn, n, 1);
    return 0;
}

int moe_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c, int T,
                MoeSaved *sv, Arena *a) {
    const int D = c->hidden_size, E = c->n_routed_experts, K = c->num_experts_per_tok;
    const int Im = c->moe_intermediate_size;
    float *logits = sv ? sv->logits : arena_floats(a, (size_t)T * E);
    float *rs = arena_floats(a, 2 * (size_t)E);
    float *wts = sv ? sv->wts : arena_floats(a, (size_t)T * K);
    int *idx = sv ? sv->idx : arena_take(a, (size_t)T * K * sizeof(int));
    int *count = sv ? sv->count : arena_take(a, ((size_t)E + 1) * sizeof(int));
    /* slots grouped by expert */
    int *order = sv ? sv->order : arena_take(a, (size_t)T * K * sizeof(int));
    if (!logits || !rs || !wts || !idx || !count || !order) return -1;
    matmul(logits, x, &L->router, T);
    for (int t = 0; t < T; t++)
        moe_route(c, logits + (size_t)t * E, L->router_bias, idx + (size_t)t * K,
                  wts + (size_t)t * K, rs);

    /* counting sort of the T*K (token, slot) pairs by expert */
    memset(count, 0, ((size_t)E + 1) * sizeof(int));
    for (int i = 0; i < T * K; i++) count[idx[i] + 1]++;
    for (int e = 0; e < E; e++) count[e + 1] += count[e];
    int *fill = arena_take(a, (size_t)E * sizeof(int));
    if (!fill) return -1;
    memcpy(fill, count, (size_t)E * sizeof(int));
    for (int i = 0; i < T * K; i++) order[fill[idx[i]]++] = i;

    int max_n = 0, n_active = 0;
    for (int e = 0; e < E; e++) {
        const int n = count[e + 1] - count[e];
        max_n = n > max_n ? n : max_n;
        n_active += n > 0;
    }
    memset(out, 0, (size_t)T * D * sizeof(float));
    /* With enough experts busy for every thread twice over (training, a
     * decoding batch, a prompt chunk) the experts run side by side, one
     * thread each, largest first, instead of each expert's three small
     * products being split over the threads (one parallel region and
     * barrier apiece, and the gathers between them serial). One token
     * at inference runs its experts as two lists of products over all
     * threads instead (one_token). Either way every expert's rows are
     * kept, in dispatch order, and combined at the end. */
    const int parallel = sv && sv->ep && sv->ep->size > 1;
    const int one = T == 1 && !sv && !parallel && threads_max() > 1 && moe_one_token_pass &&
                    K + 1 <= ONE_TOKEN_MAX;
    const int by_expert =
        !one && !parallel && n_active >= 2 * threads_max() && threads_max() > 1;
    const int kept = by_expert || one;
    const size_t rows = (size_t)(kept ? T * K : max_n);
    float *xe = arena_floats(a, rows * D);
    float *ybuf = sv ? NULL : arena_floats(a, rows * D);
    float *gua = by_expert && !sv ? arena_floats(a, (size_t)T * K * 3 * Im) : NULL; /* g, u, act */
    int *by_size = by_expert ? experts_by_size(count, E, a) : NULL;
    if (!xe || (!sv && !ybuf) || (by_expert && ((!sv && !gua) || !by_size))) return -1;
    /* the shared experts: one more task of the side-by-side loop (the
     * largest, so it goes first), added after the routed ones as before */
    const int Is = c->n_shared_experts * Im, sh_task = by_expert && Is > 0;
    float *sh = Is > 0 ? arena_floats(a, (size_t)T * D) : NULL;
    FfnSaved shp = {0};
    if (sv) {
        shp = sv->shared;
    } else if (sh_task && ffn_saved_alloc(&shp, T, Is, a) != 0) {
        return -1;
    }
    if (Is > 0 && !sh) return -1;
    if (parallel && experts_parallel(x, L, c, T, sv, a) != 0) return -1;
    /* each expert's outputs in dispatch order: sv->ye, or ybuf (one expert
     * at a time unless by_expert) */
    float *ydisp = sv ? sv->ye : ybuf;
    if (one && one_token(ydisp, sh, x, L, c, count, a) != 0) return -1;
    if (by_expert) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int j = 0; j < E + sh_task; j++) {
            if (sh_task && j == 0) {
                ffn_forward(sh, x, &L->gate, &L->up, &L->down, T, &shp, NULL);
                continue;
            }
            const int e = by_size[j - sh_task], n = count[e + 1] - count[e], c0 = count[e];
            if (n == 0) continue;
            float *xs = xe + (size_t)c0 * D;
            for (int i = 0; i < n; i++)
                memcpy(xs + (size_t)i * D, x + (size_t)(order[c0 + i] / K) * D,
                       (size_t)D * sizeof(float));
            /* the slots' own gate/up rows: no shared arena inside the loop */
            FfnSaved part;
            if (sv) {
                const size_t off = (size_t)c0 * Im;
                part = (FfnSaved){sv->exp.g + off, sv->exp.u + off, sv->exp.a + off};
            } else {
                float *g = gua + (size_t)c0 * 3 * Im;
                part = (FfnSaved){g, g + (size_t)n * Im, g + (size_t)2 * n * Im};
            }
            ffn_forward(ydisp + (size_t)c0 * D, xs, &L->exp_gate[e], &L->exp_up[e],
                        &L->exp_down[e], n, &part, NULL);
        }
    }
    /* experts in ascending order, as the reference accumulates them */
    for (int e = 0; e < E; e++) {
        const int n = count[e + 1] - count[e];
        if (n == 0) continue;
        const int *slots = order + count[e];
        float *ye = sv || kept ? ydisp + (size_t)count[e] * D : ybuf;
        if (!kept && !parallel) {
            for (int i = 0; i < n; i++)
                memcpy(xe + (size_t)i * D, x + (size_t)(slots[i] / K) * D,
                       (size_t)D * sizeof(float));
            FfnSaved part, *ps = NULL;
            if (sv) {
                const size_t off = (size_t)count[e] * Im;
                part = (FfnSaved){sv->exp.g + off, sv->exp.u + off, sv->exp.a + off};
                ps = &part;
            }
            if (ffn_forward(ye, xe, &L->exp_gate[e], &L->exp_up[e], &L->exp_down[e], n, ps, a) !=
                0)
                return -1;
        }
        if (sv || kept) continue; /* every expert's rows kept: combined below */
        for (int i = 0; i < n; i++) {
            float *o = out + (size_t)(slots[i] / K) * D;
            const float g = wts[slots[i]], *y = ye + (size_t)i * D;
            for (int d = 0; d < D; d++) o[d] += g * y[d];
        }
    }
    if ((sv || kept) && moe_combine(out, ydisp, wts, order, T, K, D, a) != 0) return -1;
    if (Is > 0) {
        if (!sh_task && !one &&
            ffn_forward(sh, x, &L->gate, &L->up, &L->down, T, sv ? &shp : NULL, a) != 0)
            return -1;
        vec_add(out, sh, (size_t)T * D);
    }
    return 0;
}
