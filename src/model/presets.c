/* SPDX-License-Identifier: MIT */
/* Model shapes by name (see presets.h). `tiny` and `small` are
 * DeepSeek-V3 architectures in miniature (MLA with q_lora, sigmoid
 * group-limited routing with the correction bias, one MTP module), sized for
 * tests and for the R1-Zero demo on two cores; the -v2, -qwen2 and -llama
 * variants exercise the other families. */
#include "model/presets.h"

#include <string.h>

static void v3_mini(ModelConfig *c, int D, int layers, int H, int vocab) {
    config_defaults(c, ARCH_DEEPSEEK_V3);
    c->vocab_size = vocab;
    c->hidden_size = D;
    c->intermediate_size = 3 * D;
    c->num_hidden_layers = layers;
    c->num_attention_heads = c->num_key_value_heads = H;
    c->q_lora_rank = D / 2;
    c->kv_lora_rank = D / 2;
    c->qk_nope_head_dim = D / H;
    c->qk_rope_head_dim = D / H / 2;
    c->v_head_dim = D / H;
    c->n_routed_experts = 8;
    c->n_shared_experts = 1;
    c->num_experts_per_tok = 2;
    c->moe_intermediate_size = D / 2;
    c->first_k_dense_replace = 1;
    c->n_group = 4;
    c->topk_group = 2;
    c->max_position_embeddings = 4096;
    c->num_nextn_predict_layers = 1;
}

int preset_config(const char *name, ModelConfig *c, Err *err) {
    if (!strcmp(name, "tiny")) {
        v3_mini(c, 64, 2, 4, 512);
    } else if (!strcmp(name, "small")) {
        v3_mini(c, 256, 6, 8, 4096);
        c->n_routed_experts = 16;
        c->num_experts_per_tok = 4;
    } else if (!strcmp(name, "tiny-v2")) {
        v3_mini(c, 64, 2, 4, 512);
        c->arch = ARCH_DEEPSEEK_V2;
        strcpy(c->model_type, "deepseek_v2");
        c->q_lora_rank = 0;
        c->scoring_func = SCORE_SOFTMAX;
        c->topk_method = TOPK_GREEDY;
        c->n_group = c->topk_group = 1;
        c->norm_topk_prob = 0;
        c->routed_scaling_factor = 1.0f;
        c->num_nextn_predict_layers = 0;
    } else if (!strcmp(name, "tiny-qwen2") || !strcmp(name, "tiny-llama")) {
        int qwen = name[5] == 'q';
        config_defaults(c, qwen ? ARCH_QWEN2 : ARCH_LLAMA);
        c->vocab_size = 512;
        c->hidden_size = 64;
        c->intermediate_size = 192;
        c->num_hidden_layers = 2;
        c->num_attention_heads = 4;
        c->num_key_value_heads = 2;
        c->head_dim = 16;
        c->max_position_embeddings = 4096;
        c->tie_word_embeddings = qwen;
        c->bos_token_id = 0;
        c->eos_token_id = 1;
    } else {
        return err_set(err, "unknown preset '%s' (presets: %s)", name, preset_names());
    }
    if (c->arch == ARCH_DEEPSEEK_V3 || c->arch == ARCH_DEEPSEEK_V2) {
        c->bos_token_id = 0;
        c->eos_token_id = 1;
    }
    return 0;
}

const char *preset_names(void) { return "tiny small tiny-v2 tiny-qwen2 tiny-llama"; }
