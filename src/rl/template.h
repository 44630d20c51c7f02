/* SPDX-License-Identifier: MIT */
/* The R1-Zero prompt template (DeepSeek-R1, Table 1) and the shape of the
 * completion it asks for: the prompt ends with "Assistant:" and the model
 * writes " <think> reasoning </think> <answer> answer </answer>". One
 * definition for the corpus, GRPO, eval, SFT and distillation, so that
 * what a model is pretrained on is byte for byte what it is prompted with. */
#ifndef WHALE_RL_TEMPLATE_H
#define WHALE_RL_TEMPLATE_H

#include <stddef.h>

typedef enum RlTemplate {
    RL_TEMPLATE_R1ZERO = 0, /* "r1zero": the paper's instruction, then "User: {q}. Assistant:" */
    RL_TEMPLATE_SHORT,      /* "short": "User: {q}. Assistant:" alone, for tiny models whose
                               context the instruction would fill */
} RlTemplate;

/* "r1zero" or "short" into *out: 0, or -1 for another name. */
int template_parse(const char *name, RlTemplate *out);
/* The name template_parse reads. */
const char *template_name(RlTemplate t);

/* The prompt for a question (no final punctuation: the template adds ". ")
 * into buf, NUL-terminated. The r1zero prompt is, on one line:
 *   A conversation between User and Assistant. The user asks a question, and
 *   the Assistant solves it. The assistant first thinks about the reasoning
 *   process in the mind and then provides the user with the answer. The
 *   reasoning process and answer are enclosed within <think> </think> and
 *   <answer> </answer> tags, respectively, i.e., <think> reasoning process
 *   here </think> <answer> answer here </answer>. User: {q}. Assistant:
 * Returns the length, or -1 if it does not fit in n bytes. */
int template_prompt(RlTemplate t, const char *question, char *buf, size_t n);

/* The completion a prompt asks for, as the corpus writes it:
 *   " <think> {think} </think> <answer> {answer} </answer>"
 * with an empty think written " <think> </think> ...". Into buf,
 * NUL-terminated; returns the length, or -1 if it does not fit. The reward
 * (rl/reward.h) accepts any white space where this writes one space. */
int template_completion(const char *think, const char *answer, char *buf, size_t n);

#endif
