/* SPDX-License-Identifier: MIT */
/* Thinking / answer split of streamed text (see think_split.h). */
#include "infer/think_split.h"

#include <string.h>

#define OPEN "<think>"
#define CLOSE "</think>"

void think_split_init(ThinkSplit *t, int in_think, GenEmit emit, void *user) {
    memset(t, 0, sizeof *t);
    t->in_think = in_think != 0;
    t->emit = emit;
    t->user = user;
}

static void out(ThinkSplit *t, const char *s, size_t n) {
    if (n) t->emit(t->user, t->in_think ? GEN_THINKING : GEN_ANSWER, s, n);
}

/* Length of the longest suffix of s[0..n) that is a proper prefix of tag. */
static size_t partial_tag(const char *s, size_t n, const char *tag) {
    size_t tl = strlen(tag);
    for (size_t k = tl - 1; k > 0; k--)
        if (k <= n && !memcmp(s + n - k, tag, k)) return k;
    return 0;
}

/* Scan s[0..n) for the tag that ends the current part; emit the text
 * before it, switch parts, go on after it; hold back a partial tag. */
static void scan(ThinkSplit *t, const char *s, size_t n) {
    while (n) {
        const char *tag = t->in_think ? CLOSE : OPEN;
        size_t tl = strlen(tag);
        const char *hit = NULL;
        for (size_t i = 0; i + tl <= n; i++)
            if (s[i] == '<' && !memcmp(s + i, tag, tl)) {
                hit = s + i;
                break;
            }
        if (!hit) {
            size_t k = partial_tag(s, n, tag);
            out(t, s, n - k);
            memcpy(t->hold, s + n - k, k);
            t->n_hold = (int)k;
            return;
        }
        out(t, s, (size_t)(hit - s));
        if (t->in_think) t->n_blocks++;
        t->in_think = !t->in_think;
        n -= (size_t)(hit - s) + tl;
        s = hit + tl;
    }
}

void think_split_feed(ThinkSplit *t, const char *s, size_t len) {
    /* The held bytes are a prefix of a tag (< 8 bytes): join them with just
     * enough of the new text to decide, then go on with the rest in place. */
    while (t->n_hold && len) {
        char buf[32];
        size_t take = len < sizeof buf - (size_t)t->n_hold ? len : sizeof buf - (size_t)t->n_hold;
        if (take > 8) take = 8;
        memcpy(buf, t->hold, (size_t)t->n_hold);
        memcpy(buf + t->n_hold, s, take);
        size_t n = (size_t)t->n_hold + take;
        t->n_hold = 0;
        scan(t, buf, n);
        s += take, len -= take;
    }
    if (len) scan(t, s, len);
}

void think_split_flush(ThinkSplit *t) {
    int n = t->n_hold;
    t->n_hold = 0;
    out(t, t->hold, (size_t)n);
}

static const char *last_of(const char *s, size_t n, const char *tag) {
    size_t tl = strlen(tag);
    for (size_t i = n >= tl ? n - tl + 1 : 0; i-- > 0;)
        if (!memcmp(s + i, tag, tl)) return s + i;
    return NULL;
}

int think_split_open_at_end(const char *text, size_t len) {
    const char *o = last_of(text, len, OPEN), *c = last_of(text, len, CLOSE);
    return o && (!c || o > c);
}
