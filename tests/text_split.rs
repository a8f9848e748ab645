//! Encoding choice and splitting through the public API: the boundary counts of the issue, escape
//! pairs, surrogate pairs and grapheme clusters placed exactly at part boundaries, every split
//! method, smart encoding, errors, and the `text_split` / `gsm7_encode` vectors.

use smppd::text::{
    self, EncodeOptions, Encoded, Encoding, EncodingRequest, Gsm7Tables, LanguageSet,
    NationalLanguage, ReferenceAllocator, Septets, SplitMethod, TextError,
};

fn opts(split: SplitMethod) -> EncodeOptions {
    EncodeOptions {
        split,
        ..EncodeOptions::default()
    }
}

fn enc(text: &str, o: &EncodeOptions) -> Encoded {
    text::encode(text, o, 0xA5).expect("encodable")
}

fn units(e: &Encoded) -> Vec<usize> {
    e.segments().map(|s| s.units).collect()
}

fn joined_payload(e: &Encoded) -> Vec<u8> {
    e.segments().flat_map(|s| s.payload().to_vec()).collect()
}

/// Decodes the joined payloads with the plan's encoding (unpacked GSM or UCS-2).
fn decode(e: &Encoded) -> String {
    let mut out = String::new();
    let payload = joined_payload(e);
    match e.plan().encoding {
        Encoding::Gsm7(t) => {
            assert_eq!(t.decode_into(&payload, &mut out), 0);
        }
        Encoding::Ucs2 => {
            assert_eq!(text::decode_ucs2_into(&payload, &mut out), 0);
        }
        Encoding::Latin1 => text::decode_latin1_into(&payload, &mut out),
        Encoding::Binary => panic!("not text"),
    }
    out
}

/// Plain parts: full parts of `cap` and the remainder.
fn expected_plain(n: usize, single: usize, cap: usize) -> Vec<usize> {
    if n <= single {
        return vec![n];
    }
    let mut v = vec![cap; n / cap];
    if !n.is_multiple_of(cap) {
        v.push(n % cap);
    }
    v
}

#[test]
fn gsm_plain_boundaries_udh8_and_udh16() {
    for n in [152, 153, 154, 159, 160, 161, 305, 306, 307, 458, 459, 460] {
        let text = "a".repeat(n);
        for (split, cap) in [(SplitMethod::Udh8, 153), (SplitMethod::Udh16, 152)] {
            let e = enc(&text, &opts(split));
            assert_eq!(e.plan().encoding, Encoding::Gsm7(Gsm7Tables::DEFAULT));
            assert_eq!(e.plan().units, n);
            assert_eq!(
                units(&e),
                expected_plain(n, 160, cap),
                "{n} septets, {split}"
            );
            assert_eq!(e.plan().parts, units(&e).len());
            assert_eq!(e.plan().udhi, n > 160);
            assert_eq!(e.plan().esm_class_udhi(), if n > 160 { 0x40 } else { 0 });
            assert_eq!(decode(&e), text);
        }
    }
}

#[test]
fn gsm_udh_bytes_and_reference() {
    let e = enc(&"b".repeat(307), &opts(SplitMethod::Udh8));
    let udhs: Vec<Vec<u8>> = e.segments().map(|s| s.udh().to_vec()).collect();
    assert_eq!(
        udhs,
        vec![
            vec![0x05, 0x00, 0x03, 0xA5, 3, 1],
            vec![0x05, 0x00, 0x03, 0xA5, 3, 2],
            vec![0x05, 0x00, 0x03, 0xA5, 3, 3],
        ]
    );
    let e = text::encode(&"b".repeat(161), &opts(SplitMethod::Udh16), 0x1234).unwrap();
    assert_eq!(
        e.segment(1).unwrap().udh(),
        &[0x06, 0x08, 0x04, 0x12, 0x34, 2, 2]
    );
    let seg = e.segment(0).unwrap();
    assert_eq!(seg.short_message()[..7], seg.udh()[..]);
    assert_eq!(seg.short_message().len(), 7 + 152);
}

