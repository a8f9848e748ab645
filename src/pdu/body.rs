//! The mandatory body of every SMPP 3.4 PDU (SMPP-FACTS §3), as plain structs with public fields,
//! and their wire layout. Field types carry their own limits, so a body built by hand can only
//! break the cross-field rules, which `check` enforces before anything is written
//! (`short_message` vs `message_payload`, `number_of_dests`).
//!
//! Derived fields (`sm_length`, `number_of_dests`, `no_unsuccess`) are not stored: they are
//! computed when encoding. This module must never copy a field on decode.

use bytes::{BufMut, BytesMut};

use super::error::PduError;
use super::tlv::Tlvs;
use super::types::{
    Address, AddressRange, CommandStatus, DataCoding, DlName, EsmClass, MessageId, MessageState,
    Npi, Password, RegisteredDelivery, ServiceType, ShortMessage, SmeAddress, SmppTime, SystemId,
    SystemType, Ton, WideAddress,
};
use super::wire::{Reader, put_cstr};

/// How one body is read, sized and written.
pub(crate) trait BodyCodec: Sized {
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError>;
    /// Octets of the body on the wire.
    fn wire_len(&self) -> usize;
    /// Cross-field rules; runs before any octet is written.
    fn check(&self) -> Result<(), PduError> {
        Ok(())
    }
    fn put(&self, dst: &mut BytesMut);
}

fn read_addr<const MAX: usize>(
    r: &mut Reader<'_>,
    ton: &'static str,
    npi: &'static str,
    addr: &'static str,
) -> Result<Address<MAX>, PduError> {
    Ok(Address {
        ton: Ton(r.u8(ton)?),
        npi: Npi(r.u8(npi)?),
        addr: r.cstr::<MAX>(addr)?,
    })
}

#[inline]
fn put_addr<const MAX: usize>(dst: &mut BytesMut, a: &Address<MAX>) {
    dst.put_slice(&[a.ton.0, a.npi.0]);
    put_cstr(dst, &a.addr);
}

fn addr_len<const MAX: usize>(a: &Address<MAX>) -> usize {
    2 + a.addr.wire_len()
}

/// Reads `short_message` given `sm_length`.
#[inline]
fn read_short_message(r: &mut Reader<'_>, sm_length: u8) -> Result<ShortMessage, PduError> {
    let sm_length = usize::from(sm_length);
    if sm_length > 254 {
        return Err(PduError::SmLength(sm_length));
    }
    r.octets::<0, 254>(sm_length, "short_message")
}

/// Copies `b` unless it is empty (an empty copy still costs a `memcpy` call).
#[inline]
fn put_text(dst: &mut BytesMut, b: &[u8]) {
    if !b.is_empty() {
        dst.put_slice(b);
    }
}

#[inline]
fn put_short_message(dst: &mut BytesMut, sm: &ShortMessage) {
    dst.put_slice(sm.as_bytes());
}

/// `sm_length` of a short message (at most 254 octets by construction).
#[inline]
fn sm_length(sm: &ShortMessage) -> u8 {
    sm.len() as u8
}

fn check_payload(sm: &ShortMessage, tlvs: &Tlvs) -> Result<(), PduError> {
    if !sm.is_empty() && tlvs.message_payload().is_some() {
        return Err(PduError::ShortMessageWithPayload(sm.len()));
    }
    Ok(())
}

/// bind_transmitter, bind_receiver, bind_transceiver (SMPP-FACTS §3.1).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
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

impl BodyCodec for Bind {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            system_id: r.cstr("system_id")?,
            password: Password(r.cstr("password")?),
            system_type: r.cstr("system_type")?,
            interface_version: r.u8("interface_version")?,
            addr_ton: Ton(r.u8("addr_ton")?),
            addr_npi: Npi(r.u8("addr_npi")?),
            address_range: r.cstr("address_range")?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.system_id.wire_len()
            + self.password.0.wire_len()
            + self.system_type.wire_len()
            + 3
            + self.address_range.wire_len()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.system_id);
        put_cstr(dst, &self.password.0);
        put_cstr(dst, &self.system_type);
        dst.put_u8(self.interface_version);
        dst.put_u8(self.addr_ton.0);
        dst.put_u8(self.addr_npi.0);
        put_cstr(dst, &self.address_range);
    }
}

