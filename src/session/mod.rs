//! SMPP sessions towards one SMSC: one tokio task per bind that connects (TCP or TLS), binds,
//! keeps a window of in-flight requests, keeps the link alive, backs off on throttling and
//! reconnects. This module owns the wire conversation of a bind; it never decides routing, never
//! retries a message on its own and never drops one: every job it takes leaves as exactly one
//! [`Event`] — [`Event::Submitted`], [`Event::Failed`], [`Event::Retry`] (with the job) or
//! [`Event::Expired`] (its validity ended before it could be written).
//!
//! # How the daemon uses it
//!
//! ```text
//!            jobs (bounded mpsc, shared by the SMSC's binds)
//!  dispatch ───────────────► SmscHandle ──► bind task #0 (trx)   ◄──► SMSC
//!     ▲                                 └─► bind task #1 (trx)   ◄──► SMSC
//!     └──────────────── events (bounded mpsc supplied by the caller) ◄───┤
//!  inbound task ◄────── inbound (bounded mpsc; may be the events channel) ◄──┘
//! ```
//!
//! 1. [`SmscHandle::start`] with a [`SessionConfig`] and an event sender, or
//!    [`SmscHandle::start_with`] and [`Channels`] to have inbound PDUs on a channel of their
//!    own (the daemon's receipt task reads it; dispatch never sees them). It spawns one task per
//!    bind (two per bind index in [`BindMode::TxRx`]: a transmitter and a receiver).
//! 2. Send [`Job`]s (an opaque `u64` key of the caller's + a submit_sm or data_sm body) through
//!    [`SmscHandle::jobs`]. The channel is bounded: when every window is full, `send` waits.
//!    A transmitting bind takes as many jobs as it has free window permits.
//! 3. Read [`Event`]s. For every job exactly one of: `Submitted` (with the SMSC's message id and
//!    the bind), `Failed` (a permanent status, by name), `Expired` (a job with a [`Validity`]
//!    that ended before the bind could write it; never written), or `Retry` (the job back, with a
//!    [`RetryReason`]: throttled — put it at the head of the line —, a temporary status, a
//!    response timeout, the connection lost, or shutdown). Inbound deliver_sm/data_sm arrive as
//!    [`Event::Inbound`] with an [`InboundReply`]: the session sends deliver_sm_resp/data_sm_resp
//!    only once the consumer answers (after it made the receipt durable); if the consumer drops
//!    the reply or does not answer within `inbound_timeout`, the session answers ESME_RX_T_APPN so
//!    the SMSC redelivers. [`Event::BindState`] reports every state change.
//! 4. [`SmscHandle::stop`]: the binds take no new jobs, wait for in-flight responses (and inbound
//!    answers) up to the deadline, unbind and close; everything still in flight comes back as
//!    `Retry { reason: Shutdown }` (it may have reached the SMSC) and every job still queued in
//!    the channel as `Retry { reason: NotSent }` (it never left, so it is no possible duplicate).
//!    For a live reload with changed connection settings, stop the old handle and start a new one.
//!
//! **Do not block the event consumer on `jobs().send()`**: when both channels are full the binds
//! wait for the consumer and the consumer waits for the binds. Feed jobs from a different task, or
//! use `try_send` and keep the job.
//!
//! # Behaviour on the wire
//!
//! - Validity: a job with a [`Validity`] is checked right before it is written; past its end it
//!   comes back as [`Event::Expired`] and never reaches the SMSC, otherwise its submit_sm carries
//!   the time left in `validity_period` (relative or absolute, per [`ValidityFormat`]).
//! - Window: at most `window` submit_sm/data_sm outstanding per bind (see [`window`]), matched by
//!   sequence number; a response that does not come within `response_timeout` hands the job back
//!   (`Retry { reason: ResponseTimeout }`) and is counted in [`BindStatus::response_timeouts`].
//! - Keep-alive: enquire_link after `enquire_link` without receiving anything; no
//!   enquire_link_resp within `response_timeout` → the bind is dead, reconnect.
//! - The SMSC's enquire_link, unbind (answered, then reconnect) and unknown or malformed requests
//!   (generic_nack with the decoder's status, e.g. ESME_RINVCMDID) are answered; a frame whose
//!   length cannot be trusted closes the connection.
//! - Status policy: one table, [`status`]. Throttling pauses the bind for a backoff that doubles
//!   while throttling repeats and resets on the next accepted submit.
//! - Reconnect: exponential backoff with full jitter between `reconnect_min` and `reconnect_max`
//!   ([`backoff`]), also after bind rejections (reported with the SMSC's status by name).
//! - Every state change is a `tracing` event with fields `smsc` and `bind`. The password is a
//!   [`Secret`] and never appears in a log line or a `Debug` output.

