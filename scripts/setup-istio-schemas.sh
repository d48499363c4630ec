#!/usr/bin/env bash
# Fetches Istio's own CRD schemas (istio.io/api, pinned) into the Go module cache, for the tests that
# validate the chart's WasmPlugin and EnvoyFilter with them (test/helpers/istio.ts reads them from there).
set -euo pipefail
ISTIO_API_VERSION=v1.32.0
command -v go >/dev/null || { echo "setup: Go is required to fetch istio.io/api $ISTIO_API_VERSION" >&2; exit 1; }
dir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "istio.io/api@$ISTIO_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -f "$dir/kubernetes/customresourcedefinitions.gen.yaml" ] || { echo "setup: istio.io/api $ISTIO_API_VERSION has no CRD file at $dir" >&2; exit 1; }
echo "setup: Istio CRD schemas $ISTIO_API_VERSION at $dir/kubernetes/customresourcedefinitions.gen.yaml"
