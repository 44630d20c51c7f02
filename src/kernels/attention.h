/* SPDX-License-Identifier: MIT */
/* Causal softmax attention for one head: the inner loop shared by MLA
 * prefill and the qwen2/llama (GQA) blocks. Threads split heads in the
 * callers, so this routine itself is sequential. */
#ifndef WHALE_ATTENTION_H
#define WHALE_ATTENTION_H

/* For queries t = 0..T-1 at absolute positions pos0+t, keys/values at
 * positions 0..pos0+T-1 (query t sees keys 0..pos0+t):
 *   out[t] (Dv) = sum_s softmax_s(scale * q[t].k[s]) v[s]
 * Rows are addressed with strides (in floats) so that q, k, v and out can be
 * one head's slice of a (T, H, D) buffer. scores: scratch of
 * attention_scratch(T, pos0 + T) floats. From ATTENTION_BLOCK queries on
 * (a prefill), blocks of that many queries run as two GEMMs (scores = Q K^T
 * over the keys the block sees, masked; out = P V); fewer run row by row. */
#define ATTENTION_BLOCK 32
static inline long attention_scratch(int T, int S) {
    return (long)(T >= ATTENTION_BLOCK ? ATTENTION_BLOCK : 1) * S;
}
void attention_head(float *out, int out_stride, const float *q, int q_stride, const float *k,
                    int k_stride, const float *v, int v_stride, int T, int pos0, int Dk, int Dv,
                    float scale, float *scores);

/* Training forward for one head of one sequence at positions 0..T-1: as
 * attention_head with pos0 0, and also keeps the probabilities P (T, T)
 * for the backward: row t holds keys 0..t, then zeros at least as far as
 * t + ATTENTION_P_ZEROS (within T), where the backward's register tiles
 * (12 rows deep) read past the diagonal; the rest is unspecified. */
#define ATTENTION_P_ZEROS 12
void attention_head_train(float *out, int out_stride, float *P, const float *q, int q_stride,
                          const float *k, int k_stride, const float *v, int v_stride, int T, int Dk,
                          int Dv, float scale);

/* Backward of attention_head_train: dq, dk, dv (same strides as q, k, v)
 * += the gradients from dout; dp: scratch of T x T floats. */
void attention_head_backward(float *dq, float *dk, float *dv, const float *dout, int out_stride,
                             const float *P, const float *q, int q_stride, const float *k,
                             int k_stride, const float *v, int v_stride, int T, int Dk, int Dv,
                             float scale, float *dp);

#endif
