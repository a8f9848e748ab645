//! The writer connection and every write command. Runs on the writer thread only, inside the
//! batch transaction opened by `run_batch`; commands never commit themselves. Commands validate
//! their input before writing anything, so a domain error (unknown part, bad input) leaves no
//! partial write behind in the shared transaction. The receipt path (recording, matching,
//! applying, rerouting, held receipts) is in `receipts`; the frequency caps of an accept (checked
//! before the insert, counted after it, in the same transaction) in `caps`. Each event row
//! written is also kept in memory until the transaction ends: published to the subscribers'
//! ring (`events`) when it commits, dropped when it rolls back.

mod caps;
pub(crate) mod receipts;

use super::JobError;
use super::events::EventRing;
use super::sql::{self, sql};
use crate::receipt;
use crate::store::id::IdGen;
use crate::store::{
    Accepted, Ack, AckResult, Disposition, Event, Expired, Failure, IncomingMo, MessageId,
    MessageState, MoFragment, MoRecorded, MoSet, NewMessage, NewPart, OptOutChange, PartRef,
    PartState, QueuedPart, Recovery, Retention, Settings, StoreError, aggregate,
};
use receipts::HeldFilter;
use rusqlite::{Connection, OptionalExtension, Statement, params};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The hot path's statements, prepared once. (rusqlite's statement cache hashes the SQL text at
/// every use; measured at ~6% of the writer's time.)
struct Stmts<'c> {
    begin: Statement<'c>,
    commit: Statement<'c>,
    event: Statement<'c>,
    settle: Statement<'c>,
    insert_part: Statement<'c>,
    claim_send: Statement<'c>,
    claim_select: Statement<'c>,
    part_states: Statement<'c>,
    reopen: Statement<'c>,
    part_info: Statement<'c>,
    ack: Statement<'c>,
    receipt_part: Statement<'c>,
    match_key: Statement<'c>,
    insert_log: Statement<'c>,
    insert_message: Statement<'c>,
}

