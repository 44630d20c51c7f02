/* SPDX-License-Identifier: MIT */
/* config.json <-> ModelConfig (see config.h). The defaults are those of the
 * transformers classes DeepseekV3Config, DeepseekV2Config, Qwen2Config and
 * LlamaConfig, so a config.json that omits a key means what it means there. */
#include "io/config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/json.h"

static const char *arch_names[] = {"deepseek_v3", "deepseek_v2", "qwen2", "llama"};

const char *config_arch_name(ModelArch a) { return arch_names[a]; }

void config_defaults(ModelConfig *c, ModelArch arch) {
    memset(c, 0, sizeof *c);
    c->arch = arch;
    snprintf(c->model_type, sizeof c->model_type, "%s", arch_names[arch]);
    c->rms_norm_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    c->rope.type = ROPE_DEFAULT;
    c->rope.factor = 1.0f;
    c->bos_token_id = -1;
    c->eos_token_id = -1;
    c->moe_layer_freq = 1;
    c->n_group = 1;
    c->topk_group = 1;
    c->routed_scaling_factor = 1.0f;
    snprintf(c->torch_dtype, sizeof c->torch_dtype, "float32");
    switch (arch) {
    case ARCH_DEEPSEEK_V3:
        c->vocab_size = 129280, c->hidden_size = 7168, c->intermediate_size = 18432;
        c->moe_intermediate_size = 2048, c->num_hidden_layers = 61;
        c->num_nextn_predict_layers = 1, c->num_attention_heads = 128;
        c->num_key_value_heads = 128, c->n_shared_experts = 1, c->n_routed_experts = 256;
        c->routed_scaling_factor = 2.5f, c->kv_lora_rank = 512, c->q_lora_rank = 1536;
        c->qk_rope_head_dim = 64, c->v_head_dim = 128, c->qk_nope_head_dim = 128;
        c->topk_method = TOPK_NOAUX_TC, c->n_group = 8, c->topk_group = 4;
        c->num_experts_per_tok = 8, c->first_k_dense_replace = 3, c->norm_topk_prob = 1;
        c->scoring_func = SCORE_SIGMOID, c->max_position_embeddings = 4096;
        c->bos_token_id = 0, c->eos_token_id = 1;
        break;
    case ARCH_DEEPSEEK_V2:
        c->vocab_size = 102400, c->hidden_size = 4096, c->intermediate_size = 11008;
        c->moe_intermediate_size = 1407, c->num_hidden_layers = 30;
        c->num_attention_heads = 32, c->num_key_value_heads = 32;
        c->n_shared_experts = 0, c->n_routed_experts = 0; /* None: a dense model */
        c->kv_lora_rank = 512, c->q_lora_rank = 1536, c->qk_rope_head_dim = 64;
        c->v_head_dim = 128, c->qk_nope_head_dim = 128, c->topk_method = TOPK_GREEDY;
        c->first_k_dense_replace = 0, c->norm_topk_prob = 0, c->scoring_func = SCORE_SOFTMAX;
        c->max_position_embeddings = 2048, c->bos_token_id = 100000, c->eos_token_id = 100001;
        break;
    case ARCH_QWEN2:
        c->vocab_size = 151936, c->hidden_size = 4096, c->intermediate_size = 22016;
        c->num_hidden_layers = 32, c->num_attention_heads = 32, c->num_key_value_heads = 32;
        c->max_position_embeddings = 32768, c->attention_bias = 1;
        break;
    case ARCH_LLAMA:
        c->vocab_size = 32000, c->hidden_size = 4096, c->intermediate_size = 11008;
        c->num_hidden_layers = 32, c->num_attention_heads = 32, c->num_key_value_heads = 0;
        c->max_position_embeddings = 2048, c->bos_token_id = 1, c->eos_token_id = 2;
        break;
    }
}

