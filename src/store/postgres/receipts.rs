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

use super::write::{
    MESSAGE_PARTS, MESSAGES_PARTS, MessageParts, MessageRow, SETTLE, Settled, W, not_found,
    part_state,
};
use super::writer::JobError;
use super::writer::{Command, Op, Out};
use crate::fnv::Fnv1a;
use crate::receipt;
use crate::store::sqlite::write::receipts::{
    Logged, NO_ID_KEY, dlr_body, find_receipt, fingerprint, outcome_code, outcome_from_code,
    rerouted_body, stat_text,
};
use crate::store::{
    Ack, AckResult, IncomingReceipt, MessageId, MessageState, PartRef, PartState, ReceiptApplied,
    ReceiptRecorded, Reroute, RerouteRule, StoreError,
};
use futures_util::future::{try_join, try_join3, try_join4};
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

/// Every advisory lock a batch's acknowledgements, receipts and capped accepts take (sorted,
/// distinct): the writer takes them all with BEGIN, so a transaction takes its locks in key
/// order only.
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
            Op::Accept(m) => locks.extend(super::caps::locks(m)),
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
        let body = rerouted_body(part, state, &r, &to);
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

/// A delivery-report log row's values, for [`INSERT_LOGS`].
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
}

/// How many commands from the start of `cmds` form a run of receipts that can share
/// statements: consecutive, none repeating an (SMSC, key) of another (a repeated one starts
/// the next run, so it sees the first one's writes: duplicates, two receipts for one part).
pub(super) fn receipt_run(cmds: &[Command]) -> usize {
    let mut seen: HashSet<(&str, String)> = HashSet::new();
    cmds.iter()
        .take_while(|c| match &c.op {
            Op::Receipt(r) => {
                let mut keys = W::receipt_keys(r);
                if keys.is_empty() {
                    keys.push(NO_ID_KEY.to_owned());
                }
                if keys
                    .iter()
                    .any(|k| seen.contains(&(r.smsc.as_str(), k.clone())))
                {
                    return false;
                }
                seen.extend(keys.into_iter().map(|k| (r.smsc.as_str(), k)));
                true
            }
            _ => false,
        })
        .count()
}

/// The parts acknowledged under the run's (key $1, SMSC $2) pairs: one index lookup per pair,
/// forced by the lateral subquery (`OFFSET 0` keeps it from being flattened): without
/// statistics (a new database) `= ANY` of a long array or a join was planned as a sequential
/// scan. Index `part_smsc_key`.
const MATCH_MANY: &str = "SELECT p.message_id, p.n, p.state, p.receipts, p.smsc_key, p.route,
        p.rerouted_from IS NOT NULL, p.smsc
    FROM unnest($1::text[], $2::text[]) AS u(k, smsc)
        CROSS JOIN LATERAL (SELECT * FROM part
            WHERE smsc_key = u.k AND smsc = u.smsc OFFSET 0) AS p";

/// Earlier copies held unmatched of the run's receipts (primary keys $1, fingerprints $2);
/// the exact (SMSC, key, fingerprint) triples are picked in memory. Index `dlr_unmatched`.
const HELD_COPIES: &str = "SELECT id, smsc_key, fp, smsc FROM dlr_log
    WHERE message_id IS NULL AND smsc_key = ANY($1::text[]) AND fp = ANY($2::bigint[])
    ORDER BY id";

/// The parts (and message rows) of every message the run's receipts may match.
const RUN_PARTS: &str = "SELECT p.message_id, p.n, p.state, p.acked_at, p.dlr, m.state,
        m.text IS NOT NULL, m.submitted_at IS NOT NULL, m.done_at IS NOT NULL
    FROM (SELECT DISTINCT t.message_id
          FROM unnest($1::text[], $2::text[]) AS u(k, smsc)
              CROSS JOIN LATERAL (SELECT message_id FROM part
                  WHERE smsc_key = u.k AND smsc = u.smsc OFFSET 0) AS t) AS t
        CROSS JOIN LATERAL (SELECT * FROM message WHERE id = t.message_id OFFSET 0) AS m
        CROSS JOIN LATERAL (SELECT * FROM part WHERE message_id = t.message_id OFFSET 0) AS p";

