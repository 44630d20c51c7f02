/* SPDX-License-Identifier: MIT */
/* The shared task flags (see task_flags.h). */
#include "cli/task_flags.h"

#include "cli/args.h"

const Task *cli_task_flags(const char *cmd, const char *name, int difficulty, const char *tpl_name,
                           RlTemplate *tpl) {
    const Task *t = task_find(name);
    if (!t) return cli_fail(cmd, "unknown task '%s' (tasks: %s)", name, task_names()), NULL;
    if (task_difficulty(t, difficulty) < 0)
        return cli_fail(cmd, "--difficulty %d is out of range for %s (%d..%d)", difficulty,
                        t->name, t->difficulty_min, t->difficulty_max),
               NULL;
    if (template_parse(tpl_name, tpl) != 0)
        return cli_fail(cmd, "--template must be r1zero or short, not '%s'", tpl_name), NULL;
    return t;
}
