//! Property tests: for arbitrary Unicode text, every split method and any allowed national
//! languages, encode → split → parse as MO → reassemble → decode gives the text back exactly
//! (after smart-encoding substitution); every part fits 140 octets with its UDH; no part ends
//! inside a GSM escape pair or a UTF-16 surrogate pair; grapheme clusters are only cut when they
//! cannot fit in one part. Also: decoding arbitrary bytes never panics.

use proptest::prelude::*;
use unicode_segmentation::UnicodeSegmentation;

use smppd::text::{
    self, Body, DecodeOptions, EncodeOptions, Encoded, Encoding, Fragment, Gsm7Tables, LanguageSet,
    NationalLanguage, PushStatus, Reassembler, ReassemblyConfig, SplitMethod, UserData,
};

/// Characters weighted towards what makes splitting hard: GSM base and escape characters,
/// national letters, Cyrillic, emoji with modifiers and ZWJ, flags, combining marks, CR/LF,
/// typographic look-alikes, and anything at all.
fn interesting_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::sample::select(
            "abcXYZ 019@$_£¥èÇΔΦΩ§¿äöñüà\n\r".chars().collect::<Vec<_>>()
        ),
        3 => prop::sample::select("€{}[]~^|\\\u{0C}".chars().collect::<Vec<_>>()),
        2 => prop::sample::select("şğıŞĞİçáíóúÁÍÓÚêôãõâÀÊ∞ªº`".chars().collect::<Vec<_>>()),
        2 => prop::sample::select(
            "\u{2019}\u{201C}\u{201D}\u{2014}\u{2026}\u{00A0}\u{200B}\t".chars().collect::<Vec<_>>()
        ),
        2 => prop::sample::select("жяЖ中".chars().collect::<Vec<_>>()),
        2 => prop::sample::select(
            "😀👍\u{1F3FD}\u{200D}👨👩\u{1F1F8}\u{1F1EA}\u{0301}\u{FE0F}".chars().collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ]
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(interesting_char(), 0..420).prop_map(|v| v.into_iter().collect())
}

fn split_strategy() -> impl Strategy<Value = SplitMethod> {
    prop::sample::select(vec![
        SplitMethod::Udh8,
        SplitMethod::Udh16,
        SplitMethod::Sar,
        SplitMethod::Payload,
    ])
}

fn languages_strategy() -> impl Strategy<Value = LanguageSet> {
    prop::sample::subsequence(NationalLanguage::ALL.to_vec(), 0..=3)
        .prop_map(|v| v.into_iter().collect())
}

/// What the recipient should see.
fn expected(text: &str, e: &Encoded) -> String {
    match e.plan().encoding {
        Encoding::Gsm7(t) if e.plan().replaced > 0 => text::smart::apply(text, t),
        _ => text.to_owned(),
    }
}

