//! SMPP 3.4 PDUs as typed values, bytes ⇄ PDU, and the stream codec.
//!
//! - [`Pdu`] = header fields + a [`Body`] with one variant per SMPP 3.4 command. Each body struct
//!   is defined once, as a list of its fields in wire order (`body`); its decoder, encoder, length
//!   and JSON form follow from that list through one trait per field kind (`field`).
//! - [`Pdu::decode`] takes one whole frame (`Bytes`, header included) and returns a PDU whose
//!   strings and octet strings are slices of that frame (no copy per field). Field parsers are in
//!   `wire` (`nom` for integers and TLV headers).
//! - [`Pdu::encode`] computes `command_length`, `sm_length` and the other derived counts itself,
//!   validates everything first, then writes into a `BytesMut` reserved to the exact size.
//! - [`codec::PduCodec`] frames a byte stream for `tokio_util::codec`.
//! - [`json`] renders PDUs as JSON keyed by SMPP field names, and parses them back (CLI, vectors).
//!
//! Every problem is a [`PduError`] naming the field, with the `command_status` a peer should get.
//! This module must never do I/O, read a clock, panic on input, or allocate per field where a
//! `Bytes` slice will do.

mod body;
pub mod codec;
mod error;
mod field;
pub mod json;
mod tlv;
mod types;
mod wire;

use bytes::{BufMut, Bytes, BytesMut};

pub use body::{
    AlertNotification, Bind, BindResp, CancelSm, DataSm, DataSmResp, DeliverSm, DeliverSmResp,
    DestAddress, Outbind, QuerySm, QuerySmResp, ReplaceSm, SubmitMulti, SubmitMultiResp, SubmitSm,
    SubmitSmResp, UnsuccessSme,
};
pub use codec::{Frame, PduCodec};
pub use error::PduError;
pub use tlv::{NetworkErrorCode, TYPED_TLVS, Tlv, TlvTag, Tlvs};
pub use types::{
    Address, AddressRange, COctetString, CommandId, CommandStatus, DataCoding, DlName, EsmClass,
    MessageId, MessageState, Npi, OctetString, Password, RegisteredDelivery, ServiceType,
    ShortMessage, SmeAddress, SmppTime, SystemId, SystemType, Ton, ValueError, WideAddress,
    civil_from_days, is_smpp_time, smpp_time_relative, smpp_time_utc,
};

use body::BodyCodec;
use json::{In, JsonError, Out};
use wire::Reader;

/// Size of the PDU header.
pub const HEADER_LEN: usize = 16;

macro_rules! bodies {
    (
        unit { $($uv:ident = $uid:ident,)* }
        data { $($dv:ident($dt:ty) = $did:ident,)* }
    ) => {
        /// The body of a PDU: one variant per SMPP 3.4 command.
        // Boxing the large variants would cost an allocation per PDU; bodies are moved rarely.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Body {
            $($uv,)*
            $($dv($dt),)*
        }

        impl Body {
            /// The command this body belongs to.
            pub fn command_id(&self) -> CommandId {
                match self {
                    $(Self::$uv => CommandId::$uid,)*
                    $(Self::$dv(_) => CommandId::$did,)*
                }
            }

            // Always inlined into the frame decoder: a call here would return the whole body
            // through memory and copy it once more.
            #[inline(always)]
            fn decode(id: CommandId, r: &mut Reader<'_>) -> Result<Self, PduError> {
                Ok(match id {
                    $(CommandId::$uid => Self::$uv,)*
                    $(CommandId::$did => Self::$dv(<$dt as BodyCodec>::decode(r)?),)*
                    other => return Err(PduError::UnknownCommandId(other.0)),
                })
            }

            #[inline]
            fn wire_len(&self) -> usize {
                match self {
                    $(Self::$uv => 0,)*
                    $(Self::$dv(b) => b.wire_len(),)*
                }
            }

            fn check(&self) -> Result<(), PduError> {
                match self {
                    $(Self::$uv => Ok(()),)*
                    $(Self::$dv(b) => b.check(),)*
                }
            }

            fn put(&self, dst: &mut BytesMut) {
                match self {
                    $(Self::$uv => {})*
                    $(Self::$dv(b) => b.put(dst),)*
                }
            }

            /// A response body that carries nothing: with a non-zero status it is omitted on the
            /// wire, as SMPP 3.4 specifies (`command_length` 16).
            fn is_empty_response(&self) -> bool {
                match self {
                    $(Self::$uv => false,)*
                    $(Self::$dv(b) => CommandId::$did.is_response() && *b == <$dt>::default(),)*
                }
            }

            /// Whether this body ends with optional parameters (anything after the mandatory
            /// fields is a TLV). Other bodies must end exactly after their last field.
            fn has_tlvs(&self) -> bool {
                match self {
                    $(Self::$uv => false,)*
                    $(Self::$dv(_) => <$dt as BodyCodec>::HAS_TLVS,)*
                }
            }

            /// Appends the body's keys to a PDU's JSON object.
            fn to_json(&self, o: &mut Out) {
                match self {
                    $(Self::$uv => {})*
                    $(Self::$dv(b) => b.to_json(o),)*
                }
            }

            /// Reads the body of command `id` from a PDU's JSON object.
            fn from_json(id: CommandId, o: &mut In<'_>) -> Result<Self, JsonError> {
                Ok(match id {
                    $(CommandId::$uid => Self::$uv,)*
                    $(CommandId::$did => Self::$dv(<$dt as BodyCodec>::from_json(o)?),)*
                    other => {
                        return Err(json::err("command", format!("{other} has no JSON form")));
                    }
                })
            }
        }
    };
}

