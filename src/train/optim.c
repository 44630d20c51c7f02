/* SPDX-License-Identifier: MIT */
/* Schedules, clipping and AdamW (see optim.h). */
#include "train/optim.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "kernels/ops.h"

OptimOpts optim_defaults(void) {
    OptimOpts o = {.lr = 3e-4f, .min_lr_ratio = 0.1f, .schedule = LR_COSINE, .beta1 = 0.9f,
                   .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .clip = 1.0f};
    return o;
}

float optim_lr_at(const OptimOpts *o, int s) {
    const double lr = o->lr, lo = lr * o->min_lr_ratio;
    if (s < o->warmup) return (float)(lr * (s + 1) / o->warmup);
    switch (o->schedule) {
    case LR_CONSTANT: return o->lr;
    case LR_WSD: {
        const int start = o->total_steps - o->decay_steps;
        if (o->decay_steps <= 0 || s < start) return o->lr;
        double p = (double)(s - start + 1) / o->decay_steps;
        return (float)(lr + (lo - lr) * (p > 1 ? 1 : p));
    }
    case LR_COSINE:
    default: {
        int span = o->total_steps - o->warmup;
        double p = (double)(s - o->warmup) / (span > 1 ? span : 1);
        if (p > 1) p = 1;
        return (float)(lo + 0.5 * (lr - lo) * (1 + cos(M_PI * p)));
    }
    }
}

int adamw_init(AdamW *a, const Weights *w, Err *err) {
    memset(a, 0, sizeof *a);
    a->n = w->n_bytes / sizeof(float);
    size_t bytes;
    if (size_mul(a->n, sizeof(float), &bytes) != 0)
        return err_set(err, "optimiser state of %zu floats is too large", a->n);
    a->m = mem_alloc(bytes);
    a->v = mem_alloc(bytes);
    if (!a->m || !a->v) {
        adamw_free(a);
        return err_set(err, "out of memory for the optimiser state (%zu floats)", 2 * w->n_bytes / 4);
    }
    return 0;
}

void adamw_free(AdamW *a) {
    mem_free(a->m);
    mem_free(a->v);
    memset(a, 0, sizeof *a);
}

static int is_mtp_head(const ParamSpec *s) {
    const char *suf = ".shared_head.head.weight";
    size_t n = strlen(s->name), k = strlen(suf);
    return n > k && !strcmp(s->name + n - k, suf);
}

int optim_is_trained(const ParamSpec *s) { return s->kind != PARAM_ROUTER_BIAS && !is_mtp_head(s); }

int optim_has_decay(const ParamSpec *s) {
    return (s->kind == PARAM_MATRIX || s->kind == PARAM_ROUTER) && optim_is_trained(s);
}

/* The MTP head tensors (n_out of them, at most 64). */
static int mtp_heads(const Weights *w, const ParamSpec **out) {
    int n = 0;
    for (int i = 0; i < w->n_specs && n < 64; i++)
        if (is_mtp_head(&w->specs[i])) out[n++] = &w->specs[i];
    return n;
}

void optim_tie_grads(const Weights *w, Weights *grads) {
    const ParamSpec *heads[64];
    int n = mtp_heads(w, heads);
    const ParamSpec *lm = weights_find(w, "lm_head.weight");
    if (!lm) lm = weights_find(w, "model.embed_tokens.weight"); /* tied embeddings */
    float *g = (float *)(grads->data + lm->offset);
    for (int h = 0; h < n; h++) {
        float *gh = (float *)(grads->data + heads[h]->offset);
        for (int64_t i = 0; i < lm->numel; i++) g[i] += gh[i], gh[i] = 0;
    }
}

double optim_grad_norm(const Weights *grads) {
    double shared, experts;
    optim_grad_sumsq(grads, &shared, &experts);
    return sqrt(shared + experts);
}

void optim_grad_sumsq(const Weights *grads, double *shared, double *experts) {
    /* per-tensor sums in parallel, added in table order: the norm decides
     * the clip, so it must not depend on which thread finished first */
    static _Thread_local double *part;
    static _Thread_local int cap;
    if (grads->n_specs > cap) {
        double *p = realloc(part, sizeof(double) * (size_t)grads->n_specs);
        if (!p) { /* the caller skips the step, as for an overflow */
            *shared = *experts = NAN;
            return;
        }
        part = p, cap = grads->n_specs;
    }
    double *sums = part; /* thread-local: the team must see this thread's buffer */
#pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < grads->n_specs; i++) {
        const ParamSpec *s = &grads->specs[i];
        sums[i] = optim_is_trained(s)
                      ? sum_squares((const float *)(grads->data + s->offset), (size_t)s->numel)
                      : 0.0;
    }
    *shared = *experts = 0;
    for (int i = 0; i < grads->n_specs; i++)
        *(weights_is_routed_expert(&grads->specs[i]) ? experts : shared) += sums[i];
}

