/* SPDX-License-Identifier: MIT */
/* whale init: a random-initialised model directory (config.json,
 * model.safetensors, tokenizer.json, tokenizer_config.json,
 * generation_config.json) of a named shape or of a given config.json, so
 * that everything runs without downloads. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/model.h"
#include "model/presets.h"
#include "tokenizer/tokenizer_json.h"

static int write_generation_config(const char *dir, const ModelConfig *c, Err *err) {
    char path[4096];
    if (path_join(path, sizeof path, dir, "generation_config.json") != 0)
        return err_set(err, "%s: path too long", dir);
    char text[256];
    int n = snprintf(text, sizeof text,
                     "{\n  \"bos_token_id\": %d,\n  \"eos_token_id\": %d,\n  \"do_sample\": true,\n"
                     "  \"temperature\": 0.6,\n  \"top_p\": 0.95\n}\n",
                     c->bos_token_id, c->eos_token_id);
    return file_write_atomic(path, text, (size_t)n, err);
}

/* The tokenizer must fit vocab_size: checked before anything is written,
 * so a refused init leaves no half-written model behind. A given tokenizer
 * with more ids than the config's vocab_size grows it (to a multiple of 8,
 * as the recipe configs round): a tokenizer trained with up to N ids
 * (tokenizer-train) and one config then serve any corpus. */
static int check_tokenizer(const char *tok_dir, ModelConfig *c, Err *err) {
    if (!tok_dir) {
        if (tokjson_bytelevel_size(0) > c->vocab_size)
            return err_set(err, "vocab_size %d is too small for the byte-level tokenizer (needs %d)",
                           c->vocab_size, tokjson_bytelevel_size(0));
        return 0;
    }
    char from[4096];
    if (path_join(from, sizeof from, tok_dir, "tokenizer.json") != 0)
        return err_set(err, "%s: path too long", tok_dir);
    int max_id;
    if (tokjson_max_id(from, &max_id, err) != 0) return -1;
    if (max_id >= c->vocab_size) {
        int grown = (max_id + 1 + 7) / 8 * 8;
        log_info("whale init: vocab_size %d -> %d to fit %s (ids up to %d)", c->vocab_size, grown,
                 from, max_id);
        c->vocab_size = grown;
    }
    return 0;
}

/* Tokenizer: the given one or whale's byte-level BPE. */
static int write_tokenizer(const char *out, const char *tok_dir, Err *err) {
    char from[4096], to[4096];
    if (!tok_dir) return tokjson_write_bytelevel(out, NULL, 0, err);
    if (path_join(from, sizeof from, tok_dir, "tokenizer.json") != 0 ||
        path_join(to, sizeof to, out, "tokenizer.json") != 0)
        return err_set(err, "%s: path too long", tok_dir);
    if (file_copy(from, to, err) != 0) return -1;
    if (path_join(from, sizeof from, tok_dir, "tokenizer_config.json") == 0 && file_exists(from) &&
        path_join(to, sizeof to, out, "tokenizer_config.json") == 0)
        return file_copy(from, to, err);
    return 0;
}

int cmd_init(int argc, char **argv) {
    const char *preset = NULL, *config = NULL, *out = NULL, *model = NULL, *tok = NULL;
    const char *dtype = "f32";
    int seed = 0, force = 0, threads = 0;
    float std = 0.02f;
    ArgSpec specs[] = {
        {"preset", 'p', ARG_STR, &preset, "NAME: model shape (tiny small tiny-v2 tiny-qwen2 tiny-llama)"},
        {"config", 'c', ARG_STR, &config, "FILE: an HF config.json instead of a preset"},
        {"out", 'o', ARG_STR, &out, "DIR: output model directory"},
        {"tokenizer", 0, ARG_STR, &tok, "DIR: copy this tokenizer.json instead of the byte-level one"},
        {"dtype", 0, ARG_STR, &dtype, "f32|bf16: storage type of the weights (default f32)"},
        {"std", 0, ARG_FLOAT, &std, "X: init standard deviation of matrices (default 0.02)"},
        {"seed", 0, ARG_INT, &seed, "N: random seed (default 0)"},
        {"force", 'f', ARG_FLAG, &force, "overwrite an existing model in DIR"},
        {"model", 'm', ARG_STR, &model, "DIR: the same as --out"},
        {"threads", 't', ARG_INT, &threads, "N: threads (initialisation runs on one)"},
    };
    int r = args_parse("init", "(--preset NAME | --config FILE) --out DIR [flags]", specs,
                       (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (out && model) return cli_fail("init", "give --out or -m, not both"), 2;
    if (!out) out = model;
    if (!out) return cli_fail("init", "--out DIR is required"), 2;
    if (!!preset == !!config) return cli_fail("init", "give exactly one of --preset or --config"), 2;
    DType type;
    if (!strcmp(dtype, "f32")) type = DTYPE_F32;
    else if (!strcmp(dtype, "bf16")) type = DTYPE_BF16;
    else return cli_fail("init", "--dtype must be f32 or bf16, not '%s'", dtype), 2;
    if (!(std > 0)) return cli_fail("init", "--std must be positive"), 2;

    Err err = {0};
    ModelConfig cfg;
    if (preset ? preset_config(preset, &cfg, &err) : config_load(&cfg, config, &err))
        return cli_fail("init", "%s", err.msg);
    snprintf(cfg.torch_dtype, sizeof cfg.torch_dtype, "%s", type == DTYPE_BF16 ? "bfloat16" : "float32");

    if (check_tokenizer(tok, &cfg, &err) != 0) return cli_fail("init", "%s", err.msg);
    char path[4096];
    if (dir_create(out, &err) != 0) return cli_fail("init", "%s", err.msg);
    if (path_join(path, sizeof path, out, "model.safetensors") != 0)
        return cli_fail("init", "%s: path too long", out);
    if (file_exists(path) && !force)
        return cli_fail("init", "%s already exists (use --force to overwrite)", path);

    Model m;
    if (model_create_as(&m, &cfg, type == DTYPE_BF16 ? QTYPE_BF16 : QTYPE_F32, &err) != 0)
        return cli_fail("init", "%s", err.msg);
    weights_init_random(&m.w, (uint64_t)seed, std);
    int rc = 1;
    if (weights_save(&m.w, path, type, &err) != 0) goto done;
    if (path_join(path, sizeof path, out, "config.json") != 0 ||
        config_save(&cfg, path, &err) != 0)
        goto done;
    if (write_tokenizer(out, tok, &err) != 0 || write_generation_config(out, &cfg, &err) != 0)
        goto done;
    ParamCount pc = config_count_params(&m.cfg);
    log_info("whale init: wrote %s (%s, %.2fM parameters%s, %s)", out, config_arch_name(cfg.arch),
             (double)(pc.total + pc.mtp) / 1e6, pc.mtp ? " incl. MTP" : "", dtype);
    rc = 0;
done:
    if (rc) cli_fail("init", "%s", err.msg);
    model_free(&m);
    return rc;
}
