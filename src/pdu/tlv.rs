//! Optional parameters (TLVs). Every tag of SMPP-FACTS §6 is a typed [`Tlv`] variant whose value
//! type enforces the allowed length; any other tag is kept as [`Tlv::Other`] (tag + the value's
//! bytes) and re-encoded unchanged, because SMPP tells receivers to skip unknown tags, not reject
//! them. Values are `Bytes` slices of the frame, never copies.
//!
//! This module must never reorder TLVs (wire order is preserved for byte-exact re-encoding).

use bytes::{BufMut, Bytes, BytesMut};

use super::error::PduError;
use super::json::{Json, hex_from_json, text_from_json, text_json, uint_from_json};
use super::types::{COctetString, MessageId, MessageState, OctetString};
use super::wire::{Reader, tlv_triple};

/// `network_error_code` (0x0423): network type (1 ANSI-136, 2 IS-95, 3 GSM) and a 16-bit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct NetworkErrorCode {
    pub network_type: u8,
    pub error_code: u16,
}

/// The value of one typed TLV: how it is read from and written to the wire.
pub(crate) trait TlvValue: Sized {
    /// Decodes `value` (the TLV's value octets, a slice of `frame`).
    fn decode(value: &[u8], frame: &Bytes, tlv: &'static str) -> Result<Self, PduError>;
    fn wire_len(&self) -> usize;
    fn put(&self, dst: &mut BytesMut);
    /// Writes tag, length and value; integer TLVs override it with a single write.
    #[inline]
    fn put_tlv(&self, tag: u16, dst: &mut BytesMut) {
        let [t0, t1] = tag.to_be_bytes();
        // Typed values are at most 65535 octets by construction.
        let [l0, l1] = (self.wire_len() as u16).to_be_bytes();
        dst.put_slice(&[t0, t1, l0, l1]);
        self.put(dst);
    }
    /// The JSON rendering (numbers for integers, strings for C-octet strings, hex otherwise).
    fn to_json(&self) -> Json;
    fn from_json(j: &Json) -> Result<Self, String>;
}

fn exact(
    value: &[u8],
    n: usize,
    tlv: &'static str,
    expected: &'static str,
) -> Result<(), PduError> {
    if value.len() == n {
        Ok(())
    } else {
        Err(PduError::TlvLength {
            tlv,
            length: value.len(),
            expected,
        })
    }
}

impl TlvValue for u8 {
    fn decode(value: &[u8], _: &Bytes, tlv: &'static str) -> Result<Self, PduError> {
        exact(value, 1, tlv, "1")?;
        Ok(value[0])
    }
    fn wire_len(&self) -> usize {
        1
    }
    fn put(&self, dst: &mut BytesMut) {
        dst.put_u8(*self);
    }
    #[inline]
    fn put_tlv(&self, tag: u16, dst: &mut BytesMut) {
        let [t0, t1] = tag.to_be_bytes();
        dst.put_slice(&[t0, t1, 0, 1, *self]);
    }
    fn to_json(&self) -> Json {
        Json::Num((*self).into())
    }
    fn from_json(j: &Json) -> Result<Self, String> {
        uint_from_json(j, u64::from(u8::MAX)).map(|v| v as u8)
    }
}

impl TlvValue for u16 {
    fn decode(value: &[u8], _: &Bytes, tlv: &'static str) -> Result<Self, PduError> {
        exact(value, 2, tlv, "2")?;
        Ok(u16::from_be_bytes([value[0], value[1]]))
    }
    fn wire_len(&self) -> usize {
        2
    }
    fn put(&self, dst: &mut BytesMut) {
        dst.put_u16(*self);
    }
    #[inline]
    fn put_tlv(&self, tag: u16, dst: &mut BytesMut) {
        let [t0, t1] = tag.to_be_bytes();
        let [v0, v1] = self.to_be_bytes();
        dst.put_slice(&[t0, t1, 0, 2, v0, v1]);
    }
    fn to_json(&self) -> Json {
        Json::Num((*self).into())
    }
    fn from_json(j: &Json) -> Result<Self, String> {
        uint_from_json(j, u64::from(u16::MAX)).map(|v| v as u16)
    }
}

impl TlvValue for u32 {
    fn decode(value: &[u8], _: &Bytes, tlv: &'static str) -> Result<Self, PduError> {
        exact(value, 4, tlv, "4")?;
        Ok(u32::from_be_bytes([value[0], value[1], value[2], value[3]]))
    }
    fn wire_len(&self) -> usize {
        4
    }
    fn put(&self, dst: &mut BytesMut) {
        dst.put_u32(*self);
    }
    #[inline]
    fn put_tlv(&self, tag: u16, dst: &mut BytesMut) {
        let [t0, t1] = tag.to_be_bytes();
        let [v0, v1, v2, v3] = self.to_be_bytes();
        dst.put_slice(&[t0, t1, 0, 4, v0, v1, v2, v3]);
    }
    fn to_json(&self) -> Json {
        Json::Num((*self).into())
    }
    fn from_json(j: &Json) -> Result<Self, String> {
        uint_from_json(j, u64::from(u32::MAX)).map(|v| v as u32)
    }
}

impl TlvValue for MessageState {
    fn decode(value: &[u8], frame: &Bytes, tlv: &'static str) -> Result<Self, PduError> {
        u8::decode(value, frame, tlv).map(MessageState)
    }
    fn wire_len(&self) -> usize {
        1
    }
    fn put(&self, dst: &mut BytesMut) {
        dst.put_u8(self.0);
    }
    #[inline]
    fn put_tlv(&self, tag: u16, dst: &mut BytesMut) {
        self.0.put_tlv(tag, dst);
    }
    fn to_json(&self) -> Json {
        Json::Num(self.0.into())
    }
    fn from_json(j: &Json) -> Result<Self, String> {
        u8::from_json(j).map(MessageState)
    }
}

impl TlvValue for NetworkErrorCode {
    fn decode(value: &[u8], _: &Bytes, tlv: &'static str) -> Result<Self, PduError> {
        exact(value, 3, tlv, "3")?;
        Ok(Self {
            network_type: value[0],
            error_code: u16::from_be_bytes([value[1], value[2]]),
        })
    }
    fn wire_len(&self) -> usize {
        3
    }
    fn put(&self, dst: &mut BytesMut) {
        dst.put_u8(self.network_type);
        dst.put_u16(self.error_code);
    }
    #[inline]
    fn put_tlv(&self, tag: u16, dst: &mut BytesMut) {
        let [t0, t1] = tag.to_be_bytes();
        let [c0, c1] = self.error_code.to_be_bytes();
        dst.put_slice(&[t0, t1, 0, 3, self.network_type, c0, c1]);
    }
    /// Hex of the 3 octets (`"030000"`), as the reference vectors render it.
    fn to_json(&self) -> Json {
        let [a, b] = self.error_code.to_be_bytes();
        Json::Str(hex::encode([self.network_type, a, b]))
    }
    fn from_json(j: &Json) -> Result<Self, String> {
        match hex_from_json(j)?.as_ref() {
            [t, a, b] => Ok(Self {
                network_type: *t,
                error_code: u16::from_be_bytes([*a, *b]),
            }),
            _ => Err("expected 3 octets of hex".to_owned()),
        }
    }
}

/// `alert_on_message_delivery`: presence is the flag (length 0); SMPP 5.0 adds a 1-octet value.
impl TlvValue for Option<u8> {
    fn decode(value: &[u8], _: &Bytes, tlv: &'static str) -> Result<Self, PduError> {
        match value {
            [] => Ok(None),
            [v] => Ok(Some(*v)),
            _ => Err(PduError::TlvLength {
                tlv,
                length: value.len(),
                expected: "0 or 1",
            }),
        }
    }
    fn wire_len(&self) -> usize {
        usize::from(self.is_some())
    }
    fn put(&self, dst: &mut BytesMut) {
        if let Some(v) = self {
            dst.put_u8(*v);
        }
    }
    /// `null` for the zero-length flag, else the number.
    fn to_json(&self) -> Json {
        self.map_or(Json::Null, |v| Json::Num(v.into()))
    }
    fn from_json(j: &Json) -> Result<Self, String> {
        match j {
            Json::Null => Ok(None),
            _ => u8::from_json(j).map(Some),
        }
    }
}

/// A C-octet string TLV: the length includes the NUL. A value without the final NUL is accepted
/// (some SMSCs omit it in `receipted_message_id`); it is written back with the NUL.
impl<const MAX: usize> TlvValue for COctetString<MAX> {
    fn decode(value: &[u8], frame: &Bytes, tlv: &'static str) -> Result<Self, PduError> {
        let text = value.strip_suffix(&[0]).unwrap_or(value);
        if text.len() >= MAX {
            return Err(PduError::TlvLength {
                tlv,
                length: value.len(),
                expected: "at most the maximum, NUL included",
            });
        }
        if text.contains(&0) {
            return Err(PduError::TlvValue {
                tlv,
                problem: "NUL octet inside a C-octet string",
            });
        }
        Ok(COctetString::from_checked(frame.slice_ref(text)))
    }
    fn wire_len(&self) -> usize {
        self.len() + 1
    }
    fn put(&self, dst: &mut BytesMut) {
        dst.put_slice(self.as_bytes());
        dst.put_u8(0);
    }
    fn to_json(&self) -> Json {
        text_json(self.as_bytes())
    }
    fn from_json(j: &Json) -> Result<Self, String> {
        COctetString::new(text_from_json(j)?).map_err(|e| e.to_string())
    }
}

impl<const MIN: usize, const MAX: usize> TlvValue for OctetString<MIN, MAX> {
    fn decode(value: &[u8], frame: &Bytes, tlv: &'static str) -> Result<Self, PduError> {
        if value.len() < MIN || value.len() > MAX {
            return Err(PduError::TlvLength {
                tlv,
                length: value.len(),
                expected: "within the TLV's size range",
            });
        }
        Ok(OctetString::from_checked(frame.slice_ref(value)))
    }
    fn wire_len(&self) -> usize {
        self.len()
    }
    fn put(&self, dst: &mut BytesMut) {
        dst.put_slice(self.as_bytes());
    }
    fn to_json(&self) -> Json {
        Json::Str(hex::encode(self.as_bytes()))
    }
    fn from_json(j: &Json) -> Result<Self, String> {
        OctetString::new(hex_from_json(j)?).map_err(|e| e.to_string())
    }
}

macro_rules! tlv_table {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $tag:literal, $name:literal, $konst:ident;)*) => {
        /// One optional parameter. Typed for every tag of SMPP-FACTS §6; `Other` keeps the rest.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Tlv {
            $($(#[$doc])* $variant($ty),)*
            /// A tag this codec does not type (vendor-specific, SMPP 5.0): kept as raw bytes.
            Other { tag: u16, value: Bytes },
        }

        /// TLV tags by name.
        pub struct TlvTag;
        impl TlvTag {
            $(pub const $konst: u16 = $tag;)*
        }

        /// Every typed tag with its name, in table order.
        pub const TYPED_TLVS: &[(u16, &str)] = &[$(($tag, $name),)*];

        impl Tlv {
            pub fn tag(&self) -> u16 {
                match self {
                    $(Self::$variant(_) => $tag,)*
                    Self::Other { tag, .. } => *tag,
                }
            }

            /// The SMPP name of a tag this codec types (`0x001E` → `"receipted_message_id"`).
            pub fn name_of(tag: u16) -> Option<&'static str> {
                match tag {
                    $($tag => Some($name),)*
                    _ => None,
                }
            }

            /// The tag of a typed TLV's SMPP name.
            pub fn tag_of(name: &str) -> Option<u16> {
                match name {
                    $($name => Some($tag),)*
                    _ => None,
                }
            }

            /// The SMPP name, `None` for `Other`.
            pub fn name(&self) -> Option<&'static str> {
                Self::name_of(self.tag())
            }

            fn decode_value(tag: u16, value: &[u8], frame: &Bytes) -> Result<Self, PduError> {
                match tag {
                    $($tag => Ok(Self::$variant(<$ty as TlvValue>::decode(value, frame, $name)?)),)*
                    _ => Ok(Self::Other { tag, value: frame.slice_ref(value) }),
                }
            }

            /// Length of the value on the wire (without the 4-octet tag and length).
            pub fn value_len(&self) -> usize {
                match self {
                    $(Self::$variant(v) => TlvValue::wire_len(v),)*
                    Self::Other { value, .. } => value.len(),
                }
            }

            /// The value as JSON (see [`TlvValue::to_json`]); `Other` values as hex.
            pub fn json_value(&self) -> Json {
                match self {
                    $(Self::$variant(v) => TlvValue::to_json(v),)*
                    Self::Other { value, .. } => Json::Str(hex::encode(value)),
                }
            }

            /// Builds the TLV `tag` from its JSON value.
            pub fn from_json_value(tag: u16, j: &Json) -> Result<Self, String> {
                match tag {
                    $($tag => Ok(Self::$variant(<$ty as TlvValue>::from_json(j)?)),)*
                    _ => Ok(Self::Other { tag, value: hex_from_json(j)? }),
                }
            }

            #[inline]
            fn put(&self, dst: &mut BytesMut) {
                match self {
                    $(Self::$variant(v) => TlvValue::put_tlv(v, $tag, dst),)*
                    Self::Other { tag, value } => {
                        let [t0, t1] = tag.to_be_bytes();
                        // check() ran before any write, so the length fits.
                        let [l0, l1] = (value.len() as u16).to_be_bytes();
                        dst.put_slice(&[t0, t1, l0, l1]);
                        dst.put_slice(value);
                    }
                }
            }
        }
    };
}

