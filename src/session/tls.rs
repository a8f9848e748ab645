//! The TLS client side of a bind: builds one `tokio_rustls::TlsConnector` per SMSC from
//! [`TlsConfig`] (ring provider; system roots or a CA file; optional client certificate) and
//! resolves the SNI name. Never weakens verification unless `insecure_skip_verify` is set, and then
//! says so loudly at every connect (see `connect` in the bind task).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use super::config::TlsConfig;

/// Why a TLS client configuration could not be built (reported when the SMSC handle starts).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file (`tls.ca_file`) could not be read or holds no certificate.
    #[error("tls.ca_file {path}: {problem}")]
    CaFile {
        /// The file named in the configuration.
        path: String,
        /// What went wrong.
        problem: String,
    },
    /// The system has no usable root certificates.
    #[error("tls: no system root certificates could be loaded ({0})")]
    NoSystemRoots(String),
    /// The client certificate or key could not be read.
    #[error("tls.{field} {path}: {problem}")]
    ClientIdentity {
        /// `client_cert` or `client_key`.
        field: &'static str,
        /// The file named in the configuration.
        path: String,
        /// What went wrong.
        problem: String,
    },
    /// Only one of `client_cert` and `client_key` is set.
    #[error("tls: client_cert and client_key must be given together")]
    HalfClientIdentity,
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The SNI name is neither a DNS name nor an IP address.
    #[error("tls.server_name {0:?} is not a valid DNS name or IP address")]
    ServerName(String),
}

/// Builds the connector and the server name to present for `host`.
pub fn connector(
    cfg: &TlsConfig,
    host: &str,
) -> Result<(TlsConnector, ServerName<'static>), TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if cfg.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        builder.with_root_certificates(roots(cfg)?)
    };
    let config = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsSetupError::ClientIdentity {
                    field: "client_cert",
                    path: cert.display().to_string(),
                    problem: e.to_string(),
                })?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| TlsSetupError::ClientIdentity {
                    field: "client_key",
                    path: key.display().to_string(),
                    problem: e.to_string(),
                })?;
            builder.with_client_auth_cert(chain, key)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsSetupError::HalfClientIdentity),
    };
    let name = cfg.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| TlsSetupError::ServerName(name.to_owned()))?;
    Ok((TlsConnector::from(Arc::new(config)), server_name))
}

fn roots(cfg: &TlsConfig) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let ca_err = |problem: String| TlsSetupError::CaFile {
                path: path.display().to_string(),
                problem,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ca_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_err("no PEM certificate in the file".into()));
            }
            for cert in certs {
                store.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(TlsSetupError::NoSystemRoots(why));
            }
        }
    }
    Ok(store)
}

/// The explicit opt-out: accepts any certificate, but still checks the handshake signatures so the
/// session is at least encrypted to whoever answered. Also the store's `sslmode=require`.
#[derive(Debug)]
pub(crate) struct AcceptAnyCertificate(pub(crate) Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
