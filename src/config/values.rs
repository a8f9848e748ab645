//! Value syntaxes shared by several keys (durations, sizes, names, log filters, status names)
//! and the wording of TOML syntax errors.
//!
//! Owns how one value is read, with no knowledge of which key holds it. Must never build a
//! [`super::ConfigError`] (the caller knows the key and the line) or do I/O.

use std::time::Duration;

/// Durations such as `30s`, `500ms`, `10m`, `48h`, `7d`, `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like \"30s\", \"500ms\" or \"48h\": {e}"))
}

/// The smallest `store.max_size`: an empty store with its schema takes a few pages.
const MIN_STORE_SIZE: u64 = 64 * 1024;

/// Sizes such as `512KiB`, `64MiB`, `2GiB`, `1TiB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit_bytes: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        _ => {
            return Err(format!(
                "{s:?} is not a size like \"512MiB\" or \"2GiB\" (units: B, KiB, MiB, GiB, TiB)"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size like \"512MiB\" or \"2GiB\""))?;
    let bytes = n
        .checked_mul(unit_bytes)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if bytes < MIN_STORE_SIZE {
        return Err(format!("{s:?} is below the minimum of 64KiB"));
    }
    Ok(bytes)
}

/// Names of SMSCs, routes and simulators: 1-64 letters, digits, '-', '_' and '.'.
pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// An E.164 prefix (`"+46"`, or `"46"`), written back with its `+`; `None` when it is not 1-15
/// digits.
pub(super) fn e164_prefix(s: &str) -> Option<String> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    let ok = !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("+{digits}"))
}

/// Known command_status names accepted in `failover_statuses`.
pub(super) const STATUS_NAMES: &[(&str, u32)] = &[
    ("ESME_RINVMSGLEN", 0x01),
    ("ESME_RSYSERR", 0x08),
    ("ESME_RINVSRCADR", 0x0A),
    ("ESME_RINVDSTADR", 0x0B),
    ("ESME_RMSGQFUL", 0x14),
    ("ESME_RINVSERTYP", 0x15),
    ("ESME_RINVESMCLASS", 0x43),
    ("ESME_RSUBMITFAIL", 0x45),
    ("ESME_RINVSRCTON", 0x48),
    ("ESME_RINVSRCNPI", 0x49),
    ("ESME_RINVDSTTON", 0x50),
    ("ESME_RINVDSTNPI", 0x51),
    ("ESME_RTHROTTLED", 0x58),
    ("ESME_RX_T_APPN", 0x64),
    ("ESME_RX_P_APPN", 0x65),
    ("ESME_RX_R_APPN", 0x66),
    ("ESME_RINVOPTPARSTREAM", 0xC0),
    ("ESME_ROPTPARNOTALLWD", 0xC1),
    ("ESME_RINVPARLEN", 0xC2),
    ("ESME_RINVOPTPARAMVAL", 0xC4),
    ("ESME_RDELIVERYFAILURE", 0xFE),
    ("ESME_RUNKNOWNERR", 0xFF),
];

/// A command_status by name.
pub(super) fn status_named(name: &str) -> Option<u32> {
    STATUS_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s)
}

/// Normalizes an opt-out keyword the way MO texts are compared: upper-case, no whitespace.
pub(crate) fn normalize_keyword(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

/// The key written on the line holding `offset` (`window` in `window = 0`), or the table header
/// (`[listen]`), so that syntax errors name a key like validation errors do.
pub(super) fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[start..end].trim();
    if line.starts_with('[') {
        // `[[smsc]]  # comment` names `smsc`; a bare `[` names nothing.
        let name = line
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim();
        return if name.is_empty() {
            "-".to_owned()
        } else {
            name.to_owned()
        };
    }
    match line.split_once('=') {
        Some((k, _)) if !k.trim().is_empty() => k.trim().to_owned(),
        _ => "-".to_owned(),
    }
}

/// Accepts what `tracing_subscriber::EnvFilter` accepts for the common forms, without
/// depending on the subscriber here: levels and `target=level` pairs.
pub(super) fn valid_filter(s: &str) -> bool {
    let level = |l: &str| {
        matches!(
            l.to_ascii_lowercase().as_str(),
            "error" | "warn" | "info" | "debug" | "trace" | "off"
        )
    };
    let target = |t: &str| {
        t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    !s.trim().is_empty()
        && s.split(',').all(|part| {
            let part = part.trim();
            match part.split_once('=') {
                None => level(part) || target(part),
                Some((t, l)) => !t.is_empty() && target(t) && level(l),
            }
        })
}
