//! SMSC message-id normalization: the key under which a part's SMSC id is stored and receipts are
//! matched.
//!
//! The key is the canonical form of the id as `submit_sm_resp` returned it (and as
//! `receipted_message_id` carries it): trimmed, lowercase, leading zeros removed. The receipt
//! *text* may carry the id in another base (SMPP-FACTS §7.3: `id:0059113978` for
//! `receipted_message_id` `38601fa`); the per-SMSC [`IdRule`] says how to convert it back.

use super::{MAX_ID_LEN, Receipt};

/// How an SMSC writes ids in receipt text compared to `submit_sm_resp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum IdRule {
    /// The same form everywhere (after case and leading-zero normalization).
    #[default]
    Same,
    /// `submit_sm_resp` gives a hex id; the receipt text carries it in decimal.
    HexToDec,
    /// `submit_sm_resp` gives a decimal id; the receipt text carries it in hex.
    DecToHex,
}

impl IdRule {
    /// Parses the config spelling (`same`, `hex_to_dec`, `dec_to_hex`).
    pub fn from_name(name: &str) -> Option<IdRule> {
        match name {
            "same" => Some(IdRule::Same),
            "hex_to_dec" => Some(IdRule::HexToDec),
            "dec_to_hex" => Some(IdRule::DecToHex),
            _ => None,
        }
    }

    /// The config spelling.
    pub fn name(self) -> &'static str {
        match self {
            IdRule::Same => "same",
            IdRule::HexToDec => "hex_to_dec",
            IdRule::DecToHex => "dec_to_hex",
        }
    }
}

/// Trimmed, ASCII-lowercased, leading zeros removed (an all-zero id becomes `0`), at most
/// [`MAX_ID_LEN`] characters. A fixed point: `canonical_id(&canonical_id(x)) == canonical_id(x)`,
/// so a stored key and a key computed again from it always match.
pub fn canonical_id(id: &str) -> String {
    canonical_span(id).to_ascii_lowercase()
}

/// The part of `id` its canonical form is made of (before lowercasing, which changes no
/// length and no padding): shared by [`canonical_id`] and [`is_submit_key`] so they agree.
fn canonical_span(id: &str) -> &str {
    let pad = |c: char| c == '\0' || c.is_whitespace();
    let trimmed = id.trim_matches(pad);
    // Zeros and padding may interleave ("0 7"): strip both, or the result would start with
    // padding and change when normalized again.
    let stripped = trimmed.trim_start_matches(|c: char| c == '0' || pad(c));
    let stripped = if stripped.is_empty() && !trimmed.is_empty() {
        "0"
    } else {
        stripped
    };
    let cut = match stripped.char_indices().nth(MAX_ID_LEN) {
        Some((end, _)) => &stripped[..end],
        None => stripped,
    };
    // The cut at MAX_ID_LEN may end in padding.
    cut.trim_end_matches(pad)
}

/// The key for the id an SMSC returned in `submit_sm_resp`.
pub fn submit_key(_rule: IdRule, smsc_id: &str) -> String {
    // The key *is* the submit form; the rule only tells how receipt text differs from it.
    canonical_id(smsc_id)
}

/// Whether `key` is `submit_key(rule, smsc_id)`, without building that key: the store's
/// receipt match asks it of every part the key's hash finds.
pub fn is_submit_key(_rule: IdRule, smsc_id: &str, key: &str) -> bool {
    let span = canonical_span(smsc_id);
    // ASCII lowercasing maps bytes one to one (UTF-8 bytes of other characters are >= 0x80
    // and unchanged), so comparing byte by byte is comparing with `canonical_id`.
    span.len() == key.len()
        && span
            .bytes()
            .zip(key.bytes())
            .all(|(a, b)| a.to_ascii_lowercase() == b)
}

fn dec_to_hex(s: &str) -> Option<String> {
    let s = s.trim();
    // u128::MAX has 39 digits (a 32-digit hex id can need all of them); parse() refuses
    // what overflows.
    if s.is_empty() || s.len() > 39 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse::<u128>().ok().map(|v| format!("{v:x}"))
}

fn hex_to_dec(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 32 {
        return None;
    }
    if digits.is_empty() {
        return Some("0".to_string());
    }
    u128::from_str_radix(digits, 16).ok().map(|v| v.to_string())
}

/// The keys to try, best first, for a receipt from an SMSC with `rule`: the TLV id as is, then
/// the text id converted back to the submit form. At most two, without repeats.
pub fn receipt_keys(rule: IdRule, receipt: &Receipt) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Some(tlv) = &receipt.tlv_id {
        keys.push(canonical_id(tlv));
    }
    if let Some(text) = &receipt.text_id {
        let converted = match rule {
            IdRule::Same => None,
            IdRule::HexToDec => dec_to_hex(text),
            IdRule::DecToHex => hex_to_dec(text),
        };
        let key = canonical_id(converted.as_deref().unwrap_or(text));
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        keys.push(canonical_id(&receipt.id));
    }
    keys
}
