//! The configuration file: TOML parsed once into validated types.
//!
//! Owns: the schema of `conf/smppd.toml` — every key's name, kind, default and documentation
//! written once in `keys`; the README's key table and the comments in `conf/smppd.toml` are
//! made from it ([`reference_markdown`], [`annotate`]) — parsing with unknown keys refused in
//! every table (`table`), and validation (ranges, references between sections, security
//! rules; `parse`, `smsc`, `route`, `policy`) with every error naming the key and the line. Must
//! never be consulted as raw TOML elsewhere: the rest of the daemon receives a [`Config`] and
//! trusts it. Must never print a password or token ([`Secret`] redacts itself).
//!
//! Adding a key: one entry in its section's table in `keys.rs`, the field in the validated
//! type below, and the line in the section's parser that reads it through a typed getter
//! (`t.int("window")`); then `smppd check-config --annotate conf/smppd.toml` and
//! `smppd check-config --keys` for the documentation (tests/config.rs says when they are stale).

mod docs;
mod keys;
mod parse;
mod policy;
mod route;
mod schema;
mod smsc;
mod table;
mod values;

pub use docs::{annotate, reference_markdown};
pub use values::parse_duration;

use std::fmt;

pub use crate::receipt::IdRule as ReceiptIdRule;
pub use crate::session::{BindMode, Secret, TlsConfig as Tls, ValidityFormat};
pub use crate::store::SyncMode;
pub use crate::text::{NationalLanguage, SplitMethod};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration error: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {key}: {message}")]
pub struct ConfigError {
    /// The file name (or `<string>`).
    pub origin: String,
    /// 1-based line of the offending key or value (0 when the problem has no place, e.g. an
    /// unreadable file).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key path such as `smsc[1].window` (`[1]` is the second `[[smsc]]` section).
    pub key: String,
    pub message: String,
}

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: Listen,
    pub store: Store,
    pub cluster: Cluster,
    pub log: Log,
    pub optout: OptOut,
    /// `[marketing]`, `[[window]]` and `[[cap]]` (issue #19).
    pub policy: crate::policy::Policy,
    pub smscs: Vec<Smsc>,
    pub routes: Vec<Route>,
    /// SMSC simulators started in-process (demos, quick start, tests); empty in production.
    pub simulators: Vec<Simulator>,
}

/// An embedded SMSC simulator (`[[simulator]]`): the `smppd sim` code, started by the daemon
/// before its binds, on a loopback address.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulator {
    pub name: String,
    pub listen: SocketAddr,
    /// Accepted login; `None` accepts any.
    pub system_id: Option<String>,
    pub password: Option<Secret>,
    /// Delay between a submit and its receipt.
    pub receipt_delay: Duration,
    /// Receipt states with weights, e.g. `DELIVRD=95,UNDELIV=5`.
    pub receipt_mix: String,
    /// `hex` or `decimal` message ids.
    pub decimal_ids: bool,
}

/// Where the submit protocol and the metrics endpoint listen.
#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    pub submit: ListenAddr,
    pub metrics: Option<SocketAddr>,
    pub token: Option<Secret>,
    /// Concurrent submit-protocol connections; more wait in the kernel backlog.
    pub max_connections: usize,
    /// A client that leaves a response unread this long is disconnected (so a client that
    /// stops reading holds its buffers only so long).
    pub write_timeout: Duration,
}

/// A TCP address or a Unix socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => a.fmt(f),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Store {
    /// The SQLite file (unused when `postgres` is set).
    pub path: PathBuf,
    /// The shared PostgreSQL store (`url`), when set.
    pub postgres: Option<Postgres>,
    pub sync: SyncMode,
    /// Keep message text after every part was acknowledged.
    pub retain_text: bool,
    /// How long finished messages are kept.
    pub keep_messages: Duration,
    /// How long delivery-report and MO log rows are kept.
    pub keep_reports: Duration,
    /// A submitted message with no receipt after this long becomes `no_receipt`.
    pub receipt_wait: Duration,
    /// Cap on the store file (bytes): past it, writes fail as on a full disk (submits get
    /// `overloaded`) until rows are pruned or the cap is raised by a reload. `None`: no cap.
    pub max_size: Option<u64>,
}

/// `[store] url` and what goes with it. The password is never part of `url` (refused at load).
#[derive(Debug, Clone, PartialEq)]
pub struct Postgres {
    /// The URL as written (no password in it).
    pub url: String,
    /// `password_file`, resolved against the configuration file's folder; read at connect.
    pub password_file: Option<PathBuf>,
    /// Connections in this instance's pool.
    pub pool_size: usize,
}

