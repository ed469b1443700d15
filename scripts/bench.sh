#!/usr/bin/env bash
# The benchmark: builds the release binaries, then runs ferry-bench, which starts
# ferry-server and ferry-gateway on port 0 in target/bench-work (removed after),
# prints a Markdown table on stdout and writes target/bench/results.json.
# Options are ferry-bench's: --quick, --only tcp|gateway|tus|s3, --s3-bucket NAME (with the AWS_*
# variables: measure the S3 store on that server instead of moto's), --work-dir DIR, --json FILE.
# See docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# scp over loopback is measured beside Ferry when sshd can be started: Debian's
# openssh-server (the benchmark runs its own sshd on 127.0.0.1, with keys made for
# the run; the package's own service is not needed).
if [ ! -x /usr/sbin/sshd ]; then
    echo "== installing openssh-server (Debian), for the scp comparison" >&2
    sudo_if_needed apt-get update -qq >&2 || true
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >&2 \
        || echo "== openssh-server could not be installed: no scp figure" >&2
fi

cargo build --release --locked --bins -p ferry-cli -p ferry-bench >&2
exec target/release/ferry-bench "$@"
