//! Field types of SMPP 3.4 PDUs: command ids, command statuses, length-bounded C-octet strings,
//! octet strings, addresses and the one-octet flag fields (`esm_class`, `registered_delivery`,
//! `data_coding`, TON, NPI, `message_state`).
//!
//! Every type here keeps its wire invariant by construction (a `COctetString<16>` can never hold
//! 16 octets or a NUL), so encoding a value built from these types cannot produce an invalid field.
//! Values hold `Bytes` so that a decoded PDU shares the frame's buffer instead of copying fields.
//! This module must never allocate per field on decode or know about sockets.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

/// A `command_id`. Open: any `u32` can be represented, the associated constants name the SMPP 3.4
/// commands (SMPP-FACTS §2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u32);

impl CommandId {
    pub const GENERIC_NACK: Self = Self(0x8000_0000);
    pub const BIND_RECEIVER: Self = Self(0x0000_0001);
    pub const BIND_RECEIVER_RESP: Self = Self(0x8000_0001);
    pub const BIND_TRANSMITTER: Self = Self(0x0000_0002);
    pub const BIND_TRANSMITTER_RESP: Self = Self(0x8000_0002);
    pub const QUERY_SM: Self = Self(0x0000_0003);
    pub const QUERY_SM_RESP: Self = Self(0x8000_0003);
    pub const SUBMIT_SM: Self = Self(0x0000_0004);
    pub const SUBMIT_SM_RESP: Self = Self(0x8000_0004);
    pub const DELIVER_SM: Self = Self(0x0000_0005);
    pub const DELIVER_SM_RESP: Self = Self(0x8000_0005);
    pub const UNBIND: Self = Self(0x0000_0006);
    pub const UNBIND_RESP: Self = Self(0x8000_0006);
    pub const REPLACE_SM: Self = Self(0x0000_0007);
    pub const REPLACE_SM_RESP: Self = Self(0x8000_0007);
    pub const CANCEL_SM: Self = Self(0x0000_0008);
    pub const CANCEL_SM_RESP: Self = Self(0x8000_0008);
    pub const BIND_TRANSCEIVER: Self = Self(0x0000_0009);
    pub const BIND_TRANSCEIVER_RESP: Self = Self(0x8000_0009);
    pub const OUTBIND: Self = Self(0x0000_000B);
    pub const ENQUIRE_LINK: Self = Self(0x0000_0015);
    pub const ENQUIRE_LINK_RESP: Self = Self(0x8000_0015);
    pub const SUBMIT_MULTI: Self = Self(0x0000_0021);
    pub const SUBMIT_MULTI_RESP: Self = Self(0x8000_0021);
    pub const ALERT_NOTIFICATION: Self = Self(0x0000_0102);
    pub const DATA_SM: Self = Self(0x0000_0103);
    pub const DATA_SM_RESP: Self = Self(0x8000_0103);

    /// Every SMPP 3.4 command with its name, in id order.
    pub const ALL: [(Self, &'static str); 27] = [
        (Self::BIND_RECEIVER, "bind_receiver"),
        (Self::BIND_TRANSMITTER, "bind_transmitter"),
        (Self::QUERY_SM, "query_sm"),
        (Self::SUBMIT_SM, "submit_sm"),
        (Self::DELIVER_SM, "deliver_sm"),
        (Self::UNBIND, "unbind"),
        (Self::REPLACE_SM, "replace_sm"),
        (Self::CANCEL_SM, "cancel_sm"),
        (Self::BIND_TRANSCEIVER, "bind_transceiver"),
        (Self::OUTBIND, "outbind"),
        (Self::ENQUIRE_LINK, "enquire_link"),
        (Self::SUBMIT_MULTI, "submit_multi"),
        (Self::ALERT_NOTIFICATION, "alert_notification"),
        (Self::DATA_SM, "data_sm"),
        (Self::GENERIC_NACK, "generic_nack"),
        (Self::BIND_RECEIVER_RESP, "bind_receiver_resp"),
        (Self::BIND_TRANSMITTER_RESP, "bind_transmitter_resp"),
        (Self::QUERY_SM_RESP, "query_sm_resp"),
        (Self::SUBMIT_SM_RESP, "submit_sm_resp"),
        (Self::DELIVER_SM_RESP, "deliver_sm_resp"),
        (Self::UNBIND_RESP, "unbind_resp"),
        (Self::REPLACE_SM_RESP, "replace_sm_resp"),
        (Self::CANCEL_SM_RESP, "cancel_sm_resp"),
        (Self::BIND_TRANSCEIVER_RESP, "bind_transceiver_resp"),
        (Self::ENQUIRE_LINK_RESP, "enquire_link_resp"),
        (Self::SUBMIT_MULTI_RESP, "submit_multi_resp"),
        (Self::DATA_SM_RESP, "data_sm_resp"),
    ];

    /// The SMPP name (`"submit_sm"`), or `None` for an id SMPP 3.4 does not define.
    pub fn name(self) -> Option<&'static str> {
        Self::ALL
            .iter()
            .find(|(id, _)| *id == self)
            .map(|(_, n)| *n)
    }

