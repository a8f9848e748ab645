#!/usr/bin/env bash
# The reliability campaigns of issue #9, full size, in release: the crash campaign (SIGKILLs
# under load, tests/crash_campaign.rs) and the SMSC fault matrix (tests/fault_matrix.rs). Prints
# both summary tables and keeps them in $CARGO_TARGET_DIR/campaigns/summary.txt (target/ by
# default). Takes a few minutes; do not run it next to timing benchmarks.
#
# Knobs: SMPPD_CAMPAIGN_KILLS (default 24), SMPPD_CAMPAIGN_SEED (replay the kill choices),
# SMPPD_CAMPAIGN_MESSAGES (cap on messages, default 300000), SMPPD_FLAP_SECS (default 60).
#
# The real disk-full case mounts a 16 MiB tmpfs, so the fault matrix runs in a private mount
# namespace (`unshare -m`, or `unshare -rm` without root) with SMPPD_CAMPAIGN_MOUNT=1; where
# neither works, that case is skipped and says so.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target/campaigns/summary.txt"
mkdir -p "$(dirname "$out")"
: > "$out"
export SMPPD_CAMPAIGN_OUT="$out"

cargo build --release --tests --test crash_campaign --test fault_matrix
cargo test --release --test crash_campaign -- --ignored --exact full_crash_campaign --nocapture

matrix=(cargo test --release --test fault_matrix -- --ignored --exact full_fault_matrix --nocapture)
if unshare -m true 2>/dev/null; then
    SMPPD_CAMPAIGN_MOUNT=1 unshare -m "${matrix[@]}"
elif unshare -rm true 2>/dev/null; then
    SMPPD_CAMPAIGN_MOUNT=1 unshare -rm "${matrix[@]}"
else
    "${matrix[@]}"
fi

echo
echo "== summary ($out)"
cat "$out"
