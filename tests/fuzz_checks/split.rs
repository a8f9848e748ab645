//! The `split` fuzz target's property, shared by `fuzz/fuzz_targets/split.rs` (nightly,
//! libFuzzer) and `tests/fuzz_regressions.rs` (stable replay): `smppd::text::encode` on
//! arbitrary Unicode text with arbitrary options.
//!
//! Either a typed error that is true of the input (a forced encoding that really cannot carry
//! the text, at the reported character; more parts than allowed, consistent with the count under
//! a larger limit), or parts that each fit 140 octets on the air (`message_payload` excepted),
//! never end inside a GSM escape or a surrogate pair, cut a grapheme cluster only when it cannot
//! fit one part, and decode and reassemble (through the MO path) to the text exactly, after smart
//! substitution when it was applied.
//!
//! Input layout: byte 0 bits 0-1 split method, bits 2-3 encoding, bit 4 smart, bit 5 packed;
//! byte 1 bits 0-2 national languages (tr, es, pt); byte 2 max_parts (0 included); bytes 3-4
//! the reference; the rest is the text (UTF-8, invalid sequences become U+FFFD).

use unicode_segmentation::UnicodeSegmentation;

use smppd::text::{
    self, Body, Charset, DecodeOptions, EncodeOptions, Encoded, Encoding, EncodingRequest,
    Fragment, Gsm7Tables, LanguageSet, NationalLanguage, PushStatus, Reassembler, ReassemblyConfig,
    SplitMethod, TextError, UserData,
};

fn options(header: &[u8]) -> (EncodeOptions, u16) {
    let b = |i: usize| header.get(i).copied().unwrap_or(0);
    let split = match b(0) & 3 {
        0 => SplitMethod::Udh8,
        1 => SplitMethod::Udh16,
        2 => SplitMethod::Sar,
        _ => SplitMethod::Payload,
    };
    let encoding = match (b(0) >> 2) & 3 {
        0 => EncodingRequest::Auto,
        1 => EncodingRequest::Gsm7,
        2 => EncodingRequest::Latin1,
        _ => EncodingRequest::Ucs2,
    };
    let languages: LanguageSet = NationalLanguage::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| b(1) & (1 << i) != 0)
        .map(|(_, l)| l)
        .collect();
    let opts = EncodeOptions {
        languages,
        encoding,
        smart: b(0) & 0x10 != 0,
        split,
        max_parts: b(2),
        packed: b(0) & 0x20 != 0,
    };
    (opts, u16::from_be_bytes([b(3), b(4)]))
}

/// Every GSM table pair the options allow.
fn table_pairs(languages: LanguageSet) -> Vec<Gsm7Tables> {
    let mut out = Vec::new();
    let locking =
        std::iter::once(None).chain(languages.iter().filter(|l| l.has_locking_shift()).map(Some));
    for l in locking {
        for s in std::iter::once(None).chain(languages.iter().map(Some)) {
            if let Some(t) = Gsm7Tables::new(l, s) {
                out.push(t);
            }
        }
    }
    out
}

/// Whether some allowed GSM table pair carries the text (after smart substitution when asked).
fn gsm_can_carry(text: &str, opts: &EncodeOptions) -> bool {
    table_pairs(opts.languages).into_iter().any(|t| {
        text.chars().all(|c| {
            t.encode_char(c).is_some()
                || (opts.smart
                    && text::smart::replacement(c)
                        .is_some_and(|r| r.chars().all(|rc| t.encode_char(rc).is_some())))
        })
    })
}

fn check_error(text: &str, opts: &EncodeOptions, reference: u16, e: &TextError) {
    match *e {
        TextError::ZeroMaxParts => assert_eq!(opts.max_parts, 0),
        TextError::Unencodable {
            ch,
            position,
            encoding,
        } => {
            assert_eq!(encoding, opts.encoding);
            assert_eq!(text.chars().nth(position), Some(ch), "reported character");
            match encoding {
                EncodingRequest::Latin1 => assert!(u32::from(ch) > 0xFF, "{ch:?} is Latin-1"),
                EncodingRequest::Gsm7 => {
                    assert!(!gsm_can_carry(text, opts), "GSM-7 can carry {text:?}")
                }
                other => panic!("{other:?} reported unencodable {ch:?}"),
            }
        }
        TextError::TooLong { needed, max } => {
            assert_eq!(max, opts.max_parts);
            assert!(needed > usize::from(max), "needed {needed} ≤ max {max}");
            assert_ne!(opts.split, SplitMethod::Payload);
            // The same text with room for every part it needs.
            let roomy = EncodeOptions {
                max_parts: 255,
                ..*opts
            };
            match text::encode(text, &roomy, reference) {
                Ok(e) => assert_eq!(e.plan().parts, needed, "needed vs parts at max 255"),
                Err(TextError::TooLong { needed: n, .. }) => {
                    assert!(n > 255 && needed > 255, "{n} vs {needed}")
                }
                Err(other) => panic!("{other} with max_parts 255 after TooLong"),
            }
        }
        TextError::PayloadTooLong { octets } => {
            assert_eq!(opts.split, SplitMethod::Payload);
            assert!(octets > 65535);
        }
    }
    assert!(
        text::plan(text, opts).is_err(),
        "plan accepts what encode refused"
    );
}

