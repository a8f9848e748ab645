//! Exponential backoff with full jitter, used for reconnects (also after bind rejections) and for
//! throttling pauses. Owns only the arithmetic; it never sleeps itself, so callers decide how to
//! wait (and tests can drive it with `tokio::time::pause()`).
//!
//! Why full jitter ("a random delay between `min` and the current ceiling"): N binds of one SMSC that
//! lose their connections together must not come back together and trip the SMSC's bind-rate
//! limits; spreading them uniformly is what AWS' backoff study found best. The lower bound stays
//! `min`, so a retry is never a tight loop whatever the peer does.

use std::time::Duration;

/// A growing delay: `min`, doubling per failure up to `max`; [`Backoff::reset`] on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
    jitter: bool,
}

impl Backoff {
    /// A backoff between `min` and `max` (`max` is raised to `min` if smaller), with jitter.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: 0,
            jitter: true,
        }
    }

    /// The same without jitter: every delay is exactly the ceiling (throttling pauses use it so
    /// that the pause grows predictably while throttling repeats).
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    /// How many failures in a row have been counted since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The current ceiling: `min * 2^failures`, capped at `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// Counts one more failure and returns how long to wait before the next attempt: uniformly
    /// random in `[min, ceiling]` (or exactly the ceiling without jitter).
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        if !self.jitter || ceiling <= self.min {
            return ceiling;
        }
        let lo = self.min.as_nanos() as u64;
        let hi = ceiling.as_nanos().min(u128::from(u64::MAX)) as u64;
        Duration::from_nanos(rand::random_range(lo..=hi))
    }

    /// Forgets the failures: the next delay is `min` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_and_caps_without_jitter() {
        let mut b =
            Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).without_jitter();
        let got: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_between_min_and_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_secs(10));
        for _ in 0..40 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(50) && d <= ceiling,
                "{d:?} > {ceiling:?}"
            );
        }
        assert_eq!(b.ceiling(), Duration::from_secs(10));
    }

    #[test]
    fn never_zero_when_min_is_not() {
        let mut b = Backoff::new(Duration::from_millis(1), Duration::ZERO);
        assert_eq!(b.next_delay(), Duration::from_millis(1));
        assert_eq!(b.next_delay(), Duration::from_millis(1));
    }
}
