/* SPDX-License-Identifier: MIT */
/* A byte-level BPE tokenizer between Hugging Face files (tokenizer.json,
 * tokenizer_config.json) and GGUF tokenizer metadata as llama.cpp reads it
 * (src/llama-vocab.cpp): tokenizer.ggml.model "gpt2", tokens by id,
 * token_type, merges "a b", pre (the pre-tokenizer's llama.cpp name),
 * bos/eos/padding ids, add_bos/add_eos, tokenizer.chat_template. Used by
 * whale convert both ways; the GGUF side knows only what llama.cpp keeps,
 * so a rebuilt tokenizer.json is canonical for its pre-tokenizer, not a
 * copy of the original file. */
#ifndef WHALE_GGUF_VOCAB_H
#define WHALE_GGUF_VOCAB_H

#include <jansson.h>
#include <stdint.h>

#include "base/err.h"
#include "io/gguf.h"
#include "io/gguf_names.h"

/* GGUF token types (llama.cpp's llama_token_type). */
enum {
    GGUF_TOKEN_NORMAL = 1,
    GGUF_TOKEN_CONTROL = 3,      /* special added tokens */
    GGUF_TOKEN_USER_DEFINED = 4, /* other added tokens */
    GGUF_TOKEN_UNUSED = 5,       /* padding up to the model's vocab_size */
};

/* The storage behind the metadata gguf_vocab_from_hf appends (the GgufKV
 * values borrow from it). Zero is empty; free with gguf_vocab_free after
 * the file is written. */
typedef struct GgufVocab {
    json_t *tok, *cfg;      /* tokenizer.json, tokenizer_config.json (or NULL) */
    GgufStr *tokens;        /* (n_tokens) */
    int32_t *types;         /* (n_tokens) */
    GgufStr *merges;        /* (n_merges) */
    char *pad_names;        /* "[PAD<id>]" strings of ids the tokenizer leaves unused */
    char *merge_text;       /* merges joined from [a, b] pairs */
    int n_tokens, n_merges;
    char pre[32];           /* tokenizer.ggml.pre */
} GgufVocab;

/* The llama.cpp name of a tokenizer.json pre_tokenizer (jansson object or
 * NULL): "deepseek-v3" for DeepSeek-V3's three Split regexes, "qwen2" for
 * Qwen2's, "llama-bpe" for Llama 3's, "gpt-2" for a bare ByteLevel with
 * its regex, "default" otherwise (llama.cpp warns and uses its default
 * regexes). */
const char *gguf_vocab_pre_name(const json_t *pre_tokenizer);

/* Append the tokenizer metadata of the model directory dir to m: tokens
 * (padded with "[PAD<id>]" of type UNUSED up to n_vocab, as the converter
 * does), token_type, merges, pre, from tokenizer_config.json
 * add_bos_token/add_eos_token, chat_template and the padding id, and the
 * bos/eos ids when m does not hold them yet (from the config's names).
 * Returns 0 when added; 1 when dir has no tokenizer.json or it is not a
 * byte-level BPE (nothing added; err says why); -1 with err naming the file
 * and field for a malformed file, a token id outside 0..max(n_vocab, ids)
 * or a merge that GGUF cannot spell (a symbol with a space). */
int gguf_vocab_from_hf(GgufVocab *v, const char *dir, int n_vocab, GgufMeta *m, Err *err);
void gguf_vocab_free(GgufVocab *v);

/* Write dir/tokenizer.json and dir/tokenizer_config.json (atomic) from g's
 * tokenizer metadata: the BPE model (vocab of every token not UNUSED,
 * merges; ignore_merges for llama-bpe as llama.cpp does), added_tokens for
 * CONTROL (special) and USER_DEFINED tokens, the HF pre-tokenizer and
 * normalizer of the pre name (DeepSeek-V3's, Qwen2's with NFC, Llama 3's,
 * GPT-2's ByteLevel; llama.cpp's default regexes for any other name), a
 * ByteLevel decoder; the config with bos/eos/pad token names,
 * add_bos_token, add_eos_token and chat_template when present. Returns 0
 * when written, 1 when g has no tokenizer or not a "gpt2" one (nothing
 * written; err says why), -1 with err naming the file and key. */
int gguf_vocab_to_hf(const GgufFile *g, const char *dir, Err *err);

#endif
