//! The store through its public API: lifecycle, idempotency, correlation (receipt before
//! response, hex/decimal/leading-zero ids), multipart aggregation, queue order and paging,
//! recovery, validity and receipt timeouts, MO/opt-out/events, retention, disk full.
//!
//! The contract tests run against both backends (`sqlite::…` and `postgres::…`, see
//! [`contract_tests!`]); the tests of SQLite's own mechanics (recovery at open, the size cap,
//! its schema versions) are SQLite-only. PostgreSQL's cluster behaviour: `store_postgres.rs`.

use smppd::receipt::{AcceptedIs, IdRule, ReceiptTlvs, final_outcome, parse_receipt};
use smppd::store::{
    Ack, CapLimit, Disposition, Failure, GLOBAL_SCOPE, IncomingMo, IncomingReceipt, MessageId,
    MessageState, NewMessage, NewPart, OptOutChange, PartRef, PartState, ReceiptRecorded,
    RerouteRule, Retention, Settings, SqliteOptions, Store, StoreError,
};
use std::path::{Path, PathBuf};

mod support;

use support::pg::{Pg, StoreRuntime};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn open(path: &Path) -> Store {
    open_with(path, Settings::default()).0
}

fn open_with(path: &Path, settings: Settings) -> (Store, smppd::store::Recovery) {
    let mut o = SqliteOptions::new(path);
    o.settings = settings;
    Store::open_sqlite(o).expect("store opens")
}

/// Where a contract test's store lives: an SQLite file in a temporary folder, or a throwaway
/// PostgreSQL cluster (started per test, stopped when the test ends). Reopening opens the same
/// file or database again.
enum Fx {
    Sqlite(tempfile::TempDir),
    Postgres(StoreRuntime, Pg),
}

impl Fx {
    fn sqlite() -> Fx {
        Fx::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    fn postgres() -> Fx {
        let pg = Pg::start();
        Fx::Postgres(StoreRuntime::new(), pg)
    }

    fn open(&self) -> Store {
        self.open_with(Settings::default()).0
    }

    fn open_with(&self, settings: Settings) -> (Store, smppd::store::Recovery) {
        match self {
            Fx::Sqlite(dir) => open_with(&dir.path().join("s.db"), settings),
            Fx::Postgres(rt, pg) => rt.open(&pg.url(), "test-1", settings).expect("store opens"),
        }
    }

    /// The store file (SQLite only).
    fn path(&self) -> Option<PathBuf> {
        match self {
            Fx::Sqlite(dir) => Some(dir.path().join("s.db")),
            Fx::Postgres(..) => None,
        }
    }
}

/// Runs each contract test against both backends: `sqlite::NAME` and `postgres::NAME`.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $name() {
                super::$name(&super::Fx::sqlite());
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::$name(&super::Fx::postgres());
            })*
        }
    };
}

contract_tests!(
    lifecycle_and_reopen,
    async_callers_await_durability,
    duplicate_keys_give_the_first_id,
    receipt_before_response_is_held_then_matched,
    hex_decimal_and_leading_zero_ids_match,
    multipart_message_gets_one_final_state,
    duplicate_and_unknown_receipts_are_logged_once_and_counted,
    queue_is_priority_then_age_and_paged,
    failures_retries_and_requeues,
    validity_and_receipt_timeouts,
    the_expiry_sweep_settles_everything_due_in_bounded_batches,
    text_is_dropped_after_acknowledgement_without_retain_text,
    resplit_replaces_unsent_parts_only,
    mo_optout_and_resumable_events,
    retention_prunes_in_batches_and_keeps_the_sequence,
    invalid_input_is_refused_without_harm,
    reroute_resends_an_acknowledged_part,
    reroute_undelivered_resends_once_through_the_next_smsc,
    undelivered_is_final_without_a_reroute_rule_for_the_route,
    a_receipt_before_the_response_is_rerouted_at_the_response,
    a_receipt_without_an_id_is_kept_unmatched_and_never_matches,
    caps_are_checked_and_counted_with_the_accept,
    optouts_are_kept_per_scope,
    a_held_message_is_claimed_only_from_its_time,
    held_parts_wake_in_bounded_rounds_earliest_first,
    events_read_live_are_the_rows_read_back_after_a_reopen,
);

fn msg(to: &str, parts: usize) -> NewMessage {
    NewMessage {
        to: to.into(),
        from: "ACME".into(),
        route: "default".into(),
        encoding: "gsm7".into(),
        split: "udh8".into(),
        options: "{}".into(),
        dlr: true,
        text: "hello".into(),
        parts: (0..parts)
            .map(|i| NewPart {
                data_coding: 0,
                esm_class: if parts > 1 { 0x40 } else { 0 },
                segment: format!("segment {i}").into_bytes(),
                sar_ref: None,
            })
            .collect(),
        now_ms: T0,
        ..NewMessage::default()
    }
}

fn ack(store: &Store, part: PartRef, smsc: &str, id: &str, rule: IdRule) -> MessageState {
    store
        .acked(Ack {
            part,
            smsc: smsc.into(),
            smsc_id: id.into(),
            rule,
            now_ms: T0 + 10,
            reroute: RerouteRule::none(),
        })
        .wait()
        .expect("ack durable")
        .state
}

fn receipt(smsc: &str, rule: IdRule, text: &str, tlvs: ReceiptTlvs<'_>) -> IncomingReceipt {
    let r = parse_receipt(text.as_bytes(), &tlvs).expect("receipt parses");
    IncomingReceipt {
        smsc: smsc.into(),
        rule,
        outcome: final_outcome(r.stat, AcceptedIs::Final),
        receipt: r,
        raw: text.as_bytes().to_vec(),
        tlv_state: tlvs.message_state,
        tlv_network_error: tlvs.network_error_code,
        now_ms: T0 + 20,
        reroute: RerouteRule::none(),
    }
}

fn dlr_text(id: &str, stat: &str) -> String {
    format!(
        "id:{id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:{stat} err:000 text:hello"
    )
}

fn claim_all(store: &Store, route: &str) -> Vec<smppd::store::QueuedPart> {
    store.claim(route, 1000, T0 + 5).wait().expect("claim")
}

fn lifecycle_and_reopen(fx: &Fx) {
    let store = fx.open();
    let a = store.accept(msg("+46700000001", 1)).wait().expect("accept");
    assert!(!a.duplicate);
    assert_eq!(a.parts, 1);
    assert_eq!(a.id.millis(), T0);
    assert_eq!(a.id.to_string().len(), 16);
    let parts = claim_all(&store, "default");
    assert_eq!(parts.len(), 1);
    assert_eq!(
        parts[0].part,
        PartRef {
            message: a.id,
            n: 1
        }
    );
    assert_eq!((parts[0].attempts, parts[0].maybe_sent), (1, false));
    assert_eq!(parts[0].segment, b"segment 0");
    assert_eq!(
        ack(&store, parts[0].part, "op-a", "AbC1", IdRule::Same),
        MessageState::Submitted
    );
    let r = store
        .record_receipt(receipt(
            "op-a",
            IdRule::Same,
            &dlr_text("abc1", "DELIVRD"),
            ReceiptTlvs::default(),
        ))
        .wait()
        .expect("receipt");
    let ReceiptRecorded::Matched(applied) = r else {
        panic!("receipt not matched: {r:?}")
    };
    assert_eq!(applied.state, MessageState::Delivered);
    let events = store.events_after(0, 10).wait().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].seq, applied.seq);
    assert_eq!(events[0].kind, "dlr");
    assert_eq!(events[0].fields()["state"], "delivered");
    assert_eq!(events[0].fields()["id"], a.id.to_string());
    store.close();
    drop(store);

    // Mode 0600 on the file.
    if let Some(path) = fx.path() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let (store, rec) = fx.open_with(Settings::default());
    assert_eq!(rec.requeued_in_flight, 0);
    assert_eq!(rec.migrations_applied, 0);
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(m.state, MessageState::Delivered);
    assert_eq!(m.parts[0].state, PartState::Delivered);
    assert_eq!(m.parts[0].smsc_id.as_deref(), Some("AbC1"));
    assert_eq!(m.receipts.len(), 1);
    assert_eq!(m.receipts[0].stat, "DELIVRD");
    assert_eq!(
        m.receipts[0].done_date.as_deref(),
        Some("2026-01-01T00:01:00")
    );
    assert!(m.submitted_at.is_some() && m.done_at.is_some());
    assert_eq!(store.last_seq().borrow().to_owned(), applied.seq);
}

fn async_callers_await_durability(fx: &Fx) {
    let store = fx.open();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut pending = Vec::new();
        for i in 0..500 {
            pending.push(store.accept(msg(&format!("+4670{i:07}"), 1)));
        }
        let mut ids = Vec::new();
        for p in pending {
            ids.push(p.await.expect("durable").id);
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted, ids,
            "ids are unique and increase in acceptance order"
        );
        let depth = store.queue_depth(T0).await.expect("depth");
        assert_eq!(depth.len(), 1);
        assert_eq!((depth[0].route.as_str(), depth[0].parts), ("default", 500));
        // The oldest waiting part is the first message accepted.
        assert_eq!(depth[0].oldest_ms, Some(ids[0].millis()));
        assert_eq!(depth[0].scheduled, 0);
    });
}

fn duplicate_keys_give_the_first_id(fx: &Fx) {
    let store = fx.open();
    let mut m = msg("+46700000001", 2);
    m.key = Some("order-17".into());
    let first = store.accept(m.clone()).wait().expect("accept");
    // Same key in one batch and later: always the first id, nothing new stored.
    let p1 = store.accept(m.clone());
    let mut other = msg("+46700000002", 1);
    other.key = Some("order-17".into());
    let p2 = store.accept(other);
    for p in [p1, p2] {
        let d = p.wait().expect("accept");
        assert!(d.duplicate);
        assert_eq!((d.id, d.parts), (first.id, 2));
    }
    let mut k2 = msg("+46700000003", 1);
    k2.key = Some("order-18".into());
    assert!(!store.accept(k2).wait().expect("accept").duplicate);
    assert_eq!(claim_all(&store, "default").len(), 3);
}

