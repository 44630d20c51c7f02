/* SPDX-License-Identifier: MIT */
/* whale: the DeepSeek-V3 / R1 system in C. Dispatches to the commands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "train/comm.h"

#define WHALE_VERSION "0.1.0"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"init", cmd_init, "create a random-initialised model directory of a named shape"},
    {"info", cmd_info, "architecture, parameter counts, KV-cache bytes per token, dtypes"},
    {"logits", cmd_logits, "write the logits of a token sequence as float32"},
    {"bench", cmd_bench, "prompt and decode tokens/s"},
    {"tokenize", cmd_tokenize, "text to token ids (JSON array), with the model's tokenizer.json"},
    {"detokenize", cmd_detokenize, "token ids to text"},
    {"tokenizer-train", cmd_tokenizer_train, "learn a byte-level BPE tokenizer.json from text/JSONL files"},
    {"generate", cmd_generate, "stream the completion of a prompt (--chat: as a chat turn)"},
    {"chat", cmd_chat, "interactive multi-turn chat, R1 thinking shown apart"},
    {"convert", cmd_convert, "HF model directory -> GGUF file (--type), GGUF -> HF directory"},
    {"data", cmd_data, "text/JSONL files -> token shards for training (train-*.bin, val-*.bin)"},
    {"train", cmd_train, "pretrain a DeepSeek-V3-architecture model on token shards"},
    {"grpo", cmd_grpo, "R1-Zero reinforcement learning (GRPO) with rule rewards on a task"},
    {"sft", cmd_sft, "supervised fine-tuning on JSONL chat or prompt/completion, loss on answers"},
    {"distill", cmd_distill, "rejection-sampling distillation: a teacher's verified answers -> SFT"},
    {"eval", cmd_eval, "greedy and sampled pass@1, pass@k of a model on a task's held-out problems"},
    {"plot", cmd_plot, "draw a run's metrics.jsonl as an SVG beside it"},
    {"task-data", cmd_task_data, "R1-Zero pretraining corpus (JSONL) of worked task problems"},
    {"serve", cmd_serve, "OpenAI/DeepSeek-compatible HTTP API and web chat page"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f) {
    fprintf(f, "whale %s: DeepSeek-V3 / R1 in C\n\nusage: whale COMMAND [flags]\n\ncommands:\n",
            WHALE_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`whale COMMAND --help` lists a command's flags.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("whale %s\n", WHALE_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name)) continue;
        /* under mpirun every rank runs the command; the training commands
         * share the work through train/comm.h */
        Err err = {0};
        if (comm_world_init(&argc, &argv, &err) != 0) {
            fprintf(stderr, "whale %s: %s\n", argv[1], err.msg);
            return comm_world_end(1);
        }
        return comm_world_end(commands[i].run(argc - 1, argv + 1));
    }
    fprintf(stderr, "whale: unknown command '%s' (see whale --help)\n", argv[1]);
    return 2;
}
