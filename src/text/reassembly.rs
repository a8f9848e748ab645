//! Reassembly of concatenated mobile-originated messages (UDH 8/16-bit reference or SAR TLVs).
//!
//! Owns the pending sets, keyed by (source, destination, reference). Duplicated parts are ignored,
//! sets that stay incomplete expire after `timeout_ms` and are handed back as [`Incomplete`], and
//! memory is bounded by `max_sets` and `max_bytes` (the oldest set is evicted first). Never reads
//! a clock: the caller passes `now_ms` (any monotonic millisecond count) to every call.

use std::collections::{BTreeMap, HashMap};

use super::decode::{Charset, Decoded, UserData, decode_payload};
use super::encode::Sar;
use super::gsm::Gsm7Tables;

/// Limits for pending sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// A set not complete this long after its first part is reported incomplete.
    pub timeout_ms: u64,
    /// Most sets pending at once.
    pub max_sets: usize,
    /// Most bytes held by pending sets (payloads, keys and per-part bookkeeping).
    pub max_bytes: usize,
}

impl Default for ReassemblyConfig {
    /// 2 minutes, 10 000 sets, 16 MiB.
    fn default() -> Self {
        ReassemblyConfig {
            timeout_ms: 120_000,
            max_sets: 10_000,
            max_bytes: 16 << 20,
        }
    }
}

/// One received part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// Originating address.
    pub source: &'a str,
    /// Destination address.
    pub destination: &'a str,
    /// Concatenation reference (8-bit references zero-extended).
    pub reference: u16,
    /// Total parts.
    pub total: u8,
    /// This part's 1-based number.
    pub seq: u8,
    /// How the payload is read.
    pub charset: Charset,
    /// GSM tables from this part's UDH.
    pub tables: Gsm7Tables,
    /// Normalized payload (see [`UserData`]).
    pub payload: &'a [u8],
}

impl<'a> Fragment<'a> {
    /// The fragment for parsed user data, taking the concatenation from the UDH or else from the
    /// SAR TLVs; `None` when the message is not concatenated (decode it directly).
    pub fn from_user_data(
        source: &'a str,
        destination: &'a str,
        user_data: &'a UserData,
        sar: Option<Sar>,
    ) -> Option<Fragment<'a>> {
        let (reference, total, seq) = match (user_data.udh.and_then(|u| u.concat), sar) {
            (Some(c), _) => (c.reference, c.total, c.seq),
            (None, Some(s)) => (s.msg_ref_num, s.total_segments, s.segment_seqnum),
            (None, None) => return None,
        };
        Some(Fragment {
            source,
            destination,
            reference,
            total,
            seq,
            charset: user_data.charset,
            tables: user_data.tables().0,
            payload: &user_data.payload,
        })
    }
}

/// A complete message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// Originating address.
    pub source: String,
    /// Destination address.
    pub destination: String,
    /// The concatenation reference.
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// How the payload is read.
    pub charset: Charset,
    /// GSM tables (from the first part received).
    pub tables: Gsm7Tables,
    /// All payloads joined in order.
    pub payload: Vec<u8>,
}

impl Assembled {
    /// Decodes the joined payload.
    pub fn decode(&self) -> Decoded {
        decode_payload(self.charset, self.tables, &self.payload)
    }
}

/// Why a set was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IncompleteReason {
    /// `timeout_ms` passed since its first part.
    Expired,
    /// Evicted (oldest first) to stay within `max_sets` / `max_bytes`.
    Evicted,
    /// A part with the same key but a different total arrived: the reference was reused.
    Superseded,
}

/// A set given up before all parts arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incomplete {
    /// Originating address.
    pub source: String,
    /// Destination address.
    pub destination: String,
    /// The concatenation reference.
    pub reference: u16,
    /// Parts announced.
    pub total: u8,
    /// Why it was given up.
    pub reason: IncompleteReason,
    /// How the payload is read.
    pub charset: Charset,
    /// GSM tables.
    pub tables: Gsm7Tables,
    /// The parts that did arrive, as (1-based number, payload), in order.
    pub parts: Vec<(u8, Vec<u8>)>,
}

impl Incomplete {
    /// Decodes the parts that arrived, joined in order (gaps are simply skipped).
    pub fn decode_received(&self) -> Decoded {
        let joined: Vec<u8> = self
            .parts
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .collect();
        decode_payload(self.charset, self.tables, &joined)
    }
}