static int parse_rope_scaling(ModelConfig *c, const json_t *rs, const char *what, Err *err) {
    if (!rs || json_is_null(rs)) return 0;
    if (!json_is_object(rs)) return err_set(err, "%s: field 'rope_scaling' must be an object", what);
    char type[32] = "";
    char sub[96];
    snprintf(sub, sizeof sub, "%s: rope_scaling", what);
    if (json_get_str(rs, "rope_type", type, sizeof type, sub, err) != 0) return -1;
    if (!type[0] && json_get_str(rs, "type", type, sizeof type, sub, err) != 0) return -1;
    RopeScaling *r = &c->rope;
    r->factor = 1.0f;
    r->beta_fast = 32.0f, r->beta_slow = 1.0f, r->mscale = 1.0f, r->mscale_all_dim = 0.0f;
    r->original_max_position_embeddings = 4096;
    r->low_freq_factor = 1.0f, r->high_freq_factor = 4.0f;
    if (!strcmp(type, "yarn")) r->type = ROPE_YARN;
    else if (!strcmp(type, "llama3")) r->type = ROPE_LLAMA3;
    else if (!strcmp(type, "linear")) r->type = ROPE_LINEAR;
    else if (!strcmp(type, "default") || !type[0]) r->type = ROPE_DEFAULT;
    else return err_set(err, "%s: rope_scaling type '%s' is not supported (yarn, llama3, linear)",
                        what, type);
    if (r->type == ROPE_LLAMA3) r->original_max_position_embeddings = 8192;
    if (json_get_float(rs, "factor", &r->factor, sub, err) ||
        json_get_int(rs, "original_max_position_embeddings", &r->original_max_position_embeddings,
                     sub, err) ||
        json_get_float(rs, "beta_fast", &r->beta_fast, sub, err) ||
        json_get_float(rs, "beta_slow", &r->beta_slow, sub, err) ||
        json_get_float(rs, "mscale", &r->mscale, sub, err) ||
        json_get_float(rs, "mscale_all_dim", &r->mscale_all_dim, sub, err) ||
        json_get_float(rs, "low_freq_factor", &r->low_freq_factor, sub, err) ||
        json_get_float(rs, "high_freq_factor", &r->high_freq_factor, sub, err))
        return -1;
    return 0;
}

