//! Delivery per campaign, route or SMSC (`smppd reports --by`): what a row of that report
//! counts, and the tally both backends' readers stream the rows of the range into
//! ([`DeliveryTally`]), so both give the same [`DeliveryRow`]s.
//!
//! A message counts once, in the group of its value:
//! - `tag:NAME`: the value of its tag `NAME`; messages without it are the group `None`,
//!   printed `(none)`.
//! - `route`: its route.
//! - `smsc`: the SMSC of its last part sent, i.e. `part.smsc` (the SMSC of the part's last
//!   attempt, acknowledged or refused) of its highest-numbered part that has one; the parts of a
//!   message follow the first to one SMSC, so that is the SMSC that carried it. A message no
//!   part of which was handed to an SMSC yet is `None`.
//!
//! Its outcome comes from the stored message row only (never the parts), as the writer settles
//! it (`sqlite/schema.rs`): delivered, undeliverable, expired, no_receipt, rejected, failed,
//! `unconfirmed` (final without a known delivery: a final ACCEPTD receipt, state `accepted`,
//! or sent without a receipt requested, state `submitted` with `done_at` set), and `pending`
//! for everything else (a row left `queued`, or `submitted` waiting for receipts). The delay of
//! a delivered message is `done_at - accepted_at`; median and p90 are nearest-rank percentiles
//! (the rank PostgreSQL's `percentile_disc` picks), the same on both backends.
//!
//! Owns the grouping rules and the arithmetic; must never do I/O or read a clock.

use super::MessageState;
use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::borrow::Cow;
use std::collections::HashMap;

/// What `reports --by` groups messages by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportBy {
    /// The value of one tag (`tag:NAME`).
    Tag(String),
    /// The route.
    Route,
    /// The SMSC of the message's last part sent (see the module docs).
    Smsc,
}

/// A `--by` that is none of the choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--by {0:?}: expected tag:NAME (e.g. tag:campaign), route or smsc")]
pub struct BadReportBy(pub String);

impl std::str::FromStr for ReportBy {
    type Err = BadReportBy;

    fn from_str(s: &str) -> Result<ReportBy, BadReportBy> {
        match s {
            "route" => Ok(ReportBy::Route),
            "smsc" => Ok(ReportBy::Smsc),
            _ => match s.strip_prefix("tag:") {
                Some(name) if !name.is_empty() => Ok(ReportBy::Tag(name.to_owned())),
                _ => Err(BadReportBy(s.to_owned())),
            },
        }
    }
}

impl std::fmt::Display for ReportBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportBy::Tag(name) => write!(f, "tag:{name}"),
            ReportBy::Route => f.write_str("route"),
            ReportBy::Smsc => f.write_str("smsc"),
        }
    }
}

/// One group of the report. The outcome counts add up to `accepted`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRow {
    /// The group's value; `None` for messages without one (printed `(none)`).
    pub value: Option<String>,
    /// Messages accepted (in the time range).
    pub accepted: u64,
    /// Delivered (every part delivered).
    pub delivered: u64,
    /// Undeliverable.
    pub undeliverable: u64,
    /// Expired (receipt EXPIRED, or validity passed before sending).
    pub expired: u64,
    /// No receipt within the configured wait.
    pub no_receipt: u64,
    /// Rejected by the network (receipt REJECTD).
    pub rejected: u64,
    /// Refused permanently by an SMSC.
    pub failed: u64,
    /// Final without a known delivery: final ACCEPTD receipt, or sent without a receipt
    /// requested.
    pub unconfirmed: u64,
    /// Not final yet (queued, in flight, or waiting for a receipt).
    pub pending: u64,
    /// Delivered per 1,000 accepted, one decimal.
    pub delivered_per_1000: f64,
    /// Median time from accept to delivered (ms); `None` when none was delivered.
    pub median_ms: Option<i64>,
    /// 90th percentile of that time (ms).
    pub p90_ms: Option<i64>,
}

/// Delivered per 1,000 accepted, rounded to one decimal (0 when nothing was accepted).
pub fn per_1000(delivered: u64, accepted: u64) -> f64 {
    if accepted == 0 {
        return 0.0;
    }
    (delivered as f64 * 10_000.0 / accepted as f64).round() / 10.0
}

