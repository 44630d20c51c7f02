/* SPDX-License-Identifier: MIT */
/* Gradients against finite differences: each op's backward (rmsnorm,
 * SwiGLU, rope, causal attention, the GEMM forms) and the whole model's
 * loss gradient (MLA with q_lora and YaRN-free rope, dense FFN, DeepSeekMoE
 * with groups and the balance loss, MTP). The PyTorch comparison lives in
 * test_train.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "helpers.h"
#include "kernels/attention.h"
#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "model/model_train.h"
#include "model/rope.h"
#include "train/model_backward.h"

static void fill(float *x, size_t n, Rng *r, float s) {
    for (size_t i = 0; i < n; i++) x[i] = s * rng_normal(r);
}

/* A scalar loss sum(out * probe) for probing a function f with central
 * differences: the backward's input gradient must equal d/dx of it. */
typedef double (*ProbeFn)(void *ctx, const float *x);

static double probe(const float *y, const float *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)y[i] * w[i];
    return s;
}

/* max |fd - analytic| / max |analytic| over all entries of x (n). */
static double fd_check(ProbeFn f, void *ctx, float *x, const float *analytic, size_t n, float h) {
    double worst = 0, scale = 1e-12;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(analytic[i]));
    for (size_t i = 0; i < n; i++) {
        float old = x[i];
        x[i] = old + h;
        double lp = f(ctx, x);
        x[i] = old - h;
        double lm = f(ctx, x);
        x[i] = old;
        worst = fmax(worst, fabs((lp - lm) / (2 * h) - analytic[i]) / scale);
    }
    return worst;
}

/* Odd sizes: partial tiles and a second KC slice; then four slices over 8
 * panels (static panels, the strips' two buffers each reused) and three
 * over 7 (the dynamic schedule). Up to 16 panels A is read in place (its
 * last partial strip packed); the 17 panels of the last shape pack it. */
Test(grad, sgemm_forms_match_reference) {
    Rng r;
    rng_seed(&r, 3);
    const int shapes[4][3] = {{37, 45, 300}, {29, 256, 800}, {50, 200, 600}, {26, 530, 300}};
    for (int sh = 0; sh < 4; sh++) {
        const int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * N * K);
        float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
        fill(A, (size_t)M * K, &r, 1), fill(B, (size_t)N * K, &r, 1);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int beta = 0; beta < 2; beta++) {
                    const int lda = ta ? M : K, ldb = tb ? K : N;
                    fill(C, (size_t)M * N, &r, 1);
                    memcpy(R, C, sizeof(float) * M * N);
                    sgemm_use_ref = 1;
                    sgemm(ta, tb, M, N, K, A, lda, B, ldb, (float)beta, R, N);
                    sgemm_use_ref = 0;
                    sgemm(ta, tb, M, N, K, A, lda, B, ldb, (float)beta, C, N);
                    double worst = 0;
                    for (int i = 0; i < M * N; i++) worst = fmax(worst, fabs(C[i] - R[i]));
                    cr_expect(worst < 1e-3, "sgemm %dx%dx%d ta=%d tb=%d beta=%d: max diff %g", M, N,
                              K, ta, tb, beta, worst);
                }
        free(A), free(B), free(C), free(R);
    }
}

