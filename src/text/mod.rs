//! Message text: GSM 03.38 (default alphabet, extension table, Turkish/Spanish/Portuguese national
//! shift tables), Latin-1, UCS-2 (UTF-16BE) and binary; the encoding choice for a message;
//! splitting into parts (UDH 8/16-bit reference, SAR TLVs, `message_payload`); decoding by
//! `data_coding` with UDH parsing; reassembly of concatenated mobile-originated messages.
//!
//! Pure code: no I/O, no tokio, no clock (reassembly takes the time as a parameter), no panics on
//! any input, and every buffer is bounded by its input or by a configured limit.
//!
//! # Sending (mobile-terminated)
//!
//! ```
//! use smppd::text::{self, EncodeOptions, LanguageSet, NationalLanguage, SplitMethod};
//!
//! let opts = EncodeOptions {
//!     languages: LanguageSet::from_iter([NationalLanguage::Turkish]),
//!     split: SplitMethod::Udh8,
//!     ..EncodeOptions::default()
//! };
//! let encoded = text::encode("Şişli'de ağaç", &opts, 0x2A).unwrap();
//! assert_eq!(encoded.plan().encoding.to_string(), "gsm7+tr");
//! assert_eq!(encoded.plan().data_coding, 0x00);
//! for seg in encoded.segments() {
//!     // short_message = UDH + payload; esm_class |= 0x40 when `encoded.plan().udhi`.
//!     let _bytes: &[u8] = seg.short_message();
//! }
//! ```
//!
//! The caller picks the reference with a [`ReferenceAllocator`] (rotating per destination), so
//! [`encode`] itself is deterministic. Errors are typed ([`TextError`]): an unencodable character
//! under a forced encoding (with its position), or a text that needs more parts than allowed.
//!
//! # Receiving (mobile-originated)
//!
//! [`UserData::parse`] splits `short_message` into UDH and normalized payload (unpacked septets,
//! Latin-1/UCS-2 octets); single messages are decoded with [`UserData::decode`], concatenated ones
//! go through a [`Reassembler`] (keyed by source, destination and reference; bounded; expiry by
//! the caller's clock) and are decoded once complete. Decoding never fails: unmappable codes
//! become U+FFFD and are counted as warnings.
//!
//! ```
//! use smppd::text::{Body, DecodeOptions, Fragment, PushStatus, Reassembler, ReassemblyConfig,
//!                   UserData};
//!
//! let mut pending = Reassembler::new(ReassemblyConfig::default());
//! let now_ms = 0; // the caller's monotonic clock
//! // Two deliver_sm short_messages with UDHI set (esm_class 0x40), data_coding 0.
//! let parts: [&[u8]; 2] = [&[5, 0, 3, 7, 2, 2, 0x69], &[5, 0, 3, 7, 2, 1, 0x48]];
//! for short_message in parts {
//!     let ud = UserData::parse(0x00, true, short_message, &DecodeOptions::default());
//!     match Fragment::from_user_data("+46700000001", "12345", &ud, None) {
//!         Some(frag) => {
//!             let res = pending.push(now_ms, frag);
//!             // res.incomplete: sets given up meanwhile (expired, evicted): report them.
//!             if let PushStatus::Complete(msg) = res.status {
//!                 assert_eq!(msg.decode().body, Body::Text("Hi".into()));
//!             }
//!         }
//!         None => { /* not concatenated: ud.decode() */ }
//!     }
//! }
//! ```

mod charset;
mod decode;
mod encode;
pub mod gsm;
mod reassembly;
mod reference;
pub mod samples;
pub mod smart;
mod tables;
mod udh;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use charset::{decode_latin1_into, decode_ucs2_into};
pub use decode::{Body, Charset, DecodeOptions, Decoded, UserData, charset_for};
pub use encode::{
    DEFAULT_MAX_PARTS, EncodeOptions, Encoded, Plan, Sar, Segment, encode, encode_binary, plan,
};
pub use gsm::{Gsm7Tables, Septets};
pub use reassembly::{
    Assembled, Fragment, Incomplete, IncompleteReason, PushResult, PushStatus, Reassembler,
    ReassemblyConfig,
};
pub use reference::ReferenceAllocator;
pub use udh::{Concat, Ports, Udh, UdhError, parse_udh};

/// A national language with 3GPP TS 23.038 Annex A shift tables that smppd carries. Config and
/// CLI name them `tr`, `es`, `pt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NationalLanguage {
    /// Turkish (language id 1): single- and locking-shift tables.
    #[serde(rename = "tr")]
    Turkish,
    /// Spanish (language id 2): single-shift table only.
    #[serde(rename = "es")]
    Spanish,
    /// Portuguese (language id 3): single- and locking-shift tables.
    #[serde(rename = "pt")]
    Portuguese,
}

