/* SPDX-License-Identifier: MIT */
/* Linear layers over the dot kernels (see matmul.h). Activations for
 * quantised weights are quantised once per call into a per-thread buffer
 * that only grows, so the steady state allocates nothing. */
#include "kernels/matmul.h"

#include <assert.h>
#include <immintrin.h>
#include <stdlib.h>

#include "base/threads.h"
#include "kernels/dot.h"
#include "kernels/gemm.h"
#include "kernels/qgemm.h"

/* From this many tokens on, the packed GEMM beats one dot product per
 * output (measured on the small preset: 4 tokens already gain). Float
 * weights below small_max_t tokens go to the unpacked few-token kernel,
 * which beats both there. Measured on one thread (bench: y = x W^T for W
 * 4096x256 and 1536x7168, GFLOP/s): F32 at 16 tokens 87 (dots 31, packed
 * 55), the two meet between 32 and 64; F16 and BF16, whose packing
 * converts one row at a time, at 16 tokens 75-120 (packed 11-33), meet
 * near 128. F32 switches at 32, not later: at 32-47 tokens the other sum
 * order moved train_v3's AdamW steps 2e-4 off PyTorch (ARCHITECTURE.md). */
#define GEMM_MIN_T 4
/* Q8_0 / Q4_0 / Q4_K / Q6_K on VNNI from this many tokens on: the integer GEMM. Two
 * threads, a 8960x8960 matrix streamed from memory, GOP/s against the
 * one-row dot kernel and the 4x4 int8 tiles that it replaced (2026-12-06):
 * 2 tokens 84-99 (dots 82-95, tiles 116-121), 4 tokens 157-180 (dots
 * 96-105, tiles 139-166), 8 tokens 234-266 (tiles 109-172), 32 tokens
 * 607-652 (tiles 152-185); at 128 tokens ~750, 4.3x the float GEMM.
 * Q4_K, one thread, 1536x8960: 4 tokens 33 (dots 22), 8 tokens 125
 * (dots 25, the float GEMM 8.5). */
#define QGEMM_MIN_T 4
static int small_max_t(QType t) { return t == QTYPE_F32 ? 32 : 128; }

/* Grow-only scratch, one per calling thread (the model's worker). */
static _Thread_local void *scratch;
static _Thread_local size_t scratch_cap;

/* One row of a matrix stored as panels, back in the row layout: a
 * grow-only buffer per thread, apart from scratch (which holds the
 * quantised activations meanwhile). */
static _Thread_local void *panel_row;
static _Thread_local size_t panel_row_cap;

static void *scratch_get(size_t n) {
    if (n > scratch_cap) {
        void *p = realloc(scratch, n);
        if (!p) return NULL;
        scratch = p;
        scratch_cap = n;
    }
    return scratch;
}

void matmul_thread_free(void) {
    /* the thread's OpenMP team ran products too (attention per head) and
     * goes away with it: each member, this thread included, frees its own */
#pragma omp parallel
    {
        free(scratch);
        scratch = NULL;
        scratch_cap = 0;
        gemm_thread_free();
        free(panel_row);
        panel_row = NULL;
        panel_row_cap = 0;
    }
}

/* One product's operands for the row loop of matmul_rows. */
typedef struct RowProduct {
    float *y;
    const float *x;
    const char *w;         /* the first row */
    size_t rb;             /* bytes per row */
    const BlockQ8_0 *xq;   /* the activations as Q8_0 (quantised types), else NULL */
    size_t qstride;        /* blocks per activation row */
    int K, n_rows, T;
    DotFn dot;
    const Mat *panels;     /* W stored as panels (the first row is row0), else NULL */
    int row0;
} RowProduct;

static const void *unpanel_row(const Mat *W, int r) {
    const size_t rb = qtype_row_bytes(W->type, W->cols);
    if (rb > panel_row_cap) {
        void *p = realloc(panel_row, rb);
        assert(p && "out of memory");
        panel_row = p;
        panel_row_cap = rb;
    }
    qgemm_panel_row(W, r, panel_row);
    return panel_row;
}

