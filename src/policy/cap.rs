//! Frequency caps (fatigue protection): at most `max` accepted messages of a class per
//! recipient in any `per`, optionally counted per value of a tag.
//!
//! Owns the decision ([`allowed_at`]) on a list of earlier accept times and what a cap's
//! counter is ([`Cap::scope`]). Must never read a clock or the store: the caller passes the
//! accept times of the cap's scope and `now`.
//!
//! Decisions for issue #19: an accept at `t` counts until `t + per` (exclusive), so the
//! window is `(now - per, now]`; accept times after `now` (clock skew between instances) count
//! too. With `tag`, the counter is per recipient **and** tag value ("one message per campaign
//! per recipient"), and a message without that tag is not subject to the cap.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Class;

/// One `[[cap]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    pub class: Class,
    /// At least 1.
    pub max: u32,
    pub per: Duration,
    /// Count per value of this tag (and recipient) instead of per recipient.
    pub tag: Option<String>,
}

impl Cap {
    /// The counter a message of `class` to `recipient` with `tags` falls in, or `None` when
    /// the cap does not apply to it. Accept times are kept and looked up per scope.
    pub fn scope(
        &self,
        class: Class,
        recipient: &str,
        tags: &BTreeMap<String, String>,
    ) -> Option<String> {
        if class != self.class {
            return None;
        }
        match &self.tag {
            None => Some(recipient.to_owned()),
            Some(key) => tags.get(key).map(|v| format!("{recipient}\u{1f}{key}={v}")),
        }
    }

    fn per_ms(&self) -> i64 {
        i64::try_from(self.per.as_millis()).unwrap_or(i64::MAX)
    }
}

/// `Ok` when one more accept at `now_ms` keeps the cap; otherwise `Err` with the first
/// millisecond at which it would (`i64::MAX` for a cap with `max = 0`, which never allows).
/// `previous_ms` are the scope's earlier accept times in milliseconds, in any order.
pub fn allowed_at(cap: &Cap, previous_ms: &[i64], now_ms: i64) -> Result<(), i64> {
    let floor = now_ms.saturating_sub(cap.per_ms());
    let mut inside: Vec<i64> = previous_ms.iter().copied().filter(|&t| t > floor).collect();
    let max = cap.max as usize;
    if inside.len() < max {
        return Ok(());
    }
    if max == 0 {
        return Err(i64::MAX);
    }
    // Once the oldest `len - max + 1` have left the window, `max - 1` remain.
    inside.sort_unstable();
    let leaving = inside[inside.len() - max];
    Err(leaving.saturating_add(cap.per_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn cap(max: u32, per_days: u64) -> Cap {
        Cap {
            class: Class::Marketing,
            max,
            per: Duration::from_secs(per_days * 86_400),
            tag: None,
        }
    }

    #[test]
    fn under_the_cap_is_allowed() {
        let c = cap(3, 7);
        assert_eq!(allowed_at(&c, &[], 0), Ok(()));
        assert_eq!(allowed_at(&c, &[10 * DAY, 11 * DAY], 12 * DAY), Ok(()));
    }

    #[test]
    fn a_full_cap_frees_up_when_the_oldest_leaves_the_window() {
        let c = cap(3, 7);
        let sent = [DAY, 2 * DAY, 3 * DAY];
        assert_eq!(allowed_at(&c, &sent, 4 * DAY), Err(8 * DAY));
        assert_eq!(allowed_at(&c, &sent, 8 * DAY - 1), Err(8 * DAY));
        assert_eq!(allowed_at(&c, &sent, 8 * DAY), Ok(()));
        // Order does not matter.
        assert_eq!(
            allowed_at(&c, &[3 * DAY, DAY, 2 * DAY], 4 * DAY),
            Err(8 * DAY)
        );
    }

    #[test]
    fn over_the_cap_waits_for_enough_to_leave() {
        // 5 accepts in the window (the cap was lowered): 3 must leave for 2 to remain.
        let c = cap(3, 7);
        let sent = [DAY, 2 * DAY, 3 * DAY, 4 * DAY, 5 * DAY];
        assert_eq!(allowed_at(&c, &sent, 6 * DAY), Err(10 * DAY));
        assert_eq!(allowed_at(&c, &sent, 10 * DAY), Ok(()));
    }

    #[test]
    fn old_accepts_do_not_count_and_max_zero_never_allows() {
        let c = cap(1, 1);
        assert_eq!(allowed_at(&c, &[0], DAY), Ok(()));
        assert_eq!(allowed_at(&c, &[1], DAY), Err(DAY + 1));
        assert_eq!(allowed_at(&cap(0, 1), &[], 0), Err(i64::MAX));
    }

    #[test]
    fn scopes_per_recipient_or_per_tag_value() {
        let mut c = cap(1, 7);
        let tags: BTreeMap<String, String> = [("campaign".into(), "xmas".into())].into();
        assert_eq!(
            c.scope(Class::Marketing, "+4670", &tags).as_deref(),
            Some("+4670")
        );
        assert_eq!(c.scope(Class::Transactional, "+4670", &tags), None);
        c.tag = Some("campaign".into());
        let a = c.scope(Class::Marketing, "+4670", &tags);
        assert_eq!(a.as_deref(), Some("+4670\u{1f}campaign=xmas"));
        assert_eq!(c.scope(Class::Marketing, "+4670", &BTreeMap::new()), None);
    }
}
