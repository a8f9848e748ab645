//! The PostgreSQL store as a cluster sees it: several instances (stores) on one database.
//! Ids unique across instances, claims of owned SMSCs only, failover and retargeting, the claim
//! guard (a stale acknowledgement changes nothing), requeueing a dead owner's parts, receipts
//! and acknowledgements racing on two instances, events without gaps when transactions commit
//! out of order, a schema newer than the binary, and the database going away and coming back.
//!
//! Every test starts its own throwaway cluster (`support::pg`); a test that cannot start
//! PostgreSQL fails.

mod support;

use smppd::receipt::{AcceptedIs, IdRule, ReceiptTlvs, final_outcome, parse_receipt};
use smppd::store::{
    Ack, CapLimit, Disposition, Failure, IncomingMo, IncomingReceipt, MessageState, NewMessage,
    NewPart, PartRef, ReceiptRecorded, RerouteRule, Settings, Store, StoreError,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::pg::{Pg, StoreRuntime};

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Route `default` fails over from `op-a` to `op-b`.
fn settings() -> Settings {
    Settings {
        routes: Arc::new(vec![(
            "default".to_owned(),
            vec!["op-a".to_owned(), "op-b".to_owned()],
        )]),
        ..Settings::default()
    }
}

fn open(rt: &StoreRuntime, pg: &Pg, instance: &str) -> Store {
    rt.open(&pg.url(), instance, settings())
        .expect("store opens")
        .0
}

fn msg(to: &str) -> NewMessage {
    NewMessage {
        to: to.into(),
        from: "ACME".into(),
        route: "default".into(),
        encoding: "gsm7".into(),
        split: "udh8".into(),
        options: "{}".into(),
        dlr: true,
        text: "hello".into(),
        parts: vec![NewPart {
            data_coding: 0,
            esm_class: 0,
            segment: b"hello".to_vec(),
            sar_ref: None,
        }],
        now_ms: T0,
        ..NewMessage::default()
    }
}

fn ack(part: PartRef, id: &str) -> Ack {
    Ack {
        part,
        smsc: "op-a".into(),
        smsc_id: id.into(),
        rule: IdRule::Same,
        now_ms: T0 + 10,
        reroute: RerouteRule::none(),
    }
}

fn receipt(id: &str) -> IncomingReceipt {
    let text = format!(
        "id:{id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:hello"
    );
    let r = parse_receipt(text.as_bytes(), &ReceiptTlvs::default()).expect("receipt parses");
    IncomingReceipt {
        smsc: "op-a".into(),
        rule: IdRule::Same,
        outcome: final_outcome(r.stat, AcceptedIs::Final),
        receipt: r,
        raw: text.into_bytes(),
        tlv_state: None,
        tlv_network_error: None,
        now_ms: T0 + 20,
        reroute: RerouteRule::none(),
    }
}

fn owned(smsc: &str, epoch: i64) -> Vec<(String, i64)> {
    vec![(smsc.to_owned(), epoch)]
}

#[test]
fn ids_are_unique_across_instances_accepting_at_once() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let a = open(&rt, &pg, "a");
    let b = open(&rt, &pg, "b");
    let ids = std::thread::scope(|s| {
        let run = move |store: &Store| {
            let pending: Vec<_> = (0..1500)
                .map(|i| store.accept(msg(&format!("+4670{i:07}"))))
                .collect();
            pending
                .into_iter()
                .map(|p| p.wait().expect("accepted").id)
                .collect::<Vec<_>>()
        };
        let ta = s.spawn(move || run(&a));
        let tb = s.spawn(move || run(&b));
        let mut ids = ta.join().expect("a");
        ids.extend(tb.join().expect("b"));
        ids
    });
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3000, "two instances issued the same id");
    // Same millisecond for all: only the database counter tells them apart.
    assert!(ids.iter().all(|id| id.millis() == T0));
    assert_eq!(pg.psql("SELECT count(*) FROM message"), "3000");
}