pub mod backoff;
mod bind;
pub mod config;
mod io;
pub mod status;
pub mod tls;
pub mod window;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use config::{BindMode, Secret, SessionConfig, TlsConfig, ValidityFormat};
pub use status::StatusClass;

use crate::pdu::{CommandStatus, DataSm, DeliverSm, SubmitSm};

/// Which bind of which SMSC: shown in events, logs and status output as `op-a#1/trx`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindId {
    /// The SMSC's configured name.
    pub smsc: Arc<str>,
    /// The bind index, `0..binds`.
    pub index: usize,
    /// What this bind carries.
    pub role: Role,
}

impl fmt::Display for BindId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}/{}", self.smsc, self.index, self.role)
    }
}

/// The direction(s) a bind carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// bind_transceiver: submits and inbound.
    Transceiver,
    /// bind_transmitter: submits only.
    Transmitter,
    /// bind_receiver: inbound only.
    Receiver,
}

impl Role {
    /// Whether the bind takes jobs.
    pub fn transmits(self) -> bool {
        !matches!(self, Role::Receiver)
    }

    /// Whether the bind may receive deliver_sm.
    pub fn receives(self) -> bool {
        !matches!(self, Role::Transmitter)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Transceiver => "trx",
            Role::Transmitter => "tx",
            Role::Receiver => "rx",
        })
    }
}

/// The body of a job: what to send.
#[derive(Debug, Clone)]
pub enum JobBody {
    /// A submit_sm.
    SubmitSm(SubmitSm),
    /// A data_sm.
    DataSm(DataSm),
}

/// One message (part) to send, with the caller's key that comes back in its event.
#[derive(Debug, Clone)]
pub struct Job {
    /// Opaque to the session; chosen by the caller (e.g. the store's part id).
    pub key: u64,
    /// The request to send. Its sequence number is assigned by the bind.
    pub body: JobBody,
    /// Until when the message may be sent, if it has a validity; see [`Validity`].
    pub validity: Option<Validity>,
}

/// A job's validity. Checked by the bind right before it writes the job: a job past `until`
/// is not written but comes back as [`Event::Expired`]. A submit_sm written gets the time left
/// in its `validity_period` (as `format` says), computed at that moment, so time spent waiting
/// for a window slot is not promised to the SMSC. (data_sm has no `validity_period`; its
/// deadline is still checked.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The end of the message's validity (wall clock).
    pub until: std::time::SystemTime,
    /// How `validity_period` is written.
    pub format: ValidityFormat,
}

impl Validity {
    /// Whether the validity has ended at `now`.
    pub fn ended(&self, now: std::time::SystemTime) -> bool {
        now >= self.until
    }

    /// The `validity_period` to write at `now` (empty for [`ValidityFormat::None`]). Relative:
    /// the whole seconds left, rounded down (so the SMSC does not hold the message longer than
    /// the gateway would), but at least one: a zero validity is refused by some SMSCs
    /// (ESME_RINVEXPIRY) and the bind writes only jobs whose validity has not ended.
    pub fn period(&self, now: std::time::SystemTime) -> crate::pdu::SmppTime {
        match self.format {
            ValidityFormat::None => crate::pdu::SmppTime::default(),
            ValidityFormat::Relative => crate::pdu::smpp_time_relative(
                self.until
                    .duration_since(now)
                    .map_or(0, |left| left.as_secs())
                    .max(1),
            ),
            ValidityFormat::Absolute => {
                let secs = self
                    .until
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                crate::pdu::smpp_time_utc(i64::try_from(secs).unwrap_or(i64::MAX))
            }
        }
    }
}

