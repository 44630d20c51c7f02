/* SPDX-License-Identifier: MIT */
/* The AVX-512 forms of attention.h's training attention
 * (kernels/attention_avx512.c), with the contracts of attention_head_train
 * and attention_head_backward; attention.c chooses. Each returns 0, or -1
 * when it cannot run here (no AVX-512, no scratch memory) and has written
 * nothing. */
#ifndef WHALE_ATTENTION_SIMD_H
#define WHALE_ATTENTION_SIMD_H

int attention_train_avx512(float *out, int out_stride, float *P, const float *q, int q_stride,
                           const float *k, int k_stride, const float *v, int v_stride, int T,
                           int Dk, int Dv, float scale);
int attention_backward_avx512(float *dq, float *dk, float *dv, const float *dout, int out_stride,
                              const float *P, const float *q, int q_stride, const float *k,
                              int k_stride, const float *v, int v_stride, int T, int Dk, int Dv,
                              float scale, float *dp);

#endif