tlv_table! {
    DestAddrSubunit(u8) = 0x0005, "dest_addr_subunit", DEST_ADDR_SUBUNIT;
    DestNetworkType(u8) = 0x0006, "dest_network_type", DEST_NETWORK_TYPE;
    DestBearerType(u8) = 0x0007, "dest_bearer_type", DEST_BEARER_TYPE;
    DestTelematicsId(u16) = 0x0008, "dest_telematics_id", DEST_TELEMATICS_ID;
    SourceAddrSubunit(u8) = 0x000D, "source_addr_subunit", SOURCE_ADDR_SUBUNIT;
    SourceNetworkType(u8) = 0x000E, "source_network_type", SOURCE_NETWORK_TYPE;
    SourceBearerType(u8) = 0x000F, "source_bearer_type", SOURCE_BEARER_TYPE;
    SourceTelematicsId(u16) = 0x0010, "source_telematics_id", SOURCE_TELEMATICS_ID;
    /// Seconds.
    QosTimeToLive(u32) = 0x0017, "qos_time_to_live", QOS_TIME_TO_LIVE;
    PayloadType(u8) = 0x0019, "payload_type", PAYLOAD_TYPE;
    AdditionalStatusInfoText(COctetString<256>) = 0x001D, "additional_status_info_text", ADDITIONAL_STATUS_INFO_TEXT;
    /// The SMSC message id a receipt is about.
    ReceiptedMessageId(MessageId) = 0x001E, "receipted_message_id", RECEIPTED_MESSAGE_ID;
    MsMsgWaitFacilities(u8) = 0x0030, "ms_msg_wait_facilities", MS_MSG_WAIT_FACILITIES;
    PrivacyIndicator(u8) = 0x0201, "privacy_indicator", PRIVACY_INDICATOR;
    SourceSubaddress(OctetString<2, 23>) = 0x0202, "source_subaddress", SOURCE_SUBADDRESS;
    DestSubaddress(OctetString<2, 23>) = 0x0203, "dest_subaddress", DEST_SUBADDRESS;
    UserMessageReference(u16) = 0x0204, "user_message_reference", USER_MESSAGE_REFERENCE;
    UserResponseCode(u8) = 0x0205, "user_response_code", USER_RESPONSE_CODE;
    SourcePort(u16) = 0x020A, "source_port", SOURCE_PORT;
    DestinationPort(u16) = 0x020B, "destination_port", DESTINATION_PORT;
    SarMsgRefNum(u16) = 0x020C, "sar_msg_ref_num", SAR_MSG_REF_NUM;
    LanguageIndicator(u8) = 0x020D, "language_indicator", LANGUAGE_INDICATOR;
    SarTotalSegments(u8) = 0x020E, "sar_total_segments", SAR_TOTAL_SEGMENTS;
    SarSegmentSeqnum(u8) = 0x020F, "sar_segment_seqnum", SAR_SEGMENT_SEQNUM;
    ScInterfaceVersion(u8) = 0x0210, "sc_interface_version", SC_INTERFACE_VERSION;
    CallbackNumPresInd(u8) = 0x0302, "callback_num_pres_ind", CALLBACK_NUM_PRES_IND;
    CallbackNumAtag(OctetString<0, 65>) = 0x0303, "callback_num_atag", CALLBACK_NUM_ATAG;
    NumberOfMessages(u8) = 0x0304, "number_of_messages", NUMBER_OF_MESSAGES;
    CallbackNum(OctetString<4, 19>) = 0x0381, "callback_num", CALLBACK_NUM;
    DpfResult(u8) = 0x0420, "dpf_result", DPF_RESULT;
    SetDpf(u8) = 0x0421, "set_dpf", SET_DPF;
    MsAvailabilityStatus(u8) = 0x0422, "ms_availability_status", MS_AVAILABILITY_STATUS;
    NetworkErrorCode(NetworkErrorCode) = 0x0423, "network_error_code", NETWORK_ERROR_CODE;
    /// Payload above 254 octets (or any payload); exclusive with a non-empty short_message.
    MessagePayload(OctetString<0, 65535>) = 0x0424, "message_payload", MESSAGE_PAYLOAD;
    DeliveryFailureReason(u8) = 0x0425, "delivery_failure_reason", DELIVERY_FAILURE_REASON;
    MoreMessagesToSend(u8) = 0x0426, "more_messages_to_send", MORE_MESSAGES_TO_SEND;
    MessageState(MessageState) = 0x0427, "message_state", MESSAGE_STATE;
    UssdServiceOp(u8) = 0x0501, "ussd_service_op", USSD_SERVICE_OP;
    DisplayTime(u8) = 0x1201, "display_time", DISPLAY_TIME;
    SmsSignal(u16) = 0x1203, "sms_signal", SMS_SIGNAL;
    MsValidity(u8) = 0x1204, "ms_validity", MS_VALIDITY;
    /// Length 0 (the flag) or, as SMPP 5.0 allows, one octet.
    AlertOnMessageDelivery(Option<u8>) = 0x130C, "alert_on_message_delivery", ALERT_ON_MESSAGE_DELIVERY;
    ItsReplyType(u8) = 0x1380, "its_reply_type", ITS_REPLY_TYPE;
    ItsSessionInfo(u16) = 0x1383, "its_session_info", ITS_SESSION_INFO;
}

