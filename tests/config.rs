//! The configuration file through its public interfaces: `Config::parse`/`load` and
//! `smppd check-config`. Every error must name the key and the line.

use std::path::Path;
use std::process::Command;

use smppd::config::{BindMode, Config, ConfigError, ListenAddr, SplitMethod, ValidityFormat};

const BASE: &str = r#"[listen]
submit = "127.0.0.1:2776"

[[smsc]]
name = "op-a"
address = "127.0.0.1:2775"
system_id = "smppd"
password = "secret"

[[route]]
name = "default"
smsc = ["op-a"]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "t.toml", Path::new("."))
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

/// The 1-based line on which `needle` first appears in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
}

#[test]
fn every_shipped_config_parses() {
    let mut n = 0;
    for entry in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/conf")).expect("conf/ exists")
    {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            // The production example names TLS files under /etc/smppd; provide them in a
            // temporary directory so that only the file's own content is under test.
            let text = std::fs::read_to_string(&path).expect("readable");
            let dir = tempfile::tempdir().expect("tempdir");
            let etc = dir.path().to_string_lossy().to_string() + "/";
            for file in ["telia-ca.pem", "client.pem", "client.key", "pgpass"] {
                std::fs::write(dir.path().join(file), "x").expect("write");
            }
            let text = text.replace("/etc/smppd/", &etc);
            if let Err(e) = Config::parse(&text, &path.display().to_string(), Path::new(".")) {
                panic!("{} does not parse: {e}", path.display());
            }
            n += 1;
        }
    }
    assert!(n >= 1, "no shipped configs found");
}

#[test]
fn defaults_are_applied() {
    let cfg = parse(BASE).expect("valid");
    let s = &cfg.smscs[0];
    assert_eq!(s.bind, BindMode::Transceiver);
    assert_eq!((s.binds, s.window, s.tps), (1, 10, None));
    assert_eq!(s.split, SplitMethod::Udh8);
    assert_eq!(s.max_parts, 10);
    assert_eq!(s.validity, ValidityFormat::Relative);
    assert_eq!(
        cfg.listen.submit,
        ListenAddr::Tcp("127.0.0.1:2776".parse().expect("addr"))
    );
    assert!(cfg.optout.stop.contains(&"AVSLUTA".to_string()));
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let text = BASE.replace("password = \"secret\"", "password = \"secret\"\nwindw = 5");
    let e = err(&text);
    assert_eq!(e.line, line_of(&text, "windw"), "{e}");
    assert!(
        e.message.contains("unknown field") && e.message.contains("windw"),
        "{e}"
    );
    assert!(e.to_string().starts_with("t.toml:"), "{e}");

    let text = format!("{BASE}\n[metrics]\nport = 1\n");
    let e = err(&text);
    assert_eq!(e.line, line_of(&text, "[metrics]"), "{e}");
}

#[test]
fn bad_values_name_key_and_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (replace, with, expected key, expected words in message)
        (
            "password = \"secret\"",
            "password = \"secret\"\nwindow = 0",
            "smsc[0].window",
            "between 1 and 10000",
        ),
        (
            "password = \"secret\"",
            "password = \"secret\"\nenquire_link = \"soon\"",
            "smsc[0].enquire_link",
            "not a duration",
        ),
        (
            "password = \"secret\"",
            "password = \"secret\"\nsplit = \"udh7\"",
            "smsc[0].split",
            "udh8, udh16, sar, payload",
        ),
        (
            "password = \"secret\"",
            "password = \"secret\"\nshift_tables = [\"tr\", \"de\"]",
            "smsc[0].shift_tables",
            "tr, es, pt",
        ),
        (
            "password = \"secret\"",
            "password = \"secret\"\nvalidity = \"later\"",
            "smsc[0].validity",
            "relative, absolute, none",
        ),
        (
            "password = \"secret\"",
            "password = \"secret\"\nbind = \"rx\"",
            "smsc[0].bind",
            "transceiver, tx_rx",
        ),
        (
            "password = \"secret\"",
            "password = \"secret\"\nfailover_statuses = [\"ESME_NOPE\"]",
            "smsc[0].failover_statuses",
            "known name",
        ),
        (
            "address = \"127.0.0.1:2775\"",
            "address = \"localhost\"",
            "smsc[0].address",
            "host:port",
        ),
        (
            "smsc = [\"op-a\"]",
            "smsc = [\"op-z\"]",
            "route[0].smsc",
            "no [[smsc]] is named \"op-z\"",
        ),
        (
            "submit = \"127.0.0.1:2776\"",
            "submit = \"0.0.0.0:2776\"",
            "listen.submit",
            "set listen.token",
        ),
        (
            "submit = \"127.0.0.1:2776\"",
            "submit = \"here\"",
            "listen.submit",
            "not an IP:port",
        ),
    ];
    for (from, to, key, words) in cases {
        let text = BASE.replace(from, to);
        assert_ne!(text, BASE, "replacement {from:?} did not apply");
        let e = err(&text);
        assert_eq!(&e.key, key, "{e}");
        assert!(e.message.contains(words), "{e} (wanted {words:?})");
        let changed = to.lines().last().expect("a line");
        assert_eq!(e.line, line_of(&text, changed), "{e}");
    }
}

