/* SPDX-License-Identifier: MIT */
/* whale generate: stream the completion of a prompt to stdout. With --chat
 * the prompt is one user message rendered with the model's chat template
 * (R1 thinking shown apart from the answer); without it the text is
 * continued as is. Speeds and the stop reason on stderr with --verbose. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "cli/args.h"
#include "cli/gen_flags.h"
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
    GenFlags f;
    gen_flags_init(&f);
    const char *prompt = NULL;
    int chat = 0;
    ArgSpec specs[GEN_FLAGS_N + 2];
    int n_specs = gen_flags_specs(&f, specs);
    specs[n_specs++] = (ArgSpec){"prompt", 'p', ARG_STR, &prompt, "TEXT: the prompt"};
    specs[n_specs++] = (ArgSpec){"chat", 0, ARG_FLAG, &chat,
                                 "render the prompt as a user message with the chat template"};
    int r = args_parse("generate", "-m PATH -p TEXT [-n N] [--temp T] [--chat] [flags]", specs,
                       n_specs, argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!prompt) return cli_fail("generate", "-p TEXT is required"), 2;
    if (f.system && !chat) return cli_fail("generate", "--system needs --chat"), 2;
    ChatOpts o;
    if ((r = gen_flags_apply("generate", &f, &o)) != 0) return r;
    if (f.n == 0) return 0;
    o.raw = !chat;
    const char *model = f.model;
    const int n = f.n, verbose = f.verbose;
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
