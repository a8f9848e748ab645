//! The `config` fuzz target's property, shared by `fuzz/fuzz_targets/config.rs` (nightly,
//! libFuzzer) and `tests/fuzz_regressions.rs` (stable replay): `Config::parse` (TOML text to the
//! validated configuration, what `smppd run` and `check-config` use) on arbitrary text.
//!
//! - it never panics and is deterministic;
//! - an error names a real place (line within the text, column ≥ 1) and a key, and renders as
//!   `origin:line:column: key: message` on one line;
//! - an accepted configuration keeps every rule the rest of the daemon relies on (loopback or
//!   token, known SMSC names in routes, unique names, ranges, no shadowed route).

use std::path::Path;

use smppd::config::{Config, ListenAddr};

const ORIGIN: &str = "fuzz.toml";

fn assert_valid(c: &Config) {
    if let ListenAddr::Tcp(a) = &c.listen.submit {
        assert!(
            a.ip().is_loopback() || c.listen.token.is_some(),
            "{a} accepted without a token"
        );
    }
    if let Some(t) = &c.listen.token {
        assert!(t.expose().len() >= 16);
    }
    assert!((1..=100_000).contains(&c.listen.max_connections));
    for (i, s) in c.smscs.iter().enumerate() {
        assert!(
            c.smscs[..i].iter().all(|o| o.name != s.name),
            "duplicate {}",
            s.name
        );
        assert!(!s.name.is_empty() && s.name.len() <= 64);
        assert!(s.port > 0 && !s.host.is_empty());
        assert!(!s.system_id.is_empty() && s.system_id.len() <= 15 && s.system_id.is_ascii());
        assert!(s.password.expose().len() <= 8 && s.password.expose().is_ascii());
        assert!(s.system_type.len() <= 12);
        assert!((1..=64).contains(&s.binds) && (1..=10_000).contains(&s.window));
        assert!(s.tps.is_none_or(|t| (1..=1_000_000).contains(&t)));
        assert!(s.max_parts >= 1);
        assert!(s.reconnect_min <= s.reconnect_max);
        for d in [s.enquire_link, s.response_timeout, s.reconnect_min] {
            assert!(d.as_millis() >= 100);
        }
        // The password never shows in debug output (a password of a few characters may occur
        // by chance elsewhere, so only longer ones are checked).
        let pw = s.password.expose();
        if pw.len() >= 6 && !ORIGIN.contains(pw) {
            let others = format!("{:?}", (&s.name, &s.host, &s.system_id, &s.system_type));
            if !others.contains(pw) && !format!("{:?}", s.tls).contains(pw) {
                assert!(!format!("{s:?}").contains(pw), "password in Debug output");
            }
        }
    }
    assert!(c.smscs.is_empty() || !c.routes.is_empty());
    for (i, r) in c.routes.iter().enumerate() {
        assert!(c.routes[..i].iter().all(|o| o.name != r.name));
        assert!(
            c.routes[..i].iter().all(|o| !o.is_catch_all()),
            "route {} after a catch-all",
            r.name
        );
        assert!(!r.smsc.is_empty());
        for (j, s) in r.smsc.iter().enumerate() {
            assert!(
                c.smsc(s).is_some(),
                "route {} names unknown SMSC {s}",
                r.name
            );
            assert!(!r.smsc[..j].contains(s));
        }
        for p in &r.prefix {
            let d = p.strip_prefix('+').expect("prefix with +");
            assert!(!d.is_empty() && d.len() <= 15 && d.bytes().all(|b| b.is_ascii_digit()));
        }
        assert!(r.tps.is_none_or(|t| t >= 1) && r.burst >= 1);
    }
    for (i, s) in c.simulators.iter().enumerate() {
        assert!(s.listen.ip().is_loopback());
        assert!(c.simulators[..i].iter().all(|o| o.name != s.name));
    }
    for k in c.optout.stop.iter().chain(&c.optout.start) {
        assert!(!k.is_empty() && !k.chars().any(char::is_whitespace));
    }
    assert!(c.optout.stop.iter().all(|k| !c.optout.start.contains(k)));
}

pub fn check(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    // A base directory that does not exist: TLS file references are refused, never read.
    let base = Path::new("/nonexistent/smppd-fuzz");
    let result = Config::parse(&text, ORIGIN, base);
    assert_eq!(
        result,
        Config::parse(&text, ORIGIN, base),
        "not deterministic"
    );
    match result {
        Ok(c) => assert_valid(&c),
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&e.line),
                "line {} of {lines}: {e}",
                e.line
            );
            let line_len = text
                .split('\n')
                .nth(e.line - 1)
                .map_or(0, |l| l.chars().count());
            assert!(
                (1..=line_len + 1).contains(&e.column),
                "column {} on a line of {line_len}: {e}",
                e.column
            );
            assert!(!e.key.is_empty() && !e.message.is_empty(), "{e:?}");
            let shown = e.to_string();
            let prefix = format!("{ORIGIN}:{}:{}: {}: ", e.line, e.column, e.key);
            assert!(shown.starts_with(&prefix), "{shown}");
            assert!(!shown.contains('\n'), "error over several lines: {shown:?}");
            assert!(!e.message.trim().is_empty());
        }
    }
}
