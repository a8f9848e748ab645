//! The writer task: group commit on one connection. It takes the first queued write command
//! and every other one already queued (up to `max_batch`), runs them all in ONE transaction
//! and only after COMMIT answers each caller. Then it numbers the events the batch added (the
//! sequencer, see `events`) and puts their sequence numbers into the answers.
//!
//! A statement failing aborts the transaction: the batch is rolled back and its commands run
//! again one per transaction, so one bad command fails only its own caller. The database being
//! unreachable fails the whole batch with [`StoreError::Unavailable`] and drops the connection;
//! the next batch takes a new one from the pool, so the writer recovers by itself when the
//! database comes back. Owns the writer's connection and its in-memory claim epochs; must never
//! answer a write before its COMMIT.

use super::write::W;
use super::{Client, PostgresOptions, db_error, events, is_unavailable, pool_error};
use crate::store::{
    Accepted, Ack, AckResult, Expired, Failure, IncomingMo, IncomingReceipt, MessageId,
    MessageState, MoFragment, MoRecorded, MoSet, NewMessage, NewPart, QueuedPart, ReceiptRecorded,
    Retention, Settings, StoreError,
};
use deadpool_postgres::{Object, Pool};
use futures_util::future::try_join;
use std::collections::HashMap;
use tokio::sync::{mpsc, watch};