#[test]
fn escape_pair_never_split_at_any_boundary() {
    // ESC of € would be the last septet of part 1, 2 and 3 (positions 153, 306, 459).
    for before in [152usize, 152 + 153, 152 + 306] {
        let text = format!("{}€{}", "c".repeat(before), "d".repeat(10));
        let e = enc(&text, &opts(SplitMethod::Udh8));
        let parts = units(&e);
        let cut = before / 153; // index of the part that would have ended with ESC
        assert_eq!(parts[cut], 152, "{before}: {parts:?}");
        for s in e.segments() {
            assert_ne!(
                s.payload().last(),
                Some(&0x1B),
                "part ends inside an escape pair"
            );
        }
        assert_eq!(e.segment(cut + 1).unwrap().payload()[..2], [0x1B, 0x65]);
        assert_eq!(decode(&e), text);
    }
    // With udh16 (152 per part) the pair moves when ESC would be septet 152.
    let text = format!("{}€x", "c".repeat(151));
    let e = text::encode(
        &format!("{text}{}", "y".repeat(20)),
        &opts(SplitMethod::Udh16),
        1,
    )
    .unwrap();
    assert_eq!(units(&e)[0], 151);
}

#[test]
fn escapes_at_the_single_message_limit() {
    // 158 + € = 160 septets: still one message.
    let e = enc(&format!("{}€", "a".repeat(158)), &opts(SplitMethod::Udh8));
    assert_eq!((e.plan().parts, e.plan().units), (1, 160));
    // 159 + € = 161 septets: two parts.
    let e = enc(&format!("{}€", "a".repeat(159)), &opts(SplitMethod::Udh8));
    assert_eq!(units(&e), vec![153, 8]);
    // 80 × € = 160 septets: one message; 81 × € = 162: 76 pairs fit in 153 (152 septets).
    assert_eq!(
        enc(&"€".repeat(80), &opts(SplitMethod::Udh8)).plan().parts,
        1
    );
    let e = enc(&"€".repeat(81), &opts(SplitMethod::Udh8));
    assert_eq!(units(&e), vec![152, 10]);
}

#[test]
fn ucs2_plain_boundaries() {
    for n in [66, 67, 68, 69, 70, 71, 133, 134, 135] {
        let text = "ж".repeat(n);
        for (split, cap) in [(SplitMethod::Udh8, 67), (SplitMethod::Udh16, 66)] {
            let e = enc(&text, &opts(split));
            assert_eq!(e.plan().encoding, Encoding::Ucs2);
            assert_eq!(e.plan().data_coding, 0x08);
            assert_eq!(units(&e), expected_plain(n, 70, cap), "{n} units, {split}");
            assert_eq!(decode(&e), text);
        }
    }
}

#[test]
fn surrogate_pair_never_split_at_any_boundary() {
    // The emoji's high surrogate would be code unit 67 of part 1, 2 (134) or 3 (201).
    for before in [66usize, 66 + 67, 66 + 134] {
        let text = format!("{}😀{}", "я".repeat(before), "я".repeat(5));
        let e = enc(&text, &opts(SplitMethod::Udh8));
        let cut = before / 67;
        assert_eq!(units(&e)[cut], 66, "{before}: {:?}", units(&e));
        for s in e.segments() {
            let p = s.payload();
            let last = u16::from_be_bytes([p[p.len() - 2], p[p.len() - 1]]);
            assert!(
                !(0xD800..0xDC00).contains(&last),
                "part ends with a high surrogate"
            );
        }
        assert_eq!(decode(&e), text);
    }
    // 68 + emoji = 70 code units: one message; 69 + emoji = 71: two parts.
    assert_eq!(
        enc(&format!("{}😀", "я".repeat(68)), &opts(SplitMethod::Udh8))
            .plan()
            .parts,
        1
    );
    let e = enc(&format!("{}😀", "я".repeat(69)), &opts(SplitMethod::Udh8));
    assert_eq!(units(&e), vec![67, 4]);
}

