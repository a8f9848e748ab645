//! The SQLite backend: one file in WAL mode, one writer thread doing group commit, a small pool
//! of reader threads with read-only connections (WAL readers never block the writer).
//!
//! Group commit: the writer takes the first queued write and runs it in a new transaction, then
//! keeps taking and running queued writes until the queue is empty, `max_batch` writes ran or
//! `max_batch_time` (2 ms) passed, and commits; only then does it resolve each caller's
//! [`Pending`]. There is no artificial wait: under load, writes pile up while a batch runs and the
//! next batch is bigger; a write waits at most about `max_batch_time` plus a commit.
//!
//! Light load: a write that nobody waits on quickly (results of sends, receipts, claims, sweeps:
//! "lazy") does not open a transaction of its own when it finds the queue empty. The writer
//! lingers up to `lazy_linger` (2 ms) for more writes and commits them together, and stops
//! lingering at once when an urgent write (an accept, whose client waits) arrives. At 500
//! messages/s this turns about four commits per message (each a WAL append of every page it
//! touched, a file lock and two thread wake-ups) into about one; under load the queue is never
//! empty and nothing lingers. Every write is still answered only after its commit.
//! Two lanes (`lanes`): writes about work in flight (claims, send results, receipts, MO) are
//! taken before accepts and housekeeping, so a receipt does not queue behind every pipelined
//! accept while its SMSC's window waits for the answer.
//! Events for subscribers: after each COMMIT the writer hands the events it inserted to a ring
//! in memory (`events`), before anyone hears back and before the sequence watch moves;
//! `events_after` answers from it when it holds everything after the asked seq (a subscriber
//! that keeps up: no reader thread, no SQL) and reads the store otherwise.
//! If a write hits a database error that is not a storage condition (a bug), the batch is rolled
//! back and replayed one write per transaction so only the faulty write fails. Storage conditions
//! (disk full, read-only, I/O) fail the whole batch with [`StoreError::Unavailable`]; the next
//! batch tries again, so the store recovers by itself when space returns.

mod events;
mod lanes;
mod lock;
mod read;
mod schema;
pub(crate) mod sql;
pub(crate) mod write;

pub use read::Reader;

use super::error::classify;
use super::{
    Accepted, Ack, AckResult, Event, Expired, Failure, IncomingMo, IncomingReceipt, MessageId,
    MessageState, MessageView, MoFragment, MoRecorded, MoSet, NewMessage, NewPart, OptOutEntry,
    Pending, QueuedPart, ReceiptRecorded, Recovery, Retention, Settings, StoreBackend, StoreError,
    StoreStats, SyncMode,
};
use lanes::{Inbox, Lane};
use rusqlite::Connection;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{oneshot, watch};

/// How to open an SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file (created with mode 0600 if missing).
    pub path: PathBuf,
    /// Reloadable settings.
    pub settings: Settings,
    /// Most writes per transaction.
    pub max_batch: usize,
    /// Longest a transaction keeps taking writes before it commits.
    pub max_batch_time: std::time::Duration,
    /// Longest the writer waits for company when a batch would hold only lazy writes (see the
    /// module docs); zero: never.
    pub lazy_linger: std::time::Duration,
    /// Most writes queued before new writes are refused with [`StoreError::Busy`].
    pub queue_capacity: usize,
    /// Reader threads (each with its own connection).
    pub readers: usize,
    /// Page cache of the writer connection, in KiB.
    pub cache_kib: u32,
    /// Committed events kept in memory to answer subscribers without a read (see
    /// `store/sqlite/events.rs`); 0: every `events_after` reads the store.
    pub event_ring: usize,
}

impl SqliteOptions {
    /// Defaults for a file.
    pub fn new(path: impl Into<PathBuf>) -> SqliteOptions {
        SqliteOptions {
            path: path.into(),
            settings: Settings::default(),
            max_batch: 2048,
            max_batch_time: std::time::Duration::from_millis(2),
            lazy_linger: std::time::Duration::from_millis(2),
            queue_capacity: 32_768,
            readers: 2,
            cache_kib: 16 * 1024,
            event_ring: events::DEFAULT_CAPACITY,
        }
    }
}

