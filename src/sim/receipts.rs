//! What the simulator sends on its own: delivery receipts (SMPP 3.4 appendix-B text plus the
//! receipted_message_id and message_state TLVs), mobile-originated messages (split with a UDH when
//! long or asked to), malformed PDUs for fault tests, and the scheduler that holds deliveries for
//! their delay and hands each to a receiver bind of its login. The backlog is bounded
//! (`max_backlog`); what does not fit is counted and dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::conn::SubmitInfo;
use super::state::{Delivery, Shared};
use super::{IdFormat, Malformed, ReceiptConfig, ReceiptIds};
use crate::pdu::{
    Address, DataCoding, DeliverSm, EsmClass, MessageState, Npi, OctetString, Tlv, Tlvs, Ton,
};

/// How long a login whose receivers are all busy (or absent) waits before the next try: short,
/// since a busy receiver frees up within a round trip.
const RETRY_LATER: Duration = Duration::from_millis(2);

/// A mobile-originated message to inject.
#[derive(Debug, Clone)]
pub struct MoMessage {
    /// Which login receives it (`None`: any receiver bind).
    pub system_id: Option<String>,
    /// The handset number (source_addr).
    pub from: String,
    /// The short code or number it was sent to (destination_addr).
    pub to: String,
    /// The text. GSM-safe ASCII goes as data_coding 0, anything else as UCS-2.
    pub text: String,
    /// Split into a concatenated message (UDH 8-bit reference) even when it would fit in one.
    pub concatenated: bool,
}

/// The current UTC time as `YYMMDDhhmm` (the receipt date format), without a date library.
pub fn utc_timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = crate::pdu::civil_from_days(days);
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        y.rem_euclid(100),
        m,
        d,
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// The id in the other base (hex ↔ decimal); unchanged when it does not parse.
fn other_base(id: &str, format: IdFormat) -> String {
    match format {
        IdFormat::Hex => {
            u64::from_str_radix(id, 16).map_or_else(|_| id.to_owned(), |n| n.to_string())
        }
        IdFormat::Decimal => id
            .parse::<u64>()
            .map_or_else(|_| id.to_owned(), |n| format!("{n:x}")),
        // Not numbers: the same in every base.
        IdFormat::Uuid | IdFormat::Hex32 | IdFormat::Hyphenated => id.to_owned(),
    }
}

fn pick_state(cfg: &ReceiptConfig) -> (MessageState, &'static str, &'static str) {
    let m = cfg.mix;
    let total = u64::from(m.delivered)
        + u64::from(m.undeliverable)
        + u64::from(m.expired)
        + u64::from(m.rejected);
    if total == 0 {
        return (MessageState::DELIVERED, "DELIVRD", "000");
    }
    let mut r = rand::random_range(0..total);
    for (w, out) in [
        (m.delivered, (MessageState::DELIVERED, "DELIVRD", "000")),
        (
            m.undeliverable,
            (MessageState::UNDELIVERABLE, "UNDELIV", "001"),
        ),
        (m.expired, (MessageState::EXPIRED, "EXPIRED", "002")),
        (m.rejected, (MessageState::REJECTED, "REJECTD", "003")),
    ] {
        let w = u64::from(w);
        if r < w {
            return out;
        }
        r -= w;
    }
    (MessageState::DELIVERED, "DELIVRD", "000")
}

fn sme_address(ton: u8, npi: u8, addr: &[u8]) -> Address<21> {
    let value = crate::pdu::COctetString::new(Bytes::copy_from_slice(addr)).unwrap_or_default();
    Address {
        ton: Ton(ton),
        npi: Npi(npi),
        addr: value,
    }
}

