//! Frequency caps at accept, as both backends apply them: which counters a message adds to and
//! whether its caps allow it, given the accept times already counted. The writers read those
//! times and insert the new ones inside the accept's own transaction (SQLite: its one writer
//! thread; PostgreSQL: under a transaction-level advisory lock per counter), so the check and
//! the count are one atomic step with the accept.
//!
//! Owns the decision over several caps (the one that frees up last refuses). Must never read a
//! clock or the database: the writers pass `now` and the times.

use std::time::Duration;

use super::{CapLimit, CapRefusal};
use crate::fnv::Fnv1a;
use crate::policy::cap::{Cap, allowed_at};

/// `Ok` when every cap allows one more accept at `now_ms`; else the refusal of the cap that
/// frees up last. `times(cap)` gives the accept times counted under the cap's (key, scope).
pub(crate) fn decide(
    caps: &[CapLimit],
    mut times: impl FnMut(&CapLimit) -> Vec<i64>,
    now_ms: i64,
) -> Result<(), CapRefusal> {
    let mut refusal: Option<CapRefusal> = None;
    for c in caps {
        let cap = Cap {
            class: crate::store::MessageClass::Marketing,
            max: c.max,
            per: Duration::from_millis(u64::try_from(c.per_ms).unwrap_or(0)),
            tag: None,
        };
        if let Err(at) = allowed_at(&cap, &times(c), now_ms)
            && refusal.as_ref().is_none_or(|r| at > r.allowed_at_ms)
        {
            refusal = Some(CapRefusal {
                label: c.label.clone(),
                allowed_at_ms: at,
            });
        }
    }
    refusal.map_or(Ok(()), Err)
}

/// The distinct counters (key, scope) of a message's caps: one accept adds one count to each,
/// however many caps read it.
pub(crate) fn counters(caps: &[CapLimit]) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(caps.len());
    for c in caps {
        let k = (c.key.as_str(), c.scope.as_str());
        if !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// The earliest accept time any of the caps still counts at `now_ms` (exclusive floor of the
/// longest window), for reading every counter's times in one range.
pub(crate) fn floor(caps: &[CapLimit], now_ms: i64) -> i64 {
    let longest = caps.iter().map(|c| c.per_ms).max().unwrap_or(0);
    now_ms.saturating_sub(longest)
}

/// The PostgreSQL advisory lock key of one counter. FNV-1a, so every instance and build
/// computes the same key; the prefix keeps it apart from the receipt locks.
pub(crate) fn lock_key(key: &str, scope: &str) -> i64 {
    Fnv1a::new()
        .field(b"smppd cap")
        .field(key.as_bytes())
        .field(scope.as_bytes())
        .finish() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(max: u32, per_ms: i64, label: &str) -> CapLimit {
        CapLimit {
            key: "marketing".into(),
            scope: "+4670".into(),
            max,
            per_ms,
            label: label.into(),
        }
    }

    #[test]
    fn the_cap_that_frees_last_refuses() {
        let caps = [cap(1, 100, "daily"), cap(2, 1000, "weekly")];
        assert_eq!(decide(&caps, |_| vec![], 50), Ok(()));
        let r = decide(&caps, |_| vec![10, 20], 50).unwrap_err();
        assert_eq!(r.label, "weekly");
        assert_eq!(r.allowed_at_ms, 1010);
        assert_eq!(counters(&caps), [("marketing", "+4670")]);
        assert_eq!(floor(&caps, 5000), 4000);
    }
}
