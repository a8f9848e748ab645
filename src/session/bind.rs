//! The task of one bind: the connect → bind → serve → back off loop, and the serve loop itself
//! (window, keep-alive, throttling pause, inbound answers, graceful unbind). Owns the socket of its
//! bind; never keeps a job past the connection it was sent on (it goes back as an event).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep_until};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::codec::Decoder;
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::io::{self, Io};
use super::status::StatusClass;
use super::window::Window;
use super::{
    BindShared, BindState, DownReason, Event, InboundPdu, InboundReply, Job, JobBody, RetryReason,
    Role, SessionConfig, SharedJobs,
};
use crate::pdu::codec::{Frame, PduCodec};
use crate::pdu::{Bind, Body, CommandId, CommandStatus, Pdu, PduError};

/// Read buffer size: room for a few hundred responses per read.
const READ_CHUNK: usize = 64 * 1024;
/// How long a graceful unbind waits for unbind_resp at most.
const UNBIND_WAIT: Duration = Duration::from_secs(2);
/// The sequence number of the bind request (the window numbers everything after it).
const BIND_SEQ: u32 = 1;

pub(super) struct BindTask {
    pub config: Arc<SessionConfig>,
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    pub shared: Arc<BindShared>,
    pub jobs: Option<SharedJobs>,
    pub events: mpsc::Sender<Event>,
    /// Where [`Event::Inbound`] goes (see [`super::Channels`]).
    pub inbound: mpsc::Sender<Event>,
    pub stop: watch::Receiver<Option<Instant>>,
    /// When the task was made; the stop deadline if the handle vanishes without one.
    pub created: Instant,
}

/// How a connection ended.
enum Exit {
    /// Down for `reason`; reconnect after a backoff.
    Down(DownReason),
    /// Stopped on request; do not reconnect.
    Stopped,
}

/// What woke the serve loop.
enum Step {
    /// Bytes from the SMSC (0 = closed).
    Read(std::io::Result<usize>),
    /// The consumer answered an inbound PDU: (sequence, data_sm?, status).
    Answer((u32, bool, CommandStatus)),
    /// Jobs were taken into the batch.
    Jobs,
    /// The jobs channel closed.
    JobsClosed,
    /// A deadline or the keep-alive is due.
    Timer,
    /// A stop was requested.
    StopChanged,
}

/// A job in the window, with what the bind needs to answer for it.
struct InFlight {
    job: Job,
}

impl BindTask {
    pub(super) async fn run(mut self) {
        let cfg = self.config.clone();
        let mut reconnect = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
        loop {
            if self.stopping().is_some() {
                break;
            }
            self.set_state(BindState::Connecting).await;
            let (exit, worked) = match self.connect_and_bind().await {
                Ok(conn) => {
                    self.shared.binds.fetch_add(1, Ordering::Relaxed);
                    self.set_state(BindState::Bound).await;
                    self.serve(conn).await
                }
                Err(exit) => {
                    self.shared.bind_failures.fetch_add(1, Ordering::Relaxed);
                    (exit, false)
                }
            };
            let reason = match exit {
                Exit::Stopped => break,
                Exit::Down(reason) => reason,
            };
            // A connection that carried traffic was healthy: an SMSC that drops it (maintenance,
            // idle timers, load balancers) gets us back after `reconnect_min`. Only attempts that
            // fail, and binds dropped before anything was exchanged (a flapping SMSC), grow
            // the backoff.
            if worked {
                reconnect.reset();
            }
            let retry_in = reconnect.next_delay();
            self.set_state(BindState::Down { reason, retry_in }).await;
            let wake = Instant::now() + retry_in;
            tokio::select! {
                _ = sleep_until(wake) => {}
                _ = self.stop.changed() => {}
            }
        }
        self.set_state(BindState::Stopped).await;
    }

    /// The drain deadline once a stop was requested. A dropped handle counts as a stop "now", so
    /// an abandoned bind winds down instead of spinning on a closed channel.
    fn stopping(&self) -> Option<Instant> {
        let deadline = *self.stop.borrow();
        if deadline.is_none() && self.stop.has_changed().is_err() {
            // A fixed instant in the past (not "now", which would move on every call and never
            // be reached).
            return Some(self.created);
        }
        deadline
    }