#[test]
fn the_store_size_cap_takes_binary_units() {
    let with = |v: &str| BASE.replace("[[smsc]]", &format!("[store]\nmax_size = {v}\n\n[[smsc]]"));
    assert_eq!(parse(BASE).expect("base").store.max_size, None);
    for (v, bytes) in [
        ("\"64MiB\"", 64 << 20),
        ("\"2GiB\"", 2 << 30),
        ("\"512KiB\"", 512 << 10),
        ("\"1048576\"", 1 << 20),
    ] {
        let c = parse(&with(v)).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(c.store.max_size, Some(bytes), "{v}");
    }
    for bad in ["\"10MB\"", "\"1KiB\"", "\"lots\"", "\"99999999999TiB\""] {
        let text = with(bad);
        let e = err(&text);
        assert_eq!(
            (e.key.as_str(), e.line),
            ("store.max_size", line_of(&text, "max_size")),
            "{bad}: {e}"
        );
    }
}

#[test]
fn missing_and_dangling_references() {
    let e = err(&BASE.replace("system_id = \"smppd\"\n", ""));
    assert_eq!(e.key, "smsc[0].system_id");
    assert!(e.message.contains("missing"), "{e}");

    let text = format!(
        "{BASE}\n[[smsc]]\nname = \"op-a\"\naddress = \"h:1\"\nsystem_id = \"x\"\npassword = \"y\"\n"
    );
    let e = err(&text);
    assert!(e.message.contains("duplicate SMSC name"), "{e}");

    let text =
        format!("{BASE}\n[[route]]\nname = \"late\"\nprefix = [\"+46\"]\nsmsc = [\"op-a\"]\n");
    let e = err(&text);
    assert_eq!(e.key, "route[1]");
    assert!(e.message.contains("can never match"), "{e}");
    assert_eq!(e.line, line_of(&text, "name = \"late\""));
}

/// Found by the `config` fuzz target: a syntax error on a line holding only `[` named the
/// empty key (`fuzz.toml:7:2: : …`).
#[test]
fn syntax_errors_on_table_headers_name_the_table_or_a_dash() {
    let text = format!("{BASE}\n[\n");
    let e = err(&text);
    assert_eq!(e.line, text.lines().count(), "{e}");
    assert_eq!(e.key, "-", "{e}");
    let text = format!("{BASE}\n[[route]]  # the fallback\n[[route]] x\n");
    let e = err(&text);
    assert_eq!(e.key, "route", "{e}");
}

#[test]
fn write_timeout_has_a_default_and_a_range() {
    assert_eq!(
        parse(BASE).expect("valid").listen.write_timeout,
        std::time::Duration::from_secs(30)
    );
    let text = BASE.replace(
        "submit = \"127.0.0.1:2776\"",
        "submit = \"127.0.0.1:2776\"\nwrite_timeout = \"2s\"",
    );
    assert_eq!(
        parse(&text).expect("valid").listen.write_timeout,
        std::time::Duration::from_secs(2)
    );
    let text = BASE.replace(
        "submit = \"127.0.0.1:2776\"",
        "submit = \"127.0.0.1:2776\"\nwrite_timeout = \"10ms\"",
    );
    let e = err(&text);
    assert_eq!(e.key, "listen.write_timeout");
    assert_eq!(e.line, line_of(&text, "write_timeout"), "{e}");
    assert!(e.message.contains("between 100ms and 1h"), "{e}");
}

