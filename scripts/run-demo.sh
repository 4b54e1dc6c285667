#!/usr/bin/env bash
# Builds edgenvr and runs it on the embedded default: one synthetic camera recording
# per-minute chunk files into ./edgenvr-data, index included. Ctrl-C stops it cleanly.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh" build
exec cargo run --manifest-path "$here/Cargo.toml" --release --locked -- run "$@"
