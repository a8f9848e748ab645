//! Latin-1 and UCS-2 (UTF-16BE) decoding. Owns only byte → text conversion; never panics and never
//! fails: malformed input becomes U+FFFD and is counted.

/// Appends ISO-8859-1 `bytes` to `out`. Every octet is a character, so there are no warnings.
pub fn decode_latin1_into(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len());
    out.extend(bytes.iter().map(|&b| char::from(b)));
}

/// Appends UTF-16BE `bytes` to `out`, accepting surrogate pairs (what carriers send as "UCS-2").
/// A lone surrogate or a trailing odd octet becomes U+FFFD; returns how many replacements were
/// made.
pub fn decode_ucs2_into(bytes: &[u8], out: &mut String) -> usize {
    let mut warnings = 0;
    let units = bytes
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]));
    out.reserve(bytes.len() / 2);
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => out.push(c),
            Err(_) => {
                warnings += 1;
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
    if bytes.len() % 2 == 1 {
        warnings += 1;
        out.push(char::REPLACEMENT_CHARACTER);
    }
    warnings
}
