//! The one place that decides what an SMSC's `command_status` means for a message: sent, retry
//! later, slow down, or give up. Every other part of the session asks [`StatusClass::of`]; nothing
//! else compares status numbers.
//!
//! | status | hex | class | why |
//! |---|---|---|---|
//! | ESME_ROK | 0x00 | [`StatusClass::Ok`] | accepted |
//! | ESME_RTHROTTLED | 0x58 | [`StatusClass::Throttled`] | rate exceeded: pause the bind, message to the head of the line |
//! | ESME_RMSGQFUL | 0x14 | [`StatusClass::Throttled`] | SMSC queue full: same remedy as throttling |
//! | ESME_RSYSERR | 0x08 | [`StatusClass::Temporary`] | SMSC-side failure; retry with backoff |
//! | ESME_RX_T_APPN | 0x64 | [`StatusClass::Temporary`] | "temporary error" by definition |
//! | ESME_RINVBNDSTS | 0x04 | [`StatusClass::Rebind`] | the SMSC thinks we are not bound: rebind, then resend |
//! | anything else | | [`StatusClass::Permanent`] | invalid addresses, lengths, TLVs, unknown codes |
//!
//! This matches Kannel's `smpp_status_to_smscconn_failure_reason()`, which treats exactly 0x08,
//! 0x14, 0x58 and 0x64 as temporary (SMPP-FACTS §4), plus the bind-state case, which Kannel also
//! answers by reconnecting. Unknown and vendor-specific statuses are permanent unless documented
//! otherwise: retrying a status we do not understand risks a storm, failing it is visible.

/// What a response status means for the message it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// The SMSC accepted the message.
    Ok,
    /// The SMSC asks us to slow down: pause this bind with a growing backoff and put the message
    /// back at the head of the line.
    Throttled,
    /// A transient SMSC-side failure: hand the message back for a later retry.
    Temporary,
    /// The SMSC believes this bind is not in a state to send: hand the message back and rebind.
    Rebind,
    /// The message itself is rejected: fail it with the status name.
    Permanent,
}

/// ESME_RINVBNDSTS.
pub const RINVBNDSTS: u32 = 0x04;
/// ESME_RSYSERR.
pub const RSYSERR: u32 = 0x08;
/// ESME_RMSGQFUL.
pub const RMSGQFUL: u32 = 0x14;
/// ESME_RTHROTTLED.
pub const RTHROTTLED: u32 = 0x58;
/// ESME_RX_T_APPN.
pub const RX_T_APPN: u32 = 0x64;

impl StatusClass {
    /// Classifies a raw `command_status` (see the table in the module documentation).
    pub const fn of_code(code: u32) -> Self {
        match code {
            0 => StatusClass::Ok,
            RTHROTTLED | RMSGQFUL => StatusClass::Throttled,
            RSYSERR | RX_T_APPN => StatusClass::Temporary,
            RINVBNDSTS => StatusClass::Rebind,
            _ => StatusClass::Permanent,
        }
    }

    /// Classifies a typed status.
    pub fn of(status: crate::pdu::CommandStatus) -> Self {
        Self::of_code(status.0)
    }

    /// Whether the message goes back to the caller for another attempt.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            StatusClass::Throttled | StatusClass::Temporary | StatusClass::Rebind
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kannel_temporary_set_and_the_rest_permanent() {
        assert_eq!(StatusClass::of_code(0), StatusClass::Ok);
        for code in [0x58, 0x14] {
            assert_eq!(StatusClass::of_code(code), StatusClass::Throttled);
        }
        for code in [0x08, 0x64] {
            assert_eq!(StatusClass::of_code(code), StatusClass::Temporary);
        }
        assert_eq!(StatusClass::of_code(0x04), StatusClass::Rebind);
        for code in [
            0x01, 0x0A, 0x0B, 0x0E, 0x45, 0x50, 0x51, 0x65, 0x66, 0xFF, 0x400,
        ] {
            assert_eq!(
                StatusClass::of_code(code),
                StatusClass::Permanent,
                "{code:#x}"
            );
            assert!(!StatusClass::of_code(code).is_retryable());
        }
    }
}
