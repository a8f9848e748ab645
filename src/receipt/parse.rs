//! The receipt-text scanner. Works on bytes (receipts are ASCII-compatible, but a hostile or
//! broken SMSC may send anything), finds the known labels case-insensitively at word starts, and
//! takes each value up to the next label. `text:` runs to the end, so labels inside the quoted
//! message text are not mistaken for fields.

use super::{MAX_ID_LEN, NetworkError, Receipt, ReceiptTlvs, Stat};
use std::fmt;

/// Longest `text:` value we keep (the spec says 20 characters; some SMSCs send more).
const MAX_TEXT_LEN: usize = 160;
/// Longest value of any other field we keep.
const MAX_FIELD_LEN: usize = 64;

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
    /// Parses the digits of a receipt date, choosing the format by length (10, 12 or 14).
    /// `None` for all-zero dates, other lengths, non-digits and out-of-range fields.
    pub fn parse(s: &str) -> Option<ReceiptDate> {
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

/// Lossy UTF-8, trimmed and cut to at most `max` characters. Borrowed when the bytes are
/// valid UTF-8 (the usual case: no allocation per field).
fn value(bytes: &[u8], max: usize) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let cut = |s: &str| -> usize { s.char_indices().nth(max).map_or(s.len(), |(i, _)| i) };
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(s) => {
            let s = s.trim();
            Cow::Borrowed(&s[..cut(s)])
        }
        Cow::Owned(s) => {
            let t = s.trim();
            Cow::Owned(t[..cut(t)].to_owned())
        }
    }
}

/// The first whitespace-separated token of a value (an id or a date never contains spaces; a
/// trailing junk word after it must not become part of it).
fn first_token(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

/// A decimal count (`sub`, `dlvrd`, `err`): all ASCII digits, at most 9 of them.
fn decimal(s: &str) -> Option<u32> {
    let s = first_token(s);
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Finds every label in the text. Stops at `text:` (the rest is the message's own text).
fn scan(b: &[u8]) -> Vec<(Field, usize, usize)> {
    // At most one entry per label kind is useful; bound the list so a text of a thousand `id:`
    // labels does not allocate a thousand entries.
    let mut found: Vec<(Field, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() && found.len() < 32 {
        let at_word_start = i == 0 || b[i - 1].is_ascii_whitespace();
        if at_word_start && let Some((field, len)) = label_at(b, i) {
            found.push((field, i, i + len));
            i += len;
            if field == Field::Text {
                break;
            }
            continue;
        }
        i += 1;
    }
    found
}

/// Parses a delivery receipt from its text (`short_message` or `message_payload`, any bytes) and
/// the TLVs the caller decoded. TLV values win over the text. Fails only when no message id can
/// be found anywhere; every other oddity gives `None` fields (or `Stat::Unknown`).
pub fn parse_receipt(text: &[u8], tlvs: &ReceiptTlvs<'_>) -> Result<Receipt, ReceiptError> {
    let found = scan(text);
    let mut text_id = None;
    let mut sub = None;
    let mut dlvrd = None;
    let mut submit_date = None;
    let mut done_date = None;
    let mut text_stat = None;
    let mut err = None;
    let mut body = None;
    for (k, &(field, _, start)) in found.iter().enumerate() {
        let end = found.get(k + 1).map_or(text.len(), |next| next.1);
        let raw = text.get(start..end).unwrap_or_default();
        let max = if field == Field::Text {
            MAX_TEXT_LEN
        } else {
            MAX_FIELD_LEN
        };
        let v = value(raw, max);
        // The first occurrence of a field wins; a repeated label is junk.
        match field {
            Field::Id if text_id.is_none() => {
                // NULs are padding, as in the TLV: an id of only NULs is no id (its key would
                // be empty and could match any part whose SMSC returned an empty id).
                let id = first_token(&v).trim_matches('\0');
                if !id.is_empty() {
                    text_id = Some(truncate_id(id));
                }
            }
            Field::Sub if sub.is_none() => sub = Some(decimal(&v)),
            Field::Dlvrd if dlvrd.is_none() => dlvrd = Some(decimal(&v)),
            Field::SubmitDate if submit_date.is_none() => {
                submit_date = Some(ReceiptDate::parse(first_token(&v)))
            }
            Field::DoneDate if done_date.is_none() => {
                done_date = Some(ReceiptDate::parse(first_token(&v)))
            }
            Field::Stat if text_stat.is_none() => text_stat = Some(first_token(&v).to_string()),
            Field::Err if err.is_none() => {
                let e = first_token(&v);
                err = Some((!e.is_empty()).then(|| e.to_string()));
            }
            Field::Text if body.is_none() => body = Some(v.into_owned()),
            _ => {}
        }
    }

    let tlv_id = tlvs
        .receipted_message_id
        .map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()))
        .filter(|s| !s.is_empty())
        .map(truncate_id);
    let id = tlv_id
        .clone()
        .or_else(|| text_id.clone())
        .ok_or(ReceiptError::NoId)?;

    let parsed_text_stat = text_stat.as_deref().map(Stat::from_text);
    let stat = tlvs
        .message_state
        .and_then(Stat::from_message_state)
        .or(parsed_text_stat)
        .unwrap_or(Stat::Unknown);
    // Keep the provider's own word when it was not one we know, so the log shows it.
    let stat_text = match (&text_stat, parsed_text_stat) {
        (Some(raw), Some(Stat::Unknown))
            if !raw.eq_ignore_ascii_case("UNKNOWN") && !raw.is_empty() =>
        {
            Some(raw.clone())
        }
        _ => None,
    };

    let network_error = tlvs.network_error_code.map(|b| NetworkError {
        network_type: b[0],
        code: u16::from_be_bytes([b[1], b[2]]),
    });
    let err = err.flatten();
    let err_code = network_error
        .map(|n| u32::from(n.code))
        .or_else(|| err.as_deref().and_then(decimal));

    Ok(Receipt {
        id,
        text_id,
        tlv_id,
        sub: sub.flatten(),
        dlvrd: dlvrd.flatten(),
        submit_date: submit_date.flatten(),
        done_date: done_date.flatten(),
        stat,
        stat_text,
        err,
        err_code,
        network_error,
        text: body.filter(|t| !t.is_empty()),
    })
}

fn truncate_id(id: &str) -> String {
    id.chars().take(MAX_ID_LEN).collect()
}
