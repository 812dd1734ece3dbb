#!/usr/bin/env bash
# The test command (README): installs what is missing, checks the generated protobuf Swift is
# current, builds, runs the Swift tiers (core, adapters against real redis-server and ZeroMQ,
# components), then the system tier (tests/system: real tollgate processes, Redis, HTTP).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/generate-protos.sh --check
swift build --build-tests
swift test --skip-build "$@"

if [ $# -eq 0 ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tests/system/requirements.txt
    TOLLGATE_BIN="$(swift build --show-bin-path)/tollgate" .venv/bin/pytest -q tests/system
    # deploy/: systemd units, Kubernetes manifests, compose file, Dockerfile, and every config
    # they carry through this build's `tollgate check-config`.
    TOLLGATE_BIN="$(swift build --show-bin-path)/tollgate" scripts/validate-deploy.sh
fi
