//! Encoding choice and splitting for mobile-terminated messages.
//!
//! Owns: which encoding a text gets ([`plan`]) and the bytes of every part ([`encode`],
//! [`encode_binary`]). Never picks a reference itself (the caller passes it in, so the output
//! is a pure function of its inputs), never stores anything, and never allocates more than the
//! output needs: one buffer for all parts plus, for split messages, the part boundaries.
//!
//! Capacity per part follows SMPP-FACTS §8.4: GSM septets = ⌊(140 − UDH)·8/7⌋, octets =
//! 140 − UDH, UCS-2 code units = ⌊(140 − UDH)/2⌋, where UDH counts the concatenation element
//! (also for SAR, whose UDH the SMSC adds) and 3 octets per national-language shift element.
//! Parts never end inside a GSM escape pair or a UTF-16 surrogate pair, and an extended grapheme
//! cluster stays in one part whenever it fits in one part.

use unicode_segmentation::GraphemeCursor;

use super::gsm::{ESC, Gsm7Tables, Resolved, Septets, encode_default, fill_bits, pack_in_place};
use super::smart;
use super::udh::{IEI_CONCAT8, IEI_CONCAT16, IEI_LOCKING_SHIFT, IEI_SINGLE_SHIFT};
use super::{Encoding, EncodingRequest, LanguageSet, SplitMethod, TextError};

/// Default maximum number of parts per message.
pub const DEFAULT_MAX_PARTS: u8 = 10;
/// TP-User-Data size of one SMS, in octets.
const TPDU_OCTETS: usize = 140;
/// Largest `message_payload` TLV value.
const PAYLOAD_OCTETS: usize = 65535;

/// What the SMSC and the request allow for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeOptions {
    /// National languages whose shift tables the SMSC accepts (from its config).
    pub languages: LanguageSet,
    /// Auto or a forced encoding (from the request).
    pub encoding: EncodingRequest,
    /// Replace typographic look-alikes when that keeps the text in GSM-7 (route or request).
    pub smart: bool,
    /// How a long text is carried (per SMSC).
    pub split: SplitMethod,
    /// Reject texts needing more parts than this (1..=255; default 10).
    pub max_parts: u8,
    /// Send GSM 7-bit packed (8 septets in 7 octets) instead of one septet per octet (per SMSC).
    pub packed: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            languages: LanguageSet::EMPTY,
            encoding: EncodingRequest::Auto,
            smart: false,
            split: SplitMethod::Udh8,
            max_parts: DEFAULT_MAX_PARTS,
            packed: false,
        }
    }
}

/// The outcome of the encoding choice: what the message will cost and how it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The chosen encoding (with national tables for GSM-7).
    pub encoding: Encoding,
    /// The `data_coding` byte for every part.
    pub data_coding: u8,
    /// Unicode scalar values in the input text.
    pub chars: usize,
    /// Payload size without UDH: GSM septets (escapes count 2), Latin-1/binary octets, or UTF-16
    /// code units.
    pub units: usize,
    /// Characters replaced by smart encoding.
    pub replaced: usize,
    /// Number of parts (PDUs); 1 for `message_payload`.
    pub parts: usize,
    /// The split method in effect.
    pub split: SplitMethod,
    /// True when every part starts with a UDH: set `esm_class` bit 0x40 (UDHI); see
    /// [`Plan::esm_class_udhi`].
    pub udhi: bool,
    /// True when GSM payloads are packed.
    pub packed: bool,
}

impl Plan {
    /// The bits to OR into `esm_class`: 0x40 (UDHI) when the parts carry a UDH, else 0.
    pub fn esm_class_udhi(&self) -> u8 {
        if self.udhi { 0x40 } else { 0 }
    }
}

/// The SAR TLV values of one part (`sar_msg_ref_num`, `sar_total_segments`,
/// `sar_segment_seqnum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sar {
    /// `sar_msg_ref_num`: the reference passed to [`encode`].
    pub msg_ref_num: u16,
    /// `sar_total_segments`.
    pub total_segments: u8,
    /// `sar_segment_seqnum` (1-based).
    pub segment_seqnum: u8,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SegMeta {
    start: usize,
    udh_len: usize,
    /// UDH octets on the air: `udh_len`, plus the concatenation element the SMSC adds for SAR.
    air_udh: usize,
    end: usize,
    units: usize,
}

/// Part boundaries: the first inline, so a single-part message needs no second allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Segs {
    first: SegMeta,
    rest: Vec<SegMeta>,
    any: bool,
}