/// A write command: runs inside the batch's transaction, keeps its result, and sends it after
/// the commit (or sends the batch's failure).
trait Job: Send {
    fn run(&mut self, w: &mut write::Writer<'_>) -> Result<(), rusqlite::Error>;
    fn finish(self: Box<Self>, failure: Option<StoreError>);
    /// Whether the write may wait for company before its commit (see the module docs).
    fn lazy(&self) -> bool;
    /// Whether the write runs in a transaction of its own: one whose outcome must not be
    /// another write's (see [`Commit::Alone`]).
    fn alone(&self) -> bool {
        false
    }
    /// The first lane's wake-up token (`lanes`), which is never run.
    fn is_wake(&self) -> bool {
        false
    }
}

/// A domain error (bad request: the batch goes on) or a database error (the batch is rolled back).
pub(crate) enum JobError {
    Domain(StoreError),
    Db(rusqlite::Error),
}

impl From<rusqlite::Error> for JobError {
    fn from(e: rusqlite::Error) -> JobError {
        JobError::Db(e)
    }
}

/// How a write shares its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Commits with whatever the writer has queued, at once.
    Urgent,
    /// May wait up to `lazy_linger` for company (see the module docs).
    Lazy,
    /// In a transaction of its own. A batch fails as one (a full disk fails every write in it),
    /// and a write whose caller does not retry must not fail for another's sake: the reload that
    /// raises the size cap is what ends a full store, and it failed with the receipts it was
    /// batched with (which fail again at once, redelivered), so the store stayed full.
    Alone,
}

struct JobImpl<I, O, F> {
    input: I,
    f: F,
    out: Option<Result<O, StoreError>>,
    tx: oneshot::Sender<Result<O, StoreError>>,
    commit: Commit,
}

impl<I, O, F> Job for JobImpl<I, O, F>
where
    I: Send,
    O: Send,
    F: for<'w> FnMut(&mut write::Writer<'w>, &I) -> Result<O, JobError> + Send,
{
    fn run(&mut self, w: &mut write::Writer<'_>) -> Result<(), rusqlite::Error> {
        match (self.f)(w, &self.input) {
            Ok(o) => self.out = Some(Ok(o)),
            Err(JobError::Domain(e)) => self.out = Some(Err(e)),
            Err(JobError::Db(e)) => {
                self.out = None;
                return Err(e);
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>, failure: Option<StoreError>) {
        let result = match failure {
            Some(e) => Err(e),
            None => self
                .out
                .unwrap_or_else(|| Err(StoreError::Internal("write was not run".into()))),
        };
        // The caller may have given up waiting; that is its business.
        let _ = self.tx.send(result);
    }

    fn lazy(&self) -> bool {
        self.commit == Commit::Lazy
    }

    fn alone(&self) -> bool {
        self.commit == Commit::Alone
    }
}

type ReadJob = Box<dyn FnOnce(&mut Reader) + Send>;

/// The readers' shared queue. A condition variable wakes exactly one idle reader per job (the
/// `Mutex<Receiver>` it replaces woke two: the reader blocked in `recv`, then, as that one let
/// the mutex go, the next reader waiting for the mutex, only to block in `recv` in turn).
struct ReadQueue {
    state: Mutex<ReadState>,
    ready: std::sync::Condvar,
    capacity: usize,
}

struct ReadState {
    jobs: std::collections::VecDeque<ReadJob>,
    open: bool,
}

impl ReadQueue {
    fn new(capacity: usize) -> ReadQueue {
        ReadQueue {
            state: Mutex::new(ReadState {
                jobs: std::collections::VecDeque::new(),
                open: true,
            }),
            ready: std::sync::Condvar::new(),
            capacity,
        }
    }

    fn push(&self, job: ReadJob) -> Result<(), StoreError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !st.open {
            return Err(StoreError::Closed);
        }
        if st.jobs.len() >= self.capacity {
            return Err(StoreError::Busy {
                capacity: self.capacity,
            });
        }
        st.jobs.push_back(job);
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job; `None` once closed and empty (queued jobs still run after the close).
    fn pop(&self) -> Option<ReadJob> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(job) = st.jobs.pop_front() {
                return Some(job);
            }
            if !st.open {
                return None;
            }
            st = self.ready.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).open = false;
        self.ready.notify_all();
    }
}

/// The SQLite store (see the module docs).
pub struct SqliteStore {
    writes: Mutex<Option<SyncSender<Box<dyn Job>>>>,
    /// Writes about work in flight, taken before the channel's (see `lanes`).
    first: Arc<lanes::FirstLane>,
    reads: Arc<ReadQueue>,
    stop_checkpoints: Mutex<Option<mpsc::Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    seq: watch::Receiver<i64>,
    /// Recent committed events: `events_after` of a subscriber that keeps up.
    events: Arc<events::EventRing>,
    capacity: usize,
    /// Released by [`StoreBackend::close`] once the writer has stopped.
    lock: Mutex<Option<lock::StoreLock>>,
}