int config_from_json(ModelConfig *c, const void *json_obj, const char *what, Err *err) {
    const json_t *j = json_obj;
    if (!json_is_object(j)) return err_set(err, "%s: expected a JSON object", what);
    char mt[32] = "";
    if (json_get_str(j, "model_type", mt, sizeof mt, what, err) != 0) return -1;
    if (!mt[0]) return err_set(err, "%s: field 'model_type' is missing", what);
    int arch = -1;
    for (int a = 0; a < 4; a++)
        if (!strcmp(mt, arch_names[a])) arch = a;
    if (arch < 0)
        return err_set(err,
                       "%s: unknown model_type '%s' (whale reads deepseek_v3, deepseek_v2, "
                       "qwen2, llama)",
                       what, mt);
    config_defaults(c, (ModelArch)arch);

    struct { const char *key; int *dst; } ints[] = {
        {"vocab_size", &c->vocab_size},
        {"hidden_size", &c->hidden_size},
        {"intermediate_size", &c->intermediate_size},
        {"num_hidden_layers", &c->num_hidden_layers},
        {"num_attention_heads", &c->num_attention_heads},
        {"num_key_value_heads", &c->num_key_value_heads},
        {"head_dim", &c->head_dim},
        {"max_position_embeddings", &c->max_position_embeddings},
        {"bos_token_id", &c->bos_token_id},
        {"eos_token_id", &c->eos_token_id},
        {"q_lora_rank", &c->q_lora_rank},
        {"kv_lora_rank", &c->kv_lora_rank},
        {"qk_nope_head_dim", &c->qk_nope_head_dim},
        {"qk_rope_head_dim", &c->qk_rope_head_dim},
        {"v_head_dim", &c->v_head_dim},
        {"n_routed_experts", &c->n_routed_experts},
        {"n_shared_experts", &c->n_shared_experts},
        {"num_experts_per_tok", &c->num_experts_per_tok},
        {"moe_intermediate_size", &c->moe_intermediate_size},
        {"first_k_dense_replace", &c->first_k_dense_replace},
        {"moe_layer_freq", &c->moe_layer_freq},
        {"n_group", &c->n_group},
        {"topk_group", &c->topk_group},
        {"num_nextn_predict_layers", &c->num_nextn_predict_layers},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        /* An explicit null means "none" for these optional widths (V2's
         * q_lora_rank: null is a plain q_proj). */
        json_t *v = json_object_get(j, ints[i].key);
        if (v && json_is_null(v)) {
            int is_id = !strcmp(ints[i].key, "bos_token_id") || !strcmp(ints[i].key, "eos_token_id");
            *ints[i].dst = is_id ? -1 : 0;
            continue;
        }
        /* eos_token_id may be a list (generation configs); take the first. */
        if (v && json_is_array(v) && !strcmp(ints[i].key, "eos_token_id")) {
            json_t *first = json_array_get(v, 0);
            if (!json_is_integer(first))
                return err_set(err, "%s: field 'eos_token_id' must be an integer", what);
            *ints[i].dst = (int)json_integer_value(first);
            continue;
        }
        if (json_get_int(j, ints[i].key, ints[i].dst, what, err) != 0) return -1;
    }
    if (json_get_float(j, "rms_norm_eps", &c->rms_norm_eps, what, err) ||
        json_get_float(j, "rope_theta", &c->rope_theta, what, err) ||
        json_get_float(j, "routed_scaling_factor", &c->routed_scaling_factor, what, err) ||
        json_get_bool(j, "tie_word_embeddings", &c->tie_word_embeddings, what, err) ||
        json_get_bool(j, "norm_topk_prob", &c->norm_topk_prob, what, err) ||
        json_get_str(j, "torch_dtype", c->torch_dtype, sizeof c->torch_dtype, what, err))
        return -1;
    if (c->arch == ARCH_LLAMA && json_get_bool(j, "attention_bias", &c->attention_bias, what, err))
        return -1;
    int mlp_bias = 0;
    if (json_get_bool(j, "mlp_bias", &mlp_bias, what, err) != 0) return -1;
    if (mlp_bias) return err_set(err, "%s: mlp_bias is not supported", what);

    char s[32] = "";
    if (json_get_str(j, "topk_method", s, sizeof s, what, err) != 0) return -1;
    if (!strcmp(s, "greedy")) c->topk_method = TOPK_GREEDY;
    else if (!strcmp(s, "group_limited_greedy")) c->topk_method = TOPK_GROUP_LIMITED_GREEDY;
    else if (!strcmp(s, "noaux_tc")) c->topk_method = TOPK_NOAUX_TC;
    else if (s[0]) return err_set(err, "%s: unknown topk_method '%s'", what, s);
    s[0] = 0;
    if (json_get_str(j, "scoring_func", s, sizeof s, what, err) != 0) return -1;
    if (!strcmp(s, "softmax")) c->scoring_func = SCORE_SOFTMAX;
    else if (!strcmp(s, "sigmoid")) c->scoring_func = SCORE_SIGMOID;
    else if (s[0]) return err_set(err, "%s: unknown scoring_func '%s'", what, s);
    s[0] = 0;
    if (json_get_str(j, "hidden_act", s, sizeof s, what, err) != 0) return -1;
    if (s[0] && strcmp(s, "silu"))
        return err_set(err, "%s: hidden_act '%s' is not supported (silu)", what, s);

    if (parse_rope_scaling(c, json_object_get(j, "rope_scaling"), what, err) != 0) return -1;

    json_t *q = json_object_get(j, "quantization_config");
    if (q && json_is_object(q)) {
        json_t *bs = json_object_get(q, "weight_block_size");
        if (json_is_array(bs) && json_array_size(bs) == 2 &&
            json_is_integer(json_array_get(bs, 0)) && json_is_integer(json_array_get(bs, 1))) {
            c->fp8_block_rows = (int)json_integer_value(json_array_get(bs, 0));
            c->fp8_block_cols = (int)json_integer_value(json_array_get(bs, 1));
        } else if (bs) {
            return err_set(err, "%s: quantization_config.weight_block_size must be [rows, cols]",
                           what);
        }
    }

    if (c->num_key_value_heads <= 0) c->num_key_value_heads = c->num_attention_heads;
    if (!config_is_mla(c) && c->head_dim <= 0 && c->num_attention_heads > 0)
        c->head_dim = c->hidden_size / c->num_attention_heads;
    return config_validate(c, what, err);
}