bodies! {
    unit {
        GenericNack = GENERIC_NACK,
        Unbind = UNBIND,
        UnbindResp = UNBIND_RESP,
        ReplaceSmResp = REPLACE_SM_RESP,
        CancelSmResp = CANCEL_SM_RESP,
        EnquireLink = ENQUIRE_LINK,
        EnquireLinkResp = ENQUIRE_LINK_RESP,
    }
    data {
        BindReceiver(Bind) = BIND_RECEIVER,
        BindReceiverResp(BindResp) = BIND_RECEIVER_RESP,
        BindTransmitter(Bind) = BIND_TRANSMITTER,
        BindTransmitterResp(BindResp) = BIND_TRANSMITTER_RESP,
        BindTransceiver(Bind) = BIND_TRANSCEIVER,
        BindTransceiverResp(BindResp) = BIND_TRANSCEIVER_RESP,
        Outbind(Outbind) = OUTBIND,
        QuerySm(QuerySm) = QUERY_SM,
        QuerySmResp(QuerySmResp) = QUERY_SM_RESP,
        SubmitSm(SubmitSm) = SUBMIT_SM,
        SubmitSmResp(SubmitSmResp) = SUBMIT_SM_RESP,
        DeliverSm(DeliverSm) = DELIVER_SM,
        DeliverSmResp(DeliverSmResp) = DELIVER_SM_RESP,
        ReplaceSm(ReplaceSm) = REPLACE_SM,
        CancelSm(CancelSm) = CANCEL_SM,
        SubmitMulti(SubmitMulti) = SUBMIT_MULTI,
        SubmitMultiResp(SubmitMultiResp) = SUBMIT_MULTI_RESP,
        AlertNotification(AlertNotification) = ALERT_NOTIFICATION,
        DataSm(DataSm) = DATA_SM,
        DataSmResp(DataSmResp) = DATA_SM_RESP,
    }
}

/// The 16-octet header as read from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub command_length: u32,
    pub command_id: CommandId,
    pub command_status: CommandStatus,
    pub sequence_number: u32,
}

impl Header {
    /// Reads a header from the first 16 octets, `None` when fewer are available.
    pub fn peek(buf: &[u8]) -> Option<Self> {
        let (len, id, status, seq) = wire::header(buf)?;
        Some(Self {
            command_length: len,
            command_id: CommandId(id),
            command_status: CommandStatus(status),
            sequence_number: seq,
        })
    }
}

/// One SMPP PDU. `command_length` and `command_id` are derived from the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    /// Meaningful in responses and generic_nack; requests carry 0.
    pub command_status: CommandStatus,
    /// 1..=0x7FFFFFFF; a response echoes its request's.
    pub sequence_number: u32,
    pub body: Body,
}

impl Pdu {
    /// A PDU with status 0 (every request, and successful responses).
    pub fn new(sequence_number: u32, body: Body) -> Self {
        Self {
            command_status: CommandStatus::ESME_ROK,
            sequence_number,
            body,
        }
    }