fn receipt_before_response_is_held_then_matched(fx: &Fx) {
    let store = fx.open();
    let a = store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    let held = store
        .record_receipt(receipt(
            "op-a",
            IdRule::Same,
            &dlr_text("77", "DELIVRD"),
            ReceiptTlvs::default(),
        ))
        .wait()
        .expect("receipt");
    assert!(matches!(held, ReceiptRecorded::Held { .. }), "{held:?}");
    assert_eq!(store.stats().wait().expect("stats").unmatched_receipts, 1);
    let res = store
        .acked(Ack {
            part: parts[0].part,
            smsc: "op-a".into(),
            smsc_id: "77".into(),
            rule: IdRule::Same,
            now_ms: T0 + 30,
            reroute: RerouteRule::none(),
        })
        .wait()
        .expect("ack");
    assert_eq!(res.state, MessageState::Delivered);
    assert_eq!(res.held_receipts.len(), 1);
    assert_eq!(res.held_receipts[0].part, parts[0].part);
    assert_eq!(store.stats().wait().expect("stats").unmatched_receipts, 0);
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(m.receipts.len(), 1);
    assert_eq!(m.state, MessageState::Delivered);
}

fn hex_decimal_and_leading_zero_ids_match(fx: &Fx) {
    let store = fx.open();
    // (rule, id in submit_sm_resp, receipt text id, receipted_message_id TLV)
    let cases: [(IdRule, &str, &str, Option<&str>); 6] = [
        (IdRule::HexToDec, "038601FA", "0059113978", None),
        (IdRule::HexToDec, "38601fa", "0059113978", Some("38601fa")),
        (IdRule::DecToHex, "0059113978", "38601FA", None),
        (IdRule::Same, "00ABC123", "abc123", None),
        (IdRule::Same, "12345", "0000012345", None),
        (
            IdRule::Same,
            "74E02EE1-4E2F-4B8A-9A1C-2F0E5D7C9B11",
            "74e02ee1-4e2f-4b8a-9a1c-2f0e5d7c9b11",
            None,
        ),
    ];
    for (i, (rule, resp_id, text_id, tlv)) in cases.into_iter().enumerate() {
        let smsc = format!("op-{i}");
        store.accept(msg("+46700000001", 1)).wait().expect("accept");
        let parts = claim_all(&store, "default");
        assert_eq!(parts.len(), 1);
        ack(&store, parts[0].part, &smsc, resp_id, rule);
        let tlvs = ReceiptTlvs {
            receipted_message_id: tlv,
            ..ReceiptTlvs::default()
        };
        let r = store
            .record_receipt(receipt(&smsc, rule, &dlr_text(text_id, "DELIVRD"), tlvs))
            .wait()
            .expect("receipt");
        match r {
            ReceiptRecorded::Matched(a) => {
                assert_eq!(a.part, parts[0].part, "case {i}");
                assert_eq!(a.state, MessageState::Delivered, "case {i}");
            }
            other => panic!("case {i} ({rule:?} {resp_id} vs {text_id}): {other:?}"),
        }
    }
    // The same id from another SMSC does not match.
    store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    ack(&store, parts[0].part, "op-x", "999", IdRule::Same);
    let r = store
        .record_receipt(receipt(
            "op-y",
            IdRule::Same,
            &dlr_text("999", "DELIVRD"),
            ReceiptTlvs::default(),
        ))
        .wait()
        .expect("receipt");
    assert!(matches!(r, ReceiptRecorded::Held { .. }));
}

fn multipart_message_gets_one_final_state(fx: &Fx) {
    let store = fx.open();
    let a = store.accept(msg("+46700000001", 3)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.total == 3));
    assert_eq!(
        ack(&store, parts[0].part, "op-a", "p1", IdRule::Same),
        MessageState::Queued
    );
    assert_eq!(
        ack(&store, parts[1].part, "op-a", "p2", IdRule::Same),
        MessageState::Queued
    );
    assert_eq!(
        ack(&store, parts[2].part, "op-a", "p3", IdRule::Same),
        MessageState::Submitted
    );
    let mut states = Vec::new();
    for (id, stat) in [
        ("p1", "DELIVRD"),
        ("p2", "ENROUTE"),
        ("p2", "UNDELIV"),
        ("p3", "DELIVRD"),
    ] {
        let r = store
            .record_receipt(receipt(
                "op-a",
                IdRule::Same,
                &dlr_text(id, stat),
                ReceiptTlvs::default(),
            ))
            .wait()
            .expect("receipt");
        let ReceiptRecorded::Matched(applied) = r else {
            panic!("{r:?}")
        };
        states.push(applied.state);
    }
    use MessageState::*;
    assert_eq!(states, vec![Submitted, Submitted, Submitted, Undeliverable]);
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(m.state, Undeliverable);
    assert_eq!(m.receipts.len(), 4);
    let events = store.events_after(0, 100).wait().expect("events");
    let finals: Vec<_> = events
        .iter()
        .filter(|e| e.fields()["state"] != "submitted")
        .collect();
    assert_eq!(finals.len(), 1, "one final state: {events:?}");
}

fn duplicate_and_unknown_receipts_are_logged_once_and_counted(fx: &Fx) {
    let store = fx.open();
    store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    ack(&store, parts[0].part, "op-a", "42", IdRule::Same);
    let text = dlr_text("42", "DELIVRD");
    let first = store
        .record_receipt(receipt("op-a", IdRule::Same, &text, ReceiptTlvs::default()))
        .wait()
        .expect("receipt");
    let again = store
        .record_receipt(receipt("op-a", IdRule::Same, &text, ReceiptTlvs::default()))
        .wait()
        .expect("receipt");
    let ReceiptRecorded::Matched(a) = first else {
        panic!("{first:?}")
    };
    assert_eq!(again, ReceiptRecorded::Duplicate { log_id: a.log_id });
    // A repeated submit_sm_resp changes nothing.
    assert_eq!(
        ack(&store, parts[0].part, "op-a", "43", IdRule::Same),
        MessageState::Delivered
    );
    let m = store
        .message(parts[0].part.message)
        .wait()
        .expect("read")
        .expect("found");
    assert_eq!(m.parts[0].smsc_id.as_deref(), Some("42"));
    // Unknown ids: kept, counted, and a re-sent unknown receipt is not logged twice.
    let unknown = dlr_text("nope", "DELIVRD");
    for _ in 0..2 {
        store
            .record_receipt(receipt(
                "op-a",
                IdRule::Same,
                &unknown,
                ReceiptTlvs::default(),
            ))
            .wait()
            .expect("receipt");
    }
    store
        .record_receipt(receipt(
            "op-a",
            IdRule::Same,
            &dlr_text("nope2", "UNDELIV"),
            ReceiptTlvs::default(),
        ))
        .wait()
        .expect("receipt");
    assert_eq!(store.stats().wait().expect("stats").unmatched_receipts, 2);
    assert_eq!(store.events_after(0, 100).wait().expect("events").len(), 1);
}

fn queue_is_priority_then_age_and_paged(fx: &Fx) {
    let store = fx.open();
    let mut ids = Vec::new();
    for (i, prio) in [0u8, 2, 0, 3, 2].into_iter().enumerate() {
        let mut m = msg(&format!("+4670000000{i}"), 1);
        m.priority = prio;
        m.now_ms = T0 + i as i64;
        ids.push(store.accept(m).wait().expect("accept").id);
    }
    let mut other = msg("+4670000009", 1);
    other.route = "nordics".into();
    store.accept(other).wait().expect("accept");
    let mut order = Vec::new();
    loop {
        let page = store.claim("default", 2, T0 + 100).wait().expect("claim");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        order.extend(page.iter().map(|p| p.part.message));
    }
    assert_eq!(order, vec![ids[3], ids[1], ids[4], ids[0], ids[2]]);
    assert_eq!(claim_all(&store, "nordics").len(), 1);
}

#[test]
fn recovery_requeues_in_flight_parts_marked_as_possible_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = open(&path);
    for i in 0..3 {
        store
            .accept(msg(&format!("+4670000000{i}"), 1))
            .wait()
            .expect("accept");
    }
    let parts = store.claim("default", 2, T0).wait().expect("claim");
    ack(&store, parts[0].part, "op-a", "1", IdRule::Same);
    drop(store); // parts[1] was in flight
    let (store, rec) = open_with(&path, Settings::default());
    assert_eq!(rec.requeued_in_flight, 1);
    assert_eq!(rec.queued, 2);
    let again = claim_all(&store, "default");
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].part, parts[1].part);
    assert!(again[0].maybe_sent);
    assert_eq!(again[0].attempts, 2);
    assert!(!again[1].maybe_sent);
    let m = store
        .message(parts[1].part.message)
        .wait()
        .expect("read")
        .expect("found");
    assert!(m.parts[0].maybe_duplicate);
}

fn failures_retries_and_requeues(fx: &Fx) {
    let store = fx.open();
    let a = store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let b = store.accept(msg("+46700000002", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    let fail = |part, disposition, status| Failure {
        part,
        smsc: Some("op-a".into()),
        status,
        disposition,
        now_ms: T0 + 10,
    };
    let st = store
        .failed(fail(
            parts[0].part,
            Disposition::RetryAt { at_ms: T0 + 1000 },
            Some(0x58),
        ))
        .wait()
        .expect("failed");
    assert_eq!(st, MessageState::Queued);
    let st = store
        .failed(fail(parts[1].part, Disposition::Permanent, Some(0x0b)))
        .wait()
        .expect("failed");
    assert_eq!(st, MessageState::Failed);
    // Not ready before its retry time; ready after.
    assert!(
        store
            .claim("default", 10, T0 + 999)
            .wait()
            .expect("claim")
            .is_empty()
    );
    let retry = store.claim("default", 10, T0 + 1000).wait().expect("claim");
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].part.message, a.id);
    assert_eq!(retry[0].attempts, 2);
    // A hand-back of an unsent part does not count as an attempt.
    store
        .failed(fail(
            retry[0].part,
            Disposition::Requeue { maybe_sent: false },
            None,
        ))
        .wait()
        .expect("requeue");
    let again = store.claim("default", 10, T0 + 1000).wait().expect("claim");
    assert_eq!((again[0].attempts, again[0].maybe_sent), (2, false));
    let events = store.events_after(0, 10).wait().expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "state");
    assert_eq!(events[0].fields()["id"], b.id.to_string());
    assert_eq!(events[0].fields()["state"], "failed");
    // Unknown parts are an error, not a panic.
    let missing = PartRef {
        message: MessageId(1),
        n: 1,
    };
    let err = store
        .failed(fail(missing, Disposition::Permanent, None))
        .wait()
        .expect_err("unknown part");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(!err.is_overload());
}

