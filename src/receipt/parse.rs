//! The receipt-text scanner. Works on bytes (receipt text is ASCII-compatible once decoded by its
//! `data_coding`, see `super::coding`; a hostile or broken SMSC may still send anything).
//!
//! How a text is read (each variant has a row in the table of the `receipt` module doc):
//! - A label (`id:`, `sub:`, `dlvrd:`, `submit date:`, `done date:`, `stat:`, `err:`, `text:`, in
//!   any letter case) counts where it starts a word: at the start of the text or after any byte
//!   that is not a letter, a digit or `_`. Junk before `id:` (`#id:`, NULs, a vendor prefix) is
//!   skipped; `msgid:` or `smsc_id:` is not an `id:`.
//! - Fields come in any order; the first label of each field wins, a repeated one is junk.
//! - Every value but `text:` is its first token (cut at whitespace, NUL padding trimmed), so
//!   bytes after the last field are ignored; a `;`, `,`, `|` or `&` right before the next label
//!   separates fields (`id:7;stat:DELIVRD`).
//! - No stat at all (no `stat:`, no `message_state` TLV of 1–8) with `dlvrd:` of 1 or more
//!   reads as delivered; else a `message_state` of 0 (SMPP 5.0 SCHEDULED) is ENROUTE; with
//!   nothing to go by the stat is UNKNOWN.
//! - `text:` runs to the next label of a field not seen yet that is the last label of its field
//!   and whose value looks like that field's (digits for `sub:`, a word for `stat:`, …). So a
//!   `text:` that is not last ends where the real fields resume, and labels inside the message's
//!   own words (`your id: 12`, `stat: ok`, `10:30`) stay text.
//!
//! Never allocates per byte and never looks at more than `MAX_LABELS` labels, so any input is
//! parsed in time linear in its length.

use super::{MAX_ID_LEN, NetworkError, Receipt, ReceiptTlvs, Stat};
use std::borrow::Cow;
use std::fmt;

/// Longest `text:` value we keep (the spec says 20 characters; some SMSCs send more).
const MAX_TEXT_LEN: usize = 160;
/// Longest value of any other field we keep.
const MAX_FIELD_LEN: usize = 64;
/// Labels looked at, at most (a text of a thousand `id:` words costs no more than a real receipt).
const MAX_LABELS: usize = 64;

/// Why a receipt could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Neither `receipted_message_id` nor an `id:` field carries a message id, so the receipt
    /// cannot be matched to anything.
    #[error(
        "receipt has no message id (no receipted_message_id TLV and no `id:` field in the text)"
    )]
    NoId,
}

/// A receipt date (`YYMMDDhhmm`, `YYMMDDhhmmss` or `YYYYMMDDhhmmss`). Two-digit years are 20YY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReceiptDate {
    /// Full year, e.g. 2025.
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–59 (0 when the date had no seconds).
    pub second: u8,
}

impl ReceiptDate {
    /// Parses a receipt date: `YYMMDDhhmm`, `YYMMDDhhmmss` or `YYYYMMDDhhmmss` (the format chosen
    /// by length), or the SMPP absolute time `YYMMDDhhmmsstnn+` / `…-` (SMPP-FACTS §1.3). A zone
    /// may follow, attached or after a space: `Z`, `±hh`, `±hhmm`, `±hh:mm`, `UTC`, `GMT`. A date
    /// with a zone is converted to UTC; one without (the usual case) is kept as written, in the
    /// SMSC's local time; a zone word we cannot convert (`CET`) is ignored. `None` for all-zero
    /// dates, other lengths, a malformed offset and out-of-range fields.
    pub fn parse(s: &str) -> Option<ReceiptDate> {
        let mut words = s.split_whitespace();
        let first = words.next()?;
        let split = first.bytes().take_while(u8::is_ascii_digit).count();
        let (digits, suffix) = first.split_at(split);
        let (local, offset) = match (digits.len(), suffix) {
            // SMPP absolute time: tenths of a second, then the offset in quarter hours and its sign.
            (15, "+" | "-") => {
                let quarters = i64::from(two_digits(&digits.as_bytes()[13..15])?);
                let sign = if suffix == "+" { 1 } else { -1 };
                (
                    Self::from_digits(&digits[..12])?,
                    Some(sign * quarters * 15),
                )
            }
            (10 | 12 | 14, "") => {
                let next_is_zone = words.next().and_then(zone_offset);
                (Self::from_digits(digits)?, next_is_zone.flatten())
            }
            (10 | 12 | 14, z) => (Self::from_digits(digits)?, zone_offset(z)?),
            _ => return None,
        };
        Some(offset.map_or(local, |minutes| local.minus_minutes(minutes)))
    }

