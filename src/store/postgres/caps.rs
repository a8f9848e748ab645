//! Frequency caps in a run of accepts (see `store::caps`), atomic across instances: every
//! counter a batch's capped accepts read is locked with `pg_advisory_xact_lock` at BEGIN (with
//! the receipt locks, in key order), so another instance's accept of the same counter waits
//! for this transaction's commit and then reads its counts. Inside the batch the accepts are
//! decided in order, each seeing the counts of those before it. Runs inside the writer's batch
//! transaction; must never commit, and must never write before the decision (a refusal leaves
//! nothing behind).

use std::collections::{HashMap, HashSet};

use super::write::W;
use super::writer::{Command, Op};
use crate::store::caps::{self, counters, lock_key};
use crate::store::{MessageId, NewMessage, StoreError};

/// The advisory locks of a message's cap counters.
pub(super) fn locks(m: &NewMessage) -> impl Iterator<Item = i64> + '_ {
    counters(&m.caps).into_iter().map(|(k, s)| lock_key(k, s))
}

/// Counts per (cap key, scope): the accept times read, then those this batch adds.
type Counts = HashMap<(String, String), Vec<i64>>;

impl W<'_> {
    /// Decides the capped accepts among `valid` (indices into `cmds`), in order: a refused one
    /// is answered [`StoreError::Capped`] and leaves `valid`. Accepts whose idempotency key is
    /// stored already (duplicates) are not checked. Returns the capped accepts admitted.
    pub(super) async fn gate_caps(
        &mut self,
        cmds: &mut [Command],
        valid: &mut Vec<usize>,
    ) -> Result<Vec<usize>, tokio_postgres::Error> {
        let capped: Vec<usize> = valid
            .iter()
            .copied()
            .filter(|&i| matches!(&cmds[i].op, Op::Accept(m) if !m.caps.is_empty()))
            .collect();
        if capped.is_empty() {
            return Ok(capped);
        }
        let msgs: Vec<&NewMessage> = capped
            .iter()
            .filter_map(|&i| match &cmds[i].op {
                Op::Accept(m) => Some(m),
                _ => None,
            })
            .collect();
        let (existing, mut counts) = self.read_counts(&msgs).await?;
        let mut admitted = Vec::with_capacity(capped.len());
        let mut keys_admitted: HashSet<String> = HashSet::new();
        for i in capped {
            let Op::Accept(m) = &cmds[i].op else { continue };
            if let Some(k) = &m.key
                && (existing.contains(k) || keys_admitted.contains(k))
            {
                continue; // a duplicate: answered with the first message, counts nothing
            }
            let times = |c: &crate::store::CapLimit| {
                let key = (c.key.clone(), c.scope.clone());
                counts.get(&key).cloned().unwrap_or_default()
            };
            match caps::decide(&m.caps, times, m.now_ms) {
                Ok(()) => {
                    for (k, s) in counters(&m.caps) {
                        let e = counts.entry((k.to_owned(), s.to_owned())).or_default();
                        e.push(m.now_ms);
                    }
                    keys_admitted.extend(m.key.clone());
                    admitted.push(i);
                }
                Err(refusal) => {
                    valid.retain(|&v| v != i);
                    cmds[i].out = Some(Err(StoreError::Capped(refusal)));
                }
            }
        }
        Ok(admitted)
    }

    /// The stored idempotency keys among the capped accepts, and every counter's accept times
    /// within the longest window (two statements, pipelined).
    async fn read_counts(
        &self,
        msgs: &[&NewMessage],
    ) -> Result<(HashSet<String>, Counts), tokio_postgres::Error> {
        let keys: Vec<&str> = msgs.iter().filter_map(|m| m.key.as_deref()).collect();
        let (mut cap_keys, mut scopes) = (Vec::new(), Vec::new());
        for m in msgs {
            for (k, s) in counters(&m.caps) {
                cap_keys.push(k);
                scopes.push(s);
            }
        }
        let floor = msgs
            .iter()
            .map(|m| caps::floor(&m.caps, m.now_ms))
            .min()
            .unwrap_or(0);
        let st = self
            .prepare(&[
                "SELECT idem_key FROM message WHERE idem_key = ANY($1::text[])",
                "SELECT h.cap, h.scope, h.at FROM cap_hit h
                 JOIN (SELECT DISTINCT c, s FROM unnest($1::text[], $2::text[]) AS u(c, s)) u
                   ON h.cap = u.c AND h.scope = u.s
                 WHERE h.at > $3",
            ])
            .await?;
        let (stored, hits) = futures_util::future::try_join(
            self.c.query(&st[0], &[&keys]),
            self.c.query(&st[1], &[&cap_keys, &scopes, &floor]),
        )
        .await?;
        let existing = stored.iter().map(|r| r.get(0)).collect();
        let mut counts = Counts::new();
        for r in hits {
            counts
                .entry((r.get(0), r.get(1)))
                .or_default()
                .push(r.get(2));
        }
        Ok((existing, counts))
    }

    /// One count per counter for each admitted capped accept that was inserted (one statement).
    pub(super) async fn count_caps(
        &self,
        cmds: &mut [Command],
        valid: &[usize],
        ids: &[MessageId],
        inserted: &HashSet<i64>,
        admitted: &[usize],
    ) -> Result<(), tokio_postgres::Error> {
        let (mut cap, mut scope, mut at, mut message) = (vec![], vec![], vec![], vec![]);
        for (&i, id) in valid.iter().zip(ids) {
            let Op::Accept(m) = &cmds[i].op else { continue };
            if !admitted.contains(&i) || !inserted.contains(&id.as_i64()) {
                continue;
            }
            for (k, s) in counters(&m.caps) {
                cap.push(k);
                scope.push(s);
                at.push(m.now_ms);
                message.push(id.as_i64());
            }
        }
        if cap.is_empty() {
            return Ok(());
        }
        self.exec(
            "INSERT INTO cap_hit (cap, scope, at, message_id)
             SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])",
            &[&cap, &scope, &at, &message],
        )
        .await?;
        Ok(())
    }
}