/// `[cluster]`: this instance's name and the SMSC lease length.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub instance: String,
    pub lease_ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub format: LogFormat,
    /// A `tracing` filter: `info`, or `info,smppd::session=debug`.
    pub level: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OptOut {
    /// MO keywords that put the sender on the opt-out list (upper-case, spaces removed).
    pub stop: Vec<String>,
    /// MO keywords that take the sender off it.
    pub start: Vec<String>,
}

/// One operator SMSC.
#[derive(Debug, Clone, PartialEq)]
pub struct Smsc {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub tls: Option<Tls>,
    pub system_id: String,
    pub password: Secret,
    pub system_type: String,
    pub bind: BindMode,
    pub binds: u16,
    pub window: u32,
    /// The contractual submit rate across all binds, parts per second; `None` is unlimited.
    pub tps: Option<u32>,
    pub enquire_link: Duration,
    pub response_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub split: SplitMethod,
    pub receipt_id: ReceiptIdRule,
    pub shift_tables: Vec<NationalLanguage>,
    /// Send GSM 7-bit packed (8 septets in 7 octets) instead of one septet per octet.
    pub gsm_packed: bool,
    /// Maximum parts per message through this SMSC (1..=255).
    pub max_parts: u8,
    /// command_status values after which a permanently rejected part is tried on the next SMSC
    /// of its route instead of failing.
    pub failover_statuses: Vec<u32>,
    /// Whether a receipt with `stat:ACCEPTD` is final with the state `accepted` (the SMPP 3.4
    /// meaning) or, by default, intermediate ("accepted by the network / next hop", as real SMSCs
    /// and aggregators use it). Never delivered either way.
    pub acceptd_final: bool,
    /// How a message's remaining validity goes into submit_sm's `validity_period`.
    pub validity: ValidityFormat,
}

/// Which messages a route takes and where it sends them.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    /// E.164 prefixes (with `+`); empty matches every destination.
    pub prefix: Vec<String>,
    /// Exact senders; empty matches every sender.
    pub sender: Vec<String>,
    /// A tag rule: `key` (the key is present) or `key=value`.
    pub tag: Option<TagRule>,
    /// SMSC names in failover order (validated to exist).
    pub smsc: Vec<String>,
    /// Parts per second; `None` is unlimited (the SMSC's own rate still applies).
    pub tps: Option<u32>,
    /// Extra parts a bucket may send at once after being idle (default: tps/10, at least 1).
    pub burst: u32,
    pub reroute_undelivered: bool,
    /// Replace typographic look-alikes with GSM characters by default on this route.
    pub smart: bool,
}

/// A route's tag rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRule {
    pub key: String,
    pub value: Option<String>,
}

impl Route {
    /// A route with no match rules catches every message.
    pub fn is_catch_all(&self) -> bool {
        self.prefix.is_empty() && self.sender.is_empty() && self.tag.is_none()
    }
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            line: 0,
            column: 0,
            key: "-".into(),
            message: format!("cannot read the file: {e}"),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &origin, base)
    }

    /// Parses and validates TOML text. `base` resolves relative file paths that must exist
    /// (TLS files) — the store path stays relative to the working directory, like a shell user
    /// expects.
    pub fn parse(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        parse::parse(text, origin, base)
    }

    pub fn smsc(&self, name: &str) -> Option<&Smsc> {
        self.smscs.iter().find(|s| s.name == name)
    }
}

impl Smsc {
    /// The session layer's settings for this SMSC's binds.
    pub fn session_config(&self) -> crate::session::SessionConfig {
        let mut c =
            crate::session::SessionConfig::new(&self.name, format!("{}:{}", self.host, self.port));
        c.tls = self.tls.clone();
        c.system_id = self.system_id.clone();
        c.password = self.password.clone();
        c.system_type = self.system_type.clone();
        c.mode = self.bind;
        c.binds = usize::from(self.binds);
        c.window = self.window as usize;
        c.enquire_link = self.enquire_link;
        c.response_timeout = self.response_timeout;
        c.reconnect_min = self.reconnect_min;
        c.reconnect_max = self.reconnect_max;
        c
    }

    /// The settings that require a re-bind when they change (everything about the connection;
    /// rates, routes and failover lists apply without one).
    pub fn connection_settings_differ(&self, other: &Smsc) -> bool {
        self.host != other.host
            || self.port != other.port
            || self.tls != other.tls
            || self.system_id != other.system_id
            || self.password != other.password
            || self.system_type != other.system_type
            || self.bind != other.bind
            || self.binds != other.binds
            || self.window != other.window
            || self.enquire_link != other.enquire_link
            || self.response_timeout != other.response_timeout
            || self.reconnect_min != other.reconnect_min
            || self.reconnect_max != other.reconnect_max
    }
}
