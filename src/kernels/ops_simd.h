/* SPDX-License-Identifier: MIT */
/* The AVX-512 and AVX2 forms of ops.c's exp-bound ops (kernels/ops_avx512.c,
 * kernels/ops_avx2.c), with the contracts of their references in ops.h;
 * ops.c chooses among them. */
#ifndef WHALE_OPS_SIMD_H
#define WHALE_OPS_SIMD_H

#include <stddef.h>

/* Both compute e^x as 2^n e^r with x = n ln2 + r, |r| <= ln2 / 2: ln2 in
 * two parts (the first has few bits, so n times it is exact), and e^r as
 * 1 + r + r^2 (c0 r^5 + c1 r^4 + ... + c5), Cephes' expf polynomial. */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO -2.12194440e-4f
static const float exp_poly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                  4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

double softmax_avx512(float *x, int n); /* softmax_lse's contract */
void swiglu_avx512(float *g, const float *u, size_t n);
void swiglu_backward_avx512(float *dg, float *du, const float *da, const float *g,
                            const float *u, size_t n);

/* RMSNorm's rows (ops.c's references' contracts; the sums in double): y =
 * the norm of x; dx += its backward with each row's 1/rms into rs; dw[i0
 * .. i0+16) += sum over the rows of dy x rs. */
void rmsnorm_rows_avx512(float *y, const float *x, const float *w, int T, int n, float eps);
void rmsnorm_backward_rows_avx512(float *dx, const float *dy, const float *x, const float *w,
                                  int T, int n, float eps, float *rs);
void rms_gain_block_avx512(float *dw, const float *dy, const float *x, const float *rs, int T,
                           int n, int i0);

double sum_squares_avx512(const float *x, size_t n);
void softmax_backward_avx512(float *d, const float *p, int n, float scale);

double softmax_avx2(float *x, int n);
void swiglu_avx2(float *g, const float *u, size_t n);
void swiglu_backward_avx2(float *dg, float *du, const float *da, const float *g, const float *u,
                          size_t n);

#endif
