/* SPDX-License-Identifier: MIT */
/* The --input flag of the commands that read corpora (tokenizer-train,
 * data): one or more paths, which args_parse (one value per flag, each flag
 * once) cannot express, so they are taken out of argv first. */
#ifndef WHALE_CLI_INPUTS_H
#define WHALE_CLI_INPUTS_H

/* Take every --input / -i / --input=V out of argv[1..argc) into *paths
 * (malloc'd strings in a malloc'd array; free with cli_inputs_free) and put
 * the other arguments in rest (rest[0] = argv[0]; rest needs argc + 1
 * slots; *n_rest gets their count, rest[*n_rest] = NULL). After --input,
 * every argument up to the next one starting with '-' is a path (so a shell
 * glob works); each is also split at commas unless it names an existing
 * file; the flag may be repeated. Returns the number of paths (0 if none
 * was given), or -1 after an error line naming cmd ("--input needs at least
 * one file", out of memory). */
int cli_take_inputs(const char *cmd, int argc, char **argv, char **rest, int *n_rest,
                    char ***paths);
void cli_inputs_free(char **paths, int n);

#endif
