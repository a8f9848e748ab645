//! Concatenated MO messages between their first part and the end of their set.
//!
//! Owns the reassembler (pure, in memory: which parts of which set have come, limits, expiry)
//! and keeps it in step with the store's copy of the parts (`mo_fragment`): each part is kept
//! durably before its deliver_sm is answered ESME_ROK; the part that completes a set records the
//! MO and deletes the set's kept parts in one transaction; at start the reassembler is rebuilt
//! from the kept parts. A set given up (expired, evicted for room, superseded by a reused
//! reference) is recorded as an MO marked `incomplete` with the parts that came, logged and
//! counted, never silently dropped.
//!
//! Must never answer ESME_ROK for a part before it (or its completed MO) is durable, and never
//! leave the reassembler holding a part the store refused (the SMSC resends it, and a resend
//! must not look like a duplicate already kept). Store writes are queued while the reassembler
//! lock is held, so the store sees a set's writes in the order the reassembler decided them
//! (a part's keep always before its set's end).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::dispatch::now_ms;
use crate::metrics as m;
use crate::pdu::CommandStatus;
use crate::session::InboundReply;
use crate::store::{MoFragment, MoSet, Store};
use crate::text::{
    DecodeOptions, Fragment, Incomplete, IncompleteReason, PushResult, PushStatus, Reassembler,
    ReassemblyConfig, UserData,
};

use super::inbound::{body_text, counted, incoming_mo};

/// A concatenated part as received, with what is needed to decode it again at start.
pub(super) struct RawPart<'a> {
    pub smsc: &'a str,
    pub data_coding: u8,
    pub udhi: bool,
    pub sar: Option<(u16, u8, u8)>,
    pub payload: &'a [u8],
}

/// The sets being collected (see the module docs).
pub(super) struct MoSets {
    inner: Mutex<Inner>,
}

struct Inner {
    reassembler: Reassembler,
    /// The SMSC each pending set came through (for the MO it ends as); one entry per set
    /// pending in the reassembler, which bounds it.
    smsc: HashMap<MoSet, Arc<str>>,
    /// The writes of sets given up or completed from kept parts: not awaited by anyone's
    /// answer, only logged on failure; joined by [`MoSets::settle`] before the store closes.
    writes: TaskTracker,
}

fn set_of(source: &str, dest: &str, reference: u16, total: u8) -> MoSet {
    MoSet {
        source: source.to_owned(),
        dest: dest.to_owned(),
        reference,
        total,
    }
}

fn decode_options(cfg: &Config, smsc: &str) -> DecodeOptions {
    DecodeOptions {
        packed: cfg.smsc(smsc).is_some_and(|s| s.gsm_packed),
        ia5_as_gsm: true,
    }
}

fn reason_name(r: IncompleteReason) -> &'static str {
    match r {
        IncompleteReason::Expired => "expired",
        IncompleteReason::Evicted => "evicted",
        IncompleteReason::Superseded => "superseded",
    }
}

impl MoSets {
    pub(super) fn new() -> MoSets {
        MoSets {
            inner: Mutex::new(Inner {
                reassembler: Reassembler::new(ReassemblyConfig::default()),
                smsc: HashMap::new(),
                writes: TaskTracker::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| {
            tracing::error!("MO reassembly: a task panicked while holding its lock; carrying on");
            self.inner.clear_poison();
            poisoned.into_inner()
        })
    }

    /// Waits for the writes of sets given up or completed from kept parts (when the inbound
    /// task ends, at a stop).
    pub(super) async fn settle(&self) {
        let writes = self.lock().writes.clone();
        writes.close();
        writes.wait().await;
    }

    /// Rebuilds the pending sets from the parts the store kept (at start, before any inbound
    /// PDU), then gives up those already past their time.
    pub(super) async fn rebuild(&self, store: &Store, cfg: &Config) {
        let kept = match store.backend().mo_fragments().await {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "kept MO parts not read; their sets are rebuilt at the next start");
                return;
            }
        };
        let count = kept.len();
        {
            let mut inner = self.lock();
            for f in &kept {
                if let Some(pushed) = push_kept(&mut inner, cfg, f) {
                    settle_rebuilt(&mut inner, store, cfg, &f.smsc, pushed);
                }
            }
        }
        if count > 0 {
            tracing::info!(
                parts = count,
                "concatenated MO parts kept at the last stop are pending again"
            );
        }
        self.expire(store, cfg);
    }

