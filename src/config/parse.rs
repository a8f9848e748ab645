//! The file's text to a validated [`super::Config`]: the order of the sections and the checks
//! of `[listen]`, `[store]`, `[log]`, `[optout]` and `[[simulator]]` (the policy sections are
//! checked in `policy`).
//!
//! Owns what a section's values must satisfy beyond their key table (addresses, the
//! loopback-or-token rule, references between keys). Must never write a default, range or
//! choice list: those are in [`super::keys`] and reach this code through [`Table`]'s getters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::keys::{
    CAP, CLUSTER, LISTEN, LOG, MARKETING, OPTOUT, ROUTE, SENDER, SIMULATOR, SMSC, STORE, TOP,
    WINDOW,
};
use super::table::{Ctx, Document, Table};
use super::values::{key_at, normalize_keyword, valid_filter, valid_name};
use super::*;

pub(super) fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
    let cx = Ctx { text, origin, base };
    let root = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.err(span.clone(), key_at(text, span.start), e.message().trim())
    })?;
    let mut doc = Document::new(&cx, root.get_ref(), TOP)?;
    let listen = listen(&doc.table(&LISTEN))?;
    let store = store(&doc.table(&STORE))?;
    let cluster = cluster(&doc.table(&CLUSTER))?;
    let log = log(&doc.table(&LOG))?;
    let optout = optout(&doc.table(&OPTOUT))?;
    let policy = super::policy::policy(
        &doc.table(&MARKETING),
        &doc.tables(&WINDOW),
        &doc.tables(&CAP),
        &optout,
    )?;
    let policy = crate::policy::Policy {
        senders: super::policy::senders(&doc.tables(&SENDER))?,
        ..policy
    };
    let smscs = super::smsc::smscs(&doc.tables(&SMSC))?;
    let routes = super::route::routes(&cx, &doc.tables(&ROUTE), &smscs)?;
    let simulators = simulators(&doc.tables(&SIMULATOR))?;
    Ok(Config {
        listen,
        store,
        cluster,
        log,
        optout,
        policy,
        smscs,
        routes,
        simulators,
    })
}

fn listen(t: &Table<'_>) -> Result<Listen, ConfigError> {
    let submit = submit_addr(t)?;
    let metrics = match t.str("metrics")? {
        Some(s) if !s.get_ref().is_empty() => Some(s.get_ref().parse().map_err(|_| {
            let message = format!("{:?} is not an IP:port address", s.get_ref());
            t.err(s.span(), "metrics", message)
        })?),
        _ => None,
    };
    let token = match t.str("token")? {
        None => None,
        Some(s) if s.get_ref().len() < 16 => {
            let message = "a token must be at least 16 characters";
            return Err(t.err(s.span(), "token", message));
        }
        Some(s) => Some(Secret::new((*s.get_ref()).to_owned())),
    };
    if let ListenAddr::Tcp(a) = &submit
        && !a.ip().is_loopback()
        && token.is_none()
    {
        let message = format!(
            "{a} is not a loopback address: set listen.token so that clients must authenticate"
        );
        return Err(t.err(t.span_of("submit"), "submit", message));
    }
    Ok(Listen {
        submit,
        metrics,
        token,
        max_connections: t.int("max_connections")? as usize,
        write_timeout: t.duration("write_timeout")?,
    })
}

fn submit_addr(t: &Table<'_>) -> Result<ListenAddr, ConfigError> {
    let s = t.required("submit")?;
    let v = *s.get_ref();
    if let Some(path) = v.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(t.err(s.span(), "submit", "unix: needs a socket path"));
        }
        return Ok(ListenAddr::Unix(PathBuf::from(path)));
    }
    v.parse().map(ListenAddr::Tcp).map_err(|_| {
        let message = format!("{v:?} is not an IP:port address or unix:/path");
        t.err(s.span(), "submit", message)
    })
}

fn store(t: &Table<'_>) -> Result<Store, ConfigError> {
    Ok(Store {
        path: PathBuf::from(t.required("path")?.get_ref()),
        postgres: postgres(t)?,
        sync: t.choice("sync", &[SyncMode::Normal, SyncMode::Full])?,
        retain_text: t.bool("retain_text")?,
        keep_messages: t.duration("keep_messages")?,
        keep_reports: t.duration("keep_reports")?,
        receipt_wait: t.duration("receipt_wait")?,
        max_size: t.size("max_size")?,
    })
}

