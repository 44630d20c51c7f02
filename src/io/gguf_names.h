/* SPDX-License-Identifier: MIT */
/* What a GGUF file means to whale: its metadata <-> ModelConfig for the
 * llama.cpp architectures deepseek2, qwen2 and llama, tensor names <-> the
 * Hugging Face names of model/weights.c, and the tensor transforms that
 * llama.cpp's converter (convert_hf_to_gguf.py, conversion/{llama,deepseek}.py
 * in llama.cpp v0.5.0) applies, so that a loader can undo them exactly and a
 * writer redo them. Pure functions over names, configs and buffers; io/gguf.h
 * does the bytes. Shapes are in ggml order here (ne[0] contiguous): an HF
 * row-major (rows, cols) matrix is ne = {cols, rows}.
 *
 * The converter's transforms, all exact (no arithmetic on values):
 *  - llama: the rows of q_proj and k_proj (weight and bias) are permuted per
 *    head from HF's rotate-half rope layout to ggml's interleaved-pair layout
 *    (gguf_llama_permute_rows). qwen2 and deepseek2 are copied as they are:
 *    llama.cpp ropes qwen2 in NEOX (rotate-half) mode, and DeepSeek's
 *    checkpoints already keep their rope dims interleaved, which is what
 *    llama.cpp's NORM mode for deepseek2 expects.
 *  - deepseek2 routed experts: experts.{e}.{gate,up,down}_proj of a layer are
 *    stacked in expert order into one 3-D tensor ffn_{gate,up,down}_exps with
 *    ne = {cols, rows, E}; expert e is the e-th contiguous slice.
 *  - deepseek2 kv_b_proj (H*(nope+v), R) is split per head into attn_k_b, the
 *    nope rows transposed, ne = {nope, R, H}, and attn_v_b, the v rows as
 *    they are, ne = {R, v, H} (gguf_mla_split_kv_b). Older files hold the
 *    unsplit attn_kv_b instead; both read.
 *  - llama with rope_scaling llama3: no metadata keys; the converter adds a
 *    rope_freqs.weight tensor of head_dim/2 per-frequency divisors
 *    (gguf_llama3_rope_freqs); whale fits the HF parameters back from it. */
#ifndef WHALE_IO_GGUF_NAMES_H
#define WHALE_IO_GGUF_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "io/config.h"
#include "io/gguf.h"

/* general.architecture of a whale arch: "deepseek2" for V2 and V3. */
const char *gguf_arch_name(ModelArch arch);

/* ---- metadata <-> ModelConfig ------------------------------------------------ */

/* Read the model config from g's metadata, and from the tensor list what the
 * metadata does not say: tie_word_embeddings (token_embd.weight present,
 * output.weight absent), a llama attention_bias (blk.0.attn_q.bias), the
 * deepseek2 topk_method (exp_probs_b.bias tensors: noaux_tc; else
 * expert_group_count > 1: group_limited_greedy; else greedy; a file without
 * tensors infers noaux_tc from sigmoid gating), the llama3 rope parameters
 * (rope_freqs.weight, F32), and the vocab size when neither {arch}.vocab_size
 * nor tokenizer.ggml.tokens gives it (token_embd.weight's ne[1]). deepseek2
 * becomes deepseek_v3 when routing is noaux_tc or it has MTP layers, else
 * deepseek_v2. The result passes config_validate. Returns 0, or -1 with err
 * naming the file and key: an architecture other than deepseek2, qwen2 or
 * llama, a missing required key ({arch}.block_count, context_length,
 * embedding_length, attention.head_count, attention.layer_norm_rms_epsilon;
 * feed_forward_length for qwen2/llama; attention.kv_lora_rank and
 * rope.dimension_count for deepseek2; expert_used_count and
 * expert_feed_forward_length when expert_count > 0), a key of the wrong type,
 * per-layer arrays that differ between layers, or values whale cannot run
 * (an unknown rope scaling type or gating function). */
int gguf_config_from_gguf(const GgufFile *g, ModelConfig *cfg, Err *err);

/* A metadata list that owns its keys (string and array values are borrowed
 * from whoever built them). Zero is an empty list. */
typedef struct GgufMeta {
    GgufKV *kvs;
    int n_kv, cap;
} GgufMeta;

/* Append kv, copying its key. Returns 0 or -1 with err (out of memory). */
int gguf_meta_add(GgufMeta *m, GgufKV kv, Err *err);
void gguf_meta_free(GgufMeta *m);

