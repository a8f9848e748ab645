//! The receipt path of the writer: acknowledging a part (and matching the receipts that came
//! before its `submit_sm_resp`), recording a delivery receipt (correlation by SMSC and
//! normalized id, duplicates by fingerprint, the log row), applying it to its part and message
//! or rerouting the part after UNDELIV/REJECTD.
//!
//! The race between a receipt and its acknowledgement, which several instances may record at
//! once, is closed in the database: both transactions first take
//! `pg_advisory_xact_lock(hash(SMSC, key))`, so the second one sees the first one's rows.
//! Held receipts are `dlr_log` rows without a message, never only in memory. Runs inside the
//! writer's batch transaction; must never commit.

use super::write::{MESSAGE_PARTS, MESSAGES_PARTS, W, not_found, part_state};
use super::writer::JobError;
use super::writer::{Command, Op, Out};
use crate::fnv::Fnv1a;
use crate::receipt;
use crate::store::sqlite::write::receipts::{
    Logged, NO_ID_KEY, dlr_body, find_receipt, fingerprint, outcome_code, outcome_from_code,
    stat_text,
};
use crate::store::{
    Ack, AckResult, IncomingReceipt, MessageId, MessageState, PartRef, PartState, ReceiptApplied,
    ReceiptRecorded, Reroute, RerouteRule, StoreError,
};
use futures_util::future::{try_join, try_join3};
use serde_json::json;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// The advisory lock key of the receipts and acknowledgement of one (SMSC, normalized id).
/// FNV-1a, so every instance and build computes the same key.
pub(super) fn lock_key(smsc: &str, key: &str) -> i64 {
    Fnv1a::new()
        .field(b"smppd receipt")
        .field(smsc.as_bytes())
        .field(key.as_bytes())
        .finish() as i64
}

/// What applying a receipt needs to know about its part.
#[derive(Clone)]
struct Info {
    state: PartState,
    route: String,
    /// Rerouted before (a part is rerouted at most once).
    rerouted: bool,
}

/// A part a receipt matched, with its receipts list.
type Matched = (PartRef, Info, Option<String>);

/// What a matched receipt did to its part.
enum Effect {
    Applied(ReceiptApplied, PartState),
    Rerouted(ReceiptApplied, Reroute),
}

/// The acknowledgements of a run under the claim guard: a part claimed by an instance is
/// acknowledged only under the claim that instance remembers ($9: this instance).
const ACKS: &str = "UPDATE part p SET state = {part:submitted}, smsc = u.smsc, smsc_id = u.sid,
        smsc_key = u.k, last_status = 0, acked_at = u.now, claimed_by = NULL
    FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::bigint[],
        $7::bool[], $8::bigint[]) AS u(m, n, smsc, sid, k, now, known, epoch)
    WHERE p.message_id = u.m AND p.n = u.n AND p.state <= {part:waiting}
      AND (p.claimed_by IS NULL OR (u.known AND p.state = {part:sending}
           AND p.claimed_by = $9::text AND p.claim_epoch IS NOT DISTINCT FROM u.epoch))
    RETURNING p.message_id, p.n, p.route, p.rerouted_from IS NOT NULL";

/// The receipts held for the run's (key, SMSC) pairs, oldest first. Index `dlr_unmatched`.
const HELD_MANY: &str = "SELECT d.id, d.stat, d.err, d.outcome, d.fp, d.smsc, d.smsc_key
    FROM dlr_log d JOIN unnest($1::text[], $2::text[]) AS u(k, smsc)
        ON d.smsc_key = u.k AND d.smsc = u.smsc
    WHERE d.message_id IS NULL ORDER BY d.id";

/// What the run's statements found.
struct AckRows {
    /// (message, part) → its route and whether it was rerouted before.
    updated: HashMap<(i64, i32), Info>,
    /// (SMSC, key) → the receipts held under it, oldest first.
    held: HashMap<(String, String), Vec<Row>>,
    /// Message → its parts' rows ([`MESSAGES_PARTS`]).
    parts: HashMap<i64, Vec<Row>>,
}