    /// The id for an SMPP name (`"submit_sm"` → `SUBMIT_SM`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| *id)
    }

    /// Bit 31 marks a response.
    pub fn is_response(self) -> bool {
        self.0 & 0x8000_0000 != 0
    }

    /// The id of the response to this request (`resp_id = req_id | 0x80000000`).
    pub fn response(self) -> Self {
        Self(self.0 | 0x8000_0000)
    }
}

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "CommandId(0x{:08x})", self.0),
        }
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:08x}", self.0),
        }
    }
}

macro_rules! statuses {
    ($($name:ident = $value:literal,)*) => {
        impl CommandStatus {
            $(pub const $name: Self = Self($value);)*

            /// Every named status of SMPP-FACTS §4, in value order.
            pub const ALL: &'static [(Self, &'static str)] = &[$((Self::$name, stringify!($name)),)*];

            /// The SMPP name (`"ESME_RTHROTTLED"`), or `None` for a value SMPP 3.4 does not name.
            pub fn known_name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

/// A `command_status`. Open: vendor-specific values (0x0400–0x04FF) and reserved ones are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CommandStatus(pub u32);

statuses! {
    ESME_ROK = 0x0000_0000,
    ESME_RINVMSGLEN = 0x0000_0001,
    ESME_RINVCMDLEN = 0x0000_0002,
    ESME_RINVCMDID = 0x0000_0003,
    ESME_RINVBNDSTS = 0x0000_0004,
    ESME_RALYBND = 0x0000_0005,
    ESME_RINVPRTFLG = 0x0000_0006,
    ESME_RINVREGDLVFLG = 0x0000_0007,
    ESME_RSYSERR = 0x0000_0008,
    ESME_RINVSRCADR = 0x0000_000A,
    ESME_RINVDSTADR = 0x0000_000B,
    ESME_RINVMSGID = 0x0000_000C,
    ESME_RBINDFAIL = 0x0000_000D,
    ESME_RINVPASWD = 0x0000_000E,
    ESME_RINVSYSID = 0x0000_000F,
    ESME_RCANCELFAIL = 0x0000_0011,
    ESME_RREPLACEFAIL = 0x0000_0013,
    ESME_RMSGQFUL = 0x0000_0014,
    ESME_RINVSERTYP = 0x0000_0015,
    ESME_RINVNUMDESTS = 0x0000_0033,
    ESME_RINVDLNAME = 0x0000_0034,
    ESME_RINVDESTFLAG = 0x0000_0040,
    ESME_RINVSUBREP = 0x0000_0042,
    ESME_RINVESMCLASS = 0x0000_0043,
    ESME_RCNTSUBDL = 0x0000_0044,
    ESME_RSUBMITFAIL = 0x0000_0045,
    ESME_RINVSRCTON = 0x0000_0048,
    ESME_RINVSRCNPI = 0x0000_0049,
    ESME_RINVDSTTON = 0x0000_0050,
    ESME_RINVDSTNPI = 0x0000_0051,
    ESME_RINVSYSTYP = 0x0000_0053,
    ESME_RINVREPFLAG = 0x0000_0054,
    ESME_RINVNUMMSGS = 0x0000_0055,
    ESME_RTHROTTLED = 0x0000_0058,
    ESME_RINVSCHED = 0x0000_0061,
    ESME_RINVEXPIRY = 0x0000_0062,
    ESME_RINVDFTMSGID = 0x0000_0063,
    ESME_RX_T_APPN = 0x0000_0064,
    ESME_RX_P_APPN = 0x0000_0065,
    ESME_RX_R_APPN = 0x0000_0066,
    ESME_RQUERYFAIL = 0x0000_0067,
    ESME_RINVOPTPARSTREAM = 0x0000_00C0,
    ESME_ROPTPARNOTALLWD = 0x0000_00C1,
    ESME_RINVPARLEN = 0x0000_00C2,
    ESME_RMISSINGOPTPARAM = 0x0000_00C3,
    ESME_RINVOPTPARAMVAL = 0x0000_00C4,
    ESME_RDELIVERYFAILURE = 0x0000_00FE,
    ESME_RUNKNOWNERR = 0x0000_00FF,
}

impl CommandStatus {
    /// The SMPP name, or the value as `"0x00000400"` when SMPP 3.4 does not name it. Bounded
    /// cardinality in practice (vendor range), so usable as a metric label.
    pub fn name(self) -> Cow<'static, str> {
        match self.known_name() {
            Some(n) => Cow::Borrowed(n),
            None => Cow::Owned(format!("0x{:08x}", self.0)),
        }
    }

    /// `ESME_ROK`.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Statuses worth retrying after a pause (Kannel's list: RSYSERR, RMSGQFUL, RTHROTTLED,
    /// RX_T_APPN); everything else is a permanent rejection (SMPP-FACTS §4).
    pub fn is_temporary(self) -> bool {
        matches!(self.0, 0x08 | 0x14 | 0x58 | 0x64)
    }
}

