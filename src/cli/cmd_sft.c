/* SPDX-License-Identifier: MIT */
/* whale sft: supervised fine-tuning on JSONL examples, the loss on the
 * answer tokens only (rl/sft.h). Ctrl-C (or SIGTERM) finishes the step,
 * writes a checkpoint and exits 130 (--resume continues from it); a second
 * one kills. */
#include "cli/commands.h"
#include "cli/sft_flags.h"

int cmd_sft(int argc, char **argv) {
    SftFlags f;
    sft_flags_init(&f);
    ArgSpec specs[SFT_FLAGS_N + 5] = {
        {"model", 'm', ARG_STR, &f.o.model, "DIR: the model to fine-tune"},
        {"data", 'd', ARG_STR, &f.o.data,
         "FILE: JSONL, {\"messages\": [...]} or {\"prompt\": ..., \"completion\": ...} per line"},
        {"out", 'o', ARG_STR, &f.o.out, "DIR: run directory (checkpoints, metrics.jsonl, model)"},
        {"chat-template", 0, ARG_STR, &f.o.chat_template,
         "NAME: for messages (default: the model's): deepseek-v3 deepseek-r1 r1-distill-qwen "
         "r1-distill-llama chatml"},
        {"resume", 0, ARG_FLAG, &f.o.resume,
         "continue from the newest checkpoint in --out (same data, --batch, --max-len, --seed)"},
    };
    const int n = 5 + sft_flags_specs(&f, specs + 5);
    int r = args_parse("sft", "-m DIR --data FILE.jsonl --out DIR [--epochs N | --steps N] [flags]",
                       specs, n, argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!f.o.model || !f.o.data || !f.o.out)
        return cli_fail("sft", "-m DIR, --data FILE.jsonl and --out DIR are required"), 2;
    if ((r = sft_flags_apply("sft", &f)) != 0) return r;
    Err err = {0};
    sft_flags_catch_signals();
    return sft_flags_finish("sft", sft_run(&f.o, &err), &err);
}
