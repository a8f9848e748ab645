//! A route's `tps` across the cluster: the parts of one route may go out through several
//! instances at once (during a failover, or when refusals spread them over SMSCs owned by
//! different instances), so each instance's own token bucket is not enough. Before sending a
//! claimed batch, an instance reserves its parts in the route's budget row for the current time
//! slot in the database; what the slot cannot grant waits for the next one.
//!
//! The slot is 100 ms; slot `n` may carry `floor((n+1)·tps/10) − floor(n·tps/10)` parts, so
//! ten consecutive slots carry exactly `tps` and any second (which overlaps at most eleven slots)
//! at most `tps + ceil(tps/10)`: the rate within a tenth. Parts go out at once when granted, so
//! a part reserved in one slot is not pushed into the next by a local bucket. Each route has a ring of ten rows (`route_budget`: route, ring, slot, used): a row
//! is reused when its slot comes round again, so nothing grows and nothing needs pruning.
//!
//! Owns the reservation statement and the slot arithmetic (pure, [`Slot`]). Must never grant
//! more than a slot's cap, and never be asked on a single node (the local bucket is exact
//! there).

use std::time::Duration;

use deadpool_postgres::Pool;

/// One reservation slot of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Slot number: milliseconds since the epoch / `len_ms`.
    pub n: i64,
    pub len_ms: i64,
    /// Parts the slot may carry in all (every instance together).
    pub cap: i64,
}

impl Slot {
    /// The slot of `now_ms` for a route of `tps`.
    pub fn at(tps: u32, now_ms: i64) -> Slot {
        const LEN_MS: i64 = 100;
        let tps = i64::from(tps.max(1));
        let n = now_ms.max(0) / LEN_MS;
        Slot {
            n,
            len_ms: LEN_MS,
            // The rate's fraction carries from slot to slot (15/s: 1, 2, 1, 2, …).
            cap: (n + 1) * tps / 10 - n * tps / 10,
        }
    }

    /// How long until the next slot starts.
    pub fn until_next(&self, now_ms: i64) -> Duration {
        let next = (self.n + 1) * self.len_ms;
        Duration::from_millis(u64::try_from(next - now_ms).unwrap_or(0).max(1))
    }
}

/// The budget rows of every route, through the lease task's pool.
pub struct RouteBudget {
    pool: Pool,
}

impl RouteBudget {
    pub fn new(pool: Pool) -> RouteBudget {
        RouteBudget { pool }
    }

    /// Reserves up to `want` parts of `route` in `slot`; returns how many were granted.
    pub async fn reserve(
        &self,
        route: &str,
        slot: Slot,
        want: usize,
    ) -> Result<usize, super::sql::Error> {
        let client = self.pool.get().await.map_err(super::sql::Error::pool)?;
        let want = i64::try_from(want).unwrap_or(i64::MAX).min(slot.cap);
        let ring = slot.n.rem_euclid(10) as i32;
        // SET expressions see the row as it was, so `granted` is what this call added.
        let row = client
            .query_one(
                "INSERT INTO route_budget AS b (route, ring, slot, used, granted)
                 VALUES ($1, $2, $3, LEAST($4::bigint, $5::bigint), LEAST($4::bigint, $5::bigint))
                 ON CONFLICT (route, ring) DO UPDATE SET
                     granted = CASE WHEN b.slot = $3 THEN LEAST(b.used + $4::bigint, $5::bigint) - b.used
                                    ELSE LEAST($4::bigint, $5::bigint) END,
                     used = CASE WHEN b.slot = $3 THEN LEAST(b.used + $4::bigint, $5::bigint)
                                 ELSE LEAST($4::bigint, $5::bigint) END,
                     slot = $3
                 RETURNING granted",
                &[&route, &ring, &slot.n, &want, &slot.cap],
            )
            .await?;
        let granted: i64 = row.get(0);
        Ok(usize::try_from(granted).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Caps of the ten slots of the second starting at `second`.
    fn second(tps: u32, second: i64) -> Vec<i64> {
        (0..10)
            .map(|i| Slot::at(tps, second * 1000 + i * 100).cap)
            .collect()
    }

    #[test]
    fn ten_slots_carry_exactly_the_rate_and_one_slot_at_most_a_tenth_more() {
        let s = Slot::at(150, 1_000_050);
        assert_eq!((s.n, s.len_ms, s.cap), (10_000, 100, 15));
        assert_eq!(s.until_next(1_000_050), Duration::from_millis(50));
        for tps in [1, 4, 15, 40, 150, 999] {
            for sec in [0, 1, 7, 1_796_591_248] {
                let caps = second(tps, sec);
                assert_eq!(
                    caps.iter().sum::<i64>(),
                    i64::from(tps),
                    "tps {tps}: {caps:?}"
                );
                let most = caps.iter().max().copied().unwrap_or(0);
                assert!(most <= (i64::from(tps) + 9) / 10, "tps {tps}: {caps:?}");
            }
        }
        assert_eq!(second(15, 0), vec![1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
    }
}
