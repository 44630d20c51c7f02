/* SPDX-License-Identifier: MIT */
/* Writing Hugging Face tokenizer.json files for byte-level BPE: what
 * `whale init` ships with a fresh model and what the BPE trainer writes.
 * Layout of ids: 0 BOS, 1 EOS, 2 PAD, 3..258 the 256 byte symbols (GPT-2's
 * byte-to-unicode alphabet), then the chat markers, then merges. */
#ifndef WHALE_TOKENIZER_JSON_H
#define WHALE_TOKENIZER_JSON_H

#include "base/err.h"

#define TOK_BOS "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define TOK_EOS "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
#define TOK_PAD "<\xef\xbd\x9c\xe2\x96\x81pad\xe2\x96\x81\xef\xbd\x9c>"
#define TOK_USER "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define TOK_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"

enum { TOKJSON_BOS_ID = 0, TOKJSON_EOS_ID = 1, TOKJSON_PAD_ID = 2, TOKJSON_BYTE0_ID = 3 };

struct PreTok;

/* Number of ids a byte-level tokenizer with n_merges merges uses (when
 * every merge makes a new string). */
int tokjson_bytelevel_size(int n_merges);

/* Write DIR/tokenizer.json and DIR/tokenizer_config.json (atomic) for a
 * byte-level BPE with the given merges (pairs of symbol strings in the byte
 * alphabet, in rank order). The merged symbol gets the next id, unless its
 * string is already in the vocabulary (an earlier merge made it another
 * way): then the merge points at that id, as Hugging Face's trainer does.
 * Returns 0 or -1 with err. */
int tokjson_write_bytelevel(const char *dir, const char *const (*merges)[2], int n_merges,
                            Err *err);

/* The largest token id a tokenizer.json uses (vocab and added tokens), to
 * check it fits a model's vocab_size. 0 or -1 with err. */
int tokjson_max_id(const char *path, int *max_id, Err *err);

/* The added tokens these files declare, in order: i = 0, 1, ... until NULL;
 * *id (if non-NULL) gets the token's id. Encoding matches them in the raw
 * text before pre-tokenization, so a trainer cuts its corpus at them. */
const char *tokjson_added_token(int i, int *id);

/* Build into pt the pre-tokenizer the written tokenizer.json declares
 * (ByteLevel with GPT-2's regex), so that a trainer cuts words exactly as
 * encoding will. Returns 0 or -1 with err; free with pt_free. */
int tokjson_bytelevel_pretok(struct PreTok *pt, Err *err);

/* The byte-to-unicode symbol of byte b as UTF-8 into out (>= 3 bytes + NUL). */
void tokjson_byte_symbol(unsigned char b, char out[5]);

#endif
