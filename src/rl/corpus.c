/* SPDX-License-Identifier: MIT */
/* The R1-Zero pretraining corpus (rl/corpus.h): per example one train
 * problem, one seeded Rng for its noise, the template around the result,
 * and a JSON-escaped line. Examples are independent of each other, so any
 * slice of a corpus can be regenerated alone. */
#include "rl/corpus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"

void corpus_opts_default(CorpusOpts *o) {
    memset(o, 0, sizeof *o);
    o->skip_think = CORPUS_SKIP_THINK_DEFAULT;
    o->error_rate = CORPUS_ERROR_RATE_DEFAULT;
    o->tmpl = RL_TEMPLATE_R1ZERO;
}

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int bad_difficulty(const Task *t, int d, Err *err) {
    return err_set(err, "%s: difficulty must be %d..%d, not %d", t->name, t->difficulty_min,
                   t->difficulty_max, d);
}

static int check_opts(const CorpusOpts *o, Err *err) {
    if (!o->task) return err_set(err, "corpus: no task");
    const Task *t = o->task;
    int d = task_difficulty(t, o->difficulty);
    if (d < 0) return bad_difficulty(t, o->difficulty, err);
    if (o->difficulty_max > d && task_difficulty(t, o->difficulty_max) < 0)
        return bad_difficulty(t, o->difficulty_max, err);
    if (o->n_mix < 0 || o->n_mix > CORPUS_MIX_MAX)
        return err_set(err, "corpus: %d difficulties in the mix, at most %d", o->n_mix,
                       CORPUS_MIX_MAX);
    for (int i = 0; i < o->n_mix; i++) /* 0 is not "the default" here */
        if (o->mix[i] < 1 || task_difficulty(t, o->mix[i]) < 0)
            return bad_difficulty(t, o->mix[i], err);
    if (!(o->skip_think >= 0 && o->skip_think <= 1))
        return err_set(err, "skip_think must be in [0, 1], not %g", (double)o->skip_think);
    if (!(o->error_rate >= 0 && o->error_rate <= 1))
        return err_set(err, "error_rate must be in [0, 1], not %g", (double)o->error_rate);
    return 0;
}

int corpus_example(const CorpusOpts *o, uint64_t index, CorpusExample *ex, Err *err) {
    if (check_opts(o, err) != 0) return -1;
    const Task *t = o->task;
    Rng r;
    rng_seed(&r, mix(mix(o->seed ^ 0x636f72707573ull) ^ index)); /* "corpus" */
    int d = task_difficulty(t, o->difficulty);
    if (o->n_mix > 0) d = o->mix[rng_below(&r, (uint64_t)o->n_mix)];
    else if (o->difficulty_max > d)
        d += (int)rng_below(&r, (uint64_t)(o->difficulty_max - d + 1));
    if (task_generate(t, o->seed, TASK_TRAIN, index, d, &ex->problem) != 0)
        return err_set(err, "%s: no train problem at difficulty %d", t->name, d);
    const TaskProblem *p = &ex->problem;
    char think[TASK_THINK_MAX], answer[TASK_ANSWER_MAX];
    ex->skipped = rng_uniform(&r) < o->skip_think;
    ex->errors = 0;
    if (ex->skipped) {
        think[0] = 0;
        t->guess(p, &r, answer, sizeof answer);
    } else {
        ex->errors = t->solve(p, &r, o->error_rate, think, sizeof think, answer, sizeof answer);
        if (ex->errors < 0) return err_set(err, "%s: a worked solution did not fit", t->name);
    }
    ex->correct = t->verify(p, answer);
    int k = template_prompt(o->tmpl, p->question, ex->text, sizeof ex->text);
    if (k < 0 || template_completion(think, answer, ex->text + k, sizeof ex->text - (size_t)k) < 0)
        return err_set(err, "%s: an example does not fit in %d bytes", t->name, CORPUS_TEXT_MAX);
    return 0;
}

/* s as a JSON string (with its quotes) into f. */
static void put_json_string(FILE *f, const char *s) {
    putc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else putc(c, f);
    }
    putc('"', f);
}

int corpus_write_jsonl(const CorpusOpts *o, int64_t n, const char *path, CorpusStats *st,
                       Err *err) {
    CorpusStats s = {0};
    if (n < 0) return err_set(err, "%s: the number of examples must be >= 0, not %lld", path,
                              (long long)n);
    if (check_opts(o, err) != 0) return -1;
    CorpusExample *ex = malloc(sizeof *ex);
    if (!ex) return err_set(err, "%s: out of memory", path);
    AtomicFile af;
    if (afile_open(&af, path, err) != 0) {
        free(ex);
        return -1;
    }
    FILE *f = af.fp;
    for (int64_t i = 0; i < n; i++) {
        if (corpus_example(o, (uint64_t)i, ex, err) != 0) {
            afile_abort(&af);
            free(ex);
            return -1;
        }
        fputs("{\"text\":", f);
        put_json_string(f, ex->text);
        fputs("}\n", f);
        s.n++;
        s.n_skipped += ex->skipped;
        s.n_with_errors += ex->errors > 0;
        s.n_correct += ex->correct;
    }
    free(ex);
    if (afile_commit(&af, err) != 0) return -1;
    if (st) *st = s;
    return 0;
}
