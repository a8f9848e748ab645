//! The SMSC simulator behind `smppd sim`: an SMPP 3.4 server on the crate's own codec, for tests,
//! demos and benchmarks. It authenticates binds (all three types, many at once), answers
//! submit_sm/data_sm with unique ids, sends delivery receipts (appendix-B text plus
//! receipted_message_id and message_state TLVs) to receiver-capable binds of the same system_id,
//! injects mobile-originated messages, and injects every fault a real SMSC commits. It counts
//! everything (see [`Stats`]) and can log every submit it received and every receipt it created
//! (with how often each was sent and acknowledged) so tests can prove "nothing lost, no duplicate
//! beyond what was in flight, every receipt recorded".
//!
//! It owns nothing of the daemon and never shares state with it except through the SMPP wire.
//! Everything it holds is bounded: receipt backlog, per-connection outbound queues and the
//! outstanding deliver_sm window.
//!
//! ```no_run
//! # async fn demo() -> Result<(), smppd::sim::SimError> {
//! use smppd::sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::new("127.0.0.1:0").account("esme", "secret")).await?;
//! println!("SMSC at {}", sim.addr());
//! sim.update_faults(|f| f.throttle_every = 10); // every 10th submit gets ESME_RTHROTTLED
//! let stats = sim.stats();
//! println!("{} submits, max window {}", stats.submits, stats.max_window);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod conn;
pub mod control;
pub mod pacing;
mod receipts;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::pdu::CommandStatus;

pub use receipts::{MoMessage, MoPart, utc_timestamp};
use state::Shared;
pub use state::{ReceiptRecord, Stats, SubmitRecord};

/// A login the simulator accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// `system_id` to accept.
    pub system_id: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("system_id", &self.system_id)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How submit_sm_resp message ids are written (real SMSCs use all of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdFormat {
    /// Lowercase hexadecimal (`38601fa`).
    Hex,
    /// Decimal (`59113978`).
    Decimal,
    /// An upper-case UUID (`74E02EE1-0000-4012-8001-00AB12CD3401`).
    Uuid,
    /// 32 lowercase hex digits (`a5a5000000ab12cd…`).
    Hex32,
    /// Letters of both cases and digits with hyphens (`Msg-AB12CD34-x7`).
    Hyphenated,
}

/// Which base receipts carry the id in, relative to the submit_sm_resp id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptIds {
    /// The same string everywhere.
    Same,
    /// The other base (hex ↔ decimal) in both the text and the receipted_message_id TLV.
    Other,
    /// The other base in the text only; the TLV keeps the submit_sm_resp id (as in the real PDU in
    /// cloudhopper's tests, SMPP-FACTS §7.3).
    OtherInText,
}

/// Final states a receipt can report, with their relative weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMix {
    /// Weight of `stat:DELIVRD`.
    pub delivered: u32,
    /// Weight of `stat:UNDELIV`.
    pub undeliverable: u32,
    /// Weight of `stat:EXPIRED`.
    pub expired: u32,
    /// Weight of `stat:REJECTD`.
    pub rejected: u32,
}

impl Default for StatusMix {
    fn default() -> Self {
        Self {
            delivered: 1,
            undeliverable: 0,
            expired: 0,
            rejected: 0,
        }
    }
}

/// Receipt behaviour.
#[derive(Debug, Clone)]
pub struct ReceiptConfig {
    /// Send receipts for submits that ask for one (registered_delivery bits 0–1).
    pub enabled: bool,
    /// Delay between the submit and its receipt (the shortest, when `delay_max` is longer).
    pub delay: Duration,
    /// When longer than `delay`, each receipt's delay is drawn uniformly from `delay..=delay_max`
    /// (receipts that come back realistically late and out of order); otherwise every receipt
    /// waits exactly `delay`.
    pub delay_max: Duration,
    /// Final states to report.
    pub mix: StatusMix,
    /// Id base of receipts.
    pub ids: ReceiptIds,
    /// Send the receipt before the submit_sm_resp (a real race some SMSCs have).
    pub before_response: bool,
    /// Send every receipt twice.
    pub duplicate: bool,
}

impl Default for ReceiptConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            delay: Duration::ZERO,
            delay_max: Duration::ZERO,
            mix: StatusMix::default(),
            ids: ReceiptIds::Same,
            before_response: false,
            duplicate: false,
        }
    }
}

