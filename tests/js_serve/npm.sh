#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install tests/js_serve's npm packages (openai, playwright-core) from
# package-lock.json with npm ci, once: a stamp newer than the lock file
# says it is done. Tests run in parallel and npm ci starts by removing
# node_modules, so installs are serialised with flock. Quiet unless npm fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec 9>"${TMPDIR:-/tmp}/whale_js_serve_npm.lock"
flock 9
done_stamp="$here/node_modules/.whale_installed"
[ -f "$done_stamp" ] && [ "$done_stamp" -nt "$here/package-lock.json" ] && exit 0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
npm ci --prefix "$here" --silent --no-audit --no-fund >"$log" 2>&1 ||
    { echo "tests/js_serve/npm.sh: npm ci in $here failed:" >&2; cat "$log" >&2; exit 1; }
touch "$done_stamp"
