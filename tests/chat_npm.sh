#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install tests/js_chat's npm packages (npm ci, quiet) when they are missing
# or older than package-lock.json. Tests run in parallel and npm ci removes
# node_modules first, so callers are serialised with a lock.
set -euo pipefail
dir="$(cd "$(dirname "$0")/js_chat" && pwd)"
exec 9>"${TMPDIR:-/tmp}/whale_js_chat_npm.lock"
flock 9
stamp="$dir/node_modules/.whale_installed"
if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then exit 0; fi
if ! npm ci --prefix "$dir" --silent --no-audit --no-fund >/dev/null 2>"$dir/.npm-ci.log"; then
    echo "chat_npm.sh: npm ci --prefix $dir failed:" >&2
    cat "$dir/.npm-ci.log" >&2
    exit 1
fi
rm -f "$dir/.npm-ci.log"
touch "$stamp"