#[test]
fn a_token_allows_a_public_listener() {
    let text = BASE.replace(
        "submit = \"127.0.0.1:2776\"",
        "submit = \"0.0.0.0:2776\"\ntoken = \"0123456789abcdef0123\"",
    );
    let cfg = parse(&text).expect("valid with token");
    assert!(cfg.listen.token.is_some());
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let text = BASE.replace("password = \"secret\"", "password = \"sup3rs3cr3tpw\"");
    let e = err(&text);
    assert_eq!(e.key, "smsc[0].password");
    assert!(!e.to_string().contains("sup3rs3cr3tpw"), "{e}");

    let text = BASE.replace(
        "submit = \"127.0.0.1:2776\"",
        "submit = \"127.0.0.1:2776\"\ntoken = \"tok-9f8e7d6c5b4a3210\"",
    );
    let cfg = parse(&text).expect("valid");
    let dbg = format!("{cfg:?}");
    assert!(
        !dbg.contains("secret") && !dbg.contains("tok-9f8e7d6c5b4a3210"),
        "{dbg}"
    );
}

#[test]
fn tls_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), "x").expect("write");
    let text = BASE.replace(
        "password = \"secret\"",
        "password = \"secret\"\ntls = { ca = \"ca.pem\" }",
    );
    let cfg = Config::parse(&text, "t.toml", dir.path()).expect("valid");
    let tls = cfg.smscs[0].tls.as_ref().expect("tls on");
    assert_eq!(tls.server_name.as_deref(), Some("127.0.0.1"));
    assert!(!tls.insecure_skip_verify);

    let text = BASE.replace(
        "password = \"secret\"",
        "password = \"secret\"\ntls = { ca = \"missing.pem\" }",
    );
    let e = Config::parse(&text, "t.toml", dir.path()).expect_err("missing file");
    assert_eq!(e.key, "smsc[0].tls.ca");

    let text = BASE.replace(
        "password = \"secret\"",
        "password = \"secret\"\ntls = { cert = \"ca.pem\" }",
    );
    let e = Config::parse(&text, "t.toml", dir.path()).expect_err("cert without key");
    assert!(e.message.contains("together"), "{e}");
}

#[test]
fn check_config_cli() {
    let bin = env!("CARGO_BIN_EXE_smppd");
    let ok = Command::new(bin)
        .args([
            "check-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/smppd.toml"),
        ])
        .output()
        .expect("run smppd");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok (2 SMSCs, 2 routes"));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        BASE.replace(
            "password = \"secret\"",
            "password = \"secret\"\nwindow = -1",
        ),
    )
    .expect("write");
    let out = Command::new(bin)
        .arg("check-config")
        .arg(&bad)
        .output()
        .expect("run smppd");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:9:10: smsc[0].window: must be between 1 and 10000 (got -1)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// The shipped examples, with the production example's TLS files (under /etc/smppd) provided in
/// `dir` so that only each file's own content is under test.
fn shipped_examples(dir: &Path) -> Vec<(String, String)> {
    for file in ["telia-ca.pem", "client.pem", "client.key", "pgpass"] {
        std::fs::write(dir.join(file), "x").expect("write");
    }
    let etc = dir.to_string_lossy().to_string() + "/";
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/conf")).expect("conf/ exists")
    {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") {
            let text = std::fs::read_to_string(&path).expect("readable");
            out.push((
                path.display().to_string(),
                text.replace("/etc/smppd/", &etc),
            ));
        }
    }
    assert!(
        out.len() >= 2,
        "conf/ has the default and the production example"
    );
    out
}

/// Each example with one unknown key injected: at the top level, as a table of its own, after
/// every table header, and inside every inline table. Each variant must be refused, naming the
/// key (with its table's path) and the line it is on.
#[test]
fn an_unknown_key_is_refused_in_every_table_of_every_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (origin, text) in shipped_examples(dir.path()) {
        let lines: Vec<&str> = text.lines().collect();
        let mut variants: Vec<(Vec<String>, usize)> = Vec::new();
        let with = |at: usize, line: &str| {
            let mut v: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            v.insert(at, line.to_owned());
            v
        };
        variants.push((with(0, "zz_unknown = 1"), 0));
        variants.push((with(lines.len(), "[zz_unknown]"), lines.len()));
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with('[') {
                variants.push((with(i + 1, "zz_unknown = 1"), i + 1));
            }
            if let Some(end) = l.rfind('}').filter(|_| l.contains("= {")) {
                let mut v: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                v[i] = format!("{}, zz_unknown = 1 {}", &l[..end], &l[end..]);
                variants.push((v, i));
            }
        }
        let tables = lines.iter().filter(|l| l.starts_with('[')).count();
        assert!(variants.len() >= tables + 2, "{origin}");
        for (v, at) in variants {
            let changed = v.join("\n");
            let e = Config::parse(&changed, &origin, Path::new("/")).expect_err(&format!(
                "{origin}: unknown key on line {} accepted",
                at + 1
            ));
            assert_eq!(e.line, at + 1, "{origin}: {e}");
            assert!(e.message.contains("unknown field `zz_unknown`"), "{e}");
            assert!(e.key.ends_with("zz_unknown"), "{e}");
        }
    }
}

