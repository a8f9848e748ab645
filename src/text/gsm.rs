//! GSM 03.38 (3GPP TS 23.038) 7-bit alphabet: character ⇄ septet lookups for the default alphabet,
//! its extension table and the Turkish, Spanish and Portuguese national shift tables; septet
//! packing and unpacking.
//!
//! Owns the codec only. It never chooses an encoding or splits a message (see `encode`), and it
//! never panics on input: decoding is total, every unmappable code becomes U+FFFD and is counted.

use super::NationalLanguage;
use super::tables::{
    LOCK_DEFAULT, LOCK_PORTUGUESE, LOCK_TURKISH, SHIFT_DEFAULT, SHIFT_PORTUGUESE, SHIFT_SPANISH,
    SHIFT_TURKISH,
};

/// The escape septet: the next septet is looked up in the single-shift (extension) table.
pub const ESC: u8 = 0x1B;

/// Marks "no code" in the reverse lookup arrays below.
const NONE: u8 = 0xFF;

/// Builds the char → septet array for code points below 256 of a locking-shift table at compile
/// time, so the common case (Latin text) is one array index per character.
const fn reverse_locking(table: &[char; 128]) -> [u8; 256] {
    let mut rev = [NONE; 256];
    let mut i = 0;
    while i < 128 {
        let c = table[i] as u32;
        // 0x1B is ESC, not a character: a literal U+001B must never encode to it.
        if i != ESC as usize && c < 256 {
            rev[c as usize] = i as u8;
        }
        i += 1;
    }
    rev
}

/// Same as [`reverse_locking`] for a single-shift table, whose unused codes hold `'\0'`.
const fn reverse_shift(table: &[char; 128]) -> [u8; 256] {
    let mut rev = [NONE; 256];
    let mut i = 0;
    while i < 128 {
        let c = table[i] as u32;
        if c != 0 && c < 256 {
            rev[c as usize] = i as u8;
        }
        i += 1;
    }
    rev
}

/// The entries of a table at or above U+0100 (Greek capitals, €, ∞, Turkish letters, …), kept
/// apart so looking one up scans a handful of entries instead of 128.
#[derive(Debug)]
struct High {
    chars: [u32; HIGH_MAX],
    codes: [u8; HIGH_MAX],
    len: usize,
}

/// Enough for every table carried (the largest, the Turkish locking shift, has 17).
const HIGH_MAX: usize = 24;

const fn high_entries(table: &[char; 128], locking: bool) -> High {
    let mut high = High {
        chars: [0; HIGH_MAX],
        codes: [0; HIGH_MAX],
        len: 0,
    };
    let mut i = 0;
    while i < 128 {
        let c = table[i] as u32;
        if c >= 256 && !(locking && i == ESC as usize) {
            // Fails the build if a table ever outgrows HIGH_MAX.
            high.chars[high.len] = c;
            high.codes[high.len] = i as u8;
            high.len += 1;
        }
        i += 1;
    }
    high
}

impl High {
    #[inline]
    fn find(&self, c: u32) -> Option<u8> {
        let mut i = 0;
        while i < self.len {
            if self.chars[i] == c {
                return Some(self.codes[i]);
            }
            i += 1;
        }
        None
    }
}

/// One table: decode array, reverse array for U+0000–U+00FF, and the entries above.
#[derive(Debug)]
struct Table {
    decode: &'static [char; 128],
    low: [u8; 256],
    high: High,
}

