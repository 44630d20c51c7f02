/* SPDX-License-Identifier: MIT */
/* Flags shared by generate and chat (see gen_flags.h). */
#include "cli/gen_flags.h"

#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void gen_flags_init(GenFlags *f) {
    memset(f, 0, sizeof *f);
    f->n = -1;
    f->seed = -1;
    f->temp = 0.6f;
    f->top_p = 0.95f;
    f->rep = 1.0f;
}

int gen_flags_specs(GenFlags *f, ArgSpec *s) {
    const ArgSpec specs[GEN_FLAGS_N] = {
        {"model", 'm', ARG_STR, &f->model, "PATH: model directory"},
        {"system", 0, ARG_STR, &f->system, "TEXT: system message"},
        {"n-predict", 'n', ARG_INT, &f->n, "N: at most N tokens per answer (default: until a stop)"},
        {"temp", 0, ARG_FLOAT, &f->temp, "T: temperature (default 0.6; 0: greedy)"},
        {"top-p", 0, ARG_FLOAT, &f->top_p, "P: nucleus sampling (default 0.95; 1: off)"},
        {"top-k", 0, ARG_INT, &f->top_k, "K: keep the K most likely tokens (default 0: off)"},
        {"min-p", 0, ARG_FLOAT, &f->min_p,
         "P: drop tokens below P x the top probability (default 0: off)"},
        {"repeat-penalty", 0, ARG_FLOAT, &f->rep,
         "X: repetition penalty, HF/CTRL style (default 1: off)"},
        {"repeat-last-n", 0, ARG_INT, &f->last_n, "N: penalty window in tokens (default 64; -1: all)"},
        {"presence-penalty", 0, ARG_FLOAT, &f->presence, "X: OpenAI presence penalty (default 0)"},
        {"frequency-penalty", 0, ARG_FLOAT, &f->frequency,
         "X: OpenAI frequency penalty (default 0)"},
        {"seed", 0, ARG_INT, &f->seed, "N: sampling seed (default: from the clock)"},
        {"chat-template", 0, ARG_STR, &f->tmpl,
         "NAME: deepseek-v3 deepseek-r1 r1-distill-qwen r1-distill-llama chatml"},
        {"ctx", 'c', ARG_INT, &f->ctx, "N: context size in tokens (default min(4096, the model's))"},
        {"verbose", 'v', ARG_FLAG, &f->verbose, "print the template, token counts and speeds"},
        {"threads", 't', ARG_INT, &f->threads, "N: threads (default: all cores)"},
    };
    memcpy(s, specs, sizeof specs);
    return GEN_FLAGS_N;
}

int gen_flags_apply(const char *cmd, const GenFlags *f, ChatOpts *o) {
    if (!f->model) return cli_fail(cmd, "-m PATH is required"), 2;
    if (f->ctx < 0) return cli_fail(cmd, "--ctx must be positive"), 2;
    if (cli_threads(cmd, f->threads) != 0) return 2;
    memset(o, 0, sizeof *o);
    o->gen.sampling.temperature = f->temp;
    o->gen.sampling.top_k = f->top_k;
    o->gen.sampling.top_p = f->top_p;
    o->gen.sampling.min_p = f->min_p;
    o->gen.sampling.repetition_penalty = f->rep;
    o->gen.sampling.presence_penalty = f->presence;
    o->gen.sampling.frequency_penalty = f->frequency;
    o->gen.sampling.penalty_last_n = f->last_n;
    o->gen.sampling.seed =
        f->seed >= 0 ? (uint64_t)f->seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    o->gen.n_ctx = f->ctx;
    o->template_name = f->tmpl;
    o->system = f->system;
    return 0;
}
