//! State shared by the simulator's tasks: configuration that can change mid-run (faults, receipt
//! behaviour) with a generation counter so connections re-read it only when it changed, the
//! counters, the submit log, and the registry of live connections (for receipts, MO, broadcast
//! faults). Never blocks on a connection: sends to them are `try_send`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::mpsc;

use super::pacing::{Pacing, PacingReport};
use super::{Faults, IdFormat, ReceiptConfig, SimConfig};
use crate::pdu::{CommandStatus, DeliverSm};

/// Counters of a simulator (a snapshot; serializable for `--stats` and the control port).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// TCP (or TLS) connections accepted.
    pub connections: u64,
    /// Binds accepted.
    pub binds: u64,
    /// Binds rejected (wrong login or injected rejection).
    pub binds_rejected: u64,
    /// Sessions bound right now.
    pub bound_now: u64,
    /// The most sessions ever bound at once (a gateway cluster that double-binds an account
    /// shows here).
    pub max_bound: u64,
    /// submit_sm and data_sm received.
    pub submits: u64,
    /// Responses sent, by status name (ESME_ROK included).
    pub responses: BTreeMap<String, u64>,
    /// Submits answered ESME_RTHROTTLED.
    pub throttled: u64,
    /// Submits never answered because the connection was dropped by a fault, or `silent`.
    pub unanswered: u64,
    /// Largest number of submits received on one connection and not yet answered.
    pub max_window: u64,
    /// Largest number of submits received (all connections) in any 100 ms window (sliding,
    /// exact to the microsecond): the pacing a gateway really delivers. `pacing_reset` restarts it.
    pub max_submits_100ms: u64,
    /// Receipts created.
    pub receipts_created: u64,
    /// deliver_sm receipts sent (redeliveries included).
    pub receipts_sent: u64,
    /// Receipts and MO answered ESME_ROK by the ESME.
    pub deliveries_acked: u64,
    /// deliveries answered with an error, timed out or lost with a connection (and requeued).
    pub deliveries_retried: u64,
    /// Receipts and MO dropped because the backlog was full.
    pub deliveries_dropped: u64,
    /// Deliveries waiting for a receiver bind or a free window.
    pub deliveries_backlog: u64,
    /// MO deliver_sm sent (parts).
    pub mo_sent: u64,
    /// enquire_link received.
    pub enquire_links: u64,
    /// generic_nack received from ESMEs.
    pub generic_nacks_received: u64,
    /// Connections closed by a fault (drop_after, drop).
    pub dropped_connections: u64,
    /// Unbinds received.
    pub unbinds: u64,
}

/// One submit as received (kept with `record_submits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitRecord {
    /// Login of the bind it came on.
    pub system_id: String,
    /// Connection number (1, 2, … in accept order).
    pub connection: u64,
    /// Its sequence_number.
    pub sequence_number: u32,
    /// `destination_addr`.
    pub destination_addr: String,
    /// `source_addr`.
    pub source_addr: String,
    /// `esm_class`.
    pub esm_class: u8,
    /// The user data (short_message, or message_payload).
    pub payload: Bytes,
    /// `validity_period` as received (empty: none given; data_sm has no such field).
    pub validity_period: String,
    /// The status it was answered with (`None`: never answered).
    pub status: Option<CommandStatus>,
    /// The message id given (empty unless ESME_ROK).
    pub message_id: String,
}

/// One delivery receipt the simulator created (kept with `record_receipts`), with what became
/// of it: how often it was written to an ESME and how often an ESME answered it ESME_ROK. A
/// receipt sent twice by the `duplicate` fault is one record (both copies carry its serial), so
/// "logged once per distinct receipt" can be checked against these records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptRecord {
    /// 1, 2, … in creation order.
    pub serial: u64,
    /// The login it is for (empty: any receiver bind).
    pub system_id: String,
    /// The message id it reports on (the submit_sm_resp id, or the injected unknown id).
    pub message_id: String,
    /// The receipt text (`id:… stat:… err:…`) as sent in short_message.
    pub text: String,
    /// Injected for an id this simulator never issued.
    pub unknown: bool,
    /// deliver_sm written carrying it (redeliveries and duplicate copies included).
    pub sent: u64,
    /// Answers ESME_ROK received for it.
    pub acked: u64,
    /// Answers with any other status (each one makes the simulator redeliver it).
    pub refused: u64,
    /// The status of the last answer (`None`: never answered).
    pub last_status: Option<u32>,
}

