#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make run`: the most useful thing whale does today. It creates a small
# DeepSeek-V3-architecture model (MLA, DeepSeekMoE with sigmoid group-limited
# routing, one MTP module), describes it, and runs its forward pass both
# ways: the full-sequence prefill and token-by-token decoding through the
# latent KV cache, then feeds it text through its tokenizer and the R1 chat
# template. Until the R1-Zero recipe lands (issue 5), this is the demo.
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
echo "Next: training (issue 4), the R1-Zero demo (5), serving (6)."