impl AckRows {
    fn new(updated: Vec<Row>, held_rows: Vec<Row>, part_rows: Vec<Row>) -> AckRows {
        let updated = updated
            .iter()
            .map(|r| {
                let info = Info {
                    state: PartState::Submitted,
                    route: r.get(2),
                    rerouted: r.get(3),
                };
                ((r.get(0), r.get(1)), info)
            })
            .collect();
        let mut held: HashMap<(String, String), Vec<Row>> = HashMap::new();
        for r in held_rows {
            held.entry((r.get(5), r.get(6))).or_default().push(r);
        }
        let mut parts: HashMap<i64, Vec<Row>> = HashMap::new();
        for r in part_rows {
            parts.entry(r.get(7)).or_default().push(r);
        }
        AckRows {
            updated,
            held,
            parts,
        }
    }
}

/// How many commands from the start of `cmds` form a run of acknowledgements that can share
/// statements: consecutive, for distinct parts and distinct (SMSC, id) pairs (a repeated one
/// starts the next run, so it sees the first one's writes).
pub(super) fn ack_run(cmds: &[Command]) -> usize {
    let mut parts = HashSet::new();
    let mut ids = HashSet::new();
    cmds.iter()
        .take_while(|c| match &c.op {
            Op::Acked(a) => {
                let key = receipt::submit_key(a.rule, &a.smsc_id);
                parts.insert(a.part) && ids.insert((a.smsc.clone(), key))
            }
            _ => false,
        })
        .count()
}

/// A domain error as the command's answer; a database error fails the batch.
fn domain<T>(r: Result<T, JobError>) -> Result<Result<T, StoreError>, tokio_postgres::Error> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(JobError::Domain(e)) => Ok(Err(e)),
        Err(JobError::Db(e)) => Err(e),
    }
}

/// The parts acknowledged under any of a receipt's keys ($1) by its SMSC ($2).
const MATCH_PARTS: &str = "SELECT message_id, n, state, receipts, smsc_key, route,
        rerouted_from IS NOT NULL
    FROM part WHERE smsc_key = ANY($1::text[]) AND smsc = $2";

/// An earlier copy of a receipt held unmatched (key, fingerprint, SMSC).
const HELD_COPY: &str = "SELECT id FROM dlr_log
    WHERE smsc_key = $1 AND message_id IS NULL AND fp = $2 AND smsc = $3 LIMIT 1";

/// A receipt applied to its part: state, the stat and err when it decides, when the part
/// ended, and the `log_id:fingerprint` entry of its receipts list.
const APPLY_RECEIPT: &str = "UPDATE part SET state = $3,
        stat = CASE WHEN $9 THEN $4 ELSE stat END,
        err = CASE WHEN $9 THEN $5 ELSE err END,
        done_at = CASE WHEN $6 THEN $7 ELSE done_at END,
        receipts = coalesce(receipts || ',', '') || $8
    WHERE message_id = $1 AND n = $2";

/// The receipt keys' locks, in key order (two transactions taking several never deadlock).
pub(super) const LOCKS: &str =
    "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k ORDER BY k";

/// Every advisory lock a batch's acknowledgements and receipts take (sorted, distinct): the
/// writer takes them all with BEGIN, so a transaction takes its locks in key order only.
pub(super) fn batch_locks(cmds: &[Command]) -> Vec<i64> {
    let mut locks = Vec::new();
    for c in cmds {
        match &c.op {
            Op::Acked(a) => {
                locks.push(lock_key(&a.smsc, &receipt::submit_key(a.rule, &a.smsc_id)));
            }
            Op::Receipt(r) => {
                locks.extend(W::receipt_keys(r).iter().map(|k| lock_key(&r.smsc, k)));
            }
            _ => {}
        }
    }
    locks.sort_unstable();
    locks.dedup();
    locks
}

