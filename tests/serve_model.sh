#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# serve_model.sh OUT: a tiny model for the serving tests that thinks, then
# answers. A random `whale init --preset tiny` model has the R1 chat template
# (its tokenizer has <think>), so generation starts inside a thinking block
# that a random model seldom closes. This one is fine-tuned with `whale sft`
# until it has memorised a few chats in exactly the form the server prompts
# with: the R1 generation prompt `<｜Assistant｜><think>\n`, then the thinking,
# `</think>`, the answer and EOS. Greedy decoding of a memorised user turn
# gives both parts back:
#   Hi              -> thinking "I should greet back."  answer "Hello! How can I help?"
#   What is 2+2?    -> thinking "2 plus 2 makes 4."     answer "It is 4."
#   Name a whale.   -> thinking "A large one."          answer "The blue whale."
# (also as the second turn after "Hi"), and the plain prompt "Once upon a
# time" continues with " there was a whale." About 1 s (5 s under ASan).
# WHALE_BIN names the binary (default build/whale).
set -euo pipefail
out="${1:?usage: serve_model.sh OUT}"
whale="${WHALE_BIN:-build/whale}"
work="$(mktemp -d "${TMPDIR:-/tmp}/whale_serve_model_XXXXXX")"
trap 'rm -rf "$work"' EXIT

# The prompts are the R1 template's rendering without BOS (sft adds it), so
# the trained sequences are token for token what the server prefills.
U='<｜User｜>' A='<｜Assistant｜>' E='<｜end▁of▁sentence｜>'
cat >"$work/chats.jsonl" <<EOF
{"prompt": "${U}Hi${A}<think>\n", "completion": "I should greet back.</think>Hello! How can I help?"}
{"prompt": "${U}What is 2+2?${A}<think>\n", "completion": "2 plus 2 makes 4.</think>It is 4."}
{"prompt": "${U}Name a whale.${A}<think>\n", "completion": "A large one.</think>The blue whale."}
{"prompt": "${U}Hi${A}Hello! How can I help?${E}${U}What is 2+2?${A}<think>\n", "completion": "2 plus 2 makes 4.</think>It is 4."}
{"prompt": "Once upon a time", "completion": " there was a whale."}
EOF

export OMP_WAIT_POLICY=passive
"$whale" init --preset tiny --out "$work/base" --seed 5 --std 0.05 >/dev/null 2>&1 ||
    { echo "serve_model.sh: $whale init failed" >&2; exit 1; }
# lr 3e-3, constant, no decay: the settings test_sft memorises with
if ! "$whale" sft -m "$work/base" --data "$work/chats.jsonl" --out "$out" --steps 60 --batch 5 \
    --lr 3e-3 --schedule constant --weight-decay 0 --save-every 0 -t 1 -q >"$work/sft.log" 2>&1; then
    echo "serve_model.sh: $whale sft failed:" >&2
    cat "$work/sft.log" >&2
    exit 1
fi
