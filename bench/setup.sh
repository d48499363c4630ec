#!/usr/bin/env bash
# Installs the benchmark's load generator, oha (crates.io, pinned), into the git-ignored .bench-tools/.
set -euo pipefail
OHA_VERSION=${OHA_VERSION:-1.16.0}
cd "$(dirname "$0")/.."
if [ -x .bench-tools/bin/oha ] && .bench-tools/bin/oha --version | grep -q "$OHA_VERSION"; then
  echo "bench setup: $(.bench-tools/bin/oha --version)"; exit 0
fi
command -v cargo >/dev/null || { echo "bench setup: cargo is required to build oha (or set OHA_BIN)" >&2; exit 1; }
cargo install oha --version "$OHA_VERSION" --locked --root .bench-tools
echo "bench setup: $(.bench-tools/bin/oha --version)"
