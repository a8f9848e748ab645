//! State that never outlives its message (issue #16, item 3), through the public interfaces:
//! `smppd run` as a process against two simulated SMSCs (`support`), driven through the submit
//! protocol, observed through `/metrics`, `query`, `subscribe` and the simulators.
//!
//! - Dispatch's per-part side state (refusals, multipart affinity, re-split marks) is released
//!   whatever road its message took to its end: the last part failed permanently, parts
//!   acknowledged out of order, the message expired, a part rerouted after a receipt. The gauge
//!   `smppd_dispatch_side_state` returns to 0.
//! - Parts still waiting in a bind's queue at a graceful stop never left: after a restart they
//!   are not marked as possible duplicates; those that reached the SMSC are.
//! - The parts of a concatenated MO are durable before their `deliver_sm_resp`: a SIGKILL
//!   between the parts loses nothing; a set given up is recorded as `incomplete`.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smppd::sim::MoPart;
use smppd::store::{IncomingMo, MoFragment, MoSet, SqliteOptions, Store};
use support::{Daemon, Smscs, reports_json, until};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const SIDE_STATE: &str = "smppd_dispatch_side_state";

/// A text of `n` GSM characters (more than 160 makes a multipart message).
fn long_text(tag: &str, n: usize) -> String {
    let mut t = format!("{tag} ");
    while t.len() < n {
        t.push_str("lorem ipsum ");
    }
    t.truncate(n);
    t
}