/// Why a job came back without a final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// ESME_RTHROTTLED or ESME_RMSGQFUL: the bind pauses; put the job at the head of the line.
    Throttled(CommandStatus),
    /// A temporary status (see [`status`]): retry later, with backoff.
    Temporary(CommandStatus),
    /// No response within `response_timeout`: the outcome is unknown (the SMSC may have it).
    ResponseTimeout,
    /// The connection closed with the job in flight: the outcome is unknown.
    ConnectionLost,
    /// The handle is stopping and the job was in flight at the drain deadline (it was written:
    /// the SMSC may have it).
    Shutdown,
    /// The handle stopped before any bind took the job from the channel: it never left, so a
    /// resend is not a duplicate.
    NotSent,
}

impl RetryReason {
    /// Whether the SMSC may have accepted the job (so a resend may be a duplicate).
    pub fn outcome_unknown(self) -> bool {
        matches!(
            self,
            RetryReason::ResponseTimeout | RetryReason::ConnectionLost | RetryReason::Shutdown
        )
    }
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryReason::Throttled(s) => write!(f, "throttled ({s})"),
            RetryReason::Temporary(s) => write!(f, "temporary status {s}"),
            RetryReason::ResponseTimeout => f.write_str("response timeout"),
            RetryReason::ConnectionLost => f.write_str("connection lost"),
            RetryReason::Shutdown => f.write_str("shutdown"),
            RetryReason::NotSent => f.write_str("not sent (stopping)"),
        }
    }
}

/// An inbound request from the SMSC.
#[derive(Debug, Clone)]
pub enum InboundPdu {
    /// deliver_sm: a delivery receipt or a mobile-originated message.
    DeliverSm(DeliverSm),
    /// data_sm from the SMSC.
    DataSm(DataSm),
}

/// The answer to an inbound PDU. Send it once the message is safe; dropping it (or not answering
/// within `inbound_timeout`) makes the session answer ESME_RX_T_APPN so the SMSC redelivers.
#[derive(Debug)]
pub struct InboundReply(oneshot::Sender<CommandStatus>);

impl InboundReply {
    /// Answers with `command_status` (ESME_ROK = handled; ESME_RX_T_APPN = redeliver later;
    /// ESME_RX_P_APPN / ESME_RX_R_APPN = reject).
    pub fn answer(self, command_status: CommandStatus) {
        // The bind may be gone (connection lost): then the SMSC redelivers; nothing to do.
        let _ = self.0.send(command_status);
    }

    /// Answers ESME_ROK.
    pub fn ok(self) {
        self.answer(CommandStatus::ESME_ROK);
    }
}

/// The state of one bind, as reported in [`Event::BindState`] and [`BindStatus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindState {
    /// Connecting and binding.
    Connecting,
    /// Bound: taking jobs (transmitters) and inbound PDUs (receivers).
    Bound,
    /// Bound but paused by throttling until the pause ends.
    Throttled {
        /// How long this pause lasts.
        pause: Duration,
    },
    /// Not connected; the next attempt comes after `retry_in`.
    Down {
        /// What happened.
        reason: DownReason,
        /// The reconnect backoff chosen.
        retry_in: Duration,
    },
    /// Draining for a stop.
    Stopping,
    /// Stopped for good.
    Stopped,
}

/// Why a bind went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// TCP connect, TLS handshake or their timeout failed.
    Connect(String),
    /// The SMSC answered the bind with a failure status (shown by name, e.g. ESME_RINVPASWD).
    BindRejected(CommandStatus),
    /// No bind response within `response_timeout`.
    BindTimeout,
    /// No enquire_link_resp within `response_timeout`.
    KeepAliveTimeout,
    /// The SMSC sent unbind.
    UnboundBySmsc,
    /// The SMSC closed the connection.
    Closed,
    /// Read or write failure, or a frame that broke the framing.
    Io(String),
    /// The SMSC answered ESME_RINVBNDSTS: it no longer considers this bind bound.
    BindStateLost,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::Connect(e) => write!(f, "connect failed: {e}"),
            DownReason::BindRejected(s) => write!(f, "bind rejected: {s}"),
            DownReason::BindTimeout => f.write_str("no bind response in time"),
            DownReason::KeepAliveTimeout => f.write_str("no enquire_link_resp in time"),
            DownReason::UnboundBySmsc => f.write_str("unbound by the SMSC"),
            DownReason::Closed => f.write_str("connection closed by the SMSC"),
            DownReason::Io(e) => write!(f, "i/o: {e}"),
            DownReason::BindStateLost => f.write_str("SMSC reported ESME_RINVBNDSTS"),
        }
    }
}

