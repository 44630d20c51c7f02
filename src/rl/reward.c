/* SPDX-License-Identifier: MIT */
/* R1-Zero's rule rewards (rl/reward.h): one left-to-right parse of the
 * completion for the format rule, the last complete answer block for the
 * verifier, and the share of ASCII words in the thinking. */
#include "rl/reward.h"

#include <string.h>

void reward_opts_default(RewardOpts *o) {
    o->w_accuracy = 1.0f;
    o->w_format = 0.1f;
    o->w_language = 0.0f;
    o->require_format = 0;
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Trim white space from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n) {
    while (*n && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_space((*s)[*n - 1])) (*n)--;
}

/* 1 if [s, e) is white space only. */
static int blank(const char *s, const char *e) {
    for (; s < e; s++)
        if (!is_space(*s)) return 0;
    return 1;
}

typedef enum Tag { THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE, N_TAGS } Tag;
static const char *const TAG_TEXT[N_TAGS] = {"<think>", "</think>", "<answer>", "</answer>"};
static const size_t TAG_LEN[N_TAGS] = {7, 8, 8, 9};

/* The tag starting at s, or N_TAGS. Compares by hand, stopping at the first
 * difference (the NUL ends any match), so the scan below stays one pass. */
static Tag tag_at(const char *s) {
    if (*s != '<') return N_TAGS;
    for (int k = 0; k < N_TAGS; k++) {
        size_t i = 1;
        while (i < TAG_LEN[k] && s[i] == TAG_TEXT[k][i]) i++;
        if (i == TAG_LEN[k]) return (Tag)k;
    }
    return N_TAGS;
}

/* One pass over the completion, tag by tag; no library search functions,
 * whose sanitizer interceptors re-measure the rest of the string on every
 * call and would make a completion full of tags quadratic. */
void reward_parse(const char *completion, RewardParse *out) {
    memset(out, 0, sizeof *out);
    const char *first[4] = {0}, *first_end[4] = {0}; /* the first four tags */
    Tag kind[4] = {N_TAGS, N_TAGS, N_TAGS, N_TAGS};
    int n_tags = 0;
    const char *think_open = NULL, *answer_open = NULL, *s = completion;
    for (; *s; s++) {
        Tag t = tag_at(s);
        if (t == N_TAGS) continue;
        if (n_tags < 4) {
            first[n_tags] = s;
            first_end[n_tags] = s + TAG_LEN[t];
            kind[n_tags] = t;
        }
        n_tags++;
        const char *end = s + TAG_LEN[t];
        if (t == THINK_OPEN && !think_open && !out->think) think_open = end;
        if (t == THINK_CLOSE && think_open && !out->think) {
            out->think = think_open;
            out->think_len = (size_t)(s - think_open);
        }
        if (t == ANSWER_OPEN) answer_open = end;
        if (t == ANSWER_CLOSE && answer_open) { /* the last open before the last close */
            out->answer = answer_open;
            out->answer_len = (size_t)(s - answer_open);
        }
        s = end - 1;
    }
    if (out->think) trim(&out->think, &out->think_len);
    if (out->answer) trim(&out->answer, &out->answer_len);
    out->format_ok = n_tags == 4 && kind[0] == THINK_OPEN && kind[1] == THINK_CLOSE &&
                     kind[2] == ANSWER_OPEN && kind[3] == ANSWER_CLOSE &&
                     blank(completion, first[0]) && blank(first_end[1], first[2]) &&
                     blank(first_end[3], s);
}

/* Share of the words of s[0..n) made of printable ASCII only. */
static float ascii_word_share(const char *s, size_t n) {
    size_t words = 0, ascii = 0, i = 0;
    while (i < n) {
        while (i < n && is_space(s[i])) i++;
        if (i == n) break;
        int ok = 1;
        for (; i < n && !is_space(s[i]); i++) {
            unsigned char c = (unsigned char)s[i];
            ok &= c > 0x20 && c < 0x7f;
        }
        words++;
        ascii += (size_t)ok;
    }
    return words ? (float)((double)ascii / (double)words) : 0.0f;
}

void reward_score(const Task *t, const TaskProblem *p, const char *completion,
                  const RewardOpts *o, RewardParts *out) {
    RewardOpts def;
    if (!o) {
        reward_opts_default(&def);
        o = &def;
    }
    RewardParse rp;
    reward_parse(completion, &rp);
    memset(out, 0, sizeof *out);
    out->has_answer = rp.answer != NULL;
    out->format = rp.format_ok ? 1.0f : 0.0f;
    if (rp.answer && rp.answer_len <= REWARD_ANSWER_MAX && (rp.format_ok || !o->require_format)) {
        char buf[REWARD_ANSWER_MAX + 1];
        memcpy(buf, rp.answer, rp.answer_len);
        buf[rp.answer_len] = 0;
        out->accuracy = t->verify(p, buf) ? 1.0f : 0.0f;
    }
    if (rp.think) out->language = ascii_word_share(rp.think, rp.think_len);
    out->total =
        o->w_accuracy * out->accuracy + o->w_format * out->format + o->w_language * out->language;
}
