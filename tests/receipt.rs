//! Receipt parsing and id normalization through the public API: the appendix-B form, every
//! real-world deviation of SMPP-FACTS §7.3, TLV preference, and a never-panics property.

use proptest::prelude::*;
use smppd::receipt::{
    AcceptedIs, IdRule, NetworkError, Outcome, ReceiptDate, ReceiptError, ReceiptTlvs, Stat,
    canonical_id, final_outcome, is_submit_key, parse_receipt, receipt_keys, submit_key,
};

fn text(s: &str) -> smppd::receipt::Receipt {
    parse_receipt(s.as_bytes(), &ReceiptTlvs::default()).expect("receipt parses")
}

fn date(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Option<ReceiptDate> {
    Some(ReceiptDate {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: mi,
        second: s,
    })
}

#[test]
fn appendix_b_form() {
    // The text of the deliver_sm_receipt_delivered_with_tlvs vector (smpplib).
    let r = text(
        "id:0a1b2c3d4e sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:Hello world",
    );
    assert_eq!(r.id, "0a1b2c3d4e");
    assert_eq!(r.text_id.as_deref(), Some("0a1b2c3d4e"));
    assert_eq!(r.tlv_id, None);
    assert_eq!(r.sub, Some(1));
    assert_eq!(r.dlvrd, Some(1));
    assert_eq!(r.submit_date, date(2025, 1, 2, 15, 30, 0));
    assert_eq!(r.done_date, date(2025, 1, 2, 15, 31, 0));
    assert_eq!(r.stat, Stat::Delivered);
    assert_eq!(r.err.as_deref(), Some("000"));
    assert_eq!(r.err_code, Some(0));
    assert_eq!(r.text.as_deref(), Some("Hello world"));
    let d = r.done_date.expect("date");
    assert_eq!(d.as_number(), 20250102153100);
    assert_eq!(ReceiptDate::from_number(d.as_number()), d);
    assert_eq!(d.to_string(), "2025-01-02T15:31:00");
}

#[test]
fn tlvs_win_over_text() {
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("38601fa"),
        message_state: Some(5),
        network_error_code: Some([3, 0x00, 0x22]),
    };
    let r = parse_receipt(
        b"id:0059113978 sub:001 dlvrd:000 submit date:1005232039 done date:1005242339 stat:DELIVRD err:000 text:",
        &tlvs,
    )
    .expect("parses");
    assert_eq!(r.id, "38601fa");
    assert_eq!(r.text_id.as_deref(), Some("0059113978"));
    assert_eq!(r.stat, Stat::Undeliverable);
    assert_eq!(
        r.network_error,
        Some(NetworkError {
            network_type: 3,
            code: 0x22
        })
    );
    assert_eq!(r.err_code, Some(0x22));
    assert_eq!(r.err.as_deref(), Some("000"));
    assert_eq!(r.text, None);
    // An undefined message_state value falls back to the text.
    let tlvs = ReceiptTlvs {
        message_state: Some(42),
        ..ReceiptTlvs::default()
    };
    let r = parse_receipt(b"id:1 stat:EXPIRED", &tlvs).expect("parses");
    assert_eq!(r.stat, Stat::Expired);
}

