/* SPDX-License-Identifier: MIT */
/* SIMD kernels against the scalar reference, the block formats against
 * their definitions, and a quantised model against the float32 one. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/threads.h"
#include "kernels/attention.h"
#include "kernels/dot.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/ops_simd.h"
#include "kernels/qgemm.h"
#include "kernels/quant.h"
#include "model/model.h"

static void fill(Rng *r, float *x, int n, float scale) {
    for (int i = 0; i < n; i++) x[i] = scale * rng_normal(r);
}

/* Every available SIMD level, every type, many lengths (block multiples for
 * the quantised types, any length for the plain ones), against the scalar
 * reference within 1e-5 of sum |w x| (the float accumulation order differs;
 * integer block products are exact). */
Test(kernels, simd_dot_matches_scalar) {
    const DotKernels *ref = dot_kernels(DOT_SCALAR);
    Rng r;
    rng_seed(&r, 7);
    float *w = malloc(4096 * 4), *x = malloc(4096 * 4);
    void *wq = malloc(4096 * 4);
    BlockQ8_0 *xq = malloc(4096 / QK * sizeof(BlockQ8_0));
    int tested = 0;
    for (int lvl = DOT_AVX2; lvl < DOT_LEVELS; lvl++) {
        const DotKernels *k = dot_kernels((DotLevel)lvl);
        if (!k) continue;
        for (int t = 0; t < QTYPE_COUNT; t++) {
            int blk = qtype_block((QType)t);
            for (int n = blk; n <= 4096; n = n < 80 ? n + blk : n * 2 + blk) {
                fill(&r, w, n, 1.0f);
                fill(&r, x, n, 1.0f);
                quantize_row((QType)t, w, wq, n);
                if (blk > 1) quantize_row(QTYPE_Q8_0, x, xq, n);
                float a = ref->dot[t](wq, x, xq, n), b = k->dot[t](wq, x, xq, n);
                float mag = 0;
                for (int i = 0; i < n; i++) mag += fabsf(w[i] * x[i]);
                cr_assert(fabsf(a - b) <= 1e-5f * mag + 1e-6f,
                          "%s %s n=%d: scalar %.7g, simd %.7g (|diff| %g, scale %g)", k->name,
                          qtype_name((QType)t), n, a, b, fabsf(a - b), mag);
                tested++;
            }
        }
    }
    fprintf(stderr, "simd dot: %d comparisons (best level here: %s)\n", tested, dot_best()->name);
    free(w), free(x), free(wq), free(xq);
}

/* Round trips: Q8_0 within half a step (d/2) per element, Q4_0 within half
 * a step except where the top code clamps (then within one step); the
 * largest-magnitude element of a Q4_0 block is exact by construction. */
Test(kernels, quant_round_trip_bounds) {
    Rng r;
    rng_seed(&r, 11);
    float x[256], y[256];
    unsigned char buf[256 * 4];
    for (int rep = 0; rep < 200; rep++) {
        fill(&r, x, 256, rep % 2 ? 0.01f : 3.0f);
        quantize_row(QTYPE_Q8_0, x, buf, 256);
        dequantize_row(QTYPE_Q8_0, buf, y, 256);
        for (int b = 0; b < 256 / QK; b++) {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[b * QK + j]));
            float step = amax / 127.0f;
            for (int j = 0; j < QK; j++) {
                int i = b * QK + j;
                /* fp16 rounding of the scale adds ~2^-11 relative */
                cr_assert(fabsf(x[i] - y[i]) <= step * 0.5f + amax * 1e-3f,
                          "q8_0 elem %d: %g -> %g (step %g)", i, x[i], y[i], step);
            }
        }
        quantize_row(QTYPE_Q4_0, x, buf, 256);
        dequantize_row(QTYPE_Q4_0, buf, y, 256);
        for (int b = 0; b < 256 / QK; b++) {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[b * QK + j]));
            float step = amax / 8.0f;
            for (int j = 0; j < QK; j++) {
                int i = b * QK + j;
                cr_assert(fabsf(x[i] - y[i]) <= step + amax * 1e-3f, "q4_0 elem %d: %g -> %g",
                          i, x[i], y[i]);
            }
        }
    }
}

/* quantize_rows on any thread count writes the bytes quantize_row does row
 * by row, for every storage type (the k-quants' searches included). */
Test(kernels, quantize_rows_match_row_by_row) {
    const QType types[] = {QTYPE_F16, QTYPE_BF16, QTYPE_Q8_0, QTYPE_Q4_0, QTYPE_Q4_K, QTYPE_Q6_K};
    const int rows = 37, cols = 512, counts[] = {1, 2, 5};
    Rng r;
    rng_seed(&r, 7);
    float *x = malloc(sizeof(float) * rows * cols);
    fill(&r, x, rows * cols, 1.0f);
    const int before = threads_max();
    for (int ti = 0; ti < 6; ti++) {
        const size_t rb = qtype_row_bytes(types[ti], cols);
        unsigned char *want = malloc(rb * rows), *got = malloc(rb * rows);
        for (int n = 0; n < rows; n++) quantize_row(types[ti], x + n * cols, want + n * rb, cols);
        for (int ci = 0; ci < 3; ci++) {
            threads_set(counts[ci]);
            memset(got, 0xa5, rb * rows);
            quantize_rows(types[ti], x, got, rows, cols);
            cr_assert_eq(memcmp(got, want, rb * rows), 0, "%s on %d threads",
                         qtype_name(types[ti]), counts[ci]);
        }
        free(want), free(got);
    }
    threads_set(before);
    free(x);
}

/* matmul over a quantised Mat equals the row-by-row reference dot, and the
 * transposed product equals the dequantised matrix's transpose product. */
