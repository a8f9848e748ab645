//! The durable store: messages and their parts (the queue), the delivery-report log, receipt
//! correlation, mobile-originated messages, the opt-out list and the event sequence.
//!
//! Callers hold a [`Store`], a cheap handle over a [`StoreBackend`]. Two backends: SQLite
//! ([`sqlite`]: one process per file; WAL mode, one writer thread doing group commit, a few
//! reader connections) and PostgreSQL ([`postgres`]: several instances share one database; one
//! writer task per instance doing group commit, reads on pooled connections, part targets and
//! claim guards for a cluster). Callers do not change with the backend; the cluster methods
//! ([`StoreBackend::claim_owned`], [`StoreBackend::retarget`],
//! [`StoreBackend::requeue_in_flight`]) have single-node answers on SQLite.
//!
//! Every write is one command that the backend batches; the returned [`Pending`] resolves only
//! after the transaction holding the write has committed (`sync = "normal"` survives a process
//! crash, `"full"` a power loss). This module must never report a write as done before that
//! commit, and never keep an unbounded queue: when the write queue is full, the write fails at
//! once with [`StoreError::Busy`] (the API turns that into `overloaded`).

pub(crate) mod caps;
mod error;
mod id;
pub mod postgres;
pub mod report;
pub mod sqlite;
mod types;

pub use error::StoreError;
pub use id::{BadMessageId, MessageId};
pub use postgres::PostgresOptions;
pub use report::{DeliveryRow, ReportBy};
pub use sqlite::{Reader, SqliteOptions};
pub use types::*;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{oneshot, watch};

/// At most this many waiting parts (retries, held messages) a claim wakes, earliest `ready_at`
/// first (four claim batches): a million messages held until 09:00 are released over many
/// claims, not by one UPDATE that holds the writer for seconds; the route's token buckets
/// then pace them out. Both backends.
pub const WAKE_BATCH: i64 = 1024;

/// The result of a store operation, resolved when it is durable (writes) or answered (reads).
/// Await it in async code, or call [`Pending::wait`] from a plain thread.
#[must_use = "a write is only durable when its Pending resolves Ok"]
pub struct Pending<T> {
    rx: oneshot::Receiver<Result<T, StoreError>>,
}

impl<T> Pending<T> {
    /// A pending result and the sender that resolves it (for backends).
    pub fn channel() -> (oneshot::Sender<Result<T, StoreError>>, Pending<T>) {
        let (tx, rx) = oneshot::channel();
        (tx, Pending { rx })
    }

    /// An already-resolved result (e.g. a write refused before it was queued).
    pub fn ready(result: Result<T, StoreError>) -> Pending<T> {
        let (tx, p) = Pending::channel();
        // The receiver is alive (we hold it), so this cannot fail.
        let _ = tx.send(result);
        p
    }

    /// Blocks the current thread until the result is in. For plain threads (tests, tools);
    /// inside an async runtime, `.await` instead (this panics there, as blocking would stall it).
    pub fn wait(self) -> Result<T, StoreError> {
        self.rx.blocking_recv().unwrap_or(Err(StoreError::Closed))
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StoreError::Closed)))
    }
}

