//! Decoding by data_coding with UDH parsing, and reassembly of concatenated MO messages, through
//! the public API.

use smppd::text::{
    Body, Charset, Concat, DecodeOptions, Fragment, Gsm7Tables, IncompleteReason, NationalLanguage,
    Ports, PushStatus, Reassembler, ReassemblyConfig, Sar, Udh, UdhError, UserData, parse_udh,
};

fn text_of(ud: &UserData) -> (String, usize) {
    let d = ud.decode();
    match d.body {
        Body::Text(t) => (t, d.warnings),
        Body::Binary(b) => panic!("binary body {b:?}"),
    }
}

fn parse(dc: u8, udhi: bool, bytes: &[u8]) -> UserData {
    UserData::parse(dc, udhi, bytes, &DecodeOptions::default())
}

#[test]
fn decode_by_data_coding() {
    assert_eq!(
        text_of(&parse(0x00, false, b"Hello\x00\x02")),
        ("Hello@$".into(), 0)
    );
    assert_eq!(text_of(&parse(0xF1, false, b"\x1b\x65")), ("€".into(), 0));
    assert_eq!(text_of(&parse(0x03, false, b"caf\xe9")), ("café".into(), 0));
    assert_eq!(
        text_of(&parse(0x01, false, b"a@\x80")),
        ("a@\u{FFFD}".into(), 1)
    );
    let gsm_ia5 = DecodeOptions {
        ia5_as_gsm: true,
        ..DecodeOptions::default()
    };
    assert_eq!(
        text_of(&UserData::parse(0x01, false, b"\x00", &gsm_ia5)).0,
        "@"
    );
    assert_eq!(
        text_of(&parse(0x08, false, &[0x04, 0x36, 0xD8, 0x3D, 0xDE, 0x00])),
        ("ж😀".into(), 0)
    );
    // Lone surrogates and an odd trailing octet: U+FFFD, counted, no panic.
    assert_eq!(
        text_of(&parse(
            0x08,
            false,
            &[0xD8, 0x3D, 0x00, 0x41, 0xDE, 0x00, 0x00]
        )),
        ("\u{FFFD}A\u{FFFD}\u{FFFD}".into(), 3)
    );
    for dc in [0x02, 0x04, 0xF4, 0xF7, 0x05] {
        let d = parse(dc, false, &[0xDE, 0xAD]).decode();
        assert_eq!(d.body, Body::Binary(vec![0xDE, 0xAD]), "dc {dc:#x}");
        assert_eq!(d.body.to_text_or_hex(), "dead");
    }
    assert_eq!(parse(0xE0, false, &[]).charset, Charset::Ucs2);
}

#[test]
fn udh_elements() {
    let udh = parse_udh(&[0x05, 0x00, 0x03, 0x2A, 0x03, 0x02, 0xFF]).unwrap();
    assert_eq!(udh.len, 6);
    assert_eq!(
        udh.concat,
        Some(Concat {
            reference: 0x2A,
            total: 3,
            seq: 2,
            wide: false
        })
    );
    let udh = parse_udh(&[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x01]).unwrap();
    assert_eq!(
        udh.concat.map(|c| (c.reference, c.wide)),
        Some((0x1234, true))
    );
    // WAP push ports + concat8.
    let udh = parse_udh(&hex::decode("0b05040b8423f00003010201").unwrap()).unwrap();
    assert_eq!(
        udh.ports,
        Some(Ports {
            destination: 2948,
            originator: 9200
        })
    );
    assert_eq!(udh.concat.map(|c| (c.total, c.seq)), Some((2, 1)));
    let udh = parse_udh(&[0x04, 0x04, 0x02, 0x10, 0x20]).unwrap();
    assert_eq!(
        udh.ports.map(|p| (p.destination, p.originator)),
        Some((0x10, 0x20))
    );
    let udh = parse_udh(&[0x06, 0x24, 0x01, 0x02, 0x25, 0x01, 0x01]).unwrap();
    assert_eq!((udh.single_shift, udh.locking_shift), (Some(2), Some(1)));
    // Invalid concatenation values are ignored (TS 23.040), unknown IEs skipped.
    for bad in [
        [0x00, 0x03, 1, 0, 1],
        [0x00, 0x03, 1, 2, 0],
        [0x00, 0x03, 1, 2, 3],
    ] {
        let mut b = vec![0x08, 0x70, 0x01, 0xAA];
        b.extend(bad);
        assert_eq!(parse_udh(&b).unwrap().concat, None);
    }
    assert_eq!(parse_udh(&[]), Err(UdhError::Empty));
    assert_eq!(
        parse_udh(&[0x09, 0x00]),
        Err(UdhError::TooLong {
            udhl: 9,
            available: 1
        })
    );
    assert!(matches!(
        parse_udh(&[0x03, 0x00, 0x05, 0x01]),
        Err(UdhError::TruncatedElement { iei: 0x00, .. })
    ));
    assert_eq!(
        parse_udh(&[0x00]).unwrap(),
        Udh {
            len: 1,
            ..Udh::default()
        }
    );
}

