/* SPDX-License-Identifier: MIT */
/* The model's parameters: one table of every tensor (Hugging Face name,
 * shape, where it lives) derived from the config, and one flat float32
 * buffer that all of them point into. The same table drives loading,
 * random initialisation, saving and (later) gradients and optimiser state,
 * so the model is defined once. */
#ifndef WHALE_WEIGHTS_H
#define WHALE_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/err.h"
#include "io/config.h"
#include "kernels/matmul.h"

/* How a tensor is initialised and whether weight decay applies (training). */
typedef enum ParamKind {
    PARAM_MATRIX,  /* linear weight: normal(0, std) */
    PARAM_ROUTER,  /* MoE router (E, D): normal(0, std), always stored F32, as llama.cpp keeps
                    * ffn_gate_inp: small, and one quantisation step can swap a near tie */
    PARAM_EMBED,   /* embedding / head: normal(0, std) */
    PARAM_NORM,    /* RMSNorm gain: ones */
    PARAM_BIAS,    /* zeros */
    PARAM_ROUTER_BIAS, /* e_score_correction_bias: zeros, updated by balancing, not by gradients */
} ParamKind;

typedef struct ParamSpec {
    char name[96];       /* Hugging Face tensor name */
    int n_dims;          /* 1 or 2 */
    int64_t shape[2];
    ParamKind kind;
    QType type;          /* storage type (F32 for 1-D tensors) */
    size_t offset;       /* into Weights.data, in bytes (64-byte aligned) */
    size_t bytes;
    int64_t numel;
} ParamSpec;

/* Weights of one decoder block (MLA or GQA attention; dense FFN or MoE).
 * Pointers are NULL / Mats empty when the piece does not exist. */
typedef struct LayerWeights {
    const float *attn_norm, *ffn_norm; /* (D) */
    /* MLA */
    Mat q_proj;                        /* (H*(nope+rope), D) when q_lora_rank == 0 */
    Mat q_a_proj;                      /* (q_lora, D) */
    const float *q_a_norm;             /* (q_lora) */
    Mat q_b_proj;                      /* (H*(nope+rope), q_lora) */
    Mat kv_a_proj;                     /* (R+rope, D) */
    const float *kv_a_norm;            /* (R) */
    Mat kv_b_proj;                     /* (H*(nope+v), R) */
    Mat wuk_t;                         /* (H*R, nope): W_UK[h]^T of every head, and */
    Mat wuv;                           /* (H*v, R): W_UV, both Q8_0 copies for
                                        * decoding (weights_mla_decode_copies), or
                                        * empty */
    Mat o_proj;                        /* (D, H*v) or (D, H*Dh) */
    /* GQA (qwen2, llama) */
    Mat wq, wk, wv;                    /* (H*Dh, D), (KV*Dh, D), (KV*Dh, D) */
    const float *bq, *bk, *bv, *bo;    /* biases or NULL */
    /* dense FFN, or the shared experts of an MoE layer */
    Mat gate, up, down;                /* (I, D), (I, D), (D, I) */
    /* MoE */
    int is_moe;
    Mat router;                        /* (E, D) */
    const float *router_bias;          /* (E) e_score_correction_bias or NULL */
    Mat *exp_gate, *exp_up, *exp_down; /* E each: (Im, D), (Im, D), (D, Im) */
    /* MTP module extras (layers num_hidden_layers + k) */
    const float *enorm, *hnorm, *head_norm; /* (D) */
    Mat eh_proj;                       /* (D, 2D) */
    Mat head;                          /* (V, D) shared_head.head */
} LayerWeights;

typedef struct Weights {
    unsigned char *data;     /* one flat buffer of all parameters (owned) */
    size_t n_bytes;
    QType mat_type;          /* storage of the 2-D tensors (F32 for training); with
                              * weights_alloc_typed the default, ParamSpec.type rules */
    ParamSpec *specs;        /* (n_specs) owned */
    int n_specs;
    LayerWeights *layers;    /* (num_hidden_layers + num_nextn_predict_layers) */
    Mat *expert_mats;        /* backing store for the per-expert Mats */
    Mat embed;               /* (V, D); rows are looked up with mat_row + dequantize_row */
    const float *final_norm; /* (D) */
    Mat lm_head;             /* (V, D); the embedding when tied */
    int n_panels;            /* matrices stored as 16-row panels (weights_pack_panels) */
    unsigned char *derived;  /* owned: the layers' wuk_t and wuv */
    int shard, n_shards;     /* weights_alloc_shard: which share of the routed experts is
                              * held (n_shards 0: all of them) */
} Weights;

/* Build the tensor table for cfg and allocate the zeroed flat buffer, with
 * 2-D tensors stored as mat_type (a matrix whose row length is not a
 * multiple of the type's block stays F32, and so does the MoE router,
 * mlp.gate.weight, as in llama.cpp's quantised files). Returns 0 or -1 with
 * err (out of memory, absurd size). */
int weights_alloc(Weights *w, const ModelConfig *cfg, QType mat_type, Err *err);

/* Storage type of one 2-D tensor (rows, cols) called name, for
 * weights_alloc_typed; dflt is what weights_alloc would choose. */
typedef QType (*WeightsTypeFn)(void *ctx, const char *name, int64_t rows, int64_t cols,
                               QType dflt);

/* weights_alloc with a storage type per matrix: type_of (may be NULL) is
 * asked once per 2-D tensor, in table order, with weights_alloc's choice as
 * dflt, and has the last word; a type whose block does not
 * divide the row stays F32, as in weights_alloc. The GGUF loader keeps each
 * file tensor's own type this way. */
