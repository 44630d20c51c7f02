/* SPDX-License-Identifier: MIT */
/* Batched decoding (model_forward_batch) against model_forward one
 * sequence at a time, on random models of each family (tiny: DeepSeek-V3
 * MLA with q_lora and sigmoid group routing; tiny-v2: MLA without q_lora,
 * softmax routing; tiny-qwen2 and tiny-llama: GQA). Sequences with prompts
 * of different lengths are prefilled apart, then decode together while
 * some leave the batch. Tolerance 1e-5 of the logits' scale: the batch runs
 * its products through the packed GEMM (4 rows and more) where one token
 * runs a dot product per output, which sums in another order (~1e-7
 * relative); a wrong position, cache or row would move logits by far more.
 * With the per-row dot kernels forced the two agree exactly. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/matmul.h"
#include "model/model.h"
#include "model/presets.h"

#define REL_TOL 1e-5f
#define N_SEQ 5
#define N_STEP 6

static const char *presets[] = {"tiny", "tiny-v2", "tiny-qwen2", "tiny-llama"};
#define N_PRESETS ((int)(sizeof presets / sizeof presets[0]))

static const int prompt_len[N_SEQ] = {1, 4, 9, 2, 13};
/* sequence b decodes steps 0..n_steps[b]-1, then leaves the batch */
static const int n_steps[N_SEQ] = {6, 3, 6, 1, 5};