impl W<'_> {
    /// A run of acknowledgements (distinct parts, distinct SMSC ids: see [`ack_run`]): their
    /// locks, the guarded update of every part, their held receipts and their messages' parts
    /// go in one round trip; then the parts with held receipts get them one by one, and every
    /// other message is settled, all in one statement.
    pub(super) async fn acked_many(
        &mut self,
        cmds: &mut [Command],
    ) -> Result<(), tokio_postgres::Error> {
        let acks: Vec<&Ack> = cmds
            .iter()
            .filter_map(|c| match &c.op {
                Op::Acked(a) => Some(a),
                _ => None,
            })
            .collect();
        let keys: Vec<String> = acks
            .iter()
            .map(|a| receipt::submit_key(a.rule, &a.smsc_id))
            .collect();
        let found = self.ack_rows(&acks, &keys).await?;
        let results = self.answer_acks(&acks, &keys, found).await?;
        for (cmd, result) in cmds.iter_mut().zip(results) {
            cmd.out = Some(result.map(Out::Ack));
        }
        Ok(())
    }

    /// The run's statements, pipelined: locks, guarded updates, held receipts, messages' parts.
    async fn ack_rows(
        &mut self,
        acks: &[&Ack],
        keys: &[String],
    ) -> Result<AckRows, tokio_postgres::Error> {
        let (mut known, mut epochs) = (Vec::new(), Vec::new());
        for a in acks {
            let (k, _, e) = self.take_claim(a.part);
            known.push(k);
            epochs.push(e);
        }
        let ids: Vec<i64> = acks.iter().map(|a| a.part.message.as_i64()).collect();
        let ns: Vec<i32> = acks.iter().map(|a| i32::from(a.part.n)).collect();
        let smscs: Vec<&str> = acks.iter().map(|a| a.smsc.as_str()).collect();
        let smsc_ids: Vec<&str> = acks.iter().map(|a| a.smsc_id.as_str()).collect();
        let nows: Vec<i64> = acks.iter().map(|a| a.now_ms).collect();
        let mut messages = ids.clone();
        messages.sort_unstable();
        messages.dedup();
        let me = self.ctx.instance.as_str();
        let update: [&(dyn ToSql + Sync); 9] = [
            &ids, &ns, &smscs, &smsc_ids, &keys, &nows, &known, &epochs, &me,
        ];
        // The update, then what reads its rows: one round trip, in order (the locks were
        // taken with BEGIN).
        let st = self
            .prepare(&[filled!(ACKS), HELD_MANY, MESSAGES_PARTS])
            .await?;
        let (updated, held, parts) = try_join3(
            self.c.query(&st[0], &update),
            self.c.query(&st[1], &[&keys, &smscs]),
            self.c.query(&st[2], &[&messages]),
        )
        .await?;
        Ok(AckRows::new(updated, held, parts))
    }

    /// Each acknowledgement's answer (see [`Self::acked_many`]).
    async fn answer_acks(
        &mut self,
        acks: &[&Ack],
        keys: &[String],
        mut found: AckRows,
    ) -> Result<Vec<Result<AckResult, StoreError>>, tokio_postgres::Error> {
        let mut results: Vec<Option<Result<AckResult, StoreError>>> =
            acks.iter().map(|_| None).collect();
        // Messages whose rows in `found` are stale: settled by a fresh read.
        let mut fresh = HashSet::new();
        let mut to_settle = Vec::new();
        for (k, a) in acks.iter().enumerate() {
            let part = (a.part.message.as_i64(), i32::from(a.part.n));
            let Some(info) = found.updated.remove(&part) else {
                fresh.insert(part.0);
                results[k] = Some(domain(self.ack_ignored(a).await)?);
                continue;
            };
            match found.held.remove(&(a.smsc.clone(), keys[k].clone())) {
                Some(held) => {
                    fresh.insert(part.0);
                    results[k] = Some(domain(self.apply_held(a, info, held).await)?);
                }
                None => to_settle.push(k),
            }
        }
        let mut states: HashMap<i64, Result<MessageState, StoreError>> = HashMap::new();
        let mut plans = Vec::new();
        for &k in &to_settle {
            let (a, id) = (acks[k], acks[k].part.message);
            if let Entry::Vacant(slot) = states.entry(id.as_i64()) {
                let state = if fresh.contains(&id.as_i64()) {
                    domain(self.recompute(id, a.now_ms).await.map(|c| c.1))?
                } else {
                    let rows = found.parts.get(&id.as_i64()).map_or(&[][..], Vec::as_slice);
                    domain(self.plan_settle(id, rows, a.now_ms).map(|(change, plan)| {
                        plans.extend(plan);
                        change.1
                    }))?
                };
                slot.insert(state);
            }
            let state = match &states[&id.as_i64()] {
                Ok(s) => Ok(*s),
                Err(e) => Err(StoreError::Internal(e.to_string())),
            };
            results[k] = Some(state.map(|state| AckResult {
                state,
                held_receipts: Vec::new(),
                rerouted: None,
            }));
        }
        // Only database errors come out of it (fail the batch); it raises no domain error.
        if let Err(JobError::Db(e)) = self.write_settled(plans).await {
            return Err(e);
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Internal("ack not answered".into()))))
            .collect())
    }

    /// A late, repeated or stale acknowledgement: nothing written; the message's state.
    async fn ack_ignored(&mut self, a: &Ack) -> Result<AckResult, JobError> {
        let (id, n) = (a.part.message.as_i64(), i32::from(a.part.n));
        let row = self
            .row(
                "SELECT state, claimed_by FROM part WHERE message_id = $1 AND n = $2",
                &[&id, &n],
            )
            .await?
            .ok_or_else(|| not_found(a.part))?;
        if part_state(row.get(0))?.is_pending() {
            let holder: Option<String> = row.get(1);
            tracing::warn!(
                part = %format!("{}/{}", a.part.message, a.part.n),
                claimed_by = holder.as_deref().unwrap_or("-"),
                "stale acknowledgement ignored: the part's claim is gone"
            );
        }
        let (_, state) = self.recompute(a.part.message, a.now_ms).await?;
        Ok(AckResult {
            state,
            held_receipts: Vec::new(),
            rerouted: None,
        })
    }

    /// Matches the held receipts to the part just acknowledged and applies them in arrival
    /// order; then the message's state.
    async fn apply_held(
        &mut self,
        a: &Ack,
        mut info: Info,
        held: Vec<Row>,
    ) -> Result<AckResult, JobError> {
        let mut applied = Vec::with_capacity(held.len());
        let mut rerouted = None;
        let (id, n) = (a.part.message.as_i64(), i32::from(a.part.n));
        if !held.is_empty() {
            let ids: Vec<i64> = held.iter().map(|r| r.get(0)).collect();
            self.exec(
                "UPDATE dlr_log SET message_id = $2, part_n = $3 WHERE id = ANY($1)",
                &[&ids, &id, &n],
            )
            .await?;
        }
        for r in &held {
            let (stat, err): (String, Option<String>) = (r.get(1), r.get(2));
            let logged = Logged {
                log_id: r.get(0),
                fp: r.get(4),
                stat: &stat,
                err: err.as_deref(),
                outcome: r
                    .get::<_, Option<i32>>(3)
                    .and_then(|c| outcome_from_code(i64::from(c))),
                smsc: &a.smsc,
                smsc_id: &a.smsc_id,
            };
            match self
                .apply_matched(a.part, &info, &a.reroute, logged, a.now_ms)
                .await?
            {
                Effect::Applied(done, next) => {
                    info.state = next;
                    applied.push(done);
                }
                Effect::Rerouted(done, reroute) => {
                    info.state = PartState::Queued;
                    info.rerouted = true;
                    applied.push(done);
                    rerouted = Some(reroute);
                }
            }
        }
        let state = match applied.last() {
            Some(last) => last.state,
            None => self.recompute(a.part.message, a.now_ms).await?.1,
        };
        Ok(AckResult {
            state,
            held_receipts: applied,
            rerouted,
        })
    }

    async fn apply_matched(
        &mut self,
        part: PartRef,
        info: &Info,
        rule: &RerouteRule,
        r: Logged<'_>,
        now: i64,
    ) -> Result<Effect, JobError> {
        if let Some((applied, reroute)) = self.reroute(part, info, rule, r, now).await? {
            return Ok(Effect::Rerouted(applied, reroute));
        }
        let (applied, next) = self.apply_receipt(part, info.state, r, now).await?;
        Ok(Effect::Applied(applied, next))
    }

    /// Settles a part (and its message) by a receipt already in the log; returns the part's
    /// new state too.
    async fn apply_receipt(
        &mut self,
        part: PartRef,
        cur: PartState,
        r: Logged<'_>,
        now: i64,
    ) -> Result<(ReceiptApplied, PartState), JobError> {
        let (next, decides) = receipt_effect(cur, r.outcome);
        let (id, n) = (part.message.as_i64(), i32::from(part.n));
        let entry = format!("{}:{}", r.log_id, r.fp);
        let ended = next.is_final() && next != cur;
        let code = next.code() as i32;
        let params: [&(dyn ToSql + Sync); 9] = [
            &id, &n, &code, &r.stat, &r.err, &ended, &now, &entry, &decides,
        ];
        // The part's update and its message's parts (read after it) in one round trip.
        let st = self.prepare(&[APPLY_RECEIPT, MESSAGE_PARTS]).await?;
        let (_, rows) = try_join(
            self.c.execute(&st[0], &params),
            self.c.query(&st[1], &[&id]),
        )
        .await?;
        let applied = self.finish_receipt(part, next, &rows, &r, now).await?;
        Ok((applied, next))
    }

    /// Logs a new receipt and applies it to the part it matched, in one round trip (the log
    /// row, the part's update naming that row, the message's parts); then the message's state
    /// and the `dlr` event in another.
    async fn log_and_apply(
        &mut self,
        r: &IncomingReceipt,
        key: &str,
        fp: i64,
        (part, cur): (PartRef, PartState),
    ) -> Result<ReceiptApplied, JobError> {
        let (next, decides) = receipt_effect(cur, r.outcome);
        let (id, n) = (part.message.as_i64(), i32::from(part.n));
        let (stat, err) = (stat_text(&r.receipt), r.receipt.err.as_deref());
        let ended = next.is_final() && next != cur;
        let code = next.code() as i32;
        let log = LogRow::new(r, key, fp, Some(part));
        let apply: [&(dyn ToSql + Sync); 9] = [
            &id, &n, &code, &stat, &err, &ended, &r.now_ms, &fp, &decides,
        ];
        let st = self
            .prepare(&[INSERT_LOG, filled!(APPLY_NEW_RECEIPT), MESSAGE_PARTS])
            .await?;
        let (logged, _, rows) = try_join3(
            self.c.query(&st[0], &log.params()),
            self.c.execute(&st[1], &apply),
            self.c.query(&st[2], &[&id]),
        )
        .await?;
        let logged = Logged {
            log_id: logged.first().map_or(0, |row| row.get(0)),
            fp,
            stat,
            err,
            outcome: r.outcome,
            smsc: &r.smsc,
            smsc_id: &r.receipt.id,
        };
        self.finish_receipt(part, next, &rows, &logged, r.now_ms)
            .await
    }

    /// After a receipt's part update: the message's state and the `dlr` event (one round trip).
    async fn finish_receipt(
        &mut self,
        part: PartRef,
        next: PartState,
        rows: &[Row],
        r: &Logged<'_>,
        now: i64,
    ) -> Result<ReceiptApplied, JobError> {
        let ((_, state), plan) = self.plan_settle(part.message, rows, now)?;
        let body = dlr_body(part, state, next, r);
        let seq = self
            .settle_with_event(plan, "dlr", part.message, &body, now)
            .await?;
        Ok(ReceiptApplied {
            log_id: r.log_id,
            part,
            state,
            seq,
        })
    }

    /// The keys a receipt is matched by, best first (none without an id).
    pub(super) fn receipt_keys(r: &IncomingReceipt) -> Vec<String> {
        if r.receipt.id.is_empty() {
            return Vec::new();
        }
        receipt::receipt_keys(r.rule, &r.receipt)
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect()
    }

    pub(super) async fn record_receipt(
        &mut self,
        r: &IncomingReceipt,
    ) -> Result<ReceiptRecorded, JobError> {
        let keys = Self::receipt_keys(r);
        let fp = fingerprint(r);
        let primary_key = keys.first().map_or(NO_ID_KEY, String::as_str);
        // The locks were taken with BEGIN.
        let st = self.prepare(&[MATCH_PARTS, HELD_COPY]).await?;
        let (parts, earlier) = try_join(
            self.c.query(&st[0], &[&keys, &r.smsc]),
            self.c.query(&st[1], &[&primary_key, &fp, &r.smsc]),
        )
        .await?;
        let matched = pick_part(&keys, &parts)?;
        let copy = match &matched {
            Some((_, _, receipts)) => find_receipt(receipts.as_deref(), fp),
            None => earlier.first().map(|row| row.get(0)),
        };
        if let Some(log_id) = copy {
            return Ok(ReceiptRecorded::Duplicate { log_id });
        }
        let Some((part, info, _)) = matched else {
            let log_id = self.log_receipt(r, primary_key, fp, None).await?;
            return Ok(ReceiptRecorded::Held { log_id });
        };
        if reroute_to(&info, &r.reroute, &r.smsc, r.outcome).is_none() {
            let applied = self
                .log_and_apply(r, primary_key, fp, (part, info.state))
                .await?;
            return Ok(ReceiptRecorded::Matched(applied));
        }
        let log_id = self.log_receipt(r, primary_key, fp, Some(part)).await?;
        let logged = Logged {
            log_id,
            fp,
            stat: stat_text(&r.receipt),
            err: r.receipt.err.as_deref(),
            outcome: r.outcome,
            smsc: &r.smsc,
            smsc_id: &r.receipt.id,
        };
        Ok(
            match self
                .apply_matched(part, &info, &r.reroute, logged, r.now_ms)
                .await?
            {
                Effect::Applied(applied, _) => ReceiptRecorded::Matched(applied),
                Effect::Rerouted(applied, reroute) => {
                    ReceiptRecorded::Rerouted { applied, reroute }
                }
            },
        )
    }

    /// Writes the delivery-report log row (matched to `part`, or held); returns its id.
    async fn log_receipt(
        &mut self,
        r: &IncomingReceipt,
        key: &str,
        fp: i64,
        part: Option<PartRef>,
    ) -> Result<i64, JobError> {
        let log = LogRow::new(r, key, fp, part);
        let rows = self.rows(INSERT_LOG, &log.params()).await?;
        Ok(rows.first().map_or(0, |row| row.get(0)))
    }

    /// Sends a part back to the queue instead of settling it (see the SQLite writer's
    /// `reroute`), headed for the first SMSC of its route other than the receipt's.
    async fn reroute(
        &mut self,
        part: PartRef,
        info: &Info,
        rule: &RerouteRule,
        r: Logged<'_>,
        now: i64,
    ) -> Result<Option<(ReceiptApplied, Reroute)>, JobError> {
        let Some(to) = reroute_to(info, rule, r.smsc, r.outcome) else {
            return Ok(None);
        };
        let target = self
            .ctx
            .settings
            .route_smscs(&info.route)
            .iter()
            .find(|s| s.as_str() != r.smsc)
            .cloned()
            .unwrap_or_else(|| to.clone());
        let (id, n) = (part.message.as_i64(), i32::from(part.n));
        let entry = format!("{}:{}", r.log_id, r.fp);
        self.exec(
            filled!(
                "UPDATE part SET state = {part:queued}, ready_at = 0, rerouted_from = $3, stat = $4,
                    err = $5, acked_at = NULL, receipts = coalesce(receipts || ',', '') || $6,
                    target = $7
                 WHERE message_id = $1 AND n = $2"
            ),
            &[&id, &n, &r.smsc, &r.stat, &r.err, &entry, &target],
        )
        .await?;
        let state = self.recompute(part.message, now).await?.1;
        let body = json!({
            "id": part.message.to_string(), "part": part.n, "state": state.as_str(),
            "part_state": PartState::Queued.as_str(), "stat": r.stat, "err": r.err,
            "smsc": r.smsc, "smsc_id": r.smsc_id, "rerouted_to": to,
        })
        .to_string();
        let seq = self.event("dlr", Some(part.message), &body, now).await?;
        let applied = ReceiptApplied {
            log_id: r.log_id,
            part,
            state,
            seq,
        };
        let reroute = Reroute {
            part,
            route: info.route.clone(),
            from_smsc: r.smsc.to_owned(),
            to_smsc: to,
            stat: r.stat.to_owned(),
        };
        Ok(Some((applied, reroute)))
    }
}