/// What a store backend provides. Writes are queued and batched; reads run on reader
/// connections that never block the writer. All methods return at once.
pub trait StoreBackend: Send + Sync + 'static {
    /// Stores a new message and its parts (queued). With an idempotency key seen before, stores
    /// nothing and returns the first message's id with `duplicate = true` (and counts nothing).
    /// With `msg.caps`, checks and counts them in the same transaction as the insert: a cap that
    /// is full refuses with [`StoreError::Capped`] and nothing is stored or counted; two
    /// accepts racing for one counter (on one store, or on instances sharing PostgreSQL) never
    /// both take its last place.
    fn accept(&self, msg: NewMessage) -> Pending<Accepted>;
    /// Takes up to `limit` ready parts of `route` in priority then age order and marks them
    /// in flight (their attempt counter goes up). Parts whose validity has passed are expired
    /// instead of returned. Claim only what is about to be sent: after a crash, every claimed
    /// part is re-queued and marked as a possible duplicate (SQLite: at the next open;
    /// PostgreSQL: by [`Self::requeue_in_flight`] once another instance holds the SMSC's lease).
    /// PostgreSQL's plain `claim` ignores the parts' targets: the cluster uses
    /// [`Self::claim_owned`].
    fn claim(&self, route: &str, limit: usize, now_ms: i64) -> Pending<Vec<QueuedPart>>;
    /// An SMSC acknowledged a part (`submit_sm_resp` status 0). On PostgreSQL this and
    /// [`Self::failed`] apply only while the part is in flight under the claim this instance
    /// made (name and lease epoch); a stale answer changes nothing, is logged at warn, and
    /// resolves with the message's current state. Receipts that arrived before this
    /// response are matched now, under `ack.reroute` as at `record_receipt` (the answer's
    /// `rerouted` says when one sent the part back to the queue).
    fn acked(&self, ack: Ack) -> Pending<AckResult>;
    /// A part was not acknowledged: retry later, re-queue now, fail over to another SMSC, or
    /// give up (permanent failure).
    /// Also resends an acknowledged part (reroute after UNDELIV/REJECTD): record that receipt
    /// with `outcome: None` so the part stays open, then call this with `Requeue`. Parts already
    /// final are left as they are.
    fn failed(&self, failure: Failure) -> Pending<MessageState>;
    /// Records a delivery receipt: a log row, the part's and message's state, a `dlr` event, in
    /// one transaction. Acknowledge the SMSC's deliver_sm only after this resolves Ok.
    ///
    /// A receipt whose `receipt.id` is empty (no message id anywhere: unparseable) is logged
    /// unmatched under a key no part can have and answered [`ReceiptRecorded::Held`]; it is
    /// never matched, and shows in `smppd reports --unmatched` and the unmatched count.
    ///
    /// Reroute: when the receipt's [`RerouteRule`] covers the part's route, the outcome is
    /// UNDELIV or REJECTD, the part was acknowledged (submitted) and never rerouted, and the
    /// route has an SMSC other than the receipt's, the receipt is logged as usual but the part
    /// goes back to the queue marked rerouted (its `QueuedPart::rerouted_from` names the SMSC to
    /// avoid), the message is `queued` again under the same id, and the answer is
    /// [`ReceiptRecorded::Rerouted`]. The resend's receipt is final whatever it says.
    fn record_receipt(&self, receipt: IncomingReceipt) -> Pending<ReceiptRecorded>;
    /// Records a mobile-originated message (and an opt-out change) with an `mo` event.
    fn record_mo(&self, mo: IncomingMo) -> Pending<MoRecorded>;
    /// Keeps one part of a concatenated MO until its set ends (a part kept before is left as
    /// it is). Acknowledge the part's deliver_sm only after this resolves Ok.
    fn record_mo_fragment(&self, fragment: MoFragment) -> Pending<()>;
    /// Ends a concatenated MO's set in one transaction: records `mo` as [`Self::record_mo`]
    /// does and deletes the set's kept parts. `incomplete` names why a set was given up before
    /// all its parts came (`expired`, `evicted`, `superseded`): the MO then holds what did come,
    /// its row and `mo` event say `incomplete`, and no opt-out change applies.
    fn record_mo_set(
        &self,
        mo: IncomingMo,
        set: MoSet,
        incomplete: Option<&'static str>,
    ) -> Pending<MoRecorded>;
    /// Every kept MO part, in arrival order (to rebuild reassembly at start).
    fn mo_fragments(&self) -> Pending<Vec<MoFragment>>;
    /// Expires what waited too long: parts queued or waiting for a retry past their validity
    /// (whether or not an SMSC is bound), and parts acknowledged more than `receipt_wait_ms` ago
    /// without a final receipt (`no_receipt`); each message reaching a final state this way gets
    /// a `state` event. Finds them through indexes of what is due (oldest first), so the cost
    /// follows the work, not the store's size. Works through at most `limit` parts of each kind
    /// per call so it never stalls other writes; `more` in the answer says to call again.
    fn expire(&self, now_ms: i64, receipt_wait_ms: i64, limit: usize) -> Pending<Expired>;
    /// Replaces the parts of a message none of whose parts was acknowledged yet (failover to an
    /// SMSC with other split settings).
    fn resplit(&self, id: MessageId, split: String, parts: Vec<NewPart>) -> Pending<()>;
    /// Deletes up to `batch` rows per table older than the retention ages. Returns how many rows
    /// went; call again while it returns `batch` or more.
    fn prune(&self, retention: Retention, now_ms: i64, batch: usize) -> Pending<usize>;
    /// Applies reloadable settings (live config reload).
    fn reload(&self, settings: Settings) -> Pending<()>;

    /// One message with its parts and receipts.
    /// Puts `number` (E.164 with `+`) on the opt-out list of `scope` (a sender address, or
    /// [`GLOBAL_SCOPE`]) as an operator's change (keyword `manual`); resolves true when it was
    /// not on that list (an existing entry is kept as is).
    fn optout_add(&self, number: String, scope: String, now_ms: i64) -> Pending<bool>;
    /// Takes `number` off the opt-out list of exactly `scope`; resolves true when it was on it.
    fn optout_remove(&self, number: String, scope: String) -> Pending<bool>;

    fn message(&self, id: MessageId) -> Pending<Option<MessageView>>;
    /// Events with `seq > after`, oldest first, at most `limit`.
    fn events_after(&self, after: i64, limit: usize) -> Pending<Vec<Event>>;
    /// Ready and waiting parts per route, and the parts held past `now_ms` (send windows,
    /// `send_at`) apart.
    fn queue_depth(&self, now_ms: i64) -> Pending<Vec<QueueDepth>>;
    /// Whether a number opted out of `scope` (a sender address) or of every sender: the scope
    /// it is listed under ([`GLOBAL_SCOPE`] first), or `None`.
    fn is_opted_out(&self, number: &str, scope: &str) -> Pending<Option<String>>;
    /// Up to `limit` opt-out entries after `after`, in (number, scope) order: with
    /// `after_scope`, entries after that (number, scope); without, entries with numbers greater
    /// than `after` (page with the last entry returned; `""` starts at the beginning).
    fn optout_list(
        &self,
        after: String,
        after_scope: Option<String>,
        limit: usize,
    ) -> Pending<Vec<OptOutEntry>>;
    /// Counters for status and metrics.
    /// How many messages reached each final state at or after `since_ms` (their `done_at`).
    fn final_counts(&self, since_ms: i64) -> Pending<Vec<(MessageState, u64)>>;
    fn stats(&self) -> Pending<StoreStats>;
    /// The highest committed event sequence number; changes after every commit that adds events.
    fn last_seq(&self) -> watch::Receiver<i64>;
    /// Stops accepting writes, finishes the queued ones and joins the writer.
    fn close(&self);

    /// Like [`Self::claim`], for a cluster: only ready parts of `route` whose target is one of
    /// the `owned` SMSCs (name, lease epoch), taken so that two instances never take the same
    /// part, and marked in flight under this instance's name and the epoch paired with the
    /// part's target. `acked` and `failed` then apply only while that claim stands.
    /// A single-node store owns every SMSC: SQLite answers exactly as [`Self::claim`].
    fn claim_owned(
        &self,
        route: &str,
        owned: Vec<(String, i64)>,
        limit: usize,
        now_ms: i64,
    ) -> Pending<Vec<QueuedPart>>;
    /// Moves the queued (and waiting-for-retry) parts of `route` headed for the SMSC `from` to
    /// the SMSC `to`, for at most `limit` messages (the parts of one message move together),
    /// skipping messages with a part that `to` refused before. Resolves how many parts moved.
    /// SQLite keeps no targets: resolves 0.
    fn retarget(&self, route: &str, from: &str, to: &str, limit: usize) -> Pending<usize>;
    /// Puts back in the queue, marked as possible duplicates, the parts in flight to `smsc`
    /// that were claimed under a lease epoch older than `epoch` (their instance lost the lease:
    /// it died or stalled). Resolves how many. SQLite: 0 (its recovery at open does this, and
    /// one process owns every SMSC).
    fn requeue_in_flight(&self, smsc: &str, epoch: i64) -> Pending<usize>;
}