fn open_error(path: &Path, detail: impl ToString) -> StoreError {
    StoreError::Open {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

/// Creates the file with mode 0600 before SQLite opens it, so the store is never readable by
/// others, not even for a moment. SQLite gives the -wal and -shm files the same mode.
fn create_private(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| open_error(path, e))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|e| open_error(path, e))
}

pub(crate) fn apply_settings(conn: &Connection, s: &Settings) -> rusqlite::Result<()> {
    let sync = match s.sync {
        SyncMode::Normal => "NORMAL",
        SyncMode::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    apply_size_cap(conn, s)
}

/// The size cap (`max_page_count`); allowed inside a transaction.
pub(crate) fn apply_size_cap(conn: &Connection, s: &Settings) -> rusqlite::Result<()> {
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let max_pages = match s.max_size_bytes {
        Some(b) => (b / page_size.max(512) as u64).max(1) as i64,
        None => 1_073_741_823,
    };
    conn.pragma_update(None, "max_page_count", max_pages)?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    let supported = schema::current_version();
    if found > supported {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    if found < supported {
        migration_functions(conn).map_err(|e| open_error(path, e))?;
    }
    let mut applied = 0;
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(|e| classify(&e))?;
        tx.execute_batch(sql)
            .map_err(|e| open_error(path, format!("migration {}: {e}", i + 1)))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(|e| classify(&e))?;
        tx.commit().map_err(|e| classify(&e))?;
        applied += 1;
    }
    Ok(applied)
}

/// Registers the SQL functions the migrations call (see `schema`), computed by the writer's own
/// code so that a migrated row holds exactly what the writer would have written.
fn migration_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "smppd_receipt_hash",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let smsc: String = ctx.get(0)?;
            let key: String = ctx.get(1)?;
            Ok(write::receipts::receipt_hash(&smsc, &key))
        },
    )
}

impl SqliteStore {
    /// Opens the store: creates the file (0600), sets WAL, migrates, recovers in-flight parts,
    /// then starts the writer and reader threads.
    pub fn open(opts: SqliteOptions) -> Result<(SqliteStore, Recovery), StoreError> {
        let path = opts.path.clone();
        create_private(&path)?;
        // Before anything else touches the file: recovery below requeues every part in flight,
        // which must never happen under a daemon that is still sending them.
        let lock = lock::StoreLock::acquire(&path)?;
        let mut conn = writer_connection(&opts)?;
        let migrations_applied = migrate(&mut conn, &path)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Checkpoints run on their own thread (below), not inside the writer's commits.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| open_error(&path, e))?;
        let (mut recovery, last_seq) = recover(&conn, &opts)?;
        recovery.migrations_applied = migrations_applied;

        let (seq_tx, seq_rx) = watch::channel(last_seq);
        let (wtx, wrx) = mpsc::sync_channel::<Box<dyn Job>>(opts.queue_capacity.max(1));
        let wal = Arc::new(WalState::new());
        let first = Arc::new(lanes::FirstLane::new(opts.queue_capacity));
        let ring = Arc::new(events::EventRing::new(opts.event_ring, last_seq));
        let inbox = (wrx, Arc::clone(&first));
        let writer = spawn_writer(conn, inbox, (seq_tx, Arc::clone(&ring)), &opts, wal.clone())?;
        let mut threads = vec![writer];
        let (stop_tx, checkpointer) = spawn_checkpointer(&opts, wal)?;
        threads.push(checkpointer);
        let (rtx, readers) = spawn_readers(&opts)?;
        threads.extend(readers);
        Ok((
            SqliteStore {
                writes: Mutex::new(Some(wtx)),
                first,
                reads: rtx,
                stop_checkpoints: Mutex::new(Some(stop_tx)),
                threads: Mutex::new(threads),
                seq: seq_rx,
                events: ring,
                capacity: opts.queue_capacity.max(1),
                lock: Mutex::new(Some(lock)),
            },
            recovery,
        ))
    }