/// What a receipt does to a part in state `cur`: its next state, and whether the receipt's
/// stat and err decide it (the part shows the stat that decided its state: a late
/// intermediate receipt, or a final ACCEPTD after DELIVRD, is logged but leaves them).
fn receipt_effect(cur: PartState, outcome: Option<receipt::Outcome>) -> (PartState, bool) {
    let next = match (cur, outcome) {
        // A final ACCEPTD says less than a DELIVRD already received: it does not undo it.
        (PartState::Delivered, Some(receipt::Outcome::Accepted)) => PartState::Delivered,
        (s, Some(o)) if !s.is_pending() && s != PartState::Failed => PartState::from_outcome(o),
        (s, _) => s,
    };
    let decides = !cur.is_final()
        || next != cur
        || outcome.is_some_and(|o| PartState::from_outcome(o) == next);
    (next, decides)
}

/// The SMSC a receipt reroutes its part to (see the SQLite writer's `reroute`): an UNDELIV or
/// REJECTD for a submitted part never rerouted before, on a route that reroutes and has
/// another SMSC.
fn reroute_to(
    info: &Info,
    rule: &RerouteRule,
    smsc: &str,
    outcome: Option<receipt::Outcome>,
) -> Option<String> {
    let failed = matches!(
        outcome,
        Some(receipt::Outcome::Undeliverable | receipt::Outcome::Rejected)
    );
    if rule.is_empty() || info.rerouted || info.state != PartState::Submitted || !failed {
        return None;
    }
    rule.next_smsc(&info.route, smsc).map(str::to_owned)
}