    async fn set_state(&self, state: BindState) {
        let id = &self.shared.id;
        match &state {
            BindState::Down { reason, retry_in } => warn!(
                smsc = %id.smsc, bind = id.index, role = %id.role,
                reason = %reason, retry_in_ms = retry_in.as_millis() as u64,
                "bind down"
            ),
            BindState::Throttled { pause } => info!(
                smsc = %id.smsc, bind = id.index, role = %id.role,
                pause_ms = pause.as_millis() as u64, "bind throttled"
            ),
            other => info!(
                smsc = %id.smsc, bind = id.index, role = %id.role, state = ?other, "bind state"
            ),
        }
        self.shared.set_state(&state);
        let _ = self
            .events
            .send(Event::BindState {
                bind: id.clone(),
                state,
            })
            .await;
    }

    async fn connect_and_bind(&mut self) -> Result<Conn, Exit> {
        let mut conn = self.connect().await?;
        conn.send(Pdu::new(BIND_SEQ, self.bind_request()?))?;
        conn.flush().await?;
        self.await_bind_resp(&mut conn).await?;
        Ok(conn)
    }

    /// Opens the TCP (or TLS) connection, unless a stop comes first.
    async fn connect(&mut self) -> Result<Conn, Exit> {
        let cfg = self.config.clone();
        if let Some(t) = &cfg.tls
            && t.insecure_skip_verify
        {
            warn!(
                smsc = %cfg.name, bind = self.shared.id.index,
                "TLS CERTIFICATE VERIFICATION IS DISABLED (insecure_skip_verify): test SMSCs only"
            );
        }
        let connect = io::connect(&cfg.address, self.tls.as_ref(), cfg.connect_timeout);
        let stream = tokio::select! {
            r = connect => r.map_err(|e| Exit::Down(DownReason::Connect(e)))?,
            _ = self.stop.changed() => return Err(Exit::Stopped),
        };
        let (reader, writer) = tokio::io::split(stream);
        Ok(Conn {
            reader,
            writer,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            codec: PduCodec::default(),
            write_timeout: cfg.response_timeout,
        })
    }

    /// The bind request for this bind's role, with the configured credentials.
    fn bind_request(&self) -> Result<Body, Exit> {
        let cfg = &self.config;
        let bind = Bind {
            system_id: cstr(&cfg.system_id, "system_id")?,
            password: crate::pdu::Password::new(cfg.password.expose().as_bytes().to_vec())
                .map_err(|e| Exit::Down(DownReason::Connect(format!("password: {e}"))))?,
            system_type: cstr(&cfg.system_type, "system_type")?,
            interface_version: 0x34,
            ..Bind::default()
        };
        Ok(match self.shared.id.role {
            Role::Transceiver => Body::BindTransceiver(bind),
            Role::Transmitter => Body::BindTransmitter(bind),
            Role::Receiver => Body::BindReceiver(bind),
        })
    }

    /// Waits for the answer to the bind request (`Ok` = bound), answering what the SMSC may send
    /// before it: enquire_link, and generic_nack to malformed requests.
    async fn await_bind_resp(&mut self, conn: &mut Conn) -> Result<(), Exit> {
        let deadline = Instant::now() + self.config.response_timeout;
        loop {
            let frame = tokio::select! {
                f = conn.next_frame() => f?,
                _ = sleep_until(deadline) => return Err(Exit::Down(DownReason::BindTimeout)),
                _ = self.stop.changed() => return Err(Exit::Stopped),
            };
            let pdu = match frame {
                Frame::Pdu(pdu) => pdu,
                Frame::Invalid {
                    command_id: _,
                    sequence_number,
                    error,
                } => {
                    if sequence_number == BIND_SEQ {
                        return Err(Exit::Down(DownReason::Io(format!(
                            "malformed bind response: {error}"
                        ))));
                    }
                    conn.send(Pdu::generic_nack(error.command_status(), sequence_number))?;
                    conn.flush().await?;
                    continue;
                }
            };
            match &pdu.body {
                Body::BindTransceiverResp(_)
                | Body::BindTransmitterResp(_)
                | Body::BindReceiverResp(_)
                | Body::GenericNack
                    if pdu.sequence_number == BIND_SEQ =>
                {
                    return bind_outcome(&pdu);
                }
                Body::EnquireLink => {
                    conn.send(Pdu::new(pdu.sequence_number, Body::EnquireLinkResp))?;
                    conn.flush().await?;
                }
                _ => {
                    debug!(smsc = %self.config.name, bind = self.shared.id.index, pdu = ?pdu.body,
                        "ignoring a PDU before the bind response");
                }
            }
        }
    }

