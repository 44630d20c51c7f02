/* SPDX-License-Identifier: MIT */
/* The inside of a Tokenizer, shared by tokenizer_load.c (which builds it
 * from tokenizer.json) and tokenizer.c (which encodes and decodes). Not for
 * use outside src/tokenizer: tokenizer.h is the contract. */
#ifndef WHALE_TOKENIZER_IMPL_H
#define WHALE_TOKENIZER_IMPL_H

#include <pthread.h>

#include "tokenizer/bpe.h"
#include "tokenizer/normalize.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

/* An entry of tokenizer.json's added_tokens: matched in the raw text
 * before normalization and pre-tokenization. */
typedef struct AddedToken {
    int id;
    char *content; /* owned */
    size_t len;
    unsigned char special, lstrip, rstrip, single_word, normalized;
} AddedToken;

/* A byte trie over the added tokens' contents, for leftmost-longest
 * matching. Node 0 is the root; root children are found through
 * root_child, deeper ones along the sibling list. */
typedef struct TrieNode {
    int32_t child, sibling; /* -1: none */
    int32_t added;          /* index into added, or -1 */
    unsigned char byte;
} TrieNode;

/* Everything encoding writes: the pre-tokenizer's match state, BPE's merge
 * buffers and word cache, the normalized text, the ids. */
typedef struct EncState {
    PtState pt;
    BpeScratch bpe;
    ByteBuf norm;
    IdVec ids;
} EncState;

void encstate_free(EncState *es);

struct Tokenizer {
    char *path;            /* the tokenizer.json read, for messages */
    BpeModel bpe;
    Normalizer norm;
    PreTok pt;
    AddedToken *added;     /* (n_added) */
    int n_added;
    TrieNode *trie;        /* (n_trie) */
    int n_trie;
    int32_t root_child[256];
    unsigned char *special; /* (bpe.n_vocab) 1 for special added tokens */
    int bos_id, eos_id;
    char *chat_template;   /* owned, or NULL */
    /* One encoder at a time uses the shared state (and so the warm word
     * cache); a concurrent one builds a private state. */
    pthread_mutex_t lock;
    EncState *shared;
};

/* tokenizer_load from the text of a tokenizer.json held in memory (no
 * tokenizer_config.json); name stands for the file in messages. For tests
 * and the fuzzer. */
Tokenizer *tokenizer_load_text(const char *json, size_t len, const char *name, Err *err);

#endif