int config_load(ModelConfig *c, const char *dir_or_file, Err *err) {
    char path[4096];
    if (file_is_dir(dir_or_file)) {
        if (path_join(path, sizeof path, dir_or_file, "config.json") != 0)
            return err_set(err, "%s: path too long", dir_or_file);
    } else {
        snprintf(path, sizeof path, "%s", dir_or_file);
    }
    json_t *j = json_load_path(path, 1 << 20, err);
    if (!j) return -1;
    int rc = config_from_json(c, j, path, err);
    json_decref(j);
    return rc;
}

/* Upper bound for any one dimension: keeps products of a few of them far
 * from overflowing int64 and rejects absurd configs before allocation. */
#define DIM_MAX (1 << 24)

int config_validate(const ModelConfig *c, const char *what, Err *err) {
    struct { const char *name; int v; int min; } dims[] = {
        {"vocab_size", c->vocab_size, 1},
        {"hidden_size", c->hidden_size, 1},
        {"num_hidden_layers", c->num_hidden_layers, 1},
        {"num_attention_heads", c->num_attention_heads, 1},
        {"num_key_value_heads", c->num_key_value_heads, 1},
        {"intermediate_size", c->intermediate_size, 0},
        {"num_nextn_predict_layers", c->num_nextn_predict_layers, 0},
        {"max_position_embeddings", c->max_position_embeddings, 0},
    };
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < dims[i].min || dims[i].v > DIM_MAX)
            return err_set(err, "%s: field '%s' = %d is out of range", what, dims[i].name, dims[i].v);
    if (c->num_hidden_layers > 4096) return err_set(err, "%s: too many layers", what);
    if (!(c->rms_norm_eps > 0) || !(c->rope_theta > 0))
        return err_set(err, "%s: rms_norm_eps and rope_theta must be positive", what);
    if (c->rope.type != ROPE_DEFAULT &&
        (!(c->rope.factor > 0) || c->rope.original_max_position_embeddings <= 0))
        return err_set(err, "%s: rope_scaling needs a positive factor and "
                       "original_max_position_embeddings", what);
    if (config_is_mla(c)) {
        struct { const char *name; int v; int min; } m[] = {
            {"q_lora_rank", c->q_lora_rank, 0},
            {"kv_lora_rank", c->kv_lora_rank, 1},
            {"qk_nope_head_dim", c->qk_nope_head_dim, 0},
            {"qk_rope_head_dim", c->qk_rope_head_dim, 2},
            {"v_head_dim", c->v_head_dim, 1},
        };
        for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
            if (m[i].v < m[i].min || m[i].v > DIM_MAX)
                return err_set(err, "%s: field '%s' = %d is out of range", what, m[i].name, m[i].v);
        if (c->qk_rope_head_dim % 2)
            return err_set(err, "%s: qk_rope_head_dim must be even", what);
        if (c->n_routed_experts < 0 || c->n_routed_experts > 65536)
            return err_set(err, "%s: n_routed_experts out of range", what);
        if (c->n_routed_experts > 0) {
            if (c->num_experts_per_tok < 1 || c->num_experts_per_tok > c->n_routed_experts)
                return err_set(err, "%s: num_experts_per_tok must be in 1..n_routed_experts", what);
            if (c->moe_intermediate_size < 1 || c->moe_intermediate_size > DIM_MAX)
                return err_set(err, "%s: moe_intermediate_size out of range", what);
            if (c->n_shared_experts < 0 || c->n_shared_experts > 64)
                return err_set(err, "%s: n_shared_experts out of range", what);
            if (c->moe_layer_freq < 1 || c->first_k_dense_replace < 0)
                return err_set(err, "%s: moe_layer_freq must be >= 1", what);
            int grouped = c->topk_method != TOPK_GREEDY && c->n_group > 1;
            if (grouped) {
                if (c->n_routed_experts % c->n_group)
                    return err_set(err, "%s: n_routed_experts must be a multiple of n_group", what);
                if (c->topk_group < 1 || c->topk_group > c->n_group)
                    return err_set(err, "%s: topk_group must be in 1..n_group", what);
                int per_group = c->n_routed_experts / c->n_group;
                if (c->num_experts_per_tok > c->topk_group * per_group)
                    return err_set(err, "%s: num_experts_per_tok exceeds the experts in topk_group "
                                   "groups", what);
                if (c->topk_method == TOPK_NOAUX_TC && per_group < 2)
                    return err_set(err, "%s: noaux_tc needs at least 2 experts per group", what);
                if (c->n_group > 256) return err_set(err, "%s: n_group must be at most 256", what);
            } else if (c->n_group < 1) {
                return err_set(err, "%s: n_group must be >= 1", what);
            }
        }
        if (c->intermediate_size < 1 &&
            (c->n_routed_experts == 0 || c->first_k_dense_replace > 0 || c->moe_layer_freq > 1))
            return err_set(err, "%s: intermediate_size must be positive", what);
    } else {
        if (c->head_dim < 2 || c->head_dim > DIM_MAX || c->head_dim % 2)
            return err_set(err, "%s: head_dim must be a positive even number", what);
        if (c->num_attention_heads % c->num_key_value_heads)
            return err_set(err, "%s: num_attention_heads must be a multiple of "
                           "num_key_value_heads", what);
        if (c->intermediate_size < 1)
            return err_set(err, "%s: intermediate_size must be positive", what);
    }
    if (c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size)
        return err_set(err, "%s: bos/eos token id outside vocab_size", what);
    return 0;
}