    /// Serves one bound connection until it ends; hands back whatever is in flight. Returns how
    /// the connection ended and whether it carried traffic.
    async fn serve(&mut self, mut conn: Conn) -> (Exit, bool) {
        let mut s = Serve::new(&self.config);
        let exit = self.serve_loop(&mut conn, &mut s).await;
        let reason = match &exit {
            Exit::Stopped => RetryReason::Shutdown,
            Exit::Down(_) => RetryReason::ConnectionLost,
        };
        for (_, inflight) in s.window.drain() {
            self.emit(Event::Retry {
                job: inflight.job,
                reason,
                bind: Some(self.shared.id.clone()),
            })
            .await;
        }
        self.shared.in_flight.store(0, Ordering::Relaxed);
        // Unanswered inbound PDUs: the SMSC redelivers them on the next bind.
        s.inbound.clear();
        (exit, s.worked)
    }

    async fn emit(&self, event: Event) {
        // The receiver is gone only when the daemon is shutting down without draining; the job
        // then stays in the store and is recovered at the next start.
        let _ = self.events.send(event).await;
    }

    /// The bound loop: write what is due, wait for the next [`Step`], handle it; returns how the
    /// connection ended.
    async fn serve_loop(&mut self, conn: &mut Conn, s: &mut Serve) -> Exit {
        let mut batch: Vec<Job> = Vec::with_capacity(self.config.window);
        // PDUs that arrived together with the bind response are already buffered.
        if let Some(exit) = self.drain_frames(conn, s).await {
            return exit;
        }
        loop {
            let now = Instant::now();
            if let Err(exit) = self.before_wait(conn, s, now).await {
                return exit;
            }
            let step = self.next_step(conn, s, &mut batch, now).await;
            let ended = match step {
                Step::Read(Ok(0)) => Some(if s.unbind_seq.is_some() {
                    Exit::Stopped
                } else {
                    Exit::Down(DownReason::Closed)
                }),
                Step::Read(Ok(_)) => {
                    s.last_rx = Instant::now();
                    self.drain_frames(conn, s).await
                }
                Step::Read(Err(e)) => Some(Exit::Down(DownReason::Io(e.to_string()))),
                Step::Answer(first) => send_answers(first, conn, s).err(),
                Step::Jobs => {
                    self.write_jobs(&mut batch, conn, s).await;
                    None
                }
                Step::JobsClosed => {
                    // The handle is gone: nothing more will come; behave as a stop.
                    self.jobs = None;
                    None
                }
                Step::StopChanged => None,
                Step::Timer => self.on_timer(conn, s).await,
            };
            if let Some(exit) = ended {
                return exit;
            }
        }
    }

    /// What comes before each wait: a requested stop (drain, then unbind once nothing is
    /// outstanding or the deadline passed), the end of a throttling pause, and the write of
    /// everything encoded since the last wait.
    async fn before_wait(
        &mut self,
        conn: &mut Conn,
        s: &mut Serve,
        now: Instant,
    ) -> Result<(), Exit> {
        if let Some(deadline) = self.stopping() {
            if !s.stopping {
                s.stopping = true;
                self.set_state(BindState::Stopping).await;
            }
            let drained = s.window.is_empty() && s.inbound.is_empty();
            if s.unbind_deadline.is_none() && (drained || now >= deadline) {
                let seq = s.window.next_sequence();
                s.unbind_seq = Some(seq);
                s.unbind_deadline = Some(now + UNBIND_WAIT.min(self.config.response_timeout));
                conn.send(Pdu::new(seq, Body::Unbind))?;
            }
        }
        if let Some(end) = s.paused_until
            && now >= end
        {
            s.paused_until = None;
            self.set_state(BindState::Bound).await;
        }
        conn.flush().await
    }

