#!/usr/bin/env bash
# Installs wrk (Debian's package) for `make bench` when it is missing. Locust, psutil and
# pyinstrument come with the locked dev dependencies (uv sync --frozen).
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
    echo "wrk: $(command -v wrk)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "wrk is missing and apt-get is not available: install wrk with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "wrk is missing and installing it needs root (apt-get install wrk)" >&2
        exit 1
    fi
fi
if ! apt-cache policy wrk 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
echo "wrk: $(command -v wrk)"
