//! SQL text that names a state. Part and message states are stored as their codes, and the one
//! mapping between states and codes is [`PartState`] / [`MessageState`] (`store/types.rs`).
//! Statements name a state as `{part:queued}` or `{message:failed}` (the states' API names),
//! and [`sql!`] fills in the code once, at the statement's first use; so no state number is
//! written in a statement, and the filled text is exactly what a literal would have been.
//!
//! Why codes are filled into the text rather than bound as parameters: SQLite uses a partial
//! index only when it can prove from the query's WHERE clause that the rows it wants are in the
//! index. A literal proves it once, when the statement is prepared; a bound parameter only for
//! the value bound, so SQLite prepares the statement again at every execution (what that costs
//! the writer: see `Writer::held_receipts`). The statements that rely on a partial index are
//! named here, each with its index, and a test checks with `EXPLAIN QUERY PLAN` that SQLite
//! still uses them.
//!
//! Schema migrations (`schema.rs`) keep their literal codes: they are history, run once per file
//! and never edited, and their partial indexes are what these statements must match.
//!
//! Owns the filling and the index-dependent statements; must never fill in anything but state
//! codes (values that vary are bound parameters).

use crate::store::{MessageState, PartState};
use std::fmt::Write as _;
use std::sync::OnceLock;

/// A statement's text with state placeholders, filled once (see the module docs).
pub(crate) struct Sql {
    text: &'static str,
    filled: OnceLock<String>,
}

impl Sql {
    pub(crate) const fn new(text: &'static str) -> Sql {
        Sql {
            text,
            filled: OnceLock::new(),
        }
    }

    /// The statement with its state codes. After the first call, one atomic load: cheap enough
    /// for the hot path's `prepare_cached` lookups.
    pub(crate) fn get(&self) -> &str {
        self.filled.get_or_init(|| fill(self.text))
    }
}

/// The text of a statement with `{part:…}` / `{message:…}` state placeholders, filled once.
macro_rules! sql {
    ($text:literal) => {{
        static SQL: $crate::store::sqlite::sql::Sql = $crate::store::sqlite::sql::Sql::new($text);
        SQL.get()
    }};
}
pub(crate) use sql;

