/* SPDX-License-Identifier: MIT */
/* R1-Zero prompt and completion text (rl/template.h). The instruction is
 * the one of Table 1 of the DeepSeek-R1 paper, word for word. */
#include "rl/template.h"

#include <stdio.h>
#include <string.h>

static const char R1ZERO_INSTRUCTION[] =
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
    "process here </think> <answer> answer here </answer>. ";

int template_parse(const char *name, RlTemplate *out) {
    if (!name) return -1;
    if (!strcmp(name, "r1zero")) *out = RL_TEMPLATE_R1ZERO;
    else if (!strcmp(name, "short")) *out = RL_TEMPLATE_SHORT;
    else return -1;
    return 0;
}

const char *template_name(RlTemplate t) { return t == RL_TEMPLATE_SHORT ? "short" : "r1zero"; }

static int fits(int k, size_t n) { return k >= 0 && (size_t)k < n ? k : -1; }

int template_prompt(RlTemplate t, const char *question, char *buf, size_t n) {
    const char *pre = t == RL_TEMPLATE_SHORT ? "" : R1ZERO_INSTRUCTION;
    return fits(snprintf(buf, n, "%sUser: %s. Assistant:", pre, question), n);
}

int template_completion(const char *think, const char *answer, char *buf, size_t n) {
    return fits(snprintf(buf, n, " <think> %s%s</think> <answer> %s </answer>", think,
                         think[0] ? " " : "", answer),
                n);
}
