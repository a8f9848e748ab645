//! Send windows ("quiet hours" outside them): when may a message of a class be sent to a
//! destination, given the local time there?
//!
//! Owns the `allow` rule syntax ([`AllowRule`]), which windows apply to a message
//! ([`Window::applies`]) and the decision ([`decide`]): send now, hold until an instant, or
//! never. Must never read a clock (time is a parameter), look up a number's zones (the caller
//! passes them, see [`super::zones`]) or do I/O.
//!
//! Rules, as decided for issue #19:
//! - An instant is allowed when **any** applicable window allows it. A window allows it when
//!   the local time in **every** one of its zones is inside one of its rules: its own
//!   `timezone` when it names one, otherwise every zone of the destination's country (the
//!   intersection, so nobody in a multi-zone country is messaged at night). When the
//!   destination's zones are unknown (a non-geographic number) such a window is evaluated in
//!   UTC.
//! - A rule is a half-open local range `[start, end)` on the days it names; `24:00` is the end
//!   of the day. Overnight ranges (`22:00-06:00`) are refused: write two rules.
//! - DST: a start or end that does not exist locally (the spring-forward gap) is the instant
//!   the clock jumps; one that exists twice (the repeated hour in autumn) is taken so the window
//!   only shrinks: a start at its later occurrence, an end at its earlier one. Nobody is ever
//!   messaged at a local reading outside the window.
//! - The search looks a year ahead; a window set with no instant in it ([`Decision::Never`])
//!   is a configuration whose intersection is empty, e.g. one hour on Saturdays for the US.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::Class;

/// What the windows say about sending a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No window applies, or one is open now.
    SendNow,
    /// Hold the message until this instant, when a window opens.
    HoldUntil(DateTime<Utc>),
    /// No window opens within a year: the applicable windows never overlap.
    Never,
}

/// One `[[window]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    /// The messages it holds.
    pub class: Class,
    /// E.164 prefixes (with `+`) of the destinations it applies to; empty: all.
    pub prefixes: Vec<String>,
    pub allow: Vec<AllowRule>,
    /// The zone its rules are in; `None`: every zone of the destination's country.
    pub timezone: Option<Tz>,
}

/// One `allow` entry: days of the week and a local time range on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowRule {
    /// Bit `n` set: allowed on the weekday `n` days after Monday.
    days: u8,
    /// Minutes after local midnight, `start < end <= 1440`.
    start: u16,
    end: u16,
}

/// Why an `allow` rule cannot be read. The messages quote the rule's part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("{0:?} is not like \"mon-fri 09:00-20:00\" (days, then a time range)")]
    Shape(String),
    #[error(
        "{0:?} is not a day: use mon, tue, wed, thu, fri, sat, sun, ranges like mon-fri, lists like mon,wed, or daily"
    )]
    Day(String),
    #[error("{0:?} is not a time range like 09:00-20:00")]
    Range(String),
    #[error("{0:?} is not a time from 00:00 to 24:00")]
    Time(String),
    #[error("{0:?} is empty: the start must be before the end")]
    Empty(String),
    #[error(
        "{0:?} goes past midnight: write two rules, e.g. \"mon 22:00-24:00\" and \"tue 00:00-06:00\""
    )]
    Overnight(String),
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_MINUTES: u16 = 24 * 60;
/// How far [`decide`] looks for an opening, in weeks.
const SEARCH_WEEKS: i64 = 53;

impl AllowRule {
    /// Reads `"mon-fri 09:00-20:00"`, `"sat 10:00-18:00"`, `"mon,wed 09:00-17:00"`,
    /// `"fri-mon 10:00-12:00"` (a day range may wrap the week), `"daily 08:00-21:00"`.
    pub fn parse(text: &str) -> Result<AllowRule, RuleError> {
        let mut parts = text.split_whitespace();
        let (Some(days), Some(range), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(RuleError::Shape(text.to_owned()));
        };
        let days = parse_days(days)?;
        let (start, end) = parse_range(range)?;
        Ok(AllowRule { days, start, end })
    }

    fn on(&self, day: chrono::Weekday) -> bool {
        self.days & (1 << day.num_days_from_monday()) != 0
    }
}

fn parse_days(text: &str) -> Result<u8, RuleError> {
    if text.eq_ignore_ascii_case("daily") {
        return Ok(0x7f);
    }
    let day = |s: &str| {
        DAY_NAMES
            .iter()
            .position(|d| d.eq_ignore_ascii_case(s))
            .ok_or_else(|| RuleError::Day(s.to_owned()))
    };
    let mut mask = 0u8;
    for item in text.split(',') {
        let (first, last) = match item.split_once('-') {
            Some((a, b)) => (day(a)?, day(b)?),
            None => (day(item)?, day(item)?),
        };
        let span = (last + 7 - first) % 7;
        for i in 0..=span {
            mask |= 1 << ((first + i) % 7);
        }
    }
    Ok(mask)
}

