//! `smppd reports` through the binary, while the store is open for writing (as under a running
//! daemon): table and JSON lines, filters, bad arguments; `--by` (delivery per campaign, route
//! and SMSC) on both backends, on a set of messages whose every number is known.

use smppd::receipt::{AcceptedIs, IdRule, ReceiptTlvs, final_outcome, parse_receipt};
use smppd::store::{
    Ack, Disposition, Failure, IncomingReceipt, NewMessage, NewPart, RerouteRule, Settings,
    SqliteOptions, Store,
};
use std::process::Command;

mod support;

use support::pg::{Pg, StoreRuntime};

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

/// A message of `parts` parts saying "hi", accepted at `at` on `route`.
fn short_message(to: &str, route: &str, parts: usize, at: i64) -> NewMessage {
    NewMessage {
        to: to.into(),
        from: "ACME".into(),
        route: route.into(),
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
        now_ms: at,
        ..NewMessage::default()
    }
}

#[test]
fn reports_reads_while_the_writer_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let (store, _) = Store::open_sqlite(SqliteOptions::new(&db)).expect("open");
    let msg = |to: &str, parts: usize| short_message(to, "nordics", parts, now_ms());
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

// ---- `reports --by` ---------------------------------------------------------------------------

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const DAY: i64 = 86_400_000;
/// The `reports` process's clock (`SMPPD_CLOCK_START`): ten days after T0, so `--since 7d`
/// starts at T0 + 3 days.
const REPORT_NOW: &str = "2026-01-11T00:00:00Z";

/// What happens to one message of the known set.
#[derive(Clone, Copy)]
enum Fate {
    /// Every part delivered `ms` after accept (part k's receipt at `ms - (parts - k) * 1000`).
    Delivered(i64),
    /// A receipt with this stat (UNDELIV, EXPIRED) 1 s after accept.
    Receipt(&'static str),
    /// Refused permanently by the SMSC.
    Failed,
    /// Acknowledged; no receipt ever comes (made `no_receipt` by the expiry sweep).
    NoReceipt,
    /// Sent without a receipt requested (final when acknowledged, delivery unknown).
    NoDlr,
    /// Never claimed.
    Queued,
}

/// One message: accept time, campaign tag, route, the SMSC of each part, what happens.
struct Known {
    at: i64,
    campaign: Option<&'static str>,
    route: &'static str,
    smscs: &'static [&'static str],
    fate: Fate,
}

/// The set every `--by` test reads (accept times in order: ids follow them):
/// spring/nordics: 4 delivered by op-a in 1, 2, 3, 10 s; 1 undeliverable (op-a); 1 queued; and
/// one delivered by op-c in 7 s accepted nine days before the report (outside `--since 7d`).
/// autumn/dach: delivered by op-b in 5 s; expired (op-b); failed (op-b); a two-part message
/// whose parts went to op-b then op-c, delivered in 4 s (it counts for op-c, its last part).
/// No campaign, dach: delivered by op-b in 0.5 s; no receipt (op-b).
/// winter/uk, all by op-d: rejected; a final ACCEPTD; sent without a receipt requested.
fn known_set() -> Vec<Known> {
    let k = |i: i64, campaign, route, smscs, fate| Known {
        at: T0 + 5 * DAY + i * 60_000,
        campaign,
        route,
        smscs,
        fate,
    };
    let (s, a, w) = (Some("spring"), Some("autumn"), Some("winter"));
    vec![
        Known {
            at: T0 + DAY,
            campaign: s,
            route: "nordics",
            smscs: &["op-c"],
            fate: Fate::Delivered(7_000),
        },
        k(1, s, "nordics", &["op-a"], Fate::Delivered(1_000)),
        k(2, s, "nordics", &["op-a"], Fate::Delivered(2_000)),
        k(3, s, "nordics", &["op-a"], Fate::Delivered(3_000)),
        k(4, s, "nordics", &["op-a"], Fate::Delivered(10_000)),
        k(5, s, "nordics", &["op-a"], Fate::Receipt("UNDELIV")),
        k(6, a, "dach", &["op-b"], Fate::Delivered(5_000)),
        k(7, a, "dach", &["op-b"], Fate::Receipt("EXPIRED")),
        k(8, a, "dach", &["op-b"], Fate::Failed),
        k(9, a, "dach", &["op-b", "op-c"], Fate::Delivered(4_000)),
        k(10, None, "dach", &["op-b"], Fate::Delivered(500)),
        k(11, None, "dach", &["op-b"], Fate::NoReceipt),
        k(12, w, "uk", &["op-d"], Fate::Receipt("REJECTD")),
        k(13, w, "uk", &["op-d"], Fate::Receipt("ACCEPTD")),
        k(14, w, "uk", &["op-d"], Fate::NoDlr),
        k(15, s, "nordics", &[], Fate::Queued),
    ]
}

