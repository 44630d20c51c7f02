/* SPDX-License-Identifier: MIT */
/* From documents to token shards, the engine of `whale data`: plain text
 * files (one document each) and JSONL files ({"text": ...} or {"messages":
 * [...]} rendered with a chat template, one document per line) are
 * tokenized in parallel, framed BOS ... EOS, split into train and val by
 * document, and written as train-NNNNN.bin / val-NNNNN.bin (io/tokshard.h).
 * The output depends only on the inputs, the tokenizer and the options,
 * not on the thread count. */
#ifndef WHALE_DATA_BUILD_H
#define WHALE_DATA_BUILD_H

#include <stdint.h>

#include "base/err.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

#define DATA_BUILD_SHARD_TOKENS_DEFAULT (16 * 1024 * 1024) /* 64 MiB of ids per shard */
#define DATA_BUILD_VAL_FRACTION_DEFAULT 0.01

typedef struct DataBuildOpts {
    const char *const *inputs; /* (n_inputs) files; a directory stands for its regular files,
                                  sorted by name, hidden ones skipped (not recursive).
                                  `.jsonl` files hold one JSON object per line; anything
                                  else is one text document */
    int n_inputs;
    const char *out_dir;       /* created if missing */
    int64_t shard_tokens;      /* ids per shard (the last of a split may hold fewer) */
    double val_fraction;       /* share of documents for val, [0, 1), used when val_docs < 0 */
    int64_t val_docs;          /* exact number of val documents; < 0: from val_fraction */
    int no_bos;                /* 1: documents are not preceded by BOS */
    ChatTemplateKind tmpl;     /* for {"messages": ...} lines */
    uint32_t vocab_size;       /* recorded in the headers; every id must be below it */
    int progress;              /* 1: a progress line on stderr about once a second */
} DataBuildOpts;

/* Defaults: DATA_BUILD_SHARD_TOKENS_DEFAULT, DATA_BUILD_VAL_FRACTION_DEFAULT,
 * val_docs -1, BOS on, CHAT_DEEPSEEK_V3, progress off; inputs, out_dir and
 * vocab_size must be set by the caller. */
void data_build_opts_default(DataBuildOpts *o);

typedef struct DataBuildStats {
    int64_t n_docs, n_val_docs;
    int64_t n_tokens[2]; /* train, val */
    int n_shards[2];     /* train, val */
    uint64_t n_bytes;    /* input bytes read (whole files) */
    double secs;
} DataBuildStats;

/* The number of val documents for n_docs documents: val_docs when >= 0
 * (at most n_docs - 1), else round(n_docs * val_fraction), at least 1 when
 * val_fraction > 0 and n_docs >= 2, at most n_docs - 1 (train always keeps
 * one). Document i (0-based, input order) is a val document when
 * floor((i + 1) * n_val / n_docs) > floor(i * n_val / n_docs): spread evenly
 * over the inputs, not all taken from the last file. */
int64_t data_build_n_val(int64_t n_docs, double val_fraction, int64_t val_docs);

/* The bytes data_build would read: the sizes of the input files, with
 * directories expanded. -1 with err for a missing input. Lets a caller
 * size its thread count before loading a tokenizer per thread. */
int64_t data_build_input_bytes(const DataBuildOpts *o, Err *err);

/* Tokenize o->inputs into o->out_dir. toks: n_toks tokenizers loaded from
 * the same tokenizer.json; n_toks OpenMP threads tokenize, thread i with
 * toks[i] (each keeps its own word cache warm: encoding from a shared one
 * runs at half speed). Every document is [BOS] + ids + EOS; neither is
 * doubled when the text already begins with BOS or ends with EOS (a chat
 * template's markers), and a tokenizer without an EOS id is refused. Shard
 * files of earlier runs beyond the ones written are removed, so the
 * directory holds exactly this corpus. Errors name the file (and line for
 * JSONL). Returns 0 with *st filled, or -1 with err (the shards already
 * committed stay; no half-written file is left). */
int data_build(Tokenizer *const *toks, int n_toks, const DataBuildOpts *o, DataBuildStats *st,
                 Err *err);

#endif
