//! One kind of mandatory body field (C-octet string, one-octet flag, TON/NPI/address group,
//! `sm_length` + `short_message`, the TLVs): how it is read from the wire, sized, checked, written,
//! and shown as JSON. A body lists its fields once (`pdu_body!` in `body`) and every one of those
//! six operations follows from the list through this trait.
//!
//! Reading keeps the rules of `wire` (a field is a slice of the frame, never a copy); the JSON half
//! allocates freely and must never be called on the hot path.

use super::error::PduError;
use super::json::{In, Json, JsonError, Out, err, hex_from_json, uint_from_json};
use super::tlv::Tlvs;
use super::types::{
    Address, COctetString, CommandStatus, DataCoding, EsmClass, MessageState, Npi, OctetString,
    Password, RegisteredDelivery, ShortMessage, Ton,
};
use super::wire::{Reader, Writer};

/// One field kind. `Names` are the SMPP names the field uses on the wire (in errors) and in JSON:
/// one for a plain field, more for a group (`["source_addr_ton", "source_addr_npi",
/// "source_addr"]`).
pub(crate) trait Field: Sized {
    type Names: Copy;
    /// True for the optional parameters, which end a body and take whatever octets are left.
    const IS_TLVS: bool = false;
    fn read(r: &mut Reader<'_>, names: Self::Names) -> Result<Self, PduError>;
    /// Octets on the wire.
    fn wire_len(&self) -> usize;
    /// The field's own rules, checked before anything is written (types enforce most of them).
    #[inline]
    fn check(&self) -> Result<(), PduError> {
        Ok(())
    }
    fn put(&self, w: &mut Writer<'_>);
    /// Appends the field's keys and values to the JSON object, in wire order.
    fn to_json(&self, names: Self::Names, o: &mut Out);
    /// Reads the field's keys; a missing key reads as the empty or zero value.
    fn from_json(o: &mut In<'_>, names: Self::Names) -> Result<Self, JsonError>;
}

impl<const MAX: usize> Field for COctetString<MAX> {
    type Names = &'static str;
    #[inline]
    fn read(r: &mut Reader<'_>, name: &'static str) -> Result<Self, PduError> {
        r.cstr(name)
    }
    #[inline]
    fn wire_len(&self) -> usize {
        COctetString::wire_len(self)
    }
    #[inline(always)]
    fn put(&self, w: &mut Writer<'_>) {
        w.cstr(self);
    }
    fn to_json(&self, name: &'static str, o: &mut Out) {
        o.s(name, self);
    }
    fn from_json(o: &mut In<'_>, name: &'static str) -> Result<Self, JsonError> {
        o.s(name)
    }
}

impl Field for Password {
    type Names = &'static str;
    #[inline]
    fn read(r: &mut Reader<'_>, name: &'static str) -> Result<Self, PduError> {
        r.cstr(name).map(Password)
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.0.wire_len()
    }
    #[inline(always)]
    fn put(&self, w: &mut Writer<'_>) {
        w.cstr(&self.0);
    }
    fn to_json(&self, name: &'static str, o: &mut Out) {
        o.s(name, &self.0);
    }
    fn from_json(o: &mut In<'_>, name: &'static str) -> Result<Self, JsonError> {
        o.s(name).map(Password)
    }
}

/// One-octet integer fields: `u8` itself and its newtypes (JSON: a number).
macro_rules! octet_fields {
    ($($t:ty),* $(,)?) => {$(
        impl Field for $t {
            type Names = &'static str;
            // Always inlined: a call would return the `Result` through memory, costing more
            // than the read itself (a bounds check and a load).
            #[inline(always)]
            fn read(r: &mut Reader<'_>, name: &'static str) -> Result<Self, PduError> {
                r.u8(name).map(<$t>::from)
            }
            #[inline]
            fn wire_len(&self) -> usize {
                1
            }
            #[inline(always)]
            fn put(&self, w: &mut Writer<'_>) {
                w.u8(u8::from(*self));
            }
            fn to_json(&self, name: &'static str, o: &mut Out) {
                o.n(name, u8::from(*self));
            }
            fn from_json(o: &mut In<'_>, name: &'static str) -> Result<Self, JsonError> {
                o.u8(name).map(<$t>::from)
            }
        }
    )*};
}

octet_fields!(
    u8,
    Ton,
    Npi,
    EsmClass,
    RegisteredDelivery,
    DataCoding,
    MessageState
);

/// A four-octet status (`error_status_code` of submit_multi_resp).
impl Field for CommandStatus {
    type Names = &'static str;
    #[inline]
    fn read(r: &mut Reader<'_>, name: &'static str) -> Result<Self, PduError> {
        r.u32(name).map(CommandStatus)
    }
    #[inline]
    fn wire_len(&self) -> usize {
        4
    }
    #[inline(always)]
    fn put(&self, w: &mut Writer<'_>) {
        w.u32(self.0);
    }
    fn to_json(&self, name: &'static str, o: &mut Out) {
        o.n(name, self.0);
    }
    fn from_json(o: &mut In<'_>, name: &'static str) -> Result<Self, JsonError> {
        o.u32(name).map(CommandStatus)
    }
}

/// A TON, NPI, address triple; names in that order.
impl<const MAX: usize> Field for Address<MAX> {
    type Names = [&'static str; 3];
    #[inline]
    fn read(r: &mut Reader<'_>, [ton, npi, addr]: Self::Names) -> Result<Self, PduError> {
        Ok(Address {
            ton: Ton(r.u8(ton)?),
            npi: Npi(r.u8(npi)?),
            addr: r.cstr(addr)?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        2 + self.addr.wire_len()
    }
    #[inline(always)]
    fn put(&self, w: &mut Writer<'_>) {
        w.u8(self.ton.0);
        w.u8(self.npi.0);
        w.cstr(&self.addr);
    }
    fn to_json(&self, [ton, npi, addr]: Self::Names, o: &mut Out) {
        o.n(ton, self.ton.0);
        o.n(npi, self.npi.0);
        o.s(addr, &self.addr);
    }
    fn from_json(o: &mut In<'_>, [ton, npi, addr]: Self::Names) -> Result<Self, JsonError> {
        Ok(Address {
            ton: Ton(o.u8(ton)?),
            npi: Npi(o.u8(npi)?),
            addr: o.s(addr)?,
        })
    }
}

/// `sm_length` then `short_message` (names in that order). The length is derived: it is not
/// stored, it is written from the message, and in JSON it is printed and checked when given.
impl Field for ShortMessage {
    type Names = [&'static str; 2];
    #[inline]
    fn read(r: &mut Reader<'_>, [len, sm]: Self::Names) -> Result<Self, PduError> {
        let n = usize::from(r.u8(len)?);
        if n > 254 {
            return Err(PduError::SmLength(n));
        }
        r.octets::<0, 254>(n, sm)
    }
    #[inline]
    fn wire_len(&self) -> usize {
        1 + self.len()
    }
    #[inline(always)]
    fn put(&self, w: &mut Writer<'_>) {
        // At most 254 octets by construction.
        w.u8(self.len() as u8);
        w.octets(self.as_bytes());
    }
    fn to_json(&self, [len, sm]: Self::Names, o: &mut Out) {
        o.n(len, self.len() as u64);
        o.put(sm, Json::Str(hex::encode(self.as_bytes())));
    }
    fn from_json(o: &mut In<'_>, [len, sm]: Self::Names) -> Result<Self, JsonError> {
        let value = match o.take(sm) {
            None => OctetString::default(),
            Some(j) => {
                let b = hex_from_json(j).map_err(|p| err(&o.key(sm), p))?;
                OctetString::new(b).map_err(|e| err(&o.key(sm), e))?
            }
        };
        if let Some(j) = o.take(len) {
            let n = uint_from_json(j, 255).map_err(|p| err(&o.key(len), p))?;
            if n != value.len() as u64 {
                return Err(err(
                    &o.key(len),
                    format!("{n} does not match {sm} ({} octets)", value.len()),
                ));
            }
        }
        Ok(value)
    }
}

/// The optional parameters: the rest of the body, in wire order.
impl Field for Tlvs {
    type Names = &'static str;
    const IS_TLVS: bool = true;
    #[inline]
    fn read(r: &mut Reader<'_>, _: &'static str) -> Result<Self, PduError> {
        Tlvs::decode(r)
    }
    #[inline]
    fn wire_len(&self) -> usize {
        Tlvs::wire_len(self)
    }
    #[inline]
    fn check(&self) -> Result<(), PduError> {
        Tlvs::check(self)
    }
    #[inline(always)]
    fn put(&self, w: &mut Writer<'_>) {
        Tlvs::put(self, w.dst());
    }
    fn to_json(&self, name: &'static str, o: &mut Out) {
        o.tlvs(name, self);
    }
    fn from_json(o: &mut In<'_>, name: &'static str) -> Result<Self, JsonError> {
        o.tlvs(name)
    }
}