/// Sends every part through the MO path: parse user data, reassemble, decode.
fn receive(e: &Encoded) -> String {
    let udhi = e.plan().udhi;
    let dc = e.plan().data_coding;
    let opts = DecodeOptions::default();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut result = None;
    let n = e.segments().len();
    // Deliver in reverse order to exercise out-of-order reassembly.
    for i in (0..n).rev() {
        let seg = e.segment(i).unwrap();
        let ud = UserData::parse(dc, udhi, seg.short_message(), &opts);
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
    let d = result.expect("message completes");
    assert_eq!(d.warnings, 0);
    match d.body {
        Body::Text(t) => t,
        Body::Binary(_) => panic!("text expected"),
    }
}

/// Cost of one character in the plan's encoding (for the grapheme rule).
fn cost(encoding: Encoding, c: char) -> usize {
    match encoding {
        Encoding::Gsm7(t) => t.encode_char(c).map_or(0, |s| s.len()),
        Encoding::Ucs2 => c.len_utf16(),
        Encoding::Latin1 | Encoding::Binary => 1,
    }
}

fn check_parts(text: &str, e: &Encoded) {
    let plan = *e.plan();
    let mut decoded_parts = Vec::new();
    for seg in e.segments() {
        if plan.split != SplitMethod::Payload {
            assert!(
                seg.air_octets(plan.encoding) <= 140,
                "part of {} octets",
                seg.air_octets(plan.encoding)
            );
        }
        let p = seg.payload();
        match plan.encoding {
            Encoding::Gsm7(t) => {
                // Walk the septets: every ESC must be followed by its code in the same part.
                let mut i = 0;
                while i < p.len() {
                    if p[i] == 0x1B {
                        assert!(i + 1 < p.len(), "part ends inside an escape pair");
                        i += 1;
                    }
                    i += 1;
                }
                let mut s = String::new();
                assert_eq!(t.decode_into(p, &mut s), 0);
                decoded_parts.push(s);
            }
            Encoding::Ucs2 => {
                assert_eq!(p.len() % 2, 0);
                let last = u16::from_be_bytes([p[p.len() - 2], p[p.len() - 1]]);
                assert!(
                    !(0xD800..0xDC00).contains(&last),
                    "part ends in a surrogate pair"
                );
                let mut s = String::new();
                assert_eq!(text::decode_ucs2_into(p, &mut s), 0);
                decoded_parts.push(s);
            }
            other => panic!("unexpected encoding {other:?}"),
        }
    }
    if plan.replaced > 0 || decoded_parts.len() < 2 {
        return;
    }
    // A cut inside a grapheme cluster is only allowed when the cluster alone exceeds a part.
    let cap = e.segments().map(|s| s.units).max().unwrap_or(0);
    let mut offset = 0;
    for part in &decoded_parts[..decoded_parts.len() - 1] {
        offset += part.len();
        let cluster = text
            .grapheme_indices(true)
            .find(|(start, g)| *start < offset && offset < start + g.len());
        if let Some((_, g)) = cluster {
            let w: usize = g.chars().map(|c| cost(plan.encoding, c)).sum();
            assert!(w > cap, "cluster {g:?} of {w} units cut although it fits");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn split_then_reassemble_is_identity(
        text in text_strategy(),
        split in split_strategy(),
        languages in languages_strategy(),
        smart in any::<bool>(),
    ) {
        let opts = EncodeOptions { languages, smart, split, max_parts: 255, ..EncodeOptions::default() };
        let e = text::encode(&text, &opts, 0x1234).expect("auto always encodes");
        prop_assert_eq!(e.plan().parts, e.segments().len());
        prop_assert_eq!(e.plan().units, e.segments().map(|s| s.units).sum::<usize>());
        prop_assert_eq!(text::plan(&text, &opts).unwrap(), *e.plan());
        if e.plan().replaced == 0 {
            prop_assert_eq!(e.plan().chars, text.chars().count());
        }
        check_parts(&text, &e);
        prop_assert_eq!(receive(&e), expected(&text, &e));
    }

    #[test]
    fn packed_parts_unpack_to_the_same_septets(
        text in text_strategy(),
        split in prop::sample::select(vec![SplitMethod::Udh8, SplitMethod::Udh16]),
    ) {
        let unpacked = EncodeOptions { split, max_parts: 255, ..EncodeOptions::default() };
        let packed = EncodeOptions { packed: true, ..unpacked };
        let a = text::encode(&text, &unpacked, 1).unwrap();
        let b = text::encode(&text, &packed, 1).unwrap();
        prop_assert_eq!(a.plan().parts, b.plan().parts);
        for (sa, sb) in a.segments().zip(b.segments()) {
            prop_assert_eq!(sa.udh(), sb.udh());
            if matches!(a.plan().encoding, Encoding::Gsm7(_)) {
                prop_assert!(sb.short_message().len() <= 140);
                let mut septets = Vec::new();
                text::gsm::unpack_septets(
                    sb.payload(),
                    text::gsm::fill_bits(sb.udh().len()),
                    Some(sb.units),
                    &mut septets,
                );
                prop_assert_eq!(&septets[..], sa.payload());
            } else {
                prop_assert_eq!(sa.payload(), sb.payload());
            }
        }
    }

    #[test]
    fn gsm_text_round_trips_through_every_table_pair(
        text in text_strategy(),
        locking in prop::sample::select(vec![None, Some(NationalLanguage::Turkish), Some(NationalLanguage::Portuguese)]),
        single in prop::sample::select(vec![None, Some(NationalLanguage::Turkish), Some(NationalLanguage::Spanish), Some(NationalLanguage::Portuguese)]),
    ) {
        let tables = Gsm7Tables::new(locking, single).unwrap();
        let keep: String = text.chars().filter(|&c| tables.encode_char(c).is_some()).collect();
        let mut septets = Vec::new();
        for c in keep.chars() {
            match tables.encode_char(c).unwrap() {
                text::Septets::One(s) => septets.push(s),
                text::Septets::Escaped(s) => septets.extend([0x1B, s]),
            }
        }
        let mut back = String::new();
        prop_assert_eq!(tables.decode_into(&septets, &mut back), 0);
        prop_assert_eq!(back, keep);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        dc in any::<u8>(),
        udhi in any::<bool>(),
        packed in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let ud = UserData::parse(dc, udhi, &bytes, &DecodeOptions { packed, ia5_as_gsm: false });
        let d = ud.decode();
        if let Body::Text(t) = d.body {
            prop_assert!(t.chars().count() <= bytes.len() * 2 + 1);
        }
    }

    #[test]
    fn reassembler_stays_within_its_bounds(
        pushes in prop::collection::vec(
            (0u8..4, 0u16..6, 0u8..5, 0u8..6, 0usize..400, 0u64..500),
            1..200,
        ),
    ) {
        let cfg = ReassemblyConfig { timeout_ms: 2_000, max_sets: 5, max_bytes: 3_000 };
        let mut r = Reassembler::new(cfg);
        let sources = ["a", "b", "c", "d"];
        let payload = vec![0x41u8; 400];
        let mut now = 0;
        for (src, reference, total, seq, len, dt) in pushes {
            now += dt;
            let frag = Fragment {
                source: sources[usize::from(src)],
                destination: "x",
                reference,
                total,
                seq,
                charset: text::Charset::Gsm7,
                tables: Gsm7Tables::DEFAULT,
                payload: &payload[..len],
            };
            let res = r.push(now, frag);
            if let PushStatus::Complete(a) = &res.status {
                prop_assert!(a.payload.iter().all(|&b| b == 0x41));
            }
            for inc in &res.incomplete {
                prop_assert!(inc.parts.len() < usize::from(inc.total));
            }
            prop_assert!(r.pending_sets() <= 5);
            prop_assert!(r.pending_bytes() <= 3_000);
        }
        let left = r.expire(u64::MAX);
        prop_assert_eq!(r.pending_sets(), 0);
        prop_assert_eq!(r.pending_bytes(), 0);
        prop_assert!(left.len() <= 5);
    }
}