fn validity_and_receipt_timeouts(fx: &Fx) {
    let store = fx.open();
    let mut late = msg("+46700000001", 1);
    late.valid_until_ms = Some(T0 + 50);
    let late = store.accept(late).wait().expect("accept");
    let waits = store.accept(msg("+46700000002", 1)).wait().expect("accept");
    // Past its validity at claim time: expired, never handed out.
    let parts = store.claim("default", 10, T0 + 100).wait().expect("claim");
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].part.message, waits.id);
    let m = store.message(late.id).wait().expect("read").expect("found");
    assert_eq!(m.state, MessageState::Expired);
    ack(&store, parts[0].part, "op-a", "5", IdRule::Same);
    // No receipt within the wait → no_receipt.
    let e = store
        .expire(T0 + 60_000, 30_000, 100)
        .wait()
        .expect("expire");
    assert_eq!((e.no_receipt, e.expired), (1, 0));
    assert_eq!(e.finished, vec![waits.id], "the messages it made final");
    let m = store
        .message(waits.id)
        .wait()
        .expect("read")
        .expect("found");
    assert_eq!(m.state, MessageState::NoReceipt);
    // A late receipt still corrects it, and is logged.
    let r = store
        .record_receipt(receipt(
            "op-a",
            IdRule::Same,
            &dlr_text("5", "DELIVRD"),
            ReceiptTlvs::default(),
        ))
        .wait()
        .expect("receipt");
    let ReceiptRecorded::Matched(a) = r else {
        panic!("{r:?}")
    };
    assert_eq!(a.state, MessageState::Delivered);
    // Queued parts past validity are expired by the sweep too.
    let mut q = msg("+46700000003", 2);
    q.valid_until_ms = Some(T0 + 1_000);
    q.now_ms = T0 + 500;
    let q = store.accept(q).wait().expect("accept");
    let e = store
        .expire(T0 + 100_000, 30_000, 100)
        .wait()
        .expect("expire");
    assert_eq!(e.expired, 1);
    assert_eq!(e.finished, vec![q.id], "the messages it made final");
    let m = store.message(q.id).wait().expect("read").expect("found");
    assert_eq!(m.state, MessageState::Expired);
    assert!(m.parts.iter().all(|p| p.state == PartState::Expired));
}

fn the_expiry_sweep_settles_everything_due_in_bounded_batches(fx: &Fx) {
    let store = fx.open();
    // Accepted just now (far younger than the receipt wait) with a validity already over.
    let mut due = Vec::new();
    for i in 0..7 {
        let mut m = msg(&format!("+4670000000{i}"), 2);
        m.valid_until_ms = Some(T0 + 1_000);
        due.push(store.accept(m).wait().expect("accept").id);
    }
    // One is handed to a bind (sending): the bind checks it, not the sweep.
    let mut sending = msg("+46700000009", 1);
    sending.valid_until_ms = Some(T0 + 1_000);
    sending.route = "other".into();
    let sending = store.accept(sending).wait().expect("accept");
    let claimed = store.claim("other", 10, T0 + 500).wait().expect("claim");
    assert_eq!(claimed.len(), 1);
    // Another waits for a retry past its validity.
    let mut retry = msg("+46700000010", 1);
    retry.valid_until_ms = Some(T0 + 1_000);
    retry.route = "third".into();
    let retry = store.accept(retry).wait().expect("accept");
    let p = store.claim("third", 10, T0 + 500).wait().expect("claim")[0].part;
    let failure = |disposition| Failure {
        part: p,
        smsc: Some("op-a".into()),
        status: Some(0x14),
        disposition,
        now_ms: T0 + 600,
    };
    store
        .failed(failure(Disposition::RetryAt { at_ms: T0 + 60_000 }))
        .wait()
        .expect("retry later");

    let (mut expired, mut calls) = (0, 0);
    loop {
        // 3 parts per call: a message's two parts may straddle two calls.
        let e = store
            .expire(T0 + 2_000, 3_600_000, 3)
            .wait()
            .expect("expire");
        expired += e.expired;
        calls += 1;
        if !e.more {
            break;
        }
        assert!(calls < 20, "the sweep does not end");
    }
    assert_eq!(expired, 8, "7 queued + 1 waiting");
    assert!(calls >= 5, "15 parts in batches of 3: {calls} calls");
    for id in due.iter().chain([&retry.id]) {
        let m = store.message(*id).wait().expect("read").expect("found");
        assert_eq!(m.state, MessageState::Expired, "{id}");
        assert!(m.parts.iter().all(|p| p.state == PartState::Expired));
    }
    let m = store
        .message(sending.id)
        .wait()
        .expect("read")
        .expect("found");
    assert_eq!(m.parts[0].state, PartState::Sending, "left to the bind");
    // The bind found its validity over: not written, expired.
    let st = store
        .failed(Failure {
            part: claimed[0].part,
            smsc: None,
            status: None,
            disposition: Disposition::Expired,
            now_ms: T0 + 2_500,
        })
        .wait()
        .expect("expired");
    assert_eq!(st, MessageState::Expired);
    // Every one of them got its final `state` event.
    let events = store.events_after(0, 100).wait().expect("events");
    let finals = events
        .iter()
        .filter(|e| e.kind == "state" && e.body.contains(r#""state":"expired""#))
        .count();
    assert_eq!(finals, 9, "{events:?}");
    let e = store
        .expire(T0 + 3_000, 3_600_000, 3)
        .wait()
        .expect("expire");
    assert_eq!(
        (e.expired, e.scanned, e.more),
        (0, 0, false),
        "nothing left"
    );
}

fn text_is_dropped_after_acknowledgement_without_retain_text(fx: &Fx) {
    let settings = Settings {
        retain_text: false,
        ..Settings::default()
    };
    let (store, _) = fx.open_with(settings);
    let a = store.accept(msg("+46700000001", 2)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    ack(&store, parts[0].part, "op-a", "1", IdRule::Same);
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(
        m.text.as_deref(),
        Some("hello"),
        "kept until every part is acked"
    );
    ack(&store, parts[1].part, "op-a", "2", IdRule::Same);
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(m.text, None);
    // Live reload back to retaining text.
    store.reload(Settings::default()).wait().expect("reload");
    let b = store.accept(msg("+46700000002", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    ack(&store, parts[0].part, "op-a", "3", IdRule::Same);
    let m = store.message(b.id).wait().expect("read").expect("found");
    assert_eq!(m.text.as_deref(), Some("hello"));
}

fn resplit_replaces_unsent_parts_only(fx: &Fx) {
    let store = fx.open();
    let a = store.accept(msg("+46700000001", 3)).wait().expect("accept");
    let sar = |i: u8| NewPart {
        data_coding: 0,
        esm_class: 0,
        segment: vec![i; 10],
        sar_ref: Some(7),
    };
    store
        .resplit(a.id, "sar".into(), vec![sar(1), sar(2)])
        .wait()
        .expect("resplit");
    let parts = claim_all(&store, "default");
    assert_eq!(parts.len(), 2);
    assert_eq!(
        (parts[0].split.as_str(), parts[0].sar_ref),
        ("sar", Some(7))
    );
    assert_eq!(parts[1].total, 2);
    let err = store
        .resplit(a.id, "udh8".into(), vec![sar(1)])
        .wait()
        .expect_err("in flight");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

fn mo_optout_and_resumable_events(fx: &Fx) {
    let store = fx.open();
    let mo = |text: &str, optout| IncomingMo {
        smsc: "op-a".into(),
        from: "+46701111111".into(),
        to: "72000".into(),
        text: text.into(),
        parts: 1,
        optout,
        now_ms: T0,
    };
    let a = store.record_mo(mo("hello", None)).wait().expect("mo");
    let b = store
        .record_mo(mo(
            "STOP",
            Some(OptOutChange::Add {
                keyword: "STOP".into(),
                scope: GLOBAL_SCOPE.into(),
            }),
        ))
        .wait()
        .expect("mo");
    assert!(b.seq > a.seq);
    let opted = |n: &str| store.is_opted_out(n, "72000").wait().expect("read");
    assert_eq!(opted("+46701111111").as_deref(), Some(GLOBAL_SCOPE));
    assert_eq!(opted("+46702222222"), None);
    drop(store);
    // A subscriber resumes after the last seq it saw, across a restart.
    let store = fx.open();
    let rest = store.events_after(a.seq, 10).wait().expect("events");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].seq, b.seq);
    assert_eq!(rest[0].kind, "mo");
    assert_eq!(rest[0].fields()["text"], "STOP");
    assert_eq!(rest[0].fields()["optout"], "added");
    store
        .record_mo(mo(
            "START",
            Some(OptOutChange::Remove {
                scope: GLOBAL_SCOPE.into(),
            }),
        ))
        .wait()
        .expect("mo");
    assert_eq!(
        store
            .is_opted_out("+46701111111", "72000")
            .wait()
            .expect("read"),
        None
    );
}

fn retention_prunes_in_batches_and_keeps_the_sequence(fx: &Fx) {
    let store = fx.open();
    for i in 0..5 {
        store
            .accept(msg(&format!("+4670000000{i}"), 2))
            .wait()
            .expect("accept");
    }
    let parts = claim_all(&store, "default");
    for p in &parts {
        store
            .failed(Failure {
                part: p.part,
                smsc: None,
                status: Some(0x0b),
                disposition: Disposition::Permanent,
                now_ms: T0 + 100,
            })
            .wait()
            .expect("failed");
    }
    let open_one = store.accept(msg("+46700000009", 1)).wait().expect("accept");
    let last_seq = *store.last_seq().borrow();
    assert!(last_seq > 0);
    let retention = Retention {
        messages_ms: Some(1_000),
        log_ms: Some(1_000),
        cap_hits_ms: None,
    };
    let now = T0 + 10_000;
    let mut rounds = 0;
    while store.prune(retention, now, 2).wait().expect("prune") > 0 {
        rounds += 1;
        assert!(rounds < 20);
    }
    assert!(rounds >= 3, "small batches: {rounds} rounds");
    for p in &parts {
        assert!(
            store
                .message(p.part.message)
                .wait()
                .expect("read")
                .is_none()
        );
    }
    assert!(store.message(open_one.id).wait().expect("read").is_some());
    let events = store.events_after(0, 10).wait().expect("events");
    assert_eq!(events.len(), 1, "the newest event stays");
    assert_eq!(events[0].seq, last_seq);
}

#[test]
fn disk_full_is_overload_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let small = Settings {
        max_size_bytes: Some(256 * 1024),
        ..Settings::default()
    };
    let (store, _) = open_with(&path, small);
    let mut acked = Vec::new();
    let mut big = msg("+46700000001", 1);
    big.text = "x".repeat(4000);
    let err = loop {
        match store.accept(big.clone()).wait() {
            Ok(a) => acked.push(a.id),
            Err(e) => break e,
        }
        assert!(acked.len() < 1000, "the size cap never hit");
    };
    assert!(err.is_overload(), "{err}");
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                kind: "disk_full",
                ..
            }
        ),
        "{err}"
    );
    // Still full: still refused, still running.
    assert!(store.accept(big.clone()).wait().is_err());
    // Space returns (live reload): writes succeed again.
    store.reload(Settings::default()).wait().expect("reload");
    let after = store
        .accept(big.clone())
        .wait()
        .expect("accept after recovery");
    drop(store);
    let store = open(&path);
    for id in acked.iter().chain([&after.id]) {
        assert!(
            store.message(*id).wait().expect("read").is_some(),
            "lost {id}"
        );
    }
}