#[test]
fn real_world_deviations() {
    // (input, id, sub, dlvrd, submit date, done date, stat, err, err_code, text)
    type Row<'a> = (
        &'a str,
        &'a str,
        Option<u32>,
        Option<u32>,
        Option<ReceiptDate>,
        Option<ReceiptDate>,
        Stat,
        Option<&'a str>,
        Option<u32>,
        Option<&'a str>,
    );
    let cases: Vec<Row> = vec![
        // Field names in any case; the spec's own `Text:`.
        (
            "ID:abc SUB:001 DLVRD:001 SUBMIT DATE:2501021530 DONE DATE:2501021531 STAT:DELIVRD ERR:000 TEXT:Hi",
            "abc",
            Some(1),
            Some(1),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Delivered,
            Some("000"),
            Some(0),
            Some("Hi"),
        ),
        (
            "id:abc sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 Text:Hi there",
            "abc",
            Some(1),
            Some(1),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Delivered,
            Some("000"),
            Some(0),
            Some("Hi there"),
        ),
        // text: missing, or empty.
        (
            "id:7 sub:001 dlvrd:000 submit date:2501021530 done date:2501021531 stat:UNDELIV err:001",
            "7",
            Some(1),
            Some(0),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Undeliverable,
            Some("001"),
            Some(1),
            None,
        ),
        (
            "id:7 sub:001 dlvrd:000 submit date:2501021530 done date:2501021531 stat:UNDELIV err:001 text:",
            "7",
            Some(1),
            Some(0),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Undeliverable,
            Some("001"),
            Some(1),
            None,
        ),
        // 12-digit (seconds) and 14-digit dates.
        (
            "id:8 sub:001 dlvrd:001 submit date:250102153012 done date:20250102153145 stat:DELIVRD err:000 text:x",
            "8",
            Some(1),
            Some(1),
            date(2025, 1, 2, 15, 30, 12),
            date(2025, 1, 2, 15, 31, 45),
            Stat::Delivered,
            Some("000"),
            Some(0),
            Some("x"),
        ),
        // All-zero dates.
        (
            "id:9 sub:001 dlvrd:000 submit date:000000000000 done date:0000000000 stat:EXPIRED err:000 text:",
            "9",
            Some(1),
            Some(0),
            None,
            None,
            Stat::Expired,
            Some("000"),
            Some(0),
            None,
        ),
        // submitdate:/donedate: without a space (OpenMarket).
        (
            "id:10 sub:1 dlvrd:1 submitdate:2501021530 donedate:2501021531 stat:DELIVRD err:0",
            "10",
            Some(1),
            Some(1),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Delivered,
            Some("0"),
            Some(0),
            None,
        ),
        // sub/dlvrd missing; err not numeric.
        (
            "id:11 submit date:2501021530 done date:2501021531 stat:REJECTD err:21b text:abc",
            "11",
            None,
            None,
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Rejected,
            Some("21b"),
            None,
            Some("abc"),
        ),
        // Non-numeric sub/dlvrd.
        (
            "id:12 sub:xx dlvrd:?? submit date:2501021530 done date:2501021531 stat:DELIVRD err:000",
            "12",
            None,
            None,
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Delivered,
            Some("000"),
            Some(0),
            None,
        ),
        // UUID and long ids, leading zeros.
        (
            "id:74e02ee1-4e2f-4b8a-9a1c-2f0e5d7c9b11 sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000 text:",
            "74e02ee1-4e2f-4b8a-9a1c-2f0e5d7c9b11",
            Some(1),
            Some(1),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Delivered,
            Some("000"),
            Some(0),
            None,
        ),
        (
            "id:12345678901234567890 sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 stat:DELIVRD err:000",
            "12345678901234567890",
            Some(1),
            Some(1),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Delivered,
            Some("000"),
            Some(0),
            None,
        ),
        (
            "id:0059113978 sub:001 dlvrd:001 submit date:1005232039 done date:1005242339 stat:DELIVRD err:000 text:",
            "0059113978",
            Some(1),
            Some(1),
            date(2010, 5, 23, 20, 39, 0),
            date(2010, 5, 24, 23, 39, 0),
            Stat::Delivered,
            Some("000"),
            Some(0),
            None,
        ),
        // Lowercase stat and invented stat.
        (
            "id:13 sub:001 dlvrd:000 submit date:2501021530 done date:2501021531 stat:expired err:000",
            "13",
            Some(1),
            Some(0),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Expired,
            Some("000"),
            Some(0),
            None,
        ),
        (
            "id:14 sub:001 dlvrd:000 submit date:2501021530 done date:2501021531 stat:SUBMITTED err:000",
            "14",
            Some(1),
            Some(0),
            date(2025, 1, 2, 15, 30, 0),
            date(2025, 1, 2, 15, 31, 0),
            Stat::Enroute,
            Some("000"),
            Some(0),
            None,
        ),
        // Labels inside the text are the message's words, not fields.
        (
            "id:15 stat:DELIVRD err:000 text:your id:999 stat:REJECTD",
            "15",
            None,
            None,
            None,
            None,
            Stat::Delivered,
            Some("000"),
            Some(0),
            Some("your id:999 stat:REJECTD"),
        ),
        // Malformed dates are dropped, not misread.
        (
            "id:16 submit date:2513021530 done date:25010215 stat:DELIVRD",
            "16",
            None,
            None,
            None,
            None,
            Stat::Delivered,
            None,
            None,
            None,
        ),
    ];
    for (input, id, sub, dlvrd, sd, dd, stat, err, err_code, body) in cases {
        let r = text(input);
        assert_eq!(r.id, id, "{input}");
        assert_eq!(r.sub, sub, "{input}");
        assert_eq!(r.dlvrd, dlvrd, "{input}");
        assert_eq!(r.submit_date, sd, "{input}");
        assert_eq!(r.done_date, dd, "{input}");
        assert_eq!(r.stat, stat, "{input}");
        assert_eq!(r.err.as_deref(), err, "{input}");
        assert_eq!(r.err_code, err_code, "{input}");
        assert_eq!(r.text.as_deref(), body, "{input}");
    }
    assert_eq!(
        text("id:14 stat:SUBMITTED").stat_text.as_deref(),
        Some("SUBMITTED")
    );
    assert_eq!(
        text("id:14 stat:NOROUTE").stat_text.as_deref(),
        Some("NOROUTE")
    );
    assert_eq!(text("id:14 stat:DELIVRD").stat_text, None);
    assert_eq!(text("id:14 stat:delivrd").stat_text, None);
}

