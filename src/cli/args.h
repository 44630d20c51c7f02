/* SPDX-License-Identifier: MIT */
/* Flag parsing shared by every command: a table of options, strict value
 * parsing, --help generated from the table, one clear error line for a bad
 * flag. */
#ifndef WHALE_ARGS_H
#define WHALE_ARGS_H

typedef enum ArgType { ARG_FLAG, ARG_INT, ARG_FLOAT, ARG_STR } ArgType;

typedef struct ArgSpec {
    const char *name;   /* long name without dashes, e.g. "model" */
    char short_name;    /* 0 if none */
    ArgType type;
    void *dst;          /* int*, int*, float*, const char** */
    const char *help;   /* one line; "VALUE: text" form names the value */
} ArgSpec;

/* Parse argv[1..] of a command. Returns 0 to run, 1 when --help was
 * printed (exit 0), -1 after printing an error line to stderr (exit 2).
 * Each flag may be given once. */
int args_parse(const char *cmd, const char *usage, const ArgSpec *specs, int n_specs, int argc,
               char **argv);

/* Apply -t/--threads: 0 keeps the default (all cores), 1..1024 sets the
 * count. Returns 0, or -1 after printing an error line. */
int cli_threads(const char *cmd, int threads);

/* Apply --bf16 (kernels/gemm.h's gemm_bf16): on, the weight products of
 * training run in bfloat16 where the CPU has AVX512-BF16; without it, a
 * note that the run stays float32. */
#define CLI_BF16_HELP                                                                             \
    "weight products in bfloat16, summed in float32 (AVX512-BF16; weights, gradients and "       \
    "optimiser state stay float32)"
void cli_bf16(const char *cmd, int on);

/* Print "whale CMD: message" to stderr and return 1 (the command's exit code). */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