/// A frequency cap: at most `max` accepts per `per_ms` for `to`.
fn capped(to: &str, max: u32, per_ms: i64, now_ms: i64) -> NewMessage {
    NewMessage {
        now_ms,
        caps: vec![CapLimit {
            key: "marketing".into(),
            scope: to.into(),
            max,
            per_ms,
            label: format!("max = {max}"),
        }],
        ..msg(to)
    }
}

/// Two instances accept for the same recipient at once, many times over: the cap is never
/// exceeded (the counter's advisory lock serializes the check and the count across instances),
/// and every refusal is the cap's.
#[test]
fn two_instances_racing_for_one_recipient_never_exceed_its_cap() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let a = open(&rt, &pg, "a");
    let b = open(&rt, &pg, "b");
    for round in 0..20i64 {
        let to = format!("+467011{round:05}");
        let at = T0 + round;
        let to = to.as_str();
        let run = move |store: &Store| {
            let pending: Vec<_> = (0..10)
                .map(|_| store.accept(capped(to, 3, 60_000, at)))
                .collect();
            let mut ok = 0;
            for p in pending {
                match p.wait() {
                    Ok(_) => ok += 1,
                    Err(StoreError::Capped(r)) => assert_eq!(r.allowed_at_ms, at + 60_000),
                    Err(e) => panic!("not a cap refusal: {e}"),
                }
            }
            ok
        };
        let (ok_a, ok_b) = std::thread::scope(|s| {
            let (a, b) = (&a, &b);
            let ta = s.spawn(move || run(a));
            let tb = s.spawn(move || run(b));
            (ta.join().expect("a"), tb.join().expect("b"))
        });
        assert_eq!(ok_a + ok_b, 3, "round {round}: {ok_a} + {ok_b} accepted");
        assert_eq!(
            pg.psql(&format!(
                "SELECT count(*) FROM cap_hit WHERE scope = '{to}'"
            )),
            "3"
        );
    }
}

#[test]
fn claim_owned_takes_only_parts_headed_for_owned_smscs() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let store = open(&rt, &pg, "a");
    for i in 0..4 {
        store
            .accept(msg(&format!("+4670000000{i}")))
            .wait()
            .expect("accept");
    }
    assert_eq!(pg.psql("SELECT DISTINCT target FROM part"), "op-a");
    let none = store
        .claim_owned("default", owned("op-b", 7), 10, T0)
        .wait();
    assert!(none.expect("claim").is_empty(), "op-b owns no part yet");
    assert_eq!(
        store
            .retarget("default", "op-a", "op-b", 1)
            .wait()
            .expect("retarget"),
        1
    );
    let b = store
        .claim_owned("default", owned("op-b", 7), 10, T0)
        .wait();
    let b = b.expect("claim");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].target.as_deref(), Some("op-b"));
    let a = store
        .claim_owned("default", owned("op-a", 3), 10, T0)
        .wait();
    assert_eq!(a.expect("claim").len(), 3);
    assert_eq!(
        pg.psql("SELECT target || ':' || claim_epoch || ':' || claimed_by FROM part ORDER BY target, message_id"),
        "op-a:3:a\nop-a:3:a\nop-a:3:a\nop-b:7:a"
    );
}

#[test]
fn failover_retargets_and_remembers_the_refusal() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let store = open(&rt, &pg, "a");
    store.accept(msg("+46700000001")).wait().expect("accept");
    let parts = store
        .claim_owned("default", owned("op-a", 1), 10, T0)
        .wait();
    let part = parts.expect("claim")[0].part;
    let state = store
        .failed(Failure {
            part,
            smsc: Some("op-a".into()),
            status: Some(0x58),
            disposition: Disposition::Failover { to: "op-b".into() },
            now_ms: T0 + 1,
        })
        .wait()
        .expect("failover");
    assert_eq!(state, MessageState::Queued);
    let a = store
        .claim_owned("default", owned("op-a", 1), 10, T0 + 2)
        .wait();
    assert!(a.expect("claim").is_empty());
    // Never moved back to the SMSC that refused it.
    let moved = store.retarget("default", "op-b", "op-a", 10).wait();
    assert_eq!(moved.expect("retarget"), 0);
    let b = store
        .claim_owned("default", owned("op-b", 1), 10, T0 + 2)
        .wait();
    let b = b.expect("claim");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].target.as_deref(), Some("op-b"));
    assert_eq!(b[0].refused, vec!["op-a".to_owned()]);
}

