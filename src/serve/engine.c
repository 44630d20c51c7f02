/* SPDX-License-Identifier: MIT */
/* The serving engine (see engine.h). The worker loop: admit queued jobs into
 * free slots (each slot's cache starts from the longest prefix the prefix
 * cache holds), then one model_forward_seqs per step over one row for every
 * decoding slot plus a chunk of the prompt rows still to prefill, then
 * sample each finished row, turn the id into text (TextStream), cut at a
 * stop string, split thinking from the answer (ThinkSplit) and append the
 * pieces to the job, whose reader wakes up. A slot is freed the step its job
 * ends; its rows go into the prefix cache. Lock order: a job's mutex may be
 * held while taking the engine's, never the other way round. */
#include "serve/engine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/threads.h"
#include "kernels/matmul.h"
#include "infer/chat.h"
#include "infer/text_stream.h"
#include "infer/think_split.h"
#include "serve/prefix_cache.h"

#define DEFAULT_PARALLEL 4
#define DEFAULT_QUEUE 64
#define DEFAULT_CACHE_MB 256
#define DEFAULT_CHUNK 256
#define MAX_STOP_LEN 256

/* A run of output of one part: the job's text[from of the previous run .. end). */
typedef struct Run {
    GenPart part;
    size_t end;
} Run;

struct Job {
    Engine *e;              /* NULL once finished (the engine may be gone) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;               /* the caller's and, until it finishes, the worker's */
    atomic_int cancel;
    /* input: fixed at submit, read by the worker */
    int *ids;
    int n_ids;
    int opens_think;
    JobParams p;
    char *stop[ENGINE_MAX_STOP];
    int n_stop;
    double t_submit;
    Job *next;              /* the engine's queue (under e->mu) */
    /* output: under mu */
    char *text;             /* everything generated, parts in runs */
    size_t len, cap, taken;
    Run *runs;
    int n_runs, cap_runs;
    int oom;
    int done;
    const char *finish;
    char error[256];
    JobUsage usage;
};

/* One sequence being served. */
typedef struct Slot {
    Job *job;               /* NULL: free */
    KVCache kv;
    Sampler smp;
    TextStream ts;
    ThinkSplit split;
    int *ids;               /* (n_ctx + 1) the prompt, then every sampled id that is not a stop */
    int n_ids, n_prompt;
    int next;               /* the sampled id the next step feeds; -1 while prefilling */
    int n_gen, n_reasoning;
    char *pend;             /* text held back because it may start a stop string */
    size_t n_pend;
    int cut;                /* a stop string was found: no more text */
    int dirty;              /* new output this step: wake the reader */
    double t_admit, t_prompt;
} Slot;

struct Engine {
    ChatSession cs;         /* model, tokenizer, template; its generator holds the stop ids */
    EngineOpts o;
    char name[256];
    int n_vocab;            /* ids the tokenizer can decode: what sampling draws from */
    int fim_kind;           /* 0 none, 1 DeepSeek, 2 Qwen */
    PrefixCache *pc;
    Slot *slots;
    int *rows;              /* (max_chunk) the token of each row of a step */
    int *start;             /* (parallel + 1) */
    Slot **seq;             /* (parallel) */
    float *logits;          /* (parallel, V) */
    int *drawn;             /* (parallel) each sequence's sampled token of a step, or -1 */
    pthread_t worker;
    int started;
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t cv;
    int stopping;
    Job *queue_head, *queue_tail;
    int n_queued, n_active;
    PrefixCacheStats pcs;
    double last_tok_s;
};

static const char *const FIM_TOKENS[3][3] = {
    {NULL, NULL, NULL},
    {"<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"},
    {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"},
};

/* ---- jobs: the shared side ------------------------------------------------------ */

static void job_free(Job *j) {
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    free(j->ids);
    free(j->text);
    free(j->runs);
    free(j);
}

static void job_unref(Job *j) {
    pthread_mutex_lock(&j->mu);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) job_free(j);
}