/* x rounded to bfloat16, nearest even (finite x). */
static float round_bf16(float x) {
    unsigned u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* gemm_bf16: the products equal the reference on operands rounded to
 * bfloat16 up to float32 summation, |C - R| <= 1e-5 sum |a b| + 1e-6: a
 * truncating rounding, a pair from the wrong k or a lost odd k is off by
 * 2^-9 of the terms it touches, a hundred times that. All forms, betas and
 * gemm_nt on the same shapes as above (odd k counts, partial tiles, two
 * slices, one and several panels). */
Test(grad, sgemm_bf16_matches_rounded_reference) {
    if (!gemm_bf16_available()) {
        cr_log_warn("no AVX512-BF16 here: gemm_bf16 has no effect, nothing to check");
        return;
    }
    Rng r;
    rng_seed(&r, 5);
    const int shapes[4][3] = {{37, 45, 301}, {29, 256, 800}, {50, 200, 7}, {26, 530, 300}};
    for (int sh = 0; sh < 4; sh++) {
        const int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * N * K);
        float *Ar = malloc(sizeof(float) * M * K), *Br = malloc(sizeof(float) * N * K);
        float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
        float *S = malloc(sizeof(float) * M * N);
        fill(A, (size_t)M * K, &r, 1), fill(B, (size_t)N * K, &r, 1);
        for (int i = 0; i < M * K; i++) Ar[i] = round_bf16(A[i]);
        for (int i = 0; i < N * K; i++) Br[i] = round_bf16(B[i]);
        for (int form = 0; form < 5; form++) { /* (ta, tb) 00 01 10 11, then gemm_nt */
            const int ta = form < 4 && (form & 2), tb = form == 4 || (form & 1);
            const int beta = form % 2 == 0 && form < 4, lda = ta ? M : K, ldb = tb ? K : N;
            fill(C, (size_t)M * N, &r, 1);
            memcpy(R, C, sizeof(float) * M * N);
            /* S: sum |a b| of each entry, the scale of its rounding */
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                    double acc = 0;
                    for (int k = 0; k < K; k++)
                        acc += fabs((double)Ar[ta ? k * lda + m : m * lda + k] *
                                    Br[tb ? n * ldb + k : k * ldb + n]);
                    S[m * N + n] = (float)acc;
                }
            sgemm_use_ref = 1;
            sgemm(ta, tb, M, N, K, Ar, lda, Br, ldb, (float)beta, R, N);
            sgemm_use_ref = 0;
            gemm_bf16 = 1;
            if (form < 4) {
                sgemm(ta, tb, M, N, K, A, lda, B, ldb, (float)beta, C, N);
            } else {
                const Mat W = mat_f32(B, N, K);
                cr_assert_eq(gemm_nt(C, A, &W, 0, N, M), 0);
            }
            gemm_bf16 = 0;
            for (int i = 0; i < M * N; i++)
                cr_assert(fabs(C[i] - R[i]) <= 1e-5 * S[i] + 1e-6,
                          "bf16 form %d %dx%dx%d: C[%d] %g, rounded reference %g (sum |ab| %g)",
                          form, M, N, K, i, C[i], R[i], S[i]);
        }
        free(A), free(B), free(Ar), free(Br), free(C), free(R), free(S);
    }
}

/* The causal forms against the full reference: op(A) with its zeros
 * really there, odd sizes (partial strips, a second KC slice, the
 * parallel and the one-thread paths), a diagonal offset (a prefill after
 * cached rows), both forms of B and both betas. CAUSAL_OUT is checked on
 * the entries it promises only. */
Test(grad, sgemm_causal_forms_match_reference) {
    Rng r;
    rng_seed(&r, 4);
    const int sizes[2] = {37, 300}, diags[2] = {0, 7};
    for (int mode = CAUSAL_OUT; mode <= CAUSAL_AT; mode++)
        for (int si = 0; si < 2; si++)
            for (int di = 0; di < 2; di++)
                for (int tb = 0; tb < 2; tb++)
                    for (int beta = 0; beta < 2; beta++) {
                        const int M = sizes[si], diag = diags[di], N = mode == CAUSAL_OUT ? M + diag : 45;
                        const int K = mode == CAUSAL_A ? M + diag : mode == CAUSAL_AT ? M - diag : 40;
                        const int ta = mode == CAUSAL_AT, lda = ta ? M : K, ldb = tb ? K : N;
                        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * N * K);
                        float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
                        fill(A, (size_t)M * K, &r, 1), fill(B, (size_t)N * K, &r, 1);
                        for (int m = 0; m < M; m++)
                            for (int k = 0; k < K; k++) {
                                const int zero = (mode == CAUSAL_A && k > m + diag) ||
                                                 (mode == CAUSAL_AT && m > k + diag);
                                if (zero) A[ta ? (size_t)k * lda + m : (size_t)m * lda + k] = 0.0f;
                            }
                        fill(C, (size_t)M * N, &r, 1);
                        memcpy(R, C, sizeof(float) * M * N);
                        sgemm_use_ref = 1;
                        sgemm(ta, tb, M, N, K, A, lda, B, ldb, (float)beta, R, N);
                        sgemm_use_ref = 0;
                        sgemm_causal(mode, diag, ta, tb, M, N, K, A, lda, B, ldb, (float)beta, C, N);
                        double worst = 0;
                        for (int m = 0; m < M; m++)
                            for (int n = 0; n < N; n++)
                                if (mode != CAUSAL_OUT || n <= m + diag)
                                    worst = fmax(worst, fabs(C[m * N + n] - R[m * N + n]));
                        cr_expect(worst < 1e-3, "mode %d diag %d %dx%dx%d tb=%d beta=%d: max diff %g",
                                  mode, diag, M, N, K, tb, beta, worst);
                        free(A), free(B), free(C), free(R);
                    }
}

typedef struct {
    int T, n;
    const float *w, *probe;
    float *y;
} NormCtx;

static double norm_loss(void *p, const float *x) {
    NormCtx *c = p;
    rmsnorm(c->y, x, c->w, c->T, c->n, 1e-6f);
    return probe(c->y, c->probe, (size_t)c->T * c->n);
}

