//! Inbound deliver_sm / data_sm: delivery receipts and mobile-originated messages, read from
//! the sessions' own inbound channel (see [`crate::session::Channels`]; dispatch never relays
//! them).
//!
//! Each PDU is recorded durably (the receipt log row with the part's and message's state and
//! an event; or the MO with any opt-out change and an event; or one part of a concatenated MO,
//! kept until its set is complete, see [`super::mo_sets`]) before the session is told to answer
//! ESME_ROK; if the store cannot take it, the answer is ESME_RX_T_APPN and the SMSC redelivers
//! later. Never acknowledge first. A receipt that cannot be parsed or matched is still recorded
//! (unmatched, counted) and answered ESME_ROK: never an error status the SMSC would redeliver
//! for ever.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::dispatch::Dispatch;
use crate::dispatch::now_ms;
use crate::metrics as m;
use crate::pdu::{CommandStatus, SubmitSm, Tlvs};
use crate::receipt::{
    AcceptedIs, ReceiptCoding, ReceiptTlvs, final_outcome, parse_receipt_fields, receipt_text,
};
use crate::session::{Event, InboundPdu, InboundReply};
use crate::store::{
    GLOBAL_SCOPE, IncomingMo, IncomingReceipt, OptOutChange, ReceiptRecorded, RerouteRule, Store,
};
use crate::text::{Body, DecodeOptions, Fragment, UserData};

use super::mo_sets::{MoSets, RawPart};

/// How often concatenated MO sets are checked for expiry (they are also checked at every part).
const MO_EXPIRY_TICK: Duration = Duration::from_secs(5);

/// The parts of a deliver_sm or data_sm that matter here.
struct Inbound {
    esm_class: crate::pdu::EsmClass,
    data_coding: u8,
    source: String,
    destination: String,
    payload: bytes::Bytes,
    tlvs: Tlvs,
}

fn inbound_of(pdu: InboundPdu) -> Inbound {
    match pdu {
        InboundPdu::DeliverSm(sm) => from_sm(sm),
        InboundPdu::DataSm(d) => Inbound {
            esm_class: d.esm_class,
            data_coding: d.data_coding.0,
            source: String::from_utf8_lossy(d.source_addr.addr.as_bytes()).into_owned(),
            destination: String::from_utf8_lossy(d.dest_addr.addr.as_bytes()).into_owned(),
            payload: d.tlvs.message_payload().cloned().unwrap_or_default(),
            tlvs: d.tlvs,
        },
    }
}

fn from_sm(sm: SubmitSm) -> Inbound {
    let payload = if sm.short_message.is_empty() {
        sm.tlvs.message_payload().cloned().unwrap_or_default()
    } else {
        sm.short_message.bytes().clone()
    };
    Inbound {
        esm_class: sm.esm_class,
        data_coding: sm.data_coding.0,
        source: String::from_utf8_lossy(sm.source_addr.addr.as_bytes()).into_owned(),
        destination: String::from_utf8_lossy(sm.dest_addr.addr.as_bytes()).into_owned(),
        payload,
        tlvs: sm.tlvs,
    }
}

/// Per (smsc, stat): the metrics a receipt updates.
#[derive(Clone)]
struct ReceiptMetrics {
    receipts: metrics::Counter,
    to_receipt: metrics::Histogram,
    unmatched: metrics::Counter,
}

/// Keyed by (smsc, stat, unmatched reason).
type ReceiptHandles = m::Handles<(Arc<str>, &'static str, &'static str), ReceiptMetrics>;

/// Inbound PDUs being recorded at once, at most (each holds an unanswered deliver_sm; the
/// sessions bound theirs too, this bounds the total).
const MAX_PENDING: usize = 8192;

