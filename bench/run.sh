#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make bench`: the machine's limits (read bandwidth, FMA peak, whale's
# GEMM), then prompt (pp128) and decode (tg64) speed of the issue-7 model
# shapes with random weights (R1-Distill-Qwen-1.5B, DeepSeek-V2-Lite cut to
# 8 layers; made once by `whale init --dtype bf16` into build/bench/),
# converted once to Q8_0, Q4_0 and Q4_K GGUF files (`whale convert`, the
# files users load and llama.cpp reads), with decode as a share of the
# bandwidth roofline (weight bytes read per token x tok/s / bandwidth).
# Appends dated rows to bench/RESULTS.md. Run it on a quiet machine:
# other processes move every number. BENCH_MODELS="small qwen1.5b v2lite8"
# picks models; THREADS sets the thread count (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/results.sh
W=build/whale
THREADS=${THREADS:-$(nproc)}
MODELS=${BENCH_MODELS:-"small qwen1.5b v2lite8"}
mkdir -p build/bench
CC=${CC:-cc}
$CC -O2 -fopenmp bench/probe.c -o build/bench/probe
$CC -O2 -fopenmp -Isrc bench/gemm.c build/libwhale.a -ljansson -lpcre2-8 -lutf8proc -lm \
    -o build/bench/gemm
$CC -O2 -fopenmp -Isrc bench/decode_share.c build/libwhale.a -ljansson -lpcre2-8 -lutf8proc -lm \
    -o build/bench/decode_share
json() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

probe=$(OMP_NUM_THREADS=$THREADS build/bench/probe)
gemm=$(OMP_NUM_THREADS=$THREADS build/bench/gemm)
bw=$(json "$probe" read_gb_s)
peak=$(json "$probe" fma_peak_gflop_s)
g=$(json "$gemm" gemm_256x2048x2048_gflop_s)
echo "read bandwidth $bw GB/s, FMA peak $peak GFLOP/s, whale GEMM 256x2048x2048 $g GFLOP/s"

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
day=$(date -u +%Y-%m-%d)
rows=""
model_dir() {
    case $1 in
    small) d=build/bench/small; [ -f $d/model.safetensors ] ||
               $W init --preset small --out $d --force >/dev/null 2>&1 ;;
    qwen1.5b) d=build/bench/qwen1.5b; [ -f $d/model.safetensors ] ||
               $W init --config bench/configs/r1-distill-qwen-1.5b.json --dtype bf16 --out $d --force ;;
    v2lite8) d=build/bench/v2lite8; [ -f $d/model.safetensors ] ||
               $W init --config bench/configs/v2-lite-8l.json --dtype bf16 --out $d --force ;;
    *) echo "unknown model $1" >&2; exit 2 ;;
    esac
    echo $d
}
# the model's GGUF file of type $2, made once from its directory $3
gguf_of() {
    local gg=build/bench/$1-$2.gguf
    [ -f $gg ] || $W convert -m "$3" --out $gg --type $2 >/dev/null
    echo $gg
}
TYPES="q8_0 q4_0 q4_k"
for name in $MODELS; do
    dir=$(model_dir $name)
    for q in $TYPES; do
        gg=$(gguf_of $name $q "$dir")
        # the share is of the bandwidth read just before and just after
        # the run, the larger of the two: a VM's read bandwidth has swung
        # from 29 to 64 GB/s within minutes here, so a run whose probes
        # differ by more than 15%, or whose decode read faster than both
        # (it fell in a fast minute between two slow probes), is made
        # again (three tries, then the row names both probes)
        for try in 1 2 3; do
            before=$(json "$(OMP_NUM_THREADS=$THREADS build/bench/probe)" read_gb_s)
            out=$($W bench -m "$gg" -t "$THREADS" -p 128 -n 64 -r 3 --json)
            after=$(json "$(OMP_NUM_THREADS=$THREADS build/bench/probe)" read_gb_s)
            read=$(/usr/bin/python3 -c "print(round($(json "$out" tg_tok_s) * $(json "$out" decode_bytes_per_token) / 1e9, 1))")
            steady=$(/usr/bin/python3 -c "b, a = $before, $after; print(int(abs(b - a) <= 0.15 * max(b, a) and $read <= max(b, a)))")
            [ "$steady" = 1 ] && break
            echo "$name $q: bandwidth moved during the run (probes $before -> $after GB/s, decode read $read)"
        done
        here=$(/usr/bin/python3 -c "print(max($before, $after))")
        of="$here"; [ "$steady" = 1 ] || of="$here (probes $before / $after)"
        pp=$(json "$out" pp_tok_s); tg=$(json "$out" tg_tok_s)
        bpt=$(json "$out" decode_bytes_per_token); simd=$(json "$out" simd)
        share=$(/usr/bin/python3 -c "print(f'{$tg * $bpt / 1e9 / $here * 100:.0f}%')")
        gbs=$(/usr/bin/python3 -c "print(f'{$tg * $bpt / 1e9:.1f}')")
        echo "$name $q: pp128 $pp tok/s, tg64 $tg tok/s, decode $gbs GB/s = $share of $of GB/s"
        rows+="| $day | $cpu, $THREADS threads, $simd | $name | $q | $pp | $tg | $gbs | $share of $of |"$'\n'
    done
done

