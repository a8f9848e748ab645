//! Delivery receipts: decoding the receipt text by `data_coding`, parsing it (SMPP 3.4 appendix
//! B and the real-world deviations in SMPP-FACTS §7.3), combining it with the receipt TLVs,
//! mapping `stat` to a final outcome, and normalizing SMSC message ids into the key under which
//! parts are stored and receipts matched.
//!
//! This module is pure: no tokio, no I/O, no clock, no store. The TLV values are handed in by the
//! caller as plain values (the session decodes the PDU), so this module does not depend on `pdu`;
//! it uses `text` (pure) for the character sets. Every function here accepts any input without
//! panicking and with work linear in its length: [`parse_receipt`] is the entry point for a fuzz
//! target.
//!
//! # Variants handled
//!
//! Each row has a case in `tests/receipt.rs` (the parser) and in `tests/receipt_wire.rs`
//! (deliver_sm over the SMPP wire to `smppd run`, checked through `query` and the
//! deliver_sm_resp status; the date forms there only as far as they must not disturb a receipt).
//!
//! | kind | example | how it is handled |
//! |---|---|---|
//! | appendix-B line | `id:0a1b sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:Hi` | every field read |
//! | ACCEPTD / TLV `message_state` 6 | `stat:ACCEPTD` | intermediate by default (never final, never delivered); with the SMSC's `acceptd_final = true` final with its own outcome [`Outcome::Accepted`] (state `accepted`, still not delivered); a later DELIVRD settles the message as delivered either way |
//! | other intermediate words | `stat:BUFFRED`, `ENROUTE`, `ACKED`, `SENT`, `SUBMITTED`, `PENDING` | [`Stat::Enroute`] (see [`INTERMEDIATE_WORDS`]): never final; the word is kept in `stat_text` |
//! | intermediate notification | esm_class 0x20 | never final, whatever the stat |
//! | unknown word | `stat:NOROUTE`, `stat:ERROR` | [`Stat::Unknown`], the word kept verbatim in `stat_text` and the log; final undeliverable (see [`final_outcome`]), never delivered |
//! | literal UNKNOWN / TLV 7 | `stat:UNKNOWN` | final undeliverable |
//! | long names, numbers | `stat:DELIVERED`, `stat:UNDELIVERABLE`, `stat:FAILED`, `stat:2` | the stat they name (`message_state` numbers 1–8); the word kept in `stat_text` |
//! | bytes before `id:` | `DLR: id:…`, `#id:…`, NULs then `id:…` | a label counts at any non-word boundary; `msgid:` is not `id:` |
//! | bytes after the last field | `… err:000 \0\0 junk` | values are their first token |
//! | fields in any order, `text:` not last | `stat:DELIVRD text:Hi id:7 sub:001` | `text:` ends at the next real field not seen yet (the last of its kind, with a value of its form) |
//! | `text:` holding colons or field words | `text:Meet at 10:30, id: 9 stat:ok` | stays text: a field already seen, or one repeated later, does not end it |
//! | label case | `Text:`, `TEXT:`, `Stat:`, `ID:` | case-insensitive |
//! | label spelling | `submitdate:`, `done_date:` | accepted |
//! | `err:` empty or missing; not numeric | `err: text:`, no `err:`, `err:21b` | `err` `None`; kept as text, `err_code` only when decimal |
//! | `sub:`/`dlvrd:` unpadded, missing, `dlvrd` > `sub` | `sub:1 dlvrd:3` | read as numbers, no relation assumed; never used to classify |
//! | dates of 10, 12, 14 digits; all zeros | `2501021530`, `250102153012`, `20250102153012`, `0000000000` | format by length; all zeros is no date |
//! | dates with a zone | `2501021530+0100`, `…+01:00`, `…Z`, `…-05`, `… UTC`, SMPP `250102153000004+` | converted to UTC; an unknown zone word (`CET`) leaves the date as written |
//! | ids: long decimal, 32 lowercase hex, UUID, alphanumeric with hyphens | `id:74e02ee1-4e2f-…` | kept whole (up to 64 characters); hyphens survive normalization; hex/decimal conversion only under the SMSC's `receipt_id` rule and only for ids of digits |
//! | id in another letter case or with leading zeros | `38601FA` for `38601fa`, `0059113978` | [`canonical_id`]: lowercase, leading zeros stripped |
//! | id in another base in the text | `id:0059113978` for `38601fa` | [`IdRule`] per SMSC; the TLV id is tried first |
//! | UCS-2 text | data_coding 8 | decoded before parsing ([`receipt_text`]) |
//! | Latin-1 text | data_coding 3 | decoded before parsing |
//! | GSM 7-bit | data_coding 0 unpacked; packed with the SMSC's `gsm_packed` | octets read as ASCII (GSM and ASCII agree on every receipt character; GSM-decoding would turn `_` into `§`); packed septets unpacked first |
//! | mislabelled coding | ASCII under data_coding 8; UTF-16BE under 0; octets from a `gsm_packed` SMSC | recognised by where the labels are |
//! | text in `message_payload` | `sm_length` 0 | read from the TLV (daemon) |
//! | TLV-only receipt | `receipted_message_id` + `message_state`, no text | correlated and classified from the TLVs alone |
//! | TLVs and text disagree | TLV `message_state` 2, `stat:BUFFRED` | the TLVs win |
//! | receipt TLVs with esm_class 0 | `receipted_message_id` on a plain deliver_sm | taken as a receipt (daemon): an MO never carries it |
//! | receipt marked as SME delivery acknowledgement | esm_class 0x08 | taken as a receipt (daemon), as Kannel does |
//! | no id anywhere | `DLR for your message: OK` | [`ReceiptError::NoId`] from [`parse_receipt`]; the daemon logs it unmatched (via [`parse_receipt_fields`]), counts it (`reason="no_id"`) and answers ESME_ROK |
//! | id no part has | `id:feedface0` | held unmatched in the log (matched if its submit_sm_resp comes later), counted (`reason="unknown_id"`), answered ESME_ROK |