/// What [`Reassembler::push`] did with a part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushStatus {
    /// This part completed its set.
    Complete(Assembled),
    /// Stored; the set now has `received` of `total` parts.
    Stored {
        /// Parts held.
        received: u8,
        /// Parts announced.
        total: u8,
    },
    /// This part number was already held; the new copy was ignored.
    Duplicate,
    /// Total 0, number 0 or number > total: ignored (as TS 23.040 says for the UDH element).
    Invalid,
    /// The part alone (or its set with it) cannot fit in `max_bytes`; dropped.
    TooLarge,
}

/// The result of a push: the part's fate and any sets given up meanwhile (expired, evicted or
/// superseded) that the caller should report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushResult {
    /// What happened to the part.
    pub status: PushStatus,
    /// Sets given up during this call.
    pub incomplete: Vec<Incomplete>,
}

type Key = (String, String, u16);

#[derive(Debug)]
struct Pending {
    total: u8,
    received: u8,
    charset: Charset,
    tables: Gsm7Tables,
    parts: Vec<Option<Vec<u8>>>,
    bytes: usize,
    deadline: u64,
    id: u64,
}

/// Fixed bookkeeping charged per set and per part slot, so many tiny sets are bounded too.
const SET_OVERHEAD: usize = 128;
const SLOT_OVERHEAD: usize = 32;

/// Pending concatenated messages.
#[derive(Debug)]
pub struct Reassembler {
    cfg: ReassemblyConfig,
    sets: HashMap<Key, Pending>,
    by_deadline: BTreeMap<(u64, u64), Key>,
    bytes: usize,
    next_id: u64,
}

impl Reassembler {
    /// An empty reassembler.
    pub fn new(cfg: ReassemblyConfig) -> Self {
        Reassembler {
            cfg,
            sets: HashMap::new(),
            by_deadline: BTreeMap::new(),
            bytes: 0,
            next_id: 0,
        }
    }

    /// Sets pending now.
    pub fn pending_sets(&self) -> usize {
        self.sets.len()
    }

    /// Bytes charged to pending sets now.
    pub fn pending_bytes(&self) -> usize {
        self.bytes
    }

