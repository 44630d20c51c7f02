#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages whale builds and tests with (DESIGN.md,
# "Dependencies"). Idempotent and silent when everything is present.
set -euo pipefail

# chromium: tests/js_serve/page_chromium.mjs drives /usr/bin/chromium (about 45 s to install).
pkgs=(build-essential pkg-config libopenblas-dev libpcre2-dev libutf8proc-dev libjansson-dev
      libmicrohttpd-dev libcriterion-dev clang python3-torch python3-numpy chromium
      libopenmpi-dev openmpi-bin)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from another source that bundles npm: test the commands.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