/* Append the metadata llama.cpp reads for cfg's architecture, with the types
 * it insists on (u32 counts, f32 floats, bool expert_weights_norm, string
 * rope.scaling.type), in the converter's order: general.architecture, the
 * {arch}.* hyperparameters, tokenizer.ggml.bos_token_id/eos_token_id when
 * set. Follows the converter except where it would break llama.cpp:
 * deepseek2 always writes attention.q_lora_rank (0 for a plain q_proj;
 * llama.cpp requires the key unless the model has 26 or 27 layers) and
 * head_count_kv = 1 (MLA as MQA); block_count counts MTP blocks, and
 * nextn_predict_layers says how many; expert_group_count/used_count are
 * written only when groups limit routing (topk_method not greedy and
 * topk_group < n_group; llama.cpp asserts topk_group < n_group). YaRN: rope.scaling.type "yarn",
 * factor, original_context_length, yarn_beta_fast/slow, and for deepseek2
 * yarn_log_multiplier = 0.1 * mscale_all_dim. Errors (cfg that GGUF cannot
 * carry): moe_layer_freq != 1 with experts; yarn with mscale !=
 * mscale_all_dim (llama.cpp assumes them equal) unless mscale = 1 and
 * mscale_all_dim = 0; llama3 rope scaling on anything but llama (on llama
 * the caller must add rope_freqs.weight from gguf_llama3_rope_freqs). The
 * keys general.alignment, general.file_type and the tokenizer are the
 * caller's. */
int gguf_meta_from_config(const ModelConfig *cfg, GgufMeta *m, Err *err);

/* The converter writes {arch}.rope.scaling.yarn_log_multiplier as
 * 0.1 * mscale_all_dim (in double, from config.json's decimal, stored as
 * f32) and llama.cpp divides it by 0.1 when loading deepseek2. Encode the
 * way the converter does (the float's shortest decimal times 0.1, rounded
 * to f32: bit-identical files), and decode: among the floats next
 * to log_mul / 0.1 that encode to log_mul, the one with the shortest
 * decimal form, then the nearest. f32 cannot always tell neighbours apart
 * (0.1 * x is coarser than x for x in [1.25, 2) * 2^k), so decode(encode(x))
 * is x for any value written with up to 6 significant digits (0.707, 1.0)
 * and within two ulps of x, encoding to the same bits, for any other. */
float gguf_yarn_log_mul_encode(float mscale_all_dim);
float gguf_yarn_log_mul_decode(float log_mul);

/* The converter's rope_freqs.weight for llama3 scaling: for i < head_dim/2,
 * freq = theta^(-2i/head_dim), wavelen = 2 pi / freq; out[i] = 1 when
 * wavelen < orig/high_freq_factor, factor when wavelen > orig/low_freq_factor,
 * else 1 / ((1 - s)/factor + s) with s = (orig/wavelen - low)/(high - low).
 * llama.cpp divides each frequency by out[i]; HF's llama3 rope does the
 * same. cfg must be llama3-scaled. */
void gguf_llama3_rope_freqs(const ModelConfig *cfg, float *out);

/* Recover llama3 rope parameters (factor, low/high_freq_factor,
 * original_max_position_embeddings) from n = head_dim/2 divisors f as
 * gguf_llama3_rope_freqs writes them. The divisors only pin down orig/low
 * and orig/high, so low_freq_factor is taken as 1 (Llama 3's value) unless
 * that makes orig non-integral, and the fit is checked by recomputing every
 * divisor (relative error <= 1e-4). All divisors 1: rope.type stays default.
 * Returns 0, or -1 with err when no llama3 parameters reproduce f. */
int gguf_llama3_fit(const float *f, int n, float theta, int head_dim, RopeScaling *out,
                    Err *err);

/* ---- tensor names ------------------------------------------------------------ */

/* How a GGUF tensor relates to the HF tensor(s) it holds. */
typedef enum GgufXform {
    GGUF_XFORM_NONE = 0,      /* same values, dims reversed */
    GGUF_XFORM_LLAMA_PERMUTE, /* llama q/k rows permuted per head (n_head heads) */
    GGUF_XFORM_EXPERT,        /* slice `expert` of a 3-D stacked experts tensor */
    GGUF_XFORM_KV_B_K,        /* attn_k_b: the nope rows of kv_b, transposed per head */
    GGUF_XFORM_KV_B_V,        /* attn_v_b: the v rows of kv_b */
} GgufXform;