    /// Waits for the next thing to do: bytes from the SMSC, an inbound answer, jobs (when there
    /// is window room and no pause or stop), a timer, or a stop request.
    async fn next_step(
        &mut self,
        conn: &mut Conn,
        s: &mut Serve,
        batch: &mut Vec<Job>,
        now: Instant,
    ) -> Step {
        let take_jobs = !s.stopping
            && s.paused_until.is_none()
            && s.window.available() > 0
            && self.jobs.is_some();
        let read_ok = s.inbound.len() < self.config.max_inbound;
        let wake = s.next_wake(now, self.stopping());
        let room = s.window.available();
        tokio::select! {
            biased;
            r = conn.reader.read_buf(&mut conn.rbuf), if read_ok => Step::Read(r),
            Some(a) = s.inbound.next(), if !s.inbound.is_empty() => Step::Answer(a),
            n = take(self.jobs.as_ref(), room, batch), if take_jobs => {
                if n == 0 { Step::JobsClosed } else { Step::Jobs }
            }
            _ = sleep_until(wake) => Step::Timer,
            _ = self.stop.changed(), if !s.stopping => Step::StopChanged,
        }
    }

    /// Writes the jobs taken (into the write buffer; the next flush sends them): each one is
    /// checked for validity, given a sequence number and put in the window.
    async fn write_jobs(&mut self, batch: &mut Vec<Job>, conn: &mut Conn, s: &mut Serve) {
        let now = Instant::now();
        let wall = crate::clock::now();
        for job in batch.drain(..) {
            let job = match stamp_validity(job, wall) {
                Ok(job) => job,
                Err(key) => {
                    let bind = self.shared.id.clone();
                    self.emit(Event::Expired { key, bind }).await;
                    continue;
                }
            };
            let seq = s.window.next_sequence();
            let (job, encoded) = encode_job(conn, seq, job);
            if let Err(e) = encoded {
                // A body the codec refuses can never be sent: fail it with the status an SMSC
                // would have answered, rather than retry forever.
                let id = &self.shared.id;
                warn!(smsc = %id.smsc, bind = id.index, key = job.key, error = %e,
                    "job cannot be encoded; failing it");
                self.emit(Event::Failed {
                    key: job.key,
                    status: e.command_status(),
                    bind: id.clone(),
                })
                .await;
                continue;
            }
            if let Err(InFlight { job }) = s.window.insert(seq, InFlight { job }, now) {
                // Unreachable by construction (we took at most `room` jobs), but a job is never
                // dropped.
                let reason = RetryReason::Temporary(CommandStatus::ESME_RTHROTTLED);
                self.hand_back(job, reason).await;
            }
        }
        self.shared
            .in_flight
            .store(s.window.len(), Ordering::Relaxed);
    }

    /// A timer fired: hands back jobs whose response is overdue, ends a dead keep-alive or an
    /// unanswered unbind, and sends enquire_link when the link was idle for `enquire_link`.
    async fn on_timer(&mut self, conn: &mut Conn, s: &mut Serve) -> Option<Exit> {
        let now = Instant::now();
        self.expire_responses(s, now).await;
        if let Some(d) = s.enquire_deadline
            && now >= d
        {
            return Some(Exit::Down(DownReason::KeepAliveTimeout));
        }
        if let Some(d) = s.unbind_deadline
            && now >= d
        {
            return Some(Exit::Stopped);
        }
        if s.enquire_deadline.is_none()
            && s.unbind_seq.is_none()
            && now >= s.last_rx + self.config.enquire_link
        {
            let seq = s.window.next_sequence();
            s.enquire_seq = seq;
            s.enquire_deadline = Some(now + self.config.response_timeout);
            return conn.send(Pdu::new(seq, Body::EnquireLink)).err();
        }
        None
    }

    /// Hands back every job whose response did not come within `response_timeout`.
    async fn expire_responses(&mut self, s: &mut Serve, now: Instant) {
        let expired = s.window.expire(now);
        if !expired.is_empty() {
            self.shared
                .response_timeouts
                .fetch_add(expired.len() as u64, Ordering::Relaxed);
            // One line per batch: a silent SMSC at full rate must not flood the log.
            let id = &self.shared.id;
            warn!(smsc = %id.smsc, bind = id.index, count = expired.len(),
                "no response within response_timeout; handing the jobs back");
        }
        for (_, inflight) in expired {
            self.hand_back(inflight.job, RetryReason::ResponseTimeout)
                .await;
        }
        self.shared
            .in_flight
            .store(s.window.len(), Ordering::Relaxed);
    }

    /// Hands a job back to the caller as `Retry` from this bind.
    async fn hand_back(&self, job: Job, reason: RetryReason) {
        self.emit(Event::Retry {
            job,
            reason,
            bind: Some(self.shared.id.clone()),
        })
        .await;
    }

