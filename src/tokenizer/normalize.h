/* SPDX-License-Identifier: MIT */
/* Normalizers of tokenizer.json: none, NFC (through utf8proc) and Sequences
 * of these. The first stage of encoding, applied to the text between added
 * tokens. Internal to src/tokenizer. */
#ifndef WHALE_TOKENIZER_NORMALIZE_H
#define WHALE_TOKENIZER_NORMALIZE_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

typedef struct Normalizer {
    int nfc; /* NFC somewhere in the sequence (NFC is idempotent: once is enough) */
} Normalizer;

/* From the "normalizer" value (NULL or JSON null: none). Accepts NFC and
 * Sequence (nested) of NFC; anything else is an error naming the type. */
int norm_from_json(Normalizer *nm, const json_t *j, const char *what, Err *err);

/* A growable byte buffer. */
typedef struct ByteBuf {
    unsigned char *p;
    size_t n, cap;
} ByteBuf;

int bytebuf_put(ByteBuf *b, const void *p, size_t n);
void bytebuf_free(ByteBuf *b);

/* Normalize p[0..n). When nothing changes (the common case: no character
 * that NFC could touch) returns 0 with *out = p; otherwise writes the
 * result to buf (reset first) and sets *out = buf->p, *out_n. Bytes that
 * are not valid UTF-8 pass through unchanged and split the text into runs
 * that are normalized apart. Returns 0 or -1 with err. */
int norm_apply(const Normalizer *nm, const unsigned char *p, size_t n, ByteBuf *buf,
               const unsigned char **out, size_t *out_n, Err *err);

#endif
