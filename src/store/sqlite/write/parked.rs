//! Parked claims (issue #20): a route's claim that found nothing ready waits in the writer's
//! memory, runs again at the end of each transaction that may have made parts of its route
//! ready (an accept for the route whose parts are not held, a requeue or a retry that is due,
//! a reroute, the waiting parts' wake-up, parts given back below), and is answered after that
//! commit, together with the write that readied its parts. At light load a message then costs
//! no trip of its own through the writer to be claimed: the accept's commit answers the claim.
//! The claim is the plain claim's (`Writer::claim`: same statements, order, expiry and
//! `claimed` bookkeeping); only when it runs changes.
//!
//! Owns the parked claims (at most one per route; a board shared with the store's handle), the
//! routes known to have nothing ready, the answers waiting for their commit, and
//! the parts of answers that nobody will read ("orphans"). Must never drop claimed parts
//! (orphans go back to the queue) and must cost nothing when no claim is parked (the common
//! case under load: a route task then always finds parts).
//!
//! Every interleaving with the route task, which waits on the answer, a wake-up for another
//! reason (a bind came up, a reload), its idle timeout and the stop, whichever comes first,
//! and on giving up closes the receiver and takes an answer already sent
//! (`Pending::abandon`):
//! 1. The task gives up before the claim runs: the writer finds the receiver closed before
//!    running it and drops it; nothing was claimed.
//! 2. The answer was sent before the task closed the receiver: `abandon` returns it and the
//!    task sends the parts (at a stop it requeues them, as every unsent part).
//! 3. The writer found the receiver open, claimed, and the task closed it before the answer
//!    was sent after the commit: the send fails and the parts become orphans. The next
//!    transaction (the task's own next claim starts one at once) puts them back to `queued`,
//!    giving back the attempt the claim counted, before the parked claims run, so that a new
//!    parked claim takes them in the same commit; at close, a last transaction does it. Only a
//!    crash in between leaves them `sending`, and recovery at the next open requeues them as
//!    every part in flight at a crash.
//! 4. The transaction that claimed for a parked claim is rolled back: the claimed rows are
//!    undone with it; the answers go back to the parked claims, all marked to run again.
//! 5. A second parked claim for the same route (a reload's new task while the old one ends)
//!    replaces the first, which is answered empty: its task waits for a wake-up as after an
//!    empty claim.
//! 6. The store closes with claims parked: they are dropped unanswered (their receivers see
//!    `Closed`; the route tasks are stopped before the store closes).
//!
//! 7. The claim parks without a trip through the writer ([`park_idle`], the route task's claim
//!    right after it sent what it got): only when the writer found nothing of the route ready
//!    less than [`PARK_FRESH_MS`] ago and no write readied parts of it since. Both sides hold
//!    the board's mutex: a write that readies parts of the route clears that mark before the
//!    caller looks (the caller then makes the trip) or finds the claim parked and makes it due
//!    (this transaction runs it). A rollback clears every mark.
//!
//! A parked claim waits for writes only: parts that become ready with time (a retry's or a
//! held message's `ready_at`) are found by the waiting parts' wake-up of any transaction that
//! runs a parked claim, or by the route task's next claim after its idle timeout (by then the
//! mark of 7. is stale, so that claim makes the trip and runs the wake-up).

use super::{JobError, Writer, sql};
use crate::store::{PartRef, QueuedPart, StoreError};
use rusqlite::params;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Where a parked claim's answer goes.
pub(crate) type ClaimTx = oneshot::Sender<Result<Vec<QueuedPart>, StoreError>>;

/// How recent (on the callers' clock, ms) the writer's word that a route has nothing ready
/// must be for a claim to park without a trip through the writer: a parked claim waits for
/// writes only, so parts readied by time (retries, held messages) are found by a claim that
/// makes the trip; a route task gives up waiting after 100 ms, so its next claim makes it.
pub(crate) const PARK_FRESH_MS: i64 = 50;

struct Claim {
    limit: usize,
    /// The claim's clock: its own time, moved on by the writes that readied parts since.
    now: i64,
    /// To run at the end of this transaction.
    due: bool,
    tx: ClaimTx,
}