Test(kernels, matmul_types_agree) {
    Rng r;
    rng_seed(&r, 3);
    const int N = 40, K = 96, T = 5;
    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * T * K);
    float *y = malloc(sizeof(float) * T * N), *wd = malloc(sizeof(float) * N * K);
    unsigned char *wq = malloc((size_t)N * K * 4);
    BlockQ8_0 xq[96 / QK];
    fill(&r, w, N * K, 0.1f);
    fill(&r, x, T * K, 1.0f);
    for (int t = 0; t < QTYPE_COUNT; t++) {
        if (K % qtype_block((QType)t)) continue; /* 256-blocks: tests/test_gguf_model.c */
        size_t rb = qtype_row_bytes((QType)t, K);
        for (int n = 0; n < N; n++) quantize_row((QType)t, w + n * K, wq + n * rb, K);
        Mat m = mat_of(wq, (QType)t, N, K);
        matmul_use_gemm = 0; /* the dot path; gemm_matches_dot_path covers the other */
        matmul(y, x, &m, T);
        matmul_use_gemm = 1;
        for (int tt = 0; tt < T; tt++) {
            quantize_row(QTYPE_Q8_0, x + tt * K, xq, K);
            for (int n = 0; n < N; n++) {
                float want = vec_dot_ref((QType)t, wq + n * rb, x + tt * K, xq, K);
                cr_assert(fabsf(y[tt * N + n] - want) <= 1e-4f, "%s matmul [%d,%d]: %g vs %g",
                          qtype_name((QType)t), tt, n, y[tt * N + n], want);
            }
        }
        /* transposed: y2 (T, K) = x2 (T, N) W */
        float *x2 = malloc(sizeof(float) * T * N), *y2 = malloc(sizeof(float) * T * K);
        fill(&r, x2, T * N, 1.0f);
        matmul_t(y2, x2, &m, 0, N, T);
        for (int n = 0; n < N; n++) dequantize_row((QType)t, wq + n * rb, wd + n * K, K);
        for (int tt = 0; tt < T; tt++)
            for (int k = 0; k < K; k++) {
                float want = 0;
                for (int n = 0; n < N; n++) want += x2[tt * N + n] * wd[n * K + k];
                cr_assert(fabsf(y2[tt * K + k] - want) <= 1e-4f, "%s matmul_t: %g vs %g",
                          qtype_name((QType)t), y2[tt * K + k], want);
            }
        free(x2), free(y2);
    }
    free(w), free(x), free(y), free(wd), free(wq);
}

/* A model loaded with quantised matrices stays close to the float32
 * reference. Documented tolerances (random weights are the worst case for
 * few bits): bf16 max |diff| 0.15; q8_0 max |diff| 0.6, correlation >= 0.998,
 * greedy token agreement >= 80%; q4_0 correlation >= 0.85. */
Test(kernels, quantised_model_close_to_reference) {
    const char *cases[] = {"v3_f32", "llama", "qwen2"};
    const char *data = getenv("WHALE_DATA");
    for (int c = 0; c < 3; c++) {
        char dir[1024], path[1100];
        snprintf(dir, sizeof dir, "%s/%s", data ? data : "tests/data", cases[c]);
        snprintf(path, sizeof path, "%s/logits.bin", dir);
        FILE *f = fopen(path, "rb");
        cr_assert(f);
        fseek(f, 0, SEEK_END);
        long bytes = ftell(f);
        rewind(f);
        float *ref = malloc((size_t)bytes);
        cr_assert_eq(fread(ref, 1, (size_t)bytes, f), (size_t)bytes);
        fclose(f);
        snprintf(path, sizeof path, "%s/ids.txt", dir);
        f = fopen(path, "r");
        int ids[256], n = 0;
        while (n < 256 && fscanf(f, "%d,", &ids[n]) == 1) n++;
        fclose(f);
        QType types[] = {QTYPE_BF16, QTYPE_Q8_0, QTYPE_Q4_0};
        for (int q = 0; q < 3; q++) {
            Model m;
            KVCache kv;
            Err err = {0};
            cr_assert_eq(model_open_as(&m, dir, types[q], &err), 0, "%s", err.msg);
            const int V = m.cfg.vocab_size;
            cr_assert_eq((long)n * V * 4, bytes);
            cr_assert_eq(kvcache_init(&kv, &m.cfg, n, DTYPE_F32, 0, &err), 0, "%s", err.msg);
            float *lg = malloc(sizeof(float) * (size_t)n * V);
            ForwardOpts o = {.logits = lg, .all_logits = 1};
            cr_assert_eq(model_forward(&m, &kv, ids, n, &o, &err), 0, "%s", err.msg);
            double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
            float mx = 0;
            int agree = 0;
            for (int t = 0; t < n; t++) {
                int ia = 0, ib = 0;
                for (int v = 0; v < V; v++) {
                    double a = lg[t * V + v], b = ref[t * V + v];
                    sa += a, sb += b, saa += a * a, sbb += b * b, sab += a * b;
                    mx = fmaxf(mx, fabsf((float)(a - b)));
                    if (lg[t * V + v] > lg[t * V + ia]) ia = v;
                    if (ref[t * V + v] > ref[t * V + ib]) ib = v;
                }
                agree += ia == ib;
            }
            double N = (double)n * V;
            double corr = (sab - sa * sb / N) / sqrt((saa - sa * sa / N) * (sbb - sb * sb / N));
            fprintf(stderr, "%-7s %-5s max|diff| %.3f corr %.4f greedy agree %d/%d\n", cases[c],
                    qtype_name(types[q]), mx, corr, agree, n);
            if (types[q] == QTYPE_BF16) cr_expect(mx <= 0.15f, "bf16 max diff %g", mx);
            if (types[q] == QTYPE_Q8_0) {
                cr_expect(mx <= 0.6f && corr >= 0.998, "q8_0: max diff %g, corr %g", mx, corr);
                cr_expect(agree * 5 >= n * 4, "q8_0 greedy agreement %d/%d", agree, n);
            }
            if (types[q] == QTYPE_Q4_0) cr_expect(corr >= 0.85, "q4_0 corr %g", corr);
            free(lg);
            kvcache_free(&kv);
            model_free(&m);
        }
        free(ref);
    }
}

/* The packed GEMM (many tokens) and the unpacked few-token kernel (float
 * weights, 2 tokens and more) where AVX-512 exists, against the per-row
 * dot path, on ragged shapes: tokens not a multiple of the 12-row tile or
 * of 4, outputs not a multiple of the 32-column panel or of 4 (up to 16
 * panels the GEMM reads the activations in place, at 530 outputs it packs
 * them), depths past one 256-deep slice and not a multiple of 16, every
 * storage type. */
