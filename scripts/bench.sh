#!/usr/bin/env bash
# The benchmark: builds the release binaries, then runs ferry-bench, which starts
# ferry-server and ferry-gateway on port 0 in target/bench-work (removed after),
# prints a Markdown table on stdout and writes target/bench/results.json.
# Options are ferry-bench's: --quick, --only tcp|gateway, --work-dir DIR, --json FILE.
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bins -p ferry-cli -p ferry-bench >&2
exec target/release/ferry-bench "$@"
