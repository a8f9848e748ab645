//! The `receipt` fuzz target's property, shared by `fuzz/fuzz_targets/receipt.rs` (nightly,
//! libFuzzer) and `tests/fuzz_regressions.rs` (stable replay): the receipt parser and the id
//! normalization rules of `smppd::receipt` on arbitrary bytes and TLVs.
//!
//! Input layout: byte 0 flags (bit 0: `receipted_message_id` present, bit 1: `message_state`
//! present, bit 2: `network_error_code` present; bits 3-4: the [`IdRule`]), byte 1 the TLV id's
//! length, then the TLV id bytes, 1 byte `message_state`, 3 bytes `network_error_code`, and the
//! rest is the receipt text. Missing bytes read as absent.

use smppd::receipt::{
    self, IdRule, MAX_ID_LEN, ReceiptDate, ReceiptError, ReceiptTlvs, Stat, canonical_id,
    parse_receipt, receipt_keys, submit_key,
};

/// A canonical key: what `canonical_id` promises about its output.
fn assert_canonical(key: &str, from: &str) {
    assert_eq!(
        canonical_id(key),
        key,
        "canonical_id is not idempotent on {from:?}"
    );
    assert!(key.chars().count() <= MAX_ID_LEN, "key {key:?} too long");
    assert!(
        !key.chars().any(|c| c.is_ascii_uppercase()),
        "key {key:?} has upper case"
    );
    assert!(
        key == "0" || !key.starts_with('0'),
        "key {key:?} has a leading zero"
    );
    assert_eq!(
        key.trim_matches(|c: char| c == '\0' || c.is_whitespace()),
        key,
        "key {key:?} is not trimmed"
    );
}

fn rule_of(bits: u8) -> IdRule {
    match bits % 3 {
        0 => IdRule::Same,
        1 => IdRule::HexToDec,
        _ => IdRule::DecToHex,
    }
}