    /// Handles every whole frame in the read buffer.
    async fn drain_frames(&mut self, conn: &mut Conn, s: &mut Serve) -> Option<Exit> {
        loop {
            let frame = match conn.codec.decode(&mut conn.rbuf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Some(Exit::Down(DownReason::Io(format!("framing lost: {e}")))),
            };
            if let Some(exit) = self.on_frame(frame, conn, s).await {
                return Some(exit);
            }
        }
        if conn.rbuf.capacity() - conn.rbuf.len() < 1024 {
            conn.rbuf.reserve(READ_CHUNK);
        }
        None
    }

    /// Handles one frame; returns `Some` when the connection must end.
    async fn on_frame(&mut self, frame: Frame, conn: &mut Conn, s: &mut Serve) -> Option<Exit> {
        let pdu = match frame {
            Frame::Pdu(pdu) => pdu,
            Frame::Invalid {
                command_id,
                sequence_number,
                error,
            } => {
                return self
                    .on_malformed(command_id, sequence_number, error, conn, s)
                    .await;
            }
        };
        let seq = pdu.sequence_number;
        let status = pdu.command_status;
        // Traffic the SMSC answered or started: this connection worked, so losing it later is a
        // drop (reconnect at once), not a flapping bind (back off).
        s.worked |= matches!(
            pdu.body,
            Body::SubmitSmResp(_)
                | Body::DataSmResp(_)
                | Body::EnquireLinkResp
                | Body::EnquireLink
                | Body::DeliverSm(_)
                | Body::DataSm(_)
        );
        match pdu.body {
            Body::SubmitSmResp(resp) => {
                let message_id = resp.message_id.as_str().unwrap_or_default().to_owned();
                self.on_response(seq, status, message_id, s).await
            }
            Body::DataSmResp(resp) => {
                let message_id = resp.message_id.as_str().unwrap_or_default().to_owned();
                self.on_response(seq, status, message_id, s).await
            }
            Body::GenericNack => self.on_generic_nack(seq, status, s).await,
            Body::EnquireLinkResp => {
                if seq == s.enquire_seq {
                    s.enquire_deadline = None;
                }
                None
            }
            Body::EnquireLink => conn.send(Pdu::new(seq, Body::EnquireLinkResp)).err(),
            Body::Unbind => self.on_unbind(seq, conn, s.stopping).await,
            Body::UnbindResp => (Some(seq) == s.unbind_seq).then_some(Exit::Stopped),
            // alert_notification has no response PDU (SMPP-FACTS §2): note it, never nack it.
            Body::AlertNotification(_) => {
                let id = &self.shared.id;
                debug!(smsc = %id.smsc, bind = id.index, "alert_notification ignored");
                None
            }
            Body::DeliverSm(d) => {
                self.on_inbound(seq, InboundPdu::DeliverSm(d), conn, s)
                    .await
            }
            Body::DataSm(d) => self.on_inbound(seq, InboundPdu::DataSm(d), conn, s).await,
            other => self.on_unexpected(seq, other.command_id(), conn),
        }
    }

    /// A frame that could not be decoded: answered with generic_nack, or, for a response,
    /// taken as the answer to its request.
    async fn on_malformed(
        &mut self,
        command_id: CommandId,
        seq: u32,
        error: PduError,
        conn: &mut Conn,
        s: &mut Serve,
    ) -> Option<Exit> {
        let id = &self.shared.id;
        warn!(smsc = %id.smsc, bind = id.index, command_id = %command_id, error = %error,
            "malformed PDU from the SMSC; answering generic_nack");
        // A response we cannot read still answers its request: hand the job back rather than
        // wait for the timeout (its outcome is unknown).
        if command_id.is_response() {
            if let Some(inflight) = s.window.take(seq) {
                let reason = RetryReason::Temporary(error.command_status());
                self.hand_back(inflight.job, reason).await;
            }
            return None;
        }
        conn.send(Pdu::generic_nack(error.command_status(), seq))
            .err()
    }