typedef struct GgufNameRef {
    char name[GGUF_NAME_MAX]; /* GGUF tensor name */
    GgufXform xform;
    int expert;               /* GGUF_XFORM_EXPERT: which slice; else -1 */
    int n_head;               /* GGUF_XFORM_LLAMA_PERMUTE: heads to permute by */
} GgufNameRef;

/* HF name -> the GGUF tensor(s) holding it. Every name has one ref except a
 * deepseek kv_b_proj, which has two (attn_k_b then attn_v_b). MTP layers
 * (index >= cfg->num_hidden_layers) put enorm, hnorm, eh_proj,
 * shared_head.{norm,head} and embed_tokens under blk.N.nextn.*. Returns the
 * number of refs (1 or 2), 0 for an HF tensor GGUF does not store (rotary
 * inv_freq caches), or -1 with err for a name whale does not know. */
int gguf_name_from_hf(const ModelConfig *cfg, const char *hf, GgufNameRef out[2], Err *err);

/* GGUF name -> HF name into hf (n bytes), with *xform saying how they
 * relate. A stacked experts tensor (ffn_{gate,up,down}_exps) stands for E
 * HF tensors: `expert` picks one (0 <= expert < n_routed_experts; ignored
 * otherwise). attn_k_b and attn_v_b both give kv_b_proj (xform says which
 * part); the legacy attn_kv_b gives it with GGUF_XFORM_NONE. Returns 1 when
 * mapped, 0 for a GGUF tensor with no HF counterpart (rope_freqs.weight), or
 * -1 with err for an unknown name or a bad expert index. */
int gguf_name_to_hf(const ModelConfig *cfg, const char *gguf, int expert, char *hf, size_t n,
                    GgufXform *xform, Err *err);

/* The GGUF shape (ggml order) of the tensor ref refers to, given the HF
 * tensor's row-major shape (hf_n_dims 1 or 2): dims reversed, then for
 * GGUF_XFORM_EXPERT a third dim E, for KV_B_K {nope, R, H}, for KV_B_V
 * {R, v, H}. Returns 0, or -1 with err when the HF shape does not fit. */
int gguf_shape_from_hf(const ModelConfig *cfg, const GgufNameRef *ref, int hf_n_dims,
                       const int64_t *hf_shape, int *n_dims, int64_t ne[GGUF_MAX_DIMS], Err *err);

/* ---- the converter's transforms, undone and redone ----------------------------- */

/* llama.cpp's LlamaModel.permute on rows: src holds n_rows rows of row_bytes
 * bytes (any type, quantized too: rows move whole), n_rows = n_head * Dh
 * with Dh even. Within each head, out row 2j + s = in row s*Dh/2 + j
 * (j < Dh/2, s in {0,1}): HF's halves become interleaved pairs. For q use
 * n_head = num_attention_heads, for k num_key_value_heads; biases are rows
 * of one element. dst and src must not overlap. Returns 0, or -1 with err
 * when n_rows is not a multiple of 2*n_head. */
int gguf_llama_permute_rows(void *dst, const void *src, int64_t n_rows, size_t row_bytes,
                            int n_head, Err *err);
/* The inverse: GGUF (interleaved) rows back to HF (rotate-half) rows. */
int gguf_llama_unpermute_rows(void *dst, const void *src, int64_t n_rows, size_t row_bytes,
                              int n_head, Err *err);

/* kv_b_proj (H*(nope+v), R) row-major, elements of elem_size bytes (F32,
 * F16, BF16: bit-exact), into k_b (H, R, nope) -- per head the transpose of
 * the nope rows -- and v_b (H, v, R) -- per head the v rows. */
void gguf_mla_split_kv_b(const void *kv_b, void *k_b, void *v_b, size_t elem_size, int H, int nope,
                         int v, int R);
/* The inverse: k_b and v_b back into kv_b. */
void gguf_mla_merge_kv_b(const void *k_b, const void *v_b, void *kv_b, size_t elem_size, int H,
                         int nope, int v, int R);

/* Expert e of a stacked experts tensor (ne = {cols, rows, E}): its bytes
 * (*n_bytes of them) inside t->data; NULL when t is not 3-D or e is out of
 * range. */
const void *gguf_expert_slice(const GgufTensor *t, int e, size_t *n_bytes);

#endif