#[test]
fn no_id_is_an_error() {
    assert_eq!(
        parse_receipt(b"stat:DELIVRD err:000", &ReceiptTlvs::default()),
        Err(ReceiptError::NoId)
    );
    assert_eq!(
        parse_receipt(b"", &ReceiptTlvs::default()),
        Err(ReceiptError::NoId)
    );
    // But a TLV id alone is enough, and the stat comes from the TLV.
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("abc"),
        message_state: Some(2),
        network_error_code: None,
    };
    let r = parse_receipt(b"\xff\xfe garbage", &tlvs).expect("parses");
    assert_eq!((r.id.as_str(), r.stat), ("abc", Stat::Delivered));
}

#[test]
fn stat_outcomes() {
    use AcceptedIs::*;
    assert_eq!(final_outcome(Stat::Enroute, Final), None);
    assert_eq!(final_outcome(Stat::Enroute, Intermediate), None);
    assert_eq!(
        final_outcome(Stat::Accepted, Final),
        Some(Outcome::Accepted)
    );
    assert_eq!(final_outcome(Stat::Accepted, Intermediate), None);
    assert_eq!(
        final_outcome(Stat::Delivered, Final),
        Some(Outcome::Delivered)
    );
    assert_eq!(final_outcome(Stat::Expired, Final), Some(Outcome::Expired));
    assert_eq!(
        final_outcome(Stat::Deleted, Final),
        Some(Outcome::Undeliverable)
    );
    assert_eq!(
        final_outcome(Stat::Undeliverable, Final),
        Some(Outcome::Undeliverable)
    );
    assert_eq!(
        final_outcome(Stat::Unknown, Final),
        Some(Outcome::Undeliverable)
    );
    assert_eq!(
        final_outcome(Stat::Rejected, Final),
        Some(Outcome::Rejected)
    );
    for v in 1..=8u8 {
        let s = Stat::from_message_state(v).expect("defined");
        assert_eq!(Stat::from_text(s.as_str()), s);
    }
    assert_eq!(Stat::from_message_state(0), None);
    assert_eq!(Stat::from_message_state(9), None);
}

#[test]
fn id_normalization() {
    assert_eq!(canonical_id("0059113978"), "59113978");
    assert_eq!(canonical_id(" 0A1B2C "), "a1b2c");
    assert_eq!(canonical_id("0000"), "0");
    assert_eq!(canonical_id(""), "");
    assert_eq!(submit_key(IdRule::Same, "ABC-def"), "abc-def");

    // The cloudhopper PDU: text id 0059113978 (decimal) for the hex id 38601fa.
    let text_only = |s: &str| text(&format!("id:{s} stat:DELIVRD"));
    let key = submit_key(IdRule::HexToDec, "038601FA");
    assert_eq!(
        receipt_keys(IdRule::HexToDec, &text_only("0059113978")),
        vec![key]
    );
    // The other way: submit_sm_resp decimal, receipt text hex.
    let key = submit_key(IdRule::DecToHex, "0059113978");
    assert_eq!(
        receipt_keys(IdRule::DecToHex, &text_only("38601FA")),
        vec![key]
    );
    // Same: case and leading zeros only.
    let key = submit_key(IdRule::Same, "00ABC123");
    assert_eq!(receipt_keys(IdRule::Same, &text_only("abc123")), vec![key]);
    // A TLV id comes first; the converted text id second.
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("38601fa"),
        ..ReceiptTlvs::default()
    };
    let r = parse_receipt(b"id:0059113978 stat:DELIVRD", &tlvs).expect("parses");
    assert_eq!(
        receipt_keys(IdRule::HexToDec, &r),
        vec!["38601fa".to_string()]
    );
    assert_eq!(
        receipt_keys(IdRule::Same, &r),
        vec!["38601fa".to_string(), "59113978".to_string()]
    );
    // Ids that do not convert (UUIDs, too long) are kept as they are.
    let uuid = "74e02ee1-4e2f-4b8a-9a1c-2f0e5d7c9b11";
    assert_eq!(
        receipt_keys(IdRule::HexToDec, &text_only(uuid)),
        vec![uuid.to_string()]
    );
    let long = "123456789012345678901234567890123456789012345";
    assert_eq!(
        receipt_keys(IdRule::HexToDec, &text_only(long)),
        vec![long.to_string()]
    );
    assert_eq!(IdRule::from_name("hex_to_dec"), Some(IdRule::HexToDec));
    assert_eq!(
        IdRule::from_name("dec_to_hex").map(IdRule::name),
        Some("dec_to_hex")
    );
    assert_eq!(IdRule::from_name("hex"), None);
}

