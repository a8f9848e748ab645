//! Decoding of received user data (`deliver_sm` / `data_sm` short_message or message_payload) by
//! `data_coding`, with UDH parsing so national shift tables and concatenation are honoured.
//!
//! Owns byte → text. Total by construction: no input fails or panics; unmappable codes, lone
//! surrogates and malformed headers are counted as warnings, and the text gets U+FFFD.

use super::charset::{decode_latin1_into, decode_ucs2_into};
use super::gsm::{Gsm7Tables, fill_bits, unpack_septets};
use super::udh::{Udh, parse_udh};

/// How a `data_coding` value's payload is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Charset {
    /// GSM 7-bit (0x00, 0xC0–0xDF message waiting groups, 0xF0–0xF3 message class).
    Gsm7,
    /// IA5 / ASCII (0x01).
    Ascii,
    /// ISO-8859-1 (0x03).
    Latin1,
    /// UCS-2 / UTF-16BE (0x08, 0xE0–0xEF).
    Ucs2,
    /// Octets without a character set (0x02, 0x04, 0xF4–0xF7, and every value smppd has no
    /// table for: JIS, Cyrillic, Hebrew, KS C 5601, reserved).
    Binary,
}

/// Receiver-side settings (per SMSC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The SMSC sends GSM 7-bit packed rather than one septet per octet.
    pub packed: bool,
    /// Read data_coding 0x01 as GSM 7-bit (some SMSCs and node-smpp use 0x01 for GSM text)
    /// instead of ASCII.
    pub ia5_as_gsm: bool,
}

/// The charset of a `data_coding` value.
pub fn charset_for(data_coding: u8, opts: &DecodeOptions) -> Charset {
    match data_coding {
        0x00 | 0xC0..=0xDF => Charset::Gsm7,
        0x01 if opts.ia5_as_gsm => Charset::Gsm7,
        0x01 => Charset::Ascii,
        0x03 => Charset::Latin1,
        0x08 | 0xE0..=0xEF => Charset::Ucs2,
        0xF0..=0xFF if data_coding & 0x04 == 0 => Charset::Gsm7,
        _ => Charset::Binary,
    }
}

/// A decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Text.
    Text(String),
    /// Binary octets (no character set).
    Binary(Vec<u8>),
}

impl Body {
    /// The text, or the octets as lowercase hex.
    pub fn to_text_or_hex(&self) -> String {
        match self {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => hex::encode(b),
        }
    }
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The text or binary body.
    pub body: Body,
    /// Replacements made (U+FFFD) and header problems met.
    pub warnings: usize,
}

/// User data split into UDH and a normalized payload: GSM septets unpacked (one per octet),
/// everything else as received. Concatenated parts are joined at this level, so a GSM escape or
/// a surrogate pair that a sender split across parts is decoded correctly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserData {
    /// How the payload is read.
    pub charset: Charset,
    /// The parsed UDH, when UDHI was set and the header was well formed.
    pub udh: Option<Udh>,
    /// The payload after the UDH, normalized.
    pub payload: Vec<u8>,
    /// Problems met so far (a malformed UDH counts one; the bytes are then all payload).
    pub warnings: usize,
}

impl UserData {
    /// Splits `user_data` (short_message or message_payload) using `esm_class` UDHI (`udhi`).
    pub fn parse(data_coding: u8, udhi: bool, user_data: &[u8], opts: &DecodeOptions) -> Self {
        let charset = charset_for(data_coding, opts);
        let mut warnings = 0;
        let udh = if udhi {
            match parse_udh(user_data) {
                Ok(u) => Some(u),
                Err(_) => {
                    warnings += 1;
                    None
                }
            }
        } else {
            None
        };
        let udh_len = udh.map_or(0, |u| u.len);
        let body = &user_data[udh_len..];
        let payload = if charset == Charset::Gsm7 && opts.packed {
            let mut out = Vec::with_capacity(body.len() * 8 / 7 + 1);
            // Fill bits pad the UDH to a septet boundary counted from the start of user data.
            let fill = fill_bits(udh_len);
            unpack_septets(body, fill, None, &mut out);
            out
        } else {
            body.to_vec()
        };
        UserData {
            charset,
            udh,
            payload,
            warnings,
        }
    }

    /// GSM tables named by the UDH shift elements; the flag says an unsupported language id was
    /// replaced by the default table.
    pub fn tables(&self) -> (Gsm7Tables, bool) {
        match self.udh {
            Some(u) => Gsm7Tables::from_ids(u.locking_shift, u.single_shift),
            None => (Gsm7Tables::DEFAULT, false),
        }
    }

    /// Decodes the payload.
    pub fn decode(&self) -> Decoded {
        let (tables, fallback) = self.tables();
        let mut d = decode_payload(self.charset, tables, &self.payload);
        d.warnings += self.warnings + usize::from(fallback);
        d
    }
}

/// Decodes a normalized payload (see [`UserData`]).
pub(crate) fn decode_payload(charset: Charset, tables: Gsm7Tables, payload: &[u8]) -> Decoded {
    let mut text = String::with_capacity(payload.len());
    let warnings = match charset {
        Charset::Gsm7 => tables.decode_into(payload, &mut text),
        Charset::Ascii => {
            let mut w = 0;
            for &b in payload {
                if b.is_ascii() {
                    text.push(char::from(b));
                } else {
                    w += 1;
                    text.push(char::REPLACEMENT_CHARACTER);
                }
            }
            w
        }
        Charset::Latin1 => {
            decode_latin1_into(payload, &mut text);
            0
        }
        Charset::Ucs2 => decode_ucs2_into(payload, &mut text),
        Charset::Binary => {
            return Decoded {
                body: Body::Binary(payload.to_vec()),
                warnings: 0,
            };
        }
    };
    Decoded {
        body: Body::Text(text),
        warnings,
    }
}
