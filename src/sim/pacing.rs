//! Submit arrival pacing, for checking a gateway's rate limiting from the SMSC's side: the
//! largest number of submits seen in any 100 ms window (sliding and exact to the microsecond:
//! every half-open window (t − 100 ms, t]) and a histogram of submits per fixed 100 ms bucket
//! over the last minute.
//!
//! Pure bookkeeping on microsecond timestamps (the caller reads the clock). Memory is bounded:
//! the arrival times of the last 100 ms (at most [`MAX_WINDOW_ENTRIES`]; beyond that the oldest
//! are forgotten, which only a rate above 10 million per second could reach) and at most
//! [`HISTORY_BUCKETS`] histogram buckets.

use std::collections::VecDeque;

use serde::Serialize;

/// Length of the sliding window and of a histogram bucket, in milliseconds.
pub const WINDOW_MS: u64 = 100;

const WINDOW_US: u64 = WINDOW_MS * 1000;

/// Histogram buckets kept (one minute of 100 ms buckets).
pub const HISTORY_BUCKETS: usize = 600;

/// Arrival times kept for the sliding window, at most.
pub const MAX_WINDOW_ENTRIES: usize = 1_000_000;

/// Arrival bookkeeping; see the module doc.
#[derive(Debug, Default)]
pub struct Pacing {
    /// Arrival times (µs) within the window ending at the latest arrival, oldest first.
    window: VecDeque<u64>,
    /// Latest arrival time seen (earlier times are counted as this one).
    latest_us: u64,
    /// Largest `window.len()` seen.
    max: u64,
    /// (bucket index = ms / WINDOW_MS, submits) of the last [`HISTORY_BUCKETS`] busy buckets, oldest first.
    history: VecDeque<(u64, u32)>,
}

/// A snapshot for the control port's `pacing` command.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PacingReport {
    /// Width of the window and of each bucket.
    pub bucket_ms: u64,
    /// Largest number of submits in any window of `bucket_ms` (sliding, exact to the µs).
    pub max_per_window: u64,
    /// Start of the first bucket in `counts`, in ms since the simulator started.
    pub first_bucket_ms: u64,
    /// Submits per bucket from `first_bucket_ms` on, at most a minute; idle buckets are 0.
    pub counts: Vec<u32>,
}

impl Pacing {
    /// Counts one submit arriving at `now_us` (microseconds on any monotonic origin; a time
    /// earlier than a previous call's is counted as that previous time).
    pub fn record(&mut self, now_us: u64) {
        let now_us = now_us.max(self.latest_us);
        self.latest_us = now_us;
        // Keep the arrivals of (now − 100 ms, now].
        while self
            .window
            .front()
            .is_some_and(|&t| t + WINDOW_US <= now_us)
        {
            self.window.pop_front();
        }
        if self.window.len() >= MAX_WINDOW_ENTRIES {
            self.window.pop_front();
        }
        self.window.push_back(now_us);
        self.max = self.max.max(self.window.len() as u64);
        let bucket = now_us / WINDOW_US;
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

    const MS: u64 = 1000;

    #[test]
    fn the_maximum_slides_over_bucket_boundaries() {
        let mut p = Pacing::default();
        // 30 submits at 50 ms and 30 at 140 ms: one fixed bucket each (0–99, 100–199), but a
        // sliding window of 100 ms (40–140] holds all 60.
        for _ in 0..30 {
            p.record(50 * MS);
        }
        for _ in 0..30 {
            p.record(140 * MS);
        }
        assert_eq!(p.max_per_window(), 60);
        // 150 ms later the window is empty again: 10 more do not raise the maximum.
        for _ in 0..10 {
            p.record(300 * MS);
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
        p.record(99_999);
        assert_eq!(p.max_per_window(), 2);
        p.record(100 * MS); // 0 has left the window (0, 100 ms]
        p.record(100 * MS);
        assert_eq!(p.max_per_window(), 3);
    }

    #[test]
    fn an_even_rate_stays_at_its_tenth() {
        // 500/s, one submit every 2 ms for 5 s: every 100 ms window holds exactly 50.
        let mut p = Pacing::default();
        for k in 0..2500 {
            p.record(k * 2 * MS);
        }
        assert_eq!(p.max_per_window(), 50);
        assert!(p.report().counts.iter().all(|&n| n == 50));
    }

    #[test]
    fn history_is_bounded_to_a_minute() {
        let mut p = Pacing::default();
        for s in 0..120u64 {
            p.record(s * 1000 * MS);
        }
        let r = p.report();
        assert!(r.counts.len() <= HISTORY_BUCKETS, "{}", r.counts.len());
        assert_eq!(r.first_bucket_ms, 60_000);
        // Out-of-order times do not go back.
        p.record(5);
        assert_eq!(p.max_per_window(), 2);
    }
}