Test(kernels, gemm_matches_dot_path) {
    if (!gemm_available()) {
        fprintf(stderr, "gemm: no AVX-512 here, dot path only\n");
        return;
    }
    Rng r;
    rng_seed(&r, 5);
    const int Ts[] = {2, 3, 5, 13, 25, 40}, Ns[] = {1, 31, 33, 70, 530}, Ks[] = {32, 96, 288, 552};
    for (int ti = 0; ti < 6; ti++)
        for (int ni = 0; ni < 5; ni++)
            for (int ki = 0; ki < 4; ki++)
                for (int t = 0; t < QTYPE_COUNT; t++) {
                    const int T = Ts[ti], N = Ns[ni], K = Ks[ki];
                    if (K % qtype_block((QType)t)) continue; /* 256-blocks: test_gguf_model.c */
                    float *w = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * T * K);
                    float *y0 = malloc(sizeof(float) * T * N), *y1 = malloc(sizeof(float) * T * N);
                    unsigned char *wq = malloc((size_t)N * K * 4);
                    fill(&r, w, N * K, 0.1f);
                    fill(&r, x, T * K, 1.0f);
                    size_t rb = qtype_row_bytes((QType)t, K);
                    for (int n = 0; n < N; n++) quantize_row((QType)t, w + n * K, wq + n * rb, K);
                    /* the GEMM multiplies by the dequantised weights in float,
                     * the dot path by Q8_0 activations: compare quantised
                     * types against a float reference on dequantised rows */
                    Mat m = mat_of(wq, (QType)t, N, K);
                    float *y2 = malloc(sizeof(float) * T * N);
                    cr_assert_eq(gemm_nt(y1, x, &m, 0, N, T), 0);
                    const int small = gemm_nt_small(y2, x, &m, 0, N, T) == 0;
                    cr_assert_eq(small, qtype_block((QType)t) == 1, "%s", qtype_name((QType)t));
                    float *wd = malloc(sizeof(float) * N * K);
                    for (int n = 0; n < N; n++) dequantize_row((QType)t, wq + n * rb, wd + n * K, K);
                    Mat md = mat_f32(wd, N, K);
                    matmul_use_gemm = 0;
                    matmul(y0, x, &md, T);
                    matmul_use_gemm = 1;
                    for (int i = 0; i < T * N; i++) {
                        cr_assert(fabsf(y0[i] - y1[i]) <= 1e-4f * (1 + fabsf(y0[i])),
                                  "%s T=%d N=%d K=%d at %d: dot %g, gemm %g",
                                  qtype_name((QType)t), T, N, K, i, y0[i], y1[i]);
                        cr_assert(!small || fabsf(y0[i] - y2[i]) <= 1e-4f * (1 + fabsf(y0[i])),
                                  "%s T=%d N=%d K=%d at %d: dot %g, few-token kernel %g",
                                  qtype_name((QType)t), T, N, K, i, y0[i], y2[i]);
                    }
                    free(w), free(x), free(y0), free(y1), free(y2), free(wq), free(wd);
                }
}

/* Prefill attention in query blocks through the GEMM against the same
 * queries one at a time (the row loop), ragged: blocks that end mid-way,
 * a prefix already cached (pos0 > 0), strided rows. */
Test(kernels, blocked_attention_matches_rows) {
    Rng r;
    rng_seed(&r, 9);
    const int T = 2 * ATTENTION_BLOCK + 7, pos0 = 5, S = pos0 + T, Dk = 24, Dv = 16, H = 3;
    float *q = malloc(sizeof(float) * T * H * Dk), *k = malloc(sizeof(float) * S * H * Dk);
    float *v = malloc(sizeof(float) * S * H * Dv);
    float *o1 = malloc(sizeof(float) * T * H * Dv), *o2 = malloc(sizeof(float) * T * H * Dv);
    float *sc = malloc(sizeof(float) * attention_scratch(T, S));
    fill(&r, q, T * H * Dk, 1.0f);
    fill(&r, k, S * H * Dk, 1.0f);
    fill(&r, v, S * H * Dv, 1.0f);
    /* head 1 of (T, H, D) buffers */
    const float *qh = q + Dk, *kh = k + Dk, *vh = v + Dv;
    attention_head(o1 + Dv, H * Dv, qh, H * Dk, kh, H * Dk, vh, H * Dv, T, pos0, Dk, Dv, 0.2f, sc);
    for (int t = 0; t < T; t++)
        attention_head(o2 + (size_t)t * H * Dv + Dv, H * Dv, qh + (size_t)t * H * Dk, H * Dk, kh,
                       H * Dk, vh, H * Dv, 1, pos0 + t, Dk, Dv, 0.2f, sc);
    for (int t = 0; t < T; t++)
        for (int d = 0; d < Dv; d++) {
            float a = o1[(size_t)t * H * Dv + Dv + d], b = o2[(size_t)t * H * Dv + Dv + d];
            cr_assert(fabsf(a - b) <= 1e-5f * (1 + fabsf(b)), "query %d dim %d: blocks %g, rows %g",
                      t, d, a, b);
        }
    free(q), free(k), free(v), free(o1), free(o2), free(sc);
}

/* Training attention's AVX-512 tiles (attention_avx512.c) against the
 * scalar reference (sgemm_use_ref: the sgemm path, its sums in double),
 * forward and backward: sequence lengths around the 12-row blocks and the
 * 64-key panels, head sizes that are not multiples of 16 or that take
 * several panels, heads as strided slices of (T, H, D) buffers. P and the
 * scratch start as NaN, so a read of anything the forward does not promise
 * to write shows; the gradients are accumulated into nonzero values. */