/// Found by the `receipt` fuzz target (tests/fuzz-inputs/receipt/): a key normalized again
/// must not change, or a stored key and a receipt's key computed from it could differ.
#[test]
fn normalized_keys_are_fixed_points() {
    // Zeros and padding interleaved: stripping zeros used to leave " 7".
    assert_eq!(canonical_id("0 7"), "7");
    assert_eq!(canonical_id("\u{0}0\t0x"), "x");
    assert_eq!(canonical_id("0 0"), "0");
    // The cut at 64 characters used to keep a trailing space.
    let long = format!("{}  tail", "a".repeat(63));
    assert_eq!(canonical_id(&long), "a".repeat(63));
    for id in [
        "0 7",
        "0 0",
        long.as_str(),
        "  00AbC ",
        "id:7 submitdate:0000000000 x",
    ] {
        let key = canonical_id(id);
        assert_eq!(canonical_id(&key), key, "{id:?}");
        // A receipt carrying the submit id finds the key it was stored under.
        let tlvs = ReceiptTlvs {
            receipted_message_id: Some(id),
            ..ReceiptTlvs::default()
        };
        let r = parse_receipt(b"stat:DELIVRD", &tlvs).expect("parses");
        assert!(receipt_keys(IdRule::Same, &r).contains(&submit_key(IdRule::Same, id)));
    }
}

/// Found by the `receipt` fuzz target: a 32-digit hex id whose decimal form has 39 digits
/// (above 10^38) was not converted back, so its receipt matched nothing.
#[test]
fn the_largest_hex_ids_convert_from_their_decimal_text() {
    let hex = "99999999999999992999899999999999";
    let dec = u128::from_str_radix(hex, 16).expect("hex").to_string();
    assert_eq!(dec.len(), 39);
    let r = text(&format!("id:{dec} stat:DELIVRD"));
    assert_eq!(
        receipt_keys(IdRule::HexToDec, &r),
        vec![submit_key(IdRule::HexToDec, hex)]
    );
    let max = text(&format!("id:{} stat:DELIVRD", u128::MAX));
    assert_eq!(receipt_keys(IdRule::HexToDec, &max), vec!["f".repeat(32)]);
    // One more than u128::MAX does not convert; it stays as written.
    let over = "340282366920938463463374607431768211456";
    assert_eq!(
        receipt_keys(IdRule::HexToDec, &text(&format!("id:{over} stat:DELIVRD"))),
        vec![over.to_string()]
    );
}

/// Found by the `receipt` fuzz target: a text `id:` of NUL octets was taken as an id whose key
/// is empty. NULs are padding in the text as in the TLV.
#[test]
fn an_id_of_nul_padding_is_no_id() {
    assert_eq!(
        parse_receipt(b"id:\0\0\0 stat:DELIVRD", &ReceiptTlvs::default()),
        Err(ReceiptError::NoId)
    );
    let r = text("id:\0\0ab12\0 stat:DELIVRD");
    assert_eq!(r.id, "ab12");
    assert_eq!(receipt_keys(IdRule::Same, &r), vec!["ab12".to_string()]);
}

/// ACCEPTD is "accepted by the network / next hop" unless the SMSC is configured otherwise, and
/// it never counts as delivered either way (issue #16: it used to read as delivered).
#[test]
fn acceptd_is_intermediate_by_default_and_never_delivered() {
    assert_eq!(AcceptedIs::default(), AcceptedIs::Intermediate);
    for spelling in ["ACCEPTD", "acceptd", "Accepted"] {
        let r = text(&format!("id:1 stat:{spelling}"));
        assert_eq!(r.stat, Stat::Accepted, "{spelling}");
        assert_eq!(final_outcome(r.stat, AcceptedIs::default()), None);
        assert_eq!(
            final_outcome(r.stat, AcceptedIs::Final),
            Some(Outcome::Accepted)
        );
    }
    // The TLV form (message_state 6) is the same stat.
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("1"),
        message_state: Some(6),
        network_error_code: None,
    };
    let r = parse_receipt(b"", &tlvs).expect("parses");
    assert_eq!(final_outcome(r.stat, AcceptedIs::default()), None);
}