impl fmt::Debug for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Why a value cannot be a C-octet string or a bounded octet string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Too many octets for the field.
    #[error("{len} octets is more than the maximum {max}")]
    TooLong { len: usize, max: usize },
    /// Too few octets for the field.
    #[error("{len} octets is less than the minimum {min}")]
    TooShort { len: usize, min: usize },
    /// A C-octet string cannot contain NUL: it is the terminator.
    #[error("contains a NUL octet")]
    Nul,
}

/// A C-octet string of at most `MAX` octets **including** the NUL terminator, stored without the
/// NUL. Holds any non-NUL octets (SMSCs are not always ASCII); `as_str` gives UTF-8 when it is.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct COctetString<const MAX: usize>(Bytes);

impl<const MAX: usize> COctetString<MAX> {
    /// The maximum wire size, NUL included.
    pub const MAX: usize = MAX;

    /// The empty string (a lone NUL on the wire).
    pub const fn empty() -> Self {
        Self(Bytes::new())
    }

    /// Checks the length (< `MAX`, leaving room for the NUL) and the absence of NUL.
    pub fn new(value: impl Into<Bytes>) -> Result<Self, ValueError> {
        let value = value.into();
        if value.len() >= MAX {
            return Err(ValueError::TooLong {
                len: value.len() + 1,
                max: MAX,
            });
        }
        if value.contains(&0) {
            return Err(ValueError::Nul);
        }
        Ok(Self(value))
    }

    /// Wraps a slice the decoder has already checked (no NUL, shorter than `MAX`).
    pub(crate) fn from_checked(value: Bytes) -> Self {
        debug_assert!(value.len() < MAX && !value.contains(&0));
        Self(value)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The value as text when it is UTF-8 (it is ASCII in every conforming PDU).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Octets without the NUL.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Octets on the wire, NUL included.
    pub fn wire_len(&self) -> usize {
        self.0.len() + 1
    }
}

impl<const MAX: usize> TryFrom<&str> for COctetString<MAX> {
    type Error = ValueError;
    fn try_from(value: &str) -> Result<Self, ValueError> {
        Self::new(Bytes::copy_from_slice(value.as_bytes()))
    }
}

impl<const MAX: usize> TryFrom<String> for COctetString<MAX> {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, ValueError> {
        Self::new(Bytes::from(value))
    }
}

impl<const MAX: usize> fmt::Debug for COctetString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(&self.0), f)
    }
}

