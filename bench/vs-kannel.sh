#!/usr/bin/env bash
# smppd against Kannel on the same SMSC simulator, A B A B (issue #8, item 2).
#
#   bench/vs-kannel.sh                      # 3 rounds of 50,000 messages each (about 5 minutes)
#   COUNT=20000 ROUNDS=5 bench/vs-kannel.sh
#   bench/vs-kannel.sh --window 200 --kannel-connections 256   # any option of tools/src/bin/kannel-load.rs
#   bench/vs-kannel.sh --rounds 0 --half-rate-secs 0           # only the paced runs (500/s and 2,000/s)
#   bench/vs-kannel.sh --receipt-delay 1s..30s                 # receipts 1–30 s late (#20)
#   bench/vs-kannel.sh --help
#
# Installs Debian's `kannel` package when bearerbox is missing (root or sudo), builds smppd and the
# load driver in release, then runs tools/src/bin/kannel-load.rs, which starts `smppd sim`, runs each
# gateway in turn against it, prints per-round rows and the medians with the smppd/Kannel ratios,
# then paced runs of both at 500/s and 2,000/s with each one's CPU per message and peak RSS,
# and writes bench/results/vs-kannel.json and .csv. Every Kannel setting and why it is Kannel's
# best is documented in kannel_conf() of tools/src/bin/kannel-load.rs and in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/sbin/bearerbox ] || [ ! -x /usr/sbin/smsbox ]; then
    echo "vs-kannel: installing Debian's kannel package" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q kannel
fi
# Debian's package ships a kannel service; it stays disabled unless configured, and this run uses
# its own ports and configuration files, so a running service does not interfere.

args=()
[ -n "${COUNT:-}" ] && args+=(--count "$COUNT")
[ -n "${ROUNDS:-}" ] && args+=(--rounds "$ROUNDS")

cargo build --release --locked --bin smppd
exec cargo run --release --locked -p smppd-tools --bin kannel-load -- "${args[@]}" "$@"
