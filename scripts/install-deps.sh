#!/usr/bin/env bash
# Installs the system packages Tollgate builds and tests against, from Debian's apt, when any is
# missing. Safe to run again: it does nothing when everything is present.
set -euo pipefail

# chromium: headless, for the dashboard's screenshot test (tests/system/test_dashboard.py).
packages=(libzmq3-dev libhiredis-dev redis-server redis-tools pkg-config protobuf-compiler chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# redis-server from apt may start a system instance; tests start their own on free ports.
