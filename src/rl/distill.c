/* SPDX-License-Identifier: MIT */
/* Rejection-sampling distillation (see distill.h). Problem i is training
 * problem i of the seed and its samples use rollout_seed(seed, i), so the
 * written file depends only on the teacher and the options. Completions
 * that are not valid UTF-8 cannot be JSON strings and are not kept. */
#include "rl/distill.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "base/log.h"
#include "infer/chat.h"
#include "io/config.h"
#include "rl/rollout.h"

/* Samples decoding together (rollout_run_batch runs ROLLOUT_MAX_BATCH at
 * once and queues the rest). */
#define DISTILL_CHUNK 256

/* One {"prompt", "completion"} line onto f; 0, or 1 when the completion is
 * not valid UTF-8 (nothing written). */
static int put_pair(FILE *f, const char *prompt, const char *completion) {
    json_t *o = json_object(), *p = json_string(prompt), *c = json_string(completion);
    char *line = NULL;
    if (o && p && c && json_object_set(o, "prompt", p) == 0 &&
        json_object_set(o, "completion", c) == 0)
        line = json_dumps(o, JSON_COMPACT);
    json_decref(o), json_decref(p), json_decref(c);
    if (!line) return 1;
    fputs(line, f);
    fputc('\n', f);
    free(line);
    return 0;
}

/* Right and well formed, and not a repeat of an earlier kept sample of the
 * same problem. */
static int keep(const Rollout *r, int j, const char *kept) {
    if (r[j].reward.accuracy != 1.0f || r[j].reward.format != 1.0f) return 0;
    for (int i = 0; i < j; i++)
        if (kept[i] && !strcmp(r[i].text, r[j].text)) return 0;
    return 1;
}

/* Teacher and student must number the same tokens the same way: the
 * student learns the teacher's text, re-tokenized with its own tokenizer. */
static int same_vocabulary(const Tokenizer *a, const char *teacher, const char *student,
                           Err *err) {
    Tokenizer *b = tokenizer_load(student, err);
    if (!b) return -1;
    const int na = tokenizer_n_vocab(a), nb = tokenizer_n_vocab(b);
    int rc = 0;
    if (na != nb)
        rc = err_set(err, "the teacher %s and the student %s have different vocabularies (%d and "
                          "%d tokens)", teacher, student, na, nb);
    for (int id = 0; rc == 0 && id < na; id++) {
        const char *x = tokenizer_token_str(a, id), *y = tokenizer_token_str(b, id);
        if ((x || y) && (!x || !y || strcmp(x, y) != 0))
            rc = err_set(err, "the teacher %s and the student %s have different vocabularies "
                              "(token %d is '%.40s' and '%.40s')",
                         teacher, student, id, x ? x : "", y ? y : "");
    }
    tokenizer_free(b);
    return rc;
}