/// The receipt for an accepted submit, if it asked for one (registered_delivery 1, or 2 and the
/// chosen state is a failure).
pub(crate) fn receipt_for(
    cfg: &ReceiptConfig,
    format: IdFormat,
    system_id: &Arc<str>,
    message_id: &str,
    submit: &SubmitInfo<'_>,
) -> Option<Delivery> {
    let wanted = submit.wants_receipt & 0x03;
    if !cfg.enabled || !matches!(wanted, 1 | 2) {
        return None;
    }
    let (state, stat, err) = pick_state(cfg);
    if wanted == 2 && state == MessageState::DELIVERED {
        return None;
    }
    let (text_id, tlv_id) = match cfg.ids {
        ReceiptIds::Same => (message_id.to_owned(), message_id.to_owned()),
        ReceiptIds::Other => {
            let o = other_base(message_id, format);
            (o.clone(), o)
        }
        ReceiptIds::OtherInText => (other_base(message_id, format), message_id.to_owned()),
    };
    let now = utc_timestamp(SystemTime::now());
    let head: String = String::from_utf8_lossy(&submit.payload[..submit.payload.len().min(20)])
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect();
    let dlvrd = if state == MessageState::DELIVERED {
        "001"
    } else {
        "000"
    };
    let text = format!(
        "id:{text_id} sub:001 dlvrd:{dlvrd} submit date:{now} done date:{now} stat:{stat} err:{err} text:{head}"
    );
    let short_message = OctetString::new(Bytes::from(text.into_bytes()))
        .or_else(|_| OctetString::new(Bytes::new()))
        .ok()?;
    let receipted = crate::pdu::COctetString::try_from(tlv_id.as_str()).ok()?;
    let body = DeliverSm {
        // A receipt comes from the handset the message went to, towards its sender.
        source_addr: sme_address(submit.dest.0, submit.dest.1, submit.dest.2),
        dest_addr: sme_address(submit.source.0, submit.source.1, submit.source.2),
        esm_class: EsmClass::DELIVERY_RECEIPT,
        short_message,
        tlvs: Tlvs::new()
            .with(Tlv::ReceiptedMessageId(receipted))
            .with(Tlv::MessageState(state)),
        ..DeliverSm::default()
    };
    Some(Delivery {
        system_id: Some(system_id.clone()),
        body: Box::new(body),
        receipt: true,
        serial: 0,
    })
}

/// A receipt for an id the simulator never issued (fault: "receipts for unknown ids").
pub(crate) fn inject_unknown_receipt(shared: &Shared, system_id: Option<&str>, message_id: &str) {
    let cfg = ReceiptConfig::default();
    let sid: Arc<str> = Arc::from(system_id.unwrap_or(""));
    let info = SubmitInfo {
        source: (1, 1, b"46700000000"),
        dest: (1, 1, b"46700000001"),
        payload: b"unknown",
        wants_receipt: 1,
    };
    if let Some(mut d) = receipt_for(&cfg, shared.config.id_format, &sid, message_id, &info) {
        if system_id.is_none() {
            d.system_id = None;
        }
        shared.track_receipt(&mut d, message_id, true);
        shared.c.receipts_created.fetch_add(1, Ordering::Relaxed);
        let _ = shared.receipts_tx.try_send(d);
    }
}

/// Queues a caller-made deliver_sm as a receipt (see [`super::SimControl::inject_deliver`]).
pub(crate) fn inject_deliver(
    shared: &Shared,
    system_id: Option<&str>,
    message_id: &str,
    body: DeliverSm,
) -> u64 {
    let mut d = Delivery {
        system_id: system_id.map(Arc::from),
        body: Box::new(body),
        receipt: true,
        serial: 0,
    };
    shared.track_receipt(&mut d, message_id, false);
    shared.c.receipts_created.fetch_add(1, Ordering::Relaxed);
    let serial = d.serial;
    if shared.receipts_tx.try_send(d).is_err() {
        shared.c.deliveries_dropped.fetch_add(1, Ordering::Relaxed);
    }
    serial
}

/// Whether the text can go as unpacked GSM 7-bit with the same octets as ASCII.
fn gsm_safe(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" !\"#%&'()*+,-./:;<=>?\n\r".contains(&b))
}

