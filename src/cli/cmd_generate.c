/* SPDX-License-Identifier: MIT */
/* whale generate: stream the completion of a prompt to stdout. With --chat
 * the prompt is one user message rendered with the model's chat template
 * (R1 thinking shown apart from the answer); without it the text is
 * continued as is. Speeds and the stop reason on stderr with --verbose. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "infer/chat.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static void print_stats(const ChatSession *s, const GenResult *r) {
    char line[256];
    gen_stats_line(r, line, sizeof line);
    fprintf(stderr, "[template %s | %s]\n", chat_template_name(s->tmpl), line);
}

int cmd_generate(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *system = NULL, *tmpl = NULL;
    int n = -1, top_k = 0, seed = -1, chat = 0, verbose = 0, ctx = 0, threads = 0, last_n = 0;
    float temp = 0.6f, top_p = 0.95f, min_p = 0, rep = 1, presence = 0, frequency = 0;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &model, "PATH: model directory"},
        {"prompt", 'p', ARG_STR, &prompt, "TEXT: the prompt"},
        {"n-predict", 'n', ARG_INT, &n, "N: at most N tokens (default: until a stop or a full context)"},
        {"temp", 0, ARG_FLOAT, &temp, "T: temperature (default 0.6; 0: greedy)"},
        {"top-p", 0, ARG_FLOAT, &top_p, "P: nucleus sampling (default 0.95; 1: off)"},
        {"top-k", 0, ARG_INT, &top_k, "K: keep the K most likely tokens (default 0: off)"},
        {"min-p", 0, ARG_FLOAT, &min_p, "P: drop tokens below P x the top probability (default 0: off)"},
        {"repeat-penalty", 0, ARG_FLOAT, &rep, "X: repetition penalty, HF/CTRL style (default 1: off)"},
        {"repeat-last-n", 0, ARG_INT, &last_n, "N: penalty window in tokens (default 64; -1: all)"},
        {"presence-penalty", 0, ARG_FLOAT, &presence, "X: OpenAI presence penalty (default 0)"},
        {"frequency-penalty", 0, ARG_FLOAT, &frequency, "X: OpenAI frequency penalty (default 0)"},
        {"seed", 0, ARG_INT, &seed, "N: sampling seed (default: from the clock)"},
        {"chat", 0, ARG_FLAG, &chat, "render the prompt as a user message with the chat template"},
        {"system", 0, ARG_STR, &system, "TEXT: system message (with --chat)"},
        {"chat-template", 0, ARG_STR, &tmpl, "NAME: deepseek-v3 deepseek-r1 r1-distill-qwen r1-distill-llama chatml"},
        {"ctx", 'c', ARG_INT, &ctx, "N: context size in tokens (default min(4096, the model's))"},
        {"verbose", 'v', ARG_FLAG, &verbose, "print the template, token counts and speeds on stderr"},
        {"threads", 't', ARG_INT, &threads, "N: threads (default: all cores)"},
    };
    int r = args_parse("generate", "-m PATH -p TEXT [-n N] [--temp T] [--chat] [flags]", specs,
                       (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!model || !prompt) return cli_fail("generate", "-m PATH and -p TEXT are required"), 2;
    if (system && !chat) return cli_fail("generate", "--system needs --chat"), 2;
    if (ctx < 0) return cli_fail("generate", "--ctx must be positive"), 2;
    if (cli_threads("generate", threads) != 0) return 2;
    if (n == 0) return 0;

    ChatOpts o = {
        .gen = {.sampling = {.temperature = temp,
                             .top_k = top_k,
                             .top_p = top_p,
                             .min_p = min_p,
                             .repetition_penalty = rep,
                             .presence_penalty = presence,
                             .frequency_penalty = frequency,
                             .penalty_last_n = last_n,
                             .seed = seed >= 0 ? (uint64_t)seed
                                               : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32)},
                .n_ctx = ctx},
        .template_name = tmpl,
        .system = system,
        .raw = !chat,
    };
    Err err = {0};
    ChatSession s;
    if (chat_open(&s, model, &o, &err) != 0) return cli_fail("generate", "%s", err.msg);

    struct sigaction sa = {0};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    ChatPrinter pr;
    chat_printer_init(&pr, stdout, isatty(STDOUT_FILENO));
    GenResult res;
    int rc = chat ? chat_turn(&s, prompt, n, &interrupted, chat_printer_emit, &pr, &res, &err)
                  : gen_run(&s.gen, prompt, strlen(prompt), 1, n, &interrupted, chat_printer_emit,
                            &pr, &res, &err);
    chat_printer_end(&pr);
    int code = 0;
    if (rc != 0) {
        cli_fail("generate", "%s", err.msg);
        code = 1;
    } else {
        if (res.stop == GEN_STOP_CONTEXT)
            fprintf(stderr,
                    "whale generate: the context is full (%d tokens); the completion was cut "
                    "there (raise --ctx for more)\n",
                    s.gen.kv.n_ctx);
        if (verbose) print_stats(&s, &res);
        if (res.stop == GEN_STOP_INTERRUPT) code = 130;
    }
    chat_close(&s);
    return code;
}