int config_layer_is_moe(const ModelConfig *c, int layer) {
    return config_is_mla(c) && c->n_routed_experts > 0 && layer >= c->first_k_dense_replace &&
           layer % c->moe_layer_freq == 0;
}

static int64_t layer_params(const ModelConfig *c, int layer, int active) {
    int64_t D = c->hidden_size, H = c->num_attention_heads, p = 2 * D; /* two norms */
    if (config_is_mla(c)) {
        int64_t qk = c->qk_nope_head_dim + c->qk_rope_head_dim, R = c->kv_lora_rank;
        if (c->q_lora_rank > 0) p += D * c->q_lora_rank + c->q_lora_rank + c->q_lora_rank * H * qk;
        else p += D * H * qk;
        p += D * (R + c->qk_rope_head_dim) + R + R * H * (c->qk_nope_head_dim + c->v_head_dim);
        p += H * c->v_head_dim * D;
    } else {
        int64_t Dh = c->head_dim, KV = c->num_key_value_heads;
        p += D * H * Dh + 2 * D * KV * Dh + H * Dh * D;
        if (c->attention_bias) p += H * Dh + 2 * KV * Dh;
        if (c->attention_bias && c->arch == ARCH_LLAMA) p += D; /* o_proj.bias */
    }
    if (config_layer_is_moe(c, layer)) {
        int64_t E = c->n_routed_experts, Im = c->moe_intermediate_size;
        p += E * D + (c->topk_method == TOPK_NOAUX_TC ? E : 0);
        p += (active ? c->num_experts_per_tok : E) * 3 * D * Im;
        p += (int64_t)c->n_shared_experts * 3 * D * Im;
    } else {
        p += 3 * D * c->intermediate_size;
    }
    return p;
}

ParamCount config_count_params(const ModelConfig *c) {
    ParamCount pc = {0};
    int64_t D = c->hidden_size, V = c->vocab_size;
    pc.embedding = V * D;
    int64_t head = c->tie_word_embeddings ? 0 : V * D;
    pc.total = pc.active = pc.embedding + head + D;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        pc.total += layer_params(c, l, 0);
        pc.active += layer_params(c, l, 1);
    }
    for (int k = 0; k < c->num_nextn_predict_layers; k++) {
        int l = c->num_hidden_layers + k;
        /* enorm, hnorm, eh_proj, shared_head.norm and shared_head.head (the
         * release stores a head per module); the embedding is the main one */
        pc.mtp += 3 * D + 2 * D * D + V * D + layer_params(c, l, 0);
    }
    return pc;
}

int64_t config_kv_numbers_per_token_layer(const ModelConfig *c) {
    if (config_is_mla(c)) return (int64_t)c->kv_lora_rank + c->qk_rope_head_dim;
    return 2 * (int64_t)c->num_key_value_heads * c->head_dim;
}

/* A float as the shortest decimal that reads back to it (1e-06, not
 * 9.99999997e-07), so saved configs look like the ones people write. */