void adamw_update_ref(float *p, float *m, float *v, const float *g, size_t n, const AdamWCoef *k) {
    for (size_t j = 0; j < n; j++) {
        const float gj = g[j] * k->clip;
        m[j] = k->b1 * m[j] + (1 - k->b1) * gj;
        v[j] = k->b2 * v[j] + (1 - k->b2) * gj * gj;
        const float mh = m[j] * k->ibc1, vh = v[j] * k->ibc2;
        p[j] = p[j] * k->decay - k->lr * mh / (sqrtf(vh) + k->eps);
    }
}

/* The same in 16 lanes: the reference's operations in its order, none
 * fused, and IEEE square root and division like the scalar ones, so the
 * results are the same bits (the scalar loop is a division and a square
 * root per weight, the bound of the whole update). */
__attribute__((target("avx512f"))) static void adamw_update_avx512(float *p, float *m, float *v,
                                                                    const float *g, size_t n,
                                                                    const AdamWCoef *k) {
    const __m512 clip = _mm512_set1_ps(k->clip), b1 = _mm512_set1_ps(k->b1),
                 b2 = _mm512_set1_ps(k->b2), c1 = _mm512_set1_ps(1 - k->b1),
                 c2 = _mm512_set1_ps(1 - k->b2), i1 = _mm512_set1_ps(k->ibc1),
                 i2 = _mm512_set1_ps(k->ibc2), decay = _mm512_set1_ps(k->decay),
                 lr = _mm512_set1_ps(k->lr), eps = _mm512_set1_ps(k->eps);
    for (size_t j = 0; j < n; j += 16) {
        const __mmask16 mk = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        const __m512 gj = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, g + j), clip);
        const __m512 mj = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(mk, m + j)),
                                        _mm512_mul_ps(c1, gj));
        const __m512 vj = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(mk, v + j)),
                                        _mm512_mul_ps(_mm512_mul_ps(c2, gj), gj));
        const __m512 mh = _mm512_mul_ps(mj, i1), vh = _mm512_mul_ps(vj, i2);
        const __m512 step = _mm512_div_ps(_mm512_mul_ps(lr, mh), _mm512_add_ps(_mm512_sqrt_ps(vh), eps));
        _mm512_mask_storeu_ps(m + j, mk, mj);
        _mm512_mask_storeu_ps(v + j, mk, vj);
        _mm512_mask_storeu_ps(p + j, mk, _mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mk, p + j), decay), step));
    }
}

void adamw_update(float *p, float *m, float *v, const float *g, size_t n, const AdamWCoef *k) {
    if (ops_avx512()) adamw_update_avx512(p, m, v, g, n, k);
    else adamw_update_ref(p, m, v, g, n, k);
}

/* Weights per piece of the update that a thread takes at a time. */
#define ADAMW_CHUNK 16384

float adamw_step(AdamW *a, Weights *w, Weights *grads, const OptimOpts *o, int s, double grad_norm) {
    const float lr = optim_lr_at(o, s);
    const float clip = o->clip > 0 && grad_norm > o->clip ? (float)(o->clip / (grad_norm + 1e-6)) : 1.0f;
    const int t = s + 1;
    const float ibc1 = (float)(1.0 / (1.0 - pow(o->beta1, t)));
    const float ibc2 = (float)(1.0 / (1.0 - pow(o->beta2, t)));
    /* one parallel region over every trained tensor's chunks (there are
     * hundreds of tensors, most of them small) */
#pragma omp parallel
    for (int i = 0; i < w->n_specs; i++) {
        const ParamSpec *sp = &w->specs[i];
        if (!optim_is_trained(sp)) continue;
        const size_t off = sp->offset / sizeof(float), n = (size_t)sp->numel;
        float *p = (float *)(w->data + sp->offset), *g = (float *)(grads->data + sp->offset);
        const AdamWCoef k = {lr, clip, o->beta1, o->beta2, ibc1, ibc2, o->eps,
                             optim_has_decay(sp) ? 1.0f - lr * o->weight_decay : 1.0f};
#pragma omp for schedule(static) nowait
        for (size_t j = 0; j < n; j += ADAMW_CHUNK)
            adamw_update(p + j, a->m + off + j, a->v + off + j, g + j,
                         n - j < ADAMW_CHUNK ? n - j : ADAMW_CHUNK, &k);
    }
    /* the MTP heads are copies of the one shared head */
    const ParamSpec *heads[64], *lm = weights_find(w, "lm_head.weight");
    int n = mtp_heads(w, heads);
    for (int h = 0; h < n && lm; h++)
        memcpy(w->data + heads[h]->offset, w->data + lm->offset, lm->bytes);
    return lr;
}
