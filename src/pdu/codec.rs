//! The `tokio_util::codec` framing of an SMPP byte stream.
//!
//! Check-then-parse: the 4-octet `command_length` is checked against 16 and the configured maximum
//! **before** any buffer is reserved, so a hostile length never allocates. A frame with a good
//! length but a bad body (unknown `command_id`, a field over its limit, a broken TLV) is not a
//! stream error: it comes out as [`Frame::Invalid`] so the session can answer `generic_nack` with
//! [`PduError::command_status`] and keep the connection. Only a bad `command_length` (after which
//! framing is lost) is an `Err`.
//!
//! This module must never do I/O itself or hold more than one frame beyond what the peer sent.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::{CommandId, CommandStatus, HEADER_LEN, Header, Pdu, PduError};

/// Default maximum `command_length`: 64 KiB (a message_payload of 65535 octets still fits in a
/// submit_sm below 66 000, raise it for that).
pub const DEFAULT_MAX_LEN: usize = 64 * 1024;

/// One item read from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A valid PDU.
    Pdu(Pdu),
    /// A correctly framed PDU that could not be decoded; answer it with a generic_nack carrying
    /// `error.command_status()` and `sequence_number`, and keep reading.
    Invalid {
        command_id: CommandId,
        sequence_number: u32,
        error: PduError,
    },
}

/// A stream-level failure: the connection should be closed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// `command_length` below 16 or above the maximum: framing is lost.
    #[error("framing: {0}")]
    Framing(PduError),
    /// A PDU given to the encoder breaks a field rule.
    #[error("encode: {0}")]
    Encode(PduError),
}

impl CodecError {
    /// The status to send in a last generic_nack before closing (ESME_RINVCMDLEN for framing).
    pub fn command_status(&self) -> CommandStatus {
        match self {
            Self::Io(_) => CommandStatus::ESME_RSYSERR,
            Self::Framing(e) | Self::Encode(e) => e.command_status(),
        }
    }
}

/// SMPP framing for `tokio_util::codec::Framed`.
#[derive(Clone, Copy, Debug)]
pub struct PduCodec {
    /// Largest accepted `command_length`.
    pub max_len: usize,
}

impl Default for PduCodec {
    fn default() -> Self {
        Self {
            max_len: DEFAULT_MAX_LEN,
        }
    }
}

impl PduCodec {
    pub fn new(max_len: usize) -> Self {
        Self { max_len }
    }
}

impl Decoder for PduCodec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let Some(len_octets) = src.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len_octets[0], len_octets[1], len_octets[2], len_octets[3]]);
        let len_usize = len as usize;
        if len_usize < HEADER_LEN {
            return Err(CodecError::Framing(PduError::CommandLength {
                length: u64::from(len),
                problem: "below the 16-octet minimum",
            }));
        }
        if len_usize > self.max_len {
            return Err(CodecError::Framing(PduError::CommandLength {
                length: u64::from(len),
                problem: "above the configured maximum",
            }));
        }
        if src.len() < len_usize {
            src.reserve(len_usize - src.len());
            return Ok(None);
        }
        let frame = src.split_to(len_usize).freeze();
        let Some(header) = Header::peek(&frame) else {
            // Unreachable: len >= 16 was checked above; kept as an error rather than a panic.
            return Err(CodecError::Framing(PduError::CommandLength {
                length: u64::from(len),
                problem: "shorter than the 16-octet header",
            }));
        };
        Ok(Some(match Pdu::decode_with_header(header, frame) {
            Ok(pdu) => Frame::Pdu(pdu),
            Err(error) => Frame::Invalid {
                command_id: header.command_id,
                sequence_number: header.sequence_number,
                error,
            },
        }))
    }
}

impl Encoder<&Pdu> for PduCodec {
    type Error = CodecError;

    fn encode(&mut self, pdu: &Pdu, dst: &mut BytesMut) -> Result<(), CodecError> {
        pdu.encode(dst).map_err(CodecError::Encode)
    }
}

impl Encoder<Pdu> for PduCodec {
    type Error = CodecError;

    fn encode(&mut self, pdu: Pdu, dst: &mut BytesMut) -> Result<(), CodecError> {
        pdu.encode(dst).map_err(CodecError::Encode)
    }
}