/// The septets / octets of a part as a receiver reads them. Packed GSM is unpacked with the
/// part's septet count, which the air interface carries (TP-UDL); SMPP's octet length alone
/// cannot tell a final CR on an octet boundary from padding.
fn user_data(e: &Encoded, index: usize) -> UserData {
    let plan = e.plan();
    let seg = e.segment(index).expect("segment");
    let opts = DecodeOptions::default();
    let mut ud = UserData::parse(plan.data_coding, plan.udhi, seg.short_message(), &opts);
    if plan.packed {
        assert_eq!(ud.charset, Charset::Gsm7);
        let mut septets = Vec::new();
        text::gsm::unpack_septets(
            seg.payload(),
            text::gsm::fill_bits(seg.udh().len()),
            Some(seg.units),
            &mut septets,
        );
        assert_eq!(septets.len(), seg.units);
        ud.payload = septets;
    }
    ud
}

/// Every part through the MO path (UDH parse, reassembly in reverse order, decode).
fn receive(e: &Encoded) -> String {
    let n = e.segments().len();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut result = None;
    for i in (0..n).rev() {
        let seg = e.segment(i).expect("segment");
        let ud = user_data(e, i);
        assert_eq!(ud.warnings, 0, "part {i}: malformed UDH");
        match Fragment::from_user_data("src", "dst", &ud, seg.sar) {
            Some(f) => {
                if let PushStatus::Complete(a) = r.push(0, f).status {
                    result = Some(a.decode());
                }
            }
            None => {
                assert_eq!(n, 1, "only a single message has no concatenation info");
                result = Some(ud.decode());
            }
        }
    }
    let d = result.expect("the message completes");
    assert_eq!(d.warnings, 0, "decoding warnings");
    match d.body {
        Body::Text(t) => t,
        Body::Binary(_) => panic!("text expected"),
    }
}

fn cost(encoding: Encoding, c: char) -> usize {
    match encoding {
        Encoding::Gsm7(t) => t.encode_char(c).map_or(0, |s| s.len()),
        Encoding::Ucs2 => c.len_utf16(),
        Encoding::Latin1 | Encoding::Binary => 1,
    }
}

