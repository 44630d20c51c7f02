/* SPDX-License-Identifier: MIT */
/* GGUF metadata <-> ModelConfig, tensor names <-> HF names, and the
 * converter's tensor transforms (see gguf_names.h). Key names and types are
 * those of llama.cpp v0.5.0 (src/llama-arch.cpp, gguf-py's gguf_writer.py);
 * how llama.cpp reads them is src/llama-model.cpp (generic hparams) and
 * src/models/deepseek2.cpp; what the converter writes is
 * conversion/{base,llama,deepseek}.py. */
#include "io/gguf_names.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GN_NAME "%.200s"

const char *gguf_arch_name(ModelArch arch) {
    switch (arch) {
    case ARCH_DEEPSEEK_V3:
    case ARCH_DEEPSEEK_V2: return "deepseek2";
    case ARCH_QWEN2: return "qwen2";
    case ARCH_LLAMA: return "llama";
    }
    return "?";
}

/* llama.cpp's LLAMA_EXPERT_GATING_FUNC_TYPE_* */
enum { GN_GATING_NONE = 0, GN_GATING_SOFTMAX = 1, GN_GATING_SIGMOID = 2 };

/* ---- reading metadata ---------------------------------------------------------- */

typedef struct Rdr {
    const GgufFile *g;
    const char *arch; /* "deepseek2", ... */
    Err *err;
    char key[128];    /* the last key built by rk() */
} Rdr;

/* "{arch}.suffix" into r->key. */
static const char *rk(Rdr *r, const char *suffix) {
    snprintf(r->key, sizeof r->key, "%s.%s", r->arch, suffix);
    return r->key;
}

/* An int-sized non-negative integer, or a per-layer array of them that all
 * agree (llama.cpp's get_key_or_arr). 1 found, 0 absent, -1 error. */
static int opt_int(Rdr *r, const char *key, int *out) {
    const GgufKV *kv = gguf_find_kv(r->g, key);
    if (!kv) return 0;
    uint32_t u;
    if (kv->v.type == GGUF_TYPE_ARRAY) {
        if (kv->v.arr_n == 0 || kv->v.arr_type == GGUF_TYPE_STRING)
            return err_set(r->err, "%s: metadata key '" GN_NAME "' is an empty or string array",
                           r->g->path, key);
        for (uint64_t i = 0; i < kv->v.arr_n; i++) {
            GgufValue e;
            uint32_t ui;
            gguf_value_at(&kv->v, i, &e);
            if (gguf_value_u32(&e, key, &ui, r->err) != 0)
                return err_prefix(r->err, "%s", r->g->path);
            if (i == 0) u = ui;
            else if (ui != u)
                return err_set(r->err, "%s: metadata key '" GN_NAME "' differs between layers "
                               "(%u, then %u at layer %llu); whale needs one value", r->g->path,
                               key, u, ui, (unsigned long long)i);
        }
    } else if (gguf_value_u32(&kv->v, key, &u, r->err) != 0) {
        return err_prefix(r->err, "%s", r->g->path);
    }
    if (u > INT_MAX)
        return err_set(r->err, "%s: metadata key '" GN_NAME "' = %u is too large", r->g->path,
                       key, u);
    *out = (int)u;
    return 1;
}

static int req_int(Rdr *r, const char *key, int *out) {
    int rc = opt_int(r, key, out);
    if (rc == 0)
        return err_set(r->err, "%s: metadata key '" GN_NAME "' is missing (required for %s)",
                       r->g->path, key, r->arch);
    return rc < 0 ? -1 : 0;
}

static int opt_f32(Rdr *r, const char *key, float *out) {
    const GgufKV *kv = gguf_find_kv(r->g, key);
    if (!kv) return 0;
    if (gguf_value_f32(&kv->v, key, out, r->err) != 0) return err_prefix(r->err, "%s", r->g->path);
    return 1;
}

static int req_f32(Rdr *r, const char *key, float *out) {
    int rc = opt_f32(r, key, out);
    if (rc == 0)
        return err_set(r->err, "%s: metadata key '" GN_NAME "' is missing (required for %s)",
                       r->g->path, key, r->arch);
    return rc < 0 ? -1 : 0;
}

static int opt_bool(Rdr *r, const char *key, int *out) {
    const GgufKV *kv = gguf_find_kv(r->g, key);
    if (!kv) return 0;
    if (gguf_value_bool(&kv->v, key, out, r->err) != 0) return err_prefix(r->err, "%s", r->g->path);
    return 1;
}

/* 1 if any tensor's name ends with suffix. */
static int has_tensor_suffix(const GgufFile *g, const char *suffix) {
    size_t ns = strlen(suffix);
    for (int i = 0; i < g->n_tensors; i++) {
        size_t n = strlen(g->tensors[i].name);
        if (n >= ns && strcmp(g->tensors[i].name + n - ns, suffix) == 0) return 1;
    }
    return 0;
}

