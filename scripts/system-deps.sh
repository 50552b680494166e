#!/usr/bin/env bash
# Make sure the Debian packages the test suite (or, with arguments, the demo) needs are installed.
#   root:      installs the missing ones with apt-get (non-interactive, no recommends)
#   non-root:  prints the exact command to run and exits 1
# Usage: scripts/system-deps.sh [PACKAGE...]   (default: the test suite's packages)
set -euo pipefail

DEFAULT_PACKAGES=(mosquitto postgresql chromium socat fonts-wqy-microhei)
packages=("$@")
if [ "${#packages[@]}" -eq 0 ]; then
    packages=("${DEFAULT_PACKAGES[@]}")
fi

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "system-deps: no dpkg-query here; install these packages with your system's package manager:" \
        "${packages[*]}" >&2
    exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "system-deps: install them as root, then run make again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