impl Segs {
    fn with_capacity(parts: usize) -> Self {
        Segs {
            rest: Vec::with_capacity(parts.saturating_sub(1)),
            ..Segs::default()
        }
    }

    fn push(&mut self, m: SegMeta) {
        if self.any {
            self.rest.push(m);
        } else {
            self.first = m;
            self.any = true;
        }
    }

    /// At least 1: an empty text is one empty part.
    fn len(&self) -> usize {
        1 + self.rest.len()
    }

    fn get(&self, i: usize) -> SegMeta {
        match i.checked_sub(1) {
            None => self.first,
            Some(j) => self.rest[j],
        }
    }
}

/// An encoded message: the plan and the bytes of every part, in one buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    plan: Plan,
    reference: u16,
    buf: Vec<u8>,
    segs: Segs,
}

/// One part as it goes into a PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    bytes: &'a [u8],
    udh_len: usize,
    air_udh: usize,
    /// Septets (GSM, before packing), octets (Latin-1, binary) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// SAR TLV values (only with [`SplitMethod::Sar`] and more than one part).
    pub sar: Option<Sar>,
}

impl<'a> Segment<'a> {
    /// The UDH (UDHL included), empty when there is none.
    pub fn udh(&self) -> &'a [u8] {
        &self.bytes[..self.udh_len]
    }

    /// The payload after the UDH.
    pub fn payload(&self) -> &'a [u8] {
        &self.bytes[self.udh_len..]
    }

    /// UDH followed by payload: the `short_message` (or `message_payload`) value.
    pub fn short_message(&self) -> &'a [u8] {
        self.bytes
    }

    /// Octets this part occupies in the SMS TP-User-Data on the air interface: its UDH (with
    /// the concatenation element an SMSC adds for SAR) plus packed septets after fill bits, or
    /// plus octets. Always ≤ 140 for a part of a split message.
    pub fn air_octets(&self, encoding: Encoding) -> usize {
        let udh = self.air_udh;
        match encoding {
            Encoding::Gsm7(_) => (udh * 8 + fill_bits(udh) as usize + self.units * 7).div_ceil(8),
            Encoding::Ucs2 => udh + self.units * 2,
            Encoding::Latin1 | Encoding::Binary => udh + self.units,
        }
    }
}

impl Encoded {
    /// The encoding choice and counts.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The reference this message was encoded with.
    pub fn reference(&self) -> u16 {
        self.reference
    }

    /// The parts, in order.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = Segment<'_>> + '_ {
        (0..self.segs.len()).map(move |i| self.segment_at(i))
    }

    /// Part `index` (0-based), if it exists.
    pub fn segment(&self, index: usize) -> Option<Segment<'_>> {
        (index < self.segs.len()).then(|| self.segment_at(index))
    }

    fn segment_at(&self, i: usize) -> Segment<'_> {
        let m = self.segs.get(i);
        let sar = (self.plan.split == SplitMethod::Sar && self.segs.len() > 1).then(|| Sar {
            msg_ref_num: self.reference,
            // Both fit: the part count is capped at max_parts ≤ 255.
            total_segments: self.segs.len() as u8,
            segment_seqnum: (i + 1) as u8,
        });
        Segment {
            bytes: &self.buf[m.start..m.end],
            udh_len: m.udh_len,
            air_udh: m.air_udh,
            units: m.units,
            sar,
        }
    }
}

/// Per-character writer for one encoding.
#[derive(Clone, Copy, Debug)]
enum Coder {
    /// The tables, and the same resolved once for the per-character loops.
    Gsm(Gsm7Tables, Resolved),
    Latin1,
    Ucs2,
}

impl Coder {
    fn gsm(tables: Gsm7Tables) -> Coder {
        Coder::Gsm(tables, tables.resolve())
    }

    #[inline(always)]
    fn cost(self, c: char) -> Option<usize> {
        match self {
            Coder::Gsm(_, r) => r.encode_char(c).map(Septets::len),
            Coder::Latin1 => (u32::from(c) <= 0xFF).then_some(1),
            Coder::Ucs2 => Some(c.len_utf16()),
        }
    }

