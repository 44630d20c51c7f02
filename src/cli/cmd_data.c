/* SPDX-License-Identifier: MIT */
/* whale data: text and JSONL files into the token shards the trainer reads
 * (train/data_build.h does the work; the format is io/tokshard.h). The
 * tokenizer comes from -m (a model directory, or a directory or file with
 * only tokenizer.json); the vocab_size recorded in the shards from the
 * model's config.json when there is one, else the tokenizer's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/log.h"
#include "base/threads.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/inputs.h"
#include "io/config.h"
#include "tokenizer/tokenizer_json.h"
#include "train/data_build.h"

#define CMD "data"

int cmd_data(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *tmpl_name = NULL, *input_help = NULL;
    int shard_tokens = DATA_BUILD_SHARD_TOKENS_DEFAULT, val_docs = -1, no_bos = 0, threads = 0,
        seed = 0;
    float val_fraction = -1; /* not given */
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model,
         "PATH: model directory (tokenizer.json, config.json) or a tokenizer alone"},
        {"input", 'i', ARG_STR, &input_help,
         "FILES: text files (one document each), .jsonl files ({\"text\"} or {\"messages\"} per "
         "line), directories; several after one --input, comma-separated, or repeated"},
        {"out", 'o', ARG_STR, &out, "DIR: where train-NNNNN.bin and val-NNNNN.bin go"},
        {"shard-tokens", 0, ARG_INT, &shard_tokens, "N: tokens per shard (default 16777216)"},
        {"val-fraction", 0, ARG_FLOAT, &val_fraction,
         "X: share of documents for val (default 0.01; at least 1 doc when there are 2+)"},
        {"val-docs", 0, ARG_INT, &val_docs, "N: exactly N val documents (instead of --val-fraction)"},
        {"no-bos", 0, ARG_FLAG, &no_bos, "do not put BOS before each document (EOS always ends one)"},
        {"chat-template", 0, ARG_STR, &tmpl_name,
         "NAME: template for {\"messages\"} lines (default: the model's)"},
        {"threads", 't', ARG_INT, &threads,
         "N: tokenizer threads (default: all cores, one per 8 MB of input at most)"},
        {"seed", 0, ARG_INT, &seed, "N: unused (the output is deterministic)"},
    };
    char **rest = malloc((size_t)(argc + 1) * sizeof *rest), **inputs = NULL;
    int n_rest = 0, n_inputs = 0, rc = 2, n_toks = 0;
    Tokenizer **toks = NULL;
    Err err = {{0}};
    if (!rest) return cli_fail(CMD, "out of memory");
    if ((n_inputs = cli_take_inputs(CMD, argc, argv, rest, &n_rest, &inputs)) < 0) {
        n_inputs = 0;
        goto done;
    }
    int r = args_parse(CMD, "-m PATH --input FILES... --out DIR [flags]", specs,
                       (int)(sizeof specs / sizeof specs[0]), n_rest, rest);
    if (r) {
        rc = r > 0 ? 0 : 2;
        goto done;
    }
    if (!model || !out || n_inputs == 0) {
        cli_fail(CMD, "-m PATH, --input FILES and --out DIR are required");
        goto done;
    }
    if (shard_tokens < 1) {
        cli_fail(CMD, "--shard-tokens must be at least 1, not %d", shard_tokens);
        goto done;
    }
    if (val_fraction != -1 && val_docs != -1) {
        cli_fail(CMD, "give --val-fraction or --val-docs, not both");
        goto done;
    }
    if (val_fraction != -1 && !(val_fraction >= 0 && val_fraction < 1)) {
        cli_fail(CMD, "--val-fraction must be in [0, 1), not %g", (double)val_fraction);
        goto done;
    }
    if (val_docs < -1) {
        cli_fail(CMD, "--val-docs must be at least 0, not %d", val_docs);
        goto done;
    }
    if (cli_threads(CMD, threads) != 0) goto done;
    rc = 1;
    if (path_has_suffix(model, ".gguf")) {
        cli_fail(CMD, "%s: give the model directory (with tokenizer.json), not a .gguf", model);
        goto done;
    }
    if (!file_exists(model)) {
        cli_fail(CMD, "%s: no such file or directory", model);
        goto done;
    }

    DataBuildOpts o;
    data_build_opts_default(&o);
    o.inputs = (const char *const *)inputs;
    o.n_inputs = n_inputs;
    o.out_dir = out;
    o.shard_tokens = shard_tokens;
    if (val_fraction != -1) { /* the decimal the user wrote, not the float nearest to it */
        char buf[32];
        snprintf(buf, sizeof buf, "%.7g", (double)val_fraction);
        o.val_fraction = strtod(buf, NULL);
    }
    o.val_docs = val_docs;
    o.no_bos = no_bos;
    o.progress = 1;

    /* config.json, when the tokenizer sits in a model directory */
    char dir[4096], cfg_path[4200];
    ModelConfig cfg;
    int have_cfg = 0;
    path_dir_of(model, dir, sizeof dir);
    if (path_join(cfg_path, sizeof cfg_path, dir, "config.json") == 0 && file_exists(cfg_path)) {
        if (config_load(&cfg, dir, &err) != 0) goto fail;
        have_cfg = 1;
    }

    /* one tokenizer per thread, each with its own warm word cache. Loading
     * one costs about as much CPU as encoding 10 MB with it, so without -t
     * a small corpus gets fewer threads (one per 8 MB); -t N is obeyed. */
    n_toks = threads_max();
    if (threads == 0) {
        int64_t bytes = data_build_input_bytes(&o, &err);
        if (bytes < 0) goto fail;
        if (1 + bytes / (8 << 20) < n_toks) n_toks = (int)(1 + bytes / (8 << 20));
    }
    toks = calloc((size_t)n_toks, sizeof *toks);
    if (!toks) {
        err_set(&err, "out of memory");
        goto fail;
    }
    int loaded = 0;
    /* loading a 128k-token tokenizer takes a few tenths of a second: in parallel */