    /// Queues an urgent write: a caller is waiting on it (see the module docs).
    fn submit<I, O, F>(&self, input: I, f: F) -> Pending<O>
    where
        I: Send + 'static,
        O: Send + 'static,
        F: for<'w> FnMut(&mut write::Writer<'w>, &I) -> Result<O, JobError> + Send + 'static,
    {
        self.queue_write(input, f, Commit::Urgent, Lane::New)
    }

    /// Queues a write about work in flight (a claim, a send's result, a receipt, an MO) in the
    /// first lane (see `lanes`).
    fn submit_in_flight<I, O, F>(&self, input: I, f: F, commit: Commit) -> Pending<O>
    where
        I: Send + 'static,
        O: Send + 'static,
        F: for<'w> FnMut(&mut write::Writer<'w>, &I) -> Result<O, JobError> + Send + 'static,
    {
        self.queue_write(input, f, commit, Lane::InFlight)
    }

    fn queue_write<I, O, F>(&self, input: I, f: F, commit: Commit, lane: Lane) -> Pending<O>
    where
        I: Send + 'static,
        O: Send + 'static,
        F: for<'w> FnMut(&mut write::Writer<'w>, &I) -> Result<O, JobError> + Send + 'static,
    {
        let (tx, pending) = Pending::channel();
        let job: Box<dyn Job> = Box::new(JobImpl {
            input,
            f,
            out: None,
            tx,
            commit,
        });
        let guard = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sender) = guard.as_ref() else {
            job.finish(Some(StoreError::Closed));
            return pending;
        };
        if lane == Lane::InFlight {
            self.first.push(job, sender);
            return pending;
        }
        match sender.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => job.finish(Some(StoreError::Busy {
                capacity: self.capacity,
            })),
            Err(TrySendError::Disconnected(job)) => job.finish(Some(StoreError::Closed)),
        }
        pending
    }

    fn read<O, F>(&self, f: F) -> Pending<O>
    where
        O: Send + 'static,
        F: FnOnce(&mut Reader) -> Result<O, StoreError> + Send + 'static,
    {
        let (tx, pending) = Pending::channel();
        let job: ReadJob = Box::new(move |r: &mut Reader| {
            let _ = tx.send(f(r));
        });
        match self.reads.push(job) {
            Ok(()) => pending,
            Err(e) => Pending::ready(Err(e)),
        }
    }
}

/// The writer's connection, in WAL mode with the writer's pragmas (before migrations).
fn writer_connection(opts: &SqliteOptions) -> Result<Connection, StoreError> {
    let path = &opts.path;
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_error(
            path,
            format!("cannot switch to WAL (journal_mode is {mode})"),
        ));
    }
    conn.pragma_update(None, "cache_size", -i64::from(opts.cache_kib))
        .map_err(|e| open_error(path, e))?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(|e| open_error(path, e))?;
    // After a checkpoint, shrink the WAL file back so a burst does not leave it huge.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(|e| open_error(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| open_error(path, e))?;
    apply_settings(&conn, &opts.settings).map_err(|e| open_error(path, e))?;
    Ok(conn)
}

/// Re-queues what was in flight at the last stop; returns that and the last event sequence.
fn recover(conn: &Connection, opts: &SqliteOptions) -> Result<(Recovery, i64), StoreError> {
    // Prepared here once too, so a statement that does not compile fails the open.
    let mut writer =
        write::Writer::new(conn, opts.settings.clone()).map_err(|e| open_error(&opts.path, e))?;
    let recovery = writer.recover().map_err(|e| classify(&e))?;
    Ok((recovery, writer.last_seq().map_err(|e| classify(&e))?))
}

/// Starts the writer thread (group commit, see the module docs) on `conn`; it publishes the
/// committed events to the ring and then their highest seq to the watch.
fn spawn_writer(
    conn: Connection,
    (jobs, first): (Receiver<Box<dyn Job>>, Arc<lanes::FirstLane>),
    (seq, ring): (watch::Sender<i64>, Arc<events::EventRing>),
    opts: &SqliteOptions,
    wal: Arc<WalState>,
) -> Result<JoinHandle<()>, StoreError> {
    let limits = BatchLimits {
        max_writes: opts.max_batch.max(1),
        max_time: opts.max_batch_time,
        linger: opts.lazy_linger,
    };
    let settings = opts.settings.clone();
    let keep_events = opts.event_ring > 0;
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || match write::Writer::new(&conn, settings) {
            Ok(mut writer) => {
                // A ring that keeps nothing needs no copies of the events.
                if keep_events {
                    writer.publish_events_to(ring);
                }
                let inbox = Inbox {
                    rx: jobs,
                    first: &first,
                    run: std::cell::Cell::new(0),
                    held: std::cell::Cell::new(None),
                };
                writer_loop(writer, &inbox, limits, seq, &wal);
            }
            // Prepared fine a moment ago on the same connection; if it fails now, the
            // writes fail with `Closed` and the error is logged.
            Err(e) => tracing::error!(error = %e, "store writer could not start"),
        })
        .map_err(|e| open_error(&opts.path, e))
}