/* Append output of one part (under j->mu). */
static void job_append(Job *j, GenPart part, const char *s, size_t n) {
    if (j->oom) return;
    if (j->len + n + 1 > j->cap) {
        size_t c = j->cap ? j->cap : 1024;
        while (c < j->len + n + 1) c *= 2;
        char *t = realloc(j->text, c);
        if (!t) {
            j->oom = 1;
            return;
        }
        j->text = t, j->cap = c;
    }
    memcpy(j->text + j->len, s, n);
    j->len += n;
    if (j->n_runs && j->runs[j->n_runs - 1].part == part) {
        j->runs[j->n_runs - 1].end = j->len;
        return;
    }
    if (j->n_runs == j->cap_runs) {
        int c = j->cap_runs ? 2 * j->cap_runs : 4;
        Run *r = realloc(j->runs, sizeof *r * (size_t)c);
        if (!r) {
            j->oom = 1;
            return;
        }
        j->runs = r, j->cap_runs = c;
    }
    j->runs[j->n_runs++] = (Run){part, j->len};
}

static char *dup_bytes(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* The run holding offset at (at < len). */
static int run_at(const Job *j, size_t at) {
    int r = 0;
    while (j->runs[r].end <= at) r++;
    return r;
}

int job_take(Job *j, int timeout_ms, JobDelta *d) {
    memset(d, 0, sizeof *d);
    pthread_mutex_lock(&j->mu);
    if (timeout_ms != 0 && j->taken == j->len && !j->done) {
        if (timeout_ms < 0) {
            while (j->taken == j->len && !j->done) pthread_cond_wait(&j->cv, &j->mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            while (j->taken == j->len && !j->done)
                if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) != 0) break;
        }
    }
    int rc = 0;
    /* Take one run, and the answer run right after a thinking run: the two
     * fields of a delta keep the stream's order that way. */
    for (int k = 0; k < 2 && j->taken < j->len; k++) {
        const Run *r = &j->runs[run_at(j, j->taken)];
        char **dst = r->part == GEN_THINKING ? &d->reasoning : &d->content;
        size_t *dlen = r->part == GEN_THINKING ? &d->reasoning_len : &d->content_len;
        if (*dst || (k == 1 && r->part == GEN_THINKING)) break;
        *dst = dup_bytes(j->text + j->taken, r->end - j->taken);
        if (!*dst) {
            rc = -1;
            break;
        }
        *dlen = r->end - j->taken;
        j->taken = r->end;
        rc = 1;
    }
    if (rc >= 0 && j->taken == j->len && j->done) {
        d->done = 1;
        d->finish_reason = j->finish;
        memcpy(d->error, j->error, sizeof d->error);
        d->usage = j->usage;
        rc = 1;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

void job_delta_free(JobDelta *d) {
    free(d->reasoning);
    free(d->content);
    memset(d, 0, sizeof *d);
}

void job_cancel(Job *j) {
    pthread_mutex_lock(&j->mu);
    atomic_store(&j->cancel, 1);
    if (!j->done && j->e) {
        /* wake an idle worker (lock order: job, then engine) */
        pthread_mutex_lock(&j->e->mu);
        pthread_cond_signal(&j->e->cv);
        pthread_mutex_unlock(&j->e->mu);
    }
    pthread_mutex_unlock(&j->mu);
}

void job_release(Job *j) {
    if (!j) return;
    job_cancel(j);
    job_unref(j);
}

/* ---- prompts --------------------------------------------------------------------- */

void engine_prompt_free(EnginePrompt *p) {
    free(p->ids);
    memset(p, 0, sizeof *p);
}

static int prompt_fits(const Engine *e, const EnginePrompt *p, Err *err) {
    if (p->n < 1) return err_set(err, "the prompt is empty");
    if (p->n >= e->o.n_ctx) {
        err_set(err, "the prompt has %d tokens but the context holds %d (at least one must be left "
                     "to generate)",
                p->n, e->o.n_ctx);
        return ENGINE_TOO_LONG;
    }
    return 0;
}

static int prompt_encode(Engine *e, const char *text, size_t len, int add_bos, EnginePrompt *out,
                         Err *err) {
    memset(out, 0, sizeof *out);
    if (tokenizer_encode(e->cs.tok, text, len, add_bos, &out->ids, &out->n, err) != 0) return -1;
    out->opens_think = think_split_open_at_end(text, len);
    const int rc = prompt_fits(e, out, err);
    if (rc != 0) engine_prompt_free(out);
    return rc;
}

int engine_prompt_chat(Engine *e, const ChatMessage *msgs, int n, EnginePrompt *out, Err *err) {
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    /* The templates render no reasoning_content: R1 drops earlier thinking. */
    if (chat_template_render(e->cs.tmpl, msgs, n, 1, &text, &len, err) != 0) return -1;
    int rc = prompt_encode(e, text, len, 0, out, err);
    free(text);
    return rc;
}

int engine_prompt_text(Engine *e, const char *prompt, const char *suffix, EnginePrompt *out,
                       Err *err) {
    memset(out, 0, sizeof *out);
    if (!suffix) return prompt_encode(e, prompt, strlen(prompt), 1, out, err);
    if (!e->fim_kind)
        return err_set(err, "'suffix' needs fill-in-the-middle tokens, which the tokenizer of "
                            "model '%s' does not have", e->name);
    const char *const *t = FIM_TOKENS[e->fim_kind];
    size_t len = strlen(t[0]) + strlen(prompt) + strlen(t[1]) + strlen(suffix) + strlen(t[2]);
    char *text = malloc(len + 1);
    if (!text) return err_set(err, "out of memory for the prompt");
    /* DeepSeek: begin prefix hole suffix end; Qwen: prefix P suffix S middle */
    snprintf(text, len + 1, "%s%s%s%s%s", t[0], prompt, t[1], suffix, t[2]);
    int rc = prompt_encode(e, text, len, 1, out, err);
    free(text);
    return rc;
}

/* ---- submitting ------------------------------------------------------------------- */

Job *engine_submit(Engine *e, EnginePrompt *p, const JobParams *params, EngineRefusal *why,
                   Err *err) {
    *why = ENGINE_INVALID;
    if (prompt_fits(e, p, err) != 0) return NULL;
    for (int i = 0; i < p->n; i++)
        if (p->ids[i] < 0 || p->ids[i] >= e->cs.model.cfg.vocab_size) {
            err_set(err, "prompt token %d is outside the vocabulary", p->ids[i]);
            return NULL;
        }
    Job *j = calloc(1, sizeof *j);
    if (!j) {
        err_set(err, "out of memory for the request");
        return NULL;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->e = e;
    j->refs = 2;
    j->p = *params;
    for (int i = 0; i < ENGINE_MAX_STOP && params->stop[i]; i++) {
        size_t n = strlen(params->stop[i]);
        if (n == 0 || n > MAX_STOP_LEN) {
            err_set(err, "stop string %d must have 1 to %d bytes", i, MAX_STOP_LEN);
            goto fail;
        }
        if (!(j->stop[j->n_stop++] = dup_bytes(params->stop[i], n))) {
            err_set(err, "out of memory for the request");
            goto fail;
        }
    }
    for (int i = 0; i < ENGINE_MAX_STOP; i++) j->p.stop[i] = NULL; /* the copies are j->stop */
    Sampler probe;
    if (sampler_init(&probe, 1, &params->sampling, err) != 0) goto fail; /* checks the options */
    sampler_free(&probe);
    j->t_submit = time_now();
    pthread_mutex_lock(&e->mu);
    if (e->stopping || e->n_queued >= e->o.queue) {
        *why = e->stopping ? ENGINE_STOPPING : ENGINE_BUSY;
        err_set(err, e->stopping ? "the server is shutting down"
                                 : "the server is busy: %d requests running and %d waiting",
                e->n_active, e->n_queued);
        pthread_mutex_unlock(&e->mu);
        goto fail;
    }
    j->ids = p->ids, j->n_ids = p->n, j->opens_think = p->opens_think;
    p->ids = NULL, p->n = 0;
    if (e->queue_tail) e->queue_tail->next = j;
    else e->queue_head = j;
    e->queue_tail = j;
    e->n_queued++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    *why = ENGINE_OK;
    return j;
fail:
    job_free(j);
    return NULL;
}

/* ---- the worker: text of a slot ----------------------------------------------------- */

/* The splitter's output goes to the job. */
static void on_part(void *user, GenPart part, const char *s, size_t n) {
    Slot *sl = user;
    pthread_mutex_lock(&sl->job->mu);
    job_append(sl->job, part, s, n);
    pthread_mutex_unlock(&sl->job->mu);
    sl->dirty = 1;
}

/* Length of the longest tail of s (n) that is a proper prefix of a stop string. */
static size_t stop_tail(const Job *j, const char *s, size_t n) {
    size_t best = 0;
    for (int i = 0; i < j->n_stop; i++) {
        size_t m = strlen(j->stop[i]);
        for (size_t k = m - 1 < n ? m - 1 : n; k > best; k--)
            if (!memcmp(s + n - k, j->stop[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* The TextStream's output: cut at the first stop string (held back while a
 * tail could still become one), the rest to the splitter. */
static void on_text(void *user, const char *s, size_t n) {
    Slot *sl = user;
    const Job *j = sl->job;
    if (sl->cut) return;
    if (!j->n_stop) {
        think_split_feed(&sl->split, s, n);
        return;
    }
    /* pend holds at most MAX_STOP_LEN - 1 bytes; a piece is at most 512 */
    char buf[MAX_STOP_LEN + 1024];
    size_t len = 0;
    memcpy(buf, sl->pend, sl->n_pend);
    len = sl->n_pend;
    while (n) {
        size_t k = n < sizeof buf - len ? n : sizeof buf - len;
        memcpy(buf + len, s, k);
        len += k, s += k, n -= k;
        size_t at = len;
        for (int i = 0; i < j->n_stop; i++) {
            const char *hit = memmem(buf, len, j->stop[i], strlen(j->stop[i]));
            if (hit && (size_t)(hit - buf) < at) at = (size_t)(hit - buf);
        }
        if (at < len) {
            if (at) think_split_feed(&sl->split, buf, at);
            sl->cut = 1;
            sl->n_pend = 0;
            return;
        }
        size_t keep = stop_tail(j, buf, len);
        if (len > keep) think_split_feed(&sl->split, buf, len - keep);
        memmove(buf, buf + len - keep, keep);
        len = keep;
    }
    memcpy(sl->pend, buf, len);
    sl->n_pend = len;
}

/* ---- the worker: slots ------------------------------------------------------------- */

static void slot_finish(Engine *e, Slot *sl, const char *reason, const char *error) {
    Job *j = sl->job;
    if (!sl->cut) {
        text_stream_flush(&sl->ts);
        if (sl->n_pend) think_split_feed(&sl->split, sl->pend, sl->n_pend);
    }
    sl->n_pend = 0;
    think_split_flush(&sl->split);
    double now = time_now(), gen_s = sl->t_prompt ? now - sl->t_prompt : 0;
    /* counted out before the reader can see the end, so stats agree with it */
    pthread_mutex_lock(&e->mu);
    if (gen_s > 0 && sl->n_gen > 1) e->last_tok_s = (sl->n_gen - 1) / gen_s;
    e->n_active--;
    pthread_mutex_unlock(&e->mu);
    pthread_mutex_lock(&j->mu);
    j->usage.completion_tokens = sl->n_gen;
    j->usage.reasoning_tokens = sl->n_reasoning;
    j->usage.prompt_s = (sl->t_prompt ? sl->t_prompt : now) - sl->t_admit;
    j->usage.gen_s = gen_s;
    if (j->oom && !error) reason = "error", error = "out of memory for the answer";
    j->finish = reason;
    if (error) snprintf(j->error, sizeof j->error, "%s", error);
    j->done = 1;
    j->e = NULL;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    /* The rows computed so far serve later prompts (the next turn of a chat
     * starts with this one); after an error the cache may hold a failed step. */
    if (e->pc && !error && sl->kv.len > 0) prefix_cache_insert(e->pc, sl->ids, sl->kv.len, &sl->kv);
    sampler_free(&sl->smp);
    sl->job = NULL;
    job_unref(j);
}

/* Finish a job that never got a slot. */
static void job_finish_unslotted(Job *j, const char *reason) {
    pthread_mutex_lock(&j->mu);
    j->usage.prompt_tokens = j->n_ids;
    j->finish = reason;
    j->done = 1;
    j->e = NULL;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_unref(j);
}

static void slot_start(Engine *e, Slot *sl, Job *j) {
    Err err;
    sl->job = j;
    pthread_mutex_lock(&e->mu);
    e->n_active++;
    pthread_mutex_unlock(&e->mu);
    sl->t_admit = time_now();
    sl->t_prompt = 0;
    sl->n_gen = sl->n_reasoning = 0;
    sl->n_pend = 0;
    sl->cut = sl->dirty = 0;
    sl->next = -1;
    memcpy(sl->ids, j->ids, sizeof(int) * (size_t)j->n_ids);
    sl->n_ids = sl->n_prompt = j->n_ids;
    /* Penalties count the generated tokens only (OpenAI: "the text so far"
     * of the completion), all of them. */
    SamplerOpts so = j->p.sampling;
    so.penalty_last_n = -1;
    if (sampler_init(&sl->smp, e->n_vocab, &so, &err) != 0) {
        slot_finish(e, sl, "error", err.msg);
        return;
    }
    text_stream_init(&sl->ts, e->cs.tok, on_text, sl);
    think_split_init(&sl->split, j->opens_think, on_part, sl);
    /* at least the last prompt token is prefilled: its logits are not kept */
    int hit = e->pc ? prefix_cache_lookup(e->pc, sl->ids, sl->n_prompt, sl->n_prompt - 1, &sl->kv)
                    : 0;
    sl->kv.len = hit;
    pthread_mutex_lock(&j->mu);
    j->usage.prompt_tokens = sl->n_prompt;
    j->usage.cache_hit_tokens = hit;
    j->usage.cache_miss_tokens = sl->n_prompt - hit;
    j->usage.queue_s = sl->t_admit - j->t_submit;
    pthread_mutex_unlock(&j->mu);
}

/* A sampled id: end the job, or stream it and feed it next step. */
static void slot_take_token(Engine *e, Slot *sl, int id) {
    const Job *j = sl->job;
    Err err;
    if (!j->p.ignore_eos && gen_is_stop(&e->cs.gen, id)) {
        slot_finish(e, sl, "stop", NULL);
        return;
    }
    if (sl->split.in_think) sl->n_reasoning++;
    sl->n_gen++;
    sl->ids[sl->n_ids++] = id;
    if (text_stream_push(&sl->ts, id, &err) != 0) {
        slot_finish(e, sl, "error", err.msg);
        return;
    }
    sampler_accept(&sl->smp, id);
    if (sl->cut) slot_finish(e, sl, "stop", NULL);
    else if (j->p.max_tokens > 0 && sl->n_gen >= j->p.max_tokens) slot_finish(e, sl, "length", NULL);
    else if (sl->kv.len + 1 > sl->kv.n_ctx) slot_finish(e, sl, "length", NULL);
    else sl->next = id;
}

/* ---- the worker: steps -------------------------------------------------------------- */

/* One forward over every active slot's next rows; then sampling. */
static void engine_step(Engine *e) {
    Model *m = &e->cs.model;
    const int V = m->cfg.vocab_size;
    int N = 0, rows = 0;
    for (int s = 0; s < e->o.parallel; s++) {
        Slot *sl = &e->slots[s];
        if (!sl->job || sl->next < 0) continue;
        e->seq[N] = sl;
        e->start[N++] = rows;
        e->rows[rows++] = sl->next;
    }
    int budget = m->max_chunk - rows < e->o.prefill_chunk ? m->max_chunk - rows : e->o.prefill_chunk;
    for (int s = 0; s < e->o.parallel && budget > 0; s++) {
        Slot *sl = &e->slots[s];
        if (!sl->job || sl->next >= 0) continue;
        int n = sl->n_prompt - sl->kv.len < budget ? sl->n_prompt - sl->kv.len : budget;
        e->seq[N] = sl;
        e->start[N++] = rows;
        memcpy(e->rows + rows, sl->ids + sl->kv.len, sizeof(int) * (size_t)n);
        rows += n, budget -= n;
    }
    if (!N) return;
    e->start[N] = rows;
    KVCache *kvs[N];
    for (int i = 0; i < N; i++) kvs[i] = &e->seq[i]->kv;
    Err err;
    if (model_forward_seqs(m, kvs, N, e->start, e->rows, e->logits, &err) != 0) {
        log_warn("serve: %s", err.msg);
        for (int i = 0; i < N; i++) slot_finish(e, e->seq[i], "error", err.msg);
        return;
    }
    /* Each slot samples with its own sampler (generator, candidates), so
     * the draws over V logits run side by side; taking the tokens (stops,
     * text, the reader's wake-up) stays in slot order. */
#pragma omp parallel for schedule(dynamic, 1) if (N >= 4)
    for (int i = 0; i < N; i++) {
        Slot *sl = e->seq[i];
        const int more_prompt = sl->next < 0 && sl->kv.len < sl->n_prompt;
        e->drawn[i] = more_prompt ? -1 : sampler_sample(&sl->smp, e->logits + (size_t)i * V);
    }
    double now = time_now();
    for (int i = 0; i < N; i++) {
        Slot *sl = e->seq[i];
        if (e->drawn[i] < 0) continue; /* more prompt next step */
        if (sl->next < 0) sl->t_prompt = now;
        slot_take_token(e, sl, e->drawn[i]);
    }
    for (int i = 0; i < N; i++) {
        Slot *sl = e->seq[i];
        if (!sl->dirty || !sl->job) continue;
        sl->dirty = 0;
        pthread_mutex_lock(&sl->job->mu);
        pthread_cond_broadcast(&sl->job->cv);
        pthread_mutex_unlock(&sl->job->mu);
    }
}

/* Jobs whose reader left or whose time is up end before the next step. */
static void engine_reap(Engine *e) {
    double now = time_now();
    for (int s = 0; s < e->o.parallel; s++) {
        Slot *sl = &e->slots[s];
        if (!sl->job) continue;
        if (atomic_load(&sl->job->cancel)) slot_finish(e, sl, "cancelled", NULL);
        else if (sl->job->p.time_limit_s > 0 && now - sl->job->t_submit > sl->job->p.time_limit_s)
            slot_finish(e, sl, "length", NULL);
    }
}

static void *engine_main(void *arg) {
    Engine *e = arg;
    threads_set(e->o.threads);
    for (;;) {
        Job *admit[e->o.parallel];
        int n_admit = 0;
        pthread_mutex_lock(&e->mu);
        while (!e->stopping && !e->n_active && !e->queue_head) pthread_cond_wait(&e->cv, &e->mu);
        if (e->stopping) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        while (e->queue_head && e->n_active + n_admit < e->o.parallel) {
            Job *j = e->queue_head;
            e->queue_head = j->next;
            if (!e->queue_head) e->queue_tail = NULL;
            e->n_queued--;
            admit[n_admit++] = j;
        }
        pthread_mutex_unlock(&e->mu);
        for (int a = 0, s = 0; a < n_admit; a++) {
            if (atomic_load(&admit[a]->cancel)) {
                job_finish_unslotted(admit[a], "cancelled");
                continue;
            }
            while (e->slots[s].job) s++;
            slot_start(e, &e->slots[s], admit[a]);
        }
        engine_reap(e);
        engine_step(e);
        PrefixCacheStats pcs = {0};
        if (e->pc) prefix_cache_stats(e->pc, &pcs);
        pthread_mutex_lock(&e->mu);
        e->pcs = pcs;
        pthread_mutex_unlock(&e->mu);
    }
    /* shutting down: nothing new is admitted; readers learn "cancelled" */
    for (int s = 0; s < e->o.parallel; s++)
        if (e->slots[s].job) slot_finish(e, &e->slots[s], "cancelled", NULL);
    pthread_mutex_lock(&e->mu);
    Job *j = e->queue_head;
    e->queue_head = e->queue_tail = NULL;
    e->n_queued = 0;
    pthread_mutex_unlock(&e->mu);
    while (j) {
        Job *next = j->next;
        job_finish_unslotted(j, "cancelled");
        j = next;
    }
    matmul_thread_free();
    return NULL;
}

/* ---- lifetime ---------------------------------------------------------------------- */

static void name_from_path(char *dst, size_t n, const char *path) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    size_t b = len;
    while (b > 0 && path[b - 1] != '/') b--;
    snprintf(dst, n, "%.*s", (int)(len - b), path + b);
}

int engine_open(Engine **out, const char *path, const EngineOpts *o, Err *err) {
    *out = NULL;
    Engine *e = calloc(1, sizeof *e);
    if (!e) return err_set(err, "out of memory for the server");
    if (o) e->o = *o;
    if (e->o.parallel <= 0) e->o.parallel = DEFAULT_PARALLEL;
    if (e->o.queue <= 0) e->o.queue = DEFAULT_QUEUE;
    if (e->o.cache_mb == 0) e->o.cache_mb = DEFAULT_CACHE_MB;
    if (e->o.prefill_chunk <= 0) e->o.prefill_chunk = DEFAULT_CHUNK;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    /* The chat session's own generator only holds the stop ids: its cache
     * is the smallest allowed; the slots have their own. */
    ChatOpts co = {.template_name = e->o.template_name, .gen = {.n_ctx = 2}};
    if (chat_open(&e->cs, path, &co, err) != 0) {
        engine_close(e);
        return -1;
    }
    const ModelConfig *c = &e->cs.model.cfg;
    int max_pos = c->max_position_embeddings > 0 ? c->max_position_embeddings : 4096;
    if (e->o.n_ctx <= 0) e->o.n_ctx = max_pos < 4096 ? max_pos : 4096;
    if (e->o.n_ctx < 2) {
        err_set(err, "a context of %d tokens is too small", e->o.n_ctx);
        goto fail;
    }
    /* a step is at most max_chunk rows: every slot's decode row must fit */
    if (e->o.parallel >= e->cs.model.max_chunk) {
        err_set(err, "--parallel %d: at most %d slots", e->o.parallel, e->cs.model.max_chunk - 1);
        goto fail;
    }
    if (e->o.model_name) snprintf(e->name, sizeof e->name, "%s", e->o.model_name);
    else name_from_path(e->name, sizeof e->name, path);
    e->o.model_name = e->name;
    e->o.template_name = NULL;
    e->n_vocab = tokenizer_n_vocab(e->cs.tok);
    for (int k = 1; k <= 2; k++) {
        int all = 1;
        for (int i = 0; i < 3; i++) all &= tokenizer_token_id(e->cs.tok, FIM_TOKENS[k][i]) >= 0;
        if (all && !e->fim_kind) e->fim_kind = k;
    }
    const int P = e->o.parallel, V = c->vocab_size;
    e->slots = calloc((size_t)P, sizeof *e->slots);
    e->rows = malloc(sizeof(int) * (size_t)e->cs.model.max_chunk);
    e->start = malloc(sizeof(int) * (size_t)(P + 1));
    e->seq = malloc(sizeof(Slot *) * (size_t)P);
    e->logits = malloc(sizeof(float) * (size_t)P * (size_t)V);
    e->drawn = malloc(sizeof(int) * (size_t)P);
    if (!e->slots || !e->rows || !e->start || !e->seq || !e->logits || !e->drawn) {
        err_set(err, "out of memory for %d slots", P);
        goto fail;
    }
    for (int s = 0; s < P; s++) {
        Slot *sl = &e->slots[s];
        if (kvcache_init(&sl->kv, c, e->o.n_ctx, e->o.kv_type, 0, err) != 0) goto fail;
        sl->ids = malloc(sizeof(int) * (size_t)(e->o.n_ctx + 1));
        sl->pend = malloc(MAX_STOP_LEN);
        if (!sl->ids || !sl->pend) {
            err_set(err, "out of memory for %d slots of %d tokens", P, e->o.n_ctx);
            goto fail;
        }
    }
    if (e->o.cache_mb > 0) {
        const KVCache *kv = &e->slots[0].kv;
        if (prefix_cache_init(&e->pc, kv->n_layers, kv->width, kv->type,
                              e->o.cache_mb * 1024 * 1024, err) != 0)
            goto fail;
    }
    if (pthread_create(&e->worker, NULL, engine_main, e) != 0) {
        err_set(err, "cannot start the worker thread");
        goto fail;
    }
    e->started = 1;
    *out = e;
    return 0;
fail:
    engine_close(e);
    return -1;
}

void engine_close(Engine *e) {
    if (!e) return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stopping = 1;
        pthread_cond_broadcast(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->worker, NULL);
    }
    if (e->slots)
        for (int s = 0; s < e->o.parallel; s++) {
            kvcache_free(&e->slots[s].kv);
            free(e->slots[s].ids);
            free(e->slots[s].pend);
        }
    free(e->slots);
    free(e->rows);
    free(e->start);
    free(e->seq);
    free(e->logits);
    free(e->drawn);
    prefix_cache_free(e->pc);
    chat_close(&e->cs);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
}

/* ---- facts ------------------------------------------------------------------------- */

const char *engine_model_name(const Engine *e) { return e->name; }
int engine_n_ctx(const Engine *e) { return e->o.n_ctx; }
int engine_parallel(const Engine *e) { return e->o.parallel; }
int engine_has_fim(const Engine *e) { return e->fim_kind != 0; }

int engine_is_reasoning(const Engine *e) {
    return e->cs.tmpl != CHAT_DEEPSEEK_V3 && e->cs.tmpl != CHAT_CHATML;
}

void engine_stats(Engine *e, EngineStats *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&e->mu);
    s->active = e->n_active;
    s->queued = e->n_queued;
    s->parallel = e->o.parallel;
    s->cache_bytes = e->pcs.bytes;
    s->cache_budget = e->pc ? e->o.cache_mb * 1024 * 1024 : 0;
    s->cache_tokens = e->pcs.tokens;
    s->cache_prompts = e->pcs.leaves;
    s->tokens_per_s = e->last_tok_s;
    pthread_mutex_unlock(&e->mu);
    s->kv_bytes_per_token = kvcache_bytes_per_token(&e->cs.model.cfg, e->o.kv_type);
}