/// bind_*_resp: `system_id` and optionally `sc_interface_version`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BindResp {
    pub system_id: SystemId,
    pub tlvs: Tlvs,
}

impl BodyCodec for BindResp {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            system_id: r.cstr("system_id")?,
            tlvs: Tlvs::decode(r)?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.system_id.wire_len() + self.tlvs.wire_len()
    }
    fn check(&self) -> Result<(), PduError> {
        self.tlvs.check()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.system_id);
        self.tlvs.put(dst);
    }
}

/// outbind (SMSC → ESME).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Outbind {
    pub system_id: SystemId,
    pub password: Password,
}

impl BodyCodec for Outbind {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            system_id: r.cstr("system_id")?,
            password: Password(r.cstr("password")?),
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.system_id.wire_len() + self.password.0.wire_len()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.system_id);
        put_cstr(dst, &self.password.0);
    }
}

/// submit_sm, and deliver_sm (same layout; SMPP-FACTS §3.2).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubmitSm {
    pub service_type: ServiceType,
    /// `source_addr_ton`, `source_addr_npi`, `source_addr`.
    pub source_addr: SmeAddress,
    /// `dest_addr_ton`, `dest_addr_npi`, `destination_addr`.
    pub dest_addr: SmeAddress,
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
    pub short_message: ShortMessage,
    pub tlvs: Tlvs,
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

/// The fields submit_sm (and deliver_sm) and submit_multi share after their addresses, from
/// `esm_class` to the TLVs.
struct SmTail {
    esm_class: EsmClass,
    protocol_id: u8,
    priority_flag: u8,
    schedule_delivery_time: SmppTime,
    validity_period: SmppTime,
    registered_delivery: RegisteredDelivery,
    replace_if_present_flag: u8,
    data_coding: DataCoding,
    sm_default_msg_id: u8,
    short_message: ShortMessage,
    tlvs: Tlvs,
}

/// Reads [`SmTail`] and checks the `short_message` / `message_payload` rule before the PDU's
/// struct is built.
#[inline]
fn read_sm_tail(r: &mut Reader<'_>) -> Result<SmTail, PduError> {
    let [esm_class, protocol_id, priority_flag] =
        r.array(["esm_class", "protocol_id", "priority_flag"])?;
    let schedule_delivery_time = r.cstr("schedule_delivery_time")?;
    let validity_period = r.cstr("validity_period")?;
    let [
        registered_delivery,
        replace_if_present_flag,
        data_coding,
        sm_default_msg_id,
        sm_length,
    ] = r.array([
        "registered_delivery",
        "replace_if_present_flag",
        "data_coding",
        "sm_default_msg_id",
        "sm_length",
    ])?;
    let short_message = read_short_message(r, sm_length)?;
    let tlvs = Tlvs::decode(r)?;
    check_payload(&short_message, &tlvs)?;
    Ok(SmTail {
        esm_class: EsmClass(esm_class),
        protocol_id,
        priority_flag,
        schedule_delivery_time,
        validity_period,
        registered_delivery: RegisteredDelivery(registered_delivery),
        replace_if_present_flag,
        data_coding: DataCoding(data_coding),
        sm_default_msg_id,
        short_message,
        tlvs,
    })
}