fn check_parts(text: &str, opts: &EncodeOptions, reference: u16, e: &Encoded) {
    let plan = *e.plan();
    let n = e.segments().len();
    assert_eq!(plan.parts, n);
    assert!(n >= 1);
    assert_eq!(plan.units, e.segments().map(|s| s.units).sum::<usize>());
    assert_eq!(plan.split, opts.split);
    assert_eq!(plan.data_coding, plan.encoding.data_coding());
    match opts.encoding {
        EncodingRequest::Auto => {}
        EncodingRequest::Gsm7 => assert!(matches!(plan.encoding, Encoding::Gsm7(_))),
        EncodingRequest::Latin1 => assert_eq!(plan.encoding, Encoding::Latin1),
        EncodingRequest::Ucs2 => assert_eq!(plan.encoding, Encoding::Ucs2),
    }
    if let Encoding::Gsm7(t) = plan.encoding {
        assert!(t.locking().is_none_or(|l| opts.languages.contains(l)));
        assert!(t.single().is_none_or(|l| opts.languages.contains(l)));
    }
    assert!(!matches!(plan.encoding, Encoding::Binary));
    if plan.replaced > 0 {
        assert!(opts.smart && matches!(plan.encoding, Encoding::Gsm7(_)));
    } else {
        assert_eq!(plan.chars, text.chars().count());
    }
    if opts.split == SplitMethod::Payload {
        assert_eq!(n, 1);
        let seg = e.segment(0).expect("one part");
        assert!(seg.short_message().len() <= 65535);
    } else {
        assert!(n <= usize::from(opts.max_parts));
    }

    let mut decoded_parts = Vec::new();
    for (i, seg) in e.segments().enumerate() {
        if plan.split != SplitMethod::Payload {
            let air = seg.air_octets(plan.encoding);
            assert!(air <= 140, "part {i} takes {air} octets");
            assert!(
                seg.short_message().len() <= 254,
                "short_message over 254 octets"
            );
        }
        // Concatenation information: in the UDH, or in the SAR values.
        let udh = text::parse_udh(seg.short_message())
            .ok()
            .filter(|_| plan.udhi);
        assert_eq!(plan.udhi, !seg.udh().is_empty());
        let concat = udh.and_then(|u| u.concat);
        match (plan.split, n > 1) {
            (SplitMethod::Udh8 | SplitMethod::Udh16, true) => {
                let c = concat.expect("concatenation element");
                assert_eq!((c.total as usize, c.seq as usize), (n, i + 1));
                assert_eq!(c.wide, plan.split == SplitMethod::Udh16);
                let want = if c.wide { reference } else { reference & 0xFF };
                assert_eq!(c.reference, want);
                assert!(seg.sar.is_none());
            }
            (SplitMethod::Sar, true) => {
                assert!(concat.is_none());
                let s = seg.sar.expect("SAR values");
                assert_eq!(s.msg_ref_num, reference);
                assert_eq!(
                    (s.total_segments as usize, s.segment_seqnum as usize),
                    (n, i + 1)
                );
            }
            _ => assert!(concat.is_none() && seg.sar.is_none()),
        }
        let ud = user_data(e, i);
        match plan.encoding {
            Encoding::Gsm7(t) => {
                // Every ESC is followed by its code in the same part.
                let p = &ud.payload;
                let mut j = 0;
                while j < p.len() {
                    if p[j] == 0x1B {
                        assert!(j + 1 < p.len(), "part {i} ends inside an escape pair");
                        j += 1;
                    }
                    j += 1;
                }
                let mut s = String::new();
                assert_eq!(
                    t.decode_into(p, &mut s),
                    0,
                    "part {i} has unmappable septets"
                );
                decoded_parts.push(s);
            }
            Encoding::Ucs2 => {
                let p = &ud.payload;
                assert_eq!(p.len() % 2, 0);
                if p.len() >= 2 {
                    let last = u16::from_be_bytes([p[p.len() - 2], p[p.len() - 1]]);
                    assert!(
                        !(0xD800..0xDC00).contains(&last),
                        "part {i} ends inside a surrogate pair"
                    );
                }
                let mut s = String::new();
                assert_eq!(
                    text::decode_ucs2_into(p, &mut s),
                    0,
                    "part {i}: lone surrogate"
                );
                decoded_parts.push(s);
            }
            Encoding::Latin1 => {
                let mut s = String::new();
                text::decode_latin1_into(&ud.payload, &mut s);
                decoded_parts.push(s);
            }
            Encoding::Binary => unreachable!("checked above"),
        }
    }
    if plan.replaced == 0 && decoded_parts.len() > 1 {
        // A cut inside a grapheme cluster only when the cluster alone exceeds a part.
        assert_eq!(decoded_parts.concat(), text);
        let cap = e.segments().map(|s| s.units).max().unwrap_or(0);
        let mut offset = 0;
        for part in &decoded_parts[..decoded_parts.len() - 1] {
            offset += part.len();
            let cluster = text
                .grapheme_indices(true)
                .find(|(start, g)| *start < offset && offset < start + g.len());
            if let Some((_, g)) = cluster {
                let w: usize = g.chars().map(|c| cost(plan.encoding, c)).sum();
                assert!(
                    w > cap,
                    "cluster {g:?} of {w} units cut although parts hold {cap}"
                );
            }
        }
    }

    let expected = match plan.encoding {
        Encoding::Gsm7(t) if plan.replaced > 0 => text::smart::apply(text, t),
        _ => text.to_owned(),
    };
    assert_eq!(receive(e), expected, "round trip");
}

pub fn check(input: &[u8]) {
    let (header, body) = input.split_at(input.len().min(5));
    let (opts, reference) = options(header);
    let text = String::from_utf8_lossy(body);
    let result = text::encode(&text, &opts, reference);
    match &result {
        Err(e) => check_error(&text, &opts, reference, e),
        Ok(e) => {
            assert_eq!(e.reference(), reference);
            assert_eq!(
                text::plan(&text, &opts).as_ref(),
                Ok(e.plan()),
                "plan ≠ encode"
            );
            check_parts(&text, &opts, reference, e);
        }
    }
    assert_eq!(
        result,
        text::encode(&text, &opts, reference),
        "not deterministic"
    );
}
