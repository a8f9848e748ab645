//! Committed events kept in memory for subscribers (#20): the writer publishes the events each
//! commit inserted, and [`EventRing::after`] answers `events_after` from them, so a subscriber
//! that keeps up costs no reader thread, no SQL and no thread hand-off per commit.
//!
//! Owns the window of recent committed events and the rule for when it may answer. Must never
//! hold an event that is not committed (the writer publishes after COMMIT only, and nothing
//! of a rolled-back transaction), and never answer a read it cannot answer exactly as the
//! `event` table would: the read then goes to the store.
//!
//! Why "complete after" is enough, gaps and all: `event.seq` is an `INTEGER PRIMARY KEY`
//! (no AUTOINCREMENT), so SQLite gives a new row `max(seq) + 1`. A rolled-back insert leaves no
//! row, so its seq is given again to the next committed event: committed seqs only grow, and a
//! rolled-back batch leaves no gap (nor anything here: it is never published). Pruning deletes
//! old rows but always keeps the newest, so seqs are never reused after it either. The window
//! therefore says "every committed event with a seq above `complete_after` is here"; a read
//! with `after >= complete_after` is answered from memory whatever gaps the seqs have, any
//! other read goes to the store (a subscriber far behind, or one resuming after a restart).
//!
//! The writer publishes each commit's events right after the COMMIT (before any caller hears
//! back and before the sequence watch moves, so a subscriber woken by the watch finds them
//! here). Two things make the window forget what it holds and start again at the next commit
//! with events (until then every read goes to the store): a committed prune that deleted event
//! rows (the window would still show them) and a COMMIT that failed (SQLite may have made it
//! durable all the same; its events were not published, and every such event has a seq below
//! those of any later commit, so restarting the window there keeps it exact).

use crate::store::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Events a store keeps in memory by default (about 3 MiB at a few hundred bytes each): at
/// 2,000 events/s, four seconds a subscriber may fall behind before it reads the store.
pub const DEFAULT_CAPACITY: usize = 8_192;

/// The window of recent committed events, shared by the writer (publishes) and the store
/// handle (reads).
pub(crate) struct EventRing {
    window: Mutex<Window>,
    capacity: usize,
}

struct Window {
    /// One chunk per publication (a commit round), oldest first; never empty chunks.
    chunks: VecDeque<Arc<[Event]>>,
    /// Events in `chunks`.
    len: usize,
    /// Every committed event with a greater seq is in `chunks`; `None`: not known (the window
    /// was reset and nothing was published since).
    complete_after: Option<i64>,
}

impl EventRing {
    /// An empty window over a store whose highest committed seq is `last_seq`; `capacity` 0
    /// keeps nothing (every read goes to the store).
    pub(crate) fn new(capacity: usize, last_seq: i64) -> EventRing {
        EventRing {
            window: Mutex::new(Window {
                chunks: VecDeque::new(),
                len: 0,
                complete_after: (capacity > 0).then_some(last_seq),
            }),
            capacity,
        }
    }

    /// Adds the events one commit inserted (in seq order); the oldest chunks go while more
    /// than `capacity` events are held (the newest chunk always stays, however big).
    pub(crate) fn publish(&self, events: Vec<Event>) {
        if self.capacity == 0 {
            return;
        }
        let Some(first) = events.first().map(|e| e.seq) else {
            return;
        };
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.complete_after.is_none() {
            w.complete_after = Some(first - 1);
        }
        w.len += events.len();
        w.chunks.push_back(events.into());
        while w.len > self.capacity && w.chunks.len() > 1 {
            let Some(old) = w.chunks.pop_front() else {
                break;
            };
            w.len -= old.len();
            w.complete_after = old.last().map(|e| e.seq).or(w.complete_after);
        }
    }

    /// Forgets every event held; reads go to the store until the next [`Self::publish`].
    pub(crate) fn reset(&self) {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        w.chunks.clear();
        w.len = 0;
        w.complete_after = None;
    }

    /// Up to `limit` committed events with a seq above `after`, in seq order, exactly as the
    /// store would return them; `None` when the window cannot tell (read the store).
    pub(crate) fn after(&self, after: i64, limit: usize) -> Option<Vec<Event>> {
        // The chunks are shared, not copied, under the lock: the writer waits for a few
        // reference counts at most, and the events are cloned after it is released.
        let chunks: Vec<Arc<[Event]>> = {
            let w = self.window.lock().unwrap_or_else(|p| p.into_inner());
            if after < w.complete_after? {
                return None;
            }
            // Subscribers that keep up read the newest chunks: search from the back.
            let newer = w
                .chunks
                .iter()
                .rev()
                .take_while(|c| c.last().is_some_and(|e| e.seq > after))
                .count();
            w.chunks
                .iter()
                .skip(w.chunks.len() - newer)
                .cloned()
                .collect()
        };
        let events = chunks
            .iter()
            .flat_map(|c| c.iter())
            .filter(|e| e.seq > after)
            .take(limit)
            .cloned()
            .collect();
        Some(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64) -> Event {
        Event {
            seq,
            kind: "mo".into(),
            at: seq * 10,
            body: format!(r#"{{"n":{seq}}}"#),
        }
    }

    fn publish(ring: &EventRing, seqs: &[i64]) {
        ring.publish(seqs.iter().map(|&s| ev(s)).collect());
    }

    fn seqs(events: Option<Vec<Event>>) -> Option<Vec<i64>> {
        events.map(|v| v.into_iter().map(|e| e.seq).collect())
    }

    #[test]
    fn answers_from_the_window_and_sends_older_reads_to_the_store() {
        let ring = EventRing::new(4, 10);
        assert_eq!(seqs(ring.after(10, 5)), Some(vec![]));
        assert_eq!(seqs(ring.after(9, 5)), None);
        publish(&ring, &[11, 12]);
        publish(&ring, &[14]); // a gap: 13 was pruned or never committed
        assert_eq!(seqs(ring.after(10, 5)), Some(vec![11, 12, 14]));
        assert_eq!(seqs(ring.after(11, 1)), Some(vec![12]));
        assert_eq!(seqs(ring.after(12, 5)), Some(vec![14]));
        assert_eq!(seqs(ring.after(14, 5)), Some(vec![]));
        publish(&ring, &[15, 16]); // 5 held: the oldest chunk goes
        assert_eq!(seqs(ring.after(11, 5)), None);
        assert_eq!(seqs(ring.after(12, 5)), Some(vec![14, 15, 16]));
    }

    #[test]
    fn a_reset_forgets_until_the_next_events() {
        let ring = EventRing::new(8, 0);
        publish(&ring, &[1, 2]);
        publish(&ring, &[3]);
        ring.reset();
        assert_eq!(seqs(ring.after(2, 5)), None);
        publish(&ring, &[5]);
        assert_eq!(seqs(ring.after(3, 5)), None);
        assert_eq!(seqs(ring.after(4, 5)), Some(vec![5]));
    }

    #[test]
    fn the_newest_chunk_stays_however_big_and_capacity_zero_keeps_nothing() {
        let ring = EventRing::new(2, 0);
        publish(&ring, &[1, 2, 3]);
        assert_eq!(seqs(ring.after(0, 9)), Some(vec![1, 2, 3]));
        let off = EventRing::new(0, 0);
        publish(&off, &[1]);
        assert_eq!(seqs(off.after(0, 9)), None);
    }
}