/// A reload that raises the size cap ends a full store even when it is queued behind writes
/// that fail for want of space: receipts, which an SMSC redelivers at once, so under traffic
/// they are always there. A regression: the reload shared a transaction with such a receipt,
/// failed with it, the cap stayed where it was and the store stayed full for good.
#[test]
fn a_reload_raising_the_size_cap_is_not_failed_by_the_writes_queued_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let small = Settings {
        max_size_bytes: Some(256 * 1024),
        ..Settings::default()
    };
    let (store, _) = open_with(&path, small);
    let unknown = |i: usize| {
        let text = dlr_text(&format!("{i:08x}"), "DELIVRD");
        receipt("op-a", IdRule::Same, &text, ReceiptTlvs::default())
    };
    // Fill the store with receipts nobody sent (each logged) until one is refused.
    let mut n = 0;
    let full = loop {
        match store.record_receipt(unknown(n)).wait() {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 100_000, "the size cap never hit");
    };
    assert!(full.is_overload(), "{full}");
    // More than the whole cap: refused whatever space is left.
    let mut big = msg("+46700000001", 1);
    big.text = "x".repeat(300 * 1024);
    // The writer takes a write that fails and waits for the lock; meanwhile receipts that
    // fail and the reload queue up, and the writer, once free, lingers with the lazy receipts
    // and takes the reload into their batch.
    let lock = WriteLock::take(&path);
    let refused = store.accept(big.clone());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let receipts: Vec<_> = (n..n + 2)
        .map(|i| store.record_receipt(unknown(i)))
        .collect();
    let reload = store.reload(Settings::default());
    lock.release();
    assert!(refused.wait().is_err(), "the store was full");
    for r in receipts {
        let e = r.wait().expect_err("the store was full");
        assert!(e.is_overload(), "{e}");
    }
    reload.wait().expect("the reload is its own transaction");
    store
        .accept(big)
        .wait()
        .expect("an accept once the cap is raised");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    drop(open(&path));
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.pragma_update(None, "user_version", 99).expect("set");
    drop(conn);
    let err = Store::open_sqlite(SqliteOptions::new(&path)).expect_err("refused");
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("schema version 99"), "{err}");
    let err = smppd::store::Reader::open(&path).err().expect("refused");
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
}

fn invalid_input_is_refused_without_harm(fx: &Fx) {
    let store = fx.open();
    let err = store
        .accept(msg("+46700000001", 0))
        .wait()
        .expect_err("no parts");
    assert!(
        matches!(err, StoreError::Invalid { field: "parts", .. }),
        "{err}"
    );
    let err = store
        .accept(msg("+46700000001", 256))
        .wait()
        .expect_err("too many");
    assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    // The same batch's other writes are unaffected.
    assert!(store.accept(msg("+46700000001", 1)).wait().is_ok());
    store.close();
    let err = store
        .accept(msg("+46700000001", 1))
        .wait()
        .expect_err("closed");
    assert!(matches!(err, StoreError::Closed));
    let err = store.stats().wait().expect_err("closed");
    assert!(matches!(err, StoreError::Closed), "{err}");
}

#[test]
fn aggregation_table() {
    use MessageState as M;
    use PartState::*;
    use smppd::store::aggregate;
    let cases: [(bool, &[PartState], MessageState); 16] = [
        (true, &[Queued], M::Queued),
        // ACCEPTD final (acceptd_final): final, less than delivered, more than nothing.
        (true, &[Accepted], M::Accepted),
        (true, &[Delivered, Accepted], M::Accepted),
        (true, &[Accepted, Undeliverable], M::Undeliverable),
        (true, &[Accepted, Submitted], M::Submitted),
        (true, &[Submitted, Sending], M::Queued),
        (true, &[Submitted, Waiting], M::Queued),
        (true, &[Submitted, Submitted], M::Submitted),
        (true, &[Delivered, Submitted], M::Submitted),
        (true, &[Failed, Submitted], M::Submitted),
        (true, &[Delivered, Delivered], M::Delivered),
        (true, &[Delivered, NoReceipt], M::NoReceipt),
        (true, &[Expired, Undeliverable, Delivered], M::Undeliverable),
        (true, &[Rejected, Failed], M::Failed),
        (false, &[Submitted, Submitted], M::Submitted),
        (false, &[Submitted, Failed], M::Failed),
    ];
    for (dlr, parts, want) in cases {
        assert_eq!(aggregate(dlr, parts), want, "dlr={dlr} {parts:?}");
    }
    assert_eq!(aggregate(true, &[]), M::Queued);
}

#[test]
fn held_receipt_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = open(&path);
    store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    let r = store
        .record_receipt(receipt(
            "op-a",
            IdRule::HexToDec,
            &dlr_text("0059113978", "DELIVRD"),
            ReceiptTlvs::default(),
        ))
        .wait()
        .expect("receipt");
    assert!(matches!(r, ReceiptRecorded::Held { .. }));
    drop(store);
    let (store, rec) = open_with(&path, Settings::default());
    assert_eq!(rec.requeued_in_flight, 1);
    // Re-sent after recovery, the SMSC answers with the id the held receipt names.
    let again = claim_all(&store, "default");
    assert_eq!(again[0].part, parts[0].part);
    let res = store
        .acked(Ack {
            part: again[0].part,
            smsc: "op-a".into(),
            smsc_id: "38601FA".into(),
            rule: IdRule::HexToDec,
            now_ms: T0 + 50,
            reroute: RerouteRule::none(),
        })
        .wait()
        .expect("ack");
    assert_eq!(res.held_receipts.len(), 1);
    assert_eq!(res.state, MessageState::Delivered);
}

fn reroute_resends_an_acknowledged_part(fx: &Fx) {
    let store = fx.open();
    let a = store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    ack(&store, parts[0].part, "op-a", "1", IdRule::Same);
    // UNDELIV from op-a, recorded as not final because the route reroutes.
    let mut r = receipt(
        "op-a",
        IdRule::Same,
        &dlr_text("1", "UNDELIV"),
        ReceiptTlvs::default(),
    );
    r.outcome = None;
    let rec = store.record_receipt(r).wait().expect("receipt");
    assert!(matches!(rec, ReceiptRecorded::Matched(ref m) if m.state == MessageState::Submitted));
    let st = store
        .failed(Failure {
            part: parts[0].part,
            smsc: Some("op-a".into()),
            status: None,
            disposition: Disposition::Requeue { maybe_sent: false },
            now_ms: T0 + 40,
        })
        .wait()
        .expect("requeue");
    assert_eq!(st, MessageState::Queued);
    let again = claim_all(&store, "default");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].last_smsc.as_deref(), Some("op-a"));
    ack(&store, again[0].part, "op-b", "9", IdRule::Same);
    let rec = store
        .record_receipt(receipt(
            "op-b",
            IdRule::Same,
            &dlr_text("9", "DELIVRD"),
            ReceiptTlvs::default(),
        ))
        .wait()
        .expect("receipt");
    assert!(matches!(rec, ReceiptRecorded::Matched(ref m) if m.state == MessageState::Delivered));
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(m.id, a.id, "the message keeps its id");
    assert_eq!(m.receipts.len(), 2);
    assert_eq!(m.parts[0].smsc.as_deref(), Some("op-b"));
}