    /// Appends `c`; false (nothing written) when it cannot be encoded.
    #[inline(always)]
    fn write(self, c: char, out: &mut Vec<u8>) -> bool {
        match self {
            Coder::Gsm(_, r) => match r.encode_char(c) {
                Some(Septets::One(s)) => out.push(s),
                Some(Septets::Escaped(s)) => out.extend_from_slice(&[ESC, s]),
                None => return false,
            },
            Coder::Latin1 => match u8::try_from(u32::from(c)) {
                Ok(b) => out.push(b),
                Err(_) => return false,
            },
            Coder::Ucs2 => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.extend_from_slice(&u.to_be_bytes());
                }
            }
        }
        true
    }

    fn encoding(self) -> Encoding {
        match self {
            Coder::Gsm(t, _) => Encoding::Gsm7(t),
            Coder::Latin1 => Encoding::Latin1,
            Coder::Ucs2 => Encoding::Ucs2,
        }
    }

    fn shift_ies(self) -> usize {
        match self {
            Coder::Gsm(t, _) => t.shift_ies(),
            _ => 0,
        }
    }

    /// Units that fit in `octets` of TP-User-Data (or of `message_payload`).
    fn capacity(self, octets: usize, packed: bool, on_air: bool) -> usize {
        match self {
            // Septets are packed on the air whatever SMPP carries, so SMS parts are sized by
            // the packed form; an unpacked message_payload carries one septet per octet.
            Coder::Gsm(..) if on_air || packed => octets * 8 / 7,
            Coder::Gsm(..) | Coder::Latin1 => octets,
            Coder::Ucs2 => octets / 2,
        }
    }

    /// Octets `units` take in an SMPP field.
    fn field_octets(self, units: usize, packed: bool) -> usize {
        match self {
            Coder::Gsm(..) if packed => (units * 7).div_ceil(8),
            Coder::Gsm(..) | Coder::Latin1 => units,
            Coder::Ucs2 => units * 2,
        }
    }
}

/// Units `c` costs, and whether smart encoding replaced it.
#[inline(always)]
fn char_cost(coder: Coder, smart: bool, c: char) -> Option<(usize, bool)> {
    if let Some(n) = coder.cost(c) {
        return Some((n, false));
    }
    if !smart {
        return None;
    }
    let r = smart::replacement(c)?;
    let mut n = 0;
    for rc in r.chars() {
        n += coder.cost(rc)?;
    }
    Some((n, true))
}

#[inline]
fn write_char(coder: Coder, smart: bool, c: char, out: &mut Vec<u8>) {
    if !coder.write(c, out)
        && smart
        && let Some(r) = smart::replacement(c)
    {
        for rc in r.chars() {
            coder.write(rc, out);
        }
    }
}

/// Appends `s`, specialised per coder (the per-part hot loop).
fn write_str(coder: Coder, smart: bool, s: &str, out: &mut Vec<u8>) {
    match coder {
        Coder::Gsm(_, r) => {
            for c in s.chars() {
                match r.encode_char(c) {
                    Some(Septets::One(x)) => out.push(x),
                    Some(Septets::Escaped(x)) => out.extend_from_slice(&[ESC, x]),
                    None => write_char(coder, smart, c, out),
                }
            }
        }
        Coder::Ucs2 => {
            for c in s.chars() {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.extend_from_slice(&u.to_be_bytes());
                }
            }
        }
        Coder::Latin1 => {
            for c in s.chars() {
                write_char(coder, smart, c, out);
            }
        }
    }
}

/// UDH octets for `ie_octets` of elements (UDHL added when there is any element).
fn udh_len(ie_octets: usize) -> usize {
    if ie_octets == 0 { 0 } else { ie_octets + 1 }
}

/// Octets of the concatenation element a multi-part message counts against its capacity.
fn concat_ie_octets(split: SplitMethod) -> usize {
    match split {
        // SAR: the SMSC adds an 8-bit-reference element itself.
        SplitMethod::Udh8 | SplitMethod::Sar => 5,
        SplitMethod::Udh16 => 6,
        SplitMethod::Payload => 0,
    }
}

/// One evaluated encoding candidate.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    coder: Coder,
    smart: bool,
    units: usize,
    replaced: usize,
    chars: usize,
    parts: usize,
    /// The part boundaries of this candidate are in the caller's bounds vector.
    laid_out: bool,
}

/// Calls `$body` with `$cost` bound to a per-character cost closure specialised for the coder,
/// so the per-character loops are monomorphised instead of matching on the coder per character.
macro_rules! with_cost {
    ($coder:expr, |$cost:ident| $body:expr) => {
        match $coder {
            Coder::Gsm(_, r) => {
                let $cost = |c: char| r.encode_char(c).map(Septets::len);
                $body
            }
            Coder::Latin1 => {
                let $cost = |c: char| (u32::from(c) <= 0xFF).then_some(1);
                $body
            }
            Coder::Ucs2 => {
                let $cost = |c: char| Some(c.len_utf16());
                $body
            }
        }
    };
}