/// Something for a connection to send (or do) on behalf of another task.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A deliver_sm to send and track until its response.
    Deliver(Delivery),
    /// Raw bytes (malformed PDUs).
    Raw(Bytes),
    /// Close the connection now.
    Close,
}

/// A receipt or MO part on its way to an ESME.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// Which login may receive it (`None`: any).
    pub system_id: Option<Arc<str>>,
    /// The deliver_sm body (boxed: deliveries move through channels and queues).
    pub body: Box<DeliverSm>,
    /// A receipt (counted as such) or an MO part.
    pub receipt: bool,
    /// The receipt's [`ReceiptRecord::serial`]; 0 when not recorded (MO, or no
    /// `record_receipts`).
    pub serial: u64,
}

pub(crate) struct ConnEntry {
    pub id: u64,
    pub system_id: Arc<str>,
    pub receiver: bool,
    pub tx: mpsc::Sender<Outbound>,
}

/// The mutable settings, read by connections through a cached copy.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub faults: Faults,
    pub receipts: ReceiptConfig,
}

pub(crate) struct Shared {
    pub config: SimConfig,
    live: RwLock<Live>,
    generation: AtomicU64,
    pub started: Instant,
    next_id: AtomicU64,
    next_conn: AtomicU64,
    submit_counter: AtomicU64,
    rate: Mutex<(u64, u64)>,
    pub receipts_tx: mpsc::Sender<Delivery>,
    registry: Mutex<Vec<ConnEntry>>,
    round_robin: AtomicUsize,
    log: Mutex<Vec<SubmitRecord>>,
    /// Receipt records; `serial` n is at index n - 1.
    receipt_log: Mutex<Vec<ReceiptRecord>>,
    statuses: Mutex<BTreeMap<u32, u64>>,
    pacing: Mutex<Pacing>,
    pub c: Counters,
}

/// Atomic counters behind [`Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub connections: AtomicU64,
    pub binds: AtomicU64,
    pub binds_rejected: AtomicU64,
    pub bound_now: AtomicU64,
    pub max_bound: AtomicU64,
    pub submits: AtomicU64,
    pub ok: AtomicU64,
    pub throttled: AtomicU64,
    pub unanswered: AtomicU64,
    pub max_window: AtomicU64,
    pub receipts_created: AtomicU64,
    pub receipts_sent: AtomicU64,
    pub deliveries_acked: AtomicU64,
    pub deliveries_retried: AtomicU64,
    pub deliveries_dropped: AtomicU64,
    pub deliveries_backlog: AtomicU64,
    pub mo_sent: AtomicU64,
    pub enquire_links: AtomicU64,
    pub generic_nacks_received: AtomicU64,
    pub dropped_connections: AtomicU64,
    pub unbinds: AtomicU64,
}

