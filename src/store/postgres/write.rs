//! Every write command but the receipt path (`receipts`) and the frequency caps of a run of
//! accepts (`caps`: decided before the set insert, counted after it). Runs on the writer task
//! only, inside the batch transaction opened by the writer; commands never commit themselves.
//! Commands validate their input before writing anything, so a domain error leaves no partial
//! write in the shared transaction. Independent statements are pipelined (sent together on the
//! one connection); rows of a batch go in one statement (`UNNEST`), never one round trip per
//! row.

use super::Client;
use super::writer::{Command, JobError, Op, Out, WriterCtx};
use crate::store::{
    Accepted, Disposition, Expired, Failure, IncomingMo, MessageId, MessageState, MoFragment,
    MoRecorded, MoSet, NewMessage, NewPart, OptOutChange, PartRef, PartState, QueuedPart,
    Retention, StoreError, aggregate,
};
use futures_util::future::{try_join, try_join_all};
use serde_json::json;
use std::collections::HashMap;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

/// The writer's view of one transaction: the connection, the writer's state, and the ids of the
/// events inserted so far (numbered after COMMIT).
pub(super) struct W<'a> {
    pub(super) c: &'a Client,
    pub(super) ctx: &'a mut WriterCtx,
    pub(super) events: Vec<i64>,
}

pub(super) fn part_state(c: i32) -> Result<PartState, JobError> {
    PartState::from_code(i64::from(c))
        .ok_or_else(|| JobError::Domain(StoreError::Internal(format!("bad part state {c}"))))
}

pub(super) fn not_found(p: PartRef) -> JobError {
    JobError::Domain(StoreError::part_not_found(p))
}

fn message_not_found(id: MessageId) -> JobError {
    JobError::Domain(StoreError::message_not_found(id))
}

fn bad_parts(n: usize) -> StoreError {
    StoreError::Invalid {
        field: "parts",
        problem: format!("a message has 1 to 255 parts, not {n}"),
    }
}

/// The message id from the acceptance time and the low 20 bits of `message_counter`.
fn message_id(now_ms: i64, counter: i64) -> MessageId {
    let low = (counter as u64) & ((1 << MessageId::COUNTER_BITS) - 1);
    MessageId(MessageId::first_at(now_ms).0 | low)
}

/// Rows of an accept batch, as columns for `UNNEST`.
#[derive(Default)]
struct AcceptRows<'m> {
    ids: Vec<i64>,
    keys: Vec<Option<&'m str>>,
    dest: Vec<&'m str>,
    sender: Vec<&'m str>,
    route: Vec<&'m str>,
    class: Vec<i32>,
    priority: Vec<i32>,
    valid: Vec<Option<i64>>,
    encoding: Vec<&'m str>,
    split: Vec<&'m str>,
    options: Vec<&'m str>,
    dlr: Vec<bool>,
    tags: Vec<Option<&'m str>>,
    text: Vec<&'m str>,
    parts: Vec<i32>,
    at: Vec<i64>,
    p_id: Vec<i64>,
    p_n: Vec<i32>,
    p_dc: Vec<i32>,
    p_esm: Vec<i32>,
    p_sar: Vec<Option<i32>>,
    p_seg: Vec<&'m [u8]>,
    p_target: Vec<Option<&'m str>>,
}

impl<'m> AcceptRows<'m> {
    fn push(&mut self, id: MessageId, m: &'m NewMessage, target: Option<&'m str>) {
        self.ids.push(id.as_i64());
        self.keys.push(m.key.as_deref());
        self.dest.push(&m.to);
        self.sender.push(&m.from);
        self.route.push(&m.route);
        self.class.push(m.class.code() as i32);
        self.priority.push(i32::from(m.priority));
        self.valid.push(m.valid_until_ms);
        self.encoding.push(&m.encoding);
        self.split.push(&m.split);
        self.options.push(&m.options);
        self.dlr.push(m.dlr);
        self.tags.push(m.tags.as_deref());
        self.text.push(&m.text);
        self.parts.push(m.parts.len() as i32);
        self.at.push(m.now_ms);
        for (i, p) in m.parts.iter().enumerate() {
            self.p_id.push(id.as_i64());
            self.p_n.push(i as i32 + 1);
            self.p_dc.push(i32::from(p.data_coding));
            self.p_esm.push(i32::from(p.esm_class));
            self.p_sar.push(p.sar_ref.map(i32::from));
            self.p_seg.push(&p.segment);
            self.p_target.push(target);
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 23] {
        [
            &self.ids,
            &self.keys,
            &self.dest,
            &self.sender,
            &self.route,
            &self.class,
            &self.priority,
            &self.valid,
            &self.encoding,
            &self.split,
            &self.options,
            &self.dlr,
            &self.tags,
            &self.text,
            &self.parts,
            &self.at,
            &self.p_id,
            &self.p_n,
            &self.p_dc,
            &self.p_esm,
            &self.p_sar,
            &self.p_seg,
            &self.p_target,
        ]
    }
}

/// Messages and their parts in one statement; the parts of a message whose idempotency key
/// exists are not inserted. Returns the ids inserted.
const INSERT_MESSAGES: &str = "WITH ins AS (
    INSERT INTO message (id, idem_key, dest, sender, route, class, priority, valid_until,
        encoding, split, options, dlr, tags, text, parts, state, accepted_at)
    SELECT id, k, d, s, r, c, p, v, e, sp, o, dl, tg, tx, pa, {message:queued}, at
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[],
        $7::int[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[],
        $14::text[], $15::int[], $16::bigint[])
        WITH ORDINALITY AS u(id, k, d, s, r, c, p, v, e, sp, o, dl, tg, tx, pa, at, ord)
    ORDER BY ord
    ON CONFLICT (idem_key) WHERE idem_key IS NOT NULL DO NOTHING
    RETURNING id, route, priority, parts, dlr, valid_until),
  new_parts AS (
    INSERT INTO part (message_id, n, route, priority, parts, dlr, state, data_coding, esm_class,
        sar_ref, segment, valid_until, target)
    SELECT u.m, u.n, ins.route, ins.priority, ins.parts, ins.dlr, {part:queued}, u.dc, u.es,
        u.sr, u.sg, ins.valid_until, u.tg
    FROM unnest($17::bigint[], $18::int[], $19::int[], $20::int[], $21::int[], $22::bytea[],
        $23::text[]) AS u(m, n, dc, es, sr, sg, tg)
    JOIN ins ON ins.id = u.m)
  SELECT id FROM ins";