static double norm_loss_w(void *p, const float *w) {
    NormCtx *c = p;
    const float *x = c->probe + (size_t)c->T * c->n; /* x stored after the probe */
    rmsnorm(c->y, x, w, c->T, c->n, 1e-6f);
    return probe(c->y, c->probe, (size_t)c->T * c->n);
}

Test(grad, rmsnorm_backward_matches_fd) {
    Rng r;
    rng_seed(&r, 5);
    enum { T = 3, n = 24 };
    float x[T * n], w[n], pr[2 * T * n], y[T * n], dx[T * n] = {0}, dw[n] = {0};
    fill(x, T * n, &r, 1), fill(w, n, &r, 1), fill(pr, T * n, &r, 1);
    memcpy(pr + T * n, x, sizeof x);
    rmsnorm_backward(dx, dw, pr, x, w, T, n, 1e-6f);
    NormCtx c = {T, n, w, pr, y};
    double ex = fd_check(norm_loss, &c, x, dx, T * n, 1e-2f);
    double ew = fd_check(norm_loss_w, &c, w, dw, n, 1e-2f);
    cr_expect(ex < 1e-3 && ew < 1e-3, "rmsnorm: dx err %g, dw err %g", ex, ew);
}

typedef struct {
    size_t n;
    const float *u, *probe;
    float *a;
} GluCtx;

static double glu_loss(void *p, const float *g) {
    GluCtx *c = p;
    memcpy(c->a, g, c->n * sizeof(float));
    swiglu(c->a, c->u, c->n);
    return probe(c->a, c->probe, c->n);
}

Test(grad, swiglu_backward_matches_fd) {
    Rng r;
    rng_seed(&r, 6);
    enum { n = 64 };
    float g[n], u[n], pr[n], a[n], dg[n], du[n];
    fill(g, n, &r, 2), fill(u, n, &r, 1), fill(pr, n, &r, 1);
    swiglu_backward(dg, du, pr, g, u, n);
    GluCtx c = {n, u, pr, a};
    cr_expect(fd_check(glu_loss, &c, g, dg, n, 1e-2f) < 1e-3);
    /* d/du is silu(g): exact */
    for (int i = 0; i < n; i++) cr_expect(fabsf(du[i] - pr[i] * g[i] / (1 + expf(-g[i]))) < 1e-6f);
}

typedef struct {
    const Rope *rope;
    int pos;
    const float *probe;
} RopeCtx;

static double rope_loss(void *p, const float *x) {
    RopeCtx *c = p;
    float y[64];
    memcpy(y, x, sizeof(float) * c->rope->dim);
    rope_apply(c->rope, y, c->pos);
    return probe(y, c->probe, (size_t)c->rope->dim);
}

Test(grad, rope_backward_matches_fd_with_yarn) {
    ModelConfig cfg;
    Err err;
    cr_assert(config_load(&cfg, h_data("v3_yarn"), &err) == 0, "%s", err.msg);
    Rope rope;
    cr_assert(rope_init(&rope, &cfg, &err) == 0);
    Rng r;
    rng_seed(&r, 8);
    float x[64], pr[64], d[64];
    fill(x, rope.dim, &r, 1), fill(pr, rope.dim, &r, 1);
    memcpy(d, pr, sizeof pr);
    rope_backward(&rope, d, 77);
    RopeCtx c = {&rope, 77, pr};
    cr_expect(fd_check(rope_loss, &c, x, d, (size_t)rope.dim, 1e-2f) < 1e-3);
}

typedef struct {
    int T, Dk, Dv;
    float *q, *k, *v, *out, *P;
    const float *probe;
} AttCtx;

static double att_loss(void *p, const float *unused) {
    (void)unused;
    AttCtx *c = p;
    attention_head_train(c->out, c->Dv, c->P, c->q, c->Dk, c->k, c->Dk, c->v, c->Dv, c->T, c->Dk,
                         c->Dv, 0.3f);
    return probe(c->out, c->probe, (size_t)c->T * c->Dv);
}

Test(grad, attention_backward_matches_fd) {
    enum { T = 7, Dk = 6, Dv = 5 };
    Rng r;
    rng_seed(&r, 9);
    float q[T * Dk], k[T * Dk], v[T * Dv], out[T * Dv], P[T * T], pr[T * Dv], dp[T * T];
    float dq[T * Dk] = {0}, dk[T * Dk] = {0}, dv[T * Dv] = {0};
    fill(q, T * Dk, &r, 1), fill(k, T * Dk, &r, 1), fill(v, T * Dv, &r, 1);
    fill(pr, T * Dv, &r, 1);
    AttCtx c = {T, Dk, Dv, q, k, v, out, P, pr};
    att_loss(&c, NULL);
    attention_head_backward(dq, dk, dv, pr, Dv, P, q, Dk, k, Dk, v, Dv, T, Dk, Dv, 0.3f, dp);
    double eq = fd_check(att_loss, &c, q, dq, T * Dk, 1e-2f);
    double ek = fd_check(att_loss, &c, k, dk, T * Dk, 1e-2f);
    double ev = fd_check(att_loss, &c, v, dv, T * Dv, 1e-2f);
    cr_expect(eq < 1e-3 && ek < 1e-3 && ev < 1e-3, "attention: dq %g dk %g dv %g", eq, ek, ev);
}