#[test]
fn a_stale_acknowledgement_changes_nothing_and_requeue_marks_maybe_dup() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let a = open(&rt, &pg, "a");
    let b = open(&rt, &pg, "b");
    a.accept(msg("+46700000001")).wait().expect("accept");
    let claimed = a.claim_owned("default", owned("op-a", 1), 10, T0).wait();
    let part = claimed.expect("claim")[0].part;
    // a's lease on op-a ended; b took it under epoch 2 and requeues a's parts in flight.
    let n = b.requeue_in_flight("op-a", 2).wait().expect("requeue");
    assert_eq!(n, 1);
    assert_eq!(b.requeue_in_flight("op-a", 2).wait().expect("again"), 0);
    let again = b
        .claim_owned("default", owned("op-a", 2), 10, T0 + 1)
        .wait();
    let again = again.expect("claim");
    assert_eq!(again.len(), 1);
    assert!(again[0].maybe_sent, "requeued in flight: maybe sent");
    assert_eq!(again[0].attempts, 2);
    // a's late answer is stale: nothing changes.
    let late = a
        .acked(ack(part, "old"))
        .wait()
        .expect("stale ack resolves");
    assert_eq!(late.state, MessageState::Queued);
    assert_eq!(
        pg.psql("SELECT state || ':' || claimed_by || ':' || claim_epoch || ':' || coalesce(smsc_id, '-') FROM part"),
        format!("{}:b:2:-", smppd::store::PartState::Sending.code())
    );
    let stale_fail = a.failed(Failure {
        part,
        smsc: Some("op-a".into()),
        status: None,
        disposition: Disposition::Permanent,
        now_ms: T0 + 2,
    });
    assert_eq!(stale_fail.wait().expect("stale"), MessageState::Queued);
    // b's answer counts.
    let fresh = b.acked(ack(part, "new")).wait().expect("ack");
    assert_eq!(fresh.state, MessageState::Submitted);
    let m = b
        .message(part.message)
        .wait()
        .expect("read")
        .expect("found");
    assert!(m.parts[0].maybe_duplicate);
    assert_eq!(m.parts[0].smsc_id.as_deref(), Some("new"));
}

#[test]
fn receipts_and_acknowledgements_racing_on_two_instances_always_match() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let a = open(&rt, &pg, "a");
    let b = open(&rt, &pg, "b");
    const N: usize = 60;
    for i in 0..N {
        a.accept(msg(&format!("+46700{i:05}")))
            .wait()
            .expect("accept");
    }
    let parts = a.claim("default", N, T0).wait().expect("claim");
    assert_eq!(parts.len(), N);
    // Half the receipts first, half the acknowledgements first, the rest at once.
    for (i, p) in parts.iter().enumerate().take(10) {
        b.record_receipt(receipt(&format!("x{i}")))
            .wait()
            .expect("receipt");
        a.acked(ack(p.part, &format!("x{i}"))).wait().expect("ack");
    }
    for (i, p) in parts.iter().enumerate().skip(10).take(10) {
        a.acked(ack(p.part, &format!("x{i}"))).wait().expect("ack");
        b.record_receipt(receipt(&format!("x{i}")))
            .wait()
            .expect("receipt");
    }
    std::thread::scope(|s| {
        let acks = s.spawn(|| {
            let pending: Vec<_> = parts
                .iter()
                .enumerate()
                .skip(20)
                .map(|(i, p)| a.acked(ack(p.part, &format!("x{i}"))))
                .collect();
            for p in pending {
                p.wait().expect("ack");
            }
        });
        let receipts = s.spawn(|| {
            let pending: Vec<_> = (20..N)
                .map(|i| b.record_receipt(receipt(&format!("x{i}"))))
                .collect();
            for p in pending {
                p.wait().expect("receipt");
            }
        });
        acks.join().expect("acks");
        receipts.join().expect("receipts");
    });
    for p in &parts {
        let m = a
            .message(p.part.message)
            .wait()
            .expect("read")
            .expect("found");
        assert_eq!(m.state, MessageState::Delivered, "{}", p.part.message);
        assert_eq!(m.receipts.len(), 1);
    }
    assert_eq!(b.stats().wait().expect("stats").unmatched_receipts, 0);
}

