//! Field-level reading and writing: parsers for integers (`nom`), C-octet strings and octet
//! strings (plain slice splitting, which measured cheaper than nom's combinators), wrapped in a
//! cursor that turns sub-slices of the frame into `Bytes` that share the frame's buffer
//! (`Bytes::slice_ref`: no copy, no allocation). Writing puts fields straight into the frame's
//! `BytesMut` through a [`Writer`], which copies runs of one-octet fields at once.
//!
//! This module must never allocate per field, and never panic on any input.

use bytes::{BufMut, Bytes, BytesMut};
use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
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
    #[cold]
    #[inline(never)]
    fn fail<T: Default>(&mut self, err: PduError) -> Result<T, PduError> {
        if self.lenient {
            self.rest = &[];
            Ok(T::default())
        } else {
            Err(err)
        }
    }

    /// `value` (a sub-slice of the frame) as `Bytes` sharing the frame's buffer.
    #[inline]
    fn share(&self, value: &[u8]) -> Bytes {
        if value.is_empty() {
            return Bytes::new();
        }
        // value lies inside frame: it was cut from it by the parsers.
        let start = value.as_ptr() as usize - self.frame.as_ptr() as usize;
        self.frame.slice(start..start + value.len())
    }

    #[inline]
    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        match be_u8::<&[u8], ()>(self.rest) {
            Ok((rest, v)) => {
                self.rest = rest;
                Ok(v)
            }
            Err(_) => self.fail(PduError::Truncated { field }),
        }
    }

    #[inline]
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
    #[inline]
    pub(crate) fn cstr<const MAX: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<COctetString<MAX>, PduError> {
        match c_octet_string(self.rest, MAX) {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(COctetString::from_checked(self.share(value)))
            }
            Err(CStrError::NoNul) => self.fail(PduError::Truncated { field }),
            Err(CStrError::TooLong) => self.fail(PduError::CStringTooLong { field, max: MAX }),
        }
    }

    /// `n` raw octets as a bounded octet string.
    #[inline]
    pub(crate) fn octets<const MIN: usize, const MAX: usize>(
        &mut self,
        n: usize,
        field: &'static str,
    ) -> Result<OctetString<MIN, MAX>, PduError> {
        // `split_at_checked` rather than nom's `take`: the same check, without the call that
        // nom's `take` compiled to on the decode path (measured with callgrind).
        match self.rest.split_at_checked(n) {
            Some((value, rest)) => {
                self.rest = rest;
                Ok(OctetString::from_checked(self.share(value)))
            }
            None => self.fail(PduError::Truncated { field }),
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
/// This is the hottest parser (five or more per submit_sm), so it scans with a plain `position`
/// and `split_at` instead of nom's `take_till`, which measured about twice the instructions.
#[inline]
fn c_octet_string(input: &[u8], max: usize) -> Result<(&[u8], &[u8]), CStrError> {
    let window = &input[..input.len().min(max)];
    match window.iter().position(|&b| b == 0) {
        Some(nul) => {
            let (value, after) = input.split_at(nul);
            Ok((&after[1..], value))
        }
        None if input.len() >= max => Err(CStrError::TooLong),
        None => Err(CStrError::NoNul),
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
/// One bounds check for the four integers (runs for every frame).
#[inline]
pub(crate) fn header(input: &[u8]) -> Option<(u32, u32, u32, u32)> {
    let h: &[u8; 16] = input.first_chunk()?;
    let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    Some((word(0), word(4), word(8), word(12)))
}

/// How many one-octet fields a [`Writer`] holds back before it copies them out.
const HEAD: usize = 8;

/// Writes a body's fields into the `BytesMut` of the frame. One-octet fields (and the NUL that
/// ends a C-octet string) are held back and go out in one copy with the ones that follow them, up
/// to the next variable-length field: submit_sm then takes 13 copies instead of 21. In a body's
/// generated `put` every hold-back count is a constant, so the held octets stay in a register and
/// each run becomes one small fixed-size store (what the hand-written encoders did). The held
/// octets are an integer, not an array, so that no address of the writer's state reaches a call
/// (which would force the count back to memory and the copies to `memcpy` of unknown size).
pub(crate) struct Writer<'a> {
    dst: &'a mut BytesMut,
    /// Held octets, the first in the lowest byte.
    head: u64,
    held: usize,
}

impl<'a> Writer<'a> {
    #[inline(always)]
    pub(crate) fn new(dst: &'a mut BytesMut) -> Self {
        Self {
            dst,
            head: 0,
            held: 0,
        }
    }

    /// One one-octet field (held back).
    #[inline(always)]
    pub(crate) fn u8(&mut self, v: u8) {
        if self.held == HEAD {
            self.flush();
        }
        self.head |= u64::from(v) << (8 * self.held);
        self.held += 1;
    }

    /// A big-endian integer field (held back like one-octet fields).
    #[inline(always)]
    pub(crate) fn u32(&mut self, v: u32) {
        for b in v.to_be_bytes() {
            self.u8(b);
        }
    }

    /// Octets without terminator (`short_message`); an empty value costs no copy.
    #[inline(always)]
    pub(crate) fn octets(&mut self, b: &[u8]) {
        // Flushing whether or not `b` is empty keeps the hold-back count the same on both paths.
        self.flush();
        if !b.is_empty() {
            self.dst.put_slice(b);
        }
    }

    /// A C-octet string: its octets, then its NUL (held back).
    #[inline(always)]
    pub(crate) fn cstr<const MAX: usize>(&mut self, s: &COctetString<MAX>) {
        self.octets(s.as_bytes());
        self.u8(0);
    }

    /// The buffer itself, for fields that write on their own (TLVs), after the held octets.
    #[inline(always)]
    pub(crate) fn dst(&mut self) -> &mut BytesMut {
        self.flush();
        self.dst
    }

    /// Writes out what is held back; a body's `put` ends with it. (Not a `Drop`: a writer that
    /// must flush on unwinding has to keep its state in memory before every call that may
    /// panic, which cost about 55 instructions per submit_sm encode.)
    #[inline(always)]
    pub(crate) fn flush(&mut self) {
        if self.held > 0 {
            let held = self.head.to_le_bytes();
            self.dst.put_slice(&held[..self.held]);
            self.head = 0;
            self.held = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No body holds more than 6 octets back today; a longer run must still come out whole and
    /// in order when the hold-back is full.
    #[test]
    fn writer_flushes_a_full_hold_back_in_order() {
        let mut dst = BytesMut::new();
        let mut w = Writer::new(&mut dst);
        for v in 1..=10 {
            w.u8(v);
        }
        w.u32(0x0b0c_0d0e);
        w.cstr(&COctetString::<4>::new(&b"xy"[..]).unwrap());
        w.u8(0x0f);
        w.flush();
        assert_eq!(
            &dst[..],
            &[
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, b'x', b'y', 0, 15
            ][..]
        );
    }
}
