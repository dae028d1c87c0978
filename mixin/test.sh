#!/usr/bin/env bash
# Tests of the Sentinel Mesh monitoring mixin. Run from the repository root:
#   bash mixin/test.sh
# Installs pinned jsonnet and promtool into .cache/bin (once), regenerates mixin/out,
# then runs promtool check/test and the Go test module mixin/tests-go (which also
# fails when the chart's copies in charts/sentinel-mesh/files are out of date).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.cache/bin"
PROMETHEUS_VERSION=v0.316.0   # promtool of Prometheus 3.16
mkdir -p "$bin"

promtool="$bin/promtool"
if ! [ -x "$promtool" ]; then
  echo "mixin: installing promtool ${PROMETHEUS_VERSION} into $bin" >&2
  GOBIN="$bin" go install "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}"
fi

# Generate mixin/out without touching the chart's copies, so that a stale copy fails below.
SKIP_CHART_COPY=1 bash "$root/mixin/build.sh"

echo "== promtool check rules" >&2
"$promtool" check rules "$root/mixin/out/alerts.yaml" "$root/mixin/out/rules.yaml"

echo "== promtool test rules" >&2
(cd "$root/mixin/tests" && "$promtool" test rules ./*.yaml)

echo "== go test (mixin/tests-go)" >&2
(cd "$root/mixin/tests-go" && go test -count=1 ./...)

echo "mixin: all tests passed" >&2