/// An unencodable character and its 0-based position in Unicode scalar values (as
/// [`TextError::Unencodable`] reports them).
type Unencodable = (char, usize);

/// Counts units, replacements and characters; `Err((char, position))` at the first
/// unencodable character.
fn measure(text: &str, coder: Coder, smart: bool) -> Result<(usize, usize, usize), Unencodable> {
    with_cost!(coder, |cost| measure_with(text, coder, smart, cost))
}

#[inline(always)]
fn measure_with(
    text: &str,
    coder: Coder,
    smart: bool,
    cost: impl Fn(char) -> Option<usize>,
) -> Result<(usize, usize, usize), Unencodable> {
    let mut units = 0;
    let mut replaced = 0;
    let mut chars = 0;
    for c in text.chars() {
        match cost(c) {
            Some(n) => units += n,
            None => match char_cost(coder, smart, c) {
                Some((n, r)) => {
                    units += n;
                    replaced += usize::from(r);
                }
                None => return Err((c, chars)),
            },
        }
        chars += 1;
    }
    Ok((units, replaced, chars))
}

/// Lays `text` out in parts of at most `cap` units; records where each part after the first
/// starts (byte offsets) in `bounds` while fewer than `keep` are recorded.
///
/// Characters are packed greedily (a character is atomic, so escape and surrogate pairs never
/// split). Grapheme segmentation only runs at the few places where a part fills up: if the cut
/// falls inside an extended grapheme cluster that fits in one part, the part ends before the
/// cluster instead. That keeps the common path a plain per-character loop.
struct Layout<'b> {
    coder: Coder,
    smart: bool,
    cap: usize,
    parts: usize,
    bounds: Option<&'b mut Vec<usize>>,
    keep: usize,
    /// End of the last cluster found to be larger than a part: cuts before it need no
    /// segmentation (keeps pathological texts, e.g. thousands of combining marks, linear).
    oversized_until: usize,
}

impl Layout<'_> {
    fn cut(&mut self, offset: usize) {
        self.parts += 1;
        if let Some(b) = self.bounds.as_deref_mut()
            && b.len() < self.keep
        {
            b.push(offset);
        }
    }

    #[inline]
    fn cost(&self, c: char) -> usize {
        char_cost(self.coder, self.smart, c).map_or(0, |(n, _)| n)
    }

    fn cost_str(&self, s: &str) -> usize {
        s.chars().map(|c| self.cost(c)).sum()
    }

    /// Where to end a part that starts at `part_start` and cannot take the character at `full`.
    fn cut_point(&mut self, text: &str, part_start: usize, full: usize) -> usize {
        if full < self.oversized_until {
            return full;
        }
        let mut cursor = GraphemeCursor::new(full, text.len(), true);
        // The whole text is one chunk starting at 0, so the cursor never asks for context.
        if cursor.is_boundary(text, 0).unwrap_or(true) {
            return full;
        }
        let Ok(Some(cluster_start)) = cursor.prev_boundary(text, 0) else {
            return full;
        };
        let mut cursor = GraphemeCursor::new(full, text.len(), true);
        let cluster_end = match cursor.next_boundary(text, 0) {
            Ok(Some(end)) => end,
            _ => text.len(),
        };
        // A cluster that began with this part and still does not fit, or that costs more than
        // a part, is larger than a part: it is split between characters.
        if cluster_start <= part_start
            || self.cost_str(&text[cluster_start..cluster_end]) > self.cap
        {
            self.oversized_until = cluster_end;
            return full;
        }
        cluster_start
    }

    fn run(self, text: &str) -> usize {
        let (coder, smart) = (self.coder, self.smart);
        with_cost!(coder, |cost| self.run_with(text, |c| match cost(c) {
            Some(n) => n,
            None => char_cost(coder, smart, c).map_or(0, |(n, _)| n),
        }))
    }

    #[inline(always)]
    fn run_with(mut self, text: &str, cost: impl Fn(char) -> usize) -> usize {
        let mut part_start = 0;
        let mut used = 0;
        for (pos, c) in text.char_indices() {
            let k = cost(c);
            if used + k > self.cap {
                let cut = self.cut_point(text, part_start, pos);
                self.cut(cut);
                part_start = cut;
                // The new part holds text[cut..pos]: nothing, or the start of a cluster that
                // fits in one part and contains `c`, so `c` fits too.
                used = self.cost_str(&text[cut..pos]);
            }
            used += k;
        }
        self.parts
    }
}