impl<'a> W<'a> {
    pub(super) fn new(c: &'a Client, ctx: &'a mut WriterCtx) -> W<'a> {
        W {
            c,
            ctx,
            events: Vec::new(),
        }
    }

    /// Prepares statements (their Parse messages pipelined; cached ones cost nothing).
    /// Pipelined statements whose order matters are prepared this way first: an execution is
    /// sent only once its own statement is prepared, so a cached statement would otherwise
    /// overtake (and run before) one prepared for the first time.
    pub(super) async fn prepare(
        &self,
        sqls: &[&str],
    ) -> Result<Vec<Statement>, tokio_postgres::Error> {
        try_join_all(sqls.iter().map(|sql| self.c.prepare_cached(sql))).await
    }

    pub(super) async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let st = self.c.prepare_cached(sql).await?;
        self.c.execute(&st, params).await
    }

    pub(super) async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let st = self.c.prepare_cached(sql).await?;
        self.c.query(&st, params).await
    }

    pub(super) async fn row(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let st = self.c.prepare_cached(sql).await?;
        self.c.query_opt(&st, params).await
    }

    /// The first SMSC of a route (a new part's target).
    fn first_smsc(&self, route: &str) -> Option<String> {
        self.ctx.settings.route_smscs(route).first().cloned()
    }

    /// A run of consecutive accepts: ids for all from one `nextval` statement, every message
    /// and part in one statement, then the first ids of the duplicates' keys.
    pub(super) async fn accept_many(
        &mut self,
        cmds: &mut [Command],
    ) -> Result<(), tokio_postgres::Error> {
        let mut valid = Vec::with_capacity(cmds.len());
        for (i, c) in cmds.iter_mut().enumerate() {
            if let Op::Accept(m) = &c.op {
                if m.parts.is_empty() || m.parts.len() > 255 {
                    c.out = Some(Err(bad_parts(m.parts.len())));
                } else {
                    valid.push(i);
                }
            }
        }
        let capped = self.gate_caps(cmds, &mut valid).await?;
        if valid.is_empty() {
            return Ok(());
        }
        let counters: Vec<i64> = self
            .rows(
                "SELECT nextval('message_counter') FROM generate_series(1, $1::int)",
                &[&(valid.len() as i32)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let targets: Vec<Option<String>> = valid
            .iter()
            .map(|&i| match &cmds[i].op {
                Op::Accept(m) => self.first_smsc(&m.route),
                _ => None,
            })
            .collect();
        let mut rows = AcceptRows::default();
        let mut ids = Vec::with_capacity(valid.len());
        let mut held: (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
        for (k, &i) in valid.iter().enumerate() {
            if let Op::Accept(m) = &cmds[i].op {
                // In acceptance order: ids of one millisecond increase with the counter.
                let id = message_id(m.now_ms, counters.get(k).copied().unwrap_or(0));
                rows.push(id, m, targets[k].as_deref());
                ids.push(id);
                if let Some(until) = m.held_until_ms {
                    held.0.push(id.as_i64());
                    held.1.push(until);
                }
            }
        }
        let inserted: std::collections::HashSet<i64> = self
            .rows(filled!(INSERT_MESSAGES), &rows.params())
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        drop(rows);
        self.count_caps(cmds, &valid, &ids, &inserted, &capped)
            .await?;
        if !held.0.is_empty() {
            // A duplicate's id was not inserted: the update finds no row for it.
            self.exec(filled!(HOLD_MESSAGES), &[&held.0, &held.1])
                .await?;
        }
        self.answer_accepts(cmds, &valid, &ids, &inserted).await
    }

    /// Answers each accept of the run: its new id, or the first id of its key.
    async fn answer_accepts(
        &mut self,
        cmds: &mut [Command],
        valid: &[usize],
        ids: &[MessageId],
        inserted: &std::collections::HashSet<i64>,
    ) -> Result<(), tokio_postgres::Error> {
        let dup_keys: Vec<&str> = valid
            .iter()
            .zip(ids)
            .filter(|(_, id)| !inserted.contains(&id.as_i64()))
            .filter_map(|(&i, _)| match &cmds[i].op {
                Op::Accept(m) => m.key.as_deref(),
                _ => None,
            })
            .collect();
        let mut first: HashMap<String, Accepted> = HashMap::new();
        if !dup_keys.is_empty() {
            for r in self
                .rows(
                    "SELECT idem_key, id, parts, route, encoding FROM message
                     WHERE idem_key = ANY($1::text[])",
                    &[&dup_keys],
                )
                .await?
            {
                let accepted = Accepted {
                    id: MessageId::from_i64(r.get(1)),
                    parts: r.get::<_, i32>(2) as u8,
                    route: r.get(3),
                    encoding: r.get(4),
                    duplicate: true,
                };
                first.insert(r.get(0), accepted);
            }
        }
        for (&i, id) in valid.iter().zip(ids) {
            let cmd = &mut cmds[i];
            let Op::Accept(m) = &cmd.op else { continue };
            let answer = if inserted.contains(&id.as_i64()) {
                Ok(Accepted {
                    id: *id,
                    parts: m.parts.len() as u8,
                    route: m.route.clone(),
                    encoding: m.encoding.clone(),
                    duplicate: false,
                })
            } else {
                let found = m.key.as_ref().and_then(|k| first.get(k)).cloned();
                found.ok_or_else(|| {
                    StoreError::Internal("message insert ignored without a key conflict".into())
                })
            };
            cmd.out = Some(answer.map(Out::Accepted));
        }
        Ok(())
    }

    /// Inserts a row into `event` with no sequence number yet; returns its row id (numbered
    /// after COMMIT, see `events`).
    pub(super) async fn event(
        &mut self,
        kind: &str,
        message: Option<MessageId>,
        body: &str,
        now: i64,
    ) -> Result<i64, JobError> {
        let id = self.insert_event(kind, message, body, now).await?;
        self.events.push(id);
        Ok(id)
    }

    /// The event row (see [`Self::event`], which remembers its id for the sequencer).
    async fn insert_event(
        &self,
        kind: &str,
        message: Option<MessageId>,
        body: &str,
        now: i64,
    ) -> Result<i64, tokio_postgres::Error> {
        let st = self
            .c
            .prepare_cached(
                "INSERT INTO event (at, kind, message_id, body) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .await?;
        let row = self
            .c
            .query_one(&st, &[&now, &kind, &message.map(MessageId::as_i64), &body])
            .await?;
        Ok(row.get(0))
    }

    /// Writes a message's settled state (if it changed) and an event in one round trip;
    /// returns the event's row id.
    pub(super) async fn settle_with_event(
        &mut self,
        plan: Option<Settled>,
        kind: &str,
        message: MessageId,
        body: &str,
        now: i64,
    ) -> Result<i64, JobError> {
        let plans: Vec<Settled> = plan.into_iter().collect();
        let (_, id) = try_join(
            self.write_settled_db(&plans),
            self.insert_event(kind, Some(message), body, now),
        )
        .await?;
        self.events.push(id);
        Ok(id)
    }

    /// Recomputes a message's state from its parts and stores it when it changed. Returns
    /// (before, after).
    pub(super) async fn recompute(
        &mut self,
        id: MessageId,
        now: i64,
    ) -> Result<(MessageState, MessageState), JobError> {
        let rows = self.rows(MESSAGE_PARTS, &[&id.as_i64()]).await?;
        self.settle(id, &rows, now).await
    }

    /// Stores the message's state computed from [`MESSAGE_PARTS`]' rows when it changed.
    /// Returns (before, after).
    pub(super) async fn settle(
        &mut self,
        id: MessageId,
        rows: &[Row],
        now: i64,
    ) -> Result<(MessageState, MessageState), JobError> {
        let (change, plan) = self.plan_settle(id, rows, now)?;
        self.write_settled(plan.into_iter().collect()).await?;
        Ok(change)
    }

    /// A message's state from [`MESSAGE_PARTS`]' rows: (before, after), and the row's update
    /// when it changed.
    pub(super) fn plan_settle(
        &self,
        id: MessageId,
        rows: &[Row],
        now: i64,
    ) -> Result<((MessageState, MessageState), Option<Settled>), JobError> {
        let Some(first) = rows.first() else {
            return Err(message_not_found(id));
        };
        let mut states = Vec::with_capacity(rows.len());
        let mut first_ack: Option<i64> = None;
        for r in rows {
            states.push(part_state(r.get(0))?);
            if let Some(at) = r.get::<_, Option<i64>>(1) {
                first_ack = Some(first_ack.map_or(at, |f| f.min(at)));
            }
        }
        let m = MessageRow {
            dlr: first.get(2),
            state: MessageState::from_code(i64::from(first.get::<_, i32>(3)))
                .unwrap_or(MessageState::Queued),
            has_text: first.get(4),
            submitted: first.get(5),
            done: first.get(6),
        };
        let parts = MessageParts {
            states: &states,
            first_ack,
        };
        Ok(self.plan_states(id, parts, m, now))
    }

    /// A message's state from its parts' states, their first acknowledgement and its row:
    /// (before, after), and the row's update when it changed (see [`Self::plan_settle`]).
    pub(super) fn plan_states(
        &self,
        id: MessageId,
        parts: MessageParts<'_>,
        m: MessageRow,
        now: i64,
    ) -> ((MessageState, MessageState), Option<Settled>) {
        let MessageParts { states, first_ack } = parts;
        let (dlr, old) = (m.dlr, m.state);
        let (has_text, submitted, done) = (m.has_text, m.submitted, m.done);
        let new = aggregate(dlr, states);
        let is_done = new.is_final() || (!dlr && new == MessageState::Submitted);
        let nothing_pending = !states.iter().any(|s| s.is_pending());
        let any_acked = first_ack.is_some();
        let drop_text = has_text && !self.ctx.settings.retain_text && nothing_pending;
        let unchanged = new == old && (submitted || !any_acked) && is_done == done && !drop_text;
        let plan = (!unchanged).then_some(Settled {
            id: id.as_i64(),
            state: new.code() as i32,
            any_acked,
            is_done,
            drop_text,
            now,
            first_ack: first_ack.unwrap_or(now),
        });
        ((old, new), plan)
    }

    /// Writes messages' settled states, all in one statement.
    pub(super) async fn write_settled(&mut self, plans: Vec<Settled>) -> Result<(), JobError> {
        Ok(self.write_settled_db(&plans).await?)
    }

    pub(super) async fn write_settled_db(
        &self,
        plans: &[Settled],
    ) -> Result<(), tokio_postgres::Error> {
        if plans.is_empty() {
            return Ok(());
        }
        let st = self.c.prepare_cached(SETTLE).await?;
        self.write_settled_with(&st, plans).await
    }

    /// [`SETTLE`] (prepared as `st`) for `plans`; nothing sent without one.
    pub(super) async fn write_settled_with(
        &self,
        st: &Statement,
        plans: &[Settled],
    ) -> Result<(), tokio_postgres::Error> {
        if plans.is_empty() {
            return Ok(());
        }
        let col = |f: fn(&Settled) -> i64| plans.iter().map(f).collect::<Vec<i64>>();
        let flag = |f: fn(&Settled) -> bool| plans.iter().map(f).collect::<Vec<bool>>();
        let states: Vec<i32> = plans.iter().map(|p| p.state).collect();
        self.c
            .execute(
                st,
                &[
                    &col(|p| p.id),
                    &states,
                    &flag(|p| p.any_acked),
                    &flag(|p| p.is_done),
                    &flag(|p| p.drop_text),
                    &col(|p| p.now),
                    &col(|p| p.first_ack),
                ],
            )
            .await?;
        Ok(())
    }

    /// Emits a `state` event when a message reached a final state without a receipt.
    pub(super) async fn state_event(
        &mut self,
        id: MessageId,
        (old, new): (MessageState, MessageState),
        now: i64,
    ) -> Result<(), JobError> {
        if new.is_final() && !old.is_final() {
            let body = json!({"id": id.to_string(), "state": new.as_str()}).to_string();
            self.event("state", Some(id), &body, now).await?;
        }
        Ok(())
    }

    /// Wakes the route's parts whose retry time came, then takes the head of its queue (of the
    /// owned targets only, when `owned` is given) with `FOR UPDATE SKIP LOCKED`, marking it in
    /// flight under this instance's name and the target's epoch. Expired parts are settled
    /// instead of returned.
    pub(super) async fn claim(
        &mut self,
        route: &str,
        owned: Option<&[(String, i64)]>,
        limit: usize,
        now: i64,
    ) -> Result<Vec<QueuedPart>, JobError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let names: Vec<&str> = owned
            .unwrap_or(&[])
            .iter()
            .map(|(s, _)| s.as_str())
            .collect();
        let epochs: Vec<i64> = owned.unwrap_or(&[]).iter().map(|(_, e)| *e).collect();
        let me = self.ctx.instance.as_str();
        let wake_params: [&(dyn ToSql + Sync); 3] = [&now, &route, &crate::store::WAKE_BATCH];
        let params: [&(dyn ToSql + Sync); 6] = [&route, &limit, &names, &epochs, &now, &me];
        let take = match owned {
            Some(_) => filled!(CLAIM_OWNED),
            None => filled!(CLAIM_ANY),
        };
        // Waking before taking: one round trip, in this order.
        let st = self.prepare(&[filled!(WAKE_WAITING), take]).await?;
        let (_, rows) = try_join(
            self.c.execute(&st[0], &wake_params),
            self.c.query(&st[1], &params),
        )
        .await?;
        self.claimed(rows, now).await
    }

    /// The claimed rows as parts, in queue order; settles the expired ones.
    async fn claimed(&mut self, rows: Vec<Row>, now: i64) -> Result<Vec<QueuedPart>, JobError> {
        let mut out = Vec::with_capacity(rows.len());
        let mut expired = Vec::new();
        for r in &rows {
            let part = PartRef {
                message: MessageId::from_i64(r.get(0)),
                n: r.get::<_, i32>(1) as u8,
            };
            if part_state(r.get(19))? == PartState::Expired {
                expired.push(part.message);
                continue;
            }
            let epoch: Option<i64> = r.get(20);
            self.ctx
                .claims
                .insert((part.message.as_i64(), i32::from(part.n)), epoch);
            out.push(queued_part(r, part));
        }
        out.sort_by(|a, b| {
            (b.priority, a.part.message, a.part.n).cmp(&(a.priority, b.part.message, b.part.n))
        });
        expired.sort_unstable();
        expired.dedup();
        for id in expired {
            let change = self.recompute(id, now).await?;
            self.state_event(id, change, now).await?;
        }
        Ok(out)
    }

    /// The guard's parameters for an answer about `part`: whether this instance claimed it,
    /// its name and the claim's epoch (forgotten: the claim ends with this answer).
    pub(super) fn take_claim(&mut self, part: PartRef) -> (bool, String, Option<i64>) {
        let remembered = self
            .ctx
            .claims
            .take((part.message.as_i64(), i32::from(part.n)));
        (
            remembered.is_some(),
            self.ctx.instance.clone(),
            remembered.flatten(),
        )
    }

    pub(super) async fn failed(&mut self, f: &Failure) -> Result<MessageState, JobError> {
        let (known, me, epoch) = self.take_claim(f.part);
        let id = f.part.message.as_i64();
        let n = i32::from(f.part.n);
        let cur = self
            .row(
                "SELECT state FROM part WHERE message_id = $1 AND n = $2",
                &[&id, &n],
            )
            .await?
            .ok_or_else(|| not_found(f.part))?;
        if part_state(cur.get(0))?.is_final() {
            return Ok(self.recompute(f.part.message, f.now_ms).await?.1);
        }
        let guard: [&(dyn ToSql + Sync); 5] = [&known, &me, &epoch, &id, &n];
        let status = f.status.map(i64::from);
        let changed = self.fail_part(f, &guard, status).await?;
        if changed == 0 {
            tracing::warn!(part = %format!("{}/{}", f.part.message, f.part.n), "stale failure ignored: the part's claim is gone");
            return Ok(self.recompute(f.part.message, f.now_ms).await?.1);
        }
        let change = self.recompute(f.part.message, f.now_ms).await?;
        self.state_event(f.part.message, change, f.now_ms).await?;
        Ok(change.1)
    }

    /// The disposition's update, under the claim guard; returns the rows changed (0: stale).
    async fn fail_part(
        &mut self,
        f: &Failure,
        g: &[&(dyn ToSql + Sync); 5],
        status: Option<i64>,
    ) -> Result<u64, JobError> {
        let smsc = f.smsc.as_deref();
        Ok(match &f.disposition {
            Disposition::RetryAt { at_ms } => {
                let state = if *at_ms <= f.now_ms {
                    PartState::Queued
                } else {
                    PartState::Waiting
                };
                let state = state.code() as i32;
                let p: [&(dyn ToSql + Sync); 9] =
                    [g[0], g[1], g[2], g[3], g[4], &state, at_ms, &status, &smsc];
                self.exec(filled!(FAIL_RETRY), &p).await?
            }
            Disposition::Requeue { maybe_sent } => {
                let to: Option<&str> = None;
                let p: [&(dyn ToSql + Sync); 8] =
                    [g[0], g[1], g[2], g[3], g[4], maybe_sent, &smsc, &to];
                self.exec(filled!(FAIL_REQUEUE), &p).await?
            }
            Disposition::Failover { to } => {
                let to = Some(to.as_str());
                let p: [&(dyn ToSql + Sync); 8] =
                    [g[0], g[1], g[2], g[3], g[4], &false, &smsc, &to];
                self.exec(filled!(FAIL_REQUEUE), &p).await?
            }
            Disposition::Permanent => {
                let p: [&(dyn ToSql + Sync); 8] =
                    [g[0], g[1], g[2], g[3], g[4], &status, &f.now_ms, &smsc];
                self.exec(filled!(FAIL_PERMANENT), &p).await?
            }
            Disposition::Expired => {
                let p: [&(dyn ToSql + Sync); 6] = [g[0], g[1], g[2], g[3], g[4], &f.now_ms];
                self.exec(filled!(FAIL_EXPIRED), &p).await?
            }
        })
    }

    pub(super) async fn record_mo(
        &mut self,
        m: &IncomingMo,
        set: Option<&(MoSet, Option<&'static str>)>,
    ) -> Result<MoRecorded, JobError> {
        let incomplete = set.and_then(|(_, i)| *i);
        let parts = i32::from(m.parts);
        let mo_params: [&(dyn ToSql + Sync); 7] = [
            &m.now_ms,
            &m.smsc,
            &m.from,
            &m.to,
            &m.text,
            &parts,
            &incomplete,
        ];
        let insert = self.rows(
            "INSERT INTO mo (at, smsc, source, dest, text, parts, incomplete)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &mo_params,
        );
        let optout = async {
            match &m.optout {
                Some(OptOutChange::Add { keyword, scope }) => self
                    .exec(
                        "INSERT INTO optout (number, scope, keyword, at, smsc)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (number, scope) DO UPDATE SET keyword = excluded.keyword,
                            at = excluded.at, smsc = excluded.smsc",
                        &[&m.from, scope, keyword, &m.now_ms, &m.smsc],
                    )
                    .await
                    .map(|_| Some("added")),
                Some(OptOutChange::Remove { scope }) => self
                    .exec(
                        "DELETE FROM optout WHERE number = $1 AND scope = $2",
                        &[&m.from, scope],
                    )
                    .await
                    .map(|_| Some("removed")),
                None => Ok(None),
            }
        };
        let (rows, optout) = try_join(insert, optout).await?;
        let id: i64 = rows.first().map(|r| r.get(0)).unwrap_or(0);
        if let Some((s, _)) = set {
            let (r, t) = (i32::from(s.reference), i32::from(s.total));
            self.exec(
                "DELETE FROM mo_fragment WHERE source = $1 AND dest = $2 AND ref = $3 AND total = $4",
                &[&s.source, &s.dest, &r, &t],
            )
            .await?;
        }
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
        let seq = self.event("mo", None, &body.to_string(), m.now_ms).await?;
        Ok(MoRecorded { id, seq })
    }

    pub(super) async fn record_mo_fragment(&mut self, f: &MoFragment) -> Result<(), JobError> {
        let (sar_ref, sar_total, sar_seq) = match f.sar {
            Some((r, t, s)) => (Some(i32::from(r)), Some(i32::from(t)), Some(i32::from(s))),
            None => (None, None, None),
        };
        let (r, t, s, dc) = (
            i32::from(f.set.reference),
            i32::from(f.set.total),
            i32::from(f.seq),
            i32::from(f.data_coding),
        );
        self.exec(
            "INSERT INTO mo_fragment (source, dest, ref, total, seq, at, smsc, data_coding,
                udhi, sar_ref, sar_total, sar_seq, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT DO NOTHING",
            &[
                &f.set.source,
                &f.set.dest,
                &r,
                &t,
                &s,
                &f.now_ms,
                &f.smsc,
                &dc,
                &f.udhi,
                &sar_ref,
                &sar_total,
                &sar_seq,
                &f.payload,
            ],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn optout_add(
        &mut self,
        number: &str,
        scope: &str,
        now: i64,
    ) -> Result<bool, JobError> {
        let n = self
            .exec(
                "INSERT INTO optout (number, scope, keyword, at, smsc)
                 VALUES ($1, $2, 'manual', $3, '-')
                 ON CONFLICT (number, scope) DO NOTHING",
                &[&number, &scope, &now],
            )
            .await?;
        Ok(n == 1)
    }

    pub(super) async fn optout_remove(
        &mut self,
        number: &str,
        scope: &str,
    ) -> Result<bool, JobError> {
        let n = self
            .exec(
                "DELETE FROM optout WHERE number = $1 AND scope = $2",
                &[&number, &scope],
            )
            .await?;
        Ok(n == 1)
    }

    /// Expires due parts: queued or waiting past their validity, and acknowledged ones past the
    /// receipt wait; each kind in one statement over at most `limit` parts.
    pub(super) async fn expire(
        &mut self,
        now: i64,
        receipt_wait: i64,
        limit: usize,
    ) -> Result<Expired, JobError> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let mut out = Expired::default();
        let due = self.rows(filled!(EXPIRE_VALIDITY), &[&now, &limit]).await?;
        self.settle_swept(due, limit, now, &mut out).await?;
        let cut = now.saturating_sub(receipt_wait.max(0));
        let waiting = self
            .rows(filled!(EXPIRE_RECEIPT), &[&now, &limit, &cut])
            .await?;
        self.settle_swept(waiting, limit, now, &mut out).await?;
        Ok(out)
    }

    /// Settles the messages of the parts a sweep changed (rows of `message_id`).
    async fn settle_swept(
        &mut self,
        rows: Vec<Row>,
        limit: i64,
        now: i64,
        out: &mut Expired,
    ) -> Result<(), JobError> {
        out.more |= rows.len() as i64 >= limit;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort_unstable();
        ids.dedup();
        out.scanned += ids.len() as u64;
        if ids.is_empty() {
            return Ok(());
        }
        // Every swept message's parts in one read; their states and `state` events written in
        // one round trip (two statements), however many messages the sweep settled.
        let mut parts: HashMap<i64, Vec<Row>> = HashMap::new();
        for r in self.rows(MESSAGES_PARTS, &[&ids]).await? {
            parts.entry(r.get(7)).or_default().push(r);
        }
        let (mut plans, mut finals) = (Vec::new(), Vec::new());
        for id in ids.into_iter().map(MessageId::from_i64) {
            let rows = parts.get(&id.as_i64()).map_or(&[][..], Vec::as_slice);
            let ((old, new), plan) = self.plan_settle(id, rows, now)?;
            plans.extend(plan);
            if new.is_final() && !old.is_final() {
                out.finished.push(id);
                let body = json!({"id": id.to_string(), "state": new.as_str()}).to_string();
                finals.push((id.as_i64(), body));
            }
            match new {
                MessageState::Expired if old != MessageState::Expired => out.expired += 1,
                MessageState::NoReceipt if old != MessageState::NoReceipt => out.no_receipt += 1,
                _ => {}
            }
        }
        let (_, events) = try_join(
            self.write_settled_db(&plans),
            self.insert_state_events(&finals, now),
        )
        .await?;
        self.events.extend(events);
        Ok(())
    }

    /// `state` events of several messages (id, body) in one statement; returns their row ids.
    async fn insert_state_events(
        &self,
        events: &[(i64, String)],
        now: i64,
    ) -> Result<Vec<i64>, tokio_postgres::Error> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = events.iter().map(|e| e.0).collect();
        let bodies: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        let rows = self
            .rows(
                "INSERT INTO event (at, kind, message_id, body)
                 SELECT $1, 'state', m, b FROM unnest($2::bigint[], $3::text[])
                    WITH ORDINALITY AS u(m, b, o)
                 ORDER BY o
                 RETURNING id",
                &[&now, &ids, &bodies],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(super) async fn resplit(
        &mut self,
        id: MessageId,
        split: &str,
        parts: &[NewPart],
    ) -> Result<(), JobError> {
        if parts.is_empty() || parts.len() > 255 {
            return Err(JobError::Domain(bad_parts(parts.len())));
        }
        let mid = id.as_i64();
        let msg = self
            .row("SELECT route FROM message WHERE id = $1", &[&mid])
            .await?
            .ok_or_else(|| message_not_found(id))?;
        let route: String = msg.get(0);
        let keep = self.row(filled!(RESPLIT_CHECK), &[&mid]).await?;
        let keep = keep.ok_or_else(|| message_not_found(id))?;
        let blocking: i64 = keep.get(0);
        if blocking > 0 {
            return Err(JobError::Domain(StoreError::Conflict(format!(
                "message {id} has {blocking} part(s) in flight or acknowledged; it cannot be re-split"
            ))));
        }
        let (maybe_dup, rerouted, target, refused): (
            bool,
            Option<String>,
            Option<String>,
            Vec<String>,
        ) = (keep.get(1), keep.get(2), keep.get(3), keep.get(4));
        let target = target.or_else(|| self.first_smsc(&route));
        let n: Vec<i32> = (1..=parts.len() as i32).collect();
        let dc: Vec<i32> = parts.iter().map(|p| i32::from(p.data_coding)).collect();
        let esm: Vec<i32> = parts.iter().map(|p| i32::from(p.esm_class)).collect();
        let sar: Vec<Option<i32>> = parts.iter().map(|p| p.sar_ref.map(i32::from)).collect();
        let seg: Vec<&[u8]> = parts.iter().map(|p| p.segment.as_slice()).collect();
        self.exec("DELETE FROM part WHERE message_id = $1", &[&mid])
            .await?;
        self.exec(
            filled!(RESPLIT_INSERT),
            &[
                &mid, &n, &dc, &esm, &sar, &seg, &maybe_dup, &rerouted, &target, &refused,
            ],
        )
        .await?;
        self.exec(
            "UPDATE message SET split = $2, parts = $3 WHERE id = $1",
            &[&mid, &split, &(parts.len() as i32)],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn prune(
        &mut self,
        r: &Retention,
        now: i64,
        batch: usize,
    ) -> Result<usize, JobError> {
        let batch = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut total = 0u64;
        if let Some(age) = r.messages_ms {
            let cut = now.saturating_sub(age);
            let first = MessageId::first_at(cut).as_i64();
            let ids: Vec<i64> = self
                .rows(
                    "SELECT id FROM message WHERE id < $1 AND done_at IS NOT NULL AND done_at < $2
                     ORDER BY id LIMIT $3",
                    &[&first, &cut, &batch],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if !ids.is_empty() {
                let p: [&(dyn ToSql + Sync); 1] = [&ids];
                let parts = self.exec("DELETE FROM part WHERE message_id = ANY($1)", &p);
                let messages = self.exec("DELETE FROM message WHERE id = ANY($1)", &p);
                total += try_join(parts, messages).await?.1;
            }
        }
        if let Some(age) = r.log_ms {
            let cut = now.saturating_sub(age);
            for sql in [
                "DELETE FROM dlr_log WHERE id IN (SELECT id FROM dlr_log WHERE at < $1 ORDER BY id LIMIT $2)",
                "DELETE FROM mo WHERE id IN (SELECT id FROM mo WHERE at < $1 ORDER BY id LIMIT $2)",
                // The newest numbered event always stays, so sequence numbers never restart;
                // unnumbered ones wait for the sequencer.
                "DELETE FROM event WHERE id IN (SELECT id FROM event WHERE at < $1
                    AND seq < (SELECT max(seq) FROM event) ORDER BY seq LIMIT $2)",
            ] {
                total += self.exec(sql, &[&cut, &batch]).await?;
            }
        }
        if let Some(age) = r.cap_hits_ms {
            let cut = now.saturating_sub(age);
            total += self
                .exec(
                    "DELETE FROM cap_hit WHERE id IN
                        (SELECT id FROM cap_hit WHERE at < $1 ORDER BY at LIMIT $2)",
                    &[&cut, &batch],
                )
                .await?;
        }
        Ok(total as usize)
    }

    /// Moves queued and waiting parts of `route` headed for `from` to `to`, whole messages at a
    /// time, skipping messages with a part that `to` refused; at most `limit` messages.
    pub(super) async fn retarget(
        &mut self,
        route: &str,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<usize, JobError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let n = self
            .exec(filled!(RETARGET), &[&route, &from, &to, &limit])
            .await?;
        Ok(n as usize)
    }

    /// Parts in flight to `smsc` claimed under an epoch older than `epoch` go back to the queue
    /// marked as possible duplicates. Their `claimed_by` stays, so a late answer from the
    /// instance that lost the lease changes nothing.
    pub(super) async fn requeue_in_flight(
        &mut self,
        smsc: &str,
        epoch: i64,
    ) -> Result<usize, JobError> {
        let n = self
            .exec(
                filled!(
                    "UPDATE part SET state = {part:queued}, maybe_dup = true
                      WHERE state = {part:sending} AND target = $1 AND claim_epoch < $2"
                ),
                &[&smsc, &epoch],
            )
            .await?;
        Ok(n as usize)
    }
}

/// A claimed row (see [`CLAIM_ANY`]'s RETURNING) as a part to send.
fn queued_part(r: &Row, part: PartRef) -> QueuedPart {
    QueuedPart {
        part,
        total: r.get::<_, i32>(2) as u8,
        to: r.get(3),
        from: r.get(4),
        priority: r.get::<_, i32>(5) as u8,
        dlr: r.get(6),
        valid_until_ms: r.get(7),
        split: r.get(8),
        data_coding: r.get::<_, i32>(9) as u8,
        esm_class: r.get::<_, i32>(10) as u8,
        segment: r.get(11),
        sar_ref: r.get::<_, Option<i32>>(12).map(|v| v as u16),
        attempts: r.get::<_, i32>(13).max(0) as u32,
        maybe_sent: r.get(14),
        last_smsc: r.get(15),
        rerouted_from: r.get(16),
        target: r.get(17),
        refused: r.get(18),
    }
}

/// A message row's new state (see [`W::plan_settle`]).
pub(super) struct Settled {
    pub(super) id: i64,
    pub(super) state: i32,
    pub(super) any_acked: bool,
    pub(super) is_done: bool,
    pub(super) drop_text: bool,
    pub(super) now: i64,
    pub(super) first_ack: i64,
}

/// What settling needs of a message's parts: their states and the first time one was
/// acknowledged (see [`W::plan_states`]).
#[derive(Clone, Copy)]
pub(super) struct MessageParts<'a> {
    pub(super) states: &'a [PartState],
    pub(super) first_ack: Option<i64>,
}

/// What settling needs of a message's row (see [`W::plan_states`]).
#[derive(Clone, Copy)]
pub(super) struct MessageRow {
    pub(super) dlr: bool,
    pub(super) state: MessageState,
    pub(super) has_text: bool,
    pub(super) submitted: bool,
    pub(super) done: bool,
}

/// Messages' new states, from arrays of [`Settled`]'s fields.
pub(super) const SETTLE: &str = "UPDATE message m SET state = u.state,
        submitted_at = CASE WHEN u.acked THEN coalesce(m.submitted_at, u.first_ack)
            ELSE m.submitted_at END,
        done_at = CASE WHEN u.done THEN coalesce(m.done_at, u.now) ELSE NULL END,
        text = CASE WHEN u.dt THEN NULL ELSE m.text END
    FROM unnest($1::bigint[], $2::int[], $3::bool[], $4::bool[], $5::bool[], $6::bigint[],
        $7::bigint[]) AS u(id, state, acked, done, dt, now, first_ack)
    WHERE m.id = u.id";

/// A message's parts' states and what settling it needs (see [`W::settle`]).
pub(super) const MESSAGE_PARTS: &str = "SELECT p.state, p.acked_at, p.dlr, m.state,
        m.text IS NOT NULL, m.submitted_at IS NOT NULL, m.done_at IS NOT NULL
    FROM part p JOIN message m ON m.id = p.message_id WHERE p.message_id = $1";

/// [`MESSAGE_PARTS`] for several messages, with the message id last. A join with the
/// unnested ids (not `= ANY($1)`): its generic plan, cached on the writer's connection while
/// the tables were small, stays index lookups per id.
pub(super) const MESSAGES_PARTS: &str = "SELECT p.state, p.acked_at, p.dlr, m.state,
        m.text IS NOT NULL, m.submitted_at IS NOT NULL, m.done_at IS NOT NULL, p.message_id
    FROM unnest($1::bigint[]) AS u(id)
        JOIN message m ON m.id = u.id
        JOIN part p ON p.message_id = u.id";

/// A route's parts whose retry or hold time came go back to the queue, earliest `ready_at`
/// first and at most `$3` ([`WAKE_BATCH`](crate::store::WAKE_BATCH)) per claim: a million
/// messages held until 09:00 are released over many claims, not in one UPDATE that holds the
/// writer's transaction for seconds. Rows another instance's claim is waking are skipped, not
/// waited for. Index `part_waiting`.
const WAKE_WAITING: &str = "UPDATE part SET state = {part:queued}
    WHERE (message_id, n) IN (SELECT message_id, n FROM part
        WHERE state = {part:waiting} AND ready_at <= $1 AND route = $2
        ORDER BY ready_at LIMIT $3 FOR UPDATE SKIP LOCKED)";

/// Held messages (send windows, `send_at`) of one accept run: the row records the hold, and
/// its parts wait until then like a retry (set-based: one statement for the run).
const HOLD_MESSAGES: &str = "WITH h AS (
        SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS h(id, until)),
      m AS (UPDATE message SET held_until = h.until FROM h WHERE message.id = h.id)
    UPDATE part SET state = {part:waiting}, ready_at = h.until
    FROM h WHERE part.message_id = h.id";

/// The claim's update (shared by both claims): parts past their validity are expired instead.
macro_rules! claim_sql {
    ($filter:literal) => {
        concat!(
            "WITH picked AS (
                SELECT message_id, n FROM part
                WHERE route = $1 AND state = {part:queued} ",
            $filter,
            " ORDER BY priority DESC, message_id, n LIMIT $2 FOR UPDATE SKIP LOCKED),
              owned AS (SELECT * FROM unnest($3::text[], $4::bigint[]) AS o(smsc, epoch))
            UPDATE part p SET
                state = CASE WHEN p.valid_until < $5 THEN {part:expired} ELSE {part:sending} END,
                done_at = CASE WHEN p.valid_until < $5 THEN $5 ELSE p.done_at END,
                attempts = CASE WHEN p.valid_until < $5 THEN p.attempts ELSE p.attempts + 1 END,
                claimed_by = $6::text,
                claim_epoch = (SELECT o.epoch FROM owned o WHERE o.smsc = p.target LIMIT 1)
            FROM picked, message m
            WHERE p.message_id = picked.message_id AND p.n = picked.n AND m.id = p.message_id
            RETURNING p.message_id, p.n, p.parts, m.dest, m.sender, p.priority, p.dlr,
                p.valid_until, m.split, p.data_coding, p.esm_class, p.segment, p.sar_ref,
                p.attempts, p.maybe_dup, p.smsc, p.rerouted_from, p.target, p.refused, p.state,
                p.claim_epoch"
        )
    };
}

/// Plain claim: every ready part of the route. Index `part_queue`.
const CLAIM_ANY: &str = claim_sql!("");
/// Cluster claim: ready parts headed for an owned SMSC. Index `part_target`.
const CLAIM_OWNED: &str = claim_sql!("AND target = ANY($3::text[])");

/// The claim guard of an answer ($1 claimed here, $2 instance, $3 epoch, $4 message, $5 part):
/// a part claimed by an instance is answered only by that claim; ends the claim.
macro_rules! guarded {
    ($set:literal) => {
        concat!(
            "UPDATE part SET claimed_by = NULL, ",
            $set,
            " WHERE message_id = $4 AND n = $5
              AND (claimed_by IS NULL OR ($1 AND state = {part:sending} AND claimed_by = $2
                   AND claim_epoch IS NOT DISTINCT FROM $3))"
        )
    };
}

const FAIL_RETRY: &str =
    guarded!("state = $6, ready_at = $7, last_status = $8, smsc = coalesce($9, smsc)");
/// Requeue ($6 maybe sent), or failover when $8 names the next SMSC: the refusing SMSC ($7)
/// joins `refused` and the part heads for $8.
const FAIL_REQUEUE: &str = guarded!(
    "state = {part:queued}, maybe_dup = maybe_dup OR $6,
     attempts = CASE WHEN $6 THEN attempts ELSE greatest(attempts - 1, 0) END,
     acked_at = NULL, smsc = coalesce($7::text, smsc),
     refused = CASE WHEN $8::text IS NOT NULL AND $7::text IS NOT NULL
        THEN array_append(refused, $7::text) ELSE refused END,
     target = coalesce($8::text, target)"
);
const FAIL_PERMANENT: &str =
    guarded!("state = {part:failed}, last_status = $6, done_at = $7, smsc = coalesce($8, smsc)");
const FAIL_EXPIRED: &str = guarded!("state = {part:expired}, done_at = $6");

/// Queued or waiting parts past their validity, oldest first. Index `part_validity`.
const EXPIRE_VALIDITY: &str = "UPDATE part p SET state = {part:expired}, done_at = $1
    FROM (SELECT message_id, n FROM part
          WHERE state IN ({part:queued}, {part:waiting}) AND valid_until < $1
          ORDER BY valid_until LIMIT $2 FOR UPDATE SKIP LOCKED) due
    WHERE p.message_id = due.message_id AND p.n = due.n
    RETURNING p.message_id";

/// Acknowledged parts whose receipt did not come by `$3`. Index `part_awaiting`.
const EXPIRE_RECEIPT: &str = "UPDATE part p SET state = {part:no_receipt}, done_at = $1
    FROM (SELECT message_id, n FROM part
          WHERE state = {part:submitted} AND dlr AND acked_at <= $3
          ORDER BY acked_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
    WHERE p.message_id = due.message_id AND p.n = due.n
    RETURNING p.message_id";

/// What re-splitting a message checks and carries over: parts blocking it, and the marks the
/// new parts inherit (possible duplicate, rerouted, target, refusals).
const RESPLIT_CHECK: &str = "SELECT
        count(*) FILTER (WHERE acked_at IS NOT NULL OR state NOT IN ({part:queued}, {part:waiting})),
        coalesce(bool_or(maybe_dup), false), max(rerouted_from), max(target),
        coalesce((SELECT refused FROM part WHERE message_id = $1 ORDER BY n LIMIT 1), '{}')
    FROM part WHERE message_id = $1";

const RESPLIT_INSERT: &str = "INSERT INTO part (message_id, n, route, priority, parts, dlr, state,
        data_coding, esm_class, sar_ref, segment, valid_until, maybe_dup, rerouted_from, target,
        refused)
    SELECT m.id, u.n, m.route, m.priority, cardinality($2::int[]), m.dlr, {part:queued}, u.dc,
        u.es, u.sr, u.sg, m.valid_until, $7, $8, $9, $10
    FROM message m, unnest($2::int[], $3::int[], $4::int[], $5::int[], $6::bytea[])
        AS u(n, dc, es, sr, sg)
    WHERE m.id = $1";

const RETARGET: &str = "WITH moving AS (
        SELECT message_id FROM part
        WHERE route = $1 AND target = $2 AND state IN ({part:queued}, {part:waiting})
        GROUP BY message_id HAVING bool_and(NOT ($3 = ANY(refused)))
        ORDER BY message_id LIMIT $4)
    UPDATE part p SET target = $3 FROM moving
    WHERE p.message_id = moving.message_id AND p.target = $2
        AND p.state IN ({part:queued}, {part:waiting})";