#[test]
fn malformed_udh_is_a_warning_not_a_failure() {
    let ud = parse(0x00, true, &[0x20, 0x48, 0x69]);
    assert_eq!(ud.udh, None);
    assert_eq!(text_of(&ud), (" Hi".into(), 1));
    let ud = parse(0x00, true, &[]);
    assert_eq!(text_of(&ud), (String::new(), 1));
}

#[test]
fn mo_shift_tables_from_the_udh_are_honoured() {
    // Turkish locking shift: 0x1C 0x69 0x1D → "Şiş".
    let ud = parse(0x00, true, &[0x03, 0x25, 0x01, 0x01, 0x1C, 0x69, 0x1D]);
    assert_eq!(
        ud.tables().0,
        Gsm7Tables::new(Some(NationalLanguage::Turkish), None).unwrap()
    );
    assert_eq!(text_of(&ud), ("Şiş".into(), 0));
    // Spanish single shift: ESC 0x69 → í.
    let ud = parse(
        0x00,
        true,
        &[0x03, 0x24, 0x01, 0x02, 0x64, 0x1B, 0x69, 0x61],
    );
    assert_eq!(text_of(&ud), ("día".into(), 0));
    // Unsupported language (Hindi, 6): default table, one warning.
    let ud = parse(0x00, true, &[0x03, 0x24, 0x01, 0x06, 0x61]);
    assert_eq!(text_of(&ud), ("a".into(), 1));
}

#[test]
fn packed_mo_with_udh_fill_bits() {
    let opts = smppd::text::EncodeOptions {
        packed: true,
        ..Default::default()
    };
    let text = format!("{}€ end", "x".repeat(160));
    let e = smppd::text::encode(&text, &opts, 77).unwrap();
    let dec = DecodeOptions {
        packed: true,
        ..DecodeOptions::default()
    };
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut out = None;
    for seg in e.segments() {
        let ud = UserData::parse(0x00, true, seg.short_message(), &dec);
        let frag = Fragment::from_user_data("src", "dst", &ud, None).unwrap();
        if let PushStatus::Complete(a) = r.push(0, frag).status {
            out = Some(a);
        }
    }
    let a = out.expect("complete");
    assert_eq!(a.decode().body, Body::Text(text));
}

