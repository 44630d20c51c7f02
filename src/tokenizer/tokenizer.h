/* SPDX-License-Identifier: MIT */
/* Hugging Face tokenizer.json: byte-level BPE as the DeepSeek, Qwen and
 * Llama-3 tokenizers use it. Loading, encoding (normalizer, added/special
 * tokens matched first, pre-tokenizer, BPE merges), decoding, and streaming
 * decoding that never emits a broken UTF-8 sequence. */
#ifndef WHALE_TOKENIZER_H
#define WHALE_TOKENIZER_H

#include <stddef.h>

#include "base/err.h"

typedef struct Tokenizer Tokenizer;

/* Load path: a directory holding tokenizer.json (and optionally
 * tokenizer_config.json, which names bos/eos tokens and the chat template),
 * or a tokenizer.json file. Returns a new tokenizer or NULL with err naming
 * the file and field (unsupported pre-tokenizer/normalizer/model type by
 * name, a regex PCRE2 rejects with its offset, malformed JSON with
 * line:column). Free with tokenizer_free (NULL allowed). */
Tokenizer *tokenizer_load(const char *path, Err *err);
void tokenizer_free(Tokenizer *tok);

/* Encode len bytes of text. Special/added token strings in the text map to
 * their ids. With add_bos, the BOS id (from tokenizer_config.json) is put
 * first. Invalid UTF-8 bytes are encoded as their byte symbols (byte-level
 * BPE covers every byte), never rejected: they never match a pre-tokenizer
 * regex and pass NFC unchanged, so decode gives them back. On success *ids
 * is a malloc'd array of *n ids (caller frees). Returns 0 or -1 with err
 * (out of memory). Several threads may encode with one Tokenizer at once:
 * one of them uses the shared word cache, the others private buffers. */
int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int add_bos, int **ids,
                     int *n, Err *err);

/* Decode ids to bytes: a malloc'd NUL-terminated string (caller frees),
 * *len bytes without the NUL (the bytes as they are: a sequence split
 * between tokens or invalid is not replaced). Added tokens decode to their
 * content, an unused id to nothing. skip_special drops special tokens. An
 * id out of range is an error naming it. */
int tokenizer_decode(const Tokenizer *tok, const int *ids, int n, int skip_special, char **out,
                     size_t *len, Err *err);

/* Streaming decode: feed ids one at a time, get the bytes that are complete
 * UTF-8 so far; an incomplete trailing sequence is held back until the next
 * id completes it (or tokstream_flush gives it up as is). */
typedef struct TokStream {
    const Tokenizer *tok;
    char pending[8];
    int n_pending;
    int skip_special;
} TokStream;

void tokstream_init(TokStream *s, const Tokenizer *tok, int skip_special);
/* Append the printable bytes for id to out (capacity cap); returns the byte
 * count written (0 while a sequence is incomplete), or -1 with err for an id
 * out of range or cap too small (cap >= 256 + 8 always suffices for one
 * token). */
int tokstream_push(TokStream *s, int id, char *out, size_t cap, Err *err);
/* Whatever is still held back, raw. Returns the byte count. */
int tokstream_flush(TokStream *s, char *out, size_t cap);

/* Number of ids (the largest id + 1). */
int tokenizer_n_vocab(const Tokenizer *tok);
/* Id of an exact token string (vocab or added token), or -1. */
int tokenizer_token_id(const Tokenizer *tok, const char *content);
/* The token's string as stored (byte-level symbols for BPE tokens), or NULL
 * for an unused id. */
const char *tokenizer_token_str(const Tokenizer *tok, int id);
/* 1 if id is a special added token. */
int tokenizer_is_special(const Tokenizer *tok, int id);
/* BOS / EOS ids from tokenizer_config.json (or -1). */
int tokenizer_bos_id(const Tokenizer *tok);
int tokenizer_eos_id(const Tokenizer *tok);
/* The chat_template string of tokenizer_config.json, or NULL. */
const char *tokenizer_chat_template(const Tokenizer *tok);

#endif
