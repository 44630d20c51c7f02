/* SPDX-License-Identifier: MIT */
/* libFuzzer entry for what reads model output in RL: the reward parser
 * (rl/reward.h) and countdown's expression evaluator (rl/countdown_expr.h).
 * Any bytes must be scored without a crash, with rewards in their ranges;
 * the evaluator must return a status, and a value only on success. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rl/countdown_expr.h"
#include "rl/reward.h"
#include "rl/task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0; /* the completion ends at the first NUL, as generated text does */
    static const char *tasks[] = {"arith", "countdown", "linear"};
    for (int i = 0; i < 3; i++) {
        const Task *t = task_find(tasks[i]);
        TaskProblem p;
        if (!t || task_generate(t, 1, TASK_TEST, size % 97, 0, &p) != 0) abort();
        RewardParts r;
        reward_score(t, &p, s, NULL, &r);
        if (!(r.accuracy == 0 || r.accuracy == 1) || !(r.format == 0 || r.format == 1) ||
            !(r.language >= 0 && r.language <= 1))
            abort();
    }
    const int64_t nums[4] = {3, 7, 25, 100};
    int64_t v = 0;
    CountdownStatus st = countdown_eval(s, nums, 4, &v);
    (void)st;
    free(s);
    return 0;
}
