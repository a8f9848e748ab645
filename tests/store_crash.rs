//! Durability across SIGKILL. The test re-runs its own binary in a child mode (the ignored test
//! `child_writer`, selected with `--ignored --exact` and an environment variable) that accepts,
//! acknowledges and records receipts in a loop and prints each id once the store said durable.
//! The parent SIGKILLs it mid-run, several times, and then checks that everything printed is in
//! the store: accepted messages with their idempotency keys, and receipts exactly once.

use smppd::receipt::{AcceptedIs, IdRule, ReceiptTlvs, final_outcome, parse_receipt};
use smppd::store::{
    Ack, IncomingReceipt, MessageId, MessageState, NewMessage, NewPart, Reader, ReceiptRecorded,
    RerouteRule, SqliteOptions, Store,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const ENV_DB: &str = "SMPPD_STORE_CRASH_DB";
const ENV_START: &str = "SMPPD_STORE_CRASH_START";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn message(key: &str) -> NewMessage {
    NewMessage {
        key: Some(key.to_string()),
        to: "+46700000000".into(),
        from: "ACME".into(),
        route: "default".into(),
        encoding: "gsm7".into(),
        split: "udh8".into(),
        options: "{}".into(),
        dlr: true,
        text: "crash test".into(),
        parts: vec![NewPart {
            data_coding: 0,
            esm_class: 0,
            segment: b"crash test".to_vec(),
            sar_ref: None,
        }],
        now_ms: now_ms(),
        ..NewMessage::default()
    }
}

fn smsc_id(id: MessageId) -> String {
    format!("{:x}", id.0)
}

/// The child: runs until killed. Prints `A <key> <id>` after an accept is durable, and
/// `R <id>` after its receipt is durable.
#[test]
#[ignore = "child process of sigkill_loses_nothing_acknowledged"]
fn child_writer() {
    let Ok(db) = std::env::var(ENV_DB) else {
        panic!("{ENV_DB} not set: this test only runs as a child process");
    };
    let start: u64 = std::env::var(ENV_START)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (store, _) = Store::open_sqlite(SqliteOptions::new(&db)).expect("open");
    let mut next = start;
    loop {
        let round: Vec<_> = (0..64)
            .map(|_| {
                next += 1;
                let key = format!("k{next}");
                (key.clone(), store.accept(message(&key)))
            })
            .collect();
        for (key, p) in round {
            let a = p.wait().expect("accept");
            println!("A {key} {}", a.id);
        }
        let parts = store.claim("default", 64, now_ms()).wait().expect("claim");
        let acks: Vec<_> = parts
            .iter()
            .map(|p| {
                store.acked(Ack {
                    part: p.part,
                    smsc: "op-a".into(),
                    smsc_id: smsc_id(p.part.message),
                    rule: IdRule::Same,
                    now_ms: now_ms(),
                    reroute: RerouteRule::none(),
                })
            })
            .collect();
        for a in acks {
            a.wait().expect("ack");
        }
        let receipts: Vec<_> = parts
            .iter()
            .map(|p| {
                let text = format!(
                    "id:{} sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:",
                    smsc_id(p.part.message)
                );
                let r = parse_receipt(text.as_bytes(), &ReceiptTlvs::default()).expect("parse");
                let pending = store.record_receipt(IncomingReceipt {
                    smsc: "op-a".into(),
                    rule: IdRule::Same,
                    outcome: final_outcome(r.stat, AcceptedIs::Final),
                    receipt: r,
                    raw: text.into_bytes(),
                    tlv_state: None,
                    tlv_network_error: None,
                    now_ms: now_ms(),
                    reroute: RerouteRule::none(),
                });
                (p.part.message, pending)
            })
            .collect();
        for (id, p) in receipts {
            match p.wait().expect("receipt") {
                ReceiptRecorded::Matched(_) => println!("R {id}"),
                other => panic!("receipt for {id} not matched: {other:?}"),
            }
        }
    }
}

struct Seen {
    accepted: HashMap<String, MessageId>,
    receipts: Vec<MessageId>,
}

fn run_child_until_killed(db: &Path, start: u64, kill_after_lines: usize, seen: &mut Seen) {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DB, db)
        .env(ENV_START, start.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut lines = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        lines += 1;
        if lines == kill_after_lines {
            // SIGKILL, in the middle of whatever the child is doing by now.
            child.kill().expect("kill");
        }
        let mut f = line.split_whitespace();
        match (f.next(), f.next(), f.next()) {
            (Some("A"), Some(key), Some(id)) => {
                seen.accepted
                    .insert(key.to_string(), id.parse().expect("id"));
            }
            (Some("R"), Some(id), None) => {
                seen.receipts.push(id.parse().expect("id"));
            }
            _ => {}
        }
    }
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the child was killed, not finished");
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("crash.db");
    let mut seen = Seen {
        accepted: HashMap::new(),
        receipts: Vec::new(),
    };
    // Kill points vary so kills land in accepts, acks and receipts (a round prints 64 `A` lines,
    // then 64 `R` lines).
    for (life, kill_after) in [150usize, 333, 97, 410, 40, 600].into_iter().enumerate() {
        run_child_until_killed(&db, (life as u64 + 1) * 1_000_000, kill_after, &mut seen);
    }
    assert!(seen.accepted.len() >= 500, "the children made progress");

    let mut reader = Reader::open(&db).expect("reader");
    for (key, id) in &seen.accepted {
        let m = reader
            .message(*id)
            .expect("read")
            .unwrap_or_else(|| panic!("message {id} ({key}) reported durable but lost"));
        assert_eq!(m.key.as_deref(), Some(key.as_str()));
    }
    for id in &seen.receipts {
        let m = reader.message(*id).expect("read").expect("message");
        assert_eq!(
            m.receipts.len(),
            1,
            "receipt for {id} recorded exactly once"
        );
        assert_eq!(m.state, MessageState::Delivered);
    }
    drop(reader);

    // Reopen for writing: recovery re-queues what was in flight; keys still deduplicate.
    let (store, recovery) = Store::open_sqlite(SqliteOptions::new(&db)).expect("open");
    let (key, id) = seen.accepted.iter().next().expect("one");
    let again = store.accept(message(key)).wait().expect("accept");
    assert!(again.duplicate);
    assert_eq!(again.id, *id);
    let queued = store.stats().wait().expect("stats").queued_parts;
    assert_eq!(queued, recovery.queued);
    eprintln!(
        "crash test: accepted {} receipts {} requeued in flight at last kill {} queued {}",
        seen.accepted.len(),
        seen.receipts.len(),
        recovery.requeued_in_flight,
        recovery.queued
    );
}