/// The handle callers use: clone it freely.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn StoreBackend>,
}

impl Store {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn StoreBackend>) -> Store {
        Store { backend }
    }

    /// Opens (creating it with mode 0600 if needed) an SQLite store, migrates its schema and
    /// recovers what was in flight at the last stop.
    pub fn open_sqlite(options: SqliteOptions) -> Result<(Store, Recovery), StoreError> {
        let (backend, recovery) = sqlite::SqliteStore::open(options)?;
        Ok((Store::new(Arc::new(backend)), recovery))
    }

    /// Opens the PostgreSQL store of `options.postgres` (shared by every instance of a
    /// cluster): builds the pool, migrates the schema (refusing one newer than this build) and
    /// starts the writer and the event sequencer on the current tokio runtime. Unlike SQLite,
    /// opening requeues nothing (other instances may be sending their parts): the
    /// [`Recovery`] only counts.
    pub async fn open_postgres(options: PostgresOptions) -> Result<(Store, Recovery), StoreError> {
        let (backend, recovery) = postgres::PostgresStore::open(options).await?;
        Ok((Store::new(Arc::new(backend)), recovery))
    }

    /// The backend, for calls not wrapped here.
    pub fn backend(&self) -> &dyn StoreBackend {
        &*self.backend
    }
}

impl std::ops::Deref for Store {
    type Target = dyn StoreBackend;

    fn deref(&self) -> &Self::Target {
        &*self.backend
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}
