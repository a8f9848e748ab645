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

use super::tlv::{Tlv, Tlvs};
use super::types::{COctetString, CommandId, CommandStatus};
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

pub(crate) fn err(key: &str, problem: impl fmt::Display) -> JsonError {
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

/// A JSON object being written, keys in order.
pub(crate) struct Out(Vec<(String, Json)>);

impl Out {
    pub(crate) fn new() -> Self {
        Self(Vec::new())
    }
    pub(crate) fn into_json(self) -> Json {
        Json::Obj(self.0)
    }
    pub(crate) fn put(&mut self, k: &str, v: Json) {
        self.0.push((k.to_owned(), v));
    }
    pub(crate) fn n(&mut self, k: &str, v: impl Into<u64>) {
        self.put(k, Json::num(v));
    }
    pub(crate) fn s<const M: usize>(&mut self, k: &str, v: &COctetString<M>) {
        self.put(k, text_json(v.as_bytes()));
    }
    pub(crate) fn tlvs(&mut self, k: &str, tlvs: &Tlvs) {
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
        self.put(k, Json::Obj(kv));
    }
}

/// The PDU as one JSON object (see the module documentation for the keys).
pub fn to_json(pdu: &Pdu) -> Json {
    let mut o = Out(Vec::with_capacity(24));
    o.put("command", Json::Str(pdu.command_name().to_owned()));
    o.n("command_status", pdu.command_status.0);
    o.n("sequence_number", pdu.sequence_number);
    if !pdu.omits_body() {
        pdu.body.to_json(&mut o);
    }
    // Every PDU gets a `tlvs` key, empty when its body carries none, so consumers can rely on it.
    if !o.0.iter().any(|(k, _)| k == "tlvs") {
        o.put("tlvs", Json::Obj(Vec::new()));
    }
    Json::Obj(o.0)
}

// ---------------------------------------------------------------------------------------------
// JSON → PDU

/// The keys of one JSON object being read; every key must be used exactly once.
pub(crate) struct In<'a> {
    prefix: String,
    kv: &'a [(String, Json)],
    used: Vec<bool>,
}

impl<'a> In<'a> {
    pub(crate) fn new(prefix: &str, j: &'a Json) -> Result<Self, JsonError> {
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

    pub(crate) fn key(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    pub(crate) fn take(&mut self, k: &str) -> Option<&'a Json> {
        let i = self.kv.iter().position(|(key, _)| key == k)?;
        self.used[i] = true;
        Some(&self.kv[i].1)
    }

    pub(crate) fn taken(&self, k: &str) -> bool {
        self.kv
            .iter()
            .zip(&self.used)
            .any(|((key, _), used)| key == k && *used)
    }

    pub(crate) fn uint(&mut self, k: &str, max: u64) -> Result<u64, JsonError> {
        match self.take(k) {
            None => Ok(0),
            Some(j) => uint_from_json(j, max).map_err(|p| err(&self.key(k), p)),
        }
    }

    pub(crate) fn u8(&mut self, k: &str) -> Result<u8, JsonError> {
        self.uint(k, u64::from(u8::MAX)).map(|v| v as u8)
    }

    pub(crate) fn u32(&mut self, k: &str) -> Result<u32, JsonError> {
        self.uint(k, u64::from(u32::MAX)).map(|v| v as u32)
    }

    pub(crate) fn s<const M: usize>(&mut self, k: &str) -> Result<COctetString<M>, JsonError> {
        match self.take(k) {
            None => Ok(COctetString::empty()),
            Some(j) => {
                let b = text_from_json(j).map_err(|p| err(&self.key(k), p))?;
                COctetString::new(b).map_err(|e| err(&self.key(k), e))
            }
        }
    }

    /// A derived count: optional, but when given it must agree with the list.
    pub(crate) fn count(&mut self, k: &str, actual: usize) -> Result<(), JsonError> {
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

    pub(crate) fn array(&mut self, k: &str) -> Result<&'a [Json], JsonError> {
        match self.take(k) {
            None => Ok(&[]),
            Some(Json::Arr(a)) => Ok(a),
            Some(_) => Err(err(&self.key(k), "expected an array")),
        }
    }

    pub(crate) fn tlvs(&mut self, k: &str) -> Result<Tlvs, JsonError> {
        let Some(j) = self.take(k) else {
            return Ok(Tlvs::new());
        };
        let Json::Obj(kv) = j else {
            return Err(err(&self.key(k), "expected an object keyed by TLV name"));
        };
        let mut out = Tlvs::new();
        for (name, v) in kv {
            let key = format!("{}{k}.{name}", self.prefix);
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

    pub(crate) fn finish(self) -> Result<(), JsonError> {
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
    let body = Body::from_json(id, &mut o)?;
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
