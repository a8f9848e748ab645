//! A small per-second rate meter for status output: counts in a ring of one-second slots.
//!
//! Owns only counting; never allocates after construction and never blocks beyond a short
//! mutex (the ring is a fixed array).

/// Seconds averaged over (complete seconds before the current one).
pub const WINDOW_SECS: u64 = 10;
const SLOTS: usize = WINDOW_SECS as usize + 1;

/// Events per second over the last [`WINDOW_SECS`] complete seconds.
#[derive(Debug, Default)]
pub struct RateMeter {
    /// (second, count) per slot; a slot holding an older second counts as zero.
    slots: [(u64, u64); SLOTS],
}

impl RateMeter {
    /// Counts `n` events in second `sec` (seconds since any fixed origin).
    pub fn record(&mut self, sec: u64, n: u64) {
        let slot = &mut self.slots[(sec % SLOTS as u64) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += n;
    }

    /// The average rate over the `WINDOW_SECS` complete seconds before `now_sec`.
    pub fn per_second(&self, now_sec: u64) -> f64 {
        let from = now_sec.saturating_sub(WINDOW_SECS);
        let sum: u64 = self
            .slots
            .iter()
            .filter(|(s, _)| *s >= from && *s < now_sec)
            .map(|(_, n)| n)
            .sum();
        sum as f64 / WINDOW_SECS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_complete_seconds_and_forgets_old_ones() {
        let mut m = RateMeter::default();
        for sec in 100..110 {
            m.record(sec, 20);
        }
        m.record(110, 1000); // the current second is not complete: not counted
        assert_eq!(m.per_second(110), 20.0);
        // Five seconds later the window holds 105..=109 and the now complete second 110.
        assert_eq!(m.per_second(115), (5.0 * 20.0 + 1000.0) / 10.0);
        assert_eq!(m.per_second(200), 0.0);
        // A slot reused for a later second starts from zero.
        m.record(111, 5);
        assert_eq!(m.per_second(112), (8.0 * 20.0 + 1000.0 + 5.0) / 10.0);
    }
}
