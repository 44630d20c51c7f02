/* SPDX-License-Identifier: MIT */
/* Splitting streamed text into R1-style thinking (between `<think>` and
 * `</think>`) and the answer, for display and for the chat history. The
 * text arrives in arbitrary pieces, so a tag may be cut across pieces: a
 * tail that could be the start of a tag is held back until the next piece
 * decides. The tags themselves are not passed on. */
#ifndef WHALE_THINK_SPLIT_H
#define WHALE_THINK_SPLIT_H

#include <stddef.h>

typedef enum GenPart { GEN_ANSWER, GEN_THINKING } GenPart;

/* Receives each run of text of one part (len > 0). */
typedef void (*GenEmit)(void *user, GenPart part, const char *text, size_t len);

typedef struct ThinkSplit {
    int in_think;    /* inside a <think> block */
    int n_blocks;    /* thinking blocks closed so far */
    char hold[16];   /* a possible partial tag */
    int n_hold;
    GenEmit emit;
    void *user;
} ThinkSplit;

/* Start in the thinking part when in_think (the prompt opened `<think>`). */
void think_split_init(ThinkSplit *t, int in_think, GenEmit emit, void *user);
/* Feed len bytes; emits what is decided. */
void think_split_feed(ThinkSplit *t, const char *s, size_t len);
/* Emit anything held back (end of the stream). */
void think_split_flush(ThinkSplit *t);

/* 1 if text ends inside an open thinking block: its last `<think>` comes
 * after its last `</think>` (how a prompt that opens thinking, like R1's
 * generation prompt, is recognised). */
int think_split_open_at_end(const char *text, size_t len);

#endif