/// The parked claims, shared by the writer and the store's handle (see [`park_idle`]).
#[derive(Default)]
pub(crate) struct Board {
    claims: HashMap<String, Claim>,
    /// Per route: the clock of the last parked claim that left nothing of the route ready,
    /// removed by any write that may have readied parts of it since.
    idle_since: HashMap<String, i64>,
    /// Some claim is due: the only check a transaction pays when nothing is parked or due.
    any_due: bool,
}

pub(crate) type SharedBoard = Arc<Mutex<Board>>;

fn lock(board: &SharedBoard) -> MutexGuard<'_, Board> {
    // A panic elsewhere while holding it leaves maps that are still consistent.
    board.lock().unwrap_or_else(|p| p.into_inner())
}

/// The caller's side: parks a claim of `route` at once, without waking the writer, when the
/// writer found nothing of the route ready less than [`PARK_FRESH_MS`] ago and no write
/// readied parts of it since (the route task's claim right after sending what it got: at
/// light load, the trip it saves is the one a parked claim would otherwise cost per message).
/// Otherwise hands `tx` back: the claim must go to the writer as a write.
pub(crate) fn park_idle(
    board: &SharedBoard,
    route: &str,
    limit: usize,
    now: i64,
    tx: ClaimTx,
) -> Option<ClaimTx> {
    let mut b = lock(board);
    match b.idle_since.get(route) {
        Some(&at) if now.saturating_sub(at) < PARK_FRESH_MS => {}
        _ => return Some(tx),
    }
    let claim = Claim {
        limit,
        now,
        due: false,
        tx,
    };
    if let Some(old) = b.claims.insert(route.to_owned(), claim) {
        // It claimed nothing; its caller may have given up already.
        let _ = old.tx.send(Ok(Vec::new()));
    }
    None
}

/// The writer's side of the parked claims (see the module docs).
#[derive(Default)]
pub(crate) struct Parked {
    board: SharedBoard,
    /// Claims that found parts in this transaction, answered after its commit.
    answers: Vec<(String, Claim, Vec<QueuedPart>)>,
    /// Parts answered to a receiver that was closed: to go back to the queue.
    orphans: Vec<PartRef>,
    /// How many of `orphans` this transaction put back (forgotten at its commit).
    requeued: usize,
}

