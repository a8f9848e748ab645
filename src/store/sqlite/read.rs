//! Read-only connections: queries for the daemon (on the reader threads) and for the `reports`
//! command (which opens its own [`Reader`] while the daemon runs). WAL readers see the last
//! committed state and never block the writer. A reader never writes and never migrates.

use super::schema;
use super::sql::{self, Sql, sql};
use crate::store::error::classify;
use crate::store::report::{DeliveryRow, DeliveryTally, ReportBy};
use crate::store::{
    Event, GLOBAL_SCOPE, MessageClass, MessageFilter, MessageId, MessageState, MessageView,
    MoFragment, MoSet, OptOutEntry, PartState, PartView, QueueDepth, ReceiptView, StoreError,
    StoreStats, aggregate,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use std::path::Path;

/// A read-only connection to a store file.
pub struct Reader {
    conn: Connection,
}

/// A stored receipt date as `YYYY-MM-DDThh:mm:ss`: an integer `YYYYMMDDhhmmss` (schema 2), or
/// already that text (rows written by schema 1).
fn date(v: rusqlite::types::Value) -> Option<String> {
    match v {
        rusqlite::types::Value::Integer(n) => {
            Some(crate::receipt::ReceiptDate::from_number(n).to_string())
        }
        rusqlite::types::Value::Text(t) => Some(t),
        _ => None,
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    classify(&e)
}

/// `state, accepted_at, done_at`: the first three columns of the delivery report's scans.
fn outcome_columns(r: &Row<'_>) -> Result<(i64, i64, Option<i64>), StoreError> {
    Ok((
        r.get(0).map_err(db)?,
        r.get(1).map_err(db)?,
        r.get(2).map_err(db)?,
    ))
}

/// A text column borrowed from SQLite's row buffer (no copy per row); `None` for NULL.
fn text_ref<'r>(r: &'r Row<'_>, i: usize) -> Result<Option<&'r str>, StoreError> {
    r.get_ref(i)
        .map_err(db)?
        .as_str_or_null()
        .map_err(|e| StoreError::Internal(format!("column {i} of the report: {e}")))
}

const MESSAGE_COLUMNS: &str = "id, idem_key, dest, sender, route, class, priority, encoding, split,
    dlr, state, text, tags, accepted_at, submitted_at, done_at, valid_until, options, held_until";

/// A message's state in SQL: the stored one, or `submitted` for a message left `queued` none of
/// whose parts is pending (see `schema`).
static STATE_EXPR: Sql = Sql::new(
    "(CASE WHEN state = {message:queued} AND NOT EXISTS
        (SELECT 1 FROM part p WHERE p.message_id = message.id AND p.state <= {part:waiting})
     THEN {message:submitted} ELSE state END)",
);

fn message_row(r: &Row<'_>) -> rusqlite::Result<MessageView> {
    Ok(MessageView {
        id: MessageId::from_i64(r.get(0)?),
        key: r.get(1)?,
        to: r.get(2)?,
        from: r.get(3)?,
        route: r.get(4)?,
        class: MessageClass::from_code(r.get(5)?),
        priority: r.get(6)?,
        encoding: r.get(7)?,
        split: r.get(8)?,
        dlr: r.get(9)?,
        state: MessageState::from_code(r.get(10)?).unwrap_or(MessageState::Queued),
        text: r.get(11)?,
        tags: r.get(12)?,
        accepted_at: r.get(13)?,
        submitted_at: r.get(14)?,
        done_at: r.get(15)?,
        valid_until: r.get(16)?,
        options: r.get(17)?,
        held_until: r.get(18)?,
        parts: Vec::new(),
        receipts: Vec::new(),
    })
}

/// A part as read back, from the first 11 columns of `load_parts`' query.
fn part_row(r: &Row<'_>) -> rusqlite::Result<PartView> {
    Ok(PartView {
        n: r.get(0)?,
        state: PartState::from_code(r.get(1)?).unwrap_or(PartState::Queued),
        smsc: r.get(2)?,
        smsc_id: r.get(3)?,
        attempts: r.get(4)?,
        last_status: r.get(5)?,
        stat: r.get(6)?,
        error: r.get(7)?,
        maybe_duplicate: r.get(8)?,
        acked_at: r.get(9)?,
        done_at: r.get(10)?,
    })
}

impl Reader {
    /// Opens a store file read-only. Refuses files that are not smppd stores or that a newer
    /// smppd wrote.
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        let open_err = |detail: String| StoreError::Open {
            path: path.to_path_buf(),
            detail,
        };
        if !path.exists() {
            return Err(open_err("no such file".into()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| open_err(e.to_string()))?;
        conn.set_prepared_statement_cache_capacity(32);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| open_err(e.to_string()))?;
        if version > schema::current_version() {
            return Err(StoreError::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
                supported: schema::current_version(),
            });
        }
        if version == 0 {
            return Err(open_err("not an smppd store (schema version 0)".into()));
        }
        Ok(Reader { conn })
    }

    fn load_details(&self, m: &mut MessageView) -> Result<(), StoreError> {
        let (parts, log_ids) = self.load_parts(m.id)?;
        // The writer leaves a single-part message `queued` when its part is acknowledged (one
        // write instead of two on the hot path); its state until the receipt follows from the
        // parts (see `schema`).
        if m.state == MessageState::Queued {
            let states: Vec<PartState> = parts.iter().map(|p| p.state).collect();
            m.state = aggregate(m.dlr, &states);
        }
        if m.submitted_at.is_none() && m.state != MessageState::Queued {
            m.submitted_at = parts.iter().filter_map(|p| p.acked_at).min();
        }
        m.parts = parts;
        m.receipts = self.load_receipts(log_ids)?;
        Ok(())
    }

    /// A message's parts in order, and the log ids of the receipts matched to them.
    fn load_parts(&self, id: MessageId) -> Result<(Vec<PartView>, Vec<i64>), StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT n, state, smsc, smsc_id, attempts, last_status, stat, err, maybe_dup,
                    acked_at, done_at, receipts
                 FROM part WHERE message_id = ?1",
            )
            .map_err(db)?;
        let mut log_ids: Vec<i64> = Vec::new();
        let mut parts: Vec<PartView> = st
            .query_map([id.as_i64()], |r| {
                Ok((part_row(r)?, r.get::<_, Option<String>>(11)?))
            })
            .map_err(db)?
            .map(|row| {
                row.map(|(part, receipts)| {
                    // `log_id:fingerprint,…`: the receipts matched to this part.
                    log_ids.extend(
                        receipts
                            .iter()
                            .flat_map(|l| l.split(','))
                            .filter_map(|e| e.split(':').next()?.parse::<i64>().ok()),
                    );
                    part
                })
            })
            .collect::<Result<_, _>>()
            .map_err(db)?;
        parts.sort_by_key(|p| p.n);
        log_ids.sort_unstable();
        log_ids.dedup();
        Ok((parts, log_ids))
    }

    /// The delivery-report log rows with these ids, in id order (a pruned row is simply gone).
    fn load_receipts(&self, log_ids: Vec<i64>) -> Result<Vec<ReceiptView>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, at, smsc, smsc_id, message_id, part_n, stat, err,
                    coalesce(submit_ts, submit_date), coalesce(done_ts, done_date), raw,
                    tlv_state, tlv_err
                 FROM dlr_log WHERE id = ?1",
            )
            .map_err(db)?;
        let mut receipts = Vec::with_capacity(log_ids.len());
        for id in log_ids {
            let row = st
                .query_row([id], |r| {
                    Ok(ReceiptView {
                        log_id: r.get(0)?,
                        at: r.get(1)?,
                        smsc: r.get(2)?,
                        smsc_id: r.get(3)?,
                        message: r.get::<_, Option<i64>>(4)?.map(MessageId::from_i64),
                        part: r.get(5)?,
                        stat: r.get(6)?,
                        err: r.get(7)?,
                        submit_date: date(r.get(8)?),
                        done_date: date(r.get(9)?),
                        raw: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(10)?).into_owned(),
                        tlv_state: r.get(11)?,
                        tlv_network_error: r.get(12)?,
                    })
                })
                .optional()
                .map_err(db)?;
            receipts.extend(row);
        }
        Ok(receipts)
    }

    /// One message with its parts and receipts.
    pub fn message(&mut self, id: MessageId) -> Result<Option<MessageView>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM message WHERE id = ?1");
        let found = self
            .conn
            .prepare_cached(&sql)
            .map_err(db)?
            .query_row([id.as_i64()], message_row)
            .optional()
            .map_err(db)?;
        match found {
            Some(mut m) => {
                self.load_details(&mut m)?;
                Ok(Some(m))
            }
            None => Ok(None),
        }
    }

    /// Messages matching a filter, newest first, with their parts and receipts.
    pub fn messages(&mut self, f: &MessageFilter) -> Result<Vec<MessageView>, StoreError> {
        if let Some(id) = f.id {
            let found = self.message(id)?.filter(|m| {
                f.to.as_ref().is_none_or(|to| *to == m.to)
                    && f.state.is_none_or(|s| s == m.state)
                    && f.since_ms.is_none_or(|s| m.accepted_at >= s)
            });
            return Ok(found.into_iter().collect());
        }
        let state = STATE_EXPR.get();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM message
             WHERE id >= ?1 AND (?2 IS NULL OR dest = ?2) AND (?3 IS NULL OR {state} = ?3)
             ORDER BY id DESC LIMIT ?4"
        );
        let since = MessageId::first_at(f.since_ms.unwrap_or(0)).as_i64();
        let mut out: Vec<MessageView> = {
            let mut st = self.conn.prepare_cached(&sql).map_err(db)?;
            st.query_map(
                params![
                    since,
                    f.to,
                    f.state.map(MessageState::code),
                    f.limit.max(1) as i64
                ],
                message_row,
            )
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?
        };
        for m in &mut out {
            self.load_details(m)?;
        }
        Ok(out)
    }

    /// Receipts that matched no part (newest first).
    pub fn unmatched_receipts(&mut self, limit: usize) -> Result<Vec<ReceiptView>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, at, smsc, smsc_id, stat, err, coalesce(submit_ts, submit_date),
                    coalesce(done_ts, done_date), raw, tlv_state, tlv_err
                 FROM dlr_log WHERE message_id IS NULL ORDER BY id DESC LIMIT ?1",
            )
            .map_err(db)?;
        st.query_map([limit as i64], |r| {
            Ok(ReceiptView {
                log_id: r.get(0)?,
                at: r.get(1)?,
                smsc: r.get(2)?,
                smsc_id: r.get(3)?,
                message: None,
                part: None,
                stat: r.get(4)?,
                err: r.get(5)?,
                submit_date: date(r.get(6)?),
                done_date: date(r.get(7)?),
                raw: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(8)?).into_owned(),
                tlv_state: r.get(9)?,
                tlv_network_error: r.get(10)?,
            })
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)
    }

    /// Events after `after`, oldest first.
    pub fn events_after(&mut self, after: i64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT seq, kind, at, body FROM event WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(db)?;
        st.query_map(params![after, limit as i64], |r| {
            Ok(Event {
                seq: r.get(0)?,
                kind: r.get(1)?,
                at: r.get(2)?,
                body: r.get(3)?,
            })
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)
    }

    /// Ready and waiting parts per route, the parts held past `now_ms` apart.
    pub fn queue_depth(&mut self, now_ms: i64) -> Result<Vec<QueueDepth>, StoreError> {
        // The smallest message id of a route's waiting parts is its oldest: ids start with the
        // acceptance time in milliseconds.
        let mut st = self
            .conn
            .prepare_cached(sql::QUEUE_DEPTH.get())
            .map_err(db)?;
        let rows: Vec<QueueDepth> = st
            .query_map([now_ms], |r| {
                Ok(QueueDepth {
                    route: r.get(0)?,
                    parts: r.get::<_, i64>(1)?.max(0) as u64,
                    oldest_ms: r
                        .get::<_, Option<i64>>(2)?
                        .map(|id| MessageId::from_i64(id).millis()),
                    scheduled: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let mut merged: Vec<QueueDepth> = Vec::new();
        for row in rows {
            match merged.iter_mut().find(|q| q.route == row.route) {
                Some(q) => {
                    q.parts += row.parts;
                    q.scheduled += row.scheduled;
                    q.oldest_ms = match (q.oldest_ms, row.oldest_ms) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => merged.push(row),
            }
        }
        merged.sort_by(|a, b| a.route.cmp(&b.route));
        Ok(merged)
    }

    /// The scope under which a number opted out of `scope` or of every sender (global first).
    pub fn is_opted_out(
        &mut self,
        number: &str,
        scope: &str,
    ) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT scope FROM optout WHERE number = ?1 AND scope IN (?2, ?3)
                 ORDER BY scope <> ?2 LIMIT 1",
            )
            .map_err(db)?
            .query_row(params![number, GLOBAL_SCOPE, scope], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    /// A page of the opt-out list in (number, scope) order: after (`after`, `after_scope`), or
    /// after every entry of `after` without a scope.
    pub fn optout_list(
        &mut self,
        after: &str,
        after_scope: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OptOutEntry>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = match after_scope {
            Some(_) => {
                "SELECT number, scope, keyword, at, smsc FROM optout
                 WHERE (number, scope) > (?1, ?2) ORDER BY number, scope LIMIT ?3"
            }
            None => {
                "SELECT number, scope, keyword, at, smsc FROM optout
                 WHERE number > ?1 AND ?2 IS NULL ORDER BY number, scope LIMIT ?3"
            }
        };
        self.conn
            .prepare_cached(sql)
            .map_err(db)?
            .query_map(params![after, after_scope, limit], |r| {
                Ok(OptOutEntry {
                    number: r.get(0)?,
                    scope: r.get(1)?,
                    keyword: r.get(2)?,
                    at_ms: r.get(3)?,
                    smsc: r.get(4)?,
                })
            })
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)
    }

    /// Messages per final state with `done_at >= since_ms` (a range of `message_done`).
    pub fn final_counts(&mut self, since_ms: i64) -> Result<Vec<(MessageState, u64)>, StoreError> {
        let rows: Vec<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT state, count(*) FROM message WHERE done_at >= ?1 GROUP BY state",
            )
            .map_err(db)?
            .query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?
            .collect::<Result<_, _>>()
            .map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| Some((MessageState::from_code(s)?, n.max(0) as u64)))
            .filter(|(s, _)| s.is_final())
            .collect())
    }

    /// Delivery per value of `by` for the messages accepted at or after `since_ms` (`smppd
    /// reports --by`; what a row counts: `store::report`). One pass over the message rows of
    /// the id range (ids start with the accept time, so the range is a primary-key range),
    /// reading only the columns the tally needs; tags are read borrowed from SQLite's row and
    /// searched without building an object. Never blocks the writer (a WAL snapshot).
    pub fn delivery(
        &mut self,
        by: &ReportBy,
        since_ms: Option<i64>,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let since = MessageId::first_at(since_ms.unwrap_or(0)).as_i64();
        if *by == ReportBy::Smsc {
            return self.delivery_by_smsc(since);
        }
        let column = if *by == ReportBy::Route {
            "route"
        } else {
            "tags"
        };
        let sql =
            format!("SELECT state, accepted_at, done_at, {column} FROM message WHERE id >= ?1");
        let mut st = self.conn.prepare(&sql).map_err(db)?;
        let mut rows = st.query([since]).map_err(db)?;
        let mut tally = DeliveryTally::default();
        while let Some(r) = rows.next().map_err(db)? {
            let (state, accepted, done) = outcome_columns(r)?;
            let text = text_ref(r, 3)?;
            tally.add_by(by, text, state, accepted, done);
        }
        Ok(tally.rows())
    }

    /// `delivery` by SMSC: the message rows and the part rows of the id range, both in primary
    /// key order, merged as they are read (two sequential scans in one snapshot; a lookup of
    /// the last part per message cost 2.5 times as much on a million messages).
    fn delivery_by_smsc(&mut self, since: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        // One transaction: both statements read the same snapshot.
        let tx = self.conn.unchecked_transaction().map_err(db)?;
        let mut messages = tx
            .prepare(
                "SELECT state, accepted_at, done_at, id FROM message WHERE id >= ?1 ORDER BY id",
            )
            .map_err(db)?;
        let mut parts = tx
            .prepare(
                "SELECT message_id, smsc FROM part
                 WHERE message_id >= ?1 AND smsc IS NOT NULL ORDER BY message_id, n",
            )
            .map_err(db)?;
        let mut m_rows = messages.query([since]).map_err(db)?;
        let mut p_rows = parts.query([since]).map_err(db)?;
        // The part row read ahead (message id, SMSC), and the SMSC of the message in hand;
        // both buffers are reused, so the merge allocates nothing per row.
        let mut ahead: Option<i64> = None;
        let (mut ahead_smsc, mut smsc) = (String::new(), String::new());
        let mut next_part = |ahead: &mut Option<i64>, buf: &mut String| -> Result<(), StoreError> {
            *ahead = match p_rows.next().map_err(db)? {
                Some(r) => {
                    buf.clear();
                    buf.push_str(text_ref(r, 1)?.unwrap_or_default());
                    Some(r.get(0).map_err(db)?)
                }
                None => None,
            };
            Ok(())
        };
        next_part(&mut ahead, &mut ahead_smsc)?;
        let mut tally = DeliveryTally::default();
        while let Some(r) = m_rows.next().map_err(db)? {
            let (state, accepted, done) = outcome_columns(r)?;
            let id: i64 = r.get(3).map_err(db)?;
            let mut found = false;
            // Parts come in (message, n) order: the last one of this message wins.
            while let Some(part_of) = ahead.filter(|p| *p <= id) {
                if part_of == id {
                    std::mem::swap(&mut smsc, &mut ahead_smsc);
                    found = true;
                }
                next_part(&mut ahead, &mut ahead_smsc)?;
            }
            tally.add(found.then_some(smsc.as_str()), state, accepted, done);
        }
        Ok(tally.rows())
    }

    /// Counters.
    /// Every kept part of a concatenated MO, in arrival order (see [`MoFragment`]).
    pub fn mo_fragments(&mut self) -> Result<Vec<MoFragment>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT source, dest, ref, total, seq, at, smsc, data_coding, udhi, sar_ref,
                    sar_total, sar_seq, payload
                 FROM mo_fragment ORDER BY at, source, dest, ref, total, seq",
            )
            .map_err(db)?;
        let rows = st
            .query_map([], |r| {
                let sar = match (r.get(9)?, r.get(10)?, r.get(11)?) {
                    (Some(a), Some(b), Some(c)) => Some((a, b, c)),
                    _ => None,
                };
                Ok(MoFragment {
                    set: MoSet {
                        source: r.get(0)?,
                        dest: r.get(1)?,
                        reference: r.get(2)?,
                        total: r.get(3)?,
                    },
                    seq: r.get(4)?,
                    now_ms: r.get(5)?,
                    smsc: r.get(6)?,
                    data_coding: r.get(7)?,
                    udhi: r.get(8)?,
                    sar,
                    payload: r.get(12)?,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)
    }

    pub fn stats(&mut self) -> Result<StoreStats, StoreError> {
        let one = |c: &Connection, sql: &str| -> Result<i64, StoreError> {
            c.prepare_cached(sql)
                .map_err(db)?
                .query_row([], |r| r.get(0))
                .map_err(db)
        };
        Ok(StoreStats {
            unmatched_receipts: one(
                &self.conn,
                "SELECT count(*) FROM dlr_log WHERE message_id IS NULL",
            )? as u64,
            queued_parts: one(&self.conn, sql::QUEUED_COUNT.get())? as u64,
            in_flight_parts: one(
                &self.conn,
                sql!("SELECT count(*) FROM part WHERE state = {part:sending}"),
            )? as u64,
            last_seq: one(&self.conn, "SELECT coalesce(max(seq), 0) FROM event")?,
        })
    }
}
