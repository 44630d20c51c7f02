#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The issue-4 bench model (bench/configs/train-bench.json, random weights)
# and token shards of English text into build/bench/train, once: shared by
# bench/train.sh and bench/mpi.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
W=build/whale
D=build/bench/train
mkdir -p $D
[ -f $D/model/model.safetensors ] || $W init --config bench/configs/train-bench.json --out $D/model --force >/dev/null
if [ ! -f $D/data/train-00000.bin ]; then
    # any English text will do for speed: the machine's own documentation
    find /usr/share/doc -name copyright | sort | sed -n '1,400p' | xargs cat > $D/corpus.txt
    WHALE_QUIET=1 $W data -m $D/model -i $D/corpus.txt -o $D/data
fi
