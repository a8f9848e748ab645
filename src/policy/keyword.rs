//! Opt-out keywords in MO replies: does a reply's first word equal a keyword?
//!
//! Owns how a word is compared ([`normalize`]) and what the first word of a reply is. Must
//! never decide what a match does (opt-out bookkeeping is the store's and the daemon's) and
//! never do I/O.
//!
//! Real replies look like "Stopp tack", "STOP!", "stop please", "  stop". The first word is
//! the first Unicode word of the text (UAX #29 word boundaries, so surrounding punctuation
//! and spaces are not part of it), and it must equal a keyword as a whole: "STOPPA" does not
//! match `STOPP`. Words are compared after:
//! - canonical decomposition (NFD) and removal of every combining mark, so diacritics are
//!   ignored: "Stöpp" and "STÖPP" match `STOPP` (a subscriber who types an umlaut by
//!   mistake still means stop; no real keyword differs from another only by a diacritic);
//! - removal of anything that is not a letter or a digit (an apostrophe inside a word);
//! - upper-casing (full Unicode case mapping).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_segmentation::UnicodeSegmentation;

/// The form a word is compared in: no diacritics, no punctuation, upper case.
pub fn normalize(word: &str) -> String {
    word.nfd()
        .filter(|c| !is_combining_mark(*c) && c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The first word of a text, normalized; `None` when the text has no word.
pub fn first_word(text: &str) -> Option<String> {
    text.unicode_words().map(normalize).find(|w| !w.is_empty())
}

/// Every word of a text, normalized (for checking that a configured keyword is one word).
pub fn words(text: &str) -> Vec<String> {
    text.unicode_words()
        .map(normalize)
        .filter(|w| !w.is_empty())
        .collect()
}

/// The keyword the text's first word equals, if any (`keywords` as configured; they are
/// normalized the same way before comparing).
pub fn first_word_matches<'k, K: AsRef<str>>(text: &str, keywords: &'k [K]) -> Option<&'k K> {
    let word = first_word(text)?;
    keywords.iter().find(|k| normalize(k.as_ref()) == word)
}

/// Whether any word of the text equals one of the keywords (for footers and `require_optout`:
/// a text that already says "reply STOP").
pub fn contains_keyword<K: AsRef<str>>(text: &str, keywords: &[K]) -> bool {
    let keywords: Vec<String> = keywords.iter().map(|k| normalize(k.as_ref())).collect();
    text.unicode_words()
        .map(normalize)
        .any(|w| !w.is_empty() && keywords.contains(&w))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP: &[&str] = &["STOP", "STOPP", "AVSLUTA"];

    fn first(text: &str) -> Option<&'static str> {
        first_word_matches(text, STOP).copied()
    }

    #[test]
    fn real_replies_match_on_their_first_word() {
        assert_eq!(first("Stopp tack"), Some("STOPP"));
        assert_eq!(first("STOP!"), Some("STOP"));
        assert_eq!(first("stop please"), Some("STOP"));
        assert_eq!(first("  stop"), Some("STOP"));
        assert_eq!(first("\n\tStop.\n"), Some("STOP"));
        assert_eq!(first("¡stop!"), Some("STOP"));
        assert_eq!(first("stop,please"), Some("STOP"));
        assert_eq!(first("Avsluta"), Some("AVSLUTA"));
    }

    #[test]
    fn the_whole_first_word_must_equal() {
        assert_eq!(first("STOPPA"), None);
        assert_eq!(first("STO"), None);
        assert_eq!(first("unstop"), None);
        assert_eq!(first("please stop"), None);
        assert_eq!(first(""), None);
        assert_eq!(first("!!! ..."), None);
    }

    #[test]
    fn diacritics_are_ignored() {
        assert_eq!(first("Stöpp"), Some("STOPP"));
        assert_eq!(first("STÖPP"), Some("STOPP"));
        // Decomposed input (o + combining diaeresis) too.
        assert_eq!(first("Sto\u{308}pp"), Some("STOPP"));
        assert_eq!(normalize("Ångra"), "ANGRA");
        // Keywords are normalized as well.
        assert_eq!(first_word_matches("angra", &["Ångra"]), Some(&"Ångra"));
    }

    #[test]
    fn contains_keyword_looks_at_every_word() {
        assert!(contains_keyword("Rea! Svara STOPP för att avsluta", STOP));
        assert!(contains_keyword("Sale today. Reply stop to end", STOP));
        assert!(!contains_keyword("Unstoppable deals", STOP));
        assert!(!contains_keyword("", STOP));
        assert_eq!(words(" Stopp, alla! "), ["STOPP", "ALLA"]);
    }
}
