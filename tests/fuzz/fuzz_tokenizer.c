/* SPDX-License-Identifier: MIT */
/* libFuzzer entry for the tokenizer. The first byte picks what the rest is:
 *   0: text for a small built-in byte-level BPE (every pre-tokenizer step
 *      and behaviour, merges in both forms, added tokens): encode must
 *      succeed, decode must give the bytes back, and the streaming decoder
 *      the same bytes;
 *   1: text for the same tokenizer with what changes the text (NFC, the
 *      prefix space, lstrip/rstrip tokens): ids in range, the stream equal
 *      to decode;
 *   2: ids (4 bytes each) to decode: in range or a clean error;
 *   3: a tokenizer.json: it loads or fails with a message, and a loaded one
 *      encodes and decodes a fixed text. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/tokenizer_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const merges[][2] = {{"t", "h"}, {"th", "e"}, {"\xc4\xa0", "the"},
                                        {"1", "2"}, {"a", "a"}, {"aa", "a"}, {"-", "-"}};

/* The built-in tokenizer's JSON text (static, built once). */
static char *small_json(int nfc) {
    json_t *vocab = json_object(), *ml = json_array(), *added = json_array();
    int id = 0;
    for (int b = 0; b < 256; b++) {
        char sym[5];
        tokjson_byte_symbol((unsigned char)b, sym);
        json_object_set_new(vocab, sym, json_integer(id++));
    }
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        char m[32];
        snprintf(m, sizeof m, "%s%s", merges[i][0], merges[i][1]);
        if (!json_object_get(vocab, m)) json_object_set_new(vocab, m, json_integer(id++));
        if (i % 2) {
            json_array_append_new(ml, json_pack("[s,s]", merges[i][0], merges[i][1]));
        } else {
            snprintf(m, sizeof m, "%s %s", merges[i][0], merges[i][1]);
            json_array_append_new(ml, json_string(m));
        }
    }
    const char *tok[4] = {"<s>", "<mask>", "[R]", "<w>"};
    for (int i = 0; i < 4; i++)
        json_array_append_new(added, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b}", "id", 1000 + i, "content",
                                               tok[i], "special", i == 0, "lstrip", nfc && i == 1,
                                               "rstrip", nfc && i == 2, "single_word", i == 3));
    json_t *split = json_pack("{s:s,s:{s:s},s:s,s:b}", "type", "Split", "pattern", "Regex",
                              "\\p{N}{1,3}|[\\p{L}\\p{M}]+|\\s+(?!\\S)|\\s+", "behavior",
                              "Isolated", "invert", 0);
    json_t *dash = json_pack("{s:s,s:{s:s},s:s,s:b}", "type", "Split", "pattern", "String", "-",
                             "behavior", "MergedWithNext", "invert", 0);
    json_t *cont = json_pack("{s:s,s:{s:s},s:s,s:b}", "type", "Split", "pattern", "Regex", "[.,]",
                             "behavior", "Contiguous", "invert", 1);
    json_t *prev = json_pack("{s:s,s:{s:s},s:s,s:b}", "type", "Split", "pattern", "String", ";",
                             "behavior", "MergedWithPrevious", "invert", 0);
    json_t *pre = json_pack("{s:s,s:[o,o,o,o,{s:s,s:b},{s:s,s:b,s:b}]}", "type", "Sequence",
                            "pretokenizers", split, dash, cont, prev, "type", "Digits",
                            "individual_digits", 1, "type", "ByteLevel", "add_prefix_space", nfc,
                            "use_regex", 1);
    json_t *root = json_pack("{s:o,s:o,s:o,s:{s:s},s:{s:s,s:o,s:o}}", "added_tokens", added,
                             "normalizer", nfc ? json_pack("{s:s}", "type", "NFC") : json_null(),
                             "pre_tokenizer", pre, "decoder", "type", "ByteLevel", "model", "type",
                             "BPE", "vocab", vocab, "merges", ml);
    char *s = json_dumps(root, 0);
    json_decref(root);
    return s;
}

static Tokenizer *small(int nfc) {
    static Tokenizer *t[2];
    if (!t[nfc]) {
        char *j = small_json(nfc);
        Err e;
        t[nfc] = j ? tokenizer_load_text(j, strlen(j), "fuzz.json", &e) : NULL;
        if (!t[nfc]) abort();
        free(j);
    }
    return t[nfc];
}

static void check_text(const Tokenizer *t, const char *text, size_t len, int exact) {
    int *ids, n;
    Err e;
    if (tokenizer_encode(t, text, len, 1, &ids, &n, &e) != 0) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tokenizer_n_vocab(t)) abort();
    char *out;
    size_t ol;
    /* BOS comes from no config here: ids[0] is the text's */
    if (tokenizer_decode(t, ids, n, 0, &out, &ol, &e) != 0) abort();
    if (exact && (ol != len || memcmp(out, text, len))) abort();
    TokStream ts;
    tokstream_init(&ts, t, 0);
    char piece[300];
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        int k = tokstream_push(&ts, ids[i], piece, sizeof piece, &e);
        if (k < 0 || at + (size_t)k > ol || memcmp(out + at, piece, (size_t)k)) abort();
        at += (size_t)k;
    }
    at += (size_t)tokstream_flush(&ts, piece, sizeof piece);
    if (at != ol) abort();
    free(out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    Err e;
    switch (data[0] % 4) {
    case 0: check_text(small(0), rest, n, 1); break;
    case 1: check_text(small(1), rest, n, 0); break;
    case 2: {
        int ids[64], k = 0;
        for (size_t i = 0; i + 4 <= n && k < 64; i += 4) memcpy(&ids[k++], rest + i, 4);
        char *out = NULL;
        size_t ol;
        int rc = tokenizer_decode(small(0), ids, k, data[0] & 4, &out, &ol, &e);
        int bad = 0;
        for (int i = 0; i < k; i++) bad |= ids[i] < 0 || ids[i] >= tokenizer_n_vocab(small(0));
        if ((rc != 0) != bad || (rc != 0 && out)) abort();
        free(out);
        break;
    }
    case 3: {
        e.msg[0] = 0;
        Tokenizer *t = tokenizer_load_text(rest, n, "fuzz.json", &e);
        if (!t) {
            if (!e.msg[0]) abort();
            break;
        }
        check_text(t, "Hello, wörld 123 <s> -- x", 26, 0);
        tokenizer_free(t);
        break;
    }
    }
    return 0;
}