Test(kernels, training_attention_matches_reference) {
    Rng r;
    rng_seed(&r, 12);
    const int shapes[][3] = {{1, 8, 8},    {13, 6, 5},   {64, 64, 32}, {77, 20, 16},
                             {130, 72, 48}, {256, 64, 32}, {203, 130, 70}};
    const int H = 2;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int T = shapes[si][0], Dk = shapes[si][1], Dv = shapes[si][2];
        const size_t nq = (size_t)T * H * Dk, nv = (size_t)T * H * Dv, TT = (size_t)T * T;
        float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nq);
        float *v = malloc(sizeof(float) * nv), *dout = malloc(sizeof(float) * nv);
        float *out[2], *P[2], *dq[2], *dk[2], *dv[2], *dp = malloc(sizeof(float) * TT);
        fill(&r, q, nq, 1.0f), fill(&r, k, nq, 1.0f), fill(&r, v, nv, 1.0f), fill(&r, dout, nv, 1.0f);
        for (int ref = 0; ref < 2; ref++) {
            out[ref] = malloc(sizeof(float) * nv), P[ref] = malloc(sizeof(float) * TT);
            dq[ref] = malloc(sizeof(float) * nq), dk[ref] = malloc(sizeof(float) * nq);
            dv[ref] = malloc(sizeof(float) * nv);
            for (size_t i = 0; i < TT; i++) P[ref][i] = dp[i] = NAN;
            for (size_t i = 0; i < nq; i++) dq[ref][i] = dk[ref][i] = 0.5f;
            for (size_t i = 0; i < nv; i++) dv[ref][i] = out[ref][i] = 0.5f;
            sgemm_use_ref = ref;
            /* head 1 of the (T, H, D) buffers */
            attention_head_train(out[ref] + Dv, H * Dv, P[ref], q + Dk, H * Dk, k + Dk, H * Dk,
                                 v + Dv, H * Dv, T, Dk, Dv, 0.3f);
            attention_head_backward(dq[ref] + Dk, dk[ref] + Dk, dv[ref] + Dv, dout + Dv, H * Dv,
                                    P[ref], q + Dk, H * Dk, k + Dk, H * Dk, v + Dv, H * Dv, T, Dk,
                                    Dv, 0.3f, dp);
            sgemm_use_ref = 0;
        }
        const struct { const char *name; const float *a, *b; size_t n; } cmp[] = {
            {"out", out[0], out[1], nv}, {"dq", dq[0], dq[1], nq}, {"dk", dk[0], dk[1], nq},
            {"dv", dv[0], dv[1], nv}};
        for (int c = 0; c < 4; c++)
            for (size_t i = 0; i < cmp[c].n; i++)
                cr_assert(fabsf(cmp[c].a[i] - cmp[c].b[i]) <= 1e-4f * (1 + fabsf(cmp[c].b[i])),
                          "T %d Dk %d Dv %d: %s[%zu] %g, reference %g", T, Dk, Dv, cmp[c].name, i,
                          cmp[c].a[i], cmp[c].b[i]);
        for (int t = 0; t < T; t++)
            for (int s = 0; s <= t; s++)
                cr_assert(fabsf(P[0][(size_t)t * T + s] - P[1][(size_t)t * T + s]) <= 1e-5f,
                          "T %d: P[%d][%d] %g, reference %g", T, t, s, P[0][(size_t)t * T + s],
                          P[1][(size_t)t * T + s]);
        for (int ref = 0; ref < 2; ref++)
            free(out[ref]), free(P[ref]), free(dq[ref]), free(dk[ref]), free(dv[ref]);
        free(q), free(k), free(v), free(dout), free(dp);
    }
}

/* The integer prefill GEMM (qgemm.h, Q8_0, Q4_0, Q4_K) against the scalar
 * reference dot on the same weights and quantize_row's Q8_0 activations:
 * row counts that are not multiples of the 16-row panel, token counts
 * around the 12-token tile (1, 5, 12, 64, 65, 128, 200), a row range that
 * starts inside the matrix, K a multiple of 32 only (of 256 for Q4_K), on
 * one thread and split over threads.
 * Tolerance: both sum the blocks in order, each block's term rounds
 * differently (int x d_w x d_x against int x (d_w d_x)) and the partial
 * sums then differ by an ulp per block: (nb + 2) x 2^-23 of sum |w x|. An
 * activation code quantised differently from quantize_row would move an
 * output by ~1e-2 / nb of that sum, far outside it. */
Test(kernels, qgemm_matches_scalar_reference) {
    if (!qgemm_available(QTYPE_Q8_0)) {
        fprintf(stderr, "qgemm: no AVX-512 VNNI here\n");
        return;
    }
    Mat f32 = mat_f32(NULL, 1, 32);
    cr_assert_eq(qgemm_nt(NULL, NULL, 1, &f32, 0, 1), -1, "float weights are not for qgemm");
    Rng r;
    rng_seed(&r, 33);
    const QType types[] = {QTYPE_Q8_0, QTYPE_Q4_0, QTYPE_Q4_K, QTYPE_Q6_K};
    const int Ts[] = {1, 5, 12, 64, 65, 128, 200}, Ns[] = {1, 17, 45}, Ks[] = {32, 96, 544};
    int checked = 0;
    for (int qi = 0; qi < 4; qi++)
        for (int ni = 0; ni < 3; ni++)
            for (int ki = 0; ki < 3; ki++)
                for (int ti = 0; ti < 7; ti++) {
                    const QType t = types[qi];
                    /* Q4_K, Q6_K: 256-element super-blocks, K = 256, 768, 1536 */
                    const int K = qtype_block(t) == 256 ? 256 * (ki ? 3 * ki : 1) : Ks[ki];
                    const int T = Ts[ti], N = Ns[ni], nb = K / QK;
                    const int row0 = N > 1 ? 3 : 0, rows = row0 + N + 2;
                    const size_t rb = qtype_row_bytes(t, K), xb = qtype_row_bytes(QTYPE_Q8_0, K);
                    float *w = malloc(sizeof(float) * rows * K), *x = malloc(sizeof(float) * T * K);
                    float *wd = malloc(sizeof(float) * rows * K), *xd = malloc(sizeof(float) * K);
                    unsigned char *wq = malloc(rb * rows), *xq = malloc(xb);
                    float *y = malloc(sizeof(float) * T * N);
                    fill(&r, w, rows * K, 0.1f);
                    fill(&r, x, T * K, 1.0f);
                    for (int n = 0; n < rows; n++) {
                        quantize_row(t, w + n * K, wq + n * rb, K);
                        dequantize_row(t, wq + n * rb, wd + n * K, K);
                    }
                    Mat m = mat_of(wq, t, rows, K);
                    cr_assert_eq(qgemm_nt(y, x, T, &m, row0, N), 0);
                    for (int i = 0; i < T; i++) {
                        quantize_row(QTYPE_Q8_0, x + i * K, xq, K);
                        dequantize_row(QTYPE_Q8_0, xq, xd, K);
                        for (int n = 0; n < N; n++) {
                            const float *wn = wd + (size_t)(row0 + n) * K;
                            float want = vec_dot_ref(t, wq + (row0 + n) * rb, NULL,
                                                     (const BlockQ8_0 *)xq, K);
                            float got = y[i * N + n], mag = 0;
                            for (int k = 0; k < K; k++) mag += fabsf(wn[k] * xd[k]);
                            const float tol = (float)(nb + 2) * 0x1p-23f * mag;
                            cr_assert(fabsf(got - want) <= tol,
                                      "%s T=%d N=%d K=%d token %d row %d: reference %.9g, qgemm "
                                      "%.9g (|diff| %g > %g)",
                                      qtype_name(t), T, N, K, i, n, want, got, fabsf(got - want),
                                      tol);
                            checked++;
                        }
                    }
                    free(w), free(x), free(wd), free(xd), free(wq), free(xq), free(y);
                }
    fprintf(stderr, "qgemm: %d outputs checked\n", checked);
}