impl Tlv {
    /// Octets on the wire: tag, length and value.
    pub fn wire_len(&self) -> usize {
        4 + self.value_len()
    }

    /// Typed values are bounded by their types; only a raw `Other` value can be too long.
    #[inline]
    fn check(&self) -> Result<(), PduError> {
        match self {
            Self::Other { value, .. } if value.len() > usize::from(u16::MAX) => {
                Err(PduError::TlvLength {
                    tlv: "tlvs",
                    length: value.len(),
                    expected: "at most 65535",
                })
            }
            _ => Ok(()),
        }
    }
}

/// The optional parameters of one PDU, in wire order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tlvs(pub Vec<Tlv>);

impl Tlvs {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Tlv> {
        self.0.iter()
    }

    pub fn push(&mut self, tlv: Tlv) {
        self.0.push(tlv);
    }

    /// Builder form of `push`.
    pub fn with(mut self, tlv: Tlv) -> Self {
        self.0.push(tlv);
        self
    }

    /// The first TLV with `tag`.
    pub fn get(&self, tag: u16) -> Option<&Tlv> {
        self.0.iter().find(|t| t.tag() == tag)
    }

    pub fn receipted_message_id(&self) -> Option<&MessageId> {
        self.0.iter().find_map(|t| match t {
            Tlv::ReceiptedMessageId(v) => Some(v),
            _ => None,
        })
    }

