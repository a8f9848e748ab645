//! Table tests: every code point of the GSM 03.38 default alphabet, its extension table and the
//! Turkish/Spanish/Portuguese shift tables, both directions. The expected tables are written out
//! here independently of `src/text/tables.rs` (from SMPP-FACTS §8 and 3GPP TS 23.038 Annex A as
//! published in Android's `GsmAlphabet`), so a wrong entry in either copy fails.

use smppd::text::{Gsm7Tables, NationalLanguage, Septets};

/// 128 characters per table, code order; `\u{1b}` marks the ESC slot.
const DEFAULT: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const TURKISH_LOCKING: &str = "@£$¥€éùıòÇ\nĞğ\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u{1b}ŞşßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
İABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§çabcdefghijklmnopqrstuvwxyzäöñüà";
const PORTUGUESE_LOCKING: &str = "@£$¥êéúíóç\nÔô\rÁáΔ_ªÇÀ∞^\\€Ó|\u{1b}ÂâÊÉ !\"#º%&'()*+,-./0123456789:;<=>?\
ÍABCDEFGHIJKLMNOPQRSTUVWXYZÃÕÚÜ§~abcdefghijklmnopqrstuvwxyzãõ`üà";

/// SMPP-FACTS §8.2.
const EXTENSION: &[(u8, char)] = &[
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];
/// SMPP-FACTS §8.7: what each single-shift table adds to the default extension characters.
const TURKISH_SINGLE_ADDS: &[(u8, char)] = &[
    (0x47, 'Ğ'),
    (0x49, 'İ'),
    (0x53, 'Ş'),
    (0x63, 'ç'),
    (0x67, 'ğ'),
    (0x69, 'ı'),
    (0x73, 'ş'),
];
const SPANISH_SINGLE_ADDS: &[(u8, char)] = &[
    (0x09, 'ç'),
    (0x41, 'Á'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x61, 'á'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
];
const PORTUGUESE_SINGLE_ADDS: &[(u8, char)] = &[
    (0x05, 'ê'),
    (0x09, 'ç'),
    (0x0B, 'Ô'),
    (0x0C, 'ô'),
    (0x0E, 'Á'),
    (0x0F, 'á'),
    (0x12, 'Φ'),
    (0x13, 'Γ'),
    (0x15, 'Ω'),
    (0x16, 'Π'),
    (0x17, 'Ψ'),
    (0x18, 'Σ'),
    (0x19, 'Θ'),
    (0x1F, 'Ê'),
    (0x41, 'À'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x5B, 'Ã'),
    (0x5C, 'Õ'),
    (0x61, 'Â'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
    (0x7B, 'ã'),
    (0x7C, 'õ'),
    (0x7F, 'â'),
];

fn chars(table: &str) -> Vec<char> {
    let v: Vec<char> = table.chars().collect();
    assert_eq!(v.len(), 128, "expected table must have 128 entries");
    v
}

fn check_locking(tables: Gsm7Tables, expected: &str) {
    for (code, &c) in chars(expected).iter().enumerate() {
        let code = code as u8;
        if code == 0x1B {
            assert_eq!(tables.decode_base(code), None, "ESC is not a character");
            continue;
        }
        assert_eq!(
            tables.decode_base(code),
            Some(c),
            "decode 0x{code:02X} in {tables:?}"
        );
        assert_eq!(
            tables.encode_char(c),
            Some(Septets::One(code)),
            "encode {c:?} in {tables:?}"
        );
    }
}

fn check_single(tables: Gsm7Tables, base: &str, adds: &[(u8, char)]) {
    let base = chars(base);
    let listed: Vec<(u8, char)> = EXTENSION.iter().chain(adds).copied().collect();
    for code in 0u8..0x80 {
        let entry = listed.iter().find(|(k, _)| *k == code).map(|&(_, c)| c);
        let decoded = tables.decode_escaped(code);
        match (code, entry) {
            (0x1B, _) => assert_eq!(decoded, Some(' '), "ESC ESC shows a space"),
            (_, Some(c)) => {
                assert_eq!(decoded, Some(c), "decode ESC 0x{code:02X} in {tables:?}");
                // A character also in the locking table is sent with one septet.
                let want = match base.iter().position(|&b| b == c) {
                    Some(i) if i != 0x1B => Septets::One(i as u8),
                    _ => Septets::Escaped(code),
                };
                assert_eq!(
                    tables.encode_char(c),
                    Some(want),
                    "encode {c:?} in {tables:?}"
                );
            }
            // Unlisted code after ESC shows the base-table character (GSM 03.38 note).
            (_, None) => assert_eq!(
                decoded,
                Some(base[usize::from(code)]),
                "fallback ESC 0x{code:02X}"
            ),
        }
    }
    for code in 0x80u8..=0xFF {
        assert_eq!(tables.decode_escaped(code), None);
        assert_eq!(tables.decode_base(code), None);
    }
}

fn tables(locking: Option<NationalLanguage>, single: Option<NationalLanguage>) -> Gsm7Tables {
    Gsm7Tables::new(locking, single).expect("valid table pair")
}

#[test]
fn default_alphabet_every_code_both_directions() {
    check_locking(Gsm7Tables::DEFAULT, DEFAULT);
}

#[test]
fn default_extension_table_every_code_both_directions() {
    check_single(Gsm7Tables::DEFAULT, DEFAULT, &[]);
}

#[test]
fn turkish_tables_every_code_both_directions() {
    check_locking(
        tables(Some(NationalLanguage::Turkish), None),
        TURKISH_LOCKING,
    );
    check_single(
        tables(None, Some(NationalLanguage::Turkish)),
        DEFAULT,
        TURKISH_SINGLE_ADDS,
    );
    // Locking and single shift together: the Turkish single shift over the Turkish base.
    check_single(
        tables(
            Some(NationalLanguage::Turkish),
            Some(NationalLanguage::Turkish),
        ),
        TURKISH_LOCKING,
        TURKISH_SINGLE_ADDS,
    );
}

#[test]
fn spanish_single_shift_every_code_both_directions() {
    check_single(
        tables(None, Some(NationalLanguage::Spanish)),
        DEFAULT,
        SPANISH_SINGLE_ADDS,
    );
    assert_eq!(
        Gsm7Tables::new(Some(NationalLanguage::Spanish), None),
        None,
        "Spanish has no locking-shift table"
    );
}

#[test]
fn portuguese_tables_every_code_both_directions() {
    check_locking(
        tables(Some(NationalLanguage::Portuguese), None),
        PORTUGUESE_LOCKING,
    );
    check_single(
        tables(None, Some(NationalLanguage::Portuguese)),
        DEFAULT,
        PORTUGUESE_SINGLE_ADDS,
    );
    check_single(
        tables(
            Some(NationalLanguage::Portuguese),
            Some(NationalLanguage::Portuguese),
        ),
        PORTUGUESE_LOCKING,
        PORTUGUESE_SINGLE_ADDS,
    );
}

#[test]
fn characters_outside_the_tables_are_not_encodable() {
    let t = Gsm7Tables::DEFAULT;
    // ` is absent; U+001B must never become ESC (smpplib deviation, SMPP-FACTS §10).
    for c in ['`', '\u{1B}', 'ç', 'ж', '😀', 'Α', '\u{0}', '\t'] {
        assert_eq!(t.encode_char(c), None, "{c:?}");
    }
    // Characters that look like ASCII but sit elsewhere.
    assert_eq!(t.encode_char('@'), Some(Septets::One(0x00)));
    assert_eq!(t.encode_char('$'), Some(Septets::One(0x02)));
    assert_eq!(t.encode_char('_'), Some(Septets::One(0x11)));
    assert_eq!(t.encode_char('§'), Some(Septets::One(0x5F)));
    assert_eq!(t.encode_char('€'), Some(Septets::Escaped(0x65)));
}

#[test]
fn decoding_is_total() {
    let mut out = String::new();
    let warnings = Gsm7Tables::DEFAULT.decode_into(&[0x48, 0x80, 0xFF, 0x69, 0x1B], &mut out);
    assert_eq!(out, "H\u{FFFD}\u{FFFD}i\u{FFFD}");
    assert_eq!(warnings, 3);
    let mut out = String::new();
    assert_eq!(
        Gsm7Tables::DEFAULT.decode_into(&[0x1B, 0x65, 0x1B, 0x1B, 0x1B, 0x41], &mut out),
        0
    );
    assert_eq!(out, "€ A", "ESC ESC is a space, unlisted ESC 0x41 shows A");
}