/* rope.scaling.* (none, linear, yarn); deepseek2's yarn_log_multiplier. */
static int read_rope_scaling(Rdr *r, ModelConfig *c) {
    RopeScaling *rs = &c->rope;
    char type[32] = "";
    if (gguf_find_kv(r->g, rk(r, "rope.scaling.type")) &&
        gguf_get_str(r->g, r->key, type, sizeof type, r->err) != 0)
        return -1;
    float factor = 0;
    int have_factor = opt_f32(r, rk(r, "rope.scaling.factor"), &factor);
    if (have_factor == 0) have_factor = opt_f32(r, rk(r, "rope.scale_linear"), &factor);
    if (have_factor < 0) return -1;
    /* llama.cpp's default type is "linear", and a factor of 0 means 1 */
    if (!type[0]) snprintf(type, sizeof type, "%s", have_factor && factor != 0 ? "linear" : "none");
    if (factor == 0) factor = 1;
    if (!strcmp(type, "none")) return 0;
    if (!strcmp(type, "linear")) {
        if (factor == 1) return 0;
        rs->type = ROPE_LINEAR;
    } else if (!strcmp(type, "yarn")) {
        rs->type = ROPE_YARN;
    } else {
        return err_set(r->err, "%s: %s = '%s' is not supported (none, linear, yarn)", r->g->path,
                       r->key, type);
    }
    /* the defaults of config.c's rope_scaling reader */
    rs->factor = factor;
    rs->beta_fast = 32.0f, rs->beta_slow = 1.0f, rs->mscale = 1.0f, rs->mscale_all_dim = 0.0f;
    rs->low_freq_factor = 1.0f, rs->high_freq_factor = 4.0f;
    rs->original_max_position_embeddings = c->max_position_embeddings;
    if (opt_int(r, rk(r, "rope.scaling.original_context_length"),
                &rs->original_max_position_embeddings) < 0 ||
        opt_f32(r, rk(r, "rope.scaling.yarn_beta_fast"), &rs->beta_fast) < 0 ||
        opt_f32(r, rk(r, "rope.scaling.yarn_beta_slow"), &rs->beta_slow) < 0)
        return -1;
    float log_mul;
    int rc = c->arch == ARCH_DEEPSEEK_V2 ? opt_f32(r, rk(r, "rope.scaling.yarn_log_multiplier"),
                                                   &log_mul)
                                         : 0;
    if (rc < 0) return -1;
    if (rc > 0 && rs->type == ROPE_YARN) {
        /* llama.cpp takes mscale == mscale_all_dim (llama-context.cpp) */
        rs->mscale_all_dim = gguf_yarn_log_mul_decode(log_mul);
        rs->mscale = rs->mscale_all_dim;
    }
    return 0;
}

static int read_gqa(Rdr *r, ModelConfig *c) {
    const GgufFile *g = r->g;
    c->head_dim = c->hidden_size / c->num_attention_heads;
    int vl = -1, rot = -1;
    if (opt_int(r, rk(r, "attention.key_length"), &c->head_dim) < 0 ||
        opt_int(r, rk(r, "attention.value_length"), &vl) < 0 ||
        opt_int(r, rk(r, "rope.dimension_count"), &rot) < 0)
        return -1;
    if (vl >= 0 && vl != c->head_dim)
        return err_set(r->err, "%s: value_length %d differs from key_length %d; whale needs one "
                       "head_dim", g->path, vl, c->head_dim);
    if (rot >= 0 && rot != c->head_dim)
        return err_set(r->err, "%s: rope.dimension_count %d differs from the head size %d; whale "
                       "ropes whole heads", g->path, rot, c->head_dim);
    c->attention_bias = c->arch == ARCH_QWEN2 || gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;

    const GgufTensor *rf = gguf_find_tensor(g, "rope_freqs.weight");
    if (!rf) return 0;
    if (c->arch != ARCH_LLAMA || c->rope.type != ROPE_DEFAULT)
        return err_set(r->err, "%s: rope_freqs.weight is only supported for llama without other "
                       "rope scaling", g->path);
    if (rf->type != GGML_TYPE_F32 || rf->n_dims != 1 || rf->ne[0] != c->head_dim / 2)
        return err_set(r->err, "%s: rope_freqs.weight must be F32 of shape [%d], is %s of %lld "
                       "elements", g->path, c->head_dim / 2, gguf_type_name(rf->type),
                       (long long)gguf_tensor_numel(rf));
    float *f = malloc((size_t)rf->ne[0] * sizeof *f);
    if (!f) return err_set(r->err, "%s: out of memory", g->path);
    memcpy(f, rf->data, (size_t)rf->ne[0] * sizeof *f); /* the mapping may be unaligned */
    int rc = gguf_llama3_fit(f, (int)rf->ne[0], c->rope_theta, c->head_dim, &c->rope, r->err);
    free(f);
    return rc != 0 ? err_prefix(r->err, "%s: rope_freqs.weight", g->path) : 0;
}