/// Words for "still on its way" are intermediate and keep their spelling; words nobody defined
/// are kept verbatim, final and never delivered; the literal UNKNOWN stays final undeliverable.
#[test]
fn intermediate_and_unknown_stat_words() {
    for word in [
        "ENROUTE",
        "enroute",
        "BUFFRED",
        "BUFFERED",
        "ACKED",
        "SENT",
        "SUBMITTED",
        "PENDING",
        "Queued",
        "SCHEDULED",
    ] {
        let r = text(&format!("id:1 sub:001 dlvrd:000 stat:{word} err:000"));
        assert_eq!(r.stat, Stat::Enroute, "{word}");
        for acc in [AcceptedIs::Final, AcceptedIs::Intermediate] {
            assert_eq!(final_outcome(r.stat, acc), None, "{word}");
        }
        let expect_text = (!word.eq_ignore_ascii_case("ENROUTE")).then_some(word);
        assert_eq!(r.stat_text.as_deref(), expect_text, "{word}");
    }
    for word in ["NOROUTE", "ERROR", "Blocked", "X_42"] {
        let r = text(&format!("id:1 stat:{word} err:000"));
        assert_eq!(r.stat, Stat::Unknown, "{word}");
        assert_eq!(r.stat_text.as_deref(), Some(word));
        assert_eq!(
            final_outcome(r.stat, AcceptedIs::default()),
            Some(Outcome::Undeliverable)
        );
    }
    // Long names and message_state numbers name their stat.
    for (word, stat) in [
        ("DELIVERED", Stat::Delivered),
        ("2", Stat::Delivered),
        ("5", Stat::Undeliverable),
        ("FAILED", Stat::Undeliverable),
        ("Rejected", Stat::Rejected),
        ("6", Stat::Accepted),
        ("1", Stat::Enroute),
    ] {
        let r = text(&format!("id:1 stat:{word}"));
        assert_eq!(
            (r.stat, r.stat_text.as_deref()),
            (stat, Some(word)),
            "{word}"
        );
    }
    assert_eq!(text("id:1 stat:0").stat, Stat::Unknown);
    // message_state 0 (SMPP 5.0 SCHEDULED, what Kannel sends with BUFFRED): not yet final,
    // unless the text says more.
    let scheduled = ReceiptTlvs {
        receipted_message_id: Some("1"),
        message_state: Some(0),
        network_error_code: None,
    };
    let r = parse_receipt(b"", &scheduled).expect("parses");
    assert_eq!(r.stat, Stat::Enroute);
    let r = parse_receipt(b"id:1 stat:BUFFERD", &scheduled).expect("parses");
    assert_eq!(
        (r.stat, r.stat_text.as_deref()),
        (Stat::Enroute, Some("BUFFERD"))
    );
    let r = parse_receipt(b"id:1 stat:DELIVRD", &scheduled).expect("parses");
    assert_eq!(r.stat, Stat::Delivered);
    let r = text("id:1 stat:UNKNOWN");
    assert_eq!((r.stat, r.stat_text), (Stat::Unknown, None));
    // A text word the TLV contradicts is not shown as what was applied.
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("1"),
        message_state: Some(2),
        network_error_code: None,
    };
    let r = parse_receipt(b"id:1 stat:BUFFRED", &tlvs).expect("parses");
    assert_eq!((r.stat, r.stat_text), (Stat::Delivered, None));
}