impl BodyCodec for SubmitSm {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        let service_type = r.cstr("service_type")?;
        let source_addr = read_addr(r, "source_addr_ton", "source_addr_npi", "source_addr")?;
        let dest_addr = read_addr(r, "dest_addr_ton", "dest_addr_npi", "destination_addr")?;
        let t = read_sm_tail(r)?;
        Ok(Self {
            service_type,
            source_addr,
            dest_addr,
            esm_class: t.esm_class,
            protocol_id: t.protocol_id,
            priority_flag: t.priority_flag,
            schedule_delivery_time: t.schedule_delivery_time,
            validity_period: t.validity_period,
            registered_delivery: t.registered_delivery,
            replace_if_present_flag: t.replace_if_present_flag,
            data_coding: t.data_coding,
            sm_default_msg_id: t.sm_default_msg_id,
            short_message: t.short_message,
            tlvs: t.tlvs,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.service_type.wire_len()
            + addr_len(&self.source_addr)
            + addr_len(&self.dest_addr)
            + 3
            + self.schedule_delivery_time.wire_len()
            + self.validity_period.wire_len()
            + 5
            + self.short_message.len()
            + self.tlvs.wire_len()
    }
    #[inline]
    fn check(&self) -> Result<(), PduError> {
        check_payload(&self.short_message, &self.tlvs)?;
        self.tlvs.check()
    }
    #[inline]
    /// The hottest encoder: each C-string's NUL is written together with the one-octet fields
    /// that follow it, and empty strings cost no copy (13 writes instead of 21).
    fn put(&self, dst: &mut BytesMut) {
        put_text(dst, self.service_type.as_bytes());
        dst.put_slice(&[0, self.source_addr.ton.0, self.source_addr.npi.0]);
        put_text(dst, self.source_addr.addr.as_bytes());
        dst.put_slice(&[0, self.dest_addr.ton.0, self.dest_addr.npi.0]);
        put_text(dst, self.dest_addr.addr.as_bytes());
        dst.put_slice(&[0, self.esm_class.0, self.protocol_id, self.priority_flag]);
        put_text(dst, self.schedule_delivery_time.as_bytes());
        dst.put_u8(0);
        put_text(dst, self.validity_period.as_bytes());
        dst.put_slice(&[
            0,
            self.registered_delivery.0,
            self.replace_if_present_flag,
            self.data_coding.0,
            self.sm_default_msg_id,
            sm_length(&self.short_message),
        ]);
        put_text(dst, self.short_message.as_bytes());
        self.tlvs.put(dst);
    }
}

/// submit_sm_resp, deliver_sm_resp, data_sm_resp: `message_id` and optional TLVs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubmitSmResp {
    pub message_id: MessageId,
    pub tlvs: Tlvs,
}

/// deliver_sm_resp: `message_id` is unused and sent empty.
pub type DeliverSmResp = SubmitSmResp;
/// data_sm_resp: `message_id` plus optional TLVs (`delivery_failure_reason`, …).
pub type DataSmResp = SubmitSmResp;

impl BodyCodec for SubmitSmResp {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            message_id: r.cstr("message_id")?,
            tlvs: Tlvs::decode(r)?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.message_id.wire_len() + self.tlvs.wire_len()
    }
    fn check(&self) -> Result<(), PduError> {
        self.tlvs.check()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.message_id);
        self.tlvs.put(dst);
    }
}

/// One destination of submit_multi.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestAddress {
    /// `dest_flag` 1: an SME address.
    Sme(SmeAddress),
    /// `dest_flag` 2: a distribution list name.
    DistributionList(DlName),
}

/// submit_multi (SMPP-FACTS §3.7).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubmitMulti {
    pub service_type: ServiceType,
    pub source_addr: SmeAddress,
    /// 1–254 destinations; `number_of_dests` is derived.
    pub dest_addresses: Vec<DestAddress>,
    pub esm_class: EsmClass,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: SmppTime,
    pub validity_period: SmppTime,
    pub registered_delivery: RegisteredDelivery,
    pub replace_if_present_flag: u8,
    pub data_coding: DataCoding,
    pub sm_default_msg_id: u8,
    pub short_message: ShortMessage,
    pub tlvs: Tlvs,
}

