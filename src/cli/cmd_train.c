/* SPDX-License-Identifier: MIT */
/* whale train: pretrain or continue training a DeepSeek-architecture model
 * on token shards (train/trainer.h). Ctrl-C (or SIGTERM) finishes the
 * current step, writes a checkpoint and exits 130; a second Ctrl-C kills. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/threads.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "train/trainer.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    stop_flag = 1;
    signal(sig, SIG_DFL); /* a second one ends the process at once */
}

int cmd_train(int argc, char **argv) {
    TrainOpts o = {.steps = 1000, .batch = 8, .seq = 256, .grad_accum = 1, .optim = optim_defaults(),
                   .mtp_lambda = 0.3f, .balance_alpha = 1e-4f, .bias_gamma = 1e-2f,
                   .eval_every = 100, .eval_batches = 8, .save_every = 500, .log_every = 10,
                   .keep = 2, .max_nan = 5};
    const char *schedule = "cosine";
    int threads = 0, seed = 0, warmup = -1, bf16 = 0;
    o.optim.lr = 1e-3f;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &o.model, "DIR: model to start from (whale init makes one)"},
        {"data", 'd', ARG_STR, &o.data, "DIR: token shards from whale data"},
        {"out", 'o', ARG_STR, &o.out, "DIR: run directory (checkpoints, metrics.jsonl, model)"},
        {"steps", 0, ARG_INT, &o.steps, "N: optimiser steps (default 1000)"},
        {"batch", 'b', ARG_INT, &o.batch, "B: sequences per micro-batch (default 8)"},
        {"seq", 0, ARG_INT, &o.seq, "T: tokens per sequence (default 256)"},
        {"grad-accum", 0, ARG_INT, &o.grad_accum, "N: micro-batches per step (default 1)"},
        {"lr", 0, ARG_FLOAT, &o.optim.lr, "X: peak learning rate (default 1e-3)"},
        {"min-lr-ratio", 0, ARG_FLOAT, &o.optim.min_lr_ratio, "X: final lr / peak (default 0.1)"},
        {"warmup", 0, ARG_INT, &warmup, "N: warmup steps (default steps/20, at most 200)"},
        {"schedule", 0, ARG_STR, &schedule, "cosine|wsd|constant (default cosine)"},
        {"decay-steps", 0, ARG_INT, &o.optim.decay_steps, "N: wsd decay phase (default steps/10)"},
        {"weight-decay", 0, ARG_FLOAT, &o.optim.weight_decay, "X: AdamW decay of matrices (default 0.1)"},
        {"beta1", 0, ARG_FLOAT, &o.optim.beta1, "X: AdamW beta1 (default 0.9)"},
        {"beta2", 0, ARG_FLOAT, &o.optim.beta2, "X: AdamW beta2 (default 0.95)"},
        {"clip", 0, ARG_FLOAT, &o.optim.clip, "X: global grad-norm clip, 0 for none (default 1)"},
        {"mtp-lambda", 0, ARG_FLOAT, &o.mtp_lambda, "X: weight of the MTP loss (default 0.3)"},
        {"balance-alpha", 0, ARG_FLOAT, &o.balance_alpha, "X: sequence-wise balance loss weight (default 1e-4)"},
        {"bias-gamma", 0, ARG_FLOAT, &o.bias_gamma, "X: balancing bias step per update (default 1e-2; V3 used 1e-3 at lr 2.2e-4)"},
        {"doc-start", 0, ARG_FLAG, &o.doc_start, "windows begin at a document start (short documents stay whole)"},
        {"eval-every", 0, ARG_INT, &o.eval_every, "N: eval loss on the val split every N steps (default 100)"},
        {"eval-batches", 0, ARG_INT, &o.eval_batches, "N: batches per eval (default 8)"},
        {"save-every", 0, ARG_INT, &o.save_every, "N: checkpoint every N steps (default 500)"},
        {"log-every", 0, ARG_INT, &o.log_every, "N: progress line every N steps when not a terminal (default 10)"},
        {"keep", 0, ARG_INT, &o.keep, "N: checkpoints kept (default 2)"},
        {"ep", 0, ARG_INT, &o.ep, "N: under mpirun, groups of N ranks share the routed experts out (expert parallelism; N divides the ranks and the experts)"},
        {"max-nan", 0, ARG_INT, &o.max_nan, "N: stop after N non-finite steps in a row (default 5)"},
        {"resume", 0, ARG_FLAG, &o.resume, "continue from the newest checkpoint in --out"},
        {"stop-at", 0, ARG_INT, &o.stop_at, "N: stop with a checkpoint after step N (train in slices)"},
        {"quiet", 'q', ARG_FLAG, &o.quiet, "no progress output"},
        {"threads", 't', ARG_INT, &threads, "N: threads (default: all cores)"},
        {"seed", 0, ARG_INT, &seed, "N: data order seed (default 0)"},
        {"bf16", 0, ARG_FLAG, &bf16, CLI_BF16_HELP},
    };
    int r = args_parse("train", "-m DIR --data DIR --out DIR [--steps N] [--batch B] [--seq T] [flags]",
                       specs, (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!o.model || !o.data || !o.out)
        return cli_fail("train", "-m DIR, --data DIR and --out DIR are required"), 2;
    if (o.steps < 1 || o.batch < 1 || o.seq < 2 || o.grad_accum < 1 || o.batch > 65536 ||
        o.seq > 1 << 20 || o.grad_accum > 65536)
        return cli_fail("train", "--steps, --batch, --grad-accum must be >= 1 and --seq >= 2"), 2;
    if (!(o.optim.lr > 0) || !(o.optim.min_lr_ratio >= 0) || !(o.optim.clip >= 0) ||
        !(o.optim.weight_decay >= 0) || !(o.optim.beta1 >= 0 && o.optim.beta1 < 1) ||
        !(o.optim.beta2 >= 0 && o.optim.beta2 < 1) || !(o.mtp_lambda >= 0) ||
        !(o.balance_alpha >= 0) || !(o.bias_gamma >= 0))
        return cli_fail("train", "learning rate must be > 0; ratios, clip, decay, lambda, alpha, "
                                 "gamma >= 0; betas in [0, 1)"),
               2;
    if (o.eval_every < 0 || o.eval_batches < 1 || o.save_every < 0 || o.log_every < 1 ||
        o.keep < 1 || o.max_nan < 1 || warmup < -1 || o.optim.decay_steps < 0 || o.stop_at < 0 ||
        o.ep < 0)
        return cli_fail("train", "--eval-batches, --log-every, --keep, --max-nan must be >= 1; "
                                 "--eval-every, --save-every, --warmup, --decay-steps, --stop-at, --ep >= 0"),
               2;
    if (!strcmp(schedule, "cosine")) o.optim.schedule = LR_COSINE;
    else if (!strcmp(schedule, "wsd")) o.optim.schedule = LR_WSD;
    else if (!strcmp(schedule, "constant")) o.optim.schedule = LR_CONSTANT;
    else return cli_fail("train", "--schedule must be cosine, wsd or constant, not '%s'", schedule), 2;
    if (seed < 0) return cli_fail("train", "--seed must be >= 0"), 2;
    if (cli_threads("train", threads) != 0) return 2;
    o.seed = (uint64_t)seed;
    o.optim.total_steps = o.steps;
    o.optim.warmup = warmup >= 0 ? warmup : (o.steps / 20 < 200 ? o.steps / 20 : 200);
    if (o.optim.schedule == LR_WSD && o.optim.decay_steps == 0) o.optim.decay_steps = o.steps / 10;
    cli_bf16("train", bf16);
    o.stop = &stop_flag;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    Err err = {0};
    int rc = train_run(&o, &err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (rc != 0) return cli_fail("train", "%s", err.msg);
    return stop_flag ? 130 : 0; /* --stop-at is a normal end */
}