/* Q8_0 / Q4_0 / Q4_K / Q6_K matrices stored as panels (qgemm_pack): every row reads back
 * as the bytes it had; products over any token count (1 .. 40) and
 * panel-aligned row ranges equal the integer GEMM on the row layout bit
 * for bit (same tile, same activations, same scales); a range starting
 * inside a panel (the fallback) equals the row layout's dot kernels bit
 * for bit, and matmul_t the float reference; shapes and types that cannot
 * be packed are refused and left alone. */
Test(kernels, packed_panels_match_row_layout) {
    if (!qgemm_available(QTYPE_Q4_0)) {
        fprintf(stderr, "panels: no AVX-512 VNNI here\n");
        return;
    }
    /* the row layout's products run at dot_best()'s level; bit for bit
     * holds against the VNNI one only (WHALE_SIMD=avx2 caps it below) */
    if (dot_best() != dot_kernels(DOT_AVX512_VNNI)) {
        fprintf(stderr, "panels: WHALE_SIMD caps the row layout below VNNI\n");
        return;
    }
    Rng r;
    rng_seed(&r, 41);
    const QType types[] = {QTYPE_Q8_0, QTYPE_Q4_0, QTYPE_Q4_K, QTYPE_Q6_K};
    /* K: blocks in pairs, and odd counts that leave the last one alone;
     * Q4_K's and Q6_K's whole super-blocks (the row layout's unit), 1 to 3
     * of them */
    const int Rows[] = {16, 48}, Ks[] = {32, 64, 96, 544, 1024}, Ts[] = {1, 2, 5, 12, 13, 40};
    const int Ks_k[] = {256, 512, 768};
    int checked = 0;
    for (int qi = 0; qi < 4; qi++)
        for (int ri = 0; ri < 2; ri++)
            for (int ki = 0; ki < 5; ki++) {
                const QType t = types[qi];
                if (qtype_block(t) == 256 && ki >= 3) continue;
                const int rows = Rows[ri], K = qtype_block(t) == 256 ? Ks_k[ki] : Ks[ki];
                const size_t rb = qtype_row_bytes(t, K);
                float *w = malloc(sizeof(float) * rows * K), *wd = malloc(sizeof(float) * rows * K);
                float *row = malloc(sizeof(float) * K);
                unsigned char *wq = malloc(rb * rows), *wp = malloc(rb * rows);
                fill(&r, w, rows * K, 0.1f);
                for (int n = 0; n < rows; n++) {
                    quantize_row(t, w + n * K, wq + n * rb, K);
                    dequantize_row(t, wq + n * rb, wd + n * K, K);
                }
                memcpy(wp, wq, rb * rows);
                Mat m = mat_of(wq, t, rows, K), p = mat_of(wp, t, rows, K);
                cr_assert_eq(qgemm_pack(&p), 0, "%s %dx%d", qtype_name(t), rows, K);
                cr_assert(p.panels && memcmp(wp, wq, rb * rows) != 0);
                cr_assert_eq(qgemm_pack(&p), -1, "packed twice");
                unsigned char *back = malloc(rb);
                for (int n = 0; n < rows; n++) {
                    qgemm_panel_row(&p, n, back);
                    cr_assert_eq(memcmp(back, wq + n * rb, rb), 0,
                                 "%s K=%d row %d reads back differently", qtype_name(t), K, n);
                    mat_dequantize_row(&p, n, row);
                    cr_assert_eq(memcmp(row, wd + n * K, sizeof(float) * K), 0);
                }
                free(back);
                for (int ti = 0; ti < 6; ti++) {
                    const int T = Ts[ti];
                    float *x = malloc(sizeof(float) * T * K), *y = malloc(sizeof(float) * T * rows);
                    float *y2 = malloc(sizeof(float) * T * rows);
                    fill(&r, x, T * K, 1.0f);
                    const int row0 = rows > 16 ? 16 : 0, nr = rows - row0;
                    cr_assert_eq(qgemm_nt(y, x, T, &m, row0, nr), 0);
                    matmul_rows(y2, x, &p, row0, nr, T);
                    cr_assert_eq(memcmp(y, y2, sizeof(float) * T * nr), 0,
                                 "%s K=%d T=%d: panels differ from the row layout", qtype_name(t),
                                 K, T);
                    /* inside a panel (rows 3 .. rows-2): rows read back into
                     * the dot kernels, as the row layout runs them */
                    matmul_use_gemm = 0;
                    matmul_rows(y, x, &m, 3, rows - 4, T);
                    matmul_use_gemm = 1;
                    matmul_rows(y2, x, &p, 3, rows - 4, T);
                    cr_assert_eq(memcmp(y, y2, sizeof(float) * T * (rows - 4)), 0,
                                 "%s K=%d T=%d: rows inside a panel", qtype_name(t), K, T);
                    checked += T * (rows - 4);
                    /* the transposed product reads rows back too */
                    float *xt = malloc(sizeof(float) * T * rows), *yt = malloc(sizeof(float) * T * K);
                    fill(&r, xt, T * rows, 1.0f);
                    matmul_t(yt, xt, &p, 0, rows, T);
                    for (int i = 0; i < T; i++)
                        for (int k = 0; k < K; k++) {
                            float want = 0, mag = 0;
                            for (int n = 0; n < rows; n++) {
                                want += xt[i * rows + n] * wd[n * K + k];
                                mag += fabsf(xt[i * rows + n] * wd[n * K + k]);
                            }
                            cr_assert(fabsf(yt[i * K + k] - want) <= 1e-5f * (1 + mag),
                                      "%s matmul_t K=%d T=%d", qtype_name(t), K, T);
                        }
                    free(x), free(y), free(y2), free(xt), free(yt);
                }
                free(w), free(wd), free(row), free(wq), free(wp);
            }
    /* refused: a row count off the panel, a type without a stored panel */
    unsigned char buf[34 * 17];
    memset(buf, 0, sizeof buf);
    Mat odd = mat_of(buf, QTYPE_Q8_0, 17, 32), bf = mat_of(buf, QTYPE_BF16, 16, 16);
    Mat f32 = mat_f32((const float *)buf, 16, 8);
    cr_assert_eq(qgemm_pack(&odd), -1);
    cr_assert_eq(qgemm_pack(&bf), -1);
    cr_assert_eq(qgemm_pack(&f32), -1);
    cr_assert(!odd.panels && !bf.panels && !f32.panels);
    fprintf(stderr, "panels: %d outputs inside a panel checked\n", checked);
}

