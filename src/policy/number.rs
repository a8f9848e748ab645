//! Clean numbers: is a destination a possible number of its country, and is it in a mobile
//! range? Answered from libphonenumber's metadata (the `phonenumber` crate), on the digits as
//! they will be sent.
//!
//! Owns [`check`] and the words of `invalid_destination` (country and reason). Must never
//! rewrite a number (a stray national `0` after the country code is reported, not removed)
//! and never do I/O: the metadata is compiled into the crate.
//!
//! The length check uses the country's possible lengths for internationally diallable
//! numbers (libphonenumber's "local only" lengths do not count: an SMSC cannot route them).
//! A possible number is classified by the country's number-type patterns: `Mobile`,
//! `FixedOrMobile` (countries such as the US whose mobile and fixed ranges cannot be told
//! apart) or `NotMobile` (fixed line, toll-free, premium, VoIP…, or a range that is not
//! assigned at all).

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, OnceLock};

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};

use super::zones::country_name;

/// What [`check`] found out about a possible number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberInfo {
    /// ISO 3166 region (`"SE"`), or `"001"` for non-geographic numbers (+800, +882…).
    pub region: &'static str,
    /// The country calling code (`46`).
    pub country_code: u16,
    pub kind: NumberKind,
}

/// Whether a number is in a mobile range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    Mobile,
    /// The country's mobile and fixed ranges overlap (US, Canada…): it may be a mobile.
    FixedOrMobile,
    /// Possible, but not a mobile range: flagged `not_mobile`.
    NotMobile(LineType),
}

/// What a number that is not a mobile is instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineType {
    FixedLine,
    TollFree,
    PremiumRate,
    SharedCost,
    PersonalNumber,
    Voip,
    Pager,
    Uan,
    Voicemail,
    /// In none of the country's ranges.
    Unassigned,
}

/// Why a destination is `invalid_destination`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{number}: {}", self.describe())]
pub struct NumberProblem {
    /// The number as given.
    pub number: String,
    /// The country the country code belongs to, when it belongs to one.
    pub region: Option<&'static str>,
    pub reason: Reason,
}

/// The reason a number is impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Not `+` followed by 1–15 digits.
    NotE164,
    /// No country has this calling code.
    InvalidCountryCode,
    /// `digits` after the country code; the country's shortest number has `min`.
    TooShort { digits: usize, min: u16 },
    /// `digits` after the country code; the country's longest number has `max`.
    TooLong { digits: usize, max: u16 },
    /// Between the shortest and the longest, but no number of the country has this length.
    InvalidLength { digits: usize, lengths: Vec<u16> },
}

impl NumberProblem {
    fn describe(&self) -> String {
        let country = match self.region.map(|r| (r, country_name(r))) {
            Some((r, Some(name))) => format!("{name} ({r})"),
            Some((r, None)) => r.to_owned(),
            None => String::new(),
        };
        match &self.reason {
            Reason::NotE164 => "not an E.164 number (+ and 1-15 digits)".into(),
            Reason::InvalidCountryCode => "no country has this calling code".into(),
            Reason::TooShort { digits, min } => {
                format!(
                    "too short for {country}: {digits} digits after the country code, at least {min}"
                )
            }
            Reason::TooLong { digits, max } => {
                format!(
                    "too long for {country}: {digits} digits after the country code, at most {max}"
                )
            }
            Reason::InvalidLength { digits, lengths } => format!(
                "wrong length for {country}: {digits} digits after the country code, numbers there have {}",
                lengths
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl fmt::Display for LineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LineType::FixedLine => "fixed line",
            LineType::TollFree => "toll-free",
            LineType::PremiumRate => "premium rate",
            LineType::SharedCost => "shared cost",
            LineType::PersonalNumber => "personal number",
            LineType::Voip => "VoIP",
            LineType::Pager => "pager",
            LineType::Uan => "universal access number",
            LineType::Voicemail => "voicemail access",
            LineType::Unassigned => "not in an assigned range",
        })
    }
}