/* Output row u for all T tokens. */
static void row_product(const RowProduct *p, int u) {
    const void *wn = p->panels ? unpanel_row(p->panels, p->row0 + u) : p->w + (size_t)u * p->rb;
    for (int t = 0; t < p->T; t++)
        p->y[(size_t)t * p->n_rows + u] =
            p->dot(wn, p->x + (size_t)t * p->K, p->xq ? p->xq + (size_t)t * p->qstride : NULL, p->K);
}

void mat_dequantize_row(const Mat *W, int r, float *out) {
    dequantize_row(W->type, W->panels ? unpanel_row(W, r) : mat_row(W, r), out, W->cols);
}

void matmul_rows(float *y, const float *x, const Mat *W, int row0, int n_rows, int T) {
    assert(row0 >= 0 && row0 + n_rows <= W->rows);
    const DotKernels *dk = dot_best();
    /* Stored panels: the integer GEMM for any T. Where it cannot run (a
     * range starting inside a panel, WHALE_SIMD below VNNI after loading)
     * the rows are read back one by one into the dot kernels below: slow,
     * and the same numbers as the row layout. */
    if (W->panels && dk == dot_kernels(DOT_AVX512_VNNI) && qgemm_nt(y, x, T, W, row0, n_rows) == 0)
        return;
    /* Q8_0 / Q4_0 / Q4_K / Q6_K with VNNI from QGEMM_MIN_T tokens on: the integer GEMM
     * (qgemm.h), which unpacks each weight once per product, where the
     * float GEMM would convert every weight to float and the one-row
     * kernel unpacks each weight once per token. It honours WHALE_SIMD
     * through the dot level. */
    const int qgemm = matmul_use_gemm && T >= QGEMM_MIN_T && qgemm_available(W->type) &&
                      dk == dot_kernels(DOT_AVX512_VNNI) && !W->panels;
    if (qgemm && qgemm_nt(y, x, T, W, row0, n_rows) == 0) return;
    if (T >= 2 && matmul_use_gemm && gemm_available() && !qgemm && !W->panels) {
        if (T < small_max_t(W->type) && gemm_nt_small(y, x, W, row0, n_rows, T) == 0) return;
        if (T >= GEMM_MIN_T && gemm_nt(y, x, W, row0, n_rows, T) == 0) return;
    }
    const int K = W->cols;
    const size_t rb = qtype_row_bytes(W->type, K);
    const char *w = W->panels ? NULL : (const char *)W->data + (size_t)row0 * rb;
    const DotFn dot = dk->dot[W->type];
    const BlockQ8_0 *xq = NULL;
    if (qtype_block(W->type) > 1) {
        size_t qb = qtype_row_bytes(QTYPE_Q8_0, K);
        BlockQ8_0 *q = scratch_get(qb * (size_t)T);
        assert(q && "out of memory quantising activations");
        for (int t = 0; t < T; t++)
            quantize_row(QTYPE_Q8_0, x + (size_t)t * K, (char *)q + qb * t, K);
        xq = q;
    }
    const RowProduct rp = {y, x, w, rb, xq, (size_t)K / QK, K, n_rows, T, dot,
                           W->panels ? W : NULL, row0};
    /* Parallel over output rows of W: each weight row is read once and
     * reused for all T tokens while it sits in cache; each thread one run
     * of rows, its length by the thread's speed in earlier products, the
     * end of a slow thread's taken over by one done early (threads.h).
     * Small products branch around OpenMP: a region costs a few us, which
     * a million multiply-adds, or 256 KB of weights to stream, repay (a
     * V2-Lite router, 64 x 2048 in F32, took 20 us on one thread). */
    const int big = (long)n_rows * K * T > (1L << 20) || (size_t)n_rows * rb >= (size_t)256 << 10;
    if (big && !threads_in_parallel()) {
        ThreadRun run;
        threads_run_begin(&run, n_rows);
#pragma omp parallel
        {
            int lo, hi;
            while (threads_run_next(&run, &lo, &hi))
                for (int u = lo; u < hi; u++) row_product(&rp, u);
            threads_run_done(&run);
        }
        threads_run_end(&run);
    } else {
        for (int u = 0; u < n_rows; u++) row_product(&rp, u);
    }
}

