//! The file as written (serde structs with spans), and its validation into [`super::Config`].
//!
//! Every field that needs a check after parsing is `Spanned`, so the error can name its line.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::*;

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    listen: Option<S<RawListen>>,
    store: Option<S<RawStore>>,
    log: Option<S<RawLog>>,
    optout: Option<S<RawOptOut>>,
    #[serde(default)]
    smsc: Vec<S<RawSmsc>>,
    #[serde(default)]
    route: Vec<S<RawRoute>>,
    #[serde(default)]
    simulator: Vec<S<RawSimulator>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimulator {
    name: Option<S<String>>,
    listen: Option<S<String>>,
    system_id: Option<S<String>>,
    password: Option<S<String>>,
    receipt_delay: Option<S<String>>,
    receipt_mix: Option<S<String>>,
    id_format: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    submit: Option<S<String>>,
    metrics: Option<S<String>>,
    token: Option<S<String>>,
    max_connections: Option<S<i64>>,
    write_timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<S<String>>,
    sync: Option<S<String>>,
    retain_text: Option<bool>,
    keep_messages: Option<S<String>>,
    keep_reports: Option<S<String>>,
    receipt_wait: Option<S<String>>,
    max_size: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<S<String>>,
    level: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptOut {
    stop: Option<Vec<S<String>>>,
    start: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmsc {
    name: Option<S<String>>,
    address: Option<S<String>>,
    tls: Option<S<toml::Value>>,
    system_id: Option<S<String>>,
    password: Option<S<String>>,
    system_type: Option<S<String>>,
    bind: Option<S<String>>,
    binds: Option<S<i64>>,
    window: Option<S<i64>>,
    tps: Option<S<i64>>,
    enquire_link: Option<S<String>>,
    response_timeout: Option<S<String>>,
    reconnect_min: Option<S<String>>,
    reconnect_max: Option<S<String>>,
    split: Option<S<String>>,
    receipt_id: Option<S<String>>,
    shift_tables: Option<Vec<S<String>>>,
    gsm_packed: Option<bool>,
    max_parts: Option<S<i64>>,
    failover_statuses: Option<Vec<S<toml::Value>>>,
    acceptd_final: Option<bool>,
    validity: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Option<S<String>>,
    prefix: Option<Vec<S<String>>>,
    sender: Option<Vec<S<String>>>,
    tag: Option<S<String>>,
    smsc: Option<Vec<S<String>>>,
    tps: Option<S<i64>>,
    burst: Option<S<i64>>,
    reroute_undelivered: Option<bool>,
    smart: Option<bool>,
}

/// Maps byte offsets to line and column and builds errors.
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
    base: &'a Path,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let start = span.start.min(self.text.len());
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError {
            origin: self.origin.to_owned(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        v: &Option<S<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => parse_duration(s.get_ref()).map_err(|m| self.err(s.span(), key, m)),
        }
    }

    fn int(
        &self,
        v: &Option<S<i64>>,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> Result<i64, ConfigError> {
        match v {
            None => Ok(default),
            Some(n) => {
                let x = *n.get_ref();
                if range.contains(&x) {
                    Ok(x)
                } else {
                    Err(self.err(
                        n.span(),
                        key,
                        format!(
                            "must be between {} and {} (got {x})",
                            range.start(),
                            range.end()
                        ),
                    ))
                }
            }
        }
    }

    fn choice<T: Copy>(
        &self,
        v: &Option<S<String>>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> Result<T, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => options
                .iter()
                .find(|(name, _)| *name == s.get_ref().as_str())
                .map(|(_, t)| *t)
                .ok_or_else(|| {
                    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                    self.err(
                        s.span(),
                        key,
                        format!("{:?} is not one of: {}", s.get_ref(), names.join(", ")),
                    )
                }),
        }
    }

    fn file(&self, s: &S<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let p = self.base.join(s.get_ref());
        if p.is_file() {
            Ok(p)
        } else {
            Err(self.err(
                s.span(),
                key,
                format!("file {} does not exist", p.display()),
            ))
        }
    }
}

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

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Known command_status names accepted in `failover_statuses`.
const STATUS_NAMES: &[(&str, u32)] = &[
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

/// Statuses that, by default, another SMSC may well accept: the rejecting SMSC's own limits
/// or system trouble, not a bad destination.
const DEFAULT_FAILOVER_STATUSES: &[u32] = &[0x08, 0x45, 0x64, 0xFF];

const DEFAULT_STOP: &[&str] = &[
    "STOP",
    "STOPP",
    "AVSLUTA",
    "END",
    "UNSUBSCRIBE",
    "CANCEL",
    "QUIT",
];
const DEFAULT_START: &[&str] = &["START", "UNSTOP"];

/// Normalizes an opt-out keyword the way MO texts are compared: upper-case, no whitespace.
pub(crate) fn normalize_keyword(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_uppercase)
        .collect()
}

pub(super) fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
    let cx = Ctx { text, origin, base };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.err(
            span.clone(),
            key_at(text, span.start),
            tidy_serde_message(e.message()),
        )
    })?;

    // [listen]
    let (listen, listen_span) = match &raw.listen {
        Some(l) => (Some(l.get_ref()), l.span()),
        None => (None, 0..0),
    };
    let submit = match listen.and_then(|l| l.submit.as_ref()) {
        None => ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 2776))),
        Some(s) => {
            let v = s.get_ref();
            if let Some(path) = v.strip_prefix("unix:") {
                if path.is_empty() {
                    return Err(cx.err(s.span(), "listen.submit", "unix: needs a socket path"));
                }
                ListenAddr::Unix(PathBuf::from(path))
            } else {
                ListenAddr::Tcp(v.parse().map_err(|_| {
                    cx.err(
                        s.span(),
                        "listen.submit",
                        format!("{v:?} is not an IP:port address or unix:/path"),
                    )
                })?)
            }
        }
    };
    let metrics = match listen.and_then(|l| l.metrics.as_ref()) {
        None => None,
        Some(s) if s.get_ref().is_empty() => None,
        Some(s) => Some(s.get_ref().parse::<SocketAddr>().map_err(|_| {
            cx.err(
                s.span(),
                "listen.metrics",
                format!("{:?} is not an IP:port address", s.get_ref()),
            )
        })?),
    };
    let token = match listen.and_then(|l| l.token.as_ref()) {
        None => None,
        Some(t) if t.get_ref().len() < 16 => {
            return Err(cx.err(
                t.span(),
                "listen.token",
                "a token must be at least 16 characters",
            ));
        }
        Some(t) => Some(Secret::new(t.get_ref().clone())),
    };
    if let ListenAddr::Tcp(a) = &submit
        && !a.ip().is_loopback()
        && token.is_none()
    {
        let span = listen
            .and_then(|l| l.submit.as_ref())
            .map_or(listen_span.clone(), |s| s.span());
        return Err(cx.err(
            span,
            "listen.submit",
            format!(
                "{a} is not a loopback address: set listen.token so that clients must authenticate"
            ),
        ));
    }
    let max_connections = cx.int(
        &listen.and_then(|l| l.max_connections.clone()),
        "listen.max_connections",
        1..=100_000,
        1024,
    )? as usize;
    let write_timeout_raw = listen.and_then(|l| l.write_timeout.clone());
    let write_timeout = cx.duration(
        &write_timeout_raw,
        "listen.write_timeout",
        Duration::from_secs(30),
    )?;
    if !(Duration::from_millis(100)..=Duration::from_secs(3600)).contains(&write_timeout) {
        let span = write_timeout_raw.as_ref().map_or(0..0, |s| s.span());
        return Err(cx.err(span, "listen.write_timeout", "must be between 100ms and 1h"));
    }

    // [store]
    let store_raw = raw.store.as_ref().map(|s| s.get_ref());
    let store = Store {
        path: store_raw.and_then(|s| s.path.as_ref()).map_or_else(
            || PathBuf::from("var/smppd.db"),
            |p| PathBuf::from(p.get_ref()),
        ),
        sync: cx.choice(
            &store_raw.and_then(|s| s.sync.clone()),
            "store.sync",
            &[("normal", SyncMode::Normal), ("full", SyncMode::Full)],
            SyncMode::Normal,
        )?,
        retain_text: store_raw.and_then(|s| s.retain_text).unwrap_or(true),
        keep_messages: cx.duration(
            &store_raw.and_then(|s| s.keep_messages.clone()),
            "store.keep_messages",
            Duration::from_secs(30 * 86400),
        )?,
        keep_reports: cx.duration(
            &store_raw.and_then(|s| s.keep_reports.clone()),
            "store.keep_reports",
            Duration::from_secs(30 * 86400),
        )?,
        receipt_wait: cx.duration(
            &store_raw.and_then(|s| s.receipt_wait.clone()),
            "store.receipt_wait",
            Duration::from_secs(72 * 3600),
        )?,
        max_size: match store_raw.and_then(|s| s.max_size.as_ref()) {
            None => None,
            Some(v) => {
                Some(parse_size(v.get_ref()).map_err(|m| cx.err(v.span(), "store.max_size", m))?)
            }
        },
    };

    // [log]
    let log_raw = raw.log.as_ref().map(|s| s.get_ref());
    let log = Log {
        format: cx.choice(
            &log_raw.and_then(|l| l.format.clone()),
            "log.format",
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            LogFormat::Text,
        )?,
        level: match log_raw.and_then(|l| l.level.as_ref()) {
            None => "info".to_owned(),
            Some(s) => {
                if !valid_filter(s.get_ref()) {
                    return Err(cx.err(
                        s.span(),
                        "log.level",
                        format!(
                            "{:?} is not a level (error, warn, info, debug, trace) or a list like \"info,smppd::session=debug\"",
                            s.get_ref()
                        ),
                    ));
                }
                s.get_ref().clone()
            }
        },
    };

    // [optout]
    let opt_raw = raw.optout.as_ref().map(|s| s.get_ref());
    let keywords = |list: Option<&Vec<S<String>>>,
                    key: &str,
                    default: &[&str]|
     -> Result<Vec<String>, ConfigError> {
        match list {
            None => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
            Some(v) => v
                .iter()
                .map(|s| {
                    let k = normalize_keyword(s.get_ref());
                    if k.is_empty() {
                        Err(cx.err(s.span(), key, "an empty keyword would match every message"))
                    } else {
                        Ok(k)
                    }
                })
                .collect(),
        }
    };
    let optout = OptOut {
        stop: keywords(
            opt_raw.and_then(|o| o.stop.as_ref()),
            "optout.stop",
            DEFAULT_STOP,
        )?,
        start: keywords(
            opt_raw.and_then(|o| o.start.as_ref()),
            "optout.start",
            DEFAULT_START,
        )?,
    };
    if let Some(both) = optout.stop.iter().find(|k| optout.start.contains(k)) {
        let span = raw.optout.as_ref().map_or(0..0, |o| o.span());
        return Err(cx.err(
            span,
            "optout",
            format!("keyword {both:?} is both a stop and a start keyword"),
        ));
    }

    // [[smsc]]
    let mut smscs: Vec<Smsc> = Vec::with_capacity(raw.smsc.len());
    for (i, s) in raw.smsc.iter().enumerate() {
        let smsc = smsc(&cx, i, s)?;
        if smscs.iter().any(|o| o.name == smsc.name) {
            let span = s.get_ref().name.as_ref().map_or(s.span(), |n| n.span());
            return Err(cx.err(
                span,
                format!("smsc[{i}].name"),
                format!("duplicate SMSC name {:?}", smsc.name),
            ));
        }
        smscs.push(smsc);
    }

    // [[route]]
    let mut routes: Vec<Route> = Vec::with_capacity(raw.route.len());
    for (i, r) in raw.route.iter().enumerate() {
        let route = route(&cx, i, r, &smscs)?;
        let name_span = r.get_ref().name.as_ref().map_or(r.span(), |n| n.span());
        if routes.iter().any(|o| o.name == route.name) {
            return Err(cx.err(
                name_span,
                format!("route[{i}].name"),
                format!("duplicate route name {:?}", route.name),
            ));
        }
        if let Some(shadow) = routes.iter().find(|o| o.is_catch_all()) {
            return Err(cx.err(
                name_span,
                format!("route[{i}]"),
                format!(
                    "route {:?} can never match: route {:?} before it has no match rules and takes every message",
                    route.name, shadow.name
                ),
            ));
        }
        routes.push(route);
    }
    if !smscs.is_empty() && routes.is_empty() {
        return Err(cx.err(0..0, "route", "no [[route]] sections: add at least one (a route without match rules catches every message)"));
    }

    let mut simulators: Vec<Simulator> = Vec::with_capacity(raw.simulator.len());
    for (i, sim) in raw.simulator.iter().enumerate() {
        let k = |f: &str| format!("simulator[{i}].{f}");
        let r = sim.get_ref();
        let name = required(&cx, &r.name, sim.span(), &k("name"))?;
        if !valid_name(name.get_ref()) || simulators.iter().any(|o| &o.name == name.get_ref()) {
            return Err(cx.err(
                name.span(),
                k("name"),
                "names are unique, 1-64 letters, digits, '-', '_' or '.'",
            ));
        }
        let listen = required(&cx, &r.listen, sim.span(), &k("listen"))?;
        let addr: SocketAddr = listen.get_ref().parse().map_err(|_| {
            cx.err(
                listen.span(),
                k("listen"),
                format!("{:?} is not an IP:port address", listen.get_ref()),
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err(cx.err(
                listen.span(),
                k("listen"),
                "simulators listen on loopback only",
            ));
        }
        if r.system_id.is_some() != r.password.is_some() {
            return Err(cx.err(
                sim.span(),
                k("system_id"),
                "system_id and password go together",
            ));
        }
        let mix = r
            .receipt_mix
            .as_ref()
            .map_or_else(|| "DELIVRD=1".to_owned(), |m| m.get_ref().clone());
        if crate::sim::control::parse_mix(&mix).is_none() {
            let span = r.receipt_mix.as_ref().map_or(sim.span(), |m| m.span());
            return Err(cx.err(span, k("receipt_mix"), format!("{mix:?} is not like \"DELIVRD=95,UNDELIV=5\" (DELIVRD, UNDELIV, EXPIRED, REJECTD)")));
        }
        simulators.push(Simulator {
            name: name.get_ref().clone(),
            listen: addr,
            system_id: r.system_id.as_ref().map(|s| s.get_ref().clone()),
            password: r
                .password
                .as_ref()
                .map(|s| Secret::new(s.get_ref().clone())),
            receipt_delay: cx.duration(
                &r.receipt_delay,
                &k("receipt_delay"),
                Duration::from_millis(100),
            )?,
            receipt_mix: mix,
            decimal_ids: cx.choice(
                &r.id_format,
                &k("id_format"),
                &[("hex", false), ("decimal", true)],
                false,
            )?,
        });
    }

    Ok(Config {
        simulators,
        listen: Listen {
            submit,
            metrics,
            token,
            max_connections,
            write_timeout,
        },
        store,
        log,
        optout,
        smscs,
        routes,
    })
}

/// The key written on the line holding `offset` (`window` in `window = 0`), or the table header
/// (`[listen]`), so that parse errors name a key like validation errors do.
fn key_at(text: &str, offset: usize) -> String {
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

/// serde's messages name our internal structs; operators know tables and keys.
fn tidy_serde_message(m: &str) -> String {
    let mut out = m.trim().to_owned();
    for (from, to) in [
        ("expected i64", "expected an integer"),
        ("expected struct ", "expected a table ("),
    ] {
        out = out.replace(from, to);
    }
    if let Some(i) = out.find("expected a table (") {
        // "expected a table (RawListen" → "expected a table"
        out.truncate(i + "expected a table".len());
    }
    out
}

/// Accepts what `tracing_subscriber::EnvFilter` accepts for the common forms, without
/// depending on the subscriber here: levels and `target=level` pairs.
fn valid_filter(s: &str) -> bool {
    let level = |l: &str| {
        matches!(
            l.to_ascii_lowercase().as_str(),
            "error" | "warn" | "info" | "debug" | "trace" | "off"
        )
    };
    !s.trim().is_empty()
        && s.split(',').all(|part| {
            let part = part.trim();
            match part.split_once('=') {
                None => {
                    level(part)
                        || part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                }
                Some((target, l)) => {
                    !target.is_empty()
                        && target
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                        && level(l)
                }
            }
        })
}

fn required<'a, T>(
    cx: &Ctx<'_>,
    v: &'a Option<S<T>>,
    section: Range<usize>,
    key: &str,
) -> Result<&'a S<T>, ConfigError> {
    v.as_ref()
        .ok_or_else(|| cx.err(section, key, "missing (required)"))
}

