//! Several `smppd run` instances on one PostgreSQL (`[store] url`), checked from the outside:
//! the submit protocol of each instance, and the SMPP wire at two simulated SMSCs.
//!
//! Each test starts its own throwaway PostgreSQL cluster (`support::pg`) and its own SMSCs.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::pg::Pg;
use support::{Client, Daemon, DaemonBuilder, Smscs};

/// The lease TTL of these tests (the smallest allowed, so a takeover is quick).
const TTL: Duration = Duration::from_secs(3);
/// Each SMSC's contractual rate in these tests.
const TPS: u64 = 150;

fn instance(pg: &Pg, smscs: &Smscs, name: &str) -> DaemonBuilder {
    instance_ttl(pg, smscs, name, "3s")
}

fn instance_ttl(pg: &Pg, smscs: &Smscs, name: &str, ttl: &str) -> DaemonBuilder {
    let body = format!(
        "[cluster]\ninstance = \"{name}\"\nlease_ttl = \"{ttl}\"\n\n{}",
        smscs.config(&format!("tps = {TPS}\n"))
    );
    DaemonBuilder::new(body).store(&format!("url = \"{}\"", pg.url()))
}

async fn status(d: &Daemon) -> Value {
    let v = d.call(json!({"op":"status"})).await;
    assert_eq!(v["ok"], true, "{v}");
    v
}