/// A write command's input.
pub(super) enum Op {
    Accept(NewMessage),
    Claim {
        route: String,
        /// `None`: every ready part of the route (plain `claim`); else (SMSC, lease epoch).
        owned: Option<Vec<(String, i64)>>,
        limit: usize,
        now_ms: i64,
    },
    Acked(Ack),
    Failed(Failure),
    Receipt(IncomingReceipt),
    /// An MO; with its set (and why it was given up) when it ends a concatenated set.
    Mo(IncomingMo, Option<(MoSet, Option<&'static str>)>),
    MoFragment(MoFragment),
    Expire(i64, i64, usize),
    Resplit(MessageId, String, Vec<NewPart>),
    Prune(Retention, i64, usize),
    Reload(Settings),
    OptoutAdd(String, String, i64),
    OptoutRemove(String, String),
    Retarget {
        route: String,
        from: String,
        to: String,
        limit: usize,
    },
    RequeueInFlight(String, i64),
}

/// A write command's answer. Event sequence numbers inside hold the event's row id until the
/// batch is sequenced (see [`patch_seqs`]).
pub(super) enum Out {
    Accepted(Accepted),
    Parts(Vec<QueuedPart>),
    Ack(AckResult),
    State(MessageState),
    Receipt(ReceiptRecorded),
    Mo(MoRecorded),
    Unit(()),
    Expired(Expired),
    Count(usize),
    Bool(bool),
}

type Reply = Box<dyn FnOnce(Result<Out, StoreError>) + Send>;

/// A queued write: its input, its answer once run, and whom to answer.
pub(super) struct Command {
    pub(super) op: Op,
    pub(super) out: Option<Result<Out, StoreError>>,
    reply: Reply,
}

impl Command {
    pub(super) fn new(op: Op, reply: Reply) -> Command {
        Command {
            op,
            out: None,
            reply,
        }
    }

    pub(super) fn finish(self, result: Result<Out, StoreError>) {
        (self.reply)(result);
    }
}

/// A domain error (bad request: the batch goes on) or a database error (the batch is rolled
/// back).
pub(super) enum JobError {
    Domain(StoreError),
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for JobError {
    fn from(e: tokio_postgres::Error) -> JobError {
        JobError::Db(e)
    }
}

/// A part: (message id, part number).
type PartKey = (i64, i32);

/// The claim epochs of the parts this instance claimed and has not answered yet (the claim
/// guard's memory: an answer applies only under the claim it remembers), with a journal of the
/// current transaction's changes, so that a rolled-back batch restores them and a replayed
/// acknowledgement still finds its claim. Dispatch answers every part it claims, which removes
/// its entry; a part requeued by another instance is removed by the (stale) answer.
#[derive(Default)]
pub(super) struct Claims {
    map: HashMap<PartKey, Option<i64>>,
    undo: Vec<(PartKey, Option<Option<i64>>)>,
}

impl Claims {
    /// Remembers a claim made in the current transaction.
    pub(super) fn insert(&mut self, part: PartKey, epoch: Option<i64>) {
        let before = self.map.insert(part, epoch);
        self.undo.push((part, before));
    }

    /// Forgets a claim (it is being answered); returns it: `None` when not claimed here.
    pub(super) fn take(&mut self, part: PartKey) -> Option<Option<i64>> {
        let before = self.map.remove(&part);
        if before.is_some() {
            self.undo.push((part, before));
        }
        before
    }

    fn committed(&mut self) {
        self.undo.clear();
    }

    fn rolled_back(&mut self) {
        while let Some((part, before)) = self.undo.pop() {
            match before {
                Some(epoch) => self.map.insert(part, epoch),
                None => self.map.remove(&part),
            };
        }
    }
}

/// What the writer keeps between batches.
pub(super) struct WriterCtx {
    pool: Pool,
    pub(super) url: String,
    pub(super) instance: String,
    pub(super) settings: Settings,
    /// Claim epochs of the parts this instance claimed and has not answered yet.
    pub(super) claims: Claims,
    max_batch: usize,
    /// Committed batches with events, to the sequencer task that numbers them and answers.
    sequencer: mpsc::UnboundedSender<Sequenced>,
}

impl WriterCtx {
    pub(super) fn new(
        opts: &PostgresOptions,
        pool: Pool,
        url: String,
        sequencer: mpsc::UnboundedSender<Sequenced>,
    ) -> WriterCtx {
        WriterCtx {
            pool,
            url,
            instance: opts.instance.clone(),
            settings: opts.settings.clone(),
            claims: Claims::default(),
            max_batch: opts.max_batch.max(1),
            sequencer,
        }
    }
}

/// Runs batches until every sender is gone and the queue is drained.
pub(super) async fn writer_loop(
    mut ctx: WriterCtx,
    client: Object,
    mut rx: mpsc::Receiver<Command>,
) {
    let mut conn = Some(client);
    let mut batch = Vec::with_capacity(64);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < ctx.max_batch {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        run_batch(&mut ctx, &mut conn, &mut batch).await;
    }
}

/// The writer's connection, a new one from the pool after the last was lost.
async fn connection<'a>(
    ctx: &WriterCtx,
    conn: &'a mut Option<Object>,
) -> Result<&'a Object, StoreError> {
    if conn.as_ref().is_some_and(|c| c.is_closed()) {
        *conn = None;
    }
    if conn.is_none() {
        *conn = Some(ctx.pool.get().await.map_err(|e| pool_error(e, &ctx.url))?);
    }
    conn.as_ref()
        .ok_or_else(|| StoreError::Internal("no writer connection".into()))
}

/// One batch: run, commit, sequence, answer (see the module docs).
async fn run_batch(ctx: &mut WriterCtx, conn: &mut Option<Object>, batch: &mut Vec<Command>) {
    let client = match connection(ctx, conn).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), "store batch failed");
            fail_all(batch, &e);
            return;
        }
    };
    let started = std::time::Instant::now();
    match try_batch(ctx, client, batch).await {
        Ok(events) => {
            metrics::histogram!(crate::metrics::STORE_COMMIT_SECONDS)
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!(crate::metrics::STORE_BATCH_SIZE).record(batch.len() as f64);
            hand_over(ctx, batch, events);
        }
        Err(e) if is_unavailable(&e) => {
            let err = db_error(&e, &ctx.url);
            tracing::warn!(error = %err, writes = batch.len(), "store batch failed");
            fail_all(batch, &err);
            *conn = None;
        }
        Err(e) => {
            tracing::error!(error = %db_error(&e, &ctx.url), "store batch failed; replaying writes one by one");
            replay_one_by_one(ctx, conn, batch).await;
        }
    }
}

fn fail_all(batch: &mut Vec<Command>, e: &StoreError) {
    for cmd in batch.drain(..) {
        cmd.finish(Err(copy_error(e)));
    }
}

/// The same error for another caller (`StoreError` is not `Clone`: it may hold paths).
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable { kind, detail } => StoreError::Unavailable {
            kind,
            detail: detail.clone(),
        },
        StoreError::Busy { capacity } => StoreError::Busy {
            capacity: *capacity,
        },
        StoreError::Closed => StoreError::Closed,
        other => StoreError::Internal(other.to_string()),
    }
}

