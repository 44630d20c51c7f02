/* SPDX-License-Identifier: MIT */
/* Elementwise and row-wise operations of the transformer: RMSNorm, SwiGLU's
 * gate, softmax, sigmoid, residual add. Softmax and the SwiGLU gate and its
 * backward run AVX-512 or AVX2 forms at dot_best()'s level (exp in 16 or 8
 * lanes, within 2 ulp of expf), RMSNorm and its backward an AVX-512 form;
 * their scalar references (*_ref) stay, and the tests hold the forms to
 * them. */
#ifndef WHALE_OPS_H
#define WHALE_OPS_H

#include <stddef.h>

/* y (T, n) = x / sqrt(mean(x^2) + eps) * w. y may alias x. */
void rmsnorm(float *y, const float *x, const float *w, int T, int n, float eps);

/* Backward of rmsnorm: dx (T, n) += d/dx, dw (n) += d/dw (dw may be NULL,
 * for a norm without a trained gain). dx must not alias dy or x. */
void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int T,
                      int n, float eps);

/* g (n) = silu(g) * u: the SwiGLU gate, in place in g. */
void swiglu(float *g, const float *u, size_t n);

/* Backward of a = silu(g) * u: dg, du (n) = (overwritten) from da and the
 * saved g, u. */
void swiglu_backward(float *dg, float *du, const float *da, const float *g, const float *u,
                     size_t n);

/* In-place numerically stable softmax over n values; -INFINITY entries get
 * probability 0 (all of them: zeros). */
void softmax(float *x, int n);

/* softmax, returning the log of the sum of e^x over the input (the
 * log-partition, -INFINITY when every entry is): a cross-entropy's loss
 * and gradient from one pass of exponentials. */
double softmax_lse(float *x, int n);

/* Backward of softmax for one row: d (n) = p (d - sum_i p_i d_i) scale,
 * from the softmax's output p and the gradient at it d (the sum in
 * double). Attention's dS. */
void softmax_backward(float *d, const float *p, int n, float scale);

/* sum of x_i^2 in double: the gradient norm. */
double sum_squares(const float *x, size_t n);

/* The scalar references of the seven above (the norms' at AVX-512 run in
 * 16 lanes with their sums in double). */
void rmsnorm_ref(float *y, const float *x, const float *w, int T, int n, float eps);
void rmsnorm_backward_ref(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          int T, int n, float eps);
void swiglu_ref(float *g, const float *u, size_t n);
void softmax_backward_ref(float *d, const float *p, int n, float scale);
double sum_squares_ref(const float *x, size_t n);
void swiglu_backward_ref(float *dg, float *du, const float *da, const float *g, const float *u,
                         size_t n);
double softmax_ref(float *x, int n); /* softmax_lse's */

/* 1 where the ops above run their AVX-512 forms: dot_best()'s level, so
 * WHALE_SIMD=scalar|avx2 caps them; other kernels with an AVX-512 form
 * (AdamW's update) follow it too. */
int ops_avx512(void);

/* y (n) += x (n) */
void vec_add(float *y, const float *x, size_t n);

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + __builtin_expf(-x)); }

#endif
