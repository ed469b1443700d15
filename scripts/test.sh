#!/usr/bin/env bash
# Runs every check and test of Ferry on a fresh machine: installs what they need
# (rustfmt and clippy, Debian's Chromium, ChromeDriver and HAProxy, schemathesis, the
# OpenAPI client generator and tuspy from PyPI, the TypeScript client's packages
# and tus-js-client from npm),
# checks formatting, builds every target with clippy's lints, then runs the
# whole suite with cargo-nextest. Benchmarks are
# separate: scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step's start, in seconds from the beginning, so that a slow run shows where.
step() { echo "== [${SECONDS}s] $*"; }

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    step "installing chromium and chromium-driver (Debian)"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! command -v openssl >/dev/null; then
    step "installing openssl (Debian; the README's tus example digests a file with it)"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
fi

if ! command -v haproxy >/dev/null; then
    step "installing haproxy (Debian; the S3 cluster suite puts it in front of three servers)"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi

if ! python3 -c "import schemathesis, openapi_python_client, tusclient, moto.server" 2>/dev/null; then
    step "installing schemathesis, openapi-python-client, tuspy and moto's S3 server (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi

for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        step "installing $component (rustup)"
        rustup component add "$component"
    fi
done

step "checking formatting"
cargo fmt --all --check

step "installing the TypeScript client's packages (npm, tests/typescript/package-lock.json)"
(cd tests/typescript && npm ci --no-audit --no-fund --silent)
step "installing tus-js-client for Node (npm, tests/tus-node/package-lock.json)"
(cd tests/tus-node && npm ci --no-audit --no-fund --silent)

# The lints and the tests share one build: clippy-driver compiles the workspace's own
# crates (every target) in rustc's place, with their warnings denied, as
# `cargo clippy --all-targets -- -D warnings` would lint them. The dependencies are
# then compiled once, instead of once checked for clippy and once built for the tests.
export RUSTC_WORKSPACE_WRAPPER=clippy-driver
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
step "building every target, linted by clippy (-D warnings); target/cargo-timings/ shows where the time went"
cargo build --workspace --all-targets --locked --timings

step "running the tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"

step "done"
