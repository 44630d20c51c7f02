/* SPDX-License-Identifier: MIT */
/* Token shard files (`train-00000.bin`, `val-00000.bin`): a 64-byte
 * little-endian header then uint32 token ids. `whale data` writes them
 * (atomically, streamed), the trainer's loader (train/data.h) maps and
 * checks them. The parser is the fuzz entry point (tests/fuzz/fuzz_shards.c).
 * Format: docs/formats.md, "Token shards". */
#ifndef WHALE_TOKSHARD_H
#define WHALE_TOKSHARD_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/file.h"

/* Header, 64 bytes, every field little-endian:
 *   0  char[8] magic        "WHALETOK"
 *   8  u32     version      1
 *  12  u32     header_size  64 in version 1; readers accept any multiple of 8
 *                           >= 64 and skip what follows byte 64 (room to grow)
 *  16  u64     n_tokens     the file is exactly header_size + 4 * n_tokens bytes
 *  24  u32     vocab_size   every id is < vocab_size (1 .. 2^31 - 1): the model's
 *                           vocab_size, or the tokenizer's when there was no config
 *  28  u32     token_bytes  4 (uint32 ids)
 *  32  i32     bos_id       -1 if none; else < vocab_size
 *  36  i32     eos_id       -1 if none; else < vocab_size
 *  40  u64     checksum     tokshard_checksum of the ids
 *  48  u8[16]  reserved     written as zeros, ignored by readers
 * then n_tokens ids as u32. */
#define TOKSHARD_MAGIC "WHALETOK"
#define TOKSHARD_VERSION 1
#define TOKSHARD_HEADER_SIZE 64

typedef struct TokShardHeader {
    uint32_t version, header_size;
    uint64_t n_tokens;
    uint32_t vocab_size, token_bytes;
    int32_t bos_id, eos_id;
    uint64_t checksum;
} TokShardHeader;

/* The 64 header bytes of h (magic included, reserved bytes zero). */
void tokshard_header_encode(const TokShardHeader *h, unsigned char out[TOKSHARD_HEADER_SIZE]);

/* Running checksum of a token stream, Fletcher style in 64-bit arithmetic:
 * for each id t in order, a += t + 1, b += a; the checksum is
 * a ^ rotl64(b, 32). Order-sensitive (b weighs each id by its distance from
 * the end), and one pass at about an id per cycle. Start from {0, 0}. */
typedef struct TokShardSum {
    uint64_t a, b;
} TokShardSum;
void tokshard_sum_update(TokShardSum *s, const uint32_t *ids, size_t n);
uint64_t tokshard_sum_final(const TokShardSum *s);

/* Check a whole shard held in memory (data, size bytes; `name` for
 * messages): magic, version, header size, token width, vocab size, bos/eos
 * ids, the exact file size for n_tokens (too short: truncated; too long:
 * trailing bytes), every id < the header's vocab_size, and the checksum.
 * With vocab_size > 0 the header's must equal it ("tokenizer/model vocab
 * mismatch", both sizes named). On success fills *h and *ids (the first id,
 * inside data; 4-byte aligned when data is) and returns 0; else -1 with err
 * naming `name` and what is wrong. Never reads outside data[0, size). */
int tokshard_parse(const void *data, size_t size, const char *name, int vocab_size,
                   TokShardHeader *h, const unsigned char **ids, Err *err);

/* Streaming atomic writer: ids are appended to `path`.tmp.PID behind a
 * placeholder header; commit writes the real header (count, checksum),
 * fsyncs and renames over path. A failed or aborted writer leaves path as
 * it was. */
typedef struct TokShardWriter {
    AtomicFile af;
    TokShardHeader h;
    TokShardSum sum;
} TokShardWriter;

/* Start a shard of ids < vocab_size with the given bos/eos ids (-1: none).
 * Returns 0 or -1 with err naming path. */
int tokshard_writer_open(TokShardWriter *w, const char *path, uint32_t vocab_size, int32_t bos_id,
                         int32_t eos_id, Err *err);
/* Append n ids; an id outside [0, vocab_size) is an error naming it (the
 * writer stays open; abort it). Returns 0 or -1 with err. */
int tokshard_writer_append(TokShardWriter *w, const int32_t *ids, size_t n, Err *err);
/* Finish: header, fsync, rename. Returns 0, or -1 with err (the temp file
 * is removed). The writer is closed either way. */
int tokshard_writer_commit(TokShardWriter *w, Err *err);
/* Drop the temp file. Accepts a zeroed or already closed writer. */
void tokshard_writer_abort(TokShardWriter *w);

/* One-call form: write n ids to path atomically. Returns 0 or -1 with err. */
int tokshard_write(const char *path, const int32_t *ids, size_t n, uint32_t vocab_size,
                   int32_t bos_id, int32_t eos_id, Err *err);

#endif