impl Writer<'_> {
    /// Shares the parked claims with the store's handle (before the first write).
    pub(crate) fn share_parked(&mut self, board: SharedBoard) {
        self.parked.board = board;
    }

    /// Parks a claim of `route`, due at the end of this transaction (after the batch's other
    /// writes, so it sees them). An older parked claim of the route is answered empty.
    pub(crate) fn park(&mut self, route: &str, limit: usize, now: i64, tx: ClaimTx) {
        if tx.is_closed() {
            return;
        }
        let claim = Claim {
            limit,
            now,
            due: true,
            tx,
        };
        let mut b = lock(&self.parked.board);
        if let Some(old) = b.claims.insert(route.to_owned(), claim) {
            let _ = old.tx.send(Ok(Vec::new()));
        }
        b.any_due = true;
    }

    /// A write in this transaction may have made parts ready: of `route`, or of any route
    /// (`None`). At `now` (the write's time), which the claims it makes due go on with.
    pub(crate) fn parts_ready(&mut self, route: Option<&str>, now: i64) {
        let mut b = lock(&self.parked.board);
        let b = &mut *b;
        let mark = |c: &mut Claim| {
            c.due = true;
            c.now = c.now.max(now);
        };
        match route {
            Some(r) => {
                if !b.idle_since.is_empty() {
                    b.idle_since.remove(r);
                }
                match b.claims.get_mut(r) {
                    Some(c) => mark(c),
                    None => return,
                }
            }
            None => {
                b.idle_since.clear();
                b.claims.values_mut().for_each(mark);
            }
        }
        b.any_due |= !b.claims.is_empty();
    }

    /// Last in every transaction, before its commit: puts orphans back in the queue, then runs
    /// the parked claims that are due (the waiting parts' wake-up once, then each claim).
    pub(crate) fn before_commit(&mut self) -> rusqlite::Result<()> {
        self.requeue_orphans()?;
        let board = Arc::clone(&self.parked.board);
        let now = {
            let mut b = lock(&board);
            if !b.any_due {
                return Ok(());
            }
            // A claim nobody waits for any more is dropped before it claims anything.
            b.claims.retain(|_, c| !c.tx.is_closed());
            b.claims.values().filter(|c| c.due).map(|c| c.now).max()
        };
        if let Some(now) = now {
            self.wake_waiting(now)?;
        }
        let mut b = lock(&board);
        b.any_due = false;
        let due: Vec<String> = (b.claims.iter())
            .filter(|(_, c)| c.due)
            .map(|(r, _)| r.clone())
            .collect();
        for route in due {
            let Some(c) = b.claims.get_mut(&route) else {
                continue;
            };
            c.due = false;
            let (limit, now) = (c.limit, c.now);
            let (parts, more) = match self.take_ready(&route, limit, now) {
                Ok(taken) => taken,
                Err(JobError::Db(e)) => return Err(e),
                Err(JobError::Domain(e)) => {
                    if let Some(c) = b.claims.remove(&route) {
                        let _ = c.tx.send(Err(e));
                    }
                    continue;
                }
            };
            if more {
                b.idle_since.remove(&route);
            } else {
                b.idle_since.insert(route.clone(), now);
            }
            if !parts.is_empty()
                && let Some(c) = b.claims.remove(&route)
            {
                self.parked.answers.push((route, c, parts));
            }
        }
        Ok(())
    }

    /// Puts the orphans back to `queued` (only while still `sending`: nothing else takes a part
    /// nobody holds), giving back the attempt their claim counted, and makes every parked claim
    /// due so a waiting route takes them in this transaction.
    fn requeue_orphans(&mut self) -> rusqlite::Result<()> {
        if self.parked.orphans.is_empty() {
            return Ok(());
        }
        let mut st = self.conn.prepare_cached(sql!(
            "UPDATE part SET state = {part:queued}, attempts = max(attempts - 1, 0)
             WHERE message_id = ?1 AND n = ?2 AND state = {part:sending}"
        ))?;
        for p in &self.parked.orphans {
            st.execute(params![p.message.as_i64(), p.n])?;
            self.claimed.remove(&(p.message.as_i64(), p.n));
        }
        drop(st);
        self.parked.requeued = self.parked.orphans.len();
        self.parts_ready(None, i64::MIN);
        Ok(())
    }

    /// After the commit: the orphans put back are forgotten and the answers go out; the parts
    /// of an answer whose receiver was closed meanwhile become orphans (see the module docs).
    pub(crate) fn answer_parked(&mut self) {
        let p = &mut self.parked;
        p.orphans.drain(..p.requeued);
        p.requeued = 0;
        for (_, claim, parts) in p.answers.drain(..) {
            if let Err(Ok(parts)) = claim.tx.send(Ok(parts)) {
                p.orphans.extend(parts.iter().map(|q| q.part));
            }
        }
    }

    /// After a rollback: what the answers claimed was undone; their claims park again, every
    /// parked claim runs again at the next transaction, and no route is known to be idle.
    pub(crate) fn parked_rolled_back(&mut self) {
        let p = &mut self.parked;
        p.requeued = 0;
        let mut b = lock(&p.board);
        for (route, claim, _) in p.answers.drain(..) {
            match b.claims.entry(route) {
                // Replaced in the same transaction: the older claim is answered empty.
                Entry::Occupied(_) => {
                    let _ = claim.tx.send(Ok(Vec::new()));
                }
                Entry::Vacant(v) => {
                    v.insert(claim);
                }
            }
        }
        b.claims.values_mut().for_each(|c| c.due = true);
        b.any_due = !b.claims.is_empty();
        b.idle_since.clear();
    }

    /// At close, after the last write: parked claims are dropped (their receivers see the store
    /// closed) and orphans go back to the queue in a transaction of their own.
    pub(crate) fn close_parked(&mut self) {
        {
            let mut b = lock(&self.parked.board);
            b.claims.clear();
            b.idle_since.clear();
            b.any_due = false;
        }
        if self.parked.orphans.is_empty() {
            return;
        }
        let done = self.begin().and_then(|()| self.requeue_orphans());
        match done.and_then(|()| self.commit()) {
            Ok(()) => self.committed(),
            Err(e) => {
                self.rollback();
                self.rolled_back();
                tracing::error!(error = %e, parts = self.parked.orphans.len(), "claimed parts not handed back at close; recovery requeues them at the next open");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewMessage, NewPart, PartState, Settings};
    use rusqlite::Connection;

    const T0: i64 = 1_767_225_600_000;

    fn store() -> Connection {
        let mut conn = Connection::open_in_memory().expect("memory db");
        crate::store::sqlite::migrate(&mut conn, std::path::Path::new(":memory:"))
            .expect("migrates");
        conn
    }

    fn message() -> NewMessage {
        NewMessage {
            to: "+46700000001".into(),
            from: "ACME".into(),
            route: "default".into(),
            encoding: "gsm7".into(),
            split: "udh8".into(),
            options: "{}".into(),
            text: "hello".into(),
            parts: vec![NewPart {
                data_coding: 0,
                esm_class: 0,
                segment: b"hello".to_vec(),
                sar_ref: None,
            }],
            now_ms: T0,
            ..NewMessage::default()
        }
    }

    fn part_row(conn: &Connection) -> (PartState, i64) {
        let (state, attempts): (i64, i64) = conn
            .query_row("SELECT state, attempts FROM part", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("one part");
        (PartState::from_code(state).expect("state"), attempts)
    }

    fn transaction(w: &mut Writer<'_>, f: impl FnOnce(&mut Writer<'_>)) {
        w.begin().expect("begin");
        f(w);
        w.before_commit().expect("parked claims run");
        w.commit().expect("commit");
        w.committed();
    }

    /// Interleaving 3 of the module docs: the route task closes its receiver after the writer
    /// checked it and claimed for it, before the answer is sent. The part must not stay
    /// `sending`: the next transaction puts it back, with the attempt given back, and a claim
    /// takes it again as a first attempt.
    #[test]
    fn parts_answered_to_a_receiver_closed_after_the_check_go_back_to_the_queue() {
        let conn = store();
        let mut w = Writer::new(&conn, Settings::default()).expect("writer");
        let (tx, mut rx) = oneshot::channel();
        w.begin().expect("begin");
        w.park("default", 10, T0, tx);
        w.accept(&message()).map_err(|_| "accept").expect("accept");
        w.before_commit().expect("parked claim runs");
        assert_eq!(
            part_row(&conn),
            (PartState::Sending, 1),
            "claimed for the parked claim"
        );
        rx.close(); // the task gives up now
        w.commit().expect("commit");
        w.committed();
        assert!(
            rx.try_recv().is_err(),
            "nothing to read: the receiver was closed"
        );
        transaction(&mut w, |_| {});
        assert_eq!(part_row(&conn), (PartState::Queued, 0), "back in the queue");
        w.begin().expect("begin");
        let again = w
            .claim("default", 10, T0)
            .map_err(|_| "claim")
            .expect("claim");
        w.commit().expect("commit");
        w.committed();
        assert_eq!((again.len(), again[0].attempts), (1, 1));
    }

    /// Interleaving 1: a receiver closed before the claim runs claims nothing.
    #[test]
    fn a_claim_given_up_before_it_runs_claims_nothing() {
        let conn = store();
        let mut w = Writer::new(&conn, Settings::default()).expect("writer");
        let (tx, rx) = oneshot::channel();
        transaction(&mut w, |w| w.park("default", 10, T0, tx));
        drop(rx);
        transaction(&mut w, |w| {
            w.accept(&message()).map_err(|_| "accept").expect("accept");
        });
        assert_eq!(part_row(&conn), (PartState::Queued, 0));
    }

    /// Interleaving 4: a rolled-back transaction undoes the claim; the claim parks again and
    /// takes the part at the next commit.
    #[test]
    fn a_rolled_back_answer_parks_again() {
        let conn = store();
        let mut w = Writer::new(&conn, Settings::default()).expect("writer");
        transaction(&mut w, |w| {
            w.accept(&message()).map_err(|_| "accept").expect("accept");
        });
        let (tx, mut rx) = oneshot::channel();
        w.begin().expect("begin");
        w.park("default", 10, T0, tx);
        w.before_commit().expect("parked claim runs");
        w.rollback();
        w.rolled_back();
        assert!(
            rx.try_recv().is_err(),
            "not answered by a rolled-back transaction"
        );
        assert_eq!(part_row(&conn), (PartState::Queued, 0));
        transaction(&mut w, |_| {});
        let got = rx.try_recv().expect("answered").expect("claim");
        assert_eq!(got.len(), 1);
        assert_eq!(part_row(&conn), (PartState::Sending, 1));
    }
}