    /// A generic_nack: to our enquire_link (a sign of life), to our unbind (done), or to a
    /// request in the window (its answer).
    async fn on_generic_nack(
        &mut self,
        seq: u32,
        status: CommandStatus,
        s: &mut Serve,
    ) -> Option<Exit> {
        // An SMSC that does not support enquire_link nacks it: still a sign of life.
        if seq == s.enquire_seq && s.enquire_deadline.is_some() {
            s.enquire_deadline = None;
            return None;
        }
        // A nacked unbind: the SMSC is done with us either way.
        if Some(seq) == s.unbind_seq {
            return Some(Exit::Stopped);
        }
        if !s.window.is_empty() {
            let code = if status == CommandStatus::ESME_ROK {
                CommandStatus::ESME_RSYSERR
            } else {
                status
            };
            return self.on_response(seq, code, String::new(), s).await;
        }
        None
    }

    /// The SMSC unbinds: answer, then end the connection (reconnect unless stopping).
    async fn on_unbind(&mut self, seq: u32, conn: &mut Conn, stopping: bool) -> Option<Exit> {
        let id = &self.shared.id;
        info!(smsc = %id.smsc, bind = id.index, "SMSC sent unbind; answering and reconnecting");
        if let Err(e) = conn.send(Pdu::new(seq, Body::UnbindResp)) {
            return Some(e);
        }
        let _ = conn.flush().await;
        Some(if stopping {
            Exit::Stopped
        } else {
            Exit::Down(DownReason::UnboundBySmsc)
        })
    }

    /// Any other PDU: a response to nothing we sent is ignored, a request we do not serve is
    /// nacked with ESME_RINVCMDID.
    fn on_unexpected(&self, seq: u32, command_id: CommandId, conn: &mut Conn) -> Option<Exit> {
        if command_id.is_response() {
            let id = &self.shared.id;
            debug!(smsc = %id.smsc, bind = id.index, command_id = %command_id, seq,
                "unexpected response ignored");
            None
        } else {
            conn.send(Pdu::generic_nack(CommandStatus::ESME_RINVCMDID, seq))
                .err()
        }
    }

    async fn on_response(
        &mut self,
        seq: u32,
        status: CommandStatus,
        message_id: String,
        s: &mut Serve,
    ) -> Option<Exit> {
        let id = &self.shared.id;
        let Some(inflight) = s.window.take(seq) else {
            debug!(smsc = %id.smsc, bind = id.index, seq, "response for no outstanding request (late after a timeout?)");
            return None;
        };
        self.shared
            .in_flight
            .store(s.window.len(), Ordering::Relaxed);
        let key = inflight.job.key;
        match StatusClass::of(status) {
            StatusClass::Ok => {
                if s.throttle.failures() > 0 {
                    s.throttle.reset();
                }
                let bind = id.clone();
                self.emit(Event::Submitted {
                    key,
                    message_id,
                    bind,
                })
                .await;
                None
            }
            StatusClass::Throttled => {
                self.shared.throttled.fetch_add(1, Ordering::Relaxed);
                self.hand_back(inflight.job, RetryReason::Throttled(status))
                    .await;
                // One pause per burst: responses to the rest of the window also say "throttled"
                // and must not grow the pause each.
                if s.paused_until.is_none() {
                    let pause = s.throttle.next_delay();
                    s.paused_until = Some(Instant::now() + pause);
                    self.set_state(BindState::Throttled { pause }).await;
                }
                None
            }
            StatusClass::Temporary => {
                self.hand_back(inflight.job, RetryReason::Temporary(status))
                    .await;
                None
            }
            StatusClass::Rebind => {
                self.hand_back(inflight.job, RetryReason::Temporary(status))
                    .await;
                Some(Exit::Down(DownReason::BindStateLost))
            }
            StatusClass::Permanent => {
                let bind = id.clone();
                self.emit(Event::Failed { key, status, bind }).await;
                None
            }
        }
    }

    async fn on_inbound(
        &mut self,
        seq: u32,
        pdu: InboundPdu,
        conn: &mut Conn,
        s: &mut Serve,
    ) -> Option<Exit> {
        let data_sm = matches!(pdu, InboundPdu::DataSm(_));
        if !self.shared.id.role.receives() {
            let body = if data_sm {
                Body::DataSmResp(Default::default())
            } else {
                Body::DeliverSmResp(Default::default())
            };
            return conn
                .send(Pdu::response(CommandStatus::ESME_RINVBNDSTS, seq, body))
                .err();
        }
        let (tx, rx) = oneshot::channel();
        let event = Event::Inbound {
            pdu,
            reply: InboundReply(tx),
            bind: self.shared.id.clone(),
        };
        // A receiver gone (stopping) drops the reply: the answer below is ESME_RX_T_APPN.
        let _ = self.inbound.send(event).await;
        let timeout = self.config.inbound_timeout;
        // Awaited in the serve loop itself (no task per PDU: at full rate a spawn per receipt
        // was a measurable share of the bind's time).
        s.inbound.push(Box::pin(async move {
            let status = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(status)) => status,
                // Dropped or too slow: make the SMSC redeliver rather than lose it.
                Ok(Err(_)) | Err(_) => CommandStatus::ESME_RX_T_APPN,
            };
            (seq, data_sm, status)
        }));
        None
    }
}

