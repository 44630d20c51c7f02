/* SPDX-License-Identifier: MIT */
/* The model: config, weights, rope tables and scratch, and the forward pass
 * that inference, training and RL share. A forward call appends T tokens to
 * a KV cache and returns logits; T > 1 runs the prefill path (MLA keys and
 * values up-projected from the cached latents), T == 1 the decode path (MLA
 * with kv_b_proj absorbed into the query and output sides). A batched call
 * advances B sequences, each in its own cache, by one token in one pass. */
#ifndef WHALE_MODEL_H
#define WHALE_MODEL_H

#include "base/arena.h"
#include "base/err.h"
#include "io/config.h"
#include "model/kvcache.h"
#include "model/rope.h"
#include "model/weights.h"

typedef struct Model {
    ModelConfig cfg;
    Weights w;
    Rope rope;
    Arena arena;     /* per-call scratch, reset at the start of each call */
    int max_chunk;   /* prefill processes at most this many tokens at once */
} Model;

/* Open a model directory (config.json + safetensors) or a .safetensors file
 * with a config.json beside it, or a .gguf file (model/gguf_load.h: every
 * matrix keeps the file's type, so a Q8_0 GGUF computes with Q8_0 blocks).
 * MTP modules are loaded when the checkpoint has them; a checkpoint without
 * them loads as a model without MTP. */
int model_open(Model *m, const char *path, Err *err);

/* The same with the matrices stored as mat_type (quantised on load for
 * inference: BF16, F16, Q8_0, Q4_0, Q4_K, Q6_K; F32 keeps them exact; a
 * GGUF's tensors already of that type are copied as they are). */
int model_open_as(Model *m, const char *path, QType mat_type, Err *err);

/* model_open (F32) holding only shard `shard` of n_shards shares of the
 * routed experts (model/weights.h weights_alloc_shard), from a model
 * directory or .safetensors file: expert parallelism's ranks. */
int model_open_shard(Model *m, const char *path, int shard, int n_shards, Err *err);

/* A model of the given shape with zeroed weights (for init and training). */
int model_create(Model *m, const ModelConfig *cfg, Err *err);
/* The same with matrices stored as mat_type (whale init --dtype bf16 builds
 * large models this way, at half the memory). */
int model_create_as(Model *m, const ModelConfig *cfg, QType mat_type, Err *err);
void model_free(Model *m);

/* Which attention path to use for MLA layers. AUTO: prefill (up-projected
 * K/V) for T > 1, absorbed for T == 1. */
typedef enum MlaPath { MLA_AUTO, MLA_PREFILL, MLA_ABSORBED } MlaPath;

typedef struct ForwardOpts {
    float *logits;     /* (T, V) when all_logits, else (1, V) for the last token; may be NULL */
    int all_logits;
    float *hidden;     /* (T, D) final hidden states after model.norm (MTP input); may be NULL */
    MlaPath mla_path;
} ForwardOpts;

/* Run tokens (T) at positions kv->len .. kv->len+T-1, appending them to kv.
 * Returns 0, or -1 with err (token id out of range, context full, out of
 * memory). */
int model_forward(Model *m, KVCache *kv, const int *tokens, int T, const ForwardOpts *o, Err *err);

/* Batched decoding: B independent sequences advance by one token each,
 * token b at position kvs[b]->len of its own cache kvs[b] (B distinct
 * caches), which it is appended to. The B rows run as one (B, D) block
 * through the same block code as model_forward (one matmul per weight for
 * all rows); only attention runs per row, against that row's cache (MLA:
 * the absorbed path). logits (B, V), may be NULL. Returns 0, or -1 with
 * err naming the sequence (token out of range, its context full, out of
 * memory); on an error no cache length has changed. */
int model_forward_batch(Model *m, KVCache *const *kvs, const int *tokens, int B, float *logits,
                        Err *err);

/* The general step: N sequences with any number of new tokens each, in
 * one pass. Sequence i's tokens are tokens[start[i] .. start[i+1]) (start
 * has N + 1 entries, start[0] = 0, each sequence at least one token), at
 * positions kvs[i]->len on, appended to its own cache. Sequences of one
 * token take the absorbed MLA path, longer ones the prefill path, so a
 * server mixes a prompt chunk with the decoding rows of the other requests.
 * logits (N, V): each sequence's last row; may be NULL. The caller keeps
 * start[N] within m->max_chunk rows. Errors as model_forward_batch. */
int model_forward_seqs(Model *m, KVCache *const *kvs, int N, const int *start, const int *tokens,
                       float *logits, Err *err);

/* MTP module k (0-based) for T positions starting at kv->len of the MTP
 * cache layer: input hidden states h_prev (T, D) of depth k (the main
 * model's output after model.norm for k = 0) and the tokens one step ahead (T). Writes
 * logits (T, V) and, if h_out is non-NULL, its pre-norm output (T, D) for
 * depth k+1. kv must have been created with_mtp; it advances kv->len only
 * through the main forward, so pass pos0 explicitly. */
int model_forward_mtp(Model *m, int k, KVCache *kv, int pos0, const float *h_prev,
                      const int *next_tokens, int T, float *logits, float *h_out, Err *err);

/* The sequences that the T rows of one forward belong to: sequence i owns
 * rows start[i] .. start[i+1]-1, at consecutive positions from
 * pos[start[i]], and its cache kv[i] (distinct per sequence) receives
 * them. One prefill is one sequence of T rows; a batched decoding step is
 * B sequences of one row each. */
typedef struct SeqRows {
    int n_seq;
    KVCache *const *kv; /* (n_seq) */
    const int *start;   /* (n_seq + 1) start[0] = 0, start[n_seq] = T */
    const int *pos;     /* (T) each row's absolute position */
} SeqRows;

/* One decoder block in place on h (T, D) for layer index `layer`, its rows
 * laid out as sr says; each sequence's new cache rows are stored at its
 * positions. Used by model_forward, model_forward_batch and the MTP
 * modules. MLA_AUTO takes the absorbed path for sequences of one row. */
int model_block(Model *m, int layer, float *h, const SeqRows *sr, MlaPath path, Err *err);

#endif
