//! Submit arrival pacing, for checking a gateway's rate limiting from the SMSC's side: the
//! largest number of submits seen in any 100 ms window (sliding, at 1 ms resolution) and a
//! histogram of submits per fixed 100 ms bucket over the last minute.
//!
//! Pure bookkeeping on millisecond timestamps (the caller reads the clock), bounded memory: a ring
//! of 100 one-millisecond counters and at most [`HISTORY_BUCKETS`] histogram buckets. It must never
//! allocate per submit or grow with the rate.

use std::collections::VecDeque;

use serde::Serialize;

/// Length of the sliding window and of a histogram bucket, in milliseconds.
pub const WINDOW_MS: u64 = 100;

/// Histogram buckets kept (one minute of 100 ms buckets).
pub const HISTORY_BUCKETS: usize = 600;

/// Arrival bookkeeping; see the module doc.
#[derive(Debug)]
pub struct Pacing {
    /// Submits per millisecond of the last [`WINDOW_MS`] milliseconds, indexed by `ms % WINDOW_MS`.
    ring: [u32; WINDOW_MS as usize],
    /// The millisecond the ring is current up to (arrivals at later times first expire buckets).
    head_ms: u64,
    /// Sum of `ring`: the submits in the window ending at `head_ms`.
    in_window: u64,
    /// Largest `in_window` seen.
    max: u64,
    /// (bucket index = ms / WINDOW_MS, submits) of the last [`HISTORY_BUCKETS`] busy buckets, oldest first.
    history: VecDeque<(u64, u32)>,
}

/// A snapshot for the control port's `pacing` command.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PacingReport {
    /// Width of the window and of each bucket.
    pub bucket_ms: u64,
    /// Largest number of submits in any window of `bucket_ms` (sliding, 1 ms resolution).
    pub max_per_window: u64,
    /// Start of the first bucket in `counts`, in ms since the simulator started.
    pub first_bucket_ms: u64,
    /// Submits per bucket from `first_bucket_ms` on, at most a minute; idle buckets are 0.
    pub counts: Vec<u32>,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            ring: [0; WINDOW_MS as usize],
            head_ms: 0,
            in_window: 0,
            max: 0,
            history: VecDeque::new(),
        }
    }
}

impl Pacing {
    /// Counts one submit arriving at `now_ms` (milliseconds on any monotonic origin; earlier
    /// times than a previous call are counted as that previous millisecond).
    pub fn record(&mut self, now_ms: u64) {
        let now_ms = now_ms.max(self.head_ms);
        self.advance(now_ms);
        self.ring[(now_ms % WINDOW_MS) as usize] += 1;
        self.in_window += 1;
        self.max = self.max.max(self.in_window);
        let bucket = now_ms / WINDOW_MS;
        match self.history.back_mut() {
            Some((b, n)) if *b == bucket => *n = n.saturating_add(1),
            _ => {
                self.history.push_back((bucket, 1));
                // Drop what is older than a minute before `bucket`.
                while self
                    .history
                    .front()
                    .is_some_and(|(b, _)| bucket - b >= HISTORY_BUCKETS as u64)
                {
                    self.history.pop_front();
                }
            }
        }
    }

    /// Expires the milliseconds that left the window ending at `now_ms`.
    fn advance(&mut self, now_ms: u64) {
        let gap = now_ms - self.head_ms;
        if gap >= WINDOW_MS {
            self.ring = [0; WINDOW_MS as usize];
            self.in_window = 0;
        } else {
            for ms in self.head_ms + 1..=now_ms {
                let slot = &mut self.ring[(ms % WINDOW_MS) as usize];
                self.in_window -= u64::from(*slot);
                *slot = 0;
            }
        }
        self.head_ms = now_ms;
    }

    /// Largest number of submits in any 100 ms window so far.
    pub fn max_per_window(&self) -> u64 {
        self.max
    }

    /// The histogram of the last minute (idle buckets filled in as 0) and the maximum.
    pub fn report(&self) -> PacingReport {
        let first = self.history.front().map_or(0, |(b, _)| *b);
        let mut counts = Vec::new();
        for (b, n) in &self.history {
            counts.resize((b - first) as usize, 0);
            counts.push(*n);
        }
        PacingReport {
            bucket_ms: WINDOW_MS,
            max_per_window: self.max,
            first_bucket_ms: first * WINDOW_MS,
            counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maximum_slides_over_bucket_boundaries() {
        let mut p = Pacing::default();
        // 30 submits at 50 ms and 30 at 140 ms: one fixed bucket each (0–99, 100–199), but a
        // sliding window of 100 ms (41–140) holds all 60.
        for _ in 0..30 {
            p.record(50);
        }
        for _ in 0..30 {
            p.record(140);
        }
        assert_eq!(p.max_per_window(), 60);
        // 150 ms later the window is empty again: 10 more do not raise the maximum.
        for _ in 0..10 {
            p.record(300);
        }
        assert_eq!(p.max_per_window(), 60);
        let r = p.report();
        assert_eq!(r.first_bucket_ms, 0);
        assert_eq!(r.counts, vec![30, 30, 0, 10]);
    }

    #[test]
    fn a_window_excludes_what_is_exactly_100_ms_older() {
        let mut p = Pacing::default();
        p.record(0);
        p.record(99);
        assert_eq!(p.max_per_window(), 2);
        p.record(100); // 0 has left the window 1–100
        p.record(100);
        assert_eq!(p.max_per_window(), 3);
    }

    #[test]
    fn an_even_rate_stays_at_its_tenth() {
        // 1000/s, one submit per millisecond for 5 s: every window holds 100.
        let mut p = Pacing::default();
        for ms in 0..5000 {
            p.record(ms);
        }
        assert_eq!(p.max_per_window(), 100);
        assert!(p.report().counts.iter().all(|&n| n == 100));
    }

    #[test]
    fn history_is_bounded_to_a_minute() {
        let mut p = Pacing::default();
        for s in 0..120u64 {
            p.record(s * 1000);
        }
        let r = p.report();
        assert!(r.counts.len() <= HISTORY_BUCKETS, "{}", r.counts.len());
        assert_eq!(r.first_bucket_ms, 60_000);
        // Out-of-order times do not go back.
        p.record(5);
        assert_eq!(p.max_per_window(), 2);
    }
}
