/* SPDX-License-Identifier: MIT */
/* The serving engine (serve/engine.h) without HTTP: jobs advanced together
 * by continuous batching give what the one-sequence generation loop gives
 * (greedy, on a `whale init` model), more jobs than slots wait and then
 * run, the second of two identical prompts reuses the first one's rows
 * from the prefix cache, stop strings cut the answer, a cancelled job frees
 * its slot, a full queue refuses, an R1 chat prompt routes the first tokens
 * to reasoning, and a prompt longer than the context is refused. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/chat.h"
#include "serve/engine.h"
#include "whale_cli.h"

#define N_CTX 96

static char model_dir[512];

static void make_model(void) {
    cr_assert_eq(h_tmpdir(model_dir, sizeof model_dir, "engine"), 0);
    HRun r;
    WHALE(&r, "init", "--preset", "tiny", "--seed", "5", "--out", model_dir);
    expect_ok(&r);
    h_run_free(&r);
}

static void drop_model(void) { h_rmtree(model_dir); }

static Engine *open_engine_ctx(int parallel, int queue, int n_ctx) {
    Engine *e = NULL;
    Err err = {0};
    EngineOpts o = {.parallel = parallel, .queue = queue, .n_ctx = n_ctx, .threads = 1};
    cr_assert_eq(engine_open(&e, model_dir, &o, &err), 0, "%s", err.msg);
    return e;
}

static Engine *open_engine(int parallel, int queue) { return open_engine_ctx(parallel, queue, N_CTX); }

/* Everything a job produced, concatenated per part. */
typedef struct Out {
    char reasoning[8192], content[8192];
    size_t n_reasoning, n_content;
    const char *finish;
    JobUsage usage;
    int deltas;
} Out;

static void add(char *dst, size_t *n, const char *s, size_t len) {
    cr_assert_lt(*n + len, 8192, "output too long");
    memcpy(dst + *n, s, len);
    *n += len;
    dst[*n] = 0;
}

static void read_all(Job *j, Out *o) {
    memset(o, 0, sizeof *o);
    for (;;) {
        JobDelta d;
        int rc = job_take(j, 10000, &d);
        cr_assert_eq(rc, 1, "job_take timed out or failed (%d)", rc);
        if (d.reasoning) add(o->reasoning, &o->n_reasoning, d.reasoning, d.reasoning_len);
        if (d.content) add(o->content, &o->n_content, d.content, d.content_len);
        o->deltas++;
        int done = d.done;
        if (done) {
            o->finish = d.finish_reason;
            o->usage = d.usage;
            cr_assert_str_neq(d.finish_reason, "error", "job failed: %s", d.error);
        }
        job_delta_free(&d);
        if (done) return;
    }
}

static Job *submit_text(Engine *e, const char *prompt, const JobParams *p) {
    EnginePrompt ep;
    Err err = {0};
    cr_assert_eq(engine_prompt_text(e, prompt, NULL, &ep, &err), 0, "%s", err.msg);
    EngineRefusal why;
    Job *j = engine_submit(e, &ep, p, &why, &err);
    cr_assert_not_null(j, "submit refused (%d): %s", why, err.msg);
    engine_prompt_free(&ep);
    return j;
}

static const char *prompts[] = {"Hello there", "The quick brown fox", "1+1=",
                                "whale serves many users at once", "a", "Once upon a time, far"};
#define N_PROMPTS ((int)(sizeof prompts / sizeof prompts[0]))

TestSuite(engine, .init = make_model, .fini = drop_model, .timeout = 120);

Test(engine, batched_jobs_match_one_sequence_generation) {
    /* the reference: the chat session's generation loop, one prompt at a time */
    ChatSession cs;
    Err err = {0};
    ChatOpts co = {.gen = {.n_ctx = N_CTX}};
    cr_assert_eq(chat_open(&cs, model_dir, &co, &err), 0, "%s", err.msg);
    GenResult want[N_PROMPTS];
    char *want_text[N_PROMPTS];
    for (int i = 0; i < N_PROMPTS; i++) {
        gen_reset(&cs.gen);
        cr_assert_eq(gen_run(&cs.gen, prompts[i], strlen(prompts[i]), 1, 12, NULL, NULL, NULL,
                             &want[i], &err),
                     0, "%s", err.msg);
        want_text[i] = strdup(want[i].answer);
    }
    chat_close(&cs);

    /* six jobs on four slots: two wait, then join as others leave */
    Engine *e = open_engine(4, 8);
    JobParams p = {.max_tokens = 12};
    Job *jobs[N_PROMPTS];
    for (int i = 0; i < N_PROMPTS; i++) jobs[i] = submit_text(e, prompts[i], &p);
    for (int i = 0; i < N_PROMPTS; i++) {
        Out o;
        read_all(jobs[i], &o);
        cr_assert_str_eq(o.content, want_text[i], "prompt %d \"%s\": got \"%s\", want \"%s\"", i,
                         prompts[i], o.content, want_text[i]);
        cr_assert_eq(o.usage.completion_tokens, want[i].n_gen, "prompt %d", i);
        cr_assert_eq(o.usage.prompt_tokens, want[i].n_prompt, "prompt %d", i);
        cr_assert_str_eq(o.finish, want[i].stop == GEN_STOP_EOS ? "stop" : "length");
        job_release(jobs[i]);
        free(want_text[i]);
    }
    EngineStats s;
    engine_stats(e, &s);
    cr_assert_eq(s.active, 0);
    cr_assert_eq(s.queued, 0);
    engine_close(e);
}