static int read_mla(Rdr *r, ModelConfig *c) {
    const GgufFile *g = r->g;
    c->num_key_value_heads = c->num_attention_heads; /* the file says 1: MLA written as MQA */
    /* absent keys mean what they mean to llama.cpp, not the HF defaults */
    c->q_lora_rank = 0, c->moe_intermediate_size = 0, c->n_shared_experts = 0;
    c->num_experts_per_tok = 0, c->routed_scaling_factor = 1.0f, c->norm_topk_prob = 0;
    if (req_int(r, rk(r, "attention.kv_lora_rank"), &c->kv_lora_rank) != 0 ||
        opt_int(r, rk(r, "attention.q_lora_rank"), &c->q_lora_rank) < 0 ||
        req_int(r, rk(r, "rope.dimension_count"), &c->qk_rope_head_dim) != 0)
        return -1;
    /* llama.cpp: with key_length_mla/value_length_mla the file is in the
     * split (absorbed) layout and key_length = R + rope; without them
     * key_length = nope + rope and value_length = v (legacy attn_kv_b). */
    int kl = -1, vl = -1;
    int hk = opt_int(r, rk(r, "attention.key_length_mla"), &kl);
    int hv = opt_int(r, rk(r, "attention.value_length_mla"), &vl);
    if (hk < 0 || hv < 0) return -1;
    if (hk != hv)
        return err_set(r->err, "%s: %s.attention.key_length_mla and value_length_mla must come "
                       "together", g->path, r->arch);
    if (!hk) {
        kl = vl = c->hidden_size / c->num_attention_heads;
        if (opt_int(r, rk(r, "attention.key_length"), &kl) < 0 ||
            opt_int(r, rk(r, "attention.value_length"), &vl) < 0)
            return -1;
    }
    c->qk_nope_head_dim = kl - c->qk_rope_head_dim;
    c->v_head_dim = vl;
    if (c->qk_nope_head_dim < 0)
        return err_set(r->err, "%s: key length %d is shorter than rope.dimension_count %d",
                       g->path, kl, c->qk_rope_head_dim);

    int E = 0, gating = GN_GATING_NONE, n_group = 0, topk_group = 0;
    c->moe_layer_freq = 1; /* llama.cpp: every layer after the leading dense ones is MoE */
    if (opt_int(r, rk(r, "leading_dense_block_count"), &c->first_k_dense_replace) < 0 ||
        opt_int(r, rk(r, "expert_count"), &E) < 0 ||
        opt_int(r, rk(r, "expert_feed_forward_length"), &c->moe_intermediate_size) < 0)
        return -1;
    c->n_routed_experts = E;
    if (E == 0) {
        c->first_k_dense_replace = 0;
    } else if (req_int(r, rk(r, "expert_used_count"), &c->num_experts_per_tok) != 0 ||
               req_int(r, rk(r, "expert_feed_forward_length"), &c->moe_intermediate_size) != 0 ||
               opt_int(r, rk(r, "expert_shared_count"), &c->n_shared_experts) < 0 ||
               opt_f32(r, rk(r, "expert_weights_scale"), &c->routed_scaling_factor) < 0 ||
               opt_bool(r, rk(r, "expert_weights_norm"), &c->norm_topk_prob) < 0 ||
               opt_int(r, rk(r, "expert_gating_func"), &gating) < 0 ||
               opt_int(r, rk(r, "expert_group_count"), &n_group) < 0 ||
               opt_int(r, rk(r, "expert_group_used_count"), &topk_group) < 0) {
        return -1;
    }
    /* absent gating: softmax, as llama.cpp does for old V2 files */
    if (gating == GN_GATING_NONE || gating == GN_GATING_SOFTMAX) c->scoring_func = SCORE_SOFTMAX;
    else if (gating == GN_GATING_SIGMOID) c->scoring_func = SCORE_SIGMOID;
    else return err_set(r->err, "%s: %s.expert_gating_func = %d is not supported (1 softmax, "
                        "2 sigmoid)", g->path, r->arch, gating);
    c->n_group = n_group > 0 ? n_group : 1;
    c->topk_group = topk_group > 0 ? topk_group : 1;
    int noaux = g->n_tensors > 0 ? has_tensor_suffix(g, ".exp_probs_b.bias")
                                 : c->scoring_func == SCORE_SIGMOID;
    if (E > 0 && noaux) c->topk_method = TOPK_NOAUX_TC;
    else if (E > 0 && c->n_group > 1) c->topk_method = TOPK_GROUP_LIMITED_GREEDY;
    else c->topk_method = TOPK_GREEDY;
    c->arch = (c->topk_method == TOPK_NOAUX_TC || c->num_nextn_predict_layers > 0)
                  ? ARCH_DEEPSEEK_V3
                  : ARCH_DEEPSEEK_V2;
    snprintf(c->model_type, sizeof c->model_type, "%s", config_arch_name(c->arch));
    return 0;
}

int gguf_config_from_gguf(const GgufFile *g, ModelConfig *c, Err *err) {
    char arch[32];
    if (gguf_get_str(g, "general.architecture", arch, sizeof arch, err) != 0) return -1;
    ModelArch a;
    if (!strcmp(arch, "deepseek2")) a = ARCH_DEEPSEEK_V2;
    else if (!strcmp(arch, "qwen2")) a = ARCH_QWEN2;
    else if (!strcmp(arch, "llama")) a = ARCH_LLAMA;
    else
        return err_set(err, "%s: architecture '%s' is not supported (whale reads deepseek2, "
                       "qwen2, llama)", g->path, arch);
    config_defaults(c, a);
    c->bos_token_id = c->eos_token_id = -1;
    c->num_nextn_predict_layers = 0;
    Rdr rd = {g, arch, err, ""}, *r = &rd;

    int n_all = 0, nextn = 0;
    if (req_int(r, rk(r, "block_count"), &n_all) != 0 ||
        opt_int(r, rk(r, "nextn_predict_layers"), &nextn) < 0)
        return -1;
    if (nextn >= n_all)
        return err_set(err, "%s: %s.nextn_predict_layers = %d leaves no main layers of %d",
                       g->path, arch, nextn, n_all);
    c->num_hidden_layers = n_all - nextn;
    c->num_nextn_predict_layers = nextn;
    c->intermediate_size = 0;
    if (req_int(r, rk(r, "context_length"), &c->max_position_embeddings) != 0 ||
        req_int(r, rk(r, "embedding_length"), &c->hidden_size) != 0 ||
        req_int(r, rk(r, "attention.head_count"), &c->num_attention_heads) != 0 ||
        req_f32(r, rk(r, "attention.layer_norm_rms_epsilon"), &c->rms_norm_eps) != 0 ||
        opt_f32(r, rk(r, "rope.freq_base"), &c->rope_theta) < 0)
        return -1;
    if ((a == ARCH_DEEPSEEK_V2 ? opt_int(r, rk(r, "feed_forward_length"), &c->intermediate_size)
                               : req_int(r, rk(r, "feed_forward_length"), &c->intermediate_size)) < 0)
        return -1;
    if (c->num_attention_heads < 1)
        return err_set(err, "%s: %s.attention.head_count must be positive", g->path, arch);
    c->num_key_value_heads = c->num_attention_heads;
    if (opt_int(r, rk(r, "attention.head_count_kv"), &c->num_key_value_heads) < 0) return -1;

    /* vocabulary: the key, else the token list, else the embedding's rows */
    const GgufKV *tokens = gguf_find_kv(g, "tokenizer.ggml.tokens");
    const GgufTensor *emb = gguf_find_tensor(g, "token_embd.weight");
    int rc = opt_int(r, rk(r, "vocab_size"), &c->vocab_size);
    if (rc < 0) return -1;
    if (rc == 0 && tokens && tokens->v.type == GGUF_TYPE_ARRAY && tokens->v.arr_n <= INT_MAX)
        c->vocab_size = (int)tokens->v.arr_n;
    else if (rc == 0 && emb && emb->n_dims == 2 && emb->ne[1] <= INT_MAX)
        c->vocab_size = (int)emb->ne[1];
    else if (rc == 0)
        return err_set(err, "%s: no vocabulary size (%s.vocab_size, tokenizer.ggml.tokens or "
                       "token_embd.weight)", g->path, arch);
    if (opt_int(r, "tokenizer.ggml.bos_token_id", &c->bos_token_id) < 0 ||
        opt_int(r, "tokenizer.ggml.eos_token_id", &c->eos_token_id) < 0)
        return -1;
    c->tie_word_embeddings = emb && !gguf_find_tensor(g, "output.weight");

    if (read_rope_scaling(r, c) != 0) return -1;
    if ((a == ARCH_DEEPSEEK_V2 ? read_mla(r, c) : read_gqa(r, c)) != 0) return -1;
    return config_validate(c, g->path, err);
}

