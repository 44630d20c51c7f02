#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make run`: the most useful thing whale does today. It creates a small
# DeepSeek-V3-architecture model (MLA, DeepSeekMoE with sigmoid group-limited
# routing, one MTP module), describes it, and runs its forward pass both
# ways: the full-sequence prefill and token-by-token decoding through the
# latent KV cache, then feeds it text through its tokenizer and the R1 chat
# template. Then it trains one: a tiny model pretrained for a minute on a
# synthetic corpus of worked additions, with its loss against the corpus's
# unigram entropy, a plot, and a sample. Until the R1-Zero recipe lands
# (issue 5), this is the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
W=build/whale
OUT=runs/demo
mkdir -p "$OUT"
echo "== whale init --preset small --out $OUT/model"
$W init --preset small --out "$OUT/model" --force
echo
echo "== whale info -m $OUT/model"
$W info -m "$OUT/model"
ids=$(seq -s, 3 130)
echo
echo "== whale logits: 128 tokens, full-sequence prefill"
$W logits -m "$OUT/model" --ids "$ids" --out "$OUT/prefill.f32"
echo "== whale logits --decode: the same 128 tokens one at a time (absorbed MLA, latent cache)"
$W logits -m "$OUT/model" --ids "$ids" --out "$OUT/decode.f32" --decode
echo
echo "Both paths wrote 128 x vocab float32 logits to $OUT/{prefill,decode}.f32."
if /usr/bin/python3 -c "import numpy" 2>/dev/null; then
    /usr/bin/python3 -c "
import numpy as np
a = np.fromfile('$OUT/prefill.f32', dtype='<f4'); b = np.fromfile('$OUT/decode.f32', dtype='<f4')
print(f'max |prefill - decode| = {np.abs(a - b).max():.2e} over {a.size} logits')"
fi
echo
echo "== whale tokenize / generate: text in, text out (random weights: the words are noise)"
$W tokenize -m "$OUT/model" --text "What is 17 + 25? <think>"
$W generate -m "$OUT/model" -p "What is 17 + 25?" --chat -n 24 --temp 0 --verbose
echo
echo "== training: whale task-data -> whale data -> whale train (a tiny model, about a minute)"
$W task-data --task arith-add --n 8000 --template short --out "$OUT/corpus.jsonl"
$W init --preset tiny --out "$OUT/tiny" --force
$W data -m "$OUT/tiny" --input "$OUT/corpus.jsonl" --out "$OUT/data"
rm -rf "$OUT/run"
$W train -m "$OUT/tiny" --data "$OUT/data" --out "$OUT/run" --steps 150 --batch 8 --seq 128 \
    --lr 3e-3 --eval-every 50 --save-every 0 --log-every 25
/usr/bin/python3 - "$OUT/run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
h = next(r["unigram_entropy"] for r in rows if "unigram_entropy" in r)
ev = [r["eval_loss"] for r in rows if "eval_loss" in r]
print(f"unigram entropy {h:.3f} nats; eval loss {ev[0]:.3f} -> {ev[-1]:.3f} nats/token")
PY
echo "plot: $OUT/run/metrics.svg"
echo "== whale generate -m $OUT/run (greedy, the trained model)"
$W generate -m "$OUT/run" -p "User: Compute 352 + 417. Assistant:" -n 60 --temp 0
echo
echo "Next: the R1-Zero recipe (issue 5: whale grpo and whale eval exist), serving (6)."