fn receipt(smsc: &str, sid: &str, stat: &str, now_ms: i64) -> IncomingReceipt {
    let text = format!(
        "id:{sid} sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:{stat} err:000 text:x"
    );
    let r = parse_receipt(text.as_bytes(), &ReceiptTlvs::default()).expect("parse");
    IncomingReceipt {
        smsc: smsc.into(),
        rule: IdRule::Same,
        outcome: final_outcome(r.stat, AcceptedIs::Final),
        receipt: r,
        raw: text.into_bytes(),
        tlv_state: None,
        tlv_network_error: None,
        now_ms,
        reroute: RerouteRule::none(),
    }
}

/// Writes one message of the set through the store's API, as the daemon would: accept, claim,
/// acknowledgement by each part's SMSC, then its receipts or failure.
fn write_known(store: &Store, i: usize, m: &Known) {
    let parts = m.smscs.len().max(1);
    let tags = match m.campaign {
        Some(c) => format!(r#"{{"campaign":"{c}","kind":"promo"}}"#),
        None => r#"{"kind":"otp"}"#.to_owned(),
    };
    let new = NewMessage {
        dlr: !matches!(m.fate, Fate::NoDlr),
        tags: Some(tags),
        ..short_message("+46701234567", m.route, parts, m.at)
    };
    store.accept(new).wait().expect("accept");
    if let Fate::Queued = m.fate {
        return;
    }
    let claimed = store.claim(m.route, 255, m.at).wait().expect("claim");
    assert_eq!(
        claimed.len(),
        parts,
        "message {i}: its parts are the route's queue"
    );
    for (q, smsc) in claimed.iter().zip(m.smscs) {
        let sid = format!("m{i}p{}", q.part.n);
        if let Fate::Failed = m.fate {
            let failure = Failure {
                part: q.part,
                smsc: Some((*smsc).into()),
                status: Some(0x45),
                disposition: Disposition::Permanent,
                now_ms: m.at + 100,
            };
            store.failed(failure).wait().expect("failed");
            continue;
        }
        let ack = Ack {
            part: q.part,
            smsc: (*smsc).into(),
            smsc_id: sid.clone(),
            rule: IdRule::Same,
            now_ms: m.at + 100,
            reroute: RerouteRule::none(),
        };
        store.acked(ack).wait().expect("ack");
        let done = match m.fate {
            Fate::Delivered(ms) => (
                m.at + ms - (parts as i64 - i64::from(q.part.n)) * 1_000,
                "DELIVRD",
            ),
            Fate::Receipt(stat) => (m.at + 1_000, stat),
            _ => continue,
        };
        let r = receipt(smsc, &sid, done.1, done.0);
        store.record_receipt(r).wait().expect("receipt");
    }
}

/// The set written to `store`; the no-receipt message made final by the expiry sweep.
fn write_known_set(store: &Store) {
    for (i, m) in known_set().iter().enumerate() {
        write_known(store, i, m);
    }
    let late = T0 + 6 * DAY;
    let swept = store.expire(late, 3_600_000, 100).wait().expect("expire");
    assert_eq!(
        swept.finished.len(),
        1,
        "only the no-receipt message was due"
    );
}

/// How a test reaches the store: `--db FILE` or `--config FILE` (PostgreSQL).
fn by_reports(target: &[String], args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .arg("reports")
        .args(target)
        .args(args)
        .env(smppd::clock::START_VAR, REPORT_NOW)
        .output()
        .expect("run smppd reports");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `reports --by … --json` rows as (value, [accepted, delivered, undeliverable, expired,
/// no_receipt, rejected, failed, unconfirmed, pending], per 1,000, median ms, p90 ms).
type Row = (String, [u64; 9], f64, Option<i64>, Option<i64>);

fn by_rows(target: &[String], args: &[&str]) -> Vec<Row> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = by_reports(target, &all);
    assert!(ok, "reports {args:?}: {err}");
    out.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {l}"));
            let counts = [
                "accepted",
                "delivered",
                "undeliverable",
                "expired",
                "no_receipt",
                "rejected",
                "failed",
                "unconfirmed",
                "pending",
            ]
            .map(n);
            assert_eq!(v["by"], args[1], "{l}");
            (
                v["value"].as_str().unwrap_or("(none)").to_owned(),
                counts,
                v["delivered_per_1000"]
                    .as_f64()
                    .expect("delivered_per_1000"),
                v["median_ms"].as_i64(),
                v["p90_ms"].as_i64(),
            )
        })
        .collect()
}

fn row(value: &str, c: [u64; 9], per: f64, median: Option<i64>, p90: Option<i64>) -> Row {
    (value.to_owned(), c, per, median, p90)
}

/// Every number of `--by tag:campaign`, `route` and `smsc` on the known set, with and without
/// `--since`, the `(none)` rows, the table, and a bad `--by`.
#[rustfmt::skip]
fn delivery_report_numbers(target: &[String]) {
    let m = Some(500);
    // value              acc del und exp nor rej fai unc pen  per 1,000  median        p90
    assert_eq!(by_rows(target, &["--by", "tag:campaign"]), vec![
        row("spring",    [7,  5,  1,  0,  0,  0,  0,  0,  1], 714.3, Some(3_000), Some(10_000)),
        row("autumn",    [4,  2,  0,  1,  0,  0,  1,  0,  0], 500.0, Some(4_000), Some(5_000)),
        row("winter",    [3,  0,  0,  0,  0,  1,  0,  2,  0], 0.0,   None,        None),
        row("(none)",    [2,  1,  0,  0,  1,  0,  0,  0,  0], 500.0, m,           m),
    ]);
    // `--since 7d` leaves out the message accepted nine days before the report.
    let since = by_rows(target, &["--by", "tag:campaign", "--since", "7d"]);
    assert_eq!(since[0],
        row("spring",    [6,  4,  1,  0,  0,  0,  0,  0,  1], 666.7, Some(2_000), Some(10_000)));
    assert_eq!(since.len(), 4);
    let none_since = by_rows(target, &["--by", "tag:campaign", "--since", "1d"]);
    assert!(none_since.is_empty(), "{none_since:?}");

    assert_eq!(by_rows(target, &["--by", "route"]), vec![
        row("nordics",   [7,  5,  1,  0,  0,  0,  0,  0,  1], 714.3, Some(3_000), Some(10_000)),
        row("dach",      [6,  3,  0,  1,  1,  0,  1,  0,  0], 500.0, Some(4_000), Some(5_000)),
        row("uk",        [3,  0,  0,  0,  0,  1,  0,  2,  0], 0.0,   None,        None),
    ]);
    // A message counts for the SMSC of its last part sent; one never sent is `(none)`.
    assert_eq!(by_rows(target, &["--by", "smsc"]), vec![
        row("op-a",      [5,  4,  1,  0,  0,  0,  0,  0,  0], 800.0, Some(2_000), Some(10_000)),
        row("op-b",      [5,  2,  0,  1,  1,  0,  1,  0,  0], 400.0, m,           Some(5_000)),
        row("op-d",      [3,  0,  0,  0,  0,  1,  0,  2,  0], 0.0,   None,        None),
        row("op-c",      [2,  2,  0,  0,  0,  0,  0,  0,  0], 1000.0, Some(4_000), Some(7_000)),
        row("(none)",    [1,  0,  0,  0,  0,  0,  0,  0,  1], 0.0,   None,        None),
    ]);
    delivery_report_text(target);
}

/// The table, and a bad `--by`.
fn delivery_report_text(target: &[String]) {
    // The table: a header, one line per value, `(none)` spelled out.
    let (ok, out, err) = by_reports(target, &["--by", "tag:campaign"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("TAG:CAMPAIGN") && lines[0].contains("PER_1000"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("spring") && lines[1].contains("714.3"),
        "{out}"
    );
    assert!(
        lines[1].contains("3.0s") && lines[1].contains("10.0s"),
        "{out}"
    );
    assert!(lines[4].starts_with("(none)"), "{out}");
    assert!(
        lines[3].starts_with("winter") && lines[3].ends_with("  -"),
        "{out}"
    );

    // A bad `--by` names what is allowed.
    for bad in ["campaign", "tag:", "route,smsc"] {
        let (ok, _, err) = by_reports(target, &["--by", bad]);
        assert!(!ok, "--by {bad} accepted");
        assert!(
            err.contains(&format!("--by {bad:?}"))
                && err.contains("tag:NAME")
                && err.contains("route")
                && err.contains("smsc"),
            "{err}"
        );
    }
}

#[test]
fn reports_by_campaign_route_and_smsc_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let (store, _) = Store::open_sqlite(SqliteOptions::new(&db)).expect("open");
    write_known_set(&store);
    // Read while the store is open for writing, as under a running daemon.
    delivery_report_numbers(&["--db".to_owned(), db.display().to_string()]);
    store
        .accept(NewMessage {
            to: "+46701234567".into(),
            from: "ACME".into(),
            route: "nordics".into(),
            encoding: "gsm7".into(),
            split: "udh8".into(),
            options: "{}".into(),
            text: "hi".into(),
            parts: vec![NewPart {
                data_coding: 0,
                esm_class: 0,
                segment: b"hi".to_vec(),
                sar_ref: None,
            }],
            now_ms: T0 + 7 * DAY,
            ..NewMessage::default()
        })
        .wait()
        .expect("the writer still commits");
}

#[test]
fn reports_by_campaign_route_and_smsc_on_postgres() {
    let pg = Pg::start();
    let rt = StoreRuntime::new();
    let (store, _) = rt
        .open(&pg.url(), "test-1", Settings::default())
        .expect("open");
    write_known_set(&store);
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("smppd.toml");
    let text = format!(
        "[listen]\nsubmit = \"127.0.0.1:0\"\n[store]\nurl = \"{}\"\n[[smsc]]\nname = \"op\"\naddress = \"127.0.0.1:9\"\nsystem_id = \"x\"\npassword = \"x\"\n[[route]]\nname = \"r\"\nsmsc = [\"op\"]\n",
        pg.url()
    );
    std::fs::write(&conf, text).expect("write config");
    delivery_report_numbers(&["--config".to_owned(), conf.display().to_string()]);
    store.close();
}