    /// A response with a status.
    pub fn response(command_status: CommandStatus, sequence_number: u32, body: Body) -> Self {
        Self {
            command_status,
            sequence_number,
            body,
        }
    }

    /// A generic_nack echoing `sequence_number` (of the PDU that could not be handled).
    pub fn generic_nack(command_status: CommandStatus, sequence_number: u32) -> Self {
        Self {
            command_status,
            sequence_number,
            body: Body::GenericNack,
        }
    }

    pub fn command_id(&self) -> CommandId {
        self.body.command_id()
    }

    /// The SMPP name of the command (`"submit_sm"`).
    pub fn command_name(&self) -> &'static str {
        self.command_id().name().unwrap_or("unknown")
    }

    fn omits_body(&self) -> bool {
        !self.command_status.is_ok() && self.body.is_empty_response()
    }

    /// The encoded size (`command_length`), after checking every cross-field rule.
    #[inline]
    pub fn encoded_len(&self) -> Result<usize, PduError> {
        self.body.check()?;
        let len = HEADER_LEN
            + if self.omits_body() {
                0
            } else {
                self.body.wire_len()
            };
        if u32::try_from(len).is_err() {
            return Err(PduError::CommandLength {
                length: len as u64,
                problem: "the encoded PDU does not fit in 32 bits",
            });
        }
        Ok(len)
    }

    /// Appends the PDU to `dst`. Nothing is written when an error is returned.
    ///
    /// One pass over the body: the header goes in with a placeholder length that is filled in
    /// once the body is written (computing the length first would walk every field and TLV
    /// twice; the write buffer of a connection is reused, so growing it is rare).
    #[inline]
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), PduError> {
        self.body.check()?;
        let start = dst.len();
        let mut header = [0u8; HEADER_LEN];
        header[4..8].copy_from_slice(&self.command_id().0.to_be_bytes());
        header[8..12].copy_from_slice(&self.command_status.0.to_be_bytes());
        header[12..].copy_from_slice(&self.sequence_number.to_be_bytes());
        dst.put_slice(&header);
        if !self.omits_body() {
            self.body.put(dst);
        }
        let len = dst.len() - start;
        let Ok(len32) = u32::try_from(len) else {
            dst.truncate(start);
            return Err(PduError::CommandLength {
                length: len as u64,
                problem: "the encoded PDU does not fit in 32 bits",
            });
        };
        dst[start..start + 4].copy_from_slice(&len32.to_be_bytes());
        Ok(())
    }

    /// The PDU as one buffer.
    pub fn to_bytes(&self) -> Result<Bytes, PduError> {
        let mut dst = BytesMut::new();
        self.encode(&mut dst)?;
        Ok(dst.freeze())
    }

    /// Decodes one whole PDU (header included). Fields are slices of `frame`.
    #[inline]
    pub fn decode(frame: Bytes) -> Result<Self, PduError> {
        let header = Header::peek(&frame).ok_or(PduError::CommandLength {
            length: frame.len() as u64,
            problem: "shorter than the 16-octet header",
        })?;
        Self::decode_with_header(header, frame)
    }

    /// [`Pdu::decode`] for a frame whose header was already read (the codec's path).
    #[inline]
    pub(crate) fn decode_with_header(header: Header, frame: Bytes) -> Result<Self, PduError> {
        if header.command_length as usize != frame.len() {
            return Err(PduError::CommandLength {
                length: u64::from(header.command_length),
                problem: "does not match the size of the frame",
            });
        }
        let id = header.command_id;
        // Error responses may come with an empty, truncated or full body (SMPP-FACTS §2). A
        // response with no body at all (deliver_sm_resp without its unused message_id, and the
        // odd SMSC's bind_resp) reads as the empty body too, so the session can still act on it.
        let lenient =
            id.is_response() && (!header.command_status.is_ok() || frame.len() == HEADER_LEN);
        let mut r = Reader::new(&frame, &frame[HEADER_LEN..], lenient);
        let body = Body::decode(id, &mut r)?;
        if !r.is_empty() && !lenient && !body.has_tlvs() {
            return Err(PduError::TrailingBytes {
                command: id.name().unwrap_or("pdu"),
                count: r.remaining(),
            });
        }
        Ok(Self {
            command_status: header.command_status,
            sequence_number: header.sequence_number,
            body,
        })
    }
}