/// Ids for the run's log rows, in arrival order.
const LOG_IDS: &str =
    "SELECT nextval(pg_get_serial_sequence('dlr_log', 'id')) FROM generate_series(1, $1::int)";

/// The run's log rows, with their ids.
const INSERT_LOGS: &str = "INSERT INTO dlr_log (id, at, smsc, smsc_id, smsc_key, fp, raw,
        tlv_state, tlv_err, stat, err, submit_ts, done_ts, outcome, message_id, part_n)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
        $6::bigint[], $7::bytea[], $8::int[], $9::text[], $10::text[], $11::text[],
        $12::bigint[], $13::bigint[], $14::int[], $15::bigint[], $16::int[])";

/// The run's receipts applied to their parts (distinct parts): the state, the stat and err when
/// the receipt decides, when the part ended, the receipts list's `log_id:fingerprint` entry;
/// a reroute (`target` set) also requeues the part for that SMSC (see [`W::reroute`]).
const APPLY_MANY: &str = "UPDATE part p SET state = u.state,
        stat = CASE WHEN u.decides THEN u.stat ELSE p.stat END,
        err = CASE WHEN u.decides THEN u.err ELSE p.err END,
        done_at = CASE WHEN u.ended THEN u.now ELSE p.done_at END,
        receipts = coalesce(p.receipts || ',', '') || u.entry,
        ready_at = CASE WHEN u.target IS NULL THEN p.ready_at ELSE 0 END,
        rerouted_from = CASE WHEN u.target IS NULL THEN p.rerouted_from ELSE u.smsc END,
        acked_at = CASE WHEN u.target IS NULL THEN p.acked_at ELSE NULL END,
        target = coalesce(u.target, p.target)
    FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::text[], $6::bool[],
        $7::bigint[], $8::text[], $9::bool[], $10::text[], $11::text[])
        AS u(m, n, state, stat, err, ended, now, entry, decides, smsc, target)
    WHERE p.message_id = u.m AND p.n = u.n";

/// The run's `dlr` events, in order; returns their row ids in that order.
const INSERT_DLR_EVENTS: &str = "INSERT INTO event (at, kind, message_id, body)
    SELECT a, 'dlr', m, b FROM unnest($1::bigint[], $2::bigint[], $3::text[])
        WITH ORDINALITY AS u(a, m, b, o)
    ORDER BY o
    RETURNING id";

/// A message of the run, as its receipts change it (in memory, in arrival order).
struct RunMessage {
    /// (part number, state, acknowledged at).
    parts: Vec<(i32, PartState, Option<i64>)>,
    row: MessageRow,
    /// The row's update merged over the run's receipts (see [`merge_plan`]).
    plan: Option<Settled>,
}

impl RunMessage {
    /// Sets a part's state (and drops its acknowledgement when it is requeued); returns the
    /// message's state, and merges the row's update.
    fn apply(
        &mut self,
        w: &W<'_>,
        id: MessageId,
        n: i32,
        next: PartState,
        requeued: bool,
        now: i64,
    ) -> MessageState {
        for p in &mut self.parts {
            if p.0 == n {
                p.1 = next;
                if requeued {
                    p.2 = None;
                }
            }
        }
        let states: Vec<PartState> = self.parts.iter().map(|p| p.1).collect();
        let first_ack = self.parts.iter().filter_map(|p| p.2).min();
        let parts = MessageParts {
            states: &states,
            first_ack,
        };
        let ((_, new), plan) = w.plan_states(id, parts, self.row, now);
        if let Some(step) = plan {
            self.row.state = new;
            self.row.submitted |= step.any_acked;
            self.row.done = step.is_done;
            self.row.has_text &= !step.drop_text;
            merge_plan(&mut self.plan, step);
        }
        new
    }
}

/// One update of a message row with the effect of `step` run after `acc` (the same as running
/// both: the first acknowledgement time and the time it became done stay the earliest). One
/// difference: a message that was done before the run, stops being done (a reroute) and is
/// done again within the run keeps its old `done_at` instead of the later time.
fn merge_plan(acc: &mut Option<Settled>, step: Settled) {
    let Some(a) = acc else {
        *acc = Some(step);
        return;
    };
    a.state = step.state;
    if !a.any_acked && step.any_acked {
        a.any_acked = true;
        a.first_ack = step.first_ack;
    }
    if step.is_done && !a.is_done {
        a.now = step.now;
    }
    a.is_done = step.is_done;
    a.drop_text |= step.drop_text;
}

