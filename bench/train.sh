#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Training throughput, side by side in one run: whale train and PyTorch
# (bench/train_torch.py, Debian python3-torch) on the issue-4 bench model
# (bench/configs/train-bench.json: vocab 4096, D 256, 8 layers, MLA, 16
# experts top-2, batch 8 x 256), same threads, OMP_WAIT_POLICY=PASSIVE for
# both; PyTorch with OpenBLAS's default kernels, with
# OPENBLAS_CORETYPE=SkylakeX, and with SkylakeX + jemalloc preloaded (when
# installed); and with its forward under bfloat16 autocast; whale (float32, and with --bf16)
# is compared with the fastest of the four. Steps are timed whole
# (forward, backward, clipping, AdamW, bias rule); the first 2 are warm-up.
# MFU: tok/s x FLOP per token (6 x active non-embedding parameters + 6 x
# layers x seq x heads x (qk + v) for attention) / the measured FMA peak.
# Appends rows to bench/RESULTS.md. STEPS (default 20), THREADS (all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/results.sh
W=build/whale
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-20}
D=build/bench/train
mkdir -p $D
py=/usr/bin/python3
json() { $py -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

bash bench/train_data.sh
[ -x build/bench/probe ] || ${CC:-cc} -O2 -fopenmp bench/probe.c -o build/bench/probe
# The FMA peak, probed before the runs and again after them, the larger
# reading kept: on a shared VM one probe has read half the machine (217
# against 430-460 GFLOP/s) while the trainers around it ran at full speed.
probe_peak() { json "$(OMP_NUM_THREADS=$THREADS build/bench/probe)" fma_peak_gflop_s; }
peak1=$(probe_peak)
flop=$($py - <<'PY'
import json
c = json.load(open("bench/configs/train-bench.json"))
D, V, L, H = c["hidden_size"], c["vocab_size"], c["num_hidden_layers"], c["num_attention_heads"]
qk, v = c["qk_nope_head_dim"] + c["qk_rope_head_dim"], c["v_head_dim"]
R, Q, rd = c["kv_lora_rank"], c["q_lora_rank"], c["qk_rope_head_dim"]
attn = D * Q + Q * H * qk + D * (R + rd) + R * H * (c["qk_nope_head_dim"] + v) + H * v * D
dense = 3 * D * c["intermediate_size"]
moe = 3 * D * c["moe_intermediate_size"] * (c["num_experts_per_tok"] + c["n_shared_experts"]) + D * c["n_routed_experts"]
k = c["first_k_dense_replace"]
active = L * attn + k * dense + (L - k) * moe + V * D  # + LM head; the embedding is a lookup
print(6 * active + 6 * L * 256 * H * (qk + v))
PY
)
export OMP_WAIT_POLICY=PASSIVE

# whale_run [FLAGS]: median tok/s of a whale run
whale_run() {
    rm -rf $D/run
    $W train -m $D/model --data $D/data --out $D/run --steps $((STEPS + 2)) --batch 8 --seq 256 \
        -t "$THREADS" --save-every 0 --eval-every 0 -q "$@"
    $py - "$D/run/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tok_s"' in l]
print(round(statistics.median(r["tok_s"] for r in rows[2:]), 1))
PY
}
whale_tok=$(whale_run)
# --bf16: weight products in bfloat16 where the CPU has AVX512-BF16 (else
# the same float32 run, and the row says so)
bf16_note=""
grep -qw avx512_bf16 /proc/cpuinfo || bf16_note=" (no AVX512-BF16 here: float32)"
whale_bf16=$(whale_run --bf16)
jem=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
pre=""; [ -f $jem ] && pre=$jem || echo "note: jemalloc not installed (apt-get install libjemalloc2): no jemalloc run"
# PyTorch four ways; whale is compared with the fastest. On this machine
# Debian's jemalloc made PyTorch 3x slower (page faults), so the runs
# without it count too.
torch_default=$(env -u OPENBLAS_CORETYPE $py bench/train_torch.py --steps "$STEPS" --threads "$THREADS")
torch_skx=$(OPENBLAS_CORETYPE=SkylakeX $py bench/train_torch.py --steps "$STEPS" --threads "$THREADS")
torch_jem='{"tok_s": 0}'
[ -n "$pre" ] && torch_jem=$(LD_PRELOAD=$pre OPENBLAS_CORETYPE=SkylakeX $py bench/train_torch.py --steps "$STEPS" --threads "$THREADS")
# and with its forward under bfloat16 autocast (oneDNN's bf16 matmuls)
torch_bf16=$(env -u OPENBLAS_CORETYPE $py bench/train_torch.py --steps "$STEPS" --threads "$THREADS" --bf16)
td=$(json "$torch_default" tok_s); ts=$(json "$torch_skx" tok_s); tj=$(json "$torch_jem" tok_s)
tb=$(json "$torch_bf16" tok_s)
peak2=$(probe_peak)
peak=$($py -c "print(max($peak1, $peak2))")
best=$($py -c "print(max($td, $ts, $tj, $tb))")
mfu() { $py -c "print(f'{$1 * $flop / 1e9 / $peak * 100:.1f}%')"; }
ratio=$($py -c "print(f'{$whale_tok / $best:.2f}x')")
ratio_bf16=$($py -c "print(f'{$whale_bf16 / $best:.2f}x')")
echo "train-bench ($flop FLOP/token, FMA peak $peak GFLOP/s (probes $peak1, $peak2), $THREADS threads):"
echo "  whale          $whale_tok tok/s  MFU $(mfu $whale_tok)"
echo "  whale --bf16   $whale_bf16 tok/s  MFU $(mfu $whale_bf16)$bf16_note"
echo "  torch default  $td tok/s  MFU $(mfu $td)"
echo "  torch SkylakeX $ts tok/s  MFU $(mfu $ts)"
[ -n "$pre" ] && echo "  torch SkylakeX + jemalloc $tj tok/s  MFU $(mfu $tj)"
echo "  torch bf16 autocast $tb tok/s  MFU $(mfu $tb)"
echo "  whale / best torch: $ratio, whale --bf16 / best torch: $ratio_bf16"

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
day=$(date -u +%Y-%m-%d)
if ! grep -q "^## Training" bench/RESULTS.md 2>/dev/null; then
    cat >> bench/RESULTS.md <<'HDR'

## Training (`make bench`, bench/train.sh)

The issue-4 bench model (bench/configs/train-bench.json) at batch 8 x 256, median tokens/s
over 20 timed steps after 2 warm-up steps; a step is forward + backward + clipping + AdamW +
bias rule. Same threads for both, OMP_WAIT_POLICY=PASSIVE; PyTorch also with jemalloc preloaded.
MFU = tok/s x FLOP/token / the probe's FMA peak (the larger of a probe before and after).

| date | machine | trainer | tok/s | MFU | vs best PyTorch |
|---|---|---|---:|---:|---:|
HDR
fi
{
    echo "| $day | $cpu, $THREADS threads | whale | $whale_tok | $(mfu $whale_tok) | $ratio |"
    echo "| $day | $cpu, $THREADS threads | whale --bf16$bf16_note | $whale_bf16 | $(mfu $whale_bf16) | $ratio_bf16 |"
    echo "| $day | $cpu, $THREADS threads | PyTorch $($py -c 'import torch; print(torch.__version__)'), OpenBLAS default | $td | $(mfu $td) | |"
    echo "| $day | $cpu, $THREADS threads | PyTorch, OPENBLAS_CORETYPE=SkylakeX | $ts | $(mfu $ts) | |"
    [ -z "$pre" ] || echo "| $day | $cpu, $THREADS threads | PyTorch, SkylakeX, jemalloc preloaded | $tj | $(mfu $tj) | |"
    echo "| $day | $cpu, $THREADS threads | PyTorch, bfloat16 autocast | $tb | $(mfu $tb) | |"
} | results_rows "Training"
