/* SPDX-License-Identifier: MIT */
/* The task flags that `whale grpo`, `whale distill` and `whale eval` share
 * (--task, --difficulty, --template), checked in one place so the commands
 * say the same thing about the same mistake. */
#ifndef WHALE_TASK_FLAGS_H
#define WHALE_TASK_FLAGS_H

#include "rl/task.h"
#include "rl/template.h"

/* Look up task name, check difficulty against its range (0: the task's
 * default) and parse the template name into *tpl. Returns the task, or NULL
 * after printing one error line for cmd (unknown task with the list of
 * tasks, difficulty out of range, unknown template). */
const Task *cli_task_flags(const char *cmd, const char *name, int difficulty, const char *tpl_name,
                           RlTemplate *tpl);

#endif