/// The run's rows for [`INSERT_LOGS`], as columns.
#[derive(Default)]
struct LogCols<'r> {
    id: Vec<i64>,
    at: Vec<i64>,
    smsc: Vec<&'r str>,
    smsc_id: Vec<&'r str>,
    key: Vec<&'r str>,
    fp: Vec<i64>,
    raw: Vec<&'r [u8]>,
    tlv_state: Vec<Option<i32>>,
    tlv_err: Vec<Option<String>>,
    stat: Vec<&'r str>,
    err: Vec<Option<&'r str>>,
    submit: Vec<Option<i64>>,
    done: Vec<Option<i64>>,
    outcome: Vec<Option<i32>>,
    message: Vec<Option<i64>>,
    n: Vec<Option<i32>>,
}

impl<'r> LogCols<'r> {
    fn push(&mut self, id: i64, row: LogRow<'r>) {
        let rc = &row.r.receipt;
        self.id.push(id);
        self.at.push(row.r.now_ms);
        self.smsc.push(&row.r.smsc);
        self.smsc_id.push(&rc.id);
        self.key.push(row.key);
        self.fp.push(row.fp);
        self.raw.push(&row.r.raw);
        self.tlv_state.push(row.tlv_state);
        self.tlv_err.push(row.tlv_err);
        self.stat.push(row.stat);
        self.err.push(rc.err.as_deref());
        self.submit.push(row.submit);
        self.done.push(row.done);
        self.outcome.push(row.outcome);
        self.message.push(row.message);
        self.n.push(row.n);
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 16] {
        [
            &self.id,
            &self.at,
            &self.smsc,
            &self.smsc_id,
            &self.key,
            &self.fp,
            &self.raw,
            &self.tlv_state,
            &self.tlv_err,
            &self.stat,
            &self.err,
            &self.submit,
            &self.done,
            &self.outcome,
            &self.message,
            &self.n,
        ]
    }
}

/// The run's rows for [`APPLY_MANY`], as columns.
#[derive(Default)]
struct ApplyCols<'r> {
    m: Vec<i64>,
    n: Vec<i32>,
    state: Vec<i32>,
    stat: Vec<&'r str>,
    err: Vec<Option<&'r str>>,
    ended: Vec<bool>,
    now: Vec<i64>,
    entry: Vec<String>,
    decides: Vec<bool>,
    smsc: Vec<&'r str>,
    target: Vec<Option<String>>,
}

impl ApplyCols<'_> {
    fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.m,
            &self.n,
            &self.state,
            &self.stat,
            &self.err,
            &self.ended,
            &self.now,
            &self.entry,
            &self.decides,
            &self.smsc,
            &self.target,
        ]
    }
}

/// A receipt of the run, once matched: its answer waits for its event's row id.
enum Answer {
    Done(ReceiptRecorded),
    /// Applied: the answer, and the index of its event in the run's events.
    Applied(ReceiptApplied, Option<Reroute>, usize),
}

/// A run of receipts as the commands give them, with what matching needs of each: its keys
/// (best first) and its fingerprint.
struct ReceiptRun<'c> {
    rs: Vec<&'c IncomingReceipt>,
    keys: Vec<Vec<String>>,
    fps: Vec<i64>,
}