/// What the session reports to its caller.
#[derive(Debug)]
pub enum Event {
    /// The SMSC accepted the job.
    Submitted {
        /// The job's key.
        key: u64,
        /// The SMSC's message id from submit_sm_resp / data_sm_resp.
        message_id: String,
        /// The bind that carried it.
        bind: BindId,
    },
    /// The SMSC rejected the job permanently.
    Failed {
        /// The job's key.
        key: u64,
        /// The SMSC's status (its `Display` is the name).
        status: CommandStatus,
        /// The bind that carried it.
        bind: BindId,
    },
    /// The job's validity ended before the bind could write it: it was not sent (see
    /// [`Validity`]).
    Expired {
        /// The job's key.
        key: u64,
        /// The bind that held it.
        bind: BindId,
    },
    /// The job comes back to be sent again (see [`RetryReason`]).
    Retry {
        /// The job, unchanged.
        job: Job,
        /// Why.
        reason: RetryReason,
        /// The bind it was on, if it got that far.
        bind: Option<BindId>,
    },
    /// A deliver_sm or data_sm from the SMSC; answer through `reply`.
    Inbound {
        /// The PDU.
        pdu: InboundPdu,
        /// Where the answer goes.
        reply: InboundReply,
        /// The bind it came on.
        bind: BindId,
    },
    /// A bind changed state.
    BindState {
        /// Which bind.
        bind: BindId,
        /// Its new state.
        state: BindState,
    },
}

/// A snapshot of one bind, for status pages and tests.
#[derive(Debug, Clone)]
pub struct BindStatus {
    /// Which bind.
    pub bind: BindId,
    /// Its current state.
    pub state: BindState,
    /// When it entered that state (wall clock, for status pages).
    pub since: std::time::SystemTime,
    /// The reason of the last time it went down, if it ever did (e.g. "bind rejected:
    /// ESME_RINVPASWD").
    pub last_error: Option<String>,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Responses that never came within `response_timeout` (their jobs were handed back).
    pub response_timeouts: u64,
    /// ESME_RTHROTTLED / ESME_RMSGQFUL answers received.
    pub throttled: u64,
    /// Successful binds so far.
    pub binds: u64,
    /// Failed connects or binds so far.
    pub bind_failures: u64,
}

/// Live counters of one bind, shared between its task and the handle.
#[derive(Debug)]
struct BindShared {
    id: BindId,
    state: std::sync::Mutex<StateRecord>,
    in_flight: AtomicUsize,
    response_timeouts: AtomicU64,
    throttled: AtomicU64,
    binds: AtomicU64,
    bind_failures: AtomicU64,
}

/// The state of a bind with when it began and the last failure.
#[derive(Debug, Clone)]
struct StateRecord {
    state: BindState,
    since: std::time::SystemTime,
    last_error: Option<String>,
}

impl BindShared {
    fn set_state(&self, state: &BindState) {
        let mut r = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let BindState::Down { reason, .. } = state {
            r.last_error = Some(reason.to_string());
        }
        r.state = state.clone();
        r.since = crate::clock::now();
    }

    fn state(&self) -> BindState {
        self.state
            .lock()
            .map(|r| r.state.clone())
            .unwrap_or(BindState::Stopped)
    }

    fn status(&self) -> BindStatus {
        let record = self
            .state
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        BindStatus {
            bind: self.id.clone(),
            state: record.state,
            since: record.since,
            last_error: record.last_error,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            response_timeouts: self.response_timeouts.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            binds: self.binds.load(Ordering::Relaxed),
            bind_failures: self.bind_failures.load(Ordering::Relaxed),
        }
    }
}