mod coding;
mod id;
mod parse;

pub use coding::{ReceiptCoding, receipt_text};
pub use id::{IdRule, canonical_id, is_submit_key, receipt_keys, submit_key};
pub use parse::{ReceiptDate, ReceiptError, parse_receipt, parse_receipt_fields};

use std::fmt;

/// Longest id we keep, in bytes. `receipted_message_id` is a C-octet string of at most 65 octets
/// (64 characters); anything longer is truncated so a hostile SMSC cannot make us store junk.
pub const MAX_ID_LEN: usize = 64;

/// Stat words that say a message is still on its way (intermediate): ENROUTE itself, and what
/// SMSCs and aggregators write for "buffered / handed to the next hop / acknowledged by it / sent
/// on": Kannel treats ACKED, BUFFRED, BUFFERD and ENROUTE alike as "buffered" (and sends BUFFRED
/// with `message_state` 0 itself, SMPP 5.0's SCHEDULED); SUBMITTED, SENT, PENDING,
/// QUEUED and SCHEDULED come from aggregators' receipts. Read as [`Stat::Enroute`].
pub const INTERMEDIATE_WORDS: &[&str] = &[
    "ENROUTE",
    "EN_ROUTE",
    "BUFFRED",
    "BUFFERD",
    "BUFFERED",
    "ACKED",
    "ACK",
    "SENT",
    "SUBMITTED",
    "SUBMITD",
    "PENDING",
    "QUEUED",
    "SCHEDULED",
    "SCHEDLD",
];

