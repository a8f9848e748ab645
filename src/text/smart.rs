//! Smart encoding: typographic look-alikes that have a plain GSM 7-bit equivalent (curly quotes,
//! dashes, ellipsis, Unicode spaces, invisible formatting characters). Owns only the mapping; the
//! encoder decides when to apply it (only when the text would otherwise leave GSM-7).

use super::Gsm7Tables;

/// The GSM-safe replacement for `c`, or `None` when `c` has no look-alike. An empty string means
/// the character is invisible and is dropped (zero-width space, BOM, soft hyphen, word joiner).
/// Every replacement is encodable with every supported table pair (checked by a test).
pub fn replacement(c: char) -> Option<&'static str> {
    Some(match c {
        // Single quotes, primes, accents used as apostrophes; ` is not in the default alphabet.
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '\u{2035}'
        | '\u{00B4}' | '\u{0060}' | '\u{02BC}' | '\u{02B9}' => "'",
        // Double quotes, double primes, guillemets.
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{2036}'
        | '\u{00AB}' | '\u{00BB}' | '\u{02BA}' => "\"",
        '\u{2039}' => "<",
        '\u{203A}' => ">",
        // Hyphens and dashes, minus sign.
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
        | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => "-",
        '\u{2026}' => "...",
        '\u{2022}' | '\u{2027}' | '\u{00B7}' => ".",
        '\u{2044}' | '\u{2215}' => "/",
        '\u{02C6}' | '\u{2038}' => "^",
        '\u{02DC}' | '\u{223C}' => "~",
        // Spaces: tab, no-break, en/em and the other fixed-width spaces, narrow, medium
        // mathematical, ideographic.
        '\u{0009}'
        | '\u{00A0}'
        | '\u{2000}'..='\u{200A}'
        | '\u{202F}'
        | '\u{205F}'
        | '\u{3000}' => " ",
        '\u{2028}' | '\u{2029}' | '\u{0085}' => "\n",
        // Invisible: zero-width space, soft hyphen, word joiner, BOM.
        '\u{200B}' | '\u{00AD}' | '\u{2060}' | '\u{FEFF}' => "",
        _ => return None,
    })
}

/// The text as smart encoding sends it with `tables`: every character the tables cannot encode
/// and that has a look-alike is replaced; the rest is unchanged. (What a recipient sees; the
/// encoder applies the same rule without building this string.)
pub fn apply(text: &str, tables: Gsm7Tables) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match (tables.encode_char(c), replacement(c)) {
            (None, Some(r)) => out.push_str(r),
            _ => out.push(c),
        }
    }
    out
}
