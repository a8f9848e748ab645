//! The mandatory body of every SMPP 3.4 PDU (SMPP-FACTS §3), as plain structs with public fields,
//! and their wire layout. Each body is written once, as a field list in `pdu_body!`: the struct,
//! its decoder (fields in list order), its length (the sum), its encoder (fields in order) and its
//! JSON form all follow from that list through the per-kind [`Field`] trait. Field types carry
//! their own limits, so a body built by hand can only break the cross-field rules, which `check`
//! enforces before anything is written (`short_message` vs `message_payload`, `number_of_dests`).
//!
//! Derived fields (`sm_length`, `number_of_dests`, `no_unsuccess`) are not stored: they are
//! computed when encoding. This module must never copy a field on decode.

use bytes::BytesMut;

use super::error::PduError;
use super::field::Field;
use super::json::{In, Json, JsonError, Out, err};
use super::tlv::Tlvs;
use super::types::{
    AddressRange, CommandStatus, DataCoding, DlName, EsmClass, MessageId, MessageState, Npi,
    Password, RegisteredDelivery, ServiceType, ShortMessage, SmeAddress, SmppTime, SystemId,
    SystemType, Ton, WideAddress,
};
use super::wire::{Reader, Writer};

/// How one body (or one entry of a body's list) is read, sized, checked, written and shown as
/// JSON. Implemented by `pdu_body!` from the body's field list.
pub(crate) trait BodyCodec: Sized {
    /// Whether the body ends with optional parameters (anything after the mandatory fields is a
    /// TLV); other bodies must end exactly after their last field.
    const HAS_TLVS: bool;
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError>;
    /// Octets of the body on the wire.
    fn wire_len(&self) -> usize;
    /// Cross-field rules; runs before any octet is written.
    fn check(&self) -> Result<(), PduError>;
    /// Writes the fields in wire order.
    fn put_fields(&self, w: &mut Writer<'_>);
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        let mut w = Writer::new(dst);
        self.put_fields(&mut w);
        w.flush();
    }
    /// Appends the body's keys to a JSON object, in wire order.
    fn to_json(&self, o: &mut Out);
    /// Reads the body's keys from a JSON object.
    fn from_json(o: &mut In<'_>) -> Result<Self, JsonError>;
}

/// A field's SMPP names: given after `=>`, else the struct field's own name.
macro_rules! field_names {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $names:expr) => {
        $names
    };
}

/// Defines a body from its one field list: `pub name: Type [=> names],` in wire order, where the
/// type's [`Field`] impl says how the field is read, sized, written and shown as JSON, and the
/// names default to the field's own. `check: f(a, b);` adds a cross-field rule `f(&a, &b)` on the
/// named fields, checked on decode (after the last field) and before encoding.
macro_rules! pdu_body {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $(
                $(#[$fattr:meta])*
                pub $field:ident: $ty:ty $(=> $names:expr)?,
            )*
        }
        $(check: $rule:ident($($arg:ident),* $(,)?);)?
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fattr])* pub $field: $ty,)*
        }

        impl BodyCodec for $name {
            const HAS_TLVS: bool = false $(|| <$ty as Field>::IS_TLVS)*;

            #[inline]
            fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
                $(let $field = <$ty as Field>::read(r, field_names!($field $(, $names)?))?;)*
                // The rule sees the fields before the struct is built, so the (large) body is
                // written once, in place, rather than built and then moved into the result.
                $($rule($(&$arg),*)?;)?
                Ok(Self { $($field,)* })
            }

            #[inline]
            fn wire_len(&self) -> usize {
                0 $(+ <$ty as Field>::wire_len(&self.$field))*
            }

            #[inline]
            fn check(&self) -> Result<(), PduError> {
                $($rule($(&self.$arg),*)?;)?
                $(<$ty as Field>::check(&self.$field)?;)*
                Ok(())
            }

            // Always inlined into `put`, so the writer's hold-back count folds to constants.
            #[inline(always)]
            fn put_fields(&self, w: &mut Writer<'_>) {
                $(<$ty as Field>::put(&self.$field, w);)*
            }

            fn to_json(&self, o: &mut Out) {
                $(<$ty as Field>::to_json(&self.$field, field_names!($field $(, $names)?), o);)*
            }

            fn from_json(o: &mut In<'_>) -> Result<Self, JsonError> {
                Ok(Self {
                    $($field: <$ty as Field>::from_json(o, field_names!($field $(, $names)?))?,)*
                })
            }
        }
    };
}