/// Why an SMSC handle could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The TLS settings are unusable.
    #[error("smsc {smsc}: {problem}")]
    Tls {
        /// The SMSC's name.
        smsc: String,
        /// The problem (in the message, so not also given as the error's source: `smppd`
        /// prints the chain and would say it twice).
        problem: tls::TlsSetupError,
    },
    /// A setting is out of range.
    #[error("smsc {smsc}: {key}: {problem}")]
    Invalid {
        /// The SMSC's name.
        smsc: String,
        /// The setting.
        key: &'static str,
        /// The problem.
        problem: &'static str,
    },
}

/// The jobs receiver shared by the transmitting binds of one SMSC: a bind locks it only while it
/// waits for work it has window room for, so idle binds with free permits take the next job.
type SharedJobs = Arc<Mutex<mpsc::Receiver<Job>>>;

/// The running binds of one SMSC.
pub struct SmscHandle {
    name: Arc<str>,
    jobs_tx: mpsc::Sender<Job>,
    jobs_rx: SharedJobs,
    events: mpsc::Sender<Event>,
    stop_tx: watch::Sender<Option<Instant>>,
    binds: Vec<Arc<BindShared>>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for SmscHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmscHandle")
            .field("smsc", &self.name)
            .field("binds", &self.binds.len())
            .finish()
    }
}

impl SmscHandle {
    /// Starts the binds of one SMSC. `job_capacity` bounds the jobs channel; `events` receives
    /// everything the binds report, inbound PDUs included. Must be called within a tokio runtime.
    pub fn start(
        config: SessionConfig,
        job_capacity: usize,
        events: mpsc::Sender<Event>,
    ) -> Result<Self, StartError> {
        let channels = Channels {
            inbound: events.clone(),
            events,
        };
        Self::start_with(config, job_capacity, channels)
    }

    /// Starts the binds of one SMSC with inbound PDUs on their own channel (see [`Channels`]).
    /// Must be called within a tokio runtime.
    pub fn start_with(
        config: SessionConfig,
        job_capacity: usize,
        channels: Channels,
    ) -> Result<Self, StartError> {
        check(&config)?;
        let Channels { events, inbound } = channels;
        let tls = match &config.tls {
            Some(t) => {
                Some(
                    tls::connector(t, config.host()).map_err(|problem| StartError::Tls {
                        smsc: config.name.clone(),
                        problem,
                    })?,
                )
            }
            None => None,
        };
        let name: Arc<str> = Arc::from(config.name.as_str());
        let config = Arc::new(config);
        let (jobs_tx, jobs_rx) = mpsc::channel(job_capacity.max(1));
        let jobs_rx: SharedJobs = Arc::new(Mutex::new(jobs_rx));
        let (stop_tx, _) = watch::channel(None);
        let roles: &[Role] = match config.mode {
            BindMode::Transceiver => &[Role::Transceiver],
            BindMode::TxRx => &[Role::Transmitter, Role::Receiver],
        };
        let mut binds = Vec::new();
        let mut tasks = Vec::new();
        for index in 0..config.binds {
            for &role in roles {
                let shared = Arc::new(BindShared {
                    id: BindId {
                        smsc: name.clone(),
                        index,
                        role,
                    },
                    state: std::sync::Mutex::new(StateRecord {
                        state: BindState::Connecting,
                        since: crate::clock::now(),
                        last_error: None,
                    }),
                    in_flight: AtomicUsize::new(0),
                    response_timeouts: AtomicU64::new(0),
                    throttled: AtomicU64::new(0),
                    binds: AtomicU64::new(0),
                    bind_failures: AtomicU64::new(0),
                });
                let task = bind::BindTask {
                    config: config.clone(),
                    tls: tls.clone(),
                    shared: shared.clone(),
                    jobs: role.transmits().then(|| jobs_rx.clone()),
                    events: events.clone(),
                    inbound: inbound.clone(),
                    stop: stop_tx.subscribe(),
                    created: Instant::now(),
                };
                tasks.push(tokio::spawn(task.run()));
                binds.push(shared);
            }
        }
        Ok(Self {
            name,
            jobs_tx,
            jobs_rx,
            events,
            stop_tx,
            binds,
            tasks,
        })
    }

    /// The SMSC's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where jobs go (bounded; `send` waits while every window is full).
    pub fn jobs(&self) -> mpsc::Sender<Job> {
        self.jobs_tx.clone()
    }

