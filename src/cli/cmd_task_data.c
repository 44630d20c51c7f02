/* SPDX-License-Identifier: MIT */
/* whale task-data: the synthetic pretraining corpus of the R1-Zero recipe
 * (rl/corpus.h) as JSONL, one {"text": ...} per line, from the train split of
 * a task only, ready for `whale tokenizer-train` and `whale data`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "rl/corpus.h"

#define CMD "task-data"

/* "D", "D1-D2" (0 < D1 <= D2) or "D,D,..." (at most CORPUS_MIX_MAX) into
 * o's difficulty, difficulty_max or mix; -1 if malformed. */
static int parse_difficulty(const char *s, CorpusOpts *o) {
    char *end;
    long a = strtol(s, &end, 10), b = a;
    if (end == s || a < 1 || a > 1000) return -1;
    if (*end == ',') {
        o->mix[0] = (int)a;
        for (o->n_mix = 1; *end == ','; o->n_mix++) {
            const char *t = end + 1;
            long v = strtol(t, &end, 10);
            if (end == t || v < 1 || v > 1000 || o->n_mix == CORPUS_MIX_MAX) return -1;
            o->mix[o->n_mix] = (int)v;
        }
        return *end ? -1 : 0;
    }
    if (*end == '-') {
        const char *t = end + 1;
        b = strtol(t, &end, 10);
        if (end == t || b < a || b > 1000) return -1;
    }
    if (*end) return -1;
    o->difficulty = (int)a;
    o->difficulty_max = (int)b;
    return 0;
}

int cmd_task_data(int argc, char **argv) {
    const char *task = NULL, *out = NULL, *difficulty = NULL, *tmpl = NULL;
    int n = -1, seed = 0, threads = 0;
    float skip = -1, error_rate = -1; /* not given */
    ArgSpec specs[] = {
        {"task", 0, ARG_STR, &task,
         "NAME: arith, arith-add, arith-sub, arith-mul, countdown, linear"},
        {"n", 'n', ARG_INT, &n, "N: number of examples (lines)"},
        {"out", 'o', ARG_STR, &out, "FILE: the JSONL file to write"},
        {"seed", 0, ARG_INT, &seed, "N: seed of the problems and the noise (default 0)"},
        {"difficulty", 0, ARG_STR, &difficulty,
         "D: the task's difficulty (default: the task's), D1-D2 for a uniform mix, or "
         "D,D,... drawn uniformly (2,2,3: two thirds 2)"},
        {"skip-think", 0, ARG_FLOAT, &skip,
         "P: share of examples without reasoning and with a guessed answer (default 0.3)"},
        {"error-rate", 0, ARG_FLOAT, &error_rate,
         "P: probability of each error in the reasoning, e.g. a dropped carry (default 0.6)"},
        {"template", 0, ARG_STR, &tmpl, "NAME: prompt template, r1zero (default) or short"},
        {"threads", 't', ARG_INT, &threads, "N: unused (generation is single-threaded)"},
    };
    int r = args_parse(CMD, "--task NAME --n N --out FILE.jsonl [flags]", specs,
                       (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!task || !out || n < 0)
        return cli_fail(CMD, "--task NAME, --n N (>= 0) and --out FILE are required"), 2;
    if (cli_threads(CMD, threads) != 0) return 2;
    CorpusOpts o;
    corpus_opts_default(&o);
    if (!(o.task = task_find(task)))
        return cli_fail(CMD, "--task: unknown task '%s' (tasks: %s)", task, task_names()), 2;
    o.seed = (uint64_t)(int64_t)seed;
    if (difficulty && parse_difficulty(difficulty, &o) != 0)
        return cli_fail(CMD, "--difficulty expects D, D1-D2 (D1 <= D2, from 1) or D,D,... (at "
                        "most %d), got '%s'", CORPUS_MIX_MAX, difficulty), 2;
    int bad = difficulty && (task_difficulty(o.task, o.difficulty) < 0 ||
                             task_difficulty(o.task, o.difficulty_max) < 0);
    for (int i = 0; i < o.n_mix; i++) bad |= task_difficulty(o.task, o.mix[i]) < 0;
    if (bad)
        return cli_fail(CMD, "--difficulty: %s takes %d..%d, not %s", o.task->name,
                        o.task->difficulty_min, o.task->difficulty_max, difficulty), 2;
    if (skip != -1) {
        if (!(skip >= 0 && skip <= 1))
            return cli_fail(CMD, "--skip-think must be in [0, 1], not %g", (double)skip), 2;
        o.skip_think = skip;
    }
    if (error_rate != -1) {
        if (!(error_rate >= 0 && error_rate <= 1))
            return cli_fail(CMD, "--error-rate must be in [0, 1], not %g", (double)error_rate),
                   2;
        o.error_rate = error_rate;
    }
    if (tmpl && template_parse(tmpl, &o.tmpl) != 0)
        return cli_fail(CMD, "--template must be r1zero or short, not '%s'", tmpl), 2;

    Err err = {{0}};
    CorpusStats st;
    double t0 = time_now();
    if (corpus_write_jsonl(&o, n, out, &st, &err) != 0) return cli_fail(CMD, "%s", err.msg);
    double pct = st.n ? 100.0 / (double)st.n : 0;
    int d = task_difficulty(o.task, o.difficulty);
    char dtext[32];
    if (o.n_mix > 0) snprintf(dtext, sizeof dtext, "%s", difficulty);
    else if (o.difficulty_max > d) snprintf(dtext, sizeof dtext, "%d-%d", d, o.difficulty_max);
    else snprintf(dtext, sizeof dtext, "%d", d);
    log_info("whale task-data: %lld %s examples (difficulty %s, train split, template %s) -> %s "
             "in %.2f s; thinking skipped %.1f%%, reasoning with errors %.1f%%, answers right "
             "%.1f%%",
             (long long)st.n, o.task->name, dtext, template_name(o.tmpl), out, time_now() - t0,
             (double)st.n_skipped * pct, (double)st.n_with_errors * pct,
             (double)st.n_correct * pct);
    return 0;
}
