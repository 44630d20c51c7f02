#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make bench`: forward-pass throughput of the scalar reference kernels on
# the `small` preset (DeepSeek-V3 architecture, 12.6M parameters, F32),
# prefill of 128 tokens and decode of 64, median of 5 runs each, appended
# to bench/RESULTS.md with date, machine and command. The timer covers the
# forward calls only (not loading). SIMD kernels, quantised weights, GGUF
# and the comparison with llama.cpp come with issue 7.
set -euo pipefail
cd "$(dirname "$0")/.."
W=build/whale
DIR=build/bench/small
THREADS=${THREADS:-$(nproc)}
[ -f $DIR/model.safetensors ] || $W init --preset small --out $DIR --force 2>/dev/null
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # $1 = n tokens, $2 = extra flags; prints tok/s
    $W logits -m $DIR -t "$THREADS" --ids "$(seq -s, 3 $((2 + $1)))" --out /dev/null $2 2>&1 |
        sed -n 's/.*(\([0-9.]*\) tok\/s).*/\1/p'
}
run 16 "" >/dev/null # warm-up
pp=$(for i in 1 2 3 4 5; do run 128 ""; done | median)
tg=$(for i in 1 2 3 4 5; do run 64 --decode; done | median)
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
line="| $(date -u +%Y-%m-%d) | $cpu, $THREADS threads | small (F32) | $pp | $tg | \`make bench\` |"
echo "pp128 $pp tok/s, tg64 $tg tok/s"
if [ ! -f bench/RESULTS.md ]; then
    cat > bench/RESULTS.md <<'HDR'
# Benchmark results

Appended by `make bench` (bench/run.sh). pp128: prompt tokens/s over a
128-token prefill; tg64: tokens/s decoding 64 tokens one at a time through
the KV cache. Median of 5 runs; the timer covers the forward calls only.

| date | machine | model | pp128 tok/s | tg64 tok/s | command |
|---|---|---|---:|---:|---|
HDR
fi
echo "$line" >> bench/RESULTS.md
