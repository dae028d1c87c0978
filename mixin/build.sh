#!/usr/bin/env bash
# Generates the mixin output (mixin/out/) and copies it into the Helm chart
# (charts/sentinel-mesh/files/). Run from anywhere; `make mixin` calls it.
#   out/alerts.yaml, out/rules.yaml   Prometheus rule files
#   out/dashboards/*.json             Grafana dashboards
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.cache/bin"
JSONNET_VERSION=v0.22.0

jsonnet="$bin/jsonnet"
if ! [ -x "$jsonnet" ] || ! "$jsonnet" --version 2>/dev/null | grep -q "${JSONNET_VERSION}"; then
  echo "mixin: installing jsonnet ${JSONNET_VERSION} into $bin" >&2
  GOBIN="$bin" go install "github.com/google/go-jsonnet/cmd/jsonnet@${JSONNET_VERSION}"
fi

cd "$root/mixin"
out="$root/mixin/out"
rm -rf "$out"
mkdir -p "$out/dashboards"
"$jsonnet" -S -o "$out/alerts.yaml" alerts.jsonnet
"$jsonnet" -S -o "$out/rules.yaml" rules.jsonnet
"$jsonnet" -m "$out/dashboards" dashboards.jsonnet >/dev/null

if [ -n "${SKIP_CHART_COPY:-}" ]; then
  echo "mixin: wrote $out" >&2
  exit 0
fi

files="$root/charts/sentinel-mesh/files"
mkdir -p "$files/dashboards"
rm -f "$files"/dashboards/*.json
cp "$out/alerts.yaml" "$out/rules.yaml" "$files/"
cp "$out"/dashboards/*.json "$files/dashboards/"
echo "mixin: wrote $out and copied it to $files" >&2
