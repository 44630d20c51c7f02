/* SPDX-License-Identifier: MIT */
/* Reasoning tasks for R1-Zero-style RL (DeepSeek-R1, section 2.2): seeded
 * problem generators with disjoint train and test splits and a difficulty
 * knob, exact rule-based verifiers, and worked solutions with controlled
 * noise for the synthetic pretraining corpus (rl/corpus.h). Pure functions of
 * their arguments: no globals, no allocation. docs/rl.md describes each task.
 *
 * A problem's split is a function of its canonical form alone (task_split_of:
 * a hash of Task.key, about 1 problem in TASK_TEST_SHARE is test), never of
 * the seed or index that produced it, so no seed of any train-split user can
 * ever reach a test problem, and the same problem written differently (3 + 5
 * and 5 + 3) lands in one split. */
#ifndef WHALE_TASK_H
#define WHALE_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"

typedef enum TaskSplit { TASK_TRAIN = 0, TASK_TEST = 1 } TaskSplit;

#define TASK_TEST_SHARE 5       /* 1 problem in 5 is held out */
#define TASK_MAX_NUMBERS 8
#define TASK_QUESTION_MAX 256
#define TASK_ANSWER_MAX 128     /* canonical answers; verify accepts any length */
#define TASK_THINK_MAX 4096     /* enough for every solve trace at every difficulty */
#define TASK_KEY_MAX 128

/* One problem. Plain data, copyable; every field set by task_generate. */
typedef struct TaskProblem {
    int difficulty;                     /* the one it was generated at (never 0) */
    char op;                            /* arith: '+', '-' or '*'; else 0 */
    int n_numbers;
    int64_t numbers[TASK_MAX_NUMBERS];  /* arith: the operands a, b; countdown: the given
                                           numbers, in the order shown; linear: a, b, c of
                                           a*x + b = c */
    int64_t target;                     /* arith: the result; countdown: the number to
                                           make; linear: x */
    char question[TASK_QUESTION_MAX];   /* what the user is asked, no final punctuation
                                           (the templates add ". "), e.g. "Compute 487 + 355" */
    char answer[TASK_ANSWER_MAX];       /* one correct answer as the model should write
                                           it: "842"; countdown "(25-7)*3"; linear "5" */
} TaskProblem;

typedef struct Task {
    const char *name;          /* "arith", "countdown", ... */
    const char *description;   /* one line, with what the difficulty means */
    int difficulty_min, difficulty_max, difficulty_default;

    /* Draw one problem at difficulty d (difficulty_min..max) from r: fills
     * every field of p. Called by task_generate, which owns the split; use
     * that instead. */
    void (*draw)(Rng *r, int d, TaskProblem *p);

    /* The canonical form of p into buf (NUL-terminated, < TASK_KEY_MAX
     * bytes): equal for problems that are the same up to presentation
     * (commuted operands, the order of countdown's numbers); prefixed by
     * the problem family, not the task name, so arith and arith-add agree on
     * the split of 3 + 5. */
    void (*key)(const TaskProblem *p, char *buf, size_t n);

    /* 1 if `answer` (NUL-terminated; the content of the <answer> block,
     * already trimmed) is a correct answer to p, else 0. Hostile-input safe:
     * any bytes, any length, never reads past the NUL, bounded recursion and
     * arithmetic (docs/rl.md lists what each task accepts). */
    int (*verify)(const TaskProblem *p, const char *answer);

    /* A worked solution: the reasoning (goes inside <think>) into think and
     * the final answer into answer, both NUL-terminated. The answer is what
     * the reasoning concludes: each of the task's error opportunities (arith
     * add/sub: each carry or borrow; docs/rl.md lists them) is taken with
     * probability error_rate and carried consistently into the answer, so
     * error_rate 0 gives a correct answer. r varies the trace (search
     * order) and draws the errors. Returns 0 when the answer is correct,
     * else the number of errors made (>= 1), or -1 when a buffer is too
     * small (TASK_THINK_MAX and TASK_ANSWER_MAX are always enough). */
    int (*solve)(const TaskProblem *p, Rng *r, float error_rate, char *think, size_t nt,
                 char *answer, size_t na);

    /* An answer written without reasoning: plausible (the right shape and
     * size) and right about one time in four. Into answer (NUL-terminated,
     * truncated to na - 1 bytes; TASK_ANSWER_MAX is enough). */
    void (*guess)(const TaskProblem *p, Rng *r, char *answer, size_t na);
} Task;

/* The task called name, or NULL. Names: "arith" (+, - and * mixed),
 * "arith-add", "arith-sub", "arith-mul", "countdown", "linear". */
const Task *task_find(const char *name);

/* The registered names, comma-separated, for help and error messages (a
 * static string). */
const char *task_names(void);

/* The difficulty d stands for: difficulty_default for 0, d itself when in
 * the task's range, else -1. */
int task_difficulty(const Task *t, int d);

/* Problem `index` of `split` at difficulty d (0: the task's default), a pure
 * function of (t, seed, split, index, d): draws from an Rng seeded by all
 * five until the problem's split (task_split_of) is `split`. Returns 0, or -1
 * for a difficulty outside the task's range (p is then untouched). */
int task_generate(const Task *t, uint64_t seed, TaskSplit split, uint64_t index, int d,
                  TaskProblem *p);

/* The split p belongs to: TASK_TEST when the 64-bit hash of its key is 0
 * modulo TASK_TEST_SHARE, else TASK_TRAIN. */
TaskSplit task_split_of(const Task *t, const TaskProblem *p);

#endif
