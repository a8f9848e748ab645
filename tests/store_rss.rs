//! A million queued parts do not live in memory: a child process (this test binary re-run in a
//! child mode) accepts 1,000,000 single-part messages, then pages through the whole queue with
//! `claim`, and reports its peak RSS (VmHWM from /proc). The parent asserts it stays under
//! 150 MiB.
//!
//! Ignored by default because it takes well over 30 s in the debug test profile. Run it with:
//! `cargo test --release --test store_rss -- --ignored million_queued_parts_stay_under_150_mib`

use smppd::store::{NewMessage, NewPart, SqliteOptions, Store};
use std::process::Command;

const ENV_DB: &str = "SMPPD_STORE_RSS_DB";
const MESSAGES: usize = 1_000_000;
const LIMIT_KIB: u64 = 150 * 1024;

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
#[ignore = "child process of million_queued_parts_stay_under_150_mib"]
fn child_fill_and_drain() {
    let Ok(db) = std::env::var(ENV_DB) else {
        panic!("{ENV_DB} not set: this test only runs as a child process");
    };
    let (store, _) = Store::open_sqlite(SqliteOptions::new(&db)).expect("open");
    let now = 1_767_225_600_000;
    let mut pending = std::collections::VecDeque::new();
    for i in 0..MESSAGES {
        let m = NewMessage {
            to: format!("+467{i:08}"),
            from: "ACME".into(),
            route: if i % 2 == 0 { "even" } else { "odd" }.into(),
            priority: (i % 4) as u8,
            encoding: "gsm7".into(),
            split: "udh8".into(),
            options: "{}".into(),
            dlr: true,
            text: "Your code is 123456. It expires in 10 minutes.".into(),
            parts: vec![NewPart {
                data_coding: 0,
                esm_class: 0,
                segment: b"Your code is 123456. It expires in 10 minutes.".to_vec(),
                sar_ref: None,
            }],
            now_ms: now,
            ..NewMessage::default()
        };
        pending.push_back(store.accept(m));
        // Bounded in-flight writes, like the API's bounded connections.
        if pending.len() >= 4096 {
            pending.pop_front().expect("one").wait().expect("accept");
        }
    }
    for p in pending {
        p.wait().expect("accept");
    }
    let queued = store.stats().wait().expect("stats").queued_parts;
    assert_eq!(queued, MESSAGES as u64);
    let mut drained = 0;
    for route in ["even", "odd"] {
        loop {
            let page = store.claim(route, 1000, now).wait().expect("claim");
            if page.is_empty() {
                break;
            }
            drained += page.len();
        }
    }
    assert_eq!(drained, MESSAGES);
    println!("VmHWM {}", vm_hwm_kib());
}

#[test]
#[ignore = "slow in the debug profile; run with --release (see the module docs)"]
fn million_queued_parts_stay_under_150_mib() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("rss.db");
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--ignored",
            "--exact",
            "child_fill_and_drain",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DB, &db)
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hwm: u64 = stdout
        .lines()
        .find_map(|l| l.split("VmHWM ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("child printed VmHWM");
    eprintln!("peak RSS with 1M queued parts: {} MiB", hwm / 1024);
    assert!(hwm <= LIMIT_KIB, "peak RSS {hwm} KiB > {LIMIT_KIB} KiB");
}