/// A delivery-report log row's values, for [`INSERT_LOG`].
struct LogRow<'r> {
    r: &'r IncomingReceipt,
    key: &'r str,
    fp: i64,
    stat: &'r str,
    tlv_state: Option<i32>,
    tlv_err: Option<String>,
    submit: Option<i64>,
    done: Option<i64>,
    outcome: Option<i32>,
    message: Option<i64>,
    n: Option<i32>,
}

impl<'r> LogRow<'r> {
    fn new(r: &'r IncomingReceipt, key: &'r str, fp: i64, part: Option<PartRef>) -> LogRow<'r> {
        let rc = &r.receipt;
        LogRow {
            r,
            key,
            fp,
            stat: stat_text(rc),
            tlv_state: r.tlv_state.map(i32::from),
            tlv_err: r.tlv_network_error.map(hex::encode),
            submit: rc.submit_date.map(|d| d.as_number()),
            done: rc.done_date.map(|d| d.as_number()),
            outcome: r.outcome.map(|o| outcome_code(o) as i32),
            message: part.map(|p| p.message.as_i64()),
            n: part.map(|p| i32::from(p.n)),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 15] {
        let rc = &self.r.receipt;
        [
            &self.r.now_ms,
            &self.r.smsc,
            &rc.id,
            &self.key,
            &self.fp,
            &self.r.raw,
            &self.tlv_state,
            &self.tlv_err,
            &self.stat,
            &rc.err,
            &self.submit,
            &self.done,
            &self.outcome,
            &self.message,
            &self.n,
        ]
    }
}

