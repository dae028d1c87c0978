#!/usr/bin/env bash
# Tests of the sentinel-mesh Helm chart. Run from the repository root:
#   bash charts/test.sh
# Installs pinned helm (and promtool) into .cache/bin (once), runs `helm lint` and
# `helm template` for the chart defaults and every ci/*-values.yaml scenario, then the Go
# test module charts/tests (Helm SDK rendering + strict decoding into k8s.io/api types).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/.cache/bin"
chart="$root/charts/sentinel-mesh"
HELM_VERSION=v3.22.0
HELM_V4_VERSION=v4.3.1
PROMETHEUS_VERSION=v0.316.0
# go-installed helm reports Kubernetes v1.20 as its default; the chart needs >= 1.25.
KUBE_VERSION=1.33.0
mkdir -p "$bin"

helm="$bin/helm"
# go-installed helm reports its version without the patch level (e.g. "v3.22").
if ! [ -x "$helm" ] || ! "$helm" version --template '{{.Version}}' 2>/dev/null | grep -Eq "^(${HELM_VERSION%.*}|${HELM_V4_VERSION%.*})"; then
  echo "charts: installing helm ${HELM_VERSION} into $bin" >&2
  if ! GOBIN="$bin" go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"; then
    echo "charts: helm v3 install failed, trying helm ${HELM_V4_VERSION}" >&2
    GOBIN="$bin" go install "helm.sh/helm/v4/cmd/helm@${HELM_V4_VERSION}"
  fi
fi
if ! [ -x "$bin/promtool" ]; then
  echo "charts: installing promtool ${PROMETHEUS_VERSION} into $bin" >&2
  GOBIN="$bin" go install "github.com/prometheus/prometheus/cmd/promtool@${PROMETHEUS_VERSION}"
fi

for f in "$chart"/files/alerts.yaml "$chart"/files/rules.yaml; do
  [ -s "$f" ] || { echo "charts: $f missing: run \`make mixin\`" >&2; exit 1; }
done

echo "== helm lint (defaults)" >&2
"$helm" lint --strict --kube-version "$KUBE_VERSION" "$chart"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for values in "$chart"/ci/*-values.yaml; do
  name="$(basename "$values" -values.yaml)"
  echo "== helm lint / template: $name" >&2
  "$helm" lint --strict --kube-version "$KUBE_VERSION" -f "$values" "$chart"
  "$helm" template sm "$chart" --namespace monitoring --kube-version "$KUBE_VERSION" -f "$values" > "$out/$name.yaml"
  echo "   $(grep -c '^kind:' "$out/$name.yaml") objects" >&2
done

echo "== go test (charts/tests)" >&2
(cd "$root/charts/tests" && PROMTOOL="$bin/promtool" go test -count=1 ./...)

echo "charts: all tests passed" >&2
