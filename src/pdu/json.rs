//! PDUs as JSON objects keyed by SMPP 3.4 field names, and back (`smppd pdu decode|encode`, the
//! golden vectors in `pdus/`).
//!
//! Shape: `command` (name), `command_status` (number), `sequence_number`, then the body fields in
//! wire order. C-octet strings are JSON strings without the NUL (an `{"hex": …}` object when the
//! octets are not UTF-8); octet strings (`short_message`) are lowercase hex; derived counts
//! (`sm_length`, `number_of_dests`, `no_unsuccess`) are printed, and checked when given on input.
//! `tlvs` is an object keyed by TLV name in wire order (unknown tags as `"0x1403": "<hex>"`), with
//! numbers for integer TLVs, strings for C-octet-string TLVs and hex for octet-string TLVs; every
//! PDU has the key, empty when there are none. An error response sent without body (SMPP 3.4's
//! form) has no body keys.
//!
//! Objects keep their key order in both directions ([`Json`]), so TLVs re-encode in wire order.
//! This module must never be used on the hot path: it allocates freely.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::body::{
    AlertNotification, Bind, BindResp, CancelSm, DataSm, DestAddress, Outbind, QuerySm,
    QuerySmResp, ReplaceSm, SubmitMulti, SubmitMultiResp, SubmitSm, SubmitSmResp, UnsuccessSme,
};
use super::tlv::{Tlv, Tlvs};
use super::types::{
    Address, COctetString, CommandId, CommandStatus, DataCoding, EsmClass, MessageState, Npi,
    OctetString, Password, RegisteredDelivery, Ton,
};
use super::{Body, Pdu};