#pragma omp parallel for schedule(static, 1) reduction(+ : loaded)
    for (int i = 0; i < n_toks; i++) {
        Err e;
        toks[i] = tokenizer_load(model, &e);
        loaded += toks[i] != NULL;
        if (i == 0 && !toks[i]) err = e;
    }
    if (loaded < n_toks) {
        if (toks[0]) err_set(&err, "%s: cannot load the tokenizer", model);
        goto fail;
    }
    int nv = tokenizer_n_vocab(toks[0]);
    o.vocab_size = (uint32_t)(have_cfg ? cfg.vocab_size : nv);
    if (have_cfg && nv > cfg.vocab_size) {
        err_set(&err, "%s: the tokenizer has %d ids, more than vocab_size %d", cfg_path, nv,
                cfg.vocab_size);
        goto fail;
    }
    if (tmpl_name) {
        if (chat_template_from_name(tmpl_name, &o.tmpl, &err) != 0) goto fail;
    } else {
        o.tmpl = chat_template_select(tokenizer_chat_template(toks[0]),
                                      have_cfg ? cfg.model_type : NULL,
                                      tokenizer_token_id(toks[0], TOK_USER) >= 0,
                                      tokenizer_token_id(toks[0], "<think>") >= 0);
    }

    DataBuildStats st;
    if (data_build(toks, n_toks, &o, &st, &err) != 0) goto fail;
    log_info("whale data: %lld docs (%lld val) -> train %lld tokens in %d shards, val %lld tokens "
             "in %d shards; %.1f MB in %.2f s (%.2f MB/s, %d threads, vocab %u) -> %s",
             (long long)st.n_docs, (long long)st.n_val_docs, (long long)st.n_tokens[0],
             st.n_shards[0], (long long)st.n_tokens[1], st.n_shards[1], (double)st.n_bytes / 1e6,
             st.secs, st.secs > 0 ? (double)st.n_bytes / 1e6 / st.secs : 0.0, n_toks, o.vocab_size,
             out);
    rc = 0;
    goto done;
fail:
    cli_fail(CMD, "%s", err.msg);
done:
    for (int i = 0; toks && i < n_toks; i++) tokenizer_free(toks[i]);
    free(toks);
    cli_inputs_free(inputs, n_inputs);
    free(rest);
    return rc;
}