fn smsc(cx: &Ctx<'_>, i: usize, s: &S<RawSmsc>) -> Result<Smsc, ConfigError> {
    let k = |f: &str| format!("smsc[{i}].{f}");
    let sec = s.span();
    let r = s.get_ref();

    let name = required(cx, &r.name, sec.clone(), &k("name"))?;
    if !valid_name(name.get_ref()) {
        return Err(cx.err(
            name.span(),
            k("name"),
            "names are 1-64 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    let address = required(cx, &r.address, sec.clone(), &k("address"))?;
    let (host, port) = match address.get_ref().rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => match p.parse::<u16>() {
            Ok(p) if p > 0 => (
                h.trim_start_matches('[').trim_end_matches(']').to_owned(),
                p,
            ),
            _ => {
                return Err(cx.err(
                    address.span(),
                    k("address"),
                    format!("{p:?} is not a port number"),
                ));
            }
        },
        _ => {
            return Err(cx.err(
                address.span(),
                k("address"),
                format!(
                    "{:?} is not host:port (SMPP's usual port is 2775)",
                    address.get_ref()
                ),
            ));
        }
    };
    let tls = match &r.tls {
        None => None,
        Some(t) => tls(cx, &k("tls"), t, &host)?,
    };
    let system_id = required(cx, &r.system_id, sec.clone(), &k("system_id"))?;
    if system_id.get_ref().is_empty()
        || system_id.get_ref().len() > 15
        || !system_id.get_ref().is_ascii()
    {
        return Err(cx.err(
            system_id.span(),
            k("system_id"),
            "must be 1-15 ASCII characters (SMPP 3.4 limit)",
        ));
    }
    let password = required(cx, &r.password, sec.clone(), &k("password"))?;
    if password.get_ref().len() > 8 || !password.get_ref().is_ascii() {
        // The value is never echoed: only its length.
        return Err(cx.err(
            password.span(),
            k("password"),
            format!(
                "must be at most 8 ASCII characters (SMPP 3.4 limit); it has {}",
                password.get_ref().chars().count()
            ),
        ));
    }
    let system_type = match &r.system_type {
        None => String::new(),
        Some(t) if t.get_ref().len() > 12 || !t.get_ref().is_ascii() => {
            return Err(cx.err(
                t.span(),
                k("system_type"),
                "must be at most 12 ASCII characters",
            ));
        }
        Some(t) => t.get_ref().clone(),
    };
    let bind = cx.choice(
        &r.bind,
        &k("bind"),
        &[
            ("transceiver", BindMode::Transceiver),
            ("tx_rx", BindMode::TxRx),
        ],
        BindMode::Transceiver,
    )?;
    let binds = cx.int(&r.binds, &k("binds"), 1..=64, 1)? as u16;
    let window = cx.int(&r.window, &k("window"), 1..=10_000, 10)? as u32;
    let tps = match &r.tps {
        None => None,
        Some(_) => Some(cx.int(&r.tps, &k("tps"), 1..=1_000_000, 1)? as u32),
    };
    let enquire_link = cx.duration(&r.enquire_link, &k("enquire_link"), Duration::from_secs(30))?;
    let response_timeout = cx.duration(
        &r.response_timeout,
        &k("response_timeout"),
        Duration::from_secs(10),
    )?;
    let reconnect_min = cx.duration(
        &r.reconnect_min,
        &k("reconnect_min"),
        Duration::from_secs(1),
    )?;
    let reconnect_max = cx.duration(
        &r.reconnect_max,
        &k("reconnect_max"),
        Duration::from_secs(60),
    )?;
    for (d, key, v) in [
        (enquire_link, "enquire_link", &r.enquire_link),
        (response_timeout, "response_timeout", &r.response_timeout),
        (reconnect_min, "reconnect_min", &r.reconnect_min),
    ] {
        if d < Duration::from_millis(100) {
            let span = v.as_ref().map_or(sec.clone(), |v| v.span());
            return Err(cx.err(span, k(key), "must be at least 100ms"));
        }
    }
    if reconnect_max < reconnect_min {
        let span = r.reconnect_max.as_ref().map_or(sec.clone(), |v| v.span());
        return Err(cx.err(
            span,
            k("reconnect_max"),
            "must not be shorter than reconnect_min",
        ));
    }
    let split = cx.choice(
        &r.split,
        &k("split"),
        &[
            ("udh8", SplitMethod::Udh8),
            ("udh16", SplitMethod::Udh16),
            ("sar", SplitMethod::Sar),
            ("payload", SplitMethod::Payload),
        ],
        SplitMethod::Udh8,
    )?;
    let receipt_id = cx.choice(
        &r.receipt_id,
        &k("receipt_id"),
        &[
            ("same", ReceiptIdRule::Same),
            ("hex_to_dec", ReceiptIdRule::HexToDec),
            ("dec_to_hex", ReceiptIdRule::DecToHex),
        ],
        ReceiptIdRule::Same,
    )?;
    let mut shift_tables = Vec::new();
    for t in r.shift_tables.iter().flatten() {
        let lang = cx.choice(
            &Some(t.clone()),
            &k("shift_tables"),
            &[
                ("tr", NationalLanguage::Turkish),
                ("es", NationalLanguage::Spanish),
                ("pt", NationalLanguage::Portuguese),
            ],
            NationalLanguage::Turkish,
        )?;
        if !shift_tables.contains(&lang) {
            shift_tables.push(lang);
        }
    }
    let validity = cx.choice(
        &r.validity,
        &k("validity"),
        &[
            ("relative", ValidityFormat::Relative),
            ("absolute", ValidityFormat::Absolute),
            ("none", ValidityFormat::None),
        ],
        ValidityFormat::Relative,
    )?;
    let max_parts = cx.int(&r.max_parts, &k("max_parts"), 1..=255, 10)? as u8;
    let failover_statuses = match &r.failover_statuses {
        None => DEFAULT_FAILOVER_STATUSES.to_vec(),
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for v in list {
                let status = match v.get_ref() {
                    toml::Value::Integer(n) if (1..=0xFFFF_FFFF).contains(n) => Some(*n as u32),
                    toml::Value::String(name) => STATUS_NAMES
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, s)| *s),
                    _ => None,
                };
                match status {
                    Some(s) => out.push(s),
                    None => {
                        return Err(cx.err(
                            v.span(),
                            k("failover_statuses"),
                            format!("{} is not a command_status number or a known name such as \"ESME_RSYSERR\"", v.get_ref()),
                        ));
                    }
                }
            }
            out
        }
    };

    Ok(Smsc {
        name: name.get_ref().clone(),
        host,
        port,
        tls,
        system_id: system_id.get_ref().clone(),
        password: Secret::new(password.get_ref().clone()),
        system_type,
        bind,
        binds,
        window,
        tps,
        enquire_link,
        response_timeout,
        reconnect_min,
        reconnect_max,
        split,
        receipt_id,
        shift_tables,
        gsm_packed: r.gsm_packed.unwrap_or(false),
        max_parts,
        failover_statuses,
        acceptd_final: r.acceptd_final.unwrap_or(false),
        validity,
    })
}

