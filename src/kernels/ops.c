/* SPDX-License-Identifier: MIT */
/* Row-wise and elementwise ops (see ops.h). Sums run in double: these are
 * O(n) next to the O(n^2) matmuls, and it removes one source of drift from
 * the PyTorch reference. The exp-bound ones (softmax, the SwiGLU gate and
 * its backward) run their AVX-512 or AVX2 forms (ops_avx512.c,
 * ops_avx2.c) where the CPU has them. */
#include "kernels/ops.h"

#include <math.h>
#include <stdlib.h>

#include "base/threads.h"
#include "kernels/dot.h"
#include "kernels/ops_simd.h"

/* Rows are independent: threads split them above this many elements (a
 * parallel region costs microseconds). */
#define OPS_PAR_MIN (1L << 16)

static void rmsnorm_row(float *yt, const float *xt, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)xt[i] * xt[i];
    float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) yt[i] = xt[i] * r * w[i];
}

/* Threads only above OPS_PAR_MIN and outside another region; the branch,
 * not an `if` clause, keeps small calls out of libgomp (threads.h). */
static int ops_par(long work) { return work >= OPS_PAR_MIN && !threads_in_parallel(); }

/* Which forms of the exp-bound ops and the norms run: dot_best()'s level (so
 * WHALE_SIMD=scalar|avx2 caps them), 2 for AVX-512, 1 for AVX2, 0 for the
 * references. */
static int simd_level(void) {
    static int level = -1; /* racing first calls store the same answer */
    int v = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (v < 0) {
        const DotKernels *b = dot_best();
        v = b == dot_kernels(DOT_AVX512) || b == dot_kernels(DOT_AVX512_VNNI) ? 2
            : b == dot_kernels(DOT_AVX2)                                      ? 1
                                                                              : 0;
        __atomic_store_n(&level, v, __ATOMIC_RELAXED);
    }
    return v;
}

int ops_avx512(void) { return simd_level() == 2; }

void rmsnorm_ref(float *y, const float *x, const float *w, int T, int n, float eps) {
    for (int t = 0; t < T; t++) rmsnorm_row(y + (size_t)t * n, x + (size_t)t * n, w, n, eps);
}

static void rmsnorm_rows(float *y, const float *x, const float *w, int T, int n, float eps) {
    if (simd_level() == 2) rmsnorm_rows_avx512(y, x, w, T, n, eps);
    else rmsnorm_ref(y, x, w, T, n, eps);
}

/* Rows go to the threads in blocks of NORM_ROWS. */
#define NORM_ROWS 32

void rmsnorm(float *y, const float *x, const float *w, int T, int n, float eps) {
    if (ops_par((long)T * n)) {
#pragma omp parallel for schedule(static)
        for (int t0 = 0; t0 < T; t0 += NORM_ROWS)
            rmsnorm_rows(y + (size_t)t0 * n, x + (size_t)t0 * n, w, T - t0 < NORM_ROWS ? T - t0 : NORM_ROWS,
                         n, eps);
    } else {
        rmsnorm_rows(y, x, w, T, n, eps);
    }
}

