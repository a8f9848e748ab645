//! Interop against an independent SMPP server: node-smpp (npm `smpp`), driven by
//! `tests/interop/server.js`. Covers bind, single and concatenated submit_sm, a delivery receipt
//! answered after the consumer, enquire_link both ways, and unbind.
//!
//! Needs Node.js and the pinned `smpp` package in `tests/interop/node_modules`. When that folder
//! is missing the test installs it itself (`npm ci --prefix tests/interop`, from the lock file);
//! when that cannot be done it fails with the command to run. It never passes without running.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use smppd::pdu::{
    Address, CommandStatus, EsmClass, Npi, OctetString, RegisteredDelivery, SubmitSm, Ton,
};
use smppd::session::{BindState, Event, InboundPdu, Job, JobBody, SessionConfig, SmscHandle};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

fn submit(text: &[u8], udh: Option<[u8; 6]>) -> SubmitSm {
    let mut payload = BytesMut::new();
    if let Some(udh) = udh {
        payload.put_slice(&udh);
    }
    payload.put_slice(text);
    SubmitSm {
        source_addr: Address::new(Ton::ALPHANUMERIC, Npi::UNKNOWN, "ACME").unwrap(),
        dest_addr: Address::new(Ton::INTERNATIONAL, Npi::ISDN, "46701234567").unwrap(),
        esm_class: EsmClass::DEFAULT.with_udhi(udh.is_some()),
        registered_delivery: RegisteredDelivery::RECEIPT,
        short_message: OctetString::new(payload.freeze()).unwrap(),
        ..SubmitSm::default()
    }
}

/// `tests/interop`, with its `node_modules` installed (once per test process).
fn interop_dir() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if dir.join("node_modules/smpp").exists() {
        return dir;
    }
    let fix = "npm ci --prefix tests/interop --no-audit --no-fund";
    let installed = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .status();
    match installed {
        Ok(s) if s.success() && dir.join("node_modules/smpp").exists() => dir,
        Ok(s) => panic!("`{fix}` failed ({s}); install Node.js and npm, then run it by hand"),
        Err(e) => panic!("cannot run npm ({e}): install Node.js and npm, then run `{fix}`"),
    }
}

#[tokio::test]
async fn node_smpp_server_bind_submit_concatenated_receipt_enquire_link_unbind() {
    let dir = interop_dir();
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("server.js"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed (it ran `npm ci` a moment ago)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (log_tx, mut log_rx) = mpsc::unbounded_channel::<serde_json::Value>();
    let first = lines.next_line().await.unwrap().expect("server output");
    let listening: serde_json::Value = serde_json::from_str(&first).unwrap();
    let port = listening["port"].as_u64().expect("port");
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = log_tx.send(v);
            }
        }
    });

    let mut cfg = SessionConfig::new("node", format!("127.0.0.1:{port}"));
    cfg.system_id = "esme".into();
    cfg.password = "secret".into();
    cfg.enquire_link = Duration::from_millis(100);
    let (etx, mut erx) = mpsc::channel(256);
    let handle = SmscHandle::start(cfg, 16, etx).unwrap();
    let jobs = vec![
        Job {
            key: 1,
            body: JobBody::SubmitSm(submit(b"Hello from smppd", None)),
            validity: None,
        },
        Job {
            key: 2,
            body: JobBody::SubmitSm(submit(b"part one ", Some([5, 0, 3, 0x42, 2, 1]))),
            validity: None,
        },
        Job {
            key: 3,
            body: JobBody::SubmitSm(submit(b"part two", Some([5, 0, 3, 0x42, 2, 2]))),
            validity: None,
        },
    ];
    for j in jobs {
        handle.jobs().send(j).await.unwrap();
    }
    let mut ids = std::collections::HashMap::new();
    let mut receipts = Vec::new();
    let work = async {
        while ids.len() < 3 || receipts.len() < 3 {
            match erx.recv().await.unwrap() {
                Event::Submitted {
                    key, message_id, ..
                } => {
                    ids.insert(key, message_id);
                }
                Event::Inbound {
                    pdu: InboundPdu::DeliverSm(d),
                    reply,
                    ..
                } => {
                    assert!(d.esm_class.is_receipt());
                    let id = d
                        .tlvs
                        .receipted_message_id()
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned();
                    assert_eq!(d.tlvs.message_state().map(|s| s.0), Some(2));
                    receipts.push(id);
                    reply.answer(CommandStatus::ESME_ROK);
                }
                Event::Failed { key, status, .. } => panic!("{key} failed: {status}"),
                Event::BindState {
                    state: BindState::Down { reason, .. },
                    ..
                } => {
                    panic!("bind down: {reason}")
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .expect("interop timed out");
    let mut want: Vec<&String> = ids.values().collect();
    want.sort();
    receipts.sort();
    assert_eq!(
        receipts.iter().collect::<Vec<_>>(),
        want,
        "one receipt per message id"
    );

    // Let a few of our enquire_links go out, then unbind.
    tokio::time::sleep(Duration::from_millis(350)).await;
    handle.stop(Duration::from_secs(2)).await;

    let mut events = Vec::new();
    let collect = async {
        while let Some(v) = log_rx.recv().await {
            let done = v["event"] == "unbind";
            events.push(v);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), collect)
        .await
        .expect("no unbind at the server");
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("bind"), 1);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "bind" && e["ok"] == true)
    );
    assert_eq!(count("submit"), 3);
    assert!(
        count("enquire_link") >= 2,
        "our keep-alive reached the server: {events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "enquire_link_resp" && e["status"] == 0),
        "we answered the server's enquire_link"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "deliver_sm_resp" && e["status"] == 0)
            .count(),
        3
    );
    let parts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "submit" && e["esm_class"] == 0x40)
        .collect();
    assert_eq!(parts.len(), 2, "both parts carry UDHI: {events:?}");
    for p in parts {
        let udh = p["udh"].to_string();
        assert!(
            udh.contains("42"),
            "node-smpp parsed our concatenation UDH: {udh}"
        );
    }
    let _ = child.kill().await;
}

#[tokio::test]
async fn node_smpp_rejects_a_wrong_password_by_name() {
    let dir = interop_dir();
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("server.js"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed (it ran `npm ci` a moment ago)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().expect("server output");
    let port = serde_json::from_str::<serde_json::Value>(&first).unwrap()["port"]
        .as_u64()
        .unwrap();
    let mut cfg = SessionConfig::new("node", format!("127.0.0.1:{port}"));
    cfg.system_id = "esme".into();
    cfg.password = "nope".into();
    let (etx, mut erx) = mpsc::channel(16);
    let handle = SmscHandle::start(cfg, 4, etx).unwrap();
    let reason = loop {
        if let Some(Event::BindState {
            state: BindState::Down { reason, .. },
            ..
        }) = erx.recv().await
        {
            break reason;
        }
    };
    assert_eq!(reason.to_string(), "bind rejected: ESME_RINVPASWD");
    handle.stop(Duration::from_millis(10)).await;
    let _ = child.kill().await;
}