    /// A snapshot of every bind.
    pub fn status(&self) -> Vec<BindStatus> {
        self.binds.iter().map(|b| b.status()).collect()
    }

    /// Whether at least one transmitting bind is bound (and not stopping).
    pub fn can_transmit(&self) -> bool {
        self.binds.iter().any(|b| {
            b.id.role.transmits()
                && matches!(b.state(), BindState::Bound | BindState::Throttled { .. })
        })
    }

    /// Hands back the jobs waiting in the channel that no bind has taken yet, so the caller can
    /// send them elsewhere while no transmitter is bound. Takes nothing while a bind is taking
    /// jobs (it holds the channel); a job is either handed back here or taken by a bind, never
    /// both.
    pub fn reclaim_queued(&self) -> Vec<Job> {
        let Ok(mut rx) = self.jobs_rx.try_lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Ok(job) = rx.try_recv() {
            out.push(job);
        }
        out
    }

    /// Stops gracefully: no new jobs; in-flight responses and inbound answers are awaited until
    /// `drain` has passed; then unbind and close. Everything not answered comes back as
    /// `Retry { reason: Shutdown }`, every job still in the channel as
    /// `Retry { reason: NotSent }`. Returns when every bind has stopped and everything was handed
    /// back.
    ///
    /// Dropping the handle without `stop` does the same with no drain time, in a spawned task.
    pub async fn stop(mut self, drain: Duration) {
        let _ = self.stop_tx.send(Some(Instant::now() + drain));
        let tasks = std::mem::take(&mut self.tasks);
        wind_down(
            self.name.clone(),
            tasks,
            self.jobs_rx.clone(),
            self.events.clone(),
        )
        .await;
    }
}

impl Drop for SmscHandle {
    fn drop(&mut self) {
        if self.tasks.is_empty() {
            return;
        }
        let _ = self.stop_tx.send(Some(Instant::now()));
        let tasks = std::mem::take(&mut self.tasks);
        // Outside a runtime the tasks are gone with it; nothing is left to hand back.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(wind_down(
                self.name.clone(),
                tasks,
                self.jobs_rx.clone(),
                self.events.clone(),
            ));
        }
    }
}

/// Refuses settings no bind can run with (each error names its key).
fn check(config: &SessionConfig) -> Result<(), StartError> {
    let invalid = |key, problem| StartError::Invalid {
        smsc: config.name.clone(),
        key,
        problem,
    };
    if config.binds == 0 {
        return Err(invalid("binds", "must be at least 1"));
    }
    if config.window == 0 {
        return Err(invalid("window", "must be at least 1"));
    }
    if config.response_timeout.is_zero() {
        return Err(invalid("response_timeout", "must be above zero"));
    }
    if config.reconnect_min.is_zero() {
        return Err(invalid(
            "reconnect_min",
            "must be above zero (no tight reconnect loops)",
        ));
    }
    Ok(())
}

/// Where the binds of one SMSC report. Submit outcomes and bind states go to `events`;
/// inbound PDUs (receipts, MO) to `inbound`, so the daemon can feed its receipt task directly
/// rather than through whoever reads `events`. Both may be the same channel
/// ([`SmscHandle::start`]). Each sender is held by every bind task, so a receiver ends once
/// the binds have stopped and the caller dropped its own copies.
#[derive(Debug, Clone)]
pub struct Channels {
    /// [`Event::Submitted`], [`Event::Failed`], [`Event::Expired`], [`Event::Retry`],
    /// [`Event::BindState`].
    pub events: mpsc::Sender<Event>,
    /// [`Event::Inbound`] only.
    pub inbound: mpsc::Sender<Event>,
}

/// Waits for the bind tasks, then hands back every job still queued.
async fn wind_down(
    name: Arc<str>,
    tasks: Vec<JoinHandle<()>>,
    jobs_rx: SharedJobs,
    events: mpsc::Sender<Event>,
) {
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(smsc = %name, error = %e, "bind task failed");
        }
    }
    let mut rx = jobs_rx.lock().await;
    rx.close();
    while let Ok(job) = rx.try_recv() {
        let _ = events
            .send(Event::Retry {
                job,
                reason: RetryReason::NotSent,
                bind: None,
            })
            .await;
    }
}