/// What the answer to our bind request means: bound, or rejected with the SMSC's status (a
/// generic_nack, even one saying ESME_ROK, is a rejection: ESME_RBINDFAIL then).
fn bind_outcome(pdu: &Pdu) -> Result<(), Exit> {
    let nack = matches!(pdu.body, Body::GenericNack);
    if pdu.command_status == CommandStatus::ESME_ROK && !nack {
        return Ok(());
    }
    let status = if pdu.command_status == CommandStatus::ESME_ROK {
        CommandStatus::ESME_RBINDFAIL
    } else {
        pdu.command_status
    };
    Err(Exit::Down(DownReason::BindRejected(status)))
}

/// Encodes the answers to inbound PDUs: `first`, and every other answer ready now, so they go
/// out in one write.
fn send_answers(
    first: (u32, bool, CommandStatus),
    conn: &mut Conn,
    s: &mut Serve,
) -> Result<(), Exit> {
    let mut next = Some(first);
    while let Some((seq, data_sm, status)) = next {
        let body = if data_sm {
            Body::DataSmResp(Default::default())
        } else {
            Body::DeliverSmResp(Default::default())
        };
        conn.send(Pdu::response(status, seq, body))?;
        next = s.inbound.next().now_or_never().flatten();
    }
    Ok(())
}

/// Applies a job's validity at the last moment before its write (after any wait for a window
/// slot or a throttling pause): a job whose validity has ended is not written (`Err` with its
/// key); otherwise its submit_sm carries the time left in `validity_period`.
fn stamp_validity(mut job: Job, now: std::time::SystemTime) -> Result<Job, u64> {
    let Some(v) = job.validity else {
        return Ok(job);
    };
    if v.ended(now) {
        return Err(job.key);
    }
    if let JobBody::SubmitSm(sm) = &mut job.body {
        sm.validity_period = v.period(now);
    }
    Ok(job)
}

/// Encodes a job's request without copying its body: the body moves into the PDU and back.
fn encode_job(conn: &mut Conn, seq: u32, job: Job) -> (Job, Result<(), PduError>) {
    let Job {
        key,
        body,
        validity,
    } = job;
    match body {
        JobBody::SubmitSm(sm) => {
            let pdu = Pdu::new(seq, Body::SubmitSm(sm));
            let result = conn.encode(&pdu);
            let Body::SubmitSm(sm) = pdu.body else {
                unreachable!("the body was built as a submit_sm just above")
            };
            (
                Job {
                    key,
                    body: JobBody::SubmitSm(sm),
                    validity,
                },
                result,
            )
        }
        JobBody::DataSm(dm) => {
            let pdu = Pdu::new(seq, Body::DataSm(dm));
            let result = conn.encode(&pdu);
            let Body::DataSm(dm) = pdu.body else {
                unreachable!("the body was built as a data_sm just above")
            };
            (
                Job {
                    key,
                    body: JobBody::DataSm(dm),
                    validity,
                },
                result,
            )
        }
    }
}

