//! A circuit breaker per SMSC: stop sending to an SMSC that keeps failing, probe it now and then,
//! and close again when a probe succeeds.
//!
//! Pure: time is passed in. Closed → (`threshold` failures in a row) → Open for `cooldown` →
//! HalfOpen (one probe part allowed) → Closed on success, or Open again with a doubled cooldown
//! (up to `max_cooldown`) on failure. Failures are throttling answers, temporary errors and
//! response timeouts; a permanent refusal of one message says nothing about the SMSC's health.
//!
//! A probe may end without a verdict (sent back to the queue for a re-split, reclaimed when the
//! bind dropped, refused permanently, lost with the connection): after `probe_timeout` without
//! one its slot is free again, so such a probe never keeps the circuit open for good.

use std::time::{Duration, Instant};

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe may go; `probe_since` is when the current one went.
    HalfOpen {
        probe_since: Option<Instant>,
    },
}

/// One SMSC's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: State,
    failures: u32,
    threshold: u32,
    cooldown: Duration,
    base_cooldown: Duration,
    max_cooldown: Duration,
    probe_timeout: Duration,
}

impl Breaker {
    pub fn new(
        threshold: u32,
        cooldown: Duration,
        max_cooldown: Duration,
        probe_timeout: Duration,
    ) -> Breaker {
        Breaker {
            state: State::Closed,
            failures: 0,
            threshold: threshold.max(1),
            cooldown,
            base_cooldown: cooldown,
            max_cooldown: max_cooldown.max(cooldown),
            probe_timeout,
        }
    }

    /// Whether the probe slot is taken by a probe that may still report.
    fn probing(&self, since: Option<Instant>, now: Instant) -> bool {
        since.is_some_and(|t| now < t + self.probe_timeout)
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a part may be sent now; in half-open state only one probe at a time.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen {
                    probe_since: Some(now),
                };
                true
            }
            State::Open { .. } => false,
            State::HalfOpen { probe_since } if self.probing(probe_since, now) => false,
            State::HalfOpen { .. } => {
                self.state = State::HalfOpen {
                    probe_since: Some(now),
                };
                true
            }
        }
    }

    /// Whether the breaker would let a part through now, without taking the probe slot.
    pub fn is_usable(&self, now: Instant) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probe_since } => !self.probing(probe_since, now),
        }
    }

    /// The SMSC accepted a part. Returns true when this closed an open circuit.
    pub fn success(&mut self) -> bool {
        self.failures = 0;
        let was_open = self.state != State::Closed;
        self.state = State::Closed;
        self.cooldown = self.base_cooldown;
        was_open
    }

    /// The SMSC failed a part (throttling, temporary error, timeout). Returns true when this
    /// opened the circuit.
    pub fn failure(&mut self, now: Instant) -> bool {
        match self.state {
            State::HalfOpen { .. } => {
                // The probe failed: open again, for longer.
                self.cooldown = (self.cooldown * 2).min(self.max_cooldown);
                self.state = State::Open {
                    until: now + self.cooldown,
                };
                true
            }
            State::Open { .. } => false,
            State::Closed => {
                self.failures += 1;
                if self.failures >= self.threshold {
                    self.state = State::Open {
                        until: now + self.cooldown,
                    };
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_probes_after_cooldown() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            3,
            Duration::from_secs(5),
            Duration::from_secs(60),
            Duration::from_secs(30),
        );
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        assert!(b.allow(t0));
        assert!(b.failure(t0), "third failure opens");
        assert!(!b.allow(t0 + Duration::from_secs(4)));
        assert!(!b.is_usable(t0 + Duration::from_secs(4)));
        // After the cooldown one probe goes, a second waits.
        let t1 = t0 + Duration::from_secs(5);
        assert!(b.allow(t1));
        assert!(!b.allow(t1));
        // The probe fails: open again for twice as long.
        assert!(b.failure(t1));
        assert!(!b.allow(t1 + Duration::from_secs(9)));
        let t2 = t1 + Duration::from_secs(10);
        assert!(b.allow(t2));
        // The probe succeeds: closed, cooldown reset.
        assert!(b.success());
        assert_eq!(b.state(), State::Closed);
        assert!(b.allow(t2));
    }

    #[test]
    fn a_success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            2,
            Duration::from_secs(1),
            Duration::from_secs(8),
            Duration::from_secs(30),
        );
        b.failure(t0);
        assert!(!b.success());
        assert!(!b.failure(t0), "count restarted after a success");
    }

    #[test]
    fn cooldown_is_capped() {
        let mut t = Instant::now();
        let mut b = Breaker::new(
            1,
            Duration::from_secs(1),
            Duration::from_secs(4),
            Duration::from_secs(30),
        );
        b.failure(t);
        for _ in 0..5 {
            t += Duration::from_secs(10);
            assert!(b.allow(t));
            b.failure(t);
        }
        assert_eq!(
            b.state(),
            State::Open {
                until: t + Duration::from_secs(4)
            }
        );
    }

    /// A regression: a probe that ended without a verdict (re-split, reclaimed, refused for
    /// good) kept the slot taken, and the circuit stayed open with nothing ever probing it.
    #[test]
    fn a_probe_without_a_verdict_frees_its_slot_after_the_probe_timeout() {
        let t0 = Instant::now();
        let mut b = Breaker::new(
            1,
            Duration::from_secs(2),
            Duration::from_secs(60),
            Duration::from_secs(3),
        );
        b.failure(t0);
        let t1 = t0 + Duration::from_secs(2);
        assert!(b.allow(t1), "the probe goes");
        // Its outcome never comes.
        assert!(!b.is_usable(t1 + Duration::from_secs(2)));
        assert!(!b.allow(t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(3);
        assert!(b.is_usable(t2), "the slot is free again");
        assert!(b.allow(t2), "another probe goes");
        assert!(!b.allow(t2), "one at a time");
        assert!(b.success());
        assert_eq!(b.state(), State::Closed);
    }
}