/// Part geometry for a coder under the options.
struct Geometry {
    /// UDH octets of a single (unsplit) message.
    single_udh: usize,
    /// Units that fit in a single message.
    single_cap: usize,
    /// UDH octets counted against each part of a split message.
    multi_udh_counted: usize,
    /// Units per part of a split message.
    multi_cap: usize,
}

fn geometry(coder: Coder, opts: &EncodeOptions) -> Geometry {
    let shift = 3 * coder.shift_ies();
    let single_udh = udh_len(shift);
    let multi_udh_counted = udh_len(concat_ie_octets(opts.split) + shift);
    let (single_cap, multi_cap) = if opts.split == SplitMethod::Payload {
        let cap = coder.capacity(PAYLOAD_OCTETS - single_udh, opts.packed, false);
        (cap, cap)
    } else {
        (
            coder.capacity(TPDU_OCTETS - single_udh, opts.packed, true),
            coder.capacity(TPDU_OCTETS - multi_udh_counted, opts.packed, true),
        )
    };
    Geometry {
        single_udh,
        single_cap,
        multi_udh_counted,
        multi_cap,
    }
}

/// Maximum part boundaries ever recorded (the part limit is at most 255).
const MAX_BOUNDS: usize = u8::MAX as usize;

/// Measures `text` with `coder` and counts its parts. When `bounds` is given and the text needs
/// splitting, the part boundaries are left in it (`laid_out`), so [`encode`] need not lay the
/// text out a second time.
fn evaluate(
    text: &str,
    coder: Coder,
    smart: bool,
    opts: &EncodeOptions,
    bounds: Option<&mut Vec<usize>>,
) -> Result<Candidate, Unencodable> {
    let (units, replaced, chars) = measure(text, coder, smart)?;
    let g = geometry(coder, opts);
    let mut laid_out = false;
    let parts = if units <= g.single_cap || opts.split == SplitMethod::Payload {
        1
    } else if units.div_ceil(g.multi_cap) > MAX_BOUNDS {
        // Certainly over any allowed maximum: report the lower bound instead of laying out
        // an arbitrarily long text.
        units.div_ceil(g.multi_cap)
    } else {
        laid_out = bounds.is_some();
        let mut bounds = bounds;
        if let Some(b) = bounds.as_deref_mut() {
            b.clear();
        }
        Layout {
            coder,
            smart,
            cap: g.multi_cap,
            parts: 1,
            bounds,
            keep: MAX_BOUNDS,
            oversized_until: 0,
        }
        .run(text)
    };
    Ok(Candidate {
        coder,
        smart,
        units,
        replaced,
        chars,
        parts,
        laid_out,
    })
}

/// The best GSM-7 candidate: fewest parts, then fewest shift elements, then fewest septets.
/// On failure, the unencodable character that stopped the most capable table pair.
fn best_gsm(
    text: &str,
    opts: &EncodeOptions,
    smart: bool,
    bounds: Option<&mut Vec<usize>>,
) -> Result<Candidate, Unencodable> {
    // Only the default tables get the bounds vector: they win in the common case. A national
    // winner is laid out again by `encode`.
    let default = evaluate(text, Coder::gsm(Gsm7Tables::DEFAULT), smart, opts, bounds);
    match &default {
        // No national table can beat one septet per character without replacements.
        Ok(c) if opts.languages.is_empty() || (c.replaced == 0 && c.units == c.chars) => {
            return default;
        }
        Err(_) if opts.languages.is_empty() => return default,
        _ => {}
    }
    let mut best = default;
    let lockings = std::iter::once(None).chain(
        opts.languages
            .iter()
            .filter(|l| l.has_locking_shift())
            .map(Some),
    );
    for locking in lockings {
        let singles = std::iter::once(None).chain(opts.languages.iter().map(Some));
        for single in singles {
            let Some(tables) = Gsm7Tables::new(locking, single) else {
                continue;
            };
            if tables.is_default() {
                continue;
            }
            let cand = evaluate(text, Coder::gsm(tables), smart, opts, None);
            best = match (best, cand) {
                (Ok(b), Ok(c)) => {
                    let key = |x: &Candidate| (x.parts, x.coder.shift_ies(), x.units, x.replaced);
                    Ok(if key(&c) < key(&b) { c } else { b })
                }
                (Ok(b), Err(_)) => Ok(b),
                (Err(_), Ok(c)) => Ok(c),
                (Err(eb), Err(ec)) => Err(if ec.1 > eb.1 { ec } else { eb }),
            };
        }
    }
    best
}

