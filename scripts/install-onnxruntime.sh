#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that github.com/yalue/onnxruntime_go loads.
# The library is taken from the npm package onnxruntime-node (the only registry this
# project relies on besides the Go module proxy), pinned by version and by the sha256 of
# both the package tarball and the extracted library. Idempotent: does nothing when the
# pinned library is already in place.
set -euo pipefail

ORT_VERSION="1.24.1"   # must match the C API headers of github.com/yalue/onnxruntime_go in go.mod
TARBALL_SHA256="57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772"
LIB_SHA256="53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4"

root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${ORT_DIR:-$root/.cache/onnxruntime}"
lib="$dest/libonnxruntime.so.$ORT_VERSION"

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) arch=x64 ;;
  Linux/aarch64) arch=arm64 ;;
  *) echo "install-onnxruntime: unsupported platform $(uname -s)/$(uname -m)" >&2; exit 1 ;;
esac

if [ -f "$lib" ] && [ "$arch" = x64 ] && echo "$LIB_SHA256  $lib" | sha256sum -c --status; then
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "install-onnxruntime: fetching onnxruntime-node@$ORT_VERSION from the npm registry" >&2
(cd "$work" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
tgz="$work/onnxruntime-node-$ORT_VERSION.tgz"
echo "$TARBALL_SHA256  $tgz" | sha256sum -c --status || {
  echo "install-onnxruntime: checksum mismatch for $tgz" >&2; exit 1; }
tar -xzf "$tgz" -C "$work" "package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
mkdir -p "$dest"
src="$work/package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
if [ "$arch" = x64 ]; then
  echo "$LIB_SHA256  $src" | sha256sum -c --status || {
    echo "install-onnxruntime: checksum mismatch for libonnxruntime.so.1" >&2; exit 1; }
fi
install -m 0644 "$src" "$lib"
ln -sf "libonnxruntime.so.$ORT_VERSION" "$dest/libonnxruntime.so"
echo "install-onnxruntime: installed $lib" >&2
