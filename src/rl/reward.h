/* SPDX-License-Identifier: MIT */
/* Rule-based rewards of R1-Zero (DeepSeek-R1, section 2.2.2) for a
 * completion: the text the model wrote after a prompt of rl/template.h,
 * which ends with "Assistant:"; the caller strips an EOS. The answer is
 * checked by the task's verifier (accuracy); the layout by the format rule;
 * optionally the language of the thinking (R1's language-consistency
 * reward, section 2.3.2). Completions are hostile input: any bytes up to
 * the NUL, any length, tags missing, nested, repeated or out of order; time
 * is linear in the length and nothing is allocated. */
#ifndef WHALE_REWARD_H
#define WHALE_REWARD_H

#include <stddef.h>

#include "rl/task.h"

/* Answers longer than this (after trimming) are wrong without being read. */
#define REWARD_ANSWER_MAX 1024

typedef struct RewardOpts {
    float w_accuracy;   /* weight of accuracy (default 1) */
    float w_format;     /* weight of format (default 0.1: right answers dominate, and a model
                           pretrained on the corpus has the format already) */
    float w_language;   /* weight of language consistency (default 0: off) */
    int require_format; /* 1: a right answer counts only in a well-formed completion;
                           0 (default): it is read from the last answer block whatever the
                           layout, and format is rewarded apart */
} RewardOpts;

/* The defaults above. */
void reward_opts_default(RewardOpts *o);

/* Where the parts of a completion are. Pointers into the completion. */
typedef struct RewardParse {
    int format_ok;        /* 1: the completion is, with white space (space, tab, CR, LF, VT,
                             FF) only where "_" stands: _<think>T</think>_<answer>A</answer>_
                             where T has no tag of the four and A none either (each tag
                             once, in order, nothing after; T or A may be empty) */
    const char *think;    /* the first <think> block's content, trimmed; NULL: none */
    size_t think_len;
    const char *answer;   /* the last complete <answer>...</answer> block's content (the
                             last "</answer>" and the last "<answer>" before it), trimmed;
                             NULL: none. With format_ok, the one block of each */
    size_t answer_len;
} RewardParse;

/* Parse the NUL-terminated completion into *out. */
void reward_parse(const char *completion, RewardParse *out);

typedef struct RewardParts {
    float total;      /* w_accuracy * accuracy + w_format * format + w_language * language */
    float accuracy;   /* 1: the answer block passes t->verify (and, with require_format,
                         the format is right); else 0 */
    float format;     /* 1: format_ok; else 0 */
    float language;   /* share of the words of the thinking (runs of non-white-space bytes)
                         written in the target language, here printable ASCII; 0 with no
                         thinking block or no words */
    int has_answer;   /* an answer block was found */
} RewardParts;

/* Score a completion for problem p of task t with the weights of o (NULL:
 * the defaults) into *out. */
void reward_score(const Task *t, const TaskProblem *p, const char *completion,
                  const RewardOpts *o, RewardParts *out);

#endif