impl NationalLanguage {
    /// All supported languages, in the order candidates are tried.
    pub const ALL: [NationalLanguage; 3] = [
        NationalLanguage::Turkish,
        NationalLanguage::Spanish,
        NationalLanguage::Portuguese,
    ];

    /// The language id used in the UDH shift elements (IEI 0x24/0x25).
    pub fn id(self) -> u8 {
        match self {
            NationalLanguage::Turkish => 1,
            NationalLanguage::Spanish => 2,
            NationalLanguage::Portuguese => 3,
        }
    }

    /// The language for a UDH language id, if supported.
    pub fn from_id(id: u8) -> Option<NationalLanguage> {
        match id {
            1 => Some(NationalLanguage::Turkish),
            2 => Some(NationalLanguage::Spanish),
            3 => Some(NationalLanguage::Portuguese),
            _ => None,
        }
    }

    /// The config/CLI name: `tr`, `es` or `pt`.
    pub fn code(self) -> &'static str {
        match self {
            NationalLanguage::Turkish => "tr",
            NationalLanguage::Spanish => "es",
            NationalLanguage::Portuguese => "pt",
        }
    }

    /// Spanish has no locking-shift table (TS 23.038 Annex A).
    pub fn has_locking_shift(self) -> bool {
        !matches!(self, NationalLanguage::Spanish)
    }
}

impl fmt::Display for NationalLanguage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A name that is not one of the accepted values of a text option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}: expected one of {expected}")]
pub struct ParseOptionError {
    /// Which option was being parsed (e.g. "national language").
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// The accepted names.
    pub expected: &'static str,
}

impl FromStr for NationalLanguage {
    type Err = ParseOptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tr" => Ok(NationalLanguage::Turkish),
            "es" => Ok(NationalLanguage::Spanish),
            "pt" => Ok(NationalLanguage::Portuguese),
            _ => Err(ParseOptionError {
                what: "national language",
                value: s.to_owned(),
                expected: "tr, es, pt",
            }),
        }
    }
}

/// The national languages an SMSC allows, as a small copyable set (the hot path passes it by
/// value). Serializes as a list of language names (`["tr", "pt"]`); parses from `"tr,pt"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LanguageSet(u8);

impl LanguageSet {
    /// No national tables: plain GSM 7-bit or UCS-2 only.
    pub const EMPTY: LanguageSet = LanguageSet(0);

    fn bit(lang: NationalLanguage) -> u8 {
        1 << lang.id()
    }

    /// Adds a language.
    pub fn insert(&mut self, lang: NationalLanguage) {
        self.0 |= Self::bit(lang);
    }

    /// True when `lang` is allowed.
    pub fn contains(self, lang: NationalLanguage) -> bool {
        self.0 & Self::bit(lang) != 0
    }

    /// True when no language is allowed.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The allowed languages in the fixed order tr, es, pt.
    pub fn iter(self) -> impl Iterator<Item = NationalLanguage> {
        NationalLanguage::ALL
            .into_iter()
            .filter(move |l| self.contains(*l))
    }
}

impl FromIterator<NationalLanguage> for LanguageSet {
    fn from_iter<I: IntoIterator<Item = NationalLanguage>>(iter: I) -> Self {
        let mut set = LanguageSet::EMPTY;
        for lang in iter {
            set.insert(lang);
        }
        set
    }
}

impl FromStr for LanguageSet {
    type Err = ParseOptionError;
    /// Comma-separated names; empty items are skipped, so `""` is the empty set.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(NationalLanguage::from_str)
            .collect()
    }
}

impl Serialize for LanguageSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for LanguageSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let langs = Vec::<NationalLanguage>::deserialize(d)?;
        Ok(langs.into_iter().collect())
    }
}

/// How a text longer than one message is carried (per SMSC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitMethod {
    /// UDH concatenation IE 0x00 with an 8-bit reference (6-octet UDH).
    #[default]
    Udh8,
    /// UDH concatenation IE 0x08 with a 16-bit reference (7-octet UDH).
    Udh16,
    /// One `submit_sm` per part with `sar_msg_ref_num`, `sar_total_segments` and
    /// `sar_segment_seqnum` TLVs; the SMSC builds the UDH, so parts are sized as for `udh8`.
    Sar,
    /// A single PDU with the whole text in `message_payload` (up to 65535 octets).
    Payload,
}

impl SplitMethod {
    /// The config/CLI name.
    pub fn name(self) -> &'static str {
        match self {
            SplitMethod::Udh8 => "udh8",
            SplitMethod::Udh16 => "udh16",
            SplitMethod::Sar => "sar",
            SplitMethod::Payload => "payload",
        }
    }
}

