//! The byte stream under a bind: a TCP connection, optionally wrapped in TLS. Owns connecting with
//! a timeout; never reads or writes PDUs.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

/// Either stream, behind one trait object (a virtual call per read or write of a whole batch is
/// noise next to the syscall).
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Connects to `address`, then runs the TLS handshake when `tls` is given, all within `timeout`.
pub(crate) async fn connect(
    address: &str,
    tls: Option<&(TlsConnector, ServerName<'static>)>,
    timeout: std::time::Duration,
) -> Result<Box<dyn Io>, String> {
    let attempt = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("tcp connect to {address}: {e}"))?;
        // Small PDUs batched by the session itself: Nagle would only add latency.
        tcp.set_nodelay(true)
            .map_err(|e| format!("tcp nodelay on {address}: {e}"))?;
        match tls {
            None => Ok(Box::new(tcp) as Box<dyn Io>),
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("tls handshake with {address}: {e}"))?;
                Ok(Box::new(stream) as Box<dyn Io>)
            }
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("connect to {address}: timed out after {timeout:?}")),
    }
}
