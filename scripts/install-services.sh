#!/usr/bin/env bash
# Installs the servers the test suite needs, from Debian's packages, only where they are
# missing and not already reachable. Starting them is tests/services.py's job.
set -euo pipefail

reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

missing=()
if ! reachable 6379 && ! command -v redis-server >/dev/null; then
    missing+=(redis-server)
fi
if ! reachable 5432 && ! compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
    missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "install ${missing[*]} (Debian packages), or point PICKUP_TEST_* at running servers" >&2
    exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "installing ${missing[*]} ..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