int distill_sample(const DistillOpts *o, const char *path, DistillStats *st, Err *err) {
    memset(st, 0, sizeof *st);
    const Task *t = task_find(o->task);
    if (!t) return err_set(err, "unknown task '%s' (tasks: %s)", o->task, task_names());
    if (task_difficulty(t, o->difficulty) < 0)
        return err_set(err, "%s: difficulty %d is out of range", t->name, o->difficulty);
    ChatSession te;
    ChatOpts co = {.raw = 1};
    if (chat_open(&te, o->teacher, &co, err) != 0) return -1;
    if (o->student && same_vocabulary(te.tok, o->teacher, o->student, err) != 0) {
        chat_close(&te);
        return -1;
    }
    /* problems in chunks whose samples decode together */
    const int per = o->k >= DISTILL_CHUNK ? 1 : DISTILL_CHUNK / o->k;
    TaskProblem *probs = calloc((size_t)per, sizeof *probs);
    RolloutJob *jobs = calloc((size_t)per, sizeof *jobs);
    Rollout *r = calloc((size_t)per * o->k, sizeof *r);
    char *kept = calloc((size_t)o->k, 1);
    AtomicFile af = {0};
    int rc = -1, open = 0;
    if (!probs || !jobs || !r || !kept) {
        err_set(err, "out of memory");
        goto done;
    }
    if (afile_open(&af, path, err) != 0) goto done;
    open = 1;
    const int quiet = o->quiet || log_quiet(), interactive = !quiet && isatty(2);
    char prompt[4096];
    for (int i0 = 0; i0 < o->problems; i0 += per) {
        const int n = o->problems - i0 < per ? o->problems - i0 : per;
        for (int c = 0; c < n; c++) {
            task_generate(t, o->seed, TASK_TRAIN, (uint64_t)(i0 + c), o->difficulty, &probs[c]);
            if (template_prompt(o->tpl, probs[c].question, prompt, sizeof prompt) < 0) {
                err_set(err, "the prompt of '%s' is too long", probs[c].question);
                goto done;
            }
            jobs[c] = (RolloutJob){&probs[c], o->k, o->temperature,
                                   rollout_seed(o->seed, (uint64_t)(i0 + c))};
        }
        if (rollout_run_batch(&te.gen, t, o->tpl, jobs, n, o->max_tokens, &o->reward, r, err) != 0)
            goto done;
        for (int c = 0; c < n; c++) {
            const Rollout *rp = r + (size_t)c * o->k;
            template_prompt(o->tpl, probs[c].question, prompt, sizeof prompt); /* fits: above */
            int any = 0;
            for (int j = 0; j < o->k; j++) {
                st->right += rp[j].reward.accuracy == 1.0f && rp[j].reward.format == 1.0f;
                kept[j] = (char)(keep(rp, j, kept) && put_pair(af.fp, prompt, rp[j].text) == 0);
                st->kept += kept[j];
                any |= kept[j];
            }
            st->problems++;
            st->samples += o->k;
            st->problems_kept += any;
        }
        for (int j = 0; j < n * o->k; j++) rollout_free(&r[j]);
        if (interactive)
            fprintf(stderr, "\r\033[Kwhale distill: problem %d/%d | kept %" PRId64, i0 + n,
                    o->problems, st->kept);
    }
    if (interactive) fprintf(stderr, "\r\033[K");
    open = 0;
    if (afile_commit(&af, err) != 0) goto done;
    rc = 0;
done:
    if (open) afile_abort(&af);
    free(kept);
    free(r);
    free(jobs);
    free(probs);
    chat_close(&te);
    return rc;
}

static int write_summary(const DistillOpts *o, const DistillStats *st, const char *path, Err *err) {
    char buf[1024];
    const int n = snprintf(buf, sizeof buf,
                           "{\"task\": \"%s\", \"problems\": %d, \"k\": %d, \"samples\": %" PRId64
                           ", \"right\": %" PRId64 ", \"kept\": %" PRId64
                           ", \"keep_rate\": %.4f, \"problems_kept\": %d, \"temperature\": %g}\n",
                           o->task, st->problems, o->k, st->samples, st->right, st->kept,
                           st->samples ? (double)st->kept / (double)st->samples : 0.0,
                           st->problems_kept, o->temperature);
    return file_write_atomic(path, buf, (size_t)n, err);
}

int distill_run(const DistillOpts *o, Err *err) {
    char data[4096], summary[4096];
    if (path_join(data, sizeof data, o->out, "distill.jsonl") != 0 ||
        path_join(summary, sizeof summary, o->out, "distill.json") != 0)
        return err_set(err, "%s: path too long", o->out);
    if (!o->data_only) { /* fail before sampling, not after */
        ModelConfig c;
        if (config_load(&c, o->student, err) != 0) return -1;
        if (!config_is_mla(&c))
            return err_set(err, "%s: the student must be a deepseek_v2 / deepseek_v3 model to be "
                                "trained, not %s", o->student, c.model_type);
    }
    if (dir_create(o->out, err) != 0) return -1;
    DistillStats st;
    const double t0 = time_now();
    if (distill_sample(o, data, &st, err) != 0 || write_summary(o, &st, summary, err) != 0)
        return -1;
    if (!o->quiet)
        log_info("whale distill: %d problems x %d samples = %" PRId64 "; %" PRId64
                 " right and well formed, %" PRId64 " kept without repeats (keep rate %.1f%%); "
                 "%d of %d problems with a kept sample -> %s (%.1fs)",
                 st.problems, o->k, st.samples, st.right, st.kept,
                 st.samples ? 100.0 * (double)st.kept / (double)st.samples : 0.0,
                 st.problems_kept, st.problems, data, time_now() - t0);
    if (o->data_only) return 0;
    if (st.kept == 0)
        return err_set(err, "no sample of the teacher was right and well formed: nothing to "
                            "train the student on (more --problems or --k, another --temp?)");
    SftOpts so = o->sft;
    so.model = o->student;
    so.data = data;
    so.out = o->out;
    so.chat_template = NULL;
    return sft_run(&so, err);
}
