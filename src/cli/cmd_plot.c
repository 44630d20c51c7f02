/* SPDX-License-Identifier: MIT */
/* whale plot: a run's metrics.jsonl drawn as one SVG (train/plot.h), by
 * default metrics.svg beside it. --metrics may also name the run directory. */
#include <stdio.h>

#include "base/file.h"
#include "base/log.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "train/plot.h"

int cmd_plot(int argc, char **argv) {
    const char *metrics = NULL, *out = NULL, *title = NULL;
    int threads = 0, seed = 0;
    ArgSpec specs[] = {
        {"metrics", 0, ARG_STR, &metrics, "FILE: a run's metrics.jsonl, or the directory holding it"},
        {"out", 'o', ARG_STR, &out, "FILE: the SVG to write (default: metrics.svg beside FILE)"},
        {"title", 0, ARG_STR, &title, "S: the title on top (default: the metrics path)"},
        {"threads", 't', ARG_INT, &threads, "N: unused (plotting is single-threaded)"},
        {"seed", 0, ARG_INT, &seed, "N: unused (plotting is deterministic)"},
    };
    int r = args_parse("plot", "--metrics FILE [--out FILE.svg] [--title S]", specs,
                       (int)(sizeof specs / sizeof specs[0]), argc, argv);
    if (r) return r > 0 ? 0 : 2;
    if (!metrics) return cli_fail("plot", "--metrics FILE is required"), 2;
    if (cli_threads("plot", threads) != 0) return 2;
    char in[4096], dir[4096], def_out[4096];
    if (file_is_dir(metrics)) {
        if (path_join(in, sizeof in, metrics, "metrics.jsonl") != 0)
            return cli_fail("plot", "--metrics: path too long");
    } else if (snprintf(in, sizeof in, "%s", metrics) >= (int)sizeof in) {
        return cli_fail("plot", "--metrics: path too long");
    }
    if (!out) {
        path_dir_of(in, dir, sizeof dir);
        if (path_join(def_out, sizeof def_out, dir, "metrics.svg") != 0)
            return cli_fail("plot", "--metrics: path too long");
        out = def_out;
    }
    Err err = {{0}};
    int skipped = plot_metrics_svg(in, out, title, &err);
    if (skipped < 0) return cli_fail("plot", "%s", err.msg);
    if (skipped) log_warn("whale plot: %s: %d line%s not a JSON object, skipped", in, skipped,
                          skipped == 1 ? " is" : "s are");
    log_info("whale plot: %s -> %s", in, out);
    return 0;
}
