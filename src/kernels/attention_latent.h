/* SPDX-License-Identifier: MIT */
/* MLA decode attention over the latent cache, every head of one query row
 * in one pass (DeepSeek-V2 §2.1.2's absorbed form, as model/mla.c runs it
 * for decoding rows). The cache keeps per token only W = R + rope numbers:
 * the normalised latent (R) and the rotated rope key. Head h's absorbed
 * query qa[h] (W) = [W_UK[h]^T q_nope, q_rope] scores every cached row,
 *   p[h][s] = softmax_s(scale * qa[h] . kv[s]),
 *   o[h] (R) = sum_s p[h][s] kv[s][0 .. R),
 * and the caller maps o[h] through W_UV[h]. Each cached row is loaded
 * once for all heads' scores and once for all heads' sums, while it sits
 * in L1, instead of the whole cache streaming through once per head.
 * AVX-512 when the CPU has it (and WHALE_SIMD allows), else the scalar
 * reference, which stays and which tests compare it with. */
#ifndef WHALE_ATTENTION_LATENT_H
#define WHALE_ATTENTION_LATENT_H

#include <stddef.h>

/* qa (H, W); kv (S, W); o: head h's R outputs at o + h * o_stride (written,
 * not accumulated); p: scratch of H x S floats. S >= 1. */
void attention_latent(float *o, size_t o_stride, const float *qa, const float *kv, int H, int S,
                      int W, int R, float scale, float *p);

/* The scalar reference of the same. */
void attention_latent_ref(float *o, size_t o_stride, const float *qa, const float *kv, int H,
                          int S, int W, int R, float scale, float *p);

#endif
