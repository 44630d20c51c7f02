/* SPDX-License-Identifier: MIT */
/* The trainer's data loader: the token shards of one split (`train` or
 * `val`) that `whale data` wrote into a directory, mapped read-only and
 * checked once at open; training windows drawn from (seed, index) alone, so
 * a resumed run sees the same samples; evaluation windows in order. The
 * shard file format is io/tokshard.h (docs/formats.md, "Token shards"). */
#ifndef WHALE_DATA_H
#define WHALE_DATA_H

#include <stdint.h>

#include "base/err.h"
#include "base/file.h"
#include "io/tokshard.h"

/* One mapped shard. */
typedef struct TokenShard {
    MappedFile mf;
    const unsigned char *ids; /* (n_tokens) little-endian uint32, inside mf */
    int64_t n_tokens;
    int64_t *doc_starts;      /* (n_docs) ascending, after shards_index_docs; else NULL */
    int64_t n_docs;
} TokenShard;

/* The mapped shards of one split, in file-number order. Read-only once
 * open: any number of threads may sample from it at once. */
typedef struct TokenShards {
    TokenShard *shards; /* (n_shards) */
    int n_shards;
    int64_t n_tokens;   /* over all shards */
    int vocab_size;     /* from the headers (all equal) */
    int bos_id, eos_id; /* from the headers (all equal); -1: none */
    char *dir;          /* owned copy, for messages */
    char split[16];
} TokenShards;

/* Open every shard `split`-NNNNN.bin of dir (split: "train" or "val"; the
 * numbers must run 0, 1, 2, ... without a gap or a duplicate) and check each
 * with tokshard_parse: magic, version, token count against the file size,
 * checksum, every id below the header's vocab_size. With vocab_size > 0 each
 * header's vocab_size must equal it: otherwise the error names the file and
 * both sizes ("tokenizer/model vocab mismatch"); with vocab_size <= 0 that
 * comparison is skipped, but all shards must agree with one another (vocab,
 * bos, eos). No shard at all is an error. Shards are checked in parallel
 * (OpenMP). Returns 0, or -1 with err naming the file; s is then zeroed.
 * Free with shards_close. */
int shards_open(TokenShards *s, const char *dir, const char *split, int vocab_size, Err *err);
void shards_close(TokenShards *s); /* accepts a zeroed struct */

/* Tokens over all shards. */
int64_t shards_n_tokens(const TokenShards *s);

/* Window number `index` of n consecutive tokens into out (n ids), drawn
 * from (seed, index) alone: uniform over every start position of every
 * shard at which n tokens fit, i.e. a shard with probability proportional
 * to its usable windows (n_tokens - n + 1), then a uniform start in it.
 * After shards_index_docs, the start positions are the document starts at
 * which n tokens fit instead (a window runs on into the next documents).
 * Windows never cross shards. A resumed run that asks for the same indices
 * gets the same windows. Thread-safe; O(n_shards + n). Returns 0, or -1
 * with err when n <= 0 or no shard holds n tokens. */
int shards_sample(const TokenShards *s, uint64_t seed, uint64_t index, int n, int32_t *out,
                  Err *err);

/* Index the document starts of every shard, for shards_sample to draw
 * windows that begin at one (--doc-start: a short document then always
 * has its beginning, e.g. a problem statement, in view). A document starts
 * at each BOS id, or, when the shards have no BOS, at 0 and after each EOS.
 * 0, or -1 with err (out of memory, or no BOS and no EOS to tell documents
 * apart). */
int shards_index_docs(TokenShards *s, Err *err);

/* The non-overlapping windows of n tokens, for evaluation: shard by shard,
 * starts 0, n, 2n, ... of each shard (a shard's tail shorter than n is
 * skipped); after shards_index_docs, each window starts at the first
 * document start at or after the previous window's end instead, so that
 * evaluation sees windows like the --doc-start training windows.
 * shards_n_windows is their number (0 for n <= 0);
 * shards_window copies window k (0-based) into out and returns 0, or -1
 * when k is out of range or n <= 0; over indexed documents it walks from
 * the shard's start, O(k log documents), which an evaluation's few
 * hundred windows afford. */
int64_t shards_n_windows(const TokenShards *s, int n);
int shards_window(const TokenShards *s, int64_t k, int n, int32_t *out);

/* How many shard files `split`-NNNNN.bin dir holds (without opening them):
 * lets a caller tell "no val split" from a broken one. 0 when none or when
 * dir cannot be read. */
int shards_count(const char *dir, const char *split);

/* The number of a shard file name `split`-DIGITS.bin (1 to 9 digits; the
 * writer uses `%s-%05d.bin`), or -1 for any other name. */
long shards_file_number(const char *name, const char *split);

#endif