#[test]
fn a_receipt_before_the_ack_on_another_instance_is_matched() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let a = open(&rt, &pg, "a");
    let b = open(&rt, &pg, "b");
    a.accept(msg("+46700000001")).wait().expect("accept");
    let part = a.claim("default", 1, T0).wait().expect("claim")[0].part;
    let held = b.record_receipt(receipt("77")).wait().expect("receipt");
    assert!(matches!(held, ReceiptRecorded::Held { .. }), "{held:?}");
    let res = a.acked(ack(part, "77")).wait().expect("ack");
    assert_eq!(res.state, MessageState::Delivered);
    assert_eq!(res.held_receipts.len(), 1);
    assert!(
        res.held_receipts[0].seq > 0,
        "the held receipt's event is numbered"
    );
}

/// An event whose transaction commits after others were numbered is numbered after them: a
/// subscriber resuming from the last number it saw gets it.
#[test]
fn an_event_committed_late_is_never_skipped() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let store = open(&rt, &pg, "a");
    let url = pg.url();
    let raw = rt.block_on(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("raw connection");
        tokio::spawn(conn);
        client.batch_execute("BEGIN").await.expect("begin");
        client
            .execute(
                "INSERT INTO event (at, kind, message_id, body) VALUES ($1, 'mo', NULL, '{\"late\":true}')",
                &[&T0],
            )
            .await
            .expect("insert");
        client
    });
    let mo = IncomingMo {
        smsc: "op-a".into(),
        from: "+46701111111".into(),
        to: "72000".into(),
        text: "hi".into(),
        parts: 1,
        optout: None,
        now_ms: T0,
    };
    let first = store.record_mo(mo.clone()).wait().expect("mo");
    let seen = store.events_after(0, 100).wait().expect("events");
    assert_eq!(seen.len(), 1, "the open transaction's event is not visible");
    let last_seen = seen[0].seq;
    assert_eq!(last_seen, first.seq);
    rt.block_on(async { raw.batch_execute("COMMIT").await.expect("commit") });
    let second = store.record_mo(mo).wait().expect("mo");
    let deadline = Instant::now() + Duration::from_secs(5);
    let rest = loop {
        let rest = store.events_after(last_seen, 100).wait().expect("events");
        if rest.len() >= 2 || Instant::now() > deadline {
            break rest;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(rest.iter().any(|e| e.fields()["late"] == true), "{rest:?}");
    assert!(rest.iter().all(|e| e.seq > last_seen));
    assert!(rest.iter().any(|e| e.seq == second.seq));
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    drop(open(&rt, &pg, "a"));
    pg.psql("INSERT INTO schema_version (version) VALUES (999)");
    let err = rt.open(&pg.url(), "a", settings()).expect_err("refused");
    assert!(
        matches!(err, StoreError::SchemaIncompatible { found: 999, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("schema version 999"), "{text}");
    assert!(
        text.contains("migration(s) 999 do not keep older binaries working"),
        "{text}"
    );
    assert!(text.contains("upgrade smppd"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{}", pg.port)), "{text}");
    let migrated = rt.block_on(smppd::store::postgres::migrate(&smppd::config::Postgres {
        url: pg.url(),
        password_file: None,
        pool_size: 1,
    }));
    assert!(matches!(
        migrated,
        Err(StoreError::SchemaIncompatible { .. })
    ));
}

#[test]
fn the_database_going_away_is_unavailable_and_the_store_recovers_by_itself() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let store = open(&rt, &pg, "a");
    store.accept(msg("+46700000001")).wait().expect("accept");
    pg.stop();
    let err = store.accept(msg("+46700000002")).wait().expect_err("fails");
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                kind: "database",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_overload());
    let read = store.stats().wait().expect_err("read fails");
    assert!(read.is_overload(), "{read:?}");
    pg.start_server();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.accept(msg("+46700000003")).wait() {
            Ok(a) => {
                assert!(!a.duplicate);
                break;
            }
            Err(e) if e.is_overload() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("the store did not come back: {e}"),
        }
    }
    assert_eq!(store.stats().wait().expect("stats").queued_parts, 2);
}

/// A statement failing in a batch rolls the batch back and replays its writes one per
/// transaction: only the faulty write fails, and the others (an acknowledgement, whose claim
/// the rolled-back attempt had already used) still apply.
#[test]
fn one_failing_write_fails_only_its_caller() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let store = open(&rt, &pg, "a");
    store.accept(msg("+46700000001")).wait().expect("accept");
    let claimed = store
        .claim_owned("default", owned("op-a", 1), 10, T0)
        .wait();
    let part = claimed.expect("claim")[0].part;
    // PostgreSQL text cannot hold U+0000: this MO's insert fails in the database.
    let bad = IncomingMo {
        smsc: "op-a".into(),
        from: "+46701111111".into(),
        to: "72000".into(),
        text: "nul \0 inside".into(),
        parts: 1,
        optout: None,
        now_ms: T0,
    };
    let good_mo = IncomingMo {
        text: "fine".into(),
        ..bad.clone()
    };
    // Hold the writer so that one batch holds all three.
    let hold = hold_writer(&rt, &pg, &store);
    let p_ack = store.acked(ack(part, "1"));
    let p_bad = store.record_mo(bad);
    let p_good = store.record_mo(good_mo);
    release(&rt, hold);
    assert_eq!(p_ack.wait().expect("ack").state, MessageState::Submitted);
    let err = p_bad.wait().expect_err("the bad write fails");
    assert!(matches!(err, StoreError::Internal(_)), "{err:?}");
    assert!(p_good.wait().expect("mo").seq > 0);
    assert_eq!(pg.psql("SELECT count(*) FROM mo"), "1");
}

/// A reroute after UNDELIV heads the part for the first SMSC of its route other than the
/// receipt's (`Settings::routes`), so the owner of that SMSC claims it.
#[test]
fn a_reroute_retargets_the_part_to_the_next_smsc_of_its_route() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let store = open(&rt, &pg, "a");
    store.accept(msg("+46700000001")).wait().expect("accept");
    let claimed = store
        .claim_owned("default", owned("op-a", 1), 10, T0)
        .wait();
    let part = claimed.expect("claim")[0].part;
    store.acked(ack(part, "u1")).wait().expect("ack");
    let rule = RerouteRule::none().with_route("default", &["op-a".to_owned(), "op-b".to_owned()]);
    let mut r = receipt("u1");
    r.outcome = Some(smppd::receipt::Outcome::Undeliverable);
    r.reroute = rule;
    let res = store.record_receipt(r).wait().expect("receipt");
    let ReceiptRecorded::Rerouted { reroute, .. } = res else {
        panic!("not rerouted: {res:?}")
    };
    assert_eq!(reroute.to_smsc, "op-b");
    let a = store
        .claim_owned("default", owned("op-a", 1), 10, T0 + 1)
        .wait();
    assert!(a.expect("claim").is_empty());
    let b = store
        .claim_owned("default", owned("op-b", 4), 10, T0 + 1)
        .wait();
    let b = b.expect("claim");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].rerouted_from.as_deref(), Some("op-a"));
    assert_eq!(b[0].target.as_deref(), Some("op-b"));
}