impl<const MAX: usize> fmt::Display for COctetString<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl<const MAX: usize> PartialEq<str> for COctetString<MAX> {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const MAX: usize> PartialEq<&str> for COctetString<MAX> {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// `system_id` (C≤16).
pub type SystemId = COctetString<16>;
/// `system_type` (C≤13).
pub type SystemType = COctetString<13>;
/// `service_type` (C≤6).
pub type ServiceType = COctetString<6>;
/// `message_id` (C≤65): the SMSC's opaque id.
pub type MessageId = COctetString<65>;
/// `address_range` (C≤41).
pub type AddressRange = COctetString<41>;
/// `schedule_delivery_time`, `validity_period`, `final_date`: empty or `YYMMDDhhmmsstnnp` (C≤17).
/// The codec enforces only the size; [`is_smpp_time`] checks the format.
pub type SmppTime = COctetString<17>;
/// `dl_name` in submit_multi (C≤21).
pub type DlName = COctetString<21>;

/// True when `t` is empty or a well-formed 16-character SMPP time (`YYMMDDhhmmsstnnp`, where `p`
/// is `+`, `-` or `R`; SMPP-FACTS §1.3).
pub fn is_smpp_time(t: &SmppTime) -> bool {
    let b = t.as_bytes();
    b.is_empty()
        || (b.len() == 16
            && b[..15].iter().all(u8::is_ascii_digit)
            && matches!(b[15], b'+' | b'-' | b'R'))
}

/// A relative SMPP time (`…R`, SMPP-FACTS §1.3) for a duration of `secs` seconds, written as
/// days, hours, minutes and seconds (`0000DDhhmmss000R`): years and months are left at zero
/// because their length in days is the SMSC's to interpret. Longer than 99 days is written as
/// 99 days, 23:59:59 (the day field has two digits; submits allow at most 30 days).
pub fn smpp_time_relative(secs: u64) -> SmppTime {
    const MAX: u64 = 99 * 86_400 + 86_399;
    let s = secs.min(MAX);
    let text = format!(
        "0000{:02}{:02}{:02}{:02}000R",
        s / 86_400,
        (s % 86_400) / 3600,
        (s % 3600) / 60,
        s % 60
    );
    SmppTime::from_checked(Bytes::from(text))
}

/// An absolute SMPP time in UTC (`YYMMDDhhmmss000+`, SMPP-FACTS §1.3) for `unix_secs` seconds
/// since the Unix epoch (times before it are written as the epoch).
pub fn smpp_time_utc(unix_secs: i64) -> SmppTime {
    let secs = unix_secs.max(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let text = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}000+",
        y.rem_euclid(100),
        m,
        d,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    SmppTime::from_checked(Bytes::from(text))
}

/// The (year, month, day) of a day number counted from 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm, proleptic Gregorian): dates without a date library.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The `password` field (C≤9). Its `Debug` is redacted: passwords never reach logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(pub COctetString<9>);

impl Password {
    pub fn new(value: impl Into<Bytes>) -> Result<Self, ValueError> {
        COctetString::new(value).map(Self)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// An octet string of `MIN..=MAX` octets with no terminator (`short_message`, TLV values).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct OctetString<const MIN: usize, const MAX: usize>(Bytes);

impl<const MIN: usize, const MAX: usize> OctetString<MIN, MAX> {
    pub fn new(value: impl Into<Bytes>) -> Result<Self, ValueError> {
        let value = value.into();
        if value.len() > MAX {
            return Err(ValueError::TooLong {
                len: value.len(),
                max: MAX,
            });
        }
        if value.len() < MIN {
            return Err(ValueError::TooShort {
                len: value.len(),
                min: MIN,
            });
        }
        Ok(Self(value))
    }

    pub(crate) fn from_checked(value: Bytes) -> Self {
        debug_assert!((MIN..=MAX).contains(&value.len()));
        Self(value)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const MIN: usize, const MAX: usize> fmt::Debug for OctetString<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(&self.0))
    }
}

/// `short_message`: 0–254 octets; `sm_length` is derived from it when encoding.
pub type ShortMessage = OctetString<0, 254>;

macro_rules! u8_newtype {
    ($(#[$doc:meta])* $name:ident { $($(#[$cdoc:meta])* $c:ident = $v:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
        pub struct $name(pub u8);
        impl $name {
            $($(#[$cdoc])* pub const $c: Self = Self($v);)*
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(0x{:02x})", stringify!($name), self.0)
            }
        }
        impl From<u8> for $name {
            fn from(v: u8) -> Self { Self(v) }
        }
        impl From<$name> for u8 {
            fn from(v: $name) -> u8 { v.0 }
        }
    };
}

u8_newtype! {
    /// Type of number (SMPP-FACTS §5.5).
    Ton {
        UNKNOWN = 0,
        INTERNATIONAL = 1,
        NATIONAL = 2,
        NETWORK_SPECIFIC = 3,
        SUBSCRIBER_NUMBER = 4,
        ALPHANUMERIC = 5,
        ABBREVIATED = 6,
    }
}

u8_newtype! {
    /// Numbering plan indicator (SMPP-FACTS §5.5).
    Npi {
        UNKNOWN = 0,
        ISDN = 1,
        DATA = 3,
        TELEX = 4,
        LAND_MOBILE = 6,
        NATIONAL = 8,
        PRIVATE = 9,
        ERMES = 10,
        INTERNET = 14,
        WAP_CLIENT_ID = 18,
    }
}

u8_newtype! {
    /// `esm_class` (SMPP-FACTS §5.2): messaging mode, message type, UDHI and reply path bits.
    EsmClass {
        DEFAULT = 0x00,
        DATAGRAM = 0x01,
        FORWARD = 0x02,
        STORE_AND_FORWARD = 0x03,
        /// Message type: SMSC delivery receipt.
        DELIVERY_RECEIPT = 0x04,
        /// Message type: SME delivery acknowledgement.
        DELIVERY_ACK = 0x08,
        /// Message type: SME manual/user acknowledgement.
        USER_ACK = 0x10,
        /// Message type: conversation abort.
        CONVERSATION_ABORT = 0x18,
        /// Message type: intermediate delivery notification.
        INTERMEDIATE_NOTIFICATION = 0x20,
        /// UDHI: the message starts with a user data header.
        UDHI = 0x40,
        REPLY_PATH = 0x80,
    }
}

impl EsmClass {
    /// Bits 1–0.
    pub fn messaging_mode(self) -> u8 {
        self.0 & 0x03
    }
    /// Bits 5–2 (mask 0x3C).
    pub fn message_type(self) -> u8 {
        self.0 & 0x3C
    }
    /// An SMSC delivery receipt: `(esm_class & 0x3C) == 0x04`, whatever the other bits.
    pub fn is_receipt(self) -> bool {
        self.message_type() == 0x04
    }
    /// An intermediate delivery notification: `(esm_class & 0x3C) == 0x20`.
    pub fn is_intermediate_notification(self) -> bool {
        self.message_type() == 0x20
    }
    /// UDHI (0x40): the payload starts with a UDH.
    pub fn udhi(self) -> bool {
        self.0 & 0x40 != 0
    }
    /// The same class with UDHI set or cleared.
    pub fn with_udhi(self, on: bool) -> Self {
        if on {
            Self(self.0 | 0x40)
        } else {
            Self(self.0 & !0x40)
        }
    }
}

u8_newtype! {
    /// `registered_delivery` (SMPP-FACTS §5.3).
    RegisteredDelivery {
        NONE = 0x00,
        /// SMSC receipt on final success or failure.
        RECEIPT = 0x01,
        /// SMSC receipt on failure only.
        RECEIPT_ON_FAILURE = 0x02,
        SME_ACK = 0x04,
        SME_USER_ACK = 0x08,
        INTERMEDIATE = 0x10,
    }
}

impl RegisteredDelivery {
    /// Bits 1–0: 0 none, 1 final outcome, 2 failure only, 3 reserved in 3.4.
    pub fn smsc_receipt(self) -> u8 {
        self.0 & 0x03
    }
    /// Whether any SMSC delivery receipt was requested.
    pub fn wants_receipt(self) -> bool {
        matches!(self.smsc_receipt(), 1 | 2)
    }
    /// Bit 4: intermediate notification requested.
    pub fn intermediate(self) -> bool {
        self.0 & 0x10 != 0
    }
}

u8_newtype! {
    /// `data_coding` (SMPP-FACTS §5.4).
    DataCoding {
        /// SMSC default alphabet (GSM 7-bit, unpacked, in practice).
        DEFAULT = 0x00,
        IA5 = 0x01,
        OCTET_UNSPECIFIED = 0x02,
        LATIN1 = 0x03,
        /// 8-bit binary, all technologies (use for GSM binary/WAP).
        BINARY = 0x04,
        JIS = 0x05,
        CYRILLIC = 0x06,
        HEBREW = 0x07,
        UCS2 = 0x08,
        PICTOGRAM = 0x09,
        ISO_2022_JP = 0x0A,
        EXTENDED_KANJI = 0x0D,
        KS_C_5601 = 0x0E,
        /// GSM 7-bit, message class 0 (flash).
        FLASH = 0xF0,
    }
}

impl DataCoding {
    pub fn is_ucs2(self) -> bool {
        self.0 == 0x08
    }
    /// GSM message class control group (0xF0–0xFF): `Some(class)` 0–3.
    pub fn message_class(self) -> Option<u8> {
        (self.0 & 0xF0 == 0xF0).then_some(self.0 & 0x03)
    }
    /// 8-bit data in the message-class group (bit 2 set) or the binary codings 0x02/0x04.
    pub fn is_binary(self) -> bool {
        matches!(self.0, 0x02 | 0x04) || (self.0 & 0xF0 == 0xF0 && self.0 & 0x04 != 0)
    }
}

u8_newtype! {
    /// `message_state` (TLV 0x0427 and query_sm_resp; SMPP-FACTS §5.1).
    MessageState {
        ENROUTE = 1,
        DELIVERED = 2,
        EXPIRED = 3,
        DELETED = 4,
        UNDELIVERABLE = 5,
        ACCEPTED = 6,
        UNKNOWN = 7,
        REJECTED = 8,
    }
}

impl MessageState {
    /// The SMPP name (`"DELIVERED"`), or `None` outside 1–8.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "ENROUTE",
            2 => "DELIVERED",
            3 => "EXPIRED",
            4 => "DELETED",
            5 => "UNDELIVERABLE",
            6 => "ACCEPTED",
            7 => "UNKNOWN",
            8 => "REJECTED",
            _ => return None,
        })
    }
    /// Final states per SMPP 3.4: everything but ENROUTE (and unknown values).
    pub fn is_final(self) -> bool {
        (2..=8).contains(&self.0)
    }
}

/// A TON/NPI/address triple whose address is a C-octet string of at most `MAX` octets with the NUL
/// (21 in submit_sm and friends, 65 in data_sm and alert_notification).
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug)]
pub struct Address<const MAX: usize> {
    pub ton: Ton,
    pub npi: Npi,
    pub addr: COctetString<MAX>,
}

