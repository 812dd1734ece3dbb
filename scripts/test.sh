#!/usr/bin/env bash
# The test command (README): installs what is missing, checks the generated protobuf Swift is
# current, builds, and runs every test tier against real redis-server and ZeroMQ sockets.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/generate-protos.sh --check
swift build --build-tests
swift test --skip-build "$@"