/// Most accepted first; ties by value, `(none)` last.
pub fn sort_rows(rows: &mut [DeliveryRow]) {
    rows.sort_by(|a, b| {
        b.accepted
            .cmp(&a.accepted)
            .then_with(|| match (&a.value, &b.value) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
    });
}

/// Counts of one group, in the order of [`DeliveryRow`]'s outcome fields.
#[derive(Debug, Default)]
struct Group {
    accepted: u64,
    /// delivered, undeliverable, expired, no_receipt, rejected, failed, unconfirmed.
    finals: [u64; 7],
    /// Accept-to-delivered times (ms).
    delays: Vec<i64>,
}

/// Which of [`Group::finals`] a stored message row counts in; `None` for pending.
fn outcome(state: i64, done_at: Option<i64>) -> Option<usize> {
    Some(match MessageState::from_code(state)? {
        MessageState::Delivered => 0,
        MessageState::Undeliverable => 1,
        MessageState::Expired => 2,
        MessageState::NoReceipt => 3,
        MessageState::Rejected => 4,
        MessageState::Failed => 5,
        MessageState::Accepted => 6,
        MessageState::Submitted if done_at.is_some() => 6,
        MessageState::Submitted | MessageState::Queued => return None,
    })
}

/// The nearest-rank percentile `p/100` of `v` (reordered in place; no full sort).
fn percentile(v: &mut [i64], p: usize) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    // ceil(p * n / 100) - 1, the rank PostgreSQL's percentile_disc picks.
    let rank = (p * v.len()).div_ceil(100).max(1) - 1;
    Some(*v.select_nth_unstable(rank).1)
}

impl Group {
    fn row(mut self, value: Option<String>) -> DeliveryRow {
        let [
            delivered,
            undeliverable,
            expired,
            no_receipt,
            rejected,
            failed,
            unconfirmed,
        ] = self.finals;
        let finals: u64 = self.finals.iter().sum();
        DeliveryRow {
            value,
            accepted: self.accepted,
            delivered,
            undeliverable,
            expired,
            no_receipt,
            rejected,
            failed,
            unconfirmed,
            pending: self.accepted.saturating_sub(finals),
            delivered_per_1000: per_1000(delivered, self.accepted),
            median_ms: percentile(&mut self.delays, 50),
            p90_ms: percentile(&mut self.delays, 90),
        }
    }
}

/// Message rows tallied per value (each backend's reader streams every row of the range into
/// it).
#[derive(Debug, Default)]
pub struct DeliveryTally {
    groups: HashMap<String, Group>,
    none: Group,
}

impl DeliveryTally {
    /// Counts one row whose column for `by` holds `text`: the value itself for a route or an
    /// SMSC, the named tag found in the tags' JSON text for `tag:NAME`.
    pub fn add_by(
        &mut self,
        by: &ReportBy,
        text: Option<&str>,
        state: i64,
        accepted_at: i64,
        done_at: Option<i64>,
    ) {
        match by {
            ReportBy::Tag(name) => {
                let value = text.and_then(|t| tag_value(t, name));
                self.add(value.as_deref(), state, accepted_at, done_at);
            }
            _ => self.add(text, state, accepted_at, done_at),
        }
    }

    /// Counts one message: its group's value, stored state code, accept and final times.
    pub fn add(&mut self, value: Option<&str>, state: i64, accepted_at: i64, done_at: Option<i64>) {
        let group = match value {
            None => &mut self.none,
            // Look up by `&str` first: one allocation per group, not per row.
            Some(v) => match self.groups.get_mut(v) {
                Some(g) => g,
                None => self.groups.entry(v.to_owned()).or_default(),
            },
        };
        group.accepted += 1;
        if let Some(i) = outcome(state, done_at) {
            group.finals[i] += 1;
            if let (0, Some(done)) = (i, done_at) {
                group.delays.push(done.saturating_sub(accepted_at).max(0));
            }
        }
    }

