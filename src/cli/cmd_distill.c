/* SPDX-License-Identifier: MIT */
/* whale distill: a teacher samples k answers per training problem of a
 * task, the verifier keeps the right ones, a student is fine-tuned on them
 * (rl/distill.h). Ctrl-C during the fine-tuning finishes the step, writes a
 * checkpoint and exits 130. */
#include "cli/commands.h"
#include "cli/task_flags.h"
#include "cli/sft_flags.h"
#include "rl/distill.h"

int cmd_distill(int argc, char **argv) {
    SftFlags f;
    sft_flags_init(&f);
    DistillOpts o = {.problems = 64, .k = 8, .max_tokens = 256, .temperature = 1.0f};
    reward_opts_default(&o.reward);
    const char *tpl = "r1zero";
    ArgSpec specs[SFT_FLAGS_N + 12] = {
        {"model", 'm', ARG_STR, &o.teacher, "DIR: the teacher, which samples"},
        {"student", 0, ARG_STR, &o.student, "DIR: the model to fine-tune (same vocabulary)"},
        {"task", 0, ARG_STR, &o.task, "NAME: the task (see whale task-data --help)"},
        {"out", 'o', ARG_STR, &o.out, "DIR: distill.jsonl, then the student's run (checkpoints, metrics)"},
        {"problems", 0, ARG_INT, &o.problems, "N: training problems 0..N-1 of the seed (default 64)"},
        {"k", 0, ARG_INT, &o.k, "K: samples per problem (default 8)"},
        {"temp", 0, ARG_FLOAT, &o.temperature, "T: the teacher's temperature (default 1)"},
        {"difficulty", 0, ARG_INT, &o.difficulty, "D: task difficulty (default: the task's)"},
        {"template", 0, ARG_STR, &tpl, "r1zero|short: prompt template (default r1zero)"},
        {"max-tokens", 0, ARG_INT, &o.max_tokens, "N: tokens per sample (default 256)"},
        {"data-only", 0, ARG_FLAG, &o.data_only, "stop after writing OUT/distill.jsonl"},
    };
    const int n = 11 + sft_flags_specs(&f, specs + 11);
    int r = args_parse("distill",
                       "-m TEACHER --student DIR --task NAME --out DIR [--problems N] [--k K] "
                       "[--temp T] [--data-only] [sft flags]",
                       specs, n, argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!o.teacher || !o.task || !o.out || (!o.student && !o.data_only))
        return cli_fail("distill", "-m TEACHER, --student DIR, --task NAME and --out DIR are "
                                   "required (--student may be left out with --data-only)"),
               2;
    if (!cli_task_flags("distill", o.task, o.difficulty, tpl, &o.tpl)) return 2;
    if (o.problems < 1 || o.k < 1 || o.max_tokens < 1 || o.problems > (1 << 24) || o.k > 4096)
        return cli_fail("distill", "--problems, --k and --max-tokens must be >= 1"), 2;
    if (!(o.temperature >= 0)) return cli_fail("distill", "--temp must be >= 0"), 2;
    if ((r = sft_flags_apply("distill", &f)) != 0) return r;
    o.seed = f.o.seed;
    o.quiet = f.o.quiet;
    o.sft = f.o;
    Err err = {0};
    sft_flags_catch_signals();
    return sft_flags_finish("distill", distill_run(&o, &err), &err);
}