impl NumberInfo {
    /// Whether a message to it may reach a handset (`Mobile` or `FixedOrMobile`).
    pub fn may_be_mobile(&self) -> bool {
        !matches!(self.kind, NumberKind::NotMobile(_))
    }
}

/// Checks an E.164 destination (`"+46701234567"`; the `+` may be left out) against its
/// country's metadata: `Err` when it is impossible (`invalid_destination`), otherwise its
/// region and whether it is a mobile range.
pub fn check(e164: &str) -> Result<NumberInfo, NumberProblem> {
    let problem = |region, reason| NumberProblem {
        number: e164.to_owned(),
        region,
        reason,
    };
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem(None, Reason::NotE164));
    }
    let Some((code, national)) = split_country_code(digits) else {
        return Err(problem(None, Reason::InvalidCountryCode));
    };
    let Some(country) = country_for(code, national) else {
        return Err(problem(None, Reason::InvalidCountryCode));
    };
    if let Some(reason) = length_problem(&country.lengths, national.len()) {
        return Err(problem(Some(country.region), reason));
    }
    Ok(NumberInfo {
        region: country.region,
        country_code: code,
        kind: country.patterns().kind_of(national),
    })
}

/// The region of a number's country (`"SE"`), or `None` when it has no country: an unknown
/// calling code, or a non-geographic number. Does not check the length.
pub fn region_of(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    let (code, national) = split_country_code(digits)?;
    Some(country_for(code, national)?.region).filter(|r| *r != "001")
}

/// libphonenumber's metadata in the shape [`check`] reads it, built on first use: per calling
/// code its countries, each with its possible lengths and, compiled when a number of that
/// country is first checked, its number patterns. Why not the crate's own matching: it looks
/// each pattern up in one global, mutex-guarded LRU of 100 (hashing the pattern's whole text
/// twice per match, and compiling it again when evicted) and then searches the number
/// unanchored; a submit ran up to eleven of those, 17 % of the runtime thread at saturation.
struct Table {
    by_code: HashMap<u16, Vec<Country>>,
}

/// One country (region) of the metadata.
struct Country {
    meta: &'static Metadata,
    region: &'static str,
    /// The lengths its national numbers can have (see [`possible_lengths`]).
    lengths: Vec<u16>,
    patterns: OnceLock<Patterns>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let by_code = (1..=999u16)
        .filter_map(|code| {
            let metas = DATABASE.by_code(&code)?;
            let countries = metas
                .into_iter()
                .map(|meta| Country {
                    meta,
                    region: meta.id(),
                    lengths: possible_lengths(meta),
                    patterns: OnceLock::new(),
                })
                .collect();
            Some((code, countries))
        })
        .collect();
    Table { by_code }
});

/// The calling code (1-3 digits; E.164 codes are prefix-free) and the national number.
fn split_country_code(digits: &str) -> Option<(u16, &str)> {
    (1..=3.min(digits.len())).find_map(|n| {
        let code: u16 = digits.get(..n)?.parse().ok()?;
        TABLE
            .by_code
            .contains_key(&code)
            .then(|| (code, &digits[n..]))
    })
}

/// The country the number belongs to. A calling code shared by several countries (+1, +7,
/// +44…) is resolved like libphonenumber does: the country whose leading digits match, else
/// the first whose number patterns match, else the code's main country.
fn country_for(code: u16, national: &str) -> Option<&'static Country> {
    let countries = TABLE.by_code.get(&code)?;
    let fits = |c: &&Country| {
        let p = c.patterns();
        match &p.leading {
            Some(re) => re.is_match(national),
            None => !matches!(
                p.kind_of(national),
                NumberKind::NotMobile(LineType::Unassigned)
            ),
        }
    };
    countries
        .iter()
        .find(|c| countries.len() == 1 || fits(c))
        .or_else(|| countries.iter().find(|c| c.meta.is_main_country_for_code()))
        .or(countries.first())
}

impl Country {
    fn patterns(&self) -> &Patterns {
        self.patterns.get_or_init(|| Patterns::of(self.meta))
    }
}