impl<'c> ReceiptRun<'c> {
    fn new(cmds: &'c [Command]) -> ReceiptRun<'c> {
        let rs: Vec<&IncomingReceipt> = cmds
            .iter()
            .filter_map(|c| match &c.op {
                Op::Receipt(r) => Some(r),
                _ => None,
            })
            .collect();
        let keys = rs.iter().map(|r| W::receipt_keys(r)).collect();
        let fps = rs.iter().map(|r| fingerprint(r)).collect();
        ReceiptRun { rs, keys, fps }
    }

    /// The key the `k`th receipt is logged and held under ([`NO_ID_KEY`] without an id).
    fn primary(&self, k: usize) -> &str {
        self.keys[k].first().map_or(NO_ID_KEY, String::as_str)
    }
}

/// What the run's read round trip returned, as rows.
struct RunRows {
    /// The parts acknowledged under the run's keys ([`MATCH_MANY`]).
    parts: Vec<Row>,
    /// Earlier copies held unmatched ([`HELD_COPIES`]).
    held: Vec<Row>,
    /// Their messages' parts and rows ([`RUN_PARTS`]).
    messages: Vec<Row>,
    /// Ids for the log rows ([`LOG_IDS`]).
    log_ids: Vec<Row>,
}

/// The run's rows, as matching reads them.
struct Found<'f> {
    parts: &'f [Row],
    /// (SMSC, key, fingerprint) → the first held copy's log id.
    held: HashMap<(&'f str, &'f str, i64), i64>,
    /// Message → its parts and row, as the run's receipts change them.
    messages: HashMap<i64, RunMessage>,
    log_ids: Vec<i64>,
}

impl<'f> Found<'f> {
    fn new(rows: &'f RunRows) -> Found<'f> {
        let mut messages: HashMap<i64, RunMessage> = HashMap::new();
        for r in &rows.messages {
            let Ok(state) = part_state(r.get(2)) else {
                continue;
            };
            let m = messages.entry(r.get(0)).or_insert_with(|| RunMessage {
                parts: Vec::new(),
                row: MessageRow {
                    dlr: r.get(4),
                    state: MessageState::from_code(i64::from(r.get::<_, i32>(5)))
                        .unwrap_or(MessageState::Queued),
                    has_text: r.get(6),
                    submitted: r.get(7),
                    done: r.get(8),
                },
                plan: None,
            });
            m.parts.push((r.get(1), state, r.get(3)));
        }
        let mut held: HashMap<(&str, &str, i64), i64> = HashMap::new();
        for r in &rows.held {
            let (key, fp, smsc): (&str, i64, &str) = (r.get(1), r.get(2), r.get(3));
            held.entry((smsc, key, fp)).or_insert(r.get(0));
        }
        Found {
            parts: &rows.parts,
            held,
            messages,
            log_ids: rows.log_ids.iter().map(|r| r.get(0)).collect(),
        }
    }
}

/// What the run's write round trip writes, as columns: log rows, part updates, `dlr` events.
#[derive(Default)]
struct RunWrites<'r> {
    logs: LogCols<'r>,
    apply: ApplyCols<'r>,
    ev_at: Vec<i64>,
    ev_msg: Vec<i64>,
    ev_body: Vec<String>,
}

/// A receipt of the run matched to its part (not a copy): what its effect needs.
struct Hit<'r> {
    r: &'r IncomingReceipt,
    part: PartRef,
    info: Info,
    logged: Logged<'r>,
    /// The index of its event in the run's events.
    event: usize,
}

impl Hit<'_> {
    fn applied(&self, state: MessageState) -> ReceiptApplied {
        ReceiptApplied {
            log_id: self.logged.log_id,
            part: self.part,
            state,
            seq: 0,
        }
    }
}

impl<'r> RunWrites<'r> {
    /// The columns every applied receipt writes, reroute or not; returns its [`Hit`].
    fn hit(
        &mut self,
        r: &'r IncomingReceipt,
        part: PartRef,
        info: Info,
        logged: Logged<'r>,
    ) -> Hit<'r> {
        self.apply.m.push(part.message.as_i64());
        self.apply.n.push(i32::from(part.n));
        self.apply.stat.push(logged.stat);
        self.apply.err.push(logged.err);
        self.apply.now.push(r.now_ms);
        self.apply
            .entry
            .push(format!("{}:{}", logged.log_id, logged.fp));
        self.apply.smsc.push(&r.smsc);
        let event = self.ev_at.len();
        self.ev_at.push(r.now_ms);
        self.ev_msg.push(part.message.as_i64());
        Hit {
            r,
            part,
            info,
            logged,
            event,
        }
    }
}

