/* SPDX-License-Identifier: MIT */
/* One entry point per command, each in its own file; main.c dispatches.
 * Each returns the process exit code: 0 success, 1 failure (bad input), 2 bad
 * flags. */
#ifndef WHALE_COMMANDS_H
#define WHALE_COMMANDS_H

int cmd_init(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_tokenizer_train(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_grpo(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_task_data(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