/// Opening a store never touches the parts other instances have in flight.
#[test]
fn opening_requeues_nothing_of_other_instances() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let a = open(&rt, &pg, "a");
    for i in 0..3 {
        a.accept(msg(&format!("+4670000000{i}")))
            .wait()
            .expect("accept");
    }
    let claimed = a.claim_owned("default", owned("op-a", 1), 2, T0).wait();
    assert_eq!(claimed.expect("claim").len(), 2);
    let (b, recovery) = rt.open(&pg.url(), "b", settings()).expect("opens");
    assert_eq!(recovery.requeued_in_flight, 0);
    assert_eq!(recovery.queued, 1);
    assert_eq!(recovery.migrations_applied, 0);
    assert_eq!(b.stats().wait().expect("stats").in_flight_parts, 2);
}

/// Opens a raw transaction holding an opt-out row, then asks `store` to add the same number:
/// the writer waits in that batch until [`release`] while later writes queue up behind it.
fn hold_writer(
    rt: &StoreRuntime,
    pg: &Pg,
    store: &Store,
) -> (tokio_postgres::Client, smppd::store::Pending<bool>) {
    let url = pg.url();
    let raw = rt.block_on(async move {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("raw connection");
        tokio::spawn(conn);
        client
            .batch_execute("BEGIN; INSERT INTO optout (number, scope, keyword, at, smsc) VALUES ('+1', 'all', 'manual', 0, '-')")
            .await
            .expect("raw insert");
        client
    });
    let blocked = store.optout_add("+1".into(), "all".into(), T0);
    std::thread::sleep(Duration::from_millis(300));
    (raw, blocked)
}