    /// Gives up the sets past their time (called periodically).
    pub(super) fn expire(&self, store: &Store, cfg: &Config) {
        let mut inner = self.lock();
        let gone = inner.reassembler.expire(now_ms().max(0) as u64);
        for inc in gone {
            give_up(&mut inner, store, cfg, inc);
        }
    }

    /// Takes one part of a concatenated MO and answers its deliver_sm once the part (or, for
    /// the last one, the whole MO) is durable; ESME_RX_T_APPN when the store refused it.
    pub(super) async fn part(
        &self,
        store: &Store,
        cfg: &Config,
        raw: RawPart<'_>,
        frag: Fragment<'_>,
        reply: InboundReply,
    ) {
        let set = set_of(frag.source, frag.destination, frag.reference, frag.total);
        let seq = frag.seq;
        let step = {
            let mut inner = self.lock();
            let pushed = inner.reassembler.push(now_ms().max(0) as u64, frag);
            for inc in pushed.incomplete {
                give_up(&mut inner, store, cfg, inc);
            }
            match pushed.status {
                PushStatus::Stored { .. } | PushStatus::Duplicate => {
                    inner
                        .smsc
                        .entry(set.clone())
                        .or_insert_with(|| Arc::from(raw.smsc));
                    // A duplicate is written too: its first copy's write may not be durable yet.
                    Step::Keep(store.backend().record_mo_fragment(MoFragment {
                        set: set.clone(),
                        seq,
                        smsc: raw.smsc.to_owned(),
                        data_coding: raw.data_coding,
                        udhi: raw.udhi,
                        sar: raw.sar,
                        payload: raw.payload.to_vec(),
                        now_ms: now_ms(),
                    }))
                }
                PushStatus::Complete(a) => {
                    inner.smsc.remove(&set);
                    let text = body_text(a.decode().body);
                    let mo = incoming_mo(cfg, raw.smsc, &a.source, &a.destination, text, a.total);
                    let change = mo.optout.clone();
                    Step::Complete(store.backend().record_mo_set(mo, set.clone(), None), change)
                }
                other => Step::Ignored(other),
            }
        };
        match step {
            Step::Keep(write) => match write.await {
                Ok(()) => reply.ok(),
                Err(e) => {
                    tracing::warn!(smsc = raw.smsc, error = %e, "MO part not kept; asking the SMSC to redeliver");
                    self.lock()
                        .reassembler
                        .forget_part(&set.source, &set.dest, set.reference, seq);
                    reply.answer(CommandStatus::ESME_RX_T_APPN);
                }
            },
            Step::Complete(write, change) => match write.await {
                Ok(_) => {
                    counted(raw.smsc, change);
                    reply.ok();
                }
                Err(e) => {
                    tracing::warn!(smsc = raw.smsc, error = %e, "MO not recorded; asking the SMSC to redeliver its last part");
                    self.restore(store, cfg, &set, seq).await;
                    reply.answer(CommandStatus::ESME_RX_T_APPN);
                }
            },
            Step::Ignored(status) => {
                // Numbered outside its set or too large to hold: nothing can ever complete it,
                // so asking for a resend would loop; answered, logged and dropped.
                tracing::warn!(smsc = raw.smsc, from = %set.source, status = ?status, "concatenated MO part ignored");
                reply.ok();
            }
        }
    }

