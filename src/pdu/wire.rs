//! Field-level reading and writing: the `nom` parsers for integers, C-octet strings and octet
//! strings, wrapped in a cursor that turns sub-slices of the frame into `Bytes` that share the
//! frame's buffer (`Bytes::slice_ref`: no copy, no allocation). Writing puts fields straight into a
//! `BytesMut` whose capacity the caller reserved exactly.
//!
//! This module must never allocate per field, and never panic on any input.

use bytes::{BufMut, Bytes, BytesMut};
use nom::IResult;
use nom::Parser;
use nom::bytes::complete::{take, take_till};
use nom::number::complete::{be_u8, be_u16, be_u32};

use super::error::PduError;
use super::types::{COctetString, OctetString};

type Res<'a, T> = IResult<&'a [u8], T, ()>;

/// A cursor over a PDU body. In `lenient` mode (responses with a non-zero status, which may
/// arrive with an empty, truncated or full body) a field that is missing or cut short reads as its
/// default value and the rest of the body is dropped.
pub(crate) struct Reader<'a> {
    frame: &'a Bytes,
    rest: &'a [u8],
    lenient: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(frame: &'a Bytes, body: &'a [u8], lenient: bool) -> Self {
        Self {
            frame,
            rest: body,
            lenient,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn lenient(&self) -> bool {
        self.lenient
    }

    /// The unread octets, consumed.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub(crate) fn frame(&self) -> &'a Bytes {
        self.frame
    }

    /// In lenient mode a failed read swallows the rest of the body and yields the default.
    fn fail<T: Default>(&mut self, err: PduError) -> Result<T, PduError> {
        if self.lenient {
            self.rest = &[];
            Ok(T::default())
        } else {
            Err(err)
        }
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        match be_u8::<&[u8], ()>(self.rest) {
            Ok((rest, v)) => {
                self.rest = rest;
                Ok(v)
            }
            Err(_) => self.fail(PduError::Truncated { field }),
        }
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, PduError> {
        match be_u32::<&[u8], ()>(self.rest) {
            Ok((rest, v)) => {
                self.rest = rest;
                Ok(v)
            }
            Err(_) => self.fail(PduError::Truncated { field }),
        }
    }

    /// A C-octet string of at most `MAX` octets including the NUL.
    pub(crate) fn cstr<const MAX: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<COctetString<MAX>, PduError> {
        match c_octet_string(self.rest, MAX) {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(COctetString::from_checked(self.frame.slice_ref(value)))
            }
            Err(CStrError::NoNul) => self.fail(PduError::Truncated { field }),
            Err(CStrError::TooLong) => self.fail(PduError::CStringTooLong { field, max: MAX }),
        }
    }

    /// `n` raw octets as a bounded octet string.
    pub(crate) fn octets<const MIN: usize, const MAX: usize>(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<OctetString<MIN, MAX>, PduError> {
        match take::<usize, &[u8], ()>(n).parse(self.rest) {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(OctetString::from_checked(self.frame.slice_ref(value)))
            }
            Err(_) => self.fail(PduError::Truncated { field }),
        }
    }
}

enum CStrError {
    /// The input ended before a NUL (and before the maximum).
    NoNul,
    /// No NUL within `max` octets.
    TooLong,
}

/// Parses a C-octet string of at most `max` octets with the NUL; returns it without the NUL.
/// Only the first `max` octets are scanned, so an over-long field costs O(max), not O(input).
fn c_octet_string(input: &[u8], max: usize) -> Result<(&[u8], &[u8]), CStrError> {
    let window = &input[..input.len().min(max)];
    let found: Res<'_, &[u8]> = take_till(|b| b == 0).parse(window);
    match found {
        Ok((after, value)) if !after.is_empty() => Ok((&input[value.len() + 1..], value)),
        _ if input.len() >= max => Err(CStrError::TooLong),
        _ => Err(CStrError::NoNul),
    }
}

/// One TLV: (rest of the input, tag, value).
pub(crate) type Triple<'a> = (&'a [u8], u16, &'a [u8]);

/// Parses one TLV header and value.
pub(crate) fn tlv_triple(input: &[u8]) -> Option<Triple<'_>> {
    let parsed: Res<'_, (u16, u16)> = (be_u16, be_u16).parse(input);
    let (rest, (tag, len)) = parsed.ok()?;
    let taken: Res<'_, &[u8]> = take(len as usize).parse(rest);
    let (rest, value) = taken.ok()?;
    Some((rest, tag, value))
}

/// Parses the 16-octet header: (command_length, command_id, command_status, sequence_number).
pub(crate) fn header(input: &[u8]) -> Option<(u32, u32, u32, u32)> {
    let parsed: Res<'_, (u32, u32, u32, u32)> = (be_u32, be_u32, be_u32, be_u32).parse(input);
    parsed.ok().map(|(_, h)| h)
}

/// Writes a C-octet string and its NUL.
pub(crate) fn put_cstr<const MAX: usize>(dst: &mut BytesMut, s: &COctetString<MAX>) {
    dst.put_slice(s.as_bytes());
    dst.put_u8(0);
}