/// The receipt `stat` (or TLV `message_state`, SMPP-FACTS §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    /// ENROUTE (1), and the other words for "still on its way" ([`INTERMEDIATE_WORDS`]); never
    /// final.
    Enroute,
    /// DELIVRD (2).
    Delivered,
    /// EXPIRED (3).
    Expired,
    /// DELETED (4).
    Deleted,
    /// UNDELIV (5).
    Undeliverable,
    /// ACCEPTD (6): final in SMPP 3.4 ("manually accepted"), "accepted by the network / next
    /// hop" at most real SMSCs and aggregators (see [`AcceptedIs`]). Never delivered.
    Accepted,
    /// UNKNOWN (7), and every stat text we do not recognise (final, undeliverable: see
    /// [`final_outcome`]).
    Unknown,
    /// REJECTD (8).
    Rejected,
}

impl Stat {
    /// The stat text as SMSCs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stat::Enroute => "ENROUTE",
            Stat::Delivered => "DELIVRD",
            Stat::Expired => "EXPIRED",
            Stat::Deleted => "DELETED",
            Stat::Undeliverable => "UNDELIV",
            Stat::Accepted => "ACCEPTD",
            Stat::Unknown => "UNKNOWN",
            Stat::Rejected => "REJECTD",
        }
    }

    /// Parses a `stat:` value case-insensitively. Besides the SMPP 3.4 words, the long
    /// `message_state` names (and FAILED for UNDELIV) and the `message_state` numbers 1–8, the
    /// words providers use for "still on its way" ([`INTERMEDIATE_WORDS`]: BUFFRED, ACKED, SENT,
    /// SUBMITTED, …) are [`Stat::Enroute`]: never final, never delivered. Any other word is
    /// [`Stat::Unknown`] (the parser keeps the word itself in `stat_text`).
    pub fn from_text(text: &str) -> Stat {
        let t = text.trim();
        let eq = |s: &str| t.eq_ignore_ascii_case(s);
        if eq("DELIVRD") || eq("DELIVERED") {
            Stat::Delivered
        } else if eq("EXPIRED") {
            Stat::Expired
        } else if eq("DELETED") {
            Stat::Deleted
        } else if eq("UNDELIV") || eq("UNDELIVERABLE") || eq("UNDELIVERED") || eq("FAILED") {
            Stat::Undeliverable
        } else if eq("ACCEPTD") || eq("ACCEPTED") {
            Stat::Accepted
        } else if eq("REJECTD") || eq("REJECTED") {
            Stat::Rejected
        } else if INTERMEDIATE_WORDS.iter().any(|w| eq(w)) {
            Stat::Enroute
        } else if let Some(s) = t.parse::<u8>().ok().and_then(Stat::from_message_state) {
            // Some SMSCs write the message_state number (`stat:2`) instead of the word.
            s
        } else {
            Stat::Unknown
        }
    }

    /// Maps the `message_state` TLV value; `None` for values SMPP 3.4 does not define, so the
    /// caller falls back to the text.
    pub fn from_message_state(value: u8) -> Option<Stat> {
        Some(match value {
            1 => Stat::Enroute,
            2 => Stat::Delivered,
            3 => Stat::Expired,
            4 => Stat::Deleted,
            5 => Stat::Undeliverable,
            6 => Stat::Accepted,
            7 => Stat::Unknown,
            8 => Stat::Rejected,
            _ => return None,
        })
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `ACCEPTD` means for one provider (SMPP-FACTS §7.3; SMSC setting `acceptd_final`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptedIs {
    /// ACCEPTD is final with its own outcome, [`Outcome::Accepted`] (the SMPP 3.4 meaning:
    /// manually accepted, e.g. by customer service). Still not "delivered".
    Final,
    /// ACCEPTD is an intermediate notification ("accepted by the network / next hop", as real
    /// SMSCs and aggregators use it); a later receipt carries the outcome. The default.
    #[default]
    Intermediate,
}

/// The final outcome a receipt gives one message part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Delivered to the handset (DELIVRD).
    Delivered,
    /// ACCEPTD at an SMSC where it is final ([`AcceptedIs::Final`]): final, not delivered.
    Accepted,
    /// The SMSC gave up when the validity period ran out (EXPIRED).
    Expired,
    /// The network could not deliver it (UNDELIV, DELETED, UNKNOWN and unknown words).
    Undeliverable,
    /// The SMSC or the network refused it (REJECTD).
    Rejected,
}

/// The final outcome a stat gives a part, or `None` when the receipt is intermediate (ENROUTE
/// and its synonyms, or ACCEPTD unless the SMSC uses it as final).
///
/// A word we do not know is final and undeliverable, as the literal UNKNOWN is (SMPP-FACTS §7.3
/// maps unknown words to UNKNOWN; Kannel makes anything it does not know a failure): receipts
/// are sent for final states, so an unknown word is far more often a provider's failure word
/// (`ERROR`, `BLOCKED`, `NOROUTE`) than a progress report, and leaving the message
/// `submitted` would hide it until `receipt_wait`. It is never delivered, and a later receipt
/// (a DELIVRD) still corrects it. Known progress words are in [`INTERMEDIATE_WORDS`].
pub fn final_outcome(stat: Stat, accepted: AcceptedIs) -> Option<Outcome> {
    match stat {
        Stat::Enroute => None,
        Stat::Accepted => match accepted {
            AcceptedIs::Final => Some(Outcome::Accepted),
            AcceptedIs::Intermediate => None,
        },
        Stat::Delivered => Some(Outcome::Delivered),
        Stat::Expired => Some(Outcome::Expired),
        Stat::Deleted | Stat::Undeliverable | Stat::Unknown => Some(Outcome::Undeliverable),
        Stat::Rejected => Some(Outcome::Rejected),
    }
}

/// The receipt TLVs (SMPP-FACTS §6), as plain values decoded by the caller. Present values are
/// preferred over the text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiptTlvs<'a> {
    /// `receipted_message_id` (0x001E), without its NUL.
    pub receipted_message_id: Option<&'a str>,
    /// `message_state` (0x0427).
    pub message_state: Option<u8>,
    /// `network_error_code` (0x0423): network type, then a big-endian 16-bit code.
    pub network_error_code: Option<[u8; 3]>,
}