# Decode's share burst by burst (bench/decode_share.c): 40 bursts of 8
# steps, each between two read probes, split by the bandwidth regime the
# bursts ran in; the whole-run shares above mix regimes when the
# bandwidth flips during a run.
shares=""
for name in $MODELS; do
    dir=$(model_dir $name)
    for q in $TYPES; do
        gg=$(gguf_of $name $q "$dir")
        out=$(WHALE_QUIET=1 build/bench/decode_share "$gg" 40 8 "$THREADS" 2>/dev/null)
        shares+=$(/usr/bin/python3 - "$out" "$day" "$cpu, $THREADS threads" "$name" "$q" <<'PY'
import json, sys
r, day, mach, name, q = json.loads(sys.argv[1]), *sys.argv[2:]
for k in ("slow", "fast", "all"):
    if k in r:
        g = r[k]
        print(f"| {day} | {mach} | {name} | {q} | {k} | {g['bursts']} of {r['bursts']} | {g['probe_gb_s']} | {g['share'] * 100:.0f}% |")
        print(f"{name} {q}: {k} regime, {g['bursts']} bursts, probe {g['probe_gb_s']} GB/s, decode {g['share'] * 100:.0f}% of it", file=sys.stderr)
PY
)$'\n'
    done
done

# Side by side with llama.cpp (LLAMA_BENCH=/path/to/llama-bench, built by
# hand beside the project; nothing here builds it): both on the same GGUF
# file (whale convert of the model to each type), same threads.
side=""
if [ -n "${LLAMA_BENCH:-}" ]; then
    for name in $MODELS; do
        dir=$(model_dir $name)
        for q in $TYPES; do
            gg=$(gguf_of $name $q "$dir")
            out=$($W bench -m $gg -t "$THREADS" -p 128 -n 64 -r 3 --json)
            pp=$(json "$out" pp_tok_s); tg=$(json "$out" tg_tok_s)
            ll=$("$LLAMA_BENCH" -m $gg -t "$THREADS" -p 128 -n 64 -r 3 -o json)
            lpp=$(/usr/bin/python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(round([x for x in r if x['n_prompt']>0][0]['avg_ts'],1))" "$ll")
            ltg=$(/usr/bin/python3 -c "import json,sys; r=json.loads(sys.argv[1]); print(round([x for x in r if x['n_gen']>0][0]['avg_ts'],1))" "$ll")
            echo "$name $q GGUF: whale pp128 $pp tg64 $tg | llama.cpp pp128 $lpp tg64 $ltg"
            ratio() { /usr/bin/python3 -c "print(f'{$1 / $2:.2f}x')"; }
            side+="| $day | $cpu, $THREADS threads | $name | $q | $pp | $lpp | $(ratio $pp $lpp) | $tg | $ltg | $(ratio $tg $ltg) |"$'\n'
        done
    done
fi

if ! grep -q "^## Inference" bench/RESULTS.md 2>/dev/null; then
    cat >> bench/RESULTS.md <<'HDR'

## Inference (`make bench`)

pp128: prompt tokens/s over a 128-token prefill; tg64: tokens/s decoding 64 tokens one at a
time; median of 3. decode GB/s: weight bytes one decode step reads (every matrix once,
routed experts K/E of them, one embedding row) times tg64; share: of the read bandwidth
that the probe measured just before that row (rows since 2026-12-07 name it; since the
fifteenth session of 2026-12-07, the larger of the probes just before and just after it). Random weights
from `whale init`, converted to GGUF files by `whale convert` (quantised at load in rows
before the fifteenth session of 2026-12-07). The timer covers the forward calls only.

| date | machine | model | quant | pp128 tok/s | tg64 tok/s | decode GB/s | share of roofline |
|---|---|---|---|---:|---:|---:|---:|
HDR
fi
{
    echo "| $day | limits: read $bw GB/s, FMA peak $peak GFLOP/s, whale GEMM 256x2048x2048 $g GFLOP/s ($THREADS threads) | | | | | | |"
    printf "%s" "$rows"
} | results_rows 'Inference (`make bench`)'
if ! grep -q "^## Decode share burst by burst" bench/RESULTS.md; then
    cat >> bench/RESULTS.md <<'HDR'

## Decode share burst by burst (`make bench`, bench/decode_share.c)

Each burst decodes 8 tokens (the same positions every time) between two read probes of 256
MiB; a burst counts when its probes agree within 10%, its share is the weight bytes it read
per second over their mean. The counted bursts are split into the machine's bandwidth
regimes (two when the fastest probe is over 1.3x the slowest), each with its median probe
and median share. 40 bursts a row.

| date | machine | model | quant | regime | bursts counted | probe GB/s | decode share |
|---|---|---|---|---|---:|---:|---:|
HDR
fi
printf "%s" "$shares" | grep '^|' | results_rows "Decode share burst by burst"
if [ -n "$side" ]; then
    if ! grep -q "^## Inference side by side" bench/RESULTS.md; then
        cat >> bench/RESULTS.md <<'HDR'

## Inference side by side with llama.cpp (`LLAMA_BENCH=... make bench`)

Both programs on the same GGUF file (`whale convert` of the random-weight model to the type),
same threads, one after the other in one run; llama-bench's mean of 3, whale's median of 3.

| date | machine | model | quant | whale pp128 | llama.cpp pp128 | ratio | whale tg64 | llama.cpp tg64 | ratio |
|---|---|---|---|---:|---:|---:|---:|---:|---:|
HDR
    fi
    printf "%s" "$side" | results_rows "Inference side by side"
fi
if [ -x bench/tokenizer.sh ] || [ -f bench/tokenizer.sh ]; then bash bench/tokenizer.sh || true; fi