/// Handles inbound PDUs until the channel closes. Receipts are recorded concurrently in this
/// one task (the store batches them into one commit anyway; a task per receipt cost more than
/// the receipt); MO messages, rare and slower (reassembly), each get a task.
pub async fn run(
    store: Store,
    dispatch: Arc<Dispatch>,
    config: watch::Receiver<Arc<Config>>,
    mut rx: mpsc::Receiver<Event>,
) {
    let mo_sets = Arc::new(MoSets::new());
    let cfg_at_start = config.borrow().clone();
    mo_sets.rebuild(&store, &cfg_at_start).await;
    let mut mo_expiry = tokio::time::interval(MO_EXPIRY_TICK);
    let mut mo_tasks = tokio::task::JoinSet::new();
    let mut receipts = FuturesUnordered::new();
    let ctx = Arc::new(ReceiptCtx {
        store: store.clone(),
        dispatch,
        handles: m::Handles::new(),
    });
    // The reroute rule follows the configuration; rebuilt only when a reload changed it.
    let mut rule_of: (Arc<Config>, Arc<RerouteRule>) = {
        let cfg = config.borrow().clone();
        let rule = Arc::new(reroute_rule(&cfg));
        (cfg, rule)
    };
    loop {
        let ev = tokio::select! {
            ev = rx.recv(), if receipts.len() + mo_tasks.len() < MAX_PENDING => match ev {
                Some(ev) => ev,
                None => break,
            },
            Some(()) = receipts.next(), if !receipts.is_empty() => continue,
            Some(_) = mo_tasks.join_next(), if !mo_tasks.is_empty() => continue,
            _ = mo_expiry.tick() => {
                let cfg = config.borrow().clone();
                mo_sets.expire(&store, &cfg);
                continue;
            }
        };
        let Event::Inbound { pdu, reply, bind } = ev else {
            // The sessions' inbound channel carries nothing else (see `session::Channels`).
            tracing::error!(event = ?ev, "not an inbound PDU on the inbound channel; ignored");
            continue;
        };
        let cfg = config.borrow().clone();
        if !Arc::ptr_eq(&cfg, &rule_of.0) {
            rule_of = (cfg.clone(), Arc::new(reroute_rule(&cfg)));
        }
        let msg = inbound_of(pdu);
        if is_receipt(&msg) {
            let ctx = ctx.clone();
            let rule = rule_of.1.clone();
            receipts.push(async move {
                receipt(&ctx, &cfg, &bind.smsc, msg, reply, &rule).await;
            });
        } else {
            let store = store.clone();
            let mo_sets = mo_sets.clone();
            mo_tasks.spawn(async move {
                mo(&store, &cfg, &bind.smsc, msg, reply, &mo_sets).await;
            });
        }
    }
    while receipts.next().await.is_some() {}
    while mo_tasks.join_next().await.is_some() {}
    mo_sets.settle().await;
}

/// A delivery receipt by its esm_class message type: SMSC delivery receipt (0x04), SME delivery
/// acknowledgement (0x08: some SMSCs mark their receipts so; Kannel takes it as a receipt too)
/// or intermediate notification (0x20); or by the receipt TLVs: some SMSCs send receipts with
/// esm_class 0, and an MO never carries `receipted_message_id`.
fn is_receipt(msg: &Inbound) -> bool {
    matches!(msg.esm_class.message_type(), 0x04 | 0x08 | 0x20)
        || msg.tlvs.receipted_message_id().is_some()
}

/// The routes that resend a part once through another SMSC after UNDELIV/REJECTD.
fn reroute_rule(cfg: &Config) -> RerouteRule {
    cfg.routes
        .iter()
        .filter(|r| r.reroute_undelivered)
        .fold(RerouteRule::none(), |rule, r| {
            rule.with_route(&r.name, &r.smsc)
        })
}

/// What recording a receipt needs besides the receipt.
struct ReceiptCtx {
    store: Store,
    dispatch: Arc<Dispatch>,
    handles: ReceiptHandles,
}

/// A receipt as read from its PDU: the parsed fields (`id` empty when it carries none), the text
/// the parser read (decoded by `data_coding`), and the raw TLVs for the log.
struct ReadReceipt {
    receipt: crate::receipt::Receipt,
    text: Vec<u8>,
    tlv_state: Option<u8>,
    tlv_network_error: Option<[u8; 3]>,
}

fn read_receipt(msg: &Inbound, gsm_packed: bool) -> ReadReceipt {
    // A receipted_message_id that is not UTF-8 is still an id (lossy, as the text is).
    let tlv_id = msg
        .tlvs
        .receipted_message_id()
        .map(|id| String::from_utf8_lossy(id.as_bytes()).into_owned());
    let tlv_state = msg.tlvs.message_state().map(|s| s.0);
    let tlv_network_error = msg.tlvs.network_error_code().map(|n| {
        let c = n.error_code.to_be_bytes();
        [n.network_type, c[0], c[1]]
    });
    let tlvs = ReceiptTlvs {
        receipted_message_id: tlv_id.as_deref(),
        message_state: tlv_state,
        network_error_code: tlv_network_error,
    };
    let coding = ReceiptCoding {
        data_coding: msg.data_coding,
        udhi: msg.esm_class.udhi(),
        gsm_packed,
    };
    let text = receipt_text(&msg.payload, coding).into_owned();
    ReadReceipt {
        receipt: parse_receipt_fields(&text, &tlvs),
        text,
        tlv_state,
        tlv_network_error,
    }
}