/* A decoding step's products split over threads by their measured speeds
 * (threads_run_*): whatever shares the threads learn over many calls, on
 * 2 and 3 threads (3 on a 2-core machine makes one lag and skews them),
 * every output equals the one-thread product bit for bit: stored panels
 * (Q4_0, Q8_0: the integer GEMM), and the row layout's dot kernels (Q4_K,
 * Q6_K, F16 at one token), one token and three. y starts as NaN each call,
 * so a row no thread ran shows. */
Test(kernels, decode_split_by_speed_matches_one_thread) {
    Rng r;
    rng_seed(&r, 43);
    const int before = threads_max(), rows = 600, K = 2048, Ts[] = {1, 3};
    const QType types[] = {QTYPE_Q4_0, QTYPE_Q8_0, QTYPE_Q4_K, QTYPE_Q6_K, QTYPE_F16};
    for (int qi = 0; qi < 5; qi++) {
        const QType t = types[qi];
        const size_t rb = qtype_row_bytes(t, K);
        float *w = malloc(sizeof(float) * rows * K), *x = malloc(sizeof(float) * 3 * K);
        float *want = malloc(sizeof(float) * 3 * rows), *got = malloc(sizeof(float) * 3 * rows);
        unsigned char *wq = malloc(rb * rows);
        fill(&r, w, rows * K, 0.1f);
        fill(&r, x, 3 * K, 1.0f);
        for (int n = 0; n < rows; n++) quantize_row(t, w + n * K, wq + n * rb, K);
        Mat m = mat_of(wq, t, rows, K);
        if (t == QTYPE_Q4_0 || t == QTYPE_Q8_0) qgemm_pack(&m); /* where VNNI allows */
        for (int ti = 0; ti < 2; ti++) {
            const int T = Ts[ti];
            threads_set(1);
            matmul(want, x, &m, T);
            for (int nt = 2; nt <= 3; nt++) {
                threads_set(nt);
                for (int call = 0; call < 40; call++) {
                    for (int i = 0; i < T * rows; i++) got[i] = NAN;
                    matmul(got, x, &m, T);
                    for (int i = 0; i < T * rows; i++)
                        cr_assert(memcmp(&got[i], &want[i], sizeof(float)) == 0,
                                  "%s T=%d, %d threads, call %d: output %d (token %d row %d) is "
                                  "%.9g, one thread gave %.9g",
                                  qtype_name(t), T, nt, call, i, i / rows, i % rows, got[i],
                                  want[i]);
                }
            }
        }
        free(w), free(x), free(want), free(got), free(wq);
    }
    threads_set(before);
}

/* Products of one x in one pass (matmul_same_x / qgemm_nt_multi): the
 * same numbers as one matmul each, for stored panels and the row layout,
 * at decoding and prefill token counts; a mixed list (another type, or
 * panels beside rows) is refused by qgemm_nt_multi and still right through
 * matmul_same_x. */
Test(kernels, same_x_products_match_single) {
    Rng r;
    rng_seed(&r, 43);
    const int K = 96, rows[3] = {48, 16, 32}, Ts[] = {1, 3, 12, 30};
    const QType types[] = {QTYPE_Q8_0, QTYPE_Q4_0};
    for (int qi = 0; qi < 2; qi++)
        for (int packed = 0; packed < 2; packed++)
            for (int ti = 0; ti < 4; ti++) {
                const QType t = types[qi];
                const int T = Ts[ti];
                const size_t rb = qtype_row_bytes(t, K);
                Mat m[3];
                const Mat *mp[3];
                float *y[3], *y1[3];
                float *x = malloc(sizeof(float) * T * K), *w = malloc(sizeof(float) * K);
                fill(&r, x, T * K, 1.0f);
                for (int i = 0; i < 3; i++) {
                    unsigned char *q = malloc(rb * rows[i]);
                    for (int n = 0; n < rows[i]; n++) {
                        fill(&r, w, K, 0.1f);
                        quantize_row(t, w, q + n * rb, K);
                    }
                    m[i] = mat_of(q, t, rows[i], K);
                    if (packed && qgemm_available(t)) cr_assert_eq(qgemm_pack(&m[i]), 0);
                    mp[i] = &m[i];
                    y[i] = malloc(sizeof(float) * T * rows[i]);
                    y1[i] = malloc(sizeof(float) * T * rows[i]);
                }
                matmul_same_x(y, x, mp, 3, T);
                for (int i = 0; i < 3; i++) {
                    matmul(y1[i], x, &m[i], T);
                    cr_assert_eq(memcmp(y[i], y1[i], sizeof(float) * T * rows[i]), 0,
                                 "%s packed=%d T=%d product %d", qtype_name(t), packed, T, i);
                }
                if (packed && qgemm_available(t)) {
                    Mat rowsm = mat_of(NULL, t, 16, K), other = m[1];
                    other.type = t == QTYPE_Q8_0 ? QTYPE_Q4_0 : QTYPE_Q8_0;
                    const Mat *mixed[2] = {&m[0], &rowsm}, *mixed_t[2] = {&m[0], &other};
                    cr_assert_eq(qgemm_nt_multi(y, x, T, mixed, 2), -1);
                    cr_assert_eq(qgemm_nt_multi(y, x, T, mixed_t, 2), -1);
                }
                for (int i = 0; i < 3; i++) free((void *)m[i].data), free(y[i]), free(y1[i]);
                free(x), free(w);
            }
}

/* Products each of its own input in one pass (matmul_each / qgemm_nt_each):
 * 20 products (more than a pass took before), of three widths K and
 * three inputs, two pairs of them sharing one input, stored panels and
 * the row layout, at decoding and prefill token counts: the same numbers
 * as one matmul each. A list mixing types is refused by qgemm_nt_each and
 * still right through matmul_each. */