/// Replaces each `{part:name}` / `{message:name}` with the state's code. A placeholder that
/// names no state is left as it is: SQLite refuses the `{` ("unrecognized token") when the
/// statement is prepared, so the mistake shows at the first use of the statement.
pub(crate) fn fill(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let Some(close) = tail.find('}') else {
            rest = tail;
            break;
        };
        match code(&tail[1..close]) {
            Some(c) => {
                let _ = write!(out, "{c}");
            }
            None => out.push_str(&tail[..=close]),
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

fn code(placeholder: &str) -> Option<i64> {
    match placeholder.split_once(':')? {
        ("part", name) => PartState::from_name(name).map(PartState::code),
        ("message", name) => MessageState::from_name(name).map(MessageState::code),
        _ => None,
    }
}

/// The head of a route's queue (dispatch's claim). Index `part_queue` (`state = queued`).
pub(crate) static QUEUE_HEAD: Sql = Sql::new(
    "SELECT p.message_id, p.n, m.parts, m.dest, m.sender, p.priority, m.dlr,
        m.valid_until, m.split, p.data_coding, p.esm_class, p.segment, p.sar_ref,
        p.attempts, p.maybe_dup, p.smsc, p.rerouted_from
     FROM part p JOIN message m ON m.id = p.message_id
     WHERE p.route = ?1 AND p.state = {part:queued}
     ORDER BY p.priority DESC, p.message_id, p.n
     LIMIT ?2",
);

/// Parts whose retry or hold time came go back to the queue, earliest `ready_at` first and at
/// most `?2` ([`WAKE_BATCH`](crate::store::WAKE_BATCH)) per claim: a million messages held
/// until 09:00 are released over many claims, not in one UPDATE that holds the writer for
/// seconds. Index `part_waiting` (`state = waiting`).
pub(crate) static WAKE_WAITING: Sql = Sql::new(
    "UPDATE part SET state = {part:queued}
     WHERE (message_id, n) IN (SELECT message_id, n FROM part
        WHERE state = {part:waiting} AND ready_at <= ?1 ORDER BY ready_at LIMIT ?2)",
);

/// Queued or waiting parts past their validity, oldest first (the expiry sweep). Index
/// `part_validity` (`state IN (queued, waiting)`).
pub(crate) static DUE_VALIDITY: Sql = Sql::new(
    "SELECT message_id FROM part
     WHERE state IN ({part:queued}, {part:waiting}) AND valid_until < ?1
     ORDER BY valid_until LIMIT ?2",
);

/// Acknowledged parts still waiting for a receipt, oldest acknowledgement first (the
/// no_receipt sweep). Index `part_awaiting` (`state = submitted AND dlr = 1`).
pub(crate) static DUE_RECEIPT: Sql = Sql::new(
    "SELECT message_id FROM part
     WHERE state = {part:submitted} AND dlr = 1 AND acked_at <= ?1
     ORDER BY acked_at LIMIT ?2",
);

/// Parts queued or waiting for a retry (recovery at open, `stats`): two counts over the partial
/// indexes `part_queue` and `part_waiting` rather than one scan of every part.
pub(crate) static QUEUED_COUNT: Sql = Sql::new(
    "SELECT (SELECT count(*) FROM part WHERE state = {part:queued})
        + (SELECT count(*) FROM part WHERE state = {part:waiting})",
);

/// Queued and waiting parts per route, with the oldest message (`smppd status`), and apart the
/// parts held past `?1` (waiting, never tried: a send window or `send_at`). Indexes
/// `part_queue` and `part_waiting`.
pub(crate) static QUEUE_DEPTH: Sql = Sql::new(
    "SELECT route, count(*), min(message_id), 0 FROM part WHERE state = {part:queued} GROUP BY route
     UNION ALL
     SELECT route, sum(NOT (ready_at > ?1 AND attempts = 0)),
        min(CASE WHEN ready_at > ?1 AND attempts = 0 THEN NULL ELSE message_id END),
        sum(ready_at > ?1 AND attempts = 0)
     FROM part WHERE state = {part:waiting} GROUP BY route",
);

/// The parts a receipt may be for: by the hash of its SMSC and key (`receipts::receipt_hash`),
/// through the partial index `part_smsc_hash` (`= ?1` proves `IS NOT NULL`); the caller compares
/// the key (`smsc_id`, `smsc_key`: columns 7 and 8), since hashes collide.
pub(crate) static RECEIPT_PART: Sql = Sql::new(
    "SELECT message_id, n, state, parts, dlr, receipts, acked_at, smsc_id, smsc_key FROM part
     WHERE smsc_hash = ?1 AND smsc = ?2 LIMIT 64",
);

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn placeholders_become_the_enum_codes() {
        assert_eq!(
            fill("SET state = {part:expired} WHERE x IN ({message:failed}, {part:no_receipt})"),
            format!(
                "SET state = {} WHERE x IN ({}, {})",
                PartState::Expired.code(),
                MessageState::Failed.code(),
                PartState::NoReceipt.code()
            )
        );
        // `expired` is 6 for a part and 4 for a message; `failed` the other way round.
        assert_eq!(fill("{part:expired} {message:expired}"), "6 4");
        assert_eq!(fill("{part:failed} {message:failed}"), "8 6");
    }

    #[test]
    fn a_placeholder_naming_no_state_is_refused_by_sqlite() {
        for bad in ["{part:lost}", "{queued}", "{parts:queued}", "{part:queued"] {
            let text = format!("SELECT 1 WHERE 1 = {bad}");
            assert_eq!(fill(&text), text);
            let conn = Connection::open_in_memory().expect("memory db");
            assert!(conn.prepare(&fill(&text)).is_err(), "{bad}");
        }
    }

    /// `state <= {part:waiting}` in the writer and the readers means "pending".
    #[test]
    fn the_pending_states_are_the_codes_up_to_waiting() {
        for c in 0..=20 {
            if let Some(s) = PartState::from_code(c) {
                assert_eq!(s.is_pending(), c <= PartState::Waiting.code(), "{s}");
            }
        }
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("statement prepares");
        // The plan does not depend on the values bound (no statistics tables).
        let nulls = std::iter::repeat_n(rusqlite::types::Null, st.parameter_count());
        let rows = st
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<Result<Vec<_>, _>>()
            .expect("plan rows");
        rows.join("; ")
    }

    #[test]
    fn the_sweeps_and_the_queue_use_their_partial_indexes() {
        let conn = Connection::open_in_memory().expect("memory db");
        super::super::migration_functions(&conn).expect("functions");
        for m in super::super::schema::MIGRATIONS {
            conn.execute_batch(m).expect("migration");
        }
        let cases: [(&Sql, &[&str]); 7] = [
            (&QUEUE_HEAD, &["part_queue"]),
            (&WAKE_WAITING, &["part_waiting"]),
            (&DUE_VALIDITY, &["part_validity"]),
            (&DUE_RECEIPT, &["part_awaiting"]),
            (&QUEUED_COUNT, &["part_queue", "part_waiting"]),
            (&QUEUE_DEPTH, &["part_queue", "part_waiting"]),
            (&RECEIPT_PART, &["part_smsc_hash"]),
        ];
        for (sql, indexes) in cases {
            let plan = plan(&conn, sql.get());
            for index in indexes {
                assert!(
                    plan.contains(&format!("INDEX {index}")),
                    "{index} not used by {}: {plan}",
                    sql.get()
                );
            }
        }
        // A receipt seeks its hash: a scan of the whole index would also name it.
        let plan = plan(&conn, RECEIPT_PART.get());
        assert!(
            plan.contains("SEARCH part USING INDEX part_smsc_hash (smsc_hash=?)"),
            "{plan}"
        );
    }
}