pub fn check(input: &[u8]) {
    let mut rest = input;
    let mut take = |n: usize| -> Option<&[u8]> {
        let n = n.min(rest.len());
        let (a, b) = rest.split_at(n);
        rest = b;
        (!a.is_empty()).then_some(a)
    };
    let flags = take(1).map_or(0, |b| b[0]);
    let id_len = take(1).map_or(0, |b| usize::from(b[0]));
    let tlv_id_bytes = take(id_len).unwrap_or_default();
    let state = take(1).map(|b| b[0]);
    let nec = take(3).filter(|b| b.len() == 3).map(|b| [b[0], b[1], b[2]]);
    let text = rest;

    let tlv_id_text = String::from_utf8_lossy(tlv_id_bytes).into_owned();
    let tlvs = ReceiptTlvs {
        receipted_message_id: (flags & 1 != 0).then_some(tlv_id_text.as_str()),
        message_state: if flags & 2 != 0 { state } else { None },
        network_error_code: if flags & 4 != 0 { nec } else { None },
    };
    let rule = rule_of(flags >> 3);

    // Normalization on arbitrary strings.
    let raw = String::from_utf8_lossy(text);
    for s in [raw.as_ref(), tlv_id_text.as_str()] {
        let key = canonical_id(s);
        assert_canonical(&key, s);
        assert_eq!(submit_key(rule, s), key);
    }

    let parsed = parse_receipt(text, &tlvs);
    assert_eq!(
        parsed,
        parse_receipt(text, &tlvs),
        "parsing is not deterministic"
    );
    let r = match parsed {
        Err(ReceiptError::NoId) => {
            let tlv_blank = tlvs.receipted_message_id.is_none_or(|s| {
                s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                    .is_empty()
            });
            assert!(
                tlv_blank,
                "NoId although receipted_message_id is {:?}",
                tlvs.receipted_message_id
            );
            return;
        }
        Ok(r) => r,
    };

    // Ids: present, bounded, the TLV preferred.
    assert!(!r.id.is_empty());
    assert!(r.id.chars().count() <= MAX_ID_LEN);
    match &r.tlv_id {
        Some(t) => {
            assert_eq!(&r.id, t, "the TLV id must win");
            assert!(t.chars().count() <= MAX_ID_LEN);
        }
        None => assert_eq!(Some(&r.id), r.text_id.as_ref()),
    }
    if let Some(t) = &r.text_id {
        assert!(!t.is_empty() && t.chars().count() <= MAX_ID_LEN);
        assert!(
            !t.chars().any(char::is_whitespace),
            "text id {t:?} has whitespace"
        );
        assert!(
            !t.starts_with('\0') && !t.ends_with('\0'),
            "text id {t:?} is padded"
        );
    }

    // Stat: the TLV wins when it is a defined value; text round-trips; the provider's word is
    // kept only as another spelling of the stat applied.
    if let Some(s) = tlvs.message_state.and_then(Stat::from_message_state) {
        assert_eq!(r.stat, s);
    }
    assert_eq!(Stat::from_text(r.stat.as_str()), r.stat);
    if let Some(t) = &r.stat_text {
        assert_eq!(Stat::from_text(t), r.stat, "stat_text {t:?}");
        assert!(!t.eq_ignore_ascii_case(r.stat.as_str()), "stat_text {t:?}");
        assert!(!t.is_empty() && t.chars().count() <= 64);
    }
    // Final outcome is a function of the stat: intermediate only for ENROUTE (and its
    // synonyms) and ACCEPTD unless final; never delivered but for DELIVRD.
    for acc in [
        receipt::AcceptedIs::Final,
        receipt::AcceptedIs::Intermediate,
    ] {
        let o = receipt::final_outcome(r.stat, acc);
        let intermediate = r.stat == Stat::Enroute
            || (r.stat == Stat::Accepted && acc == receipt::AcceptedIs::Intermediate);
        assert_eq!(o.is_none(), intermediate, "{:?} {acc:?}", r.stat);
        assert_eq!(
            o == Some(receipt::Outcome::Delivered),
            r.stat == Stat::Delivered,
            "{:?} {acc:?}",
            r.stat
        );
    }

    // Error code: the TLV's code when present, else a decimal `err:`.
    match (r.network_error, &r.err) {
        (Some(n), _) => assert_eq!(r.err_code, Some(u32::from(n.code))),
        (None, Some(e)) => {
            let digits = !e.is_empty() && e.len() <= 9 && e.bytes().all(|c| c.is_ascii_digit());
            assert_eq!(r.err_code, digits.then(|| e.parse().expect("digits")));
        }
        (None, None) => assert_eq!(r.err_code, None),
    }
    if let Some(n) = r.network_error {
        let b = tlvs.network_error_code.expect("network error from the TLV");
        assert_eq!(
            (n.network_type, n.code),
            (b[0], u16::from_be_bytes([b[1], b[2]]))
        );
    }
    for count in [r.sub, r.dlvrd].into_iter().flatten() {
        assert!(count <= 999_999_999);
    }
    if let Some(t) = &r.text {
        assert!(!t.is_empty() && t.chars().count() <= 160);
    }
    // Dates are valid and survive the store's number form.
    for d in [r.submit_date, r.done_date].into_iter().flatten() {
        assert!((1..=12).contains(&d.month) && (1..=31).contains(&d.day));
        assert!(d.hour < 24 && d.minute < 60 && d.second < 61);
        assert_eq!(ReceiptDate::from_number(d.as_number()), d);
        let digits = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            d.year, d.month, d.day, d.hour, d.minute, d.second
        );
        assert_eq!(ReceiptDate::parse(&digits), Some(d));
    }

    // Keys: one or two, distinct, canonical; the TLV's key first.
    let keys = receipt_keys(rule, &r);
    assert!((1..=2).contains(&keys.len()), "{keys:?}");
    if keys.len() == 2 {
        assert_ne!(keys[0], keys[1]);
    }
    for k in &keys {
        assert_canonical(k, k);
        assert!(!k.is_empty(), "empty key for {r:?}");
    }
    if let Some(t) = &r.tlv_id {
        assert_eq!(keys[0], canonical_id(t));
    }

    // Matching: a receipt carrying the submit id in the TLV, or in the text in the base the
    // rule names, finds the part stored under `submit_key`.
    let submit_id = r.id.as_str();
    let stored = submit_key(rule, submit_id);
    let via_tlv = ReceiptTlvs {
        receipted_message_id: Some(submit_id),
        ..ReceiptTlvs::default()
    };
    let again = parse_receipt(b"stat:DELIVRD", &via_tlv).expect("an id was given");
    assert!(receipt_keys(rule, &again).contains(&stored));
    let token: String = submit_id.chars().filter(|c| !c.is_whitespace()).collect();
    let text_form = match rule {
        IdRule::Same => Some(token.clone()),
        IdRule::HexToDec => {
            let digits = token.trim_start_matches('0');
            let hex = !token.is_empty() && token.bytes().all(|c| c.is_ascii_hexdigit());
            (hex && digits.len() <= 32).then(|| {
                u128::from_str_radix(digits, 16)
                    .map_or(0, |v| v)
                    .to_string()
            })
        }
        IdRule::DecToHex => {
            let dec = !token.is_empty() && token.bytes().all(|c| c.is_ascii_digit());
            (dec && token.len() <= 38)
                .then(|| token.parse::<u128>().ok().map(|v| format!("{v:X}")))
                .flatten()
        }
    };
    if let Some(t) = text_form.filter(|t| !t.is_empty()) {
        let line = format!("id:{t} sub:001 dlvrd:001 stat:DELIVRD err:000 text:x");
        let from_text = parse_receipt(line.as_bytes(), &ReceiptTlvs::default()).expect("id");
        assert!(
            receipt_keys(rule, &from_text).contains(&submit_key(rule, &token)),
            "{rule:?}: receipt text {line:?} does not find the part stored under {:?}",
            submit_key(rule, &token)
        );
    }
}