/// Starts the checkpoint thread (see [`checkpoint_loop`]) on its own connection; dropping the
/// returned sender stops it.
fn spawn_checkpointer(
    opts: &SqliteOptions,
    wal: Arc<WalState>,
) -> Result<(mpsc::Sender<()>, JoinHandle<()>), StoreError> {
    let path = &opts.path;
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let mut ckpt = Connection::open(path).map_err(|e| open_error(path, e))?;
    ckpt.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| open_error(path, e))?;
    apply_settings(&ckpt, &opts.settings).map_err(|e| open_error(path, e))?;
    // Read-only is enough to fdatasync it (see `checkpoint_loop`).
    let db_file = std::fs::File::open(path).map_err(|e| open_error(path, e))?;
    let thread = std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || checkpoint_loop(&mut ckpt, &db_file, &stop_rx, &wal))
        .map_err(|e| open_error(path, e))?;
    Ok((stop_tx, thread))
}

/// Starts the reader threads, each with its own read-only connection, sharing one queue.
fn spawn_readers(
    opts: &SqliteOptions,
) -> Result<(Arc<ReadQueue>, Vec<JoinHandle<()>>), StoreError> {
    let queue = Arc::new(ReadQueue::new(opts.queue_capacity.max(1)));
    let mut threads = Vec::new();
    for i in 0..opts.readers.max(1) {
        let spawned = Reader::open(&opts.path).and_then(|mut reader| {
            let q = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("store-reader-{i}"))
                .spawn(move || reader_loop(&mut reader, &q))
                .map_err(|e| open_error(&opts.path, e))
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                // The readers started so far end (and are joined) before the open fails.
                queue.close();
                for t in threads {
                    let _ = t.join();
                }
                return Err(e);
            }
        }
    }
    Ok((queue, threads))
}

fn reader_loop(reader: &mut Reader, jobs: &ReadQueue) {
    while let Some(job) = jobs.pop() {
        job(reader);
    }
}

fn writer_loop(
    mut w: write::Writer<'_>,
    rx: &Inbox<'_>,
    limits: BatchLimits,
    seq: watch::Sender<i64>,
    wal: &WalState,
) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(limits.max_writes);
    let mut last_batch = 0;
    while let Some(first) = rx.recv() {
        // Only at light load: after a bigger batch the writer has work coming anyway, and a
        // write that gates the next (a route's claim loop, an SMSC's receipt window) must not
        // be held back while the gateway is busy.
        let lazy = first.lazy() && last_batch <= LINGER_AFTER_BATCH;
        let alone = first.alone();
        batch.push(first);
        if lazy {
            linger(rx, &mut batch, limits);
        }
        let result = if alone {
            try_batch(&mut w, &mut batch)
        } else {
            fill_and_run(&mut w, rx, &mut batch, limits)
        };
        last_batch = batch.len();
        run_batch(&mut w, &mut batch, result);
        wal.commits.fetch_add(1, Ordering::Release);
        if let Some(s) = w.take_committed_seq() {
            seq.send_replace(s);
        }
        maybe_reset_wal(&mut w, wal);
    }
    // Every sender is gone: checkpoint so the file is self-contained at rest.
    w.checkpoint();
}

/// When a group commit stops taking more writes.
#[derive(Debug, Clone, Copy)]
struct BatchLimits {
    max_writes: usize,
    max_time: std::time::Duration,
    linger: std::time::Duration,
}

/// How long a batch runs before a waiting write about work in flight makes it commit (see
/// [`fill_and_run`]).
const IN_FLIGHT_CUT: std::time::Duration = std::time::Duration::from_micros(400);

/// The largest previous batch after which a lazy write still lingers (see [`writer_loop`]).
const LINGER_AFTER_BATCH: usize = 8;

/// The batch so far holds only lazy writes and the queue was empty: waits up to `linger` for
/// more, and stops at the first urgent write, when the batch is full or when every sender is
/// gone (the batch still runs).
fn linger(rx: &Inbox<'_>, batch: &mut Vec<Box<dyn Job>>, limits: BatchLimits) {
    let until = std::time::Instant::now() + limits.linger;
    while batch.len() < limits.max_writes {
        let Some(job) = rx.recv_until(until) else {
            return;
        };
        if job.alone() {
            rx.hold(job);
            return;
        }
        let urgent = !job.lazy();
        batch.push(job);
        if urgent {
            return;
        }
    }
}

