//! The PostgreSQL backend of the store: several instances share one database (`[store] url`).
//!
//! Same promises as the SQLite backend (`store::sqlite`), for a cluster:
//! - one writer task per instance owns one connection and runs each burst of queued writes in
//!   ONE transaction (group commit); a caller hears back only after COMMIT. Reads run on other
//!   pooled connections, never behind the writer ([`read`]).
//! - message ids take their low 20 bits from the `message_counter` sequence, so instances never
//!   issue the same id ([`crate::store::MessageId`]).
//! - parts carry the SMSC they are headed for (`target`), their refusals and a claim guard
//!   (`claimed_by`, `claim_epoch`): an answer for a part whose claim is gone changes nothing.
//! - a receipt and its part's acknowledgement meet under one advisory lock per (SMSC, id), so
//!   one of the two transactions always sees the other, whichever instance runs them.
//! - events are numbered after their commit by one sequencer at a time ([`events`]), so event
//!   readers never miss one committed late. The writer hands a committed batch with events to
//!   the sequencer task and goes on with the next batch; the task numbers a burst of batches
//!   at once and answers their callers.
//!
//! Known limits: a COMMIT whose answer is lost with the connection is reported as
//! [`StoreError::Unavailable`] although it may have committed (callers retry; the writes are
//! idempotent or recognised as repeated). A batch takes all its receipt locks with BEGIN, in
//! key order, so two instances' batches never deadlock on them. PostgreSQL text cannot hold U+0000: a write
//! carrying it fails (alone) with [`StoreError::Internal`].
//!
//! Owns the connection pool ([`connect`]), the schema ([`schema`]) and those tasks. Must never
//! put the password in a log line, an error or a metric, never requeue another instance's
//! parts at open, and never NOTIFY inside a write transaction.

/// A statement's text with `{part:…}` / `{message:…}` state placeholders, filled with the
/// states' codes once (`sqlite::sql`): no state number is ever typed in a statement.
macro_rules! filled {
    ($text:expr) => {{
        static SQL: $crate::store::sqlite::sql::Sql = $crate::store::sqlite::sql::Sql::new($text);
        SQL.get()
    }};
}

mod caps;
mod connect;
mod events;
mod read;
mod receipts;
mod schema;
mod write;
mod writer;

pub use connect::{check_url, pool};
pub use schema::current_version;

use super::{
    Accepted, Ack, AckResult, Event, Expired, Failure, IncomingMo, IncomingReceipt, MessageId,
    MessageState, MessageView, MoFragment, MoRecorded, MoSet, NewMessage, NewPart, OptOutEntry,
    Pending, QueueDepth, QueuedPart, ReceiptRecorded, Recovery, Retention, Settings, StoreBackend,
    StoreError, StoreStats,
};
use crate::config::Postgres;
use deadpool_postgres::{Pool, PoolError};
use std::sync::Mutex;
use tokio::sync::{mpsc, watch};
use writer::{Command, Op, Out};

/// The smallest pool that keeps reads off the writer's and the sequencer's connections.
const MIN_POOL: usize = 4;

/// A pooled connection (statements prepared once per connection with `prepare_cached`).
pub(crate) type Client = deadpool_postgres::ClientWrapper;

/// How to open a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `[store] url`, `password_file`, `pool_size`.
    pub postgres: Postgres,
    /// Reloadable settings (with the routes' SMSCs, which set the parts' targets).
    pub settings: Settings,
    /// This instance's name (`[cluster] instance`): written as `claimed_by` by its claims.
    pub instance: String,
    /// Most writes queued before new writes are refused with [`StoreError::Busy`].
    pub queue_capacity: usize,
    /// Most writes per transaction.
    pub max_batch: usize,
}

impl PostgresOptions {
    /// Defaults for a database and an instance name.
    pub fn new(postgres: Postgres, instance: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            postgres,
            settings: Settings::default(),
            instance: instance.into(),
            queue_capacity: 32_768,
            max_batch: 2048,
        }
    }
}

