#!/usr/bin/env bash
# usage: run.sh BIN TAG RATE COUNT [perfmode]   perfmode: stat|record|none
# RT_THREADS: see below.
# DNICE / HNICE: nice of the daemon / of the harness (simulator and load tool), default -10 both.
# The daemon's own accept latency histogram (smppd_api_submit_seconds) is saved to $D/submit-hist.txt.
set -u
DNICE=${DNICE:--10}; HNICE=${HNICE:--10}
MPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
BIN=$1; TAG=$2; RATE=$3; COUNT=$4; MODE=${5:-stat}; TPS=${TPS:-$RATE}
D=/tmp/perf-prof/$TAG; rm -rf $D; mkdir -p $D
nice -n $HNICE $BIN sim --listen 127.0.0.1:0 --control 127.0.0.1:0 --system-id bench --password bench --receipt-delay ${RDELAY:-0ms} > $D/sim.out 2>&1 &
SIMPID=$!
sleep 0.5
SIMADDR=$(grep -m1 "listening on" $D/sim.out | sed 's/listening on //')
CTL=$(grep -m1 "control on" $D/sim.out | sed 's/control on //')
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
RL=""; [ "$TPS" != 0 ] && RL=$'tps = '$TPS$'\nburst = 10'
cat > $D/smppd.toml <<EOT
[listen]
submit = "127.0.0.1:$PORT"
metrics = "127.0.0.1:$MPORT"
[store]
path = "$D/smppd.db"
sync = "normal"
[log]
level = "warn"
[[smsc]]
name = "sim"
address = "$SIMADDR"
system_id = "bench"
password = "bench"
bind = "transceiver"
binds = 1
window = 500
reconnect_min = "100ms"
reconnect_max = "2s"
response_timeout = "30s"
[[route]]
name = "all"
smsc = ["sim"]
$RL
EOT
nice -n $DNICE $BIN run --config $D/smppd.toml > $D/daemon.out 2>&1 &
DPID=$!
for i in $(seq 100); do grep -q "accepting submits" $D/daemon.out && break; sleep 0.1; done
sleep 1
# RT_THREADS: daemon threads (by name) given SCHED_FIFO priority 10 for the run (an experiment:
# does the tail go when the OS never makes them wait for a core?).
for name in ${RT_THREADS:-}; do
  for t in /proc/$DPID/task/*; do
    if [ "$(cat $t/comm)" = "$name" ]; then chrt -f -p 10 $(basename $t) && echo "rt: $name $(basename $t)" >> $D/rt.txt; fi
  done
done
case $MODE in
  stat) perf stat -e context-switches,task-clock,cpu-migrations -p $DPID -o $D/perfstat.txt & PP=$! ;;
  record) perf record -F 999 -g -p $DPID -o $D/perf.data > /dev/null 2>&1 & PP=$! ;;
  strace) strace -c -f -p $DPID -o $D/strace.txt & PP=$! ;;
  *) PP= ;;
esac
nice -n $HNICE $BIN bench --addr 127.0.0.1:$PORT -n $COUNT --rate $RATE --mix short=1,long=0,emoji=0 --pid $DPID --sim-control $CTL --settle 60 > $D/bench.txt 2>&1
[ -n "$PP" ] && kill -INT $PP && wait $PP
curl -s 127.0.0.1:$MPORT/metrics | grep -E "^(smppd_api_submit_seconds|smppd_store_commit_seconds|exp_)" > $D/submit-hist.txt
for t in /proc/$DPID/task/*; do echo "$(cat $t/comm) $(grep -E '^(voluntary|nonvoluntary)_ctxt' $t/status | awk '{print $2}' | tr '\n' ' ') $(awk '{print $14+$15}' $t/stat)"; done | sort | awk '{a[$1]+=$2; b[$1]+=$3; c[$1]+=$4; n[$1]++} END {for (k in a) printf "%-18s n=%d vol=%d invol=%d ticks=%d\n", k, n[k], a[k], b[k], c[k]}' > $D/threads.txt
kill $DPID; wait $DPID 2>/dev/null; kill $SIMPID; wait $SIMPID 2>/dev/null
grep -E "cpu|accept|deliver" $D/bench.txt | head -20; cat $D/threads.txt
[ "$MODE" = stat ] && cat $D/perfstat.txt | grep -E "context|task-clock|elapsed"
[ "$MODE" = strace ] && head -25 $D/strace.txt