Test(kernels, each_products_match_single) {
    Rng r;
    rng_seed(&r, 44);
    enum { NP = 20 };
    const int Ks[3] = {64, 1024, 96}, Ts[] = {1, 3, 12, 30};
    /* case c: Q8_0 or Q4_0 (bit 0), row layout or panels (bit 1), T */
    for (int c = 0; c < 16; c++) {
        const QType t = c & 1 ? QTYPE_Q4_0 : QTYPE_Q8_0;
        const int packed = c >> 1 & 1, T = Ts[c >> 2];
        float *xin[3];
        for (int k = 0; k < 3; k++) {
            xin[k] = malloc(sizeof(float) * T * Ks[k]);
            fill(&r, xin[k], T * Ks[k], 1.0f);
        }
        Mat m[NP];
        const Mat *mp[NP];
        const float *xs[NP];
        float *y[NP], *y1[NP];
        float *w = malloc(sizeof(float) * 1024);
        for (int i = 0; i < NP; i++) {
            const int k = i % 3, K = Ks[k], rows = 16 * (1 + i % 4);
            const size_t rb = qtype_row_bytes(t, K);
            unsigned char *q = malloc(rb * rows);
            for (int n = 0; n < rows; n++) {
                fill(&r, w, K, 0.1f);
                quantize_row(t, w, q + n * rb, K);
            }
            m[i] = mat_of(q, t, rows, K);
            if (packed && qgemm_available(t)) cr_assert_eq(qgemm_pack(&m[i]), 0);
            mp[i] = &m[i];
            xs[i] = xin[k];
            y[i] = malloc(sizeof(float) * T * rows);
            y1[i] = malloc(sizeof(float) * T * rows);
        }
        matmul_each(y, xs, mp, NP, T);
        for (int i = 0; i < NP; i++) {
            matmul(y1[i], xs[i], &m[i], T);
            cr_assert_eq(memcmp(y[i], y1[i], sizeof(float) * T * m[i].rows), 0,
                         "%s packed=%d T=%d product %d (K %d)", qtype_name(t), packed, T,
                         i, m[i].cols);
        }
        if (qgemm_available(t)) {
            Mat other = m[1];
            other.type = t == QTYPE_Q8_0 ? QTYPE_Q4_0 : QTYPE_Q8_0;
            const Mat *mixed[2] = {&m[0], &other};
            cr_assert_eq(qgemm_nt_each(y, xs, T, mixed, 2), -1);
        }
        for (int i = 0; i < NP; i++) free((void *)m[i].data), free(y[i]), free(y1[i]);
        for (int k = 0; k < 3; k++) free(xin[k]);
        free(w);
    }
}

/* The AVX-512 and AVX2 softmax and SwiGLU gate (forward and backward)
 * against their scalar references: lengths around the 16-lane tails, scores up to
 * +-100 (exp's clamps), masked (-inf) entries and an all-masked row (zeros),
 * NaN passed on. Tolerance 4e-7 relative (+ 1e-30): exp within 2 ulp, the
 * products rounded in another order; the gate's gradient against the size
 * of its terms. */
typedef struct ExpForms {
    const char *name;
    DotLevel level;
    double (*softmax)(float *x, int n);
    void (*swiglu)(float *g, const float *u, size_t n);
    void (*swiglu_backward)(float *dg, float *du, const float *da, const float *g, const float *u,
                            size_t n);
} ExpForms;

static void exp_forms_match_scalar(const ExpForms *f) {
    if (!dot_kernels(f->level)) {
        cr_log_warn("no %s on this CPU: its forms are not run, nothing to compare", f->name);
        return;
    }
    Rng r;
    rng_seed(&r, 11);
    const int lens[] = {1, 5, 15, 16, 17, 31, 64, 100, 257, 1000};
    float *a = malloc(sizeof(float) * 6000), *b = a + 1000, *u = b + 1000, *da = u + 1000;
    float *dg = da + 1000, *du = dg + 1000;
    cr_assert(a);
    double worst = 0;
#define CLOSE(x, y, what)                                                                          \
    do {                                                                                           \
        const double d_ = fabs((double)(x) - (y)), tol_ = 4e-7 * fabs((double)(y)) + 1e-30;         \
        cr_assert(d_ <= tol_, "%s %s n=%d i=%d: simd %.9g, scalar %.9g", f->name, what, n, i,      \
                  (double)(x), (double)(y));                                                       \
        if (fabs((double)(y)) > 1e-30) worst = fmax(worst, d_ / fabs((double)(y)));              \
    } while (0)
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (int scale_i = 0; scale_i < 3; scale_i++) {
            const int n = lens[li];
            const float scale = scale_i == 0 ? 1.0f : scale_i == 1 ? 8.0f : 40.0f;
            fill(&r, a, n, scale);
            if (n > 3) a[n / 2] = -INFINITY, a[n - 1] = -INFINITY;
            memcpy(b, a, sizeof(float) * (size_t)n);
            const double lse_a = f->softmax(a, n), lse_b = softmax_ref(b, n);
            cr_assert(fabs(lse_a - lse_b) <= 1e-6 * fabs(lse_b) + 1e-6, "lse n=%d: %.9g vs %.9g",
                      n, lse_a, lse_b);
            for (int i = 0; i < n; i++) CLOSE(a[i], b[i], "softmax");
            /* gates: g in +-scale, u and da normal */
            fill(&r, a, n, scale);
            fill(&r, u, n, 1.0f);
            fill(&r, da, n, 1.0f);
            memcpy(b, a, sizeof(float) * (size_t)n);
            float *dg2 = malloc(sizeof(float) * 2 * (size_t)n), *du2 = dg2 + n;
            cr_assert(dg2);
            f->swiglu_backward(dg, du, da, a, u, (size_t)n);
            swiglu_backward_ref(dg2, du2, da, b, u, (size_t)n);
            for (int i = 0; i < n; i++) {
                CLOSE(du[i], du2[i], "swiglu_backward du");
                /* dg = da u s (1 + g (1 - s)) cancels near g = -1.28, where
                 * the fused and the plain sums part: the bound is on the
                 * terms' size, |da u s| (1 + |g|) */
                const double terms = fabs((double)da[i] * u[i]) * (1.0 + fabs((double)b[i])) /
                                     (1.0 + exp(-(double)b[i]));
                cr_assert(fabs((double)dg[i] - dg2[i]) <= 4e-7 * terms + 1e-30,
                          "swiglu_backward dg n=%d i=%d g=%g: simd %.9g, scalar %.9g", n, i,
                          (double)b[i], (double)dg[i], (double)dg2[i]);
            }
            free(dg2);
            f->swiglu(a, u, (size_t)n);
            swiglu_ref(b, u, (size_t)n);
            for (int i = 0; i < n; i++) CLOSE(a[i], b[i], "swiglu");
        }
#undef CLOSE
    /* a row with nothing allowed gives zeros; a NaN score makes the row NaN */
    for (int i = 0; i < 20; i++) a[i] = -INFINITY;
    cr_expect(f->softmax(a, 20) == -INFINITY);
    for (int i = 0; i < 20; i++) cr_expect_eq(a[i], 0.0f);
    for (int i = 0; i < 20; i++) a[i] = (float)i;
    a[7] = NAN;
    f->softmax(a, 20);
    cr_expect(isnan(a[0]) && isnan(a[7]), "NaN lost: %g %g", a[0], a[7]);
    /* e^x itself over the float range, through a two-entry softmax
     * [x, 0] -> e^x / (1 + e^x), against expf in double */
    for (float x = -100.0f; x <= 80.0f; x += 0.37f) {
        float p[2] = {x, 0.0f};
        f->softmax(p, 2);
        const double want = 1.0 / (1.0 + exp(-(double)x));
        cr_assert(fabs(p[0] - want) <= 3e-7 * want + 1e-37, "x=%g: %.9g vs %.9g", (double)x, p[0], want);
    }
    cr_log_info("exp ops, %s: worst %.2g relative against the scalar references", f->name, worst);
    free(a);
}

