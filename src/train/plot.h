/* SPDX-License-Identifier: MIT */
/* plot: a run's metrics.jsonl drawn as one self-contained SVG, written beside
 * it so a person can look at a run instead of reading it. Uses base/ only. */
#ifndef WHALE_PLOT_H
#define WHALE_PLOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

/* Most vertices one series gets in the SVG; longer series are reduced to the
 * minimum and the maximum of each of PLOT_MAX_POINTS/2 buckets of
 * consecutive steps, so spikes and the envelope survive. */
#define PLOT_MAX_POINTS 2000
/* Largest metrics file read (bytes). */
#define PLOT_MAX_BYTES ((size_t)512 << 20)

/* Read metrics_path (JSON Lines, one object per line: DESIGN.md's
 * metrics.jsonl) and write svg_path atomically (base/file.h): the title
 * (NULL: the metrics path) and a grid of panels, one per group that has data,
 * step on x, each series one <polyline class="KEY">:
 *   loss (loss, eval_loss), lr, grad_norm (log scale when max/min > 100),
 *   tok_s, expert load max/mean (load_max_mean, or the mean of
 *   load_max_mean_layers when only that is given, and the worst layer of
 *   load_max_mean_layers as class "load_worst_layer"; dashed line at 1.5),
 *   reward/accuracy/format, completion_len, kl.
 * Values that are null, not numbers, NaN or +-Inf (also the bare NaN /
 * Infinity / nan / inf tokens some writers emit) are skipped; points are drawn
 * in step order. Lines without a finite numeric "step" and unknown keys are
 * ignored. A line that is not a JSON object is skipped and counted. A file
 * with nothing to draw (empty, or no series) still gives a valid SVG with one
 * panel saying "no data", so a plot written at step 0 never fails a run.
 * Returns the number of skipped lines (>= 0), or -1 with err naming the file
 * (missing, unreadable, over PLOT_MAX_BYTES, out of memory, write failed);
 * on error svg_path is untouched. */
int plot_metrics_svg(const char *metrics_path, const char *svg_path, const char *title, Err *err);

/* A run directory's metrics file: create dir out (and its parents), set
 * metrics_path to OUT/metrics.jsonl and plot_path to OUT/metrics.svg (the
 * plot drawn beside it), and open the metrics file for writing. keep_to < 0:
 * a new run, the file emptied; else a run resumed from the checkpoint of
 * step keep_to: the lines of steps <= keep_to are kept (those after it are
 * written again), lines without an integer "step" dropped, and the file
 * opened for appending. The file, or NULL with err naming the path. */
FILE *plot_metrics_open(const char *out, int64_t keep_to, char *metrics_path, size_t n_metrics,
                        char *plot_path, size_t n_plot, Err *err);

#endif