#[test]
fn grapheme_clusters_stay_in_one_part() {
    let family = "👨\u{200D}👩\u{200D}👧\u{200D}👦"; // 11 code units
    let flag = "🇸🇪"; // 4
    let thumbs = "👍🏽"; // 4
    for cluster in [family, flag, thumbs] {
        let len = cluster.encode_utf16().count();
        // Start the cluster one code unit before the end of part 1.
        let text = format!("{}{cluster}{}", "я".repeat(66), "я".repeat(10));
        let e = enc(&text, &opts(SplitMethod::Udh8));
        assert_eq!(units(&e)[0], 66, "{cluster}");
        assert_eq!(e.segment(1).unwrap().units, len + 10);
        assert_eq!(decode(&e), text);
    }
    // CR LF is one grapheme: it is not split in GSM either.
    let text = format!("{}\r\n{}", "a".repeat(152), "b".repeat(20));
    let e = enc(&text, &opts(SplitMethod::Udh8));
    assert_eq!(units(&e), vec![152, 22]);
    // A cluster longer than a part is split between characters, never inside one.
    let zalgo = format!("e{}", "\u{0301}".repeat(200));
    let e = enc(&zalgo, &opts(SplitMethod::Udh8));
    assert_eq!(units(&e), vec![67, 67, 67]);
    assert_eq!(decode(&e), zalgo);
}

#[test]
fn sar_and_payload_methods() {
    let text = "b".repeat(161);
    let e = text::encode(&text, &opts(SplitMethod::Sar), 0x0102).unwrap();
    assert!(!e.plan().udhi);
    let sars: Vec<_> = e
        .segments()
        .map(|s| {
            assert!(s.udh().is_empty());
            let sar = s.sar.expect("SAR values");
            (
                sar.msg_ref_num,
                sar.total_segments,
                sar.segment_seqnum,
                s.units,
            )
        })
        .collect();
    assert_eq!(sars, vec![(0x0102, 2, 1, 153), (0x0102, 2, 2, 8)]);
    // On the air the SMSC's 6-octet UDH fills part 1 to exactly 140 octets.
    assert_eq!(e.segment(0).unwrap().air_octets(e.plan().encoding), 140);
    assert_eq!(e.plan().esm_class_udhi(), 0);
    // A single SAR message carries no SAR TLVs.
    let e = text::encode("short", &opts(SplitMethod::Sar), 7).unwrap();
    assert_eq!(e.segment(0).unwrap().sar, None);

    let long = "x".repeat(2000);
    let e = enc(&long, &opts(SplitMethod::Payload));
    assert_eq!((e.plan().parts, e.segments().len()), (1, 1));
    let seg = e.segment(0).unwrap();
    assert_eq!(
        (seg.udh(), seg.payload().len(), seg.sar),
        (&[][..], 2000, None)
    );
    assert_eq!(decode(&e), long);
    let err = text::encode(&"x".repeat(70_000), &opts(SplitMethod::Payload), 0).unwrap_err();
    assert_eq!(err, TextError::PayloadTooLong { octets: 70_000 });

    // National shift with SAR: the UDH carries only the shift element, sized as with udh8.
    let o = EncodeOptions {
        languages: "tr".parse().unwrap(),
        split: SplitMethod::Sar,
        ..EncodeOptions::default()
    };
    let e = text::encode(&"ş".repeat(300), &o, 3).unwrap();
    assert_eq!(e.segment(0).unwrap().udh(), &[0x03, 0x25, 0x01, 0x01]);
    assert!(e.plan().udhi);
    assert_eq!(units(&e), vec![149, 149, 2]);
}

