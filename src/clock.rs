//! The daemon's wall clock: every wall-clock reading of the daemon (accept times, validity,
//! send windows, frequency caps, retry times, expiry) goes through [`now_ms`] or [`now`].
//!
//! Why one place: send windows and caps depend on the local time at the destination, and a test
//! (or an operator rehearsing a campaign) must be able to see what the daemon does at 08:59:50 on
//! a daylight-saving day without waiting for it. `SMPPD_CLOCK_START` (RFC 3339, e.g.
//! `2026-03-29T00:59:50Z`) makes the clock start at that instant when the process first reads it
//! and run at real speed from there. It is a rehearsal tool, never set in production: times sent
//! to an SMSC (absolute validity) follow it too. An unparsable value is ignored with a warning.
//!
//! Owns the offset (read once per process). Must never be used by pure modules (`pdu`, `text`,
//! `receipt`, `route`, `policy`): they take the time as a parameter. Intervals and timeouts use
//! `Instant`, not this clock.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable that shifts the clock (see the module docs).
pub const START_VAR: &str = "SMPPD_CLOCK_START";

/// Milliseconds added to the system clock; 0 unless `SMPPD_CLOCK_START` is set.
fn offset_ms() -> i64 {
    static OFFSET: OnceLock<i64> = OnceLock::new();
    *OFFSET.get_or_init(|| {
        let Ok(text) = std::env::var(START_VAR) else {
            return 0;
        };
        match chrono::DateTime::parse_from_rfc3339(text.trim()) {
            Ok(start) => {
                let offset = start.timestamp_millis() - system_ms();
                tracing::warn!(
                    start = %text,
                    offset_ms = offset,
                    "{START_VAR} is set: the daemon's clock is shifted (rehearsals and tests only)"
                );
                offset
            }
            Err(e) => {
                tracing::warn!(value = %text, error = %e, "{START_VAR} ignored: not an RFC 3339 time");
                0
            }
        }
    })
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, on the daemon's clock.
pub fn now_ms() -> i64 {
    system_ms().saturating_add(offset_ms())
}

/// The daemon's clock as a `SystemTime`.
pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(now_ms()).unwrap_or(0))
}

/// The daemon's clock as a UTC date and time (for send windows).
pub fn now_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_ms()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_is_the_system_clock_without_the_variable() {
        // The test process does not set SMPPD_CLOCK_START.
        let a = super::system_ms();
        let b = super::now_ms();
        assert!((b - a).abs() < 5_000, "{a} {b}");
        assert_eq!(
            super::now_utc().timestamp_millis() / 1000,
            super::now_ms() / 1000
        );
    }
}