#[test]
fn a_version_1_store_is_migrated() {
    // The first migration as shipped, taken from the source, applied by hand.
    let schema = include_str!("../src/store/sqlite/schema.rs");
    let v1 = schema
        .split("r#\"")
        .nth(1)
        .and_then(|s| s.split("\"#").next())
        .expect("migration 1 in schema.rs");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.db");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch(v1).expect("v1 schema");
    conn.pragma_update(None, "user_version", 1)
        .expect("version");
    let id = MessageId::first_at(T0).as_i64();
    conn.execute_batch(&format!(
        "INSERT INTO message (id, dest, sender, route, class, priority, encoding, split, options,
            dlr, text, parts, state, accepted_at, submitted_at, done_at)
         VALUES ({id}, '+46700000001', 'ACME', 'default', 0, 0, 'gsm7', 'udh8', '{{}}', 1, 'hi',
            2, 2, {T0}, {T0}, {T0});
         INSERT INTO part (message_id, n, route, priority, state, data_coding, esm_class, segment,
            smsc, smsc_id, smsc_key, attempts, stat, acked_at, done_at)
         VALUES ({id}, 1, 'default', 0, 4, 0, 64, x'00', 'op-a', 'A1', 'a1', 1, 'DELIVRD', {T0}, {T0}),
                ({id}, 2, 'default', 0, 4, 0, 64, x'00', 'op-a', 'A2', 'a2', 1, 'DELIVRD', {T0}, {T0});
         INSERT INTO dlr_log (at, smsc, smsc_id, smsc_key, fp, raw, stat, done_date, outcome,
            message_id, part_n)
         VALUES ({T0}, 'op-a', 'a1', 'a1', 11, x'00', 'DELIVRD', '2026-01-01T00:01:00', 4, {id}, 1),
                ({T0}, 'op-a', 'a2', 'a2', 12, x'00', 'DELIVRD', NULL, 4, {id}, 2);
         INSERT INTO message (id, dest, sender, route, class, priority, valid_until, encoding,
            split, options, dlr, text, parts, state, accepted_at)
         VALUES ({queued}, '+46700000003', 'ACME', 'old', 0, 0, {T0} + 1000, 'gsm7', 'udh8',
            '{{}}', 1, 'late', 1, 0, {T0});
         INSERT INTO part (message_id, n, route, priority, state, data_coding, esm_class, segment)
         VALUES ({queued}, 1, 'old', 0, 0, 0, 0, x'00');
         INSERT INTO optout (number, keyword, at, smsc) VALUES ('+46700000009', 'STOP', {T0}, 'op-a');",
        queued = id + 1
    ))
    .expect("v1 rows");
    drop(conn);

    let (store, rec) = open_with(&path, Settings::default());
    // 2 (receipt columns), 3 (rerouted_from), 4 (the done_at index for status), 5 (the parts'
    // validity and the expiry indexes), 6 (kept parts of concatenated MO), 7 (opt-out
    // scopes, cap counts), 8 (held_until) and 9 (receipt hashes).
    assert_eq!(rec.migrations_applied, 8, "migrations 2 to 9");
    // An opt-out from before scopes is global: every sender's marketing is refused.
    let scope = store
        .is_opted_out("+46700000009", "72000")
        .wait()
        .expect("read");
    assert_eq!(scope.as_deref(), Some(GLOBAL_SCOPE));
    let m = store
        .message(MessageId::from_i64(id))
        .wait()
        .expect("read")
        .expect("found");
    assert_eq!(m.state, MessageState::Delivered);
    assert_eq!(
        m.receipts.len(),
        2,
        "receipts found through the migrated parts"
    );
    assert_eq!(
        m.receipts[0].done_date.as_deref(),
        Some("2026-01-01T00:01:00")
    );
    // And new messages run their whole lifecycle on the migrated file.
    let a = store.accept(msg("+46700000002", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    ack(&store, parts[0].part, "op-a", "b1", IdRule::Same);
    let r = store
        .record_receipt(receipt(
            "op-a",
            IdRule::Same,
            &dlr_text("b1", "DELIVRD"),
            ReceiptTlvs::default(),
        ))
        .wait()
        .expect("receipt");
    assert!(matches!(r, ReceiptRecorded::Matched(ref x) if x.part.message == a.id));
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(
        m.receipts[0].done_date.as_deref(),
        Some("2026-01-01T00:01:00")
    );
    // A message queued before the migration keeps its validity (the parts got it).
    let e = store
        .expire(T0 + 2_000, 3_600_000, 100)
        .wait()
        .expect("expire");
    assert_eq!(e.expired, 1);
    let m = store
        .message(MessageId::from_i64(id + 1))
        .wait()
        .expect("read")
        .expect("found");
    assert_eq!(m.state, MessageState::Expired);
}

/// A store file at schema version `v`: the first `v` migrations as shipped, taken from the
/// source and applied by hand.
fn store_at_version(path: &Path, v: usize) -> rusqlite::Connection {
    let schema = include_str!("../src/store/sqlite/schema.rs");
    let conn = rusqlite::Connection::open(path).expect("open");
    for sql in schema.split("r#\"").skip(1).take(v) {
        let sql = sql.split("\"#").next().expect("migration end");
        conn.execute_batch(sql).expect("migration");
    }
    conn.pragma_update(None, "user_version", v as i64)
        .expect("version");
    conn
}

#[test]
fn a_version_8_store_finds_acknowledged_parts_by_receipt_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v8.db");
    let conn = store_at_version(&path, 8);
    let id = MessageId::first_at(T0).as_i64();
    // Two single-part messages as version 8 left them: one acknowledged and waiting for its
    // receipt (its key stored as text), one sent back to the queue after an acknowledgement
    // whose key it still holds.
    conn.execute_batch(&format!(
        "INSERT INTO message (id, dest, sender, route, class, priority, encoding, split, options,
            dlr, text, parts, state, accepted_at)
         VALUES ({id}, '+46700000001', 'ACME', 'default', 0, 0, 'gsm7', 'udh8', '{{}}', 1, 'hi',
            1, 0, {T0}),
                ({requeued}, '+46700000002', 'ACME', 'default', 0, 0, 'gsm7', 'udh8', '{{}}', 1,
            'hi', 1, 0, {T0});
         INSERT INTO part (message_id, n, route, priority, state, data_coding, esm_class, segment,
            smsc, smsc_id, smsc_key, attempts, acked_at)
         VALUES ({id}, 1, 'default', 0, 3, 0, 0, x'00', 'op-a', '00A1', 'a1', 1, {T0}),
                ({requeued}, 1, 'default', 0, 0, 0, 0, x'00', 'op-a', 'C1', 'c1', 1, NULL);",
        requeued = id + 1
    ))
    .expect("v8 rows");
    drop(conn);

    let (store, rec) = open_with(&path, Settings::default());
    assert_eq!(rec.migrations_applied, 1, "migration 9");
    // The migration gave the acknowledged part its hash: its receipt finds it.
    let r = delivrd(&store, "op-a", "A1");
    assert!(
        matches!(r, ReceiptRecorded::Matched(ref m) if m.part.message.as_i64() == id
            && m.state == MessageState::Delivered),
        "{r:?}"
    );
    // The requeued part is acknowledged again under a new id: the key stored by version 8
    // must not hide it from the new id's receipt.
    let parts = claim_all(&store, "default");
    assert_eq!(parts.len(), 1);
    ack(&store, parts[0].part, "op-a", "D1", IdRule::Same);
    let r = delivrd(&store, "op-a", "D1");
    assert!(
        matches!(r, ReceiptRecorded::Matched(ref m) if m.part == parts[0].part),
        "{r:?}"
    );
}

#[test]
fn a_receipt_hash_collision_never_matches_the_wrong_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = open(&path);
    let first = store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let second = store.accept(msg("+46700000002", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    assert_eq!(parts.len(), 2);
    ack(&store, parts[0].part, "op-a", "A1", IdRule::Same);
    ack(&store, parts[1].part, "op-a", "B1", IdRule::Same);
    drop(store);
    // FNV-1a collisions exist but none is at hand: give the newer part the older one's hash,
    // as a colliding id would have. Of two parts under one hash the newest is taken first.
    let conn = rusqlite::Connection::open(&path).expect("open");
    let n = conn
        .execute(
            "UPDATE part SET smsc_hash = (SELECT smsc_hash FROM part WHERE message_id = ?1)
             WHERE message_id = ?2",
            [first.id.as_i64(), second.id.as_i64()],
        )
        .expect("collide");
    assert_eq!(n, 1);
    drop(conn);

    let store = open(&path);
    let r = delivrd(&store, "op-a", "A1");
    assert!(
        matches!(r, ReceiptRecorded::Matched(ref m) if m.part.message == first.id),
        "{r:?}"
    );
    let m = store
        .message(second.id)
        .wait()
        .expect("read")
        .expect("found");
    assert_eq!(
        m.state,
        MessageState::Submitted,
        "the other part is untouched"
    );
}

/// A receipt recorded under a reroute rule.
fn receipt_rr(smsc: &str, id: &str, stat: &str, rule: &RerouteRule) -> IncomingReceipt {
    let mut r = receipt(
        smsc,
        IdRule::Same,
        &dlr_text(id, stat),
        ReceiptTlvs::default(),
    );
    r.reroute = rule.clone();
    r
}

fn record(store: &Store, r: IncomingReceipt) -> ReceiptRecorded {
    store.record_receipt(r).wait().expect("receipt durable")
}

/// Records a DELIVRD receipt from `smsc` for id `id` (ids as the SMSC sent them: `IdRule::Same`).
fn delivrd(store: &Store, smsc: &str, id: &str) -> ReceiptRecorded {
    record(
        store,
        receipt(
            smsc,
            IdRule::Same,
            &dlr_text(id, "DELIVRD"),
            ReceiptTlvs::default(),
        ),
    )
}

fn reroute_undelivered_resends_once_through_the_next_smsc(fx: &Fx) {
    let store = fx.open();
    let both = ["op-a".to_owned(), "op-b".to_owned()];
    let rule = RerouteRule::none().with_route("default", &both);

    // UNDELIV from op-a: logged, the part goes back to the queue, the message is queued again.
    let a = store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    assert_eq!(parts[0].rerouted_from, None);
    ack(&store, parts[0].part, "op-a", "a1", IdRule::Same);
    let rec = record(&store, receipt_rr("op-a", "a1", "UNDELIV", &rule));
    let ReceiptRecorded::Rerouted { applied, reroute } = rec else {
        panic!("not rerouted: {rec:?}");
    };
    assert_eq!(applied.part, parts[0].part);
    assert_eq!(reroute.part, parts[0].part);
    assert_eq!(applied.state, MessageState::Queued);
    assert_eq!(
        (
            reroute.route.as_str(),
            reroute.from_smsc.as_str(),
            reroute.to_smsc.as_str(),
            reroute.stat.as_str()
        ),
        ("default", "op-a", "op-b", "UNDELIV")
    );
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(m.state, MessageState::Queued);
    assert_eq!(m.parts[0].state, PartState::Queued);
    assert_eq!(m.receipts.len(), 1, "the UNDELIV is in the log");
    assert_eq!(m.receipts[0].stat, "UNDELIV");
    // Its `dlr` event says the part is queued again and where it goes.
    let events = store.events_after(0, 100).wait().expect("events");
    let ev = events
        .iter()
        .map(|e| e.fields())
        .find(|f| f["stat"] == "UNDELIV")
        .expect("the reroute's dlr event");
    let got = [
        &ev["state"],
        &ev["part_state"],
        &ev["smsc"],
        &ev["rerouted_to"],
    ];
    assert_eq!(got, ["queued", "queued", "op-a", "op-b"], "{ev}");
    // The SMSC re-sending the same receipt changes nothing.
    assert!(matches!(
        record(&store, receipt_rr("op-a", "a1", "UNDELIV", &rule)),
        ReceiptRecorded::Duplicate { .. }
    ));
    // The resend says which SMSC to avoid.
    let again = claim_all(&store, "default");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].part, parts[0].part);
    assert_eq!(again[0].rerouted_from.as_deref(), Some("op-a"));
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        ack(&store, again[0].part, "op-b", "b1", IdRule::Same),
        MessageState::Submitted
    );
    // Not twice: op-b's UNDELIV is final.
    let rec = record(&store, receipt_rr("op-b", "b1", "UNDELIV", &rule));
    assert!(
        matches!(rec, ReceiptRecorded::Matched(ref x) if x.state == MessageState::Undeliverable),
        "{rec:?}"
    );
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(m.id, a.id);
    assert_eq!(m.state, MessageState::Undeliverable);
    assert_eq!(m.parts[0].smsc.as_deref(), Some("op-b"));
    assert_eq!(m.receipts.len(), 2);
    assert!(claim_all(&store, "default").is_empty());

    // REJECTD on one part of a two-part message: only that part goes again, and the message
    // reports the resend's outcome.
    let b = store.accept(msg("+46700000002", 2)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    assert_eq!(parts.len(), 2);
    ack(&store, parts[0].part, "op-a", "c1", IdRule::Same);
    ack(&store, parts[1].part, "op-a", "c2", IdRule::Same);
    assert!(matches!(
        record(&store, receipt_rr("op-a", "c1", "DELIVRD", &rule)),
        ReceiptRecorded::Matched(ref x) if x.state == MessageState::Submitted
    ));
    assert!(matches!(
        record(&store, receipt_rr("op-a", "c2", "REJECTD", &rule)),
        ReceiptRecorded::Rerouted { ref applied, .. } if applied.state == MessageState::Queued
    ));
    let again = claim_all(&store, "default");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].part, parts[1].part);
    ack(&store, again[0].part, "op-b", "d2", IdRule::Same);
    assert!(matches!(
        record(&store, receipt_rr("op-b", "d2", "DELIVRD", &rule)),
        ReceiptRecorded::Matched(ref x) if x.state == MessageState::Delivered
    ));
    let m = store.message(b.id).wait().expect("read").expect("found");
    assert_eq!(m.state, MessageState::Delivered);
    let smscs: Vec<_> = m.parts.iter().map(|p| p.smsc.as_deref()).collect();
    assert_eq!(smscs, [Some("op-a"), Some("op-b")]);
}