#[test]
fn national_shift_capacities_follow_the_fact_sheet() {
    let tr = LanguageSet::from_iter([NationalLanguage::Turkish]);
    let o = |split| EncodeOptions {
        languages: tr,
        split,
        ..EncodeOptions::default()
    };
    // One shift IE: 155 single, 149 (concat8) and 148 (concat16) per part.
    let one = "ş".repeat(155);
    let e = enc(&one, &o(SplitMethod::Udh8));
    assert_eq!((e.plan().parts, e.segment(0).unwrap().udh().len()), (1, 4));
    let e = enc(&"ş".repeat(156), &o(SplitMethod::Udh8));
    assert_eq!(units(&e), vec![149, 7]);
    assert_eq!(
        e.segment(0).unwrap().udh(),
        &[8, 0, 3, 0xA5, 2, 1, 0x25, 1, 1]
    );
    let e = enc(&"ş".repeat(156), &o(SplitMethod::Udh16));
    assert_eq!(units(&e), vec![148, 8]);
    // Both shift IEs (Turkish locking + Spanish single, for Á): 152 single, 146 per part.
    let o2 = EncodeOptions {
        languages: "tr,es".parse().unwrap(),
        ..EncodeOptions::default()
    };
    let fits = format!("{}Á", "ı".repeat(150));
    let e = enc(&fits, &o2);
    assert_eq!(e.plan().encoding.to_string(), "gsm7+tr+es");
    assert_eq!((e.plan().parts, e.plan().units), (1, 152));
    let e = enc(&format!("{fits}ı"), &o2);
    assert_eq!(units(&e), vec![146, 7]);
    assert_eq!(e.segment(0).unwrap().udh().len(), 12);
    for s in e.segments() {
        assert!(s.air_octets(e.plan().encoding) <= 140);
    }
}

#[test]
fn choice_prefers_fewest_parts() {
    let tr = LanguageSet::from_iter([NationalLanguage::Turkish]);
    let auto = |languages| EncodeOptions {
        languages,
        ..EncodeOptions::default()
    };
    // Plain GSM wins when it works with one septet per character.
    assert_eq!(
        enc("hello", &auto(tr)).plan().encoding,
        Encoding::Gsm7(Gsm7Tables::DEFAULT)
    );
    // 100 € cost 200 septets (2 parts) in the default alphabet, 100 with the Turkish locking
    // shift (1 part): the national table is cheaper.
    let e = enc(&"€".repeat(100), &auto(tr));
    assert_eq!(e.plan().encoding.to_string(), "gsm7+tr");
    assert_eq!((e.plan().parts, e.plan().units), (1, 100));
    assert_eq!(decode(&e), "€".repeat(100));
    // Without the language allowed: default GSM, 2 parts.
    assert_eq!(
        enc(&"€".repeat(100), &auto(LanguageSet::EMPTY))
            .plan()
            .parts,
        2
    );
    // Turkish letters: UCS-2 unless Turkish is allowed.
    let t = "Şişli'de ağaç ığık";
    assert_eq!(
        enc(t, &auto(LanguageSet::EMPTY)).plan().encoding,
        Encoding::Ucs2
    );
    assert_eq!(
        enc(t, &auto("es,pt".parse().unwrap())).plan().encoding,
        Encoding::Ucs2
    );
    let e = enc(t, &auto(tr));
    assert_eq!(e.plan().encoding.to_string(), "gsm7+tr");
    assert_eq!(e.plan().data_coding, 0);
    assert_eq!(decode(&e), t);
    // Spanish and Portuguese.
    let es = enc("¿Qué tal, señor Álvaro?", &auto("es".parse().unwrap()));
    assert_eq!(es.plan().encoding.to_string(), "gsm7+es");
    assert_eq!(decode(&es), "¿Qué tal, señor Álvaro?");
    let pt = enc("Informação à sua mãe", &auto("pt".parse().unwrap()));
    assert_eq!(pt.plan().encoding.to_string(), "gsm7+pt");
    assert_eq!(decode(&pt), "Informação à sua mãe");
    // Mixed: Turkish locking shift with the Spanish single shift.
    let mixed = "ığ Á";
    let e = enc(mixed, &auto("tr,es".parse().unwrap()));
    assert_eq!(e.plan().encoding.to_string(), "gsm7+tr+es");
    assert_eq!(e.segment(0).unwrap().udh(), &[6, 0x24, 1, 2, 0x25, 1, 1]);
    assert_eq!(decode(&e), mixed);
}