async fn replay_one_by_one(
    ctx: &mut WriterCtx,
    conn: &mut Option<Object>,
    batch: &mut Vec<Command>,
) {
    for cmd in std::mem::take(batch) {
        let mut one = vec![cmd];
        let client = match connection(ctx, conn).await {
            Ok(c) => c,
            Err(e) => {
                fail_all(&mut one, &e);
                continue;
            }
        };
        match try_batch(ctx, client, &mut one).await {
            Ok(events) => hand_over(ctx, &mut one, events),
            Err(e) => {
                if is_unavailable(&e) {
                    *conn = None;
                }
                fail_all(&mut one, &db_error(&e, &ctx.url));
            }
        }
    }
}

/// BEGIN, every command (consecutive accepts together, runs of acknowledgements together),
/// COMMIT. Returns the ids of the events the transaction inserted. Rolls back on a database
/// error (and restores the claim memory).
async fn try_batch(
    ctx: &mut WriterCtx,
    client: &Client,
    batch: &mut [Command],
) -> Result<Vec<i64>, tokio_postgres::Error> {
    // BEGIN and every advisory lock the batch's receipts and acknowledgements need, in key
    // order (two transactions taking several never deadlock): one round trip.
    let locks = super::receipts::batch_locks(batch);
    let begun = if locks.is_empty() {
        client.batch_execute("BEGIN").await
    } else {
        match client.prepare_cached(super::receipts::LOCKS).await {
            Ok(st) => try_join(client.batch_execute("BEGIN"), client.query(&st, &[&locks]))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        }
    };
    if let Err(e) = begun {
        if !client.is_closed() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        return Err(e);
    }
    let mut w = W::new(client, ctx);
    let result = run_all(&mut w, batch).await;
    let events = std::mem::take(&mut w.events);
    let result = match result {
        Ok(()) => client.batch_execute("COMMIT").await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        ctx.claims.rolled_back();
        for cmd in batch.iter_mut() {
            cmd.out = None;
        }
        if !client.is_closed() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        return Err(e);
    }
    ctx.claims.committed();
    Ok(events)
}

async fn run_all(w: &mut W<'_>, batch: &mut [Command]) -> Result<(), tokio_postgres::Error> {
    let mut i = 0;
    while i < batch.len() {
        let accepts = batch[i..]
            .iter()
            .take_while(|c| matches!(c.op, Op::Accept(_)))
            .count();
        if accepts > 0 {
            w.accept_many(&mut batch[i..i + accepts]).await?;
            i += accepts;
            continue;
        }
        let receipts = super::receipts::receipt_run(&batch[i..]);
        if receipts > 0 {
            w.receipt_many(&mut batch[i..i + receipts]).await?;
            i += receipts;
            continue;
        }
        let acks = super::receipts::ack_run(&batch[i..]);
        if acks > 0 {
            w.acked_many(&mut batch[i..i + acks]).await?;
            i += acks;
            continue;
        }
        let cmd = &mut batch[i];
        cmd.out = Some(match w.run(&cmd.op).await {
            Ok(o) => Ok(o),
            Err(JobError::Domain(e)) => Err(e),
            Err(JobError::Db(e)) => return Err(e),
        });
        i += 1;
    }
    Ok(())
}

/// A committed batch whose answers wait for its events' numbers.
pub(super) struct Sequenced {
    batch: Vec<Command>,
    events: Vec<i64>,
}

/// After COMMIT: a batch without events is answered at once; one with events goes to the
/// sequencer task ([`sequencer_loop`]), so the writer starts its next batch while the events
/// are numbered.
fn hand_over(ctx: &WriterCtx, batch: &mut Vec<Command>, events: Vec<i64>) {
    let batch = std::mem::take(batch);
    if events.is_empty() {
        answer(batch, &HashMap::new());
        return;
    }
    if let Err(mpsc::error::SendError(s)) = ctx.sequencer.send(Sequenced { batch, events }) {
        // No sequencer (closing): committed all the same; the answers carry 0.
        answer(s.batch, &HashMap::new());
    }
}

/// Answers every caller of a committed batch, event numbers patched in.
fn answer(batch: Vec<Command>, seqs: &HashMap<i64, i64>) {
    for mut cmd in batch {
        let out = cmd
            .out
            .take()
            .unwrap_or_else(|| Err(StoreError::Internal("write was not run".into())));
        cmd.finish(out.map(|o| patch_seqs(o, seqs)));
    }
}