    /// The rows, sorted (see [`sort_rows`]); `(none)` only when some message had no value.
    pub fn rows(self) -> Vec<DeliveryRow> {
        let none = (self.none.accepted > 0).then(|| self.none.row(None));
        let mut rows: Vec<DeliveryRow> = self
            .groups
            .into_iter()
            .map(|(v, g)| g.row(Some(v)))
            .chain(none)
            .collect();
        sort_rows(&mut rows);
        rows
    }
}

/// The value of tag `name` in a message's stored tags (a JSON object of strings), without
/// building the object: the other entries are skipped as they are read. `None` when the tag is
/// absent, not a string, or the text is not such an object.
pub fn tag_value<'t>(tags: &'t str, name: &str) -> Option<Cow<'t, str>> {
    let mut de = serde_json::Deserializer::from_str(tags);
    FindTag(name).deserialize(&mut de).ok().flatten()
}

/// Seed and visitor of [`tag_value`].
struct FindTag<'n>(&'n str);

impl<'de> DeserializeSeed<'de> for FindTag<'_> {
    type Value = Option<Cow<'de, str>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FindTag<'_> {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object of tags")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            if found.is_none() && key == self.0 {
                found = Some(map.next_value::<Text<'de>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A JSON string, borrowed from the input when it has no escapes. (serde's own `Cow<str>`
/// always copies.)
struct Text<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_parses_and_names_the_choices() {
        assert_eq!("route".parse(), Ok(ReportBy::Route));
        assert_eq!("smsc".parse(), Ok(ReportBy::Smsc));
        assert_eq!("tag:campaign".parse(), Ok(ReportBy::Tag("campaign".into())));
        let err = "tag:".parse::<ReportBy>().unwrap_err().to_string();
        assert!(err.contains("tag:NAME") && err.contains("route") && err.contains("smsc"));
        assert!("campaign".parse::<ReportBy>().is_err());
    }

    #[test]
    fn tags_are_found_without_a_tree() {
        let t = r#"{"a":"1","campaign":"spring","z":"x"}"#;
        assert_eq!(tag_value(t, "campaign").as_deref(), Some("spring"));
        assert!(matches!(tag_value(t, "campaign"), Some(Cow::Borrowed(_))));
        assert_eq!(tag_value(t, "b"), None);
        assert_eq!(tag_value(r#"{"k":"a\"b"}"#, "k").as_deref(), Some("a\"b"));
        assert_eq!(tag_value(r#"{"k\u0041":"v"}"#, "kA").as_deref(), Some("v"));
        assert_eq!(tag_value(r#"{"k":1}"#, "k"), None);
        assert_eq!(tag_value("not json", "k"), None);
        assert_eq!(tag_value("", "k"), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(percentile(&mut v, 50), Some(5));
        assert_eq!(percentile(&mut v, 90), Some(9));
        assert_eq!(percentile(&mut [7], 90), Some(7));
        assert_eq!(percentile(&mut [], 50), None);
        assert_eq!(percentile(&mut [3, 1, 2], 50), Some(2));
    }

    #[test]
    fn tally_groups_counts_and_sorts() {
        let d = MessageState::Delivered.code();
        let mut t = DeliveryTally::default();
        t.add(Some("a"), d, 0, Some(1_000));
        t.add(Some("a"), d, 0, Some(3_000));
        t.add(Some("a"), MessageState::Queued.code(), 0, None);
        t.add(Some("a"), MessageState::Submitted.code(), 0, Some(5));
        t.add(None, MessageState::Expired.code(), 0, Some(9));
        t.add(Some("b"), MessageState::Submitted.code(), 0, None);
        let rows = t.rows();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].value.as_deref(), Some("a"));
        assert_eq!(
            (
                rows[0].accepted,
                rows[0].delivered,
                rows[0].unconfirmed,
                rows[0].pending
            ),
            (4, 2, 1, 1)
        );
        assert_eq!(rows[0].delivered_per_1000, 500.0);
        assert_eq!(
            (rows[0].median_ms, rows[0].p90_ms),
            (Some(1_000), Some(3_000))
        );
        assert_eq!((rows[1].value.as_deref(), rows[1].pending), (Some("b"), 1));
        assert_eq!((rows[2].value.as_deref(), rows[2].expired), (None, 1));
        assert_eq!(rows[2].median_ms, None);
        assert_eq!(per_1000(2, 3), 666.7);
    }
}
