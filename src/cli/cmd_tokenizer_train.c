/* SPDX-License-Identifier: MIT */
/* whale tokenizer-train: learn a byte-level BPE from text and JSONL files
 * and write DIR/tokenizer.json + tokenizer_config.json in the layout of
 * whale init's tokenizer (tokenizer/bpe_train.h, tokenizer/tokenizer_json.h).
 * Counting and merging run on one thread; progress goes to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/inputs.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/corpus.h"
#include "tokenizer/tokenizer_json.h"

#define CMD "tokenizer-train"

static int add_doc(void *ctx, const char *text, size_t len, Err *err) {
    return bpe_counts_add_text(ctx, text, len, err);
}

int cmd_tokenizer_train(int argc, char **argv) {
    const char *out = NULL, *model = NULL, *input_help = NULL;
    int vocab = 0, min_count = 2, threads = 0, seed = 0, force = 0, split_digits = 0;
    ArgSpec specs[] = {
        {"input", 'i', ARG_STR, &input_help,
         "FILES: text or .jsonl files; several after one --input, comma-separated, or repeated"},
        {"vocab", 'v', ARG_INT, &vocab,
         "N: ids in all, incl. 3 specials, 256 bytes, 6 chat and answer markers"},
        {"out", 'o', ARG_STR, &out, "DIR: where tokenizer.json and tokenizer_config.json go"},
        {"min-count", 0, ARG_INT, &min_count,
         "N: merge only pairs seen at least N times (default 2)"},
        {"split-digits", 0, ARG_FLAG, &split_digits,
         "never merge a digit with anything: numbers stay one token per digit"},
        {"force", 'f', ARG_FLAG, &force, "overwrite an existing DIR/tokenizer.json"},
        {"model", 'm', ARG_STR, &model, "DIR: the same as --out"},
        {"threads", 't', ARG_INT, &threads, "N: threads (training runs on one)"},
        {"seed", 0, ARG_INT, &seed, "N: accepted for uniformity; training is deterministic"},
    };
    char **rest = malloc((size_t)(argc + 1) * sizeof *rest);
    int n_rest, rc = 2, n_paths = 0;
    char **paths = NULL;
    BpeCounts counts = {0};
    BpeMerges merges = {0};
    Err err = {0};
    if (!rest) {
        rc = cli_fail(CMD, "out of memory");
        goto done;
    }
    if ((n_paths = cli_take_inputs(CMD, argc, argv, rest, &n_rest, &paths)) < 0) {
        n_paths = 0;
        goto done;
    }
    int r = args_parse(CMD, "--input FILES --vocab N --out DIR [flags]", specs,
                       (int)(sizeof specs / sizeof specs[0]), n_rest, rest);
    if (r) {
        rc = r > 0 ? 0 : 2;
        goto done;
    }
    if (out && model) {
        cli_fail(CMD, "give --out or -m, not both");
        goto done;
    }
    if (!out) out = model;
    if (!out) {
        cli_fail(CMD, "--out DIR is required");
        goto done;
    }
    if (cli_threads(CMD, threads) != 0) goto done;
    if (vocab <= 0) {
        cli_fail(CMD, "--vocab N is required (a positive number of ids)");
        goto done;
    }
    if (min_count < 1) {
        cli_fail(CMD, "--min-count must be at least 1, not %d", min_count);
        goto done;
    }
    if (n_paths == 0) {
        cli_fail(CMD, "--input FILES is required");
        goto done;
    }
    rc = 1;
    if (vocab < tokjson_bytelevel_size(0)) {
        cli_fail(CMD, "--vocab %d is below the byte-level base of %d ids (3 special tokens, 256 "
                 "bytes, %d chat markers)", vocab, tokjson_bytelevel_size(0),
                 tokjson_bytelevel_size(0) - 259);
        goto done;
    }
    char path[4096];
    if (path_join(path, sizeof path, out, "tokenizer.json") != 0) {
        cli_fail(CMD, "%s: path too long", out);
        goto done;
    }
    if (file_exists(path) && !force) {
        cli_fail(CMD, "%s already exists (use --force to overwrite)", path);
        goto done;
    }
    for (int i = 0; i < n_paths; i++) /* before the long part: a typo fails at once */
        if (!file_exists(paths[i]) || file_is_dir(paths[i])) {
            cli_fail(CMD, "%s: %s", paths[i],
                     file_exists(paths[i]) ? "is a directory" : "no such file");
            goto done;
        }

    double t0 = time_now();
    size_t n_docs = 0;
    if (bpe_counts_init(&counts, &err) != 0) goto fail;
    for (int i = 0; i < n_paths; i++) {
        size_t d;
        if (corpus_read_file(paths[i], add_doc, &counts, &d, &err) != 0) goto fail;
        n_docs += d;
    }
    double t1 = time_now();
    log_info(CMD ": %.2f MB in %d file%s (%zu document%s): %llu words, %zu distinct, counted in "
             "%.2f s (%.1f MB/s)", (double)counts.n_text_bytes / 1e6, n_paths,
             n_paths == 1 ? "" : "s", n_docs, n_docs == 1 ? "" : "s",
             (unsigned long long)counts.n_occurrences, counts.words.n, t1 - t0,
             (double)counts.n_text_bytes / 1e6 / (t1 - t0 > 1e-9 ? t1 - t0 : 1e-9));
    BpeTrainOpts opts = {.vocab_size = vocab, .min_count = min_count, .split_digits = split_digits};
    if (bpe_train(&counts, &opts, &merges, &err) != 0) goto fail;
    double t2 = time_now();
    if (merges.stopped_early)
        log_warn(CMD ": no pair occurs %d times or more after %d merges: the tokenizer has %d ids, "
                 "not %d", min_count, merges.n, merges.n_vocab, vocab);
    if (dir_create(out, &err) != 0 ||
        tokjson_write_bytelevel(out, (const char *const(*)[2])merges.pair, merges.n, &err) != 0)
        goto fail;
    double t3 = time_now();
    log_info(CMD ": %d merges, %d ids in %.2f s (%.0f merges/s; %.2f s in all, %.2f MB/s); "
             "wrote %s", merges.n, merges.n_vocab, t2 - t1,
             merges.n / (t2 - t1 > 1e-9 ? t2 - t1 : 1e-9), t3 - t0,
             (double)counts.n_text_bytes / 1e6 / (t3 - t0), path);
    rc = 0;
    goto done;
fail:
    rc = cli_fail(CMD, "%s", err.msg);
done:
    bpe_merges_free(&merges);
    bpe_counts_free(&counts);
    cli_inputs_free(paths, n_paths);
    free(rest);
    return rc;
}