impl BodyCodec for SubmitMulti {
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        let service_type = r.cstr("service_type")?;
        let source_addr = read_addr(r, "source_addr_ton", "source_addr_npi", "source_addr")?;
        let n = usize::from(r.u8("number_of_dests")?);
        if n == 0 || n > 254 {
            return Err(PduError::NumberOfDests(n));
        }
        // Each destination takes at least 2 octets, so the body length bounds the allocation.
        let mut dest_addresses = Vec::with_capacity(n.min(r.remaining() / 2));
        for _ in 0..n {
            let flag = r.u8("dest_flag")?;
            dest_addresses.push(match flag {
                1 => DestAddress::Sme(read_addr(
                    r,
                    "dest_addr_ton",
                    "dest_addr_npi",
                    "destination_addr",
                )?),
                2 => DestAddress::DistributionList(r.cstr("dl_name")?),
                other => return Err(PduError::DestFlag(other)),
            });
        }
        let t = read_sm_tail(r)?;
        Ok(Self {
            service_type,
            source_addr,
            dest_addresses,
            esm_class: t.esm_class,
            protocol_id: t.protocol_id,
            priority_flag: t.priority_flag,
            schedule_delivery_time: t.schedule_delivery_time,
            validity_period: t.validity_period,
            registered_delivery: t.registered_delivery,
            replace_if_present_flag: t.replace_if_present_flag,
            data_coding: t.data_coding,
            sm_default_msg_id: t.sm_default_msg_id,
            short_message: t.short_message,
            tlvs: t.tlvs,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        let dests: usize = self
            .dest_addresses
            .iter()
            .map(|d| match d {
                DestAddress::Sme(a) => 1 + addr_len(a),
                DestAddress::DistributionList(n) => 1 + n.wire_len(),
            })
            .sum();
        self.service_type.wire_len()
            + addr_len(&self.source_addr)
            + 1
            + dests
            + 3
            + self.schedule_delivery_time.wire_len()
            + self.validity_period.wire_len()
            + 5
            + self.short_message.len()
            + self.tlvs.wire_len()
    }
    fn check(&self) -> Result<(), PduError> {
        let n = self.dest_addresses.len();
        if n == 0 || n > 254 {
            return Err(PduError::NumberOfDests(n));
        }
        check_payload(&self.short_message, &self.tlvs)?;
        self.tlvs.check()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.service_type);
        put_addr(dst, &self.source_addr);
        dst.put_u8(self.dest_addresses.len() as u8);
        for d in &self.dest_addresses {
            match d {
                DestAddress::Sme(a) => {
                    dst.put_u8(1);
                    put_addr(dst, a);
                }
                DestAddress::DistributionList(n) => {
                    dst.put_u8(2);
                    put_cstr(dst, n);
                }
            }
        }
        dst.put_slice(&[self.esm_class.0, self.protocol_id, self.priority_flag]);
        put_cstr(dst, &self.schedule_delivery_time);
        put_cstr(dst, &self.validity_period);
        dst.put_slice(&[
            self.registered_delivery.0,
            self.replace_if_present_flag,
            self.data_coding.0,
            self.sm_default_msg_id,
            sm_length(&self.short_message),
        ]);
        put_short_message(dst, &self.short_message);
        self.tlvs.put(dst);
    }
}

/// One destination submit_multi could not deliver to.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UnsuccessSme {
    pub addr: SmeAddress,
    pub error_status_code: CommandStatus,
}

/// submit_multi_resp: `message_id`, then `no_unsuccess` (derived) unsuccessful destinations.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SubmitMultiResp {
    pub message_id: MessageId,
    pub unsuccess_smes: Vec<UnsuccessSme>,
    pub tlvs: Tlvs,
}