    /// `YYMMDDhhmm`, `YYMMDDhhmmss` or `YYYYMMDDhhmmss`; two-digit years are 20YY.
    fn from_digits(s: &str) -> Option<ReceiptDate> {
        let b = s.as_bytes();
        if !b.iter().all(u8::is_ascii_digit) || b.iter().all(|&c| c == b'0') {
            return None;
        }
        let two = |i: usize| -> u16 { u16::from(b[i] - b'0') * 10 + u16::from(b[i + 1] - b'0') };
        let (year, rest) = match b.len() {
            10 | 12 => (2000 + two(0), 2),
            14 => (two(0) * 100 + two(2), 4),
            _ => return None,
        };
        let field = |i: usize| -> u8 { two(rest + i * 2) as u8 };
        let second = if b.len() == 10 { 0 } else { field(4) };
        let d = ReceiptDate {
            year,
            month: field(0),
            day: field(1),
            hour: field(2),
            minute: field(3),
            second,
        };
        let valid = (1..=12).contains(&d.month)
            && (1..=31).contains(&d.day)
            && d.hour < 24
            && d.minute < 60
            && d.second < 61;
        valid.then_some(d)
    }

    /// The same instant `minutes` earlier (local time at an offset → UTC). Seconds are kept; a
    /// result outside years 0–9999 leaves the date as it was.
    fn minus_minutes(self, minutes: i64) -> ReceiptDate {
        let days = days_from_civil(i64::from(self.year), self.month.into(), self.day.into());
        let total = days * 1440 + i64::from(self.hour) * 60 + i64::from(self.minute) - minutes;
        let (y, m, d) = civil_from_days(total.div_euclid(1440));
        let in_day = total.rem_euclid(1440);
        match u16::try_from(y) {
            Ok(year) if year <= 9999 => ReceiptDate {
                year,
                month: m as u8,
                day: d as u8,
                hour: (in_day / 60) as u8,
                minute: (in_day % 60) as u8,
                second: self.second,
            },
            _ => self,
        }
    }
}

/// Two ASCII digits as a number.
fn two_digits(b: &[u8]) -> Option<u8> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => Some((a - b'0') * 10 + (c - b'0')),
        _ => None,
    }
}

