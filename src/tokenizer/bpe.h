/* SPDX-License-Identifier: MIT */
/* Byte-level BPE, the model stage of the tokenizer (after normalizer and
 * pre-tokenizer): the vocabulary (token strings as stored in tokenizer.json,
 * their decoded bytes), the merge table, the merge loop in O(n log n) per
 * word (Sennrich et al. 2016, as Hugging Face tokenizers runs it: lowest
 * rank first, leftmost on ties) and a bounded cache of merged words.
 * Internal to src/tokenizer; tokenizer.h is the public contract. */
#ifndef WHALE_TOKENIZER_BPE_H
#define WHALE_TOKENIZER_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* A growable array of ids. */
typedef struct IdVec {
    int *v;
    size_t n, cap;
} IdVec;

int idvec_push(IdVec *a, int id);
void idvec_free(IdVec *a);

/* 64-bit hash of a byte string (fast on short words, good enough spread for
 * open addressing). */
uint64_t bpe_hash_bytes(const void *p, size_t n);

/* Byte strings keyed to ids: open addressing over (hash, id) slots, the key
 * bytes of id i being keys[i] (a table of pointers and lengths owned by the
 * caller). Used for the vocabulary by stored string and by decoded bytes. */
typedef struct BpeStrMap {
    uint64_t *hash; /* (cap) 0 = empty slot */
    int32_t *id;    /* (cap) */
    size_t cap;     /* power of two */
} BpeStrMap;

/* The vocabulary and merges. Ids 0..n_vocab-1; an id without a token
 * (a gap in the vocabulary) has str_off == BPE_NONE. Strings live in one
 * pool: the token as stored (NUL-terminated) and its decoded bytes. */
#define BPE_NONE UINT32_MAX
typedef struct BpeModel {
    int n_vocab;
    char *pool;            /* (pool_n) owned */
    size_t pool_n, pool_cap;
    uint32_t *str_off;     /* (n_vocab) token as stored, or BPE_NONE */
    uint32_t *str_len;     /* (n_vocab) */
    uint32_t *raw_off;     /* (n_vocab) decoded bytes (the byte alphabet mapped back) */
    uint32_t *raw_len;     /* (n_vocab) */
    BpeStrMap by_str;      /* stored string -> id (the later set_token wins) */
    BpeStrMap by_raw;      /* decoded bytes -> id (only with ignore_merges) */
    size_t n_strs;         /* ids with a string */
    /* merges: key (left << 32 | right), value (rank, merged id) */
    uint64_t *mkey;        /* (mcap) UINT64_MAX = empty */
    int32_t *mrank, *mnew; /* (mcap) */
    size_t mcap, n_merges;
    size_t merges_hint;    /* expected merge count, to size the table once */
    int byte_id[256];      /* id of each byte's symbol, -1 if the vocab lacks it */
    int unk_id;            /* -1 if none */
    int ignore_merges;     /* a word that is a whole token is emitted as is;
                            * set before the tokens (it decides by_raw) */
} BpeModel;

/* The GPT-2 byte alphabet: byte b is code point bpe_byte_cp(b); the inverse
 * maps a code point to its byte or -1. */
unsigned bpe_byte_cp(unsigned char b);
int bpe_cp_byte(unsigned cp);

/* Start a model of n_vocab ids (all unused). Returns 0 or -1 with err. */
int bpe_model_init(BpeModel *m, int n_vocab, Err *err);
/* Set id's stored string (len bytes, copied) and derive its decoded bytes:
 * each character mapped through the byte alphabet, or the string itself
 * when a character is outside it (special tokens kept in the vocab), or
 * the string itself when verbatim is set (added tokens decode to their
 * content). A string already mapped to another id now maps to this one (as
 * added tokens override the vocab); setting an id again replaces its string
 * and decoded bytes (the old string still maps to it). Returns 0 or -1 with err (out of memory). */
int bpe_model_set_token(BpeModel *m, int id, const char *s, size_t len, int verbatim, Err *err);
/* After all tokens: look up the byte symbols (byte_id). */
void bpe_model_finish(BpeModel *m);
/* Stored string / decoded bytes of id (NULL for a gap). */
static inline const char *bpe_str(const BpeModel *m, int id) {
    return m->str_off[id] == BPE_NONE ? NULL : m->pool + m->str_off[id];
}
static inline const char *bpe_raw(const BpeModel *m, int id) {
    return m->str_off[id] == BPE_NONE ? NULL : m->pool + m->raw_off[id];
}
/* Id of a stored token string, or -1. */
int bpe_model_find(const BpeModel *m, const char *s, size_t len);
/* Add merge number rank (left + right -> merged). A later duplicate pair
 * replaces the earlier (as Hugging Face builds its table). 0 or -1 (oom). */
int bpe_model_add_merge(BpeModel *m, int left, int right, int merged, int rank, Err *err);
void bpe_model_free(BpeModel *m);

/* Reusable buffers of the merge loop and the word cache. One per thread of
 * use; zero-initialised is ready (no_cache: never build the cache, for a
 * short-lived scratch). */
typedef struct BpeScratch {
    int no_cache;
    int32_t *sym, *prev, *next; /* (cap) per symbol */
    struct BpeHeapItem *heap;   /* (hcap) */
    size_t cap, hcap;
    /* cache of merged words: bytes -> ids */
    uint64_t *c_hash;           /* (c_cap) 0 = empty */
    uint32_t *c_key, *c_val;    /* (c_cap) offsets into c_bytes / c_ids */
    uint16_t *c_klen, *c_nval;  /* (c_cap) */
    unsigned char *c_bytes;
    int32_t *c_ids;
    size_t c_cap, c_n, c_bytes_n, c_ids_n;
} BpeScratch;

void bpe_scratch_free(BpeScratch *s);
/* Free the merge buffers (not the cache) if they grew past max_word bytes,
 * so that one huge word does not pin its memory. */
void bpe_scratch_trim(BpeScratch *s, size_t max_word);

/* Encode one pre-token (n bytes, raw: the byte alphabet is applied here)
 * and append its ids to out. A byte whose symbol is missing from the vocab
 * becomes unk_id, or is dropped without one (as Hugging Face does). Uses
 * and fills s's cache. Returns 0 or -1 with err (out of memory). */
int bpe_encode_word(const BpeModel *m, BpeScratch *s, const unsigned char *w, size_t n, IdVec *out,
                    Err *err);

#endif
