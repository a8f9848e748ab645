//! Delivery receipts as real SMSCs send them, over the SMPP wire to `smppd run` (issue #16,
//! item 1). One table of cases of our own making, one per kind of receipt that went wrong: stat
//! words (ACCEPTD and the other intermediate words, unknown words), text that is not the
//! appendix-B line, ids in other forms and letter case, other data codings, `message_payload`
//! and TLV-only receipts, and receipts that cannot be matched. Each case submits a message
//! through the submit protocol, injects its receipt(s) at the simulated SMSC
//! ([`smppd::sim::SimControl::inject_deliver`]) and checks the deliver_sm_resp status the SMSC
//! got (always ESME_ROK) and the message's state and stat through `query`.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use smppd::pdu::{
    COctetString, DataCoding, DeliverSm, EsmClass, MessageState, NetworkErrorCode, OctetString,
    Tlv, Tlvs,
};
use smppd::sim::{IdFormat, SimConfig, SimHandle, Simulator};
use support::{Daemon, Smsc, Smscs, reports_json};

/// Two SMSCs that send no receipts of their own, with the given id formats: op-a takes +46…
/// (route r1), op-b everything else (route r2).
async fn smscs(a: IdFormat, b: IdFormat) -> Smscs {
    let start = |format: IdFormat| async move {
        let mut c = SimConfig::new("127.0.0.1:0").account("smppd", "secret");
        c.record_submits = true;
        c.record_receipts = true;
        c.receipts.enabled = false;
        c.id_format = format;
        Simulator::start(c).await.expect("simulator")
    };
    Smscs {
        a: Smsc {
            name: "op-a",
            sim: start(a).await,
            window: 10,
            binds: 1,
        },
        b: Smsc {
            name: "op-b",
            sim: start(b).await,
            window: 10,
            binds: 1,
        },
    }
}

const TO_A: &str = "+46701234567";
const TO_B: &str = "+33612345678";

fn octets(b: Vec<u8>) -> OctetString<0, 254> {
    OctetString::new(Bytes::from(b)).expect("short_message fits")
}

fn receipted(id: &str) -> Tlv {
    Tlv::ReceiptedMessageId(COctetString::try_from(id).expect("id fits"))
}

/// A receipt deliver_sm with `short_message` in `data_coding`.
fn coded(data_coding: u8, user_data: Vec<u8>) -> DeliverSm {
    DeliverSm {
        esm_class: EsmClass::DELIVERY_RECEIPT,
        data_coding: DataCoding(data_coding),
        short_message: octets(user_data),
        ..DeliverSm::default()
    }
}