#[test]
fn forced_encodings_and_errors() {
    let forced = |encoding| EncodeOptions {
        encoding,
        ..EncodeOptions::default()
    };
    let err = text::encode("abc жж", &forced(EncodingRequest::Gsm7), 0).unwrap_err();
    assert_eq!(
        err,
        TextError::Unencodable {
            ch: 'ж',
            position: 4,
            encoding: EncodingRequest::Gsm7
        }
    );
    assert_eq!(err.code(), "unencodable");
    assert!(err.to_string().contains("U+0436") && err.to_string().contains("position 4"));
    // Position counts characters, not bytes.
    let err = text::encode("ééé€", &forced(EncodingRequest::Latin1), 0).unwrap_err();
    assert!(matches!(
        err,
        TextError::Unencodable {
            ch: '€',
            position: 3,
            ..
        }
    ));
    let e = enc("café ÿ", &forced(EncodingRequest::Latin1));
    assert_eq!(e.plan().data_coding, 0x03);
    assert_eq!(e.segment(0).unwrap().payload(), b"caf\xe9 \xff");
    let e = enc("hi", &forced(EncodingRequest::Ucs2));
    assert_eq!(e.segment(0).unwrap().payload(), &[0, b'h', 0, b'i']);
    // Latin-1 uses the 8-bit capacities: 140 single, 134 per part.
    let e = enc(&"é".repeat(141), &forced(EncodingRequest::Latin1));
    assert_eq!(units(&e), vec![134, 7]);
    // Forced GSM-7 may use an allowed national table.
    let o = EncodeOptions {
        languages: "tr".parse().unwrap(),
        ..forced(EncodingRequest::Gsm7)
    };
    assert_eq!(enc("ağaç", &o).plan().encoding.to_string(), "gsm7+tr");
    // Forced GSM-7 reports the character no allowed table can encode.
    let err = text::encode("ağaç ж", &o, 0).unwrap_err();
    assert!(matches!(
        err,
        TextError::Unencodable {
            ch: 'ж',
            position: 5,
            ..
        }
    ));
}

#[test]
fn too_long_is_rejected_with_the_needed_parts() {
    let o = EncodeOptions::default();
    assert_eq!(enc(&"a".repeat(1530), &o).plan().parts, 10);
    let err = text::encode(&"a".repeat(1531), &o, 0).unwrap_err();
    assert_eq!(
        err,
        TextError::TooLong {
            needed: 11,
            max: 10
        }
    );
    assert_eq!(err.code(), "too_long");
    assert_eq!(text::plan(&"a".repeat(1531), &o).unwrap_err(), err);
    let max = EncodeOptions {
        max_parts: 255,
        ..o
    };
    assert_eq!(enc(&"a".repeat(153 * 255), &max).plan().parts, 255);
    let err = text::encode(&"a".repeat(153 * 255 + 1), &max, 0).unwrap_err();
    assert_eq!(
        err,
        TextError::TooLong {
            needed: 256,
            max: 255
        }
    );
    let zero = EncodeOptions { max_parts: 0, ..o };
    assert_eq!(
        text::encode("a", &zero, 0).unwrap_err(),
        TextError::ZeroMaxParts
    );
}

#[test]
fn smart_encoding_keeps_gsm() {
    let smart = EncodeOptions {
        smart: true,
        ..EncodeOptions::default()
    };
    let t = "It\u{2019}s \u{201C}fine\u{201D} \u{2014} ok\u{2026}\u{00A0}!";
    let e = enc(t, &smart);
    assert_eq!(e.plan().encoding, Encoding::Gsm7(Gsm7Tables::DEFAULT));
    assert_eq!(e.plan().replaced, 6);
    assert_eq!(decode(&e), "It's \"fine\" - ok... !");
    assert_eq!(decode(&e), text::smart::apply(t, Gsm7Tables::DEFAULT));
    // Without smart encoding one curly quote means UCS-2.
    let e = enc(t, &EncodeOptions::default());
    assert_eq!((e.plan().encoding, e.plan().replaced), (Encoding::Ucs2, 0));
    // Smart encoding does not help Cyrillic: UCS-2 with the exact text, nothing replaced.
    let e = enc("Привет \u{201C}мир\u{201D}", &smart);
    assert_eq!((e.plan().encoding, e.plan().replaced), (Encoding::Ucs2, 0));
    assert_eq!(decode(&e), "Привет \u{201C}мир\u{201D}");
    // Text that is already GSM is untouched.
    assert_eq!(enc("plain", &smart).plan().replaced, 0);
}

