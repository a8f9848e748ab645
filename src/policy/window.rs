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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Stockholm;

    const SE: &str = "+46701234567";
    const US: &str = "+12125550123";
    const RU: &str = "+74951234567";

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window(allow: &[&str], timezone: Option<Tz>) -> Window {
        Window {
            name: "w".into(),
            class: Class::Marketing,
            prefixes: Vec::new(),
            allow: allow.iter().map(|r| AllowRule::parse(r).unwrap()).collect(),
            timezone,
        }
    }

    fn at(windows: &[Window], dest: &str, now: &str) -> Decision {
        let zones = crate::policy::zones::zones_of_number(dest);
        decide(windows, dest, zones, Class::Marketing, utc(now))
    }

    fn hold(s: &str) -> Decision {
        Decision::HoldUntil(utc(s))
    }

    #[test]
    fn rules_parse() {
        let r = AllowRule::parse("mon-fri 09:00-20:00").unwrap();
        assert_eq!(r.to_string(), "mon,tue,wed,thu,fri 09:00-20:00");
        assert_eq!(
            AllowRule::parse("Sat 10:00-18:00").unwrap().to_string(),
            "sat 10:00-18:00"
        );
        assert_eq!(
            AllowRule::parse("mon,wed 09:00-17:00").unwrap().to_string(),
            "mon,wed 09:00-17:00"
        );
        assert_eq!(
            AllowRule::parse("fri-mon 10:00-12:00").unwrap().to_string(),
            "mon,fri,sat,sun 10:00-12:00"
        );
        assert_eq!(
            AllowRule::parse(" daily  08:00-24:00 ")
                .unwrap()
                .to_string(),
            "mon,tue,wed,thu,fri,sat,sun 08:00-24:00"
        );
        assert_eq!(
            AllowRule::parse("mon-wed,sat 00:00-01:30")
                .unwrap()
                .to_string(),
            "mon,tue,wed,sat 00:00-01:30"
        );
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        let err = |s: &str| AllowRule::parse(s).unwrap_err();
        assert_eq!(err("mon-fri"), RuleError::Shape("mon-fri".into()));
        assert_eq!(
            err("mon 09:00-10:00 extra"),
            RuleError::Shape("mon 09:00-10:00 extra".into())
        );
        assert_eq!(err("monday 09:00-10:00"), RuleError::Day("monday".into()));
        assert_eq!(err("mon-fr 09:00-10:00"), RuleError::Day("fr".into()));
        assert_eq!(err("mon 09:00"), RuleError::Range("09:00".into()));
        assert_eq!(err("mon 9:00-10:00"), RuleError::Time("9:00".into()));
        assert_eq!(err("mon 09:60-10:00"), RuleError::Time("09:60".into()));
        assert_eq!(err("mon 09:00-24:01"), RuleError::Time("24:01".into()));
        assert_eq!(
            err("mon 09:00-09:00"),
            RuleError::Empty("09:00-09:00".into())
        );
        assert_eq!(
            err("mon 22:00-06:00"),
            RuleError::Overnight("22:00-06:00".into())
        );
        let text = err("mon 22:00-06:00").to_string();
        assert!(
            text.contains("past midnight") && text.contains("two rules"),
            "{text}"
        );
    }

    #[test]
    fn open_now_later_today_tomorrow_and_after_the_weekend() {
        let w = [window(&["mon-fri 09:00-20:00"], None)];
        // Monday 2026-06-15, Stockholm is UTC+2.
        assert_eq!(at(&w, SE, "2026-06-15T07:00:00Z"), Decision::SendNow);
        assert_eq!(at(&w, SE, "2026-06-15T17:59:59Z"), Decision::SendNow);
        assert_eq!(
            at(&w, SE, "2026-06-15T05:00:00Z"),
            hold("2026-06-15T07:00:00Z")
        );
        assert_eq!(
            at(&w, SE, "2026-06-15T18:00:00Z"),
            hold("2026-06-16T07:00:00Z")
        );
        // Friday evening → Monday morning.
        assert_eq!(
            at(&w, SE, "2026-06-12T19:00:00Z"),
            hold("2026-06-15T07:00:00Z")
        );
        assert_eq!(
            at(&w, SE, "2026-06-13T12:00:00Z"),
            hold("2026-06-15T07:00:00Z")
        );
    }

    #[test]
    fn any_applicable_window_may_open() {
        let mut sat = window(&["sat 10:00-18:00"], None);
        sat.name = "saturday".into();
        let w = [window(&["mon-fri 09:00-20:00"], None), sat];
        assert_eq!(at(&w, SE, "2026-06-13T08:00:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, SE, "2026-06-13T16:00:00Z"),
            hold("2026-06-15T07:00:00Z")
        );
        assert_eq!(
            at(&w, SE, "2026-06-12T19:00:00Z"),
            hold("2026-06-13T08:00:00Z")
        );
    }

    #[test]
    fn windows_hold_only_their_class_and_prefixes() {
        let mut w = window(&["mon-fri 09:00-20:00"], None);
        let night = utc("2026-06-15T01:00:00Z");
        let zones = [Stockholm];
        assert_eq!(
            decide(
                std::slice::from_ref(&w),
                SE,
                &zones,
                Class::Transactional,
                night
            ),
            Decision::SendNow
        );
        w.prefixes = vec!["+47".into()];
        assert_eq!(
            decide(
                std::slice::from_ref(&w),
                SE,
                &zones,
                Class::Marketing,
                night
            ),
            Decision::SendNow
        );
        w.prefixes = vec!["+4670".into()];
        assert_eq!(
            decide(
                std::slice::from_ref(&w),
                SE,
                &zones,
                Class::Marketing,
                night
            ),
            hold("2026-06-15T07:00:00Z")
        );
        assert_eq!(
            decide(&[], SE, &zones, Class::Marketing, night),
            Decision::SendNow
        );
    }

    #[test]
    fn stockholm_spring_forward_day() {
        // 2026-03-29 (Sunday): 02:00 CET → 03:00 CEST at 01:00 UTC.
        let w = [window(&["daily 09:00-20:00"], None)];
        assert_eq!(
            at(&w, SE, "2026-03-28T19:00:00Z"),
            hold("2026-03-29T07:00:00Z")
        );
        assert_eq!(
            at(&w, SE, "2026-03-29T06:59:00Z"),
            hold("2026-03-29T07:00:00Z")
        );
        assert_eq!(at(&w, SE, "2026-03-29T17:59:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, SE, "2026-03-29T18:00:00Z"),
            hold("2026-03-30T07:00:00Z")
        );
        // A start inside the gap opens when the clock jumps; an end inside it closes then.
        let gap = [window(&["daily 02:30-10:00"], None)];
        assert_eq!(
            at(&gap, SE, "2026-03-29T00:00:00Z"),
            hold("2026-03-29T01:00:00Z")
        );
        let gap_end = [window(&["daily 00:00-02:30"], None)];
        assert_eq!(at(&gap_end, SE, "2026-03-29T00:59:00Z"), Decision::SendNow);
        assert_eq!(
            at(&gap_end, SE, "2026-03-29T01:00:00Z"),
            hold("2026-03-29T22:00:00Z")
        );
    }

    #[test]
    fn stockholm_fall_back_day() {
        // 2026-10-25 (Sunday): 03:00 CEST → 02:00 CET at 01:00 UTC; 02:00-03:00 happens twice.
        let w = [window(&["daily 09:00-20:00"], None)];
        assert_eq!(
            at(&w, SE, "2026-10-24T18:00:00Z"),
            hold("2026-10-25T08:00:00Z")
        );
        assert_eq!(
            at(&w, SE, "2026-10-25T07:30:00Z"),
            hold("2026-10-25T08:00:00Z")
        );
        assert_eq!(at(&w, SE, "2026-10-25T18:59:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, SE, "2026-10-25T19:00:00Z"),
            hold("2026-10-26T08:00:00Z")
        );
        // A start in the repeated hour opens at its second occurrence (01:30 UTC, CET), an end
        // there closes at its first (00:30 UTC, CEST): the window only shrinks.
        let start = [window(&["daily 02:30-10:00"], None)];
        assert_eq!(
            at(&start, SE, "2026-10-25T00:30:00Z"),
            hold("2026-10-25T01:30:00Z")
        );
        let end = [window(&["daily 00:00-02:30"], None)];
        assert_eq!(at(&end, SE, "2026-10-25T00:29:00Z"), Decision::SendNow);
        assert_eq!(
            at(&end, SE, "2026-10-25T00:30:00Z"),
            hold("2026-10-25T23:00:00Z")
        );
    }

    #[test]
    fn new_york_dst_days() {
        // 2026-03-08: EST → EDT at 07:00 UTC; 2026-11-01: EDT → EST at 06:00 UTC.
        let w = [window(&["daily 09:00-20:00"], Some(New_York))];
        assert_eq!(
            at(&w, US, "2026-03-08T10:00:00Z"),
            hold("2026-03-08T13:00:00Z")
        );
        assert_eq!(at(&w, US, "2026-03-07T14:00:00Z"), Decision::SendNow);
        // Saturday 19:59 EST is still open; 20:00 EST (01:00 UTC) closes until Sunday 09:00 EDT.
        assert_eq!(at(&w, US, "2026-03-08T00:59:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, US, "2026-03-08T01:00:00Z"),
            hold("2026-03-08T13:00:00Z")
        );
        assert_eq!(at(&w, US, "2026-03-08T23:59:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, US, "2026-03-09T00:00:00Z"),
            hold("2026-03-09T13:00:00Z")
        );
        assert_eq!(
            at(&w, US, "2026-11-01T13:30:00Z"),
            hold("2026-11-01T14:00:00Z")
        );
        assert_eq!(at(&w, US, "2026-11-02T00:59:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, US, "2026-11-02T01:00:00Z"),
            hold("2026-11-02T14:00:00Z")
        );
    }

    #[test]
    fn the_us_is_held_to_the_intersection_of_all_its_zones() {
        // June: New York 09:00-20:00 EDT is 13:00-24:00 UTC, Honolulu 09:00-20:00 HST is
        // 19:00-06:00 UTC: only 19:00-24:00 UTC is daytime everywhere.
        let w = [window(&["daily 09:00-20:00"], None)];
        assert_eq!(
            at(&w, US, "2026-06-15T15:00:00Z"),
            hold("2026-06-15T19:00:00Z")
        );
        assert_eq!(at(&w, US, "2026-06-15T19:00:00Z"), Decision::SendNow);
        assert_eq!(at(&w, US, "2026-06-15T23:59:59Z"), Decision::SendNow);
        assert_eq!(
            at(&w, US, "2026-06-16T00:00:00Z"),
            hold("2026-06-16T19:00:00Z")
        );
        // A window naming a zone is not intersected.
        let ny = [window(&["daily 09:00-20:00"], Some(New_York))];
        assert_eq!(at(&ny, US, "2026-06-15T15:00:00Z"), Decision::SendNow);
        // One hour on Saturdays never overlaps across the US.
        let sat = [window(&["sat 10:00-11:00"], None)];
        assert_eq!(at(&sat, US, "2026-06-15T15:00:00Z"), Decision::Never);
        assert_eq!(
            at(&sat, SE, "2026-06-15T15:00:00Z"),
            hold("2026-06-20T08:00:00Z")
        );
    }

    #[test]
    fn the_us_intersection_moves_with_dst_where_it_is_observed() {
        // Saturday 2026-03-07 (EST, UTC-5): New York closes at 01:00 UTC, Honolulu (UTC-10, no
        // DST) opens at 19:00 UTC. Sunday 2026-03-08 is EDT: New York closes at 00:00 UTC.
        let w = [window(&["daily 09:00-20:00"], None)];
        assert_eq!(
            at(&w, US, "2026-03-07T18:59:00Z"),
            hold("2026-03-07T19:00:00Z")
        );
        assert_eq!(at(&w, US, "2026-03-08T00:30:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, US, "2026-03-08T01:00:00Z"),
            hold("2026-03-08T19:00:00Z")
        );
        assert_eq!(at(&w, US, "2026-03-08T23:59:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, US, "2026-03-09T00:00:00Z"),
            hold("2026-03-09T19:00:00Z")
        );
        // Sunday 2026-11-01 is EST again: open until 01:00 UTC.
        assert_eq!(at(&w, US, "2026-11-02T00:30:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, US, "2026-11-02T01:00:00Z"),
            hold("2026-11-02T19:00:00Z")
        );
    }

    #[test]
    fn russia_is_held_to_the_intersection_of_eleven_time_zones() {
        // Kaliningrad (UTC+2) 09:00 is 07:00 UTC; Kamchatka (UTC+12) 20:00 is 08:00 UTC.
        let w = [window(&["mon-fri 09:00-20:00"], None)];
        assert_eq!(
            at(&w, RU, "2026-06-15T03:00:00Z"),
            hold("2026-06-15T07:00:00Z")
        );
        assert_eq!(at(&w, RU, "2026-06-15T07:30:00Z"), Decision::SendNow);
        assert_eq!(
            at(&w, RU, "2026-06-15T08:00:00Z"),
            hold("2026-06-16T07:00:00Z")
        );
        // Friday 08:00 UTC is Saturday in Kamchatka: next is Monday.
        assert_eq!(
            at(&w, RU, "2026-06-19T08:00:00Z"),
            hold("2026-06-22T07:00:00Z")
        );
        let moscow = [window(
            &["mon-fri 09:00-20:00"],
            Some(chrono_tz::Europe::Moscow),
        )];
        assert_eq!(at(&moscow, RU, "2026-06-15T10:00:00Z"), Decision::SendNow);
    }

    #[test]
    fn unknown_zones_fall_back_to_utc() {
        let w = [window(&["daily 09:00-20:00"], None)];
        let now = utc("2026-06-15T08:00:00Z");
        assert_eq!(
            decide(&w, "+80012345678", &[], Class::Marketing, now),
            hold("2026-06-15T09:00:00Z")
        );
    }

    #[test]
    fn span_arithmetic() {
        let t = |h: i64| utc("2026-01-01T00:00:00Z") + Duration::hours(h);
        assert_eq!(
            merge(vec![(t(5), t(6)), (t(1), t(3)), (t(3), t(4))]),
            vec![(t(1), t(4)), (t(5), t(6))]
        );
        let a = [(t(0), t(4)), (t(6), t(10))];
        let b = [(t(2), t(7)), (t(9), t(12))];
        assert_eq!(
            intersect(&a, &b),
            vec![(t(2), t(4)), (t(6), t(7)), (t(9), t(10))]
        );
        assert_eq!(intersect(&a, &[]), vec![]);
    }
}
