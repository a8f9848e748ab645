#!/usr/bin/env bash
# Issue #19 item 7: `smppd reports --by` on a million messages (SQLite).
# Builds a 1,000,000-message store (schema made by the real binary with `smppd store migrate`,
# then filled with sqlite3 from Python: 20 campaigns of unequal size and 10 % of messages without
# a campaign tag, 5 routes, 3 SMSCs, 10 % two-part messages; outcomes ~90 % delivered with
# lognormal delays of seconds to minutes, then undeliverable, expired, no_receipt, rejected,
# failed, unconfirmed, and the last hour's share still pending; accept times over the last 28
# days), then times `reports --by tag:campaign --since 30d`, `--by route` and `--by smsc`:
# one warm-up run each, then 5 timed runs, median printed.
# Usage: bench/reports.sh [SMPPD_BINARY] [MESSAGES] [OUT_FILE]
#        (default target/release/smppd, 1000000, stdout only)
# PG=1 also copies the store into a throwaway PostgreSQL cluster (Debian's postgresql package;
# initdb runs as the `postgres` user when run as root) and times the same reports there
# (PG_BIN=binary runs those with another build; PG_BEFORE=binary also times them with that
# build, labelled postgres-before, on the same cluster: a before/after of one change).
# REPORTS_DB=path keeps the store there and reuses it when it exists (to time again without
# building it again; the accept times then age by the time since it was built).
set -euo pipefail
BIN=$(realpath "${1:-target/release/smppd}"); N=${2:-1000000}; OUT=${3:-/dev/null}
dir=$(mktemp -d)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
    [ -d "$dir/pg" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -m immediate stop >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT
db=${REPORTS_DB:-$dir/smppd.db}

cat >"$dir/smppd.toml" <<CONF
[listen]
submit = "127.0.0.1:0"
[store]
path = "$db"
[[smsc]]
name = "op"
address = "127.0.0.1:9"
system_id = "x"
password = "x"
[[route]]
name = "r"
smsc = ["op"]
CONF
if [ ! -e "$db" ]; then
"$BIN" store migrate --config "$dir/smppd.toml" >/dev/null

python3 - "$db" "$N" <<'PY'
import json, math, random, sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(19)
now = int(time.time() * 1000)
start = now - 28 * 86_400_000
campaigns = [f"spring-{i:02d}" for i in range(20)]
weights = [1.0 / (i + 1) ** 0.8 for i in range(20)]          # a few large, many small
routes = {"nordics": ["op-a", "op-b"], "dach": ["op-b", "op-c"], "uk": ["op-c", "op-a"],
          "baltics": ["op-a", "op-c"], "otp": ["op-b", "op-a"]}
route_names = list(routes)
route_w = [30, 25, 20, 10, 15]
# (message state, part state, share): codes of store/types.rs.
outcomes = [(2, 4, 0.900), (3, 5, 0.040), (4, 6, 0.015), (7, 9, 0.020), (5, 7, 0.008),
            (6, 8, 0.005), (8, 10, 0.004), (1, 3, 0.004)]   # 1/3: sent without a receipt asked
text = "Spring sale: 20% off everything this weekend only. Reply STOP to opt out."
seg = text.encode()
c = sqlite3.connect(db)
c.execute("PRAGMA synchronous = OFF")
msgs, parts = [], []
def flush():
    c.executemany("INSERT INTO message (id, dest, sender, route, class, priority, valid_until,"
                  " encoding, split, options, dlr, tags, text, parts, state, accepted_at,"
                  " submitted_at, done_at) VALUES (?,?,?,?,1,0,NULL,'gsm7','udh8','{}',?,?,?,?,?,?,?,?)",
                  msgs)
    c.executemany("INSERT INTO part (message_id, n, route, priority, parts, dlr, state,"
                  " data_coding, esm_class, segment, smsc, smsc_id, attempts, acked_at, done_at)"
                  " VALUES (?,?,?,0,?,?,?,0,0,?,?,?,1,?,?)", parts)
    msgs.clear(); parts.clear()
step = (now - start) / n
for i in range(n):
    at = start + int(i * step)
    mid = (at << 20) | (i & 0xFFFFF)
    route = rng.choices(route_names, route_w)[0]
    tags = {"kind": "promo"}
    if rng.random() < 0.9:
        tags["campaign"] = rng.choices(campaigns, weights)[0]
    nparts = 2 if rng.random() < 0.1 else 1
    smsc = routes[route][0] if rng.random() < 0.85 else routes[route][1]
    if now - at < 3_600_000 and rng.random() < 0.3:
        mstate, pstate, done, acked, smsc_p = 0, 0, None, None, None   # still queued
    else:
        r, acc = rng.random(), 0.0
        for mstate, pstate, share in outcomes:
            acc += share
            if r < acc:
                break
        acked = at + rng.randint(50, 900)
        delay = int(min(math.exp(rng.gauss(math.log(8_000), 1.0)), 3_600_000))
        done = at + delay if mstate != 7 else at + 48 * 3_600_000
        smsc_p = smsc
        if mstate == 1 and rng.random() < 0.5:
            done = None                                          # waiting for its receipt
            mstate, pstate = 0, 3
        if mstate == 1:
            done = acked
    dlr = 0 if (mstate == 1 and done is not None) else 1
    msgs.append((mid, f"+4670{rng.randint(1000000, 9999999)}", "ACME", route, dlr,
                 json.dumps(tags, separators=(",", ":"), sort_keys=True), text, nparts,
                 mstate, at, acked, done))
    for k in range(1, nparts + 1):
        parts.append((mid, k, route, nparts, dlr, pstate, seg, smsc_p,
                      None if smsc_p is None else f"{mid:x}{k}", acked, done))
    if len(msgs) >= 50_000:
        flush()
flush()
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
PY
fi

{
    echo "# bench/reports.sh: $N messages, $(basename "$BIN") $("$BIN" --version 2>/dev/null || true)"
    echo "# store: $(du -h "$db" | cut -f1); machine: $(nproc) cores, $(uname -r); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$OUT"
# Wall time and CPU time (user + system) of each run, in ms. The CPU time is what the report
# costs; the wall time also holds the waits for a core when other work shares the machine.
# (On PostgreSQL the work is the server's: only the wall time says something there.)
TIMEFORMAT='%R %U %S'
median() { sort -n | sed -n 3p; }
# time_reports LABEL STORE_ARGS...: each report once (its table printed), then 5 timed runs.
time_reports() {
    local label=$1; shift
    for by in "tag:campaign --since 30d" "route" "smsc"; do
        # shellcheck disable=SC2086
        "$BIN" reports "$@" --by $by | tee -a "$OUT"
        walls=(); cpus=()
        for _ in 1 2 3 4 5; do
            # shellcheck disable=SC2086
            read -r real user sys < <({ time "$BIN" reports "$@" --by $by --json >/dev/null; } 2>&1)
            walls+=("$(awk -v r="$real" 'BEGIN { printf "%d", r * 1000 }')")
            cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", (u + s) * 1000 }')")
        done
        echo "$label reports --by $by: wall ${walls[*]} ms, median $(printf '%s\n' "${walls[@]}" | median) ms;" \
            "CPU ${cpus[*]} ms, median $(printf '%s\n' "${cpus[@]}" | median) ms" | tee -a "$OUT"
    done
}
time_reports sqlite --db "$db"
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
[ -n "${PG:-}" ] || exit 0

# The same messages in PostgreSQL: schema by the binary, rows copied from the SQLite store.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir/pg"; chmod 755 "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir/pg"
as_pg "$PGBIN/initdb" -D "$dir/pg" -U smppd --auth=trust -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/pg/log" -w -o "-p $port -k $dir/pg -c listen_addresses=127.0.0.1 -c shared_buffers=256MB" start >/dev/null
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U smppd smppd
sed "s|^path = .*|url = \"postgres://smppd@127.0.0.1:$port/smppd\"|" "$dir/smppd.toml" >"$dir/pg.toml"
"$BIN" store migrate --config "$dir/pg.toml" >/dev/null
psql() { command psql -h 127.0.0.1 -p "$port" -U smppd -d smppd -q "$@"; }
sqlite3 -csv "$db" "SELECT id, dest, sender, route, class, priority, encoding, split, options,
    CASE dlr WHEN 1 THEN 't' ELSE 'f' END, tags, text, parts, state, accepted_at, submitted_at,
    done_at FROM message" | psql -c "\copy message (id, dest, sender, route, class, priority,
    encoding, split, options, dlr, tags, text, parts, state, accepted_at, submitted_at, done_at)
    FROM STDIN WITH (FORMAT csv)"
sqlite3 -csv "$db" "SELECT message_id, n, route, priority, parts,
    CASE dlr WHEN 1 THEN 't' ELSE 'f' END, state, data_coding, esm_class, '\x' || hex(segment),
    smsc, smsc_id, attempts, acked_at, done_at FROM part" | psql -c "\copy part (message_id, n,
    route, priority, parts, dlr, state, data_coding, esm_class, segment, smsc, smsc_id, attempts,
    acked_at, done_at) FROM STDIN WITH (FORMAT csv)"
psql -c "VACUUM ANALYZE message" -c "VACUUM ANALYZE part"
echo "# PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'); load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
BIN=$(realpath "${PG_BIN:-$BIN}")
echo "# PostgreSQL runs with $BIN" | tee -a "$OUT"
time_reports postgres --config "$dir/pg.toml"
if [ -n "${PG_BEFORE:-}" ]; then
    BIN=$(realpath "$PG_BEFORE")
    echo "# PostgreSQL runs with $BIN (before); load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
    time_reports postgres-before --config "$dir/pg.toml"
fi
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