fn parse_range(text: &str) -> Result<(u16, u16), RuleError> {
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| RuleError::Range(text.to_owned()))?;
    let (start, end) = (parse_time(a)?, parse_time(b)?);
    if start == end {
        return Err(RuleError::Empty(text.to_owned()));
    }
    if start > end || start == DAY_MINUTES {
        return Err(RuleError::Overnight(text.to_owned()));
    }
    Ok((start, end))
}

/// `HH:MM`, from `00:00` to `24:00`.
fn parse_time(text: &str) -> Result<u16, RuleError> {
    let bad = || RuleError::Time(text.to_owned());
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match h * 60 + m {
        t if m < 60 && t <= DAY_MINUTES => Ok(t),
        _ => Err(bad()),
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = (0..7)
            .filter(|i| self.days & (1 << i) != 0)
            .map(|i| DAY_NAMES[i])
            .collect();
        let hm = |t: u16| format!("{:02}:{:02}", t / 60, t % 60);
        write!(f, "{} {}-{}", days.join(","), hm(self.start), hm(self.end))
    }
}

impl Window {
    /// Whether the window holds messages of this class to this destination (E.164, the `+`
    /// optional).
    pub fn applies(&self, class: Class, dest: &str) -> bool {
        let digits = dest.strip_prefix('+').unwrap_or(dest);
        self.class == class
            && (self.prefixes.is_empty()
                || self
                    .prefixes
                    .iter()
                    .any(|p| digits.starts_with(p.strip_prefix('+').unwrap_or(p))))
    }
}

/// Whether a message of `class` to `dest` may be sent at `now`, and if not, when.
/// `dest_zones` are the zones of the destination's country ([`super::zones::zones_of_number`]).
pub fn decide(
    windows: &[Window],
    dest: &str,
    dest_zones: &[Tz],
    class: Class,
    now: DateTime<Utc>,
) -> Decision {
    let applicable: Vec<&Window> = windows.iter().filter(|w| w.applies(class, dest)).collect();
    if applicable.is_empty() {
        return Decision::SendNow;
    }
    for week in 0..SEARCH_WEEKS {
        let from = now + Duration::weeks(week);
        let to = from + Duration::days(8);
        let open = merge(
            applicable
                .iter()
                .flat_map(|w| window_open(w, dest_zones, from, to))
                .collect(),
        );
        if let Some(&(start, _)) = open.iter().find(|(_, end)| *end > now) {
            return if start <= now {
                Decision::SendNow
            } else {
                Decision::HoldUntil(start)
            };
        }
    }
    Decision::Never
}

/// A half-open UTC interval `[start, end)`.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// When the window is open between `from` and `to` (and around them): the intersection over
/// its zones of when its rules allow the local time.
fn window_open(w: &Window, dest_zones: &[Tz], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Span> {
    let zones: &[Tz] = match (&w.timezone, dest_zones) {
        (Some(tz), _) => std::slice::from_ref(tz),
        (None, []) => &[Tz::UTC],
        (None, zones) => zones,
    };
    zones
        .iter()
        .map(|z| zone_open(&w.allow, *z, from, to))
        .reduce(|a, b| intersect(&a, &b))
        .unwrap_or_default()
}

/// The rules' spans in one zone, for every local date that can overlap `[from, to]`.
fn zone_open(rules: &[AllowRule], tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Span> {
    let first = from.with_timezone(&tz).date_naive() - Duration::days(1);
    let last = to.with_timezone(&tz).date_naive() + Duration::days(1);
    let mut spans = Vec::new();
    for date in first.iter_days().take_while(|d| *d <= last) {
        for rule in rules.iter().filter(|r| r.on(date.weekday())) {
            let start = instant(tz, date, rule.start, Edge::Start);
            let end = instant(tz, date, rule.end, Edge::End);
            if let (Some(s), Some(e)) = (start, end)
                && s < e
            {
                spans.push((s, e));
            }
        }
    }
    merge(spans)
}

#[derive(Clone, Copy)]
enum Edge {
    Start,
    End,
}

/// The UTC instant of a local wall-clock reading, `minutes` after midnight of `date`
/// (1440: the next midnight), resolved as the module documentation says.
fn instant(tz: Tz, date: NaiveDate, minutes: u16, edge: Edge) -> Option<DateTime<Utc>> {
    let local = date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minutes));
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(match edge {
            Edge::Start => a.max(b).with_timezone(&Utc),
            Edge::End => a.min(b).with_timezone(&Utc),
        }),
        LocalResult::None => gap_end(tz, local),
    }
}

/// The instant a local reading inside a spring-forward gap is skipped to: the first minute
/// after it that exists (gaps are whole minutes; the longest, Samoa's in 2011, is a day).
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    (1..=2 * i64::from(DAY_MINUTES))
        .map(|m| local + Duration::minutes(m))
        .find_map(|l| tz.from_local_datetime(&l).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// Sorts spans and joins the overlapping or touching ones.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_unstable();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The intersection of two sorted, merged span lists.
fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let s = a[i].0.max(b[j].0);
        let e = a[i].1.min(b[j].1);
        if s < e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}
