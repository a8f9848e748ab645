//! The opt-out footer of marketing texts.
//!
//! Owns when a footer is appended: with a newline, only to a text that does not already
//! contain a stop keyword as a word (so "…reply STOP to end" is left alone and appending is
//! idempotent when the footer names a keyword). Must never change the text otherwise, and
//! never decide whether the message is marketing (the caller does).

use std::borrow::Cow;

use super::keyword::contains_keyword;

/// The text to send: `text` unchanged when it contains a stop keyword (or the footer is
/// empty), otherwise `text + "\n" + footer`.
pub fn with_footer<'t, K: AsRef<str>>(
    text: &'t str,
    footer: &str,
    stop_keywords: &[K],
) -> Cow<'t, str> {
    if footer.is_empty() || contains_keyword(text, stop_keywords) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{text}\n{footer}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP: &[&str] = &["STOP", "STOPP"];
    const FOOTER: &str = "Svara STOPP för att avsluta";

    #[test]
    fn a_text_without_a_keyword_gets_the_footer() {
        let out = with_footer("Rea på allt i helgen!", FOOTER, STOP);
        assert_eq!(out, "Rea på allt i helgen!\nSvara STOPP för att avsluta");
        assert!(matches!(out, Cow::Owned(_)));
    }

    #[test]
    fn a_text_with_a_keyword_is_left_alone() {
        let text = "Rea! Svara stopp för att avsluta";
        assert!(matches!(with_footer(text, FOOTER, STOP), Cow::Borrowed(t) if t == text));
        assert_eq!(
            with_footer("Sale. Reply STOP!", FOOTER, STOP),
            "Sale. Reply STOP!"
        );
    }

    #[test]
    fn a_keyword_inside_a_longer_word_does_not_count() {
        assert_eq!(
            with_footer("Unstoppable deals", FOOTER, STOP),
            "Unstoppable deals\nSvara STOPP för att avsluta"
        );
    }

    #[test]
    fn appending_is_idempotent_and_an_empty_footer_does_nothing() {
        let once = with_footer("Hej", FOOTER, STOP).into_owned();
        assert_eq!(with_footer(&once, FOOTER, STOP), once.as_str());
        assert_eq!(with_footer("Hej", "", STOP), "Hej");
    }
}