impl<'c> Stmts<'c> {
    fn prepare(conn: &'c Connection) -> rusqlite::Result<Stmts<'c>> {
        Ok(Stmts {
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            event: conn.prepare("INSERT INTO event (at, kind, message_id, body) VALUES (?1, ?2, ?3, ?4)")?,
            settle: conn.prepare("UPDATE message SET state = ?2,
                    submitted_at = CASE WHEN ?3 THEN coalesce(submitted_at, ?7) ELSE submitted_at END,
                    done_at = CASE WHEN ?4 THEN coalesce(done_at, ?6) ELSE NULL END,
                    text = CASE WHEN ?5 THEN NULL ELSE text END
                 WHERE id = ?1")?,
            // A held message's parts are inserted `waiting` until its `held_until` (?12), like a
            // retry; the others `queued` (?12 NULL).
            insert_part: conn.prepare(sql!("INSERT INTO part (message_id, n, route, priority, parts, dlr, state, data_coding,
                esm_class, sar_ref, segment, valid_until, ready_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                CASE WHEN ?12 IS NULL THEN {part:queued} ELSE {part:waiting} END,
                ?7, ?8, ?9, ?10, ?11, coalesce(?12, 0))"))?,
            // One statement per part: measured cheaper than one `UPDATE … WHERE (message_id, n)
            // IN (the same ordered, limited select)`, which sorts again.
            claim_send: conn.prepare(sql!("UPDATE part SET state = {part:sending}, attempts = attempts + 1
                 WHERE message_id = ?1 AND n = ?2"))?,
            part_states: conn.prepare("SELECT state, acked_at, dlr FROM part WHERE message_id = ?1")?,
            reopen: conn.prepare(sql!("UPDATE message SET state = {message:queued}, done_at = NULL
                 WHERE id = ?1 AND state != {message:queued}"))?,
            claim_select: conn.prepare(sql::QUEUE_HEAD.get())?,
            part_info: conn.prepare("SELECT state, parts, dlr, acked_at FROM part WHERE message_id = ?1 AND n = ?2")?,
            // `state <= waiting`: the pending states (queued, sending, waiting). A range rather
            // than `IN (…)`, which builds an ephemeral table at every execution.
            // `smsc_key` is cleared: the key is derived from `smsc_id` (only rows acknowledged
            // before migration 9 store it), and a stale one would hide the part from its receipt.
            ack: conn.prepare(sql!("UPDATE part SET state = {part:submitted}, smsc = ?3, smsc_id = ?4,
                    smsc_hash = ?5, smsc_key = NULL,
                    last_status = 0, acked_at = ?6
                 WHERE message_id = ?1 AND n = ?2 AND state <= {part:waiting}"))?,
            receipt_part: conn.prepare("UPDATE part SET state = ?3,
                    stat = CASE WHEN ?9 THEN ?4 ELSE stat END, err = CASE WHEN ?9 THEN ?5 ELSE err END,
                    done_at = CASE WHEN ?6 THEN ?7 ELSE done_at END,
                    receipts = coalesce(receipts || ',', '') || ?8
                 WHERE message_id = ?1 AND n = ?2")?,
            match_key: conn.prepare(sql::RECEIPT_PART.get())?,
            insert_log: conn.prepare("INSERT INTO dlr_log (at, smsc, smsc_id, smsc_key, fp, raw, tlv_state, tlv_err,
                    stat, err, submit_ts, done_ts, outcome, message_id, part_n)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)")?,
            insert_message: conn.prepare(sql!("INSERT INTO message (id, idem_key, dest, sender, route, class, priority,
                    valid_until, encoding, split, options, dlr, tags, text, parts, state, accepted_at,
                    held_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, {message:queued}, ?16,
                    ?17)
                 ON CONFLICT (idem_key) WHERE idem_key IS NOT NULL DO NOTHING"))?,
        })
    }
}

pub(crate) struct Writer<'c> {
    conn: &'c Connection,
    st: Stmts<'c>,
    ids: IdGen,
    settings: Settings,
    /// Highest event seq written in the current transaction.
    batch_seq: Option<i64>,
    /// Highest event seq committed and not yet published.
    committed_seq: Option<i64>,
    /// The events written in the current transaction, published to `ring` once it commits.
    batch_events: Vec<Event>,
    /// Where committed events go for subscribers (none while the store opens).
    ring: Option<Arc<EventRing>>,
    /// The current transaction deleted event rows: the ring forgets what it holds at the commit.
    events_deleted: bool,
    /// The last COMMIT failed: it may have been made durable all the same (see `events`).
    commit_failed: bool,
    /// Settings to apply once the current transaction is committed.
    pending_settings: Option<Settings>,
    held: HeldFilter,
    /// (parts, dlr) of parts handed out by `claim` and not yet answered, so the acknowledgement
    /// (hot path) needs no read. At most `CLAIMED_MAX` entries; a part not in it is read.
    claimed: HashMap<(i64, u8), (i64, bool)>,
}

/// Deletes a batch of events older than ?1 (the newest always stays).
const EVENT_PRUNE: &str = "DELETE FROM event WHERE seq IN (SELECT seq FROM event WHERE at < ?1
    AND seq < (SELECT max(seq) FROM event) ORDER BY seq LIMIT ?2)";

/// Bound on [`Writer::claimed`] (in-flight parts are bounded by the SMPP windows, far below).
const CLAIMED_MAX: usize = 65_536;

fn part_state(c: i64) -> Result<PartState, JobError> {
    PartState::from_code(c)
        .ok_or_else(|| JobError::Domain(StoreError::Internal(format!("bad part state {c}"))))
}

fn not_found(p: PartRef) -> JobError {
    JobError::Domain(StoreError::part_not_found(p))
}

fn message_not_found(id: MessageId) -> JobError {
    JobError::Domain(StoreError::message_not_found(id))
}

/// What every part of a message repeats from it (so the queue and the sweeps need no join).
#[derive(Clone, Copy)]
struct PartFields<'a> {
    route: &'a str,
    priority: u8,
    dlr: bool,
    valid_until: Option<i64>,
    /// Held until then (a send window, `send_at`): the parts start `waiting` with `ready_at`
    /// at it, so the claims' wake-up releases them.
    held_until: Option<i64>,
}

/// What the hot path knows about a part without reading its message.
#[derive(Clone, Copy)]
struct PartInfo {
    state: PartState,
    parts: i64,
    dlr: bool,
    /// When an SMSC acknowledged it (the message's `submitted_at` when it settles).
    acked_at: Option<i64>,
}

impl<'c> Writer<'c> {
    pub(crate) fn new(conn: &'c Connection, settings: Settings) -> rusqlite::Result<Writer<'c>> {
        let last: Option<i64> = conn.query_row("SELECT max(id) FROM message", [], |r| r.get(0))?;
        let held = HeldFilter::load(conn)?;
        Ok(Writer {
            conn,
            st: Stmts::prepare(conn)?,
            ids: IdGen::starting_after(last.unwrap_or(0) as u64),
            settings,
            batch_seq: None,
            committed_seq: None,
            batch_events: Vec::new(),
            ring: None,
            events_deleted: false,
            commit_failed: false,
            pending_settings: None,
            held,
            claimed: HashMap::new(),
        })
    }

    /// Committed events go to `ring` from now on (see [`super::events`]).
    pub(crate) fn publish_events_to(&mut self, ring: Arc<EventRing>) {
        self.ring = Some(ring);
    }

    pub(crate) fn begin(&mut self) -> rusqlite::Result<()> {
        self.batch_seq = None;
        self.batch_events.clear();
        self.events_deleted = false;
        self.st.begin.execute([])?;
        Ok(())
    }

    pub(crate) fn commit(&mut self) -> rusqlite::Result<()> {
        let done = self.st.commit.execute([]);
        self.commit_failed = done.is_err();
        done.map(drop)
    }

    pub(crate) fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            // After SQLITE_FULL or an I/O error SQLite may already have rolled back; a failing
            // ROLLBACK here changes nothing.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    pub(crate) fn committed(&mut self) {
        if let Some(s) = self.pending_settings.take()
            && let Err(e) = super::apply_settings(self.conn, &s)
        {
            tracing::error!(error = %e, "store settings could not be applied");
        }
        if let Some(s) = self.batch_seq.take() {
            self.committed_seq = Some(self.committed_seq.map_or(s, |c| c.max(s)));
        }
        // Before the callers hear back and before the sequence watch moves.
        let events = std::mem::take(&mut self.batch_events);
        if let Some(ring) = &self.ring {
            if std::mem::take(&mut self.events_deleted) {
                ring.reset();
            } else {
                ring.publish(events);
            }
        }
    }

    pub(crate) fn rolled_back(&mut self) {
        self.batch_seq = None;
        // Nothing of a rolled-back transaction is published.
        self.batch_events.clear();
        self.events_deleted = false;
        if std::mem::take(&mut self.commit_failed)
            && let Some(ring) = &self.ring
        {
            ring.reset();
        }
        self.pending_settings = None;
    }

    pub(crate) fn take_committed_seq(&mut self) -> Option<i64> {
        self.committed_seq.take()
    }

    pub(crate) fn checkpoint(&mut self) {
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "store checkpoint at close failed");
        }
    }

    pub(crate) fn passive_checkpoint(&mut self) {
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::warn!(error = %e, "store checkpoint failed");
        }
    }

    pub(crate) fn last_seq(&self) -> rusqlite::Result<i64> {
        self.conn
            .query_row("SELECT coalesce(max(seq), 0) FROM event", [], |r| r.get(0))
    }

    /// Re-queues what was in flight when the store was last closed (or the process died).
    pub(crate) fn recover(&mut self) -> rusqlite::Result<Recovery> {
        let requeued = self.conn.execute(
            sql!(
                "UPDATE part SET state = {part:queued}, maybe_dup = 1 WHERE state = {part:sending}"
            ),
            [],
        )?;
        let queued: i64 = self
            .conn
            .query_row(sql::QUEUED_COUNT.get(), [], |r| r.get(0))?;
        Ok(Recovery {
            requeued_in_flight: requeued as u64,
            queued: queued as u64,
            migrations_applied: 0,
        })
    }

    fn event(
        &mut self,
        kind: &str,
        message: Option<MessageId>,
        body: &str,
        now: i64,
    ) -> Result<i64, JobError> {
        let st = &mut self.st.event;
        st.execute(params![now, kind, message.map(MessageId::as_i64), body])?;
        let seq = self.conn.last_insert_rowid();
        self.batch_seq = Some(self.batch_seq.map_or(seq, |s| s.max(seq)));
        if self.ring.is_some() {
            self.batch_events.push(Event {
                seq,
                kind: kind.to_string(),
                at: now,
                body: body.to_string(),
            });
        }
        Ok(seq)
    }

    /// Recomputes a message's state from all its parts and stores it. Returns (before, after);
    /// "before" is exact only when "after" is final (the only case callers look at it).
    /// (The hot path uses [`Self::settle`] for single-part messages instead.)
    ///
    /// The parts are read first: while the message is not final (and keeps its text), its row
    /// stays `queued` and readers derive the rest from the parts (see `schema`), so the row is
    /// neither read nor rewritten, which makes each acknowledgement and intermediate receipt
    /// of a multipart message one read instead of a read, a read and a write.
    fn recompute(
        &mut self,
        id: MessageId,
        now: i64,
    ) -> Result<(MessageState, MessageState), JobError> {
        let mut states = Vec::with_capacity(4);
        let mut first_ack: Option<i64> = None;
        let mut dlr = true;
        {
            let st = &mut self.st.part_states;
            let mut rows = st.query([id.as_i64()])?;
            while let Some(r) = rows.next()? {
                states.push(part_state(r.get(0)?)?);
                if let Some(at) = r.get::<_, Option<i64>>(1)? {
                    first_ack = Some(first_ack.map_or(at, |f| f.min(at)));
                }
                dlr = r.get(2)?;
            }
        }
        if states.is_empty() {
            return Err(message_not_found(id));
        }
        let new = aggregate(dlr, &states);
        let is_done = new.is_final() || (!dlr && new == MessageState::Submitted);
        let nothing_pending = !states.iter().any(|s| s.is_pending());
        if !is_done && (self.settings.retain_text || !nothing_pending) {
            // Usually a no-op (the row already says `queued`); it resets a row that says
            // otherwise (a part sent again after a final word, a row from an older version).
            self.st.reopen.execute([id.as_i64()])?;
            return Ok((MessageState::Queued, new));
        }
        let (old, has_text, submitted, done): (i64, bool, bool, bool) = {
            let mut st = self.conn.prepare_cached(
                "SELECT state, text IS NOT NULL, submitted_at IS NOT NULL, done_at IS NOT NULL
                 FROM message WHERE id = ?1",
            )?;
            st.query_row([id.as_i64()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?
            .ok_or_else(|| message_not_found(id))?
        };
        let old = MessageState::from_code(old).unwrap_or(MessageState::Queued);
        let any_acked = first_ack.is_some();
        let drop_text = has_text && !self.settings.retain_text && nothing_pending;
        let unchanged = new == old && (submitted || !any_acked) && is_done == done && !drop_text;
        if !unchanged {
            let st = &mut self.st.settle;
            st.execute(params![
                id.as_i64(),
                new.code(),
                any_acked,
                is_done,
                drop_text,
                now,
                first_ack.unwrap_or(now)
            ])?;
        }
        Ok((old, new))
    }

    /// Stores the state of a single-part message from its only part, without reading it first
    /// (the hot path: acknowledgement and receipt).
    fn settle(
        &mut self,
        id: MessageId,
        part: PartInfo,
        acked: bool,
        now: i64,
    ) -> Result<MessageState, JobError> {
        if part.parts != 1 {
            return Ok(self.recompute(id, now)?.1);
        }
        let new = aggregate(part.dlr, &[part.state]);
        let is_done = new.is_final() || (!part.dlr && new == MessageState::Submitted);
        let drop_text = !self.settings.retain_text && !part.state.is_pending();
        self.st.settle.execute(params![
            id.as_i64(),
            new.code(),
            acked,
            is_done,
            drop_text,
            now,
            part.acked_at.unwrap_or(now)
        ])?;
        Ok(new)
    }

    /// The message's state after its part was acknowledged. A single-part message that waits
    /// for a receipt (and keeps its text) is not written: its row stays `queued` and readers
    /// derive `submitted` from the part (see `schema`), so the acknowledgement, the hot path's
    /// most frequent write, is one row instead of two; the receipt settles the message.
    fn settle_ack(
        &mut self,
        id: MessageId,
        part: PartInfo,
        now: i64,
    ) -> Result<MessageState, JobError> {
        if part.parts == 1 && part.dlr && self.settings.retain_text {
            return Ok(MessageState::Submitted);
        }
        self.settle(id, part, true, now)
    }

    /// Emits a `state` event when a message reached a final state without a receipt.
    fn state_event(
        &mut self,
        id: MessageId,
        (old, new): (MessageState, MessageState),
        now: i64,
    ) -> Result<(), JobError> {
        if new.is_final() && !old.is_final() {
            let body = json!({"id": id.to_string(), "state": new.as_str()}).to_string();
            self.event("state", Some(id), &body, now)?;
        }
        Ok(())
    }

    pub(crate) fn accept(&mut self, m: &NewMessage) -> Result<Accepted, JobError> {
        if m.parts.is_empty() || m.parts.len() > 255 {
            return Err(JobError::Domain(StoreError::Invalid {
                field: "parts",
                problem: format!("a message has 1 to 255 parts, not {}", m.parts.len()),
            }));
        }
        if !m.caps.is_empty() {
            // A repeated key is answered as the duplicate it is, whatever the caps say now.
            if let Some(first) = self.first_of_key(m)? {
                return Ok(first);
            }
            self.check_caps(m)?;
        }
        let id = self.ids.next(m.now_ms);
        let parts = m.parts.len() as u8;
        // One statement for the common case: the insert does nothing when the key exists (the
        // unique partial index), and only then is the first message looked up.
        let inserted = self.st.insert_message.execute(params![
            id.as_i64(),
            m.key,
            m.to,
            m.from,
            m.route,
            m.class.code(),
            m.priority,
            m.valid_until_ms,
            m.encoding,
            m.split,
            m.options,
            m.dlr,
            m.tags,
            m.text,
            parts,
            m.now_ms,
            m.held_until_ms
        ])?;
        if inserted == 0 {
            return self.first_of_key(m)?.ok_or_else(|| {
                JobError::Domain(StoreError::Internal(
                    "message insert ignored without an idempotency-key conflict".into(),
                ))
            });
        }
        self.count_caps(m, id)?;
        let fields = PartFields {
            route: &m.route,
            priority: m.priority,
            dlr: m.dlr,
            valid_until: m.valid_until_ms,
            held_until: m.held_until_ms,
        };
        self.insert_parts(id, fields, &m.parts)?;
        Ok(Accepted {
            id,
            parts,
            route: m.route.clone(),
            encoding: m.encoding.clone(),
            duplicate: false,
        })
    }

    /// The first message of `m`'s idempotency key, as a duplicate's answer.
    fn first_of_key(&mut self, m: &NewMessage) -> Result<Option<Accepted>, JobError> {
        if m.key.is_none() {
            return Ok(None);
        }
        Ok(self
            .conn
            .prepare_cached("SELECT id, parts, route, encoding FROM message WHERE idem_key = ?1")?
            .query_row([&m.key], |r| {
                Ok(Accepted {
                    id: MessageId::from_i64(r.get(0)?),
                    parts: r.get(1)?,
                    route: r.get(2)?,
                    encoding: r.get(3)?,
                    duplicate: true,
                })
            })
            .optional()?)
    }

    fn insert_parts(
        &mut self,
        id: MessageId,
        f: PartFields<'_>,
        parts: &[NewPart],
    ) -> Result<(), JobError> {
        let st = &mut self.st.insert_part;
        for (i, p) in parts.iter().enumerate() {
            st.execute(params![
                id.as_i64(),
                (i + 1) as i64,
                f.route,
                f.priority,
                parts.len() as i64,
                f.dlr,
                p.data_coding,
                p.esm_class,
                p.sar_ref,
                p.segment,
                f.valid_until,
                f.held_until
            ])?;
        }
        Ok(())
    }

    pub(crate) fn claim(
        &mut self,
        route: &str,
        limit: usize,
        now: i64,
    ) -> Result<Vec<QueuedPart>, JobError> {
        self.conn
            .prepare_cached(sql::WAKE_WAITING.get())?
            .execute([now, crate::store::WAKE_BATCH])?;
        let mut out = Vec::with_capacity(limit.min(4096));
        {
            let st = &mut self.st.claim_select;
            let mut rows = st.query(params![route, limit as i64])?;
            while let Some(r) = rows.next()? {
                out.push(QueuedPart {
                    part: PartRef {
                        message: MessageId::from_i64(r.get(0)?),
                        n: r.get(1)?,
                    },
                    total: r.get(2)?,
                    to: r.get(3)?,
                    from: r.get(4)?,
                    priority: r.get(5)?,
                    dlr: r.get(6)?,
                    valid_until_ms: r.get(7)?,
                    split: r.get(8)?,
                    data_coding: r.get(9)?,
                    esm_class: r.get(10)?,
                    segment: r.get(11)?,
                    sar_ref: r.get(12)?,
                    attempts: r.get::<_, u32>(13)?.saturating_add(1),
                    maybe_sent: r.get(14)?,
                    last_smsc: r.get(15)?,
                    rerouted_from: r.get(16)?,
                    target: None,
                    refused: Vec::new(),
                });
            }
        }
        let mut expired = Vec::new();
        {
            let send = &mut self.st.claim_send;
            let mut expire = self.conn.prepare_cached(sql!(
                "UPDATE part SET state = {part:expired}, done_at = ?3 WHERE message_id = ?1 AND n = ?2"
            ))?;
            for p in &out {
                if p.valid_until_ms.is_some_and(|v| v < now) {
                    expire.execute(params![p.part.message.as_i64(), p.part.n, now])?;
                    expired.push(p.part.message);
                } else {
                    send.execute(params![p.part.message.as_i64(), p.part.n])?;
                    if self.claimed.len() < CLAIMED_MAX {
                        self.claimed.insert(
                            (p.part.message.as_i64(), p.part.n),
                            (i64::from(p.total), p.dlr),
                        );
                    }
                }
            }
        }
        if !expired.is_empty() {
            out.retain(|p| p.valid_until_ms.is_none_or(|v| v >= now));
            expired.dedup();
            for id in expired {
                let change = self.recompute(id, now)?;
                self.state_event(id, change, now)?;
            }
        }
        Ok(out)
    }

    fn part_row(&mut self, p: PartRef) -> Result<PartState, JobError> {
        Ok(self.part_info(p)?.state)
    }

    fn part_info(&mut self, p: PartRef) -> Result<PartInfo, JobError> {
        let st = &mut self.st.part_info;
        let row: Option<(i64, i64, bool, Option<i64>)> = st
            .query_row(params![p.message.as_i64(), p.n], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let (state, parts, dlr, acked_at) = row.ok_or_else(|| not_found(p))?;
        Ok(PartInfo {
            state: part_state(state)?,
            parts,
            dlr,
            acked_at,
        })
    }

    pub(crate) fn acked(&mut self, a: &Ack) -> Result<AckResult, JobError> {
        let key = receipt::submit_key(a.rule, &a.smsc_id);
        let Some((parts, dlr)) = self.mark_acked(a, &key)? else {
            // A late or repeated response: the part moved on already.
            let (_, state) = self.recompute(a.part.message, a.now_ms)?;
            return Ok(AckResult {
                state,
                held_receipts: Vec::new(),
                rerouted: None,
            });
        };
        let info = PartInfo {
            state: PartState::Submitted,
            parts,
            dlr,
            acked_at: Some(a.now_ms),
        };
        let held = self.held_receipts(&a.smsc, &key)?;
        self.apply_held(a, info, held)
    }

    /// Marks a part acknowledged; returns its (parts, dlr), or `None` when the part was no
    /// longer pending (nothing written). The update only applies to a part still to be
    /// acknowledged; a part claimed by this writer needs no read first (UPDATE … RETURNING
    /// would, through an ephemeral table).
    fn mark_acked(&mut self, a: &Ack, key: &str) -> Result<Option<(i64, bool)>, JobError> {
        let params = params![
            a.part.message.as_i64(),
            a.part.n,
            a.smsc,
            a.smsc_id,
            receipts::receipt_hash(&a.smsc, key),
            a.now_ms
        ];
        let remembered = self.claimed.remove(&(a.part.message.as_i64(), a.part.n));
        if let Some(known) = remembered
            && self.st.ack.execute(params)? == 1
        {
            return Ok(Some(known));
        }
        let info = self.part_info(a.part)?;
        if !info.state.is_pending() {
            return Ok(None);
        }
        self.st.ack.execute(params)?;
        Ok(Some((info.parts, info.dlr)))
    }

    pub(crate) fn failed(&mut self, f: &Failure) -> Result<MessageState, JobError> {
        self.claimed.remove(&(f.part.message.as_i64(), f.part.n));
        let cur = self.part_row(f.part)?;
        if cur.is_final() {
            return Ok(self.recompute(f.part.message, f.now_ms)?.1);
        }
        let id = f.part.message.as_i64();
        match &f.disposition {
            &Disposition::RetryAt { at_ms } => {
                let state = if at_ms <= f.now_ms {
                    PartState::Queued
                } else {
                    PartState::Waiting
                };
                self.conn
                    .prepare_cached(
                        "UPDATE part SET state = ?3, ready_at = ?4, last_status = ?5,
                            smsc = coalesce(?6, smsc)
                         WHERE message_id = ?1 AND n = ?2",
                    )?
                    .execute(params![id, f.part.n, state.code(), at_ms, f.status, f.smsc])?;
            }
            // One node owns every SMSC: a failover is a plain requeue here (dispatch keeps
            // the refusals in memory and picks the next SMSC).
            d @ (Disposition::Requeue { .. } | Disposition::Failover { .. }) => {
                let maybe_sent = matches!(d, Disposition::Requeue { maybe_sent: true });
                self.conn
                    .prepare_cached(sql!(
                        "UPDATE part SET state = {part:queued}, maybe_dup = maybe_dup | ?3,
                            attempts = CASE WHEN ?3 THEN attempts ELSE max(attempts - 1, 0) END,
                            acked_at = NULL, smsc = coalesce(?4, smsc)
                         WHERE message_id = ?1 AND n = ?2"
                    ))?
                    .execute(params![id, f.part.n, maybe_sent, f.smsc])?;
            }
            Disposition::Permanent => {
                self.conn
                    .prepare_cached(sql!(
                        "UPDATE part SET state = {part:failed}, last_status = ?3, done_at = ?4,
                            smsc = coalesce(?5, smsc)
                         WHERE message_id = ?1 AND n = ?2"
                    ))?
                    .execute(params![id, f.part.n, f.status, f.now_ms, f.smsc])?;
            }
            Disposition::Expired => {
                self.conn
                    .prepare_cached(sql!(
                        "UPDATE part SET state = {part:expired}, done_at = ?3
                         WHERE message_id = ?1 AND n = ?2"
                    ))?
                    .execute(params![id, f.part.n, f.now_ms])?;
            }
        }
        let change = self.recompute(f.part.message, f.now_ms)?;
        self.state_event(f.part.message, change, f.now_ms)?;
        Ok(change.1)
    }

    pub(crate) fn record_mo(&mut self, m: &IncomingMo) -> Result<MoRecorded, JobError> {
        self.insert_mo(m, None)
    }

    pub(crate) fn record_mo_fragment(&mut self, f: &MoFragment) -> Result<(), JobError> {
        let (sar_ref, sar_total, sar_seq) = match f.sar {
            Some((r, t, s)) => (Some(r), Some(t), Some(s)),
            None => (None, None, None),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO mo_fragment (source, dest, ref, total, seq, at, smsc, data_coding,
                    udhi, sar_ref, sar_total, sar_seq, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                f.set.source,
                f.set.dest,
                f.set.reference,
                f.set.total,
                f.seq,
                f.now_ms,
                f.smsc,
                f.data_coding,
                f.udhi,
                sar_ref,
                sar_total,
                sar_seq,
                f.payload
            ])?;
        Ok(())
    }

    pub(crate) fn record_mo_set(
        &mut self,
        m: &IncomingMo,
        set: &MoSet,
        incomplete: Option<&str>,
    ) -> Result<MoRecorded, JobError> {
        let recorded = self.insert_mo(m, incomplete)?;
        self.conn
            .prepare_cached(
                "DELETE FROM mo_fragment WHERE source = ?1 AND dest = ?2 AND ref = ?3 AND total = ?4",
            )?
            .execute(params![set.source, set.dest, set.reference, set.total])?;
        Ok(recorded)
    }

    fn insert_mo(
        &mut self,
        m: &IncomingMo,
        incomplete: Option<&str>,
    ) -> Result<MoRecorded, JobError> {
        self.conn
            .prepare_cached(
                "INSERT INTO mo (at, smsc, source, dest, text, parts, incomplete)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                m.now_ms, m.smsc, m.from, m.to, m.text, m.parts, incomplete
            ])?;
        let id = self.conn.last_insert_rowid();
        let optout = match &m.optout {
            Some(OptOutChange::Add { keyword, scope }) => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO optout (number, scope, keyword, at, smsc)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (number, scope) DO UPDATE SET keyword = excluded.keyword,
                            at = excluded.at, smsc = excluded.smsc",
                    )?
                    .execute(params![m.from, scope, keyword, m.now_ms, m.smsc])?;
                Some("added")
            }
            Some(OptOutChange::Remove { scope }) => {
                self.conn
                    .prepare_cached("DELETE FROM optout WHERE number = ?1 AND scope = ?2")?
                    .execute([&m.from, scope])?;
                Some("removed")
            }
            None => None,
        };
        let mut body = json!({
            "mo_id": id, "from": m.from, "to": m.to, "text": m.text, "smsc": m.smsc,
            "parts": m.parts, "optout": optout,
        });
        if let Some(change) = &m.optout {
            body["optout_scope"] = json!(change.scope());
        }
        if let Some(why) = incomplete {
            body["incomplete"] = json!(why);
        }
        let body = body.to_string();
        let seq = self.event("mo", None, &body, m.now_ms)?;
        Ok(MoRecorded { id, seq })
    }

    pub(crate) fn optout_add(
        &mut self,
        number: &str,
        scope: &str,
        now_ms: i64,
    ) -> Result<bool, JobError> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO optout (number, scope, keyword, at, smsc)
                 VALUES (?1, ?2, 'manual', ?3, '-')
                 ON CONFLICT (number, scope) DO NOTHING",
            )?
            .execute(params![number, scope, now_ms])?;
        Ok(n == 1)
    }

    pub(crate) fn optout_remove(&mut self, number: &str, scope: &str) -> Result<bool, JobError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM optout WHERE number = ?1 AND scope = ?2")?
            .execute([number, scope])?;
        Ok(n == 1)
    }

    pub(crate) fn expire(
        &mut self,
        now: i64,
        receipt_wait: i64,
        limit: usize,
    ) -> Result<Expired, JobError> {
        let limit = limit.max(1);
        let mut out = Expired::default();
        // Queued or waiting parts past their validity (SMSC bound or not).
        let due = self.due_messages(sql::DUE_VALIDITY.get(), now, limit, &mut out)?;
        for id in due {
            let n = self
                .conn
                .prepare_cached(sql!(
                    "UPDATE part SET state = {part:expired}, done_at = ?2
                     WHERE message_id = ?1 AND state IN ({part:queued}, {part:waiting})
                        AND valid_until < ?2"
                ))?
                .execute(params![id.as_i64(), now])?;
            self.settle_swept(id, n, now, &mut out)?;
        }
        // Acknowledged parts whose receipt did not come within the wait.
        let cut = now.saturating_sub(receipt_wait.max(0));
        let waiting = self.due_messages(sql::DUE_RECEIPT.get(), cut, limit, &mut out)?;
        for id in waiting {
            let n = self
                .conn
                .prepare_cached(sql!(
                    "UPDATE part SET state = {part:no_receipt}, done_at = ?2
                     WHERE message_id = ?1 AND state = {part:submitted} AND dlr = 1
                        AND acked_at <= ?3"
                ))?
                .execute(params![id.as_i64(), now, cut])?;
            self.settle_swept(id, n, now, &mut out)?;
        }
        Ok(out)
    }

    /// The messages of up to `limit` due parts found by `sql` (parameters: the bound, the
    /// limit), each once. Notes in `out` when the limit was reached (more may be due).
    fn due_messages(
        &mut self,
        sql: &str,
        bound: i64,
        limit: usize,
        out: &mut Expired,
    ) -> Result<Vec<MessageId>, JobError> {
        let mut ids: Vec<i64> = self
            .conn
            .prepare_cached(sql)?
            .query_map(params![bound, limit as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        out.more |= ids.len() >= limit;
        ids.sort_unstable();
        ids.dedup();
        out.scanned += ids.len() as u64;
        Ok(ids.into_iter().map(MessageId::from_i64).collect())
    }

    /// Settles a message after the sweep changed `changed` of its parts: its state, the `state`
    /// event when it became final, and the counts.
    fn settle_swept(
        &mut self,
        id: MessageId,
        changed: usize,
        now: i64,
        out: &mut Expired,
    ) -> Result<(), JobError> {
        if changed == 0 {
            return Ok(());
        }
        let change = self.recompute(id, now)?;
        self.state_event(id, change, now)?;
        if change.1.is_final() && !change.0.is_final() {
            out.finished.push(id);
        }
        match change.1 {
            MessageState::Expired if change.0 != MessageState::Expired => out.expired += 1,
            MessageState::NoReceipt if change.0 != MessageState::NoReceipt => out.no_receipt += 1,
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn resplit(
        &mut self,
        id: MessageId,
        split: &str,
        parts: &[NewPart],
    ) -> Result<(), JobError> {
        if parts.is_empty() || parts.len() > 255 {
            return Err(JobError::Domain(StoreError::Invalid {
                field: "parts",
                problem: format!("a message has 1 to 255 parts, not {}", parts.len()),
            }));
        }
        let (route, priority, dlr, valid_until): (String, u8, bool, Option<i64>) = self
            .conn
            .prepare_cached("SELECT route, priority, dlr, valid_until FROM message WHERE id = ?1")?
            .query_row([id.as_i64()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?
            .ok_or_else(|| message_not_found(id))?;
        let blocking: i64 = self
            .conn
            .prepare_cached(sql!(
                "SELECT count(*) FROM part WHERE message_id = ?1
                 AND (acked_at IS NOT NULL OR state NOT IN ({part:queued}, {part:waiting}))"
            ))?
            .query_row([id.as_i64()], |r| r.get(0))?;
        if blocking > 0 {
            return Err(JobError::Domain(StoreError::Conflict(format!(
                "message {id} has {blocking} part(s) in flight or acknowledged; it cannot be re-split"
            ))));
        }
        // The new parts inherit the possible-duplicate mark and the reroute mark: a message
        // rerouted after UNDELIV/REJECTD and re-split for the next SMSC must still avoid the
        // SMSC that failed it and never be rerouted again (without the mark it went back there,
        // failed, was rerouted and re-split again, for ever).
        let (maybe_dup, rerouted_from): (bool, Option<String>) = self
            .conn
            .prepare_cached(
                "SELECT coalesce(max(maybe_dup), 0), max(rerouted_from) FROM part WHERE message_id = ?1",
            )?
            .query_row([id.as_i64()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        self.conn
            .prepare_cached("DELETE FROM part WHERE message_id = ?1")?
            .execute([id.as_i64()])?;
        let fields = PartFields {
            route: &route,
            priority,
            dlr,
            valid_until,
            // A re-split message was claimed already: its hold, if any, is over.
            held_until: None,
        };
        self.insert_parts(id, fields, parts)?;
        if maybe_dup || rerouted_from.is_some() {
            self.conn
                .prepare_cached(
                    "UPDATE part SET maybe_dup = ?2, rerouted_from = ?3 WHERE message_id = ?1",
                )?
                .execute(params![id.as_i64(), maybe_dup, rerouted_from])?;
        }
        self.conn
            .prepare_cached("UPDATE message SET split = ?2, parts = ?3 WHERE id = ?1")?
            .execute(params![id.as_i64(), split, parts.len() as i64])?;
        Ok(())
    }

    pub(crate) fn prune(
        &mut self,
        r: &Retention,
        now: i64,
        batch: usize,
    ) -> Result<usize, JobError> {
        let batch = batch.max(1) as i64;
        let mut total = 0;
        if let Some(age) = r.messages_ms {
            let cut = now.saturating_sub(age);
            let ids: Vec<i64> = {
                let mut st = self.conn.prepare_cached(
                    "SELECT id FROM message WHERE id < ?1 AND done_at IS NOT NULL AND done_at < ?2
                     ORDER BY id LIMIT ?3",
                )?;
                st.query_map(
                    params![MessageId::first_at(cut).as_i64(), cut, batch],
                    |row| row.get(0),
                )?
                .collect::<Result<_, _>>()?
            };
            for id in ids {
                self.conn
                    .prepare_cached("DELETE FROM part WHERE message_id = ?1")?
                    .execute([id])?;
                total += self
                    .conn
                    .prepare_cached("DELETE FROM message WHERE id = ?1")?
                    .execute([id])?;
            }
        }
        if let Some(age) = r.log_ms {
            let cut = now.saturating_sub(age);
            for sql in [
                "DELETE FROM dlr_log WHERE id IN (SELECT id FROM dlr_log WHERE at < ?1 ORDER BY id LIMIT ?2)",
                "DELETE FROM mo WHERE id IN (SELECT id FROM mo WHERE at < ?1 ORDER BY id LIMIT ?2)",
                // The newest event always stays, so sequence numbers never restart.
                EVENT_PRUNE,
            ] {
                let deleted = self
                    .conn
                    .prepare_cached(sql)?
                    .execute(params![cut, batch])?;
                self.events_deleted |= sql == EVENT_PRUNE && deleted > 0;
                total += deleted;
            }
        }
        if let Some(age) = r.cap_hits_ms {
            total += self.prune_cap_hits(now.saturating_sub(age), batch)?;
        }
        Ok(total)
    }

    pub(crate) fn reload(&mut self, s: &Settings) -> Result<(), JobError> {
        super::apply_size_cap(self.conn, s)?;
        // `synchronous` cannot change inside a transaction: applied right after the commit,
        // before the caller hears back.
        self.pending_settings = Some(s.clone());
        self.settings = s.clone();
        Ok(())
    }
}