/// The URL without a password (the config refuses one in the URL; this is a second guard for
/// what goes into errors).
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    match auth.map(|a| a.split_once(':').map_or(a, |(user, _)| user)) {
        Some(user) => format!("{scheme}://{user}@{host}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Classifies a database error: the database gone or refusing connections becomes
/// [`StoreError::Unavailable`] (`kind: "database"`), anything else is a bug
/// ([`StoreError::Internal`]). `url` is without password.
pub(crate) fn db_error(e: &tokio_postgres::Error, url: &str) -> StoreError {
    let unavailable = is_unavailable(e);
    let reason = if unavailable { "unavailable" } else { "other" };
    metrics::counter!(crate::metrics::STORE_DB_ERRORS, crate::metrics::label::REASON => reason)
        .increment(1);
    if unavailable {
        return StoreError::Unavailable {
            kind: "database",
            detail: format!("{url}: {e}"),
        };
    }
    StoreError::Internal(format!("{url}: {e}"))
}

/// Whether an error says the database cannot be reached or is shutting down (rather than a
/// statement being wrong).
pub(crate) fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Class 08: connection exceptions; 57P01–57P03: admin/crash shutdown, cannot connect
        // now; class 53: insufficient resources (disk full, out of memory, too many connections).
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c.starts_with("53") || c.starts_with("57P")
        }
        // No SQLSTATE: unavailable when it came from the socket (refused, reset, timed out)
        // or from connecting; a conversion error (a bug) is not.
        None => {
            std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
                || e.to_string().starts_with("error connecting")
        }
    }
}

/// A pool error as a store error (the pool's wait timing out means the database is not there).
pub(crate) fn pool_error(e: PoolError, url: &str) -> StoreError {
    match e {
        PoolError::Backend(e) => db_error(&e, url),
        PoolError::Closed => StoreError::Closed,
        other => {
            metrics::counter!(crate::metrics::STORE_DB_ERRORS, crate::metrics::label::REASON => "unavailable")
                .increment(1);
            StoreError::Unavailable {
                kind: "database",
                detail: format!("{url}: {other}"),
            }
        }
    }
}

/// Applies the schema migrations to the database of `pg` (for `smppd store migrate`): returns
/// how many ran. Refuses a database whose schema is newer than this build.
pub async fn migrate(pg: &Postgres) -> Result<u32, StoreError> {
    let url = redacted(&pg.url);
    let pool = pool(pg, "smppd migrate")?;
    let client = pool.get().await.map_err(|e| pool_error(e, &url))?;
    schema::migrate(&client, &url, "").await
}

/// Reads for the CLI (`smppd reports` on a shared database): its own small pool, no writer,
/// no migrations (it refuses a database whose schema this build does not know).
pub struct PostgresReader {
    pool: Pool,
    url: String,
}

impl PostgresReader {
    /// Connects to the database of `pg` and checks its schema version.
    pub async fn open(pg: &Postgres) -> Result<PostgresReader, StoreError> {
        let url = redacted(&pg.url);
        let mut small = pg.clone();
        small.pool_size = 2;
        let pool = pool(&small, "smppd reports")?;
        let reader = PostgresReader { pool, url };
        let c = reader.client().await?;
        let found = schema::found_version(&c)
            .await
            .map_err(|e| db_error(&e, &reader.url))?;
        if found > current_version() {
            return Err(StoreError::SchemaTooNew {
                path: reader.url.clone().into(),
                found,
                supported: current_version(),
            });
        }
        Ok(reader)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| pool_error(e, &self.url))
    }

    /// Messages matching `f`, newest first, as SQLite's `Reader::messages` gives them.
    pub async fn messages(&self, f: &super::MessageFilter) -> Result<Vec<MessageView>, StoreError> {
        let c = self.client().await?;
        read::messages(&c, f)
            .await
            .map_err(|e| db_error(&e, &self.url))
    }

    /// Delivery per value of `by` for the messages accepted at or after `since_ms`
    /// (`smppd reports --by`; see `store::report`).
    pub async fn delivery(
        &self,
        by: &super::ReportBy,
        since_ms: Option<i64>,
    ) -> Result<Vec<super::DeliveryRow>, StoreError> {
        let mut c = self.client().await?;
        read::delivery(&mut c, by, since_ms)
            .await
            .map_err(|e| db_error(&e, &self.url))
    }

    /// Receipts that matched no part, newest first.
    pub async fn unmatched_receipts(
        &self,
        limit: usize,
    ) -> Result<Vec<super::ReceiptView>, StoreError> {
        let c = self.client().await?;
        read::unmatched_receipts(&c, limit)
            .await
            .map_err(|e| db_error(&e, &self.url))
    }
}