impl fmt::Display for SplitMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SplitMethod {
    type Err = ParseOptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "udh8" => Ok(SplitMethod::Udh8),
            "udh16" => Ok(SplitMethod::Udh16),
            "sar" => Ok(SplitMethod::Sar),
            "payload" => Ok(SplitMethod::Payload),
            _ => Err(ParseOptionError {
                what: "split method",
                value: s.to_owned(),
                expected: "udh8, udh16, sar, payload",
            }),
        }
    }
}

/// The encoding a client asks for: `auto` (cheapest exact), or a forced one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingRequest {
    /// GSM-7 → GSM-7 with an allowed national table → UCS-2, fewest parts first.
    #[default]
    Auto,
    /// GSM 7-bit (data_coding 0), national tables allowed by the SMSC included.
    Gsm7,
    /// ISO-8859-1 (data_coding 3).
    Latin1,
    /// UCS-2 / UTF-16BE (data_coding 8).
    Ucs2,
}

impl EncodingRequest {
    /// The config/CLI name.
    pub fn name(self) -> &'static str {
        match self {
            EncodingRequest::Auto => "auto",
            EncodingRequest::Gsm7 => "gsm7",
            EncodingRequest::Latin1 => "latin1",
            EncodingRequest::Ucs2 => "ucs2",
        }
    }
}

impl fmt::Display for EncodingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EncodingRequest {
    type Err = ParseOptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(EncodingRequest::Auto),
            "gsm7" => Ok(EncodingRequest::Gsm7),
            "latin1" => Ok(EncodingRequest::Latin1),
            "ucs2" => Ok(EncodingRequest::Ucs2),
            _ => Err(ParseOptionError {
                what: "encoding",
                value: s.to_owned(),
                expected: "auto, gsm7, latin1, ucs2",
            }),
        }
    }
}

/// The encoding a message is sent with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// GSM 7-bit with these tables (national shift IEs go into every part's UDH).
    Gsm7(Gsm7Tables),
    /// ISO-8859-1.
    Latin1,
    /// UCS-2 / UTF-16BE (non-BMP characters as surrogate pairs).
    Ucs2,
    /// 8-bit binary, passed through.
    Binary,
}

impl Encoding {
    /// The SMPP `data_coding` value: 0x00, 0x03, 0x08 or 0x04.
    pub fn data_coding(self) -> u8 {
        match self {
            Encoding::Gsm7(_) => 0x00,
            Encoding::Latin1 => 0x03,
            Encoding::Ucs2 => 0x08,
            Encoding::Binary => 0x04,
        }
    }
}

impl fmt::Display for Encoding {
    /// `gsm7`, `gsm7+tr` (Turkish single and/or locking shift), `gsm7+tr+es` (Turkish locking
    /// with Spanish single shift), `latin1`, `ucs2`, `binary`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Gsm7(t) => {
                f.write_str("gsm7")?;
                match (t.locking(), t.single()) {
                    (Some(l), Some(s)) if l != s => write!(f, "+{l}+{s}"),
                    (Some(l), _) => write!(f, "+{l}"),
                    (None, Some(s)) => write!(f, "+{s}"),
                    (None, None) => Ok(()),
                }
            }
            Encoding::Latin1 => f.write_str("latin1"),
            Encoding::Ucs2 => f.write_str("ucs2"),
            Encoding::Binary => f.write_str("binary"),
        }
    }
}

/// Why a message cannot be encoded as asked. Both are the client's fault and are reported before
/// anything is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The forced encoding cannot represent a character.
    #[error(
        "character {ch:?} (U+{:04X}) at position {position} cannot be encoded as {encoding}",
        u32::from(*ch)
    )]
    Unencodable {
        /// The first offending character.
        ch: char,
        /// Its 0-based position in the text, counted in Unicode scalar values.
        position: usize,
        /// The requested encoding.
        encoding: EncodingRequest,
    },
    /// The text needs more parts than allowed.
    #[error("text needs {needed} parts, more than the maximum of {max}")]
    TooLong {
        /// Parts the text would need with this encoding and split method (above 255 a lower
        /// bound: such texts are not laid out in full).
        needed: usize,
        /// The configured maximum.
        max: u8,
    },
    /// The text does not fit one `message_payload` TLV (65535 octets including any UDH).
    #[error("text needs {octets} octets, more than the 65535 a message_payload can carry")]
    PayloadTooLong {
        /// Octets the payload would need.
        octets: usize,
    },
    /// `max_parts` was 0.
    #[error("max_parts must be between 1 and 255, got 0")]
    ZeroMaxParts,
}

impl TextError {
    /// A stable short code for API error responses: `unencodable`, `too_long` or
    /// `invalid_option`.
    pub fn code(&self) -> &'static str {
        match self {
            TextError::Unencodable { .. } => "unencodable",
            TextError::TooLong { .. } | TextError::PayloadTooLong { .. } => "too_long",
            TextError::ZeroMaxParts => "invalid_option",
        }
    }
}
