#!/usr/bin/env bash
# Builds the real OTLP receiver the telemetry tests export to: Jaeger v2 (an OpenTelemetry
# Collector distribution with in-memory trace storage and a query API), from its Go module,
# pinned, into the git-ignored .tools/bin. $JAEGER_BIN overrides.
set -euo pipefail
JAEGER_MODULE_VERSION=v1.76.0   # the Go module version of Jaeger v2.13 (cmd/jaeger is the v2 binary)
cd "$(dirname "$0")/.."
if [ -n "${JAEGER_BIN:-}" ]; then echo "setup: jaeger at $JAEGER_BIN"; exit 0; fi
out=$PWD/.tools/bin/jaeger
stamp=$PWD/.tools/jaeger.version
if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$JAEGER_MODULE_VERSION" ]; then echo "setup: jaeger $JAEGER_MODULE_VERSION at $out"; exit 0; fi
command -v go >/dev/null || { echo "setup: Go is required to build Jaeger (or set JAEGER_BIN)" >&2; exit 1; }
echo "setup: building jaeger $JAEGER_MODULE_VERSION from the Go module proxy (first time only; cached afterwards)"
go mod download "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION"
src=$(go env GOMODCACHE)/github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION
# `go install pkg@version` refuses modules with replace directives, so build inside the module.
(cd "$src" && go build -o "$out" ./cmd/jaeger)
mkdir -p .tools && echo "$JAEGER_MODULE_VERSION" > "$stamp"
echo "setup: jaeger $JAEGER_MODULE_VERSION at $out"