/// Runs the batch's first write, then keeps taking queued writes and running them in the same
/// transaction until the queue is empty, the batch is full or `max_time` has passed; then
/// commits. Running writes as they are taken (rather than draining first) bounds how long a
/// write waits behind others: about `max_time` plus one commit.
fn fill_and_run(
    w: &mut write::Writer<'_>,
    rx: &Inbox<'_>,
    batch: &mut Vec<Box<dyn Job>>,
    limits: BatchLimits,
) -> Result<(), rusqlite::Error> {
    let started = std::time::Instant::now();
    w.begin()?;
    let mut next = 0;
    loop {
        while next < batch.len() {
            if let Err(e) = batch[next].run(w) {
                w.rollback();
                return Err(e);
            }
            next += 1;
        }
        if batch.len() >= limits.max_writes || started.elapsed() >= limits.max_time {
            break;
        }
        // A write about work in flight (a receipt whose SMSC's window waits for the answer)
        // arrived while this batch ran: commit what ran so far, so it waits for a short batch
        // rather than a full one (see `lanes`).
        if started.elapsed() >= IN_FLIGHT_CUT && rx.in_flight_waiting() {
            break;
        }
        match rx.try_recv() {
            Some(job) if job.alone() => {
                rx.hold(job);
                break;
            }
            Some(job) => batch.push(job),
            None => break,
        }
    }
    let committing = std::time::Instant::now();
    if let Err(e) = w.commit() {
        w.rollback();
        return Err(e);
    }
    // Per batch, not per write: two registry lookups for up to thousands of writes.
    metrics::histogram!(crate::metrics::STORE_COMMIT_SECONDS)
        .record(committing.elapsed().as_secs_f64());
    metrics::histogram!(crate::metrics::STORE_BATCH_SIZE).record(batch.len() as f64);
    Ok(())
}

/// What the checkpoint thread tells the writer: the WAL's size and how much of it is not yet
/// copied into the database file, in frames, after its last passive checkpoint, and when that
/// checkpoint ended.
#[derive(Debug)]
pub(crate) struct WalState {
    frames: AtomicI64,
    not_copied: AtomicI64,
    base: std::time::Instant,
    /// Microseconds after `base` at which the last background checkpoint ended.
    done_us: AtomicI64,
    /// Transactions the writer has ended (committed or not): the checkpoint thread skips a pass
    /// when none ended since a pass that left nothing to copy.
    commits: AtomicU64,
}