/// Why a receipt matched no part (the `reason` label of `smppd_receipts_unmatched_total`).
fn unmatched_reason(has_id: bool) -> &'static str {
    if has_id { "unknown_id" } else { "no_id" }
}

/// Records one receipt and answers it. Every receipt the store takes is answered ESME_ROK,
/// whether it matched a part, matched none (kept unmatched in the log, counted) or carried no
/// id at all: an error answer would make the SMSC redeliver it for ever or give up on the bind.
/// Only a store that cannot take it gets ESME_RX_T_APPN, so the SMSC redelivers later.
async fn receipt(
    ctx: &ReceiptCtx,
    cfg: &Config,
    smsc_name: &Arc<str>,
    msg: Inbound,
    reply: InboundReply,
    reroute: &RerouteRule,
) {
    let (store, dispatch, handles) = (&ctx.store, &ctx.dispatch, &ctx.handles);
    let smsc: &str = smsc_name;
    let smsc_cfg = cfg.smsc(smsc);
    let rule = smsc_cfg.map(|s| s.receipt_id).unwrap_or_default();
    let accepted = if smsc_cfg.is_some_and(|s| s.acceptd_final) {
        AcceptedIs::Final
    } else {
        AcceptedIs::Intermediate
    };
    let read = read_receipt(&msg, smsc_cfg.is_some_and(|s| s.gsm_packed));
    let has_id = !read.receipt.id.is_empty();
    if !has_id {
        tracing::warn!(%smsc, raw = %String::from_utf8_lossy(&read.text), "receipt without a message id kept unmatched");
    }
    let outcome = if msg.esm_class.is_intermediate_notification() {
        None
    } else {
        final_outcome(read.receipt.stat, accepted)
    };
    let stat = read.receipt.stat.as_str();
    let incoming = IncomingReceipt {
        smsc: smsc.to_owned(),
        rule,
        receipt: read.receipt,
        outcome,
        raw: read.text,
        tlv_state: read.tlv_state,
        tlv_network_error: read.tlv_network_error,
        now_ms: now_ms(),
        reroute: reroute.clone(),
    };
    match store.backend().record_receipt(incoming).await {
        Ok(recorded) => {
            let reason = unmatched_reason(has_id);
            let h = handles.get(&(smsc_name.clone(), stat, reason), |(smsc, stat, reason)| ReceiptMetrics {
                receipts: metrics::counter!(m::RECEIPTS, m::label::SMSC => smsc.to_string(), m::label::STAT => *stat),
                to_receipt: metrics::histogram!(m::ACCEPT_TO_RECEIPT_SECONDS, m::label::SMSC => smsc.to_string()),
                unmatched: metrics::counter!(m::RECEIPTS_UNMATCHED, m::label::SMSC => smsc.to_string(), m::label::REASON => *reason),
            });
            match &recorded {
                ReceiptRecorded::Matched(applied) => {
                    let age_ms = (now_ms() - applied.part.message.millis()).max(0);
                    h.to_receipt.record(age_ms as f64 / 1000.0);
                    if applied.state.is_final() {
                        metrics::counter!(m::MESSAGES_FINAL, m::label::STATE => applied.state.as_str())
                            .increment(1);
                    }
                }
                ReceiptRecorded::Held { .. } => h.unmatched.increment(1),
                ReceiptRecorded::Rerouted { reroute, .. } => dispatch.rerouted(reroute),
                _ => {}
            }
            h.receipts.increment(1);
            reply.ok();
        }
        Err(e) => {
            tracing::warn!(%smsc, error = %e, "receipt not recorded; asking the SMSC to redeliver");
            reply.answer(CommandStatus::ESME_RX_T_APPN);
        }
    }
}

