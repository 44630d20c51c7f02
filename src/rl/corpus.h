/* SPDX-License-Identifier: MIT */
/* The synthetic pretraining corpus of the R1-Zero recipe (`whale
 * task-data`): task statements in the prompt template with worked solutions,
 * drawn from the TRAIN split only, of mixed quality on purpose so that the
 * pretrained base model sometimes succeeds and RL has something to sharpen:
 * some examples skip the thinking and guess, and reasoning makes errors
 * that it carries into the answer. (Not tokenizer/corpus.h, which reads
 * text documents from files.) */
#ifndef WHALE_RL_CORPUS_H
#define WHALE_RL_CORPUS_H

#include <stdint.h>

#include "base/err.h"
#include "rl/task.h"
#include "rl/template.h"

#define CORPUS_SKIP_THINK_DEFAULT 0.3f
#define CORPUS_ERROR_RATE_DEFAULT 0.6f
#define CORPUS_TEXT_MAX 8192 /* template + question + TASK_THINK_MAX + answer fit */
#define CORPUS_MIX_MAX 16

typedef struct CorpusOpts {
    const Task *task;    /* required */
    uint64_t seed;
    int difficulty;      /* 0: the task's default */
    int difficulty_max;  /* > difficulty: each example draws its difficulty uniformly from
                            difficulty..difficulty_max; else every example has difficulty */
    int mix[CORPUS_MIX_MAX]; /* n_mix > 0: each example draws its difficulty uniformly from
                                mix[0..n_mix) instead (repeat one to weight it: 2,2,3 is
                                two thirds 2); difficulty and difficulty_max are unused */
    int n_mix;
    float skip_think;    /* probability that an example has empty thinking and a guessed
                            answer (Task.guess) */
    float error_rate;    /* Task.solve's error_rate for the others */
    RlTemplate tmpl;
} CorpusOpts;

/* Task NULL, seed 0, the task's difficulty, CORPUS_SKIP_THINK_DEFAULT,
 * CORPUS_ERROR_RATE_DEFAULT, RL_TEMPLATE_R1ZERO. */
void corpus_opts_default(CorpusOpts *o);

typedef struct CorpusExample {
    TaskProblem problem;
    int skipped;                 /* the thinking was skipped and the answer guessed */
    int errors;                  /* Task.solve's count (0 for a guess) */
    int correct;                 /* the answer passes the verifier */
    char text[CORPUS_TEXT_MAX];  /* template_prompt + template_completion */
} CorpusExample;

/* Example `index` of the corpus o describes, a pure function of (o,
 * index): problem `index` of the train split (task_generate with o->seed),
 * a skip drawn with probability o->skip_think, then a guess or a worked
 * solution, rendered with o->tmpl. Returns 0, or -1 with err for bad
 * options (difficulty out of the task's range, a probability outside [0, 1]). */
int corpus_example(const CorpusOpts *o, uint64_t index, CorpusExample *ex, Err *err);

typedef struct CorpusStats {
    int64_t n, n_skipped, n_with_errors, n_correct;
} CorpusStats;

/* Write examples 0..n-1 to path as JSONL, one {"text": ...} object per line,
 * atomically (base/file.h). *st (if non-NULL) gets the counts. Returns 0 or
 * -1 with err (bad options, n < 0, the file). */
int corpus_write_jsonl(const CorpusOpts *o, int64_t n, const char *path, CorpusStats *st,
                       Err *err);

#endif
