//! The expiry sweeps keep up with the accept rate (issue #16, item 2): `smppd run` as a process
//! (the `support` harness: two simulated SMSCs, metrics on), far more messages falling due at
//! once than a sweep settling a fixed 1,000 per second could finish in the time allowed, and
//! every one of them must reach its final state (`expired`, `no_receipt`) within that time.
//!
//! The bound is generous for the sweep as built (it works in batches until nothing is due, a few
//! seconds here) and no speed is asserted beyond it: the point is that `N` messages due at
//! once settle within `SETTLE` although `N / 1000 s` is far longer.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Daemon, Smscs};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Messages per case: due at once, a fixed 1,000/s sweep would need `N / 1000` = 40 s.
const N: usize = 40_000;
/// How long all of them may take to settle once due (generous; see the module docs).
const SETTLE: Duration = Duration::from_secs(20);
/// Submit-protocol connections the messages are pipelined over.
const CONNECTIONS: usize = 4;

const FINAL: &str = "smppd_messages_final_total";

/// Submits `n` messages made by `request(i)`, pipelined over [`CONNECTIONS`] connections;
/// panics unless every one is answered `ok`.
async fn submit_all(d: &Daemon, n: usize, request: impl Fn(usize) -> Value) {
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let lines: String = (c..n)
            .step_by(CONNECTIONS)
            .map(|i| {
                let mut r = request(i);
                r["ref"] = json!(i);
                r.to_string() + "\n"
            })
            .collect();
        let count = (c..n).step_by(CONNECTIONS).count();
        let stream = TcpStream::connect(&d.submit).await.expect("connect");
        tasks.push(tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let writer = tokio::spawn(async move {
                w.write_all(lines.as_bytes()).await.expect("write");
                w
            });
            let mut r = BufReader::new(r);
            let mut line = String::new();
            for _ in 0..count {
                line.clear();
                let got = tokio::time::timeout(Duration::from_secs(30), r.read_line(&mut line))
                    .await
                    .expect("an answer within 30 s")
                    .expect("read");
                assert!(got > 0, "connection closed");
                let v: Value = serde_json::from_str(&line).expect("JSON");
                assert_eq!(v["ok"], true, "{v}");
            }
            drop(writer.await);
        }));
    }
    for t in tasks {
        t.await.expect("submitter");
    }
}

/// Waits until the metric `smppd_messages_final_total{state}` reaches `n`; panics with what
/// was reached when `deadline` passes first.
async fn settled(d: &Daemon, state: &str, n: usize, deadline: Instant) {
    let label = format!("state=\"{state}\"");
    loop {
        let done = d.metric(FINAL, &[&label]).await;
        if done as usize >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {n} messages became {state} in time; log:\n{}",
            d.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The route's queue as `status` reports it.
async fn queued(d: &Daemon) -> u64 {
    let st = d.call(json!({"op":"status"})).await;
    st["routes"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["queued"].as_u64()).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_past_their_validity_all_expire_although_no_smsc_is_bound() {
    let smscs = Smscs::start().await;
    // No bind ever comes up: only the sweep can settle these messages.
    smscs.command("reject_binds ESME_RBINDFAIL");
    let d = smscs.daemon("", "").start().await;
    let started = Instant::now();
    submit_all(&d, N, |i| {
        json!({"op":"submit","to":format!("+4670{:07}", i),"from":"ACME","text":"code","validity":"10s"})
    })
    .await;
    // The last message's validity ends 10 s after its answer at the latest.
    let last_due = Instant::now() + Duration::from_secs(10);
    eprintln!("{N} accepted in {:?}", started.elapsed());
    settled(&d, "expired", N, last_due + SETTLE).await;
    eprintln!(
        "all expired {:?} after the last was due",
        Instant::now().saturating_duration_since(last_due)
    );
    assert_eq!(queued(&d).await, 0);
    // The writer was never stalled for long: a submit is still answered at once.
    let r = d
        .call(json!({"op":"submit","to":"+46700000001","from":"ACME","text":"later"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    for s in smscs.all() {
        assert_eq!(s.sim.stats().submits, 0, "{} got a submit", s.name);
    }
    assert!(d.panics().is_empty(), "{:?}", d.panics());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_messages_without_a_receipt_all_become_no_receipt_once_the_wait_is_over() {
    let smscs = Smscs::start().await;
    // The SMSCs accept everything and never send a receipt.
    smscs.command("receipts off");
    let mut d = smscs.daemon(r#"receipt_wait = "1h""#, "").start().await;
    d.wait_bound().await;
    let started = Instant::now();
    submit_all(
        &d,
        N,
        |i| json!({"op":"submit","to":format!("+4670{:07}", i),"from":"ACME","text":"hello"}),
    )
    .await;
    // Every part acknowledged by an SMSC, then waiting for its receipt.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let acked = d
            .metric("smppd_parts_submitted_total", &["status=\"ESME_ROK\""])
            .await;
        if acked as usize >= N {
            break;
        }
        assert!(Instant::now() < deadline, "only {acked} of {N} submitted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("{N} submitted in {:?}", started.elapsed());
    assert_eq!(d.metric(FINAL, &["state=\"no_receipt\""]).await, 0.0);
    // A shorter wait, reloaded: all of them are due at once.
    d.rebuild(|b| b.store(r#"receipt_wait = "1s""#));
    let r = d.call(json!({"op":"reload"})).await;
    assert_eq!(r["ok"], true, "{r}");
    let due = Instant::now() + Duration::from_secs(1);
    settled(&d, "no_receipt", N, due + SETTLE).await;
    eprintln!(
        "all no_receipt {:?} after they were due",
        Instant::now().saturating_duration_since(due)
    );
    let r = d
        .call(json!({"op":"submit","to":"+46700000001","from":"ACME","text":"later"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    assert!(d.panics().is_empty(), "{:?}", d.panics());
    d.terminate();
}
