//! One SMSC as dispatch sees it: its sessions' job channel, its contractual token bucket and
//! its circuit breaker.
//!
//! Owns the [`SmscHandle`] (until a stop or a reload takes it out) and the breaker's state.
//! Must never block: every method takes its lock for one field operation.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::DefaultDirectRateLimiter;
use tokio::sync::mpsc;

use super::breaker::{self, Breaker};
use super::limiter;
use super::locks::lock;
use crate::session::{Job, SmscHandle};

/// Failures in a row that open an SMSC's circuit.
const BREAKER_THRESHOLD: u32 = 5;
/// How long an open circuit waits before a probe; doubles while probes fail.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(2);
const BREAKER_MAX_COOLDOWN: Duration = Duration::from_secs(60);
/// How long a probe may go without an outcome before another may go (see [`breaker`]).
const BREAKER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One SMSC as dispatch sees it.
pub struct SmscLink {
    pub name: Arc<str>,
    /// The sessions; taken out (set to `None`) when they are stopped.
    handle: Mutex<Option<SmscHandle>>,
    pub(super) jobs: mpsc::Sender<Job>,
    pub(super) bucket: Option<DefaultDirectRateLimiter>,
    breaker: Mutex<Breaker>,
}

impl SmscLink {
    /// Wraps started sessions with the SMSC's token bucket (its contractual `tps`).
    pub fn new(handle: SmscHandle, tps: Option<u32>) -> SmscLink {
        SmscLink {
            name: Arc::from(handle.name()),
            jobs: handle.jobs(),
            handle: Mutex::new(Some(handle)),
            bucket: tps.and_then(|t| limiter(t, (t / 10).max(1))),
            breaker: Mutex::new(Breaker::new(
                BREAKER_THRESHOLD,
                BREAKER_COOLDOWN,
                BREAKER_MAX_COOLDOWN,
                BREAKER_PROBE_TIMEOUT,
            )),
        }
    }

    /// Whether this SMSC can take a part now: a transmitter is bound and the circuit lets it.
    pub(super) fn usable(&self, now: Instant) -> bool {
        self.can_transmit() && lock(&self.breaker, "breaker").is_usable(now)
    }

    /// Takes the circuit's permission for one part (the half-open probe slot, if so).
    pub(super) fn admit(&self, now: Instant) -> bool {
        lock(&self.breaker, "breaker").allow(now)
    }

    pub(super) fn record_success(&self) {
        if lock(&self.breaker, "breaker").success() {
            tracing::info!(smsc = %self.name, "circuit closed: the SMSC accepts again");
        }
    }

    pub(super) fn record_failure(&self, why: &str) {
        if lock(&self.breaker, "breaker").failure(Instant::now()) {
            tracing::warn!(smsc = %self.name, reason = why, "circuit open: sending to the route's next SMSC until a probe succeeds");
        }
    }

    /// Whether the circuit is open (for status output).
    pub fn circuit_open(&self) -> bool {
        !matches!(
            lock(&self.breaker, "breaker").state(),
            breaker::State::Closed
        )
    }

    /// Whether a transmitting bind is up.
    pub fn can_transmit(&self) -> bool {
        lock(&self.handle, "smsc handle")
            .as_ref()
            .is_some_and(SmscHandle::can_transmit)
    }

    /// A snapshot of every bind (empty once stopped).
    pub fn status(&self) -> Vec<crate::session::BindStatus> {
        lock(&self.handle, "smsc handle")
            .as_ref()
            .map(SmscHandle::status)
            .unwrap_or_default()
    }

    /// Jobs waiting in the channel while no transmitter is bound (see
    /// [`SmscHandle::reclaim_queued`]).
    pub(super) fn reclaim_queued(&self) -> Vec<Job> {
        if self.can_transmit() {
            return Vec::new();
        }
        lock(&self.handle, "smsc handle")
            .as_ref()
            .map(SmscHandle::reclaim_queued)
            .unwrap_or_default()
    }

    /// Takes the sessions out for a graceful stop.
    pub fn take_handle(&self) -> Option<SmscHandle> {
        lock(&self.handle, "smsc handle").take()
    }
}
