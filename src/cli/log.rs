//! Where and how the binary's log lines are written: stderr, coloured only for a person.
//!
//! Colour (ANSI escape sequences) is for a terminal. Under systemd, with stderr redirected to a
//! file or piped into a collector, every escape would land in journald or the file as junk, so
//! colour needs stderr to be a terminal and `NO_COLOR` (<https://no-color.org>) to be unset or
//! empty.

use std::io::IsTerminal;

/// Whether log lines written to stderr get ANSI colours.
pub fn colour_on_stderr() -> bool {
    colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// The rule itself: a terminal, and no non-empty `NO_COLOR`.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