/// Real receipt texts that are not the appendix-B line, each with what must be read from it.
#[test]
fn text_that_is_not_the_textbook_format() {
    // (input, id, stat, sub, dlvrd, err, text)
    type Row<'a> = (
        &'a [u8],
        &'a str,
        Stat,
        Option<u32>,
        Option<u32>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let cases: Vec<Row> = vec![
        // Bytes before `id:`, with and without a space.
        (
            b"DLR: id:a1b2 sub:001 dlvrd:001 stat:DELIVRD err:000",
            "a1b2",
            Stat::Delivered,
            Some(1),
            Some(1),
            Some("000"),
            None,
        ),
        (
            b"#id:a1b2 stat:DELIVRD",
            "a1b2",
            Stat::Delivered,
            None,
            None,
            None,
            None,
        ),
        (
            b"\x00\x05\x00id:a1b2 stat:UNDELIV err:001",
            "a1b2",
            Stat::Undeliverable,
            None,
            None,
            Some("001"),
            None,
        ),
        // `msgid:` is another word: the id is the real `id:`.
        (
            b"msgid:999 id:a1b2 stat:DELIVRD",
            "a1b2",
            Stat::Delivered,
            None,
            None,
            None,
            None,
        ),
        // Bytes after the last field.
        (
            b"id:a1b2 sub:1 dlvrd:1 stat:DELIVRD err:0 \x00\x00 trailing junk;",
            "a1b2",
            Stat::Delivered,
            Some(1),
            Some(1),
            Some("0"),
            None,
        ),
        (
            b"id:a1b2\x00\x00 stat:DELIVRD\tERR:000\r\n",
            "a1b2",
            Stat::Delivered,
            None,
            None,
            Some("000"),
            None,
        ),
        // Fields in another order, `text:` not last.
        (
            b"stat:DELIVRD err:000 text:Hello there id:a1b2 sub:001 dlvrd:001 submit date:2501021530 done date:2501021531",
            "a1b2",
            Stat::Delivered,
            Some(1),
            Some(1),
            Some("000"),
            Some("Hello there"),
        ),
        (
            b"id:a1b2 sub:001 dlvrd:001 submit date:2501021530 done date:2501021531 text:Your code: 1234 stat:REJECTD err:021",
            "a1b2",
            Stat::Rejected,
            Some(1),
            Some(1),
            Some("021"),
            Some("Your code: 1234"),
        ),
        // `text:` holding colons and field-like words, before and after the real fields.
        (
            b"id:a1b2 sub:001 dlvrd:001 text:Meet at 10:30, id: 77 sub:2 stat:maybe stat:EXPIRED err:000",
            "a1b2",
            Stat::Expired,
            Some(1),
            Some(1),
            Some("000"),
            Some("Meet at 10:30, id: 77 sub:2 stat:maybe"),
        ),
        (
            b"id:a1b2 stat:DELIVRD err:000 text:stat:UNDELIV err:9 id:x",
            "a1b2",
            Stat::Delivered,
            None,
            None,
            Some("000"),
            Some("stat:UNDELIV err:9 id:x"),
        ),
        // `text:` empty and followed by the stat, every field out of order.
        (
            b"dlvrd:001 err:000 id:c0ffee-77 submit date:1102061930 sub:001 text: stat:UNDELIV done date:1102061931",
            "c0ffee-77",
            Stat::Undeliverable,
            Some(1),
            Some(1),
            Some("000"),
            None,
        ),
        // Label case.
        (
            b"Id:a1b2 Sub:001 Dlvrd:001 Submit Date:2501021530 Done Date:2501021531 Stat:DELIVRD Err:000 Text:Hi",
            "a1b2",
            Stat::Delivered,
            Some(1),
            Some(1),
            Some("000"),
            Some("Hi"),
        ),
        (
            b"ID:a1b2 STAT:delivrd ERR:000 TEXT:Hi",
            "a1b2",
            Stat::Delivered,
            None,
            None,
            Some("000"),
            Some("Hi"),
        ),
        // Empty and missing err; unpadded sub/dlvrd; dlvrd greater than sub.
        (
            b"id:a1b2 sub:1 dlvrd:3 submit date:2501021530 done date:2501021531 stat:DELIVRD err: text:x",
            "a1b2",
            Stat::Delivered,
            Some(1),
            Some(3),
            None,
            Some("x"),
        ),
        (
            b"id:a1b2 sub:2 dlvrd:5 stat:DELIVRD text:x",
            "a1b2",
            Stat::Delivered,
            Some(2),
            Some(5),
            None,
            Some("x"),
        ),
        // Id forms.
        (
            b"id:9f86d081884c7d659a2feaa0c55ad015 stat:DELIVRD err:000",
            "9f86d081884c7d659a2feaa0c55ad015",
            Stat::Delivered,
            None,
            None,
            Some("000"),
            None,
        ),
        (
            b"id:74E02EE1-4E2F-4B8A-9A1C-2F0E5D7C9B11 stat:DELIVRD",
            "74E02EE1-4E2F-4B8A-9A1C-2F0E5D7C9B11",
            Stat::Delivered,
            None,
            None,
            None,
            None,
        ),
        (
            b"id:MSG-2025-ab12-X9 stat:DELIVRD",
            "MSG-2025-ab12-X9",
            Stat::Delivered,
            None,
            None,
            None,
            None,
        ),
    ];
    for (input, id, stat, sub, dlvrd, err, body) in cases {
        let shown = String::from_utf8_lossy(input);
        let r = parse_receipt(input, &ReceiptTlvs::default()).expect("receipt parses");
        assert_eq!(r.id, id, "{shown}");
        assert_eq!(r.stat, stat, "{shown}");
        assert_eq!(r.sub, sub, "{shown}");
        assert_eq!(r.dlvrd, dlvrd, "{shown}");
        assert_eq!(r.err.as_deref(), err, "{shown}");
        assert_eq!(r.text.as_deref(), body, "{shown}");
    }
    // Fields separated by `;` or `,` with no space.
    let r = text("id:a1b2;sub:1;dlvrd:1;stat:DELIVRD;err:0");
    assert_eq!(
        (r.id.as_str(), r.stat, r.err.as_deref(), r.dlvrd),
        ("a1b2", Stat::Delivered, Some("0"), Some(1))
    );
    // No stat anywhere: `dlvrd:` says whether it was delivered.
    assert_eq!(text("id:1 sub:001 dlvrd:001 err:000").stat, Stat::Delivered);
    assert_eq!(text("id:1 sub:001 dlvrd:000 err:000").stat, Stat::Unknown);
    // A receipt whose only id-like word is part of another word has no id.
    assert_eq!(
        parse_receipt(b"msgid:12 stat:DELIVRD", &ReceiptTlvs::default()),
        Err(ReceiptError::NoId)
    );
}

