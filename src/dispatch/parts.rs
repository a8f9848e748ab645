//! Dispatch's per-part side state: what dispatch remembers about a message between attempts of
//! its parts and that the store does not hold — the SMSCs that refused a part with a failover
//! status, the SMSC a multipart message's parts follow (affinity), messages set aside for a
//! re-split after the current batch, and messages whose re-split was refused.
//!
//! Owns those maps and their release. Every entry belongs to a message that is still being sent;
//! [`SideState::finish`] drops everything about a message once none of its parts can be sent
//! again, whatever road it took there: its last pending part acknowledged (in any order), a
//! permanent failure that left nothing pending, a store sweep that expired it, a reroute's resend
//! that ended. Messages the store expires while claiming them (validity passed) never come back to
//! dispatch, so each entry also carries its message's validity and [`SideState::sweep`] drops
//! what is past it. Must never outlive its message, and never hide a poisoned lock: a panic while
//! the lock was held is logged and the maps are used as they were left (each update is a single
//! map operation, so they are consistent).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::{MessageId, PartRef};

/// The maps, under one lock (one owner; updates of several maps stay together).
#[derive(Default)]
struct Maps {
    /// SMSCs that refused a part with a failover status, so the next attempt goes elsewhere.
    /// Ordered by part, so a message's parts are one range.
    refused: BTreeMap<PartRef, Vec<Arc<str>>>,
    /// The SMSC each multipart message's parts go to.
    affinity: HashMap<MessageId, Arc<str>>,
    /// Messages to re-split (for the SMSC named) after the current batch.
    resplit: HashMap<MessageId, Arc<str>>,
    /// Messages whose re-split was refused: their parts go as rendered.
    no_resplit: HashSet<MessageId>,
    /// Validity deadline (ms since the epoch) of each message that has an entry and a validity.
    valid_until: HashMap<MessageId, i64>,
}

/// Entries per map, for the gauge (see [`crate::metrics::DISPATCH_SIDE_STATE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SideSizes {
    /// Parts with SMSCs that refused them.
    pub refused: usize,
    /// Multipart messages following one SMSC.
    pub affinity: usize,
    /// Messages waiting for a re-split.
    pub resplit: usize,
    /// Messages whose re-split was refused.
    pub no_resplit: usize,
}

impl SideSizes {
    /// (map name, entries), the gauge's `map` label values.
    pub fn by_name(&self) -> [(&'static str, usize); 4] {
        [
            ("refused", self.refused),
            ("affinity", self.affinity),
            ("resplit", self.resplit),
            ("no_resplit", self.no_resplit),
        ]
    }
}

/// The one owner of dispatch's per-part side state.
#[derive(Default)]
pub(crate) struct SideState {
    maps: Mutex<Maps>,
}

impl SideState {
    pub(crate) fn new() -> SideState {
        SideState::default()
    }

    fn lock(&self) -> MutexGuard<'_, Maps> {
        // Each update is a single map operation, so the maps are consistent even after a
        // panic elsewhere (see `locks`).
        super::locks::lock(&self.maps, "dispatch side state")
    }

    /// Remembers a message's validity for [`Self::sweep`] (no-op without one).
    fn note_validity(m: &mut Maps, id: MessageId, valid_until: Option<i64>) {
        if let Some(v) = valid_until {
            m.valid_until.insert(id, v);
        }
    }

    /// SMSCs that refused this part.
    pub(crate) fn refused(&self, part: &PartRef) -> Vec<Arc<str>> {
        self.lock().refused.get(part).cloned().unwrap_or_default()
    }

    /// `smsc` refused `part` with a failover status; the message no longer follows it.
    pub(crate) fn refuse(&self, part: PartRef, smsc: Arc<str>, valid_until: Option<i64>) {
        let mut m = self.lock();
        m.refused.entry(part).or_default().push(smsc);
        m.affinity.remove(&part.message);
        Self::note_validity(&mut m, part.message, valid_until);
    }

    /// The part is answered for good (acknowledged or failed permanently): its refusals go.
    pub(crate) fn part_done(&self, part: &PartRef) {
        self.lock().refused.remove(part);
    }

    /// The SMSC the message's parts follow, if any.
    pub(crate) fn affinity(&self, id: &MessageId) -> Option<Arc<str>> {
        self.lock().affinity.get(id).cloned()
    }

