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

/* What the training forward of each piece saves for its backward
 * (train/mla_backward.c, train/moe_backward.c). Buffers are allocated by
 * the *_saved_alloc functions from the caller's arena; T = n_seq * seq_len
 * rows, sequence after sequence. At inference nothing is saved. */
typedef struct MlaSaved {
    float *cq;   /* (T, q_lora) q_a_proj output before its norm; NULL without q_lora */
    float *cq_n; /* (T, q_lora) after q_a_layernorm */
    float *kva;  /* (T, R + rope) kv_a_proj output: latent before norm, key before rope */
    float *q;    /* (T, H, nope + rope) query, rope part rotated */
    float *lat;  /* (T, R + rope) normalised latent and rotated rope key */
    float *kv;   /* (T, H, nope + v) up-projected keys (nope part) and values */
    float *p;    /* (n_seq, H, seq_len, seq_len) attention probabilities */
    float *att;  /* (T, H, v) attention output before o_proj */
} MlaSaved;

typedef struct FfnSaved {
    float *g, *u; /* (T, I) gate and up projections */
    float *a;     /* (T, I) silu(g) * u, the down projection's input */
} FfnSaved;

/* Expert parallelism in training (DeepSeek-V3 §3.2): the routed experts
 * are shared out over `size` ranks, expert e computed by rank e / (E /
 * size) over the tokens every rank routed to it; the rows travel by
 * all-to-all (the trainer provides it over MPI, train/comm.h). Attention,
 * the router and the shared experts stay with each rank's own tokens. */
#define EP_MAX_RANKS 256 /* most ranks in one expert-parallel group */

typedef struct ExpertExchange {
    int rank, size; /* size <= EP_MAX_RANKS */
    /* send_rows[q] rows of width floats to rank q (packed in rank order);
     * recv gets recv_rows[q] rows from each q the same way. 0 or -1. */
    int (*rows)(void *ctx, const float *send, const int *send_rows, float *recv,
                const int *recv_rows, int width);
    /* n ints to every rank: send (size x n) -> recv (size x n). 0 or -1. */
    int (*ints)(void *ctx, const int *send, int *recv, int n);
    void *ctx;
} ExpertExchange;

typedef struct MoeSaved {
    const ExpertExchange *ep; /* set before the forward for expert parallelism; else NULL */
    float *logits;  /* (T, E) router logits */
    int *idx;       /* (T, K) selected experts */
    float *wts;     /* (T, K) their combine weights */
    int *count;     /* (E + 1) prefix sums: expert e owns dispatch rows count[e]..count[e+1] */
    int *order;     /* (T K) dispatch row -> token slot t K + k */
    FfnSaved exp;   /* (T K, Im) the experts' activations, in dispatch order */
    float *ye;      /* (T K, D) the experts' outputs, in dispatch order */
    FfnSaved shared; /* (T, n_shared Im) */
    /* with ep: the rows this rank's experts ran, from every rank */
    int *ep_cnt;    /* (size x E / size) rows from rank s for this rank's expert j: [s per + j] */
    int ep_rows;    /* their sum */
    float *ep_x;    /* (ep_rows, D) the experts' inputs, expert after expert (source order within) */
    FfnSaved ep_exp; /* (ep_rows, Im) their activations, in the same order */
} MoeSaved;

int mla_saved_alloc(MlaSaved *s, const ModelConfig *c, int n_seq, int seq_len, Arena *a);
int ffn_saved_alloc(FfnSaved *s, int T, int I, Arena *a);
int moe_saved_alloc(MoeSaved *s, const ModelConfig *c, int T, Arena *a);

/* The E experts ordered by the rows dispatched to them (count: E + 1
 * prefix sums), most first, ties by index: the order in which experts
 * running one per thread finish soonest together. NULL when out of memory. */
int *experts_by_size(const int *count, int E, Arena *a);

/* out (T, D) += the experts' rows (T K, D, dispatch order: order maps a
 * row to its slot t K + k) times the slots' weights w (NULL: 1), each
 * token's rows added in its experts' ascending order whatever the threads.
 * -1 when out of memory. */