/// Dates of 10, 12 and 14 digits, and with a zone (converted to UTC), or the SMPP time form.
#[test]
fn dates_in_every_length_and_with_a_zone() {
    let cases: &[(&str, Option<ReceiptDate>)] = &[
        ("2501021530", date(2025, 1, 2, 15, 30, 0)),
        ("250102153012", date(2025, 1, 2, 15, 30, 12)),
        ("20250102153012", date(2025, 1, 2, 15, 30, 12)),
        ("2501021530+0100", date(2025, 1, 2, 14, 30, 0)),
        ("2501021530 +01:00", date(2025, 1, 2, 14, 30, 0)),
        ("20250102153012Z", date(2025, 1, 2, 15, 30, 12)),
        ("250102153012-05", date(2025, 1, 2, 20, 30, 12)),
        ("2501021530 UTC", date(2025, 1, 2, 15, 30, 0)),
        // A zone word we cannot convert: the date as written.
        ("2501021530 CET", date(2025, 1, 2, 15, 30, 0)),
        // Across a year boundary.
        ("2501010030+0100", date(2024, 12, 31, 23, 30, 0)),
        // SMPP absolute time: quarter hours, `+` ahead of UTC.
        ("250102153012004+", date(2025, 1, 2, 14, 30, 12)),
        ("250102153012008-", date(2025, 1, 2, 17, 30, 12)),
        // Not dates.
        ("2501021530+01x0", None),
        ("25010215", None),
        ("0000000000+0100", None),
    ];
    for (s, want) in cases {
        assert_eq!(ReceiptDate::parse(s), *want, "{s}");
        let r = text(&format!("id:1 submit date:{s} done date:{s} stat:DELIVRD"));
        assert_eq!(r.done_date, *want, "{s} in a receipt");
        assert_eq!(r.stat, Stat::Delivered, "{s} in a receipt");
    }
}

/// Ids as SMSCs write them find the part stored under the submit_sm_resp id, whatever the case.
#[test]
fn id_forms_and_case_find_their_part() {
    let pairs = [
        // (submit_sm_resp id, id in the receipt)
        (
            "9F86D081884C7D659A2FEAA0C55AD015",
            "9f86d081884c7d659a2feaa0c55ad015",
        ),
        (
            "74e02ee1-4e2f-4b8a-9a1c-2f0e5d7c9b11",
            "74E02EE1-4E2F-4B8A-9A1C-2F0E5D7C9B11",
        ),
        ("Msg-0A1B2C-x7", "MSG-0A1B2C-X7"),
        ("0059113978", "59113978"),
    ];
    for (submitted, in_receipt) in pairs {
        for rule in [IdRule::Same, IdRule::HexToDec, IdRule::DecToHex] {
            let stored = submit_key(rule, submitted);
            let r = text(&format!("id:{in_receipt} stat:DELIVRD"));
            let keys = receipt_keys(rule, &r);
            let tlvs = ReceiptTlvs {
                receipted_message_id: Some(in_receipt),
                ..ReceiptTlvs::default()
            };
            let via_tlv = parse_receipt(b"stat:DELIVRD", &tlvs).expect("parses");
            assert!(
                receipt_keys(rule, &via_tlv).contains(&stored),
                "{rule:?} TLV {in_receipt}"
            );
            // The text id in another base only under the conversion rules; the others must
            // find it as written.
            let numeric = in_receipt.bytes().all(|c| c.is_ascii_hexdigit());
            if rule == IdRule::Same || !numeric {
                assert!(
                    keys.contains(&stored),
                    "{rule:?} text {in_receipt}: {keys:?}"
                );
            }
        }
    }
    assert_eq!(canonical_id("74E02EE1-4E2F"), "74e02ee1-4e2f");
}