/// Queues the deliver_sm parts of an MO message.
pub(crate) fn inject_mo(shared: &Shared, msg: MoMessage) {
    let (coding, units): (DataCoding, Vec<Vec<u8>>) = if gsm_safe(&msg.text) {
        (
            DataCoding::DEFAULT,
            msg.text.bytes().map(|b| vec![b]).collect(),
        )
    } else {
        (
            DataCoding::UCS2,
            msg.text
                .encode_utf16()
                .map(|u| u.to_be_bytes().to_vec())
                .collect(),
        )
    };
    let (single, per_part) = if coding == DataCoding::UCS2 {
        (70, 67)
    } else {
        (160, 153)
    };
    let parts: Vec<Vec<u8>> = if units.len() <= single && !msg.concatenated {
        vec![units.concat()]
    } else {
        let per_part = if msg.concatenated && units.len() <= per_part {
            // Forced concatenation of a short text: split it in two halves.
            units.len().div_ceil(2).max(1)
        } else {
            per_part
        };
        let mut parts = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        let mut count = 0;
        for u in &units {
            // Never split a UTF-16 surrogate pair across parts.
            let high_surrogate = u.len() == 2 && (0xD8..=0xDB).contains(&u[0]);
            if count >= per_part || (high_surrogate && count + 1 >= per_part && count > 0) {
                parts.push(std::mem::take(&mut current));
                count = 0;
            }
            current.extend_from_slice(u);
            count += 1;
        }
        if !current.is_empty() || parts.is_empty() {
            parts.push(current);
        }
        parts
    };
    let total = parts.len().min(255) as u8;
    let reference: u8 = rand::random();
    for (i, part) in parts.into_iter().take(255).enumerate() {
        let (esm, data) = if total > 1 {
            let mut b = BytesMut::with_capacity(part.len() + 6);
            b.put_slice(&[0x05, 0x00, 0x03, reference, total, i as u8 + 1]);
            b.put_slice(&part);
            (EsmClass::DEFAULT.with_udhi(true), b.freeze())
        } else {
            (EsmClass::DEFAULT, Bytes::from(part))
        };
        let Ok(short_message) = OctetString::new(data) else {
            continue;
        };
        let body = DeliverSm {
            source_addr: sme_address(1, 1, msg.from.trim_start_matches('+').as_bytes()),
            dest_addr: sme_address(0, 1, msg.to.trim_start_matches('+').as_bytes()),
            esm_class: esm,
            data_coding: coding,
            short_message,
            ..DeliverSm::default()
        };
        let _ = shared.receipts_tx.try_send(Delivery {
            system_id: msg.system_id.as_deref().map(Arc::from),
            body: Box::new(body),
            receipt: false,
            serial: 0,
        });
    }
}

/// One part of a concatenated MO (UDH 8-bit reference), for tests that need a set to arrive
/// part by part: `seq` of `total`, reference `reference`, GSM-safe ASCII text (data_coding 0).
#[derive(Debug, Clone)]
pub struct MoPart {
    /// The handset number (source_addr).
    pub from: String,
    /// The short code or number it was sent to (destination_addr).
    pub to: String,
    /// The concatenation reference shared by the set's parts.
    pub reference: u8,
    /// Parts in the set.
    pub total: u8,
    /// This part's 1-based number.
    pub seq: u8,
    /// This part's text.
    pub text: String,
}

/// Queues one part of a concatenated MO for any receiver bind.
pub(crate) fn inject_mo_part(shared: &Shared, part: MoPart) {
    let mut b = BytesMut::with_capacity(part.text.len() + 6);
    b.put_slice(&[0x05, 0x00, 0x03, part.reference, part.total, part.seq]);
    b.put_slice(part.text.as_bytes());
    let Ok(short_message) = OctetString::new(b.freeze()) else {
        return;
    };
    let body = DeliverSm {
        source_addr: sme_address(1, 1, part.from.trim_start_matches('+').as_bytes()),
        dest_addr: sme_address(0, 1, part.to.trim_start_matches('+').as_bytes()),
        esm_class: EsmClass::DEFAULT.with_udhi(true),
        data_coding: DataCoding::DEFAULT,
        short_message,
        ..DeliverSm::default()
    };
    let _ = shared.receipts_tx.try_send(Delivery {
        system_id: None,
        body: Box::new(body),
        receipt: false,
        serial: 0,
    });
}

/// Bytes of a malformed PDU.
pub(crate) fn malformed(kind: Malformed) -> Bytes {
    let mut b = BytesMut::new();
    match kind {
        Malformed::Body => {
            // deliver_sm whose body is 3 octets of 0xFF: no NUL where service_type must end.
            b.put_u32(19);
            b.put_u32(0x0000_0005);
            b.put_u32(0);
            b.put_u32(0x7FFF_FF00);
            b.put_slice(&[0xFF, 0xFF, 0xFF]);
        }
        Malformed::UnknownCommand => {
            b.put_u32(16);
            b.put_u32(0x0000_0099);
            b.put_u32(0);
            b.put_u32(0x7FFF_FF01);
        }
        Malformed::OversizeLength => {
            b.put_u32(0x7FFF_FFF0);
            b.put_u32(0x0000_0005);
            b.put_u32(0);
            b.put_u32(0x7FFF_FF02);
        }
    }
    b.freeze()
}

