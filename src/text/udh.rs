//! User Data Header (3GPP TS 23.040 §9.2.3.24) parsing and the element layouts smppd writes.
//! Owns only UDH bytes ⇄ values; never panics on malformed input (it returns a [`UdhError`]).

/// IEI of the concatenation element with an 8-bit reference.
pub(crate) const IEI_CONCAT8: u8 = 0x00;
/// IEI of the concatenation element with a 16-bit reference.
pub(crate) const IEI_CONCAT16: u8 = 0x08;
/// IEI of 8-bit application port addressing.
const IEI_PORT8: u8 = 0x04;
/// IEI of 16-bit application port addressing.
const IEI_PORT16: u8 = 0x05;
/// IEI of the national language single-shift element.
pub(crate) const IEI_SINGLE_SHIFT: u8 = 0x24;
/// IEI of the national language locking-shift element.
pub(crate) const IEI_LOCKING_SHIFT: u8 = 0x25;

/// A concatenation element: which part of which message this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Concat {
    /// Reference shared by all parts (8-bit references are zero-extended).
    pub reference: u16,
    /// Total number of parts (≥ 1).
    pub total: u8,
    /// This part's 1-based sequence number (1..=total).
    pub seq: u8,
    /// True for IEI 0x08 (16-bit reference).
    pub wide: bool,
}

/// Application port addressing (8-bit ports are zero-extended).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ports {
    /// Destination port.
    pub destination: u16,
    /// Originator port.
    pub originator: u16,
}

/// The elements of a UDH that smppd understands; unknown elements are skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Udh {
    /// Octets the whole UDH occupies, UDHL included (the payload starts here).
    pub len: usize,
    /// Concatenation, when present and valid (TT = 0, SS = 0 or SS > TT are ignored per
    /// TS 23.040).
    pub concat: Option<Concat>,
    /// Application ports.
    pub ports: Option<Ports>,
    /// Language id of the single-shift table (IEI 0x24).
    pub single_shift: Option<u8>,
    /// Language id of the locking-shift table (IEI 0x25).
    pub locking_shift: Option<u8>,
}

/// A UDH that cannot be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UdhError {
    /// UDHI was set but there is no octet for UDHL.
    #[error("UDH indicator set but user data is empty")]
    Empty,
    /// UDHL says the header is longer than the user data.
    #[error("UDH length {udhl} exceeds the {available} octets that follow it")]
    TooLong {
        /// The UDHL octet.
        udhl: u8,
        /// Octets after UDHL.
        available: usize,
    },
    /// An element's length runs past the end of the header.
    #[error("UDH element 0x{iei:02X} at offset {offset} runs past the end of the header")]
    TruncatedElement {
        /// The element's IEI.
        iei: u8,
        /// Its offset from the start of the UDH.
        offset: usize,
    },
}

/// Parses the UDH at the start of `user_data` (first octet = UDHL).
pub fn parse_udh(user_data: &[u8]) -> Result<Udh, UdhError> {
    let (&udhl, rest) = user_data.split_first().ok_or(UdhError::Empty)?;
    let header = rest.get(..usize::from(udhl)).ok_or(UdhError::TooLong {
        udhl,
        available: rest.len(),
    })?;
    let mut udh = Udh {
        len: 1 + usize::from(udhl),
        ..Udh::default()
    };
    let mut i = 0;
    while i < header.len() {
        let iei = header[i];
        let Some(&iedl) = header.get(i + 1) else {
            return Err(UdhError::TruncatedElement { iei, offset: i + 1 });
        };
        let data = header
            .get(i + 2..i + 2 + usize::from(iedl))
            .ok_or(UdhError::TruncatedElement { iei, offset: i + 1 })?;
        match (iei, data) {
            (IEI_CONCAT8, &[r, total, seq]) => {
                udh.concat = valid_concat(u16::from(r), total, seq, false);
            }
            (IEI_CONCAT16, &[r1, r2, total, seq]) => {
                udh.concat = valid_concat(u16::from_be_bytes([r1, r2]), total, seq, true);
            }
            (IEI_PORT8, &[d, o]) => {
                udh.ports = Some(Ports {
                    destination: u16::from(d),
                    originator: u16::from(o),
                });
            }
            (IEI_PORT16, &[d1, d2, o1, o2]) => {
                udh.ports = Some(Ports {
                    destination: u16::from_be_bytes([d1, d2]),
                    originator: u16::from_be_bytes([o1, o2]),
                });
            }
            (IEI_SINGLE_SHIFT, &[lang]) => udh.single_shift = Some(lang),
            (IEI_LOCKING_SHIFT, &[lang]) => udh.locking_shift = Some(lang),
            // Unknown elements, or known ones with a wrong length, are skipped.
            _ => {}
        }
        i += 2 + usize::from(iedl);
    }
    Ok(udh)
}

fn valid_concat(reference: u16, total: u8, seq: u8, wide: bool) -> Option<Concat> {
    (total != 0 && seq != 0 && seq <= total).then_some(Concat {
        reference,
        total,
        seq,
        wide,
    })
}
