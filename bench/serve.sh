#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Serving benchmark (part of `make bench`): `whale serve` on a model of
# the `small` preset (random weights, made once into build/bench/small and
# converted to an F16 GGUF, the file both servers load), driven by
# bench/serve_load.py over loopback:
#   - one stream, then 16 concurrent streams (aggregate generated tok/s;
#     the ratio is DESIGN's "16 streams >= 4x the single-stream aggregate"),
#   - context caching: the same long prompt twice, time to first token of
#     each and the cache hits the second reports.
# With LLAMA_SERVER=/path/to/llama-server set (built by hand beside the
# project; nothing here builds it), the same load runs against it on the
# same GGUF, with the same slots and threads, side by side. Appends rows to bench/RESULTS.md.
# STREAMS (default 16), MAX_TOKENS (128), THREADS (all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
W=build/whale
THREADS=${THREADS:-$(nproc)}
STREAMS=${STREAMS:-16}
MAX_TOKENS=${MAX_TOKENS:-128}
PY=/usr/bin/python3
mkdir -p build/bench
d=build/bench/small
[ -f $d/model.safetensors ] || $W init --preset small --out $d --force >/dev/null 2>&1
g=build/bench/small-f16.gguf
[ -f $g ] || $W convert -m $d --out $g --type f16 >/dev/null
log=build/bench/serve.log
pid=

stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=; true; }
trap stop EXIT

# start_server CMD...: run it, wait for "listening on URL" on its stderr, set URL
start_server() {
    : > $log
    "$@" 2> $log &
    pid=$!
    for _ in $(seq 600); do
        URL=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' $log | head -1)
        [ -n "$URL" ] && return 0
        kill -0 $pid 2>/dev/null || { cat $log >&2; exit 1; }
        sleep 0.1
    done
    echo "serve.sh: the server did not start" >&2; cat $log >&2; exit 1
}

load() { $PY bench/serve_load.py --url "$URL" --max-tokens "$MAX_TOKENS" "$@"; }
field() { $PY -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

start_server $W serve -m $g --port 0 --parallel "$STREAMS" -t "$THREADS"
load --streams 1 --requests 2 >/dev/null   # warm up
one=$(load --streams 1 --requests 4)
many=$(load --streams "$STREAMS" --requests 2)
ratio=$($PY -c "print(f'{$(field "$many" tok_s) / $(field "$one" tok_s):.2f}')")
echo "whale serve: 1 stream $(field "$one" tok_s) tok/s, $STREAMS streams $(field "$many" tok_s) tok/s ($ratio x)"

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
c1=$(cache); c2=$(cache)
echo "cache: first $(field "$c1" ms) ms ($(field "$c1" hit) of $(field "$c1" prompt) cached), second $(field "$c2" ms) ms ($(field "$c2" hit) cached)"
stop

peer=""
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
day=$(date -u +%Y-%m-%d)
llama_version() { "$LLAMA_SERVER" --version 2>&1 | sed -n 's/^version: *//p' | head -1; }
if [ -n "${LLAMA_SERVER:-}" ]; then
    port=$($PY -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
    : > $log
    "$LLAMA_SERVER" -m $g --port "$port" -np "$STREAMS" -t "$THREADS" -c $((STREAMS * 1024)) \
        >$log 2>&1 &
    pid=$!
    URL=http://127.0.0.1:$port
    for _ in $(seq 600); do
        curl -sf "$URL/health" >/dev/null 2>&1 && break
        kill -0 $pid 2>/dev/null || { cat $log >&2; exit 1; }
        sleep 0.1
    done
    load --streams 1 --requests 2 >/dev/null
    lone=$(load --streams 1 --requests 4)
    lmany=$(load --streams "$STREAMS" --requests 2)
    vs=$($PY -c "print(f'{$(field "$many" tok_s) / $(field "$lmany" tok_s):.2f}')")
    echo "llama-server: 1 stream $(field "$lone" tok_s) tok/s, $STREAMS streams $(field "$lmany" tok_s) tok/s; whale/llama-server at $STREAMS streams: $vs x"
    peer="| $day | $cpu, $THREADS threads | llama-server -np $STREAMS (llama.cpp $(llama_version)) | $(field "$lone" tok_s) | $(field "$lmany" tok_s) | $STREAMS | whale/llama-server at $STREAMS streams: ${vs}x | |"
    stop
fi

if ! grep -q "^## Serving" bench/RESULTS.md 2>/dev/null; then
    cat >> bench/RESULTS.md <<'HDR'

## Serving (`make bench`, bench/serve.sh)

`whale serve` on the `small` preset (random weights, as an F16 GGUF), loopback, bench/serve_load.py:
streamed chat requests at temperature 1 with `ignore_eos`, MAX_TOKENS tokens each (counted
from the reported usage). tok/s: all generated tokens over the wall time, client included
(it runs on the same machine). cache: one 300-word prompt sent twice, time to the whole answer of one
token.

| date | machine | server | 1 stream tok/s | N streams tok/s | N | ratio | cache: first / second ms (hits) |
|---|---|---|---:|---:|---:|---:|---|
HDR
fi
{
    echo "| $day | $cpu, $THREADS threads | whale serve --parallel $STREAMS | $(field "$one" tok_s) | $(field "$many" tok_s) | $STREAMS | ${ratio}x | $(field "$c1" ms) / $(field "$c2" ms) ($(field "$c2" hit) of $(field "$c2" prompt)) |"
    [ -n "$peer" ] && echo "$peer"
} >> bench/RESULTS.md
