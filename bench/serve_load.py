#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Load generator for an OpenAI-compatible server (whale serve, llama-server).

N client threads each send streamed chat requests back to back, R each
or (--duration S) until S seconds have passed (a request under way then
finishes); every request asks for --max-tokens tokens (temperature 1, its
own seed, and `ignore_eos`, which whale serve and llama-server both take,
so a random model does not end early; tokens are counted from the usage
the server reports). Reports the aggregate generated tokens per second
(all tokens of all streams over the wall time from the first request to
the last byte), the median per-stream decode rate (a request's tokens
after its first over the time after its first), the median time to first
token, and the failed requests. Standard library only.

  bench/serve_load.py --url http://127.0.0.1:8080 --streams 16 --duration 60
prints one JSON line: {"streams", "requests", "errors", "tokens", "seconds",
"tok_s", "ttft_ms_median", "per_stream_tok_s"}; the exit status is 1 when a
request failed.
"""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def one_request(url, body, headers):
    """Send one streamed chat request; return (ttft_s, total_s, tokens)."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    ttft, tokens, pieces = None, None, 0
    for raw in resp:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        for ch in chunk.get("choices", []):
            d = ch.get("delta", {})
            if d.get("content") or d.get("reasoning_content"):
                pieces += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
    total = time.perf_counter() - t0
    conn.close()
    return ttft if ttft is not None else total, total, tokens if tokens is not None else pieces


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--requests", type=int, default=2, help="requests per stream")
    ap.add_argument("--duration", type=float, default=0,
                    help="seconds: requests back to back until then (instead of --requests)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--prompt", default="Write a long story about a whale who learns to count.")
    ap.add_argument("--model", default=None)
    args = ap.parse_args()

    results, errors = [], []
    lock = threading.Lock()

    deadline = None

    def worker(i):
        r = 0
        while (r < args.requests) if deadline is None else (time.perf_counter() < deadline):
            body = {
                "messages": [{"role": "user", "content": f"{args.prompt} (stream {i}, request {r})"}],
                "stream": True,
                "stream_options": {"include_usage": True},
                "max_tokens": args.max_tokens,
                "temperature": 1.0,
                "seed": 1000 * i + r,
                "ignore_eos": True,
            }
            if args.model:
                body["model"] = args.model
            try:
                res = one_request(args.url, body, {"Content-Type": "application/json"})
                with lock:
                    results.append(res)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(str(e))
            r += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.streams)]
    t0 = time.perf_counter()
    if args.duration > 0:
        deadline = t0 + args.duration
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        print(f"serve_load: {len(errors)} requests failed, first: {errors[0]}", file=sys.stderr)
    tokens = sum(r[2] for r in results)
    rates = [(r[2] - 1) / (r[1] - r[0]) for r in results if r[1] > r[0] and r[2] > 1]
    out = {
        "streams": args.streams,
        "requests": len(results),
        "errors": len(errors),
        "tokens": tokens,
        "seconds": round(wall, 3),
        "tok_s": round(tokens / wall, 1),
        "ttft_ms_median": round(1000 * statistics.median(r[0] for r in results), 1) if results else None,
        "per_stream_tok_s": round(statistics.median(rates), 1) if rates else 0,
    }
    print(json.dumps(out))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
