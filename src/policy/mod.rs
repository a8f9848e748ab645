//! Marketing policy (issue #19): send windows, frequency caps, opt-out keywords and footer,
//! clean numbers, as pure decisions.
//!
//! Owns the rules and their data: [`window`] (quiet hours, DST-correct, intersection over a
//! country's zones), [`zones`] (number → country → IANA zones, from the IANA tables),
//! [`number`] (possible / mobile numbers from libphonenumber's metadata), [`keyword`]
//! (first-word matching of MO replies), [`cap`] (frequency caps), [`sender`] (the opt-out
//! scope of a sender) and [`footer`]. The configuration layer builds a [`Policy`] from
//! `[[window]]`, `[[cap]]`, `[[sender]]` and `[marketing]`.
//!
//! Must never do I/O, read a clock, touch the store or use tokio: time and history are
//! parameters, and every decision is tested without sockets. Wiring the decisions into the
//! accept path is the daemon's job.

pub mod cap;
pub mod footer;
pub mod keyword;
pub mod number;
pub mod sender;
pub mod window;
pub mod zones;

pub use crate::store::MessageClass as Class;
pub use cap::Cap;
pub use sender::SenderGroup;
pub use window::{AllowRule, Decision, Window};

/// The whole validated policy: what `[[window]]`, `[[cap]]`, `[[sender]]` and `[marketing]`
/// say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    pub windows: Vec<Window>,
    pub caps: Vec<Cap>,
    /// Senders that belong together for opt-out (`[[sender]]`).
    pub senders: Vec<SenderGroup>,
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
    /// keyword (the sender's `stop_keywords` or a global one); without a footer, the text as
    /// it is, or `MissingOptout` when `require_optout` is set and it has none.
    pub fn text<'t, K: AsRef<str>>(
        &self,
        text: &'t str,
        stop_keywords: &[K],
    ) -> Result<std::borrow::Cow<'t, str>, MissingOptout> {
        let keywords: Vec<&str> = stop_keywords
            .iter()
            .map(AsRef::as_ref)
            .chain(self.global_stop.iter().map(String::as_str))
            .collect();
        match &self.footer {
            Some(f) => Ok(footer::with_footer(text, f, &keywords)),
            None if self.require_optout && !keyword::contains_keyword(text, &keywords) => {
                Err(MissingOptout {
                    keywords: keywords.join(", "),
                })
            }
            None => Ok(std::borrow::Cow::Borrowed(text)),
        }
    }
}

/// What an MO reply asks for, by its first word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReply<'k> {
    /// A `global_stop` keyword: opt out of every sender.
    All(&'k str),
    /// A stop keyword (`optout.stop`): opt out of the sender replied to.
    Sender(&'k str),
}

impl Policy {
    /// Whether an MO text's first word is a stop keyword; a global one wins over a sender's.
    pub fn stop_reply<'k>(
        &'k self,
        text: &str,
        sender_stop: &'k [String],
    ) -> Option<StopReply<'k>> {
        let global = keyword::first_word_matches(text, &self.marketing.global_stop);
        match global {
            Some(k) => Some(StopReply::All(k)),
            None => keyword::first_word_matches(text, sender_stop).map(|k| StopReply::Sender(k)),
        }
    }

    /// The opt-out scope of a sender address: its `[[sender]]` group's address, or itself.
    pub fn optout_scope(&self, sender: &str) -> String {
        sender::scope_of(&self.senders, sender)
    }

    /// `Ok` when every cap that applies to a message of `class` to `recipient` with `tags`
    /// allows one more accept at `now_ms`; otherwise the millisecond when all of them would
    /// (the latest of the caps' answers). `history(cap, scope)` gives the accept times of a
    /// cap's scope ([`Cap::scope`]).
    pub fn cap_check(
        &self,
        class: Class,
        recipient: &str,
        tags: &std::collections::BTreeMap<String, String>,
        mut history: impl FnMut(&Cap, &str) -> Vec<i64>,
        now_ms: i64,
    ) -> Result<(), i64> {
        let refusals = self.caps.iter().filter_map(|cap| {
            let scope = cap.scope(class, recipient, tags)?;
            cap::allowed_at(cap, &history(cap, &scope), now_ms).err()
        });
        refusals.max().map_or(Ok(()), Err)
    }

    /// The send-window decision for a message of `class` to `dest` (E.164) at `now`, with the
    /// destination's zones looked up from its number.
    pub fn window_decision(
        &self,
        dest: &str,
        class: Class,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Decision {
        // Most messages meet no window (transactional traffic, other countries): they must not
        // pay for the number → country → zones lookup (libphonenumber's patterns).
        if !self.windows.iter().any(|w| w.applies(class, dest)) {
            return Decision::SendNow;
        }
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
    fn stop_replies_global_first() {
        let p = Policy::default();
        let stop = vec!["STOP".to_owned(), "STOPP".to_owned()];
        assert_eq!(
            p.stop_reply("Stopall!", &stop),
            Some(StopReply::All("STOPALL"))
        );
        assert_eq!(
            p.stop_reply("stopp tack", &stop),
            Some(StopReply::Sender("STOPP"))
        );
        assert_eq!(p.stop_reply("hej", &stop), None);
    }

    #[test]
    fn the_latest_cap_decides() {
        use std::time::Duration;
        let day: i64 = 86_400_000;
        let cap = |max, days: u64, tag: Option<&str>| Cap {
            class: Class::Marketing,
            max,
            per: Duration::from_secs(days * 86_400),
            tag: tag.map(str::to_owned),
        };
        let p = Policy {
            caps: vec![
                cap(1, 1, None),
                cap(3, 7, None),
                cap(1, 30, Some("campaign")),
            ],
            ..Policy::default()
        };
        let sent = [day, 2 * day, 3 * day];
        let none = std::collections::BTreeMap::new();
        let all = |_: &Cap, _: &str| sent.to_vec();
        // The daily cap frees at 4d, the weekly one at 8d: 8d.
        assert_eq!(
            p.cap_check(Class::Marketing, "+4670", &none, all, 3 * day + 1),
            Err(8 * day)
        );
        assert_eq!(
            p.cap_check(Class::Marketing, "+4670", &none, all, 8 * day),
            Ok(())
        );
        assert_eq!(
            p.cap_check(Class::Transactional, "+4670", &none, all, 3 * day),
            Ok(())
        );
        // With the tag, the campaign cap counts the campaign's own history (scope has the tag).
        let tags = [("campaign".to_owned(), "xmas".to_owned())].into();
        let per_scope = |_: &Cap, scope: &str| {
            if scope.contains("xmas") {
                vec![2 * day]
            } else {
                Vec::new()
            }
        };
        assert_eq!(
            p.cap_check(Class::Marketing, "+4670", &tags, per_scope, 3 * day),
            Err(32 * day)
        );
    }

    #[test]
    fn marketing_text_footer_or_refusal() {
        let stop = ["STOP", "STOPP"];
        let mut m = Marketing::default();
        assert_eq!(m.text("Rea!", &stop).unwrap(), "Rea!");
        m.require_optout = true;
        let e = m.text("Rea!", &stop).unwrap_err();
        assert!(e.to_string().contains("STOP, STOPP, STOPALL"), "{e}");
        assert_eq!(m.text("Rea! STOPALL?", &stop).unwrap(), "Rea! STOPALL?");
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