fn tls(
    cx: &Ctx<'_>,
    key: &str,
    v: &S<toml::Value>,
    host: &str,
) -> Result<Option<Tls>, ConfigError> {
    let default = Tls {
        server_name: Some(host.to_owned()),
        ..Tls::default()
    };
    let table = match v.get_ref() {
        toml::Value::Boolean(false) => return Ok(None),
        toml::Value::Boolean(true) => return Ok(Some(default)),
        toml::Value::Table(t) => t,
        _ => {
            return Err(cx.err(
                v.span(),
                key,
                "must be false, true, or a table { ca = \"…\", cert = \"…\", key = \"…\", server_name = \"…\", insecure = false }",
            ));
        }
    };
    // Nested tables inside an inline value lose their own spans; the errors point at `tls`.
    let span = v.span();
    let string = |name: &str| -> Result<Option<S<String>>, ConfigError> {
        match table.get(name) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(Spanned::new(span.clone(), s.clone()))),
            Some(_) => Err(cx.err(span.clone(), format!("{key}.{name}"), "must be a string")),
        }
    };
    for k in table.keys() {
        if !["ca", "cert", "key", "server_name", "insecure"].contains(&k.as_str()) {
            return Err(cx.err(
                span.clone(),
                format!("{key}.{k}"),
                "unknown key; expected one of ca, cert, key, server_name, insecure",
            ));
        }
    }
    let ca_file = string("ca")?
        .map(|p| cx.file(&p, &format!("{key}.ca")))
        .transpose()?;
    let client_cert = string("cert")?
        .map(|p| cx.file(&p, &format!("{key}.cert")))
        .transpose()?;
    let client_key = string("key")?
        .map(|p| cx.file(&p, &format!("{key}.key")))
        .transpose()?;
    if client_cert.is_some() != client_key.is_some() {
        return Err(cx.err(span, key, "cert and key must be given together"));
    }
    let server_name =
        Some(string("server_name")?.map_or_else(|| host.to_owned(), |s| s.into_inner()));
    let insecure_skip_verify = match table.get("insecure") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(cx.err(span, format!("{key}.insecure"), "must be true or false")),
    };
    Ok(Some(Tls {
        ca_file,
        client_cert,
        client_key,
        server_name,
        insecure_skip_verify,
    }))
}

