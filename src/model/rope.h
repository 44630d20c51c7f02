/* SPDX-License-Identifier: MIT */
/* Rotary position embedding with the frequency schedules whale's model
 * families use: plain, YaRN (DeepSeek-V2/V3, official precompute_freqs_cis),
 * llama3 and linear; and the two pair layouts: DeepSeek rotates interleaved
 * pairs (x[2i], x[2i+1]); Hugging Face qwen2/llama rotate halves
 * (x[i], x[i+d/2]). */
#ifndef WHALE_ROPE_H
#define WHALE_ROPE_H

#include "io/config.h"

#define ROPE_MAX_DIM 1024

typedef struct Rope {
    int dim;              /* rotated dims per head */
    int interleaved;      /* 1: DeepSeek pairs, 0: rotate-half */
    float inv_freq[ROPE_MAX_DIM / 2];
    float cos_sin_scale;  /* YaRN: mscale / mscale_all_dim factor on cos and sin */
    float softmax_scale;  /* attention logit scale incl. YaRN mscale^2 */
} Rope;

/* Frequencies for cfg; the rotated width is qk_rope_head_dim (MLA) or
 * head_dim. Returns 0 or -1 with err when the width exceeds ROPE_MAX_DIM. */
int rope_init(Rope *r, const ModelConfig *cfg, Err *err);

/* Rotate x (dim) in place for absolute position pos. */
void rope_apply(const Rope *r, float *x, int pos);

/* Backward of rope_apply: turn the gradient at the output (dim, in place)
 * into the gradient at the input, rotating by minus the angle (the YaRN
 * cos/sin scale stays, as the forward multiplies by it). */
void rope_backward(const Rope *r, float *dx, int pos);

/* The same on n vectors stride floats apart (the heads of one token),
 * sharing one computation of the angles. */
void rope_apply_heads(const Rope *r, float *x, int n, int stride, int pos);

/* The angles of positions p0 .. p0+n-1 as a table, for many rows at few
 * positions (a training batch: every sequence at 0 .. seq_len-1): cs (n,
 * dim), row p the dim/2 cosines then the dim/2 sines, YaRN's scale in.
 * rope_rotate_cs rotates n vectors stride floats apart by one row's
 * angles, sign 1 as rope_apply_heads, -1 as rope_backward (the training
 * backward's form); the results are those functions' to the bit. */
void rope_table(const Rope *r, int p0, int n, float *cs);
void rope_rotate_cs(const Rope *r, const float *cs, float *x, int n, int stride, float sign);

#endif