/// The sequencer task: takes every committed batch queued (a burst), numbers their events in
/// one sequencer transaction on its own connection, publishes the last sequence number and
/// answers their callers. Ends once the writer is gone and its batches are answered.
pub(super) async fn sequencer_loop(
    pool: Pool,
    url: String,
    client: Object,
    seq: watch::Sender<i64>,
    mut rx: mpsc::UnboundedReceiver<Sequenced>,
) {
    let mut conn = Some(client);
    let mut burst = Vec::new();
    while let Some(first) = rx.recv().await {
        burst.push(first);
        while let Ok(more) = rx.try_recv() {
            burst.push(more);
        }
        let ids: Vec<i64> = burst
            .iter()
            .flat_map(|s| s.events.iter().copied())
            .collect();
        if conn.as_ref().is_some_and(|c| c.is_closed()) {
            conn = None;
        }
        if conn.is_none() {
            conn = pool.get().await.ok();
        }
        let mut seqs = HashMap::new();
        match conn.as_ref() {
            Some(client) => match events::sequence_ids(client, &ids).await {
                Ok(s) => seqs = s,
                // Committed all the same: the poll numbers them; the answers carry 0.
                Err(e) => {
                    tracing::warn!(error = %db_error(&e, &url), "events not numbered yet");
                    if client.is_closed() {
                        conn = None;
                    }
                }
            },
            None => tracing::warn!("events not numbered yet: no sequencer connection"),
        }
        if let Some(&max) = seqs.values().max() {
            seq.send_if_modified(|s| {
                let newer = max > *s;
                *s = (*s).max(max);
                newer
            });
        }
        for s in burst.drain(..) {
            answer(s.batch, &seqs);
        }
    }
}

/// Replaces event row ids by their sequence numbers (0 when not numbered yet).
fn patch_seqs(out: Out, seqs: &HashMap<i64, i64>) -> Out {
    let seq = |id: i64| seqs.get(&id).copied().unwrap_or(0);
    match out {
        Out::Receipt(ReceiptRecorded::Matched(mut a)) => {
            a.seq = seq(a.seq);
            Out::Receipt(ReceiptRecorded::Matched(a))
        }
        Out::Receipt(ReceiptRecorded::Rerouted {
            mut applied,
            reroute,
        }) => {
            applied.seq = seq(applied.seq);
            Out::Receipt(ReceiptRecorded::Rerouted { applied, reroute })
        }
        Out::Ack(mut a) => {
            for r in &mut a.held_receipts {
                r.seq = seq(r.seq);
            }
            Out::Ack(a)
        }
        Out::Mo(mut m) => {
            m.seq = seq(m.seq);
            Out::Mo(m)
        }
        other => other,
    }
}

impl W<'_> {
    /// Runs one command (accepts go through [`W::accept_many`]).
    async fn run(&mut self, op: &Op) -> Result<Out, JobError> {
        Ok(match op {
            Op::Accept(_) => {
                return Err(JobError::Domain(StoreError::Internal(
                    "accepts run through accept_many".into(),
                )));
            }
            Op::Claim {
                route,
                owned,
                limit,
                now_ms,
            } => Out::Parts(self.claim(route, owned.as_deref(), *limit, *now_ms).await?),
            Op::Acked(_) => {
                return Err(JobError::Domain(StoreError::Internal(
                    "acknowledgements run through acked_many".into(),
                )));
            }
            Op::Failed(f) => Out::State(self.failed(f).await?),
            Op::Receipt(_) => {
                return Err(JobError::Domain(StoreError::Internal(
                    "receipts run through receipt_many".into(),
                )));
            }
            Op::Mo(m, set) => Out::Mo(self.record_mo(m, set.as_ref()).await?),
            Op::MoFragment(f) => Out::Unit(self.record_mo_fragment(f).await?),
            Op::Expire(now, wait, limit) => Out::Expired(self.expire(*now, *wait, *limit).await?),
            Op::Resplit(id, split, parts) => Out::Unit(self.resplit(*id, split, parts).await?),
            Op::Prune(r, now, batch) => Out::Count(self.prune(r, *now, *batch).await?),
            Op::Reload(s) => {
                self.ctx.settings = s.clone();
                Out::Unit(())
            }
            Op::OptoutAdd(n, scope, at) => Out::Bool(self.optout_add(n, scope, *at).await?),
            Op::OptoutRemove(n, scope) => Out::Bool(self.optout_remove(n, scope).await?),
            Op::Retarget {
                route,
                from,
                to,
                limit,
            } => Out::Count(self.retarget(route, from, to, *limit).await?),
            Op::RequeueInFlight(smsc, epoch) => {
                Out::Count(self.requeue_in_flight(smsc, *epoch).await?)
            }
        })
    }
}
