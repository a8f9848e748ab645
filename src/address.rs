//! Phone numbers and sender identities as validated types.
//!
//! Owns: normalizing client-supplied destinations to E.164 ([`Msisdn`]) and classifying senders
//! ([`Sender`]: international number, short code or alphanumeric) with the TON/NPI each one is sent
//! with (SMPP-FACTS §5.5). Pure: no I/O. Must never accept an address it cannot send as-is: every
//! value of these types is valid on the wire.

use std::fmt;

/// Why an address was refused. The message names what was wrong, for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("empty number")]
    Empty,
    #[error("character {ch:?} at position {pos} is not allowed in a phone number")]
    BadCharacter { ch: char, pos: usize },
    #[error("number must be international: start with '+' or '00' followed by the country code")]
    NotInternational,
    #[error("number has {0} digits; E.164 allows 7 to 15")]
    BadLength(usize),
    #[error("country code cannot start with 0")]
    BadCountryCode,
    #[error("alphanumeric sender has {0} characters; at most 11 reach the handset")]
    AlphanumericTooLong(usize),
    #[error("sender character {ch:?} at position {pos} is not in the GSM 7-bit alphabet")]
    SenderCharacter { ch: char, pos: usize },
}

/// A destination number in E.164 form: `+` then 7–15 digits, the first not 0.
///
/// The digits are stored without the `+`, which is how SMPP carries them (TON 1, NPI 1).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn(String);

impl Msisdn {
    /// Normalizes what clients send: `+46 70-123 45 67`, `0046701234567`, `+46 (0)70…` are not
    /// all equal, so only separators (space, `-`, `.`, `(`, `)`) are dropped; a leading `+` or
    /// `00` marks the international prefix. Anything else is refused.
    pub fn parse(input: &str) -> Result<Msisdn, AddressError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(AddressError::Empty);
        }
        let (rest, offset) = if let Some(r) = trimmed.strip_prefix('+') {
            (r, 1)
        } else if let Some(r) = trimmed.strip_prefix("00") {
            (r, 2)
        } else {
            // Reject with the specific reason when the rest is otherwise a plausible number.
            for (pos, ch) in trimmed.chars().enumerate() {
                if !(ch.is_ascii_digit() || matches!(ch, ' ' | '-' | '.' | '(' | ')')) {
                    return Err(AddressError::BadCharacter { ch, pos });
                }
            }
            return Err(AddressError::NotInternational);
        };
        let mut digits = String::with_capacity(rest.len());
        for (i, ch) in rest.chars().enumerate() {
            match ch {
                '0'..='9' => digits.push(ch),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(AddressError::BadCharacter {
                        ch,
                        pos: i + offset,
                    });
                }
            }
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(AddressError::BadLength(digits.len()));
        }
        if digits.starts_with('0') {
            return Err(AddressError::BadCountryCode);
        }
        Ok(Msisdn(digits))
    }

    /// The digits without `+`, as sent in `destination_addr` with TON 1 / NPI 1.
    pub fn digits(&self) -> &str {
        &self.0
    }

    /// Whether this number starts with an E.164 prefix such as `+46` (the `+` is optional).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.0
            .starts_with(prefix.strip_prefix('+').unwrap_or(prefix))
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.0)
    }
}

impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn(+{})", self.0)
    }
}

/// Who a message comes from, with the TON/NPI it is sent with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sender {
    /// An international number: TON 1, NPI 1.
    International(Msisdn),
    /// A short code of at most 8 digits: TON 3 (network specific), NPI 0.
    ShortCode(String),
    /// Up to 11 GSM characters: TON 5, NPI 0.
    Alphanumeric(String),
}

/// The GSM 03.38 base-table characters that are safe in an alphanumeric sender. The extension
/// table is excluded: an escape costs two septets of the 11 and many SMSCs mangle it.
fn is_gsm_sender_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric()
        || matches!(
            ch,
            ' ' | '!'
                | '"'
                | '#'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '<'
                | '='
                | '>'
                | '?'
                | '@'
                | '_'
                | '$'
                | 'Ä'
                | 'Ö'
                | 'Ü'
                | 'ä'
                | 'ö'
                | 'ü'
                | 'Å'
                | 'å'
                | 'Æ'
                | 'æ'
                | 'Ø'
                | 'ø'
                | 'é'
                | 'É'
                | 'Ñ'
                | 'ñ'
                | 'ß'
        )
}