/// A country's number patterns, compiled once, anchored at the start: a descriptor matches a
/// national number when its pattern matches from the first digit (what the crate's
/// `Descriptor::is_match` asks of its unanchored search).
struct Patterns {
    leading: Option<Regex>,
    general: Option<Pattern>,
    /// Premium rate, toll free, …: libphonenumber's order.
    other: Vec<(Pattern, LineType)>,
    fixed: Option<Pattern>,
    mobile: Option<Pattern>,
}

/// One descriptor: its lengths (none: any) and its pattern.
struct Pattern {
    lengths: Vec<u16>,
    re: Regex,
}

impl Patterns {
    fn of(meta: &Metadata) -> Patterns {
        let d = meta.descriptors();
        let other = [
            (d.premium_rate(), LineType::PremiumRate),
            (d.toll_free(), LineType::TollFree),
            (d.shared_cost(), LineType::SharedCost),
            (d.voip(), LineType::Voip),
            (d.personal_number(), LineType::PersonalNumber),
            (d.pager(), LineType::Pager),
            (d.uan(), LineType::Uan),
            (d.voicemail(), LineType::Voicemail),
        ];
        Patterns {
            leading: meta.leading_digits().and_then(|re| anchored(re.as_str())),
            general: Pattern::of(Some(d.general())),
            other: other
                .into_iter()
                .filter_map(|(desc, t)| Some((Pattern::of(desc)?, t)))
                .collect(),
            fixed: Pattern::of(d.fixed_line()),
            mobile: Pattern::of(d.mobile()),
        }
    }

    /// The number type by the country's patterns, in libphonenumber's order (a number matching
    /// both the fixed and the mobile pattern is `FixedOrMobile`).
    fn kind_of(&self, national: &str) -> NumberKind {
        let is = |p: &Option<Pattern>| p.as_ref().is_some_and(|p| p.is_match(national));
        if !is(&self.general) {
            return NumberKind::NotMobile(LineType::Unassigned);
        }
        if let Some((_, t)) = self.other.iter().find(|(p, _)| p.is_match(national)) {
            return NumberKind::NotMobile(*t);
        }
        match (is(&self.fixed), is(&self.mobile)) {
            (true, true) => NumberKind::FixedOrMobile,
            (true, false) => NumberKind::NotMobile(LineType::FixedLine),
            (false, true) => NumberKind::Mobile,
            (false, false) => NumberKind::NotMobile(LineType::Unassigned),
        }
    }
}

impl Pattern {
    /// `None` when the descriptor is absent or its pattern does not compile (none of the
    /// embedded metadata's fails; the crate would panic on one, here that type is never matched).
    fn of(desc: Option<&Descriptor>) -> Option<Pattern> {
        let desc = desc?;
        Some(Pattern {
            lengths: desc.possible_length().to_vec(),
            re: anchored(desc.national_number().as_str())?,
        })
    }

    fn is_match(&self, national: &str) -> bool {
        let n = u16::try_from(national.len()).unwrap_or(u16::MAX);
        (self.lengths.is_empty() || self.lengths.contains(&n)) && self.re.is_match(national)
    }
}

/// A metadata pattern (written for extended mode, as the crate compiles it) anchored at the
/// start of the text.
fn anchored(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{pattern}\n)"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// The lengths numbers of the country can have, sorted: the union over its number types
/// (libphonenumber's build tools derive the general lengths the same way; the crate leaves
/// them empty). Types that inherit the general lengths list none and add nothing.
fn possible_lengths(meta: &Metadata) -> Vec<u16> {
    let d = meta.descriptors();
    let types = [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ];
    let mut lengths: Vec<u16> = d.general().possible_length().to_vec();
    lengths.extend(types.iter().flatten().flat_map(|t| t.possible_length()));
    lengths.sort_unstable();
    lengths.dedup();
    lengths
}