/// A JSON value whose objects keep their key order (and duplicate keys).
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses JSON text, keeping object key order.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The value of `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Self::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The same value as a `serde_json::Value` (key order lost), for comparisons in tests.
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Num(n) => serde_json::Value::Number(n.clone()),
            Self::Str(s) => serde_json::Value::String(s.clone()),
            Self::Arr(a) => serde_json::Value::Array(a.iter().map(Json::to_value).collect()),
            Self::Obj(kv) => serde_json::Value::Object(
                kv.iter().map(|(k, v)| (k.clone(), v.to_value())).collect(),
            ),
        }
    }

    fn num(n: impl Into<u64>) -> Self {
        Self::Num(serde_json::Number::from(n.into()))
    }
}

impl fmt::Display for Json {
    /// Compact JSON text, keys in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Num(n) => n.serialize(s),
            Self::Str(v) => s.serialize_str(v),
            Self::Arr(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Self::Obj(kv) => {
                let mut map = s.serialize_map(Some(kv.len()))?;
                for (k, v) in kv {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v)
                    .map(Json::Num)
                    .ok_or_else(|| E::custom("not a finite number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element()? {
                    out.push(v);
                }
                Ok(Json::Arr(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Json>()? {
                    out.push((k, v));
                }
                Ok(Json::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON document that is not a valid PDU: names the key and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct JsonError {
    pub key: String,
    pub problem: String,
}

fn err(key: &str, problem: impl fmt::Display) -> JsonError {
    JsonError {
        key: key.to_owned(),
        problem: problem.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// PDU → JSON

/// Renders bytes as a JSON string when they are UTF-8, else as `{"hex": "…"}`.
pub(crate) fn text_json(b: &[u8]) -> Json {
    match std::str::from_utf8(b) {
        Ok(s) => Json::Str(s.to_owned()),
        Err(_) => Json::Obj(vec![("hex".to_owned(), Json::Str(hex::encode(b)))]),
    }
}

/// Parses what [`text_json`] renders.
pub(crate) fn text_from_json(j: &Json) -> Result<Bytes, String> {
    match j {
        Json::Str(s) => Ok(Bytes::copy_from_slice(s.as_bytes())),
        Json::Obj(kv) => match kv.as_slice() {
            [(k, Json::Str(h))] if k == "hex" => hex::decode(h)
                .map(Bytes::from)
                .map_err(|e| format!("invalid hex: {e}")),
            _ => Err("expected a string or {\"hex\": \"…\"}".to_owned()),
        },
        _ => Err("expected a string".to_owned()),
    }
}

/// Parses lowercase or uppercase hex.
pub(crate) fn hex_from_json(j: &Json) -> Result<Bytes, String> {
    match j {
        Json::Str(h) => hex::decode(h)
            .map(Bytes::from)
            .map_err(|e| format!("invalid hex: {e}")),
        _ => Err("expected a hex string".to_owned()),
    }
}

/// Parses a non-negative integer up to `max`.
pub(crate) fn uint_from_json(j: &Json, max: u64) -> Result<u64, String> {
    match j {
        Json::Num(n) => match n.as_u64() {
            Some(v) if v <= max => Ok(v),
            _ => Err(format!("expected an integer within 0..={max}")),
        },
        _ => Err(format!("expected an integer within 0..={max}")),
    }
}

struct Out(Vec<(String, Json)>);

impl Out {
    fn put(&mut self, k: &str, v: Json) {
        self.0.push((k.to_owned(), v));
    }
    fn n(&mut self, k: &str, v: impl Into<u64>) {
        self.put(k, Json::num(v));
    }
    fn s<const M: usize>(&mut self, k: &str, v: &COctetString<M>) {
        self.put(k, text_json(v.as_bytes()));
    }
    fn addr<const M: usize>(&mut self, ton: &str, npi: &str, addr: &str, a: &Address<M>) {
        self.n(ton, a.ton.0);
        self.n(npi, a.npi.0);
        self.s(addr, &a.addr);
    }
    fn short_message(&mut self, sm: &OctetString<0, 254>) {
        self.n("sm_length", sm.len() as u64);
        self.put("short_message", Json::Str(hex::encode(sm.as_bytes())));
    }
    fn tlvs(&mut self, tlvs: &Tlvs) {
        let kv = tlvs
            .iter()
            .map(|t| {
                let key = match t.name() {
                    Some(n) => n.to_owned(),
                    None => format!("0x{:04x}", t.tag()),
                };
                (key, t.json_value())
            })
            .collect();
        self.put("tlvs", Json::Obj(kv));
    }
}

/// The PDU as one JSON object (see the module documentation for the keys).
pub fn to_json(pdu: &Pdu) -> Json {
    let mut o = Out(Vec::with_capacity(24));
    o.put("command", Json::Str(pdu.command_name().to_owned()));
    o.n("command_status", pdu.command_status.0);
    o.n("sequence_number", pdu.sequence_number);
    if !pdu.omits_body() {
        body_json(&mut o, &pdu.body);
    }
    // Every PDU gets a `tlvs` key, empty when its body carries none, so consumers can rely on it.
    if !o.0.iter().any(|(k, _)| k == "tlvs") {
        o.put("tlvs", Json::Obj(Vec::new()));
    }
    Json::Obj(o.0)
}

fn sm_fields_json(o: &mut Out, b: &SubmitSm) {
    o.s("service_type", &b.service_type);
    o.addr(
        "source_addr_ton",
        "source_addr_npi",
        "source_addr",
        &b.source_addr,
    );
    o.addr(
        "dest_addr_ton",
        "dest_addr_npi",
        "destination_addr",
        &b.dest_addr,
    );
    o.n("esm_class", b.esm_class.0);
    o.n("protocol_id", b.protocol_id);
    o.n("priority_flag", b.priority_flag);
    o.s("schedule_delivery_time", &b.schedule_delivery_time);
    o.s("validity_period", &b.validity_period);
    o.n("registered_delivery", b.registered_delivery.0);
    o.n("replace_if_present_flag", b.replace_if_present_flag);
    o.n("data_coding", b.data_coding.0);
    o.n("sm_default_msg_id", b.sm_default_msg_id);
    o.short_message(&b.short_message);
    o.tlvs(&b.tlvs);
}

fn body_json(o: &mut Out, body: &Body) {
    match body {
        Body::GenericNack
        | Body::Unbind
        | Body::UnbindResp
        | Body::ReplaceSmResp
        | Body::CancelSmResp
        | Body::EnquireLink
        | Body::EnquireLinkResp => {}
        Body::BindReceiver(b) | Body::BindTransmitter(b) | Body::BindTransceiver(b) => {
            o.s("system_id", &b.system_id);
            o.s("password", &b.password.0);
            o.s("system_type", &b.system_type);
            o.n("interface_version", b.interface_version);
            o.n("addr_ton", b.addr_ton.0);
            o.n("addr_npi", b.addr_npi.0);
            o.s("address_range", &b.address_range);
        }
        Body::BindReceiverResp(b) | Body::BindTransmitterResp(b) | Body::BindTransceiverResp(b) => {
            o.s("system_id", &b.system_id);
            o.tlvs(&b.tlvs);
        }
        Body::Outbind(b) => {
            o.s("system_id", &b.system_id);
            o.s("password", &b.password.0);
        }
        Body::SubmitSm(b) | Body::DeliverSm(b) => sm_fields_json(o, b),
        Body::SubmitSmResp(b) | Body::DeliverSmResp(b) | Body::DataSmResp(b) => {
            o.s("message_id", &b.message_id);
            o.tlvs(&b.tlvs);
        }
        Body::SubmitMulti(b) => {
            o.s("service_type", &b.service_type);
            o.addr(
                "source_addr_ton",
                "source_addr_npi",
                "source_addr",
                &b.source_addr,
            );
            o.n("number_of_dests", b.dest_addresses.len() as u64);
            let dests = b
                .dest_addresses
                .iter()
                .map(|d| {
                    let mut e = Out(Vec::new());
                    match d {
                        DestAddress::Sme(a) => {
                            e.n("dest_flag", 1u8);
                            e.addr("dest_addr_ton", "dest_addr_npi", "destination_addr", a);
                        }
                        DestAddress::DistributionList(n) => {
                            e.n("dest_flag", 2u8);
                            e.s("dl_name", n);
                        }
                    }
                    Json::Obj(e.0)
                })
                .collect();
            o.put("dest_address", Json::Arr(dests));
            o.n("esm_class", b.esm_class.0);
            o.n("protocol_id", b.protocol_id);
            o.n("priority_flag", b.priority_flag);
            o.s("schedule_delivery_time", &b.schedule_delivery_time);
            o.s("validity_period", &b.validity_period);
            o.n("registered_delivery", b.registered_delivery.0);
            o.n("replace_if_present_flag", b.replace_if_present_flag);
            o.n("data_coding", b.data_coding.0);
            o.n("sm_default_msg_id", b.sm_default_msg_id);
            o.short_message(&b.short_message);
            o.tlvs(&b.tlvs);
        }
        Body::SubmitMultiResp(b) => {
            o.s("message_id", &b.message_id);
            o.n("no_unsuccess", b.unsuccess_smes.len() as u64);
            let list = b
                .unsuccess_smes
                .iter()
                .map(|u| {
                    let mut e = Out(Vec::new());
                    e.addr(
                        "dest_addr_ton",
                        "dest_addr_npi",
                        "destination_addr",
                        &u.addr,
                    );
                    e.n("error_status_code", u.error_status_code.0);
                    Json::Obj(e.0)
                })
                .collect();
            o.put("unsuccess_sme", Json::Arr(list));
            o.tlvs(&b.tlvs);
        }
        Body::DataSm(b) => {
            o.s("service_type", &b.service_type);
            o.addr(
                "source_addr_ton",
                "source_addr_npi",
                "source_addr",
                &b.source_addr,
            );
            o.addr(
                "dest_addr_ton",
                "dest_addr_npi",
                "destination_addr",
                &b.dest_addr,
            );
            o.n("esm_class", b.esm_class.0);
            o.n("registered_delivery", b.registered_delivery.0);
            o.n("data_coding", b.data_coding.0);
            o.tlvs(&b.tlvs);
        }
        Body::QuerySm(b) => {
            o.s("message_id", &b.message_id);
            o.addr(
                "source_addr_ton",
                "source_addr_npi",
                "source_addr",
                &b.source_addr,
            );
        }
        Body::QuerySmResp(b) => {
            o.s("message_id", &b.message_id);
            o.s("final_date", &b.final_date);
            o.n("message_state", b.message_state.0);
            o.n("error_code", b.error_code);
        }
        Body::CancelSm(b) => {
            o.s("service_type", &b.service_type);
            o.s("message_id", &b.message_id);
            o.addr(
                "source_addr_ton",
                "source_addr_npi",
                "source_addr",
                &b.source_addr,
            );
            o.addr(
                "dest_addr_ton",
                "dest_addr_npi",
                "destination_addr",
                &b.dest_addr,
            );
        }
        Body::ReplaceSm(b) => {
            o.s("message_id", &b.message_id);
            o.addr(
                "source_addr_ton",
                "source_addr_npi",
                "source_addr",
                &b.source_addr,
            );
            o.s("schedule_delivery_time", &b.schedule_delivery_time);
            o.s("validity_period", &b.validity_period);
            o.n("registered_delivery", b.registered_delivery.0);
            o.n("sm_default_msg_id", b.sm_default_msg_id);
            o.short_message(&b.short_message);
        }
        Body::AlertNotification(b) => {
            o.addr(
                "source_addr_ton",
                "source_addr_npi",
                "source_addr",
                &b.source_addr,
            );
            o.addr("esme_addr_ton", "esme_addr_npi", "esme_addr", &b.esme_addr);
            o.tlvs(&b.tlvs);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON → PDU

/// The keys of one JSON object being read; every key must be used exactly once.
struct In<'a> {
    prefix: String,
    kv: &'a [(String, Json)],
    used: Vec<bool>,
}

impl<'a> In<'a> {
    fn new(prefix: &str, j: &'a Json) -> Result<Self, JsonError> {
        let Json::Obj(kv) = j else {
            return Err(err(prefix.trim_end_matches('.'), "expected a JSON object"));
        };
        for (i, (k, _)) in kv.iter().enumerate() {
            if kv[..i].iter().any(|(p, _)| p == k) {
                return Err(err(&format!("{prefix}{k}"), "duplicate key"));
            }
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            kv,
            used: vec![false; kv.len()],
        })
    }

    fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    fn take(&mut self, k: &str) -> Option<&'a Json> {
        let i = self.kv.iter().position(|(key, _)| key == k)?;
        self.used[i] = true;
        Some(&self.kv[i].1)
    }

    fn taken(&self, k: &str) -> bool {
        self.kv
            .iter()
            .zip(&self.used)
            .any(|((key, _), used)| key == k && *used)
    }

    fn uint(&mut self, k: &str, max: u64) -> Result<u64, JsonError> {
        match self.take(k) {
            None => Ok(0),
            Some(j) => uint_from_json(j, max).map_err(|p| err(&self.key(k), p)),
        }
    }

    fn u8(&mut self, k: &str) -> Result<u8, JsonError> {
        self.uint(k, u64::from(u8::MAX)).map(|v| v as u8)
    }

    fn u32(&mut self, k: &str) -> Result<u32, JsonError> {
        self.uint(k, u64::from(u32::MAX)).map(|v| v as u32)
    }

    fn s<const M: usize>(&mut self, k: &str) -> Result<COctetString<M>, JsonError> {
        match self.take(k) {
            None => Ok(COctetString::empty()),
            Some(j) => {
                let b = text_from_json(j).map_err(|p| err(&self.key(k), p))?;
                COctetString::new(b).map_err(|e| err(&self.key(k), e))
            }
        }
    }

    fn addr<const M: usize>(
        &mut self,
        ton: &str,
        npi: &str,
        addr: &str,
    ) -> Result<Address<M>, JsonError> {
        Ok(Address {
            ton: Ton(self.u8(ton)?),
            npi: Npi(self.u8(npi)?),
            addr: self.s(addr)?,
        })
    }

    fn short_message(&mut self) -> Result<OctetString<0, 254>, JsonError> {
        let sm = match self.take("short_message") {
            None => OctetString::default(),
            Some(j) => {
                let b = hex_from_json(j).map_err(|p| err(&self.key("short_message"), p))?;
                OctetString::new(b).map_err(|e| err(&self.key("short_message"), e))?
            }
        };
        if let Some(j) = self.take("sm_length") {
            let n = uint_from_json(j, 255).map_err(|p| err(&self.key("sm_length"), p))?;
            if n != sm.len() as u64 {
                return Err(err(
                    &self.key("sm_length"),
                    format!("{n} does not match short_message ({} octets)", sm.len()),
                ));
            }
        }
        Ok(sm)
    }

    /// A derived count: optional, but when given it must agree with the list.
    fn count(&mut self, k: &str, actual: usize) -> Result<(), JsonError> {
        if let Some(j) = self.take(k) {
            let n = uint_from_json(j, 255).map_err(|p| err(&self.key(k), p))?;
            if n != actual as u64 {
                return Err(err(
                    &self.key(k),
                    format!("{n} does not match the {actual} entries given"),
                ));
            }
        }
        Ok(())
    }

    fn array(&mut self, k: &str) -> Result<&'a [Json], JsonError> {
        match self.take(k) {
            None => Ok(&[]),
            Some(Json::Arr(a)) => Ok(a),
            Some(_) => Err(err(&self.key(k), "expected an array")),
        }
    }

    fn tlvs(&mut self) -> Result<Tlvs, JsonError> {
        let Some(j) = self.take("tlvs") else {
            return Ok(Tlvs::new());
        };
        let Json::Obj(kv) = j else {
            return Err(err(
                &self.key("tlvs"),
                "expected an object keyed by TLV name",
            ));
        };
        let mut out = Tlvs::new();
        for (name, v) in kv {
            let key = format!("{}tlvs.{name}", self.prefix);
            let tag = match Tlv::tag_of(name) {
                Some(t) => t,
                None => parse_tag(name).ok_or_else(|| {
                    err(
                        &key,
                        "not a known TLV name nor a 0x-prefixed hexadecimal tag",
                    )
                })?,
            };
            out.push(Tlv::from_json_value(tag, v).map_err(|p| err(&key, p))?);
        }
        Ok(out)
    }

    fn finish(self) -> Result<(), JsonError> {
        match self.used.iter().position(|u| !u) {
            Some(i) => Err(err(&self.key(&self.kv[i].0), "unknown key for this PDU")),
            None => Ok(()),
        }
    }
}

fn parse_tag(s: &str) -> Option<u16> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if h.is_empty() || h.len() > 4 {
        return None;
    }
    u16::from_str_radix(h, 16).ok()
}

/// Parses a PDU from JSON text.
pub fn from_json_str(text: &str) -> Result<Pdu, JsonError> {
    let j = Json::parse(text).map_err(|e| err("json", e))?;
    from_json(&j)
}

/// Builds a PDU from its JSON form. Missing body fields default to empty/0; unknown keys are
/// errors, so a typo cannot silently drop a field.
pub fn from_json(j: &Json) -> Result<Pdu, JsonError> {
    let mut o = In::new("", j)?;
    let command = match o.take("command") {
        Some(Json::Str(c)) => c.as_str(),
        Some(_) => {
            return Err(err(
                "command",
                "expected a command name such as \"submit_sm\"",
            ));
        }
        None => return Err(err("command", "missing")),
    };
    let id = CommandId::from_name(command).ok_or_else(|| {
        err(
            "command",
            format!("\"{command}\" is not an SMPP 3.4 command"),
        )
    })?;
    let command_status = match o.take("command_status") {
        None => CommandStatus::ESME_ROK,
        Some(Json::Str(s)) => s
            .strip_prefix("0x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .map(CommandStatus)
            .ok_or_else(|| err("command_status", "expected a number"))?,
        Some(j) => CommandStatus(
            uint_from_json(j, u64::from(u32::MAX)).map_err(|p| err("command_status", p))? as u32,
        ),
    };
    let sequence_number = match o.take("sequence_number") {
        None => return Err(err("sequence_number", "missing")),
        Some(j) => {
            uint_from_json(j, u64::from(u32::MAX)).map_err(|p| err("sequence_number", p))? as u32
        }
    };
    let body = body_from_json(id, &mut o)?;
    if !o.taken("tlvs") {
        match o.take("tlvs") {
            None => {}
            Some(Json::Obj(kv)) if kv.is_empty() => {}
            Some(_) => {
                return Err(err(
                    "tlvs",
                    format!("{command} carries no optional parameters"),
                ));
            }
        }
    }
    o.finish()?;
    Ok(Pdu {
        command_status,
        sequence_number,
        body,
    })
}

fn bind_from(o: &mut In<'_>) -> Result<Bind, JsonError> {
    Ok(Bind {
        system_id: o.s("system_id")?,
        password: Password(o.s("password")?),
        system_type: o.s("system_type")?,
        interface_version: o.u8("interface_version")?,
        addr_ton: Ton(o.u8("addr_ton")?),
        addr_npi: Npi(o.u8("addr_npi")?),
        address_range: o.s("address_range")?,
    })
}

fn bind_resp_from(o: &mut In<'_>) -> Result<BindResp, JsonError> {
    Ok(BindResp {
        system_id: o.s("system_id")?,
        tlvs: o.tlvs()?,
    })
}

fn resp_from(o: &mut In<'_>) -> Result<SubmitSmResp, JsonError> {
    Ok(SubmitSmResp {
        message_id: o.s("message_id")?,
        tlvs: o.tlvs()?,
    })
}

fn sm_from(o: &mut In<'_>) -> Result<SubmitSm, JsonError> {
    Ok(SubmitSm {
        service_type: o.s("service_type")?,
        source_addr: o.addr("source_addr_ton", "source_addr_npi", "source_addr")?,
        dest_addr: o.addr("dest_addr_ton", "dest_addr_npi", "destination_addr")?,
        esm_class: EsmClass(o.u8("esm_class")?),
        protocol_id: o.u8("protocol_id")?,
        priority_flag: o.u8("priority_flag")?,
        schedule_delivery_time: o.s("schedule_delivery_time")?,
        validity_period: o.s("validity_period")?,
        registered_delivery: RegisteredDelivery(o.u8("registered_delivery")?),
        replace_if_present_flag: o.u8("replace_if_present_flag")?,
        data_coding: DataCoding(o.u8("data_coding")?),
        sm_default_msg_id: o.u8("sm_default_msg_id")?,
        short_message: o.short_message()?,
        tlvs: o.tlvs()?,
    })
}

fn body_from_json(id: CommandId, o: &mut In<'_>) -> Result<Body, JsonError> {
    Ok(match id {
        CommandId::GENERIC_NACK => Body::GenericNack,
        CommandId::UNBIND => Body::Unbind,
        CommandId::UNBIND_RESP => Body::UnbindResp,
        CommandId::REPLACE_SM_RESP => Body::ReplaceSmResp,
        CommandId::CANCEL_SM_RESP => Body::CancelSmResp,
        CommandId::ENQUIRE_LINK => Body::EnquireLink,
        CommandId::ENQUIRE_LINK_RESP => Body::EnquireLinkResp,
        CommandId::BIND_RECEIVER => Body::BindReceiver(bind_from(o)?),
        CommandId::BIND_TRANSMITTER => Body::BindTransmitter(bind_from(o)?),
        CommandId::BIND_TRANSCEIVER => Body::BindTransceiver(bind_from(o)?),
        CommandId::BIND_RECEIVER_RESP => Body::BindReceiverResp(bind_resp_from(o)?),
        CommandId::BIND_TRANSMITTER_RESP => Body::BindTransmitterResp(bind_resp_from(o)?),
        CommandId::BIND_TRANSCEIVER_RESP => Body::BindTransceiverResp(bind_resp_from(o)?),
        CommandId::OUTBIND => Body::Outbind(Outbind {
            system_id: o.s("system_id")?,
            password: Password(o.s("password")?),
        }),
        CommandId::SUBMIT_SM => Body::SubmitSm(sm_from(o)?),
        CommandId::DELIVER_SM => Body::DeliverSm(sm_from(o)?),
        CommandId::SUBMIT_SM_RESP => Body::SubmitSmResp(resp_from(o)?),
        CommandId::DELIVER_SM_RESP => Body::DeliverSmResp(resp_from(o)?),
        CommandId::DATA_SM_RESP => Body::DataSmResp(resp_from(o)?),
        CommandId::SUBMIT_MULTI => {
            let service_type = o.s("service_type")?;
            let source_addr = o.addr("source_addr_ton", "source_addr_npi", "source_addr")?;
            let mut dest_addresses = Vec::new();
            for (i, d) in o.array("dest_address")?.iter().enumerate() {
                let mut e = In::new(&format!("dest_address[{i}]."), d)?;
                let flag = e.u8("dest_flag")?;
                dest_addresses.push(match flag {
                    1 => DestAddress::Sme(e.addr(
                        "dest_addr_ton",
                        "dest_addr_npi",
                        "destination_addr",
                    )?),
                    2 => DestAddress::DistributionList(e.s("dl_name")?),
                    _ => {
                        return Err(err(
                            &e.key("dest_flag"),
                            "expected 1 (SME address) or 2 (distribution list)",
                        ));
                    }
                });
                e.finish()?;
            }
            o.count("number_of_dests", dest_addresses.len())?;
            Body::SubmitMulti(SubmitMulti {
                service_type,
                source_addr,
                dest_addresses,
                esm_class: EsmClass(o.u8("esm_class")?),
                protocol_id: o.u8("protocol_id")?,
                priority_flag: o.u8("priority_flag")?,
                schedule_delivery_time: o.s("schedule_delivery_time")?,
                validity_period: o.s("validity_period")?,
                registered_delivery: RegisteredDelivery(o.u8("registered_delivery")?),
                replace_if_present_flag: o.u8("replace_if_present_flag")?,
                data_coding: DataCoding(o.u8("data_coding")?),
                sm_default_msg_id: o.u8("sm_default_msg_id")?,
                short_message: o.short_message()?,
                tlvs: o.tlvs()?,
            })
        }
        CommandId::SUBMIT_MULTI_RESP => {
            let message_id = o.s("message_id")?;
            let mut unsuccess_smes = Vec::new();
            for (i, u) in o.array("unsuccess_sme")?.iter().enumerate() {
                let mut e = In::new(&format!("unsuccess_sme[{i}]."), u)?;
                unsuccess_smes.push(UnsuccessSme {
                    addr: e.addr("dest_addr_ton", "dest_addr_npi", "destination_addr")?,
                    error_status_code: CommandStatus(e.u32("error_status_code")?),
                });
                e.finish()?;
            }
            o.count("no_unsuccess", unsuccess_smes.len())?;
            Body::SubmitMultiResp(SubmitMultiResp {
                message_id,
                unsuccess_smes,
                tlvs: o.tlvs()?,
            })
        }
        CommandId::DATA_SM => Body::DataSm(DataSm {
            service_type: o.s("service_type")?,
            source_addr: o.addr("source_addr_ton", "source_addr_npi", "source_addr")?,
            dest_addr: o.addr("dest_addr_ton", "dest_addr_npi", "destination_addr")?,
            esm_class: EsmClass(o.u8("esm_class")?),
            registered_delivery: RegisteredDelivery(o.u8("registered_delivery")?),
            data_coding: DataCoding(o.u8("data_coding")?),
            tlvs: o.tlvs()?,
        }),
        CommandId::QUERY_SM => Body::QuerySm(QuerySm {
            message_id: o.s("message_id")?,
            source_addr: o.addr("source_addr_ton", "source_addr_npi", "source_addr")?,
        }),
        CommandId::QUERY_SM_RESP => Body::QuerySmResp(QuerySmResp {
            message_id: o.s("message_id")?,
            final_date: o.s("final_date")?,
            message_state: MessageState(o.u8("message_state")?),
            error_code: o.u8("error_code")?,
        }),
        CommandId::CANCEL_SM => Body::CancelSm(CancelSm {
            service_type: o.s("service_type")?,
            message_id: o.s("message_id")?,
            source_addr: o.addr("source_addr_ton", "source_addr_npi", "source_addr")?,
            dest_addr: o.addr("dest_addr_ton", "dest_addr_npi", "destination_addr")?,
        }),
        CommandId::REPLACE_SM => Body::ReplaceSm(ReplaceSm {
            message_id: o.s("message_id")?,
            source_addr: o.addr("source_addr_ton", "source_addr_npi", "source_addr")?,
            schedule_delivery_time: o.s("schedule_delivery_time")?,
            validity_period: o.s("validity_period")?,
            registered_delivery: RegisteredDelivery(o.u8("registered_delivery")?),
            sm_default_msg_id: o.u8("sm_default_msg_id")?,
            short_message: o.short_message()?,
        }),
        CommandId::ALERT_NOTIFICATION => Body::AlertNotification(AlertNotification {
            source_addr: o.addr("source_addr_ton", "source_addr_npi", "source_addr")?,
            esme_addr: o.addr("esme_addr_ton", "esme_addr_npi", "esme_addr")?,
            tlvs: o.tlvs()?,
        }),
        other => return Err(err("command", format!("{other} has no JSON form"))),
    })
}