fn release(
    rt: &StoreRuntime,
    (raw, blocked): (tokio_postgres::Client, smppd::store::Pending<bool>),
) {
    rt.block_on(async { raw.batch_execute("ROLLBACK").await.expect("rollback") });
    assert!(blocked.wait().expect("optout"));
}

/// Acknowledgements queued together share their statements; each still gets its own answer:
/// both parts of a multipart message, one with a receipt held for it, a stale one (its part
/// is claimed by another instance) and a repeated one.
#[test]
fn acknowledgements_of_one_batch_each_get_their_answer() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let store = open(&rt, &pg, "a");
    let mut two = msg("+46700000001");
    two.parts.push(two.parts[0].clone());
    let m = store.accept(two).wait().expect("accept").id;
    let s = store.accept(msg("+46700000002")).wait().expect("accept").id;
    let t = store.accept(msg("+46700000003")).wait().expect("accept").id;
    let claimed = store
        .claim_owned("default", owned("op-a", 1), 10, T0)
        .wait();
    assert_eq!(claimed.expect("claim").len(), 4);
    let held = store.record_receipt(receipt("s1")).wait().expect("receipt");
    assert!(matches!(held, ReceiptRecorded::Held { .. }));
    // Another instance took t's part under a newer lease.
    pg.psql(&format!(
        "UPDATE part SET claimed_by = 'b', claim_epoch = 2 WHERE message_id = {}",
        t.as_i64()
    ));
    let part = |message, n| PartRef { message, n };
    let hold = hold_writer(&rt, &pg, &store);
    let answers = [
        store.acked(ack(part(m, 1), "m1")),
        store.acked(ack(part(m, 2), "m2")),
        store.acked(ack(part(s, 1), "s1")),
        store.acked(ack(part(t, 1), "t1")),
        store.acked(ack(part(m, 1), "m1")),
    ];
    release(&rt, hold);
    let answers: Vec<_> = answers
        .into_iter()
        .map(|p| p.wait().expect("ack"))
        .collect();
    assert_eq!(answers[0].state, MessageState::Submitted);
    assert_eq!(answers[1].state, MessageState::Submitted);
    assert_eq!(answers[2].state, MessageState::Delivered);
    assert_eq!(answers[2].held_receipts.len(), 1);
    assert_eq!(answers[3].state, MessageState::Queued, "stale: ignored");
    assert_eq!(
        answers[4].state,
        MessageState::Submitted,
        "repeated: ignored"
    );
    let view = store.message(m).wait().expect("read").expect("found");
    assert_eq!(view.state, MessageState::Submitted);
    assert!(view.submitted_at.is_some());
    let t_view = store.message(t).wait().expect("read").expect("found");
    assert_eq!(t_view.parts[0].smsc_id, None);
    assert_eq!(store.stats().wait().expect("stats").unmatched_receipts, 0);
}