fn choose(
    text: &str,
    opts: &EncodeOptions,
    mut bounds: Option<&mut Vec<usize>>,
) -> Result<Candidate, TextError> {
    let unencodable = |(ch, position): (char, usize)| TextError::Unencodable {
        ch,
        position,
        encoding: opts.encoding,
    };
    let cand = match opts.encoding {
        EncodingRequest::Auto | EncodingRequest::Gsm7 => {
            let mut gsm = best_gsm(text, opts, false, bounds.as_deref_mut());
            if gsm.is_err() && opts.smart {
                gsm = best_gsm(text, opts, true, bounds.as_deref_mut());
            }
            match gsm {
                Ok(c) => c,
                Err(e) if opts.encoding == EncodingRequest::Gsm7 => return Err(unencodable(e)),
                Err(_) => evaluate(text, Coder::Ucs2, false, opts, bounds).map_err(unencodable)?,
            }
        }
        EncodingRequest::Latin1 => {
            evaluate(text, Coder::Latin1, false, opts, bounds).map_err(unencodable)?
        }
        EncodingRequest::Ucs2 => {
            evaluate(text, Coder::Ucs2, false, opts, bounds).map_err(unencodable)?
        }
    };
    check_size(cand.coder, cand.units, cand.parts, opts)?;
    Ok(cand)
}

fn check_size(
    coder: Coder,
    units: usize,
    parts: usize,
    opts: &EncodeOptions,
) -> Result<(), TextError> {
    if opts.max_parts == 0 {
        return Err(TextError::ZeroMaxParts);
    }
    if opts.split == SplitMethod::Payload {
        let g = geometry(coder, opts);
        if units > g.single_cap {
            return Err(TextError::PayloadTooLong {
                octets: g.single_udh + coder.field_octets(units, opts.packed),
            });
        }
    } else if parts > usize::from(opts.max_parts) {
        return Err(TextError::TooLong {
            needed: parts,
            max: opts.max_parts,
        });
    }
    Ok(())
}

fn plan_of(cand: &Candidate, opts: &EncodeOptions) -> Plan {
    let g = geometry(cand.coder, opts);
    let udh = if cand.parts > 1 && matches!(opts.split, SplitMethod::Udh8 | SplitMethod::Udh16) {
        g.multi_udh_counted
    } else {
        g.single_udh
    };
    let encoding = cand.coder.encoding();
    Plan {
        encoding,
        data_coding: encoding.data_coding(),
        chars: cand.chars,
        units: cand.units,
        replaced: cand.replaced,
        parts: cand.parts,
        split: opts.split,
        udhi: udh > 0,
        packed: opts.packed && matches!(encoding, Encoding::Gsm7(_)),
    }
}

/// Chooses the encoding for `text` and counts parts, without building any bytes.
///
/// Auto picks the cheapest exact encoding (fewest parts) in the order GSM-7 → GSM-7 with a
/// national table from `opts.languages` → (with `smart`) GSM-7 after replacing look-alikes →
/// UCS-2. A forced encoding that cannot represent the text gives
/// [`TextError::Unencodable`]; more than `max_parts` parts give [`TextError::TooLong`].
pub fn plan(text: &str, opts: &EncodeOptions) -> Result<Plan, TextError> {
    let cand = choose(text, opts, None)?;
    Ok(plan_of(&cand, opts))
}

/// Writes the UDH for one part.
fn write_udh(
    buf: &mut Vec<u8>,
    udh: usize,
    concat: Option<(SplitMethod, u16, u8, u8)>,
    tables: Option<Gsm7Tables>,
) {
    if udh == 0 {
        return;
    }
    buf.push((udh - 1) as u8);
    match concat {
        Some((SplitMethod::Udh8, reference, total, seq)) => {
            buf.extend_from_slice(&[IEI_CONCAT8, 3, reference as u8, total, seq]);
        }
        Some((SplitMethod::Udh16, reference, total, seq)) => {
            let [hi, lo] = reference.to_be_bytes();
            buf.extend_from_slice(&[IEI_CONCAT16, 4, hi, lo, total, seq]);
        }
        _ => {}
    }
    if let Some(t) = tables {
        if let Some(l) = t.single() {
            buf.extend_from_slice(&[IEI_SINGLE_SHIFT, 1, l.id()]);
        }
        if let Some(l) = t.locking() {
            buf.extend_from_slice(&[IEI_LOCKING_SHIFT, 1, l.id()]);
        }
    }
}

