#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Serving benchmark (part of `make bench`), as the serving issue asks: `whale
# serve` on the R1-Distill-Qwen-1.5B shape at Q4_0 (random weights, made once
# by whale init + whale convert into build/bench, the file both servers
# load), driven by bench/serve_load.py over loopback:
#   - 1, 4 and 16 concurrent streaming clients, each for DURATION seconds
#     (default 60), MAX_TOKENS (48) new tokens per request, end of sequence
#     ignored: aggregate and per-stream tok/s, errors; a server with as many
#     slots as clients, restarted per client count. DESIGN's target: 16
#     clients >= 4x the single client's aggregate.
#   - context caching: the same long prompt twice, the time of each and the
#     cache hits the second reports.
# With LLAMA_SERVER=/path/to/llama-server set (built by hand beside the
# project; nothing here builds it), the same load runs against it on the
# same GGUF with the same slots and threads, side by side. Appends rows to
# bench/RESULTS.md. CLIENTS ("1 4 16"), DURATION, MAX_TOKENS, THREADS (all
# cores).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/results.sh
W=build/whale
THREADS=${THREADS:-$(nproc)}
CLIENTS=${CLIENTS:-"1 4 16"}
DURATION=${DURATION:-60}
MAX_TOKENS=${MAX_TOKENS:-48}
PY=/usr/bin/python3
mkdir -p build/bench
d=build/bench/qwen1.5b
[ -f $d/model.safetensors ] ||
    $W init --config bench/configs/r1-distill-qwen-1.5b.json --dtype bf16 --out $d --force >/dev/null
g=build/bench/qwen1.5b-q4_0.gguf
[ -f $g ] || $W convert -m $d --out $g --type q4_0 >/dev/null
log=build/bench/serve.log
pid=

stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; true; }
trap stop EXIT

# start_whale N: whale serve with N slots; waits for "listening on URL", sets URL
start_whale() {
    : > $log
    $W serve -m $g --port 0 --parallel "$1" -t "$THREADS" 2> $log &
    pid=$!
    for _ in $(seq 1200); do
        URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' $log | head -1)
        [ -n "$URL" ] && return 0
        kill -0 $pid 2>/dev/null || { cat $log >&2; exit 1; }
        sleep 0.1
    done
    echo "serve.sh: whale serve did not start" >&2; cat $log >&2; exit 1
}

# start_llama N: llama-server with N slots of 1024 tokens each
start_llama() {
    local port
    port=$($PY -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
    : > $log
    "$LLAMA_SERVER" -m $g --port "$port" -np "$1" -t "$THREADS" -c $(($1 * 1024)) >$log 2>&1 &
    pid=$!
    URL=http://127.0.0.1:$port
    for _ in $(seq 1200); do
        curl -sf "$URL/health" >/dev/null 2>&1 && return 0
        kill -0 $pid 2>/dev/null || { cat $log >&2; exit 1; }
        sleep 0.1
    done
    echo "serve.sh: llama-server did not start" >&2; cat $log >&2; exit 1
}

load() { $PY bench/serve_load.py --url "$URL" --max-tokens "$MAX_TOKENS" "$@" || true; }
field() { $PY -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

# run SERVER: every client count against a fresh server; rows into $rows
declare -A agg per errs
run() {
    local server=$1 n out
    for n in $CLIENTS; do
        "start_$server" "$n"
        load --streams 1 --requests 1 >/dev/null # warm up: page the weights in
        out=$(load --streams "$n" --duration "$DURATION")
        agg[$server,$n]=$(field "$out" tok_s)
        per[$server,$n]=$(field "$out" per_stream_tok_s)
        errs[$server,$n]=$(field "$out" errors)
        echo "$server: $n clients: ${agg[$server,$n]} tok/s aggregate, ${per[$server,$n]} per stream, ${errs[$server,$n]} errors"
        stop
    done
}

run whale
first=${CLIENTS%% *} last=${CLIENTS##* }
ratio=$($PY -c "print(f'{${agg[whale,$last]} / max(${agg[whale,$first]}, 1e-9):.2f}')")
echo "whale serve: $last clients = ${ratio}x $first client(s)"

# the same long prompt twice: the second finds its prefix in the cache
long=$($PY -c "print(' '.join(f'word{i}' for i in range(300)))")
cache() {
    $PY - "$URL" "$long" <<'PYEOF'
import http.client, json, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
body = json.dumps({"messages": [{"role": "user", "content": sys.argv[2]}], "max_tokens": 1,
                   "temperature": 0})
c = http.client.HTTPConnection(u.hostname, u.port)
t0 = time.perf_counter()
c.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
r = json.loads(c.getresponse().read())
print(json.dumps({"ms": round(1000 * (time.perf_counter() - t0), 1),
                  "hit": r["usage"].get("prompt_cache_hit_tokens", 0),
                  "prompt": r["usage"]["prompt_tokens"]}))
PYEOF
}
start_whale 1
c1=$(cache); c2=$(cache)
stop
echo "cache: first $(field "$c1" ms) ms ($(field "$c1" hit) of $(field "$c1" prompt) cached), second $(field "$c2" ms) ms ($(field "$c2" hit) cached)"

peer=0
if [ -n "${LLAMA_SERVER:-}" ]; then
    run llama
    peer=1
fi

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
day=$(date -u +%Y-%m-%d)
llama_version() { "$LLAMA_SERVER" --version 2>&1 | sed -n 's/^version: *//p' | head -1; }
if ! grep -q "^## Serving, R1-Distill-Qwen-1.5B Q4_0" bench/RESULTS.md 2>/dev/null; then
    cat >> bench/RESULTS.md <<'HDR'

## Serving, R1-Distill-Qwen-1.5B Q4_0 (`make bench`, bench/serve.sh)

The serving issue's load: the 1.5B shape at Q4_0 (random weights, one GGUF for both servers),
1, 4 and 16 streaming clients for 60 s each, 48 new tokens per request with `ignore_eos`,
temperature 1, a server with as many slots as clients, bench/serve_load.py on the same
machine over loopback. Aggregate: all generated tokens over the wall time; per stream: the
median request's decode rate after its first token. Ratio: 16 clients' aggregate over 1
client's. cache: one 300-word prompt sent twice (one token generated), whole request.

| date | machine | server | clients | aggregate tok/s | per stream tok/s | errors | notes |
|---|---|---|---:|---:|---:|---:|---|
HDR
fi
{
    for n in $CLIENTS; do
        note=""
        [ "$n" = "$last" ] && note="${ratio}x $first client; cache $(field "$c1" ms) / $(field "$c2" ms) ms ($(field "$c2" hit) of $(field "$c2" prompt) hit)"
        if [ $peer = 1 ]; then
            note="$note${note:+; }whale/llama-server $($PY -c "print(f'{${agg[whale,$n]} / max(${agg[llama,$n]}, 1e-9):.2f}')")x"
        fi
        echo "| $day | $cpu, $THREADS threads | whale serve --parallel $n | $n | ${agg[whale,$n]} | ${per[whale,$n]} | ${errs[whale,$n]} | $note |"
    done
    if [ $peer = 1 ]; then
        for n in $CLIENTS; do
            echo "| $day | $cpu, $THREADS threads | llama-server -np $n (llama.cpp $(llama_version)) | $n | ${agg[llama,$n]} | ${per[llama,$n]} | ${errs[llama,$n]} | |"
        done
    fi
} | results_rows "Serving, R1-Distill-Qwen-1.5B Q4_0"