/// The PostgreSQL store (see the module docs).
pub struct PostgresStore {
    writes: Mutex<Option<mpsc::Sender<Command>>>,
    pool: Pool,
    url: String,
    seq: watch::Receiver<i64>,
    capacity: usize,
    poll: Mutex<Option<tokio::task::JoinHandle<()>>>,
    writer_done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// The runtime the store was opened on: reads run there, whoever asks.
    rt: tokio::runtime::Handle,
}

impl PostgresStore {
    /// Opens the store: pool, migrations, counts, then the writer and the sequencer poll.
    pub async fn open(opts: PostgresOptions) -> Result<(PostgresStore, Recovery), StoreError> {
        let url = redacted(&opts.postgres.url);
        // The writer and the sequencer task keep one connection each and the event poll uses
        // one now and then: reads need at least one more, never waiting behind the writer.
        let mut postgres = opts.postgres.clone();
        postgres.pool_size = postgres.pool_size.max(MIN_POOL);
        let pool = pool(&postgres, &format!("smppd {}", opts.instance))?;
        let client = pool.get().await.map_err(|e| pool_error(e, &url))?;
        let migrations_applied = schema::migrate(&client, &url, &opts.instance).await?;
        let queued = read::queued_count(&client)
            .await
            .map_err(|e| db_error(&e, &url))?;
        events::sequence(&client)
            .await
            .map_err(|e| db_error(&e, &url))?;
        let last = events::max_seq(&client)
            .await
            .map_err(|e| db_error(&e, &url))?;
        let (seq_tx, seq_rx) = watch::channel(last);
        let capacity = opts.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let numbering = pool.get().await.map_err(|e| pool_error(e, &url))?;
        let (seq_cmd_tx, seq_cmd_rx) = mpsc::unbounded_channel();
        let ctx = writer::WriterCtx::new(&opts, pool.clone(), url.clone(), seq_cmd_tx);
        tokio::spawn(writer::writer_loop(ctx, client, rx));
        // Ends after the writer (its sender gone) once every committed batch is answered.
        let sequencer = writer::sequencer_loop(
            pool.clone(),
            url.clone(),
            numbering,
            seq_tx.clone(),
            seq_cmd_rx,
        );
        tokio::spawn(async move {
            sequencer.await;
            let _ = done_tx.send(());
        });
        let poll = tokio::spawn(events::poll_loop(pool.clone(), url.clone(), seq_tx));
        let recovery = Recovery {
            requeued_in_flight: 0,
            queued: queued.max(0) as u64,
            migrations_applied,
        };
        Ok((
            PostgresStore {
                writes: Mutex::new(Some(tx)),
                pool,
                url,
                seq: seq_rx,
                capacity,
                poll: Mutex::new(Some(poll)),
                writer_done: Mutex::new(Some(done_rx)),
                rt: tokio::runtime::Handle::current(),
            },
            recovery,
        ))
    }

