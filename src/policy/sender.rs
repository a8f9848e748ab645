//! Senders that belong together (`[[sender]]`), and the opt-out scope of a sender.
//!
//! An opt-out follows the sender it was addressed to: an MO stop keyword sent to a short code
//! or number opts the subscriber out of that address and of every alphanumeric sender
//! configured as belonging with it. The scope is the group's address; a sender in no group is
//! its own scope. Owns how addresses are compared ([`normalize`]) and the scope of a sender.
//! Must never do I/O or decide what an opt-out does (the store keeps them, the daemon checks).

/// One `[[sender]]`: the address MOs arrive on and the senders that belong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderGroup {
    /// The short code or number (normalized): the scope of the group's opt-outs.
    pub address: String,
    /// Alphanumeric (or other) senders that belong with it (normalized).
    pub aliases: Vec<String>,
}

/// The form addresses are compared and stored in: a number (digits with an optional leading
/// `+`, as an MO's destination or an international sender is written) as its digits; any other
/// sender upper-cased ("AcmeNews" and "ACMENEWS" are one sender to a subscriber), trimmed.
pub fn normalize(address: &str) -> String {
    let a = address.trim();
    let digits = a.strip_prefix('+').unwrap_or(a);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.to_owned()
    } else {
        a.to_uppercase()
    }
}

/// The opt-out scope of `sender`: its group's address, or the sender itself (normalized).
pub fn scope_of(groups: &[SenderGroup], sender: &str) -> String {
    let s = normalize(sender);
    groups
        .iter()
        .find(|g| g.address == s || g.aliases.contains(&s))
        .map_or(s, |g| g.address.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_takes_its_groups_scope() {
        let groups = [SenderGroup {
            address: "72000".into(),
            aliases: vec!["ACME".into(), "ACMENEWS".into()],
        }];
        assert_eq!(scope_of(&groups, "72000"), "72000");
        assert_eq!(scope_of(&groups, "Acme"), "72000");
        assert_eq!(scope_of(&groups, "AcmeNews"), "72000");
        assert_eq!(scope_of(&groups, "Other"), "OTHER");
        assert_eq!(scope_of(&groups, "+46700000001"), "46700000001");
        assert_eq!(scope_of(&[], " 72000 "), "72000");
    }
}
