/* SPDX-License-Identifier: MIT */
/* whale info: what a model is: architecture, shapes, total and active
 * parameters, KV-cache bytes per token (what kvcache_init allocates), and the
 * stored dtypes. Works on a directory holding only config.json. */
#include <stdio.h>
#include <string.h>

#include "base/file.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "io/config.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/gguf_load.h"
#include "model/kvcache.h"

static void print_dtypes(const char *path, int json) {
    SafeTensors st;
    Err err = {0};
    char p[4096];
    int have = file_is_dir(path) ? (path_join(p, sizeof p, path, "model.safetensors") == 0 &&
                                     file_exists(p)) ||
                                        (path_join(p, sizeof p, path,
                                                   "model.safetensors.index.json") == 0 &&
                                         file_exists(p))
                                 : 1;
    if (!have || st_open(&st, path, &err) != 0) {
        if (json) printf(", \"dtypes\": {}");
        else if (have) printf("weights:      unreadable: %s\n", err.msg);
        else printf("weights:      none (config only)\n");
        return;
    }
    int count[DTYPE_COUNT] = {0};
    double bytes[DTYPE_COUNT] = {0}, total = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        count[st.tensors[i].dtype]++;
        bytes[st.tensors[i].dtype] += (double)st.tensors[i].n_bytes;
        total += (double)st.tensors[i].n_bytes;
    }
    if (json) printf(", \"dtypes\": {");
    else printf("weights:      %d tensors in %d file%s, %.1f MB:", st.n_tensors, st.n_files,
                st.n_files == 1 ? "" : "s", total / 1e6);
    int first = 1;
    for (int t = 0; t < DTYPE_COUNT; t++) {
        if (!count[t]) continue;
        if (json) printf("%s\"%s\": %d", first ? "" : ", ", dtype_name(t), count[t]);
        else printf(" %s %d (%.1f MB)", dtype_name(t), count[t], bytes[t] / 1e6);
        first = 0;
    }
    printf(json ? "}" : "\n");
    st_close(&st);
}

/* A .gguf file: config from its metadata, tensor counts by ggml type. */
static int load_gguf_info(const char *path, ModelConfig *c, int json, char *dtypes, size_t n,
                          Err *err) {
    GgufFile g;
    if (gguf_open(&g, path, err) != 0) return -1;
    if (gguf_model_config(&g, c, err) != 0) {
        gguf_close(&g);
        return -1;
    }
    int count[GGML_TYPE_COUNT] = {0};
    double bytes[GGML_TYPE_COUNT] = {0}, total = 0;
    for (int i = 0; i < g.n_tensors; i++) {
        if (g.tensors[i].type < GGML_TYPE_COUNT) {
            count[g.tensors[i].type]++;
            bytes[g.tensors[i].type] += (double)g.tensors[i].n_bytes;
        }
        total += (double)g.tensors[i].n_bytes;
    }
    size_t k = (size_t)snprintf(dtypes, n, json ? ", \"dtypes\": {" : "weights:      %d tensors in "
                                "1 GGUF v%u file, %.1f MB:", g.n_tensors, g.version, total / 1e6);
    int first = 1;
    for (int t = 0; t < GGML_TYPE_COUNT && k < n; t++) {
        if (!count[t]) continue;
        if (json) k += (size_t)snprintf(dtypes + k, n - k, "%s\"%s\": %d", first ? "" : ", ",
                                        gguf_type_name((uint32_t)t), count[t]);
        else k += (size_t)snprintf(dtypes + k, n - k, " %s %d (%.1f MB)",
                                   gguf_type_name((uint32_t)t), count[t], bytes[t] / 1e6);
        first = 0;
    }
    if (k < n) snprintf(dtypes + k, n - k, json ? "}" : "\n");
    gguf_close(&g);
    return 0;
}

static void fmt_params(char *buf, size_t n, long long p) {
    if (p >= 1000000000LL) snprintf(buf, n, "%.2fB", (double)p / 1e9);
    else if (p >= 1000000LL) snprintf(buf, n, "%.2fM", (double)p / 1e6);
    else snprintf(buf, n, "%lld", p);
}