Test(kernels, simd_exp_ops_match_scalar) {
    const ExpForms forms[] = {
        {"AVX-512", DOT_AVX512, softmax_avx512, swiglu_avx512, swiglu_backward_avx512},
        {"AVX2", DOT_AVX2, softmax_avx2, swiglu_avx2, swiglu_backward_avx2},
    };
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) exp_forms_match_scalar(&forms[i]);
}

/* The AVX-512 RMSNorm, its backward and the gain's gradient against the
 * scalar references: widths around the 16-lane tails, a row of zeros
 * (eps alone), both through the public entry points (threads and row
 * blocks) and the kernels directly. The sums run in double in both, so
 * the results agree to float rounding: 2e-6 relative to the row's scale;
 * the gain's gradient sums T rows in another order (1e-5 of the sum of
 * its terms' sizes). */
Test(kernels, simd_norm_ops_match_scalar) {
    if (!dot_kernels(DOT_AVX512)) {
        cr_log_warn("no AVX-512 on this CPU: the norms run their references, nothing to compare");
        return;
    }
    Rng r;
    rng_seed(&r, 12);
    const int widths[] = {1, 15, 16, 17, 64, 129, 256}, rows[] = {1, 5, 70};
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++) {
            const int n = widths[wi], T = rows[ri];
            const size_t N = (size_t)T * n;
            float *x = malloc(sizeof(float) * N * 6 + sizeof(float) * n * 3);
            cr_assert(x);
            float *dy = x + N, *y0 = dy + N, *y1 = y0 + N, *dx0 = y1 + N, *dx1 = dx0 + N;
            float *w = dx1 + N, *dw0 = w + n, *dw1 = dw0 + n;
            fill(&r, x, (int)N, 3.0f), fill(&r, dy, (int)N, 1.0f), fill(&r, w, n, 1.0f);
            if (T > 1) memset(x + n, 0, sizeof(float) * n); /* a row of zeros */
            rmsnorm_ref(y0, x, w, T, n, 1e-6f);
            rmsnorm(y1, x, w, T, n, 1e-6f);
            for (size_t i = 0; i < N; i++)
                cr_assert(fabsf(y1[i] - y0[i]) <= 2e-6f * (1 + fabsf(y0[i])), "rmsnorm n=%d T=%d i=%zu: %g vs %g",
                          n, T, i, y1[i], y0[i]);
            rmsnorm_rows_avx512(y1, x, w, T, n, 1e-6f); /* the kernel itself, one thread */
            for (size_t i = 0; i < N; i++)
                cr_assert(fabsf(y1[i] - y0[i]) <= 2e-6f * (1 + fabsf(y0[i])), "rmsnorm_rows_avx512 n=%d T=%d i=%zu",
                          n, T, i);
            fill(&r, dx0, (int)N, 1.0f);
            memcpy(dx1, dx0, sizeof(float) * N);
            fill(&r, dw0, n, 1.0f);
            memcpy(dw1, dw0, sizeof(float) * n);
            rmsnorm_backward_ref(dx0, dw0, dy, x, w, T, n, 1e-6f);
            rmsnorm_backward(dx1, dw1, dy, x, w, T, n, 1e-6f);
            for (size_t i = 0; i < N; i++)
                cr_assert(fabsf(dx1[i] - dx0[i]) <= 2e-6f * (1 + fabsf(dx0[i])),
                          "rmsnorm_backward dx n=%d T=%d i=%zu: %g vs %g", n, T, i, dx1[i], dx0[i]);
            for (int i = 0; i < n; i++) {
                double size = fabs(dw0[i]);
                for (int t = 0; t < T; t++) size += fabs(dy[(size_t)t * n + i] * x[(size_t)t * n + i]);
                cr_assert(fabs(dw1[i] - dw0[i]) <= 1e-5 * (1 + size),
                          "rmsnorm_backward dw n=%d T=%d i=%d: %g vs %g", n, T, i, dw1[i], dw0[i]);
            }
            free(x);
        }
}

/* The AVX-512 softmax backward and sum of squares against their scalar
 * references: lengths around the 16- and 32-lane tails. Both sum in
 * double in another order, so the sum agrees to 1e-12 and the softmax
 * gradient to float rounding of the same terms (2e-6 of the row's scale). */
Test(kernels, simd_sum_ops_match_scalar) {
    if (!dot_kernels(DOT_AVX512)) {
        cr_log_warn("no AVX-512 on this CPU: these ops run their references, nothing to compare");
        return;
    }
    Rng r;
    rng_seed(&r, 13);
    const int lens[] = {1, 15, 16, 17, 31, 32, 33, 100, 257, 5000};
    float *p = malloc(sizeof(float) * 5000 * 3), *d0 = p + 5000, *d1 = d0 + 5000;
    cr_assert(p);
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
        const int n = lens[li];
        fill(&r, p, n, 3.0f);
        const double s0 = sum_squares_ref(p, (size_t)n), s1 = sum_squares_avx512(p, (size_t)n);
        cr_assert(fabs(s0 - s1) <= 1e-12 * s0, "sum_squares n=%d: %.17g vs %.17g", n, s1, s0);
        cr_assert(fabs(sum_squares(p, (size_t)n) - s0) <= 1e-12 * s0);
        softmax_ref(p, n); /* probabilities, as attention's P */
        fill(&r, d0, n, 1.0f);
        memcpy(d1, d0, sizeof(float) * (size_t)n);
        softmax_backward_ref(d0, p, n, 0.125f);
        softmax_backward(d1, p, n, 0.125f);
        for (int i = 0; i < n; i++)
            cr_assert(fabsf(d1[i] - d0[i]) <= 2e-6f * (fabsf(d0[i]) + 1e-6f), "softmax_backward n=%d i=%d: %g vs %g",
                      n, i, d1[i], d0[i]);
    }
    free(p);
}