/// The delivery-report log row of a receipt; returns its id.
const INSERT_LOG: &str = "INSERT INTO dlr_log (at, smsc, smsc_id, smsc_key, fp, raw, tlv_state,
        tlv_err, stat, err, submit_ts, done_ts, outcome, message_id, part_n)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
    RETURNING id";

/// [`APPLY_RECEIPT`] right after [`INSERT_LOG`] in the same pipeline: the receipts list's
/// entry names the log row just inserted (`currval` of its id sequence, in this session).
const APPLY_NEW_RECEIPT: &str = "UPDATE part SET state = $3,
        stat = CASE WHEN $9 THEN $4 ELSE stat END,
        err = CASE WHEN $9 THEN $5 ELSE err END,
        done_at = CASE WHEN $6 THEN $7 ELSE done_at END,
        receipts = coalesce(receipts || ',', '')
            || currval(pg_get_serial_sequence('dlr_log', 'id'))::text || ':' || $8::bigint::text
    WHERE message_id = $1 AND n = $2";

/// The newest part under the first of `keys` that has one (SMSCs recycle ids).
fn pick_part(keys: &[String], rows: &[Row]) -> Result<Option<Matched>, JobError> {
    for key in keys {
        let mut best: Option<(PartRef, &Row)> = None;
        for row in rows
            .iter()
            .filter(|r| r.get::<_, Option<&str>>(4) == Some(key))
        {
            let p = PartRef {
                message: MessageId::from_i64(row.get(0)),
                n: row.get::<_, i32>(1) as u8,
            };
            if best.as_ref().is_none_or(|(b, _)| p > *b) {
                best = Some((p, row));
            }
        }
        if let Some((p, row)) = best {
            let info = Info {
                state: part_state(row.get(2))?,
                route: row.get(5),
                rerouted: row.get(6),
            };
            return Ok(Some((p, info, row.get(3))));
        }
    }
    Ok(None)
}
