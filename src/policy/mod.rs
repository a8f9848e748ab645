//! Marketing policy (issue #19): send windows, frequency caps, opt-out keywords and footer,
//! clean numbers, as pure decisions.
//!
//! Owns the rules and their data: [`window`] (quiet hours, DST-correct, intersection over a
//! country's zones), [`zones`] (number → country → IANA zones, from the IANA tables),
//! [`number`] (possible / mobile numbers from libphonenumber's metadata), [`keyword`]
//! (first-word matching of MO replies), [`cap`] (frequency caps) and [`footer`]. The
//! configuration layer builds a [`Policy`] from `[[window]]`, `[[cap]]` and `[marketing]`.
//!
//! Must never do I/O, read a clock, touch the store or use tokio: time and history are
//! parameters, and every decision is tested without sockets. Wiring the decisions into the
//! accept path is the daemon's job.

pub mod cap;
pub mod footer;
pub mod keyword;
pub mod number;
pub mod window;
pub mod zones;

pub use crate::store::MessageClass as Class;
pub use cap::Cap;
pub use window::{AllowRule, Decision, Window};

/// The whole validated policy: what `[[window]]`, `[[cap]]` and `[marketing]` say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    pub windows: Vec<Window>,
    pub caps: Vec<Cap>,
    pub marketing: Marketing,
}

/// `[marketing]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marketing {
    /// Appended (with a newline) to a marketing text that contains no stop keyword.
    pub footer: Option<String>,
    /// Without a footer: refuse marketing texts with no stop keyword (`missing_optout`).
    pub require_optout: bool,
    /// Keywords that opt a subscriber out of every sender.
    pub global_stop: Vec<String>,
}

impl Default for Marketing {
    fn default() -> Self {
        Marketing {
            footer: None,
            require_optout: false,
            global_stop: vec!["STOPALL".into()],
        }
    }
}

/// A marketing text refused because it gives no way to opt out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing_optout: a marketing text must contain a stop keyword ({keywords})")]
pub struct MissingOptout {
    /// The stop keywords, comma-separated, for the client's error message.
    pub keywords: String,
}

impl Marketing {
    /// The text a marketing message is sent with: the footer appended when it has no stop
    /// keyword; without a footer, the text as it is, or `MissingOptout` when
    /// `require_optout` is set and it has none.
    pub fn text<'t, K: AsRef<str>>(
        &self,
        text: &'t str,
        stop_keywords: &[K],
    ) -> Result<std::borrow::Cow<'t, str>, MissingOptout> {
        match &self.footer {
            Some(f) => Ok(footer::with_footer(text, f, stop_keywords)),
            None if self.require_optout && !keyword::contains_keyword(text, stop_keywords) => {
                Err(MissingOptout {
                    keywords: stop_keywords
                        .iter()
                        .map(|k| k.as_ref())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
            None => Ok(std::borrow::Cow::Borrowed(text)),
        }
    }
}

impl Policy {
    /// The send-window decision for a message of `class` to `dest` (E.164) at `now`, with the
    /// destination's zones looked up from its number.
    pub fn window_decision(
        &self,
        dest: &str,
        class: Class,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Decision {
        window::decide(
            &self.windows,
            dest,
            zones::zones_of_number(dest),
            class,
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marketing_text_footer_or_refusal() {
        let stop = ["STOP", "STOPP"];
        let mut m = Marketing::default();
        assert_eq!(m.text("Rea!", &stop).unwrap(), "Rea!");
        m.require_optout = true;
        let e = m.text("Rea!", &stop).unwrap_err();
        assert!(e.to_string().contains("STOP, STOPP"), "{e}");
        assert_eq!(
            m.text("Rea! Svara STOPP", &stop).unwrap(),
            "Rea! Svara STOPP"
        );
        m.footer = Some("Svara STOPP för att avsluta".into());
        assert_eq!(
            m.text("Rea!", &stop).unwrap(),
            "Rea!\nSvara STOPP för att avsluta"
        );
    }
}
