#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Data-parallel scaling on one machine: whale train on the issue-4 bench
# model (bench/configs/train-bench.json) as 1 rank x all threads against
# one rank per core x 1 thread (mpirun), the same 8 x cores sequences of
# 256 tokens per optimiser step (one rank accumulates what the ranks
# split), the
# ranks with the gradient sums overlapped with the backward and without
# (WHALE_COMM_OVERLAP=0), and with the routed experts shared out over the
# ranks (--ep, each rank holding and computing its share). Peak resident
# memory per rank from /usr/bin/time where it is installed. Runs alternate,
# REPS times (default 3); each
# figure is the median step tokens/s over STEPS timed steps (default 10)
# after 2 warm-up steps, then the median over the repetitions. Scaling
# efficiency = ranks' tok/s / one rank's tok/s on the same cores. Appends
# to bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/results.sh
W=$PWD/build/whale
D=build/bench/train
CORES=${CORES:-$(nproc)}
STEPS=${STEPS:-10}
REPS=${REPS:-3}
py=/usr/bin/python3
command -v mpirun >/dev/null || { echo "bench/mpi.sh: mpirun missing (scripts/deps.sh installs openmpi-bin)" >&2; exit 1; }
# root (CI, containers) must say so twice to mpirun
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=PASSIVE
bash bench/train_data.sh
med() { $py - "$1" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tok_s"' in l]
print(round(statistics.median(r["tok_s"] for r in rows[2:]), 1))
PY
}
A=(train -m $D/model --data $D/data --steps $((STEPS + 2)) --batch 8 --seq 256 --save-every 0 --eval-every 0 -q)
# peak RSS: the largest rank's, in MB, of the last run of each layout
T=()
rss_of() { echo "?"; }
if [ -x /usr/bin/time ]; then
    T=(/usr/bin/time -a -o $D/mpi.rss -f "%M")
    rss_of() { sort -n $D/mpi.rss | tail -1 | awk '{printf "%.0f MB", $1 / 1024}'; }
fi
one=() two=() after=() ep=()
for r in $(seq "$REPS"); do
    rm -rf $D/mpi $D/mpi.rss; "${T[@]}" $W "${A[@]}" --grad-accum "$CORES" -t "$CORES" --out $D/mpi; one+=("$(med $D/mpi/metrics.jsonl)"); rss1=$(rss_of)
    rm -rf $D/mpi $D/mpi.rss; mpirun --oversubscribe -np "$CORES" "${T[@]}" $W "${A[@]}" --grad-accum 1 -t 1 --out $D/mpi; two+=("$(med $D/mpi/metrics.jsonl)"); rss2=$(rss_of)
    rm -rf $D/mpi $D/mpi.rss; WHALE_COMM_OVERLAP=0 mpirun --oversubscribe -np "$CORES" "${T[@]}" $W "${A[@]}" --grad-accum 1 -t 1 --out $D/mpi; after+=("$(med $D/mpi/metrics.jsonl)"); rss3=$(rss_of)
    rm -rf $D/mpi $D/mpi.rss; mpirun --oversubscribe -np "$CORES" "${T[@]}" $W "${A[@]}" --grad-accum 1 -t 1 --ep "$CORES" --out $D/mpi; ep+=("$(med $D/mpi/metrics.jsonl)"); rss4=$(rss_of)
done
rm -rf $D/mpi $D/mpi.rss
m() { $py -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
o=$(m "${one[@]}") t=$(m "${two[@]}") a=$(m "${after[@]}") e=$(m "${ep[@]}")
eff() { $py -c "print(f'{$1 / $o * 100:.0f}%')"; }
echo "train-bench, $((8 * CORES)) x 256 tokens per step on $CORES cores (runs: 1 rank ${one[*]}; ranks ${two[*]}; ranks, sums after ${after[*]}; --ep ${ep[*]}):"
echo "  1 rank x $CORES threads      $o tok/s, peak RSS $rss1"
echo "  $CORES ranks x 1 thread      $t tok/s  ($(eff "$t")), peak RSS per rank $rss2"
echo "  $CORES ranks, sums after bwd $a tok/s  ($(eff "$a")), peak RSS per rank $rss3"
echo "  $CORES ranks, --ep $CORES       $e tok/s  ($(eff "$e")), peak RSS per rank $rss4"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
day=$(date -u +%Y-%m-%d)
if ! grep -q "^## Data-parallel scaling" bench/RESULTS.md 2>/dev/null; then
    cat >> bench/RESULTS.md <<'HDR'

## Data-parallel scaling (`make bench`, bench/mpi.sh)

whale train on the issue-4 bench model, 8 x cores sequences of 256 tokens per optimiser step, one rank with all
threads (gradient accumulation) against one rank per core under `mpirun` (OpenMPI, shared
memory), with the gradient sums overlapped with the backward and after it, and with the routed
experts shared out (`--ep`). Median step tok/s over the timed steps, median over the
repetitions; efficiency = against one rank; peak resident memory of the largest rank (last run).

| date | machine | layout | tok/s | efficiency | peak RSS per rank |
|---|---|---|---:|---:|---:|
HDR
fi
{
    echo "| $day | $cpu | 1 rank x $CORES threads | $o | 100% | $rss1 |"
    echo "| $day | $cpu | $CORES ranks x 1 thread | $t | $(eff "$t") | $rss2 |"
    echo "| $day | $cpu | $CORES ranks x 1 thread, sums after the backward | $a | $(eff "$a") | $rss3 |"
    echo "| $day | $cpu | $CORES ranks x 1 thread, --ep $CORES | $e | $(eff "$e") | $rss4 |"
} | results_rows "Data-parallel scaling"