    fn submit<O: Send + 'static>(&self, op: Op, extract: fn(Out) -> Option<O>) -> Pending<O> {
        let (tx, pending) = Pending::channel();
        let reply = Box::new(move |r: Result<Out, StoreError>| {
            let r = r.and_then(|o| {
                extract(o).ok_or_else(|| StoreError::Internal("write answered off type".into()))
            });
            let _ = tx.send(r);
        });
        let cmd = Command::new(op, reply);
        let guard = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sender) = guard.as_ref() else {
            cmd.finish(Err(StoreError::Closed));
            return pending;
        };
        match sender.try_send(cmd) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(cmd)) => cmd.finish(Err(StoreError::Busy {
                capacity: self.capacity,
            })),
            Err(mpsc::error::TrySendError::Closed(cmd)) => cmd.finish(Err(StoreError::Closed)),
        }
        pending
    }

    /// Runs a read on a pooled connection of its own (never the writer's).
    fn read<O, F, Fut>(&self, f: F) -> Pending<O>
    where
        O: Send + 'static,
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<O, tokio_postgres::Error>> + Send,
    {
        let (tx, pending) = Pending::channel();
        let pool = self.pool.clone();
        let url = self.url.clone();
        self.rt.spawn(async move {
            let asked = std::time::Instant::now();
            let got = pool.get().await;
            metrics::histogram!(crate::metrics::STORE_POOL_WAIT_SECONDS)
                .record(asked.elapsed().as_secs_f64());
            let result = match got {
                Ok(client) => f(client).await.map_err(|e| db_error(&e, &url)),
                Err(e) => Err(pool_error(e, &url)),
            };
            let _ = tx.send(result);
        });
        pending
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.close();
    }
}

macro_rules! out {
    ($variant:ident) => {
        |o| match o {
            Out::$variant(v) => Some(v),
            _ => None,
        }
    };
}

impl StoreBackend for PostgresStore {
    fn accept(&self, msg: NewMessage) -> Pending<Accepted> {
        self.submit(Op::Accept(msg), out!(Accepted))
    }

    /// Ignores targets (every ready part of the route): for tests and single-instance use.
    fn claim(&self, route: &str, limit: usize, now_ms: i64) -> Pending<Vec<QueuedPart>> {
        let op = Op::Claim {
            route: route.to_owned(),
            owned: None,
            limit,
            now_ms,
        };
        self.submit(op, out!(Parts))
    }

    fn acked(&self, ack: Ack) -> Pending<AckResult> {
        self.submit(Op::Acked(ack), out!(Ack))
    }

    fn failed(&self, failure: Failure) -> Pending<MessageState> {
        self.submit(Op::Failed(failure), out!(State))
    }

    fn record_receipt(&self, receipt: IncomingReceipt) -> Pending<ReceiptRecorded> {
        self.submit(Op::Receipt(receipt), out!(Receipt))
    }

    fn record_mo(&self, mo: IncomingMo) -> Pending<MoRecorded> {
        self.submit(Op::Mo(mo, None), out!(Mo))
    }

    fn record_mo_fragment(&self, fragment: MoFragment) -> Pending<()> {
        self.submit(Op::MoFragment(fragment), out!(Unit))
    }

    fn record_mo_set(
        &self,
        mo: IncomingMo,
        set: MoSet,
        incomplete: Option<&'static str>,
    ) -> Pending<MoRecorded> {
        self.submit(Op::Mo(mo, Some((set, incomplete))), out!(Mo))
    }

    fn mo_fragments(&self) -> Pending<Vec<MoFragment>> {
        self.read(|c| async move { read::mo_fragments(&c).await })
    }

    fn expire(&self, now_ms: i64, receipt_wait_ms: i64, limit: usize) -> Pending<Expired> {
        self.submit(Op::Expire(now_ms, receipt_wait_ms, limit), out!(Expired))
    }

    fn resplit(&self, id: MessageId, split: String, parts: Vec<NewPart>) -> Pending<()> {
        self.submit(Op::Resplit(id, split, parts), out!(Unit))
    }

    fn prune(&self, retention: Retention, now_ms: i64, batch: usize) -> Pending<usize> {
        self.submit(Op::Prune(retention, now_ms, batch), out!(Count))
    }