impl Sender {
    /// Classifies a client-supplied sender: `+…`/`00…` is an international number, up to 8
    /// digits a short code, anything else alphanumeric (at most 11 GSM characters).
    pub fn parse(input: &str) -> Result<Sender, AddressError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.starts_with('+') || (s.starts_with("00") && s.chars().all(|c| c.is_ascii_digit())) {
            return Msisdn::parse(s).map(Sender::International);
        }
        if s.chars().all(|c| c.is_ascii_digit()) {
            if s.len() <= 8 {
                return Ok(Sender::ShortCode(s.to_owned()));
            }
            // A long digit string without a prefix is ambiguous (national or international?).
            return Err(AddressError::NotInternational);
        }
        let count = s.chars().count();
        if count > 11 {
            return Err(AddressError::AlphanumericTooLong(count));
        }
        if let Some((pos, ch)) = s.chars().enumerate().find(|(_, c)| !is_gsm_sender_char(*c)) {
            return Err(AddressError::SenderCharacter { ch, pos });
        }
        Ok(Sender::Alphanumeric(s.to_owned()))
    }

    /// `(ton, npi)` for `source_addr_ton` / `source_addr_npi`.
    pub fn ton_npi(&self) -> (u8, u8) {
        match self {
            Sender::International(_) => (1, 1),
            Sender::ShortCode(_) => (3, 0),
            Sender::Alphanumeric(_) => (5, 0),
        }
    }

    /// The value for `source_addr` (digits without `+` for numbers).
    pub fn addr(&self) -> &str {
        match self {
            Sender::International(m) => m.digits(),
            Sender::ShortCode(s) | Sender::Alphanumeric(s) => s,
        }
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sender::International(m) => m.fmt(f),
            Sender::ShortCode(s) | Sender::Alphanumeric(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_destinations() {
        for input in [
            "+46701234567",
            "+46 70-123 45 67",
            "0046701234567",
            " +46 (70) 123.45.67 ",
        ] {
            assert_eq!(
                Msisdn::parse(input).map(|m| m.to_string()),
                Ok("+46701234567".to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_bad_destinations() {
        assert_eq!(Msisdn::parse(""), Err(AddressError::Empty));
        assert_eq!(
            Msisdn::parse("0701234567"),
            Err(AddressError::NotInternational)
        );
        assert_eq!(
            Msisdn::parse("+46x01"),
            Err(AddressError::BadCharacter { ch: 'x', pos: 3 })
        );
        assert_eq!(Msisdn::parse("+123"), Err(AddressError::BadLength(3)));
        assert_eq!(
            Msisdn::parse("+1234567890123456"),
            Err(AddressError::BadLength(16))
        );
        assert_eq!(
            Msisdn::parse("+0123456789"),
            Err(AddressError::BadCountryCode)
        );
    }

    #[test]
    fn classifies_senders() {
        assert_eq!(Sender::parse("ACME").map(|s| s.ton_npi()), Ok((5, 0)));
        assert_eq!(Sender::parse("12345").map(|s| s.ton_npi()), Ok((3, 0)));
        let n = Sender::parse("+46701234567").expect("valid number");
        assert_eq!((n.ton_npi(), n.addr()), ((1, 1), "46701234567"));
        assert_eq!(
            Sender::parse("ACME Corporation"),
            Err(AddressError::AlphanumericTooLong(16))
        );
        assert_eq!(
            Sender::parse("123456789"),
            Err(AddressError::NotInternational)
        );
        assert_eq!(
            Sender::parse("AC{ME"),
            Err(AddressError::SenderCharacter { ch: '{', pos: 2 })
        );
    }

    #[test]
    fn prefix_matching_accepts_plus_or_not() {
        let m = Msisdn::parse("+46701234567").expect("valid");
        assert!(m.has_prefix("+46"));
        assert!(m.has_prefix("4670"));
        assert!(!m.has_prefix("+47"));
    }
}