/* ---- writing metadata ------------------------------------------------------------ */

int gguf_meta_add(GgufMeta *m, GgufKV kv, Err *err) {
    if (m->n_kv == m->cap) {
        int cap = m->cap ? 2 * m->cap : 32;
        GgufKV *nk = realloc(m->kvs, (size_t)cap * sizeof *nk);
        if (!nk) return err_set(err, "out of memory building GGUF metadata");
        m->kvs = nk;
        m->cap = cap;
    }
    char *key = strdup(kv.key ? kv.key : "");
    if (!key) return err_set(err, "out of memory building GGUF metadata");
    kv.key = key;
    m->kvs[m->n_kv++] = kv;
    return 0;
}

void gguf_meta_free(GgufMeta *m) {
    for (int i = 0; i < m->n_kv; i++) free((void *)m->kvs[i].key);
    free(m->kvs);
    memset(m, 0, sizeof *m);
}

typedef struct Wrt {
    GgufMeta *m;
    const char *arch;
    Err *err;
    int bad;
} Wrt;

static void w_add(Wrt *w, const char *suffix, GgufKV kv) {
    char key[128];
    if (w->bad) return;
    snprintf(key, sizeof key, "%s.%s", w->arch, suffix);
    kv.key = key;
    if (gguf_meta_add(w->m, kv, w->err) != 0) w->bad = 1;
}
static void w_u32(Wrt *w, const char *suffix, int v) {
    w_add(w, suffix, gguf_kv_u32(NULL, (uint32_t)v));
}
static void w_f32(Wrt *w, const char *suffix, float v) { w_add(w, suffix, gguf_kv_f32(NULL, v)); }

int gguf_meta_from_config(const ModelConfig *c, GgufMeta *m, Err *err) {
    const char *arch = gguf_arch_name(c->arch);
    int mla = config_is_mla(c), E = mla ? c->n_routed_experts : 0;
    const RopeScaling *rs = &c->rope;
    if (E > 0 && c->moe_layer_freq != 1)
        return err_set(err, "GGUF (llama.cpp) cannot express moe_layer_freq = %d; it needs 1",
                       c->moe_layer_freq);
    if (rs->type == ROPE_LLAMA3 && c->arch != ARCH_LLAMA)
        return err_set(err, "GGUF (llama.cpp) carries llama3 rope scaling only for llama, not %s",
                       config_arch_name(c->arch));
    if (rs->type == ROPE_YARN && mla && rs->mscale != rs->mscale_all_dim &&
        !(rs->mscale == 1.0f && rs->mscale_all_dim == 0.0f))
        return err_set(err, "GGUF (llama.cpp) cannot express yarn mscale %g != mscale_all_dim %g",
                       (double)rs->mscale, (double)rs->mscale_all_dim);

    Wrt w = {m, arch, err, 0};
    if (gguf_meta_add(m, gguf_kv_str("general.architecture", arch), err) != 0) return -1;
    w_u32(&w, "block_count", c->num_hidden_layers + c->num_nextn_predict_layers);
    if (c->num_nextn_predict_layers > 0)
        w_u32(&w, "nextn_predict_layers", c->num_nextn_predict_layers);
    w_u32(&w, "context_length", c->max_position_embeddings);
    w_u32(&w, "embedding_length", c->hidden_size);
    w_u32(&w, "feed_forward_length", c->intermediate_size);
    w_u32(&w, "attention.head_count", c->num_attention_heads);
    w_u32(&w, "attention.head_count_kv", mla ? 1 : c->num_key_value_heads);
    if (rs->type == ROPE_LINEAR || rs->type == ROPE_YARN) {
        w_add(&w, "rope.scaling.type", gguf_kv_str(NULL, rs->type == ROPE_YARN ? "yarn" : "linear"));
        w_f32(&w, "rope.scaling.factor", rs->factor);
        if (rs->type == ROPE_YARN) {
            w_u32(&w, "rope.scaling.original_context_length", rs->original_max_position_embeddings);
            w_f32(&w, "rope.scaling.yarn_beta_fast", rs->beta_fast);
            w_f32(&w, "rope.scaling.yarn_beta_slow", rs->beta_slow);
        }
    }
    w_f32(&w, "rope.freq_base", c->rope_theta);
    w_f32(&w, "attention.layer_norm_rms_epsilon", c->rms_norm_eps);
    w_u32(&w, "vocab_size", c->vocab_size);
    if (!mla) {
        w_u32(&w, "rope.dimension_count", c->head_dim);
        w_u32(&w, "attention.key_length", c->head_dim);
        w_u32(&w, "attention.value_length", c->head_dim);
    } else {
        const int R = c->kv_lora_rank, rope = c->qk_rope_head_dim;
        w_u32(&w, "leading_dense_block_count", E > 0 ? c->first_k_dense_replace
                                                     : c->num_hidden_layers);
        w_u32(&w, "attention.q_lora_rank", c->q_lora_rank);
        w_u32(&w, "attention.kv_lora_rank", R);
        w_u32(&w, "attention.key_length", R + rope);
        w_u32(&w, "attention.value_length", R);
        w_u32(&w, "attention.key_length_mla", c->qk_nope_head_dim + rope);
        w_u32(&w, "attention.value_length_mla", c->v_head_dim);
        w_u32(&w, "expert_feed_forward_length", E > 0 ? c->moe_intermediate_size
                                                      : c->intermediate_size);
        w_u32(&w, "expert_shared_count", E > 0 ? c->n_shared_experts : 0);
        if (E > 0) {
            w_u32(&w, "expert_count", E);
            w_u32(&w, "expert_used_count", c->num_experts_per_tok);
            w_f32(&w, "expert_weights_scale", c->routed_scaling_factor);
            w_add(&w, "expert_weights_norm", gguf_kv_bool(NULL, c->norm_topk_prob));
            w_u32(&w, "expert_gating_func",
                  c->scoring_func == SCORE_SIGMOID ? GN_GATING_SIGMOID : GN_GATING_SOFTMAX);
            if (c->topk_method != TOPK_GREEDY && c->n_group > 1 && c->topk_group < c->n_group) {
                w_u32(&w, "expert_group_count", c->n_group);
                w_u32(&w, "expert_group_used_count", c->topk_group);
            }
        }
        w_u32(&w, "rope.dimension_count", rope);
        if (rs->type == ROPE_YARN && rs->mscale_all_dim != 0.0f)
            w_f32(&w, "rope.scaling.yarn_log_multiplier",
                  gguf_yarn_log_mul_encode(rs->mscale_all_dim));
    }
    if (w.bad) return -1;
    if (c->bos_token_id >= 0 &&
        gguf_meta_add(m, gguf_kv_u32("tokenizer.ggml.bos_token_id", (uint32_t)c->bos_token_id),
                      err) != 0)
        return -1;
    if (c->eos_token_id >= 0 &&
        gguf_meta_add(m, gguf_kv_u32("tokenizer.ggml.eos_token_id", (uint32_t)c->eos_token_id),
                      err) != 0)
        return -1;
    return 0;
}