static T_LOCK_DEFAULT: Table = Table {
    decode: &LOCK_DEFAULT,
    low: reverse_locking(&LOCK_DEFAULT),
    high: high_entries(&LOCK_DEFAULT, true),
};
static T_LOCK_TURKISH: Table = Table {
    decode: &LOCK_TURKISH,
    low: reverse_locking(&LOCK_TURKISH),
    high: high_entries(&LOCK_TURKISH, true),
};
static T_LOCK_PORTUGUESE: Table = Table {
    decode: &LOCK_PORTUGUESE,
    low: reverse_locking(&LOCK_PORTUGUESE),
    high: high_entries(&LOCK_PORTUGUESE, true),
};
static T_SHIFT_DEFAULT: Table = Table {
    decode: &SHIFT_DEFAULT,
    low: reverse_shift(&SHIFT_DEFAULT),
    high: high_entries(&SHIFT_DEFAULT, false),
};
static T_SHIFT_TURKISH: Table = Table {
    decode: &SHIFT_TURKISH,
    low: reverse_shift(&SHIFT_TURKISH),
    high: high_entries(&SHIFT_TURKISH, false),
};
static T_SHIFT_SPANISH: Table = Table {
    decode: &SHIFT_SPANISH,
    low: reverse_shift(&SHIFT_SPANISH),
    high: high_entries(&SHIFT_SPANISH, false),
};
static T_SHIFT_PORTUGUESE: Table = Table {
    decode: &SHIFT_PORTUGUESE,
    low: reverse_shift(&SHIFT_PORTUGUESE),
    high: high_entries(&SHIFT_PORTUGUESE, false),
};

/// Highest code point in any table we carry (U+221E ∞, Portuguese locking shift). Anything above
/// is rejected without a table scan (emoji, CJK, Cyrillic above it, …).
const MAX_TABLE_CHAR: u32 = 0x221E;

/// How one character is written in GSM 7-bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Septets {
    /// One septet from the locking-shift (base) table.
    One(u8),
    /// `ESC` followed by this septet from the single-shift (extension) table: two septets.
    Escaped(u8),
}

impl Septets {
    /// Number of septets this character costs (1 or 2).
    #[inline]
    pub fn len(self) -> usize {
        match self {
            Septets::One(_) => 1,
            Septets::Escaped(_) => 2,
        }
    }

    /// Always false: a character costs at least one septet. (Present for clippy's `len` rule.)
    #[inline]
    pub fn is_empty(self) -> bool {
        false
    }
}

/// A pair of GSM tables in force for a message: the locking-shift table (replaces the base
/// table; `None` = the default alphabet) and the single-shift table (replaces the extension
/// table; `None` = the default extension table).
///
/// Spanish has no locking-shift table, so [`Gsm7Tables::new`] refuses it; the fields are private
/// so an invalid pair cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Gsm7Tables {
    locking: Option<NationalLanguage>,
    single: Option<NationalLanguage>,
}

impl Gsm7Tables {
    /// The default alphabet with the default extension table: no national-language UDH.
    pub const DEFAULT: Gsm7Tables = Gsm7Tables {
        locking: None,
        single: None,
    };

    /// A table pair; `None` when `locking` names a language without a locking-shift table.
    pub fn new(
        locking: Option<NationalLanguage>,
        single: Option<NationalLanguage>,
    ) -> Option<Gsm7Tables> {
        match locking {
            Some(lang) if !lang.has_locking_shift() => None,
            _ => Some(Gsm7Tables { locking, single }),
        }
    }

    /// Tables named by national-language UDH elements (IEI 0x25 locking, 0x24 single), as
    /// language ids. Unknown ids (or Spanish locking) fall back to the default table; the second
    /// value is true when that happened, so a decoder can count a warning.
    pub fn from_ids(locking: Option<u8>, single: Option<u8>) -> (Gsm7Tables, bool) {
        let mut fallback = false;
        let lock = locking.and_then(|id| {
            let lang = NationalLanguage::from_id(id).filter(|l| l.has_locking_shift());
            fallback |= lang.is_none();
            lang
        });
        let single = single.and_then(|id| {
            let lang = NationalLanguage::from_id(id);
            fallback |= lang.is_none();
            lang
        });
        (
            Gsm7Tables {
                locking: lock,
                single,
            },
            fallback,
        )
    }