Test(engine, second_identical_prompt_hits_the_prefix_cache) {
    Engine *e = open_engine(2, 4);
    JobParams p = {.max_tokens = 8};
    const char *prompt = "The same prompt twice, long enough to be worth caching.";
    Out a, b;
    Job *j = submit_text(e, prompt, &p);
    read_all(j, &a);
    job_release(j);
    j = submit_text(e, prompt, &p);
    read_all(j, &b);
    job_release(j);
    cr_assert_eq(a.usage.cache_hit_tokens, 0);
    cr_assert_eq(a.usage.cache_miss_tokens, a.usage.prompt_tokens);
    /* all but the last prompt token, whose logits are needed */
    cr_assert_eq(b.usage.cache_hit_tokens, b.usage.prompt_tokens - 1, "hits %d of %d",
                 b.usage.cache_hit_tokens, b.usage.prompt_tokens);
    cr_assert_eq(b.usage.cache_miss_tokens, 1);
    cr_assert_str_eq(b.content, a.content, "cached rows changed the answer");
    EngineStats s;
    engine_stats(e, &s);
    cr_assert_gt(s.cache_tokens, 0);
    cr_assert_eq(s.cache_prompts, 1);
    engine_close(e);
}

Test(engine, stop_string_cuts_the_answer) {
    Engine *e = open_engine(1, 4);
    JobParams p = {.max_tokens = 24};
    Out full;
    Job *j = submit_text(e, "Tell me a story", &p);
    read_all(j, &full);
    job_release(j);
    cr_assert_gt(full.n_content, 6, "need some text to cut: \"%s\"", full.content);
    /* a stop string from the middle of the answer, as bytes of it */
    char stop[4] = {0};
    size_t at = full.n_content / 2;
    memcpy(stop, full.content + at, 2);
    const char *first = strstr(full.content, stop);
    p.stop[0] = stop;
    Out cut;
    j = submit_text(e, "Tell me a story", &p);
    read_all(j, &cut);
    job_release(j);
    cr_assert_str_eq(cut.finish, "stop");
    cr_assert_eq(cut.n_content, (size_t)(first - full.content), "cut \"%s\" at \"%s\" of \"%s\"",
                 cut.content, stop, full.content);
    cr_assert_eq(memcmp(cut.content, full.content, cut.n_content), 0);
    engine_close(e);
}

Test(engine, cancelled_job_frees_its_slot_and_full_queue_refuses) {
    /* a context long enough that the first job cannot end before it is
     * cancelled (it would end with "length"), and no stop id ending it */
    Engine *e = open_engine_ctx(1, 1, 4096);
    JobParams forever = {.max_tokens = 0, .ignore_eos = 1}, p = {.max_tokens = 4};
    Job *a = submit_text(e, "never ends", &forever);
    JobDelta d;
    cr_assert_eq(job_take(a, 10000, &d), 1, "the first job produced nothing");
    job_delta_free(&d);
    Job *b = submit_text(e, "waits for the slot", &p); /* queued behind a */
    EnginePrompt ep;
    Err err = {0};
    cr_assert_eq(engine_prompt_text(e, "one too many", NULL, &ep, &err), 0);
    EngineRefusal why;
    cr_assert_null(engine_submit(e, &ep, &p, &why, &err));
    cr_assert_eq(why, ENGINE_BUSY, "%s", err.msg);
    cr_assert(strstr(err.msg, "busy"), "%s", err.msg);
    engine_prompt_free(&ep);
    job_cancel(a);
    Out oa, ob;
    read_all(a, &oa);
    cr_assert_str_eq(oa.finish, "cancelled");
    read_all(b, &ob);
    cr_assert(!strcmp(ob.finish, "length") || !strcmp(ob.finish, "stop"), "%s", ob.finish);
    cr_assert_leq(ob.usage.completion_tokens, 4);
    cr_assert_eq(ob.usage.completion_tokens == 4, !strcmp(ob.finish, "length"));
    job_release(a);
    job_release(b);
    engine_close(e);
}

Test(engine, r1_chat_prompt_thinks_first) {
    Engine *e = open_engine(1, 2);
    cr_assert(engine_is_reasoning(e), "whale init's tokenizer has <think>: the R1 template");
    ChatMessage msgs[] = {{.role = "user", .content = "What is 2+2?"}};
    EnginePrompt ep;
    Err err = {0};
    cr_assert_eq(engine_prompt_chat(e, msgs, 1, &ep, &err), 0, "%s", err.msg);
    cr_assert(ep.opens_think, "the R1 generation prompt opens <think>");
    JobParams p = {.max_tokens = 6};
    EngineRefusal why;
    Job *j = engine_submit(e, &ep, &p, &why, &err);
    cr_assert_not_null(j, "%s", err.msg);
    Out o;
    read_all(j, &o);
    job_release(j);
    cr_assert_gt(o.usage.reasoning_tokens, 0);
    cr_assert_gt(o.n_reasoning, 0, "no thinking text");
    engine_close(e);
}

Test(engine, prompt_longer_than_the_context_is_refused) {
    Engine *e = open_engine(1, 2);
    char text[2048];
    memset(text, 'x', sizeof text - 1);
    for (size_t i = 0; i < sizeof text - 1; i += 2) text[i] = ' ';
    text[sizeof text - 1] = 0;
    EnginePrompt ep;
    Err err = {0};
    cr_assert_eq(engine_prompt_text(e, text, NULL, &ep, &err), ENGINE_TOO_LONG);
    cr_assert(strstr(err.msg, "context holds 96"), "%s", err.msg);
    cr_assert_null(ep.ids);
    cr_assert_eq(engine_prompt_text(e, "abc", "def", &ep, &err), -1, "no FIM tokens");
    cr_assert(strstr(err.msg, "suffix"), "%s", err.msg);
    engine_close(e);
}