int weights_alloc_typed(Weights *w, const ModelConfig *cfg, QType mat_type, WeightsTypeFn type_of,
                        void *ctx, Err *err);

/* weights_alloc (without type_of) holding only shard `shard` of n_shards
 * equal shares of every MoE layer's routed experts: experts
 * shard x E / n_shards .. (shard + 1) x E / n_shards - 1. The other experts
 * are not in the table (their Mats in LayerWeights stay empty), so
 * loading, saving, the optimiser and the gradients of such weights cover
 * the shard alone: expert parallelism's memory (train/trainer.c --ep).
 * n_shards 1 (or 0) is weights_alloc. n_shards must divide the experts. */
int weights_alloc_shard(Weights *w, const ModelConfig *cfg, QType mat_type, int shard, int n_shards,
                        Err *err);

/* 1 if s is a routed expert's tensor (model.layers.L.mlp.experts.E.*). */
int weights_is_routed_expert(const ParamSpec *s);

/* The bytes of data that layer l's routed experts fill (one run inside
 * weights_layer_span's): *off, *n; *n is 0 without any. */
void weights_expert_span(const Weights *w, int layer, size_t *off, size_t *n);

/* The F32 storage of a tensor (asserts that it is F32). */
float *weights_f32(const Weights *w, const ParamSpec *s);
void weights_free(Weights *w);

/* Fill from a model directory or .safetensors file: every tensor of the table
 * must be present with the right shape; F32/F16/BF16/F8_E4M3 (with its
 * weight_scale_inv) are converted to float32. Extra tensors are ignored
 * (MTP layers when the table has none, rotary caches). */
int weights_load(Weights *w, const char *path, Err *err);

/* Random initialisation: matrices normal(0, std), norms 1, biases 0, drawn
 * in table order (so a shard, weights_alloc_shard, draws other numbers than
 * the whole model: shards are loaded, not drawn). */
void weights_init_random(Weights *w, uint64_t seed, float std);

/* Save all tensors to one model.safetensors at path (atomic), as F32 or
 * BF16, from F32 storage (either) or BF16 storage (BF16 only). */
int weights_save(const Weights *w, const char *path, DType type, Err *err);

/* weights_save of the tensors s with keep(s) only (keep NULL: all): the
 * files of a sharded checkpoint (train/checkpoint.h). */
int weights_save_some(const Weights *w, const char *path, DType type,
                      int (*keep)(const ParamSpec *s), Err *err);

/* The bytes of data that layer l's tensors fill (decoder block or MTP
 * module l, every "model.layers.l." tensor): *off, *n. Each layer's tensors
 * are one run of the buffer, so a trainer can hand a finished layer's
 * gradients on (train/comm.h) while the backward goes on below it. */
void weights_layer_span(const Weights *w, int layer, size_t *off, size_t *n);

/* For inference: store every Q8_0 / Q4_0 / Q4_K / Q6_K matrix that only products read
 * (all but the embedding, a head tied to it, and MLA's kv_b_proj) as
 * 16-row panels, in place (kernels/qgemm.h: one stream per decoding step,
 * no repacking per product). Needs the VNNI dot level (kernels/dot.h; not
 * capped by WHALE_SIMD) and rows in multiples of 16; other matrices stay
 * as they are. Weights so stored can no longer be
 * saved or converted (both take F32 or BF16 storage only). Returns the
 * number of Mats now in panels; WHALE_PANELS=0 in the environment turns it
 * off (A/B benchmarks). */
int weights_pack_panels(Weights *w, const ModelConfig *cfg);

/* For decoding MLA with W_UK absorbed in a quantised model (its o_proj
 * block-quantised). The query qa[h] = W_UK[h]^T q_nope[h] is, on
 * kv_b_proj's rows, a transposed product (a row dequantised and added at a
 * time); so wuk_t stores W_UK[h]^T of every head once as Q8_0 (H*R rows of
 * nope), for an ordinary integer product. And where kv_b_proj is F32 (a
 * GGUF file with llama.cpp's split attn_k_b / attn_v_b, whose quantised
 * k_b only F32 holds exactly in kv_b's layout), wuv stores W_UV as Q8_0 too:
 * decoding then reads 2 x 1.06 bytes per W_UK and W_UV weight, not 8. One
 * more rounding to 8 bits (the activations are so rounded for every
 * quantised product). Needs nope (and R for wuv) a multiple of 32. Returns
 * the number of layers given copies (0 when nothing applies, and on out of
 * memory, which leaves kv_b_proj in use). Call before weights_pack_panels,
 * which packs the copies too. */
int weights_mla_decode_copies(Weights *w, const ModelConfig *cfg);

/* What chat, serve, bench and logits run on loaded weights: the MLA
 * decoding copies, then the panels. */
void weights_prepare_inference(Weights *w, const ModelConfig *cfg);

/* Weight bytes one decode step reads: every tensor once, except the
 * embedding (one row; whole when it is also the LM head), the routed
 * experts (K of E on average), MTP modules (not run) and MLA's kv_b_proj
 * where decoding reads its Q8_0 copies instead (wuk_t, and wuv or kv_b's
 * W_UV rows). The numerator of the bandwidth roofline. */
double weights_decode_bytes(const Weights *w, const ModelConfig *cfg);

/* Find a tensor by name; NULL if not in the table. */
const ParamSpec *weights_find(const Weights *w, const char *name);

#endif