fn undelivered_is_final_without_a_reroute_rule_for_the_route(fx: &Fx) {
    let store = fx.open();
    let both = ["op-a".to_owned(), "op-b".to_owned()];
    let cases = [
        (
            "no rule",
            RerouteRule::none(),
            "UNDELIV",
            MessageState::Undeliverable,
        ),
        (
            "another route reroutes",
            RerouteRule::none().with_route("nordics", &both),
            "UNDELIV",
            MessageState::Undeliverable,
        ),
        (
            "no other SMSC",
            RerouteRule::none().with_route("default", &["op-a".to_owned()]),
            "REJECTD",
            MessageState::Rejected,
        ),
        (
            "EXPIRED is not rerouted",
            RerouteRule::none().with_route("default", &both),
            "EXPIRED",
            MessageState::Expired,
        ),
    ];
    for (i, (what, rule, stat, want)) in cases.into_iter().enumerate() {
        let a = store
            .accept(msg(&format!("+4670000001{i}"), 1))
            .wait()
            .expect("accept");
        let parts = claim_all(&store, "default");
        assert_eq!(parts.len(), 1, "{what}");
        let id = format!("x{i}");
        ack(&store, parts[0].part, "op-a", &id, IdRule::Same);
        let rec = record(&store, receipt_rr("op-a", &id, stat, &rule));
        assert!(
            matches!(rec, ReceiptRecorded::Matched(ref x) if x.state == want),
            "{what}: {rec:?}"
        );
        let m = store.message(a.id).wait().expect("read").expect("found");
        assert_eq!(m.state, want, "{what}");
        assert!(claim_all(&store, "default").is_empty(), "{what}");
    }
}

fn a_receipt_before_the_response_is_rerouted_at_the_response(fx: &Fx) {
    let store = fx.open();
    let rule = RerouteRule::none().with_route("default", &["op-a".to_owned(), "op-b".to_owned()]);
    let a = store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    // The UNDELIV comes first: held, as no part has that id yet.
    assert!(matches!(
        record(&store, receipt_rr("op-a", "e1", "UNDELIV", &rule)),
        ReceiptRecorded::Held { .. }
    ));
    let res = store
        .acked(Ack {
            part: parts[0].part,
            smsc: "op-a".into(),
            smsc_id: "e1".into(),
            rule: IdRule::Same,
            now_ms: T0 + 30,
            reroute: rule.clone(),
        })
        .wait()
        .expect("ack durable");
    assert_eq!(res.state, MessageState::Queued);
    assert_eq!(res.held_receipts.len(), 1);
    let r = res.rerouted.expect("rerouted at the response");
    assert_eq!((r.from_smsc.as_str(), r.to_smsc.as_str()), ("op-a", "op-b"));
    let again = claim_all(&store, "default");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].rerouted_from.as_deref(), Some("op-a"));
    ack(&store, again[0].part, "op-b", "f1", IdRule::Same);
    assert!(matches!(
        record(&store, receipt_rr("op-b", "f1", "DELIVRD", &rule)),
        ReceiptRecorded::Matched(ref x) if x.state == MessageState::Delivered
    ));
    let m = store.message(a.id).wait().expect("read").expect("found");
    assert_eq!(m.state, MessageState::Delivered);
    assert_eq!(m.receipts.len(), 2);
}

#[test]
fn an_event_line_is_the_body_with_event_seq_and_at() {
    let ev = smppd::store::Event {
        seq: 7,
        kind: "dlr".into(),
        at: 1_700_000_000_000,
        body: r#"{"id":"1a2","part":1,"stat":"DELIVRD"}"#.into(),
    };
    let line = ev.to_line();
    assert!(line.ends_with("}\n"), "{line:?}");
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(v["event"], "dlr");
    assert_eq!(v["seq"], 7);
    assert_eq!(v["at"], 1_700_000_000_000i64);
    assert_eq!(v["id"], "1a2");
    assert_eq!(v["stat"], "DELIVRD");
    // An empty object and a damaged (non-object) body still give one valid JSON line.
    for body in ["{}", "not json"] {
        let ev = smppd::store::Event {
            body: body.into(),
            ..ev.clone()
        };
        let v: serde_json::Value = serde_json::from_str(&ev.to_line()).expect("a JSON line");
        assert_eq!(v["seq"], 7);
        if body == "not json" {
            assert_eq!(v["body"], "not json");
        }
    }
    // A kind that is not a plain word is escaped, not written raw.
    let odd = smppd::store::Event {
        kind: "we\"ird".into(),
        ..ev.clone()
    };
    let v: serde_json::Value = serde_json::from_str(&odd.to_line()).expect("a JSON line");
    assert_eq!(v["event"], "we\"ird");
}

/// A receipt with no message id at all (unparseable) is logged unmatched under a key no part
/// can have: not even a part whose SMSC returned an empty id, then or later.
fn a_receipt_without_an_id_is_kept_unmatched_and_never_matches(fx: &Fx) {
    let store = fx.open();
    store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    ack(&store, parts[0].part, "op-a", "", IdRule::Same);
    let text = "stat:DELIVRD err:000 text:no id here";
    let no_id = || {
        let r = smppd::receipt::parse_receipt_fields(text.as_bytes(), &ReceiptTlvs::default());
        assert!(r.id.is_empty());
        IncomingReceipt {
            smsc: "op-a".into(),
            rule: IdRule::Same,
            outcome: final_outcome(r.stat, AcceptedIs::default()),
            receipt: r,
            raw: text.as_bytes().to_vec(),
            tlv_state: None,
            tlv_network_error: None,
            now_ms: T0 + 20,
            reroute: RerouteRule::none(),
        }
    };
    let first = store.record_receipt(no_id()).wait().expect("logged");
    let ReceiptRecorded::Held { log_id } = first else {
        panic!("{first:?}")
    };
    // The same receipt again is recognised, not logged twice.
    assert_eq!(
        store.record_receipt(no_id()).wait().expect("logged"),
        ReceiptRecorded::Duplicate { log_id }
    );
    // A part acknowledged with an empty id later does not take it either.
    store.accept(msg("+46700000002", 1)).wait().expect("accept");
    let later = claim_all(&store, "default");
    assert_eq!(
        ack(&store, later[0].part, "op-a", "", IdRule::Same),
        MessageState::Submitted
    );
    for p in [parts[0].part, later[0].part] {
        let m = store
            .message(p.message)
            .wait()
            .expect("read")
            .expect("found");
        assert_eq!(m.state, MessageState::Submitted);
        assert!(m.receipts.is_empty());
    }
    assert_eq!(store.stats().wait().expect("stats").unmatched_receipts, 1);
}

/// SQLite is one node owning every SMSC: `claim_owned` is `claim`, nothing has a target to move
/// or a lease to lose, and a failover is a plain requeue (dispatch keeps the refusals).
#[test]
fn sqlite_answers_the_cluster_methods_as_a_single_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("s.db"));
    store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let owned = vec![("op-x".to_owned(), 9)];
    let parts = store.claim_owned("default", owned, 10, T0).wait();
    let parts = parts.expect("claim");
    assert_eq!(parts.len(), 1, "every part is owned");
    assert_eq!(
        (parts[0].target.as_ref(), parts[0].refused.len()),
        (None, 0)
    );
    assert_eq!(
        store.requeue_in_flight("op-a", 5).wait().expect("requeue"),
        0
    );
    let state = store
        .failed(Failure {
            part: parts[0].part,
            smsc: Some("op-a".into()),
            status: Some(0x58),
            disposition: Disposition::Failover { to: "op-b".into() },
            now_ms: T0 + 1,
        })
        .wait()
        .expect("failover");
    assert_eq!(state, MessageState::Queued);
    assert_eq!(
        store
            .retarget("default", "op-a", "op-b", 10)
            .wait()
            .expect("retarget"),
        0
    );
    let again = claim_all(&store, "default");
    assert_eq!(again.len(), 1);
    // As `Requeue { maybe_sent: false }`: the attempt is given back.
    assert_eq!((again[0].attempts, again[0].maybe_sent), (1, false));
}

