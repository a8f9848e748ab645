//! The one error type of the PDU layer. Each variant names the field (or TLV) and the problem, and
//! [`PduError::command_status`] maps it to the status a peer should receive in a `generic_nack` or
//! a response. This module must never format or allocate on construction: errors are built on the
//! hot decode path from `&'static str` names and integers only.

use super::types::{CommandStatus, ValueError};

/// A PDU that cannot be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    /// `command_length` below 16, above the configured maximum, or not the frame's size.
    #[error("command_length {length}: {problem}")]
    CommandLength { length: u64, problem: &'static str },
    /// A `command_id` SMPP 3.4 does not define.
    #[error("command_id 0x{0:08x}: not an SMPP 3.4 command")]
    UnknownCommandId(u32),
    /// The PDU ends inside a mandatory field.
    #[error("{field}: the PDU ends before this field is complete")]
    Truncated { field: &'static str },
    /// A C-octet string without its NUL within the field's maximum.
    #[error("{field}: no NUL terminator within {max} octets (maximum, NUL included)")]
    CStringTooLong { field: &'static str, max: usize },
    /// A field value that breaks the field's rules (size, NUL, range).
    #[error("{field}: {problem}")]
    Field {
        field: &'static str,
        problem: ValueError,
    },
    /// Octets after the last field of a PDU that carries no optional parameters.
    #[error("{command}: {count} unexpected octets after the last field")]
    TrailingBytes { command: &'static str, count: usize },
    /// `sm_length` above 254.
    #[error("sm_length: {0} is above the maximum 254 (use message_payload)")]
    SmLength(usize),
    /// `short_message` and `message_payload` both carry data.
    #[error("short_message: sm_length is {0} but the message_payload TLV is also present")]
    ShortMessageWithPayload(usize),
    /// The TLV section does not split into whole tag/length/value triples.
    #[error("tlvs: {problem} at octet {offset} of the optional parameters")]
    TlvStream {
        offset: usize,
        problem: &'static str,
    },
    /// A typed TLV whose length is not the one its type allows.
    #[error("{tlv}: length {length} is invalid (expected {expected})")]
    TlvLength {
        tlv: &'static str,
        length: usize,
        expected: &'static str,
    },
    /// A typed TLV whose value is invalid.
    #[error("{tlv}: {problem}")]
    TlvValue {
        tlv: &'static str,
        problem: &'static str,
    },
    /// `number_of_dests` of submit_multi is 0 or above 254.
    #[error("number_of_dests: {0} is not within 1..=254")]
    NumberOfDests(usize),
    /// `no_unsuccess` of submit_multi_resp above 254.
    #[error("no_unsuccess: {0} is above 254")]
    NoUnsuccess(usize),
    /// `dest_flag` of submit_multi is neither 1 (SME address) nor 2 (distribution list).
    #[error("dest_flag: {0} is neither 1 (SME address) nor 2 (distribution list)")]
    DestFlag(u8),
}

impl PduError {
    /// The `command_status` a peer should receive for this problem.
    pub fn command_status(&self) -> CommandStatus {
        match self {
            Self::CommandLength { .. } | Self::Truncated { .. } | Self::TrailingBytes { .. } => {
                CommandStatus::ESME_RINVCMDLEN
            }
            Self::UnknownCommandId(_) => CommandStatus::ESME_RINVCMDID,
            Self::CStringTooLong { field, .. } | Self::Field { field, .. } => field_status(field),
            Self::SmLength(_) | Self::ShortMessageWithPayload(_) => CommandStatus::ESME_RINVMSGLEN,
            Self::TlvStream { .. } => CommandStatus::ESME_RINVOPTPARSTREAM,
            Self::TlvLength { .. } => CommandStatus::ESME_RINVPARLEN,
            Self::TlvValue { .. } => CommandStatus::ESME_RINVOPTPARAMVAL,
            Self::NumberOfDests(_) => CommandStatus::ESME_RINVNUMDESTS,
            Self::NoUnsuccess(_) => CommandStatus::ESME_RINVCMDLEN,
            Self::DestFlag(_) => CommandStatus::ESME_RINVDESTFLAG,
        }
    }

    /// The field or TLV the error is about, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Truncated { field }
            | Self::CStringTooLong { field, .. }
            | Self::Field { field, .. } => Some(field),
            Self::TlvLength { tlv, .. } | Self::TlvValue { tlv, .. } => Some(tlv),
            Self::SmLength(_) => Some("sm_length"),
            Self::ShortMessageWithPayload(_) => Some("short_message"),
            Self::NumberOfDests(_) => Some("number_of_dests"),
            Self::NoUnsuccess(_) => Some("no_unsuccess"),
            Self::DestFlag(_) => Some("dest_flag"),
            Self::CommandLength { .. } => Some("command_length"),
            Self::UnknownCommandId(_) => Some("command_id"),
            Self::TrailingBytes { .. } | Self::TlvStream { .. } => None,
        }
    }
}

/// The status that names a bad value of `field` (SMPP-FACTS §4); fields without their own status
/// get ESME_RINVCMDLEN when malformed, since a bad string there breaks the PDU's layout.
fn field_status(field: &str) -> CommandStatus {
    match field {
        "service_type" => CommandStatus::ESME_RINVSERTYP,
        "source_addr" | "esme_addr" => CommandStatus::ESME_RINVSRCADR,
        "destination_addr" => CommandStatus::ESME_RINVDSTADR,
        "message_id" => CommandStatus::ESME_RINVMSGID,
        "system_id" => CommandStatus::ESME_RINVSYSID,
        "password" => CommandStatus::ESME_RINVPASWD,
        "system_type" => CommandStatus::ESME_RINVSYSTYP,
        "schedule_delivery_time" => CommandStatus::ESME_RINVSCHED,
        "validity_period" => CommandStatus::ESME_RINVEXPIRY,
        "dl_name" => CommandStatus::ESME_RINVDLNAME,
        "short_message" | "sm_length" => CommandStatus::ESME_RINVMSGLEN,
        _ => CommandStatus::ESME_RINVCMDLEN,
    }
}