/* Significant decimal digits needed to print f so that it reads back, and
 * that shortest decimal as a double (what a config.json holds). */
static int gn_digits(float f, double *dec) {
    char buf[32];
    int p = 1;
    for (; p < 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    snprintf(buf, sizeof buf, "%.*g", p, (double)f);
    if (dec) *dec = strtod(buf, NULL);
    return p;
}

float gguf_yarn_log_mul_encode(float mscale_all_dim) {
    /* Python: 0.1 * x with x the double read from config.json, stored as
     * f32; the float's shortest decimal stands in for that double, so the
     * bits match the converter's (0.707 -> 0.0706999972, not 0.0707000047). */
    double dec;
    gn_digits(mscale_all_dim, &dec);
    return (float)(0.1 * dec);
}

float gguf_yarn_log_mul_decode(float log_mul) {
    /* log_mul / 0.1 rounded can land one float away from the original, and
     * in the upper part of each binade (x in [1.25, 2) * 2^k) f32 0.1 * x
     * is coarser than x, so two neighbours can share an encoding. Of the
     * candidates that encode back to log_mul, take the one with the
     * shortest decimal form (what a config.json says: 0.707, 1.0), then the
     * one nearest the exact quotient. */
    double q = (double)log_mul / 0.1;
    float c = (float)q, best = c;
    float cand[3] = {nextafterf(c, -INFINITY), c, nextafterf(c, INFINITY)};
    double best_d = INFINITY;
    int best_p = 99;
    for (int i = 0; i < 3; i++) {
        if (gguf_yarn_log_mul_encode(cand[i]) != log_mul) continue;
        int p = gn_digits(cand[i], NULL);
        double d = fabs((double)cand[i] - q);
        if (p < best_p || (p == best_p && d < best_d)) best = cand[i], best_p = p, best_d = d;
    }
    return best;
}

/* ---- llama3 rope frequencies ------------------------------------------------------- */

static double llama3_divisor(int i, double theta, int head_dim, double factor, double low,
                             double high, double orig) {
    const double two_pi = 6.283185307179586;
    double freq = pow(theta, -2.0 * i / head_dim), wavelen = two_pi / freq;
    if (wavelen < orig / high) return 1.0;
    if (wavelen > orig / low) return factor;
    double s = (orig / wavelen - low) / (high - low);
    return 1.0 / ((1.0 - s) / factor + s);
}

void gguf_llama3_rope_freqs(const ModelConfig *c, float *out) {
    const RopeScaling *r = &c->rope;
    for (int i = 0; i < c->head_dim / 2; i++)
        out[i] = (float)llama3_divisor(i, c->rope_theta, c->head_dim, r->factor,
                                       r->low_freq_factor, r->high_freq_factor,
                                       r->original_max_position_embeddings);
}

/* v rounded to 3 decimals when that is within 1e-5 relative: fits come out
 * as 4.0000003 where the config said 4. */
static double snap3(double v) {
    double s = round(v * 1000.0) / 1000.0;
    return fabs(s - v) <= 1e-5 * fabs(v) ? s : v;
}

int gguf_llama3_fit(const float *f, int n, float theta, int head_dim, RopeScaling *out,
                    Err *err) {
    const double two_pi = 6.283185307179586, tol = 1e-5;
    if (head_dim < 2 || n != head_dim / 2)
        return err_set(err, "%d divisors for a head size of %d (want head_dim/2)", n, head_dim);
    double factor = 1;
    for (int i = 0; i < n; i++) {
        if (!(f[i] >= 1.0f) || !isfinite(f[i]))
            return err_set(err, "divisor %d = %g is not a finite number >= 1", i, (double)f[i]);
        if (f[i] > factor) factor = f[i];
    }
    if (factor <= 1 + tol) {
        out->type = ROPE_DEFAULT;
        return 0;
    }
    /* smooth dims: s = (1/f - 1/factor)/(1 - 1/factor) is linear in
     * x = 1/wavelen: s = (x - p)/(q - p), p = low/orig, q = high/orig */
    double sx = 0, ss = 0, sxx = 0, sxs = 0, xlow = 0, xhigh = INFINITY, x1 = 0, s1 = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        double x = pow(theta, -2.0 * i / head_dim) / two_pi, fi = f[i];
        if (fabs(fi - 1) <= tol) {
            if (x < xhigh) xhigh = x;
        } else if (fabs(fi - factor) <= tol * factor) {
            if (x > xlow) xlow = x;
        } else {
            double s = (1 / fi - 1 / factor) / (1 - 1 / factor);
            sx += x, ss += s, sxx += x * x, sxs += x * s, x1 = x, s1 = s, k++;
        }
    }
    double p, q;
    if (k >= 2) {
        double den = k * sxx - sx * sx;
        if (den == 0) return err_set(err, "divisors do not follow llama3 scaling");
        double m = (k * sxs - sx * ss) / den, c0 = (ss - m * sx) / k;
        if (!(m > 0)) return err_set(err, "divisors do not follow llama3 scaling");
        p = -c0 / m;
        q = p + 1 / m;
    } else if (k == 1) { /* assume Llama 3's high/low = 4 */
        p = x1 / (1 + 3 * s1);
        q = 4 * p;
    } else { /* only the inequalities: xlow < p, 4p < xhigh */
        double hi = isfinite(xhigh) ? xhigh / 4 : 2 * xlow;
        if (!(xlow < hi)) return err_set(err, "divisors do not follow llama3 scaling");
        p = xlow > 0 ? (xlow + hi) / 2 : hi / 2;
        q = 4 * p;
    }
    if (!(p > 0) || !(q > p)) return err_set(err, "divisors do not follow llama3 scaling");
    double orig = round(1 / p);
    if (orig < 1 || orig > INT_MAX) return err_set(err, "divisors do not follow llama3 scaling");
    double low = snap3(p * orig), high = snap3(q * orig);
    factor = snap3(factor);
    for (int i = 0; i < n; i++) {
        double want = llama3_divisor(i, theta, head_dim, factor, low, high, orig);
        if (fabs(want - f[i]) > 1e-4 * want)
            return err_set(err, "divisor %d is %g but llama3 scaling (factor %g, low %g, high "
                           "%g, original context %g) gives %g", i, (double)f[i], factor, low,
                           high, orig, want);
    }
    out->type = ROPE_LLAMA3;
    out->factor = (float)factor;
    out->low_freq_factor = (float)low;
    out->high_freq_factor = (float)high;
    out->original_max_position_embeddings = (int)orig;
    return 0;
}