    /// The locking-shift language, if any.
    pub fn locking(self) -> Option<NationalLanguage> {
        self.locking
    }

    /// The single-shift language, if any.
    pub fn single(self) -> Option<NationalLanguage> {
        self.single
    }

    /// True for [`Gsm7Tables::DEFAULT`].
    pub fn is_default(self) -> bool {
        self.locking.is_none() && self.single.is_none()
    }

    /// Number of national-language information elements this pair needs in the UDH (0–2).
    pub fn shift_ies(self) -> usize {
        usize::from(self.locking.is_some()) + usize::from(self.single.is_some())
    }

    fn lock_table(self) -> &'static Table {
        match self.locking {
            None | Some(NationalLanguage::Spanish) => &T_LOCK_DEFAULT,
            Some(NationalLanguage::Turkish) => &T_LOCK_TURKISH,
            Some(NationalLanguage::Portuguese) => &T_LOCK_PORTUGUESE,
        }
    }

    fn shift_table(self) -> &'static Table {
        match self.single {
            None => &T_SHIFT_DEFAULT,
            Some(NationalLanguage::Turkish) => &T_SHIFT_TURKISH,
            Some(NationalLanguage::Spanish) => &T_SHIFT_SPANISH,
            Some(NationalLanguage::Portuguese) => &T_SHIFT_PORTUGUESE,
        }
    }

    /// The septet(s) for `c`, or `None` when these tables cannot represent it.
    #[inline]
    pub fn encode_char(self, c: char) -> Option<Septets> {
        self.resolve().encode_char(c)
    }

    /// The tables themselves, looked up once so a per-character loop does not repeat it.
    #[inline]
    pub(crate) fn resolve(self) -> Resolved {
        Resolved {
            lock: self.lock_table(),
            shift: self.shift_table(),
        }
    }

    /// The character a base (locking-shift) septet stands for; `None` for ESC and codes ≥ 0x80.
    pub fn decode_base(self, septet: u8) -> Option<char> {
        if septet == ESC || septet >= 0x80 {
            return None;
        }
        Some(self.lock_table().decode[usize::from(septet)])
    }

    /// The character `ESC septet` stands for, applying the GSM 03.38 display rules: an unlisted
    /// code shows the base-table character, and `ESC ESC` (reserved) shows a space. `None` only
    /// for codes ≥ 0x80.
    pub fn decode_escaped(self, septet: u8) -> Option<char> {
        if septet >= 0x80 {
            return None;
        }
        if septet == ESC {
            return Some(' ');
        }
        let c = self.shift_table().decode[usize::from(septet)];
        if c != '\0' {
            Some(c)
        } else {
            self.decode_base(septet)
        }
    }

    /// Decodes unpacked septets (one per octet) and appends the text to `out`. Returns the number
    /// of warnings: octets with bit 7 set and a dangling ESC at the end each give U+FFFD.
    pub fn decode_into(self, septets: &[u8], out: &mut String) -> usize {
        let mut warnings = 0;
        let mut iter = septets.iter().copied();
        while let Some(s) = iter.next() {
            let decoded = if s == ESC {
                match iter.next() {
                    Some(next) => self.decode_escaped(next),
                    None => None,
                }
            } else {
                self.decode_base(s)
            };
            match decoded {
                Some(c) => out.push(c),
                None => {
                    warnings += 1;
                    out.push(char::REPLACEMENT_CHARACTER);
                }
            }
        }
        warnings
    }
}

/// A [`Gsm7Tables`] pair resolved to its tables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resolved {
    lock: &'static Table,
    shift: &'static Table,
}

