//! From `[store] url` to a pool of PostgreSQL connections: the URL's checks, the password
//! (`password_file`, else `PGPASSWORD`; never in the URL, a log line or an error), and TLS by
//! rustls when the URL's `sslmode` asks for it.
//!
//! `sslmode` follows libpq: `disable` (the default here: a database on the same network),
//! `prefer` and `require` encrypt without checking the server's certificate; `verify-ca` and
//! `verify-full` check it against the system's roots plus `sslrootcert` when given
//! (`verify-full` also checks the host name; `verify-ca` is treated as `verify-full`, the
//! stricter of the two, since rustls has no CA-only check).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::config::SslMode;

use crate::config::Postgres;
use crate::store::StoreError;

/// How the URL asks for TLS, after the `verify-*` words tokio-postgres does not know are taken
/// out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tls {
    Off,
    /// Encrypt, no certificate check (libpq's `prefer` and `require`).
    Unverified {
        required: bool,
    },
    /// Encrypt and check the certificate and host name, with extra roots from `sslrootcert`.
    Verified {
        root_cert: Option<String>,
    },
}

/// Checks a `[store] url` at config load: a PostgreSQL URL naming a database, with no password.
/// The error never repeats the URL (it might hold a password).
pub fn check_url(url: &str) -> Result<(), String> {
    let (config, _) = parse(url)?;
    if config.get_password().is_some() {
        return Err(
            "holds a password: put it in password_file or PGPASSWORD, never in the URL".into(),
        );
    }
    if config.get_dbname().is_none() {
        return Err("names no database (postgres://user@host:5432/DATABASE)".into());
    }
    if config.get_user().is_none() && std::env::var_os("USER").is_none() {
        return Err("names no user (postgres://USER@host:5432/smppd)".into());
    }
    Ok(())
}

fn parse(url: &str) -> Result<(tokio_postgres::Config, Tls), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("not a PostgreSQL URL: it must start with postgres://".into());
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = None;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", m)) => mode = Some(m.to_owned()),
            Some(("sslrootcert", p)) => root_cert = Some(p.to_owned()),
            _ => kept.push(pair),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("disable") => Tls::Off,
        Some("prefer" | "allow") => Tls::Unverified { required: false },
        Some("require") => Tls::Unverified { required: true },
        Some("verify-ca" | "verify-full") => Tls::Verified { root_cert },
        Some(other) => {
            return Err(format!(
                "sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ));
        }
    };
    let rebuilt = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = rebuilt
        .parse()
        .map_err(|_| "not a valid PostgreSQL URL (postgres://user@host:5432/smppd)".to_string())?;
    config.ssl_mode(match tls {
        Tls::Off => SslMode::Disable,
        Tls::Unverified { required: false } => SslMode::Prefer,
        _ => SslMode::Require,
    });
    Ok((config, tls))
}

/// The password: the first line of `password_file`, else `PGPASSWORD`, else none.
fn password(file: Option<&Path>) -> Result<Option<String>, StoreError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            StoreError::Config(format!("store.password_file {}: {e}", path.display()))
        })?;
        return Ok(Some(text.lines().next().unwrap_or("").to_owned()));
    }
    Ok(std::env::var("PGPASSWORD").ok())
}

/// A pool of connections to the store's database, as `[store]` describes it. Connects lazily:
/// the first use says whether the database is there.
pub fn pool(pg: &Postgres, application: &str) -> Result<Pool, StoreError> {
    let (mut config, tls) =
        parse(&pg.url).map_err(|e| StoreError::Config(format!("store.url: {e}")))?;
    if let Some(p) = password(pg.password_file.as_deref())? {
        config.password(p);
    }
    // Custom plans only: a generic plan cached while the tables were small (a new database)
    // keeps sequential scans after they grew (a batch's `= ANY($1)` lookups took 2 to 12 ms
    // each). The writer's statements are few per batch, so planning each costs little.
    let options = match config.get_options() {
        Some(o) if !o.is_empty() => format!("{o} -c plan_cache_mode=force_custom_plan"),
        _ => "-c plan_cache_mode=force_custom_plan".to_owned(),
    };
    config
        .options(&options)
        .application_name(application)
        .connect_timeout(Duration::from_secs(5))
        .keepalives_idle(Duration::from_secs(30));
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls {
        Tls::Off => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        Tls::Unverified { .. } => {
            Manager::from_config(config, connector(unverified()?), manager_config)
        }
        Tls::Verified { root_cert } => Manager::from_config(
            config,
            connector(verified(root_cert.as_deref())?),
            manager_config,
        ),
    };
    Pool::builder(manager)
        .max_size(pg.pool_size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Config(format!("store.url: cannot build the pool: {e}")))
}

fn connector(config: rustls::ClientConfig) -> tokio_postgres_rustls::MakeRustlsConnect {
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn verified(root_cert: Option<&str>) -> Result<rustls::ClientConfig, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = root_cert {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| StoreError::Config(format!("store.url sslrootcert {path}: {e}")))?;
        for cert in certs {
            let cert =
                cert.map_err(|e| StoreError::Config(format!("store.url sslrootcert {path}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| StoreError::Config(format!("store.url sslrootcert {path}: {e}")))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("store.url TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn unverified() -> Result<rustls::ClientConfig, StoreError> {
    // libpq's `sslmode=require`: encrypted, the certificate not checked (the operator asked for
    // exactly that; `verify-full` is the checked mode).
    let verifier = Arc::new(crate::session::tls::AcceptAnyCertificate(provider()));
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("store.url TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_without_repeating_it() {
        let e = check_url("postgres://smppd:hunter2@db:5432/smppd").unwrap_err();
        assert!(e.contains("password"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn sslmode_words_map_to_the_tls_asked_for() {
        assert_eq!(parse("postgres://u@h/db").unwrap().1, Tls::Off);
        assert_eq!(
            parse("postgres://u@h/db?sslmode=require").unwrap().1,
            Tls::Unverified { required: true }
        );
        assert_eq!(
            parse("postgres://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem")
                .unwrap()
                .1,
            Tls::Verified {
                root_cert: Some("/ca.pem".into())
            }
        );
        let e = parse("postgres://u@h/db?sslmode=sometimes").unwrap_err();
        assert!(e.contains("sometimes"), "{e}");
        assert!(check_url("postgres://u@h:5432").is_err(), "no database");
        assert!(check_url("mysql://u@h/db").is_err());
        assert!(check_url("postgres://u@h:5432/db?application_name=x").is_ok());
    }
}