/// Splits a message the way smpplib does (escape pair and surrogate pair cut across parts):
/// reassembly joins payloads before decoding, so the text still comes out right.
#[test]
fn parts_split_inside_a_pair_by_a_broken_sender_still_decode() {
    let lines = include_str!("data/text_vectors.jsonl");
    for name in [
        "split_gsm_euro_escape_at_part_boundary",
        "split_ucs2_emoji_at_part_boundary",
    ] {
        let v: serde_json::Value = lines
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["name"] == name)
            .unwrap();
        let dc = v["fields"]["data_coding"].as_u64().unwrap() as u8;
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut done = None;
        let parts = v["fields"]["parts_hex"].as_array().unwrap();
        for p in parts.iter().rev() {
            let bytes = hex::decode(p.as_str().unwrap()).unwrap();
            let ud = parse(dc, true, &bytes);
            let frag = Fragment::from_user_data("+1", "+2", &ud, None).unwrap();
            if let PushStatus::Complete(a) = r.push(5, frag).status {
                done = Some(a);
            }
        }
        let a = done.expect("complete");
        let d = a.decode();
        assert_eq!(d.warnings, 0, "{name}");
        assert_eq!(
            d.body,
            Body::Text(v["fields"]["input_text"].as_str().unwrap().into()),
            "{name}"
        );
    }
}

fn frag<'a>(reference: u16, total: u8, seq: u8, payload: &'a [u8]) -> Fragment<'a> {
    Fragment {
        source: "+46700000001",
        destination: "12345",
        reference,
        total,
        seq,
        charset: Charset::Gsm7,
        tables: Gsm7Tables::DEFAULT,
        payload,
    }
}

#[test]
fn reassembly_out_of_order_with_duplicates() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    assert_eq!(
        r.push(0, frag(9, 3, 3, b"c")).status,
        PushStatus::Stored {
            received: 1,
            total: 3
        }
    );
    assert_eq!(
        r.push(1, frag(9, 3, 1, b"a")).status,
        PushStatus::Stored {
            received: 2,
            total: 3
        }
    );
    assert_eq!(r.push(2, frag(9, 3, 1, b"X")).status, PushStatus::Duplicate);
    // Same reference from another source is another message.
    let mut other = frag(9, 3, 2, b"Z");
    other.source = "+46700000002";
    assert!(matches!(r.push(2, other).status, PushStatus::Stored { .. }));
    assert_eq!(r.pending_sets(), 2);
    let PushStatus::Complete(a) = r.push(3, frag(9, 3, 2, b"b")).status else {
        panic!("should complete");
    };
    assert_eq!(a.payload, b"abc");
    assert_eq!((a.reference, a.total), (9, 3));
    assert_eq!(a.decode().body, Body::Text("abc".into()));
    assert_eq!(r.pending_sets(), 1);
    // A late duplicate of a completed set starts a new (incomplete) set, which expires.
    assert!(matches!(
        r.push(4, frag(9, 3, 2, b"b")).status,
        PushStatus::Stored { .. }
    ));
    // Invalid numbering is ignored; a 1-part "set" completes at once.
    assert_eq!(r.push(4, frag(1, 2, 3, b"?")).status, PushStatus::Invalid);
    assert_eq!(r.push(4, frag(1, 0, 0, b"?")).status, PushStatus::Invalid);
    assert!(matches!(
        r.push(4, frag(1, 1, 1, b"k")).status,
        PushStatus::Complete(_)
    ));
}

#[test]
fn incomplete_sets_expire() {
    let cfg = ReassemblyConfig {
        timeout_ms: 1000,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(cfg);
    r.push(100, frag(1, 2, 1, b"first"));
    r.push(600, frag(2, 3, 2, b"other"));
    assert!(r.expire(1099).is_empty());
    let gone = r.expire(1100);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].reason, IncompleteReason::Expired);
    assert_eq!((gone[0].reference, gone[0].total), (1, 2));
    assert_eq!(gone[0].parts, vec![(1, b"first".to_vec())]);
    assert_eq!(gone[0].decode_received().body, Body::Text("first".into()));
    // A push also expires what is due, and reports it.
    let res = r.push(5000, frag(3, 2, 1, b"x"));
    assert_eq!(res.incomplete.len(), 1);
    assert_eq!(res.incomplete[0].reference, 2);
    assert_eq!(r.pending_sets(), 1);
    // The part of an expired set arriving later does not complete anything.
    assert!(matches!(
        r.push(5001, frag(1, 2, 2, b"late")).status,
        PushStatus::Stored { .. }
    ));
}

