//! The receipt path of the writer: recording a delivery receipt (correlation by SMSC and
//! normalized id, duplicate detection by fingerprint, the log row), applying it to its part and
//! message (or rerouting the part after UNDELIV/REJECTD), and holding a receipt that came before
//! its part's `submit_sm_resp` until the acknowledgement matches it. Runs on the writer thread
//! inside the batch transaction, like every write command; must never commit.

use super::{JobError, PartInfo, Writer, part_state, sql};
use crate::fnv::Fnv1a;
use crate::receipt::{self, IdRule, Outcome};
use crate::store::{
    Ack, AckResult, IncomingReceipt, MessageId, MessageState, PartRef, PartState, ReceiptApplied,
    ReceiptRecorded, Reroute, RerouteRule,
};
use rusqlite::{Connection, OptionalExtension, params};

/// The `dlr_log.smsc_key` of a receipt that carries no message id (nothing to correlate): kept
/// unmatched for ever. `canonical_id` never yields upper case, so no part's key is ever this.
pub(crate) const NO_ID_KEY: &str = "<NO ID>";

pub(crate) fn outcome_code(o: Outcome) -> i64 {
    PartState::from_outcome(o).code()
}

pub(crate) fn outcome_from_code(c: i64) -> Option<Outcome> {
    match PartState::from_code(c)? {
        PartState::Delivered => Some(Outcome::Delivered),
        PartState::Accepted => Some(Outcome::Accepted),
        PartState::Expired => Some(Outcome::Expired),
        PartState::Undeliverable => Some(Outcome::Undeliverable),
        PartState::Rejected => Some(Outcome::Rejected),
        _ => None,
    }
}

/// A JSON string literal (quoted and escaped).
pub(crate) fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// FNV-1a over everything that makes a receipt this receipt, to recognise a re-sent one. Stored
/// in `dlr_log.fp` and the parts' `receipts` lists, so its value must never change.
pub(crate) fn fingerprint(r: &IncomingReceipt) -> i64 {
    Fnv1a::new()
        .field(r.smsc.as_bytes())
        .field(&r.raw)
        .field(r.receipt.tlv_id.as_deref().unwrap_or("").as_bytes())
        .field(&[r.tlv_state.unwrap_or(0xff)])
        .field(&r.tlv_network_error.unwrap_or([0xff; 3]))
        .finish() as i64
}

/// The hash a part is found by when a receipt comes (`part.smsc_hash`): FNV-1a of the SMSC's name
/// and the normalized id. Stored, so its value must never change. Different (SMSC, key) pairs
/// may share a hash: the match compares the part's SMSC and key too (see `part_by_keys`).
pub(crate) fn receipt_hash(smsc: &str, key: &str) -> i64 {
    Fnv1a::new()
        .field(smsc.as_bytes())
        .write(key.as_bytes())
        .finish() as i64
}

/// A Bloom filter over the (SMSC, key) of receipts held unmatched, so that an acknowledgement
/// (the hot path) queries the held receipts only when one may be waiting for it. 2^20 bits
/// (128 KiB); entries are never removed (a matched receipt leaves a false positive, which only
/// costs one query), and it is rebuilt at every open.
pub(super) struct HeldFilter {
    bits: Vec<u64>,
}

impl HeldFilter {
    const BITS: u64 = 1 << 20;

    /// The filter over every receipt held unmatched in the store.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<HeldFilter> {
        let mut held = HeldFilter::new();
        let mut st = conn.prepare("SELECT smsc, smsc_key FROM dlr_log WHERE message_id IS NULL")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            held.insert(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?);
        }
        Ok(held)
    }

    fn new() -> HeldFilter {
        HeldFilter {
            bits: vec![0; (Self::BITS / 64) as usize],
        }
    }

    fn positions(smsc: &str, key: &str) -> [u64; 3] {
        let h = receipt_hash(smsc, key) as u64;
        let h2 = h.rotate_left(31).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        [0, 1, 2].map(|i| h.wrapping_add(h2.wrapping_mul(i)) % Self::BITS)
    }

    fn insert(&mut self, smsc: &str, key: &str) {
        for p in Self::positions(smsc, key) {
            self.bits[(p / 64) as usize] |= 1 << (p % 64);
        }
    }

    pub(super) fn may_contain(&self, smsc: &str, key: &str) -> bool {
        Self::positions(smsc, key)
            .iter()
            .all(|&p| self.bits[(p / 64) as usize] & (1 << (p % 64)) != 0)
    }
}