impl BodyCodec for SubmitMultiResp {
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        let message_id = r.cstr("message_id")?;
        let n = usize::from(r.u8("no_unsuccess")?);
        // Each entry takes at least 7 octets, so the body length bounds the allocation.
        let mut unsuccess_smes = Vec::with_capacity(n.min(r.remaining() / 7));
        for _ in 0..n {
            if r.lenient() && r.is_empty() {
                break;
            }
            unsuccess_smes.push(UnsuccessSme {
                addr: read_addr(r, "dest_addr_ton", "dest_addr_npi", "destination_addr")?,
                error_status_code: CommandStatus(r.u32("error_status_code")?),
            });
        }
        Ok(Self {
            message_id,
            unsuccess_smes,
            tlvs: Tlvs::decode(r)?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        let list: usize = self
            .unsuccess_smes
            .iter()
            .map(|u| addr_len(&u.addr) + 4)
            .sum();
        self.message_id.wire_len() + 1 + list + self.tlvs.wire_len()
    }
    fn check(&self) -> Result<(), PduError> {
        if self.unsuccess_smes.len() > 254 {
            return Err(PduError::NoUnsuccess(self.unsuccess_smes.len()));
        }
        self.tlvs.check()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.message_id);
        dst.put_u8(self.unsuccess_smes.len() as u8);
        for u in &self.unsuccess_smes {
            put_addr(dst, &u.addr);
            dst.put_u32(u.error_status_code.0);
        }
        self.tlvs.put(dst);
    }
}

/// data_sm (SMPP-FACTS §3.4): addresses up to 65 octets, the payload in TLVs.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DataSm {
    pub service_type: ServiceType,
    pub source_addr: WideAddress,
    pub dest_addr: WideAddress,
    pub esm_class: EsmClass,
    pub registered_delivery: RegisteredDelivery,
    pub data_coding: DataCoding,
    pub tlvs: Tlvs,
}

impl BodyCodec for DataSm {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            service_type: r.cstr("service_type")?,
            source_addr: read_addr(r, "source_addr_ton", "source_addr_npi", "source_addr")?,
            dest_addr: read_addr(r, "dest_addr_ton", "dest_addr_npi", "destination_addr")?,
            esm_class: EsmClass(r.u8("esm_class")?),
            registered_delivery: RegisteredDelivery(r.u8("registered_delivery")?),
            data_coding: DataCoding(r.u8("data_coding")?),
            tlvs: Tlvs::decode(r)?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.service_type.wire_len()
            + addr_len(&self.source_addr)
            + addr_len(&self.dest_addr)
            + 3
            + self.tlvs.wire_len()
    }
    fn check(&self) -> Result<(), PduError> {
        self.tlvs.check()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.service_type);
        put_addr(dst, &self.source_addr);
        put_addr(dst, &self.dest_addr);
        dst.put_u8(self.esm_class.0);
        dst.put_u8(self.registered_delivery.0);
        dst.put_u8(self.data_coding.0);
        self.tlvs.put(dst);
    }
}

/// query_sm (SMPP-FACTS §3.5).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QuerySm {
    pub message_id: MessageId,
    pub source_addr: SmeAddress,
}

impl BodyCodec for QuerySm {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            message_id: r.cstr("message_id")?,
            source_addr: read_addr(r, "source_addr_ton", "source_addr_npi", "source_addr")?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.message_id.wire_len() + addr_len(&self.source_addr)
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.message_id);
        put_addr(dst, &self.source_addr);
    }
}

/// query_sm_resp (SMPP-FACTS §3.6).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QuerySmResp {
    pub message_id: MessageId,
    /// Empty while the message is not final.
    pub final_date: SmppTime,
    pub message_state: MessageState,
    pub error_code: u8,
}