/// Encodes and splits `text` (see [`plan`] for the choice). `reference` goes into the
/// concatenation element (low 8 bits for [`SplitMethod::Udh8`]) or `sar_msg_ref_num`; take it
/// from a [`ReferenceAllocator`].
pub fn encode(text: &str, opts: &EncodeOptions, reference: u16) -> Result<Encoded, TextError> {
    if let Some(e) = encode_single_default_gsm(text, opts, reference) {
        return Ok(e);
    }
    // Part ends as byte offsets; a single part needs no allocation.
    let whole = [text.len()];
    let mut bounds = Vec::new();
    let cand = choose(text, opts, Some(&mut bounds))?;
    let plan = plan_of(&cand, opts);
    let g = geometry(cand.coder, opts);
    let ends: &[usize] = if cand.parts > 1 {
        part_ends(text, &cand, g.multi_cap, &mut bounds);
        &bounds
    } else {
        &whole
    };
    let (buf, segs) = PartWriter::new(&cand, opts, &g, reference, plan.packed).write(text, ends);
    Ok(Encoded {
        plan,
        reference,
        buf,
        segs,
    })
}

/// Leaves in `bounds` the end of every part of a split message (the last is `text.len()`),
/// laying the text out unless [`evaluate`] already did.
fn part_ends(text: &str, cand: &Candidate, cap: usize, bounds: &mut Vec<usize>) {
    if !cand.laid_out {
        bounds.clear();
        Layout {
            coder: cand.coder,
            smart: cand.smart,
            cap,
            parts: 1,
            bounds: Some(&mut *bounds),
            keep: cand.parts,
            oversized_until: 0,
        }
        .run(text);
    }
    bounds.push(text.len());
}

/// How every part of one message is written: its UDH (concatenation and shift elements), its
/// payload, and whether septets are packed.
struct PartWriter {
    coder: Coder,
    smart: bool,
    parts: usize,
    /// UDH octets written in each part.
    udh: usize,
    /// UDH octets on the air (with the element an SMSC adds for SAR).
    air_udh: usize,
    /// The concatenation element (method, reference, total) when it goes in the UDH.
    concat: Option<(SplitMethod, u16, u8)>,
    /// National tables to announce in the UDH.
    tables: Option<Gsm7Tables>,
    packed: bool,
    /// Payload octets of the whole text (for the buffer's one allocation).
    payload_octets: usize,
}

impl PartWriter {
    fn new(
        cand: &Candidate,
        opts: &EncodeOptions,
        g: &Geometry,
        reference: u16,
        packed: bool,
    ) -> Self {
        let multi = cand.parts > 1;
        let concat_in_udh = multi && matches!(opts.split, SplitMethod::Udh8 | SplitMethod::Udh16);
        let udh = if concat_in_udh {
            g.multi_udh_counted
        } else {
            g.single_udh
        };
        let air_udh = if multi && opts.split == SplitMethod::Sar {
            g.multi_udh_counted
        } else {
            udh
        };
        PartWriter {
            coder: cand.coder,
            smart: cand.smart,
            parts: cand.parts,
            udh,
            air_udh,
            concat: concat_in_udh.then_some((opts.split, reference, cand.parts as u8)),
            tables: match cand.coder {
                Coder::Gsm(t, _) if !t.is_default() => Some(t),
                _ => None,
            },
            packed,
            payload_octets: match cand.coder {
                Coder::Ucs2 => cand.units * 2,
                _ => cand.units,
            },
        }
    }

    /// Writes the parts ending at `ends` into one buffer, with where each lies in it.
    fn write(&self, text: &str, ends: &[usize]) -> (Vec<u8>, Segs) {
        let mut buf = Vec::with_capacity(self.payload_octets + self.parts * self.udh);
        let mut segs = Segs::with_capacity(self.parts);
        let mut from = 0;
        for (i, &to) in ends.iter().enumerate() {
            let start = buf.len();
            let concat = self
                .concat
                .map(|(method, reference, total)| (method, reference, total, (i + 1) as u8));
            write_udh(&mut buf, self.udh, concat, self.tables);
            let payload_start = buf.len();
            write_str(self.coder, self.smart, &text[from..to], &mut buf);
            let written = buf.len() - payload_start;
            let units = match self.coder {
                Coder::Ucs2 => written / 2,
                _ => written,
            };
            if self.packed {
                pack_in_place(&mut buf, payload_start, fill_bits(self.udh));
            }
            segs.push(SegMeta {
                start,
                udh_len: self.udh,
                air_udh: self.air_udh,
                end: buf.len(),
                units,
            });
            from = to;
        }
        (buf, segs)
    }
}

/// Single GSM septet limit without UDH.
const SINGLE_SEPTETS: usize = 160;