/// A receipt deliver_sm with ASCII text (data_coding 0).
fn text(s: String) -> DeliverSm {
    coded(0, s.into_bytes())
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// One receipt of a case and what the message says after it.
struct Step {
    pdu: Box<dyn Fn(&str) -> DeliverSm>,
    /// The part's `stat` after it (the SMSC's word).
    stat: &'static str,
    /// The message's state after it.
    state: &'static str,
}

fn step(
    pdu: impl Fn(&str) -> DeliverSm + 'static,
    stat: &'static str,
    state: &'static str,
) -> Step {
    Step {
        pdu: Box::new(pdu),
        stat,
        state,
    }
}

struct Case {
    name: &'static str,
    /// Destination: decides the SMSC (and so the id format).
    to: &'static str,
    steps: Vec<Step>,
}

/// The cases of the default configuration (`acceptd_final` unset: ACCEPTD is intermediate);
/// op-a returns lowercase hex ids, op-b upper-case UUIDs.
fn default_cases() -> Vec<Case> {
    let std_line = |id: &str, stat: &str| {
        format!(
            "id:{id} sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:{stat} err:000 text:Hello"
        )
    };
    vec![
        Case {
            name: "appendix-B DELIVRD",
            to: TO_A,
            steps: vec![step(
                move |id| text(std_line(id, "DELIVRD")),
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "ACCEPTD is intermediate, the later DELIVRD settles it",
            to: TO_A,
            steps: vec![
                step(
                    move |id| text(std_line(id, "ACCEPTD")),
                    "ACCEPTD",
                    "submitted",
                ),
                step(
                    move |id| text(std_line(id, "DELIVRD")),
                    "DELIVRD",
                    "delivered",
                ),
            ],
        },
        Case {
            name: "ACCEPTED in the message_state TLV only is intermediate too",
            to: TO_B,
            steps: vec![step(
                |id| DeliverSm {
                    esm_class: EsmClass::DELIVERY_RECEIPT,
                    tlvs: Tlvs::new()
                        .with(receipted(id))
                        .with(Tlv::MessageState(MessageState::ACCEPTED)),
                    ..DeliverSm::default()
                },
                "ACCEPTD",
                "submitted",
            )],
        },
        Case {
            name: "BUFFRED and ENROUTE are intermediate, UNDELIV after them is final",
            to: TO_A,
            steps: vec![
                step(
                    move |id| text(std_line(id, "BUFFRED")),
                    "BUFFRED",
                    "submitted",
                ),
                step(
                    move |id| text(std_line(id, "ENROUTE")),
                    "ENROUTE",
                    "submitted",
                ),
                step(
                    move |id| text(std_line(id, "UNDELIV")),
                    "UNDELIV",
                    "undeliverable",
                ),
            ],
        },
        Case {
            name: "a late ENROUTE or ACCEPTD after DELIVRD changes nothing",
            to: TO_B,
            steps: vec![
                step(
                    move |id| text(std_line(id, "DELIVRD")),
                    "DELIVRD",
                    "delivered",
                ),
                step(
                    move |id| text(std_line(id, "ENROUTE")),
                    "DELIVRD",
                    "delivered",
                ),
                step(
                    move |id| text(std_line(id, "ACCEPTD")),
                    "DELIVRD",
                    "delivered",
                ),
            ],
        },
        Case {
            name: "an intermediate notification (esm_class 0x20) never settles",
            to: TO_A,
            steps: vec![step(
                move |id| DeliverSm {
                    esm_class: EsmClass::INTERMEDIATE_NOTIFICATION,
                    ..text(std_line(id, "DELIVRD"))
                },
                "DELIVRD",
                "submitted",
            )],
        },
        Case {
            name: "an unknown stat word is kept verbatim and never delivered",
            to: TO_A,
            steps: vec![step(
                move |id| text(std_line(id, "NOROUTE")),
                "NOROUTE",
                "undeliverable",
            )],
        },
        Case {
            name: "junk before id: without a space, junk after the last field",
            to: TO_A,
            steps: vec![step(
                |id| {
                    let mut b = b"\x02\x00#".to_vec();
                    b.extend_from_slice(
                        format!("id:{id} sub:1 dlvrd:1 stat:DELIVRD err:0 \x00\x00 -- end")
                            .as_bytes(),
                    );
                    coded(0, b)
                },
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "fields in another order, text: not last and full of colons",
            to: TO_B,
            steps: vec![step(
                |id| {
                    text(format!(
                        "submit date:2501021530 text:Code: 12, id: 9 at 10:30 id:{id} done date:2501021531 stat:REJECTD err:021 sub:001 dlvrd:000"
                    ))
                },
                "REJECTD",
                "rejected",
            )],
        },
        Case {
            name: "label case (Id:, STAT:, Text:)",
            to: TO_A,
            steps: vec![step(
                |id| {
                    text(format!(
                        "Id:{id} Sub:001 Dlvrd:000 STAT:EXPIRED ERR:000 Text:hi"
                    ))
                },
                "EXPIRED",
                "expired",
            )],
        },
        Case {
            name: "empty err:, unpadded sub/dlvrd, dlvrd greater than sub",
            to: TO_A,
            steps: vec![step(
                |id| text(format!("id:{id} sub:1 dlvrd:2 stat:DELIVRD err: text:x")),
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "missing err:, 12- and 14-digit dates with zones",
            to: TO_B,
            steps: vec![step(
                |id| {
                    text(format!(
                        "id:{id} submit date:20250102153012+01:00 done date:250102153112Z stat:DELIVRD"
                    ))
                },
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "id in another letter case than submit_sm_resp (hex)",
            to: TO_A,
            steps: vec![step(
                move |id| text(std_line(&id.to_uppercase(), "DELIVRD")),
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "UUID id in lower case for an upper-case submit_sm_resp id",
            to: TO_B,
            steps: vec![step(
                move |id| text(std_line(&id.to_lowercase(), "DELIVRD")),
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "receipt text in UCS-2 (data_coding 8)",
            to: TO_A,
            steps: vec![step(
                move |id| coded(8, ucs2(&std_line(id, "DELIVRD"))),
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "receipt text in Latin-1 (data_coding 3)",
            to: TO_B,
            steps: vec![step(
                |id| {
                    let line = format!("id:{id} stat:UNDELIV err:001 text:Grüße");
                    coded(3, line.chars().map(|c| c as u8).collect())
                },
                "UNDELIV",
                "undeliverable",
            )],
        },
        Case {
            name: "receipt in message_payload (UCS-2)",
            to: TO_A,
            steps: vec![step(
                move |id| DeliverSm {
                    esm_class: EsmClass::DELIVERY_RECEIPT,
                    data_coding: DataCoding::UCS2,
                    tlvs: Tlvs::new().with(Tlv::MessagePayload(
                        OctetString::new(Bytes::from(ucs2(&std_line(id, "DELIVRD"))))
                            .expect("payload"),
                    )),
                    ..DeliverSm::default()
                },
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "TLV-only receipt: receipted_message_id and message_state",
            to: TO_B,
            steps: vec![step(
                |id| DeliverSm {
                    esm_class: EsmClass::DELIVERY_RECEIPT,
                    tlvs: Tlvs::new()
                        .with(receipted(id))
                        .with(Tlv::MessageState(MessageState::DELIVERED)),
                    ..DeliverSm::default()
                },
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "TLV-only UNDELIVERABLE with network_error_code",
            to: TO_A,
            steps: vec![step(
                |id| DeliverSm {
                    esm_class: EsmClass::DELIVERY_RECEIPT,
                    tlvs: Tlvs::new()
                        .with(receipted(id))
                        .with(Tlv::MessageState(MessageState::UNDELIVERABLE))
                        .with(Tlv::NetworkErrorCode(NetworkErrorCode {
                            network_type: 3,
                            error_code: 34,
                        })),
                    ..DeliverSm::default()
                },
                "UNDELIV",
                "undeliverable",
            )],
        },
        Case {
            name: "receipt marked as an SME delivery acknowledgement (esm_class 0x08)",
            to: TO_B,
            steps: vec![step(
                move |id| DeliverSm {
                    esm_class: EsmClass::DELIVERY_ACK,
                    ..text(std_line(id, "DELIVRD"))
                },
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "the literal UNKNOWN is final undeliverable; a message_state number names its stat",
            to: TO_A,
            steps: vec![
                step(
                    move |id| text(std_line(id, "UNKNOWN")),
                    "UNKNOWN",
                    "undeliverable",
                ),
                step(move |id| text(std_line(id, "2")), "2", "delivered"),
            ],
        },
        Case {
            name: "ASCII octets labelled UCS-2, submitdate:/donedate: spellings",
            to: TO_B,
            steps: vec![step(
                |id| {
                    let line = format!(
                        "id:{id} sub:1 dlvrd:0 submitdate:2501021530 donedate:2501021531 stat:EXPIRED err:0"
                    );
                    coded(8, line.into_bytes())
                },
                "EXPIRED",
                "expired",
            )],
        },
        Case {
            name: "the message_state TLV wins over the text's stat",
            to: TO_A,
            steps: vec![step(
                move |id| DeliverSm {
                    tlvs: Tlvs::new()
                        .with(receipted(id))
                        .with(Tlv::MessageState(MessageState::REJECTED)),
                    ..text(std_line(id, "DELIVRD"))
                },
                "REJECTD",
                "rejected",
            )],
        },
        Case {
            name: "receipt TLVs with esm_class 0",
            to: TO_A,
            steps: vec![step(
                move |id| DeliverSm {
                    esm_class: EsmClass::DEFAULT,
                    tlvs: Tlvs::new()
                        .with(receipted(id))
                        .with(Tlv::MessageState(MessageState::DELIVERED)),
                    ..text(std_line(id, "DELIVRD"))
                },
                "DELIVRD",
                "delivered",
            )],
        },
    ]
}

/// The cases of an SMSC with `acceptd_final = true` and `gsm_packed = true`; op-a returns
/// 32-hex-digit ids, op-b hyphenated ids in mixed case.
fn final_acceptd_cases() -> Vec<Case> {
    let line = |id: &str, stat: &str| format!("id:{id} sub:001 dlvrd:000 stat:{stat} err:000");
    vec![
        Case {
            name: "ACCEPTD final is `accepted`, not delivered; a later DELIVRD settles it",
            to: TO_A,
            steps: vec![
                step(move |id| text(line(id, "ACCEPTD")), "ACCEPTD", "accepted"),
                step(move |id| text(line(id, "DELIVRD")), "DELIVRD", "delivered"),
            ],
        },
        Case {
            name: "a final ACCEPTD after DELIVRD does not undo it",
            to: TO_A,
            steps: vec![
                step(move |id| text(line(id, "DELIVRD")), "DELIVRD", "delivered"),
                step(move |id| text(line(id, "ACCEPTD")), "DELIVRD", "delivered"),
            ],
        },
        Case {
            name: "ACCEPTD final stays accepted",
            to: TO_B,
            steps: vec![step(
                move |id| text(line(id, "ACCEPTD")),
                "ACCEPTD",
                "accepted",
            )],
        },
        Case {
            name: "GSM 7-bit packed receipt, 32-hex id in upper case",
            to: TO_A,
            steps: vec![step(
                move |id| {
                    let mut packed = Vec::new();
                    smppd::text::gsm::pack_septets(
                        line(&id.to_uppercase(), "DELIVRD").as_bytes(),
                        0,
                        &mut packed,
                    );
                    coded(0, packed)
                },
                "DELIVRD",
                "delivered",
            )],
        },
        Case {
            name: "hyphenated alphanumeric id in another case",
            to: TO_B,
            steps: vec![step(
                move |id| text(line(&id.to_lowercase(), "UNDELIV")),
                "UNDELIV",
                "undeliverable",
            )],
        },
    ]
}

fn sim_for<'a>(smscs: &'a Smscs, to: &str) -> &'a SimHandle {
    if to == TO_A {
        &smscs.a.sim
    } else {
        &smscs.b.sim
    }
}

/// Polls `query` until `done` holds for the message; panics with the last answer after 20 s.
async fn query_until(d: &Daemon, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = d.call(json!({"op":"query","id":id})).await;
        if done(&v["message"]) {
            return v["message"].clone();
        }
        assert!(Instant::now() < deadline, "{what}: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Injects a deliver_sm at `sim` and waits for the daemon's answer; asserts it was ESME_ROK
/// the first time.
async fn deliver(sim: &SimHandle, message_id: &str, pdu: DeliverSm, what: &str) {
    let serial = sim.inject_deliver(None, message_id, pdu);
    assert!(serial > 0, "receipts are recorded");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = sim.receipts_log()[serial as usize - 1].clone();
        if r.acked + r.refused > 0 {
            assert_eq!(
                (r.refused, r.last_status),
                (0, Some(0)),
                "{what}: deliver_sm_resp must be ESME_ROK"
            );
            return;
        }
        assert!(Instant::now() < deadline, "{what}: no deliver_sm_resp");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs each case: submit, wait for the SMSC id, then each receipt and its expected outcome.
async fn run_cases(d: &Daemon, smscs: &Smscs, cases: Vec<Case>) {
    for case in cases {
        let name = case.name;
        let r = d
            .call(json!({"op":"submit","to":case.to,"from":"ACME","text":name}))
            .await;
        assert_eq!(r["ok"], true, "{name}: {r}");
        let id = r["id"].as_str().expect("id").to_owned();
        let m = query_until(d, &id, name, |m| m["parts"][0]["smsc_id"].is_string()).await;
        let smsc_id = m["parts"][0]["smsc_id"]
            .as_str()
            .expect("smsc id")
            .to_owned();
        for (i, s) in case.steps.iter().enumerate() {
            let what = format!("{name} (receipt {}, smsc id {smsc_id})", i + 1);
            deliver(sim_for(smscs, case.to), &smsc_id, (s.pdu)(&smsc_id), &what).await;
            let m = query_until(d, &id, &what, |m| {
                m["parts"][0]["stat"] == s.stat && m["state"] == s.state
            })
            .await;
            assert_ne!(
                (s.stat, m["state"].as_str()),
                ("ACCEPTD", Some("delivered")),
                "{what}"
            );
        }
    }
}

/// `smppd reports --unmatched --json` on the daemon's store.
fn unmatched_rows(d: &Daemon) -> Vec<Value> {
    reports_json(&d.db, &["--unmatched"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_receipt_is_correlated_classified_and_answered_rok() {
    let smscs = smscs(IdFormat::Hex, IdFormat::Uuid).await;
    let d = smscs.daemon("", "").start().await;
    d.wait_bound().await;
    run_cases(&d, &smscs, default_cases()).await;

    // Receipts that cannot be matched are answered ESME_ROK too, logged unmatched and counted
    // by reason: one with no message id anywhere, one for an id no part has.
    let sim = &smscs.a.sim;
    let garbage = text("\u{1}DLR for your message: status OK".to_owned());
    deliver(sim, "", garbage, "a receipt with no id").await;
    let unknown = text("id:feedface0 sub:001 dlvrd:001 stat:DELIVRD err:000".to_owned());
    deliver(sim, "feedface0", unknown, "a receipt for an unknown id").await;
    let rows = unmatched_rows(&d);
    let raw_of = |needle: &str| {
        rows.iter()
            .find(|r| r["raw"].as_str().is_some_and(|s| s.contains(needle)))
    };
    let no_id = raw_of("status OK").unwrap_or_else(|| panic!("no-id receipt not logged: {rows:?}"));
    assert_eq!(no_id["message"], Value::Null, "{no_id}");
    let unknown = raw_of("feedface0").unwrap_or_else(|| panic!("unknown id not logged: {rows:?}"));
    assert_eq!(unknown["message"], Value::Null, "{unknown}");
    let unmatched = "smppd_receipts_unmatched_total";
    assert_eq!(d.metric(unmatched, &["reason=\"no_id\""]).await, 1.0);
    assert_eq!(d.metric(unmatched, &["reason=\"unknown_id\""]).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptd_final_is_its_own_state_and_packed_receipts_are_read() {
    let smscs = smscs(IdFormat::Hex32, IdFormat::Hyphenated).await;
    let d = smscs
        .daemon("", "acceptd_final = true\ngsm_packed = true")
        .start()
        .await;
    d.wait_bound().await;
    run_cases(&d, &smscs, final_acceptd_cases()).await;
    // `accepted` is a final state of its own in the reports.
    let rows = reports_json(&d.db, &["--state", "accepted"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["state"], "accepted");
    assert_eq!(
        d.metric("smppd_messages_final_total", &["state=\"accepted\""])
            .await,
        2.0
    );
}

/// An SMSC (`receipt_id = "hex_to_dec"`) whose receipt text carries the decimal form of the
/// hex id its submit_sm_resp returned, with leading zeros and no TLV to fall back on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_id_in_the_other_base_is_matched_by_the_smscs_rule() {
    let smscs = smscs(IdFormat::Hex, IdFormat::Hex).await;
    let d = smscs
        .daemon("", "receipt_id = \"hex_to_dec\"")
        .start()
        .await;
    d.wait_bound().await;
    let decimal = |id: &str| {
        let n = u128::from_str_radix(id, 16).expect("a hex id");
        format!("00{n}")
    };
    let cases = vec![Case {
        name: "decimal text id for a hex submit id",
        to: TO_A,
        steps: vec![step(
            move |id| {
                text(format!(
                    "id:{} sub:001 dlvrd:001 stat:DELIVRD err:000",
                    decimal(id)
                ))
            },
            "DELIVRD",
            "delivered",
        )],
    }];
    run_cases(&d, &smscs, cases).await;
}