impl Resolved {
    /// See [`Gsm7Tables::encode_char`].
    #[inline(always)]
    pub(crate) fn encode_char(self, c: char) -> Option<Septets> {
        let cp = c as u32;
        if cp < 256 {
            let code = self.lock.low[cp as usize];
            if code != NONE {
                return Some(Septets::One(code));
            }
            let code = self.shift.low[cp as usize];
            return (code != NONE).then_some(Septets::Escaped(code));
        }
        if cp > MAX_TABLE_CHAR {
            return None;
        }
        if let Some(code) = self.lock.high.find(cp) {
            return Some(Septets::One(code));
        }
        self.shift.high.find(cp).map(Septets::Escaped)
    }
}

/// [`Gsm7Tables::encode_char`] for the default tables, reading the statics directly (the hot
/// path of short messages).
#[inline(always)]
pub(crate) fn encode_default(c: char) -> Option<Septets> {
    Resolved {
        lock: &T_LOCK_DEFAULT,
        shift: &T_SHIFT_DEFAULT,
    }
    .encode_char(c)
}

/// Number of fill bits that pad a UDH of `udh_octets` octets to a septet boundary in packed 7-bit
/// user data (TS 23.040 §9.2.3.24): `(7 − (8·udh) mod 7) mod 7`.
#[inline]
pub fn fill_bits(udh_octets: usize) -> u32 {
    ((7 - (udh_octets * 8) % 7) % 7) as u32
}

/// Packs septets (one per octet, bit 7 ignored) LSB first after `fill` zero bits and appends the
/// octets to `out`. When exactly 7 spare bits would remain in the last octet they carry CR
/// (TS 23.038 §6.1.2.3.1), so a receiver does not read a stray `@` there.
pub fn pack_septets(septets: &[u8], fill: u32, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(septets);
    pack_in_place(out, start, fill);
}

/// Packs the septets in `buf[start..]` in place (the packed form is never longer than the input,
/// and each output octet only depends on septets already read) and truncates `buf`.
pub(crate) fn pack_in_place(buf: &mut Vec<u8>, start: usize, fill: u32) {
    let n = buf.len() - start;
    if n == 0 {
        return;
    }
    let mut acc: u32 = 0;
    let mut bits = fill;
    let mut w = start;
    let mut i = start;
    // Writes trail reads: after reading septet k, at most k+1 octets have been written.
    while i < start + n {
        acc |= u32::from(buf[i] & 0x7F) << bits;
        bits += 7;
        i += 1;
        while bits >= 8 {
            buf[w] = acc as u8;
            w += 1;
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits == 1 {
        // Seven spare bits: fill them with CR instead of zeros.
        acc |= 0x0D << 1;
        bits = 8;
    }
    if bits > 0 {
        if w < buf.len() {
            buf[w] = acc as u8;
        } else {
            buf.push(acc as u8);
        }
        w += 1;
    }
    buf.truncate(w);
}

/// Unpacks packed 7-bit data that starts `fill` bits into `packed`, appending one septet per
/// octet to `out`. With `count` the exact number of septets is taken (clamped to what the input
/// holds). Without it, every whole septet is taken, and a final CR that exactly fills the last
/// octet is dropped as padding (TS 23.038 §6.1.2.3.1; a text that really ends with CR on an octet
/// boundary is ambiguous without a septet count).
pub fn unpack_septets(packed: &[u8], fill: u32, count: Option<usize>, out: &mut Vec<u8>) {
    let total_bits = (packed.len() * 8).saturating_sub(fill as usize);
    let available = total_bits / 7;
    let take = match count {
        Some(c) => c.min(available),
        None => available,
    };
    let start = out.len();
    let mut bit = fill as usize;
    for _ in 0..take {
        let byte = bit / 8;
        let shift = bit % 8;
        let lo = u16::from(packed[byte]);
        let hi = packed.get(byte + 1).copied().map_or(0, u16::from);
        let v = ((lo | (hi << 8)) >> shift) & 0x7F;
        out.push(v as u8);
        bit += 7;
    }
    if count.is_none()
        && take > 0
        && total_bits == take * 7
        && out.last() == Some(&0x0D)
        && out.len() > start
    {
        out.pop();
    }
}