impl<const MAX: usize> Address<MAX> {
    pub fn new(ton: Ton, npi: Npi, addr: &str) -> Result<Self, ValueError> {
        Ok(Self {
            ton,
            npi,
            addr: COctetString::try_from(addr)?,
        })
    }
}

/// Address of submit_sm, deliver_sm, query_sm, cancel_sm, replace_sm, submit_multi (C≤21).
pub type SmeAddress = Address<21>;
/// Address of data_sm and alert_notification (C≤65).
pub type WideAddress = Address<65>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_are_days_hours_minutes_seconds() {
        assert_eq!(smpp_time_relative(0), "000000000000000R");
        assert_eq!(smpp_time_relative(86_400), "000001000000000R");
        assert_eq!(smpp_time_relative(30 * 86_400 + 3661), "000030010101000R");
        assert_eq!(smpp_time_relative(u64::MAX), "000099235959000R");
        assert!(is_smpp_time(&smpp_time_relative(12_345)));
    }

    #[test]
    fn absolute_times_are_utc_with_a_zero_offset() {
        assert_eq!(smpp_time_utc(0), "700101000000000+");
        // 2026-12-06T18:30:05Z
        assert_eq!(smpp_time_utc(1_796_581_805), "261206183005000+");
        // 2000-02-29T23:59:59Z (a leap day in a century leap year)
        assert_eq!(smpp_time_utc(951_868_799), "000229235959000+");
        assert_eq!(smpp_time_utc(-5), "700101000000000+");
        assert!(is_smpp_time(&smpp_time_utc(1_796_581_805)));
    }
}