#[test]
fn smart_replacements_are_encodable_with_every_table_pair() {
    let mut pairs = vec![Gsm7Tables::DEFAULT];
    for l in [
        None,
        Some(NationalLanguage::Turkish),
        Some(NationalLanguage::Portuguese),
    ] {
        for s in [
            None,
            Some(NationalLanguage::Turkish),
            Some(NationalLanguage::Spanish),
            Some(NationalLanguage::Portuguese),
        ] {
            pairs.extend(Gsm7Tables::new(l, s));
        }
    }
    let mut checked = 0;
    for cp in 0..0x1_0000u32 {
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        let Some(r) = text::smart::replacement(c) else {
            continue;
        };
        checked += 1;
        for t in &pairs {
            assert!(
                r.chars().all(|rc| t.encode_char(rc).is_some()),
                "replacement {r:?} of {c:?} with {t:?}"
            );
        }
    }
    assert!(checked > 30);
}

#[test]
fn packed_gsm() {
    let packed = EncodeOptions {
        packed: true,
        ..EncodeOptions::default()
    };
    let e = enc("hellohello", &packed);
    assert!(e.plan().packed);
    assert_eq!(
        hex::encode(e.segment(0).unwrap().payload()),
        "e8329bfd4697d9ec37"
    );
    assert_eq!(e.segment(0).unwrap().units, 10);
    // Seven septets leave 7 spare bits: they carry CR, not '@' (TS 23.038 §6.1.2.3.1).
    let e = enc("1234567", &packed);
    assert_eq!(e.segment(0).unwrap().payload().len(), 7);
    assert_eq!(e.segment(0).unwrap().payload()[6] >> 1, 0x0D);
    // Split: every part fits 140 octets on the wire with its UDH.
    let e = enc(&"b".repeat(400), &packed);
    assert_eq!(units(&e), vec![153, 153, 94]);
    for s in e.segments() {
        assert!(s.short_message().len() <= 140);
        let mut septets = Vec::new();
        text::gsm::unpack_septets(
            s.payload(),
            text::gsm::fill_bits(6),
            Some(s.units),
            &mut septets,
        );
        assert!(septets.iter().all(|&b| b == b'b'));
        assert_eq!(septets.len(), s.units);
    }
    assert_eq!(e.segment(0).unwrap().short_message().len(), 140);
}

#[test]
fn binary_split() {
    let data: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
    let e = text::encode_binary(&data, &opts(SplitMethod::Udh8), 9).unwrap();
    assert_eq!(e.plan().data_coding, 0x04);
    assert_eq!(units(&e), vec![134, 134, 32]);
    assert_eq!(e.segment(2).unwrap().udh(), &[5, 0, 3, 9, 3, 3]);
    assert_eq!(joined_payload(&e), data);
    let e = text::encode_binary(&data[..140], &opts(SplitMethod::Udh16), 9).unwrap();
    assert_eq!((e.plan().parts, e.plan().udhi), (1, false));
    let e = text::encode_binary(&data[..141], &opts(SplitMethod::Udh16), 9).unwrap();
    assert_eq!(units(&e), vec![133, 8]);
    let e = text::encode_binary(&data, &opts(SplitMethod::Sar), 9).unwrap();
    assert_eq!(units(&e), vec![134, 134, 32]);
    assert!(!e.plan().udhi);
    for s in e.segments() {
        assert!(s.udh().is_empty());
        assert!(s.air_octets(Encoding::Binary) <= 140);
    }
    assert_eq!(e.segment(0).unwrap().air_octets(Encoding::Binary), 140);
    assert_eq!(e.segment(2).unwrap().sar.map(|s| s.segment_seqnum), Some(3));
    let err = text::encode_binary(&[0; 1341], &opts(SplitMethod::Udh8), 0).unwrap_err();
    assert_eq!(
        err,
        TextError::TooLong {
            needed: 11,
            max: 10
        }
    );
}