/// The `network_error_code` TLV, split into its two fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkError {
    /// 1 ANSI-136, 2 IS-95, 3 GSM, … (SMPP 3.4 §5.3.2.31).
    pub network_type: u8,
    /// The network-specific error code.
    pub code: u16,
}

/// A delivery receipt: the text's fields combined with the TLVs (TLVs win).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The SMSC message id being receipted: the TLV when present, else the text's `id:`.
    pub id: String,
    /// The `id:` from the text, if any (may be in another base than the TLV, see [`IdRule`]).
    pub text_id: Option<String>,
    /// `receipted_message_id`, if present and not empty.
    pub tlv_id: Option<String>,
    /// `sub:` (messages originally submitted), when numeric.
    pub sub: Option<u32>,
    /// `dlvrd:` (messages delivered), when numeric.
    pub dlvrd: Option<u32>,
    /// `submit date:`; `None` when absent, all zeros or malformed.
    pub submit_date: Option<ReceiptDate>,
    /// `done date:`; `None` when absent, all zeros or malformed.
    pub done_date: Option<ReceiptDate>,
    /// The stat: TLV `message_state` when present and valid, else the text's `stat:`, else UNKNOWN.
    pub stat: Stat,
    /// The raw `stat:` word when it is not the canonical spelling of `stat` (an unknown word such
    /// as `NOROUTE`, or a synonym such as `BUFFRED`), for the log.
    pub stat_text: Option<String>,
    /// The `err:` text as given (not necessarily numeric: `21b` exists).
    pub err: Option<String>,
    /// The error code: the TLV's code when present, else `err:` when it is decimal.
    pub err_code: Option<u32>,
    /// `network_error_code` TLV, if present.
    pub network_error: Option<NetworkError>,
    /// `text:` (the first characters of the original message), if present.
    pub text: Option<String>,
}