/// Takes up to `room` jobs into `batch`: waits for the first, then takes what is ready. Returns
/// how many (0 = the channel is closed). Cancel-safe: the only awaits are the lock and `recv`.
async fn take(jobs: Option<&SharedJobs>, room: usize, batch: &mut Vec<Job>) -> usize {
    let Some(jobs) = jobs else {
        return std::future::pending().await;
    };
    let mut rx = jobs.lock().await;
    let Some(first) = rx.recv().await else {
        return 0;
    };
    batch.push(first);
    while batch.len() < room {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch.len()
}

fn cstr<const N: usize>(value: &str, field: &str) -> Result<crate::pdu::COctetString<N>, Exit> {
    crate::pdu::COctetString::new(value.as_bytes().to_vec())
        .map_err(|e| Exit::Down(DownReason::Connect(format!("{field}: {e}"))))
}

/// The answer to one inbound PDU: its sequence number, whether it was a data_sm, the status.
type InboundAnswer =
    std::pin::Pin<Box<dyn std::future::Future<Output = (u32, bool, CommandStatus)> + Send>>;

/// State of one bound connection.
struct Serve {
    window: Window<InFlight>,
    throttle: Backoff,
    paused_until: Option<Instant>,
    last_rx: Instant,
    enquire_seq: u32,
    enquire_deadline: Option<Instant>,
    /// Inbound PDUs waiting for the consumer's answer: (sequence, data_sm?, status).
    inbound: FuturesUnordered<InboundAnswer>,
    stopping: bool,
    unbind_seq: Option<u32>,
    unbind_deadline: Option<Instant>,
    enquire_link: Duration,
    /// The SMSC exchanged traffic with us after the bind (see `on_frame`).
    worked: bool,
}

impl Serve {
    fn new(cfg: &SessionConfig) -> Self {
        Self {
            enquire_link: cfg.enquire_link,
            window: Window::new(cfg.window, cfg.response_timeout),
            throttle: Backoff::new(cfg.throttle_min, cfg.throttle_max).without_jitter(),
            paused_until: None,
            last_rx: Instant::now(),
            enquire_seq: 0,
            enquire_deadline: None,
            inbound: FuturesUnordered::new(),
            stopping: false,
            unbind_seq: None,
            unbind_deadline: None,
            worked: false,
        }
    }

    /// The earliest timer: a response deadline, the keep-alive, the end of a pause, or the stop
    /// deadline.
    fn next_wake(&self, now: Instant, stop: Option<Instant>) -> Instant {
        let far = now + Duration::from_secs(3600);
        let mut wake = far;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                wake = wake.min(t);
            }
        };
        consider(self.window.next_deadline());
        consider(self.enquire_deadline);
        consider(self.paused_until);
        consider(self.unbind_deadline);
        if self.enquire_deadline.is_none() && self.unbind_seq.is_none() {
            // last_rx + idle is when the next enquire_link is due (none while unbinding).
            consider(Some(self.last_rx + self.enquire_idle()));
        }
        if self.unbind_deadline.is_none() {
            consider(stop);
        }
        wake
    }

    fn enquire_idle(&self) -> Duration {
        self.enquire_link
    }
}

/// One connection: split stream, buffers and the codec.
struct Conn {
    reader: ReadHalf<Box<dyn Io>>,
    writer: WriteHalf<Box<dyn Io>>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    codec: PduCodec,
    write_timeout: Duration,
}

impl Conn {
    /// Encodes `pdu` into the write buffer (sent by the next [`Conn::flush`]); on failure the
    /// buffer is left as it was.
    fn encode(&mut self, pdu: &Pdu) -> Result<(), PduError> {
        pdu.encode(&mut self.wbuf)
    }

    /// Encodes a PDU of the session's own making; failing to encode one is a bug that ends the
    /// connection rather than a panic.
    fn send(&mut self, pdu: Pdu) -> Result<(), Exit> {
        self.encode(&pdu)
            .map_err(|e| Exit::Down(DownReason::Io(format!("encode: {e}"))))
    }

    /// Writes the buffer out. An SMSC that stops reading cannot stall the bind forever: a write
    /// that does not finish within the response timeout ends the connection.
    async fn flush(&mut self) -> Result<(), Exit> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(self.write_timeout, self.writer.write_all(&self.wbuf)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Exit::Down(DownReason::Io(e.to_string()))),
            Err(_) => {
                return Err(Exit::Down(DownReason::Io(format!(
                    "write stalled for {:?} (the SMSC does not read)",
                    self.write_timeout
                ))));
            }
        }
        self.wbuf.clear();
        Ok(())
    }

    /// Reads until one frame is available (used before the bind completes).
    async fn next_frame(&mut self) -> Result<Frame, Exit> {
        loop {
            match self.codec.decode(&mut self.rbuf) {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(Exit::Down(DownReason::Io(format!("framing lost: {e}")))),
            }
            match self.reader.read_buf(&mut self.rbuf).await {
                Ok(0) => return Err(Exit::Down(DownReason::Closed)),
                Ok(_) => {}
                Err(e) => return Err(Exit::Down(DownReason::Io(e.to_string()))),
            }
        }
    }
}