/* ---- the whole model ------------------------------------------------------- */

typedef struct {
    Model m;
    TrainActs acts;
    Weights g, scratch;
    int32_t tok[2 * 13];
    LossOpts o;
} ModelCtx;

static double model_loss(ModelCtx *c, Weights *g) {
    Err err;
    LossParts lp;
    cr_assert(model_forward_train(&c->m, &c->acts, c->tok, 2, 12, &err) == 0, "%s", err.msg);
    cr_assert(model_backward(&c->m, &c->acts, c->tok, &c->o, g, &lp, &err) == 0, "%s", err.msg);
    return lp.loss;
}

/* Check a few entries of every tensor (its largest gradient and two at
 * random) against central differences; returns the worst error relative
 * to the tensor's largest gradient. */
static double model_fd(ModelCtx *c, float h, const char **worst_name) {
    double worst = 0;
    uint64_t s = 1;
    model_loss(c, &c->g);
    for (int si = 0; si < c->m.w.n_specs; si++) {
        const ParamSpec *sp = &c->m.w.specs[si];
        if (sp->kind == PARAM_ROUTER_BIAS) continue;
        float *p = (float *)(c->m.w.data + sp->offset), *gp = (float *)(c->g.data + sp->offset);
        double gmax = 1e-6;
        int64_t imax = 0;
        for (int64_t i = 0; i < sp->numel; i++)
            if (fabs(gp[i]) > gmax) gmax = fabs(gp[i]), imax = i;
        /* routed experts are many and alike: the largest entry of one in
         * four (the sanitizer builds run this ~10x slower) */
        const char *ex = strstr(sp->name, ".experts.");
        if (ex && atoi(ex + 9) % 4 != 0) continue;
        const int n_probe = ex ? 1 : 3;
        for (int r = 0; r < n_probe; r++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t i = r == 0 ? imax : (int64_t)((s >> 33) % (uint64_t)sp->numel);
            float old = p[i];
            p[i] = old + h;
            double lp = model_loss(c, &c->scratch);
            p[i] = old - h;
            double lm = model_loss(c, &c->scratch);
            p[i] = old;
            double e = fabs((lp - lm) / (2 * h) - gp[i]) / gmax;
            if (e > worst) worst = e, *worst_name = sp->name;
        }
    }
    return worst;
}

static void model_ctx_init(ModelCtx *c, int dense) {
    Err err;
    ModelConfig cfg;
    memset(c, 0, sizeof *c);
    cr_assert(config_load(&cfg, h_data("v3_f32"), &err) == 0, "%s", err.msg);
    if (dense) cfg.first_k_dense_replace = cfg.num_hidden_layers + 1;
    cr_assert(model_create(&c->m, &cfg, &err) == 0, "%s", err.msg);
    weights_init_random(&c->m.w, 7, 0.2f);
    cr_assert(weights_alloc(&c->g, &cfg, QTYPE_F32, &err) == 0);
    cr_assert(weights_alloc(&c->scratch, &cfg, QTYPE_F32, &err) == 0);
    for (int i = 0; i < 26; i++) c->tok[i] = (i * 37 + 11) % cfg.vocab_size;
    c->o = (LossOpts){.mtp_lambda = 0.3f, .balance_alpha = 0.01f};
}

static void model_ctx_free(ModelCtx *c) {
    model_free(&c->m);
    train_acts_free(&c->acts);
    weights_free(&c->g);
    weights_free(&c->scratch);
}

/* Float32 losses of ~10 carry ~1e-6 noise, so h is large enough for that
 * to stay below 1e-2 of the gradient scale, and small enough that MoE
 * selections (a step function) rarely flip inside [-h, h]. */
Test(grad, dense_mla_mtp_model_matches_fd, .timeout = 400) {
    ModelCtx c;
    model_ctx_init(&c, 1);
    const char *name = "";
    double e = model_fd(&c, 1e-2f, &name);
    cr_expect(e < 1e-2, "worst relative error %g at %s", e, name);
    model_ctx_free(&c);
}

Test(grad, moe_model_matches_fd, .timeout = 400) {
    ModelCtx c;
    model_ctx_init(&c, 0);
    const char *name = "";
    double e = model_fd(&c, 1e-3f, &name);
    cr_expect(e < 3e-2, "worst relative error %g at %s", e, name);
    model_ctx_free(&c);
}
