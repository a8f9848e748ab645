//! Which SMSC leases an instance should take or give back: a pure decision over a snapshot of
//! the lease table and the live instances, so it is tested without a database.
//!
//! The rule: every live instance holds at most its fair share, `ceil(SMSCs / live instances)`.
//! An instance under its share takes leases nobody holds (free, expired, or released by a
//! stopping instance) in name order; an instance over it gives back the excess, so a joining
//! instance gets work at the next round. Must never take a lease another live instance holds.

use std::collections::BTreeSet;

/// One row of the lease table as this instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub smsc: String,
    /// The holder, when the lease is held and not expired.
    pub live_owner: Option<String>,
}

/// What to do this round.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Leases to try to take (each may still be lost to another instance's race).
    pub take: Vec<String>,
    /// Leases to give back (this instance holds more than its share).
    pub give_back: Vec<String>,
}

/// The decision for `me`, configured with `smscs`, given the table and how many instances are
/// live (counting `me`).
pub fn decide(me: &str, smscs: &[String], table: &[LeaseRow], live_instances: usize) -> Decision {
    let live = live_instances.max(1);
    let share = smscs.len().div_ceil(live);
    let held: BTreeSet<&str> = table
        .iter()
        .filter(|r| r.live_owner.as_deref() == Some(me))
        .map(|r| r.smsc.as_str())
        .collect();
    let owner_of = |s: &str| {
        table
            .iter()
            .find(|r| r.smsc == s)
            .and_then(|r| r.live_owner.as_deref())
    };
    let mut d = Decision::default();
    if held.len() > share {
        // The last ones in name order go back: deterministic, so two rounds agree.
        d.give_back = held
            .iter()
            .rev()
            .take(held.len() - share)
            .map(|s| (*s).to_owned())
            .collect();
        return d;
    }
    d.take = smscs
        .iter()
        .filter(|s| owner_of(s).is_none())
        .take(share - held.len())
        .cloned()
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(smsc: &str, owner: Option<&str>) -> LeaseRow {
        LeaseRow {
            smsc: smsc.into(),
            live_owner: owner.map(Into::into),
        }
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_lone_instance_takes_every_free_lease() {
        let smscs = names(&["a", "b", "c"]);
        let d = decide("i1", &smscs, &[row("a", None)], 1);
        assert_eq!(d.take, smscs);
        assert!(d.give_back.is_empty());
    }

    #[test]
    fn two_instances_split_and_never_take_a_held_lease() {
        let smscs = names(&["a", "b", "c", "d"]);
        let table = [row("a", Some("i1")), row("b", Some("i1"))];
        let d = decide("i2", &smscs, &table, 2);
        assert_eq!(d.take, names(&["c", "d"]));
        let d = decide("i1", &smscs, &table, 2);
        assert!(d.take.is_empty(), "i1 has its share");
    }

    #[test]
    fn an_instance_over_its_share_gives_back_the_excess_when_another_joins() {
        let smscs = names(&["a", "b", "c"]);
        let table = [
            row("a", Some("i1")),
            row("b", Some("i1")),
            row("c", Some("i1")),
        ];
        let d = decide("i1", &smscs, &table, 2);
        assert_eq!(d.give_back, names(&["c"]), "share is ceil(3/2) = 2");
        assert!(d.take.is_empty());
    }

    #[test]
    fn a_dead_instances_leases_are_taken_once_expired() {
        let smscs = names(&["a", "b"]);
        // i1 died: its leases expired, so they show no live owner; i2 is alone.
        let table = [row("a", None), row("b", Some("i2"))];
        let d = decide("i2", &smscs, &table, 1);
        assert_eq!(d.take, names(&["a"]));
    }
}
