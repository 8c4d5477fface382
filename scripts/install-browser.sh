#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/e2e/test_pages_*.py) where
# /usr/bin/chromium is missing. Playwright drives this system browser: `playwright install`
# cannot download its own builds here.
set -euo pipefail

CHROMIUM=${PICKUP_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "warning: no Chromium; the browser tests will be skipped. Install Debian's chromium" \
         "package (or set PICKUP_CHROMIUM to a Chromium binary)." >&2
    exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing chromium ..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
"$CHROMIUM" --version
