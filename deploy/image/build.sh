#!/bin/sh
# Builds the sealwatch container image offline (no registry, no base image):
#   sh deploy/image/build.sh [TAG]        default TAG: the workspace version
# 1. a static release binary (glibc with crt-static; `--target` keeps the flag away from build
#    scripts and from the eBPF object that build.rs compiles),
# 2. `podman build` (or `buildah bud`) of deploy/image/Containerfile FROM scratch,
# giving localhost/sealwatch:TAG. Push it with `podman push localhost/sealwatch:TAG REGISTRY/...`.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tag=${1:-$version}
target=x86_64-unknown-linux-gnu
commit=$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)

echo "==> static release build ($target, commit $commit)"
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
SEALWATCH_GIT_COMMIT="$commit" \
    cargo build --release -p sealwatch --target "$target"
bin="target/$target/release/sealwatch"
if readelf -d "$bin" | grep -q '(NEEDED)'; then
    echo "error: $bin still needs shared libraries:" >&2
    readelf -d "$bin" | grep '(NEEDED)' >&2
    exit 1
fi

context="target/image-context"
rm -rf "$context"
mkdir -p "$context"
cp "$bin" "$context/sealwatch"
strip --strip-debug "$context/sealwatch"
cp deploy/image/Containerfile "$context/Containerfile"

image="localhost/sealwatch:$tag"
echo "==> building $image"
if command -v podman >/dev/null 2>&1; then
    podman build --network=none --pull=never -t "$image" -f "$context/Containerfile" "$context"
elif command -v buildah >/dev/null 2>&1; then
    buildah bud --network=none --pull-never -t "$image" -f "$context/Containerfile" "$context"
else
    echo "error: neither podman nor buildah is installed (apt-get install podman)" >&2
    exit 1
fi
echo "==> built $image"