/// The owner of each SMSC as `status` on `d` shows it.
async fn owners(d: &Daemon) -> Vec<(String, Option<String>)> {
    let v = status(d).await;
    v["cluster"]["owners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| {
            (
                o["smsc"].as_str().unwrap_or("?").to_owned(),
                o["owner"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Waits until both SMSCs are owned, one by each instance (the fair share of two SMSCs over two
/// instances), and both are bound; returns the owner of `op-a`.
async fn wait_spread(d: &Daemon) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = owners(d).await;
        let held: BTreeSet<&str> = o.iter().filter_map(|(_, w)| w.as_deref()).collect();
        if o.len() == 2 && o.iter().all(|(_, w)| w.is_some()) && held.len() == 2 {
            return o
                .iter()
                .find(|(s, _)| s == "op-a")
                .and_then(|(_, w)| w.clone())
                .unwrap_or_default();
        }
        assert!(Instant::now() < deadline, "leases not spread: {o:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `d` owns and has bound every SMSC (status of `d`).
async fn wait_owns_all(d: &Daemon, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = status(d).await;
        let o = owners(d).await;
        let all_mine = o.len() == 2 && o.iter().all(|(_, w)| w.as_deref() == Some(name));
        let bound = v["smscs"].as_array().is_some_and(|l| {
            l.len() == 2 && l.iter().all(|s| support::daemon::all_bound(&s["binds"]))
        });
        if all_mine && bound {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} does not own and bind everything: {o:?} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits `n` messages through `client`, half to each route; returns the accepted ids.
async fn submit(client: &mut Client, n: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let to = if i % 2 == 0 {
            "+46701234567"
        } else {
            "+15551234567"
        };
        let v = client.submit(to, &format!("{tag} {i}")).await;
        if v["ok"] == true {
            ids.push(v["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    ids
}

/// Most submits an SMSC received in any whole second (from its 100 ms pacing buckets).
fn peak_per_second(s: &support::Smsc) -> u64 {
    let counts = s.sim.control().pacing().counts;
    counts
        .windows(10)
        .map(|w| w.iter().map(|c| u64::from(*c)).sum::<u64>())
        .max()
        .unwrap_or_else(|| counts.iter().map(|c| u64::from(*c)).sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owners_smscs_move_to_the_survivor_and_nothing_is_lost() {
    let pg = Pg::start();
    let smscs = Smscs::start().await;
    let mut d1 = instance(&pg, &smscs, "i1").metrics().start().await;
    let mut d2 = instance(&pg, &smscs, "i2").metrics().start().await;
    let owner_a = wait_spread(&d1).await;
    assert_eq!(
        owners(&d2).await.len(),
        2,
        "both instances see the same lease table"
    );

    // Traffic through both instances, then the owner of op-a dies mid-run.
    let mut c1 = d1.client().await;
    let mut c2 = d2.client().await;
    let mut ids = submit(&mut c1, 150, "first").await;
    ids.extend(submit(&mut c2, 150, "second").await);
    let (victim, survivor) = if owner_a == "i1" {
        (&mut d1, &mut d2)
    } else {
        (&mut d2, &mut d1)
    };
    victim.kill();
    let killed = Instant::now();
    let mut c = survivor.client().await;
    ids.extend(submit(&mut c, 300, "after").await);

    // The survivor takes op-a over within the lease TTL (plus a bind).
    let other = if owner_a == "i1" { "i2" } else { "i1" };
    wait_owns_all(survivor, other).await;
    assert_eq!(
        survivor
            .metric("smppd_cluster_takeovers_total", &["smsc=\"op-a\""])
            .await,
        1.0,
        "the survivor counts the takeover of op-a"
    );
    let rebound = killed.elapsed();
    assert!(
        rebound <= TTL + Duration::from_secs(3),
        "re-bound after {rebound:?}"
    );

    // Every accepted message reaches a final state, whichever instance accepted it.
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        let m = c.final_state(id).await;
        *states
            .entry(m["state"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    assert_eq!(ids.len(), 600, "every submit was accepted");
    for (state, n) in &states {
        assert!(
            ["delivered", "undeliverable"].contains(&state.as_str()),
            "{n} messages ended {state}: {states:?}"
        );
    }
    // Never two instances bound to one account; never over the contractual rate.
    for s in smscs.all() {
        let stats = s.sim.control().stats();
        let sessions = u64::from(s.binds) * if s.name == "op-b" { 2 } else { 1 };
        assert!(
            stats.max_bound <= sessions,
            "{}: {} sessions bound at once, configured {sessions}",
            s.name,
            stats.max_bound
        );
        let peak = peak_per_second(s);
        assert!(
            peak <= TPS + TPS / 10,
            "{}: {peak} submits in one second",
            s.name
        );
    }
    survivor.stop();
}

/// What the SMSCs received of the load's tokens: token → how many times its first part came.
fn seen_at_smscs(smscs: &Smscs) -> std::collections::HashMap<u64, u64> {
    let mut seen = std::collections::HashMap::new();
    for s in smscs.all() {
        for r in s.sim.control().submits() {
            if r.status != Some(smppd::pdu::CommandStatus(0)) {
                continue;
            }
            if support::part_of(r.esm_class, &r.payload) == 1
                && let Some(t) = support::token_in(&r.payload)
            {
                *seen.entry(t).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// Nothing the clients were told `ok` is lost: each such message reaches a final state (through
/// its receipt) and reached an SMSC; at most `dup_bound` messages were sent twice.
async fn assert_nothing_lost(told: &support::Told, smscs: &Smscs, at: &Daemon, dup_bound: u64) {
    assert!(told.errors.is_empty(), "error answers: {:?}", told.errors);
    assert!(told.id_mismatches.is_empty(), "{:?}", told.id_mismatches);
    let mut c = at.client().await;
    for id in told.accepted.values() {
        let m = c.final_state(id).await;
        let state = m["state"].as_str().unwrap_or("?");
        assert!(
            ["delivered", "undeliverable"].contains(&state),
            "message {id} ended {state}: {m}"
        );
    }
    let seen = seen_at_smscs(smscs);
    let lost: Vec<u64> = told
        .accepted
        .keys()
        .filter(|t| !seen.contains_key(t))
        .copied()
        .collect();
    assert!(lost.is_empty(), "accepted but never sent: {lost:?}");
    let twice = seen.values().filter(|n| **n > 1).count() as u64;
    assert!(
        twice <= dup_bound,
        "{twice} messages sent twice (bound {dup_bound})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_unavailable_and_everything_resumes_by_itself() {
    let pg = Pg::start();
    let smscs = Smscs::start().await;
    let d = instance(&pg, &smscs, "i1").metrics().start().await;
    d.wait_bound().await;
    assert_eq!(d.metric("smppd_cluster_leases_held", &[]).await, 2.0);
    let mut c = d.client().await;
    let mut ids = submit(&mut c, 50, "before").await;
    assert_eq!(ids.len(), 50);

    pg.stop();
    let stopped = Instant::now();
    let v = c.submit("+46701234567", "while down").await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
    let status = d.call(json!({"op":"status"})).await;
    assert_eq!(status["ok"], true, "status still answers: {status}");
    // The leases cannot be renewed: the instance unbinds every SMSC itself before a lease could
    // expire (another instance could take it then), i.e. within the TTL of the last renewal.
    loop {
        let bound: u64 = smscs
            .all()
            .iter()
            .map(|s| s.sim.control().stats().bound_now)
            .sum();
        if bound == 0 {
            break;
        }
        assert!(
            stopped.elapsed() < TTL,
            "still {bound} sessions bound {:?} into the outage",
            stopped.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    pg.start_server();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = c.submit("+46701234567", "after the outage").await;
        if v["ok"] == true {
            ids.push(v["id"].as_str().unwrap_or_default().to_owned());
            break;
        }
        assert_eq!(v["error"]["code"], "unavailable", "{v}");
        assert!(
            Instant::now() < deadline,
            "the store did not come back: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ids.extend(submit(&mut c, 50, "after").await);
    assert_eq!(ids.len(), 101);
    assert!(
        d.metric("smppd_store_db_errors_total", &["reason=\"unavailable\""])
            .await
            > 0.0,
        "the outage shows in the database error count"
    );
    assert!(d.metric("smppd_cluster_errors_total", &[]).await > 0.0);
    d.wait_bound().await;
    for id in &ids {
        let m = c.final_state(id).await;
        let state = m["state"].as_str().unwrap_or("?");
        assert!(["delivered", "undeliverable"].contains(&state), "{id}: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_loses_nothing_and_moves_binds_without_waiting_for_the_ttl() {
    let pg = Pg::start();
    let smscs = Smscs::start().await;
    // A long TTL, so that a lease handed back at SIGTERM is told apart from one that expired.
    let mut d1 = instance_ttl(&pg, &smscs, "i1", "10s").start().await;
    let mut d2 = instance_ttl(&pg, &smscs, "i2", "10s").start().await;
    wait_spread(&d1).await;
    let load = support::Load::start(2, 8, support::Pace::Rate(100), 3000);
    load.target(Some(&d1.submit));
    for round in 0..2 {
        let (stopping, other) = if round == 0 {
            (&mut d1, &mut d2)
        } else {
            (&mut d2, &mut d1)
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        load.target(Some(&other.submit));
        let stopped = Instant::now();
        stopping.sigterm();
        stopping.wait_stopped(Duration::from_secs(20));
        // The survivor binds the stopped instance's SMSCs well before a TTL passes.
        let name = if round == 0 { "i2" } else { "i1" };
        wait_owns_all(other, name).await;
        let moved = stopped.elapsed();
        assert!(
            moved < Duration::from_secs(10),
            "binds moved after {moved:?}"
        );
        stopping.spawn().await;
        wait_spread(other).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let told = load.finish(Duration::from_secs(60)).await;
    assert!(told.accepted.len() > 300, "{}", told.accepted.len());
    assert_nothing_lost(&told, &smscs, &d1, smscs.in_flight_bound()).await;
    for s in smscs.all() {
        let sessions = u64::from(s.binds) * if s.name == "op-b" { 2 } else { 1 };
        assert!(
            s.sim.control().stats().max_bound <= sessions,
            "{} double-bound",
            s.name
        );
    }
    d1.stop();
    d2.stop();
}

/// Reads events from a subscription until `want` `dlr` events with a final state have come.
async fn final_dlrs(sub: &mut Client, want: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let mut finals = 0;
    while finals < want {
        let ev = sub.line().await;
        if ev["event"] == "dlr"
            && !["submitted", "queued"].contains(&ev["state"].as_str().unwrap_or(""))
        {
            finals += 1;
        }
        got.push(ev);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_any_instance_sees_every_event_of_the_cluster_and_resumes_without_a_gap() {
    let pg = Pg::start();
    let smscs = Smscs::start().await;
    let mut d1 = instance(&pg, &smscs, "i1").start().await;
    let mut d2 = instance(&pg, &smscs, "i2").start().await;
    wait_spread(&d1).await;
    let mut sub = d1.client().await;
    assert_eq!(
        sub.call(json!({"op":"subscribe","after":0})).await["ok"],
        true
    );
    // Messages accepted by each instance, sent through both SMSCs (one owned by each).
    let mut c1 = d1.client().await;
    let mut c2 = d2.client().await;
    let mut ids: BTreeSet<String> = submit(&mut c2, 20, "via i2").await.into_iter().collect();
    ids.extend(submit(&mut c1, 20, "via i1").await);
    assert_eq!(ids.len(), 40);
    let events = final_dlrs(&mut sub, 40).await;
    let seen: BTreeSet<String> = events
        .iter()
        .filter(|e| e["event"] == "dlr")
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        seen, ids,
        "the subscriber on i1 saw every message's receipts"
    );
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    drop(sub);

    // An MO at either SMSC reaches a subscriber on the other instance; resuming from a seq in
    // the middle gives exactly what followed it.
    let middle = seqs[seqs.len() / 2];
    smscs.b.sim.control().inject_mo(smppd::sim::MoMessage {
        system_id: None,
        from: "46709999999".into(),
        to: "72000".into(),
        text: "Hello from the other side".into(),
        concatenated: false,
    });
    let mut resumed = d2.client().await;
    assert_eq!(
        resumed.call(json!({"op":"subscribe","after":middle})).await["ok"],
        true
    );
    let want: Vec<i64> = seqs.iter().copied().filter(|s| *s > middle).collect();
    let mut got = Vec::new();
    let mut mo = false;
    while got.len() < want.len() || !mo {
        let ev = resumed.line().await;
        mo |= ev["event"] == "mo";
        got.push(ev["seq"].as_i64().unwrap_or(0));
    }
    assert_eq!(
        &got[..want.len()],
        &want[..],
        "resumed after {middle} without a gap"
    );
    d1.stop();
    d2.stop();
}

/// Submits per 100 ms bucket at both SMSCs together (their buckets aligned on the simulators'
/// start, a few ms apart), and the most any ten consecutive buckets (one second) carried.
fn combined_peak_per_second(smscs: &Smscs) -> u64 {
    let mut total: std::collections::BTreeMap<u64, u64> = std::collections::BTreeMap::new();
    for s in smscs.all() {
        let p = s.sim.control().pacing();
        for (i, c) in p.counts.iter().enumerate() {
            *total
                .entry(p.first_bucket_ms / p.bucket_ms + i as u64)
                .or_default() += u64::from(*c);
        }
    }
    let (Some(first), Some(last)) = (total.keys().next().copied(), total.keys().last().copied())
    else {
        return 0;
    };
    let series: Vec<u64> = (first..=last)
        .map(|b| total.get(&b).copied().unwrap_or(0))
        .collect();
    series
        .windows(10.min(series.len()))
        .map(|w| w.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_tps_holds_across_the_cluster_when_two_instances_send_its_parts() {
    const ROUTE_TPS: u64 = 40;
    let pg = Pg::start();
    let smscs = Smscs::start().await;
    // op-a answers every part with an UNDELIV receipt: r1 resends each through op-b, owned by
    // the other instance, so both instances send route r1 at once (each at up to the route's
    // rate without a shared budget: twice the rate together).
    smscs.a.sim.control().update_receipts(|r| {
        r.mix = smppd::sim::StatusMix {
            delivered: 0,
            undeliverable: 1,
            expired: 0,
            rejected: 0,
        };
    });
    let with_route_tps = |name: &str| {
        let body = format!(
            "[cluster]\ninstance = \"{name}\"\nlease_ttl = \"3s\"\n\n{}",
            smscs.config("").replace(
                "name = \"r1\"\n",
                &format!("name = \"r1\"\ntps = {ROUTE_TPS}\nreroute_undelivered = true\n")
            )
        );
        DaemonBuilder::new(body).store(&format!("url = \"{}\"", pg.url()))
    };
    let mut d1 = with_route_tps("i1").start().await;
    let mut d2 = with_route_tps("i2").start().await;
    wait_spread(&d1).await;
    for s in smscs.all() {
        s.sim.control().reset_pacing();
    }
    let mut c1 = d1.client().await;
    let mut c2 = d2.client().await;
    let mut ids = Vec::new();
    for i in 0..150 {
        let c = if i % 2 == 0 { &mut c1 } else { &mut c2 };
        let v = c.submit(&format!("+467012{i:05}"), "route rate").await;
        assert_eq!(v["ok"], true, "{v}");
        ids.push(v["id"].as_str().unwrap_or_default().to_owned());
    }
    for id in &ids {
        c1.final_state(id).await;
    }
    let through_b = smscs.b.sim.control().stats().submits;
    assert!(
        through_b > 100,
        "op-b (the other instance) sent r1 parts too: {through_b}"
    );
    // A tenth over the rate is one slot's rounding (see cluster/budget.rs); one slot more is the
    // two simulators' 100 ms buckets, aligned on their own start, not on each other.
    let peak = combined_peak_per_second(&smscs);
    assert!(
        peak <= ROUTE_TPS + 2 * ROUTE_TPS / 10,
        "route r1 carried {peak} submits in one second over both SMSCs (tps {ROUTE_TPS})"
    );
    d1.stop();
    d2.stop();
}

/// A configuration file for the CLI commands that read `[store]` (migrate, reports).
fn cli_config(pg: &Pg, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("smppd.toml");
    let text = format!(
        "[listen]\nsubmit = \"127.0.0.1:0\"\n[store]\nurl = \"{}\"\n[[smsc]]\nname = \"op\"\naddress = \"127.0.0.1:9\"\nsystem_id = \"x\"\npassword = \"x\"\n[[route]]\nname = \"r\"\nsmsc = [\"op\"]\n",
        pg.url()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_and_reports_work_on_the_shared_database_and_a_newer_schema_is_refused_with_the_reason()
 {
    let pg = Pg::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = cli_config(&pg, dir.path());
    let conf_s = conf.display().to_string();
    let out = support::smppd(&["store", "migrate", "--config", &conf_s]);
    assert!(out.status.success(), "{out:?}");
    let all = smppd::store::postgres::current_version();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{all} migration(s) applied")),
        "{out:?}"
    );
    let again = support::smppd(&["store", "migrate", "--config", &conf_s]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 migration(s) applied"),
        "{again:?}"
    );

    // Messages accepted by two instances are all in `reports` read from the shared database.
    let smscs = Smscs::start().await;
    let mut d1 = instance(&pg, &smscs, "i1").start().await;
    let mut d2 = instance(&pg, &smscs, "i2").start().await;
    wait_spread(&d1).await;
    let mut ids = submit(&mut d1.client().await, 3, "one").await;
    ids.extend(submit(&mut d2.client().await, 3, "two").await);
    let mut c = d1.client().await;
    for id in &ids {
        c.final_state(id).await;
    }
    let out = support::smppd(&["reports", "--config", &conf_s, "--json", "--limit", "50"]);
    assert!(out.status.success(), "{out:?}");
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed, ids.iter().cloned().collect::<BTreeSet<_>>());
    d1.stop();
    d2.stop();

    // A newer schema whose migrations keep older binaries working: this build still runs.
    let ours = smppd::store::postgres::current_version();
    let (kind, breaking) = (ours + 1, ours + 2);
    pg.psql(&format!(
        "INSERT INTO schema_version (version, older_ok) VALUES ({kind}, true)"
    ));
    let ok = support::smppd(&["store", "migrate", "--config", &conf_s]);
    assert!(ok.status.success(), "{ok:?}");
    // One that does not: refused, naming the migration and what to do.
    pg.psql(&format!(
        "INSERT INTO schema_version (version, older_ok) VALUES ({breaking}, false)"
    ));
    let refused = support::smppd(&["store", "migrate", "--config", &conf_s]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        err.contains(&format!(
            "schema version {breaking}, newer than this smppd's {ours}"
        )) && err.contains(&format!(
            "migration(s) {breaking} do not keep older binaries working"
        )),
        "{err}"
    );
    // And `smppd run` says the same and exits, instead of running on a schema it cannot use.
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(["run", "--config", &conf_s])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn smppd run");
    let deadline = Instant::now() + Duration::from_secs(20);
    while run.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!("smppd run kept running on a schema it cannot use");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run.wait_with_output().expect("output");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "migration(s) {breaking} do not keep older binaries working"
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_every_instance_and_owner_and_warns_when_configurations_differ() {
    let pg = Pg::start();
    let smscs = Smscs::start().await;
    let mut d1 = instance(&pg, &smscs, "i1").start().await;
    // The same cluster, but i2 runs another configuration (a different rate for its SMSCs).
    let body = format!(
        "[cluster]\ninstance = \"i2\"\nlease_ttl = \"3s\"\n\n{}",
        smscs.config("tps = 99\n")
    );
    let mut d2 = DaemonBuilder::new(body)
        .store(&format!("url = \"{}\"", pg.url()))
        .start()
        .await;
    wait_spread(&d1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let v = status(&d1).await;
        if v["cluster"]["instances"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
        {
            break v;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(v["cluster"]["config_mismatch"], true, "{v}");
    let out = support::smppd(&["status", "--addr", &d1.submit]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("WARNING: live instances run different configurations"),
        "{text}"
    );
    for needle in ["i1", "i2", "op-a", "op-b", "(this)", &d2.submit] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    // Same configuration once i2 runs i1's: no warning.
    d2.stop();
    let mut d3 = instance(&pg, &smscs, "i2").start().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = status(&d1).await;
        if v["cluster"]["config_mismatch"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d1.stop();
    d3.stop();
}