fn route(cx: &Ctx<'_>, i: usize, r: &S<RawRoute>, smscs: &[Smsc]) -> Result<Route, ConfigError> {
    let k = |f: &str| format!("route[{i}].{f}");
    let sec = r.span();
    let raw = r.get_ref();
    let name = required(cx, &raw.name, sec.clone(), &k("name"))?;
    if !valid_name(name.get_ref()) {
        return Err(cx.err(
            name.span(),
            k("name"),
            "names are 1-64 characters of letters, digits, '-', '_' and '.'",
        ));
    }
    let mut prefix = Vec::new();
    for p in raw.prefix.iter().flatten() {
        let v = p.get_ref();
        let digits = v.strip_prefix('+').unwrap_or(v);
        if digits.is_empty() || digits.len() > 15 || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(cx.err(
                p.span(),
                k("prefix"),
                format!("{v:?} is not an E.164 prefix like \"+46\""),
            ));
        }
        prefix.push(format!("+{digits}"));
    }
    let mut sender = Vec::new();
    for s in raw.sender.iter().flatten() {
        match crate::address::Sender::parse(s.get_ref()) {
            Ok(parsed) => sender.push(parsed.to_string()),
            Err(e) => return Err(cx.err(s.span(), k("sender"), format!("{:?}: {e}", s.get_ref()))),
        }
    }
    let tag = match &raw.tag {
        None => None,
        Some(t) => {
            let v = t.get_ref();
            let (key, value) = match v.split_once('=') {
                Some((a, b)) => (a.trim().to_owned(), Some(b.trim().to_owned())),
                None => (v.trim().to_owned(), None),
            };
            if key.is_empty() {
                return Err(cx.err(t.span(), k("tag"), "must be \"key\" or \"key=value\""));
            }
            Some(TagRule { key, value })
        }
    };
    let list = raw.smsc.as_ref().filter(|l| !l.is_empty()).ok_or_else(|| {
        cx.err(
            sec.clone(),
            k("smsc"),
            "missing: list the SMSCs this route uses, in failover order",
        )
    })?;
    let mut smsc = Vec::with_capacity(list.len());
    for s in list {
        let n = s.get_ref();
        if !smscs.iter().any(|o| &o.name == n) {
            let known: Vec<&str> = smscs.iter().map(|o| o.name.as_str()).collect();
            return Err(cx.err(
                s.span(),
                k("smsc"),
                format!(
                    "no [[smsc]] is named {n:?} (defined: {})",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        if smsc.contains(n) {
            return Err(cx.err(s.span(), k("smsc"), format!("{n:?} is listed twice")));
        }
        smsc.push(n.clone());
    }
    let tps = match &raw.tps {
        None => None,
        Some(_) => Some(cx.int(&raw.tps, &k("tps"), 1..=1_000_000, 1)? as u32),
    };
    let default_burst = tps.map_or(1, |t| (t / 10).max(1)) as i64;
    let burst = cx.int(&raw.burst, &k("burst"), 1..=1_000_000, default_burst)? as u32;
    Ok(Route {
        name: name.get_ref().clone(),
        prefix,
        sender,
        tag,
        smsc,
        tps,
        burst,
        reroute_undelivered: raw.reroute_undelivered.unwrap_or(false),
        smart: raw.smart.unwrap_or(false),
    })
}