/// Faults to inject; all off by default. Changeable at any time through
/// [`SimControl::update_faults`] or the control port.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Answer every Nth submit (counted over the whole simulator) with ESME_RTHROTTLED; 0 = off.
    pub throttle_every: u64,
    /// Answer submits beyond this many per second (whole simulator) with ESME_RTHROTTLED; 0 = off.
    pub throttle_above_tps: u64,
    /// Reject every bind with this status.
    pub reject_binds: Option<CommandStatus>,
    /// Fraction (0–1) of submits answered with `fail_status`.
    pub fail_fraction: f64,
    /// Status for `fail_fraction` (default ESME_RSYSERR).
    pub fail_status: Option<CommandStatus>,
    /// Close a connection, without answering, when it receives its Nth submit; 0 = off.
    pub drop_after: u64,
    /// Delay every submit_sm_resp / data_sm_resp by this much.
    pub response_delay: Duration,
    /// Answer nothing at all (submits are still counted and logged).
    pub silent: bool,
    /// Do not answer enquire_link.
    pub ignore_enquire_link: bool,
}

/// Everything [`Simulator::start`] needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on (`127.0.0.1:0` for a free port).
    pub listen: String,
    /// Logins accepted; empty accepts any system_id and password.
    pub accounts: Vec<Account>,
    /// Format of message ids.
    pub id_format: IdFormat,
    /// Receipts.
    pub receipts: ReceiptConfig,
    /// Faults active from the start.
    pub faults: Faults,
    /// Keep a [`SubmitRecord`] of every submit (for tests; costs memory per message).
    pub record_submits: bool,
    /// Keep a [`ReceiptRecord`] of every receipt created, with how often it was sent and
    /// acknowledged (for tests proving "no receipt lost"; costs memory per receipt).
    pub record_receipts: bool,
    /// Serve TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Receipts and MO messages waiting for a receiver bind, at most.
    pub max_backlog: usize,
    /// Outstanding deliver_sm per connection before the simulator waits for deliver_sm_resp.
    pub deliver_window: usize,
    /// How long an outstanding deliver_sm waits for its response before it is redelivered.
    pub deliver_timeout: Duration,
}

impl SimConfig {
    /// A simulator on `listen` accepting any login, hex ids, immediate DELIVRD receipts.
    pub fn new(listen: impl Into<String>) -> Self {
        Self {
            listen: listen.into(),
            accounts: Vec::new(),
            id_format: IdFormat::Hex,
            receipts: ReceiptConfig::default(),
            faults: Faults::default(),
            record_submits: false,
            record_receipts: false,
            tls: None,
            max_backlog: 1_000_000,
            deliver_window: 100,
            deliver_timeout: Duration::from_secs(30),
        }
    }

    /// Adds an accepted login.
    pub fn account(mut self, system_id: &str, password: &str) -> Self {
        self.accounts.push(Account {
            system_id: system_id.to_owned(),
            password: password.to_owned(),
        });
        self
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("listen {address}")]
    Listen {
        /// The configured address.
        address: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Entry point: see [`Simulator::start`].
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Binds the listener and starts accepting; returns a handle with the bound address, the
    /// statistics and the control methods. Must be called within a tokio runtime.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let listener =
            TcpListener::bind(&config.listen)
                .await
                .map_err(|source| SimError::Listen {
                    address: config.listen.clone(),
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen {
            address: config.listen.clone(),
            source,
        })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let tls = config.tls.clone().map(TlsAcceptor::from);
        let (shared, receipt_rx) = Shared::new(config);
        let shared = Arc::new(shared);
        let scheduler = tokio::spawn(receipts::scheduler(
            shared.clone(),
            receipt_rx,
            shutdown_rx.clone(),
        ));
        let acceptor = tokio::spawn(accept_loop(listener, tls, shared.clone(), shutdown_rx));
        info!(%addr, "simulator listening");
        Ok(SimHandle {
            addr,
            control: SimControl { shared },
            shutdown: shutdown_tx,
            tasks: vec![acceptor, scheduler],
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                warn!(error = %e, "simulator accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => conn::serve(tcp, peer, shared, shutdown).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => conn::serve(stream, peer, shared, shutdown).await,
                    Err(e) => warn!(%peer, error = %e, "simulator TLS handshake failed"),
                },
            }
        });
    }
}