/// A receipt of `id` with `stat` (`DELIVRD`, `ENROUTE`, `UNDELIV`, …).
fn receipt_stat(id: &str, stat: &str) -> IncomingReceipt {
    let text = format!(
        "id:{id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:{stat} err:000 text:hello"
    );
    let r = parse_receipt(text.as_bytes(), &ReceiptTlvs::default()).expect("receipt parses");
    IncomingReceipt {
        outcome: final_outcome(r.stat, AcceptedIs::Final),
        receipt: r,
        raw: text.into_bytes(),
        ..receipt(id)
    }
}

/// Receipts queued together share their statements; each still gets the answer it would get
/// alone: an intermediate then a final receipt for one part (two runs), the other part of the
/// same message, an unmatched one (held), a reroute, a duplicate of a receipt recorded before
/// and a duplicate inside the batch.
#[test]
fn receipts_of_one_batch_each_get_their_answer() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let store = open(&rt, &pg, "a");
    let mut two = msg("+46700000001");
    two.parts.push(two.parts[0].clone());
    let m = store.accept(two).wait().expect("accept").id;
    let r = store.accept(msg("+46700000002")).wait().expect("accept").id;
    let d = store.accept(msg("+46700000003")).wait().expect("accept").id;
    let claimed = store
        .claim_owned("default", owned("op-a", 1), 10, T0)
        .wait();
    assert_eq!(claimed.expect("claim").len(), 4);
    let part = |message, n| PartRef { message, n };
    for (p, id) in [
        (part(m, 1), "m1"),
        (part(m, 2), "m2"),
        (part(r, 1), "r1"),
        (part(d, 1), "d1"),
    ] {
        store.acked(ack(p, id)).wait().expect("ack");
    }
    let first = store.record_receipt(receipt("d1")).wait().expect("receipt");
    let ReceiptRecorded::Matched(first) = first else {
        panic!("not matched: {first:?}")
    };
    let rule = RerouteRule::none().with_route("default", &["op-a".to_owned(), "op-b".to_owned()]);
    let mut undeliv = receipt_stat("r1", "UNDELIV");
    undeliv.reroute = rule;
    let hold = hold_writer(&rt, &pg, &store);
    let answers = [
        store.record_receipt(receipt_stat("m1", "ENROUTE")),
        store.record_receipt(receipt("m2")),
        store.record_receipt(receipt("zz")),
        store.record_receipt(undeliv),
        store.record_receipt(receipt("d1")),
        store.record_receipt(receipt("m1")),
        store.record_receipt(receipt("m1")),
    ];
    release(&rt, hold);
    let a: Vec<_> = answers
        .into_iter()
        .map(|p| p.wait().expect("receipt"))
        .collect();
    let matched = |k: usize| match &a[k] {
        ReceiptRecorded::Matched(x) => x.clone(),
        other => panic!("{k}: not matched: {other:?}"),
    };
    let (m1_mid, m2, m1_final) = (matched(0), matched(1), matched(5));
    assert_eq!(m1_mid.part, part(m, 1));
    assert_eq!(m1_mid.state, MessageState::Submitted, "intermediate");
    assert_eq!(m2.state, MessageState::Submitted, "part 1 still pending");
    assert_eq!(m1_final.state, MessageState::Delivered);
    assert!(matches!(a[2], ReceiptRecorded::Held { .. }), "{:?}", a[2]);
    let ReceiptRecorded::Rerouted { applied, reroute } = &a[3] else {
        panic!("not rerouted: {:?}", a[3])
    };
    assert_eq!(
        (applied.part, reroute.to_smsc.as_str()),
        (part(r, 1), "op-b")
    );
    assert_eq!(applied.state, MessageState::Queued);
    assert_eq!(
        a[4],
        ReceiptRecorded::Duplicate {
            log_id: first.log_id
        }
    );
    assert_eq!(
        a[6],
        ReceiptRecorded::Duplicate {
            log_id: m1_final.log_id
        }
    );
    // Every applied receipt has its numbered `dlr` event, in arrival order.
    let seqs = [m1_mid.seq, m2.seq, applied.seq, m1_final.seq];
    assert!(seqs.windows(2).all(|w| 0 < w[0] && w[0] < w[1]), "{seqs:?}");
    let events = store.events_after(first.seq, 100).wait().expect("events");
    let dlr: Vec<i64> = events
        .iter()
        .filter(|e| e.kind == "dlr")
        .map(|e| e.seq)
        .collect();
    assert_eq!(dlr, seqs);
    let view = store.message(m).wait().expect("read").expect("found");
    assert_eq!(view.state, MessageState::Delivered);
    assert!(view.done_at.is_some());
    assert_eq!(view.receipts.len(), 3);
    assert_eq!(view.parts[0].stat.as_deref(), Some("DELIVRD"));
    let rv = store.message(r).wait().expect("read").expect("found");
    assert_eq!(rv.state, MessageState::Queued);
    assert_eq!(rv.parts[0].acked_at, None);
    assert_eq!(store.stats().wait().expect("stats").unmatched_receipts, 1);
    let b = store
        .claim_owned("default", owned("op-b", 4), 10, T0 + 1)
        .wait();
    let b = b.expect("claim");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].rerouted_from.as_deref(), Some("op-a"));
}