    /// The message's parts follow `smsc` from now on.
    pub(crate) fn follow(&self, id: MessageId, smsc: Arc<str>, valid_until: Option<i64>) {
        let mut m = self.lock();
        m.affinity.insert(id, smsc);
        Self::note_validity(&mut m, id, valid_until);
    }

    /// Whether the message is set aside for a re-split.
    pub(crate) fn resplitting(&self, id: &MessageId) -> bool {
        self.lock().resplit.contains_key(id)
    }

    /// Sets the message aside for a re-split for `smsc` (the first SMSC asked wins).
    pub(crate) fn want_resplit(&self, id: MessageId, smsc: Arc<str>, valid_until: Option<i64>) {
        let mut m = self.lock();
        m.resplit.entry(id).or_insert(smsc);
        Self::note_validity(&mut m, id, valid_until);
    }

    /// Takes every message set aside for a re-split.
    pub(crate) fn take_resplits(&self) -> Vec<(MessageId, Arc<str>)> {
        self.lock().resplit.drain().collect()
    }

    /// The message's re-split was refused: its parts go as rendered.
    pub(crate) fn refuse_resplit(&self, id: MessageId) {
        self.lock().no_resplit.insert(id);
    }

    /// Whether the message's re-split was refused.
    pub(crate) fn resplit_refused(&self, id: &MessageId) -> bool {
        self.lock().no_resplit.contains(id)
    }

    /// Drops everything about a message none of whose parts will be sent again.
    pub(crate) fn finish(&self, id: MessageId) {
        let mut m = self.lock();
        Self::drop_message(&mut m, id);
    }

    fn drop_message(m: &mut Maps, id: MessageId) {
        let parts: Vec<PartRef> = m
            .refused
            .range(
                PartRef { message: id, n: 0 }..=PartRef {
                    message: id,
                    n: u8::MAX,
                },
            )
            .map(|(p, _)| *p)
            .collect();
        for p in parts {
            m.refused.remove(&p);
        }
        m.affinity.remove(&id);
        m.resplit.remove(&id);
        m.no_resplit.remove(&id);
        m.valid_until.remove(&id);
    }

    /// Drops everything about messages whose validity passed before `now_ms`: the store never
    /// hands out their parts again (it expires them when claiming or sweeping). Returns how many
    /// messages went.
    pub(crate) fn sweep(&self, now_ms: i64) -> usize {
        let mut m = self.lock();
        let past: Vec<MessageId> = m
            .valid_until
            .iter()
            .filter(|(_, v)| **v < now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in &past {
            Self::drop_message(&mut m, *id);
        }
        past.len()
    }

    /// Entries per map now.
    pub(crate) fn sizes(&self) -> SideSizes {
        let m = self.lock();
        SideSizes {
            refused: m.refused.len(),
            affinity: m.affinity.len(),
            resplit: m.resplit.len(),
            no_resplit: m.no_resplit.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: u64, n: u8) -> PartRef {
        PartRef {
            message: MessageId(id),
            n,
        }
    }

    #[test]
    fn finish_drops_every_map_for_that_message_only() {
        let s = SideState::new();
        s.refuse(part(7, 1), Arc::from("a"), None);
        s.refuse(part(7, 3), Arc::from("b"), None);
        s.refuse(part(8, 1), Arc::from("a"), None);
        s.follow(MessageId(7), Arc::from("b"), None);
        s.want_resplit(MessageId(7), Arc::from("b"), None);
        s.refuse_resplit(MessageId(7));
        s.finish(MessageId(7));
        assert_eq!(
            s.sizes(),
            SideSizes {
                refused: 1,
                ..SideSizes::default()
            }
        );
        assert_eq!(s.refused(&part(8, 1)).len(), 1);
    }

    #[test]
    fn sweep_drops_messages_past_their_validity() {
        let s = SideState::new();
        s.follow(MessageId(1), Arc::from("a"), Some(1_000));
        s.follow(MessageId(2), Arc::from("a"), Some(5_000));
        s.follow(MessageId(3), Arc::from("a"), None);
        assert_eq!(s.sweep(2_000), 1);
        assert_eq!(s.sizes().affinity, 2);
        assert!(s.affinity(&MessageId(1)).is_none());
    }
}
