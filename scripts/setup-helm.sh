#!/usr/bin/env bash
# Provides Helm for the chart tests (test/unit/istio-render.test.ts renders istio/chart with the real
# `helm template`): $HELM_BIN when set, else Helm built from its Go module (pinned) into the git-ignored
# .meshward/bin. Needs the Go toolchain; the first build takes a few minutes, later runs reuse it.
set -euo pipefail
HELM_VERSION=v3.19.0
cd "$(dirname "$0")/.."
if [ -n "${HELM_BIN:-}" ]; then
  [ -x "$HELM_BIN" ] || { echo "setup: HELM_BIN=$HELM_BIN is not an executable" >&2; exit 1; }
  bin=$HELM_BIN
else
  bin=.meshward/bin/helm
  stamp=.meshward/bin/helm.version
  if [ ! -x "$bin" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$HELM_VERSION" ]; then
    command -v go >/dev/null || { echo "setup: Go is required to build Helm $HELM_VERSION (or set HELM_BIN)" >&2; exit 1; }
    echo "setup: building helm $HELM_VERSION from its Go module into .meshward/bin (first time only)"
    mkdir -p .meshward/bin
    GOBIN="$PWD/.meshward/bin" GOFLAGS=-buildvcs=false go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    echo "$HELM_VERSION" > "$stamp"
  fi
fi
echo "setup: helm $("$bin" version --template '{{.Version}}') at $bin"