async fn mo(
    store: &Store,
    cfg: &Config,
    smsc: &str,
    msg: Inbound,
    reply: InboundReply,
    mo_sets: &MoSets,
) {
    let packed = cfg.smsc(smsc).is_some_and(|s| s.gsm_packed);
    let opts = DecodeOptions {
        packed,
        ia5_as_gsm: true,
    };
    let udhi = msg.esm_class.udhi();
    let ud = UserData::parse(msg.data_coding, udhi, &msg.payload, &opts);
    let sar_tlvs = msg.tlvs.sar();
    let sar = sar_tlvs.map(|(r, t, s)| crate::text::Sar {
        msg_ref_num: r,
        total_segments: t,
        segment_seqnum: s,
    });
    if let Some(frag) = Fragment::from_user_data(&msg.source, &msg.destination, &ud, sar) {
        // A part of a concatenated MO: kept durably until its set is complete.
        let raw = RawPart {
            smsc,
            data_coding: msg.data_coding,
            udhi,
            sar: sar_tlvs,
            payload: &msg.payload,
        };
        mo_sets.part(store, cfg, raw, frag, reply).await;
        return;
    }
    let text = body_text(ud.decode().body);
    let incoming = incoming_mo(cfg, smsc, &msg.source, &msg.destination, text, 1);
    let change = incoming.optout.clone();
    match store.backend().record_mo(incoming).await {
        Ok(_) => {
            counted(smsc, change);
            reply.ok();
        }
        Err(e) => {
            tracing::warn!(%smsc, error = %e, "MO not recorded; asking the SMSC to redeliver");
            reply.answer(CommandStatus::ESME_RX_T_APPN);
        }
    }
}

/// The MO to record for a text from `source` to `dest`: the sender as E.164 when it reads as
/// one, and the opt-out change its keyword asks for.
pub(super) fn incoming_mo(
    cfg: &Config,
    smsc: &str,
    source: &str,
    dest: &str,
    text: String,
    parts: u8,
) -> IncomingMo {
    let optout = optout_change(cfg, &text, dest);
    let from = crate::address::Msisdn::parse(&format!("+{source}"))
        .map(|m| m.to_string())
        .unwrap_or_else(|_| source.to_owned());
    IncomingMo {
        smsc: smsc.to_owned(),
        from,
        to: dest.to_owned(),
        text,
        parts,
        optout,
        now_ms: now_ms(),
    }
}

/// The opt-out change an MO asks for: its first word (case, punctuation and diacritics
/// ignored, so "Stopp tack", "STOP!" and "stop please" all count) is a stop keyword (`[optout]
/// stop`: the scope of the address it was sent to, its `[[sender]]` group's; `[marketing]
/// global_stop`: every sender) or a start keyword (undoes exactly the scope it was sent to; a
/// global opt-out stays). An MO without a destination address has no sender scope: its stop
/// keyword opts out of every sender, and a start keyword undoes a global opt-out.
fn optout_change(cfg: &Config, text: &str, dest: &str) -> Option<OptOutChange> {
    use crate::policy::StopReply;
    use crate::policy::keyword::{first_word_matches, normalize};
    let mut scope = cfg.policy.optout_scope(dest);
    if scope.is_empty() {
        scope = GLOBAL_SCOPE.to_owned();
    }
    match cfg.policy.stop_reply(text, &cfg.optout.stop) {
        Some(StopReply::All(k)) => Some(OptOutChange::Add {
            keyword: normalize(k),
            scope: GLOBAL_SCOPE.to_owned(),
        }),
        Some(StopReply::Sender(k)) => Some(OptOutChange::Add {
            keyword: normalize(k),
            scope,
        }),
        None => first_word_matches(text, &cfg.optout.start).map(|_| OptOutChange::Remove { scope }),
    }
}

/// Counts a recorded MO and its opt-out change.
pub(super) fn counted(smsc: &str, change: Option<OptOutChange>) {
    metrics::counter!(m::MO_RECEIVED, m::label::SMSC => smsc.to_owned()).increment(1);
    if let Some(c) = change {
        let state = match c {
            OptOutChange::Add { .. } => "added",
            OptOutChange::Remove { .. } => "removed",
        };
        metrics::counter!(m::OPTOUTS, m::label::STATE => state).increment(1);
    }
}

pub(super) fn body_text(b: Body) -> String {
    match b {
        Body::Text(t) => t,
        Body::Binary(b) => hex::encode(b),
    }
}