static void open_preset(Model *m, const char *name) {
    ModelConfig c;
    Err err = {0};
    cr_assert_eq(preset_config(name, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(model_create(m, &c, &err), 0, "%s: %s", name, err.msg);
    /* large enough weights that the logits spread over several units */
    weights_init_random(&m->w, 11, 0.3f);
}

/* The token sequence b feeds at index i (prompt then decoded tokens). */
static int token_of(int b, int i, int V) { return (int)((b * 7919u + i * 104729u + 13u) % (unsigned)V); }

static void prefill(Model *m, KVCache *kv, int b, float *logits) {
    int ids[32];
    for (int i = 0; i < prompt_len[b]; i++) ids[i] = token_of(b, i, m->cfg.vocab_size);
    Err err = {0};
    ForwardOpts o = {.logits = logits};
    cr_assert_eq(model_forward(m, kv, ids, prompt_len[b], &o, &err), 0, "%s", err.msg);
}

/* Max |got - want| over n, relative to max |want|; prints the first misses. */
static float rel_diff(const char *what, const float *got, const float *want, int n, float tol) {
    float mx = 0, scale = 0;
    for (int i = 0; i < n; i++) scale = fmaxf(scale, fabsf(want[i]));
    int shown = 0;
    for (int i = 0; i < n; i++) {
        float d = fabsf(got[i] - want[i]) / (scale > 0 ? scale : 1);
        if (!(d <= mx)) mx = d; /* NaN propagates */
        if (!(d <= tol) && shown++ < 5)
            fprintf(stderr, "%s: index %d: expected %.7f, got %.7f\n", what, i, want[i], got[i]);
    }
    return mx;
}

/* The logits of every (step, sequence) decoded one sequence at a time:
 * ref[(s * N_SEQ + b) * V]. */
static float *reference(Model *m, DType kv_type) {
    const int V = m->cfg.vocab_size;
    float *ref = calloc((size_t)N_STEP * N_SEQ * V, sizeof(float));
    Err err = {0};
    for (int b = 0; b < N_SEQ; b++) {
        KVCache kv;
        cr_assert_eq(kvcache_init(&kv, &m->cfg, 32, kv_type, 0, &err), 0, "%s", err.msg);
        prefill(m, &kv, b, NULL);
        for (int s = 0; s < n_steps[b]; s++) {
            int id = token_of(b, prompt_len[b] + s, V);
            ForwardOpts o = {.logits = ref + ((size_t)s * N_SEQ + b) * V};
            cr_assert_eq(model_forward(m, &kv, &id, 1, &o, &err), 0, "%s", err.msg);
        }
        kvcache_free(&kv);
    }
    return ref;
}

/* The same through model_forward_batch: each step runs the sequences that
 * still have steps left, in one call. Returns the worst relative diff. */
static float batched(Model *m, DType kv_type, const float *ref, const char *name) {
    const int V = m->cfg.vocab_size;
    KVCache kv[N_SEQ], *active[N_SEQ];
    int ids[N_SEQ], which[N_SEQ];
    float *lg = malloc(sizeof(float) * (size_t)N_SEQ * V), worst = 0;
    Err err = {0};
    for (int b = 0; b < N_SEQ; b++) {
        cr_assert_eq(kvcache_init(&kv[b], &m->cfg, 32, kv_type, 0, &err), 0, "%s", err.msg);
        prefill(m, &kv[b], b, lg);
    }
    for (int s = 0; s < N_STEP; s++) {
        int B = 0;
        for (int b = 0; b < N_SEQ; b++)
            if (s < n_steps[b]) {
                which[B] = b;
                active[B] = &kv[b];
                ids[B++] = token_of(b, prompt_len[b] + s, V);
            }
        if (!B) break;
        cr_assert_eq(model_forward_batch(m, active, ids, B, lg, &err), 0, "%s", err.msg);
        for (int i = 0; i < B; i++) {
            const int b = which[i];
            char what[64];
            snprintf(what, sizeof what, "%s step %d seq %d (batch of %d)", name, s, b, B);
            cr_assert_eq(kv[b].len, prompt_len[b] + s + 1, "%s: cache length", what);
            float d = rel_diff(what, lg + (size_t)i * V, ref + ((size_t)s * N_SEQ + b) * V, V,
                               REL_TOL);
            worst = d > worst || isnan(d) ? d : worst;
        }
    }
    for (int b = 0; b < N_SEQ; b++) kvcache_free(&kv[b]);
    free(lg);
    return worst;
}

Test(batch_decode, matches_one_sequence_at_a_time) {
    for (int p = 0; p < N_PRESETS; p++) {
        Model m;
        open_preset(&m, presets[p]);
        float *ref = reference(&m, DTYPE_F32);
        float d = batched(&m, DTYPE_F32, ref, presets[p]);
        fprintf(stderr, "batch %-10s max rel |diff| %.2e\n", presets[p], d);
        cr_expect(d <= REL_TOL, "%s: batched logits differ by %g (relative) > %g", presets[p], d,
                  REL_TOL);
        free(ref);
        model_free(&m);
    }
}

/* With the per-row dot kernels on both sides every row computes exactly
 * what it computes alone: the batch shares weights, never sums across rows. */
Test(batch_decode, exact_with_row_kernels) {
    const DType types[] = {DTYPE_F32, DTYPE_BF16};
    matmul_use_gemm = 0;
    for (int p = 0; p < N_PRESETS; p++) {
        for (int k = 0; k < 2; k++) {
            Model m;
            open_preset(&m, presets[p]);
            float *ref = reference(&m, types[k]);
            float d = batched(&m, types[k], ref, presets[p]);
            cr_expect_eq(d, 0.0f, "%s, %s cache: batched logits differ by %g (relative)",
                         presets[p], dtype_name(types[k]), d);
            free(ref);
            model_free(&m);
        }
    }
    matmul_use_gemm = 1;
}

Test(batch_decode, one_sequence_is_model_forward) {
    Model m;
    open_preset(&m, "tiny");
    const int V = m.cfg.vocab_size;
    KVCache a, b, *pb = &b;
    Err err = {0};
    cr_assert_eq(kvcache_init(&a, &m.cfg, 16, DTYPE_F32, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(kvcache_init(&b, &m.cfg, 16, DTYPE_F32, 0, &err), 0, "%s", err.msg);
    float *la = malloc(sizeof(float) * V), *lb = malloc(sizeof(float) * V);
    for (int t = 0; t < 8; t++) {
        int id = token_of(0, t, V);
        ForwardOpts o = {.logits = la};
        cr_assert_eq(model_forward(&m, &a, &id, 1, &o, &err), 0, "%s", err.msg);
        cr_assert_eq(model_forward_batch(&m, &pb, &id, 1, lb, &err), 0, "%s", err.msg);
        cr_assert_eq(memcmp(la, lb, sizeof(float) * V), 0, "step %d: B=1 differs from model_forward",
                     t);
    }
    cr_expect_eq(b.len, 8);
    free(la), free(lb);
    kvcache_free(&a), kvcache_free(&b);
    model_free(&m);
}

/* A sequence at its context limit (or a bad token) fails the whole call
 * with a message naming it, and no cache moves. */
Test(batch_decode, full_context_is_a_clear_error) {
    Model m;
    open_preset(&m, "tiny-qwen2");
    const int V = m.cfg.vocab_size;
    KVCache kv[3], *kvs[3] = {&kv[0], &kv[1], &kv[2]};
    const int ctx[3] = {4, 5, 12}; /* prompts of 1, 4 and 9: sequence 1 has room for one more */
    Err err = {0};
    for (int b = 0; b < 3; b++) {
        cr_assert_eq(kvcache_init(&kv[b], &m.cfg, ctx[b], DTYPE_F32, 0, &err), 0, "%s", err.msg);
        prefill(&m, &kv[b], b, NULL);
    }
    int ids[3] = {1, 2, 3};
    float *lg = malloc(sizeof(float) * 3 * V);
    cr_assert_eq(model_forward_batch(&m, kvs, ids, 3, lg, &err), 0, "%s", err.msg);
    cr_expect_neq(model_forward_batch(&m, kvs, ids, 3, lg, &err), 0, "a full context must fail");
    cr_expect(strstr(err.msg, "sequence 1") && strstr(err.msg, "context full"), "message: %s",
              err.msg);
    const int len[3] = {2, 5, 10};
    for (int b = 0; b < 3; b++) cr_expect_eq(kv[b].len, len[b], "cache %d moved on an error", b);
    /* without the full one, a bad token fails, then the others go on */
    KVCache *rest[2] = {&kv[0], &kv[2]};
    ids[1] = V;
    cr_expect_neq(model_forward_batch(&m, rest, ids, 2, lg, &err), 0);
    cr_expect(strstr(err.msg, "outside the vocabulary") && strstr(err.msg, "sequence 1"),
              "message: %s", err.msg);
    cr_expect_neq(model_forward_batch(&m, kvs, ids, 0, lg, &err), 0, "an empty batch must fail");
    ids[1] = 3;
    cr_expect_eq(model_forward_batch(&m, rest, ids, 2, lg, &err), 0, "%s", err.msg);
    cr_expect(kv[0].len == 3 && kv[2].len == 11, "lengths %d %d", kv[0].len, kv[2].len);
    for (int b = 0; b < 3; b++) kvcache_free(&kv[b]);
    free(lg);
    model_free(&m);
}