impl WalState {
    fn new() -> WalState {
        WalState {
            frames: AtomicI64::new(0),
            not_copied: AtomicI64::new(0),
            base: std::time::Instant::now(),
            done_us: AtomicI64::new(i64::MIN / 2),
            commits: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> i64 {
        i64::try_from(self.base.elapsed().as_micros()).unwrap_or(i64::MAX)
    }
}

/// WAL size (frames of 4 KiB) at which the writer finishes the checkpoint itself so that the
/// WAL starts over (~64 MiB).
const WAL_RESET_FRAMES: i64 = 16_384;
/// How little may be left to copy for the writer to do it (the rest was copied in the background).
const WAL_RESET_MAX_LEFT: i64 = 256;
/// How recent the background checkpoint must be for the writer to finish it: what the writer
/// copies is what was left plus what was committed since, and copying stalls every write
/// waiting behind it (a reset right after a background pass costs well under a millisecond;
/// one 50 ms later cost several, which showed in the accept latency's p99).
const WAL_RESET_FRESH_US: i64 = 3_000;

/// Copies committed WAL frames into the database file every 50 ms, off the writer thread (a
/// passive checkpoint never blocks the writer). Under a steady write load a passive checkpoint
/// never quite catches up, so the WAL would not start over; the writer does the last step
/// itself between two transactions (see `maybe_reset_wal`), when little is left to copy.
///
/// After each pass this thread also flushes the database file to disk. SQLite syncs the database
/// file only when a checkpoint copies the whole WAL, which under load is only the writer's final
/// step; that fsync then flushed everything the passes before it had copied (7 ms for a 64 MiB
/// WAL, 17 ms for 256 MiB on this machine's disk), and every accept waiting behind the writer
/// saw it: it was the store's whole p99 tail. Flushed here, off the writer, the final step only
/// has the last few pages to flush.
fn checkpoint_loop(
    conn: &mut Connection,
    db_file: &std::fs::File,
    stop: &Receiver<()>,
    wal: &WalState,
) {
    // Commits seen before the last pass that copied everything (None: copy on the next pass).
    let mut idle_at: Option<u64> = None;
    loop {
        match stop.recv_timeout(std::time::Duration::from_millis(50)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Stopped (the sender is dropped at close); the writer does the final checkpoint.
            _ => return,
        }
        // Nothing committed since a pass that left nothing to copy: nothing to copy or flush
        // (a light load otherwise pays a checkpoint and an fdatasync 20 times a second).
        let commits = wal.commits.load(Ordering::Acquire);
        if idle_at == Some(commits) {
            continue;
        }
        let passive = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        match passive {
            Ok((log, copied)) => {
                if let Err(e) = db_file.sync_data() {
                    tracing::warn!(error = %e, "store database file sync failed");
                }
                wal.frames.store(log, Ordering::Relaxed);
                wal.not_copied.store(log - copied, Ordering::Relaxed);
                idle_at = (log == copied).then_some(commits);
                wal.done_us.store(wal.now_us(), Ordering::Release);
            }
            Err(e) => tracing::warn!(error = %e, "store WAL checkpoint failed"),
        }
    }
}

/// Between transactions: when the WAL is big and the background checkpoint has copied nearly
/// all of it, copy the rest now (no other writer exists, so this checkpoint completes and the
/// next transaction starts the WAL over). The cost is bounded by `WAL_RESET_MAX_LEFT` frames
/// plus what was committed in the `WAL_RESET_FRESH_US` since the background pass.
fn maybe_reset_wal(w: &mut write::Writer<'_>, wal: &WalState) {
    let frames = wal.frames.load(Ordering::Relaxed);
    let left = wal.not_copied.load(Ordering::Relaxed);
    let fresh = wal.now_us() - wal.done_us.load(Ordering::Acquire) <= WAL_RESET_FRESH_US;
    if frames >= WAL_RESET_FRAMES && left <= WAL_RESET_MAX_LEFT && fresh {
        w.passive_checkpoint();
        wal.frames.store(0, Ordering::Relaxed);
    }
}

/// Resolves a batch after [`fill_and_run`]: every write gets the commit's outcome; after a bug
/// (not a storage condition) the writes are replayed one per transaction.
fn run_batch(
    w: &mut write::Writer<'_>,
    batch: &mut Vec<Box<dyn Job>>,
    result: Result<(), rusqlite::Error>,
) {
    match result {
        Ok(()) => {
            w.committed();
            for job in batch.drain(..) {
                job.finish(None);
            }
        }
        Err(e) => {
            w.rolled_back();
            let err = classify(&e);
            if err.is_overload() {
                tracing::warn!(error = %err, writes = batch.len(), "store batch failed");
                for job in batch.drain(..) {
                    job.finish(Some(classify(&e)));
                }
                return;
            }
            // A bug in one write must not fail the others: replay each on its own.
            tracing::error!(error = %err, "store batch failed; replaying writes one by one");
            for mut job in batch.drain(..) {
                match try_batch(w, std::slice::from_mut(&mut job)) {
                    Ok(()) => {
                        w.committed();
                        job.finish(None);
                    }
                    Err(e) => {
                        w.rolled_back();
                        job.finish(Some(classify(&e)));
                    }
                }
            }
        }
    }
}

fn try_batch(w: &mut write::Writer<'_>, jobs: &mut [Box<dyn Job>]) -> Result<(), rusqlite::Error> {
    w.begin()?;
    for job in jobs.iter_mut() {
        if let Err(e) = job.run(w) {
            w.rollback();
            return Err(e);
        }
    }
    if let Err(e) = w.commit() {
        w.rollback();
        return Err(e);
    }
    Ok(())
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl StoreBackend for SqliteStore {
    fn accept(&self, msg: NewMessage) -> Pending<Accepted> {
        self.submit(msg, |w, m| w.accept(m))
    }

    fn claim(&self, route: &str, limit: usize, now_ms: i64) -> Pending<Vec<QueuedPart>> {
        self.submit_in_flight(
            (route.to_string(), limit, now_ms),
            |w, (r, l, n)| w.claim(r, *l, *n),
            Commit::Lazy,
        )
    }

    fn acked(&self, ack: Ack) -> Pending<AckResult> {
        self.submit_in_flight(ack, |w, a| w.acked(a), Commit::Lazy)
    }

    fn failed(&self, failure: Failure) -> Pending<MessageState> {
        self.submit_in_flight(failure, |w, f| w.failed(f), Commit::Lazy)
    }

    fn record_receipt(&self, receipt: IncomingReceipt) -> Pending<ReceiptRecorded> {
        self.submit_in_flight(receipt, |w, r| w.record_receipt(r), Commit::Lazy)
    }

    fn record_mo(&self, mo: IncomingMo) -> Pending<MoRecorded> {
        self.submit_in_flight(mo, |w, m| w.record_mo(m), Commit::Urgent)
    }

    fn record_mo_fragment(&self, fragment: MoFragment) -> Pending<()> {
        self.submit_in_flight(fragment, |w, f| w.record_mo_fragment(f), Commit::Urgent)
    }

    fn record_mo_set(
        &self,
        mo: IncomingMo,
        set: MoSet,
        incomplete: Option<&'static str>,
    ) -> Pending<MoRecorded> {
        self.submit_in_flight(
            (mo, set, incomplete),
            |w, (m, s, i)| w.record_mo_set(m, s, *i),
            Commit::Urgent,
        )
    }

    fn mo_fragments(&self) -> Pending<Vec<MoFragment>> {
        self.read(|r| r.mo_fragments())
    }

    fn expire(&self, now_ms: i64, receipt_wait_ms: i64, limit: usize) -> Pending<Expired> {
        let input = (now_ms, receipt_wait_ms, limit);
        self.queue_write(
            input,
            |w, (n, r, l)| w.expire(*n, *r, *l),
            Commit::Lazy,
            Lane::New,
        )
    }

    fn resplit(&self, id: MessageId, split: String, parts: Vec<NewPart>) -> Pending<()> {
        self.submit_in_flight(
            (id, split, parts),
            |w, (i, s, p)| w.resplit(*i, s, p),
            Commit::Urgent,
        )
    }

    fn prune(&self, retention: Retention, now_ms: i64, batch: usize) -> Pending<usize> {
        let input = (retention, now_ms, batch);
        self.queue_write(
            input,
            |w, (r, n, b)| w.prune(r, *n, *b),
            Commit::Lazy,
            Lane::New,
        )
    }

    fn reload(&self, settings: Settings) -> Pending<()> {
        self.queue_write(settings, |w, s| w.reload(s), Commit::Alone, Lane::New)
    }

    fn optout_add(&self, number: String, scope: String, now_ms: i64) -> Pending<bool> {
        self.submit((number, scope, now_ms), |w, (n, s, at)| {
            w.optout_add(n, s, *at)
        })
    }

    fn optout_remove(&self, number: String, scope: String) -> Pending<bool> {
        self.submit((number, scope), |w, (n, s)| w.optout_remove(n, s))
    }

    fn message(&self, id: MessageId) -> Pending<Option<MessageView>> {
        self.read(move |r| r.message(id))
    }

    /// From memory when the ring holds everything after `after` (no reader thread, no SQL);
    /// otherwise from the store.
    fn events_after(&self, after: i64, limit: usize) -> Pending<Vec<Event>> {
        if let Some(events) = self.events.after(after, limit) {
            return Pending::ready(Ok(events));
        }
        self.read(move |r| r.events_after(after, limit))
    }

    fn queue_depth(&self, now_ms: i64) -> Pending<Vec<crate::store::QueueDepth>> {
        self.read(move |r| r.queue_depth(now_ms))
    }

    fn is_opted_out(&self, number: &str, scope: &str) -> Pending<Option<String>> {
        let (number, scope) = (number.to_string(), scope.to_string());
        self.read(move |r| r.is_opted_out(&number, &scope))
    }

    fn optout_list(
        &self,
        after: String,
        after_scope: Option<String>,
        limit: usize,
    ) -> Pending<Vec<OptOutEntry>> {
        self.read(move |r| r.optout_list(&after, after_scope.as_deref(), limit))
    }

    fn final_counts(&self, since_ms: i64) -> Pending<Vec<(MessageState, u64)>> {
        self.read(move |r| r.final_counts(since_ms))
    }

    fn stats(&self) -> Pending<StoreStats> {
        self.read(|r| r.stats())
    }

    fn last_seq(&self) -> watch::Receiver<i64> {
        self.seq.clone()
    }

    /// One process owns every SMSC: the owned list changes nothing.
    fn claim_owned(
        &self,
        route: &str,
        _owned: Vec<(String, i64)>,
        limit: usize,
        now_ms: i64,
    ) -> Pending<Vec<QueuedPart>> {
        self.claim(route, limit, now_ms)
    }

    /// No targets are kept: nothing to move.
    fn retarget(&self, _route: &str, _from: &str, _to: &str, _limit: usize) -> Pending<usize> {
        Pending::ready(Ok(0))
    }

    /// Recovery at open requeues what was in flight; no other instance can hold a part.
    fn requeue_in_flight(&self, _smsc: &str, _epoch: i64) -> Pending<usize> {
        Pending::ready(Ok(0))
    }

    fn close(&self) {
        drop(self.writes.lock().unwrap_or_else(|p| p.into_inner()).take());
        self.reads.close();
        drop(
            self.stop_checkpoints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a store thread panicked");
            }
        }
        // Last: another daemon may take the file only when nothing of ours writes to it.
        drop(self.lock.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

/// The schema version this build writes (its migrations' count).
pub fn current_version() -> i64 {
    schema::MIGRATIONS.len() as i64
}