const SOURCE: [&str; 3] = ["source_addr_ton", "source_addr_npi", "source_addr"];
const DEST: [&str; 3] = ["dest_addr_ton", "dest_addr_npi", "destination_addr"];
const ESME: [&str; 3] = ["esme_addr_ton", "esme_addr_npi", "esme_addr"];
const SM: [&str; 2] = ["sm_length", "short_message"];

/// `short_message` and the `message_payload` TLV are exclusive (SMPP-FACTS §3.2).
#[inline]
fn check_payload(sm: &ShortMessage, tlvs: &Tlvs) -> Result<(), PduError> {
    if !sm.is_empty() && tlvs.message_payload().is_some() {
        return Err(PduError::ShortMessageWithPayload(sm.len()));
    }
    Ok(())
}

pdu_body! {
    /// bind_transmitter, bind_receiver, bind_transceiver (SMPP-FACTS §3.1).
    pub struct Bind {
        pub system_id: SystemId,
        pub password: Password,
        pub system_type: SystemType,
        /// 0x34 for SMPP 3.4.
        pub interface_version: u8,
        pub addr_ton: Ton,
        pub addr_npi: Npi,
        pub address_range: AddressRange,
    }
}

pdu_body! {
    /// bind_*_resp: `system_id` and optionally `sc_interface_version`.
    pub struct BindResp {
        pub system_id: SystemId,
        pub tlvs: Tlvs,
    }
}

pdu_body! {
    /// outbind (SMSC → ESME).
    pub struct Outbind {
        pub system_id: SystemId,
        pub password: Password,
    }
}

pdu_body! {
    /// submit_sm, and deliver_sm (same layout; SMPP-FACTS §3.2).
    pub struct SubmitSm {
        pub service_type: ServiceType,
        /// `source_addr_ton`, `source_addr_npi`, `source_addr`.
        pub source_addr: SmeAddress => SOURCE,
        /// `dest_addr_ton`, `dest_addr_npi`, `destination_addr`.
        pub dest_addr: SmeAddress => DEST,
        pub esm_class: EsmClass,
        pub protocol_id: u8,
        pub priority_flag: u8,
        pub schedule_delivery_time: SmppTime,
        pub validity_period: SmppTime,
        pub registered_delivery: RegisteredDelivery,
        pub replace_if_present_flag: u8,
        pub data_coding: DataCoding,
        pub sm_default_msg_id: u8,
        /// `sm_length` is its length, derived when encoding.
        pub short_message: ShortMessage => SM,
        pub tlvs: Tlvs,
    }
    check: check_payload(short_message, tlvs);
}

/// deliver_sm has submit_sm's layout.
pub type DeliverSm = SubmitSm;

impl SubmitSm {
    /// The user data: `short_message`, or the `message_payload` TLV when short_message is empty.
    pub fn payload(&self) -> &[u8] {
        if self.short_message.is_empty()
            && let Some(p) = self.tlvs.message_payload()
        {
            return p;
        }
        self.short_message.as_bytes()
    }
}

pdu_body! {
    /// submit_sm_resp, deliver_sm_resp, data_sm_resp: `message_id` and optional TLVs.
    pub struct SubmitSmResp {
        pub message_id: MessageId,
        pub tlvs: Tlvs,
    }
}

/// deliver_sm_resp: `message_id` is unused and sent empty.
pub type DeliverSmResp = SubmitSmResp;
/// data_sm_resp: `message_id` plus optional TLVs (`delivery_failure_reason`, …).
pub type DataSmResp = SubmitSmResp;

/// One destination of submit_multi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestAddress {
    /// `dest_flag` 1: an SME address.
    Sme(SmeAddress),
    /// `dest_flag` 2: a distribution list name.
    DistributionList(DlName),
}

impl DestAddress {
    fn read(r: &mut Reader<'_>) -> Result<Self, PduError> {
        match r.u8("dest_flag")? {
            1 => Field::read(r, DEST).map(Self::Sme),
            2 => Field::read(r, "dl_name").map(Self::DistributionList),
            other => Err(PduError::DestFlag(other)),
        }
    }

    fn wire_len(&self) -> usize {
        1 + match self {
            Self::Sme(a) => a.wire_len(),
            Self::DistributionList(n) => n.wire_len(),
        }
    }