/// Receipt text is decoded by data_coding before it is parsed.
#[test]
fn receipt_text_is_decoded_by_data_coding() {
    use smppd::receipt::{ReceiptCoding, receipt_text};
    let line = "id:7f3a sub:001 dlvrd:001 stat:DELIVRD err:000 text:Grüße";
    let coding = |data_coding: u8| ReceiptCoding {
        data_coding,
        ..ReceiptCoding::default()
    };
    let ucs2: Vec<u8> = line.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let latin1: Vec<u8> = line.chars().map(|c| c as u8).collect();
    for (bytes, c) in [(ucs2, coding(8)), (latin1, coding(3))] {
        let decoded = receipt_text(&bytes, c);
        let r = parse_receipt(&decoded, &ReceiptTlvs::default()).expect("parses");
        assert_eq!(
            (r.id.as_str(), r.stat, r.text.as_deref()),
            ("7f3a", Stat::Delivered, Some("Grüße"))
        );
    }
    let mut packed = Vec::new();
    smppd::text::gsm::pack_septets(b"id:7f3a stat:UNDELIV err:001", 0, &mut packed);
    let c = ReceiptCoding {
        gsm_packed: true,
        ..coding(0)
    };
    let r = parse_receipt(&receipt_text(&packed, c), &ReceiptTlvs::default()).expect("parses");
    assert_eq!((r.id.as_str(), r.stat), ("7f3a", Stat::Undeliverable));
    // ASCII octets under data_coding 0 are read as they are (`_` stays `_`).
    let r = parse_receipt(
        &receipt_text(b"id:ab_12 stat:DELIVRD", coding(0)),
        &ReceiptTlvs::default(),
    )
    .expect("parses");
    assert_eq!(r.id, "ab_12");
}

proptest! {
    #[test]
    fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                             tlv_id in proptest::option::of(".{0,80}"),
                             state in proptest::option::of(any::<u8>()),
                             nec in proptest::option::of(any::<[u8; 3]>())) {
        let tlvs = ReceiptTlvs {
            receipted_message_id: tlv_id.as_deref(),
            message_state: state,
            network_error_code: nec,
        };
        if let Ok(r) = parse_receipt(&bytes, &tlvs) {
            prop_assert!(r.id.chars().count() <= smppd::receipt::MAX_ID_LEN);
            for rule in [IdRule::Same, IdRule::HexToDec, IdRule::DecToHex] {
                let keys = receipt_keys(rule, &r);
                prop_assert!(!keys.is_empty() && keys.len() <= 2);
            }
        }
    }

    #[test]
    fn never_panics_on_receipt_like_text(
        id in "[0-9a-fA-F-]{0,64}",
        sub in "[0-9a-z]{0,5}",
        date in "[0-9]{0,16}",
        stat in "[A-Za-z]{0,10}",
        err in "[0-9a-z]{0,5}",
        body in ".{0,40}",
        sep in prop::sample::select(vec![" ", "", "  ", "\t"]),
    ) {
        let s = format!("id:{id}{sep}sub:{sub} dlvrd:{sub} submit date:{date} done date:{date} stat:{stat} err:{err} text:{body}");
        let r = parse_receipt(s.as_bytes(), &ReceiptTlvs::default());
        if !id.is_empty() && !sep.is_empty() {
            let r = r.expect("an id is present");
            prop_assert_eq!(r.text_id.as_deref(), Some(id.as_str()));
        }
    }

    /// The store's receipt match compares keys with `is_submit_key` instead of building them.
    #[test]
    fn is_submit_key_agrees_with_submit_key(id in "[ \\t\\x{0}0-9a-fA-FzZé]{0,70}", other in "[0-9a-fé]{0,8}") {
        let key = submit_key(IdRule::Same, &id);
        prop_assert!(is_submit_key(IdRule::Same, &id, &key));
        prop_assert_eq!(is_submit_key(IdRule::Same, &id, &other), key == other);
        let longer = format!("{key}0");
        prop_assert!(!is_submit_key(IdRule::Same, &id, &longer));
    }

    #[test]
    fn rules_round_trip(v in any::<u64>(), zeros in 0usize..4) {
        let hex = format!("{}{v:X}", "0".repeat(zeros));
        let dec = format!("{}{v}", "0".repeat(zeros));
        let rx = |s: &str| parse_receipt(format!("id:{s} stat:DELIVRD").as_bytes(), &ReceiptTlvs::default()).expect("parses");
        prop_assert_eq!(receipt_keys(IdRule::HexToDec, &rx(&dec)), vec![submit_key(IdRule::HexToDec, &hex)]);
        prop_assert_eq!(receipt_keys(IdRule::DecToHex, &rx(&hex)), vec![submit_key(IdRule::DecToHex, &dec)]);
    }
}