/// Which malformed input to send to every bound ESME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// A deliver_sm whose body stops short (framing intact): expect a generic_nack.
    Body,
    /// A PDU with an unknown command_id: expect generic_nack ESME_RINVCMDID.
    UnknownCommand,
    /// A header claiming a 2 GB PDU: framing is lost and the ESME must close.
    OversizeLength,
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    control: SimControl,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::ops::Deref for SimHandle {
    type Target = SimControl;
    fn deref(&self) -> &SimControl {
        &self.control
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A cloneable control of this simulator (for control ports and other tasks).
    pub fn control(&self) -> SimControl {
        self.control.clone()
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.control.shared.broadcast(state::Outbound::Close);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Reads the counters and changes faults of a running simulator; cheap to clone.
#[derive(Clone)]
pub struct SimControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimControl").finish_non_exhaustive()
    }
}

impl SimControl {
    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Every submit received so far (only with `record_submits`).
    pub fn submits(&self) -> Vec<SubmitRecord> {
        self.shared.submits()
    }

    /// Submit arrivals per 100 ms over the last minute and the largest count in any 100 ms
    /// window (see [`pacing`]).
    pub fn pacing(&self) -> pacing::PacingReport {
        self.shared.pacing()
    }

    /// Restarts the pacing figures (histogram and maximum).
    pub fn reset_pacing(&self) {
        self.shared.reset_pacing();
    }

    /// Every receipt created so far, in creation order (only with `record_receipts`).
    pub fn receipts_log(&self) -> Vec<ReceiptRecord> {
        self.shared.receipts_log()
    }

    /// The faults now in force.
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// The receipt behaviour now in force.
    pub fn receipts(&self) -> ReceiptConfig {
        self.shared.live().receipts
    }

    /// Changes the faults; connections see the change at their next read.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) {
        self.shared.update_faults(change);
    }

    /// Changes the receipt behaviour.
    pub fn update_receipts(&self, change: impl FnOnce(&mut ReceiptConfig)) {
        self.shared.update_receipts(change);
    }

    /// Closes every connection now, without unbind (a crash or a network cut).
    pub fn drop_connections(&self) {
        self.shared.broadcast(state::Outbound::Close);
    }

    /// Sends a malformed PDU to every bound ESME.
    pub fn send_malformed(&self, kind: Malformed) {
        self.shared
            .broadcast(state::Outbound::Raw(receipts::malformed(kind)));
    }

    /// Queues a mobile-originated message (several deliver_sm when it is concatenated) for a
    /// receiver bind of `msg.system_id` (or any receiver bind when `None`).
    pub fn inject_mo(&self, msg: MoMessage) {
        receipts::inject_mo(&self.shared, msg);
    }

    /// Queues one part of a concatenated MO (the rest of its set is the caller's business).
    pub fn inject_mo_part(&self, part: MoPart) {
        receipts::inject_mo_part(&self.shared, part);
    }

    /// Queues a receipt for a message id this simulator never issued.
    pub fn inject_unknown_receipt(&self, system_id: Option<&str>, message_id: &str) {
        receipts::inject_unknown_receipt(&self.shared, system_id, message_id);
    }

    /// Queues an arbitrary deliver_sm (a receipt in any form a real SMSC sends) for a receiver
    /// bind of `system_id` (any receiver bind when `None`). It is counted as a receipt and, with
    /// `record_receipts`, recorded under `message_id` with how it was answered; returns its
    /// [`ReceiptRecord::serial`] (0 when not recorded). An answer other than ESME_ROK makes the
    /// simulator redeliver it, as an SMSC does. Dropped (and counted in
    /// [`Stats::deliveries_dropped`]) when the delivery queue is full.
    pub fn inject_deliver(
        &self,
        system_id: Option<&str>,
        message_id: &str,
        body: crate::pdu::DeliverSm,
    ) -> u64 {
        receipts::inject_deliver(&self.shared, system_id, message_id, body)
    }

    /// Runs one control command (see [`control`]) and returns its answer.
    pub fn command(&self, line: &str) -> Result<String, control::ControlError> {
        control::apply(self, line)
    }
}