void swiglu_ref(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void swiglu_range(float *g, const float *u, size_t i0, size_t i1) {
    const int l = simd_level();
    if (l == 2) swiglu_avx512(g + i0, u + i0, i1 - i0);
    else if (l == 1) swiglu_avx2(g + i0, u + i0, i1 - i0);
    else swiglu_ref(g + i0, u + i0, i1 - i0);
}

void swiglu(float *g, const float *u, size_t n) {
    if (!ops_par((long)n)) {
        swiglu_range(g, u, 0, n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += 4096) swiglu_range(g, u, i, i + 4096 < n ? i + 4096 : n);
}

void softmax(float *x, int n) { softmax_lse(x, n); }

double softmax_lse(float *x, int n) {
    const int l = simd_level();
    return l == 2 ? softmax_avx512(x, n) : l == 1 ? softmax_avx2(x, n) : softmax_ref(x, n);
}

double softmax_ref(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    if (mx == -INFINITY) { /* nothing allowed: leave zeros rather than NaN */
        for (int i = 0; i < n; i++) x[i] = 0;
        return -INFINITY;
    }
    double s = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
    return mx + log(s);
}

void softmax_backward_ref(float *d, const float *p, int n, float scale) {
    double sum = 0;
    for (int s = 0; s < n; s++) sum += (double)p[s] * d[s];
    for (int s = 0; s < n; s++) d[s] = p[s] * (d[s] - (float)sum) * scale;
}

void softmax_backward(float *d, const float *p, int n, float scale) {
    if (simd_level() == 2) softmax_backward_avx512(d, p, n, scale);
    else softmax_backward_ref(d, p, n, scale);
}

double sum_squares_ref(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

double sum_squares(const float *x, size_t n) {
    return simd_level() == 2 ? sum_squares_avx512(x, n) : sum_squares_ref(x, n);
}

static void vec_add_range(float *y, const float *x, size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; i++) y[i] += x[i];
}

void vec_add(float *y, const float *x, size_t n) {
    if (!ops_par((long)n)) {
        vec_add_range(y, x, 0, n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += 4096) vec_add_range(y, x, i, i + 4096 < n ? i + 4096 : n);
}

/* Row t of the norm's backward: dx += its gradient; the row's 1/rms into
 * rs[t], or without rs the gain's gradient added row by row. */
static void rmsnorm_backward_row(float *dx, float *dw, const float *dy, const float *x,
                                 const float *w, int t, int n, float eps, float *rs) {
    const float *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
    float *dxt = dx + (size_t)t * n;
    double ss = 0, dot = 0;
    for (int i = 0; i < n; i++) {
        ss += (double)xt[i] * xt[i];
        dot += (double)dyt[i] * w[i] * xt[i];
    }
    const double r = 1.0 / sqrt(ss / n + eps);
    /* d/dx_i of x_i r w_i: r (dy w)_i - x_i r^3 / n sum_j (dy w x)_j */
    const float rf = (float)r, c = (float)(r * r * r * dot / n);
    if (rs) rs[t] = rf;
    else if (dw) /* no scratch: the gain's gradient row by row, on this thread */
        for (int i = 0; i < n; i++) dw[i] += dyt[i] * xt[i] * rf;
    for (int i = 0; i < n; i++) dxt[i] += rf * dyt[i] * w[i] - c * xt[i];
}

/* Grow-only per-thread scratch for the rows' 1/rms (the calling thread's:
 * the trainer's), so the steady state allocates nothing. */
static _Thread_local float *rms_buf;
static _Thread_local size_t rms_cap;

/* dw[i0 .. i0+16) += sum over rows of dy x / rms. */
static void rms_gain_block(float *dw, const float *dy, const float *x, const float *rs, int T,
                           int n, int i0) {
    if (simd_level() == 2) {
        rms_gain_block_avx512(dw, dy, x, rs, T, n, i0);
        return;
    }
    const int i1 = i0 + 16 < n ? i0 + 16 : n;
    float acc[16] = {0};
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * n, *dyt = dy + (size_t)t * n;
        for (int i = i0; i < i1; i++) acc[i - i0] += dyt[i] * xt[i] * rs[t];
    }
    for (int i = i0; i < i1; i++) dw[i] += acc[i - i0];
}

/* Rows 0..T-1 of the backward, each row's 1/rms into rs. */
static void rmsnorm_backward_rows(float *dx, const float *dy, const float *x, const float *w, int T,
                                  int n, float eps, float *rs) {
    if (simd_level() == 2) rmsnorm_backward_rows_avx512(dx, dy, x, w, T, n, eps, rs);
    else
        for (int t = 0; t < T; t++) rmsnorm_backward_row(dx, NULL, dy, x, w, t, n, eps, rs);
}

void rmsnorm_backward_ref(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          int T, int n, float eps) {
    for (int t = 0; t < T; t++) rmsnorm_backward_row(dx, dw, dy, x, w, t, n, eps, NULL);
}

void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int T,
                      int n, float eps) {
    if ((size_t)T > rms_cap) {
        float *p = realloc(rms_buf, (size_t)T * sizeof(float));
        if (p) rms_buf = p, rms_cap = (size_t)T;
    }
    float *rs = (size_t)T <= rms_cap ? rms_buf : NULL;
    if (!rs) { /* no scratch: the reference, on this thread */
        rmsnorm_backward_ref(dx, dw, dy, x, w, T, n, eps);
        return;
    }
    const int par = ops_par((long)T * n);
    if (par) {
#pragma omp parallel for schedule(static)
        for (int t0 = 0; t0 < T; t0 += NORM_ROWS) {
            const size_t o = (size_t)t0 * n;
            rmsnorm_backward_rows(dx + o, dy + o, x + o, w, T - t0 < NORM_ROWS ? T - t0 : NORM_ROWS,
                                  n, eps, rs + t0);
        }
    } else {
        rmsnorm_backward_rows(dx, dy, x, w, T, n, eps, rs);
    }
    if (!dw) return;
    /* the gain's gradient by column blocks: each sum runs over the rows in
     * order on one thread, so the result does not depend on the threads */
    if (par) {
#pragma omp parallel for schedule(static)
        for (int i0 = 0; i0 < n; i0 += 16) rms_gain_block(dw, dy, x, rs, T, n, i0);
    } else {
        for (int i0 = 0; i0 < n; i0 += 16) rms_gain_block(dw, dy, x, rs, T, n, i0);
    }
}

void swiglu_backward_ref(float *dg, float *du, const float *da, const float *g, const float *u,
                         size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + expf(-g[i])), silu = g[i] * s;
        du[i] = da[i] * silu;
        dg[i] = da[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
    }
}

static void swiglu_backward_range(float *dg, float *du, const float *da, const float *g,
                                  const float *u, size_t i0, size_t i1) {
    const int l = simd_level();
    if (l == 2) swiglu_backward_avx512(dg + i0, du + i0, da + i0, g + i0, u + i0, i1 - i0);
    else if (l == 1) swiglu_backward_avx2(dg + i0, du + i0, da + i0, g + i0, u + i0, i1 - i0);
    else swiglu_backward_ref(dg + i0, du + i0, da + i0, g + i0, u + i0, i1 - i0);
}

void swiglu_backward(float *dg, float *du, const float *da, const float *g, const float *u,
                     size_t n) {
    if (!ops_par((long)n)) {
        swiglu_backward_range(dg, du, da, g, u, 0, n);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i += 4096)
        swiglu_backward_range(dg, du, da, g, u, i, i + 4096 < n ? i + 4096 : n);
}