impl BodyCodec for QuerySmResp {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            message_id: r.cstr("message_id")?,
            final_date: r.cstr("final_date")?,
            message_state: MessageState(r.u8("message_state")?),
            error_code: r.u8("error_code")?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.message_id.wire_len() + self.final_date.wire_len() + 2
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.message_id);
        put_cstr(dst, &self.final_date);
        dst.put_u8(self.message_state.0);
        dst.put_u8(self.error_code);
    }
}

/// cancel_sm (SMPP-FACTS §3.7).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CancelSm {
    pub service_type: ServiceType,
    pub message_id: MessageId,
    pub source_addr: SmeAddress,
    pub dest_addr: SmeAddress,
}

impl BodyCodec for CancelSm {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            service_type: r.cstr("service_type")?,
            message_id: r.cstr("message_id")?,
            source_addr: read_addr(r, "source_addr_ton", "source_addr_npi", "source_addr")?,
            dest_addr: read_addr(r, "dest_addr_ton", "dest_addr_npi", "destination_addr")?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.service_type.wire_len()
            + self.message_id.wire_len()
            + addr_len(&self.source_addr)
            + addr_len(&self.dest_addr)
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.service_type);
        put_cstr(dst, &self.message_id);
        put_addr(dst, &self.source_addr);
        put_addr(dst, &self.dest_addr);
    }
}

/// replace_sm (SMPP-FACTS §3.7).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReplaceSm {
    pub message_id: MessageId,
    pub source_addr: SmeAddress,
    pub schedule_delivery_time: SmppTime,
    pub validity_period: SmppTime,
    pub registered_delivery: RegisteredDelivery,
    pub sm_default_msg_id: u8,
    pub short_message: ShortMessage,
}

impl BodyCodec for ReplaceSm {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            message_id: r.cstr("message_id")?,
            source_addr: read_addr(r, "source_addr_ton", "source_addr_npi", "source_addr")?,
            schedule_delivery_time: r.cstr("schedule_delivery_time")?,
            validity_period: r.cstr("validity_period")?,
            registered_delivery: RegisteredDelivery(r.u8("registered_delivery")?),
            sm_default_msg_id: r.u8("sm_default_msg_id")?,
            short_message: {
                let n = r.u8("sm_length")?;
                read_short_message(r, n)?
            },
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        self.message_id.wire_len()
            + addr_len(&self.source_addr)
            + self.schedule_delivery_time.wire_len()
            + self.validity_period.wire_len()
            + 3
            + self.short_message.len()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_cstr(dst, &self.message_id);
        put_addr(dst, &self.source_addr);
        put_cstr(dst, &self.schedule_delivery_time);
        put_cstr(dst, &self.validity_period);
        dst.put_slice(&[
            self.registered_delivery.0,
            self.sm_default_msg_id,
            sm_length(&self.short_message),
        ]);
        put_short_message(dst, &self.short_message);
    }
}

/// alert_notification (SMSC → ESME, no response).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AlertNotification {
    pub source_addr: WideAddress,
    /// `esme_addr_ton`, `esme_addr_npi`, `esme_addr`.
    pub esme_addr: WideAddress,
    pub tlvs: Tlvs,
}

impl BodyCodec for AlertNotification {
    #[inline]
    fn decode(r: &mut Reader<'_>) -> Result<Self, PduError> {
        Ok(Self {
            source_addr: read_addr(r, "source_addr_ton", "source_addr_npi", "source_addr")?,
            esme_addr: read_addr(r, "esme_addr_ton", "esme_addr_npi", "esme_addr")?,
            tlvs: Tlvs::decode(r)?,
        })
    }
    #[inline]
    fn wire_len(&self) -> usize {
        addr_len(&self.source_addr) + addr_len(&self.esme_addr) + self.tlvs.wire_len()
    }
    fn check(&self) -> Result<(), PduError> {
        self.tlvs.check()
    }
    #[inline]
    fn put(&self, dst: &mut BytesMut) {
        put_addr(dst, &self.source_addr);
        put_addr(dst, &self.esme_addr);
        self.tlvs.put(dst);
    }
}