/// A marketing message to `to` under one cap: at most `max` per `per_ms`, accepted at `at`.
fn capped(to: &str, max: u32, per_ms: i64, at: i64) -> NewMessage {
    NewMessage {
        now_ms: at,
        caps: vec![CapLimit {
            key: "marketing".into(),
            scope: to.into(),
            max,
            per_ms,
            label: format!("max = {max}"),
        }],
        ..msg(to, 1)
    }
}

fn cap_refusal(r: Result<smppd::store::Accepted, StoreError>) -> smppd::store::CapRefusal {
    match r {
        Err(StoreError::Capped(c)) => c,
        other => panic!("not refused by the cap: {other:?}"),
    }
}

fn caps_are_checked_and_counted_with_the_accept(fx: &Fx) {
    let store = fx.open();
    let to = "+46701110001";
    store.accept(capped(to, 2, 1_000, T0)).wait().expect("1st");
    store
        .accept(capped(to, 2, 1_000, T0 + 10))
        .wait()
        .expect("2nd");
    let r = cap_refusal(store.accept(capped(to, 2, 1_000, T0 + 20)).wait());
    assert_eq!((r.allowed_at_ms, r.label.as_str()), (T0 + 1_000, "max = 2"));
    // The refusal did not count: once the first accept left the window, one more fits.
    store
        .accept(capped(to, 2, 1_000, T0 + 1_000))
        .wait()
        .expect("freed");
    let r = cap_refusal(store.accept(capped(to, 2, 1_000, T0 + 1_001)).wait());
    assert_eq!(r.allowed_at_ms, T0 + 1_010);
    // Accepts queued at once (one batch) are decided in order: exactly `max` pass.
    let burst = "+46701110002";
    let pending: Vec<_> = (0..10)
        .map(|_| store.accept(capped(burst, 3, 60_000, T0)))
        .collect();
    let results: Vec<_> = pending.into_iter().map(|p| p.wait()).collect();
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        3,
        "{results:?}"
    );
    // A repeated idempotency key is the first message again, not a refusal, and counts once.
    let keyed = |key: &str, at: i64| NewMessage {
        key: Some(key.into()),
        ..capped("+46701110003", 2, 60_000, at)
    };
    let first = store.accept(keyed("k1", T0)).wait().expect("first");
    for _ in 0..3 {
        let again = store.accept(keyed("k1", T0 + 1)).wait().expect("duplicate");
        assert!(again.duplicate && again.id == first.id);
    }
    store
        .accept(keyed("k2", T0 + 2))
        .wait()
        .expect("second counts");
    let again = store
        .accept(keyed("k1", T0 + 3))
        .wait()
        .expect("a duplicate of a full cap");
    assert!(again.duplicate);
    cap_refusal(store.accept(keyed("k3", T0 + 3)).wait());
    // The counts are in the store: a reopened store still refuses.
    drop(store);
    let store = fx.open();
    let r = cap_refusal(store.accept(capped(to, 2, 1_000, T0 + 1_002)).wait());
    assert_eq!(r.allowed_at_ms, T0 + 1_010);
    // Pruning drops counts no cap reads any more.
    let retention = Retention {
        cap_hits_ms: Some(1_000),
        ..Retention::default()
    };
    let pruned = store
        .prune(retention, T0 + 5_000, 100)
        .wait()
        .expect("prune");
    assert_eq!(pruned, 8, "3 + 3 + 2 counts, each accept counted once");
    assert_eq!(
        store
            .prune(retention, T0 + 5_000, 100)
            .wait()
            .expect("prune"),
        0
    );
}

fn optouts_are_kept_per_scope(fx: &Fx) {
    let store = fx.open();
    let n = "+46701110010";
    let opted = |scope: &str| store.is_opted_out(n, scope).wait().expect("read");
    assert!(
        store
            .optout_add(n.into(), "72000".into(), T0)
            .wait()
            .expect("add")
    );
    assert!(
        !store
            .optout_add(n.into(), "72000".into(), T0)
            .wait()
            .expect("again")
    );
    assert_eq!(opted("72000").as_deref(), Some("72000"));
    assert_eq!(opted("73000"), None);
    assert!(
        store
            .optout_add(n.into(), GLOBAL_SCOPE.into(), T0)
            .wait()
            .expect("add all")
    );
    assert_eq!(opted("73000").as_deref(), Some(GLOBAL_SCOPE));
    assert_eq!(
        opted("72000").as_deref(),
        Some(GLOBAL_SCOPE),
        "the global entry first"
    );
    // An MO's change applies to its own scope only.
    let mo = |text: &str, optout| IncomingMo {
        smsc: "op-a".into(),
        from: n.into(),
        to: "74000".into(),
        text: text.into(),
        parts: 1,
        optout: Some(optout),
        now_ms: T0,
    };
    let stop = OptOutChange::Add {
        keyword: "STOP".into(),
        scope: "74000".into(),
    };
    store.record_mo(mo("STOP", stop)).wait().expect("mo");
    let start = OptOutChange::Remove {
        scope: "72000".into(),
    };
    let started = store.record_mo(mo("START", start)).wait().expect("mo");
    // The `mo` event names the change and its scope.
    let events = store
        .events_after(started.seq - 1, 1)
        .wait()
        .expect("events");
    let body = events[0].fields();
    assert_eq!(
        (body["optout"].as_str(), body["optout_scope"].as_str()),
        (Some("removed"), Some("72000"))
    );
    let list = store
        .optout_list(String::new(), None, 10)
        .wait()
        .expect("list");
    let scopes: Vec<(&str, &str, &str)> = list
        .iter()
        .map(|e| (e.number.as_str(), e.scope.as_str(), e.keyword.as_str()))
        .collect();
    // In (number, scope) order: digits sort before letters.
    assert_eq!(scopes, [(n, "74000", "STOP"), (n, GLOBAL_SCOPE, "manual")]);
    // Paging by (number, scope): one entry per page, nothing skipped or repeated.
    let first = store
        .optout_list(String::new(), None, 1)
        .wait()
        .expect("page");
    let next = store
        .optout_list(first[0].number.clone(), Some(first[0].scope.clone()), 1)
        .wait()
        .expect("page");
    let paged = [first[0].scope.as_str(), next[0].scope.as_str()];
    assert_eq!(paged, [list[0].scope.as_str(), list[1].scope.as_str()]);
    // Without a scope, `after` skips every entry of that number.
    assert!(
        store
            .optout_list(n.into(), None, 10)
            .wait()
            .expect("page")
            .is_empty()
    );
    assert!(
        store
            .optout_remove(n.into(), GLOBAL_SCOPE.into())
            .wait()
            .expect("remove")
    );
    assert_eq!(opted("72000"), None);
    assert_eq!(opted("74000").as_deref(), Some("74000"));
}

/// A message held at accept (a send window, `send_at`) records the hold, waits with nothing of
/// it claimable before its time, reads as scheduled, and is claimed from its time on; a held
/// message whose validity passes first is expired by the sweep without ever being claimed.
fn a_held_message_is_claimed_only_from_its_time(fx: &Fx) {
    let store = fx.open();
    let mut held = msg("+46700000001", 2);
    held.held_until_ms = Some(T0 + 5_000);
    let held = store.accept(held).wait().expect("accept");
    let now = store.accept(msg("+46700000002", 1)).wait().expect("accept");
    let mut lapses = msg("+46700000003", 1);
    lapses.held_until_ms = Some(T0 + 5_000);
    lapses.valid_until_ms = Some(T0 + 3_000);
    let lapses = store.accept(lapses).wait().expect("accept");

    let m = store.message(held.id).wait().expect("read").expect("found");
    assert_eq!(m.held_until, Some(T0 + 5_000));
    assert!(
        m.parts.iter().all(|p| p.state == PartState::Waiting),
        "{m:?}"
    );
    assert!(m.is_scheduled(T0 + 100));
    assert_eq!(m.shown_state(T0 + 100), "scheduled");
    assert!(!m.is_scheduled(T0 + 5_000), "no longer held at its time");
    let plain = store.message(now.id).wait().expect("read").expect("found");
    assert_eq!(
        (plain.held_until, plain.shown_state(T0 + 100)),
        (None, "queued")
    );
    // Held parts are counted apart from the queue: they are not a backlog.
    let depth = store.queue_depth(T0 + 100).wait().expect("depth");
    assert_eq!(depth.len(), 1, "{depth:?}");
    assert_eq!(
        (depth[0].parts, depth[0].scheduled, depth[0].oldest_ms),
        (1, 3, Some(now.id.millis())),
        "{depth:?}"
    );

    let first = store.claim("default", 10, T0 + 100).wait().expect("claim");
    let ids: Vec<MessageId> = first.iter().map(|p| p.part.message).collect();
    assert_eq!(ids, vec![now.id], "only the message not held");
    assert!(
        store
            .claim("default", 10, T0 + 4_999)
            .wait()
            .expect("claim")
            .is_empty(),
        "nothing held is claimable before its time"
    );
    let e = store
        .expire(T0 + 4_000, 3_600_000, 100)
        .wait()
        .expect("expire");
    assert_eq!(
        e.finished,
        vec![lapses.id],
        "a held part expires at its validity"
    );
    let at = store
        .claim("default", 10, T0 + 5_000)
        .wait()
        .expect("claim");
    let parts: Vec<PartRef> = at.iter().map(|p| p.part).collect();
    assert_eq!(
        parts,
        vec![
            PartRef {
                message: held.id,
                n: 1
            },
            PartRef {
                message: held.id,
                n: 2
            }
        ]
    );
    assert_eq!(at[0].attempts, 1, "a hold is not an attempt");
    let m = store.message(held.id).wait().expect("read").expect("found");
    assert_eq!(
        m.shown_state(T0 + 5_000),
        "queued",
        "released: reads as before"
    );
}

