/* SPDX-License-Identifier: MIT */
/* Generated ids to valid UTF-8 text (see text_stream.h). */
#include "infer/text_stream.h"

#include <string.h>

void text_stream_init(TextStream *s, const Tokenizer *tok, TextEmit emit, void *user) {
    memset(s, 0, sizeof *s);
    tokstream_init(&s->ts, tok, 1);
    s->think_open = tokenizer_token_id(tok, "<think>");
    s->think_close = tokenizer_token_id(tok, "</think>");
    s->emit = emit;
    s->user = user;
}

/* Length of the valid UTF-8 sequence at s[0..n) (1-4), or -k when its
 * first k bytes are an invalid or truncated sequence (a maximal subpart, as
 * Python's errors="replace" counts it, which Hugging Face's decode uses). */
static int utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len) return -1;
    for (int i = 1; i < len; i++) {
        unsigned lo = 0x80, hi = 0xbf; /* no overlongs, surrogates or > U+10FFFF */
        if (i == 1 && c == 0xe0) lo = 0xa0;
        if (i == 1 && c == 0xed) hi = 0x9f;
        if (i == 1 && c == 0xf0) lo = 0x90;
        if (i == 1 && c == 0xf4) hi = 0x8f;
        if ((size_t)i >= n || s[i] < lo || s[i] > hi) return -i;
    }
    return len;
}

static void emit_valid(TextStream *t, const char *s, size_t n) {
    while (n) {
        size_t ok = 0;
        int k;
        while (ok < n && (k = utf8_seq((const unsigned char *)s + ok, n - ok)) > 0) ok += (size_t)k;
        if (ok) {
            t->emit(t->user, s, ok);
            s += ok, n -= ok;
        }
        if (n) {
            static const char repl[] = "\xef\xbf\xbd";
            k = -utf8_seq((const unsigned char *)s, n);
            t->emit(t->user, repl, 3);
            s += k, n -= (size_t)k;
        }
    }
}

int text_stream_push(TextStream *s, int id, Err *err) {
    char piece[512];
    if (id >= 0 && (id == s->think_open || id == s->think_close)) {
        text_stream_flush(s);
        const char *tag = id == s->think_open ? "<think>" : "</think>";
        s->emit(s->user, tag, strlen(tag));
        return 0;
    }
    int k = tokstream_push(&s->ts, id, piece, sizeof piece, err);
    if (k < 0) return -1;
    emit_valid(s, piece, (size_t)k);
    return 0;
}

void text_stream_flush(TextStream *s) {
    char piece[512];
    emit_valid(s, piece, (size_t)tokstream_flush(&s->ts, piece, sizeof piece));
}