    /// Gives up every set whose deadline is at or before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Incomplete> {
        let mut out = Vec::new();
        self.expire_into(now_ms, &mut out);
        out
    }

    fn expire_into(&mut self, now_ms: u64, out: &mut Vec<Incomplete>) {
        while let Some((&(deadline, _), _)) = self.by_deadline.first_key_value() {
            if deadline > now_ms {
                break;
            }
            if let Some(inc) = self.evict_oldest(IncompleteReason::Expired) {
                out.push(inc);
            }
        }
    }

    fn evict_oldest(&mut self, reason: IncompleteReason) -> Option<Incomplete> {
        let (_, key) = self.by_deadline.pop_first()?;
        let set = self.sets.remove(&key)?;
        self.bytes -= set.bytes;
        Some(incomplete(key, set, reason))
    }

    fn remove(&mut self, key: &Key) -> Option<Pending> {
        let set = self.sets.remove(key)?;
        self.by_deadline.remove(&(set.deadline, set.id));
        self.bytes -= set.bytes;
        Some(set)
    }

    /// Takes back a part pushed before (the caller could not keep it, so its sender will send
    /// it again); the set goes when that was its only part. Returns whether a part was held.
    pub fn forget_part(
        &mut self,
        source: &str,
        destination: &str,
        reference: u16,
        seq: u8,
    ) -> bool {
        let key: Key = (source.to_owned(), destination.to_owned(), reference);
        let Some(set) = self.sets.get_mut(&key) else {
            return false;
        };
        let Some(part) = usize::from(seq)
            .checked_sub(1)
            .and_then(|i| set.parts.get_mut(i))
            .and_then(Option::take)
        else {
            return false;
        };
        set.received -= 1;
        set.bytes -= part.len();
        self.bytes -= part.len();
        if set.received == 0 {
            self.remove(&key);
        }
        true
    }

    /// Adds a part received at `now_ms`. Expired sets are given up first, so memory stays
    /// bounded even if [`Reassembler::expire`] is never called.
    pub fn push(&mut self, now_ms: u64, frag: Fragment<'_>) -> PushResult {
        let mut incomplete_sets = Vec::new();
        self.expire_into(now_ms, &mut incomplete_sets);
        let status = self.push_inner(now_ms, frag, &mut incomplete_sets);
        PushResult {
            status,
            incomplete: incomplete_sets,
        }
    }

    fn push_inner(
        &mut self,
        now_ms: u64,
        frag: Fragment<'_>,
        out: &mut Vec<Incomplete>,
    ) -> PushStatus {
        if frag.total == 0 || frag.seq == 0 || frag.seq > frag.total {
            return PushStatus::Invalid;
        }
        if frag.total == 1 {
            return PushStatus::Complete(Assembled {
                source: frag.source.to_owned(),
                destination: frag.destination.to_owned(),
                reference: frag.reference,
                total: 1,
                charset: frag.charset,
                tables: frag.tables,
                payload: frag.payload.to_vec(),
            });
        }
        let key: Key = (
            frag.source.to_owned(),
            frag.destination.to_owned(),
            frag.reference,
        );
        let idx = usize::from(frag.seq - 1);
        match self.sets.get(&key) {
            Some(set) if set.total != frag.total => {
                if let Some(old) = self.remove(&key) {
                    out.push(incomplete(key.clone(), old, IncompleteReason::Superseded));
                }
            }
            Some(set) if set.parts[idx].is_some() => return PushStatus::Duplicate,
            _ => {}
        }
        let new_set_cost = if self.sets.contains_key(&key) {
            0
        } else {
            SET_OVERHEAD + key.0.len() + key.1.len() + SLOT_OVERHEAD * usize::from(frag.total)
        };
        let need = new_set_cost + frag.payload.len();
        let own = self.sets.get(&key).map_or(0, |s| s.bytes);
        if own + need > self.cfg.max_bytes {
            // Even alone this set would not fit: drop it and the part.
            if let Some(old) = self.remove(&key) {
                out.push(incomplete(key, old, IncompleteReason::Evicted));
            }
            return PushStatus::TooLarge;
        }
        self.make_room(&key, need, new_set_cost > 0, out);
        if new_set_cost > 0 {
            self.open_set(&key, &frag, new_set_cost, now_ms);
        }
        self.store_part(key, idx, frag.payload)
    }

    /// Evicts sets, oldest first, until `need` more bytes (and, for a new set, one more set)
    /// fit; never the set of `key`, which fits alone (checked by the caller).
    fn make_room(&mut self, key: &Key, need: usize, new_set: bool, out: &mut Vec<Incomplete>) {
        while self.bytes + need > self.cfg.max_bytes
            || (new_set && self.sets.len() >= self.cfg.max_sets.max(1))
        {
            let victim = self
                .by_deadline
                .iter()
                .find(|(_, k)| *k != key)
                .map(|(dk, _)| *dk);
            let Some(victim) = victim else {
                // Only this set is left, and it fits alone (checked above).
                break;
            };
            if let Some(k) = self.by_deadline.remove(&victim)
                && let Some(set) = self.sets.remove(&k)
            {
                self.bytes -= set.bytes;
                out.push(incomplete(k, set, IncompleteReason::Evicted));
            }
        }
    }

    /// Starts the set of `key` for `frag`'s total, due to expire `timeout_ms` after `now_ms`.
    fn open_set(&mut self, key: &Key, frag: &Fragment<'_>, cost: usize, now_ms: u64) {
        let id = self.next_id;
        self.next_id += 1;
        let deadline = now_ms.saturating_add(self.cfg.timeout_ms);
        self.by_deadline.insert((deadline, id), key.clone());
        self.sets.insert(
            key.clone(),
            Pending {
                total: frag.total,
                received: 0,
                charset: frag.charset,
                tables: frag.tables,
                parts: vec![None; usize::from(frag.total)],
                bytes: cost,
                deadline,
                id,
            },
        );
        self.bytes += cost;
    }

    /// Keeps part `idx` of the set of `key`; when it was the last one missing, the set is
    /// complete and leaves as one message.
    fn store_part(&mut self, key: Key, idx: usize, payload: &[u8]) -> PushStatus {
        let Some(set) = self.sets.get_mut(&key) else {
            return PushStatus::TooLarge;
        };
        set.parts[idx] = Some(payload.to_vec());
        set.received += 1;
        set.bytes += payload.len();
        self.bytes += payload.len();
        if set.received < set.total {
            return PushStatus::Stored {
                received: set.received,
                total: set.total,
            };
        }
        let Some(set) = self.remove(&key) else {
            return PushStatus::TooLarge;
        };
        let mut payload = Vec::with_capacity(set.bytes);
        for p in set.parts.iter().flatten() {
            payload.extend_from_slice(p);
        }
        PushStatus::Complete(Assembled {
            source: key.0,
            destination: key.1,
            reference: key.2,
            total: set.total,
            charset: set.charset,
            tables: set.tables,
            payload,
        })
    }
}

fn incomplete(key: Key, set: Pending, reason: IncompleteReason) -> Incomplete {
    Incomplete {
        source: key.0,
        destination: key.1,
        reference: key.2,
        total: set.total,
        reason,
        charset: set.charset,
        tables: set.tables,
        parts: set
            .parts
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| ((i + 1) as u8, p)))
            .collect(),
    }
}
