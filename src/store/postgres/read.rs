//! Reads, each on a pooled connection of its own (never the writer's): they see committed rows
//! only and never wait behind a write batch. A reader never writes. Events are read only once
//! numbered (`seq` set, see `events`).

use super::Client;
use crate::receipt::ReceiptDate;
use crate::store::report::{DeliveryRow, DeliveryTally, ReportBy};
use crate::store::{
    Event, GLOBAL_SCOPE, MessageClass, MessageId, MessageState, MessageView, MoFragment, MoSet,
    OptOutEntry, PartState, PartView, QueueDepth, ReceiptView, StoreStats, aggregate,
};
use futures_util::TryStreamExt;
use std::collections::HashMap;
use tokio_postgres::{Error, Row};

async fn rows(
    c: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, Error> {
    let st = c.prepare_cached(sql).await?;
    c.query(&st, params).await
}

async fn count(c: &Client, sql: &str) -> Result<i64, Error> {
    Ok(rows(c, sql, &[])
        .await?
        .first()
        .map_or(0, |r| r.get::<_, i64>(0)))
}

/// Parts queued or waiting for a retry.
pub(super) async fn queued_count(c: &Client) -> Result<i64, Error> {
    count(
        c,
        filled!(
            "SELECT (SELECT count(*) FROM part WHERE state = {part:queued})
                + (SELECT count(*) FROM part WHERE state = {part:waiting})"
        ),
    )
    .await
}

fn message_row(r: &Row) -> MessageView {
    MessageView {
        id: MessageId::from_i64(r.get(0)),
        key: r.get(1),
        to: r.get(2),
        from: r.get(3),
        route: r.get(4),
        class: MessageClass::from_code(i64::from(r.get::<_, i32>(5))),
        priority: r.get::<_, i32>(6) as u8,
        encoding: r.get(7),
        split: r.get(8),
        dlr: r.get(9),
        state: MessageState::from_code(i64::from(r.get::<_, i32>(10)))
            .unwrap_or(MessageState::Queued),
        text: r.get(11),
        tags: r.get(12),
        accepted_at: r.get(13),
        submitted_at: r.get(14),
        done_at: r.get(15),
        valid_until: r.get(16),
        options: r.get(17),
        held_until: r.get(18),
        parts: Vec::new(),
        receipts: Vec::new(),
    }
}

fn part_row(r: &Row) -> PartView {
    PartView {
        n: r.get::<_, i32>(0) as u8,
        state: PartState::from_code(i64::from(r.get::<_, i32>(1))).unwrap_or(PartState::Queued),
        smsc: r.get(2),
        smsc_id: r.get(3),
        attempts: r.get::<_, i32>(4).max(0) as u32,
        last_status: r.get::<_, Option<i64>>(5).map(|s| s as u32),
        stat: r.get(6),
        error: r.get(7),
        maybe_duplicate: r.get(8),
        acked_at: r.get(9),
        done_at: r.get(10),
    }
}

fn receipt_row(r: &Row) -> ReceiptView {
    let date = |i: usize| {
        r.get::<_, Option<i64>>(i)
            .map(|n| ReceiptDate::from_number(n).to_string())
    };
    ReceiptView {
        log_id: r.get(0),
        at: r.get(1),
        smsc: r.get(2),
        smsc_id: r.get(3),
        message: r.get::<_, Option<i64>>(4).map(MessageId::from_i64),
        part: r.get::<_, Option<i32>>(5).map(|n| n as u8),
        stat: r.get(6),
        err: r.get(7),
        submit_date: date(8),
        done_date: date(9),
        raw: String::from_utf8_lossy(r.get::<_, &[u8]>(10)).into_owned(),
        tlv_state: r.get::<_, Option<i32>>(11).map(|s| s as u8),
        tlv_network_error: r.get(12),
    }
}

/// One message with its parts and receipts.
pub(super) async fn message(c: &Client, id: MessageId) -> Result<Option<MessageView>, Error> {
    let id64 = id.as_i64();
    // One snapshot for the message, its parts and its receipts; the statements pipelined.
    let read = futures_util::future::try_join4(
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"),
        rows(
            c,
            "SELECT id, idem_key, dest, sender, route, class, priority, encoding, split, dlr,
                state, text, tags, accepted_at, submitted_at, done_at, valid_until, options,
                held_until
             FROM message WHERE id = $1",
            &[&id64],
        ),
        rows(
            c,
            "SELECT n, state, smsc, smsc_id, attempts, last_status, stat, err, maybe_dup,
                acked_at, done_at FROM part WHERE message_id = $1 ORDER BY n",
            &[&id64],
        ),
        rows(
            c,
            "SELECT id, at, smsc, smsc_id, message_id, part_n, stat, err, submit_ts, done_ts,
                raw, tlv_state, tlv_err FROM dlr_log WHERE message_id = $1 ORDER BY id",
            &[&id64],
        ),
    )
    .await;
    let (_, found, part_rows, receipt_rows) = match read {
        Ok(r) => r,
        Err(e) => {
            // The connection goes back to the pool: never inside a transaction.
            let _ = c.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    c.batch_execute("COMMIT").await?;
    let Some(row) = found.first() else {
        return Ok(None);
    };
    let mut m = message_row(row);
    m.parts = part_rows.iter().map(part_row).collect();
    m.receipts = receipt_rows.iter().map(receipt_row).collect();
    if m.state == MessageState::Queued {
        let states: Vec<PartState> = m.parts.iter().map(|p| p.state).collect();
        m.state = aggregate(m.dlr, &states);
    }
    if m.submitted_at.is_none() && m.state != MessageState::Queued {
        m.submitted_at = m.parts.iter().filter_map(|p| p.acked_at).min();
    }
    Ok(Some(m))
}

/// Numbered events after `after`, oldest first.
pub(super) async fn events_after(
    c: &Client,
    after: i64,
    limit: usize,
) -> Result<Vec<Event>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    Ok(rows(
        c,
        "SELECT seq, kind, at, body FROM event WHERE seq > $1 ORDER BY seq LIMIT $2",
        &[&after, &limit],
    )
    .await?
    .iter()
    .map(|r| Event {
        seq: r.get(0),
        kind: r.get(1),
        at: r.get(2),
        body: r.get(3),
    })
    .collect())
}

/// Queued and waiting parts per route, with the oldest message, and apart the parts held past
/// `now_ms` (waiting, never tried: a send window or `send_at`).
pub(super) async fn queue_depth(c: &Client, now_ms: i64) -> Result<Vec<QueueDepth>, Error> {
    let found = rows(
        c,
        filled!(
            "SELECT route, count(*) FILTER (WHERE NOT held),
                min(message_id) FILTER (WHERE NOT held), count(*) FILTER (WHERE held)
             FROM (SELECT route, message_id,
                    state = {part:waiting} AND ready_at > $1 AND attempts = 0 AS held
                FROM part WHERE state IN ({part:queued}, {part:waiting})) p
             GROUP BY route ORDER BY route"
        ),
        &[&now_ms],
    )
    .await?;
    Ok(found
        .iter()
        .map(|r| QueueDepth {
            route: r.get(0),
            parts: r.get::<_, i64>(1).max(0) as u64,
            oldest_ms: r
                .get::<_, Option<i64>>(2)
                .map(|id| MessageId::from_i64(id).millis()),
            scheduled: r.get::<_, i64>(3).max(0) as u64,
        })
        .collect())
}

/// The scope under which `number` opted out of `scope` or of every sender (global first).
pub(super) async fn is_opted_out(
    c: &Client,
    number: &str,
    scope: &str,
) -> Result<Option<String>, Error> {
    Ok(rows(
        c,
        "SELECT scope FROM optout WHERE number = $1 AND scope IN ($2, $3)
         ORDER BY scope <> $2 LIMIT 1",
        &[&number, &GLOBAL_SCOPE, &scope],
    )
    .await?
    .first()
    .map(|r| r.get(0)))
}

/// A page of the opt-out list in (number, scope) order (see `StoreBackend::optout_list`).
pub(super) async fn optout_list(
    c: &Client,
    after: &str,
    after_scope: Option<&str>,
    limit: usize,
) -> Result<Vec<OptOutEntry>, Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = match after_scope {
        Some(_) => {
            "SELECT number, scope, keyword, at, smsc FROM optout
             WHERE (number, scope) > ($1, $2) ORDER BY number, scope LIMIT $3"
        }
        None => {
            "SELECT number, scope, keyword, at, smsc FROM optout
             WHERE number > $1 AND $2::text IS NULL ORDER BY number, scope LIMIT $3"
        }
    };
    Ok(rows(c, sql, &[&after, &after_scope, &limit])
        .await?
        .iter()
        .map(|r| OptOutEntry {
            number: r.get(0),
            scope: r.get(1),
            keyword: r.get(2),
            at_ms: r.get(3),
            smsc: r.get(4),
        })
        .collect())
}

pub(super) async fn final_counts(
    c: &Client,
    since_ms: i64,
) -> Result<Vec<(MessageState, u64)>, Error> {
    Ok(rows(
        c,
        "SELECT state, count(*) FROM message WHERE done_at >= $1 GROUP BY state",
        &[&since_ms],
    )
    .await?
    .iter()
    .filter_map(|r| {
        let s = MessageState::from_code(i64::from(r.get::<_, i32>(0)))?;
        Some((s, r.get::<_, i64>(1).max(0) as u64))
    })
    .filter(|(s, _)| s.is_final())
    .collect())
}

/// Every kept part of a concatenated MO, in arrival order.
pub(super) async fn mo_fragments(c: &Client) -> Result<Vec<MoFragment>, Error> {
    let found = rows(
        c,
        "SELECT source, dest, ref, total, seq, at, smsc, data_coding, udhi, sar_ref, sar_total,
            sar_seq, payload
         FROM mo_fragment ORDER BY at, source, dest, ref, total, seq",
        &[],
    )
    .await?;
    Ok(found
        .iter()
        .map(|r| {
            let sar = match (
                r.get::<_, Option<i32>>(9),
                r.get::<_, Option<i32>>(10),
                r.get::<_, Option<i32>>(11),
            ) {
                (Some(a), Some(b), Some(c)) => Some((a as u16, b as u8, c as u8)),
                _ => None,
            };
            MoFragment {
                set: MoSet {
                    source: r.get(0),
                    dest: r.get(1),
                    reference: r.get::<_, i32>(2) as u16,
                    total: r.get::<_, i32>(3) as u8,
                },
                seq: r.get::<_, i32>(4) as u8,
                now_ms: r.get(5),
                smsc: r.get(6),
                data_coding: r.get::<_, i32>(7) as u8,
                udhi: r.get(8),
                sar,
                payload: r.get(12),
            }
        })
        .collect())
}

pub(super) async fn stats(c: &Client) -> Result<StoreStats, Error> {
    let unmatched = count(c, "SELECT count(*) FROM dlr_log WHERE message_id IS NULL");
    let queued = queued_count(c);
    let in_flight = count(
        c,
        filled!("SELECT count(*) FROM part WHERE state = {part:sending}"),
    );
    let last = count(c, "SELECT coalesce(max(seq), 0)::bigint FROM event");
    let (unmatched, queued, in_flight, last) =
        futures_util::future::try_join4(unmatched, queued, in_flight, last).await?;
    Ok(StoreStats {
        unmatched_receipts: unmatched.max(0) as u64,
        queued_parts: queued.max(0) as u64,
        in_flight_parts: in_flight.max(0) as u64,
        last_seq: last,
    })
}

/// Messages matching `f`, newest first (`smppd reports`): candidates by id range and
/// destination in SQL, each read as [`message`] reads it (so its state is derived the same
/// way), the state filter applied to that state.
pub(super) async fn messages(
    c: &Client,
    f: &crate::store::MessageFilter,
) -> Result<Vec<MessageView>, Error> {
    if let Some(id) = f.id {
        let found = message(c, id).await?.filter(|m| matches(f, m));
        return Ok(found.into_iter().collect());
    }
    let since = MessageId::first_at(f.since_ms.unwrap_or(0)).as_i64();
    let limit = f.limit.max(1);
    let mut out = Vec::new();
    let mut below = i64::MAX;
    // Pages of candidates until `limit` matched or none is left.
    loop {
        let page = rows(
            c,
            "SELECT id FROM message WHERE id >= $1 AND id < $2 AND ($3::text IS NULL OR dest = $3)
             ORDER BY id DESC LIMIT $4",
            &[&since, &below, &f.to, &((limit * 4) as i64)],
        )
        .await?;
        for row in &page {
            let id: i64 = row.get(0);
            below = id;
            if let Some(m) = message(c, MessageId::from_i64(id)).await?
                && matches(f, &m)
            {
                out.push(m);
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        if page.len() < limit * 4 {
            return Ok(out);
        }
    }
}

fn matches(f: &crate::store::MessageFilter, m: &MessageView) -> bool {
    f.to.as_ref().is_none_or(|to| *to == m.to)
        && f.state.is_none_or(|s| s == m.state)
        && f.since_ms.is_none_or(|s| m.accepted_at >= s)
}

/// Receipts that matched no part, newest first.
pub(super) async fn unmatched_receipts(
    c: &Client,
    limit: usize,
) -> Result<Vec<ReceiptView>, Error> {
    Ok(rows(
        c,
        "SELECT id, at, smsc, smsc_id, message_id, part_n, stat, err, submit_ts, done_ts,
            raw, tlv_state, tlv_err FROM dlr_log WHERE message_id IS NULL ORDER BY id DESC LIMIT $1",
        &[&(limit as i64)],
    )
    .await?
    .iter()
    .map(receipt_row)
    .collect())
}

/// `reports --by tag:NAME|route`: the columns the tally needs of every message of an id range
/// (`$1`; ids start with the accept time, so `--since` is a primary-key range).
macro_rules! delivery_scan {
    ($column:literal) => {
        concat!(
            "SELECT state, accepted_at, done_at, ",
            $column,
            " FROM message WHERE id >= $1"
        )
    };
}

/// A stream of the rows of `sql`, read as the server sends them (never all held at once).
async fn row_stream(
    c: &Client,
    sql: &str,
    since: i64,
) -> Result<std::pin::Pin<Box<tokio_postgres::RowStream>>, Error> {
    let st = c.prepare_cached(sql).await?;
    Ok(Box::pin(c.query_raw(&st, [since]).await?))
}

/// `state, accepted_at, done_at` of a message row, from column `at` on.
fn outcome_columns(r: &Row, at: usize) -> Result<(i64, i64, Option<i64>), Error> {
    Ok((
        i64::from(r.try_get::<_, i32>(at)?),
        r.try_get(at + 1)?,
        r.try_get(at + 2)?,
    ))
}

/// Delivery per value of `by` for the messages accepted at or after `since_ms` (`smppd reports
/// --by`; what a row counts: `store::report`). The rows of the range are streamed into the
/// same tally as SQLite's reader fills, reading only the columns it needs (the tags as text,
/// searched without building an object): aggregating in SQL sorted every delivered message
/// per group for the percentiles, 3 to 10 times as slow on a million messages.
pub(super) async fn delivery(
    c: &mut Client,
    by: &ReportBy,
    since_ms: Option<i64>,
) -> Result<Vec<DeliveryRow>, Error> {
    let since = MessageId::first_at(since_ms.unwrap_or(0)).as_i64();
    let sql = match by {
        ReportBy::Smsc => return delivery_by_smsc(c, since).await,
        ReportBy::Route => delivery_scan!("route"),
        ReportBy::Tag(_) => delivery_scan!("tags"),
    };
    let mut rows = row_stream(c, sql, since).await?;
    let mut tally = DeliveryTally::default();
    while let Some(r) = rows.try_next().await? {
        let (state, accepted, done) = outcome_columns(&r, 0)?;
        let text: Option<&str> = r.try_get(3)?;
        tally.add_by(by, text, state, accepted, done);
    }
    Ok(tally.rows())
}

/// The last part with an SMSC of every message of the range (`store::report`): (message id,
/// part number, index into `names`) sorted, each SMSC name held once. A sorted vector, not a
/// hash map: half the client's time on a million messages.
#[derive(Default)]
struct LastParts {
    parts: Vec<(i64, i32, u32)>,
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl LastParts {
    fn add(&mut self, message: i64, n: i32, smsc: &str) {
        let name = match self.index.get(smsc) {
            Some(i) => *i,
            None => {
                let i = self.names.len() as u32;
                self.names.push(smsc.to_owned());
                self.index.insert(smsc.to_owned(), i);
                i
            }
        };
        self.parts.push((message, n, name));
    }

    /// Sorts by message and part number, keeping each message's highest-numbered part.
    fn finish(&mut self) {
        self.parts.sort_unstable();
        self.parts.reverse();
        self.parts.dedup_by_key(|p| p.0);
        self.parts.reverse();
    }

    /// The SMSC of `message`'s last part with one (after [`LastParts::finish`]).
    fn smsc(&self, message: i64) -> Option<&str> {
        let at = self.parts.binary_search_by_key(&message, |p| p.0).ok()?;
        let (_, _, name) = self.parts.get(at)?;
        self.names.get(*name as usize).map(String::as_str)
    }
}

/// `delivery` by SMSC: the parts with an SMSC of the range read into a map of each message's
/// last one, then the message rows streamed past it (a binary search each), both in one read-only REPEATABLE READ
/// transaction (one snapshot). Neither read is ordered: a join of the messages to the last part
/// of each cost 1.4–1.5 s on a million, and one stream of both ordered by id (UNION ALL) was
/// planned as a sort of both tables (1.2 s).
async fn delivery_by_smsc(c: &mut Client, since: i64) -> Result<Vec<DeliveryRow>, Error> {
    let tx = c
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let sql = "SELECT message_id, n, smsc FROM part WHERE message_id >= $1 AND smsc IS NOT NULL";
    let mut parts = Box::pin(tx.query_raw(sql, [since]).await?);
    let mut last = LastParts::default();
    while let Some(r) = parts.try_next().await? {
        last.add(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
    }
    last.finish();
    let sql = "SELECT id, state, accepted_at, done_at FROM message WHERE id >= $1";
    let mut rows = Box::pin(tx.query_raw(sql, [since]).await?);
    let mut tally = DeliveryTally::default();
    while let Some(r) = rows.try_next().await? {
        let (state, accepted, done) = outcome_columns(&r, 1)?;
        tally.add(last.smsc(r.try_get(0)?), state, accepted, done);
    }
    tx.commit().await?;
    Ok(tally.rows())
}