/* ---- tensor names ------------------------------------------------------------------ */

enum { N_PLAIN, N_PERM_Q, N_PERM_K, N_KV_B, N_MTP };

/* HF suffix after "model.layers.N." <-> GGUF suffix after "blk.N." */
static const struct {
    const char *hf, *gg;
    int kind;
} gn_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", N_PLAIN},
    {"post_attention_layernorm.weight", "ffn_norm.weight", N_PLAIN},
    {"self_attn.q_proj.weight", "attn_q.weight", N_PERM_Q},
    {"self_attn.q_proj.bias", "attn_q.bias", N_PERM_Q},
    {"self_attn.k_proj.weight", "attn_k.weight", N_PERM_K},
    {"self_attn.k_proj.bias", "attn_k.bias", N_PERM_K},
    {"self_attn.v_proj.weight", "attn_v.weight", N_PLAIN},
    {"self_attn.v_proj.bias", "attn_v.bias", N_PLAIN},
    {"self_attn.o_proj.weight", "attn_output.weight", N_PLAIN},
    {"self_attn.o_proj.bias", "attn_output.bias", N_PLAIN},
    {"self_attn.q_a_proj.weight", "attn_q_a.weight", N_PLAIN},
    {"self_attn.q_a_layernorm.weight", "attn_q_a_norm.weight", N_PLAIN},
    {"self_attn.q_b_proj.weight", "attn_q_b.weight", N_PLAIN},
    {"self_attn.kv_a_proj_with_mqa.weight", "attn_kv_a_mqa.weight", N_PLAIN},
    {"self_attn.kv_a_layernorm.weight", "attn_kv_a_norm.weight", N_PLAIN},
    {"self_attn.kv_b_proj.weight", "attn_kv_b.weight", N_KV_B},
    {"mlp.gate_proj.weight", "ffn_gate.weight", N_PLAIN},
    {"mlp.up_proj.weight", "ffn_up.weight", N_PLAIN},
    {"mlp.down_proj.weight", "ffn_down.weight", N_PLAIN},
    {"mlp.gate.weight", "ffn_gate_inp.weight", N_PLAIN},
    {"mlp.gate.e_score_correction_bias", "exp_probs_b.bias", N_PLAIN},
    {"mlp.shared_experts.gate_proj.weight", "ffn_gate_shexp.weight", N_PLAIN},
    {"mlp.shared_experts.up_proj.weight", "ffn_up_shexp.weight", N_PLAIN},
    {"mlp.shared_experts.down_proj.weight", "ffn_down_shexp.weight", N_PLAIN},
    {"enorm.weight", "nextn.enorm.weight", N_MTP},
    {"hnorm.weight", "nextn.hnorm.weight", N_MTP},
    {"eh_proj.weight", "nextn.eh_proj.weight", N_MTP},
    {"shared_head.norm.weight", "nextn.shared_head_norm.weight", N_MTP},
    {"shared_head.head.weight", "nextn.shared_head_head.weight", N_MTP},
    {"embed_tokens.weight", "nextn.embed_tokens.weight", N_MTP},
};
#define GN_N_LAYER ((int)(sizeof gn_layer / sizeof gn_layer[0]))