#[test]
fn memory_is_bounded() {
    let cfg = ReassemblyConfig {
        timeout_ms: 60_000,
        max_sets: 3,
        max_bytes: 1 << 20,
    };
    let mut r = Reassembler::new(cfg);
    let mut evicted = Vec::new();
    for reference in 0..10u16 {
        let res = r.push(u64::from(reference), frag(reference, 2, 1, b"p"));
        evicted.extend(res.incomplete);
    }
    assert_eq!(r.pending_sets(), 3);
    assert_eq!(evicted.len(), 7);
    assert!(
        evicted
            .iter()
            .all(|i| i.reason == IncompleteReason::Evicted)
    );
    assert_eq!(evicted[0].reference, 0, "oldest first");

    let cfg = ReassemblyConfig {
        timeout_ms: 60_000,
        max_sets: 1000,
        max_bytes: 2000,
    };
    let mut r = Reassembler::new(cfg);
    let big = [0u8; 600];
    let mut gone = 0;
    for reference in 0..20u16 {
        gone += r.push(0, frag(reference, 4, 1, &big)).incomplete.len();
        assert!(r.pending_bytes() <= 2000, "{}", r.pending_bytes());
    }
    assert!(gone >= 17);
    // A part that alone exceeds the budget is refused.
    assert_eq!(
        r.push(0, frag(99, 2, 1, &[0u8; 5000])).status,
        PushStatus::TooLarge
    );
    assert!(r.pending_bytes() <= 2000);
}

#[test]
fn reference_reuse_with_another_total_supersedes() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    r.push(0, frag(5, 3, 1, b"old"));
    let res = r.push(1, frag(5, 2, 1, b"new"));
    assert_eq!(res.incomplete.len(), 1);
    assert_eq!(res.incomplete[0].reason, IncompleteReason::Superseded);
    let PushStatus::Complete(a) = r.push(2, frag(5, 2, 2, b"!")).status else {
        panic!("should complete");
    };
    assert_eq!(a.payload, b"new!");
}

#[test]
fn sar_fragments() {
    let ud1 = parse(0x08, false, &[0x00, 0x48]);
    let ud2 = parse(0x08, false, &[0x00, 0x69]);
    assert!(Fragment::from_user_data("a", "b", &ud1, None).is_none());
    let sar = |seq| Sar {
        msg_ref_num: 0xBEEF,
        total_segments: 2,
        segment_seqnum: seq,
    };
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let f2 = Fragment::from_user_data("a", "b", &ud2, Some(sar(2))).unwrap();
    assert_eq!((f2.reference, f2.seq), (0xBEEF, 2));
    r.push(0, f2);
    let f1 = Fragment::from_user_data("a", "b", &ud1, Some(sar(1))).unwrap();
    let PushStatus::Complete(a) = r.push(0, f1).status else {
        panic!("should complete");
    };
    assert_eq!(a.decode().body, Body::Text("Hi".into()));
}

#[test]
fn reassembly_forgets_a_part_its_caller_could_not_keep() {
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let frag = |seq: u8, payload: &'static [u8]| Fragment {
        source: "123",
        destination: "456",
        reference: 1,
        total: 2,
        seq,
        charset: Charset::Gsm7,
        tables: Gsm7Tables::DEFAULT,
        payload,
    };
    assert!(matches!(
        r.push(0, frag(1, b"ab")).status,
        PushStatus::Stored { .. }
    ));
    let held = r.pending_bytes();
    // Forgotten: the resend is stored again, not ignored as a duplicate.
    assert!(r.forget_part("123", "456", 1, 1));
    assert!(!r.forget_part("123", "456", 1, 1), "nothing left to forget");
    assert_eq!((r.pending_sets(), r.pending_bytes()), (0, 0));
    assert!(matches!(
        r.push(1, frag(1, b"ab")).status,
        PushStatus::Stored { .. }
    ));
    assert_eq!(r.pending_bytes(), held);
    assert!(matches!(
        r.push(2, frag(2, b"cd")).status,
        PushStatus::Complete(_)
    ));
}
