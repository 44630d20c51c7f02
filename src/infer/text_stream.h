/* SPDX-License-Identifier: MIT */
/* Generated ids to text, one id at a time: the bytes that are complete so
 * far, as valid UTF-8 (a sequence cut between tokens is held back by the
 * TokStream; random or broken byte tokens that make an invalid sequence
 * come out as U+FFFD, as Hugging Face's decode shows them), with the
 * `<think>` / `</think>` tags passed on by id even when the tokenizer marks
 * them special. The generation loop and the serving engine both read their
 * text through it. */
#ifndef WHALE_TEXT_STREAM_H
#define WHALE_TEXT_STREAM_H

#include <stddef.h>

#include "base/err.h"
#include "tokenizer/tokenizer.h"

/* Receives each run of valid UTF-8 text (n > 0). */
typedef void (*TextEmit)(void *user, const char *s, size_t n);

typedef struct TextStream {
    TokStream ts;
    int think_open, think_close; /* ids of the tags, or -1 */
    TextEmit emit;
    void *user;
} TextStream;

/* Start a stream for tok (borrowed) whose text goes to emit(user, ...). */
void text_stream_init(TextStream *s, const Tokenizer *tok, TextEmit emit, void *user);
/* Pass id on as text. 0, or -1 with err (an id out of range). */
int text_stream_push(TextStream *s, int id, Err *err);
/* Emit whatever is still held back (the end of the stream). */
void text_stream_flush(TextStream *s);

#endif
