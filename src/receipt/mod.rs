//! Delivery receipts: parsing the receipt text (SMPP 3.4 appendix B and the real-world deviations
//! in SMPP-FACTS §7.3), combining it with the receipt TLVs, mapping `stat` to a final outcome, and
//! normalizing SMSC message ids into the key under which parts are stored and receipts matched.
//!
//! This module is pure: no tokio, no I/O, no clock, no store. The TLV values are handed in by the
//! caller as plain values (the session decodes the PDU), so this module does not depend on `pdu`.
//! Every function here accepts any input without panicking and with work linear in its length:
//! [`parse_receipt`] is the entry point for a fuzz target.

mod id;
mod parse;

pub use id::{IdRule, canonical_id, receipt_keys, submit_key};
pub use parse::{ReceiptDate, ReceiptError, parse_receipt};

use std::fmt;

/// Longest id we keep, in bytes. `receipted_message_id` is a C-octet string of at most 65 octets
/// (64 characters); anything longer is truncated so a hostile SMSC cannot make us store junk.
pub const MAX_ID_LEN: usize = 64;

/// The receipt `stat` (or TLV `message_state`, SMPP-FACTS §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    /// ENROUTE (1): the message is still on its way; never final.
    Enroute,
    /// DELIVRD (2).
    Delivered,
    /// EXPIRED (3).
    Expired,
    /// DELETED (4).
    Deleted,
    /// UNDELIV (5).
    Undeliverable,
    /// ACCEPTD (6): final in SMPP 3.4, "accepted by the next hop" at some providers.
    Accepted,
    /// UNKNOWN (7), and every stat text we do not recognise.
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

    /// Parses a `stat:` value case-insensitively; also accepts the long `message_state` names.
    /// Anything else (providers invent states such as `SUBMITTED`) is [`Stat::Unknown`].
    pub fn from_text(text: &str) -> Stat {
        let t = text.trim();
        let eq = |s: &str| t.eq_ignore_ascii_case(s);
        if eq("DELIVRD") || eq("DELIVERED") {
            Stat::Delivered
        } else if eq("EXPIRED") {
            Stat::Expired
        } else if eq("DELETED") {
            Stat::Deleted
        } else if eq("UNDELIV") || eq("UNDELIVERABLE") || eq("UNDELIVERED") {
            Stat::Undeliverable
        } else if eq("ACCEPTD") || eq("ACCEPTED") {
            Stat::Accepted
        } else if eq("REJECTD") || eq("REJECTED") {
            Stat::Rejected
        } else if eq("ENROUTE") {
            Stat::Enroute
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

/// What `ACCEPTD` means for one provider (SMPP-FACTS §7.3): final (SMPP 3.4's "manually accepted")
/// or an intermediate "accepted by the next hop".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptedIs {
    /// ACCEPTD is final and counts as delivered (the SMPP 3.4 meaning).
    #[default]
    Final,
    /// ACCEPTD is an intermediate notification; a later receipt carries the outcome.
    Intermediate,
}

/// The final outcome a receipt gives one message part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Delivered to the handset (DELIVRD, or ACCEPTD when it is final).
    Delivered,
    /// The SMSC gave up when the validity period ran out (EXPIRED).
    Expired,
    /// The network could not deliver it (UNDELIV, DELETED, UNKNOWN).
    Undeliverable,
    /// The SMSC or the network refused it (REJECTD).
    Rejected,
}

/// The final outcome a stat gives a part, or `None` when the receipt is intermediate (ENROUTE, or
/// ACCEPTD at a provider that uses it for "accepted by the next hop").
pub fn final_outcome(stat: Stat, accepted: AcceptedIs) -> Option<Outcome> {
    match stat {
        Stat::Enroute => None,
        Stat::Accepted => match accepted {
            AcceptedIs::Final => Some(Outcome::Delivered),
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
    /// The raw `stat:` text when it was not one we know (e.g. `SUBMITTED`), for the log.
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