static json_t *json_realf(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

int config_save(const ModelConfig *c, const char *path, Err *err) {
    static const char *hf_arch[] = {"DeepseekV3ForCausalLM", "DeepseekV2ForCausalLM",
                                    "Qwen2ForCausalLM", "LlamaForCausalLM"};
    json_t *j = json_object();
    json_object_set_new(j, "architectures", json_pack("[s]", hf_arch[c->arch]));
    json_object_set_new(j, "model_type", json_string(arch_names[c->arch]));
#define SETI(k) json_object_set_new(j, #k, json_integer(c->k))
#define SETF(k) json_object_set_new(j, #k, json_realf(c->k))
    SETI(vocab_size); SETI(hidden_size); SETI(intermediate_size); SETI(num_hidden_layers);
    SETI(num_attention_heads); SETI(num_key_value_heads); SETI(max_position_embeddings);
    SETF(rms_norm_eps); SETF(rope_theta);
    json_object_set_new(j, "hidden_act", json_string("silu"));
    json_object_set_new(j, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(j, "torch_dtype", json_string(c->torch_dtype));
    if (c->bos_token_id >= 0) SETI(bos_token_id);
    if (c->eos_token_id >= 0) SETI(eos_token_id);
    if (config_is_mla(c)) {
        if (c->q_lora_rank > 0) SETI(q_lora_rank);
        else json_object_set_new(j, "q_lora_rank", json_null());
        SETI(kv_lora_rank); SETI(qk_nope_head_dim); SETI(qk_rope_head_dim); SETI(v_head_dim);
        if (c->n_routed_experts > 0) {
            SETI(n_routed_experts); SETI(n_shared_experts); SETI(num_experts_per_tok);
            SETI(moe_intermediate_size); SETI(first_k_dense_replace); SETI(moe_layer_freq);
            SETI(n_group); SETI(topk_group); SETF(routed_scaling_factor);
            static const char *tm[] = {"greedy", "group_limited_greedy", "noaux_tc"};
            json_object_set_new(j, "topk_method", json_string(tm[c->topk_method]));
            json_object_set_new(j, "scoring_func",
                                json_string(c->scoring_func == SCORE_SIGMOID ? "sigmoid" : "softmax"));
            json_object_set_new(j, "norm_topk_prob", json_boolean(c->norm_topk_prob));
        } else {
            json_object_set_new(j, "n_routed_experts", json_null());
        }
        if (c->arch == ARCH_DEEPSEEK_V3) SETI(num_nextn_predict_layers);
        json_object_set_new(j, "attention_bias", json_false());
    } else {
        SETI(head_dim);
        json_object_set_new(j, "attention_bias", json_boolean(c->attention_bias));
    }
#undef SETI
#undef SETF
    if (c->rope.type != ROPE_DEFAULT) {
        const RopeScaling *r = &c->rope;
        json_t *rs = json_object();
        static const char *rt[] = {"default", "yarn", "llama3", "linear"};
        json_object_set_new(rs, "type", json_string(rt[r->type]));
        json_object_set_new(rs, "rope_type", json_string(rt[r->type]));
        json_object_set_new(rs, "factor", json_realf(r->factor));
        json_object_set_new(rs, "original_max_position_embeddings",
                            json_integer(r->original_max_position_embeddings));
        if (r->type == ROPE_YARN) {
            json_object_set_new(rs, "beta_fast", json_realf(r->beta_fast));
            json_object_set_new(rs, "beta_slow", json_realf(r->beta_slow));
            json_object_set_new(rs, "mscale", json_realf(r->mscale));
            json_object_set_new(rs, "mscale_all_dim", json_realf(r->mscale_all_dim));
        } else if (r->type == ROPE_LLAMA3) {
            json_object_set_new(rs, "low_freq_factor", json_realf(r->low_freq_factor));
            json_object_set_new(rs, "high_freq_factor", json_realf(r->high_freq_factor));
        }
        json_object_set_new(j, "rope_scaling", rs);
    }
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    json_decref(j);
    if (!text) return err_set(err, "%s: out of memory", path);
    size_t n = strlen(text);
    char *buf = malloc(n + 1);
    int rc;
    if (!buf) {
        rc = err_set(err, "%s: out of memory", path);
    } else {
        memcpy(buf, text, n);
        buf[n] = '\n';
        rc = file_write_atomic(path, buf, n + 1, err);
        free(buf);
    }
    free(text);
    return rc;
}