fn postgres(t: &Table<'_>) -> Result<Option<Postgres>, ConfigError> {
    let Some(url) = t.str("url")? else {
        return Ok(None);
    };
    let u = *url.get_ref();
    if let Err(problem) = crate::store::postgres::check_url(u) {
        return Err(t.err(url.span(), "url", problem));
    }
    Ok(Some(Postgres {
        url: u.to_owned(),
        password_file: t.file("password_file")?,
        pool_size: t.int("pool_size")? as usize,
    }))
}

fn cluster(t: &Table<'_>) -> Result<Cluster, ConfigError> {
    let instance = match t.str("instance")? {
        Some(s) => {
            if !valid_name(s.get_ref()) {
                let message = format!(
                    "{:?} is not a name (letters, digits, '.', '-', '_')",
                    s.get_ref()
                );
                return Err(t.err(s.span(), "instance", message));
            }
            (*s.get_ref()).to_owned()
        }
        None => host_name(),
    };
    Ok(Cluster {
        instance,
        lease_ttl: t.duration("lease_ttl")?,
    })
}

/// The host's name (the default instance name), or `smppd` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| valid_name(h))
        .unwrap_or_else(|| "smppd".to_owned())
}

fn log(t: &Table<'_>) -> Result<Log, ConfigError> {
    let level = t.required("level")?;
    if !valid_filter(level.get_ref()) {
        let message = format!(
            "{:?} is not a level (error, warn, info, debug, trace) or a list like \"info,smppd::session=debug\"",
            level.get_ref()
        );
        return Err(t.err(level.span(), "level", message));
    }
    Ok(Log {
        format: t.choice("format", &[LogFormat::Text, LogFormat::Json])?,
        level: (*level.get_ref()).to_owned(),
    })
}

fn optout(t: &Table<'_>) -> Result<OptOut, ConfigError> {
    let keywords = |name: &str| -> Result<Vec<String>, ConfigError> {
        t.strings(name)?
            .iter()
            .map(|s| match normalize_keyword(s.get_ref()) {
                k if k.is_empty() => {
                    let message = "an empty keyword would match every message";
                    Err(t.err(s.span(), name, message))
                }
                k => Ok(k),
            })
            .collect()
    };
    let optout = OptOut {
        stop: keywords("stop")?,
        start: keywords("start")?,
    };
    if let Some(both) = optout.stop.iter().find(|k| optout.start.contains(k)) {
        let message = format!("keyword {both:?} is both a stop and a start keyword");
        return Err(t.section_err(t.span(), message));
    }
    Ok(optout)
}

fn simulators(tables: &[Table<'_>]) -> Result<Vec<Simulator>, ConfigError> {
    let mut simulators: Vec<Simulator> = Vec::with_capacity(tables.len());
    for t in tables {
        let name = t.required("name")?;
        if !valid_name(name.get_ref()) || simulators.iter().any(|o| &o.name == name.get_ref()) {
            let message = "names are unique, 1-64 letters, digits, '-', '_' or '.'";
            return Err(t.err(name.span(), "name", message));
        }
        simulators.push(simulator(t, name.get_ref())?);
    }
    Ok(simulators)
}

fn simulator(t: &Table<'_>, name: &str) -> Result<Simulator, ConfigError> {
    let listen = t.required("listen")?;
    let addr: SocketAddr = listen.get_ref().parse().map_err(|_| {
        let message = format!("{:?} is not an IP:port address", listen.get_ref());
        t.err(listen.span(), "listen", message)
    })?;
    if !addr.ip().is_loopback() {
        let message = "simulators listen on loopback only";
        return Err(t.err(listen.span(), "listen", message));
    }
    let (system_id, password) = (t.str("system_id")?, t.str("password")?);
    if system_id.is_some() != password.is_some() {
        let message = "system_id and password go together";
        return Err(t.err(t.span(), "system_id", message));
    }
    let mix = t.required("receipt_mix")?;
    if crate::sim::control::parse_mix(mix.get_ref()).is_none() {
        let message = format!(
            "{:?} is not like \"DELIVRD=95,UNDELIV=5\" (DELIVRD, UNDELIV, EXPIRED, REJECTD)",
            mix.get_ref()
        );
        return Err(t.err(mix.span(), "receipt_mix", message));
    }
    Ok(Simulator {
        name: name.to_owned(),
        listen: addr,
        system_id: system_id.map(|s| (*s.get_ref()).to_owned()),
        password: password.map(|s| Secret::new((*s.get_ref()).to_owned())),
        receipt_delay: t.duration("receipt_delay")?,
        receipt_mix: (*mix.get_ref()).to_owned(),
        decimal_ids: t.choice("id_format", &[false, true])?,
    })
}
