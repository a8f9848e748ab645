//! Property tests of the send-window decision against an independent oracle: an instant is
//! allowed when, in every zone that applies, the local wall-clock reading is inside a rule.
//!
//! For arbitrary instants in 2026 (both DST seasons and their transition days), rule sets and
//! zone sets (one zone, the US, Russia, Australia, or a window naming its own zone):
//! - `SendNow` only when the oracle allows now (nobody is messaged outside a window, DST or not);
//! - `HoldUntil(t)`: `t` is later than now, allowed by the oracle and by `decide` itself, and
//!   one second before it is still held until `t`;
//! - away from DST transitions the decision is exact: the oracle allows now ⇒ `SendNow`, and no
//!   sampled instant before `t` is allowed;
//! - `Never` only when the oracle allows no sampled instant of the year.

use chrono::{DateTime, Datelike, Duration, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use smppd::policy::window::{AllowRule, Decision, Window, decide};
use smppd::policy::{Class, zones};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A rule as data: day bits (bit 0 = Monday) and minutes `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct Rule {
    days: u8,
    start: u16,
    end: u16,
}

impl Rule {
    fn text(&self) -> String {
        let days: Vec<&str> = (0..7)
            .filter(|i| self.days & (1 << i) != 0)
            .map(|i| DAYS[i])
            .collect();
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        format!("{} {}-{}", days.join(","), hm(self.start), hm(self.end))
    }

    fn allows<T: TimeZone>(&self, local: &DateTime<T>) -> bool {
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.days & (1 << local.weekday().num_days_from_monday()) != 0
            && self.start <= minute
            && minute < self.end
    }
}

fn rule() -> impl Strategy<Value = Rule> {
    // Quarter hours, often inside the hours DST skips or repeats (01:00-03:00 local).
    let minute = || prop_oneof![2 => 0u16..=96, 1 => 4u16..12].prop_map(|q| q * 15);
    (1u8..128, minute(), minute()).prop_filter_map("an empty range", |(days, a, b)| {
        (a != b).then_some(Rule {
            days,
            start: a.min(b),
            end: a.max(b),
        })
    })
}

/// Destinations: one zone, several zones (intersection), or a window that names its zone.
fn destination() -> impl Strategy<Value = (&'static str, Option<Tz>)> {
    prop::sample::select(vec![
        ("+46701234567", None),
        ("+12125550123", None),
        ("+74951234567", None),
        ("+61412345678", None),
        ("+12125550123", Some(chrono_tz::America::New_York)),
        ("+46701234567", Some(chrono_tz::Australia::Sydney)),
    ])
}

/// Any second of 2026, weighted towards the DST transition days of Europe and the US.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let year = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let near = |s: &str, seconds: i64| {
        let t: DateTime<Utc> = s.parse().unwrap();
        (-seconds..seconds).prop_map(move |d| t + Duration::seconds(d))
    };
    let transitions = [
        "2026-03-29T01:00:00Z",
        "2026-10-25T01:00:00Z",
        "2026-03-08T07:00:00Z",
        "2026-11-01T06:00:00Z",
    ];
    let days = transitions.map(|t| near(t, 2 * 86_400).boxed());
    let hours = transitions.map(|t| near(t, 3 * 3_600).boxed());
    prop_oneof![
        4 => (0i64..365 * 86_400).prop_map(move |s| year + Duration::seconds(s)).boxed(),
        2 => prop::strategy::Union::new(days),
        2 => prop::strategy::Union::new(hours),
    ]
}

fn oracle(rules: &[Rule], zones: &[Tz], t: DateTime<Utc>) -> bool {
    zones.iter().all(|z| {
        let local = t.with_timezone(z);
        rules.iter().any(|r| r.allows(&local))
    })
}

/// No zone changes its UTC offset within a day of `t`.
fn steady(zones: &[Tz], t: DateTime<Utc>) -> bool {
    let offset = |z: &Tz, t: DateTime<Utc>| z.offset_from_utc_datetime(&t.naive_utc()).fix();
    let (before, after) = (t - Duration::days(1), t + Duration::days(1));
    zones.iter().all(|z| offset(z, before) == offset(z, after))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decide_agrees_with_the_local_clock(
        rules in prop::collection::vec(rule(), 1..4),
        (dest, timezone) in destination(),
        now in instant(),
    ) {
        let window = Window {
            name: "w".into(),
            class: Class::Marketing,
            prefixes: Vec::new(),
            allow: rules.iter().map(|r| AllowRule::parse(&r.text()).unwrap()).collect(),
            timezone,
        };
        let dest_zones = zones::zones_of_number(dest);
        let zones: Vec<Tz> = timezone.map_or(dest_zones.to_vec(), |z| vec![z]);
        let windows = [window];
        let at = |t| decide(&windows, dest, dest_zones, Class::Marketing, t);
        match at(now) {
            Decision::SendNow => prop_assert!(oracle(&rules, &zones, now)),
            Decision::HoldUntil(t) => {
                prop_assert!(t > now);
                prop_assert!(oracle(&rules, &zones, t), "held until {t}, not allowed then");
                prop_assert_eq!(at(t), Decision::SendNow);
                prop_assert_eq!(at(t - Duration::seconds(1)), Decision::HoldUntil(t));
                if steady(&zones, now) && steady(&zones, t) && t - now < Duration::days(1) {
                    prop_assert!(!oracle(&rules, &zones, now));
                    for i in 1..48 {
                        let s = now + (t - now) * i / 48;
                        prop_assert!(!oracle(&rules, &zones, s), "{s} is allowed before {t}");
                    }
                }
            }
            Decision::Never => {
                for h in 0..(366 * 24) {
                    let s = now + Duration::minutes(h * 60 + 7);
                    prop_assert!(!oracle(&rules, &zones, s), "{s} is allowed");
                }
            }
        }
    }
}
