/* SPDX-License-Identifier: MIT */
/* io/config: every tests/data config.json parses to the numbers it states;
 * absent keys take the transformers defaults of each family; the 671B config
 * gives 671B/37B parameters and 70272 bytes of BF16 MLA cache per token; bad
 * files fail with a message naming the file and the field (line:column for
 * broken JSON); config_save -> config_load round-trips every field. Files
 * are written to a mkdtemp directory under /tmp, removed after each test. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "io/config.h"
#include "model/kvcache.h"
#include "model/presets.h"

static char g_dir[64];

static void setup(void) {
    cr_assert_eq(h_tmpdir(g_dir, sizeof g_dir, "config"), 0, "mkdtemp failed");
}

static void teardown(void) { h_rmtree(g_dir); }

TestSuite(config, .init = setup, .fini = teardown);

/* tests/data, from WHALE_DATA (set by make test) or relative to the repo. */
static const char *data_dir(void) {
    const char *d = getenv("WHALE_DATA");
    return d && d[0] ? d : "tests/data";
}

/* Load tests/data/<name>/config.json or fail the test with the message. */
static ModelConfig load_case(const char *name) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", data_dir(), name);
    ModelConfig c;
    Err e = {{0}};
    int rc = config_load(&c, dir, &e);
    cr_assert_eq(rc, 0, "config_load(%s): expected success, got %d: %s", dir, rc, e.msg);
    return c;
}

/* Parse a JSON text as a config (no file), or fail the test. */
static ModelConfig parse_text(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    cr_assert_not_null(j, "test JSON does not parse: %s: %s", text, je.text);
    ModelConfig c;
    Err e = {{0}};
    int rc = config_from_json(&c, j, "test", &e);
    json_decref(j);
    cr_assert_eq(rc, 0, "config_from_json(%s): expected success, got %d: %s", text, rc, e.msg);
    return c;
}

/* Write text as <tmp>/<file>, config_load it, expect failure whose message
 * contains the path and every needle. */
static void expect_load_fail(const char *file, const char *text, const char *const *needles) {
    const char *path = h_path(g_dir, file);
    cr_assert_eq(h_write_text(path, text), 0, "cannot write %s", path);
    ModelConfig c;
    Err e = {{0}};
    int rc = config_load(&c, path, &e);
    cr_assert_eq(rc, -1, "config_load(%s) of\n%s\nexpected -1, got %d", path, text, rc);
    cr_assert(strstr(e.msg, path), "message should name the file %s, got \"%s\"", path, e.msg);
    for (const char *const *n = needles; *n; n++)
        cr_assert(strstr(e.msg, *n), "message for\n%s\nshould contain \"%s\", got \"%s\"", text,
                  *n, e.msg);
}
#define EXPECT_LOAD_FAIL(file, text, ...) \
    expect_load_fail(file, text, (const char *const[]){__VA_ARGS__, NULL})

#define EQ_INT(c, field, want)                                                                    \
    cr_assert_eq((long long)(c).field, (long long)(want), "%s: expected %lld, got %lld", #field, \
                 (long long)(want), (long long)(c).field)
