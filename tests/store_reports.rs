//! `smppd reports` through the binary, while the store is open for writing (as under a running
//! daemon): table and JSON lines, filters, bad arguments.

use smppd::receipt::{AcceptedIs, IdRule, ReceiptTlvs, final_outcome, parse_receipt};
use smppd::store::{Ack, IncomingReceipt, NewMessage, NewPart, RerouteRule, SqliteOptions, Store};
use std::process::Command;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn reports(db: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .arg("reports")
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("run smppd reports");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn reports_reads_while_the_writer_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let (store, _) = Store::open_sqlite(SqliteOptions::new(&db)).expect("open");
    let msg = |to: &str, parts: usize| NewMessage {
        to: to.into(),
        from: "ACME".into(),
        route: "nordics".into(),
        encoding: "gsm7".into(),
        split: "udh8".into(),
        options: "{}".into(),
        dlr: true,
        text: "hi".into(),
        parts: vec![
            NewPart {
                data_coding: 0,
                esm_class: 0,
                segment: b"hi".to_vec(),
                sar_ref: None,
            };
            parts
        ],
        now_ms: now_ms(),
        ..NewMessage::default()
    };
    let delivered = store.accept(msg("+46701234567", 2)).wait().expect("accept");
    let queued = store.accept(msg("+4550000000", 1)).wait().expect("accept");
    let parts = store.claim("nordics", 2, now_ms()).wait().expect("claim");
    for (i, p) in parts.iter().enumerate() {
        store
            .acked(Ack {
                part: p.part,
                smsc: "op-a".into(),
                smsc_id: format!("00AB{i}"),
                rule: IdRule::Same,
                now_ms: now_ms(),
                reroute: RerouteRule::none(),
            })
            .wait()
            .expect("ack");
        let text = format!(
            "id:ab{i} sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:hi"
        );
        let r = parse_receipt(text.as_bytes(), &ReceiptTlvs::default()).expect("parse");
        store
            .record_receipt(IncomingReceipt {
                smsc: "op-a".into(),
                rule: IdRule::Same,
                outcome: final_outcome(r.stat, AcceptedIs::Final),
                receipt: r,
                raw: text.into_bytes(),
                tlv_state: None,
                tlv_network_error: None,
                now_ms: now_ms(),
                reroute: RerouteRule::none(),
            })
            .wait()
            .expect("receipt");
    }

    // Table, newest first, with parts and receipts.
    let (ok, out, err) = reports(&db, &[]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID"), "{out}");
    assert!(lines[1].starts_with(&queued.id.to_string()), "{out}");
    assert!(lines[1].contains("queued"), "{out}");
    let d = lines
        .iter()
        .position(|l| l.starts_with(&delivered.id.to_string()))
        .expect("delivered message listed");
    assert!(
        lines[d].contains("+46701234567") && lines[d].contains("delivered"),
        "{out}"
    );
    assert!(
        lines[d + 1].contains("part 1 delivered smsc=op-a id=00AB0"),
        "{out}"
    );
    assert!(out.contains("stat=DELIVRD"), "{out}");
    assert_eq!(out.matches("receipt #").count(), 2, "{out}");

    // JSON lines, filtered by destination, state, id, time.
    let (ok, out, err) = reports(&db, &["--json", "--to", "+46 70-123 45 67"]);
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], delivered.id.to_string());
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(rows[0]["parts"].as_array().map(Vec::len), Some(2));
    assert_eq!(rows[0]["receipts"][0]["stat"], "DELIVRD");
    let (_, out, _) = reports(&db, &["--json", "--state", "queued"]);
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains(&queued.id.to_string()));
    let (_, out, _) = reports(&db, &["--json", "--id", &delivered.id.to_string()]);
    assert_eq!(out.lines().count(), 1);
    let (_, out, _) = reports(&db, &["--json", "--since", "2h"]);
    assert_eq!(out.lines().count(), 2);

    // Bad arguments are clear errors.
    let (ok, _, err) = reports(&db, &["--state", "lost"]);
    assert!(!ok && err.contains("--state"), "{err}");
    let (ok, _, err) = reports(&db, &["--since", "2 weeks"]);
    assert!(!ok && err.contains("--since"), "{err}");
    let (ok, _, err) = reports(&db, &["--id", "xyz"]);
    assert!(!ok && err.contains("--id"), "{err}");
    let (ok, _, err) = reports(&dir.path().join("missing.db"), &[]);
    assert!(!ok && err.contains("missing.db"), "{err}");

    // The writer was never blocked: it still commits.
    store.accept(msg("+46701234567", 1)).wait().expect("accept");

    // And with the daemon stopped, the file alone is enough.
    store.close();
    drop(store);
    let (ok, out, err) = reports(&db, &["--json"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 3);
}

#[test]
fn reports_lists_unmatched_receipts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let (store, _) = Store::open_sqlite(SqliteOptions::new(&db)).expect("open");
    let text = "id:nobody stat:UNDELIV err:001";
    let r = parse_receipt(text.as_bytes(), &ReceiptTlvs::default()).expect("parse");
    store
        .record_receipt(IncomingReceipt {
            smsc: "op-b".into(),
            rule: IdRule::Same,
            outcome: final_outcome(r.stat, AcceptedIs::Final),
            receipt: r,
            raw: text.as_bytes().to_vec(),
            tlv_state: None,
            tlv_network_error: None,
            now_ms: now_ms(),
            reroute: RerouteRule::none(),
        })
        .wait()
        .expect("receipt");
    let (ok, out, err) = reports(&db, &["--unmatched"]);
    assert!(ok, "{err}");
    assert!(out.contains("smsc=op-b id=nobody stat=UNDELIV"), "{out}");
}
