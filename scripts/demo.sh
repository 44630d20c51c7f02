#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make run`: the R1-Zero recipe on 3-digit addition, from nothing, in about
# five minutes on 2 cores: a synthetic corpus, a tokenizer, a tiny
# DeepSeek-V3-architecture model (MLA + DeepSeekMoE + MTP) pretrained on it,
# GRPO with rule rewards, distillation into a smaller student, and a report
# (runs/demo/report.md) with the before/after figures and plots.
# WHALE_DEMO_FULL=1 runs the longer schedule (recipes/r1-zero/tasks/arith.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
full=()
[ "${WHALE_DEMO_FULL:-0}" = 1 ] && full=(--full)
exec bash recipes/r1-zero/run.sh --task arith --out runs/demo "${full[@]}"