    fn put(&self, w: &mut Writer<'_>) {
        match self {
            Self::Sme(a) => {
                w.u8(1);
                a.put(w);
            }
            Self::DistributionList(n) => {
                w.u8(2);
                w.cstr(n);
            }
        }
    }

    fn to_json(&self) -> Json {
        let mut e = Out::new();
        match self {
            Self::Sme(a) => {
                e.n("dest_flag", 1u8);
                a.to_json(DEST, &mut e);
            }
            Self::DistributionList(n) => {
                e.n("dest_flag", 2u8);
                e.s("dl_name", n);
            }
        }
        e.into_json()
    }

    fn from_json(e: &mut In<'_>) -> Result<Self, JsonError> {
        match e.u8("dest_flag")? {
            1 => Field::from_json(e, DEST).map(Self::Sme),
            2 => Field::from_json(e, "dl_name").map(Self::DistributionList),
            _ => Err(err(
                &e.key("dest_flag"),
                "expected 1 (SME address) or 2 (distribution list)",
            )),
        }
    }
}

/// The destination list of submit_multi: `number_of_dests` (derived) and the entries, each a
/// `dest_flag` and an SME address or a distribution list name. Names: the count, the JSON array.
impl Field for Vec<DestAddress> {
    type Names = [&'static str; 2];
    fn read(r: &mut Reader<'_>, [count, _]: Self::Names) -> Result<Self, PduError> {
        let n = usize::from(r.u8(count)?);
        if n == 0 || n > 254 {
            return Err(PduError::NumberOfDests(n));
        }
        // Each destination takes at least 2 octets, so the body length bounds the allocation.
        let mut list = Vec::with_capacity(n.min(r.remaining() / 2));
        for _ in 0..n {
            list.push(DestAddress::read(r)?);
        }
        Ok(list)
    }
    #[inline]
    fn wire_len(&self) -> usize {
        1 + self.iter().map(DestAddress::wire_len).sum::<usize>()
    }
    fn check(&self) -> Result<(), PduError> {
        if self.is_empty() || self.len() > 254 {
            return Err(PduError::NumberOfDests(self.len()));
        }
        Ok(())
    }
    #[inline]
    fn put(&self, w: &mut Writer<'_>) {
        // check() ran before any write: at most 254 entries.
        w.u8(self.len() as u8);
        for d in self {
            d.put(w);
        }
    }
    fn to_json(&self, [count, list]: Self::Names, o: &mut Out) {
        o.n(count, self.len() as u64);
        o.put(
            list,
            Json::Arr(self.iter().map(DestAddress::to_json).collect()),
        );
    }
    fn from_json(o: &mut In<'_>, [count, list]: Self::Names) -> Result<Self, JsonError> {
        list_from_json(o, count, list, DestAddress::from_json)
    }
}

/// Reads a JSON list of entries (each an object read by `entry`, its keys prefixed
/// `list[i].` in errors) and checks the derived count field against it.
fn list_from_json<T>(
    o: &mut In<'_>,
    count: &'static str,
    list: &'static str,
    entry: fn(&mut In<'_>) -> Result<T, JsonError>,
) -> Result<Vec<T>, JsonError> {
    let entries = o.array(list)?;
    let mut out = Vec::with_capacity(entries.len());
    for (i, item) in entries.iter().enumerate() {
        let mut e = In::new(&format!("{list}[{i}]."), item)?;
        out.push(entry(&mut e)?);
        e.finish()?;
    }
    o.count(count, out.len())?;
    Ok(out)
}

pdu_body! {
    /// submit_multi (SMPP-FACTS §3.7).
    pub struct SubmitMulti {
        pub service_type: ServiceType,
        pub source_addr: SmeAddress => SOURCE,
        /// 1–254 destinations; `number_of_dests` is derived.
        pub dest_addresses: Vec<DestAddress> => ["number_of_dests", "dest_address"],
        pub esm_class: EsmClass,
        pub protocol_id: u8,
        pub priority_flag: u8,
        pub schedule_delivery_time: SmppTime,
        pub validity_period: SmppTime,
        pub registered_delivery: RegisteredDelivery,
        pub replace_if_present_flag: u8,
        pub data_coding: DataCoding,
        pub sm_default_msg_id: u8,
        pub short_message: ShortMessage => SM,
        pub tlvs: Tlvs,
    }
    check: check_payload(short_message, tlvs);
}

pdu_body! {
    /// One destination submit_multi could not deliver to.
    pub struct UnsuccessSme {
        pub addr: SmeAddress => DEST,
        pub error_status_code: CommandStatus,
    }
}

/// The unsuccessful destinations of submit_multi_resp: `no_unsuccess` (derived) and the entries.
/// Names: the count, the JSON array.
impl Field for Vec<UnsuccessSme> {
    type Names = [&'static str; 2];
    fn read(r: &mut Reader<'_>, [count, _]: Self::Names) -> Result<Self, PduError> {
        let n = usize::from(r.u8(count)?);
        // Each entry takes at least 7 octets, so the body length bounds the allocation.
        let mut list = Vec::with_capacity(n.min(r.remaining() / 7));
        for _ in 0..n {
            // An error response may stop anywhere (SMPP-FACTS §2).
            if r.lenient() && r.is_empty() {
                break;
            }
            list.push(UnsuccessSme::decode(r)?);
        }
        Ok(list)
    }
    #[inline]
    fn wire_len(&self) -> usize {
        1 + self.iter().map(UnsuccessSme::wire_len).sum::<usize>()
    }
    fn check(&self) -> Result<(), PduError> {
        if self.len() > 254 {
            return Err(PduError::NoUnsuccess(self.len()));
        }
        Ok(())
    }
    #[inline]
    fn put(&self, w: &mut Writer<'_>) {
        // check() ran before any write: at most 254 entries.
        w.u8(self.len() as u8);
        for u in self {
            u.put_fields(w);
        }
    }
    fn to_json(&self, [count, list]: Self::Names, o: &mut Out) {
        o.n(count, self.len() as u64);
        let entries = self.iter().map(|u| {
            let mut e = Out::new();
            u.to_json(&mut e);
            e.into_json()
        });
        o.put(list, Json::Arr(entries.collect()));
    }
    fn from_json(o: &mut In<'_>, [count, list]: Self::Names) -> Result<Self, JsonError> {
        list_from_json(o, count, list, UnsuccessSme::from_json)
    }
}

pdu_body! {
    /// submit_multi_resp: `message_id`, then `no_unsuccess` (derived) unsuccessful destinations.
    pub struct SubmitMultiResp {
        pub message_id: MessageId,
        pub unsuccess_smes: Vec<UnsuccessSme> => ["no_unsuccess", "unsuccess_sme"],
        pub tlvs: Tlvs,
    }
}

pdu_body! {
    /// data_sm (SMPP-FACTS §3.4): addresses up to 65 octets, the payload in TLVs.
    pub struct DataSm {
        pub service_type: ServiceType,
        pub source_addr: WideAddress => SOURCE,
        pub dest_addr: WideAddress => DEST,
        pub esm_class: EsmClass,
        pub registered_delivery: RegisteredDelivery,
        pub data_coding: DataCoding,
        pub tlvs: Tlvs,
    }
}

pdu_body! {
    /// query_sm (SMPP-FACTS §3.5).
    pub struct QuerySm {
        pub message_id: MessageId,
        pub source_addr: SmeAddress => SOURCE,
    }
}

pdu_body! {
    /// query_sm_resp (SMPP-FACTS §3.6).
    pub struct QuerySmResp {
        pub message_id: MessageId,
        /// Empty while the message is not final.
        pub final_date: SmppTime,
        pub message_state: MessageState,
        pub error_code: u8,
    }
}

pdu_body! {
    /// cancel_sm (SMPP-FACTS §3.7).
    pub struct CancelSm {
        pub service_type: ServiceType,
        pub message_id: MessageId,
        pub source_addr: SmeAddress => SOURCE,
        pub dest_addr: SmeAddress => DEST,
    }
}

pdu_body! {
    /// replace_sm (SMPP-FACTS §3.7).
    pub struct ReplaceSm {
        pub message_id: MessageId,
        pub source_addr: SmeAddress => SOURCE,
        pub schedule_delivery_time: SmppTime,
        pub validity_period: SmppTime,
        pub registered_delivery: RegisteredDelivery,
        pub sm_default_msg_id: u8,
        pub short_message: ShortMessage => SM,
    }
}

pdu_body! {
    /// alert_notification (SMSC → ESME, no response).
    pub struct AlertNotification {
        pub source_addr: WideAddress => SOURCE,
        /// `esme_addr_ton`, `esme_addr_npi`, `esme_addr`.
        pub esme_addr: WideAddress => ESME,
        pub tlvs: Tlvs,
    }
}