/// The hot path: a text that fits one message in the default GSM alphabet is encoded in one
/// pass with one allocation. Gives up (`None`, the general path decides) at the first character
/// outside the default tables, at an escape when national tables might do better, or when the
/// text is longer than one message. Produces exactly what the general path would.
#[inline(always)]
fn encode_single_default_gsm(text: &str, opts: &EncodeOptions, reference: u16) -> Option<Encoded> {
    // A character is at most 3 UTF-8 octets per septet (€: 3 octets, 2 septets), so a longer
    // text cannot fit.
    if opts.max_parts == 0
        || !matches!(opts.encoding, EncodingRequest::Auto | EncodingRequest::Gsm7)
        || text.len() > 3 * SINGLE_SEPTETS
    {
        return None;
    }
    let tables = Gsm7Tables::DEFAULT;
    // Septets go to the stack first (no capacity checks in the loop), then into one exact
    // allocation. Before each character n ≤ 160, so n + 1 < 162 stays in bounds.
    let mut septets = [0u8; SINGLE_SEPTETS + 2];
    let mut n = 0;
    let mut chars = 0;
    for c in text.chars() {
        match encode_default(c)? {
            Septets::One(s) => {
                septets[n] = s;
                n += 1;
            }
            Septets::Escaped(_) if !opts.languages.is_empty() => return None,
            Septets::Escaped(s) => {
                septets[n] = ESC;
                septets[n + 1] = s;
                n += 2;
            }
        }
        chars += 1;
        if n > SINGLE_SEPTETS {
            return None;
        }
    }
    let units = n;
    let mut buf = septets[..n].to_vec();
    if opts.packed {
        pack_in_place(&mut buf, 0, 0);
    }
    let encoding = Encoding::Gsm7(tables);
    Some(Encoded {
        plan: Plan {
            encoding,
            data_coding: encoding.data_coding(),
            chars,
            units,
            replaced: 0,
            parts: 1,
            split: opts.split,
            udhi: false,
            packed: opts.packed,
        },
        reference,
        segs: Segs {
            first: SegMeta {
                start: 0,
                udh_len: 0,
                air_udh: 0,
                end: buf.len(),
                units,
            },
            rest: Vec::new(),
            any: true,
        },
        buf,
    })
}

/// Splits 8-bit binary data (data_coding 0x04) into parts: 140 octets single, 134 (udh8, sar) or
/// 133 (udh16) per part, or one `message_payload`. `opts.encoding`, `languages`, `smart` and
/// `packed` do not apply.
pub fn encode_binary(
    data: &[u8],
    opts: &EncodeOptions,
    reference: u16,
) -> Result<Encoded, TextError> {
    if opts.max_parts == 0 {
        return Err(TextError::ZeroMaxParts);
    }
    let (parts, cap, udh) = match opts.split {
        SplitMethod::Payload => {
            if data.len() > PAYLOAD_OCTETS {
                return Err(TextError::PayloadTooLong { octets: data.len() });
            }
            (1, data.len(), 0)
        }
        _ if data.len() <= TPDU_OCTETS => (1, TPDU_OCTETS, 0),
        split => {
            let udh = udh_len(concat_ie_octets(split));
            let cap = TPDU_OCTETS - udh;
            let parts = data.len().div_ceil(cap);
            if parts > usize::from(opts.max_parts) {
                return Err(TextError::TooLong {
                    needed: parts,
                    max: opts.max_parts,
                });
            }
            (parts, cap, udh)
        }
    };
    // SAR: the SMSC adds the concatenation element; it is counted, not written.
    let air_udh = udh;
    let udh = if opts.split == SplitMethod::Sar {
        0
    } else {
        udh
    };
    let mut buf = Vec::with_capacity(data.len() + parts * udh);
    let mut segs = Segs::with_capacity(parts);
    for i in 0..parts {
        let chunk = &data[(i * cap).min(data.len())..((i + 1) * cap).min(data.len())];
        let start = buf.len();
        let concat = (udh > 0).then_some((opts.split, reference, parts as u8, (i + 1) as u8));
        write_udh(&mut buf, udh, concat, None);
        buf.extend_from_slice(chunk);
        segs.push(SegMeta {
            start,
            udh_len: udh,
            air_udh,
            end: buf.len(),
            units: chunk.len(),
        });
    }
    Ok(Encoded {
        plan: Plan {
            encoding: Encoding::Binary,
            data_coding: Encoding::Binary.data_coding(),
            chars: data.len(),
            units: data.len(),
            replaced: 0,
            parts,
            split: opts.split,
            udhi: udh > 0,
            packed: false,
        },
        reference,
        buf,
        segs,
    })
}