/// The side-state gauge per map, from one scrape; panics when the gauge is not exported (a sum
/// over nothing would pass for 0).
async fn side_state(d: &Daemon) -> Vec<(String, f64)> {
    let body = d.scrape().await;
    let maps: Vec<(String, f64)> = body
        .lines()
        .filter(|l| l.starts_with(&format!("{SIDE_STATE}{{")))
        .filter_map(|l| {
            let map = l.split("map=\"").nth(1)?.split('"').next()?.to_owned();
            Some((map, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    let names: HashSet<&str> = maps.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        names,
        HashSet::from(["refused", "affinity", "resplit", "no_resplit"]),
        "every map has its gauge:\n{body}"
    );
    maps
}

/// Waits until every side-state map is empty. The gauge refreshes once a second: the first look
/// is taken after a refresh that follows the message's end, so an earlier (empty) value cannot
/// pass for a release.
async fn side_state_drains(d: &Daemon) {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let maps = side_state(d).await;
        if maps.iter().all(|(_, v)| *v == 0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "side state still held after its message ended: {maps:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn submit(d: &Daemon, to: &str, text: &str, extra: Value) -> String {
    let mut req = json!({"op":"submit","to":to,"from":"ACME","text":text});
    if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    let v = d.call(req).await;
    assert_eq!(v["ok"], true, "{v}");
    v["id"].as_str().expect("id").to_owned()
}

/// Polls `query` until the message is final (`submitted` is, without a receipt to wait for).
async fn final_message(d: &Daemon, id: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let v = d.call(json!({"op":"query","id":id})).await;
        let m = &v["message"];
        let state = m["state"].as_str().unwrap_or("");
        if state != "queued" && (state != "submitted" || !m["done_at"].is_null()) {
            return m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "message {id} stuck: {v}\nlog:\n{}",
            d.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_state_is_released_when_the_last_part_fails_permanently() {
    let smscs = Smscs::start().await;
    let d = smscs.daemon("", "").start().await;
    d.wait_bound().await;
    // op-a refuses every part for good (a status that does not fail over).
    smscs
        .a
        .sim
        .command("fail 1 ESME_RINVDSTADR")
        .expect("fault");
    let id = submit(&d, "+46701230001", &long_text("perm", 300), json!({})).await;
    let m = final_message(&d, &id, Duration::from_secs(20)).await;
    assert_eq!(m["state"], "failed", "{m}");
    assert_eq!(m["parts"].as_array().map(Vec::len), Some(2), "{m}");
    side_state_drains(&d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_state_is_released_when_parts_are_acknowledged_out_of_order() {
    let smscs = Smscs::start().await;
    let d = smscs.daemon("", "").start().await;
    d.wait_bound().await;
    smscs.command("receipts off");
    // The second submit is throttled: part 2 goes again after part 3 was acknowledged.
    smscs.a.sim.command("throttle_every 2").expect("fault");
    let id = submit(
        &d,
        "+46701230002",
        &long_text("order", 400),
        json!({"dlr": false}),
    )
    .await;
    until("a throttled part", Duration::from_secs(10), || {
        smscs.a.sim.stats().throttled >= 1
    })
    .await;
    smscs.a.sim.command("reset").expect("reset");
    let m = final_message(&d, &id, Duration::from_secs(20)).await;
    assert_eq!(m["state"], "submitted", "{m}");
    assert_eq!(m["parts"].as_array().map(Vec::len), Some(3), "{m}");
    side_state_drains(&d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_state_is_released_when_a_message_expires() {
    let smscs = Smscs::start().await;
    // op-b cannot bind: once op-a's circuit opens, nothing can take the parts.
    smscs
        .b
        .sim
        .update_faults(|f| f.reject_binds = Some(smppd::pdu::CommandStatus::ESME_RBINDFAIL));
    let d = smscs.daemon("", "").start().await;
    d.wait_smsc_bound("op-a").await;
    // Every attempt at op-a fails temporarily: the parts wait for retries past their validity.
    smscs.a.sim.command("fail 1 ESME_RSYSERR").expect("fault");
    let id = submit(
        &d,
        "+46701230003",
        &long_text("expire", 300),
        json!({"validity": "10s"}),
    )
    .await;
    // While the message waits, its parts follow op-a: the gauge shows it.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let maps = side_state(&d).await;
        if maps.iter().any(|(m, v)| m == "affinity" && *v == 1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "affinity never shown: {maps:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = final_message(&d, &id, Duration::from_secs(25)).await;
    assert_eq!(m["state"], "expired", "{m}");
    side_state_drains(&d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_state_is_released_after_a_reroute() {
    let smscs = Smscs::start().await;
    let d = smscs.daemon("", "").start().await;
    d.wait_bound().await;
    // Route r1 resends once through op-b what op-a's receipts say was not delivered.
    let conf = std::fs::read_to_string(&d.config).expect("config");
    let conf = conf.replacen(
        "name = \"r1\"\n",
        "name = \"r1\"\nreroute_undelivered = true\n",
        1,
    );
    std::fs::write(&d.config, conf).expect("write config");
    let v = d.call(json!({"op":"reload"})).await;
    assert_eq!(v["ok"], true, "{v}");
    smscs.a.sim.command("receipt_mix UNDELIV=1").expect("mix");
    smscs.b.sim.command("receipt_mix DELIVRD=1").expect("mix");
    let id = submit(&d, "+46701230004", &long_text("reroute", 300), json!({})).await;
    let m = final_message(&d, &id, Duration::from_secs(20)).await;
    assert_eq!(m["state"], "delivered", "{m}");
    let parts = m["parts"].as_array().cloned().unwrap_or_default();
    assert!(
        parts.iter().all(|p| p["smsc"] == "op-b"),
        "every part went again through op-b: {m}"
    );
    side_state_drains(&d).await;
}

/// Sends `texts` as pipelined submits on one connection; returns the ids in order.
async fn submit_pipelined(d: &Daemon, to: &str, texts: &[String]) -> Vec<String> {
    let mut c = d.client().await;
    let mut lines = String::new();
    for (i, t) in texts.iter().enumerate() {
        let req = json!({"op":"submit","ref":i,"to":to,"from":"ACME","text":t,"dlr":false});
        lines.push_str(&req.to_string());
        lines.push('\n');
    }
    c.send(lines.as_bytes()).await;
    let mut ids = vec![String::new(); texts.len()];
    for _ in texts {
        let v = c.line().await;
        assert_eq!(v["ok"], true, "{v}");
        let i = v["ref"].as_u64().expect("ref") as usize;
        ids[i] = v["id"].as_str().expect("id").to_owned();
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_still_queued_for_a_bind_at_a_stop_are_not_marked_as_possible_duplicates() {
    let smscs = Smscs::start().await;
    let mut d = smscs.daemon("", "").start().await;
    d.wait_bound().await;
    smscs.command("receipts off");
    // op-a answers nothing: its window (50) fills, the rest waits in its bind queue.
    smscs.a.sim.update_faults(|f| f.silent = true);
    let texts: Vec<String> = (0..70).map(|i| format!("queued token {i:03}")).collect();
    let ids = submit_pipelined(&d, "+46701230005", &texts).await;
    let window = u64::from(smscs.a.window);
    until("a full window at op-a", Duration::from_secs(10), || {
        smscs.a.sim.stats().submits >= window
    })
    .await;
    d.terminate();
    // What reached op-a before the stop (possible duplicates) and what never left.
    let reached: HashSet<String> = smscs
        .a
        .sim
        .submits()
        .iter()
        .map(|s| String::from_utf8_lossy(&s.payload).into_owned())
        .collect();
    assert!(
        !reached.is_empty() && reached.len() < texts.len(),
        "some parts reached op-a and some never left: {} of {}",
        reached.len(),
        texts.len()
    );
    smscs.a.sim.update_faults(|f| f.silent = false);
    d.spawn().await;
    for id in &ids {
        let m = final_message(&d, id, Duration::from_secs(30)).await;
        assert_eq!(m["state"], "submitted", "{m}");
    }
    // The mark, as `smppd reports` shows it (the store is read while the daemon runs).
    let reported = reports_json(&d.db, &["--limit", "1000"]);
    let mut seen = 0;
    let mut marked_wrongly = Vec::new();
    let mut unmarked_wrongly = Vec::new();
    for m in reported {
        let text = m["text"].as_str().unwrap_or("").to_owned();
        if !texts.contains(&text) {
            continue;
        }
        seen += 1;
        let marked = m["parts"][0]["maybe_duplicate"]
            .as_bool()
            .unwrap_or_else(|| panic!("no mark in {m}"));
        match (reached.contains(&text), marked) {
            (false, true) => marked_wrongly.push(text),
            (true, false) => unmarked_wrongly.push(text),
            _ => {}
        }
    }
    assert_eq!(seen, texts.len(), "every message reported");
    assert!(
        marked_wrongly.is_empty(),
        "never sent, yet marked as possible duplicates: {marked_wrongly:?}"
    );
    assert!(
        unmarked_wrongly.is_empty(),
        "in flight at the stop, yet not marked: {unmarked_wrongly:?}"
    );
}

/// Subscribes from the start and collects `mo` events until `n` came (or panics after 10 s).
async fn mo_events(d: &Daemon, n: usize) -> Vec<Value> {
    let s = TcpStream::connect(&d.submit).await.expect("connect");
    let (r, mut w) = s.into_split();
    w.write_all(b"{\"op\":\"subscribe\",\"after\":0}\n")
        .await
        .expect("write");
    let mut r = BufReader::new(r);
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let mut line = String::new();
        let read = tokio::time::timeout_at(deadline, r.read_line(&mut line)).await;
        let Ok(Ok(len)) = read else {
            panic!("{} mo events of {n}: {out:?}", out.len());
        };
        assert!(len > 0, "subscription closed: {out:?}");
        let v: Value = serde_json::from_str(&line).expect("JSON");
        if v["event"] == "mo" {
            out.push(v);
        }
    }
    out
}

fn mo_part(reference: u8, total: u8, seq: u8, text: &str) -> MoPart {
    MoPart {
        from: "46709990001".into(),
        to: "72000".into(),
        reference,
        total,
        seq,
        text: text.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concatenated_mo_survives_a_kill_between_its_parts() {
    let smscs = Smscs::start().await;
    let mut d = smscs.daemon("", "").start().await;
    d.wait_bound().await;
    let sim = &smscs.a.sim;
    sim.inject_mo_part(mo_part(7, 2, 1, "Hello "));
    until("part 1 answered ESME_ROK", Duration::from_secs(10), || {
        sim.stats().deliveries_acked == 1
    })
    .await;
    // The daemon dies after answering part 1 and before part 2 comes.
    d.kill();
    d.spawn().await;
    d.wait_bound().await;
    sim.inject_mo_part(mo_part(7, 2, 2, "world"));
    until("part 2 answered ESME_ROK", Duration::from_secs(10), || {
        sim.stats().deliveries_acked == 2
    })
    .await;
    let mo = mo_events(&d, 1).await;
    assert_eq!(mo[0]["text"], "Hello world", "{mo:?}");
    assert_eq!(mo[0]["parts"], 2, "{mo:?}");
    assert_eq!(mo[0]["from"], "+46709990001", "{mo:?}");
    assert!(mo[0].get("incomplete").is_none(), "{mo:?}");
    // Nothing else was recorded for it (no stray incomplete set after the restart): the next
    // MO event is the next MO.
    sim.inject_mo(smppd::sim::MoMessage {
        system_id: None,
        from: "46709990002".into(),
        to: "72000".into(),
        text: "next".into(),
        concatenated: false,
    });
    let mo = mo_events(&d, 2).await;
    assert_eq!(mo[1]["text"], "next", "{mo:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concatenated_mo_given_up_is_recorded_as_incomplete() {
    let smscs = Smscs::start().await;
    let mut d = smscs.daemon("", "").start().await;
    d.wait_bound().await;
    let sim = &smscs.a.sim;
    sim.inject_mo_part(mo_part(9, 3, 1, "first of three "));
    until("part 1 answered", Duration::from_secs(10), || {
        sim.stats().deliveries_acked == 1
    })
    .await;
    // Kept across a kill, then superseded: the same reference comes back with another total.
    d.kill();
    d.spawn().await;
    d.wait_bound().await;
    sim.inject_mo_part(mo_part(9, 2, 1, "new "));
    sim.inject_mo_part(mo_part(9, 2, 2, "set"));
    let mo = mo_events(&d, 2).await;
    let incomplete = mo
        .iter()
        .find(|e| e["incomplete"] == "superseded")
        .unwrap_or_else(|| panic!("the first set recorded as incomplete: {mo:?}"));
    assert_eq!(incomplete["text"], "first of three ", "{mo:?}");
    assert_eq!(incomplete["parts"], 1, "{mo:?}");
    let complete = mo
        .iter()
        .find(|e| e.get("incomplete").is_none())
        .unwrap_or_else(|| panic!("the new set complete: {mo:?}"));
    assert_eq!(complete["text"], "new set", "{mo:?}");
    let counted = d
        .metric("smppd_mo_incomplete_total", &["reason=\"superseded\""])
        .await;
    assert_eq!(counted, 1.0);
}

fn fragment(set: &MoSet, seq: u8, text: &str) -> MoFragment {
    let mut payload = vec![0x05, 0x00, 0x03, set.reference as u8, set.total, seq];
    payload.extend_from_slice(text.as_bytes());
    MoFragment {
        set: set.clone(),
        seq,
        smsc: "op-a".into(),
        data_coding: 0,
        udhi: true,
        sar: None,
        payload,
        now_ms: 1_000 + i64::from(seq),
    }
}

/// The store side of MO durability: kept parts survive a reopen, a repeated part is kept once,
/// and ending the set records the MO and deletes its parts in one write.
#[test]
fn kept_mo_parts_survive_a_reopen_and_go_with_their_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let open = || {
        Store::open_sqlite(SqliteOptions::new(&path))
            .expect("open")
            .0
    };
    let set = MoSet {
        source: "46709990001".into(),
        dest: "72000".into(),
        reference: 7,
        total: 3,
    };
    let other = MoSet {
        reference: 8,
        ..set.clone()
    };
    let store = open();
    for f in [
        fragment(&set, 1, "a"),
        fragment(&set, 2, "b"),
        fragment(&set, 2, "b"),
        fragment(&other, 1, "x"),
    ] {
        store.record_mo_fragment(f).wait().expect("kept");
    }
    drop(store);
    let store = open();
    let kept = store.mo_fragments().wait().expect("read");
    assert_eq!(
        kept,
        vec![
            fragment(&set, 1, "a"),
            fragment(&other, 1, "x"),
            fragment(&set, 2, "b")
        ],
        "in arrival order, a repeated part once"
    );
    let mo = IncomingMo {
        smsc: "op-a".into(),
        from: "+46709990001".into(),
        to: "72000".into(),
        text: "abc".into(),
        parts: 3,
        optout: None,
        now_ms: 2_000,
    };
    let done = store
        .record_mo_set(mo.clone(), set.clone(), None)
        .wait()
        .expect("recorded");
    let gone = store
        .record_mo_set(
            IncomingMo {
                text: "x".into(),
                parts: 1,
                ..mo
            },
            other,
            Some("expired"),
        )
        .wait()
        .expect("recorded");
    assert!(store.mo_fragments().wait().expect("read").is_empty());
    let events = store.events_after(done.seq - 1, 10).wait().expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].fields()["text"], "abc");
    assert!(events[0].fields().get("incomplete").is_none());
    assert_eq!(events[1].seq, gone.seq);
    assert_eq!(events[1].fields()["incomplete"], "expired");
}