#[test]
fn reference_allocator_rotates_per_destination() {
    let mut refs = ReferenceAllocator::default();
    let a: Vec<u16> = (0..256).map(|_| refs.next("+46701234567")).collect();
    let mut low: Vec<u8> = a.iter().map(|&r| r as u8).collect();
    low.sort_unstable();
    low.dedup();
    assert_eq!(
        low.len(),
        256,
        "256 messages in a row never reuse an 8-bit reference"
    );
    // Another destination has its own counter: interleaving does not disturb the rotation.
    let b0 = refs.next("+4915112345678");
    let a_next = refs.next("+46701234567");
    assert_eq!(a_next, a[255].wrapping_add(1));
    assert_eq!(refs.next("+4915112345678"), b0.wrapping_add(1));
    // Deterministic.
    let mut again = ReferenceAllocator::default();
    assert_eq!(again.next("+46701234567"), a[0]);
    // Bounded: a single slot shared by everyone still rotates.
    let mut tiny = ReferenceAllocator::new(0);
    let first = tiny.next("a");
    for i in 1..300u16 {
        assert_eq!(tiny.next("a"), first.wrapping_add(i));
    }
}

#[test]
fn option_names_parse_and_serialize() {
    assert_eq!("udh16".parse::<SplitMethod>().unwrap(), SplitMethod::Udh16);
    assert!("udh32".parse::<SplitMethod>().is_err());
    assert_eq!(
        "pt".parse::<NationalLanguage>().unwrap(),
        NationalLanguage::Portuguese
    );
    let set: LanguageSet = "tr, pt".parse().unwrap();
    assert!(set.contains(NationalLanguage::Turkish) && !set.contains(NationalLanguage::Spanish));
    assert_eq!(serde_json::to_string(&set).unwrap(), r#"["tr","pt"]"#);
    let back: LanguageSet = serde_json::from_str(r#"["es"]"#).unwrap();
    assert_eq!(
        back.iter().collect::<Vec<_>>(),
        vec![NationalLanguage::Spanish]
    );
    assert_eq!(
        serde_json::to_string(&SplitMethod::Payload).unwrap(),
        r#""payload""#
    );
    #[derive(serde::Deserialize)]
    struct Smsc {
        split: SplitMethod,
        shift: LanguageSet,
    }
    let c: Smsc = toml::from_str("split = \"sar\"\nshift = [\"tr\", \"es\"]").unwrap();
    assert_eq!(c.split, SplitMethod::Sar);
    assert_eq!(c.shift, "es,tr".parse().unwrap());
    assert!(serde_json::from_str::<NationalLanguage>(r#""de""#).is_err());
    assert_eq!(
        "ucs2".parse::<EncodingRequest>().unwrap(),
        EncodingRequest::Ucs2
    );
}

// ---- vectors ---------------------------------------------------------------------------

fn vectors(kind: &str) -> Vec<serde_json::Value> {
    include_str!("data/text_vectors.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("vector line"))
        .filter(|v| v["kind"] == kind)
        .collect()
}

#[test]
fn text_split_vectors() {
    let all = vectors("text_split");
    assert_eq!(all.len(), 8);
    for v in all {
        let name = v["name"].as_str().unwrap();
        let f = &v["fields"];
        let input = f["input_text"].as_str().unwrap();
        let udh_hex: Vec<String> = f["udh_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect();
        let reference = udh_hex
            .first()
            .map_or(0, |h| u16::from(hex::decode(h).unwrap()[3]));
        let e = text::encode(input, &opts(SplitMethod::Udh8), reference).unwrap();
        assert_eq!(
            u64::from(e.plan().data_coding),
            f["data_coding"].as_u64().unwrap(),
            "{name}"
        );
        let esm = if e.plan().udhi { 0x40 } else { 0 };
        assert_eq!(esm, f["esm_class"].as_u64().unwrap(), "{name}");
        // The unsplit encoding is right in every vector; only the cut points deviate.
        assert_eq!(
            hex::encode(joined_payload(&e)),
            v["hex"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(decode(&e), input, "{name}");
        let ours: Vec<String> = e
            .segments()
            .map(|s| hex::encode(s.short_message()))
            .collect();
        match v.get("known_deviation") {
            None => {
                let theirs: Vec<&str> = f["parts_hex"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_str().unwrap())
                    .collect();
                assert_eq!(ours, theirs, "{name}");
            }
            Some(_) => {
                assert_eq!(e.plan().parts, 2, "{name}");
                let first = e.segment(0).unwrap();
                let second = e.segment(1).unwrap();
                match e.plan().encoding {
                    Encoding::Gsm7(_) => {
                        // The pair moves whole: 152 septets, part 2 starts with ESC €.
                        assert_eq!(first.units, 152, "{name}");
                        assert_ne!(first.payload().last(), Some(&0x1B));
                        assert_eq!(second.payload()[..2], [0x1B, 0x65]);
                    }
                    _ => {
                        assert_eq!(first.units, 66, "{name}");
                        assert_eq!(second.payload()[..4], [0xD8, 0x3D, 0xDE, 0x00]);
                    }
                }
                assert_eq!(first.udh(), hex::decode(&udh_hex[0]).unwrap(), "{name}");
                assert_eq!(second.udh(), hex::decode(&udh_hex[1]).unwrap(), "{name}");
            }
        }
    }
}

#[test]
fn turkish_vector_stays_gsm_with_the_turkish_table() {
    let v = vectors("text_split")
        .into_iter()
        .find(|v| v["name"] == "split_turkish_falls_back_to_ucs2")
        .unwrap();
    let input = v["fields"]["input_text"].as_str().unwrap();
    let o = EncodeOptions {
        languages: "tr".parse().unwrap(),
        ..EncodeOptions::default()
    };
    let e = enc(input, &o);
    assert_eq!(e.plan().encoding.to_string(), "gsm7+tr");
    assert_eq!(
        e.plan().units,
        18,
        "locking shift: one septet per character"
    );
    assert_eq!(decode(&e), input);
}

#[test]
fn gsm7_encode_vectors() {
    let all = vectors("gsm7_encode");
    assert_eq!(all.len(), 2);
    for v in all {
        let f = &v["fields"];
        let input = f["input_text"].as_str().unwrap();
        // codec "gsm23.038-<locking>-<single>"
        let codec = f["codec"].as_str().unwrap();
        let ids: Vec<u8> = codec
            .trim_start_matches("gsm23.038-")
            .split('-')
            .map(|n| n.parse().unwrap())
            .collect();
        let (tables, fallback) = Gsm7Tables::from_ids(
            (ids[0] != 0).then_some(ids[0]),
            (ids[1] != 0).then_some(ids[1]),
        );
        assert!(!fallback);
        let mut septets = Vec::new();
        for c in input.chars() {
            match tables.encode_char(c).unwrap() {
                Septets::One(s) => septets.push(s),
                Septets::Escaped(s) => septets.extend([0x1B, s]),
            }
        }
        assert_eq!(hex::encode(&septets), v["hex"].as_str().unwrap());
        assert_eq!(septets.len() as u64, f["septets"].as_u64().unwrap());
        let mut back = String::new();
        assert_eq!(tables.decode_into(&septets, &mut back), 0);
        assert_eq!(back, input);
        // The encoder, allowed that language, keeps the text in GSM-7 too.
        let lang = NationalLanguage::from_id(ids[1]).unwrap();
        let o = EncodeOptions {
            languages: LanguageSet::from_iter([lang]),
            ..EncodeOptions::default()
        };
        let e = enc(input, &o);
        assert_eq!(e.plan().encoding.to_string(), format!("gsm7+{lang}"));
        assert_eq!(decode(&e), input);
    }
}
