/* SPDX-License-Identifier: MIT */
/* Byte-level BPE training (Sennrich et al. 2016; GPT-2's byte alphabet):
 * count the words of a corpus as whale's tokenizer will cut them, then merge
 * the most frequent adjacent pair of symbols again and again, keeping the
 * pair counts up to date incrementally. The merges feed
 * tokjson_write_bytelevel (tokenizer_json.h), whose id layout they follow:
 * 0..2 specials, 3..258 bytes, the chat markers, then one id per new token. */
#ifndef WHALE_TOKENIZER_BPE_TRAIN_H
#define WHALE_TOKENIZER_BPE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "tokenizer/pretokenize.h"

/* Distinct byte strings, numbered in the order they were added: one pool
 * of bytes and an open-addressing index by hash. The trainer keeps its
 * words and its tokens in one each. */
typedef struct BpeStrSet {
    unsigned char *bytes; /* (n_bytes) the strings back to back */
    size_t n_bytes, cap_bytes;
    size_t *off;          /* (n) start of string i in bytes */
    uint32_t *len;        /* (n) */
    size_t n, cap;
    uint64_t *slot_hash;  /* (slot_cap) 0 = empty */
    uint32_t *slot_id;    /* (slot_cap) */
    size_t slot_cap;      /* power of two */
} BpeStrSet;

/* The words of a corpus and how often each occurs. Words are the pieces
 * encoding will hand to BPE: the text is cut at the added tokens the
 * written tokenizer.json declares (they never become part of a word), then
 * pre-tokenized with its ByteLevel regex. Read-only outside bpe_train.c;
 * zeroed is "not initialised", bpe_counts_free accepts that. */
typedef struct BpeCounts {
    PreTok pt;
    PtState st;
    int ready;
    BpeStrSet words;        /* word i is words.bytes[words.off[i] ..][0 .. words.len[i]) */
    int64_t *count;         /* (words.n) occurrences of each word */
    size_t count_cap;
    uint64_t n_text_bytes;  /* bytes of text added */
    uint64_t n_occurrences; /* words counted, with repeats */
} BpeCounts;

/* Ready c for counting. Returns 0 or -1 with err. */
int bpe_counts_init(BpeCounts *c, Err *err);
/* Count the words of one document (len bytes, any content: invalid UTF-8
 * and NUL bytes are words like any other bytes). Documents are independent:
 * no word spans two. Returns 0 or -1 with err (out of memory, a word over
 * 4 GiB). */
int bpe_counts_add_text(BpeCounts *c, const char *text, size_t len, Err *err);
void bpe_counts_free(BpeCounts *c);

/* Options; zero means the default. */
typedef struct BpeTrainOpts {
    int vocab_size;      /* ids in all, specials, bytes and markers included;
                          * at least tokjson_bytelevel_size(0) */
    int64_t min_count;   /* a pair merges only if it occurs this often (default 2) */
    int split_digits;    /* never merge a pair whose string holds an ASCII
                          * digit: numbers stay one token per digit, so a
                          * small model sees the digits it computes with */
    int quiet;           /* no progress lines on stderr */
    double progress_s;   /* seconds between progress lines (default 2) */
} BpeTrainOpts;

/* The learned merges, in rank order, as symbol strings of the byte
 * alphabet (what tokenizer.json stores). */
typedef struct BpeMerges {
    char *(*pair)[2];  /* (n) malloc'd strings */
    int n;
    int n_vocab;       /* ids the tokenizer will use (<= vocab_size) */
    int64_t last_count; /* occurrences of the last merged pair */
    int stopped_early; /* 1 if no pair was frequent enough before vocab_size */
} BpeMerges;

/* Learn merges from the counted words until opts->vocab_size ids are used
 * or no pair occurs min_count times (then out->stopped_early is set; that
 * is not an error). Each step merges the pair with the most occurrences
 * (word count times the pair's occurrences in the word, overlaps counted as
 * Hugging Face counts them, so "aaa" holds "aa" twice); ties go to the
 * smaller (left id, right id), ids being the final token ids. A merge whose
 * string already exists (made earlier from another pair) points at that id
 * and uses no new one; a pair whose string equals an added token never
 * merges. Runs in about O(total word length + sum over merges of the
 * symbols touched) with a lazily updated max-heap. out is filled (free with
 * bpe_merges_free, also on error). Returns 0 or -1 with err (vocab_size too
 * small for the byte-level base, out of memory). */
int bpe_train(const BpeCounts *c, const BpeTrainOpts *opts, BpeMerges *out, Err *err);
void bpe_merges_free(BpeMerges *m);

#endif
