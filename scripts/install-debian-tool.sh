#!/usr/bin/env bash
# install-debian-tool.sh COMMAND PACKAGE: installs Debian's PACKAGE when COMMAND is missing.
# Used for wrk (`make bench`) and promtool (package `prometheus`: the chart tests check the
# alert rules and run each alert against synthetic series; no Prometheus server is started).
set -euo pipefail

command_name=$1
package=$2
if command -v "$command_name" >/dev/null 2>&1; then
    echo "$command_name: $(command -v "$command_name")"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$command_name is missing and apt-get is not available: install $package" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "$command_name is missing and installing it needs root (apt-get install $package)" >&2
        exit 1
    fi
fi
if ! apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    $SUDO apt-get update -qq
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$package" >/dev/null
echo "$command_name: $(command -v "$command_name")"