/// Deliveries of one login, in due order (ties in arrival order, by the sequence number).
#[derive(Default)]
struct LoginQueue {
    items: BTreeMap<(Instant, u64), Delivery>,
    /// No receiver could take the front item: try again at this time.
    blocked_until: Option<Instant>,
}

impl LoginQueue {
    fn wake(&self) -> Option<Instant> {
        let due = self.items.first_key_value()?.0.0;
        Some(self.blocked_until.map_or(due, |b| b.max(due)))
    }
}

/// Holds deliveries until due and hands each to a receiver bind of its login. One due-ordered
/// queue per login (a delay range makes due order differ from arrival order): when a login's
/// receivers are all busy or absent, only that login waits, and it is retried shortly without
/// touching the rest of its queue.
pub(crate) async fn scheduler(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Delivery>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut queues: HashMap<Option<Arc<str>>, LoginQueue> = HashMap::new();
    let mut total: usize = 0;
    let max = shared.config.max_backlog.max(1);
    let mut generation = 0;
    let (mut delay, mut delay_max) = (Duration::ZERO, Duration::ZERO);
    let mut seq: u64 = 0;
    loop {
        let wake = queues
            .values()
            .filter_map(LoginQueue::wake)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            d = rx.recv() => {
                let Some(d) = d else { return };
                if total >= max {
                    shared.c.deliveries_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if shared.generation() != generation {
                    generation = shared.generation();
                    let r = shared.live().receipts;
                    (delay, delay_max) = (r.delay, r.delay_max);
                }
                let wait = if d.receipt { receipt_wait(delay, delay_max) } else { Duration::ZERO };
                seq += 1;
                queues.entry(d.system_id.clone()).or_default().items.insert((Instant::now() + wait, seq), d);
                total += 1;
            }
            _ = sleep_until(wake) => {
                let now = Instant::now();
                for q in queues.values_mut() {
                    if q.blocked_until.is_some_and(|b| b > now) {
                        continue;
                    }
                    q.blocked_until = None;
                    while q.items.first_key_value().is_some_and(|(key, _)| key.0 <= now) {
                        let Some((key, d)) = q.items.pop_first() else { break };
                        match shared.offer(d) {
                            Ok(()) => total -= 1,
                            Err(d) => {
                                q.items.insert(key, d);
                                q.blocked_until = Some(now + RETRY_LATER);
                                break;
                            }
                        }
                    }
                }
                queues.retain(|_, q| !q.items.is_empty());
            }
            _ = shutdown.changed() => return,
        }
        shared
            .c
            .deliveries_backlog
            .store(total as u64, Ordering::Relaxed);
    }
}

/// One receipt's delay: `delay`, or uniform in `delay..=delay_max` when that is longer.
fn receipt_wait(delay: Duration, delay_max: Duration) -> Duration {
    if delay_max <= delay {
        return delay;
    }
    let span = (delay_max - delay).as_micros() as u64;
    delay + Duration::from_micros(rand::random_range(0..=span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_utc_yymmddhhmm() {
        // 2026-11-29 16:30:00 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_795_969_800);
        assert_eq!(utc_timestamp(t), "2611291630");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "7001010000");
        // 2000-02-29 leap day
        assert_eq!(
            utc_timestamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "0002290000"
        );
    }

    #[test]
    fn other_base_converts_both_ways() {
        assert_eq!(other_base("38601fa", IdFormat::Hex), "59113978");
        assert_eq!(other_base("59113978", IdFormat::Decimal), "38601fa");
        assert_eq!(other_base("not-hex", IdFormat::Hex), "not-hex");
    }

    #[test]
    fn malformed_frames_have_the_promised_shape() {
        assert_eq!(malformed(Malformed::Body).len(), 19);
        assert_eq!(
            &malformed(Malformed::OversizeLength)[..4],
            &[0x7F, 0xFF, 0xFF, 0xF0]
        );
    }
}