    fn reload(&self, settings: Settings) -> Pending<()> {
        self.submit(Op::Reload(settings), out!(Unit))
    }

    fn optout_add(&self, number: String, scope: String, now_ms: i64) -> Pending<bool> {
        self.submit(Op::OptoutAdd(number, scope, now_ms), out!(Bool))
    }

    fn optout_remove(&self, number: String, scope: String) -> Pending<bool> {
        self.submit(Op::OptoutRemove(number, scope), out!(Bool))
    }

    fn message(&self, id: MessageId) -> Pending<Option<MessageView>> {
        self.read(move |c| async move { read::message(&c, id).await })
    }

    fn events_after(&self, after: i64, limit: usize) -> Pending<Vec<Event>> {
        self.read(move |c| async move { read::events_after(&c, after, limit).await })
    }

    fn queue_depth(&self, now_ms: i64) -> Pending<Vec<QueueDepth>> {
        self.read(move |c| async move { read::queue_depth(&c, now_ms).await })
    }

    fn is_opted_out(&self, number: &str, scope: &str) -> Pending<Option<String>> {
        let (number, scope) = (number.to_owned(), scope.to_owned());
        self.read(move |c| async move { read::is_opted_out(&c, &number, &scope).await })
    }

    fn optout_list(
        &self,
        after: String,
        after_scope: Option<String>,
        limit: usize,
    ) -> Pending<Vec<OptOutEntry>> {
        self.read(move |c| async move {
            read::optout_list(&c, &after, after_scope.as_deref(), limit).await
        })
    }

    fn final_counts(&self, since_ms: i64) -> Pending<Vec<(MessageState, u64)>> {
        self.read(move |c| async move { read::final_counts(&c, since_ms).await })
    }

    fn stats(&self) -> Pending<StoreStats> {
        self.read(|c| async move { read::stats(&c).await })
    }

    fn last_seq(&self) -> watch::Receiver<i64> {
        self.seq.clone()
    }

    /// Stops taking writes and reads (they fail with [`StoreError::Closed`]); the writer
    /// finishes the queued writes on the connection it holds. From a plain thread this waits (up
    /// to 10 s) for the writer to end; inside the runtime it cannot block, and returns.
    fn close(&self) {
        drop(self.writes.lock().unwrap_or_else(|p| p.into_inner()).take());
        self.pool.close();
        if let Some(poll) = self.poll.lock().unwrap_or_else(|p| p.into_inner()).take() {
            poll.abort();
        }
        let done = self
            .writer_done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(done) = done
            && tokio::runtime::Handle::try_current().is_err()
        {
            let _ = done.recv_timeout(std::time::Duration::from_secs(10));
        }
    }

    fn claim_owned(
        &self,
        route: &str,
        owned: Vec<(String, i64)>,
        limit: usize,
        now_ms: i64,
    ) -> Pending<Vec<QueuedPart>> {
        let op = Op::Claim {
            route: route.to_owned(),
            owned: Some(owned),
            limit,
            now_ms,
        };
        self.submit(op, out!(Parts))
    }

    fn retarget(&self, route: &str, from: &str, to: &str, limit: usize) -> Pending<usize> {
        let op = Op::Retarget {
            route: route.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            limit,
        };
        self.submit(op, out!(Count))
    }

    fn requeue_in_flight(&self, smsc: &str, epoch: i64) -> Pending<usize> {
        self.submit(Op::RequeueInFlight(smsc.to_owned(), epoch), out!(Count))
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_password_never_reaches_an_error() {
        assert_eq!(
            redacted("postgres://smppd:hunter2@db:5432/smppd"),
            "postgres://smppd@db:5432/smppd"
        );
        assert_eq!(
            redacted("postgres://smppd@db:5432/smppd"),
            "postgres://smppd@db:5432/smppd"
        );
        assert_eq!(redacted("postgres://db/smppd"), "postgres://db/smppd");
    }
}