/// `last_seq` follows the cluster: another instance's events reach this instance's watch
/// through the sequencer poll.
#[test]
fn last_seq_follows_other_instances_events() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let a = open(&rt, &pg, "a");
    let b = open(&rt, &pg, "b");
    let mo = IncomingMo {
        smsc: "op-a".into(),
        from: "+46701111111".into(),
        to: "72000".into(),
        text: "hi".into(),
        parts: 1,
        optout: None,
        now_ms: T0,
    };
    let recorded = b.record_mo(mo).wait().expect("mo");
    assert_eq!(
        *b.last_seq().borrow(),
        recorded.seq,
        "the writer publishes its own"
    );
    let watch = a.last_seq();
    let deadline = Instant::now() + Duration::from_secs(5);
    while *watch.borrow() < recorded.seq {
        assert!(Instant::now() < deadline, "a never saw b's event");
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = a.events_after(0, 10).wait().expect("events");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].seq, recorded.seq);
}

/// `migrate` (for `smppd store migrate`) brings a new database to the current schema once;
/// opening it afterwards applies nothing, and the cluster tables are there for the leases.
#[test]
fn migrate_applies_the_schema_once() {
    let (rt, pg) = (StoreRuntime::new(), Pg::start());
    let config = smppd::config::Postgres {
        url: pg.url(),
        password_file: None,
        pool_size: 1,
    };
    let migrate = || rt.block_on(smppd::store::postgres::migrate(&config));
    let all = u32::try_from(smppd::store::postgres::current_version()).expect("version");
    assert_eq!(migrate().expect("migrates"), all);
    assert_eq!(migrate().expect("migrates"), 0);
    let (_, recovery) = rt.open(&pg.url(), "a", settings()).expect("opens");
    assert_eq!(recovery.migrations_applied, 0);
    assert_eq!(
        pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('cluster_instance', 'smsc_lease', 'leader_lease')"),
        "3"
    );
    assert_eq!(
        pg.psql("SELECT max(version) FROM schema_version"),
        smppd::store::postgres::current_version().to_string()
    );
}
