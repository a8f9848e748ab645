#!/usr/bin/env bash
# Issue #18: smppd on PostgreSQL, one instance and two, beside SQLite, in the same run.
# End-to-end messages per second with receipts (all durable), and CPU per message for smppd and
# for PostgreSQL. Each case: a fresh store, two `smppd sim` SMSCs (receipts at once), one route
# per SMSC, `smppd bench` spreading its connections over the instances.
# Usage: bench/cluster.sh [SMPPD_BINARY] [MESSAGES]   (default target/release/smppd, 50000)
# Needs Debian's postgresql package (initdb runs as the `postgres` user when run as root).
set -euo pipefail
BIN=$(realpath "${1:-target/release/smppd}"); N=${2:-50000}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d); chmod 755 "$dir"
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    [ -d "$dir/pg" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pgport=$(port)
start_pg() {
    rm -rf "$dir/pg"; mkdir -p "$dir/pg"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
    as_pg "$PGBIN/initdb" -D "$dir/pg" -U smppd --auth=trust -E UTF8 --locale=C >/dev/null
    # Durable as in production (fsync and synchronous_commit on, the defaults).
    as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/pg/log" -w -o "-p $pgport -k $dir/pg -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_connections=100 ${PGSTAT:+-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all}" start >/dev/null
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p $pgport -U smppd smppd
    if [ -n "${PGSTAT:-}" ]; then
        as_pg "$PGBIN/psql" -h 127.0.0.1 -p $pgport -U smppd -d smppd -qc "CREATE EXTENSION pg_stat_statements"
    fi
}
# With PGSTAT=1: the statements that took the most time in the case just run.
pg_top() {
    [ -n "${PGSTAT:-}" ] || return 0
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p $pgport -U smppd -d smppd -c "SELECT calls, round(total_exec_time::numeric, 0) AS ms, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15"
}
stop_pg() { as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null; }
# CPU seconds (user + system, from /proc, in clock ticks of 1/100 s) of every process of the
# PostgreSQL server started here: the postmaster and its children (backends, walwriter, …).
pg_cpu() {
    local master; master=$(head -1 "$dir/pg/postmaster.pid" 2>/dev/null || echo 0)
    { echo "$master"; pgrep -P "$master" 2>/dev/null || true; } | while read -r p; do
        if [ -r /proc/$p/stat ]; then awk '{sub(/.*\) /, ""); print $12 + $13}' /proc/$p/stat; fi
    done | awk '{s+=$1} END {printf "%.2f\n", s/100}'
}

sa=$(port); sb=$(port)
"$BIN" sim --listen 127.0.0.1:$sa 2>/dev/null &
"$BIN" sim --listen 127.0.0.1:$sb 2>/dev/null &

config() { # $1 name, $2 store section
    cat <<CONF
[listen]
submit = "127.0.0.1:0"
[store]
$2
[cluster]
instance = "$1"
[log]
level = "warn"
[[smsc]]
name = "op-a"
address = "127.0.0.1:$sa"
system_id = "smppd"
password = "secret"
window = 100
[[smsc]]
name = "op-b"
address = "127.0.0.1:$sb"
system_id = "smppd"
password = "secret"
window = 100
[[route]]
name = "se"
prefix = ["+4670"]
smsc = ["op-a", "op-b"]
[[route]]
name = "other"
smsc = ["op-b", "op-a"]
CONF
}

start_daemon() { # $1 name, $2 store section; prints "pid addr"
    config "$1" "$2" > "$dir/$1.toml"
    "$BIN" run -c "$dir/$1.toml" > "$dir/$1.out" 2>"$dir/$1.log" &
    local pid=$!
    for _ in $(seq 100); do grep -q accepting "$dir/$1.out" 2>/dev/null && break; sleep 0.1; done
    echo "$pid $(awk '{print $NF}' "$dir/$1.out")"
}

run_case() { # $1 label, $2 instances (1|2), $3 store: sqlite|pg
    local store pids=() addrs=()
    for i in $(seq "$2"); do
        if [ "$3" = sqlite ]; then store="path = \"$dir/s$i.db\""; else store="url = \"postgres://smppd@127.0.0.1:$pgport/smppd\""; fi
        read -r pid addr < <(start_daemon "i$i" "$store")
        pids+=("$pid"); addrs+=("$addr")
    done
    sleep 3 # binds up and leases spread
    local also=() pidargs=()
    for a in "${addrs[@]:1}"; do also+=(--also "$a"); done
    for p in "${pids[@]}"; do pidargs+=(--pid "$p"); done
    local pg0; pg0=$(pg_cpu)
    # Destinations alternate: +4670… (route se → op-a) and +35840… (route other → op-b).
    "$BIN" bench --addr "${addrs[0]}" "${also[@]}" "${pidargs[@]}" -n "$N" -C 8 -p 64 \
        --mix short=1 --prefix "+4670,+35840" --settle 300 --json > "$dir/$1.json"
    local pg1; pg1=$(pg_cpu)
    kill -TERM "${pids[@]}"
    # The daemons are not this shell's children (started in a process substitution).
    for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
    python3 - "$dir/$1.json" "$1" "$(echo "$pg1 - $pg0" | bc)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); label = sys.argv[2]; pg = float(sys.argv[3])
acc = max(r["accepted"], 1)
print(f"{label:<22} {r['accepted']:>8} {r['end_to_end_rate']:>10.0f} {r['accept_ms']['p50']:>8.2f} "
      f"{r['daemon_cpu_us_per_message'] or 0:>10.1f} {pg * 1e6 / acc:>10.1f} {r['daemon_peak_rss_mib'] or 0:>8.1f}  {r['final_states']}")
PY
}

printf "%-22s %8s %10s %8s %10s %10s %8s  %s\n" case accepted e2e_msg/s acc_p50 smppd_us pg_us rss_mib final
run_case "sqlite, 1 instance" 1 sqlite
start_pg; run_case "postgres, 1 instance" 1 pg; pg_top; stop_pg
start_pg; run_case "postgres, 2 instances" 2 pg; pg_top; stop_pg
