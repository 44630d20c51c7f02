/* SPDX-License-Identifier: MIT */
/* Flags shared by sft and distill (see sft_flags.h). */
#include "cli/sft_flags.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    stop_flag = 1;
    signal(sig, SIG_DFL); /* a second one ends the process at once */
}

void sft_flags_catch_signals(void) {
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
}

int sft_flags_finish(const char *cmd, int rc, const Err *err) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (rc != 0) return cli_fail(cmd, "%s", err->msg);
    return stop_flag ? 130 : 0;
}

void sft_flags_init(SftFlags *f) {
    memset(f, 0, sizeof *f);
    f->o.batch = 8;
    f->o.eval_every = 50;
    f->o.save_every = 500;
    f->o.log_every = 10;
    f->o.bias_gamma = 1e-2f;
    f->o.optim = optim_defaults();
    f->o.optim.lr = 1e-4f;
    f->schedule = "cosine";
    f->warmup = -1;
}

int sft_flags_specs(SftFlags *f, ArgSpec *s) {
    SftOpts *o = &f->o;
    const ArgSpec specs[SFT_FLAGS_N] = {
        {"epochs", 0, ARG_INT, &o->epochs, "N: passes over the training examples (default 2)"},
        {"steps", 0, ARG_INT, &o->steps, "N: optimiser steps instead of --epochs"},
        {"batch", 'b', ARG_INT, &o->batch, "B: sequences per optimiser step (default 8)"},
        {"lr", 0, ARG_FLOAT, &o->optim.lr, "X: peak learning rate (default 1e-4)"},
        {"min-lr-ratio", 0, ARG_FLOAT, &o->optim.min_lr_ratio, "X: final lr / peak (default 0.1)"},
        {"warmup", 0, ARG_INT, &f->warmup, "N: warmup steps (default steps/20, at most 200)"},
        {"schedule", 0, ARG_STR, &f->schedule, "cosine|wsd|constant (default cosine)"},
        {"decay-steps", 0, ARG_INT, &o->optim.decay_steps, "N: wsd decay phase (default steps/10)"},
        {"weight-decay", 0, ARG_FLOAT, &o->optim.weight_decay, "X: AdamW decay of matrices (default 0.1)"},
        {"beta1", 0, ARG_FLOAT, &o->optim.beta1, "X: AdamW beta1 (default 0.9)"},
        {"beta2", 0, ARG_FLOAT, &o->optim.beta2, "X: AdamW beta2 (default 0.95)"},
        {"clip", 0, ARG_FLOAT, &o->optim.clip, "X: global grad-norm clip, 0 for none (default 1)"},
        {"bias-gamma", 0, ARG_FLOAT, &o->bias_gamma, "X: MoE balancing bias step (default 1e-2)"},
        {"max-len", 0, ARG_INT, &o->max_len, "N: longest example in tokens (default: the model's context)"},
        {"val", 0, ARG_INT, &o->val, "N: hold out N examples for the eval loss (default 0)"},
        {"eval-every", 0, ARG_INT, &o->eval_every, "N: eval loss every N steps and at the end (default 50)"},
        {"save-every", 0, ARG_INT, &o->save_every, "N: checkpoint every N steps and at the end (default 500)"},
        {"log-every", 0, ARG_INT, &o->log_every, "N: progress line every N steps when not a terminal (default 10)"},
        {"quiet", 'q', ARG_FLAG, &o->quiet, "no progress output"},
        {"threads", 't', ARG_INT, &f->threads, "N: threads (default: all cores)"},
        {"seed", 0, ARG_INT, &f->seed, "N: held-out choice and example order (default 0)"},
        {"bf16", 0, ARG_FLAG, &f->bf16, CLI_BF16_HELP},
    };
    memcpy(s, specs, sizeof specs);
    return SFT_FLAGS_N;
}

int sft_flags_apply(const char *cmd, SftFlags *f) {
    SftOpts *o = &f->o;
    if (o->epochs && o->steps) return cli_fail(cmd, "give --epochs or --steps, not both"), 2;
    if (!o->epochs && !o->steps) o->epochs = 2;
    if (o->epochs < 0 || o->steps < 0 || o->batch < 1 || o->batch > 65536 || o->epochs > 1000000)
        return cli_fail(cmd, "--epochs, --steps and --batch must be >= 1"), 2;
    if (o->max_len < 0 || o->val < 0 || o->eval_every < 0 || o->save_every < 0 ||
        o->log_every < 1 || f->warmup < -1 || o->optim.decay_steps < 0 || f->seed < 0)
        return cli_fail(cmd, "--log-every must be >= 1; --max-len, --val, --eval-every, "
                             "--save-every, --warmup, --decay-steps, --seed >= 0"),
               2;
    if (!(o->optim.lr > 0) || !(o->optim.min_lr_ratio >= 0) || !(o->optim.clip >= 0) ||
        !(o->optim.weight_decay >= 0) || !(o->optim.beta1 >= 0 && o->optim.beta1 < 1) ||
        !(o->optim.beta2 >= 0 && o->optim.beta2 < 1) || !(o->bias_gamma >= 0))
        return cli_fail(cmd, "--lr must be > 0; --min-lr-ratio, --clip, --weight-decay, "
                             "--bias-gamma >= 0; betas in [0, 1)"),
               2;
    if (!strcmp(f->schedule, "cosine")) o->optim.schedule = LR_COSINE;
    else if (!strcmp(f->schedule, "wsd")) o->optim.schedule = LR_WSD;
    else if (!strcmp(f->schedule, "constant")) o->optim.schedule = LR_CONSTANT;
    else return cli_fail(cmd, "--schedule must be cosine, wsd or constant, not '%s'", f->schedule), 2;
    if (cli_threads(cmd, f->threads) != 0) return 2;
    cli_bf16(cmd, f->bf16);
    o->optim.warmup = f->warmup;
    o->seed = (uint64_t)f->seed;
    o->stop = &stop_flag;
    return 0;
}
