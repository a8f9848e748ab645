#!/usr/bin/env bash
# smppd scaling figures end to end against `smppd sim` (issue #8, item 4).
#
#   bench/scaling.sh            # full run: 3 repetitions of 50,000 messages per point, a
#                               # 1,000,000-message backlog drain, pacing at 500 and 2000/s
#   bench/scaling.sh --quick    # 1 repetition of 10,000, a 100,000 backlog, pacing at 1000/s
#   bench/scaling.sh --skip drain,pacing --count 20000   # any option of tools/src/bin/scaling.rs
#   bench/scaling.sh --help
#
# Builds smppd and the tool in release, then runs tools/src/bin/scaling.rs, which writes
# bench/results/scaling.csv, scaling.json, drain.csv, pacing.csv and the plot scaling.png.
set -euo pipefail
cd "$(dirname "$0")/.."

# The plot's text needs a TTF font (plotters reads it at run time).
if [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    echo "scaling: installing fonts-dejavu-core for the plot's text" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -q
    $sudo apt-get install -y -q fonts-dejavu-core
fi

cargo build --release --locked --bin smppd
exec cargo run --release --locked -p smppd-tools --bin scaling -- "$@"
