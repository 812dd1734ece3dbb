#!/usr/bin/env bash
# Regenerates Sources/TollgateWire/Generated from proto/ with protoc (apt: protobuf-compiler) and a
# protoc-gen-swift built from the very swift-protobuf checkout the package resolved, so the generator
# and the library always share a version.
#
#   scripts/generate-protos.sh          rewrite the generated Swift
#   scripts/generate-protos.sh --check  exit 1 if the committed Swift is stale (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler" >&2; exit 2; }

swift package resolve >/dev/null
src=.build/checkouts/swift-protobuf
[ -d "$src" ] || { echo "swift-protobuf checkout missing at $src" >&2; exit 2; }
version=$(git -C "$src" describe --tags --exact-match 2>/dev/null || echo unknown)
plugin_build=.build-protoc-gen-swift/$version
if [ ! -x "$plugin_build/release/protoc-gen-swift" ]; then
    echo "building protoc-gen-swift $version from $src" >&2
    swift build -c release --package-path "$src" --scratch-path "$plugin_build" --product protoc-gen-swift >&2
fi
plugin=$(cd "$plugin_build/release" && pwd)/protoc-gen-swift

out=Sources/TollgateWire/Generated
target=$out
if [ "${1:-}" = "--check" ]; then
    target=$(mktemp -d)
    trap 'rm -rf "$target"' EXIT
fi
mkdir -p "$target"
[ "${1:-}" = "--check" ] || find "$target" -name '*.pb.swift' -delete

protoc --plugin=protoc-gen-swift="$plugin" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=DropPath \
    --swift_out="$target" \
    -I proto proto/tollgate/v1/*.proto

if [ "${1:-}" = "--check" ]; then
    if diff -r "$out" "$target" >/dev/null; then
        echo "generated Swift is up to date with proto/ (protoc-gen-swift $version)"
    else
        diff -r "$out" "$target" | head -40 >&2
        echo "generated Swift is stale: run scripts/generate-protos.sh and commit the result" >&2
        exit 1
    fi
else
    echo "wrote $(ls "$out" | wc -l) files to $out (protoc-gen-swift $version)"
fi
