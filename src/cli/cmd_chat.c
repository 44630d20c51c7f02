/* SPDX-License-Identifier: MIT */
/* whale chat: an interactive multi-turn chat on stdin/stdout. Each line is
 * a user message; the answer streams back with R1 thinking dimmed (or
 * under marker lines when stdout is not a terminal). /reset clears the
 * conversation, /exit or end of input quits, Ctrl-C stops the current
 * answer (and at the prompt only cancels the line). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/gen_flags.h"
#include "cli/commands.h"
#include "infer/chat.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* SIGINT is blocked in every thread except while the main thread waits
 * for a line (ppoll unblocks it atomically, so a Ctrl-C that comes just
 * before the wait is not lost) and while an answer is generated (the flag
 * is polled per token). The OpenMP workers start here with it blocked and
 * keep that mask, so the signal always reaches the main thread. */
static void sigint_setup(sigset_t *unblocked) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, unblocked);
    sigdelset(unblocked, SIGINT);
#ifdef _OPENMP
#pragma omp parallel
    { (void)0; }
#endif
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

static void sigint_allow(int allow) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    pthread_sigmask(allow ? SIG_UNBLOCK : SIG_BLOCK, &set, NULL);
}

/* Lines from stdin through its file descriptor (stdio's buffer would hide
 * lines from ppoll). */
typedef struct LineReader {
    char *buf;
    size_t start, len, cap;
} LineReader;

/* The next line without its newline in *line (valid until the next call):
 * 1, or 0 at the end of input, or -1 when Ctrl-C came while waiting. */
static int read_line(LineReader *lr, char **line, const sigset_t *unblocked) {
    for (;;) {
        char *nl = lr->len > lr->start ? memchr(lr->buf + lr->start, '\n', lr->len - lr->start)
                                       : NULL;
        if (nl) {
            *nl = 0;
            *line = lr->buf + lr->start;
            lr->start = (size_t)(nl - lr->buf) + 1;
            return 1;
        }
        if (lr->start) { /* drop the lines already returned */
            memmove(lr->buf, lr->buf + lr->start, lr->len - lr->start);
            lr->len -= lr->start;
            lr->start = 0;
        }
        if (lr->len + 4096 + 1 > lr->cap) {
            size_t cap = (lr->cap + 4096) * 2;
            char *b = realloc(lr->buf, cap);
            if (!b) return 0;
            lr->buf = b, lr->cap = cap;
        }
        struct pollfd pf = {.fd = STDIN_FILENO, .events = POLLIN};
        interrupted = 0;
        if (ppoll(&pf, 1, NULL, unblocked) < 0) {
            if (errno == EINTR && interrupted) return -1;
            if (errno == EINTR) continue;
            return 0;
        }
        ssize_t k = read(STDIN_FILENO, lr->buf + lr->len, lr->cap - lr->len - 1);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { /* end of input: a last line without a newline still counts */
            if (lr->len == 0) return 0;
            lr->buf[lr->len] = 0;
            *line = lr->buf;
            lr->start = lr->len = 0;
            return 1;
        }
        lr->len += (size_t)k;
    }
}

int cmd_chat(int argc, char **argv) {
    GenFlags f;
    gen_flags_init(&f);
    ArgSpec specs[GEN_FLAGS_N];
    int n_specs = gen_flags_specs(&f, specs);
    int r = args_parse("chat", "-m PATH [--system TEXT] [sampling flags]", specs, n_specs, argc,
                       argv);
    if (r) return r > 0 ? 0 : 2;
    ChatOpts o;
    if ((r = gen_flags_apply("chat", &f, &o)) != 0) return r;
    const char *model = f.model;
    const int n = f.n, verbose = f.verbose;
    sigset_t unblocked;
    sigint_setup(&unblocked);

    Err err = {0};
    ChatSession s;
    if (chat_open(&s, model, &o, &err) != 0) return cli_fail("chat", "%s", err.msg);
    int ansi = isatty(STDOUT_FILENO);
    fprintf(stderr,
            "whale chat: %s (template %s, context %d tokens). Type a message; /reset clears the "
            "conversation, /exit quits, Ctrl-C stops an answer.\n",
            model, chat_template_name(s.tmpl), s.gen.kv.n_ctx);

    LineReader lr = {0};
    for (;;) {
        fputs("> ", stdout);
        fflush(stdout);
        char *line;
        int got = read_line(&lr, &line, &unblocked);
        if (got < 0) { /* Ctrl-C at the prompt: a fresh line */
            fputs("\n", stdout);
            continue;
        }
        if (got == 0) {
            fputs("\n", stdout);
            break;
        }
        size_t len = strlen(line);
        while (len > 0 && line[len - 1] == '\r') line[--len] = 0;
        if (len == 0) continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
        if (!strcmp(line, "/reset")) {
            chat_reset(&s);
            fputs("(conversation cleared)\n", stdout);
            continue;
        }
        ChatPrinter pr;
        chat_printer_init(&pr, stdout, ansi);
        GenResult res;
        interrupted = 0;
        sigint_allow(1);
        int rc = chat_turn(&s, line, n, &interrupted, chat_printer_emit, &pr, &res, &err);
        sigint_allow(0);
        chat_printer_end(&pr);
        if (rc != 0) {
            fprintf(stderr, "whale chat: %s\n", err.msg);
            continue;
        }
        if (res.stop == GEN_STOP_INTERRUPT) fputs("[interrupted]\n", stdout);
        if (res.stop == GEN_STOP_CONTEXT)
            fprintf(stderr,
                    "whale chat: the context is full (%d tokens); the answer was cut there. "
                    "/reset starts a new conversation.\n",
                    s.gen.kv.n_ctx);
        if (verbose) {
            char stats[256];
            gen_stats_line(&res, stats, sizeof stats);
            fprintf(stderr, "[%s]\n", stats);
        }
    }
    free(lr.buf);
    chat_close(&s);
    return 0;
}
