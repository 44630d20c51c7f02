/* SPDX-License-Identifier: MIT */
/* whale grpo: R1-Zero reinforcement learning with rule rewards
 * (rl/grpo.h). Ctrl-C finishes the step, writes a checkpoint, exits 130;
 * --resume continues from it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/task_flags.h"
#include "rl/grpo.h"
#include "rl/task.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    stop_flag = 1;
    signal(sig, SIG_DFL);
}

int cmd_grpo(int argc, char **argv) {
    GrpoOpts o = {.steps = 50, .prompts = 32, .group = 8, .mu = 2, .max_tokens = 256,
                  .temperature = 1.0f, .loss = {0.2f, 0.0f, 1}, .norm = GRPO_NORM_SEQ,
                  .optim = optim_defaults(), .bias_gamma = 0.0f};
    reward_opts_default(&o.reward);
    o.optim.lr = 2e-4f;
    o.optim.weight_decay = 0.0f;
    o.optim.schedule = LR_CONSTANT;
    const char *tpl = "r1zero", *norm = "seq";
    int no_std = 0, seed = 0, threads = 0, require_format = 0, bf16 = 0;
    float time_limit = 0;
    ArgSpec specs[] = {
        {"model", 'm', ARG_STR, &o.model, "DIR: the policy to start from (and the KL reference)"},
        {"task", 0, ARG_STR, &o.task, "NAME: the task to learn (see whale task-data --help)"},
        {"out", 'o', ARG_STR, &o.out, "DIR: run directory (metrics.jsonl, checkpoints, model)"},
        {"steps", 0, ARG_INT, &o.steps, "N: rollout batches (default 50)"},
        {"prompts", 'P', ARG_INT, &o.prompts, "N: problems per batch (default 32)"},
        {"group", 'G', ARG_INT, &o.group, "G: completions per problem (default 8)"},
        {"mu", 0, ARG_INT, &o.mu, "N: optimiser steps per batch (default 2)"},
        {"max-tokens", 0, ARG_INT, &o.max_tokens, "N: tokens per completion (default 256)"},
        {"difficulty", 0, ARG_INT, &o.difficulty, "D: task difficulty (default: the task's)"},
        {"template", 0, ARG_STR, &tpl, "r1zero|short: prompt template (default r1zero)"},
        {"temp", 0, ARG_FLOAT, &o.temperature, "T: rollout temperature (default 1)"},
        {"clip", 0, ARG_FLOAT, &o.loss.clip_eps, "E: PPO ratio clip epsilon (default 0.2)"},
        {"kl", 0, ARG_FLOAT, &o.loss.beta, "B: KL weight to the starting model, k3 (default 0: no reference kept)"},
        {"no-std", 0, ARG_FLAG, &no_std, "advantages r - mean without / std (Dr. GRPO)"},
        {"norm", 0, ARG_STR, &norm, "seq|token|const: length normalisation (default seq, as GRPO)"},
        {"lr", 0, ARG_FLOAT, &o.optim.lr, "X: learning rate (default 2e-4)"},
        {"grad-clip", 0, ARG_FLOAT, &o.optim.clip, "X: global grad-norm clip (default 1)"},
        {"w-format", 0, ARG_FLOAT, &o.reward.w_format, "X: weight of the format reward"},
        {"w-language", 0, ARG_FLOAT, &o.reward.w_language, "X: weight of language consistency (default 0)"},
        {"require-format", 0, ARG_FLAG, &require_format, "count a right answer only in a well-formed completion"},
        {"bias-gamma", 0, ARG_FLOAT, &o.bias_gamma, "X: MoE balancing bias step (default 0: routing kept as pretrained)"},
        {"save-every", 0, ARG_INT, &o.save_every, "N: checkpoint every N steps (default: the end)"},
        {"time-limit", 0, ARG_FLOAT, &time_limit, "SEC: stop with a checkpoint after the step that reaches SEC seconds"},
        {"resume", 0, ARG_FLAG, &o.resume, "continue from the newest checkpoint in --out (same --prompts, --group, --mu, --seed)"},
        {"quiet", 'q', ARG_FLAG, &o.quiet, "no progress output"},
        {"threads", 't', ARG_INT, &threads, "N: threads (default: all cores)"},
        {"seed", 0, ARG_INT, &seed, "N: problems and samples (default 0)"},
        {"bf16", 0, ARG_FLAG, &bf16, CLI_BF16_HELP " (rollouts too)"},
    };
    int r = args_parse("grpo", "-m DIR --task NAME --out DIR [--group G] [--steps N] [--kl B] [--clip E]",
                       specs, (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!o.model || !o.task || !o.out)
        return cli_fail("grpo", "-m DIR, --task NAME and --out DIR are required"), 2;
    if (!cli_task_flags("grpo", o.task, o.difficulty, tpl, &o.tpl)) return 2;
    if (!strcmp(norm, "seq")) o.norm = GRPO_NORM_SEQ;
    else if (!strcmp(norm, "token")) o.norm = GRPO_NORM_TOKEN;
    else if (!strcmp(norm, "const")) o.norm = GRPO_NORM_CONST;
    else return cli_fail("grpo", "--norm must be seq, token or const, not '%s'", norm), 2;
    if (o.steps < 1 || o.prompts < 1 || o.group < 2 || o.mu < 1 || o.max_tokens < 1 ||
        o.prompts > 65536 || o.group > 1024 || o.mu > 64 || o.save_every < 0 || seed < 0 ||
        !(time_limit >= 0))
        return cli_fail("grpo", "--steps, --prompts, --mu, --max-tokens must be >= 1, --group >= 2, "
                                "--time-limit >= 0"), 2;
    o.time_limit = time_limit;
    if (!(o.temperature > 0) || !(o.loss.clip_eps > 0 && o.loss.clip_eps < 1) ||
        !(o.loss.beta >= 0) || !(o.optim.lr > 0) || !(o.optim.clip >= 0) ||
        !(o.bias_gamma >= 0))
        return cli_fail("grpo", "--temp and --lr must be > 0, --clip in (0, 1), --kl, "
                                "--grad-clip and --bias-gamma >= 0"),
               2;
    if (cli_threads("grpo", threads) != 0) return 2;
    cli_bf16("grpo", bf16);
    o.loss.scale_std = !no_std;
    o.reward.require_format = require_format;
    o.seed = (uint64_t)seed;
    o.optim.total_steps = o.steps * o.mu;
    o.stop = &stop_flag;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    Err err = {0};
    int rc = grpo_run(&o, &err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (rc != 0) return cli_fail("grpo", "%s", err.msg);
    return stop_flag ? 130 : 0;
}