static const struct {
    const char *hf, *gg;
} gn_global[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

/* experts.{e}.PROJ.weight <-> ffn_X_exps.weight */
static const struct {
    const char *proj, *gg;
} gn_experts[] = {
    {"gate_proj", "ffn_gate_exps.weight"},
    {"up_proj", "ffn_up_exps.weight"},
    {"down_proj", "ffn_down_exps.weight"},
};

/* Parse "PREFIX<int>." at the start of s: *idx and the rest, or NULL.
 * Digits only, no leading zeros (except "0"), at most 6 of them. */
static const char *gn_index(const char *s, const char *prefix, int *idx) {
    size_t np = strlen(prefix);
    if (strncmp(s, prefix, np) != 0) return NULL;
    s += np;
    int v = 0, nd = 0;
    while (s[nd] >= '0' && s[nd] <= '9' && nd < 7) v = v * 10 + (s[nd] - '0'), nd++;
    if (nd == 0 || nd > 6 || (nd > 1 && s[0] == '0') || s[nd] != '.') return NULL;
    *idx = v;
    return s + nd + 1;
}

static void gn_ref(GgufNameRef *r, const char *gg, int layer, GgufXform x, int expert,
                   int n_head) {
    memset(r, 0, sizeof *r);
    if (layer >= 0) snprintf(r->name, sizeof r->name, "blk.%d.%s", layer, gg);
    else snprintf(r->name, sizeof r->name, "%s", gg);
    r->xform = x;
    r->expert = expert;
    r->n_head = n_head;
}

int gguf_name_from_hf(const ModelConfig *c, const char *hf, GgufNameRef out[2], Err *err) {
    for (size_t i = 0; i < sizeof gn_global / sizeof gn_global[0]; i++)
        if (!strcmp(hf, gn_global[i].hf)) {
            gn_ref(&out[0], gn_global[i].gg, -1, GGUF_XFORM_NONE, -1, 0);
            return 1;
        }
    int l;
    const char *rest = gn_index(hf, "model.layers.", &l);
    if (!rest) return err_set(err, "tensor '" GN_NAME "' has no GGUF name", hf);
    if (l >= c->num_hidden_layers + c->num_nextn_predict_layers)
        return err_set(err, "tensor '" GN_NAME "': layer %d is beyond the config's %d + %d", hf, l,
                       c->num_hidden_layers, c->num_nextn_predict_layers);
    if (!strcmp(rest, "self_attn.rotary_emb.inv_freq")) return 0;
    int e;
    const char *proj = gn_index(rest, "mlp.experts.", &e);
    if (proj) {
        for (size_t i = 0; i < sizeof gn_experts / sizeof gn_experts[0]; i++) {
            size_t np = strlen(gn_experts[i].proj);
            if (strncmp(proj, gn_experts[i].proj, np) || strcmp(proj + np, ".weight")) continue;
            if (e >= c->n_routed_experts)
                return err_set(err, "tensor '" GN_NAME "': expert %d of %d", hf, e,
                               c->n_routed_experts);
            gn_ref(&out[0], gn_experts[i].gg, l, GGUF_XFORM_EXPERT, e, 0);
            return 1;
        }
        return err_set(err, "tensor '" GN_NAME "' has no GGUF name", hf);
    }
    for (int i = 0; i < GN_N_LAYER; i++) {
        if (strcmp(rest, gn_layer[i].hf)) continue;
        int kind = gn_layer[i].kind;
        if (kind == N_MTP && l < c->num_hidden_layers)
            return err_set(err, "tensor '" GN_NAME "' belongs to an MTP layer but layer %d is a "
                           "main layer", hf, l);
        if (kind == N_KV_B && config_is_mla(c)) {
            gn_ref(&out[0], "attn_k_b.weight", l, GGUF_XFORM_KV_B_K, -1, 0);
            gn_ref(&out[1], "attn_v_b.weight", l, GGUF_XFORM_KV_B_V, -1, 0);
            return 2;
        }
        if ((kind == N_PERM_Q || kind == N_PERM_K) && c->arch == ARCH_LLAMA) {
            int nh = kind == N_PERM_Q ? c->num_attention_heads : c->num_key_value_heads;
            gn_ref(&out[0], gn_layer[i].gg, l, GGUF_XFORM_LLAMA_PERMUTE, -1, nh);
            return 1;
        }
        gn_ref(&out[0], gn_layer[i].gg, l, GGUF_XFORM_NONE, -1, 0);
        return 1;
    }
    return err_set(err, "tensor '" GN_NAME "' has no GGUF name", hf);
}

static int gn_put(char *hf, size_t n, Err *err, const char *gg, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int gn_put(char *hf, size_t n, Err *err, const char *gg, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(hf, n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n)
        return err_set(err, "GGUF tensor '" GN_NAME "': HF name buffer of %zu bytes is too small",
                       gg, n);
    return 1;
}

int gguf_name_to_hf(const ModelConfig *c, const char *gg, int expert, char *hf, size_t n,
                    GgufXform *xform, Err *err) {
    *xform = GGUF_XFORM_NONE;
    for (size_t i = 0; i < sizeof gn_global / sizeof gn_global[0]; i++)
        if (!strcmp(gg, gn_global[i].gg)) return gn_put(hf, n, err, gg, "%s", gn_global[i].hf);
    if (!strcmp(gg, "rope_freqs.weight")) return 0;
    int l;
    const char *rest = gn_index(gg, "blk.", &l);
    if (!rest) return err_set(err, "GGUF tensor '" GN_NAME "' has no HF name", gg);
    if (l >= c->num_hidden_layers + c->num_nextn_predict_layers)
        return err_set(err, "GGUF tensor '" GN_NAME "': block %d is beyond the config's %d + %d",
                       gg, l, c->num_hidden_layers, c->num_nextn_predict_layers);
    for (size_t i = 0; i < sizeof gn_experts / sizeof gn_experts[0]; i++) {
        if (strcmp(rest, gn_experts[i].gg)) continue;
        if (expert < 0 || expert >= c->n_routed_experts)
            return err_set(err, "GGUF tensor '" GN_NAME "': expert %d of %d", gg, expert,
                           c->n_routed_experts);
        *xform = GGUF_XFORM_EXPERT;
        return gn_put(hf, n, err, gg, "model.layers.%d.mlp.experts.%d.%s.weight", l, expert,
                      gn_experts[i].proj);
    }
    if (!strcmp(rest, "attn_k_b.weight") || !strcmp(rest, "attn_v_b.weight")) {
        *xform = rest[5] == 'k' ? GGUF_XFORM_KV_B_K : GGUF_XFORM_KV_B_V;
        return gn_put(hf, n, err, gg, "model.layers.%d.self_attn.kv_b_proj.weight", l);
    }
    for (int i = 0; i < GN_N_LAYER; i++) {
        if (strcmp(rest, gn_layer[i].gg)) continue;
        int kind = gn_layer[i].kind;
        if (kind == N_MTP && l < c->num_hidden_layers)
            return err_set(err, "GGUF tensor '" GN_NAME "' belongs to an MTP block but block %d "
                           "is a main layer", gg, l);
        if ((kind == N_PERM_Q || kind == N_PERM_K) && c->arch == ARCH_LLAMA)
            *xform = GGUF_XFORM_LLAMA_PERMUTE;
        return gn_put(hf, n, err, gg, "model.layers.%d.%s", l, gn_layer[i].hf);
    }
    return err_set(err, "GGUF tensor '" GN_NAME "' has no HF name", gg);
}

int gguf_shape_from_hf(const ModelConfig *c, const GgufNameRef *ref, int hf_n_dims,
                       const int64_t *hf_shape, int *n_dims, int64_t ne[GGUF_MAX_DIMS], Err *err) {
    for (int d = 0; d < GGUF_MAX_DIMS; d++) ne[d] = 1;
    if (hf_n_dims < 1 || hf_n_dims > 2)
        return err_set(err, "tensor '" GN_NAME "': HF tensors have 1 or 2 dims, not %d", ref->name,
                       hf_n_dims);
    const int64_t H = c->num_attention_heads, nope = c->qk_nope_head_dim, v = c->v_head_dim,
                  R = c->kv_lora_rank;
    switch (ref->xform) {
    case GGUF_XFORM_NONE:
    case GGUF_XFORM_LLAMA_PERMUTE:
        *n_dims = hf_n_dims;
        for (int d = 0; d < hf_n_dims; d++) ne[d] = hf_shape[hf_n_dims - 1 - d];
        return 0;
    case GGUF_XFORM_EXPERT:
        if (hf_n_dims != 2) break;
        *n_dims = 3;
        ne[0] = hf_shape[1], ne[1] = hf_shape[0], ne[2] = c->n_routed_experts;
        return 0;
    case GGUF_XFORM_KV_B_K:
    case GGUF_XFORM_KV_B_V:
        if (hf_n_dims != 2 || hf_shape[0] != H * (nope + v) || hf_shape[1] != R) break;
        *n_dims = 3;
        ne[0] = ref->xform == GGUF_XFORM_KV_B_K ? nope : R;
        ne[1] = ref->xform == GGUF_XFORM_KV_B_K ? R : v;
        ne[2] = H;
        return 0;
    }
    return err_set(err, "tensor '" GN_NAME "': HF shape does not fit its transform", ref->name);
}

/* ---- transforms ---------------------------------------------------------------------- */

static int gn_permute(void *dst, const void *src, int64_t n_rows, size_t row_bytes, int n_head,
                      int inverse, Err *err) {
    if (n_head < 1 || n_rows % (2 * (int64_t)n_head) != 0)
        return err_set(err, "llama q/k permutation: %lld rows are not %d heads of an even size",
                       (long long)n_rows, n_head);
    const int64_t dh = n_rows / n_head, half = dh / 2;
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t j = 0; j < half; j++)
            for (int64_t k = 0; k < 2; k++) {
                int64_t hf = h * dh + k * half + j, gg = h * dh + 2 * j + k;
                int64_t to = inverse ? hf : gg, from = inverse ? gg : hf;
                memcpy(d + (size_t)to * row_bytes, s + (size_t)from * row_bytes, row_bytes);
            }
    return 0;
}

int gguf_llama_permute_rows(void *dst, const void *src, int64_t n_rows, size_t row_bytes,
                            int n_head, Err *err) {
    return gn_permute(dst, src, n_rows, row_bytes, n_head, 0, err);
}

int gguf_llama_unpermute_rows(void *dst, const void *src, int64_t n_rows, size_t row_bytes,
                              int n_head, Err *err) {
    return gn_permute(dst, src, n_rows, row_bytes, n_head, 1, err);
}

static void gn_kv_b(void *kv_b, void *k_b, void *v_b, size_t es, int H, int nope, int v, int R,
                    int merge) {
    unsigned char *kv = kv_b, *kb = k_b, *vb = v_b;
    for (size_t h = 0; h < (size_t)H; h++) {
        unsigned char *head = kv + h * (size_t)(nope + v) * (size_t)R * es; /* (nope+v, R) */
        for (size_t i = 0; i < (size_t)nope; i++)
            for (size_t r = 0; r < (size_t)R; r++) {
                unsigned char *a = head + (i * (size_t)R + r) * es;
                unsigned char *b = kb + ((h * (size_t)R + r) * (size_t)nope + i) * es;
                if (merge) memcpy(a, b, es);
                else memcpy(b, a, es);
            }
        unsigned char *vrows = head + (size_t)nope * (size_t)R * es;
        unsigned char *vdst = vb + h * (size_t)v * (size_t)R * es;
        if (merge) memcpy(vrows, vdst, (size_t)v * (size_t)R * es);
        else memcpy(vdst, vrows, (size_t)v * (size_t)R * es);
    }
}

void gguf_mla_split_kv_b(const void *kv_b, void *k_b, void *v_b, size_t elem_size, int H, int nope,
                         int v, int R) {
    gn_kv_b((void *)kv_b, k_b, v_b, elem_size, H, nope, v, R, 0); /* read-only in this direction */
}

void gguf_mla_merge_kv_b(const void *k_b, const void *v_b, void *kv_b, size_t elem_size, int H,
                         int nope, int v, int R) {
    gn_kv_b(kv_b, (void *)k_b, (void *)v_b, elem_size, H, nope, v, R, 1);
}

const void *gguf_expert_slice(const GgufTensor *t, int e, size_t *n_bytes) {
    if (t->n_dims != 3 || e < 0 || e >= t->ne[2]) return NULL;
    size_t per = t->n_bytes / (size_t)t->ne[2];
    *n_bytes = per;
    return (const unsigned char *)t->data + (size_t)e * per;
}