/// Runs `smppd check-config` with these arguments; its stdout (it must succeed).
fn check_config(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_smppd"))
        .arg("check-config")
        .args(args)
        .output()
        .expect("run smppd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The comment above each key of conf/smppd.toml (first section of each kind) is made from the
/// key table: the file is its own `--annotate` output.
#[test]
fn the_default_config_comments_come_from_the_key_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/smppd.toml");
    let committed = std::fs::read_to_string(path).expect("readable");
    let made = check_config(&["--annotate", path]);
    if made != committed {
        let diff: Vec<String> = committed
            .lines()
            .zip(made.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(5)
            .map(|(i, (a, b))| format!("line {}:\n  committed: {a}\n  made:      {b}", i + 1))
            .collect();
        panic!(
            "conf/smppd.toml's key comments differ from the key table; run `smppd check-config \
             --annotate conf/smppd.toml` and commit its output\n{}",
            diff.join("\n")
        );
    }
}

/// The key reference: (section header, key, type, default) per row of `--keys`.
fn key_rows() -> Vec<(String, String, String, String)> {
    let mut rows = Vec::new();
    let mut section = String::new();
    for line in check_config(&["--keys"]).lines() {
        if let Some(rest) = line.strip_prefix("**`") {
            section = rest.split('`').next().expect("header").to_owned();
        } else if let Some(row) = line.strip_prefix("| `") {
            let cells: Vec<&str> = row.split(" | ").collect();
            let key = cells[0].trim_end_matches('`').to_owned();
            rows.push((
                section.clone(),
                key,
                cells[1].to_owned(),
                cells[2].to_owned(),
            ));
        }
    }
    rows
}

/// The README's key table is `smppd check-config --keys`, and every key of every section is in
/// conf/smppd.toml (set, or shown commented out), so the annotation covers it.
#[test]
fn the_readme_key_table_and_the_default_config_cover_every_key() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let begin = "<!-- keys: made by `smppd check-config --keys`; tests/config.rs checks it -->\n";
    let start = readme.find(begin).expect("README has the key table marker") + begin.len();
    let end = start
        + readme[start..]
            .find("<!-- end of keys -->")
            .expect("end marker");
    assert_eq!(
        &readme[start..end],
        check_config(&["--keys"]),
        "README's key table differs: paste `smppd check-config --keys` between the markers"
    );

    let conf = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/smppd.toml"))
        .expect("readable");
    let rows = key_rows();
    assert!(rows.len() > 50, "{rows:?}");
    for (section, key, _, _) in rows.iter().filter(|r| r.0.starts_with('[')) {
        let header = format!("\n{section}\n");
        let from = conf
            .find(&header)
            .unwrap_or_else(|| panic!("{section} missing"));
        let body = &conf[from + header.len() - 1..];
        let body = &body[..body.find("\n[").unwrap_or(body.len())];
        let set = body.lines().any(|l| {
            let l = l.strip_prefix("# ").unwrap_or(l);
            l.strip_prefix(key.as_str())
                .is_some_and(|r| r.trim_start().starts_with('='))
        });
        assert!(set, "{section} {key} is not in conf/smppd.toml");
    }
}

/// Every word a choice key documents is accepted, and each gives a different configuration.
#[test]
fn every_documented_choice_is_accepted() {
    let full = format!(
        "[store]\n[log]\n{}\n[[simulator]]\nname = \"s\"\nlisten = \"127.0.0.1:2775\"\n\
         [[window]]\nname = \"w\"\nallow = [\"daily 09:00-20:00\"]\n\
         [[cap]]\nmax = 1\nper = \"1d\"\n",
        BASE.replace("[listen]", "[listen]\n")
    );
    let mut checked = 0;
    for (section, key, kind, _) in key_rows() {
        let words: Vec<&str> = match kind.strip_prefix("one of ") {
            Some(w) => w.split(", ").map(|w| w.trim_matches('"')).collect(),
            None => continue,
        };
        let mut seen = Vec::new();
        for w in &words {
            let text = full.replacen(&section, &format!("{section}\n{key} = \"{w}\""), 1);
            let cfg = parse(&text).unwrap_or_else(|e| panic!("{section} {key} = {w:?}: {e}"));
            let shown = format!("{cfg:?}");
            assert!(
                !seen.contains(&shown),
                "{section} {key} = {w:?} changes nothing"
            );
            seen.push(shown);
            checked += 1;
        }
    }
    assert!(checked >= 18, "{checked}");
}

/// `[marketing]`, `[[window]]` and `[[cap]]` become the policy types, with their defaults.
#[test]
fn policy_sections() {
    use smppd::policy::{Class, Decision};
    let cfg = parse(BASE).expect("valid");
    assert!(cfg.policy.windows.is_empty() && cfg.policy.caps.is_empty());
    assert_eq!(cfg.policy.marketing.global_stop, ["STOPALL"]);
    assert_eq!(cfg.policy.marketing.footer, None);

    let text = format!(
        "{BASE}\n[marketing]\nfooter = \"Svara STOPP för att avsluta\"\nglobal_stop = [\"Stöppall\", \"STOPALL\"]\n\
         [[window]]\nname = \"daytime\"\nprefix = [\"46\", \"+47\"]\nallow = [\"mon-fri 09:00-20:00\", \"sat 10:00-18:00\"]\n\
         [[window]]\nname = \"ny\"\nclass = \"transactional\"\nallow = [\"daily 08:00-22:00\"]\ntimezone = \"America/New_York\"\n\
         [[cap]]\nmax = 3\nper = \"7d\"\n[[cap]]\nclass = \"transactional\"\nmax = 1\nper = \"1h\"\ntag = \"campaign\"\n"
    );
    let p = parse(&text).expect("valid").policy;
    assert_eq!(p.marketing.global_stop, ["STOPPALL", "STOPALL"]);
    assert_eq!(
        p.marketing.footer.as_deref(),
        Some("Svara STOPP för att avsluta")
    );
    assert_eq!(p.windows[0].prefixes, ["+46", "+47"]);
    assert_eq!(p.windows[0].class, Class::Marketing);
    assert_eq!((p.windows[0].allow.len(), p.windows[0].timezone), (2, None));
    assert_eq!(p.windows[1].class, Class::Transactional);
    assert_eq!(p.windows[1].timezone, Some(chrono_tz::America::New_York));
    assert_eq!((p.caps[0].max, p.caps[0].per.as_secs()), (3, 7 * 86_400));
    assert_eq!(p.caps[1].tag.as_deref(), Some("campaign"));
    // Sunday 2026-06-14 12:00 UTC: closed in Sweden until Monday 09:00 (07:00 UTC).
    let sunday = "2026-06-14T12:00:00Z".parse().expect("time");
    let monday = "2026-06-15T07:00:00Z".parse().expect("time");
    assert_eq!(
        p.window_decision("+46701234567", Class::Marketing, sunday),
        Decision::HoldUntil(monday)
    );
    assert_eq!(
        p.window_decision("+4915112345678", Class::Marketing, sunday),
        Decision::SendNow
    );
}

#[test]
fn policy_errors_name_key_and_line() {
    let cases = [
        (
            "[[window]]\nname = \"w\"\nallow = [\"mon-fri 22:00-06:00\"]\n",
            "window[0].allow",
            "22:00-06:00",
            "past midnight",
        ),
        (
            "[[window]]\nname = \"w\"\nallow = [\"mon-fre 09:00-10:00\"]\n",
            "window[0].allow",
            "mon-fre",
            "\"fre\" is not a day",
        ),
        (
            "[[window]]\nname = \"w\"\nallow = [\"daily 9-17\"]\n",
            "window[0].allow",
            "9-17",
            "not a time",
        ),
        (
            "[[window]]\nname = \"w\"\nallow = []\n",
            "window[0].allow",
            "allow",
            "missing",
        ),
        (
            "[[window]]\nname = \"w\"\n",
            "window[0].allow",
            "[[window]]",
            "missing",
        ),
        (
            "[[window]]\nname = \"w\"\nallow = [\"daily 09:00-17:00\"]\ntimezone = \"Europe/Stockhom\"\n",
            "window[0].timezone",
            "Stockhom",
            "IANA time zone",
        ),
        (
            "[[window]]\nname = \"w\"\nallow = [\"daily 09:00-17:00\"]\nprefix = [\"+46a\"]\n",
            "window[0].prefix",
            "+46a",
            "E.164 prefix",
        ),
        (
            "[[window]]\nname = \"w\"\nallow = [\"daily 09:00-17:00\"]\nclass = \"promo\"\n",
            "window[0].class",
            "promo",
            "not one of",
        ),
        (
            "[[window]]\nname = \"w\"\nallow = [\"daily 09:00-17:00\"]\n[[window]]\nname = \"w\"\nallow = [\"daily 09:00-17:00\"]\n",
            "window[1].name",
            "[[window]]\nname",
            "duplicate",
        ),
        (
            "[[cap]]\nper = \"7d\"\n",
            "cap[0].max",
            "[[cap]]",
            "missing",
        ),
        (
            "[[cap]]\nmax = 0\nper = \"7d\"\n",
            "cap[0].max",
            "max = 0",
            "between 1",
        ),
        ("[[cap]]\nmax = 3\n", "cap[0].per", "[[cap]]", "missing"),
        (
            "[[cap]]\nmax = 3\nper = \"7 weeks-ish\"\n",
            "cap[0].per",
            "weeks-ish",
            "not a duration",
        ),
        (
            "[marketing]\nfooter = \"Svara NEJ för avregistrering\"\n",
            "marketing.footer",
            "Svara NEJ",
            "no stop keyword",
        ),
        (
            "[marketing]\nglobal_stop = [\"Unstop\"]\n",
            "marketing.global_stop",
            "Unstop",
            "also a start keyword",
        ),
        (
            "[marketing]\nglobal_stop = [\"Stopp alla\"]\n",
            "marketing.global_stop",
            "Stopp alla",
            "more than one word",
        ),
        (
            "[marketing]\nglobal_stop = [\"!!\"]\n",
            "marketing.global_stop",
            "\"!!\"",
            "no letter",
        ),
        (
            "[[sender]]\naliases = [\"ACME\"]\n",
            "sender[0].address",
            "[[sender]]",
            "missing",
        ),
        (
            "[[sender]]\naddress = \"72000\"\naliases = [\"ACME\"]\n[[sender]]\naddress = \"73000\"\naliases = [\"Acme\"]\n",
            "sender[1].aliases",
            "\"Acme\"",
            "already in the group of \"72000\"",
        ),
        (
            "[[sender]]\naddress = \"72000\"\n[[sender]]\naddress = \"+72000\"\n",
            "sender[1].address",
            "+72000",
            "already in the group",
        ),
        (
            "[[sender]]\naddress = \"72000\"\naliases = [\" \"]\n",
            "sender[0].aliases",
            "\" \"",
            "empty",
        ),
    ];
    for (section, key, at, words) in cases {
        let text = format!("{BASE}\n{section}");
        let e = err(&text);
        assert_eq!(e.key, key, "{e}");
        // The duplicate's line is the second `name` (the first of the needle is the first).
        let line = if words == "duplicate" {
            text.lines()
                .collect::<Vec<_>>()
                .iter()
                .rposition(|l| l.starts_with("name = \"w\""))
                .map_or(0, |i| i + 1)
        } else {
            line_of(&text, at.lines().next().unwrap_or(at))
        };
        assert_eq!(e.line, line, "{e}");
        assert!(e.message.contains(words), "{e}");
    }
}

/// `[[sender]]` groups: an alias (any case) and the address itself give the group's scope.
#[test]
fn sender_groups_give_the_optout_scope() {
    let text = format!(
        "{BASE}\n[[sender]]\naddress = \"72000\"\naliases = [\"ACME\", \"AcmeNews\"]\n\
         [[sender]]\naddress = \"+46701234567\"\n"
    );
    let p = parse(&text).expect("valid").policy;
    assert_eq!(p.senders.len(), 2);
    assert_eq!(p.optout_scope("acmenews"), "72000");
    assert_eq!(p.optout_scope("72000"), "72000");
    assert_eq!(p.optout_scope("46701234567"), "46701234567");
    assert_eq!(p.optout_scope("Other"), "OTHER");
    assert!(parse(BASE).expect("valid").policy.senders.is_empty());
}