    pub fn message_state(&self) -> Option<MessageState> {
        self.0.iter().find_map(|t| match t {
            Tlv::MessageState(v) => Some(*v),
            _ => None,
        })
    }

    pub fn network_error_code(&self) -> Option<NetworkErrorCode> {
        self.0.iter().find_map(|t| match t {
            Tlv::NetworkErrorCode(v) => Some(*v),
            _ => None,
        })
    }

    pub fn message_payload(&self) -> Option<&Bytes> {
        self.0.iter().find_map(|t| match t {
            Tlv::MessagePayload(v) => Some(v.bytes()),
            _ => None,
        })
    }

    /// The SAR triple (`sar_msg_ref_num`, `sar_total_segments`, `sar_segment_seqnum`) when all
    /// three are present.
    pub fn sar(&self) -> Option<(u16, u8, u8)> {
        let mut r = None;
        let mut t = None;
        let mut s = None;
        for tlv in &self.0 {
            match tlv {
                Tlv::SarMsgRefNum(v) if r.is_none() => r = Some(*v),
                Tlv::SarTotalSegments(v) if t.is_none() => t = Some(*v),
                Tlv::SarSegmentSeqnum(v) if s.is_none() => s = Some(*v),
                _ => {}
            }
        }
        Some((r?, t?, s?))
    }

