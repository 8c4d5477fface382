#!/usr/bin/env bash
# Installs promtool (in Debian's `prometheus` package) when it is missing: the chart tests
# check the alert rules and dashboard queries with it and run every alert against synthetic
# series (`promtool test rules`). Only the binary is used; no Prometheus server is started.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    echo "promtool: $(command -v promtool)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "promtool is missing and apt-get is not available: install Prometheus's promtool" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "promtool is missing and installing it needs root (apt-get install prometheus)" >&2
        exit 1
    fi
fi
if ! apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $SUDO apt-get update -qq
fi
# RUNLEVEL=1 keeps the package from starting its service where an init system would.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends \
    prometheus >/dev/null
echo "promtool: $(command -v promtool)"