impl W<'_> {
    /// A run of receipts (no (SMSC, key) repeated: see [`receipt_run`]): one round trip reads
    /// their parts, earlier held copies, their messages' parts and ids for their log rows; the
    /// receipts are matched and applied in memory in arrival order; a second round trip writes
    /// every log row, part, message and `dlr` event (one statement each). The advisory locks
    /// were taken with BEGIN.
    pub(super) async fn receipt_many(
        &mut self,
        cmds: &mut [Command],
    ) -> Result<(), tokio_postgres::Error> {
        let run = ReceiptRun::new(cmds);
        let rows = self.read_run(&run).await?;
        let mut found = Found::new(&rows);
        let mut out = RunWrites::default();
        let mut answers: Vec<Result<Answer, StoreError>> = Vec::with_capacity(run.rs.len());
        for k in 0..run.rs.len() {
            answers.push(domain(self.apply_one(&run, k, &mut found, &mut out))?);
        }
        let event_ids = self.write_run(out, found.messages).await?;
        answer(cmds, answers, &event_ids);
        Ok(())
    }

    /// The run's read round trip: its parts, earlier held copies, its messages' parts and ids
    /// for its log rows (four pipelined queries).
    async fn read_run(&mut self, run: &ReceiptRun<'_>) -> Result<RunRows, tokio_postgres::Error> {
        let primaries: Vec<&str> = (0..run.rs.len()).map(|k| run.primary(k)).collect();
        let (mut all_keys, mut smscs): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
        for (r, ks) in run.rs.iter().zip(&run.keys) {
            for k in ks {
                all_keys.push(k);
                smscs.push(&r.smsc);
            }
        }
        let count = run.rs.len() as i32;
        let st = self
            .prepare(&[MATCH_MANY, HELD_COPIES, RUN_PARTS, LOG_IDS])
            .await?;
        let (parts, held, messages, log_ids) = try_join4(
            self.c.query(&st[0], &[&all_keys, &smscs]),
            self.c.query(&st[1], &[&primaries, &run.fps]),
            self.c.query(&st[2], &[&all_keys, &smscs]),
            self.c.query(&st[3], &[&count]),
        )
        .await?;
        Ok(RunRows {
            parts,
            held,
            messages,
            log_ids,
        })
    }

    /// Matches the `k`th receipt of the run and applies it in memory: a copy of one already
    /// logged, a receipt held for a part not acknowledged yet, a reroute or an ordinary effect.
    fn apply_one<'r>(
        &self,
        run: &'r ReceiptRun<'_>,
        k: usize,
        found: &mut Found<'_>,
        out: &mut RunWrites<'r>,
    ) -> Result<Answer, JobError> {
        let (r, fp, primary) = (run.rs[k], run.fps[k], run.primary(k));
        let matched = pick_part_of(&run.keys[k], &r.smsc, found.parts)?;
        let copy = match &matched {
            Some((_, _, receipts)) => find_receipt(receipts.as_deref(), fp),
            None => found.held.get(&(r.smsc.as_str(), primary, fp)).copied(),
        };
        if let Some(log_id) = copy {
            return Ok(Answer::Done(ReceiptRecorded::Duplicate { log_id }));
        }
        let log_id = found.log_ids.get(k).copied().unwrap_or(0);
        let Some((part, info, _)) = matched else {
            out.logs.push(log_id, LogRow::new(r, primary, fp, None));
            return Ok(Answer::Done(ReceiptRecorded::Held { log_id }));
        };
        let Some(message) = found.messages.get_mut(&part.message.as_i64()) else {
            return Err(JobError::Domain(StoreError::NotFound {
                what: "message",
                id: part.message.to_string(),
            }));
        };
        out.logs
            .push(log_id, LogRow::new(r, primary, fp, Some(part)));
        let logged = Logged::of(r, log_id, fp);
        let hit = out.hit(r, part, info, logged);
        Ok(
            match reroute_to(&hit.info, &r.reroute, &r.smsc, r.outcome) {
                Some(to) => self.reroute_in_run(hit, to, message, out),
                None => self.effect_in_run(hit, message, out),
            },
        )
    }

    /// A receipt that reroutes its part (see [`Self::reroute`]): requeued for the first SMSC
    /// of its route other than the receipt's.
    fn reroute_in_run(
        &self,
        hit: Hit<'_>,
        to: String,
        message: &mut RunMessage,
        out: &mut RunWrites<'_>,
    ) -> Answer {
        let r = hit.r;
        let target = self
            .ctx
            .settings
            .route_smscs(&hit.info.route)
            .iter()
            .find(|s| s.as_str() != r.smsc)
            .cloned()
            .unwrap_or_else(|| to.clone());
        out.apply.state.push(PartState::Queued.code() as i32);
        out.apply.decides.push(true);
        out.apply.ended.push(false);
        out.apply.target.push(Some(target));
        let n = i32::from(hit.part.n);
        let state = message.apply(self, hit.part.message, n, PartState::Queued, true, r.now_ms);
        out.ev_body
            .push(rerouted_body(hit.part, state, &hit.logged, &to));
        let reroute = Reroute {
            part: hit.part,
            route: hit.info.route.clone(),
            from_smsc: r.smsc.clone(),
            to_smsc: to,
            stat: hit.logged.stat.to_owned(),
        };
        Answer::Applied(hit.applied(state), Some(reroute), hit.event)
    }

    /// A receipt's ordinary effect on its part (see [`receipt_effect`]).
    fn effect_in_run(
        &self,
        hit: Hit<'_>,
        message: &mut RunMessage,
        out: &mut RunWrites<'_>,
    ) -> Answer {
        let cur = hit.info.state;
        let (next, decides) = receipt_effect(cur, hit.r.outcome);
        out.apply.state.push(next.code() as i32);
        out.apply.decides.push(decides);
        out.apply.ended.push(next.is_final() && next != cur);
        out.apply.target.push(None);
        let n = i32::from(hit.part.n);
        let state = message.apply(self, hit.part.message, n, next, false, hit.r.now_ms);
        out.ev_body
            .push(dlr_body(hit.part, state, next, &hit.logged));
        Answer::Applied(hit.applied(state), None, hit.event)
    }

    /// The run's write round trip: every log row, part, message and `dlr` event, one statement
    /// each (four pipelined); returns the events' row ids in the run's order.
    async fn write_run(
        &mut self,
        out: RunWrites<'_>,
        messages: HashMap<i64, RunMessage>,
    ) -> Result<Vec<i64>, tokio_postgres::Error> {
        let plans: Vec<Settled> = messages.into_values().filter_map(|m| m.plan).collect();
        let st = self
            .prepare(&[INSERT_LOGS, APPLY_MANY, INSERT_DLR_EVENTS, SETTLE])
            .await?;
        let (_, _, event_ids, _) = try_join4(
            self.c.execute(&st[0], &out.logs.params()),
            self.c.execute(&st[1], &out.apply.params()),
            self.c
                .query(&st[2], &[&out.ev_at, &out.ev_msg, &out.ev_body]),
            self.write_settled_with(&st[3], &plans),
        )
        .await?;
        let event_ids: Vec<i64> = event_ids.iter().map(|r| r.get(0)).collect();
        self.events.extend(&event_ids);
        Ok(event_ids)
    }
}

/// Each receipt's answer, an applied one with its event's row id as its `seq`.
fn answer(cmds: &mut [Command], answers: Vec<Result<Answer, StoreError>>, event_ids: &[i64]) {
    for (cmd, answer) in cmds.iter_mut().zip(answers) {
        let out = answer.map(|a| match a {
            Answer::Done(r) => r,
            Answer::Applied(mut applied, reroute, event) => {
                applied.seq = event_ids.get(event).copied().unwrap_or(0);
                match reroute {
                    Some(reroute) => ReceiptRecorded::Rerouted { applied, reroute },
                    None => ReceiptRecorded::Matched(applied),
                }
            }
        });
        cmd.out = Some(out.map(Out::Receipt));
    }
}

/// The newest part of `smsc` under the first of `keys` that has one (SMSCs recycle ids).
fn pick_part_of(keys: &[String], smsc: &str, rows: &[Row]) -> Result<Option<Matched>, JobError> {
    for key in keys {
        let mut best: Option<(PartRef, &Row)> = None;
        for row in rows.iter().filter(|r| {
            r.get::<_, Option<&str>>(4) == Some(key) && r.get::<_, Option<&str>>(7) == Some(smsc)
        }) {
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