impl Shared {
    pub fn new(config: SimConfig) -> (Self, mpsc::Receiver<Delivery>) {
        let (receipts_tx, receipts_rx) = mpsc::channel(8192);
        let live = Live {
            faults: config.faults.clone(),
            receipts: config.receipts.clone(),
        };
        // Ids start at a random point so two simulators (two SMSCs of one test) never hand out
        // the same id.
        let first_id = u64::from(rand::random::<u32>()) << 8;
        (
            Self {
                config,
                live: RwLock::new(live),
                generation: AtomicU64::new(1),
                started: Instant::now(),
                next_id: AtomicU64::new(first_id.max(1)),
                next_conn: AtomicU64::new(1),
                submit_counter: AtomicU64::new(0),
                rate: Mutex::new((0, 0)),
                receipts_tx,
                registry: Mutex::new(Vec::new()),
                round_robin: AtomicUsize::new(0),
                log: Mutex::new(Vec::new()),
                receipt_log: Mutex::new(Vec::new()),
                statuses: Mutex::new(BTreeMap::new()),
                pacing: Mutex::new(Pacing::default()),
                c: Counters::default(),
            },
            receipts_rx,
        )
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn live(&self) -> Live {
        self.live
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn faults(&self) -> Faults {
        self.live().faults
    }

    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        change(&mut live.faults);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn update_receipts(&self, change: impl FnOnce(&mut ReceiptConfig)) {
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        change(&mut live.receipts);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn next_connection(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh message id in the configured format.
    pub fn new_message_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        match self.config.id_format {
            IdFormat::Hex => format!("{n:x}"),
            IdFormat::Decimal => n.to_string(),
            IdFormat::Uuid => format!(
                "74E02EE1-{:04X}-4{:03X}-8{:03X}-{:012X}",
                (n >> 48) & 0xffff,
                (n >> 36) & 0xfff,
                (n >> 24) & 0xfff,
                n & 0xffff_ffff_ffff
            ),
            IdFormat::Hex32 => format!("a5a5{:012x}{n:016x}", n & 0xffff_ffff_ffff),
            IdFormat::Hyphenated => format!("Msg-{n:X}-x{}", n % 10),
        }
    }

    /// Counts one submit over the whole simulator (and its arrival time for the pacing figures);
    /// returns its ordinal (1-based).
    pub fn count_submit(&self) -> u64 {
        self.c.submits.fetch_add(1, Ordering::Relaxed);
        let us = self.started.elapsed().as_micros() as u64;
        self.pacing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(us);
        self.submit_counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether a submit now exceeds `limit` per second (a fixed one-second window).
    pub fn over_rate(&self, limit: u64) -> bool {
        let second = self.started.elapsed().as_secs();
        let mut rate = self.rate.lock().unwrap_or_else(|p| p.into_inner());
        if rate.0 != second {
            *rate = (second, 0);
        }
        rate.1 += 1;
        rate.1 > limit
    }

    pub fn count_status(&self, status: CommandStatus, n: u64) {
        if status.is_ok() {
            self.c.ok.fetch_add(n, Ordering::Relaxed);
        } else {
            let mut m = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
            *m.entry(status.0).or_default() += n;
        }
    }

    /// The per-100 ms histogram of submit arrivals and the sliding maximum.
    pub fn pacing(&self) -> PacingReport {
        self.pacing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .report()
    }

    /// Forgets the arrivals so far (the maximum restarts at 0).
    pub fn reset_pacing(&self) {
        *self.pacing.lock().unwrap_or_else(|p| p.into_inner()) = Pacing::default();
    }

    pub fn observe_window(&self, outstanding: u64) {
        self.c.max_window.fetch_max(outstanding, Ordering::Relaxed);
    }

    pub fn record(&self, records: &mut Vec<SubmitRecord>) {
        if records.is_empty() {
            return;
        }
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.append(records);
    }

    pub fn submits(&self) -> Vec<SubmitRecord> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Gives a new receipt its serial and records it (with `record_receipts`; otherwise the
    /// serial stays 0 and nothing is kept).
    pub fn track_receipt(&self, d: &mut Delivery, message_id: &str, unknown: bool) {
        if !self.config.record_receipts {
            return;
        }
        let mut log = self.receipt_log.lock().unwrap_or_else(|p| p.into_inner());
        let serial = log.len() as u64 + 1;
        d.serial = serial;
        log.push(ReceiptRecord {
            serial,
            system_id: d.system_id.as_deref().unwrap_or("").to_owned(),
            message_id: message_id.to_owned(),
            text: String::from_utf8_lossy(d.body.short_message.as_bytes()).into_owned(),
            unknown,
            sent: 0,
            acked: 0,
            refused: 0,
            last_status: None,
        });
    }

    /// A tracked receipt was written to an ESME (`answer == None`) or answered with a status.
    pub fn receipt_event(&self, serial: u64, answer: Option<CommandStatus>) {
        if serial == 0 {
            return;
        }
        let mut log = self.receipt_log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = log.get_mut(serial as usize - 1) {
            match answer {
                None => r.sent += 1,
                Some(s) => {
                    r.last_status = Some(s.0);
                    if s.is_ok() {
                        r.acked += 1;
                    } else {
                        r.refused += 1;
                    }
                }
            }
        }
    }

    pub fn receipts_log(&self) -> Vec<ReceiptRecord> {
        self.receipt_log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn register(&self, entry: ConnEntry) {
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.push(entry);
    }

    pub fn unregister(&self, id: u64) {
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.retain(|e| e.id != id);
    }

    /// Sends to every registered connection (drops what does not fit: faults are best effort).
    pub fn broadcast(&self, what: Outbound) {
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        for e in r.iter() {
            let item = match &what {
                Outbound::Close => Outbound::Close,
                Outbound::Raw(b) => Outbound::Raw(b.clone()),
                Outbound::Deliver(d) => Outbound::Deliver(d.clone()),
            };
            let _ = e.tx.try_send(item);
        }
    }

    /// Offers a delivery to a receiver bind of its login, round robin; gives it back when no
    /// receiver can take it now.
    pub fn offer(&self, delivery: Delivery) -> Result<(), Delivery> {
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let login = delivery.system_id.clone();
        let fits = |e: &ConnEntry| e.receiver && login.as_ref().is_none_or(|s| **s == *e.system_id);
        let count = r.iter().filter(|e| fits(e)).count();
        if count == 0 {
            return Err(delivery);
        }
        // Round robin over the receivers of the login, without collecting them (this runs once
        // per receipt).
        let start = self.round_robin.fetch_add(1, Ordering::Relaxed) % count;
        let order = r
            .iter()
            .filter(|e| fits(e))
            .skip(start)
            .chain(r.iter().filter(|e| fits(e)).take(start));
        let mut item = Outbound::Deliver(delivery);
        for e in order {
            match e.tx.try_send(item) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Full(back))
                | Err(mpsc::error::TrySendError::Closed(back)) => item = back,
            }
        }
        match item {
            Outbound::Deliver(d) => Err(d),
            // Only deliveries were offered; nothing else can come back.
            Outbound::Raw(_) | Outbound::Close => Ok(()),
        }
    }

    pub fn stats(&self) -> Stats {
        let c = &self.c;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut responses: BTreeMap<String, u64> = self
            .statuses
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (CommandStatus(*k).name().into_owned(), *v))
                    .collect()
            })
            .unwrap_or_default();
        let ok = l(&c.ok);
        if ok > 0 {
            responses.insert("ESME_ROK".into(), ok);
        }
        Stats {
            connections: l(&c.connections),
            binds: l(&c.binds),
            binds_rejected: l(&c.binds_rejected),
            bound_now: l(&c.bound_now),
            max_bound: l(&c.max_bound),
            submits: l(&c.submits),
            responses,
            throttled: l(&c.throttled),
            unanswered: l(&c.unanswered),
            max_window: l(&c.max_window),
            max_submits_100ms: self
                .pacing
                .lock()
                .map(|p| p.max_per_window())
                .unwrap_or_else(|p| p.into_inner().max_per_window()),
            receipts_created: l(&c.receipts_created),
            receipts_sent: l(&c.receipts_sent),
            deliveries_acked: l(&c.deliveries_acked),
            deliveries_retried: l(&c.deliveries_retried),
            deliveries_dropped: l(&c.deliveries_dropped),
            deliveries_backlog: l(&c.deliveries_backlog),
            mo_sent: l(&c.mo_sent),
            enquire_links: l(&c.enquire_links),
            generic_nacks_received: l(&c.generic_nacks_received),
            dropped_connections: l(&c.dropped_connections),
            unbinds: l(&c.unbinds),
        }
    }
}