/// The text in column `i` of `row` (NULL: `None`), borrowed from the row.
fn text_at<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    row.get_ref(i)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// A part a receipt matched: the part, what settling it needs, its receipts list.
type Matched = (PartRef, PartInfo, Option<String>);

/// A held receipt: log id, stat, err, outcome code, fingerprint.
type HeldRow = (i64, String, Option<String>, Option<i64>, i64);

/// A receipt as written to the log, for applying it to its part.
#[derive(Clone, Copy)]
pub(crate) struct Logged<'a> {
    pub(crate) log_id: i64,
    pub(crate) fp: i64,
    pub(crate) stat: &'a str,
    pub(crate) err: Option<&'a str>,
    /// The final outcome it gives the part; `None` for an intermediate receipt.
    pub(crate) outcome: Option<Outcome>,
    pub(crate) smsc: &'a str,
    pub(crate) smsc_id: &'a str,
}

impl<'a> Logged<'a> {
    /// An incoming receipt as logged under `log_id` with fingerprint `fp` (both backends).
    pub(crate) fn of(r: &'a IncomingReceipt, log_id: i64, fp: i64) -> Logged<'a> {
        Logged {
            log_id,
            fp,
            stat: stat_text(&r.receipt),
            err: r.receipt.err.as_deref(),
            outcome: r.outcome,
            smsc: &r.smsc,
            smsc_id: &r.receipt.id,
        }
    }
}

/// What a matched receipt did to its part.
enum Effect {
    /// Applied: the receipt, and the part's state now.
    Applied(ReceiptApplied, PartState),
    /// The part goes back to the queue for another SMSC (see `Writer::reroute`).
    Rerouted(ReceiptApplied, Reroute),
}

/// The stat a receipt is logged and shown with: the SMSC's own word when it had one.
pub(crate) fn stat_text(r: &crate::receipt::Receipt) -> &str {
    r.stat_text.as_deref().unwrap_or(r.stat.as_str())
}

/// The `dlr` event's body. Written by hand into one buffer: this runs once per receipt, and
/// `json!` (or a `String` per quoted field) cost about 6,000 instructions per receipt, 3 % of
/// the writer's (callgrind, `benches/store.rs`).
pub(crate) fn dlr_body(
    part: PartRef,
    state: MessageState,
    next: PartState,
    r: &Logged<'_>,
) -> String {
    use std::io::Write as _;
    let mut b = Vec::with_capacity(128 + r.stat.len() + r.smsc.len() + r.smsc_id.len());
    // Writing to a Vec cannot fail.
    let _ = write!(
        b,
        r#"{{"id":"{}","part":{},"state":"{}","part_state":"{}","stat":"#,
        part.message,
        part.n,
        state.as_str(),
        next.as_str(),
    );
    push_json_str(&mut b, r.stat);
    b.extend_from_slice(br#","err":"#);
    match r.err {
        Some(err) => push_json_str(&mut b, err),
        None => b.extend_from_slice(b"null"),
    }
    b.extend_from_slice(br#","smsc":"#);
    push_json_str(&mut b, r.smsc);
    b.extend_from_slice(br#","smsc_id":"#);
    push_json_str(&mut b, r.smsc_id);
    b.push(b'}');
    // Every piece is UTF-8 (text and serde_json's escaping of it): the lossy branch is never
    // taken.
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends `s` as a JSON string literal, escaped by serde_json, without an intermediate value.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if serde_json::to_writer(&mut *out, s).is_err() {
        // Serializing a &str into a Vec cannot fail; keep the body valid JSON regardless.
        out.extend_from_slice(b"\"\"");
    }
}

/// The `dlr` event's body for a part a receipt sent back to the queue (reroute): the `dlr` body
/// with the part queued again and the SMSC it goes to next.
pub(crate) fn rerouted_body(
    part: PartRef,
    state: MessageState,
    r: &Logged<'_>,
    to: &str,
) -> String {
    let mut body = dlr_body(part, state, PartState::Queued, r);
    body.pop(); // the closing brace
    body.push_str(&format!(r#","rerouted_to":{}}}"#, json_str(to)));
    body
}

/// Finds a fingerprint in a part's `receipts` list (`log_id:fp,…`); returns the log id.
pub(crate) fn find_receipt(list: Option<&str>, fp: i64) -> Option<i64> {
    list?.split(',').find_map(|entry| {
        let (id, f) = entry.split_once(':')?;
        (f.parse::<i64>().ok()? == fp).then(|| id.parse().ok())?
    })
}

impl Writer<'_> {
    /// Receipts of `smsc` held under `key` (they arrived before the part's response), oldest
    /// first; only looked for when the filter says one may exist.
    pub(super) fn held_receipts(
        &mut self,
        smsc: &str,
        key: &str,
    ) -> Result<Vec<HeldRow>, JobError> {
        if !self.held.may_contain(smsc, key) {
            return Ok(Vec::new());
        }
        // No ORDER BY here: with a bound parameter in the WHERE clause, SQLite re-prepares
        // ORDER BY statements at every execution (measured: a quarter of the writer's time).
        // Rows are sorted below instead.
        let mut st = self.conn.prepare_cached(
            "SELECT id, stat, err, outcome, fp FROM dlr_log
             WHERE smsc_key = ?1 AND message_id IS NULL AND smsc = ?2",
        )?;
        let mut held: Vec<HeldRow> = st
            .query_map(params![key, smsc], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        held.sort_by_key(|h| h.0);
        Ok(held)
    }

    /// Matches the held receipts to the part just acknowledged and applies them in arrival
    /// order; then the message's state (from the last receipt, or from the acknowledgement).
    pub(super) fn apply_held(
        &mut self,
        a: &Ack,
        mut info: PartInfo,
        held: Vec<HeldRow>,
    ) -> Result<AckResult, JobError> {
        let mut applied = Vec::with_capacity(held.len());
        let mut rerouted = None;
        for (log_id, stat, err, outcome, fp) in held {
            self.conn
                .prepare_cached("UPDATE dlr_log SET message_id = ?2, part_n = ?3 WHERE id = ?1")?
                .execute(params![log_id, a.part.message.as_i64(), a.part.n])?;
            let logged = Logged {
                log_id,
                fp,
                stat: &stat,
                err: err.as_deref(),
                outcome: outcome.and_then(outcome_from_code),
                smsc: &a.smsc,
                smsc_id: &a.smsc_id,
            };
            match self.apply_matched(a.part, info, &a.reroute, logged, a.now_ms)? {
                Effect::Applied(done, next) => {
                    info.state = next;
                    applied.push(done);
                }
                Effect::Rerouted(done, reroute) => {
                    info.state = PartState::Queued;
                    applied.push(done);
                    rerouted = Some(reroute);
                }
            }
        }
        let state = match applied.last() {
            Some(last) => last.state,
            None => self.settle_ack(a.part.message, info, a.now_ms)?,
        };
        Ok(AckResult {
            state,
            held_receipts: applied,
            rerouted,
        })
    }

    /// Applies a logged receipt to the part it matched, or sends the part back to the queue
    /// (see [`Self::reroute`]).
    fn apply_matched(
        &mut self,
        part: PartRef,
        info: PartInfo,
        rule: &RerouteRule,
        r: Logged<'_>,
        now: i64,
    ) -> Result<Effect, JobError> {
        if let Some((applied, reroute)) = self.reroute(part, info, rule, r, now)? {
            return Ok(Effect::Rerouted(applied, reroute));
        }
        let (applied, next) = self.apply_receipt(part, info, r, now)?;
        Ok(Effect::Applied(applied, next))
    }

    /// Settles a part (and its message) by a receipt; returns the part's new state too.
    fn apply_receipt(
        &mut self,
        part: PartRef,
        info: PartInfo,
        r: Logged<'_>,
        now: i64,
    ) -> Result<(ReceiptApplied, PartState), JobError> {
        let cur = info.state;
        let next = match (cur, r.outcome) {
            // A final ACCEPTD says less than a DELIVRD already received: it does not undo it.
            (PartState::Delivered, Some(Outcome::Accepted)) => PartState::Delivered,
            // A final receipt settles a submitted part, and corrects an earlier receipt or a
            // no_receipt timeout (the latest word from the SMSC wins).
            (s, Some(o)) if !s.is_pending() && s != PartState::Failed => PartState::from_outcome(o),
            (s, _) => s,
        };
        // The part shows the stat that decided its state: a late intermediate receipt (ENROUTE
        // after DELIVRD) or a final ACCEPTD after DELIVRD is logged but leaves stat and err.
        let decides = !cur.is_final()
            || next != cur
            || r.outcome
                .is_some_and(|o| PartState::from_outcome(o) == next);
        self.st.receipt_part.execute(params![
            part.message.as_i64(),
            part.n,
            next.code(),
            r.stat,
            r.err,
            next.is_final() && next != cur,
            now,
            format!("{}:{}", r.log_id, r.fp),
            decides
        ])?;
        // A receipt matched by SMSC id means the part was acknowledged.
        let settled = PartInfo {
            state: next,
            ..info
        };
        let state = self.settle(part.message, settled, !next.is_pending(), now)?;
        let body = dlr_body(part, state, next, &r);
        let seq = self.event("dlr", Some(part.message), &body, now)?;
        let applied = ReceiptApplied {
            log_id: r.log_id,
            part,
            state,
            seq,
        };
        Ok((applied, next))
    }

    /// The keys a receipt is matched by, best first. A receipt without an id has none: it is
    /// logged under a key no part can have (see [`NO_ID_KEY`]); an empty key would match a part
    /// whose SMSC returned an empty id.
    fn receipt_keys(r: &IncomingReceipt) -> Vec<String> {
        if r.receipt.id.is_empty() {
            return Vec::new();
        }
        receipt::receipt_keys(r.rule, &r.receipt)
            .into_iter()
            .filter(|k| !k.is_empty())
            .collect()
    }

    /// The newest part of `smsc` under the first of `keys` that has one (SMSCs recycle ids),
    /// with what settling it needs and its receipts list. Parts are looked up by
    /// [`receipt_hash`]; a part whose hash is the same but whose key is not (a collision) is
    /// skipped. Its key is the one stored before migration 9, else derived from its SMSC id as
    /// the acknowledgement derived it (`submit_key`).
    fn part_by_keys(
        &mut self,
        keys: &[String],
        smsc: &str,
        rule: IdRule,
    ) -> Result<Option<Matched>, JobError> {
        let mut matched: Option<Matched> = None;
        // Picked here rather than with ORDER BY, which SQLite would re-prepare at every
        // execution (see `held_receipts`).
        let st = &mut self.st.match_key;
        for key in keys {
            let mut rows = st.query(params![receipt_hash(smsc, key), smsc])?;
            while let Some(row) = rows.next()? {
                // Read in place: this runs for every receipt.
                let same_key = match (text_at(row, 8)?, text_at(row, 7)?) {
                    (Some(stored), _) => stored == key,
                    (None, Some(id)) => receipt::is_submit_key(rule, id, key),
                    (None, None) => false,
                };
                if !same_key {
                    continue;
                }
                let p = PartRef {
                    message: MessageId::from_i64(row.get(0)?),
                    n: row.get(1)?,
                };
                if matched.as_ref().is_none_or(|(f, _, _)| p > *f) {
                    let info = PartInfo {
                        state: part_state(row.get(2)?)?,
                        parts: row.get(3)?,
                        dlr: row.get(4)?,
                        acked_at: row.get(6)?,
                    };
                    matched = Some((p, info, row.get(5)?));
                }
            }
            if matched.is_some() {
                break;
            }
        }
        Ok(matched)
    }

    pub(crate) fn record_receipt(
        &mut self,
        r: &IncomingReceipt,
    ) -> Result<ReceiptRecorded, JobError> {
        let keys = Self::receipt_keys(r);
        let fp = fingerprint(r);
        let matched = self.part_by_keys(&keys, &r.smsc, r.rule)?;
        let primary_key = keys.first().map_or(NO_ID_KEY, String::as_str);
        if let Some(log_id) = self.earlier_copy(matched.as_ref(), primary_key, fp)? {
            return Ok(ReceiptRecorded::Duplicate { log_id });
        }
        let log_id = self.log_receipt(r, primary_key, fp, matched.as_ref().map(|m| m.0))?;
        let Some((part, info, _)) = matched else {
            // Not durable until the commit, but a filter entry too many is harmless.
            if !keys.is_empty() {
                self.held.insert(&r.smsc, primary_key);
            }
            return Ok(ReceiptRecorded::Held { log_id });
        };
        let logged = Logged::of(r, log_id, fp);
        Ok(
            match self.apply_matched(part, info, &r.reroute, logged, r.now_ms)? {
                Effect::Applied(applied, _) => ReceiptRecorded::Matched(applied),
                Effect::Rerouted(applied, reroute) => {
                    ReceiptRecorded::Rerouted { applied, reroute }
                }
            },
        )
    }

    /// The log row of an earlier copy of this receipt (the SMSC re-sent it): among the matched
    /// part's receipts, or among the receipts held unmatched under `key`.
    fn earlier_copy(
        &mut self,
        matched: Option<&Matched>,
        key: &str,
        fp: i64,
    ) -> Result<Option<i64>, JobError> {
        if let Some((_, _, receipts)) = matched {
            return Ok(find_receipt(receipts.as_deref(), fp));
        }
        Ok(self
            .conn
            .prepare_cached(
                "SELECT id FROM dlr_log WHERE smsc_key = ?1 AND message_id IS NULL AND fp = ?2 LIMIT 1",
            )?
            .query_row(params![key, fp], |row| row.get(0))
            .optional()?)
    }

    /// Writes the delivery-report log row (matched to `part`, or held); returns its id.
    fn log_receipt(
        &mut self,
        r: &IncomingReceipt,
        key: &str,
        fp: i64,
        part: Option<PartRef>,
    ) -> Result<i64, JobError> {
        let rc = &r.receipt;
        self.st.insert_log.execute(params![
            r.now_ms,
            r.smsc,
            rc.id,
            key,
            fp,
            r.raw,
            r.tlv_state,
            r.tlv_network_error.map(hex::encode),
            stat_text(rc),
            rc.err,
            rc.submit_date.map(|d| d.as_number()),
            rc.done_date.map(|d| d.as_number()),
            r.outcome.map(outcome_code),
            part.map(|p| p.message.as_i64()),
            part.map(|p| p.n)
        ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Sends a part back to the queue instead of settling it when the receipt is an UNDELIV or
    /// REJECTD for a submitted part of a route that reroutes, the part was not rerouted before,
    /// and the route has another SMSC. The receipt is already in the log; the part keeps its
    /// SMSC key (so a re-sent copy of this receipt is still recognised as a duplicate) and
    /// remembers the SMSC that failed it, which both marks it rerouted (once only) and tells
    /// dispatch which SMSC to avoid. Returns `None` when the receipt is to be applied as usual.
    fn reroute(
        &mut self,
        part: PartRef,
        info: PartInfo,
        rule: &RerouteRule,
        r: Logged<'_>,
        now: i64,
    ) -> Result<Option<(ReceiptApplied, Reroute)>, JobError> {
        let Some((route, to)) = self.reroute_target(part, info, rule, &r)? else {
            return Ok(None);
        };
        self.conn
            .prepare_cached(sql!(
                "UPDATE part SET state = {part:queued}, ready_at = 0, rerouted_from = ?3, stat = ?4,
                    err = ?5, acked_at = NULL, receipts = coalesce(receipts || ',', '') || ?6
                 WHERE message_id = ?1 AND n = ?2"
            ))?
            .execute(params![
                part.message.as_i64(),
                part.n,
                r.smsc,
                r.stat,
                r.err,
                format!("{}:{}", r.log_id, r.fp)
            ])?;
        let queued = PartInfo {
            state: PartState::Queued,
            ..info
        };
        let state = self.settle(part.message, queued, false, now)?;
        // The dlr event says what the receipt said and that the part goes again; the message's
        // final outcome follows in the resend's dlr event.
        let body = rerouted_body(part, state, &r, &to);
        let seq = self.event("dlr", Some(part.message), &body, now)?;
        let applied = ReceiptApplied {
            log_id: r.log_id,
            part,
            state,
            seq,
        };
        let reroute = Reroute {
            part,
            route,
            from_smsc: r.smsc.to_owned(),
            to_smsc: to,
            stat: r.stat.to_owned(),
        };
        Ok(Some((applied, reroute)))
    }

    /// The (route, next SMSC) a receipt reroutes its part to (see [`Self::reroute`]), or `None`.
    fn reroute_target(
        &mut self,
        part: PartRef,
        info: PartInfo,
        rule: &RerouteRule,
        r: &Logged<'_>,
    ) -> Result<Option<(String, String)>, JobError> {
        if rule.is_empty()
            || info.state != PartState::Submitted
            || !matches!(r.outcome, Some(Outcome::Undeliverable | Outcome::Rejected))
        {
            return Ok(None);
        }
        let row: Option<(String, bool)> = self
            .conn
            .prepare_cached(
                "SELECT route, rerouted_from IS NOT NULL FROM part WHERE message_id = ?1 AND n = ?2",
            )?
            .query_row(params![part.message.as_i64(), part.n], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let Some((route, false)) = row else {
            return Ok(None);
        };
        let Some(to) = rule.next_smsc(&route, r.smsc).map(str::to_owned) else {
            return Ok(None);
        };
        Ok(Some((route, to)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{IdRule, ReceiptTlvs, parse_receipt};

    fn incoming(tlvs: &ReceiptTlvs<'_>) -> IncomingReceipt {
        let raw = b"id:abc1 sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:hi";
        IncomingReceipt {
            smsc: "op-a".into(),
            rule: IdRule::Same,
            receipt: parse_receipt(raw, tlvs).expect("parses"),
            outcome: Some(Outcome::Delivered),
            raw: raw.to_vec(),
            tlv_state: tlvs.message_state,
            tlv_network_error: tlvs.network_error_code,
            now_ms: 0,
            reroute: RerouteRule::none(),
        }
    }

    /// The `dlr` body written by hand is exactly what serde_json writes for the same fields, for
    /// text that needs escaping too (quotes, backslashes, control characters, non-ASCII).
    #[test]
    fn dlr_body_is_the_json_of_its_fields() {
        for (stat, err, smsc_id) in [
            ("DELIVRD", Some("000"), "a1b2"),
            ("UNDELIV", None, "x"),
            ("q\"uo\\te", Some("\n\t\u{1}\u{7f}"), "é–😀\r"),
            ("", Some(""), ""),
        ] {
            let part = PartRef {
                message: MessageId::from_i64(42 << 20 | 7),
                n: 2,
            };
            let logged = Logged {
                log_id: 1,
                fp: 2,
                stat,
                err,
                outcome: None,
                smsc: "op-\"a\"",
                smsc_id,
            };
            let body = dlr_body(part, MessageState::Delivered, PartState::Delivered, &logged);
            let fields = [
                ("id", serde_json::json!(part.message.to_string())),
                ("part", serde_json::json!(2)),
                ("state", serde_json::json!("delivered")),
                ("part_state", serde_json::json!("delivered")),
                ("stat", serde_json::json!(stat)),
                ("err", serde_json::json!(err)),
                ("smsc", serde_json::json!("op-\"a\"")),
                ("smsc_id", serde_json::json!(smsc_id)),
            ];
            let literal = format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            assert_eq!(body, literal, "byte for byte, in field order");
        }
    }

    /// Fingerprints are stored (`dlr_log.fp`, `part.receipts`): a re-sent receipt is recognised
    /// only if this build hashes it as the build that stored it did. Values from the first
    /// release's hand-written FNV-1a. So is `part.smsc_hash` (migration 9): a part acknowledged
    /// by one build is found by the receipt another build records.
    #[test]
    fn fingerprints_and_filter_positions_never_change() {
        assert_eq!(receipt_hash("op-a", "abc1"), -2_857_212_647_244_960_750);
        let plain = incoming(&ReceiptTlvs::default());
        let tlv = incoming(&ReceiptTlvs {
            receipted_message_id: Some("ABC1"),
            message_state: Some(2),
            network_error_code: Some([3, 0, 1]),
        });
        assert_eq!(fingerprint(&plain), 2_555_955_833_078_113_357);
        assert_eq!(fingerprint(&tlv), 5_103_028_653_421_821_278);
        assert_eq!(
            HeldFilter::positions("op-a", "abc1"),
            [388_114, 28_809, 718_080]
        );
        assert_eq!(HeldFilter::positions("", ""), [191_342, 787_341, 334_764]);
    }
}