int matmul_use_gemm = 1;

void matmul(float *y, const float *x, const Mat *W, int T) { matmul_rows(y, x, W, 0, W->rows, T); }

/* The integer GEMM where matmul_rows would take it for each of a list:
 * stored panels, or QGEMM_MIN_T tokens on the row layout. */
static int int8_list(const Mat *W0, int T) {
    return dot_best() == dot_kernels(DOT_AVX512_VNNI) &&
           (W0->panels || (matmul_use_gemm && T >= QGEMM_MIN_T));
}

void matmul_same_x(float *const *y, const float *x, const Mat *const *W, int n, int T) {
    if (int8_list(W[0], T) && qgemm_nt_multi(y, x, T, W, n) == 0) return;
    for (int i = 0; i < n; i++) matmul(y[i], x, W[i], T);
}

void matmul_each(float *const *y, const float *const *x, const Mat *const *W, int n, int T) {
    if (int8_list(W[0], T) && qgemm_nt_each(y, x, T, W, n) == 0) return;
    for (int i = 0; i < n; i++) matmul(y[i], x[i], W[i], T);
}

/* y[0..n) += a x[0..n). At -O2 the plain loop stays scalar: the absorbed
 * MLA query spent 9% of a V2-Lite decoding step in it. */
__attribute__((target("avx512f"))) static void axpy_avx512(float *y, float a, const float *x,
                                                           int n) {
    const __m512 va = _mm512_set1_ps(a);
    int k = 0;
    for (; k + 16 <= n; k += 16)
        _mm512_storeu_ps(y + k, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + k), _mm512_loadu_ps(y + k)));
    for (; k < n; k++) y[k] += a * x[k];
}

static void axpy_scalar(float *y, float a, const float *x, int n) {
    for (int k = 0; k < n; k++) y[k] += a * x[k];
}

void matmul_t(float *y, const float *x, const Mat *W, int row0, int n_rows, int T) {
    assert(row0 >= 0 && row0 + n_rows <= W->rows);
    const int K = W->cols;
    /* several tokens on float32 weights: the packed GEMM (the absorbed MLA
     * queries of a decoding batch), ~5x the row loop below */
    if (T >= 2 && W->type == QTYPE_F32 && matmul_use_gemm && gemm_available()) {
        sgemm(0, 0, T, K, n_rows, x, n_rows, (const float *)W->data + (size_t)row0 * K, K, 0.0f,
              y, K);
        return;
    }
    float *row = W->type == QTYPE_F32 ? NULL : scratch_get((size_t)K * sizeof(float));
    assert((W->type == QTYPE_F32 || row) && "out of memory");
    for (int t = 0; t < T; t++) {
        float *yt = y + (size_t)t * K;
        for (int k = 0; k < K; k++) yt[k] = 0.0f;
    }
    const DotKernels *dk = dot_best();
    void (*axpy)(float *, float, const float *, int) =
        dk == dot_kernels(DOT_AVX512) || dk == dot_kernels(DOT_AVX512_VNNI) ? axpy_avx512
                                                                            : axpy_scalar;
    /* rows of W in order, each dequantised once and added to every token */
    for (int n = 0; n < n_rows; n++) {
        const float *wn;
        if (W->type == QTYPE_F32) {
            wn = (const float *)W->data + (size_t)(row0 + n) * K;
        } else {
            mat_dequantize_row(W, row0 + n, row);
            wn = row;
        }
        for (int t = 0; t < T; t++) axpy(y + (size_t)t * K, x[(size_t)t * n_rows + n], wn, K);
    }
}

void matmul_backward(float *dx, float *dW, const float *dy, const float *x, const Mat *W, int T) {
    assert(W->type == QTYPE_F32);
    const int N = W->rows, K = W->cols;
    sgemm(1, 0, N, K, T, dy, N, x, K, 1.0f, dW, K);
    if (dx) sgemm(0, 0, T, K, N, dy, N, (const float *)W->data, K, 1.0f, dx, K);
}