#define EQ_FLT(c, field, want)                                                                    \
    cr_assert(fabs((double)(c).field - (double)(want)) <= 1e-6 * fabs((double)(want)) + 1e-12,   \
              "%s: expected %.9g, got %.9g", #field, (double)(want), (double)(c).field)
#define EQ_STR(c, field, want) \
    cr_assert_str_eq((c).field, want, "%s: expected \"%s\", got \"%s\"", #field, want, (c).field)

/* ---- every case of tests/data ------------------------------------------- */

/* Guards: a config.json in tests/data that whale cannot read (a new key
 * type, a family regression). Lists the directory so new cases are covered. */
Test(config, all_data_configs_load) {
    DIR *d = opendir(data_dir());
    cr_assert_not_null(d, "cannot open %s (set WHALE_DATA)", data_dir());
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s/config.json", data_dir(), e->d_name);
        if (h_file_size(p) < 0) continue;
        ModelConfig c = load_case(e->d_name);
        cr_assert(c.vocab_size > 0 && c.hidden_size > 0, "%s: empty shape", e->d_name);
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 9, "expected at least 9 cases with a config.json in %s, found %d",
                  data_dir(), n);
}

/* Guards: the V3 keys (MLA ranks, noaux_tc sigmoid routing with groups,
 * MTP depth, float fields) being read from the file, not the defaults. */
Test(config, v3_f32_fields) {
    ModelConfig c = load_case("v3_f32");
    cr_assert_eq(c.arch, ARCH_DEEPSEEK_V3, "arch: expected deepseek_v3, got %d", c.arch);
    EQ_STR(c, model_type, "deepseek_v3");
    EQ_INT(c, vocab_size, 256);
    EQ_INT(c, hidden_size, 64);
    EQ_INT(c, intermediate_size, 128);
    EQ_INT(c, num_hidden_layers, 3);
    EQ_INT(c, num_attention_heads, 4);
    EQ_INT(c, q_lora_rank, 48);
    EQ_INT(c, kv_lora_rank, 32);
    EQ_INT(c, qk_nope_head_dim, 16);
    EQ_INT(c, qk_rope_head_dim, 16);
    EQ_INT(c, v_head_dim, 24);
    EQ_INT(c, n_routed_experts, 16);
    EQ_INT(c, n_shared_experts, 1);
    EQ_INT(c, num_experts_per_tok, 4);
    EQ_INT(c, moe_intermediate_size, 16);
    EQ_INT(c, first_k_dense_replace, 1);
    EQ_INT(c, n_group, 4);
    EQ_INT(c, topk_group, 2);
    EQ_INT(c, topk_method, TOPK_NOAUX_TC);
    EQ_INT(c, scoring_func, SCORE_SIGMOID);
    EQ_INT(c, norm_topk_prob, 1);
    EQ_FLT(c, routed_scaling_factor, 2.5);
    EQ_INT(c, num_nextn_predict_layers, 1);
    EQ_INT(c, max_position_embeddings, 4096);
    EQ_FLT(c, rms_norm_eps, 1e-6);
    EQ_FLT(c, rope_theta, 10000);
    EQ_INT(c, rope.type, ROPE_DEFAULT);
    EQ_INT(c, tie_word_embeddings, 0);
    EQ_INT(c, fp8_block_rows, 0);
    EQ_STR(c, torch_dtype, "float32");
    cr_assert(!config_layer_is_moe(&c, 0) && config_layer_is_moe(&c, 1) &&
                  config_layer_is_moe(&c, 2) && config_layer_is_moe(&c, 3),
              "layers 0 dense, 1..2 MoE, MTP layer 3 MoE expected");
    ModelConfig b = load_case("v3_bf16");
    EQ_STR(b, torch_dtype, "bfloat16");
}

/* Guards: quantization_config.weight_block_size being read. */
Test(config, v3_fp8_fields) {
    ModelConfig c = load_case("v3_fp8");
    EQ_INT(c, fp8_block_rows, 128);
    EQ_INT(c, fp8_block_cols, 128);
    EQ_INT(c, hidden_size, 160);
    EQ_INT(c, intermediate_size, 200);
    EQ_INT(c, q_lora_rank, 144);
    EQ_STR(c, torch_dtype, "bfloat16");
}

/* Guards: the YaRN keys of rope_scaling ("type": "yarn", the old spelling). */
Test(config, v3_yarn_fields) {
    ModelConfig c = load_case("v3_yarn");
    EQ_INT(c, rope.type, ROPE_YARN);
    EQ_FLT(c, rope.factor, 40);
    EQ_INT(c, rope.original_max_position_embeddings, 64);
    EQ_FLT(c, rope.beta_fast, 32);
    EQ_FLT(c, rope.beta_slow, 1);
    EQ_FLT(c, rope.mscale, 0.707);
    EQ_FLT(c, rope.mscale_all_dim, 0.707);
    EQ_INT(c, qk_rope_head_dim, 32);
    EQ_INT(c, num_nextn_predict_layers, 0);
    EQ_INT(c, n_group, 2);
    EQ_INT(c, topk_group, 1);
    EQ_INT(c, n_routed_experts, 8);
    EQ_INT(c, max_position_embeddings, 2560);
}

/* Guards: q_lora_rank null -> plain q_proj (0), greedy softmax routing
 * without normalisation, V2 family. */
Test(config, v2_lite_fields) {
    ModelConfig c = load_case("v2_lite");
    cr_assert_eq(c.arch, ARCH_DEEPSEEK_V2, "arch: expected deepseek_v2, got %d", c.arch);
    EQ_INT(c, q_lora_rank, 0);
    EQ_INT(c, topk_method, TOPK_GREEDY);
    EQ_INT(c, scoring_func, SCORE_SOFTMAX);
    EQ_INT(c, norm_topk_prob, 0);
    EQ_INT(c, n_shared_experts, 2);
    EQ_INT(c, num_experts_per_tok, 6);
    EQ_INT(c, num_hidden_layers, 3);
    EQ_INT(c, v_head_dim, 16);
    EQ_INT(c, first_k_dense_replace, 1);
    EQ_FLT(c, routed_scaling_factor, 1.0);
    EQ_INT(c, num_nextn_predict_layers, 0);
}

/* Guards: group_limited_greedy and a scale other than the default. */
Test(config, v2_group_fields) {
    ModelConfig c = load_case("v2_group");
    EQ_INT(c, topk_method, TOPK_GROUP_LIMITED_GREEDY);
    EQ_INT(c, n_group, 4);
    EQ_INT(c, topk_group, 2);
    EQ_INT(c, first_k_dense_replace, 0);
    EQ_FLT(c, routed_scaling_factor, 16.0);
    EQ_INT(c, q_lora_rank, 48);
    cr_assert(config_layer_is_moe(&c, 0) && config_layer_is_moe(&c, 1), "both layers MoE");
}

/* Guards: qwen2's QKV bias (implied by the family, not a key), GQA and the
 * derived head_dim, tied embeddings. */
Test(config, qwen2_fields) {
    ModelConfig c = load_case("qwen2");
    cr_assert_eq(c.arch, ARCH_QWEN2, "arch: expected qwen2, got %d", c.arch);
    EQ_INT(c, attention_bias, 1);
    EQ_INT(c, tie_word_embeddings, 1);
    EQ_INT(c, num_key_value_heads, 2);
    EQ_INT(c, head_dim, 16);
    EQ_INT(c, intermediate_size, 128);
    EQ_INT(c, bos_token_id, 0);
    EQ_INT(c, eos_token_id, 1);
    EQ_STR(c, torch_dtype, "float16");
    cr_assert(!config_layer_is_moe(&c, 0), "qwen2 has no MoE layers");
}

/* Guards: llama3 rope_scaling ("rope_type" spelling) with its factors. */
Test(config, llama_fields) {
    ModelConfig c = load_case("llama");
    cr_assert_eq(c.arch, ARCH_LLAMA, "arch: expected llama, got %d", c.arch);
    EQ_INT(c, rope.type, ROPE_LLAMA3);
    EQ_FLT(c, rope.factor, 8);
    EQ_FLT(c, rope.low_freq_factor, 1);
    EQ_FLT(c, rope.high_freq_factor, 4);
    EQ_INT(c, rope.original_max_position_embeddings, 32);
    EQ_FLT(c, rms_norm_eps, 1e-5);
    EQ_INT(c, attention_bias, 0);
    EQ_INT(c, num_attention_heads, 8);
    EQ_INT(c, num_key_value_heads, 2);
    EQ_INT(c, head_dim, 16);
    EQ_INT(c, hidden_size, 128);
    EQ_INT(c, tie_word_embeddings, 0);
}

/* Guards: the full V3 release config (YaRN factor 40, FP8 blocks). */
Test(config, v3_671b_fields) {
    ModelConfig c = load_case("v3_671b");
    EQ_INT(c, hidden_size, 7168);
    EQ_INT(c, num_hidden_layers, 61);
    EQ_INT(c, n_routed_experts, 256);
    EQ_INT(c, vocab_size, 129280);
    EQ_INT(c, max_position_embeddings, 163840);
    EQ_INT(c, rope.type, ROPE_YARN);
    EQ_FLT(c, rope.factor, 40);
    EQ_FLT(c, rope.mscale_all_dim, 1.0);
    EQ_INT(c, rope.original_max_position_embeddings, 4096);
    EQ_INT(c, fp8_block_rows, 128);
    EQ_INT(c, fp8_block_cols, 128);
    for (int l = 0; l < 62; l++)
        cr_assert_eq(config_layer_is_moe(&c, l), l >= 3,
                     "layer %d: expected %s (first_k_dense_replace 3; 61 is MTP)", l,
                     l >= 3 ? "MoE" : "dense");
}

/* ---- family defaults for absent keys ------------------------------------ */

/* Guards: DeepseekV3Config's defaults (transformers) for every key. */
Test(config, defaults_deepseek_v3) {
    ModelConfig c = parse_text("{\"model_type\": \"deepseek_v3\"}");
    cr_assert_eq(c.arch, ARCH_DEEPSEEK_V3, "arch");
    EQ_INT(c, vocab_size, 129280);
    EQ_INT(c, hidden_size, 7168);
    EQ_INT(c, intermediate_size, 18432);
    EQ_INT(c, moe_intermediate_size, 2048);
    EQ_INT(c, num_hidden_layers, 61);
    EQ_INT(c, num_nextn_predict_layers, 1);
    EQ_INT(c, num_attention_heads, 128);
    EQ_INT(c, num_key_value_heads, 128);
    EQ_INT(c, n_shared_experts, 1);
    EQ_INT(c, n_routed_experts, 256);
    EQ_FLT(c, routed_scaling_factor, 2.5);
    EQ_INT(c, kv_lora_rank, 512);
    EQ_INT(c, q_lora_rank, 1536);
    EQ_INT(c, qk_rope_head_dim, 64);
    EQ_INT(c, v_head_dim, 128);
    EQ_INT(c, qk_nope_head_dim, 128);
    EQ_INT(c, topk_method, TOPK_NOAUX_TC);
    EQ_INT(c, n_group, 8);
    EQ_INT(c, topk_group, 4);
    EQ_INT(c, num_experts_per_tok, 8);
    EQ_INT(c, moe_layer_freq, 1);
    EQ_INT(c, first_k_dense_replace, 3);
    EQ_INT(c, norm_topk_prob, 1);
    EQ_INT(c, scoring_func, SCORE_SIGMOID);
    EQ_INT(c, max_position_embeddings, 4096);
    EQ_FLT(c, rms_norm_eps, 1e-6);
    EQ_FLT(c, rope_theta, 10000);
    EQ_INT(c, rope.type, ROPE_DEFAULT);
    EQ_INT(c, bos_token_id, 0);
    EQ_INT(c, eos_token_id, 1);
    EQ_INT(c, tie_word_embeddings, 0);
    EQ_INT(c, attention_bias, 0);
    EQ_INT(c, fp8_block_rows, 0);
}

/* Guards: DeepseekV2Config's defaults: softmax, greedy, and
 * n_routed_experts None meaning a dense model. */
Test(config, defaults_deepseek_v2) {
    ModelConfig c = parse_text("{\"model_type\": \"deepseek_v2\"}");
    cr_assert_eq(c.arch, ARCH_DEEPSEEK_V2, "arch");
    EQ_INT(c, vocab_size, 102400);
    EQ_INT(c, hidden_size, 4096);
    EQ_INT(c, intermediate_size, 11008);
    EQ_INT(c, moe_intermediate_size, 1407);
    EQ_INT(c, num_hidden_layers, 30);
    EQ_INT(c, num_attention_heads, 32);
    EQ_INT(c, n_routed_experts, 0);
    EQ_INT(c, n_shared_experts, 0);
    EQ_INT(c, kv_lora_rank, 512);
    EQ_INT(c, q_lora_rank, 1536);
    EQ_INT(c, topk_method, TOPK_GREEDY);
    EQ_INT(c, scoring_func, SCORE_SOFTMAX);
    EQ_INT(c, norm_topk_prob, 0);
    EQ_INT(c, first_k_dense_replace, 0);
    EQ_FLT(c, routed_scaling_factor, 1.0);
    EQ_INT(c, num_nextn_predict_layers, 0);
    EQ_INT(c, max_position_embeddings, 2048);
    EQ_INT(c, bos_token_id, 100000);
    EQ_INT(c, eos_token_id, 100001);
    for (int l = 0; l < 30; l++)
        cr_assert(!config_layer_is_moe(&c, l), "layer %d: a V2 config without experts is dense",
                  l);
    /* "n_routed_experts": null is the same as absent */
    ModelConfig d = parse_text("{\"model_type\": \"deepseek_v2\", \"n_routed_experts\": null}");
    EQ_INT(d, n_routed_experts, 0);
}

/* Guards: Qwen2Config's defaults, attention bias on without a key. */
Test(config, defaults_qwen2) {
    ModelConfig c = parse_text("{\"model_type\": \"qwen2\"}");
    cr_assert_eq(c.arch, ARCH_QWEN2, "arch");
    EQ_INT(c, vocab_size, 151936);
    EQ_INT(c, hidden_size, 4096);
    EQ_INT(c, intermediate_size, 22016);
    EQ_INT(c, num_hidden_layers, 32);
    EQ_INT(c, num_attention_heads, 32);
    EQ_INT(c, num_key_value_heads, 32);
    EQ_INT(c, head_dim, 128);
    EQ_INT(c, max_position_embeddings, 32768);
    EQ_INT(c, attention_bias, 1);
    EQ_INT(c, tie_word_embeddings, 0);
    EQ_FLT(c, rms_norm_eps, 1e-6);
    EQ_FLT(c, rope_theta, 10000);
}

/* Guards: LlamaConfig: num_key_value_heads None -> heads, head_dim None ->
 * hidden / heads. */
Test(config, defaults_llama) {
    ModelConfig c = parse_text("{\"model_type\": \"llama\"}");
    cr_assert_eq(c.arch, ARCH_LLAMA, "arch");
    EQ_INT(c, vocab_size, 32000);
    EQ_INT(c, hidden_size, 4096);
    EQ_INT(c, intermediate_size, 11008);
    EQ_INT(c, num_attention_heads, 32);
    EQ_INT(c, num_key_value_heads, 32);
    EQ_INT(c, head_dim, 128);
    EQ_INT(c, max_position_embeddings, 2048);
    EQ_INT(c, attention_bias, 0);
    EQ_INT(c, bos_token_id, 1);
    EQ_INT(c, eos_token_id, 2);
    ModelConfig d = parse_text(
        "{\"model_type\": \"llama\", \"hidden_size\": 256, \"num_attention_heads\": 8}");
    EQ_INT(d, num_key_value_heads, 8);
    EQ_INT(d, head_dim, 32);
    ModelConfig e = parse_text("{\"model_type\": \"llama\", \"hidden_size\": 256, "
                               "\"num_attention_heads\": 8, \"num_key_value_heads\": null, "
                               "\"head_dim\": 64, \"attention_bias\": true}");
    EQ_INT(e, num_key_value_heads, 8);
    EQ_INT(e, head_dim, 64);
    EQ_INT(e, attention_bias, 1);
}

/* ---- the 671B model ---------------------------------------------------- */

/* Guards: the parameter count formula (MLA with q_lora, 58 MoE layers of
 * 256+1 experts, the correction bias, untied head). DeepSeek-V3 reports 671B
 * total and 37B activated per token for the main model (MTP excluded). */
Test(config, count_params_671b) {
    ModelConfig c = load_case("v3_671b");
    ParamCount pc = config_count_params(&c);
    double total = (double)pc.total, active = (double)pc.active;
    cr_assert(fabs(total - 671e9) <= 0.005 * 671e9,
              "total parameters: expected 671e9 within 0.5%%, got %lld (%.3fB)",
              (long long)pc.total, total / 1e9);
    cr_assert(fabs(active - 37e9) <= 0.03 * 37e9,
              "active parameters: expected 37e9 within 3%%, got %lld (%.3fB)",
              (long long)pc.active, active / 1e9);
    cr_assert_gt(pc.mtp, 0, "MTP parameters: expected > 0, got %lld", (long long)pc.mtp);
    cr_assert_eq(pc.embedding, 129280LL * 7168, "embedding: expected %lld, got %lld",
                 129280LL * 7168, (long long)pc.embedding);
    cr_assert_lt(pc.active, pc.total, "active %lld must be below total %lld",
                 (long long)pc.active, (long long)pc.total);
}

/* Guards: the MLA cache holds R + rope numbers per token per layer, nothing
 * more, and kvcache_init allocates exactly what bytes_per_token says. */
Test(config, kv_cache_671b) {
    ModelConfig c = load_case("v3_671b");
    int64_t per_layer = config_kv_numbers_per_token_layer(&c);
    cr_assert_eq(per_layer, 576, "kv numbers per token per layer: expected 576 (512 + 64), got %lld",
                 (long long)per_layer);
    int64_t bpt = kvcache_bytes_per_token(&c, DTYPE_BF16);
    cr_assert_eq(bpt, 70272, "bf16 kv bytes per token: expected 70272 (61 x 576 x 2), got %lld",
                 (long long)bpt);
    int64_t bpt32 = kvcache_bytes_per_token(&c, DTYPE_F32);
    cr_assert_eq(bpt32, 140544, "f32 kv bytes per token: expected 140544, got %lld",
                 (long long)bpt32);
    KVCache kv;
    Err e = {{0}};
    int rc = kvcache_init(&kv, &c, 3, DTYPE_BF16, 0, &e);
    cr_assert_eq(rc, 0, "kvcache_init: %s", e.msg);
    cr_assert_eq(kv.bytes, (size_t)(3 * 70272), "KVCache.bytes for 3 tokens: expected %d, got %zu",
                 3 * 70272, kv.bytes);
    cr_assert_eq(kv.width, 576, "KVCache.width: expected 576, got %d", kv.width);
    kvcache_free(&kv);
}

/* Guards: the GQA cache formula (2 x KV heads x head dim). */
Test(config, kv_numbers_gqa) {
    ModelConfig c = load_case("llama");
    int64_t n = config_kv_numbers_per_token_layer(&c);
    cr_assert_eq(n, 2 * 2 * 16, "llama kv numbers per token per layer: expected 64, got %lld",
                 (long long)n);
    cr_assert_eq(kvcache_bytes_per_token(&c, DTYPE_BF16), 2 * 64 * 2,
                 "llama bf16 bytes per token: expected 256, got %lld",
                 (long long)kvcache_bytes_per_token(&c, DTYPE_BF16));
}

/* ---- bad files ---------------------------------------------------------- */

/* Guards: a model type whale does not read failing late (or silently as a
 * default family) instead of naming it. */
Test(config, unknown_model_type) {
    EXPECT_LOAD_FAIL("config.json", "{\"model_type\": \"gpt2\", \"hidden_size\": 64}",
                     "model_type", "gpt2");
}

Test(config, missing_model_type) {
    EXPECT_LOAD_FAIL("config.json", "{\"hidden_size\": 64}", "model_type");
    EXPECT_LOAD_FAIL("config2.json", "{\"model_type\": null}", "model_type");
    EXPECT_LOAD_FAIL("config3.json", "{\"model_type\": 3}", "model_type");
}

/* Guards: the position of a JSON syntax error. Line 4 is
 * `  "hidden_size": 64,,`: the second comma is at column 21. */
Test(config, malformed_json_position) {
    const char *text = "{\n"
                       "  \"model_type\": \"deepseek_v3\",\n"
                       "\n"
                       "  \"hidden_size\": 64,,\n"
                       "  \"vocab_size\": 256\n"
                       "}\n";
    EXPECT_LOAD_FAIL("config.json", text, "config.json:4:21");
    /* and a directory path finds config.json inside it */
    ModelConfig c;
    Err e = {{0}};
    cr_assert_eq(config_load(&c, g_dir, &e), -1, "config_load(dir) should fail");
    cr_assert(strstr(e.msg, "config.json:4:21"), "expected \"config.json:4:21\" in \"%s\"", e.msg);
    EXPECT_LOAD_FAIL("trunc.json", "{\"model_type\": \"deepseek_v3\"", "trunc.json:1:");
    EXPECT_LOAD_FAIL("array.json", "[1, 2]", "array.json");
}

Test(config, missing_file) {
    ModelConfig c;
    Err e = {{0}};
    const char *p = h_path(g_dir, "nothing-here");
    cr_assert_eq(config_load(&c, p, &e), -1, "config_load of a missing path should fail");
    cr_assert(strstr(e.msg, "nothing-here"), "message should name the path, got \"%s\"", e.msg);
}

/* Guards: type checks on each kind of field; the message names the field. */
Test(config, wrong_field_types) {
    static const struct { const char *json, *field; } cases[] = {
        {"{\"model_type\": \"deepseek_v3\", \"hidden_size\": \"big\"}", "hidden_size"},
        {"{\"model_type\": \"deepseek_v3\", \"num_hidden_layers\": 2.5}", "num_hidden_layers"},
        {"{\"model_type\": \"deepseek_v3\", \"vocab_size\": 3000000000}", "vocab_size"},
        {"{\"model_type\": \"deepseek_v3\", \"rms_norm_eps\": \"small\"}", "rms_norm_eps"},
        {"{\"model_type\": \"deepseek_v3\", \"norm_topk_prob\": 1}", "norm_topk_prob"},
        {"{\"model_type\": \"deepseek_v3\", \"tie_word_embeddings\": \"no\"}",
         "tie_word_embeddings"},
        {"{\"model_type\": \"deepseek_v3\", \"topk_method\": 5}", "topk_method"},
        {"{\"model_type\": \"deepseek_v3\", \"topk_method\": \"best\"}", "topk_method"},
        {"{\"model_type\": \"deepseek_v3\", \"scoring_func\": \"tanh\"}", "scoring_func"},
        {"{\"model_type\": \"deepseek_v3\", \"hidden_act\": \"gelu\"}", "hidden_act"},
        {"{\"model_type\": \"deepseek_v3\", \"rope_scaling\": 3}", "rope_scaling"},
        {"{\"model_type\": \"deepseek_v3\", \"rope_scaling\": {\"type\": \"yarn\", "
         "\"factor\": \"x\"}}",
         "factor"},
        {"{\"model_type\": \"deepseek_v3\", \"quantization_config\": "
         "{\"weight_block_size\": [128]}}",
         "weight_block_size"},
        {"{\"model_type\": \"llama\", \"eos_token_id\": [\"a\"]}", "eos_token_id"},
        {"{\"model_type\": \"llama\", \"attention_bias\": \"yes\"}", "attention_bias"},
        {"{\"model_type\": \"qwen2\", \"torch_dtype\": 16}", "torch_dtype"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char file[32];
        snprintf(file, sizeof file, "config%zu.json", i);
        EXPECT_LOAD_FAIL(file, cases[i].json, cases[i].field);
    }
}

/* Guards: shapes that later stages would index out of bounds with. */
Test(config, inconsistent_shapes) {
    static const struct { const char *json, *needle; } cases[] = {
        /* 4 heads over 3 KV heads */
        {"{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"num_attention_heads\": 4, "
         "\"num_key_value_heads\": 3}",
         "num_key_value_heads"},
        /* topk_group 9 of 8 groups */
        {"{\"model_type\": \"deepseek_v3\", \"topk_group\": 9}", "topk_group"},
        /* top-6 of 4 experts */
        {"{\"model_type\": \"deepseek_v2\", \"n_routed_experts\": 4, "
         "\"num_experts_per_tok\": 6}",
         "num_experts_per_tok"},
        {"{\"model_type\": \"deepseek_v3\", \"num_experts_per_tok\": 0}", "num_experts_per_tok"},
        /* odd rope dimension (rotation pairs) */
        {"{\"model_type\": \"deepseek_v3\", \"qk_rope_head_dim\": 63}", "qk_rope_head_dim"},
        /* llama head_dim 60 / 4 = 15: odd */
        {"{\"model_type\": \"llama\", \"hidden_size\": 60, \"num_attention_heads\": 4}",
         "head_dim"},
        /* 250 experts do not split into 8 groups */
        {"{\"model_type\": \"deepseek_v3\", \"n_routed_experts\": 250}", "n_group"},
        {"{\"model_type\": \"deepseek_v3\", \"vocab_size\": 0}", "vocab_size"},
        {"{\"model_type\": \"deepseek_v3\", \"num_hidden_layers\": -1}", "num_hidden_layers"},
        {"{\"model_type\": \"deepseek_v3\", \"kv_lora_rank\": 0}", "kv_lora_rank"},
        /* llama's default eos id 2 outside a vocabulary of 2 */
        {"{\"model_type\": \"llama\", \"vocab_size\": 2}", "vocab_size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char file[32];
        snprintf(file, sizeof file, "config%zu.json", i);
        EXPECT_LOAD_FAIL(file, cases[i].json, cases[i].needle);
    }
}

/* Guards: config_validate itself (presets and training build configs in
 * code, not through config_from_json). */
Test(config, validate_direct) {
    ModelConfig base = load_case("v3_f32");
    Err e = {{0}};
    cr_assert_eq(config_validate(&base, "base", &e), 0, "v3_f32 must validate: %s", e.msg);
    struct { const char *needle; ModelConfig c; } cases[6];
    for (int i = 0; i < 6; i++) cases[i].c = base;
    cases[0].needle = "topk_group", cases[0].c.topk_group = 5;
    cases[1].needle = "num_experts_per_tok", cases[1].c.num_experts_per_tok = 17;
    cases[2].needle = "qk_rope_head_dim", cases[2].c.qk_rope_head_dim = 15;
    cases[3].needle = "n_group", cases[3].c.n_routed_experts = 18;
    cases[4].needle = "num_experts_per_tok", cases[4].c.num_experts_per_tok = 9; /* > 2 groups x 4 */
    cases[5].needle = "hidden_size", cases[5].c.hidden_size = 0;
    for (int i = 0; i < 6; i++) {
        Err ei = {{0}};
        int rc = config_validate(&cases[i].c, "cfgX", &ei);
        cr_assert_eq(rc, -1, "case %d (%s): expected -1, got %d", i, cases[i].needle, rc);
        cr_assert(strstr(ei.msg, "cfgX") && strstr(ei.msg, cases[i].needle),
                  "case %d: message should name cfgX and %s, got \"%s\"", i, cases[i].needle,
                  ei.msg);
    }
    ModelConfig q = load_case("qwen2");
    cr_assert_eq(config_validate(&q, "q", &e), 0, "qwen2 must validate: %s", e.msg);
    q.num_key_value_heads = 3;
    cr_assert_eq(config_validate(&q, "q", &e), -1, "4 heads over 3 KV heads must fail");
    cr_assert(strstr(e.msg, "num_key_value_heads"), "got \"%s\"", e.msg);
}

/* Guards: a rope_scaling type whale does not implement being ignored (the
 * model would run with the wrong positions). */
Test(config, unsupported_rope_scaling) {
    EXPECT_LOAD_FAIL("config.json",
                     "{\"model_type\": \"llama\", \"rope_scaling\": "
                     "{\"type\": \"dynamic\", \"factor\": 2.0}}",
                     "rope_scaling", "dynamic");
    EXPECT_LOAD_FAIL("config2.json",
                     "{\"model_type\": \"deepseek_v3\", \"rope_scaling\": "
                     "{\"rope_type\": \"longrope\", \"factor\": 2.0}}",
                     "longrope");
    EXPECT_LOAD_FAIL("config3.json",
                     "{\"model_type\": \"deepseek_v3\", \"rope_scaling\": "
                     "{\"type\": \"yarn\", \"factor\": 0}}",
                     "factor");
}

/* ---- config_save -> config_load ----------------------------------------- */

/* Compare every field of a and b; `what` names the case. */
static void expect_same_config(const ModelConfig *a, const ModelConfig *b, const char *what) {
#define SAME(f)                                                                                  \
    cr_assert(a->f == b->f, "%s: field %s differs after save/load: %.9g -> %.9g", what, #f,      \
              (double)a->f, (double)b->f)
#define SAME_STR(f)                                                                             \
    cr_assert_str_eq(a->f, b->f, "%s: field %s differs after save/load: \"%s\" -> \"%s\"", what, \
                     #f, a->f, b->f)
    SAME(arch);
    SAME_STR(model_type);
    SAME(vocab_size);
    SAME(hidden_size);
    SAME(intermediate_size);
    SAME(num_hidden_layers);
    SAME(num_attention_heads);
    SAME(num_key_value_heads);
    SAME(head_dim);
    SAME(rms_norm_eps);
    SAME(rope_theta);
    SAME(rope.type);
    SAME(rope.factor);
    SAME(rope.original_max_position_embeddings);
    SAME(rope.beta_fast);
    SAME(rope.beta_slow);
    SAME(rope.mscale);
    SAME(rope.mscale_all_dim);
    SAME(rope.low_freq_factor);
    SAME(rope.high_freq_factor);
    SAME(max_position_embeddings);
    SAME(tie_word_embeddings);
    SAME(attention_bias);
    SAME(bos_token_id);
    SAME(eos_token_id);
    SAME_STR(torch_dtype);
    SAME(q_lora_rank);
    SAME(kv_lora_rank);
    SAME(qk_nope_head_dim);
    SAME(qk_rope_head_dim);
    SAME(v_head_dim);
    SAME(n_routed_experts);
    SAME(n_shared_experts);
    SAME(num_experts_per_tok);
    SAME(moe_intermediate_size);
    SAME(first_k_dense_replace);
    SAME(moe_layer_freq);
    SAME(n_group);
    SAME(topk_group);
    SAME(topk_method);
    SAME(scoring_func);
    SAME(norm_topk_prob);
    SAME(routed_scaling_factor);
    SAME(num_nextn_predict_layers);
    /* fp8_block_rows/cols are not compared: config_save does not write
     * quantization_config (whale saves dequantised F32/BF16 weights, which a
     * quantization_config would misdescribe). See the report of the commit. */
#undef SAME
#undef SAME_STR
}

/* Guards: config_save losing or mangling any field (floats must come back
 * bit-exact: json_realf writes the shortest round-tripping decimal). */
Test(config, save_load_roundtrip_data) {
    static const char *cases[] = {"v3_f32", "v3_bf16", "v3_fp8", "v3_yarn", "v3_671b",
                                  "v2_lite", "v2_group", "qwen2", "llama"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ModelConfig a = load_case(cases[i]), b;
        char file[64];
        snprintf(file, sizeof file, "%s.json", cases[i]);
        const char *path = h_path(g_dir, file);
        Err e = {{0}};
        cr_assert_eq(config_save(&a, path, &e), 0, "config_save(%s): %s", path, e.msg);
        cr_assert_eq(config_load(&b, path, &e), 0, "config_load(%s) of a saved config: %s", path,
                     e.msg);
        expect_same_config(&a, &b, cases[i]);
        /* saving the reloaded config gives the same file: nothing drifts */
        char file2[80];
        snprintf(file2, sizeof file2, "%s.2.json", cases[i]);
        const char *path2 = h_path(g_dir, file2);
        cr_assert_eq(config_save(&b, path2, &e), 0, "config_save(%s): %s", path2, e.msg);
        char *t1 = h_read_file(path, NULL), *t2 = h_read_file(path2, NULL);
        cr_assert(t1 && t2, "cannot read back %s / %s", path, path2);
        cr_assert_str_eq(t1, t2, "%s: second save differs from the first:\n%s\n---\n%s", cases[i],
                         t1, t2);
        free(t1);
        free(t2);
    }
}

/* Guards: the presets (built in code) surviving config_save, which is how
 * `whale init` writes them. */
Test(config, save_load_roundtrip_presets) {
    static const char *names[] = {"tiny", "small", "tiny-v2", "tiny-qwen2", "tiny-llama"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        ModelConfig a, b;
        Err e = {{0}};
        cr_assert_eq(preset_config(names[i], &a, &e), 0, "preset %s: %s", names[i], e.msg);
        cr_assert_eq(config_validate(&a, names[i], &e), 0, "preset %s does not validate: %s",
                     names[i], e.msg);
        char file[64];
        snprintf(file, sizeof file, "%s.json", names[i]);
        const char *path = h_path(g_dir, file);
        cr_assert_eq(config_save(&a, path, &e), 0, "config_save(%s): %s", path, e.msg);
        cr_assert_eq(config_load(&b, path, &e), 0, "config_load(%s): %s", path, e.msg);
        expect_same_config(&a, &b, names[i]);
    }
}
