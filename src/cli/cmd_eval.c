/* SPDX-License-Identifier: MIT */
/* whale eval: a model on held-out problems of a task (rl/eval.h). Prints a
 * summary, or with --json the one line DESIGN.md fixes: {"task", "n",
 * "pass1" (greedy), "pass1_sampled", "passk", "k", "completion_len"} plus
 * "format". */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/task_flags.h"
#include "infer/chat.h"
#include "rl/eval.h"

typedef struct Shown {
    int examples, quiet;
} Shown;

static void on_problem(void *user, int i, const TaskProblem *p, const Rollout *g, int n_right) {
    Shown *s = user;
    if (i < s->examples)
        fprintf(stderr, "--- problem %d: %s (answer %s)\n%s\n--- %s\n", i, p->question, p->answer,
                g->text, g->reward.accuracy > 0 ? "right" : "wrong");
    else if (!s->quiet && (i + 1) % 10 == 0)
        log_info("whale eval: %d problems done", i + 1);
    (void)n_right;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *task_name = NULL, *tpl_name = "r1zero";
    int n = 100, k = 8, seed = 0, difficulty = 0, max_tokens = 256, json = 0, threads = 0;
    int examples = 0, quiet = 0;
    float temp = 1.0f;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model, "PATH: model directory or .gguf"},
        {"task", 0, ARG_STR, &task_name, "NAME: the task (whale task-data --help lists them)"},
        {"n", 'n', ARG_INT, &n, "N: held-out problems (default 100)"},
        {"k", 'k', ARG_INT, &k, "K: samples per problem for pass1_sampled and pass@k (default 8; 0: greedy only)"},
        {"seed", 0, ARG_INT, &seed, "S: which problems and samples (default 0)"},
        {"difficulty", 0, ARG_INT, &difficulty, "D: task difficulty (default: the task's)"},
        {"template", 0, ARG_STR, &tpl_name, "r1zero|short: prompt template (default r1zero)"},
        {"max-tokens", 0, ARG_INT, &max_tokens, "N: tokens per completion (default 256)"},
        {"temp", 0, ARG_FLOAT, &temp, "T: temperature of the k samples (default 1)"},
        {"examples", 0, ARG_INT, &examples, "N: print the first N greedy completions to stderr"},
        {"json", 0, ARG_FLAG, &json, "print one JSON line"},
        {"quiet", 'q', ARG_FLAG, &quiet, "no progress"},
        {"threads", 't', ARG_INT, &threads, "N: threads (default: all cores)"},
    };
    int r = args_parse("eval", "-m PATH --task NAME [--n N] [--k K] [--seed S] [--json]", specs,
                       (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!model || !task_name) return cli_fail("eval", "-m PATH and --task NAME are required"), 2;
    RlTemplate tpl;
    const Task *task = cli_task_flags("eval", task_name, difficulty, tpl_name, &tpl);
    if (!task) return 2;
    if (n < 1 || n > 1000000 || k < 0 || k > 1024 || seed < 0 || max_tokens < 1 || examples < 0 ||
        !(temp > 0))
        return cli_fail("eval", "--n must be >= 1, --k 0..1024, --seed >= 0, --max-tokens >= 1, "
                                "--temp > 0"),
               2;
    if (cli_threads("eval", threads) != 0) return 2;
    Err err = {0};
    ChatSession s;
    ChatOpts co = {.raw = 1};
    if (chat_open(&s, model, &co, &err) != 0) return cli_fail("eval", "%s", err.msg);
    EvalOpts eo = {task, tpl, n, k, difficulty, (uint64_t)seed, max_tokens, temp};
    EvalResult res;
    Shown shown = {examples, quiet || json};
    int rc = eval_run(&s.gen, &eo, on_problem, &shown, &res, &err);
    chat_close(&s);
    if (rc != 0) return cli_fail("eval", "%s", err.msg);
    if (json)
        printf("{\"task\": \"%s\", \"n\": %d, \"pass1\": %.4f, \"pass1_sampled\": %.4f, "
               "\"passk\": %.4f, \"k\": %d, \"completion_len\": %.2f, \"format\": %.4f}\n",
               task->name, res.n, res.pass1, res.pass1_sampled, res.passk, res.k,
               res.completion_len, res.format);
    else
        printf("%s, %d held-out problems (seed %d): greedy pass@1 %.1f%%, sampled pass@1 %.1f%%, "
               "pass@%d %.1f%%, format %.1f%%, %.1f tokens per completion\n",
               task->name, res.n, seed, 100 * res.pass1, 100 * res.pass1_sampled, res.k,
               100 * res.passk, 100 * res.format, res.completion_len);
    return 0;
}