int moe_combine(float *out, const float *rows, const float *w, const int *order, int T, int K,
                int D, Arena *a);

/* MLA's projections for T rows, row t at position pos[t]: the query q
 * (T, H, nope + rope) and the cache rows lat (T, R + rope) =
 * [kv_a_layernorm(c_kv), rope(k_rope)], both with rope applied. sv (may be
 * NULL) receives the intermediates. Shared by inference (a prefill's
 * consecutive positions, or one position per sequence of a batch) and
 * training. */
int mla_project(float *q, float *lat, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, const int *pos, int T, MlaSaved *sv, Arena *a);

/* Training forward of MLA over n_seq sequences of seq_len tokens (each at
 * positions 0..seq_len-1, causal within itself): keys and values
 * up-projected from the latents as in prefill. out (T, D). Saves into sv. */
int mla_forward_train(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                      const Rope *rope, int n_seq, int seq_len, MlaSaved *sv, Arena *a);

/* Inference attention of one layer on the rows of sr's sequences, x and
 * out (T, D): projections over all T rows at once, each sequence's new
 * cache rows stored in its cache, attention of each sequence against its
 * own cache. MLA: the prefill path (keys and values up-projected) or the
 * absorbed path per sequence as path says (MLA_AUTO: absorbed for a
 * sequence of one row). */
int mla_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, const SeqRows *sr, int layer, MlaPath path, Arena *a);
/* From this much work (heads x cached rows x latent width) one decoding
 * row's absorbed heads are split over the threads (the row alone would
 * leave them waiting). Tests set 0 to run the split on small models. */
extern long mla_heads_split_min;

int gqa_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c,
                const Rope *rope, const SeqRows *sr, int layer, Arena *a);

/* down(silu(gate x) * up x) with the given matrices (dense FFN, one expert,
 * or the shared experts). sv (may be NULL) keeps g, u and the product. */
int ffn_forward(float *out, const float *x, const Mat *gate, const Mat *up, const Mat *down, int T,
                FfnSaved *sv, Arena *a);

/* DeepSeekMoE over T rows; sv (may be NULL) keeps the routing and every
 * expert's activations for the backward. */
int moe_forward(float *out, const float *x, const LayerWeights *L, const ModelConfig *c, int T,
                MoeSaved *sv, Arena *a);
/* 1: one row at inference runs its experts as two lists of products over
 * all threads (the default); 0: the loop over experts. Tests compare. */
extern int moe_one_token_pass;

/* Expert parallelism (moe_ep.c), for moe_forward and moe_backward: after
 * the forward's routing (sv->count, sv->order), moe_ep_counts tells every
 * rank how many rows it will run for each of its experts (sv->ep_cnt,
 * sv->ep_rows); moe_ep_dispatch sends rows (T K, width), one per dispatch
 * slot in sv's order, to the ranks of their experts, arriving in own
 * (ep_rows, width) expert after expert; moe_ep_combine sends such rows
 * back to where they came from, in dispatch order. 0 or -1. */
int moe_ep_counts(MoeSaved *sv, int E, Arena *a);
int moe_ep_dispatch(const MoeSaved *sv, int E, const float *rows, int width, float *own, Arena *a);
int moe_ep_combine(const MoeSaved *sv, int E, const float *own, int width, float *rows, Arena *a);

/* The rows of this rank's expert j among the ep_rows: from *first, *n. */
void moe_ep_expert_rows(const MoeSaved *sv, int E, int j, int *first, int *n);

/* Route one token: from router logits (E) pick K experts (idx) and their
 * weights (w), per DeepSeek-V2/V3: softmax or sigmoid scores, the
 * correction bias for selection only, group-limited selection, optional
 * normalisation, routed_scaling_factor. scratch: 2E floats. */
void moe_route(const ModelConfig *c, const float *logits, const float *bias, int *idx, float *w,
               float *scratch);

#endif
