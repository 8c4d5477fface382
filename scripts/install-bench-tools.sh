#!/usr/bin/env bash
# Installs wrk (Debian's package) for `make bench` when it is missing. Locust, psutil and
# pyinstrument come with the locked dev dependencies (uv sync --frozen).
set -euo pipefail
exec bash "$(dirname "$0")/install-debian-tool.sh" wrk wrk