/// A zone after a date, as minutes ahead of UTC: `Some(Some(m))` for an offset we can apply,
/// `Some(None)` for a zone word we cannot convert (kept as local time), `None` when `z` is not a
/// zone at all.
fn zone_offset(z: &str) -> Option<Option<i64>> {
    if z.eq_ignore_ascii_case("z") || z.eq_ignore_ascii_case("utc") || z.eq_ignore_ascii_case("gmt")
    {
        return Some(Some(0));
    }
    if let Some(rest) = z.strip_prefix(['+', '-']) {
        let sign = if z.starts_with('+') { 1 } else { -1 };
        let b = rest.as_bytes();
        let (h, m) = match b.len() {
            2 => (two_digits(b)?, 0),
            4 => (two_digits(&b[..2])?, two_digits(&b[2..])?),
            5 if b[2] == b':' => (two_digits(&b[..2])?, two_digits(&b[3..])?),
            _ => return None,
        };
        if h > 14 || m > 59 {
            return None;
        }
        return Some(Some(sign * (i64::from(h) * 60 + i64::from(m))));
    }
    (!z.is_empty() && z.len() <= 5 && z.bytes().all(|c| c.is_ascii_alphabetic())).then_some(None)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl ReceiptDate {
    /// The date as the number `YYYYMMDDhhmmss` (compact, sortable; how the store keeps it).
    pub fn as_number(&self) -> i64 {
        i64::from(self.year) * 10_000_000_000
            + i64::from(self.month) * 100_000_000
            + i64::from(self.day) * 1_000_000
            + i64::from(self.hour) * 10_000
            + i64::from(self.minute) * 100
            + i64::from(self.second)
    }

    /// The inverse of [`ReceiptDate::as_number`] (no range checks: for display only).
    pub fn from_number(n: i64) -> ReceiptDate {
        let n = n.max(0);
        ReceiptDate {
            year: (n / 10_000_000_000 % 10_000) as u16,
            month: (n / 100_000_000 % 100) as u8,
            day: (n / 1_000_000 % 100) as u8,
            hour: (n / 10_000 % 100) as u8,
            minute: (n / 100 % 100) as u8,
            second: (n % 100) as u8,
        }
    }
}

impl fmt::Display for ReceiptDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Sub,
    Dlvrd,
    SubmitDate,
    DoneDate,
    Stat,
    Err,
    Text,
}

/// Labels, matched case-insensitively. Longer spellings first where one is a prefix of another.
const LABELS: &[(&[u8], Field)] = &[
    (b"id:", Field::Id),
    (b"sub:", Field::Sub),
    (b"dlvrd:", Field::Dlvrd),
    (b"submit date:", Field::SubmitDate),
    (b"submitdate:", Field::SubmitDate),
    (b"submit_date:", Field::SubmitDate),
    (b"done date:", Field::DoneDate),
    (b"donedate:", Field::DoneDate),
    (b"done_date:", Field::DoneDate),
    (b"stat:", Field::Stat),
    (b"err:", Field::Err),
    (b"text:", Field::Text),
];

fn label_at(b: &[u8], i: usize) -> Option<(Field, usize)> {
    let first = b.get(i)?.to_ascii_lowercase();
    // Every label starts with one of these: most words are rejected on their first byte.
    if !matches!(first, b'i' | b's' | b'd' | b'e' | b't') {
        return None;
    }
    LABELS.iter().find_map(|(label, field)| {
        if label[0] != first {
            return None;
        }
        let end = i.checked_add(label.len())?;
        let candidate = b.get(i..end)?;
        candidate
            .eq_ignore_ascii_case(label)
            .then_some((*field, label.len()))
    })
}

/// A byte that continues a word: a label right after one is part of another word (`msgid:`).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A label found in the text: its field, where the label starts and where its value starts.
#[derive(Debug, Clone, Copy)]
struct Label {
    field: Field,
    at: usize,
    value: usize,
}

/// Every label at a word start, in text order, at most [`MAX_LABELS`].
fn labels(b: &[u8]) -> Vec<Label> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() && found.len() < MAX_LABELS {
        let starts_word = i == 0 || !is_word_byte(b[i - 1]);
        if starts_word && let Some((field, len)) = label_at(b, i) {
            found.push(Label {
                field,
                at: i,
                value: i + len,
            });
            i += len;
            continue;
        }
        i += 1;
    }
    found
}

/// The raw value of label `k`: up to the next label (or the end).
fn raw_value<'a>(b: &'a [u8], labels: &[Label], k: usize) -> &'a [u8] {
    let end = labels.get(k + 1).map_or(b.len(), |n| n.at);
    b.get(labels[k].value..end).unwrap_or_default()
}