/// A claim wakes at most `WAKE_BATCH` waiting parts, earliest `ready_at` first: releasing many
/// held messages at once is several bounded rounds, not one giant update.
fn held_parts_wake_in_bounded_rounds_earliest_first(fx: &Fx) {
    let store = fx.open();
    let batch = usize::try_from(smppd::store::WAKE_BATCH).expect("batch");
    let pending: Vec<_> = (0..batch + 50)
        .map(|i| {
            let mut m = msg(&format!("+4670{i:07}"), 1);
            m.held_until_ms = Some(T0 + 5_000);
            store.accept(m)
        })
        .collect();
    for p in pending {
        p.wait().expect("accept");
    }
    // Accepted last, held until earlier: woken in the first round.
    let mut early = msg("+46799999999", 1);
    early.held_until_ms = Some(T0 + 4_000);
    let early = store.accept(early).wait().expect("accept");

    let round = |limit| {
        store
            .claim("default", limit, T0 + 5_000)
            .wait()
            .expect("claim")
    };
    let first = round(4 * batch);
    assert_eq!(
        first.len(),
        batch,
        "one claim wakes at most WAKE_BATCH parts"
    );
    assert!(
        first.iter().any(|p| p.part.message == early.id),
        "the earliest ready_at is woken first"
    );
    let second = round(4 * batch);
    assert_eq!(second.len(), 51, "the rest in the next round");
    assert!(round(4 * batch).is_empty());
}

/// An MO with `text`, at `T0 + i`.
fn mo_n(i: usize, text: &str) -> IncomingMo {
    IncomingMo {
        smsc: "op-a".into(),
        from: format!("+4670{i:07}"),
        to: "72000".into(),
        text: text.into(),
        parts: 1,
        optout: None,
        now_ms: T0 + i as i64,
    }
}

/// Records `n` MOs queued at once (so several share a commit), from number `first` on.
fn mo_burst(store: &Store, first: usize, n: usize, text: &str) -> Vec<Result<i64, StoreError>> {
    let pending: Vec<_> = (first..first + n)
        .map(|i| store.record_mo(mo_n(i, text)))
        .collect();
    pending
        .into_iter()
        .map(|p| p.wait().map(|r| r.seq))
        .collect()
}

/// What a subscriber reads from every point: `events_after(after, page)` for each `after` from
/// 0 to `last`. (Not to `last_seq()`: the watch moves just after the writes are answered.)
fn reads_from_every_point(store: &Store, last: i64, page: usize) -> Vec<Vec<smppd::store::Event>> {
    (0..=last)
        .map(|after| store.events_after(after, page).wait().expect("events"))
        .collect()
}

/// Events of every kind (mo, dlr, state), some sharing commits, read while the store runs and
/// again from the rows after a reopen: the same seqs, kinds, times and bodies, from every point
/// a subscriber may resume at, in pages.
fn events_read_live_are_the_rows_read_back_after_a_reopen(fx: &Fx) {
    let store = fx.open();
    assert!(mo_burst(&store, 0, 5, "burst").iter().all(Result::is_ok));
    let a = store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let b = store.accept(msg("+46700000002", 1)).wait().expect("accept");
    let parts = claim_all(&store, "default");
    assert_eq!(parts.len(), 2);
    ack(&store, parts[0].part, "op-a", "E1", IdRule::Same);
    let fail = Failure {
        part: parts[1].part,
        smsc: None,
        status: Some(0x0b),
        disposition: Disposition::Permanent,
        now_ms: T0 + 30,
    };
    let (r, f) = (
        store.record_receipt(receipt(
            "op-a",
            IdRule::Same,
            &dlr_text("E1", "DELIVRD"),
            ReceiptTlvs::default(),
        )),
        store.failed(fail),
    );
    r.wait().expect("receipt");
    f.wait().expect("failed");
    assert!(mo_burst(&store, 10, 3, "after").iter().all(Result::is_ok));
    let live = store.events_after(0, 100).wait().expect("events");
    let kinds: Vec<&str> = live.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(live.len(), 10, "{kinds:?}");
    for kind in ["mo", "dlr", "state"] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    let ids = [a.id.to_string(), b.id.to_string()];
    assert!(
        live.iter()
            .any(|e| e.kind == "dlr" && e.fields()["id"] == ids[0])
    );
    assert!(
        live.iter()
            .any(|e| e.kind == "state" && e.fields()["id"] == ids[1])
    );
    let last = live[9].seq;
    let live_pages = reads_from_every_point(&store, last, 3);
    drop(store);
    let store = fx.open();
    assert_eq!(store.events_after(0, 100).wait().expect("events"), live);
    assert_eq!(reads_from_every_point(&store, last, 3), live_pages);
}

/// SQLite options with a small event ring.
fn open_with_ring(path: &Path, ring: usize, settings: Settings) -> Store {
    let mut o = SqliteOptions::new(path);
    o.event_ring = ring;
    o.settings = settings;
    Store::open_sqlite(o).expect("store opens").0
}

/// More events than the ring holds, in commits of different sizes: what a subscriber reads
/// from any point (inside the ring, or far behind it: from the store) equals the rows read back
/// after a reopen.
#[test]
fn the_event_ring_wraps_and_a_subscriber_far_behind_reads_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = open_with_ring(&path, 8, Settings::default());
    let mut n = 0;
    for burst in [1, 3, 7, 2, 9, 1, 4, 6, 1, 2] {
        assert!(mo_burst(&store, n, burst, "wrap").iter().all(Result::is_ok));
        n += burst;
    }
    let last = n as i64;
    let live = reads_from_every_point(&store, last, 5);
    drop(store);
    let store = open(&path);
    assert_eq!(reads_from_every_point(&store, last, 5), live);
    assert!(live.iter().all(|page| !page.is_empty() || page == &live[n]));
    drop(store);
    // No ring at all: every read is the store's, new events included.
    let store = open_with_ring(&path, 0, Settings::default());
    assert!(mo_burst(&store, n, 3, "no ring").iter().all(Result::is_ok));
    let all = reads_from_every_point(&store, last + 3, 5);
    // Pages that were full then are the same now.
    assert_eq!(all[..=n - 5], live[..=n - 5]);
    assert_eq!(all[n].len(), 3);
    assert_eq!(all[n][2].fields()["text"], "no ring");
}

/// A batch rolled back (the size cap reached: disk full) publishes none of its events, though
/// it inserted them and the next commit takes their seqs: the events read live equal the rows.
#[test]
fn a_rolled_back_batch_publishes_no_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let small = Settings {
        max_size_bytes: Some(256 * 1024),
        ..Settings::default()
    };
    let store = open_with_ring(&path, 64, small);
    let big = "x".repeat(3000);
    let mut refused = 0;
    let mut n = 0;
    while refused == 0 {
        let results = mo_burst(&store, n, 4, &big);
        n += 4;
        refused = results.iter().filter(|r| r.is_err()).count();
        assert!(n < 1000, "the size cap never hit");
    }
    store.reload(Settings::default()).wait().expect("reload");
    assert!(mo_burst(&store, n, 3, "after").iter().all(Result::is_ok));
    let live = store.events_after(0, 10_000).wait().expect("events");
    let last = live.last().expect("events").seq;
    let live_pages = reads_from_every_point(&store, last, 4);
    drop(store);
    let store = open(&path);
    let stored = store.events_after(0, 10_000).wait().expect("events");
    assert_eq!(live.len(), stored.len());
    assert_eq!(live, stored);
    assert_eq!(reads_from_every_point(&store, last, 4), live_pages);
}

/// Another connection holding the store's write lock: the writer waits for it, so writes queue
/// up in a known order however fast the machine is, until [`WriteLock::release`].
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn take(path: &Path) -> WriteLock {
        let conn = rusqlite::Connection::open(path).expect("second connection");
        conn.execute_batch("BEGIN IMMEDIATE").expect("write lock");
        WriteLock(conn)
    }

    fn release(self) {
        self.0.execute_batch("ROLLBACK").expect("lock released");
    }
}

/// Whether `a` is durable before `b` (both done by the time this looks counts as `a` first);
/// `a`'s result is checked by `check`.
fn durable_first<A, B>(
    a: smppd::store::Pending<A>,
    b: smppd::store::Pending<B>,
    check: impl FnOnce(A),
) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::select! {
            biased;
            a = a => {
                check(a.expect("durable"));
                true
            }
            _ = b => false,
        }
    })
}

/// SQLite's first lane: a write about work in flight (here an acknowledgement) queued behind
/// thousands of accepts is taken before them, so its SMSC is not kept waiting by the depth of the
/// accept queue. Another connection holds the write lock while the writes are queued, so the
/// queue is deep whatever the machine's speed; then the acknowledgement must be durable before
/// the 2,500th accept queued ahead of it (a batch holds at most 2,048 writes: in one queue that
/// accept's batch commits before the acknowledgement's).
#[test]
fn an_acknowledgement_does_not_wait_behind_queued_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = open(&path);
    store.accept(msg("+46700000001", 1)).wait().expect("accept");
    let part = claim_all(&store, "default")[0].part;
    let lock = WriteLock::take(&path);
    let mut accepts: Vec<_> = (0..6000)
        .map(|i| store.accept(msg(&format!("+4671{i:07}"), 1)))
        .collect();
    let acked = store.acked(Ack {
        part,
        smsc: "op-a".into(),
        smsc_id: "abc1".into(),
        rule: IdRule::Same,
        now_ms: T0 + 10,
        reroute: RerouteRule::none(),
    });
    lock.release();
    let later = accepts.remove(2500);
    assert!(
        durable_first(acked, later, |a| assert_eq!(
            a.state,
            MessageState::Submitted
        )),
        "the 2,500th accept was durable before the acknowledgement"
    );
    for p in accepts {
        p.wait().expect("accept durable");
    }
}

/// The first lane does not starve the channel either: writes about work in flight can come
/// back as fast as they fail (a full disk), so while thousands of them wait (here MO records,
/// queued while another connection holds the write lock), an accept queued among them still
/// gets its turn long before them: before the 4,500th, which no batch of at most 2,048 writes
/// starting with the first can hold (the writer takes a write from the channel after a run of
/// first-lane writes).
#[test]
fn an_accept_is_not_starved_by_writes_about_work_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let store = open(&path);
    let lock = WriteLock::take(&path);
    let mut mos: Vec<_> = (0..3000).map(|i| store.record_mo(mo_n(i, "hi"))).collect();
    let accepted = store.accept(msg("+46700000001", 1));
    mos.extend((3000..6000).map(|i| store.record_mo(mo_n(i, "hi"))));
    lock.release();
    let later = mos.remove(4500);
    assert!(
        durable_first(accepted, later, drop),
        "the 4,500th write about work in flight was durable before the accept"
    );
    for p in mos {
        p.wait().expect("mo durable");
    }
}
