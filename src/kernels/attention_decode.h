/* SPDX-License-Identifier: MIT */
/* Decode attention of one query row for a group of heads that share their
 * keys and values, in one pass over the cache: MLA's absorbed heads, which
 * all read the latent cache (DeepSeek-V2 §2.1.2; keys and values are both
 * the cached row: [latent (R), rope key], the values its first R numbers),
 * and a GQA group of qwen2/llama, whose H / KV query heads read one KV
 * head. For heads h = 0..H-1 and cached rows s = 0..S-1:
 *   p[h][s] = softmax_s(scale * q[h] . k[s]),   o[h] = sum_s p[h][s] v[s].
 * Each cached row is loaded once for all heads' scores and once for all
 * heads' sums, while it sits in L1, instead of the whole cache streaming
 * through once per head. AVX-512 when the CPU has it (and WHALE_SIMD
 * allows), else the scalar reference, which stays and which tests compare
 * it with. Rows are addressed with strides in floats. */
#ifndef WHALE_ATTENTION_DECODE_H
#define WHALE_ATTENTION_DECODE_H

#include <stddef.h>

/* q: H rows of Dk; k: S rows of Dk; v: S rows of Dv; o: H rows of Dv
 * (written, not accumulated); p: scratch of H x S floats. S >= 1. */
void attention_decode(float *o, size_t o_stride, const float *q, size_t q_stride, const float *k,
                      size_t k_stride, const float *v, size_t v_stride, int H, int S, int Dk,
                      int Dv, float scale, float *p);

/* The scalar reference of the same. */
void attention_decode_ref(float *o, size_t o_stride, const float *q, size_t q_stride,
                          const float *k, size_t k_stride, const float *v, size_t v_stride, int H,
                          int S, int Dk, int Dv, float scale, float *p);

#endif