/// Whether a value looks like its field's: what decides that a label after `text:` is a real
/// field and not a word of the message.
fn plausible(field: Field, raw: &[u8]) -> bool {
    let v = String::from_utf8_lossy(raw);
    let t = token(&v);
    match field {
        Field::Id => !t.is_empty(),
        Field::Sub | Field::Dlvrd => !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()),
        Field::SubmitDate | Field::DoneDate => {
            t.bytes().take_while(u8::is_ascii_digit).count() >= 10
        }
        Field::Stat => {
            (2..=16).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_')
        }
        // An empty `err:` is a real (if useless) field.
        Field::Err => t.bytes().all(|c| c.is_ascii_alphanumeric()),
        Field::Text => false,
    }
}

/// Where the `text:` at label `k` ends: the index of the first later label that is a real field
/// (see the module doc), or `labels.len()` when the text runs to the end.
fn text_end(b: &[u8], labels: &[Label], k: usize, seen: &[bool; 8]) -> usize {
    (k + 1..labels.len())
        .find(|&j| {
            let f = labels[j].field;
            f != Field::Text
                && !seen[f as usize]
                && !labels[j + 1..].iter().any(|l| l.field == f)
                && plausible(f, raw_value(b, labels, j))
        })
        .unwrap_or(labels.len())
}

/// The byte range of each field's value, indexed by `Field as usize`.
fn field_values(b: &[u8]) -> [Option<(usize, usize)>; 8] {
    let labels = labels(b);
    let mut out = [None; 8];
    let mut seen = [false; 8];
    let mut k = 0;
    while k < labels.len() {
        let l = labels[k];
        if seen[l.field as usize] {
            // A repeated label is junk; its bytes end the previous value like any label.
            k += 1;
            continue;
        }
        seen[l.field as usize] = true;
        let next = if l.field == Field::Text {
            text_end(b, &labels, k, &seen)
        } else {
            k + 1
        };
        let mut end = labels.get(next).map_or(b.len(), |n| n.at);
        // `id:7;stat:…`, `id:7,stat:…`: a separator right before the next label is not part of
        // the value (with a space in between it would already be a token of its own).
        if l.field != Field::Text
            && end < b.len()
            && end > l.value
            && matches!(b[end - 1], b';' | b',' | b'|' | b'&')
        {
            end -= 1;
        }
        out[l.field as usize] = Some((l.value, end));
        k = next;
    }
    out
}

/// Lossy UTF-8, trimmed (whitespace and NUL padding) and cut to at most `max` characters.
/// Borrowed when the bytes are valid UTF-8 (the usual case: no allocation per field).
fn value(bytes: &[u8], max: usize) -> Cow<'_, str> {
    let pad = |c: char| c == '\0' || c.is_whitespace();
    let cut = |s: &str| -> usize { s.char_indices().nth(max).map_or(s.len(), |(i, _)| i) };
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(s) => {
            let s = s.trim_matches(pad);
            Cow::Borrowed(&s[..cut(s)])
        }
        Cow::Owned(s) => {
            let t = s.trim_matches(pad);
            Cow::Owned(t[..cut(t)].to_owned())
        }
    }
}

/// The first whitespace-separated token of a value, without control bytes (NUL padding) at its
/// ends: an id, a count, a date or a stat never contains a space, and what follows it is junk.
fn token(s: &str) -> &str {
    s.split_whitespace()
        .map(|t| t.trim_matches(char::is_control))
        .find(|t| !t.is_empty())
        .unwrap_or("")
}

