//! The simulator on its own terms: authentication statuses, several concurrent binds of all three
//! types, id formats and receipt id bases, the status mix, the CLI (`smppd sim`) with its control
//! port, `--stats`, `--submit-log` and `--receipt-log`.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use smppd::pdu::{Address, CommandStatus, Npi, OctetString, RegisteredDelivery, SubmitSm, Ton};
use smppd::session::{
    BindMode, BindState, DownReason, Event, InboundPdu, Job, JobBody, RetryReason, SessionConfig,
    SmscHandle,
};
use smppd::sim::{IdFormat, ReceiptIds, SimConfig, Simulator, StatusMix};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

fn job(key: u64) -> Job {
    Job {
        key,
        body: JobBody::SubmitSm(SubmitSm {
            source_addr: Address::new(Ton::INTERNATIONAL, Npi::ISDN, "46700000009").unwrap(),
            dest_addr: Address::new(Ton::INTERNATIONAL, Npi::ISDN, "46700000001").unwrap(),
            registered_delivery: RegisteredDelivery::RECEIPT,
            short_message: OctetString::new(Bytes::from(format!("k={key}"))).unwrap(),
            ..SubmitSm::default()
        }),
        validity: None,
    }
}

fn session(addr: &str, system_id: &str, password: &str) -> SessionConfig {
    let mut c = SessionConfig::new("sim", addr);
    c.system_id = system_id.into();
    c.password = password.into();
    c.reconnect_min = Duration::from_millis(20);
    c.reconnect_max = Duration::from_millis(100);
    c
}

async fn first_down(erx: &mut mpsc::Receiver<Event>) -> DownReason {
    loop {
        if let Some(Event::BindState {
            state: BindState::Down { reason, .. },
            ..
        }) = erx.recv().await
        {
            return reason;
        }
    }
}

#[tokio::test]
async fn bind_authentication_uses_the_right_statuses() {
    let sim = Simulator::start(SimConfig::new("127.0.0.1:0").account("esme", "secret"))
        .await
        .unwrap();
    let addr = sim.addr().to_string();
    for (sid, pw, want) in [
        ("nobody", "secret", CommandStatus::ESME_RINVSYSID),
        ("esme", "guess", CommandStatus::ESME_RINVPASWD),
    ] {
        let (etx, mut erx) = mpsc::channel(16);
        let h = SmscHandle::start(session(&addr, sid, pw), 4, etx).unwrap();
        assert_eq!(first_down(&mut erx).await, DownReason::BindRejected(want));
        let status = &h.status()[0];
        assert_eq!(
            status.last_error.as_deref(),
            Some(format!("bind rejected: {want}").as_str())
        );
        assert!(matches!(status.state, BindState::Down { .. }));
        h.stop(Duration::from_millis(10)).await;
    }
    sim.update_faults(|f| f.reject_binds = Some(CommandStatus::ESME_RBINDFAIL));
    let (etx, mut erx) = mpsc::channel(16);
    let h = SmscHandle::start(session(&addr, "esme", "secret"), 4, etx).unwrap();
    assert_eq!(
        first_down(&mut erx).await,
        DownReason::BindRejected(CommandStatus::ESME_RBINDFAIL)
    );
    // Lifting the fault lets the (backed-off) bind through.
    sim.update_faults(|f| f.reject_binds = None);
    loop {
        if let Some(Event::BindState {
            state: BindState::Bound,
            ..
        }) = erx.recv().await
        {
            break;
        }
    }
    h.stop(Duration::from_millis(10)).await;
    assert!(sim.stats().binds_rejected >= 3);
}