    pub fn sc_interface_version(&self) -> Option<u8> {
        self.0.iter().find_map(|t| match t {
            Tlv::ScInterfaceVersion(v) => Some(*v),
            _ => None,
        })
    }

    pub fn user_message_reference(&self) -> Option<u16> {
        self.0.iter().find_map(|t| match t {
            Tlv::UserMessageReference(v) => Some(*v),
            _ => None,
        })
    }

    #[inline]
    pub(crate) fn wire_len(&self) -> usize {
        self.0.iter().map(Tlv::wire_len).sum()
    }

    #[inline]
    pub(crate) fn check(&self) -> Result<(), PduError> {
        self.0.iter().try_for_each(Tlv::check)
    }

    #[inline]
    pub(crate) fn put(&self, dst: &mut BytesMut) {
        for t in &self.0 {
            t.put(dst);
        }
    }

    /// Reads TLVs until the body is used up. In lenient mode a malformed TLV ends the list.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        let frame = r.frame();
        let lenient = r.lenient();
        let all = r.take_rest();
        let mut rest = all;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let offset = all.len() - rest.len();
            let step = match tlv_triple(rest) {
                Some((after, tag, value)) => {
                    Tlv::decode_value(tag, value, frame).map(|tlv| (after, tlv))
                }
                None => Err(PduError::TlvStream {
                    offset,
                    problem: if rest.len() < 4 {
                        "fewer than 4 octets left for a tag and length"
                    } else {
                        "the length runs past the end of the PDU"
                    },
                }),
            };
            match step {
                Ok((after, tlv)) => {
                    out.push(tlv);
                    rest = after;
                }
                Err(_) if lenient => break,
                Err(e) => return Err(e),
            }
        }
        Ok(Self(out))
    }
}

impl FromIterator<Tlv> for Tlvs {
    fn from_iter<I: IntoIterator<Item = Tlv>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Tlvs {
    type Item = &'a Tlv;
    type IntoIter = std::slice::Iter<'a, Tlv>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}
