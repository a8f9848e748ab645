//! The event sequencer: events are inserted with `seq NULL`; after their transaction commits,
//! one sequencer at a time (cluster-wide, under an advisory lock) numbers every committed
//! unnumbered event in row-id order with `nextval('event_seq')`. Readers only see numbered
//! events, and numbers are handed out only to committed rows by one transaction at a time, so
//! an event committed late gets a later number than every event a reader may have seen: a
//! subscriber resuming after N never misses one, whichever instance committed first.
//!
//! The sequencer task (`writer::sequencer_loop`) runs it once per burst of committed batches
//! that added events, on its own connection; a poll task runs it
//! every 200 ms (events of an instance that died between its commit and its sequencing, and
//! other instances' events for this instance's `last_seq`). Owns the numbering; must never
//! number inside a write transaction, and never NOTIFY.

use super::{Client, db_error};
use deadpool_postgres::Pool;
use futures_util::future::{try_join, try_join4};
use std::collections::HashMap;
use tokio::sync::watch;

/// The sequencer's advisory lock key (`smppd` `events` in ASCII).
const SEQUENCER_LOCK: i64 = 0x736d_7070_6465_7673;

/// How often the poll numbers stray events and reads the cluster's last sequence number.
const POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Numbers every committed unnumbered event in one transaction; returns (row id, seq) of those
/// it numbered. BEGIN, the lock and the numbering go in one round trip (pipelined: the server
/// runs them in order), then COMMIT.
pub(super) async fn sequence(client: &Client) -> Result<Vec<(i64, i64)>, tokio_postgres::Error> {
    // Prepared first, so that the pipelined BEGIN, lock and numbering are sent in this order.
    let (lock, number) = try_join(
        client.prepare_cached("SELECT pg_advisory_xact_lock($1)"),
        client.prepare_cached(NUMBER),
    )
    .await?;
    // COMMIT goes in the same round trip: after a failed statement it only ends the aborted
    // transaction, and the error is the statement's.
    // No bitmap scan: it never marks the index entries of numbered (dead) row versions, so
    // each run visited every event numbered since the last vacuum (2.6 ms a run in the bench);
    // a plain scan of `event_unsequenced` marks them and skips them from then on.
    let result = try_join4(
        client.batch_execute("BEGIN; SET LOCAL enable_bitmapscan = off"),
        client.execute(&lock, &[&SEQUENCER_LOCK]),
        client.query(&number, &[]),
        client.batch_execute("COMMIT"),
    )
    .await;
    match result {
        Ok((_, _, rows, _)) => Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect()),
        Err(e) => {
            if !client.is_closed() {
                let _ = client.batch_execute("ROLLBACK").await;
            }
            Err(e)
        }
    }
}

/// Numbers the committed unnumbered events in row-id order (run under the sequencer's lock).
const NUMBER: &str = "WITH todo AS (SELECT id FROM event WHERE seq IS NULL ORDER BY id FOR UPDATE),
      numbered AS (SELECT id, nextval('event_seq') AS seq FROM (SELECT id FROM todo ORDER BY id) t)
    UPDATE event e SET seq = numbered.seq FROM numbered WHERE e.id = numbered.id
    RETURNING e.id, e.seq";

/// Numbers the committed events and returns the numbers of `ids` (some may have been numbered
/// by another sequencer first: those are read back).
pub(super) async fn sequence_ids(
    client: &Client,
    ids: &[i64],
) -> Result<HashMap<i64, i64>, tokio_postgres::Error> {
    let mut seqs: HashMap<i64, i64> = sequence(client).await?.into_iter().collect();
    let missing: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !seqs.contains_key(id))
        .collect();
    if !missing.is_empty() {
        let st = client
            .prepare_cached("SELECT id, seq FROM event WHERE id = ANY($1) AND seq IS NOT NULL")
            .await?;
        for r in client.query(&st, &[&missing]).await? {
            seqs.insert(r.get(0), r.get(1));
        }
    }
    Ok(seqs)
}

/// The highest event number (0 with none).
pub(super) async fn max_seq(client: &Client) -> Result<i64, tokio_postgres::Error> {
    let st = client
        .prepare_cached("SELECT coalesce(max(seq), 0)::bigint FROM event")
        .await?;
    Ok(client.query_one(&st, &[]).await?.get(0))
}

/// Every [`POLL`]: sequences, then publishes the cluster's last event number when it grew.
pub(super) async fn poll_loop(pool: Pool, url: String, seq: watch::Sender<i64>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(client) = pool.get().await else {
            continue;
        };
        let result = async {
            sequence(&client).await?;
            max_seq(&client).await
        }
        .await;
        match result {
            Ok(max) => {
                seq.send_if_modified(|s| {
                    let newer = max > *s;
                    *s = (*s).max(max);
                    newer
                });
            }
            Err(e) => tracing::debug!(error = %db_error(&e, &url), "event poll failed"),
        }
    }
}
