//! Frequency caps in the accept (see `store::caps`): the writer thread is the store's only
//! writer, so reading a counter's accept times and adding the new one inside the accept's
//! transaction is atomic with the accept. Must never write before the check passed: a refusal
//! is a domain error, and the batch's transaction goes on.

use super::{JobError, Writer};
use crate::store::caps;
use crate::store::{MessageId, NewMessage, StoreError};
use rusqlite::params;

impl Writer<'_> {
    /// Refuses with [`StoreError::Capped`] when a cap of `m` is full at `m.now_ms`.
    pub(super) fn check_caps(&mut self, m: &NewMessage) -> Result<(), JobError> {
        let floor = caps::floor(&m.caps, m.now_ms);
        let mut st = self
            .conn
            .prepare_cached("SELECT at FROM cap_hit WHERE cap = ?1 AND scope = ?2 AND at > ?3")?;
        let mut times = Vec::new();
        for (key, scope) in caps::counters(&m.caps) {
            let at: Vec<i64> = st
                .query_map(params![key, scope, floor], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            times.push(((key, scope), at));
        }
        let of = |c: &crate::store::CapLimit| {
            times
                .iter()
                .find(|(k, _)| *k == (c.key.as_str(), c.scope.as_str()))
                .map(|(_, t)| t.clone())
                .unwrap_or_default()
        };
        caps::decide(&m.caps, of, m.now_ms).map_err(|r| JobError::Domain(StoreError::Capped(r)))
    }

    /// Counts the accepted message `id` once in each of its caps' counters.
    pub(super) fn count_caps(&mut self, m: &NewMessage, id: MessageId) -> Result<(), JobError> {
        if m.caps.is_empty() {
            return Ok(()); // the hot path: no statement lookup for an uncapped message
        }
        let mut st = self.conn.prepare_cached(
            "INSERT INTO cap_hit (cap, scope, at, message_id) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (key, scope) in caps::counters(&m.caps) {
            st.execute(params![key, scope, m.now_ms, id.as_i64()])?;
        }
        Ok(())
    }

    /// Deletes up to `batch` counts older than `cut` (no cap reads them any more).
    pub(super) fn prune_cap_hits(&mut self, cut: i64, batch: i64) -> Result<usize, JobError> {
        Ok(self
            .conn
            .prepare_cached(
                "DELETE FROM cap_hit WHERE id IN
                    (SELECT id FROM cap_hit WHERE at < ?1 ORDER BY at LIMIT ?2)",
            )?
            .execute(params![cut, batch])?)
    }
}