/// Compares the national number's length with the country's possible lengths; `None` when it
/// is one of them (or the metadata lists none).
fn length_problem(lengths: &[u16], digits: usize) -> Option<Reason> {
    let (&min, &max) = (lengths.first()?, lengths.last()?);
    let n = u16::try_from(digits).unwrap_or(u16::MAX);
    if n < min {
        Some(Reason::TooShort { digits, min })
    } else if n > max {
        Some(Reason::TooLong { digits, max })
    } else if !lengths.contains(&n) {
        Some(Reason::InvalidLength {
            digits,
            lengths: lengths.to_vec(),
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(n: &str) -> Reason {
        check(n).unwrap_err().reason
    }

    #[test]
    fn a_swedish_mobile() {
        let info = check("+46701234567").unwrap();
        assert_eq!(info.region, "SE");
        assert_eq!(info.country_code, 46);
        assert_eq!(info.kind, NumberKind::Mobile);
        assert!(info.may_be_mobile());
        assert_eq!(check("46701234567").unwrap(), info);
    }

    #[test]
    fn a_swedish_fixed_line_is_not_mobile() {
        // Stockholm, 08-123 456 78.
        let info = check("+46812345678").unwrap();
        assert_eq!(info.region, "SE");
        assert_eq!(info.kind, NumberKind::NotMobile(LineType::FixedLine));
        assert!(!info.may_be_mobile());
    }

    #[test]
    fn us_numbers_are_fixed_or_mobile_and_toll_free_is_not_mobile() {
        let info = check("+12015550123").unwrap();
        assert_eq!(info.region, "US");
        assert_eq!(info.kind, NumberKind::FixedOrMobile);
        let toll_free = check("+18005550123").unwrap();
        assert_eq!(toll_free.kind, NumberKind::NotMobile(LineType::TollFree));
    }

    #[test]
    fn shared_calling_codes_resolve_to_the_right_country() {
        assert_eq!(check("+14165550123").map(|i| i.region), Ok("CA"));
        assert_eq!(check("+74951234567").map(|i| i.region), Ok("RU"));
        assert_eq!(check("+77012345678").map(|i| i.region), Ok("KZ"));
        assert_eq!(check("+447400123456").map(|i| i.region), Ok("GB"));
    }

    #[test]
    fn too_short_and_too_long_name_the_country() {
        let short = check("+4670").unwrap_err();
        assert_eq!(short.region, Some("SE"));
        assert_eq!(short.reason, Reason::TooShort { digits: 2, min: 6 });
        let text = short.to_string();
        assert!(
            text.contains("Sweden (SE)") && text.contains("too short"),
            "{text}"
        );

        let long = check("+4670123456789012").unwrap_err();
        assert!(matches!(long.reason, Reason::NotE164), "{long}");
        let long = check("+1201555012345").unwrap_err();
        assert_eq!(long.region, Some("US"));
        assert!(
            matches!(
                long.reason,
                Reason::TooLong {
                    digits: 12,
                    max: 10
                }
            ),
            "{long}"
        );
        assert!(
            long.to_string().contains("too long for United States (US)"),
            "{long}"
        );
    }

    #[test]
    fn a_length_between_the_possible_ones_is_invalid() {
        // Swedish numbers have 6-10 or 12 digits after +46.
        let p = check("+4670123456789").unwrap_err();
        assert_eq!(p.region, Some("SE"));
        let lengths = vec![6, 7, 8, 9, 10, 12];
        assert_eq!(
            p.reason,
            Reason::InvalidLength {
                digits: 11,
                lengths
            }
        );
        assert!(
            p.to_string()
                .contains("wrong length for Sweden (SE): 11 digits"),
            "{p}"
        );
        // A possible length outside every range is possible, and not a mobile.
        let info = check("+4712345").unwrap();
        assert_eq!(info.kind, NumberKind::NotMobile(LineType::Unassigned));
    }

    #[test]
    fn unknown_country_codes_and_garbage() {
        assert_eq!(reason("+99912345678"), Reason::InvalidCountryCode);
        assert_eq!(reason("+2801234567"), Reason::InvalidCountryCode);
        assert_eq!(reason("+46 70 123"), Reason::NotE164);
        assert_eq!(reason(""), Reason::NotE164);
        assert_eq!(reason("+"), Reason::NotE164);
        assert!(
            check("+99912345678")
                .unwrap_err()
                .to_string()
                .contains("calling code")
        );
    }

    #[test]
    fn non_geographic_numbers_have_the_region_001() {
        let info = check("+80012345678").unwrap();
        assert_eq!(info.region, "001");
        assert_eq!(info.kind, NumberKind::NotMobile(LineType::TollFree));
        assert_eq!(region_of("+80012345678"), None);
        assert_eq!(region_of("+46701234567"), Some("SE"));
    }

    /// The check as it was, on the crate's own matching: the oracle the compiled patterns must
    /// agree with.
    mod oracle {
        use super::super::{DATABASE, Descriptor, LineType, Metadata, NumberKind};

        pub fn country(digits: &str) -> Option<(u16, &'static str, NumberKind)> {
            let (code, national) = (1..=3.min(digits.len())).find_map(|n| {
                let code: u16 = digits.get(..n)?.parse().ok()?;
                DATABASE.region(&code).map(|_| (code, &digits[n..]))
            })?;
            let metas = DATABASE.by_code(&code)?;
            let leading = |m: &&Metadata| {
                m.leading_digits()
                    .is_some_and(|re| re.find(national).is_some_and(|f| f.start() == 0))
            };
            let typed = |m: &&Metadata| {
                m.leading_digits().is_none()
                    && !matches!(
                        kind_of(m, national),
                        NumberKind::NotMobile(LineType::Unassigned)
                    )
            };
            let meta = metas
                .iter()
                .find(|m| metas.len() == 1 || leading(m) || typed(m))
                .or_else(|| metas.iter().find(|m| m.is_main_country_for_code()))
                .or(metas.first())
                .copied()?;
            Some((code, meta.id(), kind_of(meta, national)))
        }

        /// The number type by the country's patterns, in libphonenumber's order (a number matching
        /// both the fixed and the mobile pattern is `FixedOrMobile`).
        pub fn kind_of(meta: &Metadata, national: &str) -> NumberKind {
            let d = meta.descriptors();
            let is = |desc: Option<&Descriptor>| desc.is_some_and(|d| d.is_match(national));
            if !d.general().is_match(national) {
                return NumberKind::NotMobile(LineType::Unassigned);
            }
            let other = [
                (d.premium_rate(), LineType::PremiumRate),
                (d.toll_free(), LineType::TollFree),
                (d.shared_cost(), LineType::SharedCost),
                (d.voip(), LineType::Voip),
                (d.personal_number(), LineType::PersonalNumber),
                (d.pager(), LineType::Pager),
                (d.uan(), LineType::Uan),
                (d.voicemail(), LineType::Voicemail),
            ];
            if let Some((_, t)) = other.iter().find(|(desc, _)| is(*desc)) {
                return NumberKind::NotMobile(*t);
            }
            match (is(d.fixed_line()), is(d.mobile())) {
                (true, true) => NumberKind::FixedOrMobile,
                (true, false) => NumberKind::NotMobile(LineType::FixedLine),
                (false, true) => NumberKind::Mobile,
                (false, false) => NumberKind::NotMobile(LineType::Unassigned),
            }
        }
    }

    /// Every country's numbers of every length, with digits that walk its ranges: the compiled
    /// patterns give the country and the type the crate's matching gives.
    #[test]
    fn compiled_patterns_agree_with_the_crate() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut checked = 0;
        for code in 1..=999u16 {
            if DATABASE.by_code(&code).is_none() {
                continue;
            }
            for len in 4..=(15 - code.to_string().len()) {
                for _ in 0..12 {
                    let national: String = (0..len)
                        .map(|_| char::from(b'0' + (next() % 10) as u8))
                        .collect();
                    let digits = format!("{code}{national}");
                    let ours = check(&digits)
                        .ok()
                        .map(|i| (i.country_code, i.region, i.kind));
                    let theirs = oracle::country(&digits);
                    match (ours, theirs) {
                        // A length problem is refused before the type is asked.
                        (None, Some((c, r, _))) => {
                            let lengths = &TABLE.by_code[&c]
                                .iter()
                                .find(|k| k.region == r)
                                .unwrap()
                                .lengths;
                            assert!(length_problem(lengths, len).is_some(), "{digits}");
                        }
                        (ours, theirs) => assert_eq!(ours, theirs, "+{digits}"),
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 20_000, "{checked}");
    }
}
