/* SPDX-License-Identifier: MIT */
/* The AVX-512 forms of ops.c's exp-bound ops (kernels/ops_avx512.c), with
 * the contracts of their references in ops.h; ops.c chooses between them. */
#ifndef WHALE_OPS_SIMD_H
#define WHALE_OPS_SIMD_H

#include <stddef.h>

double softmax_avx512(float *x, int n); /* softmax_lse's contract */
void swiglu_avx512(float *g, const float *u, size_t n);
void swiglu_backward_avx512(float *dg, float *du, const float *da, const float *g,
                            const float *u, size_t n);

#endif
