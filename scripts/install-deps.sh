#!/usr/bin/env bash
# Installs the system packages Tollgate builds and tests against, from Debian's apt, when any is
# missing. Safe to run again: it does nothing when everything is present.
set -euo pipefail

# chromium: headless, for the dashboard's screenshot test (tests/system/test_dashboard.py).
packages=(libzmq3-dev libhiredis-dev redis-server redis-tools pkg-config protobuf-compiler chromium)
# prometheus brings promtool, which the tests run on live /metrics and on deploy/prometheus; its
# recommends (exporters, SNMP, ...) are not needed, so it is installed without them.
lean=(prometheus)
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
for p in "${lean[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    [ "$(id -u)" -eq 0 ] || { echo "missing package: $p; run as root or: sudo apt-get install -y --no-install-recommends $p" >&2; exit 1; }
    echo "installing: $p (without recommends)" >&2
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done
# redis-server from apt may start a system instance; tests start their own on free ports.