int cmd_info(int argc, char **argv) {
    const char *model = NULL;
    int json = 0, threads = 0, seed = 0;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model, "PATH: model directory (config.json is enough)"},
        {"json", 0, ARG_FLAG, &json, "print one JSON object"},
        {"threads", 't', ARG_INT, &threads, "N: threads (unused by info)"},
        {"seed", 0, ARG_INT, &seed, "N: unused by info"},
    };
    int r = args_parse("info", "-m PATH [--json]", specs, (int)(sizeof specs / sizeof specs[0]),
                       argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!model) return cli_fail("info", "-m PATH is required"), 2;
    Err err = {0};
    ModelConfig c;
    char dir[4096], gguf_dtypes[2048] = "";
    int is_gguf = path_has_suffix(model, ".gguf");
    /* a config.json path is read as it is; a .safetensors file reads the
     * config.json beside it; a .gguf holds its own config */
    if (path_has_suffix(model, ".json")) snprintf(dir, sizeof dir, "%s", model);
    else path_dir_of(model, dir, sizeof dir);
    if (!file_exists(model)) return cli_fail("info", "%s: no such file or directory", model);
    if (is_gguf ? load_gguf_info(model, &c, json, gguf_dtypes, sizeof gguf_dtypes, &err)
                : config_load(&c, dir, &err))
        return cli_fail("info", "%s", err.msg);
    ParamCount pc = config_count_params(&c);
    long long kv_f32 = kvcache_bytes_per_token(&c, DTYPE_F32);
    long long kv_bf16 = kvcache_bytes_per_token(&c, DTYPE_BF16);
    long long per_layer = config_kv_numbers_per_token_layer(&c);
    int n_moe = 0;
    for (int l = 0; l < c.num_hidden_layers; l++) n_moe += config_layer_is_moe(&c, l);

    if (json) {
        printf("{\"arch\": \"%s\", \"layers\": %d, \"moe_layers\": %d, \"mtp_modules\": %d, "
               "\"hidden_size\": %d, \"vocab_size\": %d, \"params_total\": %lld, "
               "\"params_active\": %lld, \"params_mtp\": %lld, "
               "\"kv_numbers_per_token_layer\": %lld, \"kv_bytes_per_token_f32\": %lld, "
               "\"kv_bytes_per_token_bf16\": %lld",
               config_arch_name(c.arch), c.num_hidden_layers, n_moe, c.num_nextn_predict_layers,
               c.hidden_size, c.vocab_size, (long long)pc.total, (long long)pc.active,
               (long long)pc.mtp, per_layer, kv_f32, kv_bf16);
        if (is_gguf) fputs(gguf_dtypes, stdout);
        else print_dtypes(model, 1);
        printf("}\n");
        return 0;
    }
    char tot[32], act[32], mtp[32];
    fmt_params(tot, sizeof tot, pc.total);
    fmt_params(act, sizeof act, pc.active);
    fmt_params(mtp, sizeof mtp, pc.mtp);
    printf("model:        %s\n", model);
    printf("architecture: %s\n", config_arch_name(c.arch));
    printf("layers:       %d (%d dense, %d MoE)%s, hidden %d, vocab %d\n", c.num_hidden_layers,
           c.num_hidden_layers - n_moe, n_moe,
           c.num_nextn_predict_layers ? " + MTP" : "", c.hidden_size, c.vocab_size);
    if (config_is_mla(&c)) {
        printf("attention:    MLA, %d heads, q_lora %d, kv_lora %d, qk %d+%d (nope+rope), v %d\n",
               c.num_attention_heads, c.q_lora_rank, c.kv_lora_rank, c.qk_nope_head_dim,
               c.qk_rope_head_dim, c.v_head_dim);
    } else {
        printf("attention:    GQA, %d heads, %d KV heads, head dim %d%s\n", c.num_attention_heads,
               c.num_key_value_heads, c.head_dim, c.attention_bias ? ", QKV bias" : "");
    }
    if (c.rope.type == ROPE_YARN)
        printf("rope:         YaRN factor %g over %d positions, theta %g\n", (double)c.rope.factor,
               c.rope.original_max_position_embeddings, (double)c.rope_theta);
    else if (c.rope.type == ROPE_LLAMA3)
        printf("rope:         llama3 factor %g, theta %g\n", (double)c.rope.factor,
               (double)c.rope_theta);
    if (n_moe) {
        static const char *tm[] = {"greedy", "group_limited_greedy", "noaux_tc"};
        printf("moe:          %d routed experts (top-%d, %d groups keep %d, %s, %s) + %d shared, "
               "width %d\n",
               c.n_routed_experts, c.num_experts_per_tok, c.n_group, c.topk_group,
               tm[c.topk_method], c.scoring_func == SCORE_SIGMOID ? "sigmoid" : "softmax",
               c.n_shared_experts, c.moe_intermediate_size);
    }
    printf("parameters:   %s total, %s active per token", tot, act);
    if (pc.mtp) printf(", %s in MTP modules", mtp);
    printf("\n");
    printf("kv cache:     %lld numbers per token per layer x %d layers = %lld bytes/token in "
           "bf16, %lld in f32\n",
           per_layer, c.num_hidden_layers, kv_bf16, kv_f32);
    if (is_gguf) fputs(gguf_dtypes, stdout);
    else print_dtypes(model, 0);
    return 0;
}
