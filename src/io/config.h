/* SPDX-License-Identifier: MIT */
/* Model configuration: the Hugging Face config.json of the deepseek_v3,
 * deepseek_v2, qwen2 and llama families, with each family's defaults for
 * absent keys (the transformers config classes), validated so that every
 * later stage can trust the shapes. */
#ifndef WHALE_CONFIG_H
#define WHALE_CONFIG_H

#include <stdint.h>

#include "base/err.h"

typedef enum ModelArch { ARCH_DEEPSEEK_V3, ARCH_DEEPSEEK_V2, ARCH_QWEN2, ARCH_LLAMA } ModelArch;
typedef enum TopkMethod { TOPK_GREEDY, TOPK_GROUP_LIMITED_GREEDY, TOPK_NOAUX_TC } TopkMethod;
typedef enum ScoringFunc { SCORE_SOFTMAX, SCORE_SIGMOID } ScoringFunc;
typedef enum RopeType { ROPE_DEFAULT, ROPE_YARN, ROPE_LLAMA3, ROPE_LINEAR } RopeType;

typedef struct RopeScaling {
    RopeType type;
    float factor;
    int original_max_position_embeddings;
    float beta_fast, beta_slow;       /* yarn */
    float mscale, mscale_all_dim;     /* yarn */
    float low_freq_factor, high_freq_factor; /* llama3 */
} RopeScaling;

typedef struct ModelConfig {
    ModelArch arch;
    char model_type[32];
    int vocab_size;
    int hidden_size;                  /* D */
    int intermediate_size;            /* dense FFN width */
    int num_hidden_layers;
    int num_attention_heads;          /* H */
    int num_key_value_heads;          /* qwen2/llama GQA */
    int head_dim;                     /* qwen2/llama Dh */
    float rms_norm_eps;
    float rope_theta;
    RopeScaling rope;
    int max_position_embeddings;
    int tie_word_embeddings;
    int attention_bias;               /* q/k/v biases (qwen2: always) */
    int bos_token_id, eos_token_id;   /* -1 when absent */
    char torch_dtype[16];

    /* MLA (deepseek) */
    int q_lora_rank;                  /* 0: plain q_proj */
    int kv_lora_rank;                 /* R */
    int qk_nope_head_dim, qk_rope_head_dim, v_head_dim;

    /* DeepSeekMoE */
    int n_routed_experts;             /* E; 0: dense model */
    int n_shared_experts;
    int num_experts_per_tok;          /* K */
    int moe_intermediate_size;
    int first_k_dense_replace;
    int moe_layer_freq;
    int n_group, topk_group;
    TopkMethod topk_method;
    ScoringFunc scoring_func;
    int norm_topk_prob;
    float routed_scaling_factor;
    int num_nextn_predict_layers;     /* MTP depth */

    /* FP8 block quantisation declared by quantization_config (0 if none). */
    int fp8_block_rows, fp8_block_cols;
} ModelConfig;

/* Read dir_or_file (a model directory or a config.json path) into cfg.
 * Returns 0, or -1 with err naming the file and field (and line:column for
 * malformed JSON). */
int config_load(ModelConfig *cfg, const char *dir_or_file, Err *err);

/* Parse from an already parsed JSON object (jansson json_t *), `what` names
 * the source in messages. */
int config_from_json(ModelConfig *cfg, const void *json_obj, const char *what, Err *err);

/* Fill the defaults of a family (used by config_from_json and presets). */
void config_defaults(ModelConfig *cfg, ModelArch arch);

/* Check shapes for consistency. 0 or -1 with err. */
int config_validate(const ModelConfig *cfg, const char *what, Err *err);

/* Write cfg as an HF config.json (atomic). */
int config_save(const ModelConfig *cfg, const char *path, Err *err);

/* 1 if decoder layer `layer` (0-based; MTP layers continue the count) uses
 * DeepSeekMoE, 0 if a dense FFN. */
int config_layer_is_moe(const ModelConfig *cfg, int layer);

static inline int config_is_mla(const ModelConfig *cfg) {
    return cfg->arch == ARCH_DEEPSEEK_V3 || cfg->arch == ARCH_DEEPSEEK_V2;
}

/* Parameter counts. total: everything in the main model (embedding, layers,
 * norm, head; MTP modules excluded and counted in mtp, each with its own
 * output head as the release stores it); active: what one
 * token touches (routed experts counted K of E). */
typedef struct ParamCount {
    int64_t total, active, mtp, embedding;
} ParamCount;
ParamCount config_count_params(const ModelConfig *cfg);

/* Numbers stored per token per layer in the KV cache: MLA keeps the latent
 * and the shared rope key (R + rope dim); GQA keeps K and V of each KV head. */
int64_t config_kv_numbers_per_token_layer(const ModelConfig *cfg);

const char *config_arch_name(ModelArch a);

#endif
