/* SPDX-License-Identifier: MIT */
/* The pieces of a decoder block, each on T token rows: MLA attention
 * (mla.c), grouped-query attention for qwen2/llama (gqa.c), the SwiGLU FFN
 * and DeepSeekMoE (moe.c). Inputs are already normalised; outputs (T, D)
 * are written, not accumulated. Scratch comes from the arena; each returns
 * 0 or -1 when the arena cannot grow. */
#ifndef WHALE_BLOCKS_H
#define WHALE_BLOCKS_H

#include "base/arena.h"
#include "model/kvcache.h"
#include "model/model.h"
#include "model/rope.h"
#include "model/weights.h"

int mla_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, KVCache *kv, int layer, int pos0, int T, MlaPath path,
                Arena *a);

int gqa_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, KVCache *kv, int layer, int pos0, int T, Arena *a);

/* down(silu(gate x) * up x) with the given matrices (dense FFN, one expert,
 * or the shared experts). */
int ffn_forward(float *out, const float *x, const Mat *gate, const Mat *up, const Mat *down, int T,
                Arena *a);

int moe_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c, int T,
                Arena *a);

/* Route one token: from router logits (E) pick K experts (idx) and their
 * weights (w), per DeepSeek-V2/V3: softmax or sigmoid scores, the
 * correction bias for selection only, group-limited selection, optional
 * normalisation, routed_scaling_factor. scratch: 2E floats. */
void moe_route(const ModelConfig *c, const float *logits, const float *bias, int *idx, float *w,
               float *scratch);

#endif
