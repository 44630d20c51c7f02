/* SPDX-License-Identifier: MIT */
/* SFT data a tiny model memorises: a task's training problems with their
 * worked solutions, for the tests that need a model with some skill at a
 * task (sft, and GRPO with a signal to learn from). */
#ifndef WHALE_TESTS_TASK_FIXTURE_H
#define WHALE_TESTS_TASK_FIXTURE_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/rng.h"
#include "rl/task.h"
#include "rl/template.h"

/* Training problems 0..n-1 of task (seed, difficulty) with their worked
 * solutions, as {"prompt", "completion"} lines of the short template, into
 * path; prompts[i] and completions[i] get the texts. 0, or -1 (an unknown
 * task, a problem that does not generate, an unwritable path). */
static inline int h_write_task_solutions(const char *path, const char *task, uint64_t seed,
                                         int difficulty, int n, char prompts[][128],
                                         char completions[][512]) {
    const Task *t = task_find(task);
    FILE *f = t ? fopen(path, "w") : NULL;
    if (!f) return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        TaskProblem p;
        Rng r;
        rng_seed(&r, (uint64_t)i);
        char think[TASK_THINK_MAX], answer[TASK_ANSWER_MAX];
        if (task_generate(t, seed, TASK_TRAIN, (uint64_t)i, difficulty, &p) != 0 ||
            t->solve(&p, &r, 0.0f, think, sizeof think, answer, sizeof answer) != 0 ||
            template_prompt(RL_TEMPLATE_SHORT, p.question, prompts[i], 128) <= 0 ||
            template_completion(think, answer, completions[i], 512) <= 0) {
            rc = -1;
            break;
        }
        json_t *j = json_pack("{s:s, s:s}", "prompt", prompts[i], "completion", completions[i]);
        char *line = json_dumps(j, JSON_COMPACT);
        fprintf(f, "%s\n", line);
        free(line);
        json_decref(j);
    }
    return fclose(f) == 0 ? rc : -1;
}

#endif