    /// After a completed set's MO could not be recorded: its kept parts go back into the
    /// reassembler, so the SMSC's resend of the last part completes it again. (If they cannot
    /// be read now, they are rebuilt at the next start.)
    async fn restore(&self, store: &Store, cfg: &Config, set: &MoSet, last: u8) {
        let kept = match store.backend().mo_fragments().await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "kept MO parts not read back; the set is rebuilt at the next start");
                return;
            }
        };
        let mut inner = self.lock();
        for f in kept.iter().filter(|f| f.set == *set && f.seq != last) {
            if let Some(pushed) = push_kept(&mut inner, cfg, f) {
                for inc in pushed.incomplete {
                    give_up(&mut inner, store, cfg, inc);
                }
            }
        }
    }
}

/// Pushes a kept part into the reassembler, decoded as when it arrived (at its arrival time).
fn push_kept(inner: &mut Inner, cfg: &Config, f: &MoFragment) -> Option<PushResult> {
    let ud = UserData::parse(
        f.data_coding,
        f.udhi,
        &f.payload,
        &decode_options(cfg, &f.smsc),
    );
    let sar = f.sar.map(|(r, t, s)| crate::text::Sar {
        msg_ref_num: r,
        total_segments: t,
        segment_seqnum: s,
    });
    let frag = Fragment::from_user_data(&f.set.source, &f.set.dest, &ud, sar)?;
    let pushed = inner.reassembler.push(f.now_ms.max(0) as u64, frag);
    inner
        .smsc
        .entry(f.set.clone())
        .or_insert_with(|| Arc::from(f.smsc.as_str()));
    Some(pushed)
}

/// What a push while rebuilding left to do: record the sets given up; a set complete from its
/// kept parts alone (its MO was never recorded) is recorded now.
fn settle_rebuilt(inner: &mut Inner, store: &Store, cfg: &Config, smsc: &str, pushed: PushResult) {
    for inc in pushed.incomplete {
        give_up(inner, store, cfg, inc);
    }
    if let PushStatus::Complete(a) = pushed.status {
        let set = set_of(&a.source, &a.destination, a.reference, a.total);
        inner.smsc.remove(&set);
        let text = body_text(a.decode().body);
        let mo = incoming_mo(cfg, smsc, &a.source, &a.destination, text, a.total);
        let write = store.backend().record_mo_set(mo, set, None);
        inner.writes.spawn(async move {
            if let Err(e) = write.await {
                tracing::warn!(error = %e, "MO completed from kept parts not recorded; retried at the next start");
            }
        });
    }
}

/// What to await after the reassembler decided, outside its lock.
enum Step {
    Keep(crate::store::Pending<()>),
    Complete(
        crate::store::Pending<crate::store::MoRecorded>,
        Option<crate::store::OptOutChange>,
    ),
    Ignored(PushStatus),
}

/// Records a set given up as an MO marked incomplete (what came, in order; no opt-out change)
/// and deletes its kept parts. If the store refuses, the parts stay kept and the set is rebuilt
/// and given up again at the next start.
fn give_up(inner: &mut Inner, store: &Store, cfg: &Config, inc: Incomplete) {
    let set = set_of(&inc.source, &inc.destination, inc.reference, inc.total);
    let smsc = inner
        .smsc
        .remove(&set)
        .map_or_else(String::new, |s| s.to_string());
    let reason = reason_name(inc.reason);
    tracing::warn!(%smsc, from = %inc.source, parts = inc.parts.len(), total = inc.total, reason, "incomplete concatenated MO given up; recorded with the parts that came");
    metrics::counter!(m::MO_INCOMPLETE, m::label::SMSC => smsc.clone(), m::label::REASON => reason)
        .increment(1);
    let text = body_text(inc.decode_received().body);
    let mut mo = incoming_mo(
        cfg,
        &smsc,
        &inc.source,
        &inc.destination,
        text,
        inc.parts.len() as u8,
    );
    mo.optout = None;
    let write = store.backend().record_mo_set(mo, set, Some(reason));
    inner.writes.spawn(async move {
        if let Err(e) = write.await {
            tracing::warn!(error = %e, "incomplete MO not recorded now; its parts stay kept until the next start");
        }
    });
}
