#!/usr/bin/env bash
# Issue #16 item 5: an SMSC that drops the connection every 700 submits, fails 10 % with ESME_RSYSERR and throttles 5 %:
# how long 3,000 messages take end to end with the given smppd binary.
# Usage: bench/smsc-drops.sh [SMPPD_BINARY] [MESSAGES]   (default target/release/smppd, 3000)
set -euo pipefail
BIN=${1:-target/release/smppd}; N=${2:-3000}
dir=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf $dir' EXIT
simport=$((20000 + RANDOM % 20000))
$BIN sim --listen 127.0.0.1:$simport --drop-after 700 --fail-fraction 0.1 --fail-status ESME_RSYSERR --throttle-every 20 2>/dev/null &
cat > $dir/c.toml <<CONF
[listen]
submit = "127.0.0.1:0"
[store]
path = "$dir/s.db"
[log]
level = "warn"
[[smsc]]
name = "op"
address = "127.0.0.1:$simport"
system_id = "smppd"
password = "secret"
window = 50
[[route]]
name = "default"
smsc = ["op"]
CONF
$BIN run -c $dir/c.toml > $dir/out 2>$dir/log &
for i in $(seq 50); do grep -q accepting $dir/out 2>/dev/null && break; sleep 0.1; done
addr=$(awk '{print $NF}' $dir/out)
sleep 1
start=$(date +%s.%N)
$BIN bench --addr $addr -n $N -C 2 -p 64 --mix short=1 --settle 600 --json > $dir/bench.json
end=$(date +%s.%N)
python3 -c "import json,sys; r=json.load(open('$dir/bench.json')); print('accepted', r['accepted'], 'final', r['final'], 'states', r['final_states'], 'e2e/s %.1f'%r['end_to_end_rate'])"
echo "wall $(python3 -c "print(round($end-$start,1))") s; bind downs: $(grep -c 'bind down' $dir/log)"
