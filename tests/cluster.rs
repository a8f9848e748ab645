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
    let body = format!(
        "[cluster]\ninstance = \"{name}\"\nlease_ttl = \"3s\"\n\n{}",
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

/// Submits `n` messages through `client`, half to each route; returns the accepted ids.
async fn submit(client: &mut Client, n: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let to = if i % 2 == 0 { "+46701234567" } else { "+15551234567" };
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
    let mut d1 = instance(&pg, &smscs, "i1").start().await;
    let mut d2 = instance(&pg, &smscs, "i2").start().await;
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
    let deadline = killed + TTL + Duration::from_secs(5);
    loop {
        let o = owners(survivor).await;
        if o.iter().all(|(_, w)| w.is_some() && *w.as_deref().unwrap_or("") != owner_a) {
            break;
        }
        assert!(Instant::now() < deadline, "op-a not taken over: {o:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    survivor.wait_bound().await;
    let rebound = killed.elapsed();
    assert!(
        rebound <= TTL + Duration::from_secs(3),
        "re-bound after {rebound:?}"
    );

    // Every accepted message reaches a final state, whichever instance accepted it.
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        let m = c.final_state(id).await;
        *states.entry(m["state"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
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
        assert!(peak <= TPS + TPS / 10, "{}: {peak} submits in one second", s.name);
    }
    survivor.stop();
}
