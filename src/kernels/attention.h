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
 * one head's slice of a (T, H, D) buffer. scores: scratch of pos0+T floats. */
void attention_head(float *out, int out_stride, const float *q, int q_stride, const float *k,
                    int k_stride, const float *v, int v_stride, int T, int pos0, int Dk, int Dv,
                    float scale, float *scores);

#endif