/// A decimal count (`sub`, `dlvrd`, `err`): all ASCII digits, at most 9 of them.
fn decimal(s: &str) -> Option<u32> {
    let s = token(s);
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The text's fields, as read (before the TLVs are combined in).
#[derive(Default)]
struct TextFields {
    id: Option<String>,
    sub: Option<u32>,
    dlvrd: Option<u32>,
    submit_date: Option<ReceiptDate>,
    done_date: Option<ReceiptDate>,
    stat: Option<String>,
    err: Option<String>,
    text: Option<String>,
}

fn text_fields(text: &[u8]) -> TextFields {
    let ranges = field_values(text);
    let get = |f: Field| -> Option<Cow<'_, str>> {
        let (start, end) = ranges[f as usize]?;
        let max = if f == Field::Text {
            MAX_TEXT_LEN
        } else {
            MAX_FIELD_LEN
        };
        Some(value(text.get(start..end).unwrap_or_default(), max))
    };
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    TextFields {
        id: get(Field::Id)
            .and_then(|v| nonempty(token(&v)))
            .map(|id| truncate_id(&id)),
        sub: get(Field::Sub).and_then(|v| decimal(&v)),
        dlvrd: get(Field::Dlvrd).and_then(|v| decimal(&v)),
        submit_date: get(Field::SubmitDate).and_then(|v| ReceiptDate::parse(&v)),
        done_date: get(Field::DoneDate).and_then(|v| ReceiptDate::parse(&v)),
        stat: get(Field::Stat).and_then(|v| nonempty(token(&v))),
        err: get(Field::Err).and_then(|v| nonempty(token(&v))),
        text: get(Field::Text).and_then(|v| nonempty(&v)),
    }
}

/// Parses a delivery receipt from its text (`short_message` or `message_payload` decoded by its
/// `data_coding`, any bytes) and the TLVs the caller decoded. TLV values win over the text. Fails
/// only when no message id can be found anywhere; every other oddity gives `None` fields (or
/// `Stat::Unknown`).
pub fn parse_receipt(text: &[u8], tlvs: &ReceiptTlvs<'_>) -> Result<Receipt, ReceiptError> {
    let r = parse_receipt_fields(text, tlvs);
    if r.id.is_empty() {
        return Err(ReceiptError::NoId);
    }
    Ok(r)
}

/// What [`parse_receipt`] reads, also when no id was found (then `id` is empty): what the
/// delivery-report log keeps of a receipt that cannot be matched.
pub fn parse_receipt_fields(text: &[u8], tlvs: &ReceiptTlvs<'_>) -> Receipt {
    let f = text_fields(text);
    let tlv_id = tlvs
        .receipted_message_id
        .map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()))
        .filter(|s| !s.is_empty())
        .map(truncate_id);
    let id = tlv_id.clone().or_else(|| f.id.clone()).unwrap_or_default();

    let text_stat = f.stat.as_deref().map(Stat::from_text);
    // With no stat anywhere, `dlvrd:` (messages delivered) of 1 or more still says delivered;
    // a `message_state` of 0 (SMPP 5.0 SCHEDULED; Kannel's BUFFRED) says "not yet".
    let from_count = f.dlvrd.filter(|&n| n > 0).map(|_| Stat::Delivered);
    let scheduled = (tlvs.message_state == Some(0)).then_some(Stat::Enroute);
    let stat = tlvs
        .message_state
        .and_then(Stat::from_message_state)
        .or(text_stat)
        .or(from_count)
        .or(scheduled)
        .unwrap_or(Stat::Unknown);
    // The provider's own word when it is another spelling of the stat taken (BUFFRED for
    // ENROUTE, an unknown word for UNKNOWN), so the log shows what the SMSC said. A text stat
    // the TLV contradicts is not kept: the log would show a word that was not applied.
    let stat_text = f
        .stat
        .filter(|raw| Stat::from_text(raw) == stat && !raw.eq_ignore_ascii_case(stat.as_str()));

    let network_error = tlvs.network_error_code.map(|b| NetworkError {
        network_type: b[0],
        code: u16::from_be_bytes([b[1], b[2]]),
    });
    let err_code = network_error
        .map(|n| u32::from(n.code))
        .or_else(|| f.err.as_deref().and_then(decimal));

    Receipt {
        id,
        text_id: f.id,
        tlv_id,
        sub: f.sub,
        dlvrd: f.dlvrd,
        submit_date: f.submit_date,
        done_date: f.done_date,
        stat,
        stat_text,
        err: f.err,
        err_code,
        network_error,
        text: f.text,
    }
}

fn truncate_id(id: &str) -> String {
    id.chars().take(MAX_ID_LEN).collect()
}