/// Sends `n` jobs and collects (submit ids, receipts) until every receipt arrived.
async fn run_jobs(
    handle: &SmscHandle,
    erx: &mut mpsc::Receiver<Event>,
    n: u64,
) -> (Vec<String>, Vec<smppd::pdu::DeliverSm>) {
    for k in 0..n {
        handle.jobs().send(job(k)).await.unwrap();
    }
    let mut ids = Vec::new();
    let mut receipts = Vec::new();
    let work = async {
        while ids.len() < n as usize || receipts.len() < n as usize {
            match erx.recv().await.unwrap() {
                Event::Submitted { message_id, .. } => ids.push(message_id),
                Event::Inbound {
                    pdu: InboundPdu::DeliverSm(d),
                    reply,
                    ..
                } => {
                    reply.ok();
                    receipts.push(d);
                }
                Event::Failed { status, .. } => panic!("failed {status}"),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .expect("jobs timed out");
    (ids, receipts)
}

#[tokio::test]
async fn decimal_ids_with_receipts_in_the_other_base_and_a_status_mix() {
    let mut sc = SimConfig::new("127.0.0.1:0");
    sc.id_format = IdFormat::Decimal;
    sc.receipts.ids = ReceiptIds::OtherInText;
    sc.receipts.mix = StatusMix {
        delivered: 1,
        undeliverable: 1,
        expired: 1,
        rejected: 1,
    };
    let sim = Simulator::start(sc).await.unwrap();
    let (etx, mut erx) = mpsc::channel(256);
    let h = SmscHandle::start(session(&sim.addr().to_string(), "any", "any"), 64, etx).unwrap();
    let (ids, receipts) = run_jobs(&h, &mut erx, 200).await;
    assert!(ids.iter().all(|id| id.bytes().all(|b| b.is_ascii_digit())));
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 200);
    let mut stats_seen = HashSet::new();
    for r in &receipts {
        let tlv_id = r
            .tlvs
            .receipted_message_id()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        assert!(ids.contains(&tlv_id), "the TLV keeps the submit_sm_resp id");
        let text = std::str::from_utf8(r.short_message.as_bytes()).unwrap();
        let hex = format!("{:x}", tlv_id.parse::<u64>().unwrap());
        assert!(
            text.starts_with(&format!("id:{hex} ")),
            "text id in hex: {text}"
        );
        let stat = text.split("stat:").nth(1).unwrap()[..7].to_owned();
        let state = r.tlvs.message_state().unwrap().0;
        let expected = match stat.as_str() {
            "DELIVRD" => 2,
            "EXPIRED" => 3,
            "UNDELIV" => 5,
            "REJECTD" => 8,
            other => panic!("stat {other}"),
        };
        assert_eq!(state, expected, "{text}");
        stats_seen.insert(stat);
    }
    assert_eq!(
        stats_seen.len(),
        4,
        "all four final states appear: {stats_seen:?}"
    );
    h.stop(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn hex_ids_with_receipts_in_decimal_everywhere() {
    let mut sc = SimConfig::new("127.0.0.1:0");
    sc.receipts.ids = ReceiptIds::Other;
    let sim = Simulator::start(sc).await.unwrap();
    let (etx, mut erx) = mpsc::channel(256);
    let h = SmscHandle::start(session(&sim.addr().to_string(), "any", "any"), 64, etx).unwrap();
    let (ids, receipts) = run_jobs(&h, &mut erx, 20).await;
    let decimal: HashSet<String> = ids
        .iter()
        .map(|id| u64::from_str_radix(id, 16).unwrap().to_string())
        .collect();
    for r in &receipts {
        let tlv_id = r
            .tlvs
            .receipted_message_id()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            decimal.contains(&tlv_id),
            "{tlv_id} is the decimal form of a hex id"
        );
    }
    h.stop(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn concurrent_binds_of_every_type_and_receipts_to_any_receiver_of_the_login() {
    let sim = Simulator::start(SimConfig::new("127.0.0.1:0"))
        .await
        .unwrap();
    let addr = sim.addr().to_string();
    // Login "a": two tx+rx pairs. Login "b": three transceivers (its receipts must not go to "a").
    let (atx, mut arx) = mpsc::channel(1024);
    let mut ca = session(&addr, "a", "pw");
    ca.mode = BindMode::TxRx;
    ca.binds = 2;
    let ha = SmscHandle::start(ca, 64, atx).unwrap();
    let (btx, mut brx) = mpsc::channel(1024);
    let mut cb = session(&addr, "b", "pw");
    cb.binds = 3;
    let hb = SmscHandle::start(cb, 64, btx).unwrap();
    let (a, b) = tokio::join!(run_jobs(&ha, &mut arx, 100), run_jobs(&hb, &mut brx, 100));
    let a_ids: HashSet<_> = a.0.iter().cloned().collect();
    assert!(
        a.1.iter()
            .all(|r| { a_ids.contains(r.tlvs.receipted_message_id().unwrap().as_str().unwrap()) })
    );
    let b_ids: HashSet<_> = b.0.iter().cloned().collect();
    assert!(
        b.1.iter()
            .all(|r| { b_ids.contains(r.tlvs.receipted_message_id().unwrap().as_str().unwrap()) })
    );
    assert_eq!(sim.stats().bound_now, 7);
    assert_eq!(sim.stats().submits, 200);
    ha.stop(Duration::from_millis(100)).await;
    hb.stop(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn the_cli_serves_binds_and_takes_control_commands_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("submits.jsonl");
    let receipt_log = dir.path().join("receipts.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(["sim", "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"])
        .args([
            "--system-id",
            "esme",
            "--password",
            "secret",
            "--id-format",
            "decimal",
        ])
        .args(["--stats", "--stats-interval", "50ms", "--submit-log"])
        .arg(&log)
        .arg("--receipt-log")
        .arg(&receipt_log)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listen = lines.next_line().await.unwrap().unwrap();
    let control = lines.next_line().await.unwrap().unwrap();
    let addr = listen
        .strip_prefix("listening on ")
        .expect(&listen)
        .to_owned();
    let control = control
        .strip_prefix("control on ")
        .expect(&control)
        .to_owned();
    let stats_lines = tokio::spawn(async move {
        let mut last = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            last = l;
        }
        last
    });

    let (etx, mut erx) = mpsc::channel(256);
    let h = SmscHandle::start(session(&addr, "esme", "secret"), 64, etx).unwrap();
    let (ids, _) = run_jobs(&h, &mut erx, 20).await;
    assert!(ids.iter().all(|id| id.bytes().all(|b| b.is_ascii_digit())));

    let ctl = tokio::net::TcpStream::connect(&control).await.unwrap();
    let (r, mut w) = ctl.into_split();
    let mut answers = BufReader::new(r).lines();
    let mut ask = async |cmd: &str| {
        w.write_all(format!("{cmd}\n").as_bytes()).await.unwrap();
        answers.next_line().await.unwrap().unwrap()
    };
    let stats: serde_json::Value = serde_json::from_str(&ask("stats").await).unwrap();
    assert_eq!(stats["submits"], 20);
    assert_eq!(stats["binds"], 1);
    assert_eq!(ask("throttle_every 1").await, "ok");
    assert!(
        ask("frobnicate")
            .await
            .starts_with("error: unknown command")
    );
    assert!(ask("fail 2").await.starts_with("error: fail:"));
    h.jobs().send(job(99)).await.unwrap();
    loop {
        if let Some(Event::Retry { reason, .. }) = erx.recv().await {
            assert_eq!(
                reason,
                RetryReason::Throttled(CommandStatus::ESME_RTHROTTLED)
            );
            break;
        }
    }
    h.stop(Duration::from_millis(100)).await;

    // SIGTERM: final stats line and the submit log.
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().await.unwrap().success());
    let last: serde_json::Value = serde_json::from_str(&stats_lines.await.unwrap()).unwrap();
    assert_eq!(last["submits"], 21);
    assert_eq!(last["throttled"], 1);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged.lines().count(), 21);
    let first: serde_json::Value = serde_json::from_str(logged.lines().next().unwrap()).unwrap();
    assert_eq!(first["status"], "ESME_ROK");
    assert_eq!(first["payload_hex"], hex::encode("k=0"));
    // One receipt per accepted submit (the throttled one has none), each sent and answered once.
    let receipts = std::fs::read_to_string(&receipt_log).unwrap();
    assert_eq!(receipts.lines().count(), 20, "{receipts}");
    for (i, line) in receipts.lines().enumerate() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(r["serial"], i as u64 + 1, "{r}");
        assert_eq!(
            (r["sent"].as_u64(), r["acked"].as_u64()),
            (Some(1), Some(1)),
            "{r}"
        );
        assert_eq!(r["message_id"], ids[i].as_str(), "{r}");
        assert!(r["text"].as_str().unwrap().contains("stat:DELIVRD"), "{r}");
    }
}

#[tokio::test]
async fn duplicate_receipts_unknown_ids_and_a_rate_limit() {
    let mut sc = SimConfig::new("127.0.0.1:0");
    sc.receipts.duplicate = true;
    let sim = Simulator::start(sc).await.unwrap();
    let (etx, mut erx) = mpsc::channel(256);
    let h = SmscHandle::start(session(&sim.addr().to_string(), "x", "y"), 64, etx).unwrap();
    // 10 submits → 20 receipts, each id twice.
    for k in 0..10 {
        h.jobs().send(job(k)).await.unwrap();
    }
    let mut ids = Vec::new();
    let mut receipts: Vec<String> = Vec::new();
    while ids.len() < 10 || receipts.len() < 20 {
        match erx.recv().await.unwrap() {
            Event::Submitted { message_id, .. } => ids.push(message_id),
            Event::Inbound {
                pdu: InboundPdu::DeliverSm(d),
                reply,
                ..
            } => {
                reply.ok();
                receipts.push(
                    d.tlvs
                        .receipted_message_id()
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .into(),
                );
            }
            _ => {}
        }
    }
    for id in &ids {
        assert_eq!(receipts.iter().filter(|r| *r == id).count(), 2);
    }
    // A receipt for an id never issued.
    sim.inject_unknown_receipt(None, "deadbeef00");
    loop {
        if let Event::Inbound {
            pdu: InboundPdu::DeliverSm(d),
            reply,
            ..
        } = erx.recv().await.unwrap()
        {
            reply.ok();
            assert_eq!(
                d.tlvs.receipted_message_id().unwrap().as_str(),
                Some("deadbeef00")
            );
            break;
        }
    }
    // Above 20 submits per second, ESME_RTHROTTLED.
    sim.update_receipts(|r| r.enabled = false);
    sim.update_faults(|f| f.throttle_above_tps = 20);
    for k in 100..150 {
        h.jobs().send(job(k)).await.unwrap();
    }
    let mut throttled = 0;
    let mut accepted = 0;
    while accepted + throttled < 50 {
        match erx.recv().await.unwrap() {
            Event::Submitted { .. } => accepted += 1,
            Event::Retry { reason, .. } => {
                assert_eq!(
                    reason,
                    RetryReason::Throttled(CommandStatus::ESME_RTHROTTLED)
                );
                throttled += 1;
            }
            _ => {}
        }
    }
    assert!(
        throttled > 0 && accepted >= 20,
        "{accepted} accepted, {throttled} throttled"
    );
    assert_eq!(sim.stats().throttled, throttled);
    h.stop(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn pacing_counts_every_submit_per_100ms_and_restarts_on_reset() {
    let sim = Simulator::start(SimConfig::new("127.0.0.1:0"))
        .await
        .unwrap();
    let addr = sim.addr().to_string();
    let (etx, mut erx) = mpsc::channel(256);
    let h = SmscHandle::start(session(&addr, "esme", "pw"), 64, etx).unwrap();
    run_jobs(&h, &mut erx, 50).await;
    let p: serde_json::Value = serde_json::from_str(&sim.command("pacing").unwrap()).unwrap();
    assert_eq!(p["bucket_ms"], 100, "{p}");
    // Every submit lands in exactly one 100 ms bucket.
    let counted: u64 = p["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 50, "{p}");
    let max = p["max_per_window"].as_u64().unwrap();
    assert!((1..=50).contains(&max), "{p}");
    assert_eq!(sim.stats().max_submits_100ms, max);
    assert_eq!(sim.command("pacing_reset").unwrap(), "ok");
    assert_eq!(sim.stats().max_submits_100ms, 0);
    let p: serde_json::Value = serde_json::from_str(&sim.command("pacing").unwrap()).unwrap();
    assert_eq!(p["counts"], serde_json::json!([]), "{p}");
    h.stop(Duration::from_millis(100)).await;
}

/// Receipts handed to a receiver connection but not yet written when it closes go back to the
/// simulator's backlog and reach the next bind (a regression: they were dropped with the
/// connection's queue, so a crash campaign saw receipts "created, never sent").
#[tokio::test]
async fn receipts_queued_for_a_closed_connection_go_to_the_next_bind() {
    let mut sc = SimConfig::new("127.0.0.1:0");
    sc.deliver_window = 1;
    sc.deliver_timeout = Duration::from_secs(60);
    sc.record_receipts = true;
    let sim = Simulator::start(sc).await.unwrap();
    let addr = sim.addr().to_string();
    let (etx, mut erx) = mpsc::channel(256);
    let first = SmscHandle::start(session(&addr, "x", "y"), 64, etx).unwrap();
    for k in 0..20 {
        first.jobs().send(job(k)).await.unwrap();
    }
    // Never answer the receipts: one is outstanding (the window), 19 wait in its queue.
    let mut held = Vec::new();
    let mut submitted = 0;
    while submitted < 20 || held.is_empty() {
        match erx.recv().await.unwrap() {
            Event::Submitted { .. } => submitted += 1,
            Event::Inbound { reply, .. } => held.push(reply),
            _ => {}
        }
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while sim.stats().deliveries_backlog > 0 || sim.stats().receipts_created < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every receipt handed to the connection");
    assert_eq!(sim.stats().receipts_sent, 1);
    first.stop(Duration::from_millis(100)).await;
    drop(held);

    let (etx, mut erx) = mpsc::channel(256);
    let second = SmscHandle::start(session(&addr, "x", "y"), 64, etx).unwrap();
    let mut ids = HashSet::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while ids.len() < 20 {
            if let Event::Inbound {
                pdu: InboundPdu::DeliverSm(d),
                reply,
                ..
            } = erx.recv().await.unwrap()
            {
                reply.ok();
                ids.insert(
                    d.tlvs
                        .receipted_message_id()
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of 20 receipts reached the next bind", ids.len()));
    // The last answers are on their way to the simulator.
    let acked = || sim.receipts_log().iter().all(|r| r.acked >= 1);
    tokio::time::timeout(Duration::from_secs(5), async {
        while !acked() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not all acknowledged: {:?}", sim.receipts_log()));
    let log = sim.receipts_log();
    assert_eq!(log.len(), 20);
    // The one outstanding at the close was sent twice, the others once.
    assert_eq!(log.iter().map(|r| r.sent).sum::<u64>(), 21, "{log:?}");
    second.stop(Duration::from_millis(100)).await;
}

/// `receipt_delay MIN..MAX` gives each receipt its own delay: none comes before MIN, and they come
/// back spread out and out of submit order (with one fixed delay they keep submit order). A
/// reversed or malformed range is refused with the reason.
#[tokio::test]
async fn a_receipt_delay_range_spreads_receipts_out_of_order() {
    let sim = Simulator::start(SimConfig::new("127.0.0.1:0"))
        .await
        .unwrap();
    let bad = sim.command("receipt_delay 2s..1s").unwrap_err().to_string();
    assert!(bad.contains("MIN..MAX"), "{bad}");
    assert!(sim.command("receipt_delay 1s..x").is_err());
    assert_eq!(sim.command("receipt_delay 300ms..1500ms").unwrap(), "ok");
    let (etx, mut erx) = mpsc::channel(256);
    let h = SmscHandle::start(session(&sim.addr().to_string(), "any", "any"), 64, etx).unwrap();
    let start = std::time::Instant::now();
    let (ids, receipts) = run_jobs(&h, &mut erx, 40).await;
    let took = start.elapsed();
    let receipt_ids: Vec<String> = receipts
        .iter()
        .map(|r| {
            let id = r.tlvs.receipted_message_id().unwrap();
            id.as_str().unwrap().to_owned()
        })
        .collect();
    let mut sorted = receipt_ids.clone();
    sorted.sort_by_key(|id| ids.iter().position(|x| x == id));
    assert_eq!(sorted, ids, "one receipt per submit");
    assert_ne!(receipt_ids, ids, "receipts come back out of submit order");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    h.stop(Duration::from_millis(100)).await;
}
