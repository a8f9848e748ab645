//! The window of one bind: the requests sent and not yet answered, keyed by `sequence_number`,
//! each with a deadline. Owns sequence-number allocation (1..=0x7FFFFFFF, wrapping to 1, skipping
//! numbers still outstanding) and capacity accounting. It never drops an entry: every item leaves
//! through [`Window::take`] (answered), [`Window::expire`] (timed out) or [`Window::drain`]
//! (connection gone), and the caller hands it back.
//!
//! The window is owned by the bind's single task, so "a semaphore of W permits" is a counter here:
//! a permit is taken by [`Window::insert`] and given back by removing the entry, with no atomic or
//! lock on the hot path. Deadlines are kept in insertion order because every request of a bind has
//! the same response timeout, which makes expiry an O(1) look at the front of a queue.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use tokio::time::{Duration, Instant};

/// Highest valid sequence number (SMPP-FACTS §1.1).
pub const MAX_SEQUENCE: u32 = 0x7FFF_FFFF;

/// A multiplicative hasher for sequence numbers: consecutive keys spread over all bits (unlike an
/// identity hash, which would leave hashbrown's top-bit tags all equal), and far cheaper than
/// SipHash for a u32 key that no attacker chooses.
#[derive(Default, Clone, Copy)]
pub struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type SeqMap<V> = HashMap<u32, V, BuildHasherDefault<SeqHasher>>;

#[derive(Debug)]
struct Entry<T> {
    item: T,
    deadline: Instant,
}

/// Outstanding requests of one bind, at most `capacity` of them.
#[derive(Debug)]
pub struct Window<T> {
    capacity: usize,
    timeout: Duration,
    last_seq: u32,
    pending: SeqMap<Entry<T>>,
    deadlines: VecDeque<(u32, Instant)>,
    high_water: usize,
}

impl<T> Window<T> {
    /// A window of `capacity` permits (at least 1) whose entries expire after `timeout`.
    pub fn new(capacity: usize, timeout: Duration) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            timeout,
            last_seq: 0,
            pending: SeqMap::with_capacity_and_hasher(capacity, Default::default()),
            deadlines: VecDeque::with_capacity(capacity),
            high_water: 0,
        }
    }

    /// The number of permits.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Requests outstanding now.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Permits free now.
    pub fn available(&self) -> usize {
        self.capacity.saturating_sub(self.pending.len())
    }

    /// The most requests that were ever outstanding at once.
    pub fn high_water(&self) -> usize {
        self.high_water
    }

    /// The next sequence number: one past the last, wrapping from 0x7FFFFFFF to 1, skipping any
    /// number still outstanding (possible only after ~2^31 requests with one stuck entry).
    pub fn next_sequence(&mut self) -> u32 {
        loop {
            self.last_seq = if self.last_seq >= MAX_SEQUENCE {
                1
            } else {
                self.last_seq + 1
            };
            if !self.pending.contains_key(&self.last_seq) {
                return self.last_seq;
            }
        }
    }

    /// Records `item` as sent with `seq` at `now`; returns it back if the window is full (the
    /// caller must check [`Window::available`] first; this is the guard, not the flow control).
    pub fn insert(&mut self, seq: u32, item: T, now: Instant) -> Result<(), T> {
        if self.pending.len() >= self.capacity || self.pending.contains_key(&seq) {
            return Err(item);
        }
        let deadline = now + self.timeout;
        self.pending.insert(seq, Entry { item, deadline });
        self.deadlines.push_back((seq, deadline));
        self.high_water = self.high_water.max(self.pending.len());
        Ok(())
    }

    /// Removes and returns the request answered by `seq`, if it is outstanding.
    pub fn take(&mut self, seq: u32) -> Option<T> {
        let entry = self.pending.remove(&seq)?;
        self.prune();
        Some(entry.item)
    }

    /// When the oldest outstanding request expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines
            .iter()
            .find(|(seq, deadline)| self.is_live(*seq, *deadline))
            .map(|(_, deadline)| *deadline)
    }

    /// Removes every request whose deadline is at or before `now`, in the order they were sent.
    pub fn expire(&mut self, now: Instant) -> Vec<(u32, T)> {
        let mut out = Vec::new();
        while let Some(&(seq, deadline)) = self.deadlines.front() {
            if self.is_live(seq, deadline) {
                if deadline > now {
                    break;
                }
                if let Some(entry) = self.pending.remove(&seq) {
                    out.push((seq, entry.item));
                }
            }
            self.deadlines.pop_front();
        }
        out
    }

    /// Removes everything outstanding, oldest first.
    pub fn drain(&mut self) -> Vec<(u32, T)> {
        let mut out = Vec::with_capacity(self.pending.len());
        while let Some((seq, deadline)) = self.deadlines.pop_front() {
            if self.is_live(seq, deadline)
                && let Some(entry) = self.pending.remove(&seq)
            {
                out.push((seq, entry.item));
            }
        }
        // Entries whose deadline record was lost cannot exist, but never drop one regardless.
        out.extend(self.pending.drain().map(|(seq, e)| (seq, e.item)));
        out
    }

    fn is_live(&self, seq: u32, deadline: Instant) -> bool {
        self.pending
            .get(&seq)
            .is_some_and(|e| e.deadline == deadline)
    }

    /// Drops deadline records of answered requests from the front, so the queue stays as short as
    /// the span between the oldest outstanding request and the newest.
    fn prune(&mut self) {
        while let Some(&(seq, deadline)) = self.deadlines.front() {
            if self.is_live(seq, deadline) {
                break;
            }
            self.deadlines.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_to_one_and_skips_outstanding() {
        let mut w: Window<u8> = Window::new(4, Duration::from_secs(1));
        w.last_seq = MAX_SEQUENCE - 1;
        assert_eq!(w.next_sequence(), MAX_SEQUENCE);
        let now = Instant::now();
        w.insert(1, 0, now).unwrap();
        assert_eq!(w.next_sequence(), 2, "1 is outstanding and must be skipped");
    }

    #[test]
    fn capacity_is_enforced() {
        let mut w = Window::new(2, Duration::from_secs(1));
        let now = Instant::now();
        w.insert(1, 'a', now).unwrap();
        w.insert(2, 'b', now).unwrap();
        assert_eq!(w.insert(3, 'c', now), Err('c'));
        assert_eq!(w.available(), 0);
        assert_eq!(w.take(1), Some('a'));
        assert_eq!(w.available(), 1);
        assert_eq!(w.take(1), None);
        assert_eq!(w.high_water(), 2);
    }

    #[test]
    fn expiry_returns_timed_out_items_in_order_and_never_loses_any() {
        let mut w = Window::new(10, Duration::from_secs(5));
        let t0 = Instant::now();
        for i in 0..5u32 {
            w.insert(i + 1, i, t0 + Duration::from_secs(u64::from(i)))
                .unwrap();
        }
        assert_eq!(w.take(2), Some(1));
        assert_eq!(w.next_deadline(), Some(t0 + Duration::from_secs(5)));
        let expired = w.expire(t0 + Duration::from_secs(7));
        assert_eq!(expired, vec![(1, 0), (3, 2)]);
        assert_eq!(w.next_deadline(), Some(t0 + Duration::from_secs(8)));
        let rest = w.drain();
        assert_eq!(rest, vec![(4, 3), (5, 4)]);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }
}
