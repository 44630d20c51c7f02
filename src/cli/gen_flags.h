/* SPDX-License-Identifier: MIT */
/* The flags `whale generate` and `whale chat` share (model, sampling,
 * template, context, threads), declared once: each command appends these
 * specs to its own and turns the parsed values into ChatOpts. */
#ifndef WHALE_GEN_FLAGS_H
#define WHALE_GEN_FLAGS_H

#include "cli/args.h"
#include "infer/chat.h"

#define GEN_FLAGS_N 16 /* specs gen_flags_specs writes */

typedef struct GenFlags {
    const char *model, *system, *tmpl;
    int n, top_k, seed, verbose, ctx, threads, last_n;
    float temp, top_p, min_p, rep, presence, frequency;
} GenFlags;

/* Defaults: temperature 0.6, top-p 0.95 (the R1 recommendation and what
 * `whale init` writes to generation_config.json), n = -1 (until a stop),
 * seed = -1 (from the clock). */
void gen_flags_init(GenFlags *f);

/* Write the shared specs into specs (room for GEN_FLAGS_N); returns the count. */
int gen_flags_specs(GenFlags *f, ArgSpec *specs);

/* Check the values and fill o (sampling and context; the caller sets raw).
 * Returns 0, or 2 after printing an error line for cmd. */
int gen_flags_apply(const char *cmd, const GenFlags *f, ChatOpts *o);

#endif
