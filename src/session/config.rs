//! Settings of one SMSC's binds, as the daemon's config loader hands them over (already validated
//! there; here only the types, their defaults and a redacting `Debug`). Never parses files and never
//! prints a password.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A secret string (a bind password) whose `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that puts it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the binds of an SMSC carry the two directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// One `bind_transceiver` per bind index: submits and inbound on one socket.
    Transceiver,
    /// A `bind_transmitter` and a `bind_receiver` per bind index, on two sockets.
    TxRx,
}

/// How a submit_sm tells the SMSC until when its message is valid (`validity_period`), so the
/// SMSC stops trying once the gateway would have given up too. The SMSC's `validity` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValidityFormat {
    /// The time left, relative to the SMSC's clock (`0000DDhhmmss000R`): needs no clock
    /// agreement between gateway and SMSC, so it is the default.
    #[default]
    Relative,
    /// The expiry instant in UTC (`YYMMDDhhmmss000+`), for SMSCs that refuse relative times.
    Absolute,
    /// Leave `validity_period` empty (the SMSC's default validity applies).
    None,
}

/// TLS towards the SMSC (rustls with the ring provider).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with the CA certificates to trust; `None` uses the system's roots
    /// (rustls-native-certs).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for SMSCs that require mutual TLS (needs `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Name sent in SNI and checked in the certificate; `None` takes the host of the address.
    pub server_name: Option<String>,
    /// Accept any server certificate. Only for test SMSCs: logged as a warning at every connect.
    pub insecure_skip_verify: bool,
}

/// Everything the binds of one SMSC need.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The SMSC's name in logs, events and metrics.
    pub name: String,
    /// `host:port` to connect to.
    pub address: String,
    /// TLS settings; `None` is plain TCP.
    pub tls: Option<TlsConfig>,
    /// Bind login.
    pub system_id: String,
    /// Bind password (at most 8 characters on the wire).
    pub password: Secret,
    /// Bind `system_type` (often empty).
    pub system_type: String,
    /// Transceiver, or transmitter + receiver pairs.
    pub mode: BindMode,
    /// Number of bind indexes (each a transceiver or a tx+rx pair).
    pub binds: usize,
    /// Requests in flight per transmitting bind.
    pub window: usize,
    /// Idle time after which an enquire_link is sent.
    pub enquire_link: Duration,
    /// How long a submit_sm, data_sm, enquire_link, bind or unbind waits for its response.
    pub response_timeout: Duration,
    /// TCP connect plus TLS handshake limit.
    pub connect_timeout: Duration,
    /// Reconnect backoff floor (also after bind rejections).
    pub reconnect_min: Duration,
    /// Reconnect backoff ceiling.
    pub reconnect_max: Duration,
    /// First pause after ESME_RTHROTTLED / ESME_RMSGQFUL; doubles while they repeat.
    pub throttle_min: Duration,
    /// Longest throttling pause.
    pub throttle_max: Duration,
    /// How long the consumer may take to answer an inbound deliver_sm/data_sm before the session
    /// answers ESME_RX_T_APPN (so the SMSC redelivers).
    pub inbound_timeout: Duration,
    /// Unanswered inbound PDUs per bind before the session stops reading from the socket.
    pub max_inbound: usize,
}

impl SessionConfig {
    /// A configuration with the usual defaults (Kannel's where it has one: enquire_link 30 s,
    /// window 10) for `name` at `address`.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            address: address.into(),
            tls: None,
            system_id: String::new(),
            password: Secret::default(),
            system_type: String::new(),
            mode: BindMode::Transceiver,
            binds: 1,
            window: 10,
            enquire_link: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            throttle_min: Duration::from_millis(500),
            throttle_max: Duration::from_secs(30),
            inbound_timeout: Duration::from_secs(10),
            max_inbound: 1024,
        }
    }

    /// The host part of `address` (for SNI), without brackets around an IPv6 literal.
    pub fn host(&self) -> &str {
        let host = match self.address.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => &self.address,
        };
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let mut c = SessionConfig::new("op-a", "smsc.example.net:2775");
        c.password = Secret::new("hunter2");
        let shown = format!("{c:?} {}", c.password);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"));
        assert_eq!(c.password.expose(), "hunter2");
    }

    #[test]
    fn host_for_sni() {
        assert_eq!(
            SessionConfig::new("a", "smsc.example.net:2775").host(),
            "smsc.example.net"
        );
        assert_eq!(SessionConfig::new("a", "[::1]:2775").host(), "::1");
        assert_eq!(SessionConfig::new("a", "localhost").host(), "localhost");
    }
}
